//! A flood of invalid VRRP adverts from the lab's client namespace, for the flood test and
//! benchmark: higher-priority adverts with a wrong checksum, sent back to back on the segment
//! for a bounded time, each of which the daemons must drop without a state change or a late
//! advert of their own.
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};

use super::netns::{in_netns, Lab};
use crate::wire::vrrp::{AdvertRepr, V2Auth};
use crate::wire::{V3Ipv4Checksum, VrrpVersion};

/// What a flood sent.
#[derive(Debug, Clone, Copy)]
pub struct FloodReport {
    pub sent: u64,
    pub elapsed: Duration,
}

impl FloodReport {
    pub fn rate_per_second(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Sends priority-200 VRRPv3 adverts for `vrid` listing `vip`, with a corrupted checksum, to
/// 224.0.0.18 from the client namespace as fast as the socket takes them, for `duration`.
pub fn flood_bad_checksum(
    lab: &Lab,
    vrid: u8,
    vip: IpAddr,
    duration: Duration,
) -> Result<FloodReport> {
    let src = lab.client_ipv4();
    in_netns(&lab.client_ns(), move || {
        let sock = vrrp_socket(255)?;
        let group = Ipv4Addr::new(224, 0, 0, 18);
        let to = SocketAddrV4::new(group, 0).into();
        let addrs = [vip];
        let repr = AdvertRepr {
            version: VrrpVersion::V3,
            vrid,
            priority: 200,
            interval_cs: 1,
            auth: V2Auth::None,
            addrs: &addrs,
        };
        let mut frame = [0u8; 64];
        let len = repr.emit(
            IpAddr::V4(src),
            IpAddr::V4(group),
            V3Ipv4Checksum::PseudoHeader,
            &mut frame,
        )?;
        frame[6] ^= 0xff;
        let started = Instant::now();
        let mut sent = 0u64;
        while started.elapsed() < duration {
            for _ in 0..256 {
                if sock.send_to(&frame[..len], &to).is_ok() {
                    sent += 1;
                }
            }
        }
        Ok(FloodReport {
            sent,
            elapsed: started.elapsed(),
        })
    })
}

/// A raw IPv4 socket for VRRP (IP protocol 112) bound to `eth0` of the calling thread's
/// namespace (see [`in_netns`]), sending with IP TTL `ttl` to unicast and multicast
/// destinations alike (VRRP requires 255; anything else is a wrong advert).
pub fn vrrp_socket(ttl: u8) -> Result<Socket> {
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))
        .context("opening a raw VRRP socket")?;
    sock.bind_device(Some(b"eth0"))
        .context("binding the VRRP socket to eth0")?;
    sock.set_ttl_v4(u32::from(ttl))?;
    sock.set_multicast_ttl_v4(u32::from(ttl))?;
    Ok(sock)
}
