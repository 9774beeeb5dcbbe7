//! Virtual-MAC mode with real daemons in namespaces (root; fail under CI=true without it): the
//! macvlan that carries the VIP and the virtual MAC, what the client and the switch see across
//! a failover, and what is left on the node after a graceful stop.
mod netns_support;

use std::time::Duration;

use netns_support::*;
use relevo::lab::netns::Lab;

const VIP4: &str = "192.0.2.100/24";
const VIP6: &str = "2001:db8::100/64";
const FAST: Duration = Duration::from_millis(10);
const VMAC4: &str = "00:00:5e:00:01:33";
const VMAC6: &str = "00:00:5e:00:02:33";

fn vmac_instance(priority: u8, vip: &str) -> relevo::lab::relevo_node::VrrpInstance {
    let mut inst = instance(51, priority, FAST, &[vip]);
    inst.virtual_mac = true;
    inst
}

/// `ip -j link show dev NAME` in node `i`'s namespace, or None when there is no such link.
fn link_json(lab: &Lab, i: usize, name: &str) -> Option<serde_json::Value> {
    let out = lab
        .exec(
            &lab.node_ns(i),
            &["ip", "-d", "-j", "link", "show", "dev", name],
        )
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    links.as_array()?.first().cloned()
}

/// The addresses on interface `name` of node `i`.
fn addrs_on(lab: &Lab, i: usize, name: &str) -> Vec<String> {
    let text = lab
        .ip(&lab.node_ns(i), &["-j", "addr", "show", "dev", name])
        .unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    value
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["local"].as_str().map(str::to_string))
        .collect()
}

/// The MAC the client's neighbour table has for `addr` (after pinging it once).
fn client_neighbour(lab: &Lab, addr: &str) -> Option<String> {
    let ping = if addr.contains(':') { "-6" } else { "-4" };
    let _ = lab.exec(
        &lab.client_ns(),
        &["ping", ping, "-c", "1", "-W", "1", addr],
    );
    let text = lab
        .ip(&lab.client_ns(), &["-j", "neigh", "show", addr])
        .ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.as_array()?.first()?["lladdr"]
        .as_str()
        .map(str::to_string)
}

/// The bridge port the switch forwards `mac` to.
fn switch_port_of(lab: &Lab, mac: &str) -> Option<String> {
    let text = lab
        .exec(&lab.bridge_ns(), &["bridge", "-j", "fdb", "show"])
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&text.stdout).ok()?;
    value
        .as_array()?
        .iter()
        .find(|e| e["mac"].as_str() == Some(mac) && e.get("vlan").is_none())
        .and_then(|e| e["ifname"].as_str().map(str::to_string))
}

/// `/proc/sys/net/ipv4/conf/IFACE/KEY` in node `i` (procfs: `sysctl` would read the dot in
/// "vrrp4.51" as a separator).
fn arp_sysctl(lab: &Lab, i: usize, iface: &str, key: &str) -> String {
    let path = format!("/proc/sys/net/ipv4/conf/{iface}/{key}");
    let out = lab.exec(&lab.node_ns(i), &["cat", &path]).expect("cat");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What `tcpdump` saw coming in from bridge port `port` with source MAC `mac` (at most 3 frames)
/// while `during` ran, and up to 2 s in all.
fn frames_sent_from(lab: &Lab, port: &str, mac: &str, during: impl FnOnce()) -> String {
    let (ns, filter, port) = (
        lab.bridge_ns(),
        format!("ether src {mac}"),
        port.to_string(),
    );
    let capture = std::thread::spawn(move || {
        let argv = [
            "timeout", "2", "tcpdump", "-n", "-Q", "in", "-i", &port, "-c", "3", &filter,
        ];
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &ns])
            .args(argv)
            .output()
            .expect("tcpdump");
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    });
    std::thread::sleep(Duration::from_millis(300));
    during();
    capture.join().unwrap()
}

