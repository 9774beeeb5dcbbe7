//! librelevo_c: the C ABI over Relevo's control socket (one JSON request line, one JSON
//! reply line). Generic on purpose: a request is any JSON object, so every verb the daemon
//! learns is reachable without new C code; `relevo_json_get` reads replies without a JSON
//! library. Every call is bounded by the connection's timeout; no call raises SIGPIPE.
//! The C declarations are `relevo.h`, generated from this file by cbindgen (see
//! tests/header.rs).
mod client;
pub mod error;
pub mod json;

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use client::{Client, Failure};
pub use error::relevo_error;
use error::*;

/// The socket `relevo_connect(NULL, ...)` uses: relevo's default `[node] control_socket`
/// (tests/c_abi.rs checks they agree).
const DEFAULT_SOCKET: &CStr = c"/run/relevo/relevo.sock";

/// A handle to one daemon's control socket. Not thread-safe: use one handle per thread.
#[allow(non_camel_case_types)]
pub struct relevo_conn {
    client: Client,
}

/// `ptr` as a Rust string: `None` for NULL or text that is not UTF-8.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string.
unsafe fn text<'a>(ptr: *const c_char) -> Option<&'a str> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the caller promises a NUL-terminated string.
    unsafe { CStr::from_ptr(ptr) }.to_str().ok()
}

/// Stores `value` (a string for the caller to free with `relevo_free`) in `*out`, if `out`
/// is not NULL.
///
/// # Safety
/// `out` is NULL or valid for writes.
unsafe fn hand_out(out: *mut *mut c_char, value: Option<String>) {
    if out.is_null() {
        return;
    }
    let ptr = value
        .and_then(|v| CString::new(v).ok())
        .map_or(std::ptr::null_mut(), CString::into_raw);
    // SAFETY: the caller promises `out` is writable.
    unsafe { *out = ptr };
}

/// The C result of a call that hands out a line: 0 and the line, or the code and, for an
/// error reply, the line.
///
/// # Safety
/// `out` is NULL or valid for writes.
unsafe fn finish(result: std::result::Result<String, Failure>, out: *mut *mut c_char) -> c_int {
    match result {
        Ok(line) => {
            unsafe { hand_out(out, Some(line)) };
            RELEVO_OK.code()
        }
        Err((code, line)) => {
            unsafe { hand_out(out, line) };
            code.code()
        }
    }
}

/// Connects to the daemon's control socket at `socket_path` (NULL: `relevo_default_socket()`)
/// within 5 s. Returns the handle, or NULL with the reason in `*err` (if `err` is not NULL):
/// `RELEVO_E_NO_SOCKET`, `RELEVO_E_REFUSED`, `RELEVO_E_PERMISSION`, `RELEVO_E_TIMEOUT`, ...
/// Each request opens its own connection (the daemon answers one request per connection);
/// the one opened here serves the first request if it comes within a second.
///
/// # Safety
/// `socket_path` is NULL or a NUL-terminated string; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn relevo_connect(
    socket_path: *const c_char,
    err: *mut c_int,
) -> *mut relevo_conn {
    let path = if socket_path.is_null() {
        DEFAULT_SOCKET
    } else {
        // SAFETY: the caller promises a NUL-terminated string.
        unsafe { CStr::from_ptr(socket_path) }
    };
    let path = Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()));
    let result = Client::connect(path);
    let (conn, code) = match result {
        Ok(client) => (Box::into_raw(Box::new(relevo_conn { client })), RELEVO_OK),
        Err(code) => (std::ptr::null_mut(), code),
    };
    if !err.is_null() {
        // SAFETY: the caller promises `err` is writable.
        unsafe { *err = code.code() };
    }
    conn
}

/// Bounds every later call on `conn` (connect, send and reply together) by `timeout_ms`
/// milliseconds (default 5000). `RELEVO_E_INVALID` unless `timeout_ms` > 0.
///
/// # Safety
/// `conn` is NULL or a handle from `relevo_connect` not yet closed.
#[no_mangle]
pub unsafe extern "C" fn relevo_set_timeout(conn: *mut relevo_conn, timeout_ms: c_int) -> c_int {
    // SAFETY: the caller promises a live handle or NULL.
    let Some(conn) = (unsafe { conn.as_mut() }) else {
        return RELEVO_E_INVALID.code();
    };
    let Ok(ms) = u64::try_from(timeout_ms) else {
        return RELEVO_E_INVALID.code();
    };
    if ms == 0 {
        return RELEVO_E_INVALID.code();
    }
    conn.client.set_timeout(Duration::from_millis(ms));
    RELEVO_OK.code()
}

