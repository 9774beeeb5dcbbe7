//! The client-side outage probe and its orchestrator handle.
//!
//! Probe side (`relevo probe --target IP --interval 1ms`, run inside the client namespace, or
//! on a thread that entered it): ICMP/ICMPv6 echo requests from a raw socket on a fixed time
//! grid, replies matched by identifier + sequence, a probe is lost when no reply came within
//! `--timeout`. Output, one line each, flushed at once (times are CLOCK_MONOTONIC):
//!
//! ```text
//! ready                                  first reply seen (losses before it are ignored)
//! loss <start_ns>                        a loss run began (its first lost probe was sent then)
//! outage <start_ns> <len_us> <lost>      a loss run ended: len = first success - first loss
//! stats <sent> <received>                on SIGTERM/SIGINT or stdin EOF, then exit
//! ```
//!
//! Orchestrator side: [`ProbeHandle`] collects these lines on a reader thread and answers
//! "what outage did the client see after instant t".
use crate::lab::netns::{Lab, LabProcess};
use crate::lab::util::{check_interrupted, install_interrupt_handler, interrupted, monotonic_ns};
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::socket::SockaddrStorage;
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::ChildStdin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest single poll wait, so stop requests are noticed quickly.
const MAX_POLL_WAIT_NS: u64 = 20_000_000;
/// Bytes after the ICMP header in every request, so replies are recognisably ours.
const PAYLOAD: &[u8; 16] = b"relevo-probe....";

/// Arguments of the hidden `relevo probe` subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct ProbeArgs {
    /// Address to ping (IPv4: ICMP echo, IPv6: ICMPv6 echo).
    #[arg(long)]
    pub target: IpAddr,
    /// Time between two echo requests (e.g. 1ms, 500us).
    #[arg(long, default_value = "1ms", value_parser = duration_arg)]
    pub interval: Duration,
    /// A request without a reply after this long is lost.
    #[arg(long, default_value = "100ms", value_parser = duration_arg)]
    pub timeout: Duration,
    /// Do not stop on stdin EOF (only on SIGTERM/SIGINT).
    #[arg(long)]
    pub ignore_stdin: bool,
}

fn duration_arg(text: &str) -> std::result::Result<Duration, String> {
    match crate::config::parse_duration(text)? {
        d if d.is_zero() => Err(format!("duration {text:?} must be positive")),
        d => Ok(d),
    }
}

/// A duration as exact decimal milliseconds ("1.000000ms"), which `duration_arg` reads back.
fn millis_text(d: Duration) -> String {
    let nanos = d.as_nanos();
    format!("{}.{:06}ms", nanos / 1_000_000, nanos % 1_000_000)
}

/// Entry point of `relevo probe`: runs until SIGTERM/SIGINT or stdin EOF.
pub fn run(args: ProbeArgs) -> Result<()> {
    install_interrupt_handler()?;
    let config = ProbeConfig::new(args.target, args.interval, args.timeout, process_ident())?;
    let stdin = std::io::stdin();
    let watch = if args.ignore_stdin {
        None
    } else {
        Some(stdin.as_fd())
    };
    let mut out = std::io::stdout().lock();
    probe_loop(&config, &mut out, watch, &interrupted)
}

/// One echo-probe run's parameters (validated).
#[derive(Debug, Clone)]
struct ProbeConfig {
    target: IpAddr,
    interval_ns: u64,
    timeout_ns: u64,
    ident: u16,
}

impl ProbeConfig {
    fn new(target: IpAddr, interval: Duration, timeout: Duration, ident: u16) -> Result<Self> {
        if interval < Duration::from_micros(100) {
            bail!("probe interval {interval:?} is below 100us");
        }
        if timeout <= interval {
            bail!("probe timeout {timeout:?} must exceed the interval {interval:?}");
        }
        if timeout > Duration::from_secs(10) {
            bail!("probe timeout {timeout:?} is above 10s");
        }
        Ok(ProbeConfig {
            target,
            interval_ns: interval.as_nanos() as u64,
            timeout_ns: timeout.as_nanos() as u64,
            ident,
        })
    }
}

