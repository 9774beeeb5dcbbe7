//! Resource-group ownership, sans-I/O: whether this node should hold a group, and the ordered
//! acquire and release of its VIPs and resources.
//!
//! A [`Group`] is fed what this node knows of the cluster ([`ClusterView`]: its membership
//! partition, quorum, and the states the members report for the group in their heartbeats),
//! the results of resource hooks, and `now`; it answers with [`Action`]s and its next deadline.
//!
//! Rules:
//! - The **owner** is the first node of the group's `nodes` that is in this node's partition and
//!   may hold it (a peer that reports the group `Failed` may not; this node may not while
//!   [`ClusterView::eligible`] is false or after `max_start_failures` failed starts). With
//!   `auto_failback = false` a member that already holds the group keeps it.
//! - **Acquire** only while the owner is this node, quorum allows it and no member reports the
//!   group busy (acquiring, held or releasing): a planned move is a handover in which the old
//!   owner releases completely, and says so in its heartbeat, before the new owner starts.
//!   And only once this node has been quorate for `settle` (two nodes that become quorate
//!   together, after a restart or a heal, each see a partition without the other for a
//!   heartbeat or two), and `takeover_delay` after any peer vanished without a goodbye
//!   (crashed or cut off: whatever it reported last, it may have acquired since): time for a
//!   lost holder to see that it lost quorum and stop. A handover (the old owner released and
//!   said so) and a goodbye need no wait.
//! - Acquire = add the VIPs, announce them, then start the resources in order, each after the
//!   previous one succeeded. Release = stop the started resources in reverse order, then
//!   remove the VIPs. In a planned move (another owner, or this node may not hold the group:
//!   graceful stop, standby) the VIP addresses, and only they, **linger** after the release
//!   until a peer reports the group acquiring or held, or `linger` passed, or quorum is lost:
//!   the new owner's announcement moves the clients before the old addresses go, as a VRRP
//!   master keeps its VIPs until its backup took over, so no client request finds no owner.
//!   The resources never overlap. A failed start stops what was started and releases; after
//!   `max_start_failures` the group is `Failed` here, so the next node tries.
//! - On losing quorum `quorum_policy` applies: `stop` releases, `freeze` keeps what is held and
//!   acquires nothing, `ignore` behaves as if quorate.
use std::time::{Duration, Instant};

pub use crate::wire::heartbeat::GroupWireState as GroupState;

/// What to do when quorum is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuorumPolicy {
    Stop,
    Freeze,
    Ignore,
}

/// A group as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupParams {
    /// Node ids in order of preference.
    pub nodes: Vec<u8>,
    /// Resources, in start order (descending priority).
    pub resources: usize,
    pub auto_failback: bool,
    /// Failed starts after which this node gives the group up (at least 1).
    pub max_start_failures: u32,
    pub quorum_policy: QuorumPolicy,
    /// How long this node must have been quorate before it acquires: views settle within a
    /// heartbeat round trip (two keepalives).
    pub settle: Duration,
    /// Wait after a holder vanished while busy. Without fencing a lost holder loses its lease
    /// before this node sees it dead, and then stops its resources: the group's stop timeouts
    /// (with the kill grace) are the safe value, nothing for a group of VIPs only. Fencing
    /// will replace that wait with a confirmed fence.
    pub takeover_delay: Duration,
    /// Longest a released group's VIPs linger in a planned move while no peer reports it
    /// acquired.
    pub linger: Duration,
}

/// This node's knowledge of the cluster at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView<'a> {
    pub me: u8,
    /// Quorate with a valid lease ([`crate::engine::membership::Membership::lease_valid`]):
    /// recently heard peers alone make a quorum.
    pub quorate: bool,
    /// This node's partition (alive, mutually hearing nodes; this node included).
    pub members: &'a [u8],
    /// Peers this node hears directly. One heard but not (yet) in the partition still counts
    /// when choosing the owner and when looking for a busy peer: deferring to it can only
    /// leave the group unowned for a moment, ignoring it could make two owners.
    pub heard: &'a [u8],
    /// Peers that said goodbye (graceful stop) and have not come back: their departure needs
    /// no takeover delay.
    pub left: &'a [u8],
    /// The group's state as each member this node hears directly last reported it. A member
    /// missing here (known only through a third node) counts as busy: never acquire over it.
    pub peer_states: &'a [(u8, GroupState)],
    /// This node may hold the group (not in standby, its VIP interfaces up).
    pub eligible: bool,
    /// A lost peer that may have held the group is not confirmed fenced
    /// ([`crate::engine::fencing`]): nothing is acquired.
    pub fence_pending: bool,
    /// Peers confirmed fenced: when every peer that vanished was, no takeover delay is needed
    /// (the fence replaces it).
    pub fenced: &'a [u8],
}

