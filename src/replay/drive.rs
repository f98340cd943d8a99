//! `eremu replay`: the frames of a capture through a scenario's model, in
//! virtual time, keeping their original spacing (or scaled by `--speed`),
//! with the same code path as live mode ([`crate::ingress::Driver`]). The
//! report says per flow (5-tuple) what the circuit would have delivered,
//! dropped and delayed.
//!
//! Choices, as the README states them:
//! - The whole file is read once before the run, so that a corrupt or
//!   truncated capture is refused (with its byte offset) before any output
//!   is written, and so that the run's length is known: from the first
//!   frame (virtual time zero) to the last, divided by the speed, plus one
//!   second for the last frames to drain, unless `--duration` says.
//! - Frames cut by the capture's snap length are restored to their original
//!   length with zero bytes (counted as `snaplen-restored`), so that the
//!   model sees the sizes the network carried.
//! - Timestamps that go backwards (captures merged from several interfaces)
//!   are replayed at the time of the frame before (`reordered`).
//! - A record longer on the wire than any link carries ([`MAX_FRAME_LEN`])
//!   is dropped as `oversize`; the report gives the byte offset of the first
//!   (`ingress.first_drop_offsets`).
//! - Speeds are exact ratios from [`Speed::MIN`] to [`Speed::MAX`]; a
//!   capture whose span at its speed passes [`LONGEST`] is refused.
//! - A stop (SIGINT, SIGTERM) ends the run at the virtual time reached, with
//!   complete outputs; during the first reading of the capture, before any
//!   output, it is an error.
//! - The scenario's own flows run too, as background traffic.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::ingress::{Driver, DriverError};
use crate::scenario::Config;
use crate::units::{SimDuration, SimTime};
use crate::Report;

use super::reader::{CaptureReader, CapturedFrame, ReplayError};

/// Time the model runs after the last frame, for what is queued to arrive.
pub const DRAIN: SimDuration = SimDuration(1_000_000_000);

/// A replay rate: `2x` plays twice as fast as captured. Exact: a ratio of
/// integers, between [`Speed::MIN`] and [`Speed::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speed {
    num: u64,
    den: u64,
}

impl Speed {
    pub const REAL: Speed = Speed { num: 1, den: 1 };
    /// The slowest replay: a second of capture becomes 1000 s of virtual
    /// time (a 17-minute run per captured second), already far slower than
    /// any use of stretching a capture; slower is a typo for a faster speed.
    pub const MIN: Speed = Speed { num: 1, den: 1000 };
    /// The fastest replay: a second of capture in a millisecond. Frames
    /// closer than a nanosecond after scaling would all land on one instant.
    pub const MAX: Speed = Speed { num: 1000, den: 1 };

    /// Virtual time of a frame captured `ns` after the first; `None` when
    /// it is past what a [`SimTime`] holds.
    pub fn scale(self, ns: u64) -> Option<SimTime> {
        let t = u128::from(ns) * u128::from(self.den) / u128::from(self.num);
        u64::try_from(t).ok().map(SimTime)
    }

    /// `self <= other`, compared as exact ratios.
    fn at_most(self, other: Speed) -> bool {
        u128::from(self.num) * u128::from(other.den) <= u128::from(other.num) * u128::from(self.den)
    }
}

impl std::str::FromStr for Speed {
    type Err = String;

    /// `2x`, `0.5x`, `1.25` (the `x` is optional); from [`Speed::MIN`] to
    /// [`Speed::MAX`], at most six decimals.
    fn from_str(s: &str) -> Result<Speed, String> {
        let bad = || format!("bad speed {s:?}: expected a factor such as 2x, 0.5x or 1.25x");
        let t = s.trim().trim_end_matches(['x', 'X']);
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if int.is_empty() && frac.is_empty()
            || frac.len() > 6
            || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
        {
            return Err(bad());
        }
        let den = 10u64.pow(frac.len() as u32);
        let digits = format!("{int}{frac}");
        let digits = digits.trim_start_matches('0');
        // More digits than a u64 holds is far above the maximum anyway.
        let num: u64 = match digits {
            "" => 0,
            d => d.parse().unwrap_or(u64::MAX),
        };
        let speed = Speed { num, den };
        if !(Speed::MIN.at_most(speed) && speed.at_most(Speed::MAX)) {
            return Err(format!(
                "bad speed {s:?}: must be from {} to {}",
                Speed::MIN,
                Speed::MAX
            ));
        }
        Ok(speed)
    }
}

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x", self.num as f64 / self.den as f64)
    }
}

/// The longest virtual span a replay runs: half of what a 64-bit
/// nanosecond clock holds (292 years), so that the model's own arithmetic
/// past the end (latencies, timers, drain) never overflows.
pub const LONGEST: SimDuration = SimDuration(u64::MAX / 2);

/// Longest frame replay hands to the model, in bytes: the largest IP packet
/// (65,535 bytes, what an IPv4 or IPv6 length field holds; TCP super-frames
/// of that size are cut to the circuit's MTU, anything else longer than the
/// MTU is dropped by the model as the circuit would) in an Ethernet header
/// with two 802.1Q tags and an FCS (14 + 8 + 4). A record whose original
/// length is longer holds no packet any link carries: it is dropped as
/// `oversize` rather than padded.
pub const MAX_FRAME_LEN: u32 = 65_535 + 14 + 8 + 4;

