//! A latency distribution as the books keep it: an HdrHistogram plus the
//! exact min, max and sum, fed through a few pending counts.

use hdrhistogram::Histogram;

use crate::units::{SimDuration, NS_PER_SEC};

/// Latency histograms keep 4 significant digits (128 ns resolution at 2 ms)
/// up to 60 s; longer latencies are recorded as 60 s.
const HIST_MAX_NS: u64 = 60 * NS_PER_SEC;
const HIST_DIGITS: u8 = 4;
/// Slots of a [`Latency`]'s pending counts (a power of two).
const PENDING_SLOTS: usize = 16;

/// A latency distribution: an HdrHistogram plus the exact min, max and sum.
///
/// `hist`, `min`, `max` and `sum` are complete only after [`Latency::flush`]
/// (`Metrics::finish` flushes every one). `hist` is an HdrHistogram of
/// `HIST_DIGITS` digits once it has counts (or once `Metrics::finish` made
/// the flows' ones); until then a two-value stand-in, as a histogram of 4
/// digits takes 256 kB from the start and most links never see a packet.
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
    pub(super) fn new() -> Self {
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
    pub(super) fn materialize(&mut self) {
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
