//! VIP ownership on this node: the one place that adds and removes virtual IPs, shared by
//! VRRP instances (and, later, cluster resource groups). Each VIP has exactly one owner.
//!
//! The [`VipTable`] keeps, per VIP, what is *desired* (the owner holds it or not) and compares
//! it with what is *actual* (the daemon's netlink view of the interface, [`Interfaces`]):
//! - **Reconciliation.** On every address event and on a slow timer, a held VIP that is missing
//!   from its interface (deleted by hand or by another tool, or expired) is re-added at once —
//!   logged and counted, no hook runs — and the owner is told so it can re-announce it.
//!   Failed add/remove requests are retried with exponential backoff; the last error and the
//!   failure count show in `relevo status`. The interface is looked up by name each time, so
//!   an interface deleted and recreated (new ifindex) is followed.
//! - **Leases.** With a lease, VIPs are added with kernel lifetimes (valid = preferred = lease)
//!   and re-added (replace) every third of the lease while held, so the VIPs of a daemon that
//!   was SIGKILLed, crashed or froze leave the interface by themselves within the lease.
//! - **Stamp and state file.** Every address Relevo adds carries the address protocol
//!   [`RELEVO_ADDR_PROTO`] (kernel ≥ 6.1) and is written to `state_dir/vips.state` *before* the
//!   add request is sent. At start, a configured VIP found on its interface is a leftover of a
//!   crashed run (and removed) if it carries the stamp or is listed in the state file; any
//!   other is someone else's and is never touched. The state file is what makes this work on
//!   kernels that drop IFA_PROTO silently (before 6.1).
//!
//! The table performs its requests through [`AddressOps`] (the daemon's netlink socket), so
//! the logic is tested here without a kernel.
use std::collections::BTreeSet;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::interfaces::Interfaces;
use super::netlink::RELEVO_ADDR_PROTO;
use crate::config::Vip;

/// How often held VIPs are compared with the interfaces even without an event.
const RECONCILE_PERIOD: Duration = Duration::from_secs(1);
/// A request whose outcome (an address event or a failure) has not arrived is not repeated
/// by reconciliation for this long.
const IN_FLIGHT: Duration = Duration::from_millis(500);
/// First retry delay after a failed request; doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// Name of the state file under `state_dir`.
const STATE_FILE: &str = "vips.state";

/// Who holds a VIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VipOwner {
    /// A VRRP instance, by index.
    Instance(usize),
    /// A cluster resource group, by index.
    Group(usize),
}

/// The netlink requests the table needs. Both are asynchronous: success shows up later as an
/// address event, failure as [`VipTable::request_failed`].
pub trait AddressOps {
    /// Adds (or replaces, refreshing its lifetime) `vip` on `ifindex`; `lease` = None is
    /// permanent.
    fn add(&mut self, ifindex: u32, vip: Vip, lease: Option<Duration>) -> io::Result<()>;
    fn del(&mut self, ifindex: u32, vip: Vip) -> io::Result<()>;
}

/// One VIP and its owner.
#[derive(Debug, Clone)]
struct Entry {
    owner: VipOwner,
    interface: String,
    vip: Vip,
    lease: Option<Duration>,
    /// The owner holds it: it must be on the interface.
    held: bool,
    /// Relevo added it (and has not removed it since): ours to remove, refresh and restore.
    ours: bool,
    /// Someone else configured this address: never added over, never removed.
    foreign: bool,
    /// When the last add was sent (reconciliation leaves it alone for [`IN_FLIGHT`]).
    requested_at: Option<Instant>,
    /// Next lease refresh while held.
    refresh_at: Option<Instant>,
    /// A failed request is retried then.
    retry_at: Option<Instant>,
    backoff: Duration,
    failures: u64,
    last_error: Option<String>,
    restored: u64,
}

