//! Ethernet II framing as the circuit links carry it, and the MAC addresses
//! of the modeled devices.

use std::net::IpAddr;

use super::frame::Mac;

/// Destination MAC, source MAC, EtherType.
pub const HEADER: u32 = 14;
/// One 802.1Q or 802.1ad tag.
pub const TAG: u32 = 4;
/// Frame check sequence.
pub const FCS: u32 = 4;
/// Smallest frame, FCS included (shorter payloads are padded).
pub const MIN_FRAME: u32 = 64;

/// Bytes of an Ethernet frame, destination MAC through FCS, that carries an
/// IP packet of `ip_len` bytes under `tags` VLAN tags.
pub fn frame_len(ip_len: u32, tags: u32) -> u32 {
    (HEADER + TAG * tags + ip_len + FCS).max(MIN_FRAME)
}

/// MAC addresses of the modeled devices (locally administered).
pub const MAC_CE: Mac = [0x02, 0xce, 0, 0, 0, 0x01];
pub const MAC_MSEE: [Mac; 2] = [
    [0x02, 0x4d, 0x53, 0x45, 0x45, 0x01],
    [0x02, 0x4d, 0x53, 0x45, 0x45, 0x02],
];
pub const MAC_AZURE_GW: Mac = [0x02, 0xa2, 0, 0, 0, 0x01];
pub const MAC_VPN_ONPREM: Mac = [0x02, 0x76, 0x70, 0x6e, 0, 0x01];
pub const MAC_VPN_AZURE: Mac = [0x02, 0x76, 0x70, 0x6e, 0, 0x02];

/// A host's MAC: 02:00 and the last four bytes of its address.
pub fn host_mac(addr: IpAddr) -> Mac {
    let b = match addr {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => a.octets()[12..].try_into().expect("4 bytes"),
    };
    [0x02, 0x00, b[0], b[1], b[2], b[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths() {
        assert_eq!(frame_len(1400, 1), 1422);
        assert_eq!(frame_len(1500, 2), 1526);
        // 46 bytes of IP fill an untagged minimum frame exactly; less is padded.
        assert_eq!(frame_len(46, 0), 64);
        assert_eq!(frame_len(20, 1), 64);
    }
}
