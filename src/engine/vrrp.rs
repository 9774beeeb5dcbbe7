//! The VRRP instance state machine (RFC 5798 §6 for v3, RFC 3768 §6 for v2), sans-I/O.
//!
//! An [`Instance`] is fed [`Input`]s and timer expiries together with `now`, and answers with
//! [`Action`]s pushed into the caller's `Vec` (no allocation of its own) plus
//! [`Instance::next_deadline`]. It never reads a clock, touches a socket or draws randomness.
//!
//! Timers follow the RFCs exactly:
//! - v3: `Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256` and
//!   `Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time`, integer centiseconds;
//!   a Backup learns `Master_Adver_Interval` from the adverts it accepts.
//! - v2: `Skew_Time = (256 - Priority) / 256` seconds, kept exact to the microsecond, and
//!   `Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time`; no interval learning.
//!
//! Decisions beyond the RFC text:
//! - When the Master_Down timer of a Backup expires, the [`Reason`] says why: it is
//!   [`Reason::PriorityZeroFromMaster`] if the last advert heard was a priority-0 resignation,
//!   [`Reason::Preempt`] if it was a lower-priority advert we discarded because we preempt
//!   (the lower master is alive and we take over), [`Reason::MasterDown`] otherwise.
//! - `preempt_delay` (keepalived semantics): for `preempt_delay` after entering BACKUP from
//!   INIT or FAULT, a lower-priority advert is accepted as if `preempt` were false.
//! - Tie-break on equal priority compares the sender's address with our own primary address
//!   numerically. If ours is unknown, or of the other family, we count as lowest and the peer
//!   wins: yielding can never create a second master, claiming could.
//! - A link coming back (FAULT --LinkUp-->) behaves like Startup; an address owner reports
//!   [`Reason::AddressOwner`], anyone else [`Reason::LinkUp`].
//! - A Master's advert timer re-arms at `previous deadline + interval` (no drift), unless
//!   that is not in the future any more, then at `now + interval`.
//! - "Can I advertise?" is a state input besides the link: [`Input::CannotAdvertise`] with
//!   [`Blocker::NoSourceAddress`] (the interface has no usable source address) or
//!   [`Blocker::SendFailed`] (sending failed persistently) puts the instance in FAULT, so it
//!   never holds the VIPs while its peers cannot hear it; [`Input::CanAdvertise`] lifts the
//!   blocker. A send failure cannot be observed from FAULT (nothing is sent there), so that
//!   blocker lifts itself after a backoff (1 s doubling to 30 s; reset by a successful send):
//!   the instance re-enters BACKUP, where it follows any live master and sends nothing.
//!   [`Blocker::NoQuorum`] and [`Blocker::TrackFailed`] (a weight-0 track fails) work alike.
//! - Tracks change the priority in place ([`Input::SetPriority`]); no transition happens at
//!   once, the next adverts and timers carry it.
use std::cmp::Ordering;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::engine::announce::{rearm, AnnounceParams, AnnounceSchedule};
use crate::wire::VrrpVersion;

/// Priority of the address owner (always MASTER when up).
pub const OWNER_PRIORITY: u8 = 255;

/// How long a stopped master keeps its VIPs after hearing its successor (see `shutdown`).
pub const RELEASE_GRACE: Duration = Duration::from_millis(20);

/// Configuration of one instance, as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// v3 (RFC 5798) or v2 (RFC 3768): decides the timer formulas and interval learning.
    pub version: VrrpVersion,
    /// Virtual router id (not used by the state machine itself; kept for logs and status).
    pub vrid: u8,
    /// 1..=255 (0 is treated as 1); 255 = address owner.
    pub priority: u8,
    /// Own Advertisement_Interval in centiseconds. v3: 1..=4095; v2: a multiple of 100.
    /// 0 is treated as 1.
    pub advert_interval_cs: u16,
    /// RFC Preempt_Mode: a Backup takes over from a lower-priority master.
    pub preempt: bool,
    /// Hold-off after entering BACKUP from INIT/FAULT during which we do not preempt.
    pub preempt_delay: Duration,
    /// Gratuitous ARP / unsolicited NA schedule while MASTER.
    pub announce: AnnounceParams,
    /// Priority order below the timer resolution: every Master_Down / Skew wait of a Backup
    /// is lengthened by `priority_step * (256 - priority)² / 256` (zero = the RFC's timers
    /// exactly). See [`DEFAULT_PRIORITY_STEP`].
    pub priority_step: Duration,
}

