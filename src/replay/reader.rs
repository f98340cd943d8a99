//! A streaming reader of pcap and pcapng capture files that yields Ethernet II
//! frames with nanosecond timestamps.
//!
//! Formats, as specified by:
//! - pcap: <https://www.tcpdump.org/manpages/pcap-savefile.5.html>: both
//!   byte orders, microsecond (magic `0xa1b2c3d4`) and nanosecond
//!   (`0xa1b23c4d`) timestamps.
//! - pcapng: IETF draft-ietf-opsawg-pcapng: Section Header Blocks (either
//!   byte order, any number of sections), Interface Description Blocks
//!   (`if_tsresol` in both its power-of-10 and power-of-2 forms,
//!   `if_tsoffset`), Enhanced, Simple and the obsolete Packet Blocks. Every
//!   other block (name resolution, interface statistics, decryption secrets,
//!   custom, ...) is skipped without being read into memory.
//!
//! Link types ([`SUPPORTED_LINK_TYPES`]): Ethernet frames are yielded as
//! captured; raw IP, BSD loopback and Linux cooked (SLL, SLL2) packets get a
//! synthesized Ethernet II header. Packets that cannot become an Ethernet II
//! frame (shorter than their link header, raw IP that is neither IPv4 nor
//! IPv6, SLL protocols that are no ethertype) are skipped and counted by
//! [`CaptureReader::skipped`]. A trailing FCS, where the capture kept it,
//! stays in the frame.
//!
//! Memory is bounded: a packet is at most [`MAX_PACKET`] bytes, a block
//! that is read at most [`MAX_BLOCK`] bytes, a section at most
//! [`MAX_INTERFACES`] interfaces. No input makes the reader panic.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// Largest captured packet accepted, in bytes: the 256 KiB that libpcap and
/// Wireshark also take as the largest snapshot length.
pub const MAX_PACKET: u32 = 256 * 1024;
/// Largest pcapng block read into memory, in bytes (Wireshark's limit too);
/// skipped blocks may be of any length.
pub const MAX_BLOCK: u32 = 16 * 1024 * 1024;
/// Most interfaces one pcapng section may declare.
pub const MAX_INTERFACES: usize = 65_536;
/// Source MAC of synthesized Ethernet headers (locally administered), unless
/// a Linux cooked header gives the sender's 6-byte address.
pub const SYNTH_SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Destination MAC of synthesized Ethernet headers (locally administered).
pub const SYNTH_DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// The link types eremu reads, as named in error messages.
pub const SUPPORTED_LINK_TYPES: &str = "NULL (0), ETHERNET (1), RAW (101), LOOP (108), \
     LINUX_SLL (113), IPV4 (228), IPV6 (229), LINUX_SLL2 (276)";

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// One captured frame, as an Ethernet II frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedFrame {
    /// Capture timestamp, ns since the Unix epoch (pcapng: honours
    /// `if_tsresol` and `if_tsoffset` per interface; finer resolutions are
    /// truncated to the nanosecond, times before the epoch become 0). A
    /// Simple Packet Block carries no time: it gets the time of the packet
    /// before it in the file (0 if none), so replay sends it right after.
    pub time_ns: u64,
    /// An Ethernet II frame: as captured for LINKTYPE_ETHERNET; for other
    /// link types [`SYNTH_DST_MAC`], [`SYNTH_SRC_MAC`] (or the SLL sender's
    /// address), the ethertype (from the IP version nibble for raw IP and
    /// loopback, from the header for SLL), then the network-layer packet.
    pub frame: Vec<u8>,
    /// The frame's original length on the wire, in bytes: the file's
    /// orig_len (never less than the captured length) adjusted by the change
    /// of link header, so `orig_len >= frame.len()`; it exceeds the captured
    /// length when the capture was cut by its snaplen.
    pub orig_len: u32,
    /// Byte offset of the record/block in the file.
    pub offset: u64,
}

/// Why a capture cannot be read. Each message names the file and, where
/// there is one, the byte offset of the header, record or block at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Opening or reading the file failed.
    #[error("{}: {}{source}", path.display(), at(*offset))]
    Io {
        path: PathBuf,
        offset: Option<u64>,
        #[source]
        source: io::Error,
    },
    /// The file starts with neither a pcap nor a pcapng magic number.
    #[error("{}: not a pcap or pcapng file: {found}", path.display())]
    NotACapture { path: PathBuf, found: String },
    /// The file ends inside a fixed-size header.
    #[error("{}: byte {offset}: truncated {what} ({needed} bytes needed, {left} left)", path.display())]
    TruncatedHeader {
        path: PathBuf,
        offset: u64,
        what: &'static str,
        needed: u64,
        left: u64,
    },
    /// The file ends before the length its header announces (pcap: the
    /// captured length after the record header; pcapng: the total block
    /// length from the block's start).
    #[error("{}: byte {offset}: truncated {what} (header says {said} bytes, {left} left)", path.display())]
    Truncated {
        path: PathBuf,
        offset: u64,
        what: &'static str,
        said: u64,
        left: u64,
    },
    /// A header, record or block contradicts the format or eremu's limits.
    #[error("{}: byte {offset}: corrupt {what}: {detail}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: &'static str,
        detail: String,
    },
    /// The file header or an interface declares a link type eremu cannot
    /// turn into Ethernet frames.
    #[error("{}: byte {offset}: unsupported link type {link_type}{}; eremu reads {SUPPORTED_LINK_TYPES}",
        path.display(), name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default())]
    UnsupportedLinkType {
        path: PathBuf,
        offset: u64,
        link_type: u32,
        name: Option<String>,
    },
}

fn at(offset: Option<u64>) -> String {
    offset.map(|o| format!("byte {o}: ")).unwrap_or_default()
}

/// How packets of a link type become Ethernet II frames.
#[derive(Debug, Clone, Copy)]
enum Link {
    Ethernet,
    /// Raw IPv4 or IPv6 (101, 228, 229).
    RawIp,
    /// A 4-byte address family then IP (0, 108): the IP version nibble is
    /// read instead of the family, whose byte order and values vary by OS.
    Null,
    Sll,
    Sll2,
}

impl Link {
    fn from_code(code: u32) -> Option<Link> {
        Some(match code {
            1 => Link::Ethernet,
            101 | 228 | 229 => Link::RawIp,
            0 | 108 => Link::Null,
            113 => Link::Sll,
            276 => Link::Sll2,
            _ => return None,
        })
    }

