//! Shared by the namespace test binaries: the guards of tests that need root or keepalived (fail
//! without them unless skipping is asked for, always under CI=true), one lab at a time per test
//! binary, relevo node starters and their status, hook scripts, hand-made adverts, polling.
#![allow(dead_code)]
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use relevo::lab::netns::{in_netns, Lab};
use relevo::lab::relevo_node::{InstanceStatus, RelevoNode, VrrpInstance};
use relevo::lab::{test_guard, Requirement, Topology};
use relevo::wire::vrrp::{AdvertRepr, V2Auth};
use relevo::wire::{V3Ipv4Checksum, VrrpVersion};

static SERIAL: Mutex<()> = Mutex::new(());

/// Whether `test`, which needs root, runs here: true as root; false after "<test>: SKIPPED
/// (not root)" when RELEVO_SKIP_ROOT_TESTS=1 (outside CI); otherwise the test fails, saying
/// how to run it as root.
pub fn needs_root(test: &str) -> bool {
    guard(test, Requirement::Root)
}

/// [`needs_root`], and keepalived installed (else fails, or skips with
/// RELEVO_SKIP_KEEPALIVED_TESTS=1 outside CI).
pub fn needs_root_and_keepalived(test: &str) -> bool {
    needs_root(test) && guard(test, Requirement::Keepalived)
}

/// [`needs_root`], and FRR installed (else fails, or skips with RELEVO_SKIP_FRR_TESTS=1
/// outside CI).
pub fn needs_root_and_frr(test: &str) -> bool {
    needs_root(test) && guard(test, Requirement::Frr)
}

/// The guard under the running test's own name (the harness names each test's thread after
/// it), `test` when there is none.
fn guard(test: &str, requirement: Requirement) -> bool {
    let thread = std::thread::current();
    let name = thread.name().filter(|n| *n != "main").unwrap_or(test);
    test_guard(name, requirement).unwrap_or_else(|e| panic!("{e:#}"))
}

/// What a test run in a child process of this test binary did (see [`run_own_test`]).
pub struct ChildRun {
    pub pid: u32,
    pub passed: bool,
    /// stdout and stderr.
    pub output: String,
}

/// Runs test `name` of this very test binary in a child process (`--exact`, on a thread named
/// after the test, as the guards expect), with `CI` and the
/// skip variables removed from its environment and `env` set; as user nobody (`setpriv`) when
/// `as_nobody`, through a copy of the binary in a 0755 directory (the build tree may sit below
/// one that other users cannot enter). Panics unless the child ran exactly that one test.
pub fn run_own_test(name: &str, as_nobody: bool, env: &[(&str, &str)]) -> ChildRun {
    let exe = std::env::current_exe().expect("the test binary's path");
    let copy = as_nobody.then(|| {
        let dir = std::env::temp_dir().join(format!("relevo-own-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("a directory for the copy");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let copy = dir.join("test-binary");
        std::fs::copy(&exe, &copy).expect("copying the test binary");
        dir
    });
    let mut command = match &copy {
        Some(dir) => {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(dir.join("test-binary"));
            c
        }
        None => std::process::Command::new(&exe),
    };
    command
        .args(["--exact", name, "--nocapture", "--test-threads=2"])
        .env_remove("CI")
        .env_remove("RELEVO_SKIP_ROOT_TESTS")
        .env_remove("RELEVO_SKIP_KEEPALIVED_TESTS")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("starting the test binary");
    let pid = child.id();
    let out = child
        .wait_with_output()
        .expect("waiting for the test binary");
    if let Some(dir) = copy {
        let _ = std::fs::remove_dir_all(dir);
    }
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        output.contains("running 1 test"),
        "{name} did not run in the child:\n{output}"
    );
    ChildRun {
        pid,
        passed: out.status.success(),
        output,
    }
}

/// Holds the binary-wide lock: tests of one binary that use namespaces run one at a time, so
/// timing on a 2-core machine stays meaningful.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A lab for one test, built only as root (see [`needs_root`]), one at a time per binary.
pub struct TestLab {
    pub lab: Lab,
    _serial: MutexGuard<'static, ()>,
}

impl std::ops::Deref for TestLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

/// A one-segment lab with `nodes` nodes (`None`: skipped, see [`needs_root`]).
pub fn lab(test: &str, nodes: usize) -> Option<TestLab> {
    lab_with(test, nodes, Topology::OneSegment)
}

/// A lab whose hosts are joined as `topology` says.
pub fn lab_with(test: &str, nodes: usize, topology: Topology) -> Option<TestLab> {
    if !needs_root(test) {
        return None;
    }
    let serial = serial();
    let lab = Lab::create_with(test, nodes, topology)
        .unwrap_or_else(|e| panic!("building the namespace lab: {e:#}"));
    Some(TestLab {
        lab,
        _serial: serial,
    })
}

pub fn relevo_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_relevo"))
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The address of "ADDR/LEN" (or of a bare address).
pub fn ip(text: &str) -> IpAddr {
    relevo::lab::fault::vip_address(text).unwrap_or_else(|e| panic!("{e:#}"))
}

/// One VRRPv3 instance "web" on eth0.
pub fn instance(vrid: u8, priority: u8, interval: Duration, vips: &[&str]) -> VrrpInstance {
    VrrpInstance::new(vrid, priority, interval, vips)
}

pub fn start(lab: &Lab, node: usize, instance: VrrpInstance) -> RelevoNode {
    let config = RelevoNode::config_for(lab, node, instance);
    RelevoNode::start(lab, node, &relevo_bin(), &config)
        .unwrap_or_else(|e| panic!("starting relevo on n{node}: {e:#}"))
}

/// Polls `f` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(ms(10));
    }
}

