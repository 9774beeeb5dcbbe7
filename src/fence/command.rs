//! `type = "command"`: a fence agent (`fence_ipmilan`, `fence_redfish`, a script) run without
//! a shell in a process group of its own. Its options go to stdin as `key=value` lines ending
//! with `action=...` (the way fence agents read them), `RELEVO_FENCE_ACTION` is in its
//! environment, its stdout and stderr are captured (bounded), and at the device's timeout its
//! process group gets SIGTERM, then SIGKILL. Exit 0 is success; for `status`, 0 is power on and
//! 2 power off (the fence agents' convention).

use std::io::{Read, Write as _};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::{FenceError, FenceOp, PowerState};
use crate::config::CommandFence;

/// Output kept per stream; the rest is read and dropped so the agent never blocks on a pipe.
pub const MAX_OUTPUT: usize = 64 * 1024;

/// Between SIGTERM and SIGKILL to a hung agent's process group.
const KILL_GRACE: Duration = Duration::from_secs(1);

/// How often the agent is checked for exit.
const WAIT_STEP: Duration = Duration::from_millis(20);

/// What the agent printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The stdin text for `op`: the options as `key=value` lines, then `action=OP`.
pub fn stdin_text(agent: &CommandFence, op: FenceOp) -> String {
    let mut text = String::new();
    for (key, value) in &agent.options {
        text.push_str(&format!("{key}={value}\n"));
    }
    text.push_str(&format!("action={}\n", op.as_str()));
    text
}

/// Runs the agent for `op`; the power state it reported, if any.
pub(super) fn run(
    agent: &CommandFence,
    op: FenceOp,
    timeout: Duration,
) -> Result<Option<PowerState>, FenceError> {
    let program = agent.command.first().cloned().unwrap_or_default();
    let output = run_agent(agent, op, timeout)?;
    let code = output.status.code();
    match (op, code) {
        (FenceOp::Status, Some(0)) => Ok(Some(PowerState::On)),
        (FenceOp::Status, Some(2)) => Ok(Some(PowerState::Off)),
        (FenceOp::Off, Some(0)) => Ok(Some(PowerState::Off)),
        (_, Some(0)) => Ok(None),
        _ => Err(FenceError::AgentFailed {
            program,
            status: describe_status(output.status),
            last_stderr: last_line(&output.stderr),
        }),
    }
}

/// Starts the agent, feeds stdin, waits at most `timeout`, collects the output.
pub fn run_agent(
    agent: &CommandFence,
    op: FenceOp,
    timeout: Duration,
) -> Result<AgentOutput, FenceError> {
    let program = agent.command.first().cloned().unwrap_or_default();
    let started = Instant::now();
    let mut command = Command::new(&program);
    command
        .args(agent.command.iter().skip(1))
        .env("RELEVO_FENCE_ACTION", op.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn().map_err(|error| FenceError::Spawn {
        program: program.clone(),
        detail: error.to_string(),
    })?;
    let (sender, receiver) = mpsc::channel();
    spawn_reader(child.stdout.take(), sender.clone(), true);
    spawn_reader(child.stderr.take(), sender, false);
    if let Some(mut stdin) = child.stdin.take() {
        // An agent that does not read stdin (or exits at once) is not an error here.
        let _ = stdin.write_all(stdin_text(agent, op).as_bytes());
    }
    let status = match wait_until(&mut child, started + timeout) {
        Some(status) => status,
        None => {
            kill_group(&mut child);
            return Err(FenceError::AgentHung { program, timeout });
        }
    };
    // The readers end when every holder of the pipes is gone; a grandchild that left the
    // process group and keeps them open is not waited for long.
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let collect_until = Instant::now() + Duration::from_millis(500);
    for _ in 0..2 {
        let left = collect_until.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok((true, bytes)) => stdout = bytes,
            Ok((false, bytes)) => stderr = bytes,
            Err(_) => break,
        }
    }
    Ok(AgentOutput {
        status,
        stdout,
        stderr,
    })
}

trait Pipe: Read + Send + 'static {}
impl Pipe for ChildStdout {}
impl Pipe for ChildStderr {}

fn spawn_reader<P: Pipe>(pipe: Option<P>, sender: mpsc::Sender<(bool, Vec<u8>)>, is_stdout: bool) {
    let Some(mut pipe) = pipe else {
        let _ = sender.send((is_stdout, Vec::new()));
        return;
    };
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buffer = [0u8; 8192];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => {
                    let room = MAX_OUTPUT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buffer[..count.min(room)]);
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = sender.send((is_stdout, kept));
    });
}

fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(WAIT_STEP.min(deadline - now));
    }
}

/// SIGTERM to the agent's process group, SIGKILL after a grace period; reaps the agent.
fn kill_group(child: &mut Child) {
    let Ok(pid) = i32::try_from(child.id()) else {
        return;
    };
    let group = Pid::from_raw(pid);
    let _ = killpg(group, Signal::SIGTERM);
    if wait_until(child, Instant::now() + KILL_GRACE).is_none() {
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait();
    } else {
        // The agent is gone; what it left in its group goes too.
        let _ = killpg(group, Signal::SIGKILL);
    }
}

/// "exit status 1", "killed by signal 9".
fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// The last non-empty line of `bytes`, printable and at most 200 characters.
pub fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .unwrap_or("");
    let printable: String = line
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect();
    printable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_lists_options_then_the_action() {
        let agent = CommandFence {
            command: vec!["/usr/sbin/fence_ipmilan".to_string()],
            options: vec![
                ("ip".to_string(), "192.0.2.1".to_string()),
                ("lanplus".to_string(), "1".to_string()),
            ],
        };
        assert_eq!(
            stdin_text(&agent, FenceOp::Status),
            "ip=192.0.2.1\nlanplus=1\naction=status\n"
        );
    }

    #[test]
    fn last_line_is_printable() {
        assert_eq!(last_line(b"one\ntwo \n\n"), "two");
        assert_eq!(last_line(b"\x01\xffbad\n"), "?\u{fffd}bad");
        assert_eq!(last_line(b""), "");
    }
}
