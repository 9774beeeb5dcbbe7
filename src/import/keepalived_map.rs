//! keepalived statements to Relevo config: `global_defs`, `vrrp_instance` and `vrrp_script`
//! mapped to `[node]`, `[[vrrp]]` and `[[track]]`;
//! every option that has no Relevo equivalent is recorded with where it was written.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::keepalived_parse::{Location, Statement};
use crate::config::{format_duration, name_problem, parse_duration, MAX_NAME_LEN};

/// keepalived's `vrrp_version` default (IPv6 instances are always version 3).
const DEFAULT_VERSION: u8 = 2;
const DEFAULT_PRIORITY: u8 = 100;
const OWNER_PRIORITY: u8 = 255;
/// VRRPv2 simple-text passwords are 8 bytes; keepalived uses the first 8 characters.
const MAX_PASS_LEN: usize = 8;

/// One keepalived option left out of the converted config, or converted with a caveat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remark {
    pub at: Location,
    /// The option as written.
    pub option: String,
    pub why: String,
}

/// The conversion: the TOML text, what was left out, what changed meaning.
#[derive(Debug, Default)]
pub struct Conversion {
    pub toml: String,
    /// Options not converted (each with where it was written).
    pub unconverted: Vec<Remark>,
    /// Options converted with a difference the operator should know about.
    pub notes: Vec<Remark>,
    /// How many `vrrp_instance`s became `[[vrrp]]` tables.
    pub instances: usize,
}

#[derive(Serialize, Default)]
struct Document {
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<NodeOut>,
    vrrp: Vec<VrrpOut>,
}

#[derive(Serialize)]
struct NodeOut {
    name: String,
}

#[derive(Serialize, Default)]
struct VrrpOut {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vrid: Option<u8>,
    priority: u8,
    version: u8,
    advert_interval: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    preempt: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preempt_delay: Option<String>,
    vips: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unicast_peers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_pass: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    virtual_mac: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vmac_interface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    garp_repeat: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    garp_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    garp_delay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    garp_refresh: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    track: Vec<String>,
    #[serde(skip_serializing_if = "Hooks::is_empty")]
    hooks: Hooks,
}

#[derive(Serialize, Default, Clone)]
struct Hooks {
    #[serde(skip_serializing_if = "Option::is_none")]
    master: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<Vec<String>>,
}

impl Hooks {
    fn is_empty(&self) -> bool {
        self.master.is_none()
            && self.backup.is_none()
            && self.fault.is_none()
            && self.stop.is_none()
    }

    fn slot(&mut self, event: &str) -> &mut Option<Vec<String>> {
        match event {
            "master" => &mut self.master,
            "backup" => &mut self.backup,
            "fault" => &mut self.fault,
            _ => &mut self.stop,
        }
    }
}

/// A `[[track]]` table of the design (script or interface check).
#[derive(Serialize, Clone)]
struct TrackOut {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    script: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rise: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fall: Option<u32>,
    weight: i64,
}

#[derive(Serialize)]
struct Tracks<'a> {
    track: &'a [TrackOut],
}

/// `global_defs` values that instances inherit.
#[derive(Default)]
struct Globals {
    version: Option<u8>,
    garp_delay: Option<Duration>,
    garp_repeat: Option<(u32, Statement)>,
    garp_refresh: Option<Duration>,
    garp_interval: Option<(Duration, Statement)>,
    gna_interval: Option<(Duration, Statement)>,
}

struct Mapper {
    out: Conversion,
    globals: Globals,
    /// `vrrp_script`s by name.
    scripts: BTreeMap<String, TrackOut>,
    /// The `[[track]]`s instances use, in first-use order, and each instance's `track` list.
    tracks: Vec<TrackOut>,
}

impl Mapper {
    fn unconverted(&mut self, statement: &Statement, why: impl Into<String>) {
        self.out.unconverted.push(Remark {
            at: statement.at.clone(),
            option: statement.text(),
            why: why.into(),
        });
    }

    fn note(&mut self, statement: &Statement, why: impl Into<String>) {
        self.out.notes.push(Remark {
            at: statement.at.clone(),
            option: statement.text(),
            why: why.into(),
        });
    }
}

