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
//! another: the seam along which the model splits into logical processes
//! for parallel execution. The directions share nothing (`partition`);
//! within a direction, a link's sending side hands each packet to its far
//! end, never the reverse, so a direction splits into a sending and a
//! receiving half joined by a log (`split`), run as tasks on worker
//! threads (`pipeline`).

mod partition;
mod pipeline;
mod queue;
mod sources;
mod split;
#[cfg(test)]
mod tests;

pub use sources::Source;

pub use partition::{processes, run_partitioned};

use queue::{EventQueue, Key};

use crate::model::{Network, Packet, Tap};
use crate::observe::capture::CaptureSink;
use crate::observe::log;
use crate::observe::metrics::Metrics;
use crate::observe::timeseries::TimeSeries;
use crate::observe::{Books, Observers};
use crate::scenario::{Config, Direction, EventConfig};
use crate::units::SimTime;

const CLASS_EVENT: u8 = 0;
const CLASS_CONTROL: u8 = 1;
const CLASS_LINK: u8 = 2;
const CLASS_SOURCE: u8 = 3;

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
    sources: Vec<Source>,
    /// The flow id's source index, for deliveries to TCP hosts.
    source_of_flow: Vec<Option<usize>>,
    /// The time each source's pending entry is for.
    source_scheduled: Vec<Option<SimTime>>,
    events: Vec<EventConfig>,
    heap: EventQueue,
    /// The time each link's pending entry is for, if it has one: none
    /// exactly when the link holds no packet (between steps).
    link_scheduled: [Option<SimTime>; 6],
    /// The same for the control plane.
    control_scheduled: Option<SimTime>,
    pub observers: Observers,
    pub counters: EngineCounters,
    flow_count: usize,
    /// Next sequence number of each flow of real frames injected from outside.
    external_seq: Vec<u64>,
    /// Real frames the network delivered, with the time it delivered them,
    /// until the driver takes them.
    delivered: Vec<(SimTime, Packet, Vec<u8>)>,
    /// Length of a time-series interval, in ns: queues are sampled at
    /// every boundary.
    interval_ns: u64,
    role: Role,
    /// The sending half's log, to its receiving half.
    log: Option<log::Log>,
}

/// What part of its direction a logical process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// All of it.
    Whole,
    /// Sources, routers and link queues; what it sees goes into a log for
    /// the receiving half ([`split`]).
    Send,
    /// The far ends of the links and the books.
    Receive,
}

/// Whether the process running `part` keeps the timeline's notes: scenario
/// events reach every process, and one tells the timeline.
pub fn keeps_notes(part: Option<Direction>) -> bool {
    part != Some(Direction::Out)
}

/// What a finished logical process hands back.
pub struct Outcome {
    pub metrics: Metrics,
    pub timeseries: TimeSeries,
    /// Serializer busy time per link (indexed path * 2 + direction), for the
    /// links that exist.
    pub busy: [Option<crate::units::SimDuration>; 6],
    /// Packets still queued or on a wire at the end, per flow.
    pub in_flight: Vec<u64>,
    pub counters: EngineCounters,
    pub capture: Option<CaptureSink>,
    /// What each TCP flow measured, by flow index.
    pub tcp: Vec<(usize, crate::traffic::tcp::TcpMetrics)>,
}

impl Engine {
    /// One logical process: the whole model, or with `part` only the flows
    /// going that way (the other direction's links stay idle in it).
    pub fn new(cfg: &Config, capture: Option<CaptureSink>, part: Option<Direction>) -> Self {
        let books = Books::new(cfg, keeps_notes(part));
        Self::build(cfg, capture, part, books, Role::Whole)
    }

