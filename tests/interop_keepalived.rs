//! Interop with keepalived in network namespaces (root and keepalived: see netns_support for
//! what happens without them): for VRRPv3 IPv4, VRRPv3 IPv6, VRRPv2 IPv4 (no auth and simple-text auth), each
//! direction — keepalived master with a Relevo backup, and Relevo master with a keepalived
//! backup — through a failover and the return; the same in virtual-MAC mode (Relevo's
//! `virtual_mac` with keepalived's `use_vmac`, IPv4 and IPv6, and with plain keepalived); and
//! the v3-over-IPv4 checksum policy.
mod netns_support;

use std::time::Duration;

use netns_support::*;
use relevo::lab::keepalived::{KeepalivedConfig, KeepalivedNode};
use relevo::lab::relevo_node::VrrpInstance;

struct Case {
    tag: &'static str,
    vrid: u8,
    version: u8,
    interval: Duration,
    vip: &'static str,
    /// VRRPv2 simple-text password on both sides.
    auth_pass: Option<&'static str>,
    /// Relevo in virtual-MAC mode (`virtual_mac = true`).
    relevo_vmac: bool,
    /// keepalived in virtual-MAC mode (`use_vmac`).
    keepalived_vmac: bool,
}

impl Case {
    fn relevo(&self, priority: u8) -> VrrpInstance {
        let mut i = instance(self.vrid, priority, self.interval, &[self.vip]);
        i.version = self.version;
        i.auth_pass = self.auth_pass.map(str::to_string);
        i.virtual_mac = self.relevo_vmac;
        i
    }

    fn keepalived(&self, priority: u8) -> KeepalivedConfig {
        let mut k = KeepalivedConfig::new(self.vrid, priority, self.interval, &[self.vip]);
        k.version = self.version;
        if self.keepalived_vmac {
            k.extra_lines.push("use_vmac".to_string());
        }
        if let Some(pass) = self.auth_pass {
            k.extra_lines.push(format!(
                "authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}"
            ));
        }
        k
    }

    /// Asserts that node `i`, master now, holds the VIP where its MAC mode puts it: on
    /// Relevo's macvlan (`vrrp4.VRID` / `vrrp6.VRID`), keepalived's (`vrrp.VRID`), or eth0.
    fn assert_vip_placement(&self, lab: &relevo::lab::Lab, i: usize, relevo: bool) {
        let vip = ip(self.vip);
        let ifname = match (
            relevo,
            relevo && self.relevo_vmac || !relevo && self.keepalived_vmac,
        ) {
            (_, false) => "eth0".to_string(),
            (true, true) => format!("vrrp{}.{}", if vip.is_ipv4() { 4 } else { 6 }, self.vrid),
            (false, true) => format!("vrrp.{}", self.vrid),
        };
        assert!(
            wait_for(Duration::from_secs(2), || vip_on(lab, i, &ifname, vip)),
            "{vip} is not on {ifname} of node {i}"
        );
    }

    /// Generous bound for a takeover: Master_Down_Interval is under 4 intervals.
    fn takeover(&self) -> Duration {
        self.interval * 5 + Duration::from_secs(2)
    }
}

/// keepalived (priority 150, node 1) is master; Relevo (100, node 2) stays backup, takes over
/// when keepalived stops, and hands the VIP back when keepalived returns.
fn keepalived_master_relevo_backup(case: &Case) {
    let tag = format!("{}k", case.tag);
    if !needs_root_and_keepalived(&tag) {
        return;
    }
    let Some(lab) = lab(&tag, 2) else { return };
    let vip = ip(case.vip);
    let mut kad = KeepalivedNode::start(&lab, 1, &case.keepalived(150)).unwrap();
    let relevo = start(&lab, 2, case.relevo(100));
    let logs = [kad.log_path(), relevo.log_path().to_path_buf()];
    expect_master(&lab, vip, 1, case.takeover(), &logs);
    assert!(
        holds_for(case.interval * 4, || lab.masters(vip) == [1]),
        "Relevo must stay backup behind keepalived: holders {:?}\n{}",
        lab.masters(vip),
        log_of(relevo.log_path())
    );
    case.assert_vip_placement(&lab, 1, false);
    kad.stop_graceful().unwrap();
    expect_master(&lab, vip, 2, case.takeover(), &logs);
    case.assert_vip_placement(&lab, 2, true);
    kad.restart(&lab).unwrap();
    expect_master(&lab, vip, 1, case.takeover() * 2, &logs);
    // The notify script runs after keepalived added the VIP: poll for it.
    kad.wait_state("MASTER", case.takeover()).unwrap();
}

