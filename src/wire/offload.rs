//! Finishing what a sending host left to its NIC. Frames read from a Linux
//! interface through AF_PACKET are taken before the (virtual) NIC ran, so
//! with the usual offloads on they are not yet what a wire carries:
//!
//! - transmit checksum offload: the TCP or UDP checksum holds only the
//!   pseudo-header sum, and a receiving host drops the segment
//!   ([`complete_checksums`] computes the real one);
//! - TSO/GSO: one TCP "super-frame" with up to 64 KB of payload, which no
//!   link of MTU 1500 carries ([`segment_tcp`] cuts it into MSS-sized
//!   segments as the NIC would: sequence numbers advanced, IPv4 ids
//!   incremented, FIN and PSH on the last segment only, CWR on the first).

use etherparse::{NetHeaders, PacketHeaders, PayloadSlice, TransportHeader};

/// Why a frame could not be finished.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    #[error("cannot parse the frame: {0}")]
    Parse(String),
    #[error("an oversized {0} packet cannot be segmented (only TCP can)")]
    NotTcp(&'static str),
    #[error("IPv6 extension headers: the super-frame cannot be segmented")]
    Ipv6Extensions,
}

fn parse(frame: &[u8]) -> Result<PacketHeaders<'_>, OffloadError> {
    PacketHeaders::from_ethernet_slice(frame).map_err(|e| OffloadError::Parse(e.to_string()))
}

/// Where the transport header starts: the payload's start minus the
/// transport header's length.
fn transport_offset(frame: &[u8], h: &PacketHeaders<'_>, header_len: usize) -> usize {
    let payload = h.payload.slice();
    payload.as_ptr() as usize - frame.as_ptr() as usize - header_len
}

/// Rewrites the IPv4 header checksum and the TCP or UDP checksum of `frame`
/// where they are wrong. Returns true if anything changed. Fragments and
/// other protocols are left as they are; an IPv4 UDP checksum of zero means
/// "none" (RFC 768) and stays.
pub fn complete_checksums(frame: &mut [u8]) -> Result<bool, OffloadError> {
    let h = parse(frame)?;
    let mut fixes: Vec<(usize, u16)> = Vec::with_capacity(2);
    let ip_start = |hdr_len: usize, after: usize| after - hdr_len;
    match (&h.net, &h.transport) {
        (Some(NetHeaders::Ipv4(ip, _)), transport) => {
            let ip_header_len = ip.header_len();
            let sum = ip.calc_header_checksum();
            // The IPv4 header ends where its extensions (none for TCP/UDP
            // over plain IPv4) and then the transport header begin.
            let l4 = match transport {
                Some(TransportHeader::Tcp(t)) => {
                    let off = transport_offset(frame, &h, t.header_len());
                    let c = t
                        .calc_checksum_ipv4(ip, h.payload.slice())
                        .map_err(|e| OffloadError::Parse(e.to_string()))?;
                    if c != t.checksum {
                        fixes.push((off + 16, c));
                    }
                    Some(off)
                }
                Some(TransportHeader::Udp(u)) => {
                    let off = transport_offset(frame, &h, 8);
                    let c = u
                        .calc_checksum_ipv4(ip, h.payload.slice())
                        .map_err(|e| OffloadError::Parse(e.to_string()))?;
                    if u.checksum != 0 && c != u.checksum {
                        fixes.push((off + 6, c));
                    }
                    Some(off)
                }
                _ => None,
            };
            if sum != ip.header_checksum {
                if let Some(l4) = l4 {
                    fixes.push((ip_start(ip_header_len, l4) + 10, sum));
                } else if let PayloadSlice::Ip(p) = &h.payload {
                    let after = p.payload.as_ptr() as usize - frame.as_ptr() as usize;
                    fixes.push((ip_start(ip_header_len, after) + 10, sum));
                }
            }
        }
        (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Tcp(t))) => {
            let off = transport_offset(frame, &h, t.header_len());
            let c = t
                .calc_checksum_ipv6(ip, h.payload.slice())
                .map_err(|e| OffloadError::Parse(e.to_string()))?;
            if c != t.checksum {
                fixes.push((off + 16, c));
            }
        }
        (Some(NetHeaders::Ipv6(ip, _)), Some(TransportHeader::Udp(u))) => {
            let off = transport_offset(frame, &h, 8);
            let c = u
                .calc_checksum_ipv6(ip, h.payload.slice())
                .map_err(|e| OffloadError::Parse(e.to_string()))?;
            if c != u.checksum {
                fixes.push((off + 6, c));
            }
        }
        _ => {}
    }
    for &(at, value) in &fixes {
        frame[at..at + 2].copy_from_slice(&value.to_be_bytes());
    }
    Ok(!fixes.is_empty())
}

