//! Frame templates: a flow's frame at one place (its Ethernet header and
//! tags, IP and UDP headers and the eremu payload's fixed part) built once
//! with etherparse, then copied and patched for each packet. Only the IP
//! length and identification, the UDP length, the payload and the two
//! checksums change between packets of a flow, and the checksums are
//! finished from sums of the fixed words computed once.
//!
//! The bytes are exactly those of [`frame::write_ethernet`] followed by
//! [`frame::write_udp_packet`] (the tests compare them).

use crate::wire::frame::{self, Mac, Tags, UdpSpec};
use crate::wire::payload::{self, Payload};

/// Smallest Ethernet frame without FCS.
const MIN_FRAME: usize = 60;

/// One flow's frame at one place.
pub struct Template {
    /// Ethernet header and tags, IP and UDP headers, the payload's fixed part
    /// (zero); variable fields and checksums are zero.
    head: Vec<u8>,
    /// Offset of the IP header.
    ip: usize,
    /// Offset of the UDP header.
    udp: usize,
    v4: bool,
    /// Ones'-complement sum (unfolded) of the IPv4 header's fixed words.
    ip_sum: u64,
    /// Sum of the UDP checksum's fixed words: addresses, protocol and ports.
    udp_sum: u64,
}

/// Adds the big-endian 16-bit words of `b` (even length) to a sum.
fn sum_words(b: &[u8]) -> u64 {
    b.chunks_exact(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]) as u64)
        .sum()
}

/// Sum of the four 16-bit words of `v`.
#[inline]
fn sum_u64(v: u64) -> u64 {
    (v >> 48) + ((v >> 32) & 0xffff) + ((v >> 16) & 0xffff) + (v & 0xffff)
}

