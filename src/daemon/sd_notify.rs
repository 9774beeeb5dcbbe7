//! systemd's notification protocol (`sd_notify(3)`) for `Type=notify` services: READY=1 once
//! the daemon runs, STOPPING=1 when it shuts down, RELOADING=1 around a reload, and WATCHDOG=1
//! from the event loop at half of `$WATCHDOG_USEC`.
//!
//! The protocol is spoken directly rather than through a crate: a notification is one
//! datagram of `KEY=VALUE` lines sent to the Unix socket named by `$NOTIFY_SOCKET` (a path, or
//! an abstract name when it starts with `@`), which std's `UnixDatagram` does in a few lines,
//! so it costs no dependency. The socket is non-blocking: a notification that systemd cannot
//! take at once is dropped (and logged) instead of ever holding up the loop. Without
//! `$NOTIFY_SOCKET` (not under systemd) every call does nothing.
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tracing::{debug, warn};

/// Where notifications go, when the daemon runs under systemd.
struct Target {
    socket: UnixDatagram,
    addr: SocketAddr,
}

/// The daemon's notifier (see the module documentation).
pub struct SdNotify {
    target: Option<Target>,
    /// Half of `$WATCHDOG_USEC`, when the watchdog is on and meant for this process.
    watchdog_interval: Option<Duration>,
}

impl SdNotify {
    /// From `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`. A socket that cannot be set
    /// up is logged and notifications are off.
    pub fn from_env() -> Self {
        let socket = std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty());
        let target = socket.and_then(|name| {
            let name = name.to_string_lossy().into_owned();
            match Target::new(&name) {
                Ok(target) => Some(target),
                Err(e) => {
                    warn!("NOTIFY_SOCKET={name}: {e}; not notifying systemd");
                    None
                }
            }
        });
        let watchdog_interval = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        )
        .filter(|_| target.is_some());
        Self {
            target,
            watchdog_interval,
        }
    }

    /// How often the loop sends WATCHDOG=1 (half of `$WATCHDOG_USEC`), or `None`.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog_interval
    }

    /// READY=1: start-up done (sockets open, configuration applied), or a reload finished.
    pub fn ready(&self) {
        self.notify("READY=1");
    }

    /// STOPPING=1: shutdown started.
    pub fn stopping(&self) {
        self.notify("STOPPING=1");
    }

    /// RELOADING=1 with MONOTONIC_USEC (as `Type=notify-reload` wants): a reload started; send
    /// [`SdNotify::ready`] when it is done.
    pub fn reloading(&self) {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
            .unwrap_or_default();
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={now}"));
    }

    /// WATCHDOG=1: the loop is alive.
    pub fn watchdog(&self) {
        self.notify("WATCHDOG=1");
    }

    /// Sends `state` as one datagram (nothing when not under systemd); never blocks.
    pub fn send(&self, state: &str) -> io::Result<()> {
        match &self.target {
            Some(t) => t.socket.send_to_addr(state.as_bytes(), &t.addr).map(|_| ()),
            None => Ok(()),
        }
    }

    fn notify(&self, state: &str) {
        match self.send(state) {
            Ok(()) => debug!("sd_notify {}", state.replace('\n', " ")),
            Err(e) => warn!("sd_notify {}: {e}", state.replace('\n', " ")),
        }
    }
}

impl Target {
    fn new(name: &str) -> io::Result<Self> {
        let addr = match name.strip_prefix('@') {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes())?,
            None if name.starts_with('/') => SocketAddr::from_pathname(name)?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "neither an absolute path nor an abstract name (@...)",
                ))
            }
        };
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Self { socket, addr })
    }
}

/// Half of `usec` (systemd's advice), when set, positive, and `pid` (if set) is `own_pid`.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(own_pid) {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_is_half_of_watchdog_usec_for_this_pid_only() {
        let half = Some(Duration::from_millis(100));
        assert_eq!(watchdog_interval(Some("200000"), None, 7), half);
        assert_eq!(watchdog_interval(Some("200000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval(Some("200000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("x"), None, 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
    }

    #[test]
    fn sends_one_datagram_to_a_path_and_to_an_abstract_name() {
        let dir = std::env::temp_dir().join(format!("relevo-sdnotify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).unwrap();
        let notifier = Target::new(path.to_str().unwrap()).unwrap();
        notifier
            .socket
            .send_to_addr(b"READY=1", &notifier.addr)
            .unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_dir_all(&dir).unwrap();

        let name = format!("relevo-sdnotify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        let notify = SdNotify {
            target: Some(Target::new(&format!("@{name}")).unwrap()),
            watchdog_interval: None,
        };
        notify.reloading();
        let n = receiver.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{text}");
        assert!(Target::new("relative").is_err());
    }
}