    /// The Ethernet II frame for `data`, and how much longer it is than
    /// `data`; `None` when `data` cannot be one.
    fn to_ethernet(self, data: &[u8]) -> Option<(Vec<u8>, i64)> {
        let synth = |src: &[u8], ethertype: u16, payload: &[u8]| {
            let mut f = Vec::with_capacity(14 + payload.len());
            f.extend_from_slice(&SYNTH_DST_MAC);
            f.extend_from_slice(src);
            f.extend_from_slice(&ethertype.to_be_bytes());
            f.extend_from_slice(payload);
            f
        };
        let ip = |payload: &[u8]| {
            let ethertype = match payload.first()? >> 4 {
                4 => 0x0800,
                6 => 0x86DD,
                _ => return None,
            };
            Some(synth(&SYNTH_SRC_MAC, ethertype, payload))
        };
        // SLL headers carry a protocol in network order; values below
        // 0x0600 are Linux pseudo-protocols (802.2 LLC, ...), no ethertype.
        let sll = |proto: u16, addr_len: u8, addr: &[u8], payload: &[u8]| {
            let src = addr.get(..6).filter(|_| addr_len == 6);
            let src = src.unwrap_or(&SYNTH_SRC_MAC);
            (proto >= 0x0600).then(|| synth(src, proto, payload))
        };
        match self {
            Link::Ethernet => (data.len() >= 14).then(|| (data.to_vec(), 0)),
            Link::RawIp => Some((ip(data)?, 14)),
            Link::Null => Some((ip(data.get(4..)?)?, 10)),
            Link::Sll => {
                let h = data.get(..16)?;
                let f = sll(be16(&h[14..]), h[5], &h[6..14], &data[16..])?;
                Some((f, -2))
            }
            Link::Sll2 => {
                let h = data.get(..20)?;
                Some((sll(be16(h), h[11], &h[12..20], &data[20..])?, -6))
            }
        }
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// Byte order of a pcap file or pcapng section. The readers return 0 past
/// the end of the slice; callers check lengths first.
#[derive(Debug, Clone, Copy)]
struct Order {
    big: bool,
}

impl Order {
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = b.get(at..at + 2).and_then(|s| s.try_into().ok());
        let v = v.map_or(0, u16::from_le_bytes);
        if self.big {
            v.swap_bytes()
        } else {
            v
        }
    }
    fn u32(self, b: &[u8], at: usize) -> u32 {
        let v = b.get(at..at + 4).and_then(|s| s.try_into().ok());
        let v = v.map_or(0, u32::from_le_bytes);
        if self.big {
            v.swap_bytes()
        } else {
            v
        }
    }
    fn u64(self, b: &[u8], at: usize) -> u64 {
        let v = b.get(at..at + 8).and_then(|s| s.try_into().ok());
        let v = v.map_or(0, u64::from_le_bytes);
        if self.big {
            v.swap_bytes()
        } else {
            v
        }
    }
}

/// A pcapng interface, as its Interface Description Block declares it.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: Link,
    /// 0: no limit.
    snaplen: u32,
    /// `if_tsresol`: high bit clear, 10^-n s; set, 2^-n s.
    tsresol: u8,
    /// `if_tsoffset`, in seconds.
    tsoffset: i64,
}

impl Interface {
    /// Nanoseconds since the epoch of a timestamp in this interface's units.
    fn time_ns(&self, ts: u64) -> u64 {
        let ts = u128::from(ts);
        let exp = u32::from(self.tsresol & 0x7f);
        let ns = if self.tsresol & 0x80 != 0 {
            (ts * 1_000_000_000) >> exp // < 2^94, and exp < 128
        } else if exp <= 9 {
            ts * 10u128.pow(9 - exp)
        } else {
            10u128.checked_pow(exp - 9).map_or(0, |d| ts / d)
        };
        let ns = ns as i128 + i128::from(self.tsoffset) * 1_000_000_000;
        ns.clamp(0, i128::from(u64::MAX)) as u64
    }
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Pcap(PcapFile),
    PcapNg,
}

/// What a pcap file header says.
#[derive(Debug, Clone, Copy)]
struct PcapFile {
    /// Nanosecond (not microsecond) timestamps.
    nanos: bool,
    /// 0: no limit.
    snaplen: u32,
    link: Link,
}

/// The file with the offset of the next byte to read.
struct Input {
    path: PathBuf,
    r: BufReader<Box<dyn Read + Send>>,
    pos: u64,
    /// The record or block being read.
    buf: Vec<u8>,
}

impl Input {
    fn io(&self, source: io::Error) -> ReplayError {
        let (path, offset) = (self.path.clone(), Some(self.pos));
        ReplayError::Io {
            path,
            offset,
            source,
        }
    }

    /// Reads until `buf` is full or the input ends; returns the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, ReplayError> {
        let mut n = 0;
        while n < buf.len() {
            match self.r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e)),
            }
        }
        self.pos += n as u64;
        Ok(n)
    }

    /// Replaces `self.buf` by the next `n` bytes, fewer if the input ends
    /// first; it grows with what arrives, not with what a header claims.
    fn read_buf(&mut self, n: u64) -> Result<u64, ReplayError> {
        self.buf.clear();
        let got = (&mut self.r).take(n).read_to_end(&mut self.buf);
        let got = got.map_err(|e| self.io(e))? as u64;
        self.pos += got;
        Ok(got)
    }

    /// Skips `n` bytes; returns how many there were.
    fn skip(&mut self, n: u64) -> Result<u64, ReplayError> {
        let got = io::copy(&mut (&mut self.r).take(n), &mut io::sink());
        let got = got.map_err(|e| self.io(e))?;
        self.pos += got;
        Ok(got)
    }
}

/// Reads a capture file frame by frame. As an iterator it yields frames in
/// file order; after an `Err` it ends.
pub struct CaptureReader {
    input: Input,
    format: Format,
    /// Byte order of the pcap file or current pcapng section.
    order: Order,
    /// The current pcapng section's interfaces, by id.
    interfaces: Vec<Interface>,
    /// Time of the last packet with a timestamp, for Simple Packet Blocks.
    last_ns: u64,
    skipped: u64,
    done: bool,
}

impl CaptureReader {
    /// Opens a capture file and reads its file header (pcap) or first
    /// section header (pcapng).
    pub fn open(path: &Path) -> Result<CaptureReader, ReplayError> {
        let file = File::open(path).map_err(|source| ReplayError::Io {
            path: path.to_path_buf(),
            offset: None,
            source,
        })?;
        CaptureReader::from_reader(path, file)
    }

