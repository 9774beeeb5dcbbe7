//! Invalid configs: every validation rule reports the exact line and column of the offending key
//! or value with a message that says what is wrong, and all problems are reported in one run.

mod config_support;

use std::path::Path;

use config_support::{assert_refused, refused};
use relevo::config::{self, Diagnostic};

/// `[[vrrp]]` on line 1, `name`, `interface`, `vrid`, `vips` on lines 2 to 5 (an override of one
/// of them replaces its value in place), then the other overrides from line 6 on, in order.
fn vrrp(overrides: &[(&str, &str)]) -> String {
    let base = [
        ("name", "\"web\""),
        ("interface", "\"eth0\""),
        ("vrid", "51"),
        ("vips", "[\"192.0.2.100/24\"]"),
    ];
    let value_of = |key: &str, default: &str| {
        overrides
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(default.to_string(), |(_, v)| v.to_string())
    };
    let mut text = String::from("[[vrrp]]\n");
    for (key, default) in base {
        text += &format!("{key} = {}\n", value_of(key, default));
    }
    for (key, value) in overrides {
        if !base.iter().any(|(k, _)| k == key) {
            text += &format!("{key} = {value}\n");
        }
    }
    text
}

fn errors(text: &str) -> Vec<Diagnostic> {
    refused(text)
}

#[track_caller]
fn assert_errors(text: &str, expected: &[(usize, usize, &str)]) {
    assert_refused(text, expected);
}

#[track_caller]
fn assert_error(text: &str, line: usize, column: usize, fragment: &str) {
    assert_errors(text, &[(line, column, fragment)]);
}

#[test]
fn the_helper_builds_a_valid_config() {
    config::parse(&vrrp(&[]), Path::new("t.toml")).unwrap();
}

// ---- syntax ----

/// The first diagnostic; syntax recovery may add follow-up errors after it.
#[track_caller]
fn assert_first_error(text: &str, line: usize, column: usize, fragment: &str) {
    let found = errors(text);
    assert_eq!(
        (found[0].line, found[0].column),
        (line, column),
        "{found:?}"
    );
    assert!(
        found[0].message.contains(fragment),
        "{fragment:?} not in {:?}",
        found[0].message
    );
}

#[test]
fn syntax_errors_have_positions() {
    assert_first_error(
        "[node]\nname = \"n1\n",
        2,
        11,
        "invalid TOML: invalid basic string",
    );
    assert_first_error("[node]\nname = = \"x\"\n", 2, 8, "invalid TOML: extra `=`");
    assert_first_error(
        "[node]\nname = \"a\"\nname = \"b\"\n",
        3,
        1,
        "invalid TOML: duplicate key",
    );
    assert_first_error("[[vrrp]\n", 1, 8, "invalid TOML");
    assert_first_error(
        "\n\n  vrid = 1__2\n",
        3,
        11,
        "invalid TOML: `_` may only go between digits",
    );
}

#[test]
fn syntax_errors_are_reported_together_in_file_order() {
    let found = errors("[node]\nname = = 1\nx = \"open\n");
    assert!(found.len() >= 2, "{found:?}");
    assert_eq!((found[0].line, found[0].column), (2, 8));
    assert!(found.iter().any(|d| d.line == 3));
    assert!(found
        .windows(2)
        .all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column)));
}

#[test]
fn display_shows_file_position_source_line_and_caret() {
    let error = config::parse(
        &vrrp(&[("priority", "0")]),
        Path::new("/etc/relevo/relevo.toml"),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "/etc/relevo/relevo.toml:6:12: error: `priority` must be between 1 and 255, got 0\n    priority = 0\n               ^"
    );
}