/// Relevo (150, node 1) is master; keepalived (100, node 2) stays BACKUP, takes over when
/// Relevo crashes, and goes back to BACKUP when Relevo returns and preempts.
fn relevo_master_keepalived_backup(case: &Case) {
    let tag = format!("{}r", case.tag);
    if !needs_root_and_keepalived(&tag) {
        return;
    }
    let Some(lab) = lab(&tag, 2) else { return };
    let vip = ip(case.vip);
    let mut relevo = start(&lab, 1, case.relevo(150));
    let kad = KeepalivedNode::start(&lab, 2, &case.keepalived(100)).unwrap();
    let logs = [relevo.log_path().to_path_buf(), kad.log_path()];
    expect_master(&lab, vip, 1, case.takeover(), &logs);
    case.assert_vip_placement(&lab, 1, true);
    kad.wait_state("BACKUP", case.takeover()).unwrap();
    assert!(
        holds_for(case.interval * 4, || lab.masters(vip) == [1]),
        "keepalived must stay backup behind Relevo: {}",
        log_of(&kad.log_path())
    );
    relevo.crash().unwrap();
    lab.set_node_port(1, false).unwrap();
    assert!(
        wait_for(case.takeover(), || lab.node_has_address(2, vip)),
        "keepalived did not take over: {}",
        log_of(&kad.log_path())
    );
    case.assert_vip_placement(&lab, 2, false);
    relevo.restart(&lab).unwrap();
    lab.set_node_port(1, true).unwrap();
    expect_master(&lab, vip, 1, case.takeover() * 2, &logs);
    kad.wait_state("BACKUP", case.takeover()).unwrap();
}

const V3_IPV4: Case = Case {
    tag: "k3v4",
    vrid: 71,
    version: 3,
    interval: Duration::from_millis(100),
    vip: "192.0.2.171/24",
    auth_pass: None,
    relevo_vmac: false,
    keepalived_vmac: false,
};
const V3_IPV6: Case = Case {
    tag: "k3v6",
    vrid: 72,
    version: 3,
    interval: Duration::from_millis(100),
    vip: "2001:db8::172/64",
    auth_pass: None,
    relevo_vmac: false,
    keepalived_vmac: false,
};
const V2_IPV4: Case = Case {
    tag: "k2v4",
    vrid: 73,
    version: 2,
    interval: Duration::from_secs(1),
    vip: "192.0.2.173/24",
    auth_pass: None,
    relevo_vmac: false,
    keepalived_vmac: false,
};
const V2_IPV4_AUTH: Case = Case {
    tag: "k2au",
    vrid: 74,
    version: 2,
    interval: Duration::from_secs(1),
    vip: "192.0.2.174/24",
    auth_pass: Some("s3cret"),
    relevo_vmac: false,
    keepalived_vmac: false,
};
const V3_IPV4_VMAC: Case = Case {
    tag: "kvv4",
    vrid: 75,
    version: 3,
    interval: Duration::from_millis(100),
    vip: "192.0.2.175/24",
    auth_pass: None,
    relevo_vmac: true,
    keepalived_vmac: true,
};
const V3_IPV6_VMAC: Case = Case {
    tag: "kvv6",
    vrid: 76,
    version: 3,
    interval: Duration::from_millis(100),
    vip: "2001:db8::176/64",
    auth_pass: None,
    relevo_vmac: true,
    keepalived_vmac: true,
};
/// Relevo with a virtual MAC, keepalived with its own (the two modes mix on one segment).
const V3_IPV4_VMAC_MIXED: Case = Case {
    tag: "kvmx",
    vrid: 77,
    version: 3,
    interval: Duration::from_millis(100),
    vip: "192.0.2.177/24",
    auth_pass: None,
    relevo_vmac: true,
    keepalived_vmac: false,
};

