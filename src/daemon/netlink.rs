//! The daemon's rtnetlink layer: link and address state of this network namespace, and adding
//! and removing Relevo's virtual IPs.
//!
//! [`Netlink`] owns three `NETLINK_ROUTE` sockets, all opened in the network namespace of the
//! thread that calls [`Netlink::open`]:
//! - `events`: subscribed to `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR` and `RTNLGRP_IPV6_IFADDR`,
//!   non-blocking, registered in the mio loop; yields [`NetEvent`]s.
//! - `requests`: address add/delete requests, non-blocking; their acknowledgements are read by
//!   [`Netlink::read_events`] and only failures are reported ([`NetEvent::RequestFailed`]).
//! - `dump`: blocking with a receive timeout, used by [`Netlink::dump_links`] and
//!   [`Netlink::dump_addrs`] (at startup, and again after a [`NetEvent::Overrun`]). Keeping
//!   dumps off the `requests` socket means a re-dump inside the loop never has to sort
//!   pending acknowledgements out of dump replies.
//!
//! The events socket subscribes before any dump is made, so a change racing with the startup
//! dump shows up as an event afterwards; consumers must treat events as idempotent updates.
//!
//! # `IFA_PROTO` and `RELEVO_NO_ADDR_PROTO`
//!
//! Every address Relevo adds is stamped with `IFA_PROTO` = [`RELEVO_ADDR_PROTO`] (kernel >=
//! 6.1; older kernels drop the attribute silently). With `RELEVO_NO_ADDR_PROTO=1` in the
//! environment (read once by [`Netlink::open`]) Relevo behaves as on such a kernel:
//! [`Netlink::add_address`] sends no `IFA_PROTO` and every received address reports `proto`
//! 0. It exists to test the daemon's behaviour on older kernels.
//!
//! Message encoding is in the `request` submodule, decoding (which never panics and ignores
//! what it does not know) in `parse`.

mod parse;
mod request;

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use netlink_packet_core::NLM_F_DUMP_INTR;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use self::parse::{Body, Frames};
use self::request::{address_request, dump_request, lifetime_secs, AddrRequest, DumpKind};

pub use self::request::AddrOp;

/// `IFA_PROTO` value Relevo stamps on every address it adds (honoured by kernel >= 6.1, silently
/// dropped by older ones), so a later run can recognise addresses a crashed run left behind.
pub const RELEVO_ADDR_PROTO: u8 = 0x52;

/// Environment variable that, set to `1`, turns `IFA_PROTO` off (see the module documentation).
pub const NO_ADDR_PROTO_ENV: &str = "RELEVO_NO_ADDR_PROTO";

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub name: String,
    /// `IFF_UP` and `IFF_RUNNING` (administratively up and has carrier).
    pub up: bool,
    /// The hardware address when it is 6 bytes long (Ethernet-like links).
    pub mac: Option<[u8; 6]>,
}

/// An IPv4 or IPv6 address configured on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrInfo {
    pub ifindex: u32,
    /// The local address (`IFA_LOCAL`, else `IFA_ADDRESS`).
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// `IFA_PROTO`, or 0 when absent; [`RELEVO_ADDR_PROTO`] marks addresses Relevo added.
    pub proto: u8,
    /// IPv6 duplicate address detection still running (`IFA_F_TENTATIVE`): not usable as a
    /// source yet.
    pub tentative: bool,
    /// `IFA_F_SECONDARY`: an IPv4 address in the subnet of an earlier (primary) one.
    pub secondary: bool,
    /// `IFA_F_DADFAILED`: IPv6 duplicate address detection found the address in use elsewhere.
    pub dad_failed: bool,
    /// Seconds the address has left before the kernel deletes it (`IFA_CACHEINFO`'s
    /// `ifa_valid`); `None` for a permanent address.
    pub valid_lifetime: Option<u32>,
}

