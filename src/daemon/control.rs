//! The control socket: the listening Unix socket, who may talk to it, and every open
//! connection with its limits. The socket file is created with its final mode (0600
//! root:root, or 0660 root:`control_group`); each peer's credentials (SO_PEERCRED) are checked
//! on accept; a connection has a bounded request line, a bounded reply, a deadline and a token
//! id that is never reused while it lives, and at most [`MAX_CONNECTIONS`] are open. The
//! protocol is one JSON request line and one JSON reply line per connection, served from the
//! event loop without ever blocking it. The client side is [`request`].
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::{Interest, Registry, Token};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{Gid, Group, Uid, User};

use serde::{Deserialize, Serialize};

/// Longest request line accepted (without its newline); a longer one is answered with an error
/// and the connection is closed.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Bound of a connection's outgoing buffer: a reply that does not fit is replaced by an error.
pub const MAX_REPLY: usize = 1024 * 1024;
/// Most connections open at once; further ones get an error line and are closed.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client has to send its request line, and then again to read its reply.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connection tokens are `token_base + id` with `id` in `0..TOKEN_SPAN`.
pub const TOKEN_SPAN: usize = 1 << 18;

/// The control protocol's version, in every reply (`version`); a request may carry the
/// version it speaks. Documented in relevo(8).
pub const PROTOCOL_VERSION: u32 = 1;

/// A request: one JSON line. Only `command` is required; the other fields belong to the
/// commands that use them.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Request {
    /// status, events, standby, takeover, maintenance, switchover, reload.
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// events: keep the connection open and stream every new event.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follow: bool,
    /// takeover: local, foreign, all (default) or failback; maintenance: on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// switchover: the instance or group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// switchover: the node it should go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// takeover: even towards a node that is not healthy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// reload: validate and show the difference, apply nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check: bool,
}

impl Request {
    /// A request for `command` with no other field.
    pub fn new(command: &str) -> Self {
        Request {
            command: command.to_string(),
            version: Some(PROTOCOL_VERSION),
            ..Request::default()
        }
    }
}

/// The reply to an action (standby, takeover, maintenance, switchover, reload).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionReply {
    pub version: u32,
    /// What was done, or would be done (`reload --check`), in words: one line per change.
    pub done: Vec<String>,
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
    /// The priority adverts carry: `priority` changed by the tracks (0 from daemons without
    /// tracking).
    #[serde(default)]
    pub effective_priority: u8,
    /// The instance's `[[track]]`s.
    #[serde(default)]
    pub tracks: Vec<TrackStatus>,
}

/// One `[[track]]` of an instance, as status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackStatus {
    pub name: String,
    /// "script", "interface" or "file".
    pub check: String,
    /// "pending" (no result yet), "up", "down", or a file's value.
    pub state: String,
    /// The configured weight (0 = fault when failing).
    pub weight: i32,
    /// What the track adds to the priority now.
    pub applied: i32,
    /// A weight-0 track that fails: the instance is in FAULT.
    pub fault: bool,
    /// The last result in words ("exit 1", "interface eth1 down", "/run/x reads 5").
    pub detail: String,
}

impl InstanceStatus {
    /// A counter's value (0 when the daemon has not counted any yet).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

/// The status reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// [`PROTOCOL_VERSION`].
    #[serde(default)]
    pub version: u32,
    pub node: String,
    /// Operator state of this node: maintenance (persisted), standby, and the instances and
    /// groups it is held out of (switchover).
    #[serde(default)]
    pub operator: OperatorStatus,
    pub instances: Vec<InstanceStatus>,
    /// Timer lateness and loop counters since start.
    #[serde(default, rename = "loop")]
    pub loop_stats: super::loop_stats::LoopStatus,
    /// Hooks refused by `hook_security` since start.
    #[serde(default)]
    pub hooks_refused: u64,
    /// Log lines dropped because standard error did not keep up (logging never blocks the
    /// loop; see [`crate::logging`]).
    #[serde(default)]
    pub log_lines_dropped: u64,
    /// Control connections refused: peers neither root nor in `control_group`, and
    /// connections over [`MAX_CONNECTIONS`]. (Older daemons' replies lack this field and the
    /// ones above it, hence the defaults.)
    #[serde(default)]
    pub control_refused: u64,
    /// Cluster mode, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatus>,
}

