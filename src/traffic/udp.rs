//! UDP generators: constant bit rate, Poisson and on/off.
//!
//! A source is a state machine: `poll_transmit(now)` returns the packet due at
//! `now` and `next_deadline()` when the next one is. Rates are exact: the gap
//! after a packet of `b` bytes is `8b / rate` seconds, in integer nanoseconds
//! with the remainder carried to the next gap (CBR), or an exponential draw
//! with that mean (Poisson).

use rand::Rng;
use rand_distr::{Distribution, Exp};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::model::{FlowId, Packet};
use crate::scenario::{FlowConfig, FlowKind, SizeDist};
use crate::units::{SimDuration, SimTime, NS_PER_SEC};

pub struct UdpSource {
    id: FlowId,
    kind: FlowKind,
    rate_bps: u64,
    size: SizeDist,
    start: SimTime,
    stop: SimTime,
    hash: u32,
    rng: Xoshiro256PlusPlus,
    next: Option<SimTime>,
    seq: u64,
    /// Remainder of `8 * bytes * 10^9` not yet paid in whole nanoseconds of
    /// gap, in bit-nanoseconds; always below the rate. (General path only:
    /// [`Pacing::FixedCbr`] keeps its own.)
    carry: u64,
    /// How sizes and gaps are found, settled once from the kind and sizes.
    pacing: Pacing,
    /// `8 * size * 10^9` split by the rate, for the last size sent:
    /// `(size, quotient, remainder)`. Sizes repeat, so the gap needs no
    /// division. (General path only.)
    gap_of: (u32, u64, u64),
    /// The exponential distribution of Poisson gaps after a packet of the
    /// last size sent (built as before, once per size).
    exp_of: (u32, Exp<f64>),
}

/// How a source finds each packet's size and the gap after it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pacing {
    /// Constant bit rate of one size, the hot case: no draw, and the gap is
    /// `q` ns, or `q + 1` when the carried remainder reaches the rate, where
    /// `q` and `r` are the quotient and remainder of `8 * size * 10^9` by the
    /// rate (bits per second, not zero).
    FixedCbr {
        size: u32,
        q: u64,
        r: u64,
        /// The carry (bit-ns, below the rate) minus the rate, wrapping: as
        /// it is "negative", adding `r` carries out of 64 bits exactly when
        /// `r + carry` reaches the rate, and what is left is the next one's.
        carry_less_rate: u64,
    },
    /// Drawn sizes, Poisson gaps or on/off periods.
    General,
}

/// Hash of the 5-tuple (UDP), stable across runs and platforms.
pub fn flow_hash(f: &FlowConfig) -> u32 {
    let mut text = format!("{}|{}|17|{}|{}", f.from, f.to, f.src_port, f.dst_port);
    text.make_ascii_lowercase();
    let h = crate::model::network::stream_seed(0, &text);
    (h ^ (h >> 32)) as u32
}

impl UdpSource {
    pub fn new(id: FlowId, f: &FlowConfig, rng: Xoshiro256PlusPlus) -> Self {
        UdpSource {
            id,
            kind: f.kind,
            rate_bps: f.rate.bps(),
            size: f.size.clone(),
            start: f.start,
            stop: f.stop,
            hash: flow_hash(f),
            rng,
            next: Some(f.start),
            seq: 0,
            carry: 0,
            pacing: Pacing::of(f),
            gap_of: (u32::MAX, 0, 0),
            exp_of: (u32::MAX, Exp::new(1.0).expect("positive")),
        }
    }

    pub fn next_deadline(&self) -> Option<SimTime> {
        self.next
    }

    #[inline]
    fn draw_size(&mut self) -> u32 {
        match self.size {
            SizeDist::Fixed(s) => s,
            SizeDist::Uniform(a, b) => self.rng.gen_range(a..=b),
            SizeDist::Imix => match self.rng.gen_range(0..12) {
                0..=6 => 64,
                7..=10 => 576,
                _ => 1500,
            },
        }
    }

