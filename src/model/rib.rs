//! Routes and route selection for one router (the CE towards Azure, or the
//! Azure side towards on-premises).
//!
//! Selection follows BGP's order as far as the model needs it: longest prefix
//! first, then highest weight, highest local preference, shortest AS path; the
//! routes still tied are used together (ECMP) when they are marked
//! `multipath`, otherwise the one on the lowest path wins. A control plane
//! drives a `Rib` by announcing and withdrawing routes; the data plane asks it
//! for next hops.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use std::cmp::Reverse;

use crate::scenario::PathId;
use crate::wire::bgp::{Origin, PathAttributes};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: IpNet,
    pub path: PathId,
    pub weight: u32,
    pub local_pref: u32,
    pub as_path_len: u32,
    /// ORIGIN: 0 IGP, 1 EGP, 2 incomplete (lower is better).
    pub origin: u8,
    /// MULTI_EXIT_DISC (lower is better; 0 when absent).
    pub med: u32,
    /// BGP identifier of the router the route was learned from (lower wins
    /// the final tie).
    pub router_id: u32,
    /// May share traffic with equally good routes.
    pub multipath: bool,
}

impl Route {
    /// The attributes compared after prefix length, larger is better, in the
    /// order of RFC 4271 9.1.2.2 as routers apply it: weight, local
    /// preference, AS path length, origin, MED. (Every session here is eBGP
    /// and every next hop directly connected, so the eBGP-over-iBGP and IGP
    /// cost steps never decide; MED is compared across paths only after
    /// weight and local preference, which already separate the VPN's
    /// neighbor AS from the MSEEs'.) Routes still tied share traffic when
    /// multipath, else the lowest router id wins.
    fn rank(&self) -> (u32, u32, Reverse<u32>, Reverse<u8>, Reverse<u32>) {
        (
            self.weight,
            self.local_pref,
            Reverse(self.as_path_len),
            Reverse(self.origin),
            Reverse(self.med),
        )
    }
}

/// The paths a destination is forwarded on: one, two (ECMP) or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NextHops {
    paths: [Option<PathId>; 2],
    /// What [`NextHops::pick`] answers for an even and an odd hash, worked
    /// out once per lookup rather than once per packet.
    by_parity: [Option<PathId>; 2],
}

