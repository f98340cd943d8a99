//! Wire formats: the sizes and (with the frame builders) the bytes of what
//! crosses a modeled link. Nothing here knows about simulation.

pub mod bfd;
pub mod bgp;
pub mod esp;
pub mod ethernet;
pub mod frame;
pub mod inspect;
pub mod offload;
pub mod payload;
pub mod tcp_stream;

pub use inspect::ip_protocol_name;
