//! The control socket and the log of a real `relevo run` in a namespace lab (root; fails under
//! CI=true without it): the socket's mode and owner from the moment it exists, peer
//! credentials (other users refused and counted, `control_group` members allowed), idle and
//! oversized requests, a connection flood, and a stalled stderr that never stops adverts.
mod netns_support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netns_support::*;
use relevo::daemon::control::{
    self, reply_error, Status, IDLE_TIMEOUT, MAX_CONNECTIONS, MAX_REQUEST,
};
use relevo::lab::netns::{Lab, LabProcess};
use relevo::lab::relevo_node::RelevoNode;

const VIP: &str = "192.0.2.100/24";
const VRID: u8 = 61;
/// 10 ms adverts: 100 a second, the rate the stall and flood tests hold the loop to.
const INTERVAL: Duration = Duration::from_millis(10);
const NOBODY: u32 = 65534;

/// A daemon on node 1 of `lab` with one instance alone on its segment (so MASTER), its
/// control socket in `<work dir>/ctl/` and `extra_node` lines added to `[node]`.
struct Node {
    process: LabProcess,
    socket: PathBuf,
    log: PathBuf,
}

fn start_node(lab: &Lab, extra_node: &str, argv_prefix: &[&str], piped: bool) -> Node {
    let dir = lab.work_dir().join("ctl");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.join("relevo.sock");
    let mut config = RelevoNode::config_for(lab, 1, instance(VRID, 100, INTERVAL, &[VIP]));
    config.control_socket = Some(socket.clone());
    let toml = config
        .to_toml()
        .replacen("[node]\n", &format!("[node]\n{extra_node}"), 1);
    let config_path = lab.work_dir().join("n1.toml");
    std::fs::write(&config_path, toml).unwrap();
    let bin = relevo_bin();
    let mut argv: Vec<&str> = argv_prefix.to_vec();
    argv.extend([
        bin.to_str().unwrap(),
        "run",
        "-c",
        config_path.to_str().unwrap(),
    ]);
    let log = lab.work_dir().join("n1.log");
    let ns = lab.node_ns(1);
    let process = if piped {
        lab.spawn_piped(&ns, &argv, &log)
    } else {
        lab.spawn(&ns, &argv, &log)
    }
    .unwrap();
    let node = Node {
        process,
        socket,
        log,
    };
    let master = wait_for(Duration::from_secs(5), || {
        try_status(&node.socket).is_some_and(|s| s.instances[0].state == "MASTER")
    });
    assert!(master, "never answered as MASTER: {}", log_of(&node.log));
    node
}

/// The daemon's status as root, asked from this process with the CLI's own client (no
/// `relevo status` process per poll on a machine the daemon's timing shares); `None` when it
/// fails.
fn try_status(socket: &Path) -> Option<Status> {
    control::query_status(socket).ok()
}

fn status(node: &Node) -> Status {
    try_status(&node.socket)
        .unwrap_or_else(|| panic!("relevo status failed: {}", log_of(&node.log)))
}

fn adverts_sent(status: &Status) -> u64 {
    status.instances[0].counter("adverts_sent")
}

/// (permission bits, uid, gid) of `path`, if it exists.
fn owner_and_mode(path: &Path) -> Option<(u32, u32, u32)> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    Some((meta.mode() & 0o7777, meta.uid(), meta.gid()))
}

/// Records every (mode, uid, gid) `path` shows until stopped: a window where the socket is
/// more open than it ends up shows here.
struct ModeWatcher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<BTreeSet<(u32, u32, u32)>>,
}

impl ModeWatcher {
    fn start(path: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let path = path.to_path_buf();
        let thread = std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            while !flag.load(Ordering::Relaxed) {
                if let Some(state) = owner_and_mode(&path) {
                    seen.insert(state);
                }
                std::thread::yield_now();
            }
            seen
        });
        ModeWatcher { stop, thread }
    }

    fn finish(self) -> BTreeSet<(u32, u32, u32)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// A copy of the relevo binary that any user can run (the build tree may sit under a
