//! Pure decoding of rtnetlink datagrams received from the kernel into [`Frame`]s.
//!
//! Only what Relevo needs is read: the fixed link/address headers and a handful of attributes
//! (interface name and MAC; address, flags, lifetime and protocol). Every other attribute and every
//! unknown message type is skipped, so a newer kernel can never make a whole message fail.
//! Nothing here panics on any input: all lengths come from checked `netlink-packet-core`
//! buffers or explicit bounds checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    NetlinkBuffer, NlaBuffer, NlasIterator, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK_TLVS, NLM_F_CAPPED,
};
use netlink_packet_route::address::{AddressHeader, CacheInfo};
use netlink_packet_route::link::{LinkFlags, LinkHeader};
use netlink_packet_route::AddressFamily;

use super::{AddrInfo, LinkInfo};

/// Length of `struct nlmsghdr`.
const NLMSG_HEADER_LEN: usize = 16;
/// Length of `struct ifinfomsg`, the fixed part of a link message.
const LINK_HEADER_LEN: usize = 16;
/// Length of `struct ifaddrmsg`, the fixed part of an address message.
const ADDR_HEADER_LEN: usize = 8;
/// Length of the `error` field that starts an `NLMSG_ERROR` payload.
const ERRNO_LEN: usize = 4;

const RTM_NEWLINK: u16 = libc::RTM_NEWLINK;
const RTM_DELLINK: u16 = libc::RTM_DELLINK;
const RTM_NEWADDR: u16 = libc::RTM_NEWADDR;
const RTM_DELADDR: u16 = libc::RTM_DELADDR;

const IFLA_ADDRESS: u16 = libc::IFLA_ADDRESS;
const IFLA_IFNAME: u16 = libc::IFLA_IFNAME;
const IFA_ADDRESS: u16 = libc::IFA_ADDRESS;
const IFA_LOCAL: u16 = libc::IFA_LOCAL;
const IFA_FLAGS: u16 = libc::IFA_FLAGS;
const IFA_CACHEINFO: u16 = libc::IFA_CACHEINFO;
const IFA_PROTO: u16 = 11;
const IFA_F_SECONDARY: u32 = libc::IFA_F_SECONDARY;
const IFA_F_DADFAILED: u32 = libc::IFA_F_DADFAILED;
const IFA_F_TENTATIVE: u32 = libc::IFA_F_TENTATIVE;
/// `INFINITY_LIFE_TIME`: an `ifa_cacheinfo` lifetime that never expires.
pub(super) const INFINITY_LIFE_TIME: u32 = u32::MAX;
/// `NLMSGERR_ATTR_MSG`: the kernel's extended-ack text in an `NLMSG_ERROR` message.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// One netlink message taken out of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Frame {
    pub seq: u32,
    pub flags: u16,
    pub body: Body,
}

/// What a netlink message said, reduced to what Relevo acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Body {
    /// `RTM_NEWLINK` (new link or changed link).
    Link(LinkInfo),
    /// `RTM_DELLINK`; `name` is empty if the kernel did not include it.
    LinkRemoved { ifindex: u32, name: String },
    /// `RTM_NEWADDR` (new address or changed flags).
    AddrNew(AddrInfo),
    /// `RTM_DELADDR`.
    AddrDel(AddrInfo),
    /// `NLMSG_ERROR`: `errno` is positive, 0 for a plain acknowledgement.
    Ack {
        errno: i32,
        kernel_msg: Option<String>,
    },
    /// `NLMSG_DONE`: the end of a dump.
    Done,
    /// Anything else (other message types, other families such as `AF_BRIDGE` link messages).
    Ignored,
}

/// Iterates over the netlink messages of one received datagram.
///
/// Yields `Err` with a description for a message whose body is malformed and carries on with
/// the next one; a broken outer framing yields one `Err` and ends the iteration.
pub(super) struct Frames<'a> {
    data: &'a [u8],
    offset: usize,
    addr_proto: bool,
}

