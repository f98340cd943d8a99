//! Counters and latency histograms, fed by the network's [`Tap`] calls.
//!
//! Memory is bounded by the number of flows, links and minutes simulated,
//! never by the number of packets.

use hdrhistogram::Histogram;

use crate::model::{DropCause, FlowId, Packet, Place, Tap};
use crate::scenario::{Config, Direction, PathId};
use crate::units::{SimDuration, SimTime, NS_PER_SEC};

/// Latency histograms keep 4 significant digits (128 ns resolution at 2 ms)
/// up to 60 s; longer latencies are recorded as 60 s.
const HIST_MAX_NS: u64 = 60 * NS_PER_SEC;
const HIST_DIGITS: u8 = 4;
const MINUTE: u64 = 60 * NS_PER_SEC;
/// Slots of a [`Latency`]'s pending counts (a power of two).
const PENDING_SLOTS: usize = 16;

pub type DropCounts = [u64; DropCause::ALL.len()];

/// A latency distribution: an HdrHistogram plus the exact min, max and sum.
///
/// `hist`, `min`, `max` and `sum` are complete only after [`Latency::flush`]
/// ([`Metrics::finish`] flushes every one). `hist` is an HdrHistogram of
/// [`HIST_DIGITS`] digits once it has counts (or once [`Metrics::finish`]
/// made the flows' ones); until then a two-value stand-in, as a histogram of
/// 4 digits takes 256 kB from the start and most links never see a packet.
#[derive(Clone)]
pub struct Latency {
    pub hist: Histogram<u64>,
    pub min: u64,
    pub max: u64,
    pub sum: u128,
    /// Counts not yet in the fields above: `(ns, count)` slots,
    /// direct-mapped by value. Latencies repeat (a constant one on an
    /// uncongested link, one per frame size), so most records only count
    /// here. The histogram, min, max and sum end the same whatever the order
    /// values reach them in (the histogram's size follows the largest), so
    /// slots are settled in any order.
    pending: [(u64, u64); PENDING_SLOTS],
}

impl Latency {
    fn new() -> Self {
        Latency {
            hist: Histogram::new_with_bounds(1, 2, 0).expect("valid stand-in bounds"),
            min: u64::MAX,
            max: 0,
            sum: 0,
            pending: [(0, 0); PENDING_SLOTS],
        }
    }

    #[inline]
    pub fn record(&mut self, d: SimDuration) {
        let ns = d.as_nanos();
        // A slot holding `ns` (or the empty `(0, 0)` for `ns` = 0) counts it.
        let slot = &mut self.pending[(ns ^ ns >> 8) as usize % PENDING_SLOTS];
        if slot.0 == ns {
            slot.1 += 1;
        } else {
            let old = std::mem::replace(slot, (ns, 1));
            if old.1 > 0 {
                self.settle(old);
            }
        }
    }

    /// Replaces the stand-in by the real histogram, if not done yet.
    fn materialize(&mut self) {
        if self.hist.sigfig() != HIST_DIGITS {
            // Starts small and grows with the largest latency recorded, so
            // memory follows the latencies seen, not the 60 s bound.
            self.hist = Histogram::new(HIST_DIGITS).expect("valid histogram precision");
        }
    }

    /// Adds `n` latencies of `ns` to the histogram, min, max and sum.
    fn settle(&mut self, (ns, n): (u64, u64)) {
        self.materialize();
        // `record_n` grows the histogram (auto-resize); values are capped at
        // the documented maximum, so it cannot fail.
        let _ = self.hist.record_n(ns.clamp(1, HIST_MAX_NS), n);
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
        self.sum += ns as u128 * n as u128;
    }

