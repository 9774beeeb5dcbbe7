//! `[[track]]`: checks whose results change the effective priority of the `[[vrrp]]`
//! instances that name them (or, with weight 0, put them in FAULT) and the eligibility of the
//! `[[group]]`s that name them. A track has exactly one of `script` (argv as for hooks),
//! `interface` or `file`; names are unique, and `track = [...]` of an instance or a group must
//! name tracks of the file.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use super::duration::HOUR;
use super::hooks::read_program;
use super::node::read_name;
use super::reader::{read_named_tables, Diags, Table, Value};
use super::types::{TrackCheck, TrackConfig};
use super::vrrp::read_interface;

pub(crate) const KEYS: &[&str] = &[
    "name",
    "script",
    "interface",
    "file",
    "interval",
    "timeout",
    "rise",
    "fall",
    "weight",
];

/// The kinds of check, exactly one per track.
const CHECK_KEYS: &[&str] = &["script", "interface", "file"];

/// Default time between two checks.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
const INTERVAL_MIN: Duration = Duration::from_millis(10);
/// Largest `weight` (either sign): a priority moves within 1..=254.
pub const MAX_WEIGHT: i64 = 254;
/// Largest `rise` / `fall`.
const MAX_COUNT: i64 = 100;

/// The tracks as read, and their names when every name was valid (the checks of `track =
/// [...]` are skipped otherwise, to avoid follow-up errors).
pub(crate) struct TrackRead {
    pub tracks: Vec<TrackConfig>,
    pub names: Option<Vec<String>>,
}

/// Reads the top-level `track` value (an array of tables).
pub(crate) fn read_tracks(diags: &mut Diags, value: Option<&Value<'_>>) -> TrackRead {
    let Some(value) = value else {
        return TrackRead {
            tracks: Vec::new(),
            names: Some(Vec::new()),
        };
    };
    let read = read_named_tables(
        diags,
        value,
        ("track", "[[track]]", "track", "each check"),
        |track: &TrackConfig| &track.name,
        read_track,
    );
    let tracks = read.items;
    let names = read
        .complete
        .then(|| tracks.iter().map(|track| track.name.clone()).collect());
    TrackRead { tracks, names }
}

fn read_track(diags: &mut Diags, table: &Table<'_, '_>) -> (TrackConfig, Option<Range<usize>>) {
    table.check_keys(diags, KEYS, &[]);
    let name_value = table.required(diags, "name");
    let name = name_value.and_then(|value| read_name(diags, "track `name`", value));
    let name_at = name.as_ref().and(name_value.map(|value| value.span()));
    let check = read_check(diags, table);
    let interval = table
        .get("interval")
        .and_then(|value| diags.duration("interval", value, INTERVAL_MIN, HOUR))
        .unwrap_or(DEFAULT_INTERVAL);
    let timeout = table
        .get("timeout")
        .and_then(|value| diags.duration("timeout", value, INTERVAL_MIN, HOUR))
        .unwrap_or(interval);
    let count = |diags: &mut Diags, key: &str| {
        table
            .get(key)
            .and_then(|value| diags.integer(key, value, 1..=MAX_COUNT))
            .and_then(|count| u32::try_from(count).ok())
            .unwrap_or(1)
    };
    let rise = count(diags, "rise");
    let fall = count(diags, "fall");
    let default_weight = match check {
        Some(TrackCheck::File(_)) => 1,
        _ => 0,
    };
    let weight = table
        .get("weight")
        .and_then(|value| diags.integer("weight", value, -MAX_WEIGHT..=MAX_WEIGHT))
        .and_then(|weight| i32::try_from(weight).ok())
        .unwrap_or(default_weight);
    if let Some(check) = &check {
        check_kind_keys(diags, table, check);
    }
    let track = TrackConfig {
        name: name.unwrap_or_default(),
        check: check.unwrap_or(TrackCheck::Script(Vec::new())),
        interval,
        timeout,
        rise,
        fall,
        weight,
    };
    (track, name_at)
}

/// The timing keys each kind of check uses; the others are refused (they would do nothing).
fn check_kind_keys(diags: &mut Diags, table: &Table<'_, '_>, check: &TrackCheck) {
    let (used, why): (&[&str], &str) = match check {
        TrackCheck::Script(_) => return,
        TrackCheck::Interface(_) => (&[], "an interface track follows the link at once"),
        TrackCheck::File(_) => (
            &["interval"],
            "a file track takes each value read (every `interval`) at once",
        ),
    };
    for key in ["interval", "timeout", "rise", "fall"] {
        if let Some(value) = table.get(key).filter(|_| !used.contains(&key)) {
            let message = format!("`{key}` applies to script tracks; {why}");
            diags.error(&value.span(), message);
        }
    }
}

/// Exactly one of `script`, `interface`, `file`.
fn read_check(diags: &mut Diags, table: &Table<'_, '_>) -> Option<TrackCheck> {
    let present: Vec<(&str, &Value<'_>)> = CHECK_KEYS
        .iter()
        .filter_map(|key| table.get(key).map(|value| (*key, value)))
        .collect();
    match present.as_slice() {
        [] => {
            let message = "[[track]] needs one of `script`, `interface` or `file`";
            diags.error(&table.span, message);
            None
        }
        [(key, value)] => match *key {
            "script" => read_program(diags, "script", value).map(TrackCheck::Script),
            "interface" => read_interface(diags, value).map(TrackCheck::Interface),
            _ => read_file(diags, value).map(TrackCheck::File),
        },
        [(first, _), (second, value), ..] => {
            let message = format!(
                "a [[track]] checks one thing: `{first}` and `{second}` are both set; \
                 write one [[track]] per check"
            );
            diags.error(&value.span(), message);
            None
        }
    }
}

fn read_file(diags: &mut Diags, value: &Value<'_>) -> Option<PathBuf> {
    let path = diags.string("file", value)?;
    if !path.starts_with('/') || path.ends_with('/') || path.contains('\0') {
        let message = format!(
            "`file` must be an absolute file path, got \"{}\"",
            path.escape_debug()
        );
        diags.error(&value.span(), message);
        return None;
    }
    Some(PathBuf::from(path))
}

/// `track = ["name", ...]` of a `[[vrrp]]` or `[[group]]`; `known` are the `[[track]]` names
/// (`None` when some were invalid: names are then not checked).
pub(crate) fn read_refs(
    diags: &mut Diags,
    table: &Table<'_, '_>,
    known: Option<&[String]>,
) -> Vec<String> {
    let Some(value) = table.get("track") else {
        return Vec::new();
    };
    let Some(items) = diags.array("track", value) else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    for item in items {
        let Some(name) = diags.string("track", item) else {
            continue;
        };
        if names.iter().any(|seen| seen == name) {
            let message = format!("track \"{}\" is listed twice", name.escape_debug());
            diags.error(&item.span(), message);
            continue;
        }
        if let Some(known) = known {
            if !known.iter().any(|track| track == name) {
                let defined = if known.is_empty() {
                    "there is no [[track]]".to_string()
                } else {
                    format!("defined: {}", known.join(", "))
                };
                let message = format!(
                    "unknown track \"{}\" in {}; {defined}",
                    name.escape_debug(),
                    table.name
                );
                diags.error(&item.span(), message);
                continue;
            }
        }
        names.push(name.to_string());
    }
    names
}
