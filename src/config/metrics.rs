//! `[metrics]`: the address of the Prometheus endpoint and read-only status page (optional;
//! without the table no listener is opened).

use std::net::SocketAddr;

use super::reader::{Diags, Value};
use super::types::MetricsConfig;

pub(crate) const KEYS: &[&str] = &["listen"];

/// Reads `[metrics]`; `None` when the table is wrong (reported).
pub(crate) fn read_metrics(diags: &mut Diags, value: &Value<'_>) -> Option<MetricsConfig> {
    let table = diags.table("metrics", "[metrics]", value)?;
    table.check_keys(diags, KEYS, &[]);
    let value = table.required(diags, "listen")?;
    let text = diags.string("listen", value)?;
    match text.parse::<SocketAddr>() {
        Ok(listen) => Some(MetricsConfig { listen }),
        Err(_) => {
            let message = format!(
                "`listen` must be an address and port such as \"127.0.0.1:9694\" or \"[::1]:9694\", got \"{}\"",
                text.escape_debug()
            );
            diags.error(&value.span(), message);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn parse(extra: &str) -> Result<crate::config::Config, String> {
        let text = format!(
            "[node]\nname = \"a\"\n[[vrrp]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 1\npriority = 100\nvips = [\"192.0.2.10/24\"]\n{extra}"
        );
        crate::config::parse(&text, Path::new("t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn listen_address() {
        let config = parse("[metrics]\nlisten = \"127.0.0.1:9694\"\n").unwrap();
        let listen = config.metrics.unwrap().listen;
        assert_eq!(listen, "127.0.0.1:9694".parse().unwrap());
        assert!(parse("").unwrap().metrics.is_none());
    }

    #[test]
    fn errors_at_line_and_column() {
        let error = parse("[metrics]\nlisten = \"localhost\"\n").unwrap_err();
        assert!(error.contains(":10:10:"), "{error}");
        assert!(error.contains("127.0.0.1:9694"), "{error}");
        let error = parse("[metrics]\nlisten = \"127.0.0.1:1\"\nport = 3\n").unwrap_err();
        assert!(error.contains(":11:1:"), "{error}");
        let error = parse("[metrics]\n").unwrap_err();
        assert!(error.contains("listen"), "{error}");
    }
}