/// Ones' complement of a folded sum.
#[inline]
fn complement(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Template {
    /// The frame of `spec` between `src` and `dst` with `tags`.
    pub fn new(spec: &UdpSpec, src: Mac, dst: Mac, tags: Tags) -> Self {
        let v4 = spec.src.is_ipv4();
        let ether_type = if v4 {
            etherparse::EtherType::IPV4
        } else {
            etherparse::EtherType::IPV6
        };
        let mut head = Vec::with_capacity(96);
        frame::write_ethernet(src, dst, tags, ether_type, &mut head);
        let ip = head.len();
        let hdrs = frame::ip_udp_headers(v4);
        let zero = Payload {
            flow: 0,
            seq: 0,
            sent_ns: 0,
        };
        frame::write_udp_packet(spec, hdrs + payload::LEN, &zero, usize::MAX, &mut head);
        let udp = ip + hdrs - 8;
        // Clear what each packet rewrites: IPv4 total length, identification
        // and checksum (IPv6 payload length); UDP length and checksum.
        if v4 {
            head[ip + 2..ip + 6].fill(0); // total length, identification
            head[ip + 10..ip + 12].fill(0); // header checksum
        } else {
            head[ip + 4..ip + 6].fill(0); // payload length
        }
        head[udp + 4..udp + 8].fill(0); // length, checksum
        let (ip_sum, addrs) = if v4 {
            (sum_words(&head[ip..udp]), &head[ip + 12..ip + 20])
        } else {
            (0, &head[ip + 8..ip + 40])
        };
        let udp_sum =
            sum_words(addrs) + etherparse::IpNumber::UDP.0 as u64 + sum_words(&head[udp..udp + 4]);
        Template {
            head,
            ip,
            udp,
            v4,
            ip_sum,
            udp_sum,
        }
    }

    /// Bytes of the headers before the payload.
    pub fn headers(&self) -> usize {
        self.udp + 8
    }

    /// Appends the frame of `pkt`'s IP packet (`ip_len` bytes carrying
    /// `payload`, then zeros) keeping its first `keep` bytes (never fewer than
    /// the Ethernet header), padded to the 60-byte minimum when the whole
    /// frame is shorter than that; returns the frame's full length (at least
    /// 60). `ip_len` must leave room for the payload's fixed part.
    #[inline]
    pub fn append(&self, ip_len: u32, payload: &Payload, keep: usize, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        let frame_len = self.ip + ip_len as usize;
        let udp_len = (ip_len as usize - (self.udp - self.ip)) as u16;
        out.extend_from_slice(&self.head);
        let f = &mut out[start..];
        let (ip, udp) = (self.ip, self.udp);
        if self.v4 {
            let id = payload.seq as u16;
            f[ip + 2..ip + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            f[ip + 4..ip + 6].copy_from_slice(&id.to_be_bytes());
            let ck = complement(self.ip_sum + ip_len as u64 + id as u64);
            f[ip + 10..ip + 12].copy_from_slice(&ck.to_be_bytes());
        } else {
            f[ip + 4..ip + 6].copy_from_slice(&udp_len.to_be_bytes());
        }
        f[udp + 4..udp + 6].copy_from_slice(&udp_len.to_be_bytes());
        payload.emit(&mut f[udp + 8..udp + 8 + payload::LEN]);
        // The UDP length counts twice: in the pseudo-header and the header.
        let sum = self.udp_sum
            + 2 * udp_len as u64
            + sum_u64(payload.flow as u64)
            + sum_u64(payload.seq)
            + sum_u64(payload.sent_ns);
        let ck = match complement(sum) {
            0 => 0xffff,
            c => c,
        };
        f[udp + 6..udp + 8].copy_from_slice(&ck.to_be_bytes());
        // Keep what the snap length keeps (the Ethernet header at least),
        // then pad a short frame to the minimum, as a NIC would.
        let content = frame_len.min(keep.max(ip));
        let full = frame_len.max(MIN_FRAME);
        let captured = if full == MIN_FRAME {
            content.max(MIN_FRAME)
        } else {
            content
        };
        out.resize(start + captured, 0);
        full
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Mac = [2, 0, 1, 2, 3, 4];
    const DST: Mac = [2, 0xce, 0, 0, 0, 1];

    fn spec(src: &str, dst: &str, dscp: u8) -> UdpSpec {
        UdpSpec {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            src_port: 49152,
            dst_port: 5001,
            dscp,
        }
    }

    /// The frame as the capture wrote it before templates: etherparse for
    /// every packet, truncated to `keep`, padded when short.
    fn reference(
        spec: &UdpSpec,
        tags: Tags,
        ip_len: u32,
        p: &Payload,
        keep: usize,
    ) -> (Vec<u8>, usize) {
        let mut out = vec![];
        let et = if spec.src.is_ipv4() {
            etherparse::EtherType::IPV4
        } else {
            etherparse::EtherType::IPV6
        };
        frame::write_ethernet(SRC, DST, tags, et, &mut out);
        let eth = out.len();
        frame::write_udp_packet(spec, ip_len as usize, p, keep.saturating_sub(eth), &mut out);
        let full = (eth + ip_len as usize).max(60);
        if out.len() < 60 && full == 60 {
            frame::pad(&mut out, 0);
        }
        (out, full)
    }

    fn tags() -> impl Strategy<Value = Tags> {
        prop_oneof![
            Just(Tags::Untagged),
            (1u16..4095).prop_map(Tags::Dot1q),
            (1u16..4095, 1u16..4095).prop_map(|(s_tag, c_tag)| Tags::QinQ { s_tag, c_tag }),
        ]
    }

    proptest! {
        #[test]
        fn same_bytes_as_building_each_frame(
            v6 in any::<bool>(),
            dscp in 0u8..64,
            tags in tags(),
            extra in 0u32..1500,
            flow in any::<u32>(),
            seq in any::<u64>(),
            sent_ns in any::<u64>(),
            keep in prop_oneof![Just(usize::MAX), 14usize..200],
            prefix in 0usize..9,
        ) {
            let s = if v6 {
                spec("fd00::10", "fd01::4", dscp)
            } else {
                spec("192.168.1.10", "10.1.0.4", dscp)
            };
            let ip_len = frame::ip_udp_headers(!v6) as u32 + payload::LEN as u32 + extra;
            let p = Payload { flow, seq, sent_ns };
            let t = Template::new(&s, SRC, DST, tags);
            // Appends after whatever the buffer already holds.
            let mut out = vec![0xaa; prefix];
            let full = t.append(ip_len, &p, keep, &mut out);
            let (want, want_full) = reference(&s, tags, ip_len, &p, keep);
            prop_assert_eq!(&out[..prefix], &vec![0xaa; prefix][..]);
            prop_assert_eq!(&out[prefix..], &want[..]);
            prop_assert_eq!(full, want_full);
        }
    }

    #[test]
    fn checksums_that_sum_to_zero_are_written_as_ffff() {
        // Search a sequence number whose UDP checksum folds to 0xffff (sent
        // as 0 would mean "no checksum"): the template must agree with
        // etherparse on it.
        let s = spec("10.0.0.1", "10.0.0.2", 0);
        let t = Template::new(&s, SRC, DST, Tags::Untagged);
        let found = (0..200_000u64).find_map(|seq| {
            let p = Payload {
                flow: 0,
                seq,
                sent_ns: 0,
            };
            let mut out = vec![];
            t.append(100, &p, usize::MAX, &mut out);
            (out[14 + 26..14 + 28] == [0xff, 0xff]).then_some((p, out))
        });
        let (p, out) = found.expect("some sequence number gives checksum 0xffff");
        assert_eq!(out, reference(&s, Tags::Untagged, 100, &p, usize::MAX).0);
    }
}
