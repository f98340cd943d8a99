//! Tests against a tiny wire: per direction a FIFO serializing at a fixed
//! rate (counting FCS, preamble and inter-frame gap), then a fixed one-way
//! delay, and an optional drop pattern.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;

use etherparse::{NetSlice, SlicedPacket, TcpOptionElement, TransportSlice};
use sha2::{Digest, Sha256};

use super::*;
use crate::units::{SimDuration, NS_PER_SEC};

/// Bytes a frame occupies on the wire besides the captured bytes: FCS 4,
/// preamble and start delimiter 8, inter-frame gap 12.
const WIRE_OVERHEAD: u64 = 4 + 8 + 12;

struct Wire {
    delay: SimDuration,
    /// Bits per second; `None` for no serialization.
    rate: Option<u64>,
    /// Drops the `n`th frame (from 0) a side sends, by `(side, n)`.
    drop: Box<dyn FnMut(Side, u64) -> bool>,
}

struct Trace {
    /// SHA-256 over every emitted frame with its time and side.
    hash: [u8; 32],
    frames: Vec<(SimTime, Side, Vec<u8>)>,
    dropped: u64,
    end: SimTime,
}

impl Wire {
    fn new(delay_ms: u64, rate: Option<u64>) -> Self {
        Wire {
            delay: SimDuration::from_millis(delay_ms),
            rate,
            drop: Box::new(|_, _| false),
        }
    }

    /// Runs `flow` until it finishes or `until`; keeps frames if `keep`.
    fn run(&mut self, flow: &mut TcpFlow, until: SimTime, keep: bool) -> Trace {
        let mut hash = Sha256::new();
        let mut frames = Vec::new();
        let mut queue: BinaryHeap<Reverse<(SimTime, u64, Side, Vec<u8>)>> = BinaryHeap::new();
        let mut busy = [SimTime::ZERO; 2];
        let mut sent = [0u64; 2];
        let (mut seq, mut dropped) = (0u64, 0u64);
        let mut now = SimTime::ZERO;
        loop {
            while let Some((side, f)) = flow.poll_transmit(now) {
                hash.update(now.0.to_le_bytes());
                hash.update([side as u8]);
                hash.update((f.len() as u32).to_le_bytes());
                hash.update(&f);
                let i = side.index();
                let n = sent[i];
                sent[i] += 1;
                if keep {
                    frames.push((now, side, f.clone()));
                }
                let ser = self.rate.map_or(0, |r| {
                    ((f.len() as u64 + WIRE_OVERHEAD) * 8 * NS_PER_SEC).div_ceil(r)
                });
                let done = busy[i].max(now) + SimDuration(ser);
                busy[i] = done;
                if (self.drop)(side, n) {
                    dropped += 1;
                    continue;
                }
                // The routers between the hosts rewrite the Ethernet header:
                // the receiver gets the frame from its own gateway.
                let mut f = f;
                let (gw, host) = match side.peer() {
                    Side::Client => (CLIENT_GW, CLIENT_MAC),
                    Side::Server => (SERVER_GW, SERVER_MAC),
                };
                f[0..6].copy_from_slice(&host);
                f[6..12].copy_from_slice(&gw);
                queue.push(Reverse((done + self.delay, seq, side.peer(), f)));
                seq += 1;
            }
            let next_frame = queue.peek().map(|Reverse(e)| e.0);
            let next = match (flow.next_deadline(), next_frame) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > until {
                break;
            }
            assert!(next >= now, "time went back: {next} < {now}");
            now = next;
            while queue.peek().is_some_and(|Reverse(e)| e.0 == now) {
                let Reverse((_, _, to, f)) = queue.pop().unwrap();
                flow.handle_frame(now, to, &f);
            }
        }
        Trace {
            hash: hash.finalize().into(),
            frames,
            dropped,
            end: now,
        }
    }
}

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const CLIENT_GW: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 1];
const SERVER_GW: [u8; 6] = [0x02, 0, 0, 0, 1, 0xfe];

fn config(kind: TcpFlowKind) -> TcpFlowConfig {
    TcpFlowConfig {
        kind,
        client: TcpHost {
            ip: "192.168.1.10".parse().unwrap(),
            port: 40_000,
            mac: CLIENT_MAC,
            gw_mac: CLIENT_GW,
        },
        server: TcpHost {
            ip: "10.1.0.4".parse().unwrap(),
            port: 5201,
            mac: SERVER_MAC,
            gw_mac: SERVER_GW,
        },
        mss: 1460,
        congestion: CongestionControl::Cubic,
        buffer: 1 << 20,
        start: SimTime(1_000_000),
        stop: SimTime::MAX,
        seed: 7,
    }
}

fn secs(s: u64) -> SimTime {
    SimTime(s * NS_PER_SEC)
}

fn mbps(bps: u64) -> f64 {
    bps as f64 / 1e6
}

/// 10 MB with no congestion control over 1 ms / 1 Gbps. Goodput is measured
/// from the client's establishment to the last byte read. At full speed the
/// payload share of a full frame on the wire is 1460 / (1514 + 24) = 94.93 %,
/// i.e. 949.3 Mbit/s, so the bytes take 84.27 ms. Add the 1 ms one-way delay
/// before the first byte arrives, and the first round trip, in which the
/// window is the SYN's unscaled 65,535 bytes (0.55 ms of sending, then 1.45 ms
/// waiting for the first ACK to open the 1 MiB window): 86.72 ms, 922.5
/// Mbit/s. (The 1 MiB window exceeds the 250 kB bandwidth-delay product, so
/// after that the FIFO never drains.)
#[test]
fn bulk_fills_a_gigabit_pipe() {
    let mut cfg = config(TcpFlowKind::Bulk {
        bytes: Some(10_000_000),
    });
    cfg.congestion = CongestionControl::None;
    let mut flow = TcpFlow::new(cfg, SimTime::ZERO).unwrap();
    let trace = Wire::new(1, Some(1_000_000_000)).run(&mut flow, secs(10), false);
    let m = flow.metrics(trace.end);
    assert!(flow.is_finished());
    assert_eq!(m.bytes_to_server, 10_000_000);
    assert_eq!(m.corrupt_bytes, 0);
    assert_eq!(m.retransmissions(), 0);
    let g = mbps(m.goodput_bps.unwrap());
    let expected = 1e4 * 8.0 / 86.72;
    eprintln!(
        "goodput {g:.1} Mbit/s (expected {expected:.1}), completion {:?}, rtt p50 {} ns",
        m.completion_time,
        m.rtt_ns.value_at_quantile(0.5)
    );
    assert!((g / expected - 1.0).abs() < 0.01, "{g}");
}
