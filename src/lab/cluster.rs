//! Cluster-mode configs for lab nodes, shared by the namespace tests and the cluster bench:
//! `[cluster]` over every node's two links ([`crate::lab::Topology::TwoLinks`]), the key file,
//! and one resource group ("db" unless named otherwise, plus "www" for active-active) with a VIP
//! on `eth0`.
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::netns::Lab;
use super::relevo_node::{NodeConfig, RelevoNode, VrrpInstance};
use crate::config::format_duration;

/// The default VIP of the main group ("db").
pub const CLUSTER_VIP: &str = "192.0.2.150/24";
/// The VIP of group "www" (active-active).
pub const CLUSTER_VIP_WWW: &str = "192.0.2.151/24";
/// The name of the group's `[[group.resource]]` ([`ClusterSpec::resource`]).
pub const CLUSTER_RESOURCE: &str = "app";
/// The `timeout` of that resource's start and stop.
pub const CLUSTER_RESOURCE_TIMEOUT: Duration = Duration::from_secs(5);
/// The heartbeat key (id 1).
pub const CLUSTER_KEY: &str = "0123456789abcdef0123";
pub const CLUSTER_ID: u8 = 7;
pub const CLUSTER_PORT: u16 = 694;

/// What a test or bench sets in the cluster config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The name of the main group (default "db").
    pub group: String,
    /// The main group's VIP, "ADDR/LEN" (default [`CLUSTER_VIP`]).
    pub vip: String,
    /// Also run the quorum-gated VRRP instance of [`ClusterSpec::start`] (default true).
    pub vrrp_instance: bool,
    pub keepalive: Duration,
    pub warntime: Duration,
    pub deadtime: Duration,
    pub initdead: Duration,
    /// The group's `takeover_delay`; `None` = relevo's default.
    pub takeover_delay: Option<Duration>,
    /// A `[[group.resource]]` running this hook (`start` / `stop` as its argument).
    pub resource: Option<PathBuf>,
    /// More `[cluster]` keys, as TOML lines.
    pub cluster_extra: String,
    /// `auto_failback = false` on the groups.
    pub no_failback: bool,
    /// A second group, "www", preferring the nodes in reverse order.
    pub active_active: bool,
    /// Node i (1-based) is fenced by device "ni-power"; the other nodes have
    /// `fence = "none"`.
    pub fences: Vec<(usize, LabFence)>,
    /// Node i's `fence_delay`.
    pub fence_delays: Vec<(usize, Duration)>,
    /// `track = [...]` of the main group (`[[track]]` names, defined in `extra_toml`).
    pub group_track: Vec<String>,
    /// Top-level tables appended after everything else (e.g. `[[track]]`).
    pub extra_toml: String,
}

impl Default for ClusterSpec {
    /// Timings a loaded test machine keeps: keepalive 20 ms, warntime 60 ms, deadtime 100 ms,
    /// initdead 1 s, takeover_delay 150 ms.
    fn default() -> Self {
        ClusterSpec {
            group: "db".to_string(),
            vip: CLUSTER_VIP.to_string(),
            vrrp_instance: true,
            keepalive: Duration::from_millis(20),
            warntime: Duration::from_millis(60),
            deadtime: Duration::from_millis(100),
            initdead: Duration::from_secs(1),
            takeover_delay: Some(Duration::from_millis(150)),
            resource: None,
            cluster_extra: String::new(),
            no_failback: false,
            active_active: false,
            fences: Vec::new(),
            fence_delays: Vec::new(),
            group_track: Vec::new(),
            extra_toml: String::new(),
        }
    }
}

/// A fence device of a [`ClusterSpec`] node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabFence {
    /// A `command` device running this agent, timeout 5 s.
    Agent(PathBuf),
    /// An `ipmi` device (administrator privilege, action off).
    Ipmi {
        host: Ipv4Addr,
        port: u16,
        username: String,
        password_file: PathBuf,
        timeout: Duration,
    },
}

impl LabFence {
    /// The `[[fence]]` keys after `name`.
    fn toml(&self) -> String {
        match self {
            LabFence::Agent(agent) => format!(
                "type = \"command\"\ncommand = [\"{}\"]\ntimeout = \"5s\"\n",
                agent.display()
            ),
            LabFence::Ipmi {
                host,
                port,
                username,
                password_file,
                timeout,
            } => format!(
                "type = \"ipmi\"\nhost = \"{host}\"\nport = {port}\nusername = \"{username}\"\n\
                 password_file = \"{}\"\nprivilege = \"administrator\"\naction = \"off\"\n\
                 timeout = {}\n",
                password_file.display(),
                quoted(*timeout)
            ),
        }
    }
}

