//! The circuit as a whole: which element a packet meets in which order, in
//! each direction, and what a scenario event does to them.
//!
//! ```text
//! in  (on-premises -> Azure)
//!   CE route --> primary|secondary: queue, serialize at port speed, propagate
//!            --> MSEE policer (circuit bandwidth) --> ER gateway caps (unless FastPath) --> VM
//!   CE route --> vpn: MTU, ESP, VPN gateway shaping queue, Internet delay, jitter, loss --> VM
//! out (Azure -> on-premises)
//!   Azure route --> ER gateway caps --> MSEE policer --> queue, serialize, propagate --> host
//!   Azure route --> vpn: as above, the other way
//! ```
//!
//! Links are the only elements that take time; everything else decides at the
//! instant a packet reaches it. Every decision is reported to a [`Tap`], which
//! observes and never decides.

use std::net::IpAddr;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::model::control::{ControlPlane, Tunnel};
use crate::model::gateway::ErGateway;
use crate::model::link::{Link, Refused, ETHERNET_GAP};
use crate::model::packet::{DropCause, FlowId, Packet};
use crate::model::policer::Policer;
use crate::model::rib::{NextHops, Rib, Route};
use crate::model::vpn::esp_outer_len;
use crate::scenario::{Action, Config, Direction, Mode, PathId};
use crate::units::{BitRate, SimTime};
use crate::wire::ethernet;

/// IP MTU of the circuit links (fact sheet 6.4).
pub const CIRCUIT_MTU: u32 = 1500;
/// Azure-side weight of routes learned over ExpressRoute and over the VPN, as
/// observed by Microsoft (fact sheet 3.13): equal prefixes prefer ExpressRoute.
pub const WEIGHT_ER: u32 = 32_769;
pub const WEIGHT_VPN: u32 = 32_768;
/// Customer-edge local preferences (fact sheet 3.12): ExpressRoute 150, VPN
/// 100; in active-passive the primary gets 200.
pub const LOCAL_PREF_ER: u32 = 150;
pub const LOCAL_PREF_PRIMARY_PASSIVE: u32 = 200;
pub const LOCAL_PREF_VPN: u32 = 100;
/// AS-path prepends the customer puts on the secondary in active-passive, so
/// that Azure prefers the primary too.
pub const PASSIVE_PREPEND: u32 = 3;

/// Where something happened to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    /// A link in one direction, including the elements at its far end
    /// (the MSEE policer for `in`, the Internet loss for the VPN).
    Link(PathId, Direction),
    /// The ExpressRoute gateway.
    Gateway(Direction),
    /// The router that picks the path: the CE for `in`, Azure for `out`.
    Router(Direction),
}

/// What the network tells its observers. Default methods do nothing.
pub trait Tap {
    /// A host sent a packet.
    fn sent(&mut self, _now: SimTime, _pkt: &Packet) {}
    /// Accepted into a link's egress queue.
    fn enqueued(&mut self, _now: SimTime, _path: PathId, _dir: Direction, _pkt: &Packet) {}
    /// Reached the far end of a link (before the MSEE's policer; after the
    /// Internet's random loss, which it never reaches).
    fn link_arrived(&mut self, _now: SimTime, _path: PathId, _dir: Direction, _pkt: &Packet) {}
    /// Came out of the far end of a link (and past its policer).
    fn link_delivered(&mut self, _now: SimTime, _path: PathId, _dir: Direction, _pkt: &Packet) {}
    /// Passed the ExpressRoute gateway.
    fn gateway_passed(&mut self, _now: SimTime, _dir: Direction, _pkt: &Packet) {}
    fn dropped(&mut self, _now: SimTime, _place: Place, _cause: DropCause, _pkt: &Packet) {}
    /// Reached the destination host.
    fn delivered(&mut self, _now: SimTime, _pkt: &Packet) {}
    /// The common path in one call: reached the far end of a link, passed
    /// what sits there (and the ExpressRoute gateway when `gateway`) and was
    /// delivered. Means exactly `link_arrived`, `link_delivered`,
    /// `gateway_passed` (when `gateway`) and `delivered`, in that order, which
    /// is what it does unless a tap does the same in fewer steps.
    #[inline]
    fn link_passed(
        &mut self,
        now: SimTime,
        path: PathId,
        dir: Direction,
        gateway: bool,
        pkt: &Packet,
    ) {
        link_passed_steps(self, now, path, dir, gateway, pkt)
    }
    /// Reached the far end of a link and was dropped by the policer there.
    /// Means exactly `link_arrived` then `dropped` at the link for cause
    /// `policer`, which is what it does unless a tap does the same in fewer
    /// steps.
    #[inline]
    fn link_policed(&mut self, now: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
        self.link_arrived(now, path, dir, pkt);
        self.dropped(now, Place::Link(path, dir), DropCause::Policer, pkt);
    }
    /// The path a flow's packets are sent on changed (first packet on `to`).
    fn path_changed(&mut self, _now: SimTime, _flow: FlowId, _from: PathId, _to: PathId) {}
    /// A failure happened on `path` (for failover timing).
    fn failure(&mut self, _now: SimTime, _path: PathId, _what: &str) {}
    /// The CE noticed that `path` failed: its session there went down (or,
    /// without a control plane, the interface did).
    fn control_down(&mut self, _now: SimTime, _path: PathId) {}
    /// A control-plane frame (BGP or BFD) seen at the receiving end of `path`.
    /// `esp_seq` is set inside the VPN tunnel, whose frames are encrypted.
    fn control_frame(
        &mut self,
        _now: SimTime,
        _path: PathId,
        _dir: Direction,
        _frame: &[u8],
        _esp_seq: Option<u32>,
    ) {
    }
    /// Something worth a line in the timeline.
    fn note(&mut self, _now: SimTime, _text: String) {}
}

