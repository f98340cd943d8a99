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
