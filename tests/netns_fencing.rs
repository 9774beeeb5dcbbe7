//! Fencing before takeover with real daemons in namespaces (root; fail under CI=true without
//! it): three nodes over two links, n1 holding the group and fenced by a `command` device whose
//! agent plays the power switch (it records its call and SIGKILLs n1's daemon). When n1 is cut
//! off, n2 (the next owner) fences it and acquires only after the fence is confirmed; a fence
//! that fails keeps the group down, is retried and reported, and the takeover follows the first
//! fence that succeeds. (IPMI devices are exercised against ipmi_sim in `fence_ipmi`.)
mod fence_support;
mod netns_support;

use std::time::Duration;

use netns_support::*;
use relevo::lab::bmc::{Chassis, LabBmc, BMC_PASSWORD};
use relevo::lab::cluster::{ClusterSpec, LabFence, CLUSTER_VIP};
use relevo::lab::netns::Lab;
use relevo::lab::relevo_node::RelevoNode;
use relevo::lab::Topology;

fn expect_owner(lab: &Lab, node: usize, timeout: Duration, nodes: &[RelevoNode]) {
    expect_sole_holder(lab, ip(CLUSTER_VIP), node, timeout, nodes);
}

/// Starts `spec` on every node, writes n1's daemon pid where its power switch (agent or BMC)
/// reads it, and waits until n1 alone holds the group.
fn start_with_n1_owning(
    lab: &TestLab,
    spec: &ClusterSpec,
    pid_file: &std::path::Path,
) -> Vec<RelevoNode> {
    let nodes = spec
        .start(lab, &relevo_bin())
        .unwrap_or_else(|e| panic!("{e:#}"));
    std::fs::write(pid_file, nodes[0].pid().unwrap().to_string()).unwrap();
    expect_owner(lab, 1, Duration::from_secs(5), &nodes);
    nodes
}

/// The `[cluster]` hooks line running one script for fencing, fenced and fence-failed, which
/// appends "EVENT NODE peer= device= action= reason=" lines to the returned file.
fn fence_event_hooks(lab: &TestLab) -> (std::path::PathBuf, String) {
    let record = lab.work_dir().join("hooks.record");
    let hook = hook_script(
        &lab.hook_dir().unwrap(),
        "fence-event",
        &format!(
            "echo \"$RELEVO_EVENT $RELEVO_NODE peer=$RELEVO_PEER device=$RELEVO_FENCE_DEVICE \
             action=$RELEVO_FENCE_ACTION reason=$RELEVO_REASON\" >> {}\n",
            record.display()
        ),
    );
    let hook = hook.display();
    let extra = format!(
        "hooks = {{ fencing = \"{hook}\", fenced = \"{hook}\", fence-failed = \"{hook}\" }}\n"
    );
    (record, extra)
}

/// A lab whose n1 is fenced by an agent that records its stdin, fails while `fail_flag`
/// exists, and otherwise SIGKILLs the pid in `pid_file` (the power goes off).
struct FencedLab {
    lab: TestLab,
    nodes: Vec<RelevoNode>,
    record: std::path::PathBuf,
    hooks_record: std::path::PathBuf,
    fail_flag: std::path::PathBuf,
}

fn fenced_lab(tag: &str, failing: bool) -> Option<FencedLab> {
    let lab = lab_with(tag, 3, Topology::TwoLinks)?;
    let dir = lab.hook_dir().unwrap();
    let record = lab.work_dir().join("agent.record");
    let pid_file = lab.work_dir().join("n1.pid");
    let fail_flag = lab.work_dir().join("fence-fails");
    if failing {
        std::fs::write(&fail_flag, "").unwrap();
    }
    let agent = hook_script(
        &dir,
        "power-switch",
        &format!(
            "opts=$(cat)\n\
             if [ -e {fail} ]; then echo \"failed $opts\" | tr '\\n' ' ' >> {rec}; echo >> {rec}; \
             echo 'BMC did not answer' >&2; exit 1; fi\n\
             echo \"off $opts\" | tr '\\n' ' ' >> {rec}; echo >> {rec}\n\
             kill -9 \"$(cat {pid})\"\nexit 0\n",
            fail = fail_flag.display(),
            rec = record.display(),
            pid = pid_file.display()
        ),
    );
    let (hooks_record, cluster_extra) = fence_event_hooks(&lab);
    let spec = ClusterSpec {
        takeover_delay: None,
        fences: vec![(1, LabFence::Agent(agent))],
        cluster_extra,
        ..ClusterSpec::default()
    };
    let nodes = start_with_n1_owning(&lab, &spec, &pid_file);
    Some(FencedLab {
        lab,
        nodes,
        record,
        hooks_record,
        fail_flag,
    })
}

