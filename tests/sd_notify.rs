//! A real `relevo run` in a namespace lab (root; fails under CI=true without it) under a fake
//! systemd: `NOTIFY_SOCKET` names a Unix datagram socket this test owns and `WATCHDOG_USEC` is
//! set. READY=1 must come once the control socket exists, WATCHDOG=1 again and again at half
//! the watchdog period, and STOPPING=1 on SIGTERM before a clean exit.
mod netns_support;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use netns_support::*;
use nix::sys::signal::Signal;
use relevo::lab::relevo_node::RelevoNode;

/// 200 ms: the daemon must send WATCHDOG=1 every 100 ms.
const WATCHDOG_USEC: u64 = 200_000;

/// The next notification, or `None` after `timeout`.
fn next(socket: &UnixDatagram, timeout: Duration) -> Option<(Instant, String)> {
    socket.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).ok()?;
    Some((
        Instant::now(),
        String::from_utf8_lossy(&buf[..n]).into_owned(),
    ))
}

#[test]
fn run_notifies_systemd_ready_watchdog_and_stopping() {
    let Some(lab) = lab("sd_notify", 1) else {
        return;
    };
    let notify_path = lab.work_dir().join("notify.sock");
    let notifications = UnixDatagram::bind(&notify_path).unwrap();
    let control = lab.work_dir().join("relevo.sock");
    let mut config =
        RelevoNode::config_for(&lab, 1, instance(71, 100, ms(100), &["192.0.2.100/24"]));
    config.control_socket = Some(control.clone());
    let config_path = lab.work_dir().join("n1.toml");
    std::fs::write(&config_path, config.to_toml()).unwrap();
    let log = lab.work_dir().join("n1.log");
    let notify_env = format!("NOTIFY_SOCKET={}", notify_path.display());
    let watchdog_env = format!("WATCHDOG_USEC={WATCHDOG_USEC}");
    let bin = relevo_bin();
    let argv = [
        "env",
        notify_env.as_str(),
        watchdog_env.as_str(),
        bin.to_str().unwrap(),
        "run",
        "-c",
        config_path.to_str().unwrap(),
    ];
    let mut daemon = lab.spawn(&lab.node_ns(1), &argv, &log).unwrap();

    let (_, first) = next(&notifications, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no notification at all: {}", log_of(&log)));
    assert_eq!(first, "READY=1", "the first notification");
    assert!(
        control.exists(),
        "READY=1 came before the control socket existed"
    );

    // WATCHDOG=1 from the loop, repeatedly, about every 100 ms.
    let mut pets = Vec::new();
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        match next(&notifications, Duration::from_millis(500)) {
            Some((at, text)) if text == "WATCHDOG=1" => pets.push(at),
            Some((_, text)) => panic!("unexpected notification {text:?}"),
            None => break,
        }
    }
    assert!(
        pets.len() >= 6,
        "{} WATCHDOG=1 in a second: {}",
        pets.len(),
        log_of(&log)
    );
    let longest = pets
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(
        longest < Duration::from_millis(WATCHDOG_USEC / 1000),
        "a gap of {longest:?} between two WATCHDOG=1 (the watchdog would fire)"
    );

    // SIGHUP reloads: RELOADING=1 (with MONOTONIC_USEC, as systemd requires), then READY=1.
    daemon.signal(Signal::SIGHUP).unwrap();
    let mut reload = (0..50).filter_map(|_| {
        next(&notifications, Duration::from_secs(2))
            .map(|(_, text)| text)
            .filter(|text| text != "WATCHDOG=1")
    });
    let reloading = reload.next().unwrap_or_default();
    assert!(
        reloading.starts_with("RELOADING=1") && reloading.contains("MONOTONIC_USEC="),
        "{reloading:?}: {}",
        log_of(&log)
    );
    assert_eq!(
        reload.next().as_deref(),
        Some("READY=1"),
        "{}",
        log_of(&log)
    );
    drop(reload);

    daemon.signal(Signal::SIGTERM).unwrap();
    let stopping = (0..50).find_map(|_| {
        next(&notifications, Duration::from_secs(2))
            .map(|(_, text)| text)
            .filter(|text| text != "WATCHDOG=1")
    });
    assert_eq!(stopping.as_deref(), Some("STOPPING=1"), "{}", log_of(&log));
    let status = daemon.wait_exit(Duration::from_secs(10)).unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}: {}",
        log_of(&log)
    );
}