/// Whether `f` holds during the whole of `period` (checked every 20 ms).
pub fn holds_for(period: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + period;
    while Instant::now() < end {
        if !f() {
            return false;
        }
        std::thread::sleep(ms(20));
    }
    true
}

pub fn log_of(path: &Path) -> String {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

/// The first line of `log` containing `needle`, as seconds within the minute (the log's
/// timestamps; compare two with `rem_euclid(60.0)` of their difference).
pub fn logged_at(log: &str, needle: &str) -> Option<f64> {
    log.lines()
        .find(|l| l.contains(needle))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| t.rsplit(':').next())
        .and_then(|secs| secs.trim_end_matches('Z').parse::<f64>().ok())
}

/// Every node's log, each after a header line with its path (for assertion messages).
pub fn logs(nodes: &[RelevoNode]) -> String {
    nodes
        .iter()
        .map(|n| format!("--- {}\n{}", n.log_path().display(), log_of(n.log_path())))
        .collect()
}

/// Waits until exactly `node` carries `vip`, panicking with every node's log otherwise.
pub fn expect_sole_holder(
    lab: &Lab,
    vip: IpAddr,
    node: usize,
    timeout: Duration,
    nodes: &[RelevoNode],
) {
    assert!(
        wait_for(timeout, || lab.holders(vip) == [node]),
        "expected n{node} alone to hold {vip}, holders {:?}\n{}",
        lab.holders(vip),
        logs(nodes)
    );
}

/// Waits until exactly `node` holds `vip`, panicking with every node's log otherwise.
pub fn expect_master<P: AsRef<Path>>(
    lab: &Lab,
    vip: IpAddr,
    node: usize,
    timeout: Duration,
    logs: &[P],
) {
    if let Err(e) = lab.wait_master(vip, node, timeout) {
        let mut text = String::new();
        for l in logs {
            let l = l.as_ref();
            text.push_str(&format!("\n--- {}\n{}", l.display(), log_of(l)));
        }
        panic!("{e:#}{text}");
    }
}

/// Instance "web" of `node` as `relevo status --json` reports it (panics if it cannot).
pub fn web_status(node: &RelevoNode) -> InstanceStatus {
    node.instance_status("web")
        .unwrap_or_else(|e| panic!("{e:#}\n{}", log_of(node.log_path())))
}

/// Polls `relevo status --json` of `node` until instance "web" satisfies `done`; returns that
/// status, or panics after `timeout` with `what`, the last status and the daemon's log.
pub fn wait_status(
    node: &RelevoNode,
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&InstanceStatus) -> bool,
) -> InstanceStatus {
    let mut last = None;
    let held = wait_for(timeout, || {
        let status = web_status(node);
        let ok = done(&status);
        last = Some(status);
        ok
    });
    let last = last.expect("polled at least once");
    assert!(
        held,
        "n{}: {what} not seen within {timeout:?}; last status {last:?}\n{}",
        node.node(),
        log_of(node.log_path())
    );
    last
}

