//! `relevo check -c FILE`: validate a config and print a one-line-per-instance summary, or the
//! diagnostics. [`run_check`] returns the output as strings so it can be tested without a process.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::duration::format_duration;
use super::types::{Config, VrrpConfig};
use crate::wire::VrrpVersion;

/// What `relevo check` prints and its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// 0 when the config is valid, 1 otherwise.
    pub code: i32,
    /// The summary (empty on error).
    pub stdout: String,
    /// The diagnostics (empty on success).
    pub stderr: String,
}

/// Loads and validates `path` and renders the outcome.
pub fn run_check(path: &Path) -> CheckReport {
    match super::load(path) {
        Ok(config) => CheckReport {
            code: 0,
            stdout: summary(&config),
            stderr: config
                .warnings
                .iter()
                .map(|warning| format!("{warning}\n"))
                .collect(),
        },
        Err(error) => CheckReport {
            code: 1,
            stdout: String::new(),
            stderr: format!("{error}\n"),
        },
    }
}

/// What `relevo check -c FILE` does: prints the summary to stdout or the diagnostics to stderr
/// and returns the exit status (0 valid, 1 invalid or unreadable).
pub fn check_command(path: &Path) -> i32 {
    let report = run_check(path);
    // A closed stdout/stderr must not turn into a panic; the exit status still tells the story.
    let _ = std::io::stdout().write_all(report.stdout.as_bytes());
    let _ = std::io::stderr().write_all(report.stderr.as_bytes());
    report.code
}

/// The success summary: the file, the node, then one line per instance.
pub fn summary(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: OK", config.path.display());
    let _ = writeln!(
        out,
        "node {} (control socket {})",
        config.node.name,
        config.node.control_socket.display()
    );
    for instance in &config.vrrp {
        let _ = writeln!(out, "{}", instance_line(instance));
    }
    out
}

fn instance_line(vrrp: &VrrpConfig) -> String {
    let version = match vrrp.version {
        VrrpVersion::V2 => "v2",
        VrrpVersion::V3 => "v3",
    };
    let vips: Vec<String> = vrrp.vips.iter().map(ToString::to_string).collect();
    let transport = if vrrp.unicast_peers.is_empty() {
        "multicast".to_string()
    } else {
        let peers: Vec<String> = vrrp.unicast_peers.iter().map(ToString::to_string).collect();
        format!("unicast to {}", peers.join(","))
    };
    let transport = match &vrrp.vmac_interface {
        Some(name) => format!("{transport}, virtual MAC on {name}"),
        None => transport,
    };
    format!(
        "vrrp {}: interface {} vrid {} {} {} priority {} interval {} vips {} {}",
        vrrp.name,
        vrrp.interface,
        vrrp.vrid,
        version,
        vrrp.family(),
        vrrp.priority,
        format_duration(vrrp.advert_interval),
        vips.join(","),
        transport
    )
}
