//! `relevo check -c FILE`: validate a config and print a summary (one line for the node, the
//! cluster, each instance, group, fencing device and track), or the diagnostics. [`run_check`] returns the output as strings so it can be tested without a process.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::duration::format_duration;
use super::types::{
    ClusterConfig, Config, FenceDevice, FenceKind, GroupConfig, IpmiPrivilege, QuorumPolicyConfig,
    TrackCheck, TrackConfig, VrrpConfig,
};
use crate::wire::VrrpVersion;

/// What `relevo check` prints and its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// 0 when the config is valid, 1 otherwise.
    pub code: i32,
    /// The summary (empty on error).
    pub stdout: String,
    /// The diagnostics (empty on success).
    pub stderr: String,
}

/// Loads and validates `path` and renders the outcome.
pub fn run_check(path: &Path) -> CheckReport {
    match super::load(path) {
        Ok(config) => CheckReport {
            code: 0,
            stdout: summary(&config),
            stderr: config
                .warnings
                .iter()
                .map(|warning| format!("{warning}\n"))
                .collect(),
        },
        Err(error) => CheckReport {
            code: 1,
            stdout: String::new(),
            stderr: format!("{error}\n"),
        },
    }
}

/// What `relevo check -c FILE` does: prints the summary to stdout or the diagnostics to stderr
/// and returns the exit status (0 valid, 1 invalid or unreadable).
pub fn check_command(path: &Path) -> i32 {
    let report = run_check(path);
    // A closed stdout/stderr must not turn into a panic; the exit status still tells the story.
    let _ = std::io::stdout().write_all(report.stdout.as_bytes());
    let _ = std::io::stderr().write_all(report.stderr.as_bytes());
    report.code
}

/// The success summary: the file, the node, the cluster, then one line per instance and group.
pub fn summary(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: OK", config.path.display());
    let _ = writeln!(
        out,
        "node {} (control socket {})",
        config.node.name,
        config.node.control_socket.display()
    );
    if let Some(cluster) = &config.cluster {
        let _ = writeln!(out, "{}", cluster_line(cluster));
    }
    for instance in &config.vrrp {
        let _ = writeln!(out, "{}", instance_line(instance));
    }
    for group in &config.groups {
        let _ = writeln!(out, "{}", group_line(group));
    }
    for device in &config.fence_devices {
        let _ = writeln!(out, "{}", fence_line(config, device));
    }
    for track in &config.tracks {
        let _ = writeln!(out, "{}", track_line(track));
    }
    out
}

/// "fence n2-bmc: ipmi 192.0.2.202:623 user admin privilege administrator, action off,
/// timeout 20s, fences n2".
fn fence_line(config: &Config, device: &FenceDevice) -> String {
    let kind = match &device.kind {
        FenceKind::Ipmi(bmc) => {
            let privilege = match bmc.privilege {
                IpmiPrivilege::Operator => "operator",
                IpmiPrivilege::Administrator => "administrator",
            };
            format!(
                "{} user {} privilege {privilege}",
                crate::fence::describe(device),
                bmc.username
            )
        }
        FenceKind::Command(agent) => {
            let keys: Vec<&str> = agent.options.iter().map(|(key, _)| key.as_str()).collect();
            format!(
                "{} options {}",
                crate::fence::describe(device),
                if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(",")
                }
            )
        }
    };
    let nodes: Vec<&str> = config
        .cluster
        .iter()
        .flat_map(|cluster| &cluster.nodes)
        .filter(|node| node.fence.as_deref() == Some(device.name.as_str()))
        .map(|node| node.name.as_str())
        .collect();
    format!(
        "fence {}: {kind}, action {}, timeout {}, fences {}",
        device.name,
        device.action.as_str(),
        format_duration(device.timeout),
        if nodes.is_empty() {
            "no node".to_string()
        } else {
            nodes.join(",")
        }
    )
}

