//! Cluster mode with real daemons in namespaces (root; fail under CI=true without it): three
//! nodes with two heartbeat links each (`eth0`, shared with the client, and `eth1`), one
//! resource group with a VIP. One link cut moves nothing; a node isolated on both links loses
//! the group to the next node and releases it itself; the owner's client-facing link going
//! down moves the group while heartbeats go on over the other link; a failing start hook moves
//! the group on; forged, replayed and foreign heartbeats change nothing and are counted; and
//! of two nodes with a ping node, the one still on the network keeps the group.
mod netns_support;

use std::net::UdpSocket;
use std::time::Duration;

use netns_support::*;
use relevo::lab::cluster::{
    ClusterSpec, CLUSTER_ID, CLUSTER_KEY, CLUSTER_PORT, CLUSTER_VIP, CLUSTER_VIP_WWW,
};
use relevo::lab::netns::{in_netns, Lab};
use relevo::lab::relevo_node::RelevoNode;
use relevo::lab::Topology;
use relevo::wire::heartbeat::{HeartbeatKey, HeartbeatRepr};

const VIP: &str = CLUSTER_VIP;
const VIP_WEB: &str = CLUSTER_VIP_WWW;
const KEY: &str = CLUSTER_KEY;
const PORT: u16 = CLUSTER_PORT;

