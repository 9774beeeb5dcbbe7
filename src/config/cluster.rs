//! `[cluster]` and `[[cluster.node]]`: the cluster id and heartbeat port, the heartbeat timers
//! (`keepalive` < `warntime` < `deadtime` <= `initdead`), the heartbeat key file (read and
//! checked here, so `relevo check` refuses a bad or exposed one), the quorum policy and
//! tiebreakers, and the node list: unique names, the same number of links on every node, no
//! address twice, this node listed. A node's heartbeat id is its 1-based position in the list.

use std::collections::HashMap;
use std::io::Read as _;
use std::net::IpAddr;
use std::ops::Range;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::time::Duration;

use super::duration::{format_duration, HOUR};
use super::hooks::read_cluster_hooks;
use super::node::read_name;
use super::reader::{Diags, Table, Value};
use super::types::{AuthKeys, ClusterConfig, ClusterNode, QuorumPolicyConfig};
use crate::wire::heartbeat::{DEFAULT_PORT, MAX_KEYS, MAX_LINKS, MAX_PEERS, MIN_SECRET_LEN};

pub(crate) const KEYS: &[&str] = &[
    "id",
    "port",
    "keepalive",
    "warntime",
    "deadtime",
    "initdead",
    "auth_key_file",
    "quorum_policy",
    "ping_nodes",
    "two_node",
    "hooks",
    "hook_timeout",
    "node",
];

pub(crate) const NODE_KEYS: &[&str] = &["name", "links", "fence", "fence_delay"];

const NO_FENCE: &str = "this node has no `fence` key: a node must say fence = \"none\" \
     explicitly (its groups are then taken over after deadtime without fencing), or name its \
     [[fence]] device";

const FENCE_DELAY_MAX: Duration = Duration::from_secs(60);

const TWO_NODE_BLIND: &str = "a two-node cluster without ping_nodes (or fencing) cannot tell a \
     dead peer from a cut link; set ping_nodes, or two_node = true to keep quorum alone";

const FENCE_RACE: &str = "both nodes have the same `fence_delay`: in a partition each may \
     power the other off; give the preferred node a shorter fence_delay than the other";

const TWO_NODE_SPLIT: &str = "`two_node = true` lets each of the two nodes keep quorum alone: a \
     cut link between them makes both run every group (split brain); prefer ping_nodes";

const TIMER_MIN: Duration = Duration::from_millis(1);
const TIMER_MAX: Duration = Duration::from_secs(3600);

/// Largest key file read: a few keys and comments fit many times over.
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// `[cluster]` as read, and whether every `[[cluster.node]]` name was valid (the checks of
/// `[[group]] nodes` against the list are skipped otherwise, to avoid follow-up errors).
pub(crate) struct ClusterRead {
    pub config: ClusterConfig,
    pub names_complete: bool,
}

/// One heartbeat timer: its value (`None` when invalid) and its span (`None` when defaulted).
struct Timer {
    key: &'static str,
    value: Option<Duration>,
    at: Option<Range<usize>>,
}

/// A `[[cluster.node]]` as read, with the spans the checks across nodes point at.
struct Node {
    config: ClusterNode,
    name_at: Option<Range<usize>>,
    links_at: Option<Range<usize>>,
    /// How many entries `links` has, valid or not.
    links_written: usize,
    /// Span of each entry of `config.links`.
    link_at: Vec<Range<usize>>,
}

