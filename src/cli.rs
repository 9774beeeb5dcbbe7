//! The `relevo` command line: its clap definition ([`Cli`], [`Command`]) and the prose of its
//! help. It is the single source of `relevo --help`, of the manual page `man/relevo.8` and of
//! the shell completions under `packaging/completions/` (both generated from it by
//! `tests/generated_files.rs`, which fails when a committed copy is stale). `main.rs` only
//! dispatches.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config;

/// What the manual page says in DESCRIPTION (and `relevo --help` after the usage).
const LONG_ABOUT: &str = "\
relevo keeps virtual IP addresses (VIPs) owned by exactly one healthy node and moves them when
that node, its daemon or its link fails. It speaks VRRPv3 (RFC 5798, IPv4 and IPv6) and VRRPv2
(RFC 3768, IPv4, optional simple-text authentication) and interoperates with keepalived, FRR
and routers. On becoming master it adds the VIPs over rtnetlink and announces them with
gratuitous ARP (IPv4) or unsolicited neighbour advertisements with the override flag (IPv6);
on leaving master it removes them. Around every state change it runs the operator's hooks
(see relevo-hooks(7)).

With a [cluster] table (see relevo.toml(5)) the nodes also exchange authenticated heartbeats
(see relevo-heartbeat(7)) on every link to every peer every keepalive, and run resource groups:
a group (VIPs and ordered start/stop commands) is held by the first node of its nodes list
that is in this node's partition, may hold it (its VIP interfaces up) and has quorum (more
than half of the nodes, counting only peers that hear this node too). A peer is alive while
any of its links is; losing one link is only logged. A node that loses quorum applies
quorum_policy; one that finds a preferred node back (or stops gracefully) hands the group
over: it stops its resources in reverse order and says so in its heartbeat before the other
node adds the VIPs, announces them and starts the resources; the old holder's VIP addresses
alone stay until the new owner reports the group acquired (at most deadtime), so clients lose
nothing. After a peer vanished without a goodbye (crash, cut) a group is taken over only after
takeover_delay (by default the group's resource timeouts, nothing for VIPs only: a cut-off
holder loses its lease before the others see it dead, and then needs its stops). Cluster
events (node-dead, quorum-lost, quorum-regained) run the commands of [cluster] hooks (see
relevo-hooks(7)).

Fencing: a lost node (dead on every link) with a [[fence]] device that last reported a group
busy is powered off before that group is taken over. Only its next owner fences it, after its
own fence_delay, on a worker thread (adverts and heartbeats never wait for a device); the
group is acquired only once the device confirms, without the takeover delay. A failed or
timed-out fence is retried (1 s, doubling to 30 s) while the group stays down, and relevo
status shows the fence and its last error. Heartbeats of the fenced life are refused: the node
comes back only as a new incarnation. Nodes with fence = \"none\" are taken over after
takeover_delay as before: a node that is cut off but still running resources is trusted to
stop them within its timeouts.

A resource whose start fails makes the node release the group so the next one tries. VRRP
instances with quorum_gated stay in FAULT (reason no-quorum) while this node lacks quorum.
[[track]] checks (scripts, interfaces, files; see relevo.toml(5)) lower or raise an
instance's effective priority, put it in FAULT (reason track-failed), or make this node
ineligible for a group.

One single-threaded event loop does all network work; hooks are child processes watched by
the loop, so a slow hook never delays an advert. The daemon talks to the CLI over a Unix
control socket (see relevo-control(7)).";

