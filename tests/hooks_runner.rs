//! HookRunner driven by a real mio loop: environment, output capture, exit reporting, spawn
//! failures, timeouts (SIGTERM to every process of the group, then SIGKILL after the grace),
//! leftovers killed when the leader exits, running hooks killed when the runner goes,
//! HookQueue + HookRunner sequencing per owner (pending hooks coalescing to the newest, which
//! gets RELEVO_SKIPPED), and output: complete and in order, read in bounded passes (an endless
//! writer never stalls the loop), overlong lines truncated, an escaped writer cut off after
//! the hook's exit.

mod hooks_support;

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

use hooks_support::*;
use relevo::config::HookSecurity;
use relevo::daemon::hooks::{
    HookDone, HookOutcome, HookRunner, DEFAULT_PATH, MAX_LINE, TERM_GRACE,
};
use relevo::engine::hook_queue::HookQueue;

const SECOND: Duration = Duration::from_secs(1);

fn relevo_env() -> Vec<(String, String)> {
    [
        ("RELEVO_EVENT", "master"),
        ("RELEVO_NAME", "web"),
        ("RELEVO_STATE", "master"),
        ("RELEVO_PREV_STATE", "backup"),
        ("RELEVO_REASON", "master-down timer expired"),
        ("RELEVO_NODE", "n1"),
        ("RELEVO_VIPS", "192.0.2.100/24 192.0.2.101/24"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn hook_gets_env_and_its_output_is_logged() {
    let hook = ScriptHook::new(
        "env",
        "env > \"$1\"\necho \"hello $RELEVO_NAME\"\necho complaint >&2\nprintf 'no newline'",
    );
    let mut req = request(0, "master", &hook.argv(), 5 * SECOND);
    req.env = relevo_env();

    let log = LogCapture::default();
    let done = log.run(|| {
        let mut lp = TestLoop::new();
        lp.start(req.clone());
        lp.run_until(1, 10 * SECOND)
    });
    assert_eq!(
        outcomes(&done),
        [(0, "master".to_string(), HookOutcome::Exited(0))]
    );
    assert_eq!(done[0].label, "web/master");

    let env_text = fs::read_to_string(&hook.out).unwrap();
    let env: BTreeMap<&str, &str> = env_text.lines().filter_map(|l| l.split_once('=')).collect();
    for (key, value) in &req.env {
        assert_eq!(
            env.get(key.as_str()),
            Some(&value.as_str()),
            "{key} in {env_text}"
        );
    }
    assert_eq!(env.get("RELEVO_SKIPPED"), Some(&"0"), "always set");
    let expected_path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string());
    assert_eq!(env.get("PATH"), Some(&expected_path.as_str()));
    assert_eq!(env.get("PWD"), Some(&"/"), "hooks run in /");
    let allowed = [
        "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PWD", "SHLVL", "_", "OLDPWD",
    ];
    for (key, _) in std::env::vars() {
        if !allowed.contains(&key.as_str()) && !key.starts_with("RELEVO_") {
            assert!(
                !env.contains_key(key.as_str()),
                "daemon variable {key} leaked to the hook"
            );
        }
    }

    let text = log.text();
    let has = |level: &str, msg: &str| text.lines().any(|l| l.contains(level) && l.contains(msg));
    assert!(
        has("INFO", "hook web/master: hello web"),
        "stdout not logged:\n{text}"
    );
    assert!(
        has("WARN", "hook web/master: complaint"),
        "stderr not logged:\n{text}"
    );
    assert!(
        has("INFO", "hook web/master: no newline"),
        "last partial line lost:\n{text}"
    );
}

#[test]
fn exit_status_and_signal_are_reported() {
    let dir = TestDir::new("exit");
    let exits = dir.script("exit3", "exit 3", 0o755);
    let kills = dir.script("killself", "kill -KILL $$", 0o755);
    let mut lp = TestLoop::new();
    lp.start(request(1, "backup", &[path_str(&exits)], 5 * SECOND));
    lp.start(request(2, "fault", &[path_str(&kills)], 5 * SECOND));
    let mut done = lp.run_until(2, 10 * SECOND);
    done.sort_by_key(|d| d.owner);
    assert_eq!(
        outcomes(&done),
        [
            (1, "backup".to_string(), HookOutcome::Exited(3)),
            (2, "fault".to_string(), HookOutcome::Signaled(9)),
        ]
    );
    assert_eq!(lp.runner.running(), 0);
    assert_eq!(lp.runner.next_deadline(), None);
}

#[test]
fn unstartable_hooks_fail_at_once() {
    let dir = TestDir::new("spawnfail");
    let missing = dir.path("does-not-exist");
    let not_executable = dir.script("plain", "exit 0", 0o644);
    let poll = mio::Poll::new().unwrap();
    let mut runner = HookRunner::new(TOKEN_BASE, HookSecurity::Off);
    for argv in [
        vec![path_str(&missing)],
        vec![path_str(&not_executable)],
        vec![],
    ] {
        let started = Instant::now();
        let done = runner.start(poll.registry(), request(5, "stop", &argv, SECOND), started);
        assert!(
            started.elapsed() < SECOND,
            "start blocked for {:?}",
            started.elapsed()
        );
        match done {
            Some(HookDone {
                owner: 5,
                event,
                outcome: HookOutcome::SpawnFailed(reason),
                ..
            }) => {
                assert_eq!(event, "stop");
                assert!(!reason.is_empty());
            }
            other => panic!("{argv:?}: expected SpawnFailed, got {other:?}"),
        }
        assert_eq!(runner.running(), 0);
        assert_eq!(runner.next_deadline(), None);
    }
}

#[test]
fn timeout_kills_the_whole_group_without_blocking_the_loop() {
    let hook = ScriptHook::new("timeout", "sleep 60 &\necho $! > \"$1\"\nsleep 60");
    let mut lp = TestLoop::new();
    let started = Instant::now();
    lp.start(request(
        3,
        "master",
        &hook.argv(),
        Duration::from_millis(300),
    ));
    let done = lp.run_until(1, 10 * SECOND);
    let elapsed = started.elapsed();

    assert_eq!(done[0].outcome, HookOutcome::TimedOut);
    assert!(
        elapsed >= Duration::from_millis(300),
        "killed early, after {elapsed:?}"
    );
    assert!(
        elapsed < TERM_GRACE,
        "SIGTERM alone should have ended it, took {elapsed:?}"
    );
    let grandchild = read_pid(&hook.out);
    assert!(
        wait_dead(grandchild),
        "grandchild {grandchild} survived the timeout"
    );
    assert_loop_kept_turning(&lp, 10);
}

#[test]
fn hook_ignoring_sigterm_is_killed_after_the_grace() {
    let hook = ScriptHook::new(
        "ignoreterm",
        "trap '' TERM\nsleep 60 &\necho $! > \"$1\"\nsleep 60",
    );
    let mut lp = TestLoop::new();
    let started = Instant::now();
    lp.start(request(
        4,
        "backup",
        &hook.argv(),
        Duration::from_millis(300),
    ));
    let done = lp.run_until(1, 15 * SECOND);
    let elapsed = started.elapsed();

    assert_eq!(done[0].outcome, HookOutcome::TimedOut);
    let earliest_kill = Duration::from_millis(300) + TERM_GRACE;
    assert!(
        elapsed >= earliest_kill,
        "SIGKILL before the grace ended: {elapsed:?}"
    );
    assert!(elapsed < earliest_kill + 5 * SECOND, "took {elapsed:?}");
    let grandchild = read_pid(&hook.out);
    assert!(
        wait_dead(grandchild),
        "grandchild {grandchild} survived SIGKILL"
    );
    assert_loop_kept_turning(&lp, 50);
}

#[test]
fn the_timeouts_sigterm_reaches_every_process_of_the_group() {
    // The leader and its child catch SIGTERM and note it in "$1"; the leader carries on, so
    // neither its exit nor the SIGKILL of leftovers at that exit can stand in for the SIGTERM
    // sent to the whole group. The child marks when its trap is set, so a child too slow to
    // start is told apart from a SIGTERM that missed it.
    let hook = ScriptHook::new(
        "termgroup",
        "trap 'echo leader >> \"$1\"' TERM\n\
         \"$(dirname \"$0\")/child\" \"$1\" &\n\
         while :; do sleep 0.05; done",
    );
    hook.dir.script(
        "child",
        "trap 'echo child >> \"$1\"; exit 0' TERM\n\
         : > \"$1.ready\"\n\
         while :; do sleep 0.05; done",
        0o755,
    );
    let timeout = Duration::from_millis(500);
    let mut lp = TestLoop::new();
    let started = Instant::now();
    lp.start(request(5, "fault", &hook.argv(), timeout));
    let done = lp.run_until(1, 15 * SECOND);
    let elapsed = started.elapsed();

    assert_eq!(done[0].outcome, HookOutcome::TimedOut);
    let ready = hook.dir.path("out.ready");
    assert!(ready.exists(), "the child was not ready before the timeout");
    let text = fs::read_to_string(&hook.out).unwrap_or_default();
    let mut got: Vec<&str> = text.lines().collect();
    // The leader may note it twice: it is also signalled on its own, in case it left the group.
    got.sort_unstable();
    got.dedup();
    assert_eq!(
        got,
        ["child", "leader"],
        "SIGTERM did not reach the whole group"
    );
    assert!(
        elapsed >= timeout + TERM_GRACE,
        "the leader catches SIGTERM, yet was gone after {elapsed:?}"
    );
    assert_loop_kept_turning(&lp, 50);
}

#[test]
fn dropping_the_runner_kills_the_groups_of_running_hooks() {
    // What the daemon does when it exits with hooks still running (its shutdown deadline
    // passed): SIGKILL to each group. The hook and its child ignore SIGTERM, so only a
    // SIGKILL ends them.
    let hook = ScriptHook::new(
        "dropped",
        "trap '' TERM\nsleep 60 &\necho $$ $! > \"$1\"\nsleep 60",
    );
    let mut lp = TestLoop::new();
    lp.start(request(12, "stop", &hook.argv(), 30 * SECOND));
    let pids = await_pids(&hook.out);
    assert_eq!(pids.len(), 2, "leader and child: {pids:?}");
    drop(lp);
    for pid in pids {
        assert!(wait_dead(pid), "{pid} outlived the runner");
    }
}

#[test]
fn leftovers_in_the_group_are_killed_when_the_hook_exits() {
    // The background sleep also keeps stdout/stderr open: completion must not wait for EOF.
    let hook = ScriptHook::new("leftover", "sleep 60 &\necho $! > \"$1\"\nexit 0");
    let mut lp = TestLoop::new();
    let started = Instant::now();
    lp.start(request(6, "master", &hook.argv(), 30 * SECOND));
    let done = lp.run_until(1, 10 * SECOND);
    assert_eq!(done[0].outcome, HookOutcome::Exited(0));
    assert!(
        started.elapsed() < TERM_GRACE,
        "completion waited for the leftover"
    );
    let background = read_pid(&hook.out);
    assert!(
        wait_dead(background),
        "background process {background} left running"
    );
}

#[test]
fn blocked_signals_of_the_daemon_are_not_inherited() {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
    // A daemon using signalfd blocks SIGTERM; the hook must still die on the timeout's SIGTERM.
    let mut term = SigSet::empty();
    term.add(Signal::SIGTERM);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&term), None).unwrap();
    let mut lp = TestLoop::new();
    let started = Instant::now();
    lp.start(request(
        7,
        "fault",
        &["/bin/sleep", "60"],
        Duration::from_millis(200),
    ));
    let done = lp.run_until(1, 10 * SECOND);
    pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&term), None).unwrap();
    assert_eq!(done[0].outcome, HookOutcome::TimedOut);
    assert!(
        started.elapsed() < TERM_GRACE,
        "SIGTERM was blocked in the hook"
    );
}

