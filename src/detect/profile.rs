//! Agent profiles: the per-agent detection rules, loaded from YAML.
//!
//! A profile says how to recognise one kind of program in a pane (Codex, Claude Code, Gemini CLI,
//! Aider, a Python REPL, a shell) and how to read its state. The built-in profiles live in
//! `profiles/*.yaml` and are compiled into the binary; a user's files can replace one (same `name`)
//! or add new ones. Loading is two-staged: a raw serde struct that refuses unknown keys, then a
//! checked [`Profile`] with compiled regexes. Every error names the source (file) and the rule.
//!
//! This module only loads and picks profiles; reading a state is [`super::state::classify`].
//!
//! # YAML schema (one profile per YAML document; a file may hold several, split by `---`)
//!
//! ```yaml
//! name: codex                      # required; [A-Za-z0-9._-]+; a user profile with a built-in's name replaces it
//! description: OpenAI Codex CLI    # optional, free text
//!
//! match:                           # how `Profiles::pick` recognises the program
//!   commands: [codex, node]        # regexes, anchored on the whole of #{pane_current_command}
//!                                  #   (its basename, a leading `-` of login shells removed)
//!   title: ['^\[ ! \] Action Required']   # regexes on #{pane_title}: each match scores 2
//!   screen: ['OpenAI Codex \(v']   # rules on the visible screen: each match scores 1
//!
//! command:                         # what the pane's current command alone says
//!   busy_unless: [bash, zsh]       # (shells) a known command that matches none of these => busy
//!   unknown_if: [bash, zsh]        # (agents) the command is one of these => the agent is gone: unknown
//!
//! title:                           # rules on #{pane_title}, the strongest signal
//!   asking: ['^\[ ! \] Action Required']
//!   busy: ['^[\x{2800}-\x{28FF}]'] # a braille spinner
//!   idle: []
//!
//! busy:   [RULE, ...]              # screen rules, checked in this order: busy, asking, idle
//! asking: [RULE, ...]
//! idle:   [RULE, ...]              # the idle prompt
//!
//! prompt:                          # optional: where typed input sits (see `prompt_input`)
//!   regex: '^› (.*)$'              # the prompt row(s); group `input` (or group 1) is the input
//!   last_lines: 6                  # look at the last N non-blank rows (default 6); bottom-most wins
//!   placeholders: ['Ask Codex to do anything']  # whole-input regexes that are not input
//!
//! reply:                           # optional: where the agent's last reply is (see `heuristic::last_reply`)
//!   start: ['^• (.*)$']            # a row that starts a reply; group `text` (or group 1) is the
//!                                  #   reply's first line; without a group the row is not part of
//!                                  #   the reply (a shell's command line: the output follows it)
//!   stop: ['^› ', 'for shortcuts'] # rows that are never part of a reply: the prompt box, footers,
//!                                  #   spinners, turn-end lines, the echo of the user's input
//!
//! last_lines: 40                   # optional: default window for this profile's screen rules
//! settle_ms: 500                   # optional: an idle verdict needs this much silence (when known)
//! idle_when_silent_ms: 3000        # optional: when no rule says anything, this much silence => idle
//! ```
//!
//! A RULE is either a bare regex string or a map:
//!
//! ```yaml
//! - 'esc to interrupt\)'
//! - { regex: '^› ', last_lines: 6, name: composer }
//! ```
//!
//! `last_lines` limits the rule to the last N non-blank rows of the screen (default: the profile's
//! `last_lines`, and never more than the caller's `busy_lines`, `TARGET_PANE_BUSY_LINES`).
//! `name` is what the classification's `reason` shows (default: the regex itself).
//!
//! Reply rules are plain regexes matched against one row at a time (escapes stripped,
//! right-trimmed). The last reply is found from the bottom up: blank and `stop` rows below it are
//! skipped; then rows are collected upwards until a `start` row (the reply is found) or a `stop`
//! row (no reply: the turn printed something that is not a reply, such as an error, when the
//! profile has `start` rules; the reply is what was collected when it has none). A reply whose
//! start scrolled off the top of the screen is what is left of it. A `stop` rule is checked before
//! a `start` rule.
//!
//! How screen rules see the screen: trailing blank rows are dropped, every row is right-trimmed
//! (tmux drops trailing spaces anyway, so a shell prompt `$ ` is matched as `\$$`), and the rows in
//! the window are joined with `\n`. Regexes are compiled with multi-line mode on, so `^` and `$`
//! anchor at row boundaries and one regex may span rows (`^─+\n❯`). Title and command regexes
//! are plain.
//!
//! # How a profile is picked for a pane ([`Profiles::pick`])
//!
//! 1. A known current command is the strongest fact. The profiles whose `match.commands` accept
//!    it are the candidates: exactly one wins outright (`codex`, `claude`, `aider`, `bash`…);
//!    several (`node` runs Gemini, and npm installs of Codex and Claude; `python3` runs Aider and
//!    the REPL) are told apart by their title and screen evidence. A command that no profile
//!    lists (`sleep`, `vim`, a wrapper script) gets the fallback: the screen of a program we do
//!    not know is not trusted (a Gemini screen left above `sleep` must not look idle). Add the
//!    wrapper's name to a profile's `match.commands` in an override to change that.
//! 2. Without a current command every profile is a candidate. Candidates are scored on their
//!    evidence: 2 per `match.title` regex that matches the title, 1 per `match.screen` rule that
//!    matches the visible screen (all of it, not only the `busy_lines` window). The highest
//!    score wins; a tie goes to the profile listed first (built-ins in the order codex,
//!    claude-code, gemini, aider, python, shell; user-added profiles after them).
//! 3. No evidence at all: the fallback profile `shell` (which calls any foreground program that
//!    is not a shell busy, and anything else unknown unless it shows a shell prompt).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use regex::{Regex, RegexBuilder};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::state::{normalize_command, PaneView, Window};

