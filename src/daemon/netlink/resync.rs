//! The snapshot state machine: every link, then every address, dumped on the `dump` socket and
//! delivered as one complete, consistent snapshot. Pure: the socket layer (the parent module)
//! performs the [`Step`]s it returns, feeds it the dump socket's messages, the events it holds
//! back and the clock, and reads [`Resync::deadline`].
//!
//! A cycle starts with [`Step::Restart`] (fresh sockets, then the link dump), follows the link
//! dump with the address dump and ends with [`Step::Done`]. An interrupted dump
//! (`NLM_F_DUMP_INTR`: the table changed while it was read, entries may be missing) is sent
//! again once its `NLMSG_DONE` has arrived; a refused, lost or timed-out dump and a new
//! [`Resync::start`] start the cycle over. Each of these counts as a failed attempt: after
//! [`DUMP_ATTEMPTS`] the cycle gives up ([`Step::GaveUp`]) and starts again after
//! [`RETRY_DELAY`].

use std::time::{Duration, Instant};

use netlink_packet_core::NLM_F_DUMP_INTR;

use super::parse::{Body, Frame};
use super::request::DumpKind;
use super::{AddrInfo, LinkInfo, NetEvent};

/// How long one dump may take before the cycle starts over.
pub(super) const DUMP_TIMEOUT: Duration = Duration::from_secs(3);
/// Failed attempts in one cycle before it gives up for [`RETRY_DELAY`].
pub(super) const DUMP_ATTEMPTS: u32 = 3;
/// The pause after [`DUMP_ATTEMPTS`] failed attempts.
pub(super) const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Events held back during one dump; beyond this the cycle starts over (a fresh events socket
/// costs nothing, an unbounded queue could).
pub(super) const MAX_HELD: usize = 16 * 1024;

/// What the socket layer must do next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Nothing until more replies arrive or [`Resync::deadline`] passes.
    Wait,
    /// Send the dump request for this table, then report it with [`Resync::sent`] (or
    /// [`Resync::send_failed`]).
    Send(DumpKind),
    /// Start over: open a new dump socket (a dump still running on the old one would make the
    /// kernel refuse a new one with `EBUSY`) and, when asked, a new events socket (the old one's
    /// queue predates the snapshot); then send the link dump as for [`Step::Send`].
    Restart { new_events_socket: bool },
    /// The snapshot is complete. `held` are the events that arrived while it was taken, to be
    /// delivered after it, in order.
    Done {
        links: Vec<LinkInfo>,
        addrs: Vec<AddrInfo>,
        held: Vec<NetEvent>,
    },
    /// Too many failed attempts: no snapshot now, another cycle starts after [`RETRY_DELAY`].
    /// `held` are released as they are (newer than anything delivered before).
    GaveUp { held: Vec<NetEvent> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    /// The request for this table is to be sent.
    Sending(DumpKind),
    /// Reading the replies to the dump of `kind` sent with `seq`.
    Dumping {
        kind: DumpKind,
        seq: u32,
        deadline: Instant,
        interrupted: bool,
    },
    /// Giving up until `until`.
    Backoff {
        until: Instant,
    },
}

/// One snapshot cycle at a time. See the module documentation.
#[derive(Debug)]
pub(super) struct Resync {
    phase: Phase,
    /// Failed attempts in the current cycle.
    attempts: u32,
    /// A background cycle (inside the event loop) holds back events while it runs and gets a
    /// fresh events socket on each (re)start; a blocking one leaves the events socket alone.
    background: bool,
    links: Vec<LinkInfo>,
    addrs: Vec<AddrInfo>,
    held: Vec<NetEvent>,
}

impl Default for Resync {
    fn default() -> Self {
        Resync {
            phase: Phase::Idle,
            attempts: 0,
            background: false,
            links: Vec::new(),
            addrs: Vec::new(),
            held: Vec::new(),
        }
    }
}

impl Resync {
    /// Asks for a snapshot. Idle: a cycle starts. Running: it starts over (what it has is
    /// stale now), counting as a failed attempt so a storm of requests backs off. Backing
    /// off: coalesced into the retry that is already due.
    pub(super) fn start(&mut self, now: Instant, background: bool) -> Step {
        match self.phase {
            Phase::Idle => {
                self.attempts = 0;
                self.background = background;
                self.restart()
            }
            Phase::Backoff { .. } => {
                self.background |= background;
                Step::Wait
            }
            Phase::Sending(_) | Phase::Dumping { .. } => {
                self.background |= background;
                self.fail(now, "a new resync was requested")
            }
        }
    }

    /// Abandons the cycle (the blocking snapshot gave up); anything held is dropped.
    pub(super) fn cancel(&mut self) {
        *self = Resync::default();
    }

    pub(super) fn is_running(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// True while events from the events socket must be held back (see [`Resync::hold`]).
    pub(super) fn holds_events(&self) -> bool {
        self.background && matches!(self.phase, Phase::Sending(_) | Phase::Dumping { .. })
    }

    /// When [`Resync::handle_timeout`] has something to do.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Dumping { deadline, .. } => Some(deadline),
            Phase::Backoff { until } => Some(until),
            Phase::Idle | Phase::Sending(_) => None,
        }
    }

    /// The request for `kind` went out with `seq`.
    pub(super) fn sent(&mut self, kind: DumpKind, seq: u32, now: Instant) {
        if self.phase == Phase::Sending(kind) {
            self.phase = Phase::Dumping {
                kind,
                seq,
                deadline: now + DUMP_TIMEOUT,
                interrupted: false,
            };
        }
    }

    /// The request could not be sent (or the fresh sockets could not be opened).
    pub(super) fn send_failed(&mut self, now: Instant, why: &str) -> Step {
        self.fail(now, why)
    }

    /// Replies to the dump were lost (the dump socket overran or truncated a datagram).
    pub(super) fn replies_lost(&mut self, now: Instant) -> Step {
        match self.phase {
            Phase::Dumping { .. } => self.fail(now, "dump replies were lost"),
            _ => Step::Wait,
        }
    }

    /// One message read from the dump socket. Messages of other (abandoned) dumps are ignored.
    pub(super) fn on_frame(&mut self, frame: Frame, now: Instant) -> Step {
        let Phase::Dumping {
            kind,
            seq,
            deadline,
            interrupted,
        } = self.phase
        else {
            return Step::Wait;
        };
        if frame.seq != seq {
            return Step::Wait;
        }
        let interrupted = interrupted || frame.flags & NLM_F_DUMP_INTR != 0;
        self.phase = Phase::Dumping {
            kind,
            seq,
            deadline,
            interrupted,
        };
        match (frame.body, kind) {
            (Body::Link(info), DumpKind::Links) => self.links.push(info),
            (Body::AddrNew(info), DumpKind::Addrs) => self.addrs.push(info),
            (Body::Ack { errno, kernel_msg }, _) if errno != 0 => {
                let err = std::io::Error::from_raw_os_error(errno);
                let kernel = kernel_msg.map(|m| format!(" ({m})")).unwrap_or_default();
                return self.fail(now, &format!("the kernel refused the dump: {err}{kernel}"));
            }
            (Body::Done, _) => return self.dump_done(kind, interrupted, now),
            _ => {}
        }
        Step::Wait
    }

    /// Holds back an event that arrived during a background dump (only while
    /// [`Resync::holds_events`]); starts over when too many pile up.
    pub(super) fn hold(&mut self, event: NetEvent, now: Instant) -> Step {
        self.held.push(event);
        if self.held.len() > MAX_HELD {
            return self.fail(now, "too many events arrived during the dump");
        }
        Step::Wait
    }

    /// A dump that outlived [`DUMP_TIMEOUT`] starts over; a finished back-off starts a cycle.
    pub(super) fn handle_timeout(&mut self, now: Instant) -> Step {
        match self.phase {
            Phase::Dumping { deadline, kind, .. } if now >= deadline => self.fail(
                now,
                &format!(
                    "the dump of {} did not finish within {DUMP_TIMEOUT:?}",
                    kind.noun()
                ),
            ),
            Phase::Backoff { until } if now >= until => {
                self.attempts = 0;
                self.restart()
            }
            _ => Step::Wait,
        }
    }

    fn dump_done(&mut self, kind: DumpKind, interrupted: bool, now: Instant) -> Step {
        if interrupted {
            self.attempts += 1;
            if self.attempts >= DUMP_ATTEMPTS {
                return self.give_up(now, "dumps keep being interrupted by changes");
            }
            tracing::debug!(
                "netlink dump of {} interrupted by a change, repeating it",
                kind.noun()
            );
            match kind {
                DumpKind::Links => self.links.clear(),
                DumpKind::Addrs => self.addrs.clear(),
            }
            // The finished dump freed the socket: the same table again, events still held.
            self.phase = Phase::Sending(kind);
            return Step::Send(kind);
        }
        match kind {
            DumpKind::Links => {
                self.phase = Phase::Sending(DumpKind::Addrs);
                Step::Send(DumpKind::Addrs)
            }
            DumpKind::Addrs => {
                let done = Step::Done {
                    links: std::mem::take(&mut self.links),
                    addrs: std::mem::take(&mut self.addrs),
                    held: std::mem::take(&mut self.held),
                };
                *self = Resync::default();
                done
            }
        }
    }

    /// A failed attempt: start over, or give up when that was the last one.
    fn fail(&mut self, now: Instant, why: &str) -> Step {
        self.attempts += 1;
        if self.attempts >= DUMP_ATTEMPTS {
            return self.give_up(now, why);
        }
        tracing::debug!("netlink snapshot: {why}; starting over");
        self.restart()
    }

    fn give_up(&mut self, now: Instant, why: &str) -> Step {
        tracing::warn!(
            "netlink snapshot: {why}; giving up after {} attempts, retrying in {RETRY_DELAY:?}",
            self.attempts
        );
        self.links.clear();
        self.addrs.clear();
        self.phase = Phase::Backoff {
            until: now + RETRY_DELAY,
        };
        Step::GaveUp {
            held: std::mem::take(&mut self.held),
        }
    }

    /// A new attempt from the link dump on; what was collected and held so far is stale.
    fn restart(&mut self) -> Step {
        self.links.clear();
        self.addrs.clear();
        self.held.clear();
        self.phase = Phase::Sending(DumpKind::Links);
        Step::Restart {
            new_events_socket: self.background,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(ifindex: u32) -> LinkInfo {
        LinkInfo {
            ifindex,
            name: format!("eth{ifindex}"),
            up: true,
            mac: None,
        }
    }

    fn addr(ifindex: u32) -> AddrInfo {
        AddrInfo {
            ifindex,
            addr: "192.0.2.1".parse().unwrap(),
            prefix_len: 24,
            proto: 0,
            tentative: false,
            secondary: false,
            dad_failed: false,
            valid_lifetime: None,
        }
    }

    fn frame(seq: u32, body: Body) -> Frame {
        Frame {
            seq,
            flags: 0,
            body,
        }
    }

    fn interrupted(seq: u32, body: Body) -> Frame {
        Frame {
            seq,
            flags: NLM_F_DUMP_INTR,
            body,
        }
    }

    /// Starts a background cycle and sends the link dump with seq 1.
    fn started(now: Instant) -> Resync {
        let mut r = Resync::default();
        assert_eq!(
            r.start(now, true),
            Step::Restart {
                new_events_socket: true
            }
        );
        assert!(r.holds_events());
        r.sent(DumpKind::Links, 1, now);
        r
    }

    #[test]
    fn links_then_addresses_then_one_snapshot_with_the_held_events_after_it() {
        let t0 = Instant::now();
        let mut r = started(t0);
        assert_eq!(r.deadline(), Some(t0 + DUMP_TIMEOUT));
        assert_eq!(r.on_frame(frame(1, Body::Link(link(1))), t0), Step::Wait);
        // Replies to other dumps and other messages are ignored.
        assert_eq!(r.on_frame(frame(7, Body::Link(link(9))), t0), Step::Wait);
        assert_eq!(r.on_frame(frame(1, Body::AddrNew(addr(1))), t0), Step::Wait);
        let late = NetEvent::LinkRemoved {
            ifindex: 1,
            name: "eth1".into(),
        };
        assert_eq!(r.hold(late.clone(), t0), Step::Wait);
        assert_eq!(
            r.on_frame(frame(1, Body::Done), t0),
            Step::Send(DumpKind::Addrs)
        );
        assert_eq!(r.deadline(), None);
        let t1 = t0 + Duration::from_millis(5);
        r.sent(DumpKind::Addrs, 2, t1);
        assert_eq!(r.deadline(), Some(t1 + DUMP_TIMEOUT));
        assert_eq!(r.on_frame(frame(2, Body::AddrNew(addr(1))), t1), Step::Wait);
        assert_eq!(
            r.on_frame(frame(2, Body::Done), t1),
            Step::Done {
                links: vec![link(1)],
                addrs: vec![addr(1)],
                held: vec![late],
            }
        );
        assert!(!r.is_running() && !r.holds_events());
        assert_eq!(r.deadline(), None);
    }

    #[test]
    fn an_interrupted_dump_is_repeated_then_the_cycle_backs_off() {
        let t0 = Instant::now();
        let mut r = started(t0);
        r.on_frame(interrupted(1, Body::Link(link(1))), t0);
        // The flag may sit on any message; the dump is repeated only once it has finished.
        assert_eq!(r.on_frame(frame(1, Body::Link(link(2))), t0), Step::Wait);
        assert_eq!(
            r.on_frame(frame(1, Body::Done), t0),
            Step::Send(DumpKind::Links)
        );
        r.hold(NetEvent::Overrun, t0);
        r.sent(DumpKind::Links, 2, t0);
        // The repeat starts from nothing: the earlier entries are not kept twice.
        r.on_frame(frame(2, Body::Link(link(2))), t0);
        assert_eq!(
            r.on_frame(interrupted(2, Body::Done), t0),
            Step::Send(DumpKind::Links)
        );
        r.sent(DumpKind::Links, 3, t0);
        assert_eq!(
            r.on_frame(interrupted(3, Body::Done), t0),
            Step::GaveUp {
                held: vec![NetEvent::Overrun]
            }
        );
        assert!(r.is_running() && !r.holds_events());
        assert_eq!(r.deadline(), Some(t0 + RETRY_DELAY));
        // A request during the back-off is coalesced into the retry.
        assert_eq!(r.start(t0, true), Step::Wait);
        assert_eq!(r.handle_timeout(t0), Step::Wait);
        assert_eq!(
            r.handle_timeout(t0 + RETRY_DELAY),
            Step::Restart {
                new_events_socket: true
            }
        );
        r.sent(DumpKind::Links, 4, t0);
        r.on_frame(frame(4, Body::Link(link(2))), t0);
        r.on_frame(frame(4, Body::Done), t0);
        r.sent(DumpKind::Addrs, 5, t0);
        let Step::Done { links, .. } = r.on_frame(frame(5, Body::Done), t0) else {
            panic!("expected a snapshot");
        };
        assert_eq!(links, vec![link(2)]);
    }

    #[test]
    fn a_dump_that_never_finishes_starts_over() {
        let t0 = Instant::now();
        let mut r = started(t0);
        r.on_frame(frame(1, Body::Link(link(1))), t0);
        r.hold(NetEvent::Overrun, t0);
        assert_eq!(
            r.handle_timeout(t0 + DUMP_TIMEOUT - Duration::from_millis(1)),
            Step::Wait
        );
        assert_eq!(
            r.handle_timeout(t0 + DUMP_TIMEOUT),
            Step::Restart {
                new_events_socket: true
            }
        );
        // Held events predate the fresh events socket: dropped. Collected links: dropped.
        r.sent(DumpKind::Links, 5, t0);
        r.on_frame(frame(5, Body::Done), t0);
        r.sent(DumpKind::Addrs, 6, t0);
        assert_eq!(
            r.on_frame(frame(6, Body::Done), t0),
            Step::Done {
                links: vec![],
                addrs: vec![],
                held: vec![]
            }
        );
    }

    #[test]
    fn a_new_request_restarts_a_running_cycle_and_a_storm_backs_off() {
        let t0 = Instant::now();
        let mut r = started(t0);
        assert_eq!(
            r.start(t0, true),
            Step::Restart {
                new_events_socket: true
            }
        );
        r.sent(DumpKind::Links, 2, t0);
        assert!(matches!(r.start(t0, true), Step::Restart { .. }));
        r.sent(DumpKind::Links, 3, t0);
        assert!(matches!(r.start(t0, true), Step::GaveUp { .. }));
    }

    #[test]
    fn refusals_lost_replies_and_send_failures_are_failed_attempts() {
        let t0 = Instant::now();
        let mut r = started(t0);
        let refusal = Body::Ack {
            errno: libc::EBUSY,
            kernel_msg: None,
        };
        assert!(matches!(
            r.on_frame(frame(1, refusal), t0),
            Step::Restart { .. }
        ));
        // Lost replies only matter while a dump is being read.
        assert_eq!(r.replies_lost(t0), Step::Wait);
        r.sent(DumpKind::Links, 2, t0);
        assert!(matches!(r.replies_lost(t0), Step::Restart { .. }));
        assert!(matches!(r.send_failed(t0, "ENOBUFS"), Step::GaveUp { .. }));
    }

    #[test]
    fn held_events_are_bounded() {
        let t0 = Instant::now();
        let mut r = started(t0);
        for _ in 0..MAX_HELD {
            assert_eq!(r.hold(NetEvent::Overrun, t0), Step::Wait);
        }
        assert!(matches!(
            r.hold(NetEvent::Overrun, t0),
            Step::Restart { .. }
        ));
        r.sent(DumpKind::Links, 2, t0);
        assert!(r.holds_events());
    }

    #[test]
    fn a_blocking_cycle_keeps_the_events_socket() {
        let t0 = Instant::now();
        let mut r = Resync::default();
        assert_eq!(
            r.start(t0, false),
            Step::Restart {
                new_events_socket: false
            }
        );
        assert!(r.is_running() && !r.holds_events());
        r.cancel();
        assert!(!r.is_running());
    }
}
