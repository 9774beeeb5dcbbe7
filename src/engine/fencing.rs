//! Fencing decisions, sans-I/O: which dead peers must be powered off before a group they may
//! have held is taken over, when this node fences one (after its `fence_delay`), retries with
//! backoff after a failed fence, and which life of a fenced peer may never speak again.
//!
//! A [`Fencer`] is told when a fenceable peer is lost while it may have held a group
//! ([`Fencer::peer_lost`]); from then on that peer **blocks the takeover** of those groups
//! ([`Fencer::blocks_takeover`]) on this node until a fence of it is confirmed here, or it comes
//! back as a new incarnation (it rebooted). The node that is to acquire such a group takes the
//! fence on ([`Fencer::take_on`]); the other survivors only wait, so exactly one node fences
//! (if that one dies too, the next owner-to-be takes it on and fences again: powering off a
//! node that is off is confirmed at once). The daemon runs the device off the loop and reports
//! with [`Fencer::fence_result`]. A failed fence is retried after a backoff that doubles up to
//! [`FenceParams::retry_max`]; the groups stay down meanwhile. A heartbeat of the fenced life
//! (its incarnation) is refused ([`Fencer::accepts`]): a node that was powered off comes back
//! only as a new incarnation.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How this node fences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceParams {
    /// This node's `fence_delay`: it waits this long before it fences (in a two-node race the
    /// preferred node waits less and wins).
    pub delay: Duration,
    /// Wait before the first retry after a failed fence; doubles with every failure.
    pub retry_min: Duration,
    /// Longest wait between two attempts.
    pub retry_max: Duration,
}

/// Where the fencing of one peer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceState {
    /// Lost while it may have held a group; nobody here fences it (yet).
    Needed,
    /// This node will fence it at `until` (its `fence_delay`).
    Delayed { until: Instant },
    /// Attempt `attempt` (from 1) is running.
    Running { attempt: u32 },
    /// Attempt `attempt` failed; the next one starts at `retry_at`.
    Failed { attempt: u32, retry_at: Instant },
    /// Powered off, confirmed by its device.
    Fenced,
}

impl FenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            FenceState::Needed => "needed",
            FenceState::Delayed { .. } => "delayed",
            FenceState::Running { .. } => "fencing",
            FenceState::Failed { .. } => "failed",
            FenceState::Fenced => "fenced",
        }
    }
}

