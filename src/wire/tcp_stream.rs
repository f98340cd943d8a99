//! Just enough TCP to put a byte stream (BGP) into a capture: Ethernet +
//! IPv4 + TCP frames whose sequence and acknowledgment numbers are
//! consistent, so that Wireshark's `tcp.analysis` finds nothing to flag.
//!
//! There is no retransmission, window or congestion logic: the emulator
//! either delivers a session's bytes in order or fails the session, so the
//! capture only ever shows a clean stream. Headers and checksums come from
//! `etherparse`. Each `TcpStream` is one connection seen from the wire,
//! with both directions: a client (the side that sends SYN) and a server
//! (the listener, port 179 for BGP).

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;

/// One end of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// Which end sends a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// Why a frame could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TcpStreamError {
    #[error("building the frame: {0}")]
    Build(#[from] etherparse::err::packet::BuildWriteError),
    #[error("the {0:?} side already sent FIN")]
    Closed(Side),
    #[error("the handshake has not been made")]
    NotConnected,
}

#[derive(Debug, Clone)]
struct Half {
    ep: Endpoint,
    /// The sequence number of the next byte (or SYN/FIN) this side sends.
    next_seq: u32,
    /// The acknowledgment number this side last sent.
    last_ack: Option<u32>,
    fin_sent: bool,
}

#[derive(Clone, Copy)]
struct Flags {
    syn: bool,
    ack: bool,
    psh: bool,
    fin: bool,
}

/// Frames of one TCP connection, in the order they are produced.
#[derive(Debug, Clone)]
pub struct TcpStream {
    client: Half,
    server: Half,
    connected: bool,
    /// IPv4 TTL. Default 255: directly connected BGP peers commonly use
    /// the TTL security check (RFC 5082), and Wireshark flags a TTL below 5.
    pub ttl: u8,
    /// Advertised window, constant (no scaling): the model never fills it.
    pub window: u16,
    /// Largest payload per segment; longer data is split. Default 1460
    /// (a 1500-byte IP MTU).
    pub mss: usize,
}

impl TcpStream {
    /// A connection not yet opened; `*_isn` are the initial sequence numbers.
    pub fn new(client: Endpoint, server: Endpoint, client_isn: u32, server_isn: u32) -> Self {
        let half = |ep, isn| Half {
            ep,
            next_seq: isn,
            last_ack: None,
            fin_sent: false,
        };
        TcpStream {
            client: half(client, client_isn),
            server: half(server, server_isn),
            connected: false,
            ttl: 255,
            window: 65_535,
            mss: 1460,
        }
    }

    fn halves(&mut self, from: Side) -> (&mut Half, &mut Half) {
        match from {
            Side::Client => (&mut self.client, &mut self.server),
            Side::Server => (&mut self.server, &mut self.client),
        }
    }

    /// The sequence number `side` sends next.
    pub fn next_seq(&self, side: Side) -> u32 {
        match side {
            Side::Client => self.client.next_seq,
            Side::Server => self.server.next_seq,
        }
    }

