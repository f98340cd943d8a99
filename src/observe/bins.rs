//! Which fixed-width bin of time an instant falls in, for per-minute and
//! per-interval counters: bins `[k * width, (k + 1) * width)` for `k` below
//! `count`, the last one taking everything after it. Remembers the last bin
//! found, since consecutive packets almost always fall in the same one, so
//! the common case needs no division.

use crate::units::SimTime;

#[derive(Debug, Clone)]
pub struct Bins {
    width: u64,
    count: usize,
    /// The last bin found and its bounds `[start, end)`.
    cur: (usize, u64, u64),
}

impl Bins {
    /// `count` bins (at least one) of `width` ns (at least one).
    pub fn new(width: u64, count: usize) -> Self {
        Bins {
            width: width.max(1),
            count: count.max(1),
            cur: (0, 0, 0),
        }
    }

    /// Keeps the first `count` bins (a run ended early).
    pub fn set_count(&mut self, count: usize) {
        self.count = count.max(1);
        self.cur = (0, 0, 0);
    }

    #[inline(always)]
    pub fn index(&mut self, now: SimTime) -> usize {
        let (k, start, end) = self.cur;
        if now.0 >= start && now.0 < end {
            return k;
        }
        self.find(now)
    }

    // Out of line, or its division is hoisted into every caller's loop.
    #[cold]
    #[inline(never)]
    fn find(&mut self, now: SimTime) -> usize {
        let k = ((now.0 / self.width) as usize).min(self.count - 1);
        let start = k as u64 * self.width;
        let end = if k + 1 == self.count {
            u64::MAX
        } else {
            start + self.width
        };
        self.cur = (k, start, end);
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bin_as_a_division_in_any_order() {
        let mut b = Bins::new(60, 3);
        // Back and forth across bins, and past the last one.
        for t in [0, 59, 60, 119, 5, 120, 179, 180, 10_000, 61, 0] {
            assert_eq!(b.index(SimTime(t)), ((t / 60) as usize).min(2), "{t}");
        }
        b.set_count(1);
        assert_eq!(b.index(SimTime(150)), 0);
    }
}