    /// Reads a capture from `r` (a file, a pipe, stdin, bytes in memory),
    /// named `name` in errors; reads its file header (pcap) or first section
    /// header (pcapng) before returning. The reader is `Send`, so it can be
    /// moved to the thread that drains it.
    pub fn from_reader(
        name: impl Into<PathBuf>,
        r: impl Read + Send + 'static,
    ) -> Result<CaptureReader, ReplayError> {
        let r: Box<dyn Read + Send> = Box::new(r);
        let input = Input {
            buf: Vec::new(),
            path: name.into(),
            r: BufReader::new(r),
            pos: 0,
        };
        let mut reader = CaptureReader {
            input,
            format: Format::PcapNg,
            order: Order { big: false },
            interfaces: Vec::new(),
            last_ns: 0,
            skipped: 0,
            done: false,
        };
        let mut head = [0u8; 8];
        let n = reader.input.fill(&mut head[..4])?;
        let (big, nanos) = match [head[0], head[1], head[2], head[3]] {
            _ if n < 4 => {
                let found = match n {
                    0 => "the file is empty".to_string(),
                    n => format!("the file has only {n} bytes"),
                };
                return Err(ReplayError::NotACapture {
                    path: reader.input.path,
                    found,
                });
            }
            [0x0A, 0x0D, 0x0D, 0x0A] => {
                let n = reader.input.fill(&mut head[4..])?;
                if n < 4 {
                    return Err(reader.truncated_header(0, "section header block", 12, 4 + n));
                }
                reader.read_section(0, head)?;
                return Ok(reader);
            }
            [0xA1, 0xB2, 0xC3, 0xD4] => (true, false),
            [0xD4, 0xC3, 0xB2, 0xA1] => (false, false),
            [0xA1, 0xB2, 0x3C, 0x4D] => (true, true),
            [0x4D, 0x3C, 0xB2, 0xA1] => (false, true),
            m => {
                let hint = match m {
                    [0xA1, 0xB2, 0xCD, 0x34] | [0x34, 0xCD, 0xB2, 0xA1] => {
                        " (Kuznetsov's modified pcap, which eremu does not read)"
                    }
                    [0x1F, 0x8B, ..] => " (gzip: decompress it first)",
                    _ => "",
                };
                let found = format!(
                    "it starts with bytes {:02x} {:02x} {:02x} {:02x}{hint}",
                    m[0], m[1], m[2], m[3]
                );
                return Err(ReplayError::NotACapture {
                    path: reader.input.path,
                    found,
                });
            }
        };
        // The rest of the 24-byte file header: version, thiszone, sigfigs,
        // snaplen, link type (whose upper bits carry FCS flags).
        let mut rest = [0u8; 20];
        let n = reader.input.fill(&mut rest)?;
        if n < 20 {
            return Err(reader.truncated_header(0, "pcap file header", 24, 4 + n));
        }
        let order = Order { big };
        let code = order.u32(&rest, 16) & 0xFFFF;
        let link = Link::from_code(code).ok_or_else(|| reader.unsupported(0, code))?;
        reader.order = order;
        let snaplen = order.u32(&rest, 12);
        reader.format = Format::Pcap(PcapFile {
            nanos,
            snaplen,
            link,
        });
        Ok(reader)
    }

