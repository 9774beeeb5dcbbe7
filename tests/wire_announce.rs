//! Gratuitous ARP and unsolicited NA codecs: hand-made vectors (checksums computed by an
//! independent script), the non-router NA flavour keepalived sends with forwarding off, buffer
//! handling, and a seeded mutation fuzz loop over captured frames asserting no panic.
mod seeded_rng;
use seeded_rng::Rng;
mod wire_common;

use std::net::{Ipv4Addr, Ipv6Addr};

use relevo::wire::arp::{emit_garp, parse_arp, ARP_OP_REPLY, ARP_OP_REQUEST, GARP_FRAME_LEN};
use relevo::wire::nd::{emit_unsolicited_na, parse_na, NA_FRAME_LEN};
use relevo::wire::vrrp::{virtual_mac, IpFamily};
use relevo::wire::{EmitError, FrameError};
use wire_common::{fixture_dir, hex, read_frames};

const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0xc0, 0xff, 0xee];

#[test]
fn non_router_na_vector() {
    // Override only (node not forwarding), target 2001:db8::42.
    let expected = hex(
        "333300000001020000c0ffee86dd6000000000203aff20010db8000000000000000000000042\
         ff0200000000000000000000000000018800f7fa2000000020010db80000000000000000000000420201\
         020000c0ffee",
    );
    let target: Ipv6Addr = "2001:db8::42".parse().unwrap();
    let mut buf = [0u8; 128];
    assert_eq!(
        emit_unsolicited_na(MAC, target, false, &mut buf),
        Ok(NA_FRAME_LEN)
    );
    assert_eq!(buf[..NA_FRAME_LEN], expected[..]);
    assert!(buf[NA_FRAME_LEN..].iter().all(|&b| b == 0));
    let na = parse_na(&expected).unwrap();
    assert!(!na.router() && na.override_flag() && !na.solicited());
    assert_eq!(na.target(), target);
    assert_eq!(na.target_ll_addr(), Some(MAC));
    assert_eq!(na.checksum(), 0xf7fa);
    assert_eq!(na.ip_header().traffic_class, 0);
    assert_eq!(na.ip_header().flow_label, 0);
}

#[test]
fn garp_from_virtual_mac_matches_frr_capture() {
    // frr-v3-dual.pcap frame 2: FRR GARP for 192.0.2.160 from the VRID 60 virtual MAC.
    let expected =
        hex("ffffffffffff00005e00013c0806000108000604000100005e00013cc00002a0ffffffffffffc00002a0");
    let mut buf = [0u8; GARP_FRAME_LEN];
    let mac = virtual_mac(60, IpFamily::V4);
    emit_garp(mac, Ipv4Addr::new(192, 0, 2, 160), &mut buf).unwrap();
    assert_eq!(buf[..], expected[..]);
    let arp = parse_arp(&expected).unwrap();
    assert_eq!(arp.operation(), ARP_OP_REQUEST);
    assert!(arp.is_gratuitous());
}

#[test]
fn padded_frames_parse_and_ordinary_arp_is_not_gratuitous() {
    // Reply from kad-v3-ipv4-unicast.pcap frame 2, padded to the Ethernet minimum.
    let mut reply =
        hex("021a0000000a021a0000000b08060001080006040002021a0000000bc000020b021a0000000ac000020a");
    reply.resize(60, 0);
    let arp = parse_arp(&reply).unwrap();
    assert_eq!(arp.operation(), ARP_OP_REPLY);
    assert!(!arp.is_gratuitous());
    assert_eq!(arp.as_bytes().len(), GARP_FRAME_LEN);
    assert_eq!(arp.target_ip(), Ipv4Addr::new(192, 0, 2, 10));

    let mut na = vec![0u8; 100];
    emit_unsolicited_na(MAC, "2001:db8::1".parse().unwrap(), true, &mut na).unwrap();
    assert!(
        parse_na(&na).is_ok(),
        "bytes after the IPv6 payload are ignored"
    );
}

