//! Time series: what happened in each fixed interval of virtual time
//! (`report.interval`, default 10 ms), per link direction and per flow.
//!
//! # Memory
//!
//! Every series (a link direction or a flow) has one fixed-size [`Cell`] per
//! interval: 15 counters, 120 bytes. Validation caps intervals x series at
//! [`crate::scenario::MAX_TIMESERIES_CELLS`] (500,000 cells, about
//! 60 MB), coarsening the default interval or refusing an explicit one. A
//! flow gets its cells when something first happens to one of its packets
//! (delivered or dropped): until then its series reads as zeros, and holds
//! nothing.
//!
//! Per-interval latency distributions of flows (for the percentile plot and
//! the `.hlog` interval logs) are HdrHistograms with 2 significant digits
//! (values within 1 %), kept sparsely per flow: one `(interval, value, count)`
//! entry per non-empty bucket, so
//! at most 128 entries per doubling of the latency range seen in the interval,
//! and never more than the packets delivered in it.
//!
//! # Merging
//!
//! [`TimeSeries::merge`] adds another series interval by interval, so that
//! logical processes that each watched part of the network (one direction,
//! say) can be combined at the end.

use hdrhistogram::Histogram;

use crate::model::{DropCause, Packet, Place, Tap};
use crate::scenario::{Config, Direction, PathId};
use crate::units::{SimTime, NS_PER_SEC};

/// Per-interval latency histograms: 2 significant digits up to 60 s.
const LAT_DIGITS: u8 = 2;
const LAT_MAX_NS: u64 = 60 * NS_PER_SEC;

/// The counters of one series in one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cell {
    /// Packets delivered: out of the link's far end (past its policer or the
    /// Internet's loss), or to the flow's destination.
    pub packets: u64,
    /// Bytes of those packets: frame bytes (circuit links), outer IP bytes
    /// (VPN), IP bytes (flows).
    pub bytes: u64,
    /// Drops by cause ([`DropCause::index`]).
    pub drops: [u64; DropCause::ALL.len()],
    /// Links: bytes waiting in the egress queue at the end of the interval.
    pub queue_bytes: u64,
    /// Flows: one-way latency of the packets delivered in the interval.
    pub lat_count: u64,
    pub lat_sum: u64,
    pub lat_max: u64,
}

impl Cell {
    fn add(&mut self, o: &Cell) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        for (a, b) in self.drops.iter_mut().zip(o.drops) {
            *a += b;
        }
        self.queue_bytes += o.queue_bytes;
        self.lat_count += o.lat_count;
        self.lat_sum += o.lat_sum;
        self.lat_max = self.lat_max.max(o.lat_max);
    }
}

/// The bucket layout of the per-interval histograms (it records nothing),
/// and the largest value it has a bucket for (a little above its `high`):
/// one for every flow.
struct Shape {
    hist: Histogram<u64>,
    top: u64,
}

fn shape() -> &'static Shape {
    static SHAPE: std::sync::OnceLock<Shape> = std::sync::OnceLock::new();
    SHAPE.get_or_init(|| {
        let hist = Histogram::new_with_max(LAT_MAX_NS, LAT_DIGITS).expect("valid histogram bounds");
        // Binary search of the last value with a bucket: `record` fails
        // exactly above it.
        let mut scratch = hist.clone();
        let (mut lo, mut hi) = (hist.high(), u64::MAX);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if scratch.record(mid).is_ok() {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Shape { hist, top: lo }
    })
}

/// A flow's per-interval latency distributions.
///
/// The live interval is kept sparsely, as the counts of the histogram
/// buckets it touched (keyed by each bucket's highest equivalent value, what
/// a recorded-values iteration of the histogram reports), so that ending an
/// interval costs the buckets used, not a scan and a reset of the whole
/// histogram.
#[derive(Clone)]
struct FlowLatency {
    live_interval: u32,
    /// `(highest equivalent value, count)`, sorted by value.
    live: Vec<(u64, u64)>,
    /// The last value recorded and its position in `live`: consecutive
    /// packets usually have the same latency.
    last: (u64, usize),
    /// `(interval, highest equivalent value, count)`, sorted.
    stored: Vec<(u32, u64, u64)>,
}