/// Converts parsed keepalived statements; the TOML has a header comment naming `source`.
pub fn convert(statements: &[Statement], source: &str) -> Conversion {
    let mut mapper = Mapper {
        out: Conversion::default(),
        globals: Globals::default(),
        scripts: BTreeMap::new(),
        tracks: Vec::new(),
    };
    let mut document = Document::default();
    // Globals and scripts first: instances may come before them in the file.
    for statement in statements {
        match statement.keyword() {
            "global_defs" => document.node = read_globals(&mut mapper, statement),
            "vrrp_script" => read_script(&mut mapper, statement),
            _ => {}
        }
    }
    for statement in statements {
        match statement.keyword() {
            "global_defs" | "vrrp_script" => {}
            "vrrp_instance" => {
                if let Some(instance) = read_instance(&mut mapper, statement) {
                    document.vrrp.push(instance);
                }
            }
            "vrrp_sync_group" => read_sync_group(&mut mapper, statement),
            "virtual_server" | "virtual_server_group" => mapper.unconverted(
                statement,
                "load balancing (LVS) is not part of Relevo; the whole block is left out",
            ),
            _ => mapper.unconverted(statement, "not a keepalived option Relevo converts"),
        }
    }
    let used: Vec<&String> = mapper.tracks.iter().map(|track| &track.name).collect();
    let unused: Vec<String> = mapper
        .scripts
        .keys()
        .filter(|name| !used.contains(name))
        .cloned()
        .collect();
    for name in unused {
        // Not an error in keepalived either: a script no instance tracks is never run.
        let at = statements
            .iter()
            .find(|s| s.keyword() == "vrrp_script" && s.args().first() == Some(&name));
        if let Some(statement) = at {
            mapper.note(statement, "no instance tracks this script; left out");
        }
    }
    let order = |remark: &Remark| (remark.at.included.clone(), remark.at.line);
    mapper.out.unconverted.sort_by_key(order);
    mapper.out.notes.sort_by_key(order);
    mapper.out.instances = document.vrrp.len();
    mapper.out.toml = render(&mapper, &document, source);
    mapper.out
}

fn render(mapper: &Mapper, document: &Document, source: &str) -> String {
    let mut text = format!(
        "# Converted from {source} by `relevo import-keepalived`.\n\
         # Check it with `relevo check -c FILE`; see relevo.toml(5).\n\n"
    );
    // Serializing plain structs of strings and numbers cannot fail; an empty body would show.
    text.push_str(&toml::to_string(document).unwrap_or_default());
    if !mapper.tracks.is_empty() {
        text.push_str("\n# keepalived's vrrp_script/track_script and track_interface\n");
        let tracks = toml::to_string(&Tracks {
            track: &mapper.tracks,
        })
        .unwrap_or_default();
        text.push_str(&tracks);
    }
    text
}

/// A valid Relevo name from a keepalived one: other characters become '_'.
fn relevo_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(MAX_NAME_LEN);
    out
}

/// keepalived seconds ("1", "0.5") as a duration.
fn seconds(text: &str) -> Option<Duration> {
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        parse_duration(&format!("{text}s")).ok()
    } else {
        None
    }
}

fn duration_text(duration: Duration) -> String {
    format_duration(duration)
}

/// The single argument of `statement`, or a remark saying what is wrong with it.
fn single_arg<'s>(mapper: &mut Mapper, statement: &'s Statement) -> Option<&'s str> {
    match statement.args() {
        [arg] => Some(arg.as_str()),
        _ => {
            mapper.unconverted(statement, "expected exactly one value");
            None
        }
    }
}

fn integer<T: std::str::FromStr>(
    mapper: &mut Mapper,
    statement: &Statement,
    what: &str,
) -> Option<T> {
    let arg = single_arg(mapper, statement)?;
    let value = arg.parse().ok();
    if value.is_none() {
        mapper.unconverted(statement, format!("\"{arg}\" is not {what}"));
    }
    value
}