#[test]
fn an_isolated_owner_is_fenced_before_the_next_node_acquires() {
    let Some(mut f) = fenced_lab("fc1", false) else {
        return;
    };
    f.lab.set_node_blocked(1, true).unwrap();
    expect_owner(&f.lab, 2, Duration::from_secs(5), &f.nodes);
    // The agent ran once, with the fence agents' stdin options, and powered n1 off.
    let runs = std::fs::read_to_string(&f.record).unwrap_or_default();
    assert_eq!(runs.lines().count(), 1, "{runs}");
    assert!(
        runs.starts_with("off ") && runs.contains("action=off"),
        "{runs}"
    );
    assert!(
        wait_for(Duration::from_secs(2), || !f.nodes[0].is_running()),
        "the fence did not power n1 off"
    );
    n2_fenced_n1_then_acquired(&f.nodes, &f.hooks_record);
}

/// n2's log has the fence started, confirmed, then the acquire; n3 did not fence (only the
/// next owner does); the fence hooks saw the device and its action.
fn n2_fenced_n1_then_acquired(nodes: &[RelevoNode], hooks_record: &std::path::Path) {
    let log = log_of(nodes[1].log_path());
    let fencing = logged_at(&log, "fencing n1 with n1-power").expect("fence started");
    let fenced = logged_at(&log, "n1 is fenced").expect("fence confirmed");
    let acquired = logged_at(&log, "released -> acquiring").expect("acquired");
    let order = |a: f64, b: f64| (b - a).rem_euclid(60.0) < 30.0;
    assert!(
        order(fencing, fenced) && order(fenced, acquired),
        "fencing {fencing}, fenced {fenced}, acquired {acquired}\n{log}"
    );
    assert!(!log_of(nodes[2].log_path()).contains("fencing n1"));
    assert!(wait_for(Duration::from_secs(2), || {
        let hooks = std::fs::read_to_string(hooks_record).unwrap_or_default();
        hooks.contains("fencing n2 peer=n1 device=n1-power action=off")
            && hooks.contains("fenced n2 peer=n1 device=n1-power action=off")
    }));
}

#[test]
fn a_failing_fence_keeps_the_group_down_is_retried_and_then_the_takeover_follows() {
    let Some(f) = fenced_lab("fc2", true) else {
        return;
    };
    f.lab.set_node_blocked(1, true).unwrap();
    // n1 is cut off (its VIP unreachable); n2 must not acquire while the fence fails.
    assert!(
        wait_for(Duration::from_secs(4), || {
            let runs = std::fs::read_to_string(&f.record).unwrap_or_default();
            runs.lines().filter(|l| l.starts_with("failed")).count() >= 2
        }),
        "the failed fence was not retried: {:?}",
        std::fs::read_to_string(&f.record)
    );
    assert!(
        !f.lab.node_has_address(2, ip(CLUSTER_VIP)) && !f.lab.node_has_address(3, ip(CLUSTER_VIP)),
        "a node acquired without a confirmed fence\n{}",
        logs(&f.nodes)
    );
    // `relevo status` says where n1's fence stands and why it failed.
    let status = f.nodes[1].status().unwrap().cluster.unwrap();
    let n1 = status.members.iter().find(|m| m.name == "n1").unwrap();
    assert!(n1.fence.is_some(), "{n1:?}");
    assert!(
        n1.fence_error
            .as_deref()
            .is_some_and(|e| e.contains("BMC did not answer")),
        "{n1:?}"
    );
    let log = log_of(f.nodes[1].log_path());
    assert!(log.contains("failed (attempt 1)"), "{log}");
    assert!(
        log.contains("BMC did not answer"),
        "the agent's error is reported: {log}"
    );
    let hooks = std::fs::read_to_string(&f.hooks_record).unwrap_or_default();
    assert!(
        hooks.contains("fence-failed n2 peer=n1 device=n1-power action=off reason="),
        "{hooks}"
    );
    // The BMC answers again: the next attempt powers n1 off and n2 takes over.
    std::fs::remove_file(&f.fail_flag).unwrap();
    expect_owner(&f.lab, 2, Duration::from_secs(40), &f.nodes);
    let runs = std::fs::read_to_string(&f.record).unwrap_or_default();
    assert!(
        runs.lines().last().is_some_and(|l| l.starts_with("off ")),
        "{runs}"
    );
}

