//! BGP-4 messages (RFC 4271 section 4) as bytes, and a de-framer for the TCP
//! byte stream that carries them.
//!
//! ```text
//! 0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Marker (16 octets of 0xff)                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |  body ...
//! ```
//!
//! [`Repr`] is the validated form of one message. Contracts:
//! - [`Repr::parse`] accepts exactly one whole message and never panics, on
//!   any input; every error maps to the NOTIFICATION a speaker would send
//!   ([`WireError::notification`]).
//! - [`Repr::emit`] appends exactly [`Repr::buffer_len`] bytes, and
//!   `parse(emit(r)) == r` for every `r` whose encoding fits in
//!   [`MAX_MESSAGE_LEN`] (use [`UpdateRepr::pack`] to split large updates).
//! - Emission is canonical: all capabilities in one optional parameter, the
//!   AS_PATH always with 4-octet ASNs (both sides advertise RFC 6793
//!   support), extended attribute length only when a value exceeds 255 bytes.
//!
//! Scope: IPv4 unicast in the classic UPDATE fields; AS_SEQUENCE segments
//! only (AS_SET is deprecated by RFC 6472 and rejected); attributes other
//! than the five modeled are kept raw so that they round-trip.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

mod attr;
mod frame;

pub use attr::{AsPathError, Origin, PathAttributes, RawAttribute};
use frame::Reader;
pub use frame::{Deframer, Packet};

/// The TCP port a BGP speaker listens on.
pub const PORT: u16 = 179;
/// Marker, length, type.
pub const HEADER_LEN: usize = 19;
/// Largest message RFC 4271 allows (extended messages, RFC 8654, not modeled).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// The 2-octet stand-in for a 4-octet ASN (RFC 6793).
pub const AS_TRANS: u16 = 23456;
pub const VERSION: u8 = 4;

mod field {
    use std::ops::Range;
    pub const MARKER: Range<usize> = 0..16;
    pub const LENGTH: Range<usize> = 16..18;
    pub const TYPE: usize = 18;
}

/// Message type codes (RFC 4271 4.1).
pub mod msg_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
}

/// NOTIFICATION error codes and the subcodes the model uses (RFC 4271 4.5,
/// RFC 4486 for Cease, RFC 9384 for BFD Down).
pub mod error_code {
    pub const HEADER: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const CEASE_MAX_PREFIXES: u8 = 1;
    pub const CEASE_ADMIN_SHUTDOWN: u8 = 2;
    pub const CEASE_BFD_DOWN: u8 = 10;
    pub const OPEN_BAD_PEER_AS: u8 = 2;
    pub const OPEN_BAD_BGP_ID: u8 = 3;
    pub const OPEN_UNACCEPTABLE_HOLD_TIME: u8 = 6;
}

/// Why bytes are not a valid BGP message. Each variant names the RFC 4271
/// section 6 error it corresponds to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("marker is not all ones")]
    BadMarker,
    #[error("bad message length {0}")]
    BadLength(u16),
    #[error("unknown message type {0}")]
    BadType(u8),
    #[error("unsupported BGP version {0}")]
    UnsupportedVersion(u8),
    #[error("unsupported optional parameter {0}")]
    UnsupportedOptionalParameter(u8),
    #[error("malformed attribute list: {0}")]
    MalformedAttributeList(&'static str),
    #[error("unrecognized well-known attribute {0}")]
    UnrecognizedWellKnownAttribute(u8),
    #[error("missing well-known attribute {0}")]
    MissingWellKnownAttribute(u8),
    #[error("attribute {0} has wrong flags")]
    AttributeFlags(u8),
    #[error("attribute {0} has wrong length")]
    AttributeLength(u8),
    #[error("invalid ORIGIN {0}")]
    InvalidOrigin(u8),
    #[error("invalid NEXT_HOP")]
    InvalidNextHop,
    #[error("invalid network field (prefix length {0})")]
    InvalidNetwork(u8),
    #[error("malformed AS_PATH: {0}")]
    MalformedAsPath(#[from] AsPathError),
}

impl WireError {
    /// The NOTIFICATION a speaker sends on receiving such a message (RFC 4271
    /// 6.1-6.3); the data field is left empty.
    pub fn notification(&self) -> NotificationRepr {
        use WireError::*;
        let (code, subcode) = match self {
            BadMarker => (1, 1),
            BadLength(_) => (1, 2),
            BadType(_) => (1, 3),
            // RFC 4271 6.3: overrunning UPDATE fields is a malformed
            // attribute list, a bad prefix an invalid network field;
            // elsewhere a body too short for its fields is a length error.
            Truncated("UPDATE" | "withdrawn routes" | "path attribute") => (3, 1),
            Truncated("NLRI") => (3, 10),
            Truncated(_) => (1, 2),
            UnsupportedVersion(_) => (2, 1),
            UnsupportedOptionalParameter(_) => (2, 4),
            MalformedAttributeList(_) => (3, 1),
            UnrecognizedWellKnownAttribute(_) => (3, 2),
            MissingWellKnownAttribute(_) => (3, 3),
            AttributeFlags(_) => (3, 4),
            AttributeLength(_) => (3, 5),
            InvalidOrigin(_) => (3, 6),
            InvalidNextHop => (3, 8),
            InvalidNetwork(_) => (3, 10),
            MalformedAsPath(_) => (3, 11),
        };
        NotificationRepr {
            code,
            subcode,
            data: Vec::new(),
        }
    }
}

/// An optional capability of an OPEN (RFC 5492).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// RFC 4760: the speaker handles this address family (AFI 1 SAFI 1 is IPv4 unicast).
    Multiprotocol { afi: u16, safi: u8 },
    /// RFC 6793: the speaker's real ASN.
    FourOctetAs(u32),
    /// Anything else, kept so that it round-trips.
    Unknown { code: u8, value: Vec<u8> },
}

