//! Tests of the configuration: layering, checks, errors and the example file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{RawInjection, RawLimits, RawProfiles};
use super::*;
use crate::tmux::command::KeyName;

fn no_env(_: &str) -> Option<String> {
    None
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

fn dir_with_config(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), yaml).unwrap();
    dir
}

fn key(s: &str) -> KeyName {
    KeyName::parse(s).unwrap()
}

#[test]
fn defaults_without_file_env_or_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
    assert_eq!(cfg, Config::defaults(dir.path()));
    assert_eq!(cfg.session, "macs");
    assert_eq!(cfg.mode, Mode::Manual);
    assert_eq!(cfg.injection.submit_keys, ["Enter", "C-m"]);
    assert_eq!(cfg.source, None);
}

#[test]
fn precedence_flag_beats_env_beats_file_beats_default() {
    let dir = dir_with_config(
        "session: from-file\nworker: file-worker\nlines: 300\nbusy_lines: 50\n\
         injection:\n  type_delay_ms: 100\n  guard_busy: 0\n  submit_keys: [C-j]\n",
    );
    let full_env = env_of(&[
        ("MACS_SESSION", "from-env"),
        ("TARGET_PANE_LABEL", "env-worker"),
        ("TARGET_PANE_LINES", "400"),
        ("TARGET_PANE_TYPE_DELAY_MS", "200"),
        ("TARGET_PANE_GUARD_BUSY", "1"),
    ]);
    let flags = Overrides {
        session: Some("from-flag".into()),
        lines: Some(500),
        submit_keys: Some(vec!["Enter".into()]),
        ..Overrides::default()
    };

    // Defaults alone.
    let empty = tempfile::tempdir().unwrap();
    let d = Config::load(&Overrides::default(), &no_env, empty.path()).unwrap();
    assert_eq!(
        (d.session.as_str(), d.lines, d.busy_lines),
        ("macs", 200, 40)
    );

    // The file beats the defaults.
    let f = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
    assert_eq!(f.session, "from-file");
    assert_eq!(f.worker, "file-worker");
    assert_eq!((f.lines, f.busy_lines), (300, 50));
    assert_eq!(f.injection.type_delay_ms, 100);
    assert!(!f.injection.guard_busy);
    assert_eq!(f.injection.submit_keys, ["C-j"]);
    assert_eq!(f.source, Some(dir.path().join(FILE_NAME)));

    // The environment beats the file; what it does not set stays the file's.
    let e = Config::load(&Overrides::default(), &full_env, dir.path()).unwrap();
    assert_eq!(e.session, "from-env");
    assert_eq!(e.worker, "env-worker");
    assert_eq!((e.lines, e.busy_lines), (400, 50));
    assert_eq!(e.injection.type_delay_ms, 200);
    assert!(e.injection.guard_busy);
    assert_eq!(e.injection.submit_keys, ["C-j"]);

    // Flags beat both.
    let g = Config::load(&flags, &full_env, dir.path()).unwrap();
    assert_eq!(g.session, "from-flag");
    assert_eq!(g.worker, "env-worker");
    assert_eq!(g.lines, 500);
    assert_eq!(g.injection.type_delay_ms, 200);
    assert_eq!(g.injection.submit_keys, ["Enter"]);
}

#[test]
fn empty_env_values_count_as_unset() {
    let dir = dir_with_config("session: from-file\n");
    let env = env_of(&[("MACS_SESSION", ""), ("TARGET_PANE_LINES", "  ")]);
    let cfg = Config::load(&Overrides::default(), &env, dir.path()).unwrap();
    assert_eq!(cfg.session, "from-file");
    assert_eq!(cfg.lines, 200);
}

#[test]
fn config_file_from_flag_and_state_dir_flag() {
    let elsewhere = dir_with_config("worker: from-elsewhere\n");
    let hint = dir_with_config("worker: from-hint\n");
    let explicit = Overrides {
        config: Some(elsewhere.path().join(FILE_NAME)),
        ..Overrides::default()
    };
    let cfg = Config::load(&explicit, &no_env, hint.path()).unwrap();
    assert_eq!(cfg.worker, "from-elsewhere");
    // Not the config file's dir: the state dir stays the hint unless the file says so.
    assert_eq!(cfg.state_dir, hint.path());

    let by_state_dir = Overrides {
        state_dir: Some(elsewhere.path().to_owned()),
        ..Overrides::default()
    };
    let cfg = Config::load(&by_state_dir, &no_env, hint.path()).unwrap();
    assert_eq!(cfg.worker, "from-elsewhere");
    assert_eq!(cfg.state_dir, elsewhere.path());

    let missing = Overrides {
        config: Some(hint.path().join("nope.yaml")),
        ..Overrides::default()
    };
    let err = Config::load(&missing, &no_env, hint.path()).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err.to_string().contains("nope.yaml"), "{err}");
}

