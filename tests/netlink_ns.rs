//! Root-only tests of the rtnetlink layer (`relevo::daemon::netlink`) against the real kernel,
//! each inside a private network namespace holding a veth pair `nl0`/`nl1`.
//!
//! The test body runs on a thread that has `setns`-ed into the namespace (the netlink sockets
//! are opened there); the namespace is deleted by a guard even when the body panics. Without
//! root see netns_support: they fail, or skip when asked to (never under `CI=true`). Like the
//! other namespace binaries', these tests run one at a time (`netns_support::serial`): the
//! lease test's timing must not compete with the overrun test's notification storm.
mod netns_support;

use std::collections::HashSet;
use std::fs::File;
use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use nix::sched::{setns, CloneFlags};
use relevo::daemon::interfaces::Interfaces;
use relevo::daemon::netlink::{
    AddrInfo, AddrOp, LinkInfo, NetEvent, Netlink, NO_ADDR_PROTO_ENV, READ_BUDGET,
    RELEVO_ADDR_PROTO,
};

const EVENTS: Token = Token(1);
const REQUESTS: Token = Token(2);
const DUMP: Token = Token(3);
const MAC: [u8; 6] = [0x02, 0, 0, 0, 0x52, 0x01];
/// Generous: events normally arrive within microseconds.
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A network namespace named after the test and this process; deleted on drop when this
/// process created it.
struct NetNs {
    name: String,
    owned: bool,
    /// The binary's namespace lock, released after the namespace is deleted.
    _serial: Option<MutexGuard<'static, ()>>,
}

impl NetNs {
    /// The namespace of root-only `test` (`None`: skipped, see netns_support), made by
    /// [`NetNs::create`], with the links in `up` brought up in that order.
    fn for_test(test: &str, up: &[&str]) -> Option<NetNs> {
        if !netns_support::needs_root(test) {
            return None;
        }
        let serial = netns_support::serial();
        let mut ns = NetNs::create(test);
        ns._serial = Some(serial);
        for link in up {
            ns.ip(&["link", "set", link, "up"]);
        }
        Some(ns)
    }

    /// The namespace `name` made by another process, left in place on drop.
    fn existing(name: String) -> NetNs {
        NetNs {
            name,
            owned: false,
            _serial: None,
        }
    }

