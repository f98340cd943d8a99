//! From the file as written (`RawScenario`) to a `Config` that is valid by
//! construction. Every check here points at the offending value.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;
use toml::Spanned;

use super::config::*;
use super::raw::*;
use super::{limits, ScenarioError};
use crate::model::gateway::ErGatewaySku;
use crate::model::vpn::VpnGatewaySku;
use crate::units::{BitRate, ByteSize, SimDuration, SimTime};

/// Bandwidths offered on provider ports (fact sheet 1.1), in Mbps.
const PROVIDER_MBPS: [u64; 8] = [50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000];
/// Bandwidths offered on ExpressRoute Direct ports (fact sheet 1.3), in Mbps.
const DIRECT_MBPS: [u64; 6] = [1_000, 2_000, 5_000, 10_000, 40_000, 100_000];

/// Default policer depth: Microsoft enforces "at a granular level in
/// milliseconds" but publishes no depth (fact sheet 1.9, 1.10). Assumption.
pub const DEFAULT_BURST: SimDuration = SimDuration::from_millis(5);
pub const DEFAULT_QUEUE: ByteSize = ByteSize(1 << 20);
pub const DEFAULT_LATENCY: SimDuration = SimDuration::from_millis(1);
/// Largest Ethernet frame on the circuit: 1500-byte IP MTU (fact sheet 6.4),
/// 14-byte header, two VLAN tags, FCS.
pub const MAX_FRAME: u64 = 1500 + 14 + 8 + 4;
/// Smallest IP packet that carries the eremu payload (flow id, sequence,
/// timestamp: 20 bytes) over UDP, per address family.
pub const MIN_IPV4_PACKET: u32 = 20 + 8 + 20;
pub const MIN_IPV6_PACKET: u32 = 40 + 8 + 20;
/// Largest IP packet a flow may offer (jumbo-sized offers are allowed so that
/// users can see them dropped with cause `mtu`).
pub const MAX_PACKET: u32 = 9_000;
/// Socket buffers of a TCP flow without `buffer`.
pub const DEFAULT_TCP_BUFFER: u32 = 4 << 20;

pub(super) struct Ctx<'a> {
    pub file: &'a str,
    pub source: &'a str,
}

impl Ctx<'_> {
    pub fn err(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(self.file, self.source, Some(span), message.into())
    }
}

type R<T> = Result<T, ScenarioError>;

pub(super) fn validate(ctx: &Ctx, raw: RawScenario) -> R<Config> {
    let name = raw.name.get_ref().clone();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ctx.err(
            raw.name.span(),
            "must be non-empty and use only letters, digits, '-', '_' and '.' (it names the output directory)",
        ));
    }
    let duration = *raw.duration.get_ref();
    if duration == SimDuration::ZERO {
        return Err(ctx.err(raw.duration.span(), "must be longer than zero"));
    }
    if duration > limits::MAX_DURATION {
        return Err(ctx.err(
            raw.duration.span(),
            format!(
                "{duration} is longer than eremu's limit of {}",
                limits::MAX_DURATION
            ),
        ));
    }
    if raw.flows.len() > limits::MAX_FLOWS {
        return Err(ctx.err(
            raw.flows[limits::MAX_FLOWS].name.span(),
            format!(
                "{} flows: a scenario has at most {}",
                raw.flows.len(),
                limits::MAX_FLOWS
            ),
        ));
    }
    let onprem = prefixes(ctx, &raw.onprem.prefixes)?;
    let azure = prefixes(ctx, &raw.azure.prefixes)?;
    for a in &azure {
        if let Some(o) = onprem
            .iter()
            .find(|o| o.contains(&a.network()) || a.contains(&o.network()))
        {
            return Err(ctx.err(
                raw.azure.prefixes.span(),
                format!("{a} overlaps the on-premises prefix {o}"),
            ));
        }
    }
    let circuit = circuit(ctx, &raw.circuit)?;
    let gateway = gateway(ctx, &raw.gateway)?;
    let vpn = raw
        .vpn
        .as_ref()
        .map(|v| vpn(ctx, v, raw.seed))
        .transpose()?;
    let derived_keys = raw
        .vpn
        .as_ref()
        .map_or([false; 2], |v| [v.key_in.is_none(), v.key_out.is_none()]);
    let end = SimTime::ZERO + duration;
    let mut names = BTreeSet::new();
    let flows = raw
        .flows
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if !names.insert(f.name.get_ref().clone()) {
                return Err(ctx.err(
                    f.name.span(),
                    format!("flow name `{}` is used twice", f.name.get_ref()),
                ));
            }
            flow(ctx, i, f, &onprem, &azure, end, vpn.is_some())
        })
        .collect::<R<Vec<_>>>()?;
    tcp_buffer_total(ctx, &raw.flows, &flows)?;
    let mut events = raw
        .events
        .iter()
        .map(|e| event(ctx, e, &circuit, vpn.is_some(), end))
        .collect::<R<Vec<_>>>()?;
    events.sort_by_key(|e| e.at);
    let capture = capture(ctx, &raw.capture, &flows, end)?;
    let check = check_table(ctx, &raw.check)?;
    let expect = expectations(ctx, &raw.expect, &flows, vpn.is_some())?;
    let bgp = match &raw.bgp {
        Some(b) => Some(super::control::bgp(
            ctx,
            b,
            &raw.advertise,
            circuit.mode == Mode::ActivePassive,
            circuit.premium,
            vpn.is_some(),
            &onprem,
            &azure,
        )?),
        None => {
            if let Some(a) = raw.advertise.first() {
                return Err(ctx.err(a.prefix.span(), "[[advertise]] needs a [bgp] section"));
            }
            None
        }
    };
    for e in &raw.events {
        let needs_bgp = matches!(e.action.get_ref(), RawAction::BgpReset);
        if needs_bgp && bgp.is_none() {
            return Err(ctx.err(e.action.span(), "bgp-reset needs a [bgp] section"));
        }
    }
    let link_series = if vpn.is_some() { 6 } else { 4 };
    let series = link_series + flows.len() as u64;
    let explicit_interval = raw.report.interval.is_some();
    let settings = Settings {
        bgp,
        name,
        description: raw.description,
        duration,
        seed: raw.seed,
        onprem,
        azure,
        circuit,
        gateway,
        vpn,
        flows,
        events,
        report: ReportConfig {
            outage_min: raw.report.outage_min.unwrap_or(SimDuration::from_millis(1)),
            interval: report_interval(ctx, &raw.report, duration, series)?,
        },
        capture,
        check,
        expect,
    };
    Ok(Config::new(
        settings,
        Derived {
            explicit_interval,
            link_series,
            derived_keys,
        },
    ))
}