/// Something that happened to links, addresses or Relevo's own requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// A link appeared or changed (flags, name, address...): the full current state.
    Link(LinkInfo),
    /// A link disappeared; `name` is empty if the kernel did not say.
    LinkRemoved {
        ifindex: u32,
        name: String,
    },
    /// An address appeared or changed (e.g. stopped being tentative, lifetime refreshed): the
    /// full current state.
    AddrAdded(AddrInfo),
    AddrRemoved(AddrInfo),
    /// The kernel refused the [`Netlink::add_address`] / [`Netlink::del_address`] request that
    /// returned `seq`; `op`, `ifindex`, `addr` and `prefix_len` repeat what it asked for.
    /// `errno` is positive; `what` names the request and the reason, ready for a log line.
    RequestFailed {
        seq: u32,
        op: AddrOp,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
        errno: i32,
        what: String,
    },
    /// Notifications or acknowledgements were lost (receive buffer overrun): the view built
    /// from events is stale and must be rebuilt with [`Netlink::dump_links`] and
    /// [`Netlink::dump_addrs`]; failures of requests in flight may have gone unreported.
    Overrun,
}

/// How long one dump may take before [`Netlink::dump_links`] / [`Netlink::dump_addrs`] give up.
const DUMP_TIMEOUT: Duration = Duration::from_secs(3);
/// Dumps interrupted by concurrent changes (`NLM_F_DUMP_INTR`) are retried this many times.
const DUMP_ATTEMPTS: usize = 3;
/// Receive buffer for one datagram; the kernel sends dump datagrams of at most 32 KiB.
const RECV_BUF_LEN: usize = 64 * 1024;
/// Socket receive buffer asked for the events socket, so bursts do not overrun it.
const EVENTS_RCVBUF: usize = 4 * 1024 * 1024;
/// Socket receive buffer asked for the requests socket (acknowledgements are small).
const REQUESTS_RCVBUF: usize = 1024 * 1024;
/// Requests whose acknowledgement is awaited; beyond this the oldest are forgotten.
const MAX_PENDING: usize = 4096;

const RTNLGRP_LINK: u32 = libc::RTNLGRP_LINK;
const RTNLGRP_IPV4_IFADDR: u32 = libc::RTNLGRP_IPV4_IFADDR;
const RTNLGRP_IPV6_IFADDR: u32 = libc::RTNLGRP_IPV6_IFADDR;

/// The rtnetlink sockets of the daemon. See the module documentation.
pub struct Netlink {
    events: Socket,
    requests: Socket,
    dump: Socket,
    next_seq: u32,
    pending: PendingRequests,
    /// False under `RELEVO_NO_ADDR_PROTO=1`.
    addr_proto: bool,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens and binds the three sockets in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let events = open_socket("events")?;
        for group in [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR] {
            events
                .add_membership(group)
                .map_err(|e| context(e, &format!("joining rtnetlink group {group}")))?;
        }
        grow_rcvbuf(&events, EVENTS_RCVBUF);
        events
            .set_non_blocking(true)
            .map_err(|e| context(e, "making the netlink events socket non-blocking"))?;

        let requests = open_socket("requests")?;
        ask_for_extended_acks(&requests);
        grow_rcvbuf(&requests, REQUESTS_RCVBUF);
        requests
            .set_non_blocking(true)
            .map_err(|e| context(e, "making the netlink requests socket non-blocking"))?;

        let dump = open_socket("dump")?;
        ask_for_extended_acks(&dump);
        let timeout_secs = DUMP_TIMEOUT
            .as_secs()
            .try_into()
            .unwrap_or(libc::time_t::MAX);
        setsockopt(
            &dump,
            sockopt::ReceiveTimeout,
            &TimeVal::new(timeout_secs, 0),
        )
        .map_err(|e| context(e.into(), "setting the netlink dump socket receive timeout"))?;