/// What the operator asked of this node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OperatorStatus {
    pub maintenance: bool,
    pub standby: bool,
    /// Instances and groups this node stays out of after a switchover (until `takeover`).
    pub held_out: Vec<String>,
}

/// Cluster mode in a status reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub id: u8,
    pub quorate: bool,
    /// Nodes in this node's partition (its votes) and the votes quorum needs.
    pub votes: usize,
    pub needed: usize,
    pub partition: Vec<String>,
    pub members: Vec<MemberStatus>,
    pub groups: Vec<GroupStatus>,
    pub heartbeats_sent: u64,
    pub heartbeats_received: u64,
    /// Heartbeats dropped, by reason (bad_tag, replay, wrong_cluster, unknown_node, ...).
    pub dropped: BTreeMap<String, u64>,
}

/// One other cluster node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberStatus {
    pub name: String,
    pub alive: bool,
    /// Per link: "up", "late", "down" or "unknown" (never heard).
    pub links: Vec<String>,
    /// Per link: milliseconds since the last heartbeat, if any.
    pub last_heard_ms: Vec<Option<u64>>,
    /// Its fencing after it was lost: "needed", "delayed", "fencing", "failed", "fenced";
    /// absent when none is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<String>,
    /// Why its last fence failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence_error: Option<String>,
}

/// One resource group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupStatus {
    pub name: String,
    /// This node's state for it: released, acquiring, held, releasing, failed.
    pub state: String,
    /// Why it last changed (a stable code), empty before any change.
    pub reason: String,
    /// The node that holds it, as far as this node knows.
    pub owner: Option<String>,
    pub failed_starts: u32,
    pub vip_status: Vec<super::vip::VipStatus>,
    /// The group's `[[track]]`s that fail here (this node may not hold it meanwhile).
    #[serde(default)]
    pub failing_tracks: Vec<String>,
}

/// The one-line JSON error reply `{"error":"..."}` (without the newline).
pub fn error_reply(message: &str) -> String {
    serde_json::json!({ "version": PROTOCOL_VERSION, "error": message }).to_string()
}

/// The message of an error reply, or `None` for any other reply.
pub fn reply_error(reply: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(reply).ok()?;
    Some(value.get("error")?.as_str()?.to_string())
}

/// `control_group` as resolved when the socket is bound (at daemon start, before the loop
/// runs): its gid and the uids of the users the group database lists in it. The peer check on
/// the loop then looks nothing up: getgrouplist/getpwuid go through NSS, which may wait on
/// LDAP or sssd, and the loop must never wait.
struct ControlGroup {
    name: String,
    gid: Gid,
    members: HashSet<Uid>,
}

/// Who may use the socket besides root.
struct Access {
    group: Option<ControlGroup>,
}

