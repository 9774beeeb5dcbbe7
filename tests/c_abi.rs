//! The C ABI (c-shim/: librelevo_c, relevo.h) and the check_relevo plugin, compiled with `cc`
//! against the library this build made: the JSON helpers, no daemon (refused, missing),
//! timeouts and streams against fake servers, and — as root in namespace labs (fails under
//! CI=true without it) — a live daemon through every state check_relevo reports.
mod netns_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use netns_support::*;
use relevo::lab::cluster::ClusterSpec;
use relevo::lab::relevo_node::RelevoNode;

/// The compiled C programs.
struct Programs {
    abi_test: PathBuf,
    abi_test_static: PathBuf,
    check: PathBuf,
    /// Linked statically: runs as another user from a copy anywhere.
    check_static: PathBuf,
}

/// Builds librelevo_c with the profile of this test binary (into the same target dir), then
/// compiles the test program (against the shared and the static library) and check_relevo.
fn programs() -> &'static Programs {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/c_abi-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let target_dir = profile_dir.parent().expect("the target dir");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        // `cargo test` at the root has built it already (a default member): then this is a
        // no-op. The rustc next to this cargo, should PATH not lead to one (a sudo runner).
        let cargo = PathBuf::from(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        let mut build = Command::new(&cargo);
        let rustc = cargo.with_file_name("rustc");
        if std::env::var_os("RUSTC").is_none() && rustc.is_file() {
            build.env("RUSTC", rustc);
        }
        build
            .args(["build", "-p", "relevo-c", "--manifest-path"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir);
        if release {
            build.arg("--release");
        }
        succeed(build, "building relevo-c");
        let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("c-shim");
        // Next to the library, rebuilt on every run: nothing is left in /tmp.
        let out = profile_dir.join("c-abi");
        std::fs::create_dir_all(&out).expect("a directory for the C programs");
        let cc = |source: &str, output: &Path, link: &[&str]| {
            let mut c = Command::new("cc");
            c.args([
                "-std=c11",
                "-D_POSIX_C_SOURCE=200809L",
                "-Wall",
                "-Wextra",
                "-Werror",
            ])
            .arg("-pedantic")
            .arg("-I")
            .arg(&shim)
            .arg(shim.join(source))
            .arg("-o")
            .arg(output)
            .args(link);
            succeed(c, &format!("compiling {source}"));
        };
        let lib_dir = profile_dir.display().to_string();
        let dynamic = [
            format!("-L{lib_dir}"),
            "-lrelevo_c".to_string(),
            format!("-Wl,-rpath,{lib_dir}"),
        ];
        let dynamic: Vec<&str> = dynamic.iter().map(String::as_str).collect();
        let programs = Programs {
            abi_test: out.join("abi_test"),
            abi_test_static: out.join("abi_test_static"),
            check: out.join("check_relevo"),
            check_static: out.join("check_relevo_static"),
        };
        cc("tests/abi_test.c", &programs.abi_test, &dynamic);
        cc("check_relevo.c", &programs.check, &dynamic);
        let archive = profile_dir.join("librelevo_c.a").display().to_string();
        let archive = [archive.as_str(), "-lpthread", "-ldl", "-lm"];
        cc("tests/abi_test.c", &programs.abi_test_static, &archive);
        cc("check_relevo.c", &programs.check_static, &archive);
        programs
    })
}

