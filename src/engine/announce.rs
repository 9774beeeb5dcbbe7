//! Announcement schedule of a MASTER: when to send gratuitous ARPs / unsolicited neighbour
//! advertisements for the virtual IPs. Pure timing logic, driven by `now`; the VRRP instance
//! turns every due slot into one `Action::Announce`.
//!
//! Shape of one schedule started at `t`:
//! - first burst: `repeat` announcements at `t`, `t + interval`, … `t + (repeat-1)·interval`;
//! - second burst (only if `delay > 0`): `repeat` announcements from `t + delay`, same spacing;
//! - refresh (only if `refresh` is `Some` and non-zero): one announcement every `refresh`,
//!   the first one `refresh` after the last burst announcement. A refresh that fell behind
//!   (the caller polled late) fires once and re-arms from `now`, it never catches up in a flood.
use std::time::{Duration, Instant};

/// Operator knobs of the announcement schedule (keepalived: `garp_master_repeat`,
/// `garp_interval`, `garp_master_delay`, `garp_master_refresh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceParams {
    /// Announcements per burst; 0 is treated as 1.
    pub repeat: u32,
    /// Spacing between the announcements of one burst (0 = all at once).
    pub interval: Duration,
    /// Start of the second burst after becoming MASTER; `Duration::ZERO` = no second burst.
    pub delay: Duration,
    /// Periodic refresh after the bursts; `None` or zero = no refresh.
    pub refresh: Option<Duration>,
}

impl Default for AnnounceParams {
    /// keepalived's defaults: 5 at once, a second burst of 5 after 5 s, no refresh.
    fn default() -> Self {
        Self {
            repeat: 5,
            interval: Duration::ZERO,
            delay: Duration::from_secs(5),
            refresh: None,
        }
    }
}

/// One burst in progress: the next slot and how many slots are left after it.
#[derive(Debug, Clone, Copy, Default)]
struct Burst {
    /// `None` = finished or never started.
    next: Option<Instant>,
    remaining: u32,
}

impl Burst {
    fn starting(at: Option<Instant>, count: u32) -> Self {
        Self {
            next: at,
            remaining: count.saturating_sub(1),
        }
    }

    /// Consumes every slot due at `now`, returns how many.
    fn poll(&mut self, now: Instant, interval: Duration) -> u32 {
        let mut due = 0;
        while let Some(slot) = self.next.filter(|slot| *slot <= now) {
            due += 1;
            self.next = if self.remaining == 0 {
                None
            } else {
                self.remaining -= 1;
                slot.checked_add(interval)
            };
        }
        due
    }
}

/// The announcement timer of one VRRP instance (or resource group) while it owns its VIPs.
#[derive(Debug, Clone)]
pub struct AnnounceSchedule {
    params: AnnounceParams,
    bursts: [Burst; 2],
    refresh_next: Option<Instant>,
}

impl AnnounceSchedule {
    /// An idle schedule (nothing due until [`start`](Self::start)).
    pub fn new(params: AnnounceParams) -> Self {
        let params = AnnounceParams {
            repeat: params.repeat.max(1),
            refresh: params.refresh.filter(|r| !r.is_zero()),
            ..params
        };
        Self {
            params,
            bursts: [Burst::default(); 2],
            refresh_next: None,
        }
    }

    /// The (normalised) parameters.
    pub fn params(&self) -> &AnnounceParams {
        &self.params
    }

    /// (Re)starts the schedule at `now`; the first announcement is due at `now`, so a
    /// [`poll`](Self::poll) at `now` returns at least 1.
    pub fn start(&mut self, now: Instant) {
        let p = self.params;
        let second = if p.delay.is_zero() {
            None
        } else {
            now.checked_add(p.delay)
        };
        self.bursts = [
            Burst::starting(Some(now), p.repeat),
            Burst::starting(second, p.repeat),
        ];
        self.refresh_next = p
            .refresh
            .and_then(|refresh| self.last_burst_slot(now, second)?.checked_add(refresh));
    }

    /// Time of the last announcement of the bursts started at `now`.
    fn last_burst_slot(&self, now: Instant, second: Option<Instant>) -> Option<Instant> {
        let span = self.params.interval.checked_mul(self.params.repeat - 1)?;
        let first_end = now.checked_add(span)?;
        match second {
            Some(start) => Some(first_end.max(start.checked_add(span)?)),
            None => Some(first_end),
        }
    }

    /// Cancels everything; nothing is due until the next [`start`](Self::start).
    pub fn stop(&mut self) {
        self.bursts = [Burst::default(); 2];
        self.refresh_next = None;
    }

    /// True while anything remains scheduled.
    pub fn is_active(&self) -> bool {
        self.next_deadline().is_some()
    }

    /// The earliest pending announcement, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let bursts = self.bursts.iter().filter_map(|burst| burst.next);
        bursts.chain(self.refresh_next).min()
    }

    /// Number of announcements due at `now` (each consumed); afterwards
    /// [`next_deadline`](Self::next_deadline) is `None` or later than `now`.
    pub fn poll(&mut self, now: Instant) -> u32 {
        let interval = self.params.interval;
        let mut due = 0;
        for burst in &mut self.bursts {
            due += burst.poll(now, interval);
        }
        if let (Some(next), Some(refresh)) = (self.refresh_next, self.params.refresh) {
            if next <= now {
                due += 1;
                self.refresh_next = rearm(next, now, refresh);
            }
        }
        due
    }
}

/// Next slot of a periodic timer that fired at `deadline`: `deadline + period` keeps the
/// cadence free of drift; if that is already not in the future (the caller fell more than a
/// period behind), restart from `now`. `None` only on `Instant` overflow.
pub(crate) fn rearm(deadline: Instant, now: Instant, period: Duration) -> Option<Instant> {
    match deadline.checked_add(period) {
        Some(next) if next > now => Some(next),
        _ => now.checked_add(period),
    }
}