impl Access {
    fn resolve(group: Option<&str>) -> io::Result<Self> {
        let Some(name) = group else {
            return Ok(Access { group: None });
        };
        let group = match Group::from_name(name) {
            Ok(Some(g)) => g,
            Ok(None) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("control_group {name:?} does not exist"),
                ))
            }
            Err(errno) => return Err(io::Error::from(errno)),
        };
        let members = group
            .mem
            .iter()
            .filter_map(|user| match User::from_name(user) {
                Ok(found) => found.map(|u| u.uid),
                Err(e) => {
                    tracing::warn!("control_group {name}: cannot look up member {user:?}: {e}");
                    None
                }
            })
            .collect();
        Ok(Access {
            group: Some(ControlGroup {
                name: name.to_string(),
                gid: group.gid,
                members,
            }),
        })
    }

    /// Whether a peer with `uid` and primary `gid` may use the socket: root always; with a
    /// group, a peer whose gid is the group's or whose user the group lists. The error is the
    /// message the client gets.
    fn check(&self, uid: Uid, gid: Gid) -> Result<(), String> {
        if uid.is_root() {
            return Ok(());
        }
        match &self.group {
            Some(g) if gid == g.gid || g.members.contains(&uid) => Ok(()),
            Some(g) => Err(format!(
                "permission denied: uid {uid} is not root or in group {}",
                g.name
            )),
            None => Err(format!("permission denied: uid {uid} is not root")),
        }
    }
}

/// Hands out connection ids in `0..span` in increasing order, wrapping, and skipping ids still
/// live: a token is never reused while its connection exists, and a just-closed id is reused
/// only after `span` more connections, so a stale event left in the loop's current batch can
/// never reach a newer connection.
#[derive(Debug)]
struct IdAllocator {
    next: usize,
    span: usize,
}

impl IdAllocator {
    fn new(span: usize) -> Self {
        IdAllocator { next: 0, span }
    }

    /// The next id that `is_live` says is free, or `None` when all `span` ids are live.
    fn alloc(&mut self, is_live: impl Fn(usize) -> bool) -> Option<usize> {
        for _ in 0..self.span {
            let id = self.next;
            self.next = (self.next + 1) % self.span;
            if !is_live(id) {
                return Some(id);
            }
        }
        None
    }
}

/// What reading a connection's request produced.
enum Incoming {
    Line(String),
    TooLong,
    Pending,
    Closed,
}

struct Conn {
    stream: UnixStream,
    inbox: Vec<u8>,
    /// The reply line, newline included: empty until the reply is queued, after which the
    /// connection closes once it is written.
    outbox: Vec<u8>,
    written: usize,
    /// When the client has taken too long (to send its request, or to read the reply); none
    /// for a follower, which is closed instead when it falls [`MAX_REPLY`] bytes behind.
    deadline: Option<Instant>,
    /// `events --follow`: stays open and receives every new event.
    follow: bool,
    /// The peer's uid (who asked, for the event history).
    uid: u32,
}

/// The listening socket and its open connections.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    access: Access,
    conns: HashMap<usize, Conn>,
    ids: IdAllocator,
    token_base: usize,
    refused: u64,
}