/// The name of the profile `pick` falls back to when nothing else matches.
pub const FALLBACK_PROFILE: &str = "shell";

/// The built-in profiles, in pick priority order: (file name, YAML text).
const BUILTIN: &[(&str, &str)] = &[
    (
        "profiles/codex.yaml",
        include_str!("../../profiles/codex.yaml"),
    ),
    (
        "profiles/claude-code.yaml",
        include_str!("../../profiles/claude-code.yaml"),
    ),
    (
        "profiles/gemini.yaml",
        include_str!("../../profiles/gemini.yaml"),
    ),
    (
        "profiles/aider.yaml",
        include_str!("../../profiles/aider.yaml"),
    ),
    (
        "profiles/python.yaml",
        include_str!("../../profiles/python.yaml"),
    ),
    ("profiles/sim.yaml", include_str!("../../profiles/sim.yaml")),
    (
        "profiles/shell.yaml",
        include_str!("../../profiles/shell.yaml"),
    ),
];

/// Why a profile could not be loaded. `origin` is the file (or the name the caller gave the
/// text); `rule` is the key path inside the profile, such as `busy[2]` or `match.commands[0]`.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profiles from {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: invalid profile: {source}")]
    Parse {
        origin: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("{origin}: profile `{profile}`, rule {rule}: invalid regex: {source}")]
    BadRegex {
        origin: String,
        profile: String,
        rule: String,
        #[source]
        source: regex::Error,
    },
    #[error("{origin}: profile `{profile}`, {rule}: {message}")]
    Invalid {
        origin: String,
        profile: String,
        rule: String,
        message: String,
    },
    #[error("{origin}: holds no profile")]
    Empty { origin: String },
}