#[test]
fn v3_ipv4_keepalived_master_relevo_backup() {
    keepalived_master_relevo_backup(&V3_IPV4);
}

#[test]
fn v3_ipv4_relevo_master_keepalived_backup() {
    relevo_master_keepalived_backup(&V3_IPV4);
}

#[test]
fn v3_ipv6_keepalived_master_relevo_backup() {
    keepalived_master_relevo_backup(&V3_IPV6);
}

#[test]
fn v3_ipv6_relevo_master_keepalived_backup() {
    relevo_master_keepalived_backup(&V3_IPV6);
}

#[test]
fn v2_ipv4_keepalived_master_relevo_backup() {
    keepalived_master_relevo_backup(&V2_IPV4);
}

#[test]
fn v2_ipv4_relevo_master_keepalived_backup() {
    relevo_master_keepalived_backup(&V2_IPV4);
}

#[test]
fn v3_ipv4_virtual_mac_both_sides_both_directions() {
    keepalived_master_relevo_backup(&V3_IPV4_VMAC);
    relevo_master_keepalived_backup(&V3_IPV4_VMAC);
}

#[test]
fn v3_ipv6_virtual_mac_both_sides_both_directions() {
    keepalived_master_relevo_backup(&V3_IPV6_VMAC);
    relevo_master_keepalived_backup(&V3_IPV6_VMAC);
}

#[test]
fn v3_ipv4_relevo_virtual_mac_with_plain_keepalived_both_directions() {
    keepalived_master_relevo_backup(&V3_IPV4_VMAC_MIXED);
    relevo_master_keepalived_backup(&V3_IPV4_VMAC_MIXED);
}

#[test]
fn v2_ipv4_simple_text_auth_both_directions() {
    keepalived_master_relevo_backup(&V2_IPV4_AUTH);
    relevo_master_keepalived_backup(&V2_IPV4_AUTH);
}

/// keepalived 2.2.7 always uses the RFC 5798 pseudo-header over IPv4. A Relevo instance set
/// to "no-pseudo-header" must therefore reject keepalived's adverts as bad checksums (and
/// keepalived Relevo's), while two Relevo nodes in that mode interoperate.
#[test]
fn v3_ipv4_checksum_policy_is_applied_both_ways() {
    if !needs_root_and_keepalived("k3ck") {
        return;
    }
    let Some(lab) = lab("k3ck", 3) else { return };
    let vip = ip("192.0.2.175/24");
    let mut kad = KeepalivedNode::start(
        &lab,
        1,
        &KeepalivedConfig::new(75, 150, Duration::from_millis(100), &["192.0.2.175/24"]),
    )
    .unwrap();
    let mut i2 = instance(75, 100, ms(100), &["192.0.2.175/24"]);
    i2.v3_ipv4_checksum = Some("no-pseudo-header".into());
    let mut n2 = start(&lab, 2, i2.clone());
    let mut i3 = i2.clone();
    i3.priority = 50;
    let n3 = start(&lab, 3, i3);
    // keepalived's adverts fail our checksum: n2 becomes master next to keepalived, n3 follows n2.
    assert!(
        wait_for(Duration::from_secs(3), || lab.masters(vip) == [1, 2]),
        "holders {:?}",
        lab.masters(vip)
    );
    assert!(
        holds_for(ms(600), || !lab.node_has_address(3, vip)),
        "n3 must follow n2 (same policy)"
    );
    // Not merely silent: n3 accepts n2's adverts and names it as the master.
    let n2_address = lab.node_ipv4(2).to_string();
    wait_status(&n3, Duration::from_secs(3), "n3 BACKUP following n2", |s| {
        s.state == "BACKUP" && s.master.as_deref() == Some(n2_address.as_str())
    });
    n2.stop_graceful().unwrap();
    let log = log_of(n2.log_path());
    assert!(log.contains("bad_checksum="), "{log}");
    assert!(
        wait_for(Duration::from_secs(3), || log_of(&kad.log_path())
            .contains("Invalid VRRPv3 checksum")),
        "{}",
        log_of(&kad.log_path())
    );
    kad.stop_graceful().unwrap();
    drop(n3);
}
