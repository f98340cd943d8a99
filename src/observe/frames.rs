//! The bytes a capture tap sees: each observed packet rebuilt as the frame it
//! is at that place (MACs of the devices around it, VLAN tags, the ESP tunnel).
//! Runs on the capture writer's thread, so the engine never builds bytes.
//! Plain frames are patched from a template per flow and place
//! ([`Template`]); tunnel frames are built and encrypted one by one.

use super::template;

use crate::model::{DropCause, Packet, Place};
use crate::scenario::{Config, Direction, PathId, Snaplen};
use crate::units::BitRate;
use crate::wire::esp::{SecurityAssociation, NEXT_IPV4, NEXT_IPV6};
use crate::wire::frame::{self, Mac, Tags, UdpSpec};
use crate::wire::payload::Payload;
pub use template::Template;

pub use crate::wire::ethernet::{
    host_mac, MAC_AZURE_GW, MAC_CE, MAC_MSEE, MAC_VPN_AZURE, MAC_VPN_ONPREM,
};

/// Where along its way a tap saw a packet, which decides its frame.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// Leaving its source host.
    Sent,
    /// Arriving at its destination host.
    Delivered,
    /// On a circuit link.
    Circuit(PathId, Direction),
    /// In the tunnel.
    Esp(Direction),
    /// Where it was dropped.
    Drop(Place, DropCause),
}

struct VpnFrames {
    sa: [SecurityAssociation; 2],
    onprem: std::net::Ipv4Addr,
    azure: std::net::Ipv4Addr,
    nat_t: bool,
}

pub struct FrameBuilder {
    flows: Vec<(UdpSpec, Direction)>,
    tags: [Tags; 2],
    vpn: Option<VpnFrames>,
    /// Bytes kept per frame: all, a fixed number, or headers plus 64.
    snaplen: Option<u32>,
    headers_only: bool,
    /// Per flow, its frame's template at each of its places, built when a
    /// tap first sees the flow there.
    templates: Vec<[Option<Template>; PLACES]>,
    inner: Vec<u8>,
    esp: Vec<u8>,
    scratch: Vec<u8>,
}

/// Between which devices a flow's plain (not tunnelled) frame travels.
#[derive(Debug, Clone, Copy)]
enum Ends {
    /// From its source host to the first router (CE or VNet gateway).
    Sent,
    /// From the last router to its destination host.
    Delivered,
    /// On a circuit link (primary or secondary), tagged.
    Circuit(PathId, Direction),
    /// From the source host to the CE, whichever the flow's direction.
    HostToCe,
    /// From the MSEE to the VNet gateway.
    MseeToGateway,
    /// From the source host to the VNet gateway.
    HostToGateway,
}

/// Distinct [`Ends`] of a flow's plain frames (two of the link slots, the
/// VPN's, are never used: its frames are tunnelled).
const PLACES: usize = 11;

impl Ends {
    /// Index of the flow's template for these ends.
    #[inline]
    fn slot(self) -> usize {
        match self {
            Ends::Sent => 0,
            Ends::Delivered => 1,
            Ends::Circuit(path, d) => 2 + 2 * path as usize + d as usize,
            Ends::HostToCe => 8,
            Ends::MseeToGateway => 9,
            Ends::HostToGateway => 10,
        }
    }
}

/// Where a real frame's transport payload starts (its whole length when it
/// cannot be parsed: then nothing counts as payload).
fn headers_len(frame: &[u8]) -> usize {
    match etherparse::SlicedPacket::from_ethernet(frame) {
        Ok(p) => {
            let payload = match &p.transport {
                Some(etherparse::TransportSlice::Tcp(t)) => t.payload(),
                Some(etherparse::TransportSlice::Udp(u)) => u.payload(),
                _ => match p.net.as_ref().and_then(|n| n.ip_payload_ref()) {
                    Some(x) => x.payload,
                    None => return frame.len(),
                },
            };
            (payload.as_ptr() as usize).saturating_sub(frame.as_ptr() as usize)
        }
        Err(_) => frame.len(),
    }
}

/// Bytes of a frame to keep, given the length of its headers: all, a fixed
/// number, or headers plus 64 bytes of payload.
fn keep(snaplen: Option<u32>, headers_only: bool, headers: usize) -> usize {
    match (snaplen, headers_only) {
        (Some(s), _) => s as usize,
        (None, true) => headers + 64,
        (None, false) => usize::MAX,
    }
}