    /// The packet due at `now`, if one is. Schedules the next.
    #[inline(always)]
    pub fn poll_transmit(&mut self, now: SimTime) -> Option<Packet> {
        match self.next {
            Some(t) if t <= now => {}
            _ => return None,
        }
        let (ip_len, next) = match &mut self.pacing {
            Pacing::FixedCbr {
                size,
                q,
                r,
                carry_less_rate,
            } => {
                // (carry - rate) + r: carries out when r + carry >= rate, and
                // is then the new carry; otherwise it is the new carry less
                // the rate already.
                let (rest_less_rate, over) = carry_less_rate.overflowing_add(*r);
                *carry_less_rate = if over {
                    rest_less_rate.wrapping_sub(self.rate_bps)
                } else {
                    rest_less_rate
                };
                (*size, now.0.checked_add(*q + over as u64))
            }
            Pacing::General => {
                let (size, next) = self.draw_general(now);
                (size, Some(next.0))
            }
        };
        let pkt = Packet {
            hash: self.hash,
            ..Packet::new(self.id, self.seq, now, ip_len)
        };
        self.seq += 1;
        // A time past the end of time is past the stop too.
        self.next = match next {
            Some(next) if next < self.stop.0 => Some(SimTime(next)),
            _ => None,
        };
        Some(pkt)
    }

    /// The remainder carried to the next gap, bit-ns (below the rate).
    #[cfg(test)]
    fn carry(&self) -> u64 {
        match self.pacing {
            Pacing::FixedCbr {
                carry_less_rate, ..
            } => carry_less_rate.wrapping_add(self.rate_bps),
            Pacing::General => self.carry,
        }
    }

    /// The size of the packet sent at `now` and when the next is due, before
    /// the stop time, for [`Pacing::General`]: draws the size, then the gap.
    #[inline(never)]
    fn draw_general(&mut self, now: SimTime) -> (u32, SimTime) {
        let ip_len = self.draw_size();
        // u64 is enough: a 9 kB packet is 7.2e13 bit-ns, and carry < rate.
        let bits_ns = 8 * ip_len as u64 * NS_PER_SEC;
        let gap = match self.kind {
            FlowKind::Poisson => {
                if self.exp_of.0 != ip_len {
                    let mean = bits_ns as f64 / self.rate_bps as f64;
                    let exp = Exp::new(1.0 / mean).expect("rate is positive");
                    self.exp_of = (ip_len, exp);
                }
                SimDuration(self.exp_of.1.sample(&mut self.rng).round() as u64)
            }
            FlowKind::Cbr
            | FlowKind::OnOff { .. }
            | FlowKind::Tcp(_)
            | FlowKind::External { .. } => {
                // (bits_ns + carry) / rate, with q and r of bits_ns / rate:
                // carry < rate and r < rate, so r + carry < 2 * rate.
                if self.gap_of.0 != ip_len {
                    self.gap_of = (ip_len, bits_ns / self.rate_bps, bits_ns % self.rate_bps);
                }
                let (_, q, r) = self.gap_of;
                let rest = r + self.carry;
                if rest >= self.rate_bps {
                    self.carry = rest - self.rate_bps;
                    SimDuration(q + 1)
                } else {
                    self.carry = rest;
                    SimDuration(q)
                }
            }
        };
        let mut next = now + gap;
        if let FlowKind::OnOff { on, off } = self.kind {
            // Periods repeat from `start`: [on, off, on, off, ...].
            let period = on.as_nanos() + off.as_nanos();
            let phase = (next.0 - self.start.0) % period;
            if phase >= on.as_nanos() {
                next = SimTime(next.0 - phase + period);
                self.carry = 0;
            }
        }
        (ip_len, next)
    }
}

