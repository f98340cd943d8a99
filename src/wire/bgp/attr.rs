//! UPDATE path attributes (RFC 4271 4.3 and 5.1).
//!
//! ```text
//! +---------------+---------------+------------------------------+
//! | Attr. Flags   |Attr. Type Code| Length (1, or 2 if Extended) | Value ...
//! +---------------+---------------+------------------------------+
//! flags: Optional 0x80, Transitive 0x40, Partial 0x20, Extended Length 0x10
//! ```

use std::net::Ipv4Addr;

use super::{Reader, WireError};

const OPTIONAL: u8 = 0x80;
const TRANSITIVE: u8 = 0x40;
const EXTENDED: u8 = 0x10;

const ORIGIN: u8 = 1;
const AS_PATH: u8 = 2;
const NEXT_HOP: u8 = 3;
const MED: u8 = 4;
const LOCAL_PREF: u8 = 5;

const AS_SET: u8 = 1;
const AS_SEQUENCE: u8 = 2;
/// A segment's ASN count is one octet.
const MAX_SEGMENT: usize = 255;

/// Where the route came from, in order of preference (lower is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Origin {
    #[default]
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// Why an AS_PATH value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AsPathError {
    #[error("AS_SET segments are not supported (deprecated by RFC 6472)")]
    AsSet,
    #[error("unknown segment type {0}")]
    SegmentType(u8),
    #[error("empty segment")]
    EmptySegment,
    #[error("segment overruns the attribute")]
    Overrun,
}

/// An attribute the model does not interpret, kept so that it round-trips.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    /// Flags without the Extended Length bit, which emission derives from the length.
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

/// The attributes of the routes in one UPDATE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathAttributes {
    pub origin: Origin,
    /// One AS_SEQUENCE, leftmost = most recently added, always 4-octet ASNs.
    pub as_path: Vec<u32>,
    pub next_hop: Ipv4Addr,
    /// MULTI_EXIT_DISC, lower is better.
    pub med: Option<u32>,
    /// LOCAL_PREF, higher is better; only exchanged between internal peers.
    pub local_pref: Option<u32>,
    /// Optional attributes the model does not interpret (type code above 5).
    pub other: Vec<RawAttribute>,
}

impl PathAttributes {
    /// IGP-originated, with the given AS path and next hop and nothing else.
    pub fn new(as_path: Vec<u32>, next_hop: Ipv4Addr) -> Self {
        PathAttributes {
            origin: Origin::Igp,
            as_path,
            next_hop,
            med: None,
            local_pref: None,
            other: Vec::new(),
        }
    }

    fn as_path_value_len(&self) -> usize {
        let segments = self.as_path.len().div_ceil(MAX_SEGMENT);
        2 * segments + 4 * self.as_path.len()
    }

    /// Bytes of the encoded attributes.
    pub fn buffer_len(&self) -> usize {
        let tlv = |len: usize| if len > 255 { 4 + len } else { 3 + len };
        tlv(1)
            + tlv(self.as_path_value_len())
            + tlv(4)
            + self.med.map_or(0, |_| tlv(4))
            + self.local_pref.map_or(0, |_| tlv(4))
            + self.other.iter().map(|a| tlv(a.value.len())).sum::<usize>()
    }

    pub fn emit(&self, buf: &mut Vec<u8>) {
        fn header(buf: &mut Vec<u8>, flags: u8, code: u8, len: usize) {
            if len > 255 {
                buf.extend_from_slice(&[flags | EXTENDED, code]);
                buf.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                buf.extend_from_slice(&[flags, code, len as u8]);
            }
        }
        header(buf, TRANSITIVE, ORIGIN, 1);
        buf.push(self.origin as u8);
        header(buf, TRANSITIVE, AS_PATH, self.as_path_value_len());
        for seg in self.as_path.chunks(MAX_SEGMENT) {
            buf.extend_from_slice(&[AS_SEQUENCE, seg.len() as u8]);
            for asn in seg {
                buf.extend_from_slice(&asn.to_be_bytes());
            }
        }
        header(buf, TRANSITIVE, NEXT_HOP, 4);
        buf.extend_from_slice(&self.next_hop.octets());
        if let Some(med) = self.med {
            header(buf, OPTIONAL, MED, 4);
            buf.extend_from_slice(&med.to_be_bytes());
        }
        if let Some(lp) = self.local_pref {
            header(buf, TRANSITIVE, LOCAL_PREF, 4);
            buf.extend_from_slice(&lp.to_be_bytes());
        }
        for a in &self.other {
            header(buf, a.flags & !EXTENDED, a.type_code, a.value.len());
            buf.extend_from_slice(&a.value);
        }
    }