/// Status of one VIP (for `relevo status`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VipStatus {
    pub vip: String,
    pub interface: String,
    pub held: bool,
    /// On the interface right now (netlink view).
    pub present: bool,
    /// Someone else configured it: left alone.
    pub foreign: bool,
    /// Re-added after it vanished while held.
    pub restored: u64,
    /// Failed add/remove requests since start.
    pub failures: u64,
    pub last_error: Option<String>,
}

/// Every VIP of this node. See the module documentation.
#[derive(Debug)]
pub struct VipTable {
    entries: Vec<Entry>,
    state_path: PathBuf,
    /// Addresses listed in the state file (interface, vip), as last written.
    recorded: BTreeSet<(String, String)>,
    next_reconcile: Option<Instant>,
}

impl VipTable {
    /// An empty table whose state file lives in `state_dir` (created if missing). The file's
    /// current content is what an earlier run added and did not remove.
    pub fn new(state_dir: &Path) -> Self {
        // Made once, before the loop: a write of the file is then one small write and a
        // rename on the loop (state_dir is a tmpfs, /run, by default).
        if let Err(e) = std::fs::create_dir_all(state_dir) {
            warn!(
                "cannot create the state directory {}: {e}",
                state_dir.display()
            );
        }
        let state_path = state_dir.join(STATE_FILE);
        let recorded = read_state(&state_path);
        VipTable {
            entries: Vec::new(),
            state_path,
            recorded,
            next_reconcile: None,
        }
    }

    /// Registers the VIPs of `owner` (once, at start).
    pub fn register(
        &mut self,
        owner: VipOwner,
        interface: &str,
        vips: &[Vip],
        lease: Option<Duration>,
    ) {
        for vip in vips {
            self.entries.push(Entry {
                owner,
                interface: interface.to_string(),
                vip: *vip,
                lease,
                held: false,
                ours: false,
                foreign: false,
                requested_at: None,
                refresh_at: None,
                retry_at: None,
                backoff: RETRY_MIN,
                failures: 0,
                last_error: None,
                restored: 0,
            });
        }
    }

    /// Removes what a crashed earlier run left on the interfaces: a configured VIP that
    /// carries Relevo's stamp or is listed in the state file. Others are someone else's.
    pub fn remove_leftovers(&mut self, interfaces: &Interfaces, ops: &mut dyn AddressOps) {
        for i in 0..self.entries.len() {
            let entry = &self.entries[i];
            let Some((ifindex, proto)) = present(interfaces, &entry.interface, entry.vip.addr)
            else {
                continue;
            };
            let listed = self.recorded.contains(&key(entry));
            if proto == RELEVO_ADDR_PROTO || listed {
                info!(
                    "removing VIP {} on {} left by an earlier run ({})",
                    entry.vip,
                    entry.interface,
                    if proto == RELEVO_ADDR_PROTO {
                        "address protocol stamp"
                    } else {
                        "state file"
                    }
                );
                if let Err(e) = ops.del(ifindex, entry.vip) {
                    warn!("removing stale VIP {} failed: {e}", entry.vip);
                }
            } else {
                warn!(
                    "VIP {} is already configured on {} and was not added by relevo: it is left alone",
                    entry.vip, entry.interface
                );
                self.entries[i].foreign = true;
            }
        }
        self.recorded.clear();
        self.write_state();
    }

    /// The owner takes its VIPs: each is added unless someone else configured it.
    pub fn acquire(
        &mut self,
        owner: VipOwner,
        now: Instant,
        interfaces: &Interfaces,
        ops: &mut dyn AddressOps,
    ) {
        for i in self.indexes_of(owner) {
            self.entries[i].held = true;
            self.entries[i].backoff = RETRY_MIN;
            self.add(i, now, interfaces, ops);
        }
        self.schedule_reconcile(now);
    }

    /// The owner lets its VIPs go: exactly those Relevo added are removed.
    pub fn release(&mut self, owner: VipOwner, interfaces: &Interfaces, ops: &mut dyn AddressOps) {
        for i in self.indexes_of(owner) {
            let entry = &mut self.entries[i];
            entry.held = false;
            entry.refresh_at = None;
            entry.retry_at = None;
            entry.requested_at = None;
            if entry.ours {
                self.remove(i, interfaces, ops);
            }
        }
    }

