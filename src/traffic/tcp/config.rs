//! What a TCP flow is asked to do, and the checks that make every accepted
//! configuration safe to hand to smoltcp (which panics on some bad inputs).

use std::net::IpAddr;

use crate::scenario::{Direction, FlowConfig, FlowKind, TcpSpec};
use crate::units::SimTime;
use crate::wire::frame::Mac;

/// Largest socket buffer smoltcp handles correctly. smoltcp panics above
/// 1 GiB, and at exactly 1 GiB it derives a window-scale shift of 15, which
/// RFC 7323 caps at 14 (the peer would read the window as half its size).
/// With shift 14 the largest window is 2^30 - 1 bytes.
pub const MAX_BUFFER: u32 = (1 << 30) - 1;

/// Largest IP MTU smoltcp documents for a device (jumbo frames).
pub const MAX_IP_MTU: u32 = 9216;

/// Which end of the connection: the client connects, the server listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// What the applications on the two hosts do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpFlowKind {
    /// Like iperf3: the client sends `bytes` (or, if `None`, as much as it
    /// can until `stop`) and closes; the server reads and counts.
    Bulk { bytes: Option<u64> },
    /// Like netperf TCP_RR: the client sends `request` bytes, the server
    /// answers `response` bytes once the whole request has arrived, and the
    /// client starts the next transaction when the whole response has
    /// arrived. No think time; Nagle's algorithm is off on both ends (as with
    /// `TCP_NODELAY`), so a request's last partial segment is not held back.
    RequestResponse { request: u32, response: u32 },
}

/// Congestion control of both ends, as smoltcp implements it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionControl {
    /// RFC 9438 CUBIC (smoltcp's `socket-tcp-cubic`).
    #[default]
    Cubic,
    /// RFC 5681 Reno (smoltcp's `socket-tcp-reno`).
    Reno,
    /// Only the receiver's window limits the sender.
    None,
}

impl CongestionControl {
    pub(super) fn to_smoltcp(self) -> smoltcp::socket::tcp::CongestionControl {
        use smoltcp::socket::tcp::CongestionControl as C;
        match self {
            CongestionControl::Cubic => C::Cubic,
            CongestionControl::Reno => C::Reno,
            CongestionControl::None => C::None,
        }
    }
}

/// One end: its addresses and the router it sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpHost {
    pub ip: IpAddr,
    pub port: u16,
    /// The host's MAC: source of the frames it sends.
    pub mac: Mac,
    /// MAC of the next hop (the host's router): destination of every frame
    /// the host sends.
    pub gw_mac: Mac,
}

/// A TCP flow between two smoltcp hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpFlowConfig {
    pub kind: TcpFlowKind,
    pub client: TcpHost,
    pub server: TcpHost,
    /// Maximum segment size both hosts announce in their SYN, in bytes of TCP
    /// payload. The caller derives it from the path MTU (1460 for a 1500-byte
    /// IPv4 MTU; 1350 where the VPN path clamps it). The hosts' link MTU is
    /// set to `mss + IP header + 20`, which is how smoltcp derives the MSS.
    pub mss: u16,
    pub congestion: CongestionControl,
    /// Size of each socket's send buffer and receive buffer, in bytes. The
    /// receive buffer bounds the advertised window, so a sender's throughput
    /// is at most `buffer / RTT`. Each host allocates both buffers at this
    /// size (four per flow), and smoltcp's ring buffers cannot grow, so they
    /// are allocated whole; a page of a large one (which the allocator maps
    /// fresh) takes memory once data first passes through it. A bulk client fills its send buffer as soon as it
    /// connects, and the stream passes through the server's receive ring, so a
    /// bulk flow uses about `2 * buffer` once that much data has moved (the
    /// server's send buffer and the client's receive buffer stay empty).
    pub buffer: u32,
    /// When the client connects.
    pub start: SimTime,
    /// When the applications stop: the bulk sender stops writing and closes
    /// (queued data is still delivered); the request/response client starts
    /// no new transaction and closes. `SimTime::MAX` for no stop, allowed
    /// only for a bulk transfer of a given size.
    pub stop: SimTime,
    /// Seed for everything smoltcp draws at random (initial sequence
    /// numbers, IPv4 identification); the same seed gives the same frames.
    pub seed: u64,
}

/// Why a TCP flow configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TcpConfigError {
    #[error("bulk transfer of 0 bytes (give a positive size, or none to send until stop)")]
    ZeroBytes,
    #[error("flow has neither a size nor a stop time: it would never end")]
    Unbounded,
    #[error("request/response with a {0} size of 0 bytes")]
    ZeroMessage(&'static str),
    #[error("stop ({stop}) is not after start ({start})")]
    StopBeforeStart { start: SimTime, stop: SimTime },
    #[error("client {client} and server {server} are not of the same address family")]
    FamilyMismatch { client: IpAddr, server: IpAddr },
    #[error("{0} is not a unicast address a host can use")]
    NotUnicast(IpAddr),
    #[error("client and server both use {0}")]
    SameAddress(IpAddr),
    #[error("{0} MAC {1:02x?} is not a unicast address")]
    MacNotUnicast(&'static str, Mac),
    #[error("{0} port is 0")]
    ZeroPort(&'static str),
    #[error("MSS {mss} is outside {min}..={max} for this address family")]
    Mss { mss: u16, min: u16, max: u16 },
    #[error(
        "socket buffer of {size} bytes is outside {min}..={max} \
         (at least one MSS; at most the largest window smoltcp can scale to)"
    )]
    Buffer { size: u32, min: u32, max: u32 },
}

