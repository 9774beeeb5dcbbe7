//! A fake BMC for fencing tests and benches: OpenIPMI's `ipmi_sim` speaking IPMI-LAN / RMCP+ on
//! a UDP port, its chassis power kept in a state file by `chassis_control.sh`, which runs the
//! `off.sh` / `on.sh` hooks of its state directory when the power changes (what a power-off
//! does to the node). The lan.conf template, emulator commands and chassis program ship in
//! `tests/fence_support/ipmi_sim/`. Users: `admin` / [`BMC_PASSWORD`].
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::cluster::LabFence;
use super::netns::{Lab, LabProcess};
use super::util::IPMI_SIM;

/// The administrator user of the BMC.
pub const BMC_USER: &str = "admin";
/// Its password.
pub const BMC_PASSWORD: &str = "iapass01";

/// The ipmi_sim support files shipped with the tests.
pub fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fence_support/ipmi_sim")
}

/// How the fake chassis answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chassis {
    /// Power off and on work.
    Normal,
    /// `set power 0` is accepted and ignored: the power never goes off.
    IgnoresOff,
}

impl Chassis {
    /// The chassis_control program for this behaviour (written into `dir` when it is not the
    /// shipped one).
    pub fn program(self, dir: &Path) -> Result<PathBuf> {
        let shipped = support_dir().join("chassis_control.sh");
        match self {
            Chassis::Normal => Ok(shipped),
            Chassis::IgnoresOff => {
                // Answers like the real one but never turns the power off.
                let path = dir.join("ignore_off.sh");
                let script = format!(
                    "#!/bin/sh\nif [ \"$2\" = set ] && [ \"$3\" = power ] && [ \"$4\" = 0 ]; then\n  \
                     echo \"$(date +%s.%N) ignored set power 0\" >> \"$1/events\"; exit 0\nfi\n\
                     exec {} \"$@\"\n",
                    shipped.display()
                );
                write(&path, &script, 0o755)?;
                Ok(path)
            }
        }
    }
}

