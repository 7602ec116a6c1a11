//! What a line typed into the chat asks for: `/commands` are read here, everything else
//! (`@name text`, `!urgent`, `!C-c @name`) by [`crate::chatline`]. No I/O.

use crate::chatline::{self, Typed};

/// Messages `/history` shows by default, and the most it asks for.
pub(super) const HISTORY_DEFAULT: u32 = 20;
pub(super) const HISTORY_MAX: u32 = 1000;
/// Messages shown when the interactive chat starts.
pub(super) const HISTORY_ON_JOIN: u32 = 10;

pub(super) const HELP: &str = "\
@name text       a message to one agent
@all text, text  a message to everyone
!text            urgent: not queued behind the agent's turn (!@name text for one agent)
!C-c [@name]     a key (C-c, ^C, Escape, Enter, Up …) to @name, or to the agent you last addressed
/key KEY [name]  any key, also one character (y, 1) to answer a menu
/pause [name]    hold the messages for one agent, or everyone; /resume [name] lets them go
/list            the agents and their states
/history [N]     the last N messages (20)
/discuss N text  a round table: the agents answer, each answer goes to the others, N rounds
/stop            end the discussion at once
/quit            leave (or Ctrl-D, or Ctrl-C on an empty line)";

/// What a line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `content` goes as typed; the daemon reads a leading `@name`/`@all`.
    Send {
        content: String,
        urgent: bool,
    },
    /// `to: None`: the agent last addressed by name.
    Key {
        key: String,
        to: Option<String>,
    },
    Pause(Option<String>),
    Resume(Option<String>),
    List,
    History(u32),
    /// `/discuss N text`.
    Discuss {
        rounds: u32,
        content: String,
    },
    Stop,
    Help,
    Quit,
}

/// Reads one input line; `Ok(None)` for a blank one, `Err` says what is wrong with it.
/// `/commands` are read here; everything else by [`chatline::read_typed`].
pub fn parse_line(line: &str) -> Result<Option<Action>, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    if let Some(cmd) = line.strip_prefix('/') {
        return parse_command(cmd).map(Some);
    }
    Ok(Some(match chatline::read_typed(line)? {
        Typed::Text { content, urgent } => Action::Send { content, urgent },
        Typed::Key { key, to } => Action::Key { key, to },
    }))
}

fn parse_command(cmd: &str) -> Result<Action, String> {
    let mut words = cmd.split_whitespace();
    let name = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    let one_name = |args: &[&str]| -> Result<Option<String>, String> {
        match args {
            [] => Ok(None),
            [n] => Ok(Some(n.trim_start_matches('@').to_string())),
            _ => Err(format!("/{name} takes one name at most")),
        }
    };
    match name {
        "quit" | "exit" | "q" => Ok(Action::Quit),
        "help" | "h" | "?" => Ok(Action::Help),
        "list" | "agents" | "ls" => Ok(Action::List),
        "pause" => Ok(Action::Pause(one_name(&args)?)),
        "stop" if args.is_empty() => Ok(Action::Stop),
        "discuss" => match args.split_first() {
            Some((n, text)) if !text.is_empty() => match n.parse::<u32>() {
                Ok(rounds) if rounds >= 1 => Ok(Action::Discuss {
                    rounds,
                    content: text.join(" "),
                }),
                _ => Err("/discuss N text: N is the number of rounds (1 to 10)".into()),
            },
            _ => Err("/discuss N text: the number of rounds, then what to discuss".into()),
        },
        "resume" => Ok(Action::Resume(one_name(&args)?)),
        "history" => match args.as_slice() {
            [] => Ok(Action::History(HISTORY_DEFAULT)),
            [n] => match n.parse::<u32>() {
                Ok(n) if (1..=HISTORY_MAX).contains(&n) => Ok(Action::History(n)),
                _ => Err(format!("/history N: N is a number from 1 to {HISTORY_MAX}")),
            },
            _ => Err("/history takes one number".into()),
        },
        "key" => match args.as_slice() {
            [k, rest @ ..] if rest.len() <= 1 => {
                let Some(key) = chatline::key_word(k) else {
                    return Err(format!("{k:?} is not a key (try C-c, Escape, Enter, y)"));
                };
                Ok(Action::Key {
                    key,
                    to: one_name(rest)?,
                })
            }
            _ => Err("/key KEY [name]".into()),
        },
        _ => Err(format!(
            "unknown command /{name} (/help lists them); to send text that starts with /, address it: @all /{name}…"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(content: &str, urgent: bool) -> Option<Action> {
        Some(Action::Send {
            content: content.into(),
            urgent,
        })
    }

    fn key(key: &str, to: Option<&str>) -> Option<Action> {
        Some(Action::Key {
            key: key.into(),
            to: to.map(String::from),
        })
    }

    #[test]
    fn lines_become_actions() {
        assert_eq!(parse_line("  ").unwrap(), None);
        assert_eq!(parse_line("@codex hi\r").unwrap(), send("@codex hi", false));
        assert_eq!(parse_line("hello all").unwrap(), send("hello all", false));
        assert_eq!(parse_line("!stop that").unwrap(), send("stop that", true));
        assert_eq!(
            parse_line("!@codex stop").unwrap(),
            send("@codex stop", true)
        );
        assert_eq!(parse_line("!C-c").unwrap(), key("C-c", None));
        assert_eq!(parse_line("!^C @codex").unwrap(), key("C-c", Some("codex")));
        assert_eq!(
            parse_line("!Escape @claude").unwrap(),
            key("Escape", Some("claude"))
        );
        assert_eq!(parse_line("!^[").unwrap(), key("Escape", None));
        // A key word followed by more text, or a single character, is urgent text.
        assert_eq!(
            parse_line("!End the task").unwrap(),
            send("End the task", true)
        );
        assert_eq!(parse_line("!y").unwrap(), send("y", true));
        assert_eq!(parse_line("!C-c @all").unwrap(), send("C-c @all", true));
        assert!(parse_line("!").is_err());
        assert_eq!(parse_line("/key y codex").unwrap(), key("y", Some("codex")));
        assert_eq!(parse_line("/key ^C @a").unwrap(), key("C-c", Some("a")));
        assert!(parse_line("/key nonsense-key").is_err());
        assert_eq!(parse_line("/pause").unwrap(), Some(Action::Pause(None)));
        assert_eq!(
            parse_line("/resume @codex").unwrap(),
            Some(Action::Resume(Some("codex".into())))
        );
        assert!(parse_line("/pause a b").is_err());
        assert_eq!(parse_line("/history").unwrap(), Some(Action::History(20)));
        assert_eq!(parse_line("/history 5").unwrap(), Some(Action::History(5)));
        assert!(parse_line("/history 0").is_err());
        assert!(parse_line("/history x").is_err());
        assert_eq!(parse_line("/list").unwrap(), Some(Action::List));
        assert_eq!(
            parse_line("/discuss 2 tabs or spaces?").unwrap(),
            Some(Action::Discuss {
                rounds: 2,
                content: "tabs or spaces?".into()
            })
        );
        assert!(parse_line("/discuss two things").is_err());
        assert!(parse_line("/discuss 3").is_err());
        assert_eq!(parse_line("/stop").unwrap(), Some(Action::Stop));
        assert_eq!(parse_line("/quit").unwrap(), Some(Action::Quit));
        let e = parse_line("/tmp/x is full").unwrap_err();
        assert!(e.contains("@all /tmp/x"), "{e}");
    }
}
