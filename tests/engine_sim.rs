//! "Virtual segment" simulation: N VRRP instances whose adverts are delivered to each other
//! by a small discrete-event loop over `next_deadline()`, with a fixed propagation latency.
//! Checks elections, failover instants (exact, from the RFC timers), graceful hand-over,
//! preemption on return, and that two masters never coexist once the segment has settled.
mod seeded_rng;
use seeded_rng::Rng;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use relevo::engine::announce::AnnounceParams;
use relevo::engine::vrrp::{Action, AdvertIn, Input, Instance, Params, Reason, State};
use relevo::wire::VrrpVersion;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn params(priority: u8, advert_interval_cs: u16, preempt: bool) -> Params {
    Params {
        version: VrrpVersion::V3,
        vrid: 7,
        priority,
        advert_interval_cs,
        preempt,
        preempt_delay: Duration::ZERO,
        announce: AnnounceParams {
            repeat: 2,
            interval: ms(5),
            delay: Duration::ZERO,
            refresh: None,
        },
        priority_step: Duration::ZERO,
    }
}

struct Node {
    instance: Instance,
    addr: IpAddr,
    /// A dead node neither sends nor receives nor runs its timers (SIGKILL, power loss).
    alive: bool,
    vips: bool,
    last_rx: Option<Instant>,
}

struct Packet {
    at: Instant,
    to: usize,
    advert: AdvertIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Transition {
    at: Instant,
    node: usize,
    from: State,
    to: State,
    reason: Reason,
}

struct Sim {
    now: Instant,
    latency: Duration,
    nodes: Vec<Node>,
    in_flight: VecDeque<Packet>,
    log: Vec<Transition>,
    out: Vec<Action>,
    /// Packet loss in percent, drawn from `rng`.
    loss_percent: u64,
    rng: Rng,
    dual_master_since: Option<Instant>,
    longest_dual_master: Duration,
}

impl Sim {
    /// All nodes start at `t0` (in `params` order, node i has address 192.0.2.(i+1)).
    fn new(t0: Instant, latency: Duration, params: &[Params]) -> Self {
        let mut sim = Sim {
            now: t0,
            latency,
            nodes: Vec::new(),
            in_flight: VecDeque::new(),
            log: Vec::new(),
            out: Vec::new(),
            loss_percent: 0,
            rng: Rng::new(0x2545_f491_4f6c_dd1d),
            dual_master_since: None,
            longest_dual_master: Duration::ZERO,
        };
        for (i, p) in params.iter().enumerate() {
            let octet = u8::try_from(i + 1).unwrap();
            sim.nodes.push(Node {
                instance: Instance::new(p.clone()),
                addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, octet)),
                alive: false,
                vips: false,
                last_rx: None,
            });
            sim.boot(i, p.clone());
        }
        sim
    }

    /// (Re)starts node `i` now with a fresh instance.
    fn boot(&mut self, i: usize, p: Params) {
        let node = &mut self.nodes[i];
        node.instance = Instance::new(p);
        node.alive = true;
        node.vips = false;
        node.last_rx = None;
        let addr = node.addr;
        self.input(i, Input::PrimaryAddress(Some(addr)));
        self.input(i, Input::Startup { link_up: true });
    }

    fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
        self.nodes[i].vips = false;
        self.account_masters();
    }

    fn input(&mut self, i: usize, input: Input) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.nodes[i].instance.handle(input, self.now, &mut out);
        self.apply(i, &out);
        self.out = out;
    }

    fn timeout(&mut self, i: usize) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        self.nodes[i].instance.handle_timeout(self.now, &mut out);
        self.apply(i, &out);
        self.out = out;
        let next = self.nodes[i].instance.next_deadline();
        assert!(next.is_none_or(|d| d > self.now), "deadline in the past");
    }

    fn apply(&mut self, i: usize, out: &[Action]) {
        for action in out {
            match *action {
                Action::SendAdvert { priority } => self.broadcast(i, priority),
                Action::AddVips => {
                    assert!(!self.nodes[i].vips, "node {i}: VIPs added twice");
                    self.nodes[i].vips = true;
                }
                Action::RemoveVips => {
                    assert!(self.nodes[i].vips, "node {i}: VIPs removed twice");
                    self.nodes[i].vips = false;
                }
                Action::Announce => assert!(self.nodes[i].vips, "announce without VIPs"),
                Action::Transition { from, to, reason } => self.log.push(Transition {
                    at: self.now,
                    node: i,
                    from,
                    to,
                    reason,
                }),
            }
        }
        self.account_masters();
    }

    fn broadcast(&mut self, from: usize, priority: u8) {
        let advert = AdvertIn {
            src: self.nodes[from].addr,
            priority,
            interval_cs: self.nodes[from].instance.params().advert_interval_cs,
        };
        for to in 0..self.nodes.len() {
            if to != from && self.rng.below(100) >= self.loss_percent {
                self.in_flight.push_back(Packet {
                    at: self.now + self.latency,
                    to,
                    advert,
                });
            }
        }
    }

    /// Processes every event up to and including `end`; at equal instants packets are
    /// delivered before timers fire, timers fire in node order.
    fn run_until(&mut self, end: Instant) {
        loop {
            let packet_at = self.in_flight.front().map(|p| p.at);
            let timer = self.next_timer();
            let next = match (packet_at, timer) {
                (Some(p), Some((t, _))) => p.min(t),
                (Some(p), None) => p,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > end {
                break;
            }
            self.now = next;
            if packet_at == Some(next) {
                self.deliver();
            } else if let Some((_, i)) = timer {
                self.timeout(i);
            }
        }
        self.now = end;
    }

    fn next_timer(&self) -> Option<(Instant, usize)> {
        let alive = self.nodes.iter().enumerate().filter(|(_, n)| n.alive);
        alive
            .filter_map(|(i, n)| Some((n.instance.next_deadline()?, i)))
            .min()
    }

    fn deliver(&mut self) {
        let Some(packet) = self.in_flight.pop_front() else {
            return;
        };
        if self.nodes[packet.to].alive {
            self.nodes[packet.to].last_rx = Some(self.now);
            self.input(packet.to, Input::Advert(packet.advert));
        }
    }

    fn masters(&self) -> Vec<usize> {
        let nodes = self.nodes.iter().enumerate();
        nodes
            .filter(|(_, n)| n.alive && n.instance.state() == State::Master)
            .map(|(i, _)| i)
            .collect()
    }

    fn account_masters(&mut self) {
        let alive_masters = self
            .nodes
            .iter()
            .filter(|n| n.alive && n.instance.state() == State::Master)
            .count();
        match (alive_masters > 1, self.dual_master_since) {
            (true, None) => self.dual_master_since = Some(self.now),
            (false, Some(since)) => {
                self.longest_dual_master = self.longest_dual_master.max(self.now - since);
                self.dual_master_since = None;
            }
            _ => {}
        }
    }

    /// Transitions of node `i` into `to` at or after `since`.
    fn entries(&self, i: usize, to: State, since: Instant) -> Vec<Transition> {
        let log = self.log.iter().copied();
        log.filter(|t| t.node == i && t.to == to && t.at >= since)
            .collect()
    }

    fn transitions_since(&self, since: Instant) -> usize {
        self.log.iter().filter(|t| t.at >= since).count()
    }
}

