//! `relevo import-keepalived`: every keepalived config of tests/fixtures/keepalived_import
//! converts to a config that passes `relevo check` with the expected instance; unconverted
//! options are listed with their lines; includes are followed; unreadable or unparsable files
//! fail with a line; and, in namespaces, keepalived running one config and Relevo running the
//! conversion of its peer's elect exactly one master.
mod netns_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use netns_support::*;
use relevo::config::{run_check, Config, VrrpConfig};
use relevo::import::import_keepalived;
use relevo::lab::keepalived::KeepalivedNode;
use relevo::lab::relevo_node::{NodeConfig, RelevoNode};
use relevo::wire::VrrpVersion;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keepalived_import")
}

fn case(name: &str) -> PathBuf {
    fixtures().join("cases").join(name)
}

/// Writes `text` to a fresh file under the target's temp dir and returns its path.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("import_keepalived");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Converts `path`, checks the result as `relevo check` does and returns the config and the
/// importer's stderr.
fn convert_and_check(path: &Path) -> (Config, String) {
    let report = import_keepalived(path);
    assert_eq!(report.code, 0, "{}: {}", path.display(), report.stderr);
    assert!(
        !report.stderr.contains("does not pass"),
        "{}: {}",
        path.display(),
        report.stderr
    );
    let name = path.file_name().unwrap().to_string_lossy();
    let out = temp_file(&format!("{name}.toml"), &report.toml);
    let check = run_check(&out);
    assert_eq!(
        check.code, 0,
        "{}:\n{}\n{}",
        name, check.stderr, report.toml
    );
    let config = relevo::config::load(&out).unwrap();
    (config, report.stderr)
}

/// What a converted instance must say.
struct Expect {
    file: &'static str,
    vrid: u8,
    priority: u8,
    version: VrrpVersion,
    interval_ms: u64,
    vips: &'static [&'static str],
    peers: &'static [&'static str],
    source: Option<&'static str>,
    auth: Option<&'static str>,
    vmac: Option<&'static str>,
}

const fn expect(file: &'static str, vrid: u8, priority: u8, version: u8) -> Expect {
    Expect {
        file,
        vrid,
        priority,
        version: if version == 2 {
            VrrpVersion::V2
        } else {
            VrrpVersion::V3
        },
        interval_ms: 1000,
        vips: &[],
        peers: &[],
        source: None,
        auth: None,
        vmac: None,
    }
}

const EXPECTED: &[Expect] = &[
    Expect {
        interval_ms: 2000,
        vips: &["192.0.2.120/24", "192.0.2.121/24"],
        auth: Some("iapass"),
        ..expect("kad-v2-ipv4-auth.conf", 54, 120, 2)
    },
    Expect {
        vips: &["192.0.2.110/24"],
        ..expect("kad-v2-ipv4.conf", 53, 100, 2)
    },
    Expect {
        vips: &["192.0.2.150/24"],
        ..expect("kad-v3-ipv4-takeover-node1.conf", 57, 200, 3)
    },
    Expect {
        vips: &["192.0.2.150/24"],
        ..expect("kad-v3-ipv4-takeover-node2.conf", 57, 100, 3)
    },
    Expect {
        vips: &["192.0.2.140/24"],
        peers: &["192.0.2.11"],
        source: Some("192.0.2.10"),
        ..expect("kad-v3-ipv4-unicast.conf", 56, 150, 3)
    },
    Expect {
        vips: &["192.0.2.130/24"],
        vmac: Some("iavmac55"),
        ..expect("kad-v3-ipv4-vmac.conf", 55, 255, 3)
    },
    Expect {
        vips: &["192.0.2.100/24", "192.0.2.101/24", "192.0.2.102/24"],
        ..expect("kad-v3-ipv4.conf", 51, 150, 3)
    },
    Expect {
        interval_ms: 500,
        vips: &["fe80::1/64", "2001:db8::100/64"],
        ..expect("kad-v3-ipv6.conf", 52, 200, 3)
    },
    // No vrrp_version in global_defs: keepalived's default, 2.
    Expect {
        vips: &["192.0.2.110/24"],
        ..expect("example-vrrp2-ipv4.conf", 53, 100, 2)
    },
    Expect {
        vips: &["192.0.2.100/24"],
        ..expect("example-vrrp3-ipv4.conf", 51, 100, 3)
    },
    // IPv6 without vrrp_version: always 3.
    Expect {
        interval_ms: 500,
        vips: &["fe80::1/64", "2001:db8::100/64"],
        ..expect("example-vrrp3-ipv6.conf", 52, 100, 3)
    },
];