/// Default of `--max-flows`: the most 5-tuples a replay models; frames of
/// further ones are dropped and counted (`flow-table-full`). Each modeled
/// flow costs about 0.3 KB in the classifier and a few KB in the observers
/// (counters, latency histogram, time-series row), and adds a row to each
/// output (report, views, one latency file); at about 5 KB a flow, 10,000
/// flows hold about 50 MB, and their outputs stay browsable.
pub const DEFAULT_MAX_FLOWS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ReplayRunError {
    #[error(transparent)]
    Read(#[from] ReplayError),
    #[error("{}: the capture holds no frames", .0.display())]
    Empty(PathBuf),
    #[error(
        "{}: the capture spans {} from its first frame to its last, which at {speed} is \
         longer than the 292 years (2^63 ns) eremu replays; replay it faster (--speed) or \
         cut it (editcap -A/-B)",
        file.display(), SimDuration(*span_ns)
    )]
    TooLong {
        file: PathBuf,
        /// First to last frame, in captured nanoseconds.
        span_ns: u64,
        speed: Speed,
    },
    #[error("{}: stopped while reading the capture, before the run started", .0.display())]
    Interrupted(PathBuf),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("{}: replaying it takes {span}", file.display())]
    Duration {
        file: PathBuf,
        span: SimDuration,
        #[source]
        source: crate::scenario::ConfigError,
    },
}

/// What `eremu replay` was asked.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub file: PathBuf,
    pub speed: Speed,
    /// Run this long instead of the capture's span plus [`DRAIN`].
    pub duration: Option<SimDuration>,
    pub out: PathBuf,
    pub capture: bool,
    pub max_flows: usize,
    /// Set (by a signal handler) to stop the replay early: the run ends at
    /// the virtual time reached, and its outputs are written complete.
    pub stop: Arc<AtomicBool>,
}

/// A finished replay.
#[derive(Debug)]
pub struct Replayed {
    pub report: Report,
    /// True when [`ReplayOptions::stop`] ended the run before the capture's
    /// end: the report covers the virtual time up to the stop.
    pub stopped: bool,
}

/// The first and last timestamps of a capture, and its frame count; reading
/// it all proves it readable.
fn survey(file: &Path, stop: &AtomicBool) -> Result<(u64, u64, u64), ReplayRunError> {
    let (mut first, mut last, mut count) = (u64::MAX, 0u64, 0u64);
    for frame in CaptureReader::open(file)? {
        let f = frame?;
        first = first.min(f.time_ns);
        last = last.max(f.time_ns);
        count += 1;
        if stop.load(Ordering::Relaxed) {
            return Err(ReplayRunError::Interrupted(file.to_path_buf()));
        }
    }
    if count == 0 {
        return Err(ReplayRunError::Empty(file.to_path_buf()));
    }
    Ok((first, last, count))
}

/// The run's length: the capture's span at `opts.speed` plus [`DRAIN`],
/// unless `--duration` says; an error when the span is longer than
/// [`LONGEST`].
fn run_length(opts: &ReplayOptions, span_ns: u64) -> Result<SimDuration, ReplayRunError> {
    let too_long = || ReplayRunError::TooLong {
        file: opts.file.clone(),
        span_ns,
        speed: opts.speed,
    };
    let span = opts.speed.scale(span_ns).ok_or_else(too_long)? - SimTime::ZERO;
    if span.as_nanos() > LONGEST.as_nanos() - DRAIN.as_nanos() {
        return Err(too_long());
    }
    Ok(opts.duration.unwrap_or(span + DRAIN))
}

/// Replays `opts.file` through `cfg`; writes the report, capture and views
/// into `opts.out` as a `run` does.
pub fn run(cfg: &Config, opts: &ReplayOptions) -> Result<Replayed, ReplayRunError> {
    let (first, last, _) = survey(&opts.file, &opts.stop)?;
    let length = run_length(opts, last - first)?;
    let mut cfg = cfg.clone();
    cfg.set_duration_for_external(length, opts.max_flows as u64)
        .map_err(|source| ReplayRunError::Duration {
            file: opts.file.clone(),
            span: length,
            source,
        })?;
    let mut driver = Driver::start(&cfg, &opts.out, opts.capture, opts.max_flows)?;
    let frames = CaptureReader::open(&opts.file)?;
    let stopped = feed(&mut driver, frames, first, opts.speed, &opts.stop)?;
    // Stopped: the run ends at the virtual time the replay reached, as live
    // mode's does at the wall time of its Ctrl-C.
    let end = match stopped {
        true => driver.now(),
        false => driver.end(),
    };
    if stopped {
        driver.interrupted(length);
    }
    let source = format!("{} at {}", opts.file.display(), opts.speed);
    let report = driver.finish(end, "replay", source, None)?;
    Ok(Replayed { report, stopped })
}

