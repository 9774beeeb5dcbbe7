//! Tracks (`[[track]]`) in the daemon: runs the checks the engine says are due and feeds the
//! results back, then hands the outcome to the instances (effective priority through
//! [`Input::SetPriority`], weight-0 failures through [`Blocker::TrackFailed`]) and to the
//! groups (a failing track makes this node ineligible).
//!
//! Scripts run off the loop through the hook machinery ([`super::hooks::HookRunner`]: own
//! process group, no shell, output logged line by line, killed at `timeout`), sequenced by the
//! hook queue under an owner of their own, so at most one run per track at a time; the engine
//! does not make a script due again before its result. Interface tracks read the daemon's link
//! table on every link event. File tracks are read every `interval`: a regular file, opened
//! non-blocking, at most [`MAX_FILE_READ`] bytes.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Instant;

use tracing::{info, warn};

use super::control::TrackStatus;
use super::hooks::{HookDone, HookOutcome, HookRequest, TRACK_EVENT};
use super::timer::TimerOwner;
use super::Daemon;
use crate::config::{Config, TrackCheck, TrackConfig};
use crate::engine::track::{Change, Check, Effective, TrackParams, TrackState, Tracks};
use crate::engine::vrrp::{Blocker, Input};

/// Hook-queue owners of track scripts: `TRACK_HOOK_OWNER_BASE + track index` (above the
/// instances, groups and cluster events).
pub const TRACK_HOOK_OWNER_BASE: usize = 1 << 18;

/// Largest read of a file track (an integer and a line break fit many times).
pub const MAX_FILE_READ: u64 = 64;

/// The tracks of the daemon and who uses them.
pub struct TrackRt {
    pub engine: Tracks,
    cfgs: Vec<TrackConfig>,
    /// Per instance, the indices of its tracks.
    instance_tracks: Vec<Vec<usize>>,
    /// Per group, the indices of its tracks.
    group_tracks: Vec<Vec<usize>>,
    /// What was last fed to each instance.
    pub applied: Vec<Effective>,
    /// Per track, the last result in words ("exit 1", "eth1 down", "reads 5").
    detail: Vec<String>,
}

impl TrackRt {
    pub fn new(config: &Config, now: Instant) -> Self {
        let params = config.tracks.iter().map(params_of).collect();
        let engine = Tracks::new(params, now);
        let indices = |names: &[String]| -> Vec<usize> {
            names.iter().filter_map(|n| engine.find(n)).collect()
        };
        let instance_tracks: Vec<Vec<usize>> =
            config.vrrp.iter().map(|v| indices(&v.track)).collect();
        let group_tracks = config.groups.iter().map(|g| indices(&g.track)).collect();
        let applied = config
            .vrrp
            .iter()
            .map(|v| Effective {
                priority: v.priority,
                fault: false,
            })
            .collect();
        TrackRt {
            detail: vec![String::new(); config.tracks.len()],
            cfgs: config.tracks.clone(),
            engine,
            instance_tracks,
            group_tracks,
            applied,
        }
    }

    /// A reload added instance `cfg` (as the next index): its tracks, nothing applied yet.
    pub fn add_instance(&mut self, cfg: &crate::config::VrrpConfig) {
        let tracks = cfg
            .track
            .iter()
            .filter_map(|n| self.engine.find(n))
            .collect();
        self.instance_tracks.push(tracks);
        self.applied.push(Effective {
            priority: cfg.priority,
            fault: false,
        });
    }

    /// The effective priority and fault of instance `i` configured with `priority`.
    pub fn effective(&self, i: usize, priority: u8) -> Effective {
        let tracks = self.instance_tracks.get(i).map_or(&[][..], Vec::as_slice);
        self.engine.effective(priority, tracks)
    }

    /// The tracks of instance `i` as status shows them.
    pub fn instance_status(&self, i: usize) -> Vec<TrackStatus> {
        let tracks = self.instance_tracks.get(i).map_or(&[][..], Vec::as_slice);
        tracks.iter().map(|&t| self.status_of(t)).collect()
    }

    /// The names of the failing tracks of group `g`.
    pub fn failing_group_tracks(&self, g: usize) -> Vec<String> {
        let tracks = self.group_tracks.get(g).map_or(&[][..], Vec::as_slice);
        tracks
            .iter()
            .filter(|&&t| self.engine.failing(t))
            .map(|&t| self.cfgs[t].name.clone())
            .collect()
    }

    fn status_of(&self, t: usize) -> TrackStatus {
        let cfg = &self.cfgs[t];
        TrackStatus {
            name: cfg.name.clone(),
            check: cfg.check.kind().to_string(),
            state: self.engine.state(t).to_string(),
            weight: cfg.weight,
            applied: self.engine.delta(t),
            fault: self.engine.faults(t),
            detail: self.detail[t].clone(),
        }
    }

