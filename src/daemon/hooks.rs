//! Hook processes inside the daemon's single-threaded mio loop, never blocking it.
//!
//! [`HookRunner`] spawns each [`HookRequest`] directly (no shell) as the leader of its own
//! process group, with stdin on `/dev/null` and stdout/stderr piped into the log line by line
//! (lines cut at [`MAX_LINE`]), read in passes bounded by a per-pipe budget so that a hook
//! flooding its output cannot stall the loop (see [`PIPE_BUDGET`]).
//! Exit is watched through a pidfd registered with mio; the timeout sends SIGTERM to the whole
//! group, then SIGKILL after [`TERM_GRACE`]. When the leader exits, whatever is left in its group
//! is SIGKILLed before the leader is reaped (the unreaped leader pins the group id, so the signal
//! can never reach a recycled group); the completion is reported once the output the group
//! left in the pipes is logged. Sequencing (one hook per owner at a time) is the job of
//! [`crate::engine::hook_queue::HookQueue`]; this module only runs what it is given, after
//! [`super::hook_security`] has vetted the program when `hook_security` is strict.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mio::unix::pipe::Receiver;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::hook_security;
use crate::config::HookSecurity;
pub use crate::engine::hook_queue::HookRequest;

/// Time between the timeout's SIGTERM and the SIGKILL that follows if the group is still alive.
pub const TERM_GRACE: Duration = Duration::from_secs(2);
/// Longest line logged; the rest of a longer line is dropped, and its record says how much.
pub const MAX_LINE: usize = 4096;
/// PATH given to hooks when neither the daemon nor the request sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The event of `[[track]]` script runs: routine, so their completion is logged at debug level
/// (the track logs its changes itself).
pub const TRACK_EVENT: &str = "track";
/// Variables of the daemon's own environment that hooks inherit; everything else is dropped.
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ"];
/// What one read pass may take from one output pipe: bytes read from the pipe, lines logged.
/// A hook has two pipes, so a pass over a hook costs at most 64 KiB and 256 log lines.
///
/// Output is read in such bounded passes so that a hook writing without pause (`yes`) cannot
/// keep the loop from turning: a pass runs per readiness event of the pipe and per
/// [`HookRunner::handle_timeout`], a small fixed number of times per loop turn, and then
/// returns. What is left waits in the pipe (the writer blocks when it is full: back-pressure,
/// nothing is lost) for the next pass.
///
/// Re-arming: mio is edge-triggered, so a pipe that still holds data after its pass is not
/// reported again until *new* data arrives, and a writer blocked on a full pipe writes none.
/// Such a pipe is marked (`backlog`) and the runner's [`next_deadline`](HookRunner::next_deadline)
/// becomes [`BACKLOG_YIELD`] from now; `handle_timeout` then reads it. The timer, rather than
/// `Registry::reregister` (which makes epoll report a still-ready fd again), keeps the re-read
/// in the runner's hands, including from `handle_timeout`, which has no registry.
const PIPE_BUDGET: ReadBudget = ReadBudget {
    bytes: 32 * 1024,
    lines: 128,
};
/// Pause before re-reading a pipe whose budget ran out. Strictly in the future, so a loop that
/// fires every due timer before polling (`while let Some(t) = pop_due(now)`) still gets back to
/// its other sources while a hook floods its output.
const BACKLOG_YIELD: Duration = Duration::from_millis(1);
/// Bytes read from a pipe after the hook's leader exited. Its group is killed then, so what is
/// left is what it wrote before, at most a pipe buffer (64 KiB by default); a process that
/// escaped the group and keeps writing is cut off here, so that the hook's completion (and the
/// next hook of its owner) is held up for a second or so at worst.
const AFTER_EXIT_LIMIT: usize = 256 * 1024;
/// Size of one read from a pipe.
const CHUNK: usize = 4096;
/// How often a hook without a pidfd (kernel < 5.3) is checked for exit.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Tokens per running hook: pidfd, stdout, stderr.
const TOKENS_PER_HOOK: usize = 3;

/// A finished hook: which owner and event it belonged to and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookDone {
    pub owner: usize,
    pub event: String,
    pub outcome: HookOutcome,
    /// `name/event` (the log prefix of the hook's lines).
    pub label: String,
    /// From the start to the end of the hook (zero when it did not start).
    pub duration: Duration,
}

/// How a hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    /// The hook exited by itself with this status code.
    Exited(i32),
    /// The hook was killed by this signal (not by the timeout: that is [`Self::TimedOut`]).
    Signaled(i32),
    /// The timeout fired; the process group was sent SIGTERM (and SIGKILL after the grace).
    TimedOut,
    /// The hook could not be started (missing, not executable, empty argv, ...).
    SpawnFailed(String),
    /// `hook_security = "strict"` refused to run the program; the reason names the culprit.
    Refused(String),
    /// The hook's exit status could not be collected (someone else reaped it).
    WaitFailed(String),
}