/// Sends `json_request_line` (one JSON object, e.g. `{"command":"status"}`; a trailing
/// newline is optional) and waits for the reply line. On `RELEVO_OK`, `*reply_json` is the
/// reply (without newline). On `RELEVO_E_DAEMON` or `RELEVO_E_PERMISSION` from an error reply
/// `{"error":"..."}`, `*reply_json` is that reply; otherwise NULL. Free it with
/// `relevo_free`. `reply_json` may be NULL when the reply is not wanted.
///
/// # Safety
/// `conn` is NULL or a live handle; `json_request_line` NULL or a NUL-terminated string;
/// `reply_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn relevo_request(
    conn: *mut relevo_conn,
    json_request_line: *const c_char,
    reply_json: *mut *mut c_char,
) -> c_int {
    unsafe { hand_out(reply_json, None) };
    // SAFETY: the caller's promises, passed on.
    let (Some(conn), Some(line)) = (unsafe { conn.as_mut() }, unsafe { text(json_request_line) })
    else {
        return RELEVO_E_INVALID.code();
    };
    unsafe { finish(conn.client.request(line), reply_json) }
}

/// `relevo_request` of `{"command":"status"}`: `*json` is the daemon's status (node,
/// instances, loop, counters, cluster: see relevo(8) `status --json`).
///
/// # Safety
/// As `relevo_request`.
#[no_mangle]
pub unsafe extern "C" fn relevo_status(conn: *mut relevo_conn, json: *mut *mut c_char) -> c_int {
    unsafe { relevo_send_verb(conn, c"status".as_ptr(), std::ptr::null(), json) }
}

/// `relevo_request` of `{"command": verb, ...args}`: the members of `args_json` (a JSON
/// object, or NULL/"" for none) go beside `command`, e.g. verb "takeover" with
/// `{"mode":"local"}`. `RELEVO_E_INVALID` if `args_json` is not an object or has a
/// `command` member.
///
/// # Safety
/// As `relevo_request`; `verb` and `args_json` NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn relevo_send_verb(
    conn: *mut relevo_conn,
    verb: *const c_char,
    args_json: *const c_char,
    reply: *mut *mut c_char,
) -> c_int {
    unsafe { hand_out(reply, None) };
    let Some(line) = (unsafe { verb_line(verb, args_json) }) else {
        return RELEVO_E_INVALID.code();
    };
    let Some(conn) = (unsafe { conn.as_mut() }) else {
        return RELEVO_E_INVALID.code();
    };
    unsafe { finish(conn.client.request(&line), reply) }
}

/// The request line of `verb` with `args_json`, `None` if either is malformed.
///
/// # Safety
/// Both NULL or NUL-terminated strings.
unsafe fn verb_line(verb: *const c_char, args_json: *const c_char) -> Option<String> {
    let verb = unsafe { text(verb) }?;
    let args = if args_json.is_null() {
        None
    } else {
        Some(unsafe { text(args_json) }?)
    };
    json::verb_request(verb, args).ok()
}

/// Sends `json_request_line` as a streaming request (e.g. `{"command":"events",
/// "follow":true}`) and keeps its connection: read the reply lines with
/// `relevo_events_next`. Replaces the stream in progress on `conn`, if any.
///
/// # Safety
/// As `relevo_request`.
#[no_mangle]
pub unsafe extern "C" fn relevo_stream(
    conn: *mut relevo_conn,
    json_request_line: *const c_char,
) -> c_int {
    let (Some(conn), Some(line)) = (unsafe { conn.as_mut() }, unsafe { text(json_request_line) })
    else {
        return RELEVO_E_INVALID.code();
    };
    match conn.client.start_stream(line) {
        Ok(()) => RELEVO_OK.code(),
        Err(code) => code.code(),
    }
}

/// `relevo_stream` of `{"command": verb, ...args}` (as `relevo_send_verb` builds it).
///
/// # Safety
/// As `relevo_send_verb`.
#[no_mangle]
pub unsafe extern "C" fn relevo_stream_verb(
    conn: *mut relevo_conn,
    verb: *const c_char,
    args_json: *const c_char,
) -> c_int {
    let Some(line) = (unsafe { verb_line(verb, args_json) }) else {
        return RELEVO_E_INVALID.code();
    };
    let Some(conn) = (unsafe { conn.as_mut() }) else {
        return RELEVO_E_INVALID.code();
    };
    match conn.client.start_stream(&line) {
        Ok(()) => RELEVO_OK.code(),
        Err(code) => code.code(),
    }
}

