//! Ping nodes, the tiebreaker of a two-node cluster: an ICMP echo request to every ping node
//! at a fixed interval over one raw ICMPv4 socket, replies matched by identifier and source,
//! and whether any ping node answered recently. Frames are built and read with `pnet_packet`.
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use pnet_packet::icmp::echo_reply::EchoReplyPacket;
use pnet_packet::icmp::echo_request::MutableEchoRequestPacket;
use pnet_packet::icmp::{checksum, IcmpPacket, IcmpTypes};
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::Packet;
use socket2::{Domain, Protocol, Socket, Type};

/// Echo request: 8-byte ICMP header and 8 bytes of payload.
const ECHO_LEN: usize = 16;
/// Replies read per loop turn.
const RECV_BUDGET: usize = 64;

/// See the module documentation.
pub struct Pinger {
    /// The raw ICMPv4 socket (std's datagram calls work on it).
    socket: UdpSocket,
    targets: Vec<Ipv4Addr>,
    identifier: u16,
    sequence: u16,
    last_reply: Option<Instant>,
    /// A reply older than this no longer counts.
    window: Duration,
}

impl Pinger {
    /// A non-blocking raw ICMPv4 socket for `targets` (IPv4 ones; others are ignored).
    pub fn open(targets: &[IpAddr], window: Duration) -> io::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
        socket.set_nonblocking(true)?;
        let targets = targets
            .iter()
            .filter_map(|t| match t {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            })
            .collect();
        Ok(Pinger {
            socket: socket.into(),
            targets,
            identifier: (std::process::id() & 0xffff) as u16,
            sequence: 0,
            last_reply: None,
            window,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Sends one echo request to every ping node.
    pub fn send(&mut self) {
        self.sequence = self.sequence.wrapping_add(1);
        let mut buf = [0u8; ECHO_LEN];
        let Some(mut echo) = MutableEchoRequestPacket::new(&mut buf) else {
            return;
        };
        echo.set_icmp_type(IcmpTypes::EchoRequest);
        echo.set_identifier(self.identifier);
        echo.set_sequence_number(self.sequence);
        echo.set_payload(b"relevo\0\0");
        let sum = IcmpPacket::new(echo.packet()).map(|p| checksum(&p));
        if let Some(sum) = sum {
            echo.set_checksum(sum);
        }
        for target in &self.targets {
            let to = SocketAddr::V4(SocketAddrV4::new(*target, 0));
            // A failed send (no route while the link is down) just means no reply.
            let _ = self.socket.send_to(&buf, to);
        }
    }

    /// Reads the replies queued (a bounded batch); returns whether more may remain.
    pub fn read(&mut self, now: Instant) -> bool {
        let mut buf = [0u8; 1500];
        for _ in 0..RECV_BUDGET {
            let len = match self.socket.recv(&mut buf) {
                Ok(len) => len,
                Err(_) => return false,
            };
            if self.is_our_reply(&buf[..len]) {
                self.last_reply = Some(now);
            }
        }
        true
    }

    /// An echo reply (the raw socket gives the IPv4 header too) from a ping node with our
    /// identifier.
    fn is_our_reply(&self, datagram: &[u8]) -> bool {
        let Some(ip) = Ipv4Packet::new(datagram) else {
            return false;
        };
        if !self.targets.contains(&ip.get_source()) {
            return false;
        }
        let header = usize::from(ip.get_header_length()) * 4;
        let Some(icmp) = datagram.get(header..).and_then(EchoReplyPacket::new) else {
            return false;
        };
        icmp.get_icmp_type() == IcmpTypes::EchoReply && icmp.get_identifier() == self.identifier
    }

    /// Whether a ping node answered within the window.
    pub fn reachable(&self, now: Instant) -> bool {
        self.last_reply
            .is_some_and(|at| now.saturating_duration_since(at) < self.window)
    }
}