impl FrameBuilder {
    pub fn new(cfg: &Config) -> Self {
        FrameBuilder {
            flows: cfg
                .flows
                .iter()
                .map(|f| {
                    let spec = UdpSpec {
                        src: f.from,
                        dst: f.to,
                        src_port: f.src_port,
                        dst_port: f.dst_port,
                        dscp: f.dscp,
                    };
                    (spec, f.direction)
                })
                .collect(),
            tags: match cfg.circuit.s_tags {
                Some([p, s]) => [
                    Tags::QinQ {
                        s_tag: p,
                        c_tag: cfg.circuit.vlan,
                    },
                    Tags::QinQ {
                        s_tag: s,
                        c_tag: cfg.circuit.vlan,
                    },
                ],
                None => [Tags::Dot1q(cfg.circuit.vlan); 2],
            },
            vpn: cfg.vpn.as_ref().map(|v| VpnFrames {
                sa: [
                    SecurityAssociation::new(v.sa_in.spi, v.sa_in.key),
                    SecurityAssociation::new(v.sa_out.spi, v.sa_out.key),
                ],
                onprem: v.onprem_address,
                azure: v.azure_address,
                nat_t: v.nat_traversal,
            }),
            snaplen: match cfg.capture.snaplen {
                Snaplen::Bytes(b) => Some(b),
                Snaplen::Auto => None,
            },
            headers_only: cfg.capture.snaplen == Snaplen::Auto
                && cfg.circuit.bandwidth > BitRate::from_gbps(1),
            templates: cfg.flows.iter().map(|_| Default::default()).collect(),
            inner: Vec::with_capacity(2048),
            esp: Vec::with_capacity(2048),
            scratch: Vec::with_capacity(2048),
        }
    }

    fn payload(pkt: &Packet) -> Payload {
        Payload {
            flow: pkt.flow,
            seq: pkt.seq,
            sent_ns: pkt.sent.0,
        }
    }

    fn tunnel(&mut self, pkt: &Packet, dir: Direction, out: &mut Vec<u8>) -> usize {
        let spec = self.flows[pkt.flow as usize].0;
        let mut inner = std::mem::take(&mut self.inner);
        inner.clear();
        frame::write_udp_packet(
            &spec,
            pkt.ip_len as usize,
            &Self::payload(pkt),
            usize::MAX,
            &mut inner,
        );
        let full = self.tunnel_raw(&inner, dir, pkt.esp_seq, out);
        self.inner = inner;
        full
    }

    /// The tunnel's frame around the IP packet `inner`; returns its full length.
    fn tunnel_raw(
        &mut self,
        inner: &[u8],
        dir: Direction,
        esp_seq: u32,
        out: &mut Vec<u8>,
    ) -> usize {
        let vpn = self
            .vpn
            .as_ref()
            .expect("tunnel frames exist only with a VPN");
        let next = if inner.first().is_some_and(|b| b >> 4 == 6) {
            NEXT_IPV6
        } else {
            NEXT_IPV4
        };
        self.esp.clear();
        vpn.sa[dir as usize].encrypt(esp_seq, inner, next, &mut self.esp);
        let (src, dst, smac, dmac) = match dir {
            Direction::In => (vpn.onprem, vpn.azure, MAC_VPN_ONPREM, MAC_VPN_AZURE),
            Direction::Out => (vpn.azure, vpn.onprem, MAC_VPN_AZURE, MAC_VPN_ONPREM),
        };
        frame::write_ethernet(smac, dmac, Tags::Untagged, etherparse::EtherType::IPV4, out);
        frame::write_esp_packet(src, dst, vpn.nat_t, &self.esp, out);
        frame::pad(out, 0);
        let full = out.len();
        let headers = 14 + 20 + if vpn.nat_t { 8 } else { 0 } + 16;
        out.truncate(keep(self.snaplen, self.headers_only, headers));
        full
    }

    /// Builds a frame with `build` into the scratch buffer, then appends it
    /// to `out`: for the frames built whole and then cut.
    fn in_scratch(
        &mut self,
        out: &mut Vec<u8>,
        build: impl FnOnce(&mut Self, &mut Vec<u8>) -> u32,
    ) -> u32 {
        let mut f = std::mem::take(&mut self.scratch);
        f.clear();
        let full = build(self, &mut f);
        out.extend_from_slice(&f);
        self.scratch = f;
        full
    }