/// Which output pipe of a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// Limits of one read pass over a pipe.
#[derive(Debug, Clone, Copy)]
struct ReadBudget {
    /// Bytes read from the pipe.
    bytes: usize,
    /// Lines logged.
    lines: usize,
}

/// Splits a byte stream into log lines, holding at most [`MAX_LINE`] bytes of a line; the rest
/// of a longer line is dropped and counted.
#[derive(Debug, Default)]
struct LineBuf {
    partial: Vec<u8>,
    /// Bytes of the current line dropped beyond [`MAX_LINE`].
    dropped: usize,
}

impl LineBuf {
    /// Feeds `bytes` until `max_lines` lines have been emitted; returns the bytes consumed and
    /// the lines emitted. Unconsumed bytes are the caller's to feed again later.
    fn feed(
        &mut self,
        bytes: &[u8],
        max_lines: usize,
        emit: &mut impl FnMut(&str),
    ) -> (usize, usize) {
        let (mut consumed, mut lines) = (0, 0);
        while lines < max_lines && consumed < bytes.len() {
            let rest = &bytes[consumed..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(newline) => {
                    self.keep(&rest[..newline]);
                    consumed += newline + 1;
                    self.emit_line(emit);
                    lines += 1;
                }
                None => {
                    self.keep(rest);
                    consumed = bytes.len();
                }
            }
        }
        (consumed, lines)
    }

    /// Emits a trailing line that had no newline (at end of stream).
    fn flush(&mut self, emit: &mut impl FnMut(&str)) {
        if !self.partial.is_empty() || self.dropped > 0 {
            self.emit_line(emit);
        }
    }

    /// Appends to the current line what fits under [`MAX_LINE`], counting the rest.
    fn keep(&mut self, bytes: &[u8]) {
        let kept = bytes.len().min(MAX_LINE.saturating_sub(self.partial.len()));
        self.partial.extend_from_slice(&bytes[..kept]);
        self.dropped += bytes.len() - kept;
    }

    fn emit_line(&mut self, emit: &mut impl FnMut(&str)) {
        if self.dropped == 0 {
            let line = self.partial.strip_suffix(b"\r").unwrap_or(&self.partial);
            emit(&String::from_utf8_lossy(line));
        } else {
            let line = without_cut_char(&self.partial);
            let dropped = self.dropped + (self.partial.len() - line.len());
            emit(&format!(
                "{} [line truncated: {dropped} more bytes dropped]",
                String::from_utf8_lossy(line)
            ));
        }
        self.partial.clear();
        self.dropped = 0;
    }
}

/// `line` without a UTF-8 character cut in two at its end (where truncation cut it).
fn without_cut_char(line: &[u8]) -> &[u8] {
    for len in 1..=line.len().min(3) {
        let tail = &line[line.len() - len..];
        if let Err(e) = std::str::from_utf8(tail) {
            // The tail starts a character and ends before it does.
            if e.valid_up_to() == 0 && e.error_len().is_none() {
                return &line[..line.len() - len];
            }
        }
    }
    line
}

/// One output pipe of a running hook.
struct OutputPipe {
    rx: Receiver,
    lines: LineBuf,
    stream: Stream,
    /// Bytes read from the pipe that are not logged yet (the line budget ran out within them),
    /// from `held_at` on.
    held: Vec<u8>,
    held_at: usize,
}

/// What a bounded read of a pipe ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DrainEnd {
    /// Nothing more to read for now.
    WouldBlock,
    /// The budget ran out with data possibly left: read again soon.
    Budget,
    /// All writers are gone (or the pipe failed): close it.
    Closed,
}

impl OutputPipe {
    fn new(rx: Receiver, stream: Stream) -> Self {
        OutputPipe {
            rx,
            lines: LineBuf::default(),
            stream,
            held: Vec::with_capacity(CHUNK),
            held_at: 0,
        }
    }

    /// One read pass within `budget`, logging complete lines under `label`. Returns how it
    /// ended and the bytes read from the pipe.
    fn drain(&mut self, label: &str, budget: ReadBudget) -> (DrainEnd, usize) {
        let stream = self.stream;
        let mut emit = |line: &str| log_line(label, stream, line);
        let (mut read, mut lines_left) = (0, budget.lines);
        loop {
            let (used, lines) = self
                .lines
                .feed(&self.held[self.held_at..], lines_left, &mut emit);
            self.held_at += used;
            lines_left -= lines;
            if self.held_at < self.held.len() || lines_left == 0 || read >= budget.bytes {
                return (DrainEnd::Budget, read);
            }
            let want = CHUNK.min(budget.bytes - read);
            self.held.resize(want, 0);
            self.held_at = 0;
            let result = self.rx.read(&mut self.held);
            self.held.truncate(*result.as_ref().unwrap_or(&0));
            match result {
                Ok(0) => {
                    self.lines.flush(&mut emit);
                    return (DrainEnd::Closed, read);
                }
                Ok(n) => read += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return (DrainEnd::WouldBlock, read)
                }
                Err(e) => {
                    tracing::warn!("hook {label}: reading {stream:?}: {e}");
                    self.lines.flush(&mut emit);
                    return (DrainEnd::Closed, read);
                }
            }
        }
    }

    /// Logs the last partial line, before the pipe is closed.
    fn finish(&mut self, label: &str) {
        let stream = self.stream;
        self.lines
            .flush(&mut |line: &str| log_line(label, stream, line));
    }
}

