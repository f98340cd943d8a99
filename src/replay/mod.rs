//! Replaying captured traffic: reading pcap and pcapng files as Ethernet II frames.

pub mod reader;