impl FlowLatency {
    fn new() -> Self {
        FlowLatency {
            live_interval: 0,
            live: Vec::new(),
            last: (u64::MAX, 0),
            stored: Vec::new(),
        }
    }

    fn flush(&mut self) {
        let k = self.live_interval;
        self.stored
            .extend(self.live.drain(..).map(|(v, n)| (k, v, n)));
        self.last = (u64::MAX, 0);
    }

    #[inline]
    fn record(&mut self, k: u32, ns: u64) {
        if k != self.live_interval {
            self.flush();
            self.live_interval = k;
        }
        if ns == self.last.0 {
            self.live[self.last.1].1 += 1;
            return;
        }
        self.record_new(ns);
    }

    fn record_new(&mut self, ns: u64) {
        // As `saturating_record` would: a value without a bucket is counted
        // as `high` (latencies are at least 0, which has one).
        let shape = shape();
        let v = if ns <= shape.top {
            ns
        } else {
            shape.hist.high()
        };
        let key = shape.hist.highest_equivalent(v);
        let i = match self.live.binary_search_by_key(&key, |&(v, _)| v) {
            Ok(i) => {
                self.live[i].1 += 1;
                i
            }
            Err(i) => {
                self.live.insert(i, (key, 1));
                i
            }
        };
        self.last = (ns, i);
    }
}

/// The time series of a run; a [`Tap`].
#[derive(Clone)]
pub struct TimeSeries {
    interval_ns: u64,
    duration_ns: u64,
    intervals: usize,
    /// Indexed like the network's links (path * 2 + direction); empty for a
    /// link the scenario does not have. An array, so that such an index needs
    /// no check.
    links: [Vec<Cell>; 6],
    /// Empty for a flow nothing has happened to yet.
    flows: Vec<Vec<Cell>>,
    /// The cells of such a flow: zeros, one per interval.
    zeros: Vec<Cell>,
    flow_names: Vec<String>,
    latency: Vec<FlowLatency>,
    /// The intervals, as bins of time.
    bins: super::bins::Bins,
}

fn slot(path: PathId, dir: Direction) -> usize {
    path as usize * 2 + dir as usize
}

/// One series as written: `link.primary.in` or `flow.<name>`.
pub struct Series<'a> {
    pub name: String,
    pub cells: &'a [Cell],
    pub is_link: bool,
}

impl TimeSeries {
    /// Adds the series of a flow that appears during the run.
    pub fn add_flow(&mut self, name: &str) {
        self.flows.push(Vec::new());
        self.flow_names.push(name.to_string());
        self.latency.push(FlowLatency::new());
    }

    pub fn new(cfg: &Config) -> Self {
        let interval_ns = cfg.report.interval.as_nanos().max(1);
        let duration_ns = cfg.duration.as_nanos();
        let intervals = duration_ns.div_ceil(interval_ns).max(1) as usize;
        let links = std::array::from_fn(|i| {
            if i >= 4 && cfg.vpn.is_none() {
                Vec::new()
            } else {
                vec![Cell::default(); intervals]
            }
        });
        TimeSeries {
            interval_ns,
            duration_ns,
            intervals,
            links,
            flows: vec![Vec::new(); cfg.flows.len()],
            zeros: vec![Cell::default(); intervals],
            flow_names: cfg.flows.iter().map(|f| f.name.clone()).collect(),
            latency: vec![FlowLatency::new(); cfg.flows.len()],
            bins: super::bins::Bins::new(interval_ns, intervals),
        }
    }

