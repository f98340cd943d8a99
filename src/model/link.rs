//! One direction of a link: a byte-limited FIFO egress queue, a serializer at
//! the line rate and a propagation delay (plus optional jitter).
//!
//! The serializer's schedule is computed when a packet is accepted: it starts
//! when the previous one ends and takes exactly `bits / rate` seconds, kept in
//! integer nanoseconds with the remainder carried to the next packet, so a
//! stream of back-to-back frames never drifts from the exact rate. Packets then
//! wait in one FIFO until their arrival time, so a link needs a single pending
//! event (its head) however many packets it holds.

use rand::RngCore;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::model::jitter::Jitter;
use crate::model::packet::Packet;
use crate::model::ring::Ring;
use crate::units::{BitRate, ByteSize, SimDuration, SimTime, NS_PER_SEC};

/// Ethernet preamble, start-of-frame delimiter and minimum inter-frame gap:
/// on the wire but not in the frame.
pub const ETHERNET_GAP: u32 = 8 + 12;

#[derive(Debug, Clone, Copy)]
struct InFlight {
    tx_start: SimTime,
    arrive: SimTime,
    pkt: Packet,
}

/// Why the link refused a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue would exceed its byte limit.
    QueueFull,
    /// The link is down.
    Down,
}

#[derive(Debug)]
pub struct Link {
    rate: BitRate,
    latency: SimDuration,
    /// Bytes on the wire per packet beyond `wire_len` (preamble and gap).
    gap: u32,
    limit: ByteSize,
    jitter: Option<Jitter>,
    up: bool,
    fifo: Ring<InFlight>,
    /// How many packets at the front of `fifo` have started serializing.
    started: usize,
    /// Bytes waiting for the serializer.
    queued_bytes: u64,
    busy_until: SimTime,
    /// Fraction of a nanosecond past `busy_until`, in units of 1/rate ns.
    carry: u64,
    last_arrival: SimTime,
    busy_ns: u64,
    /// `8 * (wire_len + gap) * 10^9` split by the rate, for the last frame
    /// length: `(wire_len, quotient, remainder)`. Lengths repeat, so
    /// serialization needs no division.
    tx_of: (u32, u64, u64),
}

impl Link {
    pub fn new(rate: BitRate, latency: SimDuration, gap: u32, limit: ByteSize) -> Self {
        Link {
            rate,
            latency,
            gap,
            limit,
            jitter: None,
            up: true,
            fifo: Ring::default(),
            started: 0,
            queued_bytes: 0,
            busy_until: SimTime::ZERO,
            carry: 0,
            last_arrival: SimTime::ZERO,
            busy_ns: 0,
            tx_of: (u32::MAX, 0, 0),
        }
    }

    /// Adds jitter in `[-jitter, +jitter]` around the latency, varying with
    /// the time a packet leaves ([`Jitter`]: close packets see close delays,
    /// so they are never reordered; distant ones independent delays).
    pub fn with_jitter(mut self, jitter: SimDuration, mut rng: Xoshiro256PlusPlus) -> Self {
        if jitter > SimDuration::ZERO {
            self.jitter = Some(Jitter::new(jitter, rng.next_u64()));
        }
        self
    }

    /// Wire time of `bytes` bytes (plus the gap) at the current rate, in
    /// nanoseconds rounded down; used by tests and reports.
    pub fn serialization_time(&self, bytes: u32) -> SimDuration {
        let bits = 8 * (bytes + self.gap) as u128;
        SimDuration((bits * NS_PER_SEC as u128 / self.rate.bps() as u128) as u64)
    }

    /// Counts the packets that have started serializing by `now` out of
    /// the waiting bytes.
    #[inline(always)]
    fn advance(&mut self, now: SimTime) {
        while let Some(f) = self.fifo.get(self.started) {
            if f.tx_start > now {
                break;
            }
            self.queued_bytes -= f.pkt.wire_len as u64;
            self.started += 1;
        }
    }

