//! Operator actions and the control socket's commands: `status`, `events [--follow]`,
//! `standby`, `takeover`, `maintenance on|off` and `switchover`. What the operator asked is
//! kept in [`OperatorState`]: maintenance (persisted under `state_dir` until turned off),
//! standby, and the instances and groups this node was switched away from. All of them hold
//! this node out: a VRRP master resigns and keeps its VIPs until the successor speaks
//! ([`crate::engine::vrrp::Input::HoldOut`]), a group is released in a planned move (its VIPs
//! linger until the next owner reports it). `takeover` lets go of standby and switchovers.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mio::Token;
use tracing::{info, warn};

use super::control::{self, ActionReply, OperatorStatus, Request, PROTOCOL_VERSION};
use super::events::Event;
use super::Daemon;
use crate::engine::group::GroupState;
use crate::engine::vrrp::{Input, State};

/// Name of the maintenance flag file under `state_dir`.
pub const MAINTENANCE_FILE: &str = "maintenance";

/// What the operator asked of this node.
#[derive(Debug, Default)]
pub struct OperatorState {
    pub maintenance: bool,
    pub standby: bool,
    /// Instances and groups (by name) switched away from this node.
    pub held_out: BTreeSet<String>,
    /// The maintenance flag file.
    flag: PathBuf,
}

impl OperatorState {
    /// The state at start: maintenance if the flag file exists in `state_dir`.
    pub fn load(state_dir: &Path) -> Self {
        let flag = state_dir.join(MAINTENANCE_FILE);
        let maintenance = flag.exists();
        if maintenance {
            warn!(
                "maintenance is on ({} exists): this node holds nothing until `relevo maintenance off`",
                flag.display()
            );
        }
        OperatorState {
            maintenance,
            standby: false,
            held_out: BTreeSet::new(),
            flag,
        }
    }

    /// Whether this node stays out of the instance or group `name`.
    pub fn holds_out(&self, name: &str) -> bool {
        self.maintenance || self.standby || self.held_out.contains(name)
    }

    pub fn status(&self) -> OperatorStatus {
        OperatorStatus {
            maintenance: self.maintenance,
            standby: self.standby,
            held_out: self.held_out.iter().cloned().collect(),
        }
    }

    /// Writes or removes the flag file (a small file on `state_dir`, a tmpfs by default).
    fn persist(&self) -> Result<(), String> {
        let result = if self.maintenance {
            std::fs::write(&self.flag, "on\n")
        } else {
            match std::fs::remove_file(&self.flag) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        };
        result.map_err(|e| format!("{}: {e}", self.flag.display()))
    }
}

/// What a command produced: one reply line, or the start of an event stream.
enum Answer {
    Reply(String),
    Follow(String),
}

impl Daemon {
    /// Answers one control request from `uid` on connection `token`.
    pub(super) fn control_command(&mut self, token: Token, line: &str, uid: u32, now: Instant) {
        let answer = match serde_json::from_str::<Request>(line) {
            Err(e) => Answer::Reply(control::error_reply(&format!("bad request: {e}"))),
            Ok(req) if req.version.is_some_and(|v| v > PROTOCOL_VERSION) => {
                Answer::Reply(control::error_reply(&format!(
                    "protocol version {} is newer than this daemon's ({PROTOCOL_VERSION})",
                    req.version.unwrap_or_default()
                )))
            }
            Ok(req) => self.answer(&req, uid, now),
        };
        let registry = self.poll.registry();
        if let Some(control) = self.control.as_mut() {
            match answer {
                Answer::Reply(reply) => control.reply(registry, token, now, reply),
                Answer::Follow(history) => control.follow(registry, token, history),
            }
        }
    }

    fn answer(&mut self, req: &Request, uid: u32, now: Instant) -> Answer {
        let acted = match req.command.as_str() {
            "status" => {
                return Answer::Reply(
                    serde_json::to_string(&self.status())
                        .unwrap_or_else(|e| control::error_reply(&e.to_string())),
                )
            }
            "events" => {
                let lines = self.events_lines(0);
                return if req.follow {
                    Answer::Follow(lines)
                } else {
                    Answer::Reply(
                        serde_json::json!({
                            "version": PROTOCOL_VERSION,
                            "events": self.events.all().collect::<Vec<_>>(),
                        })
                        .to_string(),
                    )
                };
            }
            "standby" | "maintenance" | "takeover" | "switchover" => {
                // The request first, so that the history shows the action before what it
                // causes.
                let mut event = Event::new("operator", None, describe(req)).code(&req.command);
                event.uid = Some(uid);
                self.events.record(event);
                self.act(req, now)
            }
            other => Err(format!("unknown command {other:?}")),
        };
        match acted {
            Ok(done) => {
                for line in &done {
                    let mut event = Event::new("operator", None, line.clone()).code(&req.command);
                    event.uid = Some(uid);
                    self.events.record(event);
                    info!("operator (uid {uid}): {line}");
                }
                let reply = ActionReply {
                    version: PROTOCOL_VERSION,
                    done,
                };
                Answer::Reply(
                    serde_json::to_string(&reply)
                        .unwrap_or_else(|e| control::error_reply(&e.to_string())),
                )
            }
            Err(why) => {
                warn!("operator (uid {uid}) {}: refused: {why}", req.command);
                let mut event =
                    Event::new("operator", None, format!("refused: {why}")).code(&req.command);
                event.uid = Some(uid);
                self.events.record(event);
                Answer::Reply(control::error_reply(&why))
            }
        }
    }