/// The daemon's `priority_step`: 16 µs, i.e. an offset of `16 µs * (256 - priority)² / 256`.
///
/// At 10 ms adverts the RFC's integer-centisecond Skew_Time is 0 for every priority, so when a
/// master dies every backup's Master_Down timer fires at the same instant and all of them
/// claim MASTER; the answer-a-competing-master rule repairs it within a millisecond, but
/// clients see two owners in turn. With this offset the backups wait a little more, the
/// lower the priority the more: priority 254 waits 0.06 µs, 200: 0.20 ms, 150: 0.70 ms,
/// 100: 1.52 ms, 50: 2.65 ms, 1: 4.06 ms. The highest-priority backup claims first and the
/// others hear its advert before their own timer fires as long as the gap between their
/// offsets exceeds the advert's delivery time plus the receiver's wake-up latency. The
/// curve is quadratic so that the usual priorities (50..150) are about a millisecond apart
/// while the highest ones, which take over first, add almost nothing: the bench's backup
/// (priority 100) pays 1.5 ms, against keepalived's exact skew of 6.1 ms. Measured on this
/// project's namespace lab (veth pairs on a bridge, two cores): ping RTT between two nodes
/// averages 58 µs idle (max 240 µs) and 74 µs with both cores compiling (max 430 µs), so an
/// advert takes ~30-40 µs one way and ~0.2 ms at worst; the gaps above (0.8-1.1 ms between
/// priorities 50 apart) cover that several times. The receiver's own scheduling latency
/// under load (1-2 ms seen) is covered otherwise: the daemon reads queued adverts before it
/// fires a due timer and counts from each advert's kernel arrival time. Where all of that is
/// not enough (priorities a few points apart, an overloaded host), the
/// answer-a-competing-master rule stays the safety net.
pub const DEFAULT_PRIORITY_STEP: Duration = Duration::from_micros(16);

/// RFC state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

impl State {
    /// Upper-case name used in logs, status and the hook environment.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An advertisement already validated by the wire layer / daemon (checksum, TTL, VRID,
/// version, auth) and not sent by ourselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertIn {
    /// Source address of the IP packet (the sender's primary address).
    pub src: IpAddr,
    pub priority: u8,
    /// Advertised interval in centiseconds (v2: seconds converted to centiseconds).
    pub interval_cs: u16,
}

/// Something that happened to the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// RFC Startup event; `link_up: false` starts in FAULT.
    Startup {
        link_up: bool,
    },
    /// RFC Shutdown event (daemon stopping or instance removed).
    Shutdown,
    Advert(AdvertIn),
    LinkDown,
    LinkUp,
    /// Our own primary address on the interface changed (used for the equal-priority tie-break).
    PrimaryAddress(Option<IpAddr>),
    /// Something keeps this instance from advertising: FAULT until [`Input::CanAdvertise`].
    CannotAdvertise(Blocker),
    /// The blocker is gone (the source address is back, a send succeeded).
    CanAdvertise(Blocker),
    /// The effective priority changed (tracks): used from now on in adverts, Skew_Time and
    /// preemption. See [`Instance::set_priority`].
    SetPriority(u8),
    /// The operator holds this node out of the instance (standby, maintenance, switchover)
    /// or lets it compete again. Held out, a MASTER resigns as on shutdown (one priority-0
    /// advert, the VIPs kept until the successor speaks, at most four advert intervals) and
    /// the instance stays BACKUP without a Master_Down timer: it never takes over.
    HoldOut(bool),
}

/// Why an instance with its link up cannot advertise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blocker {
    /// No usable source address on the interface (none, or IPv6 link-local still tentative).
    NoSourceAddress,
    /// Adverts could not be sent several times in a row.
    SendFailed,
    /// `quorum_gated`: this node's cluster partition has no quorum.
    NoQuorum,
    /// A weight-0 `[[track]]` of the instance fails.
    TrackFailed,
}

/// First wait before a send-failed FAULT retries; doubles up to [`SEND_RETRY_MAX`].
pub const SEND_RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest wait between two retries after persistent send failures.
pub const SEND_RETRY_MAX: Duration = Duration::from_secs(30);