impl Pacing {
    /// The pacing of flow `f`: [`Pacing::FixedCbr`] for CBR of one size at a
    /// non-zero rate (a zero rate keeps the general path, which divides only
    /// when a packet is sent).
    fn of(f: &FlowConfig) -> Pacing {
        match (f.kind, &f.size) {
            (FlowKind::Cbr, &SizeDist::Fixed(size)) if f.rate.bps() > 0 => {
                // The same wrapping product as the general path (a size
                // above 2.3 GB would wrap in both).
                let bits_ns = 8 * size as u64 * NS_PER_SEC;
                Pacing::FixedCbr {
                    size,
                    q: bits_ns / f.rate.bps(),
                    r: bits_ns % f.rate.bps(),
                    carry_less_rate: f.rate.bps().wrapping_neg(),
                }
            }
            _ => Pacing::General,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Direction;
    use crate::units::BitRate;
    use rand::SeedableRng;

    fn flow(kind: FlowKind, rate: BitRate, size: SizeDist) -> FlowConfig {
        FlowConfig {
            name: "f".into(),
            kind,
            from: "192.168.1.1".parse().unwrap(),
            to: "10.1.0.4".parse().unwrap(),
            src_port: 1000,
            dst_port: 5001,
            direction: Direction::In,
            rate,
            size,
            dscp: 0,
            start: SimTime::ZERO,
            stop: SimTime(NS_PER_SEC),
        }
    }

    fn run(src: &mut UdpSource) -> (u64, u64) {
        let (mut n, mut bytes) = (0, 0);
        while let Some(t) = src.next_deadline() {
            let p = src.poll_transmit(t).unwrap();
            n += 1;
            bytes += p.ip_len as u64;
        }
        (n, bytes)
    }

    #[test]
    fn cbr_is_exact() {
        // 600 Mbps of 1400-byte packets: one every 18,666.67 ns, so in 1 s
        // packets start at 0, 18,666, ... : exactly ceil(1e9 / 18,666.67) =
        // 53,572 packets (600e6 / 11,200 = 53,571.43).
        let f = flow(
            FlowKind::Cbr,
            BitRate::from_mbps(600),
            SizeDist::Fixed(1400),
        );
        let mut s = UdpSource::new(0, &f, Xoshiro256PlusPlus::seed_from_u64(1));
        assert_eq!(run(&mut s).0, 53_572);
    }

    #[test]
    fn gaps_are_exact_quotients_with_carry() {
        // The gap after each packet is (8 * size * 1e9 + carry) / rate
        // exactly, for sizes that repeat, change, and rates that divide
        // evenly or not.
        for (rate, size) in [
            (BitRate::from_mbps(600), SizeDist::Fixed(1400)),
            (BitRate::from_gbps(1), SizeDist::Imix),
            (BitRate(999_999_937), SizeDist::Uniform(64, 1500)),
            (BitRate::from_gbps(100), SizeDist::Fixed(1500)),
        ] {
            let f = flow(FlowKind::Cbr, rate, size);
            let mut s = UdpSource::new(0, &f, Xoshiro256PlusPlus::seed_from_u64(5));
            let (mut carry, mut expected) = (0u64, 0u64);
            while let Some(t) = s.next_deadline() {
                assert_eq!(t.0, expected);
                let p = s.poll_transmit(t).unwrap();
                let total = 8 * p.ip_len as u64 * NS_PER_SEC + carry;
                expected += total / rate.bps();
                carry = total % rate.bps();
            }
        }
    }

    #[test]
    fn fixed_cbr_equals_the_general_path() {
        // The specialised path against the general one, packet by packet,
        // for rates that divide 8 * size * 1e9 evenly or not, odd sizes, and
        // gaps of zero, one and many nanoseconds.
        for (rate, size) in [
            (BitRate::from_mbps(600), 1400),
            (BitRate(999_999_937), 1),
            (BitRate(3), 9_000),
            (BitRate(7_777_777_777), 64),
            (BitRate::from_gbps(100), 1_500),
            (BitRate(u64::MAX / 3), 1_234),
            (BitRate(1), 1),
        ] {
            let mut f = flow(FlowKind::Cbr, rate, SizeDist::Fixed(size));
            f.stop = SimTime(u64::MAX);
            let mut fast = UdpSource::new(0, &f, Xoshiro256PlusPlus::seed_from_u64(5));
            assert!(matches!(fast.pacing, Pacing::FixedCbr { .. }));
            let mut general = UdpSource::new(0, &f, Xoshiro256PlusPlus::seed_from_u64(5));
            general.pacing = Pacing::General;
            for _ in 0..20_000 {
                let t = fast.next_deadline().unwrap();
                assert_eq!(general.next_deadline(), Some(t));
                let (a, b) = (
                    fast.poll_transmit(t).unwrap(),
                    general.poll_transmit(t).unwrap(),
                );
                assert_eq!((a.seq, a.ip_len, a.sent), (b.seq, b.ip_len, b.sent));
                assert_eq!(fast.carry(), general.carry());
            }
        }
    }

    #[test]
    fn a_gap_past_the_end_of_time_ends_the_flow() {
        // 1 kbps of 1000-byte packets: 8 s apart, from 1 s before the end of
        // time: one packet, then none, on either path.
        let mut f = flow(FlowKind::Cbr, BitRate(1_000), SizeDist::Fixed(1000));
        f.start = SimTime(u64::MAX - NS_PER_SEC);
        f.stop = SimTime(u64::MAX);
        for general in [false, true] {
            let mut s = UdpSource::new(0, &f, Xoshiro256PlusPlus::seed_from_u64(1));
            if general {
                s.pacing = Pacing::General;
            }
            assert!(s.poll_transmit(f.start).is_some());
            assert_eq!(s.next_deadline(), None);
        }
    }

    #[test]
    fn only_fixed_size_cbr_at_a_rate_is_specialised() {
        let general = |kind, rate, size| {
            let s = UdpSource::new(
                0,
                &flow(kind, rate, size),
                Xoshiro256PlusPlus::seed_from_u64(1),
            );
            s.pacing == Pacing::General
        };
        let mbps = BitRate::from_mbps(1);
        assert!(!general(FlowKind::Cbr, mbps, SizeDist::Fixed(100)));
        assert!(general(FlowKind::Cbr, BitRate(0), SizeDist::Fixed(100)));
        assert!(general(FlowKind::Cbr, mbps, SizeDist::Imix));
        assert!(general(FlowKind::Poisson, mbps, SizeDist::Fixed(100)));
        let on = SimDuration::from_millis(1);
        let onoff = FlowKind::OnOff { on, off: on };
        assert!(general(onoff, mbps, SizeDist::Fixed(100)));
    }

    #[test]
    fn onoff_sends_only_while_on() {
        // 100 ms on, 400 ms off at 8 Mbps of 1000-byte packets (1 ms apart):
        // 100 packets in each of the two on-periods of the first second.
        let on = SimDuration::from_millis(100);
        let off = SimDuration::from_millis(400);
        let f = flow(
            FlowKind::OnOff { on, off },
            BitRate::from_mbps(8),
            SizeDist::Fixed(1000),
        );
        let mut s = UdpSource::new(0, &f, Xoshiro256PlusPlus::seed_from_u64(1));
        let mut times = vec![];
        while let Some(t) = s.next_deadline() {
            s.poll_transmit(t);
            times.push(t.0);
        }
        assert_eq!(times.len(), 200);
        assert!(times.iter().all(|t| t % 500_000_000 < 100_000_000));
        assert_eq!(times[100], 500_000_000);
    }

    #[test]
    fn poisson_mean_rate() {
        let f = flow(
            FlowKind::Poisson,
            BitRate::from_mbps(100),
            SizeDist::Fixed(1250),
        );
        let mut s = UdpSource::new(0, &f, Xoshiro256PlusPlus::seed_from_u64(9));
        // Mean 10,000 packets in 1 s; Poisson sd 100, so within 4 sd.
        let n = run(&mut s).0 as i64;
        assert!((n - 10_000).abs() < 400, "{n}");
    }

    #[test]
    fn imix_mean_size() {
        let f = flow(FlowKind::Cbr, BitRate::from_gbps(1), SizeDist::Imix);
        let mut s = UdpSource::new(0, &f, Xoshiro256PlusPlus::seed_from_u64(3));
        let (n, bytes) = run(&mut s);
        let mean = bytes as f64 / n as f64;
        assert!((mean - SizeDist::Imix.mean()).abs() < 5.0, "{mean}");
        // CBR keeps the bit rate whatever the sizes: within one packet of 1 Gbit.
        assert!((bytes as i64 * 8 - 1_000_000_000).abs() < 12_000);
    }
}
