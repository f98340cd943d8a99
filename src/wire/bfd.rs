//! BFD control packets (RFC 5880 section 4.1), as carried single-hop in UDP
//! to port 3784 (RFC 5881).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! ```
//!
//! Contracts: [`Repr::parse`] never panics and applies the reception checks
//! of RFC 5880 6.8.6 that concern the packet alone (version, length, detect
//! multiplier, M bit, discriminators); the checks against a session live in
//! `model::bfd`. Authentication is not modeled: a packet with the A bit is
//! rejected. Intervals are in microseconds, as on the wire.

/// UDP destination port of single-hop BFD control packets (RFC 5881 4).
pub const PORT: u16 = 3784;
/// Source ports must be in 49152..=65535 (RFC 5881 4).
pub const SOURCE_PORT_MIN: u16 = 49152;
/// Bytes of a control packet without authentication.
pub const PACKET_LEN: usize = 24;
pub const VERSION: u8 = 1;

mod field {
    use std::ops::Range;
    pub const VERS_DIAG: usize = 0;
    pub const STA_FLAGS: usize = 1;
    pub const DETECT_MULT: usize = 2;
    pub const LENGTH: usize = 3;
    pub const MY_DISC: Range<usize> = 4..8;
    pub const YOUR_DISC: Range<usize> = 8..12;
    pub const DESIRED_MIN_TX: Range<usize> = 12..16;
    pub const REQUIRED_MIN_RX: Range<usize> = 16..20;
    pub const REQUIRED_MIN_ECHO_RX: Range<usize> = 20..24;
}

mod flag {
    pub const POLL: u8 = 0x20;
    pub const FINAL: u8 = 0x10;
    pub const CPI: u8 = 0x08;
    pub const AUTH: u8 = 0x04;
    pub const DEMAND: u8 = 0x02;
    pub const MULTIPOINT: u8 = 0x01;
}

/// Session state (RFC 5880 4.1, "Sta").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    AdminDown = 0,
    Down = 1,
    Init = 2,
    Up = 3,
}

impl State {
    fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }
}

/// Why the sender's session last changed state (RFC 5880 4.1, "Diag").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Diagnostic {
    None,
    ControlDetectionTimeExpired,
    EchoFunctionFailed,
    NeighborSignaledSessionDown,
    ForwardingPlaneReset,
    PathDown,
    ConcatenatedPathDown,
    AdministrativelyDown,
    ReverseConcatenatedPathDown,
    /// 9-31, reserved; kept so that it round-trips.
    Unknown(u8),
}

impl From<u8> for Diagnostic {
    fn from(v: u8) -> Self {
        use Diagnostic::*;
        match v & 0x1f {
            0 => None,
            1 => ControlDetectionTimeExpired,
            2 => EchoFunctionFailed,
            3 => NeighborSignaledSessionDown,
            4 => ForwardingPlaneReset,
            5 => PathDown,
            6 => ConcatenatedPathDown,
            7 => AdministrativelyDown,
            8 => ReverseConcatenatedPathDown,
            n => Unknown(n),
        }
    }
}

impl From<Diagnostic> for u8 {
    fn from(d: Diagnostic) -> u8 {
        use Diagnostic::*;
        match d {
            None => 0,
            ControlDetectionTimeExpired => 1,
            EchoFunctionFailed => 2,
            NeighborSignaledSessionDown => 3,
            ForwardingPlaneReset => 4,
            PathDown => 5,
            ConcatenatedPathDown => 6,
            AdministrativelyDown => 7,
            ReverseConcatenatedPathDown => 8,
            Unknown(n) => n & 0x1f,
        }
    }
}