    fn act(&mut self, req: &Request, now: Instant) -> Result<Vec<String>, String> {
        match req.command.as_str() {
            "standby" => self.standby(now),
            "maintenance" => self.maintenance(req.scope.as_deref(), now),
            "takeover" => self.takeover(req, now),
            _ => self.switchover(req, now),
        }
    }

    /// Every event after `seq`, one JSON line each.
    pub(super) fn events_lines(&self, seq: u64) -> String {
        let mut out = String::new();
        for event in self.events.since(seq) {
            if let Ok(line) = serde_json::to_string(event) {
                out += &line;
                out.push('\n');
            }
        }
        out
    }

    /// Sends the events recorded since the last call to every `events --follow` client.
    pub(super) fn publish_events(&mut self) {
        let last = self.events.last_seq();
        if last == self.events_sent {
            return;
        }
        let followers = self.control.as_ref().is_some_and(|c| c.has_followers());
        if followers {
            let lines = self.events_lines(self.events_sent);
            if let Some(control) = self.control.as_mut() {
                control.broadcast(self.poll.registry(), &lines);
            }
        }
        self.events_sent = last;
    }

    fn standby(&mut self, now: Instant) -> Result<Vec<String>, String> {
        if self.operator.standby {
            return Ok(vec!["standby already on".to_string()]);
        }
        self.operator.standby = true;
        let mut done = vec!["standby on: releasing everything this node holds".to_string()];
        done.extend(self.apply_operator(now));
        Ok(done)
    }

    fn maintenance(&mut self, scope: Option<&str>, now: Instant) -> Result<Vec<String>, String> {
        let on = match scope {
            Some("on") => true,
            Some("off") => false,
            other => return Err(format!("maintenance needs on or off, not {other:?}")),
        };
        if self.operator.maintenance == on {
            return Ok(vec![format!(
                "maintenance already {}",
                if on { "on" } else { "off" }
            )]);
        }
        self.operator.maintenance = on;
        if let Err(e) = self.operator.persist() {
            self.operator.maintenance = !on;
            return Err(format!("cannot record maintenance: {e}"));
        }
        let mut done = vec![if on {
            "maintenance on: handing everything over, staying out until `relevo maintenance off` (kept across restarts)".to_string()
        } else {
            "maintenance off: competing again".to_string()
        }];
        done.extend(self.apply_operator(now));
        Ok(done)
    }

    fn takeover(&mut self, req: &Request, now: Instant) -> Result<Vec<String>, String> {
        let scope = req.scope.as_deref().unwrap_or("all");
        if !matches!(scope, "local" | "foreign" | "all" | "failback") {
            return Err(format!(
                "takeover scope must be local, foreign, all or failback, not {scope:?}"
            ));
        }
        if self.operator.maintenance {
            return Err("maintenance is on: `relevo maintenance off` first".to_string());
        }
        if let Some(why) = self.unhealthy() {
            if !req.force {
                return Err(format!(
                    "this node is not healthy: {why} (--force to take over anyway)"
                ));
            }
        }
        let me = self.node_name.clone();
        let in_scope = |preferred: Option<&str>| {
            let local = preferred == Some(me.as_str());
            match scope {
                "local" | "failback" => local,
                "foreign" => !local,
                _ => true,
            }
        };
        let mut names: Vec<String> = Vec::new();
        if matches!(scope, "all" | "local") {
            // VRRP instances have no preferred node: they are everybody's own.
            names.extend(self.instances.iter().map(|i| i.cfg.name.clone()));
        }
        if let Some(cluster) = &self.cluster {
            for group in &cluster.groups {
                if in_scope(group.cfg.nodes.first().map(String::as_str)) {
                    names.push(group.cfg.name.clone());
                }
            }
        }
        let was_standby = std::mem::take(&mut self.operator.standby);
        for name in &names {
            self.operator.held_out.remove(name);
        }
        let mut done = vec![format!(
            "takeover {scope}{}: this node competes again for {}",
            if was_standby { " (standby off)" } else { "" },
            if names.is_empty() {
                "nothing in that scope".to_string()
            } else {
                names.join(", ")
            }
        )];
        done.extend(self.apply_operator(now));
        if let Some(cluster) = &self.cluster {
            for group in &cluster.groups {
                if !names.contains(&group.cfg.name) || group.cfg.auto_failback {
                    continue;
                }
                if let Some(owner) = cluster.owner_of(group) {
                    if owner != cluster.me {
                        done.push(format!(
                            "group {} stays on {} (auto_failback = false): run `relevo switchover {}` there",
                            group.cfg.name,
                            super::cluster::node_name(&cluster.cfg, owner),
                            group.cfg.name
                        ));
                    }
                }
            }
        }
        Ok(done)
    }

