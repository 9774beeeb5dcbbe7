//! Failover benchmark: the outage a client sees when the VRRP master fails, relevo side by side
//! with keepalived, plus the master daemon's CPU and memory in steady state.
//!
//! Run as root: `cargo bench --bench failover` (builds the release `relevo`). Per daemon and
//! advert interval a lab is built (2 nodes, priorities 150/100, VRRPv3, VIP 192.0.2.100/24, a
//! client pinging the VIP every 1 ms); for each fault — crash (SIGKILL + bridge port cut at the
//! same instant), link down (the node's own eth0), graceful stop (SIGTERM) — every trial waits
//! for the steady state (n1 master), waits a random phase of 0..advert interval, injects the
//! fault, measures the client outage, restores n1 (restart / link up) and waits for n1 to be
//! master again. Rows show min / median / p95 / max outage in ms and the relevo/keepalived
//! ratio of the medians. Then CPU time (utime+stime) and RSS of the master over a steady-state
//! window, one instance at 10 ms adverts.
//!
//! Environment:
//! - `RELEVO_BENCH_TRIALS` trials per row (default 20).
//! - `RELEVO_BENCH_QUICK=1` 5 trials per row and a 3 s CPU window (unless set explicitly).
//! - `RELEVO_BENCH_INTERVALS` advert intervals, default `10ms,1s`.
//! - `RELEVO_BENCH_IMPLS` daemons, default `relevo,keepalived` (keepalived only if installed).
//! - `RELEVO_BENCH_CPU_WINDOW` steady-state window for CPU/RSS, default `10s`.
//! - `RELEVO_BENCH_VMAC=1` virtual-MAC mode (relevo `virtual_mac`, keepalived `use_vmac`).
//!
//! Runtime: a 10 ms row takes ~1 s per trial, a 1 s row ~9 s per trial (failover 3.6 s plus
//! preemption back 3.6 s). Defaults, both daemons: ~20 min; `RELEVO_BENCH_QUICK=1`: ~5 min;
//! `RELEVO_BENCH_INTERVALS=10ms`: ~2.5 min.
use anyhow::{bail, Context, Result};
use relevo::lab::fault::{measure_failover, vip_address, Fault, SETTLE};
use relevo::lab::keepalived;
use relevo::lab::{
    check_prerequisites, install_interrupt_handler, monotonic_ns, process_usage, sleep_checked,
    Lab, PeerImpl, PeerSpec, ProbeHandle, VrrpPeer,
};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const VIP: &str = "192.0.2.100/24";
const VRID: u8 = 51;
const PROBE_INTERVAL: Duration = Duration::from_millis(1);

fn main() {
    relevo::lab::bench_main("failover", run);
}

/// Benchmark parameters from the environment.
struct Settings {
    /// Virtual-MAC mode on every daemon.
    virtual_mac: bool,
    trials: usize,
    intervals: Vec<Duration>,
    impls: Vec<PeerImpl>,
    cpu_window: Duration,
    relevo_bin: std::path::PathBuf,
}