fn vlan_id(ctx: &Ctx, v: &Option<Spanned<i64>>, default: u16) -> R<u16> {
    match v {
        None => Ok(default),
        Some(v) => u16::try_from(*v.get_ref())
            .ok()
            .filter(|id| (1..=4094).contains(id))
            .ok_or_else(|| {
                ctx.err(
                    v.span(),
                    format!("VLAN id {} is outside 1..4094", v.get_ref()),
                )
            }),
    }
}

fn capture(ctx: &Ctx, c: &RawCapture, flows: &[FlowConfig], end: SimTime) -> R<CaptureConfig> {
    let taps = match &c.taps {
        None => CaptureTap::ALL.to_vec(),
        Some(list) => {
            let mut taps = list
                .iter()
                .map(|t| {
                    CaptureTap::parse(t.get_ref()).ok_or_else(|| {
                        let names: Vec<_> = CaptureTap::ALL.iter().map(|t| t.name()).collect();
                        ctx.err(
                            t.span(),
                            format!("unknown tap `{}`: use {}", t.get_ref(), names.join(", ")),
                        )
                    })
                })
                .collect::<R<Vec<_>>>()?;
            taps.sort();
            taps.dedup();
            taps
        }
    };
    let snaplen = match &c.snaplen {
        None => Snaplen::Auto,
        Some(s) => match s.get_ref() {
            RawSnaplen::Text(t) if t == "auto" => Snaplen::Auto,
            RawSnaplen::Bytes(b) if (14..=262_144).contains(b) => Snaplen::Bytes(*b as u32),
            _ => {
                return Err(ctx.err(
                    s.span(),
                    "snaplen is \"auto\" or a number of bytes from 14 to 262144",
                ))
            }
        },
    };
    let window =
        match &c.window {
            None => None,
            Some(w) => match w.get_ref().as_slice() {
                [a, b] if a < b && SimTime::ZERO + *a < end => {
                    Some((SimTime::ZERO + *a, SimTime::ZERO + *b))
                }
                _ => return Err(ctx.err(
                    w.span(),
                    "window is [start, end] with start < end and start before the scenario's end",
                )),
            },
        };
    let flows = match &c.flows {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|n| {
                    flows
                        .iter()
                        .position(|f| &f.name == n.get_ref())
                        .ok_or_else(|| {
                            ctx.err(n.span(), format!("no flow is named `{}`", n.get_ref()))
                        })
                })
                .collect::<R<Vec<_>>>()?,
        ),
    };
    Ok(CaptureConfig {
        enabled: c.enabled.unwrap_or(true),
        taps,
        snaplen,
        window,
        flows,
        split: c.split,
    })
}

fn prefixes(ctx: &Ctx, list: &Spanned<Vec<Spanned<String>>>) -> R<Vec<IpNet>> {
    if list.get_ref().is_empty() {
        return Err(ctx.err(
            list.span(),
            "needs at least one prefix, such as \"10.1.0.0/16\"",
        ));
    }
    list.get_ref()
        .iter()
        .map(|p| {
            let net: IpNet = p.get_ref().parse().map_err(|_| {
                ctx.err(
                    p.span(),
                    format!("`{}` is not a prefix such as \"10.1.0.0/16\"", p.get_ref()),
                )
            })?;
            if net.trunc() != net {
                return Err(ctx.err(
                    p.span(),
                    format!("`{net}` has host bits set (did you mean {}?)", net.trunc()),
                ));
            }
            Ok(net)
        })
        .collect()
}