#[test]
fn relative_paths_in_the_file_are_relative_to_it() {
    let dir = dir_with_config("state_dir: state\nprofiles:\n  files: [extra]\n");
    std::fs::create_dir(dir.path().join("extra")).unwrap();
    let opts = Overrides {
        config: Some(dir.path().join(FILE_NAME)),
        ..Overrides::default()
    };
    let cfg = Config::load(&opts, &no_env, Path::new(".")).unwrap();
    assert_eq!(cfg.state_dir, dir.path().join("state"));
    assert_eq!(cfg.profiles.files, vec![dir.path().join("extra")]);
}

#[test]
fn unknown_key_names_the_key_and_the_file() {
    for (yaml, want) in [
        ("sesion: x\n", "sesion"),
        (
            "injection:\n  submit_key: [Enter]\n",
            "injection.submit_key",
        ),
        ("limits:\n  block_byte: 10\n", "limits.block_byte"),
        ("profiles:\n  file: []\n", "profiles.file"),
    ] {
        let dir = dir_with_config(yaml);
        let err = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap_err();
        match &err {
            ConfigError::UnknownKey { path, key, .. } => {
                assert_eq!(key, want);
                assert_eq!(path, &dir.path().join(FILE_NAME));
            }
            other => panic!("{yaml:?}: expected UnknownKey, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains(want), "{text}");
        assert!(text.contains(FILE_NAME), "{text}");
    }
}

#[test]
fn bad_values_name_the_field_and_the_file() {
    for (yaml, field) in [
        ("lines: abc\n", "lines"),
        ("lines: 0\n", "lines"),
        ("busy_lines: -1\n", "busy_lines"),
        ("mode: automatic\n", "mode"),
        ("injection:\n  guard_busy: maybe\n", "injection.guard_busy"),
        ("injection:\n  guard_busy: 2\n", "injection.guard_busy"),
        (
            "injection:\n  type_delay_ms: 99999\n",
            "injection.type_delay_ms",
        ),
        ("injection:\n  submit_keys: []\n", "injection.submit_keys"),
        ("session: 'a:b'\n", "session"),
        ("controller_backends: [pain]\n", "controller_backends[0]"),
        ("profiles:\n  files: [missing.yaml]\n", "profiles.files[0]"),
        (
            "profiles:\n  panes: {worker: 'co dex'}\n",
            "profiles.panes.worker",
        ),
        ("heuristic_phrases: ['ok', '  ']\n", "heuristic_phrases[1]"),
    ] {
        let dir = dir_with_config(yaml);
        let err = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(field), "{yaml:?}: {text}");
        assert!(text.contains(FILE_NAME), "{yaml:?}: {text}");
    }
}

#[test]
fn bad_key_names_are_refused_wherever_they_come_from() {
    let dir = dir_with_config("injection:\n  submit_keys: [Enter, Entr]\n");
    let err = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("injection.submit_keys[1]") && text.contains("Entr"),
        "{text}"
    );

    let empty = tempfile::tempdir().unwrap();
    let env = env_of(&[("TARGET_PANE_SUBMIT_KEYS", "Enter,Return")]);
    let err = Config::load(&Overrides::default(), &env, empty.path()).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::Invalid {
                origin: Origin::Env("TARGET_PANE_SUBMIT_KEYS"),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("Return"), "{err}");

    let flags = Overrides {
        submit_keys: Some(vec!["C-M-S-X-Enter".into()]),
        ..Overrides::default()
    };
    let err = Config::load(&flags, &no_env, empty.path()).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::Invalid {
                origin: Origin::Flag("--submit-keys"),
                ..
            }
        ),
        "{err}"
    );

    // A trailing comma is fine; the keys are canonical.
    let env = env_of(&[("TARGET_PANE_SUBMIT_KEYS", "enter, c-m,")]);
    let cfg = Config::load(&Overrides::default(), &env, empty.path()).unwrap();
    assert_eq!(cfg.injection.submit_keys, ["Enter", "C-m"]);
}

#[test]
fn bad_env_values_name_the_variable() {
    let empty = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("TARGET_PANE_LINES", "many"),
        ("TARGET_PANE_BUSY_LINES", "0"),
        ("TARGET_PANE_TYPE_DELAY_MS", "-5"),
        ("TARGET_PANE_GUARD_BUSY", "2"),
        ("MACS_SESSION", "a.b"),
    ] {
        let env = env_of(&[(var, value)]);
        let err = Config::load(&Overrides::default(), &env, empty.path()).unwrap_err();
        assert!(err.to_string().contains(var), "{var}: {err}");
    }
}