/// [`Tap::link_passed`] as the calls it stands for, on `tap`.
#[inline]
pub fn link_passed_steps<T: Tap + ?Sized>(
    tap: &mut T,
    now: SimTime,
    path: PathId,
    dir: Direction,
    gateway: bool,
    pkt: &Packet,
) {
    tap.link_arrived(now, path, dir, pkt);
    tap.link_delivered(now, path, dir, pkt);
    if gateway {
        tap.gateway_passed(now, dir, pkt);
    }
    tap.delivered(now, pkt);
}

/// A tap that hears nothing: for the sending half of a split direction,
/// which applies scenario events to its own state while the receiving half
/// tells the observers.
pub struct NullTap;

impl Tap for NullTap {}

struct FlowRoute {
    dst: IpAddr,
    dir: Direction,
    version: u64,
    hops: NextHops,
    /// The path the last packet was sent on.
    path: Option<PathId>,
}

impl FlowRoute {
    /// The next hops towards `dst` in its direction's table of `ribs`,
    /// looked up again only when that table has changed.
    #[inline]
    fn hops(&mut self, ribs: &[Rib; 2]) -> NextHops {
        let rib = &ribs[dir_index(self.dir)];
        if self.version != rib.version() {
            self.hops = rib.lookup(self.dst);
            self.version = rib.version();
        }
        self.hops
    }
}

struct VpnState {
    mtu: u32,
    path_mtu: u32,
    nat_t: bool,
    /// Next ESP sequence number per direction (RFC 4303 starts at 1).
    esp_seq: [u32; 2],
    loss_ppb: u64,
    loss_rng: [Xoshiro256PlusPlus; 2],
}

pub struct Network {
    /// Indexed by [`link_index`]; the VPN entries are `None` without a VPN.
    links: [Option<Link>; 6],
    /// MSEE policers, indexed like the circuit links.
    policers: [Policer; 4],
    gateways: [ErGateway; 2],
    /// `[in]` is the CE's table (routes to Azure), `[out]` Azure's.
    ribs: [Rib; 2],
    flows: Vec<FlowRoute>,
    fastpath: bool,
    tags: u32,
    vpn: Option<VpnState>,
    mode: Mode,
    /// Prefixes routed by link state rather than BGP, per direction: all of
    /// them without a control plane, the IPv6 ones with it.
    static_prefixes: [Vec<ipnet::IpNet>; 2],
    /// Paths that lose everything arriving on them (silent failure or a
    /// failed router).
    black_hole: [bool; 3],
    control: Option<ControlPlane>,
}

/// A flow's two route entries: its own direction, and the way back (a TCP
/// server's segments).
fn flow_routes(f: &crate::scenario::FlowConfig) -> [FlowRoute; 2] {
    let back = if f.direction == Direction::In {
        Direction::Out
    } else {
        Direction::In
    };
    [(f.to, f.direction), (f.from, back)].map(|(dst, dir)| FlowRoute {
        dst,
        dir,
        version: u64::MAX,
        hops: NextHops::default(),
        path: None,
    })
}

pub fn link_index(path: PathId, dir: Direction) -> usize {
    path as usize * 2 + dir as usize
}