fn circuit(ctx: &Ctx, c: &RawCircuit) -> R<CircuitConfig> {
    let bandwidth = *c.bandwidth.get_ref();
    let mbps = bandwidth.bps() / 1_000_000;
    let known = bandwidth.bps().is_multiple_of(1_000_000)
        && if c.direct {
            DIRECT_MBPS.contains(&mbps)
        } else {
            PROVIDER_MBPS.contains(&mbps)
        };
    if !known && !c.custom {
        let list = if c.direct {
            "1Gbps 2Gbps 5Gbps 10Gbps 40Gbps 100Gbps (ExpressRoute Direct)"
        } else {
            "50Mbps 100Mbps 200Mbps 500Mbps 1Gbps 2Gbps 5Gbps 10Gbps (set direct = true for 40Gbps and 100Gbps)"
        };
        return Err(ctx.err(
            c.bandwidth.span(),
            format!("{bandwidth} is not an ExpressRoute bandwidth: use one of {list}, or set custom = true"),
        ));
    }
    if bandwidth.bps() == 0 {
        return Err(ctx.err(c.bandwidth.span(), "must be more than zero"));
    }
    let default_port = if bandwidth > BitRate::from_gbps(10) {
        BitRate::from_gbps(100)
    } else {
        BitRate::from_gbps(10)
    };
    let port_speed = c.port_speed.as_ref().map_or(default_port, |p| *p.get_ref());
    if port_speed < bandwidth {
        let span = c
            .port_speed
            .as_ref()
            .map_or(c.bandwidth.span(), |p| p.span());
        return Err(ctx.err(
            span,
            format!("port speed {port_speed} is below the circuit bandwidth {bandwidth}"),
        ));
    }
    let burst = c.burst.as_ref().map_or(DEFAULT_BURST, |b| *b.get_ref());
    let depth = bandwidth.bps() as u128 * burst.as_nanos() as u128 / 8_000_000_000;
    if depth < MAX_FRAME as u128 {
        let span = c.burst.as_ref().map_or(c.bandwidth.span(), |b| b.span());
        return Err(ctx.err(
            span,
            format!("a {burst} policer bucket at {bandwidth} holds {depth} bytes, less than one {MAX_FRAME}-byte frame"),
        ));
    }
    let link = |l: &RawCircuitLink| CircuitLinkConfig {
        latency: l.latency.unwrap_or(DEFAULT_LATENCY),
        queue: l.queue.as_ref().map_or(DEFAULT_QUEUE, |q| *q.get_ref()),
    };
    let vlan = vlan_id(ctx, &c.vlan, 100)?;
    let qinq = match c.encapsulation {
        Some(RawEncapsulation::Qinq) => true,
        Some(RawEncapsulation::Dot1q) => false,
        None => c.direct,
    };
    let s_tag = vlan_id(ctx, &c.s_tag, 200)?;
    let s_tags = if qinq {
        Some([
            vlan_id(ctx, &c.primary.s_tag, s_tag)?,
            vlan_id(ctx, &c.secondary.s_tag, s_tag)?,
        ])
    } else {
        if let Some(t) = c
            .s_tag
            .as_ref()
            .or(c.primary.s_tag.as_ref())
            .or(c.secondary.s_tag.as_ref())
        {
            return Err(ctx.err(
                t.span(),
                "an S-tag needs encapsulation = \"qinq\" (or direct = true)",
            ));
        }
        None
    };
    Ok(CircuitConfig {
        vlan,
        s_tags,
        bandwidth,
        port_speed,
        mode: match c.mode.unwrap_or(RawMode::ActiveActive) {
            RawMode::ActiveActive => Mode::ActiveActive,
            RawMode::ActivePassive => Mode::ActivePassive,
        },
        direct: c.direct,
        premium: c.premium,
        burst,
        primary: link(&c.primary),
        secondary: link(&c.secondary),
    })
}

fn gateway(ctx: &Ctx, g: &RawGateway) -> R<GatewayConfig> {
    let units = g.scale_units.as_ref().map(|u| *u.get_ref());
    let sku = ErGatewaySku::parse(g.sku.get_ref(), units).ok_or_else(|| {
        ctx.err(
            g.sku.span(),
            format!(
                "unknown gateway SKU `{}`: use one of {}",
                g.sku.get_ref(),
                ErGatewaySku::NAMES
            ),
        )
    })?;
    if let Some(u) = &g.scale_units {
        if !matches!(sku, ErGatewaySku::ErGwScale(_)) {
            return Err(ctx.err(u.span(), "scale_units applies only to sku = \"ErGwScale\""));
        }
        if !(1..=40).contains(u.get_ref()) {
            return Err(ctx.err(u.span(), "ErGwScale has 1 to 40 scale units"));
        }
    }
    if g.fastpath && !sku.supports_fastpath() {
        return Err(ctx.err(
            g.sku.span(),
            format!(
                "FastPath needs UltraPerformance, ErGw3Az or ErGwScale, not {}",
                g.sku.get_ref()
            ),
        ));
    }
    let (bps, pps) = sku.caps();
    Ok(GatewayConfig {
        sku,
        fastpath: g.fastpath,
        bps,
        pps,
    })
}

