//! Reading the spanned TOML tree: typed getters that record a positioned diagnostic instead of
//! stopping at the first problem, and key checks that name unknown and not-yet-supported keys.

use std::ops::{Range, RangeInclusive};
use std::time::Duration;

use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue};

use super::duration::{format_duration, parse_duration, DURATION_HINT};
use super::error::LineIndex;

/// A TOML value with the byte span it came from.
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// Collected problems, as (byte offset, message); turned into a `ConfigError` at the end.
pub(crate) struct Diags<'s> {
    pub found: Vec<(usize, String)>,
    /// Warnings: the config is accepted, `relevo check` shows them.
    pub warned: Vec<(usize, String)>,
    lines: LineIndex<'s>,
}

impl<'s> Diags<'s> {
    pub fn new(source: &'s str) -> Self {
        Diags {
            found: Vec::new(),
            warned: Vec::new(),
            lines: LineIndex::new(source),
        }
    }

    /// The 1-based line of a span, for messages that refer to an earlier definition.
    pub fn line_of(&self, span: &Range<usize>) -> usize {
        self.lines.locate(span.start).0
    }

    /// Records a problem at the start of `span`.
    pub fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.found.push((span.start, message.into()));
    }

    /// Records a warning at the start of `span` (the config stays valid).
    pub fn warn(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.warned.push((span.start, message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The number of problems recorded so far; compare later to see if a step added any.
    pub fn count(&self) -> usize {
        self.found.len()
    }

    fn wrong_type(&mut self, key: &str, expected: &str, value: &Value<'_>) {
        let found = with_article(value.get_ref().type_str());
        self.error(
            &value.span(),
            format!("`{key}` must be {expected}, found {found}"),
        );
    }

    /// The value as a string.
    pub fn string<'v>(&mut self, key: &str, value: &'v Value<'_>) -> Option<&'v str> {
        match value.get_ref() {
            DeValue::String(text) => Some(text.as_ref()),
            _ => {
                self.wrong_type(key, "a string", value);
                None
            }
        }
    }

    /// The value as a boolean.
    pub fn boolean(&mut self, key: &str, value: &Value<'_>) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(flag) => Some(*flag),
            _ => {
                self.wrong_type(key, "true or false", value);
                None
            }
        }
    }

    /// The value as an integer within `range`.
    pub fn integer(
        &mut self,
        key: &str,
        value: &Value<'_>,
        range: RangeInclusive<i64>,
    ) -> Option<i64> {
        let DeValue::Integer(integer) = value.get_ref() else {
            self.wrong_type(key, "an integer", value);
            return None;
        };
        match i64::from_str_radix(integer.as_str(), integer.radix()) {
            Ok(number) if range.contains(&number) => Some(number),
            _ => {
                let (min, max) = (range.start(), range.end());
                let message = format!("`{key}` must be between {min} and {max}, got {integer}");
                self.error(&value.span(), message);
                None
            }
        }
    }

    /// The value as duration text within `min..=max`.
    pub fn duration(
        &mut self,
        key: &str,
        value: &Value<'_>,
        min: Duration,
        max: Duration,
    ) -> Option<Duration> {
        let text = match value.get_ref() {
            DeValue::String(text) => text,
            DeValue::Integer(number) => {
                let message = format!("`{key}` = {number} has no unit; {DURATION_HINT}");
                self.error(&value.span(), message);
                return None;
            }
            _ => {
                self.wrong_type(key, "a duration string such as \"1s\"", value);
                return None;
            }
        };
        match parse_duration(text) {
            Ok(duration) if duration >= min && duration <= max => Some(duration),
            Ok(_) => {
                let (min, max) = (format_duration(min), format_duration(max));
                let message = format!("`{key}` must be between {min} and {max}, got \"{text}\"");
                self.error(&value.span(), message);
                None
            }
            Err(why) => {
                self.error(&value.span(), format!("`{key}`: {why}"));
                None
            }
        }
    }

    /// The value as an array.
    pub fn array<'v, 'i>(&mut self, key: &str, value: &'v Value<'i>) -> Option<&'v [Value<'i>]> {
        match value.get_ref() {
            DeValue::Array(items) => Some(items),
            _ => {
                self.wrong_type(key, "an array", value);
                None
            }
        }
    }

    /// The value as a table (a `[name]` section or an inline `{ ... }` table).
    /// `label` names the table in later messages, e.g. `[node]`.
    pub fn table<'v, 'i>(
        &mut self,
        key: &str,
        label: &'static str,
        value: &'v Value<'i>,
    ) -> Option<Table<'v, 'i>> {
        match value.get_ref() {
            DeValue::Table(entries) => Some(Table {
                entries,
                span: value.span(),
                name: label,
            }),
            _ => {
                self.wrong_type(key, "a table", value);
                None
            }
        }
    }
}

/// A table being read, with the span of its header (or inline braces) for "missing key" errors.
pub(crate) struct Table<'t, 'i> {
    pub entries: &'t DeTable<'i>,
    pub span: Range<usize>,
    /// How messages name the table, e.g. `[node]` or `[[vrrp]]`.
    pub name: &'static str,
}

/// A key of the design that is not implemented yet; `message` follows
/// "not supported yet in this release: ".
pub(crate) struct Later {
    pub key: &'static str,
    pub message: &'static str,
}

