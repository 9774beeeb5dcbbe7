//! Cluster-mode failover (issue 6), as root: `cargo bench --bench cluster`.
//!
//! Three relevo nodes with two heartbeat links each, keepalive 2 ms, warntime 6 ms, deadtime
//! 10 ms, one group "db" with a VIP and no resources, preferring n1; a client pinging the VIP
//! every 1 ms. Per fault, trials of: steady state on n1, a random phase, the fault, the
//! client's outage, the repair and n1 owning the group again (failback). Faults: crash (SIGKILL
//! and both bridge ports blocked at once), isolated (both ports blocked, daemon alive), client
//! link down (n1's eth0 down, heartbeats go on over eth1), graceful stop (SIGTERM). Then the
//! CPU time of one node over a window in steady state.
//!
//! `RELEVO_BENCH_TRIALS` (default 20), `RELEVO_BENCH_TAKEOVER_DELAY` (the group's
//! `takeover_delay`, default relevo's: nothing for a group without resources),
//! `RELEVO_BENCH_CPU_WINDOW` (default 60s), `RELEVO_BENCH_ONLY` (run only the faults whose name
//! starts with it, e.g. `graceful`; `none` for the CPU window alone), `RELEVO_BENCH_DEBUG`
//! (print the last log lines of every node after each trial).
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use relevo::lab::cluster::{ClusterSpec, CLUSTER_VIP};
use relevo::lab::relevo_node::RelevoNode;
use relevo::lab::{
    check_prerequisites, env_duration, monotonic_ns, print_quantiles, process_usage, Lab,
    ProbeHandle, Topology,
};

fn main() {
    relevo::lab::bench_main("cluster", run);
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Crash,
    Isolated,
    ClientLinkDown,
    Graceful,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Crash => "crash (SIGKILL + ports blocked)",
            Fault::Isolated => "isolated (both links)",
            Fault::ClientLinkDown => "client link down",
            Fault::Graceful => "graceful stop (SIGTERM)",
        }
    }
}

fn run() -> Result<()> {
    check_prerequisites()?;
    let trials = relevo::lab::bench_trials(20);
    let spec = ClusterSpec {
        keepalive: ms(2),
        warntime: ms(6),
        deadtime: ms(10),
        initdead: Duration::from_secs(1),
        takeover_delay: env_duration("RELEVO_BENCH_TAKEOVER_DELAY")?,
        ..ClusterSpec::default()
    };
    let bin = Path::new(env!("CARGO_BIN_EXE_relevo"));
    let lab = Lab::create_with("clb", 3, Topology::TwoLinks)?;
    let mut nodes = spec.start(&lab, bin)?;
    let vip = CLUSTER_VIP.split('/').next().unwrap_or_default().parse()?;
    lab.wait_master(vip, 1, Duration::from_secs(5))?;
    let probe = ProbeHandle::spawn(&lab, bin, vip, ms(1))?;
    probe.wait_ready(Duration::from_secs(5))?;
    println!(
        "cluster bench: 3 nodes x 2 links, keepalive 2 ms, deadtime 10 ms, takeover_delay {}, {trials} trials per fault",
        spec.takeover_delay
            .map_or("default (the stop timeouts: 0 here)".to_string(), |d| format!("{d:?}"))
    );
    println!(
        "{:<32} {:>8} {:>8} {:>8} {:>8}",
        "fault", "min", "median", "p95", "max"
    );
    let only = std::env::var("RELEVO_BENCH_ONLY").ok();
    for fault in [
        Fault::Crash,
        Fault::Isolated,
        Fault::ClientLinkDown,
        Fault::Graceful,
    ] {
        if only
            .as_deref()
            .is_some_and(|o| !fault.name().starts_with(o))
        {
            continue;
        }
        let mut outages = Vec::new();
        for trial in 0..trials {
            lab.wait_master(vip, 1, Duration::from_secs(5))?;
            std::thread::sleep(ms(100 + (monotonic_ns() % 20_000_000) / 1_000_000));
            let t = monotonic_ns();
            inject(&lab, &mut nodes[0], fault)?;
            lab.wait_master(vip, 2, Duration::from_secs(5))
                .with_context(|| format!("{} trial {trial}: n2 did not take over", fault.name()))?;
            let outage = probe.wait_outage_after(t, ms(200), Duration::from_secs(10))?;
            outages.push(outage.map_or(0.0, |o| o.millis()));
            if std::env::var("RELEVO_BENCH_DEBUG").is_ok() {
                println!("trial {trial}: fault at {t} ns, outage {:?}", outage);
                for (i, node) in nodes.iter().enumerate() {
                    let log = std::fs::read_to_string(node.log_path()).unwrap_or_default();
                    let lines: Vec<&str> = log.lines().collect();
                    for l in &lines[lines.len().saturating_sub(8)..] {
                        println!("  n{}: {l}", i + 1);
                    }
                }
            }
            repair(&lab, &mut nodes[0], fault)?;
            let back = monotonic_ns();
            lab.wait_master(vip, 1, Duration::from_secs(5))?;
            probe.wait_outage_after(back, ms(200), Duration::from_secs(10))?;
        }
        print_quantiles(fault.name(), &mut outages);
    }
    let window = env_duration("RELEVO_BENCH_CPU_WINDOW")?.unwrap_or(Duration::from_secs(60));
    let pid = nodes[1].pid().context("n2 is not running")?;
    let before = process_usage(pid)?;
    let started = Instant::now();
    std::thread::sleep(window);
    let after = process_usage(pid)?;
    let cpu = after.cpu.saturating_sub(before.cpu).as_secs_f64();
    let system = after.system.saturating_sub(before.system).as_secs_f64();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "steady state, one node (n2) over {elapsed:.0} s: CPU {:.2}% of a core ({:.2}% user, \
         {:.2}% kernel), RSS {} KiB",
        100.0 * cpu / elapsed,
        100.0 * (cpu - system) / elapsed,
        100.0 * system / elapsed,
        after.rss_kib
    );
    drop(probe);
    drop(nodes);
    lab.destroy();
    Ok(())
}

fn inject(lab: &Lab, n1: &mut RelevoNode, fault: Fault) -> Result<()> {
    match fault {
        Fault::Crash => {
            lab.set_node_blocked(1, true)?;
            n1.crash()?;
        }
        Fault::Isolated => lab.set_node_blocked(1, true)?,
        Fault::ClientLinkDown => lab.set_node_link(1, false)?,
        Fault::Graceful => {
            let pid = n1.pid().context("n1 is not running")?;
            kill(Pid::from_raw(pid), Signal::SIGTERM)?;
        }
    }
    Ok(())
}

fn repair(lab: &Lab, n1: &mut RelevoNode, fault: Fault) -> Result<()> {
    match fault {
        Fault::Crash => {
            // The crashed node's VIP stays on its interface (its lease runs): remove it as a
            // reboot would, then start it again.
            lab.remove_node_address(1, CLUSTER_VIP)?;
            lab.set_node_blocked(1, false)?;
            n1.restart(lab)?;
        }
        Fault::Isolated => lab.set_node_blocked(1, false)?,
        Fault::ClientLinkDown => lab.set_node_link(1, true)?,
        Fault::Graceful => {
            let deadline = Instant::now() + Duration::from_secs(5);
            while n1.is_running() {
                if Instant::now() > deadline {
                    bail!("n1 did not exit on SIGTERM");
                }
                std::thread::sleep(ms(10));
            }
            n1.restart(lab)?;
        }
    }
    Ok(())
}