// ---------------------------------------------------------------------------------------------
// Stage 1: the raw YAML shape.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, rename = "match")]
    matcher: RawMatch,
    #[serde(default)]
    command: RawCommand,
    #[serde(default)]
    title: RawTitle,
    #[serde(default)]
    busy: Vec<RawRule>,
    #[serde(default)]
    asking: Vec<RawRule>,
    #[serde(default)]
    idle: Vec<RawRule>,
    #[serde(default)]
    prompt: Option<RawPrompt>,
    #[serde(default)]
    reply: Option<RawReply>,
    #[serde(default)]
    last_lines: Option<usize>,
    #[serde(default)]
    settle_ms: Option<u64>,
    #[serde(default)]
    idle_when_silent_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    title: Vec<RawRule>,
    #[serde(default)]
    screen: Vec<RawRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    #[serde(default)]
    busy_unless: Vec<String>,
    #[serde(default)]
    unknown_if: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTitle {
    #[serde(default)]
    busy: Vec<RawRule>,
    #[serde(default)]
    asking: Vec<RawRule>,
    #[serde(default)]
    idle: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrompt {
    regex: String,
    #[serde(default)]
    last_lines: Option<usize>,
    #[serde(default)]
    placeholders: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReply {
    #[serde(default)]
    start: Vec<String>,
    #[serde(default)]
    stop: Vec<String>,
}

/// A rule as written: a bare regex, or a map with `regex`, `last_lines`, `name`.
#[derive(Debug)]
struct RawRule {
    regex: String,
    last_lines: Option<usize>,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleMap {
    regex: String,
    #[serde(default)]
    last_lines: Option<usize>,
    #[serde(default)]
    name: Option<String>,
}

impl<'de> Deserialize<'de> for RawRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RuleVisitor;
        impl<'de> Visitor<'de> for RuleVisitor {
            type Value = RawRule;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a regex string or a map with `regex`, `last_lines`, `name`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawRule, E> {
                Ok(RawRule {
                    regex: v.to_owned(),
                    last_lines: None,
                    name: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawRule, A::Error> {
                let m = RawRuleMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawRule {
                    regex: m.regex,
                    last_lines: m.last_lines,
                    name: m.name,
                })
            }
        }
        deserializer.deserialize_any(RuleVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 2: the checked profile.

/// One compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) regex: Regex,
    /// Only the last N non-blank rows (screen rules); `None`: the profile's window.
    pub(crate) last_lines: Option<usize>,
    /// Shown in `Classification::reason`: the rule's `name`, or its regex.
    pub(crate) label: String,
}

/// Title rules by the state they announce.
#[derive(Debug, Clone, Default)]
pub(crate) struct TitleRules {
    pub(crate) busy: Vec<Rule>,
    pub(crate) asking: Vec<Rule>,
    pub(crate) idle: Vec<Rule>,
}

/// Where typed input sits on the screen.
#[derive(Debug, Clone)]
pub(crate) struct PromptRule {
    pub(crate) regex: Regex,
    pub(crate) last_lines: usize,
    pub(crate) placeholders: Vec<Regex>,
}

/// Where the agent's last reply is: see the module documentation and
/// [`super::heuristic::last_reply`]. Regexes match one row each.
#[derive(Debug, Clone)]
pub(crate) struct ReplyRules {
    pub(crate) start: Vec<Regex>,
    pub(crate) stop: Vec<Regex>,
}

/// Rows the prompt rule looks at when the profile does not say.
const DEFAULT_PROMPT_LINES: usize = 6;

/// A checked agent profile. Build it through [`Profiles`].
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name (`codex`, `claude-code`, `gemini`, `aider`, `python`, `shell`…).
    pub name: String,
    pub(crate) description: String,
    pub(crate) origin: String,
    pub(crate) match_commands: Vec<Regex>,
    pub(crate) match_title: Vec<Rule>,
    pub(crate) match_screen: Vec<Rule>,
    pub(crate) busy_unless: Vec<Regex>,
    pub(crate) unknown_if: Vec<Regex>,
    pub(crate) title: TitleRules,
    pub(crate) busy: Vec<Rule>,
    pub(crate) asking: Vec<Rule>,
    pub(crate) idle: Vec<Rule>,
    pub(crate) prompt: Option<PromptRule>,
    pub(crate) reply: Option<ReplyRules>,
    pub(crate) last_lines: Option<usize>,
    pub(crate) settle: Option<Duration>,
    pub(crate) idle_when_silent: Option<Duration>,
}

impl Profile {
    /// Free-text description from the YAML (may be empty).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Where the profile came from: `built-in (profiles/codex.yaml)` or the user's file.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Does `match.commands` accept this `#{pane_current_command}`?
    pub fn matches_command(&self, current_command: &str) -> bool {
        let cmd = normalize_command(current_command);
        !cmd.is_empty() && self.match_commands.iter().any(|r| r.is_match(cmd))
    }

    /// Evidence that this profile is the program in the pane: 2 per matching `match.title`
    /// regex, 1 per matching `match.screen` rule.
    pub(crate) fn evidence(&self, title: &str, screen: &Window) -> usize {
        let title = title.trim();
        let t = if title.is_empty() {
            0
        } else {
            self.match_title
                .iter()
                .filter(|r| r.regex.is_match(title))
                .count()
        };
        let s = self
            .match_screen
            .iter()
            .filter(|r| {
                r.regex
                    .is_match(screen.tail(r.last_lines.unwrap_or(usize::MAX)))
            })
            .count();
        2 * t + s
    }

    fn compile(raw: RawProfile, origin: &str) -> Result<Profile, ProfileError> {
        let profile = raw.name.trim().to_owned();
        let invalid = |rule: &str, message: String| ProfileError::Invalid {
            origin: origin.to_owned(),
            profile: profile.clone(),
            rule: rule.to_owned(),
            message,
        };
        if profile.is_empty()
            || !profile
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(invalid(
                "name",
                format!(
                    "{:?} is not a profile name (letters, digits, `.`, `_`, `-`)",
                    raw.name
                ),
            ));
        }
        if raw.last_lines == Some(0) {
            return Err(invalid("last_lines", "must be at least 1".into()));
        }
        let c = Compiler {
            origin,
            profile: &profile,
        };
        Ok(Profile {
            description: raw.description.unwrap_or_default(),
            origin: origin.to_owned(),
            match_commands: c.commands("match.commands", &raw.matcher.commands)?,
            match_title: c.rules("match.title", raw.matcher.title, false)?,
            match_screen: c.rules("match.screen", raw.matcher.screen, true)?,
            busy_unless: c.commands("command.busy_unless", &raw.command.busy_unless)?,
            unknown_if: c.commands("command.unknown_if", &raw.command.unknown_if)?,
            title: TitleRules {
                busy: c.rules("title.busy", raw.title.busy, false)?,
                asking: c.rules("title.asking", raw.title.asking, false)?,
                idle: c.rules("title.idle", raw.title.idle, false)?,
            },
            busy: c.rules("busy", raw.busy, true)?,
            asking: c.rules("asking", raw.asking, true)?,
            idle: c.rules("idle", raw.idle, true)?,
            prompt: raw.prompt.map(|p| c.prompt(p)).transpose()?,
            reply: raw.reply.map(|r| c.reply(r)).transpose()?,
            last_lines: raw.last_lines,
            settle: raw.settle_ms.map(Duration::from_millis),
            idle_when_silent: raw.idle_when_silent_ms.map(Duration::from_millis),
            name: profile,
        })
    }
}

struct Compiler<'a> {
    origin: &'a str,
    profile: &'a str,
}

impl Compiler<'_> {
    fn bad_regex(&self, rule: String, source: regex::Error) -> ProfileError {
        ProfileError::BadRegex {
            origin: self.origin.to_owned(),
            profile: self.profile.to_owned(),
            rule,
            source,
        }
    }

    fn prompt(&self, raw: RawPrompt) -> Result<PromptRule, ProfileError> {
        if raw.last_lines == Some(0) {
            return Err(ProfileError::Invalid {
                origin: self.origin.to_owned(),
                profile: self.profile.to_owned(),
                rule: "prompt.last_lines".into(),
                message: "must be at least 1".into(),
            });
        }
        let regex = RegexBuilder::new(&raw.regex)
            .multi_line(true)
            .build()
            .map_err(|e| self.bad_regex("prompt.regex".into(), e))?;
        Ok(PromptRule {
            regex,
            last_lines: raw.last_lines.unwrap_or(DEFAULT_PROMPT_LINES),
            placeholders: self.commands("prompt.placeholders", &raw.placeholders)?,
        })
    }

    fn reply(&self, raw: RawReply) -> Result<ReplyRules, ProfileError> {
        if raw.start.is_empty() && raw.stop.is_empty() {
            return Err(ProfileError::Invalid {
                origin: self.origin.to_owned(),
                profile: self.profile.to_owned(),
                rule: "reply".into(),
                message: "needs at least one `start` or `stop` rule".into(),
            });
        }
        let rows = |key: &str, list: &[String]| -> Result<Vec<Regex>, ProfileError> {
            list.iter()
                .enumerate()
                .map(|(i, src)| {
                    Regex::new(src).map_err(|e| self.bad_regex(format!("{key}[{i}] `{src}`"), e))
                })
                .collect()
        };
        Ok(ReplyRules {
            start: rows("reply.start", &raw.start)?,
            stop: rows("reply.stop", &raw.stop)?,
        })
    }

    /// Command names and placeholders: whole-string regexes.
    fn commands(&self, key: &str, list: &[String]) -> Result<Vec<Regex>, ProfileError> {
        list.iter()
            .enumerate()
            .map(|(i, src)| {
                Regex::new(&format!("^(?:{src})$"))
                    .map_err(|e| self.bad_regex(format!("{key}[{i}] `{src}`"), e))
            })
            .collect()
    }

    fn rules(
        &self,
        key: &str,
        list: Vec<RawRule>,
        screen: bool,
    ) -> Result<Vec<Rule>, ProfileError> {
        list.into_iter()
            .enumerate()
            .map(|(i, raw)| {
                let what = match &raw.name {
                    Some(n) => format!("{key}[{i}] ({n:?})"),
                    None => format!("{key}[{i}]"),
                };
                if raw.last_lines == Some(0) {
                    return Err(ProfileError::Invalid {
                        origin: self.origin.to_owned(),
                        profile: self.profile.to_owned(),
                        rule: what,
                        message: "last_lines must be at least 1".into(),
                    });
                }
                if !screen && raw.last_lines.is_some() {
                    return Err(ProfileError::Invalid {
                        origin: self.origin.to_owned(),
                        profile: self.profile.to_owned(),
                        rule: what,
                        message: "last_lines applies to screen rules only".into(),
                    });
                }
                let regex = RegexBuilder::new(&raw.regex)
                    .multi_line(screen)
                    .build()
                    .map_err(|e| self.bad_regex(what, e))?;
                Ok(Rule {
                    label: raw.name.unwrap_or_else(|| raw.regex.clone()),
                    regex,
                    last_lines: raw.last_lines,
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The set of profiles.

/// All known profiles, built-in and user-defined, in pick priority order. Never empty: it always
/// holds the fallback profile `shell`.
#[derive(Debug, Clone)]
pub struct Profiles {
    list: Vec<Profile>,
}

impl Default for Profiles {
    fn default() -> Self {
        Profiles::builtin()
    }
}

impl Profiles {
    /// The profiles compiled into the binary (`profiles/*.yaml`).
    /// Compiled once per process; later calls clone (regexes are shared, not recompiled).
    pub fn builtin() -> Profiles {
        static BUILTIN_PROFILES: OnceLock<Profiles> = OnceLock::new();
        BUILTIN_PROFILES
            .get_or_init(|| {
                let mut profiles = Profiles { list: Vec::new() };
                for (file, yaml) in BUILTIN {
                    // The built-in files are part of the source; a test compiles every one.
                    #[allow(clippy::expect_used)]
                    profiles
                        .from_yaml_str(&format!("built-in ({file})"), yaml)
                        .expect("built-in profile must compile (checked by tests)");
                }
                profiles
            })
            .clone()
    }

    /// Adds or replaces profiles from YAML text (one profile per YAML document). `source_name`
    /// names the text in errors (a file path, `config`…). Nothing changes when an error is
    /// returned.
    pub fn from_yaml_str(&mut self, source_name: &str, yaml: &str) -> Result<(), ProfileError> {
        let parse_err = |source| ProfileError::Parse {
            origin: source_name.to_owned(),
            source,
        };
        // Empty documents (a file of comments, a trailing `---`) hold no profile: skip them.
        // They are found in a first pass so that the second keeps serde_yaml's line numbers.
        let mut empty = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let value = serde_yaml::Value::deserialize(doc).map_err(parse_err)?;
            empty.push(value.is_null());
        }
        let mut parsed = Vec::new();
        for (doc, empty) in serde_yaml::Deserializer::from_str(yaml).zip(empty) {
            if empty {
                continue;
            }
            let raw = RawProfile::deserialize(doc).map_err(parse_err)?;
            parsed.push(Profile::compile(raw, source_name)?);
        }
        if parsed.is_empty() {
            return Err(ProfileError::Empty {
                origin: source_name.to_owned(),
            });
        }
        for p in parsed {
            self.insert(p);
        }
        Ok(())
    }

    /// Loads user profiles from files and directories (every `*.yaml` / `*.yml` in a directory,
    /// in name order). A profile with the name of an existing one replaces it; new names are
    /// added after the built-ins. All or nothing: on error, nothing changes.
    pub fn load_overrides<I, P>(&mut self, paths: I) -> Result<(), ProfileError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let mut staged = self.clone();
        for path in paths {
            let path = path.as_ref();
            let read_err = |source| ProfileError::Read {
                path: path.to_owned(),
                source,
            };
            let meta = std::fs::metadata(path).map_err(read_err)?;
            let files = if meta.is_dir() {
                let mut files = Vec::new();
                for entry in std::fs::read_dir(path).map_err(read_err)? {
                    let p = entry.map_err(read_err)?.path();
                    let yaml = p
                        .extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| e == "yaml" || e == "yml");
                    if yaml && p.is_file() {
                        files.push(p);
                    }
                }
                files.sort();
                files
            } else {
                vec![path.to_owned()]
            };
            for file in files {
                let text = std::fs::read_to_string(&file).map_err(|source| ProfileError::Read {
                    path: file.clone(),
                    source,
                })?;
                staged.from_yaml_str(&file.display().to_string(), &text)?;
            }
        }
        *self = staged;
        Ok(())
    }

    fn insert(&mut self, profile: Profile) {
        match self.list.iter_mut().find(|p| p.name == profile.name) {
            Some(slot) => *slot = profile,
            None => self.list.push(profile),
        }
    }

    /// The profile with this name.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.list.iter().find(|p| p.name == name)
    }

    /// Profile names in pick priority order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|p| p.name.as_str())
    }

    /// All profiles in pick priority order.
    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.list.iter()
    }

    /// The profile used when nothing else matches (`shell`).
    pub fn fallback(&self) -> &Profile {
        // `list` always holds `shell` (built-ins are only ever replaced); the last profile is a
        // belt-and-braces answer that cannot be reached.
        self.get(FALLBACK_PROFILE)
            .or_else(|| self.list.last())
            .unwrap_or_else(|| unreachable!("Profiles is never empty"))
    }

    /// Picks the profile for a pane from its current command, title and screen; see the module
    /// documentation for the order. Returns the fallback (`shell`) when nothing matches.
    pub fn pick(&self, view: &PaneView) -> &Profile {
        let cmd = normalize_command(view.current_command);
        let candidates: Vec<&Profile> = if cmd.is_empty() {
            self.list.iter().collect()
        } else {
            let listed: Vec<&Profile> = self
                .list
                .iter()
                .filter(|p| p.match_commands.iter().any(|r| r.is_match(cmd)))
                .collect();
            match listed.len() {
                0 => return self.fallback(),
                1 => return listed[0],
                _ => listed,
            }
        };
        let screen = Window::new(view.lines, usize::MAX);
        let mut best: Option<(&Profile, usize)> = None;
        for p in candidates {
            let score = p.evidence(view.title, &screen);
            if score > 0 && best.is_none_or(|(_, s)| score > s) {
                best = Some((p, score));
            }
        }
        best.map_or_else(|| self.fallback(), |(p, _)| p)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::detect::state::{classify, PaneState};

    #[test]
    fn builtins_compile_in_priority_order() {
        let p = Profiles::builtin();
        let names: Vec<&str> = p.names().collect();
        assert_eq!(
            names,
            [
                "codex",
                "claude-code",
                "gemini",
                "aider",
                "python",
                "sim",
                "shell"
            ]
        );
        assert_eq!(p.fallback().name, "shell");
        assert!(p
            .get("codex")
            .unwrap()
            .origin()
            .contains("profiles/codex.yaml"));
        assert!(!p.get("gemini").unwrap().description().is_empty());
    }

    #[test]
    fn unknown_key_names_the_key_and_the_source() {
        let mut p = Profiles::builtin();
        let err = p
            .from_yaml_str("my.yaml", "name: x\nbusy: ['a']\nbusyy: ['b']\n")
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ProfileError::Parse { .. }), "{err:?}");
        assert!(msg.contains("my.yaml") && msg.contains("busyy"), "{msg}");

        // Inside a rule map and inside a section, too.
        let err = p
            .from_yaml_str("r.yaml", "name: x\nidle:\n  - { regex: 'a', lines: 3 }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("r.yaml") && err.contains("`lines`"), "{err}");
        let err = p
            .from_yaml_str("t.yaml", "name: x\ntitle: { working: ['a'] }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.yaml") && err.contains("working"), "{err}");
        assert!(p.get("x").is_none(), "nothing is added on error");
    }

    #[test]
    fn bad_regex_names_the_rule_and_the_source() {
        let mut p = Profiles::builtin();
        let err = p
            .from_yaml_str(
                "bad.yaml",
                "name: x\nbusy: ['ok', { regex: 'unclosed (', name: spinner }]\n",
            )
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ProfileError::BadRegex { .. }), "{err:?}");
        assert!(msg.contains("bad.yaml"), "{msg}");
        assert!(msg.contains("busy[1]") && msg.contains("spinner"), "{msg}");
        assert!(msg.contains("profile `x`"), "{msg}");

        let err = p
            .from_yaml_str("c.yaml", "name: y\nmatch: { commands: ['node', '(('] }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c.yaml") && err.contains("match.commands[1]"),
            "{err}"
        );
    }

    #[test]
    fn other_mistakes_are_reported() {
        let mut p = Profiles::builtin();
        for (yaml, needle) in [
            ("name: 'has space'\n", "name"),
            (
                "name: x\nidle: [{ regex: 'a', last_lines: 0 }]\n",
                "idle[0]",
            ),
            (
                "name: x\ntitle: { busy: [{ regex: 'a', last_lines: 2 }] }\n",
                "title.busy[0]",
            ),
            ("name: x\nlast_lines: 0\n", "last_lines"),
            ("name: x\nreply: {}\n", "reply"),
            ("name: x\nreply: { start: ['('] }\n", "reply.start[0]"),
            ("name: x\nreply: { stop: ['a', ')'] }\n", "reply.stop[1]"),
            ("name: x\nreply: { begin: ['a'] }\n", "begin"),
            ("busy: ['a']\n", "name"),
            ("name: x\nbusy: 'a'\n", "busy"),
        ] {
            let err = p.from_yaml_str("f.yaml", yaml).unwrap_err().to_string();
            assert!(
                err.contains("f.yaml") && err.contains(needle),
                "{yaml:?}: {err}"
            );
        }
        for empty in ["", "# nothing\n", "---\n---\n"] {
            let err = p.from_yaml_str("empty.yaml", empty).unwrap_err();
            assert!(
                matches!(err, ProfileError::Empty { .. }),
                "{empty:?}: {err:?}"
            );
        }
        let err = p.from_yaml_str("syntax.yaml", "name: [x\n").unwrap_err();
        assert!(matches!(err, ProfileError::Parse { .. }), "{err:?}");
        // A trailing `---` after a profile is fine.
        p.from_yaml_str("trail.yaml", "name: trail\n---\n").unwrap();
    }

    #[test]
    fn override_replaces_a_builtin_in_place() {
        let mut p = Profiles::builtin();
        p.from_yaml_str(
            "user.yaml",
            "name: shell\ncommand: { busy_unless: [bash] }\nidle: ['>>$']\n",
        )
        .unwrap();
        let names: Vec<&str> = p.names().collect();
        assert_eq!(names.len(), 7);
        assert_eq!(names[6], "shell");
        let shell = p.get("shell").unwrap();
        assert_eq!(shell.origin(), "user.yaml");
        let old_prompt = vec!["user@host:~$ ".to_owned()];
        let new_prompt = vec!["host >> ".to_owned()];
        let v = |l| PaneView::new(l).with_command("bash");
        assert_eq!(
            classify(shell, &v(&old_prompt), 40).state,
            PaneState::Unknown
        );
        assert_eq!(classify(shell, &v(&new_prompt), 40).state, PaneState::Idle);
        // zsh is no longer a shell for this profile.
        let zsh = PaneView::new(&new_prompt).with_command("zsh");
        assert_eq!(classify(shell, &zsh, 40).state, PaneState::Busy);
    }

    #[test]
    fn new_profiles_are_added_and_picked() {
        let mut p = Profiles::builtin();
        p.from_yaml_str(
            "agents.yaml",
            "name: opencode\nmatch: { commands: [opencode], screen: ['opencode v\\d'] }\n\
             idle: [{ regex: '^┃\\s*$', last_lines: 3 }]\n---\n\
             name: other\nmatch: { commands: [other] }\n",
        )
        .unwrap();
        assert_eq!(p.names().last(), Some("other"));
        let screen = vec!["opencode v1.2".to_owned(), "┃".to_owned()];
        assert_eq!(p.pick(&PaneView::new(&screen)).name, "opencode");
        assert_eq!(
            p.pick(&PaneView::new(&screen).with_command("opencode"))
                .name,
            "opencode"
        );
        let c = classify(p.get("opencode").unwrap(), &PaneView::new(&screen), 40);
        assert_eq!(c.state, PaneState::Idle);
    }

    #[test]
    fn load_overrides_reads_files_and_directories_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), "name: shell\nidle: ['%%$']\n").unwrap();
        std::fs::write(dir.path().join("b.yml"), "name: new-agent\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
        let single = dir.path().join("single.conf");
        std::fs::write(&single, "name: single\n").unwrap();

        let mut p = Profiles::builtin();
        p.load_overrides([dir.path(), single.as_path()]).unwrap();
        assert!(p.get("new-agent").is_some() && p.get("single").is_some());
        assert!(p.get("shell").unwrap().origin().ends_with("a.yaml"));

        // A broken file: error names it, and nothing from the batch is applied.
        let bad_dir = tempfile::tempdir().unwrap();
        std::fs::write(bad_dir.path().join("1.yaml"), "name: first-ok\n").unwrap();
        std::fs::write(bad_dir.path().join("2.yaml"), "name: broken\nbusy: ['(']\n").unwrap();
        let mut q = Profiles::builtin();
        let err = q.load_overrides([bad_dir.path()]).unwrap_err().to_string();
        assert!(err.contains("2.yaml") && err.contains("busy[0]"), "{err}");
        assert!(q.get("first-ok").is_none());

        let missing = dir.path().join("nope");
        let err = q.load_overrides([&missing]).unwrap_err();
        assert!(matches!(err, ProfileError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn pick_by_command() {
        let p = Profiles::builtin();
        let blank: Vec<String> = vec![String::new(); 40];
        let pick = |cmd| {
            p.pick(&PaneView::new(&blank).with_command(cmd))
                .name
                .clone()
        };
        assert_eq!(pick("codex"), "codex");
        assert_eq!(pick("claude"), "claude-code");
        assert_eq!(pick("2.1.329"), "claude-code");
        assert_eq!(pick("gemini"), "gemini");
        assert_eq!(pick("aider"), "aider");
        assert_eq!(pick("zsh"), "shell");
        assert_eq!(pick("/bin/bash"), "shell");
        // Ambiguous commands without evidence, unknown commands, nothing: the fallback.
        assert_eq!(pick("node"), "shell");
        assert_eq!(pick("python3"), "shell");
        assert_eq!(pick("vim"), "shell");
        assert_eq!(pick(""), "shell");
        // `node` told apart by the screen.
        let codex = vec!["› Ask Codex to do anything".to_owned()];
        assert_eq!(
            p.pick(&PaneView::new(&codex).with_command("node")).name,
            "codex"
        );
        let python = vec![">>> ".to_owned()];
        assert_eq!(
            p.pick(&PaneView::new(&python).with_command("python3")).name,
            "python"
        );
    }
}
