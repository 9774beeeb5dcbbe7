//! Tracks, sans-I/O: rise/fall, weights, files, the effective priority, and what the VRRP
//! state machine does with a changed priority (`Input::SetPriority`) or a failing weight-0
//! track (`Blocker::TrackFailed`).
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use relevo::engine::announce::AnnounceParams;
use relevo::engine::track::{Change, Check, Effective, TrackParams, TrackState, Tracks};
use relevo::engine::vrrp::{Action, AdvertIn, Blocker, Input, Instance, Params, Reason, State};
use relevo::wire::VrrpVersion;

fn track(check: Check, weight: i32, rise: u32, fall: u32) -> TrackParams {
    TrackParams {
        name: "t".into(),
        check,
        interval: Duration::from_secs(1),
        rise,
        fall,
        weight,
    }
}

fn one(params: TrackParams) -> Tracks {
    Tracks::new(vec![params], Instant::now())
}

fn eff(priority: u8, fault: bool) -> Effective {
    Effective { priority, fault }
}

#[test]
fn a_script_falls_after_fall_failures_and_rises_after_rise_successes() {
    let now = Instant::now();
    let mut tracks = one(track(Check::Script, -60, 2, 3));
    assert_eq!(tracks.state(0), TrackState::Pending);
    assert_eq!(
        tracks.effective(150, &[0]),
        eff(150, false),
        "pending changes nothing"
    );
    // The first result is taken at once.
    let first = tracks.script_result(0, true, now);
    assert_eq!(
        first,
        Some(Change {
            track: 0,
            from: TrackState::Pending,
            to: TrackState::Up,
            count: 1
        })
    );
    assert_eq!(tracks.script_result(0, false, now), None);
    assert_eq!(tracks.script_result(0, false, now), None);
    assert_eq!(tracks.effective(150, &[0]), eff(150, false));
    let down = tracks.script_result(0, false, now).unwrap();
    assert_eq!((down.to, down.count), (TrackState::Down, 3));
    assert_eq!(tracks.effective(150, &[0]), eff(90, false));
    // One success, then a failure: the streak starts again.
    assert_eq!(tracks.script_result(0, true, now), None);
    assert_eq!(tracks.script_result(0, false, now), None);
    assert_eq!(tracks.script_result(0, true, now), None);
    let up = tracks.script_result(0, true, now).unwrap();
    assert_eq!((up.to, up.count), (TrackState::Up, 2));
    assert_eq!(tracks.effective(150, &[0]), eff(150, false));
}

#[test]
fn a_success_interrupts_a_run_of_failures() {
    let now = Instant::now();
    let mut tracks = one(track(Check::Script, -10, 1, 2));
    tracks.script_result(0, true, now);
    assert_eq!(tracks.script_result(0, false, now), None);
    assert_eq!(tracks.script_result(0, true, now), None);
    assert_eq!(tracks.script_result(0, false, now), None);
    assert!(tracks.script_result(0, false, now).is_some());
}

#[test]
fn weights_zero_negative_positive() {
    let now = Instant::now();
    let mut tracks = Tracks::new(
        vec![
            track(Check::Script, 0, 1, 1),
            track(Check::Interface, -20, 1, 1),
            track(Check::Interface, 15, 1, 1),
        ],
        now,
    );
    tracks.script_result(0, true, now);
    tracks.interface(1, true);
    tracks.interface(2, true);
    assert_eq!(
        tracks.effective(100, &[0, 1, 2]),
        eff(115, false),
        "positive applies when up"
    );
    tracks.interface(2, false);
    tracks.interface(1, false);
    assert_eq!(
        tracks.effective(100, &[0, 1, 2]),
        eff(80, false),
        "negative applies when down"
    );
    assert!(tracks.failing(1) && tracks.failing(2));
    tracks.script_result(0, false, now);
    assert_eq!(
        tracks.effective(100, &[0, 1, 2]),
        eff(80, true),
        "weight 0 down is a fault"
    );
    assert_eq!(
        tracks.effective(100, &[2]),
        eff(100, false),
        "only the named tracks count"
    );
}

#[test]
fn files_add_their_value_times_the_weight() {
    let mut tracks = Tracks::new(
        vec![
            track(Check::File, 1, 1, 1),
            track(Check::File, -2, 1, 1),
            track(Check::File, 0, 1, 1),
        ],
        Instant::now(),
    );
    tracks.file_value(0, 7);
    tracks.file_value(1, 5);
    tracks.file_value(2, 0);
    assert_eq!(tracks.delta(0), 7);
    assert_eq!(tracks.delta(1), -10);
    assert_eq!(tracks.effective(100, &[0, 1, 2]), eff(97, false));
    assert!(!tracks.failing(0) && tracks.failing(1) && !tracks.failing(2));
    assert!(tracks.file_value(2, 3).is_some());
    assert_eq!(
        tracks.effective(100, &[2]),
        eff(100, true),
        "weight 0: non-zero is a fault"
    );
    tracks.file_value(0, i64::MAX);
    assert_eq!(tracks.delta(0), 254, "bounded");
}

#[test]
fn the_effective_priority_stays_within_1_to_254_and_the_owner_keeps_255() {
    let now = Instant::now();
    let mut tracks = Tracks::new(
        vec![
            track(Check::Interface, -200, 1, 1),
            track(Check::Interface, 200, 1, 1),
        ],
        now,
    );
    tracks.interface(0, false);
    tracks.interface(1, true);
    assert_eq!(tracks.effective(100, &[0]), eff(1, false));
    assert_eq!(tracks.effective(100, &[1]), eff(254, false));
    assert_eq!(tracks.effective(255, &[1]), eff(255, false));
    assert_eq!(tracks.effective(255, &[0]), eff(55, false));
    assert_eq!(tracks.effective(255, &[]), eff(255, false));
}