impl<'a> Frames<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Frames {
            data,
            offset: 0,
            addr_proto: true,
        }
    }

    /// With `false`, `IFA_PROTO` is ignored and every address reports protocol 0, as on a
    /// kernel without `IFA_PROTO` (see `RELEVO_NO_ADDR_PROTO` in the module above).
    pub(super) fn addr_proto(mut self, honour: bool) -> Self {
        self.addr_proto = honour;
        self
    }
}

impl Iterator for Frames<'_> {
    type Item = Result<Frame, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.data.get(self.offset..)?;
        if rest.is_empty() {
            return None;
        }
        let buf = match NetlinkBuffer::new_checked(rest) {
            Ok(buf) => buf,
            Err(e) => {
                let at = self.offset;
                self.offset = self.data.len();
                return Some(Err(format!("bad netlink framing at byte {at}: {e}")));
            }
        };
        // new_checked guarantees NLMSG_HEADER_LEN <= length <= rest.len().
        let len = buf.length() as usize;
        self.offset = self.offset.saturating_add(align4(len));
        let (kind, flags, seq) = (buf.message_type(), buf.flags(), buf.sequence_number());
        let payload = rest.get(NLMSG_HEADER_LEN..len).unwrap_or_default();
        Some(
            decode_body(kind, flags, payload, self.addr_proto)
                .map(|body| Frame { seq, flags, body })
                .map_err(|e| format!("netlink message type {kind} seq {seq}: {e}")),
        )
    }
}

fn align4(len: usize) -> usize {
    len.saturating_add(3) & !3
}

fn decode_body(kind: u16, flags: u16, payload: &[u8], addr_proto: bool) -> Result<Body, String> {
    match kind {
        NLMSG_ERROR => decode_ack(flags, payload),
        NLMSG_DONE => Ok(Body::Done),
        // A link without a name cannot be matched against the configuration: ignore it.
        RTM_NEWLINK => Ok(decode_link(payload)?
            .filter(|info| !info.name.is_empty())
            .map_or(Body::Ignored, Body::Link)),
        RTM_DELLINK => Ok(
            decode_link(payload)?.map_or(Body::Ignored, |info| Body::LinkRemoved {
                ifindex: info.ifindex,
                name: info.name,
            }),
        ),
        RTM_NEWADDR => Ok(decode_addr(payload, addr_proto)?.map_or(Body::Ignored, Body::AddrNew)),
        RTM_DELADDR => Ok(decode_addr(payload, addr_proto)?.map_or(Body::Ignored, Body::AddrDel)),
        _ => Ok(Body::Ignored),
    }
}

/// Decodes an `NLMSG_ERROR` payload: the negative errno, the echoed request header and, with
/// `NLM_F_ACK_TLVS`, extended-ack attributes of which only the text message is kept.
fn decode_ack(flags: u16, payload: &[u8]) -> Result<Body, String> {
    let code_bytes: [u8; ERRNO_LEN] = payload
        .get(..ERRNO_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            format!(
                "NLMSG_ERROR payload of {} bytes is too short",
                payload.len()
            )
        })?;
    let errno = i32::from_ne_bytes(code_bytes).saturating_abs();
    let kernel_msg = if flags & NLM_F_ACK_TLVS != 0 {
        ack_tlvs(flags, payload.get(ERRNO_LEN..).unwrap_or_default()).and_then(ext_ack_message)
    } else {
        None
    };
    Ok(Body::Ack { errno, kernel_msg })
}

/// The extended-ack attributes after the echoed request (only its header when `NLM_F_CAPPED`).
fn ack_tlvs(flags: u16, echoed: &[u8]) -> Option<&[u8]> {
    let echoed_len = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HEADER_LEN
    } else {
        let len_bytes: [u8; 4] = echoed.get(..4)?.try_into().ok()?;
        align4(u32::from_ne_bytes(len_bytes) as usize)
    };
    echoed.get(echoed_len..)
}

fn ext_ack_message(tlvs: &[u8]) -> Option<String> {
    NlasIterator::new(tlvs)
        .map_while(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| c_string(nla.value()))
        .filter(|msg| !msg.is_empty())
}