/// directory other users cannot enter); removed with the lab's work dir.
fn client_binary(lab: &Lab) -> PathBuf {
    let path = lab.work_dir().join("relevo-client");
    if !path.exists() {
        std::fs::copy(relevo_bin(), &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

/// `relevo status --socket` under other credentials (`setpriv` options).
fn status_as(lab: &Lab, setpriv: &[&str], socket: &Path) -> Output {
    status_as_with(lab, setpriv, socket, &[])
}

/// [`status_as`] with more `relevo status` options.
fn status_as_with(lab: &Lab, setpriv: &[&str], socket: &Path, options: &[&str]) -> Output {
    Command::new("setpriv")
        .args(setpriv)
        .arg(client_binary(lab))
        .args(["status", "--socket", socket.to_str().unwrap()])
        .args(options)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn socket_is_root_only_from_the_start_and_other_users_are_refused() {
    let Some(lab) = lab("ctlmode", 1) else { return };
    let path = lab.work_dir().join("ctl/relevo.sock");
    let watcher = ModeWatcher::start(&path);
    let node = start_node(&lab, "", &[], false);
    let seen = watcher.finish();
    assert_eq!(
        seen,
        BTreeSet::from([(0o600, 0, 0)]),
        "the socket was seen with another mode or owner"
    );
    let meta = std::fs::symlink_metadata(&node.socket).unwrap();
    assert!(meta.file_type().is_socket());

    // The file mode keeps other users out before the daemon sees them...
    let out = status_as(
        &lab,
        &["--reuid", "65534", "--regid", "65534", "--clear-groups"],
        &node.socket,
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out)
    );
    // ...and the peer check refuses them when the mode was loosened by hand.
    std::fs::set_permissions(&node.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = status_as(
        &lab,
        &["--reuid", "65534", "--regid", "65534", "--clear-groups"],
        &node.socket,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("permission denied: uid {NOBODY} is not root")),
        "{}",
        text(&out)
    );
    assert!(!stderr.contains("in group"), "{}", text(&out));
    assert_eq!(status(&node).control_refused, 1);
    // The log is written by its own thread: wait for the line.
    assert!(wait_for(Duration::from_secs(2), || log_of(&node.log)
        .contains("control connection refused")));

    // With --json the daemon's error reply is printed as is, and status fails all the same.
    let out = status_as_with(
        &lab,
        &["--reuid", "65534", "--regid", "65534", "--clear-groups"],
        &node.socket,
        &["--json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let reply = String::from_utf8_lossy(&out.stdout);
    let error = reply_error(reply.trim_end()).unwrap_or_default();
    assert!(
        error.starts_with(&format!("permission denied: uid {NOBODY} is not root")),
        "{}",
        text(&out)
    );
    assert_eq!(status(&node).control_refused, 2);
}

/// A group and a user listed in it (primary group nogroup), deleted on drop.
struct TestAccounts {
    group: String,
    user: String,
    gid: u32,
}

impl TestAccounts {
    fn create() -> Self {
        let id = std::process::id();
        let group = format!("rlctl{id}g");
        let user = format!("rlctl{id}u");
        run(Command::new("groupadd").args(["--system", &group]));
        // From here on, dropping `accounts` deletes what exists.
        let mut accounts = TestAccounts {
            group,
            user,
            gid: 0,
        };
        accounts.gid = nix::unistd::Group::from_name(&accounts.group)
            .unwrap()
            .expect("the group just added")
            .gid
            .as_raw();
        run(Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--no-user-group",
            "--gid",
            &NOBODY.to_string(),
            "--groups",
            &accounts.group,
            "--shell",
            "/usr/sbin/nologin",
            &accounts.user,
        ]));
        accounts
    }
}

impl Drop for TestAccounts {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.user).status();
        let _ = Command::new("groupdel").arg(&self.group).status();
    }
}

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {}", text(&out));
}