/// The path and direction of the link at `index` (below 6), the inverse of
/// [`link_index`].
pub const fn link_of(index: usize) -> (PathId, Direction) {
    let dir = if index.is_multiple_of(2) {
        Direction::In
    } else {
        Direction::Out
    };
    (PathId::ALL[index / 2], dir)
}

fn dir_index(dir: Direction) -> usize {
    dir as usize
}

/// A stable seed for the random stream named `label` (one per source).
pub fn stream_seed(seed: u64, label: &str) -> u64 {
    // FNV-1a over the label, then the SplitMix64 finalizer mixed with the seed:
    // stable across platforms and releases, unlike std's hashers.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in label.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn rng_for(seed: u64, label: &str) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(stream_seed(seed, label))
}

impl Network {
    pub fn new(cfg: &Config) -> Self {
        let c = &cfg.circuit;
        let circuit_link = |l: &crate::scenario::CircuitLinkConfig| {
            Some(Link::new(c.port_speed, l.latency, ETHERNET_GAP, l.queue))
        };
        let vpn_link = |dir: &str| {
            cfg.vpn.as_ref().map(|v| {
                Link::new(v.rate, v.latency, 0, v.queue)
                    .with_jitter(v.jitter, rng_for(cfg.seed, &format!("jitter/vpn/{dir}")))
            })
        };
        let policer = || Policer::new(c.bandwidth, c.burst);
        let gateway = || ErGateway::new(cfg.gateway.bps, cfg.gateway.pps);
        let mut net = Network {
            links: [
                circuit_link(&c.primary),
                circuit_link(&c.primary),
                circuit_link(&c.secondary),
                circuit_link(&c.secondary),
                vpn_link("in"),
                vpn_link("out"),
            ],
            policers: [policer(), policer(), policer(), policer()],
            gateways: [gateway(), gateway()],
            ribs: [Rib::default(), Rib::default()],
            flows: cfg.flows.iter().flat_map(flow_routes).collect(),
            fastpath: cfg.gateway.fastpath,
            // Private peering is 802.1Q-tagged on the circuit links; QinQ adds an S-tag.
            tags: if c.s_tags.is_some() { 2 } else { 1 },
            vpn: cfg.vpn.as_ref().map(|v| VpnState {
                mtu: v.mtu,
                path_mtu: v.path_mtu,
                nat_t: v.nat_traversal,
                esp_seq: [1, 1],
                loss_ppb: v.loss.ppb(),
                loss_rng: [
                    rng_for(cfg.seed, "loss/vpn/in"),
                    rng_for(cfg.seed, "loss/vpn/out"),
                ],
            }),
            mode: c.mode,
            static_prefixes: Default::default(),
            black_hole: [false; 3],
            control: cfg
                .bgp
                .as_ref()
                .map(|b| ControlPlane::new(cfg, b, SimTime::ZERO)),
        };
        for (dir, prefixes) in [(Direction::In, &cfg.azure), (Direction::Out, &cfg.onprem)] {
            net.static_prefixes[dir_index(dir)] = prefixes
                .iter()
                .filter(|p| cfg.bgp.is_none() || p.addr().is_ipv6())
                .copied()
                .collect();
        }
        for path in PathId::ALL {
            net.announce_static(path);
        }
        net
    }

    fn announce_static(&mut self, path: PathId) {
        if path == PathId::Vpn && self.vpn.is_none() {
            return;
        }
        for dir in [Direction::In, Direction::Out] {
            for prefix in self.static_prefixes[dir_index(dir)].clone() {
                let r = self.route_for(prefix, path, dir);
                self.ribs[dir_index(dir)].announce(r);
            }
        }
    }

    fn withdraw_static(&mut self, path: PathId) -> bool {
        let mut any = false;
        for dir in [Direction::In, Direction::Out] {
            for prefix in self.static_prefixes[dir_index(dir)].clone() {
                let before = self.ribs[dir_index(dir)].version();
                self.ribs[dir_index(dir)].withdraw(prefix, path);
                any |= before != self.ribs[dir_index(dir)].version();
            }
        }
        any
    }

    /// Routes a flow that appears during the run (real frames from outside);
    /// its id is the number of flows before it.
    pub fn add_flow(&mut self, f: &crate::scenario::FlowConfig) {
        self.flows.extend(flow_routes(f));
    }

    /// When the control plane next needs to run.
    pub fn control_deadline(&self) -> Option<SimTime> {
        self.control.as_ref().and_then(|c| c.next_deadline())
    }

    pub fn has_control_plane(&self) -> bool {
        self.control.is_some()
    }

