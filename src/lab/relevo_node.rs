//! A relevo daemon on a lab node: the TOML config builder (the `[node]` + `[[vrrp]]` contract
//! of design.md §3) and the process handle (`<bin> run -c /tmp/<lab>/n<i>.toml`, log in
//! `/tmp/<lab>/n<i>.log`) with graceful stop, crash, restart and `relevo status`, and a
//! directory for hook scripts that the default `hook_security` accepts.
use crate::config::format_duration;
use crate::lab::netns::{Lab, LabProcess};
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a graceful stop may take before it counts as a failure (and the daemon is killed).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Hook script paths of one instance (absolute; executed directly by the daemon).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    pub master: Option<PathBuf>,
    pub backup: Option<PathBuf>,
    pub fault: Option<PathBuf>,
    pub stop: Option<PathBuf>,
}

impl Hooks {
    /// `script` for every event (master, backup, fault, stop).
    pub fn all(script: &Path) -> Hooks {
        let script = Some(script.to_path_buf());
        Hooks {
            master: script.clone(),
            backup: script.clone(),
            fault: script.clone(),
            stop: script,
        }
    }
}

/// Where hook directories go: `/run/relevo-test-<name>` (see [`HookDir`]).
pub(crate) const HOOK_DIR_PARENT: &str = "/run";
/// Prefix of a hook directory's name in [`HOOK_DIR_PARENT`].
pub(crate) const HOOK_DIR_PREFIX: &str = "relevo-test-";

/// A directory for hook scripts that `hook_security = "strict"` (the default) accepts:
/// `/run/relevo-test-<name>`, owned by root, mode 0755. The lab's work dir lives under the
/// world-writable `/tmp`, where strict refuses hooks. Removed with its contents on drop; root
/// only. A lab has one ([`Lab::hook_dir`]); tests without a lab make their own.
#[derive(Debug)]
pub struct HookDir(PathBuf);

impl HookDir {
    /// `/run/relevo-test-<pid>-<tag>`, see [`HookDir::named`].
    pub fn create(tag: &str) -> Result<Self> {
        HookDir::named(&format!("{}-{tag}", std::process::id()))
    }