fn duration_arg(mapper: &mut Mapper, statement: &Statement) -> Option<Duration> {
    let arg = single_arg(mapper, statement)?;
    let value = seconds(arg);
    if value.is_none() {
        mapper.unconverted(statement, format!("\"{arg}\" is not a number of seconds"));
    }
    value
}

fn read_globals(mapper: &mut Mapper, block: &Statement) -> Option<NodeOut> {
    let mut node = None;
    for statement in block.block.iter().flatten() {
        match statement.keyword() {
            "router_id" => {
                let Some(id) = single_arg(mapper, statement) else {
                    continue;
                };
                if name_problem(id).is_none() {
                    node = Some(NodeOut {
                        name: id.to_string(),
                    });
                } else {
                    mapper.unconverted(
                        statement,
                        "not a valid Relevo node name; [node] name defaults to the host name",
                    );
                }
            }
            "vrrp_version" => match integer::<u8>(mapper, statement, "2 or 3") {
                Some(version @ 2..=3) => mapper.globals.version = Some(version),
                Some(_) => mapper.unconverted(statement, "the VRRP version must be 2 or 3"),
                None => {}
            },
            "vrrp_garp_master_delay" => {
                mapper.globals.garp_delay = duration_arg(mapper, statement);
            }
            "vrrp_garp_master_repeat" => {
                mapper.globals.garp_repeat =
                    integer(mapper, statement, "a count").map(|n| (n, statement.clone()));
            }
            "vrrp_garp_master_refresh" => {
                mapper.globals.garp_refresh = duration_arg(mapper, statement);
            }
            "vrrp_garp_interval" => {
                mapper.globals.garp_interval =
                    duration_arg(mapper, statement).map(|d| (d, statement.clone()));
            }
            "vrrp_gna_interval" => {
                mapper.globals.gna_interval =
                    duration_arg(mapper, statement).map(|d| (d, statement.clone()));
            }
            // Relevo's hook_security = "strict" (its default) refuses hooks that non-root users
            // can change, which is what this asks of keepalived.
            "enable_script_security" => {}
            _ => mapper.unconverted(statement, "global setting with no Relevo equivalent"),
        }
    }
    node
}

/// `vrrp_script NAME { script ...; interval; timeout; rise; fall; weight }`.
fn read_script(mapper: &mut Mapper, block: &Statement) {
    let Some(name) = block.args().first() else {
        mapper.unconverted(block, "a vrrp_script needs a name");
        return;
    };
    let mut track = TrackOut {
        name: relevo_name(name),
        script: None,
        interface: None,
        interval: Some("1s".to_string()),
        timeout: None,
        rise: None,
        fall: None,
        weight: 0,
    };
    for statement in block.block.iter().flatten() {
        match statement.keyword() {
            "script" => {
                let command = statement.args().join(" ");
                match shlex::split(&command) {
                    Some(argv) if !argv.is_empty() => {
                        if !argv[0].starts_with('/') {
                            mapper.note(
                                statement,
                                "Relevo runs commands without a shell and wants an absolute program path",
                            );
                        }
                        track.script = Some(argv);
                    }
                    _ => mapper.unconverted(statement, "cannot split the command into words"),
                }
            }
            "interval" => track.interval = duration_arg(mapper, statement).map(duration_text),
            "timeout" => track.timeout = duration_arg(mapper, statement).map(duration_text),
            "rise" => track.rise = integer(mapper, statement, "a count"),
            "fall" => track.fall = integer(mapper, statement, "a count"),
            "weight" => match statement.args() {
                [weight] => match weight.parse() {
                    Ok(weight) => track.weight = weight,
                    Err(_) => mapper.unconverted(statement, "not a whole number"),
                },
                _ => mapper.unconverted(statement, "only a plain weight converts (no `reverse`)"),
            },
            _ => mapper.unconverted(statement, "vrrp_script option with no Relevo equivalent"),
        }
    }
    mapper.scripts.insert(name.clone(), track);
}

fn read_sync_group(mapper: &mut Mapper, block: &Statement) {
    mapper.unconverted(
        block,
        "Relevo has no VRRP sync groups; each member instance is converted on its own",
    );
    for statement in block.block.iter().flatten() {
        if statement.keyword() != "group" {
            mapper.unconverted(statement, "part of a vrrp_sync_group (not converted)");
        }
    }
}

