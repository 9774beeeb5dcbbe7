//! Shared by the fencing tests: a fake BMC (OpenIPMI's `ipmi_sim` on 127.0.0.1, a port of its
//! own, power kept in a state file by `ipmi_sim/chassis_control.sh`), a temporary directory
//! with a config, password and key files and agent scripts, and `relevo fence` runs. The
//! guards fail (never skip) under CI=true when ipmi_sim or fence_ipmilan is missing. Only the
//! processes started here are stopped, by pid; the directories are removed on drop.
#![allow(dead_code)]
use std::fs;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use relevo::lab::bmc;
pub use relevo::lab::bmc::Chassis;
use relevo::lab::{test_guard, Requirement};

pub const USER: &str = bmc::BMC_USER;
pub const PASSWORD: &str = bmc::BMC_PASSWORD;

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

/// One ipmi_sim BMC on 127.0.0.1:`port`, state in `dir/node`.
pub struct Bmc {
    pub port: u16,
    pub dir: TempDir,
    child: Child,
}

impl Bmc {
    pub fn start(name: &str, chassis: Chassis) -> Bmc {
        let dir = TempDir::new(&format!("bmc-{name}"));
        let control = chassis.program(&dir.0).unwrap_or_else(|e| panic!("{e:#}"));
        for _attempt in 0..5 {
            let port = free_udp_port();
            let argv = bmc::prepare(&dir.0, Ipv4Addr::LOCALHOST, port, &control)
                .unwrap_or_else(|e| panic!("{e:#}"));
            let log = fs::File::create(dir.path("ipmi_sim.log")).expect("log file");
            let log2 = log.try_clone().expect("log file");
            let mut child = Command::new(&argv[0])
                .args(&argv[1..])
                .current_dir(&dir.0)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .spawn()
                .expect("start ipmi_sim");
            if bmc::wait_bound(child.id(), Ipv4Addr::LOCALHOST, port, || {
                matches!(child.try_wait(), Ok(None))
            }) {
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