    /// Compares held VIPs with the interfaces now (after an address event) and restores the
    /// missing ones. Returns the owners whose VIPs were restored (to re-announce them).
    pub fn reconcile(
        &mut self,
        now: Instant,
        interfaces: &Interfaces,
        ops: &mut dyn AddressOps,
    ) -> Vec<VipOwner> {
        let mut restored = Vec::new();
        for i in 0..self.entries.len() {
            let entry = &self.entries[i];
            if !entry.held || entry.foreign || entry.retry_at.is_some() {
                continue;
            }
            let on_interface = present(interfaces, &entry.interface, entry.vip.addr);
            if on_interface.is_some() {
                // The add went through: a later disappearance is a real one.
                self.entries[i].requested_at = None;
                continue;
            }
            if entry
                .requested_at
                .is_some_and(|at| now.saturating_duration_since(at) < IN_FLIGHT)
            {
                continue;
            }
            match on_interface {
                Some(_) => {}
                None if interfaces.by_name(&entry.interface).is_none() => {}
                None => {
                    let entry = &mut self.entries[i];
                    entry.restored += 1;
                    warn!(
                        "VIP {} vanished from {} while held (deleted by someone else, or its lease expired): restored",
                        entry.vip, entry.interface
                    );
                    if !restored.contains(&entry.owner) {
                        restored.push(entry.owner);
                    }
                    self.add(i, now, interfaces, ops);
                }
            }
        }
        restored
    }

    /// A request for `addr` on `ifindex` failed with `errno`: retried with backoff.
    pub fn request_failed(
        &mut self,
        ifindex: u32,
        addr: IpAddr,
        errno: i32,
        now: Instant,
        interfaces: &Interfaces,
    ) {
        let name = interfaces.get(ifindex).map(|i| i.link.name.clone());
        for entry in self.entries.iter_mut().filter(|e| e.vip.addr == addr) {
            if name.as_deref().is_some_and(|n| n != entry.interface) {
                continue;
            }
            // Removing an address that is already gone is success.
            if !entry.held && errno == libc::EADDRNOTAVAIL {
                continue;
            }
            let error = io::Error::from_raw_os_error(errno).to_string();
            entry.failures += 1;
            entry.requested_at = None;
            entry.retry_at = now.checked_add(entry.backoff);
            warn!(
                "{} VIP {} on {} failed: {error}; retrying in {:?}",
                if entry.held { "adding" } else { "removing" },
                entry.vip,
                entry.interface,
                entry.backoff
            );
            entry.backoff = (entry.backoff * 2).min(RETRY_MAX);
            entry.last_error = Some(error);
        }
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .iter()
            .flat_map(|e| [e.refresh_at, e.retry_at])
            .chain([self.next_reconcile])
            .flatten()
            .min()
    }