fn assert_instance(expect: &Expect, vrrp: &VrrpConfig) {
    let file = expect.file;
    assert_eq!(vrrp.interface, "iaeth0", "{file}");
    assert_eq!(vrrp.vrid, expect.vrid, "{file}");
    assert_eq!(vrrp.priority, expect.priority, "{file}");
    assert_eq!(vrrp.version, expect.version, "{file}");
    assert_eq!(
        vrrp.advert_interval,
        Duration::from_millis(expect.interval_ms),
        "{file}"
    );
    let vips: Vec<String> = vrrp.vips.iter().map(ToString::to_string).collect();
    assert_eq!(vips, expect.vips, "{file}");
    let peers: Vec<String> = vrrp.unicast_peers.iter().map(ToString::to_string).collect();
    assert_eq!(peers, expect.peers, "{file}");
    assert_eq!(
        vrrp.source_address.map(|a| a.to_string()).as_deref(),
        expect.source,
        "{file}"
    );
    assert_eq!(vrrp.auth_pass.as_deref(), expect.auth, "{file}");
    assert_eq!(vrrp.vmac_interface.as_deref(), expect.vmac, "{file}");
}

/// Every copied keepalived config converts, passes `relevo check` (which does not require
/// the interfaces to exist here: these name `iaeth0`), and carries the expected values.
#[test]
fn every_fixture_converts_and_passes_check() {
    let mut files: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".conf"))
        .collect();
    files.sort();
    let mut expected: Vec<&str> = EXPECTED.iter().map(|e| e.file).collect();
    expected.sort();
    assert_eq!(files, expected, "every fixture has its expectations");
    for expect in EXPECTED {
        let (config, stderr) = convert_and_check(&fixtures().join(expect.file));
        assert_eq!(config.vrrp.len(), 1, "{}", expect.file);
        assert_instance(expect, &config.vrrp[0]);
        assert!(config.node.name.starts_with("ia-"), "{}", expect.file);
        // These files hold nothing Relevo lacks, but for script_user.
        for line in stderr.lines() {
            assert!(
                line.contains("script_user") || line.contains("note:"),
                "{}: unexpected: {line}",
                expect.file
            );
        }
    }
}

/// The generic `notify` of the interop example becomes the four hooks, argv split as
/// keepalived splits it, with a note on its arguments.
#[test]
fn notify_becomes_hooks() {
    let (config, stderr) = convert_and_check(&fixtures().join("example-vrrp3-ipv4.conf"));
    let hooks = &config.vrrp[0].hooks;
    let argv = vec![
        "/tmp/ia_kad/notify.sh".to_string(),
        "/tmp/ia_kad".to_string(),
    ];
    for hook in [&hooks.master, &hooks.backup, &hooks.fault, &hooks.stop] {
        assert_eq!(hook.as_ref(), Some(&argv));
    }
    assert!(
        stderr.contains("line 18: note: `notify /tmp/ia_kad/notify.sh /tmp/ia_kad`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 9: not converted: `script_user root`"),
        "{stderr}"
    );
}

