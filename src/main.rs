//! The `relevo` command: dispatches the subcommands of [`relevo::cli`] (the daemon `run`, and
//! `check`, `status`, `fence`, `demo`, ...).
use std::process::ExitCode;

use clap::Parser;

use relevo::cli::{Cli, Command, ControlArgs, OnOff, TakeoverScope};
use relevo::config;
use relevo::daemon::control::Request;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => exit_code(config::check_command(&config)),
        Command::Run { config } => {
            // Lives until the daemon has returned: dropping it flushes the log.
            let _log = relevo::logging::init();
            let cfg = match config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(1);
                }
            };
            report(relevo::daemon::run(cfg))
        }
        Command::Status {
            config,
            socket,
            json,
        } => report(status::run(&config, socket, json)),
        Command::Fence {
            node,
            action,
            config,
        } => report(fence_node(&config, &node, action.map(Into::into))),
        Command::Demo { part } => {
            let exe = match std::env::current_exe() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("relevo demo: cannot find its own executable: {e}");
                    return ExitCode::from(1);
                }
            };
            report(relevo::lab::demo::run(&exe, part))
        }
        Command::Probe(args) => report(relevo::lab::probe::run(args)),
        Command::ImportKeepalived { file, output } => exit_code(
            relevo::import::import_keepalived_command(&file, output.as_deref()),
        ),
        Command::Events { follow, control } => report(relevo::control_client::events(
            &control.socket(),
            follow,
            control.json,
        )),
        Command::Reload { check, control } => action(
            &control,
            Request {
                check,
                ..Request::new("reload")
            },
        ),
        Command::Standby { control } => action(&control, Request::new("standby")),
        Command::Takeover {
            scope,
            force,
            control,
        } => {
            let scope = match scope {
                TakeoverScope::Local => "local",
                TakeoverScope::Foreign => "foreign",
                TakeoverScope::All => "all",
                TakeoverScope::Failback => "failback",
            };
            action(
                &control,
                Request {
                    scope: Some(scope.to_string()),
                    force,
                    ..Request::new("takeover")
                },
            )
        }
        Command::Maintenance { mode, control } => {
            let mode = match mode {
                OnOff::On => "on",
                OnOff::Off => "off",
            };
            action(
                &control,
                Request {
                    scope: Some(mode.to_string()),
                    ..Request::new("maintenance")
                },
            )
        }
        Command::Switchover {
            name,
            to,
            force,
            control,
        } => action(
            &control,
            Request {
                name: Some(name),
                to,
                force,
                ..Request::new("switchover")
            },
        ),
    }
}

fn action(control: &ControlArgs, req: Request) -> ExitCode {
    report(relevo::control_client::action(
        &control.socket(),
        &req,
        control.json,
    ))
}

mod status {
    //! `relevo status`: asks the daemon over its control socket and prints a table.
    use std::path::{Path, PathBuf};

    use relevo::config;
    use relevo::daemon::control::{query_status, reply_error, request, Request};