#[test]
fn load_reports_non_utf8_at_its_position() {
    let dir = std::env::temp_dir().join(format!("relevo-config-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, b"[node]\nname = \"n\xff1\"\n").unwrap();
    let error = config::load(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    let d = &error.diagnostics[0];
    assert_eq!(
        (d.line, d.column, d.message.as_str()),
        (2, 10, "the file is not valid UTF-8")
    );
    assert_eq!(d.file, path);
}

#[test]
fn load_names_a_missing_file() {
    let error = config::load(Path::new("/nonexistent/dir/relevo.toml")).unwrap_err();
    let d = &error.diagnostics[0];
    assert_eq!((d.line, d.column), (0, 0));
    assert!(
        d.message.contains("cannot read config file"),
        "{}",
        d.message
    );
    assert!(error
        .to_string()
        .starts_with("/nonexistent/dir/relevo.toml: error: "));
}

// ---- top level ----

#[test]
fn unknown_top_level_key_lists_allowed_keys() {
    let text = format!("{}[nodes]\nname = \"x\"\n", vrrp(&[]));
    assert_error(
        &text,
        6,
        2,
        "unknown key `nodes` in the top level; allowed keys: node, vrrp",
    );
}

#[test]
fn fence_devices_need_a_cluster() {
    let text = format!(
        "[[fence]]\nname = \"f\"\ntype = \"command\"\ncommand = [\"/bin/true\"]\n{}",
        vrrp(&[])
    );
    assert_errors(
        &text,
        &[(
            1,
            1,
            "[[fence]] devices power off failed [[cluster.node]]s; they need a [cluster]",
        )],
    );
}

#[test]
fn a_config_without_instances_is_refused() {
    assert_error("[node]\nname = \"n1\"\n", 1, 1, "no [[vrrp]] instance");
    assert_error("vrrp = []\n", 1, 8, "no [[vrrp]] instance");
}

#[test]
fn vrrp_must_be_an_array_of_tables() {
    assert_error(
        "[vrrp]\nname = \"a\"\n",
        1,
        1,
        "write [[vrrp]] (double brackets)",
    );
    assert_error(
        "vrrp = [1]\n",
        1,
        9,
        "`vrrp` must be a table, found an integer",
    );
}

// ---- [node] ----

#[test]
fn node_keys_are_checked() {
    let text = format!(
        "[node]\nname = \"n 1\"\ncontrol_socket = \"relevo.sock\"\nsocket = 1\n{}",
        vrrp(&[])
    );
    assert_errors(
        &text,
        &[
            (2, 8, "node `name` \"n 1\" contains ' '"),
            (3, 18, "`control_socket` must be an absolute path"),
            (
                4,
                1,
                "unknown key `socket` in [node]; allowed keys: name, control_socket",
            ),
        ],
    );
}

#[test]
fn node_values_have_types_and_limits() {
    let long = format!("/{}", "s".repeat(107));
    let text = format!(
        "[node]\nname = 7\ncontrol_socket = \"{long}\"\n{}",
        vrrp(&[])
    );
    assert_errors(
        &text,
        &[
            (2, 8, "`name` must be a string, found an integer"),
            (3, 18, "longer than 107 bytes"),
        ],
    );
    assert_error(
        &format!("node = 1\n{}", vrrp(&[])),
        1,
        8,
        "`node` must be a table, found an integer",
    );
    assert_error(
        &format!("[node]\nname = \"\"\n{}", vrrp(&[])),
        2,
        8,
        "must not be empty",
    );
}

// ---- [[vrrp]] keys ----

#[test]
fn missing_required_keys_point_at_the_instance_header_and_are_all_reported() {
    let text = format!("{}\n[[vrrp]]\npriority = 10\n", vrrp(&[]));
    assert_errors(
        &text,
        &[
            (7, 1, "[[vrrp]] is missing the required key `name`"),
            (7, 1, "[[vrrp]] is missing the required key `interface`"),
            (7, 1, "[[vrrp]] is missing the required key `vrid`"),
            (7, 1, "[[vrrp]] is missing the required key `vips`"),
        ],
    );
}

#[test]
fn unknown_vrrp_key_lists_allowed_keys() {
    let found = errors(&vrrp(&[("priorty", "10")]));
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].line, found[0].column), (6, 1));
    assert!(found[0].message.starts_with(
        "unknown key `priorty` in [[vrrp]]; allowed keys: name, interface, vrid, priority,"
    ));
    assert!(
        found[0]
            .message
            .ends_with("source_address, vip_lease, virtual_mac, vmac_interface, track"),
        "{}",
        found[0].message
    );
}