#[test]
fn ignored_signals_of_the_daemon_are_not_inherited() {
    // A daemon may ignore signals: Rust programs ignore SIGPIPE, and a supervisor may hand it
    // more. Here SIGPIPE, SIGUSR1 and a real-time signal; a hook starts with all of them at
    // their defaults (a shell pipeline expects to die of SIGPIPE).
    let realtime = libc::SIGRTMIN() + 2;
    for signal in [libc::SIGUSR1, realtime] {
        // SAFETY: nothing in this test binary handles or sends these.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
    fn ignored(status: &str) -> u64 {
        let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:"));
        u64::from_str_radix(mask.unwrap_or_default().trim(), 16).unwrap()
    }
    let bit = |signal: i32| 1u64 << (signal - 1);
    let ours = ignored(&fs::read_to_string("/proc/self/status").unwrap());
    for signal in [libc::SIGPIPE, libc::SIGUSR1, realtime] {
        assert_ne!(ours & bit(signal), 0, "precondition: {signal} ignored here");
    }
    let hook = ScriptHook::new("sigign", "cat /proc/self/status > \"$1\"");
    let mut lp = TestLoop::new();
    lp.start(request(13, "master", &hook.argv(), 5 * SECOND));
    assert_eq!(
        lp.run_until(1, 10 * SECOND)[0].outcome,
        HookOutcome::Exited(0)
    );
    // The signals the C library keeps for itself (glibc: 32 and 33) nobody may reset.
    let libc_own = (32..libc::SIGRTMIN()).fold(0, |mask, signal| mask | bit(signal));
    let theirs = ignored(&fs::read_to_string(&hook.out).unwrap()) & !libc_own;
    assert_eq!(theirs, 0, "the hook inherited ignored signals: {theirs:#x}");
}

/// Starts what `queue` hands out and turns the loop until both the queue and the runner are
/// idle; returns the completions as (owner, event).
fn run_queue(queue: &mut HookQueue, lp: &mut TestLoop) -> Vec<(usize, String)> {
    let mut completed = Vec::new();
    let mut last = Instant::now();
    let limit = Instant::now() + 30 * SECOND;
    while !queue.is_idle() {
        assert!(Instant::now() < limit, "sequence did not finish");
        while let Some(req) = queue.next_ready() {
            lp.start(req);
        }
        assert!(
            lp.runner.running() <= 2,
            "more than one hook per owner running"
        );
        let mut done = Vec::new();
        lp.turn(&mut last, &mut done);
        for d in done {
            assert_eq!(d.outcome, HookOutcome::Exited(0));
            queue.finished(d.owner);
            completed.push((d.owner, d.event));
        }
    }
    completed
}

#[test]
fn queue_and_runner_run_each_owner_sequentially_and_coalesce_pending_hooks() {
    let dir = TestDir::new("sequence");
    let journal = dir.path("journal");
    let script = dir.script(
        "step",
        "echo \"$RELEVO_NAME $RELEVO_EVENT $RELEVO_SKIPPED start\" >> \"$1\"\nsleep 0.05\necho \"$RELEVO_NAME $RELEVO_EVENT $RELEVO_SKIPPED end\" >> \"$1\"",
        0o755,
    );
    let events = ["backup", "master", "fault", "backup", "master", "stop"];
    let owners = [(0, "a"), (1, "b")];
    let push = |queue: &mut HookQueue, i: usize| {
        for (owner, name) in owners {
            let tagged = format!("{}{i}", events[i]);
            let mut req = request(
                owner,
                &tagged,
                &[path_str(&script), path_str(&journal)],
                5 * SECOND,
            );
            req.env = vec![
                ("RELEVO_NAME".into(), name.into()),
                ("RELEVO_EVENT".into(), tagged),
            ];
            queue.push(req);
        }
    };

    let mut lp = TestLoop::new();
    let mut queue = HookQueue::new();
    push(&mut queue, 0);
    while let Some(req) = queue.next_ready() {
        lp.start(req);
    }
    // Four transitions while the first hooks run: only the newest one's hook runs next.
    for i in 1..=4 {
        push(&mut queue, i);
    }
    let mut completed = run_queue(&mut queue, &mut lp);
    // A transition after everything finished runs on its own, nothing skipped.
    push(&mut queue, 5);
    completed.extend(run_queue(&mut queue, &mut lp));

    let text = fs::read_to_string(&journal).unwrap();
    for (owner, name) in owners {
        let runs = [("backup0", 0), ("master4", 3), ("stop5", 0)];
        let expected: Vec<String> = runs
            .iter()
            .flat_map(|(e, skipped)| {
                [
                    format!("{name} {e} {skipped} start"),
                    format!("{name} {e} {skipped} end"),
                ]
            })
            .collect();
        let actual: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{name} ")))
            .collect();
        assert_eq!(actual, expected, "owner {name} journal");
        let reported: Vec<&str> = completed
            .iter()
            .filter(|(o, _)| *o == owner)
            .map(|(_, e)| e.as_str())
            .collect();
        assert_eq!(reported, ["backup0", "master4", "stop5"], "owner {name}");
    }
}

#[test]
fn heavy_output_is_logged_completely_in_order_without_stalling_the_loop() {
    let lines = 50_000;
    let count = lines.to_string();
    let log = LogCapture::default();
    let (done, max_gap) = log.run(|| {
        let mut lp = TestLoop::new();
        lp.start(request(
            8,
            "master",
            &["/usr/bin/seq", "1", &count],
            30 * SECOND,
        ));
        let done = lp.run_until(1, 30 * SECOND);
        (done, lp.max_gap)
    });
    assert_eq!(done[0].outcome, HookOutcome::Exited(0));
    let text = log.text();
    let logged: Vec<usize> = text
        .lines()
        .filter_map(|l| l.split_once("hook #8/master: "))
        .filter_map(|(_, n)| n.parse().ok())
        .collect();
    assert_eq!(
        logged,
        (1..=lines).collect::<Vec<_>>(),
        "lines lost or reordered"
    );
    assert!(
        max_gap < Duration::from_millis(500),
        "loop blocked for {max_gap:?}"
    );
}

#[test]
fn a_hook_writing_endlessly_is_read_in_bounded_turns_and_the_loop_keeps_turning() {
    let log = LogCapture::default();
    let (lp, done, most_lines_in_a_turn) = log.run(|| {
        let mut lp = TestLoop::new();
        lp.start(request(9, "master", &["/usr/bin/yes"], SECOND));
        let (start, mut last, mut seen) = (Instant::now(), Instant::now(), 0);
        let (mut done, mut most) = (Vec::new(), 0);
        while done.is_empty() {
            assert!(start.elapsed() < 15 * SECOND, "yes was never stopped");
            lp.turn(&mut last, &mut done);
            most = most.max(log.lines_since(&mut seen));
        }
        (lp, done, most)
    });
    assert_eq!(done[0].outcome, HookOutcome::TimedOut);
    assert_loop_kept_turning(&lp, 50);
    // One turn reads a pipe at most twice (its event, the runner's timer) within a budget of
    // 128 lines each; unbounded, one 64 KiB pipe buffer of "y" is 32768 lines.
    assert!(
        most_lines_in_a_turn <= 512,
        "{most_lines_in_a_turn} lines logged in one turn"
    );
    let logged = log
        .text()
        .lines()
        .filter(|l| l.ends_with("hook #9/master: y"))
        .count();
    assert!(logged > 1000, "only {logged} lines of output logged");
}

#[test]
fn overlong_lines_are_truncated_and_say_so() {
    let log = LogCapture::default();
    let done = log.run(|| {
        let mut lp = TestLoop::new();
        lp.start(request(
            10,
            "backup",
            &[
                "/bin/sh",
                "-c",
                "head -c 10000 /dev/zero | tr '\\0' x; echo; echo after",
            ],
            5 * SECOND,
        ));
        lp.run_until(1, 10 * SECOND)
    });
    assert_eq!(done[0].outcome, HookOutcome::Exited(0));
    let text = log.text();
    let truncated = format!(
        "hook #10/backup: {} [line truncated: {} more bytes dropped]",
        "x".repeat(MAX_LINE),
        10000 - MAX_LINE
    );
    assert!(
        text.lines().any(|l| l.ends_with(&truncated)),
        "no truncated line in:\n{}",
        &text[..text.len().min(2000)]
    );
    assert!(text.lines().any(|l| l.ends_with("hook #10/backup: after")));
}

#[test]
fn an_escaped_writer_does_not_hold_up_the_completion() {
    // setsid takes the writer out of the hook's process group, so it survives the hook and keeps
    // writing into the hook's stdout. The hook exits only once the writer has put 128 KiB into
    // the pipe (more than the pipe holds, so the pipe is full: the runner logs 128 lines of
    // "y" a pass) and turned into an endless `yes`: no sleep decides whether the pipe still
    // flows when the hook exits.
    let hook = ScriptHook::new(
        "escaped",
        "setsid sh -c 'yes | head -c 131072; : > \"$1.full\"; exec yes' sh \"$1\" &\n\
         echo $! > \"$1\"\n\
         until [ -e \"$1.full\" ]; do sleep 0.01; done\n\
         exit 0",
    );
    let log = LogCapture::default();
    let started = Instant::now();
    let done = log.run(|| {
        let mut lp = TestLoop::new();
        lp.start(request(11, "master", &hook.argv(), 30 * SECOND));
        let done = lp.run_until(1, 15 * SECOND);
        assert_loop_kept_turning(&lp, 10);
        done
    });
    let escaped = read_pid(&hook.out);
    let died = wait_dead(escaped);
    if !died {
        // Only the session this test started (setsid made the writer its group leader).
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(escaped),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert_eq!(done[0].outcome, HookOutcome::Exited(0));
    assert!(
        started.elapsed() < 10 * SECOND,
        "completion waited {:?}",
        started.elapsed()
    );
    assert!(
        log.text().contains("still flowing"),
        "the cut-off was not logged"
    );
    assert!(died, "yes {escaped} kept running after its pipe was closed");
}

/// The loop kept its cadence while hooks ran: it turned at least `min_iterations` times and
/// never stalled for 200 ms.
fn assert_loop_kept_turning(lp: &TestLoop, min_iterations: usize) {
    assert!(
        lp.iterations >= min_iterations,
        "loop turned only {} times",
        lp.iterations
    );
    assert!(
        lp.max_gap < Duration::from_millis(200),
        "loop blocked for {:?}",
        lp.max_gap
    );
}

/// Who ran, for what, and how it ended (the label and duration aside).
fn outcomes(done: &[HookDone]) -> Vec<(usize, String, HookOutcome)> {
    done.iter()
        .map(|d| (d.owner, d.event.clone(), d.outcome.clone()))
        .collect()
}