    pub fn run(config_path: &Path, socket: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
        let socket = socket.unwrap_or_else(|| match config::load(config_path) {
            Ok(c) => c.node.control_socket,
            Err(_) => PathBuf::from(config::DEFAULT_CONTROL_SOCKET),
        });
        if json {
            // The reply as is, an error reply included (and then exit 1).
            let reply = request(&socket, &Request::new("status"))?;
            println!("{reply}");
            return match reply_error(&reply) {
                Some(error) => Err(anyhow::anyhow!("{error}")),
                None => Ok(()),
            };
        }
        let status = query_status(&socket)?;
        println!(
            "node {}  log_lines_dropped={} control_refused={}",
            status.node, status.log_lines_dropped, status.control_refused
        );
        let op = &status.operator;
        if op.maintenance || op.standby || !op.held_out.is_empty() {
            println!(
                "operator: maintenance {}, standby {}, held out of: {}",
                if op.maintenance { "ON" } else { "off" },
                if op.standby { "ON" } else { "off" },
                if op.held_out.is_empty() {
                    "-".to_string()
                } else {
                    op.held_out.join(", ")
                }
            );
        }
        println!(
            "{:<16} {:<10} {:>4} {:>3} {:>4}  {:<7} {:<26} VIPS",
            "INSTANCE", "INTERFACE", "VRID", "VER", "PRIO", "STATE", "MASTER"
        );
        for i in &status.instances {
            let master = match (i.state.as_str(), &i.master) {
                ("MASTER", _) => "(this node)".to_string(),
                (_, Some(m)) => m.clone(),
                (_, None) => "-".to_string(),
            };
            println!(
                "{:<16} {:<10} {:>4} {:>3} {:>4}  {:<7} {:<26} {}",
                i.name,
                i.interface,
                i.vrid,
                i.version,
                i.priority,
                i.state,
                master,
                i.vips.join(" ")
            );
            print_tracks(i);
            let counters: Vec<String> =
                i.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if !counters.is_empty() {
                println!("{:<16} {}", "", counters.join(" "));
            }
            for v in &i.vip_status {
                let trouble = v.failures > 0 || v.foreign || v.restored > 0 || v.held != v.present;
                if trouble {
                    println!(
                        "{:<16} vip {} on {}: held={} present={} foreign={} restored={} failures={}{}",
                        "",
                        v.vip,
                        v.interface,
                        v.held,
                        v.present,
                        v.foreign,
                        v.restored,
                        v.failures,
                        v.last_error
                            .as_ref()
                            .map(|e| format!(" last error: {e}"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        if let Some(c) = &status.cluster {
            print_cluster(c);
        }
        if status.hooks_refused > 0 {
            println!("hooks refused by hook_security: {}", status.hooks_refused);
        }
        let l = &status.loop_stats;
        println!(
            "loop: {} timers fired, lateness p50 {} µs, p99 {} µs, worst {} µs; {} stalls",
            l.timers_fired,
            l.timer_lateness_p50_us,
            l.timer_lateness_p99_us,
            l.timer_lateness_worst_us,
            l.stalls
        );
        Ok(())
    }

    /// The effective priority when tracks changed it, and each track of the instance.
    fn print_tracks(i: &relevo::daemon::control::InstanceStatus) {
        if i.effective_priority != 0 && i.effective_priority != i.priority {
            let changed: Vec<String> = i
                .tracks
                .iter()
                .filter(|t| t.applied != 0)
                .map(|t| format!("{} {:+}", t.name, t.applied))
                .collect();
            println!(
                "{:<16} effective priority {} (configured {}; {})",
                "",
                i.effective_priority,
                i.priority,
                changed.join(", ")
            );
        }
        for t in &i.tracks {
            let effect = if t.fault {
                "FAULT".to_string()
            } else if t.applied != 0 {
                format!("{:+}", t.applied)
            } else {
                "no change".to_string()
            };
            println!(
                "{:<16} track {} ({}, weight {}): {}, {effect}; {}",
                "", t.name, t.check, t.weight, t.state, t.detail
            );
        }
    }

    fn print_cluster(c: &relevo::daemon::control::ClusterStatus) {
        let quorum = if c.quorate { "quorate" } else { "NOT quorate" };
        println!(
            "cluster {}: {quorum} ({} votes, {} needed), partition {}",
            c.id,
            c.votes,
            c.needed,
            c.partition.join(",")
        );
        for m in &c.members {
            let alive = if m.alive { "alive" } else { "dead" };
            let fence = match (&m.fence, &m.fence_error) {
                (Some(state), Some(error)) => format!("  fence {state} ({error})"),
                (Some(state), None) => format!("  fence {state}"),
                _ => String::new(),
            };
            println!(
                "  node {:<14} {alive:<6} links {}{fence}",
                m.name,
                m.links.join(",")
            );
        }
        println!("{:<16} {:<10} {:<14} REASON", "GROUP", "STATE", "OWNER");
        for g in &c.groups {
            let owner = g.owner.clone().unwrap_or_else(|| "-".to_string());
            println!("{:<16} {:<10} {:<14} {}", g.name, g.state, owner, g.reason);
            if !g.failing_tracks.is_empty() {
                println!(
                    "{:<16} failing tracks: {} (not eligible here)",
                    "",
                    g.failing_tracks.join(", ")
                );
            }
        }
        let dropped: Vec<String> = c.dropped.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "heartbeats: {} sent, {} received; dropped: {}",
            c.heartbeats_sent,
            c.heartbeats_received,
            if dropped.is_empty() {
                "none".to_string()
            } else {
                dropped.join(" ")
            }
        );
    }
}

/// `relevo fence NODE`: loads the config, runs NODE's device, prints the outcome.
fn fence_node(
    path: &std::path::Path,
    node: &str,
    op: Option<relevo::fence::FenceOp>,
) -> anyhow::Result<()> {
    let cfg = config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cluster = cfg
        .cluster
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("{}: no [cluster], so no node to fence", path.display()))?;
    let Some(member) = cluster.nodes.iter().find(|n| n.name == node) else {
        let names: Vec<&str> = cluster.nodes.iter().map(|n| n.name.as_str()).collect();
        anyhow::bail!(
            "no [[cluster.node]] named \"{node}\" ({})",
            names.join(", ")
        );
    };
    let Some(device_name) = &member.fence else {
        anyhow::bail!("{node} has fence = \"none\": no fencing device to run");
    };
    let device = cfg
        .fence_device(device_name)
        .ok_or_else(|| anyhow::anyhow!("no [[fence]] device named \"{device_name}\""))?;
    let op = op.unwrap_or_else(|| device.action.into());
    let what = format!(
        "{node} (device {device_name}, {})",
        relevo::fence::describe(device)
    );
    match relevo::fence::run(device, op) {
        Ok(outcome) => {
            println!("{what}: {outcome}");
            Ok(())
        }
        Err(error) => anyhow::bail!("fence {op} {what}: {error}"),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relevo: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
