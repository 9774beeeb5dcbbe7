//! Cluster mode at run time: the heartbeat links (send every keepalive and on every group
//! change, receive with a per-turn budget, authenticate, drop and count what is foreign, replayed
//! or spoofed), the membership and quorum engine they feed, and the resource groups whose
//! actions become VIP-table requests, announcements and resource hooks. The protocol decisions
//! are the engine's (`engine::membership`, `engine::group`); this module only moves bytes and
//! results between them and the OS.
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use mio::Token;
use tracing::{info, warn};

use super::events;
use super::heartbeat_socket::HeartbeatSocket;
use super::hooks::{HookDone, HookOutcome};
use super::ping::Pinger;
use super::timer::TimerOwner;
use super::vip::VipOwner;
use super::Daemon;
use crate::config::{ClusterConfig, FenceDevice, GroupConfig, QuorumPolicyConfig};
use crate::engine::fencing::{FenceAction, FenceParams, Fencer};
use crate::engine::group::{
    Action, ClusterView, Group, GroupParams, GroupState, QuorumPolicy, Reason,
};
use crate::engine::hook_queue::HookRequest;
use crate::engine::membership::{Event, Heard, LinkHealth, Membership, Params};
use crate::fence::FenceOp;
use crate::wire::heartbeat::{
    group_wire_id, GroupState as WireGroup, HeartbeatDrop, HeartbeatRepr, HeartbeatView, KeyRing,
    PeerView, ReplayWindow, MAX_FRAME_LEN, MAX_PEERS,
};

/// Heartbeats read from one link socket per loop turn.
const RECV_BUDGET: usize = 64;
/// Least interval between two rounds of pings to the ping nodes.
const MIN_PING_INTERVAL: Duration = Duration::from_millis(10);
/// Token offset (from the heartbeat base) of the first ping socket (the ICMPv6 one, if both
/// families are pinged, is the next): after every link's.
pub const PING_TOKEN_OFFSET: usize = 255;

/// First wait before a failed fence is tried again (doubling up to [`FENCE_RETRY_MAX`]).
const FENCE_RETRY_MIN: Duration = Duration::from_secs(1);
const FENCE_RETRY_MAX: Duration = Duration::from_secs(30);

/// Hook owners of groups start here (VRRP instances use their index).
pub const GROUP_HOOK_OWNER_BASE: usize = 1 << 16;
/// Hook owner of the cluster's quorum events; `node-dead` of peer `p` uses this + `p` (each
/// peer's events in order, apart from the others'). Above every group's owner.
pub const CLUSTER_HOOK_OWNER_BASE: usize = 1 << 17;

/// One group at run time.
pub struct GroupRt {
    pub cfg: GroupConfig,
    /// Its id on the wire: a 16-bit hash of its name (the same on every node).
    pub wire_id: u16,
    pub engine: Group,
    pub last_reason: Option<Reason>,
    /// One of the group's `[[track]]`s fails: this node may not hold it.
    pub track_failed: bool,
    /// The operator holds this node out of the group (standby, maintenance, switchover).
    pub held_out: bool,
}

/// Cluster mode's state. See the module documentation.
pub struct ClusterRt {
    pub cfg: ClusterConfig,
    /// This node's id (1-based position in `[[cluster.node]]`).
    pub me: u8,
    keys: KeyRing,
    incarnation: u64,
    sequence: u64,
    group_epoch: u64,
    pub membership: Membership,
    sockets: Vec<HeartbeatSocket>,
    /// Two-node clusters with ping nodes.
    pinger: Option<Pinger>,
    next_ping: Instant,
    /// Ping reachability as last told to the membership.
    ping_reachable: bool,
    /// Replay windows per (sender, link), at `(node id - 1) * links + link`.
    replay: Vec<ReplayWindow>,
    /// The peer entries of the frame being handled (reused: no allocation per frame).
    rx_peers: Vec<PeerView>,
    /// A peer's reported group states changed since the groups last decided.
    groups_dirty: bool,
    /// Peers that said goodbye and have not come back.
    left: std::collections::BTreeSet<u8>,
    /// What each peer last reported for each group (by wire id).
    peer_groups: BTreeMap<u8, BTreeMap<u16, GroupState>>,
    pub groups: Vec<GroupRt>,
    pub drops: BTreeMap<&'static str, u64>,
    pub sent: u64,
    pub received: u64,
    /// Shutting down: groups release, then a goodbye.
    stopping: bool,
    /// The goodbye heartbeat went out.
    said_goodbye: bool,
    /// Quorum as last told to the `quorum-lost` / `quorum-regained` hooks.
    hooks_quorate: bool,
    /// Which lost peers must be fenced before their groups are taken over.
    pub fencer: Fencer,
    /// The last failure of each peer's fence, for `fence-failed` and the status.
    pub fence_errors: BTreeMap<u8, String>,
    /// The `[[fence]]` devices.
    devices: Vec<FenceDevice>,
    tx: Vec<u8>,
    rx: Vec<u8>,
}