/// ENVIRONMENT, FILES, EXIT STATUS and SEE ALSO: `Heading:` lines start a manual page
/// section, the lines indented by two spaces under them name an item whose text follows
/// indented by four.
const AFTER_LONG_HELP: &str = "\
Environment:
  RELEVO_LOG
    Log filter (tracing's EnvFilter syntax), default info.
  RELEVO_NO_ADDR_PROTO=1
    Neither stamp added addresses with the address protocol 0x52 nor trust the stamp on
    addresses found: behave as on a kernel older than 6.1, where crash cleanup relies on the
    state file alone (used by the tests).
  NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID
    Set by systemd for a Type=notify service: relevo run sends READY=1 once its sockets are
    open and the configuration applied, STOPPING=1 when it starts to shut down, and WATCHDOG=1
    from its event loop every half WATCHDOG_USEC (when WATCHDOG_PID is unset or its own pid).

Files:
  /etc/relevo/relevo.toml
    The configuration, see relevo.toml(5).
  /run/relevo/relevo.sock
    The default control socket, see relevo-control(7).
  /run/relevo/vips.state
    The VIPs Relevo added and has not removed (default state_dir), written before each add;
    read at start to remove what a crashed run left.

Exit status:
  0 on success or after a graceful shutdown; 1 on a configuration or start-up error, or a
  failed relevo fence.

See also:
  relevo.toml(5), relevo-hooks(7), relevo-heartbeat(7), relevo-control(7), keepalived(8)";

const RUN_ABOUT: &str = "\
Run the daemon in the foreground. Logs go to standard error; set RELEVO_LOG=debug for more
detail. The configuration is read once at start; a bad file is refused with its line and
column and exit status 1.

Logging never delays the protocol: log lines are queued (at most 4096) for a separate writer
thread, and when standard error does not keep up (a pipe nobody reads, a stopped or slow
journald) new lines are dropped instead of waiting, and counted (log_lines_dropped in status).
At exit the queue is flushed for at most 2 seconds.

SIGTERM or SIGINT: every master sends a priority-0 advert (its backups take over after
Skew_Time instead of Master_Down_Interval), VIPs are removed, stop hooks run (bounded by their
timeouts), and the daemon exits 0. A second SIGTERM or SIGINT during this hand-over removes
the VIPs at once and exits without waiting for the successor or the hooks. SIGHUP: reload the
configuration file, as `relevo reload` does.

Under systemd (Type=notify, see packaging/relevo.service) the daemon reports READY=1 once its
sockets are open and the configuration applied, STOPPING=1 when shutdown starts, and
WATCHDOG=1 from its event loop at half of WATCHDOG_USEC.

A stopping master keeps its VIPs until its successor's first advert arrives (plus 20 ms for
requests already in flight), bounded by four advert intervals, so a graceful stop costs
clients nothing. A master that hears a lower-priority router claim MASTER (two backups whose
Skew_Time rounds to zero at 10 ms adverts) answers at once with an advert and a fresh burst of
gratuitous ARPs, at most once per Master_Down_Interval. A master that steps down for a better
one (a split segment heals) sends one priority-0 advert as it goes; the surviving master
answers that resignation with an advert and a fresh burst (same limit), so the clients that
followed the loser come back at once. Backups ignore a resignation from a router other than
the master they follow. A backup that takes over from a master that still answers clients (a
lower-priority master it preempts, or a master that resigned with priority 0 and keeps its
VIPs until it hears its successor) adds its VIPs and announces them before its first advert
(the RFC sends the advert first), so the clients are re-pointed before the old master, hearing
the advert, drops the VIPs.

In virtual-MAC mode (virtual_mac, see relevo.toml(5)) the VIPs live on a macvlan carrying the
virtual router MAC, which relevo creates at start, re-creates if it vanishes and deletes at
exit; adverts and announcements leave from that MAC, so clients never see another MAC and
switches learn the master's port from its adverts. relevo then sets arp_ignore=1 and
arp_announce=2 on the parent interface and puts the old values back at exit.

At start, VIPs that an earlier, crashed run added are removed before the instance enters
BACKUP: Relevo stamps the addresses it adds with the address protocol 0x52 (kernel 6.1 or
newer) and lists them in state_dir/vips.state before each add, so either tells a leftover.
Addresses someone else configured are never removed. An instance whose interface does not
exist, or is down, or has no usable source address (reason no-source-address), or whose
adverts failed to send three times in a row (send-failed), stays in FAULT (with a log line)
until that is over: it never holds a VIP it cannot defend.

VIPs are reconciled with the interfaces on every address event and every second: a held VIP
that disappears (deleted by hand, by another tool, or expired) is added again at once,
announced, logged and counted (vips_restored); failed requests are retried with backoff. With
vip_lease (default 5 s) VIPs carry kernel lifetimes refreshed from the loop, so they leave the
interface by themselves within the lease when the daemon is killed or frozen.

The loop never waits: sockets are read with a per-turn budget (64 datagrams), and after a
stall (a timer overdue by more than 5 ms, e.g. after SIGSTOP) queued adverts are read before
any timer fires; Master_Down timers count from each advert's kernel arrival time when it is
younger than 5 ms, and from the moment it is read otherwise (the safe side after a stall). A
backup's timers carry a priority-ordered offset of 16 µs × (256-priority)² / 256 (at most
4.1 ms), so that when Skew_Time rounds to zero only the highest-priority backup takes over.";

