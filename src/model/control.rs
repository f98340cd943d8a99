//! The control plane: the BGP sessions (and BFD) between the CE and each
//! MSEE, and between the CE and the VPN gateway over the tunnel, exchanging
//! real messages over the modeled links, and the routes they install.
//!
//! Each path has one adjacency with two ends: the CE (end 0) and the far
//! router (end 1: an MSEE or the VPN gateway). Messages travel between the
//! ends with the path's propagation delay; a link that is down or silently
//! failed loses them, and a failed router neither answers nor sends. The
//! TCP connection under a BGP session comes up one round trip after both
//! ends want it (SYN, SYN-ACK; the ACK rides with the first OPEN) and closes
//! when either end leaves the session (its FIN reaches the other end one
//! propagation delay later, if the path passes it). BGP messages do not
//! queue behind data: routers send control traffic with priority.
//!
//! Routes: the CE installs what the MSEEs and the VPN gateway advertise into
//! its table (used for traffic to Azure) with the scenario's local
//! preferences; the far ends install what the CE advertises into Azure's
//! table (weight 32769 for ExpressRoute, 32768 for the VPN). IPv6 prefixes
//! are not carried by this BGP model (IPv4 unicast only): their routes follow
//! carrier state as without a control plane.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};

use super::bfd::{BfdConfig, BfdSession};
use super::bgp::{BgpConfig, BgpEvent, BgpSession, BgpState};
use super::network::{rng_for, Tap, WEIGHT_ER, WEIGHT_VPN};
use super::rib::{Rib, Route};
use crate::scenario::control::{BgpScenario, Side, MICROSOFT_ASN, VPN_GATEWAY_ASN};
use crate::scenario::{Config, Direction, Mode, PathId};
use crate::units::{SimDuration, SimTime};
use crate::wire::bfd::{self, State as BfdState};
use crate::wire::bgp::{self, PathAttributes};
use crate::wire::tcp_stream::{self, Endpoint, TcpStream};

/// Point-to-point addresses of the BGP sessions: the first usable address of
/// each /30 for the CE, the second for the MSEE (fact sheet 2.4); link-local
/// BGP addresses over the tunnel, as Azure's VPN gateway uses.
const ADDRS: [(Ipv4Addr, Ipv4Addr); 3] = [
    (
        Ipv4Addr::new(192, 168, 100, 129),
        Ipv4Addr::new(192, 168, 100, 130),
    ),
    (
        Ipv4Addr::new(192, 168, 100, 133),
        Ipv4Addr::new(192, 168, 100, 134),
    ),
    (
        Ipv4Addr::new(169, 254, 21, 1),
        Ipv4Addr::new(169, 254, 21, 2),
    ),
];

#[derive(Debug, Clone)]
enum Msg {
    Bgp(bgp::Repr),
    Bfd(bfd::Repr),
    /// The TCP connection's FIN.
    Close,
    /// The TCP handshake: SYN (0), SYN-ACK (1), ACK (2).
    Handshake(usize),
}

/// A message on the wire.
#[derive(Debug, Clone)]
struct OnWire {
    arrive: SimTime,
    to: usize,
    msg: Msg,
    /// ESP sequence number, inside the tunnel.
    esp_seq: Option<u32>,
}

/// What the control plane shares with the tunnel's data path: ESP sequence
/// numbers, and arrival order (a control packet never overtakes data sent
/// before it in the same SA, so sequence numbers arrive in order).
pub struct Tunnel<'a> {
    /// Next ESP sequence number per direction.
    pub esp_seq: &'a mut [u32; 2],
    /// Latest arrival of a data packet per direction.
    pub last_arrival: [SimTime; 2],
    /// Latest arrival of a control packet per direction, for the data
    /// links to respect.
    pub hold: [SimTime; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Down,
    /// Comes up at this time if the path still passes traffic.
    Connecting(SimTime),
    Up,
}

struct End {
    bgp: BgpSession,
    bfd: Option<BfdSession>,
}