    /// Runs the control plane at `now`: BGP and BFD messages, timers, routes.
    pub fn handle_control(&mut self, now: SimTime, tap: &mut impl Tap) {
        let Some(c) = &mut self.control else { return };
        let last = |i: usize| {
            self.links[i]
                .as_ref()
                .map_or(SimTime::ZERO, |l| l.last_arrival())
        };
        let last_arrival = [
            last(link_index(PathId::Vpn, Direction::In)),
            last(link_index(PathId::Vpn, Direction::Out)),
        ];
        let tunnel = self.vpn.as_mut().map(|v| Tunnel {
            esp_seq: &mut v.esp_seq,
            last_arrival,
            hold: [SimTime::ZERO; 2],
        });
        let hold = c.process(now, &mut self.ribs, tunnel, tap);
        // Data sent after a control packet arrives after it (same SA, FIFO).
        for (i, t) in hold.into_iter().enumerate() {
            if let Some(l) = self.links[link_index(PathId::Vpn, Direction::In) + i].as_mut() {
                l.hold_until(t);
            }
        }
    }

    /// The route a router learns for `prefix` over `path`, with the policy
    /// described at the top of this file.
    fn route_for(&self, prefix: ipnet::IpNet, path: PathId, dir: Direction) -> Route {
        let passive = self.mode == Mode::ActivePassive;
        let (weight, local_pref, as_path_len) = match (dir, path) {
            (Direction::In, PathId::Vpn) => (0, LOCAL_PREF_VPN, 1),
            (Direction::Out, PathId::Vpn) => (WEIGHT_VPN, 100, 1),
            (Direction::In, PathId::Primary) if passive => (0, LOCAL_PREF_PRIMARY_PASSIVE, 1),
            (Direction::In, _) => (0, LOCAL_PREF_ER, 1),
            (Direction::Out, PathId::Secondary) if passive => (WEIGHT_ER, 100, 1 + PASSIVE_PREPEND),
            (Direction::Out, _) => (WEIGHT_ER, 100, 1),
        };
        Route {
            prefix,
            path,
            weight,
            local_pref,
            as_path_len,
            origin: 0,
            med: 0,
            router_id: path as u32,
            multipath: path != PathId::Vpn && !passive,
        }
    }

    pub fn link(&self, path: PathId, dir: Direction) -> Option<&Link> {
        self.links[link_index(path, dir)].as_ref()
    }

    pub fn links(&self) -> impl Iterator<Item = (PathId, Direction, &Link)> {
        PathId::ALL.into_iter().flat_map(move |p| {
            [Direction::In, Direction::Out]
                .into_iter()
                .filter_map(move |d| self.link(p, d).map(|l| (p, d, l)))
        })
    }

    /// Arrival time of the head packet of a link.
    pub fn next_deadline(&self, link: usize) -> Option<SimTime> {
        self.links[link].as_ref().and_then(|l| l.next_deadline())
    }

    /// See [`Link::push_in_flight`].
    pub fn push_in_flight(&mut self, link: usize, arrive: SimTime, pkt: Packet) {
        if let Some(l) = self.links[link].as_mut() {
            l.push_in_flight(arrive, pkt);
        }
    }

    /// See [`Link::forget_arrived`].
    pub fn forget_arrived(&mut self, link: usize, now: SimTime) {
        if let Some(l) = self.links[link].as_mut() {
            l.forget_arrived(now);
        }
    }

    /// Arrival time of the last packet accepted on `link`.
    pub fn last_arrival(&self, link: usize) -> SimTime {
        self.links[link]
            .as_ref()
            .map_or(SimTime::ZERO, |l| l.last_arrival())
    }

    pub fn has_link(&self, link: usize) -> bool {
        self.links[link].is_some()
    }

    pub fn queued_bytes(&mut self, path: PathId, dir: Direction, now: SimTime) -> u64 {
        self.links[link_index(path, dir)]
            .as_mut()
            .map_or(0, |l| l.queued_bytes(now))
    }

    fn next_hops(&mut self, flow: usize) -> NextHops {
        self.flows[flow].hops(&self.ribs)
    }

