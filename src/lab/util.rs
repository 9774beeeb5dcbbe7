//! Small shared helpers of the lab: the system-wide monotonic clock, the Ctrl-C flag every wait
//! loop honours, interruptible waiting, /proc CPU/RSS sampling and the guard of tests that need
//! root or keepalived.
use anyhow::{bail, Context, Result};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::time::{clock_gettime, ClockId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The `main` of a bench binary (`harness = false`): runs `run` under `cargo bench --bench
/// NAME` and does nothing under `cargo test --all-targets`, which starts bench binaries
/// without `--bench`; an error is printed and exits 1.
pub fn bench_main(name: &str, run: fn() -> Result<()>) {
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("{name}: run with `cargo bench --bench {name}` (as root)");
        return;
    }
    if let Err(e) = run() {
        eprintln!("{name} bench: {e:#}");
        std::process::exit(1);
    }
}

/// Writes a `/bin/sh` script with `body` at `path`, mode `mode`, for a test to execute.
///
/// The bytes are written by a child process (`sh -c 'cat > path'`), not by this one: a file
/// this process holds open for writing is inherited by every child another thread forks in
/// that window, and executing the script then fails with ETXTBSY ("text file busy") until
/// that child execs. Test binaries fork all the time (hooks, `ip`), so that race is real.
pub fn write_script(path: &std::path::Path, body: &str, mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg("cat > \"$0\"")
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("spawning /bin/sh to write a script")?;
    let mut stdin = child.stdin.take().context("the writer's stdin")?;
    stdin.write_all(format!("#!/bin/sh\n{body}\n").as_bytes())?;
    drop(stdin);
    let status = child.wait()?;
    if !status.success() {
        bail!("writing {} failed: {status}", path.display());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

/// `RELEVO_BENCH_TRIALS`, or `default` when unset or not a number.
pub fn bench_trials(default: usize) -> usize {
    std::env::var("RELEVO_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The duration in environment variable `name` ("10ms", "1s", ...), if set.
pub fn env_duration(name: &str) -> Result<Option<Duration>> {
    std::env::var(name)
        .ok()
        .map(|text| crate::config::parse_duration(&text).map_err(anyhow::Error::msg))
        .transpose()
        .with_context(|| format!("environment variable {name}"))
}

/// Prints one bench row: `name`, then the min, median, p95 and max of `values` (sorted here;
/// nearest rank), one decimal each.
pub fn print_quantiles(name: &str, values: &mut [f64]) {
    if values.is_empty() {
        println!("{name:<32} (no trial)");
        return;
    }
    values.sort_by(f64::total_cmp);
    let pick = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<32} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        pick(0.0),
        pick(0.5),
        pick(0.95),
        pick(1.0)
    );
}

/// CLOCK_MONOTONIC in nanoseconds. The clock is system wide, so values taken here are directly
/// comparable with the timestamps a probe running in another namespace/process prints.
pub fn monotonic_ns() -> u64 {
    match clock_gettime(ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => (ts.tv_sec() as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec() as u64),
        // CLOCK_MONOTONIC cannot fail on Linux; 0 keeps callers total.
        Err(_) => 0,
    }
}

extern "C" fn on_interrupt(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs a SIGINT/SIGTERM handler that only sets a flag ([`interrupted`]); every lab wait loop
/// checks it and returns an error, so the lab unwinds and its `Drop` removes everything.
pub fn install_interrupt_handler() -> Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }
            .with_context(|| format!("installing the {signal} handler"))?;
    }
    Ok(())
}

/// True once SIGINT/SIGTERM arrived (after [`install_interrupt_handler`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails with "interrupted" once the interrupt flag is set.
pub(crate) fn check_interrupted() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// Sleeps `duration` in small slices, failing early when interrupted.
pub fn sleep_checked(duration: Duration) -> Result<()> {
    let end = Instant::now() + duration;
    loop {
        check_interrupted()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(10)));
    }
}

/// Polls `condition` every `step` until it returns true; fails after `timeout` with `what`.
pub(crate) fn wait_until(
    timeout: Duration,
    step: Duration,
    what: &str,
    mut condition: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let end = Instant::now() + timeout;
    loop {
        if condition()? {
            return Ok(());
        }
        if Instant::now() >= end {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        sleep_checked(step)?;
    }
}

/// CPU time and resident memory of one process, from /proc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessUsage {
    /// utime + stime.
    pub cpu: Duration,
    /// stime alone: time in the kernel on the process's behalf (its syscalls, and in a
    /// namespace lab the veth and bridge delivery of what it sends).
    pub system: Duration,
    /// VmRSS in KiB.
    pub rss_kib: u64,
}

impl std::ops::Add for ProcessUsage {
    type Output = ProcessUsage;
    fn add(self, other: ProcessUsage) -> ProcessUsage {
        ProcessUsage {
            cpu: self.cpu + other.cpu,
            system: self.system + other.system,
            rss_kib: self.rss_kib + other.rss_kib,
        }
    }
}