impl ControlServer {
    /// Binds `path` (a stale socket file from a dead daemon is replaced; a live one is not),
    /// mode 0600 root:root, or 0660 with group `group` (a group name).
    pub fn bind(path: &Path, group: Option<&str>, token_base: usize) -> io::Result<Self> {
        let access = Access::resolve(group)?;
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
        let listener = bind_owner_only(path)?;
        // From here on, dropping `server` (an error below) removes the file.
        let server = ControlServer {
            listener,
            path: path.to_path_buf(),
            access,
            conns: HashMap::new(),
            ids: IdAllocator::new(TOKEN_SPAN),
            token_base,
            refused: 0,
        };
        // The group first, the group's permission bits second: the mode never admits more
        // than the final owner and group. Setting 0600 again without a group covers a
        // directory whose default ACL overrode the umask.
        let mode = match &server.access.group {
            Some(group) => {
                std::os::unix::fs::lchown(path, None, Some(group.gid.as_raw()))?;
                0o660
            }
            None => 0o600,
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        Ok(server)
    }

    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.listener, token, Interest::READABLE)
    }

    pub fn owns(&self, token: Token) -> bool {
        self.id_of(token).is_some()
    }

    fn id_of(&self, token: Token) -> Option<usize> {
        token
            .0
            .checked_sub(self.token_base)
            .filter(|&id| id < TOKEN_SPAN)
    }

    /// Connections refused so far (peer not allowed, or over the limit).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The earliest connection deadline (see [`ControlServer::handle_timeout`]).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns.values().filter_map(|c| c.deadline).min()
    }

    /// Closes every connection whose deadline has passed; one still waiting for its request
    /// is told why first.
    pub fn handle_timeout(&mut self, registry: &Registry, now: Instant) {
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| d <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            if let Some(conn) = self.conns.get_mut(&id) {
                tracing::debug!("control connection {id} timed out");
                if !conn.replied() {
                    let reason = format!(
                        "idle timeout: no complete request within {}s",
                        IDLE_TIMEOUT.as_secs()
                    );
                    send_parting_error(&mut conn.stream, &reason);
                }
            }
            self.close(registry, id);
        }
    }

    /// Accepts every pending connection: refused ones get an error line and are closed; the
    /// others are registered with a fresh token and a deadline.
    pub fn accept(&mut self, registry: &Registry, now: Instant) {
        loop {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!("control socket accept failed: {e}");
                    return;
                }
            };
            let admitted = self.admit(&stream).and_then(|(pid, uid)| {
                let id = self
                    .ids
                    .alloc(|id| self.conns.contains_key(&id))
                    .ok_or_else(|| "no free connection id".to_string())?;
                registry
                    .register(
                        &mut stream,
                        Token(self.token_base + id),
                        Interest::READABLE | Interest::WRITABLE,
                    )
                    .map_err(|e| format!("cannot watch the connection: {e}"))?;
                Ok((id, pid, uid))
            });
            match admitted {
                Ok((id, pid, uid)) => {
                    tracing::debug!("control connection {id} from pid {pid}");
                    self.conns.insert(
                        id,
                        Conn {
                            stream,
                            inbox: Vec::new(),
                            outbox: Vec::new(),
                            written: 0,
                            deadline: Some(now + IDLE_TIMEOUT),
                            follow: false,
                            uid,
                        },
                    );
                }
                Err(reason) => {
                    self.refused += 1;
                    tracing::warn!("control connection refused: {reason}");
                    send_parting_error(&mut stream, &reason);
                }
            }
        }
    }

    /// Whether a new connection may stay (the limit, then the peer's credentials); its pid
    /// and uid.
    fn admit(&self, stream: &UnixStream) -> Result<(i32, u32), String> {
        if self.conns.len() >= MAX_CONNECTIONS {
            return Err(format!(
                "too many control connections (at most {MAX_CONNECTIONS})"
            ));
        }
        let cred = getsockopt(stream, PeerCredentials)
            .map_err(|e| format!("cannot read the peer's credentials: {e}"))?;
        self.access
            .check(Uid::from_raw(cred.uid()), Gid::from_raw(cred.gid()))
            .map_err(|reason| format!("{reason} (pid {})", cred.pid()))?;
        Ok((cred.pid(), cred.uid()))
    }

    /// Handles readiness of connection `token`: returns its request line and the peer's uid
    /// once complete (answer it with [`ControlServer::reply`] or [`ControlServer::follow`]);
    /// answers an oversized request with an error; writes what is left of a reply; closes
    /// finished and broken connections (a follower that hung up).
    pub fn serve(
        &mut self,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> Option<(String, u32)> {
        let id = self.id_of(token)?;
        let conn = self.conns.get_mut(&id)?;
        let progress = if conn.follow {
            match conn.discard_input() {
                Ok(true) => Ok(true),
                Ok(false) => conn.flush(),
                Err(e) => Err(e),
            }
        } else if conn.replied() {
            conn.flush()
        } else {
            match conn.read_request() {
                Ok(Incoming::Line(line)) => return Some((line, conn.uid)),
                Ok(Incoming::TooLong) => {
                    let error = error_reply(&format!("request longer than {MAX_REQUEST} bytes"));
                    conn.queue_reply(error, now);
                    conn.flush()
                }
                Ok(Incoming::Pending) => Ok(false),
                Ok(Incoming::Closed) => Ok(true),
                Err(e) => Err(e),
            }
        };
        self.finish(registry, id, progress);
        None
    }

    /// Queues the reply to the request [`ControlServer::serve`] returned for `token` and
    /// writes as much of it as the socket takes.
    pub fn reply(&mut self, registry: &Registry, token: Token, now: Instant, reply: String) {
        let Some(id) = self.id_of(token) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.queue_reply(reply, now);
        let progress = conn.flush();
        self.finish(registry, id, progress);
    }

    /// Answers the `events --follow` request of `token` with `lines` (the history, one JSON
    /// line each) and keeps the connection open for [`ControlServer::broadcast`].
    pub fn follow(&mut self, registry: &Registry, token: Token, lines: String) {
        let Some(id) = self.id_of(token) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.follow = true;
        conn.deadline = None;
        conn.outbox = lines.into_bytes();
        conn.written = 0;
        let progress = conn.flush();
        self.finish(registry, id, progress);
    }

    /// Whether any connection follows the events.
    pub fn has_followers(&self) -> bool {
        self.conns.values().any(|c| c.follow)
    }

    /// Appends `lines` to every follower and writes what its socket takes. A follower more
    /// than [`MAX_REPLY`] bytes behind is closed: a slow reader never grows memory or
    /// blocks the loop. Returns how many were closed that way.
    pub fn broadcast(&mut self, registry: &Registry, lines: &str) -> usize {
        let followers: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.follow)
            .map(|(&id, _)| id)
            .collect();
        let mut dropped = 0;
        for id in followers {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            if conn.outbox.len() - conn.written + lines.len() > MAX_REPLY {
                tracing::warn!("events follower {id} fell {MAX_REPLY} bytes behind: closed");
                dropped += 1;
                self.close(registry, id);
                continue;
            }
            conn.outbox.drain(..conn.written);
            conn.written = 0;
            conn.outbox.extend_from_slice(lines.as_bytes());
            let progress = conn.flush();
            self.finish(registry, id, progress);
        }
        dropped
    }

    /// Closes connection `id` when `progress` says it is done or broken.
    fn finish(&mut self, registry: &Registry, id: usize, progress: io::Result<bool>) {
        let done = progress.unwrap_or_else(|e| {
            tracing::debug!("control connection {id} closed: {e}");
            true
        });
        if done {
            self.close(registry, id);
        }
    }

    fn close(&mut self, registry: &Registry, id: usize) {
        if let Some(mut conn) = self.conns.remove(&id) {
            let _ = registry.deregister(&mut conn.stream);
        }
    }
}

