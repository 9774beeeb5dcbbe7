//! Seeded mutation fuzzing of the config parser: thousands of damaged configs must never panic,
//! every diagnostic must point inside the file, and every accepted config must satisfy the
//! invariants the daemon relies on.
mod seeded_rng;
use seeded_rng::Rng;

use std::path::Path;
use std::time::Duration;

use relevo::config::{self, Config, Family};
use relevo::wire::VrrpVersion;

const TOKENS: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    "=",
    ",",
    ".",
    "#",
    "\n",
    " ",
    "\t",
    "0",
    "-1",
    "255",
    "256",
    "1.5",
    "99999999999999999999",
    "0x",
    "1e999",
    "nan",
    "inf",
    "true",
    "\"1s\"",
    "\"10ms\"",
    "\"0s\"",
    "\"7ms\"",
    "\"\"",
    "\"\"\"",
    "[[vrrp]]\n",
    "[vrrp.hooks]\n",
    "[node]\n",
    "[cluster]\n",
    "é",
    "\u{0}",
    "\u{feff}",
    "\r\n",
    "/",
    "fe80::1",
    "\"2001:db8::1\"",
    "\"192.0.2.1/33\"",
    "vrid = 1\n",
    "version = 2\n",
    "auth_pass = \"x\"\n",
    "v3_ipv4_checksum = \"no-pseudo-header\"\n",
    "accept_mode = true\n",
    "hooks.master = \"/bin/true\"\n",
    "unicast_peers = [\"192.0.2.9\"]\n",
    "1979-05-27T07:32:00Z",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..=rng.index(3) {
        let at = rng.index(chars.len() + 1);
        match rng.index(5) {
            0 => {
                let end = (at + 1 + rng.index(8)).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            1 | 2 => {
                let token = TOKENS[rng.index(TOKENS.len())];
                chars.splice(at..at, token.chars());
            }
            3 => {
                if let Some(c) = chars.get_mut(at) {
                    if c.is_ascii_digit() {
                        *c = char::from(b'0' + rng.index(10) as u8);
                    }
                }
            }
            _ => {
                let lines: Vec<String> = chars
                    .iter()
                    .collect::<String>()
                    .lines()
                    .map(str::to_string)
                    .collect();
                if !lines.is_empty() {
                    let line = &lines[rng.index(lines.len())];
                    let insert_at = chars.iter().take(at).filter(|&&c| c == '\n').count();
                    let mut new_lines = lines.clone();
                    new_lines.insert(insert_at.min(lines.len()), line.clone());
                    chars = new_lines.join("\n").chars().collect();
                }
            }
        }
    }
    chars.into_iter().collect()
}

fn check_invariants(config: &Config) {
    assert!(!config.node.name.is_empty());
    assert!(config.node.control_socket.is_absolute());
    assert!(!config.vrrp.is_empty());
    for vrrp in &config.vrrp {
        assert!(!vrrp.name.is_empty() && !vrrp.interface.is_empty());
        assert!(vrrp.vrid >= 1 && vrrp.priority >= 1);
        assert!(!vrrp.vips.is_empty());
        let family = vrrp.family();
        for vip in &vrrp.vips {
            assert_eq!(vip.addr.is_ipv6(), family == Family::V6);
        }
        for peer in &vrrp.unicast_peers {
            assert_eq!(peer.is_ipv6(), family == Family::V6);
        }
        let cs = vrrp.advert_interval_cs();
        assert!((1..=4095).contains(&cs) || vrrp.version == VrrpVersion::V2);
        assert_eq!(
            Duration::from_millis(u64::from(cs) * 10),
            vrrp.advert_interval
        );
        if vrrp.version == VrrpVersion::V2 {
            assert_eq!(family, Family::V4);
            assert_eq!(cs % 100, 0);
        } else {
            assert_eq!(vrrp.auth_pass, None);
        }
        assert!((1..=100).contains(&vrrp.announce.repeat));
    }
}

#[test]
fn mutated_configs_never_panic_and_errors_point_inside_the_file() {
    let seeds = [
        include_str!("configs/full.toml"),
        include_str!("configs/minimal.toml"),
        include_str!("../examples/relevo.toml"),
    ];
    let mut rng = Rng::new(0x5eed_c0f1_6000_0001);
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..6000 {
        let mut text = seeds[round % seeds.len()].to_string();
        // Stack a few generations so damage accumulates.
        for _ in 0..=rng.index(3) {
            text = mutate(&mut rng, &text);
        }
        match config::parse(&text, Path::new("fuzz.toml")) {
            Ok(config) => {
                accepted += 1;
                check_invariants(&config);
            }
            Err(error) => {
                refused += 1;
                let line_count = text.split('\n').count();
                assert!(!error.diagnostics.is_empty());
                for d in &error.diagnostics {
                    assert!(
                        d.line >= 1 && d.line <= line_count,
                        "line {} of {line_count}: {d}\n{text}",
                        d.line
                    );
                    assert!(d.column >= 1, "{d}");
                    assert!(!d.message.is_empty());
                }
                assert!(error.to_string().contains("fuzz.toml:"));
            }
        }
    }
    eprintln!("accepted {accepted}, refused {refused}");
    // The mix must exercise both outcomes, or the mutations are too weak or too strong.
    assert!(
        accepted > 300 && refused > 3000,
        "accepted {accepted}, refused {refused}"
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    const ALPHABET: &[u8] = b" =[]{}\"'.,#\n\tabvrdi0123456789_-:/\\\xff";
    let mut rng = Rng::new(42);
    for _ in 0..3000 {
        let len = rng.index(200);
        let bytes: Vec<u8> = (0..len)
            .map(|_| ALPHABET[rng.index(ALPHABET.len())])
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = config::parse(&text, Path::new("bytes.toml"));
    }
}
