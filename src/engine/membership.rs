//! Cluster membership and quorum, sans-I/O: which peers this node hears on which heartbeat
//! links, which nodes form its partition, and whether that partition has quorum.
//!
//! A [`Membership`] is fed authenticated, replay-checked heartbeats ([`Heard`]) and ping-node
//! reachability together with `now`, answers with [`Event`]s pushed into the caller's `Vec`, and
//! says when it next needs the clock ([`Membership::next_deadline`]). It never reads a clock.
//!
//! Rules:
//! - Per (peer, link): **up** while the last heartbeat on that link is younger than `warntime`,
//!   **late** until `deadtime`, **down** after. Right after start a peer never heard is given
//!   `initdead` instead of `deadtime`. A peer is **alive** while any of its links is not down;
//!   losing one link of several changes nothing but the link's health. A heartbeat flagged
//!   `leaving` (graceful stop) or carrying a new incarnation (the peer restarted) ends the
//!   peer's old life at once.
//! - **Mutual hearing**: this node and an alive peer are joined when the peer's last heartbeat
//!   says it hears this node too; two peers are joined when each one's last heartbeat lists the
//!   other (when only one of them is heard, its word is taken). The **partition** is every node
//!   joined to this one through such edges, so a link that works in one direction only never
//!   counts, and nodes that hear each other through a third node stay one partition.
//! - **Quorum**: the partition holds at least `nodes / 2 + 1` nodes. Two-node clusters: both
//!   nodes, or alone while a ping node answers (`ping_nodes`), or alone when `two_node` says so
//!   explicitly. A node that just started is not quorate until it has heard every node once or
//!   `initdead` has passed.
//! - **Lease**: quorum counted only with peers this node heard within [`Params::lease`]
//!   (`deadtime` less two keepalives, at least `warntime`) and that say they heard it within
//!   the lease too. A node cut off from the others loses its lease before they declare it
//!   dead: when it hears nothing, because they last heard it at most about a keepalive apart
//!   from when it last heard them; when only its own frames are lost, because their views
//!   stop calling it fresh two keepalives before `deadtime`. So a holder that must release
//!   has released by the time another node may take over: groups hold and acquire only with a
//!   valid lease.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use crate::wire::heartbeat::{PeerView, MAX_LINKS};

/// What a node's membership is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// This node's id.
    pub me: u8,
    /// Every node's id, this node's included.
    pub nodes: Vec<u8>,
    /// Heartbeat links per node, 1..=[`MAX_LINKS`].
    pub links: usize,
    /// Heartbeat interval on every link.
    pub keepalive: Duration,
    /// A link silent this long is late (warned once).
    pub warntime: Duration,
    /// A link silent this long is down; a peer with every link down is dead.
    pub deadtime: Duration,
    /// `deadtime` for peers never heard since start.
    pub initdead: Duration,
    /// Two-node cluster without ping nodes or fencing: keep quorum alone.
    pub two_node: bool,
    /// Ping nodes are configured: in a two-node cluster they decide quorum alone.
    pub ping_nodes: bool,
}

impl Params {
    /// Votes a partition needs: `nodes / 2 + 1`.
    pub fn votes_needed(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    /// How recently a peer must have been heard to count for the lease: `deadtime` less two
    /// keepalives, at least `warntime`.
    pub fn lease(&self) -> Duration {
        self.deadtime
            .saturating_sub(self.keepalive * 2)
            .max(self.warntime)
    }
}

/// Health of one (peer, link).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkHealth {
    Up,
    Late,
    Down,
}

impl LinkHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkHealth::Up => "up",
            LinkHealth::Late => "late",
            LinkHealth::Down => "down",
        }
    }
}

/// Why a peer stopped counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerGone {
    /// Every link silent for `deadtime` (or `initdead` right after start).
    Deadtime,
    /// It said goodbye (graceful stop).
    Leaving,
    /// A heartbeat of a new incarnation: it restarted, whatever it held is gone.
    Restarted,
}

impl PeerGone {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerGone::Deadtime => "deadtime",
            PeerGone::Leaving => "leaving",
            PeerGone::Restarted => "restarted",
        }
    }
}