    /// Lease refreshes, retries and the periodic reconciliation. Returns the owners whose
    /// VIPs were restored.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        interfaces: &Interfaces,
        ops: &mut dyn AddressOps,
    ) -> Vec<VipOwner> {
        for i in 0..self.entries.len() {
            let entry = &mut self.entries[i];
            if entry.retry_at.is_some_and(|t| t <= now) {
                entry.retry_at = None;
                if entry.held {
                    self.add(i, now, interfaces, ops);
                } else if entry.ours {
                    self.remove(i, interfaces, ops);
                }
            } else if entry.held && entry.refresh_at.is_some_and(|t| t <= now) {
                self.add(i, now, interfaces, ops);
            }
        }
        if self.next_reconcile.is_some_and(|t| t <= now) {
            self.next_reconcile = None;
            let restored = self.reconcile(now, interfaces, ops);
            self.schedule_reconcile(now);
            return restored;
        }
        Vec::new()
    }

    /// Status of the VIPs of `owner`.
    pub fn status(&self, owner: VipOwner, interfaces: &Interfaces) -> Vec<VipStatus> {
        self.entries
            .iter()
            .filter(|e| e.owner == owner)
            .map(|e| VipStatus {
                vip: e.vip.to_string(),
                interface: e.interface.clone(),
                held: e.held,
                present: present(interfaces, &e.interface, e.vip.addr).is_some(),
                foreign: e.foreign,
                restored: e.restored,
                failures: e.failures,
                last_error: e.last_error.clone(),
            })
            .collect()
    }

    fn indexes_of(&self, owner: VipOwner) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&i| self.entries[i].owner == owner)
            .collect()
    }

    fn schedule_reconcile(&mut self, now: Instant) {
        if self.entries.iter().any(|e| e.held) {
            self.next_reconcile = self.next_reconcile.or(now.checked_add(RECONCILE_PERIOD));
        }
    }

    /// Sends the add (or lease refresh) of entry `i`, recording it in the state file first.
    fn add(&mut self, i: usize, now: Instant, interfaces: &Interfaces, ops: &mut dyn AddressOps) {
        let entry = &self.entries[i];
        let Some(iface) = interfaces.by_name(&entry.interface) else {
            return;
        };
        let ifindex = iface.link.ifindex;
        if !entry.ours {
            if let Some((_, proto)) = present(interfaces, &entry.interface, entry.vip.addr) {
                if proto != RELEVO_ADDR_PROTO {
                    let entry = &mut self.entries[i];
                    if !entry.foreign {
                        warn!(
                            "VIP {} is configured on {} by someone else: relevo leaves it alone",
                            entry.vip, entry.interface
                        );
                    }
                    entry.foreign = true;
                    return;
                }
            }
            self.entries[i].ours = true;
            self.record();
        }
        let entry = &mut self.entries[i];
        entry.foreign = false;
        entry.requested_at = Some(now);
        entry.refresh_at = entry.lease.and_then(|lease| now.checked_add(lease / 3));
        if let Err(e) = ops.add(ifindex, entry.vip, entry.lease) {
            entry.failures += 1;
            entry.retry_at = now.checked_add(entry.backoff);
            entry.backoff = (entry.backoff * 2).min(RETRY_MAX);
            warn!("adding VIP {} failed: {e}", entry.vip);
            entry.last_error = Some(e.to_string());
        }
    }

    fn remove(&mut self, i: usize, interfaces: &Interfaces, ops: &mut dyn AddressOps) {
        let entry = &mut self.entries[i];
        entry.ours = false;
        if let Some(iface) = interfaces.by_name(&entry.interface) {
            if let Err(e) = ops.del(iface.link.ifindex, entry.vip) {
                entry.failures += 1;
                warn!("removing VIP {} failed: {e}", entry.vip);
                entry.last_error = Some(e.to_string());
            }
        }
        self.record();
    }

    /// Rewrites the state file with every address that is ours.
    fn record(&mut self) {
        let now: BTreeSet<(String, String)> =
            self.entries.iter().filter(|e| e.ours).map(key).collect();
        if now != self.recorded {
            self.recorded = now;
            self.write_state();
        }
    }

    /// Writes the state file atomically (a temporary file renamed over it). A failure is
    /// logged: the stamp still covers kernels ≥ 6.1.
    fn write_state(&self) {
        let mut text =
            String::from("# VIPs relevo added and has not removed: interface address/prefix\n");
        for (interface, vip) in &self.recorded {
            text.push_str(&format!("{interface} {vip}\n"));
        }
        let tmp = self.state_path.with_extension("tmp");
        let result =
            std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.state_path));
        if let Err(e) = result {
            warn!(
                "cannot write the VIP state file {}: {e} (crash cleanup then relies on the address protocol stamp)",
                self.state_path.display()
            );
        }
    }
}

fn key(entry: &Entry) -> (String, String) {
    (entry.interface.clone(), entry.vip.to_string())
}