    /// Creates the namespace with a veth pair `nl0` (MAC [`MAC`]) / `nl1`, both down.
    fn create(tag: &str) -> NetNs {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("relevo-nl-{tag}-{}-{n}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run_ok("ip", &["netns", "add", &name]);
        let ns = NetNs {
            name,
            owned: true,
            _serial: None,
        };
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
        if !self.owned {
            return;
        }
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
        nl.register(poll.registry(), EVENTS, REQUESTS, DUMP)
            .unwrap();
        Loop {
            nl,
            poll,
            events: Events::with_capacity(8),
            seen: Vec::new(),
            cursor: 0,
        }
    }

    /// One turn of the daemon's netlink handling: timeouts, then a bounded read. Returns
    /// whether datagrams may still be queued.
    fn turn(&mut self) -> bool {
        let now = Instant::now();
        self.nl.handle_timeout(now, &mut self.seen);
        self.nl.read_events(&mut self.seen, now).unwrap()
    }

    /// Reads what is queued and marks everything read so far as consumed.
    fn drain(&mut self) {
        while self.turn() {}
        self.cursor = self.seen.len();
    }

    /// Polls until an event matching `pred` arrives after the one the previous wait returned
    /// (panics after [`EVENT_TIMEOUT`]).
    fn wait_for(&mut self, what: &str, pred: impl Fn(&NetEvent) -> bool) -> NetEvent {
        self.wait_until(what, Instant::now() + EVENT_TIMEOUT, pred)
    }

    fn wait_until(
        &mut self,
        what: &str,
        deadline: Instant,
        pred: impl Fn(&NetEvent) -> bool,
    ) -> NetEvent {
        loop {
            let more = self.turn();
            if let Some(i) = self.seen[self.cursor..].iter().position(&pred) {
                self.cursor += i + 1;
                return self.seen[self.cursor - 1].clone();
            }
            if more {
                continue; // edge-triggered: no readiness event would come for the rest
            }
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; saw {:#?}",
                &self.seen[self.cursor..]
            );
            let wake = self.nl.next_deadline().map_or(left, |at| {
                at.saturating_duration_since(now) + Duration::from_millis(1)
            });
            self.poll
                .poll(&mut self.events, Some(left.min(wake)))
                .unwrap();
        }
    }

    /// A background resync, waited for like the daemon waits: its snapshot.
    fn resync(&mut self) -> (Vec<LinkInfo>, Vec<AddrInfo>) {
        self.nl.start_resync(Instant::now(), &mut self.seen);
        match self.wait_for("the resync's snapshot", |e| {
            matches!(e, NetEvent::Resynced { .. })
        }) {
            NetEvent::Resynced { links, addrs } => (links, addrs),
            _ => unreachable!(),
        }
    }
}

fn ifindex_of(nl: &mut Netlink, name: &str) -> u32 {
    let (links, _) = nl.snapshot().unwrap();
    index_in(&links, name)
}

fn index_in(links: &[LinkInfo], name: &str) -> u32 {
    links
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no link {name} in {links:#?}"))
        .ifindex
}

fn is_link(event: &NetEvent, name: &str, up: bool) -> bool {
    matches!(event, NetEvent::Link(l) if l.name == name && l.up == up)
}

#[test]
fn link_dump_and_up_down_events() {
    let Some(ns) = NetNs::for_test("link_dump_and_up_down_events", &[]) else {
        return;
    };
    ns.run(|| {
        let mut lp = Loop::open();
        let (links, _) = lp.nl.snapshot().unwrap();
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
            .snapshot()
            .unwrap()
            .0
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
            .snapshot()
            .unwrap()
            .0
            .iter()
            .any(|l| l.name.starts_with("nl")));
    });
}

/// Our permanent, usable address.
fn is_ours(info: &AddrInfo, addr: IpAddr, prefix_len: u8, ifindex: u32) -> bool {
    is_usable(info, addr, prefix_len, ifindex)
        && info.proto == RELEVO_ADDR_PROTO
        && info.valid_lifetime.is_none()
}

fn is_usable(info: &AddrInfo, addr: IpAddr, prefix_len: u8, ifindex: u32) -> bool {
    info.addr == addr
        && info.prefix_len == prefix_len
        && info.ifindex == ifindex
        && !info.tentative
        && !info.dad_failed
        && !info.secondary
}

#[test]
fn add_readd_and_delete_addresses() {
    let Some(ns) = NetNs::for_test("add_readd_and_delete_addresses", &["nl1", "nl0"]) else {
        return;
    };
    let v4: IpAddr = "192.0.2.100".parse().unwrap();
    let v6: IpAddr = "2001:db8::100".parse().unwrap();
    ns.run(|| {
        let mut lp = Loop::open();
        let ifindex = ifindex_of(&mut lp.nl, "nl0");

        lp.nl.add_address(ifindex, v4, 24, None).unwrap();
        lp.nl.add_address(ifindex, v6, 64, None).unwrap();
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
        let (_, dumped) = lp.nl.snapshot().unwrap();
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
        let readd4 = lp.nl.add_address(ifindex, v4, 24, None).unwrap();
        let readd6 = lp.nl.add_address(ifindex, v6, 64, None).unwrap();
        let missing: IpAddr = "192.0.2.200".parse().unwrap();
        let bad_del = lp.nl.del_address(ifindex, missing, 24).unwrap();
        let failed = lp.wait_for(
            "delete of a missing address refused",
            |e| matches!(e, NetEvent::RequestFailed { seq, .. } if *seq == bad_del),
        );
        let NetEvent::RequestFailed {
            errno,
            what,
            op,
            ifindex: failed_on,
            addr,
            prefix_len,
            ..
        } = failed
        else {
            unreachable!()
        };
        assert_eq!(errno, libc::EADDRNOTAVAIL);
        // Enough to retry exactly that request.
        assert_eq!(
            (op, failed_on, addr, prefix_len),
            (AddrOp::Del, ifindex, missing, 24)
        );
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
        let no_dev = lp.nl.add_address(99_999, v4, 24, None).unwrap();
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
            .snapshot()
            .unwrap()
            .1
            .iter()
            .any(|a| a.addr == v4 || a.addr == v6));
        assert!(!lp.seen.contains(&NetEvent::Overrun));
    });
}

