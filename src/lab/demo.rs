//! `relevo demo`: three daemons and a client in network namespaces, an election, then a crash,
//! a return with preemption and a graceful stop, each with the outage the client measured.
//! Removes everything on exit and on Ctrl-C.
use crate::lab::fault::{measure_failover, vip_address, FailoverResult, Fault, SETTLE};
use crate::lab::netns::{check_prerequisites, Lab};
use crate::lab::peer::{PeerImpl, PeerSpec, VrrpPeer};
use crate::lab::probe::ProbeHandle;
use crate::lab::util::{check_interrupted, install_interrupt_handler, interrupted, monotonic_ns};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const VIP: &str = "192.0.2.100/24";
const VRID: u8 = 51;
const PRIORITIES: [u8; 3] = [150, 100, 50];
const ADVERT_INTERVAL: Duration = Duration::from_millis(10);
const PROBE_INTERVAL: Duration = Duration::from_millis(1);
/// Upper bound for any election or failover in the demo.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// What `relevo demo` does, with relevo daemons and the probe from `relevo_bin`.
pub fn run(relevo_bin: &Path) -> Result<()> {
    run_as(&PeerImpl::Relevo(relevo_bin.to_path_buf()), relevo_bin)
}

/// The demo with any daemon implementation (e.g. `PeerImpl::Keepalived` for a side-by-side
/// look); the probe always runs as `<relevo_bin> probe`. Installs the Ctrl-C handler.
pub fn run_as(implementation: &PeerImpl, relevo_bin: &Path) -> Result<()> {
    install_interrupt_handler()?;
    check_prerequisites()?;
    let result = run_with(implementation, relevo_bin, &mut std::io::stdout());
    if interrupted() {
        bail!("interrupted; the demo's namespaces and processes were removed");
    }
    result.map(drop)
}

/// One step of the demo and what it measured.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoStep {
    pub title: String,
    pub result: FailoverResult,
}

/// Everything the demo measured.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoReport {
    /// Time from starting the daemons to node 1 alone holding the VIP.
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
    let probe = ProbeHandle::spawn(&lab, relevo_bin, vip, PROBE_INTERVAL)?;
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
    let n1 = peers
        .first_mut()
        .context("the demo started no daemons")?
        .as_mut();
    let mut steps = Vec::new();

    check_interrupted()?;
    let crash = measure_failover(&lab, &probe, n1, Fault::Crash, vip, STEP_TIMEOUT)?;
    steps.push(report(out, 1, "crash n1 (SIGKILL + cable pulled)", crash)?);

    check_interrupted()?;
    let back = return_and_preempt(&lab, &probe, n1, &vips)?;
    steps.push(report(out, 2, "n1 reboots and preempts", back)?);

    check_interrupted()?;
    let stop = measure_failover(&lab, &probe, n1, Fault::Graceful, vip, STEP_TIMEOUT)?;
    steps.push(report(out, 3, "stop n1 gracefully (SIGTERM)", stop)?);

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

/// Step 2: the crashed node comes back; with the highest priority it takes the VIP back.
fn return_and_preempt(
    lab: &Lab,
    probe: &ProbeHandle,
    n1: &mut dyn VrrpPeer,
    vips: &[String],
) -> Result<FailoverResult> {
    let vip = vip_address(VIP)?;
    let t = monotonic_ns();
    Fault::Crash.restore(lab, n1, vips)?;
    lab.wait_master(vip, 1, STEP_TIMEOUT)
        .context("waiting for n1 to preempt")?;
    let outage = probe.wait_outage_after(t, SETTLE, STEP_TIMEOUT)?;
    Ok(FailoverResult {
        fault_ns: t,
        outage,
        masters: lab.masters(vip),
    })
}

fn report(out: &mut dyn Write, n: usize, title: &str, result: FailoverResult) -> Result<DemoStep> {
    let lost = result.outage.map_or(0, |o| o.lost);
    say(
        out,
        &format!(
            "step {n}: {title:<34} client outage {:>7.1} ms ({lost} probes lost); VIP on {}",
            result.outage_ms(),
            holders(&result.masters)
        ),
    )?;
    Ok(DemoStep {
        title: title.to_string(),
        result,
    })
}

fn summary(out: &mut dyn Write, steps: &[DemoStep]) -> Result<()> {
    let mut text = format!(
        "\n  {:<4} {:<34} {:>10} {:>6}  {}\n",
        "step", "event", "outage", "lost", "VIP on"
    );
    for (index, step) in steps.iter().enumerate() {
        text.push_str(&format!(
            "  {:<4} {:<34} {:>7.1} ms {:>6}  {}\n",
            index + 1,
            step.title,
            step.result.outage_ms(),
            step.result.outage.map_or(0, |o| o.lost),
            holders(&step.result.masters)
        ));
    }
    say(out, &text)
}

/// "n2", "none" or "n1+n2 (split brain)".
fn holders(nodes: &[usize]) -> String {
    match nodes {
        [] => "none".to_string(),
        [one] => format!("n{one}"),
        many => {
            let names: Vec<String> = many.iter().map(|n| format!("n{n}")).collect();
            format!("{} (split brain)", names.join("+"))
        }
    }
}

fn say(out: &mut dyn Write, line: &str) -> Result<()> {
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
