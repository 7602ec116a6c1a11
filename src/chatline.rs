//! The chat line grammar, in one place: how a line of chat is read (`@name`, `@all`,
//! `!urgent`, `!C-c`), who may talk to whom, and how delivered text names its sender; and how
//! the person's chat client reads what they type before it calls the daemon ([`read_typed`]).
//!
//! Pure functions without state or I/O. A low module: it imports nothing of the crate but
//! [`KeyName`] (and the leaf [`crate::names`]); the daemon's core and the chat client build on
//! it, never the other way round.

use std::collections::{BTreeMap, BTreeSet};

use crate::tmux::command::KeyName;

/// The person's default name in the chat.
pub use crate::names::PERSON;

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum To {
    All,
    One(String),
}

impl To {
    pub fn parse(name: &str) -> To {
        if name.eq_ignore_ascii_case("all") {
            To::All
        } else {
            To::One(name.to_string())
        }
    }

    pub fn name(&self) -> &str {
        match self {
            To::All => "all",
            To::One(n) => n,
        }
    }
}

/// What a line of chat asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Text for agents; `urgent` skips the queue.
    Message {
        to: To,
        content: String,
        urgent: bool,
    },
    /// A key sent to agents' panes at once (the person only).
    Key { to: To, key: KeyName },
}

/// Reads a line: an optional `@name` or `@all` first, then the text; a text that starts with
/// `!` is urgent, and `!C-c`, `!^C`, `!Escape` (any tmux key name) send that key instead.
/// `to` given by the caller beats an `@name` in the text.
pub fn parse_line(content: &str, to: Option<&str>) -> Result<Line, String> {
    let mut text = content.trim();
    let mut dest = to.map(To::parse);
    if dest.is_none() {
        if let Some(rest) = text.strip_prefix('@') {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let name = &rest[..end];
            if name.is_empty() {
                return Err("`@` needs a name: `@name text` or `@all text`".into());
            }
            dest = Some(To::parse(name));
            text = rest[end..].trim_start();
        }
    }
    let dest = dest.unwrap_or(To::All);
    if let Some(rest) = text.strip_prefix('!') {
        let word = rest.trim();
        if let Some(key) = key_of(word) {
            return Ok(Line::Key { to: dest, key });
        }
        let content = rest.trim_start().to_string();
        if content.is_empty() {
            return Err("nothing to send after `!`".into());
        }
        return Ok(Line::Message {
            to: dest,
            content,
            urgent: true,
        });
    }
    if text.is_empty() {
        return Err("nothing to send".into());
    }
    Ok(Line::Message {
        to: dest,
        content: text.to_string(),
        urgent: false,
    })
}

/// A key the person may send: `^C` style, or a tmux key name that is a control or named key
/// (not a plain letter, so that `!yes` stays a message).
fn key_of(word: &str) -> Option<KeyName> {
    if word.contains(char::is_whitespace) || word.is_empty() {
        return None;
    }
    if let Some(c) = word.strip_prefix('^') {
        let mut chars = c.chars();
        return match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_alphabetic() || c == '[' => {
                KeyName::parse(&format!("C-{}", c.to_ascii_lowercase())).ok()
            }
            _ => None,
        };
    }
    let looks_like_key = word.starts_with("C-")
        || word.starts_with("M-")
        || word.starts_with("S-")
        || matches!(
            word.to_ascii_lowercase().as_str(),
            "escape"
                | "esc"
                | "enter"
                | "tab"
                | "btab"
                | "bspace"
                | "up"
                | "down"
                | "left"
                | "right"
                | "home"
                | "end"
                | "pageup"
                | "pagedown"
        )
        || (word.len() <= 3 && word.starts_with('F') && word[1..].parse::<u8>().is_ok());
    if !looks_like_key {
        return None;
    }
    let word = if word.eq_ignore_ascii_case("esc") {
        "Escape"
    } else {
        word
    };
    KeyName::parse(word).ok()
}

/// What the person's chat client makes of a typed line that is not a `/command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    /// Text that goes to the daemon as typed (the daemon reads a leading `@name`/`@all` with
    /// [`parse_line`]); `urgent` from a leading `!`, which is taken off.
    Text { content: String, urgent: bool },
    /// `!KEY` or `!KEY @name`: a key, to `name`, or (`None`) to the agent last addressed.
    Key { key: String, to: Option<String> },
}

