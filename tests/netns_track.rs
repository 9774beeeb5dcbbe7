//! Tracking with real `relevo run` daemons in network namespaces (root; see netns_support):
//! a failing track script lowers the master's priority and the VIP moves to the backup, and
//! back once the script recovers (preempt); a weight-0 interface track puts the instance in
//! FAULT; a failing group track makes its node release the group.
mod netns_support;

use std::path::Path;
use std::time::Duration;

use netns_support::*;
use relevo::lab::cluster::{ClusterSpec, CLUSTER_VIP};
use relevo::lab::netns::Lab;
use relevo::lab::relevo_node::RelevoNode;
use relevo::lab::Topology;

const VIP: &str = "192.0.2.100/24";
const INTERVAL: Duration = Duration::from_millis(100);

/// A track script in the lab's hook dir that fails while `flag` exists.
fn flag_check(lab: &Lab, flag: &Path) -> std::path::PathBuf {
    let dir = lab.hook_dir().expect("the lab's hook dir");
    hook_script(&dir, "check", &format!("[ ! -e {} ]\n", flag.display()))
}

/// The start of a node config: the `[[track]]` tables after the instance.
fn start_with(
    lab: &Lab,
    node: usize,
    instance: relevo::lab::relevo_node::VrrpInstance,
    tracks: &str,
) -> RelevoNode {
    let mut config = RelevoNode::config_for(lab, node, instance);
    config.extra_toml = tracks.to_string();
    RelevoNode::start(lab, node, &relevo_bin(), &config)
        .unwrap_or_else(|e| panic!("starting relevo on n{node}: {e:#}"))
}

#[test]
fn a_failing_track_script_moves_the_vip_and_its_recovery_brings_it_back() {
    let Some(lab) = lab("track1", 2) else { return };
    let vip = ip(VIP);
    let flag = lab.work_dir().join("web-broken");
    let check = flag_check(&lab, &flag);
    let mut i1 = instance(61, 150, INTERVAL, &[VIP]);
    i1.track = vec!["web-check".into()];
    let tracks = format!(
        "\n[[track]]\nname = \"web-check\"\nscript = [\"{}\"]\ninterval = \"100ms\"\n\
         timeout = \"1s\"\nrise = 2\nfall = 3\nweight = -60\n",
        check.display()
    );
    let n1 = start_with(&lab, 1, i1, &tracks);
    let n2 = start(&lab, 2, instance(61, 100, INTERVAL, &[VIP]));
    let nodes = [n1, n2];
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(5), &nodes);
    let status = wait_status(&nodes[0], Duration::from_secs(2), "track up", |s| {
        s.tracks.first().is_some_and(|t| t.state == "up")
    });
    assert_eq!(status.effective_priority, 150);
    assert_eq!(status.tracks[0].applied, 0);

    std::fs::write(&flag, "").unwrap();
    expect_sole_holder(&lab, vip, 2, Duration::from_secs(3), &nodes);
    let status = wait_status(&nodes[0], Duration::from_secs(1), "priority 90", |s| {
        s.effective_priority == 90
    });
    assert_eq!(status.priority, 150);
    assert_eq!(status.state, "BACKUP");
    let track = &status.tracks[0];
    assert_eq!(
        (
            track.name.as_str(),
            track.state.as_str(),
            track.applied,
            track.detail.as_str()
        ),
        ("web-check", "down", -60, "exit 1")
    );
    let log = log_of(nodes[0].log_path());
    assert!(
        log.contains("track web-check failed 3 times: exit 1"),
        "{log}"
    );
    assert!(
        log.contains("effective priority 150 -> 90 (tracks: web-check -60)"),
        "{log}"
    );
    let table = nodes[0].status_table().unwrap();
    assert!(
        table.contains("effective priority 90 (configured 150; web-check -60)"),
        "{table}"
    );
    assert!(
        table.contains("track web-check (script, weight -60): down, -60; exit 1"),
        "{table}"
    );

    std::fs::remove_file(&flag).unwrap();
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(3), &nodes);
    let log = log_of(nodes[0].log_path());
    assert!(
        log.contains("track web-check succeeded 2 times: exit 0"),
        "{log}"
    );
    assert_eq!(web_status(&nodes[0]).effective_priority, 150);
}

#[test]
fn a_weight_zero_interface_track_puts_the_instance_in_fault() {
    let Some(lab) = lab("track2", 2) else { return };
    let vip = ip(VIP);
    let ns = lab.node_ns(1);
    // A second interface in n1's namespace (a veth pair: no dummy module needed).
    let pair = [
        "link", "add", "trk0", "type", "veth", "peer", "name", "trk1",
    ];
    lab.ip(&ns, &pair).unwrap();
    lab.ip(&ns, &["link", "set", "trk1", "up"]).unwrap();
    lab.ip(&ns, &["link", "set", "trk0", "up"]).unwrap();
    let mut i1 = instance(62, 150, INTERVAL, &[VIP]);
    i1.track = vec!["uplink".into()];
    let tracks = "\n[[track]]\nname = \"uplink\"\ninterface = \"trk0\"\n";
    let n1 = start_with(&lab, 1, i1, tracks);
    let n2 = start(&lab, 2, instance(62, 100, INTERVAL, &[VIP]));
    let nodes = [n1, n2];
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(5), &nodes);

    lab.ip(&ns, &["link", "set", "trk0", "down"]).unwrap();
    expect_sole_holder(&lab, vip, 2, Duration::from_secs(3), &nodes);
    let status = wait_status(&nodes[0], Duration::from_secs(1), "FAULT", |s| {
        s.state == "FAULT"
    });
    assert_eq!(status.reason, "track-failed");
    let track = &status.tracks[0];
    assert!(track.fault && track.state == "down", "{track:?}");
    assert_eq!(track.detail, "interface trk0 down");
    let log = log_of(nodes[0].log_path());
    assert!(log.contains("track uplink: interface trk0 down"), "{log}");
    assert!(
        log.contains("MASTER -> FAULT (a tracked check failed)"),
        "{log}"
    );

    lab.ip(&ns, &["link", "set", "trk0", "up"]).unwrap();
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(5), &nodes);
}

