//! `[[group]]` and `[[group.resource]]`: resource groups that run on one node of the cluster
//! at a time. A group names its nodes in order of preference (all `[[cluster.node]]`s), its
//! VIPs (the VIP rules of `[[vrrp]]`, each VIP in one group or instance only) and its
//! resources, stored in start order: descending priority, ties in file order. Group names are
//! unique among groups and `[[vrrp]]` instances; groups need a `[cluster]`.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use super::duration::HOUR;
use super::hooks::read_argv;
use super::node::read_name;
use super::reader::{Diags, Table, Value};
use super::types::{GroupConfig, GroupVip, ResourceConfig, VrrpConfig};
use super::vrrp::{parse_vip, read_interface, VipUse};
use crate::wire::heartbeat::group_wire_id;
use crate::wire::heartbeat::MAX_GROUPS;

pub(crate) const KEYS: &[&str] = &[
    "name",
    "nodes",
    "auto_failback",
    "vips",
    "max_start_failures",
    "takeover_delay",
    "resource",
    "track",
];

pub(crate) const VIP_KEYS: &[&str] = &["address", "interface"];

pub(crate) const RESOURCE_KEYS: &[&str] = &["name", "priority", "start", "stop", "timeout"];

/// What the groups are checked against.
pub(crate) struct Context<'a> {
    /// Whether the file has a `[cluster]`.
    pub has_cluster: bool,
    /// The `[[cluster.node]]` names, when all of them are known.
    pub cluster_nodes: Option<Vec<&'a str>>,
    /// The `[[vrrp]]` instances (their names are taken).
    pub vrrp: &'a [VrrpConfig],
    /// The `[[track]]` names, when all of them are valid.
    pub tracks: Option<&'a [String]>,
}

/// A group as read, with the spans the checks across groups point at.
struct Group {
    config: GroupConfig,
    name_at: Option<Range<usize>>,
    /// Span of each entry of `config.vips`.
    vip_at: Vec<Range<usize>>,
}

/// Reads the top-level `group` value (an array of tables) and checks the groups against each
/// other and `context`; returns the groups and their VIPs for the check across instances.
pub(crate) fn read_groups(
    diags: &mut Diags,
    value: Option<&Value<'_>>,
    context: &Context<'_>,
) -> (Vec<GroupConfig>, Vec<VipUse>) {
    let Some(value) = value else {
        return (Vec::new(), Vec::new());
    };
    let Some(items) = value.get_ref().as_array() else {
        let message =
            "`group` must be an array of tables: write [[group]] (double brackets) before each group";
        diags.error(&value.span(), message);
        return (Vec::new(), Vec::new());
    };
    let mut groups = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(table) = diags.table("group", "[[group]]", item) else {
            continue;
        };
        if index == 0 && !context.has_cluster {
            let message = "[[group]] resource groups need a [cluster] table (membership and \
                           quorum decide where they run); add one";
            diags.error(&table.span, message);
        }
        if index == MAX_GROUPS {
            let message =
                format!("at most {MAX_GROUPS} groups (a heartbeat reports at most {MAX_GROUPS})");
            diags.error(&table.span, message);
        }
        groups.push(read_group(diags, &table, context));
    }
    check_names(diags, &groups, context.vrrp);
    let vip_uses = groups
        .iter()
        .flat_map(|group| {
            let owner = format!("group \"{}\"", group.config.name);
            let vips = group.config.vips.iter().zip(&group.vip_at);
            vips.map(move |(vip, at)| VipUse {
                addr: vip.vip.addr,
                at: at.clone(),
                owner: owner.clone(),
            })
        })
        .collect();
    let configs = groups.into_iter().map(|group| group.config).collect();
    (configs, vip_uses)
}

