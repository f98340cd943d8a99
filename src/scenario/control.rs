//! `[bgp]` and `[[advertise]]`: the control plane's part of a scenario.

use ipnet::{IpNet, Ipv4Net};
use serde::Deserialize;
use toml::Spanned;

use super::config::PathId;
use super::validate::Ctx;
use super::ScenarioError;
use crate::units::SimDuration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBgp {
    pub asn: Spanned<i64>,
    pub keepalive: Option<Spanned<SimDuration>>,
    pub hold_time: Option<Spanned<SimDuration>>,
    pub connect_retry: Option<SimDuration>,
    pub bfd: Option<Spanned<RawBfd>>,
    pub local_pref: Option<RawLocalPref>,
    pub as_path_prepend: Option<RawPrepend>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBfd {
    pub interval: SimDuration,
    pub multiplier: i64,
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
    #[serde(default)]
    pub primary: u32,
    #[serde(default)]
    pub secondary: u32,
    #[serde(default)]
    pub vpn: u32,
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
/// Expanded advertisements beyond this many are refused (memory bound).
pub const MAX_ADVERTISED: usize = 100_000;

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
    let hold_time = b
        .hold_time
        .as_ref()
        .map_or(SimDuration::from_secs(180), |h| *h.get_ref());
    if let Some(h) = &b.hold_time {
        if hold_time < SimDuration::from_secs(10)
            || !hold_time.as_nanos().is_multiple_of(1_000_000_000)
        {
            return Err(ctx.err(
                h.span(),
                "the hold time is whole seconds, at least 10 s (the MSEE's minimum)",
            ));
        }
    }
    let keepalive = b
        .keepalive
        .as_ref()
        .map_or(SimDuration::from_secs(60), |k| *k.get_ref());
    if let Some(k) = &b.keepalive {
        if keepalive < SimDuration::from_secs(3)
            || keepalive >= hold_time
            || !keepalive.as_nanos().is_multiple_of(1_000_000_000)
        {
            return Err(ctx.err(
                k.span(),
                "the keepalive is whole seconds, at least 3 s and below the hold time",
            ));
        }
    }
    let bfd = match &b.bfd {
        None => None,
        Some(f) => {
            let f_ref = f.get_ref();
            let mult = u8::try_from(f_ref.multiplier).ok().filter(|m| *m >= 1);
            match mult {
                Some(m)
                    if f_ref.interval.as_nanos() >= 1_000
                        && f_ref.interval.as_nanos() % 1_000 == 0 =>
                {
                    Some((f_ref.interval, m))
                }
                _ => {
                    return Err(ctx.err(
                        f.span(),
                        "bfd needs interval (whole microseconds) and multiplier 1..255",
                    ))
                }
            }
        }
    };
    let lp = b.local_pref.as_ref();
    let prepend = b
        .as_path_prepend
        .as_ref()
        .map_or([0, if active_passive { 3 } else { 0 }, 0], |p| {
            [p.primary, p.secondary, p.vpn]
        });
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
                if len < net.prefix_len()
                    || len > 32
                    || (1u64 << (len - net.prefix_len())) > MAX_ADVERTISED as u64
                {
                    return Err(ctx.err(s.span(), format!("split must be between /{} and /32 and give at most {MAX_ADVERTISED} prefixes", net.prefix_len())));
                }
                net.subnets(len)
                    .map_err(|_| ctx.err(s.span(), "invalid split"))?
                    .collect()
            }
        };
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
        connect_retry: b.connect_retry.unwrap_or(SimDuration::from_secs(5)),
        bfd,
        local_pref_er: lp.and_then(|l| l.expressroute).unwrap_or(150),
        local_pref_vpn: lp.and_then(|l| l.vpn).unwrap_or(100),
        prepend,
        max_prefixes: if premium { 10_000 } else { 4_000 },
        advertise,
    })
}
