//! Smoke tests of the lab against real keepalived peers (root, keepalived installed): a crash
//! failover measured by the client probe, and the whole `relevo demo` flow with keepalived
//! daemons in place of relevo's.
use relevo::lab::fault::{measure_failover, Fault, SETTLE};
use relevo::lab::keepalived::{is_installed, KeepalivedConfig, KeepalivedNode};
use relevo::lab::{demo, monotonic_ns, root_test_guard, Lab, PeerImpl, ProbeHandle};
use std::net::IpAddr;
use std::time::Duration;

const VIP: &str = "192.0.2.100/24";
const TIMEOUT: Duration = Duration::from_secs(10);

/// Root and keepalived present? Under CI=true a missing keepalived is a failure too.
fn can_run(test: &str) -> bool {
    if !root_test_guard(test).unwrap() {
        return false;
    }
    if is_installed() {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{test}: keepalived is not installed and CI=true forbids skipping"
    );
    eprintln!("note: skipping {test}: keepalived is not installed");
    false
}

fn vip() -> IpAddr {
    "192.0.2.100".parse().unwrap()
}

#[test]
fn keepalived_crash_failover_is_measured() {
    if !can_run("keepalived_crash_failover_is_measured") {
        return;
    }
    let lab = Lab::create("kad", 2).unwrap();
    let interval = Duration::from_millis(10);
    let mut n1 =
        KeepalivedNode::start(&lab, 1, &KeepalivedConfig::new(51, 150, interval, &[VIP])).unwrap();
    let mut n2 =
        KeepalivedNode::start(&lab, 2, &KeepalivedConfig::new(51, 100, interval, &[VIP])).unwrap();
    lab.wait_master(vip(), 1, TIMEOUT).unwrap();
    let probe = ProbeHandle::spawn(&lab, relevo_bin(), vip(), Duration::from_millis(1)).unwrap();
    probe.wait_ready(TIMEOUT).unwrap();
    assert_eq!(n1.state().as_deref(), Some("MASTER"));

    let result = measure_failover(&lab, &probe, &mut n1, Fault::Crash, vip(), TIMEOUT).unwrap();
    eprintln!("keepalived crash failover at 10 ms adverts: {result:?}");
    let outage = result
        .outage
        .expect("a crash must cost the client some probes");
    assert!(outage.len() < Duration::from_secs(2), "{outage:?}");
    assert_eq!(result.masters, vec![2]);
    assert_eq!(n2.state().as_deref(), Some("MASTER"));
    assert!(!n1.is_running());
    // The client's ARP entry followed the gratuitous ARP to n2's MAC.
    let neigh = lab
        .ip(&lab.client_ns(), &["-4", "neigh", "show", "192.0.2.100"])
        .unwrap();
    assert!(neigh.contains(&lab.node_mac(2)), "{neigh}");

    // n1 comes back and takes over again (priority 150, preempt).
    let t = monotonic_ns();
    Fault::Crash
        .restore(&lab, &mut n1, &[VIP.to_string()])
        .unwrap();
    lab.wait_master(vip(), 1, TIMEOUT).unwrap();
    let back = probe.wait_outage_after(t, SETTLE, TIMEOUT).unwrap();
    eprintln!("keepalived preemption after restart: {back:?}");
    assert!(
        back.is_none_or(|o| o.len() < Duration::from_secs(2)),
        "{back:?}"
    );
    assert_eq!(n2.state().as_deref(), Some("BACKUP"));

    n2.stop_graceful().unwrap();
    assert_eq!(n2.state().as_deref(), Some("STOP"));
    probe.stop().unwrap();
}

#[test]
fn demo_flow_runs_with_keepalived() {
    if !can_run("demo_flow_runs_with_keepalived") {
        return;
    }
    let mut out = Vec::new();
    let report = demo::run_with(&PeerImpl::Keepalived, relevo_bin(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    eprintln!("{text}");
    assert_eq!(report.steps.len(), 3, "{text}");
    let masters: Vec<Vec<usize>> = report
        .steps
        .iter()
        .map(|s| s.result.masters.clone())
        .collect();
    assert_eq!(masters, vec![vec![2], vec![1], vec![2]], "{text}");
    let crash = report.steps[0]
        .result
        .outage
        .expect("the crash costs probes");
    assert!(crash.len() < Duration::from_secs(2), "{text}");
    for step in &report.steps {
        assert!(step.result.outage_ms() < 2000.0, "{text}");
    }
    assert!(text.contains("step 3") && text.contains("done"), "{text}");
}

#[test]
fn keepalived_ipv6_failover_updates_the_client_neighbour_cache() {
    if !can_run("keepalived_ipv6_failover_updates_the_client_neighbour_cache") {
        return;
    }
    let vip6 = "2001:db8::100/64";
    let vip: IpAddr = "2001:db8::100".parse().unwrap();
    let lab = Lab::create("kad", 2).unwrap();
    let interval = Duration::from_millis(10);
    let mut n1 =
        KeepalivedNode::start(&lab, 1, &KeepalivedConfig::new(52, 150, interval, &[vip6])).unwrap();
    let _n2 =
        KeepalivedNode::start(&lab, 2, &KeepalivedConfig::new(52, 100, interval, &[vip6])).unwrap();
    lab.wait_master(vip, 1, TIMEOUT).unwrap();
    let probe = ProbeHandle::spawn(&lab, relevo_bin(), vip, Duration::from_millis(1)).unwrap();
    probe.wait_ready(TIMEOUT).unwrap();
    let result = measure_failover(&lab, &probe, &mut n1, Fault::Crash, vip, TIMEOUT).unwrap();
    eprintln!("keepalived IPv6 crash failover at 10 ms adverts: {result:?}");
    let outage = result
        .outage
        .expect("a crash must cost the client some probes");
    // Without the unsolicited NA (override) being honoured the client would wait for neighbour
    // unreachability detection: seconds.
    assert!(outage.len() < Duration::from_secs(1), "{outage:?}");
    assert_eq!(result.masters, vec![2]);
    let neigh = lab
        .ip(&lab.client_ns(), &["-6", "neigh", "show", "2001:db8::100"])
        .unwrap();
    assert!(neigh.contains(&lab.node_mac(2)), "{neigh}");
}

fn relevo_bin() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_relevo"))
}
