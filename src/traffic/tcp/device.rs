//! The virtual NIC under a smoltcp interface: two in-memory frame queues, and
//! a local responder that answers the host's ARP requests and IPv6 Neighbor
//! Solicitations with the configured next-hop MAC.
//!
//! Why a responder: smoltcp offers no public way to pre-fill its neighbor
//! cache, and its entries expire after 60 s. Answering inside the device
//! (proxy ARP, as a virtual switch does) means address resolution costs no
//! virtual time and no frame ever reaches the modeled network, whenever and
//! however often smoltcp asks. Every frame that does leave is IPv4 or IPv6
//! addressed host MAC -> next-hop MAC.

use std::collections::VecDeque;

use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr, NdiscNeighborFlags,
    NdiscRepr,
};

/// Ethernet frames shorter than this (without FCS) are padded with zeros, as
/// a NIC does before putting them on the wire.
pub const MIN_FRAME_LEN: usize = 60;

/// An Ethernet device whose wire is a pair of queues.
#[derive(Debug)]
pub struct VirtualDevice {
    /// Frames delivered to the host, oldest first.
    pub rx: VecDeque<Vec<u8>>,
    /// Frames the host sent, oldest first.
    pub tx: VecDeque<Vec<u8>>,
    /// Largest frame, Ethernet header included, FCS excluded (smoltcp's
    /// `max_transmission_unit`). The MSS a SYN announces follows from it.
    mtu: usize,
    /// MAC of the router the host sends to: the answer to every resolution.
    next_hop: EthernetAddress,
}

impl VirtualDevice {
    pub fn new(mtu: usize, next_hop: EthernetAddress) -> Self {
        VirtualDevice {
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            mtu,
            next_hop,
        }
    }

    /// Handles one frame the host emitted: resolution requests are answered
    /// into `rx`, everything else goes to `tx`, padded to 60 bytes.
    fn emit(&mut self, mut frame: Vec<u8>) {
        if let Some(reply) = resolve(&frame, self.next_hop) {
            self.rx.push_back(reply);
            return;
        }
        if frame.len() < MIN_FRAME_LEN {
            frame.resize(MIN_FRAME_LEN, 0);
        }
        self.tx.push_back(frame);
    }
}

/// The reply to an ARP request or a Neighbor Solicitation in `frame`, naming
/// `mac` as the owner of the requested address; `None` for other frames.
fn resolve(frame: &[u8], mac: EthernetAddress) -> Option<Vec<u8>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let host_mac = eth.src_addr();
    match eth.ethertype() {
        EthernetProtocol::Arp => {
            let arp = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).ok()?).ok()?;
            let ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Request,
                source_hardware_addr,
                source_protocol_addr,
                target_protocol_addr,
                ..
            } = arp
            else {
                return None;
            };
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: mac,
                source_protocol_addr: target_protocol_addr,
                target_hardware_addr: source_hardware_addr,
                target_protocol_addr: source_protocol_addr,
            };
            let mut out = vec![0; 14 + reply.buffer_len()];
            let mut f = EthernetFrame::new_unchecked(&mut out[..]);
            EthernetRepr {
                src_addr: mac,
                dst_addr: host_mac,
                ethertype: EthernetProtocol::Arp,
            }
            .emit(&mut f);
            reply.emit(&mut ArpPacket::new_unchecked(f.payload_mut()));
            Some(out)
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            let ip_repr = Ipv6Repr::parse(&ip).ok()?;
            if ip_repr.next_header != IpProtocol::Icmpv6 {
                return None;
            }
            let caps = ChecksumCapabilities::default();
            let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
            let Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. }) =
                Icmpv6Repr::parse(&ip_repr.src_addr, &ip_repr.dst_addr, &icmp, &caps).ok()?
            else {
                return None;
            };
            let advert = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
                flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
                target_addr,
                lladdr: Some(mac.into()),
            });
            let reply_ip = Ipv6Repr {
                src_addr: target_addr,
                dst_addr: ip_repr.src_addr,
                next_header: IpProtocol::Icmpv6,
                payload_len: advert.buffer_len(),
                hop_limit: 255,
            };
            let mut out = vec![0; 14 + reply_ip.buffer_len() + advert.buffer_len()];
            let mut f = EthernetFrame::new_unchecked(&mut out[..]);
            EthernetRepr {
                src_addr: mac,
                dst_addr: host_mac,
                ethertype: EthernetProtocol::Ipv6,
            }
            .emit(&mut f);
            let mut p = Ipv6Packet::new_unchecked(f.payload_mut());
            reply_ip.emit(&mut p);
            advert.emit(
                &target_addr,
                &ip_repr.src_addr,
                &mut Icmpv6Packet::new_unchecked(p.payload_mut()),
                &caps,
            );
            Some(out)
        }
        _ => None,
    }
}

impl Device for VirtualDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((RxToken(frame), TxToken(self)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        // The queue is unbounded: the modeled network, not the NIC, queues.
        Some(TxToken(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu;
        // Checksums are computed and verified in software: the frames that
        // leave are valid on the wire, and corrupted ones are rejected.
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}

pub struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

pub struct TxToken<'a>(&'a mut VirtualDevice);

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.emit(frame);
        r
    }
}