    fn build(
        cfg: &Config,
        capture: Option<CaptureSink>,
        part: Option<Direction>,
        books: Books,
        role: Role,
    ) -> Self {
        let sources: Vec<_> = cfg
            .flows
            .iter()
            .enumerate()
            .filter(|(_, f)| role != Role::Receive && part.is_none_or(|d| d == f.direction))
            .map(|(i, f)| Source::new(i as u32, f, cfg))
            .collect();
        let mut source_of_flow = vec![None; cfg.flows.len()];
        let mut source_scheduled = vec![None; sources.len()];
        let mut heap = EventQueue::with_capacity(sources.len() + cfg.events.len() + 8);
        for (i, s) in sources.iter().enumerate() {
            if let Some(t) = s.next_deadline() {
                heap.push(Key::new(t, CLASS_SOURCE, i as u32));
                source_scheduled[i] = Some(t);
            }
            if let Some(id) = s.flow_id() {
                source_of_flow[id as usize] = Some(i);
            }
        }
        for (i, e) in cfg.events.iter().enumerate() {
            heap.push(Key::new(e.at, CLASS_EVENT, i as u32));
        }
        let mut engine = Engine {
            now: SimTime::ZERO,
            end: SimTime::ZERO + cfg.duration,
            network: Network::new(cfg),
            sources,
            source_of_flow,
            source_scheduled,
            events: cfg.events.clone(),
            heap,
            link_scheduled: [None; 6],
            control_scheduled: None,
            observers: Observers {
                books,
                capture,
                frames: crate::model::FrameStore::default(),
                tcp_delivered: Vec::new(),
            },
            counters: EngineCounters::default(),
            flow_count: cfg.flows.len(),
            external_seq: vec![0; cfg.flows.len()],
            delivered: Vec::new(),
            interval_ns: cfg.report.interval.as_nanos().max(1),
            role,
            log: None,
        };
        engine.schedule_control();
        engine
    }

    pub fn now(&self) -> SimTime {
        self.now
    }

    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Hands the TCP segments the network delivered to their hosts, and
    /// reschedules their flows (an answer may now be due earlier).
    fn deliver_tcp(&mut self, now: SimTime) {
        // In delivery order: segments that arrive at the same instant must
        // reach the host in the order they arrived.
        let delivered = std::mem::take(&mut self.observers.tcp_delivered);
        for pkt in delivered {
            let bytes = self.observers.frames.take(pkt.frame);
            let Some(i) = self.source_of_flow[pkt.flow as usize] else {
                // A real frame from outside: the driver writes it out.
                self.delivered.push((now, pkt, bytes));
                continue;
            };
            self.sources[i].handle_delivery(now, &pkt, bytes);
            if let Some(d) = self.sources[i].next_deadline() {
                if self.source_scheduled[i].is_none_or(|s| d < s) {
                    self.source_scheduled[i] = Some(d);
                    self.heap.push(Key::new(d, CLASS_SOURCE, i as u32));
                }
            }
        }
    }

    /// Adds a flow that appears during the run (real frames from outside,
    /// `FlowKind::External`); returns its id. The caller keeps the flow's
    /// config for the report, in the same order.
    pub fn add_flow(&mut self, f: &crate::scenario::FlowConfig) -> crate::model::FlowId {
        let id = self.flow_count as crate::model::FlowId;
        self.flow_count += 1;
        self.network.add_flow(f);
        self.observers.add_flow(f);
        self.source_of_flow.push(None);
        self.external_seq.push(0);
        id
    }

    /// Hands a real frame of `flow`, holding an IP packet of `ip_len` bytes,
    /// to the network at `now` (not before the engine's current time: run it
    /// to `now` first). `hash` picks among equal-cost paths, as a flow's
    /// 5-tuple hash does.
    pub fn inject(
        &mut self,
        now: SimTime,
        flow: crate::model::FlowId,
        hash: u32,
        ip_len: u32,
        frame: Vec<u8>,
    ) {
        debug_assert!(now >= self.now, "frames are injected in time order");
        self.now = now;
        let seq = &mut self.external_seq[flow as usize];
        let pkt = Packet {
            hash,
            frame: self.observers.frames.insert(frame),
            ..Packet::new(flow, *seq, now, ip_len)
        };
        *seq += 1;
        self.counters.packets += 1;
        // Sending only queues or drops: nothing is delivered at once.
        if let Some(link) = self.network.handle_send(now, pkt, &mut self.observers) {
            self.counters.hops += 1;
            self.schedule_link(link);
        }
    }

    /// The real frames delivered since the last call, in delivery order,
    /// each with the virtual time it reached its destination.
    pub fn take_delivered(&mut self) -> Vec<(SimTime, Packet, Vec<u8>)> {
        std::mem::take(&mut self.delivered)
    }

    /// When the engine next has something to do, if ever (entries
    /// superseded by earlier ones may make this early, never late).
    pub fn next_deadline(&self) -> Option<SimTime> {
        self.heap.peek().map(Key::time)
    }

    /// Ends the run at `end` instead of the scenario's end (a live run
    /// stopped early), if that is earlier.
    pub fn truncate_end(&mut self, end: SimTime) {
        if end.max(self.now) < self.end {
            self.end = end.max(self.now);
            self.observers.books.truncate(self.end);
        }
    }