/// One authenticated heartbeat, as the membership needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard<'a> {
    pub from: u8,
    /// The link (0-based) it arrived on.
    pub link: usize,
    pub incarnation: u64,
    /// The sender is stopping.
    pub leaving: bool,
    /// The sender's view: each peer it hears and on which links (bit k = link k).
    pub view: &'a [PeerView],
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Time to send a heartbeat on every link to every peer.
    SendHeartbeats,
    LinkChanged {
        peer: u8,
        link: usize,
        health: LinkHealth,
    },
    PeerAlive {
        peer: u8,
    },
    PeerDead {
        peer: u8,
        why: PeerGone,
    },
    /// The partition or its quorum changed.
    Quorum {
        quorate: bool,
        votes: usize,
        needed: usize,
    },
    /// Quorum counted with recently heard peers only ([`Params::lease`]) was lost or regained.
    Lease {
        valid: bool,
    },
}

#[derive(Debug, Clone, Default)]
struct Peer {
    /// Last heartbeat per link.
    last: Vec<Option<Instant>>,
    /// Health per link as last reported.
    health: Vec<Option<LinkHealth>>,
    incarnation: Option<u64>,
    alive: bool,
    /// Its last view: peer -> (links not down, links heard within the lease) bitmasks.
    view: BTreeMap<u8, (u8, u8)>,
    /// When it said it leaves: ignored until a new incarnation speaks.
    left: Option<u64>,
    /// Heard within the lease as of the last refresh.
    fresh: bool,
}

/// The membership of one node. See the module documentation.
#[derive(Debug)]
pub struct Membership {
    params: Params,
    started: Instant,
    peers: BTreeMap<u8, Peer>,
    next_send: Instant,
    ping_reachable: bool,
    /// Every peer has been heard at least once since start.
    heard_all: bool,
    quorate: bool,
    partition: Vec<u8>,
    /// Quorate counting recently heard peers only (see the module documentation).
    lease_valid: bool,
}

impl Membership {
    /// A node that starts at `now`: it sends its first heartbeat at once.
    pub fn new(params: Params, now: Instant) -> Self {
        let links = params.links.clamp(1, MAX_LINKS);
        let peers = params
            .nodes
            .iter()
            .filter(|&&id| id != params.me)
            .map(|&id| {
                let peer = Peer {
                    last: vec![None; links],
                    health: vec![None; links],
                    ..Peer::default()
                };
                (id, peer)
            })
            .collect();
        let mut membership = Membership {
            started: now,
            peers,
            next_send: now,
            ping_reachable: false,
            heard_all: false,
            quorate: false,
            partition: vec![params.me],
            lease_valid: false,
            params,
        };
        membership.heard_all = membership.peers.is_empty();
        membership
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// A heartbeat from a configured peer (others are ignored: the daemon counts them).
    pub fn heard(&mut self, heard: &Heard<'_>, now: Instant, out: &mut Vec<Event>) {
        let Some(peer) = self.peers.get_mut(&heard.from) else {
            return;
        };
        if heard.link >= peer.last.len() {
            return;
        }
        let restarted = peer.incarnation.is_some_and(|old| old != heard.incarnation);
        if peer.left == Some(heard.incarnation) {
            return; // late frames of a life that said goodbye
        }
        if restarted && peer.alive {
            peer.alive = false;
            out.push(Event::PeerDead {
                peer: heard.from,
                why: PeerGone::Restarted,
            });
        }
        if restarted {
            peer.last.iter_mut().for_each(|t| *t = None);
        }
        peer.incarnation = Some(heard.incarnation);
        peer.view = heard
            .view
            .iter()
            .map(|p| (p.node_id, (p.links, p.fresh)))
            .collect();
        if heard.leaving {
            peer.left = Some(heard.incarnation);
            peer.last.iter_mut().for_each(|t| *t = None);
            peer.view.clear();
            if std::mem::take(&mut peer.alive) {
                out.push(Event::PeerDead {
                    peer: heard.from,
                    why: PeerGone::Leaving,
                });
            }
            self.refresh(now, out);
            return;
        }
        peer.last[heard.link] = Some(now);
        if !peer.alive {
            peer.alive = true;
            out.push(Event::PeerAlive { peer: heard.from });
        }
        if !self.heard_all && self.peers.values().all(|p| p.incarnation.is_some()) {
            self.heard_all = true;
        }
        self.refresh(now, out);
    }

    /// Whether a ping node answers (two-node tiebreaker).
    pub fn ping_reachable(&mut self, reachable: bool, now: Instant, out: &mut Vec<Event>) {
        self.ping_reachable = reachable;
        self.refresh(now, out);
    }

    /// Timers: heartbeats due, links going late or down, `initdead` ending.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Event>) {
        if now >= self.next_send {
            out.push(Event::SendHeartbeats);
            self.next_send = next_tick(self.next_send, self.params.keepalive, now);
        }
        self.refresh(now, out);
    }

