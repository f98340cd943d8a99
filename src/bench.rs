//! `eremu bench`: how fast the engine runs a scenario, on one thread and on
//! several, without capture. Wall-clock time is measured here, around whole
//! runs; nothing inside the model reads a clock.

use std::fmt::Write;
use std::time::Instant;

use crate::scenario::Config;

/// One measurement: the fastest of `repeat` runs.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub threads: usize,
    pub wall_seconds: f64,
    pub hops: u64,
    pub events: u64,
    pub packets: u64,
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

/// Measures the scenario on 1 thread and, if more, on `threads`.
pub fn run(cfg: &Config, threads: usize, repeat: u32) -> BenchResult {
    let mut counts = vec![1];
    if threads > 1 {
        counts.push(threads);
    }
    let mut runs = vec![];
    let mut reports = vec![];
    for &t in &counts {
        let mut best: Option<Measurement> = None;
        for _ in 0..repeat {
            let started = Instant::now();
            let r = crate::simulate_with(cfg, t);
            let wall = started.elapsed().as_secs_f64();
            if best.as_ref().is_none_or(|b| wall < b.wall_seconds) {
                best = Some(Measurement {
                    threads: t,
                    wall_seconds: wall,
                    hops: r.engine.hops,
                    events: r.engine.events,
                    packets: r.engine.packets,
                });
            }
            reports.push(r.to_json(true));
        }
        runs.extend(best);
    }
    BenchResult {
        scenario: cfg.name.clone(),
        simulated_seconds: cfg.duration.as_secs_f64(),
        runs,
        peak_rss: peak_rss(),
        identical: reports.windows(2).all(|w| w[0] == w[1]),
    }
}

impl BenchResult {
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "bench {} ({} s simulated, no capture)",
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
