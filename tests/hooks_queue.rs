//! HookQueue under seeded random interleavings of pushes, starts and completions, checked
//! against a model: at most one running hook per owner; the hook that starts is always its
//! owner's newest pending transition, with `skipped` = the pending transitions it replaced;
//! across owners, starts follow the order in which the owners' pending slots filled; every push
//! is either started or counted as skipped, exactly once.

mod seeded_rng;

use std::time::Duration;

use relevo::engine::hook_queue::{HookQueue, HookRequest};
use seeded_rng::Rng;

const OWNERS: usize = 3;

fn req(owner: usize, n: usize) -> HookRequest {
    HookRequest {
        owner,
        event: format!("e{n}"),
        argv: vec!["/etc/relevo/hooks/x".into(), n.to_string()],
        env: vec![("RELEVO_NAME".into(), format!("o{owner}"))],
        timeout: Duration::from_secs(1),
        skipped: 0,
    }
}

/// What the queue should hold for one owner.
#[derive(Default)]
struct OwnerModel {
    /// Push numbers since this owner's last start, oldest first.
    pending: Vec<usize>,
    running: bool,
}

/// The model's verdict on every push: started, or skipped (counted in a started request).
#[derive(Default)]
struct Ledger {
    started: Vec<usize>,
    skipped: Vec<usize>,
}

/// Starts everything the queue hands out, checking each request against the model.
fn start_ready(queue: &mut HookQueue, model: &mut [OwnerModel], ledger: &mut Ledger, seed: u64) {
    while let Some(r) = queue.next_ready() {
        let expected_owner = model
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.running)
            .filter_map(|(owner, m)| m.pending.first().map(|&first| (first, owner)))
            .min()
            .map(|(_, owner)| owner);
        assert_eq!(Some(r.owner), expected_owner, "seed {seed}: start order");
        let m = &mut model[r.owner];
        let newest = *m.pending.last().expect("model has a pending push");
        let mut want = req(r.owner, newest);
        want.skipped = (m.pending.len() - 1) as u64;
        assert_eq!(
            r, want,
            "seed {seed}: not the newest, or a wrong skipped count"
        );
        ledger.started.push(newest);
        ledger.skipped.extend(&m.pending[..m.pending.len() - 1]);
        m.pending.clear();
        m.running = true;
    }
}

#[test]
fn seeded_random_sequences_keep_the_invariants() {
    let mut most_skipped = 0;
    for seed in 1..=300 {
        let mut rng = Rng::new(seed);
        let mut queue = HookQueue::new();
        let mut model: Vec<OwnerModel> = (0..OWNERS).map(|_| OwnerModel::default()).collect();
        let mut ledger = Ledger::default();
        let total = 40 + rng.index(80);
        let mut pushed = 0;
        let mut steps = 0;
        while pushed < total || !queue.is_idle() {
            steps += 1;
            assert!(steps < 100_000, "seed {seed}: no progress");
            match rng.below(4) {
                // Push a transition for a random owner (bursts make coalescing likely).
                0 | 1 if pushed < total => {
                    let owner = rng.index(OWNERS);
                    queue.push(req(owner, pushed));
                    model[owner].pending.push(pushed);
                    pushed += 1;
                }
                2 => start_ready(&mut queue, &mut model, &mut ledger, seed),
                // Finish one running hook (or a spurious finish of an idle owner).
                _ => {
                    let owner = rng.index(OWNERS);
                    queue.finished(owner);
                    model[owner].running = false;
                }
            }
            for (owner, m) in model.iter().enumerate() {
                assert_eq!(queue.is_running(owner), m.running, "seed {seed}");
                assert_eq!(
                    queue.pending(owner),
                    usize::from(!m.pending.is_empty()),
                    "seed {seed}: pending requests coalesce to one"
                );
            }
        }
        assert_eq!(queue.next_ready(), None);
        // Every push is accounted for exactly once, as started or as skipped.
        let mut all: Vec<usize> = ledger
            .started
            .iter()
            .chain(&ledger.skipped)
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..total).collect::<Vec<_>>(), "seed {seed}");
        most_skipped = most_skipped.max(ledger.skipped.len());
    }
    assert!(
        most_skipped >= 10,
        "the sequences hardly coalesce: {most_skipped}"
    );
}

#[test]
fn a_quiet_owner_runs_every_transition_in_order() {
    // Coalescing only happens while a hook is pending: one start per push when each hook
    // finishes before the next transition.
    let mut queue = HookQueue::new();
    for n in 0..5 {
        queue.push(req(0, n));
        let r = queue.next_ready().expect("nothing running: starts at once");
        assert_eq!((r.event, r.skipped), (format!("e{n}"), 0));
        queue.finished(0);
    }
    assert!(queue.is_idle());
}

#[test]
fn pending_counts_only_the_waiting_request() {
    let mut queue = HookQueue::new();
    queue.push(req(0, 0));
    queue.push(req(0, 1));
    queue.push(req(1, 2));
    assert_eq!(
        (queue.pending(0), queue.pending(1), queue.pending(9)),
        (1, 1, 0)
    );
    let first = queue.next_ready().unwrap();
    let mut want = req(0, 1);
    want.skipped = 1;
    assert_eq!(
        first, want,
        "the newest request, counting the one it replaced"
    );
    assert_eq!(queue.pending(0), 0);
    let second = queue.next_ready().unwrap();
    assert_eq!(second.owner, 1, "owner 1 is not held up by owner 0");
    assert_eq!(queue.next_ready(), None);
    queue.push(req(0, 3));
    queue.finished(0);
    queue.finished(1);
    assert!(!queue.is_idle());
    assert_eq!(queue.next_ready().map(|r| r.event), Some("e3".into()));
    queue.finished(0);
    assert!(queue.is_idle());
}
