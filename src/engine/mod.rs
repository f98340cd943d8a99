//! The discrete-event engine: it owns virtual time and the event queue, asks
//! each component when it next needs to act, and calls it then.
//!
//! Every component (a link direction, a traffic source, a scenario event) has
//! at most one pending entry, keyed `(time, class, index)`. That key is unique
//! and independent of the order in which entries were pushed, so the run is
//! deterministic by construction: at equal times, scenario events come first
//! (a link that fails at 4 s fails before packets sent at 4 s), then link
//! arrivals in link order, then sources in flow order.
//!
//! Links are the only place where one part of the model hands a packet to
//! another, always at least the link's propagation delay later: the seam along
//! which the model splits into logical processes for parallel execution.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::model::network::rng_for;
use crate::model::{Network, Tap};
use crate::observe::capture::Capture;
use crate::observe::metrics::Metrics;
use crate::observe::timeseries::TimeSeries;
use crate::observe::Observers;
use crate::scenario::{Config, EventConfig};
use crate::traffic::UdpSource;
use crate::units::SimTime;

const CLASS_EVENT: u8 = 0;
const CLASS_LINK: u8 = 1;
const CLASS_SOURCE: u8 = 2;

type Entry = Reverse<(SimTime, u8, u32)>;

/// Work counters of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineCounters {
    /// Entries taken from the event queue.
    pub events: u64,
    /// Packets the sources sent.
    pub packets: u64,
    /// Packets accepted onto a link (one per hop).
    pub hops: u64,
}

pub struct Engine {
    now: SimTime,
    end: SimTime,
    network: Network,
    sources: Vec<UdpSource>,
    events: Vec<EventConfig>,
    heap: BinaryHeap<Entry>,
    /// The time each link's pending entry is for, if it has one.
    link_scheduled: [Option<SimTime>; 6],
    pub observers: Observers,
    pub counters: EngineCounters,
}

impl Engine {
    pub fn new(cfg: &Config, capture: Option<Capture>) -> Self {
        let sources: Vec<_> = cfg
            .flows
            .iter()
            .enumerate()
            .map(|(i, f)| {
                UdpSource::new(i as u32, f, rng_for(cfg.seed, &format!("flow/{}", f.name)))
            })
            .collect();
        let mut heap = BinaryHeap::with_capacity(sources.len() + cfg.events.len() + 8);
        for (i, s) in sources.iter().enumerate() {
            if let Some(t) = s.next_deadline() {
                heap.push(Reverse((t, CLASS_SOURCE, i as u32)));
            }
        }
        for (i, e) in cfg.events.iter().enumerate() {
            heap.push(Reverse((e.at, CLASS_EVENT, i as u32)));
        }
        Engine {
            now: SimTime::ZERO,
            end: SimTime::ZERO + cfg.duration,
            network: Network::new(cfg),
            sources,
            events: cfg.events.clone(),
            heap,
            link_scheduled: [None; 6],
            observers: Observers {
                metrics: Metrics::new(cfg),
                capture,
                timeseries: TimeSeries::new(cfg),
            },
            counters: EngineCounters::default(),
        }
    }

    pub fn now(&self) -> SimTime {
        self.now
    }

    pub fn network(&self) -> &Network {
        &self.network
    }

    fn schedule_link(&mut self, link: usize) {
        if let Some(d) = self.network.next_deadline(link) {
            if self.link_scheduled[link].is_none_or(|s| d < s) {
                self.link_scheduled[link] = Some(d);
                self.heap.push(Reverse((d, CLASS_LINK, link as u32)));
            }
        }
    }

    /// Runs until virtual time `until` (exclusive) or the end of the scenario.
    /// Returns true when the scenario's end has been reached.
    pub fn run_until(&mut self, until: SimTime) -> bool {
        let stop = until.min(self.end);
        while let Some(&Reverse((t, class, index))) = self.heap.peek() {
            if t >= stop {
                break;
            }
            self.heap.pop();
            self.now = t;
            self.counters.events += 1;
            let index = index as usize;
            match class {
                CLASS_EVENT => {
                    let action = self.events[index].action;
                    self.network.handle_action(t, action, &mut self.observers);
                    for link in 0..6 {
                        self.schedule_link(link);
                    }
                }
                CLASS_LINK => {
                    if self.link_scheduled[index] != Some(t) {
                        continue; // superseded by a link-down
                    }
                    self.link_scheduled[index] = None;
                    while self.network.handle_arrival(t, index, &mut self.observers) {}
                    self.schedule_link(index);
                }
                _ => {
                    let source = &mut self.sources[index];
                    if let Some(pkt) = source.poll_transmit(t) {
                        self.counters.packets += 1;
                        self.observers.sent(t, &pkt);
                        if let Some(link) = self.network.handle_send(t, pkt, &mut self.observers) {
                            self.counters.hops += 1;
                            self.schedule_link(link);
                        }
                    }
                    if let Some(next) = self.sources[index].next_deadline() {
                        self.heap.push(Reverse((next, CLASS_SOURCE, index as u32)));
                    }
                }
            }
        }
        if stop == self.end {
            self.now = self.end;
            true
        } else {
            self.now = stop;
            false
        }
    }

    /// Runs to the end and closes the books.
    pub fn run(&mut self) {
        self.run_observed(|_| {});
    }

    /// Runs to the end in slices (at most one time-series interval, or a
    /// hundredth of the run), samples the links' queues at the end of every
    /// interval, calls `between` after each slice, and closes the books.
    /// The slicing never changes the results: `run_until` keeps the event
    /// order, and a queue sample only brings a link's books up to `now`.
    pub fn run_observed(&mut self, mut between: impl FnMut(&Engine)) {
        let interval = self.observers.timeseries.interval_ns();
        let step = (self.end.0 / 100).max(1);
        loop {
            let next_interval = (self.now.0 / interval + 1) * interval;
            let until = SimTime(next_interval.min(self.now.0 + step));
            let done = self.run_until(until);
            if done || self.now.0.is_multiple_of(interval) {
                self.sample_queues();
            }
            between(self);
            if done {
                break;
            }
        }
        self.observers.metrics.finish(self.end);
        self.observers.timeseries.finish();
    }

    /// Records the bytes waiting in every link's queue now.
    fn sample_queues(&mut self) {
        let now = self.now;
        for path in crate::scenario::PathId::ALL {
            for dir in [
                crate::scenario::Direction::In,
                crate::scenario::Direction::Out,
            ] {
                let bytes = self.network.queued_bytes(path, dir, now);
                self.observers
                    .timeseries
                    .queue_sample(now, path, dir, bytes);
            }
        }
    }

    /// Packets still queued or on a wire, per flow.
    pub fn in_flight(&self) -> Vec<u64> {
        let mut counts = vec![0; self.sources.len()];
        for (_, _, link) in self.network.links() {
            for p in link.in_flight() {
                counts[p.flow as usize] += 1;
            }
        }
        counts
    }

    pub fn note(&mut self, text: String) {
        let now = self.now;
        self.observers.note(now, text);
    }
}