fn process_ident() -> u16 {
    (std::process::id() & 0xffff) as u16
}

/// The paced send / receive / report loop of `relevo probe`.
fn probe_loop(
    config: &ProbeConfig,
    out: &mut dyn Write,
    stdin: Option<BorrowedFd<'_>>,
    stop: &dyn Fn() -> bool,
) -> Result<()> {
    reduce_timer_slack();
    let socket = EchoSocket::open(config.target, config.ident)?;
    let mut tracker = LossTracker::new(config.timeout_ns);
    let mut buf = [0u8; 2048];
    let mut seq: u64 = 0;
    let mut next_send = monotonic_ns();
    while !stop() {
        let now = monotonic_ns();
        if now >= next_send {
            // A failed send (no neighbour, unreachable) is a lost probe like any other.
            let _ = socket.send(seq as u16);
            tracker.on_sent(seq, now);
            seq += 1;
            next_send = next_slot(next_send, now, config.interval_ns);
        }
        while let Some(reply) = socket.recv(&mut buf)? {
            if let Received::Reply(seq16) = reply {
                tracker.on_reply(seq16);
            }
        }
        for line in tracker.poll(monotonic_ns()) {
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .context("writing probe output")?;
        }
        let wait_ns = next_send
            .saturating_sub(monotonic_ns())
            .min(MAX_POLL_WAIT_NS);
        if wait_readable(&socket, stdin, wait_ns)? == Wake::StdinClosed {
            break;
        }
    }
    let (sent, received) = tracker.counts();
    writeln!(out, "stats {sent} {received}")
        .and_then(|()| out.flush())
        .context("writing probe stats")
}

/// The next send instant on the fixed grid; missed slots are skipped, never accumulated.
fn next_slot(scheduled: u64, now: u64, interval_ns: u64) -> u64 {
    let next = scheduled + interval_ns;
    if next > now {
        next
    } else {
        next + ((now - next) / interval_ns + 1) * interval_ns
    }
}

/// Asks for 1 ns timer slack so poll timeouts fire on time (default slack is 50 us).
fn reduce_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer and only affects the calling thread.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Wake {
    Ready,
    StdinClosed,
}

/// Waits up to `wait_ns` for a reply or stdin activity; reports stdin EOF.
fn wait_readable(socket: &EchoSocket, stdin: Option<BorrowedFd<'_>>, wait_ns: u64) -> Result<Wake> {
    let mut fds = vec![PollFd::new(socket.socket.as_fd(), PollFlags::POLLIN)];
    if let Some(fd) = stdin {
        fds.push(PollFd::new(fd, PollFlags::POLLIN));
    }
    let timeout = TimeSpec::from_duration(Duration::from_nanos(wait_ns));
    match nix::poll::ppoll(&mut fds, Some(timeout), None) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(e) => return Err(e).context("ppoll in the probe loop"),
    }
    let stdin_ready = fds
        .get(1)
        .and_then(|fd| fd.revents())
        .is_some_and(|r| !r.is_empty());
    if stdin_ready && stdin.is_some_and(stdin_at_eof) {
        return Ok(Wake::StdinClosed);
    }
    Ok(Wake::Ready)
}

/// Reads (and discards) what stdin has; true at EOF or on error.
fn stdin_at_eof(fd: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 256];
    match nix::unistd::read(fd, &mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(Errno::EINTR) | Err(Errno::EAGAIN) => false,
        Err(_) => true,
    }
}

/// What one datagram from the raw socket was.
#[derive(Debug, PartialEq, Eq)]
enum Received {
    /// An echo reply from the target with our identifier; the sequence number.
    Reply(u16),
    /// Anything else (other ICMP, other identifiers, other sources, malformed).
    Other,
}

/// A raw ICMP (IPv4) or ICMPv6 socket sending echo requests to one target.
struct EchoSocket {
    socket: Socket,
    target: IpAddr,
    dest: SockAddr,
    ident: u16,
}