struct Adjacency {
    path: PathId,
    ends: [End; 2],
    transport: Transport,
    /// Messages on the wire, in arrival order.
    wire: VecDeque<OnWire>,
    /// The current connection's handshake frames.
    handshake: Vec<Vec<u8>>,
    latency: SimDuration,
    carrier: bool,
    silent_fail: bool,
    router_down: bool,
    tcp: TcpStream,
    isn: u32,
}

impl Adjacency {
    fn passes(&self) -> bool {
        self.carrier && !self.silent_fail && !self.router_down
    }
}

pub struct ControlPlane {
    adj: Vec<Adjacency>,
    cfg: BgpScenario,
    mode: Mode,
    /// Set by inputs from outside (start, failures): run at this time even if
    /// no timer is due.
    wake: Option<SimTime>,
}

fn dir_of_end(to: usize) -> Direction {
    // A message arriving at the far end travels on-premises -> Azure.
    if to == 1 {
        Direction::In
    } else {
        Direction::Out
    }
}

impl ControlPlane {
    pub fn new(cfg: &Config, bgp_cfg: &BgpScenario, now: SimTime) -> Self {
        let paths: Vec<PathId> = PathId::ALL
            .into_iter()
            .filter(|p| *p != PathId::Vpn || cfg.vpn.is_some())
            .collect();
        let mut adj = Vec::new();
        for path in paths {
            let (ce_ip, far_ip) = ADDRS[path as usize];
            let far_as = if path == PathId::Vpn {
                VPN_GATEWAY_ASN
            } else {
                MICROSOFT_ASN
            };
            let mut ce = BgpConfig::new(bgp_cfg.asn, far_as, ce_ip);
            ce.hold_time = bgp_cfg.hold_time;
            ce.keepalive = Some(bgp_cfg.keepalive);
            ce.connect_retry = bgp_cfg.connect_retry;
            ce.max_prefixes = None;
            let mut far = BgpConfig::new(far_as, bgp_cfg.asn, far_ip);
            far.connect_retry = bgp_cfg.connect_retry;
            far.passive = true;
            // The MSEE limits what it accepts from the customer (fact sheet 7.1).
            far.max_prefixes = (path != PathId::Vpn).then_some(bgp_cfg.max_prefixes);
            let latency = match path {
                PathId::Primary => cfg.circuit.primary.latency,
                PathId::Secondary => cfg.circuit.secondary.latency,
                PathId::Vpn => cfg.vpn.as_ref().map_or(SimDuration::ZERO, |v| v.latency),
            };
            let bfd = |end: usize| {
                let (interval, mult) = bgp_cfg.bfd?;
                if path == PathId::Vpn {
                    return None;
                }
                // The MSEE runs 300 ms x 3 and never faster (fact sheet 3.3);
                // the slower peer wins.
                let (tx, m) = if end == 1 {
                    (SimDuration::from_millis(300), 3)
                } else {
                    (interval, mult)
                };
                let c = BfdConfig {
                    desired_min_tx: tx,
                    required_min_rx: tx,
                    detect_mult: m,
                    local_discriminator: 1 + path as u32 * 2 + end as u32,
                };
                Some(BfdSession::new(
                    c,
                    rng_for(cfg.seed, &format!("bfd/{}/{end}", path.as_str())),
                    now,
                ))
            };
            let mut ends = [
                End {
                    bgp: BgpSession::new(ce),
                    bfd: bfd(0),
                },
                End {
                    bgp: BgpSession::new(far),
                    bfd: bfd(1),
                },
            ];
            let mut routes: [Vec<(Ipv4Net, PathAttributes)>; 2] = Default::default();
            for (end, side, space) in [(0, Side::Onprem, &cfg.onprem), (1, Side::Azure, &cfg.azure)]
            {
                let explicit: Vec<_> = bgp_cfg
                    .advertise
                    .iter()
                    .filter(|a| a.side == side)
                    .collect();
                let nets: Vec<Ipv4Net> = if explicit.is_empty() {
                    space
                        .iter()
                        .filter_map(|p| if let IpNet::V4(n) = p { Some(*n) } else { None })
                        .collect()
                } else {
                    explicit
                        .iter()
                        .filter(|a| a.via.contains(&path))
                        .map(|a| a.prefix)
                        .collect()
                };
                let (as_path, hop) = if end == 0 {
                    (
                        vec![bgp_cfg.asn; bgp_cfg.prepend[path as usize] as usize],
                        ce_ip,
                    )
                } else if path == PathId::Vpn {
                    (vec![], far_ip)
                } else {
                    // Learned by the MSEE from the VNet's gateway.
                    (vec![VPN_GATEWAY_ASN], far_ip)
                };
                routes[end] = nets
                    .into_iter()
                    .map(|n| (n, PathAttributes::new(as_path.clone(), hop)))
                    .collect();
            }
            for (e, r) in ends.iter_mut().zip(routes) {
                e.bgp.set_advertised(now, r);
                e.bgp.start(now);
            }
            let isn = 0x1000_0000 + path as u32 * 0x0100_0000;
            let mac = |i: u8| [0x02, 0xce, 0, 0, path as u8, i];
            let tcp = TcpStream::new(
                Endpoint {
                    mac: mac(1),
                    ip: ce_ip,
                    port: 40_000 + path as u16,
                },
                Endpoint {
                    mac: mac(2),
                    ip: far_ip,
                    port: bgp::PORT,
                },
                isn,
                isn + 0x8000,
            );
            adj.push(Adjacency {
                path,
                ends,
                transport: Transport::Down,
                wire: VecDeque::new(),
                handshake: Vec::new(),
                latency,
                carrier: true,
                silent_fail: false,
                router_down: false,
                tcp,
                isn,
            });
        }
        ControlPlane {
            adj,
            cfg: bgp_cfg.clone(),
            mode: cfg.circuit.mode,
            wake: Some(now),
        }
    }

