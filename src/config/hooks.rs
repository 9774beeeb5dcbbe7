//! `hooks` tables: per event, either a program path (a string) or an argv array, for the state
//! changes of a `[[vrrp]]` instance and the cluster events of `[cluster]`. Programs are executed
//! without a shell, so the path must be absolute and a string cannot carry arguments. The argv
//! rules are shared with the commands of `[[group.resource]]`.

use super::reader::{Diags, Value};
use super::types::{ClusterHooks, Hooks};

pub(crate) const KEYS: &[&str; 4] = &["master", "backup", "fault", "stop"];

/// The events of `[cluster] hooks` (their `RELEVO_EVENT` names).
pub(crate) const CLUSTER_KEYS: &[&str; 6] = &[
    "node-dead",
    "quorum-lost",
    "quorum-regained",
    "fencing",
    "fenced",
    "fence-failed",
];

/// Reads a `[[vrrp]]` `hooks` table (inline `{ ... }` or a `[vrrp.hooks]` section).
pub(crate) fn read_hooks(diags: &mut Diags, value: &Value<'_>) -> Hooks {
    let [master, backup, fault, stop] = read_hook_table(diags, value, KEYS);
    Hooks {
        master,
        backup,
        fault,
        stop,
    }
}

/// Reads the `[cluster]` `hooks` table.
pub(crate) fn read_cluster_hooks(diags: &mut Diags, value: &Value<'_>) -> ClusterHooks {
    let [node_dead, quorum_lost, quorum_regained, fencing, fenced, fence_failed] =
        read_hook_table(diags, value, CLUSTER_KEYS);
    ClusterHooks {
        node_dead,
        quorum_lost,
        quorum_regained,
        fencing,
        fenced,
        fence_failed,
    }
}

/// One command per key of `keys` (in that order), `None` where a key is absent or wrong.
fn read_hook_table<const N: usize>(
    diags: &mut Diags,
    value: &Value<'_>,
    keys: &[&str; N],
) -> [Option<Vec<String>>; N] {
    let Some(table) = diags.table("hooks", "`hooks`", value) else {
        return std::array::from_fn(|_| None);
    };
    table.check_keys(diags, keys, &[]);
    keys.map(|key| {
        table
            .get(key)
            .and_then(|value| read_command(diags, key, value))
    })
}

/// One hook command as argv.
fn read_command(diags: &mut Diags, key: &str, value: &Value<'_>) -> Option<Vec<String>> {
    read_program(diags, &format!("hooks.{key}"), value)
}

/// A command written as a program path (a string, no arguments) or an argv array; shared by
/// hooks and `[[track]] script`. `label` names the key in messages.
pub(crate) fn read_program(
    diags: &mut Diags,
    label: &str,
    value: &Value<'_>,
) -> Option<Vec<String>> {
    if let Some(path) = value.get_ref().as_str() {
        if path.contains(char::is_whitespace) && path.starts_with('/') {
            let message = format!(
                "`{label}` is a program path run without a shell; to pass arguments write an array, \
                 e.g. [\"/path/to/hook\", \"arg\"]"
            );
            diags.error(&value.span(), message);
            return None;
        }
        return check_argv(diags, label, value, vec![path.to_string()]);
    }
    read_argv(diags, label, value)
}

/// A command written as an argv array of strings: the first is an absolute program path. Shared
/// by hooks and group resources; `label` names the key in messages.
pub(crate) fn read_argv(diags: &mut Diags, label: &str, value: &Value<'_>) -> Option<Vec<String>> {
    let items = diags.array(label, value)?;
    if items.is_empty() {
        diags.error(
            &value.span(),
            format!("`{label}` must not be an empty array"),
        );
        return None;
    }
    let before = diags.count();
    let argv: Vec<String> = items
        .iter()
        .filter_map(|item| diags.string(label, item).map(str::to_string))
        .collect();
    if diags.count() != before {
        return None;
    }
    check_argv(diags, label, value, argv)
}

fn check_argv(
    diags: &mut Diags,
    label: &str,
    value: &Value<'_>,
    argv: Vec<String>,
) -> Option<Vec<String>> {
    let program = argv.first()?;
    let problem = if !program.starts_with('/') {
        Some(format!(
            "program must be an absolute path, got \"{}\"",
            program.escape_debug()
        ))
    } else if program.ends_with('/') {
        Some(format!(
            "program \"{}\" is a directory",
            program.escape_debug()
        ))
    } else if argv.iter().any(|arg| arg.contains('\0')) {
        Some("arguments must not contain NUL".to_string())
    } else {
        None
    };
    match problem {
        Some(problem) => {
            diags.error(&value.span(), format!("`{label}`: {problem}"));
            None
        }
        None => Some(argv),
    }
}