/// The ifindex and IFA_PROTO of `addr` on the interface called `name`, if it is there.
fn present(interfaces: &Interfaces, name: &str, addr: IpAddr) -> Option<(u32, u8)> {
    let ifindex = interfaces.by_name(name)?.link.ifindex;
    let found = interfaces.has_address(ifindex, addr)?;
    Some((ifindex, found.proto))
}

/// The (interface, vip) pairs of a state file; a missing or unreadable file is empty.
fn read_state(path: &Path) -> BTreeSet<(String, String)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeSet::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let (interface, vip) = line.split_once(' ')?;
            let vip: Vip = vip.trim().parse().ok()?;
            Some((interface.to_string(), vip.to_string()))
        })
        .collect()
}

impl AddressOps for super::netlink::Netlink {
    fn add(&mut self, ifindex: u32, vip: Vip, lease: Option<Duration>) -> io::Result<()> {
        self.add_address(ifindex, vip.addr, vip.prefix_len, lease)
            .map(drop)
    }

    fn del(&mut self, ifindex: u32, vip: Vip) -> io::Result<()> {
        self.del_address(ifindex, vip.addr, vip.prefix_len)
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::netlink::{AddrInfo, LinkInfo};

    /// Records requests; `fail_adds` makes adds fail synchronously. At each add it also
    /// records whether the state file already listed the address (written before the add).
    struct Recorder {
        state_path: PathBuf,
        adds: Vec<(u32, Vip, Option<Duration>, bool)>,
        dels: Vec<(u32, Vip)>,
    }

    impl AddressOps for Recorder {
        fn add(&mut self, ifindex: u32, vip: Vip, lease: Option<Duration>) -> io::Result<()> {
            let listed = std::fs::read_to_string(&self.state_path)
                .unwrap_or_default()
                .contains(&vip.to_string());
            self.adds.push((ifindex, vip, lease, listed));
            Ok(())
        }
        fn del(&mut self, ifindex: u32, vip: Vip) -> io::Result<()> {
            self.dels.push((ifindex, vip));
            Ok(())
        }
    }

    fn addr(ifindex: u32, text: &str, proto: u8) -> AddrInfo {
        AddrInfo {
            ifindex,
            addr: text.parse().unwrap(),
            prefix_len: 24,
            proto,
            tentative: false,
            secondary: false,
            dad_failed: false,
            valid_lifetime: None,
        }
    }

    fn interfaces(addrs: Vec<AddrInfo>) -> Interfaces {
        let mut table = Interfaces::default();
        let link = LinkInfo {
            ifindex: 7,
            name: "eth0".into(),
            up: true,
            mac: None,
        };
        table.reset(vec![link], addrs);
        table
    }

    fn setup(tag: &str) -> (VipTable, Recorder, PathBuf) {
        let dir = std::env::temp_dir().join(format!("relevo-vip-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut table = VipTable::new(&dir);
        let vips: Vec<Vip> = vec!["192.0.2.100/24".parse().unwrap()];
        table.register(
            VipOwner::Instance(0),
            "eth0",
            &vips,
            Some(Duration::from_secs(3)),
        );
        let ops = Recorder {
            state_path: dir.join(STATE_FILE),
            adds: Vec::new(),
            dels: Vec::new(),
        };
        (table, ops, dir)
    }

    #[test]
    fn acquire_records_the_state_file_before_adding_with_the_lease() {
        let (mut table, mut ops, dir) = setup("acquire");
        let now = Instant::now();
        table.acquire(VipOwner::Instance(0), now, &interfaces(vec![]), &mut ops);
        assert_eq!(ops.adds.len(), 1);
        let (ifindex, vip, lease, listed) = ops.adds[0];
        assert_eq!(
            (ifindex, vip.to_string()),
            (7, "192.0.2.100/24".to_string())
        );
        assert_eq!(lease, Some(Duration::from_secs(3)));
        assert!(
            listed,
            "the state file must list the VIP before the add is sent"
        );
        // The lease is refreshed every third of it.
        assert_eq!(table.next_deadline(), Some(now + Duration::from_secs(1)));
        let present = interfaces(vec![addr(7, "192.0.2.100", RELEVO_ADDR_PROTO)]);
        table.handle_timeout(now + Duration::from_secs(1), &present, &mut ops);
        assert_eq!(ops.adds.len(), 2);
        // Released: removed, and gone from the state file.
        table.release(VipOwner::Instance(0), &present, &mut ops);
        assert_eq!(ops.dels.len(), 1);
        let text = std::fs::read_to_string(dir.join(STATE_FILE)).unwrap();
        assert!(!text.contains("192.0.2.100"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_held_vip_that_vanished_is_restored_and_reported() {
        let (mut table, mut ops, dir) = setup("restore");
        let t0 = Instant::now();
        table.acquire(VipOwner::Instance(0), t0, &interfaces(vec![]), &mut ops);
        let present = interfaces(vec![addr(7, "192.0.2.100", RELEVO_ADDR_PROTO)]);
        assert!(table.reconcile(t0, &present, &mut ops).is_empty());
        // Deleted by someone: the next event restores it at once.
        let gone = interfaces(vec![]);
        let restored = table.reconcile(t0 + Duration::from_millis(1), &gone, &mut ops);
        assert_eq!(restored, vec![VipOwner::Instance(0)]);
        assert_eq!(ops.adds.len(), 2);
        // While that add is in flight, another event does not send it again.
        assert!(table
            .reconcile(t0 + Duration::from_millis(2), &gone, &mut ops)
            .is_empty());
        assert_eq!(table.status(VipOwner::Instance(0), &gone)[0].restored, 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_failed_request_is_retried_with_backoff_and_shows_in_status() {
        let (mut table, mut ops, dir) = setup("retry");
        let t0 = Instant::now();
        let none = interfaces(vec![]);
        table.acquire(VipOwner::Instance(0), t0, &none, &mut ops);
        let addr: IpAddr = "192.0.2.100".parse().unwrap();
        table.request_failed(7, addr, libc::EPERM, t0, &none);
        let status = &table.status(VipOwner::Instance(0), &none)[0];
        assert_eq!(status.failures, 1);
        assert!(status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("not permitted"));
        assert_eq!(table.next_deadline(), Some(t0 + RETRY_MIN));
        table.handle_timeout(t0 + RETRY_MIN, &none, &mut ops);
        assert_eq!(ops.adds.len(), 2, "retried");
        // A second failure waits twice as long.
        let t1 = t0 + RETRY_MIN;
        table.request_failed(7, addr, libc::EPERM, t1, &none);
        assert_eq!(table.next_deadline(), Some(t1 + RETRY_MIN * 2));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn leftovers_go_by_stamp_or_state_file_and_foreign_addresses_stay() {
        let (mut table, mut ops, dir) = setup("leftovers");
        // An unstamped address listed in the state file is a leftover (kernel < 6.1).
        std::fs::write(dir.join(STATE_FILE), "eth0 192.0.2.100/24\n").unwrap();
        table.recorded = read_state(&dir.join(STATE_FILE));
        let unstamped = interfaces(vec![addr(7, "192.0.2.100", 0)]);
        table.remove_leftovers(&unstamped, &mut ops);
        assert_eq!(ops.dels.len(), 1);
        // Unlisted and unstamped: someone else's; never removed, never added over.
        table.remove_leftovers(&unstamped, &mut ops);
        assert_eq!(ops.dels.len(), 1);
        table.acquire(VipOwner::Instance(0), Instant::now(), &unstamped, &mut ops);
        assert!(ops.adds.is_empty());
        assert!(table.status(VipOwner::Instance(0), &unstamped)[0].foreign);
        table.release(VipOwner::Instance(0), &unstamped, &mut ops);
        assert_eq!(ops.dels.len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
