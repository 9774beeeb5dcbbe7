//! The validated config as the daemon sees it: plain typed values with units, no spans. Every
//! value here has passed the checks in `node.rs`, `vrrp.rs`, `cluster.rs` and `group.rs`.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::wire::heartbeat::{HeartbeatKey, KeyError, KeyRing};
use crate::wire::{V3Ipv4Checksum, VrrpVersion};

/// A whole config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from (or the name given to [`super::parse`]).
    pub path: PathBuf,
    /// `[node]`.
    pub node: NodeConfig,
    /// `[[vrrp]]`, in file order.
    pub vrrp: Vec<VrrpConfig>,
    /// `[cluster]` with its `[[cluster.node]]` list; `None` without a `[cluster]` table.
    pub cluster: Option<ClusterConfig>,
    /// `[[group]]` resource groups, in file order (only with a `[cluster]`).
    pub groups: Vec<GroupConfig>,
    /// `[[fence]]` fencing devices, in file order (only with a `[cluster]`).
    pub fence_devices: Vec<FenceDevice>,
    /// `[[track]]` checks, in file order; instances and groups refer to them by name.
    pub tracks: Vec<TrackConfig>,
    /// `[metrics]`: the Prometheus endpoint and status page; `None` without the table.
    pub metrics: Option<MetricsConfig>,
    /// What `relevo check` warns about (the config is valid), in file order.
    pub warnings: Vec<super::Diagnostic>,
}

/// `[metrics]`: where the Prometheus endpoint and status page listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `listen`: address and port (TCP).
    pub listen: std::net::SocketAddr,
}

/// `[node]`: this node's identity and control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Node name; defaults to the host name.
    pub name: String,
    /// Path of the control socket; default `/run/relevo/relevo.sock`.
    pub control_socket: PathBuf,
    /// Group whose members may use the control socket besides root (by name).
    pub control_group: Option<String>,
    /// Where run-time state lives (the addresses Relevo added, for crash cleanup);
    /// default `/run/relevo`.
    pub state_dir: PathBuf,
    /// Whether hook files writable by anyone but root are refused.
    pub hook_security: HookSecurity,
}

/// `hook_security`: refuse hooks that a non-root user could rewrite (strict, the default), or
/// run them anyway (off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HookSecurity {
    #[default]
    Strict,
    Off,
}

/// One `[[vrrp]]` instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpConfig {
    /// Unique instance name (`[A-Za-z0-9_.-]+`).
    pub name: String,
    /// Interface the adverts are sent on and the VIPs are added to.
    pub interface: String,
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// 1..=255; 255 means this node owns the addresses.
    pub priority: u8,
    /// Protocol version (v2 is IPv4 only).
    pub version: VrrpVersion,
    /// Advertisement interval: a multiple of 10 ms in 10 ms..=40.95 s (v3), whole seconds 1..=255 (v2).
    pub advert_interval: Duration,
    /// Whether a higher-priority backup takes over from a lower-priority master.
    pub preempt: bool,
    /// How long a backup waits before preempting (0 = at once).
    pub preempt_delay: Duration,
    /// Virtual addresses, all of one family, at least one, no duplicates.
    pub vips: Vec<Vip>,
    /// Unicast peers of the same family as the VIPs; empty means multicast.
    pub unicast_peers: Vec<IpAddr>,
    /// VRRPv3-over-IPv4 checksum mode (meaningless for v2 and IPv6; default pseudo-header).
    pub v3_ipv4_checksum: V3Ipv4Checksum,
    /// VRRPv2 simple-text password (1..=8 bytes); always `None` for v3.
    pub auth_pass: Option<String>,
    /// Hook commands run on state changes.
    pub hooks: Hooks,
    /// How long a hook may run before its process group is terminated.
    pub hook_timeout: Duration,
    /// Gratuitous ARP / unsolicited NA schedule.
    pub announce: AnnounceConfig,
    /// Advert source address; `None` = the interface's primary address (IPv4) or its
    /// link-local address (IPv6).
    pub source_address: Option<IpAddr>,
    /// Kernel lifetime of the VIPs while held (refreshed from the loop); zero = permanent.
    pub vip_lease: Duration,
    /// Virtual-MAC mode: the macvlan interface (on `interface`, carrying the virtual MAC)
    /// that holds the VIPs; `None` = the VIPs go on `interface` with its own MAC.
    pub vmac_interface: Option<String>,
    /// FAULT while this node's partition lacks cluster quorum (only with a `[cluster]`).
    pub quorum_gated: bool,
    /// `[[track]]` names whose results change the effective priority (or put it in FAULT).
    pub track: Vec<String>,
}