#[test]
fn control_group_members_are_allowed_and_other_users_refused() {
    let Some(lab) = lab("ctlgrp", 1) else { return };
    let accounts = TestAccounts::create();
    let gid = accounts.gid;
    let path = lab.work_dir().join("ctl/relevo.sock");
    let watcher = ModeWatcher::start(&path);
    let node = start_node(
        &lab,
        &format!("control_group = \"{}\"\n", accounts.group),
        &[],
        false,
    );
    let seen = watcher.finish();
    assert_eq!(owner_and_mode(&node.socket), Some((0o660, 0, gid)));
    let allowed = BTreeSet::from([(0o600, 0, 0), (0o600, 0, gid), (0o660, 0, gid)]);
    assert!(seen.is_subset(&allowed), "seen {seen:?}");
    assert!(seen.contains(&(0o660, 0, gid)), "seen {seen:?}");

    // Primary gid is the group's.
    let regid = gid.to_string();
    let out = status_as(
        &lab,
        &["--reuid", "65534", "--regid", &regid, "--clear-groups"],
        &node.socket,
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("node n1"), "{}", text(&out));
    assert!(stdout.contains("log_lines_dropped="), "{}", text(&out));
    assert!(stdout.contains("control_refused=0"), "{}", text(&out));
    // Listed in the group by the group database (primary gid nogroup).
    let out = status_as(
        &lab,
        &[
            "--reuid",
            &accounts.user,
            "--regid",
            "65534",
            "--init-groups",
        ],
        &node.socket,
    );
    assert!(out.status.success(), "{}", text(&out));
    // The group only as a supplementary group of this process: the file mode lets it
    // connect, but neither its gid nor the group database puts uid 65534 in the group.
    let out = status_as(
        &lab,
        &["--reuid", "65534", "--regid", "65534", "--groups", &regid],
        &node.socket,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let expected = format!(
        "permission denied: uid {NOBODY} is not root or in group {}",
        accounts.group
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&expected),
        "{}",
        text(&out)
    );
    assert_eq!(status(&node).control_refused, 1);
}

fn connect(node: &Node) -> UnixStream {
    let stream = UnixStream::connect(&node.socket).unwrap();
    stream
        .set_read_timeout(Some(IDLE_TIMEOUT + Duration::from_secs(5)))
        .unwrap();
    stream
}

/// Reads one line, then expects the daemon to close.
fn line_then_eof(stream: &UnixStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut rest = Vec::new();
    // A reset after the line (the daemon did not read everything we sent) is a close too.
    let _ = reader.read_to_end(&mut rest);
    assert!(rest.is_empty(), "more after the line: {rest:?}");
    line
}

#[test]
fn idle_connections_are_closed_and_others_served_meanwhile() {
    let Some(lab) = lab("ctlidle", 1) else { return };
    let node = start_node(&lab, "", &[], false);
    let started = Instant::now();
    let silent = connect(&node);
    let mut partial = connect(&node);
    partial.write_all(b"{\"command\":").unwrap();
    // The idle connections hold nobody up.
    for _ in 0..3 {
        assert_eq!(status(&node).instances[0].state, "MASTER");
    }
    let waiter = std::thread::spawn(move || line_then_eof(&partial));
    let line = line_then_eof(&silent);
    let waited = started.elapsed();
    assert!(line.contains("idle timeout"), "{line}");
    assert!(
        waited >= IDLE_TIMEOUT - ms(100) && waited < IDLE_TIMEOUT + Duration::from_secs(2),
        "closed after {waited:?}"
    );
    let line = waiter.join().unwrap();
    assert!(line.contains("idle timeout"), "{line}");
    assert_eq!(status(&node).control_refused, 0);
}

#[test]
fn oversized_requests_get_an_error_and_large_valid_ones_an_answer() {
    let Some(lab) = lab("ctlbig", 1) else { return };
    let node = start_node(&lab, "", &[], false);

    let mut stream = connect(&node);
    // Within the socket buffer: the write completes before the daemon reads.
    stream.write_all(&vec![b'x'; MAX_REQUEST + 1000]).unwrap();
    let line = line_then_eof(&stream);
    assert!(
        line.contains(&format!("request longer than {MAX_REQUEST} bytes")),
        "{line}"
    );

    // Leading whitespace is valid JSON: a request just under the limit is served.
    let mut stream = connect(&node);
    let mut request = vec![b' '; MAX_REQUEST - 100];
    request.extend_from_slice(b"{\"command\":\"status\"}\n");
    stream.write_all(&request).unwrap();
    let line = line_then_eof(&stream);
    let reply: Status = serde_json::from_str(&line).unwrap();
    assert_eq!(reply.node, "n1");
}

