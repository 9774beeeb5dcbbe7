//! Every frame of every captured keepalived / FRR pcap in tests/fixtures: VRRP adverts parse
//! (IPv4 through `parse_ipv4_datagram`, IPv6 through the 40-byte header), verify under the RFC
//! checksum rule and re-emit byte-identical; gratuitous ARPs and unsolicited NAs parse and
//! Relevo's emitters rebuild the exact frame from (MAC, IP). Counts per file are pinned and
//! every decoded field is cross-checked against decoded.txt (made by an independent Python
//! decoder), so an empty or misread file cannot pass.
mod wire_common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use relevo::wire::arp::{emit_garp, parse_arp, GARP_FRAME_LEN};
use relevo::wire::ethernet::{
    format_mac, EthernetHeader, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, HEADER_LEN,
};
use relevo::wire::ipv6::{Ipv6Header, NEXT_HEADER_ICMPV6};
use relevo::wire::nd::{emit_unsolicited_na, parse_na, ICMPV6_NEIGHBOR_ADVERT, NA_FRAME_LEN};
use relevo::wire::vrrp::{
    check_ttl, parse_advert, parse_ipv4_datagram, AdvertRepr, AdvertView, DropReason, IPPROTO_VRRP,
};
use relevo::wire::{V3Ipv4Checksum, VrrpVersion};
use wire_common::{fixture_dir, pcap_files, read_frames};

/// (file, VRRP adverts, GARPs, unsolicited NAs, other frames) from the fixtures README.
const EXPECTED: &[(&str, usize, usize, usize, usize)] = &[
    ("frr-kad-interop.pcap", 39, 12, 12, 10),
    ("frr-v2-ipv4.pcap", 4, 1, 0, 0),
    ("frr-v3-dual-prio0.pcap", 2, 0, 0, 0),
    ("frr-v3-dual.pcap", 11, 1, 1, 5),
    ("kad-v2-ipv4-auth-prio0.pcap", 1, 0, 0, 0),
    ("kad-v2-ipv4-auth.pcap", 5, 20, 0, 0),
    ("kad-v2-ipv4-prio0.pcap", 1, 0, 0, 0),
    ("kad-v2-ipv4.pcap", 8, 10, 0, 0),
    ("kad-v3-ipv4-prio0.pcap", 1, 0, 0, 0),
    ("kad-v3-ipv4-takeover.pcap", 11, 10, 0, 0),
    ("kad-v3-ipv4-unicast.pcap", 5, 5, 0, 4),
    ("kad-v3-ipv4-vmac.pcap", 8, 10, 0, 0),
    ("kad-v3-ipv4.pcap", 8, 30, 0, 0),
    ("kad-v3-ipv6-prio0.pcap", 1, 0, 0, 0),
    ("kad-v3-ipv6.pcap", 14, 0, 20, 0),
];

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    adverts: usize,
    garps: usize,
    nas: usize,
    other: usize,
}

/// decoded.txt lines per file, keyed by 1-based frame number.
fn decoded() -> BTreeMap<String, BTreeMap<usize, String>> {
    let text = std::fs::read_to_string(fixture_dir().join("decoded.txt")).unwrap();
    let mut files = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            current = name.trim().to_string();
            files.insert(current.clone(), BTreeMap::new());
        } else if let Some((num, _)) = line.trim_start().split_once(' ') {
            if let Ok(n) = num.parse::<usize>() {
                files.get_mut(&current).unwrap().insert(n, line.to_string());
            }
        }
    }
    files
}

/// Asserts that the decoded.txt line contains every token (space-delimited, exact).
fn assert_tokens(line: &str, tokens: &[String], what: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    for t in tokens {
        assert!(words.contains(&t.as_str()), "{what}: `{t}` not in `{line}`");
    }
}

/// Tokens decoded.txt prints for an advert.
fn advert_tokens(view: &AdvertView<'_>, src: IpAddr, dst: IpAddr) -> Vec<String> {
    let addrs: Vec<String> = view.addrs().map(|a| a.to_string()).collect();
    let mut t = vec![
        format!("{src}>{dst}"),
        format!("vrid={}", view.vrid()),
        format!("prio={}", view.priority()),
        format!("n={}", view.addr_count()),
        format!("addrs={}", addrs.join(",")),
        format!("csum={:#06x}", view.checksum()),
    ];
    match view.version() {
        VrrpVersion::V3 => {
            t.push("VRRPv3".into());
            t.push(format!("max_adver_int={}cs", view.interval_cs()));
            t.push("matches=pseudo".into());
        }
        VrrpVersion::V2 => {
            t.push("VRRPv2".into());
            t.push(format!("adver_int={}s", view.interval_cs() / 100));
            t.push(format!("auth_type={}", view.auth_type().unwrap()));
            t.push("matches=nopseudo".into());
        }
    }
    t
}

