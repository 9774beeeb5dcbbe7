//! The client side of the control socket: a handle to one daemon's socket, one connection per
//! request (the daemon answers one request line with one reply line and closes), every step
//! bounded by a deadline, and streaming requests whose reply lines are read one at a time.
use std::io;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};

use crate::error::*;
use crate::json;

/// Each call's time unless `relevo_set_timeout` says otherwise: the daemon's own idle timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection opened by [`Client::connect`] serves the first request only while this fresh:
/// the daemon closes a connection that sends nothing for 5 s.
const FRESH: Duration = Duration::from_secs(1);

/// A handle to the daemon at one socket path.
pub struct Client {
    path: PathBuf,
    timeout: Duration,
    /// The connection `connect` opened, kept for the first request.
    opened: Option<(Socket, Instant)>,
    stream: Option<Stream>,
}

/// A streaming request's connection: its reply lines come one at a time.
struct Stream {
    socket: Socket,
    /// Bytes received and not yet handed out as a line.
    pending: Vec<u8>,
    ended: bool,
}

/// A request that failed, and the reply line when the daemon sent one (an error reply).
pub type Failure = (relevo_error, Option<String>);

impl Client {
    /// Connects to `path` (within the default timeout), which shows at once whether a daemon
    /// listens there; the connection serves the first request.
    pub fn connect(path: &Path) -> Result<Client> {
        let timeout = DEFAULT_TIMEOUT;
        let socket = open(path, Instant::now() + timeout)?;
        Ok(Client {
            path: path.to_path_buf(),
            timeout,
            opened: Some((socket, Instant::now())),
            stream: None,
        })
    }

    /// Bounds every later call (connect, send, reply) by `timeout` in all.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// A connection for the next request: the one `connect` opened if still fresh, else a
    /// new one.
    fn connection(&mut self, deadline: Instant) -> Result<Socket> {
        match self.opened.take() {
            Some((socket, at)) if at.elapsed() < FRESH => Ok(socket),
            _ => open(&self.path, deadline),
        }
    }

    /// Sends request `line` (checked by [`json::request_line`]) and returns the reply line.
    pub fn request(&mut self, line: &str) -> std::result::Result<String, Failure> {
        let line = json::request_line(line).map_err(|e| (e, None))?;
        let deadline = Instant::now() + self.timeout;
        let socket = self.connection(deadline).map_err(|e| (e, None))?;
        // A daemon that refuses the peer answers with an error line and closes, maybe before
        // the request is written: the reply counts first, a failed send only when there is none.
        let sent = send_line(&socket, &line, deadline);
        let mut pending = Vec::new();
        let reply = match read_line(&socket, &mut pending, deadline) {
            Ok(Some(reply)) => reply,
            Ok(None) => return Err((sent.err().unwrap_or(RELEVO_E_CLOSED), None)),
            Err(e) => return Err((sent.err().unwrap_or(e), None)),
        };
        match json::classify_reply(&reply) {
            Ok(()) => Ok(reply),
            Err(RELEVO_E_PROTOCOL) => Err((RELEVO_E_PROTOCOL, None)),
            Err(e) => Err((e, Some(reply))),
        }
    }

    /// Sends request `line` and keeps its connection open: [`Client::next_line`] reads the
    /// reply lines. Replaces the stream in progress, if any.
    pub fn start_stream(&mut self, line: &str) -> Result<()> {
        let line = json::request_line(line)?;
        self.stream = None;
        let deadline = Instant::now() + self.timeout;
        let socket = self.connection(deadline)?;
        let sent = send_line(&socket, &line, deadline);
        // A refusing daemon's error line may already wait: the stream's first line says it.
        if let Err(e) = sent {
            if e != RELEVO_E_IO {
                return Err(e);
            }
        }
        self.stream = Some(Stream {
            socket,
            pending: Vec::new(),
            ended: false,
        });
        Ok(())
    }

