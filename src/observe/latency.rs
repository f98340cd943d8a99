//! A latency distribution as the books keep it: the counts of a 4-digit
//! HdrHistogram plus the exact min, max and sum, fed through a few pending
//! counts.
//!
//! # Memory
//!
//! An HdrHistogram of 4 digits is an array of counts of 256 kB from the
//! start, and 1 MB for latencies of a few milliseconds, whatever a flow does.
//! A [`Latency`] keeps the same counts, numbered as the histogram numbers
//! them, but only in pages of [`PAGE`] counts that hold a value: a flow that
//! never delivers holds none, one whose latency is constant one page
//! ([`PAGE_BYTES`]), and one whose latency varies one page per 64 distinct
//! slots of 4 digits it visits. [`Latency::histogram`] builds the
//! histogram itself when it is written out, one at a time.

use hdrhistogram::Histogram;

use crate::units::{SimDuration, NS_PER_SEC};

/// Latency histograms keep 4 significant digits (128 ns resolution at 2 ms)
/// up to 60 s; longer latencies are recorded as 60 s.
const HIST_MAX_NS: u64 = 60 * NS_PER_SEC;
const HIST_DIGITS: u8 = 4;
/// Slots of a [`Latency`]'s pending counts (a power of two).
const PENDING_SLOTS: usize = 16;

/// The layout of a 4-digit histogram whose lowest discernible value is 1 ns
/// (HdrHistogram's): 2^15 sub-buckets, the first bucket using all of them
/// and every other its upper half, each bucket twice as coarse as the one
/// before. Value `v` is in bucket `BASE - leading_zeros(v | SUB_MASK)`.
const HALF_MAGNITUDE: u32 = 14;
const SUB_MASK: u64 = (1 << (HALF_MAGNITUDE + 1)) - 1;
const BASE: u32 = 64 - (HALF_MAGNITUDE + 1);

/// Counts per page.
pub(super) const PAGE: usize = 64;
pub(super) const PAGE_BYTES: usize = PAGE * std::mem::size_of::<u64>();

/// The index of `v`'s count in a 4-digit histogram's array of counts.
#[inline]
fn slot_of(v: u64) -> u32 {
    let bucket = BASE - (v | SUB_MASK).leading_zeros();
    let sub = (v >> bucket) as u32;
    ((bucket + 1) << HALF_MAGNITUDE) + sub - (1 << HALF_MAGNITUDE)
}

/// The lowest value counted at `slot` (the inverse of [`slot_of`]).
fn value_of(slot: u32) -> u64 {
    let half = 1u32 << HALF_MAGNITUDE;
    match (slot >> HALF_MAGNITUDE).checked_sub(1) {
        // The lower half of the first bucket: the value itself.
        None => slot as u64,
        Some(bucket) => ((slot % half + half) as u64) << bucket,
    }
}

/// A latency distribution: the counts of an HdrHistogram plus the exact
/// min, max and sum.
///
/// `min`, `max` and `sum` are complete only after [`Latency::flush`]
/// (`Metrics::finish` flushes every one); [`Latency::histogram`] and
/// [`Latency::count`] count everything recorded.
#[derive(Clone)]
pub struct Latency {
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
    /// The histogram's counts that are settled, in pages of [`PAGE`] counts
    /// (page `p` holds slots `p * PAGE ..`), sorted by page number; a page
    /// exists once one of its slots counts.
    pages: Vec<(u32, Box<[u64; PAGE]>)>,
    /// The position in `pages` of the page counted last: values settled one
    /// after the other are usually close.
    last_page: usize,
    /// Counts settled into `pages`.
    settled: u64,
}