const CHECK_ABOUT: &str = "\
Validate a configuration file: print a short summary and exit 0, or print every error as
FILE:LINE:COLUMN: and exit 1.";

const FENCE_ABOUT: &str = "\
Run the [[fence]] device of the cluster node NODE (its fence key in relevo.toml(5)) directly,
without the daemon: to test a device, or to power a node off by hand. --action is off (power
off, done only once the device reports the power off), reboot (power cycle), on or status
(print the power state); default: the device's action.

Prints one line such as \"n2 (device n2-bmc, ipmi 192.0.2.202:623): power is on\", and exits 0;
or prints one line with the error and exits 1: wrong credentials (authentication failed), a
BMC that does not answer (unreachable), a BMC that never reports the power off (timeout), a
fence agent that fails (its exit status and last line of standard error) or hangs (killed at
the device's timeout). Every outcome comes within the device's timeout. A node with
fence = \"none\" has no device: exit 1.";

const STATUS_ABOUT: &str = "\
Ask the running daemon over its control socket (the configuration's control_socket, default
/run/relevo/relevo.sock; see relevo-control(7)) and print the node's log_lines_dropped and
control_refused counters, then every instance: interface, VRID, version, priority, state, the
master it follows, its VIPs, its effective priority when its tracks changed it (with the
tracks that did), each of its tracks (state, what it applies, the last result) and its packet
counters (adverts sent and received, drops by reason: bad_ttl, bad_checksum, bad_length,
version_mismatch, auth_mismatch, interval_mismatch, unknown_peer, ...); in cluster mode the
quorum, every other node with its links and fence, every group with its state, owner and
failing tracks, and the heartbeat counters.

--json prints the daemon's JSON reply as is (its fields: relevo-control(7)). An error reply
from the daemon, such as a refused connection, is printed as well and status exits 1.";

const DEMO_ABOUT: &str = "\
A live failover demo in network namespaces, in two parts (both by default, VRRP first; vrrp or
cluster runs one), each with a client whose 1 ms probe measures every outage.

The VRRP part builds three nodes on a bridge, starts three daemons, and shows the election, a
crash of the master (SIGKILL, the node cut off at once), the old master's return and
preemption, and a graceful handover (SIGTERM).

The cluster part builds three nodes with two heartbeat links each and runs one resource group
web (a VIP and one resource app, preferring n1, then n2, then n3) with keepalive 20 ms,
deadtime 100 ms and takeover_delay 150 ms; the resource's start/stop hook is a script the demo
writes in a root-owned directory under /run (strict hook_security refuses /tmp) that records
each run and whether the VIP was up. It shows the election, a crash of the owner (the next
node acquires after deadtime and takeover_delay), the owner's return (a planned handover back,
as auto_failback wants) and a graceful stop of the owner (a planned handover), and after each
step where the resource runs and which hooks ran; at the end it checks that every start ran
with the VIP up, every stop with the VIP still up, and that the resource never ran on two
nodes at once. After each step a line lists the hooks it ran, e.g.
\"hooks: stop n2 (VIP up) -> start n1 (VIP up)\". A run of the cluster part ends like this:

  step event                                  outage   lost  VIP on    resource on
  1    crash n1 (SIGKILL + cut off)         259.3 ms    255  n2        n2
  2    n1 reboots, web fails back            33.9 ms     34  n1        n1
  3    stop n1 gracefully (SIGTERM)           2.0 ms      2  n2        n2

  order kept in all 7 hook runs: the VIP was up before every start and still up
    during every stop; app never ran on two nodes at once

Needs root and iproute2; removes its namespaces, processes and files on exit and on Ctrl-C.";