/// What one `vrrp_instance` says, before the version (which depends on the VIPs) is known.
struct Instance {
    out: VrrpOut,
    version: Option<u8>,
    priority: Option<u8>,
    state: Option<Statement>,
    advert: Option<(Duration, Statement)>,
    auth: Option<(String, Statement)>,
    garp_interval: Option<(Duration, Statement)>,
    gna_interval: Option<(Duration, Statement)>,
    garp_repeat: Option<(u32, Statement)>,
    notify: Option<(Vec<String>, Statement)>,
    tracks: Vec<String>,
}

fn read_instance(mapper: &mut Mapper, block: &Statement) -> Option<VrrpOut> {
    let Some(name) = block.args().first() else {
        mapper.unconverted(block, "a vrrp_instance needs a name");
        return None;
    };
    let relevo = relevo_name(name);
    if &relevo != name {
        mapper.note(
            block,
            format!("renamed to \"{relevo}\" (Relevo names use letters, digits, '_', '.', '-')"),
        );
    }
    let mut instance = Instance {
        out: VrrpOut {
            name: relevo,
            ..VrrpOut::default()
        },
        version: None,
        priority: None,
        state: None,
        advert: None,
        auth: None,
        garp_interval: None,
        gna_interval: None,
        garp_repeat: None,
        notify: None,
        tracks: Vec::new(),
    };
    let statements = block.block.as_deref().unwrap_or_default();
    // The interface first: VIP `dev` options are compared with it.
    for statement in statements.iter().filter(|s| s.keyword() == "interface") {
        instance.out.interface = single_arg(mapper, statement).map(str::to_string);
    }
    for statement in statements {
        read_instance_option(mapper, &mut instance, statement);
    }
    finish_instance(mapper, instance, block)
}

fn read_instance_option(mapper: &mut Mapper, instance: &mut Instance, statement: &Statement) {
    let out = &mut instance.out;
    match statement.keyword() {
        "interface" => {}
        "virtual_router_id" => match integer::<u8>(mapper, statement, "a VRID (1 to 255)") {
            Some(0) => mapper.unconverted(statement, "the VRID must be 1 to 255"),
            vrid => instance.out.vrid = vrid,
        },
        "priority" => match integer::<u8>(mapper, statement, "a priority (1 to 255)") {
            Some(0) => mapper.unconverted(statement, "the priority must be 1 to 255"),
            priority => instance.priority = priority,
        },
        "state" => instance.state = Some(statement.clone()),
        "advert_int" => {
            instance.advert = duration_arg(mapper, statement).map(|d| (d, statement.clone()));
        }
        "version" => match integer::<u8>(mapper, statement, "2 or 3") {
            Some(version @ 2..=3) => instance.version = Some(version),
            Some(_) => mapper.unconverted(statement, "the VRRP version must be 2 or 3"),
            None => {}
        },
        "nopreempt" => out.preempt = Some(false),
        "preempt" => out.preempt = Some(true),
        "preempt_delay" => {
            out.preempt_delay = duration_arg(mapper, statement).map(duration_text);
        }
        // Relevo never filters traffic to the VIPs it holds: that is accept mode.
        "accept" => {}
        "no_accept" => mapper.unconverted(
            statement,
            "Relevo does not filter traffic to its VIPs (accept_mode is not supported yet)",
        ),
        "virtual_ipaddress" => read_vips(mapper, instance, statement),
        "unicast_peer" => read_peers(mapper, instance, statement),
        "unicast_src_ip" => {
            instance.out.source_address = single_arg(mapper, statement).map(str::to_string);
        }
        "authentication" => read_auth(mapper, instance, statement),
        "track_script" => read_track_scripts(mapper, instance, statement),
        "track_interface" => read_track_interfaces(mapper, instance, statement),
        "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
            if let Some(argv) = hook_command(mapper, statement) {
                let event = statement.keyword().trim_start_matches("notify_");
                *instance.out.hooks.slot(event) = Some(argv);
            }
        }
        "notify" => {
            if let Some(argv) = hook_command(mapper, statement) {
                instance.notify = Some((argv, statement.clone()));
            }
        }
        "garp_master_delay" => {
            out.garp_delay = duration_arg(mapper, statement).map(duration_text);
        }
        "garp_master_refresh" => {
            out.garp_refresh = duration_arg(mapper, statement).map(duration_text);
        }
        "garp_master_repeat" => {
            instance.garp_repeat =
                integer(mapper, statement, "a count").map(|n| (n, statement.clone()));
        }
        "garp_interval" => {
            instance.garp_interval =
                duration_arg(mapper, statement).map(|d| (d, statement.clone()));
        }
        "gna_interval" => {
            instance.gna_interval = duration_arg(mapper, statement).map(|d| (d, statement.clone()));
        }
        "use_vmac" => {
            out.virtual_mac = Some(true);
            match statement.args() {
                [] => {}
                [name] => out.vmac_interface = Some(name.clone()),
                _ => mapper.unconverted(statement, "expected at most an interface name"),
            }
        }
        _ => mapper.unconverted(statement, "vrrp_instance option with no Relevo equivalent"),
    }
}