#[test]
fn later_release_vrrp_keys_are_refused_specifically() {
    assert_errors(
        &vrrp(&[("accept_mode", "false"), ("quorum_gated", "true")]),
        &[
            (6, 1, "not supported yet in this release: `accept_mode`"),
            (7, 16, "`quorum_gated` needs a [cluster] table"),
        ],
    );
}

#[test]
fn instance_names_are_validated_and_unique() {
    assert_error(
        &vrrp(&[("name", "\"web/1\"")]),
        2,
        8,
        "instance `name` \"web/1\" contains '/'",
    );
    let text = format!(
        "{}{}",
        vrrp(&[]),
        vrrp(&[("vrid", "52"), ("vips", "[\"192.0.2.1\"]")])
    );
    assert_error(
        &text,
        7,
        8,
        "duplicate instance name \"web\" (first used on line 2)",
    );
}

#[test]
fn interface_names_follow_linux_rules() {
    assert_error(
        &vrrp(&[("interface", "\"\"")]),
        3,
        13,
        "`interface` must not be empty",
    );
    assert_error(
        &vrrp(&[("interface", "\"eth0.1234567890ab\"")]),
        3,
        13,
        "longer than 15 bytes",
    );
    assert_error(
        &vrrp(&[("interface", "\"eth/0\"")]),
        3,
        13,
        "not a valid Linux interface name",
    );
    assert_error(
        &vrrp(&[("interface", "\"eth0:1\"")]),
        3,
        13,
        "not a valid Linux interface name",
    );
    assert_error(
        &vrrp(&[("interface", "[\"eth0\"]")]),
        3,
        13,
        "`interface` must be a string, found an array",
    );
}

#[test]
fn vrid_range_and_type() {
    assert_error(
        &vrrp(&[("vrid", "0")]),
        4,
        8,
        "`vrid` must be between 1 and 255, got 0",
    );
    assert_error(
        &vrrp(&[("vrid", "256")]),
        4,
        8,
        "`vrid` must be between 1 and 255, got 256",
    );
    assert_error(&vrrp(&[("vrid", "-1")]), 4, 8, "between 1 and 255");
    assert_error(
        &vrrp(&[("vrid", "\"51\"")]),
        4,
        8,
        "`vrid` must be an integer, found a string",
    );
    assert_error(
        &vrrp(&[("vrid", "5.0")]),
        4,
        8,
        "`vrid` must be an integer, found a float",
    );
}

#[test]
fn priority_range() {
    assert_error(
        &vrrp(&[("priority", "0")]),
        6,
        12,
        "`priority` must be between 1 and 255, got 0",
    );
    assert_error(&vrrp(&[("priority", "256")]), 6, 12, "got 256");
}

#[test]
fn version_is_2_or_3_and_v2_is_ipv4_only() {
    assert_error(
        &vrrp(&[("version", "4")]),
        6,
        11,
        "`version` must be between 2 and 3, got 4",
    );
    assert_error(
        &vrrp(&[("vips", "[\"2001:db8::1\"]"), ("version", "2")]),
        6,
        11,
        "VRRPv2 (RFC 3768) is IPv4 only but the VIPs are IPv6; use version = 3",
    );
}

#[test]
fn advert_interval_rules_depend_on_the_version() {
    let v3 = |interval: &str| vrrp(&[("advert_interval", interval)]);
    assert_error(
        &v3("\"15ms\""),
        6,
        19,
        "must be a multiple of 10ms for VRRPv3",
    );
    assert_error(&v3("\"41s\""), 6, 19, "must be at most 40.95s for VRRPv3");
    assert_error(
        &v3("\"5ms\""),
        6,
        19,
        "`advert_interval` must be between 10ms and",
    );
    assert_error(
        &v3("\"0s\""),
        6,
        19,
        "`advert_interval` must be between 10ms and",
    );
    let v2 = |interval: &str| vrrp(&[("version", "2"), ("advert_interval", interval)]);
    assert_error(
        &v2("\"1.5s\""),
        7,
        19,
        "must be whole seconds (1s to 255s) for VRRPv2, got \"1.5s\"",
    );
    assert_error(&v2("\"500ms\""), 7, 19, "must be whole seconds");
    assert_error(
        &v2("\"256s\""),
        7,
        19,
        "`advert_interval` must be between 10ms and 255s, got \"256s\"",
    );
}