/// `relevo`: the daemon and its CLI.
#[derive(Parser)]
#[command(
    name = "relevo",
    version,
    about = "Sub-second failover of virtual IPs (VRRP v2/v3, IPv4/IPv6)",
    long_about = LONG_ABOUT,
    after_long_help = AFTER_LONG_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (logs to stderr; RELEVO_LOG=debug for more).
    #[command(long_about = RUN_ABOUT)]
    Run {
        /// Configuration file.
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Validate a configuration file: prints a summary and exits 0, or the errors and exits 1.
    #[command(long_about = CHECK_ABOUT)]
    Check {
        /// Configuration file.
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Fence a cluster node through its [[fence]] device, directly (without the daemon): test
    /// a device, or power a node off by hand. Exits 0 on success, 1 with the error.
    #[command(long_about = FENCE_ABOUT)]
    Fence {
        /// The [[cluster.node]] name.
        node: String,
        /// What to do; default: the device's `action` (off or reboot).
        #[arg(long, value_enum)]
        action: Option<FenceActionArg>,
        /// Configuration file.
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Show the running daemon's instances: state, master, VIPs, packet counters.
    #[command(long_about = STATUS_ABOUT)]
    Status {
        /// Configuration file (to find the control socket).
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Control socket path (overrides the one in the configuration).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Print the daemon's JSON reply as is.
        #[arg(long)]
        json: bool,
    },
    /// The daemon's event history: transitions with their reasons, hook runs, operator
    /// actions (oldest first, the last 1000).
    Events {
        /// Keep printing new events as they happen, in order.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Release everything this node holds, gracefully (VIPs kept until the next owner has
    /// them), and stay a standby until `relevo takeover`.
    Standby {
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Compete again after standby or a switchover (heartbeat's scopes: local = groups that
    /// prefer this node and every VRRP instance, foreign = the other groups, all, failback =
    /// local). Refused when this node is not healthy (no quorum, a fence pending) unless
    /// --force.
    Takeover {
        #[arg(value_enum, default_value = "all")]
        scope: TakeoverScope,
        /// Take over even though this node is not healthy.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Maintenance: `on` hands everything over with no downtime and keeps this node out,
    /// across restarts (a flag under state_dir), until `off`.
    Maintenance {
        #[arg(value_enum)]
        mode: OnOff,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Planned move of one VRRP instance (this node must be its master) or group (this node
    /// must hold it); this node stays out of it until `relevo takeover`.
    Switchover {
        /// The instance or group.
        name: String,
        /// Groups: the node it must go to (refused if another node would take it).
        #[arg(long)]
        to: Option<String>,
        /// Release a group even if no other node can take it.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Reload the configuration file: an invalid one is refused with its line and column and
    /// the running one stays; a valid one is applied as a diff (unchanged instances untouched,
    /// priority, preemption, hooks and GARP settings changed in place, removed instances
    /// released gracefully, new ones started). Changes to [node], the cluster, or an
    /// instance's interface, VRID, version, VIPs or timers need a restart: such a reload is
    /// refused as a whole. Same as SIGHUP.
    Reload {
        /// Only validate and show what would change.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Convert a keepalived.conf to a Relevo config (stdout, or -o FILE): vrrp_instance
    /// (interface, virtual_router_id, priority, state, advert_int, version, nopreempt,
    /// preempt_delay, virtual_ipaddress, unicast_peer, unicast_src_ip, PASS authentication,
    /// notify scripts, garp settings, use_vmac) and global_defs (router_id, vrrp_version,
    /// vrrp_garp_*); every other option is listed on stderr with its line. Exits 0 when a
    /// config was produced, 1 when the file cannot be read or parsed.
    ImportKeepalived {
        /// The keepalived.conf to convert.
        file: PathBuf,
        /// Write the config to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Live failover demo in network namespaces (needs root and iproute2): VRRP, then a
    /// cluster with a resource group.
    #[command(long_about = DEMO_ABOUT)]
    Demo {
        /// Run only this part (default: both, VRRP first).
        #[arg(value_enum)]
        part: Option<crate::lab::demo::DemoPart>,
    },
    /// Client-side outage probe used by the demo and the benchmarks (runs in a namespace).
    #[command(hide = true)]
    Probe(crate::lab::probe::ProbeArgs),
}

/// How the CLI reaches the daemon.
#[derive(clap::Args)]
pub struct ControlArgs {
    /// Configuration file (to find the control socket).
    #[arg(short, long, default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Control socket path (overrides the one in the configuration).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Print the daemon's JSON as is.
    #[arg(long)]
    pub json: bool,
}

impl ControlArgs {
    pub fn socket(&self) -> PathBuf {
        crate::control_client::socket_path(&self.config, self.socket.clone())
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TakeoverScope {
    Local,
    Foreign,
    All,
    Failback,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// `relevo fence --action`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FenceActionArg {
    Off,
    Reboot,
    On,
    Status,
}

impl From<FenceActionArg> for crate::fence::FenceOp {
    fn from(action: FenceActionArg) -> Self {
        match action {
            FenceActionArg::Off => Self::Off,
            FenceActionArg::Reboot => Self::Reboot,
            FenceActionArg::On => Self::On,
            FenceActionArg::Status => Self::Status,
        }
    }
}

/// The clap command (for the manual page and completion generators, and tests).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
