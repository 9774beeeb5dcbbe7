//! `type = "ipmi"`: IPMI 2.0 over LAN (RMCP+, cipher suite 3) with the `ipmi-rs` crate.
//!
//! ipmi-rs 0.6 opens the session asking for ADMINISTRATOR but never raises it from the initial
//! USER level, so Chassis Control would fail with completion code 0xD4 (insufficient
//! privilege): the session is raised with a raw Set Session Privilege Level request first.
//! Every receive has a socket read timeout (a fraction of the device's timeout); the session
//! is retried on no answer until the deadline.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use ipmi_rs::connection::{CompletionErrorCode, IpmiCommand, Message, NetFn, NotEnoughData};
use ipmi_rs::rmcp::{
    ActivationError, Rmcp, RmcpIpmiError, RmcpIpmiReceiveError, V2_0ActivationError,
};
use ipmi_rs::{Ipmi, IpmiError};

use super::{FenceError, FenceOp, PowerState};
use crate::config::IpmiFence;

/// Time between two Get Chassis Status while waiting for the power off.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Longest wait for one answer (shorter for short device timeouts).
const MAX_RECV_TIMEOUT: Duration = Duration::from_secs(2);
const MIN_RECV_TIMEOUT: Duration = Duration::from_millis(100);

/// "host:port", with brackets around an IPv6 address.
pub fn address(bmc: &IpmiFence) -> String {
    if bmc.host.contains(':') {
        format!("[{}]:{}", bmc.host, bmc.port)
    } else {
        format!("{}:{}", bmc.host, bmc.port)
    }
}

/// Runs `op` against the BMC; returns the power state read, if any. `deadline` bounds it all.
pub(super) fn run(
    bmc: &IpmiFence,
    op: FenceOp,
    timeout: Duration,
    deadline: Instant,
) -> Result<Option<PowerState>, FenceError> {
    let recv_timeout = (timeout / 4).clamp(MIN_RECV_TIMEOUT, MAX_RECV_TIMEOUT);
    let mut ipmi = open_session(bmc, recv_timeout, deadline)?;
    ipmi.send_recv(SetSessionPrivilegeLevel(bmc.privilege.level()))
        .map_err(|error| request_error(bmc, "Set Session Privilege Level", error))?;
    match op {
        FenceOp::Status => get_power(bmc, &mut ipmi).map(Some),
        FenceOp::On => chassis_control(bmc, &mut ipmi, ChassisControl::ON).map(|()| None),
        FenceOp::Reboot => {
            // Power cycle is refused by some BMCs when the chassis is off: power it on then.
            match get_power(bmc, &mut ipmi)? {
                PowerState::On => chassis_control(bmc, &mut ipmi, ChassisControl::CYCLE)?,
                PowerState::Off => chassis_control(bmc, &mut ipmi, ChassisControl::ON)?,
            }
            Ok(None)
        }
        FenceOp::Off => {
            chassis_control(bmc, &mut ipmi, ChassisControl::OFF)?;
            wait_off(bmc, &mut ipmi, timeout, deadline).map(Some)
        }
    }
}