/// What the daemon must do, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send one advert now with this priority (0 on shutdown), interval = own advert_interval.
    SendAdvert {
        priority: u8,
    },
    AddVips,
    RemoveVips,
    /// Send one gratuitous ARP / unsolicited NA per VIP now.
    Announce,
    Transition {
        from: State,
        to: State,
        reason: Reason,
    },
}

/// Why a transition happened (logs, status, hook env `RELEVO_REASON`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    Startup,
    AddressOwner,
    MasterDown,
    PriorityZeroFromMaster,
    HigherPriority {
        peer: IpAddr,
        priority: u8,
    },
    EqualPriorityHigherAddress {
        peer: IpAddr,
    },
    Preempt,
    LinkDown,
    LinkUp,
    NoSourceAddress,
    SendFailed,
    NoQuorum,
    TrackFailed,
    /// The last blocker (source address, send failure) lifted, or a send retry is due.
    CanAdvertise,
    Shutdown,
    /// The operator held this node out (standby, maintenance, switchover).
    HeldOut,
}

impl Reason {
    /// Stable machine-readable token (kebab-case), for scripts that switch on the reason.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Startup => "startup",
            Reason::AddressOwner => "address-owner",
            Reason::MasterDown => "master-down",
            Reason::PriorityZeroFromMaster => "priority-zero",
            Reason::HigherPriority { .. } => "higher-priority",
            Reason::EqualPriorityHigherAddress { .. } => "equal-priority-higher-address",
            Reason::Preempt => "preempt",
            Reason::LinkDown => "link-down",
            Reason::LinkUp => "link-up",
            Reason::NoSourceAddress => "no-source-address",
            Reason::SendFailed => "send-failed",
            Reason::NoQuorum => "no-quorum",
            Reason::TrackFailed => "track-failed",
            Reason::CanAdvertise => "can-advertise",
            Reason::Shutdown => "shutdown",
            Reason::HeldOut => "held-out",
        }
    }

    /// The peer that caused the transition, if any (hook env `RELEVO_PEER`).
    pub fn peer(&self) -> Option<IpAddr> {
        match self {
            Reason::HigherPriority { peer, .. } | Reason::EqualPriorityHigherAddress { peer } => {
                Some(*peer)
            }
            _ => None,
        }
    }
}

impl Blocker {
    /// The FAULT reason this blocker gives.
    pub fn reason(self) -> Reason {
        match self {
            Blocker::NoSourceAddress => Reason::NoSourceAddress,
            Blocker::SendFailed => Reason::SendFailed,
            Blocker::NoQuorum => Reason::NoQuorum,
            Blocker::TrackFailed => Reason::TrackFailed,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("startup"),
            Reason::AddressOwner => f.write_str("address owner (priority 255)"),
            Reason::MasterDown => f.write_str("master down timer expired"),
            Reason::PriorityZeroFromMaster => f.write_str("master resigned (priority 0)"),
            Reason::HigherPriority { peer, priority } => {
                write!(f, "higher priority {priority} from {peer}")
            }
            Reason::EqualPriorityHigherAddress { peer } => {
                write!(f, "equal priority, higher address {peer}")
            }
            Reason::Preempt => f.write_str("preempting a lower-priority master"),
            Reason::LinkDown => f.write_str("link down"),
            Reason::LinkUp => f.write_str("link up"),
            Reason::NoSourceAddress => f.write_str("no usable source address on the interface"),
            Reason::SendFailed => f.write_str("sending adverts keeps failing"),
            Reason::NoQuorum => f.write_str("the cluster partition has no quorum"),
            Reason::TrackFailed => f.write_str("a tracked check failed"),
            Reason::CanAdvertise => f.write_str("able to advertise again"),
            Reason::Shutdown => f.write_str("shutdown"),
            Reason::HeldOut => {
                f.write_str("held out by the operator (standby, maintenance or switchover)")
            }
        }
    }
}

/// What a Backup heard last before its Master_Down timer was (re)armed or left running;
/// decides the [`Reason`] when the timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LastHeard {
    /// Nothing since entering BACKUP, or an accepted advert.
    Master,
    /// The master resigned with priority 0.
    Resignation,
    /// A lower-priority advert we discarded because we preempt.
    LowerPriority,
}

