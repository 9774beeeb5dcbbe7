//! Internet one's-complement checksum (RFC 1071): an incremental accumulator that may be fed
//! any number of slices (of any length, odd ones included), and the IPv4 / IPv6 pseudo-header
//! sums used by VRRPv3 and ICMPv6.
use std::net::{Ipv4Addr, Ipv6Addr};

/// Running one's-complement sum over a byte stream split into arbitrary slices.
///
/// Bytes are paired big-endian across slice boundaries, so feeding `[a, b, c]` then `[d]` gives
/// the same result as feeding `[a, b, c, d]`. The sum is kept in a `u64`, which cannot overflow
/// for any realistic amount of input (2^48 16-bit words).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    sum: u64,
    /// High byte of a 16-bit word whose low byte has not been seen yet.
    pending: Option<u8>,
}

impl Checksum {
    /// An empty sum.
    pub const fn new() -> Self {
        Checksum {
            sum: 0,
            pending: None,
        }
    }

    /// Adds `data` to the sum, continuing any odd byte left by the previous slice.
    pub fn add_bytes(mut self, mut data: &[u8]) -> Self {
        if let Some(high) = self.pending.take() {
            match data.split_first() {
                Some((&low, rest)) => {
                    self.sum += u64::from(u16::from_be_bytes([high, low]));
                    data = rest;
                }
                None => {
                    self.pending = Some(high);
                    return self;
                }
            }
        }
        let mut words = data.chunks_exact(2);
        for word in &mut words {
            self.sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
        }
        self.pending = words.remainder().first().copied();
        self
    }

    /// Adds one big-endian 16-bit word (at the current byte position).
    pub fn add_u16(self, value: u16) -> Self {
        self.add_bytes(&value.to_be_bytes())
    }

    /// Adds one big-endian 32-bit word (at the current byte position).
    pub fn add_u32(self, value: u32) -> Self {
        self.add_bytes(&value.to_be_bytes())
    }

    /// The sum folded to 16 bits (carries wrapped around), not complemented. An odd trailing
    /// byte is padded with a zero low byte, as RFC 1071 requires.
    pub fn folded(self) -> u16 {
        let with_pending = match self.pending {
            Some(high) => self.sum + (u64::from(high) << 8),
            None => self.sum,
        };
        fold(with_pending)
    }

    /// The checksum field value: the one's complement of [`Checksum::folded`].
    pub fn finish(self) -> u16 {
        !self.folded()
    }

    /// True when the summed data (which includes its own checksum field) verifies, i.e. the
    /// folded sum is all ones.
    pub fn is_valid(self) -> bool {
        self.folded() == 0xffff
    }
}

/// Folds a wide one's-complement sum to 16 bits by adding the carries back in.
pub fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves at most 16 significant bits.
    sum as u16
}

/// Checksum field value for `data` alone (its checksum field must be zero while summing).
pub fn internet_checksum(data: &[u8]) -> u16 {
    Checksum::new().add_bytes(data).finish()
}

/// Sum of the IPv4 pseudo-header: source, destination, zero, protocol, 16-bit upper-layer length.
pub fn pseudo_header_ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> Checksum {
    Checksum::new()
        .add_bytes(&src.octets())
        .add_bytes(&dst.octets())
        .add_bytes(&[0, protocol])
        .add_u16(length)
}

/// Sum of the IPv6 pseudo-header (RFC 8200 8.1): source, destination, 32-bit upper-layer length,
/// three zero bytes, next header.
pub fn pseudo_header_ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> Checksum {
    Checksum::new()
        .add_bytes(&src.octets())
        .add_bytes(&dst.octets())
        .add_u32(length)
        .add_bytes(&[0, 0, 0, next_header])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(Checksum::new().add_bytes(&data).folded(), 0xddf2);
        assert_eq!(internet_checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_splits_equal_one_slice() {
        let data: Vec<u8> = (0u8..=200).map(|b| b.wrapping_mul(37)).collect();
        let whole = Checksum::new().add_bytes(&data).finish();
        for split in 0..data.len() {
            let (a, b) = data.split_at(split);
            let parts = Checksum::new().add_bytes(a).add_bytes(&[]).add_bytes(b);
            assert_eq!(parts.finish(), whole, "split at {split}");
        }
    }

    #[test]
    fn odd_trailing_byte_is_padded() {
        assert_eq!(Checksum::new().add_bytes(&[0x12]).folded(), 0x1200);
        assert_eq!(
            Checksum::new().add_bytes(&[0x12, 0x34, 0x56]).folded(),
            0x1234 + 0x5600
        );
    }

    #[test]
    fn fold_wraps_carries() {
        assert_eq!(fold(0x1_fffe), 0xffff);
        assert_eq!(fold(0xffff_ffff_ffff), 0xffff);
        assert_eq!(fold(0x2_0001), 0x0003);
    }

    #[test]
    fn data_with_its_checksum_is_valid() {
        let mut data = [0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x00, 0x00, 0xab, 0xcd];
        let csum = internet_checksum(&data);
        data[6..8].copy_from_slice(&csum.to_be_bytes());
        assert!(Checksum::new().add_bytes(&data).is_valid());
        data[0] ^= 1;
        assert!(!Checksum::new().add_bytes(&data).is_valid());
    }

    #[test]
    fn pseudo_headers_match_manual_layout() {
        let s4 = Ipv4Addr::new(192, 0, 2, 10);
        let d4 = Ipv4Addr::new(224, 0, 0, 18);
        let mut manual = Vec::new();
        manual.extend_from_slice(&s4.octets());
        manual.extend_from_slice(&d4.octets());
        manual.extend_from_slice(&[0, 112, 0, 20]);
        assert_eq!(
            pseudo_header_ipv4(s4, d4, 112, 20),
            Checksum::new().add_bytes(&manual)
        );

        let s6: Ipv6Addr = "fe80::1a:ff:fe00:a".parse().unwrap();
        let d6: Ipv6Addr = "ff02::12".parse().unwrap();
        let mut manual = Vec::new();
        manual.extend_from_slice(&s6.octets());
        manual.extend_from_slice(&d6.octets());
        manual.extend_from_slice(&[0, 0, 0, 40, 0, 0, 0, 112]);
        assert_eq!(
            pseudo_header_ipv6(s6, d6, 112, 40),
            Checksum::new().add_bytes(&manual)
        );
    }
}
