//! The lab topology: N node namespaces and one client namespace, each with an `eth0` veth whose
//! peer is a port of a bridge in a bridge namespace; fault injection on links and ports;
//! spawning of processes inside namespaces (own process group, killed with the lab); teardown of
//! every namespace and process on `Drop`. [`Topology`] says how the hosts are joined: one
//! segment (the default), one segment that floods no multicast, two segments and a router, or
//! two links per node (cluster heartbeats).
//!
//! Names: lab id `rl<tag>-<pid>-<n>`; namespaces `<id>-br`, `<id>-n1`..`<id>-nN`, `<id>-cl`,
//! `<id>-rt` (router); interfaces `eth0` in hosts (`eth0`, `eth1` in the router), bridges `br0`
//! (and `br1`) and ports `p1`..`pN`, `pcl`, `pr0`, `pr1` in the bridge namespace (all interfaces
//! are created inside the namespaces, so nothing ever appears in the host's). Hook scripts go in
//! `/run/relevo-test-<id>` ([`Lab::hook_dir`]).
use crate::lab::relevo_node::{HookDir, HOOK_DIR_PARENT, HOOK_DIR_PREFIX};
use crate::lab::util::{sleep_checked, wait_until};
use anyhow::{anyhow, bail, Context, Result};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest node count: node numbers end up in a MAC byte and an address octet.
const MAX_NODES: usize = 60;
/// How long to wait for IPv6 link-local addresses to become usable.
const LINK_LOCAL_TIMEOUT: Duration = Duration::from_secs(5);

static LAB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// How the lab's hosts are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Topology {
    /// Every node and the client on bridge `br0`: 192.0.2.0/24 and 2001:db8::/64.
    #[default]
    OneSegment,
    /// One segment like [`Topology::OneSegment`] whose bridge floods no multicast to any port
    /// (`mcast_flood off`), like a cloud network: unicast and ARP broadcasts get through,
    /// VRRP's 224.0.0.18 reaches nobody. IPv4 only (IPv6 neighbour discovery is multicast).
    NoMulticast,
    /// Two segments joined by a router namespace (`<id>-rt`, forwarding on): odd nodes and the
    /// client on `br0` (192.0.2.0/24, 2001:db8::/64, router .1 / ::1), even nodes on `br1`
    /// (198.51.100.0/24, 2001:db8:0:1::/64, router .1 / ::1); every host's default route
    /// points at the router. Link-local multicast such as VRRP's is never routed.
    Routed,
    /// Two links per node, for cluster heartbeats: every node's `eth0` and the client on `br0`
    /// as in [`Topology::OneSegment`], and every node's `eth1` on `br1` (198.51.100.(10+i),
    /// 2001:db8:0:1::(10+i), bridge ports `q1`..`qN`), a second network the client is not on.
    TwoLinks,
}

/// One segment's addressing: hosts get `<prefix>.(10+i)` / `<prefix6>::(10+i)`, the router .1.
#[derive(Debug, Clone, Copy)]
struct Segment {
    bridge: &'static str,
    /// The first three octets of the /24.
    ipv4: [u8; 3],
    /// The fourth 16-bit group of the /64 (2001:db8:0:<group>::/64).
    ipv6_group: u16,
}

const SEGMENTS: [Segment; 2] = [
    Segment {
        bridge: "br0",
        ipv4: [192, 0, 2],
        ipv6_group: 0,
    },
    Segment {
        bridge: "br1",
        ipv4: [198, 51, 100],
        ipv6_group: 1,
    },
];

impl Segment {
    fn host_ipv4(&self, host: u8) -> Ipv4Addr {
        let [a, b, c] = self.ipv4;
        Ipv4Addr::new(a, b, c, host)
    }

    fn host_ipv6(&self, last_group: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, self.ipv6_group, 0, 0, 0, last_group)
    }

    fn router_ipv4(&self) -> Ipv4Addr {
        self.host_ipv4(1)
    }

    fn router_ipv6(&self) -> Ipv6Addr {
        self.host_ipv6(1)
    }
}

/// Process groups spawned by one lab and not reaped yet (shared with every [`LabProcess`]).
type Registry = Arc<Mutex<BTreeSet<i32>>>;

/// Fails with an operator-readable message when the lab cannot run here: not root, or no `ip`.
pub fn check_prerequisites() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("relevo demo needs root (it creates network namespaces): run it with sudo");
    }
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => bail!(
            "the `ip` command (iproute2) does not work here ({}): apt-get install iproute2",
            out.status
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("the `ip` command (iproute2) is not installed: apt-get install iproute2")
        }
        Err(e) => Err(e).context("running `ip -V`"),
    }
}

/// One lab: namespaces, the bridge, and every process spawned in them. Dropping it (or
/// [`Lab::destroy`]) SIGKILLs those processes and deletes the namespaces and the work dir.
pub struct Lab {
    id: String,
    nodes: usize,
    topology: Topology,
    work_dir: PathBuf,
    namespaces: Vec<String>,
    registry: Registry,
    /// Nodes whose bridge port (`.0`) or own eth0 (`.1`) the lab has taken down.
    disconnected: Mutex<(BTreeSet<usize>, BTreeSet<usize>)>,
    /// Made on the first [`Lab::hook_dir`].
    hook_dir: Mutex<Option<HookDir>>,
    torn_down: bool,
}

