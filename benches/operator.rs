//! Planned moves (issue 8), as root: `cargo bench --bench operator`.
//!
//! Lost client probes (1 ms apart) per planned move, exact counts. VRRP: two nodes at 10 ms
//! adverts (priorities 150 / 100, preempt), `relevo maintenance on` on the master, then `off`
//! (the master preempts back). Cluster: three nodes x two links (keepalive 20 ms, deadtime
//! 100 ms), `relevo switchover db` on its holder, then `relevo takeover` (failback).
//! `RELEVO_BENCH_TRIALS` (default 20).
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use relevo::lab::cluster::{ClusterSpec, CLUSTER_VIP};
use relevo::lab::relevo_node::{RelevoNode, VrrpInstance};
use relevo::lab::{check_prerequisites, monotonic_ns, Lab, ProbeHandle, Topology};

fn main() {
    relevo::lab::bench_main("operator", run);
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs `relevo <args>` against `node`, then waits until `to` alone holds `vip` and the
/// probe's outage (if any) is over; the probes lost.
fn planned_move(
    lab: &Lab,
    probe: &ProbeHandle,
    node: &RelevoNode,
    args: &[&str],
    vip: IpAddr,
    to: usize,
) -> Result<u64> {
    let t = monotonic_ns();
    node.cli(args)?;
    lab.wait_master(vip, to, Duration::from_secs(5))
        .with_context(|| format!("relevo {args:?}: n{to} did not take the VIP"))?;
    let outage = probe.wait_outage_after(t, ms(300), Duration::from_secs(10))?;
    let lost = outage.map_or(0, |o| o.lost);
    if lost > 0 && std::env::var("RELEVO_BENCH_DEBUG").is_ok() {
        println!("relevo {args:?}: lost {lost} ({outage:?}) at {t} ns");
        for i in 1..=lab.nodes() {
            let log = std::fs::read_to_string(lab.work_dir().join(format!("n{i}.log")))?;
            let lines: Vec<&str> = log.lines().collect();
            for line in &lines[lines.len().saturating_sub(12)..] {
                println!("  n{i}: {line}");
            }
        }
    }
    Ok(lost)
}

fn report(name: &str, lost: &[u64]) {
    let total: u64 = lost.iter().sum();
    let worst = lost.iter().max().copied().unwrap_or(0);
    let zero = lost.iter().filter(|&&n| n == 0).count();
    println!(
        "{name:<40} lost probes: total {total} in {} trials, worst {worst}, {zero} trials with none",
        lost.len()
    );
}

fn run() -> Result<()> {
    check_prerequisites()?;
    let trials = relevo::lab::bench_trials(20);
    let bin = Path::new(env!("CARGO_BIN_EXE_relevo"));

    let lab = Lab::create("opb", 2)?;
    let vip_text = "192.0.2.100/24";
    let vip: IpAddr = vip_text.split('/').next().unwrap_or_default().parse()?;
    let nodes: Vec<RelevoNode> = [(1, 150), (2, 100)]
        .into_iter()
        .map(|(i, priority)| {
            let config = RelevoNode::config_for(
                &lab,
                i,
                VrrpInstance::new(81, priority, ms(10), &[vip_text]),
            );
            RelevoNode::start(&lab, i, bin, &config)
        })
        .collect::<Result<_>>()?;
    lab.wait_master(vip, 1, Duration::from_secs(5))?;
    let probe = ProbeHandle::spawn(&lab, bin, vip, ms(1))?;
    probe.wait_ready(Duration::from_secs(5))?;
    println!("operator bench: {trials} trials per move, client probe every 1 ms");
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        on.push(planned_move(
            &lab,
            &probe,
            &nodes[0],
            &["maintenance", "on"],
            vip,
            2,
        )?);
        off.push(planned_move(
            &lab,
            &probe,
            &nodes[0],
            &["maintenance", "off"],
            vip,
            1,
        )?);
    }
    report("VRRP 10 ms: maintenance on (master)", &on);
    report("VRRP 10 ms: maintenance off (preempt)", &off);
    drop(probe);
    drop(nodes);
    lab.destroy();

    let lab = Lab::create_with("opc", 3, Topology::TwoLinks)?;
    let spec = ClusterSpec {
        vrrp_instance: false,
        ..ClusterSpec::default()
    };
    let nodes = spec.start(&lab, bin)?;
    let vip: IpAddr = CLUSTER_VIP.split('/').next().unwrap_or_default().parse()?;
    lab.wait_master(vip, 1, Duration::from_secs(5))?;
    let probe = ProbeHandle::spawn(&lab, bin, vip, ms(1))?;
    probe.wait_ready(Duration::from_secs(5))?;
    let (mut away, mut back) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        away.push(planned_move(
            &lab,
            &probe,
            &nodes[0],
            &["switchover", "db"],
            vip,
            2,
        )?);
        back.push(planned_move(
            &lab,
            &probe,
            &nodes[0],
            &["takeover"],
            vip,
            1,
        )?);
    }
    report("cluster: switchover db (holder)", &away);
    report("cluster: takeover (failback)", &back);
    drop(probe);
    drop(nodes);
    lab.destroy();
    Ok(())
}