/// `virtual_ipaddress { ADDR[/LEN] [dev IF] [label L] ... }`: one address family per
/// instance, on the instance's interface.
fn read_vips(mapper: &mut Mapper, instance: &mut Instance, block: &Statement) {
    for statement in block.block.iter().flatten() {
        let address = statement.keyword();
        let Some(ip) = address
            .split('/')
            .next()
            .and_then(|a| a.parse::<std::net::IpAddr>().ok())
        else {
            mapper.unconverted(statement, "not an IP address");
            continue;
        };
        let mut keep = true;
        let mut options = statement.args().iter();
        while let Some(option) = options.next() {
            match option.as_str() {
                "dev" => {
                    let dev = options.next();
                    if dev.is_some() && dev.map(String::as_str) != instance.out.interface.as_deref()
                    {
                        mapper.unconverted(
                            statement,
                            "a VIP on another interface than the instance's: Relevo puts an \
                             instance's VIPs on its own interface (use another instance or a [[group]])",
                        );
                        keep = false;
                    }
                }
                "label" => {
                    options.next();
                    mapper.unconverted(
                        statement,
                        "address labels are not supported: the VIP is converted without its label",
                    );
                }
                "brd" | "broadcast" | "scope" | "preferred_lft" => {
                    options.next();
                    mapper.unconverted(
                        statement,
                        format!("`{option}` is not supported: the VIP is converted without it"),
                    );
                }
                other => mapper.unconverted(
                    statement,
                    format!("`{other}` is not supported: the VIP is converted without it"),
                ),
            }
        }
        if !keep {
            continue;
        }
        let first_family = instance
            .out
            .vips
            .first()
            .and_then(|vip| vip.split('/').next()?.parse::<std::net::IpAddr>().ok())
            .map(|first| first.is_ipv4());
        if first_family.is_some_and(|v4| v4 != ip.is_ipv4()) {
            mapper.unconverted(
                statement,
                "a Relevo instance carries one address family: put this VIP in a second instance",
            );
            continue;
        }
        instance.out.vips.push(address.to_string());
    }
}

fn read_peers(mapper: &mut Mapper, instance: &mut Instance, block: &Statement) {
    for statement in block.block.iter().flatten() {
        instance
            .out
            .unicast_peers
            .push(statement.keyword().to_string());
        if !statement.args().is_empty() {
            mapper.unconverted(
                statement,
                "peer options (min_ttl, max_ttl) are not supported; the peer is converted",
            );
        }
    }
}

fn read_auth(mapper: &mut Mapper, instance: &mut Instance, block: &Statement) {
    let mut kind = None;
    let mut pass = None;
    for statement in block.block.iter().flatten() {
        match statement.keyword() {
            "auth_type" => kind = single_arg(mapper, statement).map(str::to_string),
            "auth_pass" => pass = Some((statement.args().join(" "), statement.clone())),
            _ => mapper.unconverted(statement, "authentication option with no Relevo equivalent"),
        }
    }
    match (kind.as_deref(), pass) {
        (Some("PASS"), Some((pass, at))) => instance.auth = Some((pass, at)),
        (Some("AH"), _) => mapper.unconverted(
            block,
            "IPsec AH authentication is not supported (only VRRPv2 PASS)",
        ),
        _ => mapper.unconverted(block, "only `auth_type PASS` with an `auth_pass` converts"),
    }
}

