//! The ExpressRoute virtual network gateway: a bits-per-second and a
//! packets-per-second cap per direction, in front of the VNet.
//!
//! SKU figures are the "maximum supported limits" of the ER gateway
//! performance table (fact sheet 5.1, ERGW). The gateway is not burstable (FAQ,
//! fact sheet 5.8), so its buckets are shallow: [`GATEWAY_BUCKET`] of rate.
//! Assumption (not published): the caps apply to each direction separately.

use crate::model::policer::TokenBucket;
use crate::units::{BitRate, SimDuration, SimTime};

/// Bucket depth of the gateway's caps, as time at the cap rate. Assumption:
/// Microsoft publishes no figure; 1 ms keeps the gateway "not burstable".
pub const GATEWAY_BUCKET: SimDuration = SimDuration::from_millis(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErGatewaySku {
    Standard,
    HighPerformance,
    UltraPerformance,
    ErGw1Az,
    ErGw2Az,
    ErGw3Az,
    /// Scalable gateway with this many scale units (1 to 40).
    ErGwScale(u32),
}

impl ErGatewaySku {
    /// Parses a SKU name; `ErGwScale` needs `scale_units`.
    pub fn parse(name: &str, scale_units: Option<u32>) -> Option<Self> {
        Some(match name {
            "Standard" => Self::Standard,
            "HighPerformance" => Self::HighPerformance,
            "UltraPerformance" => Self::UltraPerformance,
            "ErGw1Az" => Self::ErGw1Az,
            "ErGw2Az" => Self::ErGw2Az,
            "ErGw3Az" => Self::ErGw3Az,
            "ErGwScale" => Self::ErGwScale(scale_units.unwrap_or(1)),
            _ => return None,
        })
    }

    pub const NAMES: &'static str =
        "Standard, HighPerformance, UltraPerformance, ErGw1Az, ErGw2Az, ErGw3Az, ErGwScale";

    /// (bits per second, packets per second), fact sheet 5.1 and 5.2.
    pub fn caps(self) -> (BitRate, u64) {
        match self {
            Self::Standard | Self::ErGw1Az => (BitRate::from_gbps(1), 100_000),
            Self::HighPerformance | Self::ErGw2Az => (BitRate::from_gbps(2), 200_000),
            Self::UltraPerformance | Self::ErGw3Az => (BitRate::from_gbps(10), 1_000_000),
            Self::ErGwScale(units) => (BitRate::from_gbps(units as u64), 100_000 * units as u64),
        }
    }

    /// FastPath needs UltraPerformance or ErGw3Az (fact sheet 5.9); ErGwScale is
    /// allowed too, as its support is not confirmed either way.
    pub fn supports_fastpath(self) -> bool {
        matches!(
            self,
            Self::UltraPerformance | Self::ErGw3Az | Self::ErGwScale(_)
        )
    }

    pub fn name(self) -> String {
        match self {
            Self::ErGwScale(u) => format!("ErGwScale({u} units)"),
            other => format!("{other:?}"),
        }
    }
}

/// Why the gateway refused a packet (both map to drop cause `gateway`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayLimit {
    Bits,
    Packets,
}

/// One direction of the gateway: two token buckets, both must pass.
#[derive(Debug, Clone)]
pub struct ErGateway {
    bits: TokenBucket,
    packets: TokenBucket,
}

impl ErGateway {
    pub fn new(bps: BitRate, pps: u64) -> Self {
        ErGateway {
            bits: TokenBucket::for_bits(bps, GATEWAY_BUCKET),
            packets: TokenBucket::for_packets(pps, GATEWAY_BUCKET),
        }
    }

    /// Offers an IP packet of `ip_len` bytes at `now`. The packet is charged to
    /// both buckets only when both have room, so a refused packet costs nothing.
    #[inline(always)]
    pub fn handle_packet(&mut self, now: SimTime, ip_len: u32) -> Result<(), GatewayLimit> {
        self.bits.refill(now);
        self.packets.refill(now);
        if !self.bits.has_bytes(ip_len as u64) {
            return Err(GatewayLimit::Bits);
        }
        if !self.packets.has_units(1) {
            return Err(GatewayLimit::Packets);
        }
        self.bits.take_bytes(ip_len as u64);
        self.packets.take_units(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pps_cap_binds_for_small_packets() {
        // ErGw1Az: 1 Gbps and 100k pps. 100-byte packets at 1 Gbps would be
        // 1.25 Mpps, so the packet cap binds: in one second (after the 1 ms
        // bucket of 100 packets) exactly 100,000 more pass.
        let (bps, pps) = ErGatewaySku::ErGw1Az.caps();
        let mut gw = ErGateway::new(bps, pps);
        let mut passed = 0u64;
        let mut refused_pkts = 0u64;
        // One packet every 800 ns (1.25 Mpps) for 1 s.
        for i in 0..1_250_000u64 {
            match gw.handle_packet(SimTime(i * 800), 100) {
                Ok(()) => passed += 1,
                Err(GatewayLimit::Packets) => refused_pkts += 1,
                Err(GatewayLimit::Bits) => {}
            }
        }
        // Bucket (100) + 100k/s over the 0.9999992 s between first and last offer.
        assert_eq!(passed, 100 + 99_999);
        assert_eq!(passed + refused_pkts, 1_250_000);
    }
}