#[test]
fn durations_without_unit_are_refused_with_a_hint() {
    assert_error(
        &vrrp(&[("advert_interval", "1")]),
        6,
        19,
        "`advert_interval` = 1 has no unit; write a string with a unit, e.g. \"1s\"",
    );
    assert_error(
        &vrrp(&[("hook_timeout", "\"30\"")]),
        6,
        16,
        "`hook_timeout`: duration \"30\" has no unit",
    );
    assert_error(&vrrp(&[("garp_delay", "\"5 s\"")]), 6, 14, "`garp_delay`: ");
    assert_error(&vrrp(&[("preempt_delay", "\"1d\"")]), 6, 17, "unknown unit");
    assert_error(
        &vrrp(&[("garp_interval", "1.5")]),
        6,
        17,
        "must be a duration string such as \"1s\", found a float",
    );
}

#[test]
fn preempt_and_preempt_delay() {
    assert_error(
        &vrrp(&[("preempt", "\"yes\"")]),
        6,
        11,
        "`preempt` must be true or false, found a string",
    );
    assert_error(
        &vrrp(&[("preempt_delay", "\"2h\"")]),
        6,
        17,
        "`preempt_delay` must be between 0s and 1h, got \"2h\"",
    );
}

#[test]
fn vips_must_be_a_non_empty_array_of_addresses() {
    assert_error(
        &vrrp(&[("vips", "[]")]),
        5,
        8,
        "`vips` must list at least one address",
    );
    assert_error(
        &vrrp(&[("vips", "\"192.0.2.1\"")]),
        5,
        8,
        "`vips` must be an array, found a string",
    );
    assert_error(
        &vrrp(&[("vips", "[\"192.0.2.300/24\"]")]),
        5,
        9,
        "invalid VIP \"192.0.2.300/24\": \"192.0.2.300\" is not",
    );
    assert_error(
        &vrrp(&[("vips", "[\"192.0.2.1/33\"]")]),
        5,
        9,
        "prefix length \"/33\" must be between 1 and 32",
    );
    assert_error(
        &vrrp(&[("vips", "[\"2001:db8::1/0\"]")]),
        5,
        9,
        "between 1 and 128",
    );
    assert_error(
        &vrrp(&[("vips", "[1]")]),
        5,
        9,
        "`vips` must be a string, found an integer",
    );
}

#[test]
fn vips_are_one_family_without_duplicates() {
    assert_errors(
        &vrrp(&[("vips", "[\"192.0.2.1/24\", \"2001:db8::1\", \"192.0.2.1/25\"]")]),
        &[
            (5, 25, "2001:db8::1 is IPv6 but 192.0.2.1 is IPv4; one instance carries one address family"),
            (5, 40, "192.0.2.1 is listed twice"),
        ],
    );
}

#[test]
fn vips_must_be_usable_unicast_addresses() {
    for (vip, fragment) in [
        ("0.0.0.0", "the unspecified address"),
        ("127.0.0.5", "a loopback address"),
        ("224.0.0.18", "a multicast address"),
        ("255.255.255.255", "the broadcast address"),
        ("::1", "a loopback address"),
        ("ff02::12", "a multicast address"),
        ("::ffff:192.0.2.1", "an IPv4-mapped IPv6 address"),
    ] {
        assert_error(&vrrp(&[("vips", &format!("[\"{vip}\"]"))]), 5, 9, fragment);
    }
}

#[test]
fn too_many_ipv6_vips_do_not_fit_an_advert() {
    let vips: Vec<String> = (1..=78).map(|i| format!("\"2001:db8::{i:x}\"")).collect();
    let text = vrrp(&[("vips", &format!("[{}]", vips.join(", ")))]);
    assert_error(
        &text,
        5,
        8,
        "`vips` has 78 addresses; at most 77 fit in one advertisement",
    );
    let vips: Vec<String> = (1..=77).map(|i| format!("\"2001:db8::{i:x}\"")).collect();
    config::parse(
        &vrrp(&[("vips", &format!("[{}]", vips.join(", ")))]),
        Path::new("t"),
    )
    .unwrap();
}