fn parse_key(text: &str) -> Option<[u8; 36]> {
    let hex = text.strip_prefix("0x").unwrap_or(text);
    if hex.len() != 72 || !hex.is_ascii() {
        return None;
    }
    let mut key = [0u8; 36];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

fn vpn(ctx: &Ctx, v: &RawVpn, seed: u64) -> R<VpnConfig> {
    let sku = VpnGatewaySku::parse(v.gateway_sku.get_ref()).ok_or_else(|| {
        ctx.err(
            v.gateway_sku.span(),
            format!(
                "unknown VPN gateway SKU `{}`: use one of {}",
                v.gateway_sku.get_ref(),
                VpnGatewaySku::NAMES
            ),
        )
    })?;
    let generation = v.generation.as_ref().map_or(2, |g| *g.get_ref());
    let rate = sku.throughput(generation).ok_or_else(|| {
        let span = v
            .generation
            .as_ref()
            .map_or(v.gateway_sku.span(), |g| g.span());
        ctx.err(
            span,
            format!(
                "{} does not exist in generation {generation}",
                v.gateway_sku.get_ref()
            ),
        )
    })?;
    let jitter = v.jitter.unwrap_or_default();
    if jitter > v.latency {
        return Err(ctx.err(
            v.gateway_sku.span(),
            format!(
                "vpn.jitter ({jitter}) must not exceed vpn.latency ({})",
                v.latency
            ),
        ));
    }
    let mtu = v.mtu.as_ref().map_or(1400, |m| *m.get_ref());
    if let Some(m) = &v.mtu {
        if !(576..=1500).contains(&mtu) {
            return Err(ctx.err(
                m.span(),
                "the tunnel MTU must be between 576 and 1500 bytes",
            ));
        }
    }
    let path_mtu = v.path_mtu.as_ref().map_or(1500, |m| *m.get_ref());
    if let Some(m) = &v.path_mtu {
        if !(576..=9000).contains(&path_mtu) {
            return Err(ctx.err(m.span(), "the path MTU must be between 576 and 9000 bytes"));
        }
    }
    let sa = |spi: &Option<Spanned<i64>>,
              key: &Option<Spanned<String>>,
              label: &str,
              default_spi: u32|
     -> R<SaConfig> {
        let spi = match spi {
            None => default_spi,
            Some(s) => u32::try_from(*s.get_ref())
                .ok()
                .filter(|v| *v >= 256)
                .ok_or_else(|| {
                    ctx.err(
                        s.span(),
                        "an SPI is a 32-bit number of at least 256 (1 to 255 are reserved)",
                    )
                })?,
        };
        let key = match key {
            None => derived_esp_key(seed, label),
            Some(k) => parse_key(k.get_ref()).ok_or_else(|| {
                ctx.err(k.span(), "an ESP key is 72 hex digits (a 32-byte AES-256 key, then a 4-byte salt), optionally after 0x")
            })?,
        };
        Ok(SaConfig { spi, key })
    };
    let address = |a: &Option<Spanned<String>>, default: [u8; 4]| -> R<std::net::Ipv4Addr> {
        match a {
            None => Ok(default.into()),
            Some(a) => a.get_ref().parse().map_err(|_| {
                ctx.err(
                    a.span(),
                    format!("`{}` is not an IPv4 address", a.get_ref()),
                )
            }),
        }
    };
    Ok(VpnConfig {
        nat_traversal: v.nat_traversal,
        path_mtu,
        sa_in: sa(&v.spi_in, &v.key_in, "in", 0x0000_1001)?,
        sa_out: sa(&v.spi_out, &v.key_out, "out", 0x0000_2001)?,
        onprem_address: address(&v.onprem_address, [203, 0, 113, 1])?,
        azure_address: address(&v.azure_address, [198, 51, 100, 1])?,
        sku,
        rate,
        latency: v.latency,
        jitter,
        loss: v.loss,
        mtu,
        queue: v.queue.as_ref().map_or(DEFAULT_QUEUE, |q| *q.get_ref()),
    })
}

fn dscp(ctx: &Ctx, d: &Spanned<RawDscp>) -> R<u8> {
    let value = match d.get_ref() {
        RawDscp::Number(n) if (0..64).contains(n) => Some(*n as u8),
        RawDscp::Number(_) => None,
        RawDscp::Name(name) => match name.to_ascii_uppercase().as_str() {
            "EF" => Some(46),
            "VA" => Some(44),
            "BE" | "DF" => Some(0),
            n if n.len() == 3 && n.starts_with("CS") => {
                n[2..].parse::<u8>().ok().filter(|c| *c < 8).map(|c| c << 3)
            }
            n if n.len() == 4 && n.starts_with("AF") => {
                let class = n[2..3].parse::<u8>().ok().filter(|c| (1..=4).contains(c));
                let prec = n[3..4].parse::<u8>().ok().filter(|p| (1..=3).contains(p));
                class.zip(prec).map(|(c, p)| c * 8 + p * 2)
            }
            _ => None,
        },
    };
    value.ok_or_else(|| {
        ctx.err(
            d.span(),
            "DSCP must be 0..63 or a name such as EF, AF21, CS3",
        )
    })
}

fn size(ctx: &Ctx, s: &Spanned<RawSize>) -> R<SizeDist> {
    let bad = |m: String| ctx.err(s.span(), m);
    let one = |v: i64| -> R<u32> {
        u32::try_from(v)
            .ok()
            .filter(|v| (1..=MAX_PACKET).contains(v))
            .ok_or_else(|| {
                bad(format!(
                    "{v} is not an IP packet size (1..{MAX_PACKET} bytes)"
                ))
            })
    };
    match s.get_ref() {
        RawSize::Bytes(b) => one(*b).map(SizeDist::Fixed),
        RawSize::Text(t) if t == "imix" => Ok(SizeDist::Imix),
        RawSize::Text(t) => {
            let parse = |x: &str| {
                x.trim().parse::<i64>().map_err(|_| {
                    bad(format!(
                        "`{t}` is not a size: use 1400, \"64..1500\" or \"imix\""
                    ))
                })
            };
            match t.split_once("..") {
                Some((a, b)) => {
                    let (a, b) = (one(parse(a)?)?, one(parse(b)?)?);
                    if a > b {
                        return Err(bad(format!("range `{t}` is empty")));
                    }
                    Ok(SizeDist::Uniform(a, b))
                }
                None => one(parse(t)?).map(SizeDist::Fixed),
            }
        }
    }
}

fn flow(
    ctx: &Ctx,
    index: usize,
    f: &RawFlow,
    onprem: &[IpNet],
    azure: &[IpNet],
    end: SimTime,
    has_vpn: bool,
) -> R<FlowConfig> {
    let addr = |s: &Spanned<String>| -> R<IpAddr> {
        s.get_ref()
            .parse()
            .map_err(|_| ctx.err(s.span(), format!("`{}` is not an IP address", s.get_ref())))
    };
    let (from, to) = (addr(&f.from)?, addr(&f.to)?);
    if from.is_ipv4() != to.is_ipv4() {
        return Err(ctx.err(
            f.to.span(),
            format!("{to} and {from} are of different address families"),
        ));
    }
    let side = |a: IpAddr| {
        if onprem.iter().any(|p| p.contains(&a)) {
            Some(Direction::In)
        } else if azure.iter().any(|p| p.contains(&a)) {
            Some(Direction::Out)
        } else {
            None
        }
    };
    let outside = |a: IpAddr, s: &Spanned<String>| {
        ctx.err(
            s.span(),
            format!("{a} is outside both the on-premises and the Azure prefixes"),
        )
    };
    let direction = side(from).ok_or_else(|| outside(from, &f.from))?;
    let to_side = side(to).ok_or_else(|| outside(to, &f.to))?;
    if to_side == direction {
        return Err(ctx.err(
            f.to.span(),
            format!("{from} and {to} are on the same side: a flow must cross the circuit"),
        ));
    }
    if matches!(f.kind, RawFlowKind::TcpBulk | RawFlowKind::TcpRr) {
        return tcp_flow(ctx, index, f, from, to, direction, end, has_vpn);
    }
    for (present, key) in [
        (f.bytes.is_some(), "bytes"),
        (f.cc.is_some(), "cc"),
        (f.buffer.is_some(), "buffer"),
        (f.mss.is_some(), "mss"),
        (f.request.is_some(), "request"),
        (f.response.is_some(), "response"),
    ] {
        if present {
            return Err(ctx.err(f.name.span(), format!("`{key}` applies only to TCP flows")));
        }
    }
    let rate = f
        .rate
        .as_ref()
        .ok_or_else(|| ctx.err(f.name.span(), "a UDP flow needs `rate`"))?;
    if rate.get_ref().bps() == 0 {
        return Err(ctx.err(rate.span(), "must be more than zero"));
    }
    if *rate.get_ref() > limits::MAX_FLOW_RATE {
        return Err(ctx.err(
            rate.span(),
            format!(
                "{} is more than eremu's limit of {} per flow",
                rate.get_ref(),
                limits::MAX_FLOW_RATE
            ),
        ));
    }
    let size = f
        .size
        .as_ref()
        .map_or(Ok(SizeDist::Fixed(1400)), |s| size(ctx, s))?;
    let min = if from.is_ipv4() {
        MIN_IPV4_PACKET
    } else {
        MIN_IPV6_PACKET
    };
    if size.min() < min {
        let span = f.size.as_ref().map_or(f.name.span(), |s| s.span());
        return Err(ctx.err(
            span,
            format!(
                "packets of {} bytes cannot carry the eremu payload: the smallest is {min} bytes",
                size.min()
            ),
        ));
    }
    let (start, stop) = active_time(ctx, f, end)?;
    let kind = match f.kind {
        RawFlowKind::UdpOnoff => {
            let need = |v: &Option<Spanned<SimDuration>>, key: &str| -> R<SimDuration> {
                match v {
                    Some(d) if d.get_ref().as_nanos() > 0 => Ok(*d.get_ref()),
                    Some(d) => Err(ctx.err(d.span(), format!("`{key}` must be longer than zero"))),
                    None => Err(ctx.err(f.name.span(), format!("a udp-onoff flow needs `{key}`"))),
                }
            };
            FlowKind::OnOff {
                on: need(&f.on, "on")?,
                off: need(&f.off, "off")?,
            }
        }
        other => {
            if let Some(x) = f.on.as_ref().or(f.off.as_ref()) {
                return Err(ctx.err(
                    x.span(),
                    "`on` and `off` apply only to kind = \"udp-onoff\"",
                ));
            }
            if other == RawFlowKind::UdpCbr {
                FlowKind::Cbr
            } else {
                FlowKind::Poisson
            }
        }
    };
    Ok(FlowConfig {
        name: f.name.get_ref().clone(),
        kind,
        from,
        to,
        src_port: port(&f.src_port).unwrap_or(49_152 + (index as u16 % 16_000)),
        dst_port: port(&f.dst_port).unwrap_or(5_001),
        direction,
        rate: *rate.get_ref(),
        size,
        dscp: f.dscp.as_ref().map_or(Ok(0), |d| dscp(ctx, d))?,
        start,
        stop,
    })
}

fn event(
    ctx: &Ctx,
    e: &RawEvent,
    circuit: &CircuitConfig,
    has_vpn: bool,
    end: SimTime,
) -> R<EventConfig> {
    let at = SimTime::ZERO + *e.at.get_ref();
    if at >= end {
        return Err(ctx.err(
            e.at.span(),
            format!("{at} is not before the scenario's end ({end})"),
        ));
    }
    let link = match &e.link {
        None => None,
        Some(l) => Some(match l.get_ref().as_str() {
            "primary" => PathId::Primary,
            "secondary" => PathId::Secondary,
            "vpn" if has_vpn => PathId::Vpn,
            "vpn" => {
                return Err(ctx.err(
                    l.span(),
                    "link `vpn` does not exist: the scenario has no [vpn] section",
                ))
            }
            other => {
                return Err(ctx.err(
                    l.span(),
                    format!("unknown link `{other}`: use primary, secondary or vpn"),
                ))
            }
        }),
    };
    let action = *e.action.get_ref();
    let need_link = || link.ok_or_else(|| ctx.err(e.action.span(), "this action needs `link`"));
    let unexpected = |present: bool, key: &str| -> R<()> {
        if present {
            Err(ctx.err(
                e.action.span(),
                format!("`{key}` does not apply to this action"),
            ))
        } else {
            Ok(())
        }
    };
    if let Some(m) = &e.mode {
        if action != RawAction::Fail {
            return Err(ctx.err(m.span(), "`mode` applies only to action = \"fail\""));
        }
    }
    let action = match action {
        RawAction::Fail | RawAction::MseeDown | RawAction::MseeUp | RawAction::BgpReset => {
            unexpected(e.bandwidth.is_some(), "bandwidth")?;
            unexpected(e.latency.is_some(), "latency")?;
            let l = need_link()?;
            match action {
                RawAction::Fail => match e.mode.as_ref().map(|m| *m.get_ref()) {
                    Some(RawFailMode::Silent) => Action::SilentFail(l),
                    Some(RawFailMode::Carrier) => Action::LinkDown(l),
                    None => {
                        return Err(ctx.err(
                            e.action.span(),
                            "fail needs mode = \"silent\" or \"carrier\"",
                        ))
                    }
                },
                RawAction::MseeDown => Action::RouterDown(l),
                RawAction::MseeUp => Action::RouterUp(l),
                _ => Action::BgpReset(l),
            }
        }
        RawAction::LinkDown | RawAction::LinkUp => {
            unexpected(e.bandwidth.is_some(), "bandwidth")?;
            unexpected(e.latency.is_some(), "latency")?;
            let l = need_link()?;
            if action == RawAction::LinkDown {
                Action::LinkDown(l)
            } else {
                Action::LinkUp(l)
            }
        }
        RawAction::SetBandwidth => {
            unexpected(e.latency.is_some(), "latency")?;
            let b = e
                .bandwidth
                .as_ref()
                .ok_or_else(|| ctx.err(e.action.span(), "set-bandwidth needs `bandwidth`"))?;
            let bw = *b.get_ref();
            let burst_bytes = bw.bps() as u128 * circuit.burst.as_nanos() as u128 / 8_000_000_000;
            if link != Some(PathId::Vpn)
                && (bw > circuit.port_speed || burst_bytes < MAX_FRAME as u128)
            {
                return Err(ctx.err(
                    b.span(),
                    format!("{bw} must be at most the port speed {} and large enough for the policer bucket to hold a frame", circuit.port_speed),
                ));
            }
            if bw.bps() == 0 {
                return Err(ctx.err(
                    b.span(),
                    "must be more than zero (use link-down to stop a link)",
                ));
            }
            Action::SetBandwidth(link, bw)
        }
        RawAction::SetLatency => {
            unexpected(e.bandwidth.is_some(), "bandwidth")?;
            let l = e
                .latency
                .as_ref()
                .ok_or_else(|| ctx.err(e.action.span(), "set-latency needs `latency`"))?;
            Action::SetLatency(need_link()?, *l.get_ref())
        }
    };
    Ok(EventConfig { at, action })
}

/// A number or unit string from `[check]` or `[[expect]]`, in base units,
/// with the text as written.
fn raw_quantity(ctx: &Ctx, q: &Spanned<RawQuantity>) -> R<(f64, String)> {
    match q.get_ref() {
        RawQuantity::Int(i) => Ok((*i as f64, i.to_string())),
        RawQuantity::Float(f) => Ok((*f, f.to_string())),
        RawQuantity::Text(t) => quantity(t)
            .map(|v| (v, t.clone()))
            .map_err(|m| ctx.err(q.span(), m)),
        RawQuantity::Table(_) => Err(ctx.err(
            q.span(),
            "expected a number or a string; quote metric paths that hold dots: \"flows.voice.latency_ns.p99\" = \"1%\"",
        )),
    }
}

/// Checks the syntax of a metric path or pattern: dot-separated, no empty
/// segment, `*` only as a glob.
fn metric_syntax(path: &str) -> Result<Vec<&str>, String> {
    let segs: Vec<&str> = path.split('.').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(format!(
            "`{path}` is not a metric path such as \"flows.voice.latency_ns.p99\" (empty segment)"
        ));
    }
    Ok(segs)
}

