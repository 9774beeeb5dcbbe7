//! Shared by the fencing tests: a fake BMC (OpenIPMI's `ipmi_sim` on 127.0.0.1, a port of its
//! own, power kept in a state file by `ipmi_sim/chassis_control.sh`), a temporary directory
//! with a config, password and key files and agent scripts, and `relevo fence` runs. The
//! guards fail (never skip) under CI=true when ipmi_sim or fence_ipmilan is missing. Only the
//! processes started here are stopped, by pid; the directories are removed on drop.
#![allow(dead_code)]
use std::fs;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use relevo::lab::{test_guard, Requirement, IPMI_SIM};

pub const USER: &str = "admin";
pub const PASSWORD: &str = "iapass01";

/// Whether the test runs here: ipmi_sim installed; else fails (or skips with
/// RELEVO_SKIP_FENCE_TESTS=1 outside CI).
pub fn needs_ipmi_sim() -> bool {
    guard(Requirement::IpmiSim)
}

/// [`needs_ipmi_sim`], and fence_ipmilan installed.
pub fn needs_fence_agents() -> bool {
    needs_ipmi_sim() && guard(Requirement::FenceAgents)
}

fn guard(requirement: Requirement) -> bool {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("fence test").to_string();
    test_guard(&name, requirement).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The ipmi_sim files shipped with the tests.
fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fence_support/ipmi_sim")
}

/// A free UDP port on 127.0.0.1 (bound and released: the BMC takes it right after).
pub fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    socket.local_addr().expect("local address").port()
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "relevo-fence-{name}-{}-{}",
            std::process::id(),
            free_udp_port()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `text` to `name` with `mode`; the path.
    pub fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, text).expect("write file");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// How the fake chassis answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Chassis {
    /// Power off and on work.
    Normal,
    /// `set power 0` is accepted and ignored: the power never goes off.
    IgnoresOff,
}

/// One ipmi_sim BMC on 127.0.0.1:`port`, state in `dir/node`.
pub struct Bmc {
    pub port: u16,
    pub dir: TempDir,
    child: Child,
}

impl Bmc {
    pub fn start(name: &str, chassis: Chassis) -> Bmc {
        let dir = TempDir::new(&format!("bmc-{name}"));
        let state = dir.path("node");
        fs::create_dir_all(state.join("..").join("persist")).expect("persist dir");
        fs::create_dir_all(&state).expect("state dir");
        fs::write(state.join("power"), "1\n").expect("power file");
        let support = support_dir();
        let control = match chassis {
            Chassis::Normal => support.join("chassis_control.sh"),
            Chassis::IgnoresOff => {
                // Answers like the real one but never turns the power off.
                let script = format!(
                    "#!/bin/sh\nif [ \"$2\" = set ] && [ \"$3\" = power ] && [ \"$4\" = 0 ]; then\n  \
                     echo \"$(date +%s.%N) ignored set power 0\" >> \"$1/events\"; exit 0\nfi\n\
                     exec {} \"$@\"\n",
                    support.join("chassis_control.sh").display()
                );
                dir.write("ignore_off.sh", &script, 0o755)
            }
        };
        for _attempt in 0..5 {
            let port = free_udp_port();
            let template =
                fs::read_to_string(support.join("lan.conf")).expect("read lan.conf template");
            let conf = template
                .replace("@DIR@/chassis_control.sh", &control.display().to_string())
                .replace("@STATE@", &state.display().to_string())
                .replace("@PORT@", &port.to_string())
                .replace("@ADDR@", "127.0.0.1");
            let conf_path = dir.write("lan.conf", &conf, 0o644);
            let _ = fs::remove_dir_all(dir.path("persist"));
            fs::create_dir_all(dir.path("persist")).expect("persist dir");
            let log = fs::File::create(dir.path("ipmi_sim.log")).expect("log file");
            let log2 = log.try_clone().expect("log file");
            let mut child = Command::new(IPMI_SIM)
                .arg("-c")
                .arg(&conf_path)
                .arg("-f")
                .arg(support.join("bmc.emu"))
                .arg("-s")
                .arg(dir.path("persist"))
                .arg("-n")
                .current_dir(&dir.0)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .spawn()
                .expect("start ipmi_sim");
            if wait_bound(port, &mut child) {
                return Bmc { port, dir, child };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = fs::read_to_string(dir.path("ipmi_sim.log")).unwrap_or_default();
        panic!("ipmi_sim did not start:\n{log}");
    }

    /// The power state file: "1" or "0".
    pub fn power(&self) -> String {
        fs::read_to_string(self.dir.path("node/power"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// The chassis_control call log.
    pub fn events(&self) -> String {
        fs::read_to_string(self.dir.path("node/events")).unwrap_or_default()
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        // Only the ipmi_sim started here, by its pid: SIGTERM, SIGKILL if it lingers.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether ipmi_sim bound 127.0.0.1:`port` (from /proc/net/udp) while still running.
fn wait_bound(port: u16, child: &mut Child) -> bool {
    let needle = format!("0100007F:{port:04X}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let table = fs::read_to_string("/proc/net/udp").unwrap_or_default();
        if table.lines().any(|line| {
            line.split_whitespace()
                .nth(1)
                .is_some_and(|local| local == needle)
        }) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A cluster config with n1 (this node, fence = "none") and n2 fenced by `device`, a
/// `[[fence]]` table body without its `name` (the device is named "n2-dev").
pub fn write_config(dir: &TempDir, device: &str) -> PathBuf {
    let key = dir.write("authkey", "1 0123456789abcdef0123\n", 0o600);
    let text = format!(
        "[node]\nname = \"n1\"\n\n[cluster]\nid = 1\nauth_key_file = \"{}\"\n\
         ping_nodes = [\"192.0.2.1\"]\n\n\
         [[cluster.node]]\nname = \"n1\"\nlinks = [\"192.0.2.11\"]\nfence = \"none\"\n\n\
         [[cluster.node]]\nname = \"n2\"\nlinks = [\"192.0.2.12\"]\nfence = \"n2-dev\"\n\n\
         [[fence]]\nname = \"n2-dev\"\n{device}",
        key.display()
    );
    dir.write("relevo.toml", &text, 0o644)
}

/// An ipmi device body for `bmc_port` with the password in `password` (a file written here).
pub fn ipmi_device(dir: &TempDir, port: u16, password: &str, timeout: &str) -> String {
    let file = dir.write("bmc.pass", &format!("{password}\n"), 0o600);
    format!(
        "type = \"ipmi\"\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"{USER}\"\n\
         password_file = \"{}\"\ntimeout = \"{timeout}\"\n",
        file.display()
    )
}

/// What `relevo fence` did.
pub struct FenceRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs `relevo fence NODE [args] -c CONFIG`.
pub fn relevo_fence(config: &Path, node: &str, args: &[&str]) -> FenceRun {
    let started = Instant::now();
    let output: Output = Command::new(env!("CARGO_BIN_EXE_relevo"))
        .arg("fence")
        .arg(node)
        .args(args)
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .expect("run relevo fence");
    FenceRun {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}
