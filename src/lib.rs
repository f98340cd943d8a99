//! eremu: a packet-level data-plane emulator for Azure ExpressRoute.
//!
//! # Layers
//!
//! Arrows point from user to used; none points back up.
//!
//! ```text
//! main.rs (CLI) ──> check ──> run, observe, scenario
//!    ├──────────> live, replay ──> ingress ──> engine, wire, observe
//!    │
//!    └──────────> run ──> engine ──> model ──> units
//!                    │        │          └────> wire
//!                    │        └──> traffic ──> model
//!                    ├──> observe (metrics implement model::Tap; report, summary)
//!                    └──> scenario ──> units
//! ```
//!
//! - [`units`]: typed integer quantities (`SimTime`, `SimDuration`, `BitRate`,
//!   `ByteSize`, `Ratio`) and their exact parsing.
//! - [`scenario`]: the TOML format and the validated [`scenario::Config`],
//!   which cannot be changed into an invalid state (read through `Deref`;
//!   duration and seed overrides re-derive what depends on them), and the
//!   limits that keep every accepted scenario within bounded memory
//!   ([`scenario::limits`]).
//! - [`wire`]: frame formats and sizes; no simulation.
//! - [`model`]: pure state machines (link, policer, gateways, routing, the
//!   network that wires them); every call takes `now`, nothing reads a clock.
//! - [`traffic`]: sources, as state machines with `poll_transmit(now)`.
//! - [`engine`]: owns virtual time and the event queue; runs the logical
//!   processes (the directions, each in a sending and a receiving half) on
//!   worker threads.
//! - [`observe`]: metrics and time series (watching the network through
//!   `model::Tap`), `report.json`, the printed summary, and the views made of
//!   them (SVG plots, `report.html`, HdrHistogram files).
//! - [`check`]: regression checks: baselines, tolerances, `[[expect]]`, JUnit.
//! - [`ingress`]: real frames into the model: the classifier (one flow per
//!   5-tuple; ARP and neighbor discovery bridged; the rest counted by cause)
//!   and the driver that live mode and replay share.
//! - [`live`]: live mode: two interfaces (pnet), a wall clock driving the
//!   engine. The only module that reads a clock for the model's time.
//! - [`replay`]: the pcap/pcapng reader and `eremu replay`, in virtual time.
//! - [`outdir`]: a run's output directory, cleared of an earlier run's files.
//! - [`interrupt`]: SIGINT and SIGTERM stopping a run cleanly.

pub mod bench;
pub mod check;
pub mod engine;
pub mod ingress;
pub mod interrupt;
pub mod live;
pub mod model;
pub mod observe;
pub mod outdir;
pub mod replay;
pub mod scenario;
pub mod traffic;
pub mod units;
pub mod wire;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

pub use observe::Report;
pub use scenario::Config;

/// Errors writing the outputs of a run.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: is a file, not a directory")]
    NotADirectory(PathBuf),
}

/// Threads to use by default: the machine's cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs a validated scenario to its end on `threads` threads, without
/// capture, and returns its report. The report is the same for any number of
/// threads.
pub fn simulate_with(cfg: &Config, threads: usize) -> Report {
    simulate_threads(cfg, threads, false)
}

/// [`simulate_with`], with each direction in two halves when `halves`
/// (see `eremu run --halves`). The report is the same either way.
pub fn simulate_threads(cfg: &Config, threads: usize, halves: bool) -> Report {
    let started = std::time::Instant::now();
    let run = engine::run_partitioned(cfg, threads, halves, None, &mut |_, _| {
        ControlFlow::Continue(())
    });
    Report::build(cfg, &run.outcome, started.elapsed().as_secs_f64())
}

/// [`simulate_with`] on one thread.
pub fn simulate(cfg: &Config) -> Report {
    simulate_with(cfg, 1)
}

/// Runs a scenario and writes everything it produces into `dir`:
/// `report.json`, and unless `capture` is false (or the scenario disables it)
/// the pcapng capture and, with a VPN, the `esp_sa` file Wireshark decrypts
/// the tunnel with. Every file appears under its final name only when
/// complete; what an earlier run wrote into `dir` is removed first
/// ([`outdir`]). Outputs are byte-identical for any number of `threads`.
pub fn run(cfg: &Config, dir: &Path, capture: bool, threads: usize) -> Result<Report, OutputError> {
    run_with_progress(cfg, dir, capture, threads, false, &mut |_| {})
}

/// How far a run is, given to the progress callback between windows.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Virtual time simulated so far.
    pub now: units::SimTime,
    /// The scenario's end.
    pub end: units::SimTime,
    /// Packets the sources have sent so far.
    pub packets: u64,
}