#[test]
fn a_connection_flood_is_bounded_and_adverts_go_on() {
    let Some(lab) = lab("ctlflood", 1) else {
        return;
    };
    let node = start_node(&lab, "", &[], false);
    let before = status(&node);
    let t0 = Instant::now();
    let flood = 3 * MAX_CONNECTIONS;
    let mut streams: Vec<UnixStream> = (0..flood).map(|_| connect(&node)).collect();
    // Each one is admitted (and silent until its deadline) or refused with a line at once,
    // in the order they connected: once the last one has its refusal, all are decided.
    let last = streams.pop().unwrap();
    let line = line_then_eof(&last);
    assert!(line.contains("too many control connections"), "{line}");
    let mut held = Vec::new();
    let mut refused = 1;
    for mut stream in streams {
        stream.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 256];
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => {
                let line = String::from_utf8_lossy(&buf[..n]);
                assert!(line.contains("too many control connections"), "{line}");
                refused += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => held.push(stream),
            other => panic!("closed without a word: {other:?}"),
        }
    }
    assert_eq!(held.len(), MAX_CONNECTIONS);
    assert_eq!(refused, flood - MAX_CONNECTIONS);
    // The daemon drops the idle ones at their deadline; then it answers again.
    for mut stream in held {
        stream.set_nonblocking(false).unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    }
    let after = status(&node);
    let elapsed = t0.elapsed().as_secs_f64();
    assert_eq!(after.control_refused, (flood - MAX_CONNECTIONS) as u64);
    assert_eq!(after.instances[0].state, "MASTER");
    let rate = (adverts_sent(&after) - adverts_sent(&before)) as f64 / elapsed;
    eprintln!("connection flood: {rate:.1} adverts/s over {elapsed:.1} s");
    assert!(
        rate > 80.0,
        "{rate:.1} adverts/s during the flood (100 expected)"
    );
}

/// Adverts for a VRID nobody runs, from the client's namespace: each is logged at debug
/// level by the receiving daemon ("dropped a VRRP packet"). Sends `per_ms` a millisecond until
/// `stop`; returns how many went out.
fn flood_unknown_vrid(src: Ipv4Addr, per_ms: usize, stop: Arc<AtomicBool>) -> usize {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
    sock.bind_device(Some(b"eth0")).unwrap();
    sock.set_multicast_ttl_v4(255).unwrap();
    let group = Ipv4Addr::new(224, 0, 0, 18);
    let advert = CraftedAdvert::v3(VRID + 1, 100, 1, &[VIP]).bytes(src, group);
    let to = SocketAddrV4::new(group, 0).into();
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..per_ms {
            sent += usize::from(sock.send_to(&advert, &to).is_ok());
        }
        std::thread::sleep(ms(1));
    }
    sent
}

#[test]
fn a_stalled_stderr_never_stops_adverts() {
    let Some(lab) = lab("ctlstall", 1) else {
        return;
    };
    // stdout and stderr both into a pipe that nobody reads, shrunk to one page so it fills
    // after a few dozen lines; `exec` keeps the daemon's pid the lab's process.
    let mut node = start_node(
        &lab,
        "",
        &[
            "sh",
            "-c",
            "exec 2>&1; exec env RELEVO_LOG=debug \"$@\"",
            "sh",
        ],
        true,
    );
    let pipe = node.process.take_stdout().expect("stdout is piped");
    // SAFETY: F_SETPIPE_SZ on a pipe fd we own; a failure only leaves the default size.
    let resized = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(resized > 0, "F_SETPIPE_SZ failed");
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let stop = Arc::clone(&stop);
        let ns = lab.client_ns();
        let src = lab.client_ipv4();
        std::thread::spawn(move || {
            relevo::lab::netns::in_netns(&ns, move || Ok(flood_unknown_vrid(src, 5, stop)))
        })
    };
    let stalled = wait_for(Duration::from_secs(10), || {
        status(&node).log_lines_dropped > 0
    });
    assert!(stalled, "no log line was dropped: is the pipe being read?");

    // Stderr stays stalled and the flood goes on logging: the loop must keep its rhythm.
    let first = status(&node);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let last = status(&node);
    let elapsed = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let sent = flood.join().unwrap().unwrap();
    let rate = (adverts_sent(&last) - adverts_sent(&first)) as f64 / elapsed;
    eprintln!(
        "stderr stalled: {rate:.1} adverts/s, {} log lines dropped, {sent} packets logged at",
        last.log_lines_dropped
    );
    assert!(
        rate > 80.0,
        "{rate:.1} adverts/s with stderr stalled (100 expected)"
    );
    assert!(
        last.log_lines_dropped > first.log_lines_dropped,
        "the loop stopped logging? {} then {} dropped ({sent} packets sent)",
        first.log_lines_dropped,
        last.log_lines_dropped
    );
    assert_eq!(last.instances[0].state, "MASTER");

    // A graceful stop still completes: the log flush at exit gives up on the stalled pipe.
    let t = Instant::now();
    node.process
        .signal(nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let exit = node.process.wait_exit(Duration::from_secs(6)).unwrap();
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit {exit:?} after {:?}",
        t.elapsed()
    );
    drop(pipe);
}
