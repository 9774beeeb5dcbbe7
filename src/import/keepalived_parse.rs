//! keepalived.conf syntax: lines of words, `{ ... }` blocks, `#`/`!` comments, double-quoted
//! strings, `\` line continuations and `include` (glob patterns, relative to the including
//! file), read into a tree of [`Statement`]s that remember where they were written. It knows
//! nothing of what the keywords mean (that is `keepalived_map`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// keepalived itself gives up on deeper include chains; this also stops include loops.
const MAX_INCLUDE_DEPTH: usize = 8;

/// Where a statement was written: a line of the file given on the command line or of a file
/// it includes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// `None` for the main file.
    pub included: Option<Arc<PathBuf>>,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.included {
            None => write!(f, "line {}", self.line),
            Some(path) => write!(f, "{} line {}", path.display(), self.line),
        }
    }
}

/// One statement: its words (quotes removed) and the block that follows it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub words: Vec<String>,
    pub block: Option<Vec<Statement>>,
    pub at: Location,
}

impl Statement {
    /// The keyword (first word).
    pub fn keyword(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    /// The words after the keyword.
    pub fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or_default()
    }

    /// The statement as written (without its block), for messages.
    pub fn text(&self) -> String {
        let text = self.words.join(" ");
        if self.block.is_some() {
            format!("{text} {{ ... }}")
        } else {
            text
        }
    }
}

/// A file read: its statements, and the `include`s that matched nothing (keepalived only
/// warns about those too).
#[derive(Debug, Default)]
pub struct Parsed {
    pub statements: Vec<Statement>,
    pub warnings: Vec<(Location, String)>,
}

/// Why a file cannot be read as keepalived.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub at: Option<Location>,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Open,
    Close,
    EndOfLine,
}

/// Reads and parses the keepalived config at `path` with the files it includes.
pub fn parse_file(path: &Path) -> Result<Parsed, ParseError> {
    let text = read_text(path, None)?;
    parse_source(&text, path)
}

/// Parses keepalived config text (its `include`s relative to the current directory).
pub fn parse_text(text: &str) -> Result<Parsed, ParseError> {
    parse_source(text, Path::new("./keepalived.conf"))
}

/// Parses `text`, the contents of the main file `path`.
fn parse_source(text: &str, path: &Path) -> Result<Parsed, ParseError> {
    let mut warnings = Vec::new();
    let tokens = tokenize(text, path, None, 0, &mut warnings)?;
    let mut at = 0;
    let statements = parse_block(&tokens, &mut at, None)?;
    Ok(Parsed {
        statements,
        warnings,
    })
}

fn read_text(path: &Path, included: Option<&Location>) -> Result<String, ParseError> {
    let bytes = std::fs::read(path).map_err(|error| ParseError {
        at: included.cloned(),
        message: format!("cannot read {}: {error}", path.display()),
    })?;
    String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        ParseError {
            at: Some(Location {
                included: included.map(|_| Arc::new(path.to_path_buf())),
                line,
            }),
            message: format!("{} is not a text file (invalid UTF-8)", path.display()),
        }
    })
}

/// The tokens of `text` (the file `path`, `None` for the main file), includes spliced in.
fn tokenize(
    text: &str,
    path: &Path,
    included: Option<Arc<PathBuf>>,
    depth: usize,
    warnings: &mut Vec<(Location, String)>,
) -> Result<Vec<(Token, Location)>, ParseError> {
    let mut tokens = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, first)) = lines.next() {
        let at = Location {
            included: included.clone(),
            line: index + 1,
        };
        // A trailing backslash continues the line (keepalived does this even in comments).
        let mut line = first.to_string();
        while line.ends_with('\\') {
            line.pop();
            match lines.next() {
                Some((_, next)) => line.push_str(next),
                None => break,
            }
        }
        let words = split_line(&line, &at)?;
        if matches!(words.first(), Some(Token::Word(word)) if word == "include") {
            for pattern in words.iter().skip(1) {
                if let Token::Word(pattern) = pattern {
                    let files = expand_include(pattern, path, &at, depth, warnings)?;
                    for file in files {
                        let text = read_text(&file, Some(&at))?;
                        let inner = Some(Arc::new(file.clone()));
                        tokens.extend(tokenize(&text, &file, inner, depth + 1, warnings)?);
                    }
                }
            }
            continue;
        }
        tokens.extend(words.into_iter().map(|token| (token, at.clone())));
        tokens.push((Token::EndOfLine, at));
    }
    Ok(tokens)
}