fn log_line(label: &str, stream: Stream, line: &str) {
    match stream {
        Stream::Stdout => tracing::info!("hook {label}: {line}"),
        Stream::Stderr => tracing::warn!("hook {label}: {line}"),
    }
}

/// Where a hook stands: with respect to its timeout while it runs, then reaped.
#[derive(Debug, Clone)]
enum Phase {
    /// Within its time; SIGTERM is due at `deadline` (never, if the timeout overflows).
    Running { deadline: Option<Instant> },
    /// SIGTERM sent to the group; SIGKILL is due at `kill_at`.
    Terminating { kill_at: Instant },
    /// SIGKILL sent; waiting for the exit.
    Killed,
    /// The leader is reaped (its group killed) with this outcome; what its pipes still hold is
    /// being logged, in budgeted passes, before the completion is reported. No signal is sent
    /// any more: the pid may already belong to another process.
    Reaped(HookOutcome),
}

/// A spawned hook, from its start until its completion is reported.
struct RunningHook {
    owner: usize,
    event: String,
    /// `name/event`, the prefix of every log line of this hook.
    label: String,
    child: Child,
    /// Pid of the leader, which is also the process group id.
    pid: Pid,
    /// Readable once the leader has exited; `None` if pidfds are unavailable (then polled).
    pidfd: Option<OwnedFd>,
    stdout: Option<OutputPipe>,
    stderr: Option<OutputPipe>,
    phase: Phase,
    timed_out: bool,
    /// Set when an output pipe still had data after its read budget: read again very soon.
    backlog: bool,
    /// Bytes read since the leader was reaped (see [`AFTER_EXIT_LIMIT`]).
    after_exit: usize,
    /// Next check for a hook without pidfd.
    poll_at: Option<Instant>,
    started: Instant,
}

impl RunningHook {
    fn is_reaped(&self) -> bool {
        matches!(self.phase, Phase::Reaped(_))
    }

    /// True once both output pipes are closed (or were never watched).
    fn output_closed(&self) -> bool {
        self.stdout.is_none() && self.stderr.is_none()
    }

    /// One read pass over `stream` within [`PIPE_BUDGET`]. The pipe is closed at end of stream,
    /// and once the leader is reaped also as soon as it is empty (everything its group wrote is
    /// read; a writer outside the group is not waited for) or after [`AFTER_EXIT_LIMIT`].
    fn read_output(&mut self, registry: Option<&Registry>, stream: Stream) {
        let reaped = self.is_reaped();
        let slot = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        let Some(pipe) = slot.as_mut() else {
            return;
        };
        let (end, read) = pipe.drain(&self.label, PIPE_BUDGET);
        if reaped {
            self.after_exit = self.after_exit.saturating_add(read);
        }
        let close = match end {
            DrainEnd::Closed => true,
            DrainEnd::WouldBlock => reaped,
            DrainEnd::Budget => reaped && self.after_exit >= AFTER_EXIT_LIMIT,
        };
        if !close {
            self.backlog |= end == DrainEnd::Budget;
            return;
        }
        let Some(mut pipe) = slot.take() else {
            return;
        };
        pipe.finish(&self.label);
        if end == DrainEnd::Budget {
            tracing::warn!(
                "hook {}: {stream:?} still flowing {AFTER_EXIT_LIMIT} bytes after the hook exited \
                 (a process outside its group?): stopped reading it, the rest is dropped",
                self.label
            );
        }
        deregister(registry, &mut pipe.rx, &self.label);
    }

    fn read_all_output(&mut self, registry: Option<&Registry>) {
        self.backlog = false;
        self.read_output(registry, Stream::Stdout);
        self.read_output(registry, Stream::Stderr);
    }

    /// Records the reaped leader's outcome, stops watching its pidfd and makes a first read
    /// pass over what its pipes still hold.
    fn reaped(&mut self, registry: Option<&Registry>, outcome: HookOutcome) {
        self.phase = Phase::Reaped(outcome);
        self.poll_at = None;
        if let Some(pidfd) = self.pidfd.take() {
            deregister(registry, &mut SourceFd(&pidfd.as_raw_fd()), &self.label);
        }
        self.read_all_output(registry);
    }