impl Settings {
    fn from_env(relevo_bin: &Path) -> Result<Settings> {
        let quick = env("RELEVO_BENCH_QUICK").is_some_and(|v| v != "0");
        let trials = match env("RELEVO_BENCH_TRIALS") {
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("RELEVO_BENCH_TRIALS={text:?}: want a count > 0"))?,
            None if quick => 5,
            None => 20,
        };
        let intervals = env("RELEVO_BENCH_INTERVALS")
            .unwrap_or_else(|| "10ms,1s".to_string())
            .split(',')
            .map(|text| parse_duration(text.trim()))
            .collect::<Result<Vec<_>>>()?;
        let mut impls = Vec::new();
        for name in env("RELEVO_BENCH_IMPLS")
            .unwrap_or_else(|| "relevo,keepalived".to_string())
            .split(',')
        {
            match name.trim() {
                "relevo" => impls.push(PeerImpl::Relevo(relevo_bin.to_path_buf())),
                "keepalived" if keepalived::is_installed() => impls.push(PeerImpl::Keepalived),
                "keepalived" => println!("keepalived is not installed: relevo only"),
                other => bail!("RELEVO_BENCH_IMPLS: unknown daemon {other:?}"),
            }
        }
        let default_window = if quick { "3s" } else { "10s" };
        let cpu_window = parse_duration(
            &env("RELEVO_BENCH_CPU_WINDOW").unwrap_or_else(|| default_window.to_string()),
        )?;
        Ok(Settings {
            virtual_mac: env("RELEVO_BENCH_VMAC").is_some_and(|v| v == "1"),
            trials,
            intervals,
            impls,
            cpu_window,
            relevo_bin: relevo_bin.to_path_buf(),
        })
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse_duration(text: &str) -> Result<Duration> {
    relevo::config::parse_duration(text).map_err(anyhow::Error::msg)
}

fn run() -> Result<()> {
    install_interrupt_handler()?;
    check_prerequisites()?;
    let relevo_bin = Path::new(env!("CARGO_BIN_EXE_relevo"));
    let settings = Settings::from_env(relevo_bin)?;
    println!(
        "failover bench: {} trials per row, intervals {:?}, daemons {:?}{}",
        settings.trials,
        settings.intervals,
        settings
            .impls
            .iter()
            .map(PeerImpl::name)
            .collect::<Vec<_>>(),
        if settings.virtual_mac {
            ", virtual-MAC mode"
        } else {
            ""
        }
    );
    let mut rows: Vec<Row> = Vec::new();
    let mut unavailable: Vec<String> = Vec::new();
    for implementation in &settings.impls {
        for &interval in &settings.intervals {
            match bench_interval(&settings, implementation, interval) {
                Ok(mut new_rows) => rows.append(&mut new_rows),
                Err(e) if relevo::lab::interrupted() => return Err(e),
                Err(e) => {
                    let note = format!("{} at {interval:?}: {e:#}", implementation.name());
                    println!("  skipped: {note}");
                    unavailable.push(note);
                }
            }
        }
    }
    print_table(&rows, settings.trials);
    for note in &unavailable {
        println!("not measured: {note}");
    }
    println!();
    for implementation in &settings.impls {
        match steady_state_usage(implementation, settings.cpu_window) {
            Ok(line) => println!("{line}"),
            Err(e) if relevo::lab::interrupted() => return Err(e),
            Err(e) => println!("{}: CPU/RSS not measured: {e:#}", implementation.name()),
        }
    }
    Ok(())
}

/// Outages of one (daemon, interval, fault) combination.
struct Row {
    implementation: &'static str,
    interval: Duration,
    fault: String,
    outages_ms: Vec<f64>,
    failures: Vec<String>,
}

/// A 2-node lab with `implementation` running at `interval`, n1 master, the probe running.
struct Bench {
    // Field order = drop order: probe and peers go before the lab.
    probe: ProbeHandle,
    peers: Vec<Box<dyn VrrpPeer>>,
    lab: Lab,
    vip: IpAddr,
    interval: Duration,
}

impl Bench {
    fn start(settings: &Settings, implementation: &PeerImpl, interval: Duration) -> Result<Bench> {
        let lab = Lab::create("bnch", 2)?;
        let mut peers = Vec::new();
        for (node, priority) in [(1, 150), (2, 100)] {
            let mut spec = PeerSpec::new(VRID, priority, interval, &[VIP]);
            spec.virtual_mac = settings.virtual_mac;
            peers.push(implementation.start(&lab, node, &spec)?);
        }
        let vip = vip_address(VIP)?;
        lab.wait_master(vip, 1, failover_timeout(interval))
            .context("first election")?;
        let probe = ProbeHandle::spawn(&lab, &settings.relevo_bin, vip, PROBE_INTERVAL)?;
        probe.wait_ready(Duration::from_secs(5))?;
        Ok(Bench {
            probe,
            peers,
            lab,
            vip,
            interval,
        })
    }

