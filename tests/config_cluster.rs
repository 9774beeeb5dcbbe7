//! Cluster-mode config: `[cluster]`, `[[cluster.node]]`, `[[group]]`, `[[group.resource]]`,
//! `quorum_gated` and the heartbeat key file. A full config read back field by field, the
//! defaults, every validation rule at its exact line and column, the key file's own checks
//! (secrets never printed), and what `relevo check` warns about.

mod config_support;

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config_support::{assert_refused, refused};
use relevo::config::{self, Config, Diagnostic, QuorumPolicyConfig, Vip};

const SECRET_1: &str = "first-secret-0123456789";
const SECRET_2: &str = "second-secret-ABCDEFGHIJ";

/// A temporary directory with a key file of mode 0600; removed on drop.
struct Fixture {
    dir: PathBuf,
    key: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("relevo-cluster-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let key = dir.join("authkey");
        write_key_file(&key, &format!("# heartbeat keys\n1 {SECRET_1}\n"), 0o600);
        Fixture { dir, key }
    }

    /// `body` with `@KEY@` replaced by the key file's path.
    fn text(&self, body: &str) -> String {
        body.replace("@KEY@", self.key.to_str().unwrap())
    }

    fn parse(&self, body: &str) -> Config {
        let text = self.text(body);
        config::parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn write_key_file(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Two nodes, two links each, a ping node: valid. Lines: 4 `[cluster]`, 5 `id`,
/// 6 `auth_key_file`, 7 `ping_nodes`, 9 and 13 `[[cluster.node]]`, 15 the last line.
const BASE: &str = "\
[node]
name = \"n1\"

[cluster]
id = 3
auth_key_file = \"@KEY@\"
ping_nodes = [\"192.0.2.1\"]

[[cluster.node]]
name = \"n1\"
links = [\"192.0.2.11\", \"198.51.100.11\"]

[[cluster.node]]
name = \"n2\"
links = [\"192.0.2.12\", \"198.51.100.12\"]
";

/// BASE with `extra` lines in `[cluster]` from line 8 on.
fn with_cluster_keys(extra: &str) -> String {
    BASE.replace(
        "ping_nodes = [\"192.0.2.1\"]\n",
        &format!("ping_nodes = [\"192.0.2.1\"]\n{extra}"),
    )
}

/// BASE followed by `rest` from line 16 on.
fn with(rest: &str) -> String {
    format!("{BASE}{rest}")
}

/// A group from line 16: `[[group]]` 16, `name` 17, `nodes` 18, then `extra` from line 19.
fn with_group(extra: &str) -> String {
    with(&format!(
        "[[group]]\nname = \"db\"\nnodes = [\"n1\", \"n2\"]\n{extra}"
    ))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn vip(text: &str) -> Vip {
    text.parse().unwrap()
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn errors(fixture: &Fixture, body: &str) -> Vec<Diagnostic> {
    refused(&fixture.text(body))
}

#[track_caller]
fn assert_errors(fixture: &Fixture, body: &str, expected: &[(usize, usize, &str)]) {
    assert_refused(&fixture.text(body), expected);
}

#[track_caller]
fn assert_error(fixture: &Fixture, body: &str, line: usize, column: usize, fragment: &str) {
    assert_errors(fixture, body, &[(line, column, fragment)]);
}

/// The warnings of a valid config as (line, column, message), without the warning about a
/// node without a `fence` key (tests/config_fence.rs checks that one).
fn warnings(config: &Config) -> Vec<(usize, usize, String)> {
    let warnings = config.warnings.iter();
    warnings
        .filter(|w| !w.message.starts_with(NO_FENCE_WARNING))
        .map(|w| (w.line, w.column, w.message.clone()))
        .collect()
}

const NO_FENCE_WARNING: &str = "this node has no `fence` key";

/// `body` with `fence = "none"` after each node's `links` line (no warning about it).
fn fence_none(body: &str) -> String {
    let lines = body.lines().map(|line| {
        if line.starts_with("links = ") {
            format!("{line}\nfence = \"none\"\n")
        } else {
            format!("{line}\n")
        }
    });
    lines.collect()
}

// ---- valid configs ----

const FULL: &str = "\
[node]
name = \"n2\"

[cluster]
id = 200
port = 6940
keepalive = \"200ms\"
warntime = \"1s\"
deadtime = \"2s\"
initdead = \"2s\"
auth_key_file = \"@KEY@\"
quorum_policy = \"freeze\"
ping_nodes = [\"192.0.2.1\", \"198.51.100.1\"]

[[cluster.node]]
name = \"n1\"
links = [\"192.0.2.11\", \"2001:db8:1::11\"]
fence = \"none\"

[[cluster.node]]
name = \"n2\"
links = [\"192.0.2.12\", \"2001:db8:1::12\"]
fence = \"none\"
fence_delay = \"1500ms\"

[[vrrp]]
name = \"web\"
interface = \"eth0\"
vrid = 51
vips = [\"192.0.2.100/24\"]
quorum_gated = true

[[group]]
name = \"db\"
nodes = [\"n2\", \"n1\"]
auto_failback = false
vips = [{ address = \"192.0.2.200/24\", interface = \"eth0\" }, { address = \"2001:db8::200\", interface = \"eth1\" }]
max_start_failures = 3
takeover_delay = \"45s\"

[[group.resource]]
name = \"fs\"
priority = 100
start = [\"/etc/relevo/hooks/fs\", \"mount\"]
stop = [\"/etc/relevo/hooks/fs\", \"umount\"]
timeout = \"2m\"

[[group.resource]]
name = \"db-a\"
start = [\"/usr/bin/db\", \"start\", \"a\"]
stop = [\"/usr/bin/db\", \"stop\", \"a\"]

[[group.resource]]
name = \"ip-check\"
priority = 1000
start = [\"/bin/true\"]
stop = [\"/bin/true\"]

[[group.resource]]
name = \"db-b\"
start = [\"/usr/bin/db\", \"start\", \"b\"]
stop = [\"/usr/bin/db\", \"stop\", \"b\"]

[[group]]
name = \"idle\"
nodes = [\"n1\"]
";

#[test]
fn full_cluster_config_reads_every_field() {
    let fixture = Fixture::new("full");
    write_key_file(
        &fixture.key,
        &format!("# rotation in progress\n\n7 {SECRET_2}\n1 {SECRET_1}\n"),
        0o600,
    );
    let config = fixture.parse(FULL);
    let cluster = config.cluster.as_ref().expect("a cluster");
    assert_eq!(cluster.id, 200);
    assert_eq!(cluster.port, 6940);
    assert_eq!(cluster.keepalive, Duration::from_millis(200));
    assert_eq!(cluster.warntime, Duration::from_secs(1));
    assert_eq!(cluster.deadtime, Duration::from_secs(2));
    assert_eq!(cluster.initdead, Duration::from_secs(2));
    let keys = cluster.auth_keys.keys();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys[0],
        (7, SECRET_2.as_bytes().to_vec()),
        "the first signs"
    );
    assert_eq!(keys[1], (1, SECRET_1.as_bytes().to_vec()));
    let ring = cluster.auth_keys.key_ring().unwrap();
    assert_eq!(ring.ids().collect::<Vec<_>>(), [7, 1]);
    assert_eq!(cluster.quorum_policy, QuorumPolicyConfig::Freeze);
    assert_eq!(cluster.ping_nodes, [ip("192.0.2.1"), ip("198.51.100.1")]);
    assert!(!cluster.two_node);
    let names: Vec<&str> = cluster.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["n1", "n2"]);
    assert_eq!(
        cluster.nodes[0].links,
        [ip("192.0.2.11"), ip("2001:db8:1::11")]
    );
    assert_eq!(
        cluster.nodes[1].links,
        [ip("192.0.2.12"), ip("2001:db8:1::12")]
    );
    assert_eq!((cluster.me, cluster.my_id(), cluster.links()), (1, 2, 2));

    assert!(config.vrrp[0].quorum_gated);
    assert_eq!(config.groups.len(), 2);
    let db = &config.groups[0];
    assert_eq!(db.name, "db");
    assert_eq!(db.nodes, ["n2", "n1"]);
    assert!(!db.auto_failback);
    let vips: Vec<(Vip, &str)> = db
        .vips
        .iter()
        .map(|v| (v.vip, v.interface.as_str()))
        .collect();
    assert_eq!(
        vips,
        [
            (vip("192.0.2.200/24"), "eth0"),
            (vip("2001:db8::200/128"), "eth1")
        ]
    );
    assert_eq!(db.max_start_failures, 3);
    assert_eq!(db.takeover_delay, Some(Duration::from_secs(45)));

    let order: Vec<(&str, u32)> = db
        .resources
        .iter()
        .map(|r| (r.name.as_str(), r.priority))
        .collect();
    assert_eq!(
        order,
        [("ip-check", 1000), ("fs", 100), ("db-a", 0), ("db-b", 0)],
        "descending priority, ties in file order"
    );
    let fs_resource = &db.resources[1];
    assert_eq!(fs_resource.start, argv(&["/etc/relevo/hooks/fs", "mount"]));
    assert_eq!(fs_resource.stop, argv(&["/etc/relevo/hooks/fs", "umount"]));
    assert_eq!(fs_resource.timeout, Duration::from_secs(120));
    assert_eq!(db.resources[2].start, argv(&["/usr/bin/db", "start", "a"]));
    assert_eq!(db.resources[2].timeout, Duration::from_secs(30), "default");

    let idle = &config.groups[1];
    assert_eq!(idle.nodes, ["n1"]);
    assert!(idle.auto_failback, "default");
    assert!(idle.vips.is_empty() && idle.resources.is_empty());
    assert_eq!((idle.max_start_failures, idle.takeover_delay), (1, None));
    assert!(warnings(&config).is_empty(), "{:?}", config.warnings);
}

#[test]
fn a_minimal_cluster_gets_every_default_and_needs_no_vrrp() {
    let fixture = Fixture::new("minimal");
    let body =
        "[node]\nname = \"b\"\n[cluster]\nid = 1\nauth_key_file = \"@KEY@\"\ntwo_node = true\n\
                [[cluster.node]]\nname = \"a\"\nlinks = [\"10.0.0.1\"]\n\
                [[cluster.node]]\nname = \"b\"\nlinks = [\"10.0.0.2\"]\n";
    let config = fixture.parse(body);
    assert!(config.vrrp.is_empty() && config.groups.is_empty());
    let cluster = config.cluster.unwrap();
    assert_eq!(cluster.port, 694);
    let timers = [
        cluster.keepalive,
        cluster.warntime,
        cluster.deadtime,
        cluster.initdead,
    ];
    assert_eq!(timers, [1, 5, 10, 30].map(Duration::from_secs));
    assert_eq!(cluster.quorum_policy, QuorumPolicyConfig::Stop);
    assert!(cluster.ping_nodes.is_empty());
    assert!(cluster.two_node);
    assert_eq!((cluster.me, cluster.my_id()), (1, 2));
    assert_eq!(
        cluster.auth_keys.keys(),
        [(1, SECRET_1.as_bytes().to_vec())]
    );
}

#[test]
fn debug_output_never_shows_a_secret() {
    let fixture = Fixture::new("debug");
    let config = fixture.parse(BASE);
    let debug = format!("{config:?}");
    assert!(debug.contains("AuthKeys"), "{debug}");
    assert!(!debug.contains(SECRET_1), "{debug}");
    assert!(!debug.contains(&format!("{:?}", SECRET_1.as_bytes())));
}

#[test]
fn cluster_hooks_take_a_path_or_an_argv_per_event() {
    let fixture = Fixture::new("hooks");
    let config = fixture.parse(&with_cluster_keys(
        "hooks = { node-dead = \"/etc/relevo/hooks/page\", quorum-lost = [\"/etc/relevo/hooks/page\", \"quorum\"] }\nhook_timeout = \"5s\"\n",
    ));
    let cluster = config.cluster.unwrap();
    assert_eq!(
        cluster.hooks.node_dead,
        Some(argv(&["/etc/relevo/hooks/page"]))
    );
    assert_eq!(
        cluster.hooks.quorum_lost,
        Some(argv(&["/etc/relevo/hooks/page", "quorum"]))
    );
    assert_eq!(cluster.hooks.quorum_regained, None);
    assert_eq!(cluster.hook_timeout, Duration::from_secs(5));
    let defaults = fixture.parse(BASE).cluster.unwrap();
    assert_eq!(defaults.hook_timeout, Duration::from_secs(30));
    // An unknown event and a relative program are refused at their place.
    assert_errors(
        &fixture,
        &with_cluster_keys("hooks = { node-down = \"/x\", quorum-lost = \"page\" }\n"),
        &[(8, 11, "node-down"), (8, 43, "absolute")],
    );
}

#[test]
fn equal_deadtime_and_initdead_are_fine() {
    let fixture = Fixture::new("equal");
    let config = fixture.parse(&with_cluster_keys("deadtime = \"30s\"\n"));
    let cluster = config.cluster.unwrap();
    assert_eq!(cluster.deadtime, cluster.initdead);
}

// ---- [cluster] keys ----

#[test]
fn cluster_keys_are_checked() {
    let fixture = Fixture::new("keys");
    let body = with_cluster_keys(
        "port = 0\nkeepalive = \"0s\"\nquorum_policy = \"halt\"\ntwo_node = \"yes\"\nlater = 1\n",
    )
    .replace("id = 3", "id = 256");
    assert_errors(
        &fixture,
        &body,
        &[
            (5, 6, "`id` must be between 1 and 255, got 256"),
            (8, 8, "`port` must be between 1 and 65535, got 0"),
            (9, 13, "`keepalive` must be between 1ms and 1h, got \"0s\""),
            (
                10,
                17,
                "`quorum_policy` must be \"stop\", \"freeze\" or \"ignore\", got \"halt\"",
            ),
            (11, 12, "`two_node` must be true or false, found a string"),
            (12, 1, "unknown key `later` in [cluster]"),
        ],
    );
}

#[test]
fn required_cluster_keys_are_reported_at_the_header() {
    let fixture = Fixture::new("required");
    let body = BASE
        .replace("id = 3\n", "")
        .replace("auth_key_file = \"@KEY@\"\n", "");
    assert_errors(
        &fixture,
        &body,
        &[
            (4, 1, "[cluster] is missing the required key `id`"),
            (
                4,
                1,
                "[cluster] is missing the required key `auth_key_file`",
            ),
        ],
    );
}

#[test]
fn timers_must_grow_and_the_error_names_both_values() {
    let fixture = Fixture::new("timers");
    assert_error(
        &fixture,
        &with_cluster_keys("keepalive = \"5s\"\n"),
        8,
        13,
        "`keepalive` (5s) must be shorter than `warntime` (5s, the default)",
    );
    assert_error(
        &fixture,
        &with_cluster_keys("keepalive = \"2s\"\nwarntime = \"1500ms\"\n"),
        9,
        12,
        "`warntime` (1.5s) must be longer than `keepalive` (2s)",
    );
    assert_error(
        &fixture,
        &with_cluster_keys("warntime = \"20s\"\n"),
        8,
        12,
        "`warntime` (20s) must be shorter than `deadtime` (10s, the default)",
    );
    assert_error(
        &fixture,
        &with_cluster_keys("deadtime = \"31s\"\n"),
        8,
        12,
        "`deadtime` (31s) must be at most `initdead` (30s, the default)",
    );
    assert_error(
        &fixture,
        &with_cluster_keys("initdead = \"9s\"\n"),
        8,
        12,
        "`initdead` (9s) must be at least `deadtime` (10s, the default)",
    );
    assert_error(
        &fixture,
        &with_cluster_keys("initdead = \"2h\"\n"),
        8,
        12,
        "`initdead` must be between 1ms and 1h",
    );
}

// ---- the key file ----

#[test]
fn the_key_file_path_must_be_absolute_and_exist() {
    let fixture = Fixture::new("path");
    let body = BASE.replace("@KEY@", "authkey");
    assert_error(
        &fixture,
        &body,
        6,
        17,
        "`auth_key_file` \"authkey\" must be an absolute path",
    );
    let missing = fixture.dir.join("missing");
    let body = BASE.replace("@KEY@", missing.to_str().unwrap());
    assert_error(
        &fixture,
        &body,
        6,
        17,
        "cannot be read: No such file or directory",
    );
    let body = BASE.replace("@KEY@", fixture.dir.to_str().unwrap());
    assert_error(&fixture, &body, 6, 17, "is not a regular file");
}

#[test]
fn a_symlinked_key_file_is_refused() {
    let fixture = Fixture::new("symlink");
    let link = fixture.dir.join("link");
    std::os::unix::fs::symlink(&fixture.key, &link).unwrap();
    let body = BASE.replace("@KEY@", link.to_str().unwrap());
    assert_error(&fixture, &body, 6, 17, "is a symbolic link");
}

#[test]
fn a_key_file_readable_by_others_is_refused() {
    let fixture = Fixture::new("mode");
    fs::set_permissions(&fixture.key, fs::Permissions::from_mode(0o644)).unwrap();
    assert_error(
        &fixture,
        BASE,
        6,
        17,
        "has mode 0644: group or others may read or write",
    );
    assert!(errors(&fixture, BASE)[0].message.ends_with("chmod 600 it"));
    fs::set_permissions(&fixture.key, fs::Permissions::from_mode(0o620)).unwrap();
    assert_error(&fixture, BASE, 6, 17, "has mode 0620");
    fs::set_permissions(&fixture.key, fs::Permissions::from_mode(0o400)).unwrap();
    fixture.parse(BASE);
}

#[test]
fn key_file_problems_give_the_key_file_line_and_never_the_secret() {
    let fixture = Fixture::new("lines");
    write_key_file(
        &fixture.key,
        &format!("# keys\n1 {SECRET_1}\n\n{SECRET_2}\n"),
        0o600,
    );
    assert_error(
        &fixture,
        BASE,
        6,
        17,
        "line 4: expected \"<id 1-255> <secret>\", found one word",
    );
    let rendered = config::parse(&fixture.text(BASE), Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(!rendered.contains("secret-"), "{rendered}");
    write_key_file(
        &fixture.key,
        &format!("1 {SECRET_1}\n# c\n1 {SECRET_2}\n"),
        0o600,
    );
    assert_error(
        &fixture,
        BASE,
        6,
        17,
        "line 3: key id 1 is already used on line 1",
    );
    let rendered = errors(&fixture, BASE)[0].to_string();
    assert!(!rendered.contains("secret-"), "{rendered}");
}

#[test]
fn three_keys_are_refused() {
    let fixture = Fixture::new("three");
    let text = format!("1 {SECRET_1}\n2 {SECRET_2}\n3 {SECRET_2}x\n");
    write_key_file(&fixture.key, &text, 0o600);
    assert_error(&fixture, BASE, 6, 17, "line 3: more than 2 keys");
}

#[test]
fn short_secrets_bad_ids_and_spaces_are_refused() {
    let fixture = Fixture::new("short");
    let text = "2 0123456789abcde\n# x\n256 0123456789abcdef\n";
    write_key_file(&fixture.key, text, 0o600);
    assert_errors(
        &fixture,
        BASE,
        &[
            (
                6,
                17,
                "line 1: the secret of key 2 is 15 bytes; at least 16 are needed",
            ),
            (6, 17, "line 3: the key id must be a number from 1 to 255"),
        ],
    );
    write_key_file(&fixture.key, "3 has a space inside it\n", 0o600);
    assert_error(
        &fixture,
        BASE,
        6,
        17,
        "line 1: expected \"<id 1-255> <secret>\"; the secret must not contain white space",
    );
    let rendered = errors(&fixture, BASE)[0].to_string();
    assert!(!rendered.contains("space inside"), "{rendered}");
    write_key_file(&fixture.key, "# only a comment\n\n", 0o600);
    assert_error(&fixture, BASE, 6, 17, "holds no key");
}

// ---- [[cluster.node]] ----

#[test]
fn a_cluster_without_nodes_is_refused() {
    let fixture = Fixture::new("nonodes");
    let body = "[node]\nname = \"n1\"\n[cluster]\nid = 1\nauth_key_file = \"@KEY@\"\n";
    assert_error(&fixture, body, 3, 1, "[cluster] has no [[cluster.node]]");
    let body = "[node]\nname = \"n1\"\n[cluster]\nid = 1\nauth_key_file = \"@KEY@\"\nnode = 5\n";
    assert_error(
        &fixture,
        body,
        6,
        8,
        "must be an array of tables: write [[cluster.node]]",
    );
}

#[test]
fn node_names_are_validated_and_unique() {
    let fixture = Fixture::new("names");
    let body = with("\n[[cluster.node]]\nname = \"n1\"\nlinks = [\"192.0.2.13\", \"198.51.100.13\"]\n\n[[cluster.node]]\nname = \"bad name\"\nlinks = [\"192.0.2.14\", \"198.51.100.14\"]\n");
    assert_errors(
        &fixture,
        &body,
        &[
            (
                18,
                8,
                "duplicate cluster node name \"n1\" (first used on line 10)",
            ),
            (22, 8, "cluster node `name` \"bad name\" contains ' '"),
        ],
    );
    let body = BASE.replace("name = \"n2\"\n", "");
    assert_error(
        &fixture,
        &body,
        13,
        1,
        "[[cluster.node]] is missing the required key `name`",
    );
}

#[test]
fn this_node_must_be_listed() {
    let fixture = Fixture::new("me");
    let body = BASE.replace("name = \"n1\"\n\n[cluster]", "name = \"n9\"\n\n[cluster]");
    assert_error(
        &fixture,
        &body,
        4,
        1,
        "this node (\"n9\", the [node] name) is not in [[cluster.node]] (n1, n2)",
    );
}

#[test]
fn every_node_has_as_many_links_as_the_first() {
    let fixture = Fixture::new("linkcount");
    let body = BASE.replace(
        "links = [\"192.0.2.12\", \"198.51.100.12\"]",
        "links = [\"192.0.2.12\"]",
    );
    assert_error(
        &fixture,
        &body,
        15,
        9,
        "`links` lists 1 addresses but cluster node \"n1\" lists 2",
    );
}

#[test]
fn links_are_checked() {
    let fixture = Fixture::new("links");
    let nine: Vec<String> = (1..=9).map(|i| format!("\"10.0.0.{i}\"")).collect();
    let body = BASE
        .replace(
            "links = [\"192.0.2.11\", \"198.51.100.11\"]",
            &format!("links = [{}]", nine.join(", ")),
        )
        .replace(
            "links = [\"192.0.2.12\", \"198.51.100.12\"]",
            "links = [\"10.0.0.1\", \"224.0.0.1\", \"x\", \"10.0.0.1\", 5]",
        );
    assert_errors(
        &fixture,
        &body,
        &[
            (
                11,
                9,
                "`links` must list 1 to 8 addresses (one per heartbeat link), got 9",
            ),
            (
                15,
                10,
                "`links`: 10.0.0.1 is already a link of cluster node \"n1\"",
            ),
            (
                15,
                22,
                "`links`: \"224.0.0.1\": 224.0.0.1 is not a unicast address",
            ),
            (15, 35, "`links`: \"x\": not an IPv4 or IPv6 address"),
            (15, 40, "`links`: \"10.0.0.1\": 10.0.0.1 is listed twice"),
            (15, 52, "`links` must be a string, found an integer"),
        ],
    );
    let body = BASE.replace("links = [\"192.0.2.12\", \"198.51.100.12\"]", "links = []");
    assert_error(&fixture, &body, 15, 9, "`links` must list 1 to 8 addresses");
    let body = BASE.replace("\"198.51.100.12\"", "\"2001:db8::12\"");
    assert_error(
        &fixture,
        &body,
        15,
        24,
        "link 2 is 2001:db8::12 here but 198.51.100.11 on cluster node \"n1\"",
    );
}

#[test]
fn a_node_fence_names_a_device_or_none() {
    let fixture = Fixture::new("fence");
    let body = BASE.replace(
        "name = \"n2\"\n",
        "name = \"n2\"\nfence = \"n2-bmc\"\nfence_delay = \"61s\"\n",
    );
    assert_errors(
        &fixture,
        &body,
        &[
            (
                15,
                9,
                "`fence`: no [[fence]] device named \"n2-bmc\" (there is no [[fence]] device); \
                 name one, or write fence = \"none\"",
            ),
            (
                16,
                15,
                "`fence_delay` must be between 0s and 1m, got \"61s\"",
            ),
        ],
    );
    let config =
        fixture.parse(&BASE.replace("name = \"n2\"\n", "name = \"n2\"\nfence = \"none\"\n"));
    let cluster = config.cluster.expect("a cluster");
    assert_eq!(cluster.nodes[1].fence, None);
    assert_eq!(cluster.nodes[1].fence_delay, Duration::ZERO);
}

// ---- quorum options ----

#[test]
fn two_node_needs_exactly_two_nodes() {
    let fixture = Fixture::new("twonode");
    let body = with_cluster_keys("two_node = true\n")
        + "\n[[cluster.node]]\nname = \"n3\"\nlinks = [\"192.0.2.13\", \"198.51.100.13\"]\n";
    assert_error(
        &fixture,
        &body,
        8,
        12,
        "`two_node = true` is for clusters of exactly two nodes; this one has 3",
    );
}

#[test]
fn ping_nodes_are_checked() {
    let fixture = Fixture::new("ping");
    let body = BASE.replace(
        "ping_nodes = [\"192.0.2.1\"]",
        "ping_nodes = [\"192.0.2.12\", \"127.0.0.1\", \"0.0.0.0\", \"192.0.2.1\", \"192.0.2.1\"]",
    );
    assert_errors(
        &fixture,
        &body,
        &[
            (
                7,
                15,
                "`ping_nodes`: 192.0.2.12 is a link of cluster node \"n2\"",
            ),
            (7, 29, "`ping_nodes`: 127.0.0.1 is a loopback address"),
            (
                7,
                42,
                "`ping_nodes`: \"0.0.0.0\": 0.0.0.0 is not a unicast address",
            ),
            (
                7,
                66,
                "`ping_nodes`: \"192.0.2.1\": 192.0.2.1 is listed twice",
            ),
        ],
    );
}

#[test]
fn ipv6_ping_nodes_are_accepted_when_global_unicast() {
    let fixture = Fixture::new("ping6");
    let body = BASE.replace(
        "ping_nodes = [\"192.0.2.1\"]",
        "ping_nodes = [\"2001:db8::1\", \"192.0.2.1\"]",
    );
    let config = fixture.parse(&body);
    assert!(warnings(&config).is_empty(), "{:?}", warnings(&config));
    let cluster = config.cluster.expect("a cluster section");
    assert_eq!(cluster.ping_nodes, [ip("2001:db8::1"), ip("192.0.2.1")]);
    // Link-local, loopback, multicast, unspecified and IPv4-mapped addresses are refused,
    // each at its own column; the global one after them is fine.
    let body = BASE.replace(
        "ping_nodes = [\"192.0.2.1\"]",
        "ping_nodes = [\"fe80::1\", \"::1\", \"ff02::1\", \"::\", \"::ffff:192.0.2.1\", \
         \"2001:db8::1\"]",
    );
    assert_errors(
        &fixture,
        &body,
        &[
            (
                7,
                15,
                "`ping_nodes`: fe80::1 is a link-local address, which names no interface",
            ),
            (7, 26, "`ping_nodes`: ::1 is a loopback address"),
            (
                7,
                33,
                "`ping_nodes`: \"ff02::1\": ff02::1 is not a unicast address",
            ),
            (7, 44, "`ping_nodes`: \"::\": :: is not a unicast address"),
            (
                7,
                50,
                "`ping_nodes`: ::ffff:192.0.2.1 is an IPv4-mapped address; write the IPv4 \
                 address 192.0.2.1 instead",
            ),
        ],
    );
}

#[test]
fn ping_nodes_beyond_two_nodes_are_a_warning() {
    let fixture = Fixture::new("pingmany");
    let body =
        with("\n[[cluster.node]]\nname = \"n3\"\nlinks = [\"192.0.2.13\", \"198.51.100.13\"]\n");
    let config = fixture.parse(&body);
    assert_eq!(
        warnings(&config),
        [(
            7,
            14,
            "`ping_nodes` only decide quorum in a two-node cluster; with 3 nodes the majority \
             does and they are ignored"
                .to_string()
        )]
    );
}

#[test]
fn a_one_node_cluster_is_a_warning() {
    let fixture = Fixture::new("onenode");
    let body = "[node]\nname = \"n1\"\n[cluster]\nid = 1\nauth_key_file = \"@KEY@\"\n\
                [[cluster.node]]\nname = \"n1\"\nlinks = [\"10.0.0.1\"]\n";
    let config = fixture.parse(body);
    let found = warnings(&config);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0, found[0].1), (3, 1));
    assert!(found[0]
        .2
        .starts_with("a one-node cluster has no node to fail over to"));
}

#[test]
fn check_warns_about_a_two_node_cluster_without_a_tiebreaker() {
    let fixture = Fixture::new("check");
    let path = fixture.dir.join("relevo.toml");
    fs::write(
        &path,
        fixture.text(&fence_none(
            &BASE.replace("ping_nodes = [\"192.0.2.1\"]\n", ""),
        )),
    )
    .unwrap();
    let report = config::run_check(&path);
    assert_eq!(report.code, 0, "{}", report.stderr);
    let expected = format!(
        "{}:4:1: warning: a two-node cluster without ping_nodes (or fencing) cannot tell a dead \
         peer from a cut link; set ping_nodes, or two_node = true to keep quorum alone\n    \
         [cluster]\n    ^\n",
        path.display()
    );
    assert_eq!(report.stderr, expected);
    assert_eq!(
        report.stdout,
        format!(
            "{}: OK\nnode n1 (control socket /run/relevo/relevo.sock)\ncluster 3: node n1 (id 1) \
             of n1,n2, 2 links, port 694, keepalive 1s warntime 5s deadtime 10s initdead 30s, \
             quorum policy stop, key ids 1\n",
            path.display()
        )
    );
}

#[test]
fn check_warns_that_two_node_risks_split_brain() {
    let fixture = Fixture::new("checksplit");
    let path = fixture.dir.join("relevo.toml");
    let body = fence_none(&BASE.replace("ping_nodes = [\"192.0.2.1\"]", "two_node = true"));
    fs::write(&path, fixture.text(&body)).unwrap();
    let report = config::run_check(&path);
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert!(
        report.stderr.starts_with(&format!(
            "{}:7:12: warning: `two_node = true` lets each of the two nodes keep quorum alone: \
             a cut link between them makes both run every group (split brain)",
            path.display()
        )),
        "{}",
        report.stderr
    );
    assert_eq!(report.stderr.matches("warning").count(), 1);
    assert!(
        report.stdout.contains(" two_node, key ids 1\n"),
        "{}",
        report.stdout
    );
}

#[test]
fn check_summarises_groups_and_gated_instances() {
    let fixture = Fixture::new("checkfull");
    write_key_file(
        &fixture.key,
        &format!("7 {SECRET_2}\n1 {SECRET_1}\n"),
        0o600,
    );
    let path = fixture.dir.join("relevo.toml");
    fs::write(
        &path,
        fixture.text(
            &fence_none(FULL).replace("fence = \"none\"\nfence = \"none\"\n", "fence = \"none\"\n"),
        ),
    )
    .unwrap();
    let report = config::run_check(&path);
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert_eq!(report.stderr, "");
    let lines: Vec<&str> = report.stdout.lines().collect();
    assert_eq!(
        lines[2],
        "cluster 200: node n2 (id 2) of n1,n2, 2 links, port 6940, keepalive 200ms warntime 1s \
         deadtime 2s initdead 2s, quorum policy freeze ping nodes 192.0.2.1,198.51.100.1, key ids 7,1"
    );
    assert!(
        lines[3].ends_with("multicast, quorum-gated"),
        "{}",
        lines[3]
    );
    assert_eq!(
        lines[4],
        "group db: nodes n2,n1 failback off vips 192.0.2.200/24 on eth0,2001:db8::200/128 on eth1 \
         resources ip-check (1000),fs (100),db-a (0),db-b (0) max start failures 3 takeover delay 45s"
    );
    assert_eq!(
        lines[5],
        "group idle: nodes n1 failback on vips none resources none max start failures 1 takeover delay default"
    );
    assert!(!report.stdout.contains("secret"));
}

// ---- quorum_gated ----

#[test]
fn quorum_gated_needs_a_cluster() {
    let fixture = Fixture::new("gated");
    let instance =
        "[[vrrp]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"192.0.2.100/24\"]\n";
    assert_error(
        &fixture,
        &format!("{instance}quorum_gated = true\n"),
        6,
        16,
        "`quorum_gated` needs a [cluster] table",
    );
    let config = fixture.parse(&format!("{instance}quorum_gated = false\n"));
    assert!(!config.vrrp[0].quorum_gated && config.cluster.is_none());
    assert_error(
        &fixture,
        &with(&format!("{instance}quorum_gated = 1\n")),
        21,
        16,
        "`quorum_gated` must be true or false, found an integer",
    );
    let config = fixture.parse(&with(instance));
    assert!(!config.vrrp[0].quorum_gated, "default");
}

// ---- [[group]] ----

#[test]
fn groups_need_a_cluster() {
    let fixture = Fixture::new("nocluster");
    let body = "[[vrrp]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"192.0.2.100/24\"]\n\
                \n[[group]]\nname = \"db\"\nnodes = [\"n1\"]\n\n[[group]]\nname = \"db2\"\nnodes = [\"n1\"]\n";
    assert_error(
        &fixture,
        body,
        7,
        1,
        "[[group]] resource groups need a [cluster] table",
    );
}

#[test]
fn group_keys_are_checked() {
    let fixture = Fixture::new("groupkeys");
    let body = with_group(
        "auto_failback = 1\nmax_start_failures = 11\ntakeover_delay = \"2h\"\nresources = []\n",
    );
    assert_errors(
        &fixture,
        &body,
        &[
            (
                19,
                17,
                "`auto_failback` must be true or false, found an integer",
            ),
            (
                20,
                22,
                "`max_start_failures` must be between 1 and 10, got 11",
            ),
            (
                21,
                18,
                "`takeover_delay` must be between 0s and 1h, got \"2h\"",
            ),
            (22, 1, "unknown key `resources` in [[group]]"),
        ],
    );
    let body = with("[[group]]\nnodes = [\"n1\"]\n");
    assert_error(
        &fixture,
        &body,
        16,
        1,
        "[[group]] is missing the required key `name`",
    );
    let body = with_group("max_start_failures = 0\n");
    assert_error(
        &fixture,
        &body,
        19,
        22,
        "`max_start_failures` must be between 1 and 10, got 0",
    );
}

#[test]
fn group_nodes_must_be_cluster_nodes_once_each() {
    let fixture = Fixture::new("groupnodes");
    let body = with_group("").replace(
        "nodes = [\"n1\", \"n2\"]",
        "nodes = [\"n1\", \"n3\", \"n1\", 2]",
    );
    assert_errors(
        &fixture,
        &body,
        &[
            (
                18,
                16,
                "`nodes`: \"n3\" is not a [[cluster.node]] name (n1, n2)",
            ),
            (18, 22, "`nodes`: \"n1\" is listed twice"),
            (18, 28, "`nodes` must be a string, found an integer"),
        ],
    );
    let body = with_group("").replace("nodes = [\"n1\", \"n2\"]", "nodes = []");
    assert_error(
        &fixture,
        &body,
        18,
        9,
        "`nodes` must list at least one [[cluster.node]] name",
    );
    let body = with("[[group]]\nname = \"db\"\n");
    assert_error(
        &fixture,
        &body,
        16,
        1,
        "[[group]] is missing the required key `nodes`",
    );
}

#[test]
fn group_names_are_unique_among_groups_and_instances() {
    let fixture = Fixture::new("groupnames");
    let body = with(
        "[[vrrp]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"192.0.2.100/24\"]\n\
         [[group]]\nname = \"db\"\nnodes = [\"n1\"]\n\
         [[group]]\nname = \"db\"\nnodes = [\"n1\"]\n\
         [[group]]\nname = \"web\"\nnodes = [\"n1\"]\n",
    );
    assert_errors(
        &fixture,
        &body,
        &[
            (25, 8, "duplicate group name \"db\" (first used on line 22)"),
            (
                28,
                8,
                "group name \"web\" is already the name of a [[vrrp]] instance",
            ),
        ],
    );
}

#[test]
fn group_names_with_the_same_wire_id_are_refused() {
    // "g20" and "g196" hash to the same 16-bit id in heartbeats.
    assert_eq!(
        relevo::wire::heartbeat::group_wire_id("g20"),
        relevo::wire::heartbeat::group_wire_id("g196")
    );
    let fixture = Fixture::new("groupids");
    let body = with(
        "[[group]]\nname = \"g20\"\nnodes = [\"n1\"]\n\
         [[group]]\nname = \"g196\"\nnodes = [\"n1\"]\n",
    );
    let found = errors(&fixture, &body);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .message
            .contains("\"g20\" and \"g196\" have the same 16-bit id in heartbeats"),
        "{}",
        found[0].message
    );
}

#[test]
fn group_vips_follow_the_vip_rules() {
    let fixture = Fixture::new("groupvips");
    let body = with_group(
        "vips = [\n\"192.0.2.5/24\",\n{ address = \"127.0.0.1\", interface = \"eth0\" },\n\
         { address = \"192.0.2.6/33\", interface = \"eth0\" },\n{ address = \"192.0.2.7\" },\n\
         { address = \"192.0.2.8\", interface = \"e/0\", mac = 1 },\n]\n",
    );
    assert_errors(
        &fixture,
        &body,
        &[
            (20, 1, "a group VIP names its interface: write { address = \"192.0.2.100/24\", interface = \"eth0\" }"),
            (21, 13, "invalid VIP \"127.0.0.1\": 127.0.0.1 is a loopback address"),
            (22, 13, "invalid VIP \"192.0.2.6/33\": prefix length \"/33\" must be between 1 and 32"),
            (23, 1, "a group VIP is missing the required key `interface`"),
            (24, 38, "`interface` \"e/0\" is not a valid Linux interface name"),
            (24, 45, "unknown key `mac` in a group VIP; allowed keys: address, interface"),
        ],
    );
}

#[test]
fn a_vip_is_in_one_group_or_instance_only() {
    let fixture = Fixture::new("vipunique");
    let body = with(
        "[[group]]\nname = \"db\"\nnodes = [\"n1\"]\n\
         vips = [{ address = \"192.0.2.100/24\", interface = \"eth0\" }]\n\
         [[vrrp]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"192.0.2.100/24\"]\n\
         [[group]]\nname = \"db2\"\nnodes = [\"n1\"]\n\
         vips = [{ address = \"192.0.2.100/32\", interface = \"eth1\" }, { address = \"192.0.2.9\", interface = \"eth0\" }, { address = \"192.0.2.9\", interface = \"eth1\" }]\n",
    );
    assert_errors(
        &fixture,
        &body,
        &[
            (
                24,
                9,
                "VIP 192.0.2.100 is already in group \"db\" (line 19)",
            ),
            (
                28,
                21,
                "VIP 192.0.2.100 is already in group \"db\" (line 19)",
            ),
            (
                28,
                120,
                "VIP 192.0.2.9 is already in group \"db2\" (line 28)",
            ),
        ],
    );
}

// ---- [[group.resource]] ----

#[test]
fn resources_are_checked() {
    let fixture = Fixture::new("resources");
    let body = with_group(
        "[[group.resource]]\nname = \"a\"\npriority = 1001\nstart = [\"bin/start\"]\nstop = []\ntimeout = \"0s\"\n\
         [[group.resource]]\nname = \"a\"\nstart = \"/bin/true\"\n\
         [[group.resource]]\nname = \"b\"\nstop = [\"/bin/true\"]\nextra = 1\n",
    );
    assert_errors(
        &fixture,
        &body,
        &[
            (21, 12, "`priority` must be between 0 and 1000, got 1001"),
            (
                22,
                9,
                "`start`: program must be an absolute path, got \"bin/start\"",
            ),
            (23, 8, "`stop` must not be an empty array"),
            (24, 11, "`timeout` must be between 1s and 1h, got \"0s\""),
            (
                25,
                1,
                "[[group.resource]] is missing the required key `stop`",
            ),
            (
                26,
                8,
                "duplicate resource name \"a\" in this group (first used on line 20)",
            ),
            (27, 9, "`start` must be an array, found a string"),
            (
                28,
                1,
                "[[group.resource]] is missing the required key `start`",
            ),
            (31, 1, "unknown key `extra` in [[group.resource]]"),
        ],
    );
}

#[test]
fn resource_names_may_repeat_across_groups() {
    let fixture = Fixture::new("resnames");
    let resource =
        "[[group.resource]]\nname = \"svc\"\nstart = [\"/bin/true\"]\nstop = [\"/bin/true\"]\n";
    let body = with(&format!(
        "[[group]]\nname = \"a\"\nnodes = [\"n1\"]\n{resource}[[group]]\nname = \"b\"\nnodes = [\"n2\"]\n{resource}"
    ));
    let config = fixture.parse(&body);
    assert_eq!(config.groups[0].resources[0].name, "svc");
    assert_eq!(config.groups[1].resources[0].name, "svc");
    assert_eq!(config.groups[1].resources[0].priority, 0);
}

#[test]
fn every_problem_of_the_cluster_and_groups_is_reported_in_one_run() {
    let fixture = Fixture::new("onerun");
    let body = with_group("max_start_failures = 0\n")
        .replace("id = 3", "id = 0")
        .replace("\"198.51.100.12\"", "\"198.51.100.11\"");
    assert_errors(
        &fixture,
        &body,
        &[
            (5, 6, "`id` must be between 1 and 255"),
            (
                15,
                24,
                "`links`: 198.51.100.11 is already a link of cluster node \"n1\"",
            ),
            (19, 22, "`max_start_failures` must be between 1 and 10"),
        ],
    );
}