fn succeed(mut command: Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {:?}\n{}{}",
        command,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `program` with `args`; its exit code and stdout+stderr.
fn run(program: &Path, args: &[&str]) -> (i32, String) {
    let out: Output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Runs the test program in `mode`; panics with its output unless it passed.
fn abi_test(program: &Path, args: &[&str]) -> String {
    let (code, text) = run(program, args);
    assert_eq!(code, 0, "abi_test {args:?}:\n{text}");
    text
}

/// check_relevo with `args`: its exit code and its one line.
fn check(args: &[&str]) -> (i32, String) {
    run(&programs().check, args)
}

/// A directory of this test's own for socket files, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("relevo-c-abi-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_header_compiles_and_the_json_helpers_work_shared_and_static() {
    let p = programs();
    for program in [&p.abi_test, &p.abi_test_static] {
        let out = abi_test(program, &["json"]);
        // The C default socket is relevo's own default.
        let default = format!("default {}", relevo::config::DEFAULT_CONTROL_SOCKET);
        assert!(out.contains(&default), "{out}");
    }
}

#[test]
fn without_a_daemon_the_codes_say_why_and_the_check_is_critical() {
    let p = programs();
    // A socket file nobody listens on: what a crashed daemon leaves.
    let dir = Scratch::new("nodaemon");
    let stale = dir.path("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let out = abi_test(&p.abi_test, &["refused", stale.to_str().unwrap()]);
    assert!(
        out.contains("error -3 connection refused (stale socket: relevo is not running)"),
        "{out}"
    );
    let missing = dir.path("missing.sock");
    let out = abi_test(&p.abi_test, &["missing", missing.to_str().unwrap()]);
    assert!(
        out.contains("error -2 no control socket at that path (is relevo running?)"),
        "{out}"
    );
    let (code, line) = check(&["-s", stale.to_str().unwrap()]);
    assert_eq!(code, 2, "{line}");
    assert!(line.starts_with("RELEVO CRITICAL - "), "{line}");
    assert!(line.contains("connection refused"), "{line}");
    let (code, line) = check(&["-s", missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{line}");
    // Bad options are UNKNOWN.
    assert_eq!(check(&["-e", "SOMETIMES"]).0, 3);
    assert_eq!(check(&["-x"]).0, 3);
}

#[test]
fn a_silent_daemon_times_out_and_the_check_is_unknown() {
    let p = programs();
    let dir = Scratch::new("silent");
    let path = dir.path("silent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    // Accepts, reads the request and never answers (each connection held until the end).
    let server = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(3) {
            let Ok(mut stream) = stream else { break };
            let mut buf = [0u8; 256];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
            let _ = stream.read(&mut buf);
            held.push(stream);
        }
        std::thread::sleep(Duration::from_millis(200));
    });
    let out = abi_test(&p.abi_test, &["silent", path.to_str().unwrap()]);
    assert!(out.contains("timed out after"), "{out}");
    let (code, line) = check(&["-s", path.to_str().unwrap(), "-t", "1"]);
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("timed out"), "{line}");
    // A third connection ends the server's loop.
    drop(std::os::unix::net::UnixStream::connect(&path));
    server.join().unwrap();
}

#[test]
fn a_daemon_that_hangs_up_is_an_error_code_not_a_sigpipe() {
    let p = programs();
    let dir = Scratch::new("hangup");
    let path = dir.path("hangup.sock");
    let listener = UnixListener::bind(&path).unwrap();
    // Closes each connection at once, unread; the program waits before it sends.
    let server = std::thread::spawn(move || {
        if let Some(Ok(stream)) = listener.incoming().next() {
            drop(stream);
        }
    });
    let out = abi_test(&p.abi_test, &["hangup", path.to_str().unwrap()]);
    assert!(out.contains("hung up: "), "{out}");
    server.join().unwrap();
}

#[test]
fn a_reply_over_a_mebibyte_is_a_protocol_error() {
    let dir = Scratch::new("huge");
    let (path, server) = fake_daemon(&dir, &format!("\"{}\"", "x".repeat(1100 * 1024)), 1);
    let (code, line) = check(&["-s", path.to_str().unwrap()]);
    server.join().unwrap();
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("protocol error"), "{line}");
}

#[test]
fn a_stream_hands_out_lines_one_at_a_time_and_keeps_a_partial_one() {
    let p = programs();
    let dir = Scratch::new("stream");
    let path = dir.path("stream.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 256];
        let n = stream.read(&mut request).unwrap();
        stream.write_all(b"{\"a\":1}\n{\"b\"").unwrap();
        std::thread::sleep(Duration::from_millis(500));
        stream.write_all(b":2}\n").unwrap();
        String::from_utf8_lossy(&request[..n]).into_owned()
    });
    abi_test(&p.abi_test, &["stream", path.to_str().unwrap()]);
    let request = server.join().unwrap();
    assert_eq!(request, "{\"command\":\"events\",\"follow\":true}\n");
}