    /// Moves the pending counts into `hist`, `min`, `max` and `sum`.
    pub fn flush(&mut self) {
        for i in 0..PENDING_SLOTS {
            let slot = std::mem::take(&mut self.pending[i]);
            if slot.1 > 0 {
                self.settle(slot);
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.hist.len() + self.pending.iter().map(|s| s.1).sum::<u64>()
    }
}

/// A gap in a flow's deliveries during which its packets were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Outage {
    /// Arrival of the last packet delivered before the gap (or the flow's start).
    pub start_ns: u64,
    /// Arrival of the first packet delivered after it (or the end of the run).
    pub end_ns: u64,
    pub lost_packets: u64,
}

pub struct FlowStats {
    pub sent_packets: u64,
    pub sent_bytes: u64,
    pub received_packets: u64,
    pub received_bytes: u64,
    pub drops: DropCounts,
    pub latency: Latency,
    pub outages: Vec<Outage>,
    last_delivery: SimTime,
    lost_since_delivery: u64,
    /// Set when the flow moved to a path, until its first delivery there.
    awaiting_first: Option<PathId>,
    /// The path of its last delivered packet.
    path: Option<PathId>,
}

#[derive(Default)]
pub struct HopStats {
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub delivered_packets: u64,
    pub delivered_bytes: u64,
    pub drops: DropCounts,
}

pub struct LinkStats {
    pub hop: HopStats,
    pub latency: Latency,
    /// Frame bits passed by the MSEE policer, per minute (circuit links).
    pub policed_bits: Vec<u64>,
    /// Frame bits dropped by the MSEE policer, per minute.
    pub dropped_bits: Vec<u64>,
}

/// What one flow went through in one failure.
#[derive(Debug, Clone)]
pub struct FlowFailover {
    pub flow: usize,
    /// The path its packets were delivered on when the failure happened.
    pub before: PathId,
    /// The first other path a packet was delivered on afterwards.
    pub after: Option<PathId>,
    pub converged: Option<SimTime>,
    pub lost_packets: u64,
    pub lost_bytes: u64,
}

/// One failure of a path and how the network got over it.
#[derive(Debug, Clone)]
pub struct FailoverRecord {
    pub at: SimTime,
    pub path: PathId,
    pub what: String,
    /// When the CE's session over the path went down (or its interface).
    pub detected: Option<SimTime>,
    /// The flows that were on the failed path.
    pub flows: Vec<FlowFailover>,
}

pub struct TimelineEntry {
    pub time: SimTime,
    pub text: String,
}

pub struct Metrics {
    pub flows: Vec<FlowStats>,
    flow_names: Vec<String>,
    flow_dirs: Vec<Direction>,
    /// Indexed like the network's links (path * 2 + direction): an array,
    /// so that such an index needs no check.
    pub links: [LinkStats; 6],
    pub gateway: [HopStats; 2],
    /// `no-route` drops at the CE (`[in]`) and on the Azure side (`[out]`).
    pub router_drops: [DropCounts; 2],
    /// Every drop by where and why (complete after [`Metrics::finish`]).
    pub drop_sites: std::collections::BTreeMap<(Place, DropCause), u64>,
    /// Drops at one site not yet in `drop_sites`: a run of drops at the same
    /// place for the same cause (a policer at work) costs no map look-up.
    drop_run: ((Place, DropCause), u64),
    pub timeline: Vec<TimelineEntry>,
    pub failovers: Vec<FailoverRecord>,
    /// Flow entries of failovers not yet converged (skips the per-packet
    /// bookkeeping when zero).
    open_failovers: usize,
    outage_min: SimDuration,
}

impl FlowStats {
    fn new(f: &crate::scenario::FlowConfig) -> Self {
        FlowStats {
            sent_packets: 0,
            sent_bytes: 0,
            received_packets: 0,
            received_bytes: 0,
            drops: DropCounts::default(),
            latency: Latency::new(),
            outages: Vec::new(),
            last_delivery: f.start,
            lost_since_delivery: 0,
            awaiting_first: None,
            path: None,
        }
    }
}

fn link_slot(path: PathId, dir: Direction) -> usize {
    path as usize * 2 + dir as usize
}

impl Metrics {
    pub fn new(cfg: &Config) -> Self {
        let minutes = cfg.duration.as_nanos().div_ceil(MINUTE) as usize;
        Metrics {
            flows: cfg.flows.iter().map(FlowStats::new).collect(),
            flow_names: cfg.flows.iter().map(|f| f.name.clone()).collect(),
            flow_dirs: cfg.flows.iter().map(|f| f.direction).collect(),
            links: std::array::from_fn(|_| LinkStats {
                hop: HopStats::default(),
                latency: Latency::new(),
                policed_bits: vec![0; minutes],
                dropped_bits: vec![0; minutes],
            }),
            gateway: Default::default(),
            router_drops: Default::default(),
            drop_sites: Default::default(),
            drop_run: ((Place::Router(Direction::In), DropCause::NoRoute), 0),
            timeline: Vec::new(),
            failovers: Vec::new(),
            open_failovers: 0,
            outage_min: cfg.report.outage_min,
        }
    }