const LATENCIES: [Duration; 2] = [Duration::ZERO, Duration::from_micros(200)];

#[test]
fn highest_priority_wins_the_first_election_without_flapping() {
    for latency in LATENCIES {
        let t0 = Instant::now();
        // Node order is not priority order.
        let nodes = [
            params(50, 100, true),
            params(150, 100, true),
            params(100, 100, true),
        ];
        let mut sim = Sim::new(t0, latency, &nodes);
        sim.run_until(t0 + ms(20_000));
        assert_eq!(sim.masters(), vec![1]);
        // MDI of priority 150 at 1 s: 300 + (106 * 100 / 256 = 41) cs = 3.41 s; it is the
        // only node ever to become master.
        let promotions: Vec<_> = sim.log.iter().filter(|t| t.to == State::Master).collect();
        assert_eq!(promotions.len(), 1);
        assert_eq!(promotions[0].node, 1);
        assert_eq!(promotions[0].at, t0 + ms(3410));
        assert_eq!(promotions[0].reason, Reason::MasterDown);
        assert_eq!(sim.longest_dual_master, Duration::ZERO);
        assert_eq!(sim.dual_master_since, None);
        assert_eq!(
            sim.nodes[0].instance.current_master(),
            Some((sim.nodes[1].addr, 150))
        );
    }
}

#[test]
fn highest_priority_is_the_only_master_at_10ms() {
    for latency in LATENCIES {
        let t0 = Instant::now();
        let nodes = [
            params(50, 1, true),
            params(150, 1, true),
            params(100, 1, true),
        ];
        let mut sim = Sim::new(t0, latency, &nodes);
        sim.run_until(t0 + ms(2000));
        assert_eq!(sim.masters(), vec![1]);
        assert_eq!(sim.nodes[0].instance.state(), State::Backup);
        assert_eq!(sim.nodes[2].instance.state(), State::Backup);
        // All MDIs are 30 ms at 1 cs, so the start may flap briefly; it settles at once.
        assert!(
            sim.longest_dual_master <= latency,
            "{:?}",
            sim.longest_dual_master
        );
        assert_eq!(sim.transitions_since(t0 + ms(100)), 0);
    }
}

