//! The site-to-site VPN path: gateway SKUs and the cost of ESP tunnel mode.
//!
//! Aggregate throughput per SKU is the "aggregate throughput benchmark" of the
//! VPN gateway SKU table (fact sheet 4.1, VSKU). Assumption: the cap applies
//! to each direction separately, to outer (encapsulated) IP bytes.

use crate::units::BitRate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VpnGatewaySku {
    Basic,
    VpnGw1,
    VpnGw2,
    VpnGw3,
    VpnGw4,
    VpnGw5,
}

impl VpnGatewaySku {
    /// Accepts `VpnGw2` and `VpnGw2AZ` (same throughput, fact sheet 4.3).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.trim_end_matches("AZ").trim_end_matches("Az") {
            "Basic" => Self::Basic,
            "VpnGw1" => Self::VpnGw1,
            "VpnGw2" => Self::VpnGw2,
            "VpnGw3" => Self::VpnGw3,
            "VpnGw4" => Self::VpnGw4,
            "VpnGw5" => Self::VpnGw5,
            _ => return None,
        })
    }

    pub const NAMES: &'static str = "Basic, VpnGw1..VpnGw5 (with or without AZ)";

    /// Aggregate throughput for a gateway generation (1 or 2); `None` when the
    /// SKU does not exist in that generation.
    pub fn throughput(self, generation: u8) -> Option<BitRate> {
        let mbps = match (self, generation) {
            (Self::Basic, 1) => 100,
            (Self::VpnGw1, 1 | 2) => 650,
            (Self::VpnGw2, 1) => 1_000,
            (Self::VpnGw2, 2) => 1_250,
            (Self::VpnGw3, 1) => 1_250,
            (Self::VpnGw3, 2) => 2_500,
            (Self::VpnGw4, 2) => 5_000,
            (Self::VpnGw5, 2) => 10_000,
            _ => return None,
        };
        Some(BitRate::from_mbps(mbps))
    }
}

/// Outer IPv4 header.
pub const OUTER_IPV4: u32 = 20;
/// ESP header: SPI and sequence number (RFC 4303).
pub const ESP_HEADER: u32 = 8;
/// Explicit IV of AES-GCM in ESP (RFC 4106).
pub const GCM_IV: u32 = 8;
/// Integrity check value of AES-GCM-16 (RFC 4106).
pub const GCM_ICV: u32 = 16;
/// UDP header added by NAT traversal (RFC 3948).
pub const NAT_T_UDP: u32 = 8;

/// Length of the outer IPv4 packet that carries an inner IP packet of
/// `inner_len` bytes in ESP tunnel mode with AES-256-GCM: header, IV, the
/// inner packet plus the 2-byte trailer padded to a multiple of 4, and the ICV
/// (54 to 57 bytes of overhead, 62 to 65 with NAT-T; fact sheet 4.15).
pub fn esp_outer_len(inner_len: u32, nat_t: bool) -> u32 {
    let padded = (inner_len + 2).div_ceil(4) * 4;
    OUTER_IPV4 + if nat_t { NAT_T_UDP } else { 0 } + ESP_HEADER + GCM_IV + padded + GCM_ICV
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_overhead_matches_rfc_field_sizes() {
        // 1398 + 2 = 1400 is a multiple of 4: no padding, 54 bytes of overhead.
        assert_eq!(esp_outer_len(1398, false), 1398 + 54);
        // 1400 + 2 = 1402 pads to 1404: 2 bytes of padding, 56 of overhead.
        assert_eq!(esp_outer_len(1400, false), 1400 + 56);
        // 1397 + 2 = 1399 pads by 1; 1399 by 3 (the maximum, 57 bytes).
        assert_eq!(esp_outer_len(1397, false), 1397 + 55);
        assert_eq!(esp_outer_len(1399, false), 1399 + 57);
        assert_eq!(esp_outer_len(1400, true), 1400 + 64);
    }

    #[test]
    fn sku_table() {
        assert_eq!(
            VpnGatewaySku::parse("VpnGw2AZ"),
            Some(VpnGatewaySku::VpnGw2)
        );
        assert_eq!(
            VpnGatewaySku::VpnGw2.throughput(1),
            Some(BitRate::from_gbps(1))
        );
        assert_eq!(VpnGatewaySku::VpnGw4.throughput(1), None);
        assert_eq!(VpnGatewaySku::parse("VpnGw9"), None);
    }
}