/// The next line of the stream `relevo_stream` started, waiting at most `timeout_ms`
/// milliseconds (0: only a line already received). `RELEVO_OK`: `*line` is the line (free
/// it with `relevo_free`). `RELEVO_E_TIMEOUT`: no complete line yet, call again (a partial
/// line is kept). `RELEVO_E_CLOSED`: the daemon ended the stream (and on every later call).
/// `RELEVO_E_DAEMON`: an error reply, in `*line`. `RELEVO_E_INVALID`: no stream, or
/// `timeout_ms` < 0.
///
/// # Safety
/// `conn` NULL or a live handle; `line` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn relevo_events_next(
    conn: *mut relevo_conn,
    line: *mut *mut c_char,
    timeout_ms: c_int,
) -> c_int {
    unsafe { hand_out(line, None) };
    let Some(conn) = (unsafe { conn.as_mut() }) else {
        return RELEVO_E_INVALID.code();
    };
    let Ok(ms) = u64::try_from(timeout_ms) else {
        return RELEVO_E_INVALID.code();
    };
    unsafe { finish(conn.client.next_line(Duration::from_millis(ms)), line) }
}

/// Closes `conn` (and its stream); NULL is ignored.
///
/// # Safety
/// `conn` NULL or a live handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn relevo_close(conn: *mut relevo_conn) {
    if !conn.is_null() {
        // SAFETY: the caller hands back a handle from relevo_connect, once.
        drop(unsafe { Box::from_raw(conn) });
    }
}

/// Frees a string the library handed out; NULL is ignored.
///
/// # Safety
/// `s` NULL or a string from this library, not freed before.
#[no_mangle]
pub unsafe extern "C" fn relevo_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: the string came from CString::into_raw in this library.
        drop(unsafe { CString::from_raw(s) });
    }
}

/// A static, human-readable text for `code` (any int: unknown codes get a text too).
#[no_mangle]
pub extern "C" fn relevo_strerror(code: c_int) -> *const c_char {
    error::strerror(code)
}

/// The socket `relevo_connect(NULL, ...)` uses, "/run/relevo/relevo.sock" (relevo's default
/// `[node] control_socket`).
#[no_mangle]
pub extern "C" fn relevo_default_socket() -> *const c_char {
    DEFAULT_SOCKET.as_ptr()
}

/// The value at JSON pointer `pointer` (RFC 6901: "/instances/0/state"; "" is the whole
/// document) of the JSON text `json`, as text in `*value` (free it with `relevo_free`): a
/// string without its quotes, a number, true/false, or an object or array as compact JSON.
/// `RELEVO_E_NO_VALUE` if missing or null; `RELEVO_E_PROTOCOL` if `json` does not parse.
///
/// # Safety
/// `json` and `pointer` NULL or NUL-terminated strings; `value` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn relevo_json_get(
    json: *const c_char,
    pointer: *const c_char,
    value: *mut *mut c_char,
) -> c_int {
    unsafe { hand_out(value, None) };
    let (Some(json), Some(pointer)) = (unsafe { text(json) }, unsafe { text(pointer) }) else {
        return RELEVO_E_INVALID.code();
    };
    match json::get(json, pointer) {
        Ok(v) => {
            unsafe { hand_out(value, Some(v)) };
            RELEVO_OK.code()
        }
        Err(code) => code.code(),
    }
}

/// How many elements (array) or members (object) the value at `pointer` of `json` has, in
/// `*len`. `RELEVO_E_NO_VALUE` if missing or neither an array nor an object.
///
/// # Safety
/// `json` and `pointer` NULL or NUL-terminated strings; `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn relevo_json_len(
    json: *const c_char,
    pointer: *const c_char,
    len: *mut usize,
) -> c_int {
    let (Some(json), Some(pointer)) = (unsafe { text(json) }, unsafe { text(pointer) }) else {
        return RELEVO_E_INVALID.code();
    };
    match json::len(json, pointer) {
        Ok(n) => {
            if !len.is_null() {
                // SAFETY: the caller promises `len` is writable.
                unsafe { *len = n };
            }
            RELEVO_OK.code()
        }
        Err(code) => code.code(),
    }
}
