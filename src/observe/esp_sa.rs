//! The `esp_sa` file: the tunnel's security associations in the format of
//! Wireshark's ESP SA table (Preferences > Protocols > ESP > ESP SAs), so that
//! Wireshark and tshark decrypt the captured tunnel.

use crate::scenario::VpnConfig;
use crate::wire::esp::SecurityAssociation;

/// Wireshark's name for AES-GCM with a 16-octet ICV.
pub const ENCRYPTION: &str = "AES-GCM with 16 octet ICV [RFC4106]";
/// GCM authenticates by itself: no separate authentication algorithm.
pub const AUTHENTICATION: &str = "NULL";

/// One line per direction: protocol, source, destination, SPI, encryption
/// algorithm and key, authentication algorithm and key.
pub fn render(vpn: &VpnConfig) -> String {
    let line = |src: std::net::Ipv4Addr,
                dst: std::net::Ipv4Addr,
                sa: &crate::scenario::SaConfig| {
        let key = SecurityAssociation::new(sa.spi, sa.key).key_hex();
        format!("\"IPv4\",\"{src}\",\"{dst}\",\"{:#010x}\",\"{ENCRYPTION}\",\"{key}\",\"{AUTHENTICATION}\",\"\"\n", sa.spi)
    };
    let mut out = String::from(
        "# eremu: ESP security associations for Wireshark (copy to <profile>/esp_sa)\n",
    );
    out += &line(vpn.onprem_address, vpn.azure_address, &vpn.sa_in);
    out += &line(vpn.azure_address, vpn.onprem_address, &vpn.sa_out);
    out
}
