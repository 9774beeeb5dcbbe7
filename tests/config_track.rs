//! `[[track]]` and `track = [...]`: valid configs give the typed checks with their defaults,
//! invalid ones are refused at the line and column of the offending key or value.

mod config_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use config_support::assert_refused;
use relevo::config::{self, TrackCheck};

/// An instance naming `tracks`, then `tracks_toml` (lines 7 on).
fn with_tracks(refs: &str, tracks_toml: &str) -> String {
    format!(
        "[[vrrp]]\nname = \"web\"\ninterface = \"eth0\"\nvrid = 51\nvips = [\"192.0.2.100/24\"]\n\
         track = {refs}\n{tracks_toml}"
    )
}

#[test]
fn tracks_parse_with_keepalived_like_defaults() {
    let text = with_tracks(
        "[\"web-check\", \"uplink\", \"prio\"]",
        "[[track]]\nname = \"web-check\"\nscript = [\"/usr/lib/relevo/check-web\", \"-q\"]\n\
         interval = \"2s\"\ntimeout = \"3s\"\nrise = 2\nfall = 3\nweight = -60\n\
         [[track]]\nname = \"uplink\"\ninterface = \"eth1\"\n\
         [[track]]\nname = \"prio\"\nfile = \"/run/prio-delta\"\n\
         [[track]]\nname = \"plain\"\nscript = \"/bin/true\"\n",
    );
    let config = config::parse(&text, Path::new("t.toml")).unwrap();
    assert_eq!(config.vrrp[0].track, ["web-check", "uplink", "prio"]);
    let [web, uplink, prio, plain] = config.tracks.as_slice() else {
        panic!("{:?}", config.tracks);
    };
    assert_eq!(
        web.check,
        TrackCheck::Script(vec!["/usr/lib/relevo/check-web".into(), "-q".into()])
    );
    assert_eq!(
        (web.interval, web.timeout, web.rise, web.fall, web.weight),
        (Duration::from_secs(2), Duration::from_secs(3), 2, 3, -60)
    );
    assert_eq!(uplink.check, TrackCheck::Interface("eth1".into()));
    assert_eq!(uplink.weight, 0, "interfaces default to fault");
    assert_eq!(
        prio.check,
        TrackCheck::File(PathBuf::from("/run/prio-delta"))
    );
    assert_eq!(prio.weight, 1, "files default to the value itself");
    assert_eq!(
        (
            plain.interval,
            plain.timeout,
            plain.rise,
            plain.fall,
            plain.weight
        ),
        (Duration::from_secs(1), Duration::from_secs(1), 1, 1, 0),
        "timeout defaults to the interval; rise, fall 1; weight 0 = fault"
    );
    let summary = config::summary(&config);
    assert!(
        summary.contains("tracks web-check,uplink,prio"),
        "{summary}"
    );
    assert!(
        summary.contains(
            "track web-check: script /usr/lib/relevo/check-web -q every 2s timeout 3s rise 2 \
             fall 3, weight -60"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("track uplink: interface eth1, fault when failing"),
        "{summary}"
    );
}

#[test]
fn unknown_and_repeated_track_names_are_refused_where_written() {
    let text = with_tracks(
        "[\"web\", \"nope\", \"web\"]",
        "[[track]]\nname = \"web\"\nscript = \"/bin/true\"\n",
    );
    assert_refused(
        &text,
        &[
            (6, 17, "unknown track \"nope\" in [[vrrp]]; defined: web"),
            (6, 25, "track \"web\" is listed twice"),
        ],
    );
    assert_refused(
        &with_tracks("[\"x\"]", ""),
        &[(
            6,
            10,
            "unknown track \"x\" in [[vrrp]]; there is no [[track]]",
        )],
    );
}

#[test]
fn a_group_track_must_exist() {
    let text = "[node]\nname = \"n1\"\n[cluster]\nid = 1\nauth_key_file = \"/nonexistent\"\n";
    // The cluster is incomplete (its own errors); only the group's track error matters here.
    let text = format!("{text}[[group]]\nname = \"db\"\nnodes = [\"n1\"]\ntrack = [\"gone\"]\n");
    let errors = config_support::refused(&text);
    assert!(
        errors
            .iter()
            .any(|d| d.line == 9 && d.message.contains("unknown track \"gone\" in [[group]]")),
        "{errors:?}"
    );
}

#[test]
fn a_track_checks_exactly_one_thing() {
    assert_refused(
        &with_tracks("[]", "[[track]]\nname = \"t\"\n"),
        &[(7, 1, "needs one of `script`, `interface` or `file`")],
    );
    assert_refused(
        &with_tracks(
            "[]",
            "[[track]]\nname = \"t\"\nscript = \"/bin/true\"\ninterface = \"eth1\"\n",
        ),
        &[(10, 13, "`script` and `interface` are both set")],
    );
}

#[test]
fn bad_values_are_refused_at_the_value() {
    let track = |line: &str| with_tracks("[]", &format!("[[track]]\nname = \"t\"\n{line}\n"));
    assert_refused(
        &track("script = [\"check\"]"),
        &[(
            9,
            10,
            "`script`: program must be an absolute path, got \"check\"",
        )],
    );
    assert_refused(
        &track("script = \"/usr/bin/check -q\""),
        &[(9, 10, "run without a shell")],
    );
    assert_refused(
        &track("file = \"run/x\""),
        &[(9, 8, "`file` must be an absolute file path")],
    );
    assert_refused(
        &track("interface = \"a/b\""),
        &[(9, 13, "not a valid Linux interface name")],
    );
    let script = |line: &str| track(&format!("script = \"/bin/true\"\n{line}"));
    assert_refused(
        &script("weight = -255"),
        &[(10, 10, "`weight` must be between -254 and 254, got -255")],
    );
    assert_refused(
        &script("rise = 0"),
        &[(10, 8, "`rise` must be between 1 and 100, got 0")],
    );
    assert_refused(
        &script("fall = 101"),
        &[(10, 8, "`fall` must be between 1 and 100, got 101")],
    );
    assert_refused(
        &script("interval = \"0s\""),
        &[(10, 12, "`interval` must be between 10ms and 1h")],
    );
    assert_refused(
        &script("timeout = 5"),
        &[(10, 11, "`timeout` = 5 has no unit")],
    );
    assert_refused(
        &script("colour = 1"),
        &[(10, 1, "unknown key `colour` in [[track]]")],
    );
    assert_refused(
        &track("interface = \"eth1\"\nfall = 2"),
        &[(
            10,
            8,
            "`fall` applies to script tracks; an interface track follows the link",
        )],
    );
    assert_refused(
        &track("file = \"/run/x\"\ntimeout = \"1s\""),
        &[(10, 11, "`timeout` applies to script tracks; a file track")],
    );
}

#[test]
fn track_names_are_unique() {
    let text = with_tracks(
        "[]",
        "[[track]]\nname = \"t\"\nscript = \"/bin/true\"\n[[track]]\nname = \"t\"\nscript = \"/bin/true\"\n",
    );
    assert_refused(
        &text,
        &[(11, 8, "duplicate track name \"t\" (first used on line 8)")],
    );
}