/// Parses an advert under the RFC rule, checks the other IPv4 policy fails for v3, checks
/// every prefix is rejected, and re-emits it byte-identical.
fn check_advert(msg: &[u8], src: IpAddr, dst: IpAddr, what: &str) -> Vec<String> {
    let policy = V3Ipv4Checksum::PseudoHeader;
    let view = parse_advert(msg, src, dst, policy).unwrap_or_else(|e| panic!("{what}: {e}"));
    let other = parse_advert(msg, src, dst, V3Ipv4Checksum::NoPseudoHeader);
    match (view.version(), src) {
        (VrrpVersion::V3, IpAddr::V4(_)) => {
            assert_eq!(other, Err(DropReason::BadChecksum), "{what}")
        }
        _ => assert!(other.is_ok(), "{what}: policy must not matter"),
    }
    let mut storage = Vec::new();
    let repr = AdvertRepr::from_view(&view, &mut storage).unwrap();
    let mut buf = vec![0u8; repr.buffer_len()];
    assert_eq!(
        repr.emit(src, dst, policy, &mut buf),
        Ok(msg.len()),
        "{what}"
    );
    assert_eq!(buf, msg, "{what}: re-emitted bytes differ");
    for len in 0..msg.len() {
        assert!(
            parse_advert(&msg[..len], src, dst, policy).is_err(),
            "{what} prefix {len}"
        );
    }
    advert_tokens(&view, src, dst)
}

/// Classifies and checks one frame; returns the decoded.txt tokens it must match.
fn check_frame(frame: &[u8], counts: &mut Counts, what: &str) -> Vec<String> {
    let eth = EthernetHeader::parse(frame).unwrap();
    let body = &frame[HEADER_LEN..];
    match eth.ethertype {
        ETHERTYPE_IPV4 => {
            let meta = parse_ipv4_datagram(body).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(check_ttl(meta.ttl), Ok(()), "{what}");
            assert_eq!(
                meta.payload.len() + 20,
                body.len(),
                "{what}: unpadded frame"
            );
            for len in 0..body.len() {
                assert!(parse_ipv4_datagram(&body[..len]).is_err(), "{what} {len}");
            }
            counts.adverts += 1;
            let mut t = check_advert(meta.payload, meta.src.into(), meta.dst.into(), what);
            t.push("ttl=255".into());
            t
        }
        ETHERTYPE_IPV6 => {
            let (ip, payload) = Ipv6Header::parse(body).unwrap();
            assert_eq!(ip.hop_limit, 255, "{what}");
            match (ip.next_header, payload.first()) {
                (IPPROTO_VRRP, _) => {
                    assert_eq!(check_ttl(ip.hop_limit), Ok(()));
                    counts.adverts += 1;
                    let mut t = check_advert(payload, ip.src.into(), ip.dst.into(), what);
                    t.push("hlim=255".into());
                    t
                }
                (NEXT_HEADER_ICMPV6, Some(&ICMPV6_NEIGHBOR_ADVERT)) => {
                    counts.nas += 1;
                    check_na(frame, what)
                }
                _ => {
                    counts.other += 1;
                    vec![format!("{}>{}", ip.src, ip.dst)]
                }
            }
        }
        ETHERTYPE_ARP => {
            let arp = parse_arp(frame).unwrap_or_else(|e| panic!("{what}: {e}"));
            if arp.is_gratuitous() {
                counts.garps += 1;
                check_garp(frame, what)
            } else {
                counts.other += 1;
                vec![
                    "ARP".into(),
                    format!("op={}", arp.operation()),
                    format!("sha={}", format_mac(&arp.sender_mac())),
                    format!("tpa={}", arp.target_ip()),
                ]
            }
        }
        other => panic!("{what}: unexpected ethertype {other:#06x}"),
    }
}

