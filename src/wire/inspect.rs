//! What a real frame from outside the model is (a frame read from a live
//! interface or a replayed capture): ARP, IPv6 neighbor discovery, an IP
//! packet with its 5-tuple, or something else. Parsed with etherparse;
//! nothing here knows about simulation.

use std::net::IpAddr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

/// Ethernet II header bytes (no tags, no FCS).
pub const ETHERNET_HEADER: usize = 14;

/// ICMPv6 types of neighbor discovery (RFC 4861): router solicitation and
/// advertisement, neighbor solicitation and advertisement, redirect.
const ND_TYPES: std::ops::RangeInclusive<u8> = 133..=137;

/// The IP protocol numbers eremu names.
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

/// The class of a frame, as a bridge in front of the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// An ARP request or reply (ether type 0x0806).
    Arp,
    /// IPv6 neighbor discovery (ICMPv6 133 to 137).
    NeighborDiscovery,
    /// An IP packet.
    Ip(IpSummary),
    /// Anything else Ethernet carries (LLDP, STP, ...): its ether type.
    Other(u16),
}

/// The addresses and sizes of an IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpSummary {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number (IPv6: of the last header).
    pub protocol: u8,
    /// TCP or UDP ports; zero for other protocols.
    pub src_port: u16,
    pub dst_port: u16,
    /// Length of the IP packet in bytes (header included, padding excluded).
    pub ip_len: u32,
    /// Where the IP header starts in the frame (after Ethernet and VLAN tags).
    pub ip_offset: usize,
    /// A multicast or broadcast destination, or a link-local one: traffic
    /// that stays on its link and never crosses a router.
    pub link_scoped: bool,
}

/// Why a frame could not be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("frame of {0} bytes is shorter than an Ethernet header")]
    Runt(usize),
    #[error("malformed {layer} header: {what}")]
    Malformed { layer: &'static str, what: String },
}

impl InspectError {
    /// A short name for reports (`malformed-ip`, `runt`).
    pub fn cause(&self) -> &'static str {
        match self {
            InspectError::Runt(_) => "runt",
            InspectError::Malformed { layer: "ip", .. } => "malformed-ip",
            InspectError::Malformed { .. } => "malformed",
        }
    }
}

/// Classifies an Ethernet II frame (optionally 802.1Q/QinQ tagged).
pub fn inspect(frame: &[u8]) -> Result<FrameKind, InspectError> {
    if frame.len() < ETHERNET_HEADER {
        return Err(InspectError::Runt(frame.len()));
    }
    let sliced = SlicedPacket::from_ethernet(frame).map_err(|e| InspectError::Malformed {
        layer: layer_of(&e),
        what: e.to_string(),
    })?;
    let ether_type = match &sliced.link {
        Some(etherparse::LinkSlice::Ethernet2(e)) => e.ether_type().0,
        _ => 0,
    };
    let ether_type = match &sliced.vlan {
        Some(etherparse::VlanSlice::SingleVlan(v)) => v.ether_type().0,
        Some(etherparse::VlanSlice::DoubleVlan(v)) => v.inner().ether_type().0,
        None => ether_type,
    };
    let Some(net) = &sliced.net else {
        return Ok(if ether_type == 0x0806 {
            FrameKind::Arp
        } else {
            FrameKind::Other(ether_type)
        });
    };
    let (src, dst, protocol, ip_len, header_start) = match net {
        NetSlice::Ipv4(v4) => {
            let h = v4.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                h.protocol().0,
                h.total_len() as u32,
                h.slice().as_ptr(),
            )
        }
        NetSlice::Ipv6(v6) => {
            let h = v6.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.payload().ip_number.0,
                40 + h.payload_length() as u32,
                h.slice().as_ptr(),
            )
        }
    };
    let ip_offset = header_start as usize - frame.as_ptr() as usize;
    let (src_port, dst_port) = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        Some(TransportSlice::Icmpv6(i)) if ND_TYPES.contains(&i.type_u8()) => {
            return Ok(FrameKind::NeighborDiscovery);
        }
        _ => (0, 0),
    };
    Ok(FrameKind::Ip(IpSummary {
        src,
        dst,
        protocol,
        src_port,
        dst_port,
        ip_len,
        ip_offset,
        link_scoped: link_scoped(dst) || link_scoped(src),
    }))
}

