//! Signals as loop events: SIGTERM/SIGINT (graceful shutdown) and SIGHUP are blocked for the
//! process and read from a signalfd registered with mio. Children get a clean signal mask
//! (std resets it at spawn).
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// What the loop should do about a received signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    Shutdown(Signal),
    Reload,
}

pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    /// Blocks the handled signals in the calling thread (call before spawning threads) and
    /// opens the signalfd.
    pub fn install() -> io::Result<Self> {
        let mut mask = SigSet::empty();
        for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
            mask.add(s);
        }
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_fd().as_raw_fd()
    }

    /// Drains pending signals.
    pub fn read(&mut self, out: &mut Vec<SignalAction>) -> io::Result<()> {
        while let Some(info) = self.fd.read_signal()? {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGHUP) => out.push(SignalAction::Reload),
                Ok(sig) => out.push(SignalAction::Shutdown(sig)),
                Err(_) => {}
            }
        }
        Ok(())
    }
}
