//! The event queue: a binary min-heap of `(time, class, index)` keys packed
//! into one `u128` each, so that a comparison is one integer comparison.
//!
//! Packing keeps the order of the tuple: time in the high 64 bits, then the
//! class, then the index. The engine's hot path replaces the top entry in
//! place ([`EventQueue::replace_top`]): one sift down, no pop and push.

use crate::units::SimTime;

/// A queue entry: when, which kind of component, which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key(pub(super) u128);

impl Key {
    #[inline]
    pub fn new(time: SimTime, class: u8, index: u32) -> Key {
        Key((time.0 as u128) << 64 | (class as u128) << 32 | index as u128)
    }

    /// The key as two 64-bit halves, high first (see [`Key::from_halves`]).
    #[inline]
    pub fn halves(self) -> [u64; 2] {
        [(self.0 >> 64) as u64, self.0 as u64]
    }

    #[inline]
    pub fn from_halves([high, low]: [u64; 2]) -> Key {
        Key((high as u128) << 64 | low as u128)
    }

    #[inline]
    pub fn time(self) -> SimTime {
        SimTime((self.0 >> 64) as u64)
    }

    #[inline]
    pub fn class(self) -> u8 {
        (self.0 >> 32) as u8
    }

    #[inline]
    pub fn index(self) -> u32 {
        self.0 as u32
    }
}

/// A min-heap of keys. Equal keys are allowed (a superseded entry may
/// repeat a live one); the engine skips stale entries.
#[derive(Debug, Default)]
pub struct EventQueue {
    heap: Vec<Key>,
}

impl EventQueue {
    pub fn with_capacity(n: usize) -> Self {
        EventQueue {
            heap: Vec::with_capacity(n),
        }
    }

    #[inline]
    pub fn peek(&self) -> Option<Key> {
        self.heap.first().copied()
    }

    pub fn push(&mut self, key: Key) {
        // Sift up with a hole: move parents down until `key` fits.
        let mut i = self.heap.len();
        self.heap.push(key);
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[parent] <= key {
                break;
            }
            self.heap[i] = self.heap[parent];
            i = parent;
        }
        self.heap[i] = key;
    }

    /// Removes the smallest key. The queue must not be empty.
    pub fn pop(&mut self) {
        let last = self.heap.pop().expect("pop of an empty event queue");
        if !self.heap.is_empty() {
            self.sift_down(last);
        }
    }

    /// Replaces the smallest key by `key`. The queue must not be empty.
    #[inline]
    pub fn replace_top(&mut self, key: Key) {
        self.sift_down(key);
    }

    /// Puts `key` at the root and moves it down to its place.
    #[inline]
    fn sift_down(&mut self, key: Key) {
        let n = self.heap.len();
        assert!(n > 0, "sift in an empty event queue");
        let heap = self.heap.as_mut_ptr();
        let mut i = 0;
        let mut left = 1;
        // SAFETY: every index read or written is below `n`, the length:
        // `i` starts at 0 < n and becomes `child` only once `child < n` is
        // known (`left + 1 < n` in the loop, `left < n` after it). The queue
        // is on every event's path, where the checks cost.
        unsafe {
            // While both children exist: the loop needs no test of the
            // right one (the engine's queue holds a handful of entries, so
            // most sifts end in one or two rounds).
            while left + 1 < n {
                let child = left + (*heap.add(left + 1) < *heap.add(left)) as usize;
                if key <= *heap.add(child) {
                    *heap.add(i) = key;
                    return;
                }
                *heap.add(i) = *heap.add(child);
                i = child;
                left = 2 * i + 1;
            }
            // A last, lone left child.
            if left < n && *heap.add(left) < key {
                *heap.add(i) = *heap.add(left);
                i = left;
            }
            *heap.add(i) = key;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_like_their_tuples() {
        let tuples = [
            (0, 3, 7),
            (0, 3, 8),
            (0, 2, u32::MAX),
            (1, 0, 0),
            (u64::MAX, 3, 1),
            (5, 1, 2),
        ];
        for a in tuples {
            let ka = Key::new(SimTime(a.0), a.1, a.2);
            assert_eq!((ka.time().0, ka.class(), ka.index()), a);
            for b in tuples {
                assert_eq!(ka.cmp(&Key::new(SimTime(b.0), b.1, b.2)), a.cmp(&b));
            }
        }
    }

    #[test]
    fn pops_in_order_like_a_binary_heap() {
        // Random pushes, pops and replacements against std's BinaryHeap.
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut q = EventQueue::default();
        let mut reference = std::collections::BinaryHeap::new();
        for _ in 0..20_000 {
            let r = next();
            let key = Key::new(SimTime(r % 1000), (r >> 20) as u8 % 4, (r >> 30) as u32 % 8);
            match r % 3 {
                0 if !reference.is_empty() => {
                    q.pop();
                    reference.pop();
                }
                1 if !reference.is_empty() => {
                    q.replace_top(key);
                    reference.pop();
                    reference.push(std::cmp::Reverse(key));
                }
                _ => {
                    q.push(key);
                    reference.push(std::cmp::Reverse(key));
                }
            }
            assert_eq!(q.peek(), reference.peek().map(|r| r.0));
        }
    }
}
