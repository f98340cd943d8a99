//! One host: a smoltcp interface, its one TCP socket and its virtual device.

use std::net::IpAddr;

use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

use super::config::{CongestionControl, TcpHost};
use super::device::VirtualDevice;

pub(super) struct Endpoint {
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub handle: SocketHandle,
    pub dev: VirtualDevice,
}

/// Settings shared by both hosts.
pub(super) struct Common {
    pub frame_mtu: usize,
    pub buffer: usize,
    pub congestion: CongestionControl,
    pub nagle: bool,
}

impl Endpoint {
    pub fn new(host: &TcpHost, common: &Common, seed: u64, now: Instant) -> Self {
        let mut dev = VirtualDevice::new(common.frame_mtu, EthernetAddress(host.gw_mac));
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(host.mac)));
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut dev, now);
        // Prefix length 0: every destination is on-link, so smoltcp resolves
        // the peer's address itself, and the device answers with the next
        // hop's MAC (proxy ARP). No routes or gateway address are needed.
        iface.update_ip_addrs(|addrs| {
            let cidr = IpCidr::new(IpAddress::from(host.ip), 0);
            addrs.push(cidr).expect("one address fits");
        });
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; common.buffer]),
            tcp::SocketBuffer::new(vec![0; common.buffer]),
        );
        socket.set_congestion_control(common.congestion.to_smoltcp());
        socket.set_nagle_enabled(common.nagle);
        let mut sockets = SocketSet::new(Vec::new());
        let handle = sockets.add(socket);
        Endpoint {
            iface,
            sockets,
            handle,
            dev,
        }
    }

    pub fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut(self.handle)
    }

    pub fn socket_ref(&self) -> &tcp::Socket<'static> {
        self.sockets.get(self.handle)
    }

    /// Starts listening on `port`.
    pub fn listen(&mut self, ip: IpAddr, port: u16) {
        let ep = smoltcp::wire::IpListenEndpoint {
            addr: Some(IpAddress::from(ip)),
            port,
        };
        self.socket()
            .listen(ep)
            .expect("validated: nonzero port, closed socket");
    }

    /// Connects from `local` to `remote`.
    pub fn connect(&mut self, local: (IpAddr, u16), remote: (IpAddr, u16)) {
        let cx = self.iface.context();
        let socket = self.sockets.get_mut::<tcp::Socket>(self.handle);
        let local = smoltcp::wire::IpListenEndpoint {
            addr: Some(IpAddress::from(local.0)),
            port: local.1,
        };
        let remote = smoltcp::wire::IpEndpoint::new(IpAddress::from(remote.0), remote.1);
        socket
            .connect(cx, remote, local)
            .expect("validated: unicast addresses, nonzero ports, closed socket");
    }

    /// Processes every received frame and sends what the socket wants to,
    /// until the interface is quiet (address resolution, answered inside the
    /// device, takes one more round). True if any socket's state may have
    /// changed.
    pub fn poll(&mut self, t: Instant) -> bool {
        let mut changed = false;
        loop {
            let r = self.iface.poll(t, &mut self.dev, &mut self.sockets);
            changed |= r == PollResult::SocketStateChanged;
            if self.dev.rx.is_empty() {
                return changed;
            }
        }
    }

    /// When smoltcp wants to be polled next (its soft deadline).
    pub fn poll_at(&mut self, t: Instant) -> Option<Instant> {
        self.iface.poll_at(t, &self.sockets)
    }
}