    /// Sends `signal` to the hook's process group and to the leader itself (in case it left
    /// the group). Does nothing once the leader is reaped: the ids could be recycled.
    fn signal_group(&self, signal: Signal) {
        if self.is_reaped() {
            return;
        }
        for result in [killpg(self.pid, signal), kill(self.pid, signal)] {
            if let Err(e) = result {
                if e != nix::errno::Errno::ESRCH {
                    tracing::warn!(
                        "hook {}: sending {signal} to group {}: {e}",
                        self.label,
                        self.pid
                    );
                }
            }
        }
    }

    /// Applies the timeout policy at `now`: SIGTERM at the deadline, SIGKILL after the grace.
    fn escalate(&mut self, now: Instant) {
        match self.phase {
            Phase::Running {
                deadline: Some(deadline),
            } if deadline <= now => {
                tracing::warn!(
                    "hook {}: timed out, sending SIGTERM to process group {}",
                    self.label,
                    self.pid
                );
                self.signal_group(Signal::SIGTERM);
                self.timed_out = true;
                self.phase = Phase::Terminating {
                    kill_at: now + TERM_GRACE,
                };
            }
            Phase::Terminating { kill_at } if kill_at <= now => {
                tracing::warn!(
                    "hook {}: still running {:?} after SIGTERM, sending SIGKILL to process group {}",
                    self.label,
                    TERM_GRACE,
                    self.pid
                );
                self.signal_group(Signal::SIGKILL);
                self.phase = Phase::Killed;
            }
            _ => {}
        }
    }

    /// If the leader has exited: kills what is left of its group, reaps it and returns the
    /// outcome. `None` while the leader runs. Never blocks.
    fn try_finish(&mut self) -> Option<HookOutcome> {
        let peek = waitid(
            Id::Pid(self.pid),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        );
        match peek {
            Ok(WaitStatus::StillAlive) => return None,
            // Leftovers in the group die before the leader is reaped (the zombie pins the id).
            Ok(_) => self.signal_group(Signal::SIGKILL),
            Err(e) => return Some(self.wait_failed(&e.to_string())),
        }
        match self.child.try_wait() {
            Ok(Some(status)) => Some(self.outcome(status)),
            Ok(None) => None,
            Err(e) => Some(self.wait_failed(&e.to_string())),
        }
    }

    fn wait_failed(&self, error: &str) -> HookOutcome {
        tracing::warn!(
            "hook {}: cannot collect exit status of pid {}: {error}",
            self.label,
            self.pid
        );
        HookOutcome::WaitFailed(format!("waiting for pid {}: {error}", self.pid))
    }

    fn outcome(&self, status: ExitStatus) -> HookOutcome {
        if self.timed_out {
            HookOutcome::TimedOut
        } else if let Some(code) = status.code() {
            HookOutcome::Exited(code)
        } else if let Some(signal) = status.signal() {
            HookOutcome::Signaled(signal)
        } else {
            HookOutcome::WaitFailed(format!("unrecognised wait status {status}"))
        }
    }

    /// Earliest instant at which [`HookRunner::handle_timeout`] has work for this hook.
    fn next_deadline(&self, now_hint: Option<Instant>) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Running { deadline } => deadline,
            Phase::Terminating { kill_at } => Some(kill_at),
            Phase::Killed | Phase::Reaped(_) => None,
        };
        let backlog = match (self.backlog, now_hint) {
            (true, Some(now)) => Some(now + BACKLOG_YIELD),
            _ => None,
        };
        [phase, self.poll_at, backlog].into_iter().flatten().min()
    }
}

/// Removes `source` from the poll when a registry is at hand; without one, closing the fd
/// (the runner holds the only reference) removes it from epoll.
fn deregister(registry: Option<&Registry>, source: &mut impl mio::event::Source, label: &str) {
    if let Some(registry) = registry {
        if let Err(e) = registry.deregister(source) {
            tracing::debug!("hook {label}: deregistering from the poll: {e}");
        }
    }
}

/// Runs hook processes for the daemon's mio loop. Tokens `>= token_base` belong to it.
pub struct HookRunner {
    token_base: usize,
    /// Running hooks by slot; slot `s` uses tokens `token_base + 3s .. token_base + 3s + 2`.
    slots: Vec<Option<RunningHook>>,
    /// The minimal environment every hook starts from (before the request's own variables).
    base_env: Vec<(OsString, OsString)>,
    /// Instant of the last input, used to schedule a prompt re-read of busy pipes.
    last_now: Option<Instant>,
    /// False once pidfd_open proved unsupported (ENOSYS): exits are then polled.
    use_pidfd: bool,
    /// Whether programs are vetted by [`hook_security::check`] before they start.
    security: HookSecurity,
    /// Hooks refused by that check since the runner was created.
    refused: u64,
}