fn check_table(ctx: &Ctx, c: &RawCheck) -> R<CheckConfig> {
    let mut tolerance = Vec::new();
    for (pattern, q) in &c.tolerance {
        metric_syntax(pattern).map_err(|m| ctx.err(q.span(), m))?;
        let t = match q.get_ref() {
            RawQuantity::Text(t) => Tolerance::parse(t),
            _ => Tolerance::Absolute(raw_quantity(ctx, q)?.0).checked(),
        }
        .map_err(|m| ctx.err(q.span(), m))?;
        tolerance.push((pattern.clone(), t));
    }
    Ok(CheckConfig { tolerance })
}

/// Top-level groups of the report that hold deterministic numbers.
const METRIC_ROOTS: [&str; 9] = [
    "flows",
    "links",
    "gateway",
    "drops",
    "failovers",
    "timeline",
    "azure_monitor",
    "seed",
    "duration_ns",
];

fn expectations(
    ctx: &Ctx,
    list: &[RawExpect],
    flows: &[FlowConfig],
    has_vpn: bool,
) -> R<Vec<ExpectConfig>> {
    list.iter()
        .map(|e| {
            let span = e.metric.span();
            let bad = |m: String| ctx.err(span.clone(), m);
            let segs = metric_syntax(e.metric.get_ref()).map_err(bad)?;
            let literal = |i: usize| segs.get(i).copied().filter(|s| !s.contains('*'));
            let one_of = |i: usize, what: &str, names: &[&str]| -> R<()> {
                match literal(i) {
                    Some(s) if !names.contains(&s) => Err(bad(format!(
                        "unknown {what} `{s}` in `{}`: use one of {}",
                        e.metric.get_ref(),
                        names.join(", ")
                    ))),
                    _ => Ok(()),
                }
            };
            let causes: Vec<&str> = crate::model::DropCause::ALL
                .iter()
                .map(|c| c.as_str())
                .collect();
            let links: &[&str] = if has_vpn {
                &["primary", "secondary", "vpn"]
            } else {
                &["primary", "secondary"]
            };
            match literal(0) {
                Some("engine") => {
                    return Err(bad(
                        "engine metrics depend on the machine and cannot be expected".into(),
                    ))
                }
                Some("flows") => {
                    let names: Vec<&str> = flows.iter().map(|f| f.name.as_str()).collect();
                    one_of(1, "flow", &names)?;
                    if literal(2) == Some("drops") {
                        one_of(3, "drop cause", &causes)?;
                    }
                }
                Some("links") => {
                    one_of(1, "link", links)?;
                    one_of(2, "direction", &["in", "out"])?;
                    if literal(3) == Some("drops") {
                        one_of(4, "drop cause", &causes)?;
                    }
                }
                Some("gateway") => {
                    one_of(1, "direction", &["in", "out"])?;
                    if literal(2) == Some("drops") {
                        one_of(3, "drop cause", &causes)?;
                    }
                }
                _ => one_of(0, "metric group", &METRIC_ROOTS)?,
            }
            let bound = |q: &Option<Spanned<RawQuantity>>| -> R<Option<Bound>> {
                q.as_ref()
                    .map(|q| raw_quantity(ctx, q).map(|(value, text)| Bound { value, text }))
                    .transpose()
            };
            let (min, max) = (bound(&e.min)?, bound(&e.max)?);
            match (&min, &max) {
                (None, None) => {
                    return Err(bad("an expectation needs `min`, `max` or both".into()))
                }
                (Some(lo), Some(hi)) if lo.value > hi.value => {
                    return Err(bad(format!("min {} is above max {}", lo.text, hi.text)))
                }
                _ => {}
            }
            let at = super::locate(ctx.source, Some(span.clone()));
            Ok(ExpectConfig {
                metric: e.metric.get_ref().clone(),
                min,
                max,
                location: format!("{}:{}:{}: {}", ctx.file, at.line, at.column, at.key),
            })
        })
        .collect()
}