impl Lab {
    /// Builds a lab with `nodes` nodes (1..=60) and a client, all on one bridge, addresses
    /// assigned, IPv6 link-locals usable. `tag` (a few letters) makes the names recognisable.
    pub fn create(tag: &str, nodes: usize) -> Result<Lab> {
        Lab::create_with(tag, nodes, Topology::OneSegment)
    }

    /// Like [`Lab::create`], with the hosts joined as `topology` says.
    pub fn create_with(tag: &str, nodes: usize, topology: Topology) -> Result<Lab> {
        check_prerequisites()?;
        if nodes == 0 || nodes > MAX_NODES {
            bail!("a lab has 1..={MAX_NODES} nodes, not {nodes}");
        }
        sweep_stale_labs();
        let id = lab_id(tag);
        let work_dir = PathBuf::from("/tmp").join(&id);
        let mut lab = Lab {
            id,
            nodes,
            topology,
            work_dir,
            namespaces: Vec::new(),
            registry: Arc::default(),
            disconnected: Mutex::default(),
            hook_dir: Mutex::default(),
            torn_down: false,
        };
        // Any failure below drops `lab`, which removes what was already made.
        lab.make_work_dir()?;
        lab.build_bridges()?;
        for host in lab.hosts() {
            lab.build_host(&host)
                .with_context(|| format!("setting up namespace {}", host.ns))?;
        }
        if topology == Topology::Routed {
            lab.build_router()
                .context("setting up the router namespace")?;
        }
        for segment in lab.segments() {
            lab.ip(&lab.bridge_ns(), &["link", "set", segment.bridge, "up"])?;
        }
        lab.wait_link_locals()?;
        Ok(lab)
    }

    /// The unique lab id (prefix of every namespace name, name of the work dir).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Number of nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Per-lab directory (0755) for configs, logs, pid files: `/tmp/<id>`.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// A [`HookDir`] for hook scripts, `/run/relevo-test-<id>`, made on first use and removed
    /// with the lab. Not the work dir: its parent /tmp is world-writable, and the daemon's
    /// default `hook_security` refuses hooks below group/world-writable directories.
    pub fn hook_dir(&self) -> Result<PathBuf> {
        let mut slot = lock(&self.hook_dir);
        let dir = match slot.take() {
            Some(dir) => dir,
            None => HookDir::named(&self.id)?,
        };
        let path = dir.path().to_path_buf();
        *slot = Some(dir);
        Ok(path)
    }

    /// Namespace holding bridge `br0`.
    pub fn bridge_ns(&self) -> String {
        format!("{}-br", self.id)
    }

    /// Namespace of node `i` (1-based).
    pub fn node_ns(&self, i: usize) -> String {
        format!("{}-n{i}", self.id)
    }

    /// Namespace of the client.
    pub fn client_ns(&self) -> String {
        format!("{}-cl", self.id)
    }

    /// Namespace of the router ([`Topology::Routed`] only).
    pub fn router_ns(&self) -> String {
        format!("{}-rt", self.id)
    }

    /// 192.0.2.(10+i); with [`Topology::Routed`] even nodes have 198.51.100.(10+i).
    pub fn node_ipv4(&self, i: usize) -> Ipv4Addr {
        self.node_segment(i).host_ipv4(10 + i as u8)
    }

    /// 2001:db8::(10+i), the decimal digits written as the last group (node 1: 2001:db8::11);
    /// with [`Topology::Routed`] even nodes have 2001:db8:0:1::(10+i).
    pub fn node_ipv6(&self, i: usize) -> Ipv6Addr {
        self.node_segment(i)
            .host_ipv6(decimal_as_hex(10 + i as u16))
    }

    /// The EUI-64 link-local address of node `i`'s eth0 (from its fixed MAC).
    pub fn node_link_local(&self, i: usize) -> Ipv6Addr {
        link_local_of(node_mac_bytes(i as u8))
    }

    /// The fixed MAC of node `i`'s eth0: 02:52:00:00:00:<i in hex>.
    pub fn node_mac(&self, i: usize) -> String {
        mac_text(node_mac_bytes(i as u8))
    }

    /// 192.0.2.200 (the client is on the first segment in every topology).
    pub fn client_ipv4(&self) -> Ipv4Addr {
        SEGMENTS[0].host_ipv4(200)
    }

    /// 2001:db8::200
    pub fn client_ipv6(&self) -> Ipv6Addr {
        SEGMENTS[0].host_ipv6(0x200)
    }

