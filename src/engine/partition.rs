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

use std::ops::ControlFlow;
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

/// What [`run_partitioned`] hands back.
pub struct Run {
    /// The processes' outcomes, merged.
    pub outcome: Outcome,
    /// When capturing, the frames seen per tap.
    pub frames: Option<[u64; 6]>,
    /// The virtual time the run was stopped at, when `progress` asked it to
    /// stop before the scenario's end; the outcome's books end there.
    pub stopped: Option<SimTime>,
}

/// The progress callback: told the virtual time every process has reached
/// and the packets sent so far; `Break` asks the run to stop.
pub type Progress<'a> = &'a mut dyn FnMut(SimTime, u64) -> ControlFlow<()>;

/// Runs the scenario to its end on `threads` threads (at least one) and
/// returns the merged outcome. `sinks` has one capture sink per process.
/// `progress` is called between windows; it only watches unless it
/// returns `Break`: then the run ends at the end of the next window (so at
/// the same virtual time for any number of threads), with books closed
/// there as if the scenario ended then. With `halves` (and more than one
/// thread, no capture, no control plane or TCP), each direction runs in
/// two halves ([`super::split`]), and a stop ends the run at the first
/// window boundary none of them has passed; otherwise one process per
/// direction.
pub fn run_partitioned(
    cfg: &Config,
    threads: usize,
    halves: bool,
    sinks: Option<Vec<CaptureSink>>,
    progress: Progress,
) -> Run {
    let parts = processes(cfg);
    let (outcomes, stopped) = match sinks {
        // Directions without a control plane or TCP: two halves each.
        None if halves && threads > 1 && parts.iter().all(Option::is_some) => {
            super::pipeline::run(cfg, &parts, threads, progress)
        }
        sinks => run_windows(cfg, &parts, threads, sinks, progress),
    };
    let (outcome, frames) = merge(&parts, outcomes);
    Run {
        outcome,
        frames,
        stopped,
    }
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
    progress: Progress,
) -> (Vec<Outcome>, Option<SimTime>) {
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
    // The end of the last window to run, once `progress` asked to stop: the
    // end of the window after the one it was told of. Every process reads
    // it after the barrier that ends a window, and the caller's thread
    // writes it only between two barriers, so all stop after the same one.
    let stop_at = AtomicU64::new(u64::MAX);
    let mut tell = |until: SimTime| {
        if progress(until, sent.load(Ordering::Relaxed)).is_break() {
            let next = (until + window).min(end);
            stop_at.fetch_min(next.0, Ordering::Relaxed);
        }
    };
    let stops = |until: SimTime| until.0 >= stop_at.load(Ordering::Relaxed);
    if threads <= 1 || lps.len() == 1 {
        for until in bounds() {
            for lp in &mut lps {
                run_window(lp, until);
            }
            if stops(until) {
                break;
            }
            tell(until);
        }
    } else {
        let barrier = Barrier::new(lps.len());
        let (first, rest) = lps.split_at_mut(1);
        std::thread::scope(|scope| {
            for lp in rest {
                let (barrier, run_window, stops) = (&barrier, &run_window, &stops);
                scope.spawn(move || {
                    for until in bounds() {
                        run_window(lp, until);
                        barrier.wait();
                        if stops(until) {
                            break;
                        }
                    }
                });
            }
            // The first process runs here, so that progress is reported from
            // the caller's thread.
            for until in bounds() {
                run_window(&mut first[0], until);
                barrier.wait();
                if stops(until) {
                    break;
                }
                tell(until);
            }
        });
    }
    let stopped = (stop_at.load(Ordering::Relaxed) < end.0).then(|| SimTime(stop_at.into_inner()));
    let outcomes = lps
        .into_iter()
        .map(|mut lp| {
            if let Some(t) = stopped {
                lp.truncate_end(t);
            }
            lp.finish()
        })
        .collect();
    (outcomes, stopped)
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

    /// A capture window holds at most `PACKETS_PER_WINDOW` offered packets
    /// (what bounds its buffers), and never more than a millisecond.
    #[test]
    fn capture_windows_shrink_with_the_offered_packet_rate() {
        let with_rate = |rate: &str, size: u32| {
            let text = include_str!("../../scenarios/oversubscribed.toml")
                .replacen("rate = \"1.5Gbps\"", &format!("rate = \"{rate}\""), 1)
                .replacen("size = 1400", &format!("size = {size}"), 1);
            capture_window(&crate::scenario::parse("x.toml", &text).unwrap())
        };
        // 1.5 Gbps of 1400-byte packets and 80 kbps of 200-byte ones:
        // 133,928 + 50 packets/s, 134 per millisecond: the whole millisecond.
        assert_eq!(with_rate("1.5Gbps", 1400), CAPTURE_WINDOW);
        // 100 Gbps of 64-byte packets: 195,312,500 + 50 packets/s, 195,312
        // per millisecond; 65,536 of them take 1 ms x 65,536 / 195,312.
        assert_eq!(
            with_rate("100Gbps", 64),
            SimDuration(1_000_000 * 65_536 / 195_312)
        );
        // The fastest flow allowed (1 Tbps) of 48-byte packets:
        // 2,604,166,666 + 50 packets/s, 2,604,166 per millisecond.
        assert_eq!(
            with_rate("1000Gbps", 48),
            SimDuration(1_000_000 * 65_536 / 2_604_166)
        );
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
            run_windows(&cfg, &parts, 1, None, &mut |_, _| ControlFlow::Continue(())).0,
        );
        assert!(
            whole.contains("link-down"),
            "failures drop packets in flight"
        );
        for workers in [1, 2, 4] {
            let mut reached = vec![];
            let (halves, stopped) =
                super::super::pipeline::run(&cfg, &parts, workers, &mut |t, _| {
                    reached.push(t);
                    ControlFlow::Continue(())
                });
            assert_eq!(stopped, None);
            assert_eq!(whole, report(&cfg, &parts, halves), "{workers} workers");
            // Progress is told once per hundredth of the run, in order.
            assert_eq!(reached.len(), 100);
            assert!(reached.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
