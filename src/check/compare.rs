//! Comparing a run's metrics with a baseline: which tolerance applies to a
//! metric, and the verdict for each.

use super::flatten::{fmt_value, glob_match, specificity, Metrics, SPEED_METRIC};
use crate::scenario::Tolerance;

/// Default relative tolerance of the engine speed (`--speed-tolerance`).
pub const DEFAULT_SPEED_TOLERANCE: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within tolerance.
    Pass,
    /// Outside tolerance.
    Fail,
    /// In the baseline, not in the run.
    Missing,
    /// In the run, not in the baseline.
    New,
}

impl Verdict {
    pub fn passed(self) -> bool {
        self == Verdict::Pass
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "ok",
            Verdict::Fail => "FAIL",
            Verdict::Missing => "MISSING",
            Verdict::New => "NEW",
        }
    }
}

/// One metric compared.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricResult {
    pub metric: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// What was allowed, as printed (`exact`, `±1%`, `±10`, `-50%`).
    pub tolerance: String,
    pub verdict: Verdict,
}

impl MetricResult {
    /// `current - baseline`, with the relative change when it means something.
    pub fn difference(&self) -> String {
        match (self.baseline, self.current) {
            (Some(b), Some(c)) => {
                let d = c - b;
                let abs = if d > 0.0 {
                    format!("+{}", fmt_value(d))
                } else {
                    fmt_value(d)
                };
                if d != 0.0 && b != 0.0 {
                    format!("{abs} ({:+.2}%)", d / b.abs() * 100.0)
                } else {
                    abs
                }
            }
            _ => "-".into(),
        }
    }

    /// A one-line explanation of a failure, for JUnit.
    pub fn message(&self) -> String {
        let v = |x: Option<f64>| x.map_or_else(|| "-".into(), fmt_value);
        match self.verdict {
            Verdict::Missing => format!(
                "{} is in the baseline ({}) but not in this run",
                self.metric,
                v(self.baseline)
            ),
            Verdict::New => format!(
                "{} is in this run ({}) but not in the baseline",
                self.metric,
                v(self.current)
            ),
            _ => format!(
                "{}: baseline {}, current {}, difference {}, tolerance {}",
                self.metric,
                v(self.baseline),
                v(self.current),
                self.difference(),
                self.tolerance
            ),
        }
    }
}

/// Tolerances from the command line (consulted first) and from the
/// scenario's `[check]` table.
#[derive(Debug, Clone, Default)]
pub struct Tolerances {
    pub command_line: Vec<(String, Tolerance)>,
    pub scenario: Vec<(String, Tolerance)>,
}

impl Tolerances {
    /// The tolerance for `metric`: the most specific matching pattern from the
    /// command line, else from the scenario, else exact. On equal
    /// specificity the pattern given first wins.
    pub fn for_metric(&self, metric: &str) -> Tolerance {
        [&self.command_line, &self.scenario]
            .into_iter()
            .find_map(|list| {
                list.iter()
                    .filter(|(p, _)| glob_match(p, metric))
                    .fold(None, |best: Option<&(String, Tolerance)>, cur| match best {
                        Some(b) if specificity(&b.0) >= specificity(&cur.0) => Some(b),
                        _ => Some(cur),
                    })
                    .map(|(_, t)| *t)
            })
            .unwrap_or(Tolerance::EXACT)
    }
}

/// Whether `current` is within `tol` of `baseline`.
pub fn within(tol: Tolerance, baseline: f64, current: f64) -> bool {
    let d = (current - baseline).abs();
    match tol {
        Tolerance::Absolute(x) => d <= x,
        Tolerance::Relative(r) => d <= r * baseline.abs(),
    }
}

/// Every metric of the baseline and the run, by name.
pub fn compare(
    baseline: &Metrics,
    current: &Metrics,
    tolerances: &Tolerances,
) -> Vec<MetricResult> {
    let mut names: Vec<&String> = baseline.keys().chain(current.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let (b, c) = (baseline.get(name).copied(), current.get(name).copied());
            let tol = tolerances.for_metric(name);
            let verdict = match (b, c) {
                (Some(b), Some(c)) if within(tol, b, c) => Verdict::Pass,
                (Some(_), Some(_)) => Verdict::Fail,
                (Some(_), None) => Verdict::Missing,
                (None, _) => Verdict::New,
            };
            MetricResult {
                metric: name.clone(),
                baseline: b,
                current: c,
                tolerance: tol.to_string(),
                verdict,
            }
        })
        .collect()
}

