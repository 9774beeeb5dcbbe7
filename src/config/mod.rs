//! The config file (`/etc/relevo/relevo.toml`): TOML text to a typed, validated [`Config`].
//!
//! Parsing walks toml's spanned document tree by hand instead of deriving `Deserialize`, so
//! that it can report every problem in one run, each at the line and column of the offending
//! key or value. This release knows `[node]`, `[[vrrp]]`, `[cluster]` with `[[cluster.node]]`,
//! `[[group]]` with `[[group.resource]]`, `[[fence]]` devices, `[[track]]` checks and `[metrics]`; keys of the design that come
//! later (`accept_mode`) are refused with a "not supported yet" message. Every key is documented in `man/relevo.toml.5`.

mod check;
mod cluster;
mod diff;
mod duration;
mod error;
mod fence;
mod group;
mod hooks;
mod metrics;
mod node;
mod reader;
mod track;
mod types;
mod vrrp;

use std::path::Path;

use toml::de::DeTable;

pub use check::{check_command, run_check, summary, CheckReport};
pub use diff::ConfigDiff;
pub use duration::{format_duration, parse_duration};
pub use error::{ConfigError, Diagnostic};
pub(crate) use node::{name_problem, MAX_NAME_LEN};
pub use node::{DEFAULT_CONTROL_SOCKET, DEFAULT_STATE_DIR};
pub use types::{
    AnnounceConfig, AuthKeys, ClusterConfig, ClusterNode, CommandFence, Config, Family,
    FenceAction, FenceDevice, FenceKind, GroupConfig, GroupVip, HookSecurity, Hooks, IpmiFence,
    IpmiPrivilege, MetricsConfig, NodeConfig, QuorumPolicyConfig, ResourceConfig, Secret,
    TrackCheck, TrackConfig, Vip, VrrpConfig,
};

use reader::{Diags, Table};

/// Where `relevo run` and `relevo check` look when no `-c FILE` is given.
pub const DEFAULT_PATH: &str = "/etc/relevo/relevo.toml";

const TOP_KEYS: &[&str] = &[
    "node", "vrrp", "cluster", "group", "fence", "track", "metrics",
];

/// Reads, parses and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let bytes = std::fs::read(path).map_err(|error| {
        ConfigError::whole_file(path, format!("cannot read config file: {error}"))
    })?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse(text, path),
        Err(error) => {
            let valid = String::from_utf8_lossy(&bytes[..error.valid_up_to()]);
            let message = "the file is not valid UTF-8".to_string();
            Err(ConfigError::at_offsets(
                path,
                &valid,
                vec![(valid.len(), message)],
            ))
        }
    }
}

/// Parses and validates config text; `path` is recorded in the result and in diagnostics.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let (root, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        let found = syntax_errors
            .iter()
            .map(|error| {
                let offset = error.span().map_or(0, |span| span.start);
                (offset, format!("invalid TOML: {}", error.message()))
            })
            .collect();
        return Err(ConfigError::at_offsets(path, text, found));
    }
    let mut diags = Diags::new(text);
    let root = Table {
        entries: root.get_ref(),
        span: 0..0,
        name: "the top level",
    };
    root.check_keys(&mut diags, TOP_KEYS, &[]);
    let node_table = root
        .get("node")
        .and_then(|value| diags.table("node", "[node]", value));
    let node = node::read_node(&mut diags, node_table.as_ref());
    let fences = fence::read_fence_devices(&mut diags, root.get("fence"));
    if let (Some(value), None) = (root.get("fence"), root.get("cluster")) {
        let message = "[[fence]] devices power off failed [[cluster.node]]s; they need a [cluster]";
        diags.error(&value.span(), message);
    }
    let tracks = track::read_tracks(&mut diags, root.get("track"));
    let metrics = root
        .get("metrics")
        .and_then(|value| metrics::read_metrics(&mut diags, value));
    let (cluster, vrrp, groups) = read_members(
        &mut diags,
        &root,
        &node.name,
        fences.names.as_deref(),
        tracks.names.as_deref(),
    );
    if let Some(cluster) = &cluster {
        let used: Vec<&str> = cluster
            .nodes
            .iter()
            .filter_map(|node| node.fence.as_deref())
            .collect();
        fence::warn_unused(&mut diags, &fences, &used);
    }
    if !diags.is_empty() {
        return Err(ConfigError::at_offsets(path, text, diags.found));
    }
    let mut warnings = ConfigError::at_offsets(path, text, diags.warned).diagnostics;
    for warning in &mut warnings {
        warning.warning = true;
    }
    Ok(Config {
        path: path.to_path_buf(),
        node,
        vrrp,
        cluster,
        groups,
        fence_devices: fences.devices,
        tracks: tracks.tracks,
        metrics,
        warnings,
    })
}

