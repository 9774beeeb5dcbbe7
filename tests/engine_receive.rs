//! The receive-side rules of `engine::receive` (RFC 5798 §7.1 / RFC 3768 §7.1): each rule with
//! an advert built by the wire emitter, accepted once and dropped for exactly one reason.
use std::net::IpAddr;

use relevo::engine::receive::{AdvertFilter, Verdict};
use relevo::wire::vrrp::{AdvertRepr, DropReason, V2Auth};
use relevo::wire::{V3Ipv4Checksum, VrrpVersion};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

const GROUP_V4: &str = "224.0.0.18";
const GROUP_V6: &str = "ff02::12";

/// An advert from `src` to `dst` listing `addrs`, as bytes starting at the VRRP header.
fn advert(
    version: VrrpVersion,
    priority: u8,
    interval_cs: u16,
    auth: V2Auth,
    addrs: &[IpAddr],
    src: IpAddr,
    dst: IpAddr,
) -> Vec<u8> {
    let repr = AdvertRepr {
        version,
        vrid: 51,
        priority,
        interval_cs,
        auth,
        addrs,
    };
    let mut buf = vec![0; repr.buffer_len()];
    let len = repr
        .emit(src, dst, V3Ipv4Checksum::PseudoHeader, &mut buf)
        .unwrap();
    buf.truncate(len);
    buf
}

fn v3_filter(vips: &[IpAddr], peers: &[IpAddr]) -> AdvertFilter {
    AdvertFilter::new(
        VrrpVersion::V3,
        100,
        peers.to_vec(),
        V2Auth::None,
        V3Ipv4Checksum::PseudoHeader,
        vips.to_vec(),
    )
}

fn reason(result: Result<relevo::engine::vrrp::AdvertIn, Verdict>) -> DropReason {
    result.expect_err("the advert should be dropped").reason
}

#[test]
fn a_matching_v3_advert_is_accepted() {
    let vips = [ip("192.0.2.100"), ip("192.0.2.101")];
    let mut filter = v3_filter(&vips, &[]);
    // The list order does not matter.
    let listed = [vips[1], vips[0]];
    let (src, dst) = (ip("192.0.2.11"), ip(GROUP_V4));
    let bytes = advert(VrrpVersion::V3, 150, 100, V2Auth::None, &listed, src, dst);
    let accepted = filter.check(src, dst, 255, &bytes).unwrap();
    assert_eq!(
        (accepted.src, accepted.priority, accepted.interval_cs),
        (src, 150, 100)
    );
}

#[test]
fn ttl_other_than_255_is_dropped() {
    let vips = [ip("192.0.2.100")];
    let mut filter = v3_filter(&vips, &[]);
    let (src, dst) = (ip("192.0.2.11"), ip(GROUP_V4));
    let bytes = advert(VrrpVersion::V3, 150, 100, V2Auth::None, &vips, src, dst);
    assert_eq!(
        reason(filter.check(src, dst, 254, &bytes)),
        DropReason::BadTtl
    );
}

#[test]
fn address_list_mismatch_is_dropped_and_reported_once_per_sender() {
    let vips = [ip("192.0.2.100"), ip("192.0.2.101")];
    let mut filter = v3_filter(&vips, &[]);
    let dst = ip(GROUP_V4);
    for (listed, what) in [
        (vec![ip("192.0.2.100")], "one missing"),
        (vec![ip("192.0.2.100"), ip("192.0.2.102")], "one different"),
        (
            vec![ip("192.0.2.100"), ip("192.0.2.101"), ip("192.0.2.102")],
            "one extra",
        ),
        (vec![ip("192.0.2.100"), ip("192.0.2.100")], "a duplicate"),
    ] {
        let src = ip("192.0.2.11");
        let bytes = advert(VrrpVersion::V3, 150, 100, V2Auth::None, &listed, src, dst);
        let verdict = filter.check(src, dst, 255, &bytes).unwrap_err();
        assert_eq!(verdict.reason, DropReason::AddressListMismatch, "{what}");
    }
    // First from 192.0.2.12 is reported, the second is not; 192.0.2.11 was reported above.
    let listed = [ip("192.0.2.100")];
    let mut firsts = Vec::new();
    for src in ["192.0.2.12", "192.0.2.12", "192.0.2.11"] {
        let src = ip(src);
        let bytes = advert(VrrpVersion::V3, 150, 100, V2Auth::None, &listed, src, dst);
        firsts.push(
            filter
                .check(src, dst, 255, &bytes)
                .unwrap_err()
                .first_from_sender,
        );
    }
    assert_eq!(firsts, [true, false, false]);
}

