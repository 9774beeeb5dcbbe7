//! One interface over "a VRRP daemon on a lab node", implemented by relevo and keepalived, so
//! the demo, the benchmark and the tests run the same scenarios against either.
use crate::lab::keepalived::{KeepalivedConfig, KeepalivedNode};
use crate::lab::netns::Lab;
use crate::lab::relevo_node::{RelevoNode, VrrpInstance};
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

/// What a peer runs: one VRRP instance on eth0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub vrid: u8,
    pub priority: u8,
    /// 2 or 3.
    pub version: u8,
    pub advert_interval: Duration,
    /// "ADDR/LEN" strings.
    pub vips: Vec<String>,
    pub preempt: bool,
    /// Virtual-MAC mode (Relevo `virtual_mac`, keepalived `use_vmac`).
    pub virtual_mac: bool,
}

impl PeerSpec {
    /// VRRPv3, preempting.
    pub fn new(vrid: u8, priority: u8, advert_interval: Duration, vips: &[&str]) -> Self {
        PeerSpec {
            vrid,
            priority,
            version: 3,
            advert_interval,
            vips: vips.iter().map(|v| v.to_string()).collect(),
            preempt: true,
            virtual_mac: false,
        }
    }

    fn relevo_instance(&self) -> VrrpInstance {
        let vips: Vec<&str> = self.vips.iter().map(String::as_str).collect();
        let mut instance = VrrpInstance::new(self.vrid, self.priority, self.advert_interval, &vips);
        instance.version = self.version;
        instance.preempt = self.preempt;
        instance.virtual_mac = self.virtual_mac;
        instance
    }

    fn keepalived_config(&self) -> KeepalivedConfig {
        let vips: Vec<&str> = self.vips.iter().map(String::as_str).collect();
        let mut config =
            KeepalivedConfig::new(self.vrid, self.priority, self.advert_interval, &vips);
        config.version = self.version;
        if !self.preempt {
            config.extra_lines.push("nopreempt".to_string());
        }
        if self.virtual_mac {
            config.extra_lines.push("use_vmac".to_string());
        }
        config
    }
}

/// Which daemon implementation to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerImpl {
    /// `relevo run` from this binary path.
    Relevo(PathBuf),
    /// The system's keepalived.
    Keepalived,
}

impl PeerImpl {
    /// "relevo" or "keepalived".
    pub fn name(&self) -> &'static str {
        match self {
            PeerImpl::Relevo(_) => "relevo",
            PeerImpl::Keepalived => "keepalived",
        }
    }

    /// Starts this implementation on node `node` of `lab`.
    pub fn start(&self, lab: &Lab, node: usize, spec: &PeerSpec) -> Result<Box<dyn VrrpPeer>> {
        Ok(match self {
            PeerImpl::Relevo(bin) => {
                let config = RelevoNode::config_for(lab, node, spec.relevo_instance());
                Box::new(RelevoNode::start(lab, node, bin, &config)?)
            }
            PeerImpl::Keepalived => {
                Box::new(KeepalivedNode::start(lab, node, &spec.keepalived_config())?)
            }
        })
    }
}

/// A VRRP daemon on a lab node.
pub trait VrrpPeer {
    /// The node number it runs on.
    fn node(&self) -> usize;
    /// Starts it again (after a crash or stop) with the same config.
    fn restart(&mut self, lab: &Lab) -> Result<()>;
    /// SIGTERM and wait: the daemon says goodbye (priority 0) and removes its VIPs.
    fn stop_graceful(&mut self) -> Result<()>;
    /// SIGKILL every process of the daemon at once: no goodbye, VIPs left behind.
    fn crash(&mut self) -> Result<()>;
    /// Whether it is running.
    fn is_running(&mut self) -> bool;
    /// The processes doing the work (for CPU/RSS figures).
    fn pids(&self) -> Vec<i32>;
    /// Its log file.
    fn log_path(&self) -> PathBuf;
}

impl VrrpPeer for RelevoNode {
    fn node(&self) -> usize {
        RelevoNode::node(self)
    }
    fn restart(&mut self, lab: &Lab) -> Result<()> {
        RelevoNode::restart(self, lab)
    }
    fn stop_graceful(&mut self) -> Result<()> {
        RelevoNode::stop_graceful(self)
    }
    fn crash(&mut self) -> Result<()> {
        RelevoNode::crash(self)
    }
    fn is_running(&mut self) -> bool {
        RelevoNode::is_running(self)
    }
    fn pids(&self) -> Vec<i32> {
        self.pid().into_iter().collect()
    }
    fn log_path(&self) -> PathBuf {
        RelevoNode::log_path(self).to_path_buf()
    }
}

impl VrrpPeer for KeepalivedNode {
    fn node(&self) -> usize {
        KeepalivedNode::node(self)
    }
    fn restart(&mut self, lab: &Lab) -> Result<()> {
        KeepalivedNode::restart(self, lab)
    }
    fn stop_graceful(&mut self) -> Result<()> {
        KeepalivedNode::stop_graceful(self)
    }
    fn crash(&mut self) -> Result<()> {
        KeepalivedNode::crash(self)
    }
    fn is_running(&mut self) -> bool {
        KeepalivedNode::is_running(self)
    }
    fn pids(&self) -> Vec<i32> {
        KeepalivedNode::pids(self)
    }
    fn log_path(&self) -> PathBuf {
        KeepalivedNode::log_path(self)
    }
}
