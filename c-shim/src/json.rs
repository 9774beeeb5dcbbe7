//! The JSON side of the protocol: checking a request line, building one from a verb and its
//! arguments, telling an error reply from an answer, and reading values out of a reply by JSON
//! pointer (so C callers need no JSON parser of their own).
use serde_json::{Map, Value};

use crate::error::*;

/// The longest reply line accepted: the daemon's own bound (`MAX_REPLY`, 1 MiB, newline
/// included) — longer means something else is talking on the socket.
pub(crate) const MAX_REPLY: usize = 1024 * 1024;

/// `line` as it goes on the wire (without its newline): one line holding a JSON object.
/// One trailing newline is allowed and dropped.
pub fn request_line(line: &str) -> Result<String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    if line.contains('\n') {
        return Err(RELEVO_E_INVALID);
    }
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(_)) => Ok(line.to_string()),
        _ => Err(RELEVO_E_INVALID),
    }
}

/// The request `{"command": verb, ...args}`: the members of `args` (a JSON object, or none)
/// sit beside `command`, the shape every verb of the control protocol uses.
pub fn verb_request(verb: &str, args: Option<&str>) -> Result<String> {
    if verb.is_empty() {
        return Err(RELEVO_E_INVALID);
    }
    let mut request = Map::new();
    request.insert("command".into(), Value::String(verb.into()));
    match args.map(str::trim).filter(|a| !a.is_empty()) {
        None => {}
        Some(args) => match serde_json::from_str::<Value>(args) {
            Ok(Value::Object(members)) => {
                if members.contains_key("command") {
                    return Err(RELEVO_E_INVALID);
                }
                request.extend(members);
            }
            _ => return Err(RELEVO_E_INVALID),
        },
    }
    Ok(Value::Object(request).to_string())
}

/// A reply line as the caller gets it: `Ok` for an answer; an error reply (an object whose
/// members are the string `error` and the protocol `version`, which is what the daemon
/// sends) is
/// `RELEVO_E_PERMISSION` when the daemon refused the peer and `RELEVO_E_DAEMON` otherwise;
/// anything that is not JSON is `RELEVO_E_PROTOCOL`.
pub fn classify_reply(line: &str) -> Result<()> {
    let value: Value = serde_json::from_str(line).map_err(|_| RELEVO_E_PROTOCOL)?;
    match error_message(&value) {
        Some(message) if message.starts_with("permission denied") => Err(RELEVO_E_PERMISSION),
        Some(_) => Err(RELEVO_E_DAEMON),
        None => Ok(()),
    }
}

fn error_message(value: &Value) -> Option<&str> {
    let object = value.as_object()?;
    if object.keys().any(|k| k != "error" && k != "version") {
        return None;
    }
    object.get("error")?.as_str()
}

/// The value at JSON `pointer` (RFC 6901, "" is the whole document) of `json` as text:
/// a string without its quotes, anything else as compact JSON. Missing or null is
/// `RELEVO_E_NO_VALUE`; `json` that does not parse is `RELEVO_E_PROTOCOL`.
pub fn get(json: &str, pointer: &str) -> Result<String> {
    let doc: Value = serde_json::from_str(json).map_err(|_| RELEVO_E_PROTOCOL)?;
    match doc.pointer(pointer) {
        None | Some(Value::Null) => Err(RELEVO_E_NO_VALUE),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
    }
}

/// How many elements the array, or members the object, at `pointer` has.
pub fn len(json: &str, pointer: &str) -> Result<usize> {
    let doc: Value = serde_json::from_str(json).map_err(|_| RELEVO_E_PROTOCOL)?;
    match doc.pointer(pointer) {
        Some(Value::Array(a)) => Ok(a.len()),
        Some(Value::Object(o)) => Ok(o.len()),
        _ => Err(RELEVO_E_NO_VALUE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_one_line_holding_an_object() {
        assert_eq!(
            request_line("{\"command\":\"status\"}\n").as_deref(),
            Ok("{\"command\":\"status\"}")
        );
        assert_eq!(request_line("{\"a\":\n1}"), Err(RELEVO_E_INVALID));
        assert_eq!(request_line("[1]"), Err(RELEVO_E_INVALID));
        assert_eq!(request_line("status"), Err(RELEVO_E_INVALID));
    }

    #[test]
    fn a_verb_request_puts_its_arguments_beside_the_command() {
        assert_eq!(
            verb_request("status", None).as_deref(),
            Ok(r#"{"command":"status"}"#)
        );
        assert_eq!(
            verb_request("takeover", Some(r#" {"mode":"local","force":true} "#)).as_deref(),
            Ok(r#"{"command":"takeover","force":true,"mode":"local"}"#)
        );
        assert_eq!(
            verb_request("status", Some("")).as_deref(),
            Ok(r#"{"command":"status"}"#)
        );
        assert_eq!(verb_request("x", Some("[1]")), Err(RELEVO_E_INVALID));
        assert_eq!(
            verb_request("x", Some(r#"{"command":"y"}"#)),
            Err(RELEVO_E_INVALID)
        );
        assert_eq!(verb_request("", None), Err(RELEVO_E_INVALID));
    }

    #[test]
    fn error_replies_are_told_apart_from_answers() {
        assert_eq!(classify_reply(r#"{"node":"n1","instances":[]}"#), Ok(()));
        assert_eq!(
            classify_reply(r#"{"error":"unknown command \"x\""}"#),
            Err(RELEVO_E_DAEMON)
        );
        assert_eq!(
            classify_reply(r#"{"error":"permission denied: uid 1000 is not root (pid 7)"}"#),
            Err(RELEVO_E_PERMISSION)
        );
        assert_eq!(
            classify_reply(r#"{"error":"unknown command \"x\"","version":1}"#),
            Err(RELEVO_E_DAEMON)
        );
        // An answer that merely has an error member (an event, a fence state) is an answer.
        assert_eq!(
            classify_reply(r#"{"event":"fence-failed","error":"x"}"#),
            Ok(())
        );
        assert_eq!(classify_reply("garbage"), Err(RELEVO_E_PROTOCOL));
    }

    #[test]
    fn values_are_read_by_pointer() {
        let doc = r#"{"node":"n1","instances":[{"state":"MASTER","vrid":51,"master":null}]}"#;
        assert_eq!(get(doc, "/node").as_deref(), Ok("n1"));
        assert_eq!(get(doc, "/instances/0/state").as_deref(), Ok("MASTER"));
        assert_eq!(get(doc, "/instances/0/vrid").as_deref(), Ok("51"));
        assert_eq!(get(doc, "/instances/0/master"), Err(RELEVO_E_NO_VALUE));
        assert_eq!(get(doc, "/cluster"), Err(RELEVO_E_NO_VALUE));
        assert_eq!(len(doc, "/instances"), Ok(1));
        assert_eq!(len(doc, ""), Ok(2));
        assert_eq!(len(doc, "/node"), Err(RELEVO_E_NO_VALUE));
        assert_eq!(get("{", ""), Err(RELEVO_E_PROTOCOL));
    }
}