/// Reads the top-level `cluster` value; `me` is this node's name (`[node] name`, empty when
/// invalid). `None` when the value is not a table.
/// `fence_devices` are the `[[fence]]` names when all of them are known (a node's `fence` is
/// checked against them).
pub(crate) fn read_cluster(
    diags: &mut Diags,
    value: &Value<'_>,
    me: &str,
    fence_devices: Option<&[String]>,
) -> Option<ClusterRead> {
    let table = diags.table("cluster", "[cluster]", value)?;
    table.check_keys(diags, KEYS, &[]);
    let id = table
        .required(diags, "id")
        .and_then(|value| diags.integer("id", value, 1..=255))
        .and_then(|id| u8::try_from(id).ok())
        .unwrap_or(1);
    let port = table
        .get("port")
        .and_then(|value| diags.integer("port", value, 1..=65535))
        .and_then(|port| u16::try_from(port).ok())
        .unwrap_or(DEFAULT_PORT);
    let timers = read_timers(diags, &table);
    let auth_keys = table
        .required(diags, "auth_key_file")
        .and_then(|value| read_auth_keys(diags, value))
        .unwrap_or_else(|| AuthKeys::new(Vec::new()));
    let (nodes, names_complete) = read_nodes(diags, &table, fence_devices);
    let me = find_me(diags, &table, &nodes, me, names_complete);
    let ping_nodes = read_ping_nodes(diags, &table, &nodes);
    let two_node = table
        .get("two_node")
        .and_then(|value| diags.boolean("two_node", value))
        .unwrap_or(false);
    let [keepalive, warntime, deadtime, initdead] = timers;
    let config = ClusterConfig {
        id,
        port,
        keepalive,
        warntime,
        deadtime,
        initdead,
        auth_keys,
        quorum_policy: read_quorum_policy(diags, &table),
        ping_nodes,
        two_node,
        nodes,
        me,
        hooks: table
            .get("hooks")
            .map(|value| read_cluster_hooks(diags, value))
            .unwrap_or_default(),
        hook_timeout: table
            .get("hook_timeout")
            .and_then(|value| diags.duration("hook_timeout", value, Duration::from_secs(1), HOUR))
            .unwrap_or(Duration::from_secs(30)),
    };
    check_quorum_options(diags, &table, &config);
    Some(ClusterRead {
        config,
        names_complete,
    })
}

/// `keepalive`, `warntime`, `deadtime`, `initdead` (defaults 1s, 5s, 10s, 30s), in order.
fn read_timers(diags: &mut Diags, table: &Table<'_, '_>) -> [Duration; 4] {
    let defaults = [
        ("keepalive", 1),
        ("warntime", 5),
        ("deadtime", 10),
        ("initdead", 30),
    ];
    let timers = defaults.map(|(key, secs)| read_timer(diags, table, key, secs));
    check_order(diags, &timers[0], &timers[1], true);
    check_order(diags, &timers[1], &timers[2], true);
    check_order(diags, &timers[2], &timers[3], false);
    timers.map(|timer| timer.value.unwrap_or(Duration::ZERO))
}

fn read_timer(diags: &mut Diags, table: &Table<'_, '_>, key: &'static str, secs: u64) -> Timer {
    match table.get(key) {
        Some(value) => Timer {
            key,
            value: diags.duration(key, value, TIMER_MIN, TIMER_MAX),
            at: Some(value.span()),
        },
        None => Timer {
            key,
            value: Some(Duration::from_secs(secs)),
            at: None,
        },
    }
}

/// `earlier` < `later` (or <= when not `strict`), reported at `later` when it is set, else at
/// `earlier`.
fn check_order(diags: &mut Diags, earlier: &Timer, later: &Timer, strict: bool) {
    let (Some(a), Some(b)) = (earlier.value, later.value) else {
        return;
    };
    if a < b || (!strict && a == b) {
        return;
    }
    let describe = |timer: &Timer, value: Duration| match timer.at {
        Some(_) => format_duration(value),
        None => format!("{}, the default", format_duration(value)),
    };
    let (a_text, b_text) = (describe(earlier, a), describe(later, b));
    let (long, short) = if strict {
        ("longer than", "shorter than")
    } else {
        ("at least", "at most")
    };
    let (at, message) = if let Some(at) = &later.at {
        let (key, other) = (later.key, earlier.key);
        (
            at,
            format!("`{key}` ({b_text}) must be {long} `{other}` ({a_text})"),
        )
    } else if let Some(at) = &earlier.at {
        let (key, other) = (earlier.key, later.key);
        (
            at,
            format!("`{key}` ({a_text}) must be {short} `{other}` ({b_text})"),
        )
    } else {
        // Both defaulted: the defaults are in order.
        return;
    };
    let message = format!("{message}; keepalive < warntime < deadtime <= initdead");
    diags.error(at, message);
}

