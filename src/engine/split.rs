//! A direction in two halves, for two threads: the sending half (sources,
//! routers, the ExpressRoute gateway and MSEE policer on the way out, link
//! queues and serializers) and the receiving half (the far ends of the
//! links, the policer and gateway on the way in, the books).
//!
//! Without a control plane and without TCP, nothing that reaches the far
//! end of a link changes what is sent: the sending half never waits for the
//! receiving half, whatever the links' latencies (zero included). It logs
//! every packet it puts on a link, with its arrival time, and every call it
//! makes on its tap, each group marked with the key of the model's event
//! that made it ([`crate::observe::log`]). The receiving half runs its own
//! events (arrivals, scenario events) and the sending half's groups merged
//! in key order: the order one process would have run them in. So its links
//! hold the same packets and its books hear the same calls in the same
//! order as in one process, and every output is the same to the byte.
//!
//! Scenario events reach both halves: the sending half applies them to its
//! routes and queues silently; the receiving half applies them to its own
//! copy of the network (routes included) and tells the observers, dropping
//! the packets in flight on a failed link.

use super::{Engine, Key, Outcome, Role, CLASS_EVENT, CLASS_SOURCE};
use crate::model::{DropCause, FlowId, Packet, Place, Tap};
use crate::observe::log::{self, Item, LogReader, Peek, Seen};
use crate::observe::Books;
use crate::scenario::{Config, Direction, PathId};
use crate::units::SimTime;

/// The two halves of direction `part` and the log between them.
pub fn halves(cfg: &Config, part: Option<Direction>) -> (Engine, Receiver) {
    let (log, reader) = log::log();
    let books = || Books::new(cfg, super::keeps_notes(part));
    let mut send = Engine::build(cfg, None, part, books(), Role::Send);
    send.log = Some(log);
    let receive = Engine::build(cfg, None, part, books(), Role::Receive);
    (
        send,
        Receiver {
            engine: receive,
            reader,
        },
    )
}

impl Engine {
    /// The sending half hands `pkt`, sent by a source in event `key` at
    /// `now`, to the network, and logs what happened; returns the link it
    /// was put on, if any.
    #[inline(never)]
    pub(super) fn send_half(&mut self, now: SimTime, key: Key, pkt: Packet) -> Option<usize> {
        let metrics = &mut self.observers.books.metrics;
        let mut tap = SendTap {
            log: self.log.as_mut().expect("the sending half logs"),
            metrics,
            key,
            marked: false,
            queued: None,
        };
        let link = self.network.handle_send(now, pkt, &mut tap);
        if let Some(link) = link {
            let queued = tap.queued.expect("a packet put on a link was enqueued");
            let log = self.log.as_mut().expect("the sending half logs");
            log.push(Item::Queued(log::Queued {
                time: now,
                index: key.index(),
                flow: queued.flow,
                ip_len: queued.ip_len,
                wire_len: queued.wire_len,
                arrive: self.network.last_arrival(link),
                link: link as u8,
            }));
            // The receiving half has the packets that arrived: forget them
            // now and then, many at a time.
            if self.counters.packets.is_multiple_of(256) {
                for link in 0..6 {
                    self.network.forget_arrived(link, now);
                }
            }
        }
        link
    }

    /// The sending half applies scenario event `index` at `now` to its own
    /// state; the receiving half counts it and tells the observers.
    #[cold]
    #[inline(never)]
    pub(super) fn send_half_event(&mut self, now: SimTime, index: usize) {
        self.counters.events -= 1;
        let action = self.events[index].action;
        self.network
            .handle_action(now, action, &mut crate::model::NullTap);
    }

    /// The sending half ends a step at `now`: whatever it does next has a
    /// key from `(now, 0, 0)` on, so the receiving half may go on to there.
    pub(super) fn end_step(&mut self) {
        let mark = Key::new(self.now, CLASS_EVENT, 0).halves();
        let log = self.log.as_mut().expect("the sending half logs");
        log.push(Item::Mark(mark));
        log.flush();
    }
}

/// The sending half's tap for one packet. What is sent, enqueued and passed
/// by the ExpressRoute gateway on the way out it counts in its own metrics
/// (sums, added to the receiving half's at the end); everything else, whose
/// order matters (drops, path changes), it logs after the event's mark.
struct SendTap<'a> {
    log: &'a mut log::Log,
    metrics: &'a mut crate::observe::metrics::Metrics,
    key: Key,
    marked: bool,
    /// The packet as it was put on a link.
    queued: Option<Packet>,
}

impl SendTap<'_> {
    #[cold]
    fn log(&mut self, seen: Seen) {
        if !self.marked {
            self.marked = true;
            self.log.push(Item::Mark(self.key.halves()));
        }
        self.log.push(Item::Seen(Box::new(seen)));
    }
}