/// Reads utime+stime (`/proc/<pid>/stat`) and VmRSS (`/proc/<pid>/status`) of `pid`.
pub fn process_usage(pid: i32) -> Result<ProcessUsage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let (user, system) =
        parse_cpu_ticks(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))?;
    let rss_kib = parse_vm_rss(&status).with_context(|| format!("parsing /proc/{pid}/status"))?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|hz| *hz > 0)
        .unwrap_or(100) as u64;
    let duration = |ticks: u64| Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / hz);
    Ok(ProcessUsage {
        cpu: duration(user + system),
        system: duration(system),
        rss_kib,
    })
}

/// (utime, stime) in clock ticks from the text of `/proc/<pid>/stat`.
fn parse_cpu_ticks(stat: &str) -> Result<(u64, u64)> {
    // The command name (field 2) may contain spaces and ')' : fields restart after the last ')'.
    let rest = stat
        .rfind(')')
        .map(|at| &stat[at + 1..])
        .context("no ')' after the command name")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .with_context(|| format!("field {n} missing"))?
            .parse::<u64>()
            .with_context(|| format!("field {n} is not a number"))
    };
    Ok((field(14)?, field(15)?))
}

/// VmRSS in KiB from the text of `/proc/<pid>/status`.
fn parse_vm_rss(status: &str) -> Result<u64> {
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    line.trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .with_context(|| format!("bad VmRSS line {line:?}"))
}

/// Set to `1` to let root-only tests pass as "SKIPPED (not root)" in a run without root.
const SKIP_ROOT_ENV: &str = "RELEVO_SKIP_ROOT_TESTS";
/// Set to `1` to let the keepalived interop tests pass as "SKIPPED" where keepalived is missing.
const SKIP_KEEPALIVED_ENV: &str = "RELEVO_SKIP_KEEPALIVED_TESTS";
const SKIP_FRR_ENV: &str = "RELEVO_SKIP_FRR_TESTS";
/// Set to `1` to let the fencing tests pass as "SKIPPED" where OpenIPMI's `ipmi_sim` or the
/// fence agents are missing.
const SKIP_FENCE_ENV: &str = "RELEVO_SKIP_FENCE_TESTS";
/// Set to `1` to let the status page test pass as "SKIPPED" where Chromium is missing.
const SKIP_CHROMIUM_ENV: &str = "RELEVO_SKIP_CHROMIUM_TESTS";
/// Where Debian's chromium package installs the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's openipmi package installs the BMC simulator.
pub const IPMI_SIM: &str = "/usr/bin/ipmi_sim";
/// Where Debian's fence-agents package installs the IPMI fence agent.
pub const FENCE_IPMILAN: &str = "/usr/sbin/fence_ipmilan";
/// Where Debian's frr package installs the VRRP daemon.
pub const FRR_VRRPD: &str = "/usr/lib/frr/vrrpd";

/// Something a test needs from the machine that `cargo test` cannot provide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Root: the test creates network namespaces.
    Root,
    /// A runnable `keepalived` (the interop tests).
    Keepalived,
    /// FRR's `vrrpd` and `zebra` (the FRR interop tests).
    Frr,
    /// OpenIPMI's `ipmi_sim`, the fake BMC of the fencing tests.
    IpmiSim,
    /// `fence_ipmilan` from fence-agents (the `command` fencing tests).
    FenceAgents,
    /// A headless Chromium (the status page test).
    Chromium,
}

impl Requirement {
    fn skip_env(self) -> &'static str {
        match self {
            Requirement::Root => SKIP_ROOT_ENV,
            Requirement::Keepalived => SKIP_KEEPALIVED_ENV,
            Requirement::Frr => SKIP_FRR_ENV,
            Requirement::IpmiSim | Requirement::FenceAgents => SKIP_FENCE_ENV,
            Requirement::Chromium => SKIP_CHROMIUM_ENV,
        }
    }

    fn missing(self) -> &'static str {
        match self {
            Requirement::Root => "not root",
            Requirement::Keepalived => "keepalived not installed",
            Requirement::Frr => "FRR (vrrpd) not installed",
            Requirement::IpmiSim => "ipmi_sim (OpenIPMI) not installed",
            Requirement::FenceAgents => "fence_ipmilan (fence-agents) not installed",
            Requirement::Chromium => "chromium not installed",
        }
    }

    fn remedy(self) -> &'static str {
        match self {
            Requirement::Root => {
                "it creates network namespaces, so run the tests as root: \
                 `CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER='sudo -E' cargo test --release` \
                 (builds as you, runs each test binary through sudo), or `cargo test --release` \
                 in a root shell (README: Running as root)"
            }
            Requirement::Keepalived => "install it: apt-get install keepalived",
            Requirement::Frr => "install it: apt-get install frr",
            Requirement::IpmiSim => "install it: apt-get install --no-install-recommends openipmi",
            Requirement::FenceAgents => {
                "install it: apt-get install --no-install-recommends fence-agents ipmitool"
            }
            Requirement::Chromium => "install it: apt-get install --no-install-recommends chromium",
        }
    }
}

