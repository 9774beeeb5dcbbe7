//! `hook_security = "strict"` where a hook is about to start: refused (warned with the exact
//! reason, counted, reported finished at once so the queue moves on) when the program or a
//! directory above it is owned by a non-root uid or writable by group or others (a sticky
//! world-writable directory included), or the program is not a regular executable file,
//! symbolic links included; accepted in a root-owned 0755 chain; not checked with "off"; and a
//! real `relevo run` in a namespace lab: refusals counted in `relevo status`, the state change
//! made regardless.
//! Needs root (chown, /run, namespaces): fails without it, unless RELEVO_SKIP_ROOT_TESTS=1
//! skips it (never under CI=true).

mod hooks_support;
mod netns_support;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hooks_support::*;
use relevo::config::HookSecurity;
use relevo::daemon::hooks::{HookDone, HookOutcome};
use relevo::engine::hook_queue::HookQueue;
use relevo::lab::relevo_node::{HookDir, Hooks};
use relevo::lab::root_test_guard;

const SECOND: Duration = Duration::from_secs(1);
const NOBODY: u32 = 65534;

/// A trusted directory for this test, or `None` when skipped (not root, and skipping asked for
/// outside CI).
fn hook_dir(test: &str) -> Option<HookDir> {
    if !root_test_guard(test).expect("root required") {
        return None;
    }
    Some(HookDir::create(test).expect("creating the trusted hook dir"))
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), None).unwrap();
}

/// A subdirectory of `dir` with `mode` (set after creation, whatever the umask).
fn subdir(dir: &Path, name: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    fs::create_dir(&path).unwrap();
    chmod(&path, mode);
    path
}

/// A script at `path` that creates `<path>.ran` when it runs; mode as given.
fn marker_script(path: &Path, mode: u32) -> PathBuf {
    let body = format!("touch '{}.ran'", path.display());
    relevo::lab::write_script(path, &body, mode).unwrap();
    path.to_path_buf()
}

/// Starts `program` under `security` and asserts it ran to exit 0 without a refusal.
#[track_caller]
fn assert_runs(security: HookSecurity, program: &Path) {
    let (done, refused, log) = start(security, program);
    assert_eq!(
        done.map(|d| d.outcome),
        Some(HookOutcome::Exited(0)),
        "{log}"
    );
    assert_eq!(refused, 0);
}

fn ran(script: &Path) -> bool {
    PathBuf::from(format!("{}.ran", script.display())).exists()
}

/// Starts `program` on a runner with `security`; returns its immediate completion (if any),
/// the runner's refusal count and the log.
fn start(security: HookSecurity, program: &Path) -> (Option<HookDone>, u64, String) {
    let log = LogCapture::default();
    let (done, refused) = log.run(|| {
        let mut lp = TestLoop::with_security(security);
        let req = request(0, "master", &[path_str(program)], 5 * SECOND);
        let immediate = lp.runner.start(lp.poll.registry(), req, Instant::now());
        let done = match immediate {
            Some(done) => Some(done),
            None => lp.run_until(1, 10 * SECOND).pop(),
        };
        (done, lp.runner.refused())
    });
    (done, refused, log.text())
}

/// Asserts that strict refused `program` because `culprit` `problem`, with the exact warning,
/// without running it.
fn assert_refused(program: &Path, culprit: &Path, problem: &str) {
    let (done, refused, log) = start(HookSecurity::Strict, program);
    let reason = format!("{} {problem}", culprit.display());
    let done = done.expect("the hook was refused at once");
    assert_eq!((done.owner, done.event.as_str()), (0, "master"));
    assert_eq!(done.outcome, HookOutcome::Refused(reason.clone()));
    assert_eq!(done.duration, std::time::Duration::ZERO);
    assert_eq!(refused, 1);
    let warning = format!(
        "hook {} refused: {reason}; fix the permissions or set hook_security = \"off\" in [node]",
        program.display()
    );
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.ends_with(&warning)),
        "expected the warning {warning:?} in:\n{log}"
    );
    assert!(!ran(program), "a refused hook ran");
}

#[test]
fn accepted_in_a_root_owned_0755_chain() {
    let Some(dir) = hook_dir("accepted") else {
        return;
    };
    let inner = subdir(dir.path(), "hooks", 0o755);
    let script = marker_script(&inner.join("web"), 0o755);
    // Also through a link in a trusted directory to a trusted target.
    let link = dir.path().join("link");
    symlink(&script, &link).unwrap();
    for program in [&script, &link] {
        assert_runs(HookSecurity::Strict, program);
    }
    assert!(ran(&script));
}

#[test]
fn refused_in_a_world_writable_directory_sticky_or_not() {
    let Some(dir) = hook_dir("worldwritable") else {
        return;
    };
    let open = subdir(dir.path(), "open", 0o757);
    assert_refused(
        &marker_script(&open.join("hook"), 0o755),
        &open,
        "is writable by others (mode 0757)",
    );
    let tmp_like = subdir(dir.path(), "tmp", 0o1777);
    assert_refused(
        &marker_script(&tmp_like.join("hook"), 0o755),
        &tmp_like,
        "is writable by group and others (mode 1777); the sticky bit does not help: \
         a shared directory like /tmp is no place for hooks",
    );
}

#[test]
fn refused_when_the_file_is_group_writable() {
    let Some(dir) = hook_dir("groupwritable") else {
        return;
    };
    let script = marker_script(&dir.path().join("hook"), 0o775);
    assert_refused(&script, &script, "is writable by group (mode 0775)");
}

