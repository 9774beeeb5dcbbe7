//! Tracks (`[[track]]`), sans-I/O: when each check is due, the state each one is in after
//! its results (script results through `rise` / `fall`, interface and file results at once),
//! and what the states mean for an instance (its effective priority, or FAULT) or a group
//! (eligible or not).
//!
//! Semantics (keepalived's, where it has them):
//! - A track is *pending* until its first result, which is taken at once (no `rise`/`fall`);
//!   a pending track changes nothing.
//! - A script goes down after `fall` failures in a row and comes back up after `rise`
//!   successes in a row. Interfaces follow the link at once. A file's value is taken at once.
//! - Weight 0: the track is a fault condition; down (or a file value other than 0) puts the
//!   instance in FAULT. A negative weight is added to the priority while the track is down, a
//!   positive one while it is up. A file adds its integer times the weight (default weight 1:
//!   the integer itself), bounded to ±254.
//! - Effective priority: the configured one when no track adds anything; otherwise configured
//!   plus the sum, bounded to 1..=254. An address owner (255) stays at 255 unless the sum is
//!   negative (then it is no longer the owner: 255 + sum, at most 254).
//! - For a group, a track fails when it is down, a weight-0 file reads non-zero, or a file
//!   lowers the priority: any failing track makes this node ineligible, whatever the weight.
//!
//! The daemon asks [`Tracks::due`] which checks to run, runs them (scripts off the loop, one
//! at a time per track), feeds the results back and applies the [`Change`]s.

use std::fmt;
use std::time::{Duration, Instant};

/// Largest priority delta of one track or of their sum.
pub const MAX_DELTA: i64 = 254;

/// What a track checks, as far as its state machine cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Script,
    Interface,
    File,
}

/// One track's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackParams {
    pub name: String,
    pub check: Check,
    /// Between the starts of two checks (scripts, files).
    pub interval: Duration,
    /// Successes in a row that bring a down script up (at least 1).
    pub rise: u32,
    /// Failures in a row that take an up script down (at least 1).
    pub fall: u32,
    /// -254..=254; 0 = fault when failing.
    pub weight: i32,
}

/// The state of one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackState {
    /// No result yet: changes nothing.
    Pending,
    Up,
    Down,
    /// A file track's last value.
    Value(i64),
}

impl fmt::Display for TrackState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackState::Pending => f.write_str("pending"),
            TrackState::Up => f.write_str("up"),
            TrackState::Down => f.write_str("down"),
            TrackState::Value(value) => write!(f, "{value}"),
        }
    }
}

/// A track whose state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub track: usize,
    pub from: TrackState,
    pub to: TrackState,
    /// The results in a row that made the change (`rise` or `fall` for scripts, else 1).
    pub count: u32,
}

/// What the tracks of an instance make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    pub priority: u8,
    /// A weight-0 track fails: the instance must be in FAULT.
    pub fault: bool,
}

#[derive(Debug, Clone)]
struct Track {
    params: TrackParams,
    state: TrackState,
    /// Results in a row that disagree with `state` (scripts).
    streak: u32,
    /// When the next check is due; `None` while a script runs and for interfaces.
    next_check: Option<Instant>,
    /// When the running script started.
    started: Option<Instant>,
}

/// Every track of the daemon, by index in config order.
#[derive(Debug, Clone, Default)]
pub struct Tracks {
    tracks: Vec<Track>,
}

impl Tracks {
    /// Tracks whose scripts and files are first due at `now`; interfaces wait for
    /// [`Tracks::interface`].
    pub fn new(params: Vec<TrackParams>, now: Instant) -> Self {
        let tracks = params
            .into_iter()
            .map(|params| Track {
                next_check: (params.check != Check::Interface).then_some(now),
                params: TrackParams {
                    rise: params.rise.max(1),
                    fall: params.fall.max(1),
                    ..params
                },
                state: TrackState::Pending,
                streak: 0,
                started: None,
            })
            .collect();
        Tracks { tracks }
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    pub fn params(&self, track: usize) -> &TrackParams {
        &self.tracks[track].params
    }

    pub fn state(&self, track: usize) -> TrackState {
        self.tracks[track].state
    }

    /// The index of the track named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.tracks.iter().position(|t| t.params.name == name)
    }

    /// Pushes the tracks whose check is due at `now`. A script counts as running from then
    /// until its result: it is not due again before (one run per track at a time). A file's
    /// next check is scheduled at once (its result is expected right away).
    pub fn due(&mut self, now: Instant, out: &mut Vec<usize>) {
        for (index, track) in self.tracks.iter_mut().enumerate() {
            if track.next_check.is_none_or(|at| at > now) {
                continue;
            }
            out.push(index);
            match track.params.check {
                Check::Script => {
                    track.next_check = None;
                    track.started = Some(now);
                }
                Check::File | Check::Interface => {
                    track.next_check = now.checked_add(track.params.interval);
                }
            }
        }
    }

