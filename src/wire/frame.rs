//! Building the frames that cross modeled links: Ethernet II with 802.1Q or
//! QinQ tags, IPv4 or IPv6, UDP with valid checksums, the eremu payload, and
//! the outer packets of the ESP tunnel. Headers are built by etherparse.
//!
//! Captured frames carry no FCS (as a NIC hands them to a capture); the model
//! counts the FCS in frame sizes, so a captured frame is `frame_len - 4`
//! bytes, padded to the 60-byte minimum.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{
    EtherType, Ethernet2Header, IpHeaders, IpNumber, Ipv4Dscp, Ipv4Header, Ipv6FlowLabel,
    Ipv6Header, PacketBuilder, SingleVlanHeader, UdpHeader, VlanId, VlanPcp,
};

use super::esp::NAT_T_PORT;
use super::payload::{self, Payload};

pub type Mac = [u8; 6];

/// VLAN tagging of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tags {
    Untagged,
    /// One 802.1Q tag (C-tag).
    Dot1q(u16),
    /// 802.1ad outer S-tag (EtherType 0x88a8), then the 802.1Q C-tag.
    QinQ {
        s_tag: u16,
        c_tag: u16,
    },
}

impl Tags {
    pub fn count(self) -> u32 {
        match self {
            Tags::Untagged => 0,
            Tags::Dot1q(_) => 1,
            Tags::QinQ { .. } => 2,
        }
    }
}

/// The UDP packet of a flow.
#[derive(Debug, Clone, Copy)]
pub struct UdpSpec {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub dscp: u8,
}

/// Bytes of the IP and UDP headers for an address family.
pub fn ip_udp_headers(v4: bool) -> usize {
    if v4 {
        20 + 8
    } else {
        40 + 8
    }
}

/// Length of the IP packet in an untagged Ethernet frame, from its header
/// (frames may carry padding after it).
pub fn ip_len_of(frame: &[u8]) -> Option<u32> {
    match etherparse::SlicedPacket::from_ethernet(frame).ok()?.net? {
        etherparse::NetSlice::Ipv4(v4) => Some(v4.header().total_len() as u32),
        etherparse::NetSlice::Ipv6(v6) => Some(40 + v6.header().payload_length() as u32),
    }
}

/// Smallest Ethernet frame without FCS.
const MIN_FRAME_NO_FCS: usize = 60;

fn vlan(id: u16, ether_type: EtherType) -> SingleVlanHeader {
    SingleVlanHeader {
        pcp: VlanPcp::ZERO,
        drop_eligible_indicator: false,
        vlan_id: VlanId::try_new(id).expect("VLAN ids are validated with the scenario"),
        ether_type,
    }
}

/// Appends an Ethernet header with `tags` for a payload of `ether_type`.
pub fn write_ethernet(src: Mac, dst: Mac, tags: Tags, ether_type: EtherType, out: &mut Vec<u8>) {
    let outer_type = match tags {
        Tags::Untagged => ether_type,
        Tags::Dot1q(_) => EtherType::VLAN_TAGGED_FRAME,
        Tags::QinQ { .. } => EtherType::PROVIDER_BRIDGING,
    };
    out.extend_from_slice(
        &Ethernet2Header {
            source: src,
            destination: dst,
            ether_type: outer_type,
        }
        .to_bytes(),
    );
    match tags {
        Tags::Untagged => {}
        Tags::Dot1q(c) => out.extend_from_slice(&vlan(c, ether_type).to_bytes()),
        Tags::QinQ { s_tag, c_tag } => {
            out.extend_from_slice(&vlan(s_tag, EtherType::VLAN_TAGGED_FRAME).to_bytes());
            out.extend_from_slice(&vlan(c_tag, ether_type).to_bytes());
        }
    }
}

/// EtherType of an IP packet by its version nibble.
pub fn ether_type_of(ip: &[u8]) -> EtherType {
    if ip.first().is_some_and(|b| b >> 4 == 6) {
        EtherType::IPV6
    } else {
        EtherType::IPV4
    }
}

/// Pads a frame that starts at `start` in `out` to the Ethernet minimum.
pub fn pad(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    if len < MIN_FRAME_NO_FCS {
        out.resize(start + MIN_FRAME_NO_FCS, 0);
    }
}

