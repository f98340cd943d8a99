//! `[bgp]` and `[[advertise]]`: the control plane's part of a scenario.

use ipnet::{IpNet, Ipv4Net};
use serde::Deserialize;
use toml::Spanned;

use super::config::PathId;
use super::validate::Ctx;
use super::ScenarioError;
use crate::units::{SimDuration, NS_PER_SEC};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBgp {
    pub asn: Spanned<i64>,
    pub keepalive: Option<Spanned<SimDuration>>,
    pub hold_time: Option<Spanned<SimDuration>>,
    pub connect_retry: Option<Spanned<SimDuration>>,
    pub bfd: Option<Spanned<RawBfd>>,
    pub local_pref: Option<RawLocalPref>,
    pub as_path_prepend: Option<RawPrepend>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBfd {
    pub interval: Spanned<SimDuration>,
    pub multiplier: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocalPref {
    pub expressroute: Option<u32>,
    pub vpn: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrepend {
    pub primary: Option<Spanned<i64>>,
    pub secondary: Option<Spanned<i64>>,
    pub vpn: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdvertise {
    pub prefix: Spanned<String>,
    pub via: Spanned<Vec<Spanned<String>>>,
    pub side: Option<Spanned<String>>,
    /// Advertise the prefix as its subnets of this length.
    pub split: Option<Spanned<u8>>,
}

/// Which side originates an advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The VNet, towards on-premises.
    Azure,
    /// On-premises, towards Azure.
    Onprem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    pub prefix: Ipv4Net,
    pub via: Vec<PathId>,
    pub side: Side,
}

/// The validated control plane.
#[derive(Debug, Clone)]
pub struct BgpScenario {
    /// The customer's ASN.
    pub asn: u32,
    pub keepalive: SimDuration,
    pub hold_time: SimDuration,
    pub connect_retry: SimDuration,
    /// Transmit interval and detect multiplier, when BFD runs.
    pub bfd: Option<(SimDuration, u8)>,
    pub local_pref_er: u32,
    pub local_pref_vpn: u32,
    /// AS-path prepends by the customer, per path (primary, secondary, vpn).
    pub prepend: [u32; 3],
    /// Prefixes the MSEEs accept from the customer (4,000; 10,000 Premium).
    pub max_prefixes: usize,
    /// Explicit advertisements; when none are given for a side, that side
    /// advertises all its prefixes over every path.
    pub advertise: Vec<Advertisement>,
}

/// Microsoft's ASN and the VPN gateway's (fact sheet 7.5, 4.18).
pub const MICROSOFT_ASN: u32 = 12_076;
pub const VPN_GATEWAY_ASN: u32 = 65_515;
/// Most prefixes all `[[advertise]]` entries may give together, splits
/// expanded. Each costs 1 to 2 KB (up to 8.5 KB with the longest AS path)
/// across the sessions and tables: 100,000 keeps a run under 1 GiB (830 MB
/// measured at worst; 100,000 Azure prefixes install in 0.4 s), while
/// staying 10 times above the most an MSEE accepts (10,000 with Premium),
/// so scenarios can show a session dropped for too many prefixes.
pub const MAX_ADVERTISED: usize = 100_000;
/// Most AS-path prepends per path: with the CE's own AS the path is then at
/// most 255 ASNs, one AS_SEQUENCE segment (RFC 4271 4.3, one-octet
/// length), about 1 KB in every UPDATE. Real routers cap lower (paths of
/// more than a few dozen ASNs are commonly filtered).
pub const MAX_PREPEND: u32 = 254;
/// ConnectRetry bounds, in whole seconds: FRR's `timers connect 1-65535`
/// (RFC 4271 suggests 120 s).
pub const CONNECT_RETRY_SECS: (u64, u64) = (1, 65_535);
/// Hold time bounds, in whole seconds: the MSEE's minimum, and the most the
/// OPEN message's two-octet field carries.
pub const HOLD_TIME_SECS: (u64, u64) = (10, 65_535);
/// BFD transmit interval bounds: FRR's `transmit-interval 10-60000` ms.
/// The MSEE runs 300 ms and never faster, and the slower peer wins.
pub const BFD_INTERVAL: (SimDuration, SimDuration) =
    (SimDuration::from_millis(10), SimDuration::from_secs(60));

type R<T> = Result<T, ScenarioError>;

#[allow(clippy::too_many_arguments)] // one call site, each argument a distinct part of the scenario
pub(super) fn bgp(
    ctx: &Ctx,
    b: &RawBgp,
    adv: &[RawAdvertise],
    active_passive: bool,
    premium: bool,
    has_vpn: bool,
    onprem: &[IpNet],
    azure: &[IpNet],
) -> R<BgpScenario> {
    let asn = u32::try_from(*b.asn.get_ref())
        .ok()
        .filter(|a| *a != 0 && *a != MICROSOFT_ASN && !(65_515..=65_520).contains(a))
        .ok_or_else(|| ctx.err(b.asn.span(), "a customer ASN is 1..4294967295, not 12076 (Microsoft) nor 65515..65520 (reserved by Azure)"))?;
    let hold_time = whole_secs(
        ctx,
        &b.hold_time,
        180,
        HOLD_TIME_SECS,
        ("the hold time", " (the MSEE's minimum)"),
    )?;
    let keepalive = b
        .keepalive
        .as_ref()
        .map_or(SimDuration::from_secs(60), |k| *k.get_ref());
    if let Some(k) = &b.keepalive {
        if keepalive < SimDuration::from_secs(3)
            || keepalive >= hold_time
            || !keepalive.as_nanos().is_multiple_of(NS_PER_SEC)
        {
            return Err(ctx.err(
                k.span(),
                "the keepalive is whole seconds, at least 3 s and below the hold time",
            ));
        }
    }
    let connect_retry = whole_secs(
        ctx,
        &b.connect_retry,
        5,
        CONNECT_RETRY_SECS,
        ("connect_retry", ""),
    )?;
    let bfd = b.bfd.as_ref().map(|f| bfd(ctx, f.get_ref())).transpose()?;
    let lp = b.local_pref.as_ref();
    let prepend = match &b.as_path_prepend {
        None => [0, if active_passive { 3 } else { 0 }, 0],
        Some(p) => [
            prepend_count(ctx, &p.primary)?,
            prepend_count(ctx, &p.secondary)?,
            prepend_count(ctx, &p.vpn)?,
        ],
    };
    let mut advertise = Vec::new();
    for a in adv {
        let side = match a.side.as_ref().map(|s| s.get_ref().as_str()) {
            None | Some("azure") => Side::Azure,
            Some("onprem") => Side::Onprem,
            Some(other) => {
                return Err(ctx.err(
                    a.side.as_ref().expect("some").span(),
                    format!("side is \"azure\" or \"onprem\", not `{other}`"),
                ))
            }
        };
        let net: Ipv4Net = a.prefix.get_ref().parse().map_err(|_| {
            ctx.err(
                a.prefix.span(),
                format!(
                    "`{}` is not an IPv4 prefix (BGP here carries IPv4 unicast)",
                    a.prefix.get_ref()
                ),
            )
        })?;
        let space = if side == Side::Azure { azure } else { onprem };
        if !space.iter().any(|p| p.contains(&IpNet::V4(net))) {
            return Err(ctx.err(
                a.prefix.span(),
                format!(
                    "{net} is not inside the {} prefixes",
                    if side == Side::Azure {
                        "Azure"
                    } else {
                        "on-premises"
                    }
                ),
            ));
        }
        let mut via = Vec::new();
        for v in a.via.get_ref() {
            let p = match v.get_ref().as_str() {
                "primary" => PathId::Primary,
                "secondary" => PathId::Secondary,
                "vpn" if has_vpn => PathId::Vpn,
                "vpn" => return Err(ctx.err(v.span(), "`vpn` needs a [vpn] section")),
                other => {
                    return Err(ctx.err(
                        v.span(),
                        format!("unknown path `{other}`: use primary, secondary or vpn"),
                    ))
                }
            };
            if !via.contains(&p) {
                via.push(p);
            }
        }
        if via.is_empty() {
            return Err(ctx.err(a.via.span(), "via needs at least one path"));
        }
        let nets: Vec<Ipv4Net> = match &a.split {
            None => vec![net],
            Some(s) => {
                let len = *s.get_ref();
                if len < net.prefix_len() || len > 32 {
                    return Err(ctx.err(
                        s.span(),
                        format!("split must be between /{} and /32", net.prefix_len()),
                    ));
                }
                let count = 1u64 << (len - net.prefix_len());
                if advertise.len() as u64 + count > MAX_ADVERTISED as u64 {
                    return Err(ctx.err(s.span(), too_many(advertise.len() as u64 + count)));
                }
                net.subnets(len)
                    .map_err(|_| ctx.err(s.span(), "invalid split"))?
                    .collect()
            }
        };
        if advertise.len() + nets.len() > MAX_ADVERTISED {
            return Err(ctx.err(
                a.prefix.span(),
                too_many((advertise.len() + nets.len()) as u64),
            ));
        }
        advertise.extend(nets.into_iter().map(|prefix| Advertisement {
            prefix,
            via: via.clone(),
            side,
        }));
    }
    Ok(BgpScenario {
        asn,
        keepalive,
        hold_time,
        connect_retry,
        bfd,
        local_pref_er: lp.and_then(|l| l.expressroute).unwrap_or(150),
        local_pref_vpn: lp.and_then(|l| l.vpn).unwrap_or(100),
        prepend,
        max_prefixes: if premium { 10_000 } else { 4_000 },
        advertise,
    })
}

/// A time in whole seconds within `(lo, hi)`, or `default` seconds when absent.
fn whole_secs(
    ctx: &Ctx,
    v: &Option<Spanned<SimDuration>>,
    default: u64,
    (lo, hi): (u64, u64),
    (what, why): (&str, &str),
) -> R<SimDuration> {
    let Some(v) = v else {
        return Ok(SimDuration::from_secs(default));
    };
    let ns = v.get_ref().as_nanos();
    if !ns.is_multiple_of(NS_PER_SEC) || !(lo..=hi).contains(&(ns / NS_PER_SEC)) {
        return Err(ctx.err(
            v.span(),
            format!("{what} is whole seconds, {lo} s{why} to {hi} s"),
        ));
    }
    Ok(*v.get_ref())
}

fn too_many(n: u64) -> String {
    format!("the [[advertise]] entries give {n} prefixes; at most {MAX_ADVERTISED} in all (each MSEE accepts 4,000, 10,000 with Premium)")
}

/// `bgp.bfd`: each sub-key checked against its own bounds, with its line.
fn bfd(ctx: &Ctx, f: &RawBfd) -> R<(SimDuration, u8)> {
    let interval = *f.interval.get_ref();
    let (lo, hi) = BFD_INTERVAL;
    if !interval.as_nanos().is_multiple_of(1_000) || interval < lo || interval > hi {
        return Err(ctx.err(
            f.interval.span(),
            format!(
                "the BFD interval is whole microseconds, {} ms to {} s",
                lo.as_nanos() / 1_000_000,
                hi.as_nanos() / 1_000_000_000
            ),
        ));
    }
    let mult = u8::try_from(*f.multiplier.get_ref())
        .ok()
        .filter(|m| *m >= 1)
        .ok_or_else(|| ctx.err(f.multiplier.span(), "the BFD multiplier is 1..255"))?;
    Ok((interval, mult))
}

/// One `bgp.as_path_prepend` count: 0..=[`MAX_PREPEND`].
fn prepend_count(ctx: &Ctx, v: &Option<Spanned<i64>>) -> R<u32> {
    let Some(v) = v else { return Ok(0) };
    u32::try_from(*v.get_ref())
        .ok()
        .filter(|n| *n <= MAX_PREPEND)
        .ok_or_else(|| {
            ctx.err(
                v.span(),
                format!("at most {MAX_PREPEND} prepends: the AS path, with the CE's AS, fits one 255-ASN segment"),
            )
        })
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
