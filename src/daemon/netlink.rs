//! The daemon's rtnetlink layer: link and address state of this network namespace, and adding
//! and removing Relevo's virtual IPs.
//!
//! [`Netlink`] owns three non-blocking `NETLINK_ROUTE` sockets, opened in the network namespace
//! of the thread that calls [`Netlink::open`] and registered in the mio loop by
//! [`Netlink::register`]:
//! - `events`: subscribed to `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR` and `RTNLGRP_IPV6_IFADDR`;
//!   yields [`NetEvent`]s.
//! - `requests`: address add/delete requests; their acknowledgements are read by
//!   [`Netlink::read_events`] and only failures are reported ([`NetEvent::RequestFailed`]).
//! - `dump`: link and address dumps (snapshots). Keeping dumps off the `requests` socket means
//!   a resync inside the loop never has to sort pending acknowledgements out of dump replies.
//!
//! [`Netlink::read_events`] reads at most [`READ_BUDGET`] datagrams from each socket per call,
//! so a storm of notifications cannot starve the rest of the loop, and returns `true` when it
//! stopped with datagrams possibly still queued. The registration is edge-triggered: a socket
//! left partly drained gets no new readiness event, so the caller must then call again on its
//! next loop turn without waiting for one.
//!
//! # Snapshots
//!
//! [`Netlink::snapshot`] dumps every link and address and blocks until done (it gives up after
//! ten seconds): it is for startup, before the loop runs. The events socket subscribes before that
//! dump, so a change racing with it shows up as an event afterwards; consumers must treat
//! events as idempotent updates.
//!
//! After a [`NetEvent::Overrun`] the view built from events is stale. [`Netlink::start_resync`]
//! takes a new snapshot without ever blocking: the replies are read by `read_events` like any
//! other datagram, [`Netlink::handle_timeout`] (at [`Netlink::next_deadline`]) abandons a dump
//! that does not finish, and the result arrives as one [`NetEvent::Resynced`] holding every
//! link and address. Its place among the events is what makes it correct:
//! - a resync first replaces the events socket, dropping the notifications still queued: they
//!   predate the snapshot, and after an overrun some of them are older than notifications the
//!   kernel dropped, so delivering them after the snapshot would undo it;
//! - events that arrive while the links and then the addresses are dumped are held back and
//!   delivered right after `Resynced`, in order, so a change made during the dump is never
//!   overwritten by the snapshot.
//!
//! The dump state machine (in the `resync` submodule, shared by both kinds of snapshot)
//! repeats an interrupted dump (`NLM_F_DUMP_INTR`) and starts over on a timeout, a refusal,
//! lost replies or another `start_resync`; after a few failed attempts it releases the held
//! events and tries again a second later.
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
mod resync;

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{setsockopt, sockopt};

use self::parse::{Body, Frames};
use self::request::{
    address_request, dump_request, lifetime_secs, link_request, AddrRequest, DumpKind,
};
use self::resync::{Resync, Step};

pub use self::request::{AddrOp, LinkRequest};

/// `IFA_PROTO` value Relevo stamps on every address it adds (honoured by kernel >= 6.1, silently
/// dropped by older ones), so a later run can recognise addresses a crashed run left behind.
pub const RELEVO_ADDR_PROTO: u8 = 0x52;

/// Environment variable that, set to `1`, turns `IFA_PROTO` off (see the module documentation).
pub const NO_ADDR_PROTO_ENV: &str = "RELEVO_NO_ADDR_PROTO";

/// Datagrams [`Netlink::read_events`] reads from each socket per call.
pub const READ_BUDGET: usize = 64;

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
    /// The kernel refused a [`Netlink::link_request`]; `name` is the link's, `what` says what
    /// was asked and why it failed.
    LinkRequestFailed {
        name: String,
        what: String,
    },
    /// Notifications or acknowledgements were lost (receive buffer overrun): the view built
    /// from events is stale and must be rebuilt with [`Netlink::start_resync`]; failures of
    /// requests in flight may have gone unreported.
    Overrun,
    /// The snapshot a [`Netlink::start_resync`] asked for: every link and every address at
    /// one point in time, replacing everything known before (a link missing here is gone).
    /// Events that follow it are newer.
    Resynced {
        links: Vec<LinkInfo>,
        addrs: Vec<AddrInfo>,
    },
}

