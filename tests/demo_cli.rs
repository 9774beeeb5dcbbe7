//! The README's first command: `relevo demo` (this build's binary, relevo daemons) run as an
//! operator runs it, both parts' closing tables read back. VRRP: three steps, the VIP on n2,
//! n1, n2, a crash that costs the client something bounded, graceful steps that cost (almost)
//! nothing. Cluster: the same three moves of group web, its VIP and its resource (as the
//! resource's hooks recorded) on n2, n1, n2, the hooks in order. `relevo demo cluster` runs
//! the cluster part alone; an unknown part is refused.
mod netns_support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netns_support::{needs_root, relevo_bin, serial};

/// The whole demo takes a few seconds; this only catches a hang.
const DEMO_TIMEOUT: Duration = Duration::from_secs(120);

/// The first line of the cluster part.
const CLUSTER_HEADING: &str = "relevo cluster demo:";
/// The first line of the VRRP part.
const VRRP_HEADING: &str = "relevo demo:";

/// One row of a closing table.
#[derive(Debug, PartialEq)]
struct Row {
    step: u32,
    event: String,
    outage_ms: f64,
    lost: u64,
    vip_on: String,
    /// The cluster table's `resource on` column.
    resource_on: Option<String>,
}

/// The rows of the table that follows the `step event outage lost VIP on [resource on]` header
/// line: `  <step> <event words...> <outage> ms <lost>  <VIP on...>[  <resource on...>]`
/// (the last columns are two or more spaces apart).
fn table_rows(output: &str) -> Vec<Row> {
    let mut lines = output.lines().skip_while(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        !words.starts_with(&["step", "event", "outage", "lost", "VIP", "on"])
    });
    assert!(lines.next().is_some(), "no table header in:\n{output}");
    lines
        .take_while(|l| !l.trim().is_empty())
        .map(|line| {
            let bad = |what: &str| -> ! { panic!("bad {what} in row {line:?}") };
            let unit = line.rfind(" ms ").unwrap_or_else(|| bad("`ms`"));
            let words: Vec<&str> = line[..unit].split_whitespace().collect();
            if words.len() < 3 {
                bad("layout");
            }
            let (lost, rest) = line[unit + 4..]
                .trim_start()
                .split_once(' ')
                .unwrap_or_else(|| bad("layout"));
            let mut columns = rest.split("  ").map(str::trim).filter(|c| !c.is_empty());
            let vip_on = columns.next().unwrap_or_else(|| bad("VIP on"));
            let row = Row {
                step: words[0].parse().unwrap_or_else(|_| bad("step")),
                event: words[1..words.len() - 1].join(" "),
                outage_ms: words[words.len() - 1]
                    .parse()
                    .unwrap_or_else(|_| bad("outage")),
                lost: lost.parse().unwrap_or_else(|_| bad("lost")),
                vip_on: vip_on.to_string(),
                resource_on: columns.next().map(str::to_string),
            };
            if columns.next().is_some() {
                bad("layout");
            }
            row
        })
        .collect()
}

/// The owners each progress line names (`step <n>: ... ; VIP on <owner>[; resource on
/// <nodes>]`), in order.
fn step_line_owners(output: &str) -> Vec<(u32, String, Option<String>)> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("step ")?;
            let (n, rest) = rest.split_once(':')?;
            let (_, owners) = rest.rsplit_once("; VIP on ")?;
            let (vip, resource) = match owners.split_once("; resource on ") {
                Some((vip, resource)) => (vip, Some(resource.trim().to_string())),
                None => (owners, None),
            };
            Some((n.parse().ok()?, vip.trim().to_string(), resource))
        })
        .collect()
}

/// The VRRP and the cluster part of the demo's output (each `None` when missing).
fn parts(output: &str) -> (Option<&str>, Option<&str>) {
    let cluster_at = output.find(CLUSTER_HEADING);
    let vrrp_at = output.find(VRRP_HEADING);
    let vrrp =
        vrrp_at.map(|at| &output[at..cluster_at.filter(|&c| c > at).unwrap_or(output.len())]);
    (vrrp, cluster_at.map(|at| &output[at..]))
}

/// What each cluster step's `hooks:` line lists, in order.
fn hook_lines(cluster: &str) -> Vec<&str> {
    cluster
        .lines()
        .filter_map(|line| line.trim().strip_prefix("hooks: "))
        .collect()
}