/// Writes the BMC's files under `dir` (power on): `lan.conf` for `addr`:`port` with
/// `chassis_control` as its chassis program, the state directory `dir/node` and an empty
/// `dir/persist`. Returns the argv that starts ipmi_sim on them (run it in `dir`).
pub fn prepare(
    dir: &Path,
    addr: Ipv4Addr,
    port: u16,
    chassis_control: &Path,
) -> Result<Vec<String>> {
    let state = dir.join("node");
    let persist = dir.join("persist");
    let _ = fs::remove_dir_all(&persist);
    for d in [&state, &persist] {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    write(&state.join("power"), "1\n", 0o644)?;
    let template_path = support_dir().join("lan.conf");
    let template = fs::read_to_string(&template_path)
        .with_context(|| format!("reading {}", template_path.display()))?;
    let conf = template
        .replace(
            "@DIR@/chassis_control.sh",
            &chassis_control.display().to_string(),
        )
        .replace("@STATE@", &state.display().to_string())
        .replace("@PORT@", &port.to_string())
        .replace("@ADDR@", &addr.to_string());
    let conf_path = dir.join("lan.conf");
    write(&conf_path, &conf, 0o644)?;
    Ok(vec![
        IPMI_SIM.to_string(),
        "-c".to_string(),
        conf_path.display().to_string(),
        "-f".to_string(),
        support_dir().join("bmc.emu").display().to_string(),
        "-s".to_string(),
        persist.display().to_string(),
        "-n".to_string(),
    ])
}

/// Writes `text` to `path` with `mode`.
pub fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

/// Whether process `pid` has `addr`:`port` bound for UDP (from its namespace's
/// `/proc/PID/net/udp`), polling up to 5 s while `alive` says it runs.
pub fn wait_bound(pid: u32, addr: Ipv4Addr, port: u16, mut alive: impl FnMut() -> bool) -> bool {
    let needle = format!("{:08X}:{port:04X}", u32::from_le_bytes(addr.octets()));
    let table = format!("/proc/{pid}/net/udp");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !alive() {
            return false;
        }
        let text = fs::read_to_string(&table).unwrap_or_default();
        if text
            .lines()
            .any(|line| line.split_whitespace().nth(1) == Some(needle.as_str()))
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// An ipmi_sim BMC running in a namespace of a [`Lab`] on `addr`:`port`, stopped with the lab
/// (or when dropped).
pub struct LabBmc {
    pub addr: Ipv4Addr,
    pub port: u16,
    /// The node it powers (0 when started with [`LabBmc::start`] for no node).
    pub node: usize,
    /// Holds lan.conf, `node/` (power, events, hooks) and `persist/`.
    pub dir: PathBuf,
    process: LabProcess,
}

impl LabBmc {
    /// Starts a BMC in namespace `ns` on `addr` (an address of that namespace), port 623,
    /// answering as `chassis`, with `off_hook` as the shell script run when its power goes off (e.g. kill a node's daemon
    /// and down its links).
    pub fn start(
        lab: &Lab,
        ns: &str,
        name: &str,
        addr: Ipv4Addr,
        chassis: Chassis,
        off_hook: &str,
    ) -> Result<LabBmc> {
        let dir = lab.work_dir().join(format!("bmc-{name}"));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let port = 623;
        let program = chassis.program(&dir)?;
        let argv = prepare(&dir, addr, port, &program)?;
        write(
            &dir.join("node/off.sh"),
            &format!("#!/bin/sh\n{off_hook}\n"),
            0o755,
        )?;
        let log = dir.join("ipmi_sim.log");
        // ipmi_sim resolves nothing relative to its working directory: every path is absolute.
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut process = lab.spawn(ns, &argv, &log)?;
        let pid = u32::try_from(process.pid()).unwrap_or_default();
        if !wait_bound(pid, addr, port, || process.is_running()) {
            let text = fs::read_to_string(&log).unwrap_or_default();
            bail!("ipmi_sim did not bind {addr}:{port} in {ns}:\n{text}");
        }
        Ok(LabBmc {
            addr,
            port,
            node: 0,
            dir,
            process,
        })
    }

    /// The BMC of lab node `node`, in the client namespace on the client's address: its
    /// power-off SIGKILLs the pid written in [`LabBmc::pid_file`] and downs the node's links.
    pub fn start_for_node(lab: &Lab, node: usize, chassis: Chassis) -> Result<LabBmc> {
        let ns = lab.node_ns(node);
        let pid_file = Self::pid_file_of(lab, node);
        let off_hook = format!(
            "kill -9 \"$(cat {})\"\nip -n {ns} link set eth0 down\nip -n {ns} link set eth1 down",
            pid_file.display()
        );
        let name = format!("n{node}");
        let mut bmc = Self::start(
            lab,
            &lab.client_ns(),
            &name,
            lab.client_ipv4(),
            chassis,
            &off_hook,
        )?;
        bmc.node = node;
        Ok(bmc)
    }

    fn pid_file_of(lab: &Lab, node: usize) -> PathBuf {
        lab.work_dir().join(format!("n{node}.pid"))
    }

    /// Where the powered node's daemon pid goes (write it after every start).
    pub fn pid_file(&self, lab: &Lab) -> PathBuf {
        Self::pid_file_of(lab, self.node)
    }

    /// An `ipmi` fence device for this BMC, logging in as [`BMC_USER`] with `password`
    /// (written to a 0600 file in the lab).
    pub fn fence_device(&self, lab: &Lab, password: &str, timeout: Duration) -> Result<LabFence> {
        let password_file = lab.work_dir().join(format!("n{}-bmc.pass", self.node));
        write(&password_file, &format!("{password}\n"), 0o600)?;
        Ok(LabFence::Ipmi {
            host: self.addr,
            port: self.port,
            username: BMC_USER.to_string(),
            password_file,
            timeout,
        })
    }

    /// The power state: "1" or "0".
    pub fn power(&self) -> String {
        fs::read_to_string(self.dir.join("node/power"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Turns the power back on by hand (the state file; `on.sh` is not run).
    pub fn power_on(&self) -> Result<()> {
        write(&self.dir.join("node/power"), "1\n", 0o644)
    }

    /// The chassis_control call log.
    pub fn events(&self) -> String {
        fs::read_to_string(self.dir.join("node/events")).unwrap_or_default()
    }

    /// Whether ipmi_sim still runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}