/// What the daemon does for the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    AddVips,
    Announce,
    /// Start resource `i` (its hook, with its timeout); answer with [`Group::resource_started`].
    StartResource(usize),
    /// Stop resource `i`; answer with [`Group::resource_stopped`].
    StopResource(usize),
    RemoveVips,
    Transition {
        from: GroupState,
        to: GroupState,
        reason: Reason,
    },
}

/// Why the group changed state (logs, status, hooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// This node is the owner now.
    Owner,
    /// Every resource started.
    Started,
    /// Another node is the owner now (failback, a preferred node returned).
    OtherOwner,
    QuorumLost,
    NotEligible,
    StartFailed,
    /// The release finished.
    Stopped,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::Owner => "this node is its owner now",
            Reason::Started => "every resource started",
            Reason::OtherOwner => "another node is its owner now",
            Reason::QuorumLost => "quorum lost",
            Reason::NotEligible => {
                "this node may not hold it (standby, maintenance, switchover, or a VIP interface down)"
            }
            Reason::StartFailed => "a resource failed to start",
            Reason::Stopped => "every resource stopped",
        })
    }
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::Owner => "owner",
            Reason::Started => "started",
            Reason::OtherOwner => "other-owner",
            Reason::QuorumLost => "quorum-lost",
            Reason::NotEligible => "not-eligible",
            Reason::StartFailed => "start-failed",
            Reason::Stopped => "stopped",
        }
    }
}

/// One group on this node. See the module documentation.
#[derive(Debug)]
pub struct Group {
    params: GroupParams,
    state: GroupState,
    /// Resources started so far (0..started are running or being started).
    started: usize,
    /// A hook is running; no new step until it reports.
    waiting: bool,
    failures: u32,
    /// Since when this node has been quorate without a break.
    quorate_since: Option<Instant>,
    /// The peers present (in the partition or heard) at the last update.
    last_seen: Vec<u8>,
    /// After a holder vanished while busy: no acquiring before this instant.
    takeover_at: Option<Instant>,
    /// The peers that vanished since the takeover wait began.
    vanished: Vec<u8>,
    /// When a wait (settle, takeover delay) ends that the last update was held back by.
    wake_at: Option<Instant>,
    /// Whether this node may hold the group (eligible, and quorum allows it), as of the last
    /// update.
    may_hold: bool,
    /// Why the current release started.
    release_reason: Reason,
    /// Released in a planned move with the VIPs still up: removed at this instant at the
    /// latest (see the module documentation).
    linger_until: Option<Instant>,
    /// See [`Group::awaits_fence`].
    awaits_fence: bool,
}