fn read_quorum_policy(diags: &mut Diags, table: &Table<'_, '_>) -> QuorumPolicyConfig {
    let Some(value) = table.get("quorum_policy") else {
        return QuorumPolicyConfig::default();
    };
    match diags.string("quorum_policy", value) {
        Some("stop") => QuorumPolicyConfig::Stop,
        Some("freeze") => QuorumPolicyConfig::Freeze,
        Some("ignore") => QuorumPolicyConfig::Ignore,
        Some(other) => {
            let message = format!(
                "`quorum_policy` must be \"stop\", \"freeze\" or \"ignore\", got \"{}\"",
                other.escape_debug()
            );
            diags.error(&value.span(), message);
            QuorumPolicyConfig::default()
        }
        None => QuorumPolicyConfig::default(),
    }
}

// ---- the heartbeat key file ----

/// `auth_key_file`: an absolute path to a regular file, not a symlink, mode 0600 or stricter,
/// holding one or two keys. Every problem is reported at the value; the secrets never appear.
fn read_auth_keys(diags: &mut Diags, value: &Value<'_>) -> Option<AuthKeys> {
    let path = diags.string("auth_key_file", value)?;
    let label = format!("`auth_key_file` \"{}\"", path.escape_debug());
    if !path.starts_with('/') || path.contains('\0') {
        diags.error(
            &value.span(),
            format!("{label} must be an absolute path (the daemon does not run in the config's directory)"),
        );
        return None;
    }
    let bytes = match read_key_file(path) {
        Ok(bytes) => bytes,
        Err(why) => {
            diags.error(&value.span(), format!("{label} {why}"));
            return None;
        }
    };
    match parse_key_file(&bytes) {
        Ok(keys) => Some(AuthKeys::new(keys)),
        Err(problems) => {
            for problem in problems {
                diags.error(&value.span(), format!("{label}: {problem}"));
            }
            None
        }
    }
}

/// The key file's bytes, or why it cannot be used (after "`auth_key_file` PATH").
fn read_key_file(path: &str) -> Result<Vec<u8>, String> {
    read_private_file(
        path,
        "auth_key_file",
        "the heartbeat keys",
        MAX_KEY_FILE_LEN,
    )
    .map_err(|why| match why.strip_prefix("is larger than ") {
        Some(_) => format!(
            "is larger than {} KiB; it holds one or two keys",
            MAX_KEY_FILE_LEN / 1024
        ),
        None => why,
    })
}

/// The bytes of a file holding secrets (the heartbeat keys, a BMC password), or why it
/// cannot be used, as text to put after "`KEY` PATH": it must be a regular file, not a
/// symbolic link, that neither group nor others may read or write, of at most `max_len`
/// bytes. `key` names the config key, `what` the secret in messages.
pub(crate) fn read_private_file(
    path: &str,
    key: &str,
    what: &str,
    max_len: u64,
) -> Result<Vec<u8>, String> {
    let link =
        std::fs::symlink_metadata(path).map_err(|error| format!("cannot be read: {error}"))?;
    if link.file_type().is_symlink() {
        return Err(format!(
            "is a symbolic link; point `{key}` at the file itself"
        ));
    }
    // O_NOFOLLOW: a symlink swapped in after the check above is refused too; O_NONBLOCK: a FIFO
    // does not hang the open (it is refused below as not a regular file).
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|error| format!("cannot be read: {error}"))?;
    let meta = file
        .metadata()
        .map_err(|error| format!("cannot be read: {error}"))?;
    if !meta.is_file() {
        return Err("is not a regular file".to_string());
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "has mode {mode:04o}: group or others may read or write {what}; chmod 600 it"
        ));
    }
    let mut bytes = Vec::new();
    file.take(max_len + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot be read: {error}"))?;
    if bytes.len() as u64 > max_len {
        return Err(format!("is larger than {max_len} bytes"));
    }
    Ok(bytes)
}

