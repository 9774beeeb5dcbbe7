//! The daemon's view of the host's interfaces and addresses, kept current from netlink dumps
//! and events, and the source-address choice for adverts (IPv4 primary, IPv6 link-local).
use std::collections::HashMap;
use std::net::IpAddr;

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
    /// Replaces the whole table with a fresh dump.
    pub fn reset(&mut self, links: Vec<LinkInfo>, addrs: Vec<AddrInfo>) {
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
                if let Some(iface) = self.by_index.get_mut(&a.ifindex) {
                    iface.addrs.retain(|x| x.addr != a.addr);
                    iface.addrs.push(a.clone());
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

    /// The address adverts are sent from: for IPv4 the first address on the interface that is
    /// neither a VIP nor one Relevo added; for IPv6 the non-tentative link-local address.
    pub fn source_address(&self, ifindex: u32, v6: bool, vips: &[IpAddr]) -> Option<IpAddr> {
        let iface = self.by_index.get(&ifindex)?;
        iface
            .addrs
            .iter()
            .filter(|a| !a.tentative && a.proto != RELEVO_ADDR_PROTO && !vips.contains(&a.addr))
            .map(|a| a.addr)
            .find(|addr| match addr {
                IpAddr::V4(_) => !v6,
                IpAddr::V6(a) => v6 && (a.segments()[0] & 0xffc0) == 0xfe80,
            })
    }

    /// Addresses on `ifindex` equal to one of `vips`, with the IFA_PROTO each carries.
    pub fn present_vips<'a>(
        &'a self,
        ifindex: u32,
        vips: &'a [IpAddr],
    ) -> impl Iterator<Item = &'a AddrInfo> + 'a {
        self.by_index
            .get(&ifindex)
            .into_iter()
            .flat_map(|i| i.addrs.iter())
            .filter(move |a| vips.contains(&a.addr))
    }
}