    /// `"pcap"` or `"pcapng"`.
    pub fn format(&self) -> &'static str {
        match self.format {
            Format::Pcap(_) => "pcap",
            Format::PcapNg => "pcapng",
        }
    }

    /// The file's name, as given to [`CaptureReader::open`] or
    /// [`CaptureReader::from_reader`].
    pub fn path(&self) -> &Path {
        &self.input.path
    }

    /// Packets read so far that could not become Ethernet II frames and were
    /// left out (see the module documentation).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    fn truncated_header(
        &self,
        offset: u64,
        what: &'static str,
        needed: u64,
        left: usize,
    ) -> ReplayError {
        let (path, left) = (self.input.path.clone(), left as u64);
        ReplayError::TruncatedHeader {
            path,
            offset,
            what,
            needed,
            left,
        }
    }

    fn truncated(&self, offset: u64, what: &'static str, said: u64, left: u64) -> ReplayError {
        let path = self.input.path.clone();
        ReplayError::Truncated {
            path,
            offset,
            what,
            said,
            left,
        }
    }

    fn corrupt(&self, offset: u64, what: &'static str, detail: String) -> ReplayError {
        let path = self.input.path.clone();
        ReplayError::Corrupt {
            path,
            offset,
            what,
            detail,
        }
    }

    fn unsupported(&self, offset: u64, link_type: u32) -> ReplayError {
        let name = format!("{:?}", pcap_file::DataLink::from(link_type));
        ReplayError::UnsupportedLinkType {
            path: self.input.path.clone(),
            offset,
            link_type,
            name: (!name.starts_with("Unknown")).then_some(name),
        }
    }

    /// The next frame, `None` at the end of the file.
    fn read_next(&mut self) -> Result<Option<CapturedFrame>, ReplayError> {
        match self.format {
            Format::Pcap(file) => self.next_pcap(file),
            Format::PcapNg => self.next_pcapng(),
        }
    }

    fn next_pcap(&mut self, file: PcapFile) -> Result<Option<CapturedFrame>, ReplayError> {
        const WHAT: &str = "packet record";
        loop {
            let offset = self.input.pos;
            // ts_sec, ts_usec (or ts_nsec), incl_len, orig_len.
            let mut h = [0u8; 16];
            match self.input.fill(&mut h)? {
                0 => return Ok(None),
                n if n < 16 => {
                    return Err(self.truncated_header(offset, "packet record header", 16, n))
                }
                _ => {}
            }
            let caplen = self.order.u32(&h, 8);
            self.check_caplen(offset, WHAT, caplen, file.snaplen, "file's")?;
            let got = self.input.read_buf(caplen.into())?;
            if got < caplen.into() {
                return Err(self.truncated(offset, WHAT, caplen.into(), got));
            }
            let frac = u64::from(self.order.u32(&h, 4)) * if file.nanos { 1 } else { 1000 };
            let time_ns = u64::from(self.order.u32(&h, 0)) * 1_000_000_000 + frac;
            let orig = self.order.u32(&h, 12);
            if let Some(f) = self.frame(file.link, time_ns, orig, offset, None) {
                return Ok(Some(f));
            }
        }
    }

    /// Checks a captured length against eremu's limit and the snaplen.
    fn check_caplen(
        &self,
        offset: u64,
        what: &'static str,
        caplen: u32,
        snaplen: u32,
        whose: &str,
    ) -> Result<(), ReplayError> {
        let detail = if caplen > MAX_PACKET {
            format!("captured length {caplen} exceeds eremu's limit of {MAX_PACKET} bytes")
        } else if snaplen != 0 && caplen > snaplen {
            format!("captured length {caplen} exceeds the {whose} snaplen {snaplen}")
        } else {
            return Ok(());
        };
        Err(self.corrupt(offset, what, detail))
    }

    /// Turns the packet in the input's buffer (`range` of it, all if `None`)
    /// into a frame, or counts it as skipped.
    fn frame(
        &mut self,
        link: Link,
        time_ns: u64,
        orig: u32,
        offset: u64,
        range: Option<std::ops::Range<usize>>,
    ) -> Option<CapturedFrame> {
        let data = match range {
            Some(r) => self.input.buf.get(r).unwrap_or_default(),
            None => &self.input.buf[..],
        };
        let caplen = data.len() as i64;
        let Some((frame, grew)) = link.to_ethernet(data) else {
            self.skipped += 1;
            return None;
        };
        let orig = i64::from(orig).max(caplen) + grew;
        let orig_len = orig.clamp(frame.len() as i64, u32::MAX.into()) as u32;
        Some(CapturedFrame {
            time_ns,
            frame,
            orig_len,
            offset,
        })
    }

    fn next_pcapng(&mut self) -> Result<Option<CapturedFrame>, ReplayError> {
        loop {
            let offset = self.input.pos;
            let mut h = [0u8; 8];
            match self.input.fill(&mut h)? {
                0 => return Ok(None),
                n if n < 8 => {
                    return Err(self.truncated_header(offset, "pcapng block header", 8, n))
                }
                _ => {}
            }
            let (ty, len) = (self.order.u32(&h, 0), self.order.u32(&h, 4));
            match ty {
                SHB => self.read_section(offset, h)?,
                IDB => {
                    let body = self.read_block(offset, ty, len, 20)?;
                    self.add_interface(offset, body)?;
                }
                EPB | PB | SPB => {
                    let min = if ty == SPB { 16 } else { 32 };
                    let body = self.read_block(offset, ty, len, min)?;
                    if let Some(f) = self.packet(offset, ty, body)? {
                        return Ok(Some(f));
                    }
                }
                _ => self.skip_block(offset, ty, len)?,
            }
        }
    }

    /// Reads a Section Header Block whose first 8 bytes are `h`: the byte
    /// order magic sets the order of the whole section, whose interfaces
    /// start anew.
    fn read_section(&mut self, offset: u64, h: [u8; 8]) -> Result<(), ReplayError> {
        let mut bom = [0u8; 4];
        let n = self.input.fill(&mut bom)?;
        if n < 4 {
            return Err(self.truncated_header(offset, "section header block", 12, 8 + n));
        }
        self.order = match u32::from_be_bytes(bom) {
            BYTE_ORDER_MAGIC => Order { big: true },
            0x4D3C_2B1A => Order { big: false },
            m => {
                let detail =
                    format!("byte-order magic is {m:#010x}, not 0x1a2b3c4d in either order");
                return Err(self.corrupt(offset, block_name(SHB), detail));
            }
        };
        self.interfaces.clear();
        let len = self.order.u32(&h, 4);
        // The magic was read already: the rest is 4 bytes shorter.
        self.read_block_from(offset, SHB, len, 28, 12)?;
        let (major, minor) = (
            self.order.u16(&self.input.buf, 0),
            self.order.u16(&self.input.buf, 2),
        );
        if major != 1 {
            let detail = format!("version {major}.{minor}; eremu reads version 1.x");
            return Err(self.corrupt(offset, block_name(SHB), detail));
        }
        Ok(())
    }

    /// Reads the rest of a block whose 8-byte header was read; leaves its
    /// body (then the trailing length) in the input's buffer and returns the
    /// body's size.
    fn read_block(
        &mut self,
        offset: u64,
        ty: u32,
        len: u32,
        min: u32,
    ) -> Result<usize, ReplayError> {
        self.read_block_from(offset, ty, len, min, 8)
    }

    fn check_block_len(&self, offset: u64, ty: u32, len: u32, min: u32) -> Result<(), ReplayError> {
        let detail = if !len.is_multiple_of(4) {
            format!("block length {len} is not a multiple of 4")
        } else if len < min {
            format!("block length {len} is less than the {min} bytes this block needs")
        } else {
            return Ok(());
        };
        Err(self.corrupt(offset, block_name(ty), detail))
    }

    /// [`Self::read_block`] when `read` bytes of the block have been read.
    fn read_block_from(
        &mut self,
        offset: u64,
        ty: u32,
        len: u32,
        min: u32,
        read: u32,
    ) -> Result<usize, ReplayError> {
        self.check_block_len(offset, ty, len, min)?;
        if len > MAX_BLOCK {
            let detail = format!("block length {len} exceeds eremu's limit of {MAX_BLOCK} bytes");
            return Err(self.corrupt(offset, block_name(ty), detail));
        }
        let got = self.input.read_buf(u64::from(len - read))?;
        if got < u64::from(len - read) {
            let left = got + u64::from(read);
            return Err(self.truncated(offset, block_name(ty), len.into(), left));
        }
        let body = self.input.buf.len() - 4;
        self.check_trailer(offset, ty, len, self.order.u32(&self.input.buf, body))?;
        Ok(body)
    }

    fn check_trailer(
        &self,
        offset: u64,
        ty: u32,
        len: u32,
        trailer: u32,
    ) -> Result<(), ReplayError> {
        if trailer == len {
            return Ok(());
        }
        let detail = format!("trailing block length {trailer} differs from the leading {len}");
        Err(self.corrupt(offset, block_name(ty), detail))
    }

    /// Skips a block eremu has no use for, without holding it in memory.
    fn skip_block(&mut self, offset: u64, ty: u32, len: u32) -> Result<(), ReplayError> {
        self.check_block_len(offset, ty, len, 12)?;
        let got = self.input.skip(u64::from(len - 12))?;
        let mut t = [0u8; 4];
        let n = if got == u64::from(len - 12) {
            self.input.fill(&mut t)?
        } else {
            0
        };
        if n < 4 {
            let left = 8 + got + n as u64;
            return Err(self.truncated(offset, block_name(ty), len.into(), left));
        }
        self.check_trailer(offset, ty, len, self.order.u32(&t, 0))
    }

    /// Declares the interface of the Interface Description Block whose body
    /// is the input's buffer up to `body`.
    fn add_interface(&mut self, offset: u64, body: usize) -> Result<(), ReplayError> {
        let what = block_name(IDB);
        let (o, b) = (self.order, &self.input.buf);
        let code = u32::from(o.u16(b, 0));
        let link = Link::from_code(code).ok_or_else(|| self.unsupported(offset, code))?;
        if self.interfaces.len() >= MAX_INTERFACES {
            let detail = format!("more than {MAX_INTERFACES} interfaces in one section");
            return Err(self.corrupt(offset, what, detail));
        }
        let mut iface = Interface {
            link,
            snaplen: o.u32(b, 4),
            tsresol: 6,
            tsoffset: 0,
        };
        // Options: code (2), length (2), value padded to 4 bytes.
        let mut at = 8;
        while at + 4 <= body {
            let (code, olen) = (o.u16(b, at), usize::from(o.u16(b, at + 2)));
            if code == 0 {
                break; // opt_endofopt
            }
            let left = body - at - 4;
            let value = &b[at + 4..at + 4 + olen.min(left)];
            let detail = match (code, olen) {
                _ if olen > left => format!(
                    "option {code} at byte {} says {olen} bytes, {left} left in the block",
                    offset + 8 + at as u64
                ),
                (9, 1) => {
                    iface.tsresol = value[0];
                    String::new()
                }
                (14, 8) => {
                    iface.tsoffset = o.u64(value, 0) as i64;
                    String::new()
                }
                (9, _) => format!("if_tsresol option has {olen} bytes, not 1"),
                (14, _) => format!("if_tsoffset option has {olen} bytes, not 8"),
                _ => String::new(),
            };
            if !detail.is_empty() {
                return Err(self.corrupt(offset, what, detail));
            }
            at += 4 + olen.next_multiple_of(4);
        }
        self.interfaces.push(iface);
        Ok(())
    }

    /// The frame of the Enhanced, Simple or obsolete Packet Block whose body
    /// is the input's buffer up to `body`.
    fn packet(
        &mut self,
        offset: u64,
        ty: u32,
        body: usize,
    ) -> Result<Option<CapturedFrame>, ReplayError> {
        let (o, what, b) = (self.order, block_name(ty), &self.input.buf);
        let (id, ts, caplen, orig, start) = if ty == SPB {
            let orig = o.u32(b, 0);
            let cap = u64::from(orig).min(body as u64 - 4) as u32;
            // Captured length: original length cut to interface 0's snaplen.
            let snap = self.interfaces.first().map_or(0, |i| i.snaplen);
            let cap = if snap == 0 { cap } else { cap.min(snap) };
            (0, None, cap, orig, 4)
        } else {
            // EPB: interface id (4); PB: interface id (2), drops count (2).
            let id = if ty == EPB {
                o.u32(b, 0)
            } else {
                o.u16(b, 0).into()
            };
            let ts = u64::from(o.u32(b, 4)) << 32 | u64::from(o.u32(b, 8));
            (id, Some(ts), o.u32(b, 12), o.u32(b, 16), 20)
        };
        let Some(&iface) = self.interfaces.get(id as usize) else {
            let n = self.interfaces.len();
            let detail =
                format!("packet on interface {id}, but the section declares {n} interface(s)");
            return Err(self.corrupt(offset, what, detail));
        };
        self.check_caplen(offset, what, caplen, iface.snaplen, "interface's")?;
        let end = start + caplen as usize;
        if end > body {
            let detail = format!(
                "captured length {caplen} overruns the block by {} bytes",
                end - body
            );
            return Err(self.corrupt(offset, what, detail));
        }
        let time_ns = ts.map_or(self.last_ns, |ts| iface.time_ns(ts));
        self.last_ns = time_ns;
        Ok(self.frame(iface.link, time_ns, orig, offset, Some(start..end)))
    }
}