#[test]
fn two_nodes_cut_apart_the_one_with_the_shorter_fence_delay_survives() {
    let Some(lab) = lab_with("fc3", 2, Topology::TwoLinks) else {
        return;
    };
    let dir = lab.hook_dir().unwrap();
    let record = lab.work_dir().join("agents.record");
    // Each node's device is an agent that powers that node off (SIGKILL to its daemon).
    let agent = |i: usize| {
        let pid_file = lab.work_dir().join(format!("n{i}.pid"));
        let path = hook_script(
            &dir,
            &format!("power-n{i}"),
            &format!(
                "cat > /dev/null\necho \"off n{i}\" >> {rec}\nkill -9 \"$(cat {pid})\"\nexit 0\n",
                rec = record.display(),
                pid = pid_file.display()
            ),
        );
        (i, LabFence::Agent(path))
    };
    let spec = ClusterSpec {
        takeover_delay: None,
        fences: vec![agent(1), agent(2)],
        // n1, preferred, fences at once; n2 waits 3 s.
        fence_delays: vec![(2, Duration::from_secs(3))],
        ..ClusterSpec::default()
    };
    let mut nodes = spec
        .start(&lab, &relevo_bin())
        .unwrap_or_else(|e| panic!("{e:#}"));
    for (i, node) in nodes.iter().enumerate() {
        let pid_file = lab.work_dir().join(format!("n{}.pid", i + 1));
        std::fs::write(pid_file, node.pid().unwrap().to_string()).unwrap();
    }
    expect_owner(&lab, 1, Duration::from_secs(5), &nodes);
    // Cut apart, both alive: each keeps quorum alone (both can fence) and fences the other.
    lab.set_node_blocked(1, true).unwrap();
    assert!(
        wait_for(Duration::from_secs(3), || !nodes[1].is_running()),
        "n1 did not fence n2\n{}",
        logs(&nodes)
    );
    // Past n2's fence delay: n2 never powered n1 off, and n1 still holds the group.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        nodes[0].is_running(),
        "n1 was powered off too\n{}",
        logs(&nodes)
    );
    let runs = std::fs::read_to_string(&record).unwrap_or_default();
    assert_eq!(runs.lines().collect::<Vec<_>>(), ["off n2"], "{runs}");
    assert!(lab.node_has_address(1, ip(CLUSTER_VIP)));
    assert!(wait_for(Duration::from_secs(2), || log_of(
        nodes[0].log_path()
    )
    .contains("fencing n2 with n2-power")));
}

#[test]
fn a_fence_that_hangs_is_cut_at_its_timeout_while_heartbeats_and_timers_stay_on_time() {
    let Some(lab) = lab_with("fc4", 3, Topology::TwoLinks) else {
        return;
    };
    let dir = lab.hook_dir().unwrap();
    // An agent that never answers: the device's 5 s timeout must end it.
    let agent = hook_script(&dir, "hangs", "cat > /dev/null\nsleep 60\n");
    let spec = ClusterSpec {
        takeover_delay: None,
        fences: vec![(1, LabFence::Agent(agent))],
        ..ClusterSpec::default()
    };
    let nodes = spec
        .start(&lab, &relevo_bin())
        .unwrap_or_else(|e| panic!("{e:#}"));
    expect_owner(&lab, 1, Duration::from_secs(5), &nodes);
    lab.set_node_blocked(1, true).unwrap();
    assert!(wait_for(Duration::from_secs(3), || log_of(
        nodes[1].log_path()
    )
    .contains("fencing n1 with n1-power")));
    // While the agent hangs, n2's loop goes on: n3 keeps hearing it on both links, and n2's
    // timers fire on time.
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        let n3 = nodes[2].status().unwrap().cluster.unwrap();
        let n2 = n3.members.iter().find(|m| m.name == "n2").unwrap();
        assert!(n2.alive && n2.links == ["up", "up"], "{n2:?}");
    }
    let stats = nodes[1].status().unwrap().loop_stats;
    assert!(
        stats.timer_lateness_p99_us < 20_000,
        "n2's timers were late while the fence hung: {stats:?}"
    );
    // Cut at its timeout: a fence-failed that says so, nothing acquired, the next attempt
    // queued.
    assert!(
        wait_for(Duration::from_secs(6), || log_of(nodes[1].log_path())
            .contains("failed (attempt 1)")),
        "{}",
        logs(&nodes)
    );
    assert!(
        log_of(nodes[1].log_path()).contains("hung: killed after 5s"),
        "{}",
        logs(&nodes)
    );
    assert!(!lab.node_has_address(2, ip(CLUSTER_VIP)) && !lab.node_has_address(3, ip(CLUSTER_VIP)));
}

