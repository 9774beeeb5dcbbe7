//! Deadlines of the event loop: one timerfd (nanosecond precision, unlike epoll's millisecond
//! timeout) armed to the earliest deadline of a lazily-invalidated min-heap.
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// What a deadline belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerOwner {
    /// A VRRP instance, by index.
    Instance(usize),
    /// The hook runner (timeouts and kill grace periods).
    Hooks,
    /// The VIP table (lease refreshes, retries, reconciliation).
    Vips,
    /// Cluster mode: heartbeats, link health, group waits.
    Cluster,
    /// Virtual-MAC interfaces still missing (creation retried every second).
    VirtualMacs,
    /// The netlink layer: a resync's timeout or back-off, or sockets left partly read.
    Netlink,
    /// The control socket (connection deadlines).
    Control,
    /// `[[track]]` checks that are due.
    Tracks,
    /// The next WATCHDOG=1 to systemd (see `sd_notify`).
    Watchdog,
    /// The next `[metrics]` snapshot (see `metrics`).
    Metrics,
    /// The daemon itself (e.g. the shutdown deadline).
    Daemon,
}

/// A min-heap of `(deadline, owner)` where an owner has at most one live deadline: scheduling
/// again replaces the previous one, and stale heap entries are skipped when popped.
#[derive(Debug, Default)]
pub struct DeadlineHeap {
    heap: BinaryHeap<Reverse<(Instant, TimerOwner)>>,
    live: std::collections::HashMap<TimerOwner, Instant>,
}

impl DeadlineHeap {
    /// Sets (or clears, with `None`) the single deadline of `owner`.
    pub fn schedule(&mut self, owner: TimerOwner, deadline: Option<Instant>) {
        match deadline {
            Some(at) => {
                if self.live.insert(owner, at) != Some(at) {
                    self.heap.push(Reverse((at, owner)));
                }
            }
            None => {
                self.live.remove(&owner);
            }
        }
        self.compact_if_bloated();
    }

    /// The earliest live deadline.
    pub fn peek(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns one owner whose deadline is `<= now`, with that deadline.
    pub fn pop_due(&mut self, now: Instant) -> Option<(TimerOwner, Instant)> {
        self.drop_stale();
        let Reverse((at, owner)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.live.remove(&owner);
        Some((owner, at))
    }

    fn drop_stale(&mut self) {
        while let Some(Reverse((at, owner))) = self.heap.peek() {
            if self.live.get(owner) == Some(at) {
                return;
            }
            self.heap.pop();
        }
    }

    fn compact_if_bloated(&mut self) {
        if self.heap.len() > 64 && self.heap.len() > 4 * self.live.len() {
            self.heap = self.live.iter().map(|(o, at)| Reverse((*at, *o))).collect();
        }
    }
}

/// A non-blocking CLOCK_MONOTONIC timerfd, readable when the armed deadline has passed.
pub struct LoopTimer {
    fd: TimerFd,
    armed: Option<Instant>,
}

impl LoopTimer {
    pub fn new() -> std::io::Result<Self> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        Ok(LoopTimer { fd, armed: None })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }

    /// Arms the timer for `deadline` (relative to `now`); a deadline already due fires at once.
    pub fn arm(&mut self, deadline: Option<Instant>, now: Instant) -> std::io::Result<()> {
        if deadline == self.armed {
            return Ok(());
        }
        match deadline {
            None => self.fd.unset()?,
            Some(at) => {
                // A zero expiry would disarm the timerfd: use the smallest positive one instead.
                let wait = at
                    .saturating_duration_since(now)
                    .max(Duration::from_nanos(1));
                self.fd.set(
                    Expiration::OneShot(TimeSpec::from_duration(wait)),
                    TimerSetTimeFlags::empty(),
                )?;
            }
        }
        self.armed = deadline;
        Ok(())
    }

    /// Consumes the expiry after a readable event (the timer is then disarmed).
    pub fn acknowledge(&mut self) {
        // Non-blocking read: EAGAIN when it has not fired, which is fine.
        let _ = self.fd.wait();
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_keeps_one_deadline_per_owner_and_pops_in_order() {
        let t0 = Instant::now();
        let mut h = DeadlineHeap::default();
        h.schedule(
            TimerOwner::Instance(1),
            Some(t0 + Duration::from_millis(30)),
        );
        h.schedule(
            TimerOwner::Instance(2),
            Some(t0 + Duration::from_millis(10)),
        );
        h.schedule(TimerOwner::Instance(1), Some(t0 + Duration::from_millis(5)));
        h.schedule(TimerOwner::Hooks, Some(t0 + Duration::from_millis(20)));
        h.schedule(TimerOwner::Hooks, None);
        assert_eq!(h.peek(), Some(t0 + Duration::from_millis(5)));
        assert_eq!(h.pop_due(t0), None);
        let now = t0 + Duration::from_millis(40);
        assert_eq!(
            h.pop_due(now),
            Some((TimerOwner::Instance(1), t0 + Duration::from_millis(5)))
        );
        assert_eq!(
            h.pop_due(now),
            Some((TimerOwner::Instance(2), t0 + Duration::from_millis(10)))
        );
        assert_eq!(h.pop_due(now), None);
        assert_eq!(h.peek(), None);
    }

    #[test]
    fn heap_stays_small_under_constant_rescheduling() {
        let t0 = Instant::now();
        let mut h = DeadlineHeap::default();
        for i in 0..10_000u64 {
            h.schedule(
                TimerOwner::Instance((i % 3) as usize),
                Some(t0 + Duration::from_micros(i)),
            );
        }
        assert!(h.heap.len() <= 64 * 4, "heap grew to {}", h.heap.len());
        assert_eq!(h.peek(), Some(t0 + Duration::from_micros(9_997)));
    }
}