fn failover_keeps_the_clients_neighbour_entry(
    tag: &str,
    vip_text: &str,
    vmac_name: &str,
    vmac: &str,
) {
    let Some(lab) = lab(tag, 2) else {
        return;
    };
    let vip = ip(vip_text);
    let vip_addr = vip.to_string();
    let mut n1 = start(&lab, 1, vmac_instance(150, vip_text));
    let mut n2 = start(&lab, 2, vmac_instance(100, vip_text));
    let logs = [n1.log_path().to_path_buf(), n2.log_path().to_path_buf()];
    expect_master(&lab, vip, 1, Duration::from_secs(8), &logs);

    // Both nodes have the macvlan, in bridge mode, with the virtual MAC and no link-local
    // address derived from it; only the master has the VIP, on the macvlan, not on eth0.
    for i in [1, 2] {
        assert!(
            wait_for(Duration::from_secs(3), || link_json(&lab, i, vmac_name)
                .is_some()),
            "n{i} has no {vmac_name}\n{}",
            log_of(&logs[i - 1])
        );
        let link = link_json(&lab, i, vmac_name).unwrap();
        assert_eq!(link["address"].as_str(), Some(vmac), "n{i}: {link}");
        assert_eq!(link["linkinfo"]["info_kind"].as_str(), Some("macvlan"));
        assert_eq!(
            link["linkinfo"]["info_data"]["mode"].as_str(),
            Some("bridge")
        );
        assert!(
            !addrs_on(&lab, i, vmac_name)
                .iter()
                .any(|a| a.starts_with("fe80:")),
            "n{i}: a link-local address on {vmac_name}: {:?}",
            addrs_on(&lab, i, vmac_name)
        );
    }
    assert!(addrs_on(&lab, 1, vmac_name).contains(&vip_addr));
    assert!(!addrs_on(&lab, 1, "eth0").contains(&vip_addr));
    assert!(!addrs_on(&lab, 2, vmac_name).contains(&vip_addr));
    if vip.is_ipv4() {
        assert_eq!(arp_sysctl(&lab, 1, "eth0", "arp_ignore"), "1");
        assert_eq!(arp_sysctl(&lab, 1, "eth0", "arp_announce"), "2");
        assert_eq!(arp_sysctl(&lab, 1, vmac_name, "arp_ignore"), "1");
    }

    // The client resolves the VIP to the virtual MAC; the switch learned it on n1's port
    // (from n1's adverts: nothing else sends from that MAC).
    assert_eq!(client_neighbour(&lab, &vip_addr).as_deref(), Some(vmac));
    assert!(
        wait_for(Duration::from_secs(2), || switch_port_of(&lab, vmac)
            .as_deref()
            == Some("p1")),
        "switch port of {vmac}: {:?}",
        switch_port_of(&lab, vmac)
    );

    // A backup never sends from the virtual MAC, not even while its macvlan is created again
    // on a restart (a switch would send the master's traffic to it).
    let captured = frames_sent_from(&lab, "p2", vmac, || {
        n2.stop_graceful().unwrap();
        n2.restart(&lab).unwrap();
        assert!(
            wait_for(Duration::from_secs(3), || link_json(&lab, 2, vmac_name)
                .is_some()),
            "n2 recreated {vmac_name}"
        );
    });
    assert!(
        captured.contains("0 packets captured"),
        "frames from {vmac} on the backup's port:\n{captured}"
    );

    // n1 crashes: n2 takes over; the client's entry never changes, the switch moves.
    // (The node dies with its daemon: its port goes down, else its kernel, still holding
    // the VIP, could answer for it.)
    n1.crash().unwrap();
    lab.set_node_port(1, false).unwrap();
    expect_master(&lab, vip, 2, Duration::from_secs(3), &logs);
    assert!(
        wait_for(Duration::from_secs(2), || switch_port_of(&lab, vmac)
            .as_deref()
            == Some("p2")),
        "switch port of {vmac} after the failover: {:?}",
        switch_port_of(&lab, vmac)
    );
    assert_eq!(client_neighbour(&lab, &vip_addr).as_deref(), Some(vmac));
    // (The capture does see a master's frames: n2's adverts now come in on p2.)
    let captured = frames_sent_from(&lab, "p2", vmac, || {});
    assert!(captured.contains("3 packets captured"), "{captured}");
    let out = lab
        .exec(&lab.client_ns(), &["ping", "-c", "1", "-W", "1", &vip_addr])
        .unwrap();
    assert!(out.status.success(), "the client reaches the VIP on n2");

    // A graceful stop removes the macvlan and puts eth0's arp_ignore back.
    n2.stop_graceful().unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || link_json(&lab, 2, vmac_name)
            .is_none()),
        "{vmac_name} left behind on n2"
    );
    if vip.is_ipv4() {
        assert_eq!(arp_sysctl(&lab, 2, "eth0", "arp_ignore"), "0");
        assert_eq!(arp_sysctl(&lab, 2, "eth0", "arp_announce"), "0");
    }
}

