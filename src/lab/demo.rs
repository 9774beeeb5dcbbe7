//! `relevo demo`: two parts, each in its own namespace lab with a client measuring every
//! outage with a 1 ms probe, everything removed on exit and on Ctrl-C.
//!
//! - VRRP (this module): three daemons on a bridge, an election, then a crash, a return with
//!   preemption and a graceful stop.
//! - Cluster ([`crate::lab::demo_cluster`]): three cluster nodes over two heartbeat links, a
//!   resource group with a VIP and an ordered resource, moved by a crash, a failback and a
//!   graceful stop.
//!
//! The report types and the step lines and closing table are shared by both parts.
use crate::lab::fault::{measure_failover, measure_return, vip_address, FailoverResult, Fault};
use crate::lab::netns::{check_prerequisites, Lab};
use crate::lab::peer::{PeerImpl, PeerSpec, VrrpPeer};
use crate::lab::probe::ProbeHandle;
use crate::lab::util::{check_interrupted, install_interrupt_handler, interrupted};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const VIP: &str = "192.0.2.100/24";
const VRID: u8 = 51;
const PRIORITIES: [u8; 3] = [150, 100, 50];
const ADVERT_INTERVAL: Duration = Duration::from_millis(10);
/// The client's probe interval in both parts.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(1);
/// Upper bound for any election or failover in the demo.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// Which part of the demo to run (`relevo demo [PART]`; both when none is named).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoPart {
    /// Three VRRP daemons: crash, preemption, graceful stop.
    Vrrp,
    /// A three-node cluster with a resource group: crash, failback, graceful stop.
    Cluster,
}

/// What `relevo demo [PART]` does, with relevo daemons and the probe from `relevo_bin`: the
/// VRRP part, then the cluster part (or only `part`). Installs the Ctrl-C handler.
pub fn run(relevo_bin: &Path, part: Option<DemoPart>) -> Result<()> {
    install_interrupt_handler()?;
    check_prerequisites()?;
    let result = run_parts(relevo_bin, part, &mut std::io::stdout());
    if interrupted() {
        bail!("interrupted; the demo's namespaces and processes were removed");
    }
    result
}

fn run_parts(relevo_bin: &Path, part: Option<DemoPart>, out: &mut dyn Write) -> Result<()> {
    let both = part.is_none();
    if both || part == Some(DemoPart::Vrrp) {
        let relevo = PeerImpl::Relevo(relevo_bin.to_path_buf());
        run_with(&relevo, relevo_bin, out).context("the VRRP part")?;
    }
    if both {
        say(out, "")?;
    }
    if both || part == Some(DemoPart::Cluster) {
        crate::lab::demo_cluster::run_with(relevo_bin, out).context("the cluster part")?;
    }
    Ok(())
}

/// One step of the demo and what it measured.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoStep {
    pub title: String,
    pub result: FailoverResult,
    /// Cluster part: the nodes running the group's resource after the step (from what its
    /// hooks recorded); `None` in the VRRP part.
    pub resource: Option<Vec<usize>>,
}

/// Everything the demo measured.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoReport {
    /// Time from starting the daemons to node 1 alone holding the VIP (cluster part: and
    /// running the resource).
    pub election: Duration,
    pub steps: Vec<DemoStep>,
}

/// The demo flow with any daemon implementation (the probe is `<relevo_bin> probe`), writing
/// to `out`.
pub fn run_with(
    implementation: &PeerImpl,
    relevo_bin: &Path,
    out: &mut dyn Write,
) -> Result<DemoReport> {
    let vip = vip_address(VIP)?;
    let vips = vec![VIP.to_string()];
    say(
        out,
        &format!(
            "{} demo: 3 nodes + 1 client on a bridge (network namespaces); VRRPv3, adverts \
             every {} ms, VIP {vip}",
            implementation.name(),
            ADVERT_INTERVAL.as_millis()
        ),
    )?;
    let lab = Lab::create("demo", PRIORITIES.len()).context("building the demo lab")?;
    let started = Instant::now();
    let mut peers = start_peers(&lab, implementation)?;
    lab.wait_master(vip, 1, STEP_TIMEOUT)
        .context("waiting for the first election")?;
    let election = started.elapsed();
    say(
        out,
        &format!(
            "election: n1 (priority {}) holds {vip} {} ms after start; n2 {} and n3 {} are backups",
            PRIORITIES[0],
            election.as_millis(),
            PRIORITIES[1],
            PRIORITIES[2]
        ),
    )?;
    let probe = start_probe(&lab, relevo_bin, vip, out)?;
    let n1 = peers
        .first_mut()
        .context("the demo started no daemons")?
        .as_mut();
    let mut steps = Vec::new();

    check_interrupted()?;
    let crash = measure_failover(&lab, &probe, n1, Fault::Crash, vip, STEP_TIMEOUT)?;
    steps.push(report(out, 1, "crash n1 (SIGKILL + cut off)", crash, None)?);

    check_interrupted()?;
    let back = measure_return(&lab, &probe, n1, Fault::Crash, &vips, STEP_TIMEOUT)
        .context("n1's return")?;
    steps.push(report(out, 2, "n1 reboots and preempts", back, None)?);

    check_interrupted()?;
    let stop = measure_failover(&lab, &probe, n1, Fault::Graceful, vip, STEP_TIMEOUT)?;
    steps.push(report(out, 3, "stop n1 gracefully (SIGTERM)", stop, None)?);

    summary(out, &steps)?;
    drop(probe);
    drop(peers);
    lab.destroy();
    say(out, "done; all namespaces and processes removed")?;
    Ok(DemoReport { election, steps })
}