/// Each unsupported option is listed with its line; what does convert still does, and the
/// result passes `relevo check`.
#[test]
fn unsupported_options_are_listed_with_their_lines() {
    let path = case("unsupported.conf");
    let (config, stderr) = convert_and_check(&path);
    let expected = [
        (5, "notification_email { ... }"),
        (17, "vrrp_sync_group G1 { ... }"),
        (21, "notify_master /etc/ka/g.sh"),
        (24, "state MASTER"),
        (31, "no_accept"),
        (37, "192.0.2.100/24 dev eth0 label eth0:vip"),
        (38, "192.0.2.101/24 dev eth1"),
        (39, "2001:db8::1/64"),
        (48, "notify_backup relative.sh"),
        (52, "smtp_alert"),
        (54, "virtual_server 192.0.2.100 80 { ... }"),
    ];
    let listed: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("not converted"))
        .collect();
    for (line, option) in expected {
        let needle = format!(
            "{}: line {line}: not converted: `{option}`:",
            path.display()
        );
        assert!(
            listed.iter().any(|l| l.starts_with(&needle)),
            "{needle} missing in\n{stderr}"
        );
    }
    assert_eq!(listed.len(), expected.len(), "{stderr}");
    let vrrp = &config.vrrp[0];
    assert_eq!(config.node.name, "lb-1");
    assert_eq!((vrrp.vrid, vrrp.priority), (51, 150));
    assert_eq!(vrrp.version, VrrpVersion::V3);
    assert_eq!(vrrp.advert_interval, Duration::from_millis(500));
    assert!(!vrrp.preempt);
    assert_eq!(vrrp.preempt_delay, Duration::from_secs(10));
    assert_eq!(vrrp.vips.len(), 1);
    assert_eq!(vrrp.unicast_peers, [ip("192.0.2.12")]);
    assert_eq!(vrrp.source_address, Some(ip("192.0.2.11")));
    assert_eq!(vrrp.announce.repeat, 2, "global vrrp_garp_master_repeat");
    assert_eq!(vrrp.announce.delay, Duration::from_secs(3));
    assert_eq!(vrrp.announce.refresh, Some(Duration::from_secs(60)));
    let master = vec!["/etc/ka/master.sh".to_string(), "up".to_string()];
    assert_eq!(vrrp.hooks.master, Some(master));
    assert_eq!(vrrp.hooks.backup, Some(vec!["/etc/ka/all.sh".to_string()]));
}

/// vrrp_script/track_script and track_interface become `[[track]]` tables and `track = [...]`
/// on the instance, which Relevo's parser takes as they are.
#[test]
fn tracking_becomes_track_tables() {
    let report = import_keepalived(&case("unsupported.conf"));
    let table: toml::Table = toml::from_str(&report.toml).unwrap();
    let tracks = table["track"].as_array().unwrap();
    assert_eq!(tracks.len(), 2);
    assert_eq!(tracks[0]["name"].as_str(), Some("chk_haproxy"));
    let script: Vec<&str> = tracks[0]["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(script, ["/usr/bin/pgrep", "-x", "haproxy"]);
    assert_eq!(tracks[0]["interval"].as_str(), Some("2s"));
    assert_eq!(tracks[0]["timeout"].as_str(), Some("1s"));
    assert_eq!(tracks[0]["rise"].as_integer(), Some(2));
    assert_eq!(tracks[0]["fall"].as_integer(), Some(3));
    assert_eq!(tracks[0]["weight"].as_integer(), Some(-20));
    assert_eq!(tracks[1]["interface"].as_str(), Some("eth1"));
    assert_eq!(tracks[1]["weight"].as_integer(), Some(-10));
    let instance = &table["vrrp"].as_array().unwrap()[0];
    assert_eq!(
        instance["track"].as_array().unwrap(),
        &vec![
            toml::Value::from("chk_haproxy"),
            toml::Value::from("eth1-VI_1")
        ]
    );
    assert!(
        !report.stderr.contains("[[track]]"),
        "tracking converts: {}",
        report.stderr
    );
    let config = relevo::config::parse(&report.toml, std::path::Path::new("converted.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{}", report.toml));
    assert_eq!(config.vrrp[0].track, ["chk_haproxy", "eth1-VI_1"]);
    assert_eq!(config.tracks.len(), 2);
}

/// `include` globs are followed relative to the including file; remarks name the included
/// file; an include that matches nothing is a warning.
#[test]
fn includes_are_followed() {
    let path = case("include-main.conf");
    let (config, stderr) = convert_and_check(&path);
    let names: Vec<&str> = config.vrrp.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["db", "web"], "conf.d/*.conf in name order");
    let db = &config.vrrp[0];
    assert_eq!(
        db.priority, 255,
        "state MASTER without a priority is the owner"
    );
    assert_eq!(db.version, VrrpVersion::V2);
    assert_eq!(db.advert_interval, Duration::from_secs(1), "v2: rounded");
    assert_eq!(db.vips[0].to_string(), "198.51.100.61/32");
    let web = &config.vrrp[1];
    assert_eq!(
        web.auth_pass.as_deref(),
        Some("longpass"),
        "first 8 characters"
    );
    let web_file = fixtures().join("cases/conf.d/web.conf");
    let needle = format!(
        "{}: {} line 12: not converted: `lvs_sync_daemon_interface eth0`",
        path.display(),
        web_file.display()
    );
    assert!(stderr.contains(&needle), "{needle}\n{stderr}");
    assert!(
        stderr.contains("line 7: warning: `include missing/*.conf`: no file matches"),
        "{stderr}"
    );
    assert!(
        stderr.contains("db.conf line 5: note: `advert_int 1.4`"),
        "{stderr}"
    );
}