#[test]
fn refused_when_the_file_or_a_directory_belongs_to_another_user() {
    let Some(dir) = hook_dir("owner") else {
        return;
    };
    let script = marker_script(&dir.path().join("hook"), 0o755);
    chown(&script, NOBODY);
    assert_refused(&script, &script, "is owned by uid 65534, not root");

    let theirs = subdir(dir.path(), "theirs", 0o755);
    chown(&theirs, NOBODY);
    let inside = marker_script(&theirs.join("hook"), 0o755);
    assert_refused(&inside, &theirs, "is owned by uid 65534, not root");
}

#[test]
fn refused_when_not_a_regular_executable_file() {
    let Some(dir) = hook_dir("notexec") else {
        return;
    };
    let plain = marker_script(&dir.path().join("plain"), 0o644);
    assert_refused(&plain, &plain, "is not executable (mode 0644)");
    let directory = subdir(dir.path(), "adir", 0o755);
    assert_refused(&directory, &directory, "is not a regular file");
}

#[test]
fn symbolic_links_are_followed_and_their_directories_checked() {
    let Some(dir) = hook_dir("symlinks") else {
        return;
    };
    let open = subdir(dir.path(), "open", 0o777);
    let trusted = marker_script(&dir.path().join("trusted"), 0o755);
    // A link in a writable directory can be replaced, whatever it points to.
    let link_in_open = open.join("link");
    symlink(&trusted, &link_in_open).unwrap();
    assert_refused(
        &link_in_open,
        &open,
        "is writable by group and others (mode 0777)",
    );
    assert!(!ran(&trusted));
    // A trusted link to a program in a writable directory: the target's directory counts.
    let untrusted = marker_script(&open.join("target"), 0o755);
    let link = dir.path().join("link");
    symlink("open/target", &link).unwrap();
    let (done, _, _) = start(HookSecurity::Strict, &link);
    assert_eq!(
        done.map(|d| d.outcome),
        Some(HookOutcome::Refused(format!(
            "{} is writable by group and others (mode 0777)",
            open.display()
        )))
    );
    assert!(!ran(&untrusted));
}

#[test]
fn a_missing_program_fails_to_spawn_and_is_not_counted_as_refused() {
    let Some(dir) = hook_dir("missing") else {
        return;
    };
    let (done, refused, _) = start(HookSecurity::Strict, &dir.path().join("absent"));
    assert!(
        matches!(done.map(|d| d.outcome), Some(HookOutcome::SpawnFailed(_))),
        "a missing hook is a spawn failure"
    );
    assert_eq!(refused, 0);
}

#[test]
fn off_runs_the_hook_anyway() {
    let Some(dir) = hook_dir("off") else {
        return;
    };
    let open = subdir(dir.path(), "open", 0o1777);
    let script = marker_script(&open.join("hook"), 0o777);
    chown(&script, NOBODY);
    assert_runs(HookSecurity::Off, &script);
    assert!(ran(&script));
}

#[test]
fn a_refused_hook_counts_as_finished_and_the_queue_moves_on() {
    let Some(dir) = hook_dir("queue") else {
        return;
    };
    let bad = marker_script(&dir.path().join("bad"), 0o666);
    let good = marker_script(&dir.path().join("good"), 0o755);
    let mut lp = TestLoop::with_security(HookSecurity::Strict);
    let mut queue = HookQueue::new();
    // What the daemon's pump does: a hook done at once is finished at once.
    let pump = |queue: &mut HookQueue, lp: &mut TestLoop| {
        while let Some(req) = queue.next_ready() {
            if let Some(done) = lp.runner.start(lp.poll.registry(), req, Instant::now()) {
                assert!(matches!(done.outcome, HookOutcome::Refused(_)));
                queue.finished(done.owner);
            }
        }
    };
    queue.push(request(3, "backup", &[path_str(&bad)], 5 * SECOND));
    pump(&mut queue, &mut lp);
    assert!(queue.is_idle(), "the refused hook left its owner busy");
    queue.push(request(3, "master", &[path_str(&good)], 5 * SECOND));
    pump(&mut queue, &mut lp);
    assert!(queue.is_running(3));
    let done = lp.run_until(1, 10 * SECOND);
    assert_eq!(done[0].outcome, HookOutcome::Exited(0));
    assert_eq!(lp.runner.refused(), 1);
    assert!(ran(&good) && !ran(&bad));
}

#[test]
fn the_daemon_counts_refusals_in_its_status_and_changes_state_regardless() {
    let Some(lab) = netns_support::lab("hookrefused", 1) else {
        return;
    };
    let hooks = lab.hook_dir().expect("the lab's hook dir");
    let shared = subdir(&hooks, "shared", 0o775);
    let bad = marker_script(&shared.join("web"), 0o755);
    let mut web = netns_support::instance(62, 150, Duration::from_millis(100), &["192.0.2.100/24"]);
    web.hooks = Hooks {
        backup: Some(bad.clone()),
        master: Some(bad.clone()),
        ..Hooks::default()
    };
    let node = netns_support::start(&lab, 1, web);
    // Alone on its segment: BACKUP at start, MASTER after Master_Down_Interval; both hooks
    // are refused, neither holds up the next.
    let counted = netns_support::wait_for(5 * SECOND, || {
        node.status()
            .is_ok_and(|s| s.instances[0].state == "MASTER" && s.hooks_refused == 2)
    });
    let log = netns_support::log_of(node.log_path());
    assert!(
        counted,
        "no MASTER with 2 refusals: {:?}\n{log}",
        node.status().ok()
    );
    let text = node.status_table().expect("relevo status");
    assert!(
        text.contains("hooks refused by hook_security: 2"),
        "relevo status:\n{text}"
    );
    let warning = format!(
        "hook {} refused: {} is writable by group (mode 0775)",
        bad.display(),
        shared.display()
    );
    assert_eq!(log.matches(&warning).count(), 2, "{log}");
    assert!(!ran(&bad), "a refused hook ran");
}