fn read_group(diags: &mut Diags, table: &Table<'_, '_>, context: &Context<'_>) -> Group {
    table.check_keys(diags, KEYS, &[]);
    let name_value = table.required(diags, "name");
    let name = name_value.and_then(|value| read_name(diags, "group `name`", value));
    let nodes = table
        .required(diags, "nodes")
        .map(|value| read_nodes(diags, value, context.cluster_nodes.as_deref()))
        .unwrap_or_default();
    let (vips, vip_at) = table
        .get("vips")
        .map(|value| read_vips(diags, value))
        .unwrap_or_default();
    let config = GroupConfig {
        name: name.clone().unwrap_or_default(),
        nodes,
        auto_failback: table
            .get("auto_failback")
            .and_then(|value| diags.boolean("auto_failback", value))
            .unwrap_or(true),
        vips,
        max_start_failures: table
            .get("max_start_failures")
            .and_then(|value| diags.integer("max_start_failures", value, 1..=10))
            .and_then(|count| u32::try_from(count).ok())
            .unwrap_or(1),
        takeover_delay: table
            .get("takeover_delay")
            .and_then(|value| diags.duration("takeover_delay", value, Duration::ZERO, HOUR)),
        resources: table
            .get("resource")
            .map(|value| read_resources(diags, value))
            .unwrap_or_default(),
        track: super::track::read_refs(diags, table, context.tracks),
    };
    Group {
        config,
        name_at: name.and(name_value.map(|value| value.span())),
        vip_at,
    }
}

/// `nodes`: at least one `[[cluster.node]]` name, none twice, in order of preference.
fn read_nodes(diags: &mut Diags, value: &Value<'_>, known: Option<&[&str]>) -> Vec<String> {
    let Some(items) = diags.array("nodes", value) else {
        return Vec::new();
    };
    if items.is_empty() {
        let message = "`nodes` must list at least one [[cluster.node]] name";
        diags.error(&value.span(), message);
    }
    let mut nodes: Vec<String> = Vec::new();
    for item in items {
        let Some(name) = diags.string("nodes", item) else {
            continue;
        };
        let problem = if nodes.iter().any(|seen| seen == name) {
            Some(format!("\"{}\" is listed twice", name.escape_debug()))
        } else {
            known.filter(|known| !known.contains(&name)).map(|known| {
                format!(
                    "\"{}\" is not a [[cluster.node]] name ({})",
                    name.escape_debug(),
                    known.join(", ")
                )
            })
        };
        match problem {
            Some(problem) => diags.error(&item.span(), format!("`nodes`: {problem}")),
            None => nodes.push(name.to_string()),
        }
    }
    nodes
}

/// `vips`: inline tables `{ address = "ADDR/LEN", interface = "eth0" }`.
fn read_vips(diags: &mut Diags, value: &Value<'_>) -> (Vec<GroupVip>, Vec<Range<usize>>) {
    let mut vips = Vec::new();
    let mut spans = Vec::new();
    let Some(items) = diags.array("vips", value) else {
        return (vips, spans);
    };
    for item in items {
        if item.get_ref().as_str().is_some() {
            let message = "a group VIP names its interface: write { address = \"192.0.2.100/24\", \
                           interface = \"eth0\" }";
            diags.error(&item.span(), message);
            continue;
        }
        let Some(table) = diags.table("vips", "a group VIP", item) else {
            continue;
        };
        table.check_keys(diags, VIP_KEYS, &[]);
        let address = table.required(diags, "address");
        let vip = address.and_then(|value| read_vip(diags, value));
        let interface = table
            .required(diags, "interface")
            .and_then(|value| read_interface(diags, value));
        if let (Some(vip), Some(interface), Some(value)) = (vip, interface, address) {
            vips.push(GroupVip { vip, interface });
            spans.push(value.span());
        }
    }
    (vips, spans)
}

fn read_vip(diags: &mut Diags, value: &Value<'_>) -> Option<super::types::Vip> {
    let text = diags.string("address", value)?;
    match parse_vip(text) {
        Ok(vip) => Some(vip),
        Err(why) => {
            let message = format!("invalid VIP \"{}\": {why}", text.escape_debug());
            diags.error(&value.span(), message);
            None
        }
    }
}

