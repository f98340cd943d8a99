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
//! Where the load is not what the estimate said (sources that cost more
//! per packet, a direction that drops most of its traffic), the first
//! worker moves processes between workers twice early in the run, by the
//! time each took so far; a process only moves between steps.
//!
//! No process ever waits inside a step. A sending half more than
//! [`MAX_BACKLOG`] chunks ahead of its receiving half is not stepped until
//! it catches up (memory stays bounded); a receiving half with nothing to
//! read is not either. Results do not depend on any of this.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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

    fn engine_mut(&mut self) -> &mut Engine {
        match self {
            Lp::Send(s) => &mut s.engine,
            Lp::Receive(r) => &mut r.engine,
        }
    }
}

/// Runs the directions `parts` of `cfg` (none with a control plane or TCP
/// flows), each in two halves, on `threads` workers (at least one), and
/// returns each direction's outcome in the order of `parts`, and the time
/// the run was stopped at, if `progress` stopped it. `progress` is called
/// from this thread with the virtual time every receiving half has passed
/// and the packets sent so far (at most once per hundredth of the run); it
/// only watches unless it returns `Break`: then every process ends at the
/// first hundredth of the run that none has passed.
pub fn run(
    cfg: &Config,
    parts: &[Option<Direction>],
    threads: usize,
    progress: super::partition::Progress,
) -> (Vec<Outcome>, Option<SimTime>) {
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
    let workers = threads.clamp(1, lps.len());
    let owner: Vec<AtomicUsize> = assign(cfg, parts, workers)
        .into_iter()
        .map(AtomicUsize::new)
        .collect();
    let busy: Vec<AtomicU64> = lps.iter().map(|_| AtomicU64::new(0)).collect();
    let pool = Pool {
        lps: &lps,
        done: &done,
        reached: &reached,
        sent: &sent,
        owner: &owner,
        busy: &busy,
    };
    let end = SimTime::ZERO + cfg.duration;
    let window = (cfg.duration.as_nanos() / 100).max(1);
    let mut shown = 0u64;
    let mut stop_asked = false;
    let mut report = || {
        let slowest = pool.slowest(parts.len());
        while !stop_asked && shown < end.0 && (shown + window).min(end.0) <= slowest {
            shown = (shown + window).min(end.0);
            stop_asked = progress(SimTime(shown), sent.load(Ordering::Relaxed)).is_break();
        }
        stop_asked
    };
    let mut stopped = None;
    let workers = threads.clamp(1, lps.len());
    std::thread::scope(|scope| {
        for me in 1..workers {
            let pool = &pool;
            scope.spawn(move || pool.work(me, &mut || {}));
        }
        let mut checks = REBALANCE_AT.iter().peekable();
        pool.work(0, &mut || {
            if report() && stopped.is_none() {
                stopped = Some(pool.stop(window, end));
            }
            let slowest = pool.slowest(parts.len());
            if checks.next_if(|&&at| slowest >= end.0 / 100 * at).is_some() {
                pool.rebalance(workers);
            }
        });
    });
    if stopped.is_none() {
        report();
    }
    let stopped = stopped.filter(|&t| t < end);
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
    let outcomes = senders
        .into_iter()
        .zip(lps)
        .map(|(send, lp)| match lp {
            Lp::Receive(r) => split::finish(send, r.engine),
            Lp::Send(_) => unreachable!("receiving halves come last"),
        })
        .collect();
    (outcomes, stopped)
}

struct Pool<'a> {
    lps: &'a [Mutex<Box<Lp>>],
    done: &'a [AtomicBool],
    /// Virtual time each process has reached, in ns.
    reached: &'a [AtomicU64],
    sent: &'a AtomicU64,
    /// The worker each process belongs to.
    owner: &'a [AtomicUsize],
    /// Wall-clock time each process has taken so far, in ns (measured
    /// here, outside the model, only to balance the workers).
    busy: &'a [AtomicU64],
}

/// When the first worker rebalances: at these hundredths of the run.
const REBALANCE_AT: [u64; 2] = [2, 10];

