//! The Prometheus text exposition format (version 0.0.4) of a [`Snapshot`].
//!
//! Hand-encoded rather than through `prometheus-client`: that crate keeps live metric objects
//! that code updates in place, while here every value already sits in the snapshot the loop
//! published, so a scrape would rebuild a registry of throw-away atomics just to print it.
//! The format is small (`# HELP`, `# TYPE`, `name{label="value"} number` lines, three escapes)
//! and the tests parse every line this module writes.
use std::fmt::Write;

use super::Snapshot;

/// The Content-Type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Instance counters that are not drops of received adverts.
const TX_ERRORS: &[&str] = &["no_source_address", "send_failed", "announce_failed"];
const INSTANCE_STATES: &[&str] = &["INIT", "BACKUP", "MASTER", "FAULT"];
const GROUP_STATES: &[&str] = &["released", "acquiring", "held", "releasing", "failed"];
const LINK_HEALTH: &[&str] = &["up", "late", "down", "unknown"];

/// Metric families being written: each family's HELP and TYPE once, then its samples.
struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let value = value
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.text, "{key}=\"{value}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// A family with a single unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// One sample per state of `states` (plus `current` if unknown): 1 for `current`.
    fn state_set(&mut self, name: &str, label: (&str, &str), states: &[&str], current: &str) {
        let unknown = (!states.contains(&current)).then_some(current);
        for state in states.iter().copied().chain(unknown) {
            let value = f64::from(u8::from(state == current));
            self.sample(name, &[label, ("state", state)], value);
        }
    }
}

fn flag(on: bool) -> f64 {
    f64::from(u8::from(on))
}

/// The whole `/metrics` text.
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = Out {
        text: String::new(),
    };
    let status = &snapshot.status;
    out.family("relevo_info", "gauge", "This node's name (value 1).");
    out.sample("relevo_info", &[("node", &status.node)], 1.0);
    instances(&mut out, snapshot);
    cluster(&mut out, snapshot);
    tallied(&mut out, snapshot);
    let o = &status.operator;
    let m = "relevo_operator_maintenance";
    out.single(
        m,
        "gauge",
        "1 while the node is in maintenance.",
        flag(o.maintenance),
    );
    let m = "relevo_operator_standby";
    out.single(
        m,
        "gauge",
        "1 while the node is on standby.",
        flag(o.standby),
    );
    let l = &status.loop_stats;
    out.family(
        "relevo_loop_timer_lateness_seconds",
        "gauge",
        "How late the event loop fired its timers since start (p50, p99, p999, max).",
    );
    for (stat, us) in [
        ("p50", l.timer_lateness_p50_us),
        ("p99", l.timer_lateness_p99_us),
        ("p999", l.timer_lateness_p999_us),
        ("max", l.timer_lateness_worst_us),
    ] {
        let seconds = us as f64 / 1e6;
        out.sample(
            "relevo_loop_timer_lateness_seconds",
            &[("stat", stat)],
            seconds,
        );
    }
    for (name, help, value) in [
        (
            "relevo_loop_timers_fired_total",
            "Timers the event loop fired.",
            l.timers_fired,
        ),
        (
            "relevo_loop_stalls_total",
            "Loop turns that woke more than 5 ms late.",
            l.stalls,
        ),
        (
            "relevo_loop_budget_exhausted_total",
            "Socket reads stopped at the per-turn budget with datagrams left.",
            l.budget_exhausted,
        ),
        (
            "relevo_hooks_refused_total",
            "Hooks refused by hook_security.",
            status.hooks_refused,
        ),
        (
            "relevo_log_lines_dropped_total",
            "Log lines dropped because standard error did not keep up.",
            status.log_lines_dropped,
        ),
        (
            "relevo_control_refused_total",
            "Control socket connections refused.",
            status.control_refused,
        ),
    ] {
        out.single(name, "counter", help, value as f64);
    }
    let age = snapshot.taken.elapsed().unwrap_or_default().as_secs_f64();
    let m = "relevo_snapshot_age_seconds";
    out.single(m, "gauge", "Age of the snapshot this scrape shows.", age);
    out.text
}

