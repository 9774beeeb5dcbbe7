//! Sans-I/O state machines. Every machine here is fed `(input, now)` and answers with actions
//! and its next deadline; none reads a clock, touches a socket or spawns a process.
pub mod announce;
pub mod fencing;
pub mod group;
pub mod hook_queue;
pub mod membership;
pub mod receive;
pub mod track;
pub mod vrrp;
