//! `[[expect]]`: assertions a scenario carries on its own metrics, checked
//! after a run by `eremu check` and `eremu run --check`.

use super::flatten::{fmt_value, glob_match, suggest, Metrics};
use super::CheckError;
use crate::scenario::{Config, ExpectConfig};

/// One expectation applied to one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectResult {
    pub metric: String,
    pub value: f64,
    /// `at least 1Gbps`, `at most 5ms`, `between 1 and 2`.
    pub bounds: String,
    pub passed: bool,
    /// `file:line:column: expect[i].metric` of the `[[expect]]` table.
    pub location: String,
}

impl ExpectResult {
    /// `flows.voice.latency_ns.p99 = 5100000, expected at most 5ms (5000000)`.
    pub fn message(&self) -> String {
        format!(
            "{} = {}, expected {}",
            self.metric,
            fmt_value(self.value),
            self.bounds
        )
    }
}

fn bound_text(b: &crate::scenario::Bound) -> String {
    let v = fmt_value(b.value);
    if b.text == v {
        v
    } else {
        format!("{} ({v})", b.text)
    }
}

fn bounds(e: &ExpectConfig) -> String {
    match (&e.min, &e.max) {
        (Some(lo), Some(hi)) => format!("between {} and {}", bound_text(lo), bound_text(hi)),
        (Some(lo), None) => format!("at least {}", bound_text(lo)),
        (None, Some(hi)) => format!("at most {}", bound_text(hi)),
        (None, None) => "anything".into(),
    }
}

/// Applies every expectation of `cfg` to the run's metrics. A metric path
/// (or glob) that matches nothing is an error naming the `[[expect]]`.
pub fn evaluate(cfg: &Config, metrics: &Metrics) -> Result<Vec<ExpectResult>, CheckError> {
    let mut out = Vec::new();
    for e in &cfg.expect {
        let matched: Vec<(&String, f64)> = metrics
            .iter()
            .filter(|(k, _)| glob_match(&e.metric, k))
            .map(|(k, v)| (k, *v))
            .collect();
        if matched.is_empty() {
            return Err(CheckError::UnknownMetric {
                location: e.location.clone(),
                metric: e.metric.clone(),
                hint: suggest(&e.metric, metrics.keys())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default(),
            });
        }
        let text = bounds(e);
        for (name, value) in matched {
            let passed = e.min.as_ref().is_none_or(|lo| value >= lo.value)
                && e.max.as_ref().is_none_or(|hi| value <= hi.value);
            out.push(ExpectResult {
                metric: name.clone(),
                value,
                bounds: text.clone(),
                passed,
                location: e.location.clone(),
            });
        }
    }
    Ok(out)
}

