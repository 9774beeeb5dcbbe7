//! Adverts on the wire: one raw VRRP socket per (interface, family) shared by the instances
//! on it, sending with persistent-failure detection, and receiving with a per-turn budget
//! (a flood cannot starve the timers) and each advert's kernel arrival time.
use std::time::Instant;

use mio::unix::SourceFd;
use mio::Token;
use tracing::{debug, warn};

use super::instance;
use super::vrrp_socket::VrrpSocket;
use super::{
    Daemon, SocketSlot, SEND_FAILURES_FOR_FAULT, SOCKET_BUDGET, SOCKET_TOKEN_BASE, STALL_THRESHOLD,
};
use crate::config::Family;
use crate::engine::vrrp::{Blocker, Input};

impl Daemon {
    pub(super) fn send_advert(&mut self, i: usize, priority: u8) {
        let Some(slot_idx) = self.slot_of(i) else {
            return;
        };
        let inst = &mut self.instances[i];
        let Some(src) = inst.engine.primary_address() else {
            inst.count_tx_error("no_source_address");
            if inst.warn_once("no_source_address") {
                warn!(
                    instance = %inst.cfg.name,
                    "cannot send adverts: interface {} has no usable source address",
                    inst.cfg.interface
                );
            }
            return;
        };
        let Some(slot) = self.sockets.get(slot_idx).and_then(|s| s.as_ref()) else {
            return;
        };
        match inst.send_advert(&slot.socket, &self.packet, src, priority) {
            Ok(()) => {
                if std::mem::take(&mut inst.send_failures) > 0 {
                    inst.pending_input = Some(Input::CanAdvertise(Blocker::SendFailed));
                }
            }
            Err(e) => {
                inst.count_tx_error("send_failed");
                inst.send_failures += 1;
                if inst.send_failures == 1 || inst.send_failures == SEND_FAILURES_FOR_FAULT {
                    warn!(instance = %inst.cfg.name, "sending an advert failed ({} in a row): {e}", inst.send_failures);
                }
                if inst.send_failures >= SEND_FAILURES_FOR_FAULT && priority != 0 {
                    inst.pending_input = Some(Input::CannotAdvertise(Blocker::SendFailed));
                }
            }
        }
    }

    pub(super) fn slot_of(&self, i: usize) -> Option<usize> {
        let inst = &self.instances[i];
        self.socket_index
            .get(&(inst.ifindex?, inst.family))
            .copied()
    }

    /// Looks up the instance's interface and makes sure its socket (and in virtual-MAC mode
    /// its macvlan) exists; the link counts as up only while the macvlan is up too.
    pub(super) fn bind_interface(&mut self, i: usize, now: Instant) {
        let name = self.instances[i].cfg.interface.clone();
        let (ifindex, up) = match self.interfaces.by_name(&name) {
            Some(iface) => (Some(iface.link.ifindex), iface.link.up),
            None => (None, false),
        };
        let inst = &mut self.instances[i];
        inst.ifindex = ifindex;
        inst.link_up = up;
        inst.na_router_flag = inst.family == Family::V6 && instance::ipv6_forwarding(&name);
        if let Some(ifindex) = ifindex {
            self.ensure_socket(ifindex, &name, self.instances[i].family);
        }
        if self.instances[i].vmac.is_some() {
            let vmac_up = self.ensure_vmac(i, now);
            self.instances[i].link_up &= vmac_up;
        }
    }

    pub(super) fn ensure_socket(&mut self, ifindex: u32, ifname: &str, family: Family) {
        let members: Vec<usize> = (0..self.instances.len())
            .filter(|&j| {
                let inst = &self.instances[j];
                inst.cfg.interface == ifname && inst.family == family
            })
            .collect();
        if let Some(&idx) = self.socket_index.get(&(ifindex, family)) {
            if let Some(slot) = self.sockets[idx].as_mut() {
                slot.instances = members;
            }
            return;
        }
        let multicast = members
            .iter()
            .any(|&j| self.instances[j].cfg.unicast_peers.is_empty());
        let socket = match VrrpSocket::open(family, ifname, ifindex, multicast) {
            Ok(s) => s,
            Err(e) => {
                warn!("opening the VRRP socket on {ifname} ({family:?}) failed: {e}");
                return;
            }
        };
        let idx = self
            .sockets
            .iter()
            .position(|s| s.is_none())
            .unwrap_or(self.sockets.len());
        if idx == self.sockets.len() {
            self.sockets.push(None);
        }
        if let Err(e) = self.register_fd(socket.raw_fd(), Token(SOCKET_TOKEN_BASE + idx)) {
            warn!("{e:#}");
            return;
        }
        self.sockets[idx] = Some(SocketSlot {
            socket,
            instances: members,
        });
        self.socket_index.insert((ifindex, family), idx);
    }

    pub(super) fn close_sockets_of(&mut self, ifindex: u32) {
        for family in [Family::V4, Family::V6] {
            if let Some(idx) = self.socket_index.remove(&(ifindex, family)) {
                if let Some(slot) = self.sockets[idx].take() {
                    let fd = slot.socket.raw_fd();
                    let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
                }
            }
        }
    }

    /// Reads every VRRP socket (each up to its budget), e.g. after a stall.
    pub(super) fn drain_all_sockets(&mut self) {
        self.sockets_with_backlog.clear();
        for idx in 0..self.sockets.len() {
            self.on_socket_readable(idx);
        }
    }

    /// Reads the sockets whose previous drain stopped at the budget.
    pub(super) fn drain_backlog(&mut self) {
        for idx in std::mem::take(&mut self.sockets_with_backlog) {
            self.on_socket_readable(idx);
        }
    }

    /// Reads up to [`SOCKET_BUDGET`] datagrams from socket `idx` and feeds them to their
    /// instances; a socket with more queued is remembered for the next turn (mio is
    /// edge-triggered: no new event would come for data already queued).
    pub(super) fn on_socket_readable(&mut self, idx: usize) {
        let mut buf = std::mem::take(&mut self.rx_buf);
        let mut budget = SOCKET_BUDGET;
        while let Some(slot) = self.sockets.get(idx).and_then(|s| s.as_ref()) {
            if budget == 0 {
                self.loop_stats.budget_exhausted += 1;
                if !self.sockets_with_backlog.contains(&idx) {
                    self.sockets_with_backlog.push(idx);
                }
                break;
            }
            budget -= 1;
            let datagram = match slot.socket.recv(&mut buf) {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    debug!("receiving on VRRP socket failed: {e}");
                    break;
                }
            };
            let family = slot.socket.family();
            let len = datagram.len.min(buf.len());
            // `slot` borrows `self.sockets` only, disjoint from `self.instances`: no copy of
            // the member list per datagram.
            match instance::demux(
                &mut self.instances,
                &slot.instances,
                family,
                &buf[..len],
                datagram.v6_meta,
            ) {
                Ok(Some((i, advert))) => {
                    // Timers count from the advert's arrival, not from when the loop got to
                    // it: a backup that was a little slow to read still orders itself by
                    // priority. An advert older than the stall threshold (the loop was frozen
                    // or flooded; the rest of the queue may not be read this turn) counts as
                    // heard now: later is the safe side for a Master_Down timer.
                    let now = Instant::now();
                    let at = if datagram.age <= STALL_THRESHOLD {
                        now.checked_sub(datagram.age).unwrap_or(now)
                    } else {
                        now
                    };
                    self.feed(i, Input::Advert(advert), at)
                }
                Ok(None) => {}
                Err(reason) => debug!("dropped a VRRP packet: {reason}"),
            }
        }
        self.rx_buf = buf;
    }
}