    /// Runs `argv` inside namespace `ns` (`ip netns exec`) and returns its output, whatever the
    /// exit status.
    pub fn exec(&self, ns: &str, argv: &[&str]) -> Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {argv:?} in namespace {ns}"))
    }

    /// Runs `ip -n <ns> <args>`, failing (with ip's stderr) on a non-zero exit; returns stdout.
    pub fn ip(&self, ns: &str, args: &[&str]) -> Result<String> {
        run_checked(Command::new("ip").args(["-n", ns]).args(args))
    }

    /// Spawns `argv` in namespace `ns` in its own process group, stdout and stderr appended to
    /// `log_file`. The process is SIGKILLed when the lab goes away (or its handle is dropped).
    pub fn spawn(&self, ns: &str, argv: &[&str], log_file: &Path) -> Result<LabProcess> {
        let log = open_log(log_file)?;
        let log_err = log
            .try_clone()
            .with_context(|| format!("duplicating {}", log_file.display()))?;
        self.spawn_with(
            ns,
            argv,
            Stdio::null(),
            Stdio::from(log),
            Stdio::from(log_err),
        )
    }

    /// Like [`Lab::spawn`] but with stdin and stdout piped (see [`LabProcess::take_stdin`],
    /// [`LabProcess::take_stdout`]); stderr goes to `stderr_log`.
    pub fn spawn_piped(&self, ns: &str, argv: &[&str], stderr_log: &Path) -> Result<LabProcess> {
        let log = open_log(stderr_log)?;
        self.spawn_with(ns, argv, Stdio::piped(), Stdio::piped(), Stdio::from(log))
    }

    fn spawn_with(
        &self,
        ns: &str,
        argv: &[&str],
        stdin: Stdio,
        stdout: Stdio,
        stderr: Stdio,
    ) -> Result<LabProcess> {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                // If the orchestrator dies hard, take the lab's processes with it.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("spawning {argv:?} in namespace {ns}"))?;
        let pid = child.id() as i32;
        lock(&self.registry).insert(pid);
        Ok(LabProcess {
            child,
            label: format!(
                "{} (pid {pid}, ns {ns})",
                argv.first().copied().unwrap_or("?")
            ),
            registry: Arc::clone(&self.registry),
            exit: None,
        })
    }

    /// Brings node `i`'s own eth0 down or up: the node sees its link go away ("link down").
    pub fn set_node_link(&self, i: usize, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        self.ip(&self.node_ns(i), &["link", "set", "eth0", state])
            .with_context(|| format!("setting node {i}'s eth0 {state}"))?;
        mark(&mut lock(&self.disconnected).1, i, !up);
        Ok(())
    }

    /// Node `i`'s address on its second link (`eth1`, [`Topology::TwoLinks`]): 198.51.100.(10+i).
    pub fn node_link2_ipv4(&self, i: usize) -> Ipv4Addr {
        SEGMENTS[1].host_ipv4(10 + i as u8)
    }

    /// Brings node `i`'s second-link bridge port (`q<i>`, [`Topology::TwoLinks`]) down or up: a
    /// cable pull on the heartbeat-only network.
    pub fn set_node_port2(&self, i: usize, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        let port = format!("q{i}");
        self.ip(&self.bridge_ns(), &["link", "set", &port, state])
            .with_context(|| format!("setting node {i}'s second bridge port {state}"))
            .map(drop)
    }

    /// Stops or resumes forwarding on every bridge port of node `i` (`p<i>`, and `q<i>` with
    /// [`Topology::TwoLinks`]) with the bridge port state (disabled / forwarding): the node is
    /// cut off on every link while its interfaces keep their carrier (a switch failure, not
    /// a cable pull, so the node does not see a link go down).
    pub fn set_node_blocked(&self, i: usize, blocked: bool) -> Result<()> {
        let state = if blocked { "0" } else { "3" };
        let mut ports = vec![format!("p{i}")];
        if self.topology == Topology::TwoLinks {
            ports.push(format!("q{i}"));
        }
        // Every port in one `bridge -batch` run, so that both links go at the same instant (a
        // node that dies loses them together), not a process start apart.
        let batch = self.work_dir.join(format!("block-n{i}.batch"));
        let lines: String = ports
            .iter()
            .map(|port| format!("link set dev {port} state {state}\n"))
            .collect();
        std::fs::write(&batch, lines).with_context(|| format!("writing {}", batch.display()))?;
        let batch_path = batch.to_string_lossy();
        let out = self.exec(&self.bridge_ns(), &["bridge", "-batch", &batch_path])?;
        if !out.status.success() {
            bail!(
                "setting bridge ports {ports:?} state {state}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        mark(&mut lock(&self.disconnected).0, i, blocked);
        Ok(())
    }

    /// Brings node `i`'s bridge port down or up: a cable pull. The node hears nothing and
    /// nobody hears it; its eth0 stays administratively up but loses its carrier (a veth whose
    /// peer is down), which the daemon sees. For a cut the node does not see, see
    /// [`Lab::set_node_blocked`].
    pub fn set_node_port(&self, i: usize, up: bool) -> Result<()> {
        let state = if up { "up" } else { "down" };
        let port = format!("p{i}");
        self.ip(&self.bridge_ns(), &["link", "set", &port, state])
            .with_context(|| format!("setting node {i}'s bridge port {state}"))?;
        mark(&mut lock(&self.disconnected).0, i, !up);
        Ok(())
    }

    /// Isolates node `i`'s bridge port (`bridge link set ... isolated on`): isolated ports
    /// reach the client's port but not each other, so isolating every node's port splits the
    /// nodes from each other while the client still reaches all of them.
    pub fn set_node_isolated(&self, i: usize, isolated: bool) -> Result<()> {
        let port = format!("p{i}");
        let state = if isolated { "on" } else { "off" };
        let out = self.exec(
            &self.bridge_ns(),
            &["bridge", "link", "set", "dev", &port, "isolated", state],
        )?;
        if !out.status.success() {
            bail!(
                "isolating node {i}'s bridge port: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Whether node `i`'s port and link are up (as far as this lab changed them).
    pub fn node_connected(&self, i: usize) -> bool {
        let disconnected = lock(&self.disconnected);
        !disconnected.0.contains(&i) && !disconnected.1.contains(&i)
    }

    /// Adds `cidr` (e.g. "192.0.2.100/24") to node `i`'s eth0.
    pub fn add_node_address(&self, i: usize, cidr: &str) -> Result<()> {
        let mut args = vec!["addr", "add", cidr, "dev", "eth0"];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(&self.node_ns(i), &args).map(drop)
    }

    /// Removes `cidr` from whichever interface of node `i` carries it (eth0, or a virtual-MAC
    /// macvlan); no error if it is not there.
    pub fn remove_node_address(&self, i: usize, cidr: &str) -> Result<()> {
        let ip = cidr.split('/').next().unwrap_or(cidr);
        let addr: IpAddr = ip
            .parse()
            .with_context(|| format!("bad address {cidr:?}"))?;
        let ns = self.node_ns(i);
        let found = self.addresses(&ns)?.into_iter().find(|a| a.ip == addr);
        if let Some(found) = found {
            self.ip(&ns, &["addr", "del", cidr, "dev", &found.ifname])?;
        }
        Ok(())
    }

    /// Whether node `i` currently carries `ip` on any interface: eth0, or the macvlan of a
    /// virtual-MAC instance (false if it cannot be read).
    pub fn node_has_address(&self, i: usize, ip: IpAddr) -> bool {
        self.addresses(&self.node_ns(i))
            .map(|addrs| addrs.iter().any(|a| a.ip == ip))
            .unwrap_or(false)
    }

    /// Every node that carries `vip`, connected or not (a crashed node that was cut off
    /// still has its VIP on the interface, but nobody can reach it).
    pub fn holders(&self, vip: IpAddr) -> Vec<usize> {
        (1..=self.nodes)
            .filter(|&i| self.node_has_address(i, vip))
            .collect()
    }

    /// The connected nodes (see [`Lab::node_connected`]) that carry `vip`: who serves
    /// the VIP on the segment. More than one = split brain.
    pub fn masters(&self, vip: IpAddr) -> Vec<usize> {
        self.holders(vip)
            .into_iter()
            .filter(|&i| self.node_connected(i))
            .collect()
    }

    /// Waits until `node` is the only master (see [`Lab::masters`]) of `vip`; fails after
    /// `timeout` saying who holds it.
    pub fn wait_master(&self, vip: IpAddr, node: usize, timeout: Duration) -> Result<()> {
        let result = wait_until(timeout, Duration::from_millis(20), "the VIP owner", || {
            Ok(self.masters(vip) == [node])
        });
        result.with_context(|| {
            format!(
                "expected node {node} alone to hold {vip}, holders: {:?}",
                self.masters(vip)
            )
        })
    }

    /// Kills every process and deletes every namespace and the work dir now.
    pub fn destroy(mut self) {
        self.teardown();
    }

    /// Addresses on every interface of namespace `ns`, from `ip -j addr show`.
    fn addresses(&self, ns: &str) -> Result<Vec<IfAddress>> {
        let json = self.ip(ns, &["-j", "addr", "show"])?;
        parse_addresses(&json)
    }

    /// The segment node `i` is on.
    fn node_segment(&self, i: usize) -> Segment {
        if self.topology == Topology::Routed && i % 2 == 0 {
            SEGMENTS[1]
        } else {
            SEGMENTS[0]
        }
    }

    /// The segments (bridges) this lab has.
    fn segments(&self) -> &'static [Segment] {
        match self.topology {
            Topology::Routed | Topology::TwoLinks => &SEGMENTS,
            Topology::OneSegment | Topology::NoMulticast => &SEGMENTS[..1],
        }
    }

    fn hosts(&self) -> Vec<Host> {
        let mut hosts: Vec<Host> = (1..=self.nodes)
            .map(|i| Host {
                ns: self.node_ns(i),
                port: format!("p{i}"),
                mac: node_mac_bytes(i as u8),
                ipv4: self.node_ipv4(i),
                ipv6: self.node_ipv6(i),
                segment: self.node_segment(i),
            })
            .collect();
        hosts.push(Host {
            ns: self.client_ns(),
            port: "pcl".to_string(),
            mac: node_mac_bytes(200),
            ipv4: self.client_ipv4(),
            ipv6: self.client_ipv6(),
            segment: SEGMENTS[0],
        });
        hosts
    }

    fn make_work_dir(&self) -> Result<()> {
        std::fs::create_dir_all(&self.work_dir)
            .with_context(|| format!("creating {}", self.work_dir.display()))?;
        // keepalived refuses notify scripts in world-writable directories.
        std::fs::set_permissions(&self.work_dir, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("chmod 0755 {}", self.work_dir.display()))
    }

    fn add_namespace(&mut self, ns: &str) -> Result<()> {
        run_checked(Command::new("ip").args(["netns", "add", ns]))
            .with_context(|| format!("creating namespace {ns}"))?;
        self.namespaces.push(ns.to_string());
        Ok(())
    }

    fn build_bridges(&mut self) -> Result<()> {
        let ns = self.bridge_ns();
        self.add_namespace(&ns)?;
        // The bridge namespace must stay silent (no IPv6 link-local, no router solicitations).
        write_sysctls(
            &ns,
            &[
                ("net/ipv6/conf/all/disable_ipv6", "1"),
                ("net/ipv6/conf/default/disable_ipv6", "1"),
            ],
        )?;
        for segment in self.segments() {
            self.ip(
                &ns,
                &[
                    "link",
                    "add",
                    segment.bridge,
                    "type",
                    "bridge",
                    "mcast_snooping",
                    "0",
                    "stp_state",
                    "0",
                    "forward_delay",
                    "0",
                ],
            )?;
        }
        self.ip(&ns, &["link", "set", "lo", "up"]).map(drop)
    }

    fn build_host(&mut self, host: &Host) -> Result<()> {
        let ns = &host.ns;
        self.add_namespace(ns)?;
        quiet_ipv6(ns, &["all", "default"])?;
        self.ip(ns, &["link", "set", "lo", "up"])?;
        self.plug(host, "eth0")?;
        if let Some(i) = self.second_link_node(host) {
            let second = Host {
                ns: ns.clone(),
                port: format!("q{i}"),
                mac: second_link_mac_bytes(i as u8),
                ipv4: self.node_link2_ipv4(i),
                ipv6: SEGMENTS[1].host_ipv6(decimal_as_hex(10 + i as u16)),
                segment: SEGMENTS[1],
            };
            self.plug(&second, "eth1")?;
        }
        if self.topology == Topology::Routed {
            let (via4, via6) = (host.segment.router_ipv4(), host.segment.router_ipv6());
            self.ip(ns, &["route", "add", "default", "via", &via4.to_string()])?;
            self.ip(
                ns,
                &["-6", "route", "add", "default", "via", &via6.to_string()],
            )?;
        }
        Ok(())
    }

    /// With [`Topology::TwoLinks`], the node number of a node host (the client has one link).
    fn second_link_node(&self, host: &Host) -> Option<usize> {
        if self.topology != Topology::TwoLinks {
            return None;
        }
        (1..=self.nodes).find(|&i| self.node_ns(i) == host.ns)
    }

    /// The router of [`Topology::Routed`]: `eth0` on br0 and `eth1` on br1, .1 / ::1 on each,
    /// forwarding IPv4 and IPv6.
    fn build_router(&mut self) -> Result<()> {
        let ns = self.router_ns();
        self.add_namespace(&ns)?;
        quiet_ipv6(&ns, &["all", "default"])?;
        write_sysctls(
            &ns,
            &[
                ("net/ipv4/ip_forward", "1"),
                ("net/ipv6/conf/all/forwarding", "1"),
            ],
        )?;
        self.ip(&ns, &["link", "set", "lo", "up"])?;
        for (index, segment) in SEGMENTS.iter().enumerate() {
            let side = Host {
                ns: ns.clone(),
                port: format!("pr{index}"),
                mac: router_mac_bytes(index as u8),
                ipv4: segment.router_ipv4(),
                ipv6: segment.router_ipv6(),
                segment: *segment,
            };
            self.plug(&side, &format!("eth{index}"))?;
        }
        Ok(())
    }

    /// Joins `host` to its segment: veth `ifname` in its namespace (quiet IPv6, its MAC, its
    /// addresses /24 and /64 without DAD) whose peer, `host.port` in the bridge namespace, is a
    /// port of the segment's bridge (flooding no multicast on [`Topology::NoMulticast`]); both
    /// ends up.
    fn plug(&self, host: &Host, ifname: &str) -> Result<()> {
        let (br, ns, port) = (self.bridge_ns(), host.ns.as_str(), host.port.as_str());
        self.ip(
            &br,
            &[
                "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns,
            ],
        )?;
        quiet_ipv6(ns, &[ifname])?;
        self.ip(ns, &["link", "set", ifname, "address", &mac_text(host.mac)])?;
        let v4 = format!("{}/24", host.ipv4);
        self.ip(ns, &["addr", "add", &v4, "dev", ifname])?;
        let v6 = format!("{}/64", host.ipv6);
        self.ip(ns, &["addr", "add", &v6, "dev", ifname, "nodad"])?;
        self.ip(&br, &["link", "set", port, "master", host.segment.bridge])?;
        if self.topology == Topology::NoMulticast {
            self.ip(
                &br,
                &[
                    "link",
                    "set",
                    port,
                    "type",
                    "bridge_slave",
                    "mcast_flood",
                    "off",
                ],
            )?;
        }
        self.ip(&br, &["link", "set", port, "up"])?;
        self.ip(ns, &["link", "set", ifname, "up"]).map(drop)
    }

    fn wait_link_locals(&self) -> Result<()> {
        for host in self.hosts() {
            let expected = link_local_of(host.mac);
            let what = format!("link-local {expected} in {}", host.ns);
            wait_until(LINK_LOCAL_TIMEOUT, Duration::from_millis(10), &what, || {
                let addrs = self.addresses(&host.ns)?;
                Ok(addrs
                    .iter()
                    .any(|a| a.ip == IpAddr::V6(expected) && !a.tentative))
            })?;
        }
        Ok(())
    }

    fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        let groups: Vec<i32> = lock(&self.registry).iter().copied().collect();
        for &pgid in &groups {
            // The leader is not reaped yet (the registry says so): its pgid cannot be reused.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        wait_processes_dead(&groups, Duration::from_secs(2));
        for ns in self.namespaces.iter().rev() {
            let deleted = run_checked(Command::new("ip").args(["netns", "del", ns]));
            if let Err(e) = deleted {
                eprintln!("warning: could not delete namespace {ns}: {e:#}");
            }
        }
        self.namespaces.clear();
        let hook_dir = lock(&self.hook_dir).take();
        if !keep_lab_dirs() {
            let _ = std::fs::remove_dir_all(&self.work_dir);
            drop(hook_dir);
        } else {
            // Kept with the work dir (the configs name the hooks): no Drop, which removes it.
            std::mem::forget(hook_dir);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// A process spawned in a lab namespace, leader of its own process group. Dropping the handle
/// SIGKILLs the group and reaps the leader.
pub struct LabProcess {
    child: Child,
    label: String,
    registry: Registry,
    exit: Option<ExitStatus>,
}

impl LabProcess {
    /// The process id (also its process group id). `ip netns exec` execs the target, so this is
    /// the program itself.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Human-readable name used in errors.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Sends `signal` to the process (not its group).
    pub fn signal(&mut self, signal: Signal) -> Result<()> {
        if self.reap_if_exited().is_some() {
            bail!("{} has already exited", self.label);
        }
        kill(Pid::from_raw(self.pid()), signal)
            .with_context(|| format!("sending {signal} to {}", self.label))
    }

    /// Sends `signal` to the whole process group in one system call.
    pub fn signal_group(&mut self, signal: Signal) -> Result<()> {
        if self.reap_if_exited().is_some() {
            bail!("{} has already exited", self.label);
        }
        killpg(Pid::from_raw(self.pid()), signal)
            .with_context(|| format!("sending {signal} to the group of {}", self.label))
    }

    /// SIGKILLs the whole group and reaps the leader.
    pub fn kill_wait(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
        let status = self
            .child
            .wait()
            .with_context(|| format!("waiting for {}", self.label))?;
        self.mark_reaped(status);
        Ok(status)
    }

    /// True while the leader has not exited.
    pub fn is_running(&mut self) -> bool {
        self.reap_if_exited().is_none()
    }

    /// Waits up to `timeout` for the leader to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.reap_if_exited() {
                return Ok(Some(status));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            sleep_checked(Duration::from_millis(2))?;
        }
    }

    /// The piped stdin (only for [`Lab::spawn_piped`], once).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// The piped stdout (only for [`Lab::spawn_piped`], once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Reaps the leader if it exited, first SIGKILLing whatever is left of its group (while the
    /// zombie still pins the pgid, so no unrelated process can be hit).
    fn reap_if_exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_some() {
            return self.exit;
        }
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(Pid::from_raw(self.pid())), flags) {
            Ok(WaitStatus::StillAlive) => None,
            _ => {
                let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
                match self.child.try_wait() {
                    Ok(Some(status)) => {
                        self.mark_reaped(status);
                        Some(status)
                    }
                    _ => None,
                }
            }
        }
    }

    fn mark_reaped(&mut self, status: ExitStatus) {
        self.exit = Some(status);
        lock(&self.registry).remove(&(self.child.id() as i32));
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        let _ = self.kill_wait();
    }
}

/// Runs `f` on a new thread that has entered namespace `ns` (network namespaces are per
/// thread), returning its result.
pub fn in_netns<T, F>(ns: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let path = Path::new("/run/netns").join(ns);
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let name = ns.to_string();
    std::thread::Builder::new()
        .name(format!("netns {ns}"))
        .spawn(move || {
            nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
                .with_context(|| format!("entering namespace {name}"))?;
            f()
        })
        .context("spawning a namespace thread")?
        .join()
        .map_err(|_| anyhow!("a thread in namespace {ns} panicked"))?
}

/// No DAD, no RA/RS traffic, static IPv6 addresses kept across link down/up, for each
/// `net/ipv6/conf/<scope>` of namespace `ns`.
fn quiet_ipv6(ns: &str, scopes: &[&str]) -> Result<()> {
    let mut values = Vec::new();
    for scope in scopes {
        for (key, value) in [
            ("accept_dad", "0"),
            ("accept_ra", "0"),
            ("router_solicitations", "0"),
            ("keep_addr_on_down", "1"),
        ] {
            values.push((format!("net/ipv6/conf/{scope}/{key}"), value));
        }
    }
    write_sysctls_owned(ns, values)
}

/// Writes `/proc/sys/<key>` values inside namespace `ns`.
fn write_sysctls(ns: &str, values: &[(&str, &'static str)]) -> Result<()> {
    let owned = values
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect::<Vec<_>>();
    write_sysctls_owned(ns, owned)
}

fn write_sysctls_owned(ns: &str, values: Vec<(String, &'static str)>) -> Result<()> {
    in_netns(ns, move || {
        for (key, value) in &values {
            let path = Path::new("/proc/sys").join(key);
            std::fs::write(&path, value)
                .with_context(|| format!("writing {value} to {}", path.display()))?;
        }
        Ok(())
    })
}

/// One address of an interface as `ip -j addr` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IfAddress {
    ip: IpAddr,
    tentative: bool,
    /// The interface that carries it.
    ifname: String,
}

fn parse_addresses(json: &str) -> Result<Vec<IfAddress>> {
    let value: serde_json::Value =
        serde_json::from_str(json).context("parsing `ip -j addr` output")?;
    let links = value.as_array().context("`ip -j addr`: not a list")?;
    let mut out = Vec::new();
    for link in links {
        let Some(infos) = link.get("addr_info").and_then(|v| v.as_array()) else {
            continue;
        };
        let ifname = link
            .get("ifname")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        for info in infos {
            let Some(ip) = info
                .get("local")
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let flag = |name: &str| info.get(name).and_then(|v| v.as_bool()).unwrap_or(false);
            out.push(IfAddress {
                ip,
                tentative: flag("tentative") || flag("dadfailed"),
                ifname: ifname.to_string(),
            });
        }
    }
    Ok(out)
}

struct Host {
    ns: String,
    port: String,
    mac: [u8; 6],
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
    segment: Segment,
}

fn lab_id(tag: &str) -> String {
    let tag: String = tag
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_lowercase())
        .take(4)
        .collect();
    let n = LAB_COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("rl{tag}-{}-{n}", std::process::id())
}

/// Whether labs keep their work and hook dirs (`RELEVO_LAB_KEEP`, for a post-mortem).
fn keep_lab_dirs() -> bool {
    std::env::var_os("RELEVO_LAB_KEEP").is_some()
}

/// Deletes namespaces and work dirs left behind by labs whose process no longer exists (a
/// test run killed by a timeout cannot run `Drop`); with `RELEVO_LAB_KEEP` only namespaces,
/// else the next test binary would delete the dirs the earlier ones kept. Only names of the
/// exact lab format `rl<letters>-<pid>-<n>[-<host>]` with a dead `<pid>` are touched.
fn sweep_stale_labs() {
    let listed = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    for ns in listed
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        if stale_lab_owner(ns).is_some() && seen.insert(ns.to_string()) {
            let _ = run_checked(Command::new("ip").args(["netns", "del", ns]));
        }
    }
    if keep_lab_dirs() {
        return;
    }
    for (dir, prefix) in [("/tmp", ""), (HOOK_DIR_PARENT, HOOK_DIR_PREFIX)] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = name
                .strip_prefix(prefix)
                .is_some_and(|lab| stale_lab_owner(lab).is_some());
            if stale && entry.path().is_dir() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// The pid in a lab name (`rl<letters>-<pid>-<n>` optionally followed by `-<host>`) if that
/// process is gone.
fn stale_lab_owner(name: &str) -> Option<u32> {
    let mut parts = name.split('-');
    let prefix = parts.next()?;
    let tag = prefix.strip_prefix("rl")?;
    if tag.len() > 4 || !tag.chars().all(|c| c.is_ascii_lowercase()) {
        return None;
    }
    let pid: u32 = parts.next()?.parse().ok()?;
    parts.next()?.parse::<usize>().ok()?;
    let host_ok = match parts.next() {
        None => true,
        Some(host) => {
            host == "br"
                || host == "cl"
                || host == "rt"
                || host
                    .strip_prefix('n')
                    .is_some_and(|n| n.parse::<usize>().is_ok())
        }
    };
    if !host_ok || parts.next().is_some() {
        return None;
    }
    let alive = Path::new("/proc").join(pid.to_string()).exists();
    (!alive && pid != std::process::id()).then_some(pid)
}

fn node_mac_bytes(n: u8) -> [u8; 6] {
    [0x02, 0x52, 0x00, 0x00, 0x00, n]
}

/// Node `n`'s second link (`eth1`, [`Topology::TwoLinks`]): 02:52:00:00:02:<n>.
fn second_link_mac_bytes(n: u8) -> [u8; 6] {
    [0x02, 0x52, 0x00, 0x00, 0x02, n]
}

/// The router's interface `eth<n>`: 02:52:00:00:01:<n>.
fn router_mac_bytes(n: u8) -> [u8; 6] {
    [0x02, 0x52, 0x00, 0x00, 0x01, n]
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// fe80::/64 + modified EUI-64 of `mac`.
fn link_local_of(mac: [u8; 6]) -> Ipv6Addr {
    let word = |hi: u8, lo: u8| (u16::from(hi) << 8) | u16::from(lo);
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        word(mac[0] ^ 0x02, mac[1]),
        word(mac[2], 0xff),
        word(0xfe, mac[3]),
        word(mac[4], mac[5]),
    )
}

/// 11 -> 0x11: writes a decimal number's digits as a hexadecimal group.
fn decimal_as_hex(n: u16) -> u16 {
    u16::from_str_radix(&n.to_string(), 16).unwrap_or(n)
}

fn open_log(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening log {}", path.display()))
}

fn run_checked(command: &mut Command) -> Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits until no live (non-zombie) process is left in any of the process groups `pgids`, at
/// most `timeout` (SIGKILL is delivered asynchronously).
fn wait_processes_dead(pgids: &[i32], timeout: Duration) {
    if pgids.is_empty() {
        return;
    }
    let end = Instant::now() + timeout;
    while pgids.iter().any(|&pgid| !group_members(pgid).is_empty()) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The live (not zombie) processes of process group `pgid`, from /proc.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parse_state_and_pgrp(&stat))
                .is_some_and(|(state, pgrp)| state != "Z" && state != "X" && pgrp == pgid)
        })
        .collect()
}

