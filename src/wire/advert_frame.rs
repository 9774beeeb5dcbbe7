//! Whole Ethernet frames around a VRRP advert, for virtual-MAC mode: RFC 5798 §7.3 has a
//! master send its adverts from the virtual router MAC, which a raw IP socket cannot do (the
//! kernel writes the interface's own MAC). The frame is the multicast advert exactly as the
//! kernel would send it (IPv4: TTL 255, DSCP CS6, DF; IPv6: hop limit 255, traffic class
//! CS6) with the virtual MAC as Ethernet source. Headers are built with `pnet_packet`.
use std::net::IpAddr;

use pnet_base::MacAddr as PnetMac;
use pnet_packet::ethernet::{EtherTypes, MutableEthernetPacket};
use pnet_packet::ip::IpNextHeaderProtocol;
use pnet_packet::ipv4::{self, MutableIpv4Packet};
use pnet_packet::ipv6::MutableIpv6Packet;

use super::ethernet::{MacAddr, HEADER_LEN};
use super::vrrp::{AdvertRepr, IpFamily, IPPROTO_VRRP};
use super::{EmitError, V3Ipv4Checksum};

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
/// DSCP CS6 (network control), as keepalived and FRR mark adverts.
const DSCP_CS6: u8 = 48;
/// IPv4 "don't fragment".
const FLAG_DF: u8 = 0b010;

/// The multicast MAC of the VRRP group: 01:00:5e:00:00:12 (224.0.0.18) or
/// 33:33:00:00:00:12 (ff02::12).
pub fn group_mac(family: IpFamily) -> MacAddr {
    match family {
        IpFamily::V4 => [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12],
        IpFamily::V6 => [0x33, 0x33, 0x00, 0x00, 0x00, 0x12],
    }
}

/// Writes an Ethernet frame from `src_mac` carrying `advert` from `src` to the VRRP multicast
/// group of its family into `buf`; returns the frame's length.
pub fn emit_advert_frame(
    advert: &AdvertRepr<'_>,
    src_mac: MacAddr,
    src: IpAddr,
    v3_ipv4_checksum: V3Ipv4Checksum,
    buf: &mut [u8],
) -> Result<usize, EmitError> {
    let family = IpFamily::of(src);
    let dst = family.vrrp_multicast();
    let ip_len = match family {
        IpFamily::V4 => IPV4_HEADER_LEN,
        IpFamily::V6 => IPV6_HEADER_LEN,
    };
    let payload_at = HEADER_LEN + ip_len;
    let have = buf.len();
    let payload = buf.get_mut(payload_at..).ok_or(EmitError::BufferTooSmall {
        need: payload_at,
        have,
    })?;
    let vrrp_len = advert.emit(src, dst, v3_ipv4_checksum, payload)?;
    let frame_len = payload_at + vrrp_len;
    let too_small = || EmitError::BufferTooSmall {
        need: frame_len,
        have,
    };
    let ip_total = u16::try_from(ip_len + vrrp_len).map_err(|_| too_small())?;
    let frame = &mut buf[..frame_len];
    let mut eth = MutableEthernetPacket::new(frame).ok_or_else(too_small)?;
    eth.set_destination(pnet_mac(group_mac(family)));
    eth.set_source(pnet_mac(src_mac));
    let proto = IpNextHeaderProtocol::new(IPPROTO_VRRP);
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            eth.set_ethertype(EtherTypes::Ipv4);
            let ip_buf = &mut frame[HEADER_LEN..];
            let mut ip = MutableIpv4Packet::new(ip_buf).ok_or_else(too_small)?;
            ip.set_version(4);
            ip.set_header_length(5);
            ip.set_dscp(DSCP_CS6);
            ip.set_ecn(0);
            ip.set_total_length(ip_total);
            ip.set_identification(0);
            ip.set_flags(FLAG_DF);
            ip.set_fragment_offset(0);
            ip.set_ttl(255);
            ip.set_next_level_protocol(proto);
            ip.set_source(src);
            ip.set_destination(dst);
            ip.set_checksum(0);
            let sum = ipv4::checksum(&ip.to_immutable());
            ip.set_checksum(sum);
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            eth.set_ethertype(EtherTypes::Ipv6);
            let ip_buf = &mut frame[HEADER_LEN..];
            let mut ip = MutableIpv6Packet::new(ip_buf).ok_or_else(too_small)?;
            ip.set_version(6);
            ip.set_traffic_class(DSCP_CS6 << 2);
            ip.set_flow_label(0);
            ip.set_payload_length(u16::try_from(vrrp_len).map_err(|_| too_small())?);
            ip.set_next_header(proto);
            ip.set_hop_limit(255);
            ip.set_source(src);
            ip.set_destination(dst);
        }
        _ => {
            return Err(EmitError::WrongFamily {
                what: "destination",
            })
        }
    }
    Ok(frame_len)
}