    /// Bytes the series hold on the heap for flow `flow`.
    pub fn flow_heap_bytes(&self, flow: usize) -> usize {
        let l = &self.latency[flow];
        self.flows[flow].capacity() * std::mem::size_of::<Cell>()
            + l.live.capacity() * std::mem::size_of::<(u64, u64)>()
            + l.stored.capacity() * std::mem::size_of::<(u32, u64, u64)>()
            + self.flow_names[flow].capacity()
    }

    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    pub fn intervals(&self) -> usize {
        self.intervals
    }

    /// Start of interval `k` in ns.
    pub fn start_ns(&self, k: usize) -> u64 {
        k as u64 * self.interval_ns
    }

    /// Length of interval `k` in ns (the last one may be shorter).
    pub fn len_ns(&self, k: usize) -> u64 {
        (self.duration_ns - self.start_ns(k)).min(self.interval_ns)
    }

    #[inline(always)]
    fn index(&mut self, now: SimTime) -> usize {
        self.bins.index(now)
    }

    /// Bytes waiting in a link's queue, sampled at `now`, the end of an
    /// interval (or of the run): counted in the interval that ends then.
    pub fn queue_sample(&mut self, now: SimTime, path: PathId, dir: Direction, bytes: u64) {
        let k = self.index(SimTime(now.0.saturating_sub(1)));
        if let Some(c) = self.links[slot(path, dir)].get_mut(k) {
            c.queue_bytes = bytes;
        }
    }

    /// Stores the last live latency histograms; call once at the end.
    /// Ends the series at `end_ns`, before the scenario's end (a live run
    /// stopped early): intervals past it go.
    pub fn truncate(&mut self, end_ns: u64) {
        let intervals = (end_ns.div_ceil(self.interval_ns).max(1) as usize).min(self.intervals);
        let all = self.links.iter_mut().chain(self.flows.iter_mut());
        for series in all.chain([&mut self.zeros]) {
            series.truncate(intervals);
        }
        self.intervals = intervals;
        self.bins.set_count(intervals);
        self.duration_ns = end_ns.max(1);
    }

    pub fn finish(&mut self) {
        for l in &mut self.latency {
            l.flush();
        }
    }

