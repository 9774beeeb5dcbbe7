//! Fencing before takeover (issue 7), as root: `cargo bench --bench fencing`.
//!
//! Three relevo nodes with two heartbeat links each (by default keepalive 2 ms, warntime 6 ms,
//! deadtime 10 ms, as in the cluster bench), one group "db" with a VIP preferring n1, and n1 fenced over IPMI (RMCP+) by a BMC:
//! OpenIPMI's `ipmi_sim` in the client namespace, whose power-off SIGKILLs n1's daemon and
//! downs its links. A client pings the VIP every 1 ms. Each trial: steady state on n1, a
//! random phase, n1 isolated (both bridge ports blocked, daemon alive), then n2 fences it and
//! takes over; the client's outage is split from n2's log into detection (isolation to
//! "fencing n1"), fence (to "n1 is fenced": the BMC confirmed power off) and acquisition (to
//! the first answered probe). Repair: power on, links up, daemon restarted, failback to n1.
//!
//! `RELEVO_BENCH_TRIALS` (default 20), `RELEVO_BENCH_KEEPALIVE` (default 2ms),
//! `RELEVO_BENCH_DEADTIME` (default 10ms; warntime is 3/5 of it).
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use relevo::lab::bmc::{Chassis, LabBmc, BMC_PASSWORD};
use relevo::lab::cluster::{ClusterSpec, CLUSTER_VIP};
use relevo::lab::relevo_node::RelevoNode;
use relevo::lab::{
    check_prerequisites, env_duration, monotonic_ns, print_quantiles, Lab, ProbeHandle, Topology,
    IPMI_SIM,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn main() {
    relevo::lab::bench_main("fencing", run);
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The wall-clock time of the first line of `log` at or after `since` that contains `needle`
/// (the daemon's lines start with an RFC 3339 timestamp).
fn logged_after(log: &str, needle: &str, since: SystemTime) -> Option<SystemTime> {
    log.lines().filter(|l| l.contains(needle)).find_map(|line| {
        let stamp = line.split_whitespace().next()?;
        let at: SystemTime = OffsetDateTime::parse(stamp, &Rfc3339).ok()?.into();
        (at >= since).then_some(at)
    })
}

/// The last lines of every node's log, for errors.
fn tails(nodes: &[RelevoNode]) -> String {
    let mut out = String::new();
    for (i, node) in nodes.iter().enumerate() {
        let log = std::fs::read_to_string(node.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        for line in &lines[lines.len().saturating_sub(15)..] {
            out += &format!("  n{}: {line}\n", i + 1);
        }
    }
    out
}

fn millis_between(a: SystemTime, b: SystemTime) -> f64 {
    b.duration_since(a).unwrap_or_default().as_secs_f64() * 1000.0
}

fn run() -> Result<()> {
    check_prerequisites()?;
    if !Path::new(IPMI_SIM).exists() {
        bail!("{IPMI_SIM} is missing: apt-get install openipmi");
    }
    let trials = relevo::lab::bench_trials(20);
    let bin = Path::new(env!("CARGO_BIN_EXE_relevo"));
    let lab = Lab::create_with("fnb", 3, Topology::TwoLinks)?;
    let bmc = LabBmc::start_for_node(&lab, 1, Chassis::Normal)?;
    let pid_file = bmc.pid_file(&lab);
    let n1_ns = lab.node_ns(1);
    let device = bmc.fence_device(&lab, BMC_PASSWORD, Duration::from_secs(10))?;
    let keepalive = env_duration("RELEVO_BENCH_KEEPALIVE")?.unwrap_or(ms(2));
    let deadtime = env_duration("RELEVO_BENCH_DEADTIME")?.unwrap_or(ms(10));
    let spec = ClusterSpec {
        keepalive,
        warntime: (deadtime * 3 / 5).max(keepalive),
        deadtime,
        initdead: Duration::from_secs(1),
        takeover_delay: None,
        fences: vec![(1, device)],
        ..ClusterSpec::default()
    };
    let mut nodes = spec.start(&lab, bin)?;
    let vip = CLUSTER_VIP.split('/').next().unwrap_or_default().parse()?;
    lab.wait_master(vip, 1, Duration::from_secs(5))?;
    let probe = ProbeHandle::spawn(&lab, bin, vip, ms(1))?;
    probe.wait_ready(Duration::from_secs(5))?;
    println!(
        "fencing bench: 3 nodes x 2 links, keepalive {keepalive:?}, deadtime {deadtime:?}, n1 \
         fenced over IPMI (ipmi_sim, RMCP+, power off confirmed by chassis status), {trials} trials"
    );
    println!(
        "{:<32} {:>8} {:>8} {:>8} {:>8}",
        "ms", "min", "median", "p95", "max"
    );
    let (mut outages, mut detection, mut fence, mut acquisition) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for trial in 0..trials {
        std::fs::write(
            &pid_file,
            nodes[0].pid().context("n1 is not running")?.to_string(),
        )
        .with_context(|| format!("writing {}", pid_file.display()))?;
        std::thread::sleep(ms(100 + (monotonic_ns() % 20_000_000) / 1_000_000));
        let wall = SystemTime::now();
        let t = monotonic_ns();
        lab.set_node_blocked(1, true)?;
        lab.wait_master(vip, 2, Duration::from_secs(15))
            .with_context(|| format!("trial {trial}: n2 did not take over"))?;
        let outage = probe
            .wait_outage_after(t, ms(200), Duration::from_secs(20))?
            .with_context(|| {
                format!("trial {trial}: the client lost nothing\n{}", tails(&nodes))
            })?;
        // The log is written by its own thread and may lag on a loaded machine.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let (fencing, fenced) = loop {
            let log = std::fs::read_to_string(nodes[1].log_path())?;
            if let (Some(a), Some(b)) = (
                logged_after(&log, "fencing n1 with", wall),
                logged_after(&log, "n1 is fenced", wall),
            ) {
                break (a, b);
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "trial {trial}: no \"fencing n1\" and \"n1 is fenced\" in n2's log\n{}",
                    tails(&nodes)
                );
            }
            std::thread::sleep(ms(50));
        };
        let total = outage.millis();
        outages.push(total);
        // The cut is the first lost probe (the bridge command before it takes a few ms),
        // placed on the wall clock of the log through the pair (wall, t) taken together.
        let cut = wall + Duration::from_nanos(outage.start_ns.saturating_sub(t));
        let detected = millis_between(cut, fencing);
        let confirmed = millis_between(fencing, fenced);
        detection.push(detected);
        fence.push(confirmed);
        acquisition.push((total - detected - confirmed).max(0.0));
        // Repair: power back on, links up, the node boots (its daemon starts again).
        bmc.power_on()?;
        lab.ip(&n1_ns, &["link", "set", "eth0", "up"])?;
        lab.ip(&n1_ns, &["link", "set", "eth1", "up"])?;
        // A bridge port takes a state only once it has its carrier back.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while let Err(e) = lab.set_node_blocked(1, false) {
            if std::time::Instant::now() > deadline {
                return Err(e);
            }
            std::thread::sleep(ms(20));
        }
        lab.remove_node_address(1, CLUSTER_VIP).ok();
        nodes[0].restart(&lab)?;
        let back = monotonic_ns();
        if let Err(e) = lab.wait_master(vip, 1, Duration::from_secs(20)) {
            bail!(
                "trial {trial}: n1 did not fail back: {e:#}\n{}",
                tails(&nodes)
            );
        }
        probe.wait_outage_after(back, ms(200), Duration::from_secs(10))?;
    }
    print_quantiles("client outage", &mut outages);
    print_quantiles("  detection (cut -> fencing)", &mut detection);
    print_quantiles("  fence (IPMI off confirmed)", &mut fence);
    print_quantiles("  acquisition (-> VIP answers)", &mut acquisition);
    drop(probe);
    drop(nodes);
    drop(bmc);
    lab.destroy();
    Ok(())
}