/// What errors call a pcapng block.
fn block_name(ty: u32) -> &'static str {
    match ty {
        SHB => "section header block",
        IDB => "interface description block",
        PB => "packet block",
        SPB => "simple packet block",
        EPB => "enhanced packet block",
        _ => "block",
    }
}

impl Iterator for CaptureReader {
    type Item = Result<CapturedFrame, ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.read_next();
        self.done = !matches!(next, Ok(Some(_)));
        next.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ETH: &[u8] = &[
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00, 0x45, 0, 0, 20, 0xAA, 0xBB,
    ];
    const IPV4: &[u8] = &[
        0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    const IPV6: &[u8] = &[0x60, 0, 0, 0, 0, 0, 59, 64];

    fn read(bytes: Vec<u8>) -> Result<Vec<CapturedFrame>, ReplayError> {
        let r = CaptureReader::from_reader("t.cap", io::Cursor::new(bytes))?;
        r.collect()
    }

    fn err(bytes: Vec<u8>) -> ReplayError {
        read(bytes).expect_err("the capture should be rejected")
    }

    fn offset(e: &ReplayError) -> Option<u64> {
        match e {
            ReplayError::Io { offset, .. } => *offset,
            ReplayError::NotACapture { .. } => None,
            ReplayError::TruncatedHeader { offset, .. }
            | ReplayError::Truncated { offset, .. }
            | ReplayError::Corrupt { offset, .. }
            | ReplayError::UnsupportedLinkType { offset, .. } => Some(*offset),
        }
    }

    fn u16b(be: bool, v: u16) -> [u8; 2] {
        if be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    fn u32b(be: bool, v: u32) -> [u8; 4] {
        if be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// A pcap file of records `(ts_sec, ts_frac, data, orig_len)`.
    fn pcap(
        be: bool,
        nanos: bool,
        link: u32,
        snaplen: u32,
        recs: &[(u32, u32, &[u8], u32)],
    ) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend(u32b(be, if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 }));
        f.extend(u16b(be, 2));
        f.extend(u16b(be, 4));
        f.extend([0; 8]);
        f.extend(u32b(be, snaplen));
        f.extend(u32b(be, link));
        for &(sec, frac, data, orig) in recs {
            for v in [sec, frac, data.len() as u32, orig] {
                f.extend(u32b(be, v));
            }
            f.extend(data);
        }
        f
    }

    /// A pcapng file built block by block.
    struct Ng {
        be: bool,
        out: Vec<u8>,
    }

    impl Ng {
        fn new(be: bool) -> Ng {
            let mut ng = Ng {
                be,
                out: Vec::new(),
            };
            ng.shb(be);
            ng
        }
        fn block(&mut self, ty: u32, body: &[u8]) -> u64 {
            let at = self.out.len() as u64;
            let pad = (4 - body.len() % 4) % 4;
            let len = (12 + body.len() + pad) as u32;
            self.out.extend(u32b(self.be, ty));
            self.out.extend(u32b(self.be, len));
            self.out.extend(body);
            self.out.extend(std::iter::repeat_n(0, pad));
            self.out.extend(u32b(self.be, len));
            at
        }
        fn shb(&mut self, be: bool) -> u64 {
            self.be = be;
            let mut b = u32b(be, BYTE_ORDER_MAGIC).to_vec();
            b.extend(u16b(be, 1));
            b.extend(u16b(be, 0));
            b.extend([0xFF; 8]); // section length: unknown
            self.block(SHB, &b)
        }
        fn idb(&mut self, link: u16, snaplen: u32, opts: &[(u16, &[u8])]) -> u64 {
            let mut b = u16b(self.be, link).to_vec();
            b.extend([0, 0]);
            b.extend(u32b(self.be, snaplen));
            for (code, v) in opts {
                b.extend(u16b(self.be, *code));
                b.extend(u16b(self.be, v.len() as u16));
                b.extend(*v);
                b.extend(std::iter::repeat_n(0, (4 - v.len() % 4) % 4));
            }
            if !opts.is_empty() {
                b.extend([0; 4]);
            }
            self.block(IDB, &b)
        }
        fn epb(&mut self, iface: u32, ts: u64, data: &[u8], orig: u32) -> u64 {
            let mut b = u32b(self.be, iface).to_vec();
            for v in [(ts >> 32) as u32, ts as u32, data.len() as u32, orig] {
                b.extend(u32b(self.be, v));
            }
            b.extend(data);
            self.block(EPB, &b)
        }
        fn pb(&mut self, iface: u16, ts: u64, data: &[u8]) -> u64 {
            let mut b = u16b(self.be, iface).to_vec();
            b.extend([0, 0]);
            for v in [
                (ts >> 32) as u32,
                ts as u32,
                data.len() as u32,
                data.len() as u32,
            ] {
                b.extend(u32b(self.be, v));
            }
            b.extend(data);
            self.block(PB, &b)
        }
        fn spb(&mut self, data: &[u8], orig: u32) -> u64 {
            let mut b = u32b(self.be, orig).to_vec();
            b.extend(data);
            self.block(SPB, &b)
        }
    }

    #[test]
    fn eremus_own_capture_has_every_packet_pcap_file_counts() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("captures/samples/route-limit-exceeded/capture.pcapng");
        let mut theirs = pcap_file::pcapng::PcapNgReader::new(File::open(&path).unwrap()).unwrap();
        let mut expected = 0;
        while let Some(b) = theirs.next_block() {
            use pcap_file::pcapng::Block;
            let b = b.unwrap();
            expected += matches!(
                b,
                Block::EnhancedPacket(_) | Block::SimplePacket(_) | Block::Packet(_)
            ) as usize;
        }
        let r = CaptureReader::open(&path).unwrap();
        assert_eq!(r.format(), "pcapng");
        let frames: Vec<_> = r.map(Result::unwrap).collect();
        assert!(expected > 0);
        assert_eq!(frames.len(), expected);
        assert!(frames
            .iter()
            .all(|f| f.frame.len() >= 14 && f.orig_len as usize >= f.frame.len()));
        assert!(frames.windows(2).all(|w| w[0].offset < w[1].offset));
    }