/// One VRRP virtual router instance.
#[derive(Debug, Clone)]
pub struct Instance {
    params: Params,
    state: State,
    primary: Option<IpAddr>,
    master_adver_interval_cs: u16,
    /// BACKUP: Master_Down_Timer; MASTER: Adver_Timer; otherwise `None`.
    timer: Option<Instant>,
    last_heard: LastHeard,
    /// When BACKUP was entered from INIT or FAULT (start of the preempt hold-off).
    started_backup_at: Option<Instant>,
    /// Current master as last heard by a Backup (address, priority).
    master: Option<(IpAddr, u8)>,
    announce: AnnounceSchedule,
    /// Graceful hand-over after a Shutdown as MASTER: the VIPs stay (so clients keep being
    /// answered) until a new master's advert is heard or this instant passes.
    release_deadline: Option<Instant>,
    /// When this MASTER last answered a lower-priority competing master.
    last_conflict_answer: Option<Instant>,
    /// Link state as last reported (Startup, LinkUp/LinkDown).
    link_down: bool,
    /// No usable source address (a blocker besides the link).
    no_source: bool,
    /// `quorum_gated` and no quorum.
    no_quorum: bool,
    /// A weight-0 track fails.
    track_failed: bool,
    /// Send-failed blocker: set while adverts failed persistently, with the instant of the
    /// next try; the wait after that doubles.
    send_retry_at: Option<Instant>,
    send_retry_backoff: Duration,
    /// Why the last transition happened (status).
    last_reason: Option<Reason>,
    /// See [`Input::HoldOut`].
    held_out: bool,
}

