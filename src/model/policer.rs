//! Token buckets, exact in integer arithmetic, and the circuit policer built on
//! one.
//!
//! Credit is kept scaled by 10^9 so that a rate in units per second times
//! elapsed nanoseconds needs no division: after `d` ns a bucket of rate `r`
//! has earned exactly `r * d` scaled units, and a packet of `b` bytes costs
//! exactly `8 * b * 10^9`. Nothing is ever rounded.

use crate::units::{BitRate, SimDuration, SimTime, NS_PER_SEC};

/// The credit of a bucket too deep for 64 bits (a depth above 1.8 x 10^19
/// scaled units; every circuit, gateway and VPN figure fits 64 bits: 100 Gbps
/// x 2 ms is 2 x 10^17). It is refilled lazily, up to the bucket's `last`,
/// whenever it is read: filling in one step or several gives the same credit,
/// as the depth caps both.
#[derive(Debug, Clone)]
struct Wide {
    credit: u128,
    depth: u128,
    /// Time up to which `credit` has been refilled.
    last: SimTime,
}

impl Wide {
    /// The credit refilled at `rate` up to `now` (not before `last`).
    fn credit_at(&self, rate: u64, now: SimTime) -> u128 {
        // The product of two u64 fits u128; the sum is capped by the depth,
        // so saturating is exact.
        let earned = rate as u128 * (now.0 - self.last.0) as u128;
        self.credit.saturating_add(earned).min(self.depth)
    }
}

#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Units (bits or packets) per second.
    rate: u64,
    /// Depth as time at `rate`.
    burst: SimDuration,
    /// Scaled credit spent and not yet earned back: the credit is
    /// `depth - spent`. Kept instead of the credit because a refill then
    /// needs no cap at the depth, only at zero. Both are zero in a wide
    /// bucket, so the 64-bit path, taken without checking the width, refuses
    /// every non-zero cost there and the refusal falls through to `wide`.
    spent: u64,
    /// Scaled depth, when it fits 64 bits.
    depth: u64,
    last: SimTime,
    /// The credit when the depth does not fit 64 bits.
    wide: Option<Box<Wide>>,
}

/// Scaled cost of one byte in a bit bucket, and of one unit.
const PER_BYTE: u64 = 8 * NS_PER_SEC;
const PER_UNIT: u64 = NS_PER_SEC;

impl TokenBucket {
    /// A bucket of `rate` units per second, `burst` deep, starting full.
    fn new(rate: u64, burst: SimDuration) -> Self {
        let mut b = TokenBucket {
            rate,
            burst,
            spent: 0,
            depth: 0,
            last: SimTime::ZERO,
            wide: None,
        };
        let depth = b.scaled_depth();
        b.fill_to(depth, depth);
        b
    }

    pub fn for_bits(rate: BitRate, burst: SimDuration) -> Self {
        Self::new(rate.bps(), burst)
    }

    pub fn for_packets(pps: u64, burst: SimDuration) -> Self {
        Self::new(pps, burst)
    }

    /// `rate * burst`, in scaled units.
    fn scaled_depth(&self) -> u128 {
        self.rate as u128 * self.burst.as_nanos() as u128
    }

    /// Sets depth and credit (`credit <= depth`), choosing the width by the
    /// depth; a wide credit counts as refilled up to `last`.
    fn fill_to(&mut self, depth: u128, credit: u128) {
        match u64::try_from(depth) {
            Ok(depth) => {
                self.depth = depth;
                self.spent = depth - credit as u64;
                self.wide = None;
            }
            Err(_) => {
                self.depth = 0;
                self.spent = 0;
                self.wide = Some(Box::new(Wide {
                    credit,
                    depth,
                    last: self.last,
                }));
            }
        }
    }

    fn depth(&self) -> u128 {
        match &self.wide {
            None => self.depth as u128,
            Some(w) => w.depth,
        }
    }

    /// Scaled credit at the last refill.
    pub fn credit(&self) -> u128 {
        match &self.wide {
            None => self.narrow_credit() as u128,
            Some(w) => w.credit_at(self.rate, self.last),
        }
    }