#[test]
fn killed_master_is_replaced_exactly_one_mdi_after_its_last_advert() {
    for latency in LATENCIES {
        let t0 = Instant::now();
        let nodes = [
            params(50, 1, true),
            params(150, 1, true),
            params(100, 1, true),
        ];
        let mut sim = Sim::new(t0, latency, &nodes);
        let kill_at = t0 + ms(1000) + Duration::from_micros(500);
        sim.run_until(kill_at);
        assert_eq!(sim.masters(), vec![1]);
        sim.kill(1);
        let last_advert = sim.nodes[2].last_rx.unwrap();
        assert!(last_advert <= kill_at && kill_at - last_advert < ms(10));
        sim.run_until(t0 + ms(2000));

        // Priority 100 at 1 cs: skew 0, MDI 30 ms.
        let promoted = sim.entries(2, State::Master, kill_at);
        assert_eq!(promoted.len(), 1, "{promoted:?}");
        assert_eq!(promoted[0].at, last_advert + ms(30));
        // With zero latency priority 50 (node 0, same MDI, fires first in node order) claims
        // in the same instant and is heard before our timer fires: we preempt it.
        let reason = if latency.is_zero() {
            Reason::Preempt
        } else {
            Reason::MasterDown
        };
        assert_eq!(promoted[0].reason, reason);
        assert_eq!(sim.masters(), vec![2]);
        assert_eq!(sim.nodes[0].instance.state(), State::Backup);
        assert!(sim.longest_dual_master <= latency);
    }
}

#[test]
fn killed_master_is_replaced_after_mdi_at_1s() {
    let latency = Duration::from_micros(200);
    let t0 = Instant::now();
    let nodes = [
        params(50, 100, true),
        params(150, 100, true),
        params(100, 100, true),
    ];
    let mut sim = Sim::new(t0, latency, &nodes);
    let kill_at = t0 + ms(10_500);
    sim.run_until(kill_at);
    sim.kill(1);
    let last_advert = sim.nodes[2].last_rx.unwrap();
    sim.run_until(t0 + ms(20_000));
    // Priority 100 at 100 cs: MDI 3.6 s; priority 50 would need 3.8 s and hears it first.
    let promoted = sim.entries(2, State::Master, kill_at);
    assert_eq!(promoted.len(), 1);
    assert_eq!(promoted[0].at, last_advert + ms(3600));
    assert!(sim.entries(0, State::Master, t0).is_empty());
    assert_eq!(sim.longest_dual_master, Duration::ZERO);
}

#[test]
fn shutdown_of_the_master_hands_over_after_skew_time() {
    let latency = Duration::from_micros(200);
    let t0 = Instant::now();
    let nodes = [
        params(50, 100, true),
        params(150, 100, true),
        params(100, 100, true),
    ];
    let mut sim = Sim::new(t0, latency, &nodes);
    let stop_at = t0 + ms(10_300);
    sim.run_until(stop_at);
    sim.input(1, Input::Shutdown);
    assert_eq!(sim.nodes[1].instance.state(), State::Initialize);
    sim.run_until(t0 + ms(20_000));
    // The priority-0 advert arrives at stop_at + latency; skew of priority 100 at 1 s = 60 cs.
    let promoted = sim.entries(2, State::Master, stop_at);
    assert_eq!(promoted.len(), 1);
    assert_eq!(promoted[0].at, stop_at + latency + ms(600));
    assert_eq!(promoted[0].reason, Reason::PriorityZeroFromMaster);
    // Priority 50 (skew 80 cs) hears the new master before its own timer runs out.
    assert!(sim.entries(0, State::Master, t0).is_empty());
    assert_eq!(sim.masters(), vec![2]);
    assert_eq!(sim.longest_dual_master, Duration::ZERO);
}

#[test]
fn shutdown_of_the_master_at_10ms_hands_over_at_once() {
    let latency = Duration::from_micros(200);
    let t0 = Instant::now();
    let nodes = [params(150, 1, true), params(100, 1, true)];
    let mut sim = Sim::new(t0, latency, &nodes);
    let stop_at = t0 + ms(500);
    sim.run_until(stop_at);
    sim.input(0, Input::Shutdown);
    sim.run_until(t0 + ms(1000));
    let promoted = sim.entries(1, State::Master, stop_at);
    assert_eq!(promoted.len(), 1);
    // Skew at 1 cs is 0: promotion on receipt of the priority-0 advert.
    assert_eq!(promoted[0].at, stop_at + latency);
    assert_eq!(sim.masters(), vec![1]);
}