#[test]
fn ipv4_virtual_mac_survives_a_failover_without_the_client_noticing_a_new_mac() {
    failover_keeps_the_clients_neighbour_entry("vmac4", VIP4, "vrrp4.51", VMAC4);
}

#[test]
fn ipv6_virtual_mac_survives_a_failover_without_the_client_noticing_a_new_mac() {
    failover_keeps_the_clients_neighbour_entry("vmac6", VIP6, "vrrp6.51", VMAC6);
}

#[test]
fn a_virtual_mac_interface_deleted_by_hand_is_created_again() {
    let Some(lab) = lab("vmacdel", 1) else {
        return;
    };
    let vip = ip(VIP4);
    let n1 = start(&lab, 1, vmac_instance(150, VIP4));
    let logs = [n1.log_path().to_path_buf()];
    expect_master(&lab, vip, 1, Duration::from_secs(8), &logs);
    lab.ip(&lab.node_ns(1), &["link", "del", "vrrp4.51"])
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || lab.node_has_address(1, vip)
            && link_json(&lab, 1, "vrrp4.51").is_some()),
        "the macvlan and the VIP are back\n{}",
        log_of(&logs[0])
    );
}

#[test]
fn an_interface_of_that_name_without_the_virtual_mac_is_left_alone() {
    let Some(lab) = lab("vmacfrn", 1) else {
        return;
    };
    // Someone else's interface already has the default name.
    lab.ip(
        &lab.node_ns(1),
        &["link", "add", "vrrp4.51", "type", "bridge"],
    )
    .unwrap();
    let foreign_mac = link_json(&lab, 1, "vrrp4.51").unwrap()["address"].clone();
    let n1 = start(&lab, 1, vmac_instance(150, VIP4));
    let status = || web_status(&n1);
    assert!(
        wait_for(Duration::from_secs(3), || status().state == "FAULT"),
        "{:?}\n{}",
        status().state,
        log_of(n1.log_path())
    );
    assert!(holds_for(ms(500), || status().state == "FAULT"));
    let link = link_json(&lab, 1, "vrrp4.51").expect("left in place");
    assert_eq!(link["address"], foreign_mac);
    assert_eq!(link["linkinfo"]["info_kind"].as_str(), Some("bridge"));
    assert!(wait_for(Duration::from_secs(2), || log_of(n1.log_path())
        .contains("is not Relevo's")));
}

#[test]
fn a_crashed_runs_virtual_mac_interface_is_replaced() {
    let Some(lab) = lab("vmaccr", 1) else {
        return;
    };
    let vip = ip(VIP4);
    let mut n1 = start(&lab, 1, vmac_instance(150, VIP4));
    let logs = [n1.log_path().to_path_buf()];
    expect_master(&lab, vip, 1, Duration::from_secs(8), &logs);
    let before = link_json(&lab, 1, "vrrp4.51").unwrap()["ifindex"].clone();
    n1.crash().unwrap();
    assert!(
        link_json(&lab, 1, "vrrp4.51").is_some(),
        "a crash leaves it"
    );
    n1.restart(&lab).unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || {
            link_json(&lab, 1, "vrrp4.51").is_some_and(|l| l["ifindex"] != before)
                && lab.node_has_address(1, vip)
        }),
        "the leftover was not replaced\n{}",
        log_of(n1.log_path())
    );
    assert!(wait_for(Duration::from_secs(2), || log_of(n1.log_path())
        .contains("replacing the virtual-MAC interface vrrp4.51")));
}
