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

/// A frame on the wire: arrival time, a tie-breaking sequence number, the
/// receiving side, the bytes.
type InFlight = (SimTime, u64, Side, Vec<u8>);

struct Trace {
    /// SHA-256 over every emitted frame with its time and side.
    hash: [u8; 32],
    frames: Vec<(SimTime, Side, Vec<u8>)>,
    dropped: u64,
    /// Times the flow was woken by its own deadline, not by a frame.
    timer_wakeups: u64,
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
        let mut queue: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
        let mut busy = [SimTime::ZERO; 2];
        let mut sent = [0u64; 2];
        let (mut seq, mut dropped, mut timer_wakeups) = (0u64, 0u64, 0u64);
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
            if next_frame != Some(next) {
                timer_wakeups += 1;
            }
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
            timer_wakeups,
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
    // No busy polling: besides frames, only the start wakes the flow.
    assert!(trace.timer_wakeups <= 2, "{}", trace.timer_wakeups);
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

/// Runs a bounded bulk transfer and returns the flow's metrics.
fn bulk(cfg: TcpFlowConfig, wire: &mut Wire) -> (TcpMetrics, Trace, bool) {
    let mut flow = TcpFlow::new(cfg, SimTime::ZERO).unwrap();
    let trace = wire.run(&mut flow, secs(60), false);
    (flow.metrics(trace.end), trace, flow.is_finished())
}

/// With congestion control, slow start costs round trips at first: smoltcp
/// starts at a window of two segments and grows it by one MSS per ACK, and
/// the receiver acknowledges every second segment, so the window grows 1.5x
/// per round trip and needs about 12 of them (24 ms) to reach the 250 kB
/// bandwidth-delay product. Goodput is therefore well below the 922.5 Mbit/s
/// of the uncontrolled sender (measured: Cubic 687, Reno about the same),
/// and never above it.
#[test]
fn bulk_with_cubic_and_reno_completes() {
    for cc in [CongestionControl::Cubic, CongestionControl::Reno] {
        let mut cfg = config(TcpFlowKind::Bulk {
            bytes: Some(10_000_000),
        });
        cfg.congestion = cc;
        let (m, _, finished) = bulk(cfg, &mut Wire::new(1, Some(1_000_000_000)));
        let g = mbps(m.goodput_bps.unwrap());
        eprintln!(
            "{cc:?}: goodput {g:.1} Mbit/s, completion {}, rtt p50 {} us",
            m.completion_time.unwrap(),
            m.rtt_ns.value_at_quantile(0.5) / 1000
        );
        assert!(finished);
        assert_eq!(m.bytes_to_server, 10_000_000);
        assert_eq!((m.retransmissions(), m.corrupt_bytes), (0, 0));
        assert!(g > 600.0 && g < 922.5, "{cc:?} {g}");
    }
}

/// A 64 KiB receive buffer over a 20 ms round trip: the sender can have at
/// most 65,536 bytes unacknowledged, so goodput is at most window / RTT =
/// 65,536 * 8 / 20.1 ms = 26.1 Mbit/s however fast the link.
#[test]
fn receive_window_bounds_goodput() {
    let mut cfg = config(TcpFlowKind::Bulk {
        bytes: Some(2_000_000),
    });
    cfg.buffer = 65_536;
    cfg.congestion = CongestionControl::None;
    let (m, _, finished) = bulk(cfg, &mut Wire::new(10, Some(1_000_000_000)));
    assert!(finished);
    let g = mbps(m.goodput_bps.unwrap());
    // RTT: 20 ms of propagation plus a full frame and an ACK serialized.
    let rtt = 0.020 + (1538.0 + 84.0) * 8.0 / 1e9;
    let bound = 65_536.0 * 8.0 / rtt / 1e6;
    eprintln!("window-limited goodput {g:.2} Mbit/s, bound {bound:.2}");
    assert!(g <= bound && g > 0.9 * bound, "{g} vs {bound}");
    // The samples are the propagation RTT plus serialization.
    let p50 = m.rtt_ns.value_at_quantile(0.5);
    assert!((20_000_000..20_700_000).contains(&p50), "{p50}");
}

/// Dropped data segments are sent again and counted, and the transfer still
/// delivers every byte exactly once and intact.
#[test]
fn drops_cause_counted_retransmissions() {
    let cfg = config(TcpFlowKind::Bulk {
        bytes: Some(3_000_000),
    });
    let mut wire = Wire::new(1, Some(1_000_000_000));
    wire.drop = Box::new(|side, n| side == Side::Client && [200, 201, 900].contains(&n));
    let (m, trace, finished) = bulk(cfg, &mut wire);
    eprintln!(
        "retransmitted {:?}, stalls {:?}, completion {}",
        m.retransmitted_segments,
        m.stalls,
        m.completion_time.unwrap()
    );
    assert!(finished);
    assert_eq!(trace.dropped, 3);
    assert_eq!(m.bytes_to_server, 3_000_000);
    assert_eq!(m.corrupt_bytes, 0);
    assert!(m.retransmitted_segments[0] >= 3, "{m:?}");
    assert_eq!(m.retransmitted_segments[1], 0);
}

/// A lost SYN is resent after smoltcp's initial 1 s RTO: one stall of about
/// a second, from the connect to the first byte read.
#[test]
fn lost_syn_is_a_stall() {
    let cfg = config(TcpFlowKind::Bulk {
        bytes: Some(100_000),
    });
    let mut wire = Wire::new(1, Some(1_000_000_000));
    wire.drop = Box::new(|side, n| side == Side::Client && n == 0);
    let (m, _, finished) = bulk(cfg, &mut wire);
    assert!(finished);
    assert_eq!(m.retransmitted_segments, [1, 0]);
    assert_eq!(m.stalls.len(), 1, "{:?}", m.stalls);
    let (from, to) = m.stalls[0];
    assert_eq!(from, SimTime(1_000_000));
    let len = to.saturating_since(from);
    assert!(len > SimDuration::from_millis(1000) && len < SimDuration::from_millis(1010));
}

/// Request/response over 2 ms each way at 1 Gbit/s with 100-byte requests
/// and 1000-byte responses: each transaction is one round trip (4 ms) plus
/// serializing a 154-byte and a 1054-byte frame (24 bytes of wire overhead
/// each): 4.0099 ms. In 1 s that is 249 transactions (the first after the
/// handshake's 4 ms).
#[test]
fn request_response_is_one_round_trip() {
    let mut cfg = config(TcpFlowKind::RequestResponse {
        request: 100,
        response: 1000,
    });
    cfg.start = SimTime::ZERO;
    cfg.stop = secs(1);
    let mut flow = TcpFlow::new(cfg, SimTime::ZERO).unwrap();
    let trace = Wire::new(2, Some(1_000_000_000)).run(&mut flow, secs(60), false);
    let m = flow.metrics(trace.end);
    let per = 0.004 + (154.0 + 24.0 + 1054.0 + 24.0) * 8.0 / 1e9;
    let (p50, max) = (
        m.transaction_ns.value_at_quantile(0.5),
        m.transaction_ns.max(),
    );
    eprintln!(
        "{} transactions, p50 {p50} ns, max {max} ns, expected {:.0} ns each",
        m.transactions,
        per * 1e9
    );
    assert!(flow.is_finished());
    assert_eq!(m.transactions, ((1.0 - 0.004) / per) as u64 + 1);
    // The histogram keeps 3 significant digits.
    assert!((p50 as f64 / (per * 1e9) - 1.0).abs() < 0.001, "{p50}");
    assert!((max as f64 / (per * 1e9) - 1.0).abs() < 0.001, "{max}");
    assert_eq!(m.bytes_to_client, m.transactions * 1000);
    assert!(m.stalls.is_empty());
    assert_eq!(m.retransmissions(), 0);
}

/// Same configuration, same frames at the same times; another seed gives
/// other initial sequence numbers.
#[test]
fn runs_are_deterministic() {
    let run = |seed| {
        let mut cfg = config(TcpFlowKind::Bulk {
            bytes: Some(1_000_000),
        });
        cfg.seed = seed;
        let mut wire = Wire::new(1, Some(100_000_000));
        wire.drop = Box::new(|side, n| side == Side::Client && n % 97 == 50);
        let mut flow = TcpFlow::new(cfg, SimTime::ZERO).unwrap();
        wire.run(&mut flow, secs(60), false).hash
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

/// Checks every frame: Ethernet II from the host's MAC to its next hop, at
/// least 60 bytes, IP and TCP checksums valid; returns the SYN's MSS option.
fn check_frames(frames: &[(SimTime, Side, Vec<u8>)], cfg: &TcpFlowConfig) -> Vec<u16> {
    let mut mss = Vec::new();
    for (_, side, f) in frames {
        let host = match side {
            Side::Client => &cfg.client,
            Side::Server => &cfg.server,
        };
        assert!(f.len() >= 60);
        assert_eq!(&f[0..6], &host.gw_mac);
        assert_eq!(&f[6..12], &host.mac);
        let p = SlicedPacket::from_ethernet(f).expect("valid frame");
        let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
            panic!("not TCP: {f:02x?}")
        };
        let sum = match &p.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header();
                assert_eq!(IpAddr::from(h.source_addr()), host.ip);
                assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum());
                tcp.calc_checksum_ipv4(h.source(), h.destination())
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header();
                assert_eq!(IpAddr::from(h.source_addr()), host.ip);
                tcp.calc_checksum_ipv6(h.source(), h.destination())
            }
            _ => panic!("not IP"),
        };
        assert_eq!(sum.unwrap(), tcp.checksum());
        if tcp.syn() {
            for o in tcp.options_iterator() {
                if let Ok(TcpOptionElement::MaximumSegmentSize(m)) = o {
                    mss.push(m);
                }
            }
        }
        assert!(tcp.payload().len() <= cfg.mss as usize);
    }
    mss
}