impl std::fmt::Debug for HookRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookRunner")
            .field("token_base", &self.token_base)
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}

impl HookRunner {
    /// A runner whose mio tokens are all `>= token_base`, vetting programs per `security`.
    /// Captures the minimal environment (PATH, HOME, LANG, LC_ALL, LC_CTYPE, TZ) from the
    /// daemon's own.
    pub fn new(token_base: usize, security: HookSecurity) -> Self {
        Self {
            token_base,
            slots: Vec::new(),
            base_env: minimal_env(std::env::vars_os()),
            last_now: None,
            use_pidfd: true,
            security,
            refused: 0,
        }
    }

    /// True for tokens this runner registered (or may register): every token `>= token_base`.
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.token_base
    }

    /// Number of hooks started and not reported done yet (a hook whose leader exited counts
    /// until the rest of its output is logged).
    pub fn running(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Number of hooks `hook_security = "strict"` refused to run.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Spawns `req`. Returns `Some(HookDone)` at once if the hook is not started: with
    /// [`HookOutcome::Refused`] when the security policy refuses its program (logged and
    /// counted), with [`HookOutcome::SpawnFailed`] when it cannot be started. Either way the
    /// hook counts as finished. Otherwise the completion arrives later through
    /// [`handle_event`](Self::handle_event) or [`handle_timeout`](Self::handle_timeout).
    ///
    /// Runs on the caller's (the loop's) thread and touches the file system there: the strict
    /// check walks the program's path (see [`hook_security`]) and the spawn waits for the
    /// child's `execve` of it. Both are quick for a program on local disk, and would block the
    /// loop for as long as a hung network file system does.
    pub fn start(
        &mut self,
        registry: &Registry,
        req: HookRequest,
        now: Instant,
    ) -> Option<HookDone> {
        self.last_now = Some(now);
        let label = hook_label(&req);
        if req.skipped > 0 {
            let plural = if req.skipped == 1 { "" } else { "s" };
            tracing::info!("hook {label}: skipped {} transition{plural}", req.skipped);
        }
        if let Err(reason) = self.vet(&req) {
            self.refused += 1;
            return Some(HookDone {
                owner: req.owner,
                event: req.event,
                outcome: HookOutcome::Refused(reason),
                label,
                duration: Duration::ZERO,
            });
        }
        let slot = self.free_slot();
        let spawned = self
            .slot_token(slot, TOKENS_PER_HOOK - 1)
            .ok_or_else(|| "no free mio token left for hooks".to_string())
            .and_then(|_| self.spawn(&req));
        let child = match spawned {
            Ok(child) => child,
            Err(reason) => {
                tracing::warn!("hook {label}: cannot start {:?}: {reason}", req.argv);
                return Some(HookDone {
                    owner: req.owner,
                    event: req.event,
                    outcome: HookOutcome::SpawnFailed(reason),
                    label,
                    duration: Duration::ZERO,
                });
            }
        };
        let hook = self.watch(registry, slot, child, req, label, now);
        if let Some(entry) = self.slots.get_mut(slot) {
            *entry = Some(hook);
        }
        None
    }

    /// Handles a readiness event for one of this runner's tokens; pushes completions to `done`.
    pub fn handle_event(
        &mut self,
        registry: &Registry,
        event: &mio::event::Event,
        now: Instant,
        done: &mut Vec<HookDone>,
    ) {
        self.last_now = Some(now);
        let Some(offset) = event.token().0.checked_sub(self.token_base) else {
            return;
        };
        let (slot, kind) = (offset / TOKENS_PER_HOOK, offset % TOKENS_PER_HOOK);
        let Some(hook) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return; // stale event of a hook already completed
        };
        match kind {
            1 => hook.read_output(Some(registry), Stream::Stdout),
            2 => hook.read_output(Some(registry), Stream::Stderr),
            _ => {}
        }
        // Exit is checked on every event: cheap, and robust to lost or reordered edges.
        self.check_exit(Some(registry), slot, done);
    }

    /// Applies timeouts due at `now`, polls hooks without pidfd, re-reads pipes whose budget
    /// ran out and reports reaped hooks whose output is read.
    pub fn handle_timeout(&mut self, now: Instant, done: &mut Vec<HookDone>) {
        self.last_now = Some(now);
        for slot in 0..self.slots.len() {
            let Some(hook) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            hook.escalate(now);
            if hook.backlog {
                hook.read_all_output(None);
            }
            let poll_due = hook.poll_at.is_some_and(|at| at <= now);
            if poll_due {
                hook.poll_at = Some(now + EXIT_POLL_INTERVAL);
            }
            if poll_due || hook.is_reaped() {
                self.check_exit(None, slot, done);
            }
        }
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .filter_map(|hook| hook.next_deadline(self.last_now))
            .min()
    }

    /// Sends SIGKILL to the process group of every running hook (e.g. at daemon shutdown).
    /// Their completions are reported as usual once they are reaped.
    pub fn kill_all(&mut self) {
        for hook in self.slots.iter_mut().flatten() {
            if !hook.is_reaped() {
                hook.signal_group(Signal::SIGKILL);
                hook.phase = Phase::Killed;
            }
        }
    }

    /// Reaps the hook in `slot` if its leader has exited; once it is reaped and its output is
    /// read, frees the slot and reports the completion.
    fn check_exit(&mut self, registry: Option<&Registry>, slot: usize, done: &mut Vec<HookDone>) {
        let Some(entry) = self.slots.get_mut(slot) else {
            return;
        };
        let Some(hook) = entry.as_mut() else {
            return;
        };
        if !hook.is_reaped() {
            let Some(outcome) = hook.try_finish() else {
                return;
            };
            hook.reaped(registry, outcome);
        }
        if !hook.output_closed() {
            return;
        }
        let Some(hook) = entry.take() else {
            return;
        };
        let Phase::Reaped(outcome) = hook.phase else {
            return; // unreachable: reaped above
        };
        if hook.event == TRACK_EVENT {
            tracing::debug!("hook {} finished: {outcome:?}", hook.label);
        } else {
            tracing::info!("hook {} finished: {outcome:?}", hook.label);
        }
        done.push(HookDone {
            owner: hook.owner,
            event: hook.event,
            outcome,
            duration: hook.started.elapsed(),
            label: hook.label,
        });
    }

    fn free_slot(&mut self) -> usize {
        match self.slots.iter().position(Option::is_none) {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        }
    }

    fn slot_token(&self, slot: usize, kind: usize) -> Option<Token> {
        slot.checked_mul(TOKENS_PER_HOOK)
            .and_then(|offset| offset.checked_add(kind))
            .and_then(|offset| self.token_base.checked_add(offset))
            .map(Token)
    }

    /// Applies the security policy to the program of `req`, logging a refusal. An empty argv
    /// passes: the spawn reports it.
    fn vet(&self, req: &HookRequest) -> Result<(), String> {
        let Some(program) = req.argv.first() else {
            return Ok(());
        };
        if self.security == HookSecurity::Off {
            return Ok(());
        }
        hook_security::check(std::path::Path::new(program)).inspect_err(|reason| {
            tracing::warn!(
                "hook {program} refused: {reason}; fix the permissions or set \
                 hook_security = \"off\" in [node]"
            );
        })
    }

    /// Spawns the leader of a new process group, without a shell.
    fn spawn(&self, req: &HookRequest) -> Result<Child, String> {
        let (program, args) = req
            .argv
            .split_first()
            .ok_or_else(|| "empty command (argv)".to_string())?;
        let mut command = Command::new(program);
        // SAFETY: the closure only makes async-signal-safe calls (see `reset_signals`).
        unsafe { command.pre_exec(reset_signals) };
        command
            .args(args)
            .env_clear()
            .envs(self.base_env.iter().map(|(k, v)| (k, v)))
            .envs(req.env.iter().map(|(k, v)| (k, v)))
            .env("RELEVO_SKIPPED", req.skipped.to_string())
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("spawning {program}: {e}"))
    }

    /// Registers the pidfd and output pipes of a freshly spawned hook. Registration failures
    /// degrade (exit polling, output dropped) but never fail the hook that is already running.
    fn watch(
        &mut self,
        registry: &Registry,
        slot: usize,
        mut child: Child,
        req: HookRequest,
        label: String,
        now: Instant,
    ) -> RunningHook {
        // std hands out the pid_t widened to u32; narrowing it back is exact.
        let pid = Pid::from_raw(child.id() as i32);
        let pidfd = self.register_pidfd(registry, slot, pid, &label);
        let stdout = child.stdout.take().map(Receiver::from);
        let stderr = child.stderr.take().map(Receiver::from);
        let stdout = self.register_pipe(registry, slot, stdout, Stream::Stdout, &label);
        let stderr = self.register_pipe(registry, slot, stderr, Stream::Stderr, &label);
        let poll_at = pidfd.is_none().then(|| now + EXIT_POLL_INTERVAL);
        tracing::debug!("hook {label}: started {:?} as pid {pid}", req.argv);
        RunningHook {
            owner: req.owner,
            event: req.event,
            label,
            child,
            pid,
            pidfd,
            stdout,
            stderr,
            phase: Phase::Running {
                deadline: now.checked_add(req.timeout),
            },
            timed_out: false,
            backlog: false,
            after_exit: 0,
            poll_at,
            started: Instant::now(),
        }
    }

    fn register_pidfd(
        &mut self,
        registry: &Registry,
        slot: usize,
        pid: Pid,
        label: &str,
    ) -> Option<OwnedFd> {
        let token = self.slot_token(slot, 0)?;
        if !self.use_pidfd {
            return None;
        }
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!("hook {label}: pidfd_open({pid}): {e}; polling for its exit");
                self.use_pidfd = e.raw_os_error() != Some(libc::ENOSYS);
                return None;
            }
        };
        match registry.register(&mut SourceFd(&pidfd.as_raw_fd()), token, Interest::READABLE) {
            Ok(()) => Some(pidfd),
            Err(e) => {
                tracing::warn!("hook {label}: registering pidfd: {e}; polling for its exit");
                None
            }
        }
    }

    fn register_pipe(
        &self,
        registry: &Registry,
        slot: usize,
        rx: Option<Receiver>,
        stream: Stream,
        label: &str,
    ) -> Option<OutputPipe> {
        let kind = match stream {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        };
        let token = self.slot_token(slot, kind)?;
        let mut rx = rx?;
        let registered = rx
            .set_nonblocking(true)
            .and_then(|()| registry.register(&mut rx, token, Interest::READABLE));
        match registered {
            Ok(()) => Some(OutputPipe::new(rx, stream)),
            Err(e) => {
                tracing::warn!("hook {label}: cannot watch {stream:?}, its output is dropped: {e}");
                None
            }
        }
    }
}