    fn adjacency(&mut self, path: PathId) -> Option<&mut Adjacency> {
        self.adj.iter_mut().find(|a| a.path == path)
    }

    /// The earliest time anything in the control plane needs attention.
    pub fn next_deadline(&self) -> Option<SimTime> {
        self.adj
            .iter()
            .flat_map(|a| {
                let t = match a.transport {
                    Transport::Connecting(t) => Some(t),
                    _ => None,
                };
                // A failed router's timers are frozen.
                let live = if a.router_down { 1 } else { 2 };
                a.ends[..live]
                    .iter()
                    .flat_map(|e| {
                        [
                            e.bgp.next_deadline(),
                            e.bfd.as_ref().and_then(|b| b.next_deadline()),
                        ]
                    })
                    .chain([a.wire.front().map(|w| w.arrive), t])
                    .flatten()
            })
            .chain(self.wake)
            .min()
    }

    /// Carrier loss or return on a path: both ends see the interface change.
    pub fn set_carrier(&mut self, now: SimTime, path: PathId, up: bool) {
        self.wake = Some(now);
        let Some(a) = self.adjacency(path) else {
            return;
        };
        a.carrier = up;
        if !up {
            a.wire.clear();
            if a.transport != Transport::Down {
                a.transport = Transport::Down;
                for e in &mut a.ends {
                    e.bgp.handle_transport_down(now);
                }
            }
            for e in &mut a.ends {
                if let Some(b) = &mut e.bfd {
                    b.admin_down(now);
                }
            }
        } else {
            for e in &mut a.ends {
                if let Some(b) = &mut e.bfd {
                    b.admin_up(now);
                }
            }
        }
    }

    /// A silent failure (or its repair): traffic is lost, nothing signals it.
    pub fn set_silent_fail(&mut self, path: PathId, failed: bool) {
        if let Some(a) = self.adjacency(path) {
            a.silent_fail = failed;
        }
    }

    /// The far router fails (or returns): it stops answering and sending.
    pub fn set_router_down(&mut self, now: SimTime, path: PathId, down: bool) {
        self.wake = Some(now);
        if let Some(a) = self.adjacency(path) {
            a.router_down = down;
            if !down {
                // A rebooted router starts its sessions afresh.
                let e = &mut a.ends[1];
                e.bgp.stop(now);
                e.bgp.start(now);
                a.transport = Transport::Down;
            }
        }
    }