/// What the daemon does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceAction {
    /// Run the peer's fence device (the `fencing` event).
    Start { peer: u8, attempt: u32 },
    /// The fence of `peer` is confirmed (the `fenced` event): its groups may be taken over.
    Fenced { peer: u8 },
    /// Attempt `attempt` failed (the `fence-failed` event); the next starts in `retry_in`.
    Failed {
        peer: u8,
        attempt: u32,
        retry_in: Duration,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    state: FenceState,
    /// The life that was lost: its heartbeats are refused.
    incarnation: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Fencer {
    params: FenceParams,
    peers: BTreeMap<u8, Entry>,
}

impl Fencer {
    pub fn new(params: FenceParams) -> Self {
        Fencer {
            params,
            peers: BTreeMap::new(),
        }
    }

    /// A fenceable peer (life `incarnation`) was declared dead while it may have held a group.
    pub fn peer_lost(&mut self, peer: u8, incarnation: u64) {
        let entry = self.peers.entry(peer).or_insert(Entry {
            state: FenceState::Needed,
            incarnation,
        });
        if entry.incarnation != incarnation {
            *entry = Entry {
                state: FenceState::Needed,
                incarnation,
            };
        }
    }

    /// This node is to acquire a group `peer` may have held: it fences `peer` (after its
    /// `fence_delay`). Nothing happens when a fence is already under way or done.
    pub fn take_on(&mut self, peer: u8, now: Instant, out: &mut Vec<FenceAction>) {
        let delay = self.params.delay;
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        if entry.state != FenceState::Needed {
            return;
        }
        if delay.is_zero() {
            entry.state = FenceState::Running { attempt: 1 };
            out.push(FenceAction::Start { peer, attempt: 1 });
        } else {
            entry.state = FenceState::Delayed { until: now + delay };
        }
    }

    /// The device reported on the running attempt for `peer`.
    pub fn fence_result(&mut self, peer: u8, ok: bool, now: Instant, out: &mut Vec<FenceAction>) {
        let params = &self.params;
        let Some(entry) = self.peers.get_mut(&peer) else {
            return;
        };
        let FenceState::Running { attempt } = entry.state else {
            return;
        };
        if ok {
            entry.state = FenceState::Fenced;
            out.push(FenceAction::Fenced { peer });
            return;
        }
        let retry_in = backoff(params, attempt);
        entry.state = FenceState::Failed {
            attempt,
            retry_at: now + retry_in,
        };
        out.push(FenceAction::Failed {
            peer,
            attempt,
            retry_in,
        });
    }

    /// Delays and retry waits that ended.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<FenceAction>) {
        for (&peer, entry) in self.peers.iter_mut() {
            let attempt = match entry.state {
                FenceState::Delayed { until } if now >= until => 1,
                FenceState::Failed { attempt, retry_at } if now >= retry_at => attempt + 1,
                _ => continue,
            };
            entry.state = FenceState::Running { attempt };
            out.push(FenceAction::Start { peer, attempt });
        }
    }

    /// When [`Fencer::handle_timeout`] must run.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter_map(|e| match e.state {
                FenceState::Delayed { until } => Some(until),
                FenceState::Failed { retry_at, .. } => Some(retry_at),
                _ => None,
            })
            .min()
    }

    /// Whether a heartbeat of `peer`'s life `incarnation` may be heard: not from a life that
    /// was lost and is being, or was, fenced. A new life ends the fencing of the old one.
    pub fn accepts(&mut self, peer: u8, incarnation: u64) -> bool {
        // The same life is refused while its device runs and once it was fenced; before that
        // it is simply back (a healed partition): its fencing is called off. A new life (even
        // while a device runs: the old one is gone either way, and the attempt's result is
        // then ignored) ends the fencing of the old one.
        match self.peers.get(&peer) {
            Some(entry)
                if entry.incarnation == incarnation
                    && matches!(entry.state, FenceState::Running { .. } | FenceState::Fenced) =>
            {
                false
            }
            Some(_) => {
                self.peers.remove(&peer);
                true
            }
            None => true,
        }
    }

    /// `peer` is in this node's partition again, known through a third node: if it was
    /// fenced, that node hears a life the fence may not have covered, and this node forgets
    /// the fence (when it is lost again it must be fenced again).
    pub fn seen_in_partition(&mut self, peer: u8) {
        if self.state(peer) == Some(FenceState::Fenced) {
            self.peers.remove(&peer);
        }
    }

    /// Whether `peer` keeps the groups it may have held from being taken over here: lost and
    /// not (yet) confirmed fenced.
    pub fn blocks_takeover(&self, peer: u8) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|e| e.state != FenceState::Fenced)
    }

    /// Whether a fence still blocks the takeover of a group whose lost holders are `lost`
    /// ([`crate::engine::group::ClusterView::fence_pending`]).
    pub fn pending_for(&self, lost: &[u8]) -> bool {
        lost.iter().any(|&p| self.blocks_takeover(p))
    }

    /// The peers confirmed fenced ([`crate::engine::group::ClusterView::fenced`]).
    pub fn fenced(&self) -> Vec<u8> {
        self.peers
            .iter()
            .filter(|(_, e)| e.state == FenceState::Fenced)
            .map(|(&p, _)| p)
            .collect()
    }

    /// Where the fencing of `peer` stands, if it was lost.
    pub fn state(&self, peer: u8) -> Option<FenceState> {
        self.peers.get(&peer).map(|e| e.state)
    }
}

