//! Running logical processes on worker threads, without capture.
//!
//! Each direction runs as two logical processes, its sending and receiving
//! halves ([`super::split`]), so two workers stay busy even when one
//! direction carries all the traffic. The processes are tasks, not threads:
//! each is given to one of `threads` workers for the whole run (so that its
//! state stays in that core's caches), weighed by the packets per second of
//! its direction, and the worker steps whichever of its processes can go on,
//! one slice of virtual time or one batch of records at a time.
//!
//! No process ever waits inside a step. A sending half more than
//! [`MAX_BACKLOG`] chunks ahead of its receiving half is not stepped until
//! it catches up (memory stays bounded); a receiving half with nothing to
//! read is not either. Results do not depend on any of this.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use super::split::{self, Received, Receiver};
use super::{Engine, Outcome};
use crate::scenario::{Config, Direction};
use crate::units::{SimDuration, SimTime};

/// Chunks a sending half may have written ahead of its receiving half.
pub const MAX_BACKLOG: usize = 16;

/// Events a sending half aims to handle per step, and records or events a
/// receiving half handles per step: small enough that the log written in a
/// step stays in cache, large enough that a step costs little beside it.
const EVENTS_PER_STEP: u64 = 1024;

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Progress,
    /// Can't go on until another process does.
    Blocked,
    Done,
}

struct Sender {
    engine: Engine,
    /// Virtual time per step, adapted to the load.
    slice: SimDuration,
    done: bool,
}

impl Sender {
    fn step(&mut self) -> Step {
        if self.done {
            return Step::Done;
        }
        if self.engine.log_backlog() > MAX_BACKLOG {
            return Step::Blocked;
        }
        let events = self.engine.counters.events;
        let until = (self.engine.now() + self.slice).min(self.engine.end());
        if self.engine.advance(until) {
            self.engine.close_log();
            self.done = true;
            return Step::Done;
        }
        self.engine.end_step();
        // Aim the next slice at EVENTS_PER_STEP events, at this step's rate.
        let handled = (self.engine.counters.events - events).max(1);
        let ns = self.slice.as_nanos() as u128 * EVENTS_PER_STEP as u128 / handled as u128;
        self.slice = SimDuration((ns as u64).clamp(1_000, 1_000_000_000));
        Step::Progress
    }
}

enum Lp {
    Send(Sender),
    Receive(Receiver),
}

impl Lp {
    fn step(&mut self) -> Step {
        match self {
            Lp::Send(s) => s.step(),
            Lp::Receive(r) => match r.step(EVENTS_PER_STEP as u32) {
                Received::More => Step::Progress,
                Received::Starved => Step::Blocked,
                Received::Done => Step::Done,
            },
        }
    }

    fn engine(&self) -> &Engine {
        match self {
            Lp::Send(s) => &s.engine,
            Lp::Receive(r) => &r.engine,
        }
    }
}