/// `[[group.resource]]`: unique names, returned in start order.
fn read_resources(diags: &mut Diags, value: &Value<'_>) -> Vec<ResourceConfig> {
    let Some(items) = value.get_ref().as_array() else {
        let message = "`resource` must be an array of tables: write [[group.resource]] before \
                       each resource";
        diags.error(&value.span(), message);
        return Vec::new();
    };
    let mut seen: HashMap<String, Range<usize>> = HashMap::new();
    let mut resources = Vec::new();
    for item in items {
        let Some(table) = diags.table("resource", "[[group.resource]]", item) else {
            continue;
        };
        let (resource, name_at) = read_resource(diags, &table);
        if let Some(at) = name_at {
            match seen.get(&resource.name) {
                Some(first) => {
                    let line = diags.line_of(first);
                    let message = format!(
                        "duplicate resource name \"{}\" in this group (first used on line {line})",
                        resource.name
                    );
                    diags.error(&at, message);
                }
                None => {
                    seen.insert(resource.name.clone(), at);
                }
            }
        }
        resources.push(resource);
    }
    // A stable sort: equal priorities keep their file order.
    resources.sort_by_key(|resource| Reverse(resource.priority));
    resources
}

/// One resource and the span of its valid name.
fn read_resource(
    diags: &mut Diags,
    table: &Table<'_, '_>,
) -> (ResourceConfig, Option<Range<usize>>) {
    table.check_keys(diags, RESOURCE_KEYS, &[]);
    let name_value = table.required(diags, "name");
    let name = name_value.and_then(|value| read_name(diags, "resource `name`", value));
    let name_at = name.as_ref().and(name_value.map(|value| value.span()));
    let mut command = |key: &str| {
        table
            .required(diags, key)
            .and_then(|value| read_argv(diags, key, value))
            .unwrap_or_default()
    };
    let (start, stop) = (command("start"), command("stop"));
    let resource = ResourceConfig {
        name: name.unwrap_or_default(),
        priority: table
            .get("priority")
            .and_then(|value| diags.integer("priority", value, 0..=1000))
            .and_then(|priority| u32::try_from(priority).ok())
            .unwrap_or(0),
        start,
        stop,
        timeout: table
            .get("timeout")
            .and_then(|value| diags.duration("timeout", value, Duration::from_secs(1), HOUR))
            .unwrap_or(Duration::from_secs(30)),
    };
    (resource, name_at)
}

/// Group names are unique among groups and not the name of a `[[vrrp]]` instance.
fn check_names(diags: &mut Diags, groups: &[Group], vrrp: &[VrrpConfig]) {
    let mut seen: HashMap<&str, &Range<usize>> = HashMap::new();
    for group in groups {
        let Some(at) = &group.name_at else {
            continue;
        };
        let name = group.config.name.as_str();
        if let Some(first) = seen.get(name) {
            let line = diags.line_of(first);
            let message = format!("duplicate group name \"{name}\" (first used on line {line})");
            diags.error(at, message);
        } else if let Some(other) = groups.iter().find(|g| {
            g.config.name != name
                && group_wire_id(&g.config.name) == group_wire_id(name)
                && g.name_at.as_ref().is_some_and(|o| o.start < at.start)
        }) {
            let message = format!(
                "group names \"{}\" and \"{name}\" have the same 16-bit id in heartbeats ({}); \
                 rename one",
                other.config.name,
                group_wire_id(name)
            );
            diags.error(at, message);
        } else if vrrp.iter().any(|instance| instance.name == name) {
            let message = format!(
                "group name \"{name}\" is already the name of a [[vrrp]] instance; hooks and \
                 `relevo switchover` tell them apart by name"
            );
            diags.error(at, message);
        } else {
            seen.insert(name, at);
        }
    }
}
