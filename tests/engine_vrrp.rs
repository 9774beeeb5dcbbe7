//! Deterministic tests of the VRRP instance state machine: one test per rule of RFC 5798 §6 /
//! RFC 3768 §6 (plus Relevo's documented choices), with explicit instants, and a long seeded
//! random run checking the invariants.
mod seeded_rng;
use seeded_rng::Rng;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use relevo::engine::announce::AnnounceParams;
use relevo::engine::vrrp::{
    Action, AdvertIn, Blocker, Input, Instance, Params, Reason, State, DEFAULT_PRIORITY_STEP,
    SEND_RETRY_MIN,
};
use relevo::wire::VrrpVersion;

const ONE_ANNOUNCE: AnnounceParams = AnnounceParams {
    repeat: 1,
    interval: Duration::ZERO,
    delay: Duration::ZERO,
    refresh: None,
};

fn params(priority: u8, advert_interval_cs: u16) -> Params {
    Params {
        version: VrrpVersion::V3,
        vrid: 51,
        priority,
        advert_interval_cs,
        preempt: true,
        preempt_delay: Duration::ZERO,
        announce: ONE_ANNOUNCE,
        priority_step: Duration::ZERO,
    }
}

fn v2(priority: u8, advert_interval_cs: u16) -> Params {
    Params {
        version: VrrpVersion::V2,
        ..params(priority, advert_interval_cs)
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn advert(src: IpAddr, priority: u8, interval_cs: u16) -> Input {
    Input::Advert(AdvertIn {
        src,
        priority,
        interval_cs,
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

/// No step down in `out`: neither VIP removal nor a transition.
fn keeps_master(out: &[Action]) -> bool {
    !out.iter()
        .any(|a| matches!(a, Action::RemoveVips | Action::Transition { .. }))
}

fn transition(from: State, to: State, reason: Reason) -> Action {
    Action::Transition { from, to, reason }
}

/// A started non-owner in BACKUP at `t0`, own primary address 192.0.2.10.
fn backup(p: Params, t0: Instant) -> Instance {
    let mut instance = Instance::new(p);
    feed(&mut instance, Input::PrimaryAddress(Some(v4(10))), t0);
    feed(&mut instance, Input::Startup { link_up: true }, t0);
    assert_eq!(instance.state(), State::Backup);
    instance
}

/// A non-owner that became MASTER through its Master_Down timer; returns the instant it did.
fn master(p: Params, t0: Instant) -> (Instance, Instant) {
    let mut instance = backup(p, t0);
    let at = t0 + instance.master_down_interval();
    tick(&mut instance, at);
    assert_eq!(instance.state(), State::Master);
    (instance, at)
}

#[test]
fn v3_timers_in_integer_centiseconds() {
    let cases = [
        // (priority, interval cs, skew, master down interval)
        (100, 100, ms(600), ms(3600)),
        (100, 1, ms(0), ms(30)),
        (254, 1, ms(0), ms(30)),
        (1, 100, ms(990), ms(3990)),
        (255, 100, ms(0), ms(3000)),
        (200, 4095, ms(8950), ms(122_850 + 8950)),
    ];
    for (priority, interval, skew, mdi) in cases {
        let instance = Instance::new(params(priority, interval));
        assert_eq!(instance.skew_time(), skew, "skew p{priority} @{interval}cs");
        assert_eq!(instance.master_down_interval(), mdi, "MDI p{priority}");
        assert_eq!(instance.master_adver_interval_cs(), interval);
    }
}

#[test]
fn v2_skew_is_fractional_seconds_exact_to_the_microsecond() {
    let cases = [
        // (priority, skew µs): (256 - p) * 1_000_000 / 256
        (100, 609_375),
        (1, 996_093),
        (254, 7_812),
        (255, 3_906),
    ];
    for (priority, skew_us) in cases {
        let instance = Instance::new(v2(priority, 100));
        let skew = Duration::from_micros(skew_us);
        assert_eq!(instance.skew_time(), skew, "v2 skew p{priority}");
        assert_eq!(instance.master_down_interval(), ms(3000) + skew);
    }
    // 3 s interval: MDI = 9 s + skew.
    let instance = Instance::new(v2(100, 300));
    assert_eq!(
        instance.master_down_interval(),
        ms(9000) + Duration::from_micros(609_375)
    );
}

#[test]
fn v2_backup_does_not_learn_the_master_interval() {
    let t0 = Instant::now();
    let mut instance = backup(v2(100, 100), t0);
    let t1 = t0 + ms(500);
    feed(&mut instance, advert(v4(20), 200, 300), t1);
    assert_eq!(instance.master_adver_interval_cs(), 100);
    let mdi = ms(3000) + Duration::from_micros(609_375);
    assert_eq!(instance.next_deadline(), Some(t1 + mdi));
}

#[test]
fn v3_backup_learns_the_master_interval_and_recomputes_timers() {
    let t0 = Instant::now();
    let mut instance = backup(params(100, 100), t0);
    let t1 = t0 + ms(500);
    feed(&mut instance, advert(v4(20), 200, 50), t1);
    assert_eq!(instance.master_adver_interval_cs(), 50);
    // skew = 156 * 50 / 256 = 30 cs; MDI = 150 + 30 cs.
    assert_eq!(instance.skew_time(), ms(300));
    assert_eq!(instance.master_down_interval(), ms(1800));
    assert_eq!(instance.next_deadline(), Some(t1 + ms(1800)));
    assert_eq!(instance.current_master(), Some((v4(20), 200)));
}

#[test]
fn owner_startup_goes_master_with_advert_vips_and_announce() {
    let t0 = Instant::now();
    let mut instance = Instance::new(params(255, 100));
    let out = feed(&mut instance, Input::Startup { link_up: true }, t0);
    assert_eq!(
        out,
        vec![
            Action::SendAdvert { priority: 255 },
            Action::AddVips,
            Action::Announce,
            transition(State::Initialize, State::Master, Reason::AddressOwner),
        ]
    );
    assert_eq!(instance.next_deadline(), Some(t0 + ms(1000)));
}

#[test]
fn non_owner_startup_goes_backup_with_master_down_timer() {
    let t0 = Instant::now();
    let mut instance = Instance::new(params(100, 100));
    let out = feed(&mut instance, Input::Startup { link_up: true }, t0);
    assert_eq!(
        out,
        vec![transition(
            State::Initialize,
            State::Backup,
            Reason::Startup
        )]
    );
    assert_eq!(instance.master_adver_interval_cs(), 100);
    assert_eq!(instance.next_deadline(), Some(t0 + ms(3600)));
}

#[test]
fn startup_with_link_down_goes_fault_without_timers() {
    let t0 = Instant::now();
    let mut instance = Instance::new(params(255, 100));
    let out = feed(&mut instance, Input::Startup { link_up: false }, t0);
    assert_eq!(
        out,
        vec![transition(
            State::Initialize,
            State::Fault,
            Reason::LinkDown
        )]
    );
    assert_eq!(instance.next_deadline(), None);
}

#[test]
fn startup_twice_is_ignored() {
    let t0 = Instant::now();
    let mut instance = backup(params(100, 100), t0);
    let out = feed(&mut instance, Input::Startup { link_up: true }, t0 + ms(10));
    assert!(out.is_empty());
    assert_eq!(instance.next_deadline(), Some(t0 + ms(3600)));
}

#[test]
fn backup_takes_over_when_master_down_timer_fires() {
    let t0 = Instant::now();
    let mut instance = backup(params(100, 100), t0);
    assert!(tick(&mut instance, t0 + ms(3599)).is_empty());
    assert_eq!(instance.state(), State::Backup);
    let t1 = t0 + ms(3600);
    assert_eq!(
        tick(&mut instance, t1),
        vec![
            Action::SendAdvert { priority: 100 },
            Action::AddVips,
            Action::Announce,
            transition(State::Backup, State::Master, Reason::MasterDown),
        ]
    );
    assert_eq!(instance.next_deadline(), Some(t1 + ms(1000)));
}

#[test]
fn backup_accepting_adverts_keeps_resetting_the_timer() {
    let t0 = Instant::now();
    let mut instance = backup(params(100, 100), t0);
    for k in 1..=10u64 {
        let t = t0 + ms(1000 * k);
        assert!(tick(&mut instance, t).is_empty());
        assert!(feed(&mut instance, advert(v4(20), 150, 100), t).is_empty());
        assert_eq!(instance.next_deadline(), Some(t + ms(3600)));
    }
    assert_eq!(instance.state(), State::Backup);
}

#[test]
fn backup_on_priority_zero_waits_only_skew_time() {
    let t0 = Instant::now();
    let mut instance = backup(params(100, 100), t0);
    let t1 = t0 + ms(1000);
    feed(&mut instance, advert(v4(20), 150, 100), t1);
    let t2 = t1 + ms(400);
    assert!(feed(&mut instance, advert(v4(20), 0, 100), t2).is_empty());
    assert_eq!(instance.next_deadline(), Some(t2 + ms(600)));
    let out = tick(&mut instance, t2 + ms(600));
    assert_eq!(
        out.last(),
        Some(&transition(
            State::Backup,
            State::Master,
            Reason::PriorityZeroFromMaster
        ))
    );
    // The resigning master still answers until it hears us: clients are re-pointed before
    // our advert lets it go.
    assert_eq!(
        &out[..3],
        &[
            Action::AddVips,
            Action::Announce,
            Action::SendAdvert { priority: 100 }
        ]
    );
}

#[test]
fn backup_without_preempt_accepts_lower_priority_master() {
    let t0 = Instant::now();
    let mut p = params(100, 100);
    p.preempt = false;
    let mut instance = backup(p, t0);
    let t1 = t0 + ms(3000);
    feed(&mut instance, advert(v4(20), 50, 100), t1);
    assert_eq!(instance.next_deadline(), Some(t1 + ms(3600)));
    assert_eq!(instance.current_master(), Some((v4(20), 50)));
}

#[test]
fn backup_with_preempt_discards_lower_priority_and_takes_over_at_expiry() {
    let t0 = Instant::now();
    let mut instance = backup(params(100, 100), t0);
    // Lower-priority master adverts do not reset the timer started at t0.
    for k in 1..=3u64 {
        let t = t0 + ms(1000 * k);
        assert!(feed(&mut instance, advert(v4(20), 50, 100), t).is_empty());
        assert_eq!(instance.next_deadline(), Some(t0 + ms(3600)));
    }
    let out = tick(&mut instance, t0 + ms(3600));
    // The lower master is alive: clients are re-pointed (VIPs, announcement) before the
    // advert that makes it drop its VIPs.
    assert_eq!(
        out,
        vec![
            Action::AddVips,
            Action::Announce,
            Action::SendAdvert { priority: 100 },
            transition(State::Backup, State::Master, Reason::Preempt),
        ]
    );
}

#[test]
fn preempt_delay_accepts_lower_priority_until_it_ends() {
    let t0 = Instant::now();
    let mut p = params(100, 100);
    p.preempt_delay = ms(10_000);
    let mut instance = backup(p, t0);
    // Inside the hold-off a lower-priority advert is accepted: timer reset.
    let t_in = t0 + ms(9000);
    feed(&mut instance, advert(v4(20), 50, 100), t_in);
    assert_eq!(instance.next_deadline(), Some(t_in + ms(3600)));
    // After it, lower-priority adverts are discarded; we take over at the last reset + MDI.
    feed(&mut instance, advert(v4(20), 50, 100), t0 + ms(10_000));
    feed(&mut instance, advert(v4(20), 50, 100), t0 + ms(11_000));
    assert_eq!(instance.next_deadline(), Some(t_in + ms(3600)));
    assert!(tick(&mut instance, t_in + ms(3599)).is_empty());
    let out = tick(&mut instance, t_in + ms(3600));
    assert_eq!(
        out.last(),
        Some(&transition(State::Backup, State::Master, Reason::Preempt))
    );
}

#[test]
fn preempt_delay_does_not_apply_after_stepping_down_from_master() {
    let t0 = Instant::now();
    let mut p = params(100, 100);
    p.preempt_delay = ms(60_000);
    let (mut instance, t1) = master(p, t0);
    let t2 = t1 + ms(100);
    feed(&mut instance, advert(v4(20), 200, 100), t2);
    assert_eq!(instance.state(), State::Backup);
    // A lower-priority advert now is discarded even though t2 < t0 + preempt_delay.
    feed(&mut instance, advert(v4(30), 50, 100), t2 + ms(1000));
    assert_eq!(instance.next_deadline(), Some(t2 + ms(3600)));
}

#[test]
fn master_sends_adverts_on_a_drift_free_cadence() {
    let t0 = Instant::now();
    let (mut instance, t1) = master(params(100, 100), t0);
    // Served 200 ms late: the next deadline stays on the t1 + k·interval grid.
    let out = tick(&mut instance, t1 + ms(1200));
    assert_eq!(out, vec![Action::SendAdvert { priority: 100 }]);
    assert_eq!(instance.next_deadline(), Some(t1 + ms(2000)));
    // More than an interval behind: one advert, then restart from now.
    let late = t1 + ms(4500);
    let out = tick(&mut instance, late);
    assert_eq!(out, vec![Action::SendAdvert { priority: 100 }]);
    assert_eq!(instance.next_deadline(), Some(late + ms(1000)));
}

#[test]
fn master_answers_priority_zero_with_an_immediate_advert_and_a_fresh_announcement() {
    let t0 = Instant::now();
    let (mut instance, t1) = master(params(100, 100), t0);
    let t2 = t1 + ms(300);
    let out = feed(&mut instance, advert(v4(20), 0, 100), t2);
    // RFC 5798: the advert. Relevo: the resigning router was a competing master whose
    // clients come back with the announcement.
    assert_eq!(
        out,
        vec![Action::SendAdvert { priority: 100 }, Action::Announce]
    );
    assert_eq!(instance.next_deadline(), Some(t2 + ms(1000)));
    assert_eq!(instance.state(), State::Master);
    // A second resignation within Master_Down_Interval: the advert only (no ARP storm).
    let out = feed(&mut instance, advert(v4(21), 0, 100), t2 + ms(10));
    assert_eq!(out, vec![Action::SendAdvert { priority: 100 }]);
}

#[test]
fn a_backup_ignores_the_resignation_of_a_router_it_does_not_follow() {
    let t0 = Instant::now();
    let mut instance = backup(params(100, 100), t0);
    feed(&mut instance, advert(v4(20), 150, 100), t0 + ms(10));
    let before = instance.next_deadline();
    // A competing master (192.0.2.30) steps down; the master followed (.20) is alive.
    assert!(feed(&mut instance, advert(v4(30), 0, 100), t0 + ms(20)).is_empty());
    assert_eq!(instance.next_deadline(), before);
    // The followed master's own resignation still counts (graceful stop).
    feed(&mut instance, advert(v4(20), 0, 100), t0 + ms(30));
    assert_eq!(
        instance.next_deadline(),
        Some(t0 + ms(30) + instance.skew_time())
    );
}

#[test]
fn master_steps_down_for_higher_priority_and_learns_its_interval() {
    let t0 = Instant::now();
    let (mut instance, t1) = master(params(100, 100), t0);
    let t2 = t1 + ms(300);
    let out = feed(&mut instance, advert(v4(20), 150, 50), t2);
    assert_eq!(
        out,
        vec![
            Action::RemoveVips,
            // Resigning on the wire: the new master re-announces for the clients we had.
            Action::SendAdvert { priority: 0 },
            transition(
                State::Master,
                State::Backup,
                Reason::HigherPriority {
                    peer: v4(20),
                    priority: 150
                }
            ),
        ]
    );
    assert_eq!(instance.master_adver_interval_cs(), 50);
    assert_eq!(instance.next_deadline(), Some(t2 + ms(1800)));
}

#[test]
fn master_ignores_lower_priority_adverts() {
    let t0 = Instant::now();
    let (mut instance, t1) = master(params(100, 100), t0);
    let out = feed(&mut instance, advert(v4(250), 99, 100), t1 + ms(10));
    // Kept as MASTER; the competitor is answered at once (advert + re-announcement).
    assert_eq!(
        out,
        vec![Action::SendAdvert { priority: 100 }, Action::Announce]
    );
    assert_eq!(instance.state(), State::Master);
    assert_eq!(instance.next_deadline(), Some(t1 + ms(1010)));
}

#[test]
fn master_equal_priority_tie_break_on_address() {
    let t0 = Instant::now();
    let (mut instance, t1) = master(params(100, 100), t0); // own 192.0.2.10
    assert!(keeps_master(&feed(
        &mut instance,
        advert(v4(9), 100, 100),
        t1
    )));
    // Our own address: a looped-back advert of ours, ignored.
    assert!(feed(&mut instance, advert(v4(10), 100, 100), t1).is_empty());
    assert_eq!(instance.state(), State::Master);
    let out = feed(&mut instance, advert(v4(11), 100, 100), t1);
    assert_eq!(
        out.last(),
        Some(&transition(
            State::Master,
            State::Backup,
            Reason::EqualPriorityHigherAddress { peer: v4(11) }
        ))
    );
}

#[test]
fn master_tie_break_compares_addresses_numerically() {
    let t0 = Instant::now();
    let (mut instance, t1) = master(params(100, 100), t0);
    feed(
        &mut instance,
        Input::PrimaryAddress(Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100)))),
        t1,
    );
    // "192.0.2.20" > "192.0.2.100" as text, but not as a number.
    assert!(keeps_master(&feed(
        &mut instance,
        advert(v4(20), 100, 100),
        t1
    )));
    assert_eq!(instance.state(), State::Master);
}

#[test]
fn master_with_unknown_own_address_yields_on_equal_priority() {
    let t0 = Instant::now();
    let (mut instance, t1) = master(params(100, 100), t0);
    feed(&mut instance, Input::PrimaryAddress(None), t1);
    let out = feed(&mut instance, advert(v4(1), 100, 100), t1);
    assert_eq!(out.first(), Some(&Action::RemoveVips));
    assert_eq!(instance.state(), State::Backup);
}

#[test]
fn master_with_own_address_of_other_family_yields_on_equal_priority() {
    let t0 = Instant::now();
    let (mut instance, t1) = master(params(100, 100), t0);
    let peer = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    feed(&mut instance, advert(peer, 100, 100), t1);
    assert_eq!(instance.state(), State::Backup);
}

#[test]
fn owner_keeps_master_against_equal_owner_with_lower_address() {
    let t0 = Instant::now();
    let mut instance = Instance::new(params(255, 100));
    feed(&mut instance, Input::PrimaryAddress(Some(v4(10))), t0);
    feed(&mut instance, Input::Startup { link_up: true }, t0);
    assert!(keeps_master(&feed(
        &mut instance,
        advert(v4(5), 255, 100),
        t0 + ms(10)
    )));
    assert_eq!(instance.state(), State::Master);
    let out = feed(&mut instance, advert(v4(50), 255, 100), t0 + ms(20));
    assert_eq!(
        out.last(),
        Some(&transition(
            State::Master,
            State::Backup,
            Reason::EqualPriorityHigherAddress { peer: v4(50) }
        ))
    );
}

#[test]
fn shutdown_of_master_sends_priority_zero_and_releases() {
    let t0 = Instant::now();
    let (mut instance, t1) = master(params(100, 100), t0);
    let stop = t1 + ms(10);
    let out = feed(&mut instance, Input::Shutdown, stop);
    assert_eq!(
        out,
        vec![
            Action::SendAdvert { priority: 0 },
            transition(State::Master, State::Initialize, Reason::Shutdown),
        ]
    );
    // The VIPs stay while the successor takes over, at most four advert intervals.
    assert!(instance.is_releasing());
    assert_eq!(instance.next_deadline(), Some(stop + ms(4000)));
    assert!(tick(&mut instance, stop + ms(3999)).is_empty());
    assert_eq!(
        tick(&mut instance, stop + ms(4000)),
        vec![Action::RemoveVips]
    );
    assert!(!instance.is_releasing());
    assert_eq!(instance.next_deadline(), None);
}

#[test]
fn stopped_master_releases_vips_when_the_successor_speaks() {
    let t0 = Instant::now();
    let (mut instance, t1) = master(params(150, 100), t0);
    feed(&mut instance, Input::Shutdown, t1);
    // A priority-0 advert (another router resigning) is not a successor.
    assert!(feed(&mut instance, advert(v4(20), 0, 100), t1 + ms(1)).is_empty());
    assert!(instance.is_releasing());
    assert!(feed(&mut instance, advert(v4(20), 100, 100), t1 + ms(600)).is_empty());
    assert_eq!(instance.next_deadline(), Some(t1 + ms(620)));
    assert!(tick(&mut instance, t1 + ms(619)).is_empty());
    assert_eq!(tick(&mut instance, t1 + ms(620)), vec![Action::RemoveVips]);
    assert_eq!(instance.next_deadline(), None);
    assert_eq!(instance.state(), State::Initialize);
}

#[test]
fn stopped_master_releases_vips_at_once_on_link_down_or_restart() {
    let t0 = Instant::now();
    let (mut instance, t1) = master(params(150, 100), t0);
    feed(&mut instance, Input::Shutdown, t1);
    assert_eq!(
        feed(&mut instance, Input::LinkDown, t1),
        vec![Action::RemoveVips]
    );
    let (mut instance, t1) = master(params(150, 100), t0);
    feed(&mut instance, Input::Shutdown, t1);
    let out = feed(&mut instance, Input::Startup { link_up: true }, t1);
    assert_eq!(out[0], Action::RemoveVips);
    assert_eq!(instance.state(), State::Backup);
}

#[test]
fn shutdown_of_backup_fault_and_init() {
    let t0 = Instant::now();
    let mut instance = backup(params(100, 100), t0);
    let out = feed(&mut instance, Input::Shutdown, t0);
    assert_eq!(
        out,
        vec![transition(
            State::Backup,
            State::Initialize,
            Reason::Shutdown
        )]
    );
    assert_eq!(instance.next_deadline(), None);
    // Already in INIT: nothing to do.
    assert!(feed(&mut instance, Input::Shutdown, t0).is_empty());
    feed(&mut instance, Input::Startup { link_up: false }, t0);
    let out = feed(&mut instance, Input::Shutdown, t0);
    assert_eq!(
        out,
        vec![transition(
            State::Fault,
            State::Initialize,
            Reason::Shutdown
        )]
    );
}

#[test]
fn link_down_from_master_and_backup_goes_fault() {
    let t0 = Instant::now();
    let (mut instance, t1) = master(params(100, 100), t0);
    let out = feed(&mut instance, Input::LinkDown, t1);
    assert_eq!(
        out,
        vec![
            Action::RemoveVips,
            transition(State::Master, State::Fault, Reason::LinkDown),
        ]
    );
    assert_eq!(instance.next_deadline(), None);
    assert!(feed(&mut instance, Input::LinkDown, t1).is_empty());

    let mut instance = backup(params(100, 100), t0);
    let out = feed(&mut instance, Input::LinkDown, t0);
    assert_eq!(
        out,
        vec![transition(State::Backup, State::Fault, Reason::LinkDown)]
    );
    assert_eq!(instance.next_deadline(), None);
}

#[test]
fn adverts_are_ignored_in_fault_and_init() {
    let t0 = Instant::now();
    let mut instance = Instance::new(params(100, 100));
    assert!(feed(&mut instance, advert(v4(20), 200, 100), t0).is_empty());
    assert_eq!(instance.state(), State::Initialize);
    feed(&mut instance, Input::Startup { link_up: false }, t0);
    assert!(feed(&mut instance, advert(v4(20), 200, 100), t0).is_empty());
    assert!(feed(&mut instance, advert(v4(20), 0, 100), t0).is_empty());
    assert_eq!(instance.state(), State::Fault);
    assert_eq!(instance.next_deadline(), None);
}

#[test]
fn link_up_in_fault_restarts_like_startup() {
    let t0 = Instant::now();
    let mut instance = backup(params(100, 100), t0);
    feed(&mut instance, advert(v4(20), 200, 50), t0 + ms(100));
    feed(&mut instance, Input::LinkDown, t0 + ms(200));
    let t1 = t0 + ms(5000);
    let out = feed(&mut instance, Input::LinkUp, t1);
    assert_eq!(
        out,
        vec![transition(State::Fault, State::Backup, Reason::LinkUp)]
    );
    // Fresh timer from the own interval, not the one learned before the fault.
    assert_eq!(instance.master_adver_interval_cs(), 100);
    assert_eq!(instance.next_deadline(), Some(t1 + ms(3600)));
    assert!(feed(&mut instance, Input::LinkUp, t1).is_empty());

    let mut owner = Instance::new(params(255, 100));
    feed(&mut owner, Input::Startup { link_up: false }, t0);
    let out = feed(&mut owner, Input::LinkUp, t1);
    assert_eq!(
        out.last(),
        Some(&transition(
            State::Fault,
            State::Master,
            Reason::AddressOwner
        ))
    );
    assert_eq!(out.first(), Some(&Action::SendAdvert { priority: 255 }));
}

#[test]
fn master_runs_the_announce_schedule_and_stops_it_on_leaving() {
    let t0 = Instant::now();
    let mut p = params(255, 100);
    p.announce = AnnounceParams {
        repeat: 3,
        interval: ms(100),
        delay: ms(2000),
        refresh: Some(ms(10_000)),
    };
    let mut instance = Instance::new(p);
    let out = feed(&mut instance, Input::Startup { link_up: true }, t0);
    assert_eq!(count_announces(&out), 1);
    assert_eq!(instance.next_deadline(), Some(t0 + ms(100)));
    let mut announce_times = Vec::new();
    let mut advert_times = Vec::new();
    let mut now = t0;
    while let Some(deadline) = instance.next_deadline() {
        if deadline > t0 + ms(23_000) {
            break;
        }
        now = deadline;
        for action in tick(&mut instance, now) {
            match action {
                Action::Announce => announce_times.push(now - t0),
                Action::SendAdvert { .. } => advert_times.push(now - t0),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let expected: Vec<Duration> = [100, 200, 2000, 2100, 2200, 12_200, 22_200]
        .into_iter()
        .map(ms)
        .collect();
    assert_eq!(announce_times, expected);
    assert_eq!(advert_times.len(), 23);
    assert_eq!(advert_times[0], ms(1000));

    // Leaving MASTER cancels the schedule: only the Master_Down timer remains.
    let out = feed(&mut instance, advert(v4(200), 255, 100), now);
    assert_eq!(instance.state(), State::Backup);
    assert_eq!(count_announces(&out), 0);
    assert_eq!(
        instance.next_deadline(),
        Some(now + instance.master_down_interval())
    );
}

fn count_announces(out: &[Action]) -> usize {
    out.iter().filter(|a| **a == Action::Announce).count()
}

#[test]
fn reasons_and_states_have_stable_names() {
    assert_eq!(State::Initialize.as_str(), "INIT");
    assert_eq!(State::Backup.as_str(), "BACKUP");
    assert_eq!(State::Master.as_str(), "MASTER");
    assert_eq!(State::Fault.as_str(), "FAULT");
    let reason = Reason::HigherPriority {
        peer: v4(20),
        priority: 150,
    };
    assert_eq!(reason.to_string(), "higher priority 150 from 192.0.2.20");
    assert_eq!(reason.code(), "higher-priority");
    assert_eq!(reason.peer(), Some(v4(20)));
    assert_eq!(Reason::Preempt.peer(), None);
}

#[test]
fn out_of_range_params_are_clamped_not_panicking() {
    let t0 = Instant::now();
    let mut instance = Instance::new(params(0, 0));
    assert_eq!(instance.params().priority, 1);
    assert_eq!(instance.params().advert_interval_cs, 1);
    feed(&mut instance, Input::Startup { link_up: true }, t0);
    // An advert announcing interval 0 must not make the Master_Down timer fire at once.
    let mut p = params(100, 100);
    p.preempt_delay = Duration::MAX;
    let mut instance = backup(p, t0);
    feed(&mut instance, advert(v4(20), 50, 0), t0);
    assert_eq!(instance.master_adver_interval_cs(), 1);
    assert!(instance.next_deadline() > Some(t0));
}

/// Checks one batch of actions against the state the instance was and is in.
struct Checker {
    vips: bool,
    state: State,
    masterships: u32,
    step_downs: u32,
}

impl Checker {
    fn check(&mut self, instance: &Instance, out: &[Action]) {
        for action in out {
            match action {
                Action::AddVips => {
                    assert!(!self.vips, "AddVips twice without RemoveVips");
                    self.vips = true;
                }
                Action::RemoveVips => {
                    assert!(self.vips, "RemoveVips without AddVips");
                    self.vips = false;
                }
                Action::Transition { from, to, .. } => {
                    assert_eq!(*from, self.state, "transition from a stale state");
                    assert_ne!(from, to, "self-transition");
                    self.state = *to;
                    match (from, to) {
                        (_, State::Master) => self.masterships += 1,
                        (State::Master, State::Backup) => self.step_downs += 1,
                        _ => {}
                    }
                }
                Action::Announce => assert!(self.vips, "announce without VIPs"),
                Action::SendAdvert { .. } => {}
            }
        }
        assert_eq!(self.state, instance.state());
        assert_eq!(
            self.vips,
            instance.state() == State::Master || instance.is_releasing()
        );
        if instance.is_releasing() {
            assert_eq!(instance.state(), State::Initialize);
        } else if matches!(instance.state(), State::Initialize | State::Fault) {
            assert_eq!(instance.next_deadline(), None);
        } else {
            assert!(instance.next_deadline().is_some());
        }
    }
}

fn random_input(rng: &mut Rng) -> Input {
    let peers = [v4(5), v4(10), v4(20)];
    match rng.below(20) {
        0 => Input::Startup {
            link_up: rng.below(4) != 0,
        },
        1 => Input::Shutdown,
        2 => Input::LinkDown,
        3 => Input::LinkUp,
        4 => Input::PrimaryAddress([None, Some(v4(10)), Some(v4(15))][rng.below(3) as usize]),
        _ => {
            let priority = [0, 1, 50, 100, 101, 200, 255][rng.below(7) as usize];
            let interval_cs = [0, 1, 2, 100][rng.below(4) as usize];
            advert(peers[rng.below(3) as usize], priority, interval_cs)
        }
    }
}

#[test]
fn random_inputs_keep_state_and_vip_invariants() {
    for seed in 1..=8u64 {
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15 ^ seed);
        let mut p = if seed % 2 == 0 {
            params(100, 2)
        } else {
            v2(100, 100)
        };
        p.priority = [1, 100, 254, 255][(seed % 4) as usize];
        p.preempt = seed % 3 != 0;
        p.preempt_delay = ms(rng.below(50));
        p.announce = AnnounceParams {
            repeat: 3,
            interval: ms(7),
            delay: ms(40),
            refresh: Some(ms(90)),
        };
        let max_step_us = u64::from(p.advert_interval_cs) * 20_000;
        let mut instance = Instance::new(p);
        let mut checker = Checker {
            vips: false,
            state: State::Initialize,
            masterships: 0,
            step_downs: 0,
        };
        let mut now = Instant::now();
        let mut out = Vec::new();
        for _ in 0..20_000 {
            // Steps of 0..2 advert intervals: a few inputs per Master_Down_Interval.
            now += Duration::from_micros(rng.below(max_step_us));
            out.clear();
            instance.handle_timeout(now, &mut out);
            checker.check(&instance, &out);
            assert!(instance.next_deadline().is_none_or(|d| d > now));
            if rng.below(3) == 0 {
                out.clear();
                instance.handle(random_input(&mut rng), now, &mut out);
                checker.check(&instance, &out);
            }
        }
        // The run must have exercised the interesting paths, not idled in one state.
        assert!(
            checker.masterships > 50,
            "seed {seed}: {}",
            checker.masterships
        );
        if instance.params().priority < 255 {
            assert!(
                checker.step_downs > 10,
                "seed {seed}: {}",
                checker.step_downs
            );
        }
    }
}

#[test]
fn master_answers_a_lower_priority_competing_master_at_most_once_per_mdi() {
    let t0 = Instant::now();
    let (mut instance, t1) = master(params(100, 1), t0);
    // Let the first announce burst finish.
    let t2 = t1 + ms(20_000);
    tick(&mut instance, t2);
    let out = feed(&mut instance, advert(v4(5), 50, 1), t2);
    assert_eq!(
        out,
        vec![Action::SendAdvert { priority: 100 }, Action::Announce]
    );
    assert_eq!(instance.state(), State::Master);
    assert_eq!(instance.next_deadline(), Some(t2 + ms(10)));
    // Within Master_Down_Interval (30 ms here) further lower adverts are only discarded.
    assert!(feed(&mut instance, advert(v4(5), 50, 1), t2 + ms(29)).is_empty());
    let out = feed(&mut instance, advert(v4(5), 50, 1), t2 + ms(30));
    assert_eq!(out[0], Action::SendAdvert { priority: 100 });
}

// ---- "Can I advertise?" as a state input (no source address, persistent send failures) ----

#[test]
fn startup_without_a_source_address_goes_fault_and_leaves_when_it_comes() {
    let t0 = Instant::now();
    let mut instance = Instance::new(params(100, 100));
    feed(
        &mut instance,
        Input::CannotAdvertise(Blocker::NoSourceAddress),
        t0,
    );
    let out = feed(&mut instance, Input::Startup { link_up: true }, t0);
    assert_eq!(
        out,
        vec![transition(
            State::Initialize,
            State::Fault,
            Reason::NoSourceAddress
        )]
    );
    assert_eq!(instance.next_deadline(), None);
    // Adverts heard meanwhile change nothing; the link coming and going neither.
    assert!(feed(&mut instance, advert(v4(11), 50, 100), t0 + ms(10)).is_empty());
    assert!(feed(&mut instance, Input::LinkUp, t0 + ms(20)).is_empty());
    let out = feed(
        &mut instance,
        Input::CanAdvertise(Blocker::NoSourceAddress),
        t0 + ms(30),
    );
    assert_eq!(
        out,
        vec![transition(
            State::Fault,
            State::Backup,
            Reason::CanAdvertise
        )]
    );
}

#[test]
fn a_master_that_loses_its_source_address_releases_its_vips_in_fault() {
    let t0 = Instant::now();
    let (mut instance, at) = master(params(100, 100), t0);
    let out = feed(
        &mut instance,
        Input::CannotAdvertise(Blocker::NoSourceAddress),
        at + ms(5),
    );
    assert_eq!(
        out,
        vec![
            Action::RemoveVips,
            transition(State::Master, State::Fault, Reason::NoSourceAddress)
        ]
    );
    // The link coming back does not start it while the address is missing.
    feed(&mut instance, Input::LinkDown, at + ms(6));
    assert!(feed(&mut instance, Input::LinkUp, at + ms(7)).is_empty());
    assert_eq!(instance.state(), State::Fault);
}

#[test]
fn link_down_and_no_source_both_must_clear() {
    let t0 = Instant::now();
    let mut instance = backup(params(100, 100), t0);
    feed(&mut instance, Input::LinkDown, t0 + ms(1));
    feed(
        &mut instance,
        Input::CannotAdvertise(Blocker::NoSourceAddress),
        t0 + ms(2),
    );
    assert!(feed(
        &mut instance,
        Input::CanAdvertise(Blocker::NoSourceAddress),
        t0 + ms(3)
    )
    .is_empty());
    assert_eq!(instance.state(), State::Fault);
    let out = feed(&mut instance, Input::LinkUp, t0 + ms(4));
    assert_eq!(
        out,
        vec![transition(State::Fault, State::Backup, Reason::LinkUp)]
    );
}

#[test]
fn persistent_send_failures_go_fault_and_retry_with_backoff() {
    let t0 = Instant::now();
    let (mut instance, at) = master(params(100, 1), t0);
    let out = feed(
        &mut instance,
        Input::CannotAdvertise(Blocker::SendFailed),
        at,
    );
    assert_eq!(
        out,
        vec![
            Action::RemoveVips,
            transition(State::Master, State::Fault, Reason::SendFailed)
        ]
    );
    // The retry is due after the first backoff: back to BACKUP, which sends nothing.
    assert_eq!(instance.next_deadline(), Some(at + SEND_RETRY_MIN));
    let out = tick(&mut instance, at + SEND_RETRY_MIN);
    assert_eq!(
        out,
        vec![transition(
            State::Fault,
            State::Backup,
            Reason::CanAdvertise
        )]
    );
    // Failing again doubles the wait; a successful send resets it.
    let t1 = at + SEND_RETRY_MIN + ms(100);
    feed(
        &mut instance,
        Input::CannotAdvertise(Blocker::SendFailed),
        t1,
    );
    assert_eq!(instance.next_deadline(), Some(t1 + SEND_RETRY_MIN * 2));
    feed(
        &mut instance,
        Input::CanAdvertise(Blocker::SendFailed),
        t1 + ms(1),
    );
    assert_eq!(instance.state(), State::Backup);
    let t2 = t1 + ms(2);
    feed(
        &mut instance,
        Input::CannotAdvertise(Blocker::SendFailed),
        t2,
    );
    assert_eq!(instance.next_deadline(), Some(t2 + SEND_RETRY_MIN));
}

// ---- One master at a time (issue: after a stall, and with zero skew) ----

#[test]
fn a_backup_woken_late_hears_the_queued_master_before_its_timer() {
    // The daemon feeds what queued on the sockets before it fires overdue timers. The engine
    // part of that contract: an advert fed at a late `now` re-arms the Master_Down timer, so
    // the overdue deadline never fires.
    let t0 = Instant::now();
    let mut instance = backup(params(100, 1), t0);
    let woke = t0 + Duration::from_secs(3);
    assert!(instance.next_deadline().is_some_and(|d| d < woke));
    let out = feed(&mut instance, advert(v4(11), 150, 1), woke);
    assert!(out.is_empty());
    let out = tick(&mut instance, woke);
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::AddVips | Action::SendAdvert { .. })),
        "{out:?}"
    );
    assert_eq!(instance.state(), State::Backup);
    assert_eq!(instance.current_master(), Some((v4(11), 150)));
}

#[test]
fn backups_with_zero_skew_are_ordered_by_priority() {
    let step = |priority| Params {
        priority_step: DEFAULT_PRIORITY_STEP,
        ..params(priority, 1)
    };
    let t0 = Instant::now();
    let mut high = backup(step(100), t0);
    let mut low = backup(step(50), t0);
    // Both hear the master's last advert at the same instant.
    feed(&mut high, advert(v4(11), 150, 1), t0 + ms(5));
    feed(&mut low, advert(v4(11), 150, 1), t0 + ms(5));
    assert_eq!(high.skew_time(), Duration::ZERO);
    assert_eq!(low.skew_time(), Duration::ZERO);
    let high_at = high.next_deadline().unwrap();
    let low_at = low.next_deadline().unwrap();
    assert_eq!(high_at, t0 + ms(35) + Duration::from_micros(1521));
    assert_eq!(low_at, t0 + ms(35) + Duration::from_nanos(2_652_250));
    // The higher one claims MASTER first; its advert reaches the lower one before its timer.
    let out = tick(&mut high, high_at);
    assert!(out.contains(&Action::SendAdvert { priority: 100 }));
    let heard = high_at + Duration::from_micros(100);
    assert!(heard < low_at);
    feed(&mut low, advert(v4(12), 100, 1), heard);
    assert!(tick(&mut low, low_at).is_empty());
    assert_eq!(low.state(), State::Backup);
    // A priority-0 resignation is ordered the same way.
    let mut high = backup(step(100), t0);
    let mut low = backup(step(50), t0);
    feed(&mut high, advert(v4(11), 0, 1), t0 + ms(1));
    feed(&mut low, advert(v4(11), 0, 1), t0 + ms(1));
    assert!(high.next_deadline().unwrap() < low.next_deadline().unwrap());
}

#[test]
fn the_rfc_timers_are_exact_without_a_priority_step() {
    let t0 = Instant::now();
    let instance = backup(params(100, 1), t0);
    assert_eq!(instance.priority_offset(), Duration::ZERO);
    assert_eq!(instance.next_deadline(), Some(t0 + ms(30)));
}

#[test]
fn a_held_out_master_resigns_keeps_its_vips_until_the_successor_speaks_and_never_takes_over() {
    let t0 = Instant::now();
    let (mut m, t1) = master(params(150, 100), t0);
    let out = feed(&mut m, Input::HoldOut(true), t1);
    assert_eq!(
        out,
        vec![
            Action::SendAdvert { priority: 0 },
            transition(State::Master, State::Backup, Reason::HeldOut),
        ],
        "resign without removing the VIPs"
    );
    assert!(m.held_out() && m.is_releasing());
    // The successor's first advert: the VIPs go after the short grace, not before.
    let t2 = t1 + ms(5);
    assert!(feed(&mut m, advert(v4(2), 100, 100), t2).is_empty());
    let deadline = m.next_deadline().expect("the release deadline");
    assert!(deadline > t2 && deadline <= t2 + ms(100), "{deadline:?}");
    assert_eq!(tick(&mut m, deadline), vec![Action::RemoveVips]);
    // Held out, it never takes over: no Master_Down timer, whatever it hears or not.
    assert_eq!(m.next_deadline(), None);
    let t3 = t2 + Duration::from_secs(60);
    assert!(tick(&mut m, t3).is_empty());
    assert!(feed(&mut m, advert(v4(2), 100, 100), t3).is_empty());
    assert_eq!(m.state(), State::Backup);
    assert_eq!(
        m.next_deadline(),
        None,
        "a lower-priority master is not preempted"
    );
    // Let go, it competes again: a lower-priority master is preempted at Master_Down.
    assert!(feed(&mut m, Input::HoldOut(false), t3).is_empty());
    assert!(m.next_deadline().is_some());
    assert!(feed(&mut m, advert(v4(2), 100, 100), t3 + ms(10)).is_empty());
    let fire = m.next_deadline().unwrap();
    let out = tick(&mut m, fire);
    assert!(
        out.contains(&transition(State::Backup, State::Master, Reason::Preempt)),
        "{out:?}"
    );
}

#[test]
fn a_held_out_master_with_no_successor_drops_its_vips_after_four_intervals() {
    let t0 = Instant::now();
    let (mut m, t1) = master(params(150, 100), t0);
    feed(&mut m, Input::HoldOut(true), t1);
    assert_eq!(m.next_deadline(), Some(t1 + ms(4000)));
    assert_eq!(tick(&mut m, t1 + ms(4000)), vec![Action::RemoveVips]);
    assert_eq!(m.next_deadline(), None);
}

#[test]
fn a_held_out_owner_starts_as_backup() {
    let t0 = Instant::now();
    let mut m = Instance::new(params(255, 100));
    feed(&mut m, Input::PrimaryAddress(Some(v4(1))), t0);
    feed(&mut m, Input::HoldOut(true), t0);
    let out = feed(&mut m, Input::Startup { link_up: true }, t0);
    assert_eq!(m.state(), State::Backup, "{out:?}");
    assert_eq!(m.next_deadline(), None);
}
