//! Encoding of the rtnetlink requests Relevo sends: address add/delete, the virtual-MAC
//! (macvlan) link's creation, setup and deletion, and link/address dumps, built with
//! `netlink-packet-route` message types.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressProtocol,
    AddressScope, CacheInfo,
};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoMacVlan, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::parse::INFINITY_LIFE_TIME;

/// Whether an address request adds or deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrOp {
    Add,
    Del,
}

impl AddrOp {
    pub(super) fn verb(self) -> &'static str {
        match self {
            AddrOp::Add => "add",
            AddrOp::Del => "delete",
        }
    }
}

/// One address request: what to do with which address on which interface, and for an add,
/// how it is stamped and how long it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AddrRequest {
    pub op: AddrOp,
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// Add only: seconds until the kernel deletes the address by itself; `None` = permanent.
    pub lifetime_secs: Option<u32>,
    /// Add only: the `IFA_PROTO` stamp; `None` sends no `IFA_PROTO` at all.
    pub proto: Option<u8>,
}

impl AddrRequest {
    pub(super) fn describe(&self) -> String {
        format!(
            "{} {}/{} on ifindex {}",
            self.op.verb(),
            self.addr,
            self.prefix_len,
            self.ifindex
        )
    }

    /// Rejects what the kernel would refuse anyway, before anything is sent.
    pub(super) fn validate(&self) -> io::Result<()> {
        let max_prefix = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix_len > max_prefix || self.ifindex == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid netlink request: {}", self.describe()),
            ));
        }
        Ok(())
    }
}

/// A lease as an `ifa_cacheinfo` lifetime: whole seconds rounded up, at least 1 (0 would be
/// refused) and below [`INFINITY_LIFE_TIME`] (which would mean "forever").
pub(super) fn lifetime_secs(lease: Duration) -> u32 {
    let secs = lease
        .as_secs()
        .saturating_add(u64::from(lease.subsec_nanos() > 0));
    u32::try_from(secs)
        .unwrap_or(u32::MAX)
        .clamp(1, INFINITY_LIFE_TIME - 1)
}

/// One request about a link, named by its interface name (the kernel looks a link up by
/// `IFLA_IFNAME` when no index is given, so no ifindex has to be known yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkRequest {
    /// Create a macvlan in bridge mode on `parent` carrying `mac`, administratively down.
    /// Bridge mode, not private: in private mode the macvlan driver hands a multicast frame
    /// whose source MAC is one of its own (a peer's advert from the same virtual MAC) to that
    /// macvlan only, and the parent (where adverts are read) would never see it.
    CreateMacvlan {
        name: String,
        parent: u32,
        mac: [u8; 6],
    },
    /// No IPv6 link-local address derived from the MAC: every router of the VRID shares the
    /// virtual MAC and would derive the same one.
    NoAddrGen {
        name: String,
    },
    /// Administratively up.
    SetUp {
        name: String,
    },
    Delete {
        name: String,
    },
}

impl LinkRequest {
    pub(super) fn describe(&self) -> String {
        match self {
            LinkRequest::CreateMacvlan { name, parent, mac } => format!(
                "create macvlan {name} on ifindex {parent} with MAC {}",
                crate::wire::ethernet::format_mac(mac)
            ),
            LinkRequest::NoAddrGen { name } => {
                format!("turn off IPv6 address generation on {name}")
            }
            LinkRequest::SetUp { name } => format!("set {name} up"),
            LinkRequest::Delete { name } => format!("delete link {name}"),
        }
    }

    pub(super) fn name(&self) -> &str {
        match self {
            LinkRequest::CreateMacvlan { name, .. }
            | LinkRequest::NoAddrGen { name }
            | LinkRequest::SetUp { name }
            | LinkRequest::Delete { name } => name,
        }
    }
}

