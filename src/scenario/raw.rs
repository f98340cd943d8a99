//! The scenario file as written: a serde mirror of the TOML with every key the
//! format accepts. Unknown keys are errors (`deny_unknown_fields`); values that
//! later checks need to point at are kept `Spanned` so errors can name the line.
//! Nothing here is validated beyond types and units: see `validate.rs`.

use serde::Deserialize;
use toml::Spanned;

use crate::units::{BitRate, ByteSize, Ratio, SimDuration};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    pub duration: Spanned<SimDuration>,
    #[serde(default)]
    pub seed: u64,
    pub onprem: RawSide,
    pub azure: RawSide,
    pub circuit: RawCircuit,
    pub gateway: RawGateway,
    pub vpn: Option<RawVpn>,
    #[serde(default)]
    pub flows: Vec<RawFlow>,
    #[serde(default)]
    pub events: Vec<RawEvent>,
    #[serde(default)]
    pub report: RawReport,
    #[serde(default)]
    pub capture: RawCapture,
    pub bgp: Option<super::control::RawBgp>,
    #[serde(default)]
    pub advertise: Vec<super::control::RawAdvertise>,
    #[serde(default)]
    pub check: RawCheck,
    #[serde(default)]
    pub expect: Vec<RawExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSide {
    pub prefixes: Spanned<Vec<Spanned<String>>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RawMode {
    ActiveActive,
    ActivePassive,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCircuit {
    pub bandwidth: Spanned<BitRate>,
    pub port_speed: Option<Spanned<BitRate>>,
    pub mode: Option<RawMode>,
    #[serde(default)]
    pub custom: bool,
    #[serde(default)]
    pub direct: bool,
    /// Premium: 10,000 prefixes from on-premises instead of 4,000.
    #[serde(default)]
    pub premium: bool,
    /// Policer bucket depth, as time at the circuit rate.
    pub burst: Option<Spanned<SimDuration>>,
    /// Private peering's VLAN id (the C-tag).
    pub vlan: Option<Spanned<i64>>,
    /// Outer S-tag for QinQ (per link overrides below).
    pub s_tag: Option<Spanned<i64>>,
    pub encapsulation: Option<RawEncapsulation>,
    #[serde(default)]
    pub primary: RawCircuitLink,
    #[serde(default)]
    pub secondary: RawCircuitLink,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCircuitLink {
    pub latency: Option<SimDuration>,
    pub queue: Option<Spanned<ByteSize>>,
    pub s_tag: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RawEncapsulation {
    Dot1q,
    Qinq,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    pub sku: Spanned<String>,
    #[serde(default)]
    pub fastpath: bool,
    pub scale_units: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVpn {
    pub gateway_sku: Spanned<String>,
    pub generation: Option<Spanned<u8>>,
    pub latency: SimDuration,
    pub jitter: Option<SimDuration>,
    #[serde(default)]
    pub loss: Ratio,
    pub mtu: Option<Spanned<u32>>,
    pub queue: Option<Spanned<ByteSize>>,
    #[serde(default)]
    pub nat_traversal: bool,
    pub path_mtu: Option<Spanned<u32>>,
    /// SPI and key (hex, 32-byte AES key then 4-byte salt) of each direction.
    pub spi_in: Option<Spanned<i64>>,
    pub spi_out: Option<Spanned<i64>>,
    pub key_in: Option<Spanned<String>>,
    pub key_out: Option<Spanned<String>>,
    /// Public addresses of the on-premises VPN device and the Azure VPN gateway.
    pub onprem_address: Option<Spanned<String>>,
    pub azure_address: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RawFlowKind {
    UdpCbr,
    UdpPoisson,
    UdpOnoff,
    TcpBulk,
    TcpRr,
}

/// `size = 1400`, `size = "64..1500"` or `size = "imix"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    Bytes(i64),
    Text(String),
}

/// `dscp = "AF21"` or `dscp = 18`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawDscp {
    Number(i64),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlow {
    pub name: Spanned<String>,
    pub kind: RawFlowKind,
    pub from: Spanned<String>,
    pub to: Spanned<String>,
    pub rate: Option<Spanned<BitRate>>,
    pub size: Option<Spanned<RawSize>>,
    pub dscp: Option<Spanned<RawDscp>>,
    pub start: Option<Spanned<SimDuration>>,
    pub stop: Option<Spanned<SimDuration>>,
    pub on: Option<Spanned<SimDuration>>,
    pub off: Option<Spanned<SimDuration>>,
    pub src_port: Option<Spanned<u16>>,
    pub dst_port: Option<Spanned<u16>>,
    /// TCP: bulk transfer size, congestion control, socket buffers, MSS,
    /// request and response sizes.
    pub bytes: Option<Spanned<ByteSize>>,
    pub cc: Option<Spanned<String>>,
    pub buffer: Option<Spanned<ByteSize>>,
    pub mss: Option<Spanned<i64>>,
    pub request: Option<Spanned<i64>>,
    pub response: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RawAction {
    LinkDown,
    LinkUp,
    SetBandwidth,
    SetLatency,
    Fail,
    MseeDown,
    MseeUp,
    BgpReset,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RawFailMode {
    Silent,
    Carrier,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    pub at: Spanned<SimDuration>,
    pub action: Spanned<RawAction>,
    pub link: Option<Spanned<String>>,
    pub bandwidth: Option<Spanned<BitRate>>,
    pub latency: Option<Spanned<SimDuration>>,
    pub mode: Option<Spanned<RawFailMode>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    pub outage_min: Option<SimDuration>,
    /// Length of one interval of `timeseries.csv` and the plots.
    pub interval: Option<Spanned<SimDuration>>,
}

/// `snaplen = 128` or `snaplen = "auto"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawSnaplen {
    Bytes(i64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapture {
    pub enabled: Option<bool>,
    pub taps: Option<Vec<Spanned<String>>>,
    pub snaplen: Option<Spanned<RawSnaplen>>,
    pub window: Option<Spanned<Vec<SimDuration>>>,
    pub flows: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub split: bool,
}

/// `[check]`: how `eremu check` compares a run with its baseline.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// Metric pattern (`flows.*.latency_ns.p99`) to tolerance.
    #[serde(default)]
    pub tolerance: std::collections::BTreeMap<String, Spanned<RawQuantity>>,
}

/// A number, or a string with a unit (`"5ms"`, `"1Gbps"`, `"1%"`). `Table`
/// catches unquoted dotted keys so that the error can say to quote them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawQuantity {
    Int(i64),
    Float(f64),
    Text(String),
    Table(toml::Table),
}

/// `[[expect]]`: an assertion on one metric of the report.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    pub metric: Spanned<String>,
    pub min: Option<Spanned<RawQuantity>>,
    pub max: Option<Spanned<RawQuantity>>,
}