    /// Counts a flow that appears during the run (real frames from outside).
    pub fn add_flow(&mut self, f: &crate::scenario::FlowConfig) {
        self.flows.push(FlowStats::new(f));
        self.flow_names.push(f.name.clone());
        self.flow_dirs.push(f.direction);
    }

    /// Ends the books at `end`, before the scenario's end (a live run
    /// stopped early): per-minute counters past it go.
    pub fn truncate(&mut self, end: SimTime) {
        let minutes = (end.0.div_ceil(MINUTE) as usize).max(1);
        for l in &mut self.links {
            l.policed_bits.truncate(minutes);
            l.dropped_bits.truncate(minutes);
        }
    }

    /// Closes the books at the end of the run: completes the latency
    /// histograms; a flow still losing packets at `end` is in an outage that
    /// lasts until `end`.
    pub fn finish(&mut self, end: SimTime) {
        self.flush_drop_run();
        for l in self.flows.iter_mut().map(|f| &mut f.latency) {
            // Every flow's histogram is written out, empty or not.
            l.materialize();
            l.flush();
        }
        for l in self.links.iter_mut().map(|l| &mut l.latency) {
            l.flush();
        }
        let min = self.outage_min;
        for f in &mut self.flows {
            if f.lost_since_delivery > 0 && end.saturating_since(f.last_delivery) >= min {
                f.outages.push(Outage {
                    start_ns: f.last_delivery.0,
                    end_ns: end.0,
                    lost_packets: f.lost_since_delivery,
                });
                f.lost_since_delivery = 0;
            }
        }
    }

    /// Adds the counters that `sent`, `enqueued` and `gateway_passed` keep,
    /// as `other` kept them: the sending half of a direction counts what it
    /// sends itself (sums, which need no order), and its receiving half,
    /// which keeps everything else, adds them at the end.
    pub fn add_sent_counts(&mut self, other: &Metrics) {
        for (mine, theirs) in self.flows.iter_mut().zip(&other.flows) {
            mine.sent_packets += theirs.sent_packets;
            mine.sent_bytes += theirs.sent_bytes;
        }
        for (mine, theirs) in self.links.iter_mut().zip(&other.links) {
            mine.hop.tx_packets += theirs.hop.tx_packets;
            mine.hop.tx_bytes += theirs.hop.tx_bytes;
            for (a, b) in mine.policed_bits.iter_mut().zip(&theirs.policed_bits) {
                *a += b;
            }
        }
        for (mine, theirs) in self.gateway.iter_mut().zip(&other.gateway) {
            mine.tx_packets += theirs.tx_packets;
            mine.tx_bytes += theirs.tx_bytes;
            mine.delivered_packets += theirs.delivered_packets;
            mine.delivered_bytes += theirs.delivered_bytes;
        }
    }

    /// Takes over what another logical process, the one running direction
    /// `dir`, observed: its flows, its links and gateway direction, its drops
    /// and its timeline entries (merged in time order, this process's first
    /// at equal times).
    pub fn absorb(&mut self, other: Metrics, dir: Direction) {
        for ((mine, theirs), d) in self.flows.iter_mut().zip(other.flows).zip(&self.flow_dirs) {
            if *d == dir {
                *mine = theirs;
            }
        }
        for (i, l) in other.links.into_iter().enumerate() {
            if i % 2 == dir as usize {
                self.links[i] = l;
            }
        }
        let [g_in, g_out] = other.gateway;
        self.gateway[dir as usize] = if dir == Direction::In { g_in } else { g_out };
        self.router_drops[dir as usize] = other.router_drops[dir as usize];
        for (k, v) in other.drop_sites {
            *self.drop_sites.entry(k).or_insert(0) += v;
        }
        for (mine, theirs) in self.failovers.iter_mut().zip(other.failovers) {
            mine.detected = mine.detected.or(theirs.detected);
            mine.flows.extend(theirs.flows);
            mine.flows.sort_by_key(|f| f.flow);
        }
        let mine = std::mem::take(&mut self.timeline);
        let mut theirs = other.timeline.into_iter().peekable();
        for e in mine {
            while theirs.peek().is_some_and(|t| t.time < e.time) {
                self.timeline.push(theirs.next().expect("peeked"));
            }
            self.timeline.push(e);
        }
        self.timeline.extend(theirs);
    }

    fn flush_drop_run(&mut self) {
        let (site, n) = self.drop_run;
        if n > 0 {
            *self.drop_sites.entry(site).or_insert(0) += n;
            self.drop_run.1 = 0;
        }
    }