#[test]
fn table_rows_are_read_back() {
    let output = "election: ...\n\n  step event                                  outage   lost  VIP on\n  \
                  1    crash n1 (SIGKILL + cut off)          25.1 ms     25  n2\n  \
                  2    n1 reboots and preempts                0.0 ms      0  n1+n2 (split brain)\n\ndone\n";
    let rows = table_rows(output);
    assert_eq!(
        rows,
        [
            Row {
                step: 1,
                event: "crash n1 (SIGKILL + cut off)".into(),
                outage_ms: 25.1,
                lost: 25,
                vip_on: "n2".into(),
                resource_on: None,
            },
            Row {
                step: 2,
                event: "n1 reboots and preempts".into(),
                outage_ms: 0.0,
                lost: 0,
                vip_on: "n1+n2 (split brain)".into(),
                resource_on: None,
            },
        ]
    );
    let progress = "step 1: crash n1 (SIGKILL + cut off)      client outage    25.1 ms \
                    (25 probes lost); VIP on n2\nstep 2: n1 reboots and preempts                \
                    client outage     0.0 ms (0 probes lost); VIP on n1+n2 (split brain)\n";
    assert_eq!(
        step_line_owners(progress),
        [
            (1, "n2".to_string(), None),
            (2, "n1+n2 (split brain)".to_string(), None)
        ]
    );
    let cluster = "relevo cluster demo: ...\n\
                   step 1: crash n1 (SIGKILL + cut off)  client outage   242.2 ms (242 probes \
                   lost); VIP on n2; resource on n2\n        hooks: crash n1 -> start n2 (VIP up)\n\
                   \n  step event                                  outage   lost  VIP on    resource on\n\
                   \x20 1    crash n1 (SIGKILL + cut off)         242.2 ms    242  n2        n2\n\
                   \x20 2    n1 reboots, web fails back            33.0 ms     33  n1+n2 (split brain)  none\n\n";
    let rows = table_rows(cluster);
    let columns: Vec<(&str, Option<&str>)> = rows
        .iter()
        .map(|r| (r.vip_on.as_str(), r.resource_on.as_deref()))
        .collect();
    assert_eq!(
        columns,
        [("n2", Some("n2")), ("n1+n2 (split brain)", Some("none"))]
    );
    assert_eq!(rows[0].outage_ms, 242.2);
    assert_eq!(
        step_line_owners(cluster),
        [(1, "n2".to_string(), Some("n2".to_string()))]
    );
    assert_eq!(hook_lines(cluster), ["crash n1 -> start n2 (VIP up)"]);
    let both = format!("relevo demo: vrrp\nstep 1: x\n\n{cluster}");
    let (vrrp, cluster_part) = parts(&both);
    assert_eq!(vrrp, Some("relevo demo: vrrp\nstep 1: x\n\n"));
    assert!(cluster_part.is_some_and(|c| c.starts_with(CLUSTER_HEADING)));
    assert_eq!(
        parts("relevo demo: vrrp\n"),
        (Some("relevo demo: vrrp\n"), None)
    );
}

/// Runs `relevo demo <args>`, returning (exit status, stdout, stderr); interrupts it (SIGINT:
/// it removes its namespaces) and fails if it outlives [`DEMO_TIMEOUT`].
fn run_demo(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(relevo_bin())
        .arg("demo")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting relevo demo");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEMO_TIMEOUT {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let interrupted = Instant::now();
            while child.try_wait().unwrap().is_none() {
                if interrupted.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let out = out_reader.join().unwrap_or_default();
            panic!("relevo demo did not finish within {DEMO_TIMEOUT:?}; output so far:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status,
        out_reader.join().unwrap_or_default(),
        err_reader.join().unwrap_or_default(),
    )
}

/// The VRRP part's checks.
fn check_vrrp_part(out: &str, context: &str) {
    assert!(
        out.contains("election: n1") && out.contains("done; all namespaces"),
        "{context}"
    );
    let rows = table_rows(out);
    let steps: Vec<u32> = rows.iter().map(|r| r.step).collect();
    assert_eq!(steps, [1, 2, 3], "{context}");
    assert!(rows[0].event.starts_with("crash n1"), "{context}");
    assert!(rows[1].event.contains("preempts"), "{context}");
    assert!(rows[2].event.contains("gracefully"), "{context}");
    let owners: Vec<&str> = rows.iter().map(|r| r.vip_on.as_str()).collect();
    assert_eq!(owners, ["n2", "n1", "n2"], "{context}");
    assert!(rows.iter().all(|r| r.resource_on.is_none()), "{context}");
    // The progress lines printed during the run name the same owners as the closing table.
    let progress: Vec<(u32, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.step, r.vip_on.clone(), None))
        .collect();
    assert_eq!(step_line_owners(out), progress, "{context}");
    // A crash costs Master_Down_Interval (20-30 ms at 10 ms adverts); generous bounds.
    let crash = &rows[0];
    assert!(
        crash.outage_ms > 0.0 && crash.outage_ms < 500.0 && crash.lost > 0,
        "crash outage {} ms, {} lost:\n{context}",
        crash.outage_ms,
        crash.lost
    );
    // Preemption and a graceful stop hand over while the old master still answers: without
    // that the client would lose 20 probes or more.
    for graceful in &rows[1..] {
        assert!(
            graceful.lost <= 5 && graceful.outage_ms < 10.0,
            "step {} lost {} probes ({} ms):\n{context}",
            graceful.step,
            graceful.lost,
            graceful.outage_ms
        );
    }
}

