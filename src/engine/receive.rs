//! Receive-side protocol rules for one VRRP instance, sans-I/O: everything that decides whether
//! a datagram that reached the instance's VRID is an advert the state machine may see.
//!
//! The daemon hands over the bytes and the IP metadata (source, destination, TTL / hop limit);
//! [`AdvertFilter::check`] applies, in order, RFC 5798 §7.1 / RFC 3768 §7.1:
//! TTL 255 and, for IPv6, a link-local source (§5.1.2.1) for multicast; for unicast, the peer
//! list instead (unicast adverts may cross a router, so their TTL is not checked);
//! the wire checks (length, type, checksum under the configured v3/IPv4 policy); the configured
//! version; for v2 the authentication data and the advertisement interval; and the address
//! list, which must match the configured VIPs (count and addresses, in any order) unless the
//! sender is the address owner (priority 255). It returns the [`AdvertIn`] the engine takes,
//! or the [`DropReason`] to count.
//!
//! An address-list mismatch is a configuration error between routers; it is logged once per
//! sender ([`Verdict::first_from_sender`]), with the set of senders bounded so a flood of
//! forged sources cannot grow memory.
use std::collections::HashSet;
use std::net::IpAddr;

use crate::engine::vrrp::{AdvertIn, OWNER_PRIORITY};
use crate::wire::ipv6::is_link_local;
use crate::wire::vrrp::{check_ttl, parse_advert, DropReason, V2Auth};
use crate::wire::{V3Ipv4Checksum, VrrpVersion};

/// Senders remembered for "log once per sender"; beyond this every mismatch is reported as new.
const MAX_REMEMBERED_SENDERS: usize = 256;

/// What an instance accepts.
#[derive(Debug, Clone)]
pub struct AdvertFilter {
    pub version: VrrpVersion,
    /// Own advertisement interval in centiseconds (v2 adverts must carry the same).
    pub interval_cs: u16,
    /// Empty = multicast: any sender.
    pub unicast_peers: Vec<IpAddr>,
    /// v2 authentication expected on every advert.
    pub auth: V2Auth,
    pub checksum: V3Ipv4Checksum,
    /// The configured VIPs, in the order adverts list them; an advert received must list
    /// exactly these (in any order).
    pub vips: Vec<IpAddr>,
    /// Senders already reported for an address-list mismatch.
    mismatch_senders: HashSet<IpAddr>,
}

/// A dropped datagram: why, and whether this is the first time this sender caused this
/// reason (for the rules that log once per sender).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub reason: DropReason,
    pub first_from_sender: bool,
}

impl AdvertFilter {
    pub fn new(
        version: VrrpVersion,
        interval_cs: u16,
        unicast_peers: Vec<IpAddr>,
        auth: V2Auth,
        checksum: V3Ipv4Checksum,
        vips: Vec<IpAddr>,
    ) -> Self {
        AdvertFilter {
            version,
            interval_cs,
            unicast_peers,
            auth,
            checksum,
            vips,
            mismatch_senders: HashSet::new(),
        }
    }

    /// Applies every receive rule to one VRRP payload (`payload` starts at the VRRP header).
    pub fn check(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        payload: &[u8],
    ) -> Result<AdvertIn, Verdict> {
        let plain = |reason| Verdict {
            reason,
            first_from_sender: false,
        };
        if self.unicast_peers.is_empty() {
            check_ttl(ttl).map_err(plain)?;
        } else if !self.unicast_peers.contains(&src) {
            // Unicast adverts may cross a router (TTL 254 or less): the peer list is the
            // check that replaces the link-local TTL 255 rule, as in keepalived.
            return Err(plain(DropReason::UnknownPeer));
        }
        // Multicast IPv6 adverts come from a link-local address; unicast peers are checked by
        // address above instead (unicast is outside the RFC and peers may use global ones).
        if self.unicast_peers.is_empty() && src.is_ipv6() && !is_link_local(&src) {
            return Err(plain(DropReason::SourceNotLinkLocal));
        }
        let view = parse_advert(payload, src, dst, self.checksum).map_err(plain)?;
        if view.version() != self.version {
            return Err(plain(DropReason::VersionMismatch));
        }
        if self.version == VrrpVersion::V2 {
            if !self.auth.matches(&view) {
                return Err(plain(DropReason::AuthMismatch));
            }
            if view.interval_cs() != self.interval_cs {
                return Err(plain(DropReason::IntervalMismatch));
            }
        }
        if view.priority() != OWNER_PRIORITY && !self.same_addresses(view.addrs()) {
            let first_from_sender = self.mismatch_senders.len() >= MAX_REMEMBERED_SENDERS
                || self.mismatch_senders.insert(src);
            return Err(Verdict {
                reason: DropReason::AddressListMismatch,
                first_from_sender,
            });
        }
        Ok(AdvertIn {
            src,
            priority: view.priority(),
            interval_cs: view.interval_cs(),
        })
    }

    /// The advert lists exactly the configured VIPs: same count, every one of ours present
    /// (the configuration has no duplicates, so equal count + inclusion is set equality
    /// unless the advert repeats an address, which the count then exposes).
    fn same_addresses(&self, listed: impl Iterator<Item = IpAddr> + Clone) -> bool {
        listed.clone().count() == self.vips.len()
            && self
                .vips
                .iter()
                .all(|vip| listed.clone().any(|a| a == *vip))
            && listed.clone().all(|a| self.vips.contains(&a))
    }
}