/// Decodes a link message. `Ok(None)` for families other than `AF_UNSPEC` (bridge port
/// messages share the group and message types but describe something else).
fn decode_link(payload: &[u8]) -> Result<Option<LinkInfo>, String> {
    let header = LinkHeader::parse(payload).map_err(|e| format!("link header: {e}"))?;
    if header.interface_family != AddressFamily::Unspec {
        return Ok(None);
    }
    let mut info = LinkInfo {
        ifindex: header.index,
        name: String::new(),
        up: header.flags.contains(LinkFlags::Up | LinkFlags::Running),
        mac: None,
    };
    for nla in attributes(payload, LINK_HEADER_LEN)? {
        match nla.kind() {
            IFLA_IFNAME => info.name = c_string(nla.value()),
            IFLA_ADDRESS => info.mac = nla.value().try_into().ok(),
            _ => {}
        }
    }
    Ok(Some(info))
}

/// Decodes an address message. `Ok(None)` for families other than IPv4/IPv6 and for
/// messages without an address attribute. The 32-bit `IFA_FLAGS` wins over the header's 8-bit
/// flags; `IFA_PROTO` is read only when `addr_proto`.
fn decode_addr(payload: &[u8], addr_proto: bool) -> Result<Option<AddrInfo>, String> {
    let header = AddressHeader::parse(payload).map_err(|e| format!("address header: {e}"))?;
    let is_v6 = match header.family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return Ok(None),
    };
    let mut local = None;
    let mut address = None;
    let mut flags = u32::from(header.flags.bits());
    let mut proto = 0;
    let mut valid_lifetime = None;
    for nla in attributes(payload, ADDR_HEADER_LEN)? {
        let value = nla.value();
        match nla.kind() {
            IFA_LOCAL => local = ip_from_bytes(value, is_v6),
            IFA_ADDRESS => address = ip_from_bytes(value, is_v6),
            IFA_FLAGS => flags = u32_from_bytes(value).unwrap_or(flags),
            IFA_PROTO if addr_proto => proto = value.first().copied().unwrap_or(0),
            IFA_CACHEINFO => {
                valid_lifetime = CacheInfo::parse(value)
                    .ok()
                    .map(|info| info.ifa_valid)
                    .filter(|&secs| secs != INFINITY_LIFE_TIME);
            }
            _ => {}
        }
    }
    // For a point-to-point IPv4 address IFA_ADDRESS is the peer: IFA_LOCAL is ours.
    Ok(local.or(address).map(|addr| AddrInfo {
        ifindex: header.index,
        addr,
        prefix_len: header.prefix_len,
        proto,
        tentative: flags & IFA_F_TENTATIVE != 0,
        secondary: flags & IFA_F_SECONDARY != 0,
        dad_failed: flags & IFA_F_DADFAILED != 0,
        valid_lifetime,
    }))
}

/// The attributes after a fixed header of `header_len` bytes; a malformed attribute is an error.
fn attributes(payload: &[u8], header_len: usize) -> Result<Vec<NlaBuffer<&[u8]>>, String> {
    let rest = payload.get(header_len..).unwrap_or_default();
    NlasIterator::new(rest)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("attribute: {e}"))
}

fn ip_from_bytes(value: &[u8], is_v6: bool) -> Option<IpAddr> {
    if is_v6 {
        let octets: [u8; 16] = value.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(octets)))
    } else {
        let octets: [u8; 4] = value.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(octets)))
    }
}

fn u32_from_bytes(value: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(value.try_into().ok()?))
}