    /// A link's counters for a packet that came out of its far end.
    #[inline(always)]
    fn count_delivered(
        l: &mut LinkStats,
        now: SimTime,
        path: PathId,
        dir: Direction,
        pkt: &Packet,
    ) {
        l.hop.delivered_packets += 1;
        l.hop.delivered_bytes += pkt.wire_len as u64;
        l.latency.record(now - pkt.enqueued);
        if dir == Direction::In && path != PathId::Vpn {
            let m = Self::minute(now, l.policed_bits.len());
            l.policed_bits[m] += 8 * pkt.wire_len as u64;
        }
    }

    /// A packet of a flow came out of a link on `path`: the flow's path,
    /// failovers it ends, its first packet on a new path.
    #[inline(always)]
    fn flow_delivered_via(&mut self, now: SimTime, path: PathId, pkt: &Packet) {
        let f = &mut self.flows[pkt.flow as usize];
        f.path = Some(path);
        if self.open_failovers > 0 {
            for rec in &mut self.failovers {
                for fe in rec
                    .flows
                    .iter_mut()
                    .filter(|fe| fe.flow == pkt.flow as usize && fe.converged.is_none())
                {
                    if path != rec.path {
                        fe.converged = Some(now);
                        fe.after = Some(path);
                        self.open_failovers -= 1;
                    }
                }
            }
        }
        if f.awaiting_first == Some(path) {
            f.awaiting_first = None;
            self.first_delivery(now, path, pkt);
        }
    }

    #[cold]
    fn first_delivery(&mut self, now: SimTime, path: PathId, pkt: &Packet) {
        let text = format!(
            "flow {}: first packet delivered via {}",
            self.flow_names[pkt.flow as usize],
            path.as_str()
        );
        self.timeline.push(TimelineEntry { time: now, text });
    }

    fn minute(now: SimTime, len: usize) -> usize {
        ((now.0 / MINUTE) as usize).min(len.saturating_sub(1))
    }
}

impl Tap for Metrics {
    #[inline]
    fn sent(&mut self, _now: SimTime, pkt: &Packet) {
        let f = &mut self.flows[pkt.flow as usize];
        f.sent_packets += 1;
        f.sent_bytes += pkt.ip_len as u64;
    }

    #[inline]
    fn link_arrived(&mut self, _now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        let l = &mut self.links[link_slot(path, dir)];
        l.hop.rx_packets += 1;
        l.hop.rx_bytes += pkt.wire_len as u64;
    }

    #[inline]
    fn enqueued(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        let l = &mut self.links[link_slot(path, dir)];
        l.hop.tx_packets += 1;
        l.hop.tx_bytes += pkt.wire_len as u64;
        if dir == Direction::Out && path != PathId::Vpn {
            // Out of Azure the policer sits before the egress queue.
            let m = Self::minute(now, l.policed_bits.len());
            l.policed_bits[m] += 8 * pkt.wire_len as u64;
        }
    }

    #[inline]
    fn link_delivered(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        let l = &mut self.links[link_slot(path, dir)];
        Self::count_delivered(l, now, path, dir, pkt);
        self.flow_delivered_via(now, path, pkt);
    }

    #[inline(always)]
    fn link_passed(
        &mut self,
        now: SimTime,
        path: PathId,
        dir: Direction,
        gateway: bool,
        pkt: &Packet,
    ) {
        let l = &mut self.links[link_slot(path, dir)];
        l.hop.rx_packets += 1;
        l.hop.rx_bytes += pkt.wire_len as u64;
        Self::count_delivered(l, now, path, dir, pkt);
        self.flow_delivered_via(now, path, pkt);
        if gateway {
            self.gateway_passed(now, dir, pkt);
        }
        self.delivered(now, pkt);
    }

    fn path_changed(&mut self, now: SimTime, flow: FlowId, from: PathId, to: PathId) {
        self.flows[flow as usize].awaiting_first = Some(to);
        let text = format!(
            "flow {}: sent via {} (was {})",
            self.flow_names[flow as usize],
            to.as_str(),
            from.as_str()
        );
        self.timeline.push(TimelineEntry { time: now, text });
    }

    #[inline(always)]
    fn gateway_passed(&mut self, _now: SimTime, dir: Direction, pkt: &Packet) {
        let g = &mut self.gateway[dir as usize];
        g.tx_packets += 1;
        g.tx_bytes += pkt.ip_len as u64;
        g.delivered_packets += 1;
        g.delivered_bytes += pkt.ip_len as u64;
    }