impl Instance {
    /// A new instance in INIT; nothing happens until [`Input::Startup`].
    pub fn new(params: Params) -> Self {
        let params = Params {
            priority: params.priority.max(1),
            advert_interval_cs: params.advert_interval_cs.max(1),
            ..params
        };
        Self {
            master_adver_interval_cs: params.advert_interval_cs,
            announce: AnnounceSchedule::new(params.announce),
            params,
            state: State::Initialize,
            primary: None,
            timer: None,
            last_heard: LastHeard::Master,
            started_backup_at: None,
            master: None,
            release_deadline: None,
            last_conflict_answer: None,
            link_down: false,
            no_source: false,
            no_quorum: false,
            track_failed: false,
            send_retry_at: None,
            last_reason: None,
            send_retry_backoff: SEND_RETRY_MIN,
            held_out: false,
        }
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Why the last transition happened (`None` before the first one).
    pub fn last_reason(&self) -> Option<Reason> {
        self.last_reason
    }

    /// A reload: the new priority, preemption and announcement schedule, applied in place
    /// (state, timers and the master followed are kept; a schedule in progress keeps running
    /// and the new one applies from the next mastership). Version, VRID and interval are the
    /// instance's identity: a reload that changes them is refused.
    pub fn reconfigure(&mut self, params: &Params) {
        self.params.priority = params.priority.max(1);
        self.params.preempt = params.preempt;
        self.params.preempt_delay = params.preempt_delay;
        self.params.announce = params.announce;
        if !self.announce.is_active() {
            self.announce = AnnounceSchedule::new(params.announce);
        }
    }

    /// Whether the operator holds this node out ([`Input::HoldOut`]).
    pub fn held_out(&self) -> bool {
        self.held_out
    }

    /// Our primary address as last given by [`Input::PrimaryAddress`].
    pub fn primary_address(&self) -> Option<IpAddr> {
        self.primary
    }

    /// The master a Backup currently follows (address, priority), from the last accepted advert.
    pub fn current_master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    /// Master_Adver_Interval in centiseconds (own interval unless learned, v3 only).
    pub fn master_adver_interval_cs(&self) -> u16 {
        self.master_adver_interval_cs
    }

    /// Own Advertisement_Interval.
    pub fn advert_interval(&self) -> Duration {
        centiseconds(u32::from(self.params.advert_interval_cs))
    }

    /// Current Skew_Time.
    pub fn skew_time(&self) -> Duration {
        let weight = 256 - u32::from(self.params.priority);
        match self.params.version {
            VrrpVersion::V3 => {
                centiseconds(weight * u32::from(self.master_adver_interval_cs) / 256)
            }
            VrrpVersion::V2 => Duration::from_micros(u64::from(weight) * 1_000_000 / 256),
        }
    }

    /// Current Master_Down_Interval.
    pub fn master_down_interval(&self) -> Duration {
        centiseconds(3 * u32::from(self.master_adver_interval_cs)) + self.skew_time()
    }

    /// The priority-ordered wait added to every Backup timer (see [`Params::priority_step`]).
    pub fn priority_offset(&self) -> Duration {
        let below = 256 - u32::from(self.params.priority);
        self.params.priority_step * (below * below) / 256
    }

    /// When a Backup's Master_Down timer armed now with `wait` fires.
    fn backup_deadline(&self, now: Instant, wait: Duration) -> Option<Instant> {
        now.checked_add(wait + self.priority_offset())
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.timer,
            self.announce.next_deadline(),
            self.release_deadline,
            self.send_retry_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// True while a stopped master still holds its VIPs, waiting for its successor.
    pub fn is_releasing(&self) -> bool {
        self.release_deadline.is_some()
    }

    /// Feeds one input. Timers are not fired here: call
    /// [`handle_timeout`](Self::handle_timeout) first if a deadline has passed.
    pub fn handle(&mut self, input: Input, now: Instant, out: &mut Vec<Action>) {
        match (input, self.state) {
            (Input::Startup { link_up }, State::Initialize) => {
                self.link_down = !link_up;
                self.start_or_fault(now, Reason::Startup, out)
            }
            (Input::Shutdown, _) => self.shutdown(now, out),
            (Input::HoldOut(on), _) => self.hold_out(on, now, out),
            // Our own advert, looped back: not a peer.
            (Input::Advert(advert), _) if Some(advert.src) == self.primary => {}
            (Input::Advert(advert), State::Initialize) if advert.priority > 0 => {
                self.successor_heard(now)
            }
            (Input::Advert(advert), State::Backup) => self.backup_advert(advert, now),
            (Input::Advert(advert), State::Master) => self.master_advert(advert, now, out),
            (Input::LinkDown, State::Backup | State::Master) => {
                self.link_down = true;
                self.enter_fault(Reason::LinkDown, out)
            }
            (Input::LinkUp, State::Fault) => {
                self.link_down = false;
                self.start_or_fault(now, Reason::LinkUp, out)
            }
            (Input::LinkDown, State::Initialize) => self.finish_release(out),
            (Input::LinkDown, _) => self.link_down = true,
            (Input::LinkUp, _) => self.link_down = false,
            (Input::PrimaryAddress(address), _) => self.primary = address,
            (Input::CannotAdvertise(blocker), state) => {
                self.set_blocker(blocker, true, now);
                if matches!(state, State::Backup | State::Master) {
                    self.enter_fault(blocker.reason(), out);
                }
            }
            (Input::CanAdvertise(blocker), state) => {
                if blocker == Blocker::SendFailed {
                    self.send_retry_backoff = SEND_RETRY_MIN;
                }
                let was = self.blocked_by(blocker);
                self.set_blocker(blocker, false, now);
                if was && state == State::Fault {
                    self.start_or_fault(now, Reason::CanAdvertise, out);
                }
            }
            (Input::SetPriority(priority), _) => self.set_priority(priority),
            // Startup when started, adverts in INIT/FAULT, link events that change nothing.
            _ => {}
        }
    }

    /// Fires every deadline `<= now` in deadline order (announcements due together are
    /// emitted together). Afterwards [`next_deadline`](Self::next_deadline) is `None` or
    /// later than `now`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.release_deadline.is_some_and(|t| t <= now) {
            self.finish_release(out);
        }
        if self.send_retry_at.is_some_and(|t| t <= now) {
            self.send_retry_at = None;
            if self.state == State::Fault {
                self.start_or_fault(now, Reason::CanAdvertise, out);
            }
        }
        loop {
            let timer = self.timer.filter(|t| *t <= now);
            let announce = self.announce.next_deadline().filter(|t| *t <= now);
            match (timer, announce) {
                (Some(t), Some(a)) if a < t => self.emit_announcements(now, out),
                (Some(t), _) => self.fire_timer(t, now, out),
                (None, Some(_)) => self.emit_announcements(now, out),
                (None, None) => return,
            }
        }
    }

    /// [`Input::SetPriority`]: the priority changes in place, nothing happens at once. A
    /// MASTER keeps advertising (with the new priority) until a higher-priority advert
    /// arrives, then steps down as usual; a BACKUP now above its master lets its Master_Down
    /// timer run out on the master's next advert and preempts (if it preempts). The new
    /// priority also sets Skew_Time from the next timer armed. 255 makes the instance the
    /// address owner only at its next start; 0 counts as 1.
    fn set_priority(&mut self, priority: u8) {
        self.params.priority = priority.max(1);
    }