#[test]
fn a_failing_group_track_makes_its_node_release_the_group() {
    let Some(lab) = lab_with("track3", 3, Topology::TwoLinks) else {
        return;
    };
    let vip = ip(CLUSTER_VIP);
    let flags = lab.work_dir().join("flags");
    std::fs::create_dir(&flags).unwrap();
    let dir = lab.hook_dir().expect("the lab's hook dir");
    // The same config on every node: each node's script looks for its own flag.
    let check = hook_script(
        &dir,
        "db-check",
        &format!("[ ! -e {}/fail-\"$RELEVO_NODE\" ]\n", flags.display()),
    );
    let spec = ClusterSpec {
        vrrp_instance: false,
        group_track: vec!["db-check".into()],
        extra_toml: format!(
            "\n[[track]]\nname = \"db-check\"\nscript = \"{}\"\ninterval = \"100ms\"\nfall = 2\n",
            check.display()
        ),
        ..ClusterSpec::default()
    };
    let nodes = spec
        .start(&lab, &relevo_bin())
        .unwrap_or_else(|e| panic!("{e:#}"));
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(5), &nodes);

    std::fs::write(flags.join("fail-n1"), "").unwrap();
    expect_sole_holder(&lab, vip, 2, Duration::from_secs(3), &nodes);
    let cluster = nodes[0].status().unwrap().cluster.unwrap();
    assert_eq!(cluster.groups[0].failing_tracks, ["db-check"]);
    let table = nodes[0].status_table().unwrap();
    assert!(
        table.contains("failing tracks: db-check (not eligible here)"),
        "{table}"
    );

    std::fs::remove_file(flags.join("fail-n1")).unwrap();
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(5), &nodes);
    assert!(nodes[0].status().unwrap().cluster.unwrap().groups[0]
        .failing_tracks
        .is_empty());
}

#[test]
fn a_file_track_raises_a_backup_above_its_master_and_it_preempts() {
    let Some(lab) = lab("track4", 2) else { return };
    let vip = ip(VIP);
    let delta = lab.work_dir().join("prio-delta");
    std::fs::write(&delta, "0\n").unwrap();
    let mut i2 = instance(64, 100, INTERVAL, &[VIP]);
    i2.track = vec!["boost".into()];
    let tracks = format!(
        "\n[[track]]\nname = \"boost\"\nfile = \"{}\"\ninterval = \"100ms\"\n",
        delta.display()
    );
    let n1 = start(&lab, 1, instance(64, 150, INTERVAL, &[VIP]));
    let n2 = start_with(&lab, 2, i2, &tracks);
    let nodes = [n1, n2];
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(5), &nodes);

    // The file's integer itself (default weight 1) is added: 100 + 60 = 160 > 150.
    std::fs::write(&delta, "60\n").unwrap();
    expect_sole_holder(&lab, vip, 2, Duration::from_secs(3), &nodes);
    let status = web_status(&nodes[1]);
    assert_eq!(status.effective_priority, 160);
    let track = &status.tracks[0];
    assert_eq!(
        (track.state.as_str(), track.applied),
        ("60", 60),
        "{track:?}"
    );
    // Unreadable: counts as 0, the master (150) preempts again.
    std::fs::write(&delta, "sixty\n").unwrap();
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(3), &nodes);
    let log = log_of(nodes[1].log_path());
    assert!(log.contains("does not hold an integer"), "{log}");
    assert_eq!(web_status(&nodes[1]).effective_priority, 100);
}

#[test]
fn a_track_script_past_its_timeout_is_killed_and_fails() {
    let Some(lab) = lab("track5", 1) else { return };
    let dir = lab.hook_dir().expect("the lab's hook dir");
    let hang = hook_script(&dir, "hang", "exec sleep 30\n");
    let mut i1 = instance(65, 150, INTERVAL, &[VIP]);
    i1.track = vec!["slow".into()];
    let tracks = format!(
        "\n[[track]]\nname = \"slow\"\nscript = \"{}\"\ninterval = \"1s\"\ntimeout = \"200ms\"\n",
        hang.display()
    );
    let n1 = start_with(&lab, 1, i1, &tracks);
    let status = wait_status(&n1, Duration::from_secs(3), "FAULT", |s| s.state == "FAULT");
    assert_eq!(status.reason, "track-failed");
    assert_eq!(status.tracks[0].detail, "timed out");
    assert!(lab.holders(ip(VIP)).is_empty());
}