/// The wait after failed attempt `attempt`: `retry_min` doubled per earlier failure, at most
/// `retry_max`.
fn backoff(params: &FenceParams, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    params
        .retry_min
        .saturating_mul(1 << doublings)
        .min(params.retry_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn params(delay: u64) -> FenceParams {
        FenceParams {
            delay: ms(delay),
            retry_min: ms(100),
            retry_max: ms(350),
        }
    }

    #[test]
    fn a_lost_peer_blocks_takeover_until_its_fence_is_confirmed() {
        let t0 = Instant::now();
        let mut f = Fencer::new(params(0));
        let mut out = Vec::new();
        assert!(!f.blocks_takeover(2));
        f.peer_lost(2, 7);
        assert!(f.blocks_takeover(2));
        f.take_on(2, t0, &mut out);
        assert_eq!(
            out,
            [FenceAction::Start {
                peer: 2,
                attempt: 1
            }]
        );
        f.take_on(2, t0, &mut out);
        assert_eq!(out.len(), 1, "one fence at a time");
        assert!(f.blocks_takeover(2));
        out.clear();
        f.fence_result(2, true, t0 + ms(50), &mut out);
        assert_eq!(out, [FenceAction::Fenced { peer: 2 }]);
        assert!(!f.blocks_takeover(2));
        assert_eq!(f.state(2), Some(FenceState::Fenced));
    }

    #[test]
    fn failed_fences_are_retried_with_a_doubling_capped_backoff() {
        let t0 = Instant::now();
        let mut f = Fencer::new(params(0));
        let mut out = Vec::new();
        f.peer_lost(2, 7);
        f.take_on(2, t0, &mut out);
        let mut now = t0;
        for (attempt, wait) in [(1, 100), (2, 200), (3, 350), (4, 350)] {
            out.clear();
            f.fence_result(2, false, now, &mut out);
            assert_eq!(
                out,
                [FenceAction::Failed {
                    peer: 2,
                    attempt,
                    retry_in: ms(wait)
                }]
            );
            assert!(f.blocks_takeover(2), "the groups stay down");
            assert_eq!(f.next_deadline(), Some(now + ms(wait)));
            out.clear();
            f.handle_timeout(now + ms(wait - 1), &mut out);
            assert!(out.is_empty());
            now += ms(wait);
            f.handle_timeout(now, &mut out);
            assert_eq!(
                out,
                [FenceAction::Start {
                    peer: 2,
                    attempt: attempt + 1
                }]
            );
        }
    }

    #[test]
    fn the_fence_delay_postpones_the_first_attempt() {
        let t0 = Instant::now();
        let mut f = Fencer::new(params(500));
        let mut out = Vec::new();
        f.peer_lost(1, 3);
        f.take_on(1, t0, &mut out);
        assert!(out.is_empty());
        assert_eq!(f.next_deadline(), Some(t0 + ms(500)));
        f.handle_timeout(t0 + ms(500), &mut out);
        assert_eq!(
            out,
            [FenceAction::Start {
                peer: 1,
                attempt: 1
            }]
        );
    }

    #[test]
    fn the_fenced_life_is_refused_and_a_new_one_ends_the_fencing() {
        let t0 = Instant::now();
        let mut f = Fencer::new(params(0));
        let mut out = Vec::new();
        f.peer_lost(2, 7);
        f.take_on(2, t0, &mut out);
        f.fence_result(2, true, t0, &mut out);
        assert!(!f.accepts(2, 7), "the powered-off life");
        assert_eq!(f.state(2), Some(FenceState::Fenced));
        assert!(f.accepts(2, 8), "rebooted");
        assert_eq!(f.state(2), None);
        assert!(!f.blocks_takeover(2));
        // Lost again with its new life: a new fence is needed.
        f.peer_lost(2, 8);
        assert!(f.blocks_takeover(2));
    }

    #[test]
    fn a_lost_life_heard_again_before_any_fence_is_simply_back() {
        let t0 = Instant::now();
        let mut f = Fencer::new(params(500));
        let mut out = Vec::new();
        f.peer_lost(2, 7);
        assert!(f.accepts(2, 7), "nobody fences it yet: a healed partition");
        assert!(!f.blocks_takeover(2));
        f.peer_lost(2, 7);
        f.take_on(2, t0, &mut out);
        assert!(f.accepts(2, 7), "still within the fence delay");
        f.peer_lost(2, 7);
        f.take_on(2, t0, &mut out);
        f.handle_timeout(t0 + ms(500), &mut out);
        assert!(!f.accepts(2, 7), "its device runs");
    }

    #[test]
    fn a_result_without_a_running_attempt_changes_nothing() {
        let t0 = Instant::now();
        let mut f = Fencer::new(params(0));
        let mut out = Vec::new();
        f.fence_result(2, true, t0, &mut out);
        f.peer_lost(2, 7);
        f.fence_result(2, true, t0, &mut out);
        assert!(out.is_empty());
        assert!(f.blocks_takeover(2), "only a fence this node ran counts");
    }
}
