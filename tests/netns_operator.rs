//! Operator actions with real daemons in namespaces (root; fail under CI=true without it):
//! maintenance on a VRRP master hands the VIP over without losing the client's 1 ms probes,
//! stays on across a restart and gives the VIP back when turned off, while `relevo events
//! --follow` sees every transition and action in order; in a cluster, a switchover moves a
//! group (refused towards the wrong node), `takeover` brings it back, and is refused while
//! the node has no quorum.
mod netns_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use netns_support::*;
use relevo::daemon::events::Event;
use relevo::lab::cluster::{ClusterSpec, CLUSTER_VIP};
use relevo::lab::probe::ProbeHandle;
use relevo::lab::{monotonic_ns, Topology};

const VIP: &str = "192.0.2.100/24";

/// Every event line the follower printed within `wait`, parsed.
fn drain(rx: &Receiver<String>, wait: Duration) -> Vec<Event> {
    let deadline = Instant::now() + wait;
    let mut events = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => events.push(
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not an event line: {line:?}: {e}")),
            ),
            Err(_) => break,
        }
    }
    events
}

#[test]
fn maintenance_on_a_master_hands_over_without_loss_persists_and_follow_sees_it_in_order() {
    let Some(lab) = lab("op1", 2) else { return };
    let vip = ip(VIP);
    let mut nodes = vec![
        start(&lab, 1, instance(71, 150, ms(10), &[VIP])),
        start(&lab, 2, instance(71, 100, ms(10), &[VIP])),
    ];
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(5), &nodes);
    // A follower from the start: it gets the history, then everything new.
    let socket = lab.work_dir().join("n1.sock");
    let mut follower = Command::new(relevo_bin())
        .args(["events", "--follow", "--json", "--socket"])
        .arg(&socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let probe = ProbeHandle::spawn(&lab, &relevo_bin(), vip, ms(1)).unwrap();
    probe.wait_ready(Duration::from_secs(5)).unwrap();

    // Maintenance on the master: the VIP moves with at most one lost probe.
    let t = monotonic_ns();
    let said = nodes[0].cli(&["maintenance", "on"]).unwrap();
    assert!(said.contains("instance web: resigned"), "{said}");
    expect_sole_holder(&lab, vip, 2, Duration::from_secs(3), &nodes);
    let outage = probe
        .wait_outage_after(t, ms(300), Duration::from_secs(5))
        .unwrap();
    let lost = outage.map_or(0, |o| o.lost);
    assert!(lost <= 1, "maintenance lost {lost} probes: {outage:?}");
    let status = nodes[0].status().unwrap();
    assert!(status.operator.maintenance, "{:?}", status.operator);
    let table = nodes[0].status_table().unwrap();
    assert!(table.contains("operator: maintenance ON"), "{table}");
    // It persists: restarted, n1 (priority 150, preempting) stays out.
    nodes[0].restart(&lab).unwrap();
    std::thread::sleep(ms(300));
    assert!(
        holds_for(Duration::from_secs(1), || lab.holders(vip) == [2]),
        "n1 took the VIP back while in maintenance\n{}",
        logs(&nodes)
    );
    assert!(nodes[0].status().unwrap().operator.maintenance);
    // Off: it preempts again.
    let t = monotonic_ns();
    nodes[0].cli(&["maintenance", "off"]).unwrap();
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(3), &nodes);
    let back = probe
        .wait_outage_after(t, ms(300), Duration::from_secs(5))
        .unwrap();
    assert!(back.map_or(0, |o| o.lost) <= 1, "{back:?}");

    // The follower saw, in order and without gaps: the first run's MASTER, the action (with
    // root's uid) and the resignation; then the stream ended with that daemon.
    let events = drain(&rx, Duration::from_secs(2));
    let _ = follower.wait();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1) && seqs.first() == Some(&1),
        "{seqs:?}"
    );
    let position = |f: &dyn Fn(&Event) -> bool| {
        events
            .iter()
            .position(f)
            .unwrap_or_else(|| panic!("missing from {events:#?}"))
    };
    let master = position(&|e| e.kind == "vrrp" && e.to.as_deref() == Some("MASTER"));
    let action = position(&|e| {
        e.kind == "operator" && e.code.as_deref() == Some("maintenance") && e.uid == Some(0)
    });
    let resigned = position(&|e| {
        e.kind == "vrrp"
            && e.from.as_deref() == Some("MASTER")
            && e.code.as_deref() == Some("held-out")
    });
    assert!(master < action && action < resigned, "{events:#?}");
    // The restarted daemon's history has the maintenance off and the preemption.
    let history = nodes[0].cli(&["events"]).unwrap();
    assert!(history.contains("maintenance off"), "{history}");
    assert!(history.contains("BACKUP -> MASTER"), "{history}");
}

