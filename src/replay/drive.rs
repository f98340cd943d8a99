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
//! - The scenario's own flows run too, as background traffic.

use std::path::{Path, PathBuf};

use crate::ingress::{Driver, DriverError};
use crate::scenario::Config;
use crate::units::{SimDuration, SimTime};
use crate::Report;

use super::reader::{CaptureReader, ReplayError};

/// Time the model runs after the last frame, for what is queued to arrive.
pub const DRAIN: SimDuration = SimDuration(1_000_000_000);

/// A replay rate: `2x` plays twice as fast as captured. Exact: a ratio of
/// integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speed {
    num: u64,
    den: u64,
}

impl Speed {
    pub const REAL: Speed = Speed { num: 1, den: 1 };

    /// Virtual time of a frame captured `ns` after the first.
    pub fn scale(self, ns: u64) -> SimTime {
        SimTime((ns as u128 * self.den as u128 / self.num as u128) as u64)
    }
}

impl std::str::FromStr for Speed {
    type Err = String;

    /// `2x`, `0.5x`, `1.25` (the `x` is optional); more than zero, at most
    /// six decimals.
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
        let num: u64 = format!("{int}{frac}").parse().map_err(|_| bad())?;
        if num == 0 {
            return Err(format!("bad speed {s:?}: must be more than zero"));
        }
        Ok(Speed { num, den })
    }
}

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x", self.num as f64 / self.den as f64)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayRunError {
    #[error(transparent)]
    Read(#[from] ReplayError),
    #[error("{}: the capture holds no frames", .0.display())]
    Empty(PathBuf),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("{}: replaying it takes {span}: {source}", file.display())]
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
}

/// The first and last timestamps of a capture, and its frame count; reading
/// it all proves it readable.
fn survey(file: &Path) -> Result<(u64, u64, u64), ReplayRunError> {
    let (mut first, mut last, mut count) = (u64::MAX, 0u64, 0u64);
    for frame in CaptureReader::open(file)? {
        let f = frame?;
        first = first.min(f.time_ns);
        last = last.max(f.time_ns);
        count += 1;
    }
    if count == 0 {
        return Err(ReplayRunError::Empty(file.to_path_buf()));
    }
    Ok((first, last, count))
}

/// Replays `opts.file` through `cfg`; writes the report, capture and views
/// into `opts.out` as a `run` does.
pub fn run(cfg: &Config, opts: &ReplayOptions) -> Result<Report, ReplayRunError> {
    let (first, last, _) = survey(&opts.file)?;
    let span = opts.speed.scale(last - first) - SimTime::ZERO;
    let mut cfg = cfg.clone();
    let duration = opts.duration.unwrap_or(span + DRAIN);
    cfg.set_duration_for_external(duration, opts.max_flows as u64)
        .map_err(|source| ReplayRunError::Duration {
            file: opts.file.clone(),
            span: duration,
            source,
        })?;
    let mut driver = Driver::start(&cfg, &opts.out, opts.capture, opts.max_flows)?;
    let end = driver.end();
    let mut previous = SimTime::ZERO;
    for frame in CaptureReader::open(&opts.file)? {
        let f = frame?;
        let mut t = opts.speed.scale(f.time_ns.saturating_sub(first));
        if t < previous {
            driver.count("reordered", 1);
            t = previous;
        }
        if t >= end {
            driver.count("after-end", 1);
            continue;
        }
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
    let source = format!("{} at {}", opts.file.display(), opts.speed);
    Ok(driver.finish(end, "replay", source, None)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_are_exact_ratios() {
        let s: Speed = "2x".parse().unwrap();
        assert_eq!(s.scale(1_000), SimTime(500));
        let s: Speed = "0.5x".parse().unwrap();
        assert_eq!(s.scale(1_000), SimTime(2_000));
        let s: Speed = "1.25".parse().unwrap();
        assert_eq!(s.scale(1_000_000), SimTime(800_000));
        for bad in ["", "x", "0x", "-1x", "fast", "1.0000001x", "1..2x"] {
            assert!(bad.parse::<Speed>().is_err(), "{bad:?} refused");
        }
    }
}
