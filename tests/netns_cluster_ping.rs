//! IPv6 ping nodes with real daemons in namespaces (root; fail under CI=true without it): two
//! nodes with two heartbeat links each and the client, on the first link's network, as the
//! ping node at its IPv6 address (2001:db8::200, documentation range). Cut off from everything,
//! n1 loses quorum and the group, while n2 keeps quorum alone only because the IPv6 ping node
//! answers its echo requests; the same with a dead IPv4 ping node listed first (both ICMP
//! sockets in the loop, any answering ping node counts).
mod netns_support;

use std::time::Duration;

use netns_support::*;
use relevo::lab::cluster::{ClusterSpec, CLUSTER_VIP};
use relevo::lab::netns::Lab;
use relevo::lab::relevo_node::RelevoNode;
use relevo::lab::Topology;

/// An address on the client's network nobody has: an IPv4 ping node that never answers.
const DEAD_IPV4_PING_NODE: &str = "192.0.2.99";

/// Waits until exactly `node` carries the group's VIP.
fn expect_owner(lab: &Lab, node: usize, timeout: Duration, nodes: &[RelevoNode]) {
    expect_sole_holder(lab, ip(CLUSTER_VIP), node, timeout, nodes);
}

fn quorate(node: &RelevoNode) -> bool {
    node.status()
        .expect("status")
        .cluster
        .expect("a cluster section in the status")
        .quorate
}

/// A counter of the client's ICMPv6 statistics (`/proc/net/snmp6` in its namespace).
fn client_icmp6_counter(lab: &Lab, name: &str) -> u64 {
    let out = lab
        .exec(&lab.client_ns(), &["cat", "/proc/net/snmp6"])
        .expect("reading the client's /proc/net/snmp6");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|line| line.split_once(char::is_whitespace))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the client's snmp6:\n{text}"))
}

/// Two nodes whose ping nodes are `ping_nodes` (TOML strings) plus the client's IPv6 address;
/// n1, cut off, loses the group to n2, which keeps quorum through the IPv6 ping node alone.
fn the_node_still_on_the_network_keeps_the_group(tag: &str, ping_nodes: &[&str]) {
    let Some(lab) = lab_with(tag, 2, Topology::TwoLinks) else {
        return;
    };
    let client = lab.client_ipv6();
    assert_eq!(
        client.segments()[..2],
        [0x2001, 0xdb8],
        "documentation range"
    );
    let mut listed: Vec<String> = ping_nodes.iter().map(|p| format!("\"{p}\"")).collect();
    listed.push(format!("\"{client}\""));
    let ping = format!("ping_nodes = [{}]\n", listed.join(", "));
    let echoes_before = client_icmp6_counter(&lab, "Icmp6InEchos");
    let nodes = ClusterSpec {
        cluster_extra: ping,
        ..ClusterSpec::default()
    }
    .start(&lab, &relevo_bin())
    .unwrap_or_else(|e| panic!("{e:#}"));
    expect_owner(&lab, 1, Duration::from_secs(5), &nodes);
    // Both daemons matched the client's ICMPv6 echo replies (the only ping node that can
    // answer), and the client's kernel took their echo requests (checksum and all).
    for node in &nodes {
        assert!(
            wait_for(Duration::from_secs(2), || log_of(node.log_path())
                .contains("a ping node answers")),
            "n{}: the IPv6 ping node never counted as answering\n{}",
            node.node(),
            logs(&nodes)
        );
    }
    assert!(
        client_icmp6_counter(&lab, "Icmp6InEchos") > echoes_before,
        "the IPv6 ping node got no echo request"
    );
    assert!(client_icmp6_counter(&lab, "Icmp6OutEchoReplies") > 0);
    // n1 is cut off from everything, the ping node included: it loses quorum and releases;
    // n2 still reaches the IPv6 ping node, keeps quorum alone and takes the group.
    lab.set_node_blocked(1, true).unwrap();
    expect_owner(&lab, 2, Duration::from_secs(3), &nodes);
    assert!(
        wait_for(Duration::from_secs(1), || !quorate(&nodes[0])),
        "the cut-off node is still quorate\n{}",
        logs(&nodes)
    );
    assert!(
        holds_for(ms(500), || quorate(&nodes[1])),
        "the node still on the network lost quorum\n{}",
        logs(&nodes)
    );
    lab.set_node_blocked(1, false).unwrap();
    expect_owner(&lab, 1, Duration::from_secs(3), &nodes);
}

#[test]
fn two_nodes_with_an_ipv6_ping_node_the_one_still_on_the_network_keeps_the_group() {
    the_node_still_on_the_network_keeps_the_group("pgsa", &[]);
}

#[test]
fn a_dead_ipv4_ping_node_beside_an_answering_ipv6_one_still_gives_quorum() {
    the_node_still_on_the_network_keeps_the_group("pgsb", &[DEAD_IPV4_PING_NODE]);
}
