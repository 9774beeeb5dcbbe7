//! The library's error codes: what each C function returns, how a system error maps to one,
//! and the text `relevo_strerror` gives for each.
use std::ffi::CStr;
use std::io;
use std::os::raw::c_char;

/// What every `int`-returning function of the library returns: `RELEVO_OK` (0) or one of
/// these negative codes. `relevo_strerror` names each.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum relevo_error {
    /// Success.
    RELEVO_OK = 0,
    /// A NULL or malformed argument: a request that is not one line holding a JSON object,
    /// arguments that are not a JSON object, a timeout not above 0, no stream to read.
    RELEVO_E_INVALID = -1,
    /// The socket path does not exist: the daemon is not running (or uses another path).
    RELEVO_E_NO_SOCKET = -2,
    /// The socket exists but nobody listens: a daemon that died without removing it.
    RELEVO_E_REFUSED = -3,
    /// The socket's mode, or the daemon's peer check, refuses this user (root, or a member
    /// of `control_group`, may talk to it).
    RELEVO_E_PERMISSION = -4,
    /// The call's time ran out (the connection's timeout, or events_next's own).
    RELEVO_E_TIMEOUT = -5,
    /// Another system error talking to the socket (`errno` is not kept).
    RELEVO_E_IO = -6,
    /// The daemon answered something that is not one line of JSON, or a line over 1 MiB.
    RELEVO_E_PROTOCOL = -7,
    /// The daemon answered with an error reply `{"error":"..."}` (the reply is handed back).
    RELEVO_E_DAEMON = -8,
    /// The daemon closed the connection: no reply at all, or the end of a stream.
    RELEVO_E_CLOSED = -9,
    /// `relevo_json_get`/`relevo_json_len`: nothing (or null) at that JSON pointer, or not an
    /// array or object for `relevo_json_len`.
    RELEVO_E_NO_VALUE = -10,
}

pub use relevo_error::*;

/// A failed call's code.
pub type Result<T> = std::result::Result<T, relevo_error>;

impl relevo_error {
    /// The code as the C functions return it.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The code `code` stands for, if any.
    pub fn from_code(code: i32) -> Option<Self> {
        ALL.iter().copied().find(|e| e.code() == code)
    }

    /// The text `relevo_strerror` gives.
    pub fn message(self) -> &'static CStr {
        match self {
            RELEVO_OK => c"success",
            RELEVO_E_INVALID => c"invalid argument",
            RELEVO_E_NO_SOCKET => c"no control socket at that path (is relevo running?)",
            RELEVO_E_REFUSED => c"connection refused (stale socket: relevo is not running)",
            RELEVO_E_PERMISSION => c"permission denied (root or control_group only)",
            RELEVO_E_TIMEOUT => c"timed out",
            RELEVO_E_IO => c"system error on the control socket",
            RELEVO_E_PROTOCOL => c"protocol error: the reply is not one line of JSON",
            RELEVO_E_DAEMON => c"the daemon answered with an error",
            RELEVO_E_CLOSED => c"the daemon closed the connection",
            RELEVO_E_NO_VALUE => c"no such value in the JSON document",
        }
    }

    /// The code for a system error on the socket.
    pub fn from_io(e: &io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENOTDIR) => return RELEVO_E_NO_SOCKET,
            Some(libc::ECONNREFUSED) => return RELEVO_E_REFUSED,
            Some(libc::EACCES | libc::EPERM) => return RELEVO_E_PERMISSION,
            Some(libc::EAGAIN | libc::ETIMEDOUT) => return RELEVO_E_TIMEOUT,
            _ => {}
        }
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => RELEVO_E_TIMEOUT,
            io::ErrorKind::InvalidInput => RELEVO_E_INVALID,
            _ => RELEVO_E_IO,
        }
    }
}

/// Every code, for [`relevo_error::from_code`].
const ALL: [relevo_error; 11] = [
    RELEVO_OK,
    RELEVO_E_INVALID,
    RELEVO_E_NO_SOCKET,
    RELEVO_E_REFUSED,
    RELEVO_E_PERMISSION,
    RELEVO_E_TIMEOUT,
    RELEVO_E_IO,
    RELEVO_E_PROTOCOL,
    RELEVO_E_DAEMON,
    RELEVO_E_CLOSED,
    RELEVO_E_NO_VALUE,
];

/// `relevo_strerror` of a code that is none of the above.
pub const UNKNOWN_CODE: &CStr = c"unknown relevo error code";

/// The message of `code`, for C.
pub fn strerror(code: i32) -> *const c_char {
    relevo_error::from_code(code)
        .map_or(UNKNOWN_CODE, relevo_error::message)
        .as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_has_its_own_message() {
        let messages: std::collections::HashSet<_> = ALL.iter().map(|e| e.message()).collect();
        assert_eq!(messages.len(), ALL.len());
        for e in ALL {
            assert_eq!(relevo_error::from_code(e.code()), Some(e));
        }
        assert_eq!(relevo_error::from_code(-99), None);
    }

    #[test]
    fn system_errors_map_to_their_codes() {
        let os = |n| relevo_error::from_io(&io::Error::from_raw_os_error(n));
        assert_eq!(os(libc::ENOENT), RELEVO_E_NO_SOCKET);
        assert_eq!(os(libc::ECONNREFUSED), RELEVO_E_REFUSED);
        assert_eq!(os(libc::EACCES), RELEVO_E_PERMISSION);
        assert_eq!(os(libc::EAGAIN), RELEVO_E_TIMEOUT);
        assert_eq!(os(libc::EPIPE), RELEVO_E_IO);
    }
}
