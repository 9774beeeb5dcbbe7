//! The files generated from the clap CLI (`relevo::cli`): the manual page `man/relevo.8` and
//! the shell completions under `packaging/completions/`. Each test regenerates them in memory
//! and fails when a committed copy differs; `RELEVO_BLESS=1 cargo test --test generated_files`
//! rewrites them. Also: `man/relevo-control.7` documents every field of the status reply.
use std::path::{Path, PathBuf};

use clap_complete::Shell;
use clap_mangen::Man;

const BLESS_HINT: &str = "RELEVO_BLESS=1 cargo test --release --test generated_files";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compares `generated` with the committed file `rel`, or rewrites it under RELEVO_BLESS=1.
/// Returns a line describing a stale file.
fn compare_or_bless(rel: &str, generated: &str) -> Option<String> {
    let path = root().join(rel);
    if std::env::var_os("RELEVO_BLESS").is_some_and(|v| v == "1") {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, generated).unwrap();
        eprintln!("rewrote {rel}");
        return None;
    }
    match std::fs::read_to_string(&path) {
        Ok(committed) if committed == generated => None,
        Ok(committed) => {
            let line = committed
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
            Some(format!(
                "{rel} is stale (first difference at line {})",
                line + 1
            ))
        }
        Err(e) => Some(format!("{rel}: {e}")),
    }
}

fn assert_fresh(stale: Vec<String>) {
    assert!(
        stale.is_empty(),
        "{}\nthese files are generated from the CLI in src/cli.rs: regenerate them with `{BLESS_HINT}` and commit the result (do not edit them by hand)",
        stale.join("\n")
    );
}

/// The string definition roff output starts with (kept once, at the top of the page).
const AQ_DEFINITION: [&str; 2] = [".ie \\n(.g .ds Aq", ".el .ds Aq"];

/// The page's date: bump it with a change to the page's text.
const DATE: &str = "2026-11-29";

