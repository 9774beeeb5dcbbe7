//! Real `relevo run` daemons in network namespaces (root; see netns_support for what happens
//! without it): election by priority, crash / graceful stop / link down failover seen from a
//! client, a lossless graceful hand-over at 10 ms adverts, preemption (and none without it),
//! IPv6, unicast peers where multicast cannot reach (no multicast flooding, a router), hooks
//! and their environment (pending ones coalescing to the newest state), VIPs a crashed run
//! left behind, an interface that appears late, and malformed, foreign or mismatched adverts
//! counted and dropped.
mod netns_support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use netns_support::*;
use relevo::lab::fault::{measure_failover, Fault};
use relevo::lab::probe::ProbeHandle;
use relevo::lab::relevo_node::Hooks;
use relevo::lab::{monotonic_ns, Topology};
use relevo::wire::V3Ipv4Checksum;

const VIP: &str = "192.0.2.100/24";
const INTERVAL: Duration = Duration::from_millis(100);

#[test]
fn three_nodes_elect_by_priority_and_survive_a_crash_and_the_return() {
    let Some(lab) = lab("elect", 3) else { return };
    let vip = ip(VIP);
    let mut n1 = start(&lab, 1, instance(51, 150, INTERVAL, &[VIP]));
    let n2 = start(&lab, 2, instance(51, 100, INTERVAL, &[VIP]));
    let n3 = start(&lab, 3, instance(51, 50, INTERVAL, &[VIP]));
    let logs = [
        n1.log_path().to_path_buf(),
        n2.log_path().to_path_buf(),
        n3.log_path().to_path_buf(),
    ];
    expect_master(&lab, vip, 1, Duration::from_secs(5), &logs);
    assert!(
        holds_for(ms(600), || lab.masters(vip) == [1]),
        "never two masters in steady state: {:?}",
        lab.masters(vip)
    );

    // `relevo status` (the table) over each daemon's control socket.
    let s1 = n1.status_table().unwrap();
    assert!(s1.contains("MASTER") && s1.contains("(this node)"), "{s1}");
    let s2 = n2.status_table().unwrap();
    assert!(
        s2.contains("BACKUP") && s2.contains(&lab.node_ipv4(1).to_string()),
        "{s2}"
    );
    assert!(s2.contains("adverts_received="), "{s2}");

    let probe = ProbeHandle::spawn(&lab, &relevo_bin(), vip, ms(1)).unwrap();
    probe.wait_ready(Duration::from_secs(5)).unwrap();
    // Crash: SIGKILL and the cable pulled at once (the dead node keeps its VIP, unreachable).
    let t = monotonic_ns();
    lab.set_node_port(1, false).unwrap();
    n1.crash().unwrap();
    assert!(
        wait_for(Duration::from_secs(3), || lab.node_has_address(2, vip)),
        "n2 did not take over"
    );
    let outage = probe
        .wait_outage_after(t, ms(300), Duration::from_secs(5))
        .unwrap()
        .expect("a crash of the master must cost the client something");
    // Master_Down_Interval at 100 ms and priority 100 is 360 ms; generous bound.
    assert!(outage.millis() < 1500.0, "outage {} ms", outage.millis());
    assert!(
        holds_for(ms(500), || lab.masters(vip) == [2]),
        "n2 alone must serve the VIP, n3 stays backup: {:?}",
        lab.masters(vip)
    );

    // The return (leftover VIPs of a crash: see stale_vips_of_a_crashed_run_go...): the
    // restarted daemon waits in FAULT for its cable, then preempts.
    n1.restart(&lab).unwrap();
    lab.set_node_port(1, true).unwrap();
    expect_master(&lab, vip, 1, Duration::from_secs(5), &logs);
    assert!(holds_for(ms(500), || lab.masters(vip) == [1]));
    probe.stop().unwrap();
}

