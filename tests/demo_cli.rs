//! The README's first command: `relevo demo` (this build's binary, relevo daemons) run as an
//! operator runs it, its closing table read back: three steps, the VIP on n2, n1, n2, a crash
//! that costs the client something bounded, graceful steps that cost (almost) nothing.
mod netns_support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netns_support::{needs_root, relevo_bin, serial};

/// The whole demo takes a few seconds; this only catches a hang.
const DEMO_TIMEOUT: Duration = Duration::from_secs(120);

/// One row of the demo's closing table.
#[derive(Debug, PartialEq)]
struct Row {
    step: u32,
    event: String,
    outage_ms: f64,
    lost: u64,
    vip_on: String,
}

/// The rows of the table that follows the `step event outage lost VIP on` header line:
/// `  <step> <event words...> <outage> ms <lost>  <VIP on...>`.
fn table_rows(output: &str) -> Vec<Row> {
    let mut lines = output.lines().skip_while(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words != ["step", "event", "outage", "lost", "VIP", "on"]
    });
    assert!(lines.next().is_some(), "no table header in:\n{output}");
    lines
        .take_while(|l| !l.trim().is_empty())
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let unit = words
                .iter()
                .rposition(|w| *w == "ms")
                .unwrap_or_else(|| panic!("no `ms` in row {line:?}"));
            let bad = |what: &str| -> ! { panic!("bad {what} in row {line:?}") };
            if unit < 2 || unit + 2 >= words.len() {
                bad("layout");
            }
            Row {
                step: words[0].parse().unwrap_or_else(|_| bad("step")),
                event: words[1..unit - 1].join(" "),
                outage_ms: words[unit - 1].parse().unwrap_or_else(|_| bad("outage")),
                lost: words[unit + 1].parse().unwrap_or_else(|_| bad("lost")),
                vip_on: words[unit + 2..].join(" "),
            }
        })
        .collect()
}

/// The owner each progress line names (`step <n>: ... ; VIP on <owner>`), in order.
fn step_line_owners(output: &str) -> Vec<(u32, String)> {
    output
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("step ")?;
            let (n, rest) = rest.split_once(':')?;
            let (_, owner) = rest.rsplit_once("; VIP on ")?;
            Some((n.parse().ok()?, owner.trim().to_string()))
        })
        .collect()
}

#[test]
fn table_rows_are_read_back() {
    let output = "election: ...\n\n  step event                                  outage   lost  VIP on\n  \
                  1    crash n1 (SIGKILL + cable pulled)     25.1 ms     25  n2\n  \
                  2    n1 reboots and preempts                0.0 ms      0  n1+n2 (split brain)\n\ndone\n";
    let rows = table_rows(output);
    assert_eq!(
        rows,
        [
            Row {
                step: 1,
                event: "crash n1 (SIGKILL + cable pulled)".into(),
                outage_ms: 25.1,
                lost: 25,
                vip_on: "n2".into(),
            },
            Row {
                step: 2,
                event: "n1 reboots and preempts".into(),
                outage_ms: 0.0,
                lost: 0,
                vip_on: "n1+n2 (split brain)".into(),
            },
        ]
    );
    let progress = "step 1: crash n1 (SIGKILL + cable pulled)      client outage    25.1 ms \
                    (25 probes lost); VIP on n2\nstep 2: n1 reboots and preempts                \
                    client outage     0.0 ms (0 probes lost); VIP on n1+n2 (split brain)\n";
    assert_eq!(
        step_line_owners(progress),
        [
            (1, "n2".to_string()),
            (2, "n1+n2 (split brain)".to_string())
        ]
    );
}

/// Runs `relevo demo`, returning (exit status, stdout, stderr); interrupts it (SIGINT: it
/// removes its namespaces) and fails if it outlives [`DEMO_TIMEOUT`].
fn run_demo() -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(relevo_bin())
        .arg("demo")
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

#[test]
fn relevo_demo_prints_the_three_steps_with_plausible_outages() {
    if !needs_root("relevo_demo_prints_the_three_steps_with_plausible_outages") {
        return;
    }
    let _serial = serial();
    let (status, out, err) = run_demo();
    let context = format!("stdout:\n{out}\nstderr:\n{err}");
    assert!(
        status.success(),
        "relevo demo failed ({status}):\n{context}"
    );
    assert!(
        out.contains("election: n1") && out.contains("done; all namespaces"),
        "{context}"
    );
    let rows = table_rows(&out);
    let steps: Vec<u32> = rows.iter().map(|r| r.step).collect();
    assert_eq!(steps, [1, 2, 3], "{context}");
    assert!(rows[0].event.starts_with("crash n1"), "{context}");
    assert!(rows[1].event.contains("preempts"), "{context}");
    assert!(rows[2].event.contains("gracefully"), "{context}");
    let owners: Vec<&str> = rows.iter().map(|r| r.vip_on.as_str()).collect();
    assert_eq!(owners, ["n2", "n1", "n2"], "{context}");
    // The progress lines printed during the run name the same owners as the closing table.
    let progress: Vec<(u32, String)> = rows.iter().map(|r| (r.step, r.vip_on.clone())).collect();
    assert_eq!(step_line_owners(&out), progress, "{context}");
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
