//! Relevo: a failover engine for Linux networks.
//!
//! Layers (arrows point to what a layer may use):
//! `main.rs` (dispatch of [`cli`]) -> [`config`], [`daemon`], [`lab`], [`logging`];
//! [`daemon`] (the only I/O) -> [`engine`] (sans-I/O state machines) -> [`wire`] (codecs).
pub mod cli;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod fence;
pub mod lab;
pub mod logging;
pub mod wire;
