//! Raw IP protocol-112 sockets, one per (interface, address family): multicast membership on
//! the interface, TTL/hop limit 255, DSCP CS6, and receive metadata (source, destination,
//! TTL/hop limit) that the wire layer validates.
use std::io;
use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrIn, SockaddrIn6, SockaddrLike, SockaddrStorage,
};
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::Family;
use crate::wire::vrrp::{IPPROTO_VRRP, VRRP_MCAST_V4, VRRP_MCAST_V6};

/// DSCP CS6 (network control), as keepalived and FRR send adverts.
const TOS_CS6: u32 = 0xc0;
const RECV_BUFFER_BYTES: usize = 1 << 20;

/// One datagram as received, before any VRRP validation.
#[derive(Debug, Clone, Copy)]
pub struct Datagram {
    /// Bytes written into the caller's buffer. IPv4: the whole IP datagram (header included,
    /// as raw IPv4 sockets deliver it). IPv6: the VRRP message only.
    pub len: usize,
    /// IPv6 only (IPv4 carries these in the header): source, destination and hop limit.
    pub v6_meta: Option<(Ipv6Addr, Ipv6Addr, u8)>,
    /// How long ago the kernel received it (SO_TIMESTAMPNS), at most [`MAX_AGE`]: timers
    /// armed by an advert count from its arrival, not from when the loop got to it.
    pub age: Duration,
}

/// Ages above this (a stall, or a wall-clock step between the kernel's stamp and now) are
/// clamped: later is the safe side for a Master_Down timer.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// A raw VRRP socket bound to one interface.
pub struct VrrpSocket {
    socket: Socket,
    family: Family,
    ifindex: u32,
}

impl VrrpSocket {
    /// Opens the socket for `family` on interface `ifname`/`ifindex`, joining the VRRP
    /// multicast group there when `multicast` is set.
    pub fn open(family: Family, ifname: &str, ifindex: u32, multicast: bool) -> io::Result<Self> {
        let proto = Some(Protocol::from(i32::from(IPPROTO_VRRP)));
        let socket = match family {
            Family::V4 => Socket::new(Domain::IPV4, Type::RAW, proto)?,
            Family::V6 => Socket::new(Domain::IPV6, Type::RAW, proto)?,
        };
        socket.set_nonblocking(true)?;
        socket.bind_device(Some(ifname.as_bytes()))?;
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)?;
        // Best effort: a larger buffer absorbs bursts when many instances share an interface.
        let _ = socket.set_recv_buffer_size(RECV_BUFFER_BYTES);
        match family {
            Family::V4 => {
                socket.set_ttl_v4(255)?;
                socket.set_multicast_ttl_v4(255)?;
                socket.set_multicast_loop_v4(false)?;
                socket.set_tos_v4(TOS_CS6)?;
                if multicast {
                    socket.join_multicast_v4_n(
                        &VRRP_MCAST_V4,
                        &socket2::InterfaceIndexOrAddress::Index(ifindex),
                    )?;
                }
            }
            Family::V6 => {
                socket.set_unicast_hops_v6(255)?;
                socket.set_multicast_hops_v6(255)?;
                socket.set_multicast_loop_v6(false)?;
                socket.set_multicast_if_v6(ifindex)?;
                socket.set_tclass_v6(TOS_CS6)?;
                setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true).map_err(io::Error::from)?;
                setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true).map_err(io::Error::from)?;
                if multicast {
                    socket.join_multicast_v6(&VRRP_MCAST_V6, ifindex)?;
                }
            }
        }
        Ok(VrrpSocket {
            socket,
            family,
            ifindex,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends one VRRP message from `src` to `dst` out of this socket's interface.
    pub fn send(&self, src: IpAddr, dst: IpAddr, msg: &[u8]) -> io::Result<()> {
        let iov = [IoSlice::new(msg)];
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: self.ifindex as i32,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(src).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
                self.send_msg(&iov, &[ControlMessage::Ipv4PacketInfo(&info)], &to)?;
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: src.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                let scope = if needs_scope(&dst) { self.ifindex } else { 0 };
                let to = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, scope));
                self.send_msg(&iov, &[ControlMessage::Ipv6PacketInfo(&info)], &to)?;
            }
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "advert source and destination are of different address families",
                ))
            }
        }
        Ok(())
    }

    fn send_msg<S: SockaddrLike>(
        &self,
        iov: &[IoSlice<'_>],
        cmsgs: &[ControlMessage<'_>],
        to: &S,
    ) -> io::Result<()> {
        sendmsg(self.raw_fd(), iov, cmsgs, MsgFlags::MSG_DONTWAIT, Some(to))?;
        Ok(())
    }

    /// Receives one datagram into `buf`; `Ok(None)` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Datagram>> {
        let mut cmsg_buf = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int, libc::timespec);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match recvmsg::<SockaddrStorage>(
            self.raw_fd(),
            &mut iov,
            Some(&mut cmsg_buf),
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let len = msg.bytes;
        let src = msg
            .address
            .as_ref()
            .and_then(|a| a.as_sockaddr_in6())
            .map(|a| a.ip());
        let mut dst = None;
        let mut hops = None;
        let mut age = Duration::ZERO;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv6PacketInfo(info) => {
                        dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr))
                    }
                    ControlMessageOwned::Ipv6HopLimit(h) => hops = u8::try_from(h).ok(),
                    ControlMessageOwned::ScmTimestampns(ts) => age = age_of(ts),
                    _ => {}
                }
            }
        }
        let v6_meta = match (self.family, src, dst, hops) {
            (Family::V6, Some(s), Some(d), Some(h)) => Some((s, d, h)),
            // Without the metadata an IPv6 packet cannot be validated: report it with none so
            // the caller counts it as a bad header instead of silently trusting it.
            _ => None,
        };
        Ok(Some(Datagram { len, v6_meta, age }))
    }
}

/// How long ago the kernel stamped a datagram (wall clock), clamped to `0..=MAX_AGE`.
fn age_of(stamp: nix::sys::time::TimeSpec) -> Duration {
    let stamped = Duration::new(
        u64::try_from(stamp.tv_sec()).unwrap_or(0),
        u32::try_from(stamp.tv_nsec()).unwrap_or(0),
    );
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|now| now.checked_sub(stamped))
        .unwrap_or(Duration::ZERO)
        .min(MAX_AGE)
}

fn needs_scope(dst: &Ipv6Addr) -> bool {
    dst.is_multicast() || (dst.segments()[0] & 0xffc0) == 0xfe80
}