    /// Depth of the bucket in bytes (for bit buckets).
    pub fn depth_bytes(&self) -> u64 {
        (self.depth() / PER_BYTE as u128) as u64
    }

    /// Adds the credit earned since the last refill, up to the depth; a time
    /// before the last refill changes nothing.
    #[inline(always)]
    pub fn refill(&mut self, now: SimTime) {
        if now > self.last {
            let d = now.0 - self.last.0;
            // An earning that overflows 64 bits is above anything spent, so
            // it fills the bucket: still exact. A wide bucket spends nothing
            // in 64 bits; its own credit follows `last`.
            self.spent = match self.rate.checked_mul(d) {
                Some(earned) => self.spent.saturating_sub(earned),
                None => 0,
            };
            self.last = now;
        }
    }

    /// The 64-bit scaled credit (zero in a wide bucket).
    #[inline(always)]
    fn narrow_credit(&self) -> u64 {
        self.depth - self.spent
    }

    /// The scaled cost of `n` units of `per`, if it fits 64 bits (a cost that
    /// does not is above any 64-bit credit).
    #[inline(always)]
    fn cost(n: u64, per: u64) -> Option<u64> {
        n.checked_mul(per)
    }

    /// Whether `n` units of `per` scaled credit each are available.
    #[inline(always)]
    fn has_scaled(&self, n: u64, per: u64) -> bool {
        match Self::cost(n, per) {
            Some(cost) if self.narrow_credit() >= cost => true,
            _ => self.wide.is_some() && self.wide_has(n, per),
        }
    }

    #[cold]
    #[inline(never)]
    fn wide_has(&self, n: u64, per: u64) -> bool {
        self.wide
            .as_ref()
            .is_some_and(|w| w.credit_at(self.rate, self.last) >= n as u128 * per as u128)
    }

    /// Charges `n` units of `per`; only after `has_scaled` said yes.
    #[inline(always)]
    fn take_scaled(&mut self, n: u64, per: u64) {
        if self.wide.is_none() {
            // `has_scaled` said yes: the cost fits 64 bits and the credit.
            // (Checking the width, not the cost, lets the compiler reuse the
            // product and comparison `has_scaled` just made.)
            self.spent += n * per;
        } else {
            self.wide_try_take(n, per);
        }
    }

    /// Charges `n` units of `per` if the credit holds them; whether it did.
    #[inline(always)]
    fn try_take_scaled(&mut self, n: u64, per: u64) -> bool {
        match Self::cost(n, per) {
            Some(cost) if self.narrow_credit() >= cost => {
                self.spent += cost;
                true
            }
            _ => self.wide.is_some() && self.wide_try_take(n, per),
        }
    }

    /// [`TokenBucket::try_take_scaled`] on the wide credit (false in a
    /// narrow bucket).
    #[cold]
    #[inline(never)]
    fn wide_try_take(&mut self, n: u64, per: u64) -> bool {
        let (rate, last) = (self.rate, self.last);
        let Some(w) = self.wide.as_deref_mut() else {
            return false;
        };
        let credit = w.credit_at(rate, last);
        let cost = n as u128 * per as u128;
        let ok = credit >= cost;
        w.credit = if ok { credit - cost } else { credit };
        w.last = last;
        ok
    }

    /// Whether a bit bucket holds credit for `bytes` bytes.
    #[inline(always)]
    pub fn has_bytes(&self, bytes: u64) -> bool {
        self.has_scaled(bytes, PER_BYTE)
    }

    /// Charges `bytes` bytes; only after `has_bytes(bytes)`.
    #[inline(always)]
    pub fn take_bytes(&mut self, bytes: u64) {
        self.take_scaled(bytes, PER_BYTE)
    }

    /// Whether the bucket holds credit for `units` units (packets).
    #[inline(always)]
    pub fn has_units(&self, units: u64) -> bool {
        self.has_scaled(units, PER_UNIT)
    }

    /// Charges `units` units; only after `has_units(units)`.
    #[inline(always)]
    pub fn take_units(&mut self, units: u64) {
        self.take_scaled(units, PER_UNIT)
    }

