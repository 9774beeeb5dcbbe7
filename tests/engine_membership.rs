//! Cluster membership and quorum (engine::membership), in virtual time: link health per
//! (peer, link), liveness over several links, mutual hearing, quorum rules (majority, two-node
//! with ping node or `two_node`, start-up gating), and a seeded simulation of N nodes over K
//! links with loss, one-way cuts, partitions and restarts, checking at every step that no two
//! quorate nodes see disjoint partitions and that a fully connected cluster converges.
mod membership_support;
mod seeded_rng;

use std::time::{Duration, Instant};

use membership_support::{membership_params, ms};
use relevo::engine::membership::{
    Event, Heard, LinkHealth, Membership, Params, PeerGone, PeerView,
};
use seeded_rng::Rng;

fn params(me: u8, n: u8, links: usize) -> Params {
    membership_params(me, n, links, ms(50))
}

/// A view: (peer, links) pairs, every link fresh.
fn v(pairs: &[(u8, u8)]) -> Vec<PeerView> {
    pairs
        .iter()
        .map(|&(node_id, links)| PeerView {
            node_id,
            links,
            fresh: links,
        })
        .collect()
}

/// A heartbeat from `from` on `link` with `view`, incarnation 1.
fn hb(from: u8, link: usize, view: &[PeerView]) -> Heard<'_> {
    Heard {
        from,
        link,
        incarnation: 1,
        leaving: false,
        view,
    }
}

fn quorum_events(out: &[Event]) -> Vec<bool> {
    out.iter()
        .filter_map(|e| match e {
            Event::Quorum { quorate, .. } => Some(*quorate),
            _ => None,
        })
        .collect()
}

#[test]
fn a_link_goes_late_then_down_and_the_peer_dies_with_its_last_link() {
    let t0 = Instant::now();
    let mut m = Membership::new(params(1, 2, 2), t0);
    let mut out = Vec::new();
    m.heard(&hb(2, 0, &v(&[(1, 3)])), t0, &mut out);
    m.heard(&hb(2, 1, &v(&[(1, 3)])), t0, &mut out);
    assert!(out.contains(&Event::PeerAlive { peer: 2 }));
    assert_eq!(m.link_health(2, 0), Some(LinkHealth::Up));
    // Link 1 keeps going, link 0 falls silent.
    out.clear();
    for t in (2..=12).step_by(2) {
        m.heard(&hb(2, 1, &v(&[(1, 3)])), t0 + ms(t), &mut out);
        m.handle_timeout(t0 + ms(t), &mut out);
    }
    assert!(out.contains(&Event::LinkChanged {
        peer: 2,
        link: 0,
        health: LinkHealth::Late
    }));
    assert!(out.contains(&Event::LinkChanged {
        peer: 2,
        link: 0,
        health: LinkHealth::Down
    }));
    assert!(m.is_alive(2), "one link down changes nothing else");
    assert!(!out.iter().any(|e| matches!(e, Event::PeerDead { .. })));
    // Now link 1 falls silent too.
    out.clear();
    let mut t = t0 + ms(12);
    while t < t0 + ms(40) {
        m.handle_timeout(t, &mut out);
        t = m.next_deadline().unwrap().max(t + Duration::from_micros(1));
    }
    assert!(out.contains(&Event::PeerDead {
        peer: 2,
        why: PeerGone::Deadtime
    }));
    assert!(!m.is_alive(2));
}

#[test]
fn deadlines_are_never_in_the_past() {
    let t0 = Instant::now();
    let mut m = Membership::new(params(1, 3, 2), t0);
    let mut out = Vec::new();
    m.heard(&hb(2, 0, &v(&[(1, 1)])), t0, &mut out);
    let mut now = t0;
    for _ in 0..200 {
        let next = m.next_deadline().unwrap();
        assert!(next >= now, "deadline {next:?} before now {now:?}");
        now = next;
        m.handle_timeout(now, &mut out);
    }
    assert!(now > t0 + ms(100), "time moves on: {:?}", now - t0);
}