    /// Chunks of observations written and not yet read (0 when the process
    /// keeps its own books).
    pub fn log_backlog(&self) -> usize {
        self.log.as_ref().map_or(0, |log| log.backlog())
    }

    /// The scenario's end.
    pub fn end(&self) -> SimTime {
        self.end
    }

    fn schedule_control(&mut self) {
        if let Some(d) = self.network.control_deadline() {
            if self.control_scheduled.is_none_or(|s| d < s) {
                self.control_scheduled = Some(d);
                self.heap.push(Key::new(d, CLASS_CONTROL, 0));
            }
        }
    }

    fn schedule_link(&mut self, link: usize) {
        if let Some(d) = self.network.next_deadline(link) {
            if self.link_scheduled[link].is_none_or(|s| d < s) {
                self.link_scheduled[link] = Some(d);
                self.heap.push(Key::new(d, CLASS_LINK, link as u32));
            }
        }
    }

    /// Runs until virtual time `until` (exclusive) or the end of the scenario.
    /// Returns true when the scenario's end has been reached.
    pub fn run_until(&mut self, until: SimTime) -> bool {
        let stop = until.min(self.end);
        while let Some(key) = self.heap.peek() {
            if key.time() >= stop {
                break;
            }
            self.step(key);
        }
        if stop == self.end {
            self.now = self.end;
            true
        } else {
            self.now = stop;
            false
        }
    }

    /// Handles `key`, the queue's top entry.
    #[inline(always)]
    fn step(&mut self, key: Key) {
        let t = key.time();
        self.now = t;
        self.counters.events += 1;
        let (class, index) = (key.class(), key.index() as usize);
        if class == CLASS_SOURCE {
            if self.source_scheduled[index] != Some(t) {
                self.heap.pop(); // superseded by an earlier deadline
                return;
            }
            self.run_source(t, index);
            return;
        }
        if class == CLASS_LINK && self.link_scheduled[index] == Some(t) {
            // Also hot: every packet due now arrives, and the link's next
            // head replaces its entry in place.
            let next = self.network.handle_arrivals(t, index, &mut self.observers);
            self.link_scheduled[index] = next;
            match next {
                Some(d) => self.heap.replace_top(Key::new(d, CLASS_LINK, index as u32)),
                None => self.heap.pop(),
            }
            if !self.observers.tcp_delivered.is_empty() {
                self.deliver_tcp(t);
            }
            return;
        }
        self.heap.pop();
        match class {
            CLASS_EVENT if self.role == Role::Send => self.send_half_event(t, index),
            CLASS_EVENT => {
                let action = self.events[index].action;
                self.network.handle_action(t, action, &mut self.observers);
                self.deliver_tcp(t);
                for link in 0..6 {
                    if self.network.next_deadline(link).is_none() {
                        // Emptied (a link down): its entry, if any, is stale.
                        self.link_scheduled[link] = None;
                    }
                    self.schedule_link(link);
                }
                self.schedule_control();
            }
            CLASS_CONTROL => {
                if self.control_scheduled != Some(t) {
                    return; // superseded by an earlier deadline
                }
                self.control_scheduled = None;
                self.network.handle_control(t, &mut self.observers);
                self.schedule_control();
            }
            // A link entry superseded by a link-down or an earlier one.
            _ => {}
        }
    }

    /// The hot path: source `index`, whose entry is the queue's top, sends
    /// what is due at `t`; its next entry replaces the current one in place
    /// (one sift instead of a pop and a push).
    #[inline(always)]
    fn run_source(&mut self, t: SimTime, index: usize) {
        let Source::Udp(udp) = &mut self.sources[index] else {
            return self.run_tcp_source(t, index);
        };
        // One packet per entry: the next is due later. Sending only queues
        // or drops, so nothing reaches a TCP host here.
        let pkt = udp.poll_transmit(t);
        let next = udp.next_deadline();
        let link = match pkt {
            Some(pkt) => self.send(t, index, pkt),
            None => None,
        };
        self.reschedule_source(index, next);
        if let Some(link) = link {
            // A link with an entry held packets before this one, so its
            // head, and the entry, stay.
            if self.role != Role::Send && self.link_scheduled[link].is_none() {
                self.schedule_link(link);
            }
        }
    }

