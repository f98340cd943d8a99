//! The report as a flat map from metric path (`flows.voice.latency_ns.p99`)
//! to number, and the `*` globs that select metrics.
//!
//! Flattening walks the report's serde serialization, so a field added to
//! `Report` becomes a metric without a change here. Rules:
//!
//! - object keys and array indices are joined with `.`;
//! - every array also gives `<path>.count`, its length (`flows.app.outages.count`);
//! - strings and booleans are skipped, and so is `engine` (machine-dependent);
//! - a `drops` map below the top level lists every drop cause, absent ones as
//!   0, so that `flows.voice.drops.policer` exists whether or not it dropped.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::DropCause;
use crate::observe::Report;

/// Metric path to value.
pub type Metrics = BTreeMap<String, f64>;

/// The engine speed metric: hops (link traversals) per wall-clock second.
pub const SPEED_METRIC: &str = "engine.hops_per_second";

/// Every deterministic number of the report, by path.
pub fn flatten(report: &Report) -> Metrics {
    let value = serde_json::to_value(report).expect("report serializes");
    flatten_value(&value)
}

/// As [`flatten`], on the JSON form of a report.
pub fn flatten_value(value: &Value) -> Metrics {
    let mut out = Metrics::new();
    walk(value, "", &mut out);
    out
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn walk(value: &Value, path: &str, out: &mut Metrics) {
    match value {
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.insert(path.to_string(), x);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                if path.is_empty() && k == "engine" {
                    continue;
                }
                let sub = join(path, k);
                walk(v, &sub, out);
                if k == "drops" && !path.is_empty() && v.is_object() {
                    for cause in DropCause::ALL {
                        out.entry(join(&sub, cause.as_str())).or_insert(0.0);
                    }
                }
            }
        }
        Value::Array(items) => {
            out.insert(join(path, "count"), items.len() as f64);
            for (i, v) in items.iter().enumerate() {
                walk(v, &join(path, &i.to_string()), out);
            }
        }
        Value::String(_) | Value::Bool(_) | Value::Null => {}
    }
}

/// Hops per wall-clock second of a run, when the run took measurable time.
pub fn speed(report: &Report) -> Option<f64> {
    let s = report.engine.hops as f64 / report.engine.wall_seconds;
    (report.engine.wall_seconds > 0.0 && s.is_finite()).then_some(s)
}

/// Whether `path` matches `pattern`. Both are split on `.`; in a pattern
/// segment `*` matches any characters (none included) within one segment,
/// and a segment `**` matches any number of segments (none included).
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let s: Vec<&str> = path.split('.').collect();
    match_segments(&p, &s)
}

fn match_segments(p: &[&str], s: &[&str]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((&"**", rest)) => (0..=s.len()).any(|i| match_segments(rest, &s[i..])),
        Some((seg, rest)) => {
            !s.is_empty()
                && match_segment(seg.as_bytes(), s[0].as_bytes())
                && match_segments(rest, &s[1..])
        }
    }
}

/// `*` matches any run of bytes; everything else literally.
fn match_segment(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| match_segment(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && match_segment(rest, &s[1..]),
    }
}

/// How specific a pattern is: literal segments, then literal characters.
/// Among patterns that match a metric, the most specific wins.
pub fn specificity(pattern: &str) -> (usize, usize) {
    let literal_segments = pattern.split('.').filter(|s| !s.contains('*')).count();
    let literal_chars = pattern.chars().filter(|&c| c != '*' && c != '.').count();
    (literal_segments, literal_chars)
}