        let addr_proto = std::env::var_os(NO_ADDR_PROTO_ENV).is_none_or(|v| v != "1");
        if !addr_proto {
            tracing::info!(
                "{NO_ADDR_PROTO_ENV}=1: addresses are neither stamped nor recognised by IFA_PROTO"
            );
        }
        Ok(Netlink {
            events,
            requests,
            dump,
            next_seq: 1,
            pending: PendingRequests::default(),
            addr_proto,
            buf: Vec::with_capacity(RECV_BUF_LEN),
        })
    }

    /// Every link of the namespace. Blocks for at most a few seconds.
    pub fn dump_links(&mut self) -> io::Result<Vec<LinkInfo>> {
        self.dump(DumpKind::Links, |body| match body {
            Body::Link(info) => Some(info),
            _ => None,
        })
    }

    /// Every IPv4 and IPv6 address of the namespace. Blocks for at most a few seconds.
    pub fn dump_addrs(&mut self) -> io::Result<Vec<AddrInfo>> {
        self.dump(DumpKind::Addrs, |body| match body {
            Body::AddrNew(info) => Some(info),
            _ => None,
        })
    }

    /// Adds `addr/prefix_len` on `ifindex`, or refreshes it when it is already there (its
    /// lifetime included), stamped with [`RELEVO_ADDR_PROTO`]; IPv6 addresses skip duplicate
    /// address detection. With `Some(lease)` the kernel deletes the address by itself once
    /// `lease` (rounded up to whole seconds) has passed without a new `add_address`; `None`
    /// makes it permanent. Does not block; returns the request's sequence number. Failure
    /// arrives later as [`NetEvent::RequestFailed`] with that `seq`; success as
    /// [`NetEvent::AddrAdded`].
    pub fn add_address(
        &mut self,
        ifindex: u32,
        addr: IpAddr,
        prefix_len: u8,
        lifetime: Option<Duration>,
    ) -> io::Result<u32> {
        self.address_request(AddrRequest {
            op: AddrOp::Add,
            ifindex,
            addr,
            prefix_len,
            lifetime_secs: lifetime.map(lifetime_secs),
            proto: self.addr_proto.then_some(RELEVO_ADDR_PROTO),
        })
    }

    /// Deletes `addr/prefix_len` from `ifindex`. Like [`Netlink::add_address`]; deleting an
    /// address that is not there fails with `EADDRNOTAVAIL`.
    pub fn del_address(&mut self, ifindex: u32, addr: IpAddr, prefix_len: u8) -> io::Result<u32> {
        self.address_request(AddrRequest {
            op: AddrOp::Del,
            ifindex,
            addr,
            prefix_len,
            lifetime_secs: None,
            proto: None,
        })
    }

    /// Registers the events and requests sockets for readability (edge-triggered: call
    /// [`Netlink::read_events`] on either token).
    pub fn register(
        &mut self,
        registry: &Registry,
        events_token: Token,
        requests_token: Token,
    ) -> io::Result<()> {
        let events_fd = self.events.as_raw_fd();
        registry
            .register(&mut SourceFd(&events_fd), events_token, Interest::READABLE)
            .map_err(|e| context(e, "registering the netlink events socket"))?;
        let requests_fd = self.requests.as_raw_fd();
        registry
            .register(
                &mut SourceFd(&requests_fd),
                requests_token,
                Interest::READABLE,
            )
            .map_err(|e| context(e, "registering the netlink requests socket"))
    }

    /// Drains both non-blocking sockets, appending what happened to `out`. An `Err` is a socket
    /// failure, not a bad message (those are logged and skipped).
    pub fn read_events(&mut self, out: &mut Vec<NetEvent>) -> io::Result<()> {
        self.drain(SocketRole::Events, out)?;
        self.drain(SocketRole::Requests, out)
    }

    fn drain(&mut self, role: SocketRole, out: &mut Vec<NetEvent>) -> io::Result<()> {
        let socket = match role {
            SocketRole::Events => &self.events,
            SocketRole::Requests => &self.requests,
        };
        loop {
            match recv(socket, &mut self.buf)
                .map_err(|e| context(e, &format!("reading the netlink {} socket", role.name())))?
            {
                Received::Nothing => return Ok(()),
                Received::Overrun => {
                    tracing::warn!("netlink {} socket overrun: messages lost", role.name());
                    out.push(NetEvent::Overrun);
                }
                Received::Truncated { len } => {
                    tracing::warn!("netlink {} datagram of {len} bytes truncated", role.name());
                    out.push(NetEvent::Overrun);
                }
                Received::Datagram => dispatch(&self.buf, self.addr_proto, &mut self.pending, out),
            }
        }
    }

    fn address_request(&mut self, request: AddrRequest) -> io::Result<u32> {
        request.validate()?;
        let seq = self.next_seq();
        self.requests
            .send(&address_request(&request, seq), 0)
            .map_err(|e| {
                context(
                    e,
                    &format!("sending netlink request to {}", request.describe()),
                )
            })?;
        self.pending.insert(seq, request);
        Ok(seq)
    }

    fn dump<T>(
        &mut self,
        kind: DumpKind,
        mut pick: impl FnMut(Body) -> Option<T>,
    ) -> io::Result<Vec<T>> {
        let mut attempt = 1;
        loop {
            let (items, consistent) = self.dump_once(kind, &mut pick)?;
            if consistent || attempt >= DUMP_ATTEMPTS {
                if !consistent {
                    tracing::warn!(
                        "netlink dump of {} still inconsistent after {attempt} attempts; \
                         events will correct it",
                        kind.noun()
                    );
                }
                return Ok(items);
            }
            tracing::debug!(
                "netlink dump of {} interrupted by a change, retrying",
                kind.noun()
            );
            attempt += 1;
        }
    }

    /// One dump; the flag is false when the kernel marked it inconsistent or replies were lost.
    fn dump_once<T>(
        &mut self,
        kind: DumpKind,
        pick: &mut impl FnMut(Body) -> Option<T>,
    ) -> io::Result<(Vec<T>, bool)> {
        let what = format!("netlink dump of {}", kind.noun());
        let seq = self.next_seq();
        self.dump
            .send(&dump_request(kind, seq), 0)
            .map_err(|e| context(e, &format!("sending {what} request")))?;
        let deadline = Instant::now() + DUMP_TIMEOUT;
        let mut items = Vec::new();
        let mut consistent = true;
        loop {
            if Instant::now() >= deadline {
                return Err(timed_out(&what));
            }
            match recv(&self.dump, &mut self.buf).map_err(|e| context(e, &what))? {
                Received::Nothing => return Err(timed_out(&what)),
                Received::Overrun => return Ok((items, false)),
                Received::Truncated { len } => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{what}: datagram of {len} bytes truncated"),
                    ))
                }
                Received::Datagram => {}
            }
            for frame in Frames::new(&self.buf).addr_proto(self.addr_proto) {
                let frame = match frame {
                    Ok(frame) if frame.seq == seq => frame,
                    Ok(_) => continue, // left over from an earlier, abandoned dump
                    Err(e) => {
                        tracing::debug!("{what}: skipping malformed message: {e}");
                        continue;
                    }
                };
                if frame.flags & NLM_F_DUMP_INTR != 0 {
                    consistent = false;
                }
                match frame.body {
                    Body::Done => return Ok((items, consistent)),
                    Body::Ack { errno, kernel_msg } if errno != 0 => {
                        let msg = kernel_msg.map(|m| format!(" ({m})")).unwrap_or_default();
                        let err = io::Error::from_raw_os_error(errno);
                        return Err(context(err, &format!("{what} refused{msg}")));
                    }
                    body => items.extend(pick(body)),
                }
            }
        }
    }

    fn next_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        seq
    }
}

