//! Routes and route selection for one router (the CE towards Azure, or the
//! Azure side towards on-premises).
//!
//! Selection follows BGP's order as far as the model needs it: longest prefix
//! first, then highest weight, highest local preference, shortest AS path; the
//! routes still tied are used together (ECMP) when they are marked
//! `multipath`, otherwise the one on the lowest path wins. A control plane
//! drives a `Rib` by announcing and withdrawing routes; the data plane asks it
//! for next hops.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::scenario::PathId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: IpNet,
    pub path: PathId,
    pub weight: u32,
    pub local_pref: u32,
    pub as_path_len: u32,
    /// May share traffic with equally good routes.
    pub multipath: bool,
}

impl Route {
    /// The attributes compared after prefix length, larger is better.
    fn rank(&self) -> (u32, u32, std::cmp::Reverse<u32>) {
        (
            self.weight,
            self.local_pref,
            std::cmp::Reverse(self.as_path_len),
        )
    }
}

/// The paths a destination is forwarded on: one, two (ECMP) or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NextHops {
    paths: [Option<PathId>; 2],
}

impl NextHops {
    pub fn is_empty(&self) -> bool {
        self.paths[0].is_none()
    }

    /// Picks the path for a flow by its hash.
    pub fn pick(&self, hash: u32) -> Option<PathId> {
        match self.paths {
            [Some(a), Some(b)] => Some(if hash.is_multiple_of(2) { a } else { b }),
            [a, _] => a,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = PathId> + '_ {
        self.paths.iter().flatten().copied()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Rib {
    routes: Vec<Route>,
    /// Changes whenever the routes do, so callers can cache lookups.
    version: u64,
}

impl Rib {
    /// Adds a route, replacing any for the same prefix and path.
    pub fn announce(&mut self, route: Route) {
        self.routes
            .retain(|r| !(r.prefix == route.prefix && r.path == route.path));
        self.routes.push(route);
        self.version += 1;
    }

    /// Removes every route learned over `path`; returns how many there were.
    pub fn withdraw_path(&mut self, path: PathId) -> usize {
        let before = self.routes.len();
        self.routes.retain(|r| r.path != path);
        let n = before - self.routes.len();
        if n > 0 {
            self.version += 1;
        }
        n
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The next hops for `dst`.
    pub fn lookup(&self, dst: IpAddr) -> NextHops {
        let mut best: Vec<&Route> = Vec::with_capacity(3);
        for r in self.routes.iter().filter(|r| r.prefix.contains(&dst)) {
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
        best.sort_by_key(|r| r.path);
        let mut hops = NextHops::default();
        if let Some(first) = best.first() {
            hops.paths[0] = Some(first.path);
            if first.multipath {
                hops.paths[1] = best.iter().skip(1).find(|r| r.multipath).map(|r| r.path);
            }
        }
        hops
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
            multipath,
        }
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
        assert_eq!(hops.pick(0), Some(PathId::Primary));
        assert_eq!(hops.pick(1), Some(PathId::Secondary));
        rib.withdraw_path(PathId::Primary);
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
        assert!(rib.lookup("172.16.0.1".parse().unwrap()).is_empty());
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
