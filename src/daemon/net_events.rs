//! Links and addresses as they change: netlink events (and the snapshot after an overrun)
//! update the interface table, rebind instances to their interfaces, pick and pin each
//! instance's advert source, and let the VIP table restore what vanished.
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::netlink::{AddrInfo, LinkInfo, NetEvent};
use super::timer::TimerOwner;
use super::Daemon;
use crate::config::Family;
use crate::engine::vrrp::{Blocker, Input};

impl Daemon {
    pub(super) fn on_net_event(&mut self, event: NetEvent, now: Instant) {
        self.interfaces.apply(&event);
        match &event {
            NetEvent::Link(link) => {
                let name = link.name.clone();
                for i in 0..self.instances.len() {
                    let inst = &self.instances[i];
                    let is_vmac = inst.vmac.as_ref().is_some_and(|v| v.name == name);
                    if inst.cfg.interface != name && !is_vmac {
                        continue;
                    }
                    let old_index = self.instances[i].ifindex;
                    if !is_vmac && old_index.is_some() && old_index != Some(link.ifindex) {
                        if let Some(old) = old_index {
                            self.close_sockets_of(old);
                        }
                    }
                    self.rebind(i, now);
                }
            }
            NetEvent::LinkRemoved { ifindex, .. } => {
                let ifindex = *ifindex;
                self.close_sockets_of(ifindex);
                for i in 0..self.instances.len() {
                    if self.instances[i].ifindex == Some(ifindex) {
                        let was_up = self.instances[i].link_up;
                        self.instances[i].ifindex = None;
                        self.instances[i].link_up = false;
                        if was_up {
                            self.feed(i, Input::LinkDown, now);
                        }
                    }
                }
                // A macvlan deleted by hand is created again; one whose parent went is
                // created once the parent is back.
                self.refresh_vmacs(now);
            }
            NetEvent::AddrAdded(a) | NetEvent::AddrRemoved(a) => {
                let ifindex = a.ifindex;
                for i in 0..self.instances.len() {
                    if self.instances[i].ifindex == Some(ifindex) {
                        self.refresh_source(i, now);
                    }
                }
                let restored = self
                    .vips
                    .reconcile(now, &self.interfaces, &mut self.netlink);
                self.announce_restored(restored);
            }
            NetEvent::RequestFailed {
                what,
                errno,
                ifindex,
                addr,
                ..
            } => {
                warn!(
                    "netlink request failed: {what}: {}",
                    std::io::Error::from_raw_os_error(*errno)
                );
                self.vips
                    .request_failed(*ifindex, *addr, *errno, now, &self.interfaces);
                self.schedule_vips();
            }
            NetEvent::LinkRequestFailed { name, what } => {
                warn!("netlink request failed: {what}");
                if self
                    .instances
                    .iter()
                    .any(|inst| inst.vmac.as_ref().is_some_and(|v| &v.name == name))
                {
                    warn!("virtual-MAC interface {name} is not usable: its instance stays in FAULT; retried every second");
                }
            }
            NetEvent::Overrun => {
                warn!("netlink event queue overran: re-reading interfaces and addresses");
                let mut released = Vec::new();
                self.netlink.start_resync(now, &mut released);
                for ev in released {
                    self.on_net_event(ev, now);
                }
            }
            NetEvent::Resynced { links, addrs } => self.redump(links, addrs, now),
        }
        if matches!(event, NetEvent::Link(_) | NetEvent::LinkRemoved { .. }) {
            self.refresh_interface_tracks(now);
        }
    }

    /// Looks instance `i`'s interface up again and tells the engine when its link came up or
    /// went down.
    pub(super) fn rebind(&mut self, i: usize, now: Instant) {
        let was_up = self.instances[i].link_up;
        self.bind_interface(i, now);
        self.refresh_source(i, now);
        match (was_up, self.instances[i].link_up) {
            (false, true) => self.feed(i, Input::LinkUp, now),
            (true, false) => self.feed(i, Input::LinkDown, now),
            _ => {}
        }
    }