    /// The earliest instant at which [`Tracks::due`] has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.tracks.iter().filter_map(|t| t.next_check).min()
    }

    /// A script ended (`ok`: exit 0). The next run is due an interval after this one started
    /// (at once if that has passed).
    pub fn script_result(&mut self, track: usize, ok: bool, now: Instant) -> Option<Change> {
        let entry = self.tracks.get_mut(track)?;
        let started = entry.started.take().unwrap_or(now);
        let next = started.checked_add(entry.params.interval).unwrap_or(now);
        entry.next_check = Some(next.max(now));
        let (state, streak) = (entry.state, entry.streak);
        let (to, streak, count) = match (state, ok) {
            (TrackState::Up, false) if streak + 1 >= entry.params.fall => {
                (TrackState::Down, 0, entry.params.fall)
            }
            (TrackState::Down, true) if streak + 1 >= entry.params.rise => {
                (TrackState::Up, 0, entry.params.rise)
            }
            (TrackState::Up, false) | (TrackState::Down, true) => (state, streak + 1, 0),
            (TrackState::Up, true) | (TrackState::Down, false) => (state, 0, 0),
            (_, true) => (TrackState::Up, 0, 1),
            (_, false) => (TrackState::Down, 0, 1),
        };
        entry.streak = streak;
        self.set(track, to, count)
    }

    /// An interface track's link is up or down (taken at once).
    pub fn interface(&mut self, track: usize, up: bool) -> Option<Change> {
        let to = if up { TrackState::Up } else { TrackState::Down };
        self.set(track, to, 1)
    }

    /// A file track read `value` (taken at once).
    pub fn file_value(&mut self, track: usize, value: i64) -> Option<Change> {
        self.set(track, TrackState::Value(value), 1)
    }

    fn set(&mut self, track: usize, to: TrackState, count: u32) -> Option<Change> {
        let entry = self.tracks.get_mut(track)?;
        let from = entry.state;
        entry.state = to;
        (from != to).then_some(Change {
            track,
            from,
            to,
            count,
        })
    }

    /// What the track adds to the priority of the instances that name it now.
    pub fn delta(&self, track: usize) -> i32 {
        let Some(entry) = self.tracks.get(track) else {
            return 0;
        };
        let weight = entry.params.weight;
        let delta = match entry.state {
            TrackState::Down if weight < 0 => i64::from(weight),
            TrackState::Up if weight > 0 => i64::from(weight),
            TrackState::Value(value) if weight != 0 => value.saturating_mul(i64::from(weight)),
            _ => 0,
        };
        // Bounded to ±254, so the narrowing is exact.
        delta.clamp(-MAX_DELTA, MAX_DELTA) as i32
    }

    /// Whether the track is a weight-0 track that fails now (FAULT).
    pub fn faults(&self, track: usize) -> bool {
        let Some(entry) = self.tracks.get(track) else {
            return false;
        };
        entry.params.weight == 0
            && matches!(
                entry.state,
                TrackState::Down | TrackState::Value(1..) | TrackState::Value(..=-1)
            )
    }

    /// Whether the track fails for a group: down, faulting, or lowering the priority.
    pub fn failing(&self, track: usize) -> bool {
        self.faults(track) || self.state(track) == TrackState::Down || self.delta(track) < 0
    }

    /// The effective priority and fault of an instance configured with `priority` that names
    /// `tracks`.
    pub fn effective(&self, priority: u8, tracks: &[usize]) -> Effective {
        let fault = tracks.iter().any(|&t| self.faults(t));
        let sum: i64 = tracks.iter().map(|&t| i64::from(self.delta(t))).sum();
        let base = i64::from(priority);
        let priority = match sum {
            0 => priority,
            _ if priority == u8::MAX && sum > 0 => priority,
            // Bounded to 1..=254, so the narrowing is exact.
            _ => (base + sum).clamp(1, 254) as u8,
        };
        Effective { priority, fault }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(weight: i32, rise: u32, fall: u32) -> TrackParams {
        TrackParams {
            name: "t".into(),
            check: Check::Script,
            interval: Duration::from_secs(1),
            rise,
            fall,
            weight,
        }
    }

    #[test]
    fn a_script_is_not_due_again_while_it_runs() {
        let t0 = Instant::now();
        let mut tracks = Tracks::new(vec![script(-10, 1, 1)], t0);
        let mut due = Vec::new();
        tracks.due(t0, &mut due);
        assert_eq!(due, [0]);
        due.clear();
        tracks.due(t0 + Duration::from_secs(5), &mut due);
        assert!(due.is_empty());
        assert_eq!(tracks.next_deadline(), None);
        tracks.script_result(0, true, t0 + Duration::from_millis(300));
        assert_eq!(tracks.next_deadline(), Some(t0 + Duration::from_secs(1)));
    }
}
