//! The daemon: the only layer that performs I/O. One single-threaded mio loop owns every
//! socket, timer, signal and child process and feeds what happens into the engine, then
//! performs the actions the engine returns.
mod adverts;
pub mod announce;
pub mod cluster;
pub mod control;
pub mod events;
pub mod fence_worker;
pub mod heartbeat_socket;
pub mod hook_security;
pub mod hooks;
pub mod instance;
pub mod interfaces;
pub mod loop_stats;
pub mod metrics;
mod net_events;
pub mod netlink;
pub mod operator;
pub mod packet_socket;
pub mod ping;
mod reload;
pub mod sd_notify;
pub mod signals;
mod status;
pub mod timer;
pub mod track;
pub mod vip;
pub mod vmac;
pub mod vrrp_socket;

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use anyhow::Context;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::config::Family;
use crate::engine::hook_queue::HookQueue;
use crate::engine::vrrp::{Action, Blocker, Input};
use control::ControlServer;
use hooks::{HookDone, HookRunner};
use instance::InstanceRt;
use interfaces::Interfaces;
use loop_stats::LoopStats;
use netlink::Netlink;
use packet_socket::PacketSocket;
use signals::{SignalAction, Signals};
use timer::{DeadlineHeap, LoopTimer, TimerOwner};
use vip::{VipOwner, VipTable};
use vrrp_socket::VrrpSocket;

const TOKEN_TIMER: Token = Token(0);
const TOKEN_SIGNALS: Token = Token(1);
const TOKEN_NETLINK_EVENTS: Token = Token(2);
const TOKEN_NETLINK_REQUESTS: Token = Token(3);
const TOKEN_NETLINK_DUMP: Token = Token(5);
const TOKEN_CONTROL: Token = Token(4);
/// The fence worker's waker: a fence result is ready.
const TOKEN_FENCE: Token = Token(6);
/// Token ranges: VRRP sockets from 16, heartbeat links from 2^18, control connections from
/// 2^19, hooks from 2^20.
const SOCKET_TOKEN_BASE: usize = 16;
const HEARTBEAT_TOKEN_BASE: usize = 1 << 18;
const CONTROL_TOKEN_BASE: usize = 1 << 19;
const HOOK_TOKEN_BASE: usize = 1 << 20;
/// Largest datagram read from a VRRP socket (an IPv4 header plus the largest advert fits).
const RECV_BUFFER: usize = 2048;
/// Extra time granted after the last stop hook's own timeout before exiting anyway.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(3);
/// Datagrams read from one VRRP socket per loop turn: a flood cannot starve the timers; the
/// rest is read on the next turn.
const SOCKET_BUDGET: usize = 64;
/// A loop that wakes this late for a timer has stalled (SIGSTOP, a frozen VM, a debugger):
/// counted in status. (Whatever queued on the sockets is read before any due timer fires,
/// stalled or not, so a backup that slept through its Master_Down deadline first hears the
/// master that is still alive.)
const STALL_THRESHOLD: Duration = Duration::from_millis(5);

/// Kernel lifetime of group VIPs while held (refreshed from the loop), as `vip_lease`'s default.
const GROUP_VIP_LEASE: Duration = Duration::from_secs(5);

/// Consecutive failed advert sends after which an instance goes to FAULT (`send-failed`).
const SEND_FAILURES_FOR_FAULT: u32 = 3;

/// A VRRP socket and the instances whose adverts it carries.
struct SocketSlot {
    socket: VrrpSocket,
    instances: Vec<usize>,
}

