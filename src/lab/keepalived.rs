//! keepalived as a VRRP peer on a lab node (interop partner and benchmark baseline): renders a
//! one-instance config, a notify script that records the state, runs `keepalived --dont-fork
//! --vrrp` with per-node pid files (the default ones are shared by every namespace), and offers
//! graceful stop (SIGTERM), crash (SIGKILL of parent and VRRP child in one call) and restart.
use crate::lab::netns::{Lab, LabProcess};
use crate::lab::relevo_node::log_tail;
use crate::lab::util::wait_until;
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// keepalived needs ~1 s for a clean shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for keepalived to write both pid files.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// The notify script: `notify.sh DIR INSTANCE|GROUP NAME STATE PRIORITY` keeps the bare state
/// in DIR/state (atomically) and a history in DIR/state.log.
const NOTIFY_SCRIPT: &str = r#"#!/bin/sh
d=$1; state=$4; prio=$5
read -r uptime _ < /proc/uptime
echo "$uptime $state $prio" >> "$d/state.log"
echo "$state" > "$d/state.tmp" && mv "$d/state.tmp" "$d/state"
"#;

/// Whether a `keepalived` binary can be run.
pub fn is_installed() -> bool {
    Command::new("keepalived")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// One keepalived VRRP instance on `eth0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepalivedConfig {
    pub vrid: u8,
    pub priority: u8,
    /// 2 or 3 (IPv6 instances are always 3 in keepalived).
    pub version: u8,
    /// Written as decimal seconds (`advert_int 0.01`); v3 uses 10 ms steps, v2 whole seconds.
    pub advert_interval: Duration,
    /// "ADDR/LEN" strings.
    pub vips: Vec<String>,
    /// Extra lines inside `vrrp_instance`, e.g. "nopreempt" or an authentication block.
    pub extra_lines: Vec<String>,
}

impl KeepalivedConfig {
    /// VRRPv3 instance with the given VRID, priority, interval and VIPs.
    pub fn new(vrid: u8, priority: u8, advert_interval: Duration, vips: &[&str]) -> Self {
        KeepalivedConfig {
            vrid,
            priority,
            version: 3,
            advert_interval,
            vips: vips.iter().map(|v| v.to_string()).collect(),
            extra_lines: Vec::new(),
        }
    }

    /// The keepalived.conf text; `router_id` names the node, `run_dir` holds notify.sh.
    pub fn render(&self, router_id: &str, run_dir: &Path) -> String {
        let dir = run_dir.display();
        let mut out = String::new();
        let _ = write!(
            out,
            "global_defs {{\n    router_id {router_id}\n    vrrp_version {}\n    \
             script_user root\n    enable_script_security\n}}\n\n",
            self.version
        );
        let _ = writeln!(out, "vrrp_instance RL_VR{} {{", self.vrid);
        let _ = writeln!(out, "    interface eth0");
        let _ = writeln!(out, "    virtual_router_id {}", self.vrid);
        let _ = writeln!(out, "    priority {}", self.priority);
        let _ = writeln!(out, "    advert_int {}", seconds(self.advert_interval));
        for extra in &self.extra_lines {
            let _ = writeln!(out, "    {extra}");
        }
        let _ = writeln!(out, "    notify \"{dir}/notify.sh {dir}\"");
        let _ = writeln!(out, "    virtual_ipaddress {{");
        for vip in &self.vips {
            let _ = writeln!(out, "        {vip}");
        }
        out.push_str("    }\n}\n");
        out
    }
}

