//! Logical processes and the threads that run them.
//!
//! The model splits into one logical process per direction: on-premises to
//! Azure, and back. A direction's flows, link queues, policers, gateway caps,
//! ESP sequence numbers and random streams belong to it alone; the two share
//! nothing during a run but the scenario's events, which each applies at the
//! same virtual time to its own copy of the routing tables. So each process
//! computes exactly what the whole model would, and the results are the same
//! for any number of threads.
//!
//! Processes advance in windows of virtual time. When capturing, they meet
//! at a barrier between windows and their capture observations are merged in
//! `(time, process)` order by the writer, so captures are byte-identical for
//! any thread count. Without capture there is nothing to merge in order: the
//! processes never wait for each other, and windows (a hundredth of the run)
//! only pace progress reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;

use super::{Engine, Outcome};
use crate::observe::capture::CaptureSink;
use crate::scenario::{Config, Direction};
use crate::units::{SimDuration, SimTime};

/// Window of virtual time between merges when capturing.
pub const CAPTURE_WINDOW: SimDuration = SimDuration::from_millis(1);

/// How the model is split into logical processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioning {
    /// One process per direction.
    ByDirection,
}

/// The logical processes of a scenario: one per direction, or one for the
/// whole model when a control plane couples the directions (a BGP message
/// arriving one way changes the routes of the other at once: zero
/// lookahead, so those processes are merged).
pub fn processes(cfg: &Config) -> Vec<Option<Direction>> {
    let tcp = cfg
        .flows
        .iter()
        .any(|f| matches!(f.kind, crate::scenario::FlowKind::Tcp(_)));
    // A TCP flow couples the directions too: segments one way, answers back.
    if cfg.bgp.is_some() || tcp {
        vec![None]
    } else {
        vec![Some(Direction::In), Some(Direction::Out)]
    }
}

/// Runs the scenario to its end on `threads` threads (at least one) and
/// returns the merged outcome and, when capturing, the frames seen per tap.
/// `sinks` has one capture sink per process. `progress` is called between
/// windows with the virtual time reached and the packets sent so far; it
/// only watches.
pub fn run_partitioned(
    cfg: &Config,
    threads: usize,
    sinks: Option<Vec<CaptureSink>>,
    progress: &mut dyn FnMut(SimTime, u64),
) -> (Outcome, Option<[u64; 6]>) {
    let capturing = sinks.is_some();
    let mut sinks: Vec<Option<CaptureSink>> = match sinks {
        Some(s) => s.into_iter().map(Some).collect(),
        None => processes(cfg).iter().map(|_| None).collect(),
    };
    let parts = processes(cfg);
    let mut lps: Vec<Engine> = parts
        .iter()
        .zip(sinks.iter_mut())
        .map(|(d, sink)| Engine::new(cfg, sink.take(), *d))
        .collect();
    let end = SimTime::ZERO + cfg.duration;
    // Windows: short when captures must be merged in order, otherwise a
    // hundredth of the run (for progress reports).
    let window = if capturing {
        CAPTURE_WINDOW
    } else {
        SimDuration((cfg.duration.as_nanos() / 100).max(1))
    };
    let bounds = move || {
        let mut t = SimTime::ZERO;
        std::iter::from_fn(move || {
            (t < end).then(|| {
                t = (t + window).min(end);
                t
            })
        })
    };
    let sent = AtomicU64::new(0);
    let run_window = |lp: &mut Engine, until: SimTime| {
        let before = lp.counters.packets;
        lp.advance(until);
        lp.end_window();
        sent.fetch_add(lp.counters.packets - before, Ordering::Relaxed);
    };
    if threads <= 1 || lps.len() == 1 {
        for until in bounds() {
            for lp in &mut lps {
                run_window(lp, until);
            }
            progress(until, sent.load(Ordering::Relaxed));
        }
    } else if !capturing {
        // Nothing to merge in order: each process runs to its end on its own
        // thread, never waiting for the others; progress follows the
        // slowest.
        let reached: Vec<AtomicU64> = lps.iter().map(|_| AtomicU64::new(0)).collect();
        let slowest = || {
            SimTime(
                reached
                    .iter()
                    .map(|r| r.load(Ordering::Acquire))
                    .min()
                    .unwrap_or(0),
            )
        };
        let (first, rest) = lps.split_at_mut(1);
        std::thread::scope(|scope| {
            for (lp, r) in rest.iter_mut().zip(&reached[1..]) {
                let run_window = &run_window;
                scope.spawn(move || {
                    for until in bounds() {
                        run_window(lp, until);
                        r.store(until.0, Ordering::Release);
                    }
                });
            }
            // One report per window boundary, once every process passed it.
            let mut shown = bounds().peekable();
            let mut report = |progress: &mut dyn FnMut(SimTime, u64)| {
                let reached = slowest();
                while let Some(until) = shown.next_if(|&b| b <= reached) {
                    progress(until, sent.load(Ordering::Relaxed));
                }
            };
            for until in bounds() {
                run_window(&mut first[0], until);
                reached[0].store(until.0, Ordering::Release);
                report(progress);
            }
            while slowest() < end {
                std::thread::sleep(std::time::Duration::from_millis(1));
                report(progress);
            }
            report(progress);
        });
    } else {
        let barrier = Barrier::new(lps.len());
        let (first, rest) = lps.split_at_mut(1);
        std::thread::scope(|scope| {
            for lp in rest {
                let (barrier, run_window) = (&barrier, &run_window);
                scope.spawn(move || {
                    for until in bounds() {
                        run_window(lp, until);
                        barrier.wait();
                    }
                });
            }
            // The first process runs here, so that progress is reported from
            // the caller's thread.
            for until in bounds() {
                run_window(&mut first[0], until);
                barrier.wait();
                progress(until, sent.load(Ordering::Relaxed));
            }
        });
    }
    let mut outcomes = lps.into_iter().map(Engine::finish);
    let mut merged = outcomes.next().expect("at least one process");
    let mut frames = merged.capture.take().map(CaptureSink::close);
    for (dir, o) in parts.iter().skip(1).zip(outcomes) {
        let dir = dir.expect("several processes split by direction");
        merged.metrics.absorb(o.metrics, dir);
        merged.tcp.extend(o.tcp);
        merged.timeseries.merge(&o.timeseries);
        for (i, b) in o.busy.iter().enumerate() {
            if i % 2 == dir as usize {
                merged.busy[i] = *b;
            }
        }
        for (a, b) in merged.in_flight.iter_mut().zip(&o.in_flight) {
            *a += b;
        }
        merged.counters.events += o.counters.events;
        merged.counters.packets += o.counters.packets;
        merged.counters.hops += o.counters.hops;
        if let (Some(f), Some(sink)) = (frames.as_mut(), o.capture) {
            for (a, b) in f.iter_mut().zip(sink.close()) {
                *a += b;
            }
        }
    }
    (merged, frames)
}