    /// Adds `other` interval by interval (both finished, same scenario).
    pub fn merge(&mut self, other: &Self) {
        assert_eq!(
            (self.interval_ns, self.intervals),
            (other.interval_ns, other.intervals),
            "merging time series of different shapes"
        );
        let add = |a: &mut [Vec<Cell>], b: &[Vec<Cell>]| {
            for (sa, sb) in a.iter_mut().zip(b) {
                if sa.is_empty() {
                    sa.clone_from(sb);
                    continue;
                }
                for (ca, cb) in sa.iter_mut().zip(sb) {
                    ca.add(cb);
                }
            }
        };
        add(&mut self.links, &other.links);
        add(&mut self.flows, &other.flows);
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            a.stored.extend_from_slice(&b.stored);
            a.stored.sort_unstable_by_key(|&(k, v, _)| (k, v));
            let mut merged: Vec<(u32, u64, u64)> = Vec::with_capacity(a.stored.len());
            for e in a.stored.drain(..) {
                match merged.last_mut() {
                    Some(m) if (m.0, m.1) == (e.0, e.1) => m.2 += e.2,
                    _ => merged.push(e),
                }
            }
            a.stored = merged;
        }
    }

    /// Every series the scenario has: links (primary, secondary, vpn; in,
    /// out) then flows in scenario order.
    pub fn series(&self) -> Vec<Series<'_>> {
        let mut out = Vec::new();
        for path in PathId::ALL {
            for dir in [Direction::In, Direction::Out] {
                let cells = &self.links[slot(path, dir)];
                if !cells.is_empty() {
                    out.push(Series {
                        name: format!("link.{}.{}", path.as_str(), dir.as_str()),
                        cells,
                        is_link: true,
                    });
                }
            }
        }
        for (f, name) in self.flow_names.iter().enumerate() {
            out.push(Series {
                name: format!("flow.{name}"),
                cells: self.flow(f),
                is_link: false,
            });
        }
        out
    }

    pub fn link(&self, path: PathId, dir: Direction) -> &[Cell] {
        &self.links[slot(path, dir)]
    }

    pub fn flow_names(&self) -> &[String] {
        &self.flow_names
    }

    pub fn flow(&self, flow: usize) -> &[Cell] {
        match &self.flows[flow] {
            cells if cells.is_empty() => &self.zeros,
            cells => cells,
        }
    }

    /// The cell of `flow` in interval `k`, made with the flow's cells if
    /// it has none yet.
    #[inline(always)]
    fn flow_cell(&mut self, flow: usize, k: usize) -> &mut Cell {
        if self.flows[flow].is_empty() {
            self.add_cells(flow);
        }
        &mut self.flows[flow][k]
    }

    #[cold]
    fn add_cells(&mut self, flow: usize) {
        self.flows[flow].clone_from(&self.zeros);
    }

    /// Bits per second delivered in interval `k` of `cells`.
    pub fn throughput_bps(&self, cells: &[Cell], k: usize) -> f64 {
        cells[k].bytes as f64 * 8.0 * NS_PER_SEC as f64 / self.len_ns(k) as f64
    }

    /// Calls `f` with the latency histogram of `flow` in each interval that
    /// delivered packets, in order (one histogram, reused).
    pub fn for_each_latency_histogram<E>(
        &self,
        flow: usize,
        mut f: impl FnMut(usize, &Histogram<u64>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut h =
            Histogram::new_with_max(LAT_MAX_NS, LAT_DIGITS).expect("valid histogram bounds");
        let stored = &self.latency[flow].stored;
        let mut i = 0;
        while i < stored.len() {
            let k = stored[i].0;
            h.reset();
            while i < stored.len() && stored[i].0 == k {
                h.saturating_record_n(stored[i].1, stored[i].2);
                i += 1;
            }
            f(k as usize, &h)?;
        }
        Ok(())
    }

    /// `(interval, p50, p99)` of `flow`'s latency in ns, for each interval
    /// that delivered packets (from the 2-digit histograms, at most the
    /// interval's exact max).
    pub fn latency_percentiles(&self, flow: usize) -> Vec<(usize, u64, u64)> {
        let cells = self.flow(flow);
        let mut out = Vec::new();
        let _ = self.for_each_latency_histogram(flow, |k, h| -> Result<(), ()> {
            let max = cells[k].lat_max;
            out.push((
                k,
                h.value_at_quantile(0.5).min(max),
                h.value_at_quantile(0.99).min(max),
            ));
            Ok(())
        });
        out
    }

    /// Tidy CSV: `time_ns,series,metric,value`, one row per interval, series
    /// and metric; `time_ns` is the interval's start.
    pub fn to_csv(&self) -> String {
        use std::fmt::Write;
        let mut s = String::from("time_ns,series,metric,value\n");
        let series = self.series();
        let mut flow = 0;
        // The flow's p50 and p99 by interval (one flow at a time).
        let mut lat = vec![None; self.intervals];
        for sr in &series {
            if !sr.is_link {
                lat.fill(None);
                for (k, p50, p99) in self.latency_percentiles(flow) {
                    lat[k] = Some((p50, p99));
                }
            }
            let causes: Vec<DropCause> = DropCause::ALL
                .into_iter()
                .filter(|c| sr.cells.iter().any(|x| x.drops[c.index()] > 0))
                .collect();
            for (k, c) in sr.cells.iter().enumerate() {
                let t = self.start_ns(k);
                let name = &sr.name;
                let mut row = |metric: &str, value: &dyn std::fmt::Display| {
                    let _ = writeln!(s, "{t},{name},{metric},{value}");
                };
                row(
                    "throughput_bps",
                    &(c.bytes * 8 * NS_PER_SEC / self.len_ns(k)),
                );
                row("delivered_bytes", &c.bytes);
                row("delivered_packets", &c.packets);
                for cause in &causes {
                    row(
                        &format!("drops.{}", cause.as_str()),
                        &c.drops[cause.index()],
                    );
                }
                if sr.is_link {
                    row("queue_bytes", &c.queue_bytes);
                } else if let Some(mean) = c.lat_sum.checked_div(c.lat_count) {
                    row("latency_mean_ns", &mean);
                    row("latency_max_ns", &c.lat_max);
                    if let Some((p50, p99)) = lat[k] {
                        row("latency_p50_ns", &p50);
                        row("latency_p99_ns", &p99);
                    }
                }
            }
            if !sr.is_link {
                flow += 1;
            }
        }
        s
    }
}