/// Kills the priority-150 master, lets 100 take over, then restarts 150.
fn kill_and_return(preempt: bool) -> (Sim, Instant) {
    let latency = Duration::from_micros(200);
    let t0 = Instant::now();
    let nodes = [
        params(150, 1, true),
        params(100, 1, true),
        params(50, 1, true),
    ];
    let mut sim = Sim::new(t0, latency, &nodes);
    sim.run_until(t0 + ms(1000));
    sim.kill(0);
    sim.run_until(t0 + ms(2000));
    assert_eq!(sim.masters(), vec![1]);
    let back_at = t0 + ms(2000);
    sim.boot(0, params(150, 1, preempt));
    (sim, back_at)
}

#[test]
fn returning_high_priority_with_preempt_takes_over_after_its_mdi() {
    let (mut sim, back_at) = kill_and_return(true);
    sim.run_until(back_at + ms(3000));
    // Priority 150 at 1 cs: MDI 30 ms; the lower master's adverts do not reset it.
    let promoted = sim.entries(0, State::Master, back_at);
    assert_eq!(promoted.len(), 1);
    assert_eq!(promoted[0].at, back_at + ms(30));
    assert_eq!(promoted[0].reason, Reason::Preempt);
    let stepped_down = sim.entries(1, State::Backup, back_at);
    assert_eq!(stepped_down.len(), 1);
    assert_eq!(stepped_down[0].at, back_at + ms(30) + sim.latency);
    assert_eq!(
        stepped_down[0].reason,
        Reason::HigherPriority {
            peer: sim.nodes[0].addr,
            priority: 150
        }
    );
    assert_eq!(sim.masters(), vec![0]);
    assert!(sim.longest_dual_master <= sim.latency);
}

#[test]
fn returning_high_priority_without_preempt_stays_backup() {
    let (mut sim, back_at) = kill_and_return(false);
    sim.run_until(back_at + ms(3000));
    assert!(sim.entries(0, State::Master, back_at).is_empty());
    assert_eq!(sim.masters(), vec![1]);
    assert_eq!(sim.nodes[0].instance.state(), State::Backup);
    assert_eq!(
        sim.nodes[0].instance.current_master(),
        Some((sim.nodes[1].addr, 100))
    );
}

#[test]
fn random_faults_always_settle_on_the_highest_priority_live_node() {
    let priorities = [200u8, 150, 100, 50];
    for seed in 1..=4u64 {
        let t0 = Instant::now();
        let nodes: Vec<Params> = priorities.iter().map(|&p| params(p, 1, true)).collect();
        let mut sim = Sim::new(t0, Duration::from_micros(300), &nodes);
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15 ^ seed);
        let mut now = t0;
        for _round in 0..200 {
            // Disturbance: kill / restart / graceful stop / lossy burst.
            let i = rng.below(priorities.len() as u64) as usize;
            match rng.below(4) {
                0 if sim.nodes[i].alive => sim.kill(i),
                1 if !sim.nodes[i].alive => sim.boot(i, nodes[i].clone()),
                2 if sim.nodes[i].alive => {
                    sim.input(i, Input::Shutdown);
                    sim.run_until(now + ms(rng.below(50)));
                    now = sim.now;
                    sim.input(i, Input::Startup { link_up: true });
                }
                _ => {
                    sim.loss_percent = 30 + rng.below(70);
                    sim.run_until(now + ms(rng.below(100)));
                    now = sim.now;
                    sim.loss_percent = 0;
                }
            }
            // Quiet period of well over 2 * MDI (MDI <= 31 ms here).
            now += ms(150);
            sim.run_until(now);
            let alive: Vec<usize> = (0..priorities.len())
                .filter(|&i| sim.nodes[i].alive)
                .collect();
            let expected: Vec<usize> = alive.first().copied().into_iter().collect();
            assert_eq!(sim.masters(), expected, "seed {seed}");
            for &i in alive.iter().skip(1) {
                assert_eq!(sim.nodes[i].instance.state(), State::Backup, "seed {seed}");
                assert!(!sim.nodes[i].vips);
            }
            assert_eq!(sim.dual_master_since, None, "seed {seed}");
        }
        // The disturbances really moved mastership around.
        let promotions = sim.log.iter().filter(|t| t.to == State::Master).count();
        assert!(promotions > 50, "seed {seed}: only {promotions} promotions");
    }
}