impl EchoSocket {
    fn open(target: IpAddr, ident: u16) -> Result<Self> {
        let (domain, protocol) = match target {
            IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
            IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
        };
        let socket = Socket::new(domain, Type::RAW, Some(protocol))
            .context("opening a raw ICMP socket (needs root / CAP_NET_RAW)")?;
        socket
            .set_nonblocking(true)
            .context("making the ICMP socket non-blocking")?;
        // Room for a few hundred replies if this thread is not scheduled for a while.
        socket
            .set_recv_buffer_size(1 << 20)
            .context("sizing the ICMP socket's receive buffer")?;
        Ok(EchoSocket {
            socket,
            target,
            dest: SockAddr::from(SocketAddr::new(target, 0)),
            ident,
        })
    }

    fn send(&self, seq: u16) -> Result<()> {
        let request_type = match self.target {
            IpAddr::V4(_) => 8,
            IpAddr::V6(_) => 128,
        };
        let packet = echo_request(request_type, self.ident, seq, self.target.is_ipv4());
        self.socket
            .send_to(&packet, &self.dest)
            .with_context(|| format!("sending echo request {seq} to {}", self.target))?;
        Ok(())
    }

    /// One datagram, or `None` when nothing is queued.
    fn recv(&self, buf: &mut [u8]) -> Result<Option<Received>> {
        let fd = self.socket.as_raw_fd();
        match nix::sys::socket::recvfrom::<SockaddrStorage>(fd, buf) {
            Ok((len, from)) => {
                let data = buf.get(..len).unwrap_or(&[]);
                Ok(Some(match self.target {
                    IpAddr::V4(target) => classify_v4(data, target, self.ident),
                    IpAddr::V6(_) => {
                        let source = from
                            .as_ref()
                            .and_then(|a| a.as_sockaddr_in6())
                            .map(|a| IpAddr::V6(a.ip()));
                        if source == Some(self.target) {
                            classify_icmp(data, 129, self.ident)
                        } else {
                            Received::Other
                        }
                    }
                }))
            }
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => Ok(None),
            Err(e) => Err(e).context("receiving from the ICMP socket"),
        }
    }
}

/// An echo request: type, code 0, checksum (IPv4 only; the kernel fills ICMPv6's), id, seq.
fn echo_request(icmp_type: u8, ident: u16, seq: u16, with_checksum: bool) -> Vec<u8> {
    let mut packet = Vec::with_capacity(8 + PAYLOAD.len());
    packet.extend_from_slice(&[icmp_type, 0, 0, 0]);
    packet.extend_from_slice(&ident.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(PAYLOAD);
    if with_checksum {
        let sum = internet_checksum(&packet).to_be_bytes();
        packet[2] = sum[0];
        packet[3] = sum[1];
    }
    packet
}

/// RFC 1071 checksum.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| {
            let hi = u32::from(pair[0]) << 8;
            hi | pair.get(1).copied().map_or(0, u32::from)
        })
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 datagram (raw IPv4 sockets deliver the IP header) carrying our echo reply?
fn classify_v4(datagram: &[u8], target: Ipv4Addr, ident: u16) -> Received {
    let Some(&first) = datagram.first() else {
        return Received::Other;
    };
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 {
        return Received::Other;
    }
    let (Some(source), Some(icmp)) = (datagram.get(12..16), datagram.get(header_len..)) else {
        return Received::Other;
    };
    if source != target.octets() {
        return Received::Other;
    }
    classify_icmp(icmp, 0, ident)
}

/// An ICMP message of `reply_type` with our identifier? Returns its sequence number.
fn classify_icmp(icmp: &[u8], reply_type: u8, ident: u16) -> Received {
    match icmp {
        [t, 0, _, _, id_hi, id_lo, seq_hi, seq_lo, ..]
            if *t == reply_type && u16::from_be_bytes([*id_hi, *id_lo]) == ident =>
        {
            Received::Reply(u16::from_be_bytes([*seq_hi, *seq_lo]))
        }
        _ => Received::Other,
    }
}

/// One probe in flight.
#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: u64,
    sent_ns: u64,
    replied: bool,
}