impl VrrpConfig {
    /// Address family of the instance (the family of its VIPs).
    pub fn family(&self) -> Family {
        match self.vips.first() {
            Some(vip) if vip.addr.is_ipv6() => Family::V6,
            _ => Family::V4,
        }
    }

    /// The interface the VIPs live on: the virtual-MAC interface in that mode, else
    /// `interface`.
    pub fn vip_interface(&self) -> &str {
        self.vmac_interface.as_deref().unwrap_or(&self.interface)
    }

    /// The advertisement interval in centiseconds, whatever the version (a v2 interval of 1 s
    /// gives 100). The v3 wire field carries this value; the v2 field carries it divided by 100.
    pub fn advert_interval_cs(&self) -> u16 {
        u16::try_from(self.advert_interval.as_millis() / 10).unwrap_or(u16::MAX)
    }
}

/// IP address family of an instance (the wire layer's type).
pub use crate::wire::vrrp::IpFamily as Family;

/// A virtual IP with the prefix length it is added with; displays as `addr/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vip {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length, 1..=32 (IPv4) or 1..=128 (IPv6).
    pub prefix_len: u8,
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Vip {
    type Err = String;

    /// Parses `addr/len` or a bare `addr` (which gets /32 or /128).
    fn from_str(text: &str) -> Result<Self, String> {
        let (addr_text, len_text) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| format!("\"{addr_text}\" is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let Some(len_text) = len_text else {
            return Ok(Vip {
                addr,
                prefix_len: max,
            });
        };
        match len_text.parse::<u8>() {
            Ok(prefix_len) if (1..=max).contains(&prefix_len) && !len_text.starts_with('+') => {
                Ok(Vip { addr, prefix_len })
            }
            _ => Err(format!(
                "prefix length \"/{len_text}\" must be between 1 and {max}"
            )),
        }
    }
}

/// Hook commands (argv: absolute program path, then arguments) per state change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// Run after becoming master.
    pub master: Option<Vec<String>>,
    /// Run after becoming backup.
    pub backup: Option<Vec<String>>,
    /// Run after entering fault (interface down, ...).
    pub fault: Option<Vec<String>>,
    /// Run when the instance stops (daemon shutdown or config removal).
    pub stop: Option<Vec<String>>,
}

/// Gratuitous ARP / unsolicited neighbour advertisement schedule after becoming master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceConfig {
    /// Packets per VIP in each burst (1..=100).
    pub repeat: u32,
    /// Spacing between packets inside a burst.
    pub interval: Duration,
    /// Delay of the second burst after becoming master; zero means no second burst.
    pub delay: Duration,
    /// Period of re-announcements while master; `None` means off.
    pub refresh: Option<Duration>,
}

impl Default for AnnounceConfig {
    fn default() -> Self {
        AnnounceConfig {
            repeat: 3,
            // Tight, like keepalived's back-to-back GARPs: when two routers claim MASTER at
            // once (Skew_Time is 0 at 10 ms adverts), the loser's GARP can land after ours,
            // and our next one is what brings the clients back.
            interval: Duration::from_millis(1),
            delay: Duration::from_secs(5),
            refresh: None,
        }
    }
}