/// (state, pgrp) from the text of /proc/<pid>/stat.
fn parse_state_and_pgrp(stat: &str) -> Option<(String, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.to_string();
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

fn mark(set: &mut BTreeSet<usize>, node: usize, present: bool) {
    if present {
        set.insert(node);
    } else {
        set.remove(&node);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_addresses() {
        let id = lab_id("Topo!42");
        assert!(id.starts_with("rltopo-"), "{id}");
        assert_ne!(lab_id("x"), lab_id("x"));
        assert_eq!(mac_text(node_mac_bytes(1)), "02:52:00:00:00:01");
        assert_eq!(
            link_local_of(node_mac_bytes(1)),
            "fe80::52:ff:fe00:1".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(decimal_as_hex(11), 0x11);
    }

    #[test]
    fn recognises_only_dead_lab_names() {
        // pid 4194304 is above the kernel's maximum: never alive.
        assert_eq!(stale_lab_owner("rltopo-4194304-0-br"), Some(4194304));
        assert_eq!(stale_lab_owner("rlunic-4194304-3-rt"), Some(4194304));
        assert_eq!(stale_lab_owner("rl-4194304-12-n3"), Some(4194304));
        assert_eq!(stale_lab_owner("rldemo-4194304-1"), Some(4194304));
        assert_eq!(stale_lab_owner("rltopo-4194304-0-x"), None);
        assert_eq!(stale_lab_owner("rltoolong-4194304-0-br"), None);
        assert_eq!(stale_lab_owner("ian1"), None);
        assert_eq!(stale_lab_owner("rltopo-4194304-0-n1-extra"), None);
        let own = format!("rltopo-{}-0-br", std::process::id());
        assert_eq!(stale_lab_owner(&own), None);
        assert_eq!(stale_lab_owner("rltopo-1-0-br"), None);
    }

    #[test]
    fn parses_proc_stat_state_and_group() {
        let stat = "12 (sl) ee) S 1 12 12 0 -1";
        assert_eq!(parse_state_and_pgrp(stat), Some(("S".to_string(), 12)));
        assert_eq!(parse_state_and_pgrp("12 (x) S 1"), None);
        assert_eq!(parse_state_and_pgrp("garbage"), None);
    }

    #[test]
    fn parses_ip_json() {
        let json = r#"[{"ifindex":2,"ifname":"eth0","addr_info":[
            {"family":"inet","local":"192.0.2.11","prefixlen":24},
            {"family":"inet6","local":"fe80::52:ff:fe00:1","prefixlen":64,"scope":"link","tentative":true},
            {"family":"inet6","local":"2001:db8::11","prefixlen":64}]}]"#;
        let addrs = parse_addresses(json).unwrap();
        assert_eq!(addrs.len(), 3);
        assert!(addrs[1].tentative);
        assert!(!addrs[2].tentative);
        assert!(parse_addresses("{").is_err());
        assert!(parse_addresses("{}").is_err());
        assert!(parse_addresses("[]").unwrap().is_empty());
    }
}
