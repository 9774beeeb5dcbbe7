//! The cluster part of `relevo demo` (`relevo demo cluster`): three cluster nodes with two
//! heartbeat links each ([`Topology::TwoLinks`], configs from [`ClusterSpec`]) and a client,
//! one resource group "web" (a VIP and one ordered resource "app" whose start/stop hook is a
//! script the demo writes), an election, then a crash of the owner, its return (failback, a
//! planned handover) and a graceful stop of the owner (a planned handover), each with the
//! outage the client measured and where the resource runs, read from what the hooks recorded.
//!
//! The hook goes in the lab's hook directory (`/run/relevo-test-<lab>`: root-owned, 0755, on
//! the way to `/` nothing group- or world-writable, as the default `hook_security` demands;
//! `/tmp` would be refused), its record in the lab's work dir; both go with the lab, on exit
//! and on Ctrl-C.
use crate::lab::cluster::{ClusterSpec, CLUSTER_RESOURCE, CLUSTER_RESOURCE_TIMEOUT};
use crate::lab::demo::{
    holders, report, say, start_probe, summary, DemoReport, DemoStep, STEP_TIMEOUT,
};
use crate::lab::fault::{measure_failover, measure_return, vip_address, FailoverResult, Fault};
use crate::lab::netns::{Lab, Topology};
use crate::lab::util::{check_interrupted, wait_until, write_script};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const GROUP: &str = "web";
const VIP: &str = "192.0.2.100/24";
const NODES: usize = 3;

/// One line of the hook record: `start n1 (VIP up)`, `stop n2 (VIP up)`, or `crash n1`, which
/// the demo writes itself when it kills a node (the resource dies with the node, unstopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookRun {
    pub action: Action,
    pub node: usize,
    /// Whether the group's VIP was on the node's eth0 while the hook ran (`None` for a crash).
    pub vip_up: Option<bool>,
}

/// What a [`HookRun`] line says happened to the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Crash,
}

impl HookRun {
    /// Reads one record line; `None` for anything else.
    pub fn parse(line: &str) -> Option<HookRun> {
        let mut words = line.split_whitespace();
        let action = match words.next()? {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "crash" => Action::Crash,
            _ => return None,
        };
        let node = words.next()?.strip_prefix('n')?.parse().ok()?;
        let rest: Vec<&str> = words.collect();
        let vip_up = match (action, rest.as_slice()) {
            (Action::Crash, []) => None,
            (Action::Crash, _) => return None,
            (_, ["(VIP", "up)"]) => Some(true),
            (_, ["(VIP", "down)"]) => Some(false),
            _ => return None,
        };
        Some(HookRun {
            action,
            node,
            vip_up,
        })
    }

    fn text(&self) -> String {
        let action = match self.action {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Crash => "crash",
        };
        match self.vip_up {
            Some(up) => format!(
                "{action} n{} (VIP {})",
                self.node,
                if up { "up" } else { "down" }
            ),
            None => format!("{action} n{}", self.node),
        }
    }
}

/// The nodes on which the resource runs after `runs`: its last run there was a start.
pub fn running_on(runs: &[HookRun]) -> Vec<usize> {
    let mut nodes: Vec<usize> = Vec::new();
    for run in runs {
        nodes.retain(|&n| n != run.node);
        if run.action == Action::Start {
            nodes.push(run.node);
        }
    }
    nodes.sort_unstable();
    nodes
}

/// Checks the order relevo promises: the VIP is up before a start and still up during a stop,
/// and the resource never runs on two nodes at once (a handover stops it before the next node
/// starts it). `Err` says which run broke it.
pub fn check_order(runs: &[HookRun]) -> std::result::Result<(), String> {
    for (index, run) in runs.iter().enumerate() {
        if run.vip_up == Some(false) {
            return Err(format!("`{}` ran without the VIP", run.text()));
        }
        let running = running_on(&runs[..=index]);
        if running.len() > 1 {
            return Err(format!(
                "after `{}` the resource runs on {}",
                run.text(),
                holders(&running)
            ));
        }
    }
    Ok(())
}

/// The file the hook appends to (and the demo, for a crash).
struct HookRecord {
    path: PathBuf,
    /// Runs already printed.
    shown: usize,
}

