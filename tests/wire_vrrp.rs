//! VRRP codec tests with byte vectors in both directions (captured keepalived / FRR packets and
//! hand-made ones whose checksums were computed independently), checksum policy, specific drop
//! reasons, emit errors, truncation and a seeded mutation fuzz loop.
mod seeded_rng;
use seeded_rng::Rng;
mod wire_common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use relevo::wire::checksum::{pseudo_header_ipv4, pseudo_header_ipv6, Checksum};
use relevo::wire::vrrp::{
    check_ttl, parse_advert, parse_ipv4_datagram, AdvertRepr, AdvertView, DropReason, IpFamily,
    V2Auth, IPPROTO_VRRP, VRRP_MCAST_V4, VRRP_MCAST_V6,
};
use relevo::wire::{EmitError, V3Ipv4Checksum, VrrpVersion};
use wire_common::hex;

const PSEUDO: V3Ipv4Checksum = V3Ipv4Checksum::PseudoHeader;
const NO_PSEUDO: V3Ipv4Checksum = V3Ipv4Checksum::NoPseudoHeader;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// One test vector: a VRRP message, the addresses it travelled between, the checksum policy
/// it verifies with, and the content it must decode to.
struct Vector {
    name: &'static str,
    msg: &'static str,
    src: &'static str,
    dst: &'static str,
    policy: V3Ipv4Checksum,
    version: VrrpVersion,
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    auth: V2Auth,
    addrs: &'static [&'static str],
    checksum: u16,
}

fn vectors() -> Vec<Vector> {
    vec![
        Vector {
            name: "keepalived v3 IPv4, 3 VIPs (kad-v3-ipv4.pcap)",
            msg: "3133960300644e92c0000264c0000265c0000266",
            src: "192.0.2.10",
            dst: "224.0.0.18",
            policy: PSEUDO,
            version: VrrpVersion::V3,
            vrid: 51,
            priority: 150,
            interval_cs: 100,
            auth: V2Auth::None,
            addrs: &["192.0.2.100", "192.0.2.101", "192.0.2.102"],
            checksum: 0x4e92,
        },
        Vector {
            name: "FRR v3 IPv4, 1 VIP (frr-v3-dual.pcap)",
            msg: "313cb4010064b523c00002a0",
            src: "192.0.2.10",
            dst: "224.0.0.18",
            policy: PSEUDO,
            version: VrrpVersion::V3,
            vrid: 60,
            priority: 180,
            interval_cs: 100,
            auth: V2Auth::None,
            addrs: &["192.0.2.160"],
            checksum: 0xb523,
        },
        Vector {
            name: "keepalived v3 IPv6, 50 cs (kad-v3-ipv6.pcap)",
            msg: "3134c8020032dc09fe80000000000000000000000000000120010db8000000000000000000000100",
            src: "fe80::1a:ff:fe00:a",
            dst: "ff02::12",
            policy: PSEUDO,
            version: VrrpVersion::V3,
            vrid: 52,
            priority: 200,
            interval_cs: 50,
            auth: V2Auth::None,
            addrs: &["fe80::1", "2001:db8::100"],
            checksum: 0xdc09,
        },
        Vector {
            name: "FRR v3 IPv6 (frr-v3-dual.pcap)",
            msg: "313cb4010064ece020010db8000000000000000000000160",
            src: "fe80::3c:a",
            dst: "ff02::12",
            // IPv6 always uses the pseudo-header, whatever the IPv4 policy says.
            policy: NO_PSEUDO,
            version: VrrpVersion::V3,
            vrid: 60,
            priority: 180,
            interval_cs: 100,
            auth: V2Auth::None,
            addrs: &["2001:db8::160"],
            checksum: 0xece0,
        },
        Vector {
            name: "keepalived v2 no auth (kad-v2-ipv4.pcap)",
            msg: "213564010001b859c000026e0000000000000000",
            src: "192.0.2.10",
            dst: "224.0.0.18",
            policy: PSEUDO,
            version: VrrpVersion::V2,
            vrid: 53,
            priority: 100,
            interval_cs: 100,
            auth: V2Auth::None,
            addrs: &["192.0.2.110"],
            checksum: 0xb859,
        },
        Vector {
            name: "keepalived v2 simple text 'iapass', 2 s (kad-v2-ipv4-auth.pcap)",
            msg: "213678020102939cc0000278c00002796961706173730000",
            src: "192.0.2.10",
            dst: "224.0.0.18",
            policy: NO_PSEUDO,
            version: VrrpVersion::V2,
            vrid: 54,
            priority: 120,
            interval_cs: 200,
            auth: V2Auth::SimpleText(*b"iapass\0\0"),
            addrs: &["192.0.2.120", "192.0.2.121"],
            checksum: 0x939c,
        },
        Vector {
            name: "hand-made v3 IPv4, max interval 4095 cs, unicast-style src",
            msg: "310164020ffffbc0c6336401c6336402",
            src: "198.51.100.10",
            dst: "224.0.0.18",
            policy: PSEUDO,
            version: VrrpVersion::V3,
            vrid: 1,
            priority: 100,
            interval_cs: 4095,
            auth: V2Auth::None,
            addrs: &["198.51.100.1", "198.51.100.2"],
            checksum: 0xfbc0,
        },
        Vector {
            name: "hand-made v2, VRID 255, prio 255, 255 s, simple text 'relevo!!'",
            msg: "21ffff0101ffa4a2c000020172656c65766f2121",
            src: "192.0.2.1",
            dst: "224.0.0.18",
            policy: PSEUDO,
            version: VrrpVersion::V2,
            vrid: 255,
            priority: 255,
            interval_cs: 25500,
            auth: V2Auth::SimpleText(*b"relevo!!"),
            addrs: &["192.0.2.1"],
            checksum: 0xa4a2,
        },
        Vector {
            name: "hand-made v3 IPv6, 10 cs",
            msg: "31070102000aa374fe80000000000000000000000000000720010db8000000000000000000000007",
            src: "fe80::2",
            dst: "ff02::12",
            policy: PSEUDO,
            version: VrrpVersion::V3,
            vrid: 7,
            priority: 1,
            interval_cs: 10,
            auth: V2Auth::None,
            addrs: &["fe80::7", "2001:db8::7"],
            checksum: 0xa374,
        },
    ]
}

