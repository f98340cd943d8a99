//! Regression checks: `eremu baseline` records a scenario's metrics,
//! `eremu check` reruns it and compares, and `[[expect]]` tables assert on
//! metrics without a baseline.
//!
//! - [`flatten`]: the report as `metric path -> number`, and `*` globs.
//! - [`baseline`]: the baseline file (`<scenario name>.json`).
//! - [`compare`]: tolerances and verdicts.
//! - [`expect`]: `[[expect]]` assertions.
//! - [`junit`]: JUnit XML for CI.
//!
//! Simulated metrics are deterministic, so the default tolerance is exact;
//! the engine speed is compared only when asked, and never wall time.

pub mod baseline;
pub mod compare;
pub mod expect;
pub mod flatten;
pub mod junit;

use std::path::{Path, PathBuf};

use baseline::Baseline;
use compare::{MetricResult, Tolerances};
use expect::ExpectResult;
use flatten::fmt_value;

use crate::scenario::{self, ScenarioError, Tolerance};

/// Why a scenario could not be checked (exit status 2), as opposed to a
/// regression (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Output(#[from] crate::OutputError),
    #[error("no baseline for scenario `{scenario}` ({}): {} does not exist; record it with `eremu baseline {} --out {}`", scenario_file.display(), path.display(), scenario_file.display(), dir.display())]
    MissingBaseline {
        scenario: String,
        scenario_file: PathBuf,
        path: PathBuf,
        dir: PathBuf,
    },
    #[error("{}: not a valid eremu baseline: {message} (re-record it with `eremu baseline`)", path.display())]
    CorruptBaseline { path: PathBuf, message: String },
    #[error("baseline {} was recorded from a different scenario file (sha256 {recorded}, {} now has {current}); re-record with `eremu baseline {} --out {}`, or pass --allow-changed-scenario to compare anyway", baseline.display(), scenario_file.display(), scenario_file.display(), dir.display())]
    ChangedScenario {
        baseline: PathBuf,
        dir: PathBuf,
        scenario_file: PathBuf,
        recorded: String,
        current: String,
    },
    #[error("{location}: `{metric}` is not a metric of the report{hint}")]
    UnknownMetric {
        location: String,
        metric: String,
        hint: String,
    },
    #[error("{}: {metrics} metrics make the baseline larger than {} MiB, the most `eremu check` reads", path.display(), baseline::MAX_MIB)]
    TooLarge { path: PathBuf, metrics: usize },
    #[error("{} and {} both have the scenario name `{name}`, so their baselines would be the same file", first.display(), second.display())]
    DuplicateName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
}

