//! The daemon's view of the host's interfaces and addresses, kept current from netlink
//! snapshots and events, and the source-address choice for adverts (IPv4 primary, IPv6
//! link-local).
use std::collections::HashMap;
use std::net::IpAddr;

use crate::wire::ipv6::is_link_local;

use super::netlink::{AddrInfo, LinkInfo, NetEvent, RELEVO_ADDR_PROTO};

/// One interface as last reported by the kernel.
#[derive(Debug, Clone)]
pub struct Iface {
    pub link: LinkInfo,
    pub addrs: Vec<AddrInfo>,
}

/// All interfaces, by ifindex.
#[derive(Debug, Default)]
pub struct Interfaces {
    by_index: HashMap<u32, Iface>,
}

impl Interfaces {
    /// Replaces the whole table with a snapshot and returns the links that were known before
    /// but are not in it (by ifindex), ordered by ifindex: they vanished while events were
    /// lost, and whoever used them must treat them as removed. An interface deleted and
    /// created again under the same name is among them with its old ifindex; the snapshot
    /// holds it under the new one.
    pub fn reset(&mut self, links: Vec<LinkInfo>, addrs: Vec<AddrInfo>) -> Vec<LinkInfo> {
        let old = std::mem::take(&mut self.by_index);
        self.by_index = links
            .into_iter()
            .map(|link| {
                (
                    link.ifindex,
                    Iface {
                        link,
                        addrs: Vec::new(),
                    },
                )
            })
            .collect();
        for a in addrs {
            if let Some(iface) = self.by_index.get_mut(&a.ifindex) {
                iface.addrs.push(a);
            }
        }
        let mut vanished: Vec<LinkInfo> = old
            .into_values()
            .filter(|iface| !self.by_index.contains_key(&iface.link.ifindex))
            .map(|iface| iface.link)
            .collect();
        vanished.sort_by_key(|link| link.ifindex);
        vanished
    }

    /// Applies one netlink event.
    pub fn apply(&mut self, event: &NetEvent) {
        match event {
            NetEvent::Link(link) => {
                let entry = self.by_index.entry(link.ifindex).or_insert_with(|| Iface {
                    link: link.clone(),
                    addrs: Vec::new(),
                });
                entry.link = link.clone();
            }
            NetEvent::LinkRemoved { ifindex, .. } => {
                self.by_index.remove(ifindex);
            }
            NetEvent::AddrAdded(a) => {
                // A changed address (lifetime refreshed, DAD done) keeps its place: "the
                // first primary address" of source_address is the kernel's order.
                if let Some(iface) = self.by_index.get_mut(&a.ifindex) {
                    match iface.addrs.iter_mut().find(|x| x.addr == a.addr) {
                        Some(known) => *known = a.clone(),
                        None => iface.addrs.push(a.clone()),
                    }
                }
            }
            NetEvent::AddrRemoved(a) => {
                if let Some(iface) = self.by_index.get_mut(&a.ifindex) {
                    iface.addrs.retain(|x| x.addr != a.addr);
                }
            }
            _ => {}
        }
    }

    pub fn by_name(&self, name: &str) -> Option<&Iface> {
        self.by_index.values().find(|i| i.link.name == name)
    }

    pub fn get(&self, ifindex: u32) -> Option<&Iface> {
        self.by_index.get(&ifindex)
    }

    /// The address adverts are sent from, never one of `vips` nor one Relevo added (stamped
    /// with [`RELEVO_ADDR_PROTO`]): for IPv4 the first primary (non-secondary) address of the
    /// interface; for IPv6 a link-local (`fe80::/10`) address whose duplicate address detection
    /// has neither failed nor is still running.
    pub fn source_address(&self, ifindex: u32, v6: bool, vips: &[IpAddr]) -> Option<IpAddr> {
        let iface = self.by_index.get(&ifindex)?;
        iface
            .addrs
            .iter()
            .filter(|a| a.proto != RELEVO_ADDR_PROTO && !vips.contains(&a.addr))
            .find(|a| match a.addr {
                IpAddr::V4(_) => !v6 && !a.secondary,
                IpAddr::V6(_) => v6 && is_link_local(&a.addr) && !a.tentative && !a.dad_failed,
            })
            .map(|a| a.addr)
    }