impl ClusterRt {
    /// Opens the link sockets; fails when a link address cannot be bound.
    pub fn new(
        cfg: &ClusterConfig,
        groups: &[GroupConfig],
        devices: &[FenceDevice],
        now: Instant,
    ) -> anyhow::Result<Self> {
        let me = cfg.my_id();
        let keys = cfg
            .auth_keys
            .key_ring()
            .map_err(|e| anyhow::anyhow!("auth keys: {e}"))?;
        let own_links = &cfg.nodes[cfg.me].links;
        let mut sockets = Vec::new();
        for (link, address) in own_links.iter().enumerate() {
            let socket = HeartbeatSocket::bind(*address, cfg.port).with_context(|| {
                format!(
                    "binding heartbeat link {link} to {address} port {}",
                    cfg.port
                )
            })?;
            sockets.push(socket);
        }
        let params = Params {
            me,
            nodes: (1..=cfg.nodes.len() as u8).collect(),
            links: own_links.len(),
            keepalive: cfg.keepalive,
            warntime: cfg.warntime,
            deadtime: cfg.deadtime,
            initdead: cfg.initdead,
            // Two nodes that can fence each other keep quorum alone: the fence race (each
            // node's fence_delay) decides which one survives a cut.
            two_node: cfg.two_node
                || (cfg.nodes.len() == 2 && cfg.nodes.iter().all(|n| n.fence.is_some())),
            ping_nodes: !cfg.ping_nodes.is_empty(),
        };
        let mut ids = BTreeMap::new();
        let mut group_rts = Vec::new();
        for group in groups {
            let wire_id = group_wire_id(&group.name);
            if let Some(other) = ids.insert(wire_id, group.name.clone()) {
                anyhow::bail!(
                    "groups \"{other}\" and \"{}\" have the same wire id {wire_id}: rename one",
                    group.name
                );
            }
            group_rts.push(GroupRt::new(group, cfg));
        }
        let pinger = if cfg.nodes.len() == 2 && !cfg.ping_nodes.is_empty() {
            Some(
                Pinger::open(&cfg.ping_nodes, cfg.deadtime)
                    .context("opening the ICMP sockets for ping_nodes")?,
            )
        } else {
            None
        };
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let incarnation = (wall.as_micros() as u64).max(1);
        let membership = Membership::new(params, now);
        Ok(ClusterRt {
            cfg: cfg.clone(),
            me,
            keys,
            incarnation,
            sequence: 0,
            group_epoch: 0,
            membership,
            sockets,
            pinger,
            next_ping: now,
            ping_reachable: false,
            replay: vec![ReplayWindow::default(); cfg.nodes.len() * own_links.len()],
            rx_peers: Vec::with_capacity(MAX_PEERS),
            peer_groups: BTreeMap::new(),
            left: std::collections::BTreeSet::new(),
            groups_dirty: false,
            groups: group_rts,
            drops: BTreeMap::new(),
            sent: 0,
            received: 0,
            stopping: false,
            hooks_quorate: false,
            fence_errors: BTreeMap::new(),
            devices: devices.to_vec(),
            fencer: Fencer::new(FenceParams {
                delay: cfg.nodes[cfg.me].fence_delay,
                retry_min: FENCE_RETRY_MIN,
                retry_max: FENCE_RETRY_MAX,
            }),
            said_goodbye: false,
            tx: vec![0; MAX_FRAME_LEN],
            rx: vec![0; MAX_FRAME_LEN + 64],
        })
    }

    pub fn socket_fds(&self) -> Vec<std::os::fd::RawFd> {
        self.sockets.iter().map(|s| s.raw_fd()).collect()
    }

    /// The ping sockets (ICMPv4, ICMPv6: those the ping nodes need), none without a pinger.
    pub fn ping_fds(&self) -> Vec<std::os::fd::RawFd> {
        self.pinger
            .as_ref()
            .map(|p| p.raw_fds())
            .unwrap_or_default()
    }

