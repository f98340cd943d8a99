//! The classifier: which flow a frame from outside belongs to, or why it is
//! not carried (the rules are in the module above).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::FlowId;
use crate::scenario::{Config, Direction, FlowConfig, FlowKind, SizeDist};
use crate::units::{BitRate, SimDuration, SimTime};
use crate::wire::inspect::{inspect, FrameKind, IpSummary, PROTO_TCP, PROTO_UDP};

/// The side of the circuit a frame came from (live mode knows it from the
/// interface; replay infers it from the addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Onprem,
    Azure,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Onprem => Side::Azure,
            Side::Azure => Side::Onprem,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Side::Onprem => "onprem",
            Side::Azure => "azure",
        }
    }
}

/// What to do with a frame from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Into the model as `flow`, an IP packet of `ip_len` bytes; `new` when
    /// this frame opened the flow (the caller adds it to the engine:
    /// [`Ingress::flow`] has its config).
    Model {
        flow: FlowId,
        hash: u32,
        new: bool,
        ip_len: u32,
    },
    /// Across to the other side at once, unmodeled (ARP, neighbor discovery).
    Bridge,
    /// Not carried, for this reason.
    Drop(&'static str),
}

/// 5-tuple of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct FlowKey {
    protocol: u8,
    src: IpAddr,
    dst: IpAddr,
    src_port: u16,
    dst_port: u16,
}

/// The classifier and flow table of one run.
pub struct Ingress {
    onprem: Vec<IpNet>,
    azure: Vec<IpNet>,
    table: BTreeMap<FlowKey, (FlowId, u32)>,
    /// The configs of the flows added so far, in id order after the
    /// scenario's own flows.
    flows: Vec<FlowConfig>,
    first_id: FlowId,
    max_flows: usize,
    end: SimTime,
    /// When each added flow's latest frame arrived.
    last: Vec<SimTime>,
    /// Frames seen, by what became of them: `modeled`, `bridged-arp`,
    /// `bridged-nd`, or a drop cause.
    pub counts: BTreeMap<&'static str, u64>,
}

impl Ingress {
    /// A classifier for `cfg`'s prefixes; flows get ids after the
    /// scenario's own, at most `max_flows` of them.
    pub fn new(cfg: &Config, max_flows: usize) -> Self {
        Ingress {
            onprem: cfg.onprem.clone(),
            azure: cfg.azure.clone(),
            table: BTreeMap::new(),
            flows: Vec::new(),
            first_id: cfg.flows.len() as FlowId,
            max_flows,
            end: SimTime::ZERO + cfg.duration,
            counts: BTreeMap::new(),
            last: Vec::new(),
        }
    }