/// Turns sends and replies into final per-probe outcomes, in send order, and those into
/// `ready` / `loss` / `outage` lines. Pure: no clock, no I/O.
#[derive(Debug)]
struct LossTracker {
    pending: VecDeque<Pending>,
    timeout_ns: u64,
    ready: bool,
    /// Current loss run: send time of its first lost probe, number lost so far.
    run: Option<(u64, u64)>,
    sent: u64,
    received: u64,
}

impl LossTracker {
    fn new(timeout_ns: u64) -> Self {
        LossTracker {
            pending: VecDeque::new(),
            timeout_ns,
            ready: false,
            run: None,
            sent: 0,
            received: 0,
        }
    }

    fn on_sent(&mut self, seq: u64, sent_ns: u64) {
        self.sent += 1;
        self.pending.push_back(Pending {
            seq,
            sent_ns,
            replied: false,
        });
    }

    /// Marks the in-flight probe with this wire sequence number as answered.
    fn on_reply(&mut self, seq16: u16) {
        let Some(front) = self.pending.front() else {
            return;
        };
        let offset = usize::from(seq16.wrapping_sub(front.seq as u16));
        if let Some(probe) = self.pending.get_mut(offset) {
            if probe.seq as u16 == seq16 && !probe.replied {
                probe.replied = true;
                self.received += 1;
            }
        }
    }

    /// Finalises every probe whose outcome is known at `now`, oldest first.
    fn poll(&mut self, now: u64) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(front) = self.pending.front().copied() {
            if front.replied {
                self.pending.pop_front();
                if !self.ready {
                    self.ready = true;
                    lines.push("ready".to_string());
                }
                if let Some((start, lost)) = self.run.take() {
                    let len_us = front.sent_ns.saturating_sub(start) / 1000;
                    lines.push(format!("outage {start} {len_us} {lost}"));
                }
            } else if now.saturating_sub(front.sent_ns) >= self.timeout_ns {
                self.pending.pop_front();
                if !self.ready {
                    continue;
                }
                match &mut self.run {
                    Some((_, lost)) => *lost += 1,
                    None => {
                        self.run = Some((front.sent_ns, 1));
                        lines.push(format!("loss {}", front.sent_ns));
                    }
                }
            } else {
                break;
            }
        }
        lines
    }

    fn counts(&self) -> (u64, u64) {
        (self.sent, self.received)
    }
}

/// A client-visible outage: one loss run, or (from [`ProbeHandle::wait_outage_after`]) the
/// sum of all runs after a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    /// CLOCK_MONOTONIC send time of the first lost probe, ns.
    pub start_ns: u64,
    /// Time without service, µs (summed over `runs`).
    pub len_us: u64,
    /// Probes lost.
    pub lost: u64,
    /// Number of separate loss runs merged here.
    pub runs: u32,
}

impl Outage {
    /// The outage as a Duration.
    pub fn len(&self) -> Duration {
        Duration::from_micros(self.len_us)
    }

    /// The outage in milliseconds (for reports).
    pub fn millis(&self) -> f64 {
        self.len_us as f64 / 1000.0
    }

    /// Whether nothing was lost.
    pub fn is_empty(&self) -> bool {
        self.lost == 0
    }

    fn merge(runs: &[Outage]) -> Option<Outage> {
        let first = runs.first()?;
        Some(Outage {
            start_ns: first.start_ns,
            len_us: runs.iter().map(|r| r.len_us).sum(),
            lost: runs.iter().map(|r| r.lost).sum(),
            runs: runs.iter().map(|r| r.runs).sum(),
        })
    }
}

/// One parsed probe output line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ProbeLine {
    Ready,
    Loss(u64),
    Outage(Outage),
    Stats(u64, u64),
}

fn parse_line(line: &str) -> Option<ProbeLine> {
    let mut words = line.split_whitespace();
    let kind = words.next()?;
    let mut number = || words.next().and_then(|w| w.parse::<u64>().ok());
    match kind {
        "ready" => Some(ProbeLine::Ready),
        "loss" => Some(ProbeLine::Loss(number()?)),
        "outage" => {
            let (start_ns, len_us, lost) = (number()?, number()?, number()?);
            Some(ProbeLine::Outage(Outage {
                start_ns,
                len_us,
                lost,
                runs: 1,
            }))
        }
        "stats" => Some(ProbeLine::Stats(number()?, number()?)),
        _ => None,
    }
}