    #[test]
    fn pcap_in_both_byte_orders_and_resolutions() {
        for be in [false, true] {
            for nanos in [false, true] {
                let big = vec![0xEE; 100];
                let recs: &[(u32, u32, &[u8], u32)] =
                    &[(1_700_000_000, 999_999, ETH, 20), (7, 1, &big, 1514)];
                let frames = read(pcap(be, nanos, 1, 65535, recs)).unwrap();
                let unit = if nanos { 1 } else { 1000 };
                assert_eq!(frames.len(), 2, "be {be} nanos {nanos}");
                assert_eq!(
                    frames[0].time_ns,
                    1_700_000_000_000_000_000 + 999_999 * unit
                );
                assert_eq!(frames[0].frame, ETH);
                assert_eq!((frames[0].orig_len, frames[0].offset), (20, 24));
                assert_eq!(frames[1].time_ns, 7_000_000_000 + unit);
                assert_eq!(
                    (
                        frames[1].frame.clone(),
                        frames[1].orig_len,
                        frames[1].offset
                    ),
                    (big, 1514, 24 + 16 + 20)
                );
            }
        }
    }

    #[test]
    fn pcap_written_by_pcap_file_reads_back() {
        use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
        use pcap_file::{Endianness, TsResolution};
        let header = PcapHeader {
            endianness: Endianness::Big,
            ts_resolution: TsResolution::NanoSecond,
            ..PcapHeader::default()
        };
        let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
        let ts = std::time::Duration::new(12, 345_678_901);
        w.write_packet(&PcapPacket::new(ts, 60, ETH)).unwrap();
        let frames = read(w.into_writer()).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(
            (frames[0].time_ns, frames[0].orig_len),
            (12_345_678_901, 60)
        );
        assert_eq!(frames[0].frame, ETH);
    }

    #[test]
    fn pcapng_sections_interfaces_and_timestamp_resolutions() {
        for be in [false, true] {
            let mut ng = Ng::new(be);
            ng.idb(1, 0, &[]); // microseconds by default
            ng.idb(1, 65535, &[(9, &[9]), (14, &[0; 8])]);
            let off = 100i64.to_le_bytes();
            let off: Vec<u8> = if be {
                100i64.to_be_bytes().to_vec()
            } else {
                off.to_vec()
            };
            ng.idb(101, 0, &[(2, b"eth0"), (9, &[0x83]), (14, &off)]); // 1/8 s units, +100 s
            ng.block(4, &[0; 8]); // name resolution
            ng.block(0x0000_0BAD, &[1, 2, 3, 4, 5]); // custom
            let e0 = ng.epb(0, 1_500_000, ETH, 20);
            let e1 = ng.epb(1, 1_234_567_890_123, ETH, 64);
            let e2 = ng.epb(2, 9, IPV6, 8);
            ng.block(5, &[0; 12]); // interface statistics
            let s = ng.spb(ETH, 20);
            ng.block(10, &[0; 8]); // decryption secrets
                                   // A second section, in the other byte order, declares anew.
            let mut other = Ng::new(!be);
            other.out = std::mem::take(&mut ng.out);
            other.shb(!be);
            other.idb(1, 0, &[(9, &[3])]);
            let p = other.pb(0, 42, ETH);
            let frames = read(other.out).unwrap();
            let got: Vec<_> = frames.iter().map(|f| (f.time_ns, f.offset)).collect();
            assert_eq!(
                got,
                [
                    (1_500_000_000, e0),
                    (1_234_567_890_123, e1),
                    (101_125_000_000, e2),
                    (101_125_000_000, s),
                    (42_000_000, p),
                ],
                "be {be}"
            );
            assert_eq!(frames[1].orig_len, 64);
            assert_eq!(frames[2].frame[12..14], [0x86, 0xDD]);
        }
    }

