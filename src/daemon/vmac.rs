//! Virtual-MAC mode (`virtual_mac = true`): the macvlan interface that carries an instance's
//! VIPs and the virtual router MAC (00:00:5e:00:01:VRID for IPv4, 00:00:5e:00:02:VRID for
//! IPv6, RFC 5798 §7.3), so clients' neighbour entries never change on a failover and
//! switches learn the master's port from its adverts (sent from that MAC, see
//! [`crate::wire::advert_frame`]).
//!
//! This module owns the interface's life cycle: created over netlink once the parent
//! interface exists (bridge mode, no IPv6 link-local address derived from the shared MAC, up),
//! created again if it vanishes (retried every second while it cannot be), replaced when a
//! crashed run left one behind, deleted at exit. It also owns the ARP settings that keep the
//! node from giving the parent's MAC for a VIP (`arp_ignore=1` on the parent and the macvlan,
//! `arp_announce=2` on the parent; the parent's old values are put back at exit) and
//! `rp_filter=0` on the macvlan (replies leave through the parent). An instance counts its link as up only while both the
//! parent and its macvlan are up.
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::netlink::LinkRequest;
use super::timer::TimerOwner;
use super::Daemon;
use crate::config::Family;
use crate::wire::ethernet::format_mac;
use crate::wire::vrrp::virtual_mac;
use crate::wire::MacAddr;

/// Least time between two attempts to create a missing macvlan.
const RETRY: Duration = Duration::from_secs(1);

/// One instance's virtual-MAC interface.
#[derive(Debug)]
pub struct VirtualMac {
    /// The macvlan's name (`vmac_interface`, by default `vrrp4.VRID` / `vrrp6.VRID`).
    pub name: String,
    /// 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6).
    pub mac: MacAddr,
    /// When its creation was last asked for: not asked again within [`RETRY`].
    requested_at: Option<Instant>,
    /// Whether this run created it (one found at start is a crashed run's and is replaced).
    created: bool,
    /// The ifindex whose sysctls were set (once per incarnation of the interface).
    configured: Option<u32>,
    /// A same-named interface that is not Relevo's was reported (once).
    warned_foreign: bool,
}

impl VirtualMac {
    pub fn new(name: &str, vrid: u8, family: Family) -> Self {
        VirtualMac {
            name: name.to_string(),
            mac: virtual_mac(vrid, family),
            requested_at: None,
            created: false,
            configured: None,
            warned_foreign: false,
        }
    }
}

/// A sysctl of a parent interface that Relevo changed, and the value to put back.
#[derive(Debug)]
pub struct SavedSysctl {
    path: String,
    value: String,
}

fn sysctl_path(family: &str, interface: &str, key: &str) -> String {
    format!("/proc/sys/net/{family}/conf/{interface}/{key}")
}

/// Writes one per-interface sysctl (a procfs write: in memory, it does not block on a disk).
fn write_sysctl(path: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)
}

impl Daemon {
    /// Makes instance `i`'s macvlan exist on its parent (nothing for an instance without
    /// virtual-MAC mode) and returns whether it is there and up.
    pub(super) fn ensure_vmac(&mut self, i: usize, now: Instant) -> bool {
        let inst = &self.instances[i];
        let (Some(vmac), Some(parent)) = (inst.vmac.as_ref(), inst.ifindex) else {
            return false;
        };
        let name = vmac.name.clone();
        let mac = vmac.mac;
        let found = self
            .interfaces
            .by_name(&name)
            .map(|iface| (iface.link.ifindex, iface.link.mac, iface.link.up));
        match found {
            Some((ifindex, found_mac, up)) if found_mac == Some(mac) && vmac.created => {
                if vmac.configured != Some(ifindex) {
                    self.configure_vmac(i, ifindex);
                }
                up
            }
            Some((_, found_mac, _)) if found_mac == Some(mac) => {
                info!(instance = %inst.cfg.name, "replacing the virtual-MAC interface {name} a previous run left behind");
                self.request_link(LinkRequest::Delete { name: name.clone() });
                self.create_vmac(i, parent, now);
                false
            }
            Some(_) => {
                let inst = &mut self.instances[i];
                if let Some(vmac) = inst.vmac.as_mut().filter(|v| !v.warned_foreign) {
                    vmac.warned_foreign = true;
                    warn!(
                        instance = %inst.cfg.name,
                        "interface {name} exists and does not carry the virtual MAC: it is not \
                         Relevo's and is left alone; the instance stays in FAULT (set \
                         `vmac_interface` to a free name)"
                    );
                }
                false
            }
            None => {
                let due = vmac
                    .requested_at
                    .is_none_or(|at| now.saturating_duration_since(at) >= RETRY);
                if due {
                    self.create_vmac(i, parent, now);
                }
                false
            }
        }
    }

