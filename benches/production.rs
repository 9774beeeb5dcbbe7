//! Production-edge benchmark (issue "VRRP in production"), as root:
//! `cargo bench --bench production`. Three measurements on a namespace lab, each printed as
//! min / median / max over its trials:
//! - **restore**: a VIP deleted by hand on the master (`ip addr del`) until it is back on the
//!   interface (polled every 1 ms).
//! - **lease**: a master with `vip_lease = "2s"` is SIGKILLed; time until its VIP is gone from
//!   its interface (polled every 10 ms; the kernel expires addresses on a 1 s-granular timer).
//! - **flood**: a master at 10 ms adverts and its backup while the client floods bad-checksum
//!   adverts at full speed for 5 s: the master's timer lateness p50 / p99 / worst (from
//!   `relevo status`, since the daemon's start) and how often the backup became MASTER.
//!
//! `RELEVO_BENCH_TRIALS` sets the trials of restore and lease (default 10), runs of the flood
//! (default 3). Runtime: about 1 minute.
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use relevo::lab::flood::flood_bad_checksum;
use relevo::lab::relevo_node::{RelevoNode, VrrpInstance};
use relevo::lab::{check_prerequisites, Lab};

const VIP: &str = "192.0.2.100/24";
const VRID: u8 = 51;

fn main() {
    relevo::lab::bench_main("production", run);
}

fn run() -> Result<()> {
    check_prerequisites()?;
    let trials: usize = std::env::var("RELEVO_BENCH_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(10);
    let bin = Path::new(env!("CARGO_BIN_EXE_relevo"));
    let vip: IpAddr = "192.0.2.100".parse()?;
    let restore = restore_times(bin, vip, trials)?;
    row("restore after ip addr del (ms)", &restore);
    let lease = lease_expiry(bin, vip, trials)?;
    row("VIP gone after SIGKILL, lease 2s (ms)", &lease);
    for run in 1..=trials.min(3) {
        flood(bin, vip, run)?;
    }
    Ok(())
}

fn instance(priority: u8, interval: Duration) -> VrrpInstance {
    VrrpInstance::new(VRID, priority, interval, &[VIP])
}

fn start(lab: &Lab, node: usize, instance: VrrpInstance, bin: &Path) -> Result<RelevoNode> {
    let config = RelevoNode::config_for(lab, node, instance);
    RelevoNode::start(lab, node, bin, &config)
}

fn wait(timeout: Duration, step: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(step);
    }
    None
}

fn restore_times(bin: &Path, vip: IpAddr, trials: usize) -> Result<Vec<f64>> {
    let lab = Lab::create("brestore", 1)?;
    let _n1 = start(&lab, 1, instance(150, Duration::from_millis(100)), bin)?;
    lab.wait_master(vip, 1, Duration::from_secs(5))?;
    let mut out = Vec::new();
    for _ in 0..trials {
        std::thread::sleep(Duration::from_millis(600));
        let t = Instant::now();
        lab.ip(&lab.node_ns(1), &["addr", "del", VIP, "dev", "eth0"])?;
        let del = t.elapsed();
        let back = wait(Duration::from_secs(3), Duration::from_millis(1), || {
            lab.node_has_address(1, vip)
        })
        .context("the VIP was not restored within 3 s")?;
        out.push((del + back).as_secs_f64() * 1000.0);
    }
    Ok(out)
}

fn lease_expiry(bin: &Path, vip: IpAddr, trials: usize) -> Result<Vec<f64>> {
    let lab = Lab::create("blease", 1)?;
    let mut one = instance(150, Duration::from_millis(100));
    one.vip_lease = Some(Duration::from_secs(2));
    let mut n1 = start(&lab, 1, one, bin)?;
    let mut out = Vec::new();
    for _ in 0..trials {
        lab.wait_master(vip, 1, Duration::from_secs(5))?;
        // A random phase against the lease refresh.
        std::thread::sleep(Duration::from_millis(700 + (out.len() as u64 * 97) % 700));
        n1.crash()?;
        let gone = wait(Duration::from_secs(10), Duration::from_millis(10), || {
            !lab.node_has_address(1, vip)
        })
        .context("the VIP outlived its lease by far")?;
        out.push(gone.as_secs_f64() * 1000.0);
        n1.restart(&lab)?;
    }
    Ok(out)
}

fn flood(bin: &Path, vip: IpAddr, run: usize) -> Result<()> {
    let lab = Lab::create("bflood", 2)?;
    let fast = Duration::from_millis(10);
    let n1 = start(&lab, 1, instance(150, fast), bin)?;
    let n2 = start(&lab, 2, instance(100, fast), bin)?;
    lab.wait_master(vip, 1, Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_secs(1));
    // Adverts sent by the backup count its time as MASTER (flaps); state changes of the
    // master show in its reason; both are read around the flood window only.
    let sent = |node: &RelevoNode| -> Result<u64> {
        Ok(node.instance_status("web")?.counter("adverts_sent"))
    };
    let backup_before = sent(&n2)?;
    let report = flood_bad_checksum(&lab, VRID, vip, Duration::from_secs(5))?;
    let s1 = n1.status()?;
    let web = s1.instances.first().context("n1 reports no instance")?;
    let l = &s1.loop_stats;
    println!(
        "flood run {run}: {:.0} bad adverts/s sent, {} dropped by the master; master timer lateness (since its start) p50 {} µs, p99 {} µs, worst {} µs; budget stops {}; adverts sent by the backup during the flood {}; master still {}",
        report.rate_per_second(),
        web.counter("bad_checksum"),
        l.timer_lateness_p50_us,
        l.timer_lateness_p99_us,
        l.timer_lateness_worst_us,
        l.budget_exhausted,
        sent(&n2)? - backup_before,
        web.state,
    );
    Ok(())
}

fn row(what: &str, values: &[f64]) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "{what}: min {:.1}  median {:.1}  max {:.1}  (n={})",
        sorted.first().copied().unwrap_or(f64::NAN),
        median,
        sorted.last().copied().unwrap_or(f64::NAN),
        sorted.len()
    );
}