/// Reads a line the person typed into the chat client (trimmed, not blank, not a `/command`):
/// `!KEY` and `!KEY @name` are keys ([`key_shortcut`]), `!text` and `!@name text` urgent text,
/// anything else text. `Err` says what is wrong with the line.
pub fn read_typed(line: &str) -> Result<Typed, String> {
    let line = line.trim();
    let Some(rest) = line.strip_prefix('!') else {
        return Ok(Typed::Text {
            content: line.to_string(),
            urgent: false,
        });
    };
    let rest = rest.trim_start();
    let words: Vec<&str> = rest.split_whitespace().collect();
    let to = match words.get(1) {
        None => Some(None),
        Some(w) if words.len() == 2 => w
            .strip_prefix('@')
            .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case("all"))
            .map(|n| Some(n.to_string())),
        Some(_) => None,
    };
    if let (Some(first), Some(to)) = (words.first(), to) {
        if let Some(key) = key_shortcut(first) {
            return Ok(Typed::Key { key, to });
        }
    }
    if rest.is_empty() {
        return Err("nothing to send after `!`".into());
    }
    Ok(Typed::Text {
        content: rest.to_string(),
        urgent: true,
    })
}

/// `^C` → `C-c`, `^[` → `Escape`, `^?` → `BSpace`.
pub fn caret_key(word: &str) -> Option<String> {
    let mut chars = word.chars();
    if chars.next() != Some('^') {
        return None;
    }
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return None;
    };
    match c {
        '[' => Some("Escape".into()),
        '?' => Some("BSpace".into()),
        c if c.is_ascii_alphabetic() => Some(format!("C-{}", c.to_ascii_lowercase())),
        '\\' | ']' | '^' | '_' | '@' => Some(format!("C-{c}")),
        _ => None,
    }
}

/// The key a `!WORD` line of the chat client means: `^X`, or a named or modified key (`C-c`,
/// `Escape`, `M-x`). One character alone is text, not a key (`/key y` sends it as a key).
pub fn key_shortcut(word: &str) -> Option<String> {
    if let Some(k) = caret_key(word) {
        return Some(k);
    }
    (word.chars().count() > 1 && KeyName::parse(word).is_ok()).then(|| word.to_string())
}

/// The key `/key WORD` names: `^X`, or anything [`KeyName::parse`] takes, one character
/// included (`y`, `1` answer a menu).
pub fn key_word(word: &str) -> Option<String> {
    let key = caret_key(word).unwrap_or_else(|| word.to_string());
    KeyName::parse(&key).is_ok().then_some(key)
}

/// The text typed into a recipient's prompt: it names the sender and so never starts with `!`
/// or `/`.
pub fn delivered_text(from: &str, to: &To, content: &str) -> String {
    match to {
        To::All => format!("[from {from} to all] {content}"),
        To::One(_) => format!("[from {from}] {content}"),
    }
}

/// Who may send to whom. Empty: everyone to everyone.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    allowed: BTreeMap<String, BTreeSet<String>>,
}

impl Routes {
    /// From the config's `routes:` (sender → names it may send to; `all` = everyone).
    pub fn new(routes: &BTreeMap<String, Vec<String>>) -> Routes {
        Routes {
            allowed: routes
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                .collect(),
        }
    }