    /// Pings the ping nodes when due and tells the membership when reachability changed.
    fn ping_turn(&mut self, now: Instant, events: &mut Vec<Event>) {
        let Some(pinger) = self.pinger.as_mut() else {
            return;
        };
        if now >= self.next_ping {
            pinger.send();
            self.next_ping = now + self.cfg.keepalive.max(MIN_PING_INTERVAL);
        }
        let reachable = pinger.reachable(now);
        if reachable != self.ping_reachable {
            self.ping_reachable = reachable;
            let state = if reachable {
                "answers"
            } else {
                "does not answer"
            };
            info!("a ping node {state}");
            self.membership.ping_reachable(reachable, now, events);
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.drops.entry(what).or_default() += 1;
    }

    /// Sends one heartbeat to every peer on every link.
    fn send_heartbeats(&mut self, now: Instant, leaving: bool) {
        self.sequence += 1;
        let repr = HeartbeatRepr {
            cluster_id: self.cfg.id,
            node_id: self.me,
            incarnation: self.incarnation,
            sequence: self.sequence,
            group_epoch: self.group_epoch,
            leaving,
            peers: self.membership.view(now),
            groups: self
                .groups
                .iter()
                .map(|g| WireGroup {
                    group_id: g.wire_id,
                    state: g.engine.reported_state(),
                })
                .collect(),
        };
        let len = match repr.emit(self.keys.sign_key(), &mut self.tx) {
            Ok(len) => len,
            Err(e) => {
                warn!("building a heartbeat failed: {e}");
                return;
            }
        };
        for (link, socket) in self.sockets.iter().enumerate() {
            for (index, node) in self.cfg.nodes.iter().enumerate() {
                if index == self.cfg.me {
                    continue;
                }
                let Some(address) = node.links.get(link) else {
                    continue;
                };
                let to = SocketAddr::new(*address, self.cfg.port);
                match socket.send(&self.tx[..len], to) {
                    Ok(()) => self.sent += 1,
                    Err(_) => *self.drops.entry("send_failed").or_default() += 1,
                }
            }
        }
    }

    /// Reads link `link` (a bounded batch); returns whether datagrams may remain.
    fn read_link(&mut self, link: usize, now: Instant, events: &mut Vec<Event>) -> bool {
        for _ in 0..RECV_BUDGET {
            let Some(socket) = self.sockets.get(link) else {
                return false;
            };
            let (len, from) = match socket.recv(&mut self.rx) {
                Ok(Some(got)) => got,
                Ok(None) => return false,
                Err(e) => {
                    warn!("receiving on heartbeat link {link} failed: {e}");
                    return false;
                }
            };
            self.on_frame(link, len, from.ip(), now, events);
        }
        true
    }

    fn on_frame(
        &mut self,
        link: usize,
        len: usize,
        from: IpAddr,
        now: Instant,
        events: &mut Vec<Event>,
    ) {
        // Borrowed from the receive buffer: nothing is allocated per frame.
        let frame = &self.rx[..len.min(self.rx.len())];
        let repr = match HeartbeatView::parse(frame, &self.keys) {
            Ok(repr) => repr,
            Err(drop) => return self.count(drop.as_str()),
        };
        if repr.cluster_id() != self.cfg.id {
            return self.count(HeartbeatDrop::WrongCluster.as_str());
        }
        let node = repr.node_id();
        let expected = usize::from(node)
            .checked_sub(1)
            .and_then(|i| self.cfg.nodes.get(i))
            .and_then(|n| n.links.get(link));
        if node == self.me || expected != Some(&from) {
            return self.count(HeartbeatDrop::UnknownNode.as_str());
        }
        // One window per (sender, link): ids and links were just checked against the config.
        let slot = (usize::from(node) - 1) * self.sockets.len() + link;
        let Some(window) = self.replay.get_mut(slot) else {
            return self.count(HeartbeatDrop::UnknownNode.as_str());
        };
        if window.accept(repr.incarnation(), repr.sequence()).is_err() {
            return self.count(HeartbeatDrop::Replay.as_str());
        }
        if !self.fencer.accepts(node, repr.incarnation()) {
            // The life that was lost and fenced (or is being fenced) never speaks again.
            return self.count("fenced_incarnation");
        }
        self.received += 1;
        self.rx_peers.clear();
        self.rx_peers.extend(repr.peers());
        let heard = Heard {
            from: node,
            link,
            incarnation: repr.incarnation(),
            leaving: repr.leaving(),
            view: &self.rx_peers,
        };
        self.membership.heard(&heard, now, events);
        let known = self.peer_groups.entry(node).or_default();
        let unchanged = known.len() == repr.groups().len()
            && repr
                .groups()
                .all(|g| known.get(&g.group_id) == Some(&g.state));
        if !unchanged {
            *known = repr.groups().map(|g| (g.group_id, g.state)).collect();
            self.groups_dirty = true;
        }
    }

    /// The `node-dead` hook for `peer` (declared dead for reason `why`), if configured.
    fn node_dead_hook(&self, peer: u8, why: &str, me: &str) -> Option<HookRequest> {
        let argv = self.cfg.hooks.node_dead.clone()?;
        let mut env = self.hook_env("node-dead", me);
        env.push(("RELEVO_PEER".to_string(), node_name(&self.cfg, peer)));
        env.push(("RELEVO_REASON".to_string(), why.to_string()));
        Some(HookRequest::new(
            CLUSTER_HOOK_OWNER_BASE + usize::from(peer),
            "node-dead",
            argv,
            env,
            self.cfg.hook_timeout,
        ))
    }

    /// The `quorum-lost` or `quorum-regained` hook for the quorum just reached, if configured
    /// (a first quorum after start is neither: `hooks_quorate` starts false and a lost quorum
    /// is reported only after it was had).
    fn quorum_hook(&self, me: &str) -> Option<HookRequest> {
        let quorate = self.hooks_quorate;
        let (event, argv, state, prev) = if quorate {
            (
                "quorum-regained",
                &self.cfg.hooks.quorum_regained,
                "quorate",
                "not-quorate",
            )
        } else {
            (
                "quorum-lost",
                &self.cfg.hooks.quorum_lost,
                "not-quorate",
                "quorate",
            )
        };
        let argv = argv.clone()?;
        let partition = self.membership.partition();
        let names: Vec<String> = partition.iter().map(|&n| node_name(&self.cfg, n)).collect();
        let mut env = self.hook_env(event, me);
        env.extend([
            ("RELEVO_STATE".to_string(), state.to_string()),
            ("RELEVO_PREV_STATE".to_string(), prev.to_string()),
            ("RELEVO_VOTES".to_string(), partition.len().to_string()),
            (
                "RELEVO_VOTES_NEEDED".to_string(),
                self.membership.params().votes_needed().to_string(),
            ),
            ("RELEVO_PARTITION".to_string(), names.join(" ")),
        ]);
        Some(HookRequest::new(
            CLUSTER_HOOK_OWNER_BASE,
            event,
            argv,
            env,
            self.cfg.hook_timeout,
        ))
    }

    /// The hook of a fence event (`fencing`, `fenced`, `fence-failed`) for `peer`.
    fn fence_hook(
        &self,
        event: &str,
        peer: u8,
        device: &str,
        reason: &str,
        me: &str,
    ) -> Option<HookRequest> {
        let argv = match event {
            "fencing" => &self.cfg.hooks.fencing,
            "fenced" => &self.cfg.hooks.fenced,
            _ => &self.cfg.hooks.fence_failed,
        }
        .clone()?;
        let mut env = self.hook_env(event, me);
        env.extend([
            ("RELEVO_PEER".to_string(), node_name(&self.cfg, peer)),
            ("RELEVO_FENCE_DEVICE".to_string(), device.to_string()),
            (
                "RELEVO_FENCE_ACTION".to_string(),
                self.fence_action_of(peer),
            ),
            ("RELEVO_REASON".to_string(), reason.to_string()),
        ]);
        // The node-dead hooks of that peer use the same owner: in order with them.
        let owner = CLUSTER_HOOK_OWNER_BASE + usize::from(peer);
        Some(HookRequest::new(
            owner,
            event,
            argv,
            env,
            self.cfg.hook_timeout,
        ))
    }

    /// The environment every cluster hook gets.
    fn hook_env(&self, event: &str, me: &str) -> Vec<(String, String)> {
        vec![
            ("RELEVO_EVENT".to_string(), event.to_string()),
            ("RELEVO_NAME".to_string(), "cluster".to_string()),
            ("RELEVO_NODE".to_string(), me.to_string()),
            ("RELEVO_CLUSTER_ID".to_string(), self.cfg.id.to_string()),
        ]
    }

    /// The longest a graceful stop may need for the groups: the stop commands of the group
    /// with the most stopping to do, each with its timeout and the kill grace.
    pub fn release_budget(&self) -> Duration {
        self.groups
            .iter()
            .map(|g| {
                g.cfg
                    .resources
                    .iter()
                    .map(|r| r.timeout + super::hooks::TERM_GRACE)
                    .sum::<Duration>()
            })
            .max()
            .unwrap_or_default()
    }

    /// The node that holds group `g` (held or acquiring), as far as this node knows.
    pub fn holder_of(&self, g: usize) -> Option<u8> {
        let group = &self.groups[g];
        if matches!(
            group.engine.state(),
            GroupState::Held | GroupState::Acquiring
        ) {
            return Some(self.me);
        }
        self.peer_groups.iter().find_map(|(&node, states)| {
            let holds = states
                .get(&group.wire_id)
                .is_some_and(|s| matches!(s, GroupState::Held | GroupState::Acquiring));
            (holds && self.membership.is_alive(node)).then_some(node)
        })
    }

    /// What group `g` decides from, and whether this node may hold it (not stopping, not held
    /// out by the operator, its VIP interfaces up, none of its tracks failing).
    fn decision_inputs(
        &self,
        g: usize,
        interfaces: &super::interfaces::Interfaces,
    ) -> (ViewInputs, bool) {
        let group = &self.groups[g];
        let eligible = !self.stopping
            && !group.held_out
            && group.interfaces_up(interfaces)
            && !group.track_failed;
        (self.view_inputs(g), eligible)
    }

    /// What group `g` decides from: the partition, the peers heard directly, the group's state
    /// as each of them last reported it, and quorum.
    fn view_inputs(&self, g: usize) -> ViewInputs {
        let wire_id = self.groups[g].wire_id;
        let members = self.membership.partition().to_vec();
        let heard: Vec<u8> = (1..=self.cfg.nodes.len() as u8)
            .filter(|&n| n != self.me && self.membership.is_alive(n))
            .collect();
        let states = heard
            .iter()
            .filter_map(|n| {
                self.peer_groups
                    .get(n)
                    .and_then(|m| m.get(&wire_id))
                    .map(|s| (*n, *s))
            })
            .collect();
        let lost = self.lost_holders(g);
        ViewInputs {
            members,
            heard,
            left: self.left.iter().copied().collect(),
            states,
            quorate: self.membership.lease_valid(),
            fence_pending: self.fencer.pending_for(&lost),
            fenced: self.fencer.fenced(),
        }
    }

    /// The holder of `group` (see [`ClusterRt::holder_of`]).
    pub fn owner_of(&self, group: &GroupRt) -> Option<u8> {
        let g = self
            .groups
            .iter()
            .position(|x| x.cfg.name == group.cfg.name)?;
        self.holder_of(g)
    }

    /// The node `group` goes to when this node lets it go: the first node of its list, after
    /// this one, that is alive and has not reported it cannot hold it.
    pub fn next_owner(&self, group: &GroupRt) -> Option<String> {
        group
            .cfg
            .nodes
            .iter()
            .filter_map(|name| {
                let id = self.cfg.nodes.iter().position(|n| n.name == *name)? + 1;
                u8::try_from(id).ok().map(|id| (name, id))
            })
            .filter(|&(_, id)| id != self.me && self.membership.is_alive(id))
            .find(|&(_, id)| {
                self.peer_groups
                    .get(&id)
                    .and_then(|m| m.get(&group.wire_id))
                    .is_none_or(|s| *s != GroupState::Failed)
            })
            .map(|(name, _)| name.clone())
    }

    /// Whether a fence of a lost peer is under way or failed (nothing is acquired from it).
    pub fn fence_pending(&self) -> bool {
        (0..self.groups.len()).any(|g| self.fencer.pending_for(&self.lost_holders(g)))
    }

    /// Peers that are dead (not gone with a goodbye) and last reported group `g` busy: they may
    /// still hold it.
    fn lost_holders(&self, g: usize) -> Vec<u8> {
        let wire_id = self.groups[g].wire_id;
        self.peer_groups
            .iter()
            .filter(|(&node, _)| !self.membership.is_alive(node) && !self.left.contains(&node))
            .filter(|(_, states)| {
                states.get(&wire_id).is_some_and(|&s| {
                    matches!(
                        s,
                        GroupState::Acquiring | GroupState::Held | GroupState::Releasing
                    )
                })
            })
            .map(|(&node, _)| node)
            .collect()
    }

    /// Before the groups decide: a lost holder with a fence device must be fenced before its
    /// groups are taken over (a peer that restarted is alive, its old life gone already); a
    /// fenced peer back in the partition through a third node is a life the fence may not have
    /// covered.
    fn refresh_fencing(&mut self, now: Instant) -> Vec<FenceAction> {
        let mut actions = Vec::new();
        for &peer in self.membership.partition() {
            self.fencer.seen_in_partition(peer);
        }
        // Two nodes: the survivor of a cut fences the other whatever it held, after its own
        // fence_delay, so that of two nodes cut apart the one with the shorter delay wins.
        if self.cfg.nodes.len() == 2 {
            let peer = if self.me == 1 { 2 } else { 1 };
            let lost = !self.membership.is_alive(peer) && !self.left.contains(&peer);
            if lost && self.fencer.state(peer).is_none() && self.fence_device_of(peer).is_some() {
                if let Some(incarnation) = self.membership.incarnation(peer) {
                    warn!(
                        "cluster node {} is lost: fencing it (two-node cluster)",
                        node_name(&self.cfg, peer)
                    );
                    self.fencer.peer_lost(peer, incarnation);
                    self.fencer.take_on(peer, now, &mut actions);
                }
            }
        }
        for g in 0..self.groups.len() {
            for peer in self.lost_holders(g) {
                if self.fencer.state(peer).is_some() || self.fence_device_of(peer).is_none() {
                    continue;
                }
                if let Some(incarnation) = self.membership.incarnation(peer) {
                    warn!(
                        "cluster node {} must be fenced before its groups are taken over",
                        node_name(&self.cfg, peer)
                    );
                    self.fencer.peer_lost(peer, incarnation);
                }
            }
        }
        actions
    }

    /// The action node `peer`'s device takes (`RELEVO_FENCE_ACTION`).
    fn fence_action_of(&self, peer: u8) -> String {
        self.device_of(peer)
            .map(|d| FenceOp::from(d.action).as_str().to_string())
            .unwrap_or_default()
    }

    /// Node `peer`'s `[[fence]]` device.
    fn device_of(&self, peer: u8) -> Option<&FenceDevice> {
        let name = self.fence_device_of(peer)?;
        self.devices.iter().find(|d| d.name == name)
    }

    /// The fence device of node `peer`, if it has one.
    pub fn fence_device_of(&self, peer: u8) -> Option<&str> {
        let node = self.cfg.nodes.get(usize::from(peer).checked_sub(1)?)?;
        node.fence.as_deref()
    }
}

/// The owned parts of a [`ClusterView`].
struct ViewInputs {
    members: Vec<u8>,
    heard: Vec<u8>,
    left: Vec<u8>,
    states: Vec<(u8, GroupState)>,
    quorate: bool,
    fence_pending: bool,
    fenced: Vec<u8>,
}

impl ViewInputs {
    fn view(&self, me: u8, eligible: bool) -> ClusterView<'_> {
        ClusterView {
            me,
            quorate: self.quorate,
            members: &self.members,
            heard: &self.heard,
            left: &self.left,
            peer_states: &self.states,
            eligible,
            fence_pending: self.fence_pending,
            fenced: &self.fenced,
        }
    }
}

