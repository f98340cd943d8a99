//! Token buckets, exact in integer arithmetic, and the circuit policer built on
//! one.
//!
//! Credit is kept scaled by 10^9 so that a rate in units per second times
//! elapsed nanoseconds needs no division: after `d` ns a bucket of rate `r`
//! has earned exactly `r * d` scaled units, and a packet of `b` bytes costs
//! exactly `8 * b * 10^9`. Nothing is ever rounded.

use crate::units::{BitRate, SimDuration, SimTime, NS_PER_SEC};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Units (bits or packets) per second.
    rate: u64,
    /// Depth as time at `rate`.
    burst: SimDuration,
    /// Scaled credit; never above `depth`.
    credit: u128,
    depth: u128,
    last: SimTime,
}

impl TokenBucket {
    /// A bucket of `rate` units per second, `burst` deep, starting full.
    fn new(rate: u64, burst: SimDuration) -> Self {
        let depth = rate as u128 * burst.as_nanos() as u128;
        TokenBucket {
            rate,
            burst,
            credit: depth,
            depth,
            last: SimTime::ZERO,
        }
    }

    pub fn for_bits(rate: BitRate, burst: SimDuration) -> Self {
        Self::new(rate.bps(), burst)
    }

    pub fn for_packets(pps: u64, burst: SimDuration) -> Self {
        Self::new(pps, burst)
    }

    /// Depth of the bucket in bytes (for bit buckets).
    pub fn depth_bytes(&self) -> u64 {
        (self.depth / (8 * NS_PER_SEC as u128)) as u64
    }

    pub fn refill(&mut self, now: SimTime) {
        if now > self.last {
            let earned = self.rate as u128 * (now.0 - self.last.0) as u128;
            self.credit = (self.credit + earned).min(self.depth);
            self.last = now;
        }
    }

    pub fn cost_of_bytes(&self, bytes: u64) -> u128 {
        8 * bytes as u128 * NS_PER_SEC as u128
    }

    pub fn cost_of_units(&self, units: u64) -> u128 {
        units as u128 * NS_PER_SEC as u128
    }

    pub fn has(&self, cost: u128) -> bool {
        self.credit >= cost
    }

    pub fn take(&mut self, cost: u128) {
        self.credit -= cost;
    }

    /// Changes the rate from `now` on; the depth keeps its duration.
    pub fn set_rate(&mut self, now: SimTime, rate: u64) {
        self.refill(now);
        self.rate = rate;
        self.depth = rate as u128 * self.burst.as_nanos() as u128;
        self.credit = self.credit.min(self.depth);
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
    pub fn handle_frame(&mut self, now: SimTime, frame_bytes: u32) -> bool {
        self.bucket.refill(now);
        let cost = self.bucket.cost_of_bytes(frame_bytes as u64);
        if self.bucket.has(cost) {
            self.bucket.take(cost);
            true
        } else {
            false
        }
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
