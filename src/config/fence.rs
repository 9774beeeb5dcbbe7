//! `[[fence]]`: fencing devices that power a failed node off before its groups are taken over.
//! `type = "ipmi"` talks IPMI 2.0 over LAN to the node's BMC (the password is read here from
//! `password_file`, which must be private to root like the heartbeat key file); `type =
//! "command"` runs a fence agent (argv as for group resources) with `options` on its stdin
//! (sorted by key).
//! Names are unique; `[[cluster.node]] fence` refers to them (checked in `cluster.rs`).

use std::ops::Range;
use std::time::Duration;

use super::cluster::read_private_file;
use super::hooks::read_argv;
use super::node::read_name;
use super::reader::{read_named_tables, Diags, Table, Value};
use super::types::{
    CommandFence, FenceAction, FenceDevice, FenceKind, IpmiFence, IpmiPrivilege, Secret,
};

pub(crate) const KEYS: &[&str] = &[
    "name",
    "type",
    "host",
    "port",
    "username",
    "password_file",
    "privilege",
    "command",
    "options",
    "action",
    "timeout",
];

/// The keys of each `type` besides the common `name`, `type`, `action`, `timeout`.
const IPMI_KEYS: &[&str] = &["host", "port", "username", "password_file", "privilege"];
const COMMAND_KEYS: &[&str] = &["command", "options"];

/// Default IPMI-over-LAN port (RMCP).
pub const DEFAULT_IPMI_PORT: u16 = 623;

/// Default bound of one fencing operation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

const TIMEOUT_MIN: Duration = Duration::from_secs(1);
const TIMEOUT_MAX: Duration = Duration::from_secs(600);

/// Largest password file read.
const MAX_PASSWORD_LEN: u64 = 4096;

/// The `[[fence]]` devices as read, and their names when every name was valid (the checks of
/// `[[cluster.node]] fence` are skipped otherwise, to avoid follow-up errors).
pub(crate) struct FenceRead {
    pub devices: Vec<FenceDevice>,
    pub names: Option<Vec<String>>,
    /// The span of each valid device name, for the warning about a device no node uses.
    pub name_spans: Vec<(String, Range<usize>)>,
}

/// Reads the top-level `fence` value (an array of tables).
pub(crate) fn read_fence_devices(diags: &mut Diags, value: Option<&Value<'_>>) -> FenceRead {
    let Some(value) = value else {
        return FenceRead {
            devices: Vec::new(),
            names: Some(Vec::new()),
            name_spans: Vec::new(),
        };
    };
    let read = read_named_tables(
        diags,
        value,
        (
            "fence",
            "[[fence]]",
            "fencing device",
            "each fencing device",
        ),
        |device: &FenceDevice| &device.name,
        read_device,
    );
    let devices = read.items;
    let names = read
        .complete
        .then(|| devices.iter().map(|device| device.name.clone()).collect());
    FenceRead {
        devices,
        names,
        name_spans: read.name_spans,
    }
}

/// Warns about each device that no `[[cluster.node]]` names (a typo in a node's `fence` is
/// an error; a device left over is only suspicious).
pub(crate) fn warn_unused(diags: &mut Diags, fences: &FenceRead, used: &[&str]) {
    for (name, at) in &fences.name_spans {
        if !used.contains(&name.as_str()) {
            let message = format!(
                "fencing device \"{name}\" is not used: no [[cluster.node]] has fence = \"{name}\""
            );
            diags.warn(at, message);
        }
    }
}

