//! A FIFO of `Copy` values in a power-of-two ring: a link's packets in
//! flight. Like `VecDeque`, but a position is one mask, not a wrap test, on
//! the path every packet takes twice (in at the tail, out at the head).

/// A growable ring buffer; slots past `len` hold stale copies.
#[derive(Debug, Clone)]
pub struct Ring<T: Copy> {
    /// Empty, or a power of two long.
    buf: Vec<T>,
    /// A slot (`< buf.len()`) unless `buf` is empty, when it is 0.
    head: usize,
    /// At most `buf.len()`.
    len: usize,
}

impl<T: Copy> Default for Ring<T> {
    fn default() -> Self {
        Ring {
            buf: Vec::new(),
            head: 0,
            len: 0,
        }
    }
}

impl<T: Copy> Ring<T> {
    /// The first slots are made with the first value pushed.
    const FIRST_CAPACITY: usize = 1024;

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn slot(&self, k: usize) -> usize {
        (self.head + k) & (self.buf.len() - 1)
    }

    /// The `k`-th value from the front.
    #[inline]
    pub fn get(&self, k: usize) -> Option<&T> {
        (k < self.len).then(|| &self.buf[self.slot(k)])
    }

    #[inline]
    pub fn front(&self) -> Option<&T> {
        // `head` is a slot: no mask.
        if self.len == 0 {
            return None;
        }
        // SAFETY: `len > 0`, so `buf` is not empty and `head` is one of its
        // slots (the field's invariant). Unchecked, as the check costs two
        // instructions on each packet's way out.
        Some(unsafe { self.buf.get_unchecked(self.head) })
    }

    #[inline(always)]
    pub fn push_back(&mut self, value: T) {
        if self.len == self.buf.len() {
            self.grow(value);
        }
        let i = self.slot(self.len);
        // SAFETY: `buf` is not empty (grown above if it was full, and an
        // empty one is full), so `i`, masked by `buf.len() - 1`, is one of
        // its slots. Unchecked, as the check costs on each packet's way in.
        unsafe { *self.buf.get_unchecked_mut(i) = value };
        self.len += 1;
    }

    #[inline]
    pub fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = self.buf[self.head];
        self.head = (self.head + 1) & (self.buf.len() - 1);
        self.len -= 1;
        Some(value)
    }

    /// Removes the front value and lends it: its slot keeps it until a
    /// push reuses it, so the caller reads it in place instead of copying.
    #[inline(always)]
    pub fn pop_front_ref(&mut self) -> Option<&T> {
        if self.len == 0 {
            return None;
        }
        let i = self.head;
        self.head = (i + 1) & (self.buf.len() - 1);
        self.len -= 1;
        // SAFETY: `len` was > 0, so `buf` is not empty and `i`, the old
        // `head`, is one of its slots. Unchecked as in `front`.
        Some(unsafe { self.buf.get_unchecked(i) })
    }

    /// Doubles the slots, keeping the values in order from slot 0.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, fill: T) {
        let cap = (2 * self.buf.len()).max(Self::FIRST_CAPACITY);
        let mut buf = Vec::with_capacity(cap);
        buf.extend(self.iter().copied());
        buf.resize(cap, fill);
        self.buf = buf;
        self.head = 0;
    }

    /// Front to back.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        (0..self.len).map(move |k| &self.buf[self.slot(k)])
    }

    /// Empties the ring, handing each value to `f`, front to back.
    pub fn drain_each(&mut self, mut f: impl FnMut(T)) {
        while let Some(v) = self.pop_front() {
            f(v);
        }
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn behaves_like_a_vecdeque() {
        // Pseudo-random pushes and pops (a 64-bit LCG) across growth and
        // wrap-around, against std.
        let mut rng = 1u64;
        let mut ring = Ring::default();
        let mut reference = VecDeque::new();
        for i in 0..200_000u64 {
            rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Phases that fill (to several growths) and phases that empty.
            let fill = (i / 20_000) % 2 == 0;
            if (rng >> 40) % 8 < if fill { 5 } else { 3 } {
                ring.push_back(i);
                reference.push_back(i);
            } else if i % 2 == 0 {
                assert_eq!(ring.pop_front(), reference.pop_front());
            } else {
                assert_eq!(ring.pop_front_ref().copied(), reference.pop_front());
            }
            assert_eq!(ring.len(), reference.len());
            assert_eq!(ring.front(), reference.front());
            let k = (rng >> 32) as usize % (reference.len() + 2);
            assert_eq!(ring.get(k), reference.get(k));
            if i % 10_000 == 0 {
                assert!(ring.iter().eq(reference.iter()));
            }
        }
        let mut drained = vec![];
        ring.drain_each(|v| drained.push(v));
        assert!(drained.iter().eq(reference.iter()));
        assert_eq!(ring.len(), 0);
    }
}
