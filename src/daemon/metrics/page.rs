//! The read-only HTML status page of a [`Snapshot`], rendered on the server side (no script;
//! the page reloads itself every 2 s). Every text from the daemon is HTML-escaped.
use std::fmt::Write;

use super::Snapshot;

/// Escapes `&`, `<`, `>`, `"` and `'`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:1em;background:#fafafa}\
table{border-collapse:collapse;margin-bottom:1.2em}\
th,td{border:1px solid #bbb;padding:3px 8px;text-align:left}\
th{background:#dde}td.ok{background:#cfc}td.warn{background:#ffc}td.bad{background:#fcc}\
h1{font-size:1.3em}h2{font-size:1.1em;margin-bottom:.3em}";

/// A CSS class for a state or health word (green, yellow, red or none).
fn class(word: &str) -> &'static str {
    match word {
        "MASTER" | "held" | "up" | "up, up" | "alive" => "ok",
        "BACKUP" | "INIT" | "late" | "acquiring" | "releasing" | "released" | "unknown" => "warn",
        "FAULT" | "failed" | "down" | "dead" | "fence-failed" => "bad",
        _ => "",
    }
}

/// A table: header cells, then rows of cells (escaped here).
fn table(html: &mut String, title: &str, id: &str, head: &[&str], rows: &[Vec<String>]) {
    let _ = write!(html, "<h2>{}</h2>\n<table id=\"{id}\"><tr>", escape(title));
    for h in head {
        let _ = write!(html, "<th>{}</th>", escape(h));
    }
    html.push_str("</tr>\n");
    for row in rows {
        html.push_str("<tr>");
        for cell in row {
            let _ = write!(html, "<td class=\"{}\">{}</td>", class(cell), escape(cell));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
}

fn yes(on: bool) -> String {
    (if on { "yes" } else { "no" }).to_string()
}

/// The whole page.
pub fn render(snapshot: &Snapshot) -> String {
    let s = &snapshot.status;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"2\">\
         <title>relevo: {node}</title><style>{STYLE}</style></head><body>\n\
         <h1>relevo on {node}</h1>\n",
        node = escape(&s.node)
    );
    let l = &s.loop_stats;
    let us = |v: u64| format!("{:.3} ms", v as f64 / 1000.0);
    let taken = humantime::format_rfc3339_seconds(snapshot.taken).to_string();
    let this = vec![
        s.node.clone(),
        yes(s.operator.maintenance),
        yes(s.operator.standby),
        s.operator.held_out.join(", "),
        us(l.timer_lateness_p99_us),
        us(l.timer_lateness_worst_us),
        taken,
    ];
    let head = [
        "node",
        "maintenance",
        "standby",
        "held out",
        "loop lateness p99",
        "loop lateness max",
        "as of",
    ];
    table(&mut html, "This node", "node", &head, &[this]);
    let rows: Vec<Vec<String>> = s
        .instances
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                i.interface.clone(),
                i.vrid.to_string(),
                i.state.clone(),
                format!("{} / {}", i.priority, i.effective_priority),
                i.master.clone().unwrap_or_default(),
                i.vips.join(", "),
                i.reason.clone(),
            ]
        })
        .collect();
    let head = [
        "instance",
        "interface",
        "vrid",
        "state",
        "priority / effective",
        "master",
        "VIPs",
        "reason",
    ];
    table(&mut html, "VRRP instances", "instances", &head, &rows);
    if let Some(c) = &s.cluster {
        let quorum = format!(
            "{} of {} needed: {}",
            c.votes,
            c.needed,
            c.partition.join(", ")
        );
        let holds = |node: &str| {
            let groups = c.groups.iter().filter(|g| g.owner.as_deref() == Some(node));
            groups
                .map(|g| g.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut rows = vec![vec![
            s.node.clone(),
            "this node".to_string(),
            holds(&s.node),
            "alive".to_string(),
            String::new(),
            String::new(),
            String::new(),
        ]];
        for m in &c.members {
            let heard = m
                .last_heard_ms
                .iter()
                .map(|ms| ms.map_or("never".to_string(), |ms| format!("{ms} ms ago")))
                .collect::<Vec<_>>()
                .join(", ");
            let alive = if m.alive { "alive" } else { "dead" };
            rows.push(vec![
                m.name.clone(),
                "peer".to_string(),
                holds(&m.name),
                alive.to_string(),
                m.links.join(", "),
                heard,
                m.fence.clone().unwrap_or_default(),
            ]);
        }
        let _ = writeln!(
            html,
            "<p id=\"quorum\">Cluster {}: quorum <b>{}</b> ({})</p>",
            c.id,
            if c.quorate { "yes" } else { "no" },
            escape(&quorum)
        );
        let head = [
            "node",
            "role",
            "holds",
            "state",
            "links",
            "last heard",
            "fencing",
        ];
        table(&mut html, "Cluster nodes", "nodes", &head, &rows);
        let rows: Vec<Vec<String>> = c
            .groups
            .iter()
            .map(|g| {
                let vips = g.vip_status.iter().map(|v| v.vip.clone());
                vec![
                    g.name.clone(),
                    g.state.clone(),
                    g.owner.clone().unwrap_or_else(|| "none".to_string()),
                    vips.collect::<Vec<_>>().join(", "),
                    g.reason.clone(),
                ]
            })
            .collect();
        let head = ["group", "state here", "owner", "VIPs", "reason"];
        table(&mut html, "Groups", "groups", &head, &rows);
    }
    let rows: Vec<Vec<String>> = snapshot
        .events
        .iter()
        .rev()
        .map(|e| {
            let change = match (&e.from, &e.to) {
                (Some(from), Some(to)) => format!("{from} \u{2192} {to}"),
                _ => e.code.clone().unwrap_or_default(),
            };
            vec![
                e.time.clone(),
                e.kind.clone(),
                e.name.clone().unwrap_or_default(),
                change,
                e.reason.clone(),
            ]
        })
        .collect();
    let head = ["time", "kind", "name", "change", "reason"];
    table(&mut html, "Recent events", "events", &head, &rows);
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::super::tests::snapshot;
    use super::*;

    #[test]
    fn escapes_and_shows_every_table() {
        let html = render(&snapshot("<n1>"));
        assert!(html.contains("<h1>relevo on &lt;n1&gt;</h1>"), "{html}");
        assert!(!html.contains("<n1>"));
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"2\">"));
        for id in ["node", "instances", "nodes", "groups", "events"] {
            assert!(html.contains(&format!("<table id=\"{id}\">")), "{id}");
        }
        assert!(html.contains("no advert &lt;for&gt; 3s"));
        assert!(html.contains("<td class=\"ok\">MASTER</td><td class=\"\">100 / 90</td>"));
        assert!(html.contains(
            "<td class=\"\">db</td><td class=\"ok\">held</td><td class=\"\">&lt;n1&gt;</td>"
        ));
        assert!(html.contains("<td class=\"\">up, late</td>"));
        assert_eq!(escape("a&'\""), "a&amp;&#39;&quot;");
    }
}