#[test]
fn flags_spelled_every_way() {
    let dir = dir_with_config(
        "dry_run: 'yes'\nheuristic: 0\ninjection:\n  guard_busy: false\nmode: AUTO\n",
    );
    let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
    assert!(cfg.dry_run);
    assert!(!cfg.heuristic);
    assert!(!cfg.injection.guard_busy);
    assert_eq!(cfg.mode, Mode::Auto);
    let env = env_of(&[("TARGET_PANE_GUARD_BUSY", "true")]);
    let cfg = Config::load(&Overrides::default(), &env, dir.path()).unwrap();
    assert!(cfg.injection.guard_busy);
}

#[test]
fn empty_file_and_bom_are_fine() {
    let dir = dir_with_config("# nothing here\n");
    let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
    assert_eq!(
        Config {
            source: None,
            ..cfg
        },
        Config::defaults(dir.path())
    );
    let dir = dir_with_config("\u{feff}session: bom\r\nlines: 12\r\n");
    let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
    assert_eq!((cfg.session.as_str(), cfg.lines), ("bom", 12));
    let dir = dir_with_config("- just\n- a list\n");
    let err = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap_err();
    assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
}

#[test]
fn rules_and_the_exec_command_are_checked() {
    let dir = dir_with_config(
        "rules:\n  - match: '(?i)should i continue'\n    reply: Yes.\ncontroller_cmd: \"my-bot --flag 'a b'\"\ncontroller_timeout_secs: 5\n",
    );
    let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
    assert_eq!(cfg.rules.len(), 1);
    assert!(cfg.rules[0].regex.is_match("Should I continue?"));
    assert_eq!(cfg.rules[0].reply, "Yes.");
    assert_eq!(cfg.controller_cmd, "my-bot --flag 'a b'");
    assert_eq!(cfg.controller_timeout_secs, 5);
    for (text, names) in [
        ("rules:\n  - match: '('\n    reply: x\n", "rules[0].match"),
        ("rules:\n  - match: 'x'\n    reply: ' '\n", "rules[0].reply"),
        ("rules:\n  - match: 'x'\n    answer: y\n", "answer"),
        ("controller_cmd: \"a 'b\"\n", "controller_cmd"),
        ("controller_timeout_secs: 0\n", "controller_timeout_secs"),
    ] {
        let dir = dir_with_config(text);
        let err = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap_err();
        assert!(err.to_string().contains(names), "{text}: {err}");
        assert!(err.to_string().contains("macs.yaml"), "{text}: {err}");
    }
}

#[test]
fn example_parses_to_the_defaults() {
    let dir = dir_with_config(EXAMPLE);
    let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
    let want = Config {
        source: Some(dir.path().join(FILE_NAME)),
        ..Config::defaults(dir.path())
    };
    assert_eq!(cfg, want);
}

/// Every key of [`RawConfig`] appears in [`EXAMPLE`] (as a key, or commented out when it
/// has no value to show), so a new setting cannot be left out of the example.
#[test]
fn example_shows_every_key() {
    let full = RawConfig {
        session: Some(String::new()),
        mode: Some(String::new()),
        dry_run: Some(serde_yaml::Value::Null),
        heuristic: Some(serde_yaml::Value::Null),
        heuristic_phrases: Some(vec![]),
        state_dir: Some(PathBuf::new()),
        worker: Some(String::new()),
        controller: Some(String::new()),
        socket: Some(String::new()),
        injection: Some(RawInjection {
            type_delay_ms: Some(0),
            submit_keys: Some(vec![]),
            guard_busy: Some(serde_yaml::Value::Null),
            confirm_timeout_ms: Some(0),
        }),
        lines: Some(0),
        busy_lines: Some(0),
        limits: Some(RawLimits {
            block_bytes: Some(0),
            block_lines: Some(0),
            response_bytes: Some(0),
        }),
        guards: Some(super::raw::RawGuards {
            heuristic_streak: Some(0),
            same_request: Some(0),
            max_hops: Some(0),
            max_rate: Some(0),
            rate_window_secs: Some(0),
        }),
        profiles: Some(RawProfiles {
            files: Some(vec![]),
            panes: Some(BTreeMap::new()),
        }),
        controller_backends: Some(vec![]),
        controller_cmd: Some(String::new()),
        controller_timeout_secs: Some(0),
        rules: Some(vec![]),
        agents: Some(vec![]),
        routes: Some(BTreeMap::new()),
    };
    let full = serde_yaml::to_value(&full).unwrap();
    let example: serde_yaml::Value = serde_yaml::from_str(EXAMPLE).unwrap();

    fn walk(prefix: &str, full: &serde_yaml::Value, example: Option<&serde_yaml::Value>) {
        let serde_yaml::Value::Mapping(map) = full else {
            return;
        };
        for (k, v) in map {
            let k = k.as_str().unwrap();
            let path = if prefix.is_empty() {
                k.to_owned()
            } else {
                format!("{prefix}.{k}")
            };
            let shown = example.and_then(|e| e.get(k));
            if shown.is_none() {
                assert!(
                    EXAMPLE.contains(&format!("# {k}: ")),
                    "EXAMPLE does not show `{path}`"
                );
            }
            walk(&path, v, shown);
        }
    }
    walk("", &full, Some(&example));
}