/// Hands `frames`, captured from `first` on, to `driver` at their times
/// scaled by `speed`; returns true when `stop` ended it early.
fn feed(
    driver: &mut Driver,
    frames: impl Iterator<Item = Result<CapturedFrame, ReplayError>>,
    first: u64,
    speed: Speed,
    stop: &AtomicBool,
) -> Result<bool, ReplayRunError> {
    let end = driver.end();
    let mut previous = SimTime::ZERO;
    for frame in frames {
        let f = frame?;
        if f.orig_len > MAX_FRAME_LEN {
            driver.drop_frame("oversize", f.offset);
        } else {
            // Past the end when it does not scale (run_length checked the
            // capture's span).
            let t = speed.scale(f.time_ns.saturating_sub(first));
            let mut t = t.unwrap_or(end);
            if t < previous {
                driver.count("reordered", 1);
                t = previous;
            }
            if t >= end {
                driver.count("after-end", 1);
            } else {
                previous = t;
                let mut bytes = f.frame;
                if (bytes.len() as u64) < f.orig_len as u64 {
                    bytes.resize(f.orig_len as usize, 0);
                    driver.count("snaplen-restored", 1);
                }
                driver.frame(t, None, bytes);
                // Delivered frames have nowhere to go: the report counts them.
                drop(driver.delivered());
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_are_exact_ratios() {
        let s: Speed = "2x".parse().unwrap();
        assert_eq!(s.scale(1_000), Some(SimTime(500)));
        let s: Speed = "0.5x".parse().unwrap();
        assert_eq!(s.scale(1_000), Some(SimTime(2_000)));
        let s: Speed = "1.25".parse().unwrap();
        assert_eq!(s.scale(1_000_000), Some(SimTime(800_000)));
        for bad in ["", "x", "0x", "-1x", "fast", "1.0000001x", "1..2x"] {
            assert!(bad.parse::<Speed>().is_err(), "{bad:?} refused");
        }
        // The range's ends are in it; just past them is not, and a number
        // too long for 64 bits is out of range, not unparseable.
        assert_eq!("0.001x".parse(), Ok(Speed::MIN));
        assert_eq!("1000x".parse(), Ok(Speed::MAX));
        assert_eq!(
            "000999.999999".parse::<Speed>().map(|s| s.num),
            Ok(999_999_999)
        );
        for out in ["0.000999x", "1000.000001x", "99999999999999999999999x"] {
            let e = out.parse::<Speed>().unwrap_err();
            assert!(e.contains("from 0.001x to 1000x"), "{e}");
        }
    }

    #[test]
    fn scaling_past_the_clock_is_none_not_a_wrapped_time() {
        // u64::MAX ns at 0.001x is 1000 times what a SimTime holds: the old
        // u128-to-u64 cast kept its low 64 bits, a time in the past.
        assert_eq!(Speed::MIN.scale(u64::MAX), None);
        assert_eq!(
            Speed::MIN.scale(u64::MAX / 1000),
            Some(SimTime(u64::MAX / 1000 * 1000))
        );
        assert_eq!(Speed::MAX.scale(u64::MAX), Some(SimTime(u64::MAX / 1000)));
    }

    /// Frames of one UDP 5-tuple, one every millisecond from 0.
    fn frames(n: u64) -> Vec<CapturedFrame> {
        let frame = crate::ingress::testing::udp([192, 168, 1, 10], [10, 1, 0, 4], 40_000);
        (0..n)
            .map(|i| CapturedFrame {
                time_ns: i * 1_000_000,
                orig_len: frame.len() as u32,
                frame: frame.clone(),
                offset: 24 + i * (16 + frame.len() as u64),
            })
            .collect()
    }

    #[test]
    fn a_stop_ends_the_replay_at_the_virtual_time_reached() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Driver::start(&crate::ingress::testing::cfg(), dir.path(), true, 8).unwrap();
        let stop = AtomicBool::new(false);
        // The stop arrives while the frame at 2 ms is handed over.
        let frames = frames(10).into_iter().enumerate().map(|(i, f)| {
            if i == 2 {
                stop.store(true, Ordering::Relaxed);
            }
            Ok(f)
        });
        assert!(feed(&mut d, frames, 0, Speed::REAL, &stop).unwrap());
        assert_eq!(d.now(), SimTime(2_000_000));
        let now = d.now();
        d.interrupted(SimDuration::from_secs(1));
        let r = d.finish(now, "replay", "t".into(), None).unwrap();
        // Three frames, 2 ms of the 1 s scenario, outputs complete, and
        // every view (the HTML too) says the run was interrupted.
        assert_eq!(r.duration_ns, 2_000_000);
        assert!(r.interrupted);
        assert_eq!(r.scenario_duration_ns, Some(1_000_000_000));
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert!(html.contains("INTERRUPTED"));
        let ingress = r.ingress.as_ref().unwrap();
        assert_eq!(ingress.frames["modeled"], 3);
        assert!(r.conservation_errors().is_empty());
        assert!(dir.path().join("report.json").exists());
        assert!(dir.path().join("capture.pcapng").exists());
        assert!(!dir.path().join("capture.pcapng.partial").exists());
    }
}
