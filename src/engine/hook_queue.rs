//! Hook sequencing, sans-I/O: per owner (an instance or group index), hook invocations run one
//! at a time, in the order their transitions happened, each exactly once.
//!
//! The daemon [`push`](HookQueue::push)es one [`HookRequest`] per transition, asks
//! [`next_ready`](HookQueue::next_ready) for work whenever it can start a hook, and reports
//! [`finished`](HookQueue::finished) when the hook's process is gone. Owners never wait for one
//! another: a slow hook of one instance does not delay the hooks of another.

use std::collections::{BTreeMap, VecDeque};
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
}

/// Per-owner FIFO of pending requests plus whether that owner has a hook running.
#[derive(Debug, Default)]
struct OwnerQueue {
    /// Pending requests with their global push sequence number.
    pending: VecDeque<(u64, HookRequest)>,
    running: bool,
}

/// Sequencer of hook requests: at most one running hook per owner, FIFO within an owner.
#[derive(Debug, Default)]
pub struct HookQueue {
    owners: BTreeMap<usize, OwnerQueue>,
    /// Sequence number given to the next pushed request; orders starts across owners.
    next_seq: u64,
}

impl HookQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `req` behind every earlier request of the same owner.
    pub fn push(&mut self, req: HookRequest) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.owners
            .entry(req.owner)
            .or_default()
            .pending
            .push_back((seq, req));
    }

    /// Takes the next request that may start now: the oldest queued request among owners that
    /// have nothing running. Marks that owner as running until [`finished`](Self::finished).
    pub fn next_ready(&mut self) -> Option<HookRequest> {
        let owner = self
            .owners
            .iter()
            .filter(|(_, q)| !q.running)
            .filter_map(|(owner, q)| q.pending.front().map(|(seq, _)| (*seq, *owner)))
            .min()
            .map(|(_, owner)| owner)?;
        let queue = self.owners.get_mut(&owner)?;
        let (_, req) = queue.pending.pop_front()?;
        queue.running = true;
        Some(req)
    }

    /// Records that `owner`'s running hook has completed, so its next request may start.
    /// Calling this for an owner with nothing running has no effect.
    pub fn finished(&mut self, owner: usize) {
        if let Some(queue) = self.owners.get_mut(&owner) {
            queue.running = false;
            if queue.pending.is_empty() {
                self.owners.remove(&owner);
            }
        }
    }

    /// True when nothing is queued and nothing is running.
    pub fn is_idle(&self) -> bool {
        self.owners.is_empty()
    }

    /// Number of requests of `owner` waiting to start (the running one is not counted).
    pub fn pending(&self, owner: usize) -> usize {
        self.owners.get(&owner).map_or(0, |q| q.pending.len())
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
        }
    }

    #[test]
    fn one_owner_runs_strictly_in_order() {
        let mut q = HookQueue::new();
        q.push(req(0, "backup"));
        q.push(req(0, "master"));
        assert_eq!(q.next_ready().map(|r| r.event), Some("backup".into()));
        assert_eq!(q.next_ready(), None, "second hook must wait for the first");
        assert_eq!(q.pending(0), 1);
        q.finished(0);
        assert_eq!(q.next_ready().map(|r| r.event), Some("master".into()));
        q.finished(0);
        assert!(q.is_idle());
        assert_eq!(q.next_ready(), None);
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
    fn finished_without_running_is_harmless() {
        let mut q = HookQueue::new();
        q.finished(3);
        q.push(req(3, "fault"));
        q.push(req(3, "stop"));
        q.finished(3);
        assert_eq!(q.pending(3), 2, "spurious finished must not drop requests");
        assert_eq!(q.next_ready().map(|r| r.event), Some("fault".into()));
    }
}