impl GroupRt {
    fn new(cfg: &GroupConfig, cluster: &ClusterConfig) -> Self {
        let node_ids: Vec<u8> = cfg
            .nodes
            .iter()
            .filter_map(|name| cluster.nodes.iter().position(|n| &n.name == name))
            .map(|i| i as u8 + 1)
            .collect();
        // A holder that was cut off loses its lease before the others see it dead, and then
        // runs its stop commands: each may take its timeout and the kill grace.
        let stops: Duration = cfg
            .resources
            .iter()
            .map(|r| r.timeout + super::hooks::TERM_GRACE)
            .sum();
        let params = GroupParams {
            nodes: node_ids,
            resources: cfg.resources.len(),
            auto_failback: cfg.auto_failback,
            max_start_failures: cfg.max_start_failures,
            quorum_policy: match cluster.quorum_policy {
                QuorumPolicyConfig::Stop => QuorumPolicy::Stop,
                QuorumPolicyConfig::Freeze => QuorumPolicy::Freeze,
                QuorumPolicyConfig::Ignore => QuorumPolicy::Ignore,
            },
            settle: cluster.keepalive * 2,
            // The successor acquires within a heartbeat round trip of the release; the bound
            // only matters when none does (a busy machine may take longer than the round trip).
            linger: cluster.deadtime,
            takeover_delay: cfg.takeover_delay.unwrap_or(stops),
        };
        GroupRt {
            cfg: cfg.clone(),
            wire_id: group_wire_id(&cfg.name),
            engine: Group::new(params),
            last_reason: None,
            track_failed: false,
            held_out: false,
        }
    }