    fn side_of(&self, a: IpAddr) -> Option<Side> {
        if self.onprem.iter().any(|p| p.contains(&a)) {
            Some(Side::Onprem)
        } else if self.azure.iter().any(|p| p.contains(&a)) {
            Some(Side::Azure)
        } else {
            None
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    /// Counts a frame dropped before classification (replay: a capture
    /// record no link carries) with the frames the classifier dropped.
    pub fn drop_frame(&mut self, cause: &'static str) {
        self.count(cause);
    }

    /// Classifies a frame that arrived at `now` from `from` (or, for
    /// replay, from whichever side its source address is on).
    pub fn classify(&mut self, now: SimTime, from: Option<Side>, frame: &[u8]) -> Verdict {
        let verdict = match inspect(frame) {
            Err(e) => Verdict::Drop(e.cause()),
            Ok(FrameKind::Arp) => Verdict::Bridge,
            Ok(FrameKind::NeighborDiscovery) => Verdict::Bridge,
            Ok(FrameKind::Other(_)) => Verdict::Drop("not-ip"),
            Ok(FrameKind::Ip(ip)) => self.ip_verdict(now, from, &ip),
        };
        let what = match verdict {
            Verdict::Model { .. } => "modeled",
            Verdict::Bridge if frame.get(12..14) == Some(&[0x08, 0x06]) => "bridged-arp",
            Verdict::Bridge => "bridged-nd",
            Verdict::Drop(cause) => cause,
        };
        self.count(what);
        verdict
    }

    fn ip_verdict(&mut self, now: SimTime, from: Option<Side>, ip: &IpSummary) -> Verdict {
        if ip.link_scoped {
            return Verdict::Drop("link-scoped");
        }
        let (Some(src), Some(dst)) = (self.side_of(ip.src), self.side_of(ip.dst)) else {
            return Verdict::Drop("outside-prefixes");
        };
        if src == dst || from.is_some_and(|f| f != src) {
            return Verdict::Drop("wrong-side");
        }
        let key = FlowKey {
            protocol: ip.protocol,
            src: ip.src,
            dst: ip.dst,
            src_port: ip.src_port,
            dst_port: ip.dst_port,
        };
        if let Some(&(flow, hash)) = self.table.get(&key) {
            self.last[(flow - self.first_id) as usize] = now;
            return Verdict::Model {
                flow,
                hash,
                new: false,
                ip_len: ip.ip_len,
            };
        }
        if self.flows.len() >= self.max_flows {
            return Verdict::Drop("flow-table-full");
        }
        let direction = if src == Side::Onprem {
            Direction::In
        } else {
            Direction::Out
        };
        let name = flow_name(&key);
        // ECMP spreads flows by 5-tuple; any stable hash of it will do.
        let h = crate::model::network::stream_seed(0, &name);
        let hash = (h ^ (h >> 32)) as u32;
        let flow = self.first_id + self.flows.len() as FlowId;
        self.flows.push(FlowConfig {
            name,
            kind: FlowKind::External {
                protocol: ip.protocol,
            },
            from: ip.src,
            to: ip.dst,
            src_port: ip.src_port,
            dst_port: ip.dst_port,
            direction,
            rate: BitRate(0),
            size: SizeDist::Fixed(ip.ip_len),
            dscp: 0,
            start: now,
            stop: self.end.max(now + SimDuration(1)),
        });
        self.table.insert(key, (flow, hash));
        self.last.push(now);
        Verdict::Model {
            flow,
            hash,
            new: true,
            ip_len: ip.ip_len,
        }
    }

    /// The config of a flow this classifier added.
    pub fn flow(&self, flow: FlowId) -> &FlowConfig {
        &self.flows[(flow - self.first_id) as usize]
    }

    /// The flows added, in id order, each active from its first frame to
    /// its last (so that its rates are over the time it sent), at least
    /// `min_active` long, and ending by `end`.
    pub fn into_flows(self, min_active: SimDuration, end: SimTime) -> Vec<FlowConfig> {
        self.flows
            .into_iter()
            .zip(self.last)
            .map(|(mut f, last)| {
                f.stop = last.max(f.start + min_active).min(end);
                // Never empty: rates divide by the active time.
                f.stop = f.stop.max(f.start + SimDuration(1));
                f
            })
            .collect()
    }

    /// Which side an address is on, if any.
    pub fn side(&self, a: IpAddr) -> Option<Side> {
        self.side_of(a)
    }
}

/// `tcp 192.168.1.10:40000 > 10.1.0.4:5201`; ports only for TCP and UDP.
fn flow_name(k: &FlowKey) -> String {
    let proto = crate::wire::ip_protocol_name(k.protocol);
    let addr = |a: IpAddr, p: u16| match (k.protocol, a) {
        (PROTO_TCP | PROTO_UDP, IpAddr::V6(v6)) => format!("[{v6}]:{p}"),
        (PROTO_TCP | PROTO_UDP, a) => format!("{a}:{p}"),
        (_, a) => a.to_string(),
    };
    let proto = if proto == "ip" {
        format!("ip/{}", k.protocol)
    } else {
        proto.to_string()
    };
    format!(
        "{proto} {} > {}",
        addr(k.src, k.src_port),
        addr(k.dst, k.dst_port)
    )
}

/// A scenario and frames for the tests of real frames into the model.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    /// One second of a 1 Gbps circuit between 192.168/16 and 10.1/16.
    pub(crate) fn cfg() -> Config {
        crate::scenario::parse(
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
[gateway]
sku = "ErGw3Az"
"#,
        )
        .unwrap()
    }

    /// 62 bytes of UDP from `src`:`sport` to `dst`:53.
    pub(crate) fn udp(src: [u8; 4], dst: [u8; 4], sport: u16) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .udp(sport, 53);
        let mut out = Vec::new();
        b.write(&mut out, &[0u8; 20]).unwrap();
        out
    }

