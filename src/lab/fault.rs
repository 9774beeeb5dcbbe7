//! The failure scenarios the demo, the benchmark and the tests inject into a master, how each
//! is undone, and "inject, then measure the client outage" as one step.
use crate::lab::netns::Lab;
use crate::lab::peer::VrrpPeer;
use crate::lab::probe::{Outage, ProbeHandle};
use crate::lab::util::monotonic_ns;
use anyhow::{Context, Result};
use std::net::IpAddr;
use std::time::Duration;

/// Quiet time after which a failover counts as finished (the probe adds its loss timeout).
pub const SETTLE: Duration = Duration::from_millis(300);

/// A failure of the master node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL of the daemon and, at the same instant, the node cut off on every link (its
    /// bridge ports stop forwarding, [`Lab::set_node_blocked`]): a node crash or power cut.
    /// (With SIGKILL alone the dead node's kernel would keep answering for the VIP.) The ports
    /// are blocked, not set down: a port set down takes the carrier off the node's eth0, and
    /// in the instant before the kill a cluster node would see its VIP interface go and
    /// release its group (run its stop hooks), which a crashing node never does.
    Crash,
    /// The node's own eth0 goes down: the daemon sees it (FAULT) and stops advertising.
    LinkDown,
    /// SIGTERM: the daemon resigns with a priority-0 advert and removes its VIPs.
    Graceful,
}

impl Fault {
    /// Every fault, in report order.
    pub const ALL: [Fault; 3] = [Fault::Crash, Fault::LinkDown, Fault::Graceful];

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Crash => "crash (SIGKILL + cut off)",
            Fault::LinkDown => "link down",
            Fault::Graceful => "graceful stop (SIGTERM)",
        }
    }

    /// Injects the fault into `peer`'s node; returns the monotonic instant (ns) just before.
    pub fn inject(self, lab: &Lab, peer: &mut dyn VrrpPeer) -> Result<u64> {
        let node = peer.node();
        let t = monotonic_ns();
        match self {
            // The cut first: from that instant the node is gone for the client and the
            // backups alike (a kill first would leave its kernel answering for the VIP while
            // the `bridge` command runs, and shorten the measured outage).
            Fault::Crash => {
                lab.set_node_blocked(node, true)?;
                peer.crash()?;
            }
            Fault::LinkDown => lab.set_node_link(node, false)?,
            Fault::Graceful => peer.stop_graceful()?,
        }
        Ok(t)
    }

    /// Brings the node back as it was before [`Fault::inject`] (does not wait for it to become
    /// master again). After a crash the node "reboots": the VIPs its killed daemon left on eth0
    /// are gone (as after a real reboot), the daemon starts, then the node is connected again.
    pub fn restore(self, lab: &Lab, peer: &mut dyn VrrpPeer, vips: &[String]) -> Result<()> {
        let node = peer.node();
        match self {
            Fault::Crash => {
                for vip in vips {
                    lab.remove_node_address(node, vip)?;
                }
                peer.restart(lab)?;
                lab.set_node_blocked(node, false)?;
            }
            Fault::LinkDown => lab.set_node_link(node, true)?,
            Fault::Graceful => peer.restart(lab)?,
        }
        Ok(())
    }
}

/// What one measured failover looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverResult {
    /// Monotonic instant of the fault (ns).
    pub fault_ns: u64,
    /// The client-visible outage after it (`None` = no probe lost).
    pub outage: Option<Outage>,
    /// Nodes holding the VIP once service was back.
    pub masters: Vec<usize>,
}

impl FailoverResult {
    /// Outage in ms (0 when nothing was lost).
    pub fn outage_ms(&self) -> f64 {
        self.outage.map_or(0.0, |o| o.millis())
    }
}

/// Injects `fault` into `peer` and measures the client outage until service is stable again
/// (at most `timeout`).
pub fn measure_failover(
    lab: &Lab,
    probe: &ProbeHandle,
    peer: &mut dyn VrrpPeer,
    fault: Fault,
    vip: IpAddr,
    timeout: Duration,
) -> Result<FailoverResult> {
    let fault_ns = fault
        .inject(lab, peer)
        .with_context(|| format!("injecting {} on node {}", fault.name(), peer.node()))?;
    let outage = probe
        .wait_outage_after(fault_ns, SETTLE, timeout)
        .with_context(|| format!("measuring the outage after {}", fault.name()))?;
    Ok(FailoverResult {
        fault_ns,
        outage,
        masters: lab.masters(vip),
    })
}

/// Undoes `fault` on `peer`'s node ([`Fault::restore`]) and measures the client outage of the
/// node taking the VIP back (preemption, or a cluster group's failback): waits until that node
/// alone serves `vip`, then until service is stable (at most `timeout` each).
pub fn measure_return(
    lab: &Lab,
    probe: &ProbeHandle,
    peer: &mut dyn VrrpPeer,
    fault: Fault,
    vips: &[String],
    timeout: Duration,
) -> Result<FailoverResult> {
    let node = peer.node();
    let vip = vip_address(vips.first().context("no VIP to measure")?)?;
    let fault_ns = monotonic_ns();
    fault
        .restore(lab, peer, vips)
        .with_context(|| format!("undoing {} on node {node}", fault.name()))?;
    lab.wait_master(vip, node, timeout)
        .with_context(|| format!("waiting for node {node} to take {vip} back"))?;
    let outage = probe
        .wait_outage_after(fault_ns, SETTLE, timeout)
        .with_context(|| format!("measuring the outage of node {node}'s return"))?;
    Ok(FailoverResult {
        fault_ns,
        outage,
        masters: lab.masters(vip),
    })
}

/// The address part of "ADDR/LEN".
pub fn vip_address(cidr: &str) -> Result<IpAddr> {
    let addr = cidr.split('/').next().unwrap_or(cidr);
    addr.parse()
        .with_context(|| format!("{cidr:?} is not an address/prefix"))
}