impl Latency {
    pub(super) fn new() -> Self {
        Latency {
            min: u64::MAX,
            max: 0,
            sum: 0,
            pending: [(0, 0); PENDING_SLOTS],
            pages: Vec::new(),
            last_page: 0,
            settled: 0,
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

    /// Adds `n` latencies of `ns` to the counts, min, max and sum.
    fn settle(&mut self, (ns, n): (u64, u64)) {
        let slot = slot_of(ns.clamp(1, HIST_MAX_NS)) as usize;
        let page = (slot / PAGE) as u32;
        let i = match self.pages.get(self.last_page) {
            Some(&(p, _)) if p == page => self.last_page,
            _ => self.page_index(page),
        };
        self.pages[i].1[slot % PAGE] += n;
        self.last_page = i;
        self.settled += n;
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
        self.sum += ns as u128 * n as u128;
    }

    /// The position of page `page` in `pages`, made if it is not there.
    fn page_index(&mut self, page: u32) -> usize {
        match self.pages.binary_search_by_key(&page, |&(p, _)| p) {
            Ok(i) => i,
            Err(i) => {
                self.pages.insert(i, (page, Box::new([0; PAGE])));
                i
            }
        }
    }

    /// Moves the pending counts into the counts, `min`, `max` and `sum`.
    pub fn flush(&mut self) {
        for i in 0..PENDING_SLOTS {
            let slot = std::mem::take(&mut self.pending[i]);
            if slot.1 > 0 {
                self.settle(slot);
            }
        }
    }

    /// The HdrHistogram of everything recorded: 4 significant digits, sized
    /// to the largest latency (values are recorded as at least 1 ns and at
    /// most 60 s). Each count goes in as the lowest value of its slot, which
    /// gives the same histogram as the values themselves.
    pub fn histogram(&self) -> Histogram<u64> {
        let mut h = Histogram::new(HIST_DIGITS).expect("valid histogram precision");
        // Largest first, so that the histogram grows once. `record_n` grows
        // it (auto-resize) and values are at most 60 s: it cannot fail.
        for (page, counts) in self.pages.iter().rev() {
            for (i, &n) in counts.iter().enumerate().rev().filter(|(_, n)| **n > 0) {
                let _ = h.record_n(value_of(*page * PAGE as u32 + i as u32), n);
            }
        }
        for &(ns, n) in self.pending.iter().filter(|s| s.1 > 0) {
            let _ = h.record_n(ns.clamp(1, HIST_MAX_NS), n);
        }
        h
    }

    /// Bytes this distribution holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.pages.capacity() * std::mem::size_of::<(u32, Box<[u64; PAGE]>)>()
            + self.pages.len() * PAGE_BYTES
    }

    pub fn count(&self) -> u64 {
        self.settled + self.pending.iter().map(|s| s.1).sum::<u64>()
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
        assert_eq!(l.histogram(), h);
        l.flush();
        assert_eq!((l.min, l.max, l.sum), (min, max, sum));
        assert_eq!(l.count(), h.len());
        let built = l.histogram();
        assert_eq!(built, h);
        assert_eq!(built.high(), h.high());
        assert_eq!(built.distinct_values(), h.distinct_values());
        // What is written out reads the same.
        let hgrm = |h: &Histogram<u64>| super::super::hdr::percentile_distribution(h, 1e6);
        assert_eq!(hgrm(&built), hgrm(&h));
    }

    #[test]
    fn memory_follows_the_distinct_latencies_seen() {
        let mut l = Latency::new();
        assert_eq!(l.heap_bytes(), 0);
        // 640 latencies 64 ns apart from 2 ms: at 2 ms (below 2^21 ns) a
        // 4-digit slot is 2^6 = 64 ns wide, so 640 consecutive slots, the
        // first 2,000,000 / 64 = 31,250 into bucket 6, at index
        // (6 + 1) * 2^14 + 31,250 - 2^14 = 129,554: pages 2,024 to 2,034.
        for i in 0..640 {
            l.record(SimDuration(2_000_000 + 64 * i));
        }
        l.flush();
        assert_eq!(slot_of(2_000_000), 129_554);
        let pages = 2_034 - 2_024 + 1;
        let entry = std::mem::size_of::<(u32, Box<[u64; PAGE]>)>();
        let held = l.heap_bytes();
        // The pages, and their list (at most twice as long as needed).
        assert!(held >= pages * PAGE_BYTES && held <= pages * (PAGE_BYTES + 2 * entry));
        assert_eq!(l.histogram().len(), 640);
    }

    #[test]
    fn slots_are_numbered_as_the_histogram_numbers_its_counts() {
        // Both ends of every bucket, and values between, up to 60 s: the
        // slot's lowest value is the histogram's lowest equivalent, and
        // slots follow values in order.
        let h = Histogram::<u64>::new_with_max(HIST_MAX_NS, HIST_DIGITS).unwrap();
        let mut values: Vec<u64> = (0..=36)
            .flat_map(|b| {
                let p = 1u64 << b;
                [p - 1, p, p + 1, p + p / 3]
            })
            .chain([0, 32_767, 32_768, 65_535, 65_536, HIST_MAX_NS])
            .filter(|&v| v <= HIST_MAX_NS)
            .collect();
        values.sort_unstable();
        values.dedup();
        for w in values.windows(2) {
            let (a, b) = (w[0], w[1]);
            assert_eq!(value_of(slot_of(a)), h.lowest_equivalent(a), "{a}");
            assert!(slot_of(a) <= slot_of(b), "{a} {b}");
            assert_eq!(
                slot_of(b) == slot_of(a),
                h.equivalent(a, b),
                "{a} and {b} share a slot exactly when the histogram counts them together"
            );
        }
        // The slot of 60 s is within a histogram to 60 s.
        assert!((slot_of(HIST_MAX_NS) as usize) < h.distinct_values());
    }
}