fn start_peers(lab: &Lab, implementation: &PeerImpl) -> Result<Vec<Box<dyn VrrpPeer>>> {
    PRIORITIES
        .iter()
        .enumerate()
        .map(|(index, &priority)| {
            let spec = PeerSpec::new(VRID, priority, ADVERT_INTERVAL, &[VIP]);
            implementation
                .start(lab, index + 1, &spec)
                .with_context(|| format!("starting {} on n{}", implementation.name(), index + 1))
        })
        .collect()
}

/// Starts the client's probe of `vip` (every [`PROBE_INTERVAL`]) and says so.
pub(crate) fn start_probe(
    lab: &Lab,
    relevo_bin: &Path,
    vip: std::net::IpAddr,
    out: &mut dyn Write,
) -> Result<ProbeHandle> {
    let probe = ProbeHandle::spawn(lab, relevo_bin, vip, PROBE_INTERVAL)?;
    probe
        .wait_ready(STEP_TIMEOUT)
        .context("starting the probe")?;
    say(
        out,
        &format!(
            "client {} pings {vip} every {} ms and times every gap",
            lab.client_ipv4(),
            PROBE_INTERVAL.as_millis()
        ),
    )?;
    Ok(probe)
}

/// Prints step `n`'s line (outage, probes lost, who holds the VIP and, in the cluster part,
/// where the resource runs) and returns it as a [`DemoStep`].
pub(crate) fn report(
    out: &mut dyn Write,
    n: usize,
    title: &str,
    result: FailoverResult,
    resource: Option<Vec<usize>>,
) -> Result<DemoStep> {
    let lost = result.outage.map_or(0, |o| o.lost);
    let resource_text = resource
        .as_deref()
        .map(|nodes| format!("; resource on {}", holders(nodes)))
        .unwrap_or_default();
    say(
        out,
        &format!(
            "step {n}: {title:<34} client outage {:>7.1} ms ({lost} probes lost); VIP on {}\
             {resource_text}",
            result.outage_ms(),
            holders(&result.masters)
        ),
    )?;
    Ok(DemoStep {
        title: title.to_string(),
        result,
        resource,
    })
}

/// The closing table, with a "resource on" column when a step knows where the resource runs.
pub(crate) fn summary(out: &mut dyn Write, steps: &[DemoStep]) -> Result<()> {
    let with_resource = steps.iter().any(|step| step.resource.is_some());
    let resource_header = if with_resource { "  resource on" } else { "" };
    let header = format!(
        "  {:<4} {:<34} {:>10} {:>6}  {:<8}{resource_header}",
        "step", "event", "outage", "lost", "VIP on"
    );
    let mut text = format!("\n{}\n", header.trim_end());
    for (index, step) in steps.iter().enumerate() {
        let resource = match &step.resource {
            Some(nodes) => format!("  {}", holders(nodes)),
            None if with_resource => "  -".to_string(),
            None => String::new(),
        };
        let row = format!(
            "  {:<4} {:<34} {:>7.1} ms {:>6}  {:<8}{resource}",
            index + 1,
            step.title,
            step.result.outage_ms(),
            step.result.outage.map_or(0, |o| o.lost),
            holders(&step.result.masters)
        );
        text.push_str(row.trim_end());
        text.push('\n');
    }
    say(out, &text)
}

/// "n2", "none" or "n1+n2 (split brain)".
pub(crate) fn holders(nodes: &[usize]) -> String {
    match nodes {
        [] => "none".to_string(),
        [one] => format!("n{one}"),
        many => {
            let names: Vec<String> = many.iter().map(|n| format!("n{n}")).collect();
            format!("{} (split brain)", names.join("+"))
        }
    }
}

/// Writes `line` and flushes (the operator watches the demo as it runs).
pub(crate) fn say(out: &mut dyn Write, line: &str) -> Result<()> {
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .context("writing demo output")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_holders() {
        assert_eq!(holders(&[]), "none");
        assert_eq!(holders(&[2]), "n2");
        assert_eq!(holders(&[1, 2]), "n1+n2 (split brain)");
    }
}