/// Why bytes are not an acceptable BFD control packet (RFC 5880 6.8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("packet is {0} bytes, shorter than a control packet")]
    Truncated(usize),
    #[error("unsupported BFD version {0}")]
    UnsupportedVersion(u8),
    #[error("length field {0} is below the minimum or beyond the packet")]
    BadLength(u8),
    #[error("authentication is not supported")]
    Authentication,
    #[error("detect multiplier is zero")]
    ZeroDetectMult,
    #[error("multipoint bit is set")]
    Multipoint,
    #[error("my discriminator is zero")]
    ZeroMyDiscriminator,
    #[error("your discriminator is zero in state {0:?}")]
    ZeroYourDiscriminator(State),
}

/// A validated BFD control packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub diag: Diagnostic,
    pub state: State,
    /// P: the sender starts a poll sequence and asks for a packet with F.
    pub poll: bool,
    /// F: the answer to a poll.
    pub final_: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub control_plane_independent: bool,
    pub demand: bool,
    pub detect_mult: u8,
    pub my_discriminator: u32,
    pub your_discriminator: u32,
    /// Microseconds.
    pub desired_min_tx_us: u32,
    /// Microseconds; 0 means "send me nothing".
    pub required_min_rx_us: u32,
    /// Microseconds; 0 means the echo function is not supported.
    pub required_min_echo_rx_us: u32,
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Repr {
    /// Parses the UDP payload of a control packet. Bytes past the length
    /// field are ignored (RFC 5880 only requires length <= payload).
    pub fn parse(b: &[u8]) -> Result<Repr, WireError> {
        if b.len() < PACKET_LEN {
            return Err(WireError::Truncated(b.len()));
        }
        let version = b[field::VERS_DIAG] >> 5;
        if version != VERSION {
            return Err(WireError::UnsupportedVersion(version));
        }
        let flags = b[field::STA_FLAGS];
        let len = b[field::LENGTH];
        let min = if flags & flag::AUTH != 0 { 26 } else { 24 };
        if (len as usize) < min || len as usize > b.len() {
            return Err(WireError::BadLength(len));
        }
        if flags & flag::AUTH != 0 {
            return Err(WireError::Authentication);
        }
        let detect_mult = b[field::DETECT_MULT];
        if detect_mult == 0 {
            return Err(WireError::ZeroDetectMult);
        }
        if flags & flag::MULTIPOINT != 0 {
            return Err(WireError::Multipoint);
        }
        let state = State::from_bits(flags >> 6);
        let my_discriminator = be32(&b[field::MY_DISC]);
        if my_discriminator == 0 {
            return Err(WireError::ZeroMyDiscriminator);
        }
        let your_discriminator = be32(&b[field::YOUR_DISC]);
        if your_discriminator == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(WireError::ZeroYourDiscriminator(state));
        }
        Ok(Repr {
            diag: Diagnostic::from(b[field::VERS_DIAG]),
            state,
            poll: flags & flag::POLL != 0,
            final_: flags & flag::FINAL != 0,
            control_plane_independent: flags & flag::CPI != 0,
            demand: flags & flag::DEMAND != 0,
            detect_mult,
            my_discriminator,
            your_discriminator,
            desired_min_tx_us: be32(&b[field::DESIRED_MIN_TX]),
            required_min_rx_us: be32(&b[field::REQUIRED_MIN_RX]),
            required_min_echo_rx_us: be32(&b[field::REQUIRED_MIN_ECHO_RX]),
        })
    }

    pub fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Appends the 24-byte packet to `buf`.
    pub fn emit(&self, buf: &mut Vec<u8>) {
        let mut flags = (self.state as u8) << 6;
        for (set, bit) in [
            (self.poll, flag::POLL),
            (self.final_, flag::FINAL),
            (self.control_plane_independent, flag::CPI),
            (self.demand, flag::DEMAND),
        ] {
            if set {
                flags |= bit;
            }
        }
        buf.extend_from_slice(&[
            VERSION << 5 | u8::from(self.diag),
            flags,
            self.detect_mult,
            PACKET_LEN as u8,
        ]);
        for v in [
            self.my_discriminator,
            self.your_discriminator,
            self.desired_min_tx_us,
            self.required_min_rx_us,
            self.required_min_echo_rx_us,
        ] {
            buf.extend_from_slice(&v.to_be_bytes());
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(PACKET_LEN);
        self.emit(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn up() -> Repr {
        Repr {
            diag: Diagnostic::None,
            state: State::Up,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 3,
            my_discriminator: 0x0102_0304,
            your_discriminator: 0x0a0b_0c0d,
            desired_min_tx_us: 300_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 0,
        }
    }

    #[test]
    fn up_packet_byte_exact() {
        // 0x20: version 1, diag 0; 0xc0: state Up, no flags; mult 3; length 24;
        // 300 ms = 300000 us = 0x000493e0.
        let bytes = [
            0x20, 0xc0, 0x03, 0x18, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0d, 0x00, 0x04,
            0x93, 0xe0, 0x00, 0x04, 0x93, 0xe0, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(Repr::parse(&bytes), Ok(up()));
        assert_eq!(up().to_bytes(), bytes);
        assert_eq!(up().buffer_len(), 24);
    }

    #[test]
    fn flags_diag_and_states_round_trip() {
        let r = Repr {
            diag: Diagnostic::ControlDetectionTimeExpired,
            state: State::Down,
            poll: true,
            control_plane_independent: true,
            your_discriminator: 0,
            desired_min_tx_us: 1_000_000,
            ..up()
        };
        let b = r.to_bytes();
        // Diag 1 in the low 5 bits, Down (1) in the top 2 bits, P and C set.
        assert_eq!(&b[..2], &[0x21, 0x40 | 0x20 | 0x08]);
        assert_eq!(Repr::parse(&b), Ok(r));
        for (state, diag) in [
            (State::AdminDown, Diagnostic::AdministrativelyDown),
            (State::Init, Diagnostic::Unknown(31)),
            (State::Up, Diagnostic::NeighborSignaledSessionDown),
        ] {
            let r = Repr {
                state,
                diag,
                final_: true,
                demand: true,
                ..up()
            };
            assert_eq!(Repr::parse(&r.to_bytes()), Ok(r));
        }
    }

    #[test]
    fn reception_checks() {
        let good = up().to_bytes();
        let with = |i: usize, v: u8| {
            let mut b = good.clone();
            b[i] = v;
            Repr::parse(&b)
        };
        assert_eq!(Repr::parse(&good[..23]), Err(WireError::Truncated(23)));
        assert_eq!(with(0, 0x40), Err(WireError::UnsupportedVersion(2)));
        assert_eq!(with(3, 23), Err(WireError::BadLength(23)));
        assert_eq!(with(3, 25), Err(WireError::BadLength(25)));
        assert_eq!(with(1, 0xc4), Err(WireError::BadLength(24)));
        assert_eq!(with(2, 0), Err(WireError::ZeroDetectMult));
        assert_eq!(with(1, 0xc1), Err(WireError::Multipoint));
        let mut b = good.clone();
        b[4..8].fill(0);
        assert_eq!(Repr::parse(&b), Err(WireError::ZeroMyDiscriminator));
        let mut b = good.clone();
        b[8..12].fill(0);
        assert_eq!(
            Repr::parse(&b),
            Err(WireError::ZeroYourDiscriminator(State::Up))
        );
        // Authenticated packet of a valid length: rejected, not modeled.
        let mut b = good.clone();
        b[1] |= 0x04;
        b[3] = 26;
        b.extend_from_slice(&[1, 2]);
        assert_eq!(Repr::parse(&b), Err(WireError::Authentication));
        // Trailing bytes beyond the length field are ignored.
        let mut b = good.clone();
        b.push(0);
        assert_eq!(Repr::parse(&b), Ok(up()));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(r) = Repr::parse(&bytes) {
                prop_assert_eq!(Repr::parse(&r.to_bytes()), Ok(r));
            }
        }
    }
}