    #[inline]
    fn dropped(&mut self, now: SimTime, place: Place, cause: DropCause, pkt: &Packet) {
        let f = &mut self.flows[pkt.flow as usize];
        f.drops[cause.index()] += 1;
        f.lost_since_delivery += 1;
        if self.open_failovers > 0 {
            for rec in &mut self.failovers {
                for fe in rec
                    .flows
                    .iter_mut()
                    .filter(|fe| fe.flow == pkt.flow as usize && fe.converged.is_none())
                {
                    fe.lost_packets += 1;
                    fe.lost_bytes += pkt.ip_len as u64;
                }
            }
        }
        if self.drop_run.0 != (place, cause) {
            self.flush_drop_run();
            self.drop_run.0 = (place, cause);
        }
        self.drop_run.1 += 1;
        match place {
            Place::Link(path, dir) => {
                let l = &mut self.links[link_slot(path, dir)];
                l.hop.drops[cause.index()] += 1;
                if cause == DropCause::Policer {
                    let m = Self::minute(now, l.dropped_bits.len());
                    l.dropped_bits[m] += 8 * pkt.wire_len as u64;
                }
            }
            Place::Gateway(dir) => {
                let g = &mut self.gateway[dir as usize];
                g.tx_packets += 1;
                g.tx_bytes += pkt.ip_len as u64;
                g.drops[cause.index()] += 1;
            }
            Place::Router(dir) => self.router_drops[dir as usize][cause.index()] += 1,
        }
    }

    #[inline(always)]
    fn delivered(&mut self, now: SimTime, pkt: &Packet) {
        let f = &mut self.flows[pkt.flow as usize];
        f.received_packets += 1;
        f.received_bytes += pkt.ip_len as u64;
        f.latency.record(now - pkt.sent);
        if f.lost_since_delivery > 0 {
            if now.saturating_since(f.last_delivery) >= self.outage_min {
                f.outages.push(Outage {
                    start_ns: f.last_delivery.0,
                    end_ns: now.0,
                    lost_packets: f.lost_since_delivery,
                });
            }
            f.lost_since_delivery = 0;
        }
        f.last_delivery = now;
    }

    fn note(&mut self, now: SimTime, text: String) {
        self.timeline.push(TimelineEntry { time: now, text });
    }

    fn failure(&mut self, now: SimTime, path: PathId, what: &str) {
        let flows: Vec<FlowFailover> = self
            .flows
            .iter()
            .enumerate()
            .filter(|(_, f)| f.path == Some(path))
            .map(|(flow, _)| FlowFailover {
                flow,
                before: path,
                after: None,
                converged: None,
                lost_packets: 0,
                lost_bytes: 0,
            })
            .collect();
        self.open_failovers += flows.len();
        self.failovers.push(FailoverRecord {
            at: now,
            path,
            what: what.to_string(),
            detected: None,
            flows,
        });
    }

    fn control_down(&mut self, now: SimTime, path: PathId) {
        for rec in self
            .failovers
            .iter_mut()
            .filter(|r| r.path == path && r.detected.is_none())
        {
            rec.detected = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_counts_give_the_same_histogram() {
        // Values that repeat, collide in the slots, grow the histogram or
        // are clamped (0, and above 60 s), against recording each at once.
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut l = Latency::new();
        let mut h = Histogram::<u64>::new(HIST_DIGITS).unwrap();
        let (mut min, mut max, mut sum) = (u64::MAX, 0, 0u128);
        for i in 0..50_000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let ns = match i % 4 {
                0 => 2_000_000 + rng % 3,
                1 => rng % 100_000_000_000,
                2 => 2_000_000 + 16 * (rng % 40),
                _ if i % 100 == 3 => rng % 2,
                _ => rng % 5_000,
            };
            l.record(SimDuration(ns));
            h.record(ns.clamp(1, HIST_MAX_NS)).unwrap();
            (min, max, sum) = (min.min(ns), max.max(ns), sum + ns as u128);
        }
        assert_eq!(l.count(), h.len());
        l.flush();
        assert_eq!((l.min, l.max, l.sum), (min, max, sum));
        assert_eq!(l.count(), h.len());
        assert_eq!(l.hist, h);
        assert_eq!(l.hist.high(), h.high());
        assert_eq!(l.hist.distinct_values(), h.distinct_values());
    }
}