/// Reads and validates a scenario file, keeping its bytes for the hash.
fn load(path: &Path) -> Result<(scenario::Config, Vec<u8>), CheckError> {
    let bytes = std::fs::read(path).map_err(|source| CheckError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = path.display().to_string();
    let text = String::from_utf8_lossy(&bytes);
    let cfg = scenario::parse(&file, &text)?;
    Ok((cfg, bytes))
}

/// A recorded baseline.
#[derive(Debug)]
pub struct Recorded {
    pub scenario_file: PathBuf,
    pub baseline_file: PathBuf,
    pub metrics: usize,
}

/// Runs each scenario and writes `<out>/<scenario name>.json`. Scenarios
/// that share a name are refused (their baselines would collide): then
/// nothing is run or written, and the result holds the errors alone.
pub fn record(paths: &[PathBuf], out: &Path) -> Vec<Result<Recorded, CheckError>> {
    let loaded: Vec<_> = paths.iter().map(|p| (p, load(p))).collect();
    let mut seen: Vec<(&str, &PathBuf)> = Vec::new();
    let mut duplicates = Vec::new();
    for (path, l) in &loaded {
        let Ok((cfg, _)) = l else { continue };
        match seen.iter().find(|(n, _)| *n == cfg.name) {
            Some((_, first)) => duplicates.push(CheckError::DuplicateName {
                name: cfg.name.clone(),
                first: first.to_path_buf(),
                second: path.to_path_buf(),
            }),
            None => seen.push((&cfg.name, path)),
        }
    }
    if !duplicates.is_empty() {
        let failed = loaded.into_iter().filter_map(|(_, l)| l.err());
        return failed.chain(duplicates).map(Err).collect();
    }
    loaded
        .into_iter()
        .map(|(path, l)| {
            let (cfg, bytes) = l?;
            let report = crate::simulate(&cfg);
            let metrics = flatten::flatten(&report);
            let b = Baseline::new(&cfg.name, path, &bytes, &metrics, flatten::speed(&report));
            let baseline_file = b.write(out)?;
            Ok(Recorded {
                scenario_file: path.clone(),
                baseline_file,
                metrics: metrics.len(),
            })
        })
        .collect()
}

/// What `eremu check` does besides `[[expect]]`.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Compare with `<dir>/<scenario name>.json`.
    pub baseline_dir: Option<PathBuf>,
    /// `--tolerance METRIC=VALUE`, consulted before the scenario's `[check]`.
    pub tolerances: Vec<(String, Tolerance)>,
    /// `--speed`: compare the engine speed with this relative tolerance.
    pub speed_tolerance: Option<f64>,
    /// Compare even when the scenario file differs from the one recorded
    /// (a deliberate change), with a warning instead of an error.
    pub allow_changed_scenario: bool,
}

/// The outcome for one scenario file.
#[derive(Debug)]
pub struct ScenarioCheck {
    pub file: PathBuf,
    /// The scenario's name, or the file's stem when it could not be read.
    pub name: String,
    pub baseline_file: Option<PathBuf>,
    pub warnings: Vec<String>,
    /// Set when the scenario could not be checked.
    pub error: Option<CheckError>,
    pub metrics: Vec<MetricResult>,
    pub expects: Vec<ExpectResult>,
}

impl ScenarioCheck {
    pub fn failed_metrics(&self) -> usize {
        self.metrics.iter().filter(|m| !m.verdict.passed()).count()
    }
    pub fn failed_expects(&self) -> usize {
        self.expects.iter().filter(|e| !e.passed).count()
    }
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.failed_metrics() == 0 && self.failed_expects() == 0
    }
}

/// Checks one scenario file against its baseline (if `opts` names a
/// directory) and its own `[[expect]]` tables.
pub fn check_one(path: &Path, opts: &CheckOptions) -> ScenarioCheck {
    let mut sc = ScenarioCheck {
        file: path.to_path_buf(),
        name: path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        ),
        baseline_file: None,
        warnings: Vec::new(),
        error: None,
        metrics: Vec::new(),
        expects: Vec::new(),
    };
    if let Err(e) = check_into(&mut sc, path, opts) {
        sc.error = Some(e);
    }
    sc
}

fn check_into(sc: &mut ScenarioCheck, path: &Path, opts: &CheckOptions) -> Result<(), CheckError> {
    let (cfg, bytes) = load(path)?;
    sc.name = cfg.name.clone();
    let baseline = match &opts.baseline_dir {
        None => None,
        Some(dir) => {
            let b = Baseline::load(dir, &cfg.name, path)?;
            let file = baseline::path_for(dir, &cfg.name);
            let current = baseline::sha256_hex(&bytes);
            if b.scenario_sha256 != current {
                if !opts.allow_changed_scenario {
                    return Err(CheckError::ChangedScenario {
                        baseline: file,
                        dir: dir.clone(),
                        scenario_file: path.to_path_buf(),
                        recorded: b.scenario_sha256,
                        current,
                    });
                }
                sc.warnings.push(format!(
                    "the scenario file changed since baseline {} was recorded (sha256 {} now {current}); comparing anyway (--allow-changed-scenario)",
                    file.display(),
                    b.scenario_sha256
                ));
            }
            if b.eremu_version != env!("CARGO_PKG_VERSION") {
                sc.warnings.push(format!(
                    "baseline {} was recorded by eremu {}, this is {}",
                    file.display(),
                    b.eremu_version,
                    env!("CARGO_PKG_VERSION")
                ));
            }
            sc.baseline_file = Some(file);
            Some(b)
        }
    };
    let report = crate::simulate(&cfg);
    let metrics = flatten::flatten(&report);
    if let Some(b) = baseline {
        let tolerances = Tolerances {
            command_line: opts.tolerances.clone(),
            scenario: cfg.check.tolerance.clone(),
        };
        sc.metrics = compare::compare(&b.metric_values(), &metrics, &tolerances);
        if let Some(tol) = opts.speed_tolerance {
            sc.metrics.push(compare::compare_speed(
                b.speed_value(),
                flatten::speed(&report),
                tol,
            ));
        }
    }
    sc.expects = expect::evaluate(&cfg, &metrics)?;
    Ok(())
}