/// `RTM_NEWLINK` / `RTM_DELLINK` for `request`, asking for an acknowledgement.
pub(super) fn link_request(request: &LinkRequest, seq: u32) -> Vec<u8> {
    let mut msg = LinkMessage::default();
    msg.attributes
        .push(LinkAttribute::IfName(request.name().to_string()));
    let ack = NLM_F_REQUEST | NLM_F_ACK;
    let (inner, flags) = match request {
        LinkRequest::CreateMacvlan { parent, mac, .. } => {
            msg.attributes.push(LinkAttribute::Link(*parent));
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
            msg.attributes.push(LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::MacVlan),
                LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                    MacVlanMode::Bridge,
                )])),
            ]));
            let create = ack | NLM_F_CREATE | netlink_packet_core::NLM_F_EXCL;
            (RouteNetlinkMessage::NewLink(msg), create)
        }
        LinkRequest::NoAddrGen { .. } => {
            msg.attributes
                .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                    vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
                )]));
            (RouteNetlinkMessage::SetLink(msg), ack)
        }
        LinkRequest::SetUp { .. } => {
            msg.header.flags = LinkFlags::Up;
            msg.header.change_mask = LinkFlags::Up;
            (RouteNetlinkMessage::SetLink(msg), ack)
        }
        LinkRequest::Delete { .. } => (RouteNetlinkMessage::DelLink(msg), ack),
    };
    serialize(inner, flags, seq)
}

/// Which table to dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DumpKind {
    Links,
    Addrs,
}

impl DumpKind {
    pub(super) fn noun(self) -> &'static str {
        match self {
            DumpKind::Links => "links",
            DumpKind::Addrs => "addresses",
        }
    }
}

