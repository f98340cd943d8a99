//! Wire formats: the sizes and (with the frame builders) the bytes of what
//! crosses a modeled link. Nothing here knows about simulation.

pub mod bfd;
pub mod bgp;
pub mod ethernet;
pub mod tcp_stream;