/// Polls Get Chassis Status until it says off, or the deadline.
fn wait_off(
    bmc: &IpmiFence,
    ipmi: &mut Ipmi<Rmcp>,
    timeout: Duration,
    deadline: Instant,
) -> Result<PowerState, FenceError> {
    let mut last = None;
    loop {
        match get_power(bmc, ipmi) {
            Ok(PowerState::Off) => return Ok(PowerState::Off),
            Ok(PowerState::On) => last = Some(PowerState::On),
            // A lost answer is retried; the timeout error says what was seen last.
            Err(error) => tracing::debug!("fence: Get Chassis Status failed: {error}"),
        }
        let now = Instant::now();
        if now + POLL_INTERVAL >= deadline {
            return Err(FenceError::Timeout { timeout, last });
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn get_power(bmc: &IpmiFence, ipmi: &mut Ipmi<Rmcp>) -> Result<PowerState, FenceError> {
    let on = ipmi
        .send_recv(GetChassisStatus)
        .map_err(|error| request_error(bmc, "Get Chassis Status", error))?;
    Ok(if on { PowerState::On } else { PowerState::Off })
}

fn chassis_control(
    bmc: &IpmiFence,
    ipmi: &mut Ipmi<Rmcp>,
    control: ChassisControl,
) -> Result<(), FenceError> {
    let request = control.describe();
    ipmi.send_recv(control)
        .map_err(|error| request_error(bmc, request, error))
}

/// Opens an RMCP+ session, retrying while the BMC does not answer until the deadline.
fn open_session(
    bmc: &IpmiFence,
    recv_timeout: Duration,
    deadline: Instant,
) -> Result<Ipmi<Rmcp>, FenceError> {
    let address = address(bmc);
    let unreachable = |detail: String| FenceError::Unreachable {
        address: address.clone(),
        detail,
    };
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let wait = recv_timeout.min(remaining).max(MIN_RECV_TIMEOUT);
        let mut rmcp = Rmcp::new(address.as_str(), wait)
            .map_err(|error| unreachable(format!("cannot resolve the address: {error}")))?;
        let password = bmc.password.expose();
        let error = match rmcp.activate(true, Some(&bmc.username), Some(password)) {
            Ok(()) => return Ok(Ipmi::new(rmcp)),
            Err(error) => error,
        };
        let failure = classify_activation(bmc, &address, error);
        let retry = matches!(failure, FenceError::Unreachable { .. });
        if !retry || Instant::now() + POLL_INTERVAL >= deadline {
            return Err(failure);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn classify_activation(bmc: &IpmiFence, address: &str, error: ActivationError) -> FenceError {
    let unreachable = |detail: String| FenceError::Unreachable {
        address: address.to_string(),
        detail,
    };
    let authentication = |detail: String| FenceError::Authentication {
        username: bmc.username.clone(),
        detail,
    };
    match error {
        ActivationError::BindSocket(error) => unreachable(format!("cannot open a socket: {error}")),
        ActivationError::PingSend(error) | ActivationError::PongReceive(error) => {
            unreachable(io_detail(&error))
        }
        ActivationError::IpmiNotSupported | ActivationError::NoSupportedIpmiLANVersions => {
            FenceError::Protocol {
                request: "RMCP presence ping".to_string(),
                detail: "the host does not speak IPMI 2.0 over LAN".to_string(),
            }
        }
        ActivationError::V2_0(error) => match error {
            V2_0ActivationError::Io(error) => unreachable(io_detail(&error)),
            V2_0ActivationError::OpenSessionResponseReceive(RmcpIpmiReceiveError::Io(error))
            | V2_0ActivationError::RakpMessage2Receive(RmcpIpmiReceiveError::Io(error))
            | V2_0ActivationError::RakpMessage4Receive(RmcpIpmiReceiveError::Io(error)) => {
                unreachable(io_detail(&error))
            }
            V2_0ActivationError::OpenSessionResponseParse(error) => FenceError::Protocol {
                request: "RMCP+ Open Session".to_string(),
                detail: format!("{error:?}"),
            },
            // RAKP 2 / 4 problems: the BMC does not know the user, or the password (the key
            // both sides derive) differs, or the user may not have ADMINISTRATOR.
            other => authentication(format!("RMCP+ session: {other:?}")),
        },
        other => FenceError::Protocol {
            request: "session activation".to_string(),
            detail: format!("{other:?}"),
        },
    }
}

fn io_detail(error: &std::io::Error) -> String {
    match error.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => "no answer".to_string(),
        ErrorKind::ConnectionRefused => {
            "no answer (port unreachable: nothing listens there)".to_string()
        }
        _ => error.to_string(),
    }
}

fn request_error<P: std::fmt::Debug>(
    bmc: &IpmiFence,
    request: &str,
    error: IpmiError<RmcpIpmiError, P>,
) -> FenceError {
    match error {
        IpmiError::Connection(RmcpIpmiError::Receive(RmcpIpmiReceiveError::Io(error))) => {
            FenceError::Unreachable {
                address: address(bmc),
                detail: format!("{} to {request}", io_detail(&error)),
            }
        }
        IpmiError::Failed {
            completion_code, ..
        } => FenceError::Refused {
            request: request.to_string(),
            detail: completion_detail(completion_code),
        },
        IpmiError::Command {
            completion_code: Some(completion_code),
            ..
        } => FenceError::Refused {
            request: request.to_string(),
            detail: completion_detail(completion_code),
        },
        other => FenceError::Protocol {
            request: request.to_string(),
            detail: format!("{other:?}"),
        },
    }
}

fn completion_detail(code: CompletionErrorCode) -> String {
    match code {
        CompletionErrorCode::InsufficientPrivilege => {
            "insufficient privilege (completion code 0xD4); set privilege = \"administrator\" or \
             give the BMC user more rights"
                .to_string()
        }
        other => format!("completion code {other:?}"),
    }
}

/// Get Chassis Status (NetFn Chassis, cmd 0x01): whether the power is on.
struct GetChassisStatus;

impl From<GetChassisStatus> for Message {
    fn from(_: GetChassisStatus) -> Self {
        Message::new_request(NetFn::Chassis, 0x01, Vec::new())
    }
}

impl IpmiCommand for GetChassisStatus {
    type Output = bool;
    type Error = NotEnoughData;

    fn parse_success_response(data: &[u8]) -> Result<bool, NotEnoughData> {
        data.first()
            .map(|byte| byte & 0x01 != 0)
            .ok_or(NotEnoughData)
    }
}

/// Set Session Privilege Level (NetFn App, cmd 0x3B): 3 operator, 4 administrator.
struct SetSessionPrivilegeLevel(u8);

impl From<SetSessionPrivilegeLevel> for Message {
    fn from(request: SetSessionPrivilegeLevel) -> Self {
        Message::new_request(NetFn::App, 0x3B, vec![request.0])
    }
}

impl IpmiCommand for SetSessionPrivilegeLevel {
    type Output = ();
    type Error = NotEnoughData;

    fn parse_success_response(_: &[u8]) -> Result<(), NotEnoughData> {
        Ok(())
    }
}

/// Chassis Control (NetFn Chassis, cmd 0x02).
struct ChassisControl(u8);

impl ChassisControl {
    const OFF: ChassisControl = ChassisControl(0);
    const ON: ChassisControl = ChassisControl(1);
    const CYCLE: ChassisControl = ChassisControl(2);

    fn describe(&self) -> &'static str {
        match self.0 {
            0 => "Chassis Control power off",
            1 => "Chassis Control power on",
            _ => "Chassis Control power cycle",
        }
    }
}

impl From<ChassisControl> for Message {
    fn from(request: ChassisControl) -> Self {
        Message::new_request(NetFn::Chassis, 0x02, vec![request.0])
    }
}

impl IpmiCommand for ChassisControl {
    type Output = ();
    type Error = NotEnoughData;

    fn parse_success_response(_: &[u8]) -> Result<(), NotEnoughData> {
        Ok(())
    }
}