/// Longest a blocking [`Netlink::snapshot`] keeps trying (failed attempts, back-off included).
const SNAPSHOT_LIMIT: Duration = Duration::from_secs(10);
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
    /// Where the sockets are registered, so a resync can register the replacements.
    registration: Option<Registration>,
    next_seq: u32,
    pending: PendingRequests,
    resync: Resync,
    /// False under `RELEVO_NO_ADDR_PROTO=1`.
    addr_proto: bool,
    buf: Vec<u8>,
}

struct Registration {
    registry: Registry,
    events: Token,
    dump: Token,
}

impl Netlink {
    /// Opens and binds the three sockets in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let events = open_events_socket()?;
        let requests = open_socket("requests")?;
        ask_for_extended_acks(&requests);
        grow_rcvbuf(&requests, REQUESTS_RCVBUF);
        requests
            .set_non_blocking(true)
            .map_err(|e| context(e, "making the netlink requests socket non-blocking"))?;
        let dump = open_dump_socket()?;
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
            registration: None,
            next_seq: 1,
            pending: PendingRequests::default(),
            resync: Resync::default(),
            addr_proto,
            buf: Vec::with_capacity(RECV_BUF_LEN),
        })
    }

    /// Every link and every IPv4/IPv6 address of the namespace, from one consistent pair of
    /// dumps. Blocks (for at most about ten seconds, then fails); meant for startup. Leaves the
    /// events socket alone, so what changes meanwhile is reported by later events. Fails at
    /// once while a [`Netlink::start_resync`] is running.
    pub fn snapshot(&mut self) -> io::Result<(Vec<LinkInfo>, Vec<AddrInfo>)> {
        if self.resync.is_running() {
            return Err(io::Error::other("a netlink resync is already running"));
        }
        let result = self.blocking_snapshot();
        if result.is_err() {
            self.resync.cancel();
        }
        result
    }

    fn blocking_snapshot(&mut self) -> io::Result<(Vec<LinkInfo>, Vec<AddrInfo>)> {
        let start = Instant::now();
        let give_up = start + SNAPSHOT_LIMIT;
        let mut out = Vec::new();
        let step = self.resync.start(start, false);
        self.perform(step, &mut out, start);
        loop {
            // No events are read here: `out` only ever holds the snapshot.
            if let Some(NetEvent::Resynced { links, addrs }) = out.pop() {
                return Ok((links, addrs));
            }
            let now = Instant::now();
            if now >= give_up {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no consistent netlink dump of links and addresses within {SNAPSHOT_LIMIT:?}"),
                ));
            }
            self.handle_timeout(now, &mut out);
            let wake = self.next_deadline().unwrap_or(give_up).min(give_up);
            // Rounded up to whole milliseconds so a sub-millisecond wait does not spin.
            let wait = wake.saturating_duration_since(now) + Duration::from_millis(1);
            let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.dump.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(context(e.into(), "waiting for the netlink dump")),
            }
            // The dump socket never reports an overrun as an event: no flag to keep.
            self.read_socket(Role::Dump, &mut out, Instant::now(), &mut false)?;
        }
    }

    /// Starts a snapshot in the background (see the module documentation); it arrives as
    /// [`NetEvent::Resynced`] from a later [`Netlink::read_events`]. Never blocks. A resync
    /// already running starts over (one that keeps being restarted backs off for a second).
    /// Events it would release early are appended to `out`. Afterwards the caller must
    /// reschedule its timer from [`Netlink::next_deadline`].
    pub fn start_resync(&mut self, now: Instant, out: &mut Vec<NetEvent>) {
        let step = self.resync.start(now, true);
        self.perform(step, out, now);
    }

    /// When [`Netlink::handle_timeout`] must be called: a running dump's timeout or the end
    /// of a back-off. `None` when nothing is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.resync.deadline()
    }

    /// Restarts a dump that outlived its timeout and ends a back-off; events it releases are
    /// appended to `out`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<NetEvent>) {
        let step = self.resync.handle_timeout(now);
        self.perform(step, out, now);
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

    /// Sends one link request (see [`LinkRequest`]); the kernel handles the requests of one
    /// socket in order, so a create followed by its setup needs no waiting in between.
    /// Failure arrives later as [`NetEvent::LinkRequestFailed`]; success as link events.
    pub fn link_request(&mut self, request: LinkRequest) -> io::Result<u32> {
        self.send_request(Pending::Link(request))
    }

    /// Registers the three sockets for readability (edge-triggered: call
    /// [`Netlink::read_events`] on any of the tokens). Keeps a handle on `registry` so the
    /// sockets a resync replaces are registered under the same tokens.
    pub fn register(
        &mut self,
        registry: &Registry,
        events_token: Token,
        requests_token: Token,
        dump_token: Token,
    ) -> io::Result<()> {
        let registry = registry
            .try_clone()
            .map_err(|e| context(e, "keeping a handle on the event loop"))?;
        register_socket(&registry, &self.events, events_token, "events")?;
        register_socket(&registry, &self.requests, requests_token, "requests")?;
        register_socket(&registry, &self.dump, dump_token, "dump")?;
        self.registration = Some(Registration {
            registry,
            events: events_token,
            dump: dump_token,
        });
        Ok(())
    }

    /// Reads at most [`READ_BUDGET`] datagrams from each socket, appending what happened to
    /// `out`; returns `true` when a socket may still hold more, and then must be called again
    /// on the next loop turn (no new readiness event will come for them). Never blocks. An
    /// `Err` is a socket failure, not a bad message (those are logged and skipped); the other
    /// sockets are still read.
    pub fn read_events(&mut self, out: &mut Vec<NetEvent>, now: Instant) -> io::Result<bool> {
        let mut more = false;
        let mut first_error = None;
        let mut overrun_reported = false;
        for role in [Role::Events, Role::Requests, Role::Dump] {
            match self.read_socket(role, out, now, &mut overrun_reported) {
                Ok(partly) => more |= partly,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(more), Err)
    }

    /// Reads one socket (see [`Netlink::read_events`]). `overrun_reported` says whether this
    /// `read_events` call has already appended a [`NetEvent::Overrun`].
    fn read_socket(
        &mut self,
        role: Role,
        out: &mut Vec<NetEvent>,
        now: Instant,
        overrun_reported: &mut bool,
    ) -> io::Result<bool> {
        for _ in 0..READ_BUDGET {
            let socket = match role {
                Role::Events => &self.events,
                Role::Requests => &self.requests,
                Role::Dump => &self.dump,
            };
            let received = recv(socket, &mut self.buf)
                .map_err(|e| context(e, &format!("reading the netlink {} socket", role.name())))?;
            let lost = match received {
                Received::Nothing => return Ok(false),
                Received::Datagram => {
                    self.on_datagram(role, out, now);
                    continue;
                }
                Received::Overrun => "overrun: messages lost".to_string(),
                Received::Truncated { len } => format!("datagram of {len} bytes truncated"),
            };
            if role == Role::Dump {
                tracing::debug!("netlink dump socket {lost}");
                let step = self.resync.replies_lost(now);
                self.perform(step, out, now);
            } else {
                tracing::warn!("netlink {} socket {lost}", role.name());
                // One is enough: each would restart the resync it asks for.
                if !std::mem::replace(overrun_reported, true) {
                    out.push(NetEvent::Overrun);
                }
            }
        }
        Ok(true)
    }

    /// Turns the messages of the datagram in `self.buf` into events, acknowledgements into
    /// settled requests and dump replies into snapshot progress.
    fn on_datagram(&mut self, role: Role, out: &mut Vec<NetEvent>, now: Instant) {
        let buf = std::mem::take(&mut self.buf);
        for frame in Frames::new(&buf).addr_proto(self.addr_proto) {
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => {
                    tracing::debug!("skipping malformed netlink message: {e}");
                    continue;
                }
            };
            if role == Role::Dump {
                let step = self.resync.on_frame(frame, now);
                self.perform(step, out, now);
                continue;
            }
            let event = match frame.body {
                Body::Link(info) => NetEvent::Link(info),
                Body::LinkRemoved { ifindex, name } => NetEvent::LinkRemoved { ifindex, name },
                Body::AddrNew(info) => NetEvent::AddrAdded(info),
                Body::AddrDel(info) => NetEvent::AddrRemoved(info),
                Body::Ack { errno, kernel_msg } => {
                    match self.pending.complete(frame.seq, errno, kernel_msg) {
                        Some(failed) => failed,
                        None => continue,
                    }
                }
                Body::Done | Body::Ignored => continue,
            };
            if role == Role::Events && self.resync.holds_events() {
                let step = self.resync.hold(event, now);
                let replaced = matches!(step, Step::Restart { .. });
                self.perform(step, out, now);
                if replaced {
                    break; // the rest of this datagram predates the new events socket
                }
            } else {
                out.push(event);
            }
        }
        self.buf = buf;
    }

    /// Carries out what the snapshot state machine asks for, until it waits for the kernel.
    fn perform(&mut self, mut step: Step, out: &mut Vec<NetEvent>, now: Instant) {
        loop {
            step = match step {
                Step::Wait => return,
                Step::Send(kind) => self.send_dump(kind, now),
                Step::Restart { new_events_socket } => {
                    match self.replace_sockets(new_events_socket) {
                        Ok(()) => self.send_dump(DumpKind::Links, now),
                        Err(e) => self.resync.send_failed(now, &e.to_string()),
                    }
                }
                Step::Done { links, addrs, held } => {
                    out.push(NetEvent::Resynced { links, addrs });
                    out.extend(held);
                    return;
                }
                Step::GaveUp { held } => {
                    out.extend(held);
                    return;
                }
            };
        }
    }

    fn send_dump(&mut self, kind: DumpKind, now: Instant) -> Step {
        let seq = self.next_seq();
        match self.dump.send(&dump_request(kind, seq), 0) {
            Ok(_) => {
                self.resync.sent(kind, seq, now);
                Step::Wait
            }
            Err(e) => self.resync.send_failed(
                now,
                &format!("sending the dump request for {}: {e}", kind.noun()),
            ),
        }
    }

    /// A new dump socket and, with `events`, a new events socket, registered like the old
    /// ones, which are then closed with whatever they still held. On failure nothing changes.
    fn replace_sockets(&mut self, events: bool) -> io::Result<()> {
        let dump = open_dump_socket()?;
        let new_events = if events {
            Some(open_events_socket()?)
        } else {
            None
        };
        if let Some(reg) = &self.registration {
            register_socket(&reg.registry, &dump, reg.dump, "dump")?;
            if let Some(new_events) = &new_events {
                if let Err(e) = register_socket(&reg.registry, new_events, reg.events, "events") {
                    deregister_socket(&reg.registry, &dump);
                    return Err(e);
                }
                deregister_socket(&reg.registry, &self.events);
            }
            deregister_socket(&reg.registry, &self.dump);
        }
        self.dump = dump;
        if let Some(new_events) = new_events {
            self.events = new_events;
        }
        Ok(())
    }

    fn address_request(&mut self, request: AddrRequest) -> io::Result<u32> {
        request.validate()?;
        self.send_request(Pending::Addr(request))
    }

    /// Sends a request on the requests socket and tracks it until its acknowledgement.
    fn send_request(&mut self, request: Pending) -> io::Result<u32> {
        let seq = self.next_seq();
        let (bytes, describe) = match &request {
            Pending::Addr(r) => (address_request(r, seq), r.describe()),
            Pending::Link(r) => (link_request(r, seq), r.describe()),
        };
        self.requests
            .send(&bytes, 0)
            .map_err(|e| context(e, &format!("sending netlink request to {describe}")))?;
        self.pending.insert(seq, request);
        Ok(seq)
    }

    fn next_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        seq
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Events,
    Requests,
    Dump,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Events => "events",
            Role::Requests => "requests",
            Role::Dump => "dump",
        }
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