fn addrs_of(v: &Vector) -> Vec<IpAddr> {
    v.addrs.iter().map(|a| ip(a)).collect()
}

#[test]
fn vectors_parse_to_their_content() {
    for v in vectors() {
        let msg = hex(v.msg);
        let view = parse_advert(&msg, ip(v.src), ip(v.dst), v.policy)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(view.version(), v.version, "{}", v.name);
        assert_eq!(view.family(), IpFamily::of(ip(v.src)), "{}", v.name);
        assert_eq!(view.vrid(), v.vrid, "{}", v.name);
        assert_eq!(view.priority(), v.priority, "{}", v.name);
        assert_eq!(view.interval_cs(), v.interval_cs, "{}", v.name);
        assert_eq!(usize::from(view.addr_count()), v.addrs.len(), "{}", v.name);
        assert_eq!(view.addrs().len(), v.addrs.len(), "{}", v.name);
        assert_eq!(view.addrs().collect::<Vec<_>>(), addrs_of(&v), "{}", v.name);
        assert_eq!(view.checksum(), v.checksum, "{}", v.name);
        assert_eq!(view.as_bytes(), &msg[..], "{}", v.name);
        match v.version {
            VrrpVersion::V3 => {
                assert_eq!(view.auth_type(), None, "{}", v.name);
                assert_eq!(view.auth_data(), None, "{}", v.name);
                assert_eq!(view.v2_auth(), None, "{}", v.name);
            }
            VrrpVersion::V2 => {
                assert_eq!(view.auth_type(), Some(v.auth.auth_type()), "{}", v.name);
                assert_eq!(view.auth_data(), Some(&v.auth.data()), "{}", v.name);
                assert_eq!(view.v2_auth(), Some(v.auth), "{}", v.name);
                assert!(v.auth.matches(&view), "{}", v.name);
            }
        }
    }
}