/// A section of [`Man`] output without its `.SH` line, for pages made of several commands.
fn body(render: impl Fn(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    render(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    text.lines()
        .filter(|l| !l.starts_with(".SH ") && !l.starts_with(AQ_DEFINITION[0]))
        .filter(|l| !l.starts_with(AQ_DEFINITION[1]))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Text in roff: escapes backslashes, and lines starting with `.` or `'`.
fn roff_text(line: &str) -> String {
    let line = line.replace('\\', "\\e").replace('-', "\\-");
    if line.starts_with('.') || line.starts_with('\'') {
        format!("\\&{line}\n")
    } else {
        format!("{line}\n")
    }
}

/// A command's `long_about`: paragraphs separated by blank lines; lines indented by two
/// spaces are shown as they are (sample output).
fn description(cmd: &clap::Command) -> String {
    let text = cmd
        .get_long_about()
        .or_else(|| cmd.get_about())
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut out = String::new();
    let mut literal = false;
    for line in text.lines() {
        let indented = line.starts_with("  ");
        if indented != literal {
            out.push_str(if indented { ".PP\n.nf\n" } else { ".fi\n" });
            literal = indented;
        }
        if line.trim().is_empty() {
            out.push_str(".PP\n");
        } else {
            out.push_str(&roff_text(line));
        }
    }
    if literal {
        out.push_str(".fi\n");
    }
    out
}

/// The root command's `after_long_help` as manual page sections: a `Heading:` line opens a
/// section, a line indented by two spaces followed by lines indented by four is a tagged
/// paragraph, other indented lines are text.
fn after_help_sections(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            let heading = line.trim_end_matches(':').to_uppercase();
            out.push_str(&format!(".SH \"{heading}\"\n"));
        } else if line.starts_with("    ") {
            out.push_str(&roff_text(line.trim()));
        } else {
            let tagged = lines
                .get(i + 1)
                .is_some_and(|next| next.starts_with("    "));
            if tagged {
                out.push_str(".TP\n");
                out.push_str(&format!("\\fB{}\\fR\n", line.trim().replace('-', "\\-")));
            } else {
                out.push_str(&roff_text(line.trim()));
            }
        }
    }
    out
}

/// `man/relevo.8`: NAME, SYNOPSIS of every subcommand, DESCRIPTION, COMMANDS (each one's
/// synopsis, long help and options), OPTIONS, then the sections of `after_long_help`.
fn man_page() -> String {
    let mut cmd = relevo::cli::command();
    cmd.build();
    let man = Man::new(cmd.clone())
        .title("RELEVO")
        .section("8")
        .date(DATE)
        .manual("System Administration");
    // `relevo help` is clap's; the page itself is the help.
    let subcommands: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();

    let mut page = format!("{} \\(aq\n{} '\n", AQ_DEFINITION[0], AQ_DEFINITION[1]);
    page.push_str(&body(|w| man.render_title(w)));
    page.push_str(".SH NAME\n");
    page.push_str(&body(|w| man.render_name_section(w)));
    page.push_str(".SH SYNOPSIS\n");
    for (i, sub) in subcommands.iter().enumerate() {
        if i > 0 {
            page.push_str(".br\n");
        }
        page.push_str(&body(|w| {
            Man::new((*sub).clone()).render_synopsis_section(w)
        }));
    }
    page.push_str(".SH DESCRIPTION\n");
    page.push_str(&description(&cmd));
    page.push_str(".SH COMMANDS\n");
    for sub in &subcommands {
        let sub_man = Man::new((*sub).clone());
        page.push_str(&format!(".SS \"relevo {}\"\n", sub.get_name()));
        page.push_str(&body(|w| sub_man.render_synopsis_section(w)));
        page.push_str(".PP\n");
        page.push_str(&description(sub));
        page.push_str(".PP\nOptions:\n");
        page.push_str(&body(|w| sub_man.render_options_section(w)));
    }
    page.push_str(".SH OPTIONS\n");
    page.push_str(&body(|w| man.render_options_section(w)));
    let after = cmd
        .get_after_long_help()
        .expect("the root command has an after_long_help")
        .to_string();
    page.push_str(&after_help_sections(&after));
    page
}

fn completion(shell: Shell) -> String {
    let mut cmd = relevo::cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "relevo", &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn man_page_is_generated_from_the_cli() {
    let page = man_page();
    // The page says what the CLI says: every visible subcommand, and the prose of `run`.
    for sub in ["run", "check", "fence", "status", "demo"] {
        assert!(page.contains(&format!(".SS \"relevo {sub}\"")), "{sub}");
    }
    assert!(
        !page.contains("relevo probe"),
        "hidden subcommands stay out"
    );
    assert!(page.contains(".SH \"EXIT STATUS\""));
    assert_fresh(
        compare_or_bless("man/relevo.8", &page)
            .into_iter()
            .collect(),
    );
}

#[test]
fn shell_completions_are_generated_from_the_cli() {
    let files = [
        ("packaging/completions/relevo.bash", Shell::Bash),
        ("packaging/completions/_relevo", Shell::Zsh),
        ("packaging/completions/relevo.fish", Shell::Fish),
    ];
    let stale = files
        .iter()
        .filter_map(|(rel, shell)| {
            let text = completion(*shell);
            assert!(text.contains("status"), "{rel} completes the subcommands");
            compare_or_bless(rel, &text)
        })
        .collect();
    assert_fresh(stale);
}

#[test]
fn bash_completion_completes_subcommands() {
    // Loads the committed completion into bash and asks it what `relevo st<TAB>` completes to.
    let script = format!(
        "source {}; COMP_WORDS=(relevo st); COMP_CWORD=1; COMP_LINE='relevo st'; COMP_POINT=9; \
         _relevo relevo st relevo; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        root().join("packaging/completions/relevo.bash").display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash runs");
    let words = String::from_utf8_lossy(&out.stdout);
    assert!(
        words.lines().any(|w| w == "status"),
        "relevo st<TAB> offers status: {words:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every key of a status reply, nested ones included, as `.B key` or `.BR key` in the page.
#[test]
fn control_page_documents_every_status_field() {
    let page = std::fs::read_to_string(root().join("man/relevo-control.7")).unwrap();
    let vip = serde_json::json!({"vip": "192.0.2.1/24", "interface": "eth0", "held": true,
        "present": true, "foreign": false, "restored": 0, "failures": 0, "last_error": null});
    let reply = serde_json::json!({
        "node": "n1",
        "instances": [{"name": "web", "interface": "eth0", "vrid": 51, "version": 3,
            "priority": 100, "state": "MASTER", "master": null, "vips": [],
            "advert_interval_ms": 1000, "master_down_interval_ms": 3000, "counters": {},
            "vip_status": [vip]}],
        "cluster": {"id": 1, "quorate": true, "votes": 2, "needed": 2, "partition": [],
            "members": [{"name": "n2", "alive": false, "links": [], "last_heard_ms": [],
                "fence": "fenced", "fence_error": "x"}],
            "groups": [{"name": "g", "state": "held", "reason": "", "owner": null,
                "failed_starts": 0, "vip_status": [vip]}],
            "heartbeats_sent": 0, "heartbeats_received": 0, "dropped": {}}
    });
    // Through the daemon's own types, so that a field they gain must be documented here.
    let status: relevo::daemon::control::Status = serde_json::from_value(reply).unwrap();
    let value = serde_json::to_value(&status).unwrap();
    let mut keys = Vec::new();
    collect_keys(&value, &mut keys);
    assert!(keys.len() > 40, "{keys:?}");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| {
            let k = k.replace('-', "\\-");
            !page
                .lines()
                .any(|l| l.split_whitespace().any(|w| w.trim_end_matches(',') == k))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "status fields missing from man/relevo-control.7: {missing:?}"
    );
}

fn collect_keys(value: &serde_json::Value, keys: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
                collect_keys(v, keys);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_keys(v, keys)),
        _ => {}
    }
}

#[test]
fn relevo_8_refers_to_the_control_page() {
    let page = std::fs::read_to_string(Path::new(&root()).join("man/relevo.8")).unwrap();
    assert!(page.contains("relevo\\-control(7)"));
}