impl Tap for TimeSeries {
    #[inline]
    fn link_delivered(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        let k = self.index(now);
        let c = &mut self.links[slot(path, dir)][k];
        c.packets += 1;
        c.bytes += pkt.wire_len as u64;
    }

    #[inline]
    fn dropped(&mut self, now: SimTime, place: Place, cause: DropCause, pkt: &Packet) {
        let k = self.index(now);
        self.flow_cell(pkt.flow as usize, k).drops[cause.index()] += 1;
        if let Place::Link(path, dir) = place {
            self.links[slot(path, dir)][k].drops[cause.index()] += 1;
        }
    }

    #[inline]
    fn delivered(&mut self, now: SimTime, pkt: &Packet) {
        let k = self.index(now);
        self.delivered_in(k, now, pkt);
    }

    #[inline(always)]
    fn link_policed(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        let k = self.index(now);
        let cause = DropCause::Policer.index();
        self.flow_cell(pkt.flow as usize, k).drops[cause] += 1;
        self.links[slot(path, dir)][k].drops[cause] += 1;
    }

    /// `link_delivered` then `delivered`, finding the interval once.
    #[inline(always)]
    fn link_passed(
        &mut self,
        now: SimTime,
        path: PathId,
        dir: Direction,
        _gateway: bool,
        pkt: &Packet,
    ) {
        let k = self.index(now);
        let c = &mut self.links[slot(path, dir)][k];
        c.packets += 1;
        c.bytes += pkt.wire_len as u64;
        self.delivered_in(k, now, pkt);
    }
}

