//! IPsec ESP in tunnel mode with AES-256-GCM (RFC 4303, RFC 4106), optionally
//! in UDP for NAT traversal (RFC 3948): real encryption, so Wireshark decrypts
//! the tunnel with the keys eremu writes to `esp_sa`.
//!
//! ```text
//! | SPI (4) | sequence (4) | IV (8) | ciphertext: inner packet, padding, pad length, next header | ICV (16) |
//! ```
//!
//! The 8-byte IV is the 64-bit sequence number (unique per SA, as RFC 4106
//! requires); the nonce is the 4-byte salt followed by the IV; the additional
//! authenticated data is SPI and sequence number.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};

/// ESP header: SPI and sequence number.
pub const HEADER: usize = 8;
/// Explicit IV of AES-GCM in ESP.
pub const IV: usize = 8;
/// Integrity check value of AES-GCM with a 16-octet ICV.
pub const ICV: usize = 16;
/// Key material per SA: 32 bytes of AES-256 key, then 4 bytes of salt.
pub const KEY_MATERIAL: usize = 36;
/// IP protocol numbers of the inner packet (the ESP next-header field).
pub const NEXT_IPV4: u8 = 4;
pub const NEXT_IPV6: u8 = 41;
/// UDP port of ESP in UDP (NAT traversal).
pub const NAT_T_PORT: u16 = 4500;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EspError {
    #[error("ESP packet of {0} bytes is too short")]
    Truncated(usize),
    #[error("SPI {found:#010x} does not match the SA's {expected:#010x}")]
    WrongSpi { found: u32, expected: u32 },
    #[error("integrity check failed")]
    Integrity,
    #[error("bad padding")]
    Padding,
}

/// One direction of the tunnel: SPI and keys.
#[derive(Clone)]
pub struct SecurityAssociation {
    pub spi: u32,
    key_material: [u8; KEY_MATERIAL],
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecurityAssociation {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "SecurityAssociation {{ spi: {:#010x} }}", self.spi)
    }
}

/// Bytes of padding that make `inner_len` plus the 2-byte trailer a multiple of 4.
pub fn padding(inner_len: usize) -> usize {
    (4 - (inner_len + 2) % 4) % 4
}

/// Bytes ESP adds around an inner packet of `inner_len` bytes (header, IV,
/// padding, trailer, ICV): 34 to 37.
pub fn overhead(inner_len: usize) -> usize {
    HEADER + IV + padding(inner_len) + 2 + ICV
}

impl SecurityAssociation {
    pub fn new(spi: u32, key_material: [u8; KEY_MATERIAL]) -> Self {
        let cipher = Aes256Gcm::new_from_slice(&key_material[..32]).expect("32-byte key");
        SecurityAssociation {
            spi,
            key_material,
            cipher,
        }
    }

    /// Key and salt as Wireshark's ESP SA table wants them: `0x` and 72 hex digits.
    pub fn key_hex(&self) -> String {
        let hex: String = self
            .key_material
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("0x{hex}")
    }

    fn nonce(&self, iv: &[u8]) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.key_material[32..]);
        n[4..].copy_from_slice(iv);
        n
    }

    /// Appends the ESP packet carrying `inner` (an IP packet whose protocol is
    /// `next_header`) with sequence number `seq` to `out`.
    pub fn encrypt(&self, seq: u32, inner: &[u8], next_header: u8, out: &mut Vec<u8>) {
        let start = out.len();
        let iv = (seq as u64).to_be_bytes();
        out.extend_from_slice(&self.spi.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&iv);
        let body = out.len();
        out.extend_from_slice(inner);
        let pad = padding(inner.len());
        out.extend((1..=pad as u8).collect::<Vec<_>>());
        out.push(pad as u8);
        out.push(next_header);
        let aad: [u8; 8] = out[start..start + 8].try_into().expect("8 bytes");
        let nonce = self.nonce(&iv);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut out[body..])
            .expect("AES-GCM encrypts any length ESP uses");
        out.extend_from_slice(&tag);
    }

    /// Verifies and decrypts an ESP packet; returns the inner packet and its
    /// next-header value.
    pub fn decrypt(&self, esp: &[u8]) -> Result<(Vec<u8>, u8), EspError> {
        if esp.len() < HEADER + IV + 2 + ICV {
            return Err(EspError::Truncated(esp.len()));
        }
        let spi = u32::from_be_bytes(esp[..4].try_into().expect("4 bytes"));
        if spi != self.spi {
            return Err(EspError::WrongSpi {
                found: spi,
                expected: self.spi,
            });
        }
        let (body, icv) = esp[HEADER + IV..].split_at(esp.len() - HEADER - IV - ICV);
        let mut plain = body.to_vec();
        let nonce = self.nonce(&esp[HEADER..HEADER + IV]);
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                &esp[..HEADER],
                &mut plain,
                Tag::from_slice(icv),
            )
            .map_err(|_| EspError::Integrity)?;
        let next = plain.pop().ok_or(EspError::Padding)?;
        let pad = plain.pop().ok_or(EspError::Padding)? as usize;
        if pad > plain.len() {
            return Err(EspError::Padding);
        }
        plain.truncate(plain.len() - pad);
        Ok((plain, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa() -> SecurityAssociation {
        let mut k = [0u8; KEY_MATERIAL];
        k.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        SecurityAssociation::new(0x1001, k)
    }

    #[test]
    fn round_trip_and_sizes() {
        let sa = sa();
        for len in [20usize, 1397, 1398, 1399, 1400] {
            let inner: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = vec![];
            sa.encrypt(7, &inner, NEXT_IPV4, &mut out);
            assert_eq!(out.len(), len + overhead(len));
            assert_eq!(out.len() % 4, 0, "ESP payload is 4-byte aligned");
            assert_eq!(&out[..8], &[0, 0, 0x10, 0x01, 0, 0, 0, 7]);
            assert_eq!(sa.decrypt(&out), Ok((inner, NEXT_IPV4)));
        }
    }

    #[test]
    fn tampering_and_truncation_are_detected() {
        let sa = sa();
        let mut out = vec![];
        sa.encrypt(1, b"hello world", NEXT_IPV6, &mut out);
        let mut bad = out.clone();
        bad[20] ^= 1;
        assert_eq!(sa.decrypt(&bad), Err(EspError::Integrity));
        assert!(matches!(
            sa.decrypt(&out[..10]),
            Err(EspError::Truncated(10))
        ));
        bad = out.clone();
        bad[3] = 9;
        assert!(matches!(sa.decrypt(&bad), Err(EspError::WrongSpi { .. })));
    }

    #[test]
    fn key_hex_for_wireshark() {
        let hex = sa().key_hex();
        assert_eq!(hex.len(), 2 + 72);
        assert!(hex.starts_with("0x000102"));
    }
}
