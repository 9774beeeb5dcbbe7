//! Hook sequencing, sans-I/O: per owner (an instance or group index), at most one hook runs at
//! a time, and a hook never starts for a state its owner has already left.
//!
//! The daemon [`push`](HookQueue::push)es one [`HookRequest`] per transition, asks
//! [`next_ready`](HookQueue::next_ready) for work whenever it can start a hook, and reports
//! [`finished`](HookQueue::finished) when the hook's process is gone. Owners never wait for one
//! another: a slow hook of one instance does not delay the hooks of another.
//!
//! Coalescing: each owner has at most one *pending* (pushed, not yet started) request. A newer
//! push replaces it, and the newer request's [`skipped`](HookRequest::skipped) grows by the
//! replaced request's own count plus one, so every push is accounted for exactly once: either
//! its hook is started, or it is counted in the `skipped` of the request that is started
//! instead. A running hook is never interrupted; the newest state's hook runs after it. So
//! after MASTER, BACKUP while a hook runs, the master hook is dropped (skipped 1) and only the
//! backup hook runs: no master hook after the node went back to BACKUP.

use std::collections::BTreeMap;
use std::time::Duration;

/// One hook invocation, created by the daemon for one state transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRequest {
    /// Index of the instance (or group) whose transition this is; the sequencing key.
    pub owner: usize,
    /// The event name: `"master"`, `"backup"`, `"fault"` or `"stop"` for VRRP instances.
    pub event: String,
    /// Program and arguments, executed directly (no shell). `argv[0]` is the path.
    pub argv: Vec<String>,
    /// Extra environment for the hook (`RELEVO_*`), applied over the daemon's minimal env.
    pub env: Vec<(String, String)>,
    /// How long the hook may run before its process group is sent SIGTERM.
    pub timeout: Duration,
    /// Earlier transitions of the same owner whose pending hooks this request replaced (0 when
    /// pushed; maintained by [`HookQueue::push`]). The hook gets it as `RELEVO_SKIPPED`.
    pub skipped: u64,
}

impl HookRequest {
    /// A request as pushed: nothing skipped yet.
    pub fn new(
        owner: usize,
        event: &str,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        timeout: Duration,
    ) -> Self {
        HookRequest {
            owner,
            event: event.to_string(),
            argv,
            env,
            timeout,
            skipped: 0,
        }
    }
}

/// One owner's pending request (if any) plus whether that owner has a hook running.
#[derive(Debug, Default)]
struct OwnerQueue {
    /// The newest not-yet-started request, with the sequence number of the push that first
    /// made this owner's pending slot non-empty (its place in line across owners).
    pending: Option<(u64, HookRequest)>,
    running: bool,
}

/// Sequencer of hook requests: at most one running and one pending hook per owner.
#[derive(Debug, Default)]
pub struct HookQueue {
    owners: BTreeMap<usize, OwnerQueue>,
    /// Sequence number given to the next push that fills an empty pending slot; orders starts
    /// across owners.
    next_seq: u64,
}

