//! Ethernet II framing as the circuit links carry it.

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