    /// Whether `blocker` is active.
    fn blocked_by(&self, blocker: Blocker) -> bool {
        match blocker {
            Blocker::NoSourceAddress => self.no_source,
            Blocker::SendFailed => self.send_retry_at.is_some(),
            Blocker::NoQuorum => self.no_quorum,
            Blocker::TrackFailed => self.track_failed,
        }
    }

    fn set_blocker(&mut self, blocker: Blocker, on: bool, now: Instant) {
        match blocker {
            Blocker::NoSourceAddress => self.no_source = on,
            Blocker::NoQuorum => self.no_quorum = on,
            Blocker::TrackFailed => self.track_failed = on,
            Blocker::SendFailed if on => {
                if self.send_retry_at.is_none() {
                    self.send_retry_at = now.checked_add(self.send_retry_backoff);
                    self.send_retry_backoff = (self.send_retry_backoff * 2).min(SEND_RETRY_MAX);
                }
            }
            Blocker::SendFailed => self.send_retry_at = None,
        }
    }

    /// Why the instance must stay in FAULT, if it must.
    fn fault_reason(&self) -> Option<Reason> {
        if self.link_down {
            Some(Reason::LinkDown)
        } else if self.no_source {
            Some(Reason::NoSourceAddress)
        } else if self.no_quorum {
            Some(Reason::NoQuorum)
        } else if self.track_failed {
            Some(Reason::TrackFailed)
        } else if self.send_retry_at.is_some() {
            Some(Reason::SendFailed)
        } else {
            None
        }
    }

    /// Start (from INIT or FAULT) unless something still keeps the instance in FAULT.
    fn start_or_fault(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        match self.fault_reason() {
            Some(fault) if self.state != State::Fault => self.enter_fault(fault, out),
            Some(_) => {}
            None => self.start(now, reason, out),
        }
    }

    /// Startup (or link back): the address owner becomes MASTER, anyone else BACKUP.
    fn start(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        self.finish_release(out);
        if self.params.priority == OWNER_PRIORITY && !self.held_out {
            self.become_master(now, Reason::AddressOwner, out);
            return;
        }
        self.master_adver_interval_cs = self.params.advert_interval_cs;
        self.started_backup_at = Some(now);
        self.enter_backup(now, reason, out);
    }

    fn enter_backup(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        self.timer = if self.held_out {
            None
        } else {
            self.backup_deadline(now, self.master_down_interval())
        };
        self.last_heard = LastHeard::Master;
        self.transition(State::Backup, reason, out);
    }

    /// RFC order (advert, then gratuitous ARPs) except when the previous master is alive and
    /// still answering clients: a lower-priority master being preempted, or a master that
    /// resigned (priority 0) and keeps its VIPs until it hears its successor. That master
    /// drops its VIPs once it hears our advert, so the clients are re-pointed first (VIPs,
    /// announcements, then the advert) or they may lose packets in between. When the master
    /// is down, the advert goes first so that other backups stand down as early as possible.
    fn become_master(&mut self, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        let advert = Action::SendAdvert {
            priority: self.params.priority,
        };
        let master_alive = matches!(reason, Reason::Preempt | Reason::PriorityZeroFromMaster);
        if !master_alive {
            out.push(advert.clone());
        }
        out.push(Action::AddVips);
        self.announce.start(now);
        self.emit_announcements(now, out);
        if master_alive {
            out.push(advert);
        }
        self.timer = now.checked_add(self.advert_interval());
        self.master = None;
        self.started_backup_at = None;
        self.transition(State::Master, reason, out);
    }

    /// Master -> Backup on a better advert (RFC 5798 §6.4.3).
    ///
    /// Relevo also resigns on the wire with one priority-0 advert: when two masters meet
    /// (a split segment heals, two backups claimed at once), the survivor may have heard
    /// none of this router's adverts, and the clients this router attracted still send to its
    /// MAC. The survivor answers a resignation with an advert and a fresh burst of gratuitous
    /// ARPs / unsolicited NAs ([`Self::master_advert`]), which brings those clients back at
    /// once instead of when their neighbour entries age out. Backups that follow another
    /// master ignore it ([`Self::backup_advert`]).
    fn step_down(&mut self, advert: AdvertIn, now: Instant, reason: Reason, out: &mut Vec<Action>) {
        out.push(Action::RemoveVips);
        out.push(Action::SendAdvert { priority: 0 });
        self.announce.stop();
        self.follow(advert);
        self.enter_backup(now, reason, out);
    }

