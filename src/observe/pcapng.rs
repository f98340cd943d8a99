//! Enhanced Packet Blocks written straight into a byte buffer: the capture
//! writer's hot path, one block per frame with no allocation and no
//! per-block serialization. The section header and the interface
//! descriptions, written once per file, still go through pcap-file.
//!
//! Layout of an Enhanced Packet Block (pcapng draft, section 4.3), every
//! field in the section's byte order, which pcap-file's writer makes the
//! machine's native order:
//!
//! ```text
//!  0  block type = 6                          u32
//!  4  block total length                      u32
//!  8  interface id                            u32
//! 12  timestamp, upper 32 bits                u32  (units of if_tsresol: ns here)
//! 16  timestamp, lower 32 bits                u32
//! 20  captured packet length                  u32
//! 24  original packet length                  u32
//! 28  packet data, zero-padded to 4 bytes
//!     options (only if any): opt_comment = code 1, length u16, UTF-8 text
//!     zero-padded to 4 bytes, then opt_endofopt = code 0, length 0
//!     block total length, again               u32
//! ```
//!
//! The bytes are exactly those pcap-file 2 writes for the same block (the
//! tests compare them), so files read the same whichever path wrote them.

use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::PcapNgWriter;

/// Block type of an Enhanced Packet Block.
const EPB: u32 = 6;
/// Bytes of an EPB before its packet data.
const HEAD: usize = 28;

/// Starts an Enhanced Packet Block at the end of `buf`: the caller appends
/// the frame's captured bytes, then calls [`end`] with the returned offset.
/// `timestamp` is in the interface's time unit (nanoseconds here).
#[inline]
pub fn begin(buf: &mut Vec<u8>, interface_id: u32, timestamp: u64) -> usize {
    let start = buf.len();
    let mut head = [0u8; HEAD];
    head[0..4].copy_from_slice(&EPB.to_ne_bytes());
    head[8..12].copy_from_slice(&interface_id.to_ne_bytes());
    head[12..16].copy_from_slice(&((timestamp >> 32) as u32).to_ne_bytes());
    head[16..20].copy_from_slice(&(timestamp as u32).to_ne_bytes());
    buf.extend_from_slice(&head);
    start
}

fn pad4(buf: &mut Vec<u8>) {
    let pad = (4 - buf.len() % 4) % 4;
    buf.extend_from_slice(&[0u8; 3][..pad]);
}

/// Ends the block [`begin`] started at `start`: everything appended since is
/// its packet data. `original_len` is the frame's length on the wire;
/// `comment`, if any, becomes the block's `opt_comment`.
#[inline]
pub fn end(buf: &mut Vec<u8>, start: usize, original_len: u32, comment: Option<&str>) {
    debug_assert!(start.is_multiple_of(4), "blocks start 4-byte aligned");
    let captured = (buf.len() - start - HEAD) as u32;
    pad4(buf);
    if let Some(c) = comment {
        buf.extend_from_slice(&1u16.to_ne_bytes());
        buf.extend_from_slice(&(c.len() as u16).to_ne_bytes());
        buf.extend_from_slice(c.as_bytes());
        pad4(buf);
        buf.extend_from_slice(&[0u8; 4]);
    }
    let total = (buf.len() - start + 4) as u32;
    buf.extend_from_slice(&total.to_ne_bytes());
    let b = &mut buf[start..];
    b[4..8].copy_from_slice(&total.to_ne_bytes());
    b[20..24].copy_from_slice(&captured.to_ne_bytes());
    b[24..28].copy_from_slice(&original_len.to_ne_bytes());
}

/// The start of a pcapng file: pcap-file's section header (native byte
/// order), then one interface description block per interface, in order.
pub fn file_header(interfaces: Vec<InterfaceDescriptionBlock<'static>>) -> Vec<u8> {
    let mut w = PcapNgWriter::new(Vec::new()).expect("writing to memory cannot fail");
    for idb in interfaces {
        w.write_pcapng_block(idb)
            .expect("writing to memory cannot fail");
    }
    w.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    use pcap_file::pcapng::{Block, PcapNgReader};
    use pcap_file::DataLink;
    use std::time::Duration;

    fn idb(name: &str) -> InterfaceDescriptionBlock<'static> {
        InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: vec![
                InterfaceDescriptionOption::IfName(name.to_string().into()),
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        }
    }

    /// (interface, timestamp ns, data length, original length, comment)
    fn cases() -> Vec<(u32, u64, usize, u32, Option<&'static str>)> {
        let mut v = vec![];
        for len in 0..9 {
            v.push((
                len as u32 % 2,
                1_767_225_600_000_000_000 + len as u64,
                len,
                1514,
                None,
            ));
        }
        for (i, c) in ["a", "ab", "abc", "abcd", "policer@primary-msee"]
            .into_iter()
            .enumerate()
        {
            v.push((1, (1 << 40) + i as u64, 60 + i, 60 + i as u32, Some(c)));
        }
        v.push((0, u64::MAX, 1514, 1514, Some("mtu@ce")));
        v
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn same_bytes_as_pcap_file_and_parsed_back() {
        let header = file_header(vec![idb("a"), idb("b")]);
        let mut ours = header.clone();
        let mut theirs = PcapNgWriter::new(Vec::new()).unwrap();
        theirs.write_pcapng_block(idb("a")).unwrap();
        theirs.write_pcapng_block(idb("b")).unwrap();
        for (iface, ts, len, orig, comment) in cases() {
            let start = begin(&mut ours, iface, ts);
            ours.extend_from_slice(&data(len));
            end(&mut ours, start, orig, comment);
            theirs
                .write_pcapng_block(EnhancedPacketBlock {
                    interface_id: iface,
                    timestamp: Duration::from_nanos(ts),
                    original_len: orig,
                    data: data(len).into(),
                    options: comment
                        .map(|c| EnhancedPacketOption::Comment(c.into()))
                        .into_iter()
                        .collect(),
                })
                .unwrap();
        }
        assert_eq!(ours, theirs.into_inner());

        let mut reader = PcapNgReader::new(&ours[..]).unwrap();
        let mut seen = vec![];
        while let Some(block) = reader.next_block() {
            match block.unwrap() {
                Block::EnhancedPacket(e) => seen.push(e.into_owned()),
                Block::InterfaceDescription(_) => {}
                other => panic!("unexpected block {other:?}"),
            }
        }
        assert_eq!(seen.len(), cases().len());
        for (e, (iface, ts, len, orig, comment)) in seen.iter().zip(cases()) {
            assert_eq!(e.interface_id, iface);
            assert_eq!(e.timestamp, Duration::from_nanos(ts));
            assert_eq!(e.original_len, orig);
            assert_eq!(&e.data[..], &data(len)[..]);
            let c: Vec<_> = e
                .options
                .iter()
                .map(|o| match o {
                    EnhancedPacketOption::Comment(c) => c.to_string(),
                    other => panic!("unexpected option {other:?}"),
                })
                .collect();
            assert_eq!(
                c,
                comment.map(str::to_string).into_iter().collect::<Vec<_>>()
            );
        }
    }
}