/// A three-node lab whose n1 is fenced over IPMI by a BMC (ipmi_sim, answering as `chassis`)
/// in the client namespace on 192.0.2.200:623, reachable from every node on the first link;
/// powering it off SIGKILLs n1's daemon and downs both of its links. The password file holds
/// `password`; fence hooks append to `hooks.record`.
struct IpmiLab {
    lab: TestLab,
    nodes: Vec<RelevoNode>,
    bmc: LabBmc,
    hooks_record: std::path::PathBuf,
}

fn ipmi_lab(tag: &str, password: &str, chassis: Chassis, timeout: Duration) -> Option<IpmiLab> {
    if !fence_support::needs_ipmi_sim() {
        return None;
    }
    let lab = lab_with(tag, 3, Topology::TwoLinks)?;
    let bmc = LabBmc::start_for_node(&lab, 1, chassis).unwrap_or_else(|e| panic!("{e:#}"));
    let pid_file = bmc.pid_file(&lab);
    let device = bmc
        .fence_device(&lab, password, timeout)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (hooks_record, cluster_extra) = fence_event_hooks(&lab);
    let spec = ClusterSpec {
        takeover_delay: None,
        fences: vec![(1, device)],
        cluster_extra,
        ..ClusterSpec::default()
    };
    let nodes = start_with_n1_owning(&lab, &spec, &pid_file);
    Some(IpmiLab {
        lab,
        nodes,
        bmc,
        hooks_record,
    })
}

#[test]
fn an_isolated_owner_is_powered_off_through_its_bmc_over_ipmi_before_the_next_node_acquires() {
    let Some(mut f) = ipmi_lab(
        "fc5",
        BMC_PASSWORD,
        Chassis::Normal,
        Duration::from_secs(10),
    ) else {
        return;
    };
    f.lab.set_node_blocked(1, true).unwrap();
    expect_owner(&f.lab, 2, Duration::from_secs(10), &f.nodes);
    // The BMC powered n1 off (once), which killed its daemon.
    assert_eq!(f.bmc.power(), "0", "{}", f.bmc.events());
    assert_eq!(
        f.bmc.events().matches("POWER OFF").count(),
        1,
        "{}",
        f.bmc.events()
    );
    assert!(
        wait_for(Duration::from_secs(2), || !f.nodes[0].is_running()),
        "the power-off did not stop n1's daemon"
    );
    n2_fenced_n1_then_acquired(&f.nodes, &f.hooks_record);
}

/// n1 is cut off and its BMC does not power it off (`why` is in n2's `fence-failed`): nobody
/// acquires, the fence is retried, and status and the hooks say why.
fn a_fence_that_fails_over_ipmi_keeps_the_group_down(f: IpmiLab, why: &str) {
    f.lab.set_node_blocked(1, true).unwrap();
    assert!(
        wait_for(Duration::from_secs(15), || log_of(f.nodes[1].log_path())
            .contains("failed (attempt 2)")),
        "the failed fence was not retried\n{}",
        logs(&f.nodes)
    );
    assert!(
        !f.lab.node_has_address(2, ip(CLUSTER_VIP)) && !f.lab.node_has_address(3, ip(CLUSTER_VIP)),
        "a node acquired without a confirmed fence\n{}",
        logs(&f.nodes)
    );
    assert_eq!(f.bmc.power(), "1");
    let status = f.nodes[1].status().unwrap().cluster.unwrap();
    let n1 = status.members.iter().find(|m| m.name == "n1").unwrap();
    assert!(
        n1.fence_error.as_deref().is_some_and(|e| e.contains(why)),
        "{n1:?}"
    );
    let hooks = std::fs::read_to_string(&f.hooks_record).unwrap_or_default();
    assert!(
        hooks
            .lines()
            .any(|l| l.starts_with("fence-failed n2 peer=n1 device=n1-power") && l.contains(why)),
        "{hooks}"
    );
}

#[test]
fn a_bmc_that_refuses_the_password_keeps_the_group_down_and_says_so() {
    let Some(f) = ipmi_lab(
        "fc6",
        "wrong-password",
        Chassis::Normal,
        Duration::from_secs(5),
    ) else {
        return;
    };
    a_fence_that_fails_over_ipmi_keeps_the_group_down(f, "authentication failed");
}

#[test]
fn a_bmc_that_never_reports_power_off_keeps_the_group_down_and_says_so() {
    let Some(f) = ipmi_lab(
        "fc7",
        BMC_PASSWORD,
        Chassis::IgnoresOff,
        Duration::from_secs(2),
    ) else {
        return;
    };
    a_fence_that_fails_over_ipmi_keeps_the_group_down(f, "never reported power off");
}