#[test]
fn short_buffers_are_reported() {
    assert_eq!(
        emit_garp(MAC, Ipv4Addr::LOCALHOST, &mut []),
        Err(EmitError::BufferTooSmall { need: 42, have: 0 })
    );
    assert_eq!(
        emit_unsolicited_na(MAC, Ipv6Addr::LOCALHOST, true, &mut [0u8; 60]),
        Err(EmitError::BufferTooSmall { need: 86, have: 60 })
    );
    assert_eq!(
        parse_arp(&[0u8; 10]),
        Err(FrameError::Truncated { need: 14, have: 10 })
    );
}

#[test]
fn na_with_extra_options_and_without_tlla() {
    // Rebuild a valid NA with a nonce option (type 14, 8 bytes) before the TLLA option, then
    // one with no options at all, fixing the payload length and checksum each time.
    let mut base = [0u8; NA_FRAME_LEN];
    let target: Ipv6Addr = "2001:db8::9".parse().unwrap();
    emit_unsolicited_na(MAC, target, true, &mut base).unwrap();
    let reframe = |icmp: &[u8]| {
        let mut f = base[..54].to_vec();
        f[18..20].copy_from_slice(&(icmp.len() as u16).to_be_bytes());
        let mut icmp = icmp.to_vec();
        icmp[2..4].copy_from_slice(&[0, 0]);
        let sum = relevo::wire::checksum::pseudo_header_ipv6(
            target,
            "ff02::1".parse().unwrap(),
            58,
            icmp.len() as u32,
        )
        .add_bytes(&icmp)
        .finish();
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&icmp);
        f
    };
    let icmp = &base[54..];
    let mut with_nonce = icmp[..24].to_vec();
    with_nonce.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6]);
    with_nonce.extend_from_slice(&icmp[24..]);
    let na_frame = reframe(&with_nonce);
    let na = parse_na(&na_frame).unwrap();
    assert_eq!(na.target_ll_addr(), Some(MAC));
    assert_eq!(na.icmp_bytes().len(), 40);

    let bare = reframe(&icmp[..24]);
    assert_eq!(parse_na(&bare).unwrap().target_ll_addr(), None);

    // A nonce claiming 16 bytes swallows the TLLA option exactly: valid, but no TLLA.
    let mut swallowing = with_nonce.clone();
    swallowing[25] = 2;
    assert_eq!(
        parse_na(&reframe(&swallowing)).unwrap().target_ll_addr(),
        None
    );
    // Claiming 24 bytes runs past the end of the message.
    swallowing[25] = 3;
    assert_eq!(
        parse_na(&reframe(&swallowing)),
        Err(FrameError::BadOption { offset: 24 })
    );
    // A zero-length TLLA after a good nonce.
    let mut zero_len = with_nonce.clone();
    zero_len[33] = 0;
    assert_eq!(
        parse_na(&reframe(&zero_len)),
        Err(FrameError::BadOption { offset: 32 })
    );
}

#[test]
fn seeded_mutation_fuzz_over_captured_frames_never_panics() {
    let mut frames = read_frames(&fixture_dir().join("kad-v3-ipv6.pcap"));
    frames.extend(read_frames(&fixture_dir().join("frr-v3-dual.pcap")));
    frames.extend(read_frames(&fixture_dir().join("kad-v3-ipv4-unicast.pcap")));
    let mut rng = Rng::new(0x0a11_0f7e_57ed);
    let (mut arp_ok, mut na_ok) = (0usize, 0usize);
    for frame in &frames {
        for _ in 0..400 {
            let mut f = frame.clone();
            for _ in 0..=rng.index(2) {
                match rng.index(3) {
                    0 => {
                        let i = rng.index(f.len());
                        f[i] = rng.next_u64() as u8;
                    }
                    1 => f.truncate(rng.index(f.len() + 1)),
                    _ => f.extend((0..rng.index(24)).map(|_| rng.next_u64() as u8)),
                }
                if f.is_empty() {
                    break;
                }
            }
            if let Ok(arp) = parse_arp(&f) {
                arp_ok += 1;
                let _ = (arp.sender_ip(), arp.target_mac(), arp.is_gratuitous());
            }
            if let Ok(na) = parse_na(&f) {
                na_ok += 1;
                let _ = (na.target(), na.target_ll_addr(), na.router());
            }
        }
    }
    assert!(arp_ok > 50 && na_ok > 50, "arp {arp_ok} na {na_ok}");
}
