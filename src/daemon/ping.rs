//! Ping nodes, the tiebreaker of a two-node cluster: an ICMP echo request to every ping node
//! at a fixed interval, over a raw ICMPv4 socket for the IPv4 ping nodes and a raw ICMPv6
//! socket for the IPv6 ones (each opened only when a ping node of its family is set), replies
//! matched by identifier and source, and whether any ping node answered recently. Messages
//! are built and read with `pnet_packet`.
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use pnet_packet::icmp::echo_reply::EchoReplyPacket;
use pnet_packet::icmp::echo_request::MutableEchoRequestPacket;
use pnet_packet::icmp::{checksum, IcmpPacket, IcmpTypes};
use pnet_packet::icmpv6::echo_reply::EchoReplyPacket as EchoReplyV6Packet;
use pnet_packet::icmpv6::echo_request::MutableEchoRequestPacket as MutableEchoRequestV6Packet;
use pnet_packet::icmpv6::Icmpv6Types;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::Packet;
use socket2::{Domain, Protocol, Socket, Type};

/// Echo request: 8-byte ICMP header and 8 bytes of payload.
const ECHO_LEN: usize = 16;
/// The echo request's payload.
const PAYLOAD: &[u8; 8] = b"relevo\0\0";
/// Replies read per loop turn (per socket).
const RECV_BUDGET: usize = 64;
/// `ICMP6_FILTER` (linux/icmpv6.h), a socket option of level `IPPROTO_ICMPV6`; the libc crate
/// does not export it.
const ICMP6_FILTER: libc::c_int = 1;

/// The address family of one of the sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Raw ICMPv4: a datagram starts with the IPv4 header.
    V4,
    /// Raw ICMPv6: a datagram is the ICMPv6 message alone, the source in the socket address.
    V6,
}

/// One raw socket (std's datagram calls work on it) and the ping nodes it reaches.
struct IcmpSocket {
    family: Family,
    socket: UdpSocket,
    targets: Vec<IpAddr>,
}

/// See the module documentation.
pub struct Pinger {
    /// The ICMPv4 socket first when there is one, then the ICMPv6 one.
    sockets: Vec<IcmpSocket>,
    identifier: u16,
    sequence: u16,
    last_reply: Option<Instant>,
    /// A reply older than this no longer counts.
    window: Duration,
}

impl Pinger {
    /// Non-blocking raw sockets for `targets`: ICMPv4 if any of them is IPv4, ICMPv6 if any is
    /// IPv6.
    pub fn open(targets: &[IpAddr], window: Duration) -> io::Result<Self> {
        let mut sockets = Vec::new();
        for family in [Family::V4, Family::V6] {
            let of_family: Vec<IpAddr> = targets
                .iter()
                .filter(|t| t.is_ipv4() == (family == Family::V4))
                .copied()
                .collect();
            if !of_family.is_empty() {
                sockets.push(IcmpSocket::open(family, of_family)?);
            }
        }
        Ok(Pinger {
            sockets,
            identifier: (std::process::id() & 0xffff) as u16,
            sequence: 0,
            last_reply: None,
            window,
        })
    }

    /// The sockets' descriptors, in the order [`Pinger::read`] numbers them.
    pub fn raw_fds(&self) -> Vec<RawFd> {
        self.sockets.iter().map(|s| s.socket.as_raw_fd()).collect()
    }

    /// Sends one echo request to every ping node.
    pub fn send(&mut self) {
        self.sequence = self.sequence.wrapping_add(1);
        for socket in &self.sockets {
            let Some(buf) = echo_request(socket.family, self.identifier, self.sequence) else {
                continue;
            };
            for target in &socket.targets {
                // A failed send (no route while the link is down) just means no reply.
                let _ = socket.socket.send_to(&buf, SocketAddr::new(*target, 0));
            }
        }
    }

    /// Reads the replies queued on socket `index` (of [`Pinger::raw_fds`]; a bounded batch);
    /// returns whether more may remain.
    pub fn read(&mut self, index: usize, now: Instant) -> bool {
        let Some(socket) = self.sockets.get(index) else {
            return false;
        };
        let mut buf = [0u8; 1500];
        for _ in 0..RECV_BUDGET {
            let (len, from) = match socket.socket.recv_from(&mut buf) {
                Ok(received) => received,
                Err(_) => return false,
            };
            let datagram = buf.get(..len).unwrap_or_default();
            if socket.is_our_reply(datagram, from.ip(), self.identifier) {
                self.last_reply = Some(now);
            }
        }
        true
    }

    /// Whether a ping node answered within the window.
    pub fn reachable(&self, now: Instant) -> bool {
        self.last_reply
            .is_some_and(|at| now.saturating_duration_since(at) < self.window)
    }
}

impl IcmpSocket {
    fn open(family: Family, targets: Vec<IpAddr>) -> io::Result<Self> {
        let socket = match family {
            Family::V4 => Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?,
            Family::V6 => {
                // The kernel fills in the ICMPv6 checksum (pseudo-header included) on every
                // raw ICMPv6 socket (RFC 3542 section 3.1), so none is computed here.
                let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
                pass_only_echo_replies(&socket)?;
                socket
            }
        };
        socket.set_nonblocking(true)?;
        Ok(IcmpSocket {
            family,
            socket: socket.into(),
            targets,
        })
    }

