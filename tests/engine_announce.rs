//! Deterministic tests of the MASTER announcement schedule (bursts, second burst, refresh,
//! stop, late polling), with explicit instants.
use std::time::{Duration, Instant};

use relevo::engine::announce::{AnnounceParams, AnnounceSchedule};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Drives the schedule deadline by deadline until `end`; returns (offset from t0, count) pairs.
fn drive(schedule: &mut AnnounceSchedule, t0: Instant, end: Instant) -> Vec<(Duration, u32)> {
    let mut fired = Vec::new();
    while let Some(deadline) = schedule.next_deadline() {
        if deadline > end {
            break;
        }
        let due = schedule.poll(deadline);
        assert!(due > 0, "a deadline with nothing due");
        fired.push((deadline - t0, due));
        assert!(schedule.next_deadline().is_none_or(|d| d > deadline));
    }
    fired
}

fn offsets(list: &[u64]) -> Vec<(Duration, u32)> {
    list.iter().map(|&n| (ms(n), 1)).collect()
}

#[test]
fn idle_schedule_has_nothing_due() {
    let t0 = Instant::now();
    let mut schedule = AnnounceSchedule::new(AnnounceParams::default());
    assert_eq!(schedule.next_deadline(), None);
    assert!(!schedule.is_active());
    assert_eq!(schedule.poll(t0 + ms(100_000)), 0);
}

#[test]
fn single_burst_is_spaced_by_interval() {
    let t0 = Instant::now();
    let mut schedule = AnnounceSchedule::new(AnnounceParams {
        repeat: 3,
        interval: ms(200),
        delay: Duration::ZERO,
        refresh: None,
    });
    schedule.start(t0);
    assert_eq!(schedule.next_deadline(), Some(t0));
    let fired = drive(&mut schedule, t0, t0 + ms(60_000));
    assert_eq!(fired, offsets(&[0, 200, 400]));
    assert!(!schedule.is_active());
}

#[test]
fn zero_interval_sends_the_whole_burst_at_once() {
    let t0 = Instant::now();
    let mut schedule = AnnounceSchedule::new(AnnounceParams::default());
    schedule.start(t0);
    assert_eq!(schedule.poll(t0), 5);
    // keepalived default: a second burst of 5 after 5 s, then nothing.
    assert_eq!(schedule.next_deadline(), Some(t0 + ms(5000)));
    assert_eq!(schedule.poll(t0 + ms(5000)), 5);
    assert_eq!(schedule.next_deadline(), None);
}

#[test]
fn second_burst_after_delay_then_refresh_after_last_burst_slot() {
    let t0 = Instant::now();
    let mut schedule = AnnounceSchedule::new(AnnounceParams {
        repeat: 2,
        interval: ms(100),
        delay: ms(1000),
        refresh: Some(ms(3000)),
    });
    schedule.start(t0);
    let fired = drive(&mut schedule, t0, t0 + ms(10_000));
    // Bursts: 0, 100 and 1000, 1100; refresh every 3 s from the last slot (1100).
    assert_eq!(fired, offsets(&[0, 100, 1000, 1100, 4100, 7100]));
    assert_eq!(schedule.next_deadline(), Some(t0 + ms(10_100)));
}

#[test]
fn overlapping_bursts_count_every_slot() {
    let t0 = Instant::now();
    let mut schedule = AnnounceSchedule::new(AnnounceParams {
        repeat: 3,
        interval: ms(100),
        delay: ms(100),
        refresh: None,
    });
    schedule.start(t0);
    let fired = drive(&mut schedule, t0, t0 + ms(10_000));
    let expected = vec![(ms(0), 1), (ms(100), 2), (ms(200), 2), (ms(300), 1)];
    assert_eq!(fired, expected);
}

#[test]
fn late_poll_fires_burst_slots_but_refresh_only_once() {
    let t0 = Instant::now();
    let mut schedule = AnnounceSchedule::new(AnnounceParams {
        repeat: 3,
        interval: ms(100),
        delay: Duration::ZERO,
        refresh: Some(ms(1000)),
    });
    schedule.start(t0);
    // Polled once, 10.25 s late: the 3 burst slots plus one refresh, not ten.
    let late = t0 + ms(10_250);
    assert_eq!(schedule.poll(late), 4);
    assert_eq!(schedule.next_deadline(), Some(late + ms(1000)));
    // On time again: the refresh keeps its cadence from the previous slot.
    assert_eq!(schedule.poll(late + ms(1100)), 1);
    assert_eq!(schedule.next_deadline(), Some(late + ms(2000)));
}

#[test]
fn stop_cancels_and_start_restarts() {
    let t0 = Instant::now();
    let mut schedule = AnnounceSchedule::new(AnnounceParams {
        repeat: 2,
        interval: ms(100),
        delay: ms(1000),
        refresh: Some(ms(500)),
    });
    schedule.start(t0);
    assert_eq!(schedule.poll(t0), 1);
    schedule.stop();
    assert_eq!(schedule.next_deadline(), None);
    assert_eq!(schedule.poll(t0 + ms(5000)), 0);
    let t1 = t0 + ms(7000);
    schedule.start(t1);
    let fired = drive(&mut schedule, t1, t1 + ms(2000));
    assert_eq!(fired, offsets(&[0, 100, 1000, 1100, 1600]));
}

#[test]
fn degenerate_params_are_normalised() {
    let t0 = Instant::now();
    let mut schedule = AnnounceSchedule::new(AnnounceParams {
        repeat: 0,
        interval: Duration::ZERO,
        delay: Duration::MAX,
        refresh: Some(Duration::ZERO),
    });
    assert_eq!(schedule.params().repeat, 1);
    assert_eq!(schedule.params().refresh, None);
    schedule.start(t0);
    assert_eq!(schedule.poll(t0), 1);
    // The second burst would be past the end of time: it never comes.
    assert_eq!(schedule.next_deadline(), None);
}