/// IPv4 with the VPN path's clamp of 1350, and IPv6: valid frames, and both
/// SYNs announce the configured MSS.
#[test]
fn frames_are_valid_and_announce_the_mss() {
    let v4 = {
        let mut c = config(TcpFlowKind::Bulk {
            bytes: Some(200_000),
        });
        c.mss = 1350;
        c
    };
    let v6 = {
        let mut c = v4.clone();
        c.client.ip = "fd00:1::10".parse().unwrap();
        c.server.ip = "fd00:2::4".parse().unwrap();
        c.mss = 1440;
        c
    };
    for cfg in [v4, v6] {
        let mut flow = TcpFlow::new(cfg.clone(), SimTime::ZERO).unwrap();
        let mut wire = Wire::new(1, Some(100_000_000));
        let trace = wire.run(&mut flow, secs(60), true);
        assert!(flow.is_finished());
        assert_eq!(flow.metrics(trace.end).bytes_to_server, 200_000);
        assert_eq!(check_frames(&trace.frames, &cfg), vec![cfg.mss; 2]);
        // Full-sized segments carry exactly the MSS.
        let full = trace.frames.iter().filter(|(_, _, f)| {
            f.len()
                == 14 + super::config::ip_header_len(cfg.client.ip) as usize + 20 + cfg.mss as usize
        });
        assert!(full.count() > 100);
    }
}