/// `[cluster]`: heartbeat membership and quorum, and the `[[cluster.node]]` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Cluster id, 1..=255, carried in every heartbeat.
    pub id: u8,
    /// UDP port of the heartbeat; default 694.
    pub port: u16,
    /// Heartbeat interval per link.
    pub keepalive: Duration,
    /// A link silent this long is late (warned).
    pub warntime: Duration,
    /// A link silent this long is down; a peer with every link down is dead.
    pub deadtime: Duration,
    /// `deadtime` for peers never heard since start.
    pub initdead: Duration,
    /// The heartbeat keys read from `auth_key_file`; the first signs.
    pub auth_keys: AuthKeys,
    /// What groups do when this node's partition loses quorum.
    pub quorum_policy: QuorumPolicyConfig,
    /// Tiebreaker addresses for a two-node cluster; empty when none.
    pub ping_nodes: Vec<IpAddr>,
    /// Two nodes without ping nodes: keep quorum alone (explicit opt-in).
    pub two_node: bool,
    /// `[[cluster.node]]` in file order; node id = index + 1, so the order is the same on
    /// every node.
    pub nodes: Vec<ClusterNode>,
    /// Index of this node (`[node] name`) in `nodes`.
    pub me: usize,
    /// Commands run on cluster events.
    pub hooks: ClusterHooks,
    /// How long a cluster hook may run before it is killed.
    pub hook_timeout: Duration,
}

/// `[cluster] hooks`: a command per cluster event (see relevo-hooks(7)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterHooks {
    /// A peer was declared dead (deadtime, or it restarted), with `RELEVO_PEER`.
    pub node_dead: Option<Vec<String>>,
    /// This node lost quorum.
    pub quorum_lost: Option<Vec<String>>,
    /// This node has quorum again.
    pub quorum_regained: Option<Vec<String>>,
    /// A fence of a lost peer starts.
    pub fencing: Option<Vec<String>>,
    /// A fence was confirmed.
    pub fenced: Option<Vec<String>>,
    /// A fence failed (it is retried).
    pub fence_failed: Option<Vec<String>>,
}

impl ClusterConfig {
    /// The heartbeat node id of `nodes[index]`: its 1-based position.
    pub fn node_id(index: usize) -> u8 {
        u8::try_from(index + 1).unwrap_or(u8::MAX)
    }

    /// This node's heartbeat id.
    pub fn my_id(&self) -> u8 {
        Self::node_id(self.me)
    }

    /// Heartbeat links per node (every node lists the same number).
    pub fn links(&self) -> usize {
        self.nodes.first().map_or(0, |node| node.links.len())
    }
}

/// One `[[cluster.node]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// The node's name (its `[node] name`).
    pub name: String,
    /// One address per heartbeat link, in the same link order on every node.
    pub links: Vec<IpAddr>,
    /// The `[[fence]]` device that powers this node off; `None` for `fence = "none"` (or no
    /// `fence` key, which `relevo check` warns about).
    pub fence: Option<String>,
    /// How long this node waits before it fences a peer (the two-node fence race: the
    /// preferred node waits less); 0..=60 s, default 0.
    pub fence_delay: Duration,
}

impl Config {
    /// The `[[fence]]` device named `name`.
    pub fn fence_device(&self, name: &str) -> Option<&FenceDevice> {
        self.fence_devices.iter().find(|device| device.name == name)
    }
}

/// One `[[fence]]` device: how to power a node off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceDevice {
    /// Unique among `[[fence]]` devices; `[[cluster.node]] fence` refers to it.
    pub name: String,
    /// IPMI over LAN, or a fence agent command.
    pub kind: FenceKind,
    /// What fencing does: power off (default) or power cycle.
    pub action: FenceAction,
    /// Bound of one fencing operation (session, command, confirmation), 1 s..=10 min.
    pub timeout: Duration,
}

/// `type` of a `[[fence]]` device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceKind {
    /// `type = "ipmi"`: IPMI 2.0 over LAN (RMCP+, "lanplus").
    Ipmi(IpmiFence),
    /// `type = "command"`: a fence agent such as `fence_ipmilan`.
    Command(CommandFence),
}

/// The BMC of an `ipmi` device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpmiFence {
    /// IP address or host name of the BMC.
    pub host: String,
    /// UDP port; default 623.
    pub port: u16,
    /// BMC user name.
    pub username: String,
    /// The password read from `password_file` (one trailing newline stripped).
    pub password: Secret,
    /// Session privilege level the session is raised to.
    pub privilege: IpmiPrivilege,
}