/// Everything the event loop owns.
pub struct Daemon {
    poll: Poll,
    timer: LoopTimer,
    deadlines: DeadlineHeap,
    signals: Signals,
    netlink: Netlink,
    interfaces: Interfaces,
    packet: PacketSocket,
    /// VRRP sockets by token index (token = SOCKET_TOKEN_BASE + index).
    sockets: Vec<Option<SocketSlot>>,
    socket_index: HashMap<(u32, Family), usize>,
    instances: Vec<InstanceRt>,
    /// Every VIP of this node: desired vs actual, leases, the state file.
    vips: VipTable,
    /// The addresses of every configured VIP (never an advert source).
    all_vip_addrs: Vec<std::net::IpAddr>,
    hook_queue: HookQueue,
    hooks: HookRunner,
    control: Option<ControlServer>,
    node_name: String,
    /// Set once a shutdown signal arrived: the instant by which the daemon exits regardless.
    shutdown_deadline: Option<Instant>,
    actions: Vec<Action>,
    rx_buf: Vec<u8>,
    /// Sockets whose last drain stopped at the budget with datagrams left (read next turn).
    sockets_with_backlog: Vec<usize>,
    loop_stats: LoopStats,
    /// Parent sysctls virtual-MAC mode changed (put back at exit).
    saved_sysctls: Vec<vmac::SavedSysctl>,
    /// Cluster mode, when `[cluster]` is configured.
    cluster: Option<cluster::ClusterRt>,
    /// Heartbeat links whose last read stopped at the budget.
    cluster_backlog: std::collections::BTreeSet<usize>,
    /// Runs fence devices off the loop (cluster mode with a fence device).
    fence_worker: Option<fence_worker::FenceWorker>,
    /// `[[track]]` checks and what they did to the instances and groups.
    tracks: track::TrackRt,
    /// The history `relevo events` shows.
    events: events::EventLog,
    /// The newest event sent to `events --follow` clients.
    events_sent: u64,
    /// Maintenance, standby, switchovers.
    operator: operator::OperatorState,
    /// systemd notifications (READY, STOPPING, WATCHDOG); inert outside systemd.
    notify: sd_notify::SdNotify,
    /// `[metrics]`: publishes snapshots to the HTTP server thread.
    metrics: Option<metrics::Publisher>,
    /// The configuration running (what a reload compares the file with).
    config: Config,
}

/// Runs the daemon until SIGTERM/SIGINT; returns after a graceful shutdown.
pub fn run(config: Config) -> anyhow::Result<()> {
    let mut daemon = Daemon::new(config)?;
    daemon.start()?;
    daemon.run_loop()
}