    /// An echo reply from one of this socket's ping nodes with our identifier. An IPv4
    /// datagram carries its IP header (the source is read there); an IPv6 one is the ICMPv6
    /// message alone, sent by `from`.
    fn is_our_reply(&self, datagram: &[u8], from: IpAddr, identifier: u16) -> bool {
        match self.family {
            Family::V4 => {
                let Some(ip) = Ipv4Packet::new(datagram) else {
                    return false;
                };
                if !self.targets.contains(&IpAddr::V4(ip.get_source())) {
                    return false;
                }
                let header = usize::from(ip.get_header_length()) * 4;
                let Some(icmp) = datagram.get(header..).and_then(EchoReplyPacket::new) else {
                    return false;
                };
                icmp.get_icmp_type() == IcmpTypes::EchoReply && icmp.get_identifier() == identifier
            }
            Family::V6 => {
                if !self.targets.contains(&from) {
                    return false;
                }
                let Some(icmp) = EchoReplyV6Packet::new(datagram) else {
                    return false;
                };
                icmp.get_icmpv6_type() == Icmpv6Types::EchoReply
                    && icmp.get_identifier() == identifier
            }
        }
    }
}

/// The echo request sent on a socket of `family` (without a checksum for ICMPv6: the kernel
/// computes it).
fn echo_request(family: Family, identifier: u16, sequence: u16) -> Option<[u8; ECHO_LEN]> {
    let mut buf = [0u8; ECHO_LEN];
    match family {
        Family::V4 => {
            let mut echo = MutableEchoRequestPacket::new(&mut buf)?;
            echo.set_icmp_type(IcmpTypes::EchoRequest);
            echo.set_identifier(identifier);
            echo.set_sequence_number(sequence);
            echo.set_payload(PAYLOAD);
            let sum = IcmpPacket::new(echo.packet()).map(|p| checksum(&p))?;
            echo.set_checksum(sum);
        }
        Family::V6 => {
            let mut echo = MutableEchoRequestV6Packet::new(&mut buf)?;
            echo.set_icmpv6_type(Icmpv6Types::EchoRequest);
            echo.set_identifier(identifier);
            echo.set_sequence_number(sequence);
            echo.set_payload(PAYLOAD);
        }
    }
    Some(buf)
}

/// Installs an ICMPv6 type filter on `socket` that passes echo replies only: a raw ICMPv6
/// socket otherwise gets every neighbour discovery and router message of the host.
fn pass_only_echo_replies(socket: &Socket) -> io::Result<()> {
    let filter = echo_reply_filter();
    // SAFETY: `filter` is a live `struct icmp6_filter` (eight 32-bit words) for the duration
    // of the call, and its size is passed along; the descriptor is owned by `socket`.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            filter.as_ptr().cast(),
            std::mem::size_of_val(&filter) as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A Linux `struct icmp6_filter` blocking every ICMPv6 type but echo reply (a set bit blocks
/// its type: the kernel's convention, the reverse of RFC 3542's macros' storage).
fn echo_reply_filter() -> [u32; 8] {
    let mut filter = [u32::MAX; 8];
    let reply = usize::from(Icmpv6Types::EchoReply.0);
    filter[reply / 32] &= !(1u32 << (reply % 32));
    filter
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn the_icmpv6_filter_passes_echo_replies_alone() {
        let filter = echo_reply_filter();
        let passes = |t: u8| filter[usize::from(t) / 32] & (1 << (t % 32)) == 0;
        assert!(passes(129));
        assert_eq!((0..=255u8).filter(|t| passes(*t)).count(), 1);
    }

    #[test]
    fn an_icmpv6_echo_request_leaves_the_checksum_to_the_kernel() {
        let buf = echo_request(Family::V6, 0x1234, 7).unwrap();
        assert_eq!(buf[..8], [128, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert_eq!(&buf[8..], PAYLOAD);
        let v4 = echo_request(Family::V4, 0x1234, 7).unwrap();
        assert_eq!(v4[0], 8);
        assert_ne!(v4[2..4], [0, 0], "ICMPv4 carries its own checksum");
    }

    /// A socket of `family` for `targets`, on a descriptor that is never read (no privilege
    /// needed): only the matching is exercised.
    fn matcher(family: Family, targets: &[&str]) -> IcmpSocket {
        IcmpSocket {
            family,
            socket: UdpSocket::bind("127.0.0.1:0").unwrap(),
            targets: targets.iter().map(|t| t.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn an_icmpv6_reply_counts_from_a_ping_node_with_our_identifier() {
        let socket = matcher(Family::V6, &["2001:db8::1"]);
        let node = IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap());
        let other = IpAddr::V6("2001:db8::2".parse::<Ipv6Addr>().unwrap());
        let mut reply = echo_request(Family::V6, 0x1234, 1).unwrap();
        reply[0] = 129;
        assert!(socket.is_our_reply(&reply, node, 0x1234));
        assert!(
            !socket.is_our_reply(&reply, other, 0x1234),
            "not a ping node"
        );
        assert!(
            !socket.is_our_reply(&reply, node, 0x4321),
            "another identifier"
        );
        assert!(!socket.is_our_reply(&reply[..4], node, 0x1234), "truncated");
        let request = echo_request(Family::V6, 0x1234, 1).unwrap();
        assert!(!socket.is_our_reply(&request, node, 0x1234), "a request");
    }
}