    /// Whether `from` may send to `to`. The person may always send; a sender with no entry may
    /// send to everyone only when no routes are configured at all.
    pub fn allows(&self, from: &str, to: &str) -> bool {
        if self.allowed.is_empty() || from == PERSON {
            return true;
        }
        match self.allowed.get(from) {
            Some(set) => set.contains("all") || set.contains(to),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(to: To, content: &str, urgent: bool) -> Line {
        Line::Message {
            to,
            content: content.into(),
            urgent,
        }
    }

    #[test]
    fn lines_are_read_as_a_person_types_them() {
        assert_eq!(parse_line("hello", None), Ok(msg(To::All, "hello", false)));
        assert_eq!(
            parse_line("@codex run the tests", None),
            Ok(msg(To::One("codex".into()), "run the tests", false))
        );
        assert_eq!(parse_line("@all  hi", None), Ok(msg(To::All, "hi", false)));
        assert_eq!(parse_line("@ALL hi", None), Ok(msg(To::All, "hi", false)));
        assert_eq!(parse_line("!stop", None), Ok(msg(To::All, "stop", true)));
        assert_eq!(
            parse_line("@claude !stop now", None),
            Ok(msg(To::One("claude".into()), "stop now", true))
        );
        assert_eq!(
            parse_line("hi there", Some("gemini")),
            Ok(msg(To::One("gemini".into()), "hi there", false))
        );
        // An explicit `to` keeps an `@` in the text as text.
        assert_eq!(
            parse_line("@x hi", Some("gemini")),
            Ok(msg(To::One("gemini".into()), "@x hi", false))
        );
        assert!(parse_line("", None).is_err());
        assert!(parse_line("@ hi", None).is_err());
        assert!(parse_line("@codex", None).is_err());
        assert!(parse_line("!", None).is_err());
    }

    #[test]
    fn keys_are_recognised_and_plain_words_are_not() {
        let key = |s: &str| match parse_line(s, None) {
            Ok(Line::Key { key, .. }) => Some(key.to_string()),
            _ => None,
        };
        assert_eq!(key("!C-c"), Some("C-c".into()));
        assert_eq!(key("!^C"), Some("C-c".into()));
        assert_eq!(key("!Escape"), Some("Escape".into()));
        assert_eq!(key("!esc"), Some("Escape".into()));
        assert_eq!(key("@codex !C-c"), Some("C-c".into()));
        assert_eq!(key("!stop"), None);
        assert_eq!(key("!y"), None);
        assert_eq!(key("!C-c now"), None);
        assert_eq!(key("!rm -rf /"), None);
    }

    #[test]
    fn delivered_text_names_the_sender_and_is_safe_to_type() {
        let t = delivered_text("claude", &To::One("codex".into()), "/quit");
        assert_eq!(t, "[from claude] /quit");
        assert!(!t.starts_with('!') && !t.starts_with('/'));
        assert_eq!(
            delivered_text("person", &To::All, "hi"),
            "[from person to all] hi"
        );
    }

    fn typed(content: &str, urgent: bool) -> Result<Typed, String> {
        Ok(Typed::Text {
            content: content.into(),
            urgent,
        })
    }

    fn typed_key(key: &str, to: Option<&str>) -> Result<Typed, String> {
        Ok(Typed::Key {
            key: key.into(),
            to: to.map(String::from),
        })
    }

    #[test]
    fn the_chat_client_reads_urgent_lines_and_keys() {
        assert_eq!(read_typed("@codex hi\r"), typed("@codex hi", false));
        assert_eq!(read_typed("hello all"), typed("hello all", false));
        assert_eq!(read_typed("!stop that"), typed("stop that", true));
        assert_eq!(read_typed("!@codex stop"), typed("@codex stop", true));
        assert_eq!(read_typed("!C-c"), typed_key("C-c", None));
        assert_eq!(read_typed("!^C @codex"), typed_key("C-c", Some("codex")));
        assert_eq!(
            read_typed("!Escape @claude"),
            typed_key("Escape", Some("claude"))
        );
        assert_eq!(read_typed("!^["), typed_key("Escape", None));
        // A key word followed by more text, or a single character, is urgent text.
        assert_eq!(read_typed("!End the task"), typed("End the task", true));
        assert_eq!(read_typed("!y"), typed("y", true));
        assert_eq!(read_typed("!C-c @all"), typed("C-c @all", true));
        assert!(read_typed("!").is_err());
        assert_eq!(key_word("y").as_deref(), Some("y"));
        assert_eq!(key_word("^C").as_deref(), Some("C-c"));
        assert_eq!(key_word("nonsense-key"), None);
    }

    #[test]
    fn routes_default_to_everyone_and_restrict_when_given() {
        let open = Routes::default();
        assert!(open.allows("a", "b"));
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), vec!["b".to_string()]);
        m.insert("c".to_string(), vec!["all".to_string()]);
        let r = Routes::new(&m);
        assert!(r.allows("a", "b"));
        assert!(!r.allows("a", "c"));
        assert!(r.allows("c", "a"));
        assert!(!r.allows("d", "a"));
        assert!(r.allows(PERSON, "a"));
    }
}
