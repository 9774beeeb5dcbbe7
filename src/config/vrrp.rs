//! `[[vrrp]]` instances: every key of one instance, the rules that tie its keys together
//! (version vs. family vs. interval, checksum and auth applicability), and the rules across
//! instances (unique names, unique interface + vrid + family). The VIP text and interface name
//! rules are shared with `[[group]]`, and [`check_unique_vips`] keeps every VIP in one instance
//! or group.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use super::duration::HOUR;
use super::hooks::read_hooks;
use super::node::read_name;
use super::reader::{Diags, Later, Table, Value};
use super::types::{AnnounceConfig, Family, Vip, VrrpConfig};
use crate::wire::ipv6::is_link_local;
use crate::wire::{V3Ipv4Checksum, VrrpVersion};

pub(crate) const KEYS: &[&str] = &[
    "name",
    "interface",
    "vrid",
    "priority",
    "version",
    "advert_interval",
    "preempt",
    "preempt_delay",
    "vips",
    "unicast_peers",
    "v3_ipv4_checksum",
    "quorum_gated",
    "auth_pass",
    "hooks",
    "hook_timeout",
    "garp_repeat",
    "garp_interval",
    "garp_delay",
    "garp_refresh",
    "source_address",
    "vip_lease",
    "virtual_mac",
    "vmac_interface",
    "track",
];

pub(crate) const LATER: &[Later] = &[Later {
    key: "accept_mode",
    message: "`accept_mode`; remove it",
}];

const NO_INSTANCE: &str =
    "no [[vrrp]] instance is configured; add at least one (or a [cluster] with [[group]]s)";

/// Linux `IFNAMSIZ` minus the terminating NUL.
const MAX_INTERFACE_LEN: usize = 15;
/// The advert's address count is one byte.
const MAX_VIPS_V4: usize = 255;
/// 40-byte IPv6 header + 8-byte VRRP header + 16 bytes per address within the 1280-byte IPv6 minimum MTU.
const MAX_VIPS_V6: usize = (1280 - 40 - 8) / 16;
/// VRRPv3 interval field: 12 bits of centiseconds.
const MAX_V3_INTERVAL: Duration = Duration::from_millis(40_950);
/// VRRPv2 interval field: 8 bits of seconds.
const MAX_V2_INTERVAL: Duration = Duration::from_secs(255);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A VIP where it was written and who holds it, for [`check_unique_vips`].
pub(crate) struct VipUse {
    pub addr: IpAddr,
    pub at: Range<usize>,
    /// `instance "web"`, `group "db"`.
    pub owner: String,
}

/// An instance as read, with the spans the cross-instance checks point at.
struct Instance {
    config: VrrpConfig,
    name_at: Option<Range<usize>>,
    /// Span of `vrid`, set only when interface, vrid and VIPs are all valid.
    router_at: Option<Range<usize>>,
    /// Span of each entry of `config.vips`.
    vip_at: Vec<Range<usize>>,
    /// Span of `virtual_mac` (or `vmac_interface`) when virtual-MAC mode is on.
    vmac_at: Option<Range<usize>>,
}