/// A request whose acknowledgement is awaited.
#[derive(Debug)]
enum Pending {
    Addr(AddrRequest),
    Link(LinkRequest),
}

/// Sequence number -> request, for requests whose acknowledgement has not been read yet.
#[derive(Debug, Default)]
struct PendingRequests {
    by_seq: BTreeMap<u32, Pending>,
}

impl PendingRequests {
    fn insert(&mut self, seq: u32, request: Pending) {
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
        let request = match request {
            Pending::Addr(request) => request,
            Pending::Link(request) => {
                let kernel = kernel_msg
                    .map(|m| format!("; kernel says: {m}"))
                    .unwrap_or_default();
                return Some(NetEvent::LinkRequestFailed {
                    name: request.name().to_string(),
                    what: format!(
                        "{} failed: {}{kernel}",
                        request.describe(),
                        io::Error::from_raw_os_error(errno)
                    ),
                });
            }
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
    /// Nothing to read.
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

/// A bound, kernel-connected socket (unicasts from other processes are refused by the kernel).
fn open_socket(role: &str) -> io::Result<Socket> {
    let what = format!("opening the netlink {role} socket");
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| context(e, &what))?;
    socket.bind_auto().map_err(|e| context(e, &what))?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| context(e, &what))?;
    Ok(socket)
}

/// The events socket: subscribed to link and address changes, non-blocking.
fn open_events_socket() -> io::Result<Socket> {
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
    Ok(events)
}

/// The dump socket: non-blocking, with extended acks so a refused dump says why.
fn open_dump_socket() -> io::Result<Socket> {
    let dump = open_socket("dump")?;
    ask_for_extended_acks(&dump);
    dump.set_non_blocking(true)
        .map_err(|e| context(e, "making the netlink dump socket non-blocking"))?;
    Ok(dump)
}

fn register_socket(
    registry: &Registry,
    socket: &Socket,
    token: Token,
    role: &str,
) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    registry
        .register(&mut SourceFd(&fd), token, Interest::READABLE)
        .map_err(|e| context(e, &format!("registering the netlink {role} socket")))
}