fn quoted(d: Duration) -> String {
    format!("\"{}\"", format_duration(d))
}

impl ClusterSpec {
    /// The cluster and group tables for every node of `lab`.
    pub fn toml(&self, lab: &Lab, key_file: &Path) -> String {
        let mut out = format!(
            "\n[cluster]\nid = {CLUSTER_ID}\nport = {CLUSTER_PORT}\nkeepalive = {}\nwarntime = {}\n\
             deadtime = {}\ninitdead = {}\nauth_key_file = \"{}\"\nquorum_policy = \"stop\"\n{}",
            quoted(self.keepalive),
            quoted(self.warntime),
            quoted(self.deadtime),
            quoted(self.initdead),
            key_file.display(),
            self.cluster_extra
        );
        let names: Vec<String> = (1..=lab.nodes()).map(|i| format!("\"n{i}\"")).collect();
        for i in 1..=lab.nodes() {
            let fence = if self.fences.iter().any(|(n, _)| *n == i) {
                format!("n{i}-power")
            } else {
                "none".to_string()
            };
            let delay = self
                .fence_delays
                .iter()
                .find(|(n, _)| *n == i)
                .map(|(_, d)| format!("fence_delay = {}\n", quoted(*d)))
                .unwrap_or_default();
            out += &format!(
                "\n[[cluster.node]]\nname = \"n{i}\"\nlinks = [\"{}\", \"{}\"]\nfence = \"{fence}\"\n{delay}",
                lab.node_ipv4(i),
                lab.node_link2_ipv4(i)
            );
        }
        for (i, fence) in &self.fences {
            out += &format!("\n[[fence]]\nname = \"n{i}-power\"\n{}", fence.toml());
        }
        out += &self.group(&self.group, &names, &self.vip);
        if !self.group_track.is_empty() {
            let quoted: Vec<String> = self.group_track.iter().map(|t| format!("{t:?}")).collect();
            out += &format!("track = [{}]\n", quoted.join(", "));
        }
        if let Some(hook) = &self.resource {
            let hook = hook.display();
            out += &format!(
                "\n[[group.resource]]\nname = \"{CLUSTER_RESOURCE}\"\nstart = [\"{hook}\", \"start\"]\n\
                 stop = [\"{hook}\", \"stop\"]\ntimeout = {}\n",
                quoted(CLUSTER_RESOURCE_TIMEOUT)
            );
        }
        if self.active_active {
            let reversed: Vec<String> = names.iter().rev().cloned().collect();
            out += &self.group("www", &reversed, CLUSTER_VIP_WWW);
        }
        out += &self.extra_toml;
        out
    }

    fn group(&self, name: &str, nodes: &[String], vip: &str) -> String {
        let delay = self
            .takeover_delay
            .map(|d| format!("takeover_delay = {}\n", quoted(d)))
            .unwrap_or_default();
        format!(
            "\n[[group]]\nname = \"{name}\"\nnodes = [{}]\nauto_failback = {}\n{delay}\
             vips = [{{ address = \"{vip}\", interface = \"eth0\" }}]\n",
            nodes.join(", "),
            !self.no_failback
        )
    }

    /// Writes the key file and starts relevo on every node of `lab`, each also (with
    /// `vrrp_instance`) with a quorum-gated VRRP instance "web" on VRID 90 (a node cut off from
    /// the cluster must not claim it).
    pub fn start(&self, lab: &Lab, relevo_bin: &Path) -> Result<Vec<RelevoNode>> {
        let keys = write_key_file(lab)?;
        (1..=lab.nodes())
            .map(|i| {
                let mut instance =
                    VrrpInstance::new(90, 100, Duration::from_secs(1), &["192.0.2.190/24"]);
                instance.quorum_gated = true;
                let mut config: NodeConfig = RelevoNode::config_for(lab, i, instance);
                if !self.vrrp_instance {
                    config.vrrp.clear();
                }
                config.extra_toml = self.toml(lab, &keys);
                RelevoNode::start(lab, i, relevo_bin, &config)
                    .with_context(|| format!("starting relevo on n{i}"))
            })
            .collect()
    }
}

/// The auth key file (mode 0600) in the lab's work dir.
pub fn write_key_file(lab: &Lab) -> Result<PathBuf> {
    let path = lab.work_dir().join("authkey");
    std::fs::write(&path, format!("1 {CLUSTER_KEY}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 0600 {}", path.display()))?;
    Ok(path)
}