    #[test]
    fn one_flow_per_five_tuple_in_order_of_first_frame() {
        let cfg = cfg();
        let mut ing = Ingress::new(&cfg, 10);
        let t = SimTime(5);
        let a = ing.classify(t, None, &udp([192, 168, 1, 10], [10, 1, 0, 4], 1000));
        let b = ing.classify(t, None, &udp([10, 1, 0, 4], [192, 168, 1, 10], 53));
        let a2 = ing.classify(
            t,
            Some(Side::Onprem),
            &udp([192, 168, 1, 10], [10, 1, 0, 4], 1000),
        );
        assert!(matches!(
            a,
            Verdict::Model {
                flow: 0,
                new: true,
                ..
            }
        ));
        assert!(matches!(
            b,
            Verdict::Model {
                flow: 1,
                new: true,
                ..
            }
        ));
        assert!(matches!(
            a2,
            Verdict::Model {
                flow: 0,
                new: false,
                ..
            }
        ));
        assert_eq!(ing.flow(0).name, "udp 192.168.1.10:1000 > 10.1.0.4:53");
        assert_eq!(ing.flow(0).direction, Direction::In);
        assert_eq!(ing.flow(1).direction, Direction::Out);
        assert_eq!(ing.flow(0).start, t);
        assert_eq!(ing.counts["modeled"], 3);
    }

    #[test]
    fn frames_the_model_does_not_carry_are_counted_by_cause() {
        let cfg = cfg();
        let mut ing = Ingress::new(&cfg, 1);
        let t = SimTime::ZERO;
        // From on-premises to an address in neither side's prefixes.
        let v = ing.classify(t, None, &udp([192, 168, 1, 10], [8, 8, 8, 8], 1));
        assert_eq!(v, Verdict::Drop("outside-prefixes"));
        // Between two on-premises hosts: not the circuit's business.
        let v = ing.classify(t, None, &udp([192, 168, 1, 10], [192, 168, 2, 10], 1));
        assert_eq!(v, Verdict::Drop("wrong-side"));
        // An on-premises source arriving on the Azure interface.
        let v = ing.classify(
            t,
            Some(Side::Azure),
            &udp([192, 168, 1, 10], [10, 1, 0, 4], 1),
        );
        assert_eq!(v, Verdict::Drop("wrong-side"));
        let v = ing.classify(t, None, &udp([192, 168, 1, 10], [255, 255, 255, 255], 1));
        assert_eq!(v, Verdict::Drop("link-scoped"));
        let mut arp = vec![0xff; 6];
        arp.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend([0u8; 28]);
        assert_eq!(ing.classify(t, None, &arp), Verdict::Bridge);
        // The table holds one flow; a second 5-tuple finds it full.
        assert!(matches!(
            ing.classify(t, None, &udp([192, 168, 1, 10], [10, 1, 0, 4], 1)),
            Verdict::Model { .. }
        ));
        let v = ing.classify(t, None, &udp([192, 168, 1, 10], [10, 1, 0, 4], 2));
        assert_eq!(v, Verdict::Drop("flow-table-full"));
        let c = &ing.counts;
        assert_eq!(
            (
                c["outside-prefixes"],
                c["wrong-side"],
                c["link-scoped"],
                c["bridged-arp"]
            ),
            (1, 2, 1, 1)
        );
        assert_eq!((c["modeled"], c["flow-table-full"]), (1, 1));
    }
}