impl TimeSeries {
    #[inline(always)]
    fn delivered_in(&mut self, k: usize, now: SimTime, pkt: &Packet) {
        let ns = (now - pkt.sent).as_nanos();
        let c = self.flow_cell(pkt.flow as usize, k);
        c.packets += 1;
        c.bytes += pkt.ip_len as u64;
        c.lat_count += 1;
        c.lat_sum += ns;
        c.lat_max = c.lat_max.max(ns);
        self.latency[pkt.flow as usize].record(k as u32, ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;

    fn cfg() -> Config {
        crate::scenario::parse(
            crate::scenario::DEFAULT_SCENARIO.0,
            crate::scenario::DEFAULT_SCENARIO.1,
        )
        .unwrap()
    }

    fn run(cfg: &Config) -> TimeSeries {
        let mut e = Engine::new(cfg, None, None);
        e.advance(crate::units::SimTime::ZERO + cfg.duration);
        e.finish().timeseries
    }

    #[test]
    fn sparse_intervals_match_a_histogram() {
        // What a real 2-digit histogram per interval would store, for values
        // that repeat, vary, are zero or lie above every bucket.
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut values = vec![];
        for k in 0..5u32 {
            for i in 0..2_000u64 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let v = match i % 5 {
                    0 | 1 => 2_000_000,
                    2 => rng % 10_000_000,
                    3 => rng >> (rng % 64),
                    _ => [0, LAT_MAX_NS, LAT_MAX_NS + 1, u64::MAX][(rng % 4) as usize],
                };
                values.push((k, v));
            }
        }
        let mut sparse = FlowLatency::new();
        let mut expected = vec![];
        let mut h = Histogram::<u64>::new_with_max(LAT_MAX_NS, LAT_DIGITS).unwrap();
        for (i, &(k, v)) in values.iter().enumerate() {
            sparse.record(k, v);
            h.saturating_record(v);
            if values.get(i + 1).is_none_or(|n| n.0 != k) {
                expected.extend(
                    h.iter_recorded()
                        .map(|x| (k, x.value_iterated_to(), x.count_at_value())),
                );
                h.reset();
            }
        }
        sparse.flush();
        assert_eq!(sparse.stored, expected);
    }

    #[test]
    fn a_flow_has_rows_once_it_delivers_or_drops() {
        // Flow 0 never sends; flow 1 has 1,000 packets delivered in the first
        // interval with one latency.
        let cfg = crate::observe::metrics::tests::two_flow_config();
        let mut ts = TimeSeries::new(&cfg);
        for seq in 0..1_000u64 {
            let pkt = Packet::new(1, seq, SimTime(seq), 1000);
            ts.delivered(SimTime(seq + 2_000_000), &pkt);
        }
        ts.finish();
        let names = |f: usize| cfg.flows[f].name.len();
        // Nothing for the idle flow but its name; its rows read as zeros.
        assert_eq!(ts.flow_heap_bytes(0), names(0));
        assert_eq!(ts.flow(0), vec![Cell::default(); ts.intervals()]);
        // The sending flow: one row per interval of the run, and one entry of
        // latency (in lists of at most 4).
        let rows = ts.intervals() * std::mem::size_of::<Cell>();
        let entries = 4 * (16 + 24);
        assert!(ts.flow_heap_bytes(1) <= rows + entries + names(1));
        assert_eq!(ts.flow(1)[0].packets, 1_000);
    }

    #[test]
    fn merge_adds_interval_by_interval() {
        let cfg = cfg();
        let a = run(&cfg);
        // With an empty series (a logical process that saw nothing), nothing changes.
        let mut m = a.clone();
        let mut empty = TimeSeries::new(&cfg);
        empty.finish();
        m.merge(&empty);
        assert_eq!(m.to_csv(), a.to_csv());
        // With itself, every count doubles and the latency histograms too.
        let mut d = a.clone();
        d.merge(&a);
        for (sa, sd) in a.series().iter().zip(d.series()) {
            for (ca, cd) in sa.cells.iter().zip(sd.cells) {
                assert_eq!(cd.bytes, 2 * ca.bytes);
                assert_eq!(cd.packets, 2 * ca.packets);
                assert_eq!(cd.drops.map(|x| x / 2), ca.drops);
                assert_eq!(cd.queue_bytes, 2 * ca.queue_bytes);
                assert_eq!(cd.lat_count, 2 * ca.lat_count);
                assert_eq!(cd.lat_max, ca.lat_max);
            }
        }
        let totals = |t: &TimeSeries| {
            let mut v = Vec::new();
            let _ = t.for_each_latency_histogram(0, |k, h| -> Result<(), ()> {
                v.push((k, h.len()));
                Ok(())
            });
            v
        };
        let doubled: Vec<_> = totals(&a).iter().map(|&(k, n)| (k, 2 * n)).collect();
        assert_eq!(totals(&d), doubled);
    }

    #[test]
    fn merging_halves_by_direction_gives_the_whole() {
        // Two logical processes, one per direction, each hold their links
        // and flows; merged, they give the whole run.
        let cfg = cfg();
        let whole = run(&cfg);
        let mut parts = [TimeSeries::new(&cfg), TimeSeries::new(&cfg)];
        for (i, s) in whole.links.iter().enumerate() {
            parts[i % 2].links[i].clone_from(s);
        }
        for (f, s) in whole.flows.iter().enumerate() {
            let part = &mut parts[cfg.flows[f].direction as usize];
            part.flows[f].clone_from(s);
            part.latency[f] = whole.latency[f].clone();
        }
        let [mut a, b] = parts;
        a.finish();
        a.merge(&b);
        assert_eq!(a.to_csv(), whole.to_csv());
    }
}