/// Every scenario checked.
#[derive(Debug)]
pub struct CheckRun {
    pub scenarios: Vec<ScenarioCheck>,
}

impl CheckRun {
    pub fn run(paths: &[PathBuf], opts: &CheckOptions) -> CheckRun {
        CheckRun {
            scenarios: paths.iter().map(|p| check_one(p, opts)).collect(),
        }
    }

    /// 2 when a scenario could not be checked, else 1 on any regression or
    /// failed expectation, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.scenarios.iter().any(|s| s.error.is_some()) {
            2
        } else if self.scenarios.iter().all(ScenarioCheck::passed) {
            0
        } else {
            1
        }
    }

    /// The text `eremu check` prints: for each scenario a status line, then
    /// a table of the failing metrics (every metric when `verbose`) and the
    /// failing expectations, then a summary line.
    pub fn render(&self, verbose: bool) -> String {
        let mut s = String::new();
        for sc in &self.scenarios {
            s += &render_scenario(sc, verbose);
        }
        let count =
            |f: &dyn Fn(&ScenarioCheck) -> bool| self.scenarios.iter().filter(|s| f(s)).count();
        let metrics: usize = self.scenarios.iter().map(|s| s.metrics.len()).sum();
        let failed: usize = self
            .scenarios
            .iter()
            .map(ScenarioCheck::failed_metrics)
            .sum();
        let expects: usize = self.scenarios.iter().map(|s| s.expects.len()).sum();
        let failed_expects: usize = self
            .scenarios
            .iter()
            .map(ScenarioCheck::failed_expects)
            .sum();
        s += &format!(
            "check: {} scenarios: {} passed, {} failed, {} not checked; {failed} of {metrics} metrics and {failed_expects} of {expects} expectations failed\n",
            self.scenarios.len(),
            count(&|s| s.passed()),
            count(&|s| s.error.is_none() && !s.passed()),
            count(&|s| s.error.is_some()),
        );
        s
    }

    pub fn junit(&self) -> String {
        junit::render(&self.scenarios)
    }
}

