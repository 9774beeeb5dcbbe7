//! `[metrics]` with real daemons in namespaces (root; fail under CI=true without it): a
//! two-node cluster whose nodes serve `/metrics` and the status page on 127.0.0.1:9694 inside
//! their namespaces. The scrape is parsed line by line (HELP, TYPE, samples) and its values
//! checked against the cluster; the HTTP bounds are exercised; a burst of scrapes leaves the
//! loop's timers on time; and a headless Chromium (fails without it under CI=true) loads the
//! page and the test checks what it shows, saving a screenshot.
mod netns_support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use netns_support::*;
use relevo::lab::cluster::{ClusterSpec, CLUSTER_VIP};
use relevo::lab::netns::{in_netns, Lab};
use relevo::lab::relevo_node::RelevoNode;
use relevo::lab::{test_guard, Requirement, Topology, CHROMIUM};

const LISTEN: &str = "127.0.0.1:9694";

fn start(lab: &Lab) -> Vec<RelevoNode> {
    start_spec(lab, ClusterSpec::default())
}

/// `spec` with `[metrics]` on every node; waits for n1 to hold the group.
fn start_spec(lab: &Lab, spec: ClusterSpec) -> Vec<RelevoNode> {
    let spec = ClusterSpec {
        extra_toml: format!("\n[metrics]\nlisten = \"{LISTEN}\"\n"),
        ..spec
    };
    let nodes = spec
        .start(lab, &relevo_bin())
        .unwrap_or_else(|e| panic!("{e:#}"));
    expect_sole_holder(lab, ip(CLUSTER_VIP), 1, Duration::from_secs(5), &nodes);
    nodes
}

/// Sends `request` to the node's listener from inside its namespace; the whole response.
fn http(lab: &Lab, node: usize, request: &[u8]) -> String {
    let request = request.to_vec();
    in_netns(&lab.node_ns(node), move || {
        let mut stream = TcpStream::connect(LISTEN)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(&request)?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    })
    .unwrap_or_else(|e| panic!("{e:#}"))
}

fn get(lab: &Lab, node: usize, path: &str) -> String {
    http(
        lab,
        node,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

/// The body of a 200 response.
fn body(response: &str) -> &str {
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    response.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// Every sample of an exposition text, "name{labels}" → value, after checking every line's
/// syntax: a family's HELP and TYPE come before its samples, a sample's name belongs to the
/// family announced last (summaries: `_sum`, `_count`), labels are `key="escaped value"`.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut family: Option<(String, String)> = None;
    let mut helped = None;
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect(line);
            assert!(name_ok(name) && !help.is_empty(), "{line}");
            helped = Some(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert_eq!(helped.as_deref(), Some(name), "TYPE without HELP: {line}");
            assert!(["counter", "gauge", "summary"].contains(&kind), "{line}");
            assert!(!samples
                .keys()
                .any(|k: &String| k.starts_with(&format!("{name}{{"))));
            family = Some((name.to_string(), kind.to_string()));
        } else {
            assert!(
                !line.starts_with('#') && !line.is_empty(),
                "stray line {line:?}"
            );
            let (series, value) = line.rsplit_once(' ').expect(line);
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.strip_suffix('}').expect(line)),
                None => (series, ""),
            };
            let (family, kind) = family.as_ref().expect("a sample before any TYPE");
            let ok = name == family
                || (kind == "summary"
                    && [format!("{family}_sum"), format!("{family}_count")]
                        .contains(&name.to_string()));
            assert!(ok, "{name} outside its family {family}: {line}");
            if kind == "counter" {
                assert!(name.ends_with("_total") && value >= 0.0, "{line}");
            }
            let mut rest = labels;
            while !rest.is_empty() {
                let (key, after) = rest.split_once("=\"").expect(line);
                assert!(name_ok(key), "label {key} in {line}");
                let mut end = None;
                let mut escaped = false;
                for (i, c) in after.char_indices() {
                    match (escaped, c) {
                        (true, '\\' | '"' | 'n') => escaped = false,
                        (true, _) => panic!("bad escape in {line}"),
                        (false, '\\') => escaped = true,
                        (false, '"') => {
                            end = Some(i);
                            break;
                        }
                        (false, _) => {}
                    }
                }
                let end = end.expect(line);
                rest = after[end + 1..]
                    .strip_prefix(',')
                    .unwrap_or(&after[end + 1..]);
            }
            assert!(
                samples.insert(series.to_string(), value).is_none(),
                "duplicate {line}"
            );
        }
    }
    samples
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