    /// Appends a control-plane frame (built untagged by the control plane)
    /// to `out` with the VLAN tags of the circuit link it crossed, or inside
    /// the tunnel, cut to the snap length; returns its original length.
    pub fn control(
        &mut self,
        untagged: &[u8],
        shape: Shape,
        esp_seq: u32,
        out: &mut Vec<u8>,
    ) -> u32 {
        self.in_scratch(out, |b, out| {
            if let (Shape::Esp(dir), Some(inner)) = (shape, untagged.get(14..)) {
                return b.tunnel_raw(inner, dir, esp_seq, out) as u32;
            }
            let tags = match shape {
                Shape::Circuit(path, _) => b.tags[path as usize],
                _ => Tags::Untagged,
            };
            let (Some(dst), Some(src), Some(et)) = (
                untagged.get(0..6),
                untagged.get(6..12),
                untagged.get(12..14),
            ) else {
                out.extend_from_slice(untagged);
                return out.len() as u32;
            };
            let ether_type = etherparse::EtherType(u16::from_be_bytes([et[0], et[1]]));
            frame::write_ethernet(
                src.try_into().expect("6 bytes"),
                dst.try_into().expect("6 bytes"),
                tags,
                ether_type,
                out,
            );
            out.extend_from_slice(&untagged[14..]);
            frame::pad(out, 0);
            let full = out.len();
            out.truncate(keep(b.snaplen, b.headers_only, headers_len(out)));
            full as u32
        })
    }

    /// Where a synthetic packet seen as `shape` is a plain Ethernet frame
    /// (not inside the tunnel), between which devices.
    #[inline]
    fn plain_ends(shape: Shape) -> Option<Ends> {
        Some(match shape {
            Shape::Sent => Ends::Sent,
            Shape::Delivered => Ends::Delivered,
            Shape::Circuit(path, d) => Ends::Circuit(path, d),
            Shape::Esp(_) => return None,
            Shape::Drop(place, cause) => match place {
                Place::Link(PathId::Vpn, _) if cause != DropCause::Mtu => return None,
                Place::Link(PathId::Vpn, _) | Place::Router(Direction::In) => Ends::HostToCe,
                Place::Link(path, d) => Ends::Circuit(path, d),
                Place::Gateway(Direction::In) => Ends::MseeToGateway,
                Place::Gateway(Direction::Out) | Place::Router(Direction::Out) => {
                    Ends::HostToGateway
                }
            },
        })
    }

    /// The MACs and tags of a flow's frame between `ends`.
    fn frame_ends(&self, flow: u32, ends: Ends) -> (Mac, Mac, Tags) {
        let (spec, dir) = self.flows[flow as usize];
        let u = Tags::Untagged;
        let host = host_mac(spec.src);
        match (ends, dir) {
            (Ends::Sent, Direction::In) | (Ends::HostToCe, _) => (host, MAC_CE, u),
            (Ends::Sent, Direction::Out) | (Ends::HostToGateway, _) => (host, MAC_AZURE_GW, u),
            (Ends::Delivered, Direction::In) => (MAC_AZURE_GW, host_mac(spec.dst), u),
            (Ends::Delivered, Direction::Out) => (MAC_CE, host_mac(spec.dst), u),
            (Ends::Circuit(path, d), _) => {
                let msee = MAC_MSEE[path as usize];
                let tags = self.tags[path as usize];
                match d {
                    Direction::In => (MAC_CE, msee, tags),
                    Direction::Out => (msee, MAC_CE, tags),
                }
            }
            (Ends::MseeToGateway, _) => (MAC_MSEE[0], MAC_AZURE_GW, u),
        }
    }

    /// Appends the frame of `pkt` seen as `shape` to `out`, truncated to the
    /// snap length (and padded to 60 bytes when the whole frame is shorter);
    /// returns the frame's original length.
    pub fn append(&mut self, pkt: &Packet, shape: Shape, out: &mut Vec<u8>) -> u32 {
        let Some(ends) = Self::plain_ends(shape) else {
            let dir = match shape {
                Shape::Esp(d) | Shape::Drop(Place::Link(_, d), _) => d,
                _ => unreachable!("only tunnel shapes have no plain place"),
            };
            return self.in_scratch(out, |b, f| {
                let full = b.tunnel(pkt, dir, f);
                if f.len() < 60 && full == 60 {
                    frame::pad(f, 0);
                }
                full as u32
            });
        };
        let (flow, slot) = (pkt.flow as usize, ends.slot());
        if self.templates[flow][slot].is_none() {
            let (src, dst, tags) = self.frame_ends(pkt.flow, ends);
            let t = Template::new(&self.flows[flow].0, src, dst, tags);
            self.templates[flow][slot] = Some(t);
        }
        let t = self.templates[flow][slot].as_ref().expect("built above");
        let keep = keep(self.snaplen, self.headers_only, t.headers());
        t.append(pkt.ip_len, &Self::payload(pkt), keep, out) as u32
    }
}