#[test]
fn vectors_are_emitted_byte_identical() {
    for v in vectors() {
        let addrs = addrs_of(&v);
        let repr = AdvertRepr {
            version: v.version,
            vrid: v.vrid,
            priority: v.priority,
            interval_cs: v.interval_cs,
            auth: v.auth,
            addrs: &addrs,
        };
        let expected = hex(v.msg);
        assert_eq!(repr.buffer_len(), expected.len(), "{}", v.name);
        let mut buf = [0xaau8; 512];
        let n = repr
            .emit(ip(v.src), ip(v.dst), v.policy, &mut buf)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(n, expected.len(), "{}", v.name);
        assert_eq!(buf[..n], expected[..], "{}", v.name);
        assert!(
            buf[n..].iter().all(|&b| b == 0xaa),
            "{}: wrote past len",
            v.name
        );
    }
}

#[test]
fn from_view_round_trips_every_vector() {
    let mut storage = Vec::new();
    for v in vectors() {
        let msg = hex(v.msg);
        let view = parse_advert(&msg, ip(v.src), ip(v.dst), v.policy).unwrap();
        let repr = AdvertRepr::from_view(&view, &mut storage).unwrap();
        assert_eq!(repr.auth, v.auth, "{}", v.name);
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(ip(v.src), ip(v.dst), v.policy, &mut buf).unwrap();
        assert_eq!(buf, msg, "{}", v.name);
    }
}

/// keepalived's priority-0 advert of kad-v3-ipv4-prio0.pcap: 0xe492 with the pseudo-header;
/// the same message checksummed without it would carry 0x8734.
#[test]
fn v3_ipv4_checksum_policy_is_enforced_both_ways() {
    let with_pseudo = hex("313300030064e492c0000264c0000265c0000266");
    let without_pseudo = hex("3133000300648734c0000264c0000265c0000266");
    let (src, dst) = (ip("192.0.2.10"), ip("224.0.0.18"));

    let view = parse_advert(&with_pseudo, src, dst, PSEUDO).unwrap();
    assert_eq!((view.priority(), view.checksum()), (0, 0xe492));
    assert_eq!(
        parse_advert(&with_pseudo, src, dst, NO_PSEUDO),
        Err(DropReason::BadChecksum)
    );
    let view = parse_advert(&without_pseudo, src, dst, NO_PSEUDO).unwrap();
    assert_eq!(view.checksum(), 0x8734);
    assert_eq!(
        parse_advert(&without_pseudo, src, dst, PSEUDO),
        Err(DropReason::BadChecksum)
    );

    // The emitter produces each form under its policy.
    let mut storage = Vec::new();
    let repr = AdvertRepr::from_view(&view, &mut storage).unwrap();
    let mut buf = [0u8; 20];
    repr.emit(src, dst, PSEUDO, &mut buf).unwrap();
    assert_eq!(buf[..], with_pseudo[..]);
    repr.emit(src, dst, NO_PSEUDO, &mut buf).unwrap();
    assert_eq!(buf[..], without_pseudo[..]);

    // The pseudo-header binds the addresses: another destination fails, any policy is moot
    // for v2, and IPv6 never skips the pseudo-header.
    assert_eq!(
        parse_advert(&with_pseudo, src, ip("192.0.2.11"), PSEUDO),
        Err(DropReason::BadChecksum)
    );
    assert!(parse_advert(&without_pseudo, src, ip("192.0.2.11"), NO_PSEUDO).is_ok());
}

#[test]
fn ipv6_checksum_ignores_policy_but_binds_addresses() {
    let msg = hex("313cb4010064ece020010db8000000000000000000000160");
    for policy in [PSEUDO, NO_PSEUDO] {
        assert!(parse_advert(&msg, ip("fe80::3c:a"), ip("ff02::12"), policy).is_ok());
        assert_eq!(
            parse_advert(&msg, ip("fe80::3c:b"), ip("ff02::12"), policy),
            Err(DropReason::BadChecksum)
        );
    }
}