    /// Whether every VIP interface of the group exists and is up here.
    fn interfaces_up(&self, interfaces: &super::interfaces::Interfaces) -> bool {
        self.cfg
            .vips
            .iter()
            .all(|v| interfaces.by_name(&v.interface).is_some_and(|i| i.link.up))
    }
}

impl Daemon {
    /// Registers the heartbeat sockets with the loop (tokens from `base`).
    pub(super) fn register_cluster(&mut self, base: usize) -> anyhow::Result<()> {
        let fds = self
            .cluster
            .as_ref()
            .map(|c| c.socket_fds())
            .unwrap_or_default();
        for (link, fd) in fds.into_iter().enumerate() {
            self.register_fd(fd, Token(base + link))?;
        }
        let ping_fds = self.cluster.as_ref().map(|c| c.ping_fds());
        for (i, fd) in ping_fds.unwrap_or_default().into_iter().enumerate() {
            self.register_fd(fd, Token(base + PING_TOKEN_OFFSET + i))?;
        }
        self.schedule_cluster();
        Ok(())
    }

    pub(super) fn schedule_cluster(&mut self) {
        let next = self.cluster.as_ref().and_then(|c| {
            let groups = c.groups.iter().filter_map(|g| g.engine.next_deadline());
            let ping = c.pinger.as_ref().map(|_| c.next_ping);
            let fence = c.fencer.next_deadline();
            c.membership
                .next_deadline()
                .into_iter()
                .chain(groups)
                .chain(ping)
                .chain(fence)
                .min()
        });
        self.deadlines.schedule(TimerOwner::Cluster, next);
    }

    /// Heartbeat link `link` (or, from [`PING_TOKEN_OFFSET`] on, a ping socket) is readable.
    pub(super) fn on_heartbeat_readable(&mut self, link: usize, now: Instant) {
        if let Some(ping_socket) = link.checked_sub(PING_TOKEN_OFFSET) {
            let more = self
                .cluster
                .as_mut()
                .and_then(|c| c.pinger.as_mut())
                .is_some_and(|p| p.read(ping_socket, now));
            if more {
                self.cluster_backlog.insert(link);
            }
            return;
        }
        let mut events = Vec::new();
        let more = match self.cluster.as_mut() {
            Some(c) => c.read_link(link, now, &mut events),
            None => return,
        };
        if more {
            self.cluster_backlog.insert(link);
        }
        self.on_membership_events(events, now);
    }