/// The lines `run --check` and `check` print for expectations: failures
/// always, passes when `verbose`.
pub fn render(results: &[ExpectResult], verbose: bool) -> String {
    let mut s = String::new();
    for r in results.iter().filter(|r| verbose || !r.passed) {
        let verdict = if r.passed { "ok  " } else { "FAIL" };
        s += &format!("  {verdict} expect {}  [{}]\n", r.message(), r.location);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario;

    const BASE: &str = r#"
name = "t"
duration = "1s"
[onprem]
prefixes = ["192.168.0.0/16"]
[azure]
prefixes = ["10.1.0.0/16"]
[circuit]
bandwidth = "1Gbps"
[gateway]
sku = "ErGw2Az"
[[flows]]
name = "voice"
kind = "udp-cbr"
from = "192.168.2.20"
to = "10.1.0.20"
rate = "80kbps"
"#;

    fn cfg(extra: &str) -> Result<Config, String> {
        scenario::parse("t.toml", &format!("{BASE}{extra}")).map_err(|e| e.to_string())
    }

    fn metrics() -> Metrics {
        [
            ("flows.voice.latency_ns.p99", 2_100_000.0),
            ("flows.voice.latency_ns.p50", 2_000_000.0),
            ("flows.voice.throughput_bps", 80_000.0),
            ("links.primary.in.utilization", 0.05),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect()
    }

    #[test]
    fn bounds_with_units_pass_and_fail() {
        let c = cfg(r#"
[[expect]]
metric = "flows.voice.latency_ns.p99"
max = "5ms"
[[expect]]
metric = "flows.voice.throughput_bps"
min = "100kbps"
[[expect]]
metric = "links.primary.in.utilization"
min = 0
max = "4%"
[[expect]]
metric = "flows.*.latency_ns.p*"
min = "2.05ms"
"#)
        .unwrap();
        let r = evaluate(&c, &metrics()).unwrap();
        let v: Vec<(&str, bool)> = r.iter().map(|r| (r.metric.as_str(), r.passed)).collect();
        assert_eq!(
            v,
            [
                ("flows.voice.latency_ns.p99", true),
                ("flows.voice.throughput_bps", false),
                ("links.primary.in.utilization", false),
                ("flows.voice.latency_ns.p50", false),
                ("flows.voice.latency_ns.p99", true),
            ]
        );
        assert_eq!(r[0].bounds, "at most 5ms (5000000)");
        assert_eq!(
            r[1].message(),
            "flows.voice.throughput_bps = 80000, expected at least 100kbps (100000)"
        );
        assert_eq!(r[2].bounds, "between 0 and 4% (0.04)");
        assert!(r[1].location.starts_with("t.toml:"), "{}", r[1].location);
        let text = render(&r, false);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert_eq!(render(&r, true).lines().count(), 5);
    }

    #[test]
    fn unknown_metric_names_the_expect_table() {
        let c = cfg("[[expect]]\nmetric = \"flows.voice.latency_ns.p98\"\nmax = 1\n").unwrap();
        let e = evaluate(&c, &metrics()).unwrap_err().to_string();
        assert!(e.starts_with("t.toml:"), "{e}");
        assert!(e.contains("expect[0].metric"), "{e}");
        assert!(
            e.contains("did you mean `flows.voice.latency_ns.p99`"),
            "{e}"
        );
    }

    #[test]
    fn static_validation_at_load() {
        let err = |extra: &str| cfg(extra).unwrap_err();
        let e = err("[[expect]]\nmetric = \"flows.video.latency_ns.p99\"\nmax = \"5ms\"\n");
        assert!(
            e.contains("expect[0].metric") && e.contains("unknown flow `video`"),
            "{e}"
        );
        let e = err("[[expect]]\nmetric = \"links.vpn.in.tx_packets\"\nmax = 1\n");
        assert!(e.contains("unknown link `vpn`"), "{e}");
        let e = err("[[expect]]\nmetric = \"links.primary.up.tx_packets\"\nmax = 1\n");
        assert!(e.contains("unknown direction `up`"), "{e}");
        let e = err("[[expect]]\nmetric = \"flows.voice.drops.policr\"\nmax = 0\n");
        assert!(e.contains("unknown drop cause `policr`"), "{e}");
        let e = err("[[expect]]\nmetric = \"engine.hops\"\nmax = 1\n");
        assert!(e.contains("cannot be expected"), "{e}");
        let e = err("[[expect]]\nmetric = \"flow.voice\"\nmax = 1\n");
        assert!(e.contains("unknown metric group `flow`"), "{e}");
        let e = err("[[expect]]\nmetric = \"flows.voice.latency_ns.p99\"\n");
        assert!(e.contains("needs `min`, `max`"), "{e}");
        let e = err("[[expect]]\nmetric = \"flows.voice.latency_ns.p99\"\nmax = \"5 parsecs\"\n");
        assert!(
            e.contains("expect[0].max") && e.contains("5 parsecs"),
            "{e}"
        );
        let e = err(
            "[[expect]]\nmetric = \"flows.voice.latency_ns.p99\"\nmin = \"2ms\"\nmax = \"1ms\"\n",
        );
        assert!(e.contains("min 2ms is above max 1ms"), "{e}");
        let e = err("[[expect]]\nmetric = \"flows.voice.latency_ns.p99\"\nmax = 1\nmaxx = 2\n");
        assert!(e.contains("maxx"), "{e}");
    }

    #[test]
    fn check_table_tolerances_parse() {
        use crate::scenario::Tolerance;
        let c = cfg(r#"
[check]
tolerance = { "flows.*.latency_ns.p99" = "1%", "links.primary.in.tx_packets" = 10, "flows.voice.latency_ns.max" = "2us", "a.b" = 0.5 }
"#)
        .unwrap();
        let t = &c.check.tolerance;
        assert!(t.contains(&("flows.*.latency_ns.p99".into(), Tolerance::Relative(0.01))));
        assert!(t.contains(&(
            "links.primary.in.tx_packets".into(),
            Tolerance::Absolute(10.0)
        )));
        assert!(t.contains(&(
            "flows.voice.latency_ns.max".into(),
            Tolerance::Absolute(2000.0)
        )));
        assert!(t.contains(&("a.b".into(), Tolerance::Absolute(0.5))));
        let e = cfg("[check]\ntolerance = { \"a\" = \"fast\" }\n").unwrap_err();
        assert!(
            e.contains("check.tolerance.a") && e.contains("not a tolerance"),
            "{e}"
        );
        let e = cfg("[check]\ntolerance = { \"a\" = -1 }\n").unwrap_err();
        assert!(e.contains("at least zero"), "{e}");
        let e = cfg("[check]\ntolerance = { flows.voice = 1 }\n").unwrap_err();
        // An unquoted dotted key is a nested table: the error names it.
        assert!(e.contains("check.tolerance.flows"), "{e}");
        let e = cfg("[check]\ntolerance = { \"flows..x\" = 1 }\n").unwrap_err();
        assert!(e.contains("empty segment"), "{e}");
        let e = cfg("[check]\ntolerances = 1\n").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }
}
