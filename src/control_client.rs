//! The CLI side of the control socket's actions: `relevo events`, `standby`, `takeover`,
//! `maintenance`, `switchover`. Each sends one request (see [`crate::daemon::control`]) and
//! prints the reply: the changes in words (or the JSON as is with `--json`); an error reply is
//! printed to stderr and the command exits 1.
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::config;
use crate::daemon::control::{reply_error, request, ActionReply, Request};
use crate::daemon::events::Event;

/// The control socket: `socket` if given, else the one the config names, else the default.
pub fn socket_path(config_path: &Path, socket: Option<PathBuf>) -> PathBuf {
    socket.unwrap_or_else(|| match config::load(config_path) {
        Ok(c) => c.node.control_socket,
        Err(_) => PathBuf::from(config::DEFAULT_CONTROL_SOCKET),
    })
}

/// Sends an action request and prints what the daemon did.
pub fn action(socket: &Path, req: &Request, json: bool) -> Result<()> {
    let reply = request(socket, req)?;
    if let Some(error) = reply_error(&reply) {
        if json {
            println!("{reply}");
        }
        bail!("{} refused: {error}", req.command);
    }
    if json {
        println!("{reply}");
        return Ok(());
    }
    let parsed: ActionReply = serde_json::from_str(&reply)
        .with_context(|| format!("the daemon answered something unexpected: {reply}"))?;
    for line in parsed.done {
        println!("{line}");
    }
    Ok(())
}

/// `relevo events [--follow] [--json]`: the history, then (following) every new event as it
/// happens, until the daemon stops or the output is closed.
pub fn events(socket: &Path, follow: bool, json: bool) -> Result<()> {
    let req = Request {
        follow,
        ..Request::new("events")
    };
    if !follow {
        let reply = request(socket, &req)?;
        if let Some(error) = reply_error(&reply) {
            bail!("events refused: {error}");
        }
        let value: serde_json::Value = serde_json::from_str(&reply)
            .with_context(|| format!("the daemon answered something unexpected: {reply}"))?;
        let events: Vec<Event> = serde_json::from_value(value["events"].clone())
            .context("the daemon's events do not parse")?;
        let mut out = std::io::stdout().lock();
        for event in events {
            print_event(&mut out, &event, json)?;
        }
        return Ok(());
    }
    let mut stream = std::os::unix::net::UnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to the relevo control socket {} (is `relevo run` running?)",
            socket.display()
        )
    })?;
    let mut line = serde_json::to_string(&req)?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .context("sending the request")?;
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stream).lines() {
        let line = line.context("reading the event stream")?;
        if let Some(error) = reply_error(&line) {
            bail!("events refused: {error}");
        }
        let event: Event = serde_json::from_str(&line)
            .with_context(|| format!("the daemon sent something unexpected: {line}"))?;
        if print_event(&mut out, &event, json).is_err() {
            return Ok(()); // the reader went away (a pipe closed)
        }
    }
    Ok(())
}

fn print_event(out: &mut impl Write, event: &Event, json: bool) -> std::io::Result<()> {
    if json {
        let line = serde_json::to_string(event).map_err(std::io::Error::other)?;
        writeln!(out, "{line}")?;
    } else {
        writeln!(out, "{}", event.to_text())?;
    }
    out.flush()
}
