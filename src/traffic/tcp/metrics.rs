//! What a TCP flow measured, and the frame watcher that measures what smoltcp
//! keeps private (its retransmissions and RTT estimate are not exposed).
//!
//! Everything here is derived from the frames a side emits and receives, as a
//! capture at the host's NIC would see them:
//!
//! - A *retransmitted segment* is one whose sequence range (payload plus SYN
//!   and FIN) starts below the highest sequence number that side has already
//!   sent. Pure ACKs occupy no sequence space and are never counted.
//! - An *RTT sample* is taken when an ACK arriving at a side acknowledges new
//!   data: the time since the most recently sent segment it covers was sent,
//!   unless any covered segment was retransmitted (Karn's rule: such an ACK is
//!   ambiguous). This is the sender's view, delayed ACKs included, in
//!   nanoseconds of virtual time (smoltcp's own estimate has millisecond
//!   resolution and is private).

use std::collections::VecDeque;

use etherparse::{SlicedPacket, TransportSlice};
use hdrhistogram::Histogram;

use crate::units::{SimDuration, SimTime};

/// No application progress for longer than this, while data is outstanding,
/// is a stall.
pub const STALL_THRESHOLD: SimDuration = SimDuration::from_millis(200);

/// A snapshot of a flow's measurements.
#[derive(Debug, Clone)]
pub struct TcpMetrics {
    /// Application bytes the server's application read (client -> server).
    pub bytes_to_server: u64,
    /// Application bytes the client's application read (server -> client).
    pub bytes_to_client: u64,
    /// When the client's connection became established.
    pub established: Option<SimTime>,
    /// When an application last read a byte.
    pub last_progress: Option<SimTime>,
    /// Bounded bulk transfer: when the server's application had read every
    /// byte.
    pub completed: Option<SimTime>,
    /// Bounded bulk transfer: `completed - start`, so the handshake counts,
    /// as in the time a user waits for a file.
    pub completion_time: Option<SimDuration>,
    /// Application bytes received (both directions) times 8 over the active
    /// time, in bits per second: from the client's connection establishment
    /// to the last byte an application read. `None` before any byte.
    pub goodput_bps: Option<u64>,
    /// Frames each side emitted, `[client, server]`.
    pub frames_sent: [u64; 2],
    /// Segments each side sent again, `[client, server]`.
    pub retransmitted_segments: [u64; 2],
    /// Round-trip time samples in nanoseconds, both senders together.
    pub rtt_ns: Histogram<u64>,
    /// Request/response: completed transactions.
    pub transactions: u64,
    /// Request/response: from the client writing a request's first byte to
    /// its application reading the response's last byte, in nanoseconds.
    pub transaction_ns: Histogram<u64>,
    /// Periods longer than [`STALL_THRESHOLD`] without application progress
    /// while data was outstanding, as `[from, to)`. An ongoing stall is
    /// reported up to the snapshot's `now`.
    pub stalls: Vec<(SimTime, SimTime)>,
    /// Received application bytes that differ from the pattern the sender
    /// wrote: always 0 unless the network corrupts and TCP misses it.
    pub corrupt_bytes: u64,
}

pub(super) fn histogram() -> Histogram<u64> {
    // Three significant digits; auto-resizing, so any value fits.
    Histogram::new(3).expect("valid histogram precision")
}

impl TcpMetrics {
    pub(super) fn new() -> Self {
        TcpMetrics {
            bytes_to_server: 0,
            bytes_to_client: 0,
            established: None,
            last_progress: None,
            completed: None,
            completion_time: None,
            goodput_bps: None,
            frames_sent: [0; 2],
            retransmitted_segments: [0; 2],
            rtt_ns: histogram(),
            transactions: 0,
            transaction_ns: histogram(),
            stalls: Vec::new(),
            corrupt_bytes: 0,
        }
    }

    /// Application bytes received by both ends.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_to_server + self.bytes_to_client
    }

    /// Retransmitted segments of both ends.
    pub fn retransmissions(&self) -> u64 {
        self.retransmitted_segments.iter().sum()
    }
}

/// `a < b` in TCP's circular sequence space.
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// A segment sent and not yet acknowledged.
#[derive(Debug, Clone, Copy)]
struct Sent {
    start: u32,
    end: u32,
    at: SimTime,
    /// Part of its range was sent more than once.
    ambiguous: bool,
}

/// The sequence-space view of one side's sending.
#[derive(Debug, Default)]
pub(super) struct SendTracker {
    /// One past the highest sequence number sent; `None` before the SYN.
    high: Option<u32>,
    /// Segments awaiting acknowledgment, in sequence order.
    unacked: VecDeque<Sent>,
}

/// TCP fields of a frame, if it is a TCP segment.
pub(super) struct Segment {
    pub seq: u32,
    /// Sequence space occupied: payload bytes plus SYN and FIN.
    pub len: u32,
    pub ack: Option<u32>,
}