/// The cluster part's checks: the election on n1, then group web (VIP and resource) on n2, n1,
/// n2, the resource's hooks run in order on the expected nodes, plausible outages.
fn check_cluster_part(out: &str, context: &str) {
    assert!(
        out.contains("election: n1") && out.contains("hooks: start n1 (VIP up)"),
        "{context}"
    );
    assert!(
        out.contains("order kept in all 7 hook runs")
            && out.contains("done; all namespaces, processes and hook files removed"),
        "{context}"
    );
    let rows = table_rows(out);
    let steps: Vec<u32> = rows.iter().map(|r| r.step).collect();
    assert_eq!(steps, [1, 2, 3], "{context}");
    assert!(rows[0].event.starts_with("crash n1"), "{context}");
    assert!(rows[1].event.contains("fails back"), "{context}");
    assert!(rows[2].event.contains("gracefully"), "{context}");
    let owners: Vec<(&str, Option<&str>)> = rows
        .iter()
        .map(|r| (r.vip_on.as_str(), r.resource_on.as_deref()))
        .collect();
    let expected = [("n2", Some("n2")), ("n1", Some("n1")), ("n2", Some("n2"))];
    assert_eq!(owners, expected, "{context}");
    let progress: Vec<(u32, String, Option<String>)> = rows
        .iter()
        .map(|r| (r.step, r.vip_on.clone(), r.resource_on.clone()))
        .collect();
    assert_eq!(step_line_owners(out), progress, "{context}");
    // What the resource's hook recorded, per step: the crashed node's resource dies with it
    // and the next node starts it; a handover stops it before the next node starts it; the
    // VIP is up during every run.
    assert_eq!(
        hook_lines(out),
        [
            "start n1 (VIP up)",
            "crash n1 -> start n2 (VIP up)",
            "stop n2 (VIP up) -> start n1 (VIP up)",
            "stop n1 (VIP up) -> start n2 (VIP up)",
        ],
        "{context}"
    );
    // A crash costs deadtime (100 ms) + takeover_delay (150 ms), less up to a keepalive of
    // phase; generous bounds.
    let crash = &rows[0];
    assert!(
        crash.outage_ms > 150.0 && crash.outage_ms < 1000.0 && crash.lost > 0,
        "crash outage {} ms, {} lost:\n{context}",
        crash.outage_ms,
        crash.lost
    );
    // A failback costs the returning node's settle time (two keepalives, 40 ms) and two hooks;
    // a graceful stop two hooks: far below a crash.
    let failback = &rows[1];
    assert!(
        failback.outage_ms < 150.0,
        "failback outage {} ms:\n{context}",
        failback.outage_ms
    );
    let graceful = &rows[2];
    assert!(
        graceful.outage_ms < 50.0,
        "graceful stop outage {} ms:\n{context}",
        graceful.outage_ms
    );
}

#[test]
fn relevo_demo_shows_vrrp_then_cluster_failovers_with_plausible_outages() {
    if !needs_root("relevo_demo_shows_vrrp_then_cluster_failovers_with_plausible_outages") {
        return;
    }
    let _serial = serial();
    let (status, out, err) = run_demo(&[]);
    let context = format!("stdout:\n{out}\nstderr:\n{err}");
    assert!(
        status.success(),
        "relevo demo failed ({status}):\n{context}"
    );
    let (vrrp, cluster) = parts(&out);
    let vrrp = vrrp.unwrap_or_else(|| panic!("no VRRP part:\n{context}"));
    let cluster = cluster.unwrap_or_else(|| panic!("no cluster part:\n{context}"));
    assert!(
        out.starts_with(VRRP_HEADING),
        "the VRRP part comes first:\n{context}"
    );
    check_vrrp_part(vrrp, &context);
    check_cluster_part(cluster, &context);
}

#[test]
fn relevo_demo_cluster_runs_the_cluster_part_only() {
    if !needs_root("relevo_demo_cluster_runs_the_cluster_part_only") {
        return;
    }
    let _serial = serial();
    let (status, out, err) = run_demo(&["cluster"]);
    let context = format!("stdout:\n{out}\nstderr:\n{err}");
    assert!(
        status.success(),
        "relevo demo cluster failed ({status}):\n{context}"
    );
    let (vrrp, cluster) = parts(&out);
    assert_eq!(vrrp, None, "{context}");
    check_cluster_part(
        cluster.unwrap_or_else(|| panic!("no cluster part:\n{context}")),
        &context,
    );
}

#[test]
fn relevo_demo_refuses_an_unknown_part() {
    // Refused by the argument parser, before the demo checks for root.
    let out = Command::new(relevo_bin())
        .args(["demo", "keepalived"])
        .stdin(Stdio::null())
        .output()
        .expect("running relevo demo keepalived");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("vrrp") && stderr.contains("cluster"),
        "the error names the parts: {stderr}"
    );
}