/// The TCP configuration of a scenario's TCP flow `f`: the client at `from`
/// behind its side's router, the server at `to` behind the other's; `seed`
/// is the flow's own stream. Scenario validation checks exactly this with
/// [`TcpFlowConfig::validate`], so the engine can build what it accepted.
pub fn flow_config(f: &FlowConfig, seed: u64) -> TcpFlowConfig {
    use crate::wire::ethernet::{host_mac, MAC_AZURE_GW, MAC_CE};
    // The router a host on `dir`'s sending side talks to.
    let gateway_mac = |dir: Direction| match dir {
        Direction::In => MAC_CE,
        Direction::Out => MAC_AZURE_GW,
    };
    let back = match f.direction {
        Direction::In => Direction::Out,
        Direction::Out => Direction::In,
    };
    let spec = match f.kind {
        FlowKind::Tcp(spec) => spec,
        // Only TCP flows reach here; any other kind gets a configuration
        // that `validate` refuses.
        _ => TcpSpec {
            app: TcpFlowKind::Bulk { bytes: Some(0) },
            cc: CongestionControl::None,
            buffer: 0,
            mss: 0,
        },
    };
    TcpFlowConfig {
        kind: spec.app,
        client: TcpHost {
            ip: f.from,
            port: f.src_port,
            mac: host_mac(f.from),
            gw_mac: gateway_mac(f.direction),
        },
        server: TcpHost {
            ip: f.to,
            port: f.dst_port,
            mac: host_mac(f.to),
            gw_mac: gateway_mac(back),
        },
        mss: spec.mss,
        congestion: spec.cc,
        buffer: spec.buffer,
        start: f.start,
        stop: f.stop,
        seed,
    }
}

/// Bytes of the IP header for the family of `ip`.
pub(super) fn ip_header_len(ip: IpAddr) -> u32 {
    if ip.is_ipv4() {
        20
    } else {
        40
    }
}

fn unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

impl TcpFlowConfig {
    /// Checks everything smoltcp would panic on or silently mishandle.
    pub fn validate(&self) -> Result<(), TcpConfigError> {
        use TcpConfigError as E;
        match self.kind {
            TcpFlowKind::Bulk { bytes: Some(0) } => return Err(E::ZeroBytes),
            TcpFlowKind::Bulk { bytes: None } if self.stop == SimTime::MAX => {
                return Err(E::Unbounded)
            }
            TcpFlowKind::RequestResponse { request: 0, .. } => {
                return Err(E::ZeroMessage("request"))
            }
            TcpFlowKind::RequestResponse { response: 0, .. } => {
                return Err(E::ZeroMessage("response"))
            }
            _ => {}
        }
        if let TcpFlowKind::RequestResponse { .. } = self.kind {
            if self.stop == SimTime::MAX {
                return Err(E::Unbounded);
            }
        }
        if self.stop <= self.start {
            return Err(E::StopBeforeStart {
                start: self.start,
                stop: self.stop,
            });
        }
        let (c, s) = (self.client.ip, self.server.ip);
        if c.is_ipv4() != s.is_ipv4() {
            return Err(E::FamilyMismatch {
                client: c,
                server: s,
            });
        }
        for ip in [c, s] {
            if !unicast(ip) {
                return Err(E::NotUnicast(ip));
            }
        }
        if c == s {
            return Err(E::SameAddress(c));
        }
        for (what, mac) in [
            ("client", self.client.mac),
            ("client gateway", self.client.gw_mac),
            ("server", self.server.mac),
            ("server gateway", self.server.gw_mac),
        ] {
            // smoltcp panics on a non-unicast interface address; a multicast
            // next hop would make every frame a multicast one.
            if mac[0] & 1 != 0 || mac == [0; 6] {
                return Err(E::MacNotUnicast(what, mac));
            }
        }
        if self.client.port == 0 {
            return Err(E::ZeroPort("client"));
        }
        if self.server.port == 0 {
            return Err(E::ZeroPort("server"));
        }
        // The IP MTU must be at least the family's minimum (576 for IPv4,
        // RFC 791; 1280 for IPv6, RFC 8200) and at most smoltcp's 9216.
        let hdr = ip_header_len(c) + 20;
        let (min, max) = if c.is_ipv4() {
            (576 - hdr, MAX_IP_MTU - hdr)
        } else {
            (1280 - hdr, MAX_IP_MTU - hdr)
        };
        if !(min..=max).contains(&(self.mss as u32)) {
            return Err(E::Mss {
                mss: self.mss,
                min: min as u16,
                max: max as u16,
            });
        }
        // A buffer below one MSS makes every segment a runt (silly window).
        let min = self.mss as u32;
        if !(min..=MAX_BUFFER).contains(&self.buffer) {
            return Err(E::Buffer {
                size: self.buffer,
                min,
                max: MAX_BUFFER,
            });
        }
        Ok(())
    }

    /// The host's Ethernet MTU (header included, FCS excluded) that makes
    /// smoltcp announce `mss`.
    pub(super) fn frame_mtu(&self) -> usize {
        14 + (ip_header_len(self.client.ip) + 20) as usize + self.mss as usize
    }
}
