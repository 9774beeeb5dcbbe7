//! What a reload changes: the difference between the running config and a new one, by
//! instance name. Unchanged instances are left alone; an instance whose priority, preemption,
//! hooks or announcement schedule changed is updated in place; new instances start and
//! removed ones release gracefully. What cannot change without a restart (`[node]`, the
//! cluster, its groups and fence devices, the tracks, and an existing instance's interface,
//! VRID, version, VIPs, timers, addressing or track list) makes the whole reload refused:
//! nothing is applied.
use super::types::{Config, VrrpConfig};

/// The difference between two valid configs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    pub unchanged: Vec<String>,
    /// Instances updated in place, with the keys that changed.
    pub changed: Vec<(String, Vec<&'static str>)>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Why the reload needs a restart instead (empty when it can be applied).
    pub needs_restart: Vec<String>,
}

/// Keys of an instance a reload applies in place.
const IN_PLACE: [&str; 5] = ["priority", "preempt", "preempt_delay", "hooks", "garp_*"];

impl ConfigDiff {
    /// Compares the running config `old` with `new`.
    pub fn between(old: &Config, new: &Config) -> Self {
        let mut diff = ConfigDiff::default();
        if old.node != new.node {
            diff.needs_restart.push("[node] changed".to_string());
        }
        if old.metrics != new.metrics {
            diff.needs_restart.push("[metrics] changed".to_string());
        }
        if old.tracks != new.tracks {
            diff.needs_restart
                .push("[[track]] changed: tracks are reloaded by a restart".to_string());
        }
        if old.cluster != new.cluster
            || old.groups != new.groups
            || old.fence_devices != new.fence_devices
        {
            diff.needs_restart.push(
                "[cluster], [[group]] or [[fence]] changed: cluster mode is reloaded by a restart"
                    .to_string(),
            );
        }
        for instance in &old.vrrp {
            match new.vrrp.iter().find(|n| n.name == instance.name) {
                None => diff.removed.push(instance.name.clone()),
                Some(updated) if updated == instance => diff.unchanged.push(instance.name.clone()),
                Some(updated) => match in_place_changes(instance, updated) {
                    Ok(keys) => diff.changed.push((instance.name.clone(), keys)),
                    Err(key) => diff.needs_restart.push(format!(
                        "instance {}: {key} changed (only {} change in place; give it a new name to replace it)",
                        instance.name,
                        IN_PLACE.join(", ")
                    )),
                },
            }
        }
        for instance in &new.vrrp {
            if !old.vrrp.iter().any(|o| o.name == instance.name) {
                diff.added.push(instance.name.clone());
            }
        }
        // A new instance may not take over the VIPs of one that is still releasing them.
        for name in &diff.added {
            let Some(added) = new.vrrp.iter().find(|n| n.name == *name) else {
                continue;
            };
            for removed in old.vrrp.iter().filter(|o| diff.removed.contains(&o.name)) {
                if added.vips.iter().any(|v| removed.vips.contains(v)) {
                    diff.needs_restart.push(format!(
                        "instance {name} takes over VIPs of removed instance {}: remove it in one reload, add the new one in the next",
                        removed.name
                    ));
                }
            }
        }
        diff
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.needs_restart.is_empty()
    }

    /// The difference in words, one line per item.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (name, keys) in &self.changed {
            lines.push(format!(
                "instance {name}: {} updated in place",
                keys.join(", ")
            ));
        }
        for name in &self.added {
            lines.push(format!("instance {name}: added, starts"));
        }
        for name in &self.removed {
            lines.push(format!("instance {name}: removed, releases gracefully"));
        }
        if !self.unchanged.is_empty() {
            lines.push(format!("unchanged: {}", self.unchanged.join(", ")));
        }
        for why in &self.needs_restart {
            lines.push(format!("needs a restart: {why}"));
        }
        if self.is_empty() {
            lines.push("no change".to_string());
        }
        lines
    }
}

