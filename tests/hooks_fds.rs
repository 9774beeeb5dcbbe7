//! No fd leak: after 50 hooks (normal exits, stderr output, a timeout, spawn failures) the
//! process has exactly the fds it had before. Alone in its binary so no other test opens fds.

mod hooks_support;

use std::time::{Duration, Instant};

use hooks_support::*;
use relevo::daemon::hooks::HookOutcome;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn fd_count_returns_to_baseline_after_50_hooks() {
    let mut lp = TestLoop::new();
    let baseline = open_fds();
    let mut outcomes = Vec::new();
    for batch in 0..10 {
        for owner in 0..5 {
            let n = batch * 5 + owner;
            let req = match n % 10 {
                0 => request(
                    owner,
                    "fault",
                    &["/nonexistent/relevo-hook"],
                    Duration::from_secs(1),
                ),
                1 => request(
                    owner,
                    "master",
                    &["/bin/sleep", "60"],
                    Duration::from_millis(50),
                ),
                _ => request(
                    owner,
                    "backup",
                    &["/bin/sh", "-c", "echo out; echo err >&2; exit 1"],
                    Duration::from_secs(5),
                ),
            };
            if let Some(done) = lp.runner.start(lp.poll.registry(), req, Instant::now()) {
                outcomes.push(done.outcome);
            }
        }
        let running = lp.runner.running();
        outcomes.extend(
            lp.run_until(running, Duration::from_secs(20))
                .into_iter()
                .map(|d| d.outcome),
        );
    }
    assert_eq!(outcomes.len(), 50);
    let count = |want: &HookOutcome| outcomes.iter().filter(|o| *o == want).count();
    assert_eq!(count(&HookOutcome::Exited(1)), 40);
    assert_eq!(count(&HookOutcome::TimedOut), 5);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, HookOutcome::SpawnFailed(_)))
            .count(),
        5
    );
    assert_eq!(lp.runner.running(), 0);
    assert_eq!(open_fds(), baseline, "fds leaked");
}
