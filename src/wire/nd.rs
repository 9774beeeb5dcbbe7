//! IPv6 neighbour discovery: the unsolicited neighbour advertisement Relevo sends for each IPv6
//! VIP on becoming master, as a whole Ethernet frame for a packet socket (same bytes as
//! keepalived and FRR: VIP -> ff02::1, hop limit 255, flags R?+O, target link-layer option),
//! and a validating parser for neighbour advertisements.
use std::net::Ipv6Addr;

use super::checksum::{pseudo_header_ipv6, Checksum};
use super::error::{in_chunk, out_chunk, EmitError, FrameError};
use super::ethernet::{self, EthernetHeader, MacAddr, ETHERTYPE_IPV6};
use super::ipv6::{self, multicast_mac, Ipv6Header, ALL_NODES, NEXT_HEADER_ICMPV6};

/// Length of the unsolicited NA frame Relevo emits (Ethernet 14 + IPv6 40 + NA 24 + option 8).
pub const NA_FRAME_LEN: usize = 86;
/// ICMPv6 type of a neighbour advertisement.
pub const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
/// Router flag.
pub const FLAG_ROUTER: u8 = 0x80;
/// Solicited flag.
pub const FLAG_SOLICITED: u8 = 0x40;
/// Override flag.
pub const FLAG_OVERRIDE: u8 = 0x20;
/// ND option type "target link-layer address".
pub const OPT_TARGET_LL_ADDR: u8 = 2;

/// Fixed part of a neighbour advertisement: type, code, checksum, flags + reserved, target.
const NA_FIXED_LEN: usize = 24;
/// One 8-byte option carrying a 6-byte MAC.
const TLLA_OPTION_LEN: usize = 8;
const NA_LEN: usize = NA_FIXED_LEN + TLLA_OPTION_LEN;
const ICMP_START: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN;

/// Writes an unsolicited neighbour advertisement for `target` (the VIP, also used as IPv6
/// source) from `src_mac` into `buf` and returns [`NA_FRAME_LEN`]. Flags: Override always,
/// Router when `router` (the node forwards IPv6), Solicited never.
pub fn emit_unsolicited_na(
    src_mac: MacAddr,
    target: Ipv6Addr,
    router: bool,
    buf: &mut [u8],
) -> Result<usize, EmitError> {
    let frame = out_chunk::<NA_FRAME_LEN>(buf)?;
    EthernetHeader {
        dst: multicast_mac(ALL_NODES),
        src: src_mac,
        ethertype: ETHERTYPE_IPV6,
    }
    .emit(frame)?;
    Ipv6Header {
        traffic_class: 0,
        flow_label: 0,
        payload_len: NA_LEN as u16,
        next_header: NEXT_HEADER_ICMPV6,
        hop_limit: 255,
        src: target,
        dst: ALL_NODES,
    }
    .emit(&mut frame[ethernet::HEADER_LEN..])?;
    let flags = FLAG_OVERRIDE | if router { FLAG_ROUTER } else { 0 };
    let icmp = &mut frame[ICMP_START..];
    icmp[..4].copy_from_slice(&[ICMPV6_NEIGHBOR_ADVERT, 0, 0, 0]);
    icmp[4..8].copy_from_slice(&[flags, 0, 0, 0]);
    icmp[8..24].copy_from_slice(&target.octets());
    icmp[24..26].copy_from_slice(&[OPT_TARGET_LL_ADDR, 1]);
    icmp[26..32].copy_from_slice(&src_mac);
    let csum = icmpv6_sum(target, ALL_NODES, icmp).finish();
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());
    Ok(NA_FRAME_LEN)
}

fn icmpv6_sum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> Checksum {
    // An ICMPv6 message inside one IPv6 packet is below 64 KiB, so the length fits in u32.
    pseudo_header_ipv6(src, dst, NEXT_HEADER_ICMPV6, message.len() as u32).add_bytes(message)
}

/// A validated Ethernet frame carrying an ICMPv6 neighbour advertisement (checksum verified,
/// options well formed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NaView<'a> {
    eth: EthernetHeader,
    ip: Ipv6Header,
    fixed: &'a [u8; NA_FIXED_LEN],
    message: &'a [u8],
    target_ll_addr: Option<MacAddr>,
}

/// Parses an Ethernet/IPv6 frame whose IPv6 payload is directly an ICMPv6 neighbour
/// advertisement.
pub fn parse_na(frame: &[u8]) -> Result<NaView<'_>, FrameError> {
    let eth = EthernetHeader::parse_expecting(frame, ETHERTYPE_IPV6)?;
    let (ip, message) = Ipv6Header::parse(frame.get(ethernet::HEADER_LEN..).unwrap_or(&[]))?;
    if ip.next_header != NEXT_HEADER_ICMPV6 {
        return Err(FrameError::BadIpv6Header {
            reason: "next header is not ICMPv6",
        });
    }
    let fixed = in_chunk::<NA_FIXED_LEN>(message).map_err(|_| FrameError::Truncated {
        need: ICMP_START + NA_FIXED_LEN,
        have: ICMP_START + message.len(),
    })?;
    if fixed[0] != ICMPV6_NEIGHBOR_ADVERT || fixed[1] != 0 {
        return Err(FrameError::NotNeighborAdvert {
            icmp_type: fixed[0],
            code: fixed[1],
        });
    }
    if !icmpv6_sum(ip.src, ip.dst, message).is_valid() {
        return Err(FrameError::BadChecksum {
            found: u16::from_be_bytes([fixed[2], fixed[3]]),
        });
    }
    let target_ll_addr = find_target_ll_addr(message)?;
    Ok(NaView {
        eth,
        ip,
        fixed,
        message,
        target_ll_addr,
    })
}