/// Answers `connections` requests on a socket in `dir` with `reply`, like a daemon would.
fn fake_daemon(
    dir: &Scratch,
    reply: &str,
    connections: usize,
) -> (PathBuf, std::thread::JoinHandle<()>) {
    let path = dir.path("fake.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let reply = format!("{reply}\n");
    let server = std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(mut stream) = stream else { break };
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (path, server)
}

/// A status reply: instance "web" in `state`, and a cluster whose other node n2 and group db
/// are as given.
fn crafted_status(state: &str, n2_alive: bool, n2_fence: &str, group_state: &str) -> String {
    serde_json::json!({
        "node": "n1",
        "instances": [{"name": "web", "state": state, "reason": "", "master": null}],
        "cluster": {
            "id": 7, "quorate": true, "votes": 2, "needed": 2, "partition": ["n1", "n2"],
            "members": [{"name": "n2", "alive": n2_alive, "links": ["up", "up"],
                         "last_heard_ms": [1, 1], "fence": n2_fence}],
            "groups": [{"name": "db", "state": group_state, "reason": "start-failed",
                        "owner": null, "failed_starts": 1, "vip_status": []}],
            "heartbeats_sent": 1, "heartbeats_received": 1, "dropped": {}
        }
    })
    .to_string()
}

#[test]
fn the_check_on_states_the_labs_do_not_reach() {
    let dir = Scratch::new("crafted");
    let cases = [
        (
            crafted_status("MASTER", true, "", "held"),
            0,
            "1 MASTER, 0 BACKUP; quorate 2/2 votes",
        ),
        (
            crafted_status("INIT", true, "", "held"),
            1,
            "instance web INIT",
        ),
        (
            crafted_status("MASTER", true, "", "failed"),
            2,
            "group db failed start-failed",
        ),
        (
            crafted_status("MASTER", false, "failed", "held"),
            2,
            "fencing n2 failed; node n2 lost, fence failed",
        ),
        (
            crafted_status("BACKUP", false, "fenced", "held"),
            1,
            "node n2 lost, fence fenced",
        ),
        (
            r#"{"error":"permission denied: uid 65534 is not root (pid 9)"}"#.to_string(),
            3,
            "permission denied (root or control_group only): permission denied: uid 65534",
        ),
        (
            r#"{"error":"bad request: x"}"#.to_string(),
            3,
            "the daemon answered with an error: bad request: x",
        ),
        ("not json".to_string(), 3, "protocol error"),
        (
            crafted_status("MASTER", true, "", "held")
                .replace(r#"["up","up"]"#, r#"["up","late"]"#),
            1,
            "link 1 to n2 late",
        ),
        (
            crafted_status("MASTER", true, "", "held")
                .replace(r#"["up","up"]"#, r#"["unknown","up"]"#),
            1,
            "link 0 to n2 unknown",
        ),
    ];
    for (reply, code, text) in cases {
        let (path, server) = fake_daemon(&dir, &reply, 1);
        let (got, line) = check(&["-s", path.to_str().unwrap()]);
        server.join().unwrap();
        assert_eq!(got, code, "{reply}: {line}");
        assert!(line.contains(text), "{reply}: {line}");
    }
}

const VIP: &str = "192.0.2.120/24";

#[test]
fn vrrp_master_backup_and_fault_through_the_library_and_the_check() {
    let Some(lab) = lab("cabi1", 2) else {
        return;
    };
    let p = programs();
    let interval = ms(100);
    let configs: Vec<_> = [(1, 200), (2, 100)]
        .into_iter()
        .map(|(i, prio)| RelevoNode::config_for(&lab, i, instance(62, prio, interval, &[VIP])))
        .collect();
    let mut nodes: Vec<RelevoNode> = configs
        .iter()
        .enumerate()
        .map(|(i, c)| RelevoNode::start(&lab, i + 1, &relevo_bin(), c).unwrap())
        .collect();
    let sockets: Vec<String> = configs
        .iter()
        .map(|c| c.control_socket.as_ref().unwrap().display().to_string())
        .collect();
    let (n1, n2) = (sockets[0].as_str(), sockets[1].as_str());
    expect_sole_holder(&lab, ip(VIP), 1, Duration::from_secs(5), &nodes);
    wait_status(&nodes[1], Duration::from_secs(3), "BACKUP", |s| {
        s.state == "BACKUP"
    });

    // The library against the live daemon: status, verbs, error replies, a stream.
    let out = abi_test(&p.abi_test, &["live", n1, "n1"]);
    assert!(out.contains("\"state\":\"MASTER\""), "{out}");
    assert!(
        out.contains("daemon error: unknown command \"no-such-verb\""),
        "{out}"
    );

    // OK: master here, backup there.
    let (code, line) = check(&["-s", n1, "-i", "web", "-e", "MASTER"]);
    assert_eq!(code, 0, "{line}");
    assert!(
        line.starts_with("RELEVO OK - node n1: 1 instance(s), 1 MASTER, 0 BACKUP |"),
        "{line}"
    );
    assert!(
        line.contains("| instances=1 instances_master=1 instances_backup=0"),
        "{line}"
    );
    let (code, line) = check(&["-s", n2, "-i", "web", "-e", "BACKUP"]);
    assert_eq!(code, 0, "{line}");
    let (code, line) = check(&["-s", n2]);
    assert_eq!(code, 0, "{line}");
    // WARNING: a backup where the master is expected.
    let (code, line) = check(&["-s", n2, "-i", "web", "-e", "MASTER"]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("instance web is BACKUP, expected MASTER"),
        "{line}"
    );
    // UNKNOWN: a name the daemon does not have.
    let (code, line) = check(&["-s", n2, "-i", "web", "-i", "nope"]);
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("no instance or group nope"), "{line}");

    // UNKNOWN: a user the socket does not admit (root only by default).
    let dir = Scratch::new("nobody");
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let copy = dir.path("check_relevo");
    std::fs::copy(&p.check_static, &copy).unwrap();
    let setpriv = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let (code, line) = run(
        Path::new("setpriv"),
        &[&setpriv[..], &[copy.to_str().unwrap(), "-s", n1]].concat(),
    );
    assert_eq!(code, 3, "{line}");
    assert!(line.contains("permission denied"), "{line}");

    // CRITICAL: the link goes down, the instance goes to FAULT.
    lab.set_node_link(1, false).unwrap();
    wait_status(&nodes[0], Duration::from_secs(3), "FAULT", |s| {
        s.state == "FAULT"
    });
    let (code, line) = check(&["-s", n1]);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("instance web FAULT link-down"), "{line}");
    assert!(line.contains("instances_fault=1"), "{line}");
    lab.set_node_link(1, true).unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || check(&["-s", n1]).0 == 0),
        "n1 healthy again: {:?}",
        check(&["-s", n1])
    );

    // CRITICAL: the daemon is gone (SIGKILL leaves its socket file: refused).
    nodes[0].crash().unwrap();
    let (code, line) = check(&["-s", n1]);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("connection refused"), "{line}");
}