#[test]
fn a_switchover_moves_a_group_takeover_brings_it_back_and_is_refused_without_quorum() {
    let Some(lab) = lab_with("op2", 3, Topology::TwoLinks) else {
        return;
    };
    let vip = ip(CLUSTER_VIP);
    let spec = ClusterSpec {
        vrrp_instance: false,
        ..ClusterSpec::default()
    };
    let nodes = spec
        .start(&lab, &relevo_bin())
        .unwrap_or_else(|e| panic!("{e:#}"));
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(5), &nodes);
    // The group would go to n2, the next in its list: --to n3 is refused and nothing moves.
    let refused = nodes[0]
        .cli(&["switchover", "db", "--to", "n3"])
        .unwrap_err();
    assert!(
        format!("{refused:#}").contains("would go to n2"),
        "{refused:#}"
    );
    assert!(lab.holders(vip) == [1]);
    let probe = ProbeHandle::spawn(&lab, &relevo_bin(), vip, ms(1)).unwrap();
    probe.wait_ready(Duration::from_secs(5)).unwrap();
    let t = monotonic_ns();
    let said = nodes[0].cli(&["switchover", "db", "--to", "n2"]).unwrap();
    assert!(said.contains("group db: released"), "{said}");
    expect_sole_holder(&lab, vip, 2, Duration::from_secs(5), &nodes);
    let outage = probe
        .wait_outage_after(t, ms(300), Duration::from_secs(5))
        .unwrap();
    assert!(outage.map_or(0, |o| o.lost) <= 1, "{outage:?}");
    // n1 stays out although it is preferred (auto_failback).
    assert!(holds_for(Duration::from_millis(500), || lab.holders(vip) == [2]));
    assert_eq!(nodes[0].status().unwrap().operator.held_out, ["db"]);
    // Cut off, n1 has no quorum: takeover is refused (unless forced).
    lab.set_node_blocked(1, true).unwrap();
    assert!(wait_for(Duration::from_secs(3), || nodes[0]
        .status()
        .is_ok_and(|s| s.cluster.is_some_and(|c| !c.quorate))));
    let refused = nodes[0].cli(&["takeover"]).unwrap_err();
    assert!(format!("{refused:#}").contains("no quorum"), "{refused:#}");
    assert_eq!(nodes[0].status().unwrap().operator.held_out, ["db"]);
    lab.set_node_blocked(1, false).unwrap();
    assert!(wait_for(Duration::from_secs(3), || nodes[0]
        .status()
        .is_ok_and(|s| s.cluster.is_some_and(|c| c.quorate))));
    // Healthy again: takeover lets n1 compete, and the group fails back to it.
    let said = nodes[0].cli(&["takeover"]).unwrap();
    assert!(said.contains("competes again for db"), "{said}");
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(5), &nodes);
    let events = nodes[0].cli(&["events"]).unwrap();
    assert!(events.contains("switchover db"), "{events}");
    assert!(events.contains("quorum lost"), "{events}");
}

/// Node i's config with instances web (VIP .100) and db (VIP .101) at the given priorities,
/// plus `extra` (VIP .102) when asked; web and extra run the recording hooks of
/// [`reload_hooks`] for every event.
fn two_instance_config(
    lab: &relevo::lab::Lab,
    i: usize,
    web: u8,
    db: u8,
    extra: bool,
) -> relevo::lab::relevo_node::NodeConfig {
    use relevo::lab::relevo_node::{Hooks, RelevoNode, VrrpInstance};
    let (web_hook, extra_hook) = reload_hooks(lab, i);
    let mut first = VrrpInstance::new(71, web, ms(10), &[VIP]);
    first.hooks = Hooks::all(&web_hook);
    let mut config = RelevoNode::config_for(lab, i, first);
    let mut second = VrrpInstance::new(72, db, ms(10), &["192.0.2.101/24"]);
    second.name = "db".to_string();
    config.vrrp.push(second);
    if extra {
        let mut third = VrrpInstance::new(73, 150, ms(10), &["192.0.2.102/24"]);
        third.name = "extra".to_string();
        third.hooks = Hooks::all(&extra_hook);
        config.vrrp.push(third);
    }
    config
}

/// Node i's hooks for web and extra, appending to `n<i>-web.record` / `n<i>-extra.record`.
fn reload_hooks(lab: &relevo::lab::Lab, i: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let hook = |name: &str| {
        let out = lab.work_dir().join(format!("n{i}-{name}.record"));
        recording_hook(lab, &format!("n{i}-{name}"), &out, "")
    };
    (hook("web"), hook("extra"))
}

/// What node i's hooks of instance `name` recorded, one line per run.
fn hook_runs(lab: &relevo::lab::Lab, i: usize, name: &str) -> String {
    std::fs::read_to_string(lab.work_dir().join(format!("n{i}-{name}.record"))).unwrap_or_default()
}