    /// The earliest instant something may change without an input.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.next_send;
        let mut consider = |at: Instant| next = next.min(at);
        for peer in self.peers.values() {
            for (last, health) in peer.last.iter().zip(&peer.health) {
                match (last, health) {
                    (Some(last), Some(LinkHealth::Up)) => consider(*last + self.params.warntime),
                    (Some(last), Some(LinkHealth::Late)) => consider(*last + self.params.deadtime),
                    _ => {}
                }
            }
        }
        if !self.heard_all {
            consider(self.started + self.params.initdead);
        }
        for peer in self.peers.values().filter(|p| p.fresh) {
            if let Some(newest) = peer.last.iter().flatten().max() {
                consider(*newest + self.params.lease());
            }
        }
        Some(next)
    }

    /// What this node hears, for its own heartbeat: each peer with at least one link not down,
    /// on which links, and on which of them within the lease.
    pub fn view(&self, now: Instant) -> Vec<PeerView> {
        self.peers
            .iter()
            .filter_map(|(&id, peer)| {
                let lease = self.params.lease();
                let bits = |wanted: &dyn Fn(usize) -> bool| {
                    (0..peer.last.len())
                        .filter(|&l| wanted(l))
                        .fold(0u8, |bits, l| bits | (1 << l))
                };
                let links = bits(&|l| self.health(peer, l, now) != LinkHealth::Down);
                let fresh = bits(&|l| {
                    peer.last[l].is_some_and(|last| now.saturating_duration_since(last) < lease)
                });
                (links != 0).then_some(PeerView {
                    node_id: id,
                    links,
                    fresh,
                })
            })
            .collect()
    }

    /// The life of `peer` last heard.
    pub fn incarnation(&self, peer: u8) -> Option<u64> {
        self.peers.get(&peer)?.incarnation
    }

    /// Whether `peer` is alive (some link not down).
    pub fn is_alive(&self, peer: u8) -> bool {
        peer == self.params.me || self.peers.get(&peer).is_some_and(|p| p.alive)
    }

    /// Health of (peer, link) as last reported; `None` before anything was heard or decided.
    pub fn link_health(&self, peer: u8, link: usize) -> Option<LinkHealth> {
        self.peers.get(&peer)?.health.get(link).copied().flatten()
    }

    /// When (peer, link) was last heard.
    pub fn last_heard(&self, peer: u8, link: usize) -> Option<Instant> {
        self.peers.get(&peer)?.last.get(link).copied().flatten()
    }

    /// The nodes of this node's partition (sorted, this node included).
    pub fn partition(&self) -> &[u8] {
        &self.partition
    }

    pub fn is_quorate(&self) -> bool {
        self.quorate
    }

    /// Quorate counting only peers heard within the lease: what groups hold and acquire with.
    pub fn lease_valid(&self) -> bool {
        self.lease_valid
    }

    /// Health of one link from its last heartbeat.
    fn health(&self, peer: &Peer, link: usize, now: Instant) -> LinkHealth {
        health_at(&self.params, peer.last.get(link).copied().flatten(), now)
    }

    /// Re-derives link health, liveness, the partition and quorum; reports what changed.
    fn refresh(&mut self, now: Instant, out: &mut Vec<Event>) {
        let params = &self.params;
        let lease = params.lease();
        for (&id, peer) in self.peers.iter_mut() {
            let mut all_down = true;
            for link in 0..peer.last.len() {
                let health = health_at(params, peer.last[link], now);
                all_down &= health == LinkHealth::Down;
                let heard_once = peer.last[link].is_some();
                let known = peer.health[link];
                if known != Some(health) && (heard_once || known.is_some()) {
                    peer.health[link] = Some(health);
                    out.push(Event::LinkChanged {
                        peer: id,
                        link,
                        health,
                    });
                }
                if health == LinkHealth::Down {
                    peer.last[link] = None;
                }
            }
            peer.fresh = peer
                .last
                .iter()
                .flatten()
                .any(|&last| now.saturating_duration_since(last) < lease);
            if peer.alive && all_down {
                peer.alive = false;
                peer.view.clear();
                out.push(Event::PeerDead {
                    peer: id,
                    why: PeerGone::Deadtime,
                });
            }
        }
        if !self.heard_all && now >= self.started + self.params.initdead {
            self.heard_all = true;
        }
        let partition = self.compute_partition(false);
        let quorate = self.heard_all && self.has_quorum(partition.len());
        let lease_valid = quorate && self.has_quorum(self.compute_partition(true).len());
        if lease_valid != self.lease_valid {
            self.lease_valid = lease_valid;
            out.push(Event::Lease { valid: lease_valid });
        }
        if quorate != self.quorate || partition != self.partition {
            self.quorate = quorate;
            self.partition = partition;
            out.push(Event::Quorum {
                quorate,
                votes: self.partition.len(),
                needed: self.params.votes_needed(),
            });
        }
    }

    /// Whether `a` says it hears `b`: this node hears every alive peer, a peer every node its
    /// last view lists. With `fresh_only` (the lease), each only the nodes it heard within the
    /// lease.
    fn says_hears(&self, a: u8, b: u8, fresh_only: bool) -> Option<bool> {
        if a == self.params.me {
            let fresh = !fresh_only || self.peers.get(&b).is_some_and(|p| p.fresh);
            return Some(self.is_alive(b) && fresh);
        }
        let peer = self.peers.get(&a).filter(|p| p.alive)?;
        let (links, fresh) = peer.view.get(&b).copied().unwrap_or_default();
        Some(if fresh_only { fresh != 0 } else { links != 0 })
    }

    /// Joined: each hears the other; a node this one does not hear is taken at its peer's word.
    fn joined(&self, a: u8, b: u8, fresh_only: bool) -> bool {
        match (
            self.says_hears(a, b, fresh_only),
            self.says_hears(b, a, fresh_only),
        ) {
            (Some(ab), Some(ba)) => ab && ba,
            (Some(ab), None) | (None, Some(ab)) => ab,
            (None, None) => false,
        }
    }

    fn compute_partition(&self, fresh_only: bool) -> Vec<u8> {
        let mut members = vec![self.params.me];
        let mut frontier = vec![self.params.me];
        while let Some(a) = frontier.pop() {
            for &b in &self.params.nodes {
                if !members.contains(&b) && self.joined(a, b, fresh_only) {
                    members.push(b);
                    frontier.push(b);
                }
            }
        }
        members.sort_unstable();
        members
    }

    fn has_quorum(&self, votes: usize) -> bool {
        let total = self.params.nodes.len();
        if total == 2 && votes < 2 {
            return if self.params.ping_nodes {
                self.ping_reachable
            } else {
                self.params.two_node
            };
        }
        votes >= self.params.votes_needed()
    }
}