/// Rewrites the checksum of `msg` so it verifies as `version` from `src` to `dst` under
/// `policy` (lets a corruption test reach the check after the checksum).
fn fix_checksum(msg: &mut [u8], src: IpAddr, dst: IpAddr, policy: V3Ipv4Checksum) {
    if msg.len() < 8 {
        return;
    }
    msg[6..8].copy_from_slice(&[0, 0]);
    let len = msg.len();
    let start = match (msg[0] >> 4, src, dst, policy) {
        (3, IpAddr::V4(s), IpAddr::V4(d), V3Ipv4Checksum::PseudoHeader) => {
            pseudo_header_ipv4(s, d, IPPROTO_VRRP, len as u16)
        }
        (3, IpAddr::V6(s), IpAddr::V6(d), _) => pseudo_header_ipv6(s, d, IPPROTO_VRRP, len as u32),
        _ => Checksum::new(),
    };
    let c = start.add_bytes(msg).finish();
    msg[6..8].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn corrupted_fields_give_their_specific_reason() {
    let v4 = hex("313cb4010064b523c00002a0");
    let (src, dst) = (ip("192.0.2.10"), ip("224.0.0.18"));
    let corrupt = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut m = v4.clone();
        edit(&mut m);
        fix_checksum(&mut m, src, dst, PSEUDO);
        parse_advert(&m, src, dst, PSEUDO).map(|v| v.interval_cs())
    };
    assert_eq!(corrupt(&|m| m[0] = 0x41), Err(DropReason::BadVersion));
    assert_eq!(corrupt(&|m| m[0] = 0x11), Err(DropReason::BadVersion));
    assert_eq!(corrupt(&|m| m[0] = 0x32), Err(DropReason::BadType));
    assert_eq!(corrupt(&|m| m[0] = 0x30), Err(DropReason::BadType));
    assert_eq!(corrupt(&|m| m[3] = 2), Err(DropReason::BadLength));
    assert_eq!(corrupt(&|m| m[3] = 0), Err(DropReason::BadLength));
    assert_eq!(
        corrupt(&|m| m.extend_from_slice(&[0; 4])),
        Err(DropReason::BadLength)
    );
    assert_eq!(corrupt(&|m| m.push(0)), Err(DropReason::BadLength));
    // A v3 IPv4 message interpreted as v2 lacks the 8 auth bytes.
    assert_eq!(corrupt(&|m| m[0] = 0x21), Err(DropReason::BadLength));
    // The reserved nibble is ignored on receive.
    assert_eq!(corrupt(&|m| m[4] = 0xf0), Ok(100));

    let mut bad_sum = v4.clone();
    bad_sum[7] ^= 0x01;
    assert_eq!(
        parse_advert(&bad_sum, src, dst, PSEUDO),
        Err(DropReason::BadChecksum)
    );
    let mut bad_body = v4.clone();
    bad_body[2] = 181;
    assert_eq!(
        parse_advert(&bad_body, src, dst, PSEUDO),
        Err(DropReason::BadChecksum)
    );

    // v2 over IPv6, and mixed families.
    let v2 = hex("213564010001b859c000026e0000000000000000");
    assert_eq!(
        parse_advert(&v2, ip("fe80::1"), ip("ff02::12"), PSEUDO),
        Err(DropReason::WrongFamily)
    );
    assert_eq!(
        parse_advert(&v4, src, IpAddr::V6(VRRP_MCAST_V6), PSEUDO),
        Err(DropReason::WrongFamily)
    );
    assert_eq!(
        parse_advert(&v4, ip("fe80::1"), IpAddr::V4(VRRP_MCAST_V4), PSEUDO),
        Err(DropReason::WrongFamily)
    );
    // A v3 IPv6 message with a v4 count interpretation does not fit.
    let v6 = hex("313cb4010064ece020010db8000000000000000000000160");
    assert_eq!(
        parse_advert(&v6, src, dst, PSEUDO),
        Err(DropReason::BadLength)
    );
}