    /// The stream's next line within `timeout` (0: only one already received). Times out
    /// without losing a partial line; `RELEVO_E_CLOSED` once the daemon has ended the stream.
    pub fn next_line(&mut self, timeout: Duration) -> std::result::Result<String, Failure> {
        let stream = self.stream.as_mut().ok_or((RELEVO_E_INVALID, None))?;
        if stream.ended {
            return Err((RELEVO_E_CLOSED, None));
        }
        let deadline = Instant::now() + timeout;
        let line = match read_line(&stream.socket, &mut stream.pending, deadline) {
            Ok(Some(line)) => line,
            Ok(None) => {
                stream.ended = true;
                return Err((RELEVO_E_CLOSED, None));
            }
            Err(e) => return Err((e, None)),
        };
        match json::classify_reply(&line) {
            Ok(()) => Ok(line),
            Err(RELEVO_E_PROTOCOL) => Err((RELEVO_E_PROTOCOL, None)),
            Err(e) => Err((e, Some(line))),
        }
    }
}

/// A new connection to `path` by `deadline`.
fn open(path: &Path, deadline: Instant) -> Result<Socket> {
    let address = SockAddr::unix(path).map_err(|e| code_of(&e))?;
    let socket =
        Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None).map_err(|e| code_of(&e))?;
    let left = remaining(deadline).ok_or(RELEVO_E_TIMEOUT)?;
    socket
        .connect_timeout(&address, left)
        .map_err(|e| code_of(&e))?;
    socket.set_nonblocking(false).map_err(|e| code_of(&e))?;
    Ok(socket)
}

fn code_of(e: &io::Error) -> relevo_error {
    relevo_error::from_io(e)
}

/// Time left before `deadline`, `None` once it has passed.
fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// Writes `line` and its newline by `deadline`; MSG_NOSIGNAL: a closed peer is an error,
/// never a SIGPIPE that would kill the C program.
fn send_line(socket: &Socket, line: &str, deadline: Instant) -> Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let mut sent = 0;
    while sent < bytes.len() {
        let left = remaining(deadline).ok_or(RELEVO_E_TIMEOUT)?;
        socket
            .set_write_timeout(Some(left))
            .map_err(|e| code_of(&e))?;
        match socket.send_with_flags(&bytes[sent..], libc::MSG_NOSIGNAL) {
            Ok(0) => return Err(RELEVO_E_IO),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(code_of(&e)),
        }
    }
    Ok(())
}

/// The next line (without its newline) from `socket`, `pending` holding what was received
/// beyond the last line; `None` at the end of the stream with nothing pending (a last line
/// without its newline counts as a line). At `deadline` with no complete line,
/// `RELEVO_E_TIMEOUT` and `pending` keeps the partial line; a passed deadline still takes
/// what is already received.
fn read_line(socket: &Socket, pending: &mut Vec<u8>, deadline: Instant) -> Result<Option<String>> {
    let mut buf = [0u8; 8192];
    loop {
        if let Some(at) = pending.iter().position(|&b| b == b'\n') {
            let rest = pending.split_off(at + 1);
            let mut line = std::mem::replace(pending, rest);
            line.pop();
            return text(line).map(Some);
        }
        if pending.len() > json::MAX_REPLY {
            return Err(RELEVO_E_PROTOCOL);
        }
        let left = remaining(deadline);
        // With no time left, only what is already there: one non-blocking read.
        socket
            .set_nonblocking(left.is_none())
            .map_err(|e| code_of(&e))?;
        if left.is_some() {
            socket.set_read_timeout(left).map_err(|e| code_of(&e))?;
        }
        let mut reader: &Socket = socket;
        let received = reader.read(&mut buf);
        match received {
            Ok(0) if pending.is_empty() => return Ok(None),
            Ok(0) => return text(std::mem::take(pending)).map(Some),
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(code_of(&e)),
        }
    }
}

/// A line as text: UTF-8 without NUL (it becomes a C string).
fn text(line: Vec<u8>) -> Result<String> {
    let line = String::from_utf8(line).map_err(|_| RELEVO_E_PROTOCOL)?;
    if line.contains('\0') {
        return Err(RELEVO_E_PROTOCOL);
    }
    Ok(line)
}