impl Daemon {
    fn new(config: Config) -> anyhow::Result<Self> {
        // Block the handled signals before anything else (no thread exists yet).
        let signals = Signals::install().context("installing the signal handler (signalfd)")?;
        let poll = Poll::new().context("creating the event loop (epoll)")?;
        let timer = LoopTimer::new().context("creating the loop timer (timerfd)")?;
        let mut netlink = Netlink::open().context("opening the rtnetlink sockets")?;
        let (links, addrs) = netlink
            .snapshot()
            .context("listing network interfaces and addresses")?;
        let mut interfaces = Interfaces::default();
        interfaces.reset(links, addrs);
        let packet = PacketSocket::open().context("opening the AF_PACKET socket for GARP/NA")?;
        let tracks = track::TrackRt::new(&config, Instant::now());
        let instances: Vec<InstanceRt> = config
            .vrrp
            .iter()
            .map(|c| InstanceRt::new(c.clone()))
            .collect();
        let mut vips = VipTable::new(&config.node.state_dir);
        for (i, c) in config.vrrp.iter().enumerate() {
            let lease = Some(c.vip_lease).filter(|lease| !lease.is_zero());
            vips.register(VipOwner::Instance(i), c.vip_interface(), &c.vips, lease);
        }
        let cluster = match &config.cluster {
            Some(c) => Some(
                cluster::ClusterRt::new(c, &config.groups, &config.fence_devices, Instant::now())
                    .context("starting cluster mode")?,
            ),
            None => None,
        };
        for (g, group) in config.groups.iter().enumerate() {
            for v in &group.vips {
                vips.register(
                    VipOwner::Group(g),
                    &v.interface,
                    std::slice::from_ref(&v.vip),
                    Some(GROUP_VIP_LEASE),
                );
            }
        }
        let control = match ControlServer::bind(
            &config.node.control_socket,
            config.node.control_group.as_deref(),
            CONTROL_TOKEN_BASE,
        ) {
            Ok(c) => Some(c),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(e).context("opening the control socket");
            }
            Err(e) => {
                warn!(
                    "control socket {} unavailable ({e}): `relevo status` will not reach this daemon",
                    config.node.control_socket.display()
                );
                None
            }
        };
        Ok(Daemon {
            control,
            poll,
            timer,
            deadlines: DeadlineHeap::default(),
            signals,
            netlink,
            interfaces,
            packet,
            sockets: Vec::new(),
            socket_index: HashMap::new(),
            all_vip_addrs: config
                .vrrp
                .iter()
                .flat_map(|c| c.vips.iter().map(|v| v.addr))
                .collect(),
            instances,
            vips,
            hook_queue: HookQueue::new(),
            hooks: HookRunner::new(HOOK_TOKEN_BASE, config.node.hook_security),
            node_name: config.node.name.clone(),
            shutdown_deadline: None,
            actions: Vec::new(),
            rx_buf: vec![0; RECV_BUFFER],
            sockets_with_backlog: Vec::new(),
            loop_stats: LoopStats::default(),
            saved_sysctls: Vec::new(),
            cluster,
            cluster_backlog: std::collections::BTreeSet::new(),
            fence_worker: None,
            tracks,
            events: events::EventLog::default(),
            events_sent: 0,
            operator: operator::OperatorState::load(&config.node.state_dir),
            notify: sd_notify::SdNotify::from_env(),
            metrics: None,
            config,
        })
    }

    fn register_fd(&self, fd: RawFd, token: Token) -> anyhow::Result<()> {
        self.poll
            .registry()
            .register(&mut SourceFd(&fd), token, Interest::READABLE)
            .with_context(|| format!("registering fd {fd} with the event loop"))
    }

    /// Registers the fixed sources, cleans VIPs a crashed run left behind and starts every
    /// instance.
    fn start(&mut self) -> anyhow::Result<()> {
        self.register_fd(self.timer.raw_fd(), TOKEN_TIMER)?;
        self.register_fd(self.signals.raw_fd(), TOKEN_SIGNALS)?;
        self.netlink
            .register(
                self.poll.registry(),
                TOKEN_NETLINK_EVENTS,
                TOKEN_NETLINK_REQUESTS,
                TOKEN_NETLINK_DUMP,
            )
            .context("registering the netlink sockets")?;
        if let Some(control) = self.control.as_mut() {
            control
                .register(self.poll.registry(), TOKEN_CONTROL)
                .context("registering the control socket")?;
        }
        self.register_cluster(HEARTBEAT_TOKEN_BASE)
            .context("registering the heartbeat sockets")?;
        let fences = self
            .cluster
            .as_ref()
            .is_some_and(|c| c.cfg.nodes.iter().any(|n| n.fence.is_some()));
        if fences {
            let worker = fence_worker::FenceWorker::start(self.poll.registry(), TOKEN_FENCE)
                .context("starting the fence worker thread")?;
            self.fence_worker = Some(worker);
        }
        if let Some(m) = self.config.metrics {
            self.metrics = Some(metrics::Publisher::start(m.listen)?);
        }
        let now = Instant::now();
        self.vips
            .remove_leftovers(&self.interfaces, &mut self.netlink);
        self.start_tracks(now);
        for i in 0..self.instances.len() {
            self.start_instance(i, now);
        }
        // Sockets open, configuration applied: systemd may start what comes after us.
        self.notify.ready();
        self.schedule_watchdog(now);
        self.deadlines.schedule(TimerOwner::Metrics, Some(now));
        Ok(())
    }

    /// Binds instance `i` to its interface and starts it (at start, and when a reload adds it).
    fn start_instance(&mut self, i: usize, now: Instant) {
        self.bind_interface(i, now);
        let inst = &mut self.instances[i];
        info!(
            instance = %inst.cfg.name,
            interface = %inst.cfg.interface,
            vrid = inst.cfg.vrid,
            priority = inst.cfg.priority,
            "starting VRRP instance"
        );
        let link_up = inst.link_up;
        if inst.ifindex.is_none() {
            warn!(
                instance = %inst.cfg.name,
                "interface {} does not exist (yet): the instance stays in FAULT until it appears",
                inst.cfg.interface
            );
        }
        self.refresh_source(i, now);
        if self.instances[i].engine.primary_address().is_none() {
            let inst = &self.instances[i];
            warn!(instance = %inst.cfg.name, "no usable source address on {} yet: the instance stays in FAULT until there is one", inst.cfg.interface);
        }
        if self.operator.holds_out(&self.instances[i].cfg.name) {
            self.feed(i, Input::HoldOut(true), now);
        }
        if self.instances[i].cfg.quorum_gated {
            // Gated instances start blocked: no quorum has been seen yet.
            self.feed(i, Input::CannotAdvertise(Blocker::NoQuorum), now);
        }
        self.feed(i, Input::Startup { link_up }, now);
    }

    fn run_loop(&mut self) -> anyhow::Result<()> {
        let mut events = Events::with_capacity(256);
        let mut signal_actions = Vec::new();
        let mut hook_done = Vec::new();
        loop {
            let now = Instant::now();
            match self.deadlines.peek() {
                // Inputs before timers: a due timer fires only after what already queued on
                // the sockets was read (an advert that arrived just before a backup's
                // Master_Down deadline counts; after a stall, everything queued meanwhile).
                Some(due) if due <= now => {
                    if now.saturating_duration_since(due) > STALL_THRESHOLD {
                        self.loop_stats.stalls += 1;
                    }
                    self.drain_all_sockets();
                }
                _ => self.drain_backlog(),
            }
            self.drain_cluster_backlog(Instant::now());
            self.fire_due_timers(Instant::now(), &mut hook_done);
            self.publish_events();
            if self.shutdown_complete(Instant::now()) {
                break;
            }
            let next = self.deadlines.peek();
            self.timer
                .arm(next, Instant::now())
                .context("arming the loop timer")?;
            // A socket left with a backlog is read on the next turn without waiting.
            let backlog = !self.sockets_with_backlog.is_empty() || !self.cluster_backlog.is_empty();
            let timeout = backlog.then_some(Duration::ZERO);
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("waiting for events (epoll_wait)"),
            }
            for event in events.iter() {
                let now = Instant::now();
                match event.token() {
                    TOKEN_TIMER => self.timer.acknowledge(),
                    TOKEN_SIGNALS => {
                        if let Err(e) = self.signals.read(&mut signal_actions) {
                            warn!("reading signals failed: {e}");
                        }
                        for action in signal_actions.drain(..) {
                            self.on_signal(action, now);
                        }
                    }
                    TOKEN_NETLINK_EVENTS | TOKEN_NETLINK_REQUESTS | TOKEN_NETLINK_DUMP => {
                        self.service_netlink(now)
                    }
                    TOKEN_FENCE => self.on_fence_wake(now),
                    TOKEN_CONTROL => {
                        if let Some(control) = self.control.as_mut() {
                            control.accept(self.poll.registry(), now);
                        }
                        self.reschedule_control();
                    }
                    t if self.control.as_ref().is_some_and(|c| c.owns(t)) => {
                        self.on_control(t, now)
                    }
                    t if self.hooks.owns(t) => {
                        self.hooks
                            .handle_event(self.poll.registry(), event, now, &mut hook_done);
                        self.on_hooks_done(&mut hook_done, now);
                    }
                    Token(t) if (HEARTBEAT_TOKEN_BASE..CONTROL_TOKEN_BASE).contains(&t) => {
                        self.on_heartbeat_readable(t - HEARTBEAT_TOKEN_BASE, now)
                    }
                    Token(t) if t >= SOCKET_TOKEN_BASE => {
                        self.on_socket_readable(t - SOCKET_TOKEN_BASE)
                    }
                    Token(t) => debug!("event for unknown token {t}"),
                }
            }
        }
        self.remove_group_vips();
        self.remove_vmacs();
        self.log_counters();
        info!("stopped");
        Ok(())
    }

    fn fire_due_timers(&mut self, now: Instant, hook_done: &mut Vec<HookDone>) {
        while let Some((owner, due)) = self.deadlines.pop_due(now) {
            self.loop_stats
                .timer_fired(now.saturating_duration_since(due));
            match owner {
                TimerOwner::Instance(i) => {
                    let mut actions = std::mem::take(&mut self.actions);
                    self.instances[i].engine.handle_timeout(now, &mut actions);
                    self.perform(i, &mut actions, now);
                    self.actions = actions;
                    self.reschedule(i);
                }
                TimerOwner::Hooks => {
                    self.hooks.handle_timeout(now, hook_done);
                    self.on_hooks_done(hook_done, now);
                }
                TimerOwner::Vips => {
                    let restored =
                        self.vips
                            .handle_timeout(now, &self.interfaces, &mut self.netlink);
                    self.announce_restored(restored);
                }
                TimerOwner::Netlink => self.service_netlink(now),
                TimerOwner::VirtualMacs => self.on_vmac_timer(now),
                TimerOwner::Cluster => self.on_cluster_timer(now),
                TimerOwner::Tracks => self.on_track_timer(now),
                TimerOwner::Control => {
                    if let Some(control) = self.control.as_mut() {
                        control.handle_timeout(self.poll.registry(), now);
                    }
                    self.reschedule_control();
                }
                TimerOwner::Watchdog => {
                    self.notify.watchdog();
                    self.schedule_watchdog(now);
                }
                TimerOwner::Metrics => self.publish_metrics(now),
                TimerOwner::Daemon => {}
            }
        }
    }

    /// Feeds one input to instance `i` and performs what it asks for.
    fn feed(&mut self, i: usize, input: Input, now: Instant) {
        let mut actions = std::mem::take(&mut self.actions);
        self.instances[i].engine.handle(input, now, &mut actions);
        self.perform(i, &mut actions, now);
        self.actions = actions;
        self.reschedule(i);
    }

    fn reschedule(&mut self, i: usize) {
        let inst = &mut self.instances[i];
        if let Some((master, _)) = inst.engine.current_master() {
            inst.last_master = Some(master);
        }
        let next = self.instances[i].engine.next_deadline();
        self.deadlines.schedule(TimerOwner::Instance(i), next);
    }

    /// Carries out the engine's actions for instance `i`, in order. An input that performing
    /// them produced (persistent send failure) is fed afterwards, never in the middle of a
    /// list (a FAULT in the middle would be followed by the rest, e.g. adding the VIPs).
    fn perform(&mut self, i: usize, actions: &mut Vec<Action>, now: Instant) {
        self.perform_actions(i, actions, now);
        if let Some(input) = self.instances[i].pending_input.take() {
            let mut more = Vec::new();
            self.instances[i].engine.handle(input, now, &mut more);
            self.perform_actions(i, &mut more, now);
        }
    }

    fn perform_actions(&mut self, i: usize, actions: &mut Vec<Action>, now: Instant) {
        for action in actions.drain(..) {
            match action {
                Action::SendAdvert { priority } => self.send_advert(i, priority),
                Action::AddVips => self.add_vips(i, now),
                Action::RemoveVips => self.remove_vips(i),
                Action::Announce => self.announce(i),
                Action::Transition { from, to, reason } => {
                    let inst = &self.instances[i];
                    info!(instance = %inst.cfg.name, "{} -> {} ({reason})", from.as_str(), to.as_str());
                    let words = match (reason, inst.last_master) {
                        (crate::engine::vrrp::Reason::MasterDown, Some(master)) => format!(
                            "no advert from {master} for {}",
                            crate::config::format_duration(inst.engine.master_down_interval())
                        ),
                        _ => reason.to_string(),
                    };
                    self.events.record(
                        events::Event::new("vrrp", Some(&inst.cfg.name), words)
                            .between(from.as_str(), to.as_str())
                            .code(reason.code()),
                    );
                    if let Some(req) = inst.hook_request(i, from, to, &reason, &self.node_name) {
                        self.hook_queue.push(req);
                        self.pump_hooks(now);
                    }
                }
            }
        }
    }

    fn add_vips(&mut self, i: usize, now: Instant) {
        self.vips.acquire(
            VipOwner::Instance(i),
            now,
            &self.interfaces,
            &mut self.netlink,
        );
        self.schedule_vips();
    }

    /// Removes exactly the VIPs this instance added.
    fn remove_vips(&mut self, i: usize) {
        self.vips
            .release(VipOwner::Instance(i), &self.interfaces, &mut self.netlink);
        self.schedule_vips();
    }

    fn schedule_vips(&mut self) {
        self.deadlines
            .schedule(TimerOwner::Vips, self.vips.next_deadline());
    }

    /// Held VIPs that had vanished were re-added: announce them again.
    fn announce_restored(&mut self, owners: Vec<VipOwner>) {
        for owner in &owners {
            let name = match *owner {
                VipOwner::Instance(i) => Some(self.instances[i].cfg.name.clone()),
                VipOwner::Group(g) => self.cluster.as_ref().map(|c| c.groups[g].cfg.name.clone()),
            };
            self.events.record(
                events::Event::new(
                    "vip",
                    name.as_deref(),
                    "a VIP vanished while held (deleted by someone else, or its lease expired): restored",
                )
                .code("restored"),
            );
        }
        for owner in owners {
            match owner {
                VipOwner::Instance(i) => self.announce(i),
                VipOwner::Group(g) => self.announce_group(g),
            }
        }
        self.schedule_vips();
    }

    /// Gratuitous ARPs / unsolicited NAs out of the instance's interface, from its MAC or in
    /// virtual-MAC mode from the virtual MAC (switches learn the master's port from them).
    fn announce(&mut self, i: usize) {
        let inst = &mut self.instances[i];
        let Some(ifindex) = inst.ifindex else {
            return;
        };
        let own_mac = self.interfaces.get(ifindex).and_then(|f| f.link.mac);
        let Some(mac) = inst.vmac.as_ref().map(|v| v.mac).or(own_mac) else {
            return;
        };
        if let Err(e) = inst.announce(&self.packet, ifindex, mac) {
            inst.count_tx_error("announce_failed");
            if inst.warn_once("announce_failed") {
                warn!(instance = %inst.cfg.name, "sending gratuitous ARP/NA failed: {e}");
            }
        }
    }

    fn on_signal(&mut self, action: SignalAction, now: Instant) {
        match action {
            SignalAction::Reload => self.reload_on_signal(now),
            SignalAction::Shutdown(sig) => {
                if self.shutdown_deadline.is_some() {
                    // A second signal: the operator does not want to wait for the hand-over.
                    warn!("{sig} again: exiting at once (VIPs removed now, hooks not awaited)");
                    for i in 0..self.instances.len() {
                        self.remove_vips(i);
                    }
                    self.shutdown_deadline = Some(now);
                    return;
                }
                info!("{sig}: shutting down (priority-0 adverts, removing VIPs, stop hooks)");
                self.notify.stopping();
                // Stop hooks may queue behind a running hook (two timeouts); a stopping
                // master waits for its successor at most four advert intervals.
                let longest_hook = self
                    .instances
                    .iter()
                    .map(|i| i.cfg.hook_timeout)
                    .max()
                    .unwrap_or_default();
                let longest_release = self
                    .instances
                    .iter()
                    .map(|i| i.cfg.advert_interval * 4)
                    .max()
                    .unwrap_or_default();
                // Groups stop their resources one after the other before the VIPs go.
                let groups = self.cluster.as_ref().map(|c| c.release_budget());
                let deadline = now
                    + (longest_hook * 2)
                        .max(longest_release)
                        .max(groups.unwrap_or_default())
                    + SHUTDOWN_SLACK;
                self.shutdown_deadline = Some(deadline);
                self.deadlines.schedule(TimerOwner::Daemon, Some(deadline));
                for i in 0..self.instances.len() {
                    self.feed(i, Input::Shutdown, now);
                }
                self.stop_cluster(now);
            }
        }
    }

    fn shutdown_complete(&self, now: Instant) -> bool {
        match self.shutdown_deadline {
            None => false,
            Some(deadline) => {
                let hooks_idle = self.hook_queue.is_idle() && self.hooks.running() == 0;
                let released = self.instances.iter().all(|i| !i.engine.is_releasing())
                    && self.cluster_stopped();
                if now >= deadline && !hooks_idle {
                    warn!("exiting with hooks still running after the shutdown deadline");
                }
                (hooks_idle && released) || now >= deadline
            }
        }
    }

    fn pump_hooks(&mut self, now: Instant) {
        let mut ended_at_once = Vec::new();
        while let Some(req) = self.hook_queue.next_ready() {
            if let Some(done) = self.hooks.start(self.poll.registry(), req, now) {
                ended_at_once.push(done);
            }
        }
        let next = self.hooks.next_deadline();
        self.deadlines.schedule(TimerOwner::Hooks, next);
        if !ended_at_once.is_empty() {
            self.on_hooks_done(&mut ended_at_once, now);
        }
    }

    fn on_hooks_done(&mut self, done: &mut Vec<HookDone>, now: Instant) {
        for d in done.drain(..) {
            if d.owner >= track::TRACK_HOOK_OWNER_BASE {
                // Routine checks: their changes are logged, not every run recorded.
                self.track_script_done(d, now);
                continue;
            }
            self.record_hook(&d);
            if d.owner >= cluster::CLUSTER_HOOK_OWNER_BASE {
                self.finish_hook(d);
            } else if d.owner >= cluster::GROUP_HOOK_OWNER_BASE {
                self.hook_queue.finished(d.owner);
                self.group_hook_done(&d, now);
            } else {
                self.finish_hook(d);
            }
        }
        self.pump_hooks(now);
    }

    /// Records a finished hook in the event history.
    fn record_hook(&mut self, done: &HookDone) {
        use hooks::HookOutcome;
        let (words, exit_code) = match &done.outcome {
            HookOutcome::Exited(0) => ("exited 0".to_string(), Some(0)),
            HookOutcome::Exited(code) => (format!("failed: exit {code}"), Some(*code)),
            HookOutcome::Signaled(sig) => (format!("killed by signal {sig}"), None),
            HookOutcome::TimedOut => ("timed out: killed".to_string(), None),
            HookOutcome::SpawnFailed(why) => (format!("not started: {why}"), None),
            HookOutcome::Refused(why) => (format!("refused: {why}"), None),
            HookOutcome::WaitFailed(why) => (format!("exit unknown: {why}"), None),
        };
        let mut event = events::Event::new("hook", Some(&done.label), words).code(&done.event);
        event.exit_code = exit_code;
        event.duration_ms = Some(u64::try_from(done.duration.as_millis()).unwrap_or(u64::MAX));
        self.events.record(event);
    }

    /// The runner logged the outcome (with the hook's `instance/event` label); the
    /// instance's next queued hook may start.
    fn finish_hook(&mut self, done: HookDone) {
        self.hook_queue.finished(done.owner);
    }

    fn on_control(&mut self, token: Token, now: Instant) {
        let registry = self.poll.registry();
        let request = self
            .control
            .as_mut()
            .and_then(|c| c.serve(registry, token, now));
        if let Some((line, uid)) = request {
            self.control_command(token, &line, uid, now);
        }
        self.reschedule_control();
    }

    /// Publishes a snapshot for `[metrics]` and arms the next one (nothing without it).
    fn publish_metrics(&mut self, now: Instant) {
        if self.metrics.is_none() {
            return;
        }
        let status = self.status();
        if let Some(publisher) = self.metrics.as_mut() {
            publisher.publish(status, &self.events);
        }
        let next = now + metrics::PUBLISH_EVERY;
        self.deadlines.schedule(TimerOwner::Metrics, Some(next));
    }

    /// Arms the next WATCHDOG=1, half of `$WATCHDOG_USEC` from `now`: sent from the loop
    /// itself, so a stuck loop stops it and systemd restarts the daemon.
    fn schedule_watchdog(&mut self, now: Instant) {
        let next = self.notify.watchdog_interval().map(|d| now + d);
        self.deadlines.schedule(TimerOwner::Watchdog, next);
    }

    /// Arms the control socket's earliest connection deadline.
    fn reschedule_control(&mut self) {
        let next = self.control.as_ref().and_then(|c| c.next_deadline());
        self.deadlines.schedule(TimerOwner::Control, next);
    }
}