impl Capability {
    pub const IPV4_UNICAST: Capability = Capability::Multiprotocol { afi: 1, safi: 1 };

    fn value_len(&self) -> usize {
        match self {
            Capability::Multiprotocol { .. } | Capability::FourOctetAs(_) => 4,
            Capability::Unknown { value, .. } => value.len(),
        }
    }

    fn emit(&self, buf: &mut Vec<u8>) {
        match self {
            Capability::Multiprotocol { afi, safi } => {
                buf.extend_from_slice(&[1, 4]);
                buf.extend_from_slice(&afi.to_be_bytes());
                buf.extend_from_slice(&[0, *safi]);
            }
            Capability::FourOctetAs(asn) => {
                buf.extend_from_slice(&[65, 4]);
                buf.extend_from_slice(&asn.to_be_bytes());
            }
            Capability::Unknown { code, value } => {
                buf.extend_from_slice(&[*code, value.len() as u8]);
                buf.extend_from_slice(value);
            }
        }
    }

    fn parse(code: u8, value: &[u8]) -> Capability {
        match (code, value) {
            (1, &[a0, a1, _reserved, safi]) => Capability::Multiprotocol {
                afi: u16::from_be_bytes([a0, a1]),
                safi,
            },
            (65, &[a, b, c, d]) => Capability::FourOctetAs(u32::from_be_bytes([a, b, c, d])),
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        }
    }
}

/// An OPEN message (RFC 4271 4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRepr {
    /// The speaker's ASN; a 4-octet one goes on the wire as [`AS_TRANS`] plus
    /// a [`Capability::FourOctetAs`], which `capabilities` must then contain.
    pub my_as: u32,
    /// Proposed hold time in seconds: 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl OpenRepr {
    /// An OPEN advertising IPv4 unicast and 4-octet AS support.
    pub fn new(my_as: u32, hold_time: u16, bgp_id: Ipv4Addr) -> Self {
        OpenRepr {
            my_as,
            hold_time,
            bgp_id,
            capabilities: vec![Capability::IPV4_UNICAST, Capability::FourOctetAs(my_as)],
        }
    }

    /// Whether the speaker announced RFC 6793 support.
    pub fn four_octet_as(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
    }

    fn params_len(&self) -> usize {
        if self.capabilities.is_empty() {
            0
        } else {
            2 + self
                .capabilities
                .iter()
                .map(|c| 2 + c.value_len())
                .sum::<usize>()
        }
    }

    fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body, "OPEN");
        let version = r.u8()?;
        if version != VERSION {
            return Err(WireError::UnsupportedVersion(version));
        }
        let as2 = r.u16()?;
        let hold_time = r.u16()?;
        let bgp_id = Ipv4Addr::from(r.u32()?);
        let params_len = r.u8()? as usize;
        let params = r.take(params_len)?;
        if !r.is_empty() {
            return Err(WireError::BadLength((HEADER_LEN + body.len()) as u16));
        }
        let mut capabilities = Vec::new();
        let mut p = Reader::new(params, "OPEN optional parameter");
        while !p.is_empty() {
            let ptype = p.u8()?;
            let plen = p.u8()? as usize;
            let value = p.take(plen)?;
            if ptype != 2 {
                return Err(WireError::UnsupportedOptionalParameter(ptype));
            }
            let mut c = Reader::new(value, "capability");
            while !c.is_empty() {
                let code = c.u8()?;
                let len = c.u8()? as usize;
                capabilities.push(Capability::parse(code, c.take(len)?));
            }
        }
        // RFC 6793 4.1: the capability carries the real ASN and wins over
        // the 2-octet field (which holds AS_TRANS when the ASN needs 4 octets).
        let my_as = capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(as2 as u32);
        Ok(OpenRepr {
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }

    fn emit(&self, buf: &mut Vec<u8>) {
        buf.push(VERSION);
        let as2 = u16::try_from(self.my_as).unwrap_or(AS_TRANS);
        buf.extend_from_slice(&as2.to_be_bytes());
        buf.extend_from_slice(&self.hold_time.to_be_bytes());
        buf.extend_from_slice(&self.bgp_id.octets());
        let params_len = self.params_len();
        buf.push(params_len as u8);
        if params_len > 0 {
            buf.extend_from_slice(&[2, (params_len - 2) as u8]);
            for c in &self.capabilities {
                c.emit(buf);
            }
        }
    }
}

