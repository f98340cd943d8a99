//! The validated scenario: every value present, in range and consistent. Code
//! downstream of `Config` never re-checks what is here.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use crate::model::gateway::ErGatewaySku;
use crate::model::vpn::VpnGatewaySku;
use crate::units::{BitRate, ByteSize, Ratio, SimDuration, SimTime};

#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub description: String,
    pub duration: SimDuration,
    pub seed: u64,
    pub onprem: Vec<IpNet>,
    pub azure: Vec<IpNet>,
    pub circuit: CircuitConfig,
    pub gateway: GatewayConfig,
    pub vpn: Option<VpnConfig>,
    pub flows: Vec<FlowConfig>,
    pub events: Vec<EventConfig>,
    pub report: ReportConfig,
    pub capture: CaptureConfig,
    /// `[bgp]` and `[[advertise]]`: the control plane, when modeled.
    pub bgp: Option<super::control::BgpScenario>,
    /// `[check]`: tolerances for `eremu check` against a baseline.
    pub check: CheckConfig,
    /// `[[expect]]`: assertions checked by `eremu check` and `eremu run --check`.
    pub expect: Vec<ExpectConfig>,
}

impl Config {
    /// Runs the scenario for `d` instead: flows that ran to the old end run
    /// to the new one; flows and events past a shorter end are cut.
    pub fn set_duration(&mut self, d: SimDuration) {
        let (old_end, new_end) = (SimTime::ZERO + self.duration, SimTime::ZERO + d);
        self.duration = d;
        for f in &mut self.flows {
            if f.stop == old_end || f.stop > new_end {
                f.stop = new_end;
            }
        }
        self.flows.retain(|f| f.start < f.stop);
        self.events.retain(|e| e.at < new_end);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Both links carry traffic; flows are hashed per 5-tuple (Microsoft's default).
    ActiveActive,
    /// Primary carries everything while it is up.
    ActivePassive,
}

#[derive(Debug, Clone)]
pub struct CircuitConfig {
    /// Policed rate of each link, each direction.
    pub bandwidth: BitRate,
    /// Line rate of each physical link (serialization).
    pub port_speed: BitRate,
    pub mode: Mode,
    pub direct: bool,
    pub premium: bool,
    /// Policer bucket depth expressed as time at `bandwidth`.
    pub burst: SimDuration,
    pub primary: CircuitLinkConfig,
    pub secondary: CircuitLinkConfig,
    /// Private peering's VLAN id (C-tag).
    pub vlan: u16,
    /// QinQ: an outer S-tag per link (`primary`, `secondary`) over the C-tag.
    pub s_tags: Option<[u16; 2]>,
}

#[derive(Debug, Clone, Copy)]
pub struct CircuitLinkConfig {
    pub latency: SimDuration,
    pub queue: ByteSize,
}

#[derive(Debug, Clone, Copy)]
pub struct GatewayConfig {
    pub sku: ErGatewaySku,
    pub fastpath: bool,
    pub bps: BitRate,
    pub pps: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct VpnConfig {
    pub sku: VpnGatewaySku,
    /// Aggregate throughput of the VPN gateway (per direction), outer IP bytes.
    pub rate: BitRate,
    pub latency: SimDuration,
    pub jitter: SimDuration,
    pub loss: Ratio,
    /// Largest inner IP packet the tunnel carries.
    pub mtu: u32,
    pub queue: ByteSize,
    /// ESP in UDP 4500.
    pub nat_traversal: bool,
    /// Largest outer IP packet the Internet path carries.
    pub path_mtu: u32,
    /// On-premises to Azure, and back.
    pub sa_in: SaConfig,
    pub sa_out: SaConfig,
    pub onprem_address: Ipv4Addr,
    pub azure_address: Ipv4Addr,
}

/// One direction of the IPsec tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaConfig {
    pub spi: u32,
    /// AES-256 key (32 bytes) then salt (4 bytes), as RFC 4106 keys them.
    pub key: [u8; 36],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// On-premises to Azure (Azure Monitor's "In").
    In,
    /// Azure to on-premises ("Out").
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlowKind {
    /// Constant bit rate.
    Cbr,
    /// Poisson arrivals with the given mean rate.
    Poisson,
    /// CBR during `on`, silent during `off`, repeating from `start`.
    OnOff { on: SimDuration, off: SimDuration },
    /// A TCP connection between two smoltcp hosts.
    Tcp(TcpSpec),
    /// Real frames from outside the model (a live interface or a replayed
    /// capture), one flow per 5-tuple; `protocol` is the IP protocol number.
    /// Never written in a scenario file: added at run time.
    External { protocol: u8 },
}

/// What a TCP flow's applications do, and their sockets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TcpSpec {
    pub app: crate::traffic::tcp::TcpFlowKind,
    pub cc: crate::traffic::tcp::CongestionControl,
    /// Send and receive buffer of each socket, bytes.
    pub buffer: u32,
    pub mss: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SizeDist {
    Fixed(u32),
    /// Uniform over the inclusive range.
    Uniform(u32, u32),
    /// Simple IMIX by packet count: 7 x 64, 4 x 576, 1 x 1500 IP bytes.
    Imix,
}

impl SizeDist {
    /// Mean IP packet size in bytes.
    pub fn mean(&self) -> f64 {
        match *self {
            SizeDist::Fixed(s) => s as f64,
            SizeDist::Uniform(a, b) => (a as f64 + b as f64) / 2.0,
            SizeDist::Imix => (7.0 * 64.0 + 4.0 * 576.0 + 1500.0) / 12.0,
        }
    }
    pub fn max(&self) -> u32 {
        match *self {
            SizeDist::Fixed(s) => s,
            SizeDist::Uniform(_, b) => b,
            SizeDist::Imix => 1500,
        }
    }
    pub fn min(&self) -> u32 {
        match *self {
            SizeDist::Fixed(s) => s,
            SizeDist::Uniform(a, _) => a,
            SizeDist::Imix => 64,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FlowConfig {
    pub name: String,
    pub kind: FlowKind,
    pub from: IpAddr,
    pub to: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub direction: Direction,
    /// Offered IP-layer rate.
    pub rate: BitRate,
    pub size: SizeDist,
    pub dscp: u8,
    pub start: SimTime,
    /// No packet is sent at or after `stop`; never later than the scenario's end.
    pub stop: SimTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathId {
    Primary,
    Secondary,
    Vpn,
}

impl PathId {
    pub const ALL: [PathId; 3] = [PathId::Primary, PathId::Secondary, PathId::Vpn];
    pub fn as_str(self) -> &'static str {
        match self {
            PathId::Primary => "primary",
            PathId::Secondary => "secondary",
            PathId::Vpn => "vpn",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Action {
    /// Carrier loss: both ends see it at once.
    LinkDown(PathId),
    /// Ends a carrier loss or a silent failure.
    LinkUp(PathId),
    /// The link black-holes traffic and nothing signals it.
    SilentFail(PathId),
    /// The MSEE (or the VPN gateway) fails: it stops forwarding and
    /// answering, every session on it goes silent.
    RouterDown(PathId),
    RouterUp(PathId),
    /// The BGP session over the path is reset (NOTIFICATION Cease).
    BgpReset(PathId),
    /// `None` sets both circuit links.
    SetBandwidth(Option<PathId>, BitRate),
    SetLatency(PathId, SimDuration),
}

#[derive(Debug, Clone, Copy)]
pub struct EventConfig {
    pub at: SimTime,
    pub action: Action,
}

#[derive(Debug, Clone, Copy)]
pub struct ReportConfig {
    /// A gap in a flow's deliveries with losses in it counts as an outage when it
    /// lasts at least this long.
    pub outage_min: SimDuration,
    /// Length of one interval of the time series (`report.interval`).
    pub interval: SimDuration,
}

/// Default length of one time-series interval.
pub const DEFAULT_INTERVAL: SimDuration = SimDuration::from_millis(10);
/// Most cells (intervals x series, a series being a link direction or a flow)
/// the time series may hold: each cell is a fixed 120 bytes, so at most
/// about 60 MB. Without `report.interval`, a longer run gets the smallest
/// multiple of the default that fits; an explicit interval that does not fit
/// is refused.
pub const MAX_TIMESERIES_CELLS: u64 = 500_000;

/// Where frames are captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaptureTap {
    /// Between on-premises hosts and the CE.
    OnpremCe,
    /// The primary link, CE to MSEE (captured at the receiving end).
    PrimaryMsee,
    SecondaryMsee,
    /// The tunnel's outer packets on the Internet.
    VpnInternet,
    /// Between the gateways and the VMs.
    AzureGw,
    /// Every dropped packet, with its cause and place as a comment.
    Drops,
}

impl CaptureTap {
    pub const ALL: [CaptureTap; 6] = [
        CaptureTap::OnpremCe,
        CaptureTap::PrimaryMsee,
        CaptureTap::SecondaryMsee,
        CaptureTap::VpnInternet,
        CaptureTap::AzureGw,
        CaptureTap::Drops,
    ];
    pub fn name(self) -> &'static str {
        match self {
            CaptureTap::OnpremCe => "onprem-ce",
            CaptureTap::PrimaryMsee => "primary-msee",
            CaptureTap::SecondaryMsee => "secondary-msee",
            CaptureTap::VpnInternet => "vpn-internet",
            CaptureTap::AzureGw => "azure-gw",
            CaptureTap::Drops => "drops",
        }
    }
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snaplen {
    /// Whole frames up to 1 Gbps circuits; above, headers plus 64 bytes.
    Auto,
    /// At most this many bytes of each frame.
    Bytes(u32),
}

#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub enabled: bool,
    /// Sorted, without duplicates.
    pub taps: Vec<CaptureTap>,
    pub snaplen: Snaplen,
    /// Only frames with timestamps in `[start, end)`.
    pub window: Option<(SimTime, SimTime)>,
    /// Only these flows (indices into `flows`); `None` is all.
    pub flows: Option<Vec<usize>>,
    /// One file per tap instead of one file with an interface per tap.
    pub split: bool,
}

/// `[check]`.
#[derive(Debug, Clone, Default)]
pub struct CheckConfig {
    /// Metric pattern (`*` globs a segment) to tolerance, in file order.
    pub tolerance: Vec<(String, Tolerance)>,
}

/// How far a metric may move from its baseline and still pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    /// `|current - baseline| <= x`, in the metric's own unit.
    Absolute(f64),
    /// `|current - baseline| <= x * |baseline|` (`"1%"` is 0.01).
    Relative(f64),
}

impl Tolerance {
    pub const EXACT: Tolerance = Tolerance::Absolute(0.0);

    /// `"1%"` is relative; a number or a unit string (`"2us"`, `"1Mbps"`,
    /// `"10KB"`) is absolute in the metric's base unit.
    pub fn parse(text: &str) -> Result<Tolerance, String> {
        let x = quantity(text).map_err(|_| bad_tolerance(text))?;
        if text.trim().ends_with('%') {
            Tolerance::Relative(x).checked()
        } else {
            Tolerance::Absolute(x).checked()
        }
    }

    /// Rejects negative and non-finite tolerances.
    pub fn checked(self) -> Result<Tolerance, String> {
        match self {
            Tolerance::Absolute(x) | Tolerance::Relative(x) if !(x >= 0.0 && x.is_finite()) => Err(
                format!("tolerance {x} must be a finite number of at least zero"),
            ),
            t => Ok(t),
        }
    }
}

impl std::fmt::Display for Tolerance {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match *self {
            Tolerance::Absolute(0.0) => f.write_str("exact"),
            Tolerance::Absolute(x) => write!(f, "±{x}"),
            Tolerance::Relative(x) => write!(f, "±{}%", x * 100.0),
        }
    }
}

fn bad_tolerance(text: &str) -> String {
    format!("`{text}` is not a tolerance: use a number (absolute), a unit such as \"2us\" or \"1Mbps\" (absolute), or a percentage such as \"1%\" (relative)")
}

/// A quantity in the report's base units: durations in ns, rates in bps,
/// sizes in bytes, `"x%"` as a fraction, or a plain number.
pub fn quantity(text: &str) -> Result<f64, String> {
    use crate::units::{BitRate, ByteSize};
    let t = text.trim();
    if let Some(pct) = t.strip_suffix('%') {
        return match pct.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x / 100.0),
            _ => Err(format!("`{text}` is not a percentage such as \"1.5%\"")),
        };
    }
    if let Ok(x) = t.parse::<f64>() {
        if x.is_finite() {
            return Ok(x);
        }
    }
    if let Ok(d) = t.parse::<SimDuration>() {
        return Ok(d.as_nanos() as f64);
    }
    if let Ok(r) = t.parse::<BitRate>() {
        return Ok(r.bps() as f64);
    }
    if let Ok(b) = t.parse::<ByteSize>() {
        return Ok(b.bytes() as f64);
    }
    Err(format!(
        "`{text}` is not a number or a quantity such as \"5ms\", \"1Gbps\", \"64KiB\" or \"1%\""
    ))
}

/// An `[[expect]]` table, validated as far as possible without running.
#[derive(Debug, Clone)]
pub struct ExpectConfig {
    /// Metric path, may hold `*` globs (see `check`).
    pub metric: String,
    pub min: Option<Bound>,
    pub max: Option<Bound>,
    /// `file:line:column: expect[i].metric`, for messages after the run.
    pub location: String,
}

/// One side of an expectation: its value in base units and as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub value: f64,
    pub text: String,
}