impl HookRecord {
    fn runs(&self) -> Result<Vec<HookRun>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.path.display())),
        };
        text.lines()
            .map(|line| {
                HookRun::parse(line)
                    .with_context(|| format!("unexpected line {line:?} in {}", self.path.display()))
            })
            .collect()
    }

    /// Notes that `node` crashed: its resource is gone without a stop.
    fn note_crash(&self, node: usize) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        writeln!(file, "crash n{node}").with_context(|| format!("writing {}", self.path.display()))
    }

    /// Waits until the resource runs on `nodes` alone (every hook of the step has run).
    fn wait_running_on(&self, nodes: &[usize]) -> Result<Vec<HookRun>> {
        let what = format!("{CLUSTER_RESOURCE} to run on {}", holders(nodes));
        wait_until(STEP_TIMEOUT, Duration::from_millis(10), &what, || {
            Ok(running_on(&self.runs()?) == nodes)
        })?;
        self.runs()
    }

    /// Prints the runs not printed yet: "hooks: stop n2 (VIP up) -> start n1 (VIP up)".
    fn show_new_runs(&mut self, out: &mut dyn Write, runs: &[HookRun]) -> Result<()> {
        let new: Vec<String> = runs.iter().skip(self.shown).map(HookRun::text).collect();
        self.shown = runs.len();
        say(out, &format!("        hooks: {}", new.join(" -> ")))
    }

    /// Ends step `n`: waits until the resource runs where the VIP is, prints the step (with
    /// where the resource runs) and the hooks it ran.
    fn step(
        &mut self,
        out: &mut dyn Write,
        n: usize,
        title: &str,
        result: FailoverResult,
    ) -> Result<DemoStep> {
        let runs = self.wait_running_on(&result.masters)?;
        let step = report(out, n, title, result, Some(running_on(&runs)))?;
        self.show_new_runs(out, &runs)?;
        Ok(step)
    }
}

/// The resource's start/stop hook: appends `start|stop n<i> (VIP up|down)` to `record`, the
/// VIP state read from the node's eth0 while the hook runs.
fn write_hook(lab: &Lab, record: &Path, vip: IpAddr) -> Result<PathBuf> {
    let hook = lab.hook_dir()?.join(CLUSTER_RESOURCE);
    let body = format!(
        "# relevo demo: resource {CLUSTER_RESOURCE} of group {GROUP}; $1 is start or stop.\n\
         if ip -o addr show dev eth0 | grep -q ' {vip}/'; then vip=up; else vip=down; fi\n\
         echo \"$1 $RELEVO_NODE (VIP $vip)\" >> '{}'\n",
        record.display()
    );
    write_script(&hook, &body, 0o755)?;
    Ok(hook)
}

/// The cluster demo, writing to `out`.
pub fn run_with(relevo_bin: &Path, out: &mut dyn Write) -> Result<DemoReport> {
    let vip = vip_address(VIP)?;
    let vips = vec![VIP.to_string()];
    let lab = Lab::create_with("dcl", NODES, Topology::TwoLinks)
        .context("building the cluster demo lab")?;
    let mut record = HookRecord {
        path: lab.work_dir().join(format!("{CLUSTER_RESOURCE}.record")),
        shown: 0,
    };
    let spec = ClusterSpec {
        group: GROUP.to_string(),
        vip: VIP.to_string(),
        vrrp_instance: false,
        resource: Some(write_hook(&lab, &record.path, vip)?),
        ..ClusterSpec::default()
    };
    introduce(out, &spec, vip)?;
    let started = Instant::now();
    let mut nodes = spec.start(&lab, relevo_bin)?;
    lab.wait_master(vip, 1, STEP_TIMEOUT)
        .context("waiting for the first election")?;
    let runs = record.wait_running_on(&[1])?;
    let election = started.elapsed();
    say(
        out,
        &format!(
            "election: n1 (first in the group's nodes) holds {GROUP} {} ms after start: once \
             it had heard\n  every node (it waits at most initdead, {} ms) and been quorate \
             for two keepalives",
            election.as_millis(),
            spec.initdead.as_millis(),
        ),
    )?;
    record.show_new_runs(out, &runs)?;
    let probe = start_probe(&lab, relevo_bin, vip, out)?;
    let n1 = nodes.first_mut().context("the demo started no daemons")?;
    let mut steps = Vec::new();

    check_interrupted()?;
    record.note_crash(1)?;
    let crash = measure_failover(&lab, &probe, n1, Fault::Crash, vip, STEP_TIMEOUT)?;
    steps.push(record.step(out, 1, "crash n1 (SIGKILL + cut off)", crash)?);

    check_interrupted()?;
    let back = measure_return(&lab, &probe, n1, Fault::Crash, &vips, STEP_TIMEOUT)
        .context("n1's return")?;
    steps.push(record.step(out, 2, "n1 reboots, web fails back", back)?);

    check_interrupted()?;
    let stop = measure_failover(&lab, &probe, n1, Fault::Graceful, vip, STEP_TIMEOUT)?;
    steps.push(record.step(out, 3, "stop n1 gracefully (SIGTERM)", stop)?);

    summary(out, &steps)?;
    let runs = record.runs()?;
    match check_order(&runs) {
        Ok(()) => say(
            out,
            &format!(
                "order kept in all {} hook runs: the VIP was up before every start and still up\n  \
                 during every stop; {CLUSTER_RESOURCE} never ran on two nodes at once",
                runs.len()
            ),
        )?,
        Err(broken) => bail!("the resource order was broken: {broken}"),
    }
    drop(probe);
    drop(nodes);
    lab.destroy();
    say(
        out,
        "done; all namespaces, processes and hook files removed",
    )?;
    Ok(DemoReport { election, steps })
}

