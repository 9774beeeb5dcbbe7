//! Ethernet II header: constants and the 14-byte header read/write shared by the ARP and
//! neighbour-advertisement codecs (frames are never required to be padded to 60 bytes).
use super::error::{in_chunk, out_chunk, EmitError, FrameError};

/// A 48-bit MAC address.
pub type MacAddr = [u8; 6];

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// ff:ff:ff:ff:ff:ff
pub const BROADCAST: MacAddr = [0xff; 6];
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Destination, source and EtherType of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetHeader {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub ethertype: u16,
}

impl EthernetHeader {
    /// Reads the header at the start of `frame`.
    pub fn parse(frame: &[u8]) -> Result<EthernetHeader, FrameError> {
        let h = in_chunk::<HEADER_LEN>(frame)?;
        Ok(EthernetHeader {
            dst: mac_at(h, 0),
            src: mac_at(h, 6),
            ethertype: u16::from_be_bytes([h[12], h[13]]),
        })
    }

    /// Reads the header and checks that the EtherType is `expected`.
    pub fn parse_expecting(frame: &[u8], expected: u16) -> Result<EthernetHeader, FrameError> {
        let header = EthernetHeader::parse(frame)?;
        if header.ethertype != expected {
            return Err(FrameError::WrongEthertype {
                found: header.ethertype,
                expected,
            });
        }
        Ok(header)
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `out`.
    pub fn emit(&self, out: &mut [u8]) -> Result<(), EmitError> {
        let h = out_chunk::<HEADER_LEN>(out)?;
        h[0..6].copy_from_slice(&self.dst);
        h[6..12].copy_from_slice(&self.src);
        h[12..14].copy_from_slice(&self.ethertype.to_be_bytes());
        Ok(())
    }
}

/// The MAC address at byte `at` of a fixed-size frame (`at + 6 <= N`, checked by the caller's
/// constant offsets).
pub(crate) fn mac_at<const N: usize>(frame: &[u8; N], at: usize) -> MacAddr {
    let mut mac = [0; 6];
    mac.copy_from_slice(&frame[at..at + 6]);
    mac
}

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &MacAddr) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let h = EthernetHeader {
            dst: BROADCAST,
            src: [2, 0x1a, 0, 0, 0, 0x0a],
            ethertype: ETHERTYPE_ARP,
        };
        let mut buf = [0u8; HEADER_LEN];
        h.emit(&mut buf).unwrap();
        assert!(h.emit(&mut [0u8; 13]).is_err());
        assert_eq!(EthernetHeader::parse(&buf), Ok(h));
        assert_eq!(
            EthernetHeader::parse_expecting(&buf, ETHERTYPE_IPV6),
            Err(FrameError::WrongEthertype {
                found: ETHERTYPE_ARP,
                expected: ETHERTYPE_IPV6
            })
        );
        for len in 0..HEADER_LEN {
            assert!(EthernetHeader::parse(&buf[..len]).is_err());
        }
        assert_eq!(format_mac(&h.src), "02:1a:00:00:00:0a");
    }
}
