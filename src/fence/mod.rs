//! Fencing: powering a failed node off through its `[[fence]]` device before its groups are
//! taken over. [`run`] is BLOCKING (network round trips, a child process) and bounded by the
//! device's `timeout`: call it on a worker thread, never on the event loop.
//!
//! * `ipmi` ([`ipmi`]): IPMI 2.0 over LAN (RMCP+) with the `ipmi-rs` crate: open a session,
//!   raise it to the configured privilege, Chassis Control, and for `off` poll Get Chassis
//!   Status until the BMC reports the power off.
//! * `command` ([`command`]): a fence agent run with its options on stdin.

pub mod command;
pub mod ipmi;

use std::fmt;
use std::time::{Duration, Instant};

use crate::config::{FenceAction, FenceDevice, FenceKind};

/// What to ask a fencing device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceOp {
    /// Power off; done once the device reports the power off.
    Off,
    /// Power cycle; done when the device accepts it.
    Reboot,
    /// Power on; done when the device accepts it.
    On,
    /// Read the power state.
    Status,
}

impl FenceOp {
    /// "off", "reboot", "on", "status" (the fence agents' `action` values).
    pub fn as_str(self) -> &'static str {
        match self {
            FenceOp::Off => "off",
            FenceOp::Reboot => "reboot",
            FenceOp::On => "on",
            FenceOp::Status => "status",
        }
    }
}

impl From<FenceAction> for FenceOp {
    fn from(action: FenceAction) -> Self {
        match action {
            FenceAction::Off => FenceOp::Off,
            FenceAction::Reboot => FenceOp::Reboot,
        }
    }
}

impl fmt::Display for FenceOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Chassis power as the device reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    On,
    Off,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::On => "on",
            PowerState::Off => "off",
        })
    }
}

/// A successful operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceOutcome {
    /// What was done.
    pub op: FenceOp,
    /// The power state the device reported last (`Off` for a confirmed `off`, the state for
    /// `status`); `None` when the operation did not read it.
    pub power: Option<PowerState>,
    /// How long the operation took.
    pub elapsed: Duration,
}

impl fmt::Display for FenceOutcome {
    /// "power is on", "powered off (confirmed)", "power cycle accepted", "power on accepted".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.op, self.power) {
            (FenceOp::Status, Some(power)) => write!(f, "power is {power}"),
            (FenceOp::Status, None) => f.write_str("power state unknown"),
            (FenceOp::Off, _) => f.write_str("powered off (confirmed)"),
            (FenceOp::Reboot, _) => f.write_str("power cycle accepted"),
            (FenceOp::On, _) => f.write_str("power on accepted"),
        }?;
        write!(f, " in {:.2}s", self.elapsed.as_secs_f64())
    }
}

/// Why fencing failed. Every variant is reached within the device's `timeout`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FenceError {
    /// The BMC answered but refused the user name or password (or the user lacks the
    /// privilege needed to open the session).
    #[error(
        "authentication failed: the BMC refused user \"{username}\" or its password ({detail})"
    )]
    Authentication { username: String, detail: String },
    /// No answer from the BMC, or the address cannot be used.
    #[error("BMC {address} unreachable: {detail}")]
    Unreachable { address: String, detail: String },
    /// The command was accepted but the device never reported the power off.
    #[error("timeout after {}: the device never reported power off (last reported: {})",
        crate::config::format_duration(*timeout),
        last.map_or("nothing".to_string(), |power| format!("power {power}")))]
    Timeout {
        timeout: Duration,
        last: Option<PowerState>,
    },
    /// The BMC answered a request with an error completion code.
    #[error("the BMC refused {request}: {detail}")]
    Refused { request: String, detail: String },
    /// Anything else the IPMI exchange went wrong with.
    #[error("IPMI error during {request}: {detail}")]
    Protocol { request: String, detail: String },
    /// The fence agent could not be started.
    #[error("cannot start fence agent {program}: {detail}")]
    Spawn { program: String, detail: String },
    /// The fence agent exited unsuccessfully.
    #[error("fence agent {program} failed ({status}){}",
        if last_stderr.is_empty() { String::new() } else { format!(": {last_stderr}") })]
    AgentFailed {
        program: String,
        status: String,
        last_stderr: String,
    },
    /// The fence agent was still running at the timeout and was killed.
    #[error("fence agent {program} hung: killed after {}", crate::config::format_duration(*timeout))]
    AgentHung { program: String, timeout: Duration },
}

/// Runs `op` on `device`, blocking for at most about the device's `timeout`.
pub fn run(device: &FenceDevice, op: FenceOp) -> Result<FenceOutcome, FenceError> {
    let started = Instant::now();
    let deadline = started + device.timeout;
    let power = match &device.kind {
        FenceKind::Ipmi(bmc) => ipmi::run(bmc, op, device.timeout, deadline)?,
        FenceKind::Command(agent) => command::run(agent, op, device.timeout)?,
    };
    Ok(FenceOutcome {
        op,
        power,
        elapsed: started.elapsed(),
    })
}

/// A one-line description of the device: "ipmi 192.0.2.201:623" or "command /usr/sbin/fence_ipmilan".
pub fn describe(device: &FenceDevice) -> String {
    match &device.kind {
        FenceKind::Ipmi(bmc) => format!("ipmi {}", ipmi::address(bmc)),
        FenceKind::Command(agent) => format!(
            "command {}",
            agent.command.first().map_or("", String::as_str)
        ),
    }
}
