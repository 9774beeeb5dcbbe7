//! Shared helpers for the hook tests: scratch directories, scripts, a small mio loop driving a
//! `HookRunner` with a 10 ms cadence, and log capture through a tracing subscriber.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use relevo::config::HookSecurity;
use relevo::daemon::hooks::{HookDone, HookRequest, HookRunner};

/// Loop cadence: the test loop never waits longer than this in one poll.
pub const CADENCE: Duration = Duration::from_millis(10);
/// First token of the runner; tokens below it are "the daemon's" in these tests.
pub const TOKEN_BASE: usize = 1000;

/// A scratch directory under the system temp dir, removed on drop.
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("relevo-hooks-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    /// Writes a `/bin/sh` script with `body` and the given mode; returns its path.
    pub fn script(&self, name: &str, body: &str, mode: u32) -> PathBuf {
        let path = self.path(name);
        relevo::lab::write_script(&path, body, mode).unwrap();
        path
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A hook script in its own scratch directory: `hook` (mode 0755) with `body`, run with the path
/// of the file `out` in that directory as `"$1"`, where it reports back (pids, its environment).
pub struct ScriptHook {
    pub dir: TestDir,
    pub script: PathBuf,
    pub out: PathBuf,
}

impl ScriptHook {
    pub fn new(test: &str, body: &str) -> Self {
        let dir = TestDir::new(test);
        let script = dir.script("hook", body, 0o755);
        let out = dir.path("out");
        ScriptHook { dir, script, out }
    }

    /// The hook's argv: the script and `out`.
    pub fn argv(&self) -> [&str; 2] {
        [path_str(&self.script), path_str(&self.out)]
    }
}

pub fn request(owner: usize, event: &str, argv: &[&str], timeout: Duration) -> HookRequest {
    HookRequest {
        owner,
        event: event.to_string(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        timeout,
        skipped: 0,
    }
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A stand-in for the daemon loop: one Poll, one runner, loop statistics.
pub struct TestLoop {
    pub poll: Poll,
    pub runner: HookRunner,
    events: Events,
    pub iterations: usize,
    pub max_gap: Duration,
}

impl TestLoop {
    /// A loop whose runner does not vet programs (`hook_security = "off"`): the scratch
    /// directories live under the world-writable temp dir, which strict refuses.
    pub fn new() -> Self {
        Self::with_security(HookSecurity::Off)
    }

    pub fn with_security(security: HookSecurity) -> Self {
        TestLoop {
            poll: Poll::new().unwrap(),
            runner: HookRunner::new(TOKEN_BASE, security),
            events: Events::with_capacity(64),
            iterations: 0,
            max_gap: Duration::ZERO,
        }
    }

    /// Starts `req`; panics if it failed to spawn (use `runner.start` directly to test that).
    pub fn start(&mut self, req: HookRequest) {
        let failed = self.runner.start(self.poll.registry(), req, Instant::now());
        assert_eq!(failed, None, "hook failed to start");
    }

    /// One loop turn: poll (at most CADENCE, less if the runner has an earlier deadline),
    /// dispatch events, apply timeouts. Records the gap between turns.
    pub fn turn(&mut self, last: &mut Instant, done: &mut Vec<HookDone>) {
        let now = Instant::now();
        let wait = self
            .runner
            .next_deadline()
            .map_or(CADENCE, |d| d.saturating_duration_since(now).min(CADENCE));
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("poll: {e}"),
        }
        let now = Instant::now();
        for event in self.events.iter() {
            assert!(
                self.runner.owns(event.token()),
                "foreign token {:?}",
                event.token()
            );
            self.runner
                .handle_event(self.poll.registry(), event, now, done);
        }
        self.runner.handle_timeout(now, done);
        // A loop that fires every due timer before polling again must not spin: once
        // handle_timeout(now) ran, nothing may be due at `now` any more.
        if let Some(deadline) = self.runner.next_deadline() {
            assert!(
                deadline > now,
                "deadline {deadline:?} not after {now:?}: the loop would spin"
            );
        }
        self.iterations += 1;
        self.max_gap = self.max_gap.max(now.duration_since(*last));
        *last = now;
    }

    /// Turns the loop until `count` hooks have completed (fails after `limit`).
    pub fn run_until(&mut self, count: usize, limit: Duration) -> Vec<HookDone> {
        let start = Instant::now();
        let mut last = start;
        let mut done = Vec::new();
        while done.len() < count {
            assert!(
                start.elapsed() < limit,
                "hooks not done after {limit:?}: {done:?}"
            );
            self.turn(&mut last, &mut done);
        }
        done
    }
}

/// True once `pid` no longer runs (gone, or a zombie waiting for its new parent to reap it).
pub fn is_dead(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name: "pid (comm) S ...".
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// Polls `f` every 10 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits up to 2 s for `pid` to die.
pub fn wait_dead(pid: i32) -> bool {
    wait_until(Duration::from_secs(2), || is_dead(pid))
}

/// Reads a pid the script wrote to `path`.
pub fn read_pid(path: &Path) -> i32 {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.trim().parse().unwrap()
}

/// Waits up to 5 s for the script to finish the line it writes to `path`, then returns the
/// pids on it.
pub fn await_pids(path: &Path) -> Vec<i32> {
    let line = || fs::read_to_string(path).ok().filter(|t| t.ends_with('\n'));
    assert!(
        wait_until(Duration::from_secs(5), || line().is_some()),
        "{} was never written",
        path.display()
    );
    let text = line().unwrap_or_default();
    text.split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// A log sink for a thread-local tracing subscriber.
#[derive(Clone, Default)]
pub struct LogCapture(pub Arc<Mutex<Vec<u8>>>);

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Runs `f` with every tracing record of this thread written into the capture.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::with_default(subscriber, f)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Lines written since byte offset `seen`, which moves to the end.
    pub fn lines_since(&self, seen: &mut usize) -> usize {
        let bytes = self.0.lock().unwrap();
        let lines = bytes[*seen..].iter().filter(|&&b| b == b'\n').count();
        *seen = bytes.len();
        lines
    }
}