#[test]
fn zero_addresses_parse_and_emit() {
    let repr = AdvertRepr {
        version: VrrpVersion::V3,
        vrid: 9,
        priority: 100,
        interval_cs: 100,
        auth: V2Auth::None,
        addrs: &[],
    };
    let (src, dst) = (ip("192.0.2.1"), IpAddr::V4(VRRP_MCAST_V4));
    let mut buf = [0u8; 8];
    assert_eq!(repr.emit(src, dst, PSEUDO, &mut buf), Ok(8));
    let view = parse_advert(&buf, src, dst, PSEUDO).unwrap();
    assert_eq!(view.addr_count(), 0);
    assert_eq!(view.addrs().next(), None);
}

#[test]
fn max_addresses_round_trip_and_256_is_refused() {
    let addrs: Vec<IpAddr> = (0..=255u16)
        .map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)))
        .collect();
    let (src, dst) = (ip("fe80::1"), IpAddr::V6(VRRP_MCAST_V6));
    let mut repr = AdvertRepr {
        version: VrrpVersion::V3,
        vrid: 9,
        priority: 100,
        interval_cs: 100,
        auth: V2Auth::None,
        addrs: &addrs[..255],
    };
    let mut buf = vec![0u8; relevo::wire::vrrp::MAX_MESSAGE_LEN];
    assert_eq!(
        repr.emit(src, dst, PSEUDO, &mut buf),
        Ok(relevo::wire::vrrp::MAX_MESSAGE_LEN)
    );
    let view = parse_advert(&buf, src, dst, PSEUDO).unwrap();
    assert_eq!(view.addr_count(), 255);
    assert!(view.addrs().eq(addrs[..255].iter().copied()));

    repr.addrs = &addrs;
    assert_eq!(
        repr.emit(src, dst, PSEUDO, &mut vec![0u8; 8192]),
        Err(EmitError::TooManyAddresses { count: 256 })
    );
}

#[test]
fn emit_errors() {
    let v4 = [ip("192.0.2.100")];
    let base = AdvertRepr {
        version: VrrpVersion::V3,
        vrid: 1,
        priority: 100,
        interval_cs: 100,
        auth: V2Auth::None,
        addrs: &v4,
    };
    let (src, dst) = (ip("192.0.2.10"), IpAddr::V4(VRRP_MCAST_V4));
    let mut buf = [0u8; 64];

    assert_eq!(
        base.emit(src, dst, PSEUDO, &mut buf[..11]),
        Err(EmitError::BufferTooSmall { need: 12, have: 11 })
    );
    assert_eq!(
        base.emit(src, IpAddr::V6(VRRP_MCAST_V6), PSEUDO, &mut buf),
        Err(EmitError::WrongFamily {
            what: "destination address"
        })
    );
    let v6_vip = [ip("2001:db8::1")];
    assert!(matches!(
        AdvertRepr {
            addrs: &v6_vip,
            ..base
        }
        .emit(src, dst, PSEUDO, &mut buf),
        Err(EmitError::WrongFamily { .. })
    ));
    assert_eq!(
        AdvertRepr {
            version: VrrpVersion::V2,
            addrs: &v6_vip,
            ..base
        }
        .emit(ip("fe80::1"), IpAddr::V6(VRRP_MCAST_V6), PSEUDO, &mut buf),
        Err(EmitError::V2OverIpv6)
    );
    for (version, interval_cs) in [
        (VrrpVersion::V3, 0),
        (VrrpVersion::V3, 4096),
        (VrrpVersion::V2, 0),
        (VrrpVersion::V2, 150),
        (VrrpVersion::V2, 25600),
    ] {
        assert_eq!(
            AdvertRepr {
                version,
                interval_cs,
                ..base
            }
            .emit(src, dst, PSEUDO, &mut buf),
            Err(EmitError::IntervalOutOfRange {
                version,
                interval_cs
            })
        );
    }
    // v3 ignores the v2 auth setting entirely.
    let n = AdvertRepr {
        auth: V2Auth::from_password("secret"),
        ..base
    }
    .emit(src, dst, PSEUDO, &mut buf)
    .unwrap();
    assert_eq!(n, 12);
}