fn cluster_line(cluster: &ClusterConfig) -> String {
    let names: Vec<&str> = cluster.nodes.iter().map(|n| n.name.as_str()).collect();
    let me = cluster
        .nodes
        .get(cluster.me)
        .map_or("", |n| n.name.as_str());
    let timers = [
        cluster.keepalive,
        cluster.warntime,
        cluster.deadtime,
        cluster.initdead,
    ]
    .map(format_duration);
    let policy = match cluster.quorum_policy {
        QuorumPolicyConfig::Stop => "stop",
        QuorumPolicyConfig::Freeze => "freeze",
        QuorumPolicyConfig::Ignore => "ignore",
    };
    let mut tiebreak = String::new();
    if !cluster.ping_nodes.is_empty() {
        let pings: Vec<String> = cluster.ping_nodes.iter().map(ToString::to_string).collect();
        tiebreak = format!(" ping nodes {}", pings.join(","));
    }
    if cluster.two_node {
        tiebreak += " two_node";
    }
    let keys: Vec<String> = cluster
        .auth_keys
        .keys()
        .iter()
        .map(|(id, _)| id.to_string())
        .collect();
    format!(
        "cluster {}: node {me} (id {}) of {}, {} links, port {}, keepalive {} warntime {} \
         deadtime {} initdead {}, quorum policy {policy}{tiebreak}, key ids {}",
        cluster.id,
        cluster.my_id(),
        names.join(","),
        cluster.links(),
        cluster.port,
        timers[0],
        timers[1],
        timers[2],
        timers[3],
        keys.join(",")
    )
}

fn group_line(group: &GroupConfig) -> String {
    let vips: Vec<String> = group
        .vips
        .iter()
        .map(|vip| format!("{} on {}", vip.vip, vip.interface))
        .collect();
    let resources: Vec<String> = group
        .resources
        .iter()
        .map(|resource| format!("{} ({})", resource.name, resource.priority))
        .collect();
    let delay = group
        .takeover_delay
        .map_or("default".to_string(), format_duration);
    format!(
        "group {}: nodes {} failback {} vips {} resources {} max start failures {} takeover delay {delay}",
        group.name,
        group.nodes.join(","),
        if group.auto_failback { "on" } else { "off" },
        list_or_none(&vips),
        list_or_none(&resources),
        group.max_start_failures,
    ) + &tracks_suffix(&group.track)
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(",")
    }
}

fn instance_line(vrrp: &VrrpConfig) -> String {
    let version = match vrrp.version {
        VrrpVersion::V2 => "v2",
        VrrpVersion::V3 => "v3",
    };
    let vips: Vec<String> = vrrp.vips.iter().map(ToString::to_string).collect();
    let transport = if vrrp.unicast_peers.is_empty() {
        "multicast".to_string()
    } else {
        let peers: Vec<String> = vrrp.unicast_peers.iter().map(ToString::to_string).collect();
        format!("unicast to {}", peers.join(","))
    };
    let transport = match &vrrp.vmac_interface {
        Some(name) => format!("{transport}, virtual MAC on {name}"),
        None => transport,
    };
    let transport = if vrrp.quorum_gated {
        format!("{transport}, quorum-gated")
    } else {
        transport
    };
    format!(
        "vrrp {}: interface {} vrid {} {} {} priority {} interval {} vips {} {}",
        vrrp.name,
        vrrp.interface,
        vrrp.vrid,
        version,
        vrrp.family(),
        vrrp.priority,
        format_duration(vrrp.advert_interval),
        vips.join(","),
        transport
    ) + &tracks_suffix(&vrrp.track)
}

/// ", tracks a,b" when an instance or group names tracks.
fn tracks_suffix(tracks: &[String]) -> String {
    if tracks.is_empty() {
        String::new()
    } else {
        format!(", tracks {}", tracks.join(","))
    }
}

/// "track web-check: script /usr/lib/relevo/check-web every 1s timeout 2s rise 2 fall 3,
/// weight -60" (weight 0: "fault when failing").
fn track_line(track: &TrackConfig) -> String {
    let check = match &track.check {
        TrackCheck::Script(argv) => format!(
            "script {} every {} timeout {} rise {} fall {}",
            argv.join(" "),
            format_duration(track.interval),
            format_duration(track.timeout),
            track.rise,
            track.fall
        ),
        TrackCheck::Interface(name) => format!("interface {name}"),
        TrackCheck::File(path) => format!(
            "file {} every {}",
            path.display(),
            format_duration(track.interval)
        ),
    };
    let effect = if track.weight == 0 {
        "fault when failing".to_string()
    } else {
        format!("weight {:+}", track.weight)
    };
    format!("track {}: {check}, {effect}", track.name)
}