    /// One trial: steady state, random phase, fault, outage, restore, n1 master again.
    fn trial(&mut self, fault: Fault, rng: &mut XorShift) -> Result<f64> {
        let timeout = failover_timeout(self.interval);
        self.lab.wait_master(self.vip, 1, timeout)?;
        // Let the backup see a few adverts of the current master before the fault.
        let steady = (self.interval * 2).max(Duration::from_millis(50));
        sleep_checked(steady + self.interval.mul_f64(rng.unit()))?;
        let n1 = self.peers.first_mut().context("no peers")?.as_mut();
        let result = measure_failover(&self.lab, &self.probe, n1, fault, self.vip, timeout)?;
        let masters = result.masters.clone();
        let t = monotonic_ns();
        fault.restore(&self.lab, n1, &[VIP.to_string()])?;
        self.lab.wait_master(self.vip, 1, timeout)?;
        self.probe.wait_outage_after(t, SETTLE, timeout)?;
        if masters != [2] {
            bail!("after the fault the VIP was on {masters:?}, expected [2]");
        }
        Ok(result.outage_ms())
    }
}

/// Generous bound for any takeover: master-down interval (3 adverts + skew) plus slack.
fn failover_timeout(interval: Duration) -> Duration {
    interval * 6 + Duration::from_secs(5)
}

fn bench_interval(
    settings: &Settings,
    implementation: &PeerImpl,
    interval: Duration,
) -> Result<Vec<Row>> {
    println!("{} at {interval:?} adverts:", implementation.name());
    let mut bench = Bench::start(settings, implementation, interval)?;
    let mut rng = XorShift::seeded();
    let mut rows = Vec::new();
    for fault in Fault::ALL {
        let started = Instant::now();
        let mut row = Row {
            implementation: implementation.name(),
            interval,
            fault: fault.name().to_string(),
            outages_ms: Vec::new(),
            failures: Vec::new(),
        };
        for n in 0..settings.trials {
            match bench.trial(fault, &mut rng) {
                Ok(ms) => row.outages_ms.push(ms),
                Err(e) if relevo::lab::interrupted() => return Err(e),
                Err(e) => {
                    println!("    trial {n} failed: {e:#}");
                    row.failures.push(format!("{e:#}"));
                    // A broken lab poisons every later trial: start a fresh one.
                    drop(bench);
                    bench = Bench::start(settings, implementation, interval)?;
                }
            }
        }
        println!(
            "  {:<28} {}  ({} s)",
            row.fault,
            Summary::of(&row.outages_ms).map_or("-".to_string(), |s| s.text()),
            started.elapsed().as_secs()
        );
        rows.push(row);
    }
    Ok(rows)
}

/// min / median / p95 / max.
#[derive(Debug, Clone, Copy)]
struct Summary {
    min: f64,
    median: f64,
    p95: f64,
    max: f64,
}

impl Summary {
    fn of(values: &[f64]) -> Option<Summary> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let index = ((q * sorted.len() as f64).ceil() as usize).saturating_sub(1);
            sorted
                .get(index.min(sorted.len().saturating_sub(1)))
                .copied()
        };
        Some(Summary {
            min: *sorted.first()?,
            median: rank(0.5)?,
            p95: rank(0.95)?,
            max: *sorted.last()?,
        })
    }

    fn text(&self) -> String {
        format!(
            "{:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            self.min, self.median, self.p95, self.max
        )
    }
}

fn print_table(rows: &[Row], trials: usize) {
    println!();
    println!("client-visible outage in ms (probe every 1 ms; {trials} trials per row; ratio = median / keepalived's median)");
    println!(
        "{:<11} {:>6}  {:<28} {:>8} {:>8} {:>8} {:>8}  {:>6}  {:>6}",
        "daemon", "advert", "fault", "min", "median", "p95", "max", "failed", "ratio"
    );
    for row in rows {
        let summary = Summary::of(&row.outages_ms);
        let ratio = summary.and_then(|s| {
            let base = rows.iter().find(|other| {
                other.implementation == "keepalived"
                    && other.interval == row.interval
                    && other.fault == row.fault
            })?;
            let base = Summary::of(&base.outages_ms)?;
            (row.implementation != "keepalived" && base.median > 0.0)
                .then(|| format!("{:.2}", s.median / base.median))
        });
        println!(
            "{:<11} {:>6}  {:<28} {}  {:>6}  {:>6}",
            row.implementation,
            format!("{:?}", row.interval),
            row.fault,
            summary.map_or(format!("{:>35}", "-"), |s| s.text()),
            row.failures.len(),
            ratio.unwrap_or_else(|| "-".to_string())
        );
    }
}

/// CPU and RSS of the master (1 instance, 10 ms adverts) over `window`.
fn steady_state_usage(implementation: &PeerImpl, window: Duration) -> Result<String> {
    let interval = Duration::from_millis(10);
    let lab = Lab::create("cpu", 2)?;
    let mut peers = Vec::new();
    for (node, priority) in [(1, 150), (2, 100)] {
        let spec = PeerSpec::new(VRID, priority, interval, &[VIP]);
        peers.push(implementation.start(&lab, node, &spec)?);
    }
    lab.wait_master(vip_address(VIP)?, 1, Duration::from_secs(5))?;
    sleep_checked(Duration::from_millis(500))?;
    let pids = peers.first().context("no peers")?.pids();
    let sample = || -> Result<relevo::lab::ProcessUsage> {
        pids.iter()
            .map(|&pid| process_usage(pid))
            .try_fold(relevo::lab::ProcessUsage::default(), |sum, usage| {
                Ok(sum + usage?)
            })
    };
    let before = sample()?;
    let started = Instant::now();
    sleep_checked(window)?;
    let after = sample()?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = after.cpu.saturating_sub(before.cpu).as_secs_f64();
    Ok(format!(
        "{}: master with 1 instance at 10 ms adverts over {:.0} s: CPU {:.2}% ({:.1} ms/s), RSS {} KiB ({} process{})",
        implementation.name(),
        elapsed,
        100.0 * cpu / elapsed,
        1000.0 * cpu / elapsed,
        after.rss_kib,
        pids.len(),
        if pids.len() == 1 { "" } else { "es" }
    ))
}

/// Tiny deterministic-per-run PRNG for the fault phase (no rand dependency).
struct XorShift(u64);

impl XorShift {
    fn seeded() -> XorShift {
        XorShift(monotonic_ns() | 1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}