/// `RTM_NEWADDR` / `RTM_DELADDR` for `request`, asking for an acknowledgement.
///
/// Add uses `NLM_F_CREATE | NLM_F_REPLACE`: adding an address that is already there succeeds
/// and refreshes it, including its lifetime (both IPv4 `inet_rtm_newaddr` and IPv6
/// `inet6_addr_modify` reset `valid_lft`/`prefered_lft` and the timestamp on replace), which is
/// how a lease is renewed. A finite lifetime is sent as `IFA_CACHEINFO` with the preferred and
/// valid lifetimes equal; a permanent address sends no `IFA_CACHEINFO` (the kernel's default is
/// `INFINITY_LIFE_TIME`). IPv6 adds carry `IFA_F_NODAD`: a VIP is usable at once instead of
/// staying tentative for a second of duplicate address detection while it fails over (the
/// previous owner's copy is what DAD would find). Delete sends only the identity.
pub(super) fn address_request(request: &AddrRequest, seq: u32) -> Vec<u8> {
    let addr = request.addr;
    let mut msg = AddressMessage::default();
    msg.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.prefix_len = request.prefix_len;
    msg.header.scope = AddressScope::Universe;
    msg.header.index = request.ifindex;
    msg.attributes.push(AddressAttribute::Local(addr));
    if addr.is_ipv4() {
        msg.attributes.push(AddressAttribute::Address(addr));
    }
    let mut flags = NLM_F_REQUEST | NLM_F_ACK;
    let inner = match request.op {
        AddrOp::Add => {
            flags |= NLM_F_CREATE | NLM_F_REPLACE;
            if addr.is_ipv6() {
                msg.header.flags = AddressHeaderFlags::Nodad;
                msg.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
            if let Some(secs) = request.lifetime_secs {
                let mut info = CacheInfo::default();
                info.ifa_preferred = secs;
                info.ifa_valid = secs;
                msg.attributes.push(AddressAttribute::CacheInfo(info));
            }
            if let Some(proto) = request.proto {
                msg.attributes
                    .push(AddressAttribute::Protocol(AddressProtocol::from(proto)));
            }
            RouteNetlinkMessage::NewAddress(msg)
        }
        AddrOp::Del => RouteNetlinkMessage::DelAddress(msg),
    };
    serialize(inner, flags, seq)
}

/// `RTM_GETLINK` / `RTM_GETADDR` dump of every link / every IPv4 and IPv6 address.
pub(super) fn dump_request(kind: DumpKind, seq: u32) -> Vec<u8> {
    let inner = match kind {
        DumpKind::Links => RouteNetlinkMessage::GetLink(LinkMessage::default()),
        DumpKind::Addrs => RouteNetlinkMessage::GetAddress(AddressMessage::default()),
    };
    serialize(inner, NLM_F_REQUEST | NLM_F_DUMP, seq)
}

fn serialize(inner: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::from(inner));
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::daemon::netlink::RELEVO_ADDR_PROTO;

    /// A request for `addr/prefix_len` on ifindex 3, stamped like the daemon stamps adds.
    pub(in crate::daemon::netlink) fn request(
        op: AddrOp,
        addr: &str,
        prefix_len: u8,
    ) -> AddrRequest {
        AddrRequest {
            op,
            ifindex: 3,
            addr: addr.parse().unwrap(),
            prefix_len,
            lifetime_secs: None,
            proto: (op == AddrOp::Add).then_some(RELEVO_ADDR_PROTO),
        }
    }

    #[test]
    fn add_v4_request_bytes() {
        let data = address_request(&request(AddrOp::Add, "192.0.2.100", 24), 0x01020304);
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &48u32.to_ne_bytes()[..],                   // nlmsg_len
            &libc::RTM_NEWADDR.to_ne_bytes(),           // type
            &(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE).to_ne_bytes(),
            &0x01020304u32.to_ne_bytes(),               // seq
            &0u32.to_ne_bytes(),                        // port
            &[libc::AF_INET as u8, 24, 0, 0],           // family, prefix, flags, scope
            &3u32.to_ne_bytes(),                        // ifindex
            &[8, 0, 2, 0, 192, 0, 2, 100],              // IFA_LOCAL
            &[8, 0, 1, 0, 192, 0, 2, 100],              // IFA_ADDRESS
            &[5, 0, 11, 0, RELEVO_ADDR_PROTO, 0, 0, 0], // IFA_PROTO + padding
        ]
        .concat();
        assert_eq!(data, expected);
    }

    #[test]
    fn add_v4_with_lifetime_and_without_proto_bytes() {
        let mut req = request(AddrOp::Add, "192.0.2.100", 24);
        req.lifetime_secs = Some(2);
        req.proto = None;
        let data = address_request(&req, 7);
        #[rustfmt::skip]
        let expected: Vec<u8> = [
            &60u32.to_ne_bytes()[..],                   // nlmsg_len
            &libc::RTM_NEWADDR.to_ne_bytes(),
            &(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE).to_ne_bytes(),
            &7u32.to_ne_bytes(),
            &0u32.to_ne_bytes(),
            &[libc::AF_INET as u8, 24, 0, 0],
            &3u32.to_ne_bytes(),
            &[8, 0, 2, 0, 192, 0, 2, 100],              // IFA_LOCAL
            &[8, 0, 1, 0, 192, 0, 2, 100],              // IFA_ADDRESS
            &[20, 0, 6, 0],                             // IFA_CACHEINFO
            &2u32.to_ne_bytes(),                        //   ifa_prefered
            &2u32.to_ne_bytes(),                        //   ifa_valid
            &0u32.to_ne_bytes(),                        //   cstamp
            &0u32.to_ne_bytes(),                        //   tstamp
        ]
        .concat();
        assert_eq!(data, expected);
    }

    #[test]
    fn add_v6_request_has_nodad_and_no_peer() {
        let data = address_request(&request(AddrOp::Add, "2001:db8::100", 64), 1);
        assert_eq!(
            &data[16..20],
            &[libc::AF_INET6 as u8, 64, libc::IFA_F_NODAD as u8, 0]
        );
        // IFA_LOCAL (20 bytes) + IFA_FLAGS (8) + IFA_PROTO (8) after the 24-byte headers.
        assert_eq!(data.len(), 24 + 20 + 8 + 8);
        assert_eq!(&data[24..28], &[20, 0, 2, 0]);
        assert_eq!(&data[44..52], &[8, 0, 8, 0, 2, 0, 0, 0]);
        assert_eq!(&data[52..60], &[5, 0, 11, 0, RELEVO_ADDR_PROTO, 0, 0, 0]);
    }

    #[test]
    fn add_v6_with_lifetime_keeps_nodad() {
        let mut req = request(AddrOp::Add, "2001:db8::100", 64);
        req.lifetime_secs = Some(30);
        let data = address_request(&req, 1);
        assert_eq!(data.len(), 24 + 20 + 8 + 20 + 8);
        assert_eq!(&data[44..52], &[8, 0, 8, 0, 2, 0, 0, 0]);
        assert_eq!(&data[52..56], &[20, 0, 6, 0]);
        assert_eq!(&data[56..60], &30u32.to_ne_bytes());
        assert_eq!(&data[60..64], &30u32.to_ne_bytes());
    }

    #[test]
    fn delete_request_has_no_create_flags_proto_or_lifetime() {
        let mut req = request(AddrOp::Del, "192.0.2.100", 24);
        req.lifetime_secs = Some(5);
        req.proto = Some(RELEVO_ADDR_PROTO);
        let data = address_request(&req, 1);
        assert_eq!(&data[4..6], &libc::RTM_DELADDR.to_ne_bytes());
        assert_eq!(&data[6..8], &(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        assert_eq!(data.len(), 24 + 8 + 8);
    }

    #[test]
    fn lease_lifetimes_round_up_to_whole_seconds() {
        assert_eq!(lifetime_secs(Duration::ZERO), 1);
        assert_eq!(lifetime_secs(Duration::from_millis(1)), 1);
        assert_eq!(lifetime_secs(Duration::from_secs(2)), 2);
        assert_eq!(lifetime_secs(Duration::from_millis(2001)), 3);
        assert_eq!(lifetime_secs(Duration::MAX), INFINITY_LIFE_TIME - 1);
        assert_eq!(
            lifetime_secs(Duration::from_secs(u64::from(u32::MAX))),
            INFINITY_LIFE_TIME - 1
        );
    }

    #[test]
    fn invalid_requests_are_rejected_before_sending() {
        let bad = request(AddrOp::Add, "192.0.2.7", 33);
        assert_eq!(
            bad.validate().unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let mut bad = request(AddrOp::Add, "192.0.2.7", 24);
        bad.ifindex = 0;
        assert!(bad.validate().is_err());
        assert!(request(AddrOp::Add, "2001:db8::1", 128).validate().is_ok());
        assert!(request(AddrOp::Del, "2001:db8::1", 129).validate().is_err());
    }

    #[test]
    fn dump_requests() {
        let links = dump_request(DumpKind::Links, 5);
        assert_eq!(&links[4..6], &libc::RTM_GETLINK.to_ne_bytes());
        assert_eq!(&links[6..8], &(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        assert_eq!(links.len(), 16 + 16);
        let addrs = dump_request(DumpKind::Addrs, 6);
        assert_eq!(&addrs[4..6], &libc::RTM_GETADDR.to_ne_bytes());
        assert_eq!(addrs.len(), 16 + 8);
    }

    /// Decodes a request the way the kernel reads it.
    fn decode(bytes: &[u8]) -> (u16, RouteNetlinkMessage) {
        let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes).unwrap();
        match msg.payload {
            NetlinkPayload::InnerMessage(inner) => (msg.header.flags, inner),
            other => panic!("not a route message: {other:?}"),
        }
    }

    #[test]
    fn macvlan_creation_is_bridge_mode_with_the_mac_and_exclusive() {
        let request = LinkRequest::CreateMacvlan {
            name: "vrrp4.51".into(),
            parent: 7,
            mac: [0, 0, 0x5e, 0, 1, 51],
        };
        let (flags, msg) = decode(&link_request(&request, 9));
        assert_eq!(
            flags,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | netlink_packet_core::NLM_F_EXCL
        );
        let RouteNetlinkMessage::NewLink(link) = msg else {
            panic!("not RTM_NEWLINK: {msg:?}");
        };
        let attrs = &link.attributes;
        assert!(attrs.contains(&LinkAttribute::IfName("vrrp4.51".into())));
        assert!(attrs.contains(&LinkAttribute::Link(7)));
        assert!(attrs.contains(&LinkAttribute::Address(vec![0, 0, 0x5e, 0, 1, 51])));
        assert!(attrs.contains(&LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::MacVlan),
            LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                MacVlanMode::Bridge
            )])),
        ])));
        assert!(!link.header.flags.contains(LinkFlags::Up), "created down");
    }

    #[test]
    fn macvlan_setup_and_removal_name_the_link() {
        let name = || "vrrp6.9".to_string();
        let (_, msg) = decode(&link_request(&LinkRequest::NoAddrGen { name: name() }, 1));
        let RouteNetlinkMessage::SetLink(link) = msg else {
            panic!("not RTM_SETLINK: {msg:?}");
        };
        assert_eq!(link.header.index, 0, "found by name");
        assert!(link
            .attributes
            .contains(&LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)]
            )])));
        let (_, msg) = decode(&link_request(&LinkRequest::SetUp { name: name() }, 2));
        let RouteNetlinkMessage::SetLink(link) = msg else {
            panic!("not RTM_SETLINK: {msg:?}");
        };
        assert!(link.header.flags.contains(LinkFlags::Up));
        assert!(link.header.change_mask.contains(LinkFlags::Up));
        let (_, msg) = decode(&link_request(&LinkRequest::Delete { name: name() }, 3));
        assert!(
            matches!(msg, RouteNetlinkMessage::DelLink(l) if l.attributes == [LinkAttribute::IfName(name())])
        );
    }
}
