//! Split and heal (issue 11), as root: `cargo bench --bench split_heal`.
//!
//! Three relevo nodes (priorities 150/100/50, VRRPv3, 10 ms adverts) and a client pinging the
//! VIP every 1 ms. A seeded sequence of cuts: every node's bridge port is isolated (the nodes
//! no longer hear each other, the client still reaches all of them, so each becomes MASTER)
//! for 0.3–3 s, then healed, then 0.3–1 s of calm. After each heal the client's outage until it
//! is back on the survivor is measured. Run once in real-MAC mode and once in virtual-MAC mode.
//!
//! `RELEVO_BENCH_CUTS` (default 29), `RELEVO_SOAK_SEED` (default 1), `RELEVO_BENCH_MODES`
//! (default "real,virtual").
#[path = "../tests/seeded_rng/mod.rs"]
mod seeded_rng;

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use relevo::lab::relevo_node::{RelevoNode, VrrpInstance};
use relevo::lab::{check_prerequisites, Lab, ProbeHandle};
use seeded_rng::Rng;

const VIP: &str = "192.0.2.100/24";

fn main() {
    relevo::lab::bench_main("split_heal", run);
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn run() -> Result<()> {
    check_prerequisites()?;
    let modes = std::env::var("RELEVO_BENCH_MODES").unwrap_or_else(|_| "real,virtual".into());
    for mode in modes.split(',') {
        let virtual_mac = match mode.trim() {
            "real" => false,
            "virtual" => true,
            other => anyhow::bail!("RELEVO_BENCH_MODES: unknown mode {other:?} (real, virtual)"),
        };
        run_mode(virtual_mac)?;
    }
    Ok(())
}

fn run_mode(virtual_mac: bool) -> Result<()> {
    let cuts = env_u64("RELEVO_BENCH_CUTS", 29);
    let seed = env_u64("RELEVO_SOAK_SEED", 1);
    let mut rng = Rng::new(seed);
    let bin = Path::new(env!("CARGO_BIN_EXE_relevo"));
    let lab = Lab::create("split", 3)?;
    let vip = "192.0.2.100".parse()?;
    let mut nodes = Vec::new();
    for (i, priority) in [(1, 150), (2, 100), (3, 50)] {
        let mut instance = VrrpInstance::new(51, priority, ms(10), &[VIP]);
        instance.virtual_mac = virtual_mac;
        let config = RelevoNode::config_for(&lab, i, instance);
        nodes.push(RelevoNode::start(&lab, i, bin, &config)?);
    }
    lab.wait_master(vip, 1, Duration::from_secs(5))?;
    let probe = ProbeHandle::spawn(&lab, bin, vip, ms(1))?;
    probe.wait_ready(Duration::from_secs(5))?;
    let started = std::time::Instant::now();
    let mut outages = Vec::new();
    for _ in 0..cuts {
        for i in 1..=3 {
            lab.set_node_isolated(i, true)?;
        }
        std::thread::sleep(ms(300 + rng.below(2700)));
        let healed = relevo::lab::monotonic_ns();
        for i in 1..=3 {
            lab.set_node_isolated(i, false)?;
        }
        let outage = probe.wait_outage_after(healed, ms(300), Duration::from_secs(10))?;
        outages.push(outage.map_or(0.0, |o| o.millis()));
        lab.wait_master(vip, 1, Duration::from_secs(3))?;
        std::thread::sleep(ms(300 + rng.below(700)));
    }
    let secs = started.elapsed().as_secs_f64();
    let (sent, received) = probe.stop()?;
    drop(nodes);
    lab.destroy();
    let mut sorted = outages.clone();
    sorted.sort_by(f64::total_cmp);
    let pick = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let mode = if virtual_mac {
        "virtual-MAC"
    } else {
        "real-MAC"
    };
    println!(
        "{mode}: {cuts} cuts in {secs:.0} s (seed {seed}); post-heal outage ms: median {:.1}, p95 {:.1}, worst {:.1}; {} of {cuts} at or under 50 ms",
        pick(0.5),
        pick(0.95),
        pick(1.0),
        outages.iter().filter(|&&o| o <= 50.0).count()
    );
    println!(
        "{mode}: probes {sent} sent, {received} answered ({:.1} % unanswered, split periods included)",
        100.0 * sent.saturating_sub(received) as f64 / sent.max(1) as f64
    );
    Ok(())
}