    /// Changes the rate from `now` on; the depth keeps its duration.
    pub fn set_rate(&mut self, now: SimTime, rate: u64) {
        self.refill(now);
        // The credit earned at the old rate up to the last refill.
        let credit = self.credit();
        self.rate = rate;
        let depth = self.scaled_depth();
        self.fill_to(depth, credit.min(depth));
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }
}

/// The MSEE's per-link, per-direction policer: frames within the circuit
/// bandwidth pass, the excess is dropped (fact sheet 1.6 to 1.9, 1.13).
///
/// It counts Ethernet frame bytes from destination MAC through FCS, VLAN tags
/// included, without preamble and inter-frame gap: the MEF 10 convention for
/// carrier bandwidth profiles. Assumption: Microsoft does not say which bytes
/// its rate limiter counts.
#[derive(Debug, Clone)]
pub struct Policer {
    bucket: TokenBucket,
}

impl Policer {
    pub fn new(rate: BitRate, burst: SimDuration) -> Self {
        Policer {
            bucket: TokenBucket::for_bits(rate, burst),
        }
    }

    /// Returns true when the frame conforms (and charges it), false when it is
    /// to be dropped (and charges nothing).
    #[inline(always)]
    pub fn handle_frame(&mut self, now: SimTime, frame_bytes: u32) -> bool {
        self.bucket.refill(now);
        self.bucket.try_take_scaled(frame_bytes as u64, PER_BYTE)
    }

    pub fn set_rate(&mut self, now: SimTime, rate: BitRate) {
        self.bucket.set_rate(now, rate.bps());
    }

    pub fn rate(&self) -> BitRate {
        BitRate(self.bucket.rate())
    }

