//! The `[metrics]` HTTP server: its own thread accepting on a std `TcpListener`, one short-lived
//! thread per connection (at most [`MAX_CONNECTIONS`]; more are closed at once), a request head
//! of at most [`MAX_HEAD`] bytes read within [`READ_TIMEOUT`] in all, `GET /` (the status page) and
//! `GET /metrics` only, and the connection closed after each response. Blocking is fine here:
//! this is not the event loop, which it only touches by cloning the published snapshot.
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::{current, exposition, page, Shared};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest request head (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its whole request head (and to take each part of the response).
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Time given to a client to stop sending after the response, before the connection closes.
const DRAIN_TIME: Duration = Duration::from_millis(500);

/// Binds `listen` and starts the accepting thread.
pub fn start(listen: SocketAddr, shared: Shared) -> io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    std::thread::Builder::new()
        .name("relevo-metrics".to_string())
        .spawn(move || accept_loop(listener, shared))?;
    Ok(())
}

fn accept_loop(listener: TcpListener, shared: Shared) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                debug!("[metrics] accept failed: {e}");
                // EMFILE and the like: do not spin.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            drop(stream);
            continue;
        }
        let (shared, active) = (shared.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("relevo-metrics-conn".to_string())
            .spawn(move || {
                if let Err(e) = serve(stream, &shared) {
                    debug!("[metrics] connection: {e}");
                }
                active.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            warn!("[metrics] cannot start a connection thread: {e}");
        }
    }
}

/// Reads once within what is left until `deadline` (a slow client cannot stretch it).
fn read_by(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "request too slow"));
    }
    stream.set_read_timeout(Some(left))?;
    stream.read(buf)
}

/// Reads the request head within [`READ_TIMEOUT`] in all: `Ok(None)` when it is over
/// [`MAX_HEAD`].
fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_HEAD {
            return Ok(None);
        }
        let n = read_by(stream, &mut buf, deadline)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed mid-request",
            ));
        }
        head.extend_from_slice(&buf[..n]);
    }
    Ok(Some(head).filter(|h| h.len() <= MAX_HEAD))
}

/// The response to a request head: status line, content type and body.
pub fn respond(head: Option<&[u8]>, shared: &Shared) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let Some(head) = head else {
        return (
            "431 Request Header Fields Too Large",
            TEXT,
            "request head too large\n".into(),
        );
    };
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return ("400 Bad Request", TEXT, "bad request line\n".into());
    };
    let path = target.split('?').next().unwrap_or_default();
    if path != "/" && path != "/metrics" {
        return ("404 Not Found", TEXT, "only / and /metrics\n".into());
    }
    if method != "GET" {
        return ("405 Method Not Allowed", TEXT, "only GET\n".into());
    }
    let Some(snapshot) = current(shared) else {
        return ("503 Service Unavailable", TEXT, "starting\n".into());
    };
    if path == "/metrics" {
        (
            "200 OK",
            exposition::CONTENT_TYPE,
            exposition::render(&snapshot),
        )
    } else {
        (
            "200 OK",
            "text/html; charset=utf-8",
            page::render(&snapshot),
        )
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let (status, content_type, body) = respond(head.as_deref(), shared);
    let allow = if status.starts_with("405") {
        "Allow: GET\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         {allow}Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()?;
    // Read what the client still sends (at most 64 KiB within DRAIN_TIME) before closing:
    // closing with unread input would reset the connection and the response could be lost.
    stream.shutdown(std::net::Shutdown::Write)?;
    let deadline = Instant::now() + DRAIN_TIME;
    let mut buf = [0u8; 4096];
    for _ in 0..16 {
        match read_by(&mut stream, &mut buf, deadline) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    Ok(())
}