#[test]
fn graceful_stop_hands_over_within_skew_time_without_outage() {
    let Some(lab) = lab("sigterm", 2) else { return };
    let vip = ip(VIP);
    // 1 s adverts: Skew_Time of priority 100 is 600 ms, Master_Down_Interval 3.6 s.
    let mut n1 = start(&lab, 1, instance(52, 150, ms(1000), &[VIP]));
    let n2 = start(&lab, 2, instance(52, 100, ms(1000), &[VIP]));
    expect_master(
        &lab,
        vip,
        1,
        Duration::from_secs(8),
        &[n1.log_path().to_path_buf(), n2.log_path().to_path_buf()],
    );
    let probe = ProbeHandle::spawn(&lab, &relevo_bin(), vip, ms(1)).unwrap();
    probe.wait_ready(Duration::from_secs(5)).unwrap();

    let t = monotonic_ns();
    let started = Instant::now();
    n1.stop_graceful()
        .expect("SIGTERM must end relevo with status 0");
    let took_over = wait_for(Duration::from_secs(3), || lab.node_has_address(2, vip));
    assert!(took_over, "{}", log_of(n2.log_path()));
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(2500),
        "takeover took {elapsed:?}: the priority-0 advert should cut it to Skew_Time (600 ms)"
    );
    assert!(
        !lab.node_has_address(1, vip),
        "the stopped node removed its VIP"
    );
    let outage = probe
        .wait_outage_after(t, ms(300), Duration::from_secs(5))
        .unwrap();
    let lost = outage.map_or(0.0, |o| o.millis());
    assert!(lost < 100.0, "graceful hand-over lost {lost} ms");
    let log = log_of(n1.log_path());
    assert!(log.contains("MASTER -> INIT (shutdown)"), "{log}");
    probe.stop().unwrap();
}

#[test]
fn graceful_hand_over_at_10ms_adverts_loses_at_most_one_probe() {
    let Some(lab) = lab("handover", 2) else {
        return;
    };
    let vip = ip(VIP);
    let mut n1 = start(&lab, 1, instance(65, 150, ms(10), &[VIP]));
    let n2 = start(&lab, 2, instance(65, 100, ms(10), &[VIP]));
    let logs = [n1.log_path().to_path_buf(), n2.log_path().to_path_buf()];
    expect_master(&lab, vip, 1, Duration::from_secs(5), &logs);
    let probe = ProbeHandle::spawn(&lab, &relevo_bin(), vip, ms(1)).unwrap();
    probe.wait_ready(Duration::from_secs(5)).unwrap();
    // SIGTERM: n1 sends priority 0, n2 takes over after Skew_Time (~6 ms) and n1 keeps
    // answering for the VIP until it hears n2. Without that hand-over the client would lose
    // the Master_Down_Interval (20-30 probes) or more.
    let result = measure_failover(
        &lab,
        &probe,
        &mut n1,
        Fault::Graceful,
        vip,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(result.masters, [2], "{result:?}");
    let lost = result.outage.map_or(0, |o| o.lost);
    assert!(
        lost <= 1,
        "a graceful hand-over at 10 ms adverts lost {lost} probes of 1 ms ({result:?})\n{}",
        log_of(n2.log_path())
    );
    probe.stop().unwrap();
}

#[test]
fn link_down_puts_the_master_in_fault_and_the_backup_takes_over() {
    let Some(lab) = lab("linkdown", 2) else {
        return;
    };
    let vip = ip(VIP);
    let events = lab.work_dir().join("n1.events");
    let mut i1 = instance(53, 150, INTERVAL, &[VIP]);
    let hook = recording_hook(&lab, "hook", &events, "");
    i1.hooks = Hooks::all(&hook);
    let n1 = start(&lab, 1, i1);
    let n2 = start(&lab, 2, instance(53, 100, INTERVAL, &[VIP]));
    let logs = [n1.log_path().to_path_buf(), n2.log_path().to_path_buf()];
    expect_master(&lab, vip, 1, Duration::from_secs(5), &logs);

    lab.set_node_link(1, false).unwrap();
    expect_master(&lab, vip, 2, Duration::from_secs(3), &logs);
    assert!(
        wait_for(Duration::from_secs(2), || log_of(&events)
            .contains("fault FAULT MASTER link-down")),
        "fault hook: {}",
        log_of(&events)
    );
    lab.set_node_link(1, true).unwrap();
    // Back up: BACKUP first, then preemption by the higher priority. The hook of that last
    // transition runs after the VIP was added: wait for its line.
    expect_master(&lab, vip, 1, Duration::from_secs(5), &logs);
    assert!(
        wait_for(Duration::from_secs(3), || log_of(&events).lines().count()
            >= 5),
        "hooks: {}",
        log_of(&events)
    );
    let text = log_of(&events);
    let lines: Vec<&str> = text.lines().collect();
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["backup", "master", "fault", "backup", "master"],
        "{text}"
    );
    assert!(lines[3].contains("link-up"), "{text}");
}

