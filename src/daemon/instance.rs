//! One configured VRRP instance at run time: its config, its engine state machine, where it
//! lives (interface, source address), its packet counters, and the glue that
//! turns engine actions into frames (adverts, gratuitous ARP / unsolicited NA) and hook
//! requests. Also the demultiplexer that hands a received datagram to the right instance.
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::net::IpAddr;

use crate::config::{Family, VrrpConfig};
use crate::engine::announce::AnnounceParams;
use crate::engine::hook_queue::HookRequest;
use crate::engine::receive::AdvertFilter;
use crate::engine::vrrp::{AdvertIn, Instance, Params, Reason, State};
use crate::wire::ipv6::is_link_local;
use crate::wire::vrrp::{parse_ipv4_datagram, AdvertRepr, DropReason, V2Auth};

use super::announce::send_announcements;
use super::packet_socket::PacketSocket;
use super::vmac::VirtualMac;
use super::vrrp_socket::VrrpSocket;
use crate::wire::advert_frame::emit_advert_frame;

/// Largest frame Relevo builds (an advert with 255 IPv6 addresses is ~4 KiB).
const TX_BUFFER: usize = 8192;

pub struct InstanceRt {
    pub cfg: VrrpConfig,
    pub engine: Instance,
    pub family: Family,
    /// The interface's index while it exists.
    pub ifindex: Option<u32>,
    /// Last known link state (administratively up and carrier).
    pub link_up: bool,
    /// The receive-side protocol rules (engine layer).
    pub filter: AdvertFilter,
    /// Advert sends that failed in a row.
    pub send_failures: u32,
    /// An input produced while performing actions, fed once they are all done.
    pub pending_input: Option<crate::engine::vrrp::Input>,
    /// Whether unsolicited NAs carry the Router flag (IPv6 forwarding on the interface),
    /// read when the interface is bound, not per announcement.
    pub na_router_flag: bool,
    /// Virtual-MAC mode: the macvlan that holds the VIPs and the MAC adverts come from.
    pub vmac: Option<VirtualMac>,
    /// The master last followed (for "no advert from ... for ..." in the event history).
    pub last_master: Option<std::net::IpAddr>,
    counters: BTreeMap<&'static str, u64>,
    warned: HashSet<&'static str>,
    tx: Vec<u8>,
}

impl InstanceRt {
    pub fn new(cfg: VrrpConfig) -> Self {
        let family = cfg.family();
        let params = Params {
            version: cfg.version,
            vrid: cfg.vrid,
            priority: cfg.priority,
            advert_interval_cs: cfg.advert_interval_cs(),
            preempt: cfg.preempt,
            preempt_delay: cfg.preempt_delay,
            announce: AnnounceParams {
                repeat: cfg.announce.repeat,
                interval: cfg.announce.interval,
                delay: cfg.announce.delay,
                refresh: cfg.announce.refresh,
            },
            priority_step: crate::engine::vrrp::DEFAULT_PRIORITY_STEP,
        };
        let auth = match &cfg.auth_pass {
            Some(p) => V2Auth::from_password(p),
            None => V2Auth::None,
        };
        // The VIP addresses as adverts list them (the filter's copy is the only one): an IPv6
        // link-local VIP first (RFC 5798 §5.2.9), then config order (a stable sort).
        let mut vip_addrs: Vec<IpAddr> = cfg.vips.iter().map(|v| v.addr).collect();
        vip_addrs.sort_by_key(|addr| !is_link_local(addr));
        let filter = AdvertFilter::new(
            cfg.version,
            cfg.advert_interval_cs(),
            cfg.unicast_peers.clone(),
            auth,
            cfg.v3_ipv4_checksum,
            vip_addrs,
        );
        InstanceRt {
            filter,
            send_failures: 0,
            pending_input: None,
            engine: Instance::new(params),
            family,
            ifindex: None,
            link_up: false,
            na_router_flag: false,
            vmac: cfg
                .vmac_interface
                .as_deref()
                .map(|name| VirtualMac::new(name, cfg.vrid, family)),
            last_master: None,
            counters: BTreeMap::new(),
            warned: HashSet::new(),
            tx: vec![0; TX_BUFFER],
            cfg,
        }
    }

    /// Counts a dropped received packet.
    pub fn count_drop(&mut self, reason: DropReason) {
        *self.counters.entry(reason.as_str()).or_default() += 1;
    }

    /// Counts a failure to transmit.
    pub fn count_tx_error(&mut self, what: &'static str) {
        *self.counters.entry(what).or_default() += 1;
    }

    /// True the first time `what` is reported for this instance (to log it once).
    pub fn warn_once(&mut self, what: &'static str) -> bool {
        self.warned.insert(what)
    }