    /// Offers a packet at `now`. On success returns its arrival time at the far
    /// end. A packet that finds the serializer idle is always accepted; one
    /// that must wait is accepted if the waiting bytes stay within the limit.
    /// The packet is lent: the link keeps its one copy, with `enqueued` set to
    /// `now`.
    #[inline(always)]
    pub fn handle_enqueue(&mut self, now: SimTime, pkt: &Packet) -> Result<SimTime, Refused> {
        if !self.up {
            return Err(Refused::Down);
        }
        self.advance(now);
        let tx_start = if self.busy_until >= now {
            self.busy_until
        } else {
            self.carry = 0;
            now
        };
        if tx_start > now && self.queued_bytes + pkt.wire_len as u64 > self.limit.bytes() {
            return Err(Refused::QueueFull);
        }
        // (bits * 1e9 + carry) / rate from q and r of bits * 1e9 / rate:
        // carry < rate and r < rate. u64 is enough: a 9 kB frame is 7.2e13
        // bit-ns.
        let rate = self.rate.bps();
        if self.tx_of.0 != pkt.wire_len {
            let bits_ns = 8 * (pkt.wire_len + self.gap) as u64 * NS_PER_SEC;
            self.tx_of = (pkt.wire_len, bits_ns / rate, bits_ns % rate);
        }
        let (_, q, r) = self.tx_of;
        let rest = r + self.carry;
        let tx_ns = if rest >= rate {
            self.carry = rest - rate;
            q + 1
        } else {
            self.carry = rest;
            q
        };
        self.busy_until = tx_start + SimDuration(tx_ns);
        self.busy_ns += tx_ns;
        let delay = match &self.jitter {
            Some(j) => j.delay(self.latency, self.busy_until),
            None => self.latency,
        };
        // FIFO: jitter keeps order by construction; a latency lowered by a
        // scenario event could let a packet overtake, so it waits instead.
        let arrive = (self.busy_until + delay).max(self.last_arrival);
        self.last_arrival = arrive;
        if tx_start > now {
            self.queued_bytes += pkt.wire_len as u64;
        } else {
            // Starts at once: counts as started, never as waiting.
            debug_assert_eq!(self.started, self.fifo.len());
            self.started += 1;
        }
        self.fifo.push_back(InFlight {
            tx_start,
            arrive,
            pkt: Packet {
                enqueued: now,
                ..*pkt
            },
        });
        Ok(arrive)
    }

    /// Takes the packet at the head if it has arrived by `now` (lent, not
    /// copied: it stays in its slot until the next packet is accepted).
    #[inline(always)]
    pub fn poll_arrival(&mut self, now: SimTime) -> Option<&Packet> {
        let head = self.fifo.front()?;
        if head.arrive > now {
            return None;
        }
        if self.started > 0 {
            self.started -= 1;
        } else {
            self.queued_bytes -= head.pkt.wire_len as u64;
        }
        self.fifo.pop_front_ref().map(|f| &f.pkt)
    }

    /// Arrival time of the head packet.
    #[inline]
    pub fn next_deadline(&self) -> Option<SimTime> {
        self.fifo.front().map(|f| f.arrive)
    }

    /// Takes the link down at `now`: every packet queued or on the wire is
    /// lost and handed to `lost`.
    pub fn set_down(&mut self, now: SimTime, mut lost: impl FnMut(Packet)) {
        self.up = false;
        self.fifo.drain_each(|f| lost(f.pkt));
        // Time already scheduled past `now` was never used.
        self.busy_ns -= self
            .busy_until
            .saturating_since(now)
            .as_nanos()
            .min(self.busy_ns);
        self.started = 0;
        self.queued_bytes = 0;
        self.busy_until = now;
        self.carry = 0;
        self.last_arrival = now;
    }

    /// Arrival time of the last packet accepted.
    pub fn last_arrival(&self) -> SimTime {
        self.last_arrival
    }

    /// No packet accepted from now on arrives before `t` (FIFO behind
    /// something else that shares the path).
    pub fn hold_until(&mut self, t: SimTime) {
        self.last_arrival = self.last_arrival.max(t);
    }