/// Runs the directions `parts` of `cfg` (none with a control plane or TCP
/// flows), each in two halves, on `threads` workers (at least one), and
/// returns each direction's outcome in the order of `parts`. `progress` is
/// called from this thread with the virtual time every receiving half has
/// passed and the packets sent so far (at most once per hundredth of the
/// run); it only watches.
pub fn run(
    cfg: &Config,
    parts: &[Option<Direction>],
    threads: usize,
    progress: &mut dyn FnMut(SimTime, u64),
) -> Vec<Outcome> {
    // Sending halves first, then receiving halves, in the order of `parts`.
    let mut lps = Vec::new();
    let mut receivers = Vec::new();
    for &part in parts {
        let (engine, receiver) = split::halves(cfg, part);
        lps.push(Lp::Send(Sender {
            engine,
            slice: SimDuration::from_micros(100),
            done: false,
        }));
        receivers.push(Lp::Receive(receiver));
    }
    lps.extend(receivers);
    // Boxed: a worker looking at a process touches only its lock, never
    // the cache lines of the process's state.
    let lps: Vec<Mutex<Box<Lp>>> = lps.into_iter().map(|lp| Mutex::new(Box::new(lp))).collect();
    let done: Vec<AtomicBool> = lps.iter().map(|_| AtomicBool::new(false)).collect();
    let reached: Vec<AtomicU64> = lps.iter().map(|_| AtomicU64::new(0)).collect();
    let sent = AtomicU64::new(0);
    let pool = Pool {
        lps: &lps,
        done: &done,
        reached: &reached,
        sent: &sent,
    };
    let end = SimTime::ZERO + cfg.duration;
    let window = (cfg.duration.as_nanos() / 100).max(1);
    let mut shown = 0u64;
    let mut report = || {
        let slowest = reached[parts.len()..]
            .iter()
            .map(|r| r.load(Ordering::Acquire))
            .min()
            .unwrap_or(0);
        while shown < end.0 && (shown + window).min(end.0) <= slowest {
            shown = (shown + window).min(end.0);
            progress(SimTime(shown), sent.load(Ordering::Relaxed));
        }
    };
    let workers = threads.clamp(1, lps.len());
    let homes = assign(cfg, parts, workers);
    std::thread::scope(|scope| {
        for mine in &homes[1..] {
            let pool = &pool;
            scope.spawn(move || pool.work(mine, &mut || {}));
        }
        pool.work(&homes[0], &mut report);
    });
    report();
    let mut lps = lps
        .into_iter()
        .map(|m| *m.into_inner().expect("no worker panicked"));
    let senders: Vec<Engine> = lps
        .by_ref()
        .take(parts.len())
        .map(|lp| match lp {
            Lp::Send(s) => s.engine,
            Lp::Receive(_) => unreachable!("sending halves come first"),
        })
        .collect();
    senders
        .into_iter()
        .zip(lps)
        .map(|(send, lp)| match lp {
            Lp::Receive(r) => split::finish(send, r.engine),
            Lp::Send(_) => unreachable!("receiving halves come last"),
        })
        .collect()
}

struct Pool<'a> {
    lps: &'a [Mutex<Box<Lp>>],
    done: &'a [AtomicBool],
    /// Virtual time each process has reached, in ns.
    reached: &'a [AtomicU64],
    sent: &'a AtomicU64,
}

impl Pool<'_> {
    /// One worker: steps the first process that can go on, in priority
    /// order, until every process is done.
    fn work(&self, mine: &[usize], between: &mut dyn FnMut()) {
        let mut idle = 0u32;
        while mine.iter().any(|&i| !self.done[i].load(Ordering::Acquire)) {
            let mut progressed = false;
            for &i in mine {
                let lp = &self.lps[i];
                if self.done[i].load(Ordering::Acquire) {
                    continue;
                }
                let Ok(mut lp) = lp.try_lock() else { continue };
                let packets = lp.engine().counters.packets;
                let step = lp.step();
                let engine = lp.engine();
                self.reached[i].store(engine.now().0, Ordering::Release);
                self.sent
                    .fetch_add(engine.counters.packets - packets, Ordering::Relaxed);
                drop(lp);
                match step {
                    Step::Blocked => continue,
                    Step::Done => {
                        self.done[i].store(true, Ordering::Release);
                    }
                    Step::Progress => {}
                }
                progressed = true;
                break;
            }
            between();
            if progressed {
                idle = 0;
            } else {
                idle += 1;
                if idle < 64 {
                    std::hint::spin_loop();
                } else if idle < 1024 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(std::time::Duration::from_micros(20));
                }
            }
        }
    }
}

/// Which worker runs which process: each process stays on one worker, so
/// its state stays in that core's caches. Processes are weighed by the
/// packets per second of their direction's flows (each half does about half
/// of a direction's work) and given, heaviest first, to the least loaded
/// worker.
fn assign(cfg: &Config, parts: &[Option<Direction>], workers: usize) -> Vec<Vec<usize>> {
    let pps = |part: Option<Direction>| -> f64 {
        cfg.flows
            .iter()
            .filter(|f| part.is_none_or(|d| d == f.direction))
            .map(|f| f.rate.bps() as f64 / (8.0 * f.size.mean()))
            .sum()
    };
    let mut weighed: Vec<(f64, usize)> = Vec::new();
    for (i, &part) in parts.iter().enumerate() {
        let p = pps(part);
        weighed.push((p + 1.0, i));
        weighed.push((p + 1.0, parts.len() + i));
    }
    weighed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut homes = vec![Vec::new(); workers];
    let mut load = vec![0.0f64; workers];
    for (w, lp) in weighed {
        let k = (0..workers)
            .min_by(|&a, &b| load[a].total_cmp(&load[b]))
            .expect("at least one worker");
        load[k] += w;
        homes[k].push(lp);
    }
    for h in &mut homes {
        h.sort_unstable();
    }
    homes
}
