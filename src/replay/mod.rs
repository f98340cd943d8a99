//! Replaying captured traffic: reading pcap and pcapng files as Ethernet II frames.

mod drive;
pub mod reader;

pub use drive::{
    run, ReplayOptions, ReplayRunError, Replayed, Speed, DEFAULT_MAX_FLOWS, DRAIN, LONGEST,
    MAX_FRAME_LEN,
};