impl Drop for HookRunner {
    /// Hooks nobody watches any more cannot be timed out: kill their groups and reap what
    /// already died (without blocking).
    fn drop(&mut self) {
        self.kill_all();
        for hook in self.slots.iter_mut().flatten() {
            let _ = hook.child.try_wait();
        }
    }
}

/// `name/event` for log lines: the instance name from `RELEVO_NAME`, else `#owner`.
fn hook_label(req: &HookRequest) -> String {
    let name = req
        .env
        .iter()
        .find(|(key, _)| key == "RELEVO_NAME")
        .map_or_else(|| format!("#{}", req.owner), |(_, value)| value.clone());
    format!("{name}/{}", req.event)
}

/// The inherited subset of `vars`, plus a default PATH when it has none.
fn minimal_env(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vars
        .filter(|(key, _)| INHERITED_ENV.iter().any(|k| key == k))
        .collect();
    if !env.iter().any(|(key, _)| key == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    env
}

/// Runs in the forked child before exec: an empty signal mask and default dispositions, so a
/// daemon blocking signals (signalfd) or ignoring them does not pass that on to hooks — a hook
/// with SIGTERM blocked could not be stopped by its timeout's SIGTERM. std does not do this
/// (measured: a blocked SIGTERM reaches the child's SigBlk).
///
/// Dispositions are reset up to SIGRTMAX: an ignored real-time signal is inherited through
/// exec like any other. The C library refuses the two it keeps for itself (glibc: 32 and 33,
/// below SIGRTMIN); programs using it set those up on their own.
fn reset_signals() -> io::Result<()> {
    // SAFETY: sigemptyset, pthread_sigmask, SIGRTMAX (reads a libc constant) and signal are
    // async-signal-safe and only touch the zero-initialised local set and this
    // (single-threaded, about to exec) child.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        let rc = libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        for signal in 1..=libc::SIGRTMAX() {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                // Fails only for signals that cannot or may not be changed; nothing to undo.
                libc::signal(signal, libc::SIG_DFL);
            }
        }
    }
    Ok(())
}

