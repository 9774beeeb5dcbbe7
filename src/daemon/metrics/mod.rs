//! `[metrics]`: the Prometheus endpoint (`/metrics`) and the read-only HTML status page (`/`).
//!
//! The event loop never serves HTTP. Every [`PUBLISH_EVERY`] it builds a [`Snapshot`] (the
//! `relevo status` reply, the last events, and counters tallied from the event history) and
//! swaps it into a shared `Arc` under a mutex held only for the pointer swap; the server
//! thread ([`http`]) renders each response from the snapshot it finds there. Nothing is
//! published without `[metrics]`.
mod exposition;
mod http;
mod page;
mod tally;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;

use super::control::Status;
use super::events::{Event, EventLog};
pub use exposition::render as render_metrics;
pub use page::render as render_page;
pub use tally::Tally;

/// How often the loop publishes a snapshot.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// Events the status page shows (newest first).
pub const RECENT_EVENTS: usize = 20;

/// What the server renders: one consistent view of the daemon.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: Status,
    /// The last [`RECENT_EVENTS`] events, oldest first.
    pub events: Vec<Event>,
    /// Transitions, fence attempts and results, hook runs since start.
    pub tally: Tally,
    /// When the loop published it.
    pub taken: SystemTime,
}

/// The slot the loop publishes into and the server reads from.
pub type Shared = Arc<Mutex<Option<Arc<Snapshot>>>>;

/// The loop's side: the tally and the shared slot.
pub struct Publisher {
    shared: Shared,
    tally: Tally,
}

impl Publisher {
    /// Binds `listen` and starts the server thread.
    pub fn start(listen: SocketAddr) -> anyhow::Result<Self> {
        let shared: Shared = Arc::default();
        http::start(listen, shared.clone())
            .with_context(|| format!("starting the [metrics] listener on {listen}"))?;
        Ok(Publisher {
            shared,
            tally: Tally::default(),
        })
    }

    /// Tallies the events recorded since the last call and publishes `status` with them.
    pub fn publish(&mut self, status: Status, events: &EventLog) {
        self.tally.add(events);
        let recent = events.last_seq().saturating_sub(RECENT_EVENTS as u64);
        let snapshot = Arc::new(Snapshot {
            status,
            events: events.since(recent).cloned().collect(),
            tally: self.tally.clone(),
            taken: SystemTime::now(),
        });
        let mut slot = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(snapshot);
    }
}

/// The current snapshot, if the loop published one yet.
fn current(shared: &Shared) -> Option<Arc<Snapshot>> {
    shared.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A snapshot of node `node` with instance "web" (MASTER) and a two-node cluster whose
    /// group "db" this node holds.
    pub fn snapshot(node: &str) -> Snapshot {
        let status = serde_json::json!({
            "node": node,
            "instances": [{
                "name": "web", "interface": "eth0", "vrid": 9, "version": 3, "priority": 100,
                "effective_priority": 90, "state": "MASTER", "master": null,
                "vips": ["192.0.2.10/24"], "advert_interval_ms": 1000,
                "master_down_interval_ms": 3609,
                "counters": {"adverts_sent": 5, "adverts_received": 2, "bad_ttl": 1, "send_failed": 3}
            }],
            "cluster": {
                "id": 7, "quorate": true, "votes": 2, "needed": 2, "partition": [node, "n2"],
                "members": [{"name": "n2", "alive": true, "links": ["up", "late"],
                             "last_heard_ms": [10, null]}],
                "groups": [{"name": "db", "state": "held", "reason": "started", "owner": node,
                            "failed_starts": 0, "vip_status": []}],
                "heartbeats_sent": 40, "heartbeats_received": 38, "dropped": {"replay": 1}
            }
        });
        let mut events = EventLog::default();
        let event =
            Event::new("vrrp", Some("web"), "no advert <for> 3s").between("BACKUP", "MASTER");
        events.record(event);
        let mut tally = Tally::default();
        tally.add(&events);
        Snapshot {
            status: serde_json::from_value(status).expect("a valid status"),
            events: events.all().cloned().collect(),
            tally,
            taken: SystemTime::now(),
        }
    }
}