fn instances(out: &mut Out, snapshot: &Snapshot) {
    let list = &snapshot.status.instances;
    out.family(
        "relevo_instance_state",
        "gauge",
        "VRRP instance state (1 for the current one).",
    );
    for i in list {
        out.state_set(
            "relevo_instance_state",
            ("instance", &i.name),
            INSTANCE_STATES,
            &i.state,
        );
    }
    let m = "relevo_instance_priority";
    out.family(m, "gauge", "Configured priority.");
    for i in list {
        out.sample(m, &[("instance", &i.name)], f64::from(i.priority));
    }
    let m = "relevo_instance_effective_priority";
    out.family(m, "gauge", "Priority advertised (after tracks).");
    for i in list {
        out.sample(m, &[("instance", &i.name)], f64::from(i.effective_priority));
    }
    for (name, help, counter) in [
        (
            "relevo_adverts_sent_total",
            "VRRP adverts sent.",
            "adverts_sent",
        ),
        (
            "relevo_adverts_received_total",
            "VRRP adverts received and accepted.",
            "adverts_received",
        ),
        (
            "relevo_vips_restored_total",
            "VIPs re-added after they vanished while held.",
            "vips_restored",
        ),
    ] {
        out.family(name, "counter", help);
        for i in list {
            out.sample(name, &[("instance", &i.name)], i.counter(counter) as f64);
        }
    }
    let skip = ["adverts_sent", "adverts_received", "vips_restored"];
    out.family(
        "relevo_advert_drops_total",
        "counter",
        "Received packets dropped, by reason.",
    );
    for i in list {
        for (reason, n) in &i.counters {
            if !skip.contains(&reason.as_str()) && !TX_ERRORS.contains(&reason.as_str()) {
                let labels = [("instance", i.name.as_str()), ("reason", reason)];
                out.sample("relevo_advert_drops_total", &labels, *n as f64);
            }
        }
    }
    let m = "relevo_advert_send_errors_total";
    out.family(
        m,
        "counter",
        "Adverts and announcements not sent, by reason.",
    );
    for i in list {
        for reason in TX_ERRORS {
            let labels = [("instance", i.name.as_str()), ("reason", reason)];
            out.sample(m, &labels, i.counter(reason) as f64);
        }
    }
    out.family(
        "relevo_vip_held",
        "gauge",
        "1 while this node holds the VIP.",
    );
    let groups = snapshot.status.cluster.iter().flat_map(|c| &c.groups);
    let instance_vips = list.iter().map(|i| (("instance", &i.name), &i.vip_status));
    let group_vips = groups.map(|g| (("group", &g.name), &g.vip_status));
    for ((kind, owner), vips) in instance_vips.chain(group_vips) {
        for v in vips {
            let labels = [
                (kind, owner.as_str()),
                ("vip", &v.vip),
                ("interface", &v.interface),
            ];
            out.sample("relevo_vip_held", &labels, flag(v.held && v.present));
        }
    }
}

fn cluster(out: &mut Out, snapshot: &Snapshot) {
    let Some(c) = &snapshot.status.cluster else {
        return;
    };
    let m = "relevo_cluster_quorate";
    out.single(
        m,
        "gauge",
        "1 while this node's partition has quorum.",
        flag(c.quorate),
    );
    let m = "relevo_cluster_votes";
    out.single(
        m,
        "gauge",
        "Nodes in this node's partition.",
        c.votes as f64,
    );
    let m = "relevo_cluster_votes_needed";
    out.single(m, "gauge", "Votes quorum needs.", c.needed as f64);
    let m = "relevo_heartbeats_sent_total";
    out.single(m, "counter", "Heartbeats sent.", c.heartbeats_sent as f64);
    let m = "relevo_heartbeats_received_total";
    out.single(
        m,
        "counter",
        "Heartbeats received and accepted.",
        c.heartbeats_received as f64,
    );
    let m = "relevo_heartbeat_drops_total";
    out.family(m, "counter", "Heartbeats dropped, by reason.");
    for (reason, n) in &c.dropped {
        out.sample(m, &[("reason", reason)], *n as f64);
    }
    out.family(
        "relevo_node_alive",
        "gauge",
        "1 while the other node is alive.",
    );
    for n in &c.members {
        out.sample("relevo_node_alive", &[("node", &n.name)], flag(n.alive));
    }
    out.family(
        "relevo_link_health",
        "gauge",
        "Heartbeat link health per node (1 for the current one).",
    );
    for n in &c.members {
        for (l, health) in n.links.iter().enumerate() {
            let link = l.to_string();
            let unknown = (!LINK_HEALTH.contains(&health.as_str())).then_some(health.as_str());
            for h in LINK_HEALTH.iter().copied().chain(unknown) {
                let labels = [("node", n.name.as_str()), ("link", &link), ("health", h)];
                out.sample("relevo_link_health", &labels, flag(h == health));
            }
        }
    }
    let m = "relevo_link_last_heard_seconds";
    out.family(
        m,
        "gauge",
        "Time since the last heartbeat from the node on the link.",
    );
    for n in &c.members {
        for (l, ms) in n.last_heard_ms.iter().enumerate() {
            if let Some(ms) = ms {
                let link = l.to_string();
                out.sample(
                    m,
                    &[("node", &n.name), ("link", &link)],
                    *ms as f64 / 1000.0,
                );
            }
        }
    }
    out.family(
        "relevo_group_state",
        "gauge",
        "This node's state for the group (1 for the current one).",
    );
    for g in &c.groups {
        out.state_set(
            "relevo_group_state",
            ("group", &g.name),
            GROUP_STATES,
            &g.state,
        );
    }
    out.family(
        "relevo_group_owner",
        "gauge",
        "The node holding the group (value 1).",
    );
    for g in &c.groups {
        if let Some(owner) = &g.owner {
            out.sample(
                "relevo_group_owner",
                &[("group", &g.name), ("node", owner)],
                1.0,
            );
        }
    }
    let m = "relevo_group_failed_starts";
    out.family(m, "gauge", "Failed starts of the group on this node.");
    for g in &c.groups {
        out.sample(m, &[("group", &g.name)], f64::from(g.failed_starts));
    }
}

