//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) for a set of
//! addresses out of one interface: shared by VRRP instances and cluster groups.
use std::io;
use std::net::IpAddr;

use super::packet_socket::PacketSocket;
use crate::wire::arp::emit_garp;
use crate::wire::nd::emit_unsolicited_na;
use crate::wire::MacAddr;

/// Sends one announcement per address from `mac` out of `ifindex` (NAs with the Router flag
/// when `na_router`), building each frame in `tx`. Every address is tried; the last error is
/// returned.
pub fn send_announcements(
    packet: &PacketSocket,
    ifindex: u32,
    mac: MacAddr,
    addrs: &[IpAddr],
    na_router: bool,
    tx: &mut [u8],
) -> io::Result<()> {
    let mut result = Ok(());
    for addr in addrs {
        let len = match addr {
            IpAddr::V4(ip) => emit_garp(mac, *ip, tx),
            IpAddr::V6(ip) => emit_unsolicited_na(mac, *ip, na_router, tx),
        }
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        if let Err(e) = packet.send(ifindex, &tx[..len]) {
            result = Err(e);
        }
    }
    result
}