fn check_garp(frame: &[u8], what: &str) -> Vec<String> {
    assert_eq!(frame.len(), GARP_FRAME_LEN, "{what}");
    let arp = parse_arp(frame).unwrap();
    assert_eq!(arp.sender_mac(), arp.eth_src(), "{what}");
    let mut buf = [0u8; GARP_FRAME_LEN];
    emit_garp(arp.sender_mac(), arp.sender_ip(), &mut buf).unwrap();
    assert_eq!(buf[..], frame[..], "{what}: emitted GARP differs");
    for len in 0..frame.len() {
        assert!(parse_arp(&frame[..len]).is_err(), "{what} prefix {len}");
    }
    vec![
        "GARP".into(),
        format!("op={}", arp.operation()),
        format!("sha={}", format_mac(&arp.sender_mac())),
        format!("spa={}", arp.sender_ip()),
        format!("tha={}", format_mac(&arp.target_mac())),
        format!("tpa={}", arp.target_ip()),
    ]
}

fn check_na(frame: &[u8], what: &str) -> Vec<String> {
    assert_eq!(frame.len(), NA_FRAME_LEN, "{what}");
    let na = parse_na(frame).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mac = na.target_ll_addr().unwrap();
    assert_eq!(mac, na.eth_src(), "{what}");
    assert_eq!(
        na.ip_header().src,
        na.target(),
        "{what}: unsolicited NA comes from the VIP"
    );
    assert!(na.override_flag() && !na.solicited(), "{what}");
    let mut buf = [0u8; NA_FRAME_LEN];
    emit_unsolicited_na(mac, na.target(), na.router(), &mut buf).unwrap();
    assert_eq!(buf[..], frame[..], "{what}: emitted NA differs");
    for len in 0..frame.len() {
        assert!(parse_na(&frame[..len]).is_err(), "{what} prefix {len}");
    }
    let flags = format!(
        "flags={}{}",
        if na.router() { "R" } else { "" },
        if na.override_flag() { "O" } else { "" }
    );
    vec![
        "NA".into(),
        flags,
        format!("{}>{}", na.ip_header().src, na.ip_header().dst),
        format!("target={}", na.target()),
        format!("tlla={}", format_mac(&mac)),
    ]
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_fixture_frame_parses_and_reemits_identically() {
    let decoded = decoded();
    let files = pcap_files();
    let names: Vec<String> = files.iter().map(|p| file_name(p)).collect();
    let expected_names: Vec<&str> = EXPECTED.iter().map(|e| e.0).collect();
    assert_eq!(
        names, expected_names,
        "fixture set changed: update EXPECTED"
    );

    for (path, &(name, adverts, garps, nas, other)) in files.iter().zip(EXPECTED) {
        let frames = read_frames(path);
        let lines = &decoded[name];
        assert_eq!(
            frames.len(),
            lines.len(),
            "{name}: frame count vs decoded.txt"
        );
        let mut counts = Counts::default();
        for (i, frame) in frames.iter().enumerate() {
            let what = format!("{name} frame {}", i + 1);
            let line = &lines[&(i + 1)];
            assert!(line.contains(&format!("len={}", frame.len())), "{what}");
            let tokens = check_frame(frame, &mut counts, &what);
            assert_tokens(line, &tokens, &what);
        }
        let expected = Counts {
            adverts,
            garps,
            nas,
            other,
        };
        assert_eq!(counts, expected, "{name}");
        assert!(
            adverts > 0,
            "{name}: a fixture without adverts tests nothing"
        );
    }
}

#[test]
fn priority_zero_fixtures_are_single_shutdown_adverts() {
    for name in [
        "kad-v3-ipv4-prio0.pcap",
        "kad-v3-ipv6-prio0.pcap",
        "kad-v2-ipv4-prio0.pcap",
        "kad-v2-ipv4-auth-prio0.pcap",
    ] {
        let frames = read_frames(&fixture_dir().join(name));
        assert_eq!(frames.len(), 1, "{name}");
        let body = &frames[0][HEADER_LEN..];
        let (msg, src, dst): (&[u8], IpAddr, IpAddr) = match Ipv6Header::parse(body) {
            Ok((ip, payload)) => (payload, ip.src.into(), ip.dst.into()),
            Err(_) => {
                let meta = parse_ipv4_datagram(body).unwrap();
                (meta.payload, meta.src.into(), meta.dst.into())
            }
        };
        let view = parse_advert(msg, src, dst, V3Ipv4Checksum::PseudoHeader).unwrap();
        assert_eq!(view.priority(), 0, "{name}");
    }
}
