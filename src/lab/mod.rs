//! The namespace lab: real daemons (relevo or keepalived) on nodes in network namespaces joined
//! by a bridge, a client namespace running an outage probe, and fault injection (crash, cable
//! pull, link down, graceful stop). One implementation shared by `relevo demo`, the failover
//! benchmark (`benches/failover.rs`) and the root integration tests (`tests/lab_*.rs`).
//!
//! Everything here needs root and iproute2; [`check_prerequisites`] says so clearly.
pub mod bmc;
pub mod cluster;
pub mod demo;
pub mod demo_cluster;
pub mod fault;
pub mod flood;
pub mod keepalived;
pub mod netns;
pub mod peer;
pub mod probe;
pub mod relevo_node;
mod util;

pub use netns::{check_prerequisites, group_members, Lab, LabProcess, Topology};
pub use peer::{PeerImpl, PeerSpec, VrrpPeer};
pub use probe::{Outage, ProbeArgs, ProbeHandle};
pub use util::{
    bench_main, bench_trials, env_duration, install_interrupt_handler, interrupted, monotonic_ns,
    print_quantiles, process_usage, root_test_guard, sleep_checked, test_guard, write_script,
    ProcessUsage, Requirement, CHROMIUM, FENCE_IPMILAN, IPMI_SIM,
};