impl Tap for SendTap<'_> {
    #[inline]
    fn gateway_passed(&mut self, now: SimTime, dir: Direction, pkt: &Packet) {
        self.metrics.gateway_passed(now, dir, pkt)
    }
    #[inline]
    fn enqueued(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        self.queued = Some(*pkt);
        self.metrics.enqueued(now, path, dir, pkt)
    }
    fn sent(&mut self, now: SimTime, pkt: &Packet) {
        self.metrics.sent(now, pkt)
    }
    fn link_arrived(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        self.log(Seen::LinkArrived(now, path, dir, *pkt))
    }
    fn link_delivered(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        self.log(Seen::LinkDelivered(now, path, dir, *pkt))
    }
    fn dropped(&mut self, now: SimTime, place: Place, cause: DropCause, pkt: &Packet) {
        self.log(Seen::Dropped(now, place, cause, *pkt))
    }
    fn delivered(&mut self, now: SimTime, pkt: &Packet) {
        self.log(Seen::Delivered(now, *pkt))
    }
    fn path_changed(&mut self, now: SimTime, flow: FlowId, from: PathId, to: PathId) {
        self.log(Seen::PathChanged(now, flow, from, to))
    }
    fn failure(&mut self, now: SimTime, path: PathId, what: &str) {
        self.log(Seen::Failure(now, path, what.to_string()))
    }
    fn control_down(&mut self, now: SimTime, path: PathId) {
        self.log(Seen::ControlDown(now, path))
    }
    fn note(&mut self, now: SimTime, text: String) {
        self.log(Seen::Note(now, text))
    }
}

/// After every key: the log is closed and read.
const CLOSED: Key = Key(u128::MAX);

/// The receiving half and its end of the log.
pub struct Receiver {
    pub engine: Engine,
    reader: LogReader,
}

/// What a step of the receiving half ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// It handled `budget` records or events.
    More,
    /// It needs what the sending half has not logged yet.
    Starved,
    /// It reached the end of the run.
    Done,
}

impl Receiver {
    /// Runs up to `budget` events and records, in the order of their keys.
    pub fn step(&mut self, budget: u32) -> Received {
        let end = self.engine.end;
        for _ in 0..budget {
            let next_sent = match self.reader.peek() {
                Peek::Item(Item::Mark(k)) => Some(Key::from_halves(*k)),
                Peek::Item(Item::Queued(q)) => {
                    let (q, key) = (*q, Key::new(q.time, CLASS_SOURCE, q.index));
                    match self.engine.heap.peek().filter(|k| k.time() < end) {
                        Some(own) if own < key => self.engine.step(own),
                        // The common case: a packet put on a link, read in
                        // place.
                        _ => {
                            self.reader.skip();
                            self.engine.receive(q);
                        }
                    }
                    continue;
                }
                Peek::Item(_) => {
                    // The rest of the group being read.
                    self.apply_next();
                    continue;
                }
                Peek::Empty => None,
                Peek::Closed => Some(CLOSED),
            };
            let own = self.engine.heap.peek().filter(|k| k.time() < end);
            match (own, next_sent) {
                (Some(own), Some(sent)) if own < sent => self.engine.step(own),
                (None, Some(CLOSED)) => return Received::Done,
                (_, Some(_)) => self.apply_next(),
                (_, None) => return Received::Starved,
            }
        }
        Received::More
    }

    /// Takes the next record and does what it says.
    fn apply_next(&mut self) {
        let Some(item) = self.reader.take() else {
            return;
        };
        let e = &mut self.engine;
        match item {
            Item::Mark(k) => e.now = Key::from_halves(k).time().max(e.now),
            Item::Seen(seen) => (*seen).replay(&mut e.observers.books),
            Item::Queued(q) => e.receive(q),
        }
    }
}

impl Engine {
    /// The receiving half: a packet the sending half put on a link.
    #[inline]
    fn receive(&mut self, q: log::Queued) {
        self.now = q.time.max(self.now);
        let link = q.link as usize;
        self.network.push_in_flight(link, q.arrive, q.packet());
        // Behind a head that already has its entry, nothing to schedule.
        if self.link_scheduled[link].is_none() {
            self.schedule_link(link);
        }
    }
}

/// The outcome of a direction run in two halves, once both reached the end.
pub fn finish(send: Engine, receive: Engine) -> Outcome {
    let end = send.end;
    let mut busy = [None; 6];
    for (path, dir, link) in send.network.links() {
        busy[path as usize * 2 + dir as usize] = Some(link.busy_time(end));
    }
    let counters = send.counters;
    let mut o = receive.finish();
    o.metrics.add_sent_counts(&send.observers.books.metrics);
    o.busy = busy;
    o.counters.events += counters.events;
    o.counters.packets += counters.packets;
    o.counters.hops += counters.hops;
    o
}
