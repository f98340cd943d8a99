//! The eremu payload: what every synthetic UDP packet carries first, so that a
//! capture alone tells which flow a packet belongs to, its sequence number and
//! when it was sent (loss and one-way latency from the capture alone).
//!
//! Layout, network byte order:
//!
//! ```text
//! 0      4            12            20
//! | flow | sequence   | sent (ns)   | zero fill to the packet's size ...
//! ```
//!
//! `flow` is the index of the flow in the scenario's `[[flows]]` list; `sent`
//! is virtual time in nanoseconds since the start of the run.

/// Bytes of the fixed part.
pub const LEN: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    pub flow: u32,
    pub seq: u64,
    pub sent_ns: u64,
}

impl Payload {
    /// Writes the payload into `buf`, which must hold at least [`LEN`] bytes;
    /// the rest of `buf` is zeroed.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0..4].copy_from_slice(&self.flow.to_be_bytes());
        buf[4..12].copy_from_slice(&self.seq.to_be_bytes());
        buf[12..20].copy_from_slice(&self.sent_ns.to_be_bytes());
        buf[LEN..].fill(0);
    }

    /// Reads a payload; `None` when `buf` is shorter than [`LEN`].
    pub fn parse(buf: &[u8]) -> Option<Payload> {
        let b = buf.get(..LEN)?;
        Some(Payload {
            flow: u32::from_be_bytes(b[0..4].try_into().ok()?),
            seq: u64::from_be_bytes(b[4..12].try_into().ok()?),
            sent_ns: u64::from_be_bytes(b[12..20].try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_input() {
        let p = Payload {
            flow: 3,
            seq: 0x0102_0304_0506_0708,
            sent_ns: 4_000_000_123,
        };
        let mut buf = [0xaa; 32];
        p.emit(&mut buf);
        assert_eq!(&buf[..4], &[0, 0, 0, 3]);
        assert_eq!(buf[4], 1);
        assert!(buf[LEN..].iter().all(|&b| b == 0));
        assert_eq!(Payload::parse(&buf), Some(p));
        assert_eq!(Payload::parse(&buf[..19]), None);
    }
}