/// Without a size, the bulk sender writes until stop, then closes.
#[test]
fn unbounded_bulk_stops() {
    let mut cfg = config(TcpFlowKind::Bulk { bytes: None });
    cfg.stop = SimTime(101_000_000);
    let mut flow = TcpFlow::new(cfg, SimTime::ZERO).unwrap();
    let trace = Wire::new(1, Some(100_000_000)).run(&mut flow, secs(60), false);
    let m = flow.metrics(trace.end);
    assert!(flow.is_finished());
    assert!(m.completed.is_none());
    // 100 ms at 100 Mbit/s is at most 1.25 MB of frames by stop; after it,
    // what the 1 MiB send buffer holds still drains, as with a real socket.
    let g = mbps(m.goodput_bps.unwrap());
    eprintln!("unbounded: {} bytes, {g:.1} Mbit/s", m.bytes_to_server);
    assert!(m.bytes_to_server > 800_000 && m.bytes_to_server < 1_250_000 + (1 << 20));
    // Slow start (Cubic) costs the first few round trips of the 100 ms.
    assert!(g > 75.0 && g <= 94.93, "{g}");
}

#[test]
fn bad_configs_are_errors() {
    use TcpConfigError as E;
    let base = config(TcpFlowKind::Bulk { bytes: Some(1) });
    let bad = |f: &dyn Fn(&mut TcpFlowConfig)| {
        let mut c = base.clone();
        f(&mut c);
        TcpFlow::new(c, SimTime::ZERO).err().expect("rejected")
    };
    assert_eq!(
        bad(&|c| c.kind = TcpFlowKind::Bulk { bytes: Some(0) }),
        E::ZeroBytes
    );
    assert_eq!(
        bad(&|c| c.kind = TcpFlowKind::Bulk { bytes: None }),
        E::Unbounded
    );
    assert_eq!(
        bad(&|c| c.kind = TcpFlowKind::RequestResponse {
            request: 0,
            response: 1
        }),
        E::ZeroMessage("request")
    );
    assert_eq!(
        bad(&|c| c.kind = TcpFlowKind::RequestResponse {
            request: 1,
            response: 0
        }),
        E::ZeroMessage("response")
    );
    assert!(matches!(
        bad(&|c| c.buffer = 1 << 30),
        E::Buffer {
            max: MAX_BUFFER,
            ..
        }
    ));
    assert!(matches!(bad(&|c| c.buffer = 1000), E::Buffer { .. }));
    assert!(matches!(
        bad(&|c| c.server.ip = "fd00::4".parse().unwrap()),
        E::FamilyMismatch { .. }
    ));
    assert!(matches!(
        bad(&|c| c.server.ip = "224.0.0.1".parse().unwrap()),
        E::NotUnicast(_)
    ));
    assert!(matches!(
        bad(&|c| c.server.ip = c.client.ip),
        E::SameAddress(_)
    ));
    assert!(matches!(
        bad(&|c| c.client.gw_mac = [0xff; 6]),
        E::MacNotUnicast("client gateway", _)
    ));
    assert!(matches!(bad(&|c| c.server.port = 0), E::ZeroPort("server")));
    assert!(matches!(bad(&|c| c.mss = 100), E::Mss { min: 536, .. }));
    assert!(matches!(bad(&|c| c.mss = 9177), E::Mss { max: 9176, .. }));
    assert!(matches!(
        bad(&|c| c.stop = c.start),
        E::StopBeforeStart { .. }
    ));
    // The largest buffer is accepted (allocation is lazy: the pages are not
    // touched by this test).
    let mut c = base.clone();
    c.buffer = MAX_BUFFER;
    assert!(TcpFlow::new(c, SimTime::ZERO).is_ok());
}