    /// Applies a resync's snapshot: the table is replaced, links that vanished meanwhile are
    /// removed as if their removal had been seen, then every link is replayed so instances
    /// rebind (following an interface recreated under a new ifindex), see link state changes
    /// and refresh their source address.
    pub(super) fn redump(&mut self, links: &[LinkInfo], addrs: &[AddrInfo], now: Instant) {
        let vanished = self.interfaces.reset(links.to_vec(), addrs.to_vec());
        for link in vanished {
            let (ifindex, name) = (link.ifindex, link.name);
            self.on_net_event(NetEvent::LinkRemoved { ifindex, name }, now);
        }
        for link in links {
            self.on_net_event(NetEvent::Link(link.clone()), now);
        }
    }

    /// Reads the netlink sockets (a bounded batch each) and handles what they report, then
    /// schedules the next call: on the next loop turn while datagrams may still be queued (the
    /// sockets are edge-triggered: no new readiness event would come for those), else at the
    /// resync's own deadline.
    pub(super) fn service_netlink(&mut self, now: Instant) {
        let mut events = Vec::new();
        self.netlink.handle_timeout(now, &mut events);
        let more = self
            .netlink
            .read_events(&mut events, now)
            .unwrap_or_else(|e| {
                warn!("reading netlink failed: {e}");
                false
            });
        for ev in events {
            self.on_net_event(ev, now);
        }
        // One nanosecond later: due on the next turn, not again in this turn's timer loop.
        let next = match more {
            true => Some(now + Duration::from_nanos(1)),
            false => self.netlink.next_deadline(),
        };
        self.deadlines.schedule(TimerOwner::Netlink, next);
    }

    pub(super) fn source_address(&self, i: usize) -> Option<std::net::IpAddr> {
        let inst = &self.instances[i];
        let ifindex = inst.ifindex?;
        let usable = |addr: std::net::IpAddr| {
            self.interfaces
                .has_address(ifindex, addr)
                .is_some_and(|a| !a.tentative && !a.dad_failed)
        };
        if let Some(wanted) = inst.cfg.source_address {
            return Some(wanted).filter(|a| usable(*a));
        }
        if let Some(pinned) = inst.engine.primary_address().filter(|a| usable(*a)) {
            return Some(pinned);
        }
        // Every VIP of the node is excluded, not only this instance's: another instance's VIP
        // in another subnet is a primary address too, and the address stamp that would tell
        // it apart is missing on kernels before 6.1.
        self.interfaces
            .source_address(ifindex, inst.family == Family::V6, &self.all_vip_addrs)
    }

    /// Tells the engine the advert source address (the engine's copy is the one the daemon
    /// sends from) when it changed, and whether there is one at all: the blocker inputs are
    /// idempotent, so they are fed on every refresh, at start as after any address event.
    pub(super) fn refresh_source(&mut self, i: usize, now: Instant) {
        let source = self.source_address(i);
        let blocker = Blocker::NoSourceAddress;
        let can_advertise = match source {
            Some(_) => Input::CanAdvertise(blocker),
            None => Input::CannotAdvertise(blocker),
        };
        let old = self.instances[i].engine.primary_address();
        if old == source {
            self.feed(i, can_advertise, now);
            return;
        }
        let inst = &self.instances[i];
        match (old, source) {
            (Some(old), Some(new)) => {
                info!(instance = %inst.cfg.name, "advert source address changed from {old} to {new}")
            }
            (None, Some(new)) => {
                info!(instance = %inst.cfg.name, "advert source address: {new}")
            }
            (Some(old), None) => {
                warn!(instance = %inst.cfg.name, "advert source address {old} is gone from {}: no usable source address", inst.cfg.interface)
            }
            (None, None) => {}
        }
        self.feed(i, Input::PrimaryAddress(source), now);
        self.feed(i, can_advertise, now);
    }
}