/// Cuts a TCP super-frame whose IP packet exceeds `max_ip_len` bytes into
/// segments that fit, each with correct checksums. A frame that already
/// fits comes back alone (checksums completed).
pub fn segment_tcp(frame: &[u8], max_ip_len: u32) -> Result<Vec<Vec<u8>>, OffloadError> {
    let h = parse(frame)?;
    let Some(TransportHeader::Tcp(tcp)) = &h.transport else {
        let name = match &h.transport {
            Some(TransportHeader::Udp(_)) => "UDP",
            _ => "non-TCP",
        };
        return Err(OffloadError::NotTcp(name));
    };
    let payload = h.payload.slice();
    let tcp_off = transport_offset(frame, &h, tcp.header_len());
    let ip_header_len = match &h.net {
        Some(NetHeaders::Ipv4(ip, _)) => ip.header_len(),
        Some(NetHeaders::Ipv6(_, ext)) if !ext.is_empty() => {
            return Err(OffloadError::Ipv6Extensions)
        }
        Some(NetHeaders::Ipv6(..)) => 40,
        None => return Err(OffloadError::NotTcp("non-IP")),
    };
    let link_len = tcp_off - ip_header_len;
    let link = &frame[..link_len];
    let mss = (max_ip_len as usize)
        .saturating_sub(ip_header_len + tcp.header_len())
        .max(1);
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![payload]
    } else {
        payload.chunks(mss).collect()
    };
    let last = chunks.len() - 1;
    let mut out = Vec::with_capacity(chunks.len());
    let mut offset = 0u32;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let mut t = tcp.clone();
        t.sequence_number = tcp.sequence_number.wrapping_add(offset);
        if i != last {
            t.fin = false;
            t.psh = false;
        }
        if i != 0 {
            t.cwr = false;
        }
        let mut seg = Vec::with_capacity(link_len + ip_header_len + t.header_len() + chunk.len());
        seg.extend_from_slice(link);
        match &h.net {
            Some(NetHeaders::Ipv4(ip, _)) => {
                let mut ip = ip.clone();
                ip.set_payload_len(t.header_len() + chunk.len())
                    .map_err(|e| OffloadError::Parse(e.to_string()))?;
                ip.identification = ip.identification.wrapping_add(i as u16);
                ip.header_checksum = ip.calc_header_checksum();
                t.checksum = t
                    .calc_checksum_ipv4(&ip, chunk)
                    .map_err(|e| OffloadError::Parse(e.to_string()))?;
                ip.write(&mut seg)
                    .map_err(|e| OffloadError::Parse(e.to_string()))?;
            }
            Some(NetHeaders::Ipv6(ip, _)) => {
                let mut ip = ip.clone();
                ip.set_payload_length(t.header_len() + chunk.len())
                    .map_err(|e| OffloadError::Parse(e.to_string()))?;
                t.checksum = t
                    .calc_checksum_ipv6(&ip, chunk)
                    .map_err(|e| OffloadError::Parse(e.to_string()))?;
                ip.write(&mut seg)
                    .map_err(|e| OffloadError::Parse(e.to_string()))?;
            }
            None => unreachable!("checked above"),
        }
        t.write(&mut seg)
            .map_err(|e| OffloadError::Parse(e.to_string()))?;
        seg.extend_from_slice(chunk);
        if seg.len() < 60 {
            seg.resize(60, 0); // Ethernet minimum, without FCS
        }
        out.push(seg);
        offset += chunk.len() as u32;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_frame(v6: bool, payload: &[u8], fin: bool) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let ip = if v6 {
            eth.ipv6([0x20; 16], [0x30; 16], 64)
        } else {
            eth.ipv4([192, 168, 1, 10], [10, 1, 0, 4], 64)
        };
        let mut b = ip.tcp(40000, 5201, 1_000_000, 65535).ack(7).psh();
        if fin {
            b = b.fin();
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    /// Checksums as a receiving host verifies them.
    fn checksums_ok(frame: &[u8]) -> bool {
        let mut copy = frame.to_vec();
        !complete_checksums(&mut copy).unwrap()
    }

    #[test]
    fn a_partial_checksum_is_completed_and_a_good_one_left_alone() {
        let mut f = tcp_frame(false, &[7u8; 100], false);
        assert!(checksums_ok(&f));
        let good = f.clone();
        // What transmit offload leaves: some other value in the TCP checksum
        // (14 Ethernet + 20 IPv4 + 16 into the TCP header).
        f[14 + 20 + 16] ^= 0x5a;
        assert!(complete_checksums(&mut f).unwrap());
        assert_eq!(f, good);
        assert!(!complete_checksums(&mut f).unwrap());
    }

    #[test]
    fn ipv4_header_and_ipv6_udp_checksums_are_completed() {
        let mut f = tcp_frame(false, &[1u8; 10], false);
        let good = f.clone();
        f[14 + 10] ^= 0xff; // IPv4 header checksum
        assert!(complete_checksums(&mut f).unwrap());
        assert_eq!(f, good);

        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv6([0x20; 16], [0x30; 16], 64)
            .udp(1, 2);
        let mut u = Vec::new();
        b.write(&mut u, &[9u8; 33]).unwrap();
        let good = u.clone();
        u[14 + 40 + 6] ^= 0x11;
        assert!(complete_checksums(&mut u).unwrap());
        assert_eq!(u, good);
    }

    #[test]
    fn a_super_frame_becomes_mss_sized_segments_like_a_nic_makes() {
        // 10,000 bytes of payload through IP MTU 1500: 20 + 20 bytes of
        // headers leave an MSS of 1460, so 6 full segments and one of 1240.
        let payload: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let f = tcp_frame(false, &payload, true);
        let segs = segment_tcp(&f, 1500).unwrap();
        assert_eq!(segs.len(), 7);
        let mut joined = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            assert!(checksums_ok(s), "segment {i} checksums");
            let h = PacketHeaders::from_ethernet_slice(s).unwrap();
            let Some(TransportHeader::Tcp(t)) = h.transport else {
                panic!()
            };
            let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
                panic!()
            };
            let len = if i < 6 { 1460 } else { 1240 };
            assert_eq!(h.payload.slice().len(), len);
            assert_eq!(ip.total_len as usize, 40 + len);
            assert_eq!(t.sequence_number, 1_000_000 + 1460 * i as u32);
            assert_eq!(t.fin, i == 6);
            assert_eq!(t.psh, i == 6);
            joined.extend_from_slice(h.payload.slice());
        }
        assert_eq!(joined, payload);
    }

    #[test]
    fn ipv6_super_frames_segment_too_and_udp_ones_are_refused() {
        let payload = vec![3u8; 3000];
        let f = tcp_frame(true, &payload, false);
        // 40 + 20 bytes of headers: MSS 1440, so 1440 + 1440 + 120.
        let segs = segment_tcp(&f, 1500).unwrap();
        assert_eq!(segs.len(), 3);
        assert!(segs.iter().all(|s| checksums_ok(s)));
        assert_eq!(segs[2].len(), 14 + 60 + 120);

        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .udp(1, 2);
        let mut u = Vec::new();
        b.write(&mut u, &[0u8; 3000]).unwrap();
        assert_eq!(segment_tcp(&u, 1500), Err(OffloadError::NotTcp("UDP")));
    }
}