#[test]
fn a_vip_belongs_to_one_instance() {
    let second = vrrp(&[
        ("name", "\"db\""),
        ("interface", "\"eth1\""),
        ("vips", "[\"192.0.2.7\", \"192.0.2.100/25\"]"),
    ]);
    let text = format!("{}{second}", vrrp(&[]));
    assert_error(
        &text,
        10,
        22,
        "VIP 192.0.2.100 is already in instance \"web\" (line 5)",
    );
}

#[test]
fn interface_vrid_family_is_unique() {
    let second = vrrp(&[("name", "\"db\""), ("vips", "[\"192.0.2.7\"]")]);
    let text = format!("{}{second}", vrrp(&[]));
    assert_error(
        &text,
        9,
        8,
        "vrid 51 on eth0 (IPv4) is already used by instance \"web\" (line 4); (interface, vrid, address family) must be unique",
    );
    let other_interface = vrrp(&[
        ("name", "\"db\""),
        ("interface", "\"eth1\""),
        ("vips", "[\"192.0.2.7\"]"),
    ]);
    config::parse(&format!("{}{other_interface}", vrrp(&[])), Path::new("t")).unwrap();
}

#[test]
fn unicast_peers_are_addresses_of_the_instance_family() {
    assert_errors(
        &vrrp(&[("unicast_peers", "[\"192.0.2.2\", \"x\", \"2001:db8::2\", \"192.0.2.2\", \"224.0.0.1\", \"192.0.2.100\"]")]),
        &[
            (6, 31, "invalid unicast peer \"x\": not an IPv4 or IPv6 address"),
            (6, 36, "2001:db8::2 is IPv6 but the VIPs are IPv4"),
            (6, 51, "192.0.2.2 is listed twice"),
            (6, 64, "224.0.0.1 is not a unicast address of another node"),
            (6, 77, "192.0.2.100 is one of this instance's VIPs"),
        ],
    );
    assert_error(
        &vrrp(&[("unicast_peers", "\"192.0.2.2\"")]),
        6,
        17,
        "`unicast_peers` must be an array",
    );
}

#[test]
fn v3_ipv4_checksum_values_and_applicability() {
    assert_error(
        &vrrp(&[("v3_ipv4_checksum", "\"none\"")]),
        6,
        20,
        "`v3_ipv4_checksum` must be \"pseudo-header\" or \"no-pseudo-header\", got \"none\"",
    );
    assert_error(
        &vrrp(&[("version", "2"), ("v3_ipv4_checksum", "\"pseudo-header\"")]),
        7,
        20,
        "`v3_ipv4_checksum` only applies to VRRPv3",
    );
    assert_error(
        &vrrp(&[
            ("vips", "[\"2001:db8::1\"]"),
            ("v3_ipv4_checksum", "\"no-pseudo-header\""),
        ]),
        6,
        20,
        "`v3_ipv4_checksum` only applies to IPv4 instances",
    );
}

#[test]
fn auth_pass_is_v2_only_and_short() {
    assert_error(
        &vrrp(&[("auth_pass", "\"secret\"")]),
        6,
        13,
        "`auth_pass` is VRRPv2 only",
    );
    assert_error(
        &vrrp(&[("version", "2"), ("auth_pass", "\"123456789\"")]),
        7,
        13,
        "must be 1 to 8 bytes long",
    );
    assert_error(
        &vrrp(&[("version", "2"), ("auth_pass", "\"\"")]),
        7,
        13,
        "must be 1 to 8 bytes long",
    );
    assert_error(
        &vrrp(&[("version", "2"), ("auth_pass", "\"a\\tb\"")]),
        7,
        13,
        "control characters",
    );
    config::parse(
        &vrrp(&[("version", "2"), ("auth_pass", "\"12345678\"")]),
        Path::new("t"),
    )
    .unwrap();
}

