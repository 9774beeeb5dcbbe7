//! The daemon's log: tracing events formatted on the thread that logs them and handed to a
//! bounded, lossy queue that one writer thread drains onto standard error. A stalled stderr (a
//! pipe nobody reads, a stopped journald) blocks only that writer: the event loop never waits
//! for it, it drops lines instead and counts them ([`dropped_lines`], `log_lines_dropped` in
//! `relevo status`).
use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::signal::{SigSet, SigmaskHow};
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines queued for the writer before new ones are dropped (a few hundred KiB at most).
pub const BUFFERED_LINES: usize = 4096;
/// How long exiting waits for the writer to flush what is queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Keeps the writer thread alive; dropping it flushes the queue, waiting at most
/// [`FLUSH_TIMEOUT`] (a stalled stderr must not keep the daemon from exiting).
pub struct LogGuard {
    worker: Option<WorkerGuard>,
}

/// Installs the global subscriber: level from `RELEVO_LOG` (default `info`), output to stderr
/// through the non-blocking writer. Keep the guard for the life of the process.
pub fn init() -> LogGuard {
    let filter = EnvFilter::try_from_env("RELEVO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // The writer thread inherits the signal mask of the thread that spawns it. The daemon
    // blocks SIGTERM/SIGINT/SIGHUP for a signalfd later, in the loop's thread only; a thread
    // that had them unblocked would take them with their default action (exit at once,
    // without a graceful shutdown). So the writer is spawned with every signal blocked.
    let (writer, worker) = with_signals_blocked(|| {
        NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(BUFFERED_LINES)
            .thread_name("relevo-log")
            .finish(std::io::stderr())
    });
    let _ = DROPPED.set(writer.error_counter());
    // Colours only on a terminal: journald, files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer)
        .try_init();
    if let Err(e) = installed {
        eprintln!("relevo: logging was already set up: {e}");
    }
    LogGuard {
        worker: Some(worker),
    }
}

/// Log lines dropped so far because the writer fell behind (0 before [`init`]).
pub fn dropped_lines() -> u64 {
    DROPPED
        .get()
        .map_or(0, |counter| counter.dropped_lines() as u64)
}

fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    let previous = SigSet::all().thread_swap_mask(SigmaskHow::SIG_BLOCK);
    let out = f();
    if let Ok(previous) = previous {
        let _ = previous.thread_set_mask();
    }
    out
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let Some(worker) = self.worker.take() else {
            return;
        };
        // WorkerGuard's own drop waits about a second for the writer and, when the writer is
        // stuck, println!s a complaint to stdout, which blocks for good when stdout is the
        // stalled pipe too (`2>&1`). So it runs aside, and exiting gives up after the timeout
        // (the process then exits and takes both stuck threads with it).
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let flusher = std::thread::Builder::new()
            .name("relevo-log-flush".into())
            .spawn(move || {
                drop(worker);
                let _ = done_tx.send(());
            });
        if flusher.is_ok() {
            let _ = done_rx.recv_timeout(FLUSH_TIMEOUT);
        }
    }
}