/// Writes `frames` as a pcap (Ethernet, nanosecond timestamps).
fn write_pcap(path: &std::path::Path, frames: &[(SimTime, Side, Vec<u8>)]) {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    use pcap_file::{DataLink, TsResolution};
    let file = std::fs::File::create(path).unwrap();
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(file, header).unwrap();
    for (t, _, f) in frames {
        let ts = std::time::Duration::from_nanos(t.as_nanos());
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .unwrap();
    }
}

/// Wireshark's verdict on the frames (as each host emits them): nothing
/// malformed, no warning or error; when segments were dropped, it notes the
/// retransmissions (a note, below the warning level), and counts as many as
/// the flow does.
#[test]
fn wireshark_finds_nothing_wrong() {
    if std::process::Command::new("tshark")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("skipped: tshark not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for drops in [false, true] {
        let mut cfg = config(TcpFlowKind::Bulk {
            bytes: Some(300_000),
        });
        cfg.mss = 1350;
        let mut wire = Wire::new(1, Some(100_000_000));
        if drops {
            wire.drop = Box::new(|side, n| side == Side::Client && (n == 20 || n == 60));
        }
        let mut flow = TcpFlow::new(cfg, SimTime::ZERO).unwrap();
        let trace = wire.run(&mut flow, secs(60), true);
        assert!(flow.is_finished());
        let path = dir.path().join(format!("tcp-{drops}.pcap"));
        write_pcap(&path, &trace.frames);
        let run = |filter: &str| {
            let out = std::process::Command::new("tshark")
                .args(["-n", "-r"])
                .arg(&path)
                .args(["-Y", filter])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let bad = run("_ws.malformed || _ws.expert.severity >= 0x00600000");
        let retrans = run("tcp.analysis.retransmission || tcp.analysis.fast_retransmission");
        eprintln!("drops {drops}: warnings:\n{bad}retransmissions:\n{retrans}");
        assert_eq!(bad, "", "drops: {drops}");
        // Wireshark and the flow's own detector agree.
        let m = flow.metrics(trace.end);
        assert_eq!(retrans.lines().count() as u64, m.retransmissions());
        assert_eq!(m.retransmissions() > 0, drops);
        assert_eq!(run("tcp.flags.syn == 1").lines().count(), 2);
    }
}

/// The three congestion controls react differently to the same losses (with
/// no loss, Cubic and Reno share slow start and behave identically).
#[test]
fn congestion_control_is_applied() {
    let mut seen = Vec::new();
    for cc in [
        CongestionControl::Cubic,
        CongestionControl::Reno,
        CongestionControl::None,
    ] {
        let mut cfg = config(TcpFlowKind::Bulk {
            bytes: Some(5_000_000),
        });
        cfg.congestion = cc;
        let mut wire = Wire::new(1, Some(1_000_000_000));
        wire.drop = Box::new(|side, n| side == Side::Client && n % 400 == 399);
        let mut flow = TcpFlow::new(cfg, SimTime::ZERO).unwrap();
        let trace = wire.run(&mut flow, secs(60), false);
        let m = flow.metrics(trace.end);
        eprintln!(
            "{cc:?} with drops: completion {}, goodput {:.1} Mbit/s, retransmitted {}",
            m.completion_time.unwrap(),
            mbps(m.goodput_bps.unwrap()),
            m.retransmissions()
        );
        assert_eq!(m.bytes_to_server, 5_000_000);
        if cc == CongestionControl::Reno {
            // Mathis et al.: Reno's rate under random loss p is about
            // MSS / RTT * 1.22 / sqrt(p) = 11,680 bit / 2 ms * 1.22 / 0.05
            // = 142.5 Mbit/s for p = 1/400 (well below the link rate, so
            // the FIFO stays empty and the RTT is the propagation's 2 ms).
            let g = mbps(m.goodput_bps.unwrap());
            assert!(g > 0.7 * 142.5 && g < 1.3 * 142.5, "{g}");
        }
        seen.push(trace.hash);
    }
    assert!(seen[0] != seen[1] && seen[1] != seen[2] && seen[0] != seen[2]);
}

/// Multi-segment messages: a 3,000-byte request (3 frames) and a 50,000-byte
/// response (35 frames). Once the server's window has grown past the response
/// (the first transactions take several round trips of slow start), each
/// transaction is a round trip plus serializing both messages:
/// 2 ms + (3,000 + 3 * 78 + 50,000 + 35 * 78) * 8 bit / 1 Gbit/s = 2.448 ms
/// (78 bytes per frame: 54 of headers, 24 of FCS, preamble and gap).
#[test]
fn request_response_with_large_messages() {
    let mut cfg = config(TcpFlowKind::RequestResponse {
        request: 3_000,
        response: 50_000,
    });
    cfg.stop = SimTime(501_000_000);
    let mut flow = TcpFlow::new(cfg, SimTime::ZERO).unwrap();
    let trace = Wire::new(1, Some(1_000_000_000)).run(&mut flow, secs(60), false);
    let m = flow.metrics(trace.end);
    let expected = 0.002 + (3_000.0 + 3.0 * 78.0 + 50_000.0 + 35.0 * 78.0) * 8.0 / 1e9;
    let p50 = m.transaction_ns.value_at_quantile(0.5) as f64 / 1e9;
    eprintln!(
        "{} transactions, p50 {:.4} ms, max {:.4} ms, expected {:.4} ms",
        m.transactions,
        p50 * 1e3,
        m.transaction_ns.max() as f64 / 1e6,
        expected * 1e3
    );
    assert!(flow.is_finished());
    assert_eq!(m.bytes_to_client, m.transactions * 50_000);
    assert!((p50 / expected - 1.0).abs() < 0.01, "{p50}");
    assert!(m.transactions as f64 > 0.95 * 0.5 / expected);
    assert!(m.stalls.is_empty());
}

/// Frames for another MAC are ignored, as by a NIC; damaged frames (cut
/// short, a bit flipped) never panic, and no damaged payload reaches an
/// application: the checksums catch every flip. (The replayed frames are
/// valid for the new flow: same seed, same sequence numbers.)
#[test]
fn foreign_and_damaged_frames_are_harmless() {
    use rand::{Rng, SeedableRng};
    let cfg = config(TcpFlowKind::Bulk {
        bytes: Some(100_000),
    });
    let mut flow = TcpFlow::new(cfg.clone(), SimTime::ZERO).unwrap();
    let trace = Wire::new(1, None).run(&mut flow, secs(60), true);
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
    let mut flow = TcpFlow::new(cfg, SimTime::ZERO).unwrap();
    let mut now = SimTime::ZERO;
    // The SYN, readdressed to another MAC: the server does not answer.
    let (_, _, syn) = &trace.frames[0];
    let mut foreign = syn.clone();
    foreign[0..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
    flow.handle_frame(SimTime(2_000_000), Side::Server, &foreign);
    while let Some((side, _)) = flow.poll_transmit(SimTime(2_000_000)) {
        assert_eq!(side, Side::Client, "the server answered a foreign frame");
    }
    for (t, side, f) in &trace.frames {
        now = now.max(*t);
        let mut f = f.clone();
        f[0..6].copy_from_slice(match side.peer() {
            Side::Client => &CLIENT_MAC,
            Side::Server => &SERVER_MAC,
        });
        let cut = rng.gen_range(0..f.len());
        flow.handle_frame(now, side.peer(), &f[..cut]);
        let mut flipped = f.clone();
        let i = rng.gen_range(0..f.len());
        flipped[i] ^= 1 << rng.gen_range(0..8);
        flow.handle_frame(now, side.peer(), &flipped);
        while flow.poll_transmit(now).is_some() {}
    }
    assert_eq!(flow.metrics(now).corrupt_bytes, 0);
}

/// A lost response can only be recovered by the retransmission timer
/// (smoltcp's minimum RTO is 1 s): that transaction takes about 1 s and is
/// the flow's one stall.
#[test]
fn lost_response_is_a_stall() {
    let mut cfg = config(TcpFlowKind::RequestResponse {
        request: 100,
        response: 1000,
    });
    cfg.stop = secs(3);
    let mut flow = TcpFlow::new(cfg, SimTime::ZERO).unwrap();
    let mut wire = Wire::new(2, Some(1_000_000_000));
    wire.drop = Box::new(|side, n| side == Side::Server && n == 50);
    let trace = wire.run(&mut flow, secs(60), false);
    let m = flow.metrics(trace.end);
    eprintln!(
        "{} transactions, max {} ns, stalls {:?}",
        m.transactions,
        m.transaction_ns.max(),
        m.stalls
    );
    assert!(flow.is_finished());
    // The lost response also carried the ACK of its request, so the client's
    // timer resends the request too.
    assert_eq!(m.retransmitted_segments, [1, 1]);
    assert_eq!(m.stalls.len(), 1);
    let (from, to) = m.stalls[0];
    let len = to.saturating_since(from).as_nanos();
    assert!((1_000_000_000..1_010_000_000).contains(&len), "{len}");
    assert!(m.transaction_ns.max() >= 1_000_000_000);
}