/// Health of a link last heard at `last` (never: down).
fn health_at(params: &Params, last: Option<Instant>, now: Instant) -> LinkHealth {
    let Some(last) = last else {
        return LinkHealth::Down;
    };
    let silent = now.saturating_duration_since(last);
    if silent < params.warntime {
        LinkHealth::Up
    } else if silent < params.deadtime {
        LinkHealth::Late
    } else {
        LinkHealth::Down
    }
}

/// The next periodic instant after `previous` (no drift), or `now + period` after a stall.
fn next_tick(previous: Instant, period: Duration, now: Instant) -> Instant {
    let next = previous + period;
    if next > now {
        next
    } else {
        now + period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn params(me: u8, nodes: &[u8], links: usize) -> Params {
        Params {
            me,
            nodes: nodes.to_vec(),
            links,
            keepalive: ms(2),
            warntime: ms(6),
            deadtime: ms(10),
            initdead: ms(50),
            two_node: false,
            ping_nodes: false,
        }
    }

    #[test]
    fn heartbeats_are_due_every_keepalive_without_drift() {
        let t0 = Instant::now();
        let mut m = Membership::new(params(1, &[1], 1), t0);
        let mut out = Vec::new();
        m.handle_timeout(t0, &mut out);
        assert!(out.contains(&Event::SendHeartbeats));
        assert_eq!(m.next_deadline(), Some(t0 + ms(2)));
        out.clear();
        m.handle_timeout(t0 + ms(2) + Duration::from_micros(300), &mut out);
        assert_eq!(m.next_deadline(), Some(t0 + ms(4)));
    }

    #[test]
    fn a_single_node_cluster_is_quorate_at_once() {
        let t0 = Instant::now();
        let mut m = Membership::new(params(1, &[1], 1), t0);
        let mut out = Vec::new();
        m.handle_timeout(t0, &mut out);
        assert!(m.is_quorate());
    }
}