#[test]
fn overrun_is_reported_and_a_resync_recovers() {
    let test = "overrun_is_reported_and_a_resync_recovers";
    let Some(ns) = NetNs::for_test(test, &["nl1"]) else {
        return;
    };
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

        // One read is bounded and says that more is queued.
        assert!(lp.turn(), "a full queue left after one read");
        assert!(lp.seen.len() <= READ_BUDGET + 1, "{} events", lp.seen.len());
        lp.wait_for("overrun", |e| *e == NetEvent::Overrun);
        // The daemon's answer to an overrun: a resync. The final state is in its snapshot,
        // or (the carrier comes up asynchronously, via linkwatch) in an event right after it.
        let (links, _) = lp.resync();
        let after = lp.cursor;
        let nl0 = links.iter().find(|l| l.name == "nl0").unwrap();
        if !nl0.up {
            lp.wait_for("nl0 carrier up after the snapshot", |e| {
                is_link(e, "nl0", true)
            });
        }
        // The stale queue went with the old events socket: no more overruns or flapping.
        lp.drain();
        assert!(
            !lp.seen[after..]
                .iter()
                .any(|e| *e == NetEvent::Overrun || is_link(e, "nl0", false)),
            "{:#?}",
            &lp.seen[after..]
        );
        // And the replacement events socket works (it is registered: the poll wakes for it).
        ns.ip(&["link", "set", "nl0", "down"]);
        lp.wait_for("nl0 down after the resync", |e| is_link(e, "nl0", false));
    });
}

#[test]
fn resync_forgets_deleted_links_and_follows_recreated_ones() {
    let test = "resync_forgets_deleted_links_and_follows_recreated_ones";
    let Some(ns) = NetNs::for_test(test, &["nl1"]) else {
        return;
    };
    for (name, peer) in [("nlgone", "nlgone1"), ("nlre", "nlre1")] {
        ns.ip(&["link", "add", name, "type", "veth", "peer", "name", peer]);
    }
    ns.run(|| {
        let mut lp = Loop::open();
        let (links, addrs) = lp.nl.snapshot().unwrap();
        let mut table = Interfaces::default();
        assert!(table.reset(links.clone(), addrs).is_empty());
        let gone = index_in(&links, "nlgone");
        let recreated_old = index_in(&links, "nlre");

        // Changes whose events the loop never reads, as if an overrun had lost them.
        ns.ip(&["link", "del", "nlgone"]);
        ns.ip(&["link", "del", "nlre"]);
        ns.ip(&[
            "link", "add", "nlre", "type", "veth", "peer", "name", "nlre1",
        ]);
        ns.ip(&["addr", "add", "198.51.100.7/24", "dev", "nlre"]);

        let started = Instant::now();
        lp.nl.start_resync(Instant::now(), &mut lp.seen);
        assert!(started.elapsed() < Duration::from_millis(500));
        // A change during the resync: its event comes after the snapshot, never before it.
        ns.ip(&["link", "set", "nl0", "up"]);
        let resynced = lp.wait_for("the snapshot", |e| matches!(e, NetEvent::Resynced { .. }));
        let NetEvent::Resynced { links, addrs } = resynced else {
            unreachable!()
        };
        assert!(
            !links.iter().any(|l| l.name.starts_with("nlgone")),
            "{links:#?}"
        );
        let recreated = index_in(&links, "nlre");
        assert_ne!(recreated, recreated_old);
        assert!(
            addrs
                .iter()
                .any(|a| a.ifindex == recreated
                    && a.addr == "198.51.100.7".parse::<IpAddr>().unwrap())
        );
        // The notifications that predate the resync were dropped with the old events socket.
        assert!(
            !lp.seen
                .iter()
                .any(|e| matches!(e, NetEvent::LinkRemoved { .. })),
            "{:#?}",
            lp.seen
        );
        lp.wait_for("nl0 up, after the snapshot", |e| is_link(e, "nl0", true));

        // The daemon's diff: what vanished (with its old ifindex), and the new ifindex.
        let vanished: Vec<(u32, String)> = table
            .reset(links, addrs)
            .into_iter()
            .map(|l| (l.ifindex, l.name))
            .collect();
        assert!(
            vanished.contains(&(gone, "nlgone".to_string())),
            "{vanished:?}"
        );
        assert!(
            vanished.contains(&(recreated_old, "nlre".to_string())),
            "{vanished:?}"
        );
        assert!(vanished
            .iter()
            .all(|(_, name)| name.starts_with("nlgone") || name.starts_with("nlre")));
        assert_eq!(
            table.by_name("nlre").map(|i| i.link.ifindex),
            Some(recreated)
        );
    });
}