#[test]
fn preemption_on_return_only_when_configured() {
    let Some(lab) = lab("preempt", 2) else { return };
    let vip = ip(VIP);
    let mut i1 = instance(54, 150, INTERVAL, &[VIP]);
    i1.preempt = false;
    let mut n1 = start(&lab, 1, i1);
    let mut n2 = start(&lab, 2, instance(54, 100, INTERVAL, &[VIP]));
    let logs = [n1.log_path().to_path_buf(), n2.log_path().to_path_buf()];
    // Without preemption the first master stays, whoever it was; make it n2.
    n1.stop_graceful().unwrap();
    expect_master(&lab, vip, 2, Duration::from_secs(5), &logs);
    n1.restart(&lab).unwrap();
    assert!(
        holds_for(Duration::from_secs(2), || lab.masters(vip) == [2]),
        "preempt = false: n1 must not take the VIP back, holders {:?}",
        lab.masters(vip)
    );
    // n2 (preempt = true, lower priority) leaves: n1 takes over.
    n2.stop_graceful().unwrap();
    expect_master(&lab, vip, 1, Duration::from_secs(3), &logs);
    // n2 returns with a lower priority: it must not preempt a higher one.
    n2.restart(&lab).unwrap();
    assert!(holds_for(Duration::from_secs(1), || lab.masters(vip) == [1]));
}

#[test]
fn ipv6_instance_elects_fails_over_and_answers_the_client() {
    let Some(lab) = lab("ipv6", 2) else { return };
    let vip6 = "2001:db8::100/64";
    let vip = ip(vip6);
    let mut n1 = start(&lab, 1, instance(55, 150, INTERVAL, &[vip6]));
    let n2 = start(&lab, 2, instance(55, 100, INTERVAL, &[vip6]));
    let logs = [n1.log_path().to_path_buf(), n2.log_path().to_path_buf()];
    expect_master(&lab, vip, 1, Duration::from_secs(5), &logs);
    let probe = ProbeHandle::spawn(&lab, &relevo_bin(), vip, ms(1)).unwrap();
    probe.wait_ready(Duration::from_secs(5)).unwrap();
    let t = monotonic_ns();
    lab.set_node_port(1, false).unwrap();
    n1.crash().unwrap();
    assert!(wait_for(Duration::from_secs(3), || lab.node_has_address(2, vip)));
    let outage = probe
        .wait_outage_after(t, ms(300), Duration::from_secs(5))
        .unwrap()
        .expect("a crash costs something");
    assert!(outage.millis() < 1500.0, "outage {} ms", outage.millis());
    probe.stop().unwrap();
}

/// On a segment without multicast (the control in unicast_elects_where_multicast_cannot_reach
/// shows that two nodes there both become master without unicast_peers): on one plain segment
/// the multicast adverts would elect alone and this test would pass with unicast switched off.
#[test]
fn unicast_peers_elect_and_fail_over() {
    let Some(lab) = lab_with("unicast", 2, Topology::NoMulticast) else {
        return;
    };
    let vip = ip(VIP);
    let mut i1 = instance(56, 150, INTERVAL, &[VIP]);
    i1.unicast_peers = vec![lab.node_ipv4(2).to_string()];
    let mut i2 = instance(56, 100, INTERVAL, &[VIP]);
    i2.unicast_peers = vec![lab.node_ipv4(1).to_string()];
    let mut n1 = start(&lab, 1, i1);
    let n2 = start(&lab, 2, i2);
    let logs = [n1.log_path().to_path_buf(), n2.log_path().to_path_buf()];
    expect_master(&lab, vip, 1, Duration::from_secs(5), &logs);
    assert!(holds_for(ms(600), || lab.masters(vip) == [1]));
    lab.set_node_port(1, false).unwrap();
    n1.crash().unwrap();
    assert!(wait_for(Duration::from_secs(3), || lab.node_has_address(2, vip)));
}