/// Opens a pidfd (close-on-exec) for `pid`; readable once the process has exited.
fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is shared.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: &[&[u8]]) -> Vec<String> {
        let mut buf = LineBuf::default();
        let mut out = Vec::new();
        let mut emit = |line: &str| out.push(line.to_string());
        for chunk in chunks {
            assert_eq!(buf.feed(chunk, usize::MAX, &mut emit).0, chunk.len());
        }
        buf.flush(&mut emit);
        out
    }

    #[test]
    fn lines_split_across_chunks_and_crlf() {
        let out = lines_of(&[b"one\ntw", b"o\r\nthr", b"ee"]);
        assert_eq!(out, ["one", "two", "three"]);
    }

    #[test]
    fn empty_lines_are_kept_and_no_trailing_empty_line() {
        assert_eq!(lines_of(&[b"a\n\nb\n"]), ["a", "", "b"]);
        assert!(lines_of(&[b""]).is_empty());
    }

    #[test]
    fn long_lines_are_truncated_at_the_cap_and_say_so() {
        let mut input = vec![b'x'; MAX_LINE * 2 + 10];
        input.extend_from_slice(b"\nend\n");
        let out = lines_of(&[&input[..100], &input[100..]]);
        let kept = "x".repeat(MAX_LINE);
        let dropped = MAX_LINE + 10;
        assert_eq!(
            out,
            [
                format!("{kept} [line truncated: {dropped} more bytes dropped]"),
                "end".to_string()
            ]
        );
        // A line cut at the cap without a newline is reported at end of stream.
        let out = lines_of(&[&[b'y'; MAX_LINE + 1]]);
        assert_eq!(out.len(), 1);
        assert!(out[0].ends_with(" [line truncated: 1 more bytes dropped]"));
        // Exactly MAX_LINE bytes is not truncated.
        assert_eq!(
            lines_of(&[&[b'z'; MAX_LINE], b"\n"]),
            ["z".repeat(MAX_LINE)]
        );
    }

    #[test]
    fn truncation_does_not_cut_a_character_in_two() {
        let mut input = vec![b'a'; MAX_LINE - 1];
        input.extend_from_slice("é and more\n".as_bytes());
        let out = lines_of(&[&input]);
        let dropped = "é and more".len();
        assert_eq!(
            out,
            [format!(
                "{} [line truncated: {dropped} more bytes dropped]",
                "a".repeat(MAX_LINE - 1)
            )]
        );
    }

    #[test]
    fn feed_stops_at_the_line_budget_and_resumes() {
        let mut buf = LineBuf::default();
        let mut out = Vec::new();
        let mut emit = |line: &str| out.push(line.to_string());
        let input = b"1\n2\n3\n4\n5";
        assert_eq!(buf.feed(input, 2, &mut emit), (4, 2));
        assert_eq!(buf.feed(&input[4..], 2, &mut emit), (4, 2));
        assert_eq!(buf.feed(&input[8..], 2, &mut emit), (1, 0));
        buf.flush(&mut emit);
        assert_eq!(out, ["1", "2", "3", "4", "5"]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        assert_eq!(lines_of(&[b"a\xffb\n"]), ["a\u{fffd}b"]);
    }

    #[test]
    fn minimal_env_keeps_only_the_allowed_variables() {
        let vars = [("PATH", "/x"), ("SECRET", "s"), ("LANG", "C.UTF-8")]
            .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env = minimal_env(vars.into_iter());
        assert_eq!(
            env,
            [
                ("PATH".into(), "/x".into()),
                ("LANG".into(), "C.UTF-8".into())
            ]
        );
        let env = minimal_env(std::iter::empty());
        assert_eq!(env, [("PATH".into(), DEFAULT_PATH.into())]);
    }

    /// Drives `runner` with its own poll until one hook completes (at most 10 s).
    fn run_one(runner: &mut HookRunner, poll: &mut mio::Poll) -> HookDone {
        let mut events = mio::Events::with_capacity(16);
        let mut done = Vec::new();
        let start = Instant::now();
        while done.is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "hook never completed"
            );
            let wait = runner
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            assert!(wait.is_some(), "a polled hook must always have a deadline");
            poll.poll(&mut events, wait).unwrap();
            let now = Instant::now();
            for event in events.iter() {
                runner.handle_event(poll.registry(), event, now, &mut done);
            }
            runner.handle_timeout(now, &mut done);
        }
        assert_eq!(runner.running(), 0);
        done.remove(0)
    }

    fn request(argv: &[&str], timeout: Duration) -> HookRequest {
        HookRequest {
            owner: 1,
            event: "backup".into(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            env: vec![],
            timeout,
            skipped: 0,
        }
    }

    #[test]
    fn without_pidfd_exit_and_timeout_are_found_by_polling() {
        let mut poll = mio::Poll::new().unwrap();
        let mut runner = HookRunner::new(10, HookSecurity::Off);
        runner.use_pidfd = false;
        let req = request(
            &["/bin/sh", "-c", "echo hi; exit 4"],
            Duration::from_secs(5),
        );
        assert_eq!(runner.start(poll.registry(), req, Instant::now()), None);
        assert_eq!(
            run_one(&mut runner, &mut poll).outcome,
            HookOutcome::Exited(4)
        );
        let req = request(&["/bin/sleep", "60"], Duration::from_millis(100));
        assert_eq!(runner.start(poll.registry(), req, Instant::now()), None);
        assert_eq!(
            run_one(&mut runner, &mut poll).outcome,
            HookOutcome::TimedOut
        );
    }

    #[test]
    fn label_uses_the_instance_name_when_known() {
        let mut req = HookRequest {
            owner: 4,
            event: "master".into(),
            argv: vec![],
            env: vec![],
            timeout: Duration::from_secs(1),
            skipped: 0,
        };
        assert_eq!(hook_label(&req), "#4/master");
        req.env.push(("RELEVO_NAME".into(), "web".into()));
        assert_eq!(hook_label(&req), "web/master");
    }
}
