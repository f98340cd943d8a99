//! Framing: the bounds-checked reader every parser uses, a header view,
//! and the de-framer that cuts a TCP byte stream into messages.

use super::{field, Repr, WireError, HEADER_LEN, MAX_MESSAGE_LEN};

/// A bounds-checked reader: every read of untrusted bytes goes through it,
/// which is what makes parsing panic-free.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated(self.what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A read-only view of a message header over any buffer.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the marker, the length field against [`HEADER_LEN`],
    /// [`MAX_MESSAGE_LEN`] and the buffer; after `Ok` no accessor panics.
    /// The buffer may hold more than one message ([`Packet::message_len`] bounds this one).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated("header"));
        }
        if b[field::MARKER].iter().any(|&x| x != 0xff) {
            return Err(WireError::BadMarker);
        }
        let len = u16::from_be_bytes([b[16], b[17]]);
        if (len as usize) < HEADER_LEN || len as usize > MAX_MESSAGE_LEN {
            return Err(WireError::BadLength(len));
        }
        if b.len() < len as usize {
            return Err(WireError::Truncated("message"));
        }
        Ok(Packet { buffer })
    }

    /// The whole message length, header included, in bytes.
    pub fn message_len(&self) -> usize {
        let b = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([b[0], b[1]]) as usize
    }
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    /// The bytes after the header, up to the length field.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.message_len()]
    }
}

/// Cuts a TCP byte stream into BGP messages, whatever the segmentation.
///
/// After an error the stream cannot be re-synchronized (BGP has no resync
/// point): the de-framer yields that error once and nothing afterwards; the
/// caller sends [`WireError::notification`] and closes the connection.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
    failed: bool,
}

impl Deframer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes held that do not yet make a whole message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `None` until one has fully arrived.
    pub fn next_message(&mut self) -> Option<Result<Repr, WireError>> {
        if self.failed || self.buf.len() < HEADER_LEN {
            return None;
        }
        let res = match Packet::new_checked(&self.buf[..]) {
            Err(WireError::Truncated(_)) => return None,
            Err(e) => Err(e),
            Ok(pkt) => {
                let len = pkt.message_len();
                let r = Repr::parse(&self.buf[..len]);
                self.buf.drain(..len);
                r
            }
        };
        if res.is_err() {
            self.failed = true;
            self.buf = Vec::new();
        }
        Some(res)
    }
}