/// One device and the span of its valid name.
fn read_device(diags: &mut Diags, table: &Table<'_, '_>) -> (FenceDevice, Option<Range<usize>>) {
    table.check_keys(diags, KEYS, &[]);
    let name_value = table.required(diags, "name");
    let name = name_value.and_then(|value| read_name(diags, "fencing device `name`", value));
    let name_at = name.as_ref().and(name_value.map(|value| value.span()));
    let kind = table
        .required(diags, "type")
        .and_then(|value| read_kind(diags, table, value));
    let action = table
        .get("action")
        .and_then(|value| read_action(diags, value))
        .unwrap_or_default();
    let timeout = table
        .get("timeout")
        .and_then(|value| diags.duration("timeout", value, TIMEOUT_MIN, TIMEOUT_MAX))
        .unwrap_or(DEFAULT_TIMEOUT);
    let kind = kind.unwrap_or(FenceKind::Command(CommandFence {
        command: Vec::new(),
        options: Vec::new(),
    }));
    let device = FenceDevice {
        name: name.unwrap_or_default(),
        kind,
        action,
        timeout,
    };
    (device, name_at)
}

fn read_kind(diags: &mut Diags, table: &Table<'_, '_>, value: &Value<'_>) -> Option<FenceKind> {
    let kind = diags.string("type", value)?;
    let (own, other, other_type) = match kind {
        "ipmi" => (IPMI_KEYS, COMMAND_KEYS, "command"),
        "command" => (COMMAND_KEYS, IPMI_KEYS, "ipmi"),
        other => {
            let message = format!(
                "`type` must be \"ipmi\" or \"command\", got \"{}\"",
                other.escape_debug()
            );
            diags.error(&value.span(), message);
            return None;
        }
    };
    for (key, _) in table.entries.iter() {
        let key_name: &str = key.get_ref();
        if other.contains(&key_name) {
            let message = format!(
                "`{key_name}` is a key of type = \"{other_type}\" devices; a type = \"{kind}\" \
                 device has {}",
                own.join(", ")
            );
            diags.error(&key.span(), message);
        }
    }
    match kind {
        "ipmi" => read_ipmi(diags, table).map(FenceKind::Ipmi),
        _ => read_command(diags, table).map(FenceKind::Command),
    }
}

fn read_ipmi(diags: &mut Diags, table: &Table<'_, '_>) -> Option<IpmiFence> {
    let host = table
        .required(diags, "host")
        .and_then(|value| read_host(diags, value));
    let port = table
        .get("port")
        .and_then(|value| diags.integer("port", value, 1..=65535))
        .and_then(|port| u16::try_from(port).ok())
        .unwrap_or(DEFAULT_IPMI_PORT);
    let username = table
        .required(diags, "username")
        .and_then(|value| read_username(diags, value));
    let password = table
        .required(diags, "password_file")
        .and_then(|value| read_password(diags, value));
    let privilege = table
        .get("privilege")
        .and_then(|value| read_privilege(diags, value))
        .unwrap_or_default();
    Some(IpmiFence {
        host: host?,
        port,
        username: username?,
        password: password?,
        privilege,
    })
}

/// `host`: an IP address or a host name (letters, digits, `-`, `.`).
fn read_host(diags: &mut Diags, value: &Value<'_>) -> Option<String> {
    let host = diags.string("host", value)?;
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with(['-', '.'])
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.');
    if host.parse::<std::net::IpAddr>().is_ok() || valid_name {
        return Some(host.to_string());
    }
    let message = format!(
        "`host` must be an IP address or a host name, got \"{}\"",
        host.escape_debug()
    );
    diags.error(&value.span(), message);
    None
}

/// `username`: 1..=16 bytes (the IPMI 2.0 limit), no NUL.
fn read_username(diags: &mut Diags, value: &Value<'_>) -> Option<String> {
    let name = diags.string("username", value)?;
    if name.is_empty() || name.len() > 16 || name.contains('\0') {
        let message = format!(
            "`username` must be 1 to 16 bytes (the IPMI limit), got \"{}\"",
            name.escape_debug()
        );
        diags.error(&value.span(), message);
        return None;
    }
    Some(name.to_string())
}

