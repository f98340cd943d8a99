//! `eremu bench`: how fast the engine runs a scenario, on one thread and on
//! several, without capture or with the whole run captured. Wall-clock time
//! is measured here, around whole runs; nothing inside the model reads a
//! clock.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::scenario::{Config, Snaplen};
use crate::OutputError;

/// What `eremu bench` captures while it measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CaptureMode {
    /// Nothing: the engine alone, no file written.
    #[default]
    None,
    /// Every tap for the whole run, frames cut to 128 bytes (headers and the
    /// start of the payload).
    Headers,
    /// Every tap for the whole run, whole frames.
    Full,
}

impl CaptureMode {
    /// `cfg` capturing every tap and flow for its whole run as this mode
    /// says; `None` for [`CaptureMode::None`].
    pub fn apply(self, cfg: &Config) -> Option<Config> {
        let snaplen = match self {
            CaptureMode::None => return None,
            CaptureMode::Headers => Snaplen::Bytes(128),
            // The largest snap length a scenario may ask for: never cuts.
            CaptureMode::Full => Snaplen::Bytes(262_144),
        };
        let mut cfg = cfg.clone();
        cfg.capture_everything(snaplen);
        Some(cfg)
    }
}

/// One measurement: the fastest of `repeat` runs.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub threads: usize,
    pub wall_seconds: f64,
    pub hops: u64,
    pub events: u64,
    pub packets: u64,
    /// With a capture: the fastest of the same runs writing their outputs
    /// without the capture, and the bytes of the capture.
    pub baseline_seconds: Option<f64>,
    pub capture_bytes: u64,
}

impl Measurement {
    pub fn hops_per_second(&self) -> f64 {
        self.hops as f64 / self.wall_seconds
    }
}

#[derive(Debug, Clone)]
pub struct BenchResult {
    pub scenario: String,
    pub simulated_seconds: f64,
    pub capture: CaptureMode,
    pub runs: Vec<Measurement>,
    /// Peak resident memory of this process (VmHWM), in bytes, if known.
    pub peak_rss: Option<u64>,
    /// Whether every measurement produced the same report.
    pub identical: bool,
}

/// Peak resident set size of this process, from `/proc/self/status`.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Keeps the faster of two measurements.
fn keep_best(best: &mut Option<Measurement>, m: Measurement) {
    if best
        .as_ref()
        .is_none_or(|b| m.wall_seconds < b.wall_seconds)
    {
        *best = Some(m);
    }
}

/// A temporary output directory for captured runs, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One run writing its outputs into `dir` (emptied afterwards); its
/// measurement and its report without timings.
fn timed_run(
    cfg: &Config,
    dir: &Path,
    capture: bool,
    threads: usize,
) -> Result<(Measurement, String), OutputError> {
    let started = Instant::now();
    let r = crate::run(cfg, dir, capture, threads)?;
    let wall = started.elapsed().as_secs_f64();
    let capture_bytes = r.capture.as_ref().map_or(0, |c| {
        c.files
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum()
    });
    let _ = std::fs::remove_dir_all(dir);
    let m = Measurement {
        threads,
        wall_seconds: wall,
        hops: r.engine.hops,
        events: r.engine.events,
        packets: r.engine.packets,
        baseline_seconds: None,
        capture_bytes,
    };
    Ok((m, r.to_json(true)))
}