    /// An operator resets the BGP session on the CE.
    pub fn reset(&mut self, now: SimTime, path: PathId) {
        self.wake = Some(now);
        if let Some(a) = self.adjacency(path) {
            a.ends[0].bgp.stop(now);
            a.ends[0].bgp.start(now);
        }
    }

    /// Does everything due at `now`: delivers messages, runs timers, sends,
    /// and applies route changes to `ribs` (`[in]` the CE's, `[out]` Azure's).
    pub fn process(
        &mut self,
        now: SimTime,
        ribs: &mut [Rib; 2],
        mut tunnel: Option<Tunnel>,
        tap: &mut impl Tap,
    ) -> [SimTime; 2] {
        self.wake = None;
        for _ in 0..64 {
            let mut progressed = false;
            for i in 0..self.adj.len() {
                progressed |= self.step(i, now, ribs, tunnel.as_mut(), tap);
            }
            if !progressed {
                break;
            }
        }
        tunnel.map_or([SimTime::ZERO; 2], |t| t.hold)
    }

    fn step(
        &mut self,
        i: usize,
        now: SimTime,
        ribs: &mut [Rib; 2],
        mut tunnel: Option<&mut Tunnel>,
        tap: &mut impl Tap,
    ) -> bool {
        let mut progressed = false;
        let mode = self.mode;
        let lp = (self.cfg.local_pref_er, self.cfg.local_pref_vpn);
        let a = &mut self.adj[i];
        let path = a.path;
        // Arrivals.
        while a.wire.front().is_some_and(|w| w.arrive <= now) {
            let OnWire {
                to, msg, esp_seq, ..
            } = a.wire.pop_front().expect("front exists");
            progressed = true;
            if !a.passes() {
                continue;
            }
            let side = if to == 1 {
                tcp_stream::Side::Client
            } else {
                tcp_stream::Side::Server
            };
            let dir = dir_of_end(to);
            match msg {
                Msg::Bgp(repr) => {
                    if let Ok(frames) = a.tcp.data(side, &repr.to_bytes()) {
                        for f in frames {
                            tap.control_frame(now, path, dir, &f, esp_seq);
                        }
                    }
                    // The receiving end may already have seen the connection
                    // close on its side; its session ignores messages then.
                    a.ends[to].bgp.handle_message(now, repr);
                }
                Msg::Bfd(repr) => {
                    tap.control_frame(now, path, dir, &bfd_frame(a, to, &repr), esp_seq);
                    if let Some(b) = &mut a.ends[to].bfd {
                        b.handle_packet(now, &repr);
                    }
                }
                Msg::Close => {
                    if let Ok(f) = a.tcp.fin(side) {
                        tap.control_frame(now, path, dir, &f, esp_seq);
                    }
                    a.transport = Transport::Down;
                    a.ends[to].bgp.handle_transport_down(now);
                }
                Msg::Handshake(k) => {
                    if let Some(f) = a.handshake.get(k) {
                        tap.control_frame(now, path, dir, f, esp_seq);
                    }
                    if k == 0 && matches!(a.transport, Transport::Connecting(_)) {
                        send(a, now, 0, Msg::Handshake(1), tunnel.as_deref_mut());
                    } else if k == 1 && matches!(a.transport, Transport::Connecting(_)) {
                        a.transport = Transport::Up;
                        for e in &mut a.ends {
                            e.bgp.handle_transport_up(now);
                        }
                        send(a, now, 1, Msg::Handshake(2), tunnel.as_deref_mut());
                    }
                }
            }
        }
        // A handshake that got no answer.
        if let Transport::Connecting(t) = a.transport {
            if t <= now {
                progressed = true;
                a.transport = Transport::Down;
            }
        }
        // Timers, events, transmissions.
        for end in 0..2 {
            if end == 1 && a.router_down {
                continue;
            }
            let can_send = a.carrier;
            let mut outbox = Vec::new();
            let e = &mut a.ends[end];
            if e.bgp.next_deadline().is_some_and(|d| d <= now) {
                e.bgp.handle_timeout(now);
                progressed = true;
            }
            if let Some(b) = &mut e.bfd {
                if b.next_deadline().is_some_and(|d| d <= now) {
                    b.handle_timeout(now);
                    progressed = true;
                }
                while let Some(ev) = b.poll_event() {
                    progressed = true;
                    let who = if end == 0 { "CE" } else { "MSEE" };
                    tap.note(
                        now,
                        format!(
                            "bfd {who} {}: {:?} -> {:?} ({:?})",
                            path.as_str(),
                            ev.from,
                            ev.to,
                            ev.diag
                        ),
                    );
                    if ev.from == BfdState::Up && ev.to == BfdState::Down {
                        e.bgp.bfd_down(now);
                    }
                }
            }
            // Send first: a session that just failed leaves its NOTIFICATION
            // to go out before the connection closes. Without carrier what is
            // sent is lost, but it is sent: a transmission that came due is
            // consumed (its timer moves on), never left due.
            while let Some(m) = e.bgp.poll_transmit(now) {
                progressed = true;
                if can_send && a.transport == Transport::Up {
                    outbox.push(Msg::Bgp(m));
                }
            }
            if let Some(b) = &mut e.bfd {
                while let Some(p) = b.poll_transmit(now) {
                    progressed = true;
                    if can_send {
                        outbox.push(Msg::Bfd(p));
                    }
                }
            }
            let mut learned = 0;
            let mut withdrawn = 0;
            while let Some(ev) = e.bgp.poll_event() {
                progressed = true;
                let rib = &mut ribs[if end == 0 { 0 } else { 1 }];
                match ev {
                    BgpEvent::StateChanged {
                        from, to, reason, ..
                    } => {
                        let who = if end == 0 {
                            "CE"
                        } else if path == PathId::Vpn {
                            "VPN gateway"
                        } else {
                            "MSEE"
                        };
                        tap.note(
                            now,
                            format!("bgp {who} {}: {from:?} -> {to:?} ({reason})", path.as_str()),
                        );
                        if from == BgpState::Established {
                            let n = withdraw_v4(rib, path);
                            if n > 0 {
                                tap.note(
                                    now,
                                    format!(
                                        "{}: {n} routes via {} withdrawn",
                                        if end == 0 { "CE" } else { "Azure" },
                                        path.as_str()
                                    ),
                                );
                            }
                            if end == 0 {
                                tap.control_down(now, path);
                            }
                        }
                        if to == BgpState::Idle && a.transport == Transport::Up {
                            // Our FIN reaches the other end one delay later.
                            a.transport = Transport::Down;
                            outbox.push(Msg::Close);
                        }
                    }
                    BgpEvent::RouteLearned { prefix, attrs, .. } => {
                        learned += 1;
                        rib.announce(route(prefix, &attrs, path, end, mode, lp));
                    }
                    BgpEvent::RouteWithdrawn { prefix, .. } => {
                        withdrawn += 1;
                        rib.withdraw(IpNet::V4(prefix), path);
                    }
                }
            }
            if learned + withdrawn > 0 {
                let who = if end == 0 { "CE" } else { "Azure" };
                tap.note(
                    now,
                    format!(
                        "{who}: {learned} routes learned, {withdrawn} withdrawn via {}",
                        path.as_str()
                    ),
                );
            }
            for m in outbox {
                send_from(a, end, now, m, tunnel.as_deref_mut());
            }
        }
        if a.transport == Transport::Down
            && a.carrier
            && a.ends.iter().all(|e| e.bgp.wants_transport())
        {
            // SYN, SYN-ACK, ACK as messages; without an answer within a
            // round trip and a second, the attempt fails.
            a.isn = a.isn.wrapping_add(0x0001_0000);
            a.tcp = TcpStream::new(
                endpoint(a, 0),
                endpoint(a, 1),
                a.isn,
                a.isn.wrapping_add(0x8000),
            );
            a.handshake = a.tcp.handshake().map(|f| f.to_vec()).unwrap_or_default();
            a.transport =
                Transport::Connecting(now + a.latency + a.latency + SimDuration::from_secs(1));
            send(a, now, 1, Msg::Handshake(0), tunnel);
            progressed = true;
        }
        progressed
    }
}