/// Best effort: the socket is about to be closed, which unregisters it anyway.
fn deregister_socket(registry: &Registry, socket: &Socket) {
    let fd = socket.as_raw_fd();
    if let Err(e) = registry.deregister(&mut SourceFd(&fd)) {
        tracing::debug!("deregistering a replaced netlink socket: {e}");
    }
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

#[cfg(test)]
mod tests {
    use super::request::tests::request;
    use super::*;

    #[test]
    fn failures_name_the_request_and_reason() {
        let mut pending = PendingRequests::default();
        pending.insert(10, Pending::Addr(request(AddrOp::Del, "192.0.2.7", 24)));
        pending.insert(11, Pending::Addr(request(AddrOp::Add, "2001:db8::7", 64)));
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
        pending.insert(5, Pending::Addr(request(AddrOp::Add, "2001:db8::7", 64)));
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

    /// A blocking socket would stall the whole loop on its first empty read; the integration
    /// test `reads_never_block` would then hang rather than fail. The sockets a resync opens
    /// in place of the old ones are checked too.
    #[test]
    fn every_socket_is_non_blocking_replacements_included() {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        fn non_blocking(socket: &Socket) -> bool {
            let flags = fcntl(socket, FcntlArg::F_GETFL).unwrap();
            OFlag::from_bits_truncate(flags).contains(OFlag::O_NONBLOCK)
        }
        let mut nl = Netlink::open().unwrap();
        for socket in [&nl.events, &nl.requests, &nl.dump] {
            assert!(non_blocking(socket));
        }
        let old = (nl.events.as_raw_fd(), nl.dump.as_raw_fd());
        let mut out = Vec::new();
        // The dump it sends lists this namespace's links: harmless, and never read here.
        nl.start_resync(Instant::now(), &mut out);
        assert!(out.is_empty(), "{out:?}");
        // Opened before the old ones were closed, so a new number means a new socket.
        assert_ne!(nl.events.as_raw_fd(), old.0);
        assert_ne!(nl.dump.as_raw_fd(), old.1);
        assert!(non_blocking(&nl.events) && non_blocking(&nl.dump));
        // Nor does the blocking snapshot wait for a resync that is running: it refuses at once
        // and leaves the resync alone.
        let started = Instant::now();
        assert!(nl.snapshot().is_err());
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(nl.next_deadline().is_some(), "the resync is still running");
    }

    #[test]
    fn pending_map_is_bounded() {
        let mut pending = PendingRequests::default();
        for seq in 0..(MAX_PENDING as u32 + 10) {
            pending.insert(seq, Pending::Addr(request(AddrOp::Add, "192.0.2.7", 24)));
        }
        assert_eq!(pending.by_seq.len(), MAX_PENDING);
        assert!(!pending.by_seq.contains_key(&0));
    }
}