    pub fn set_up(&mut self) {
        self.up = true;
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Applies to packets accepted from now on.
    pub fn set_rate(&mut self, rate: BitRate) {
        self.rate = rate;
        self.carry = 0;
        self.tx_of = (u32::MAX, 0, 0);
    }

    /// Applies to packets accepted from now on (FIFO order is kept).
    pub fn set_latency(&mut self, latency: SimDuration) {
        self.latency = latency;
    }

    pub fn latency(&self) -> SimDuration {
        self.latency
    }

    pub fn rate(&self) -> BitRate {
        self.rate
    }

    /// Bytes waiting for the serializer at `now`.
    pub fn queued_bytes(&mut self, now: SimTime) -> u64 {
        self.advance(now);
        self.queued_bytes
    }

    /// Serializer busy time up to `end`.
    pub fn busy_time(&self, end: SimTime) -> SimDuration {
        SimDuration(
            self.busy_ns
                - self
                    .busy_until
                    .saturating_since(end)
                    .as_nanos()
                    .min(self.busy_ns),
        )
    }

    /// Packets queued or on the wire.
    pub fn in_flight(&self) -> impl Iterator<Item = &Packet> {
        self.fifo.iter().map(|f| &f.pkt)
    }

    /// The receiving half of a split link: `pkt`, accepted by the sending
    /// half, reaches the far end at `arrive` (after every packet pushed
    /// before it). Only arrivals are kept here: no queue, no serializer.
    pub fn push_in_flight(&mut self, arrive: SimTime, pkt: Packet) {
        self.fifo.push_back(InFlight {
            tx_start: arrive,
            arrive,
            pkt,
        });
        self.started += 1;
    }

    /// The sending half of a split link: forgets the packets that have
    /// reached the far end by `now` (the receiving half has them). They had
    /// left the queue, so the queue's books do not change.
    pub fn forget_arrived(&mut self, now: SimTime) {
        while self.fifo.front().is_some_and(|f| f.arrive <= now) {
            self.fifo.pop_front();
            self.started -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(wire_len: u32) -> Packet {
        Packet::new(0, 0, SimTime::ZERO, wire_len)
    }

    #[test]
    fn one_frame_takes_serialization_plus_propagation() {
        // A 1400-byte IP packet in a VLAN-tagged frame is 14 + 4 + 1400 + 4 =
        // 1422 bytes; with preamble and gap, 1442 bytes = 11,536 bits, which at
        // 1 Gbps is exactly 11,536 ns. Then 2 ms of propagation.
        let mut l = Link::new(
            BitRate::from_gbps(1),
            SimDuration::from_millis(2),
            ETHERNET_GAP,
            ByteSize(1 << 20),
        );
        assert_eq!(l.serialization_time(1422), SimDuration(11_536));
        let t = SimTime(1_000);
        assert_eq!(
            l.handle_enqueue(t, &pkt(1422)),
            Ok(SimTime(1_000 + 11_536 + 2_000_000))
        );
    }

    #[test]
    fn a_lent_packet_is_kept_as_enqueued_now() {
        let mut l = Link::new(
            BitRate::from_gbps(1),
            SimDuration::from_millis(2),
            ETHERNET_GAP,
            ByteSize(1 << 20),
        );
        let p = Packet {
            seq: 9,
            ..pkt(1422)
        };
        let arrive = l.handle_enqueue(SimTime(1_000), &p).unwrap();
        assert_eq!(arrive, SimTime(1_000 + 11_536 + 2_000_000));
        let kept: Vec<_> = l.in_flight().copied().collect();
        assert_eq!(
            kept,
            [Packet {
                enqueued: SimTime(1_000),
                ..p
            }]
        );
        assert_eq!(l.poll_arrival(arrive).copied(), Some(kept[0]));
    }

    #[test]
    fn back_to_back_frames_do_not_drift() {
        // 1442 wire bytes at 10 Gbps is 1,153.6 ns: rounding each frame would
        // lose 0.6 ns per frame. After 10 frames the 10th must end at exactly
        // 11,536 ns.
        let mut l = Link::new(
            BitRate::from_gbps(10),
            SimDuration::ZERO,
            ETHERNET_GAP,
            ByteSize(1 << 20),
        );
        let mut last = SimTime::ZERO;
        for _ in 0..10 {
            last = l.handle_enqueue(SimTime::ZERO, &pkt(1422)).unwrap();
        }
        assert_eq!(last, SimTime(11_536));
    }

    #[test]
    fn serialization_is_the_exact_quotient_with_carry() {
        // Back to back, frames of repeating and changing lengths end exactly
        // at sum(bits) * 1e9 / rate, rounded down, also across a rate change.
        let mut l = Link::new(
            BitRate(9_999_999_967),
            SimDuration::ZERO,
            ETHERNET_GAP,
            ByteSize(1 << 30),
        );
        let mut bits = 0u128;
        for i in 0..1000u32 {
            let len = [1422, 1422, 64, 1518, 1422][i as usize % 5];
            bits += 8 * (len + ETHERNET_GAP) as u128;
            let end = l.handle_enqueue(SimTime::ZERO, &pkt(len)).unwrap();
            assert_eq!(end.0 as u128, bits * 1_000_000_000 / 9_999_999_967);
        }
        let start = l.last_arrival();
        l.set_rate(BitRate::from_gbps(1));
        let end = l.handle_enqueue(SimTime::ZERO, &pkt(1422)).unwrap();
        assert_eq!(end, start + SimDuration(11_536));
    }

    #[test]
    fn queue_overflows_at_the_byte_limit() {
        // Limit 3000 bytes. The first 1000-byte frame starts at once and does
        // not count; the next three wait (3000 bytes, exactly the limit); the
        // fifth would make 4000 and is refused.
        let mut l = Link::new(BitRate::from_mbps(1), SimDuration::ZERO, 0, ByteSize(3000));
        for _ in 0..4 {
            assert!(l.handle_enqueue(SimTime::ZERO, &pkt(1000)).is_ok());
        }
        assert_eq!(l.queued_bytes(SimTime::ZERO), 3000);
        assert_eq!(
            l.handle_enqueue(SimTime::ZERO, &pkt(1000)),
            Err(Refused::QueueFull)
        );
        // A frame takes 8 ms at 1 Mbps. At 8 ms the second starts: 2000 waiting,
        // so one more fits.
        assert_eq!(l.queued_bytes(SimTime(8_000_000)), 2000);
        assert!(l.handle_enqueue(SimTime(8_000_000), &pkt(1000)).is_ok());
        assert_eq!(
            l.handle_enqueue(SimTime(8_000_000), &pkt(1000)),
            Err(Refused::QueueFull)
        );
    }

    #[test]
    fn link_down_loses_everything_in_flight() {
        let mut l = Link::new(
            BitRate::from_gbps(1),
            SimDuration::from_millis(1),
            0,
            ByteSize(1 << 20),
        );
        for _ in 0..5 {
            l.handle_enqueue(SimTime::ZERO, &pkt(1000)).unwrap();
        }
        let mut lost = 0;
        l.set_down(SimTime(10_000), |_| lost += 1);
        assert_eq!(lost, 5);
        assert_eq!(
            l.handle_enqueue(SimTime(10_000), &pkt(1000)),
            Err(Refused::Down)
        );
        assert_eq!(l.next_deadline(), None);
        // 10 us of busy time were used (5 frames x 8 us = 40 us were planned).
        assert_eq!(l.busy_time(SimTime(1_000_000)), SimDuration(10_000));
    }

    #[test]
    fn jitter_never_reorders() {
        use rand::SeedableRng;
        let rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut l = Link::new(
            BitRate::from_gbps(1),
            SimDuration::from_millis(10),
            0,
            ByteSize(1 << 30),
        )
        .with_jitter(SimDuration::from_millis(5), rng);
        // Sparse packets (one every 20 ms, beyond the jitter's 20 ms period)
        // show the delay's whole range; dense ones (every 100 us) keep FIFO
        // order.
        let mut spread = (u64::MAX, 0);
        for i in 0..10_000u64 {
            let now = SimTime(i * 20_000_000);
            let d = (l.handle_enqueue(now, &pkt(125)).unwrap() - now).as_nanos();
            spread = (spread.0.min(d), spread.1.max(d));
        }
        let mut prev = SimTime::ZERO;
        for i in 0..10_000u64 {
            let now = SimTime(200_000_000_000 + i * 100_000);
            let a = l.handle_enqueue(now, &pkt(125)).unwrap();
            assert!(a >= prev);
            prev = a;
        }
        // 125 bytes at 1 Gbps take 1 us; delay spans roughly 5 to 15 ms.
        assert!(spread.0 >= 5_001_000 && spread.0 < 5_200_000, "{spread:?}");
        assert!(
            spread.1 > 14_800_000 && spread.1 <= 15_001_000,
            "{spread:?}"
        );
    }
}