    /// `addr` as configured on `ifindex`, if it is (with its flags, lifetime and protocol).
    pub fn has_address(&self, ifindex: u32, addr: IpAddr) -> Option<&AddrInfo> {
        self.by_index
            .get(&ifindex)?
            .addrs
            .iter()
            .find(|a| a.addr == addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(ifindex: u32, name: &str) -> LinkInfo {
        LinkInfo {
            ifindex,
            name: name.into(),
            up: true,
            mac: None,
        }
    }

    fn addr(ifindex: u32, text: &str) -> AddrInfo {
        AddrInfo {
            ifindex,
            addr: text.parse().unwrap(),
            prefix_len: if text.contains(':') { 64 } else { 24 },
            proto: 0,
            tentative: false,
            secondary: false,
            dad_failed: false,
            valid_lifetime: None,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn reset_reports_vanished_links_and_follows_recreated_ones() {
        let mut ifaces = Interfaces::default();
        let vanished = ifaces.reset(
            vec![
                link(1, "lo"),
                link(4, "eth0"),
                link(5, "eth1"),
                link(6, "eth2"),
            ],
            vec![addr(4, "192.0.2.1"), addr(5, "198.51.100.1")],
        );
        assert!(vanished.is_empty());
        // eth1 was deleted; eth0 was deleted and created again (new ifindex 9); eth2 stayed.
        let vanished = ifaces.reset(
            vec![link(1, "lo"), link(6, "eth2"), link(9, "eth0")],
            vec![addr(9, "192.0.2.1"), addr(77, "192.0.2.2")],
        );
        assert_eq!(vanished, vec![link(4, "eth0"), link(5, "eth1")]);
        assert_eq!(ifaces.by_name("eth0").map(|i| i.link.ifindex), Some(9));
        assert!(ifaces.by_name("eth1").is_none() && ifaces.get(4).is_none());
        assert!(ifaces.has_address(9, ip("192.0.2.1")).is_some());
        assert!(ifaces.has_address(4, ip("192.0.2.1")).is_none());
        // An address of a link the snapshot does not have is dropped.
        assert!(ifaces.get(77).is_none());
        assert!(ifaces.reset(vec![], vec![]).len() == 3);
    }

    /// A table holding only eth0 (ifindex 4), with `addrs`.
    fn eth0_with(addrs: Vec<AddrInfo>) -> Interfaces {
        let mut ifaces = Interfaces::default();
        ifaces.reset(vec![link(4, "eth0")], addrs);
        ifaces
    }

    /// `text` on eth0, changed by `set`.
    fn addr_with(text: &str, set: impl FnOnce(&mut AddrInfo)) -> AddrInfo {
        let mut info = addr(4, text);
        set(&mut info);
        info
    }

    #[test]
    fn ipv4_source_is_the_first_primary_address_that_is_not_a_vip() {
        let mut ifaces = eth0_with(vec![
            addr(4, "2001:db8::1"),
            addr_with("192.0.2.2", |a| a.secondary = true),
            addr_with("198.51.100.5", |a| a.proto = RELEVO_ADDR_PROTO),
            addr(4, "192.0.2.10"),
            addr(4, "192.0.2.1"),
        ]);
        assert_eq!(ifaces.source_address(4, false, &[]), Some(ip("192.0.2.10")));
        assert_eq!(
            ifaces.source_address(4, false, &[ip("192.0.2.10")]),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(
            ifaces.source_address(4, false, &[ip("192.0.2.10"), ip("192.0.2.1")]),
            None
        );
        assert_eq!(ifaces.source_address(5, false, &[]), None);
        // A refresh of the first primary (a new lifetime) does not demote it behind the others.
        ifaces.apply(&NetEvent::AddrAdded(addr_with("192.0.2.10", |a| {
            a.valid_lifetime = Some(60)
        })));
        assert_eq!(ifaces.source_address(4, false, &[]), Some(ip("192.0.2.10")));
    }

    #[test]
    fn ipv6_source_is_a_usable_link_local_address() {
        let mut ifaces = eth0_with(vec![
            addr(4, "192.0.2.1"),
            addr(4, "2001:db8::1"),
            addr_with("fe80::1", |a| a.tentative = true),
            addr_with("fe80::2", |a| a.dad_failed = true),
            addr(4, "fe80::3"),
            addr(4, "fe80::4"),
        ]);
        assert_eq!(
            ifaces.source_address(4, true, &[ip("fe80::3")]),
            Some(ip("fe80::4"))
        );
        assert_eq!(
            ifaces.source_address(4, true, &[ip("fe80::4")]),
            Some(ip("fe80::3"))
        );
        assert_eq!(
            ifaces.source_address(4, true, &[ip("fe80::3"), ip("fe80::4")]),
            None
        );
        // Once DAD finishes the address becomes usable (an AddrAdded with the new flags).
        let mut done = addr(4, "fe80::1");
        done.valid_lifetime = Some(60);
        ifaces.apply(&NetEvent::AddrAdded(done.clone()));
        assert_eq!(
            ifaces.source_address(4, true, &[ip("fe80::3"), ip("fe80::4")]),
            Some(ip("fe80::1"))
        );
        assert_eq!(ifaces.has_address(4, ip("fe80::1")), Some(&done));
    }
}
