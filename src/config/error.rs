//! Config diagnostics: what went wrong, in which file, at which line and column, rendered
//! compiler-style as `FILE:LINE:COL: error: MESSAGE` followed by the source line and a caret.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line of the offending value; 0 when the problem has no position (I/O errors).
    pub line: usize,
    /// 1-based column, counted in characters; 0 when the problem has no position.
    pub column: usize,
    /// What is wrong and, where useful, how to fix it.
    pub message: String,
    /// The source line the problem is on (without its line break), when there is one.
    pub source_line: Option<String>,
    /// A warning (the config is accepted) rather than an error.
    pub warning: bool,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        let severity = if self.warning { "warning" } else { "error" };
        if self.line == 0 {
            return write!(f, "{file}: {severity}: {}", self.message);
        }
        write!(
            f,
            "{file}:{}:{}: {severity}: {}",
            self.line, self.column, self.message
        )?;
        if let Some(source) = &self.source_line {
            // Keep tabs in the caret line so the caret lines up under the column.
            let pad: String = source
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n    {source}\n    {pad}^")?;
        }
        Ok(())
    }
}

/// Everything wrong with a config file: one or more [`Diagnostic`]s, sorted by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// An error that is not tied to a position in the file, e.g. the file cannot be read.
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            diagnostics: vec![Diagnostic {
                file: file.to_path_buf(),
                line: 0,
                column: 0,
                message: message.into(),
                source_line: None,
                warning: false,
            }],
        }
    }

    /// Diagnostics from byte offsets into `source`; sorted by position, exact duplicates dropped.
    pub(crate) fn at_offsets(file: &Path, source: &str, mut found: Vec<(usize, String)>) -> Self {
        found.sort_by_key(|(offset, _)| *offset);
        found.dedup();
        let index = LineIndex::new(source);
        let diagnostics = found
            .into_iter()
            .map(|(offset, message)| {
                let (line, column, text) = index.locate(offset);
                Diagnostic {
                    file: file.to_path_buf(),
                    line,
                    column,
                    message,
                    source_line: Some(text.to_string()),
                    warning: false,
                }
            })
            .collect();
        ConfigError { diagnostics }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Maps byte offsets to 1-based line and column numbers.
pub(crate) struct LineIndex<'a> {
    source: &'a str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(source: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { source, starts }
    }

    /// Line, column (in characters) and the text of that line, for any offset: offsets past
    /// the end or inside a UTF-8 sequence are moved back to the nearest character start.
    pub(crate) fn locate(&self, offset: usize) -> (usize, usize, &'a str) {
        let mut offset = offset.min(self.source.len());
        while !self.source.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&start| start <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let end = self.source[start..]
            .find('\n')
            .map_or(self.source.len(), |i| start + i);
        let column = self.source[start..offset].chars().count() + 1;
        let text = self.source[start..end].trim_end_matches('\r');
        (line, column, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_columns_in_characters() {
        let source = "a = 1\nname = \"é\" x\n\nlast";
        let index = LineIndex::new(source);
        assert_eq!(index.locate(0), (1, 1, "a = 1"));
        assert_eq!(index.locate(4), (1, 5, "a = 1"));
        assert_eq!(index.locate(5), (1, 6, "a = 1"));
        assert_eq!(index.locate(6), (2, 1, "name = \"é\" x"));
        let x = source.find('x').unwrap();
        assert_eq!(index.locate(x), (2, 12, "name = \"é\" x"));
        assert_eq!(index.locate(source.len()), (4, 5, "last"));
        assert_eq!(index.locate(source.len() + 100), (4, 5, "last"));
        assert_eq!(
            index.locate(source.find('\n').unwrap() + 1 + 1),
            (2, 2, "name = \"é\" x")
        );
    }

    #[test]
    fn offsets_inside_a_character_move_back() {
        let source = "x = \"é\"";
        let inside = source.find('é').unwrap() + 1;
        assert_eq!(LineIndex::new(source).locate(inside), (1, 6, source));
    }

    #[test]
    fn handles_crlf_and_empty_sources() {
        let index = LineIndex::new("a\r\nb");
        assert_eq!(index.locate(3), (2, 1, "b"));
        assert_eq!(index.locate(1), (1, 2, "a"));
        assert_eq!(LineIndex::new("").locate(7), (1, 1, ""));
    }

    #[test]
    fn renders_file_line_column_source_and_caret() {
        let err = ConfigError::at_offsets(
            Path::new("r.toml"),
            "[node]\n\tname = 5\n",
            vec![(15, "bad".to_string())],
        );
        assert_eq!(
            err.to_string(),
            "r.toml:2:9: error: bad\n    \tname = 5\n    \t       ^"
        );
    }

    #[test]
    fn sorts_and_deduplicates() {
        let found = vec![
            (5, "b".to_string()),
            (0, "a".to_string()),
            (5, "b".to_string()),
        ];
        let err = ConfigError::at_offsets(Path::new("f"), "0123456789", found);
        let got: Vec<_> = err
            .diagnostics
            .iter()
            .map(|d| (d.column, d.message.as_str()))
            .collect();
        assert_eq!(got, [(1, "a"), (6, "b")]);
    }

    #[test]
    fn whole_file_errors_name_the_file_only() {
        let err = ConfigError::whole_file(Path::new("/etc/x.toml"), "cannot read: denied");
        assert_eq!(err.to_string(), "/etc/x.toml: error: cannot read: denied");
    }
}