#[test]
fn goodbye_and_restart_end_a_peers_life_at_once() {
    let t0 = Instant::now();
    let mut m = Membership::new(params(1, 3, 1), t0);
    let mut out = Vec::new();
    m.heard(&hb(2, 0, &v(&[(1, 1)])), t0, &mut out);
    let view = v(&[(1, 1)]);
    let restart = Heard {
        incarnation: 2,
        ..hb(2, 0, &view)
    };
    out.clear();
    m.heard(&restart, t0 + ms(1), &mut out);
    assert!(out.contains(&Event::PeerDead {
        peer: 2,
        why: PeerGone::Restarted
    }));
    assert!(out.contains(&Event::PeerAlive { peer: 2 }));
    let leaving = Heard {
        leaving: true,
        ..restart.clone()
    };
    out.clear();
    m.heard(&leaving, t0 + ms(2), &mut out);
    assert!(out.contains(&Event::PeerDead {
        peer: 2,
        why: PeerGone::Leaving
    }));
    // A late frame of the life that said goodbye does not revive it.
    out.clear();
    m.heard(&restart, t0 + ms(3), &mut out);
    assert!(!m.is_alive(2));
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn majority_quorum_with_mutual_hearing_only() {
    let t0 = Instant::now();
    let mut m = Membership::new(params(1, 3, 1), t0);
    let mut out = Vec::new();
    // Node 2 is heard but does not hear node 1 (one-way link): it does not count.
    m.heard(&hb(2, 0, &v(&[])), t0, &mut out);
    m.heard(&hb(3, 0, &v(&[])), t0, &mut out);
    assert_eq!(m.partition(), [1]);
    // Node 3 hears 1: quorum (2 of 3) once everyone was heard.
    m.heard(&hb(3, 0, &v(&[(1, 1)])), t0 + ms(1), &mut out);
    assert_eq!(m.partition(), [1, 3]);
    assert!(m.is_quorate());
    // Node 3 also hears 2 and node 2 hears 3: 2 joins through 3.
    m.heard(&hb(2, 0, &v(&[(3, 1)])), t0 + ms(2), &mut out);
    m.heard(&hb(3, 0, &v(&[(1, 1), (2, 1)])), t0 + ms(2), &mut out);
    assert_eq!(m.partition(), [1, 2, 3]);
    // Node 3 dies; 2 still does not hear 1: alone, no quorum.
    out.clear();
    let mut t = t0 + ms(2);
    while t < t0 + ms(20) {
        m.heard(&hb(2, 0, &v(&[])), t, &mut out);
        m.handle_timeout(t, &mut out);
        t += ms(2);
    }
    assert_eq!(m.partition(), [1]);
    assert!(!m.is_quorate());
    assert_eq!(quorum_events(&out).last(), Some(&false));
}

#[test]
fn not_quorate_after_start_until_every_node_was_heard_or_initdead() {
    let t0 = Instant::now();
    let mut m = Membership::new(params(1, 3, 1), t0);
    let mut out = Vec::new();
    m.heard(&hb(2, 0, &v(&[(1, 1)])), t0, &mut out);
    assert_eq!(m.partition(), [1, 2]);
    assert!(!m.is_quorate(), "node 3 never heard, initdead not over");
    let mut t = t0;
    while t <= t0 + ms(50) {
        m.heard(&hb(2, 0, &v(&[(1, 1)])), t, &mut out);
        m.handle_timeout(t, &mut out);
        t += ms(2);
    }
    assert!(m.is_quorate(), "initdead is over");
}

#[test]
fn two_nodes_keep_quorum_alone_only_with_a_ping_node_or_two_node() {
    let t0 = Instant::now();
    for (ping_nodes, two_node, ping, expected) in [
        (true, false, true, true),
        (true, false, false, false),
        (false, true, false, true),
        (false, false, false, false),
    ] {
        let mut p = params(1, 2, 1);
        p.ping_nodes = ping_nodes;
        p.two_node = two_node;
        let mut m = Membership::new(p, t0);
        let mut out = Vec::new();
        m.heard(&hb(2, 0, &v(&[(1, 1)])), t0, &mut out);
        assert!(m.is_quorate(), "both nodes");
        m.ping_reachable(ping, t0, &mut out);
        m.handle_timeout(t0 + ms(30), &mut out);
        assert!(!m.is_alive(2));
        assert_eq!(
            m.is_quorate(),
            expected,
            "ping_nodes {ping_nodes} two_node {two_node} ping {ping}"
        );
    }
}

/// A simulated cluster: every node's membership, and which directed (from, to, link) paths
/// deliver.
struct Sim {
    nodes: Vec<Membership>,
    incarnations: Vec<u64>,
    cut: Vec<Vec<Vec<bool>>>,
    loss_permille: u64,
    links: usize,
}

impl Sim {
    fn new(n: u8, links: usize, t0: Instant) -> Sim {
        let count = usize::from(n);
        Sim {
            nodes: (1..=n)
                .map(|me| Membership::new(params(me, n, links), t0))
                .collect(),
            incarnations: vec![1; count],
            cut: vec![vec![vec![false; links]; count]; count],
            loss_permille: 0,
            links,
        }
    }

    /// Runs every node's timers up to `now` and delivers the heartbeats they send.
    fn step(&mut self, now: Instant, rng: &mut Rng) {
        let mut sends = Vec::new();
        for (i, node) in self.nodes.iter_mut().enumerate() {
            let mut out = Vec::new();
            node.handle_timeout(now, &mut out);
            if out.contains(&Event::SendHeartbeats) {
                sends.push((i, node.view(now)));
            }
        }
        for (from, view) in sends {
            for to in 0..self.nodes.len() {
                for link in 0..self.links {
                    if to == from || self.cut[from][to][link] {
                        continue;
                    }
                    if rng.below(1000) < self.loss_permille {
                        continue;
                    }
                    let heard = Heard {
                        from: from as u8 + 1,
                        link,
                        incarnation: self.incarnations[from],
                        leaving: false,
                        view: &view,
                    };
                    self.nodes[to].heard(&heard, now, &mut Vec::new());
                }
            }
        }
    }

    fn set_all_cuts(&mut self, f: impl Fn(usize, usize, usize) -> bool) {
        for a in 0..self.nodes.len() {
            for b in 0..self.nodes.len() {
                for l in 0..self.links {
                    self.cut[a][b][l] = f(a, b, l);
                }
            }
        }
    }

    /// No two quorate nodes may see disjoint partitions.
    fn check_one_quorate_partition(&self, seed: u64, at: Duration) {
        let quorate: Vec<&Membership> = self.nodes.iter().filter(|m| m.is_quorate()).collect();
        for a in &quorate {
            for b in &quorate {
                let overlap = a.partition().iter().any(|x| b.partition().contains(x));
                assert!(
                    overlap,
                    "seed {seed} at {at:?}: quorate partitions {:?} and {:?} are disjoint",
                    a.partition(),
                    b.partition()
                );
            }
        }
    }
}

#[test]
fn seeded_clusters_never_have_two_disjoint_quorate_partitions_and_heal() {
    for seed in 1..=300u64 {
        let mut rng = Rng::new(seed);
        let n = 2 + rng.below(6) as u8; // 2..=7 nodes
        let links = 1 + rng.index(3); // 1..=3 links
        let t0 = Instant::now();
        let mut sim = Sim::new(n, links, t0);
        let mut now = t0;
        let end = t0 + ms(600);
        while now < end {
            // Every ~40 ms of virtual time, a new fault scenario.
            if rng.below(20) == 0 {
                let count = usize::from(n);
                match rng.below(5) {
                    0 => sim.set_all_cuts(|_, _, _| false),
                    1 => {
                        // A partition: a random side.
                        let side: Vec<bool> = (0..count).map(|_| rng.below(2) == 0).collect();
                        sim.set_all_cuts(|a, b, _| side[a] != side[b]);
                    }
                    2 => {
                        // One-way cuts on random paths.
                        let (a, b, l) = (rng.index(count), rng.index(count), rng.index(links));
                        sim.cut[a][b][l] = true;
                    }
                    3 => sim.loss_permille = rng.below(300),
                    _ => {
                        // A restart: new incarnation, fresh membership.
                        let i = rng.index(count);
                        sim.incarnations[i] += 1;
                        sim.nodes[i] = Membership::new(params(i as u8 + 1, n, links), now);
                    }
                }
            }
            sim.step(now, &mut rng);
            sim.check_one_quorate_partition(seed, now - t0);
            now += ms(1);
        }
        // Heal everything: within deadtime plus a few keepalives all nodes agree.
        sim.set_all_cuts(|_, _, _| false);
        sim.loss_permille = 0;
        let healed = now;
        while now < healed + ms(80) {
            sim.step(now, &mut rng);
            now += ms(1);
        }
        let all: Vec<u8> = (1..=n).collect();
        for (i, node) in sim.nodes.iter().enumerate() {
            assert_eq!(
                node.partition(),
                all,
                "seed {seed}: node {} after healing",
                i + 1
            );
            assert!(
                node.is_quorate(),
                "seed {seed}: node {} after healing",
                i + 1
            );
        }
    }
}

#[test]
fn a_node_that_hears_nobody_loses_its_lease_before_the_others_see_it_dead() {
    // keepalive 2 ms, warntime 6 ms, deadtime 10 ms: lease = 10 - 2 * 2 = 6 ms.
    let t0 = Instant::now();
    let mut m = Membership::new(params(1, 3, 1), t0);
    let mut out = Vec::new();
    m.heard(&hb(2, 0, &v(&[(1, 1), (3, 1)])), t0, &mut out);
    m.heard(&hb(3, 0, &v(&[(1, 1), (2, 1)])), t0, &mut out);
    assert!(m.is_quorate() && m.lease_valid());
    assert_eq!(m.params().lease(), ms(6));
    // Cut off: nothing arrives any more. The deadline wakes the node when the lease ends.
    assert!(m.next_deadline().is_some_and(|at| at <= t0 + ms(6)));
    out.clear();
    m.handle_timeout(t0 + ms(6), &mut out);
    assert!(out.contains(&Event::Lease { valid: false }), "{out:?}");
    assert!(!m.lease_valid());
    assert!(
        m.is_quorate(),
        "the peers are not dead yet: quorum itself lasts to deadtime"
    );
    m.handle_timeout(t0 + ms(10), &mut out);
    assert!(!m.is_quorate());
}

#[test]
fn a_node_whose_frames_stop_reaching_the_others_loses_its_lease_when_their_views_say_so() {
    let t0 = Instant::now();
    let mut m = Membership::new(params(1, 3, 1), t0);
    let mut out = Vec::new();
    let up = v(&[(1, 1), (2, 1), (3, 1)]);
    m.heard(&hb(2, 0, &up), t0, &mut out);
    m.heard(&hb(3, 0, &up), t0, &mut out);
    assert!(m.lease_valid());
    // Node 1 still hears both, but they last heard it longer ago than the lease (not down).
    let late = |other: u8| {
        vec![
            PeerView {
                node_id: 1,
                links: 1,
                fresh: 0,
            },
            PeerView {
                node_id: other,
                links: 1,
                fresh: 1,
            },
        ]
    };
    out.clear();
    m.heard(&hb(2, 0, &late(3)), t0 + ms(2), &mut out);
    assert!(m.lease_valid(), "node 3 still hears it fresh: 2 of 3");
    m.heard(&hb(3, 0, &late(2)), t0 + ms(2), &mut out);
    assert!(!m.lease_valid(), "nobody hears it fresh any more");
    assert!(
        m.is_quorate(),
        "yet still quorate: the peers declare it dead at deadtime"
    );
    assert!(out.contains(&Event::Lease { valid: false }));
    // Heard fresh again: the lease is back.
    m.heard(&hb(2, 0, &up), t0 + ms(4), &mut out);
    assert!(m.lease_valid());
}

#[test]
fn the_view_says_which_peers_are_heard_within_the_lease() {
    let t0 = Instant::now();
    let mut m = Membership::new(params(1, 3, 2), t0);
    let mut out = Vec::new();
    m.heard(&hb(2, 0, &v(&[])), t0, &mut out);
    m.heard(&hb(2, 1, &v(&[])), t0 + ms(5), &mut out);
    m.heard(&hb(3, 0, &v(&[])), t0 + ms(5), &mut out);
    m.handle_timeout(t0 + ms(7), &mut out);
    let view = m.view(t0 + ms(7));
    assert_eq!(
        view,
        vec![
            PeerView {
                node_id: 2,
                links: 0b11,
                fresh: 0b10,
            },
            PeerView {
                node_id: 3,
                links: 0b01,
                fresh: 0b01,
            },
        ]
    );
}