#[test]
fn v2_auth_matching() {
    let msg = hex("213678020102939cc0000278c00002796961706173730000");
    let view = parse_advert(&msg, ip("192.0.2.10"), ip("224.0.0.18"), PSEUDO).unwrap();
    assert!(V2Auth::from_password("iapass").matches(&view));
    assert!(!V2Auth::from_password("iapasS").matches(&view));
    assert!(!V2Auth::None.matches(&view));
    let v3 = hex("313cb4010064b523c00002a0");
    let v3 = parse_advert(&v3, ip("192.0.2.10"), ip("224.0.0.18"), PSEUDO).unwrap();
    assert!(!V2Auth::None.matches(&v3));
}

#[test]
fn unknown_v2_auth_type_parses_but_cannot_be_reemitted() {
    let mut msg = hex("213564010001b859c000026e0000000000000000");
    msg[4] = 2; // IP Authentication Header, removed by RFC 3768
    let (src, dst) = (ip("192.0.2.10"), ip("224.0.0.18"));
    fix_checksum(&mut msg, src, dst, PSEUDO);
    let view = parse_advert(&msg, src, dst, PSEUDO).unwrap();
    assert_eq!(view.auth_type(), Some(2));
    assert_eq!(view.v2_auth(), None);
    assert!(!V2Auth::None.matches(&view));
    assert_eq!(
        AdvertRepr::from_view(&view, &mut Vec::new()),
        Err(EmitError::UnsupportedAuthType(2))
    );
}

fn ipv4_datagram(ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut d = hex("45c0000000010000ff700000c000020ae0000012");
    d[8] = ttl;
    let total = (20 + payload.len()) as u16;
    d[2..4].copy_from_slice(&total.to_be_bytes());
    d.extend_from_slice(payload);
    d
}

#[test]
fn ipv4_datagram_header_checks() {
    let vrrp = hex("313cb4010064b523c00002a0");
    let d = ipv4_datagram(255, &vrrp);
    let meta = parse_ipv4_datagram(&d).unwrap();
    assert_eq!(meta.src, Ipv4Addr::new(192, 0, 2, 10));
    assert_eq!(meta.dst, VRRP_MCAST_V4);
    assert_eq!(meta.ttl, 255);
    assert_eq!(meta.payload, &vrrp[..]);
    assert_eq!(check_ttl(meta.ttl), Ok(()));

    // Trailing bytes after the total length (e.g. padding) are not payload.
    let mut padded = d.clone();
    padded.extend_from_slice(&[0; 6]);
    assert_eq!(parse_ipv4_datagram(&padded).unwrap().payload, &vrrp[..]);

    // TTL is reported, not judged.
    let low_ttl = ipv4_datagram(64, &vrrp);
    let meta = parse_ipv4_datagram(&low_ttl).unwrap();
    assert_eq!(check_ttl(meta.ttl), Err(DropReason::BadTtl));

    // IP options: IHL 6 shifts the payload.
    let mut with_opts = d[..20].to_vec();
    with_opts[0] = 0x46;
    with_opts.extend_from_slice(&[1, 1, 1, 0]);
    with_opts.extend_from_slice(&vrrp);
    with_opts[2..4].copy_from_slice(&((24 + vrrp.len()) as u16).to_be_bytes());
    assert_eq!(parse_ipv4_datagram(&with_opts).unwrap().payload, &vrrp[..]);

    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut x = d.clone();
        f(&mut x);
        parse_ipv4_datagram(&x).map(|m| m.payload.len())
    };
    assert_eq!(edit(&|x| x[0] = 0x65), Err(DropReason::BadIpHeader));
    assert_eq!(edit(&|x| x[0] = 0x44), Err(DropReason::BadIpHeader));
    assert_eq!(edit(&|x| x[9] = 17), Err(DropReason::BadIpHeader));
    assert_eq!(
        edit(&|x| x[2..4].copy_from_slice(&[0, 19])),
        Err(DropReason::BadIpHeader)
    );
    assert_eq!(
        edit(&|x| x[2..4].copy_from_slice(&[0, 33])),
        Err(DropReason::Truncated)
    );
    // IHL 15 (60 bytes) does not fit in total length 32; with total length 60 it does, but the
    // buffer ends first.
    assert_eq!(edit(&|x| x[0] = 0x4f), Err(DropReason::BadIpHeader));
    assert_eq!(
        edit(&|x| {
            x[0] = 0x4f;
            x[2..4].copy_from_slice(&[0, 60]);
        }),
        Err(DropReason::Truncated)
    );
    for len in 0..d.len() {
        assert!(parse_ipv4_datagram(&d[..len]).is_err(), "prefix {len}");
    }
}