fn report_interval(
    ctx: &Ctx,
    raw: &RawReport,
    duration: SimDuration,
    series: u64,
) -> R<SimDuration> {
    let explicit = raw.interval.as_ref().map(|v| *v.get_ref());
    if let Some(v) = &raw.interval {
        if *v.get_ref() == SimDuration::ZERO {
            return Err(ctx.err(v.span(), "must be longer than zero"));
        }
    }
    fit_interval(duration, series, explicit).map_err(|e| {
        let span = raw.interval.as_ref().map_or(0..0, |v| v.span());
        ctx.err(span, e.to_string())
    })
}

/// A `tcp-bulk` or `tcp-rr` flow.
#[allow(clippy::too_many_arguments)] // the parts of the flow already checked by `flow`
fn tcp_flow(
    ctx: &Ctx,
    index: usize,
    f: &RawFlow,
    from: IpAddr,
    to: IpAddr,
    direction: Direction,
    end: SimTime,
    has_vpn: bool,
) -> R<FlowConfig> {
    use crate::traffic::tcp::{CongestionControl, TcpFlowKind};
    for (present, key) in [
        (f.rate.is_some(), "rate"),
        (f.size.is_some(), "size"),
        (f.on.is_some(), "on"),
        (f.off.is_some(), "off"),
    ] {
        if present {
            return Err(ctx.err(
                f.name.span(),
                format!("`{key}` does not apply to TCP flows"),
            ));
        }
    }
    let positive = |v: &Option<Spanned<i64>>, key: &str| -> R<u32> {
        match v {
            Some(x) => u32::try_from(*x.get_ref())
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ctx.err(
                        x.span(),
                        format!("`{key}` must be a positive number of bytes"),
                    )
                }),
            None => Err(ctx.err(f.name.span(), format!("a tcp-rr flow needs `{key}`"))),
        }
    };
    let app = match f.kind {
        RawFlowKind::TcpRr => {
            if let Some(b) = &f.bytes {
                return Err(ctx.err(
                    b.span(),
                    "`bytes` applies to tcp-bulk; tcp-rr has `request` and `response`",
                ));
            }
            TcpFlowKind::RequestResponse {
                request: positive(&f.request, "request")?,
                response: positive(&f.response, "response")?,
            }
        }
        _ => {
            if let Some(x) = f.request.as_ref().or(f.response.as_ref()) {
                return Err(ctx.err(x.span(), "`request` and `response` apply to tcp-rr"));
            }
            let bytes = match &f.bytes {
                Some(b) if b.get_ref().bytes() == 0 => return Err(ctx.err(
                    b.span(),
                    "a transfer of zero bytes: give a positive size, or none to send until stop",
                )),
                Some(b) => Some(b.get_ref().bytes()),
                None => None,
            };
            TcpFlowKind::Bulk { bytes }
        }
    };
    let cc = match f.cc.as_ref().map(|c| (c, c.get_ref().as_str())) {
        None | Some((_, "cubic")) => CongestionControl::Cubic,
        Some((_, "reno")) => CongestionControl::Reno,
        Some((_, "none")) => CongestionControl::None,
        Some((c, other)) => {
            return Err(ctx.err(
                c.span(),
                format!("unknown congestion control `{other}`: use cubic, reno or none"),
            ))
        }
    };
    // MSS from the path MTU: 1500-byte IP MTU on the circuit; with a VPN the
    // CE clamps every TCP SYN to 1350 so that traffic survives a failover to
    // the tunnel (Azure's guidance, fact sheet 4.8).
    let v4 = from.is_ipv4();
    let default_mss = if has_vpn {
        1350
    } else if v4 {
        1460
    } else {
        1440
    };
    // The smallest MSS is the family's minimum IP MTU less the headers:
    // 576 - 40 for IPv4 (RFC 879), 1280 - 60 for IPv6 (RFC 8200); the
    // largest is the circuit's 1500-byte IP MTU less the headers.
    let mss = match &f.mss {
        None => default_mss,
        Some(m) => u16::try_from(*m.get_ref())
            .ok()
            .filter(|v| (if v4 { 536..=1460 } else { 1220..=1440 }).contains(v))
            .ok_or_else(|| {
                ctx.err(
                    m.span(),
                    "mss must be 536 to 1460 (IPv4) or 1220 to 1440 (IPv6): the circuit's IP MTU is 1500",
                )
            })?,
    };
    let max = limits::MAX_TCP_BUFFER.bytes();
    let buffer = match &f.buffer {
        None => DEFAULT_TCP_BUFFER,
        Some(b) => u32::try_from(b.get_ref().bytes())
            .ok()
            .filter(|v| *v >= mss as u32 && u64::from(*v) <= max)
            .ok_or_else(|| {
                ctx.err(
                    b.span(),
                    format!(
                        "buffer must be at least one MSS ({mss} bytes) and at most eremu's limit of {}",
                        limits::MAX_TCP_BUFFER
                    ),
                )
            })?,
    };
    let (start, stop) = active_time(ctx, f, end)?;
    let flow = FlowConfig {
        name: f.name.get_ref().clone(),
        kind: FlowKind::Tcp(TcpSpec {
            app,
            cc,
            buffer,
            mss,
        }),
        from,
        to,
        src_port: port(&f.src_port).unwrap_or(49_152 + (index as u16 % 16_000)),
        dst_port: port(&f.dst_port).unwrap_or(5_201),
        direction,
        rate: BitRate(0),
        size: SizeDist::Fixed(0),
        dscp: f.dscp.as_ref().map_or(Ok(0), |d| dscp(ctx, d))?,
        start,
        stop,
    };
    tcp_checks(ctx, f, &flow)?;
    Ok(flow)
}

