//! Codec micro-benchmarks: parse_advert (v3 IPv4 1 VIP, v3 IPv6, v2 with auth), advert emit,
//! gratuitous ARP and unsolicited NA emit. Short warm-up and measurement so a run stays quick.
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use relevo::wire::arp::{emit_garp, GARP_FRAME_LEN};
use relevo::wire::nd::{emit_unsolicited_na, NA_FRAME_LEN};
use relevo::wire::vrrp::{parse_advert, AdvertRepr, V2Auth, MAX_MESSAGE_LEN};
use relevo::wire::{V3Ipv4Checksum, VrrpVersion};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// (name, captured VRRP message, src, dst)
const ADVERTS: [(&str, &str, &str, &str); 3] = [
    (
        "v3_ipv4_1vip",
        "313cb4010064b523c00002a0",
        "192.0.2.10",
        "224.0.0.18",
    ),
    (
        "v3_ipv6_2vips",
        "3134c8020032dc09fe80000000000000000000000000000120010db8000000000000000000000100",
        "fe80::1a:ff:fe00:a",
        "ff02::12",
    ),
    (
        "v2_ipv4_auth_2vips",
        "213678020102939cc0000278c00002796961706173730000",
        "192.0.2.10",
        "224.0.0.18",
    ),
];

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_advert");
    for (name, msg, src, dst) in ADVERTS {
        let (msg, src, dst) = (hex(msg), ip(src), ip(dst));
        group.bench_function(name, |b| {
            b.iter(|| {
                let view = parse_advert(black_box(&msg), src, dst, V3Ipv4Checksum::PseudoHeader);
                black_box(view.map(|v| v.priority()))
            })
        });
    }
    group.finish();
}

fn bench_emit(c: &mut Criterion) {
    let mut group = c.benchmark_group("emit");
    let v4_vip = [ip("192.0.2.160")];
    let v6_vips = [ip("fe80::1"), ip("2001:db8::100")];
    let cases = [
        (
            "advert_v3_ipv4_1vip",
            VrrpVersion::V3,
            &v4_vip[..],
            "192.0.2.10",
            "224.0.0.18",
        ),
        (
            "advert_v3_ipv6_2vips",
            VrrpVersion::V3,
            &v6_vips[..],
            "fe80::1a:ff:fe00:a",
            "ff02::12",
        ),
        (
            "advert_v2_ipv4_1vip",
            VrrpVersion::V2,
            &v4_vip[..],
            "192.0.2.10",
            "224.0.0.18",
        ),
    ];
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    for (name, version, addrs, src, dst) in cases {
        let repr = AdvertRepr {
            version,
            vrid: 60,
            priority: 180,
            interval_cs: 100,
            auth: V2Auth::from_password("iapass"),
            addrs,
        };
        let (src, dst) = (ip(src), ip(dst));
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(black_box(&repr).emit(src, dst, V3Ipv4Checksum::PseudoHeader, &mut buf))
            })
        });
    }
    let mut frame = [0u8; NA_FRAME_LEN];
    let mac = [0x02, 0x1a, 0, 0, 0, 0x0a];
    group.bench_function("garp", |b| {
        b.iter(|| {
            black_box(emit_garp(
                black_box(mac),
                black_box(Ipv4Addr::new(192, 0, 2, 100)),
                &mut frame[..GARP_FRAME_LEN],
            ))
        })
    });
    group.bench_function("unsolicited_na", |b| {
        b.iter(|| {
            black_box(emit_unsolicited_na(
                black_box(mac),
                black_box(
                    "2001:db8::100"
                        .parse()
                        .unwrap_or(std::net::Ipv6Addr::LOCALHOST),
                ),
                true,
                &mut frame,
            ))
        })
    });
    group.finish();
}

fn quick() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = quick();
    targets = bench_parse, bench_emit
}
criterion_main!(benches);