#[test]
fn metrics_endpoint_is_parsable_and_shows_the_cluster() {
    let Some(lab) = lab_with("mt1", 2, Topology::TwoLinks) else {
        return;
    };
    let nodes = start(&lab);
    // The snapshot lags the loop by up to 500 ms: wait for the group to show as held.
    let mut samples = BTreeMap::new();
    let held = wait_for(Duration::from_secs(3), || {
        let response = get(&lab, 1, "/metrics");
        assert!(
            response.contains("Content-Type: text/plain; version=0.0.4"),
            "{response}"
        );
        samples = parse_exposition(body(&response));
        samples.get(r#"relevo_group_state{group="db",state="held"}"#) == Some(&1.0)
    });
    assert!(held, "{samples:#?}\n{}", logs(&nodes));
    assert_eq!(value(&samples, r#"relevo_info{node="n1"}"#), 1.0);
    assert_eq!(value(&samples, "relevo_cluster_quorate"), 1.0);
    assert_eq!(value(&samples, "relevo_cluster_votes"), 2.0);
    assert_eq!(
        value(&samples, r#"relevo_group_owner{group="db",node="n1"}"#),
        1.0
    );
    assert_eq!(value(&samples, r#"relevo_node_alive{node="n2"}"#), 1.0);
    for link in ["0", "1"] {
        let up = format!(r#"relevo_link_health{{node="n2",link="{link}",health="up"}}"#);
        assert_eq!(value(&samples, &up), 1.0);
    }
    assert!(value(&samples, "relevo_heartbeats_sent_total") > 0.0);
    assert!(value(&samples, "relevo_heartbeats_received_total") > 0.0);
    let vip = r#"relevo_vip_held{group="db",vip="192.0.2.150/24",interface="eth0"}"#;
    assert_eq!(value(&samples, vip), 1.0);
    // The quorum-gated instance "web": exactly one state, the one `relevo status` shows.
    let web = nodes[0].instance_status("web").expect("status of web");
    let states = ["INIT", "BACKUP", "MASTER", "FAULT"].map(|s| {
        value(
            &samples,
            &format!(r#"relevo_instance_state{{instance="web",state="{s}"}}"#),
        )
    });
    assert_eq!(states.iter().sum::<f64>(), 1.0, "{states:?}");
    let shown = format!(
        r#"relevo_instance_state{{instance="web",state="{}"}}"#,
        web.state
    );
    assert_eq!(value(&samples, &shown), 1.0);
    assert_eq!(
        value(&samples, r#"relevo_instance_priority{instance="web"}"#),
        100.0
    );
    let held = r#"relevo_transitions_total{kind="group",name="db",to="held"}"#;
    assert!(value(&samples, held) >= 1.0);
    assert!(samples.contains_key(r#"relevo_loop_timer_lateness_seconds{stat="p99"}"#));
    // n2 serves its own view.
    let mut n2 = BTreeMap::new();
    let sees_n1 = wait_for(Duration::from_secs(3), || {
        n2 = parse_exposition(body(&get(&lab, 2, "/metrics")));
        n2.get(r#"relevo_group_owner{group="db",node="n1"}"#) == Some(&1.0)
    });
    assert!(sees_n1, "{n2:#?}");
    assert_eq!(value(&n2, r#"relevo_info{node="n2"}"#), 1.0);
    assert_eq!(
        value(&n2, r#"relevo_group_state{group="db",state="released"}"#),
        1.0
    );
}

#[test]
fn http_is_bounded_and_only_serves_get_of_two_paths() {
    let Some(lab) = lab_with("mt2", 1, Topology::TwoLinks) else {
        return;
    };
    let nodes = start(&lab);
    assert!(get(&lab, 1, "/nope").starts_with("HTTP/1.1 404 "));
    let post = http(
        &lab,
        1,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(
        post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET"),
        "{post}"
    );
    let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 9000));
    huge.extend(b"\r\n\r\n");
    assert!(http(&lab, 1, &huge).starts_with("HTTP/1.1 431 "));
    // A client dripping its request a byte every 400 ms is cut off 2 s after it connected.
    let (dripped, took) = in_netns(&lab.node_ns(1), || {
        let started = Instant::now();
        let mut slow = TcpStream::connect(LISTEN)?;
        for byte in b"GET /metrics HTTP/1.1\r\n\r\n" {
            if slow.write_all(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(400));
        }
        let mut response = String::new();
        let _ = slow.read_to_string(&mut response);
        Ok((response, started.elapsed()))
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(dripped, "");
    assert!(
        took < Duration::from_secs(4),
        "cut off after 2 s, not {took:?}"
    );
    // 16 idle connections fill the server; the 17th is closed without an answer; once the
    // idle ones time out (2 s) it serves again.
    let outcome = in_netns(&lab.node_ns(1), || {
        let idle: Vec<TcpStream> = (0..16)
            .map(|_| TcpStream::connect(LISTEN))
            .collect::<Result<_, _>>()?;
        std::thread::sleep(Duration::from_millis(200));
        let mut extra = TcpStream::connect(LISTEN)?;
        extra.set_read_timeout(Some(Duration::from_secs(5)))?;
        let _ = extra.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
        let mut refused = String::new();
        let _ = extra.read_to_string(&mut refused);
        let started = Instant::now();
        let mut first = idle.into_iter().next().expect("an idle connection");
        let mut timed_out = String::new();
        first.set_read_timeout(Some(Duration::from_secs(5)))?;
        let _ = first.read_to_string(&mut timed_out);
        Ok((refused, timed_out, started.elapsed()))
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    let (refused, timed_out, waited) = outcome;
    assert_eq!(refused, "", "a 17th connection must be refused");
    assert_eq!(timed_out, "", "an idle connection gets no answer");
    assert!(
        waited < Duration::from_secs(4),
        "idle connections close after 2 s: {waited:?}"
    );
    assert!(wait_for(Duration::from_secs(3), || {
        get(&lab, 1, "/metrics").starts_with("HTTP/1.1 200 ")
    }));
    drop(nodes);
}

#[test]
fn scraping_does_not_make_the_loop_late() {
    let Some(lab) = lab_with("mt3", 2, Topology::TwoLinks) else {
        return;
    };
    let nodes = start(&lab);
    let before = nodes[0].status().expect("status").loop_stats;
    // Both pages scraped every 5 ms for 2 s (some thousand times a usual Prometheus rate),
    // while heartbeats (every 20 ms) and adverts go on. (Back to back, the scraper itself
    // takes a core of the machine from the daemon.)
    let started = Instant::now();
    let mut scrapes = 0;
    while started.elapsed() < Duration::from_secs(2) {
        let path = if scrapes % 2 == 0 { "/metrics" } else { "/" };
        body(&get(&lab, 1, path));
        scrapes += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let after = nodes[0].status().expect("status").loop_stats;
    eprintln!(
        "{scrapes} scrapes in {elapsed:?}; timers fired {} -> {}, p99 {} -> {} us, worst {} -> {} us, stalls {} -> {}",
        before.timers_fired,
        after.timers_fired,
        before.timer_lateness_p99_us,
        after.timer_lateness_p99_us,
        before.timer_lateness_worst_us,
        after.timer_lateness_worst_us,
        before.stalls,
        after.stalls
    );
    assert!(after.timers_fired > before.timers_fired);
    assert_eq!(
        after.stalls, before.stalls,
        "a timer fired more than 5 ms late while scraped"
    );
}

#[test]
fn chromium_shows_the_status_page() {
    let Some(lab) = lab_with("mt4", 2, Topology::TwoLinks) else {
        return;
    };
    if !test_guard("chromium_shows_the_status_page", Requirement::Chromium)
        .unwrap_or_else(|e| panic!("{e:#}"))
    {
        return;
    }
    // Slower heartbeats than the other tests: Chromium's start-up takes the CPU for a moment.
    let spec = ClusterSpec {
        keepalive: Duration::from_millis(100),
        warntime: Duration::from_millis(500),
        deadtime: Duration::from_secs(2),
        initdead: Duration::from_secs(3),
        ..ClusterSpec::default()
    };
    let nodes = start_spec(&lab, spec);
    let ready = wait_for(Duration::from_secs(3), || {
        body(&get(&lab, 1, "/")).contains("<td class=\"ok\">held</td>")
    });
    assert!(ready, "{}", logs(&nodes));
    let profile = lab.work_dir().join("chromium-profile");
    let profile_arg = format!("--user-data-dir={}", profile.display());
    let url = format!("http://{LISTEN}/");
    let chromium = |extra: &[&str]| {
        let mut argv = vec!["timeout", "60", CHROMIUM, "--headless", "--no-sandbox"];
        argv.extend(["--disable-gpu", "--no-first-run", &profile_arg]);
        argv.extend(extra);
        argv.push(&url);
        lab.exec(&lab.node_ns(1), &argv)
            .unwrap_or_else(|e| panic!("{e:#}"))
    };
    let out = chromium(&["--dump-dom"]);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium: {stderr}");
    let table = |id: &str| {
        let start = dom
            .find(&format!("<table id=\"{id}\">"))
            .unwrap_or_else(|| panic!("no table {id} in {dom}"));
        let end = dom[start..].find("</table>").expect("table end") + start;
        dom[start..end].to_string()
    };
    assert!(dom.contains("<h1>relevo on n1</h1>"), "{dom}");
    let cluster_nodes = table("nodes");
    assert!(
        cluster_nodes.contains("<td class=\"\">n1</td>"),
        "{cluster_nodes}"
    );
    assert!(
        cluster_nodes.contains("<td class=\"\">n2</td>"),
        "{cluster_nodes}"
    );
    assert!(
        cluster_nodes.contains("<td class=\"ok\">alive</td>"),
        "{cluster_nodes}"
    );
    assert!(
        cluster_nodes.contains("<td class=\"ok\">up, up</td>"),
        "{cluster_nodes}"
    );
    let owner = "<td class=\"\">n1</td><td class=\"\">this node</td><td class=\"\">db</td>";
    assert!(cluster_nodes.contains(owner), "{cluster_nodes}");
    let groups = table("groups");
    let row = "<td class=\"\">db</td><td class=\"ok\">held</td><td class=\"\">n1</td>\
               <td class=\"\">192.0.2.150/24</td>";
    assert!(groups.contains(row), "{groups}");
    let instances = table("instances");
    assert!(instances.contains("<td class=\"\">web</td>"), "{instances}");
    assert!(instances.contains("192.0.2.190/24"), "{instances}");
    assert!(
        table("events").contains("<td class=\"\">group</td>"),
        "{dom}"
    );
    assert!(dom.contains("Cluster 7: quorum <b>yes</b>"), "{dom}");
    // The screenshot (README: Metrics and status page); RELEVO_UPDATE_SCREENSHOT=1 copies it
    // to docs/status-page.png.
    let png = lab.work_dir().join("status-page.png");
    let shot = format!("--screenshot={}", png.display());
    let out = chromium(&[&shot, "--window-size=1200,900", "--hide-scrollbars"]);
    let image = std::fs::read(&png).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(image.starts_with(b"\x89PNG\r\n\x1a\n") && image.len() > 10_000);
    if std::env::var("RELEVO_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/status-page.png");
        std::fs::write(docs, &image).expect("writing docs/status-page.png");
    }
}