#[test]
fn hooks_are_absolute_programs_or_argv_arrays() {
    assert_errors(
        &vrrp(&[(
            "hooks",
            "{ master = \"hooks/web\", backup = \"/bin/web backup\", fault = [], stop = [\"/bin/x\", 1], takeover = \"/x\" }",
        )]),
        &[
            (6, 20, "`hooks.master`: program must be an absolute path, got \"hooks/web\""),
            (6, 42, "`hooks.backup` is a program path run without a shell; to pass arguments write an array"),
            (6, 69, "`hooks.fault` must not be an empty array"),
            (6, 91, "`hooks.stop` must be a string, found an integer"),
            (6, 95, "unknown key `takeover` in `hooks`; allowed keys: master, backup, fault, stop"),
        ],
    );
    assert_error(
        &vrrp(&[("hooks", "\"/bin/x\"")]),
        6,
        9,
        "`hooks` must be a table, found a string",
    );
    assert_error(
        &vrrp(&[("hooks", "{ master = 1 }")]),
        6,
        20,
        "`hooks.master` must be an array, found an integer",
    );
    assert_error(
        &vrrp(&[("hooks", "{ stop = [\"/usr/bin/\"] }")]),
        6,
        18,
        "is a directory",
    );
}

#[test]
fn hooks_as_a_section_report_positions_inside_it() {
    let text = format!("{}\n[vrrp.hooks]\nmaster = \"relative\"\n", vrrp(&[]));
    assert_error(
        &text,
        8,
        10,
        "`hooks.master`: program must be an absolute path",
    );
}

#[test]
fn hook_timeout_range() {
    assert_error(
        &vrrp(&[("hook_timeout", "\"0s\"")]),
        6,
        16,
        "`hook_timeout` must be between 1s and 1h, got \"0s\"",
    );
    assert_error(
        &vrrp(&[("hook_timeout", "\"61m\"")]),
        6,
        16,
        "between 1s and 1h",
    );
}

#[test]
fn announce_keys_ranges() {
    assert_errors(
        &vrrp(&[
            ("garp_repeat", "0"),
            ("garp_interval", "\"2s\""),
            ("garp_delay", "\"2h\""),
            ("garp_refresh", "\"500ms\""),
        ]),
        &[
            (6, 15, "`garp_repeat` must be between 1 and 100, got 0"),
            (
                7,
                17,
                "`garp_interval` must be between 0s and 1s, got \"2s\"",
            ),
            (8, 14, "`garp_delay` must be between 0s and 1h, got \"2h\""),
            (9, 16, "`garp_refresh` must be \"0s\" (off) or at least 1s"),
        ],
    );
    assert_error(&vrrp(&[("garp_repeat", "101")]), 6, 15, "got 101");
    assert_error(
        &vrrp(&[("garp_refresh", "\"25h\"")]),
        6,
        16,
        "between 0s and 24h",
    );
}