#[test]
fn reads_never_block() {
    let Some(ns) = NetNs::for_test("reads_never_block", &[]) else {
        return;
    };
    ns.run(|| {
        let mut lp = Loop::open();
        let quick = Duration::from_millis(200);
        // Nothing pending on any socket, the dump socket included.
        let started = Instant::now();
        let mut out = Vec::new();
        assert!(!lp.nl.read_events(&mut out, Instant::now()).unwrap());
        assert!(out.is_empty() && started.elapsed() < quick);
        // A resync is driven by reads that each return at once.
        lp.nl.start_resync(Instant::now(), &mut out);
        assert!(
            lp.nl.next_deadline().is_some(),
            "a running dump has a timeout"
        );
        let started = Instant::now();
        while !out.iter().any(|e| matches!(e, NetEvent::Resynced { .. })) {
            let call = Instant::now();
            lp.nl.read_events(&mut out, Instant::now()).unwrap();
            assert!(call.elapsed() < quick);
            assert!(started.elapsed() < EVENT_TIMEOUT, "no snapshot: {out:?}");
        }
        assert_eq!(lp.nl.next_deadline(), None);
        // Drained dump socket: the next read returns at once too.
        let started = Instant::now();
        assert!(!lp.nl.read_events(&mut out, Instant::now()).unwrap());
        assert!(started.elapsed() < quick);
    });
}

/// The valid lifetime `ip -d addr` shows for `addr` on nl0, in seconds (`None`: forever).
fn shown_valid_lft(ns: &NetNs, addr: &str) -> Option<u32> {
    let shown = ns.ip(&["-d", "addr", "show", "dev", "nl0"]);
    let mut lines = shown
        .lines()
        .skip_while(|l| !l.contains(&format!(" {addr}/")));
    let line = lines
        .find(|l| l.contains("valid_lft"))
        .unwrap_or_else(|| panic!("{addr} not shown: {shown}"));
    let value = line.split_whitespace().nth(1).unwrap_or_default();
    if value == "forever" {
        return None;
    }
    Some(value.trim_end_matches("sec").parse().unwrap())
}

#[test]
fn leased_addresses_expire_unless_renewed() {
    let test = "leased_addresses_expire_unless_renewed";
    let Some(ns) = NetNs::for_test(test, &["nl1", "nl0"]) else {
        return;
    };
    let v4: IpAddr = "192.0.2.50".parse().unwrap();
    let v6: IpAddr = "2001:db8::50".parse().unwrap();
    let leased = |a: &NetEvent, addr: IpAddr, ifindex: u32, secs: u32| {
        matches!(a, NetEvent::AddrAdded(a)
            if is_usable(a, addr, if addr.is_ipv4() { 24 } else { 64 }, ifindex)
                && a.proto == RELEVO_ADDR_PROTO
                && a.valid_lifetime.is_some_and(|left| left <= secs && left + 1 >= secs))
    };
    ns.run(|| {
        let mut lp = Loop::open();
        let ifindex = ifindex_of(&mut lp.nl, "nl0");
        let lease = Some(Duration::from_millis(1500)); // rounded up to 2 s
        let t0 = Instant::now();
        lp.nl.add_address(ifindex, v4, 24, lease).unwrap();
        lp.nl.add_address(ifindex, v6, 64, lease).unwrap();
        lp.wait_for("v4 leased", |e| leased(e, v4, ifindex, 2));
        lp.wait_for("v6 leased, usable at once", |e| leased(e, v6, ifindex, 2));
        for addr in ["192.0.2.50", "2001:db8::50"] {
            let left = shown_valid_lft(&ns, addr);
            assert!(left.is_some_and(|s| s <= 2), "{addr}: {left:?}");
        }

        // Renewed (replaced) after a second with a 4 s lease: now it lives to about t0 + 5 s.
        std::thread::sleep(Duration::from_secs(1).saturating_sub(t0.elapsed()));
        let renewed = Instant::now();
        lp.nl
            .add_address(ifindex, v4, 24, Some(Duration::from_secs(4)))
            .unwrap();
        lp.nl
            .add_address(ifindex, v6, 64, Some(Duration::from_secs(4)))
            .unwrap();
        lp.wait_for("v4 renewed", |e| leased(e, v4, ifindex, 4));
        lp.wait_for("v6 renewed", |e| leased(e, v6, ifindex, 4));
        for addr in ["192.0.2.50", "2001:db8::50"] {
            let left = shown_valid_lft(&ns, addr);
            assert!(left.is_some_and(|s| s > 2), "{addr} not extended: {left:?}");
        }
        // Well past the first lease (which the kernel enforces to ~0.1 s), both are there.
        std::thread::sleep(Duration::from_millis(3200).saturating_sub(t0.elapsed()));
        let (_, addrs) = lp.nl.snapshot().unwrap();
        for addr in [v4, v6] {
            assert!(addrs.iter().any(|a| a.addr == addr), "{addr} expired early");
        }
        // Then they go by themselves, about when the renewed lease ends.
        let by = renewed + Duration::from_secs(4) + Duration::from_millis(1500);
        let mark = lp.cursor;
        for addr in [v4, v6] {
            lp.cursor = mark; // in either order
            lp.wait_until(
                &format!("{addr} expired"),
                by,
                |e| matches!(e, NetEvent::AddrRemoved(a) if a.addr == addr && a.ifindex == ifindex),
            );
        }
        assert!(renewed.elapsed() >= Duration::from_millis(3500));
        let shown = ns.ip(&["addr", "show", "dev", "nl0"]);
        assert!(
            !shown.contains("192.0.2.50") && !shown.contains("2001:db8::50"),
            "{shown}"
        );
    });
}