/// Two nodes that cannot hear each other's multicast. The control first: without
/// unicast_peers both become master, which proves that multicast really does not get through
/// (so the second half can fail). Then with each other as unicast_peers they elect one master,
/// and the backup follows it.
fn unicast_elects_where_multicast_cannot_reach(tag: &str, topology: Topology) {
    let Some(lab) = lab_with(tag, 2, topology) else {
        return;
    };
    // A /32 VIP: with a /24, n1's subnet would look on-link on n2 in the routed topology.
    let vip_cidr = "192.0.2.100/32";
    let vip = ip(vip_cidr);
    let mut m1 = start(&lab, 1, instance(61, 150, INTERVAL, &[vip_cidr]));
    let mut m2 = start(&lab, 2, instance(61, 100, INTERVAL, &[vip_cidr]));
    let logs = [m1.log_path().to_path_buf(), m2.log_path().to_path_buf()];
    assert!(
        wait_for(Duration::from_secs(5), || lab.masters(vip) == [1, 2]),
        "control: multicast adverts must not get through ({topology:?}), holders {:?}",
        lab.masters(vip)
    );
    assert!(
        holds_for(ms(600), || lab.masters(vip) == [1, 2]),
        "control: both nodes stay master, holders {:?}",
        lab.masters(vip)
    );
    m1.stop_graceful().unwrap();
    m2.stop_graceful().unwrap();
    assert!(
        lab.holders(vip).is_empty(),
        "a stopped daemon removed its VIP"
    );

    let peer = |node: usize| lab.node_ipv4(node).to_string();
    let mut i1 = instance(62, 150, INTERVAL, &[vip_cidr]);
    i1.unicast_peers = vec![peer(2)];
    let mut i2 = instance(62, 100, INTERVAL, &[vip_cidr]);
    i2.unicast_peers = vec![peer(1)];
    let n1 = start(&lab, 1, i1);
    let n2 = start(&lab, 2, i2);
    expect_master(&lab, vip, 1, Duration::from_secs(5), &logs);
    assert!(
        holds_for(ms(600), || lab.masters(vip) == [1]),
        "unicast: exactly one master, holders {:?}; n2 {:?}\n{}",
        lab.masters(vip),
        n2.instance_status("web"),
        log_of(n2.log_path())
    );
    assert_eq!(web_status(&n1).state, "MASTER");
    let backup = wait_status(&n2, Duration::from_secs(2), "BACKUP following n1", |s| {
        s.state == "BACKUP" && s.master.as_deref() == Some(peer(1).as_str())
    });
    assert!(backup.counter("adverts_received") > 0, "{backup:?}");
}

#[test]
fn unicast_peers_elect_on_a_segment_without_multicast() {
    unicast_elects_where_multicast_cannot_reach("nomc", Topology::NoMulticast);
}

/// The router decrements the TTL: unicast adverts are checked against the peer list, not TTL.
#[test]
fn unicast_peers_elect_across_a_router() {
    unicast_elects_where_multicast_cannot_reach("routed", Topology::Routed);
}