impl HookQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `req` behind `req.owner`'s running hook, replacing that owner's pending request
    /// if there is one (its transition is then counted in `req.skipped`). A replaced request
    /// keeps its place in line across owners: a flapping owner is not pushed back behind the
    /// others.
    pub fn push(&mut self, mut req: HookRequest) {
        let queue = self.owners.entry(req.owner).or_default();
        let seq = match queue.pending.take() {
            Some((seq, replaced)) => {
                req.skipped = req
                    .skipped
                    .saturating_add(replaced.skipped)
                    .saturating_add(1);
                seq
            }
            None => {
                let seq = self.next_seq;
                self.next_seq = self.next_seq.wrapping_add(1);
                seq
            }
        };
        queue.pending = Some((seq, req));
    }

    /// Takes the next request that may start now: among owners that have nothing running, the
    /// pending request that has waited longest. Marks that owner as running until
    /// [`finished`](Self::finished). The request is the newest of its owner, with
    /// [`skipped`](HookRequest::skipped) counting the transitions it replaced.
    pub fn next_ready(&mut self) -> Option<HookRequest> {
        let owner = self
            .owners
            .iter()
            .filter(|(_, q)| !q.running)
            .filter_map(|(owner, q)| q.pending.as_ref().map(|(seq, _)| (*seq, *owner)))
            .min()
            .map(|(_, owner)| owner)?;
        let queue = self.owners.get_mut(&owner)?;
        let (_, req) = queue.pending.take()?;
        queue.running = true;
        Some(req)
    }

    /// Records that `owner`'s running hook has completed, so its pending request may start.
    /// Calling this for an owner with nothing running has no effect.
    pub fn finished(&mut self, owner: usize) {
        if let Some(queue) = self.owners.get_mut(&owner) {
            queue.running = false;
            if queue.pending.is_none() {
                self.owners.remove(&owner);
            }
        }
    }

    /// True when nothing is queued and nothing is running.
    pub fn is_idle(&self) -> bool {
        self.owners.is_empty()
    }

    /// Number of requests of `owner` waiting to start (0 or 1: pending requests coalesce; the
    /// running one is not counted).
    pub fn pending(&self, owner: usize) -> usize {
        self.owners
            .get(&owner)
            .map_or(0, |q| usize::from(q.pending.is_some()))
    }

    /// True while `owner` has a hook handed out by [`next_ready`](Self::next_ready) and not yet
    /// [`finished`](Self::finished).
    pub fn is_running(&self, owner: usize) -> bool {
        self.owners.get(&owner).is_some_and(|q| q.running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(owner: usize, event: &str) -> HookRequest {
        HookRequest {
            owner,
            event: event.to_string(),
            argv: vec!["/bin/true".to_string()],
            env: Vec::new(),
            timeout: Duration::from_secs(1),
            skipped: 0,
        }
    }

    fn started(q: &mut HookQueue) -> Option<(usize, String, u64)> {
        q.next_ready().map(|r| (r.owner, r.event, r.skipped))
    }

    #[test]
    fn one_owner_runs_one_at_a_time() {
        let mut q = HookQueue::new();
        q.push(req(0, "backup"));
        assert_eq!(started(&mut q), Some((0, "backup".into(), 0)));
        q.push(req(0, "master"));
        assert_eq!(q.next_ready(), None, "second hook must wait for the first");
        assert_eq!(q.pending(0), 1);
        q.finished(0);
        assert_eq!(started(&mut q), Some((0, "master".into(), 0)));
        q.finished(0);
        assert!(q.is_idle());
        assert_eq!(q.next_ready(), None);
    }

    #[test]
    fn no_master_hook_after_the_node_went_back_to_backup() {
        let mut q = HookQueue::new();
        q.push(req(0, "backup"));
        assert_eq!(started(&mut q), Some((0, "backup".into(), 0)));
        // While the backup hook runs: MASTER, then BACKUP again.
        q.push(req(0, "master"));
        q.push(req(0, "backup"));
        assert_eq!(q.pending(0), 1, "pending requests coalesce");
        assert_eq!(q.next_ready(), None, "the running hook is not interrupted");
        q.finished(0);
        assert_eq!(started(&mut q), Some((0, "backup".into(), 1)));
        q.finished(0);
        assert!(q.is_idle());
    }

    #[test]
    fn skipped_accumulates_across_repeated_coalescing() {
        let mut q = HookQueue::new();
        q.push(req(1, "fault"));
        assert!(q.next_ready().is_some());
        for event in ["backup", "master", "backup", "master", "fault"] {
            q.push(req(1, event));
        }
        q.finished(1);
        assert_eq!(started(&mut q), Some((1, "fault".into(), 4)));
        // The count starts again after a hook started.
        q.push(req(1, "backup"));
        q.finished(1);
        assert_eq!(started(&mut q), Some((1, "backup".into(), 0)));
    }

    #[test]
    fn owners_do_not_wait_for_each_other_and_start_in_push_order() {
        let mut q = HookQueue::new();
        q.push(req(7, "master"));
        q.push(req(2, "backup"));
        assert_eq!(q.next_ready().map(|r| r.owner), Some(7));
        assert_eq!(q.next_ready().map(|r| r.owner), Some(2));
        assert!(q.is_running(7) && q.is_running(2));
        assert!(!q.is_idle());
    }

    #[test]
    fn a_replaced_request_keeps_its_place_in_line() {
        let mut q = HookQueue::new();
        q.push(req(5, "backup"));
        q.push(req(3, "backup"));
        q.push(req(5, "master"));
        assert_eq!(started(&mut q), Some((5, "master".into(), 1)));
        assert_eq!(started(&mut q), Some((3, "backup".into(), 0)));
    }

    #[test]
    fn finished_without_running_is_harmless() {
        let mut q = HookQueue::new();
        q.finished(3);
        q.push(req(3, "fault"));
        q.push(req(3, "stop"));
        q.finished(3);
        assert_eq!(
            q.pending(3),
            1,
            "spurious finished must not drop the request"
        );
        assert_eq!(started(&mut q), Some((3, "stop".into(), 1)));
    }
}