#[derive(Debug, Clone, Copy)]
enum SocketRole {
    Events,
    Requests,
}

impl SocketRole {
    fn name(self) -> &'static str {
        match self {
            SocketRole::Events => "events",
            SocketRole::Requests => "requests",
        }
    }
}

/// Turns the messages of one datagram into events; acknowledgements settle pending requests.
fn dispatch(data: &[u8], addr_proto: bool, pending: &mut PendingRequests, out: &mut Vec<NetEvent>) {
    for frame in Frames::new(data).addr_proto(addr_proto) {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                tracing::debug!("skipping malformed netlink message: {e}");
                continue;
            }
        };
        let event = match frame.body {
            Body::Link(info) => Some(NetEvent::Link(info)),
            Body::LinkRemoved { ifindex, name } => Some(NetEvent::LinkRemoved { ifindex, name }),
            Body::AddrNew(info) => Some(NetEvent::AddrAdded(info)),
            Body::AddrDel(info) => Some(NetEvent::AddrRemoved(info)),
            Body::Ack { errno, kernel_msg } => pending.complete(frame.seq, errno, kernel_msg),
            Body::Done | Body::Ignored => None,
        };
        out.extend(event);
    }
}

impl AddrRequest {
    /// Log text for a refusal, with its own words for the errors worth telling apart.
    fn failure_text(&self, errno: i32, kernel_msg: Option<&str>) -> String {
        let reason = match (self.op, errno) {
            (AddrOp::Add, libc::EEXIST) => {
                "an address that conflicts with it already exists (EEXIST)".to_string()
            }
            (AddrOp::Del, libc::EADDRNOTAVAIL) => {
                "the address is not configured there (EADDRNOTAVAIL)".to_string()
            }
            (_, libc::ENODEV) => "no such interface (ENODEV)".to_string(),
            _ => io::Error::from_raw_os_error(errno).to_string(),
        };
        let kernel = kernel_msg
            .map(|m| format!("; kernel says: {m}"))
            .unwrap_or_default();
        format!("{} failed: {reason}{kernel}", self.describe())
    }
}