/// What the reader thread has seen so far.
#[derive(Debug, Default)]
struct ProbeLog {
    ready: bool,
    outages: Vec<Outage>,
    open_loss: Option<u64>,
    stats: Option<(u64, u64)>,
    closed: bool,
}

impl ProbeLog {
    fn apply(&mut self, line: ProbeLine) {
        match line {
            ProbeLine::Ready => self.ready = true,
            ProbeLine::Loss(start) => self.open_loss = Some(start),
            ProbeLine::Outage(outage) => {
                self.open_loss = None;
                self.outages.push(outage);
            }
            ProbeLine::Stats(sent, received) => self.stats = Some((sent, received)),
        }
    }

    fn outages_since(&self, t: u64) -> Vec<Outage> {
        self.outages
            .iter()
            .filter(|o| o.start_ns >= t)
            .copied()
            .collect()
    }

    /// When the client was last seen without service at or after `t` (`t` itself if never);
    /// `None` while a loss run is open.
    fn quiet_since(&self, t: u64) -> Option<u64> {
        if self.open_loss.is_some_and(|start| start >= t) {
            return None;
        }
        let last_end = self
            .outages_since(t)
            .iter()
            .map(|o| o.start_ns + o.len_us * 1000)
            .max();
        Some(last_end.unwrap_or(t).max(t))
    }
}

type Shared = Arc<(Mutex<ProbeLog>, Condvar)>;

/// The `relevo probe` process and its stdin (closing it stops the probe).
struct Runner {
    process: LabProcess,
    stdin: Option<ChildStdin>,
}

/// Orchestrator handle of a running probe.
pub struct ProbeHandle {
    runner: Runner,
    shared: Shared,
    reader: Option<JoinHandle<()>>,
    loss_timeout: Duration,
    stderr_log: Option<PathBuf>,
}

/// Loss timeout used by the handles (a probe without reply after this long is lost).
const LOSS_TIMEOUT: Duration = Duration::from_millis(100);

impl ProbeHandle {
    /// Starts `<relevo_bin> probe --target <target> --interval <interval>` in the lab's client
    /// namespace (stderr to `<work dir>/probe.log`).
    pub fn spawn(lab: &Lab, relevo_bin: &Path, target: IpAddr, interval: Duration) -> Result<Self> {
        let bin = relevo_bin.to_string_lossy();
        let target_text = target.to_string();
        let interval_text = millis_text(interval);
        let timeout_text = millis_text(LOSS_TIMEOUT);
        let argv = [
            bin.as_ref(),
            "probe",
            "--target",
            &target_text,
            "--interval",
            &interval_text,
            "--timeout",
            &timeout_text,
        ];
        let log = lab.work_dir().join("probe.log");
        let mut process = lab.spawn_piped(&lab.client_ns(), &argv, &log)?;
        let stdout = process
            .take_stdout()
            .context("the probe process has no stdout pipe")?;
        let stdin = process.take_stdin();
        let shared = Shared::default();
        let reader = start_reader(Box::new(stdout), Arc::clone(&shared))?;
        Ok(ProbeHandle {
            runner: Runner { process, stdin },
            shared,
            reader: Some(reader),
            loss_timeout: LOSS_TIMEOUT,
            stderr_log: Some(log),
        })
    }