/// A `command` device: argv of a fence agent and the options it reads on stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFence {
    /// argv: an absolute program path, then arguments.
    pub command: Vec<String>,
    /// `options` as (key, value) sorted by key, written to the agent's stdin as `key=value`
    /// lines, followed by `action=...`.
    pub options: Vec<(String, String)>,
}

/// `action` of a `[[fence]]` device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FenceAction {
    /// Power off and confirm it (the default).
    #[default]
    Off,
    /// Power cycle.
    Reboot,
}

impl FenceAction {
    /// "off" or "reboot", as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            FenceAction::Off => "off",
            FenceAction::Reboot => "reboot",
        }
    }
}

/// IPMI session privilege level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpmiPrivilege {
    /// OPERATOR (3): may control chassis power.
    Operator,
    /// ADMINISTRATOR (4), the default.
    #[default]
    Administrator,
}

impl IpmiPrivilege {
    /// The level as sent in Set Session Privilege Level.
    pub fn level(self) -> u8 {
        match self {
            IpmiPrivilege::Operator => 3,
            IpmiPrivilege::Administrator => 4,
        }
    }
}

/// A secret (a BMC password): `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps the secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// `quorum_policy`: what groups do when quorum is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuorumPolicyConfig {
    /// Release every group (the default).
    #[default]
    Stop,
    /// Keep what is held, acquire nothing.
    Freeze,
    /// Behave as if quorate.
    Ignore,
}

/// The heartbeat keys of `auth_key_file` as (key id, secret), the signing key first; one or two
/// keys with distinct ids 1..=255 and secrets of at least 16 bytes. `Debug` shows the ids only.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKeys(Vec<(u8, Vec<u8>)>);

impl AuthKeys {
    /// Keys as (id, secret), the signing key first. Not checked here: the config reader checks
    /// what it reads, and [`AuthKeys::key_ring`] refuses what a key ring cannot hold.
    pub fn new(keys: Vec<(u8, Vec<u8>)>) -> Self {
        AuthKeys(keys)
    }

    /// The keys as (id, secret), the signing key first.
    pub fn keys(&self) -> &[(u8, Vec<u8>)] {
        &self.0
    }

    /// The key ring the heartbeat signs and verifies with.
    pub fn key_ring(&self) -> Result<KeyRing, KeyError> {
        let keys = self
            .0
            .iter()
            .map(|(id, secret)| HeartbeatKey::new(*id, secret))
            .collect::<Result<Vec<_>, _>>()?;
        KeyRing::new(keys)
    }
}

impl fmt::Debug for AuthKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<u8> = self.0.iter().map(|(id, _)| *id).collect();
        f.debug_struct("AuthKeys")
            .field("ids", &ids)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

/// One `[[group]]`: VIPs and resources that run on one node of the cluster at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// Unique among groups and `[[vrrp]]` instances.
    pub name: String,
    /// `[[cluster.node]]` names in order of preference.
    pub nodes: Vec<String>,
    /// Whether the group moves back to a more preferred node when it returns.
    pub auto_failback: bool,
    /// Addresses added (in this order) before the resources start.
    pub vips: Vec<GroupVip>,
    /// Failed starts after which this node gives the group up, 1..=10.
    pub max_start_failures: u32,
    /// Wait of continuous ownership before acquiring; `None` = the engine's safe default
    /// (`deadtime` plus this group's resource timeouts, without fencing).
    pub takeover_delay: Option<Duration>,
    /// `[[group.resource]]` in start order: descending priority, ties in file order.
    pub resources: Vec<ResourceConfig>,
    /// `[[track]]` names: while any of them fails this node may not hold the group.
    pub track: Vec<String>,
}