/// The metric name closest to `wanted`, for "did you mean" hints: among
/// those sharing the most leading segments with it, the nearest by edit
/// distance.
pub fn suggest<'a>(wanted: &str, metrics: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    let want: Vec<&str> = wanted.split('.').collect();
    metrics
        .map(|m| {
            let common = m
                .split('.')
                .zip(&want)
                .take_while(|(a, b)| glob_match(b, a))
                .count();
            (common, std::cmp::Reverse(edit_distance(wanted, m)), m)
        })
        .filter(|(c, _, _)| *c > 0)
        .max_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| b.2.cmp(a.2)))
        .map(|(_, _, m)| m.as_str())
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A value as the tables print it: integers without a fraction.
pub fn fmt_value(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_objects_arrays_and_skips_text_and_engine() {
        let v = json!({
            "scenario": "x",
            "seed": 3,
            "engine": {"wall_seconds": 0.5, "hops": 10},
            "flows": {"app": {
                "direction": "in",
                "latency_ns": {"p99": 1500},
                "drops": {"policer": 7},
                "outages": [{"start_ns": 1, "end_ns": 2, "lost_packets": 3}],
                "utilization": 0.25
            }},
            "drops": {"policer@primary.in": 7},
            "timeline": []
        });
        let m = flatten_value(&v);
        assert_eq!(m["seed"], 3.0);
        assert_eq!(m["flows.app.latency_ns.p99"], 1500.0);
        assert_eq!(m["flows.app.utilization"], 0.25);
        assert_eq!(m["flows.app.outages.count"], 1.0);
        assert_eq!(m["flows.app.outages.0.end_ns"], 2.0);
        assert_eq!(m["flows.app.outages.0.lost_packets"], 3.0);
        assert_eq!(m["flows.app.drops.policer"], 7.0);
        // Absent causes are zero below the top level, not at it.
        assert_eq!(m["flows.app.drops.queue"], 0.0);
        assert_eq!(m["flows.app.drops.vpn-gateway"], 0.0);
        assert_eq!(m["drops.policer@primary.in"], 7.0);
        assert!(!m.contains_key("drops.queue"));
        assert_eq!(m["timeline.count"], 0.0);
        assert!(!m.keys().any(|k| k.starts_with("engine")), "{m:?}");
        assert!(!m.contains_key("scenario") && !m.contains_key("flows.app.direction"));
    }

    #[test]
    fn globs_match_within_and_across_segments() {
        assert!(glob_match(
            "flows.*.latency_ns.p99",
            "flows.voice.latency_ns.p99"
        ));
        assert!(!glob_match(
            "flows.*.latency_ns.p99",
            "flows.voice.latency_ns.p999"
        ));
        assert!(!glob_match("flows.*", "flows.voice.latency_ns.p99"));
        assert!(glob_match(
            "flows.*.latency_ns.p9*",
            "flows.voice.latency_ns.p999"
        ));
        assert!(glob_match("links.*.in.tx_*", "links.primary.in.tx_packets"));
        assert!(glob_match("**.p99", "links.primary.in.latency_ns.p99"));
        assert!(glob_match("flows.**", "flows.a.outages.0.end_ns"));
        assert!(glob_match("**", "seed"));
        assert!(glob_match("drops.**", "drops.policer@primary.in"));
        assert!(!glob_match(
            "links.primary.in.tx_packets",
            "links.primary.in.tx_bytes"
        ));
        assert!(
            glob_match("a*b*c", "abbbc")
                && glob_match("a*b*c", "abc")
                && !glob_match("a*b*c", "acb")
        );
    }

    #[test]
    fn more_literal_patterns_are_more_specific() {
        assert!(specificity("flows.voice.latency_ns.p99") > specificity("flows.*.latency_ns.p99"));
        assert!(specificity("flows.*.latency_ns.p99") > specificity("flows.*.latency_ns.*"));
        assert!(specificity("flows.*.latency_ns.p9*") > specificity("flows.*.latency_ns.*"));
        assert!(specificity("flows.**") < specificity("flows.*.x"));
    }

    #[test]
    fn suggests_the_nearest_metric() {
        let names: Vec<String> = [
            "flows.voice.latency_ns.p99",
            "flows.voice.sent_packets",
            "links.primary.in.tx_bytes",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            suggest("flows.voice.latency_ns.p98", names.iter()),
            Some("flows.voice.latency_ns.p99")
        );
        assert_eq!(suggest("nothing.at.all", names.iter()), None);
        assert_eq!(
            suggest("flows.voice.sent_packet", names.iter()),
            Some("flows.voice.sent_packets")
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn values_print_as_integers_when_whole() {
        assert_eq!(fmt_value(1500.0), "1500");
        assert_eq!(fmt_value(-3.0), "-3");
        assert_eq!(fmt_value(0.25), "0.25");
    }
}
