//! Traffic sources: what the hosts on either side send.

mod udp;

pub use udp::UdpSource;