/// A NUL-terminated (or not) attribute string, lossily decoded.
fn c_string(value: &[u8]) -> String {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::netlink::request::tests::request;
    use crate::daemon::netlink::request::{address_request, AddrOp};
    use crate::daemon::netlink::RELEVO_ADDR_PROTO;
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};
    use netlink_packet_route::address::{
        AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
    };
    use netlink_packet_route::link::{LinkAttribute, LinkMessage};
    use netlink_packet_route::RouteNetlinkMessage;

    fn serialize(msg: RouteNetlinkMessage, seq: u32) -> Vec<u8> {
        let mut header = NetlinkHeader::default();
        header.sequence_number = seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        buf
    }

    fn link_bytes(family: AddressFamily, flags: LinkFlags, del: bool) -> Vec<u8> {
        let mut msg = LinkMessage::default();
        msg.header.interface_family = family;
        msg.header.index = 7;
        msg.header.flags = flags;
        msg.attributes = vec![
            LinkAttribute::IfName("eth7".into()),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0x52, 7]),
            LinkAttribute::Mtu(1500),
        ];
        let msg = if del {
            RouteNetlinkMessage::DelLink(msg)
        } else {
            RouteNetlinkMessage::NewLink(msg)
        };
        serialize(msg, 9)
    }

    fn bodies(data: &[u8]) -> Vec<Result<Body, String>> {
        Frames::new(data).map(|f| f.map(|f| f.body)).collect()
    }

    #[test]
    fn new_link_up_and_running_with_mac() {
        let data = link_bytes(
            AddressFamily::Unspec,
            LinkFlags::Up | LinkFlags::Running,
            false,
        );
        let frames: Vec<_> = Frames::new(&data).collect();
        assert_eq!(frames.len(), 1);
        let frame = frames[0].clone().unwrap();
        assert_eq!(frame.seq, 9);
        assert_eq!(
            frame.body,
            Body::Link(LinkInfo {
                ifindex: 7,
                name: "eth7".into(),
                up: true,
                mac: Some([2, 0, 0, 0, 0x52, 7]),
            })
        );
    }

    #[test]
    fn link_up_without_carrier_is_down() {
        let data = link_bytes(AddressFamily::Unspec, LinkFlags::Up, false);
        match &bodies(&data)[..] {
            [Ok(Body::Link(info))] => assert!(!info.up),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn del_link_and_bridge_family_messages() {
        let data = link_bytes(AddressFamily::Unspec, LinkFlags::empty(), true);
        assert_eq!(
            bodies(&data),
            vec![Ok(Body::LinkRemoved {
                ifindex: 7,
                name: "eth7".into()
            })]
        );
        let data = link_bytes(AddressFamily::Bridge, LinkFlags::Up, true);
        assert_eq!(bodies(&data), vec![Ok(Body::Ignored)]);
    }

    #[test]
    fn own_add_request_decodes_as_new_address() {
        let data = address_request(&request(AddrOp::Add, "2001:db8::100", 64), 3);
        let frame = Frames::new(&data).next().unwrap().unwrap();
        assert_eq!(frame.seq, 3);
        assert_eq!(
            frame.body,
            Body::AddrNew(AddrInfo {
                ifindex: 3,
                addr: "2001:db8::100".parse().unwrap(),
                prefix_len: 64,
                proto: RELEVO_ADDR_PROTO,
                tentative: false,
                secondary: false,
                dad_failed: false,
                valid_lifetime: None,
            })
        );
        let data = address_request(&request(AddrOp::Del, "192.0.2.100", 24), 4);
        match &bodies(&data)[..] {
            [Ok(Body::AddrDel(info))] => {
                let v4: IpAddr = "192.0.2.100".parse().unwrap();
                assert_eq!((info.addr, info.prefix_len, info.ifindex), (v4, 24, 3));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn lease_lifetime_round_trips_through_cacheinfo() {
        let mut req = request(AddrOp::Add, "192.0.2.100", 24);
        req.lifetime_secs = Some(2);
        match &bodies(&address_request(&req, 1))[..] {
            [Ok(Body::AddrNew(info))] => assert_eq!(info.valid_lifetime, Some(2)),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A kernel-style `RTM_NEWADDR` for 192.0.2.9/24 on ifindex 5.
    fn addr_bytes(header_flags: AddressHeaderFlags, attributes: Vec<AddressAttribute>) -> Vec<u8> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = 24;
        msg.header.index = 5;
        msg.header.flags = header_flags;
        msg.attributes = vec![AddressAttribute::Local("192.0.2.9".parse().unwrap())];
        msg.attributes.extend(attributes);
        serialize(RouteNetlinkMessage::NewAddress(msg), 0)
    }

    fn new_addr(data: &[u8]) -> AddrInfo {
        match &bodies(data)[..] {
            [Ok(Body::AddrNew(info))] => info.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn cache_info(valid: u32) -> AddressAttribute {
        let mut info = CacheInfo::default();
        info.ifa_preferred = valid;
        info.ifa_valid = valid;
        info.cstamp = 100;
        info.tstamp = 200;
        AddressAttribute::CacheInfo(info)
    }

    #[test]
    fn secondary_dadfailed_and_lifetimes_from_kernel_messages() {
        // Header flags only (no IFA_FLAGS): an old kernel.
        let info = new_addr(&addr_bytes(
            AddressHeaderFlags::Secondary,
            vec![cache_info(INFINITY_LIFE_TIME)],
        ));
        assert!(info.secondary && !info.dad_failed && !info.tentative);
        assert_eq!(info.valid_lifetime, None);
        // IFA_FLAGS is the full 32-bit set and wins over the header's 8 bits.
        let info = new_addr(&addr_bytes(
            AddressHeaderFlags::Secondary,
            vec![
                AddressAttribute::Flags(AddressFlags::Dadfailed | AddressFlags::Tentative),
                cache_info(37),
            ],
        ));
        assert!(!info.secondary && info.dad_failed && info.tentative);
        assert_eq!(info.valid_lifetime, Some(37));
        // Without IFA_CACHEINFO the address counts as permanent.
        assert_eq!(
            new_addr(&addr_bytes(AddressHeaderFlags::empty(), vec![])).valid_lifetime,
            None
        );
    }

    #[test]
    fn short_cacheinfo_or_flags_are_ignored_not_misread() {
        // IFA_CACHEINFO of 8 bytes and IFA_FLAGS of 2 bytes, hand-built.
        let mut data = addr_bytes(AddressHeaderFlags::Secondary, vec![]);
        data.extend_from_slice(&[12, 0, 6, 0, 9, 0, 0, 0, 9, 0, 0, 0]);
        data.extend_from_slice(&[6, 0, 8, 0, 8, 0, 0, 0]);
        let len = data.len() as u32;
        data[..4].copy_from_slice(&len.to_ne_bytes());
        let info = new_addr(&data);
        assert_eq!(info.valid_lifetime, None);
        assert!(info.secondary && !info.dad_failed);
    }

    #[test]
    fn addr_proto_can_be_ignored() {
        let data = address_request(&request(AddrOp::Add, "192.0.2.1", 24), 1);
        let frame = Frames::new(&data)
            .addr_proto(false)
            .next()
            .unwrap()
            .unwrap();
        match frame.body {
            Body::AddrNew(info) => assert_eq!(info.proto, 0),
            other => panic!("unexpected {other:?}"),
        }
        match &bodies(&data)[..] {
            [Ok(Body::AddrNew(info))] => assert_eq!(info.proto, RELEVO_ADDR_PROTO),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn tentative_flag_from_ifa_flags() {
        let mut data = address_request(&request(AddrOp::Add, "2001:db8::1", 64), 3);
        // Find the IFA_FLAGS attribute (len 8, type 8) and set IFA_F_TENTATIVE in its value.
        let pos = data
            .windows(4)
            .position(|w| w == [8, 0, 8, 0])
            .expect("IFA_FLAGS present");
        data[pos + 4..pos + 8].copy_from_slice(&IFA_F_TENTATIVE.to_ne_bytes());
        match &bodies(&data)[..] {
            [Ok(Body::AddrNew(info))] => assert!(info.tentative),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn error_bytes(code: i32, with_msg: Option<&str>) -> Vec<u8> {
        let mut payload = code.to_ne_bytes().to_vec();
        // Echoed request header (capped): length 40, RTM_DELADDR, seq 77.
        let mut echoed = vec![0u8; NLMSG_HEADER_LEN];
        echoed[..4].copy_from_slice(&40u32.to_ne_bytes());
        echoed[4..6].copy_from_slice(&RTM_DELADDR.to_ne_bytes());
        echoed[8..12].copy_from_slice(&77u32.to_ne_bytes());
        payload.extend_from_slice(&echoed);
        let mut flags = NLM_F_CAPPED;
        if let Some(msg) = with_msg {
            flags |= NLM_F_ACK_TLVS;
            let value = [msg.as_bytes(), &[0]].concat();
            let nla_len = (4 + value.len()) as u16;
            payload.extend_from_slice(&nla_len.to_ne_bytes());
            payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
            payload.extend_from_slice(&value);
            payload.resize(align4(payload.len()), 0);
        }
        let mut data = Vec::new();
        data.extend_from_slice(&((NLMSG_HEADER_LEN + payload.len()) as u32).to_ne_bytes());
        data.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        data.extend_from_slice(&flags.to_ne_bytes());
        data.extend_from_slice(&77u32.to_ne_bytes());
        data.extend_from_slice(&0u32.to_ne_bytes());
        data.extend_from_slice(&payload);
        data
    }

    #[test]
    fn acks_and_errors_with_extended_message() {
        assert_eq!(
            bodies(&error_bytes(0, None)),
            vec![Ok(Body::Ack {
                errno: 0,
                kernel_msg: None
            })]
        );
        assert_eq!(
            bodies(&error_bytes(-libc::EADDRNOTAVAIL, Some("no such address"))),
            vec![Ok(Body::Ack {
                errno: libc::EADDRNOTAVAIL,
                kernel_msg: Some("no such address".into())
            })]
        );
    }

    #[test]
    fn several_messages_in_one_datagram_and_unknown_types() {
        let mut data = link_bytes(AddressFamily::Unspec, LinkFlags::Up, false);
        let mut unknown = error_bytes(0, None);
        unknown[4..6].copy_from_slice(&0x7777u16.to_ne_bytes());
        data.extend_from_slice(&unknown);
        data.extend_from_slice(&error_bytes(-libc::EEXIST, None));
        let got = bodies(&data);
        assert_eq!(got.len(), 3);
        assert!(matches!(got[0], Ok(Body::Link(_))));
        assert_eq!(got[1], Ok(Body::Ignored));
        assert!(matches!(got[2], Ok(Body::Ack { errno, .. }) if errno == libc::EEXIST));
    }

    #[test]
    fn every_truncation_and_corruption_is_handled_without_panic() {
        let mut leased = request(AddrOp::Add, "2001:db8::100", 64);
        leased.lifetime_secs = Some(9);
        let samples = [
            link_bytes(AddressFamily::Unspec, LinkFlags::Up, false),
            address_request(&leased, 1),
            addr_bytes(
                AddressHeaderFlags::Secondary,
                vec![
                    AddressAttribute::Flags(AddressFlags::Dadfailed),
                    cache_info(5),
                ],
            ),
            error_bytes(-libc::ENODEV, Some("x")),
        ];
        for sample in &samples {
            for cut in 0..sample.len() {
                let _ = bodies(&sample[..cut]);
            }
            // Flip each byte in turn: lengths, types and values all get corrupted somewhere.
            for i in 0..sample.len() {
                let mut corrupt = sample.clone();
                corrupt[i] ^= 0xff;
                let _ = bodies(&corrupt);
            }
        }
        // A truncated message is an error, not a silently accepted event.
        let data = &samples[0];
        assert!(bodies(&data[..data.len() - 1]).iter().all(|b| b.is_err()));
    }

    #[test]
    fn pseudo_random_garbage_never_panics() {
        let mut state: u64 = 0x5245_4c45_564f;
        for _ in 0..2000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (state >> 56) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (state.rotate_left(i as u32 % 64) >> 3) as u8)
                .collect();
            let _ = bodies(&bytes);
        }
    }
}