impl NextHops {
    /// Forwarding on `first`, and on `second` too (ECMP) if it is set;
    /// `second` without `first` is ignored.
    fn new(first: Option<PathId>, second: Option<PathId>) -> Self {
        let second = first.and(second);
        NextHops {
            paths: [first, second],
            by_parity: [first, second.or(first)],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.paths[0].is_none()
    }

    /// Picks the path for a flow by its hash: with two paths, the first for
    /// an even hash and the second for an odd one.
    #[inline]
    pub fn pick(&self, hash: u32) -> Option<PathId> {
        self.by_parity[(hash & 1) as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = PathId> + '_ {
        self.paths.iter().flatten().copied()
    }
}

/// A router's routes, one per prefix and path. Kept in a map by (prefix,
/// path) so that installing or withdrawing one costs a logarithm of the
/// table, not a scan of it: a table of 100,000 routes fills in a fraction of
/// a second. Lookups do not depend on the order routes were learned in
/// (see [`Rib::lookup`]).
#[derive(Debug, Clone, Default)]
pub struct Rib {
    routes: std::collections::BTreeMap<(IpNet, PathId), Route>,
    /// Changes whenever the routes do, so callers can cache lookups.
    version: u64,
}

impl Rib {
    /// Adds a route, replacing any for the same prefix and path.
    pub fn announce(&mut self, route: Route) {
        self.routes.insert((route.prefix, route.path), route);
        self.version += 1;
    }

    /// Removes every route learned over `path`; returns how many there were.
    pub fn withdraw_path(&mut self, path: PathId) -> usize {
        let before = self.routes.len();
        self.routes.retain(|_, r| r.path != path);
        let n = before - self.routes.len();
        if n > 0 {
            self.version += 1;
        }
        n
    }

    /// Removes the route for `prefix` learned over `path`, if any.
    pub fn withdraw(&mut self, prefix: IpNet, path: PathId) {
        if self.routes.remove(&(prefix, path)).is_some() {
            self.version += 1;
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// The routes, by prefix and path.
    pub fn routes(&self) -> impl Iterator<Item = &Route> + '_ {
        self.routes.values()
    }

    /// The next hops for `dst`. The answer does not depend on the order of
    /// the routes: the candidates are those of the longest matching prefix
    /// and the best rank, which hold one route per path, sorted by router id
    /// and path below.
    pub fn lookup(&self, dst: IpAddr) -> NextHops {
        let mut best: Vec<&Route> = Vec::with_capacity(3);
        for r in self.routes.values().filter(|r| r.prefix.contains(&dst)) {
            match best.first() {
                None => best.push(r),
                Some(b) => {
                    let key = (r.prefix.prefix_len(), r.rank());
                    let best_key = (b.prefix.prefix_len(), b.rank());
                    if key > best_key {
                        best.clear();
                        best.push(r);
                    } else if key == best_key {
                        best.push(r);
                    }
                }
            }
        }
        best.sort_by_key(|r| (r.router_id, r.path));
        let Some(first) = best.first() else {
            return NextHops::default();
        };
        let second = if first.multipath {
            best.iter().skip(1).find(|r| r.multipath).map(|r| r.path)
        } else {
            None
        };
        NextHops::new(Some(first.path), second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str, path: PathId, local_pref: u32, multipath: bool) -> Route {
        Route {
            prefix: prefix.parse().unwrap(),
            path,
            weight: 0,
            local_pref,
            as_path_len: 1,
            origin: 0,
            med: 0,
            router_id: path as u32,
            multipath,
        }
    }

    #[test]
    fn lookups_do_not_depend_on_the_order_routes_were_learned_in() {
        // Every order of these announcements (and a re-announcement that
        // replaces a route) gives the same next hops for every address.
        let routes = [
            route("10.0.0.0/8", PathId::Vpn, 100, false),
            route("10.1.0.0/16", PathId::Primary, 150, true),
            route("10.1.0.0/16", PathId::Secondary, 150, true),
            route("10.1.0.0/16", PathId::Vpn, 100, false),
            route("10.1.2.0/24", PathId::Secondary, 150, false),
            route("10.1.2.0/24", PathId::Primary, 150, false),
        ];
        let dsts = ["10.9.9.9", "10.1.9.9", "10.1.2.3", "11.0.0.1"];
        let lookups = |order: &[usize]| {
            let mut rib = Rib::default();
            for &i in order {
                rib.announce(routes[i].clone());
            }
            rib.announce(routes[order[0]].clone());
            dsts.map(|d| rib.lookup(d.parse().unwrap()))
        };
        let first = lookups(&[0, 1, 2, 3, 4, 5]);
        // ECMP over both links for the /16, the lower router id for the /24.
        assert_eq!(first[1].iter().count(), 2);
        assert_eq!(first[2].pick(1), Some(PathId::Primary));
        assert!(first[3].is_empty());
        for order in [[5, 4, 3, 2, 1, 0], [2, 5, 0, 3, 1, 4], [3, 0, 4, 1, 5, 2]] {
            assert_eq!(lookups(&order), first, "{order:?}");
        }
        // Withdrawing is exact: the /24's primary route goes, its secondary stays.
        let mut rib = Rib::default();
        routes.iter().for_each(|r| rib.announce(r.clone()));
        rib.withdraw("10.1.2.0/24".parse().unwrap(), PathId::Primary);
        assert_eq!(rib.routes().count(), 5);
        assert_eq!(
            rib.lookup("10.1.2.3".parse().unwrap()).pick(0),
            Some(PathId::Secondary)
        );
    }

    #[test]
    fn origin_then_med_then_router_id() {
        let mut rib = Rib::default();
        let dst = "10.1.0.4".parse().unwrap();
        let mut a = route("10.1.0.0/16", PathId::Primary, 100, false);
        let mut b = route("10.1.0.0/16", PathId::Secondary, 100, false);
        // Origin: IGP beats incomplete whatever the router ids.
        a.origin = 2;
        rib.announce(a.clone());
        rib.announce(b.clone());
        assert_eq!(rib.lookup(dst).pick(0), Some(PathId::Secondary));
        // Equal origin: the lower MED wins.
        a.origin = 0;
        a.med = 10;
        b.med = 20;
        rib.announce(a.clone());
        rib.announce(b.clone());
        assert_eq!(rib.lookup(dst).pick(0), Some(PathId::Primary));
        // All equal: the lower router id wins.
        b.med = 10;
        a.router_id = 9;
        b.router_id = 3;
        rib.announce(a);
        rib.announce(b);
        assert_eq!(rib.lookup(dst).pick(0), Some(PathId::Secondary));
    }

    #[test]
    fn longest_prefix_then_preference_then_ecmp() {
        let mut rib = Rib::default();
        rib.announce(route("10.1.0.0/16", PathId::Primary, 150, true));
        rib.announce(route("10.1.0.0/16", PathId::Secondary, 150, true));
        rib.announce(route("10.1.0.0/16", PathId::Vpn, 100, false));
        let dst = "10.1.0.4".parse().unwrap();
        let hops = rib.lookup(dst);
        assert_eq!(
            hops.iter().collect::<Vec<_>>(),
            [PathId::Primary, PathId::Secondary]
        );
        for hash in [0, 2, u32::MAX - 1] {
            assert_eq!(hops.pick(hash), Some(PathId::Primary));
        }
        for hash in [1, 3, u32::MAX] {
            assert_eq!(hops.pick(hash), Some(PathId::Secondary));
        }
        rib.withdraw_path(PathId::Primary);
        assert_eq!(rib.lookup(dst).pick(0), Some(PathId::Secondary));
        assert_eq!(rib.lookup(dst).pick(1), Some(PathId::Secondary));
        assert_eq!(
            rib.lookup(dst).iter().collect::<Vec<_>>(),
            [PathId::Secondary]
        );
        rib.withdraw_path(PathId::Secondary);
        assert_eq!(rib.lookup(dst).pick(7), Some(PathId::Vpn));
        // A more specific prefix wins over any preference.
        rib.announce(route("10.1.0.0/16", PathId::Primary, 150, true));
        rib.announce(route("10.1.0.0/24", PathId::Vpn, 100, false));
        assert_eq!(rib.lookup(dst).pick(0), Some(PathId::Vpn));
        assert_eq!(
            rib.lookup("10.1.1.1".parse().unwrap()).pick(0),
            Some(PathId::Primary)
        );
        let none = rib.lookup("172.16.0.1".parse().unwrap());
        assert!(none.is_empty());
        assert_eq!((none.pick(0), none.pick(1)), (None, None));
    }

    #[test]
    fn ties_without_multipath_go_to_the_lowest_path() {
        let mut rib = Rib::default();
        rib.announce(route("10.0.0.0/8", PathId::Secondary, 100, false));
        rib.announce(route("10.0.0.0/8", PathId::Primary, 100, false));
        let hops = rib.lookup("10.9.9.9".parse().unwrap());
        assert_eq!(hops.iter().collect::<Vec<_>>(), [PathId::Primary]);
    }
}

/// What the full BGP decision process (RFC 4271 9.1.2.2) compares between
/// paths to one prefix, learned from different sessions. [`Route`] keeps
/// only the first three keys (what the data plane needs to forward);
/// the control plane runs [`best_paths`] over its candidates and announces
/// the winners to the [`Rib`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRank {
    /// Local to this router (Cisco "weight"), compared first; higher wins.
    pub weight: u32,
    /// Higher wins.
    pub local_pref: u32,
    /// Shorter wins.
    pub as_path_len: u32,
    /// Lower wins (IGP < EGP < Incomplete).
    pub origin: Origin,
    /// Lower wins; only compared between paths from the same neighbor AS.
    /// An absent MED counts as 0 (RFC 4271 9.1.2.2 c).
    pub med: u32,
    /// The leftmost AS of the path (the neighbor that sent it); the local
    /// AS for a path with an empty AS_PATH.
    pub neighbor_as: u32,
    /// Learned from an external peer; preferred over internal.
    pub ebgp: bool,
    /// BGP identifier of the peer it came from; lower wins.
    pub router_id: Ipv4Addr,
    /// Address of that peer; lower wins, the last tie-break.
    pub peer_addr: Ipv4Addr,
}

impl PathRank {
    /// The rank of a path received with `attrs`. `default_local_pref`
    /// applies when the path carries none (eBGP routes never do).
    pub fn from_attrs(
        attrs: &PathAttributes,
        weight: u32,
        default_local_pref: u32,
        local_as: u32,
        ebgp: bool,
        router_id: Ipv4Addr,
        peer_addr: Ipv4Addr,
    ) -> Self {
        PathRank {
            weight,
            local_pref: attrs.local_pref.unwrap_or(default_local_pref),
            as_path_len: attrs.as_path.len() as u32,
            origin: attrs.origin,
            med: attrs.med.unwrap_or(0),
            neighbor_as: attrs.as_path.first().copied().unwrap_or(local_as),
            ebgp,
            router_id,
            peer_addr,
        }
    }
}

/// The candidates (indices into `paths`) that survive the decision process
/// up to and including eBGP-over-iBGP, best first: they are equally good
/// for multipath. The order among them (router id, then peer address, then
/// position) makes the first the single best path. The IGP-cost step is
/// skipped: every next hop is directly connected in the model.
///
/// Steps are eliminations, as in the RFC, not a sort key, because the MED
/// step only compares paths from the same neighbor AS and so is not a total
/// order; the result does not depend on the order of `paths`.
pub fn best_paths(paths: &[PathRank]) -> Vec<usize> {
    let mut alive: Vec<usize> = (0..paths.len()).collect();
    fn keep_best<K: Ord>(alive: &mut Vec<usize>, key: impl Fn(usize) -> K) {
        if let Some(best) = alive.iter().map(|&i| key(i)).max() {
            alive.retain(|&i| key(i) == best);
        }
    }
    let p = paths;
    keep_best(&mut alive, |i| p[i].weight);
    keep_best(&mut alive, |i| p[i].local_pref);
    keep_best(&mut alive, |i| std::cmp::Reverse(p[i].as_path_len));
    keep_best(&mut alive, |i| std::cmp::Reverse(p[i].origin));
    let med_beaten = |i: usize, alive: &[usize]| {
        alive
            .iter()
            .any(|&j| p[j].neighbor_as == p[i].neighbor_as && p[j].med < p[i].med)
    };
    let snapshot = alive.clone();
    alive.retain(|&i| !med_beaten(i, &snapshot));
    keep_best(&mut alive, |i| p[i].ebgp);
    alive.sort_by_key(|&i| (p[i].router_id, p[i].peer_addr, i));
    alive
}

#[cfg(test)]
mod best_path_tests {
    use super::*;

    fn path(router_id: u8) -> PathRank {
        PathRank {
            weight: 0,
            local_pref: 100,
            as_path_len: 1,
            origin: Origin::Igp,
            med: 0,
            neighbor_as: 12076,
            ebgp: true,
            router_id: Ipv4Addr::new(10, 0, 0, router_id),
            peer_addr: Ipv4Addr::new(192, 168, 0, router_id),
        }
    }

    /// `better` wins over `worse` whichever comes first.
    fn wins(better: PathRank, worse: PathRank) {
        assert_eq!(best_paths(&[better.clone(), worse.clone()])[0], 0);
        assert_eq!(best_paths(&[worse, better])[0], 1);
    }

    #[test]
    fn each_step_in_rfc_order() {
        // Each pair differs in one key, and the worse path always has the
        // lower router id, so only that key can make the better path win.
        let worse = path(1);
        wins(
            PathRank {
                weight: 1,
                ..path(2)
            },
            worse.clone(),
        );
        wins(
            PathRank {
                local_pref: 150,
                ..path(2)
            },
            worse.clone(),
        );
        wins(
            path(2),
            PathRank {
                as_path_len: 2,
                ..worse.clone()
            },
        );
        wins(
            path(2),
            PathRank {
                origin: Origin::Incomplete,
                ..worse.clone()
            },
        );
        wins(
            path(2),
            PathRank {
                med: 5,
                ..worse.clone()
            },
        );
        wins(
            path(2),
            PathRank {
                ebgp: false,
                ..worse.clone()
            },
        );
        wins(path(1), path(2));
        // Same router id (one peer, two sessions): lowest peer address.
        let a = path(1);
        let b = PathRank {
            peer_addr: Ipv4Addr::new(192, 168, 0, 0),
            ..path(1)
        };
        wins(b, a);
        // Earlier keys dominate later ones: weight beats a longer AS path.
        wins(
            PathRank {
                weight: 32_769,
                as_path_len: 4,
                ..path(2)
            },
            PathRank {
                weight: 32_768,
                ..worse
            },
        );
    }

    #[test]
    fn med_only_between_paths_from_the_same_neighbor_as() {
        // Different neighbor ASes: MED is not compared, router id decides.
        let a = PathRank {
            med: 100,
            neighbor_as: 1,
            ..path(1)
        };
        let b = PathRank {
            med: 0,
            neighbor_as: 2,
            ..path(2)
        };
        assert_eq!(best_paths(&[a.clone(), b.clone()]), [0, 1]);
        // A third path from AS 1 with a lower MED eliminates `a` only.
        let c = PathRank {
            med: 50,
            neighbor_as: 1,
            ..path(3)
        };
        let all = [a, b, c];
        assert_eq!(best_paths(&all), [1, 2]);
        // The outcome does not depend on the input order.
        for perm in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let v: Vec<PathRank> = perm.iter().map(|&i| all[i].clone()).collect();
            let best: Vec<usize> = best_paths(&v).iter().map(|&i| perm[i]).collect();
            assert_eq!(best, [1, 2], "{perm:?}");
        }
        assert!(best_paths(&[]).is_empty());
    }

    #[test]
    fn rank_from_received_attributes() {
        let mut attrs = PathAttributes::new(vec![12076, 65515], Ipv4Addr::new(10, 0, 0, 1));
        attrs.med = Some(7);
        let r = PathRank::from_attrs(
            &attrs,
            0,
            100,
            65020,
            true,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(192, 168, 0, 2),
        );
        assert_eq!(
            (r.local_pref, r.as_path_len, r.med, r.neighbor_as),
            (100, 2, 7, 12076)
        );
        let local = PathAttributes::new(vec![], Ipv4Addr::new(10, 0, 0, 1));
        let r = PathRank::from_attrs(&local, 0, 100, 65020, false, r.router_id, r.peer_addr);
        assert_eq!(r.neighbor_as, 65020);
    }
}