#[test]
fn a_reload_applies_a_diff_without_touching_the_rest_and_a_bad_one_is_refused_at_its_line() {
    let Some(lab) = lab("op3", 2) else { return };
    let (web, db, extra) = (ip(VIP), ip("192.0.2.101/24"), ip("192.0.2.102/24"));
    let start_with = |i: usize, config: &relevo::lab::relevo_node::NodeConfig| {
        relevo::lab::relevo_node::RelevoNode::start(&lab, i, &relevo_bin(), config)
            .unwrap_or_else(|e| panic!("{e:#}"))
    };
    let nodes = vec![
        start_with(1, &two_instance_config(&lab, 1, 150, 150, false)),
        start_with(2, &two_instance_config(&lab, 2, 100, 100, false)),
    ];
    expect_sole_holder(&lab, web, 1, Duration::from_secs(5), &nodes);
    expect_sole_holder(&lab, db, 1, Duration::from_secs(5), &nodes);
    let n1 = &nodes[0];
    let write = |config: &relevo::lab::relevo_node::NodeConfig| {
        std::fs::write(n1.config_path(), config.to_toml()).unwrap()
    };
    let probe = ProbeHandle::spawn(&lab, &relevo_bin(), web, ms(1)).unwrap();
    probe.wait_ready(Duration::from_secs(5)).unwrap();
    let seq_before = last_seq(n1);
    assert!(wait_for(Duration::from_secs(2), || hook_runs(
        &lab, 1, "web"
    )
    .contains("master MASTER")));
    let web_runs = hook_runs(&lab, 1, "web");

    // db's priority drops below n2's: --check says so and applies nothing; the reload moves
    // db to n2 (which preempts) and leaves web alone: no probe lost, no event for web.
    write(&two_instance_config(&lab, 1, 150, 90, false));
    let t = monotonic_ns();
    let check = n1.cli(&["reload", "--check"]).unwrap();
    assert!(
        check.contains("instance db: priority updated in place"),
        "{check}"
    );
    assert!(check.contains("unchanged: web"), "{check}");
    assert!(holds_for(ms(300), || lab.holders(db) == [1]));
    n1.cli(&["reload"]).unwrap();
    expect_sole_holder(&lab, db, 2, Duration::from_secs(3), &nodes);
    assert_eq!(lab.holders(web), [1]);
    let outage = probe
        .wait_outage_after(t, ms(300), Duration::from_secs(5))
        .unwrap();
    assert!(outage.is_none(), "the reload cost web's clients {outage:?}");
    let since = events_after(n1, seq_before);
    assert!(
        !since.iter().any(|e| e.name.as_deref() == Some("web")
            || e.name.as_deref().is_some_and(|n| n.starts_with("web/"))),
        "web was touched: {since:#?}"
    );
    std::thread::sleep(ms(200));
    assert_eq!(hook_runs(&lab, 1, "web"), web_runs, "a hook of web ran");

    // A broken file: refused with its line and column, the running config kept.
    std::fs::write(
        n1.config_path(),
        two_instance_config(&lab, 1, 150, 90, false)
            .to_toml()
            .replace("vrid = 72", "vrid = 720"),
    )
    .unwrap();
    let refused = n1.cli(&["reload"]).unwrap_err();
    let text = format!("{refused:#}");
    assert!(text.contains("the running configuration is kept"), "{text}");
    let line = std::fs::read_to_string(n1.config_path())
        .unwrap()
        .lines()
        .position(|l| l.contains("vrid = 720"))
        .unwrap()
        + 1;
    assert!(text.contains(&format!("n1.toml:{line}:")), "{text}");
    assert_eq!(lab.holders(web), [1]);
    assert_eq!(n1.status().unwrap().instances.len(), 2);

    // An instance added starts; removed, it releases its VIP.
    write(&two_instance_config(&lab, 1, 150, 90, true));
    n1.cli(&["reload"]).unwrap();
    expect_sole_holder(&lab, extra, 1, Duration::from_secs(3), &nodes);
    assert!(wait_for(Duration::from_secs(2), || hook_runs(
        &lab, 1, "extra"
    )
    .contains("master MASTER")));
    write(&two_instance_config(&lab, 1, 150, 90, false));
    n1.cli(&["reload"]).unwrap();
    assert!(
        wait_for(Duration::from_secs(3), || lab.holders(extra).is_empty()),
        "{}",
        logs(&nodes)
    );
    // Removed, it released gracefully: its stop hook ran.
    assert!(
        wait_for(Duration::from_secs(2), || hook_runs(&lab, 1, "extra")
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("stop "))),
        "{}",
        hook_runs(&lab, 1, "extra")
    );
    let names: Vec<String> = n1
        .status()
        .unwrap()
        .instances
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["web", "db"]);
    // A structural change is refused as a whole.
    let mut moved = two_instance_config(&lab, 1, 150, 90, false);
    moved.vrrp[1].vrid = 74;
    write(&moved);
    let refused = n1.cli(&["reload"]).unwrap_err();
    assert!(
        format!("{refused:#}").contains("instance db: vrid changed"),
        "{refused:#}"
    );
}

fn last_seq(node: &relevo::lab::relevo_node::RelevoNode) -> u64 {
    events_after(node, 0).last().map_or(0, |e| e.seq)
}

/// The node's event history after `seq`.
fn events_after(node: &relevo::lab::relevo_node::RelevoNode, seq: u64) -> Vec<Event> {
    node.cli(&["events", "--json"])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Event>(l).unwrap())
        .filter(|e| e.seq > seq)
        .collect()
}
