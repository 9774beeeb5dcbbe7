//! Root-only tests of the rtnetlink layer (`relevo::daemon::netlink`) against the real kernel,
//! each inside a private network namespace holding a veth pair `nl0`/`nl1`.
//!
//! The test body runs on a thread that has `setns`-ed into the namespace (the netlink sockets
//! are opened there); the namespace is deleted by a guard even when the body panics. Without
//! root see netns_support: they fail, or skip when asked to (never under `CI=true`).
mod netns_support;

use std::collections::HashSet;
use std::fs::File;
use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use nix::sched::{setns, CloneFlags};
use relevo::daemon::netlink::{AddrInfo, NetEvent, Netlink, RELEVO_ADDR_PROTO};

const EVENTS: Token = Token(1);
const REQUESTS: Token = Token(2);
const MAC: [u8; 6] = [0x02, 0, 0, 0, 0x52, 0x01];
/// Generous: events normally arrive within microseconds.
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A network namespace named after the test and this process; deleted on drop.
struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates the namespace with a veth pair `nl0` (MAC [`MAC`]) / `nl1`, both down.
    fn create(tag: &str) -> NetNs {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("relevo-nl-{tag}-{}-{n}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run_ok("ip", &["netns", "add", &name]);
        let ns = NetNs { name };
        ns.ip(&[
            "link",
            "add",
            "nl0",
            "address",
            "02:00:00:00:52:01",
            "type",
            "veth",
            "peer",
            "name",
            "nl1",
        ]);
        ns
    }

    /// Runs `ip -n NS ARGS...`, asserting success; returns stdout.
    fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run_ok("ip", &full)
    }

    /// Runs `body` on a thread that has entered the namespace.
    fn run<T: Send>(&self, body: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let ns = File::open(&path).unwrap();
                    setns(&ns, CloneFlags::CLONE_NEWNET).unwrap();
                    body()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn run_ok(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The netlink layer plus a mio poll, as the daemon uses them.
struct Loop {
    nl: Netlink,
    poll: Poll,
    events: Events,
    /// Everything read so far, in order.
    seen: Vec<NetEvent>,
    /// `seen[..cursor]` has been consumed by earlier waits.
    cursor: usize,
}

impl Loop {
    fn open() -> Loop {
        let mut nl = Netlink::open().unwrap();
        let poll = Poll::new().unwrap();
        nl.register(poll.registry(), EVENTS, REQUESTS).unwrap();
        Loop {
            nl,
            poll,
            events: Events::with_capacity(8),
            seen: Vec::new(),
            cursor: 0,
        }
    }

    /// Reads what is queued and marks everything read so far as consumed.
    fn drain(&mut self) {
        self.nl.read_events(&mut self.seen).unwrap();
        self.cursor = self.seen.len();
    }

    /// Polls until an event matching `pred` arrives after the one the previous wait returned
    /// (panics after [`EVENT_TIMEOUT`]).
    fn wait_for(&mut self, what: &str, pred: impl Fn(&NetEvent) -> bool) -> NetEvent {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            self.nl.read_events(&mut self.seen).unwrap();
            if let Some(i) = self.seen[self.cursor..].iter().position(&pred) {
                self.cursor += i + 1;
                return self.seen[self.cursor - 1].clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; saw {:#?}",
                self.seen
            );
            self.poll.poll(&mut self.events, Some(left)).unwrap();
        }
    }
}

fn ifindex_of(nl: &mut Netlink, name: &str) -> u32 {
    let links = nl.dump_links().unwrap();
    links.iter().find(|l| l.name == name).unwrap().ifindex
}

fn is_link(event: &NetEvent, name: &str, up: bool) -> bool {
    matches!(event, NetEvent::Link(l) if l.name == name && l.up == up)
}

#[test]
fn link_dump_and_up_down_events() {
    if !netns_support::needs_root("link_dump_and_up_down_events") {
        return;
    }
    let ns = NetNs::create("link");
    ns.run(|| {
        let mut lp = Loop::open();
        let links = lp.nl.dump_links().unwrap();
        let nl0 = links.iter().find(|l| l.name == "nl0").expect("nl0 dumped");
        assert_eq!(nl0.mac, Some(MAC));
        assert!(!nl0.up);
        assert!(links.iter().any(|l| l.name == "lo"));
        assert_eq!(
            links
                .iter()
                .map(|l| l.ifindex)
                .collect::<HashSet<_>>()
                .len(),
            links.len()
        );

        // Administratively up without carrier (peer down) is not up.
        ns.ip(&["link", "set", "nl0", "up"]);
        lp.wait_for(
            "nl0 UP without carrier",
            |e| matches!(e, NetEvent::Link(l) if l.name == "nl0" && l.mac == Some(MAC) && !l.up),
        );
        ns.ip(&["link", "set", "nl1", "up"]);
        lp.wait_for("nl0 up", |e| is_link(e, "nl0", true));
        assert!(lp
            .nl
            .dump_links()
            .unwrap()
            .iter()
            .any(|l| l.name == "nl0" && l.up));

        ns.ip(&["link", "set", "nl0", "down"]);
        lp.wait_for("nl0 down", |e| is_link(e, "nl0", false));
        ns.ip(&["link", "set", "nl0", "up"]);
        lp.wait_for("nl0 up again", |e| is_link(e, "nl0", true));
        // Carrier loss: the peer goes down.
        ns.ip(&["link", "set", "nl1", "down"]);
        lp.wait_for("nl0 carrier lost", |e| is_link(e, "nl0", false));

        ns.ip(&["link", "del", "nl0"]);
        lp.wait_for(
            "nl0 removed",
            |e| matches!(e, NetEvent::LinkRemoved { name, .. } if name == "nl0"),
        );
        assert!(!lp
            .nl
            .dump_links()
            .unwrap()
            .iter()
            .any(|l| l.name.starts_with("nl")));
    });
}

fn is_ours(info: &AddrInfo, addr: IpAddr, prefix_len: u8, ifindex: u32) -> bool {
    info.addr == addr
        && info.prefix_len == prefix_len
        && info.ifindex == ifindex
        && info.proto == RELEVO_ADDR_PROTO
        && !info.tentative
}

#[test]
fn add_readd_and_delete_addresses() {
    if !netns_support::needs_root("add_readd_and_delete_addresses") {
        return;
    }
    let ns = NetNs::create("addr");
    ns.ip(&["link", "set", "nl1", "up"]);
    ns.ip(&["link", "set", "nl0", "up"]);
    let v4: IpAddr = "192.0.2.100".parse().unwrap();
    let v6: IpAddr = "2001:db8::100".parse().unwrap();
    ns.run(|| {
        let mut lp = Loop::open();
        let ifindex = ifindex_of(&mut lp.nl, "nl0");

        lp.nl.add_address(ifindex, v4, 24).unwrap();
        lp.nl.add_address(ifindex, v6, 64).unwrap();
        lp.wait_for(
            "v4 added",
            |e| matches!(e, NetEvent::AddrAdded(a) if is_ours(a, v4, 24, ifindex)),
        );
        lp.wait_for(
            "v6 added, usable",
            |e| matches!(e, NetEvent::AddrAdded(a) if is_ours(a, v6, 64, ifindex)),
        );
        let shown = ns.ip(&["addr", "show", "dev", "nl0"]);
        assert!(shown.contains("inet 192.0.2.100/24"), "{shown}");
        assert!(shown.contains("inet6 2001:db8::100/64"), "{shown}");
        let v6_line = shown.lines().find(|l| l.contains("2001:db8::100")).unwrap();
        assert!(!v6_line.contains("tentative"), "{v6_line}");
        let dumped = lp.nl.dump_addrs().unwrap();
        assert!(
            dumped.iter().any(|a| is_ours(a, v4, 24, ifindex)),
            "{dumped:#?}"
        );
        assert!(
            dumped.iter().any(|a| is_ours(a, v6, 64, ifindex)),
            "{dumped:#?}"
        );
        // Addresses the kernel made itself (link-local) are not stamped as ours.
        assert!(dumped
            .iter()
            .filter(|a| a.addr != v4 && a.addr != v6)
            .all(|a| a.proto != RELEVO_ADDR_PROTO));

        // Re-adding our own addresses succeeds. Acks come back in request order, so once the
        // failure of the later delete has arrived, the re-adds have been acknowledged.
        let readd4 = lp.nl.add_address(ifindex, v4, 24).unwrap();
        let readd6 = lp.nl.add_address(ifindex, v6, 64).unwrap();
        let missing: IpAddr = "192.0.2.200".parse().unwrap();
        let bad_del = lp.nl.del_address(ifindex, missing, 24).unwrap();
        let failed = lp.wait_for(
            "delete of a missing address refused",
            |e| matches!(e, NetEvent::RequestFailed { seq, .. } if *seq == bad_del),
        );
        let NetEvent::RequestFailed { errno, what, .. } = failed else {
            unreachable!()
        };
        assert_eq!(errno, libc::EADDRNOTAVAIL);
        assert!(
            what.contains("192.0.2.200/24") && what.contains(&format!("ifindex {ifindex}")),
            "{what}"
        );
        assert!(
            !lp.seen.iter().any(|e| matches!(e,
                NetEvent::RequestFailed { seq, .. } if *seq == readd4 || *seq == readd6)),
            "re-adding failed: {:#?}",
            lp.seen
        );

        // Unknown interface.
        let no_dev = lp.nl.add_address(99_999, v4, 24).unwrap();
        let failed = lp.wait_for(
            "add on a missing interface refused",
            |e| matches!(e, NetEvent::RequestFailed { seq, .. } if *seq == no_dev),
        );
        assert!(
            matches!(
                failed,
                NetEvent::RequestFailed {
                    errno: libc::ENODEV,
                    ..
                }
            ),
            "{failed:?}"
        );

        lp.nl.del_address(ifindex, v4, 24).unwrap();
        lp.nl.del_address(ifindex, v6, 64).unwrap();
        lp.wait_for(
            "v4 removed",
            |e| matches!(e, NetEvent::AddrRemoved(a) if a.addr == v4 && a.ifindex == ifindex),
        );
        lp.wait_for(
            "v6 removed",
            |e| matches!(e, NetEvent::AddrRemoved(a) if a.addr == v6 && a.ifindex == ifindex),
        );
        let shown = ns.ip(&["addr", "show", "dev", "nl0"]);
        assert!(
            !shown.contains("192.0.2.100") && !shown.contains("2001:db8::100"),
            "{shown}"
        );
        assert!(!lp
            .nl
            .dump_addrs()
            .unwrap()
            .iter()
            .any(|a| a.addr == v4 || a.addr == v6));
        assert!(!lp.seen.contains(&NetEvent::Overrun));
    });
}

#[test]
fn overrun_is_reported_and_a_redump_recovers() {
    if !netns_support::needs_root("overrun_is_reported_and_a_redump_recovers") {
        return;
    }
    let ns = NetNs::create("ovr");
    ns.ip(&["link", "set", "nl1", "up"]);
    // Far more link notifications than the events socket can buffer while nobody reads it.
    let batch = std::env::temp_dir().join(format!("relevo-nl-ovr-{}", std::process::id()));
    std::fs::write(&batch, "link set nl0 up\nlink set nl0 down\n".repeat(3000)).unwrap();
    ns.run(|| {
        let mut lp = Loop::open();
        let result = Command::new("ip")
            .args(["-n", &ns.name, "-batch"])
            .arg(&batch)
            .output();
        let _ = std::fs::remove_file(&batch);
        assert!(result.unwrap().status.success());
        ns.ip(&["link", "set", "nl0", "up"]);

        lp.wait_for("overrun", |e| *e == NetEvent::Overrun);
        lp.drain();
        // The daemon's answer to an overrun: re-dump. The final state is there.
        let links = lp.nl.dump_links().unwrap();
        let nl0 = links.iter().find(|l| l.name == "nl0").unwrap();
        assert!(nl0.up, "{nl0:?}");
        // And the events socket keeps working afterwards.
        ns.ip(&["link", "set", "nl0", "down"]);
        lp.wait_for("nl0 down after the overrun", |e| is_link(e, "nl0", false));
    });
}