    #[test]
    fn other_link_types_get_an_ethernet_header() {
        let mut eth4 = SYNTH_DST_MAC.to_vec();
        eth4.extend(SYNTH_SRC_MAC);
        eth4.extend([0x08, 0x00]);
        eth4.extend(IPV4);
        for link in [101, 228] {
            let frames = read(pcap(false, false, link, 0, &[(0, 0, IPV4, 1500)])).unwrap();
            assert_eq!(frames[0].frame, eth4);
            assert_eq!(frames[0].orig_len, 1514);
        }
        let frames = read(pcap(true, false, 229, 0, &[(0, 0, IPV6, 8)])).unwrap();
        assert_eq!(frames[0].frame[12..], [&[0x86, 0xDD][..], IPV6].concat());
        // BSD loopback: a 4-byte family in the capturing host's order.
        let null = [&[2, 0, 0, 0][..], IPV4].concat();
        assert_eq!(
            read(pcap(false, false, 0, 0, &[(0, 0, &null, 24)])).unwrap()[0].frame,
            eth4
        );
        // Linux cooked: the sender's MAC and the protocol are kept.
        let mac = [0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF];
        let sll = [&[0, 4, 0, 1, 0, 6][..], &mac, &[0, 0, 0x08, 0x00], IPV4].concat();
        let sll2 = [
            &[0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6][..],
            &mac,
            &[0, 0],
            IPV4,
        ]
        .concat();
        let mut want = SYNTH_DST_MAC.to_vec();
        want.extend(mac);
        want.extend([0x08, 0x00]);
        want.extend(IPV4);
        for (link, data) in [(113, &sll), (276, &sll2)] {
            let frames = read(pcap(
                false,
                false,
                link,
                0,
                &[(0, 0, data, data.len() as u32)],
            ))
            .unwrap();
            assert_eq!(frames[0].frame, want);
            assert_eq!(frames[0].orig_len as usize, want.len());
        }
        // What cannot be an Ethernet II frame is skipped and counted.
        let recs: &[(u32, u32, &[u8], u32)] =
            &[(0, 0, &[0x50, 1, 2], 3), (0, 0, &[], 0), (0, 0, IPV4, 20)];
        let mut r =
            CaptureReader::from_reader("t", io::Cursor::new(pcap(false, false, 101, 0, recs)))
                .unwrap();
        assert_eq!(r.next().unwrap().unwrap().offset, 24 + 16 + 3 + 16);
        assert!(r.next().is_none());
        assert_eq!(r.skipped(), 2);
    }

    #[test]
    fn not_a_capture_says_what_it_found() {
        let e = err(Vec::new());
        assert_eq!(
            e.to_string(),
            "t.cap: not a pcap or pcapng file: the file is empty"
        );
        let e = err(b"PK\x03\x04rest".to_vec());
        assert_eq!(
            e.to_string(),
            "t.cap: not a pcap or pcapng file: it starts with bytes 50 4b 03 04"
        );
        assert!(err(vec![0x1F, 0x8B, 8, 0]).to_string().contains("gzip"));
        assert!(err(vec![0xA1]).to_string().contains("only 1 bytes"));
        let e = CaptureReader::open(Path::new("/nonexistent/x.pcap"))
            .err()
            .unwrap();
        assert!(matches!(e, ReplayError::Io { offset: None, .. }));
        assert!(e.to_string().starts_with("/nonexistent/x.pcap: "));
    }

    #[test]
    fn pcap_errors_name_the_record() {
        let recs: &[(u32, u32, &[u8], u32)] = &[(0, 0, ETH, 20), (0, 0, ETH, 20), (0, 0, ETH, 20)];
        let file = pcap(false, false, 1, 65535, recs);
        let third = 24 + 2 * (16 + 20);
        assert_eq!(read(file.clone()).unwrap().len(), 3);
        // Cut in the middle of the 3rd record's data, then of its header.
        let e = err(file[..third + 16 + 5].to_vec());
        assert_eq!(
            e.to_string(),
            format!("t.cap: byte {third}: truncated packet record (header says 20 bytes, 5 left)")
        );
        let e = err(file[..third + 7].to_vec());
        assert!(matches!(
            e,
            ReplayError::TruncatedHeader {
                needed: 16,
                left: 7,
                ..
            }
        ));
        assert_eq!(offset(&e), Some(third as u64));
        let e = err(file[..10].to_vec());
        assert!(
            matches!(
                e,
                ReplayError::TruncatedHeader {
                    offset: 0,
                    needed: 24,
                    left: 10,
                    ..
                }
            ),
            "{e}"
        );
        // Longer than the snaplen, or than any packet can be.
        let e = err(pcap(
            true,
            true,
            1,
            16,
            &[(0, 0, &[0; 16], 16), (0, 0, ETH, 20)],
        ));
        assert_eq!(e.to_string(), "t.cap: byte 56: corrupt packet record: captured length 20 exceeds the file's snaplen 16");
        let mut f = pcap(false, false, 1, 0, &[]);
        f.extend([0; 8].into_iter().chain(u32b(false, 300_000)).chain([0; 4]));
        assert!(err(f).to_string().contains(
            "byte 24: corrupt packet record: captured length 300000 exceeds eremu's limit"
        ));
        // A link type eremu cannot read.
        let e = err(pcap(false, false, 105, 0, &[]));
        assert_eq!(
            e.to_string(),
            format!("t.cap: byte 0: unsupported link type 105 (IEEE802_11); eremu reads {SUPPORTED_LINK_TYPES}")
        );
        assert!(err(pcap(false, false, 60000, 0, &[]))
            .to_string()
            .contains("link type 60000; eremu reads"));
    }

