//! What travels through the model: a packet's metadata. Frames are bytes on a
//! link; the model needs only their lengths and the flow's identity.

use crate::units::SimTime;

/// Index of a flow in the scenario's `flows` list.
pub type FlowId = u32;

/// A packet in flight. Small and `Copy`, so queues move it without allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub flow: FlowId,
    /// Per-flow sequence number, from 0.
    pub seq: u64,
    /// When the source sent it.
    pub sent: SimTime,
    /// Length of the (inner) IP packet in bytes.
    pub ip_len: u32,
    /// Bytes the current link counts: the Ethernet frame on circuit links, the
    /// outer IP packet on the VPN path.
    pub wire_len: u32,
    /// Per-flow 5-tuple hash for ECMP.
    pub hash: u32,
    /// When it entered the current link's queue.
    pub enqueued: SimTime,
    /// ESP sequence number, assigned when the packet enters the tunnel.
    pub esp_seq: u32,
    /// The frame's bytes in the engine's frame store, for packets that carry
    /// real bytes (TCP segments); [`NO_FRAME`] for synthetic ones.
    pub frame: u32,
    /// Travels against its flow's direction (a TCP server's segments).
    pub reverse: bool,
}

/// `Packet::frame` of a packet without stored bytes.
pub const NO_FRAME: u32 = u32::MAX;

impl Packet {
    /// Packet `seq` of `flow`, an IP packet of `ip_len` bytes sent and
    /// enqueued at `sent`: no stored frame, hash 0, no ESP sequence number,
    /// in its flow's direction, and `ip_len` bytes on the wire until a link
    /// frames it. Other fields are set with struct update syntax.
    #[inline(always)]
    pub const fn new(flow: FlowId, seq: u64, sent: SimTime, ip_len: u32) -> Packet {
        Packet {
            flow,
            seq,
            sent,
            ip_len,
            wire_len: ip_len,
            hash: 0,
            enqueued: sent,
            esp_seq: 0,
            frame: NO_FRAME,
            reverse: false,
        }
    }
}

/// Why a packet was lost. Every drop has exactly one cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropCause {
    /// Above the circuit bandwidth at the MSEE's policer.
    Policer,
    /// Egress buffer full.
    Queue,
    /// In a queue or on the wire of a link that went down.
    LinkDown,
    /// No route to the destination.
    NoRoute,
    /// Larger than the path's MTU.
    Mtu,
    /// Random loss on the Internet path of the VPN.
    Loss,
    /// Above the ExpressRoute gateway's bits or packets per second.
    Gateway,
    /// Above the VPN gateway's throughput (its shaping queue overflowed).
    VpnGateway,
    /// On a path that failed silently (or whose router failed), before the
    /// control plane noticed.
    BlackHole,
}

impl DropCause {
    pub const ALL: [DropCause; 9] = [
        DropCause::Policer,
        DropCause::Queue,
        DropCause::LinkDown,
        DropCause::NoRoute,
        DropCause::Mtu,
        DropCause::Loss,
        DropCause::Gateway,
        DropCause::VpnGateway,
        DropCause::BlackHole,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropCause::Policer => "policer",
            DropCause::Queue => "queue",
            DropCause::LinkDown => "link-down",
            DropCause::NoRoute => "no-route",
            DropCause::Mtu => "mtu",
            DropCause::Loss => "loss",
            DropCause::Gateway => "gateway",
            DropCause::VpnGateway => "vpn-gateway",
            DropCause::BlackHole => "black-hole",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The bytes of packets that carry real frames (TCP segments), by id. Slots
/// are reused, so memory follows the packets in flight.
#[derive(Debug, Default)]
pub struct FrameStore {
    bufs: Vec<Vec<u8>>,
    free: Vec<u32>,
}

impl FrameStore {
    pub fn insert(&mut self, bytes: Vec<u8>) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.bufs[id as usize] = bytes;
                id
            }
            None => {
                self.bufs.push(bytes);
                (self.bufs.len() - 1) as u32
            }
        }
    }

    pub fn get(&self, id: u32) -> &[u8] {
        &self.bufs[id as usize]
    }

    /// Takes the bytes out and frees the slot.
    pub fn take(&mut self, id: u32) -> Vec<u8> {
        self.free.push(id);
        std::mem::take(&mut self.bufs[id as usize])
    }

    pub fn free(&mut self, id: u32) {
        self.take(id);
    }
}