/// Walks the ND options after the fixed NA part; returns the first target link-layer address
/// option carrying a 6-byte MAC.
fn find_target_ll_addr(message: &[u8]) -> Result<Option<MacAddr>, FrameError> {
    let mut found = None;
    let mut offset = NA_FIXED_LEN;
    while offset < message.len() {
        let units = message.get(offset + 1).copied().unwrap_or(0);
        let option = message
            .get(offset..offset + usize::from(units) * 8)
            .filter(|o| !o.is_empty())
            .ok_or(FrameError::BadOption { offset })?;
        if let (None, [OPT_TARGET_LL_ADDR, 1, mac @ ..]) = (found, option) {
            found = mac.first_chunk::<6>().copied();
        }
        offset += option.len();
    }
    Ok(found)
}

impl<'a> NaView<'a> {
    /// The ICMPv6 message (fixed part and options).
    pub fn icmp_bytes(&self) -> &'a [u8] {
        self.message
    }

    /// Ethernet destination.
    pub fn eth_dst(&self) -> MacAddr {
        self.eth.dst
    }

    /// Ethernet source.
    pub fn eth_src(&self) -> MacAddr {
        self.eth.src
    }

    /// The IPv6 header fields (source, destination, hop limit, traffic class, flow label...).
    pub fn ip_header(&self) -> &Ipv6Header {
        &self.ip
    }

    /// Router flag.
    pub fn router(&self) -> bool {
        self.fixed[4] & FLAG_ROUTER != 0
    }

    /// Solicited flag.
    pub fn solicited(&self) -> bool {
        self.fixed[4] & FLAG_SOLICITED != 0
    }

    /// Override flag.
    pub fn override_flag(&self) -> bool {
        self.fixed[4] & FLAG_OVERRIDE != 0
    }

    /// The address being advertised.
    pub fn target(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.fixed[8..24]);
        Ipv6Addr::from(a)
    }

    /// MAC from the first target link-layer address option, if any.
    pub fn target_ll_addr(&self) -> Option<MacAddr> {
        self.target_ll_addr
    }

    /// The ICMPv6 checksum as found on the wire.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.fixed[2], self.fixed[3]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frame 3 of kad-v3-ipv6.pcap: keepalived 2.2.7 NA for 2001:db8::100, flags R+O.
    const KAD_NA: &str =
        "333300000001021a0000000a86dd6000000000203aff20010db80000000000000000000001\
        00ff02000000000000000000000000000188007709a000000020010db800000000000000000000010002\
        01021a0000000a";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const MAC: MacAddr = [0x02, 0x1a, 0, 0, 0, 0x0a];

    #[test]
    fn emit_matches_keepalived() {
        let mut buf = [0u8; NA_FRAME_LEN];
        let n = emit_unsolicited_na(MAC, "2001:db8::100".parse().unwrap(), true, &mut buf).unwrap();
        assert_eq!(n, NA_FRAME_LEN);
        assert_eq!(buf.to_vec(), hex(KAD_NA));
    }

    #[test]
    fn parse_fields_and_flags() {
        let frame = hex(KAD_NA);
        let v = parse_na(&frame).unwrap();
        assert_eq!(v.eth_dst(), [0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(v.eth_src(), MAC);
        assert_eq!(v.ip_header().hop_limit, 255);
        assert_eq!(v.ip_header().dst, ALL_NODES);
        assert_eq!(v.target(), "2001:db8::100".parse::<Ipv6Addr>().unwrap());
        assert_eq!(v.ip_header().src, v.target());
        assert!(v.router() && v.override_flag() && !v.solicited());
        assert_eq!(v.target_ll_addr(), Some(MAC));
        assert_eq!(v.checksum(), 0x7709);
        assert_eq!(v.icmp_bytes().len(), 32);

        let mut buf = [0u8; NA_FRAME_LEN];
        emit_unsolicited_na(MAC, v.target(), false, &mut buf).unwrap();
        let v = parse_na(&buf).unwrap();
        assert!(!v.router() && v.override_flag() && !v.solicited());
    }

    #[test]
    fn corrupted_frames_are_rejected() {
        let good = hex(KAD_NA);
        let mut f = good.clone();
        f[ICMP_START + 10] ^= 1;
        assert_eq!(parse_na(&f), Err(FrameError::BadChecksum { found: 0x7709 }));
        let mut f = good.clone();
        f[ICMP_START] = 135;
        assert!(matches!(
            parse_na(&f),
            Err(FrameError::NotNeighborAdvert { icmp_type: 135, .. })
        ));
        let mut f = good.clone();
        f[ethernet::HEADER_LEN + 6] = 0;
        assert!(matches!(
            parse_na(&f),
            Err(FrameError::BadIpv6Header { .. })
        ));
        // Zero-length option: adjust the checksum so only the option is wrong.
        let mut f = good.clone();
        f[ICMP_START + 25] = 0;
        f[ICMP_START + 2..ICMP_START + 4].copy_from_slice(&[0, 0]);
        let src: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let c = icmpv6_sum(src, ALL_NODES, &f[ICMP_START..]).finish();
        f[ICMP_START + 2..ICMP_START + 4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse_na(&f), Err(FrameError::BadOption { offset: 24 }));
        for len in 0..good.len() {
            assert!(parse_na(&good[..len]).is_err(), "prefix {len}");
        }
    }

    #[test]
    fn small_buffer_is_rejected() {
        let mut buf = [0u8; NA_FRAME_LEN - 1];
        assert_eq!(
            emit_unsolicited_na(MAC, Ipv6Addr::LOCALHOST, true, &mut buf),
            Err(EmitError::BufferTooSmall { need: 86, have: 85 })
        );
    }
}