/// A VRRPv2 master with a password and one unicast peer (n2), and adverts it must drop: from
/// an address not in unicast_peers, with a wrong password, with another advert interval. Each
/// is counted under its reason in `relevo status --json` and changes nothing; the same advert
/// with everything right is accepted (the control: the drops were decisions, not losses).
#[test]
fn foreign_wrong_password_and_wrong_interval_adverts_are_counted_and_ignored() {
    let Some(lab) = lab("drops", 3) else { return };
    let vip = ip(VIP);
    let mut i1 = instance(63, 150, ms(1000), &[VIP]);
    i1.version = 2;
    i1.auth_pass = Some("s3cret".into());
    i1.unicast_peers = vec![lab.node_ipv4(2).to_string()];
    // n2 and n3 run no daemon: they send hand-made adverts (priority 200 would win).
    let n1 = start(&lab, 1, i1);
    expect_master(
        &lab,
        vip,
        1,
        Duration::from_secs(8),
        &[n1.log_path().to_path_buf()],
    );
    wait_status(&n1, Duration::from_secs(2), "MASTER", |s| {
        s.state == "MASTER"
    });
    let to = lab.node_ipv4(1);
    let send = |from: usize, advert: CraftedAdvert| {
        let src = lab.node_ipv4(from);
        let sent = send_vrrp(&lab.node_ns(from), to, 255, vec![advert.bytes(src, to)]);
        assert_eq!(sent, 1, "sending from n{from}");
    };
    let right = CraftedAdvert::v2(63, 200, 1, Some("s3cret"), &[VIP]);
    let cases = [
        (
            "an advert from n3, not a unicast peer",
            3,
            right.clone(),
            "unknown_peer",
        ),
        (
            "a wrong password",
            2,
            CraftedAdvert::v2(63, 200, 1, Some("wrong"), &[VIP]),
            "auth_mismatch",
        ),
        (
            "a 2 s advert interval for a 1 s instance",
            2,
            CraftedAdvert::v2(63, 200, 2, Some("s3cret"), &[VIP]),
            "interval_mismatch",
        ),
    ];
    for (what, from, advert, counter) in cases {
        let before = web_status(&n1);
        send(from, advert);
        wait_status(
            &n1,
            Duration::from_secs(3),
            &format!("{counter} after {what}"),
            |s| s.counter(counter) > before.counter(counter),
        );
        assert!(
            holds_for(ms(300), || web_status(&n1).state == "MASTER"
                && lab.masters(vip) == [1]),
            "{what} changed n1: {:?}",
            web_status(&n1)
        );
        let after = web_status(&n1);
        assert_eq!(
            after.counter("adverts_received"),
            before.counter("adverts_received"),
            "{what} was accepted: {after:?}"
        );
    }
    send(2, right);
    let accepted = wait_status(&n1, Duration::from_secs(3), "BACKUP following n2", |s| {
        s.state == "BACKUP" && s.master.as_deref() == Some(lab.node_ipv4(2).to_string().as_str())
    });
    assert_eq!(accepted.counter("adverts_received"), 1, "{accepted:?}");
}

/// Ends each environment dump of the env hook.
const ENV_END: &str = "--relevo-env-end--";

