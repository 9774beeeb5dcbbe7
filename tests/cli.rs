//! The `relevo` binary as an operator meets it: `check` on good and broken files (exit codes,
//! file:line:column), `run` refusing a bad config, `demo` refusing to run without root.
use std::process::Command;

fn relevo(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_relevo"))
        .args(args)
        .output()
        .expect("running relevo");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_temp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("relevo-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const GOOD: &str = r#"[node]
name = "lb1"

[[vrrp]]
name = "web"
interface = "eth0"
vrid = 51
priority = 150
advert_interval = "10ms"
vips = ["192.0.2.100/24"]
"#;

#[test]
fn check_accepts_a_good_file_with_a_summary() {
    let path = write_temp("good.toml", GOOD);
    let (code, stdout, _) = relevo(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("web"), "{stdout}");
    assert!(stdout.contains("192.0.2.100/24"), "{stdout}");
}

#[test]
fn check_refuses_a_bad_file_with_line_and_column() {
    let bad = GOOD.replace("vrid = 51", "vrid = 300");
    let path = write_temp("bad.toml", &bad);
    let (code, _, stderr) = relevo(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    let expected = format!("{}:7:8:", path.display());
    assert!(stderr.contains(&expected), "want {expected} in: {stderr}");
    assert!(stderr.contains("vrid"), "{stderr}");
}

#[test]
fn check_reports_a_syntax_error_and_a_missing_file() {
    let path = write_temp("syntax.toml", "[node\nname = 1\n");
    let (code, _, stderr) = relevo(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains(":1:"), "{stderr}");
    let (code, _, stderr) = relevo(&["check", "-c", "/nonexistent/relevo.toml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("/nonexistent/relevo.toml"), "{stderr}");
}

#[test]
fn run_refuses_a_bad_config_before_touching_the_network() {
    let bad = GOOD.replace("priority = 150", "priority = 0");
    let path = write_temp("badrun.toml", &bad);
    let (code, _, stderr) = relevo(&["run", "-c", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(stderr.contains(":8:"), "{stderr}");
}
