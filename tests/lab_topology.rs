//! The namespace lab itself (root: see netns_support for what happens without it): topology
//! (one segment, and two segments behind a router), reachability over the bridge, the two
//! link faults, the outage probe (`relevo probe`), complete cleanup on drop (and none with
//! RELEVO_LAB_KEEP=1), and what a namespace test does when run without root.
mod netns_support;

use netns_support::{lab, lab_with, needs_root, relevo_bin, run_own_test, serial, wait_for};
use nix::sys::signal::Signal;
use relevo::lab::{group_members, monotonic_ns, ProbeHandle, Topology};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PROBE_INTERVAL: Duration = Duration::from_millis(1);
const SETTLE: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_secs(10);

fn netns_list() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Calls `fault(false)`, then `fault(true)` after `down_for`; returns the outage measured.
fn outage_around(
    probe: &ProbeHandle,
    down_for: Duration,
    fault: impl Fn(bool),
) -> Option<relevo::lab::Outage> {
    let t = monotonic_ns();
    fault(false);
    std::thread::sleep(down_for);
    fault(true);
    probe.wait_outage_after(t, SETTLE, TIMEOUT).unwrap()
}

fn assert_outage_near(outage: Option<relevo::lab::Outage>, down_for: Duration, what: &str) {
    let outage = outage.unwrap_or_else(|| panic!("{what}: no outage measured"));
    let ms = outage.millis();
    let expected = down_for.as_millis() as f64;
    assert!(
        ms >= expected * 0.8 && ms <= expected + 1500.0,
        "{what}: outage {ms} ms for a {expected} ms fault ({outage:?})"
    );
    assert!(
        outage.lost >= 100,
        "{what}: only {} probes lost",
        outage.lost
    );
}

#[test]
fn lab_builds_reaches_nodes_and_injects_faults() {
    let Some(lab) = lab("topo", 2) else { return };
    let listed = netns_list();
    for ns in [
        lab.bridge_ns(),
        lab.node_ns(1),
        lab.node_ns(2),
        lab.client_ns(),
    ] {
        assert!(
            listed.contains(&ns),
            "{ns} missing from `ip netns list`:\n{listed}"
        );
    }
    assert!(lab.node_has_address(1, IpAddr::V4(lab.node_ipv4(1))));
    assert!(lab.node_has_address(2, IpAddr::V6(lab.node_ipv6(2))));
    assert!(lab.node_has_address(1, IpAddr::V6(lab.node_link_local(1))));
    assert!(!lab.node_has_address(1, IpAddr::V4(lab.node_ipv4(2))));
    let out = lab.ip(&lab.node_ns(1), &["link", "show", "eth0"]).unwrap();
    assert!(out.contains("02:52:00:00:00:01"), "{out}");

    // IPv6 over the bridge, both directions of the neighbour discovery path.
    let v6 = ProbeHandle::spawn(
        &lab,
        &relevo_bin(),
        IpAddr::V6(lab.node_ipv6(2)),
        PROBE_INTERVAL,
    )
    .unwrap();
    v6.wait_ready(TIMEOUT).unwrap();
    let (sent, received) = v6.stop().unwrap();
    assert!(
        sent >= 1 && received >= 1,
        "sent {sent} received {received}"
    );

    let target = IpAddr::V4(lab.node_ipv4(1));
    let probe = ProbeHandle::spawn(&lab, &relevo_bin(), target, PROBE_INTERVAL).unwrap();
    probe.wait_ready(TIMEOUT).unwrap();

    // Stable network: no outage at all.
    let t = monotonic_ns();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(probe.wait_outage_after(t, SETTLE, TIMEOUT).unwrap(), None);

    let down = Duration::from_millis(400);
    let port = outage_around(&probe, down, |up| lab.set_node_port(1, up).unwrap());
    eprintln!("port down {down:?}: {port:?}");
    assert_outage_near(port, down, "bridge port down");
    let link = outage_around(&probe, down, |up| lab.set_node_link(1, up).unwrap());
    assert_outage_near(link, down, "node link down");
    // The node's static IPv6 address survives its link going down and up.
    assert!(lab.node_has_address(1, IpAddr::V6(lab.node_ipv6(1))));

    // The address disappears from node 1 for a while.
    let cidr = format!("{}/24", lab.node_ipv4(1));
    let removed = outage_around(&probe, down, |up| {
        if up {
            lab.add_node_address(1, &cidr).unwrap()
        } else {
            lab.remove_node_address(1, &cidr).unwrap()
        }
    });
    assert_outage_near(removed, down, "address removed");
    assert_eq!(lab.masters(target), vec![1]);

    let (sent, received) = probe.stop().unwrap();
    assert!(
        sent > received && received > 1000,
        "sent {sent} received {received}"
    );
}