fn start_cluster(lab: &Lab, spec: ClusterSpec) -> Vec<RelevoNode> {
    spec.start(lab, &relevo_bin())
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn cluster_lab(tag: &str) -> Option<TestLab> {
    lab_with(tag, 3, Topology::TwoLinks)
}

#[test]
fn two_nodes_with_a_ping_node_the_one_still_on_the_network_keeps_the_group() {
    let Some(lab) = lab_with("cl6", 2, Topology::TwoLinks) else {
        return;
    };
    // The client answers pings: it is the tiebreaker.
    let ping = format!("ping_nodes = [\"{}\"]\n", lab.client_ipv4());
    let nodes = start_cluster(
        &lab,
        ClusterSpec {
            cluster_extra: ping,
            ..ClusterSpec::default()
        },
    );
    expect_owner(&lab, 1, Duration::from_secs(5), &nodes);
    // n1 is cut off from everything, the ping node included: it loses quorum and releases;
    // n2 still reaches the ping node, keeps quorum alone and takes the group.
    lab.set_node_blocked(1, true).unwrap();
    expect_owner(&lab, 2, Duration::from_secs(3), &nodes);
    assert!(!cluster_status(&nodes[0]).quorate);
    assert!(cluster_status(&nodes[1]).quorate);
    lab.set_node_blocked(1, false).unwrap();
    expect_owner(&lab, 1, Duration::from_secs(3), &nodes);
}

/// Waits until exactly `node` carries the group's VIP.
fn expect_owner(lab: &Lab, node: usize, timeout: Duration, nodes: &[RelevoNode]) {
    expect_sole_holder(lab, ip(VIP), node, timeout, nodes);
}

fn cluster_status(node: &RelevoNode) -> relevo::daemon::control::ClusterStatus {
    node.status()
        .expect("status")
        .cluster
        .expect("a cluster section in the status")
}

#[test]
fn one_heartbeat_link_cut_moves_nothing_and_is_reported() {
    let Some(lab) = cluster_lab("cl1") else {
        return;
    };
    let nodes = start_cluster(&lab, ClusterSpec::default());
    expect_owner(&lab, 1, Duration::from_secs(5), &nodes);
    lab.set_node_port2(1, false).unwrap();
    assert!(
        holds_for(ms(600), || lab.holders(ip(VIP)) == [1]),
        "the group moved on a single link cut\n{}",
        logs(&nodes)
    );
    let status = cluster_status(&nodes[1]);
    let n1 = status.members.iter().find(|m| m.name == "n1").unwrap();
    assert!(n1.alive, "{status:?}");
    assert_eq!(n1.links, ["up", "down"], "{status:?}");
    assert!(status.quorate);
    assert!(wait_for(Duration::from_secs(2), || log_of(
        nodes[1].log_path()
    )
    .contains("heartbeat link 1 to n1 is down")));
}

#[test]
fn an_isolated_owner_loses_the_group_and_releases_it() {
    let Some(lab) = cluster_lab("cl2") else {
        return;
    };
    let nodes = start_cluster(&lab, ClusterSpec::default());
    expect_owner(&lab, 1, Duration::from_secs(5), &nodes);
    lab.set_node_blocked(1, true).unwrap();
    // n2 takes over after deadtime + takeover_delay; n1, without quorum, releases (policy
    // stop): the VIP ends up on n2 alone.
    expect_owner(&lab, 2, Duration::from_secs(3), &nodes);
    assert!(
        wait_for(Duration::from_secs(1), || !cluster_status(&nodes[0])
            .quorate),
        "the isolated node still thinks it is quorate"
    );
    assert_eq!(cluster_status(&nodes[1]).groups[0].state, "held");
    // The takeover waited for the isolated owner to notice (takeover_delay 150 ms after the
    // deadtime), visible in n2's log as more than 150 ms between the two lines.
    // (The log is written by its own thread: wait for both lines.)
    assert!(wait_for(Duration::from_secs(2), || {
        let log = log_of(nodes[1].log_path());
        log.contains("cluster node n1 is gone") && log.contains("released -> acquiring")
    }));
    let log = log_of(nodes[1].log_path());
    let gone = logged_at(&log, "cluster node n1 is gone").expect("n1 declared gone");
    let acquired = logged_at(&log, "released -> acquiring").expect("n2 acquired");
    let waited = (acquired - gone).rem_euclid(60.0); // seconds within the minute
    assert!(
        waited >= 0.14,
        "n2 acquired {waited:.3} s after n1 was gone"
    );
    // Healed: n1 is preferred (auto_failback) and gets it back in a handover.
    lab.set_node_blocked(1, false).unwrap();
    expect_owner(&lab, 1, Duration::from_secs(3), &nodes);
}

#[test]
fn with_the_default_takeover_delay_an_isolated_owner_releases_first_and_cluster_hooks_run() {
    let Some(lab) = cluster_lab("cl9") else {
        return;
    };
    let dir = lab.hook_dir().unwrap();
    let record = lab.work_dir().join("cluster.record");
    let hook = hook_script(
        &dir,
        "cluster-event",
        &format!(
            "echo \"$RELEVO_EVENT $RELEVO_NODE peer=$RELEVO_PEER votes=$RELEVO_VOTES/$RELEVO_VOTES_NEEDED\" >> {}\n",
            record.display()
        ),
    );
    let hook = hook.display();
    let spec = ClusterSpec {
        takeover_delay: None, // a VIP-only group: no wait after deadtime
        cluster_extra: format!(
            "hooks = {{ node-dead = \"{hook}\", quorum-lost = \"{hook}\", quorum-regained = \"{hook}\" }}\n"
        ),
        ..ClusterSpec::default()
    };
    let nodes = start_cluster(&lab, spec);
    expect_owner(&lab, 1, Duration::from_secs(5), &nodes);
    lab.set_node_blocked(1, true).unwrap();
    expect_owner(&lab, 2, Duration::from_secs(3), &nodes);
    // n1 lost its lease (deadtime - 2 keepalives = 60 ms) before n2 saw it dead (100 ms): its
    // release is logged before n2's acquire, so the VIP was never on both.
    let released_and_acquired = || {
        let n1 = log_of(nodes[0].log_path());
        let n2 = log_of(nodes[1].log_path());
        logged_at(&n1, "releasing -> released").zip(logged_at(&n2, "released -> acquiring"))
    };
    assert!(wait_for(Duration::from_secs(2), || released_and_acquired().is_some()));
    let (released, acquired) = released_and_acquired().unwrap();
    let gap = (acquired - released).rem_euclid(60.0);
    assert!(
        gap > 0.0 && gap < 1.0,
        "n1 released at {released:.6} s, n2 acquired at {acquired:.6} s\n{}",
        logs(&nodes)
    );
    assert!(wait_for(Duration::from_secs(2), || log_of(
        nodes[0].log_path()
    )
    .contains("no quorum heard for")));
    // Cluster hooks: the survivors report n1 dead, n1 reports its lost quorum.
    let expected = [
        "node-dead n2 peer=n1",
        "node-dead n3 peer=n1",
        "node-dead n1 peer=n2",
        "quorum-lost n1 peer= votes=1/2",
    ];
    let record_has = |lines: &[&str]| {
        let runs = std::fs::read_to_string(&record).unwrap_or_default();
        lines.iter().all(|l| runs.lines().any(|r| r.starts_with(l)))
    };
    assert!(
        wait_for(Duration::from_secs(3), || record_has(&expected)),
        "cluster hooks ran: {:?}",
        std::fs::read_to_string(&record)
    );
    // Healed: n1 regains quorum, the hook says with how many votes.
    lab.set_node_blocked(1, false).unwrap();
    expect_owner(&lab, 1, Duration::from_secs(3), &nodes);
    assert!(
        wait_for(Duration::from_secs(3), || record_has(&[
            "quorum-regained n1 peer= votes=3/2"
        ])),
        "cluster hooks ran: {:?}",
        std::fs::read_to_string(&record)
    );
}

#[test]
fn a_graceful_stop_hands_the_group_over_and_the_vip_goes_only_once_the_successor_has_it() {
    let Some(lab) = cluster_lab("cl10") else {
        return;
    };
    let mut nodes = start_cluster(&lab, ClusterSpec::default());
    expect_owner(&lab, 1, Duration::from_secs(5), &nodes);
    nodes[0].stop_graceful().unwrap();
    expect_owner(&lab, 2, Duration::from_secs(3), &nodes);
    // n1 released (no resource to stop), kept the VIP address until n2 reported the group
    // acquiring, then removed it and said goodbye: n1's removal is logged after n2's acquire.
    let n1 = log_of(nodes[0].log_path());
    let n2 = log_of(nodes[1].log_path());
    let removed = logged_at(&n1, "VIPs removed").expect("n1 removed its VIPs");
    let acquired = logged_at(&n2, "released -> acquiring").expect("n2 acquired");
    let after = (removed - acquired).rem_euclid(60.0);
    assert!(
        after < 1.0,
        "n1 removed the VIP at {removed:.6} s, before n2 acquired at {acquired:.6} s\n{}",
        logs(&nodes)
    );
    assert!(logged_at(&n1, "releasing -> released").is_some_and(|r| r <= removed));
}

#[test]
fn the_owners_client_link_down_moves_the_group_while_heartbeats_go_on() {
    let Some(lab) = cluster_lab("cl3") else {
        return;
    };
    let nodes = start_cluster(&lab, ClusterSpec::default());
    expect_owner(&lab, 1, Duration::from_secs(5), &nodes);
    lab.set_node_link(1, false).unwrap();
    // n1's eth0 is down: its VIP is gone with the link, n2 holds the group, and n1 is still
    // alive to the others over eth1.
    assert!(
        wait_for(Duration::from_secs(3), || lab.node_has_address(2, ip(VIP))),
        "n2 did not take the group\n{}",
        logs(&nodes)
    );
    let status = cluster_status(&nodes[1]);
    let n1 = status.members.iter().find(|m| m.name == "n1").unwrap();
    assert!(n1.alive, "n1 is alive over its second link: {status:?}");
    assert_eq!(cluster_status(&nodes[0]).groups[0].state, "released");
}

#[test]
fn a_failing_start_hook_moves_the_group_to_the_next_node() {
    let Some(lab) = cluster_lab("cl4") else {
        return;
    };
    let dir = lab.hook_dir().unwrap();
    // Every run is recorded (event, group, resource, node, VIPs), then n1's start fails.
    let record = lab.work_dir().join("app.record");
    let hook = hook_script(
        &dir,
        "app",
        &format!(
            "echo \"$RELEVO_EVENT $RELEVO_GROUP $RELEVO_RESOURCE $RELEVO_NODE $RELEVO_VIPS\" >> {}\n\
             [ \"$1\" = start ] && [ \"$RELEVO_NODE\" = n1 ] && exit 1\nexit 0\n",
            record.display()
        ),
    );
    let nodes = start_cluster(
        &lab,
        ClusterSpec {
            resource: Some(hook),
            ..ClusterSpec::default()
        },
    );
    expect_owner(&lab, 2, Duration::from_secs(5), &nodes);
    let n1 = cluster_status(&nodes[0]);
    assert_eq!(n1.groups[0].state, "failed", "{n1:?}");
    assert_eq!(n1.groups[0].failed_starts, 1);
    assert_eq!(cluster_status(&nodes[1]).groups[0].state, "held");
    // relevo-hooks(7): a failed start is not stopped; the next node's start runs with the
    // group's environment.
    let runs = std::fs::read_to_string(&record).unwrap_or_default();
    let runs: Vec<&str> = runs.lines().collect();
    assert_eq!(
        runs,
        [
            "acquire db app n1 192.0.2.150/24",
            "acquire db app n2 192.0.2.150/24"
        ]
    );
}

/// Sends `frame` to n2's heartbeat port on link 0 from n1's address (another source port).
fn send_as_n1(lab: &Lab, frame: &[u8]) {
    let from = lab.node_ipv4(1);
    let to = (lab.node_ipv4(2), PORT);
    let frame = frame.to_vec();
    in_netns(&lab.node_ns(1), move || {
        let socket = UdpSocket::bind((from, 0))?;
        socket.send_to(&frame, to)?;
        Ok(())
    })
    .unwrap();
}

fn frame(key: &str, cluster_id: u8, incarnation: u64) -> Vec<u8> {
    let repr = HeartbeatRepr {
        cluster_id,
        node_id: 1,
        incarnation,
        sequence: 1,
        group_epoch: 1,
        leaving: false,
        peers: Vec::new(),
        groups: Vec::new(),
    };
    let key = HeartbeatKey::new(1, key.as_bytes()).unwrap();
    let mut buf = vec![0; repr.buffer_len()];
    let len = repr.emit(&key, &mut buf).unwrap();
    buf.truncate(len);
    buf
}

#[test]
fn forged_replayed_and_foreign_heartbeats_change_nothing_and_are_counted() {
    let Some(lab) = cluster_lab("cl5") else {
        return;
    };
    let nodes = start_cluster(&lab, ClusterSpec::default());
    expect_owner(&lab, 1, Duration::from_secs(5), &nodes);
    // Signed with another key; from another cluster; an old incarnation of n1 (a replay); and
    // a leaving flag would have been worse: none of them may touch n2's view of n1.
    send_as_n1(&lab, &frame("another-key-0123456789", CLUSTER_ID, u64::MAX));
    send_as_n1(&lab, &frame(KEY, CLUSTER_ID + 1, u64::MAX));
    send_as_n1(&lab, &frame(KEY, CLUSTER_ID, 1));
    let counted = wait_for(Duration::from_secs(2), || {
        let dropped = cluster_status(&nodes[1]).dropped;
        ["bad_tag", "wrong_cluster", "replay"]
            .iter()
            .all(|k| dropped.get(*k).copied().unwrap_or(0) >= 1)
    });
    assert!(counted, "{:?}", cluster_status(&nodes[1]).dropped);
    assert!(
        holds_for(ms(300), || lab.holders(ip(VIP)) == [1]),
        "the group moved\n{}",
        logs(&nodes)
    );
    assert!(cluster_status(&nodes[1]).members.iter().all(|m| m.alive));
}

#[test]
fn without_failback_the_group_stays_on_the_node_that_took_it() {
    let Some(lab) = cluster_lab("cl7") else {
        return;
    };
    let opts = ClusterSpec {
        no_failback: true,
        ..ClusterSpec::default()
    };
    let nodes = start_cluster(&lab, opts);
    expect_owner(&lab, 1, Duration::from_secs(5), &nodes);
    lab.set_node_blocked(1, true).unwrap();
    expect_owner(&lab, 2, Duration::from_secs(3), &nodes);
    lab.set_node_blocked(1, false).unwrap();
    assert!(
        wait_for(Duration::from_secs(2), || cluster_status(&nodes[0]).quorate),
        "n1 did not rejoin"
    );
    assert!(
        holds_for(ms(600), || lab.holders(ip(VIP)) == [2]),
        "the group moved back without auto_failback\n{}",
        logs(&nodes)
    );
}

#[test]
fn active_active_a_survivor_holds_both_groups() {
    let Some(lab) = lab_with("cl8", 2, Topology::TwoLinks) else {
        return;
    };
    // Two nodes, a ping node (the client), db preferring n1 and www preferring n2.
    let ping = format!("ping_nodes = [\"{}\"]\n", lab.client_ipv4());
    let opts = ClusterSpec {
        active_active: true,
        cluster_extra: ping,
        ..ClusterSpec::default()
    };
    let nodes = start_cluster(&lab, opts);
    let web = ip(VIP_WEB);
    expect_owner(&lab, 1, Duration::from_secs(5), &nodes);
    assert!(
        wait_for(Duration::from_secs(5), || lab.holders(web) == [2]),
        "www (preferring n2) is on {:?}",
        lab.holders(web)
    );
    lab.set_node_blocked(1, true).unwrap();
    expect_owner(&lab, 2, Duration::from_secs(3), &nodes);
    assert_eq!(lab.holders(web), [2], "the survivor holds both groups");
    // n1 back: each group goes home.
    lab.set_node_blocked(1, false).unwrap();
    expect_owner(&lab, 1, Duration::from_secs(3), &nodes);
    assert_eq!(lab.holders(web), [2]);
}