impl Pool<'_> {
    /// Ends every process at the first multiple of `window` ns (or `end`)
    /// that none has passed, and returns that time. Each process is locked
    /// meanwhile, so none moves on while the end is chosen.
    fn stop(&self, window: u64, end: SimTime) -> SimTime {
        let mut locked: Vec<_> = self
            .lps
            .iter()
            .map(|lp| lp.lock().expect("no worker panicked"))
            .collect();
        let furthest = locked
            .iter()
            .map(|lp| lp.engine().now().0)
            .max()
            .unwrap_or(0);
        let at = SimTime((furthest.div_ceil(window) * window).min(end.0));
        for lp in &mut locked {
            lp.engine_mut().truncate_end(at);
        }
        at
    }

    /// Virtual time every receiving half (the processes from `first` on)
    /// has passed, in ns.
    fn slowest(&self, first: usize) -> u64 {
        self.reached[first..]
            .iter()
            .map(|r| r.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    /// Gives the processes to the workers again, by the time each has
    /// taken so far, if that evens the load out noticeably.
    fn rebalance(&self, workers: usize) {
        let time: Vec<u64> = self
            .busy
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let load = |owners: &[usize]| {
            (0..workers)
                .map(|w| {
                    (0..owners.len())
                        .filter(|&i| owners[i] == w)
                        .map(|i| time[i])
                        .sum::<u64>()
                })
                .max()
                .unwrap_or(0)
        };
        let now: Vec<usize> = self
            .owner
            .iter()
            .map(|o| o.load(Ordering::Relaxed))
            .collect();
        let better = lpt(&time, workers);
        if load(&better) * 10 < load(&now) * 9 {
            for (o, w) in self.owner.iter().zip(better) {
                o.store(w, Ordering::Relaxed);
            }
        }
    }

    /// One worker: steps the first of its processes that can go on, in
    /// priority order, until every process is done.
    fn work(&self, me: usize, between: &mut dyn FnMut()) {
        let mut idle = 0u32;
        while self.done.iter().any(|d| !d.load(Ordering::Acquire)) {
            let mut progressed = false;
            for (i, lp) in self.lps.iter().enumerate() {
                if self.owner[i].load(Ordering::Relaxed) != me
                    || self.done[i].load(Ordering::Acquire)
                {
                    continue;
                }
                let Ok(mut lp) = lp.try_lock() else { continue };
                let packets = lp.engine().counters.packets;
                let started = std::time::Instant::now();
                let step = lp.step();
                let took = started.elapsed().as_nanos() as u64;
                self.busy[i].fetch_add(took, Ordering::Relaxed);
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

/// Which worker runs which process at first: each process stays on one
/// worker (so its state stays in that core's caches) unless a rebalance
/// moves it. Processes are weighed by the packets per second of their
/// direction's flows (each half does about half of a direction's work).
fn assign(cfg: &Config, parts: &[Option<Direction>], workers: usize) -> Vec<usize> {
    let pps = |part: Option<Direction>| -> f64 {
        cfg.flows
            .iter()
            .filter(|f| part.is_none_or(|d| d == f.direction))
            .map(|f| f.rate.bps() as f64 / (8.0 * f.size.mean()))
            .sum()
    };
    // Sending halves, then receiving halves, as in `run`; in packets per
    // millisecond, plus one so that an idle direction still weighs.
    let weights: Vec<u64> = (0..2)
        .flat_map(|_| parts.iter().map(|&p| pps(p) as u64 / 1000 + 1))
        .collect();
    lpt(&weights, workers)
}

/// Longest processing time first: each weight, heaviest first (ties by
/// index), to the least loaded worker (ties to the first); returns each
/// one's worker.
fn lpt(weights: &[u64], workers: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(weights[i]), i));
    let mut load = vec![0u64; workers];
    let mut owner = vec![0; weights.len()];
    for i in order {
        let w = (0..workers)
            .min_by_key(|&w| (load[w], w))
            .expect("at least one worker");
        load[w] += weights[i];
        owner[i] = w;
    }
    owner
}

#[cfg(test)]
mod tests {
    use super::lpt;

    #[test]
    fn longest_first_to_the_least_loaded() {
        // 7 and 5 open the two workers; 4 joins 5; 3 joins 7; 1 joins 9.
        assert_eq!(lpt(&[5, 3, 7, 1, 4], 2), vec![1, 0, 0, 1, 1]);
        // Equal weights alternate; one worker takes everything.
        assert_eq!(lpt(&[2, 2, 2, 2], 2), vec![0, 1, 0, 1]);
        assert_eq!(lpt(&[9, 1, 4], 1), vec![0, 0, 0]);
    }
}
