//! One real network interface, through pnet's AF_PACKET datalink channel:
//! a receive thread that timestamps frames and hands them to the engine, and
//! a transmit thread that writes what the engine delivers.
//!
//! Two settings matter on Linux (measured on veth pairs):
//! - `PACKET_IGNORE_OUTGOING`: a packet socket also sees the frames sent
//!   out of its own interface; eremu writes onto the interfaces it reads, so
//!   without this every bridged ARP request would come straight back.
//! - A 128 KiB read buffer: with TSO/GSO/GRO on, frames of up to 64 KiB of
//!   TCP payload appear, and pnet's default 4 KiB buffer would cut them.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use pnet_datalink::{Channel, DataLinkReceiver, DataLinkSender, NetworkInterface};

use crate::ingress::Side;
use crate::units::SimTime;

use super::{Clock, LiveError};

/// Bytes read at once: a 64 KiB GSO super-frame with its headers fits.
const READ_BUFFER: usize = 128 * 1024;
/// Kernel receive buffer per socket, so that bursts wait rather than drop
/// while the engine thread is busy.
const SOCKET_BUFFER: libc::c_int = 8 * 1024 * 1024;
/// How often a blocked receive thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// A frame read from an interface, stamped with the virtual time it arrived.
pub type Arrival = (Side, SimTime, Vec<u8>);

/// Frames written and write errors of one interface.
#[derive(Debug, Default)]
pub struct TxStats {
    pub written: AtomicU64,
    pub errors: AtomicU64,
}

/// The channel that feeds an interface's transmit thread, and its threads.
pub type Spawned = (Sender<Vec<u8>>, Vec<std::thread::JoinHandle<()>>);

/// An open interface's two halves.
pub struct Port {
    pub name: String,
    rx: Box<dyn DataLinkReceiver>,
    tx: Box<dyn DataLinkSender>,
}

/// Opens `name` as a raw packet socket that ignores its own transmissions.
pub fn open(name: &str) -> Result<Port, LiveError> {
    let interfaces = pnet_datalink::interfaces();
    let Some(iface) = interfaces.iter().find(|i| i.name == name) else {
        let available: Vec<String> = interfaces.iter().map(|i| i.name.clone()).collect();
        return Err(LiveError::NoInterface {
            name: name.to_string(),
            available: available.join(", "),
        });
    };
    open_interface(iface)
}

/// Opens the packet socket and pnet's channel on `iface`.
fn open_interface(iface: &NetworkInterface) -> Result<Port, LiveError> {
    let name = &iface.name;
    let fd = packet_socket(iface).map_err(|source| LiveError::Open {
        name: name.to_string(),
        source,
    })?;
    let config = pnet_datalink::Config {
        read_buffer_size: READ_BUFFER,
        write_buffer_size: READ_BUFFER,
        read_timeout: Some(POLL),
        promiscuous: true,
        // pnet owns it from here: it closes it on each of its own failures
        // (bind, membership, non-blocking), and its channel closes it on
        // drop (tested below).
        socket_fd: Some(fd.into_raw_fd()),
        ..Default::default()
    };
    match pnet_datalink::channel(iface, config) {
        Ok(Channel::Ethernet(tx, rx)) => Ok(Port {
            name: name.to_string(),
            rx,
            tx,
        }),
        Ok(_) => Err(LiveError::Open {
            name: name.to_string(),
            source: io::Error::other("not an Ethernet channel"),
        }),
        Err(source) => Err(LiveError::Open {
            name: name.to_string(),
            source,
        }),
    }
}

/// `socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)` with the options above; pnet
/// binds it to the interface.
fn packet_socket(_iface: &NetworkInterface) -> io::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
    // SAFETY: plain socket(2) call; the result is checked.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto) };
    if raw < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::PermissionDenied {
            return Err(io::Error::new(
                e.kind(),
                format!("{e}: live mode needs root or CAP_NET_RAW"),
            ));
        }
        return Err(e);
    }
    // SAFETY: a descriptor socket(2) just returned, owned by nothing else;
    // dropping it closes it, on every error path below.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let set = |level, option, value: libc::c_int| -> io::Result<()> {
        // SAFETY: setsockopt(2) on our own descriptor with a c_int value.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                option,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    set(libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1)?;
    // FORCE needs CAP_NET_ADMIN; without it the plain option caps at rmem_max.
    set(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, SOCKET_BUFFER)
        .or_else(|_| set(libc::SOL_SOCKET, libc::SO_RCVBUF, SOCKET_BUFFER))?;
    Ok(fd)
}

impl Port {
    /// Starts the receive and transmit threads. Received frames go to
    /// `arrivals`; frames sent on the returned channel are written out.
    pub fn spawn(
        self,
        side: Side,
        clock: Clock,
        arrivals: Sender<Arrival>,
        stop: Arc<AtomicBool>,
        stats: Arc<TxStats>,
    ) -> io::Result<Spawned> {
        let Port {
            name,
            mut rx,
            mut tx,
        } = self;
        let (out_tx, out_rx): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = crossbeam_channel::unbounded();
        let reader = std::thread::Builder::new()
            .name(format!("eremu-rx-{name}"))
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match rx.next() {
                        Ok(frame) => {
                            let t = clock.now();
                            if arrivals.send((side, t, frame.to_vec())).is_err() {
                                return;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => std::thread::sleep(POLL),
                    }
                }
            })?;
        let writer = std::thread::Builder::new()
            .name(format!("eremu-tx-{name}"))
            .spawn(move || {
                // Ends when the engine drops its sender.
                for frame in out_rx {
                    match tx.send_to(&frame, None) {
                        Some(Ok(())) => stats.written.fetch_add(1, Ordering::Relaxed),
                        _ => stats.errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })?;
        Ok((out_tx, vec![reader, writer]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's descriptors that are packet sockets: the inodes in
    /// `/proc/net/packet` (the namespace's packet sockets) that an entry of
    /// `/proc/self/fd` links to. No other test of this binary opens one.
    fn own_packet_sockets() -> usize {
        let table = std::fs::read_to_string("/proc/net/packet").unwrap_or_default();
        let inodes: Vec<String> = table
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().last())
            .map(|i| format!("socket:[{i}]"))
            .collect();
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str()))
            .count()
    }

    #[test]
    fn a_channel_that_cannot_open_leaves_no_socket_open() {
        // No interface has this index: binding to it fails (ENODEV) after
        // the socket was made (as root; without CAP_NET_RAW the socket is
        // refused first, and nothing can leak either).
        let ghost = NetworkInterface {
            name: "eremu-ghost".into(),
            description: String::new(),
            index: 0x7fff_fff0,
            mac: None,
            ips: Vec::new(),
            flags: 0,
        };
        let before = own_packet_sockets();
        for _ in 0..3 {
            assert!(open_interface(&ghost).is_err());
        }
        assert_eq!(own_packet_sockets(), before);
    }
}
