//! Smoke tests of the lab against real keepalived peers (root, keepalived installed: see
//! netns_support for what happens without them): a crash failover measured by the client
//! probe, and the whole `relevo demo` flow with keepalived daemons in place of relevo's; and
//! what an interop test does where keepalived is missing.
mod netns_support;

use netns_support::{lab, needs_root, needs_root_and_keepalived, relevo_bin, run_own_test, serial};
use relevo::lab::fault::{measure_failover, Fault, SETTLE};
use relevo::lab::keepalived::{KeepalivedConfig, KeepalivedNode};
use relevo::lab::{demo, monotonic_ns, PeerImpl, ProbeHandle};
use std::net::IpAddr;
use std::time::Duration;

const VIP: &str = "192.0.2.100/24";
const TIMEOUT: Duration = Duration::from_secs(10);

fn vip() -> IpAddr {
    "192.0.2.100".parse().unwrap()
}

#[test]
fn keepalived_crash_failover_is_measured() {
    if !needs_root_and_keepalived("keepalived_crash_failover_is_measured") {
        return;
    }
    let Some(lab) = lab("kad", 2) else { return };
    let interval = Duration::from_millis(10);
    let mut n1 =
        KeepalivedNode::start(&lab, 1, &KeepalivedConfig::new(51, 150, interval, &[VIP])).unwrap();
    let mut n2 =
        KeepalivedNode::start(&lab, 2, &KeepalivedConfig::new(51, 100, interval, &[VIP])).unwrap();
    lab.wait_master(vip(), 1, TIMEOUT).unwrap();
    let probe = ProbeHandle::spawn(&lab, &relevo_bin(), vip(), Duration::from_millis(1)).unwrap();
    probe.wait_ready(TIMEOUT).unwrap();
    // The notify script records the state after keepalived acted: poll, never read once.
    n1.wait_state("MASTER", TIMEOUT).unwrap();

    let result = measure_failover(&lab, &probe, &mut n1, Fault::Crash, vip(), TIMEOUT).unwrap();
    eprintln!("keepalived crash failover at 10 ms adverts: {result:?}");
    let outage = result
        .outage
        .expect("a crash must cost the client some probes");
    assert!(outage.len() < Duration::from_secs(2), "{outage:?}");
    assert_eq!(result.masters, vec![2]);
    n2.wait_state("MASTER", TIMEOUT).unwrap();
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
    n2.wait_state("BACKUP", TIMEOUT).unwrap();

    n2.stop_graceful().unwrap();
    n2.wait_state("STOP", TIMEOUT).unwrap();
    probe.stop().unwrap();
}

#[test]
fn demo_flow_runs_with_keepalived() {
    if !needs_root_and_keepalived("demo_flow_runs_with_keepalived") {
        return;
    }
    let _serial = serial();
    let mut out = Vec::new();
    let report = demo::run_with(&PeerImpl::Keepalived, &relevo_bin(), &mut out).unwrap();
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
    if !needs_root_and_keepalived("keepalived_ipv6_failover_updates_the_client_neighbour_cache") {
        return;
    }
    let vip6 = "2001:db8::100/64";
    let vip: IpAddr = "2001:db8::100".parse().unwrap();
    let Some(lab) = lab("kad", 2) else { return };
    let interval = Duration::from_millis(10);
    let mut n1 =
        KeepalivedNode::start(&lab, 1, &KeepalivedConfig::new(52, 150, interval, &[vip6])).unwrap();
    let _n2 =
        KeepalivedNode::start(&lab, 2, &KeepalivedConfig::new(52, 100, interval, &[vip6])).unwrap();
    lab.wait_master(vip, 1, TIMEOUT).unwrap();
    let probe = ProbeHandle::spawn(&lab, &relevo_bin(), vip, Duration::from_millis(1)).unwrap();
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

/// README, Running as root: where keepalived is missing (here: a PATH without it) an interop
/// test fails and says how to install it; with RELEVO_SKIP_KEEPALIVED_TESTS=1 it prints
/// "<test>: SKIPPED (keepalived not installed)" and passes; under CI=true it fails even so.
#[test]
fn without_keepalived_an_interop_test_fails_unless_skipping_is_asked_for() {
    if !needs_root("without_keepalived_an_interop_test_fails_unless_skipping_is_asked_for") {
        return;
    }
    let test = "keepalived_crash_failover_is_measured";
    let no_keepalived = ("PATH", "/nonexistent");
    let plain = run_own_test(test, false, &[no_keepalived]);
    assert!(!plain.passed, "{}", plain.output);
    for needle in [
        "keepalived not installed",
        "apt-get install keepalived",
        "RELEVO_SKIP_KEEPALIVED_TESTS=1",
    ] {
        assert!(
            plain.output.contains(needle),
            "{needle:?}:\n{}",
            plain.output
        );
    }
    let skip = ("RELEVO_SKIP_KEEPALIVED_TESTS", "1");
    let skipped = run_own_test(test, false, &[no_keepalived, skip]);
    assert!(skipped.passed, "{}", skipped.output);
    assert!(
        skipped
            .output
            .contains(&format!("{test}: SKIPPED (keepalived not installed)")),
        "{}",
        skipped.output
    );
    let ci = run_own_test(test, false, &[no_keepalived, skip, ("CI", "true")]);
    assert!(!ci.passed, "{}", ci.output);
    assert!(
        ci.output.contains("CI=true forbids skipping"),
        "{}",
        ci.output
    );
}