pub(super) fn parse_segment(frame: &[u8]) -> Option<Segment> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        return None;
    };
    Some(Segment {
        seq: t.sequence_number(),
        len: t.payload().len() as u32 + t.syn() as u32 + t.fin() as u32,
        ack: t.ack().then(|| t.acknowledgment_number()),
    })
}

impl SendTracker {
    /// A segment the side emitted at `now`; true if it is a retransmission.
    pub fn on_send(&mut self, seg: &Segment, now: SimTime) -> bool {
        if seg.len == 0 {
            return false;
        }
        let (start, end) = (seg.seq, seg.seq.wrapping_add(seg.len));
        let retransmit = self.high.is_some_and(|h| seq_lt(start, h));
        if retransmit {
            for s in self.unacked.iter_mut() {
                if seq_lt(s.start, end) && seq_lt(start, s.end) {
                    s.ambiguous = true;
                }
            }
        }
        if self.high.is_none_or(|h| seq_lt(h, end)) {
            // Only the part above `high` is new; a segment straddling it is
            // both a retransmission and new data, and is ambiguous.
            let new_start = match self.high {
                Some(h) if seq_lt(start, h) => h,
                _ => start,
            };
            self.unacked.push_back(Sent {
                start: new_start,
                end,
                at: now,
                ambiguous: retransmit,
            });
            self.high = Some(end);
        }
        retransmit
    }

    /// An ACK for this side's data arrived at `now`: the RTT sample it
    /// yields, if any.
    pub fn on_ack(&mut self, ack: u32, now: SimTime) -> Option<SimDuration> {
        let mut newest = None;
        let mut ambiguous = false;
        while let Some(s) = self.unacked.front() {
            if seq_lt(ack, s.end) {
                break;
            }
            ambiguous |= s.ambiguous;
            newest = Some(s.at);
            self.unacked.pop_front();
        }
        match newest {
            Some(at) if !ambiguous => Some(now.saturating_since(at)),
            _ => None,
        }
    }
}

/// Finds stalls from the times applications make progress.
#[derive(Debug, Default)]
pub(super) struct StallDetector {
    /// Start of the current quiet period, if data is outstanding in it.
    quiet_since: Option<SimTime>,
    pub stalls: Vec<(SimTime, SimTime)>,
}

impl StallDetector {
    /// At `now` an application made progress (or, with `outstanding` false,
    /// the flow went idle); `outstanding` says whether data is still owed.
    pub fn progress(&mut self, now: SimTime, outstanding: bool) {
        if let Some(since) = self.quiet_since {
            if now.saturating_since(since) > STALL_THRESHOLD {
                self.stalls.push((since, now));
            }
        }
        self.quiet_since = outstanding.then_some(now);
    }

    /// Data became outstanding at `now` after an idle period.
    pub fn outstanding(&mut self, now: SimTime) {
        if self.quiet_since.is_none() {
            self.quiet_since = Some(now);
        }
    }

    /// The stalls, with an ongoing one cut at `now`.
    pub fn snapshot(&self, now: SimTime) -> Vec<(SimTime, SimTime)> {
        let mut v = self.stalls.clone();
        if let Some(since) = self.quiet_since {
            if now.saturating_since(since) > STALL_THRESHOLD {
                v.push((since, now));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: u32, len: u32) -> Segment {
        Segment {
            seq,
            len,
            ack: None,
        }
    }

    #[test]
    fn retransmissions_and_karn() {
        let mut t = SendTracker::default();
        let ms = |m: u64| SimTime(m * 1_000_000);
        assert!(!t.on_send(&seg(u32::MAX - 1, 1), ms(0))); // SYN, wraps next
        assert_eq!(t.on_ack(u32::MAX, ms(4)), Some(SimDuration::from_millis(4)));
        assert!(!t.on_send(&seg(u32::MAX, 100), ms(5)));
        assert!(!t.on_send(&seg(99, 100), ms(6)));
        assert!(!t.on_send(&seg(0, 0), ms(6))); // pure ACK: no sequence space
        assert!(t.on_send(&seg(u32::MAX, 100), ms(9))); // resent
                                                        // Acknowledges both: the first was resent, so no sample.
        assert_eq!(t.on_ack(199, ms(10)), None);
        assert!(!t.on_send(&seg(199, 10), ms(11)));
        assert_eq!(t.on_ack(209, ms(13)), Some(SimDuration::from_millis(2)));
    }

    #[test]
    fn stalls_need_outstanding_data() {
        let mut d = StallDetector::default();
        let ms = |m: u64| SimTime(m * 1_000_000);
        d.outstanding(ms(0));
        d.progress(ms(100), true);
        d.progress(ms(400), false); // 300 ms quiet with data owed
        d.progress(ms(900), true); // idle before: no stall
        assert_eq!(d.snapshot(ms(1000)), vec![(ms(100), ms(400))]);
        assert_eq!(d.snapshot(ms(1200)).last(), Some(&(ms(900), ms(1200))));
    }
}