/// The files an `include PATTERN` names: relative patterns start at the including file's
/// directory; no match is a warning, as in keepalived.
fn expand_include(
    pattern: &str,
    from: &Path,
    at: &Location,
    depth: usize,
    warnings: &mut Vec<(Location, String)>,
) -> Result<Vec<PathBuf>, ParseError> {
    if depth >= MAX_INCLUDE_DEPTH {
        return Err(ParseError {
            at: Some(at.clone()),
            message: format!(
                "`include {pattern}`: includes nested more than {MAX_INCLUDE_DEPTH} deep (a loop?)"
            ),
        });
    }
    let base = from.parent().unwrap_or(Path::new("."));
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let full_text = full.to_string_lossy();
    let paths = glob::glob(&full_text).map_err(|error| ParseError {
        at: Some(at.clone()),
        message: format!("`include {pattern}`: invalid pattern: {error}"),
    })?;
    let mut files: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
    files.sort();
    if files.is_empty() {
        warnings.push((
            at.clone(),
            format!("`include {pattern}`: no file matches {full_text}; nothing included"),
        ));
    }
    Ok(files)
}

/// The tokens of one line: words, quoted strings (one word, quotes removed), braces; a `#` or
/// `!` outside quotes starts a comment.
fn split_line(line: &str, at: &Location) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, tokens: &mut Vec<Token>| {
        if !word.is_empty() {
            tokens.push(Token::Word(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' | '!' => break,
            '{' | '}' => {
                flush(&mut word, &mut tokens);
                tokens.push(if c == '{' { Token::Open } else { Token::Close });
            }
            '"' => {
                flush(&mut word, &mut tokens);
                let mut quoted = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    quoted.push(c);
                }
                if !closed {
                    return Err(ParseError {
                        at: Some(at.clone()),
                        message: "unterminated quoted string (a '\"' without its closing '\"')"
                            .to_string(),
                    });
                }
                tokens.push(Token::Word(quoted));
            }
            c if c.is_whitespace() => flush(&mut word, &mut tokens),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut tokens);
    Ok(tokens)
}

/// Statements up to the `}` that closes the block opened at `opened` (the end of the input
/// for the top level).
fn parse_block(
    tokens: &[(Token, Location)],
    at: &mut usize,
    opened: Option<&Location>,
) -> Result<Vec<Statement>, ParseError> {
    let mut statements: Vec<Statement> = Vec::new();
    while let Some((token, location)) = tokens.get(*at) {
        *at += 1;
        match token {
            Token::EndOfLine => {}
            Token::Close => {
                if opened.is_some() {
                    return Ok(statements);
                }
                return Err(ParseError {
                    at: Some(location.clone()),
                    message: "'}' without a block to close".to_string(),
                });
            }
            Token::Open => {
                // A '{' on a line of its own opens the block of the statement before it.
                match statements.last_mut().filter(|last| last.block.is_none()) {
                    Some(last) => last.block = Some(parse_block(tokens, at, Some(location))?),
                    None => {
                        return Err(ParseError {
                            at: Some(location.clone()),
                            message: "'{' without a keyword before it".to_string(),
                        })
                    }
                }
            }
            Token::Word(word) => {
                let mut statement = Statement {
                    words: vec![word.clone()],
                    block: None,
                    at: location.clone(),
                };
                while let Some((Token::Word(word), _)) = tokens.get(*at) {
                    statement.words.push(word.clone());
                    *at += 1;
                }
                if let Some((Token::Open, open_at)) = tokens.get(*at) {
                    *at += 1;
                    statement.block = Some(parse_block(tokens, at, Some(open_at))?);
                }
                statements.push(statement);
            }
        }
    }
    match opened {
        Some(open_at) => Err(ParseError {
            at: Some(open_at.clone()),
            message: "'{' is never closed (missing '}')".to_string(),
        }),
        None => Ok(statements),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Statement> {
        parse_text(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .statements
    }

    #[test]
    fn blocks_comments_quotes() {
        let text = "# head\nglobal_defs {\n  router_id r1 ! note\n}\nvrrp_instance VI {\n  notify \"/bin/x a\" # c\n  unicast_peer { 192.0.2.1 }\n  virtual_ipaddress\n  {\n    192.0.2.9/24 dev eth0\n  }\n}\n";
        let s = parse(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].keyword(), "global_defs");
        let inner = s[1].block.as_ref().unwrap();
        assert_eq!(inner[0].words, ["notify", "/bin/x a"]);
        assert_eq!(inner[0].at.line, 6);
        assert_eq!(inner[1].block.as_ref().unwrap()[0].words, ["192.0.2.1"]);
        let vips = inner[2].block.as_ref().unwrap();
        assert_eq!(vips[0].words, ["192.0.2.9/24", "dev", "eth0"]);
        assert_eq!(vips[0].at.line, 10);
    }

    #[test]
    fn continuation_lines() {
        let s = parse("priority \\\n 100\nstate BACKUP\n");
        assert_eq!(s[0].words, ["priority", "100"]);
        assert_eq!(s[1].at.line, 3);
    }

    #[test]
    fn errors_say_where() {
        let e = parse_text("a {\n b\n").unwrap_err();
        assert_eq!(e.to_string(), "line 1: '{' is never closed (missing '}')");
        let e = parse_text("a\n}\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: '}' without a block to close");
        let e = parse_text("x \"open\n").unwrap_err();
        assert!(e.to_string().starts_with("line 1: unterminated"), "{e}");
    }
}
