//! Shared by the config test binaries: parse text that must be refused, and assert its
//! diagnostics exactly (line, column, message fragment, in file order).
#![allow(dead_code)]
use std::path::Path;

use relevo::config::{self, Diagnostic};

/// The diagnostics of `text` (parsed as "t.toml"), which must be refused.
pub fn refused(text: &str) -> Vec<Diagnostic> {
    match config::parse(text, Path::new("t.toml")) {
        Ok(_) => panic!("config should be refused:\n{text}"),
        Err(error) => error.diagnostics,
    }
}

/// Asserts that `text` is refused with exactly `expected` errors (line, column, message
/// fragment), in file order, none of them a warning.
#[track_caller]
pub fn assert_refused(text: &str, expected: &[(usize, usize, &str)]) {
    let found = refused(text);
    let rendered: Vec<String> = found.iter().map(|d| d.to_string()).collect();
    let rendered = rendered.join("\n");
    assert_eq!(
        found.len(),
        expected.len(),
        "wrong number of errors for\n{text}\ngot:\n{rendered}"
    );
    for (diagnostic, (line, column, fragment)) in found.iter().zip(expected) {
        assert_eq!(
            (diagnostic.line, diagnostic.column),
            (*line, *column),
            "position of {fragment:?} for\n{text}\ngot:\n{rendered}"
        );
        assert!(
            diagnostic.message.contains(fragment),
            "{fragment:?} not in {:?}",
            diagnostic.message
        );
        assert!(!diagnostic.warning);
        assert_eq!(diagnostic.file, Path::new("t.toml"));
    }
}
