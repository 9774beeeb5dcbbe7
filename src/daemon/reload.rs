//! Live reload (`relevo reload [--check]` and SIGHUP): the config file is read and validated
//! again; an invalid one is reported (with its line and column) and the running config stays.
//! A valid one is applied as a [`ConfigDiff`]: unchanged instances are not touched (their
//! state, VIPs and sockets stay), changed ones are updated in place, removed ones release
//! gracefully (a master resigns and keeps its VIPs until its successor speaks, and the stop
//! hook runs) and new ones start. A diff that needs a restart is refused as a whole.
use std::time::Instant;

use tracing::{info, warn};

use super::events::Event;
use super::instance::InstanceRt;
use super::vip::VipOwner;
use super::Daemon;
use crate::config::ConfigDiff;
use crate::engine::vrrp::Input;

impl Daemon {
    /// Reloads the config file (`check`: only says what would change). `Ok` lists the
    /// changes in words; `Err` says why nothing was applied.
    pub(super) fn reload(&mut self, check: bool, now: Instant) -> Result<Vec<String>, String> {
        // Reading and validating a local config file is quick; the key and password files it
        // names are read too, as at start.
        let new = crate::config::load(&self.config.path).map_err(|e| {
            format!(
                "the running configuration is kept: {}",
                e.to_string().trim_end()
            )
        })?;
        let diff = ConfigDiff::between(&self.config, &new);
        let lines = diff.describe();
        if check {
            return Ok(lines);
        }
        if !diff.needs_restart.is_empty() {
            return Err(format!(
                "nothing applied, the running configuration is kept: {}",
                diff.needs_restart.join("; ")
            ));
        }
        self.notify.reloading();
        for (name, _) in &diff.changed {
            let (Some(i), Some(cfg)) = (
                self.live_instance(name),
                new.vrrp.iter().find(|c| c.name == *name),
            ) else {
                continue;
            };
            let params = InstanceRt::engine_params(cfg);
            self.instances[i].engine.reconfigure(&params);
            self.instances[i].cfg = cfg.clone();
            // The tracks' deltas apply to the new configured priority.
            let effective = self.tracks.effective(i, cfg.priority);
            self.tracks.applied[i].priority = effective.priority;
            self.feed(i, Input::SetPriority(effective.priority), now);
        }
        for name in &diff.removed {
            if let Some(i) = self.live_instance(name) {
                info!(instance = %name, "removed by a reload: releasing");
                self.instances[i].removed = true;
                self.feed(i, Input::Shutdown, now);
            }
        }
        for name in &diff.added {
            let Some(cfg) = new.vrrp.iter().find(|c| c.name == *name) else {
                continue;
            };
            let i = self.instances.len();
            self.instances.push(InstanceRt::new(cfg.clone()));
            self.tracks.add_instance(cfg);
            let lease = Some(cfg.vip_lease).filter(|lease| !lease.is_zero());
            self.vips
                .register(VipOwner::Instance(i), cfg.vip_interface(), &cfg.vips, lease);
            self.all_vip_addrs.extend(cfg.vips.iter().map(|v| v.addr));
            self.start_instance(i, now);
        }
        self.schedule_vips();
        self.config = new;
        self.apply_tracks(now);
        self.notify.ready();
        Ok(lines)
    }

    /// The index of the instance named `name` that a reload has not removed.
    fn live_instance(&self, name: &str) -> Option<usize> {
        self.instances
            .iter()
            .position(|inst| inst.cfg.name == name && !inst.removed)
    }

    /// SIGHUP: reload, with the outcome in the log and the event history.
    pub(super) fn reload_on_signal(&mut self, now: Instant) {
        let outcome = self.reload(false, now);
        self.record_reload("SIGHUP", &outcome);
    }

    /// Logs a reload's outcome and records it as a `config` event.
    pub(super) fn record_reload(&mut self, asked_by: &str, outcome: &Result<Vec<String>, String>) {
        let reason = match outcome {
            Ok(lines) => {
                info!("reload ({asked_by}): {}", lines.join("; "));
                format!("reloaded ({asked_by}): {}", lines.join("; "))
            }
            Err(why) => {
                warn!("reload ({asked_by}) refused: {why}");
                format!("reload refused ({asked_by}): {why}")
            }
        };
        self.events
            .record(Event::new("config", None, reason).code("reload"));
    }
}