    fn switchover(&mut self, req: &Request, now: Instant) -> Result<Vec<String>, String> {
        let name = req
            .name
            .as_deref()
            .ok_or("switchover needs an instance or group name")?;
        if let Some(inst) = self.instances.iter().find(|i| i.cfg.name == name) {
            if req.to.is_some() {
                return Err(format!(
                    "{name} is a VRRP instance: VRRP elects the highest-priority backup, --to applies to groups"
                ));
            }
            if inst.engine.state() != State::Master {
                return Err(format!(
                    "{name} is {} here, not MASTER: run the switchover on its master",
                    inst.engine.state().as_str()
                ));
            }
        } else if let Some(cluster) = &self.cluster {
            let Some(group) = cluster.groups.iter().find(|g| g.cfg.name == name) else {
                return Err(format!("no instance or group named {name:?}"));
            };
            if !matches!(
                group.engine.state(),
                GroupState::Held | GroupState::Acquiring
            ) {
                return Err(format!(
                    "group {name} is {} here: run the switchover on the node that holds it",
                    group.engine.state().as_str()
                ));
            }
            let next = cluster.next_owner(group);
            match (&req.to, next) {
                (_, None) if !req.force => {
                    return Err(format!(
                        "no other node of group {name} is alive and able to hold it (--force to release it anyway)"
                    ))
                }
                (Some(to), Some(next)) if *to != next => {
                    return Err(format!(
                        "group {name} would go to {next}, the first able node in its list after this one, not {to}"
                    ))
                }
                _ => {}
            }
        } else {
            return Err(format!("no instance or group named {name:?}"));
        }
        self.operator.held_out.insert(name.to_string());
        let mut done = vec![format!(
            "switchover {name}: handing it over, this node stays out of it until `relevo takeover`"
        )];
        done.extend(self.apply_operator(now));
        Ok(done)
    }

    /// Why this node should not take anything over, if it should not: no quorum, a fence
    /// pending.
    fn unhealthy(&self) -> Option<String> {
        let cluster = self.cluster.as_ref()?;
        if !cluster.membership.is_quorate() {
            return Some("its cluster partition has no quorum".to_string());
        }
        if cluster.fence_pending() {
            return Some("a fence is pending".to_string());
        }
        None
    }

    /// Feeds the operator state to every instance and group; what changed, in words.
    pub(super) fn apply_operator(&mut self, now: Instant) -> Vec<String> {
        let mut done = Vec::new();
        for i in 0..self.instances.len() {
            let name = self.instances[i].cfg.name.clone();
            let hold = self.operator.holds_out(&name);
            if self.instances[i].engine.held_out() != hold {
                let state = self.instances[i].engine.state();
                self.feed(i, Input::HoldOut(hold), now);
                done.push(match (hold, state) {
                    (true, State::Master) => format!(
                        "instance {name}: resigned (priority 0), VIPs kept until the next master speaks"
                    ),
                    (true, _) => format!("instance {name}: will not take over"),
                    (false, _) => format!("instance {name}: competes again"),
                });
            }
        }
        let mut changed = false;
        if let Some(cluster) = self.cluster.as_mut() {
            for group in &mut cluster.groups {
                let hold = self.operator.holds_out(&group.cfg.name);
                if group.held_out != hold {
                    group.held_out = hold;
                    changed = true;
                    let holds = matches!(
                        group.engine.state(),
                        GroupState::Held | GroupState::Acquiring
                    );
                    done.push(if hold && holds {
                        format!(
                            "group {}: released to the next node (VIPs kept until it holds the group)",
                            group.cfg.name
                        )
                    } else if hold {
                        format!("group {}: will not be held here", group.cfg.name)
                    } else {
                        format!("group {}: may be held here again", group.cfg.name)
                    });
                }
            }
        }
        if changed {
            self.update_groups(now);
        }
        done
    }
}

/// The request in the CLI's words ("maintenance on", "switchover db --to n2").
fn describe(req: &Request) -> String {
    let mut words = req.command.clone();
    for part in [req.scope.as_deref(), req.name.as_deref()]
        .into_iter()
        .flatten()
    {
        words.push(' ');
        words += part;
    }
    if let Some(to) = &req.to {
        words += &format!(" --to {to}");
    }
    if req.force {
        words += " --force";
    }
    words
}
