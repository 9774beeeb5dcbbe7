//! The daemon: the only layer that performs I/O. One single-threaded mio loop owns every
//! socket, timer, signal and child process and feeds what happens into the engine.
pub mod hooks;
pub mod netlink;