    #[test]
    fn pcapng_errors_name_the_block() {
        let mut ng = Ng::new(true);
        ng.idb(1, 0, &[]);
        ng.epb(0, 0, ETH, 20);
        let bad = ng.epb(0, 0, ETH, 20);
        ng.epb(0, 0, ETH, 20);
        let good = ng.out.clone();
        let bad = bad as usize;
        // Cut inside the 2nd packet block, and inside a block header.
        let e = err(good[..bad + 30].to_vec());
        assert_eq!(e.to_string(), format!("t.cap: byte {bad}: truncated enhanced packet block (header says 52 bytes, 30 left)"));
        let e = err(good[..bad + 5].to_vec());
        assert!(
            matches!(e, ReplayError::TruncatedHeader { left: 5, .. })
                && offset(&e) == Some(bad as u64)
        );
        let e = err(good[..6].to_vec());
        assert!(
            matches!(e, ReplayError::TruncatedHeader { offset: 0, .. }),
            "{e}"
        );
        let patch = |at: usize, v: u32| {
            let mut f = good.clone();
            f[at..at + 4].copy_from_slice(&v.to_be_bytes());
            f
        };
        let e = err(patch(bad + 4, 50));
        assert!(e.to_string().ends_with(&format!(
            "byte {bad}: corrupt enhanced packet block: block length 50 is not a multiple of 4"
        )));
        let e = err(patch(bad + 48, 56));
        assert!(
            e.to_string()
                .ends_with("trailing block length 56 differs from the leading 52"),
            "{e}"
        );
        let e = err(patch(bad + 8, 3)); // interface id
        assert!(e.to_string().ends_with(&format!("byte {bad}: corrupt enhanced packet block: packet on interface 3, but the section declares 1 interface(s)")));
        let e = err(patch(bad + 20, 24)); // captured length
        assert!(
            e.to_string()
                .contains("captured length 24 overruns the block by 4 bytes"),
            "{e}"
        );
        let e = err(patch(8, 0x1A2B_3C4E));
        assert!(
            e.to_string()
                .contains("byte 0: corrupt section header block: byte-order magic is 0x1a2b3c4e"),
            "{e}"
        );
        let e = err(patch(0, 0x0A0D_0D0B));
        assert!(matches!(e, ReplayError::NotACapture { .. }));
        // Options that overrun, or a resolution of the wrong size.
        let mut ng = Ng::new(false);
        let at = ng.idb(1, 0, &[(9, &[6])]);
        ng.out[at as usize + 18] = 9; // the option's length
        assert!(err(ng.out).to_string().contains(&format!("byte {at}: corrupt interface description block: option 9 at byte {} says 9 bytes, 8 left", at + 16)));
        let mut ng = Ng::new(false);
        ng.idb(1, 0, &[(9, &[6, 0])]);
        assert!(err(ng.out)
            .to_string()
            .ends_with("if_tsresol option has 2 bytes, not 1"));
        // Packets longer than the interface's snaplen; unsupported links.
        let mut ng = Ng::new(false);
        ng.idb(1, 10, &[]);
        let at = ng.epb(0, 0, ETH, 20);
        assert!(err(ng.out).to_string().ends_with(&format!("byte {at}: corrupt enhanced packet block: captured length 20 exceeds the interface's snaplen 10")));
        let mut ng = Ng::new(false);
        ng.idb(1, 0, &[]);
        let at = ng.idb(127, 0, &[]);
        assert!(err(ng.out).to_string().contains(&format!(
            "byte {at}: unsupported link type 127 (IEEE802_11_RADIOTAP)"
        )));
        // A simple packet block needs interface 0; skipped blocks are checked.
        let mut ng = Ng::new(false);
        ng.spb(ETH, 20);
        assert!(err(ng.out).to_string().contains("byte 28: corrupt simple packet block: packet on interface 0, but the section declares 0"));
        let mut ng = Ng::new(false);
        let at = ng.block(4, &[0; 8]);
        ng.out.truncate(ng.out.len() - 2);
        let e = err(ng.out);
        assert_eq!(
            e.to_string(),
            format!("t.cap: byte {at}: truncated block (header says 20 bytes, 18 left)")
        );
    }

    #[test]
    fn the_reader_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<CaptureReader>();
        send::<ReplayError>();
    }

    #[test]
    fn timestamp_units() {
        let ns = |tsresol, tsoffset, ts| {
            let i = Interface {
                link: Link::Ethernet,
                snaplen: 0,
                tsresol,
                tsoffset,
            };
            i.time_ns(ts)
        };
        assert_eq!(ns(6, 0, 1_234_567), 1_234_567_000);
        assert_eq!(ns(0, 0, 3), 3_000_000_000);
        assert_eq!(ns(12, 0, 1_234_567), 1_234); // picoseconds, truncated
        assert_eq!(ns(0x80 | 10, 0, 3 * 1024 + 512), 3_500_000_000); // 1/1024 s
        assert_eq!(ns(0x80 | 30, 0, 1 << 30), 1_000_000_000);
        assert_eq!(ns(100, 0, u64::MAX), 0);
        assert_eq!(ns(0xFF, 0, u64::MAX), 0);
        assert_eq!(ns(9, -2, 1_500_000_000), 0); // before the epoch
        assert_eq!(ns(9, 1, 5), 1_000_000_005);
        assert_eq!(ns(0, i64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn read_errors_give_the_offset_reached() {
        struct Failing(io::Cursor<Vec<u8>>);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(io::Error::other("device gone")),
                    n => Ok(n),
                }
            }
        }
        let file = pcap(false, false, 1, 0, &[(0, 0, ETH, 20)]);
        let mut r = CaptureReader::from_reader("t.cap", Failing(io::Cursor::new(file))).unwrap();
        assert!(r.next().unwrap().is_ok());
        let e = r.next().unwrap().unwrap_err();
        assert_eq!(e.to_string(), "t.cap: byte 60: device gone");
        assert!(r.next().is_none());
    }

    /// Valid captures of every kind, for the fuzz-like test below.
    fn samples() -> Vec<Vec<u8>> {
        let recs: &[(u32, u32, &[u8], u32)] = &[(1, 2, ETH, 20), (3, 4, IPV4, 60), (5, 6, ETH, 20)];
        let mut v = vec![
            pcap(false, false, 1, 0, recs),
            pcap(
                true,
                true,
                101,
                0,
                &[(1, 2, IPV4, 20), (3, 4, IPV6, 8), (5, 6, IPV4, 60)],
            ),
        ];
        for be in [false, true] {
            let mut ng = Ng::new(be);
            ng.idb(1, 0, &[(9, &[9]), (14, &[0; 8])]);
            ng.idb(229, 0, &[(9, &[0x8A])]);
            ng.epb(0, 5, ETH, 20);
            ng.block(4, &[0; 8]);
            ng.epb(1, 6, IPV6, 8);
            ng.spb(ETH, 20);
            ng.pb(1, 7, IPV6);
            ng.shb(!be);
            ng.idb(113, 0, &[]);
            let sll = [
                &[0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00][..],
                IPV4,
            ]
            .concat();
            ng.epb(0, 8, &sll, 36);
            v.push(ng.out);
        }
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn damaged_captures_never_panic_and_end(
            which in 0usize..4,
            cut in any::<prop::sample::Index>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        ) {
            let mut f = samples().swap_remove(which);
            let cut = cut.index(f.len() + 1);
            f.truncate(cut);
            for (at, x) in flips {
                if !f.is_empty() {
                    let i = at.index(f.len());
                    f[i] ^= x;
                }
            }
            let len = f.len();
            if let Ok(r) = CaptureReader::from_reader("t", io::Cursor::new(f)) {
                // Every frame consumes at least 12 bytes, and errors end it.
                let n = r.take(len + 2).count();
                prop_assert!(n <= len / 12 + 1);
            }
        }
    }

    #[test]
    fn samples_are_valid() {
        let lens: Vec<_> = samples()
            .into_iter()
            .map(|s| read(s).unwrap().len())
            .collect();
        assert_eq!(lens, [3, 3, 5, 5]);
    }
}
