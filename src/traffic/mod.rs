//! Traffic sources: what the hosts on either side send.

pub mod tcp;
pub mod udp;

pub use udp::UdpSource;