/// Sequence number -> request, for requests whose acknowledgement has not been read yet.
#[derive(Debug, Default)]
struct PendingRequests {
    by_seq: BTreeMap<u32, AddrRequest>,
}

impl PendingRequests {
    fn insert(&mut self, seq: u32, request: AddrRequest) {
        if self.by_seq.len() >= MAX_PENDING {
            // Acknowledgements lost to an overrun would otherwise pile up forever.
            self.by_seq.pop_first();
        }
        self.by_seq.insert(seq, request);
    }

    /// Settles `seq`; a refusal of a tracked request becomes [`NetEvent::RequestFailed`]. A
    /// refusal of a request no longer tracked (forgotten after an overrun) can only be logged.
    fn complete(&mut self, seq: u32, errno: i32, kernel_msg: Option<String>) -> Option<NetEvent> {
        let request = self.by_seq.remove(&seq);
        if errno == 0 {
            return None;
        }
        let Some(request) = request else {
            tracing::warn!(
                "netlink request seq {seq} (no longer tracked) failed: {}",
                io::Error::from_raw_os_error(errno)
            );
            return None;
        };
        let what = request.failure_text(errno, kernel_msg.as_deref());
        Some(NetEvent::RequestFailed {
            seq,
            op: request.op,
            ifindex: request.ifindex,
            addr: request.addr,
            prefix_len: request.prefix_len,
            errno,
            what,
        })
    }
}

/// What one receive call produced.
enum Received {
    /// A datagram from the kernel is in the buffer.
    Datagram,
    /// The datagram was longer than the buffer; its tail is lost.
    Truncated { len: usize },
    /// The socket's receive queue overflowed and the kernel dropped messages (`ENOBUFS`).
    Overrun,
    /// Nothing to read (non-blocking) or the receive timeout expired (blocking).
    Nothing,
}