fn render_scenario(sc: &ScenarioCheck, verbose: bool) -> String {
    let mut s = String::new();
    let head = format!("{} ({})", sc.name, sc.file.display());
    for w in &sc.warnings {
        s += &format!("{head}: warning: {w}\n");
    }
    if let Some(e) = &sc.error {
        return s + &format!("{head}: ERROR: {e}\n");
    }
    let against = sc.baseline_file.as_ref().map_or_else(
        || "no baseline".to_string(),
        |b| format!("baseline {}", b.display()),
    );
    let verdict = if sc.passed() { "ok" } else { "FAIL" };
    s += &format!(
        "{head}: {verdict}: {} of {} metrics differ from {against}; {} of {} expectations failed\n",
        sc.failed_metrics(),
        sc.metrics.len(),
        sc.failed_expects(),
        sc.expects.len()
    );
    let rows: Vec<[String; 6]> = sc
        .metrics
        .iter()
        .filter(|m| verbose || !m.verdict.passed())
        .map(|m| {
            let v = |x: Option<f64>| x.map_or_else(|| "-".into(), fmt_value);
            [
                m.metric.clone(),
                v(m.baseline),
                v(m.current),
                m.difference(),
                m.tolerance.clone(),
                m.verdict.as_str().to_string(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        let header = [
            "metric",
            "baseline",
            "current",
            "difference",
            "tolerance",
            "verdict",
        ]
        .map(String::from);
        let mut widths = [0usize; 6];
        for r in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for r in std::iter::once(&header).chain(&rows) {
            let line = format!(
                "  {:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
                w4 = widths[4],
            );
            s += line.trim_end();
            s += "\n";
        }
    }
    s += &expect::render(&sc.expects, verbose);
    s
}

/// Parses `--tolerance METRIC=VALUE` (VALUE as in `[check] tolerance`).
pub fn parse_tolerance_arg(arg: &str) -> Result<(String, Tolerance), String> {
    let (metric, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("`{arg}` is not METRIC=VALUE, such as flows.*.latency_ns.p99=1%"))?;
    let metric = metric.trim();
    if metric.is_empty() || metric.split('.').any(str::is_empty) {
        return Err(format!(
            "`{metric}` is not a metric path such as flows.voice.latency_ns.p99"
        ));
    }
    Ok((metric.to_string(), Tolerance::parse(value)?))
}

/// Parses `--speed-tolerance`: a percentage (`50%`) or fraction below 1.
pub fn parse_speed_tolerance(arg: &str) -> Result<f64, String> {
    match scenario::quantity(arg) {
        Ok(x) if (0.0..1.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "`{arg}` is not a slowdown tolerance such as 50% (0% up to below 100%)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_tolerances_parse() {
        assert_eq!(
            parse_tolerance_arg("flows.*.latency_ns.p99=1%").unwrap(),
            (
                "flows.*.latency_ns.p99".to_string(),
                Tolerance::Relative(0.01)
            )
        );
        assert_eq!(
            parse_tolerance_arg("links.primary.in.tx_packets=10")
                .unwrap()
                .1,
            Tolerance::Absolute(10.0)
        );
        assert_eq!(
            parse_tolerance_arg("x=2us").unwrap().1,
            Tolerance::Absolute(2000.0)
        );
        assert_eq!(
            parse_tolerance_arg("x=1Mbps").unwrap().1,
            Tolerance::Absolute(1e6)
        );
        assert!(parse_tolerance_arg("x").is_err());
        assert!(parse_tolerance_arg("=1").is_err());
        assert!(parse_tolerance_arg("a..b=1").is_err());
        assert!(parse_tolerance_arg("x=fast").is_err());
        assert!(parse_tolerance_arg("x=-3").is_err());
        assert_eq!(parse_speed_tolerance("50%").unwrap(), 0.5);
        assert_eq!(parse_speed_tolerance("0.25").unwrap(), 0.25);
        assert!(parse_speed_tolerance("100%").is_err());
        assert!(parse_speed_tolerance("-1%").is_err());
    }

    #[test]
    fn exit_codes_order_errors_before_failures() {
        let sc = |error: Option<CheckError>, verdict| ScenarioCheck {
            file: "s.toml".into(),
            name: "s".into(),
            baseline_file: None,
            warnings: vec![],
            error,
            metrics: vec![MetricResult {
                metric: "m".into(),
                baseline: Some(1.0),
                current: Some(1.0),
                tolerance: "exact".into(),
                verdict,
            }],
            expects: vec![],
        };
        use compare::Verdict::*;
        let run = |v: Vec<ScenarioCheck>| CheckRun { scenarios: v }.exit_code();
        assert_eq!(run(vec![sc(None, Pass)]), 0);
        assert_eq!(run(vec![sc(None, Pass), sc(None, New)]), 1);
        let err = || {
            Some(CheckError::CorruptBaseline {
                path: "x".into(),
                message: "y".into(),
            })
        };
        assert_eq!(run(vec![sc(None, Fail), sc(err(), Pass)]), 2);
    }
}