/// Reads the top-level `vrrp` value (an array of tables), checks every instance and the
/// rules across instances; returns the instances and their VIPs for [`check_unique_vips`].
/// Without a `[cluster]` (`has_cluster`) at least one instance is required.
pub(crate) fn read_instances(
    diags: &mut Diags,
    value: Option<&Value<'_>>,
    has_cluster: bool,
    tracks: Option<&[String]>,
) -> (Vec<VrrpConfig>, Vec<VipUse>) {
    let Some(value) = value else {
        if !has_cluster {
            diags.error(&(0..0), NO_INSTANCE);
        }
        return (Vec::new(), Vec::new());
    };
    let Some(items) = value.get_ref().as_array() else {
        let message = "`vrrp` must be an array of tables: write [[vrrp]] (double brackets) before each instance";
        diags.error(&value.span(), message);
        return (Vec::new(), Vec::new());
    };
    if items.is_empty() && !has_cluster {
        diags.error(&value.span(), NO_INSTANCE);
    }
    let mut instances = Vec::new();
    for item in items {
        if let Some(table) = diags.table("vrrp", "[[vrrp]]", item) {
            instances.push(read_instance(diags, &table, has_cluster, tracks));
        }
    }
    check_unique_names(diags, &instances);
    check_unique_routers(diags, &instances);
    check_vmac_interfaces(diags, &instances);
    let vip_uses = instances
        .iter()
        .flat_map(|instance| {
            let owner = format!("instance \"{}\"", instance.config.name);
            let vips = instance.config.vips.iter().zip(&instance.vip_at);
            vips.map(move |(vip, at)| VipUse {
                addr: vip.addr,
                at: at.clone(),
                owner: owner.clone(),
            })
        })
        .collect();
    let configs = instances
        .into_iter()
        .map(|instance| instance.config)
        .collect();
    (configs, vip_uses)
}

fn read_instance(
    diags: &mut Diags,
    table: &Table<'_, '_>,
    has_cluster: bool,
    tracks: Option<&[String]>,
) -> Instance {
    table.check_keys(diags, KEYS, LATER);
    let name_value = table.required(diags, "name");
    let name = name_value.and_then(|value| read_name(diags, "instance `name`", value));
    let interface = table
        .required(diags, "interface")
        .and_then(|value| read_interface(diags, value));
    let vrid_value = table.required(diags, "vrid");
    let vrid = vrid_value.and_then(|value| diags.integer("vrid", value, 1..=255));
    let version = match table.get("version") {
        Some(value) => read_version(diags, value),
        None => Some(VrrpVersion::V3),
    };
    let (vips, vip_at) = match table.required(diags, "vips") {
        Some(value) => read_vips(diags, value),
        None => (Vec::new(), Vec::new()),
    };
    let family = vips.first().map(|vip| family_of(&vip.addr));
    check_version_family(diags, table, version, family);

    let mut config = VrrpConfig {
        name: name.clone().unwrap_or_default(),
        interface: interface.clone().unwrap_or_default(),
        vrid: vrid.and_then(|vrid| u8::try_from(vrid).ok()).unwrap_or(0),
        priority: integer_or(diags, table, "priority", 1..=255, 100),
        version: version.unwrap_or(VrrpVersion::V3),
        advert_interval: read_advert_interval(diags, table, version),
        preempt: table
            .get("preempt")
            .and_then(|v| diags.boolean("preempt", v))
            .unwrap_or(true),
        preempt_delay: duration_or(
            diags,
            table,
            "preempt_delay",
            Duration::ZERO..=HOUR,
            Duration::ZERO,
        ),
        unicast_peers: Vec::new(),
        v3_ipv4_checksum: read_checksum(diags, table, version, family),
        auth_pass: read_auth_pass(diags, table, version),
        hooks: table
            .get("hooks")
            .map(|v| read_hooks(diags, v))
            .unwrap_or_default(),
        hook_timeout: duration_or(
            diags,
            table,
            "hook_timeout",
            Duration::from_secs(1)..=HOUR,
            Duration::from_secs(30),
        ),
        announce: read_announce(diags, table),
        source_address: None,
        vip_lease: read_vip_lease(diags, table),
        vmac_interface: None,
        quorum_gated: read_quorum_gated(diags, table, has_cluster),
        track: super::track::read_refs(diags, table, tracks),
        vips,
    };
    if let Some(value) = table.get("unicast_peers") {
        config.unicast_peers = read_peers(diags, value, family, &config.vips);
    }
    if let Some(value) = table.get("source_address") {
        let unicast = !config.unicast_peers.is_empty();
        config.source_address = read_source_address(diags, value, family, &config.vips, unicast);
    }
    if family == Some(Family::V6) && !config.vips.iter().any(|vip| is_link_local(&vip.addr)) {
        if let Some(value) = table.get("vips") {
            diags.warn(
                &value.span(),
                "IPv6 instance without a link-local VIP (fe80::/10): RFC 5798 §5.2.9 expects one \
                 first in every advert, and hosts use it as their default router; add one",
            );
        }
    }
    let (vmac_interface, vmac_at) = read_virtual_mac(diags, table, &config, family);
    config.vmac_interface = vmac_interface;
    let router_ok = interface.is_some() && vrid.is_some() && family.is_some();
    Instance {
        config,
        vmac_at,
        name_at: name.and(name_value.map(|value| value.span())),
        router_at: vrid_value.filter(|_| router_ok).map(|value| value.span()),
        vip_at,
    }
}