impl<'t, 'i> Table<'t, 'i> {
    /// The value under `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'t Value<'i>> {
        self.entries.get(key)
    }

    /// The value under `key`; a missing key is reported at the table header.
    pub fn required(&self, diags: &mut Diags, key: &str) -> Option<&'t Value<'i>> {
        let value = self.get(key);
        if value.is_none() {
            diags.error(
                &self.span,
                format!("{} is missing the required key `{key}`", self.name),
            );
        }
        value
    }

    /// Reports every key that is neither in `allowed` nor in `later` (and every `later` key with
    /// its own "not supported yet" message).
    pub fn check_keys(&self, diags: &mut Diags, allowed: &[&str], later: &[Later]) {
        for key in self.entries.keys() {
            let name: &str = key.get_ref();
            if allowed.contains(&name) {
                continue;
            }
            let message = match later.iter().find(|later| later.key == name) {
                Some(later) => format!("not supported yet in this release: {}", later.message),
                None => format!(
                    "unknown key `{}` in {}; allowed keys: {}",
                    name.escape_debug(),
                    self.name,
                    allowed.join(", ")
                ),
            };
            diags.error(&key.span(), message);
        }
    }
}

/// The items of a top-level array of named tables (`[[fence]]`, `[[track]]`).
pub(crate) struct NamedTables<T> {
    pub items: Vec<T>,
    /// Every item was a table with a valid name.
    pub complete: bool,
    /// Each valid, first-seen name with its span, in file order.
    pub name_spans: Vec<(String, Range<usize>)>,
}

/// Reads the top-level array of tables `key` (`label` e.g. `[[track]]`, `what` e.g. "track"
/// in the duplicate-name message, `each` e.g. "each check" in the hint when it is not an
/// array): `read` reads one table and returns it with the span of its valid name; names must
/// be unique.
pub(crate) fn read_named_tables<T>(
    diags: &mut Diags,
    value: &Value<'_>,
    (key, label, what, each): (&str, &'static str, &str, &str),
    name_of: impl Fn(&T) -> &str,
    mut read: impl FnMut(&mut Diags, &Table<'_, '_>) -> (T, Option<Range<usize>>),
) -> NamedTables<T> {
    let mut read_all = NamedTables {
        items: Vec::new(),
        complete: false,
        name_spans: Vec::new(),
    };
    let Some(items) = value.get_ref().as_array() else {
        let message = format!(
            "`{key}` must be an array of tables: write {label} (double brackets) before {each}"
        );
        diags.error(&value.span(), message);
        return read_all;
    };
    read_all.complete = true;
    for item in items {
        let Some(table) = diags.table(key, label, item) else {
            read_all.complete = false;
            continue;
        };
        let (entry, name_at) = read(diags, &table);
        let name = name_of(&entry).to_string();
        match name_at {
            Some(at) => match read_all.name_spans.iter().find(|(seen, _)| *seen == name) {
                Some((_, first)) => {
                    let line = diags.line_of(first);
                    let message =
                        format!("duplicate {what} name \"{name}\" (first used on line {line})");
                    diags.error(&at, message);
                }
                None => read_all.name_spans.push((name, at)),
            },
            None => read_all.complete = false,
        }
        read_all.items.push(entry);
    }
    read_all
}

/// "a string", "an integer", ...
fn with_article(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_value(text: &str) -> Value<'_> {
        let table = DeTable::parse(text).unwrap().into_inner();
        let (_, value) = table.into_iter().next().unwrap();
        value
    }

    #[test]
    fn integer_range_and_type_errors() {
        let mut diags = Diags::new("");
        assert_eq!(
            diags.integer("vrid", &first_value("vrid = 0x10"), 1..=255),
            Some(16)
        );
        assert_eq!(
            diags.integer("vrid", &first_value("vrid = 1_0"), 1..=255),
            Some(10)
        );
        assert_eq!(
            diags.integer("vrid", &first_value("vrid = 256"), 1..=255),
            None
        );
        assert_eq!(
            diags.integer("vrid", &first_value("vrid = 99999999999999999999"), 1..=255),
            None
        );
        assert_eq!(
            diags.integer("vrid", &first_value("vrid = \"5\""), 1..=255),
            None
        );
        assert_eq!(
            diags.integer("vrid", &first_value("vrid = -0"), 0..=0),
            Some(0)
        );
        let messages: Vec<_> = diags
            .found
            .iter()
            .map(|(at, m)| (*at, m.as_str()))
            .collect();
        assert_eq!(
            messages,
            [
                (7, "`vrid` must be between 1 and 255, got 256"),
                (
                    7,
                    "`vrid` must be between 1 and 255, got 99999999999999999999"
                ),
                (7, "`vrid` must be an integer, found a string"),
            ]
        );
    }

    #[test]
    fn duration_errors_name_the_key() {
        let mut diags = Diags::new("");
        let (min, max) = (Duration::ZERO, Duration::from_secs(60));
        assert_eq!(
            diags.duration("d", &first_value("d = \"1.5s\""), min, max),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(diags.duration("d", &first_value("d = 5"), min, max), None);
        assert_eq!(
            diags.duration("d", &first_value("d = \"2m\""), min, max),
            None
        );
        assert_eq!(
            diags.duration("d", &first_value("d = true"), min, max),
            None
        );
        assert!(diags.found[0]
            .1
            .starts_with("`d` = 5 has no unit; write a string with a unit"));
        assert_eq!(
            diags.found[1].1,
            "`d` must be between 0s and 1m, got \"2m\""
        );
        assert_eq!(
            diags.found[2].1,
            "`d` must be a duration string such as \"1s\", found a boolean"
        );
    }

    #[test]
    fn articles() {
        assert_eq!(with_article("integer"), "an integer");
        assert_eq!(with_article("array"), "an array");
        assert_eq!(with_article("table"), "a table");
    }
}
