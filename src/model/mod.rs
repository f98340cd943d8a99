//! The model: pure state machines with no I/O and no clock. Every call takes
//! `now`; the engine alone decides what time it is.

pub mod gateway;
pub mod jitter;
pub mod link;
pub mod network;
pub mod packet;
pub mod policer;
pub mod rib;
mod ring;
pub mod vpn;

pub use network::{Network, NullTap, Place, Tap};
pub use packet::{DropCause, FlowId, FrameStore, Packet, NO_FRAME};
pub mod bfd;
pub mod bgp;
pub mod control;