    /// A source hands a packet to the network at `now`; the network tells
    /// `tap` it was sent, then what became of it. Returns the index of the
    /// link it was queued on, if any.
    #[inline(always)]
    pub fn handle_send(
        &mut self,
        now: SimTime,
        mut pkt: Packet,
        tap: &mut impl Tap,
    ) -> Option<usize> {
        // Told here, not by the caller: a caller that shows the packet to
        // its observers first keeps a second copy on its stack, and copying
        // it into this call right after building it stalls on
        // store-to-load forwarding (a 16-byte load over narrower stores):
        // a fifth of the engine's time on `oversubscribed`.
        tap.sent(now, &pkt);
        let ri = pkt.flow as usize * 2 + pkt.reverse as usize;
        let route = &mut self.flows[ri];
        let dir = route.dir;
        let Some(path) = route.hops(&self.ribs).pick(pkt.hash) else {
            tap.dropped(now, Place::Router(dir), DropCause::NoRoute, &pkt);
            return None;
        };
        if route.path != Some(path) {
            if let (Some(prev), false) = (route.path, pkt.reverse) {
                tap.path_changed(now, pkt.flow, prev, path);
            }
            route.path = Some(path);
        }
        // One copy per link, as for arrivals: its path, direction, policer
        // and counters are constants.
        match link_index(path, dir) {
            0 => self.send_on::<0>(now, &mut pkt, tap),
            1 => self.send_on::<1>(now, &mut pkt, tap),
            2 => self.send_on::<2>(now, &mut pkt, tap),
            3 => self.send_on::<3>(now, &mut pkt, tap),
            4 => self.send_on::<4>(now, &mut pkt, tap),
            _ => self.send_on::<5>(now, &mut pkt, tap),
        }
    }

    /// [`Network::handle_send`] for a packet routed on link `LINK`. The
    /// packet is lent, not moved, so that it is copied once: into the link.
    #[inline(always)]
    fn send_on<const LINK: usize>(
        &mut self,
        now: SimTime,
        pkt: &mut Packet,
        tap: &mut impl Tap,
    ) -> Option<usize> {
        let (path, dir) = const { link_of(LINK) };
        let place = Place::Link(path, dir);
        if path == PathId::Vpn {
            let vpn = self.vpn.as_mut().expect("VPN routes exist only with a VPN");
            let outer = esp_outer_len(pkt.ip_len, vpn.nat_t);
            if pkt.ip_len > vpn.mtu || outer > vpn.path_mtu {
                tap.dropped(now, place, DropCause::Mtu, pkt);
                return None;
            }
            pkt.wire_len = outer;
            let seq = &mut vpn.esp_seq[dir_index(dir)];
            pkt.esp_seq = *seq;
            *seq = seq.wrapping_add(1).max(1);
        } else {
            if dir == Direction::Out {
                if self.gateways[dir_index(dir)]
                    .handle_packet(now, pkt.ip_len)
                    .is_err()
                {
                    tap.dropped(now, Place::Gateway(dir), DropCause::Gateway, pkt);
                    return None;
                }
                tap.gateway_passed(now, dir, pkt);
            }
            if pkt.ip_len > CIRCUIT_MTU {
                tap.dropped(now, place, DropCause::Mtu, pkt);
                return None;
            }
            pkt.wire_len = ethernet::frame_len(pkt.ip_len, self.tags);
            // Out of Azure, the MSEE polices before its egress queue.
            if dir == Direction::Out && !self.policers[LINK].handle_frame(now, pkt.wire_len) {
                tap.dropped(now, place, DropCause::Policer, pkt);
                return None;
            }
        }
        let link = self.links[LINK]
            .as_mut()
            .expect("routes exist only over existing links");
        match link.handle_enqueue(now, pkt) {
            Ok(_) => {
                pkt.enqueued = now;
                tap.enqueued(now, path, dir, pkt);
                Some(LINK)
            }
            Err(Refused::QueueFull) => {
                let cause = if path == PathId::Vpn {
                    DropCause::VpnGateway
                } else {
                    DropCause::Queue
                };
                tap.dropped(now, place, cause, pkt);
                None
            }
            Err(Refused::Down) => {
                tap.dropped(now, place, DropCause::LinkDown, pkt);
                None
            }
        }
    }

    /// Every packet of `link` due by `now` arrives at the far end, in order;
    /// returns when the next one is due, if the link holds one. Panics if
    /// `link` is not a [`link_index`].
    #[inline(always)]
    pub fn handle_arrivals(
        &mut self,
        now: SimTime,
        link: usize,
        tap: &mut impl Tap,
    ) -> Option<SimTime> {
        // One copy per link, so that its path, direction and the places of
        // its link, policer, gateway and counters are constants rather than
        // addresses worked out at every link event.
        match link {
            0 => self.arrivals::<0>(now, tap),
            1 => self.arrivals::<1>(now, tap),
            2 => self.arrivals::<2>(now, tap),
            3 => self.arrivals::<3>(now, tap),
            4 => self.arrivals::<4>(now, tap),
            5 => self.arrivals::<5>(now, tap),
            _ => panic!("no link {link}"),
        }
    }

