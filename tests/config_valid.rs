//! Valid configs: every key read back with its value, every default, and `relevo check` output.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use relevo::config::{self, AnnounceConfig, Family, Hooks, Vip};
use relevo::wire::{V3Ipv4Checksum, VrrpVersion};

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs")
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn vip(text: &str) -> Vip {
    text.parse().unwrap()
}

fn argv(words: &[&str]) -> Option<Vec<String>> {
    Some(words.iter().map(|w| w.to_string()).collect())
}

#[test]
fn full_config_reads_every_key() {
    let path = configs_dir().join("full.toml");
    let config = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.path, path);
    assert_eq!(config.node.name, "n1");
    assert_eq!(
        config.node.control_socket,
        Path::new("/tmp/relevo-test/relevo.sock")
    );
    assert_eq!(config.vrrp.len(), 3);

    let web = &config.vrrp[0];
    assert_eq!(web.name, "web");
    assert_eq!(web.interface, "eth0");
    assert_eq!(web.vrid, 51);
    assert_eq!(web.priority, 150);
    assert_eq!(web.version, VrrpVersion::V3);
    assert_eq!(web.advert_interval, Duration::from_millis(250));
    assert_eq!(web.advert_interval_cs(), 25);
    assert!(!web.preempt);
    assert_eq!(web.preempt_delay, Duration::from_secs(30));
    assert_eq!(web.vips, [vip("192.0.2.100/24"), vip("192.0.2.101/32")]);
    assert_eq!(web.family(), Family::V4);
    assert_eq!(web.unicast_peers, [ip("192.0.2.12"), ip("192.0.2.13")]);
    assert_eq!(web.v3_ipv4_checksum, V3Ipv4Checksum::NoPseudoHeader);
    assert_eq!(web.auth_pass, None);
    assert_eq!(
        web.hooks,
        Hooks {
            master: argv(&["/etc/relevo/hooks/web"]),
            backup: argv(&["/etc/relevo/hooks/web", "backup", "--quiet"]),
            fault: None,
            stop: None,
        }
    );
    assert_eq!(web.hook_timeout, Duration::from_secs(60));
    assert_eq!(
        web.announce,
        AnnounceConfig {
            repeat: 5,
            interval: Duration::from_millis(20),
            delay: Duration::ZERO,
            refresh: Some(Duration::from_secs(90)),
        }
    );

    let legacy = &config.vrrp[1];
    assert_eq!(legacy.version, VrrpVersion::V2);
    assert_eq!(legacy.priority, 255);
    assert_eq!(legacy.advert_interval, Duration::from_secs(2));
    assert_eq!(legacy.advert_interval_cs(), 200);
    assert_eq!(legacy.auth_pass.as_deref(), Some("secret"));
    assert_eq!(legacy.hooks.fault, argv(&["/usr/local/bin/legacy-fault"]));
    assert_eq!(legacy.hooks.stop, argv(&["/usr/local/bin/legacy", "stop"]));
    assert_eq!(legacy.hooks.master, None);

    let web6 = &config.vrrp[2];
    assert_eq!(web6.family(), Family::V6);
    assert_eq!(
        web6.vips,
        [
            vip("2001:db8::100/64"),
            vip("2001:db8::101/128"),
            vip("fe80::51/64")
        ]
    );
    assert_eq!(
        (web6.interface.as_str(), web6.vrid),
        ("eth0", 51),
        "same vrid as web, other family"
    );
}

