//! The event history: every state transition (VRRP instances, groups, cluster membership and
//! quorum, fencing), hook run, restored VIP and operator action, each with a sequence number,
//! a wall-clock time and a reason in words. A bounded ring of the last [`HISTORY`] events,
//! served by `relevo events` and streamed in order to `relevo events --follow` clients (the
//! control socket sends what [`EventLog::since`] returns after each loop turn). The log
//! (journal) has the same lines; this is the ordered, machine-readable copy.
use std::collections::VecDeque;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Events kept in memory.
pub const HISTORY: usize = 1000;

/// One entry of the history (one JSON line on the control socket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Increasing from 1 since the daemon started, without gaps.
    pub seq: u64,
    /// RFC 3339, UTC, microseconds.
    pub time: String,
    /// What happened: `vrrp`, `group`, `node`, `quorum`, `fence`, `hook`, `vip`, `operator`,
    /// `config`.
    pub kind: String,
    /// The instance, group, node or hook it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Why, in words ("no advert from 192.0.2.1 for 3.6s", "quorum lost: 1 of 3 nodes").
    pub reason: String,
    /// A stable code for scripts (`master-down`, `quorum-lost`, ...), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Hooks: the exit status (absent when killed or not started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Hooks: how long it ran, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Operator actions: who asked (the control client's uid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

impl Event {
    /// An event of `kind` about `name` (sequence and time are set when recorded).
    pub fn new(kind: &str, name: Option<&str>, reason: impl Into<String>) -> Self {
        Event {
            seq: 0,
            time: String::new(),
            kind: kind.to_string(),
            name: name.map(str::to_string),
            from: None,
            to: None,
            reason: reason.into(),
            code: None,
            exit_code: None,
            duration_ms: None,
            uid: None,
        }
    }

    /// With the states it went from and to.
    pub fn between(mut self, from: &str, to: &str) -> Self {
        self.from = Some(from.to_string());
        self.to = Some(to.to_string());
        self
    }

    /// With a stable code.
    pub fn code(mut self, code: &str) -> Self {
        self.code = Some(code.to_string());
        self
    }

    /// One line of text: `time kind name from -> to: reason`.
    pub fn to_text(&self) -> String {
        let mut line = format!("{} {:<8}", self.time, self.kind);
        if let Some(name) = &self.name {
            line += &format!(" {name}");
        }
        if let (Some(from), Some(to)) = (&self.from, &self.to) {
            line += &format!(" {from} -> {to}");
        }
        line += &format!(": {}", self.reason);
        if let Some(uid) = self.uid {
            line += &format!(" (uid {uid})");
        }
        line
    }
}

/// The bounded history.
#[derive(Debug, Default)]
pub struct EventLog {
    entries: VecDeque<Event>,
    last_seq: u64,
}

impl EventLog {
    /// Records `event` now; returns its sequence number.
    pub fn record(&mut self, mut event: Event) -> u64 {
        self.last_seq += 1;
        event.seq = self.last_seq;
        event.time = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
        if self.entries.len() == HISTORY {
            self.entries.pop_front();
        }
        self.entries.push_back(event);
        self.last_seq
    }

    /// The sequence number of the newest event (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The events still kept whose sequence number is above `seq`, oldest first.
    pub fn since(&self, seq: u64) -> impl Iterator<Item = &Event> {
        let first = self.entries.front().map_or(0, |e| e.seq);
        let skip = usize::try_from(seq.saturating_sub(first.saturating_sub(1))).unwrap_or(0);
        self.entries.iter().skip(skip)
    }

    /// Every event kept, oldest first.
    pub fn all(&self) -> impl Iterator<Item = &Event> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_count_up_and_the_ring_keeps_the_newest() {
        let mut log = EventLog::default();
        for i in 0..(HISTORY + 5) {
            log.record(Event::new("vrrp", Some("web"), format!("event {i}")));
        }
        assert_eq!(log.last_seq(), (HISTORY + 5) as u64);
        let all: Vec<u64> = log.all().map(|e| e.seq).collect();
        assert_eq!(all.len(), HISTORY);
        assert_eq!(all[0], 6);
        let newer: Vec<u64> = log.since((HISTORY + 2) as u64).map(|e| e.seq).collect();
        assert_eq!(
            newer,
            [
                (HISTORY + 3) as u64,
                (HISTORY + 4) as u64,
                (HISTORY + 5) as u64
            ]
        );
        // Asked from before the oldest kept: everything kept.
        assert_eq!(log.since(0).count(), HISTORY);
        assert_eq!(log.since(log.last_seq()).count(), 0);
    }

    #[test]
    fn events_serialize_without_empty_fields_and_read_back() {
        let mut log = EventLog::default();
        log.record(
            Event::new("vrrp", Some("web"), "no advert from 192.0.2.1 for 3.6s")
                .between("BACKUP", "MASTER")
                .code("master-down"),
        );
        let event = log.all().next().unwrap().clone();
        let line = serde_json::to_string(&event).unwrap();
        assert!(
            !line.contains("uid") && !line.contains("exit_code"),
            "{line}"
        );
        assert!(
            event.time.ends_with('Z') && event.time.contains('T'),
            "{}",
            event.time
        );
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
        assert!(event
            .to_text()
            .ends_with("vrrp     web BACKUP -> MASTER: no advert from 192.0.2.1 for 3.6s"));
    }
}