/// `quorum_gated`: only meaningful with a `[cluster]`, which decides quorum.
fn read_quorum_gated(diags: &mut Diags, table: &Table<'_, '_>, has_cluster: bool) -> bool {
    let Some(value) = table.get("quorum_gated") else {
        return false;
    };
    let gated = diags.boolean("quorum_gated", value).unwrap_or(false);
    if gated && !has_cluster {
        let message = "`quorum_gated` needs a [cluster] table (quorum comes from cluster \
                       membership); add one or remove the key";
        diags.error(&value.span(), message);
    }
    gated
}

fn integer_or(
    diags: &mut Diags,
    table: &Table<'_, '_>,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
    default: u8,
) -> u8 {
    table
        .get(key)
        .and_then(|value| diags.integer(key, value, range))
        .and_then(|number| u8::try_from(number).ok())
        .unwrap_or(default)
}

fn duration_or(
    diags: &mut Diags,
    table: &Table<'_, '_>,
    key: &str,
    range: std::ops::RangeInclusive<Duration>,
    default: Duration,
) -> Duration {
    table
        .get(key)
        .and_then(|value| diags.duration(key, value, *range.start(), *range.end()))
        .unwrap_or(default)
}

fn family_of(addr: &IpAddr) -> Family {
    if addr.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    }
}