    /// One Ethernet frame; advances the sender's sequence number by the
    /// payload plus one for SYN and for FIN.
    fn segment(&mut self, from: Side, f: Flags, payload: &[u8]) -> Result<Vec<u8>, TcpStreamError> {
        let (ttl, window) = (self.ttl, self.window);
        let (me, peer) = self.halves(from);
        let mut b = PacketBuilder::ethernet2(me.ep.mac, peer.ep.mac)
            .ipv4(me.ep.ip.octets(), peer.ep.ip.octets(), ttl)
            .tcp(me.ep.port, peer.ep.port, me.next_seq, window);
        if f.syn {
            b = b.syn();
        }
        if f.ack {
            b = b.ack(peer.next_seq);
            me.last_ack = Some(peer.next_seq);
        }
        if f.psh {
            b = b.psh();
        }
        if f.fin {
            b = b.fin();
        }
        let mut frame = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut frame, payload)?;
        let used = payload.len() as u32 + f.syn as u32 + f.fin as u32;
        me.next_seq = me.next_seq.wrapping_add(used);
        Ok(frame)
    }

    /// SYN, SYN-ACK and ACK.
    pub fn handshake(&mut self) -> Result<[Vec<u8>; 3], TcpStreamError> {
        let flags = |syn, ack| Flags {
            syn,
            ack,
            psh: false,
            fin: false,
        };
        let syn = self.segment(Side::Client, flags(true, false), &[])?;
        let syn_ack = self.segment(Side::Server, flags(true, true), &[])?;
        let ack = self.segment(Side::Client, flags(false, true), &[])?;
        self.connected = true;
        Ok([syn, syn_ack, ack])
    }

    /// Data from `from`, in segments of at most `mss` bytes, each
    /// acknowledging everything the other side has sent.
    pub fn data(&mut self, from: Side, payload: &[u8]) -> Result<Vec<Vec<u8>>, TcpStreamError> {
        self.check_open(from)?;
        let flags = Flags {
            syn: false,
            ack: true,
            psh: true,
            fin: false,
        };
        payload
            .chunks(self.mss.max(1))
            .map(|chunk| self.segment(from, flags, chunk))
            .collect()
    }

    /// A pure ACK from `from`, or `None` if it has nothing new to
    /// acknowledge (a repeated ACK would read as a duplicate ACK).
    pub fn ack(&mut self, from: Side) -> Result<Option<Vec<u8>>, TcpStreamError> {
        if !self.connected {
            return Err(TcpStreamError::NotConnected);
        }
        let (me, peer) = self.halves(from);
        if me.last_ack == Some(peer.next_seq) {
            return Ok(None);
        }
        let flags = Flags {
            syn: false,
            ack: true,
            psh: false,
            fin: false,
        };
        self.segment(from, flags, &[]).map(Some)
    }

    /// FIN (with ACK) from `from`; the other side answers with its own
    /// [`TcpStream::fin`] or an [`TcpStream::ack`].
    pub fn fin(&mut self, from: Side) -> Result<Vec<u8>, TcpStreamError> {
        self.check_open(from)?;
        let flags = Flags {
            syn: false,
            ack: true,
            psh: false,
            fin: true,
        };
        let frame = self.segment(from, flags, &[])?;
        self.halves(from).0.fin_sent = true;
        Ok(frame)
    }

    fn check_open(&mut self, from: Side) -> Result<(), TcpStreamError> {
        if !self.connected {
            return Err(TcpStreamError::NotConnected);
        }
        if self.halves(from).0.fin_sent {
            return Err(TcpStreamError::Closed(from));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use etherparse::{SlicedPacket, TransportSlice};

    use super::*;

    fn stream() -> TcpStream {
        let ce = Endpoint {
            mac: [2, 0, 0, 0, 0, 1],
            ip: Ipv4Addr::new(192, 168, 0, 1),
            port: 50_000,
        };
        let msee = Endpoint {
            mac: [2, 0, 0, 0, 0, 2],
            ip: Ipv4Addr::new(192, 168, 0, 2),
            port: 179,
        };
        // Near the wrap, so that wrapping arithmetic is exercised.
        TcpStream::new(ce, msee, u32::MAX - 1, 1_000)
    }

    /// (seq, ack if ACK set, syn, fin, payload length)
    fn tcp(frame: &[u8]) -> (u32, Option<u32>, bool, bool, usize) {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(TransportSlice::Tcp(t)) = p.transport else {
            panic!("TCP expected")
        };
        let ack = t.ack().then(|| t.acknowledgment_number());
        (
            t.sequence_number(),
            ack,
            t.syn(),
            t.fin(),
            t.payload().len(),
        )
    }

    #[test]
    fn sequence_numbers_are_consistent() {
        let mut s = stream();
        assert!(matches!(
            s.data(Side::Client, b"x"),
            Err(TcpStreamError::NotConnected)
        ));
        let [syn, syn_ack, ack] = s.handshake().unwrap();
        assert_eq!(tcp(&syn), (u32::MAX - 1, None, true, false, 0));
        assert_eq!(tcp(&syn_ack), (1_000, Some(u32::MAX), true, false, 0));
        assert_eq!(tcp(&ack), (u32::MAX, Some(1_001), false, false, 0));
        // Nothing new to acknowledge yet.
        assert!(s.ack(Side::Server).unwrap().is_none());
        // 3000 bytes: three segments of at most 1460 bytes, crossing the wrap.
        let segs = s.data(Side::Client, &[0u8; 3000]).unwrap();
        let parsed: Vec<_> = segs.iter().map(|f| tcp(f)).collect();
        assert_eq!(
            parsed,
            [
                (u32::MAX, Some(1_001), false, false, 1460),
                (1459, Some(1_001), false, false, 1460),
                (2919, Some(1_001), false, false, 80),
            ]
        );
        let a = s.ack(Side::Server).unwrap().unwrap();
        assert_eq!(tcp(&a), (1_001, Some(2999), false, false, 0));
        assert!(s.ack(Side::Server).unwrap().is_none());
        let fin = s.fin(Side::Client).unwrap();
        assert_eq!(tcp(&fin), (2999, Some(1_001), false, true, 0));
        assert!(matches!(
            s.data(Side::Client, b"x"),
            Err(TcpStreamError::Closed(Side::Client))
        ));
        let fin2 = s.fin(Side::Server).unwrap();
        assert_eq!(tcp(&fin2), (1_001, Some(3000), false, true, 0));
        let last = s.ack(Side::Client).unwrap().unwrap();
        assert_eq!(tcp(&last), (3000, Some(1_002), false, false, 0));
    }

    #[test]
    fn frames_carry_correct_checksums() {
        let mut s = stream();
        let frames = s.handshake().unwrap();
        let data = s.data(Side::Server, b"hello").unwrap();
        for f in frames.iter().chain(&data) {
            let p = SlicedPacket::from_ethernet(f).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
                panic!("IPv4 expected")
            };
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum());
            assert_eq!(h.time_to_live, 255);
            let Some(TransportSlice::Tcp(t)) = p.transport else {
                panic!()
            };
            let sum = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
            assert_eq!(t.checksum(), sum);
        }
    }
}
