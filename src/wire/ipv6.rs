//! The fixed 40-byte IPv6 header (RFC 8200), as needed for the neighbour advertisements Relevo
//! builds as whole Ethernet frames. Extension headers are not supported: frames Relevo sends
//! have none, and a received frame with one is rejected as unsupported.
use std::net::Ipv6Addr;

use super::error::{in_chunk, out_chunk, EmitError, FrameError};

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;
/// Next-header value of ICMPv6.
pub const NEXT_HEADER_ICMPV6: u8 = 58;
/// All-nodes link-local multicast address ff02::1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Whether `addr` is an IPv6 unicast link-local address (fe80::/10).
/// (`Ipv6Addr::is_unicast_link_local` needs Rust 1.84, above the MSRV.)
pub fn is_link_local(addr: &std::net::IpAddr) -> bool {
    matches!(addr, std::net::IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// Fields of the fixed IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Header {
    pub traffic_class: u8,
    /// 20-bit flow label (upper 12 bits always zero).
    pub flow_label: u32,
    pub payload_len: u16,
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
}

impl Ipv6Header {
    /// Reads the header at the start of `packet` and returns it with the payload it announces
    /// (exactly `payload_len` bytes; anything after them, like Ethernet padding, is ignored).
    pub fn parse(packet: &[u8]) -> Result<(Ipv6Header, &[u8]), FrameError> {
        let h = in_chunk::<HEADER_LEN>(packet)?;
        let first = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        if first >> 28 != 6 {
            return Err(FrameError::BadIpv6Header {
                reason: "version is not 6",
            });
        }
        let header = Ipv6Header {
            traffic_class: ((first >> 20) & 0xff) as u8,
            flow_label: first & 0x000f_ffff,
            payload_len: u16::from_be_bytes([h[4], h[5]]),
            next_header: h[6],
            hop_limit: h[7],
            src: Ipv6Addr::from(addr_at(h, 8)),
            dst: Ipv6Addr::from(addr_at(h, 24)),
        };
        let end = HEADER_LEN + usize::from(header.payload_len);
        let payload = packet.get(HEADER_LEN..end).ok_or(FrameError::Truncated {
            need: end,
            have: packet.len(),
        })?;
        Ok((header, payload))
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `out`.
    pub fn emit(&self, out: &mut [u8]) -> Result<(), EmitError> {
        let h = out_chunk::<HEADER_LEN>(out)?;
        let first =
            (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000f_ffff);
        h[0..4].copy_from_slice(&first.to_be_bytes());
        h[4..6].copy_from_slice(&self.payload_len.to_be_bytes());
        h[6] = self.next_header;
        h[7] = self.hop_limit;
        h[8..24].copy_from_slice(&self.src.octets());
        h[24..40].copy_from_slice(&self.dst.octets());
        Ok(())
    }
}

fn addr_at(h: &[u8; HEADER_LEN], at: usize) -> [u8; 16] {
    let mut a = [0; 16];
    a.copy_from_slice(&h[at..at + 16]);
    a
}

/// The Ethernet multicast MAC for an IPv6 multicast group (33:33 + low 32 bits, RFC 2464 7).
pub fn multicast_mac(group: Ipv6Addr) -> [u8; 6] {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_payload() {
        let h = Ipv6Header {
            traffic_class: 0xc0,
            flow_label: 0x8_6632,
            payload_len: 4,
            next_header: 112,
            hop_limit: 255,
            src: "fe80::3c:a".parse().unwrap(),
            dst: "ff02::12".parse().unwrap(),
        };
        let mut buf = [0u8; 46];
        h.emit(&mut buf).unwrap();
        buf[40..44].copy_from_slice(&[1, 2, 3, 4]);
        // Frame 5 of frr-v3-dual.pcap starts with 6c 08 66 32.
        assert_eq!(buf[..4], [0x6c, 0x08, 0x66, 0x32]);
        let (parsed, payload) = Ipv6Header::parse(&buf).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(payload, &[1, 2, 3, 4]);
        assert!(matches!(
            Ipv6Header::parse(&buf[..43]),
            Err(FrameError::Truncated { need: 44, have: 43 })
        ));
        buf[0] = 0x45;
        assert!(matches!(
            Ipv6Header::parse(&buf),
            Err(FrameError::BadIpv6Header { .. })
        ));
    }

    #[test]
    fn multicast_macs() {
        assert_eq!(multicast_mac(ALL_NODES), [0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(
            multicast_mac("ff02::12".parse().unwrap()),
            [0x33, 0x33, 0, 0, 0, 0x12]
        );
    }
}