    fn create_vmac(&mut self, i: usize, parent: u32, now: Instant) {
        let Some(vmac) = self.instances[i].vmac.as_mut() else {
            return;
        };
        vmac.requested_at = Some(now);
        vmac.created = true;
        vmac.configured = None;
        let name = vmac.name.clone();
        let mac = vmac.mac;
        info!(instance = %self.instances[i].cfg.name, "creating the virtual-MAC interface {name} ({}) on {}", format_mac(&mac), self.instances[i].cfg.interface);
        self.request_link(LinkRequest::CreateMacvlan {
            name: name.clone(),
            parent,
            mac,
        });
        self.request_link(LinkRequest::NoAddrGen { name: name.clone() });
        self.request_link(LinkRequest::SetUp { name });
        self.deadlines
            .schedule(TimerOwner::VirtualMacs, Some(now + RETRY));
    }

    fn request_link(&mut self, request: LinkRequest) {
        if let Err(e) = self.netlink.link_request(request) {
            warn!("{e}");
        }
    }

    /// ARP settings of a new macvlan and of its parent (IPv4 only: IPv6 neighbour discovery
    /// answers only for addresses of the interface a solicitation arrived on).
    fn configure_vmac(&mut self, i: usize, ifindex: u32) {
        let inst = &mut self.instances[i];
        let Some(vmac) = inst.vmac.as_mut() else {
            return;
        };
        vmac.configured = Some(ifindex);
        if inst.family != Family::V4 {
            return;
        }
        let name = vmac.name.clone();
        let parent = inst.cfg.interface.clone();
        let settings = [
            (sysctl_path("ipv4", &name, "arp_ignore"), "1"),
            (sysctl_path("ipv4", &name, "rp_filter"), "0"),
        ];
        for (path, value) in settings {
            if let Err(e) = write_sysctl(&path, value) {
                warn!(instance = %inst.cfg.name, "setting {path} to {value} failed: {e}");
            }
        }
        // The parent must neither answer ARP for the VIPs (arp_ignore=1: only for its own
        // addresses) nor ask with a VIP as sender (arp_announce=2: its own address), or
        // clients would learn its MAC for a VIP.
        for (key, wanted) in [("arp_ignore", 1), ("arp_announce", 2)] {
            let path = sysctl_path("ipv4", &parent, key);
            if self.saved_sysctls.iter().any(|s| s.path == path) {
                continue;
            }
            let old = match std::fs::read_to_string(&path) {
                Ok(text) => text.trim().to_string(),
                Err(e) => {
                    warn!("reading {path} failed: {e}");
                    continue;
                }
            };
            if old.parse::<u32>().is_ok_and(|v| v >= wanted) {
                continue;
            }
            match write_sysctl(&path, &wanted.to_string()) {
                Ok(()) => {
                    info!("set {path} to {wanted} (was {old}) so that {parent} never gives its own MAC for a VIP of its virtual-MAC interfaces; restored at exit");
                    self.saved_sysctls.push(SavedSysctl { path, value: old });
                }
                Err(e) => warn!("setting {path} to {wanted} failed: {e}: clients may learn {parent}'s MAC for a VIP"),
            }
        }
    }

    /// Re-evaluates every virtual-MAC instance after a link change: a missing macvlan is
    /// created (again), and the instance's link state follows parent and macvlan.
    pub(super) fn refresh_vmacs(&mut self, now: Instant) {
        for i in 0..self.instances.len() {
            if self.instances[i].vmac.is_some() {
                self.rebind(i, now);
            }
        }
    }

    /// The retry timer: creates the macvlans still missing.
    pub(super) fn on_vmac_timer(&mut self, now: Instant) {
        self.refresh_vmacs(now);
        let missing = self.instances.iter().any(|inst| {
            inst.vmac
                .as_ref()
                .is_some_and(|v| self.interfaces.by_name(&v.name).is_none())
        });
        if missing {
            self.deadlines
                .schedule(TimerOwner::VirtualMacs, Some(now + RETRY));
        }
    }

    /// At exit: every macvlan goes (with any address on it) and the parents' `arp_ignore`
    /// are put back.
    pub(super) fn remove_vmacs(&mut self) {
        for i in 0..self.instances.len() {
            let Some(vmac) = self.instances[i].vmac.as_ref() else {
                continue;
            };
            if vmac.created && self.interfaces.by_name(&vmac.name).is_some() {
                let name = vmac.name.clone();
                self.request_link(LinkRequest::Delete { name });
            }
        }
        for saved in std::mem::take(&mut self.saved_sysctls) {
            if let Err(e) = write_sysctl(&saved.path, &saved.value) {
                warn!("restoring {} to {} failed: {e}", saved.path, saved.value);
            }
        }
    }
}
