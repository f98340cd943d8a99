//! Counters and latency histograms, fed by the network's [`Tap`] calls.
//!
//! Memory is bounded by the number of flows, links and minutes simulated,
//! never by the number of packets. A flow's books are a few hundred bytes
//! of counters, plus what its latencies hold (see [`Latency`]) and its
//! outages.

pub use super::latency::Latency;
use crate::model::{DropCause, FlowId, Packet, Place, Tap};
use crate::scenario::{Config, Direction, PathId};
use crate::units::{SimDuration, SimTime, NS_PER_SEC};

const MINUTE: u64 = 60 * NS_PER_SEC;

pub type DropCounts = [u64; DropCause::ALL.len()];

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
    /// The site is a [`site_code`], so that a drop compares one number.
    drop_run: (u16, u64),
    /// The per-minute counters' minutes: a minute holds millions of packets.
    minute: super::bins::Bins,
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
            drop_run: (0, 0),
            minute: super::bins::Bins::new(MINUTE, minutes),
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

    /// Bytes the books hold on the heap for flow `flow` (beyond the fixed
    /// size of its entries).
    pub fn flow_heap_bytes(&self, flow: usize) -> usize {
        let f = &self.flows[flow];
        f.latency.heap_bytes()
            + f.outages.capacity() * std::mem::size_of::<Outage>()
            + self.flow_names[flow].capacity()
    }

    /// Ends the books at `end`, before the scenario's end (a live run
    /// stopped early): per-minute counters past it go.
    pub fn truncate(&mut self, end: SimTime) {
        let minutes = (end.0.div_ceil(MINUTE) as usize).max(1);
        for l in &mut self.links {
            l.policed_bits.truncate(minutes);
            l.dropped_bits.truncate(minutes);
        }
        self.minute.set_count(self.links[0].policed_bits.len());
    }

    /// Closes the books at the end of the run: completes the latency
    /// histograms; a flow still losing packets at `end` is in an outage that
    /// lasts until `end`.
    pub fn finish(&mut self, end: SimTime) {
        self.flush_drop_run();
        let flows = self.flows.iter_mut().map(|f| &mut f.latency);
        for l in flows.chain(self.links.iter_mut().map(|l| &mut l.latency)) {
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
        let (code, n) = self.drop_run;
        if n > 0 {
            *self.drop_sites.entry(site_of(code)).or_insert(0) += n;
            self.drop_run.1 = 0;
        }
    }

    /// A drop at another site than the drops before it.
    #[cold]
    fn start_drop_run(&mut self, code: u16) {
        self.flush_drop_run();
        self.drop_run.0 = code;
    }

    /// The flow's side of a drop at site `code`, and the run of drops there.
    #[inline(always)]
    fn flow_dropped(&mut self, code: u16, cause: DropCause, pkt: &Packet) {
        let f = &mut self.flows[pkt.flow as usize];
        f.drops[cause.index()] += 1;
        f.lost_since_delivery += 1;
        if self.open_failovers > 0 {
            self.failovers_lost(pkt);
        }
        if self.drop_run.0 != code {
            self.start_drop_run(code);
        }
        self.drop_run.1 += 1;
    }

    /// A packet of a flow caught in failovers not yet converged was lost.
    #[cold]
    fn failovers_lost(&mut self, pkt: &Packet) {
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

    /// A link's counters for a packet that came out of its far end; `m` is
    /// the minute of `now` when the link is a circuit's way in.
    #[inline(always)]
    fn count_delivered(l: &mut LinkStats, now: SimTime, m: Option<usize>, pkt: &Packet) {
        l.hop.delivered_packets += 1;
        l.hop.delivered_bytes += pkt.wire_len as u64;
        l.latency.record(now - pkt.enqueued);
        if let Some(m) = m {
            l.policed_bits[m] += 8 * pkt.wire_len as u64;
        }
    }

    /// The minute of `now` for the policer's counters of `path` and `dir`,
    /// if it has them on the way in (past the far end of the link).
    #[inline(always)]
    fn minute_in(&mut self, now: SimTime, path: PathId, dir: Direction) -> Option<usize> {
        (dir == Direction::In && path != PathId::Vpn).then(|| self.minute(now))
    }

    /// A packet of a flow came out of a link on `path`: the flow's path,
    /// failovers it ends, its first packet on a new path.
    #[inline(always)]
    fn flow_delivered_via(&mut self, now: SimTime, path: PathId, pkt: &Packet) {
        let f = &mut self.flows[pkt.flow as usize];
        f.path = Some(path);
        self.flow_arrived_via(now, path, pkt);
    }

    /// What `flow_delivered_via` does after setting the flow's path.
    #[inline(always)]
    fn flow_arrived_via(&mut self, now: SimTime, path: PathId, pkt: &Packet) {
        if self.open_failovers > 0 {
            self.failovers_converged(now, path, pkt);
        }
        let f = &mut self.flows[pkt.flow as usize];
        if f.awaiting_first == Some(path) {
            f.awaiting_first = None;
            self.first_delivery(now, path, pkt);
        }
    }

    /// A packet of a flow caught in failovers not yet converged came out on
    /// `path`: the failovers of other paths are over for it.
    #[cold]
    fn failovers_converged(&mut self, now: SimTime, path: PathId, pkt: &Packet) {
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

    #[cold]
    fn first_delivery(&mut self, now: SimTime, path: PathId, pkt: &Packet) {
        let text = format!(
            "flow {}: first packet delivered via {}",
            self.flow_names[pkt.flow as usize],
            path.as_str()
        );
        self.timeline.push(TimelineEntry { time: now, text });
    }

    /// The per-minute counters' index of `now` (the last one past the end).
    #[inline(always)]
    fn minute(&mut self, now: SimTime) -> usize {
        self.minute.index(now)
    }

    /// A packet's flow received it at `now` (after the flow's path is set).
    #[inline(always)]
    fn flow_received(f: &mut FlowStats, now: SimTime, outage_min: SimDuration, pkt: &Packet) {
        f.received_packets += 1;
        f.received_bytes += pkt.ip_len as u64;
        f.latency.record(now - pkt.sent);
        if f.lost_since_delivery > 0 {
            if now.saturating_since(f.last_delivery) >= outage_min {
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
}

/// A drop site `(place, cause)` as one number: places are numbered links 0
/// to 5 (path * 2 + direction), gateway 6 and 7, routers 8 and 9.
#[inline(always)]
fn site_code(place: Place, cause: DropCause) -> u16 {
    let p = match place {
        Place::Link(path, dir) => link_slot(path, dir),
        Place::Gateway(dir) => 6 + dir as usize,
        Place::Router(dir) => 8 + dir as usize,
    };
    (p * 16 + cause.index()) as u16
}

/// The site of a [`site_code`].
fn site_of(code: u16) -> (Place, DropCause) {
    let (p, c) = (code as usize / 16, code as usize % 16);
    let dir = [Direction::In, Direction::Out][p % 2];
    let place = match p {
        0..=5 => Place::Link(PathId::ALL[p / 2], dir),
        6 | 7 => Place::Gateway(dir),
        _ => Place::Router(dir),
    };
    (place, DropCause::ALL[c])
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
            let m = self.minute(now);
            self.links[link_slot(path, dir)].policed_bits[m] += 8 * pkt.wire_len as u64;
        }
    }

    #[inline]
    fn link_delivered(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        let m = self.minute_in(now, path, dir);
        let l = &mut self.links[link_slot(path, dir)];
        Self::count_delivered(l, now, m, pkt);
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
        let m = self.minute_in(now, path, dir);
        let l = &mut self.links[link_slot(path, dir)];
        l.hop.rx_packets += 1;
        l.hop.rx_bytes += pkt.wire_len as u64;
        Self::count_delivered(l, now, m, pkt);
        if gateway {
            self.gateway_passed(now, dir, pkt);
        }
        // `flow_delivered_via` and `delivered`, with one look-up of the
        // flow (they count disjoint things, so the order is free).
        let f = &mut self.flows[pkt.flow as usize];
        f.path = Some(path);
        Self::flow_received(f, now, self.outage_min, pkt);
        self.flow_arrived_via(now, path, pkt);
    }

    #[inline(always)]
    fn link_policed(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        let slot = link_slot(path, dir);
        let m = self.minute(now);
        let cause = DropCause::Policer;
        self.flow_dropped((slot * 16 + cause.index()) as u16, cause, pkt);
        let l = &mut self.links[slot];
        l.hop.rx_packets += 1;
        l.hop.rx_bytes += pkt.wire_len as u64;
        l.hop.drops[cause.index()] += 1;
        l.dropped_bits[m] += 8 * pkt.wire_len as u64;
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
        self.flow_dropped(site_code(place, cause), cause, pkt);
        match place {
            Place::Link(path, dir) => {
                let m = self.minute(now);
                let l = &mut self.links[link_slot(path, dir)];
                l.hop.drops[cause.index()] += 1;
                if cause == DropCause::Policer {
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
        Self::flow_received(
            &mut self.flows[pkt.flow as usize],
            now,
            self.outage_min,
            pkt,
        );
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
pub(crate) mod tests {
    use super::*;

    #[test]
    fn drop_site_codes_are_distinct_and_reversible() {
        let dirs = [Direction::In, Direction::Out];
        let mut places: Vec<Place> = PathId::ALL
            .into_iter()
            .flat_map(|p| dirs.map(|d| Place::Link(p, d)))
            .collect();
        places.extend(dirs.map(Place::Gateway));
        places.extend(dirs.map(Place::Router));
        let mut seen = std::collections::BTreeSet::new();
        for place in places {
            for cause in DropCause::ALL {
                let code = site_code(place, cause);
                assert!(seen.insert(code), "{place:?} {cause:?}");
                assert_eq!(site_of(code), (place, cause));
            }
        }
    }

    /// The default scenario with a second flow, a copy of its first.
    pub(crate) fn two_flow_config() -> Config {
        let (name, text) = crate::scenario::DEFAULT_SCENARIO;
        let first = text
            .find("[[flows]]")
            .expect("the default scenario has flows");
        let len = text[first + 1..]
            .find("\n[")
            .map_or(text.len() - first, |n| n + 2);
        let copy = text[first..first + len].replacen("name = \"", "name = \"b", 1);
        let cfg = crate::scenario::parse(name, &format!("{text}\n{copy}")).unwrap();
        assert_eq!(cfg.flows.last().unwrap().name.chars().next(), Some('b'));
        cfg
    }

    #[test]
    fn per_flow_books_follow_what_the_flow_did() {
        // Flow 0 never sends; flow 1 sends 1,000 packets delivered with one
        // latency (2 ms), so its distribution has one value.
        let cfg = two_flow_config();
        let mut m = Metrics::new(&cfg);
        let ms = SimDuration(1_000_000);
        for seq in 0..1_000u64 {
            let sent = SimTime(seq * 10 * 1_000_000);
            let pkt = Packet::new(1, seq, sent, 1000);
            m.sent(sent, &pkt);
            m.delivered(sent + ms + ms, &pkt);
        }
        m.finish(SimTime::ZERO + cfg.duration);
        assert_eq!(m.flows[1].received_packets, 1_000);
        // An idle flow holds nothing beyond its name; one that sent holds one
        // page of counts of its latency histogram (and the page's entry in a
        // list of at most 4), not a histogram spanning every latency to 60 s.
        assert_eq!(m.flow_heap_bytes(0), cfg.flows[0].name.len());
        let one_page = super::super::latency::PAGE_BYTES + 4 * 16;
        let held = m.flow_heap_bytes(1);
        assert!(held <= one_page + cfg.flows[1].name.len(), "{held}");
        // The fixed part of a flow's books, for scale: counters, drops by
        // cause, exact min, max and sum, 16 pending counts, a few lists.
        assert!(std::mem::size_of::<FlowStats>() <= 640);
    }

    #[test]
    fn cached_minute_is_the_quotient_capped_at_the_last() {
        // Times forward, backward and past the end (a 150 s run has 3
        // minutes), before and after a truncation to 70 s (2 minutes).
        let (text, name) = crate::scenario::DEFAULT_SCENARIO;
        let mut cfg = crate::scenario::parse(text, name).unwrap();
        cfg.set_duration(SimDuration(150 * NS_PER_SEC)).unwrap();
        let mut m = Metrics::new(&cfg);
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        for round in 0..2 {
            let len = m.links[0].policed_bits.len();
            assert_eq!(len, 3 - round);
            let mut t = 0u64;
            for i in 0..20_000 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                t = match i % 3 {
                    0 => t + rng % (2 * NS_PER_SEC),
                    1 => rng % (300 * NS_PER_SEC),
                    _ => [0, MINUTE - 1, MINUTE, 2 * MINUTE, u64::MAX][rng as usize % 5],
                };
                let expected = ((t / MINUTE) as usize).min(len - 1);
                assert_eq!(m.minute(SimTime(t)), expected, "t = {t}");
            }
            m.truncate(SimTime(70 * NS_PER_SEC));
        }
    }
}
