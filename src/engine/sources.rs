//! The engine's sources: UDP generators, and TCP flows whose hosts both send
//! (the client its data, the server its answers and acknowledgements) and
//! receive what the network delivers.

use crate::model::{FlowId, FrameStore, Packet};
use crate::scenario::{Config, FlowConfig, FlowKind};
use crate::traffic::tcp::{Side, TcpFlow, TcpMetrics};
use crate::traffic::udp::flow_hash;
use crate::traffic::UdpSource;
use crate::units::SimTime;

pub struct TcpSource {
    id: FlowId,
    flow: TcpFlow,
    hash: u32,
    seq: u64,
}

pub enum Source {
    Udp(UdpSource),
    Tcp(Box<TcpSource>),
}

impl Source {
    pub fn new(id: FlowId, f: &FlowConfig, cfg: &Config) -> Source {
        let rng = crate::model::network::rng_for(cfg.seed, &format!("flow/{}", f.name));
        let FlowKind::Tcp(_) = f.kind else {
            return Source::Udp(UdpSource::new(id, f, rng));
        };
        let seed = crate::model::network::stream_seed(cfg.seed, &format!("tcp/{}", f.name));
        let tcp = crate::traffic::tcp::flow_config(f, seed);
        // Validated with the scenario; a failure here is a bug.
        let flow =
            TcpFlow::new(tcp, SimTime::ZERO).expect("TCP flows are validated with the scenario");
        Source::Tcp(Box::new(TcpSource {
            id,
            flow,
            hash: flow_hash(f),
            seq: 0,
        }))
    }

    pub fn next_deadline(&self) -> Option<SimTime> {
        match self {
            Source::Udp(u) => u.next_deadline(),
            Source::Tcp(t) => t.flow.next_deadline(),
        }
    }

    /// The next packet due at `now`, if any; TCP frames go into `frames`.
    pub fn poll_transmit(&mut self, now: SimTime, frames: &mut FrameStore) -> Option<Packet> {
        match self {
            Source::Udp(u) => u.poll_transmit(now),
            Source::Tcp(t) => {
                let (side, bytes) = t.flow.poll_transmit(now)?;
                let ip_len = crate::wire::frame::ip_len_of(&bytes)
                    .unwrap_or(bytes.len().saturating_sub(14) as u32);
                let pkt = Packet {
                    hash: t.hash,
                    frame: frames.insert(bytes),
                    reverse: side == Side::Server,
                    ..Packet::new(t.id, t.seq, now, ip_len)
                };
                t.seq += 1;
                Some(pkt)
            }
        }
    }

    /// A TCP segment delivered to this flow's host (the server for a packet
    /// with the flow, the client for one against it).
    pub fn handle_delivery(&mut self, now: SimTime, pkt: &Packet, mut bytes: Vec<u8>) {
        if let Source::Tcp(t) = self {
            let to = if pkt.reverse {
                Side::Client
            } else {
                Side::Server
            };
            // The last router addresses the frame to the host.
            let host = if to == Side::Client {
                t.flow.config().client.mac
            } else {
                t.flow.config().server.mac
            };
            if bytes.len() >= 6 {
                bytes[..6].copy_from_slice(&host);
            }
            t.flow.handle_frame(now, to, &bytes);
        }
    }

    pub fn tcp_metrics(&self, now: SimTime) -> Option<TcpMetrics> {
        match self {
            Source::Tcp(t) => Some(t.flow.metrics(now)),
            Source::Udp(_) => None,
        }
    }

    pub fn flow_id(&self) -> Option<FlowId> {
        match self {
            Source::Tcp(t) => Some(t.id),
            Source::Udp(_) => None,
        }
    }
}