    /// Waits until the probe got its first reply.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.wait_for(timeout, |log| log.ready)?;
        if self.log().ready {
            Ok(())
        } else {
            bail!(
                "the probe got no reply within {timeout:?}{}",
                self.diagnostics()
            )
        }
    }

    /// Every finished loss run whose first lost probe was sent at or after `t` (monotonic ns).
    pub fn outages_since(&self, t: u64) -> Vec<Outage> {
        self.log().outages_since(t)
    }

    /// The total outage the client saw after fault instant `t` (monotonic ns): waits until
    /// service has been back (or never left) for `settle` plus the loss timeout, then sums all
    /// loss runs after `t`. `None` = nothing lost (a 0 ms outage). Fails if service is still
    /// out after `timeout` or the probe died.
    pub fn wait_outage_after(
        &self,
        t: u64,
        settle: Duration,
        timeout: Duration,
    ) -> Result<Option<Outage>> {
        let quiet_needed = (settle + self.loss_timeout).as_nanos() as u64;
        let settled = |log: &ProbeLog| {
            log.quiet_since(t)
                .is_some_and(|since| monotonic_ns().saturating_sub(since) >= quiet_needed)
        };
        self.wait_for(timeout, |log| log.closed || settled(log))?;
        let log = self.log();
        if settled(&log) {
            return Ok(Outage::merge(&log.outages_since(t)));
        }
        if log.closed {
            drop(log);
            bail!("the probe exited{}", self.diagnostics());
        }
        bail!(
            "the client still has no service {timeout:?} after the fault (outage began {} ms \
             after it)",
            log.open_loss.unwrap_or(t).saturating_sub(t) / 1_000_000
        )
    }

    /// Stops the probe (stdin EOF / stop flag) and returns its `(sent, received)` counts.
    pub fn stop(mut self) -> Result<(u64, u64)> {
        self.shutdown()?;
        self.log()
            .stats
            .with_context(|| format!("the probe printed no stats{}", self.diagnostics()))
    }

    fn shutdown(&mut self) -> Result<()> {
        let Runner { process, stdin } = &mut self.runner;
        drop(stdin.take());
        if process.wait_exit(Duration::from_secs(2))?.is_none() {
            process.kill_wait()?;
            bail!("the probe did not exit on stdin EOF; killed it");
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        Ok(())
    }

    fn log(&self) -> MutexGuard<'_, ProbeLog> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until `done(log)` or `timeout`; fails only when interrupted.
    fn wait_for(&self, timeout: Duration, done: impl Fn(&ProbeLog) -> bool) -> Result<()> {
        let end = Instant::now() + timeout;
        let mut log = self.log();
        loop {
            if done(&log) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            if interrupted() {
                drop(log);
                return check_interrupted();
            }
            let step = (end - now).min(Duration::from_millis(10));
            log = match self.shared.1.wait_timeout(log, step) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    fn diagnostics(&self) -> String {
        let Some(path) = &self.stderr_log else {
            return String::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        if tail.is_empty() {
            return String::new();
        }
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(" ({}: {})", path.display(), tail.join(" | "))
    }
}

impl Drop for ProbeHandle {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Reads probe lines into the shared log until EOF, waking waiters after each line.
fn start_reader(source: Box<dyn Read + Send>, shared: Shared) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("probe reader".to_string())
        .spawn(move || {
            let (log, changed) = &*shared;
            for line in BufReader::new(source).lines() {
                let Ok(line) = line else { break };
                if let Some(parsed) = parse_line(&line) {
                    let mut guard = log.lock().unwrap_or_else(|p| p.into_inner());
                    guard.apply(parsed);
                    changed.notify_all();
                }
            }
            let mut guard = log.lock().unwrap_or_else(|p| p.into_inner());
            guard.closed = true;
            changed.notify_all();
        })
        .context("spawning the probe reader thread")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn tracker_with(sends: u64) -> LossTracker {
        let mut t = LossTracker::new(100 * MS);
        for seq in 0..sends {
            t.on_sent(seq, seq * MS);
        }
        t
    }

    #[test]
    fn reports_ready_then_a_loss_run() {
        let mut t = tracker_with(10);
        t.on_reply(0);
        t.on_reply(1);
        // 2, 3, 4 lost; 5.. answered
        for seq in 5..10 {
            t.on_reply(seq);
        }
        assert_eq!(t.poll(50 * MS), vec!["ready"]);
        // 2 expires at 102 ms, 3 at 103, 4 at 104.
        assert_eq!(t.poll(102 * MS), vec![format!("loss {}", 2 * MS)]);
        let lines = t.poll(104 * MS);
        assert_eq!(lines, vec![format!("outage {} 3000 3", 2 * MS)]);
        assert_eq!(t.counts(), (10, 7));
        assert!(t.pending.is_empty());
    }

    #[test]
    fn losses_before_the_first_reply_are_not_an_outage() {
        let mut t = tracker_with(3);
        t.on_reply(2);
        assert_eq!(t.poll(200 * MS), vec!["ready"]);
    }

    #[test]
    fn ignores_unknown_and_duplicate_replies() {
        let mut t = tracker_with(3);
        t.on_reply(0);
        t.on_reply(0);
        t.on_reply(77);
        assert_eq!(t.counts(), (3, 1));
        assert_eq!(t.poll(MS), vec!["ready"]);
        // late reply for an already finalised probe
        t.on_reply(0);
        assert_eq!(t.counts(), (3, 1));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut t = LossTracker::new(100 * MS);
        for seq in 65_530..65_540u64 {
            t.on_sent(seq, seq);
        }
        t.on_reply(65_535);
        t.on_reply(3); // 65_539
        assert_eq!(t.counts(), (10, 2));
    }

    #[test]
    fn pacing_keeps_the_grid() {
        assert_eq!(next_slot(1000, 1000, 100), 1100);
        assert_eq!(next_slot(1000, 1050, 100), 1100);
        // fell behind by 3.5 intervals: skip to the next grid point after now
        assert_eq!(next_slot(1000, 1350, 100), 1400);
        assert_eq!(next_slot(1000, 1100, 100), 1200);
    }

    #[test]
    fn builds_and_classifies_echo() {
        let request = echo_request(8, 0x1234, 7, true);
        assert_eq!(internet_checksum(&request), 0);
        assert_eq!(&request[4..8], &[0x12, 0x34, 0, 7]);
        let mut reply = request.clone();
        reply[0] = 0;
        assert_eq!(classify_icmp(&reply, 0, 0x1234), Received::Reply(7));
        assert_eq!(classify_icmp(&reply, 0, 0x1235), Received::Other);
        assert_eq!(classify_icmp(&reply[..7], 0, 0x1234), Received::Other);
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 100, 192, 0, 2, 200,
        ];
        ip.extend_from_slice(&reply);
        let target = Ipv4Addr::new(192, 0, 2, 100);
        assert_eq!(classify_v4(&ip, target, 0x1234), Received::Reply(7));
        assert_eq!(
            classify_v4(&ip, Ipv4Addr::new(192, 0, 2, 1), 0x1234),
            Received::Other
        );
        for cut in 0..28 {
            assert!(matches!(
                classify_v4(&ip[..cut], target, 0x1234),
                Received::Other
            ));
        }
        assert_eq!(classify_v4(&[0x4f; 30], target, 1), Received::Other);
    }

    #[test]
    fn parses_lines_and_waits_for_quiet() {
        let mut log = ProbeLog::default();
        for line in [
            "ready",
            "loss 5000000",
            "outage 5000000 2000 2",
            "stats 10 8",
            "x",
        ] {
            if let Some(l) = parse_line(line) {
                log.apply(l);
            }
        }
        assert!(log.ready);
        assert_eq!(log.stats, Some((10, 8)));
        assert_eq!(log.outages_since(0).len(), 1);
        assert!(log.outages_since(6_000_000).is_empty());
        assert_eq!(log.quiet_since(0), Some(7_000_000));
        assert_eq!(log.quiet_since(9_000_000), Some(9_000_000));
        log.apply(ProbeLine::Loss(8_000_000));
        assert_eq!(log.quiet_since(0), None);
        assert_eq!(parse_line("outage 1 x 2"), None);
        let merged = Outage::merge(&[
            Outage {
                start_ns: 1,
                len_us: 10,
                lost: 1,
                runs: 1,
            },
            Outage {
                start_ns: 9,
                len_us: 5,
                lost: 2,
                runs: 1,
            },
        ]);
        assert_eq!(
            merged,
            Some(Outage {
                start_ns: 1,
                len_us: 15,
                lost: 3,
                runs: 2
            })
        );
    }
}
