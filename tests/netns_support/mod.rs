//! Shared by the namespace test binaries: root guard (fails under CI=true), one lab at a time
//! per test binary, relevo/keepalived node starters, polling helpers.
#![allow(dead_code)]
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use relevo::lab::netns::Lab;
use relevo::lab::relevo_node::{RelevoNode, VrrpInstance};
use relevo::lab::root_test_guard;

static SERIAL: Mutex<()> = Mutex::new(());

/// A lab for one test, built only as root (a test run without root skips locally, fails in CI).
/// Tests of one binary run one at a time: timing on a 2-core machine stays meaningful.
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

pub fn lab(test: &str, nodes: usize) -> Option<TestLab> {
    if !root_test_guard(test).expect("root required") {
        return None;
    }
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::create(test, nodes).expect("building the namespace lab");
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

pub fn ip(text: &str) -> IpAddr {
    text.split('/').next().unwrap().parse().unwrap()
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

/// Asserts that `f` holds during the whole of `period` (checked every 20 ms).
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
    std::fs::read_to_string(path).unwrap_or_default()
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

/// A hook script in `dir` that appends one line per call to `out` (event, state, previous
/// state, reason, VIPs) and then runs `extra` (shell). Under the default `hook_security`,
/// `dir` must be trusted (a `HookDir`), not the lab's work dir under /tmp.
pub fn recording_hook(dir: &Path, name: &str, out: &Path, extra: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let body = format!(
        "#!/bin/sh\necho \"$RELEVO_EVENT $RELEVO_STATE $RELEVO_PREV_STATE $RELEVO_REASON $RELEVO_NODE $RELEVO_VIPS\" >> {}\n{extra}\n",
        out.display()
    );
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}