/// A duration as keepalived's decimal seconds ("0.01", "1", "1.5").
fn seconds(d: Duration) -> String {
    let text = format!("{:.3}", d.as_secs_f64());
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// keepalived running on lab node `node`; files in `/tmp/<lab>/kad-n<i>/`.
pub struct KeepalivedNode {
    node: usize,
    ns: String,
    dir: PathBuf,
    process: Option<LabProcess>,
}

impl KeepalivedNode {
    /// Writes config + notify script and starts keepalived on node `i`; returns once both
    /// keepalived processes have written their pid files.
    pub fn start(lab: &Lab, i: usize, config: &KeepalivedConfig) -> Result<Self> {
        let dir = Self::run_dir(lab, i);
        let text = config.render(&format!("{}-n{i}", lab.id()), &dir);
        Self::start_with_text(lab, i, &text)
    }

    /// Starts keepalived on node `i` with `text` as its keepalived.conf, as written (a
    /// keepalived.conf from elsewhere, adapted to the node's `eth0`); the notify script is in
    /// its directory ([`KeepalivedNode::dir`]) for configs that want it.
    pub fn start_with_text(lab: &Lab, i: usize, text: &str) -> Result<Self> {
        let dir = Self::run_dir(lab, i);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod 0755 {}", dir.display()))?;
        let script = dir.join("notify.sh");
        std::fs::write(&script, NOTIFY_SCRIPT)
            .with_context(|| format!("writing {}", script.display()))?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod 0755 {}", script.display()))?;
        let conf = dir.join("keepalived.conf");
        std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
        let mut node = KeepalivedNode {
            node: i,
            ns: lab.node_ns(i),
            dir,
            process: None,
        };
        node.restart(lab)?;
        Ok(node)
    }

    /// Node `i`'s directory: config, notify script, pid and state files.
    fn run_dir(lab: &Lab, i: usize) -> PathBuf {
        lab.work_dir().join(format!("kad-n{i}"))
    }

    /// (Re)starts keepalived with the same config (a running one is killed first).
    pub fn restart(&mut self, lab: &Lab) -> Result<()> {
        if let Some(mut old) = self.process.take() {
            old.kill_wait()?;
        }
        // Stale pid files (after a crash) would make keepalived think it is already running.
        for name in ["keepalived.pid", "vrrp.pid", "state"] {
            let _ = std::fs::remove_file(self.dir.join(name));
        }
        let path = |name: &str| self.dir.join(name).to_string_lossy().into_owned();
        let (conf, pid, vrrp_pid) = (
            path("keepalived.conf"),
            path("keepalived.pid"),
            path("vrrp.pid"),
        );
        let argv = [
            "keepalived",
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--no-syslog",
            "--vrrp",
            "-f",
            &conf,
            "-p",
            &pid,
            "-r",
            &vrrp_pid,
        ];
        let log = self.log_path();
        let mut process = lab.spawn(&self.ns, &argv, &log)?;
        let started = wait_until(
            START_TIMEOUT,
            Duration::from_millis(5),
            "keepalived's pid files",
            || {
                if !process.is_running() {
                    bail!("keepalived exited at start");
                }
                Ok(self.vrrp_child_pid().is_some() && self.read_pid("keepalived.pid").is_some())
            },
        );
        if let Err(e) = started {
            bail!(
                "starting keepalived on node {}: {e:#}; {}",
                self.node,
                log_tail(&log)
            );
        }
        self.process = Some(process);
        Ok(())
    }

    /// SIGTERM to the parent and wait: priority-0 advert, VIPs removed, state STOP.
    pub fn stop_graceful(&mut self) -> Result<()> {
        let Some(mut process) = self.process.take() else {
            return Ok(());
        };
        process.signal(Signal::SIGTERM)?;
        if process.wait_exit(STOP_TIMEOUT)?.is_none() {
            process.kill_wait()?;
            bail!("keepalived on node {} ignored SIGTERM; killed", self.node);
        }
        Ok(())
    }

    /// SIGKILL to parent and VRRP child with one killpg: no priority-0 advert, VIPs stay. (Killing
    /// only the parent is a graceful stop; only the child makes the parent respawn it.)
    pub fn crash(&mut self) -> Result<()> {
        if let Some(mut process) = self.process.take() {
            process.signal_group(Signal::SIGKILL)?;
            process.kill_wait()?;
        }
        Ok(())
    }

    /// The state the notify script last recorded: MASTER, BACKUP, FAULT or STOP.
    pub fn state(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join("state")).ok()?;
        let state = text.trim();
        (!state.is_empty()).then(|| state.to_string())
    }

    /// Waits until the notify script has recorded `state` (it runs after keepalived changed
    /// state and the VIPs, asynchronously); fails after `timeout` with the last state seen.
    pub fn wait_state(&self, state: &str, timeout: Duration) -> Result<()> {
        let what = format!("keepalived on node {} to record state {state}", self.node);
        wait_until(timeout, Duration::from_millis(10), &what, || {
            Ok(self.state().as_deref() == Some(state))
        })
        .with_context(|| format!("last recorded state: {:?}", self.state()))
    }

    /// Whether the parent process is alive.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.is_running())
    }

    /// Parent and VRRP child pids (the child does the protocol work).
    pub fn pids(&self) -> Vec<i32> {
        let Some(process) = &self.process else {
            return Vec::new();
        };
        let mut pids = vec![process.pid()];
        pids.extend(self.vrrp_child_pid());
        pids
    }

    /// The node number.
    pub fn node(&self) -> usize {
        self.node
    }

    /// keepalived's console log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("keepalived.log")
    }

    /// The directory with config, pid files and state files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn vrrp_child_pid(&self) -> Option<i32> {
        self.read_pid("vrrp.pid")
    }

    fn read_pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_v3_instance() {
        let mut config =
            KeepalivedConfig::new(51, 150, Duration::from_millis(10), &["192.0.2.100/24"]);
        config.extra_lines.push("nopreempt".into());
        let text = config.render("rl-n1", Path::new("/tmp/rl/kad-n1"));
        assert!(text.contains("vrrp_version 3\n"), "{text}");
        assert!(text.contains("    advert_int 0.01\n"), "{text}");
        assert!(text.contains("    virtual_router_id 51\n"), "{text}");
        assert!(text.contains("    nopreempt\n"), "{text}");
        assert!(text.contains("notify \"/tmp/rl/kad-n1/notify.sh /tmp/rl/kad-n1\""));
        assert!(text.contains("        192.0.2.100/24\n"), "{text}");
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn seconds_are_decimal() {
        assert_eq!(seconds(Duration::from_millis(10)), "0.01");
        assert_eq!(seconds(Duration::from_secs(1)), "1");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5");
    }
}
