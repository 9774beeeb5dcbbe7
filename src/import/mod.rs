//! `relevo import-keepalived FILE`: a Relevo config from the common subset of a
//! keepalived.conf. [`keepalived_parse`] reads the keepalived syntax, [`keepalived_map`] maps
//! it; this module runs both, checks the result with the validation `relevo check` uses, and
//! prints the config and, on stderr, every option it could not convert with its line.

pub mod keepalived_map;
pub mod keepalived_parse;

use std::io::Write as _;
use std::path::Path;

pub use keepalived_map::{Conversion, Remark};
pub use keepalived_parse::{Location, ParseError};

/// What `relevo import-keepalived` produces, without writing anything.
#[derive(Debug)]
pub struct ImportReport {
    /// 0 when a config was produced, 1 when the file could not be read or converted.
    pub code: i32,
    /// The config (empty on error).
    pub toml: String,
    /// The unconverted options, notes, warnings or the error.
    pub stderr: String,
}

/// Reads and converts the keepalived config at `path`; the TOML is validated as by
/// `relevo check` (a failure is reported on stderr, the config is still produced).
pub fn import_keepalived(path: &Path) -> ImportReport {
    let parsed = match keepalived_parse::parse_file(path) {
        Ok(parsed) => parsed,
        Err(error) => return failure(path, &error.to_string()),
    };
    let conversion = keepalived_map::convert(&parsed.statements, &path.display().to_string());
    let mut stderr = String::new();
    for (at, warning) in &parsed.warnings {
        stderr.push_str(&format!("{}: {at}: warning: {warning}\n", path.display()));
    }
    if conversion.instances == 0 {
        let mut message = "no vrrp_instance found: nothing to convert".to_string();
        if let Some(first) = conversion.unconverted.first() {
            message.push_str(&format!(
                " ({}: `{}` is not a keepalived section Relevo converts)",
                first.at, first.option
            ));
        }
        return failure(path, &message);
    }
    let remarks = [
        ("not converted", &conversion.unconverted),
        ("note", &conversion.notes),
    ];
    for (kind, list) in remarks {
        for remark in list {
            stderr.push_str(&format!(
                "{}: {}: {kind}: `{}`: {}\n",
                path.display(),
                remark.at,
                remark.option,
                remark.why
            ));
        }
    }
    if let Err(error) = crate::config::parse(&conversion.toml, Path::new("(converted config)")) {
        stderr.push_str(&format!(
            "the converted config does not pass `relevo check` yet; fix it by hand:\n{error}\n"
        ));
    }
    ImportReport {
        code: 0,
        toml: conversion.toml,
        stderr,
    }
}

fn failure(path: &Path, message: &str) -> ImportReport {
    ImportReport {
        code: 1,
        toml: String::new(),
        stderr: format!("relevo import-keepalived: {}: {message}\n", path.display()),
    }
}

/// The command: converts `file`, writes the config to `output` or stdout and the remarks to
/// stderr; returns the exit status.
pub fn import_keepalived_command(file: &Path, output: Option<&Path>) -> i32 {
    let report = import_keepalived(file);
    // A closed stderr must not turn into a panic; the exit status still tells the story.
    let _ = std::io::stderr().write_all(report.stderr.as_bytes());
    if report.code != 0 {
        return report.code;
    }
    let written = match output {
        Some(path) => std::fs::write(path, &report.toml)
            .map_err(|error| format!("cannot write {}: {error}", path.display())),
        None => std::io::stdout()
            .write_all(report.toml.as_bytes())
            .map_err(|error| format!("cannot write the config to stdout: {error}")),
    };
    match written {
        Ok(()) => 0,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "relevo import-keepalived: {error}");
            1
        }
    }
}
