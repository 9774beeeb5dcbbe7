//! Counters the status reply does not carry, tallied from the event history as the loop
//! publishes: state transitions, fence attempts and results, hook runs, failures and time.
use std::collections::BTreeMap;

use crate::daemon::events::{Event, EventLog};

/// One hook's runs since start (keyed by its `instance/event` label).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HookTally {
    pub runs: u64,
    /// Runs that did not exit 0 (failed, killed, timed out, refused, not started).
    pub failures: u64,
    pub seconds: f64,
}

/// See the module documentation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// (kind, name, new state) → transitions, for `vrrp`, `group`, `node` and `quorum` events.
    pub transitions: BTreeMap<(String, String, String), u64>,
    /// Node → fence attempts started.
    pub fence_attempts: BTreeMap<String, u64>,
    /// (node, "fenced" or "failed") → results.
    pub fence_results: BTreeMap<(String, String), u64>,
    pub hooks: BTreeMap<String, HookTally>,
    /// Events that left the history before they were tallied (never, unless more than the
    /// history's length happened within one publishing interval).
    pub missed: u64,
    /// The last event tallied.
    seen: u64,
}

impl Tally {
    /// Tallies the events recorded since the last call.
    pub fn add(&mut self, log: &EventLog) {
        let mut next = self.seen + 1;
        for event in log.since(self.seen) {
            self.missed += event.seq.saturating_sub(next);
            self.count(event);
            next = event.seq + 1;
        }
        self.seen = log.last_seq();
    }

    fn count(&mut self, event: &Event) {
        let name = event.name.clone().unwrap_or_default();
        match (event.kind.as_str(), event.code.as_deref()) {
            ("fence", Some("fencing")) => *self.fence_attempts.entry(name).or_default() += 1,
            ("fence", Some("fenced")) => {
                *self
                    .fence_results
                    .entry((name, "fenced".into()))
                    .or_default() += 1
            }
            ("fence", Some("fence-failed")) => {
                *self
                    .fence_results
                    .entry((name, "failed".into()))
                    .or_default() += 1
            }
            ("hook", _) => {
                let hook = self.hooks.entry(name).or_default();
                hook.runs += 1;
                if event.exit_code != Some(0) {
                    hook.failures += 1;
                }
                hook.seconds += event.duration_ms.unwrap_or(0) as f64 / 1000.0;
            }
            (kind @ ("vrrp" | "group" | "node" | "quorum"), code) => {
                let to = event.to.clone().or_else(|| code.map(str::to_string));
                if let Some(to) = to {
                    let key = (kind.to_string(), name, to);
                    *self.transitions.entry(key).or_default() += 1;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_each_event_once() {
        let mut log = EventLog::default();
        let mut tally = Tally::default();
        log.record(Event::new("vrrp", Some("web"), "x").between("BACKUP", "MASTER"));
        log.record(Event::new("fence", Some("b"), "x").code("fencing"));
        log.record(Event::new("fence", Some("b"), "x").code("fence-failed"));
        let mut hook = Event::new("hook", Some("web/master"), "failed: exit 1").code("master");
        hook.exit_code = Some(1);
        hook.duration_ms = Some(250);
        log.record(hook);
        tally.add(&log);
        tally.add(&log);
        let key = ("vrrp".to_string(), "web".to_string(), "MASTER".to_string());
        assert_eq!(tally.transitions[&key], 1);
        assert_eq!(tally.fence_attempts["b"], 1);
        assert_eq!(tally.fence_results[&("b".into(), "failed".into())], 1);
        let hook = &tally.hooks["web/master"];
        assert_eq!((hook.runs, hook.failures, hook.seconds), (1, 1, 0.25));
        assert_eq!(tally.missed, 0);
    }
}