    /// Logs a change with its reason in words.
    fn log_change(&self, change: &Change) {
        let cfg = &self.cfgs[change.track];
        let detail = &self.detail[change.track];
        let (name, count) = (&cfg.name, change.count);
        let times = if count == 1 { "time" } else { "times" };
        match (&cfg.check, change.to) {
            (TrackCheck::Script(_), TrackState::Down) => {
                warn!("track {name} failed {count} {times}: {detail}")
            }
            (TrackCheck::Script(_), _) => {
                info!("track {name} succeeded {count} {times}: {detail}")
            }
            (TrackCheck::Interface(_), TrackState::Down) => warn!("track {name}: {detail}"),
            _ => info!("track {name}: {detail}"),
        }
    }
}

fn params_of(cfg: &TrackConfig) -> TrackParams {
    TrackParams {
        name: cfg.name.clone(),
        check: match cfg.check {
            TrackCheck::Script(_) => Check::Script,
            TrackCheck::Interface(_) => Check::Interface,
            TrackCheck::File(_) => Check::File,
        },
        interval: cfg.interval,
        rise: cfg.rise,
        fall: cfg.fall,
        weight: cfg.weight,
    }
}

/// Reads a file track: its integer, or why it counts as 0. Only a regular file is read (a FIFO
/// or a device could block or never end), opened non-blocking, at most [`MAX_FILE_READ`]
/// bytes.
pub fn read_track_file(path: &Path) -> Result<i64, String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let is_file = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    if !is_file {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mut text = String::new();
    File::take(file, MAX_FILE_READ)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.trim().parse::<i64>().map_err(|_| {
        format!(
            "{} does not hold an integer: {:?}",
            path.display(),
            text.trim()
        )
    })
}

/// A script's outcome in words.
fn outcome_words(outcome: &HookOutcome) -> String {
    match outcome {
        HookOutcome::Exited(code) => format!("exit {code}"),
        HookOutcome::Signaled(signal) => format!("killed by signal {signal}"),
        HookOutcome::TimedOut => "timed out".to_string(),
        HookOutcome::SpawnFailed(why) => format!("cannot start: {why}"),
        HookOutcome::Refused(why) => format!("refused by hook_security: {why}"),
        HookOutcome::WaitFailed(why) => format!("exit status lost: {why}"),
    }
}

impl Daemon {
    /// Takes the interface tracks' first state from the link table and tells the instances
    /// (before their Startup, so a failing weight-0 track starts them in FAULT).
    pub(super) fn start_tracks(&mut self, now: Instant) {
        self.refresh_interface_tracks(now);
        self.schedule_tracks();
    }