/// One `[[track]]`: a check whose result changes the priority of the instances that name it
/// (or the eligibility of the groups that do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackConfig {
    /// Unique among tracks.
    pub name: String,
    /// What is checked.
    pub check: TrackCheck,
    /// Time between two checks (scripts and files).
    pub interval: Duration,
    /// How long a script may run before its process group is terminated (a failure).
    pub timeout: Duration,
    /// Consecutive successes that bring a failed script back up, 1..=100.
    pub rise: u32,
    /// Consecutive failures that take a script down, 1..=100.
    pub fall: u32,
    /// -254..=254; 0 = a failure puts the instance in FAULT. Scripts and interfaces default
    /// to 0, files to 1 (the file's integer itself is the priority delta).
    pub weight: i32,
}

/// The check of a `[[track]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackCheck {
    /// A program (argv, absolute path, no shell): exit 0 is success.
    Script(Vec<String>),
    /// An interface: up (administratively and with carrier) is success.
    Interface(String),
    /// A file holding an integer: the priority delta is that integer times the weight.
    File(std::path::PathBuf),
}

impl TrackCheck {
    /// "script", "interface" or "file".
    pub fn kind(&self) -> &'static str {
        match self {
            TrackCheck::Script(_) => "script",
            TrackCheck::Interface(_) => "interface",
            TrackCheck::File(_) => "file",
        }
    }
}

/// A VIP of a group and the interface it is added to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupVip {
    pub vip: Vip,
    pub interface: String,
}

/// One `[[group.resource]]`: commands that start and stop one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceConfig {
    /// Unique within the group.
    pub name: String,
    /// 0..=1000; higher starts first, stops last.
    pub priority: u32,
    /// argv of the start command (absolute program path).
    pub start: Vec<String>,
    /// argv of the stop command (absolute program path).
    pub stop: Vec<String>,
    /// How long start or stop may run before its process group is terminated.
    pub timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vip_parses_and_displays() {
        let vip: Vip = "192.0.2.1/24".parse().unwrap();
        assert_eq!(vip.to_string(), "192.0.2.1/24");
        assert_eq!("192.0.2.1".parse::<Vip>().unwrap().prefix_len, 32);
        assert_eq!(
            "2001:db8::1".parse::<Vip>().unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!("2001:db8::1/64".parse::<Vip>().unwrap().prefix_len, 64);
    }

    #[test]
    fn vip_refuses_bad_text() {
        for bad in [
            "",
            "/24",
            "192.0.2.1/",
            "192.0.2.1/0",
            "192.0.2.1/33",
            "192.0.2.1/+8",
            "2001:db8::1/129",
            "x/8",
            "192.0.2.1/24/1",
            "192.0.2.1/ 24",
        ] {
            assert!(bad.parse::<Vip>().is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            "192.0.2.1/33".parse::<Vip>().unwrap_err(),
            "prefix length \"/33\" must be between 1 and 32"
        );
    }

    #[test]
    fn centiseconds() {
        let mut config = sample();
        assert_eq!(config.advert_interval_cs(), 100);
        config.advert_interval = Duration::from_millis(40_950);
        assert_eq!(config.advert_interval_cs(), 4095);
        config.advert_interval = Duration::from_millis(10);
        assert_eq!(config.advert_interval_cs(), 1);
    }

    #[test]
    fn family_follows_the_vips() {
        let mut config = sample();
        assert_eq!(config.family(), Family::V4);
        config.vips = vec!["2001:db8::1".parse().unwrap()];
        assert_eq!(config.family(), Family::V6);
        assert_eq!(Family::V6.to_string(), "IPv6");
    }

    fn sample() -> VrrpConfig {
        VrrpConfig {
            name: "a".into(),
            interface: "eth0".into(),
            vrid: 1,
            priority: 100,
            version: VrrpVersion::V3,
            advert_interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            vips: vec!["192.0.2.1/24".parse().unwrap()],
            unicast_peers: vec![],
            v3_ipv4_checksum: V3Ipv4Checksum::PseudoHeader,
            auth_pass: None,
            hooks: Hooks::default(),
            hook_timeout: Duration::from_secs(30),
            announce: AnnounceConfig::default(),
            source_address: None,
            vip_lease: Duration::from_secs(5),
            vmac_interface: None,
            quorum_gated: false,
            track: vec![],
        }
    }
}