#[test]
fn every_problem_of_every_instance_is_reported_in_file_order() {
    let first = vrrp(&[("vrid", "0"), ("priority", "300")]);
    let second = vrrp(&[
        ("name", "\"db\""),
        ("interface", "\"e/1\""),
        ("vips", "[\"192.0.2.1\"]"),
        ("advert_interval", "\"7ms\""),
    ]);
    let text = format!("[node]\nname = \"bad name\"\nextra = 1\n{first}{second}[cluster]\n");
    assert_errors(
        &text,
        &[
            (2, 8, "node `name`"),
            (3, 1, "unknown key `extra` in [node]"),
            (7, 8, "`vrid` must be between 1 and 255"),
            (9, 12, "`priority` must be between 1 and 255, got 300"),
            (
                12,
                13,
                "`interface` \"e/1\" is not a valid Linux interface name",
            ),
            (15, 19, "`advert_interval` must be between 10ms"),
            (16, 1, "[cluster] is missing the required key `id`"),
            (
                16,
                1,
                "[cluster] is missing the required key `auth_key_file`",
            ),
            (16, 1, "[cluster] has no [[cluster.node]]"),
        ],
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let text = vrrp(&[("interface", "\"éé/\"")]).replace("vrid = 51", "vrid = 51 # ñ\nx = 1");
    assert_errors(
        &text,
        &[
            (3, 13, "not a valid Linux interface name"),
            (5, 1, "unknown key `x`"),
        ],
    );
    let text = vrrp(&[]).replace("name = \"web\"", "\"ñame\" = 1");
    let found = errors(&text);
    assert_eq!(
        (found[0].line, found[0].column),
        (1, 1),
        "missing name at the header"
    );
    assert_eq!((found[1].line, found[1].column), (2, 1), "unknown key");
    assert!(found[1].message.contains("`ñame`"));
}

// ---- keys of the production edges: node security and state, VIP lease, source address ----

#[test]
fn node_security_and_state_keys_are_checked() {
    let text = format!(
        "[node]\ncontrol_group = \"no-such-group-relevo\"\nstate_dir = \"run/relevo\"\nhook_security = \"lax\"\n{}",
        vrrp(&[])
    );
    assert_errors(
        &text,
        &[
            (2, 17, "`control_group`: no group \"no-such-group-relevo\""),
            (3, 13, "`state_dir` must be an absolute path"),
            (4, 17, "`hook_security` must be \"strict\" or \"off\""),
        ],
    );
}

#[test]
fn vip_lease_and_source_address_are_checked() {
    for (key, value, fragment) in [
        (
            "vip_lease",
            "\"500ms\"",
            "`vip_lease` must be \"0s\" (off) or at least 1s",
        ),
        (
            "source_address",
            "\"192.0.2.100\"",
            "is one of this instance's VIPs",
        ),
        (
            "source_address",
            "\"2001:db8::1\"",
            "is IPv6 but the VIPs are IPv4",
        ),
        ("source_address", "\"x\"", "is not an IPv4 or IPv6 address"),
    ] {
        let column = key.len() + 4;
        assert_error(&vrrp(&[(key, value)]), 6, column, fragment);
    }
    let v6 = [
        ("vips", "[\"fe80::1/64\", \"2001:db8::100/64\"]"),
        ("source_address", "\"2001:db8::11\""),
    ];
    assert_error(&vrrp(&v6), 6, 18, "is not link-local");
}

#[test]
fn one_link_local_vip_per_instance() {
    let text = vrrp(&[("vips", "[\"fe80::1/64\", \"fe80::2/64\"]")]);
    assert_error(&text, 5, 23, "only one link-local VIP per instance");
}

#[test]
fn virtual_mac_rules() {
    // Multicast only.
    let text = vrrp(&[
        ("unicast_peers", "[\"192.0.2.2\"]"),
        ("virtual_mac", "true"),
    ]);
    assert_error(&text, 6, 17, "`virtual_mac` is for multicast segments");
    // A name without the mode.
    let text = vrrp(&[("vmac_interface", "\"vr51\"")]);
    assert_error(&text, 6, 18, "add `virtual_mac = true`");
    // The macvlan cannot be the instance's own interface.
    let text = vrrp(&[("virtual_mac", "true"), ("vmac_interface", "\"eth0\"")]);
    assert_error(&text, 7, 18, "would be the instance's own `interface`");
    let text = vrrp(&[("virtual_mac", "true"), ("vmac_interface", "\"a/b\"")]);
    assert_error(&text, 7, 18, "not a valid Linux interface name");
    // Two instances with the same default name (same VRID and family, other interfaces).
    let second = vrrp(&[
        ("name", "\"db\""),
        ("interface", "\"eth1\""),
        ("vips", "[\"198.51.100.100/24\"]"),
        ("virtual_mac", "true"),
    ]);
    let text = vrrp(&[("virtual_mac", "true")]) + &second;
    assert_error(
        &text,
        12,
        15,
        "\"vrrp4.51\" is already used by instance \"web\"",
    );
    // ... or a name that is another instance's interface.
    let second = vrrp(&[
        ("name", "\"db\""),
        ("interface", "\"vrrp4.51\""),
        ("vrid", "52"),
        ("vips", "[\"198.51.100.100/24\"]"),
    ]);
    let text = vrrp(&[("virtual_mac", "true")]) + &second;
    assert_error(&text, 6, 15, "is the `interface` of instance \"db\"");
}
