//! The control socket: a Unix stream socket (mode 0600, root only) speaking one JSON request
//! line and one JSON reply line per connection, served from the event loop without blocking.
//! Today it answers `{"command":"status"}`; the client side is [`request`].
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use serde::{Deserialize, Serialize};

/// Longest request line accepted.
const MAX_REQUEST: usize = 4096;

/// A request as sent by the CLI.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub command: String,
}

/// One instance in a status reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    pub priority: u8,
    pub state: String,
    /// The master this node follows (BACKUP), if known.
    pub master: Option<String>,
    pub vips: Vec<String>,
    pub advert_interval_ms: u64,
    pub master_down_interval_ms: u64,
    /// Packet counters: adverts sent/received and drops by reason.
    pub counters: std::collections::BTreeMap<String, u64>,
    /// The address adverts are sent from, if there is one.
    #[serde(default)]
    pub source_address: Option<String>,
    /// Why the instance is in its state (the last transition's reason code).
    #[serde(default)]
    pub reason: String,
    /// Each VIP: held, on the interface, restored, failed requests.
    #[serde(default)]
    pub vip_status: Vec<super::vip::VipStatus>,
}

/// The status reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub node: String,
    pub instances: Vec<InstanceStatus>,
    /// Timer lateness and loop counters since start.
    #[serde(default, rename = "loop")]
    pub loop_stats: super::loop_stats::LoopStatus,
    /// Hooks refused by `hook_security` since start.
    #[serde(default)]
    pub hooks_refused: u64,
}

struct Conn {
    stream: UnixStream,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    written: usize,
}

/// The listening socket and its open connections.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    conns: HashMap<usize, Conn>,
    token_base: usize,
    next: usize,
}

impl ControlServer {
    /// Binds `path` (a stale socket file from a dead daemon is replaced; a live one is not).
    pub fn bind(path: &Path, token_base: usize) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use: is another relevo running?", path.display()),
            ));
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
            conns: HashMap::new(),
            token_base,
            next: 0,
        })
    }

    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.listener, token, Interest::READABLE)
    }

    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.token_base && token.0 < self.token_base + (1 << 18)
    }

    /// Accepts every pending connection.
    pub fn accept(&mut self, registry: &Registry) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let id = self.next;
                    self.next = (self.next + 1) % (1 << 18);
                    let token = Token(self.token_base + id);
                    if registry
                        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                        .is_ok()
                    {
                        self.conns.insert(
                            id,
                            Conn {
                                stream,
                                inbox: Vec::new(),
                                outbox: Vec::new(),
                                written: 0,
                            },
                        );
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::debug!("control socket accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Serves connection `token`: reads its request line, answers with `respond`, writes the
    /// reply as far as the socket takes it, closes when done or broken.
    pub fn serve(
        &mut self,
        registry: &Registry,
        token: Token,
        respond: impl FnOnce(&str) -> String,
    ) {
        let id = token.0 - self.token_base;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let done = match conn.pump(respond) {
            Ok(done) => done,
            Err(e) => {
                tracing::debug!("control connection closed: {e}");
                true
            }
        };
        if done {
            if let Some(mut conn) = self.conns.remove(&id) {
                let _ = registry.deregister(&mut conn.stream);
            }
        }
    }
}

impl Conn {
    /// Returns true when the connection is finished.
    fn pump(&mut self, respond: impl FnOnce(&str) -> String) -> io::Result<bool> {
        if self.outbox.is_empty() {
            let mut buf = [0u8; 1024];
            loop {
                match self.stream.read(&mut buf) {
                    Ok(0) => return Ok(true),
                    Ok(n) => self.inbox.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
                if self.inbox.len() > MAX_REQUEST {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "request too long",
                    ));
                }
            }
            let Some(end) = self.inbox.iter().position(|&b| b == b'\n') else {
                return Ok(false);
            };
            let line = String::from_utf8_lossy(&self.inbox[..end]).into_owned();
            let mut reply = respond(&line);
            reply.push('\n');
            self.outbox = reply.into_bytes();
        }
        while self.written < self.outbox.len() {
            match self.stream.write(&self.outbox[self.written..]) {
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Client side: sends one request to the daemon at `path` and returns its reply line.
pub fn request(path: &Path, req: &Request) -> anyhow::Result<String> {
    use anyhow::Context;
    let mut stream = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "connecting to the relevo control socket {} (is `relevo run` running?)",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .context("reading the daemon's reply")?;
    Ok(reply.trim_end().to_string())
}