/// What a guarded test does here.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GuardDecision {
    /// The requirement is met: run.
    Run,
    /// Not met, and the operator asked to skip: pass without testing, saying so.
    Skip(String),
    /// Not met: fail with this message (a run that tested nothing must not look like a pass).
    Fail(String),
}

/// The guard's decision from the facts: whether `requirement` is `met`, whether `CI` is `true`,
/// and whether the requirement's skip variable is `1`. Under CI nothing is ever skipped.
fn guard_decision(
    test: &str,
    requirement: Requirement,
    met: bool,
    ci: bool,
    skip_requested: bool,
) -> GuardDecision {
    if met {
        return GuardDecision::Run;
    }
    let missing = requirement.missing();
    if ci {
        return GuardDecision::Fail(format!(
            "{test}: {missing}, and CI=true forbids skipping it: {}",
            requirement.remedy()
        ));
    }
    if skip_requested {
        return GuardDecision::Skip(format!("{test}: SKIPPED ({missing})"));
    }
    GuardDecision::Fail(format!(
        "{test}: {missing}: {}; or set {}=1 to skip such tests (each then prints \
         \"SKIPPED ({missing})\" and passes)",
        requirement.remedy(),
        requirement.skip_env()
    ))
}

/// Whether a test that needs `requirement` runs here: `Ok(true)` when it is met; `Ok(false)`
/// after printing "<test>: SKIPPED (...)" on stderr when it is not and its skip variable
/// (`RELEVO_SKIP_ROOT_TESTS`, `RELEVO_SKIP_KEEPALIVED_TESTS`, `RELEVO_SKIP_FRR_TESTS`,
/// `RELEVO_SKIP_FENCE_TESTS`, `RELEVO_SKIP_CHROMIUM_TESTS`) is `1`
/// outside CI; an error saying how to run
/// it otherwise. The SKIPPED line bypasses the test harness's output capture, so it shows.
pub fn test_guard(test: &str, requirement: Requirement) -> Result<bool> {
    let met = match requirement {
        Requirement::Root => nix::unistd::geteuid().is_root(),
        Requirement::Keepalived => crate::lab::keepalived::is_installed(),
        Requirement::Frr => std::path::Path::new(FRR_VRRPD).exists(),
        Requirement::IpmiSim => std::path::Path::new(IPMI_SIM).exists(),
        Requirement::FenceAgents => std::path::Path::new(FENCE_IPMILAN).exists(),
        Requirement::Chromium => std::path::Path::new(CHROMIUM).exists(),
    };
    let flag = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    match guard_decision(test, requirement, met, ci, flag(requirement.skip_env())) {
        GuardDecision::Run => Ok(true),
        GuardDecision::Skip(line) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "{line}");
            Ok(false)
        }
        GuardDecision::Fail(message) => bail!("{message}"),
    }
}

/// [`test_guard`] for root.
pub fn root_test_guard(test: &str) -> Result<bool> {
    test_guard(test, Requirement::Root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_spaces_in_name() {
        let stat = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 100 1000 200";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), (7, 5));
        assert!(parse_cpu_ticks("42 (x) S 1").is_err());
        assert!(parse_cpu_ticks("garbage").is_err());
    }

    #[test]
    fn guard_runs_skips_only_on_request_and_never_under_ci() {
        let root = Requirement::Root;
        assert_eq!(
            guard_decision("t", root, true, true, true),
            GuardDecision::Run
        );
        assert_eq!(
            guard_decision("t", root, false, false, true),
            GuardDecision::Skip("t: SKIPPED (not root)".into())
        );
        let GuardDecision::Fail(plain) = guard_decision("t", root, false, false, false) else {
            panic!("a run without root must fail");
        };
        assert!(
            plain.contains("root") && plain.contains(SKIP_ROOT_ENV),
            "{plain}"
        );
        let GuardDecision::Fail(ci) = guard_decision("t", root, false, true, true) else {
            panic!("CI must never skip");
        };
        assert!(ci.contains("CI=true"), "{ci}");
        let kad = Requirement::Keepalived;
        assert_eq!(
            guard_decision("k", kad, false, false, true),
            GuardDecision::Skip("k: SKIPPED (keepalived not installed)".into())
        );
        let GuardDecision::Fail(missing) = guard_decision("k", kad, false, false, false) else {
            panic!("a run without keepalived must fail");
        };
        assert!(missing.contains("apt-get install keepalived"), "{missing}");
        assert!(missing.contains(SKIP_KEEPALIVED_ENV), "{missing}");
    }

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tx\nVmRSS:\t    2048 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status).unwrap(), 2048);
        assert!(parse_vm_rss("Name:\tx\n").is_err());
    }
}