/// The environments the env hook dumped into `file`, one map per call, in call order (none
/// while the file does not exist: `log_of` would return a note, which would count as a call).
fn env_dumps(file: &Path) -> Vec<BTreeMap<String, String>> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .split(&format!("{ENV_END}\n"))
        .filter(|record| !record.trim().is_empty())
        .map(|record| {
            record
                .lines()
                .filter_map(|line| line.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Hooks for every event dump their environment; n2 starts alone (BACKUP, then MASTER), n1
/// (higher priority) arrives and preempts, n2 steps down naming n1 as the peer, then both get
/// SIGTERM and run their stop hooks. Every RELEVO_* variable is checked on every call.
#[test]
fn hooks_get_the_relevo_environment_and_stop_runs_on_sigterm() {
    let Some(lab) = lab("hookenv", 2) else {
        return;
    };
    let vip = ip(VIP);
    let vrid = 64;
    let script = hook_script(
        &lab.hook_dir().unwrap(),
        "dump-env",
        &format!(
            "{{ env; echo {ENV_END}; }} >> \"{}/$RELEVO_NODE.env\"",
            lab.work_dir().display()
        ),
    );
    let with_hooks = |priority: u8| {
        let mut i = instance(vrid, priority, INTERVAL, &[VIP]);
        i.hooks = Hooks::all(&script);
        i
    };
    let dumps = |node: usize| lab.work_dir().join(format!("n{node}.env"));
    let wait_dumps = |node: usize, count: usize| {
        assert!(
            wait_for(Duration::from_secs(5), || env_dumps(&dumps(node)).len()
                >= count),
            "n{node}: expected {count} hook calls, got {:#?}",
            env_dumps(&dumps(node))
        );
    };
    let mut n2 = start(&lab, 2, with_hooks(100));
    expect_master(
        &lab,
        vip,
        2,
        Duration::from_secs(5),
        &[n2.log_path().to_path_buf()],
    );
    wait_dumps(2, 2);
    let mut n1 = start(&lab, 1, with_hooks(150));
    let logs = [n1.log_path().to_path_buf(), n2.log_path().to_path_buf()];
    expect_master(&lab, vip, 1, Duration::from_secs(5), &logs);
    wait_dumps(1, 2);
    wait_dumps(2, 3);
    // The backup first (no hand-over), then the master (it waits for no successor).
    n2.stop_graceful().unwrap();
    n1.stop_graceful().unwrap();
    wait_dumps(2, 4);
    wait_dumps(1, 3);

    let n1_address = lab.node_ipv4(1).to_string();
    // (event, state, previous state, reason, peer)
    let expected: [(usize, Vec<[&str; 5]>); 2] = [
        (
            1,
            vec![
                ["backup", "BACKUP", "INIT", "startup", ""],
                ["master", "MASTER", "BACKUP", "preempt", ""],
                ["stop", "INIT", "MASTER", "shutdown", ""],
            ],
        ),
        (
            2,
            vec![
                ["backup", "BACKUP", "INIT", "startup", ""],
                ["master", "MASTER", "BACKUP", "master-down", ""],
                [
                    "backup",
                    "BACKUP",
                    "MASTER",
                    "higher-priority",
                    n1_address.as_str(),
                ],
                ["stop", "INIT", "BACKUP", "shutdown", ""],
            ],
        ),
    ];
    for (node, calls) in expected {
        let seen = env_dumps(&dumps(node));
        assert_eq!(seen.len(), calls.len(), "n{node}: {seen:#?}");
        for (env, [event, state, prev, reason, peer]) in seen.iter().zip(calls) {
            let node_name = format!("n{node}");
            let vrid_text = vrid.to_string();
            let want = [
                ("RELEVO_EVENT", event),
                ("RELEVO_NAME", "web"),
                ("RELEVO_STATE", state),
                ("RELEVO_PREV_STATE", prev),
                ("RELEVO_REASON", reason),
                ("RELEVO_PEER", peer),
                ("RELEVO_NODE", node_name.as_str()),
                ("RELEVO_VIPS", VIP),
                ("RELEVO_INTERFACE", "eth0"),
                ("RELEVO_VRID", vrid_text.as_str()),
            ];
            for (key, value) in want {
                assert_eq!(
                    env.get(key).map(String::as_str),
                    Some(value),
                    "n{node} {event} hook: {key} in {env:#?}"
                );
            }
        }
    }
}

#[test]
fn a_hanging_hook_is_killed_and_never_delays_adverts() {
    let Some(lab) = lab("hookhang", 2) else {
        return;
    };
    let vip = ip(VIP);
    let events = lab.work_dir().join("n1.events");
    let mut i1 = instance(57, 150, INTERVAL, &[VIP]);
    let hang = recording_hook(&lab, "hang", &events, "sleep 60");
    i1.hooks = Hooks {
        master: Some(hang),
        ..Hooks::default()
    };
    i1.hook_timeout = Some(Duration::from_secs(1));
    let n1 = start(&lab, 1, i1);
    let n2 = start(&lab, 2, instance(57, 100, INTERVAL, &[VIP]));
    let logs = [n1.log_path().to_path_buf(), n2.log_path().to_path_buf()];
    expect_master(&lab, vip, 1, Duration::from_secs(5), &logs);
    // While the master hook sleeps, n1's adverts keep n2 in BACKUP (MDI is 360 ms).
    assert!(
        holds_for(Duration::from_millis(2500), || lab.masters(vip) == [1]),
        "{}",
        log_of(n2.log_path())
    );
    assert!(
        log_of(&events).starts_with("master MASTER BACKUP"),
        "{}",
        log_of(&events)
    );
    assert!(
        wait_for(Duration::from_secs(3), || log_of(n1.log_path())
            .contains("TimedOut")),
        "{}",
        log_of(n1.log_path())
    );
}

#[test]
fn transitions_behind_a_slow_hook_coalesce_to_the_newest_state() {
    let Some(lab) = lab("coalesce", 1) else {
        return;
    };
    let vip = ip(VIP);
    let events = lab.work_dir().join("n1.events");
    let gate = lab.work_dir().join("gate");
    // Every hook records itself and RELEVO_SKIPPED, then waits until the test opens the gate
    // (10 s at most).
    let extra = format!(
        "echo \"skipped $RELEVO_SKIPPED\" >> {events}\n\
         i=0; while [ ! -e {gate} ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done",
        events = events.display(),
        gate = gate.display()
    );
    let hook = recording_hook(&lab, "hook", &events, &extra);
    let mut i1 = instance(59, 150, INTERVAL, &[VIP]);
    i1.hooks = Hooks::all(&hook);
    let n1 = start(&lab, 1, i1);
    // Alone, n1 becomes master while its backup hook still waits: the master hook is pending.
    // The link goes down before it could start: FAULT replaces it. Only then the gate opens.
    expect_master(&lab, vip, 1, Duration::from_secs(5), &[n1.log_path()]);
    lab.set_node_link(1, false).unwrap();
    wait_status(&n1, Duration::from_secs(3), "FAULT after link down", |s| {
        s.state == "FAULT"
    });
    std::fs::write(&gate, "").unwrap();
    assert!(
        wait_for(Duration::from_secs(6), || log_of(&events)
            .contains("skipped 1")),
        "no hook ran after the backup hook: {}",
        log_of(&events)
    );
    let text = log_of(&events);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("backup BACKUP INIT"), "{text}");
    assert_eq!(lines[1], "skipped 0", "{text}");
    // The fault hook runs for the transition MASTER -> FAULT although no master hook ran.
    assert!(
        lines[2].starts_with("fault FAULT MASTER link-down"),
        "{text}"
    );
    assert_eq!(lines[3], "skipped 1", "{text}");
    // The log is written by its own thread: wait for the line.
    assert!(
        wait_for(Duration::from_secs(2), || log_of(n1.log_path())
            .contains("hook web/fault: skipped 1 transition")),
        "{}",
        log_of(n1.log_path())
    );
    let log = log_of(n1.log_path());
    assert!(!log.contains("hook web/master finished"), "{log}");
}

#[test]
fn stale_vips_of_a_crashed_run_go_and_operator_addresses_stay() {
    let Some(lab) = lab("stale", 2) else { return };
    let vip = ip(VIP);
    // n1 alone becomes master, then crashes: its VIP stays on eth0.
    let mut n1 = start(&lab, 1, instance(58, 100, INTERVAL, &[VIP]));
    expect_master(
        &lab,
        vip,
        1,
        Duration::from_secs(5),
        &[n1.log_path().to_path_buf()],
    );
    n1.crash().unwrap();
    assert!(lab.node_has_address(1, vip));
    // A better master appears; the restarted n1 starts as BACKUP and removes the leftover.
    let n2 = start(&lab, 2, instance(58, 200, INTERVAL, &[VIP]));
    assert!(wait_for(Duration::from_secs(3), || lab.node_has_address(2, vip)));
    n1.restart(&lab).unwrap();
    expect_master(
        &lab,
        vip,
        2,
        Duration::from_secs(3),
        &[n1.log_path().to_path_buf(), n2.log_path().to_path_buf()],
    );

    // An address the operator configured (here a second VIP of the instance) is never removed.
    n1.crash().unwrap();
    let own = "192.0.2.101/24";
    lab.add_node_address(1, own).unwrap();
    let n1 = start(&lab, 1, instance(58, 100, INTERVAL, &[VIP, own]));
    // Once the daemon has looked at the address (and said so), it must leave it alone.
    assert!(
        wait_for(Duration::from_secs(3), || log_of(n1.log_path())
            .contains("not added by relevo")),
        "{}",
        log_of(n1.log_path())
    );
    assert!(holds_for(ms(800), || lab.node_has_address(1, ip(own))));
}

#[test]
fn an_interface_that_appears_later_is_picked_up() {
    let Some(lab) = lab("lateif", 1) else { return };
    let vip_cidr = "198.51.100.100/24";
    let vip = ip(vip_cidr);
    let mut i1 = instance(59, 100, INTERVAL, &[vip_cidr]);
    i1.interface = "late0".into();
    let n1 = start(&lab, 1, i1);
    // No interface: FAULT, and the log says why.
    wait_status(&n1, Duration::from_secs(3), "FAULT without late0", |s| {
        s.state == "FAULT"
    });
    assert!(wait_for(Duration::from_secs(3), || log_of(n1.log_path())
        .contains("does not exist")));
    // The interface appears, down: still FAULT, and no VIP on it (now a check that can fail).
    let ns = lab.node_ns(1);
    lab.ip(
        &ns,
        &[
            "link", "add", "late0", "type", "veth", "peer", "name", "late1",
        ],
    )
    .unwrap();
    lab.ip(&ns, &["addr", "add", "198.51.100.10/24", "dev", "late0"])
        .unwrap();
    assert!(
        holds_for(ms(500), || !has_vip(&lab, "late0", vip)
            && web_status(&n1).state == "FAULT"),
        "a down interface must not get the VIP: {:?}\n{}",
        web_status(&n1),
        log_of(n1.log_path())
    );
    lab.ip(&ns, &["link", "set", "late1", "up"]).unwrap();
    lab.ip(&ns, &["link", "set", "late0", "up"]).unwrap();
    assert!(
        wait_for(Duration::from_secs(3), || has_vip(&lab, "late0", vip)),
        "{}",
        log_of(n1.log_path())
    );
    wait_status(&n1, Duration::from_secs(2), "MASTER on late0", |s| {
        s.state == "MASTER"
    });
}

/// Whether `dev` on node 1 carries `vip`; panics if `dev` does not exist (a VIP-is-absent check
/// on a missing interface could never fail).
fn has_vip(lab: &relevo::lab::netns::Lab, dev: &str, vip: IpAddr) -> bool {
    lab.ip(&lab.node_ns(1), &["-br", "addr", "show", "dev", dev])
        .unwrap_or_else(|e| panic!("{e:#}"))
        .contains(&format!("{vip}/"))
}

#[test]
fn malformed_and_foreign_adverts_are_counted_and_dropped() {
    let Some(lab) = lab("badpkt", 1) else { return };
    let vip = ip(VIP);
    let n1 = start(&lab, 1, instance(60, 100, INTERVAL, &[VIP]));
    expect_master(
        &lab,
        vip,
        1,
        Duration::from_secs(5),
        &[n1.log_path().to_path_buf()],
    );
    // From the client: higher-priority adverts, each wrong in one way, that must all be
    // dropped, else n1 steps down.
    let client = lab.client_ipv4();
    let group = Ipv4Addr::new(224, 0, 0, 18);
    let good = CraftedAdvert::v3(60, 200, 10, &[VIP]);
    let no_pseudo = CraftedAdvert {
        checksum: V3Ipv4Checksum::NoPseudoHeader,
        ..good.clone()
    };
    let v2 = CraftedAdvert::v2(60, 200, 1, None, &[VIP]);
    let mut truncated = good.bytes(client, group);
    truncated.truncate(10);
    let ns = lab.client_ns();
    let wrong_ttl = send_vrrp(&ns, group, 64, vec![good.bytes(client, group)]);
    let wrong_content = send_vrrp(
        &ns,
        group,
        255,
        vec![
            no_pseudo.bytes(client, group),
            v2.bytes(client, group),
            truncated,
        ],
    );
    assert_eq!(wrong_ttl + wrong_content, 4);
    for counter in ["bad_ttl", "bad_checksum", "version_mismatch", "bad_length"] {
        wait_status(&n1, Duration::from_secs(3), counter, |s| {
            s.counter(counter) >= 1
        });
    }
    assert!(
        holds_for(ms(500), || lab.masters(vip) == [1]),
        "n1 was displaced by a bad advert"
    );
    let status = web_status(&n1);
    assert_eq!(status.counter("adverts_received"), 0, "{status:?}");
}
