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
//! The directions advance in windows of virtual time, one thread each, and
//! meet at a barrier between windows, so that when capturing the writer
//! merges their frames in `(time, process)` order; captures are
//! byte-identical for any thread count. On one thread the processes run in
//! turn, a window each. Asked for halves, without capture, each direction
//! runs instead as two processes, its sending and receiving halves
//! ([`super::split`]), as tasks on worker threads ([`super::pipeline`]), so
//! that one direction's traffic can keep two cores busy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;

use super::{Engine, Outcome};
use crate::observe::capture::CaptureSink;
use crate::scenario::{Config, Direction};
use crate::units::{SimDuration, SimTime};

/// Longest window of virtual time between merges when capturing.
pub const CAPTURE_WINDOW: SimDuration = SimDuration::from_millis(1);

/// Packets the scenario may offer in one capture window: what a window's
/// buffers hold at most, whatever the rates (each packet is seen by a few
/// taps, a few hundred bytes each).
const PACKETS_PER_WINDOW: u64 = 65_536;

/// The window of virtual time between merges when capturing: the capture
/// windows hold every frame seen in them until the writer takes them, so
/// they shrink as the offered packet rate grows (to no less than a
/// microsecond, which the flow rate limit keeps to a few thousand packets).
/// Frames and their order do not depend on it.
pub fn capture_window(cfg: &Config) -> SimDuration {
    use crate::scenario::FlowKind;
    // Packets per second at most: UDP flows at their rate in their smallest
    // packets; TCP flows at the line rate of both links both ways in
    // minimum-size frames.
    let link_pps = cfg.circuit.port_speed.bps() / (64 * 8);
    let pps: u64 = cfg
        .flows
        .iter()
        .map(|f| match f.kind {
            FlowKind::Tcp(_) => 4 * link_pps,
            _ => f.rate.bps() / (8 * u64::from(f.size.min().max(1))),
        })
        .fold(0u64, u64::saturating_add);
    let per_window =
        (u128::from(pps) * u128::from(CAPTURE_WINDOW.as_nanos()) / 1_000_000_000).max(1);
    let ns = u128::from(CAPTURE_WINDOW.as_nanos()) * u128::from(PACKETS_PER_WINDOW) / per_window;
    SimDuration(ns.clamp(1_000, u128::from(CAPTURE_WINDOW.as_nanos())) as u64)
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
/// only watches. With `halves` (and more than one thread, no capture, no
/// control plane or TCP), each direction runs in two halves
/// ([`super::split`]); otherwise one process per direction.
pub fn run_partitioned(
    cfg: &Config,
    threads: usize,
    halves: bool,
    sinks: Option<Vec<CaptureSink>>,
    progress: &mut dyn FnMut(SimTime, u64),
) -> (Outcome, Option<[u64; 6]>) {
    let parts = processes(cfg);
    let outcomes = match sinks {
        // Directions without a control plane or TCP: two halves each.
        None if halves && threads > 1 && parts.iter().all(Option::is_some) => {
            super::pipeline::run(cfg, &parts, threads, progress)
        }
        sinks => run_windows(cfg, &parts, threads, sinks, progress),
    };
    merge(&parts, outcomes)
}

/// Runs the processes window by window: in turn on this thread, or on one
/// thread each, meeting at a barrier after every window (a millisecond
/// when capturing, so that the writer merges their frames in order, else a
/// hundredth of the run).
fn run_windows(
    cfg: &Config,
    parts: &[Option<Direction>],
    threads: usize,
    sinks: Option<Vec<CaptureSink>>,
    progress: &mut dyn FnMut(SimTime, u64),
) -> Vec<Outcome> {
    let capturing = sinks.is_some();
    let mut sinks: Vec<Option<CaptureSink>> = match sinks {
        Some(s) => s.into_iter().map(Some).collect(),
        None => parts.iter().map(|_| None).collect(),
    };
    let mut lps: Vec<Engine> = parts
        .iter()
        .zip(sinks.iter_mut())
        .map(|(d, sink)| Engine::new(cfg, sink.take(), *d))
        .collect();
    let end = SimTime::ZERO + cfg.duration;
    // Windows: short when captures must be merged in order, otherwise a
    // hundredth of the run (for progress reports).
    let window = if capturing {
        capture_window(cfg)
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
    lps.into_iter().map(Engine::finish).collect()
}

/// One outcome from the processes' outcomes (in the order of `parts`), and
/// the frames captured per tap.
fn merge(parts: &[Option<Direction>], outcomes: Vec<Outcome>) -> (Outcome, Option<[u64; 6]>) {
    let mut outcomes = outcomes.into_iter();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::Report;

    /// Both directions loaded, a VPN with jitter and loss, and failures
    /// that drop packets in flight and move flows between paths.
    fn busy() -> Config {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/steady-1g.toml"),
        )
        .unwrap()
        .replace("duration = \"10s\"", "duration = \"1s\"")
            + "[vpn]\ngateway_sku = \"VpnGw1\"\nlatency = \"10ms\"\njitter = \"2ms\"\nloss = \"1%\"\n\
               [[events]]\nat = \"300ms\"\naction = \"link-down\"\nlink = \"primary\"\n\
               [[events]]\nat = \"400ms\"\naction = \"link-down\"\nlink = \"secondary\"\n\
               [[events]]\nat = \"600ms\"\naction = \"link-up\"\nlink = \"primary\"\n";
        crate::scenario::parse("busy.toml", &text).unwrap()
    }

    fn report(cfg: &Config, parts: &[Option<Direction>], outcomes: Vec<Outcome>) -> String {
        Report::build(cfg, &merge(parts, outcomes).0, 0.0).to_json(true)
    }

    /// The halves of every direction on one worker (each sending half
    /// stopped by its backlog over and over, its receiving half catching up
    /// on the same thread), on two, and on as many as there are halves:
    /// the report is the one process per direction makes.
    #[test]
    fn halves_on_any_number_of_workers_give_the_same_report() {
        let cfg = busy();
        let parts = processes(&cfg);
        assert_eq!(parts.len(), 2);
        let whole = report(
            &cfg,
            &parts,
            run_windows(&cfg, &parts, 1, None, &mut |_, _| {}),
        );
        assert!(
            whole.contains("link-down"),
            "failures drop packets in flight"
        );
        for workers in [1, 2, 4] {
            let mut reached = vec![];
            let halves =
                super::super::pipeline::run(&cfg, &parts, workers, &mut |t, _| reached.push(t));
            assert_eq!(whole, report(&cfg, &parts, halves), "{workers} workers");
            // Progress is told once per hundredth of the run, in order.
            assert_eq!(reached.len(), 100);
            assert!(reached.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