#[test]
fn processes_and_namespaces_are_removed_on_drop() {
    let Some(test_lab) = lab("drop", 1) else {
        return;
    };
    let lab = test_lab.lab;
    let id = lab.id().to_string();
    let work_dir = lab.work_dir().to_path_buf();
    let hook_dir = lab.hook_dir().unwrap();
    assert!(hook_dir.is_dir());
    let log = work_dir.join("sleep.log");

    let mut term = lab.spawn(&lab.node_ns(1), &["sleep", "30"], &log).unwrap();
    assert!(term.is_running());
    term.signal(Signal::SIGTERM).unwrap();
    assert!(term.wait_exit(TIMEOUT).unwrap().is_some());
    assert!(!term.is_running());
    assert!(term.signal(Signal::SIGTERM).is_err());

    // A child of the spawned process (same process group) dies with the lab too.
    let mut tree = lab
        .spawn(&lab.node_ns(1), &["sh", "-c", "sleep 31 & sleep 32"], &log)
        .unwrap();
    let mut plain = lab.spawn(&lab.client_ns(), &["sleep", "33"], &log).unwrap();
    let tree_pid = tree.pid();
    // The shell has started its background child: two live processes in the group.
    assert!(
        wait_for(TIMEOUT, || group_members(tree_pid).len() >= 2),
        "group {tree_pid}: {:?}",
        group_members(tree_pid)
    );
    assert!(netns_list().contains(&id));

    drop(lab);
    assert!(!plain.is_running());
    assert!(!tree.is_running());
    // Orphaned group members may linger as zombies until init reaps them; none may run.
    let running = group_members(tree_pid);
    assert!(
        running.is_empty(),
        "processes left in group {tree_pid}: {running:?}"
    );
    let listed = netns_list();
    assert!(!listed.contains(&id), "namespaces left:\n{listed}");
    for dir in [&work_dir, &hook_dir] {
        assert!(!Path::new(dir).exists(), "{} left", dir.display());
    }
}

#[test]
fn relevo_probe_subcommand_measures_an_outage() {
    let Some(lab) = lab("prb", 1) else { return };
    let probe = ProbeHandle::spawn(
        &lab,
        &relevo_bin(),
        IpAddr::V4(lab.node_ipv4(1)),
        PROBE_INTERVAL,
    )
    .unwrap();
    probe.wait_ready(TIMEOUT).unwrap();
    let down = Duration::from_millis(300);
    let outage = outage_around(&probe, down, |up| lab.set_node_port(1, up).unwrap());
    assert_outage_near(outage, down, "port down (relevo probe)");
    let (sent, received) = probe.stop().unwrap();
    assert!(received > 0 && sent > received);
}