fn run_cli(args: &[&str]) -> std::process::Output {
    Command::new(relevo_bin()).args(args).output().unwrap()
}

/// An unbalanced file fails with exit 1 and the line of the block left open.
#[test]
fn garbage_gives_an_error_with_a_line() {
    let path = case("garbage.conf");
    let out = run_cli(&["import-keepalived", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        format!(
            "relevo import-keepalived: {}: line 4: '{{' is never closed (missing '}}')",
            path.display()
        )
    );
    let prose = case("prose.conf");
    let out = run_cli(&["import-keepalived", prose.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "no vrrp_instance found: nothing to convert (line 1: `this is not a keepalived config`"
        ),
        "{stderr}"
    );
    let binary = temp_file("binary.conf", "vrrp_instance a {\n\u{0}\n");
    let mut bytes = std::fs::read(&binary).unwrap();
    bytes.extend_from_slice(b"\xff\xfe\n}\n");
    std::fs::write(&binary, bytes).unwrap();
    let out = run_cli(&["import-keepalived", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 3: "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_cli(&["import-keepalived", "/nonexistent/keepalived.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/keepalived.conf")
    );
}

/// The command writes the config to stdout or to `-o FILE`, the remarks to stderr, exit 0.
#[test]
fn cli_writes_stdout_or_file() {
    let path = case("unsupported.conf");
    let out = run_cli(&["import-keepalived", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("[[vrrp]]\nname = \"VI_1\""), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 52: not converted: `smtp_alert`"));
    let target = temp_file("cli-out.toml", "");
    let out = run_cli(&[
        "import-keepalived",
        path.to_str().unwrap(),
        "-o",
        target.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), stdout);
    let check = run_cli(&["check", "-c", target.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
}

/// The relevo config for lab node `i` from `keepalived` (a keepalived.conf): converted by the
/// importer, the node's own name, control socket and state dir in place of `[node]`.
fn converted_node(lab: &relevo::lab::Lab, i: usize, keepalived: &str) -> NodeConfig {
    let source = temp_file(&format!("{}-n{i}.conf", lab.id()), keepalived);
    let report = import_keepalived(&source);
    assert_eq!(report.code, 0, "{}", report.stderr);
    let mut table: toml::Table = toml::from_str(&report.toml).unwrap();
    table.remove("node");
    let mut config = RelevoNode::config_for(lab, i, instance(1, 1, ms(1000), &["192.0.2.1/24"]));
    config.vrrp.clear();
    config.extra_toml = toml::to_string(&table).unwrap();
    config
}

/// A shared fixture adapted to the lab: the lab's nodes talk on `eth0`.
fn adapted(file: &str) -> String {
    std::fs::read_to_string(fixtures().join(file))
        .unwrap()
        .replace("iaeth0", "eth0")
}

/// keepalived runs `kad_file` on node 1, Relevo the conversion of `relevo_file` on node 2:
/// exactly node `master` holds the VIP, and keeps holding it alone.
fn one_master(tag: &str, kad_file: &str, relevo_file: &str, master: usize) {
    if !needs_root_and_keepalived(tag) {
        return;
    }
    let Some(lab) = lab(tag, 2) else { return };
    let vip = ip("192.0.2.150/24");
    let config = converted_node(&lab, 2, &adapted(relevo_file));
    let kad = KeepalivedNode::start_with_text(&lab, 1, &adapted(kad_file)).unwrap();
    let relevo = RelevoNode::start(&lab, 2, &relevo_bin(), &config).unwrap();
    let logs = [kad.log_path(), relevo.log_path().to_path_buf()];
    // 1 s adverts: Master_Down_Interval is under 4 s.
    expect_master(&lab, vip, master, Duration::from_secs(8), &logs);
    assert!(
        holds_for(Duration::from_secs(4), || lab.masters(vip) == [master]),
        "masters {:?}\n{}\n{}",
        lab.masters(vip),
        log_of(&kad.log_path()),
        log_of(relevo.log_path())
    );
}

/// keepalived with node1's config (priority 200) against Relevo with node2's converted
/// config (100): keepalived is the one master.
#[test]
fn interop_keepalived_master_converted_backup() {
    one_master(
        "ikk",
        "kad-v3-ipv4-takeover-node1.conf",
        "kad-v3-ipv4-takeover-node2.conf",
        1,
    );
}

/// Relevo with node1's converted config (200) against keepalived with node2's (100): Relevo
/// is the one master.
#[test]
fn interop_converted_master_keepalived_backup() {
    one_master(
        "ikr",
        "kad-v3-ipv4-takeover-node2.conf",
        "kad-v3-ipv4-takeover-node1.conf",
        2,
    );
}

/// GARP/NA settings (the instance's own, else `global_defs`), the per-instance `version`,
/// `accept`, notify_fault/notify_stop and one-line blocks.
#[test]
fn garp_version_and_hooks() {
    let path = case("garp-hooks.conf");
    let (config, stderr) = convert_and_check(&path);
    let (v6, v4) = (&config.vrrp[0], &config.vrrp[1]);
    assert_eq!(v6.version, VrrpVersion::V3, "IPv6 is always v3");
    assert_eq!(v6.announce.repeat, 4);
    assert_eq!(
        v6.announce.interval,
        Duration::from_millis(2),
        "gna_interval"
    );
    assert_eq!(v6.announce.delay, Duration::from_secs(2), "global delay");
    assert_eq!(v6.hooks.fault, Some(vec!["/etc/ka/fault.sh".to_string()]));
    let stop = vec!["/etc/ka/stop.sh".to_string(), "now".to_string()];
    assert_eq!(v6.hooks.stop, Some(stop));
    assert_eq!(
        (v6.hooks.master.as_ref(), v6.hooks.backup.as_ref()),
        (None, None)
    );
    assert_eq!(v4.version, VrrpVersion::V3, "the instance's version wins");
    assert_eq!(v4.priority, 100, "state BACKUP without a priority");
    assert_eq!(v4.announce.interval, Duration::from_millis(10));
    assert_eq!(v4.vips[0].to_string(), "192.0.2.71/24");
    assert_eq!(v6.announce.refresh, Some(Duration::from_secs(30)), "global");
    let v4b = &config.vrrp[2];
    assert_eq!(v4b.version, VrrpVersion::V2, "global vrrp_version");
    assert_eq!(v4b.announce.interval, Duration::from_millis(3), "global");
    let listed: Vec<&str> = stderr.lines().collect();
    assert_eq!(listed.len(), 2, "{stderr}");
    assert!(
        listed[0].contains(
            "line 14: not converted: `garp_interval 0.5`: applies to the other address family"
        ),
        "{stderr}"
    );
    assert!(
        listed[1].contains(
            "line 28: not converted: `garp_master_repeat 500`: Relevo's garp_repeat is 1 to 100"
        ),
        "{stderr}"
    );
}

/// A conversion that misses an essential part is still written, exit 0, with what is missing
/// and the diagnostics of `relevo check`.
#[test]
fn incomplete_conversion_says_it_does_not_pass_check() {
    let path = temp_file(
        "no-interface.conf",
        "vrrp_instance x {\n    virtual_router_id 9\n    virtual_ipaddress {\n        192.0.2.9/24\n    }\n}\n",
    );
    let report = import_keepalived(&path);
    assert_eq!(report.code, 0);
    assert!(report.toml.contains("vrid = 9"), "{}", report.toml);
    assert!(
        report
            .stderr
            .contains("line 1: not converted: `vrrp_instance x { ... }`: no `interface`"),
        "{}",
        report.stderr
    );
    assert!(
        report
            .stderr
            .contains("the converted config does not pass `relevo check` yet"),
        "{}",
        report.stderr
    );
    assert!(report.stderr.contains("interface"), "{}", report.stderr);
}