/// An UPDATE message (RFC 4271 4.3) for IPv4 unicast.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateRepr {
    pub withdrawn: Vec<Ipv4Net>,
    /// Absent in an UPDATE that only withdraws; required when `nlri` is not empty.
    pub attributes: Option<PathAttributes>,
    pub nlri: Vec<Ipv4Net>,
}

/// Bytes of one prefix in the withdrawn-routes or NLRI fields.
fn prefix_len_bytes(p: &Ipv4Net) -> usize {
    1 + (p.prefix_len() as usize).div_ceil(8)
}

fn emit_prefix(p: &Ipv4Net, buf: &mut Vec<u8>) {
    buf.push(p.prefix_len());
    let n = prefix_len_bytes(p) - 1;
    buf.extend_from_slice(&p.network().octets()[..n]);
}

fn parse_prefixes(bytes: &[u8], what: &'static str) -> Result<Vec<Ipv4Net>, WireError> {
    let mut r = Reader::new(bytes, what);
    let mut out = Vec::new();
    while !r.is_empty() {
        let len = r.u8()?;
        if len > 32 {
            return Err(WireError::InvalidNetwork(len));
        }
        let mut octets = [0u8; 4];
        let n = (len as usize).div_ceil(8);
        octets[..n].copy_from_slice(r.take(n)?);
        // Bits past the prefix length are ignored (normalized to zero).
        let net = Ipv4Net::new(Ipv4Addr::from(octets), len)
            .map_err(|_| WireError::InvalidNetwork(len))?
            .trunc();
        out.push(net);
    }
    Ok(out)
}

impl UpdateRepr {
    fn body_len(&self) -> usize {
        2 + self.withdrawn.iter().map(prefix_len_bytes).sum::<usize>()
            + 2
            + self.attributes.as_ref().map_or(0, |a| a.buffer_len())
            + self.nlri.iter().map(prefix_len_bytes).sum::<usize>()
    }

    /// UPDATEs, each within [`MAX_MESSAGE_LEN`], that withdraw `withdrawn`
    /// and announce `nlri` with `attributes` (nothing is announced without
    /// attributes; no UPDATE at all if there is nothing to send).
    pub fn pack(
        withdrawn: &[Ipv4Net],
        attributes: Option<&PathAttributes>,
        nlri: &[Ipv4Net],
    ) -> Vec<UpdateRepr> {
        // Room for prefixes and attributes: the header and both length fields aside.
        let room = MAX_MESSAGE_LEN - HEADER_LEN - 4;
        let mut out = Vec::new();
        let mut cur = UpdateRepr::default();
        let mut used = 0;
        for p in withdrawn {
            let n = prefix_len_bytes(p);
            if used + n > room {
                out.push(std::mem::take(&mut cur));
                used = 0;
            }
            used += n;
            cur.withdrawn.push(*p);
        }
        if let Some(attrs) = attributes.filter(|_| !nlri.is_empty()) {
            let attr_len = attrs.buffer_len();
            for p in nlri {
                let n = prefix_len_bytes(p);
                let need = n + if cur.attributes.is_none() {
                    attr_len
                } else {
                    0
                };
                if used > 0 && used + need > room {
                    out.push(std::mem::take(&mut cur));
                    used = 0;
                }
                if cur.attributes.is_none() {
                    cur.attributes = Some(attrs.clone());
                    used += attr_len;
                }
                used += n;
                cur.nlri.push(*p);
            }
        }
        if !cur.withdrawn.is_empty() || !cur.nlri.is_empty() {
            out.push(cur);
        }
        out
    }

    fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body, "UPDATE");
        let wlen = r.u16()? as usize;
        let withdrawn = parse_prefixes(r.take(wlen)?, "withdrawn routes")?;
        let alen = r.u16()? as usize;
        let attr_bytes = r.take(alen)?;
        let nlri = parse_prefixes(r.take(body.len() - 4 - wlen - alen)?, "NLRI")?;
        let attributes = if attr_bytes.is_empty() {
            if !nlri.is_empty() {
                // RFC 4271 6.3: NLRI without ORIGIN is the first thing missing.
                return Err(WireError::MissingWellKnownAttribute(1));
            }
            None
        } else {
            Some(PathAttributes::parse(attr_bytes)?)
        };
        Ok(UpdateRepr {
            withdrawn,
            attributes,
            nlri,
        })
    }

    fn emit(&self, buf: &mut Vec<u8>) {
        let wlen: usize = self.withdrawn.iter().map(prefix_len_bytes).sum();
        buf.extend_from_slice(&(wlen as u16).to_be_bytes());
        for p in &self.withdrawn {
            emit_prefix(p, buf);
        }
        let alen = self.attributes.as_ref().map_or(0, |a| a.buffer_len());
        buf.extend_from_slice(&(alen as u16).to_be_bytes());
        if let Some(a) = &self.attributes {
            a.emit(buf);
        }
        for p in &self.nlri {
            emit_prefix(p, buf);
        }
    }
}

/// A NOTIFICATION message (RFC 4271 4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRepr {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl NotificationRepr {
    pub fn new(code: u8, subcode: u8) -> Self {
        NotificationRepr {
            code,
            subcode,
            data: Vec::new(),
        }
    }
}

impl std::fmt::Display for NotificationRepr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match (self.code, self.subcode) {
            (1, _) => "message header error",
            (2, 2) => "bad peer AS",
            (2, 6) => "unacceptable hold time",
            (2, _) => "OPEN message error",
            (3, _) => "UPDATE message error",
            (4, _) => "hold timer expired",
            (5, _) => "finite state machine error",
            (6, 1) => "cease: maximum number of prefixes reached",
            (6, 2) => "cease: administrative shutdown",
            (6, 10) => "cease: BFD down",
            (6, _) => "cease",
            _ => "unknown error",
        };
        write!(f, "{name} ({}/{})", self.code, self.subcode)
    }
}

/// One BGP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repr {
    Open(OpenRepr),
    Update(UpdateRepr),
    Notification(NotificationRepr),
    Keepalive,
}

impl Repr {
    /// Parses exactly one message; `bytes` must not hold anything after it.
    pub fn parse(bytes: &[u8]) -> Result<Repr, WireError> {
        let pkt = Packet::new_checked(bytes)?;
        if pkt.message_len() != bytes.len() {
            return Err(WireError::BadLength(pkt.message_len() as u16));
        }
        let body = pkt.body();
        let bad_len = || WireError::BadLength(bytes.len() as u16);
        match pkt.msg_type() {
            msg_type::OPEN => OpenRepr::parse(body).map(Repr::Open),
            msg_type::UPDATE => UpdateRepr::parse(body).map(Repr::Update),
            msg_type::NOTIFICATION => {
                if body.len() < 2 {
                    return Err(bad_len());
                }
                Ok(Repr::Notification(NotificationRepr {
                    code: body[0],
                    subcode: body[1],
                    data: body[2..].to_vec(),
                }))
            }
            msg_type::KEEPALIVE if body.is_empty() => Ok(Repr::Keepalive),
            msg_type::KEEPALIVE => Err(bad_len()),
            t => Err(WireError::BadType(t)),
        }
    }

    pub fn msg_type(&self) -> u8 {
        match self {
            Repr::Open(_) => msg_type::OPEN,
            Repr::Update(_) => msg_type::UPDATE,
            Repr::Notification(_) => msg_type::NOTIFICATION,
            Repr::Keepalive => msg_type::KEEPALIVE,
        }
    }

    /// Bytes [`Repr::emit`] appends, header included.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Repr::Open(o) => 10 + o.params_len(),
                Repr::Update(u) => u.body_len(),
                Repr::Notification(n) => 2 + n.data.len(),
                Repr::Keepalive => 0,
            }
    }

    /// Appends the message to `buf`.
    pub fn emit(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&[0xff; 16]);
        buf.extend_from_slice(&(self.buffer_len() as u16).to_be_bytes());
        buf.push(self.msg_type());
        match self {
            Repr::Open(o) => o.emit(buf),
            Repr::Update(u) => u.emit(buf),
            Repr::Notification(n) => {
                buf.extend_from_slice(&[n.code, n.subcode]);
                buf.extend_from_slice(&n.data);
            }
            Repr::Keepalive => {}
        }
    }

    /// The message as a fresh byte vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.buffer_len());
        self.emit(&mut v);
        v
    }
}

#[cfg(test)]
mod tests;
