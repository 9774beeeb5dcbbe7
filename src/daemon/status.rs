//! What the daemon reports: the `relevo status` reply (instances, VIPs, loop timing,
//! counters, operator state) and the counters logged at exit.
use tracing::info;

use super::control::{self, InstanceStatus, Status, PROTOCOL_VERSION};
use super::vip::VipOwner;
use super::Daemon;

impl Daemon {
    pub(super) fn status(&self) -> Status {
        let instances = self
            .instances
            .iter()
            .enumerate()
            .filter(|(_, inst)| !inst.removed)
            .map(|(i, inst)| {
                let vip_status = self.vips.status(VipOwner::Instance(i), &self.interfaces);
                let mut counters = inst.counters();
                let restored: u64 = vip_status.iter().map(|v| v.restored).sum();
                if restored > 0 {
                    counters.insert("vips_restored".to_string(), restored);
                }
                InstanceStatus {
                    name: inst.cfg.name.clone(),
                    interface: inst.cfg.interface.clone(),
                    vrid: inst.cfg.vrid,
                    version: match inst.cfg.version {
                        crate::wire::VrrpVersion::V2 => 2,
                        crate::wire::VrrpVersion::V3 => 3,
                    },
                    priority: inst.cfg.priority,
                    state: inst.engine.state().as_str().to_string(),
                    master: inst.engine.current_master().map(|(ip, _)| ip.to_string()),
                    vips: inst.cfg.vips.iter().map(|v| v.to_string()).collect(),
                    advert_interval_ms: inst.cfg.advert_interval.as_millis() as u64,
                    master_down_interval_ms: inst.engine.master_down_interval().as_millis() as u64,
                    counters,
                    source_address: inst.engine.primary_address().map(|a| a.to_string()),
                    reason: inst
                        .engine
                        .last_reason()
                        .map(|r| r.code().to_string())
                        .unwrap_or_default(),
                    vip_status,
                    effective_priority: inst.engine.params().priority,
                    tracks: self.tracks.instance_status(i),
                }
            })
            .collect();
        Status {
            version: PROTOCOL_VERSION,
            node: self.node_name.clone(),
            operator: self.operator.status(),
            instances,
            loop_stats: self.loop_stats.status(),
            hooks_refused: self.hooks.refused(),
            log_lines_dropped: crate::logging::dropped_lines(),
            control_refused: self.control.as_ref().map_or(0, |c| c.refused()),
            cluster: self.cluster_status(),
        }
    }

    fn cluster_status(&self) -> Option<control::ClusterStatus> {
        let c = self.cluster.as_ref()?;
        let now = std::time::Instant::now();
        let name = |id: u8| {
            usize::from(id)
                .checked_sub(1)
                .and_then(|i| c.cfg.nodes.get(i))
                .map_or_else(|| format!("#{id}"), |n| n.name.clone())
        };
        let links = c.cfg.nodes[c.cfg.me].links.len();
        let members = (1..=c.cfg.nodes.len() as u8)
            .filter(|&id| id != c.me)
            .map(|id| control::MemberStatus {
                name: name(id),
                alive: c.membership.is_alive(id),
                links: (0..links)
                    .map(|l| {
                        c.membership
                            .link_health(id, l)
                            .map_or("unknown", |h| h.as_str())
                            .to_string()
                    })
                    .collect(),
                last_heard_ms: (0..links)
                    .map(|l| {
                        c.membership
                            .last_heard(id, l)
                            .map(|t| now.saturating_duration_since(t).as_millis() as u64)
                    })
                    .collect(),
                fence: c.fencer.state(id).map(|s| s.as_str().to_string()),
                fence_error: c.fence_errors.get(&id).cloned(),
            })
            .collect();
        let groups = c
            .groups
            .iter()
            .enumerate()
            .map(|(g, group)| control::GroupStatus {
                name: group.cfg.name.clone(),
                state: group.engine.state().as_str().to_string(),
                reason: group
                    .last_reason
                    .map(|r| r.code().to_string())
                    .unwrap_or_default(),
                owner: c.holder_of(g).map(name),
                failed_starts: group.engine.failures(),
                vip_status: self.vips.status(VipOwner::Group(g), &self.interfaces),
                failing_tracks: self.tracks.failing_group_tracks(g),
            })
            .collect();
        Some(control::ClusterStatus {
            id: c.cfg.id,
            quorate: c.membership.is_quorate(),
            votes: c.membership.partition().len(),
            needed: c.membership.params().votes_needed(),
            partition: c
                .membership
                .partition()
                .iter()
                .map(|&id| name(id))
                .collect(),
            members,
            groups,
            heartbeats_sent: c.sent,
            heartbeats_received: c.received,
            dropped: c.drops.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        })
    }

    pub(super) fn log_counters(&self) {
        for inst in &self.instances {
            let c = inst.counters_summary();
            if !c.is_empty() {
                info!(instance = %inst.cfg.name, "packet counters: {c}");
            }
        }
    }
}