impl Group {
    pub fn new(params: GroupParams) -> Self {
        Group {
            params,
            state: GroupState::Released,
            started: 0,
            waiting: false,
            failures: 0,
            quorate_since: None,
            last_seen: Vec::new(),
            takeover_at: None,
            vanished: Vec::new(),
            wake_at: None,
            may_hold: false,
            release_reason: Reason::Stopped,
            linger_until: None,
            awaits_fence: false,
        }
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    /// The state peers are told: a node that may not hold the group (no quorum, not
    /// eligible) says `failed` once released, so the next node takes it without waiting.
    pub fn reported_state(&self) -> GroupState {
        match self.state {
            GroupState::Released if !self.may_hold => GroupState::Failed,
            state => state,
        }
    }

    /// The resource hook the engine waits for: (a start?, resource index).
    pub fn hook_in_progress(&self) -> Option<(bool, usize)> {
        match (self.waiting, self.state) {
            (true, GroupState::Acquiring) => Some((true, self.started.checked_sub(1)?)),
            (true, GroupState::Releasing) => Some((false, self.started)),
            _ => None,
        }
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When [`Group::update`] must run again without a new input.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.wake_at, self.linger_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// Released with the VIPs still up until a peer took the group over.
    pub fn is_lingering(&self) -> bool {
        self.linger_until.is_some()
    }

    /// At the last update this node would have acquired the group but for a fence still
    /// pending: it is the one to fence.
    pub fn awaits_fence(&self) -> bool {
        self.awaits_fence
    }

    /// Re-decides from the current view (call on every membership or heartbeat change and at
    /// [`Group::next_deadline`]).
    pub fn update(&mut self, view: &ClusterView<'_>, now: Instant, out: &mut Vec<Action>) {
        if self.quorum_allows_acquiring(view) {
            self.quorate_since.get_or_insert(now);
        } else {
            self.quorate_since = None;
        }
        self.track_departures(view, now);
        self.may_hold = view.eligible && self.quorum_allows_acquiring(view);
        self.wake_at = None;
        self.awaits_fence = false;
        self.end_linger(view, now, out);
        if self.waiting {
            return;
        }
        match self.state {
            GroupState::Released => {
                if self.may_acquire(view, now) && view.fence_pending {
                    self.awaits_fence = true;
                } else if self.may_acquire(view, now) {
                    self.acquire(out);
                } else {
                    self.wake_at = self.pending_wait(now);
                }
            }
            GroupState::Acquiring | GroupState::Held => {
                if let Some(reason) = self.must_release(view) {
                    self.release(reason, now, out);
                }
            }
            GroupState::Releasing | GroupState::Failed => {}
        }
    }

    /// A start hook finished.
    pub fn resource_started(
        &mut self,
        index: usize,
        ok: bool,
        view: &ClusterView<'_>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.state != GroupState::Acquiring || index + 1 != self.started {
            return;
        }
        self.waiting = false;
        if !ok {
            self.failures += 1;
            self.started -= 1; // a failed start counts as not running; its stop is not needed
            self.release(Reason::StartFailed, now, out);
            return;
        }
        if let Some(reason) = self.must_release(view) {
            self.release(reason, now, out);
            return;
        }
        self.start_next(out);
        if !self.waiting && self.state == GroupState::Acquiring {
            self.transition(GroupState::Held, Reason::Started, out);
        }
    }

    /// A stop hook finished (whatever its outcome: a hanging one was killed).
    pub fn resource_stopped(&mut self, index: usize, now: Instant, out: &mut Vec<Action>) {
        if self.state != GroupState::Releasing || index != self.started {
            return;
        }
        self.waiting = false;
        self.stop_next(now, out);
    }

    /// Removes lingering VIPs once a peer reports the group acquiring or held, at the end of
    /// `linger`, or when this node may not keep them (quorum lost under policy `stop`).
    fn end_linger(&mut self, view: &ClusterView<'_>, now: Instant, out: &mut Vec<Action>) {
        let Some(until) = self.linger_until else {
            return;
        };
        let taken_over = view
            .peer_states
            .iter()
            .any(|(_, s)| matches!(s, GroupState::Acquiring | GroupState::Held));
        let must_go = !view.quorate && self.params.quorum_policy == QuorumPolicy::Stop;
        if taken_over || must_go || now >= until {
            self.linger_until = None;
            out.push(Action::RemoveVips);
        }
    }

    /// The end of the settle or takeover wait still running at `now`, if any.
    fn pending_wait(&self, now: Instant) -> Option<Instant> {
        let settled = self.quorate_since.map(|t| t + self.params.settle);
        [settled, self.takeover_at]
            .into_iter()
            .flatten()
            .filter(|&at| at > now)
            .max()
    }

    /// Arms the takeover delay when a node vanished from the partition and from the peers
    /// heard without saying goodbye: whatever it last reported, it may have acquired since.
    fn track_departures(&mut self, view: &ClusterView<'_>, now: Instant) {
        let present = |n: u8| view.members.contains(&n) || view.heard.contains(&n);
        let vanished: Vec<u8> = self
            .last_seen
            .iter()
            .copied()
            .filter(|&n| !present(n) && !view.left.contains(&n))
            .collect();
        if !vanished.is_empty() {
            self.takeover_at = Some(now + self.params.takeover_delay);
            for n in vanished {
                if !self.vanished.contains(&n) {
                    self.vanished.push(n);
                }
            }
        }
        self.last_seen = view
            .members
            .iter()
            .chain(view.heard)
            .copied()
            .filter(|&n| n != view.me)
            .collect();
        if self.takeover_at.is_some_and(|at| now >= at) {
            self.takeover_at = None;
            self.vanished.clear();
        }
    }

    /// Whether the takeover wait is over: its time passed, or every peer that vanished during
    /// it was confirmed fenced (the fence replaces the wait).
    fn takeover_wait_over(&self, view: &ClusterView<'_>, now: Instant) -> bool {
        self.takeover_at.is_none_or(|at| now >= at)
            || (!self.vanished.is_empty() && self.vanished.iter().all(|n| view.fenced.contains(n)))
    }

    /// The node that should hold the group, as this node sees it. `cautious` (deciding to
    /// acquire) also counts a node whose state is unknown (known only through a third node) as
    /// a candidate; otherwise (deciding to release) only nodes whose state is known count.
    fn owner(&self, view: &ClusterView<'_>, cautious: bool) -> Option<u8> {
        let reported = |node: u8| {
            view.peer_states
                .iter()
                .find(|(n, _)| *n == node)
                .map(|(_, s)| *s)
        };
        let can_hold = |node: u8| {
            if node == view.me {
                return view.eligible && self.failures < self.params.max_start_failures.max(1);
            }
            let present = view.members.contains(&node) || view.heard.contains(&node);
            match reported(node) {
                Some(state) => present && state != GroupState::Failed,
                None => present && cautious,
            }
        };
        let holds = |node: u8| {
            if node == view.me {
                matches!(self.state, GroupState::Acquiring | GroupState::Held)
            } else {
                reported(node)
                    .is_some_and(|s| matches!(s, GroupState::Acquiring | GroupState::Held))
            }
        };
        let candidates = self.params.nodes.iter().copied().filter(|&n| can_hold(n));
        if !self.params.auto_failback {
            if let Some(holder) = candidates.clone().find(|&n| holds(n)) {
                return Some(holder);
            }
        }
        candidates.into_iter().next()
    }

    fn quorum_allows_acquiring(&self, view: &ClusterView<'_>) -> bool {
        view.quorate || self.params.quorum_policy == QuorumPolicy::Ignore
    }

    fn may_acquire(&self, view: &ClusterView<'_>, now: Instant) -> bool {
        // A member whose state this node does not hear (joined through a third node) may hold
        // the group: it counts as busy.
        let busy_peer = view.members.iter().chain(view.heard).any(|&node| {
            node != view.me
                && view
                    .peer_states
                    .iter()
                    .find(|(n, _)| *n == node)
                    .is_none_or(|&(_, state)| is_busy(state))
        });
        self.quorum_allows_acquiring(view)
            && self.owner(view, true) == Some(view.me)
            && !busy_peer
            && self
                .quorate_since
                .is_some_and(|since| now >= since + self.params.settle)
            && self.takeover_wait_over(view, now)
    }

    fn must_release(&self, view: &ClusterView<'_>) -> Option<Reason> {
        if !view.quorate && self.params.quorum_policy == QuorumPolicy::Stop {
            return Some(Reason::QuorumLost);
        }
        if !view.eligible {
            return Some(Reason::NotEligible);
        }
        let frozen = !view.quorate && self.params.quorum_policy == QuorumPolicy::Freeze;
        if !frozen && self.owner(view, false) != Some(view.me) {
            return Some(Reason::OtherOwner);
        }
        None
    }

    fn acquire(&mut self, out: &mut Vec<Action>) {
        self.linger_until = None; // lingering VIPs are simply kept
        self.transition(GroupState::Acquiring, Reason::Owner, out);
        out.push(Action::AddVips);
        out.push(Action::Announce);
        self.start_next(out);
        if !self.waiting {
            self.transition(GroupState::Held, Reason::Started, out);
        }
    }

    fn start_next(&mut self, out: &mut Vec<Action>) {
        if self.started < self.params.resources {
            out.push(Action::StartResource(self.started));
            self.started += 1;
            self.waiting = true;
        }
    }

    fn release(&mut self, reason: Reason, now: Instant, out: &mut Vec<Action>) {
        self.release_reason = reason;
        self.transition(GroupState::Releasing, reason, out);
        self.stop_next(now, out);
    }

    fn stop_next(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.started > 0 {
            self.started -= 1;
            out.push(Action::StopResource(self.started));
            self.waiting = true;
            return;
        }
        let planned = matches!(
            self.release_reason,
            Reason::OtherOwner | Reason::NotEligible
        );
        if planned && !self.params.linger.is_zero() {
            self.linger_until = Some(now + self.params.linger);
        } else {
            out.push(Action::RemoveVips);
        }
        let done = if self.failures >= self.params.max_start_failures.max(1) {
            GroupState::Failed
        } else {
            GroupState::Released
        };
        let reason = match self.release_reason {
            Reason::StartFailed => Reason::StartFailed,
            _ => Reason::Stopped,
        };
        self.transition(done, reason, out);
    }

    fn transition(&mut self, to: GroupState, reason: Reason, out: &mut Vec<Action>) {
        let from = std::mem::replace(&mut self.state, to);
        out.push(Action::Transition { from, to, reason });
    }
}

/// A state in which a node may have the group's VIPs or resources.
fn is_busy(state: GroupState) -> bool {
    matches!(
        state,
        GroupState::Acquiring | GroupState::Held | GroupState::Releasing
    )
}
