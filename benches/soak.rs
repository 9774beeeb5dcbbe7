//! Chaos soak (issue "One master at a time"), as root: `cargo bench --bench soak`.
//!
//! Three relevo nodes (priorities 150/100/50, VRRPv3, 10 ms adverts) and a client pinging the
//! VIP every 1 ms. A seeded sequence of faults, one at a time, 0.3–2.5 s apart: SIGSTOP of a
//! random node for 0.2–1.5 s then SIGCONT, or SIGKILL of a random node (its cable pulled at
//! once) and its restart 0.5–1 s later. At the end the daemons' logs (one clock) give:
//! - **transient takeovers**: a node became MASTER and left it within 100 ms because a
//!   higher-priority master spoke: the client may have been moved through a node that is not
//!   the final owner;
//! - **dual-master windows**: time during which two nodes that were neither frozen nor cut
//!   off both were MASTER;
//! - and the client's outages (count, total, worst).
//!
//! `RELEVO_SOAK_SECS` (default 90), `RELEVO_SOAK_SEED` (default 1). Frozen masters are
//! excluded from the dual-master count: a SIGSTOPped daemon's kernel still answers for its
//! VIP (until its lease ends), which no VRRP implementation can prevent.
#[path = "../tests/seeded_rng/mod.rs"]
mod seeded_rng;

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use relevo::lab::relevo_node::{RelevoNode, VrrpInstance};
use relevo::lab::{check_prerequisites, Lab, ProbeHandle};
use seeded_rng::Rng;

const VIP: &str = "192.0.2.100/24";

fn main() {
    relevo::lab::bench_main("soak", run);
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A period (wall clock, seconds since the epoch) during which a node did not count.
#[derive(Clone, Copy)]
struct Excluded {
    node: usize,
    from: f64,
    to: f64,
}

fn wall() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn run() -> Result<()> {
    check_prerequisites()?;
    let secs = env_u64("RELEVO_SOAK_SECS", 90);
    let mut rng = Rng::new(env_u64("RELEVO_SOAK_SEED", 1));
    let bin = Path::new(env!("CARGO_BIN_EXE_relevo"));
    let lab = Lab::create("soak", 3)?;
    let vip = "192.0.2.100".parse()?;
    let mut nodes = Vec::new();
    for (i, priority) in [(1, 150), (2, 100), (3, 50)] {
        let instance = VrrpInstance::new(51, priority, ms(10), &[VIP]);
        let config = RelevoNode::config_for(&lab, i, instance);
        nodes.push(RelevoNode::start(&lab, i, bin, &config)?);
    }
    lab.wait_master(vip, 1, Duration::from_secs(5))?;
    let probe = ProbeHandle::spawn(&lab, bin, vip, ms(1))?;
    probe.wait_ready(Duration::from_secs(5))?;
    let t_start = relevo::lab::monotonic_ns();
    let started = wall();
    let mut excluded = Vec::new();
    let mut faults = (0, 0);
    while wall() - started < secs as f64 {
        std::thread::sleep(ms(300 + rng.below(2200)));
        let i = rng.index(3);
        let Some(pid) = nodes[i].pid() else { continue };
        let from = wall();
        if rng.below(2) == 0 {
            kill(Pid::from_raw(pid), Signal::SIGSTOP)?;
            std::thread::sleep(ms(200 + rng.below(1300)));
            kill(Pid::from_raw(pid), Signal::SIGCONT)?;
            faults.0 += 1;
        } else {
            lab.set_node_port(i + 1, false)?;
            nodes[i].crash()?;
            std::thread::sleep(ms(500 + rng.below(500)));
            lab.set_node_port(i + 1, true)?;
            nodes[i].restart(&lab)?;
            faults.1 += 1;
        }
        // The node does not count until shortly after it is back (its first adverts).
        excluded.push(Excluded {
            node: i + 1,
            from,
            to: wall() + 0.05,
        });
    }
    std::thread::sleep(ms(500));
    let outages = probe.outages_since(t_start);
    let (sent, received) = probe.stop()?;
    let mut masters: Vec<Vec<(f64, f64, bool)>> = Vec::new();
    for node in &nodes {
        masters.push(master_periods(&std::fs::read_to_string(node.log_path())?));
    }
    // The metrics below are only as good as the log parsing: n1's first election must show.
    if masters.iter().all(|periods| periods.is_empty()) {
        anyhow::bail!("no MASTER period found in the daemons' logs (timestamp format changed?)");
    }
    let transient = masters
        .iter()
        .flatten()
        .filter(|(from, to, displaced)| *displaced && to - from < 0.1)
        .count();
    let dual = dual_master_seconds(&masters, &excluded);
    let total_ms = outages.iter().map(|o| o.len_us).sum::<u64>() as f64 / 1000.0;
    let worst = outages.iter().map(|o| o.len_us).max().unwrap_or(0) as f64 / 1000.0;
    println!(
        "soak {secs} s, seed {}: {} SIGSTOP/SIGCONT + {} SIGKILL faults; probes {sent} sent, {received} answered",
        env_u64("RELEVO_SOAK_SEED", 1),
        faults.0,
        faults.1
    );
    println!("transient takeovers (MASTER < 100 ms, displaced by a higher priority): {transient}");
    println!(
        "dual-master time among running, connected nodes: {:.1} ms",
        dual * 1000.0
    );
    println!(
        "client outages: {}, total {total_ms:.1} ms, worst {worst:.1} ms",
        outages.len()
    );
    lab.destroy();
    Ok(())
}

/// MASTER periods of one log: (from, to, left because a higher priority spoke).
fn master_periods(log: &str) -> Vec<(f64, f64, bool)> {
    let mut out = Vec::new();
    let mut since: Option<f64> = None;
    for line in log.lines() {
        let Some(at) = line.split_whitespace().next().and_then(parse_rfc3339) else {
            continue;
        };
        if line.contains("-> MASTER") {
            since = Some(at);
        } else if line.contains("MASTER ->") {
            if let Some(from) = since.take() {
                out.push((from, at, line.contains("higher priority")));
            }
        }
    }
    if let Some(from) = since {
        out.push((from, f64::MAX, false));
    }
    out
}

/// Seconds during which two nodes, both outside their excluded periods, were MASTER.
fn dual_master_seconds(masters: &[Vec<(f64, f64, bool)>], excluded: &[Excluded]) -> f64 {
    let counts = |node: usize, at: f64| {
        !excluded
            .iter()
            .any(|e| e.node == node && e.from <= at && at <= e.to)
    };
    let mut total = 0.0;
    for a in 0..masters.len() {
        for b in a + 1..masters.len() {
            for &(fa, ta, _) in &masters[a] {
                for &(fb, tb, _) in &masters[b] {
                    let (from, to) = (fa.max(fb), ta.min(tb).min(wall()));
                    if from < to && counts(a + 1, from) && counts(b + 1, from) {
                        total += to - from;
                    }
                }
            }
        }
    }
    total
}

/// A log timestamp (`2026-11-29T03:38:16.389935Z`, RFC 3339) as seconds since the epoch.
fn parse_rfc3339(text: &str) -> Option<f64> {
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(at.unix_timestamp_nanos() as f64 / 1e9)
}