/// Two segments and a router: node 2 is on the second segment, reaches node 1 through the
/// router, and the client (on the first) reaches node 2 over IPv4 and IPv6.
#[test]
fn routed_topology_joins_two_segments_through_the_router() {
    let Some(lab) = lab_with("rtd", 2, Topology::Routed) else {
        return;
    };
    assert_eq!(lab.node_ipv4(1).to_string(), "192.0.2.11");
    assert_eq!(lab.node_ipv4(2).to_string(), "198.51.100.12");
    assert!(lab.node_has_address(2, IpAddr::V4(lab.node_ipv4(2))));
    assert!(netns_list().contains(&lab.router_ns()));
    let route = lab
        .ip(
            &lab.node_ns(2),
            &["route", "get", &lab.node_ipv4(1).to_string()],
        )
        .unwrap();
    assert!(route.contains("via 198.51.100.1"), "{route}");
    for target in [IpAddr::V4(lab.node_ipv4(2)), IpAddr::V6(lab.node_ipv6(2))] {
        let probe = ProbeHandle::spawn(&lab, &relevo_bin(), target, PROBE_INTERVAL).unwrap();
        probe.wait_ready(TIMEOUT).unwrap();
        let (_, received) = probe.stop().unwrap();
        assert!(received >= 1, "{target} not reachable from the client");
    }
}

/// README, Running as root: run without root, a namespace test fails and says how to run it;
/// with RELEVO_SKIP_ROOT_TESTS=1 it prints "<test>: SKIPPED (not root)" and passes; under
/// CI=true it fails even so. The test runs as user nobody in a child of this binary.
#[test]
fn without_root_a_namespace_test_fails_unless_skipping_is_asked_for() {
    if !needs_root("without_root_a_namespace_test_fails_unless_skipping_is_asked_for") {
        return;
    }
    let test = "relevo_probe_subcommand_measures_an_outage";
    let plain = run_own_test(test, true, &[]);
    assert!(!plain.passed, "{}", plain.output);
    for needle in ["not root", "sudo -E", "RELEVO_SKIP_ROOT_TESTS=1"] {
        assert!(
            plain.output.contains(needle),
            "{needle:?}:\n{}",
            plain.output
        );
    }
    let skipped = run_own_test(test, true, &[("RELEVO_SKIP_ROOT_TESTS", "1")]);
    assert!(skipped.passed, "{}", skipped.output);
    assert!(
        skipped
            .output
            .contains(&format!("{test}: SKIPPED (not root)")),
        "{}",
        skipped.output
    );
    let ci = run_own_test(
        test,
        true,
        &[("RELEVO_SKIP_ROOT_TESTS", "1"), ("CI", "true")],
    );
    assert!(!ci.passed, "{}", ci.output);
    assert!(
        ci.output.contains("CI=true forbids skipping"),
        "{}",
        ci.output
    );
}

/// README, Running as root: RELEVO_LAB_KEEP=1 keeps a lab's work directory
/// (`/tmp/rl<tag>-<pid>-<n>`) after the test, also through later test processes (whose labs
/// sweep what dead ones left); its namespaces still go.
#[test]
fn relevo_lab_keep_keeps_the_work_dir() {
    if !needs_root("relevo_lab_keep_keeps_the_work_dir") {
        return;
    }
    // The children build labs: none of this binary's may run meanwhile.
    let _serial = serial();
    let test = "relevo_probe_subcommand_measures_an_outage";
    let runs = [
        run_own_test(test, false, &[("RELEVO_LAB_KEEP", "1")]),
        run_own_test(test, false, &[("RELEVO_LAB_KEEP", "1")]),
    ];
    let listed = netns_list();
    // Each child's only lab: tag "prb", its pid, lab number 0.
    let ids: Vec<String> = runs.iter().map(|r| format!("rlprb-{}-0", r.pid)).collect();
    let kept: Vec<bool> = ids
        .iter()
        .map(|id| Path::new("/tmp").join(id).join("probe.log").is_file())
        .collect();
    for id in &ids {
        let _ = std::fs::remove_dir_all(Path::new("/tmp").join(id));
    }
    for run in &runs {
        assert!(run.passed, "{}", run.output);
    }
    assert_eq!(kept, [true, true], "work dirs of {ids:?} kept");
    for id in &ids {
        assert!(!listed.contains(id.as_str()), "namespaces left:\n{listed}");
    }
}