/// The TCP module's own checks on a flow, each error at the key it is about.
fn tcp_checks(ctx: &Ctx, f: &RawFlow, flow: &FlowConfig) -> R<()> {
    use crate::traffic::tcp::TcpConfigError as E;
    let Err(e) = crate::traffic::tcp::flow_config(flow, 0).validate() else {
        return Ok(());
    };
    let port_span = |p: &Option<Spanned<u16>>| p.as_ref().map_or(f.name.span(), |p| p.span());
    let span = match &e {
        E::ZeroPort("client") => port_span(&f.src_port),
        E::ZeroPort(_) => port_span(&f.dst_port),
        E::NotUnicast(ip) if *ip == flow.from => f.from.span(),
        E::NotUnicast(_) | E::SameAddress(_) | E::FamilyMismatch { .. } => f.to.span(),
        E::Mss { .. } => f.mss.as_ref().map_or(f.name.span(), |m| m.span()),
        E::Buffer { .. } => f.buffer.as_ref().map_or(f.name.span(), |b| b.span()),
        _ => f.name.span(),
    };
    Err(ctx.err(span, format!("not valid for a TCP flow: {e}")))
}

/// The socket buffers of all TCP flows together stay within
/// [`limits::MAX_TCP_BUFFER_TOTAL`].
fn tcp_buffer_total(ctx: &Ctx, raw: &[RawFlow], flows: &[FlowConfig]) -> R<()> {
    let mut total = 0u64;
    for (r, f) in raw.iter().zip(flows) {
        if let FlowKind::Tcp(spec) = f.kind {
            total += u64::from(spec.buffer);
            if total > limits::MAX_TCP_BUFFER_TOTAL.bytes() {
                let span = r.buffer.as_ref().map_or(r.name.span(), |b| b.span());
                return Err(ctx.err(
                    span,
                    format!(
                        "the TCP flows' socket buffers add up to more than eremu's limit of {} \
                         (buffer x flows; the default buffer is {}): give these flows a smaller `buffer`",
                        limits::MAX_TCP_BUFFER_TOTAL,
                        ByteSize(DEFAULT_TCP_BUFFER.into())
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn port(p: &Option<Spanned<u16>>) -> Option<u16> {
    p.as_ref().map(|p| *p.get_ref())
}

/// A flow's `start` and `stop`: stop defaults to the scenario's end, never
/// after it, and start comes before stop.
fn active_time(ctx: &Ctx, f: &RawFlow, end: SimTime) -> R<(SimTime, SimTime)> {
    let start = f
        .start
        .as_ref()
        .map_or(SimTime::ZERO, |s| SimTime::ZERO + *s.get_ref());
    let stop = f
        .stop
        .as_ref()
        .map_or(end, |s| SimTime::ZERO + *s.get_ref());
    if let Some(s) = &f.stop {
        if stop > end {
            return Err(ctx.err(
                s.span(),
                format!("stop {stop} is after the scenario's end ({end})"),
            ));
        }
    }
    if start >= stop {
        let span = f.start.as_ref().map_or(f.name.span(), |s| s.span());
        return Err(ctx.err(span, format!("start {start} is not before stop {stop}")));
    }
    Ok((start, stop))
}