fn read_track_scripts(mapper: &mut Mapper, instance: &mut Instance, block: &Statement) {
    for statement in block.block.iter().flatten() {
        let name = statement.keyword();
        let Some(track) = mapper.scripts.get(name).cloned() else {
            mapper.unconverted(statement, "no vrrp_script of this name");
            continue;
        };
        add_track(mapper, instance, track, statement);
    }
}

fn read_track_interfaces(mapper: &mut Mapper, instance: &mut Instance, block: &Statement) {
    for statement in block.block.iter().flatten() {
        let ifname = statement.keyword().to_string();
        let track = TrackOut {
            name: relevo_name(&ifname),
            script: None,
            interface: Some(ifname),
            interval: None,
            timeout: None,
            rise: None,
            fall: None,
            weight: 0,
        };
        add_track(mapper, instance, track, statement);
    }
}

/// Adds `track` to the instance, with the weight the track line gives (`NAME weight N`): an
/// instance's own weight makes a `[[track]]` of its own.
fn add_track(
    mapper: &mut Mapper,
    instance: &mut Instance,
    mut track: TrackOut,
    statement: &Statement,
) {
    match statement.args() {
        [] => {}
        [word, weight] if word == "weight" => match weight.parse() {
            Ok(weight) => {
                track.weight = weight;
                track.name = format!("{}-{}", track.name, instance.out.name);
            }
            Err(_) => mapper.unconverted(statement, "the weight is not a whole number"),
        },
        _ => mapper.unconverted(statement, "only `weight N` converts"),
    }
    instance.tracks.push(track.name.clone());
    if !mapper.tracks.iter().any(|known| known.name == track.name) {
        mapper.tracks.push(track);
    }
}

/// A notify command as argv; Relevo runs it without a shell, so the program must be absolute.
fn hook_command(mapper: &mut Mapper, statement: &Statement) -> Option<Vec<String>> {
    let command = statement.args().join(" ");
    let Some(argv) = shlex::split(&command).filter(|argv| !argv.is_empty()) else {
        mapper.unconverted(statement, "cannot split the command into words");
        return None;
    };
    if !argv[0].starts_with('/') {
        mapper.unconverted(
            statement,
            "Relevo runs hooks without a shell and needs an absolute program path",
        );
        return None;
    }
    Some(argv)
}