/// [`run`], calling `progress` between windows of the run, with each
/// direction in two halves when `halves` (and no capture). The callback
/// only watches: the results are the same with and without it, and with
/// and without halves.
pub fn run_with_progress(
    cfg: &Config,
    dir: &Path,
    capture: bool,
    threads: usize,
    halves: bool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Report, OutputError> {
    run_stoppable(cfg, dir, capture, threads, halves, &mut |p| {
        progress(p);
        ControlFlow::Continue(())
    })
}

/// [`run_with_progress`], where `progress` may return `Break` to stop the
/// run before the scenario's end (Ctrl-C): the run then ends at the end of
/// the next window of the engine, the same virtual time for any number of
/// threads (with halves, the first hundredth of the run that no half has
/// passed). Its outputs are complete for the time simulated, as if the
/// scenario ended there, and the report says it was interrupted
/// ([`Report::interrupted`]). No temporary file is left in `dir`, whatever
/// the outcome.
pub fn run_stoppable(
    cfg: &Config,
    dir: &Path,
    capture: bool,
    threads: usize,
    halves: bool,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Report, OutputError> {
    outdir::prepare(dir)?;
    let result = (|| {
        let started = std::time::Instant::now();
        let cap = if capture {
            observe::capture::CaptureWriter::start(cfg, dir, engine::processes(cfg).len())?
        } else {
            None
        };
        let (writer, sinks) = match cap {
            Some((w, s)) => (Some(w), Some(s)),
            None => (None, None),
        };
        let end = units::SimTime::ZERO + cfg.duration;
        let run = engine::run_partitioned(cfg, threads, halves, sinks, &mut |now, packets| {
            progress(&Progress { now, end, packets })
        });
        let Some(at) = run.stopped else {
            return finish_with(
                cfg,
                dir,
                &run.outcome,
                (writer, run.frames),
                started,
                |_| {},
            );
        };
        let cut = cfg.ended_at(at);
        let capture = (writer, run.frames);
        finish_with(&cut, dir, &run.outcome, capture, started, |r| {
            r.mark_interrupted(cfg.duration)
        })
    })();
    let cleaned = outdir::remove_partials(dir);
    let report = result?;
    cleaned?;
    Ok(report)
}

/// The end of every run: closes the capture (its writer and frames per
/// tap), builds the report, lets `mark` complete it (real frames' ingress
/// books, an interruption), and writes `report.json`, `esp_sa` and the
/// views into `dir`.
pub(crate) fn finish_with(
    cfg: &Config,
    dir: &Path,
    outcome: &engine::Outcome,
    capture: (Option<observe::capture::CaptureWriter>, Option<[u64; 6]>),
    started: std::time::Instant,
    mark: impl FnOnce(&mut Report),
) -> Result<Report, OutputError> {
    let summary = match capture {
        (Some(w), Some(f)) => Some(w.finish(f)?),
        _ => None,
    };
    let mut report = Report::build(cfg, outcome, started.elapsed().as_secs_f64());
    report.capture = summary;
    mark(&mut report);
    if report.capture.is_some() {
        if let Some(vpn) = &cfg.vpn {
            write_atomically(&dir.join("esp_sa"), observe::esp_sa::render(vpn).as_bytes())?;
        }
    }
    write_report(&report, dir)?;
    write_views(cfg, &report, outcome, dir)?;
    Ok(report)
}

/// Writes what people look at: `timeseries.csv`, `plots/*.svg`,
/// `report.html`, and per flow `latency/<flow>.hgrm` and `.hlog`.
fn write_views(
    cfg: &Config,
    report: &Report,
    outcome: &engine::Outcome,
    dir: &Path,
) -> Result<(), OutputError> {
    let ts = &outcome.timeseries;
    let metrics = &outcome.metrics;
    write_atomically(&dir.join("timeseries.csv"), ts.to_csv().as_bytes())?;
    let latency_dir = dir.join("latency");
    create_dir(&latency_dir)?;
    for (f, name) in ts.flow_names().iter().enumerate() {
        let stem = observe::hdr::file_stem(name);
        let hist = metrics.flows[f].latency.histogram();
        let hgrm = observe::hdr::percentile_distribution(&hist, observe::hdr::HGRM_SCALING_RATIO);
        write_atomically(&latency_dir.join(format!("{stem}.hgrm")), hgrm.as_bytes())?;
        let path = latency_dir.join(format!("{stem}.hlog"));
        let log = observe::hdr::interval_log(ts, f, &report.scenario).map_err(|source| {
            OutputError::Io {
                path: path.clone(),
                source,
            }
        })?;
        write_atomically(&path, &log)?;
    }
    let flow_latency: Vec<(&str, &observe::metrics::Latency)> = ts
        .flow_names()
        .iter()
        .zip(&metrics.flows)
        .map(|(n, f)| (n.as_str(), &f.latency))
        .collect();
    let plots_dir = dir.join("plots");
    let plots =
        observe::plots::render_all(report, ts, &flow_latency).map_err(|e| OutputError::Io {
            path: plots_dir.clone(),
            source: std::io::Error::other(e),
        })?;
    create_dir(&plots_dir)?;
    for (name, svg) in &plots {
        write_atomically(&plots_dir.join(name), svg.as_bytes())?;
    }
    let html = observe::html::render(cfg, report, ts.interval_ns(), &plots);
    write_atomically(&dir.join("report.html"), html.as_bytes())
}

fn create_dir(dir: &Path) -> Result<(), OutputError> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// so that a reader never sees a half-written file under the final name.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let err = |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Writes `report.json` into `dir`, creating it.
pub fn write_report(report: &Report, dir: &Path) -> Result<PathBuf, OutputError> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join("report.json");
    write_atomically(&path, report.to_json(false).as_bytes())?;
    Ok(path)
}