    pub fn depth_bytes(&self) -> u64 {
        self.bucket.depth_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The bucket as it was, all in 128 bits: the reference for both paths.
    struct Reference {
        rate: u64,
        burst: u64,
        credit: u128,
        depth: u128,
        last: u64,
    }

    impl Reference {
        fn new(rate: u64, burst: u64) -> Self {
            let depth = rate as u128 * burst as u128;
            Reference {
                rate,
                burst,
                credit: depth,
                depth,
                last: 0,
            }
        }
        fn refill(&mut self, now: u64) {
            if now > self.last {
                let earned = self.rate as u128 * (now - self.last) as u128;
                self.credit = (self.credit + earned).min(self.depth);
                self.last = now;
            }
        }
        fn try_take(&mut self, cost: u128) -> bool {
            let ok = self.credit >= cost;
            if ok {
                self.credit -= cost;
            }
            ok
        }
        fn set_rate(&mut self, now: u64, rate: u64) {
            self.refill(now);
            self.rate = rate;
            self.depth = rate as u128 * self.burst as u128;
            self.credit = self.credit.min(self.depth);
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Bytes(u64, u64),
        Units(u64, u64),
        Rate(u64, u64),
    }

    fn rate() -> impl Strategy<Value = u64> {
        prop_oneof![0..2_000_000u64, 0..400_000_000_000u64, 0..1u64 << 40]
    }

    fn op() -> impl Strategy<Value = Op> {
        // Steps in time: often zero or small, sometimes huge.
        let dt = prop_oneof![
            Just(0u64),
            0..10_000u64,
            0..10_000_000_000u64,
            0..u64::MAX / 4
        ];
        let n = prop_oneof![
            0..10_000u64,
            any::<u32>().prop_map(|x| x as u64),
            any::<u64>()
        ];
        prop_oneof![
            8 => (dt.clone(), n.clone()).prop_map(|(d, n)| Op::Bytes(d, n)),
            4 => (dt.clone(), n).prop_map(|(d, n)| Op::Units(d, n)),
            1 => (dt, rate()).prop_map(|(d, r)| Op::Rate(d, r)),
        ]
    }

    fn check(rate: u64, burst: u64, ops: &[Op], force_wide: bool) {
        let mut b = TokenBucket::new(rate, SimDuration(burst));
        if force_wide {
            if b.wide.is_some() {
                return;
            }
            b.wide = Some(Box::new(Wide {
                credit: b.narrow_credit() as u128,
                depth: b.depth as u128,
                last: b.last,
            }));
            b.spent = 0;
            b.depth = 0;
        }
        let mut r = Reference::new(rate, burst);
        let mut now = 0u64;
        for op in ops {
            let (d, n, per) = match *op {
                Op::Bytes(d, n) => (d, n, PER_BYTE),
                Op::Units(d, n) => (d, n, PER_UNIT),
                Op::Rate(d, rate) => {
                    now = now.saturating_add(d);
                    b.set_rate(SimTime(now), rate);
                    r.set_rate(now, rate);
                    assert_eq!(b.credit(), r.credit);
                    assert_eq!(b.depth(), r.depth);
                    continue;
                }
            };
            now = now.saturating_add(d);
            b.refill(SimTime(now));
            r.refill(now);
            let mut b2 = b.clone();
            let ok = b.has_scaled(n, per);
            assert_eq!(ok, r.try_take(n as u128 * per as u128));
            if ok {
                b.take_scaled(n, per);
            }
            assert_eq!(b2.try_take_scaled(n, per), ok);
            assert_eq!(b.credit(), r.credit);
            assert_eq!(b2.credit(), r.credit);
        }
    }

    proptest! {
        #[test]
        fn narrow_and_wide_credit_equal_the_128_bit_bucket(
            rate in rate(),
            burst in prop_oneof![0..10_000_000u64, 0..1u64 << 60],
            ops in proptest::collection::vec(op(), 1..60),
        ) {
            check(rate, burst, &ops, false);
            check(rate, burst, &ops, true);
        }
    }

    #[test]
    fn depth_decides_the_width() {
        let narrow = TokenBucket::for_bits(BitRate::from_gbps(100), SimDuration::from_millis(2));
        assert!(narrow.wide.is_none());
        let wide = TokenBucket::for_bits(BitRate::from_gbps(100), SimDuration::from_secs(1));
        assert!(wide.wide.is_some());
        assert_eq!(wide.depth_bytes(), 12_500_000_000);
    }

    #[test]
    fn passes_exactly_bucket_plus_rate_times_time() {
        // 1 Gbps, 2 ms deep: the bucket holds 1e9 * 0.002 / 8 = 250,000 bytes.
        let mut p = Policer::new(BitRate::from_gbps(1), SimDuration::from_millis(2));
        assert_eq!(p.depth_bytes(), 250_000);
        // Offer 1000-byte frames back to back at 10 Gbps (one every 800 ns) for
        // 100 ms. The policer must pass the full bucket plus 1 Gbps x elapsed:
        // the last offer is at t = 99,999,200 ns, so 250,000 + 12,499,900 bytes
        // = 12,749,900 bytes, i.e. 12,749 whole frames (credit left < 1 frame).
        let mut passed_bytes = 0u64;
        for i in 0..125_000u64 {
            if p.handle_frame(SimTime(i * 800), 1000) {
                passed_bytes += 1000;
            }
        }
        assert_eq!(passed_bytes, 12_749_000);
    }

    #[test]
    fn conforming_traffic_is_never_dropped() {
        // Exactly the rate: 1000-byte frames every 8,000 ns at 1 Gbps.
        let mut p = Policer::new(BitRate::from_gbps(1), SimDuration::from_micros(10));
        for i in 0..10_000u64 {
            assert!(p.handle_frame(SimTime(i * 8_000), 1000), "frame {i}");
        }
    }

    #[test]
    fn rate_change_applies_from_now() {
        let mut p = Policer::new(BitRate::from_mbps(100), SimDuration::from_millis(1));
        // Drain the 12,500-byte bucket.
        let mut t = 0;
        while p.handle_frame(SimTime(t), 1250) {}
        t += 1_000_000; // 1 ms later at 100 Mbps: 12,500 bytes earned, capped at depth.
        p.set_rate(SimTime(t), BitRate::from_mbps(200));
        // New depth is 25,000 bytes, but credit carried over is 12,500.
        let mut n = 0;
        while p.handle_frame(SimTime(t), 1250) {
            n += 1;
        }
        assert_eq!(n, 10);
    }
}