/// `[cluster]`, `[[vrrp]]` and `[[group]]` with the checks across them (group nodes, names,
/// no VIP in two places, `track` names); `me` is this node's name.
fn read_members(
    diags: &mut Diags,
    root: &Table<'_, '_>,
    me: &str,
    fence_devices: Option<&[String]>,
    tracks: Option<&[String]>,
) -> (Option<ClusterConfig>, Vec<VrrpConfig>, Vec<GroupConfig>) {
    let cluster = root
        .get("cluster")
        .and_then(|value| cluster::read_cluster(diags, value, me, fence_devices));
    let has_cluster = root.get("cluster").is_some();
    let (vrrp, mut vip_uses) = vrrp::read_instances(diags, root.get("vrrp"), has_cluster, tracks);
    let complete = cluster.as_ref().filter(|cluster| cluster.names_complete);
    let context = group::Context {
        has_cluster,
        cluster_nodes: complete.map(|cluster| {
            let nodes = cluster.config.nodes.iter();
            nodes.map(|node| node.name.as_str()).collect()
        }),
        vrrp: &vrrp,
        tracks,
    };
    let (groups, group_vips) = group::read_groups(diags, root.get("group"), &context);
    vip_uses.extend(group_vips);
    vrrp::check_unique_vips(diags, vip_uses);
    (cluster.map(|cluster| cluster.config), vrrp, groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAN_PAGE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/man/relevo.toml.5"));

    /// The keys of `[cluster]`, `[[cluster.node]]`, `[[group]]` and `[[group.resource]]`: each
    /// has a `.TP` entry of its own.
    fn entry_keys() -> Vec<&'static str> {
        [
            cluster::KEYS,
            cluster::NODE_KEYS,
            fence::KEYS,
            track::KEYS,
            group::KEYS,
            group::RESOURCE_KEYS,
        ]
        .concat()
    }

    /// Every key the parser accepts or refuses specifically is documented in relevo.toml(5).
    #[test]
    fn man_page_documents_every_key() {
        let entry_keys = entry_keys();
        let keys = [
            node::KEYS,
            metrics::KEYS,
            vrrp::KEYS,
            hooks::KEYS,
            TOP_KEYS,
            group::VIP_KEYS,
            &entry_keys,
        ]
        .concat();
        let later = vrrp::LATER.iter().map(|later| later.key);
        for key in keys.iter().copied().chain(later) {
            let documented = MAN_PAGE.lines().any(|line| {
                let line = line
                    .replace("\\fB", " ")
                    .replace("\\fR", " ")
                    .replace("\\fI", " ");
                line.split_whitespace()
                    .any(|word| word.trim_matches(|c: char| "[]().,".contains(c)) == key)
            });
            assert!(documented, "`{key}` is not documented in man/relevo.toml.5");
        }
        for key in entry_keys.iter().chain(vrrp::KEYS).chain(node::KEYS) {
            assert!(
                MAN_PAGE.contains(&format!(".TP\n.B {key}\n")),
                "`{key}` has no .TP entry"
            );
        }
    }

    /// The configs shown in the man page's EXAMPLES are valid.
    #[test]
    fn man_page_examples_parse() {
        let examples = MAN_PAGE.split(".SH EXAMPLES").nth(1).unwrap_or_default();
        let blocks: Vec<String> = examples
            .split(".nf\n")
            .skip(1)
            .filter_map(|block| block.split(".fi\n").next())
            .filter(|block| block.starts_with('['))
            .map(|block| block.replace("\\-", "-"))
            .collect();
        assert_eq!(blocks.len(), 2);
        for block in blocks {
            if let Err(error) = parse(&block, Path::new("man.toml")) {
                panic!("{error}\n{block}");
            }
        }
    }
}
