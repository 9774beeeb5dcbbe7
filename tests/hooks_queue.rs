//! HookQueue sequencing under interleaved pushes and arbitrary completion orders: per owner
//! strictly sequential and in push order, every request handed out exactly once.

use std::collections::BTreeSet;
use std::time::Duration;

use relevo::engine::hook_queue::{HookQueue, HookRequest};

fn req(owner: usize, n: usize) -> HookRequest {
    HookRequest {
        owner,
        event: format!("e{n}"),
        argv: vec!["/etc/relevo/hooks/x".into(), n.to_string()],
        env: vec![("RELEVO_NAME".into(), format!("o{owner}"))],
        timeout: Duration::from_secs(1),
    }
}

/// Tiny deterministic generator so completion orders vary per seed without new dependencies.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound
    }
}

#[test]
fn two_owners_interleaved_are_each_sequential_and_exactly_once() {
    for seed in 0..50 {
        let mut rng = Lcg(seed);
        let mut queue = HookQueue::new();
        let per_owner = 6;
        let mut pushed = 0;
        let mut running: BTreeSet<usize> = BTreeSet::new();
        let mut started: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
        let mut steps = 0;
        while pushed < 2 * per_owner || !queue.is_idle() {
            steps += 1;
            assert!(steps < 10_000, "seed {seed}: no progress");
            match rng.next(3) {
                // Push the next transition, alternating owners: A0 B0 A1 B1 ...
                0 if pushed < 2 * per_owner => {
                    queue.push(req(pushed % 2, pushed / 2));
                    pushed += 1;
                }
                // Start whatever is ready.
                1 => {
                    while let Some(r) = queue.next_ready() {
                        assert!(
                            running.insert(r.owner),
                            "seed {seed}: owner {} twice",
                            r.owner
                        );
                        started[r.owner].push(r.event);
                    }
                }
                // Finish one running hook.
                _ => {
                    if let Some(&owner) = running.iter().nth(rng.next(running.len().max(1))) {
                        running.remove(&owner);
                        queue.finished(owner);
                    }
                }
            }
            for owner in 0..2 {
                assert_eq!(
                    queue.is_running(owner),
                    running.contains(&owner),
                    "seed {seed}"
                );
            }
        }
        let expected: Vec<String> = (0..per_owner).map(|n| format!("e{n}")).collect();
        assert_eq!(started, [expected.clone(), expected], "seed {seed}");
        assert_eq!(queue.next_ready(), None);
    }
}

#[test]
fn pending_counts_only_waiting_requests() {
    let mut queue = HookQueue::new();
    queue.push(req(0, 0));
    queue.push(req(0, 1));
    queue.push(req(1, 0));
    assert_eq!(
        (queue.pending(0), queue.pending(1), queue.pending(9)),
        (2, 1, 0)
    );
    let first = queue.next_ready().unwrap();
    assert_eq!((first.owner, first.event.as_str()), (0, "e0"));
    assert_eq!(first, req(0, 0), "request handed out unchanged");
    assert_eq!(queue.pending(0), 1);
    let second = queue.next_ready().unwrap();
    assert_eq!(second.owner, 1, "owner 1 is not held up by owner 0");
    assert_eq!(queue.next_ready(), None);
    queue.finished(0);
    queue.finished(1);
    assert!(!queue.is_idle());
    assert_eq!(queue.next_ready().map(|r| r.event), Some("e1".into()));
    queue.finished(0);
    assert!(queue.is_idle());
}