/// A Linux interface name (`interface`, `vmac_interface`, a group VIP's `interface`).
pub(crate) fn read_interface(diags: &mut Diags, value: &Value<'_>) -> Option<String> {
    let name = diags.string("interface", value)?;
    let problem = if name.is_empty() {
        Some("must not be empty".to_string())
    } else if name.len() > MAX_INTERFACE_LEN {
        Some(format!(
            "\"{name}\" is longer than {MAX_INTERFACE_LEN} bytes (Linux IFNAMSIZ)"
        ))
    } else if name == "."
        || name == ".."
        || name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        Some(format!(
            "\"{}\" is not a valid Linux interface name",
            name.escape_debug()
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => {
            diags.error(&value.span(), format!("`interface` {problem}"));
            None
        }
        None => Some(name.to_string()),
    }
}

fn read_version(diags: &mut Diags, value: &Value<'_>) -> Option<VrrpVersion> {
    match diags.integer("version", value, 2..=3)? {
        2 => Some(VrrpVersion::V2),
        _ => Some(VrrpVersion::V3),
    }
}

/// VRRPv2 exists only for IPv4.
fn check_version_family(
    diags: &mut Diags,
    table: &Table<'_, '_>,
    version: Option<VrrpVersion>,
    family: Option<Family>,
) {
    if version == Some(VrrpVersion::V2) && family == Some(Family::V6) {
        if let Some(value) = table.get("version") {
            let message = "VRRPv2 (RFC 3768) is IPv4 only but the VIPs are IPv6; use version = 3";
            diags.error(&value.span(), message);
        }
    }
}

/// The `vips` array and the span of each accepted VIP.
fn read_vips(diags: &mut Diags, value: &Value<'_>) -> (Vec<Vip>, Vec<Range<usize>>) {
    let mut vips: Vec<Vip> = Vec::new();
    let mut spans = Vec::new();
    let Some(items) = diags.array("vips", value) else {
        return (vips, spans);
    };
    if items.is_empty() {
        diags.error(&value.span(), "`vips` must list at least one address");
    }
    for item in items {
        let Some(text) = diags.string("vips", item) else {
            continue;
        };
        let vip = match parse_vip(text) {
            Ok(vip) => vip,
            Err(why) => {
                diags.error(
                    &item.span(),
                    format!("invalid VIP \"{}\": {why}", text.escape_debug()),
                );
                continue;
            }
        };
        let problem = if let Some(first) = vips
            .first()
            .filter(|first| first.addr.is_ipv4() != vip.addr.is_ipv4())
        {
            Some(format!(
                "{} is {} but {} is {}; one instance carries one address family (use a second instance)",
                vip.addr,
                family_of(&vip.addr),
                first.addr,
                family_of(&first.addr)
            ))
        } else if vips.iter().any(|seen| seen.addr == vip.addr) {
            Some(format!("{} is listed twice", vip.addr))
        } else if is_link_local(&vip.addr) && vips.iter().any(|seen| is_link_local(&seen.addr)) {
            Some("only one link-local VIP per instance (it goes first in every advert)".to_string())
        } else {
            None
        };
        match problem {
            Some(problem) => diags.error(
                &item.span(),
                format!("invalid VIP \"{}\": {problem}", text.escape_debug()),
            ),
            None => {
                vips.push(vip);
                spans.push(item.span());
            }
        }
    }
    let max = if vips.first().is_some_and(|vip| vip.addr.is_ipv6()) {
        MAX_VIPS_V6
    } else {
        MAX_VIPS_V4
    };
    if vips.len() > max {
        let message = format!(
            "`vips` has {} addresses; at most {max} fit in one advertisement",
            vips.len()
        );
        diags.error(&value.span(), message);
    }
    (vips, spans)
}

/// A VIP written as text (`addr/len` or `addr`) whose address can be a VIP; the error says
/// why not, without the text itself. Shared with the VIPs of `[[group]]`.
pub(crate) fn parse_vip(text: &str) -> Result<Vip, String> {
    let vip = text.parse::<Vip>()?;
    match vip_address_problem(&vip.addr) {
        Some(problem) => Err(problem),
        None => Ok(vip),
    }
}

/// Why an address cannot be a VIP.
fn vip_address_problem(addr: &IpAddr) -> Option<String> {
    let what = match addr {
        _ if addr.is_unspecified() => "the unspecified address",
        _ if addr.is_loopback() => "a loopback address",
        _ if addr.is_multicast() => "a multicast address",
        IpAddr::V4(v4) if v4.is_broadcast() => "the broadcast address",
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => "an IPv4-mapped IPv6 address",
        _ => return None,
    };
    Some(format!("{addr} is {what}"))
}

fn read_advert_interval(
    diags: &mut Diags,
    table: &Table<'_, '_>,
    version: Option<VrrpVersion>,
) -> Duration {
    let default = Duration::from_secs(1);
    let Some(value) = table.get("advert_interval") else {
        return default;
    };
    let Some(interval) = diags.duration(
        "advert_interval",
        value,
        Duration::from_millis(10),
        MAX_V2_INTERVAL,
    ) else {
        return default;
    };
    let problem = match version {
        Some(VrrpVersion::V3) if interval.as_nanos() % 10_000_000 != 0 => {
            Some("must be a multiple of 10ms for VRRPv3 (the field counts centiseconds)")
        }
        Some(VrrpVersion::V3) if interval > MAX_V3_INTERVAL => {
            Some("must be at most 40.95s for VRRPv3")
        }
        Some(VrrpVersion::V2) if interval.subsec_nanos() != 0 || interval.is_zero() => {
            Some("must be whole seconds (1s to 255s) for VRRPv2")
        }
        _ => None,
    };
    match problem {
        Some(problem) => {
            let text = value.get_ref().as_str().unwrap_or_default();
            diags.error(
                &value.span(),
                format!("`advert_interval` {problem}, got \"{text}\""),
            );
            default
        }
        None => interval,
    }
}

fn read_checksum(
    diags: &mut Diags,
    table: &Table<'_, '_>,
    version: Option<VrrpVersion>,
    family: Option<Family>,
) -> V3Ipv4Checksum {
    let default = V3Ipv4Checksum::PseudoHeader;
    let Some(value) = table.get("v3_ipv4_checksum") else {
        return default;
    };
    let Some(text) = diags.string("v3_ipv4_checksum", value) else {
        return default;
    };
    let mode = match text {
        "pseudo-header" => default,
        "no-pseudo-header" => V3Ipv4Checksum::NoPseudoHeader,
        other => {
            let message = format!(
                "`v3_ipv4_checksum` must be \"pseudo-header\" or \"no-pseudo-header\", got \"{}\"",
                other.escape_debug()
            );
            diags.error(&value.span(), message);
            return default;
        }
    };
    let misplaced = if version == Some(VrrpVersion::V2) {
        Some("only applies to VRRPv3 (the VRRPv2 checksum never covers a pseudo-header); remove it")
    } else if family == Some(Family::V6) {
        Some("only applies to IPv4 instances (the IPv6 checksum always covers the pseudo-header); remove it")
    } else {
        None
    };
    if let Some(why) = misplaced {
        diags.error(&value.span(), format!("`v3_ipv4_checksum` {why}"));
    }
    mode
}

fn read_auth_pass(
    diags: &mut Diags,
    table: &Table<'_, '_>,
    version: Option<VrrpVersion>,
) -> Option<String> {
    let value = table.get("auth_pass")?;
    let pass = diags.string("auth_pass", value)?;
    let problem = if version == Some(VrrpVersion::V3) {
        Some("is VRRPv2 only (RFC 5798 removed authentication from VRRPv3); remove it or set version = 2")
    } else if pass.is_empty() || pass.len() > 8 {
        Some("must be 1 to 8 bytes long (VRRPv2 simple-text authentication)")
    } else if pass.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match problem {
        Some(problem) => {
            diags.error(&value.span(), format!("`auth_pass` {problem}"));
            None
        }
        None => Some(pass.to_string()),
    }
}

fn read_peers(
    diags: &mut Diags,
    value: &Value<'_>,
    family: Option<Family>,
    vips: &[Vip],
) -> Vec<IpAddr> {
    let mut peers: Vec<IpAddr> = Vec::new();
    let Some(items) = diags.array("unicast_peers", value) else {
        return peers;
    };
    for item in items {
        let Some(text) = diags.string("unicast_peers", item) else {
            continue;
        };
        let Ok(peer) = text.parse::<IpAddr>() else {
            let message = format!(
                "invalid unicast peer \"{}\": not an IPv4 or IPv6 address",
                text.escape_debug()
            );
            diags.error(&item.span(), message);
            continue;
        };
        let problem = match family {
            Some(family) if family_of(&peer) != family => Some(format!(
                "{peer} is {} but the VIPs are {family}",
                family_of(&peer)
            )),
            _ if peers.contains(&peer) => Some(format!("{peer} is listed twice")),
            _ if peer.is_unspecified() || peer.is_multicast() || peer.is_loopback() => {
                Some(format!("{peer} is not a unicast address of another node"))
            }
            _ if vips.iter().any(|vip| vip.addr == peer) => {
                Some(format!("{peer} is one of this instance's VIPs"))
            }
            _ => None,
        };
        match problem {
            Some(problem) => diags.error(
                &item.span(),
                format!("invalid unicast peer \"{text}\": {problem}"),
            ),
            None => peers.push(peer),
        }
    }
    peers
}

/// `vip_lease`: "0s" (permanent addresses) or 1s up to a day.
fn read_vip_lease(diags: &mut Diags, table: &Table<'_, '_>) -> Duration {
    let default = Duration::from_secs(5);
    let Some(value) = table.get("vip_lease") else {
        return default;
    };
    match diags.duration("vip_lease", value, Duration::ZERO, DAY) {
        Some(lease) if !lease.is_zero() && lease < Duration::from_secs(1) => {
            let message = "`vip_lease` must be \"0s\" (off) or at least 1s (the kernel counts address lifetimes in seconds)";
            diags.error(&value.span(), message);
            default
        }
        Some(lease) => lease,
        None => default,
    }
}

/// `source_address`: an address of the instance's family, not one of its VIPs; for multicast
/// IPv6 a link-local address (RFC 5798 §5.1.2.1: adverts come from the link-local address).
fn read_source_address(
    diags: &mut Diags,
    value: &Value<'_>,
    family: Option<Family>,
    vips: &[Vip],
    unicast: bool,
) -> Option<IpAddr> {
    let text = diags.string("source_address", value)?;
    let Ok(addr) = text.parse::<IpAddr>() else {
        let message = format!(
            "`source_address` \"{}\" is not an IPv4 or IPv6 address",
            text.escape_debug()
        );
        diags.error(&value.span(), message);
        return None;
    };
    let problem = match family {
        Some(family) if family_of(&addr) != family => Some(format!(
            "{addr} is {} but the VIPs are {family}",
            family_of(&addr)
        )),
        _ if vips.iter().any(|vip| vip.addr == addr) => Some(format!(
            "{addr} is one of this instance's VIPs; adverts come from the node's own address"
        )),
        _ if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() => {
            Some(format!("{addr} is not a unicast address of this node"))
        }
        Some(Family::V6) if !unicast && !is_link_local(&addr) => Some(format!(
            "{addr} is not link-local; multicast IPv6 adverts are sent from a link-local address (fe80::/10)"
        )),
        _ => None,
    };
    match problem {
        Some(problem) => {
            diags.error(&value.span(), format!("`source_address`: {problem}"));
            None
        }
        None => Some(addr),
    }
}

/// `virtual_mac` (and `vmac_interface`): the name of the macvlan interface that carries the
/// VIPs and the virtual MAC, `None` when the mode is off. Multicast only: RFC 5798 §7.3 has
/// the adverts come from the virtual MAC so that switches learn the master's port.
fn read_virtual_mac(
    diags: &mut Diags,
    table: &Table<'_, '_>,
    config: &VrrpConfig,
    family: Option<Family>,
) -> (Option<String>, Option<Range<usize>>) {
    let switch = table.get("virtual_mac");
    let on = switch
        .and_then(|value| diags.boolean("virtual_mac", value))
        .unwrap_or(false);
    let name_value = table.get("vmac_interface");
    if !on {
        if let Some(value) = name_value {
            let message = "`vmac_interface` names the interface of virtual-MAC mode: add `virtual_mac = true` or remove it";
            diags.error(&value.span(), message);
        }
        return (None, None);
    }
    let at = switch.map(|value| value.span()).unwrap_or(0..0);
    if !config.unicast_peers.is_empty() {
        if let Some(value) = table.get("unicast_peers") {
            let message = "`virtual_mac` is for multicast segments (RFC 5798 §7.3: switches learn the \
                           master's port from its multicast adverts); remove `unicast_peers` or `virtual_mac`";
            diags.error(&value.span(), message);
        }
    }
    let name = match name_value {
        Some(value) => read_interface(diags, value).map(|name| (name, value.span())),
        None => {
            let digit = match family {
                Some(Family::V6) => 6,
                _ => 4,
            };
            Some((format!("vrrp{digit}.{}", config.vrid), at.clone()))
        }
    };
    let Some((name, name_at)) = name else {
        return (None, None);
    };
    if name == config.interface {
        let message = format!(
            "the virtual-MAC interface \"{name}\" would be the instance's own `interface`; pick another `vmac_interface`"
        );
        diags.error(&name_at, message);
        return (None, None);
    }
    (Some(name), Some(name_at))
}

fn read_announce(diags: &mut Diags, table: &Table<'_, '_>) -> AnnounceConfig {
    let default = AnnounceConfig::default();
    let repeat = table
        .get("garp_repeat")
        .and_then(|value| diags.integer("garp_repeat", value, 1..=100))
        .and_then(|repeat| u32::try_from(repeat).ok())
        .unwrap_or(default.repeat);
    let interval = duration_or(
        diags,
        table,
        "garp_interval",
        Duration::ZERO..=Duration::from_secs(1),
        default.interval,
    );
    let delay = duration_or(
        diags,
        table,
        "garp_delay",
        Duration::ZERO..=HOUR,
        default.delay,
    );
    let refresh = duration_or(
        diags,
        table,
        "garp_refresh",
        Duration::ZERO..=DAY,
        Duration::ZERO,
    );
    let refresh = match table.get("garp_refresh") {
        Some(value) if !refresh.is_zero() && refresh < Duration::from_secs(1) => {
            diags.error(
                &value.span(),
                "`garp_refresh` must be \"0s\" (off) or at least 1s",
            );
            None
        }
        _ => Some(refresh).filter(|refresh| !refresh.is_zero()),
    };
    AnnounceConfig {
        repeat,
        interval,
        delay,
        refresh,
    }
}

fn check_unique_names(diags: &mut Diags, instances: &[Instance]) {
    let mut seen: HashMap<&str, &Range<usize>> = HashMap::new();
    for instance in instances {
        let Some(at) = &instance.name_at else {
            continue;
        };
        let name = instance.config.name.as_str();
        match seen.get(name) {
            Some(first) => {
                let line = diags.line_of(first);
                diags.error(
                    at,
                    format!("duplicate instance name \"{name}\" (first used on line {line})"),
                );
            }
            None => {
                seen.insert(name, at);
            }
        }
    }
}

fn check_unique_routers(diags: &mut Diags, instances: &[Instance]) {
    let mut seen: HashMap<(&str, u8, Family), &Instance> = HashMap::new();
    for instance in instances {
        let Some(at) = &instance.router_at else {
            continue;
        };
        let config = &instance.config;
        let key = (config.interface.as_str(), config.vrid, config.family());
        match seen.get(&key) {
            Some(first) => {
                let line = first
                    .router_at
                    .as_ref()
                    .map_or(0, |span| diags.line_of(span));
                let message = format!(
                    "vrid {} on {} ({}) is already used by instance \"{}\" (line {line}); \
                     (interface, vrid, address family) must be unique",
                    config.vrid,
                    config.interface,
                    config.family(),
                    first.config.name
                );
                diags.error(at, message);
            }
            None => {
                seen.insert(key, instance);
            }
        }
    }
}

/// Every virtual-MAC interface name is used once and is not another instance's `interface`.
fn check_vmac_interfaces(diags: &mut Diags, instances: &[Instance]) {
    let mut seen: HashMap<&str, &Instance> = HashMap::new();
    for instance in instances {
        let (Some(name), Some(at)) = (&instance.config.vmac_interface, &instance.vmac_at) else {
            continue;
        };
        if let Some(first) = seen.get(name.as_str()) {
            let message = format!(
                "the virtual-MAC interface \"{name}\" is already used by instance \"{}\"; set \
                 `vmac_interface` to a name of its own",
                first.config.name
            );
            diags.error(at, message);
            continue;
        }
        if let Some(other) = instances.iter().find(|o| &o.config.interface == name) {
            let message = format!(
                "the virtual-MAC interface \"{name}\" is the `interface` of instance \"{}\"; \
                 set `vmac_interface` to another name",
                other.config.name
            );
            diags.error(at, message);
            continue;
        }
        seen.insert(name, instance);
    }
}

/// No VIP is held by two instances or groups: each repeat is reported where it is written
/// later in the file, naming the first holder.
pub(crate) fn check_unique_vips(diags: &mut Diags, mut uses: Vec<VipUse>) {
    uses.sort_by_key(|vip| vip.at.start);
    let mut seen: HashMap<IpAddr, &VipUse> = HashMap::new();
    for vip in &uses {
        match seen.get(&vip.addr) {
            Some(first) => {
                let line = diags.line_of(&first.at);
                let message = format!(
                    "VIP {} is already in {} (line {line})",
                    vip.addr, first.owner
                );
                diags.error(&vip.at, message);
            }
            None => {
                seen.insert(vip.addr, vip);
            }
        }
    }
}