/// Appends the first `limit` bytes (all when `limit >= ip_len`) of the IP/UDP
/// packet of `spec`, `ip_len` bytes long, carrying `payload` then zeros.
/// `ip_len` must leave room for the eremu payload.
///
/// The UDP checksum covers the whole packet; the zero fill adds nothing to a
/// ones'-complement sum, so only the payload's first bytes are summed, and the
/// zeros a capture does not keep are never written.
pub fn write_udp_packet(
    spec: &UdpSpec,
    ip_len: usize,
    payload: &Payload,
    limit: usize,
    out: &mut Vec<u8>,
) {
    let udp_len = ip_len - ip_udp_headers(spec.src.is_ipv4()) + UdpHeader::LEN;
    let mut body = [0u8; payload::LEN];
    payload.emit(&mut body);
    let mut udp = UdpHeader {
        source_port: spec.src_port,
        destination_port: spec.dst_port,
        length: udp_len as u16,
        checksum: 0,
    };
    let start = out.len();
    match (spec.src, spec.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = Ipv4Header::new(udp_len as u16, 64, IpNumber::UDP, s.octets(), d.octets())
                .expect("sizes are validated with the scenario");
            h.dscp = Ipv4Dscp::try_new(spec.dscp).expect("DSCP is validated with the scenario");
            h.identification = payload.seq as u16;
            h.dont_fragment = true;
            h.header_checksum = h.calc_header_checksum();
            udp.checksum = udp
                .calc_checksum_ipv4_raw(s.octets(), d.octets(), &body)
                .expect("fits");
            out.extend_from_slice(&h.to_bytes());
        }
        (s, d) => {
            let to16 = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            let h = Ipv6Header {
                traffic_class: spec.dscp << 2,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: udp_len as u16,
                next_header: IpNumber::UDP,
                hop_limit: 64,
                source: to16(s),
                destination: to16(d),
            };
            udp.checksum = udp
                .calc_checksum_ipv6_raw(h.source, h.destination, &body)
                .expect("fits");
            out.extend_from_slice(&h.to_bytes());
        }
    }
    out.extend_from_slice(&udp.to_bytes());
    out.extend_from_slice(&body);
    let end = start + ip_len.min(limit);
    if out.len() > end {
        out.truncate(end);
    } else {
        out.resize(end, 0);
    }
}

/// Appends the outer IPv4 packet of the tunnel: ESP directly (protocol 50) or
/// in UDP 4500 with NAT traversal.
pub fn write_esp_packet(src: Ipv4Addr, dst: Ipv4Addr, nat_t: bool, esp: &[u8], out: &mut Vec<u8>) {
    let mut h = Ipv4Header::new(
        0,
        64,
        IpNumber::ENCAPSULATING_SECURITY_PAYLOAD,
        src.octets(),
        dst.octets(),
    )
    .expect("empty payload fits");
    h.dont_fragment = true;
    let b = PacketBuilder::ip(IpHeaders::Ipv4(h, Default::default()));
    if nat_t {
        b.udp(NAT_T_PORT, NAT_T_PORT).write(out, esp)
    } else {
        b.write(out, IpNumber::ENCAPSULATING_SECURITY_PAYLOAD, esp)
    }
    .expect("tunnel packets fit");
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{SlicedPacket, TransportSlice};

    fn spec(src: &str, dst: &str) -> UdpSpec {
        UdpSpec {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_port: 49152,
            dst_port: 5001,
            dscp: 46,
        }
    }

    #[test]
    fn qinq_ipv4_frame_parses_with_valid_checksum() {
        let s = spec("192.168.1.10", "10.1.0.4");
        let p = Payload {
            flow: 2,
            seq: 9,
            sent_ns: 77,
        };
        let mut ip = vec![];
        write_udp_packet(&s, 1400, &p, usize::MAX, &mut ip);
        assert_eq!(ip.len(), 1400);
        let mut f = vec![];
        write_ethernet(
            [2; 6],
            [4; 6],
            Tags::QinQ {
                s_tag: 200,
                c_tag: 100,
            },
            ether_type_of(&ip),
            &mut f,
        );
        f.extend_from_slice(&ip);
        assert_eq!(f.len(), 1400 + 14 + 8);
        assert_eq!(&f[12..14], &[0x88, 0xa8]);
        assert_eq!(&f[16..18], &[0x81, 0x00]);
        let parsed = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(etherparse::NetSlice::Ipv4(v4)) = &parsed.net else {
            panic!("not IPv4")
        };
        assert_eq!(v4.header().dcp().value(), 46);
        let Some(TransportSlice::Udp(udp)) = parsed.transport else {
            panic!("not UDP")
        };
        let expected = udp
            .to_header()
            .calc_checksum_ipv4(&v4.header().to_header(), udp.payload())
            .unwrap();
        assert_eq!(udp.checksum(), expected);
        assert_eq!(Payload::parse(udp.payload()), Some(p));
    }

    #[test]
    fn ipv6_and_minimum_frames() {
        let s = spec("fd00::10", "fd01::4");
        let mut ip = vec![];
        write_udp_packet(
            &s,
            68,
            &Payload {
                flow: 0,
                seq: 1,
                sent_ns: 2,
            },
            usize::MAX,
            &mut ip,
        );
        assert_eq!(ip.len(), 68);
        assert_eq!(ip[0] >> 4, 6);
        let mut f = vec![];
        write_ethernet([2; 6], [4; 6], Tags::Untagged, ether_type_of(&ip), &mut f);
        f.extend_from_slice(&ip);
        pad(&mut f, 0);
        assert_eq!(f.len(), 82);
        let mut small = vec![];
        write_udp_packet(
            &spec("10.0.0.1", "10.0.0.2"),
            48,
            &Payload {
                flow: 0,
                seq: 1,
                sent_ns: 2,
            },
            usize::MAX,
            &mut small,
        );
        let mut f = vec![];
        write_ethernet(
            [2; 6],
            [4; 6],
            Tags::Untagged,
            ether_type_of(&small),
            &mut f,
        );
        f.extend_from_slice(&small);
        pad(&mut f, 0);
        // 14 + 48 = 62 bytes: already above the 60-byte minimum.
        assert_eq!(f.len(), 62);
        assert!(SlicedPacket::from_ethernet(&f).is_ok());
        let mut short = vec![1u8; 30];
        pad(&mut short, 10);
        assert_eq!(short.len(), 70);
    }
}