    /// Packet counters by name (adverts sent/received, drops by reason, send failures).
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.counters
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }

    pub fn counters_summary(&self) -> String {
        self.counters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Builds and sends one advert from `src`: through the raw socket to the multicast group
    /// or every unicast peer, or in virtual-MAC mode as a whole frame from the virtual MAC out
    /// of the parent interface (`packet`, `ifindex`).
    pub fn send_advert(
        &mut self,
        socket: &VrrpSocket,
        packet: &PacketSocket,
        src: IpAddr,
        priority: u8,
    ) -> io::Result<()> {
        let repr = AdvertRepr {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            interval_cs: self.cfg.advert_interval_cs(),
            auth: self.filter.auth,
            addrs: &self.filter.vips,
        };
        let invalid =
            |e: crate::wire::EmitError| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
        let mut result = Ok(());
        if let Some(vmac) = &self.vmac {
            let len = emit_advert_frame(
                &repr,
                vmac.mac,
                src,
                self.cfg.v3_ipv4_checksum,
                &mut self.tx,
            )
            .map_err(invalid)?;
            result = packet.send(socket.ifindex(), &self.tx[..len]);
        } else {
            let group = self.family.vrrp_multicast();
            let peers: &[IpAddr] = if self.cfg.unicast_peers.is_empty() {
                std::slice::from_ref(&group)
            } else {
                &self.cfg.unicast_peers
            };
            for &dst in peers {
                let len = repr
                    .emit(src, dst, self.cfg.v3_ipv4_checksum, &mut self.tx)
                    .map_err(invalid)?;
                if let Err(e) = socket.send(src, dst, &self.tx[..len]) {
                    result = Err(e);
                }
            }
        }
        if result.is_ok() {
            *self.counters.entry("adverts_sent").or_default() += 1;
        }
        result
    }

    /// Sends one gratuitous ARP (IPv4) or unsolicited NA (IPv6) per VIP.
    pub fn announce(
        &mut self,
        packet: &PacketSocket,
        ifindex: u32,
        mac: [u8; 6],
    ) -> io::Result<()> {
        let router = self.na_router_flag;
        send_announcements(
            packet,
            ifindex,
            mac,
            &self.filter.vips,
            router,
            &mut self.tx,
        )
    }

    /// The hook to run for a transition, if the operator configured one.
    pub fn hook_request(
        &self,
        owner: usize,
        from: State,
        to: State,
        reason: &Reason,
        node: &str,
    ) -> Option<HookRequest> {
        let (event, argv) = match to {
            State::Master => ("master", &self.cfg.hooks.master),
            State::Backup => ("backup", &self.cfg.hooks.backup),
            State::Fault => ("fault", &self.cfg.hooks.fault),
            State::Initialize if from != State::Initialize => ("stop", &self.cfg.hooks.stop),
            State::Initialize => return None,
        };
        let argv = argv.clone()?;
        let vips = self
            .cfg
            .vips
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let env = vec![
            ("RELEVO_EVENT".to_string(), event.to_string()),
            ("RELEVO_NAME".to_string(), self.cfg.name.clone()),
            ("RELEVO_STATE".to_string(), to.as_str().to_string()),
            ("RELEVO_PREV_STATE".to_string(), from.as_str().to_string()),
            ("RELEVO_REASON".to_string(), reason.code().to_string()),
            (
                "RELEVO_PEER".to_string(),
                reason.peer().map(|p| p.to_string()).unwrap_or_default(),
            ),
            ("RELEVO_NODE".to_string(), node.to_string()),
            ("RELEVO_VIPS".to_string(), vips),
            ("RELEVO_INTERFACE".to_string(), self.cfg.interface.clone()),
            ("RELEVO_VRID".to_string(), self.cfg.vrid.to_string()),
        ];
        Some(HookRequest::new(
            owner,
            event,
            argv,
            env,
            self.cfg.hook_timeout,
        ))
    }
}

/// Whether IPv6 forwarding is on for `ifname`: unsolicited NAs then carry the Router flag, so
/// hosts that use the VIP as their default gateway keep it in their router list.
pub fn ipv6_forwarding(ifname: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{ifname}/forwarding"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// Hands one received datagram to the instance it is for. Returns the instance and the
/// validated advert, `Ok(None)` when an instance dropped (and counted) it, or the reason when
/// no instance could even be identified.
pub fn demux(
    instances: &mut [InstanceRt],
    members: &[usize],
    family: Family,
    bytes: &[u8],
    v6_meta: Option<(std::net::Ipv6Addr, std::net::Ipv6Addr, u8)>,
) -> Result<Option<(usize, AdvertIn)>, DropReason> {
    let (src, dst, ttl, payload) = match family {
        Family::V4 => {
            let m = parse_ipv4_datagram(bytes)?;
            (IpAddr::V4(m.src), IpAddr::V4(m.dst), m.ttl, m.payload)
        }
        Family::V6 => {
            let (s, d, h) = v6_meta.ok_or(DropReason::BadIpHeader)?;
            (IpAddr::V6(s), IpAddr::V6(d), h, bytes)
        }
    };
    let vrid = *payload.get(1).ok_or(DropReason::Truncated)?;
    let i = members
        .iter()
        .copied()
        .find(|&i| instances.get(i).map(|x| x.cfg.vrid) == Some(vrid))
        .ok_or(DropReason::VridUnknown)?;
    let inst = &mut instances[i];
    match inst.filter.check(src, dst, ttl, payload) {
        Ok(advert) => {
            *inst.counters.entry("adverts_received").or_default() += 1;
            Ok(Some((i, advert)))
        }
        Err(verdict) => {
            inst.count_drop(verdict.reason);
            if verdict.first_from_sender {
                // The peer's address is printed with Display (never a shell, never raw bytes).
                tracing::warn!(
                    instance = %inst.cfg.name,
                    "adverts from {src} list other addresses than this instance's VIPs: \
                     dropped (RFC 5798 §7.1); check both routers' vips"
                );
            }
            Ok(None)
        }
    }
}
