//! Interop with FRR's vrrpd (root and FRR: fail without them unless RELEVO_SKIP_FRR_TESTS=1,
//! never under CI=true). FRR always uses the virtual MAC: it sends adverts from it and keeps
//! the VIPs on macvlans that it sets protodown while backup (`tests/interop/frr/run_frr.sh`,
//! from the shared interop recipes). Relevo runs in virtual-MAC mode beside it, IPv4 and IPv6
//! on one VRID, each side master in turn, through a failover and the return.
mod netns_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use netns_support::*;
use relevo::lab::netns::Lab;
use relevo::lab::relevo_node::{NodeConfig, RelevoNode, VrrpInstance};

const VRID: u8 = 78;
const VIP4: &str = "192.0.2.178/24";
const VIP6: &str = "2001:db8::178/64";
const INTERVAL: Duration = Duration::from_millis(100);
const TAKEOVER: Duration = Duration::from_secs(3);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/frr/run_frr.sh")
}

/// FRR's vrrpd (and zebra) in node `i`'s namespace, both families on [`VRID`].
struct Frr {
    ns: String,
    rundir: PathBuf,
}

impl Frr {
    fn start(lab: &Lab, i: usize, priority: u8) -> Frr {
        let ns = lab.node_ns(i);
        let rundir = lab.work_dir().join(format!("frr-n{i}"));
        // FRR leaves the ARP settings of the parent to the operator (Relevo sets them itself):
        // without them the parent answers ARP for the VIP with its own MAC.
        for (key, value) in [("arp_ignore", "1"), ("arp_announce", "2")] {
            let setting = format!("net.ipv4.conf.eth0.{key}={value}");
            lab.exec(&ns, &["sysctl", "-qw", &setting]).unwrap();
        }
        let out = Command::new(script())
            .args(["-n", &ns, "-i", "eth0", "-v", &VRID.to_string()])
            .args([
                "-p",
                &priority.to_string(),
                "-a",
                "100",
                "-4",
                VIP4,
                "-6",
                VIP6,
            ])
            .arg("-r")
            .arg(&rundir)
            .output()
            .expect("running run_frr.sh");
        assert!(
            out.status.success(),
            "run_frr.sh failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Frr { ns, rundir }
    }

    /// vrrpd's state per family ("Master", "Backup", "Initialize"), from `show vrrp json`.
    fn states(&self) -> Option<(String, String)> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "vtysh", "--vty_socket"])
            .arg(&self.rundir)
            .args(["-c", "show vrrp json"])
            .output()
            .ok()?;
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let router = value.as_array()?.iter().find(|r| r["vrid"] == VRID)?;
        let state = |family: &str| router[family]["status"].as_str().map(str::to_string);
        Some((state("v4")?, state("v6")?))
    }

    fn wait_states(&self, wanted: &str, timeout: Duration) {
        let ok = wait_for(timeout, || {
            self.states()
                .is_some_and(|(v4, v6)| v4 == wanted && v6 == wanted)
        });
        assert!(
            ok,
            "FRR is not {wanted} in both families: {:?}\n{}",
            self.states(),
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.rundir.join("vrrpd.log")).unwrap_or_default()
    }

    /// Stops vrrpd (priority-0 adverts) and zebra, deletes FRR's macvlans.
    fn stop(&self) {
        let _ = Command::new(script()).arg("-k").arg(&self.rundir).output();
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Relevo in virtual-MAC mode: one instance per family on [`VRID`].
fn relevo_config(lab: &Lab, i: usize, priority: u8) -> NodeConfig {
    let instance = |name: &str, vip: &str| {
        let mut inst = VrrpInstance::new(VRID, priority, INTERVAL, &[vip]);
        inst.name = name.to_string();
        inst.virtual_mac = true;
        inst
    };
    let mut config = RelevoNode::config_for(lab, i, instance("web4", VIP4));
    config.vrrp.push(instance("web6", VIP6));
    config
}

fn relevo_states(node: &RelevoNode) -> Vec<String> {
    ["web4", "web6"]
        .iter()
        .map(|name| {
            node.instance_status(name)
                .map(|s| s.state)
                .unwrap_or_default()
        })
        .collect()
}

fn wait_relevo(node: &RelevoNode, wanted: &str, timeout: Duration) {
    let ok = wait_for(timeout, || relevo_states(node).iter().all(|s| s == wanted));
    assert!(
        ok,
        "Relevo is not {wanted} in both families: {:?}\n{}",
        relevo_states(node),
        log_of(node.log_path())
    );
}

/// The client reaches both VIPs (whoever serves them) through the virtual MAC.
fn client_reaches_the_vips(lab: &Lab) {
    for (vip, mac) in [(VIP4, "00:00:5e:00:01:4e"), (VIP6, "00:00:5e:00:02:4e")] {
        let addr = vip.split('/').next().unwrap();
        let ok = wait_for(TAKEOVER, || {
            lab.exec(&lab.client_ns(), &["ping", "-c", "1", "-W", "1", addr])
                .is_ok_and(|o| o.status.success())
        });
        assert!(ok, "the client cannot reach {addr}");
        let neigh = lab
            .ip(&lab.client_ns(), &["neigh", "show", addr])
            .unwrap_or_default();
        assert!(neigh.contains(mac), "client's entry for {addr}: {neigh}");
    }
}

#[test]
fn relevo_master_frr_backup_then_frr_takes_over_and_gives_back() {
    if !needs_root_and_frr("frr_r") {
        return;
    }
    let Some(lab) = lab("frrr", 2) else { return };
    let mut relevo =
        RelevoNode::start(&lab, 1, &relevo_bin(), &relevo_config(&lab, 1, 150)).unwrap();
    wait_relevo(&relevo, "MASTER", TAKEOVER);
    let frr = Frr::start(&lab, 2, 100);
    frr.wait_states("Backup", TAKEOVER);
    assert!(
        holds_for(INTERVAL * 5, || relevo_states(&relevo)
            == ["MASTER", "MASTER"]),
        "Relevo must stay master: {:?}",
        relevo_states(&relevo)
    );
    client_reaches_the_vips(&lab);
    relevo.crash().unwrap();
    lab.set_node_port(1, false).unwrap();
    frr.wait_states("Master", TAKEOVER);
    client_reaches_the_vips(&lab);
    lab.set_node_port(1, true).unwrap();
    relevo.restart(&lab).unwrap();
    wait_relevo(&relevo, "MASTER", TAKEOVER);
    frr.wait_states("Backup", TAKEOVER);
    client_reaches_the_vips(&lab);
}

#[test]
fn frr_master_relevo_backup_then_relevo_takes_over_and_gives_back() {
    if !needs_root_and_frr("frr_f") {
        return;
    }
    let Some(lab) = lab("frrf", 2) else { return };
    let frr = Frr::start(&lab, 1, 150);
    frr.wait_states("Master", TAKEOVER);
    let relevo = RelevoNode::start(&lab, 2, &relevo_bin(), &relevo_config(&lab, 2, 100)).unwrap();
    wait_relevo(&relevo, "BACKUP", TAKEOVER);
    assert!(
        holds_for(INTERVAL * 5, || relevo_states(&relevo)
            == ["BACKUP", "BACKUP"]),
        "Relevo must stay backup: {:?}",
        relevo_states(&relevo)
    );
    client_reaches_the_vips(&lab);
    frr.stop();
    wait_relevo(&relevo, "MASTER", TAKEOVER);
    client_reaches_the_vips(&lab);
    let frr = Frr::start(&lab, 1, 150);
    frr.wait_states("Master", TAKEOVER);
    wait_relevo(&relevo, "BACKUP", TAKEOVER);
    client_reaches_the_vips(&lab);
}
