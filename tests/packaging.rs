//! What `packaging/` ships: the example configurations pass `relevo check`, the example hooks
//! pass shellcheck and do what their headers say (in their dry-run mode), the systemd unit
//! passes `systemd-analyze verify` with a comment on every directive, and the Debian package
//! metadata in Cargo.toml points at files that exist. shellcheck and systemd-analyze must be
//! installed: without them a test fails, unless RELEVO_SKIP_PACKAGING_TOOLS=1 (never under
//! CI=true).
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn relevo() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_relevo"))
}

fn hooks_dir() -> PathBuf {
    root().join("packaging/examples/hooks")
}

fn example_hooks() -> Vec<PathBuf> {
    let mut hooks: Vec<PathBuf> = std::fs::read_dir(hooks_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    hooks.sort();
    assert!(hooks.len() >= 4, "{hooks:?}");
    hooks
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A scratch directory for one test, removed by the caller.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relevo-packaging-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether `tool` is on PATH; if not: panics under CI=true or without
/// RELEVO_SKIP_PACKAGING_TOOLS=1, else prints "<test>: SKIPPED" and returns false.
fn have_tool(tool: &str, test: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let skip = std::env::var("RELEVO_SKIP_PACKAGING_TOOLS").is_ok_and(|v| v == "1");
    if ci || !skip {
        panic!(
            "{test} needs {tool} (apt-get install {}); set RELEVO_SKIP_PACKAGING_TOOLS=1 to skip \
             outside CI",
            if tool == "systemd-analyze" {
                "systemd"
            } else {
                tool
            }
        );
    }
    eprintln!("{test}: SKIPPED ({tool} missing)");
    false
}

fn check(config: &Path) -> Output {
    Command::new(relevo())
        .args(["check", "-c"])
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn example_config_passes_relevo_check() {
    let out = check(&root().join("packaging/examples/relevo.toml"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("vrrp web"), "{}", text(&out));
}

/// The cluster example refers to secret files that only exist on a real node: the test points
/// those keys (and nothing else) at files of its own.
#[test]
fn cluster_example_passes_relevo_check() {
    let dir = scratch("cluster");
    let mut example =
        std::fs::read_to_string(root().join("packaging/examples/cluster.toml")).unwrap();
    for (secret, content) in [
        ("/etc/relevo/authkey", "1 0123456789abcdef0123\n"),
        ("/etc/relevo/n1-bmc.pass", "secret\n"),
        ("/etc/relevo/n2-bmc.pass", "secret\n"),
    ] {
        assert!(example.contains(secret), "{secret}");
        let file = dir.join(Path::new(secret).file_name().unwrap());
        std::fs::write(&file, content).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        example = example.replace(&format!("\"{secret}\""), &format!("\"{}\"", file.display()));
    }
    let config = dir.join("cluster.toml");
    std::fs::write(&config, example).unwrap();
    let out = check(&config);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("resources storage (30),floating-ip (20),vms (10)"),
        "{}",
        text(&out)
    );
}

/// Every command the example configurations run is one of the example hooks.
#[test]
fn example_configs_name_only_shipped_hooks() {
    let names: Vec<String> = example_hooks()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for file in ["relevo.toml", "cluster.toml"] {
        let example =
            std::fs::read_to_string(root().join("packaging/examples").join(file)).unwrap();
        let mut used = 0;
        for (at, _) in example.match_indices("/etc/relevo/hooks/") {
            let name: String = example[at + "/etc/relevo/hooks/".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if name.is_empty() {
                continue; // the directory itself ("install ... /etc/relevo/hooks/")
            }
            assert!(
                names.contains(&name),
                "{file} names hook {name:?}, not shipped"
            );
            used += 1;
        }
        assert!(used > 0, "{file} uses no example hook");
    }
}

/// The example hooks and packaging/test-deb.sh.
#[test]
fn example_hooks_pass_shellcheck() {
    if !have_tool("shellcheck", "example_hooks_pass_shellcheck") {
        return;
    }
    let out = Command::new("shellcheck")
        .args(["--shell=bash", "--severity=style"])
        .args(example_hooks())
        .arg(root().join("packaging/test-deb.sh"))
        .output()
        .unwrap();
    assert!(out.status.success(), "shellcheck:\n{}", text(&out));
}

/// Each hook says it is an example, is executable, and its header names every RELEVO_
/// variable the script reads.
#[test]
fn example_hooks_document_what_they_read() {
    for hook in example_hooks() {
        let script = std::fs::read_to_string(&hook).unwrap();
        let name = hook.display();
        assert!(script.starts_with("#!/bin/bash\n"), "{name}");
        let header: String = script
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            header.contains("EXAMPLE"),
            "{name}: header says it is an example"
        );
        assert!(header.contains("relevo-hooks(7)"), "{name}");
        let mode = std::fs::metadata(&hook).unwrap().permissions().mode();
        assert_eq!(mode & 0o755, 0o755, "{name}: mode {mode:o}");
        for (at, _) in script.match_indices("RELEVO_") {
            let var: String = script[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            assert!(
                header.contains(&var),
                "{name} reads {var} but its header does not say so"
            );
        }
    }
}

/// Runs an example hook with `env` (and nothing of this process's environment but PATH, as
/// relevo does), in dry-run mode.
fn run_hook(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(hooks_dir().join(name))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EXAMPLE_DRY_RUN", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn storage_guard_mounts_only_when_lost_peers_are_fenced_or_confirmed_down() {
    let dir = scratch("storage");
    let state = dir.to_str().unwrap();
    let base = [("EXAMPLE_STATE_DIR", state), ("EXAMPLE_GUARD_WAIT", "1")];
    let mount = |event: &str| {
        let mut env = base.to_vec();
        env.push(("RELEVO_EVENT", event));
        run_hook(
            "shared-storage",
            &["mount", "/dev/sdz", "/srv/vms", "xfs"],
            &env,
        )
    };
    let track = |event: &str, reason: &str| {
        let mut env = base.to_vec();
        env.extend([
            ("RELEVO_EVENT", event),
            ("RELEVO_PEER", "n2"),
            ("RELEVO_REASON", reason),
        ]);
        let out = run_hook("shared-storage", &["track"], &env);
        assert!(out.status.success(), "{}", text(&out));
    };
    let mounts = |out: &Output| text(out).contains("mount -t xfs -o defaults /dev/sdz /srv/vms");

    let out = mount("acquire");
    assert!(out.status.success() && mounts(&out), "{}", text(&out));

    track("node-dead", "deadtime");
    let out = mount("acquire");
    assert!(!out.status.success(), "mounted after an unconfirmed loss");
    assert!(!mounts(&out) && text(&out).contains("n2"), "{}", text(&out));

    track("fenced", "");
    let out = mount("acquire");
    assert!(out.status.success() && mounts(&out), "{}", text(&out));

    track("node-dead", "deadtime");
    track("node-dead", "restarted");
    assert!(mount("acquire").status.success(), "restarted = down");

    track("node-dead", "deadtime");
    assert!(!mount("acquire").status.success());
    let mut env = base.to_vec();
    env.push(("RELEVO_EVENT", ""));
    let out = run_hook("shared-storage", &["confirm-down", "n2"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(mount("acquire").status.success(), "confirmed down by hand");

    let out = mount("release");
    assert!(
        out.status.success() && text(&out).contains("umount /srv/vms"),
        "{}",
        text(&out)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn vm_hook_starts_in_priority_order_and_stops_in_reverse() {
    let lines = |event: &str| {
        let out = run_hook(
            "vm-restart",
            &["db", "app", "web"],
            &[("RELEVO_EVENT", event)],
        );
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("virsh "))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lines("acquire"),
        ["virsh start db", "virsh start app", "virsh start web"]
    );
    assert_eq!(
        lines("release"),
        [
            "virsh shutdown web",
            "virsh shutdown app",
            "virsh shutdown db"
        ]
    );
    assert!(lines("master").is_empty(), "other events do nothing");
}

#[test]
fn floating_ip_hook_assigns_through_the_provider_cli() {
    let out = run_hook(
        "floating-ip",
        &["hcloud", "web-ip", "lb1"],
        &[("RELEVO_EVENT", "master")],
    );
    assert!(
        text(&out).contains("hcloud floating-ip assign web-ip lb1"),
        "{}",
        text(&out)
    );
    let out = run_hook(
        "floating-ip",
        &["openstack", "198.51.100.10", "lb1"],
        &[("RELEVO_EVENT", "acquire")],
    );
    assert!(
        text(&out).contains("openstack server add floating ip lb1 198.51.100.10"),
        "{}",
        text(&out)
    );
    let out = run_hook(
        "floating-ip",
        &["hcloud", "web-ip", "lb1"],
        &[("RELEVO_EVENT", "backup")],
    );
    assert!(out.status.success() && out.stdout.is_empty());
    let out = run_hook(
        "floating-ip",
        &["aws", "x", "y"],
        &[("RELEVO_EVENT", "master")],
    );
    assert!(!out.status.success(), "an unknown provider fails");
}

#[test]
fn webhook_hook_posts_json() {
    let out = run_hook(
        "notify-webhook",
        &["https://chat.example.com/hooks/x"],
        &[
            ("RELEVO_EVENT", "master"),
            ("RELEVO_NAME", "web"),
            ("RELEVO_NODE", "n1"),
            ("RELEVO_STATE", "MASTER"),
            ("RELEVO_PREV_STATE", "BACKUP"),
            ("RELEVO_REASON", "master-down"),
            ("RELEVO_VIPS", "192.0.2.100/24"),
            ("RELEVO_PEER", "a \"quoted\\ peer"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let payload: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = payload["text"].as_str().unwrap();
    assert!(
        message.contains("web master (BACKUP -> MASTER)")
            && message.contains("a \"quoted\\ peer")
            && message.contains("192.0.2.100/24"),
        "{message}"
    );
    assert_eq!(payload["event"], "master");
}

/// The [Service] and [Unit] directives: each one directly under a comment, or in a block of
/// directives that starts under one.
#[test]
fn systemd_unit_is_commented_and_verifies() {
    let unit = std::fs::read_to_string(root().join("packaging/relevo.service")).unwrap();
    for directive in [
        "Type=notify\n",
        "ExecStartPre=/usr/sbin/relevo check -c /etc/relevo/relevo.toml\n",
        "ExecReload=/bin/kill -HUP $MAINPID\n",
        "WatchdogSec=",
        "TimeoutStopSec=",
        "RuntimeDirectory=relevo\n",
        "StateDirectory=relevo\n",
        "Restart=on-failure\n",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW\n",
    ] {
        assert!(unit.contains(directive), "{directive}");
    }
    let mut section = "";
    let mut commented = false;
    for line in unit.lines() {
        if line.starts_with('[') {
            section = line;
            commented = false;
        } else if line.starts_with('#') {
            commented = true;
        } else if line.trim().is_empty() {
            commented = false;
        } else if section == "[Service]" {
            assert!(commented, "{line}: no comment above it");
        }
    }

    if !have_tool("systemd-analyze", "systemd_unit_is_commented_and_verifies") {
        return;
    }
    // The unit as installed, but with this build's binary and without the man page check
    // (the pages are installed by the package: packaging/test-deb.sh verifies that unit).
    let dir = scratch("unit");
    let local: String = unit
        .replace("/usr/sbin/relevo", relevo().to_str().unwrap())
        .lines()
        .filter(|l| !l.starts_with("Documentation="))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = dir.join("relevo.service");
    std::fs::write(&path, local).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success() && text(&out).trim().is_empty(),
        "systemd-analyze verify: {}",
        text(&out)
    );
}

/// `[package.metadata.deb]`: every asset exists (but the binary, built by cargo deb), the
/// conffile is the example that `relevo check` accepts, and the unit runs the binary where
/// the package puts it.
#[test]
fn debian_metadata_ships_existing_files() {
    let manifest: toml::Table = std::fs::read_to_string(root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets = deb["assets"].as_array().unwrap();
    let mut targets = Vec::new();
    for asset in assets {
        let asset = asset.as_array().unwrap();
        let (source, target) = (asset[0].as_str().unwrap(), asset[1].as_str().unwrap());
        targets.push((source.to_string(), target.to_string()));
        if source.starts_with("target/") {
            continue;
        }
        let matches: Vec<_> = if source.contains('*') {
            let dir = root().join(Path::new(source).parent().unwrap());
            std::fs::read_dir(&dir).unwrap().collect()
        } else {
            assert!(root().join(source).is_file(), "{source}");
            Vec::new()
        };
        assert!(!source.contains('*') || !matches.is_empty(), "{source}");
    }
    let target_of = |source: &str| {
        targets
            .iter()
            .find(|(s, _)| s == source)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| panic!("{source} is not an asset"))
    };
    assert_eq!(target_of("target/release/relevo"), "usr/sbin/");
    assert_eq!(
        target_of("packaging/examples/relevo.toml"),
        "etc/relevo/relevo.toml"
    );
    let conffiles = deb["conf-files"].as_array().unwrap();
    assert!(conffiles
        .iter()
        .any(|c| c.as_str() == Some("/etc/relevo/relevo.toml")));
    for page in ["man/relevo.8", "man/relevo-control.7", "man/relevo.toml.5"] {
        assert!(target_of(page).starts_with("usr/share/man/"), "{page}");
    }
}