    /// Source `index` hands `pkt` to the network (or, in a sending half, to
    /// the log too) at `t`; returns the link it was put on, if any.
    #[inline(always)]
    fn send(&mut self, t: SimTime, index: usize, pkt: Packet) -> Option<usize> {
        self.counters.packets += 1;
        let link = if self.role == Role::Send {
            self.send_half(t, Key::new(t, CLASS_SOURCE, index as u32), pkt)
        } else {
            self.network.handle_send(t, pkt, &mut self.observers)
        };
        if link.is_some() {
            self.counters.hops += 1;
        }
        link
    }

    /// Source `index`, whose entry is the queue's top, is next due at `next`.
    #[inline(always)]
    fn reschedule_source(&mut self, index: usize, next: Option<SimTime>) {
        self.source_scheduled[index] = next;
        match next {
            Some(next) => self
                .heap
                .replace_top(Key::new(next, CLASS_SOURCE, index as u32)),
            None => self.heap.pop(),
        }
    }

    /// [`Engine::run_source`] for a TCP flow, whose hosts may send several
    /// segments at once.
    #[inline(never)]
    fn run_tcp_source(&mut self, t: SimTime, index: usize) {
        // Links that got a packet, scheduled once the source's entry is
        // back in place.
        let mut queued = [false; 6];
        while let Some(pkt) = self.sources[index].poll_transmit(t, &mut self.observers.frames) {
            if let Some(link) = self.send(t, index, pkt) {
                queued[link] = true;
            }
        }
        let next = self.sources[index].next_deadline();
        self.reschedule_source(index, next);
        if self.role != Role::Send {
            for (link, _) in queued.iter().enumerate().filter(|(_, q)| **q) {
                self.schedule_link(link);
            }
        }
        if !self.observers.tcp_delivered.is_empty() {
            self.deliver_tcp(t);
        }
    }

    /// Ends a window of virtual time (hands captured frames to the writer).
    pub fn end_window(&mut self) {
        if let Some(c) = &mut self.observers.capture {
            c.end_window();
        }
    }

    /// Runs until `until` (or the end), stopping at every time-series
    /// interval boundary to sample the links' queues. Sampling only brings a
    /// link's books up to `now`, so it never changes the results.
    pub fn advance(&mut self, until: SimTime) -> bool {
        let interval = self.interval_ns;
        loop {
            let next_interval = SimTime((self.now.0 / interval + 1) * interval);
            let done = self.run_until(next_interval.min(until));
            if done || self.now.0.is_multiple_of(interval) {
                self.sample_queues();
            }
            if done || self.now >= until {
                return done;
            }
        }
    }

    /// Records the bytes waiting in every link's queue now.
    fn sample_queues(&mut self) {
        let now = self.now;
        if let Some(log) = &mut self.log {
            log.push(log::Item::Mark(Key::new(now, CLASS_EVENT, 0).halves()));
        }
        for path in crate::scenario::PathId::ALL {
            for dir in [Direction::In, Direction::Out] {
                let bytes = self.network.queued_bytes(path, dir, now);
                match &mut self.log {
                    // The receiving half keeps the books.
                    Some(log) => log.push(log::Item::Seen(Box::new(log::Seen::QueueSample(
                        now, path, dir, bytes,
                    )))),
                    None => self
                        .observers
                        .books
                        .timeseries
                        .queue_sample(now, path, dir, bytes),
                }
            }
        }
    }

    /// Hands over what is left in the log and closes it (a process that
    /// logs, once it has reached the end): its reader then sees the end.
    pub fn close_log(&mut self) {
        if let Some(log) = &mut self.log {
            log.close();
        }
    }

    /// Closes the books at the scenario's end (the caller has run to it).
    pub fn finish(mut self) -> Outcome {
        self.observers.books.metrics.finish(self.end);
        self.observers.books.timeseries.finish();
        let mut in_flight = vec![0; self.flow_count];
        let mut busy = [None; 6];
        for (path, dir, link) in self.network.links() {
            busy[path as usize * 2 + dir as usize] = Some(link.busy_time(self.end));
            for p in link.in_flight() {
                in_flight[p.flow as usize] += 1;
            }
        }
        let tcp = self
            .sources
            .iter()
            .filter_map(|s| Some((s.flow_id()? as usize, s.tcp_metrics(self.end)?)))
            .collect();
        Outcome {
            tcp,
            metrics: self.observers.books.metrics,
            timeseries: self.observers.books.timeseries,
            busy,
            in_flight,
            counters: self.counters,
            capture: self.observers.capture,
        }
    }

    pub fn note(&mut self, text: String) {
        let now = self.now;
        self.observers.note(now, text);
    }
}
