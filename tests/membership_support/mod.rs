//! Shared by the cluster engine tests: membership parameters at simulation speed (keepalive
//! 2 ms, warntime 6 ms, deadtime 10 ms) for nodes 1..=n.
#![allow(dead_code)]
use std::time::Duration;

use relevo::engine::membership::Params;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Node `me` of nodes 1..=`n` over `links` links, with `initdead`.
pub fn membership_params(me: u8, n: u8, links: usize, initdead: Duration) -> Params {
    Params {
        me,
        nodes: (1..=n).collect(),
        links,
        keepalive: ms(2),
        warntime: ms(6),
        deadtime: ms(10),
        initdead,
        two_node: false,
        ping_nodes: false,
    }
}