/// Parses the key file: `<id 1-255> <secret>` per line, `#` comment lines and blank lines
/// ignored, one or two keys with distinct ids, secrets of at least 16 bytes without white
/// space. Problems say the file's line number and never quote the line.
pub(crate) fn parse_key_file(bytes: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, Vec<String>> {
    let mut keys: Vec<(u8, Vec<u8>, usize)> = Vec::new();
    let mut problems = Vec::new();
    let mut key_lines = 0;
    for (index, line) in bytes.split(|&byte| byte == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let number = index + 1;
        key_lines += 1;
        if key_lines > MAX_KEYS {
            problems.push(format!(
                "line {number}: more than {MAX_KEYS} keys; the file holds the signing key and, \
                 during a rotation, one more"
            ));
            continue;
        }
        match parse_key_line(line) {
            Ok((id, secret)) => match keys.iter().find(|(seen, _, _)| *seen == id) {
                Some((_, _, first)) => problems.push(format!(
                    "line {number}: key id {id} is already used on line {first}"
                )),
                None => keys.push((id, secret, number)),
            },
            Err(why) => problems.push(format!("line {number}: {why}")),
        }
    }
    if key_lines == 0 {
        problems.push(format!(
            "holds no key; write a line \"<id 1-255> <secret>\" with a secret of at least \
             {MIN_SECRET_LEN} bytes"
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(keys
        .into_iter()
        .map(|(id, secret, _)| (id, secret))
        .collect())
}

/// One key line (trimmed, not a comment): the id and the secret.
fn parse_key_line(line: &[u8]) -> Result<(u8, Vec<u8>), String> {
    let words: Vec<&[u8]> = line
        .split(u8::is_ascii_whitespace)
        .filter(|word| !word.is_empty())
        .collect();
    let [id, secret] = words[..] else {
        let why = if words.len() < 2 {
            "expected \"<id 1-255> <secret>\", found one word"
        } else {
            "expected \"<id 1-255> <secret>\"; the secret must not contain white space"
        };
        return Err(why.to_string());
    };
    let id = std::str::from_utf8(id)
        .ok()
        .filter(|text| text.bytes().all(|byte| byte.is_ascii_digit()))
        .and_then(|text| text.parse::<u8>().ok())
        .filter(|id| *id != 0)
        .ok_or("the key id must be a number from 1 to 255")?;
    if secret.len() < MIN_SECRET_LEN {
        return Err(format!(
            "the secret of key {id} is {} bytes; at least {MIN_SECRET_LEN} are needed",
            secret.len()
        ));
    }
    Ok((id, secret.to_vec()))
}

// ---- [[cluster.node]] ----

/// The `node` array of `[cluster]`, checked across nodes; and whether every name was valid.
fn read_nodes(
    diags: &mut Diags,
    table: &Table<'_, '_>,
    fence_devices: Option<&[String]>,
) -> (Vec<ClusterNode>, bool) {
    let Some(value) = table.get("node") else {
        let message =
            "[cluster] has no [[cluster.node]]; list every node of the cluster, this one included";
        diags.error(&table.span, message);
        return (Vec::new(), false);
    };
    let Some(items) = value.get_ref().as_array() else {
        let message = "`node` in [cluster] must be an array of tables: write [[cluster.node]] before each node";
        diags.error(&value.span(), message);
        return (Vec::new(), false);
    };
    let mut nodes = Vec::new();
    let mut names_complete = true;
    for (index, item) in items.iter().enumerate() {
        let Some(node_table) = diags.table("node", "[[cluster.node]]", item) else {
            names_complete = false;
            continue;
        };
        if index == MAX_PEERS {
            let message = format!("a cluster has at most {MAX_PEERS} nodes (a heartbeat reports at most {MAX_PEERS} peers)");
            diags.error(&node_table.span, message);
        }
        let node = read_node(diags, &node_table, fence_devices);
        names_complete &= node.name_at.is_some();
        nodes.push(node);
    }
    if items.is_empty() {
        let message =
            "[cluster] has no [[cluster.node]]; list every node of the cluster, this one included";
        diags.error(&value.span(), message);
    }
    check_unique_names(diags, &nodes);
    check_links(diags, &nodes);
    let nodes = nodes.into_iter().map(|node| node.config).collect();
    (nodes, names_complete)
}

fn read_node(diags: &mut Diags, table: &Table<'_, '_>, fence_devices: Option<&[String]>) -> Node {
    table.check_keys(diags, NODE_KEYS, &[]);
    let name_value = table.required(diags, "name");
    let name = name_value.and_then(|value| read_name(diags, "cluster node `name`", value));
    let links_value = table.required(diags, "links");
    let (links, link_at, links_written) = match links_value {
        Some(value) => read_links(diags, value),
        None => (Vec::new(), Vec::new(), 0),
    };
    let fence = match table.get("fence") {
        Some(value) => read_fence(diags, value, fence_devices),
        None => {
            diags.warn(&table.span, NO_FENCE);
            None
        }
    };
    let fence_delay = table
        .get("fence_delay")
        .and_then(|value| diags.duration("fence_delay", value, Duration::ZERO, FENCE_DELAY_MAX))
        .unwrap_or(Duration::ZERO);
    Node {
        name_at: name.as_ref().and(name_value.map(|value| value.span())),
        config: ClusterNode {
            name: name.unwrap_or_default(),
            links,
            fence,
            fence_delay,
        },
        links_at: links_value.map(|value| value.span()),
        links_written,
        link_at,
    }
}

/// `fence`: "none" or the name of a `[[fence]]` device (checked when `devices` is known).
fn read_fence(diags: &mut Diags, value: &Value<'_>, devices: Option<&[String]>) -> Option<String> {
    let name = diags.string("fence", value)?;
    if name == "none" {
        return None;
    }
    if let Some(devices) = devices {
        if !devices.iter().any(|device| device == name) {
            let known = if devices.is_empty() {
                "there is no [[fence]] device".to_string()
            } else {
                format!("[[fence]] devices: {}", devices.join(", "))
            };
            let message = format!(
                "`fence`: no [[fence]] device named \"{}\" ({known}); name one, or write \
                 fence = \"none\"",
                name.escape_debug()
            );
            diags.error(&value.span(), message);
        }
    }
    Some(name.to_string())
}

/// `links`: 1..=8 addresses, one per heartbeat link; the accepted ones with their spans, and
/// how many were written.
fn read_links(diags: &mut Diags, value: &Value<'_>) -> (Vec<IpAddr>, Vec<Range<usize>>, usize) {
    let Some(items) = diags.array("links", value) else {
        return (Vec::new(), Vec::new(), 0);
    };
    if items.is_empty() || items.len() > MAX_LINKS {
        let message = format!(
            "`links` must list 1 to {MAX_LINKS} addresses (one per heartbeat link), got {}",
            items.len()
        );
        diags.error(&value.span(), message);
    }
    let (links, spans) = read_addresses(diags, "links", items).into_iter().unzip();
    (links, spans, items.len())
}

/// An array of unicast addresses, each accepted one with its span; `key` names it in messages.
fn read_addresses(
    diags: &mut Diags,
    key: &str,
    items: &[Value<'_>],
) -> Vec<(IpAddr, Range<usize>)> {
    let mut found: Vec<(IpAddr, Range<usize>)> = Vec::new();
    for item in items {
        let Some(text) = diags.string(key, item) else {
            continue;
        };
        let problem = match text.parse::<IpAddr>() {
            Err(_) => Some("not an IPv4 or IPv6 address".to_string()),
            Ok(addr) if found.iter().any(|(seen, _)| *seen == addr) => {
                Some(format!("{addr} is listed twice"))
            }
            Ok(addr) if addr.is_unspecified() || addr.is_multicast() || is_broadcast(&addr) => {
                Some(format!("{addr} is not a unicast address"))
            }
            Ok(addr) => {
                found.push((addr, item.span()));
                None
            }
        };
        if let Some(problem) = problem {
            let message = format!("`{key}`: \"{}\": {problem}", text.escape_debug());
            diags.error(&item.span(), message);
        }
    }
    found
}

fn is_broadcast(addr: &IpAddr) -> bool {
    matches!(addr, IpAddr::V4(v4) if v4.is_broadcast())
}

fn check_unique_names(diags: &mut Diags, nodes: &[Node]) {
    let mut seen: HashMap<&str, &Range<usize>> = HashMap::new();
    for node in nodes {
        let Some(at) = &node.name_at else {
            continue;
        };
        let name = node.config.name.as_str();
        match seen.get(name) {
            Some(first) => {
                let line = diags.line_of(first);
                let message =
                    format!("duplicate cluster node name \"{name}\" (first used on line {line})");
                diags.error(at, message);
            }
            None => {
                seen.insert(name, at);
            }
        }
    }
}

/// Every node lists as many links as the first, link N of one family on every node, and no
/// address appears twice in the cluster.
fn check_links(diags: &mut Diags, nodes: &[Node]) {
    let valid_count = |node: &Node| (1..=MAX_LINKS).contains(&node.links_written);
    let Some(first) = nodes.iter().find(|node| node.links_at.is_some()) else {
        return;
    };
    for node in nodes
        .iter()
        .filter(|node| valid_count(node) && valid_count(first))
    {
        let Some(at) = &node.links_at else { continue };
        if node.links_written != first.links_written {
            let message = format!(
                "`links` lists {} addresses but cluster node \"{}\" lists {}; every node has \
                 one address per heartbeat link, in the same order",
                node.links_written, first.config.name, first.links_written
            );
            diags.error(at, message);
        } else if node.config.links.len() == node.links_written
            && first.config.links.len() == first.links_written
        {
            check_link_families(diags, first, node);
        }
    }
    let mut seen: HashMap<IpAddr, &str> = HashMap::new();
    for node in nodes {
        for (addr, at) in node.config.links.iter().zip(&node.link_at) {
            match seen.get(addr) {
                Some(owner) => {
                    let message =
                        format!("`links`: {addr} is already a link of cluster node \"{owner}\"");
                    diags.error(at, message);
                }
                None => {
                    seen.insert(*addr, &node.config.name);
                }
            }
        }
    }
}

/// Link N is one network: the same address family on every node.
fn check_link_families(diags: &mut Diags, first: &Node, node: &Node) {
    let pairs = first.config.links.iter().zip(&node.config.links);
    for (index, ((a, b), at)) in pairs.zip(&node.link_at).enumerate() {
        if a.is_ipv4() != b.is_ipv4() {
            let message = format!(
                "link {} is {b} here but {a} on cluster node \"{}\"; link {} must be of one \
                 address family on every node",
                index + 1,
                first.config.name,
                index + 1
            );
            diags.error(at, message);
        }
    }
}

/// The index of this node in `nodes`; an error at `[cluster]` when it is not listed.
fn find_me(
    diags: &mut Diags,
    table: &Table<'_, '_>,
    nodes: &[ClusterNode],
    me: &str,
    names_complete: bool,
) -> usize {
    if let Some(index) = nodes.iter().position(|node| node.name == me) {
        return index;
    }
    if !me.is_empty() && names_complete && !nodes.is_empty() {
        let names: Vec<&str> = nodes.iter().map(|node| node.name.as_str()).collect();
        let message = format!(
            "this node (\"{me}\", the [node] name) is not in [[cluster.node]] ({}); add it, or \
             set [node] name to one of them",
            names.join(", ")
        );
        diags.error(&table.span, message);
    }
    0
}

// ---- quorum tiebreakers ----

/// `ping_nodes`: unicast IPv4 or IPv6 addresses outside the cluster (a router both nodes
/// reach).
fn read_ping_nodes(diags: &mut Diags, table: &Table<'_, '_>, nodes: &[ClusterNode]) -> Vec<IpAddr> {
    let Some(value) = table.get("ping_nodes") else {
        return Vec::new();
    };
    let Some(items) = diags.array("ping_nodes", value) else {
        return Vec::new();
    };
    let mut pings = Vec::new();
    for (addr, at) in read_addresses(diags, "ping_nodes", items) {
        let owner = nodes.iter().find(|node| node.links.contains(&addr));
        let problem = match owner {
            Some(node) => Some(format!(
                "{addr} is a link of cluster node \"{}\"; a ping node is a third machine, such \
                 as a router both nodes reach",
                node.name
            )),
            None if addr.is_loopback() => Some(format!(
                "{addr} is a loopback address, which always answers"
            )),
            None => ping_node_ipv6_problem(&addr),
        };
        match problem {
            Some(problem) => diags.error(&at, format!("`ping_nodes`: {problem}")),
            None => pings.push(addr),
        }
    }
    pings
}

/// Why IPv6 `addr` cannot be pinged as a ping node (unspecified and multicast addresses are
/// refused with every address list, loopback for both families): a link-local address names
/// no interface, an IPv4-mapped one is an IPv4 address to write as such.
fn ping_node_ipv6_problem(addr: &IpAddr) -> Option<String> {
    let IpAddr::V6(v6) = addr else {
        return None;
    };
    if v6.is_unicast_link_local() {
        return Some(format!(
            "{addr} is a link-local address, which names no interface; use a global address \
             of the ping node"
        ));
    }
    v6.to_ipv4_mapped()
        .map(|v4| format!("{addr} is an IPv4-mapped address; write the IPv4 address {v4} instead"))
}

/// `two_node` needs exactly two nodes; warnings for the quorum setups that can split.
fn check_quorum_options(diags: &mut Diags, table: &Table<'_, '_>, config: &ClusterConfig) {
    let count = config.nodes.len();
    let two_node_at = table.get("two_node").map(|value| value.span());
    let fenced = count == 2 && config.nodes.iter().all(|node| node.fence.is_some());
    if fenced && config.nodes[0].fence_delay == config.nodes[1].fence_delay {
        diags.warn(&table.span, FENCE_RACE);
    }
    if let (true, Some(at)) = (config.two_node, &two_node_at) {
        if count != 2 {
            let message = format!(
                "`two_node = true` is for clusters of exactly two nodes; this one has {count}"
            );
            diags.error(at, message);
            return;
        }
        if config.ping_nodes.is_empty() && !fenced {
            diags.warn(at, TWO_NODE_SPLIT);
        } else {
            diags.warn(
                at,
                "`two_node` is ignored while `ping_nodes` are set: the ping nodes decide quorum",
            );
        }
        return;
    }
    if count == 1 {
        let message = "a one-node cluster has no node to fail over to; list the other nodes in [[cluster.node]]";
        diags.warn(&table.span, message);
    }
    if count == 2 && config.ping_nodes.is_empty() && !fenced {
        diags.warn(&table.span, TWO_NODE_BLIND);
    }
    if let (true, Some(value)) = (
        count > 2 && !config.ping_nodes.is_empty(),
        table.get("ping_nodes"),
    ) {
        let message = format!(
            "`ping_nodes` only decide quorum in a two-node cluster; with {count} nodes the \
             majority does and they are ignored"
        );
        diags.warn(&value.span(), message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> Vec<u8> {
        vec![byte; MIN_SECRET_LEN]
    }

    #[test]
    fn key_file_with_comments_and_two_keys() {
        let text = b"# rotation\n\n 2 bbbbbbbbbbbbbbbb \r\n1\taaaaaaaaaaaaaaaa\n";
        let keys = parse_key_file(text).unwrap();
        assert_eq!(keys, [(2, secret(b'b')), (1, secret(b'a'))]);
    }

    #[test]
    fn key_file_problems_name_the_line_not_the_secret() {
        let problems = parse_key_file(b"0 aaaaaaaaaaaaaaaa\nonlysecretwordxyz\n").unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("line 1: the key id must be"));
        assert!(problems[1].starts_with("line 2: expected"));
        let problems = parse_key_file(b"3 short\n\n4 two words here\n").unwrap_err();
        assert!(problems[0].starts_with("line 1: the secret of key 3 is 5 bytes"));
        assert!(problems[1].starts_with("line 3: expected"));
        assert!(problems[1].contains("white space"));
        for problem in &problems {
            assert!(!problem.contains("aaaa") && !problem.contains("onlysecret"));
            assert!(!problem.contains("short") && !problem.contains("words"));
        }
    }

    #[test]
    fn key_file_ids_are_distinct_and_the_file_not_empty() {
        let problems = parse_key_file(b"1 aaaaaaaaaaaaaaaa\n1 bbbbbbbbbbbbbbbb\n").unwrap_err();
        assert_eq!(problems, ["line 2: key id 1 is already used on line 1"]);
        let problems = parse_key_file(b"# nothing\n").unwrap_err();
        assert!(problems[0].starts_with("holds no key"));
        let problems = parse_key_file(b"+5 aaaaaaaaaaaaaaaa\n256 aaaaaaaaaaaaaaaa\n").unwrap_err();
        assert_eq!(problems.len(), 2);
    }
}