/// Puts a message from `end` to the other end on the wire.
fn send_from(a: &mut Adjacency, end: usize, now: SimTime, msg: Msg, tunnel: Option<&mut Tunnel>) {
    send(a, now, 1 - end, msg, tunnel)
}

/// Puts a message to `to` on the wire: it arrives one propagation delay
/// later; in the tunnel it takes the next ESP sequence number and arrives
/// after every data packet sent before it.
fn send(a: &mut Adjacency, now: SimTime, to: usize, msg: Msg, tunnel: Option<&mut Tunnel>) {
    let mut arrive = now + a.latency;
    let mut esp_seq = None;
    if let (PathId::Vpn, Some(t)) = (a.path, tunnel) {
        let d = dir_of_end(to) as usize;
        arrive = arrive.max(t.last_arrival[d].max(t.hold[d]) + SimDuration(1));
        esp_seq = Some(t.esp_seq[d]);
        t.esp_seq[d] = t.esp_seq[d].wrapping_add(1).max(1);
        t.hold[d] = arrive;
    }
    let at = a
        .wire
        .iter()
        .rposition(|w| w.arrive <= arrive)
        .map_or(0, |p| p + 1);
    a.wire.insert(
        at,
        OnWire {
            arrive,
            to,
            msg,
            esp_seq,
        },
    );
}