/// Measures the scenario on 1 thread and, if more, on `threads`. With a
/// capture, each thread count is measured twice, runs alternating: writing
/// the outputs without the capture (the baseline), and with it; the
/// capture goes to a temporary directory, removed after each run.
pub fn run(
    cfg: &Config,
    threads: usize,
    repeat: u32,
    capture: CaptureMode,
    halves: bool,
) -> Result<BenchResult, OutputError> {
    // At least one run per measurement (the command line refuses 0).
    let repeat = repeat.max(1);
    let mut counts = vec![1];
    if threads > 1 {
        counts.push(threads);
    }
    let captured = capture.apply(cfg);
    let scratch = Scratch(std::env::temp_dir().join(format!("eremu-bench-{}", std::process::id())));
    let mut runs = vec![];
    let mut reports = vec![];
    for &t in &counts {
        let mut best: Option<Measurement> = None;
        let mut baseline: Option<Measurement> = None;
        for _ in 0..repeat {
            match &captured {
                None => {
                    let started = Instant::now();
                    let r = crate::simulate_threads(cfg, t, halves);
                    let wall = started.elapsed().as_secs_f64();
                    keep_best(
                        &mut best,
                        Measurement {
                            threads: t,
                            wall_seconds: wall,
                            hops: r.engine.hops,
                            events: r.engine.events,
                            packets: r.engine.packets,
                            baseline_seconds: None,
                            capture_bytes: 0,
                        },
                    );
                    reports.push(r.to_json(true));
                }
                Some(with) => {
                    let (m, _) = timed_run(cfg, &scratch.0, false, t)?;
                    keep_best(&mut baseline, m);
                    let (m, report) = timed_run(with, &scratch.0, true, t)?;
                    keep_best(&mut best, m);
                    reports.push(report);
                }
            }
        }
        runs.extend(best.map(|mut m| {
            m.baseline_seconds = baseline.map(|b| b.wall_seconds);
            m
        }));
    }
    Ok(BenchResult {
        scenario: cfg.name.clone(),
        simulated_seconds: cfg.duration.as_secs_f64(),
        capture,
        runs,
        peak_rss: peak_rss(),
        identical: reports.windows(2).all(|w| w[0] == w[1]),
    })
}

impl BenchResult {
    pub fn render(&self) -> String {
        let mut s = String::new();
        let what = match self.capture {
            CaptureMode::None => "no capture",
            CaptureMode::Headers => "whole run captured, snaplen 128",
            CaptureMode::Full => "whole run captured, whole frames",
        };
        let _ = writeln!(
            s,
            "bench {} ({} s simulated, {what})",
            self.scenario, self.simulated_seconds
        );
        let _ = writeln!(
            s,
            "  {:>7} {:>10} {:>16} {:>14} {:>14} {:>9}",
            "threads", "wall s", "M hops/s", "sim s/wall s", "M events/s", "speedup"
        );
        let base = self.runs.first().map_or(1.0, |r| r.wall_seconds);
        for r in &self.runs {
            let _ = writeln!(
                s,
                "  {:>7} {:>10.4} {:>16.2} {:>14.2} {:>14.2} {:>8.2}x",
                r.threads,
                r.wall_seconds,
                r.hops_per_second() / 1e6,
                self.simulated_seconds / r.wall_seconds,
                r.events as f64 / r.wall_seconds / 1e6,
                base / r.wall_seconds
            );
        }
        if self.capture != CaptureMode::None {
            let _ = writeln!(
                s,
                "  capture cost (same run writing its outputs without the capture):"
            );
            let _ = writeln!(
                s,
                "  {:>7} {:>12} {:>10} {:>8} {:>12} {:>10}",
                "threads", "without s", "with s", "ratio", "capture MB", "MB/s"
            );
            for r in &self.runs {
                let without = r.baseline_seconds.unwrap_or(f64::NAN);
                let _ = writeln!(
                    s,
                    "  {:>7} {:>12.4} {:>10.4} {:>7.2}x {:>12.1} {:>10.0}",
                    r.threads,
                    without,
                    r.wall_seconds,
                    r.wall_seconds / without,
                    r.capture_bytes as f64 / 1e6,
                    r.capture_bytes as f64 / 1e6 / r.wall_seconds
                );
            }
        }
        if let Some(p) = self.peak_rss {
            let _ = writeln!(s, "  peak memory (VmHWM): {:.1} MB", p as f64 / 1e6);
        }
        let _ = writeln!(
            s,
            "  reports identical across runs and thread counts: {}",
            if self.identical { "yes" } else { "NO" }
        );
        s
    }
}
