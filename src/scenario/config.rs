//! The validated scenario: every value present, in range and consistent. Code
//! downstream of `Config` never re-checks what is here.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use crate::model::gateway::ErGatewaySku;
use crate::model::vpn::VpnGatewaySku;
use crate::units::{BitRate, ByteSize, Ratio, SimDuration, SimTime};

/// A validated scenario: every value present, in range and consistent.
///
/// Its settings are read through `Deref` (`cfg.flows`, `cfg.circuit.bandwidth`,
/// ...) and cannot be changed from outside this module: the only changes are
/// the methods below, each of which keeps the whole valid and re-derives what
/// depends on what it changes (the time-series interval on the duration, the
/// tunnel's keys on the seed).
#[derive(Debug, Clone)]
pub struct Config {
    settings: Settings,
    derived: Derived,
}

/// What validation derived rather than read, so that a change re-derives it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Derived {
    /// `report.interval` was written in the file (else it is fitted to the
    /// duration).
    pub explicit_interval: bool,
    /// Time series a run keeps besides its flows (link directions).
    pub link_series: u64,
    /// The tunnel's keys (in, out) were derived from the seed, not written.
    pub derived_keys: [bool; 2],
}

/// Why a change to a validated scenario was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("a duration must be longer than zero")]
    ZeroDuration,
    #[error("a duration of {0} is longer than eremu's limit of {max}", max = super::limits::MAX_DURATION)]
    Duration(SimDuration),
    #[error(
        "{intervals} intervals of {interval} x {series} series over {duration} is more than the time \
         series' cap of {cells} cells; use a report.interval of at least {min}",
        cells = MAX_TIMESERIES_CELLS
    )]
    Interval {
        interval: SimDuration,
        duration: SimDuration,
        intervals: u64,
        series: u64,
        min: SimDuration,
    },
}

impl std::ops::Deref for Config {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

/// The settings of a validated scenario (see [`Config`]).
#[derive(Debug, Clone)]
pub struct Settings {
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
    pub(super) fn new(settings: Settings, derived: Derived) -> Config {
        Config { settings, derived }
    }

    /// Runs the scenario for `d` instead: flows that ran to the old end run
    /// to the new one; flows and events past a shorter end are cut; the
    /// time-series interval is fitted to the new duration (an interval
    /// written in the file is kept, or the change refused when it no longer
    /// fits). Refused, the scenario is unchanged.
    pub fn set_duration(&mut self, d: SimDuration) -> Result<(), ConfigError> {
        self.resize(d, 0)
    }

    /// [`Config::set_duration`] for a run whose flows come from outside
    /// (live mode, replay): the time series is fitted for up to `flows`
    /// more flows than the scenario declares.
    pub fn set_duration_for_external(
        &mut self,
        d: SimDuration,
        flows: u64,
    ) -> Result<(), ConfigError> {
        self.resize(d, flows)
    }

    fn resize(&mut self, d: SimDuration, extra: u64) -> Result<(), ConfigError> {
        let interval = self.fit(d, extra)?;
        let s = &mut self.settings;
        let (old_end, new_end) = (SimTime::ZERO + s.duration, SimTime::ZERO + d);
        s.duration = d;
        s.report.interval = interval;
        for f in &mut s.flows {
            if f.stop == old_end || f.stop > new_end {
                f.stop = new_end;
            }
        }
        s.flows.retain(|f| f.start < f.stop);
        s.events.retain(|e| e.at < new_end);
        Ok(())
    }

    /// The interval for a run of `d` with `extra` flows beyond the declared.
    fn fit(&self, d: SimDuration, extra: u64) -> Result<SimDuration, ConfigError> {
        if d == SimDuration::ZERO {
            return Err(ConfigError::ZeroDuration);
        }
        if d > super::limits::MAX_DURATION {
            return Err(ConfigError::Duration(d));
        }
        let series = self.derived.link_series + self.flows.len() as u64 + extra;
        let explicit = self
            .derived
            .explicit_interval
            .then_some(self.report.interval);
        fit_interval(d, series, explicit)
    }

    /// Uses `seed` instead of the file's: everything drawn from the seed
    /// (flows, jitter, loss, and the tunnel's keys unless the file gives
    /// them) follows, exactly as if the file said `seed = <seed>`.
    pub fn set_seed(&mut self, seed: u64) {
        self.settings.seed = seed;
        let derived = self.derived.derived_keys;
        if let Some(vpn) = &mut self.settings.vpn {
            if derived[0] {
                vpn.sa_in.key = derived_esp_key(seed, "in");
            }
            if derived[1] {
                vpn.sa_out.key = derived_esp_key(seed, "out");
            }
        }
    }

    /// The scenario as a run stopped at `end` saw it: it lasted until `end`,
    /// and no flow ran past it. Only for the books of a run that stopped
    /// early; nothing is re-fitted.
    pub fn ended_at(&self, end: SimTime) -> Config {
        let mut cfg = self.clone();
        let s = &mut cfg.settings;
        let end = end.min(SimTime::ZERO + s.duration);
        s.duration = end - SimTime::ZERO;
        for f in &mut s.flows {
            f.stop = f.stop.min(end);
            f.start = f.start.min(f.stop);
        }
        cfg
    }

    /// Adds flows of real frames (live mode, replay) for the books of the
    /// run; only `FlowKind::External` flows are taken.
    pub fn with_external_flows(&self, flows: impl IntoIterator<Item = FlowConfig>) -> Config {
        let mut cfg = self.clone();
        cfg.settings.flows.extend(
            flows
                .into_iter()
                .filter(|f| matches!(f.kind, FlowKind::External { .. })),
        );
        cfg
    }

    /// Captures every tap for the whole run with `snaplen` (what `eremu
    /// bench --capture` measures).
    pub fn capture_everything(&mut self, snaplen: Snaplen) {
        let c = &mut self.settings.capture;
        c.enabled = true;
        c.taps = CaptureTap::ALL.to_vec();
        c.snaplen = snaplen;
        c.window = None;
        c.flows = None;
        c.split = false;
    }
}

/// The ESP key and salt of one direction of the tunnel, drawn from the seed
/// when the file gives none.
pub(super) fn derived_esp_key(seed: u64, label: &str) -> [u8; 36] {
    use rand::RngCore;
    let mut k = [0u8; 36];
    crate::model::network::rng_for(seed, &format!("esp/key/{label}")).fill_bytes(&mut k);
    k
}

/// The time-series interval for `duration` and `series` series: `explicit`
/// when it fits in [`MAX_TIMESERIES_CELLS`], else the smallest multiple of
/// [`DEFAULT_INTERVAL`] that does.
pub(super) fn fit_interval(
    duration: SimDuration,
    series: u64,
    explicit: Option<SimDuration>,
) -> Result<SimDuration, ConfigError> {
    let max_intervals = (MAX_TIMESERIES_CELLS / series.max(1)).max(1);
    let min = SimDuration(duration.as_nanos().div_ceil(max_intervals));
    match explicit {
        None => {
            let step = DEFAULT_INTERVAL.as_nanos();
            Ok(SimDuration(min.as_nanos().div_ceil(step).max(1) * step))
        }
        Some(interval) => {
            let intervals = duration.as_nanos().div_ceil(interval.as_nanos().max(1));
            if intervals > max_intervals {
                return Err(ConfigError::Interval {
                    interval,
                    duration,
                    intervals,
                    series,
                    min,
                });
            }
            Ok(interval)
        }
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