#[test]
fn inject_options_follow_the_config() {
    let mut cfg = Config::defaults(Path::new("."));
    cfg.injection.type_delay_ms = 123;
    cfg.injection.guard_busy = false;
    let o = cfg.injection.inject_options();
    assert_eq!(o.type_delay, Duration::from_millis(123));
    assert_eq!(o.confirm_timeout, Duration::from_millis(2000));
    assert!(!o.guard_busy);
    assert_eq!(o.submit_keys, vec![key("Enter"), key("C-m")]);
}

#[test]
fn agents_are_checked_one_by_one() {
    let dir = dir_with_config(
        "agents:\n  - name: claude\n    command: \"claude --model 'sonnet 4'\"\n  - name: rev.1\n    target: macs:1.0\n    profile: claude-code\n",
    );
    let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
    assert_eq!(
        cfg.agents,
        [
            AgentConfig {
                name: "claude".into(),
                target: None,
                profile: None,
                command: Some("claude --model 'sonnet 4'".into()),
            },
            AgentConfig {
                name: "rev.1".into(),
                target: Some("macs:1.0".into()),
                profile: Some("claude-code".into()),
                command: None,
            },
        ]
    );
    for (text, want) in [
        (
            "agents:\n  - name: my agent\n",
            "agents[0].name: \"my agent\" is not an agent name",
        ),
        ("agents:\n  - name: -x\n", "agents[0].name"),
        ("agents:\n  - name: ALL\n", "`all` means every agent"),
        ("agents:\n  - name: chat\n", "is taken"),
        (
            "agents:\n  - name: a\n  - name: A\n",
            "agents[1].name: \"A\" is taken",
        ),
        (
            "agents:\n  - name: a\n    command: \"\"\n",
            "agents[0].command: no command given",
        ),
        (
            "agents:\n  - name: a\n    command: \"codex 'x\"\n",
            "agents[0].command: not valid shell words",
        ),
        (
            "agents:\n  - name: a\n    target: \"\"\n",
            "agents[0].target",
        ),
        (
            "agents:\n  - name: a\n    label: b\n",
            "unknown key `agents[0].label`",
        ),
    ] {
        let dir = dir_with_config(text);
        let err = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap_err();
        assert!(err.to_string().contains(want), "{text}: {err}");
        assert!(err.to_string().contains("macs.yaml"), "{text}: {err}");
    }
}

/// The agents shown (commented out) in `examples/macs.yaml` are a working block.
#[test]
fn the_examples_agents_parse_when_uncommented() {
    let mut text = String::new();
    let mut in_agents = false;
    for line in EXAMPLE.lines() {
        if line == "agents: []" {
            in_agents = true;
            text.push_str("agents:\n");
            continue;
        }
        if in_agents {
            if let Some(rest) = line.strip_prefix("#   ") {
                text.push_str(&format!("  {rest}\n"));
                continue;
            }
            in_agents = false;
        }
        text.push_str(line);
        text.push('\n');
    }
    let dir = dir_with_config(&text);
    let cfg = Config::load(&Overrides::default(), &no_env, dir.path()).unwrap();
    let names: Vec<&str> = cfg.agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["claude", "codex", "reviewer"]);
    assert_eq!(
        cfg.agents[0].command.as_deref(),
        Some("claude --model sonnet")
    );
}

#[test]
fn the_loop_guards_are_settings_with_sane_ranges() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(FILE_NAME),
        "guards:\n  max_hops: 2\n  max_rate: 30\n  rate_window_secs: 10\n  heuristic_streak: 5\n",
    )
    .unwrap();
    let load_at = |d: &std::path::Path| Config::load(&Overrides::default(), &no_env, d);
    let cfg = load_at(dir.path()).unwrap();
    assert_eq!(cfg.guards.max_hops, 2);
    assert_eq!(cfg.guards.max_rate, 30);
    assert_eq!(cfg.guards.rate_window_secs, 10);
    assert_eq!(cfg.guards.heuristic_streak, 5);
    assert_eq!(cfg.guards.same_request, 2, "the default stays");
    std::fs::write(dir.path().join(FILE_NAME), "guards:\n  max_hops: 0\n").unwrap();
    let e = load_at(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("guards.max_hops") && e.contains("1 to 1000"),
        "{e}"
    );
    std::fs::write(dir.path().join(FILE_NAME), "guards:\n  max_hop: 3\n").unwrap();
    assert!(load_at(dir.path()).is_err(), "a misspelt key is an error");
}
