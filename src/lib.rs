//! Relevo: a failover engine for Linux networks.
//!
//! Layers (arrows point to what a layer may use):
//! `main.rs` (CLI) -> [`config`], [`daemon`], [`import`], [`lab`], [`logging`];
//! [`import`] (other tools' configs) -> [`config`] (to validate what it writes);
//! `main.rs` (dispatch of [`cli`]) -> [`config`], [`daemon`], [`lab`], [`logging`];
//! [`daemon`] (the only I/O) -> [`engine`] (sans-I/O state machines) -> [`wire`] (codecs).
pub mod cli;
pub mod config;
pub mod control_client;
pub mod daemon;
pub mod engine;
pub mod fence;
pub mod import;
pub mod lab;
pub mod logging;
pub mod wire;
