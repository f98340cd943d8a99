//! Delay variation of an Internet path, as a function of the time a packet
//! leaves: `offset(t)` in `[-amplitude, +amplitude]`, drawn afresh at points
//! `period` apart and linear in between.
//!
//! Why not an independent draw per packet: packets a few microseconds apart
//! meet the same queues on a real path, so their delays are nearly equal.
//! Independent draws, kept in FIFO order by making a packet wait for its
//! predecessor, pin dense traffic at the largest delay and then release it in
//! bursts: acknowledgements arrive in clumps (ACK compression) that no real
//! path of that jitter produces, and TCP over the tunnel collapsed into
//! losses at the VPN gateway's queue. With the period at least four times
//! the amplitude, the delay changes by at most half a nanosecond per
//! nanosecond, so a packet that leaves later always arrives later: order is
//! kept without waiting. Packets further apart than the period (pings, say)
//! see independent offsets spread over the whole range, as before.
//!
//! Stateless in time: the point values come from a hash of the stream's seed
//! and the point's index, so the result depends only on `t`, not on how many
//! packets came before.

use crate::units::{SimDuration, SimTime};

/// Shortest period between independent draws.
const MIN_PERIOD_NS: u64 = 1_000_000;

#[derive(Debug, Clone)]
pub struct Jitter {
    amplitude: u64,
    period: u64,
    seed: u64,
}

/// SplitMix64's finalizer: a well-mixed 64-bit value of `x`.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Jitter {
    /// Jitter of `amplitude` either way, from the stream `seed`.
    pub fn new(amplitude: SimDuration, seed: u64) -> Jitter {
        let amplitude = amplitude.as_nanos();
        Jitter {
            amplitude,
            period: (4 * amplitude).max(MIN_PERIOD_NS),
            seed,
        }
    }

    /// The independent draw at point `k`, in `[0, 2 * amplitude]`.
    fn point(&self, k: u64) -> u64 {
        let span = 2 * self.amplitude as u128 + 1;
        (mix(self.seed ^ mix(k)) as u128 % span) as u64
    }

    /// The delay added to `base` for a packet leaving at `t`; never below zero.
    pub fn delay(&self, base: SimDuration, t: SimTime) -> SimDuration {
        let k = t.0 / self.period;
        let into = (t.0 % self.period) as u128;
        let (a, b) = (self.point(k) as u128, self.point(k + 1) as u128);
        // a + (b - a) * into / period, in integers and rounded down.
        let p = self.period as u128;
        let offset = ((a * (p - into) + b * into) / p) as u64;
        SimDuration((base.as_nanos() + offset).saturating_sub(self.amplitude))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_the_amplitude_and_cover_it() {
        let j = Jitter::new(SimDuration::from_millis(2), 42);
        let base = SimDuration::from_millis(12);
        let (mut lo, mut hi) = (u64::MAX, 0);
        // Samples 10 ms apart (beyond the 8 ms period): independent.
        for i in 0..20_000u64 {
            let d = j.delay(base, SimTime(i * 10_000_000)).as_nanos();
            lo = lo.min(d);
            hi = hi.max(d);
        }
        assert!((10_000_000..10_050_000).contains(&lo), "{lo}");
        assert!((13_950_000..=14_000_000).contains(&hi), "{hi}");
    }

    #[test]
    fn a_later_packet_never_arrives_earlier() {
        let j = Jitter::new(SimDuration::from_millis(5), 7);
        let base = SimDuration::from_millis(10);
        let mut prev = SimTime::ZERO;
        // Every microsecond for 200 ms: slope at most 10 ms per 20 ms.
        for i in 0..200_000u64 {
            let t = SimTime(i * 1_000);
            let arrive = t + j.delay(base, t);
            assert!(arrive >= prev, "at {t:?}");
            prev = arrive;
        }
    }

    #[test]
    fn the_delay_depends_on_time_alone() {
        let (a, b) = (
            Jitter::new(SimDuration(300_000), 9),
            Jitter::new(SimDuration(300_000), 9),
        );
        let base = SimDuration::from_millis(1);
        for t in [0, 1, 999_999, 1_000_000, 123_456_789] {
            assert_eq!(a.delay(base, SimTime(t)), b.delay(base, SimTime(t)));
        }
        // At the draw points the offset is exactly the draw.
        assert_eq!(
            a.delay(base, SimTime(1_200_000)).as_nanos(),
            1_000_000 + a.point(1) - 300_000
        );
    }
}
