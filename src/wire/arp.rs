//! ARP over Ethernet/IPv4: the gratuitous ARP frame Relevo broadcasts for each IPv4 VIP on
//! becoming master (same shape as keepalived and FRR: a broadcast *request* with sender IP ==
//! target IP and target MAC ff:ff:ff:ff:ff:ff), and a parser for any Ethernet/IPv4 ARP frame.
use std::net::Ipv4Addr;

use super::error::{in_chunk, out_chunk, EmitError, FrameError};
use super::ethernet::{
    mac_at, EthernetHeader, MacAddr, BROADCAST, ETHERTYPE_ARP, ETHERTYPE_IPV4, HEADER_LEN,
};

/// Length of an Ethernet + ARP (Ethernet/IPv4) frame, without padding to the 60-byte minimum.
pub const GARP_FRAME_LEN: usize = 42;
/// ARP operation code of a request.
pub const ARP_OP_REQUEST: u16 = 1;
/// ARP operation code of a reply.
pub const ARP_OP_REPLY: u16 = 2;

const HTYPE_ETHERNET: u16 = 1;
/// Hardware address length 6 and protocol address length 4, as one 16-bit field.
const ADDR_LENS_ETH_IPV4: u16 = 0x0604;

/// Writes a gratuitous ARP request for `ip` from `src_mac` into `buf` and returns
/// [`GARP_FRAME_LEN`]. Bytes of `buf` after the frame are left untouched.
pub fn emit_garp(src_mac: MacAddr, ip: Ipv4Addr, buf: &mut [u8]) -> Result<usize, EmitError> {
    let frame = out_chunk::<GARP_FRAME_LEN>(buf)?;
    EthernetHeader {
        dst: BROADCAST,
        src: src_mac,
        ethertype: ETHERTYPE_ARP,
    }
    .emit(frame)?;
    frame[14..16].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    frame[16..18].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    frame[18..20].copy_from_slice(&ADDR_LENS_ETH_IPV4.to_be_bytes());
    frame[20..22].copy_from_slice(&ARP_OP_REQUEST.to_be_bytes());
    frame[22..28].copy_from_slice(&src_mac);
    frame[28..32].copy_from_slice(&ip.octets());
    frame[32..38].copy_from_slice(&BROADCAST);
    frame[38..42].copy_from_slice(&ip.octets());
    Ok(GARP_FRAME_LEN)
}

/// A validated Ethernet/IPv4 ARP frame (the first [`GARP_FRAME_LEN`] bytes; any padding after
/// them is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpView<'a> {
    frame: &'a [u8; GARP_FRAME_LEN],
}

/// Parses an Ethernet frame carrying ARP for Ethernet/IPv4 (any operation).
pub fn parse_arp(frame: &[u8]) -> Result<ArpView<'_>, FrameError> {
    EthernetHeader::parse_expecting(frame, ETHERTYPE_ARP)?;
    let fixed = in_chunk::<GARP_FRAME_LEN>(frame)?;
    let field = |at: usize| u16::from_be_bytes([fixed[at], fixed[at + 1]]);
    let checks = [
        ("hardware type", field(HEADER_LEN), HTYPE_ETHERNET),
        ("protocol type", field(HEADER_LEN + 2), ETHERTYPE_IPV4),
        ("address lengths", field(HEADER_LEN + 4), ADDR_LENS_ETH_IPV4),
    ];
    for (name, value, expected) in checks {
        if value != expected {
            return Err(FrameError::UnsupportedArp { field: name, value });
        }
    }
    Ok(ArpView { frame: fixed })
}

impl<'a> ArpView<'a> {
    /// The whole ARP frame (Ethernet header included, padding excluded).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.frame
    }

    /// Ethernet destination.
    pub fn eth_dst(&self) -> MacAddr {
        mac_at(self.frame, 0)
    }

    /// Ethernet source.
    pub fn eth_src(&self) -> MacAddr {
        mac_at(self.frame, 6)
    }

    /// ARP operation ([`ARP_OP_REQUEST`], [`ARP_OP_REPLY`], ...).
    pub fn operation(&self) -> u16 {
        u16::from_be_bytes([self.frame[20], self.frame[21]])
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> MacAddr {
        mac_at(self.frame, 22)
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        let f = self.frame;
        Ipv4Addr::new(f[28], f[29], f[30], f[31])
    }

    /// Target hardware address.
    pub fn target_mac(&self) -> MacAddr {
        mac_at(self.frame, 32)
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        let f = self.frame;
        Ipv4Addr::new(f[38], f[39], f[40], f[41])
    }

    /// True for a gratuitous ARP (request or reply whose sender IP equals its target IP).
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip() == self.target_ip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame 2 of kad-v3-ipv4.pcap (keepalived 2.2.7, GARP for 192.0.2.100).
    const KAD_GARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x1a, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x1a, 0x00, 0x00, 0x00, 0x0a, 0xc0, 0x00,
        0x02, 0x64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc0, 0x00, 0x02, 0x64,
    ];

    #[test]
    fn emit_matches_keepalived() {
        let mut buf = [0u8; 64];
        let n = emit_garp(
            [0x02, 0x1a, 0, 0, 0, 0x0a],
            Ipv4Addr::new(192, 0, 2, 100),
            &mut buf,
        )
        .unwrap();
        assert_eq!(n, GARP_FRAME_LEN);
        assert_eq!(buf[..n], KAD_GARP);
        assert!(buf[n..].iter().all(|&b| b == 0));
    }

    #[test]
    fn parse_fields() {
        let v = parse_arp(&KAD_GARP).unwrap();
        assert_eq!(v.eth_dst(), BROADCAST);
        assert_eq!(v.eth_src(), [0x02, 0x1a, 0, 0, 0, 0x0a]);
        assert_eq!(v.operation(), ARP_OP_REQUEST);
        assert_eq!(v.sender_mac(), v.eth_src());
        assert_eq!(v.sender_ip(), Ipv4Addr::new(192, 0, 2, 100));
        assert_eq!(v.target_mac(), BROADCAST);
        assert_eq!(v.target_ip(), v.sender_ip());
        assert!(v.is_gratuitous());
        assert_eq!(v.as_bytes(), &KAD_GARP[..]);
    }

    #[test]
    fn small_buffer_is_rejected() {
        let mut buf = [0u8; 41];
        assert_eq!(
            emit_garp([0; 6], Ipv4Addr::LOCALHOST, &mut buf),
            Err(EmitError::BufferTooSmall { need: 42, have: 41 })
        );
    }

    #[test]
    fn bad_headers_are_rejected() {
        for (at, value) in [(15, 6u8), (17, 0xdd), (18, 8), (19, 16)] {
            let mut f = KAD_GARP;
            f[at] = value;
            assert!(matches!(
                parse_arp(&f),
                Err(FrameError::UnsupportedArp { .. })
            ));
        }
        let mut f = KAD_GARP;
        f[13] = 0x00;
        assert!(matches!(
            parse_arp(&f),
            Err(FrameError::WrongEthertype { found: 0x0800, .. })
        ));
    }
}