    fn enter_fault(&mut self, reason: Reason, out: &mut Vec<Action>) {
        self.finish_release(out);
        self.release_vips(out);
        self.cancel_timers();
        self.transition(State::Fault, reason, out);
    }

    /// Shutdown. A MASTER resigns with a priority-0 advert (its backups take over after
    /// Skew_Time) but keeps its VIPs until the successor's first advert arrives, bounded by
    /// four advert intervals (longer than any backup's Master_Down_Interval with our
    /// interval), so clients are answered throughout the hand-over.
    fn shutdown(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.state == State::Initialize {
            return;
        }
        if self.state == State::Master {
            out.push(Action::SendAdvert { priority: 0 });
            self.release_deadline =
                Some(now.checked_add(self.advert_interval() * 4).unwrap_or(now));
        }
        self.cancel_timers();
        self.transition(State::Initialize, Reason::Shutdown, out);
    }

    /// [`Input::HoldOut`]: resign (MASTER) or stop (BACKUP) the Master_Down timer; let go:
    /// the timer runs again from now, so a held-out node that hears nobody takes over after
    /// Master_Down_Interval, and one with a higher priority preempts as usual.
    fn hold_out(&mut self, on: bool, now: Instant, out: &mut Vec<Action>) {
        if self.held_out == on {
            return;
        }
        self.held_out = on;
        match (on, self.state) {
            (true, State::Master) => {
                out.push(Action::SendAdvert { priority: 0 });
                self.release_deadline =
                    Some(now.checked_add(self.advert_interval() * 4).unwrap_or(now));
                self.announce.stop();
                self.master = None;
                self.started_backup_at = None;
                self.timer = None;
                self.last_heard = LastHeard::Master;
                self.transition(State::Backup, Reason::HeldOut, out);
            }
            (true, State::Backup) => self.timer = None,
            (false, State::Backup) => {
                self.timer = self.backup_deadline(now, self.master_down_interval());
                self.last_heard = LastHeard::Master;
            }
            _ => {}
        }
    }

    /// The successor spoke: its gratuitous ARPs are on the wire, so the VIPs go after a short
    /// grace that lets requests already in flight to us be answered.
    fn successor_heard(&mut self, now: Instant) {
        if let Some(deadline) = self.release_deadline {
            let after_grace = now.checked_add(RELEASE_GRACE).unwrap_or(now);
            self.release_deadline = Some(deadline.min(after_grace));
        }
    }

    /// Ends a pending graceful hand-over: the VIPs go now.
    fn finish_release(&mut self, out: &mut Vec<Action>) {
        if self.release_deadline.take().is_some() {
            out.push(Action::RemoveVips);
        }
    }

    fn release_vips(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Master {
            out.push(Action::RemoveVips);
        }
    }

    fn cancel_timers(&mut self) {
        self.timer = None;
        self.announce.stop();
        self.master = None;
        self.started_backup_at = None;
    }

    fn transition(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.last_reason = Some(reason);
        out.push(Action::Transition { from, to, reason });
    }

    /// RFC 5798 §6.4.2 "If an ADVERTISEMENT is received" in BACKUP.
    fn backup_advert(&mut self, advert: AdvertIn, now: Instant) {
        if advert.priority > 0 {
            // A held-out master that resigned hands its VIPs over to whoever speaks now.
            self.successor_heard(now);
        }
        self.backup_advert_rules(advert, now);
        if self.held_out {
            self.timer = None;
        }
    }

    fn backup_advert_rules(&mut self, advert: AdvertIn, now: Instant) {
        let from_other = self.master.is_some_and(|(master, _)| master != advert.src);
        if advert.priority == 0 && from_other {
            // A router this backup does not follow resigned (a competing master stepping
            // down): the master it follows is alive, nothing to take over.
        } else if advert.priority == 0 {
            self.timer = self.backup_deadline(now, self.skew_time());
            self.last_heard = LastHeard::Resignation;
        } else if self.accepts_as_master(advert.priority, now) {
            self.follow(advert);
            self.timer = self.backup_deadline(now, self.master_down_interval());
            self.last_heard = LastHeard::Master;
        } else {
            // Preempting: let the Master_Down timer run out and take over then.
            self.last_heard = LastHeard::LowerPriority;
        }
    }