/// What the demo runs and what its timings mean.
fn introduce(out: &mut dyn Write, spec: &ClusterSpec, vip: IpAddr) -> Result<()> {
    let ms = |d: Duration| d.as_millis();
    // relevo's default takeover_delay: the group's stop timeouts, each with the kill grace.
    let default_takeover = CLUSTER_RESOURCE_TIMEOUT + crate::daemon::hooks::TERM_GRACE;
    let takeover = spec.takeover_delay.unwrap_or(default_takeover);
    let hook_dir = spec
        .resource
        .as_deref()
        .and_then(Path::parent)
        .map_or_else(|| "-".to_string(), |dir| dir.display().to_string());
    let lines = [
        format!(
            "relevo cluster demo: {NODES} nodes x 2 heartbeat links (eth0, shared with 1 client, \
             and eth1) in\n  network namespaces; group {GROUP} = VIP {vip} + resource \
             {CLUSTER_RESOURCE}, on n1, else n2, else n3\n  (auto_failback: back to n1 when it \
             returns)"
        ),
        format!(
            "timing: heartbeats every {} ms on each link; a node silent on every link for {} ms \
             (deadtime)\n  is dead; the next node then waits takeover_delay {} ms before it \
             acquires (a cut-off owner\n  releases at its lease, before deadtime, then needs \
             time to stop {CLUSTER_RESOURCE}: no fencing here;\n  relevo's default, \
             {CLUSTER_RESOURCE}'s {} ms timeout + {} ms kill grace, would be {} ms):\n  a crash \
             costs the client about {} ms",
            ms(spec.keepalive),
            ms(spec.deadtime),
            ms(takeover),
            ms(CLUSTER_RESOURCE_TIMEOUT),
            ms(crate::daemon::hooks::TERM_GRACE),
            ms(default_takeover),
            ms(spec.deadtime + takeover)
        ),
        format!(
            "planned handovers (failback, SIGTERM) wait for no timeout: the owner stops \
             {CLUSTER_RESOURCE} and says so,\n  keeping only the VIP address until the next node \
             has added and announced it; that node\n  then starts {CLUSTER_RESOURCE}. In a \
             failback the owner releases as soon as it hears n1, which\n  acquires once quorate \
             for two keepalives ({} ms)",
            ms(2 * spec.keepalive)
        ),
        format!(
            "{CLUSTER_RESOURCE}'s hook (in {hook_dir}) records each start and stop\n  and \
             whether the VIP was up; the demo adds `crash nX` when it kills a node\n  \
             ({CLUSTER_RESOURCE} dies with it, unstopped)"
        ),
    ];
    for line in lines {
        say(out, &line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(lines: &[&str]) -> Vec<HookRun> {
        lines.iter().map(|l| HookRun::parse(l).unwrap()).collect()
    }

    #[test]
    fn reads_the_record_and_where_the_resource_runs() {
        let record = runs(&[
            "start n1 (VIP up)",
            "crash n1",
            "start n2 (VIP up)",
            "stop n2 (VIP up)",
            "start n1 (VIP up)",
        ]);
        assert_eq!(record[1].action, Action::Crash);
        assert_eq!(running_on(&record[..1]), [1]);
        assert_eq!(running_on(&record[..2]), [] as [usize; 0]);
        assert_eq!(running_on(&record[..3]), [2]);
        assert_eq!(running_on(&record), [1]);
        assert_eq!(check_order(&record), Ok(()));
        for bad in [
            "start n1",
            "begin n1 (VIP up)",
            "start x1 (VIP up)",
            "crash n1 (VIP up)",
        ] {
            assert_eq!(HookRun::parse(bad), None, "{bad}");
        }
        assert_eq!(record[3].text(), "stop n2 (VIP up)");
        assert_eq!(record[1].text(), "crash n1");
    }

    #[test]
    fn a_start_without_the_vip_or_on_two_nodes_breaks_the_order() {
        let without_vip = runs(&["start n1 (VIP down)"]);
        assert!(check_order(&without_vip).is_err());
        let twice = runs(&["start n1 (VIP up)", "start n2 (VIP up)"]);
        let broken = check_order(&twice).unwrap_err();
        assert!(broken.contains("n1+n2"), "{broken}");
        let late_stop = runs(&["start n1 (VIP up)", "stop n1 (VIP down)"]);
        assert!(check_order(&late_stop).is_err());
    }
}