/// The parts that depend on the whole instance: version, priority from `state`, interval,
/// authentication, GARP settings, the generic `notify`.
fn finish_instance(
    mapper: &mut Mapper,
    mut instance: Instance,
    block: &Statement,
) -> Option<VrrpOut> {
    let ipv6 = instance
        .out
        .vips
        .first()
        .and_then(|vip| vip.split('/').next()?.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_ipv6());
    let version = match instance.version.or(mapper.globals.version) {
        _ if ipv6 => 3,
        Some(version) => version,
        None => DEFAULT_VERSION,
    };
    instance.out.version = version;
    let master = instance
        .state
        .as_ref()
        .is_some_and(|s| s.args().first().map(String::as_str) == Some("MASTER"));
    instance.out.priority = match instance.priority {
        Some(priority) => {
            if let Some(state) = instance
                .state
                .clone()
                .filter(|_| master && priority != OWNER_PRIORITY)
            {
                mapper.unconverted(
                    &state,
                    "Relevo has no initial state: it starts as backup and the priority elects the master",
                );
            }
            priority
        }
        // keepalived derives a missing priority from the state: MASTER means address owner.
        None if master => OWNER_PRIORITY,
        None => DEFAULT_PRIORITY,
    };
    if let Some(state) = &instance.state {
        if !matches!(
            state.args().first().map(String::as_str),
            Some("MASTER" | "BACKUP")
        ) {
            mapper.unconverted(state, "the state must be MASTER or BACKUP");
        }
    }
    let advert = instance.advert.take();
    let interval = match advert {
        Some((interval, statement)) if version == 2 && interval.subsec_nanos() != 0 => {
            let rounded = Duration::from_secs(interval.as_secs_f64().round().max(1.0) as u64);
            mapper.note(
                &statement,
                format!(
                    "VRRPv2 counts whole seconds: rounded to {} as keepalived does",
                    duration_text(rounded)
                ),
            );
            rounded
        }
        Some((interval, _)) => interval,
        None => Duration::from_secs(1),
    };
    instance.out.advert_interval = duration_text(interval);
    if let Some((pass, statement)) = instance.auth.take() {
        if version == 3 {
            mapper.unconverted(
                &statement,
                "VRRPv3 has no authentication (keepalived ignores it too)",
            );
        } else {
            let short: String = pass.chars().take(MAX_PASS_LEN).collect();
            if short != pass {
                mapper.note(
                    &statement,
                    format!("only the first {MAX_PASS_LEN} characters are sent (as by keepalived)"),
                );
            }
            instance.out.auth_pass = Some(short);
        }
    }
    finish_garp(mapper, &mut instance, ipv6);
    if let Some((argv, statement)) = instance.notify.take() {
        let mut events = Vec::new();
        for event in ["master", "backup", "fault", "stop"] {
            let slot = instance.out.hooks.slot(event);
            if slot.is_none() {
                *slot = Some(argv.clone());
                events.push(event);
            }
        }
        if events.is_empty() {
            mapper.unconverted(&statement, "every event already has its own notify_* hook");
        } else {
            mapper.note(
                &statement,
                format!(
                    "became the {} hooks: keepalived appends \"INSTANCE NAME STATE PRIORITY\" to the \
                     command, Relevo passes the state in RELEVO_STATE instead (relevo-hooks(7)); adapt the script",
                    events.join("/")
                ),
            );
        }
    }
    if instance.out.interface.is_none() {
        mapper.unconverted(block, "no `interface`: Relevo needs one");
    }
    if instance.out.vrid.is_none() {
        mapper.unconverted(block, "no `virtual_router_id`: Relevo needs one");
    }
    if instance.out.vips.is_empty() {
        mapper.unconverted(block, "no VIP converted: Relevo needs at least one");
    }
    instance.out.track = instance.tracks.clone();
    Some(instance.out)
}

/// GARP/NA settings: the instance's own, else the `global_defs` ones, within Relevo's ranges.
fn finish_garp(mapper: &mut Mapper, instance: &mut Instance, ipv6: bool) {
    let out = &mut instance.out;
    if out.garp_delay.is_none() {
        out.garp_delay = mapper.globals.garp_delay.map(duration_text);
    }
    if out.garp_refresh.is_none() {
        out.garp_refresh = mapper.globals.garp_refresh.map(duration_text);
    }
    let repeat = instance
        .garp_repeat
        .take()
        .or_else(|| mapper.globals.garp_repeat.clone());
    if let Some((repeat, statement)) = repeat {
        if (1..=100).contains(&repeat) {
            instance.out.garp_repeat = Some(repeat);
        } else {
            mapper.unconverted(&statement, "Relevo's garp_repeat is 1 to 100");
        }
    }
    // ARP spacing for IPv4 instances, neighbour advertisement spacing for IPv6 ones.
    let (own, global) = if ipv6 {
        (
            instance.gna_interval.take(),
            mapper.globals.gna_interval.clone(),
        )
    } else {
        (
            instance.garp_interval.take(),
            mapper.globals.garp_interval.clone(),
        )
    };
    if let Some((interval, statement)) = own.or(global) {
        if interval <= Duration::from_secs(1) {
            instance.out.garp_interval = Some(duration_text(interval));
        } else {
            mapper.unconverted(&statement, "Relevo's garp_interval is at most 1s");
        }
    }
    let other = if ipv6 {
        instance.garp_interval.take()
    } else {
        instance.gna_interval.take()
    };
    if let Some((_, statement)) = other {
        mapper.unconverted(
            &statement,
            "applies to the other address family than this instance's VIPs",
        );
    }
}