#[test]
fn the_address_owner_may_list_other_addresses() {
    let vips = [ip("192.0.2.100")];
    let mut filter = v3_filter(&vips, &[]);
    let (src, dst) = (ip("192.0.2.11"), ip(GROUP_V4));
    let listed = [ip("192.0.2.199")];
    let bytes = advert(VrrpVersion::V3, 255, 100, V2Auth::None, &listed, src, dst);
    assert_eq!(filter.check(src, dst, 255, &bytes).unwrap().priority, 255);
}

#[test]
fn unknown_unicast_peer_is_dropped() {
    let vips = [ip("192.0.2.100")];
    let mut filter = v3_filter(&vips, &[ip("192.0.2.12")]);
    let (src, dst) = (ip("192.0.2.13"), ip("192.0.2.11"));
    let bytes = advert(VrrpVersion::V3, 150, 100, V2Auth::None, &vips, src, dst);
    assert_eq!(
        reason(filter.check(src, dst, 255, &bytes)),
        DropReason::UnknownPeer
    );
    let src = ip("192.0.2.12");
    let bytes = advert(VrrpVersion::V3, 150, 100, V2Auth::None, &vips, src, dst);
    assert!(filter.check(src, dst, 255, &bytes).is_ok());
    // A known peer behind a router (TTL decremented) is accepted.
    assert!(filter.check(src, dst, 254, &bytes).is_ok());
}

#[test]
fn multicast_ipv6_adverts_must_come_from_a_link_local_source() {
    let vips = [ip("fe80::51"), ip("2001:db8::100")];
    let mut filter = v3_filter(&vips, &[]);
    let dst = ip(GROUP_V6);
    let global = ip("2001:db8::11");
    let bytes = advert(VrrpVersion::V3, 150, 100, V2Auth::None, &vips, global, dst);
    assert_eq!(
        reason(filter.check(global, dst, 255, &bytes)),
        DropReason::SourceNotLinkLocal
    );
    let link_local = ip("fe80::11");
    let bytes = advert(
        VrrpVersion::V3,
        150,
        100,
        V2Auth::None,
        &vips,
        link_local,
        dst,
    );
    assert!(filter.check(link_local, dst, 255, &bytes).is_ok());
    // Unicast peers are checked by address instead; a global peer address is fine.
    let mut unicast = v3_filter(&vips, &[global]);
    let to = ip("2001:db8::12");
    let bytes = advert(VrrpVersion::V3, 150, 100, V2Auth::None, &vips, global, to);
    assert!(unicast.check(global, to, 255, &bytes).is_ok());
}

#[test]
fn v2_password_interval_and_version_must_match() {
    let vips = [ip("192.0.2.100")];
    let auth = V2Auth::from_password("secret");
    let mut filter = AdvertFilter::new(
        VrrpVersion::V2,
        100,
        Vec::new(),
        auth,
        V3Ipv4Checksum::PseudoHeader,
        vips.to_vec(),
    );
    let (src, dst) = (ip("192.0.2.11"), ip(GROUP_V4));
    let good = advert(VrrpVersion::V2, 150, 100, auth, &vips, src, dst);
    assert!(filter.check(src, dst, 255, &good).is_ok());
    let wrong_pass = advert(
        VrrpVersion::V2,
        150,
        100,
        V2Auth::from_password("guess"),
        &vips,
        src,
        dst,
    );
    assert_eq!(
        reason(filter.check(src, dst, 255, &wrong_pass)),
        DropReason::AuthMismatch
    );
    let wrong_interval = advert(VrrpVersion::V2, 150, 200, auth, &vips, src, dst);
    assert_eq!(
        reason(filter.check(src, dst, 255, &wrong_interval)),
        DropReason::IntervalMismatch
    );
    let v3 = advert(VrrpVersion::V3, 150, 100, V2Auth::None, &vips, src, dst);
    assert_eq!(
        reason(filter.check(src, dst, 255, &v3)),
        DropReason::VersionMismatch
    );
}

#[test]
fn every_truncation_is_a_drop_never_a_panic() {
    let vips = [ip("192.0.2.100")];
    let mut filter = v3_filter(&vips, &[]);
    let (src, dst) = (ip("192.0.2.11"), ip(GROUP_V4));
    let bytes = advert(VrrpVersion::V3, 150, 100, V2Auth::None, &vips, src, dst);
    for len in 0..bytes.len() {
        assert!(
            filter.check(src, dst, 255, &bytes[..len]).is_err(),
            "len {len}"
        );
    }
}