fn pnet_mac(mac: MacAddr) -> PnetMac {
    PnetMac::new(mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::vrrp::{parse_ipv4_datagram, virtual_mac, V2Auth};
    use crate::wire::VrrpVersion;

    fn advert(addrs: &[IpAddr]) -> AdvertRepr<'_> {
        AdvertRepr {
            version: VrrpVersion::V3,
            vrid: 51,
            priority: 150,
            interval_cs: 1,
            auth: V2Auth::None,
            addrs,
        }
    }

    /// The frame of an advert for `addrs` from `src` and VRID 51's virtual MAC.
    fn frame(addrs: &[IpAddr], src: IpAddr) -> (Vec<u8>, MacAddr) {
        let mut buf = [0u8; 256];
        let mac = virtual_mac(51, IpFamily::of(src));
        let len = emit_advert_frame(
            &advert(addrs),
            mac,
            src,
            V3Ipv4Checksum::PseudoHeader,
            &mut buf,
        )
        .unwrap();
        (buf[..len].to_vec(), mac)
    }

    #[test]
    fn ipv4_frame_is_the_advert_from_the_virtual_mac() {
        let addrs = ["192.0.2.100".parse().unwrap()];
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let (frame, mac) = frame(&addrs, src);
        assert_eq!(frame[..6], group_mac(IpFamily::V4));
        assert_eq!(frame[6..12], mac);
        assert_eq!(frame[12..14], [0x08, 0x00]);
        let meta = parse_ipv4_datagram(&frame[HEADER_LEN..]).unwrap();
        assert_eq!(meta.ttl, 255);
        assert_eq!(IpAddr::V4(meta.src), src);
        assert_eq!(frame[HEADER_LEN + 1], 0xc0, "DSCP CS6");
        // The IPv4 header checksum verifies (sums to 0xffff).
        let header = &frame[HEADER_LEN..HEADER_LEN + IPV4_HEADER_LEN];
        let sum: u32 = header
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        let folded = (sum & 0xffff) + (sum >> 16);
        assert_eq!(folded, 0xffff);
        let mut expected = [0u8; 64];
        let n = advert(&addrs)
            .emit(
                src,
                IpFamily::V4.vrrp_multicast(),
                V3Ipv4Checksum::PseudoHeader,
                &mut expected,
            )
            .unwrap();
        assert_eq!(meta.payload, &expected[..n]);
    }

    #[test]
    fn ipv6_frame_carries_hop_limit_255_and_cs6() {
        let addrs = ["fe80::1".parse().unwrap(), "2001:db8::100".parse().unwrap()];
        let src: IpAddr = "fe80::2".parse().unwrap();
        let (frame, mac) = frame(&addrs, src);
        let len = frame.len();
        assert_eq!(frame[..6], group_mac(IpFamily::V6));
        assert_eq!(frame[6..12], mac);
        assert_eq!(frame[12..14], [0x86, 0xdd]);
        let ip = &frame[HEADER_LEN..];
        assert_eq!(ip[0], 0x6c, "version 6, traffic class CS6 (high nibble)");
        assert_eq!(ip[1] & 0xf0, 0x00);
        assert_eq!(usize::from(u16::from_be_bytes([ip[4], ip[5]])), len - 54);
        assert_eq!((ip[6], ip[7]), (112, 255));
        assert_eq!(ip[8..24], src_octets(src));
        assert_eq!(ip[24..40], src_octets(IpFamily::V6.vrrp_multicast()));
    }

    #[test]
    fn a_short_buffer_is_an_error() {
        let addrs = ["192.0.2.100".parse().unwrap()];
        let mut buf = [0u8; 40];
        let err = emit_advert_frame(
            &advert(&addrs),
            [0; 6],
            "192.0.2.1".parse().unwrap(),
            V3Ipv4Checksum::PseudoHeader,
            &mut buf,
        );
        assert!(matches!(err, Err(EmitError::BufferTooSmall { .. })));
    }

    fn src_octets(addr: IpAddr) -> [u8; 16] {
        match addr {
            IpAddr::V6(a) => a.octets(),
            IpAddr::V4(_) => [0; 16],
        }
    }
}