/// Receives one datagram from the kernel into `buf`, dropping any sent by other processes.
fn recv(socket: &Socket, buf: &mut Vec<u8>) -> io::Result<Received> {
    loop {
        buf.clear();
        match socket.recv_from(buf, libc::MSG_TRUNC) {
            // Only the kernel (port 0) speaks for the routing tables.
            Ok((_, from)) if from.port_number() != 0 => continue,
            Ok((len, _)) if len > buf.len() => return Ok(Received::Truncated { len }),
            Ok(_) => return Ok(Received::Datagram),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Received::Nothing),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Received::Overrun),
            Err(e) => return Err(e),
        }
    }
}

fn open_socket(role: &str) -> io::Result<Socket> {
    let what = format!("opening the netlink {role} socket");
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| context(e, &what))?;
    socket.bind_auto().map_err(|e| context(e, &what))?;
    // Connected to the kernel: unicasts from other processes are refused by the kernel.
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| context(e, &what))?;
    Ok(socket)
}

/// Best effort: beyond `rmem_max` only with `CAP_NET_ADMIN` (`SO_RCVBUFFORCE`).
fn grow_rcvbuf(socket: &Socket, bytes: usize) {
    if setsockopt(socket, sockopt::RcvBufForce, &bytes).is_err() {
        if let Err(e) = setsockopt(socket, sockopt::RcvBuf, &bytes) {
            tracing::debug!("could not enlarge a netlink receive buffer: {e}");
        }
    }
}

/// Best effort (kernel >= 4.12): the kernel's own explanation of a refusal, and acks that do
/// not echo the whole request.
fn ask_for_extended_acks(socket: &Socket) {
    if let Err(e) = socket
        .set_ext_ack(true)
        .and_then(|()| socket.set_cap_ack(true))
    {
        tracing::debug!("netlink extended acks unavailable: {e}");
    }
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what}: no answer from the kernel within {DUMP_TIMEOUT:?}"),
    )
}

#[cfg(test)]
mod tests {
    use super::request::tests::request;
    use super::*;

    #[test]
    fn failures_name_the_request_and_reason() {
        let mut pending = PendingRequests::default();
        pending.insert(10, request(AddrOp::Del, "192.0.2.7", 24));
        pending.insert(11, request(AddrOp::Add, "2001:db8::7", 64));
        assert_eq!(
            pending.complete(10, libc::EADDRNOTAVAIL, Some("no such address".into())),
            Some(NetEvent::RequestFailed {
                seq: 10,
                op: AddrOp::Del,
                ifindex: 3,
                addr: "192.0.2.7".parse().unwrap(),
                prefix_len: 24,
                errno: libc::EADDRNOTAVAIL,
                what: "delete 192.0.2.7/24 on ifindex 3 failed: the address is not configured \
                       there (EADDRNOTAVAIL); kernel says: no such address"
                    .into(),
            })
        );
        assert_eq!(pending.complete(11, 0, None), None);
        assert!(pending.by_seq.is_empty());
        // A failure nobody can attribute is logged, not reported.
        assert_eq!(pending.complete(99, libc::EPERM, None), None);
    }

    #[test]
    fn add_failures_carry_the_address_to_retry() {
        let mut pending = PendingRequests::default();
        pending.insert(5, request(AddrOp::Add, "2001:db8::7", 64));
        let Some(NetEvent::RequestFailed {
            op,
            addr,
            prefix_len,
            what,
            ..
        }) = pending.complete(5, libc::EEXIST, None)
        else {
            panic!("expected a failure");
        };
        assert_eq!((op, prefix_len), (AddrOp::Add, 64));
        assert_eq!(addr, "2001:db8::7".parse::<IpAddr>().unwrap());
        assert!(what.contains("(EEXIST)"), "{what}");
    }

    #[test]
    fn pending_map_is_bounded() {
        let mut pending = PendingRequests::default();
        for seq in 0..(MAX_PENDING as u32 + 10) {
            pending.insert(seq, request(AddrOp::Add, "192.0.2.7", 24));
        }
        assert_eq!(pending.by_seq.len(), MAX_PENDING);
        assert!(!pending.by_seq.contains_key(&0));
    }
}
