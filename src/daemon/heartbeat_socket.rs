//! One UDP socket per heartbeat link, bound to this node's address on that link (with
//! `IP_FREEBIND`, so a link whose address is not up yet does not stop the daemon), sending
//! heartbeats by unicast to every peer and receiving theirs without blocking.
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};

/// DSCP CS6 (network control), like the adverts.
const TOS_CS6: u32 = 0xc0;
const RECV_BUFFER_BYTES: usize = 1 << 20;

/// A bound, non-blocking heartbeat socket.
pub struct HeartbeatSocket {
    socket: UdpSocket,
}

impl HeartbeatSocket {
    /// Binds `address:port`.
    pub fn bind(address: IpAddr, port: u16) -> io::Result<Self> {
        let domain = match address {
            IpAddr::V4(_) => Domain::IPV4,
            IpAddr::V6(_) => Domain::IPV6,
        };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_nonblocking(true)?;
        socket.set_reuse_address(true)?;
        let _ = socket.set_recv_buffer_size(RECV_BUFFER_BYTES);
        match address {
            IpAddr::V4(_) => {
                socket.set_freebind_v4(true)?;
                socket.set_tos_v4(TOS_CS6)?;
            }
            IpAddr::V6(_) => {
                socket.set_freebind_v6(true)?;
                socket.set_tclass_v6(TOS_CS6)?;
            }
        }
        socket.bind(&SocketAddr::new(address, port).into())?;
        Ok(HeartbeatSocket {
            socket: socket.into(),
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Sends one frame; a full send queue is reported as `WouldBlock`.
    pub fn send(&self, frame: &[u8], to: SocketAddr) -> io::Result<()> {
        self.socket.send_to(frame, to).map(drop)
    }

    /// Receives one datagram; `Ok(None)` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        match self.socket.recv_from(buf) {
            Ok(got) => Ok(Some(got)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}