#[test]
fn cluster_quorum_links_and_groups_through_the_check() {
    let Some(lab) = lab_with("cabi2", 3, relevo::lab::Topology::TwoLinks) else {
        return;
    };
    let nodes = ClusterSpec::default()
        .start(&lab, &relevo_bin())
        .unwrap_or_else(|e| panic!("{e:#}"));
    let socket = |i: usize| {
        lab.work_dir()
            .join(format!("n{i}.sock"))
            .display()
            .to_string()
    };
    let (n1, n2) = (socket(1), socket(2));
    let vip = ip(relevo::lab::cluster::CLUSTER_VIP);
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(5), &nodes);
    // Every link heard, every node alive: OK on the owner and on the others.
    let healthy = |s: &str| check(&["-s", s]).0 == 0;
    assert!(
        wait_for(Duration::from_secs(5), || healthy(&n1) && healthy(&n2)),
        "{:?} {:?}\n{}",
        check(&["-s", &n1]),
        check(&["-s", &n2]),
        logs(&nodes)
    );
    let (_, line) = check(&["-s", &n1, "-i", "db", "-e", "MASTER"]);
    assert!(
        line.contains("quorate 3/2 votes, 2/2 nodes alive, 4 links up, 1/1 groups held here"),
        "{line}"
    );
    assert!(line.contains("quorate=1 votes=3 votes_needed=2 members=2 members_alive=2 links_up=4 links_degraded=0 groups=1 groups_held=1"), "{line}");
    // The group is held on n1: BACKUP expected there is a WARNING, and on n2 it is fine.
    assert_eq!(check(&["-s", &n1, "-i", "db", "-e", "BACKUP"]).0, 1);
    assert_eq!(check(&["-s", &n2, "-i", "db", "-e", "BACKUP"]).0, 0);

    // WARNING: one heartbeat link of n1 cut; nothing moves.
    lab.set_node_port2(1, false).unwrap();
    // The link is late first (warntime), then down (deadtime): WARNING either way.
    let degraded = || check(&["-s", &n2]);
    assert!(
        wait_for(Duration::from_secs(3), || degraded()
            .1
            .contains("link 1 to n1 down")),
        "{:?}",
        degraded()
    );
    let (code, line) = degraded();
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("links_up=3 links_degraded=1"), "{line}");
    lab.set_node_port2(1, true).unwrap();
    assert!(
        wait_for(Duration::from_secs(3), || healthy(&n2)),
        "{:?}",
        degraded()
    );

    // CRITICAL: n1 cut off from everyone loses quorum; the others see it lost (WARNING).
    lab.set_node_blocked(1, true).unwrap();
    assert!(
        wait_for(Duration::from_secs(3), || check(&["-s", &n1]).0 == 2),
        "{:?}",
        check(&["-s", &n1])
    );
    let (_, line) = check(&["-s", &n1]);
    assert!(line.contains("no quorum (1 of 2 votes)"), "{line}");
    assert!(line.contains("quorate=0"), "{line}");
    assert!(
        wait_for(Duration::from_secs(3), || check(&["-s", &n2]).0 == 1),
        "{:?}",
        check(&["-s", &n2])
    );
    assert!(check(&["-s", &n2]).1.contains("node n1 lost"));
    lab.set_node_blocked(1, false).unwrap();
    expect_sole_holder(&lab, vip, 1, Duration::from_secs(5), &nodes);
}