    fn accepts_as_master(&self, priority: u8, now: Instant) -> bool {
        let holding = self
            .started_backup_at
            .is_some_and(|since| now.saturating_duration_since(since) < self.params.preempt_delay);
        !self.params.preempt || priority >= self.params.priority || holding
    }

    /// Adopt the sender as our master: remember it and (v3) learn its interval.
    fn follow(&mut self, advert: AdvertIn) {
        self.master = Some((advert.src, advert.priority));
        if self.params.version == VrrpVersion::V3 {
            self.master_adver_interval_cs = advert.interval_cs.max(1);
        }
    }

    /// RFC 5798 §6.4.3 "If an ADVERTISEMENT is received" in MASTER.
    fn master_advert(&mut self, advert: AdvertIn, now: Instant, out: &mut Vec<Action>) {
        let own = self.params.priority;
        if advert.priority == 0 {
            // Another router resigned while this one is MASTER: it was a competing master,
            // whose clients come back with the re-announcement.
            self.answer_another_master(now, true, out);
        } else if advert.priority > own {
            let reason = Reason::HigherPriority {
                peer: advert.src,
                priority: advert.priority,
            };
            self.step_down(advert, now, reason, out);
        } else if advert.priority == own && self.peer_wins_tie(advert.src) {
            let reason = Reason::EqualPriorityHigherAddress { peer: advert.src };
            self.step_down(advert, now, reason, out);
        } else {
            self.answer_another_master(now, false, out);
        }
    }

    /// Another router claimed MASTER: it advertises a lower priority (e.g. two backups whose
    /// Skew_Time rounds to zero both took over; RFC 5798 only discards its advert), or it
    /// resigns with priority 0 (RFC 5798 §6.4.3: answer with an advert at once, which
    /// `advert_always` requests). Relevo answers at once, so a competitor steps down without
    /// waiting an interval, and re-announces the VIPs, since clients may have followed the
    /// other router's gratuitous ARPs. The re-announcement (and the answer to a lower
    /// priority) at most once per Master_Down_Interval, so a peer that never yields cannot
    /// cause an ARP storm.
    fn answer_another_master(&mut self, now: Instant, advert_always: bool, out: &mut Vec<Action>) {
        let announce = self.conflict_answer_allowed(now);
        if !announce && !advert_always {
            return;
        }
        out.push(Action::SendAdvert {
            priority: self.params.priority,
        });
        self.timer = now.checked_add(self.advert_interval());
        if announce {
            self.last_conflict_answer = Some(now);
            self.announce.start(now);
            self.emit_announcements(now, out);
        }
    }

    /// At most one re-announcement per Master_Down_Interval for competing masters, so a peer
    /// that never yields cannot cause an ARP storm.
    fn conflict_answer_allowed(&self, now: Instant) -> bool {
        self.last_conflict_answer
            .is_none_or(|at| now.saturating_duration_since(at) >= self.master_down_interval())
    }

    /// Equal priority: the higher primary address wins; an unknown own address (or one of
    /// the other family) counts as lowest.
    fn peer_wins_tie(&self, peer: IpAddr) -> bool {
        match self.primary.map(|own| compare_addresses(peer, own)) {
            Some(Some(order)) => order == Ordering::Greater,
            Some(None) | None => true,
        }
    }

    fn fire_timer(&mut self, deadline: Instant, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::Backup => {
                let reason = match self.last_heard {
                    LastHeard::Master => Reason::MasterDown,
                    LastHeard::Resignation => Reason::PriorityZeroFromMaster,
                    LastHeard::LowerPriority => Reason::Preempt,
                };
                self.become_master(now, reason, out);
            }
            State::Master => {
                out.push(Action::SendAdvert {
                    priority: self.params.priority,
                });
                self.timer = rearm(deadline, now, self.advert_interval());
            }
            State::Initialize | State::Fault => self.timer = None,
        }
    }

    fn emit_announcements(&mut self, now: Instant, out: &mut Vec<Action>) {
        let due = self.announce.poll(now);
        out.extend((0..due).map(|_| Action::Announce));
    }
}

/// Numeric order of two addresses of the same family; `None` across families.
fn compare_addresses(a: IpAddr, b: IpAddr) -> Option<Ordering> {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => Some(a.cmp(&b)),
        (IpAddr::V6(a), IpAddr::V6(b)) => Some(a.cmp(&b)),
        _ => None,
    }
}

fn centiseconds(cs: u32) -> Duration {
    Duration::from_millis(u64::from(cs) * 10)
}