fn endpoint(a: &Adjacency, end: usize) -> Endpoint {
    let (ce, far) = ADDRS[a.path as usize];
    let mac = [0x02, 0xce, 0, 0, a.path as u8, end as u8 + 1];
    if end == 0 {
        Endpoint {
            mac,
            ip: ce,
            port: 40_000 + a.path as u16,
        }
    } else {
        Endpoint {
            mac,
            ip: far,
            port: bgp::PORT,
        }
    }
}

/// A BFD control packet from the other end to `to`, in UDP 3784.
fn bfd_frame(a: &Adjacency, to: usize, p: &bfd::Repr) -> Vec<u8> {
    let (src, dst) = (endpoint(a, 1 - to), endpoint(a, to));
    let mut out = Vec::with_capacity(80);
    etherparse::PacketBuilder::ethernet2(src.mac, dst.mac)
        .ipv4(src.ip.octets(), dst.ip.octets(), 255)
        .udp(bfd::SOURCE_PORT_MIN + a.path as u16, bfd::PORT)
        .write(&mut out, &p.to_bytes())
        .expect("BFD packets fit");
    out
}

fn withdraw_v4(rib: &mut Rib, path: PathId) -> usize {
    let v4: Vec<IpNet> = rib
        .routes()
        .filter(|r| r.path == path && r.prefix.addr().is_ipv4())
        .map(|r| r.prefix)
        .collect();
    for p in &v4 {
        rib.withdraw(*p, path);
    }
    v4.len()
}

/// The route a router installs for what it learned over `path`.
fn route(
    prefix: Ipv4Net,
    attrs: &PathAttributes,
    path: PathId,
    end: usize,
    mode: Mode,
    lp: (u32, u32),
) -> Route {
    let passive = mode == Mode::ActivePassive;
    let (weight, local_pref) = match (end, path) {
        (0, PathId::Vpn) => (0, lp.1),
        (0, PathId::Primary) if passive => (0, lp.0 + 50),
        (0, _) => (0, lp.0),
        (_, PathId::Vpn) => (WEIGHT_VPN, 100),
        _ => (WEIGHT_ER, 100),
    };
    Route {
        prefix: IpNet::V4(prefix),
        path,
        weight,
        local_pref,
        as_path_len: attrs.as_path.len() as u32,
        origin: attrs.origin as u8,
        med: attrs.med.unwrap_or(0),
        router_id: u32::from(if end == 0 {
            ADDRS[path as usize].1
        } else {
            ADDRS[path as usize].0
        }),
        multipath: path != PathId::Vpn && !passive,
    }
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