/// Set in the child process of [`no_addr_proto_env_leaves_addresses_unstamped`]: the
/// namespace to work in.
const CHILD_NS_ENV: &str = "RELEVO_NL_TEST_CHILD_NS";

#[test]
fn no_addr_proto_env_leaves_addresses_unstamped() {
    let v4: IpAddr = "198.51.100.60".parse().unwrap();
    let v6: IpAddr = "2001:db8:1::60".parse().unwrap();
    if let Ok(name) = std::env::var(CHILD_NS_ENV) {
        // The child (of a parent that passed the root guard and holds the lock):
        // RELEVO_NO_ADDR_PROTO=1 has been set since it started.
        let ns = NetNs::existing(name);
        ns.run(|| {
            let mut lp = Loop::open();
            let ifindex = ifindex_of(&mut lp.nl, "nl0");
            lp.nl.add_address(ifindex, v4, 24, None).unwrap();
            lp.nl.add_address(ifindex, v6, 64, None).unwrap();
            for (addr, len) in [(v4, 24), (v6, 64)] {
                lp.wait_for("an unstamped address", |e| {
                    matches!(e, NetEvent::AddrAdded(a)
                        if is_usable(a, addr, len, ifindex) && a.proto == 0)
                });
            }
        });
        return;
    }
    let test = "no_addr_proto_env_leaves_addresses_unstamped";
    let Some(ns) = NetNs::for_test(test, &["nl1", "nl0"]) else {
        return;
    };
    // Environment variables are process-wide and read at open: run this test again in a child
    // process that has the variable from its start, then look from here.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "no_addr_proto_env_leaves_addresses_unstamped",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(NO_ADDR_PROTO_ENV, "1")
        .env(CHILD_NS_ENV, &ns.name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ns.run(|| {
        let mut lp = Loop::open();
        let (_, addrs) = lp.nl.snapshot().unwrap();
        for addr in [v4, v6] {
            let found = addrs.iter().find(|a| a.addr == addr);
            assert!(found.is_some_and(|a| a.proto == 0), "{addr}: {found:?}");
        }
        // The same kernel keeps our stamp when it is sent.
        let ifindex = ifindex_of(&mut lp.nl, "nl0");
        let stamped: IpAddr = "198.51.100.61".parse().unwrap();
        lp.nl.add_address(ifindex, stamped, 24, None).unwrap();
        lp.wait_for("a stamped address", |e| {
            matches!(e, NetEvent::AddrAdded(a) if a.addr == stamped && a.proto == RELEVO_ADDR_PROTO)
        });
    });
}