    /// Links left with a backlog at the budget are read again on the next turn.
    pub(super) fn drain_cluster_backlog(&mut self, now: Instant) {
        for link in std::mem::take(&mut self.cluster_backlog) {
            self.on_heartbeat_readable(link, now);
        }
    }

    /// The cluster timer: heartbeats due, link health, group waits.
    pub(super) fn on_cluster_timer(&mut self, now: Instant) {
        let mut events = Vec::new();
        match self.cluster.as_mut() {
            Some(c) => {
                c.membership.handle_timeout(now, &mut events);
                c.ping_turn(now, &mut events);
            }
            None => return,
        }
        let mut fence_actions = Vec::new();
        if let Some(c) = self.cluster.as_mut() {
            c.fencer.handle_timeout(now, &mut fence_actions);
        }
        if !fence_actions.is_empty() {
            self.perform_fence(fence_actions, now);
        }
        self.on_membership_events(events, now);
    }

    fn on_membership_events(&mut self, events: Vec<Event>, now: Instant) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        // Most heartbeats change nothing: no event, no group state of a peer changed.
        let quiet = events.is_empty() && !std::mem::take(&mut cluster.groups_dirty);
        if quiet
            && !cluster
                .groups
                .iter()
                .any(|g| g.engine.next_deadline().is_some())
        {
            self.schedule_cluster();
            return;
        }
        let mut send = false;
        let mut quorum_changed = false;
        let mut hooks = Vec::new();
        for event in events {
            match event {
                Event::SendHeartbeats => send = true,
                Event::LinkChanged { peer, link, health } => {
                    let name = node_name(&cluster.cfg, peer);
                    match health {
                        LinkHealth::Up => info!("heartbeat link {link} to {name} is up"),
                        LinkHealth::Late => warn!("heartbeat link {link} to {name} is late"),
                        LinkHealth::Down => warn!("heartbeat link {link} to {name} is down"),
                    }
                }
                Event::PeerAlive { peer } => {
                    send = true; // the peers learn of the new view at once
                    cluster.left.remove(&peer);
                    let name = node_name(&cluster.cfg, peer);
                    info!("cluster node {name} is alive");
                    self.events.record(
                        events::Event::new("node", Some(&name), "heartbeats heard").code("alive"),
                    );
                }
                Event::PeerDead { peer, why } => {
                    send = true;
                    if why == crate::engine::membership::PeerGone::Leaving {
                        cluster.left.insert(peer);
                    } else {
                        hooks.push(cluster.node_dead_hook(peer, why.as_str(), &self.node_name));
                    }
                    let name = node_name(&cluster.cfg, peer);
                    warn!("cluster node {name} is gone ({})", why.as_str());
                    let words = match why {
                        crate::engine::membership::PeerGone::Leaving => {
                            "said goodbye (graceful stop)".to_string()
                        }
                        _ => format!(
                            "no heartbeat for {} ({})",
                            crate::config::format_duration(cluster.membership.params().deadtime),
                            why.as_str()
                        ),
                    };
                    self.events
                        .record(events::Event::new("node", Some(&name), words).code(why.as_str()));
                }
                Event::Lease { valid } => {
                    if valid {
                        info!("quorum heard within the lease: groups may be held");
                    } else {
                        warn!(
                            "no quorum heard for {:?}: groups are released before the peers \
                             may take them over",
                            cluster.membership.params().lease()
                        );
                    }
                }
                Event::Quorum {
                    quorate,
                    votes,
                    needed,
                } => {
                    quorum_changed = true;
                    send = true;
                    let state = if quorate { "quorate" } else { "NOT quorate" };
                    info!(
                        "cluster partition {:?}: {state} ({votes} of {needed} votes needed)",
                        cluster.membership.partition()
                    );
                    let total = cluster.cfg.nodes.len();
                    let (words, code) = if quorate {
                        (
                            format!("quorum regained: {votes} of {total} nodes"),
                            "quorum-regained",
                        )
                    } else {
                        (
                            format!("quorum lost: {votes} of {total} nodes ({needed} needed)"),
                            "quorum-lost",
                        )
                    };
                    self.events
                        .record(events::Event::new("quorum", None, words).code(code));
                }
            }
        }
        if send {
            cluster.send_heartbeats(now, false);
        }
        let quorate = cluster.membership.is_quorate();
        if quorate != cluster.hooks_quorate {
            cluster.hooks_quorate = quorate;
            hooks.push(cluster.quorum_hook(&self.node_name));
        }
        let queued = !hooks.is_empty();
        for request in hooks.into_iter().flatten() {
            self.hook_queue.push(request);
        }
        if queued {
            self.pump_hooks(now);
        }
        if quorum_changed {
            self.gate_instances(quorate, now);
        }
        self.update_groups(now);
    }

    /// `quorum_gated` VRRP instances: FAULT while this node lacks quorum (fed when quorum
    /// changes; they start blocked).
    fn gate_instances(&mut self, quorate: bool, now: Instant) {
        use crate::engine::vrrp::{Blocker, Input};
        for i in 0..self.instances.len() {
            if !self.instances[i].cfg.quorum_gated {
                continue;
            }
            let input = if quorate {
                Input::CanAdvertise(Blocker::NoQuorum)
            } else {
                Input::CannotAdvertise(Blocker::NoQuorum)
            };
            self.feed(i, input, now);
        }
    }

    /// Re-decides every group and performs what the engines ask for; a group that changed
    /// state is announced to the peers at once.
    pub(super) fn update_groups(&mut self, now: Instant) {
        let Some(count) = self.cluster.as_ref().map(|c| c.groups.len()) else {
            return;
        };
        let fence_actions = self
            .cluster
            .as_mut()
            .map(|c| c.refresh_fencing(now))
            .unwrap_or_default();
        if !fence_actions.is_empty() {
            self.perform_fence(fence_actions, now);
        }
        let mut changed = false;
        for g in 0..count {
            let mut actions = Vec::new();
            let Some(cluster) = self.cluster.as_mut() else {
                return;
            };
            let (inputs, eligible) = cluster.decision_inputs(g, &self.interfaces);
            let view = inputs.view(cluster.me, eligible);
            let engine = &mut cluster.groups[g].engine;
            let reported = engine.reported_state();
            engine.update(&view, now, &mut actions);
            changed |= engine.reported_state() != reported;
            // This node is the group's next owner but for a fence: it fences.
            if engine.awaits_fence() {
                let mut fence_actions = Vec::new();
                for peer in cluster.lost_holders(g) {
                    cluster.fencer.take_on(peer, now, &mut fence_actions);
                }
                self.perform_fence(fence_actions, now);
            }
            changed |= self.perform_group(g, actions, now);
        }
        self.finish_cluster_turn(changed, now);
    }

    /// Carries out the fencer's actions: runs devices off the loop, reports, and lets the
    /// groups go on after a confirmed fence.
    pub(super) fn perform_fence(&mut self, actions: Vec<FenceAction>, now: Instant) {
        let mut confirmed = false;
        for action in actions {
            match action {
                FenceAction::Start { peer, attempt } => {
                    self.report_fence(peer, "fencing", "", now, |name, device| {
                        format!("fencing {name} with {device} (attempt {attempt})")
                    });
                    let submitted = match (&self.fence_worker, self.fence_job(peer)) {
                        (Some(worker), Some(job)) => worker.submit(job),
                        (None, _) => Err("no fence worker".to_string()),
                        (_, None) => Err("the node has no fence device".to_string()),
                    };
                    if let Err(e) = submitted {
                        self.fence_result(peer, Err(e), now);
                    }
                }
                FenceAction::Fenced { peer } => {
                    self.report_fence(peer, "fenced", "", now, |name, device| {
                        format!("{name} is fenced ({device}): its groups may be taken over")
                    });
                    confirmed = true;
                }
                FenceAction::Failed {
                    peer,
                    attempt,
                    retry_in,
                } => {
                    let reason = self
                        .cluster
                        .as_ref()
                        .and_then(|c| c.fence_errors.get(&peer).cloned())
                        .unwrap_or_default();
                    let retry = crate::config::format_duration(retry_in);
                    self.report_fence(peer, "fence-failed", &reason, now, |name, device| {
                        format!(
                            "fencing {name} with {device} failed (attempt {attempt}): {reason}; \
                             its groups stay down, next attempt in {retry}"
                        )
                    });
                }
            }
        }
        if confirmed {
            self.update_groups(now);
        } else {
            self.schedule_cluster();
        }
    }

    /// One step of `peer`'s fencing (`event`: fencing, fenced, fence-failed): the log line
    /// `words(name, device)` says, the same words as a `fence` event, and the cluster hook.
    fn report_fence(
        &mut self,
        peer: u8,
        event: &str,
        reason: &str,
        now: Instant,
        words: impl FnOnce(&str, &str) -> String,
    ) {
        let Some(cluster) = self.cluster.as_ref() else {
            return;
        };
        let name = node_name(&cluster.cfg, peer);
        let device = cluster
            .fence_device_of(peer)
            .unwrap_or_default()
            .to_string();
        let text = words(&name, &device);
        if event == "fenced" {
            info!("{text}");
        } else {
            warn!("{text}");
        }
        let hook = cluster.fence_hook(event, peer, &device, reason, &self.node_name);
        self.events
            .record(events::Event::new("fence", Some(&name), text).code(event));
        self.queue_hook(hook, now);
    }

    /// The job that fences `peer` with its device (run on the fence worker, bounded by the
    /// device's timeout).
    fn fence_job(&self, peer: u8) -> Option<super::fence_worker::FenceJob> {
        let device = self.cluster.as_ref()?.device_of(peer)?.clone();
        Some(super::fence_worker::FenceJob {
            peer,
            run: Box::new(move || {
                crate::fence::run(&device, FenceOp::from(device.action))
                    .map(|outcome| format!("{} ({})", outcome, crate::fence::describe(&device)))
                    .map_err(|e| e.to_string())
            }),
        })
    }

    /// A device finished (on the worker): the fencer decides what follows.
    pub(super) fn fence_result(&mut self, peer: u8, result: Result<String, String>, now: Instant) {
        let mut actions = Vec::new();
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        match &result {
            Ok(outcome) => {
                info!("fence of {}: {outcome}", node_name(&cluster.cfg, peer));
                cluster.fence_errors.remove(&peer);
            }
            Err(reason) => {
                cluster.fence_errors.insert(peer, reason.clone());
            }
        }
        cluster
            .fencer
            .fence_result(peer, result.is_ok(), now, &mut actions);
        self.perform_fence(actions, now);
    }

    /// The fence worker woke the loop: its results.
    pub(super) fn on_fence_wake(&mut self, now: Instant) {
        let mut done = Vec::new();
        if let Some(worker) = self.fence_worker.as_ref() {
            worker.drain(&mut done);
        }
        for d in done {
            self.fence_result(d.peer, d.result, now);
        }
    }

    fn queue_hook(&mut self, hook: Option<HookRequest>, now: Instant) {
        if let Some(hook) = hook {
            self.hook_queue.push(hook);
            self.pump_hooks(now);
        }
    }

    fn finish_cluster_turn(&mut self, changed: bool, now: Instant) {
        if let Some(cluster) = self.cluster.as_mut() {
            if changed {
                cluster.group_epoch += 1;
                cluster.send_heartbeats(now, false);
            }
            // The goodbye waits for lingering VIPs: the successor acquires on the released
            // state, and this node stays a member (and quorate) until it saw that.
            let released = cluster.groups.iter().all(|g| {
                matches!(g.engine.state(), GroupState::Released | GroupState::Failed)
                    && !g.engine.is_lingering()
            });
            if cluster.stopping && released && !cluster.said_goodbye {
                cluster.send_heartbeats(now, true);
                cluster.said_goodbye = true;
            }
        }
        self.schedule_cluster();
    }

    /// Carries out one group's actions; returns whether its state changed.
    fn perform_group(&mut self, g: usize, actions: Vec<Action>, now: Instant) -> bool {
        let mut changed = false;
        for action in actions {
            match action {
                Action::AddVips => {
                    self.vips
                        .acquire(VipOwner::Group(g), now, &self.interfaces, &mut self.netlink);
                    self.schedule_vips();
                }
                Action::RemoveVips => {
                    self.vips
                        .release(VipOwner::Group(g), &self.interfaces, &mut self.netlink);
                    self.schedule_vips();
                    if let Some(group) = self.cluster.as_ref().map(|c| &c.groups[g]) {
                        info!(group = %group.cfg.name, "VIPs removed");
                    }
                }
                Action::Announce => self.announce_group(g),
                Action::StartResource(i) => self.group_hook(g, true, i, now),
                Action::StopResource(i) => self.group_hook(g, false, i, now),
                Action::Transition { from, to, reason } => {
                    changed = true;
                    if let Some(group) = self.cluster.as_mut().map(|c| &mut c.groups[g]) {
                        group.last_reason = Some(reason);
                        info!(group = %group.cfg.name, "{} -> {} ({})", from.as_str(), to.as_str(), reason.code());
                        self.events.record(
                            events::Event::new("group", Some(&group.cfg.name), reason.to_string())
                                .between(from.as_str(), to.as_str())
                                .code(reason.code()),
                        );
                    }
                }
            }
        }
        changed
    }

    /// Queues resource `i`'s start or stop hook.
    fn group_hook(&mut self, g: usize, start: bool, i: usize, now: Instant) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let group = &mut cluster.groups[g];
        let Some(resource) = group.cfg.resources.get(i) else {
            return;
        };
        let event = if start { "acquire" } else { "release" };
        let vips = group
            .cfg
            .vips
            .iter()
            .map(|v| v.vip.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let env = vec![
            ("RELEVO_EVENT".to_string(), event.to_string()),
            ("RELEVO_NAME".to_string(), group.cfg.name.clone()),
            ("RELEVO_GROUP".to_string(), group.cfg.name.clone()),
            ("RELEVO_RESOURCE".to_string(), resource.name.clone()),
            ("RELEVO_NODE".to_string(), self.node_name.clone()),
            ("RELEVO_VIPS".to_string(), vips),
        ];
        let argv = if start {
            resource.start.clone()
        } else {
            resource.stop.clone()
        };
        let timeout = resource.timeout;
        self.hook_queue.push(HookRequest::new(
            GROUP_HOOK_OWNER_BASE + g,
            event,
            argv,
            env,
            timeout,
        ));
        self.pump_hooks(now);
    }

    /// A group's resource hook ended: the engine goes on.
    pub(super) fn group_hook_done(&mut self, done: &HookDone, now: Instant) {
        let g = done.owner - GROUP_HOOK_OWNER_BASE;
        let ok = matches!(done.outcome, HookOutcome::Exited(0));
        let mut actions = Vec::new();
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let (inputs, eligible) = cluster.decision_inputs(g, &self.interfaces);
        let view = inputs.view(cluster.me, eligible);
        let group = &mut cluster.groups[g];
        match group.engine.hook_in_progress() {
            Some((true, i)) => group
                .engine
                .resource_started(i, ok, &view, now, &mut actions),
            Some((false, i)) => group.engine.resource_stopped(i, now, &mut actions),
            None => {}
        }
        let changed = self.perform_group(g, actions, now);
        self.finish_cluster_turn(changed, now);
    }

    /// Gratuitous ARPs / unsolicited NAs for the group's VIPs, each out of its interface.
    pub(super) fn announce_group(&mut self, g: usize) {
        let Some(cluster) = self.cluster.as_ref() else {
            return;
        };
        for vip in &cluster.groups[g].cfg.vips {
            let Some(iface) = self.interfaces.by_name(&vip.interface) else {
                continue;
            };
            let Some(mac) = iface.link.mac else {
                continue;
            };
            let ifindex = iface.link.ifindex;
            if let Err(e) = super::announce::send_announcements(
                &self.packet,
                ifindex,
                mac,
                &[vip.vip.addr],
                false,
                &mut self.rx_buf,
            ) {
                warn!("announcing {} failed: {e}", vip.vip);
            }
        }
    }

    /// Shutdown: every group releases (stop hooks, then the VIPs), then a goodbye heartbeat.
    pub(super) fn stop_cluster(&mut self, now: Instant) {
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.stopping = true;
        }
        self.update_groups(now);
    }

    /// Whether the cluster has finished its shutdown: groups released, no VIP lingering for a
    /// successor, goodbye sent (the goodbye waits for the rest).
    pub(super) fn cluster_stopped(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.said_goodbye)
    }

    /// At exit: no group VIP stays behind (a forced exit may leave a lingering one).
    pub(super) fn remove_group_vips(&mut self) {
        let count = self.cluster.as_ref().map_or(0, |c| c.groups.len());
        for g in 0..count {
            self.vips
                .release(VipOwner::Group(g), &self.interfaces, &mut self.netlink);
        }
    }
}

pub(super) fn node_name(cfg: &ClusterConfig, id: u8) -> String {
    usize::from(id)
        .checked_sub(1)
        .and_then(|i| cfg.nodes.get(i))
        .map_or_else(|| format!("#{id}"), |n| n.name.clone())
}