/// Whether an address belongs to a link and is never routed: multicast,
/// broadcast, link-local, unspecified.
fn link_scoped(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => {
            v4.is_multicast() || v4.is_broadcast() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            v6.is_multicast() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

fn layer_of(e: &etherparse::err::packet::SliceError) -> &'static str {
    use etherparse::err::packet::SliceError;
    match e {
        SliceError::Len(l) => match l.layer {
            etherparse::err::Layer::Ethernet2Header | etherparse::err::Layer::VlanHeader => {
                "ethernet"
            }
            etherparse::err::Layer::TcpHeader => "tcp",
            etherparse::err::Layer::UdpHeader => "udp",
            _ => "ip",
        },
        SliceError::Tcp(_) => "tcp",
        _ => "ip",
    }
}

/// A protocol number's usual name, for flow names and tables.
pub fn ip_protocol_name(protocol: u8) -> &'static str {
    match protocol {
        PROTO_ICMP => "icmp",
        PROTO_TCP => "tcp",
        PROTO_UDP => "udp",
        PROTO_ICMPV6 => "icmpv6",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        132 => "sctp",
        _ => "ip",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp_frame(src: [u8; 4], dst: [u8; 4], payload: usize) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .udp(5000, 6000);
        let mut out = Vec::new();
        b.write(&mut out, &vec![0u8; payload]).unwrap();
        out
    }

    #[test]
    fn udp_over_ipv4_gives_its_five_tuple_and_ip_length() {
        let f = udp_frame([192, 168, 1, 10], [10, 1, 0, 4], 100);
        let FrameKind::Ip(s) = inspect(&f).unwrap() else {
            panic!("not IP")
        };
        assert_eq!(s.src, IpAddr::from([192, 168, 1, 10]));
        assert_eq!(s.dst, IpAddr::from([10, 1, 0, 4]));
        assert_eq!(
            (s.protocol, s.src_port, s.dst_port),
            (PROTO_UDP, 5000, 6000)
        );
        // 20 bytes of IPv4 header, 8 of UDP, 100 of payload.
        assert_eq!(s.ip_len, 128);
        assert_eq!(s.ip_offset, 14);
        assert!(!s.link_scoped);
    }

    #[test]
    fn tagged_frames_find_their_ip_header_after_the_tag() {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .single_vlan(100.try_into().unwrap())
            .ipv6([0x20; 16], [0x30; 16], 64)
            .tcp(1, 2, 3, 4);
        let mut f = Vec::new();
        b.write(&mut f, &[1, 2, 3]).unwrap();
        let FrameKind::Ip(s) = inspect(&f).unwrap() else {
            panic!("not IP")
        };
        assert_eq!(s.ip_offset, 18);
        assert_eq!(s.protocol, PROTO_TCP);
        // 40 bytes of IPv6 header, 20 of TCP, 3 of payload.
        assert_eq!(s.ip_len, 63);
    }

    #[test]
    fn arp_neighbor_discovery_and_broadcasts_are_told_apart() {
        let mut arp = vec![0xff; 6];
        arp.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend([0u8; 28]);
        assert_eq!(inspect(&arp).unwrap(), FrameKind::Arp);

        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [0x33, 0x33, 0, 0, 0, 1])
            .ipv6(
                [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0xff; 16],
                255,
            )
            .icmpv6(etherparse::Icmpv6Type::Unknown {
                type_u8: 135,
                code_u8: 0,
                bytes5to8: [0; 4],
            });
        let mut ns = Vec::new();
        b.write(&mut ns, &[0u8; 16]).unwrap();
        assert_eq!(inspect(&ns).unwrap(), FrameKind::NeighborDiscovery);

        let bcast = udp_frame([192, 168, 1, 10], [255, 255, 255, 255], 10);
        let FrameKind::Ip(s) = inspect(&bcast).unwrap() else {
            panic!("not IP")
        };
        assert!(s.link_scoped);

        let mut lldp = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e, 2, 0, 0, 0, 0, 1, 0x88, 0xcc];
        lldp.extend([0u8; 46]);
        assert_eq!(inspect(&lldp).unwrap(), FrameKind::Other(0x88cc));
    }

    #[test]
    fn short_and_broken_frames_are_errors_not_panics() {
        assert_eq!(inspect(&[0u8; 5]), Err(InspectError::Runt(5)));
        let mut f = udp_frame([192, 168, 1, 10], [10, 1, 0, 4], 100);
        f.truncate(30); // cut inside the IPv4 header
        let e = inspect(&f).unwrap_err();
        assert_eq!(e.cause(), "malformed-ip");
    }
}
