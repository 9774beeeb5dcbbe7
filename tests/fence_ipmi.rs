//! Fencing against OpenIPMI's `ipmi_sim` as the BMC, through `relevo fence NODE`: status, a
//! confirmed power off, wrong credentials, an unreachable BMC, a BMC that never reports the
//! power off, and the `command` type with `fence_ipmilan`, a hanging agent and one that prints
//! garbage. Each test runs its own BMC on a port of its own on 127.0.0.1. Needs ipmi_sim (and
//! fence_ipmilan for the agent test): fails without them under CI=true.

mod fence_support;

use std::time::Duration;

use fence_support::{
    ipmi_device, needs_fence_agents, needs_ipmi_sim, relevo_fence, write_config, Bmc, Chassis,
    TempDir, PASSWORD, USER,
};

#[test]
fn status_reports_power_on() {
    if !needs_ipmi_sim() {
        return;
    }
    let bmc = Bmc::start("status", Chassis::Normal);
    let dir = TempDir::new("status");
    let config = write_config(&dir, &ipmi_device(&dir, bmc.port, PASSWORD, "5s"));
    let run = relevo_fence(&config, "n2", &["--action", "status"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let prefix = format!(
        "n2 (device n2-dev, ipmi 127.0.0.1:{}): power is on",
        bmc.port
    );
    assert!(run.stdout.starts_with(&prefix), "{}", run.stdout);
    assert_eq!(bmc.power(), "1");
}

#[test]
fn off_returns_only_once_the_bmc_reports_power_off() {
    if !needs_ipmi_sim() {
        return;
    }
    let bmc = Bmc::start("off", Chassis::Normal);
    let dir = TempDir::new("off");
    let config = write_config(&dir, &ipmi_device(&dir, bmc.port, PASSWORD, "5s"));
    // The device's action (off, the default) when --action is not given.
    let run = relevo_fence(&config, "n2", &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("): powered off (confirmed) in "),
        "{}",
        run.stdout
    );
    assert_eq!(bmc.power(), "0");
    // The BMC was asked the power state after it turned it off.
    let events = bmc.events();
    let off_at = events.find("POWER OFF").expect("powered off");
    assert!(events[off_at..].contains("get power"), "{events}");
    let run = relevo_fence(&config, "n2", &["--action", "status"]);
    assert!(run.stdout.contains("): power is off"), "{}", run.stdout);
    // On and reboot are accepted.
    let run = relevo_fence(&config, "n2", &["--action", "on"]);
    assert!(
        run.stdout.contains("): power on accepted"),
        "{}",
        run.stdout
    );
    assert_eq!(bmc.power(), "1");
    let run = relevo_fence(&config, "n2", &["--action", "reboot"]);
    assert!(
        run.stdout.contains("): power cycle accepted"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_wrong_password_is_an_authentication_error() {
    if !needs_ipmi_sim() {
        return;
    }
    let bmc = Bmc::start("auth", Chassis::Normal);
    let dir = TempDir::new("auth");
    let config = write_config(&dir, &ipmi_device(&dir, bmc.port, "wrong-pass", "5s"));
    let run = relevo_fence(&config, "n2", &["--action", "off"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "authentication failed: the BMC refused user \"{USER}\" or its password"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("wrong-pass"), "{}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
    assert_eq!(bmc.power(), "1");
}

#[test]
fn an_unreachable_bmc_fails_within_the_timeout() {
    // No BMC at all: a port nobody listens on.
    let dir = TempDir::new("unreachable");
    let port = fence_support::free_udp_port();
    let config = write_config(&dir, &ipmi_device(&dir, port, PASSWORD, "2s"));
    let run = relevo_fence(&config, "n2", &["--action", "status"]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains(&format!("BMC 127.0.0.1:{port} unreachable: no answer")),
        "{}",
        run.stderr
    );
    assert!(
        run.elapsed < Duration::from_millis(2500),
        "{:?}",
        run.elapsed
    );
}

#[test]
fn a_bmc_that_never_reports_power_off_times_out() {
    if !needs_ipmi_sim() {
        return;
    }
    let bmc = Bmc::start("never", Chassis::IgnoresOff);
    let dir = TempDir::new("never");
    let config = write_config(&dir, &ipmi_device(&dir, bmc.port, PASSWORD, "2s"));
    let run = relevo_fence(&config, "n2", &["--action", "off"]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(
        run.stderr.contains(
            "timeout after 2s: the device never reported power off (last reported: power on)"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.elapsed >= Duration::from_millis(1500) && run.elapsed < Duration::from_secs(3),
        "{:?}",
        run.elapsed
    );
    assert!(bmc.events().contains("ignored set power 0"));
    // Polled, not asked once.
    assert!(
        bmc.events().matches("get power").count() >= 5,
        "{}",
        bmc.events()
    );
}

/// A `command` device body running `program` with the options for `fence_ipmilan` on `port`.
fn agent_device(program: &str, port: u16, timeout: &str) -> String {
    format!(
        "type = \"command\"\ncommand = [\"{program}\"]\ntimeout = \"{timeout}\"\n\
         options = {{ ip = \"127.0.0.1\", ipport = \"{port}\", username = \"{USER}\", \
         password = \"{PASSWORD}\", lanplus = \"1\", cipher = \"3\" }}\n"
    )
}

#[test]
fn fence_ipmilan_as_a_command_device() {
    if !needs_fence_agents() {
        return;
    }
    let bmc = Bmc::start("agent", Chassis::Normal);
    let dir = TempDir::new("agent");
    let device = agent_device(relevo::lab::FENCE_IPMILAN, bmc.port, "30s");
    let config = write_config(&dir, &device);
    let run = relevo_fence(&config, "n2", &["--action", "status"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.starts_with(&format!(
            "n2 (device n2-dev, command {}): power is on",
            relevo::lab::FENCE_IPMILAN
        )),
        "{}",
        run.stdout
    );
    let run = relevo_fence(&config, "n2", &["--action", "off"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("powered off (confirmed)"),
        "{}",
        run.stdout
    );
    assert_eq!(bmc.power(), "0");
    // fence_ipmilan exits 2 for "off" on status: power off, not a failure.
    let run = relevo_fence(&config, "n2", &["--action", "status"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("power is off"), "{}", run.stdout);
}

#[test]
fn fence_ipmilan_with_a_wrong_password_fails_with_its_message() {
    if !needs_fence_agents() {
        return;
    }
    let bmc = Bmc::start("agentauth", Chassis::Normal);
    let dir = TempDir::new("agentauth");
    let device =
        agent_device(relevo::lab::FENCE_IPMILAN, bmc.port, "30s").replace(PASSWORD, "wrong-pass");
    let config = write_config(&dir, &device);
    let run = relevo_fence(&config, "n2", &["--action", "off"]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!(
            "fence agent {} failed (exit status 1): ",
            relevo::lab::FENCE_IPMILAN
        )),
        "{}",
        run.stderr
    );
    assert_eq!(bmc.power(), "1");
}

#[test]
fn a_hanging_agent_is_killed_at_its_timeout() {
    let dir = TempDir::new("hang");
    let pid_file = dir.path("sleep.pid");
    let script = format!(
        "#!/bin/sh\nsleep 60 &\necho $! > {}\nwait\n",
        pid_file.display()
    );
    let agent = dir.write("hang.sh", &script, 0o755);
    let device = agent_device(&agent.display().to_string(), 1, "1s");
    let config = write_config(&dir, &device);
    let run = relevo_fence(&config, "n2", &["--action", "off"]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!(
            "fence agent {} hung: killed after 1s",
            agent.display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.elapsed < Duration::from_millis(2500),
        "{:?}",
        run.elapsed
    );
    // The agent's own child went with its process group.
    let pid = std::fs::read_to_string(&pid_file).expect("the agent started sleep");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next();
    assert!(
        stat.is_empty() || state == Some("Z"),
        "sleep {} still runs: {stat}",
        pid.trim()
    );
}

#[test]
fn an_agent_that_prints_garbage_and_exits_1_fails() {
    let dir = TempDir::new("garbage");
    let stdin_copy = dir.path("stdin");
    let script = format!(
        "#!/bin/sh\ncat > {}\nhead -c 100000 /dev/urandom\nprintf 'x\\001y\\nno plug \\377 here\\n\\n' >&2\nexit 1\n",
        stdin_copy.display()
    );
    let agent = dir.write("garbage.sh", &script, 0o755);
    let device = agent_device(&agent.display().to_string(), 6230, "5s");
    let config = write_config(&dir, &device);
    let run = relevo_fence(&config, "n2", &["--action", "reboot"]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!(
            "fence agent {} failed (exit status 1): no plug \u{fffd} here",
            agent.display()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    // The options reached stdin the way fence agents read them, the action last.
    let stdin = std::fs::read_to_string(&stdin_copy).expect("stdin copy");
    let lines: Vec<&str> = stdin.lines().collect();
    assert_eq!(lines.last(), Some(&"action=reboot"), "{stdin}");
    for option in [
        "ip=127.0.0.1",
        "ipport=6230",
        "username=admin",
        "lanplus=1",
        "cipher=3",
    ] {
        assert!(lines.contains(&option), "{option} not in {stdin}");
    }
}
