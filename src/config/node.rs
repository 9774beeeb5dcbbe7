//! `[node]`: the node name (default: host name), the control socket and who may use it, the
//! state directory and the hook security policy.

use std::path::PathBuf;

use super::reader::{Diags, Table, Value};
use super::types::{HookSecurity, NodeConfig};

/// Default control socket path.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/relevo/relevo.sock";

/// Default state directory (the addresses Relevo added, for crash cleanup).
pub const DEFAULT_STATE_DIR: &str = "/run/relevo";

pub(crate) const KEYS: &[&str] = &[
    "name",
    "control_socket",
    "control_group",
    "state_dir",
    "hook_security",
];

/// Longest node or instance name.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// Longest socket path that fits `sockaddr_un.sun_path` with its terminating NUL.
const MAX_SOCKET_PATH_LEN: usize = 107;

/// Reads `[node]`; an absent table means all defaults.
pub(crate) fn read_node(diags: &mut Diags, table: Option<&Table<'_, '_>>) -> NodeConfig {
    if let Some(table) = table {
        table.check_keys(diags, KEYS, &[]);
    }
    let get = |key| table.and_then(|table| table.get(key));
    let name = match get("name") {
        Some(value) => read_name(diags, "node `name`", value).unwrap_or_default(),
        None => host_name().unwrap_or_else(|why| {
            let message =
                format!("cannot use the host name as node name ({why}); set `name` in [node]");
            diags.error(&(0..0), message);
            String::new()
        }),
    };
    let control_socket = get("control_socket")
        .and_then(|value| read_socket_path(diags, value))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET));
    let control_group = get("control_group").and_then(|value| read_group(diags, value));
    let state_dir = get("state_dir")
        .and_then(|value| read_state_dir(diags, value))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    let hook_security = get("hook_security")
        .and_then(|value| read_hook_security(diags, value))
        .unwrap_or_default();
    NodeConfig {
        name,
        control_socket,
        control_group,
        state_dir,
        hook_security,
    }
}

/// `control_group`: a group that exists on this host (checked here so a typo is refused by
/// `relevo check`, not discovered when an operator is locked out).
fn read_group(diags: &mut Diags, value: &Value<'_>) -> Option<String> {
    let name = diags.string("control_group", value)?;
    match nix::unistd::Group::from_name(name) {
        Ok(Some(_)) => Some(name.to_string()),
        Ok(None) => {
            let message = format!(
                "`control_group`: no group \"{}\" on this host; create it or remove the key",
                name.escape_debug()
            );
            diags.error(&value.span(), message);
            None
        }
        Err(errno) => {
            let message = format!("`control_group`: looking up \"{name}\" failed: {errno}");
            diags.error(&value.span(), message);
            None
        }
    }
}

fn read_state_dir(diags: &mut Diags, value: &Value<'_>) -> Option<PathBuf> {
    let path = diags.string("state_dir", value)?;
    if !path.starts_with('/') || path.contains('\0') {
        let message = format!(
            "`state_dir` must be an absolute path, got \"{}\"",
            path.escape_debug()
        );
        diags.error(&value.span(), message);
        return None;
    }
    Some(PathBuf::from(path))
}

fn read_hook_security(diags: &mut Diags, value: &Value<'_>) -> Option<HookSecurity> {
    match diags.string("hook_security", value)? {
        "strict" => Some(HookSecurity::Strict),
        "off" => Some(HookSecurity::Off),
        other => {
            let message = format!(
                "`hook_security` must be \"strict\" or \"off\", got \"{}\"",
                other.escape_debug()
            );
            diags.error(&value.span(), message);
            None
        }
    }
}

/// A node or instance name; `label` names it in messages.
pub(crate) fn read_name(diags: &mut Diags, label: &str, value: &Value<'_>) -> Option<String> {
    let name = diags.string("name", value)?;
    match name_problem(name) {
        Some(problem) => {
            diags.error(&value.span(), format!("{label} {problem}"));
            None
        }
        None => Some(name.to_string()),
    }
}

fn read_socket_path(diags: &mut Diags, value: &Value<'_>) -> Option<PathBuf> {
    let path = diags.string("control_socket", value)?;
    match socket_path_problem(path) {
        Some(problem) => {
            diags.error(&value.span(), format!("`control_socket` {problem}"));
            None
        }
        None => Some(PathBuf::from(path)),
    }
}

/// The host name, as the default node name.
fn host_name() -> Result<String, String> {
    let name =
        nix::unistd::gethostname().map_err(|errno| format!("gethostname failed: {errno}"))?;
    let name = name
        .into_string()
        .map_err(|_| "it is not valid UTF-8".to_string())?;
    if name.is_empty() {
        return Err("it is empty".to_string());
    }
    Ok(name)
}

/// Why `name` is not a valid node or instance name (`[A-Za-z0-9_.-]+`, at most 64 bytes).
pub(crate) fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".to_string());
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!("is longer than {MAX_NAME_LEN} bytes"));
    }
    let bad = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))?;
    Some(format!(
        "\"{}\" contains {:?}; use only letters, digits, '_', '.' and '-'",
        name.escape_debug(),
        bad
    ))
}

/// Why `path` cannot be the control socket.
fn socket_path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some(format!(
            "must be an absolute path, got \"{}\"",
            path.escape_debug()
        ));
    }
    if path.ends_with('/') {
        return Some("must name a socket file, not a directory".to_string());
    }
    if path.contains('\0') {
        return Some("must not contain NUL".to_string());
    }
    if path.len() > MAX_SOCKET_PATH_LEN {
        return Some(format!(
            "is longer than {MAX_SOCKET_PATH_LEN} bytes (the Unix socket path limit)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name_problem("web-1_a.b"), None);
        assert!(name_problem("").unwrap().contains("empty"));
        assert!(name_problem("a b").unwrap().contains("' '"));
        assert!(name_problem(&"x".repeat(65)).unwrap().contains("64"));
        assert_eq!(name_problem(&"x".repeat(64)), None);
    }

    #[test]
    fn socket_paths() {
        assert_eq!(socket_path_problem("/run/relevo/relevo.sock"), None);
        assert!(socket_path_problem("relevo.sock")
            .unwrap()
            .contains("absolute"));
        assert!(socket_path_problem("/run/").unwrap().contains("directory"));
        assert!(socket_path_problem(&format!("/{}", "a".repeat(107)))
            .unwrap()
            .contains("107"));
        assert_eq!(socket_path_problem(&format!("/{}", "a".repeat(106))), None);
    }
}