    /// [`Network::handle_arrivals`] for link `LINK`.
    #[inline(always)]
    fn arrivals<const LINK: usize>(&mut self, now: SimTime, tap: &mut impl Tap) -> Option<SimTime> {
        let l = self.links[LINK].as_mut()?;
        let (path, dir) = const { link_of(LINK) };
        let place = Place::Link(path, dir);
        // Each packet is read where it waited (the link's slot), not copied.
        while let Some(pkt) = l.poll_arrival(now) {
            if self.black_hole[path as usize] {
                tap.dropped(now, place, DropCause::BlackHole, pkt);
                continue;
            }
            if path == PathId::Vpn {
                let vpn = self.vpn.as_mut().expect("VPN link exists");
                if vpn.loss_ppb > 0
                    && vpn.loss_rng[dir_index(dir)].gen_range(0..1_000_000_000) < vpn.loss_ppb
                {
                    tap.dropped(now, place, DropCause::Loss, pkt);
                    continue;
                }
                tap.link_passed(now, path, dir, false, pkt);
                continue;
            }
            // The policer and the gateway decide first (they do not depend
            // on the observers); the observers then hear the same calls in
            // the same order as if they had been told along the way.
            if dir == Direction::In && !self.policers[LINK].handle_frame(now, pkt.wire_len) {
                tap.link_policed(now, path, dir, pkt);
                continue;
            }
            let gateway = dir == Direction::In && !self.fastpath;
            if gateway
                && self.gateways[dir_index(dir)]
                    .handle_packet(now, pkt.ip_len)
                    .is_err()
            {
                tap.link_arrived(now, path, dir, pkt);
                tap.link_delivered(now, path, dir, pkt);
                tap.dropped(now, Place::Gateway(dir), DropCause::Gateway, pkt);
                continue;
            }
            tap.link_passed(now, path, dir, gateway, pkt);
        }
        l.next_deadline()
    }

    /// Applies a scenario event at `now`.
    pub fn handle_action(&mut self, now: SimTime, action: Action, tap: &mut impl Tap) {
        match action {
            Action::LinkDown(path) => {
                tap.failure(now, path, "carrier loss");
                for dir in [Direction::In, Direction::Out] {
                    if let Some(link) = self.links[link_index(path, dir)].as_mut() {
                        link.set_down(now, |p| {
                            tap.dropped(now, Place::Link(path, dir), DropCause::LinkDown, &p)
                        });
                    }
                }
                tap.note(
                    now,
                    format!(
                        "link {} down (carrier loss, both ends see it)",
                        path.as_str()
                    ),
                );
                if self.withdraw_static(path) {
                    tap.note(
                        now,
                        format!("routes via {} withdrawn (interface down)", path.as_str()),
                    );
                }
                match &mut self.control {
                    Some(c) => {
                        c.set_carrier(now, path, false);
                        self.handle_control(now, tap);
                    }
                    // Without a control plane, the routers react at once.
                    None => tap.control_down(now, path),
                }
            }
            Action::LinkUp(path) => {
                let mut changed = false;
                for dir in [Direction::In, Direction::Out] {
                    if let Some(link) = self.links[link_index(path, dir)].as_mut() {
                        changed |= !link.is_up();
                        link.set_up();
                    }
                }
                self.black_hole[path as usize] = false;
                tap.note(now, format!("link {} up", path.as_str()));
                if changed {
                    self.announce_static(path);
                    if !self.static_prefixes.iter().all(|p| p.is_empty()) {
                        tap.note(
                            now,
                            format!("routes via {} restored (interface up)", path.as_str()),
                        );
                    }
                }
                if let Some(c) = &mut self.control {
                    c.set_silent_fail(path, false);
                    c.set_carrier(now, path, true);
                }
            }
            Action::SilentFail(path) => {
                tap.failure(now, path, "silent failure");
                self.black_hole[path as usize] = true;
                tap.note(
                    now,
                    format!("link {} fails silently (nothing signals it)", path.as_str()),
                );
                if let Some(c) = &mut self.control {
                    c.set_silent_fail(path, true);
                }
            }
            Action::RouterDown(path) => {
                tap.failure(now, path, "router failure");
                self.black_hole[path as usize] = true;
                tap.note(now, format!("{} router down", path.as_str()));
                if let Some(c) = &mut self.control {
                    c.set_router_down(now, path, true);
                    // Azure's side of the router failure is its own
                    // network: it stops using the router at once
                    // (assumption; the gateway-to-MSEE convergence Microsoft
                    // quotes, up to a minute, is not modeled).
                    if self.ribs[1].withdraw_path(path) > 0 {
                        tap.note(
                            now,
                            format!(
                                "Azure: routes via {} withdrawn (router down)",
                                path.as_str()
                            ),
                        );
                    }
                }
            }
            Action::RouterUp(path) => {
                self.black_hole[path as usize] = false;
                tap.note(now, format!("{} router up", path.as_str()));
                if let Some(c) = &mut self.control {
                    c.set_router_down(now, path, false);
                }
            }
            Action::BgpReset(path) => {
                tap.failure(now, path, "BGP reset");
                tap.note(
                    now,
                    format!("BGP session via {} reset by the operator", path.as_str()),
                );
                if let Some(c) = &mut self.control {
                    c.reset(now, path);
                    self.handle_control(now, tap);
                }
            }
            Action::SetBandwidth(target, rate) => {
                match target {
                    Some(PathId::Vpn) => {
                        for dir in [Direction::In, Direction::Out] {
                            if let Some(l) = self.links[link_index(PathId::Vpn, dir)].as_mut() {
                                l.set_rate(rate);
                            }
                        }
                    }
                    Some(p) => self.set_policers(now, &[p], rate),
                    None => self.set_policers(now, &[PathId::Primary, PathId::Secondary], rate),
                }
                let what = target.map_or("circuit", |p| p.as_str());
                tap.note(now, format!("{what} bandwidth set to {rate}"));
            }
            Action::SetLatency(path, latency) => {
                for dir in [Direction::In, Direction::Out] {
                    if let Some(l) = self.links[link_index(path, dir)].as_mut() {
                        l.set_latency(latency);
                    }
                }
                tap.note(
                    now,
                    format!("link {} latency set to {latency}", path.as_str()),
                );
            }
        }
    }