#[test]
fn minimal_config_gets_every_default() {
    let config =
        config::load(&configs_dir().join("minimal.toml")).unwrap_or_else(|e| panic!("{e}"));
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(config.node.name, host);
    assert_eq!(
        config.node.control_socket,
        Path::new("/run/relevo/relevo.sock")
    );
    assert_eq!(
        config.node.control_socket,
        Path::new(config::DEFAULT_CONTROL_SOCKET)
    );
    let vrrp = &config.vrrp[0];
    assert_eq!(vrrp.priority, 100);
    assert_eq!(vrrp.version, VrrpVersion::V3);
    assert_eq!(vrrp.advert_interval, Duration::from_secs(1));
    assert_eq!(vrrp.advert_interval_cs(), 100);
    assert!(vrrp.preempt);
    assert_eq!(vrrp.preempt_delay, Duration::ZERO);
    assert_eq!(vrrp.vips, [vip("192.0.2.100/32")]);
    assert!(vrrp.unicast_peers.is_empty());
    assert_eq!(vrrp.v3_ipv4_checksum, V3Ipv4Checksum::PseudoHeader);
    assert_eq!(vrrp.auth_pass, None);
    assert_eq!(vrrp.hooks, Hooks::default());
    assert_eq!(vrrp.hook_timeout, Duration::from_secs(30));
    assert_eq!(
        vrrp.announce,
        AnnounceConfig {
            repeat: 3,
            interval: Duration::from_millis(1),
            delay: Duration::from_secs(5),
            refresh: None,
        }
    );
    assert_eq!(vrrp.vmac_interface, None);
    assert_eq!(vrrp.vip_interface(), "eth0");
}

#[test]
fn virtual_mac_names_its_interface_by_family_and_vrid() {
    let text = "[[vrrp]]\nname = \"v4\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"192.0.2.100/24\"]\nvirtual_mac = true\n\
                [[vrrp]]\nname = \"v6\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"2001:db8::100/64\"]\nvirtual_mac = true\n\
                [[vrrp]]\nname = \"named\"\ninterface = \"eth1\"\nvrid = 51\nvips = [\"198.51.100.1/24\"]\nvirtual_mac = true\nvmac_interface = \"vmac-db\"\n";
    let config = parse(text);
    let names: Vec<Option<&str>> = config
        .vrrp
        .iter()
        .map(|v| v.vmac_interface.as_deref())
        .collect();
    assert_eq!(names, [Some("vrrp4.51"), Some("vrrp6.51"), Some("vmac-db")]);
    assert_eq!(config.vrrp[0].vip_interface(), "vrrp4.51");
    assert!(config::summary(&config).contains("multicast, virtual MAC on vrrp4.51"));
}

#[test]
fn default_path_is_etc_relevo() {
    assert_eq!(config::DEFAULT_PATH, "/etc/relevo/relevo.toml");
}

#[test]
fn shipped_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/relevo.toml");
    let config = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!config.vrrp.is_empty());
    // The shipped example follows its own advice: `relevo check` has nothing to warn about.
    let warnings: Vec<String> = config.warnings.iter().map(|w| w.to_string()).collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}