/// `password_file`: absolute, a regular file private to its owner, not a symlink; the
/// password is its content without one trailing newline, 1..=20 bytes (IPMI 2.0).
fn read_password(diags: &mut Diags, value: &Value<'_>) -> Option<Secret> {
    let path = diags.string("password_file", value)?;
    let label = format!("`password_file` \"{}\"", path.escape_debug());
    if !path.starts_with('/') || path.contains('\0') {
        let message = format!(
            "{label} must be an absolute path (the daemon does not run in the config's directory)"
        );
        diags.error(&value.span(), message);
        return None;
    }
    let mut bytes =
        match read_private_file(path, "password_file", "the BMC password", MAX_PASSWORD_LEN) {
            Ok(bytes) => bytes,
            Err(why) => {
                diags.error(&value.span(), format!("{label} {why}"));
                return None;
            }
        };
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    let problem = if bytes.is_empty() {
        Some("is empty; write the BMC password in it")
    } else if bytes.len() > 20 {
        Some("holds more than 20 bytes, the longest IPMI 2.0 password")
    } else if bytes.contains(&b'\n') {
        Some("holds more than one line; write only the BMC password")
    } else {
        None
    };
    if let Some(problem) = problem {
        diags.error(&value.span(), format!("{label} {problem}"));
        return None;
    }
    Some(Secret::new(bytes))
}

fn read_privilege(diags: &mut Diags, value: &Value<'_>) -> Option<IpmiPrivilege> {
    match diags.string("privilege", value)? {
        "operator" => Some(IpmiPrivilege::Operator),
        "administrator" => Some(IpmiPrivilege::Administrator),
        other => {
            let message = format!(
                "`privilege` must be \"operator\" or \"administrator\", got \"{}\"",
                other.escape_debug()
            );
            diags.error(&value.span(), message);
            None
        }
    }
}

fn read_action(diags: &mut Diags, value: &Value<'_>) -> Option<FenceAction> {
    match diags.string("action", value)? {
        "off" => Some(FenceAction::Off),
        "reboot" => Some(FenceAction::Reboot),
        other => {
            let message = format!(
                "`action` must be \"off\" or \"reboot\", got \"{}\"",
                other.escape_debug()
            );
            diags.error(&value.span(), message);
            None
        }
    }
}

fn read_command(diags: &mut Diags, table: &Table<'_, '_>) -> Option<CommandFence> {
    let command = table
        .required(diags, "command")
        .and_then(|value| read_argv(diags, "command", value));
    let options = match table.get("options") {
        Some(value) => read_options(diags, value)?,
        None => Vec::new(),
    };
    Some(CommandFence {
        command: command?,
        options,
    })
}

/// `options`: a table of strings, written to the agent's stdin as `key=value` lines. Keys are
/// the agents' long option names without dashes (`ip`, `username`, `lanplus`, ...); `action`
/// is written by Relevo.
fn read_options(diags: &mut Diags, value: &Value<'_>) -> Option<Vec<(String, String)>> {
    let table = diags.table("options", "`options`", value)?;
    let before = diags.count();
    let mut options = Vec::new();
    for (key, value) in table.entries.iter() {
        let name: &str = key.get_ref();
        let valid_key = !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
        if !valid_key {
            let message = format!(
                "`options`: key \"{}\" must be letters, digits, `_` or `-`",
                name.escape_debug()
            );
            diags.error(&key.span(), message);
            continue;
        }
        if name == "action" {
            let message = "`options`: `action` is written by Relevo (the device's `action`, or \
                           what `relevo fence --action` asks); remove it";
            diags.error(&key.span(), message);
            continue;
        }
        let Some(text) = diags.string(&format!("options.{name}"), value) else {
            continue;
        };
        if text.contains(['\n', '\r', '\0']) {
            let message = format!("`options.{name}` must be one line");
            diags.error(&value.span(), message);
            continue;
        }
        options.push((name.to_string(), text.to_string()));
    }
    (diags.count() == before).then_some(options)
}