    /// Parses a non-empty attribute section; ORIGIN, AS_PATH and NEXT_HOP
    /// are required (RFC 4271 requires them only alongside NLRI; the model
    /// never sends attributes without NLRI, so it is stricter here).
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes, "path attribute");
        let (mut origin, mut as_path, mut next_hop) = (None, None, None);
        let (mut med, mut local_pref) = (None, None);
        let mut other = Vec::new();
        let mut seen = [false; 256];
        while !r.is_empty() {
            let flags = r.u8()?;
            let code = r.u8()?;
            let len = if flags & EXTENDED != 0 {
                r.u16()? as usize
            } else {
                r.u8()? as usize
            };
            let value = r.take(len)?;
            if std::mem::replace(&mut seen[code as usize], true) {
                return Err(WireError::MalformedAttributeList("attribute repeated"));
            }
            // Optional, Transitive and Partial must be as RFC 4271 5 defines
            // them for each known attribute.
            let expect = |want: u8| {
                if flags & 0xe0 != want {
                    Err(WireError::AttributeFlags(code))
                } else {
                    Ok(())
                }
            };
            let four = || -> Result<u32, WireError> {
                match *value {
                    [a, b, c, d] => Ok(u32::from_be_bytes([a, b, c, d])),
                    _ => Err(WireError::AttributeLength(code)),
                }
            };
            match code {
                ORIGIN => {
                    expect(TRANSITIVE)?;
                    origin = Some(match *value {
                        [0] => Origin::Igp,
                        [1] => Origin::Egp,
                        [2] => Origin::Incomplete,
                        [v] => return Err(WireError::InvalidOrigin(v)),
                        _ => return Err(WireError::AttributeLength(code)),
                    });
                }
                AS_PATH => {
                    expect(TRANSITIVE)?;
                    as_path = Some(parse_as_path(value)?);
                }
                NEXT_HOP => {
                    expect(TRANSITIVE)?;
                    let nh = Ipv4Addr::from(four()?);
                    if nh.is_unspecified() || nh.is_broadcast() || nh.is_multicast() {
                        return Err(WireError::InvalidNextHop);
                    }
                    next_hop = Some(nh);
                }
                MED => {
                    expect(OPTIONAL)?;
                    med = Some(four()?);
                }
                LOCAL_PREF => {
                    expect(TRANSITIVE)?;
                    local_pref = Some(four()?);
                }
                _ if flags & OPTIONAL == 0 => {
                    return Err(WireError::UnrecognizedWellKnownAttribute(code))
                }
                _ => other.push(RawAttribute {
                    flags: flags & !EXTENDED,
                    type_code: code,
                    value: value.to_vec(),
                }),
            }
        }
        Ok(PathAttributes {
            origin: origin.ok_or(WireError::MissingWellKnownAttribute(ORIGIN))?,
            as_path: as_path.ok_or(WireError::MissingWellKnownAttribute(AS_PATH))?,
            next_hop: next_hop.ok_or(WireError::MissingWellKnownAttribute(NEXT_HOP))?,
            med,
            local_pref,
            other,
        })
    }
}

/// AS_SEQUENCE segments of 4-octet ASNs, concatenated.
fn parse_as_path(value: &[u8]) -> Result<Vec<u32>, AsPathError> {
    let mut r = Reader::new(value, "AS_PATH");
    let mut path = Vec::new();
    while !r.is_empty() {
        let kind = r.u8().map_err(|_| AsPathError::Overrun)?;
        let count = r.u8().map_err(|_| AsPathError::Overrun)? as usize;
        match kind {
            AS_SEQUENCE => {}
            AS_SET => return Err(AsPathError::AsSet),
            t => return Err(AsPathError::SegmentType(t)),
        }
        if count == 0 {
            return Err(AsPathError::EmptySegment);
        }
        for _ in 0..count {
            path.push(r.u32().map_err(|_| AsPathError::Overrun)?);
        }
    }
    Ok(path)
}