    fn set_policers(&mut self, now: SimTime, paths: &[PathId], rate: BitRate) {
        for &p in paths {
            for dir in [Direction::In, Direction::Out] {
                self.policers[link_index(p, dir)].set_rate(now, rate);
            }
        }
    }

    /// The path a flow's packets take now, if any.
    pub fn current_path(&mut self, flow: usize, hash: u32) -> Option<PathId> {
        self.next_hops(flow * 2).pick(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tap call: its name, the link it named (if any), the packet's seq.
    type Call = (&'static str, Option<(PathId, Direction)>, u64);

    /// The calls a tap heard, in order.
    #[derive(Default)]
    struct Calls(Vec<Call>);

    impl Tap for Calls {
        fn enqueued(&mut self, _: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
            self.0.push(("enqueued", Some((path, dir)), pkt.seq));
        }
        fn link_arrived(&mut self, _: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
            self.0.push(("arrived", Some((path, dir)), pkt.seq));
        }
        fn link_delivered(&mut self, _: SimTime, path: PathId, dir: Direction, pkt: &Packet) {
            self.0.push(("link_delivered", Some((path, dir)), pkt.seq));
        }
        fn gateway_passed(&mut self, _: SimTime, _: Direction, pkt: &Packet) {
            self.0.push(("gateway", None, pkt.seq));
        }
        fn delivered(&mut self, _: SimTime, pkt: &Packet) {
            self.0.push(("delivered", None, pkt.seq));
        }
        fn dropped(&mut self, _: SimTime, place: Place, _: DropCause, pkt: &Packet) {
            let at = match place {
                Place::Link(p, d) => Some((p, d)),
                _ => None,
            };
            self.0.push(("dropped", at, pkt.seq));
        }
    }

    fn network() -> Network {
        let cfg = crate::scenario::parse(
            "t.toml",
            r#"
name = "t"
duration = "1s"
[onprem]
prefixes = ["192.168.0.0/16"]
[azure]
prefixes = ["10.1.0.0/16"]
[circuit]
bandwidth = "1Gbps"
mode = "active-active"
[circuit.primary]
latency = "2ms"
[circuit.secondary]
latency = "2ms"
[gateway]
sku = "ErGw3Az"
[vpn]
gateway_sku = "VpnGw2"
latency = "12ms"
[[flows]]
name = "f"
kind = "udp-cbr"
from = "192.168.1.1"
to = "10.1.0.1"
rate = "1Mbps"
size = 100
"#,
        )
        .unwrap();
        Network::new(&cfg)
    }

    fn pkt(seq: u64) -> Packet {
        Packet {
            wire_len: 122,
            ..Packet::new(0, seq, SimTime::ZERO, 100)
        }
    }

    #[test]
    fn each_link_delivers_as_itself() {
        // Two packets per link, due at 10 and 20 us: by 15 us the first has
        // arrived, told as that link's (with the gateway inbound only), and
        // the second is next.
        for path in PathId::ALL {
            for dir in [Direction::In, Direction::Out] {
                let mut net = network();
                let link = link_index(path, dir);
                assert!(net.has_link(link));
                net.push_in_flight(link, SimTime(10_000), pkt(1));
                net.push_in_flight(link, SimTime(20_000), pkt(2));
                let mut calls = Calls::default();
                let next = net.handle_arrivals(SimTime(15_000), link, &mut calls);
                assert_eq!(next, Some(SimTime(20_000)));
                let at = Some((path, dir));
                let mut want = vec![("arrived", at, 1), ("link_delivered", at, 1)];
                if dir == Direction::In && path != PathId::Vpn {
                    want.push(("gateway", None, 1));
                }
                want.push(("delivered", None, 1));
                assert_eq!(calls.0, want, "{path:?} {dir:?}");
                // Only that link's packets moved.
                for other in (0..6).filter(|&o| o != link) {
                    assert_eq!(net.next_deadline(other), None);
                }
                let mut calls = Calls::default();
                assert_eq!(net.handle_arrivals(SimTime(20_000), link, &mut calls), None);
                assert_eq!(calls.0.len(), want.len());
            }
        }
    }

    #[test]
    fn a_black_hole_takes_its_own_links_only() {
        let mut net = network();
        let mut calls = Calls::default();
        net.handle_action(
            SimTime::ZERO,
            Action::SilentFail(PathId::Secondary),
            &mut calls,
        );
        for link in 0..6 {
            net.push_in_flight(link, SimTime(10_000), pkt(link as u64));
        }
        for link in 0..6 {
            let mut calls = Calls::default();
            net.handle_arrivals(SimTime(10_000), link, &mut calls);
            let dropped = calls.0.iter().any(|c| c.0 == "dropped");
            assert_eq!(
                dropped,
                link / 2 == PathId::Secondary as usize,
                "link {link}"
            );
        }
    }

    #[test]
    fn each_link_takes_what_is_routed_on_it() {
        // Active-active: the hash's parity picks primary or secondary, the
        // way back (reverse) goes out; with both circuit links down, the VPN.
        let mut net = network();
        let mut sends = vec![];
        for (hash, path) in [(0, PathId::Primary), (1, PathId::Secondary)] {
            for (reverse, dir) in [(false, Direction::In), (true, Direction::Out)] {
                sends.push((hash, reverse, path, dir));
            }
        }
        for (hash, reverse, path, dir) in sends {
            let mut calls = Calls::default();
            let p = Packet {
                hash,
                reverse,
                ..pkt(7)
            };
            let link = net.handle_send(SimTime::ZERO, p, &mut calls);
            assert_eq!(link, Some(link_index(path, dir)), "{path:?} {dir:?}");
            let seen = calls.0.iter().find(|c| c.0 == "enqueued");
            assert_eq!(seen, Some(&("enqueued", Some((path, dir)), 7)));
            let held: Vec<_> = net.link(path, dir).unwrap().in_flight().collect();
            assert_eq!(held.len(), 1);
            // A circuit frame: 802.1Q-tagged Ethernet around the IP packet.
            assert_eq!(held[0].wire_len, ethernet::frame_len(100, 1));
        }
        for path in [PathId::Primary, PathId::Secondary] {
            net.handle_action(SimTime::ZERO, Action::LinkDown(path), &mut NullTap);
        }
        for (reverse, dir) in [(false, Direction::In), (true, Direction::Out)] {
            let mut calls = Calls::default();
            let p = Packet { reverse, ..pkt(8) };
            let link = net.handle_send(SimTime::ZERO, p, &mut calls);
            assert_eq!(link, Some(link_index(PathId::Vpn, dir)));
            let seen = calls.0.iter().find(|c| c.0 == "enqueued");
            assert_eq!(seen, Some(&("enqueued", Some((PathId::Vpn, dir)), 8)));
            let held: Vec<_> = net.link(PathId::Vpn, dir).unwrap().in_flight().collect();
            assert_eq!(held[0].esp_seq, 1);
        }
    }

    #[test]
    #[should_panic(expected = "no link 6")]
    fn arrivals_on_no_link_panic() {
        network().handle_arrivals(SimTime::ZERO, 6, &mut NullTap);
    }
}