#[test]
fn checks_are_due_every_interval_and_a_script_never_twice_at_once() {
    let t0 = Instant::now();
    let mut tracks = Tracks::new(
        vec![
            track(Check::Script, -1, 1, 1),
            track(Check::File, 1, 1, 1),
            track(Check::Interface, 0, 1, 1),
        ],
        t0,
    );
    let mut due = Vec::new();
    tracks.due(t0, &mut due);
    assert_eq!(due, [0, 1], "interfaces are never polled");
    due.clear();
    let later = t0 + Duration::from_millis(2500);
    tracks.due(later, &mut due);
    assert_eq!(due, [1], "the script still runs");
    tracks.script_result(0, true, later);
    assert_eq!(tracks.next_deadline(), Some(later), "overdue: at once");
    due.clear();
    tracks.due(later, &mut due);
    assert_eq!(due, [0]);
}

// ---- the VRRP state machine ----

fn params(priority: u8) -> Params {
    Params {
        version: VrrpVersion::V3,
        vrid: 51,
        priority,
        advert_interval_cs: 100,
        preempt: true,
        preempt_delay: Duration::ZERO,
        announce: AnnounceParams {
            repeat: 1,
            interval: Duration::ZERO,
            delay: Duration::ZERO,
            refresh: None,
        },
        priority_step: Duration::ZERO,
    }
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn advert(src: IpAddr, priority: u8) -> Input {
    Input::Advert(AdvertIn {
        src,
        priority,
        interval_cs: 100,
    })
}

fn feed(instance: &mut Instance, input: Input, now: Instant) -> Vec<Action> {
    let mut out = Vec::new();
    instance.handle(input, now, &mut out);
    out
}

fn tick(instance: &mut Instance, now: Instant) -> Vec<Action> {
    let mut out = Vec::new();
    instance.handle_timeout(now, &mut out);
    out
}

fn started(priority: u8, t0: Instant) -> Instance {
    let mut instance = Instance::new(params(priority));
    feed(&mut instance, Input::PrimaryAddress(Some(v4(10))), t0);
    feed(&mut instance, Input::Startup { link_up: true }, t0);
    instance
}

#[test]
fn a_master_whose_priority_drops_advertises_it_and_steps_down_to_a_higher_advert() {
    let t0 = Instant::now();
    let mut master = started(150, t0);
    let t1 = t0 + master.master_down_interval();
    tick(&mut master, t1);
    assert_eq!(master.state(), State::Master);
    let out = feed(&mut master, Input::SetPriority(90), t1);
    assert!(out.is_empty(), "no transition at once: {out:?}");
    assert_eq!(master.state(), State::Master);
    let t2 = t1 + Duration::from_secs(1);
    let out = tick(&mut master, t2);
    assert!(
        out.contains(&Action::SendAdvert { priority: 90 }),
        "{out:?}"
    );
    // The backup (100) preempts; its advert is now the higher one.
    let out = feed(&mut master, advert(v4(20), 100), t2);
    assert!(out.contains(&Action::RemoveVips), "{out:?}");
    assert_eq!(master.state(), State::Backup);
    assert_eq!(
        master.last_reason(),
        Some(Reason::HigherPriority {
            peer: v4(20),
            priority: 100
        })
    );
}

#[test]
fn a_backup_whose_priority_rises_above_the_master_preempts() {
    let t0 = Instant::now();
    let mut backup = started(100, t0);
    feed(&mut backup, advert(v4(20), 120), t0);
    assert_eq!(backup.state(), State::Backup);
    feed(&mut backup, Input::SetPriority(130), t0);
    let t1 = t0 + Duration::from_secs(1);
    feed(&mut backup, advert(v4(20), 120), t1);
    let down = backup.master_down_interval();
    let out = tick(&mut backup, t1 + down);
    assert!(
        out.contains(&Action::SendAdvert { priority: 130 }),
        "{out:?}"
    );
    assert_eq!(backup.state(), State::Master);
    assert_eq!(backup.last_reason(), Some(Reason::Preempt));
}

#[test]
fn without_preempt_a_risen_backup_keeps_following() {
    let t0 = Instant::now();
    let mut backup = Instance::new(Params {
        preempt: false,
        ..params(100)
    });
    feed(&mut backup, Input::Startup { link_up: true }, t0);
    feed(&mut backup, Input::SetPriority(200), t0);
    for n in 1..10 {
        let at = t0 + Duration::from_secs(n);
        tick(&mut backup, at);
        feed(&mut backup, advert(v4(20), 120), at);
    }
    assert_eq!(backup.state(), State::Backup);
}

#[test]
fn a_failing_weight_zero_track_is_a_fault_until_it_recovers() {
    let t0 = Instant::now();
    let mut instance = started(150, t0);
    let t1 = t0 + instance.master_down_interval();
    tick(&mut instance, t1);
    let out = feed(
        &mut instance,
        Input::CannotAdvertise(Blocker::TrackFailed),
        t1,
    );
    assert!(out.contains(&Action::RemoveVips));
    assert_eq!(instance.state(), State::Fault);
    assert_eq!(instance.last_reason(), Some(Reason::TrackFailed));
    assert_eq!(Reason::TrackFailed.code(), "track-failed");
    feed(&mut instance, Input::CanAdvertise(Blocker::TrackFailed), t1);
    assert_eq!(instance.state(), State::Backup);
    // Blocked before the start: it starts in FAULT.
    let mut blocked = Instance::new(params(150));
    feed(
        &mut blocked,
        Input::CannotAdvertise(Blocker::TrackFailed),
        t0,
    );
    feed(&mut blocked, Input::Startup { link_up: true }, t0);
    assert_eq!(blocked.state(), State::Fault);
}