    /// Creates `/run/relevo-test-<name>` (replacing a leftover of the same name) and checks
    /// that strict would accept a hook in it.
    pub(crate) fn named(name: &str) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let path = Path::new(HOOK_DIR_PARENT).join(format!("{HOOK_DIR_PREFIX}{name}"));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        let dir = HookDir(path);
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod 0755 {}", dir.0.display()))?;
        let (uid, gid) = (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
        nix::unistd::chown(&dir.0, Some(uid), Some(gid))
            .with_context(|| format!("chown root:root {}", dir.0.display()))?;
        if let Err(reason) = crate::daemon::hook_security::check(&dir.0.join("hook")) {
            bail!("hooks in {} would be refused: {reason}", dir.0.display());
        }
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for HookDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One `[[vrrp]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    /// 2 or 3.
    pub version: u8,
    pub advert_interval: Duration,
    pub preempt: bool,
    pub preempt_delay: Option<Duration>,
    /// "ADDR/LEN" strings, one address family per instance.
    pub vips: Vec<String>,
    pub unicast_peers: Vec<String>,
    /// "pseudo-header" or "no-pseudo-header" (v3 over IPv4 only).
    pub v3_ipv4_checksum: Option<String>,
    /// VRRPv2 simple-text password.
    pub auth_pass: Option<String>,
    pub hooks: Hooks,
    pub hook_timeout: Option<Duration>,
    pub garp_repeat: Option<u32>,
    pub garp_interval: Option<Duration>,
    pub garp_delay: Option<Duration>,
    pub garp_refresh: Option<Duration>,
    /// `vip_lease` (None = the default, 5 s).
    pub vip_lease: Option<Duration>,
    pub source_address: Option<String>,
    /// `virtual_mac = true`.
    pub virtual_mac: bool,
    /// `quorum_gated = true` (needs a `[cluster]`).
    pub quorum_gated: bool,
    /// `track = [...]`: `[[track]]` names (the tables go in [`NodeConfig::extra_toml`]).
    pub track: Vec<String>,
}

impl VrrpInstance {
    /// Instance "web" on eth0, VRRPv3, preempting, no unicast peers, everything else default.
    pub fn new(vrid: u8, priority: u8, advert_interval: Duration, vips: &[&str]) -> Self {
        VrrpInstance {
            name: "web".to_string(),
            interface: "eth0".to_string(),
            vrid,
            priority,
            version: 3,
            advert_interval,
            preempt: true,
            preempt_delay: None,
            vips: vips.iter().map(|v| v.to_string()).collect(),
            unicast_peers: Vec::new(),
            v3_ipv4_checksum: None,
            auth_pass: None,
            hooks: Hooks::default(),
            hook_timeout: None,
            garp_repeat: None,
            garp_interval: None,
            garp_delay: None,
            garp_refresh: None,
            vip_lease: None,
            source_address: None,
            virtual_mac: false,
            quorum_gated: false,
            track: Vec::new(),
        }
    }

    fn write_toml(&self, out: &mut String) {
        out.push_str("\n[[vrrp]]\n");
        line(out, "name", &quote(&self.name));
        line(out, "interface", &quote(&self.interface));
        line(out, "vrid", &self.vrid.to_string());
        line(out, "priority", &self.priority.to_string());
        line(out, "version", &self.version.to_string());
        line(out, "advert_interval", &duration(self.advert_interval));
        line(out, "preempt", &self.preempt.to_string());
        if let Some(delay) = self.preempt_delay {
            line(out, "preempt_delay", &duration(delay));
        }
        line(out, "vips", &string_array(&self.vips));
        line(out, "unicast_peers", &string_array(&self.unicast_peers));
        if let Some(mode) = &self.v3_ipv4_checksum {
            line(out, "v3_ipv4_checksum", &quote(mode));
        }
        if let Some(pass) = &self.auth_pass {
            line(out, "auth_pass", &quote(pass));
        }
        if let Some(n) = self.garp_repeat {
            line(out, "garp_repeat", &n.to_string());
        }
        let optional_durations = [
            ("hook_timeout", self.hook_timeout),
            ("garp_interval", self.garp_interval),
            ("garp_delay", self.garp_delay),
            ("garp_refresh", self.garp_refresh),
            ("vip_lease", self.vip_lease),
        ];
        for (key, value) in optional_durations {
            if let Some(value) = value {
                line(out, key, &duration(value));
            }
        }
        if let Some(source) = &self.source_address {
            line(out, "source_address", &quote(source));
        }
        if self.virtual_mac {
            line(out, "virtual_mac", "true");
        }
        if self.quorum_gated {
            line(out, "quorum_gated", "true");
        }
        if !self.track.is_empty() {
            line(out, "track", &string_array(&self.track));
        }
        if let Some(hooks) = self.hooks_table() {
            line(out, "hooks", &hooks);
        }
    }

    fn hooks_table(&self) -> Option<String> {
        let entries: Vec<String> = [
            ("master", &self.hooks.master),
            ("backup", &self.hooks.backup),
            ("fault", &self.hooks.fault),
            ("stop", &self.hooks.stop),
        ]
        .into_iter()
        .filter_map(|(key, path)| {
            let path = path.as_ref()?;
            Some(format!("{key} = {}", quote(&path.to_string_lossy())))
        })
        .collect();
        (!entries.is_empty()).then(|| format!("{{ {} }}", entries.join(", ")))
    }
}

/// A whole relevo config file: `[node]` and its `[[vrrp]]` instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub name: String,
    pub control_socket: Option<PathBuf>,
    /// `state_dir` (the VIP state file): one per node, so daemons of a lab never share it.
    pub state_dir: Option<PathBuf>,
    pub vrrp: Vec<VrrpInstance>,
    /// TOML appended as is (cluster tests: `[cluster]`, `[[cluster.node]]`, `[[group]]`).
    pub extra_toml: String,
}

impl NodeConfig {
    /// The TOML text.
    pub fn to_toml(&self) -> String {
        let mut out = String::from("[node]\n");
        line(&mut out, "name", &quote(&self.name));
        if let Some(socket) = &self.control_socket {
            line(
                &mut out,
                "control_socket",
                &quote(&socket.to_string_lossy()),
            );
        }
        if let Some(dir) = &self.state_dir {
            line(&mut out, "state_dir", &quote(&dir.to_string_lossy()));
        }
        for instance in &self.vrrp {
            instance.write_toml(&mut out);
        }
        out.push_str(&self.extra_toml);
        out
    }
}

fn line(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{key} = {value}");
}

fn duration(d: Duration) -> String {
    quote(&format_duration(d))
}

fn string_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What `relevo status --json` reports: the daemon's own types.
pub use crate::daemon::control::{InstanceStatus, Status as NodeStatus};

/// A relevo daemon on lab node `node`.
pub struct RelevoNode {
    node: usize,
    ns: String,
    bin: PathBuf,
    config_path: PathBuf,
    control_socket: Option<PathBuf>,
    log_path: PathBuf,
    process: Option<LabProcess>,
}

impl RelevoNode {
    /// The config for node `i` of `lab` with one instance: node name "n<i>", control socket in
    /// the lab's work dir (so several daemons never collide).
    pub fn config_for(lab: &Lab, i: usize, instance: VrrpInstance) -> NodeConfig {
        NodeConfig {
            name: format!("n{i}"),
            control_socket: Some(lab.work_dir().join(format!("n{i}.sock"))),
            state_dir: Some(lab.work_dir().join(format!("n{i}.state"))),
            vrrp: vec![instance],
            extra_toml: String::new(),
        }
    }

    /// Writes `config` to `/tmp/<lab>/n<i>.toml` and starts `<relevo_bin> run -c` on it.
    pub fn start(lab: &Lab, i: usize, relevo_bin: &Path, config: &NodeConfig) -> Result<Self> {
        let config_path = lab.work_dir().join(format!("n{i}.toml"));
        std::fs::write(&config_path, config.to_toml())
            .with_context(|| format!("writing {}", config_path.display()))?;
        let mut node = RelevoNode {
            node: i,
            ns: lab.node_ns(i),
            bin: relevo_bin.to_path_buf(),
            config_path,
            control_socket: config.control_socket.clone(),
            log_path: lab.work_dir().join(format!("n{i}.log")),
            process: None,
        };
        node.restart(lab)?;
        Ok(node)
    }

    /// (Re)starts the daemon with the same config; a still running one is killed first.
    pub fn restart(&mut self, lab: &Lab) -> Result<()> {
        if let Some(mut old) = self.process.take() {
            old.kill_wait()?;
        }
        let bin = self.bin.to_string_lossy();
        let config = self.config_path.to_string_lossy();
        let argv = [bin.as_ref(), "run", "-c", config.as_ref()];
        let mut process = lab.spawn(&self.ns, &argv, &self.log_path)?;
        // A daemon that rejects its config exits at once: report that here, with its log.
        if let Some(status) = process.wait_exit(Duration::from_millis(50))? {
            bail!(
                "relevo on node {} exited at start ({status}): {}",
                self.node,
                log_tail(&self.log_path)
            );
        }
        self.process = Some(process);
        Ok(())
    }

    /// SIGTERM and wait for exit (a clean exit sends priority-0 adverts and removes the VIPs).
    pub fn stop_graceful(&mut self) -> Result<()> {
        let Some(mut process) = self.process.take() else {
            return Ok(());
        };
        process.signal(Signal::SIGTERM)?;
        match process.wait_exit(STOP_TIMEOUT)? {
            Some(status) if status.success() => Ok(()),
            Some(status) => bail!(
                "relevo on node {} exited with {status} on SIGTERM: {}",
                self.node,
                log_tail(&self.log_path)
            ),
            None => {
                process.kill_wait()?;
                bail!(
                    "relevo on node {} ignored SIGTERM for {STOP_TIMEOUT:?}; killed",
                    self.node
                )
            }
        }
    }

    /// SIGKILL: no goodbye adverts, VIPs stay on the interface (like a real crash).
    pub fn crash(&mut self) -> Result<()> {
        if let Some(mut process) = self.process.take() {
            process.kill_wait()?;
        }
        Ok(())
    }

    /// Whether the daemon process is alive.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.is_running())
    }

    /// Pid of the daemon, if running.
    pub fn pid(&self) -> Option<i32> {
        self.process.as_ref().map(|p| p.pid())
    }

    /// The node number.
    pub fn node(&self) -> usize {
        self.node
    }

    /// Where the daemon's stdout/stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The config file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Runs `relevo status --socket <this node's control socket>` (from the host: the socket
    /// is a file) and returns the table it prints; fails on a non-zero exit.
    pub fn status_table(&self) -> Result<String> {
        self.cli(&["status"])
    }

    /// Runs `relevo <args> --socket <this node's control socket>` (a control verb: status,
    /// standby, maintenance on, ...) and returns what it prints; fails on a non-zero exit,
    /// with its stderr.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let out = std::process::Command::new(&self.bin)
            .args(args)
            .arg("--socket")
            .arg(self.control_socket()?)
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("running relevo {args:?} for node {}", self.node))?;
        if !out.status.success() {
            bail!(
                "relevo {} for node {} failed ({}): {}",
                args.join(" "),
                self.node,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The daemon's status (what `relevo status --json` prints), asked over its control socket
    /// from this process: no `relevo status` process, cheap enough to poll while timing matters.
    pub fn status(&self) -> Result<NodeStatus> {
        crate::daemon::control::query_status(self.control_socket()?)
            .with_context(|| format!("the status of node {}", self.node))
    }

    /// The status of instance `name`.
    pub fn instance_status(&self, name: &str) -> Result<InstanceStatus> {
        let status = self.status()?;
        status
            .instances
            .into_iter()
            .find(|i| i.name == name)
            .with_context(|| format!("node {} reports no instance {name:?}", self.node))
    }

    fn control_socket(&self) -> Result<&Path> {
        self.control_socket
            .as_deref()
            .with_context(|| format!("node {}'s config names no control socket", self.node))
    }
}

/// The last lines of a log file, joined for an error message.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(8)..].join(" | ");
    format!("{} ends: {tail}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_config_matches_the_contract() {
        let config = NodeConfig {
            name: "n1".into(),
            control_socket: None,
            state_dir: None,
            vrrp: vec![VrrpInstance::new(
                51,
                150,
                Duration::from_millis(10),
                &["192.0.2.100/24"],
            )],
            extra_toml: String::new(),
        };
        assert_eq!(
            config.to_toml(),
            "[node]\nname = \"n1\"\n\n[[vrrp]]\nname = \"web\"\ninterface = \"eth0\"\n\
             vrid = 51\npriority = 150\nversion = 3\nadvert_interval = \"10ms\"\n\
             preempt = true\nvips = [\"192.0.2.100/24\"]\nunicast_peers = []\n"
        );
    }

    #[test]
    fn full_config_is_valid_toml() {
        let mut instance = VrrpInstance::new(7, 100, Duration::from_secs(1), &["2001:db8::100/64"]);
        instance.version = 2;
        instance.preempt_delay = Some(Duration::from_millis(1500));
        instance.unicast_peers = vec!["192.0.2.12".into()];
        instance.v3_ipv4_checksum = Some("no-pseudo-header".into());
        instance.auth_pass = Some("se\"cr\\et".into());
        instance.hooks.master = Some("/tmp/x/master hook".into());
        instance.hooks.stop = Some("/tmp/x/stop".into());
        instance.garp_repeat = Some(3);
        instance.hook_timeout = Some(Duration::from_secs(1));
        instance.garp_refresh = Some(Duration::from_secs(60));
        let config = NodeConfig {
            name: "n2".into(),
            control_socket: Some("/tmp/rl/n2.sock".into()),
            state_dir: Some("/tmp/rl/n2.state".into()),
            vrrp: vec![instance],
            extra_toml: String::new(),
        };
        let text = config.to_toml();
        let table: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            table["node"]["control_socket"].as_str(),
            Some("/tmp/rl/n2.sock")
        );
        let vrrp = &table["vrrp"][0];
        assert_eq!(vrrp["auth_pass"].as_str(), Some("se\"cr\\et"));
        assert_eq!(vrrp["preempt_delay"].as_str(), Some("1.5s"));
        assert_eq!(vrrp["hooks"]["master"].as_str(), Some("/tmp/x/master hook"));
        assert!(vrrp["hooks"].get("backup").is_none());
        assert_eq!(vrrp["garp_repeat"].as_integer(), Some(3));
        assert_eq!(vrrp["hook_timeout"].as_str(), Some("1s"));
        assert_eq!(vrrp["garp_refresh"].as_str(), Some("1m"));
        assert_eq!(vrrp["unicast_peers"][0].as_str(), Some("192.0.2.12"));
    }
}