impl Conn {
    /// Whether the reply is queued (a reply line is never empty: it ends with a newline).
    fn replied(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Reads until a complete line, the size limit, EOF or nothing more to read.
    fn read_request(&mut self) -> io::Result<Incoming> {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(Incoming::Closed),
                Ok(n) => {
                    let start = self.inbox.len();
                    self.inbox.extend_from_slice(&buf[..n]);
                    if let Some(at) = buf[..n].iter().position(|&b| b == b'\n') {
                        let end = start + at;
                        if end > MAX_REQUEST {
                            return Ok(Incoming::TooLong);
                        }
                        let line = String::from_utf8_lossy(&self.inbox[..end]).into_owned();
                        return Ok(Incoming::Line(line));
                    }
                    if self.inbox.len() > MAX_REQUEST {
                        return Ok(Incoming::TooLong);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Incoming::Pending),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues the one reply line (bounded by [`MAX_REPLY`]) and gives the client a fresh
    /// deadline to read it.
    fn queue_reply(&mut self, mut reply: String, now: Instant) {
        if reply.len() >= MAX_REPLY {
            reply = error_reply(&format!(
                "reply of {} bytes exceeds the {MAX_REPLY}-byte limit",
                reply.len()
            ));
        }
        reply.push('\n');
        self.outbox = reply.into_bytes();
        self.written = 0;
        self.deadline = Some(now + IDLE_TIMEOUT);
    }

    /// A follower sends nothing after its request: reads and drops what comes; true at EOF.
    fn discard_input(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 512];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(true),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes as much of the reply as the socket takes; true once all of it is written.
    fn flush(&mut self) -> io::Result<bool> {
        while self.written < self.outbox.len() {
            match self.stream.write(&self.outbox[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(self.replied() && !self.follow)
    }
}

/// Best effort, never blocking: reads what the client already sent (closing a Unix socket
/// with unread data resets the connection, and the client would lose the line), then writes
/// one short error line, which fits the socket's empty send buffer.
fn send_parting_error(stream: &mut UnixStream, reason: &str) {
    let mut buf = [0u8; 4096];
    for _ in 0..(MAX_REQUEST / buf.len() + 1) {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let mut line = error_reply(reason);
    line.push('\n');
    let _ = stream.write(line.as_bytes());
}

/// Binds the socket file with mode 0600 from the moment it exists: bind(2) creates the inode
/// with 0777 & !umask, so the umask is narrowed to 0177 around the call and restored at once.
/// The umask is per process; while this runs the only other thread is the log writer, which
/// creates no files. (Binding in a private directory and renaming would also work, but leaves
/// a directory behind after a crash.)
fn bind_owner_only(path: &Path) -> io::Result<UnixListener> {
    let previous = umask(Mode::from_bits_truncate(0o177));
    let listener = UnixListener::bind(path);
    umask(previous);
    listener
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Asks the daemon at `path` for its status and parses the reply; an error reply (a refused
/// peer) is an error. For callers that want the typed status (the lab, tests, benches).
pub fn query_status(path: &Path) -> anyhow::Result<Status> {
    use anyhow::Context;
    let reply = request(path, &Request::new("status"))?;
    if let Some(error) = reply_error(&reply) {
        anyhow::bail!("the daemon refused the status request: {error}");
    }
    serde_json::from_str(&reply)
        .with_context(|| format!("the daemon answered something unexpected: {reply}"))
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
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    // A daemon that refuses the connection answers with an error line and closes, maybe before
    // the request is written: the reply counts first, a failed write only when there is none.
    let sent = stream.write_all(line.as_bytes());
    let mut reply = Vec::new();
    let received = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    if let Some((first, _)) = reply.split_once('\n') {
        return Ok(first.to_string());
    }
    sent.context("sending the request to the daemon")?;
    received.context("reading the daemon's reply")?;
    if reply.is_empty() {
        anyhow::bail!("the daemon closed the connection without a reply");
    }
    Ok(reply.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held by the tests that set the process-wide umask (bind does), which run on parallel
    /// threads: one's restore must not land inside another's bind.
    static UMASK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn ids_count_up_and_skip_live_ones() {
        let mut ids = IdAllocator::new(8);
        let live = [1usize, 2, 5];
        let got: Vec<usize> = (0..5)
            .map(|_| ids.alloc(|id| live.contains(&id)).unwrap())
            .collect();
        assert_eq!(got, [0, 3, 4, 6, 7]);
    }

    #[test]
    fn ids_wrap_and_never_hand_out_a_live_one() {
        let mut ids = IdAllocator::new(4);
        let mut live = std::collections::BTreeSet::new();
        // Keep id 0 and 2 open forever; churn the others across many wraps.
        for _ in 0..3 {
            let id = ids.alloc(|id| live.contains(&id)).unwrap();
            live.insert(id);
        }
        assert_eq!(live, [0, 1, 2].into());
        live.remove(&1);
        let mut seen = Vec::new();
        for _ in 0..10 {
            let id = ids.alloc(|id| live.contains(&id)).unwrap();
            assert!(!live.contains(&id));
            seen.push(id);
        }
        assert_eq!(seen, [3, 1, 3, 1, 3, 1, 3, 1, 3, 1]);
    }

    #[test]
    fn a_closed_id_is_reused_only_after_a_full_turn() {
        let mut ids = IdAllocator::new(TOKEN_SPAN);
        let first = ids.alloc(|_| false).unwrap();
        // `first` closes at once; the next connections get other ids until the span wraps.
        for n in 1..TOKEN_SPAN {
            assert_ne!(ids.alloc(|_| false), Some(first), "reused after {n}");
        }
        assert_eq!(ids.alloc(|_| false), Some(first));
    }

    #[test]
    fn ids_run_out_only_when_all_are_live() {
        let mut ids = IdAllocator::new(3);
        assert_eq!(ids.alloc(|_| true), None);
        assert_eq!(ids.alloc(|id| id != 2), Some(2));
    }

    /// Access with `group` named `name`, gid `gid`, listing `members`.
    fn group_access(name: &str, gid: Gid, members: &[u32]) -> Access {
        Access {
            group: Some(ControlGroup {
                name: name.to_string(),
                gid,
                members: members.iter().map(|&uid| Uid::from_raw(uid)).collect(),
            }),
        }
    }

    #[test]
    fn root_is_always_allowed() {
        let gid = Gid::from_raw(4242);
        let nobody = Access { group: None };
        assert_eq!(nobody.check(Uid::from_raw(0), gid), Ok(()));
        let ops = group_access("ops", gid, &[]);
        assert_eq!(ops.check(Uid::from_raw(0), gid), Ok(()));
    }

    #[test]
    fn without_a_group_everyone_else_is_refused() {
        let access = Access { group: None };
        let r = access.check(Uid::from_raw(1000), Gid::from_raw(1000));
        assert_eq!(r, Err("permission denied: uid 1000 is not root".into()));
    }

    #[test]
    fn the_group_admits_by_primary_gid_or_by_membership() {
        let relevo = Gid::from_raw(990);
        // The group database lists uid 1001.
        let access = group_access("relevo", relevo, &[1001]);
        // Primary gid.
        let by_gid = access.check(Uid::from_raw(1000), relevo);
        assert_eq!(by_gid, Ok(()));
        let by_list = access.check(Uid::from_raw(1001), Gid::from_raw(1001));
        assert_eq!(by_list, Ok(()));
        let outsider = access.check(Uid::from_raw(1000), Gid::from_raw(1000));
        assert_eq!(
            outsider,
            Err("permission denied: uid 1000 is not root or in group relevo".into())
        );
    }

    #[test]
    fn a_control_group_that_does_not_exist_is_an_error() {
        let missing = Access::resolve(Some("relevo-no-such-group"));
        assert_eq!(
            missing.err().map(|e| e.kind()),
            Some(io::ErrorKind::NotFound)
        );
    }

    #[test]
    fn the_socket_file_is_created_owner_only_whatever_the_umask() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("relevo-bind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let _umask = UMASK.lock().unwrap_or_else(|e| e.into_inner());
        // The most open umask: the mode right after bind(2), before any chmod, is 0600.
        let saved = umask(Mode::empty());
        let listener = bind_owner_only(&path);
        let umask_after = umask(saved);
        let mode = std::fs::metadata(&path).map(|m| m.mode() & 0o7777);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(listener.is_ok());
        assert_eq!(mode.unwrap(), 0o600);
        assert_eq!(umask_after, Mode::empty(), "the umask was not restored");
    }

    #[test]
    fn a_reply_over_the_limit_is_replaced_by_an_error() {
        let (stream, mut client) = UnixStream::pair().unwrap();
        let mut conn = Conn {
            stream,
            inbox: Vec::new(),
            outbox: Vec::new(),
            written: 0,
            deadline: Some(Instant::now()),
            follow: false,
            uid: 0,
        };
        assert!(!conn.replied());
        conn.queue_reply("x".repeat(MAX_REPLY), Instant::now());
        assert!(conn.replied());
        assert!(
            conn.flush().unwrap(),
            "the error line fits the socket buffer"
        );
        drop(conn);
        let mut line = String::new();
        client.read_to_string(&mut line).unwrap();
        let expected = format!("reply of {MAX_REPLY} bytes exceeds the {MAX_REPLY}-byte limit");
        assert_eq!(reply_error(line.trim_end()), Some(expected));
    }

    #[test]
    fn bind_creates_the_missing_directory_and_drop_removes_the_socket() {
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("relevo-bind-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("run/relevo/relevo.sock");
        let _umask = UMASK.lock().unwrap_or_else(|e| e.into_inner());
        let server = ControlServer::bind(&path, None, 0);
        let mode = std::fs::metadata(&path).map(|m| m.mode() & 0o7777);
        drop(server);
        let left = path.exists();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(mode.unwrap(), 0o600);
        assert!(!left, "the socket file outlived the server");
    }

    #[test]
    fn a_follower_gets_each_broadcast_and_one_that_does_not_read_is_dropped_at_the_limit() {
        use std::io::{BufRead, BufReader};
        let dir = std::env::temp_dir().join(format!("relevo-follow-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("relevo.sock");
        let poll = mio::Poll::new().unwrap();
        let server = {
            let _umask = UMASK.lock().unwrap_or_else(|e| e.into_inner());
            ControlServer::bind(&path, None, 100)
        };
        let mut server = server.unwrap();
        let registry = poll.registry();
        let follow = |server: &mut ControlServer, id: usize| {
            let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
            client
                .write_all(b"{\"command\":\"events\",\"follow\":true}\n")
                .unwrap();
            server.accept(registry, Instant::now());
            let token = Token(100 + id);
            let line = (0..100)
                .find_map(|_| {
                    std::thread::sleep(Duration::from_millis(1));
                    server.serve(registry, token, Instant::now())
                })
                .expect("the request line");
            assert!(line.0.contains("follow"));
            server.follow(registry, token, "{\"seq\":1}\n".to_string());
            client
        };
        // A reader gets the history, then each broadcast, in order.
        let reader = follow(&mut server, 0);
        assert_eq!(server.broadcast(registry, "{\"seq\":2}\n{\"seq\":3}\n"), 0);
        let lines: Vec<String> = BufReader::new(reader)
            .lines()
            .take(3)
            .map(Result::unwrap)
            .collect();
        assert_eq!(lines, [r#"{"seq":1}"#, r#"{"seq":2}"#, r#"{"seq":3}"#]);
        server.close(registry, 0);
        // One that never reads: the socket buffer fills, then the outbox, then it is closed.
        let _stalled = follow(&mut server, 1);
        let chunk = format!("{}\n", "x".repeat(64 * 1024));
        let mut sent = 0;
        let dropped = loop {
            let dropped = server.broadcast(registry, &chunk);
            if dropped > 0 || sent > 4 * MAX_REPLY {
                break dropped;
            }
            sent += chunk.len();
        };
        assert_eq!(dropped, 1, "still following after {sent} bytes");
        assert!(sent >= MAX_REPLY, "dropped after only {sent} bytes");
        assert!(!server.has_followers());
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn error_replies_round_trip() {
        let line = error_reply("permission denied: uid 1000 is not root or in group \"x\"");
        assert_eq!(
            line,
            r#"{"error":"permission denied: uid 1000 is not root or in group \"x\"","version":1}"#
        );
        assert_eq!(
            reply_error(&line).as_deref(),
            Some("permission denied: uid 1000 is not root or in group \"x\"")
        );
        assert_eq!(reply_error(r#"{"node":"n1","instances":[]}"#), None);
        assert_eq!(reply_error("not json"), None);
    }
}
