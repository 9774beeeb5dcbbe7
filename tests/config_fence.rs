//! `[[fence]]` devices and a node's `fence` / `fence_delay`: full devices read back field by
//! field, the defaults, the password file's checks (the password never printed), every
//! validation rule at its exact line and column, and what `relevo check` warns about.

mod config_support;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config_support::assert_refused;
use relevo::config::{self, Config, FenceAction, FenceKind, IpmiPrivilege};

const PASSWORD: &str = "bmc-Secret-1";

/// A temporary directory with a key file and a password file of mode 0600; removed on drop.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("relevo-fence-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let fixture = Fixture { dir };
        fixture.write("authkey", "1 0123456789abcdef0123\n", 0o600);
        fixture.write("bmc.pass", &format!("{PASSWORD}\n"), 0o600);
        fixture
    }

    fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// `body` with `@DIR@` replaced by the fixture's directory.
    fn text(&self, body: &str) -> String {
        body.replace("@DIR@", self.dir.to_str().unwrap())
    }

    fn parse(&self, body: &str) -> Config {
        let text = self.text(body);
        config::parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[track_caller]
    fn assert_errors(&self, body: &str, expected: &[(usize, usize, &str)]) {
        assert_refused(&self.text(body), expected);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Two nodes fenced by two devices. Lines: 4 `[cluster]`, 8 and 13 `[[cluster.node]]`, 11 and
/// 16 `fence`, 18 `[[fence]]` n1-bmc (19 name .. 25 password_file), 27 `[[fence]]` n2-agent
/// (28 name, 29 type, 30 command, 31 options), 32 the last line.
const BASE: &str = "\
[node]
name = \"n1\"

[cluster]
id = 1
auth_key_file = \"@DIR@/authkey\"

[[cluster.node]]
name = \"n1\"
links = [\"192.0.2.11\"]
fence = \"n1-bmc\"
fence_delay = \"0s\"
[[cluster.node]]
name = \"n2\"
links = [\"192.0.2.12\"]
fence = \"n2-agent\"
fence_delay = \"5s\"
[[fence]]
name = \"n1-bmc\"
type = \"ipmi\"
host = \"192.0.2.201\"
port = 6230
username = \"admin\"
privilege = \"operator\"
password_file = \"@DIR@/bmc.pass\"

[[fence]]
name = \"n2-agent\"
type = \"command\"
command = [\"/usr/sbin/fence_ipmilan\"]
options = { ip = \"192.0.2.202\", username = \"admin\", lanplus = \"1\" }
";

/// The warnings of a valid config as (line, column, message).
fn warnings(config: &Config) -> Vec<(usize, usize, String)> {
    let warnings = config.warnings.iter();
    warnings
        .map(|w| (w.line, w.column, w.message.clone()))
        .collect()
}

#[test]
fn devices_and_node_fencing_read_back() {
    let fixture = Fixture::new("full");
    let config = fixture.parse(BASE);
    assert!(warnings(&config).is_empty(), "{:?}", warnings(&config));
    let cluster = config.cluster.as_ref().unwrap();
    assert_eq!(cluster.nodes[0].fence.as_deref(), Some("n1-bmc"));
    assert_eq!(cluster.nodes[0].fence_delay, Duration::ZERO);
    assert_eq!(cluster.nodes[1].fence.as_deref(), Some("n2-agent"));
    assert_eq!(cluster.nodes[1].fence_delay, Duration::from_secs(5));
    assert_eq!(config.fence_devices.len(), 2);

    let bmc = config.fence_device("n1-bmc").unwrap();
    assert_eq!(bmc.action, FenceAction::Off, "default");
    assert_eq!(bmc.timeout, Duration::from_secs(20), "default");
    let FenceKind::Ipmi(ipmi) = &bmc.kind else {
        panic!("{bmc:?}");
    };
    assert_eq!(ipmi.host, "192.0.2.201");
    assert_eq!(ipmi.port, 6230);
    assert_eq!(ipmi.username, "admin");
    assert_eq!(ipmi.privilege, IpmiPrivilege::Operator);
    assert_eq!(
        ipmi.password.expose(),
        PASSWORD.as_bytes(),
        "newline stripped"
    );
    assert!(
        !format!("{config:?}").contains(PASSWORD),
        "Debug shows the password"
    );

    let agent = config.fence_device("n2-agent").unwrap();
    let FenceKind::Command(command) = &agent.kind else {
        panic!("{agent:?}");
    };
    assert_eq!(command.command, ["/usr/sbin/fence_ipmilan"]);
    let options: Vec<(&str, &str)> = command
        .options
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(options.len(), 3);
    for option in [
        ("ip", "192.0.2.202"),
        ("username", "admin"),
        ("lanplus", "1"),
    ] {
        assert!(options.contains(&option), "{options:?}");
    }
}

#[test]
fn ipmi_defaults_and_every_setting() {
    let fixture = Fixture::new("defaults");
    let body = BASE
        .replace("port = 6230\n", "")
        .replace(
            "privilege = \"operator\"\n",
            "action = \"reboot\"\ntimeout = \"10m\"\n",
        )
        .replace("host = \"192.0.2.201\"", "host = \"bmc-n1.example.org\"");
    let config = fixture.parse(&body);
    let bmc = config.fence_device("n1-bmc").unwrap();
    assert_eq!(bmc.action, FenceAction::Reboot);
    assert_eq!(bmc.timeout, Duration::from_secs(600));
    let FenceKind::Ipmi(ipmi) = &bmc.kind else {
        panic!("{bmc:?}");
    };
    assert_eq!(ipmi.port, 623);
    assert_eq!(ipmi.privilege, IpmiPrivilege::Administrator);
    assert_eq!(ipmi.host, "bmc-n1.example.org");
}

#[test]
fn a_node_must_name_an_existing_device() {
    let fixture = Fixture::new("unknown");
    let body = BASE.replace("fence = \"n2-agent\"", "fence = \"n2-bmc\"");
    fixture.assert_errors(
        &body,
        &[(
            16,
            9,
            "`fence`: no [[fence]] device named \"n2-bmc\" ([[fence]] devices: n1-bmc, n2-agent); \
             name one, or write fence = \"none\"",
        )],
    );
    let body = BASE.replace("fence_delay = \"5s\"", "fence_delay = \"2m\"");
    fixture.assert_errors(
        &body,
        &[(
            17,
            15,
            "`fence_delay` must be between 0s and 1m, got \"2m\"",
        )],
    );
}

#[test]
fn device_names_are_unique_and_types_known() {
    let fixture = Fixture::new("names");
    let body = BASE.replace("name = \"n2-agent\"", "name = \"n1-bmc\"");
    fixture.assert_errors(
        &body,
        &[
            (
                16,
                9,
                "`fence`: no [[fence]] device named \"n2-agent\" ([[fence]] devices: n1-bmc, n1-bmc)",
            ),
            (
                28,
                8,
                "duplicate fencing device name \"n1-bmc\" (first used on line 19)",
            ),
        ],
    );
    let body = BASE.replace("type = \"command\"", "type = \"redfish\"");
    fixture.assert_errors(
        &body,
        &[(
            29,
            8,
            "`type` must be \"ipmi\" or \"command\", got \"redfish\"",
        )],
    );
    let body = BASE.replace("type = \"command\"\n", "");
    fixture.assert_errors(
        &body,
        &[(27, 1, "[[fence]] is missing the required key `type`")],
    );
}

#[test]
fn keys_of_the_other_type_are_refused() {
    let fixture = Fixture::new("otherkeys");
    let body = BASE.replace(
        "lanplus = \"1\" }\n",
        "lanplus = \"1\" }\nport = 623\nfoo = 1\n",
    );
    fixture.assert_errors(
        &body,
        &[
            (
                32,
                1,
                "`port` is a key of type = \"ipmi\" devices; a type = \"command\" device has \
                 command, options",
            ),
            (
                33,
                1,
                "unknown key `foo` in [[fence]]; allowed keys: name, type",
            ),
        ],
    );
}

#[test]
fn ipmi_values_are_checked() {
    let fixture = Fixture::new("ipmivalues");
    let body = BASE
        .replace("host = \"192.0.2.201\"", "host = \"bmc n1\"")
        .replace("port = 6230", "port = 0")
        .replace(
            "username = \"admin\"\nprivilege",
            "username = \"\"\nprivilege",
        )
        .replace("privilege = \"operator\"", "privilege = \"user\"");
    fixture.assert_errors(
        &body,
        &[
            (
                21,
                8,
                "`host` must be an IP address or a host name, got \"bmc n1\"",
            ),
            (22, 8, "`port` must be between 1 and 65535, got 0"),
            (23, 12, "`username` must be 1 to 16 bytes (the IPMI limit)"),
            (
                24,
                13,
                "`privilege` must be \"operator\" or \"administrator\", got \"user\"",
            ),
        ],
    );
    let body = BASE.replace(
        "privilege = \"operator\"",
        "action = \"on\"\ntimeout = \"500ms\"",
    );
    fixture.assert_errors(
        &body,
        &[
            (24, 10, "`action` must be \"off\" or \"reboot\", got \"on\""),
            (
                25,
                11,
                "`timeout` must be between 1s and 10m, got \"500ms\"",
            ),
        ],
    );
    let body = BASE.replace("password_file = \"@DIR@/bmc.pass\"\n", "");
    fixture.assert_errors(
        &body,
        &[(
            18,
            1,
            "[[fence]] is missing the required key `password_file`",
        )],
    );
}

#[test]
fn the_password_file_must_be_private_and_not_a_link() {
    let fixture = Fixture::new("password");
    fixture.write("bmc.pass", &format!("{PASSWORD}\n"), 0o640);
    let path = fixture.dir.join("bmc.pass");
    fixture.assert_errors(
        BASE,
        &[(
            25,
            17,
            "has mode 0640: group or others may read or write the BMC password; chmod 600 it",
        )],
    );
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&path, fixture.dir.join("link.pass")).unwrap();
    let body = BASE.replace("bmc.pass", "link.pass");
    fixture.assert_errors(
        &body,
        &[(
            25,
            17,
            "is a symbolic link; point `password_file` at the file itself",
        )],
    );
    let body = BASE.replace("@DIR@/bmc.pass", "bmc.pass");
    fixture.assert_errors(
        &body,
        &[(
            25,
            17,
            "`password_file` \"bmc.pass\" must be an absolute path",
        )],
    );
    fixture.write("empty.pass", "\n", 0o600);
    let body = BASE.replace("bmc.pass", "empty.pass");
    fixture.assert_errors(&body, &[(25, 17, "is empty; write the BMC password in it")]);
    let body = BASE.replace("bmc.pass", "missing.pass");
    fixture.assert_errors(&body, &[(25, 17, "cannot be read: No such file")]);
    // The password never appears in a message.
    fixture.write("long.pass", "0123456789-0123456789-too-long\n", 0o600);
    let text = fixture.text(&BASE.replace("bmc.pass", "long.pass"));
    let found = config_support::refused(&text);
    assert_eq!(found.len(), 1);
    assert!(found[0]
        .message
        .ends_with("holds more than 20 bytes, the longest IPMI 2.0 password"));
    assert!(!found[0].to_string().contains("too-long"));
}

#[test]
fn command_devices_are_checked() {
    let fixture = Fixture::new("command");
    let body = BASE.replace("[\"/usr/sbin/fence_ipmilan\"]", "[\"fence_ipmilan\"]");
    fixture.assert_errors(
        &body,
        &[(
            30,
            11,
            "`command`: program must be an absolute path, got \"fence_ipmilan\"",
        )],
    );
    let body = BASE.replace(
        "lanplus = \"1\" }",
        "lanplus = 1, action = \"reboot\", \"a b\" = \"x\" }",
    );
    fixture.assert_errors(
        &body,
        &[
            (
                31,
                63,
                "`options.lanplus` must be a string, found an integer",
            ),
            (31, 66, "`options`: `action` is written by Relevo"),
            (
                31,
                85,
                "`options`: key \"a b\" must be letters, digits, `_` or `-`",
            ),
        ],
    );
    let body = BASE.replace("command = [\"/usr/sbin/fence_ipmilan\"]\n", "");
    fixture.assert_errors(
        &body,
        &[(27, 1, "[[fence]] is missing the required key `command`")],
    );
}

#[test]
fn a_node_without_fence_is_a_warning() {
    let fixture = Fixture::new("nofence");
    let body = BASE.replace("fence = \"n1-bmc\"\n", "");
    let config = fixture.parse(&body);
    assert_eq!(config.cluster.as_ref().unwrap().nodes[0].fence, None);
    let found = warnings(&config);
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!((found[0].0, found[0].1), (4, 1), "{found:?}");
    assert!(found[0]
        .2
        .starts_with("a two-node cluster without ping_nodes"));
    assert_eq!(
        (found[1].0, found[1].1, found[1].2.as_str()),
        (
            8,
            1,
            "this node has no `fence` key: a node must say fence = \"none\" explicitly (its \
             groups are then taken over after deadtime without fencing), or name its [[fence]] \
             device"
        )
    );
    // The device no node names any more.
    assert_eq!(
        (found[2].0, found[2].1, found[2].2.as_str()),
        (
            18,
            8,
            "fencing device \"n1-bmc\" is not used: no [[cluster.node]] has fence = \"n1-bmc\""
        )
    );
    // fence = "none" explicitly: no warning about the node.
    let body = BASE.replace("fence = \"n1-bmc\"", "fence = \"none\"");
    let config = fixture.parse(&body);
    let found = warnings(&config);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0]
        .2
        .starts_with("a two-node cluster without ping_nodes"));
    assert_eq!((found[1].0, found[1].1), (19, 8), "{found:?}");
    assert!(found[1]
        .2
        .starts_with("fencing device \"n1-bmc\" is not used"));
}

#[test]
fn two_fenced_nodes_need_no_ping_nodes_but_different_delays() {
    let fixture = Fixture::new("race");
    // BASE: both fenced, delays 0s and 5s, no ping nodes: nothing to warn about.
    assert!(warnings(&fixture.parse(BASE)).is_empty());
    let body = BASE.replace("fence_delay = \"5s\"", "fence_delay = \"0s\"");
    let found = warnings(&fixture.parse(&body));
    assert_eq!(
        found,
        [(
            4,
            1,
            "both nodes have the same `fence_delay`: in a partition each may power the other \
             off; give the preferred node a shorter fence_delay than the other"
                .to_string()
        )]
    );
    // two_node = true with fencing on both nodes is the fenced two-node setup: no split-brain
    // warning.
    let body = BASE.replace(
        "auth_key_file = \"@DIR@/authkey\"\n",
        "auth_key_file = \"@DIR@/authkey\"\ntwo_node = true\n",
    );
    assert!(warnings(&fixture.parse(&body)).is_empty());
}

#[test]
fn fence_devices_need_a_cluster() {
    let text = "[node]\nname = \"n1\"\n[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\n\
                vips = [\"192.0.2.1/24\"]\n[[fence]]\nname = \"f\"\ntype = \"command\"\n\
                command = [\"/bin/true\"]\n";
    assert_refused(
        text,
        &[(
            8,
            1,
            "[[fence]] devices power off failed [[cluster.node]]s; they need a [cluster]",
        )],
    );
}

#[test]
fn check_lists_the_devices_and_warns_with_line_and_column() {
    let fixture = Fixture::new("check");
    let path = fixture.dir.join("relevo.toml");
    fs::write(
        &path,
        fixture.text(&BASE.replace("fence = \"n2-agent\"\n", "")),
    )
    .unwrap();
    let report = config::run_check(&path);
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert!(
        report.stderr.contains(&format!(
            "{}:13:1: warning: this node has no `fence` key",
            path.display()
        )),
        "{}",
        report.stderr
    );
    let lines: Vec<&str> = report.stdout.lines().collect();
    assert_eq!(
        lines[lines.len() - 2],
        "fence n1-bmc: ipmi 192.0.2.201:6230 user admin privilege operator, action off, \
         timeout 20s, fences n1"
    );
    assert_eq!(
        lines[lines.len() - 1],
        "fence n2-agent: command /usr/sbin/fence_ipmilan options ip,lanplus,username, action \
         off, timeout 20s, fences no node"
    );
    assert!(!report.stdout.contains(PASSWORD) && !report.stderr.contains(PASSWORD));
}