    /// Runs the checks that are due.
    pub(super) fn on_track_timer(&mut self, now: Instant) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        let mut due = Vec::new();
        self.tracks.engine.due(now, &mut due);
        let mut changed = false;
        for t in due {
            match self.tracks.cfgs[t].check.clone() {
                TrackCheck::Script(argv) => self.start_track_script(t, argv, now),
                TrackCheck::File(path) => {
                    let (value, detail) = match read_track_file(&path) {
                        Ok(value) => (value, format!("{} reads {value}", path.display())),
                        Err(why) => {
                            if self.tracks.detail[t] != why {
                                warn!("track {}: {why}; counted as 0", self.tracks.cfgs[t].name);
                            }
                            (0, why)
                        }
                    };
                    self.tracks.detail[t] = detail;
                    let change = self.tracks.engine.file_value(t, value);
                    changed |= self.track_changed(change);
                }
                TrackCheck::Interface(_) => {}
            }
        }
        if changed {
            self.apply_tracks(now);
        }
        self.schedule_tracks();
    }

    fn start_track_script(&mut self, t: usize, argv: Vec<String>, now: Instant) {
        let cfg = &self.tracks.cfgs[t];
        let env = vec![
            ("RELEVO_EVENT".to_string(), TRACK_EVENT.to_string()),
            ("RELEVO_NAME".to_string(), cfg.name.clone()),
            ("RELEVO_TRACK".to_string(), cfg.name.clone()),
            ("RELEVO_NODE".to_string(), self.node_name.clone()),
        ];
        let owner = TRACK_HOOK_OWNER_BASE + t;
        let request = HookRequest::new(owner, TRACK_EVENT, argv, env, cfg.timeout);
        self.hook_queue.push(request);
        self.pump_hooks(now);
    }

    /// A track script ended.
    pub(super) fn track_script_done(&mut self, done: HookDone, now: Instant) {
        self.hook_queue.finished(done.owner);
        let t = done.owner - TRACK_HOOK_OWNER_BASE;
        if t >= self.tracks.engine.len() {
            return;
        }
        let ok = done.outcome == HookOutcome::Exited(0);
        self.tracks.detail[t] = outcome_words(&done.outcome);
        let change = self.tracks.engine.script_result(t, ok, now);
        if self.track_changed(change) {
            self.apply_tracks(now);
        }
        self.schedule_tracks();
    }

    /// Interface tracks follow the link table (after every link event).
    pub(super) fn refresh_interface_tracks(&mut self, now: Instant) {
        let mut changed = false;
        for t in 0..self.tracks.engine.len() {
            let TrackCheck::Interface(name) = &self.tracks.cfgs[t].check else {
                continue;
            };
            let up = self.interfaces.by_name(name).is_some_and(|i| i.link.up);
            let words = match self.interfaces.by_name(name) {
                None => "does not exist",
                Some(_) if up => "up",
                Some(_) => "down",
            };
            self.tracks.detail[t] = format!("interface {name} {words}");
            let change = self.tracks.engine.interface(t, up);
            changed |= self.track_changed(change);
        }
        if changed {
            self.apply_tracks(now);
        }
    }

    /// Logs a change; true if there was one.
    fn track_changed(&self, change: Option<Change>) -> bool {
        match change {
            Some(change) => {
                self.tracks.log_change(&change);
                true
            }
            None => false,
        }
    }

    /// Feeds every instance whose effective priority or track fault changed, and re-decides
    /// the groups when one's eligibility changed.
    pub(super) fn apply_tracks(&mut self, now: Instant) {
        for i in 0..self.instances.len() {
            let effective = self.tracks.effective(i, self.instances[i].cfg.priority);
            let before = self.tracks.applied[i];
            if effective == before {
                continue;
            }
            self.tracks.applied[i] = effective;
            if effective.priority != before.priority {
                info!(
                    instance = %self.instances[i].cfg.name,
                    "effective priority {} -> {} (tracks: {})",
                    before.priority,
                    effective.priority,
                    self.changing_tracks(i)
                );
                self.feed(i, Input::SetPriority(effective.priority), now);
            }
            if effective.fault != before.fault {
                let input = if effective.fault {
                    Input::CannotAdvertise(Blocker::TrackFailed)
                } else {
                    Input::CanAdvertise(Blocker::TrackFailed)
                };
                self.feed(i, input, now);
            }
        }
        let mut groups_changed = false;
        if let Some(cluster) = self.cluster.as_mut() {
            for (g, group) in cluster.groups.iter_mut().enumerate() {
                let failing = !self.tracks.failing_group_tracks(g).is_empty();
                groups_changed |= group.track_failed != failing;
                group.track_failed = failing;
            }
        }
        if groups_changed {
            self.update_groups(now);
        }
    }

    /// "web-check -60, uplink fault" for the tracks of instance `i` that change it now.
    fn changing_tracks(&self, i: usize) -> String {
        let list: Vec<String> = self
            .tracks
            .instance_status(i)
            .into_iter()
            .filter(|t| t.applied != 0 || t.fault)
            .map(|t| {
                if t.fault {
                    format!("{} fault", t.name)
                } else {
                    format!("{} {:+}", t.name, t.applied)
                }
            })
            .collect();
        if list.is_empty() {
            "none".to_string()
        } else {
            list.join(", ")
        }
    }

    fn schedule_tracks(&mut self) {
        let next = self.tracks.engine.next_deadline();
        self.deadlines.schedule(TimerOwner::Tracks, next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_track_file_is_a_small_regular_file_holding_an_integer() {
        let dir = std::env::temp_dir().join(format!("relevo-track-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("delta");
        std::fs::write(&file, " -15\n").unwrap();
        assert_eq!(read_track_file(&file), Ok(-15));
        std::fs::write(&file, "ten\n").unwrap();
        let why = read_track_file(&file).unwrap_err();
        assert!(why.contains("does not hold an integer"), "{why}");
        // Only the first 64 bytes are read: a long file is not an integer.
        std::fs::write(&file, format!("1{}\n", "0".repeat(80))).unwrap();
        assert!(read_track_file(&file).is_err());
        assert!(read_track_file(&dir.join("missing"))
            .unwrap_err()
            .starts_with("cannot open"));
        // A FIFO with no writer would block a plain open: refused without blocking.
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let why = read_track_file(&fifo).unwrap_err();
        assert!(why.contains("is not a regular file"), "{why}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