fn tallied(out: &mut Out, snapshot: &Snapshot) {
    let t = &snapshot.tally;
    let m = "relevo_transitions_total";
    out.family(
        m,
        "counter",
        "State changes of instances (vrrp), groups, nodes and quorum, by new state.",
    );
    for ((kind, name, to), n) in &t.transitions {
        out.sample(m, &[("kind", kind), ("name", name), ("to", to)], *n as f64);
    }
    let m = "relevo_fence_attempts_total";
    out.family(m, "counter", "Fence attempts started, by fenced node.");
    for (node, n) in &t.fence_attempts {
        out.sample(m, &[("node", node)], *n as f64);
    }
    let m = "relevo_fence_results_total";
    out.family(
        m,
        "counter",
        "Fence results (fenced, failed), by fenced node.",
    );
    for ((node, result), n) in &t.fence_results {
        out.sample(m, &[("node", node), ("result", result)], *n as f64);
    }
    let m = "relevo_hook_duration_seconds";
    out.family(m, "summary", "Hook run time, by hook (instance/event).");
    for (hook, h) in &t.hooks {
        out.sample(
            "relevo_hook_duration_seconds_sum",
            &[("hook", hook)],
            h.seconds,
        );
        out.sample(
            "relevo_hook_duration_seconds_count",
            &[("hook", hook)],
            h.runs as f64,
        );
    }
    let m = "relevo_hook_failures_total";
    out.family(
        m,
        "counter",
        "Hook runs that did not exit 0 (failed, killed, timed out, refused).",
    );
    for (hook, h) in &t.hooks {
        out.sample(m, &[("hook", hook)], h.failures as f64);
    }
    let m = "relevo_events_missed_total";
    out.single(
        m,
        "counter",
        "Events that left the history before they were tallied.",
        t.missed as f64,
    );
}

#[cfg(test)]
mod tests {
    use super::super::tests::snapshot;
    use super::*;

    #[test]
    fn families_samples_and_escapes() {
        let text = render(&snapshot("a\"b\\c\nd"));
        assert!(
            text.contains("relevo_info{node=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{text}"
        );
        for line in [
            "relevo_instance_state{instance=\"web\",state=\"MASTER\"} 1",
            "relevo_instance_state{instance=\"web\",state=\"BACKUP\"} 0",
            "relevo_instance_effective_priority{instance=\"web\"} 90",
            "relevo_adverts_sent_total{instance=\"web\"} 5",
            "relevo_advert_drops_total{instance=\"web\",reason=\"bad_ttl\"} 1",
            "relevo_advert_send_errors_total{instance=\"web\",reason=\"send_failed\"} 3",
            "relevo_cluster_quorate 1",
            "relevo_heartbeats_received_total 38",
            "relevo_heartbeat_drops_total{reason=\"replay\"} 1",
            "relevo_link_health{node=\"n2\",link=\"1\",health=\"late\"} 1",
            "relevo_link_last_heard_seconds{node=\"n2\",link=\"0\"} 0.01",
            "relevo_group_state{group=\"db\",state=\"held\"} 1",
            "relevo_transitions_total{kind=\"vrrp\",name=\"web\",to=\"MASTER\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(!text.contains("relevo_advert_drops_total{instance=\"web\",reason=\"send_failed\""));
        // Every family once, HELP then TYPE, before its samples; counters end in _total.
        let mut families = std::collections::BTreeSet::new();
        let mut current = String::new();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap_or_default();
                assert!(families.insert(name.to_string()), "{name} twice");
                let kind = lines[i + 1]
                    .strip_prefix(&format!("# TYPE {name} "))
                    .unwrap();
                assert!(kind != "counter" || name.ends_with("_total"), "{name}");
                current = name.to_string();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(&current), "{line} outside {current}");
            }
        }
    }

    /// The README's list of metrics is exactly what [`render`] writes.
    #[test]
    fn readme_lists_every_family() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let list = readme
            .split("Metrics (all prefixed `relevo_`")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .and_then(|list| list.split_once("):"))
            .map(|(_labels, list)| list)
            .expect("the README's metric list");
        let listed: std::collections::BTreeSet<String> = list
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|word| word.starts_with(|c: char| c.is_ascii_lowercase()))
            .filter(|word| !word.starts_with("relevo_") && !word.starts_with('_'))
            .map(|word| format!("relevo_{}", word.split('{').next().unwrap_or_default()))
            .collect();
        let rendered: std::collections::BTreeSet<String> = render(&snapshot("n1"))
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split(' ').next())
            .map(str::to_string)
            .collect();
        assert_eq!(listed, rendered);
    }
}