#[test]
fn every_prefix_of_every_vector_is_rejected() {
    for v in vectors() {
        let msg = hex(v.msg);
        for len in 0..msg.len() {
            for policy in [PSEUDO, NO_PSEUDO] {
                let r = parse_advert(&msg[..len], ip(v.src), ip(v.dst), policy);
                let expected = if len < 8 {
                    DropReason::Truncated
                } else {
                    DropReason::BadLength
                };
                assert_eq!(r, Err(expected), "{} prefix {len}", v.name);
            }
        }
    }
}

/// Invariants a successfully parsed (possibly mutated) advert must satisfy.
fn check_view_invariants(view: &AdvertView<'_>, src: IpAddr, dst: IpAddr) {
    assert_eq!(view.addrs().count(), usize::from(view.addr_count()));
    assert!(view.addrs().all(|a| IpFamily::of(a) == view.family()));
    let mut storage = Vec::new();
    let Ok(repr) = AdvertRepr::from_view(view, &mut storage) else {
        return;
    };
    assert_eq!(repr.buffer_len(), view.as_bytes().len());
    let mut buf = vec![0u8; repr.buffer_len()];
    // Zero intervals and the like are accepted on receive but refused on emit.
    if repr.emit(src, dst, PSEUDO, &mut buf).is_ok() {
        let again = parse_advert(&buf, src, dst, PSEUDO).unwrap();
        assert_eq!(
            (again.vrid(), again.priority(), again.interval_cs()),
            (view.vrid(), view.priority(), view.interval_cs())
        );
        assert!(again.addrs().eq(view.addrs()));
    }
}

#[test]
fn seeded_mutation_fuzz_never_panics() {
    let mut rng = Rng::new(0x5eed_0f7e_1e00_0001);
    let families = [
        (ip("192.0.2.10"), ip("224.0.0.18")),
        (ip("fe80::1a:ff:fe00:a"), ip("ff02::12")),
    ];
    let mut accepted = 0usize;
    for v in vectors() {
        let original = hex(v.msg);
        for round in 0..3000 {
            let mut m = original.clone();
            for _ in 0..=rng.index(3) {
                match rng.index(4) {
                    0 if !m.is_empty() => {
                        let i = rng.index(m.len());
                        m[i] = rng.next_u64() as u8;
                    }
                    1 if !m.is_empty() => {
                        let i = rng.index(8.min(m.len()));
                        m[i] ^= 1 << rng.index(8);
                    }
                    2 => m.truncate(rng.index(m.len() + 1)),
                    _ => m.extend((0..rng.index(40)).map(|_| rng.next_u64() as u8)),
                }
            }
            let (src, dst) = families[rng.index(2)];
            let policy = if rng.index(2) == 0 { PSEUDO } else { NO_PSEUDO };
            if round % 2 == 0 {
                // Make the checksum right so the later checks are exercised too.
                fix_checksum(&mut m, src, dst, policy);
            }
            if let Ok(view) = parse_advert(&m, src, dst, policy) {
                accepted += 1;
                check_view_invariants(&view, src, dst);
            }
            let _ = parse_ipv4_datagram(&m);
            let mut datagram = ipv4_datagram(255, &m);
            let i = rng.index(20);
            datagram[i] = rng.next_u64() as u8;
            if let Ok(meta) = parse_ipv4_datagram(&datagram) {
                let _ = parse_advert(meta.payload, meta.src.into(), meta.dst.into(), policy);
            }
        }
    }
    // The loop must have exercised the success path, not only rejections.
    assert!(accepted > 100, "only {accepted} mutated adverts parsed");
}