/// The in-place keys that differ, or the first key that cannot change in place.
fn in_place_changes(old: &VrrpConfig, new: &VrrpConfig) -> Result<Vec<&'static str>, &'static str> {
    // Everything but the in-place keys must be equal: compare with those copied over.
    let mut same = new.clone();
    same.priority = old.priority;
    same.preempt = old.preempt;
    same.preempt_delay = old.preempt_delay;
    same.hooks = old.hooks.clone();
    same.hook_timeout = old.hook_timeout;
    same.announce = old.announce;
    if same != *old {
        return Err(first_structural_difference(old, new));
    }
    let mut keys = Vec::new();
    if old.priority != new.priority {
        keys.push("priority");
    }
    if old.preempt != new.preempt {
        keys.push("preempt");
    }
    if old.preempt_delay != new.preempt_delay {
        keys.push("preempt_delay");
    }
    if old.hooks != new.hooks || old.hook_timeout != new.hook_timeout {
        keys.push("hooks");
    }
    if old.announce != new.announce {
        keys.push("garp_*");
    }
    Ok(keys)
}

fn first_structural_difference(old: &VrrpConfig, new: &VrrpConfig) -> &'static str {
    if old.interface != new.interface {
        "interface"
    } else if old.vrid != new.vrid {
        "vrid"
    } else if old.version != new.version {
        "version"
    } else if old.advert_interval != new.advert_interval {
        "advert_interval"
    } else if old.vips != new.vips {
        "vips"
    } else if old.unicast_peers != new.unicast_peers {
        "unicast_peers"
    } else if old.source_address != new.source_address {
        "source_address"
    } else if old.vmac_interface != new.vmac_interface {
        "vmac_interface"
    } else if old.vip_lease != new.vip_lease {
        "vip_lease"
    } else if old.quorum_gated != new.quorum_gated {
        "quorum_gated"
    } else if old.auth_pass != new.auth_pass {
        "auth_pass"
    } else if old.track != new.track {
        "track"
    } else {
        "v3_ipv4_checksum"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        crate::config::parse(text, std::path::Path::new("test.toml"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    const WEB: &str = "[[vrrp]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\npriority = 150\nvips = [\"192.0.2.100/24\"]\n";
    const DB: &str = "[[vrrp]]\nname = \"db\"\ninterface = \"eth0\"\nvrid = 52\npriority = 100\nvips = [\"192.0.2.101/24\"]\n";

    #[test]
    fn unchanged_changed_added_and_removed_instances_are_told_apart() {
        let old = config(&format!("{WEB}{DB}"));
        assert!(ConfigDiff::between(&old, &old).is_empty());
        let new = config(&format!(
            "{}{}",
            WEB.replace("priority = 150", "priority = 120\npreempt = false"),
            DB.replace("\"db\"", "\"db2\"")
        ));
        let diff = ConfigDiff::between(&old, &new);
        assert_eq!(
            diff.changed,
            [("web".to_string(), vec!["priority", "preempt"])]
        );
        assert_eq!(diff.added, ["db2"]);
        assert_eq!(diff.removed, ["db"]);
        // db2 takes db's VIP while db still releases it: refused.
        assert_eq!(diff.needs_restart.len(), 1, "{diff:?}");
        assert!(diff.needs_restart[0].contains("db2 takes over VIPs of removed instance db"));
    }

    #[test]
    fn a_metrics_change_needs_a_restart() {
        let old = config(WEB);
        let new = config(&format!("{WEB}[metrics]\nlisten = \"127.0.0.1:9694\"\n"));
        let diff = ConfigDiff::between(&old, &new);
        assert_eq!(diff.needs_restart, ["[metrics] changed"]);
    }

    #[test]
    fn a_structural_change_needs_a_restart_and_says_which_key() {
        let old = config(WEB);
        let new = config(&WEB.replace("vrid = 51", "vrid = 61"));
        let diff = ConfigDiff::between(&old, &new);
        assert!(diff.changed.is_empty());
        assert_eq!(diff.needs_restart.len(), 1);
        assert!(
            diff.needs_restart[0].starts_with("instance web: vrid changed"),
            "{diff:?}"
        );
        let lines = diff.describe();
        assert!(lines
            .iter()
            .any(|l| l.starts_with("needs a restart: instance web: vrid")));
    }
}