/// The engine speed: fails only when the run is slower than the baseline by
/// more than `tolerance` (a fraction); faster is never a regression. A
/// baseline without a speed, or a run too short to time, is reported as
/// missing.
pub fn compare_speed(baseline: Option<f64>, current: Option<f64>, tolerance: f64) -> MetricResult {
    let verdict = match (baseline, current) {
        (Some(b), Some(c)) if c >= b * (1.0 - tolerance) => Verdict::Pass,
        (Some(_), Some(_)) => Verdict::Fail,
        (Some(_), None) => Verdict::Missing,
        (None, _) => Verdict::New,
    };
    MetricResult {
        metric: SPEED_METRIC.to_string(),
        baseline,
        current: current.map(f64::round),
        tolerance: format!("-{}%", tolerance * 100.0),
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(pairs: &[(&str, f64)]) -> Metrics {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn exact_by_default_and_verdicts_for_every_case() {
        let b = metrics(&[("a", 1.0), ("b", 2.0), ("gone", 3.0), ("u", 0.25)]);
        let c = metrics(&[("a", 1.0), ("b", 2.5), ("added", 4.0), ("u", 0.25)]);
        let r = compare(&b, &c, &Tolerances::default());
        let v: Vec<(&str, Verdict)> = r.iter().map(|r| (r.metric.as_str(), r.verdict)).collect();
        assert_eq!(
            v,
            [
                ("a", Verdict::Pass),
                ("added", Verdict::New),
                ("b", Verdict::Fail),
                ("gone", Verdict::Missing),
                ("u", Verdict::Pass)
            ]
        );
        assert_eq!(r[2].difference(), "+0.5 (+25.00%)");
        assert_eq!(r[2].tolerance, "exact");
        assert_eq!(r[1].difference(), "-");
        assert!(r[3].message().contains("not in this run"));
        assert!(r[1].message().contains("not in the baseline"));
    }

    #[test]
    fn absolute_and_relative_tolerances() {
        assert!(within(Tolerance::Absolute(10.0), 100.0, 110.0));
        assert!(!within(Tolerance::Absolute(10.0), 100.0, 110.5));
        assert!(within(Tolerance::Absolute(10.0), 100.0, 90.0));
        assert!(within(Tolerance::Relative(0.01), 1000.0, 1010.0));
        assert!(!within(Tolerance::Relative(0.01), 1000.0, 1011.0));
        assert!(within(Tolerance::Relative(0.01), -1000.0, -990.0));
        // Relative to zero allows nothing.
        assert!(!within(Tolerance::Relative(0.5), 0.0, 1.0));
        assert!(within(Tolerance::EXACT, 3.0, 3.0));
        assert!(!within(Tolerance::EXACT, 3.0, 3.000000001));
    }

    #[test]
    fn most_specific_pattern_wins_and_command_line_first() {
        let t = Tolerances {
            command_line: vec![(
                "links.primary.in.tx_packets".into(),
                Tolerance::Absolute(1.0),
            )],
            scenario: vec![
                ("flows.*.latency_ns.*".into(), Tolerance::Relative(0.05)),
                ("flows.*.latency_ns.p99".into(), Tolerance::Relative(0.01)),
                ("links.*.in.tx_packets".into(), Tolerance::Absolute(10.0)),
                ("**".into(), Tolerance::Absolute(2.0)),
            ],
        };
        assert_eq!(
            t.for_metric("flows.voice.latency_ns.p99"),
            Tolerance::Relative(0.01)
        );
        assert_eq!(
            t.for_metric("flows.voice.latency_ns.p50"),
            Tolerance::Relative(0.05)
        );
        assert_eq!(
            t.for_metric("links.primary.in.tx_packets"),
            Tolerance::Absolute(1.0)
        );
        assert_eq!(
            t.for_metric("links.secondary.in.tx_packets"),
            Tolerance::Absolute(10.0)
        );
        assert_eq!(t.for_metric("seed"), Tolerance::Absolute(2.0));
        assert_eq!(Tolerances::default().for_metric("seed"), Tolerance::EXACT);
        // Equal specificity: the first given wins.
        let tie = Tolerances {
            command_line: vec![],
            scenario: vec![
                ("a.*".into(), Tolerance::Absolute(1.0)),
                ("*.b".into(), Tolerance::Absolute(2.0)),
            ],
        };
        assert_eq!(tie.for_metric("a.b"), Tolerance::Absolute(1.0));
    }

    #[test]
    fn speed_fails_only_when_slower_than_the_tolerance() {
        // Injected values: no timing involved.
        assert_eq!(
            compare_speed(Some(1e6), Some(5e5), 0.5).verdict,
            Verdict::Pass
        );
        assert_eq!(
            compare_speed(Some(1e6), Some(4.99e5), 0.5).verdict,
            Verdict::Fail
        );
        assert_eq!(
            compare_speed(Some(1e6), Some(1e9), 0.5).verdict,
            Verdict::Pass
        );
        assert_eq!(
            compare_speed(Some(1e6), Some(8e5), 0.1).verdict,
            Verdict::Fail
        );
        assert_eq!(compare_speed(None, Some(1e6), 0.5).verdict, Verdict::New);
        assert_eq!(
            compare_speed(Some(1e6), None, 0.5).verdict,
            Verdict::Missing
        );
        let r = compare_speed(Some(1e6), Some(4e5), 0.5);
        assert_eq!(r.metric, "engine.hops_per_second");
        assert_eq!(r.tolerance, "-50%");
    }
}