fn parse(text: &str) -> config::Config {
    config::parse(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn durations_in_every_form_are_accepted() {
    let config = parse(
        r#"
[[vrrp]]
name = "a"
interface = "eth0"
vrid = 1
vips = ["192.0.2.1"]
advert_interval = "1.5s"
preempt_delay = "1m30s"
hook_timeout = "1h"
garp_interval = "0ms"
garp_delay = "0.25s"
garp_refresh = "1s"
"#,
    );
    let vrrp = &config.vrrp[0];
    assert_eq!(vrrp.advert_interval_cs(), 150);
    assert_eq!(vrrp.preempt_delay, Duration::from_secs(90));
    assert_eq!(vrrp.hook_timeout, Duration::from_secs(3600));
    assert_eq!(vrrp.announce.interval, Duration::ZERO);
    assert_eq!(vrrp.announce.delay, Duration::from_millis(250));
    assert_eq!(vrrp.announce.refresh, Some(Duration::from_secs(1)));
}

#[test]
fn interval_limits_are_inclusive() {
    let text = |version: u8, interval: &str| {
        format!(
            "[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 1\nvips = [\"192.0.2.1\"]\nversion = {version}\nadvert_interval = \"{interval}\"\n"
        )
    };
    assert_eq!(parse(&text(3, "10ms")).vrrp[0].advert_interval_cs(), 1);
    assert_eq!(parse(&text(3, "40.95s")).vrrp[0].advert_interval_cs(), 4095);
    assert_eq!(
        parse(&text(2, "1s")).vrrp[0].advert_interval,
        Duration::from_secs(1)
    );
    assert_eq!(parse(&text(2, "255s")).vrrp[0].advert_interval_cs(), 25500);
    assert_eq!(
        parse(&text(2, "4m15s")).vrrp[0].advert_interval,
        Duration::from_secs(255)
    );
}

#[test]
fn alternative_toml_spellings_are_equivalent() {
    let inline = parse(
        r#"
vrrp = [{ name = "a", interface = "eth0", vrid = 0x10, vips = ["192.0.2.1/24"], hooks.master = "/bin/true" }]
[node]
name = "n-1.x_y"
"#,
    );
    let sections = parse(
        r#"
[node]
name = "n-1.x_y"

[[vrrp]]
name = "a"
interface = "eth0"
vrid = 16
vips = ['192.0.2.1/24']

[vrrp.hooks]
master = "/bin/true"
"#,
    );
    assert_eq!(inline.vrrp, sections.vrrp);
    assert_eq!(inline.node, sections.node);
}

#[test]
fn unicast_ipv6_peers_and_link_local_peer() {
    let config = parse(
        r#"
[[vrrp]]
name = "v6"
interface = "eth0"
vrid = 9
vips = ["2001:db8:1::1/64"]
unicast_peers = ["2001:db8:1::2", "fe80::2"]
"#,
    );
    assert_eq!(
        config.vrrp[0].unicast_peers,
        [ip("2001:db8:1::2"), ip("fe80::2")]
    );
    assert_eq!(config.vrrp[0].family(), Family::V6);
}

#[test]
fn check_warns_about_an_ipv6_instance_without_a_link_local_vip() {
    let dir = std::env::temp_dir().join(format!("relevo-warn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("v6.toml");
    std::fs::write(
        &path,
        "[[vrrp]]\nname = \"v6\"\ninterface = \"eth0\"\nvrid = 9\nvips = [\"2001:db8:1::1/64\"]\n",
    )
    .unwrap();
    let report = config::run_check(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert!(
        report
            .stderr
            .contains("v6.toml:5:8: warning: IPv6 instance without a link-local VIP"),
        "{}",
        report.stderr
    );
}

#[test]
fn check_summarises_a_valid_config() {
    let path = configs_dir().join("full.toml");
    let report = config::run_check(&path);
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert_eq!(report.stderr, "");
    let expected = format!(
        "{}: OK\n\
         node n1 (control socket /tmp/relevo-test/relevo.sock)\n\
         vrrp web: interface eth0 vrid 51 v3 IPv4 priority 150 interval 250ms vips 192.0.2.100/24,192.0.2.101/32 unicast to 192.0.2.12,192.0.2.13\n\
         vrrp legacy: interface eth1 vrid 7 v2 IPv4 priority 255 interval 2s vips 198.51.100.1/24 multicast\n\
         vrrp web6: interface eth0 vrid 51 v3 IPv6 priority 100 interval 1s vips 2001:db8::100/64,2001:db8::101/128,fe80::51/64 multicast\n",
        path.display()
    );
    assert_eq!(report.stdout, expected);
}

#[test]
fn check_reports_diagnostics_and_fails() {
    let dir = std::env::temp_dir().join(format!("relevo-config-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[[vrrp]]\nname = \"a\"\ninterface = \"eth0\"\nvrid = 0\nvips = [\"192.0.2.1\"]\n",
    )
    .unwrap();
    let report = config::run_check(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(report.code, 1);
    assert_eq!(report.stdout, "");
    assert_eq!(
        report.stderr,
        format!(
            "{}:4:8: error: `vrid` must be between 1 and 255, got 0\n    vrid = 0\n           ^\n",
            path.display()
        )
    );
    assert_eq!(
        config::check_command(Path::new("/nonexistent/relevo.toml")),
        1
    );
}

#[test]
fn check_names_an_unreadable_file() {
    let report = config::run_check(Path::new("/nonexistent/relevo.toml"));
    assert_eq!(report.code, 1);
    assert!(
        report
            .stderr
            .starts_with("/nonexistent/relevo.toml: error: cannot read config file: "),
        "{}",
        report.stderr
    );
}
