//! Encoding of the rtnetlink requests Relevo sends: address add/delete and link/address dumps,
//! built with `netlink-packet-route` message types.

use std::net::IpAddr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressProtocol,
    AddressScope,
};
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::RELEVO_ADDR_PROTO;

/// Which address request to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AddrOp {
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

/// `RTM_NEWADDR` / `RTM_DELADDR` for `addr/prefix_len` on `ifindex`.
///
/// Add uses `NLM_F_CREATE | NLM_F_REPLACE` so re-adding an address that is already there
/// succeeds, stamps `IFA_PROTO = RELEVO_ADDR_PROTO` and, for IPv6, `IFA_F_NODAD` so the address
/// is usable at once. Both ask for an acknowledgement.
pub(super) fn address_request(
    op: AddrOp,
    seq: u32,
    ifindex: u32,
    addr: IpAddr,
    prefix_len: u8,
) -> Vec<u8> {
    let mut msg = AddressMessage::default();
    msg.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.prefix_len = prefix_len;
    msg.header.scope = AddressScope::Universe;
    msg.header.index = ifindex;
    msg.attributes.push(AddressAttribute::Local(addr));
    if addr.is_ipv4() {
        msg.attributes.push(AddressAttribute::Address(addr));
    }
    let mut flags = NLM_F_REQUEST | NLM_F_ACK;
    let inner = match op {
        AddrOp::Add => {
            flags |= NLM_F_CREATE | NLM_F_REPLACE;
            if addr.is_ipv6() {
                msg.header.flags = AddressHeaderFlags::Nodad;
                msg.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
            msg.attributes
                .push(AddressAttribute::Protocol(AddressProtocol::from(
                    RELEVO_ADDR_PROTO,
                )));
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
mod tests {
    use super::*;

    #[test]
    fn add_v4_request_bytes() {
        let data = address_request(
            AddrOp::Add,
            0x01020304,
            3,
            "192.0.2.100".parse().unwrap(),
            24,
        );
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
    fn add_v6_request_has_nodad_and_no_peer() {
        let data = address_request(AddrOp::Add, 1, 3, "2001:db8::100".parse().unwrap(), 64);
        assert_eq!(
            &data[16..20],
            &[libc::AF_INET6 as u8, 64, libc::IFA_F_NODAD as u8, 0]
        );
        // IFA_LOCAL (20 bytes) + IFA_FLAGS (8) + IFA_PROTO (8) after the 24-byte headers.
        assert_eq!(data.len(), 24 + 20 + 8 + 8);
        assert_eq!(&data[24..28], &[20, 0, 2, 0]);
        assert_eq!(&data[44..52], &[8, 0, 8, 0, 2, 0, 0, 0]);
    }

    #[test]
    fn delete_request_has_no_create_flags_or_proto() {
        let data = address_request(AddrOp::Del, 1, 3, "192.0.2.100".parse().unwrap(), 24);
        assert_eq!(&data[4..6], &libc::RTM_DELADDR.to_ne_bytes());
        assert_eq!(&data[6..8], &(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        assert_eq!(data.len(), 24 + 8 + 8);
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
}