/// Writes `/bin/sh` script `name` with `body` into `dir` (mode 0755, owned by the test's user:
/// root) and returns its path.
pub fn hook_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    relevo::lab::write_script(&path, body, 0o755).unwrap();
    path
}

/// A hook script in the lab's hook dir that appends one line per call to `out` (event, state,
/// previous state, reason, node, VIPs) and then runs `extra` (shell).
pub fn recording_hook(lab: &Lab, name: &str, out: &Path, extra: &str) -> PathBuf {
    let dir = lab.hook_dir().expect("the lab's hook dir");
    let body = format!(
        "echo \"$RELEVO_EVENT $RELEVO_STATE $RELEVO_PREV_STATE $RELEVO_REASON $RELEVO_NODE $RELEVO_VIPS\" >> {}\n{extra}",
        out.display()
    );
    hook_script(&dir, name, &body)
}

/// A hand-made VRRP advert (any field may be wrong on purpose) for IPv4.
#[derive(Debug, Clone)]
pub struct CraftedAdvert {
    pub version: VrrpVersion,
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds (v2: whole seconds × 100).
    pub interval_cs: u16,
    pub auth: V2Auth,
    pub vips: Vec<IpAddr>,
    pub checksum: V3Ipv4Checksum,
}

impl CraftedAdvert {
    /// A VRRPv3 advert with the RFC 5798 checksum.
    pub fn v3(vrid: u8, priority: u8, interval_cs: u16, vips: &[&str]) -> Self {
        CraftedAdvert {
            version: VrrpVersion::V3,
            vrid,
            priority,
            interval_cs,
            auth: V2Auth::None,
            vips: vips.iter().map(|v| ip(v)).collect(),
            checksum: V3Ipv4Checksum::PseudoHeader,
        }
    }

    /// A VRRPv2 advert, `interval_s` seconds, simple-text `password` if any.
    pub fn v2(
        vrid: u8,
        priority: u8,
        interval_s: u16,
        password: Option<&str>,
        vips: &[&str],
    ) -> Self {
        CraftedAdvert {
            version: VrrpVersion::V2,
            interval_cs: interval_s * 100,
            auth: password.map_or(V2Auth::None, V2Auth::from_password),
            ..CraftedAdvert::v3(vrid, priority, 0, vips)
        }
    }

    /// The VRRP message as sent from `src` to `dst` (a v3 checksum covers both).
    pub fn bytes(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let repr = AdvertRepr {
            version: self.version,
            vrid: self.vrid,
            priority: self.priority,
            interval_cs: self.interval_cs,
            auth: self.auth,
            addrs: &self.vips,
        };
        let mut buf = [0u8; 256];
        let n = repr
            .emit(IpAddr::V4(src), IpAddr::V4(dst), self.checksum, &mut buf)
            .expect("emitting a crafted advert");
        buf[..n].to_vec()
    }
}

/// Sends each of `messages` (VRRP payloads) once to `dst` from a raw IPPROTO 112 socket on
/// `eth0` of namespace `ns`, with IP TTL `ttl` (VRRP requires 255); returns how many went out.
pub fn send_vrrp(ns: &str, dst: Ipv4Addr, ttl: u8, messages: Vec<Vec<u8>>) -> usize {
    in_netns(ns, move || {
        let sock = relevo::lab::flood::vrrp_socket(ttl)?;
        let to = SocketAddrV4::new(dst, 0).into();
        Ok(messages
            .iter()
            .filter(|m| sock.send_to(m, &to).is_ok())
            .count())
    })
    .unwrap_or_else(|e| panic!("sending crafted adverts from {ns}: {e:#}"))
}

/// Whether node `i` carries `vip` on interface `ifname` (e.g. a virtual-MAC macvlan).
pub fn vip_on(lab: &Lab, i: usize, ifname: &str, vip: IpAddr) -> bool {
    lab.ip(&lab.node_ns(i), &["-o", "addr", "show", "dev", ifname])
        .is_ok_and(|text| text.contains(&format!(" {vip}/")))
}
