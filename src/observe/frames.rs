//! The bytes a capture tap sees: each observed packet rebuilt as the frame it
//! is at that place (MACs of the devices around it, VLAN tags, the ESP tunnel).
//! Runs on the capture writer's thread, so the engine never builds bytes.

use std::net::IpAddr;

use crate::model::{DropCause, Packet, Place};
use crate::scenario::{Config, Direction, PathId, Snaplen};
use crate::units::BitRate;
use crate::wire::esp::{SecurityAssociation, NEXT_IPV4, NEXT_IPV6};
use crate::wire::frame::{self, Mac, Tags, UdpSpec};
use crate::wire::payload::Payload;

/// MAC addresses of the modeled devices (locally administered).
pub const MAC_CE: Mac = [0x02, 0xce, 0, 0, 0, 0x01];
pub const MAC_MSEE: [Mac; 2] = [
    [0x02, 0x4d, 0x53, 0x45, 0x45, 0x01],
    [0x02, 0x4d, 0x53, 0x45, 0x45, 0x02],
];
pub const MAC_AZURE_GW: Mac = [0x02, 0xa2, 0, 0, 0, 0x01];
pub const MAC_VPN_ONPREM: Mac = [0x02, 0x76, 0x70, 0x6e, 0, 0x01];
pub const MAC_VPN_AZURE: Mac = [0x02, 0x76, 0x70, 0x6e, 0, 0x02];

/// A host's MAC: 02:00 and the last four bytes of its address.
pub fn host_mac(addr: IpAddr) -> Mac {
    let b = match addr {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => a.octets()[12..].try_into().expect("4 bytes"),
    };
    [0x02, 0x00, b[0], b[1], b[2], b[3]]
}

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
    inner: Vec<u8>,
    esp: Vec<u8>,
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
            inner: Vec::with_capacity(2048),
            esp: Vec::with_capacity(2048),
        }
    }

    /// Bytes of a frame to keep, given the length of its headers.
    fn keep(&self, headers: usize) -> usize {
        match (self.snaplen, self.headers_only) {
            (Some(s), _) => s as usize,
            (None, true) => headers + 64,
            (None, false) => usize::MAX,
        }
    }

    fn payload(pkt: &Packet) -> Payload {
        Payload {
            flow: pkt.flow,
            seq: pkt.seq,
            sent_ns: pkt.sent.0,
        }
    }

    /// An Ethernet frame around the flow's IP packet, written only as far as
    /// it is kept; returns the frame's full length.
    fn plain(&mut self, pkt: &Packet, src: Mac, dst: Mac, tags: Tags, out: &mut Vec<u8>) -> usize {
        let spec = self.flows[pkt.flow as usize].0;
        let ether_type = if spec.src.is_ipv4() {
            etherparse::EtherType::IPV4
        } else {
            etherparse::EtherType::IPV6
        };
        frame::write_ethernet(src, dst, tags, ether_type, out);
        let eth = out.len();
        let keep = self.keep(eth + frame::ip_udp_headers(spec.src.is_ipv4()));
        frame::write_udp_packet(
            &spec,
            pkt.ip_len as usize,
            &Self::payload(pkt),
            keep.saturating_sub(eth),
            out,
        );
        (eth + pkt.ip_len as usize).max(60)
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
        out.truncate(self.keep(headers));
        full
    }

    fn circuit(&mut self, pkt: &Packet, path: PathId, dir: Direction, out: &mut Vec<u8>) -> usize {
        let msee = MAC_MSEE[path as usize];
        let (src, dst) = if dir == Direction::In {
            (MAC_CE, msee)
        } else {
            (msee, MAC_CE)
        };
        self.plain(pkt, src, dst, self.tags[path as usize], out)
    }

    /// Writes a control-plane frame (built untagged by the control plane)
    /// into `out` with the VLAN tags of the circuit link it crossed.
    pub fn control(
        &mut self,
        untagged: &[u8],
        shape: Shape,
        esp_seq: u32,
        out: &mut Vec<u8>,
    ) -> u32 {
        out.clear();
        if let (Shape::Esp(dir), Some(inner)) = (shape, untagged.get(14..)) {
            return self.tunnel_raw(inner, dir, esp_seq, out) as u32;
        }
        let tags = match shape {
            Shape::Circuit(path, _) => self.tags[path as usize],
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
        out.len() as u32
    }

    /// Writes the frame of `pkt` seen as `shape` into `out` (cleared first),
    /// truncated to the snap length; returns the frame's original length.
    pub fn build(&mut self, pkt: &Packet, shape: Shape, out: &mut Vec<u8>) -> u32 {
        out.clear();
        let (spec, dir) = self.flows[pkt.flow as usize];
        let full = match shape {
            Shape::Sent => {
                let gw = if dir == Direction::In {
                    MAC_CE
                } else {
                    MAC_AZURE_GW
                };
                self.plain(pkt, host_mac(spec.src), gw, Tags::Untagged, out)
            }
            Shape::Delivered => {
                let gw = if dir == Direction::In {
                    MAC_AZURE_GW
                } else {
                    MAC_CE
                };
                self.plain(pkt, gw, host_mac(spec.dst), Tags::Untagged, out)
            }
            Shape::Circuit(path, dir) => self.circuit(pkt, path, dir, out),
            Shape::Esp(dir) => self.tunnel(pkt, dir, out),
            Shape::Drop(place, cause) => match place {
                Place::Link(PathId::Vpn, dir) if cause != DropCause::Mtu => {
                    self.tunnel(pkt, dir, out)
                }
                Place::Link(PathId::Vpn, _) | Place::Router(Direction::In) => {
                    self.plain(pkt, host_mac(spec.src), MAC_CE, Tags::Untagged, out)
                }
                Place::Link(path, dir) => self.circuit(pkt, path, dir, out),
                Place::Gateway(Direction::In) => {
                    self.plain(pkt, MAC_MSEE[0], MAC_AZURE_GW, Tags::Untagged, out)
                }
                Place::Gateway(Direction::Out) | Place::Router(Direction::Out) => {
                    self.plain(pkt, host_mac(spec.src), MAC_AZURE_GW, Tags::Untagged, out)
                }
            },
        };
        if out.len() < 60 && full == 60 {
            frame::pad(out, 0);
        }
        full as u32
    }
}
