//! Questions without blocks: when a worker's last reply asks for direction in plain words.
//!
//! An agent that forgets the request format still stops and asks ("Should I also update the
//! docs?", "Done. What would you like next?"). When the worker turns idle after a turn, the daemon
//! takes its last reply ([`last_reply`], by the profile's `reply` rules) and asks [`Heuristics`]
//! whether it calls for an answer. Only the end of the reply is judged (its last
//! [`TAIL_LINES`] non-blank rows), never the whole scrollback: a "done" three paragraphs up says
//! nothing about what the agent is waiting for now.
//!
//! This module reads text it is given: no I/O, no state, no panics on any screen. It never judges
//! what the bridge typed ([`is_echo`]), and a reply that holds a block is the block detector's
//! business: only the text after its last block is judged.

use std::borrow::Cow;

use regex::{Regex, RegexBuilder};

use super::blocks::{find_blocks, normalize, Limits};
use super::profile::Profile;
use super::state::strip_escapes;

/// How many non-blank rows at the end of a reply are judged.
pub const TAIL_LINES: usize = 3;

/// The phrases that make a reply a request, and how they are matched.
#[derive(Debug, Clone)]
pub struct Heuristics {
    phrases: Vec<(String, Regex)>,
}

impl Heuristics {
    /// Compiles `phrases`: each matches case-insensitively, as whole words (a phrase's words may
    /// be split by any whitespace, a wrapped row included). Blank phrases are ignored. Regex
    /// syntax in a phrase is taken literally.
    pub fn new(phrases: &[String]) -> Result<Self, regex::Error> {
        let mut compiled = Vec::new();
        for phrase in phrases {
            let words: Vec<String> = phrase.split_whitespace().map(regex::escape).collect();
            if words.is_empty() {
                continue;
            }
            let re = RegexBuilder::new(&format!(r"(?:^|\W){}(?:\W|$)", words.join(r"\s+")))
                .case_insensitive(true)
                .build()?;
            compiled.push((phrase.trim().to_owned(), re));
        }
        Ok(Heuristics { phrases: compiled })
    }

    /// The built-in phrases: "what would you like", "should i", "ready to proceed", "done",
    /// "complete", "finished".
    pub fn default_phrases() -> Vec<String> {
        [
            "what would you like",
            "should i",
            "ready to proceed",
            "done",
            "complete",
            "finished",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    }

    /// Does this reply ask for direction? Returns why (for logs and the inbox): `ends with a
    /// question`, or `says "should i"`. `None` for an empty reply, a reply that ends in a block
    /// or in an unterminated one (the block detector handles those), and anything else.
    pub fn judge(&self, reply: &str) -> Option<String> {
        let tail = tail_rows(reply)?;
        let last = tail.last()?;
        let closing: &[char] = &[')', ']', '"', '\'', '*', '_', '`', '»', '”', '’'];
        let end = last.trim_end_matches(|c: char| c.is_whitespace() || closing.contains(&c));
        if end.ends_with('?') || end.ends_with('？') {
            return Some("ends with a question".to_owned());
        }
        let text = tail.join("\n");
        self.phrases
            .iter()
            .find(|(_, re)| re.is_match(&text))
            .map(|(phrase, _)| format!("says {phrase:?}"))
    }
}

/// The last `TAIL_LINES` non-blank rows of a reply, after its last block; `None` when there are
/// none or a block is still open.
fn tail_rows(reply: &str) -> Option<Vec<String>> {
    let rows: Vec<String> = reply.lines().map(|r| clean(r).into_owned()).collect();
    let scan = find_blocks(&rows, &Limits::default());
    if scan.open.is_some() {
        return None;
    }
    let after = scan.blocks.last().map_or(0, |b| b.rows.end);
    let mut tail: Vec<String> = rows[after.min(rows.len())..]
        .iter()
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    if tail.is_empty() {
        return None;
    }
    let from = tail.len().saturating_sub(TAIL_LINES);
    tail.drain(..from);
    Some(tail)
}

/// The agent's last reply on this screen: the text above the prompt area, back to where the
/// reply starts (the reply bullet `•` Codex, `●` Claude, `✦` Gemini; a shell's last command
/// line), by the profile's `reply` rules (see [`super::profile`]). The first row loses its
/// bullet, the others their common indentation. A reply whose start row scrolled off is what
/// is left of it (a `stop` row on the very top row counts as the top edge: Codex pins the turn's
/// input there). `None` when the profile has no `reply` rules,
/// the screen shows no reply (a fresh session, or an error or interrupt after the last input),
/// or the reply is empty.
pub fn last_reply(profile: &Profile, lines: &[String]) -> Option<String> {
    reply_on_screen(profile, lines).map(|r| r.text)
}

/// The agent's last reply as [`last_reply`] finds it, and whether it is whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    /// False when the reply runs to the top of what the screen keeps with no start row (its
    /// beginning scrolled away, or the profile marks no start and nothing stopped it).
    pub whole: bool,
    /// The row after the reply's last row: below it are only the prompt, footers and blanks.
    pub end: usize,
}

/// [`last_reply`], saying whether the reply's start is on screen.
pub fn reply_on_screen(profile: &Profile, lines: &[String]) -> Option<Reply> {
    let rules = profile.reply.as_ref()?;
    let rows: Vec<Cow<str>> = lines
        .iter()
        .map(|l| match clean(l) {
            Cow::Borrowed(s) => Cow::Borrowed(s.trim_end()),
            Cow::Owned(s) => Cow::Owned(s.trim_end().to_owned()),
        })
        .collect();
    let is_stop = |r: &str| rules.stop.iter().any(|re| re.is_match(r));

    // Below the reply: the prompt area, footers, spinners, blank rows.
    let mut i = rows.len();
    while i > 0 && (rows[i - 1].is_empty() || is_stop(&rows[i - 1])) {
        i -= 1;
    }
    let end = i;
    let mut first_line: Option<String> = None;
    let mut begin = 0;
    let mut whole = false;
    while i > 0 {
        let row = &rows[i - 1];
        if is_stop(row) {
            // Codex pins the input of the turn on the top row while its reply scrolls under it:
            // a stop row there is the top edge, not the end of an unstarted reply.
            if !rules.start.is_empty() && (i > 1 || i == end) {
                return None;
            }
            whole = i > 1 || rules.start.is_empty();
            begin = i;
            break;
        }
        if let Some(caps) = rules.start.iter().find_map(|re| re.captures(row)) {
            first_line = caps
                .name("text")
                .or_else(|| caps.get(1))
                .map(|m| m.as_str().trim().to_owned());
            begin = i;
            whole = true;
            break;
        }
        i -= 1;
    }
    let body = &rows[begin.min(end)..end];
    let common = body
        .iter()
        .filter(|r| !r.trim().is_empty())
        .map(|r| r.chars().take_while(|c| c.is_whitespace()).count())
        .min()
        .unwrap_or(0);
    let mut out: Vec<&str> = Vec::with_capacity(body.len() + 1);
    if let Some(first) = first_line.as_deref() {
        out.push(first);
    }
    out.extend(body.iter().map(|r| drop_ws(r, common)));
    let first = out.iter().position(|r| !r.trim().is_empty())?;
    let last = out.iter().rposition(|r| !r.trim().is_empty())?;
    Some(Reply {
        text: out[first..=last].join("\n"),
        whole,
        end,
    })
}

/// Is this reply the bridge's own text coming back (the agent's echo of what was typed, or a
/// shell printing it)? True when the reply, whitespace folded, lies inside one of the `typed`
/// texts. An empty reply is not an echo.
pub fn is_echo(reply: &str, typed: &[String]) -> bool {
    let reply = normalize(&clean(reply));
    !reply.is_empty() && typed.iter().any(|t| normalize(&clean(t)).contains(&reply))
}

/// The row as text: escape sequences and control characters other than tab and newline removed.
fn clean(s: &str) -> Cow<'_, str> {
    if s.chars().any(|c| c.is_control() && c != '\t' && c != '\n') {
        Cow::Owned(
            s.split('\n')
                .map(strip_escapes)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// `s` without up to `n` leading whitespace characters.
fn drop_ws(s: &str, n: usize) -> &str {
    let mut at = s.len();
    for (taken, (i, c)) in s.char_indices().enumerate() {
        if taken == n || !c.is_whitespace() {
            at = i;
            break;
        }
    }
    &s[at..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::profile::Profiles;
    use std::path::Path;

    fn h() -> Heuristics {
        Heuristics::new(&Heuristics::default_phrases()).unwrap()
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    fn read(path: &Path) -> Vec<String> {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        lines(&text)
    }

    fn block_fixture(name: &str) -> Vec<String> {
        read(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/blocks")
                .join(name),
        )
    }

    fn screen_fixture(name: &str) -> Vec<String> {
        read(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/screens")
                .join(name),
        )
    }

    fn reply_of(profile: &str, lines: &[String]) -> Option<String> {
        let profiles = Profiles::builtin();
        last_reply(profiles.get(profile).unwrap(), lines)
    }

    const BLOCK: &str = "<<CONTROLLER_REQUEST>>\nShould I proceed?\n<<CONTROLLER_REQUEST_END>>";

    #[test]
    fn each_phrase_is_found() {
        let h = h();
        for (reply, reason) in [
            (
                "I set up the project.\nWhat would you like me to do next",
                "says \"what would you like\"",
            ),
            (
                "Tests fail on CI.\nShould I\nfix them first.",
                "says \"should i\"",
            ),
            (
                "The plan is written. Ready to proceed.",
                "says \"ready to proceed\"",
            ),
            ("Done.", "says \"done\""),
            ("The migration is complete!", "says \"complete\""),
            ("All FINISHED", "says \"finished\""),
        ] {
            assert_eq!(h.judge(reply).as_deref(), Some(reason), "{reply:?}");
        }
    }

    #[test]
    fn a_trailing_question_is_a_request() {
        let h = h();
        for reply in [
            "I found two configs.\nWhich one is current?",
            "Use the new API?   ",
            "Shall I go on? (yes/no)?",
            "Keep it (`foo`)?)",
            "要继续吗？",
        ] {
            assert_eq!(
                h.judge(reply).as_deref(),
                Some("ends with a question"),
                "{reply:?}"
            );
        }
    }

    #[test]
    fn only_the_end_of_the_reply_counts() {
        let h = h();
        let reply = "Step one is done.\nIs the schema right? I checked it.\n\nNow I refactor the parser.\nThen I add tests.\nThen I update the docs.\n";
        assert_eq!(h.judge(reply), None);
        // Whole words only.
        assert_eq!(
            h.judge("Abandoned the branch.\nIncomplete data handled.\nShoulder."),
            None
        );
        assert_eq!(h.judge(""), None);
        assert_eq!(h.judge("\n  \n"), None);
    }

    #[test]
    fn a_reply_that_ends_in_a_block_is_left_to_the_block_detector() {
        let h = h();
        assert_eq!(
            h.judge(&format!("Sure, here is my question.\n\n{BLOCK}")),
            None
        );
        // What follows the block is judged.
        assert_eq!(h.judge(&format!("{BLOCK}\n(variant x)")), None);
        assert_eq!(
            h.judge(&format!("{BLOCK}\nAnything else?")).as_deref(),
            Some("ends with a question")
        );
        // A block still being printed: not judged.
        assert_eq!(h.judge("Done.\n<<CONTROLLER_REQUEST>>\nShould I"), None);
    }

    #[test]
    fn phrases_are_configurable() {
        let h = Heuristics::new(&["let me know".into(), "  ".into(), "a.b (c)".into()]).unwrap();
        assert_eq!(h.judge("Done."), None);
        assert_eq!(
            h.judge("Let me\nKNOW if that works.").as_deref(),
            Some("says \"let me know\"")
        );
        assert_eq!(
            h.judge("see a.b (c) now").as_deref(),
            Some("says \"a.b (c)\"")
        );
        assert_eq!(h.judge("see axb (c) now"), None);
        let none = Heuristics::new(&[]).unwrap();
        assert_eq!(none.judge("Done."), None);
        assert!(none.judge("Done?").is_some());
    }

    #[test]
    fn a_reply_says_whether_its_start_is_on_screen() {
        let profiles = Profiles::builtin();
        for (profile, file) in [
            ("codex", "codex-04-idle-after-reply.txt"),
            ("claude-code", "yolo-claude-02-idle.txt"),
            ("gemini", "gemini-02-idle-after-reply.txt"),
        ] {
            let r = reply_on_screen(profiles.get(profile).unwrap(), &block_fixture(file)).unwrap();
            assert!(r.whole, "{profile} {file}: {r:?}");
        }
        // Codex pinned the input on the top row and the reply's bullet scrolled away under it.
        let r = reply_on_screen(
            profiles.get("codex").unwrap(),
            &block_fixture("codex-scrolled-off.txt"),
        )
        .unwrap();
        assert!(!r.whole, "{r:?}");
        assert!(r.text.starts_with("filler paragraph 22\n"), "{r:?}");
        // Claude's reply with its `● Done.` row scrolled off the top (the real screen, cut).
        let screen = block_fixture("yolo-claude-02-idle.txt");
        let at = screen
            .iter()
            .position(|r| r.starts_with("● Done."))
            .unwrap();
        let r = reply_on_screen(profiles.get("claude-code").unwrap(), &screen[at + 1..]).unwrap();
        assert!(!r.whole, "{r:?}");
        assert!(r.text.starts_with("<<CONTROLLER_REQUEST>>"), "{r:?}");
    }

    #[test]
    fn last_reply_of_codex() {
        let reply = reply_of("codex", &block_fixture("codex-04-idle-after-reply.txt"));
        assert_eq!(
            reply.as_deref(),
            Some(format!("Sure, here is my question.\n\n{BLOCK}").as_str())
        );
        let reply = reply_of("codex", &block_fixture("yolo-codex-02-idle.txt"));
        assert_eq!(reply.as_deref(), Some(format!("Done.\n\n{BLOCK}").as_str()));
        let reply = reply_of("codex", &block_fixture("codex-busy-tab-final.txt"));
        assert_eq!(reply.as_deref(), Some("reply B"));
        // A long reply: its bullet row scrolled off under the pinned `› long reply please`.
        let reply = reply_of("codex", &block_fixture("codex-scrolled-off.txt")).unwrap();
        assert!(reply.starts_with("filler paragraph 22\n"), "{reply:?}");
        assert!(reply.ends_with("filler paragraph 37\nfill"), "{reply:?}");
        // An error after the last input: no reply (not the one before it).
        let err = screen_fixture("codex_error_idle.txt");
        assert_eq!(reply_of("codex", &err), None);
        // A fresh session: nothing.
        let fresh = screen_fixture("codex_fresh_idle.txt");
        assert_eq!(reply_of("codex", &fresh), None);
    }

    #[test]
    fn last_reply_of_claude() {
        let reply = reply_of(
            "claude-code",
            &block_fixture("demo-claude-ask-3-idle-after.txt"),
        );
        assert_eq!(
            reply.as_deref(),
            Some(format!("Sure, here is my question.\n\n{BLOCK}").as_str())
        );
        let reply = reply_of("claude-code", &block_fixture("yolo-claude-02-idle.txt"));
        assert_eq!(reply.as_deref(), Some(format!("Done.\n\n{BLOCK}").as_str()));
        let reply = reply_of(
            "claude-code",
            &block_fixture("claude-busy-inject-final.txt"),
        );
        assert_eq!(reply.as_deref(), Some("reply B"));
        // `✻ Brewed for 25s` below the reply is not part of it (no "done" from it).
        let done = screen_fixture("claude_done.txt");
        assert_eq!(
            reply_of("claude-code", &done).as_deref(),
            Some("pong from mock")
        );
        assert_eq!(h().judge("pong from mock"), None);
        // An API error is a reply of its own (`● API Error: 400 …`).
        let err = screen_fixture("claude_error_idle.txt");
        assert_eq!(
            reply_of("claude-code", &err).as_deref(),
            Some("API Error: 400 mock error 400")
        );
        let fresh = screen_fixture("claude_fresh_idle.txt");
        assert_eq!(reply_of("claude-code", &fresh), None);
    }

    #[test]
    fn last_reply_of_gemini() {
        let reply = reply_of("gemini", &block_fixture("gemini-02-idle-after-reply.txt"));
        assert_eq!(
            reply.as_deref(),
            Some(format!("Sure, here is my question.\n\n{BLOCK}").as_str())
        );
        let reply = reply_of("gemini", &block_fixture("yolo-gemini-02-idle.txt"));
        assert_eq!(reply.as_deref(), Some(format!("Done.\n\n{BLOCK}").as_str()));
        let reply = reply_of("gemini", &block_fixture("demo-gemini-ask-3-idle-after.txt"));
        assert_eq!(
            reply.as_deref(),
            Some(format!("Sure, here is my question.\n\n{BLOCK}").as_str())
        );
        let err = screen_fixture("gemini_error_idle.txt");
        assert_eq!(reply_of("gemini", &err), None);
        let fresh = screen_fixture("gemini_idle.txt");
        assert_eq!(reply_of("gemini", &fresh), None);
    }

    #[test]
    fn real_last_replies_are_judged() {
        let h = h();
        let judge = |profile: &str, file: &str| {
            let reply = reply_of(profile, &block_fixture(file));
            reply.and_then(|r| h.judge(&r))
        };
        // "Done." above a request block: the block is the request, not the heuristic's.
        assert_eq!(judge("codex", "yolo-codex-02-idle.txt"), None);
        assert_eq!(judge("claude-code", "yolo-claude-02-idle.txt"), None);
        assert_eq!(judge("gemini", "yolo-gemini-02-idle.txt"), None);
        assert_eq!(judge("codex", "codex-busy-tab-final.txt"), None);
        // The same screen with the block left out.
        let mut screen = block_fixture("yolo-claude-02-idle.txt");
        screen.retain(|r| !r.contains("<<") && !r.contains("Should I proceed"));
        let reply = reply_of("claude-code", &screen);
        assert_eq!(reply.as_deref(), Some("Done."));
        assert_eq!(h.judge("Done.").as_deref(), Some("says \"done\""));
    }

    #[test]
    fn last_reply_of_a_shell_aider_and_python() {
        let shell = screen_fixture("shell_idle.txt");
        assert_eq!(
            reply_of("shell", &shell).as_deref(),
            Some("hello from the shell")
        );
        let root = screen_fixture("shell_root_idle.txt");
        assert_eq!(reply_of("shell", &root).as_deref(), Some("Linux"));
        let s = lines("$ make\ncc -o x x.c\nBuild finished. Run the tests?\n100%\n$ ");
        let reply = reply_of("shell", &s);
        assert_eq!(
            reply.as_deref(),
            Some("cc -o x x.c\nBuild finished. Run the tests?\n100%")
        );
        assert_eq!(
            h().judge(reply.as_deref().unwrap()).as_deref(),
            Some("says \"finished\"")
        );
        // No output after the command.
        assert_eq!(
            reply_of("shell", &lines("dev@box:~$ cd /tmp\ndev@box:/tmp$")),
            None
        );

        // An approval question under the reply: no reply to judge (the pane is asking).
        assert_eq!(
            reply_of("aider", &screen_fixture("aider_approval.txt")),
            None
        );
        let aider = lines("> MKad1 SLOW hello\npong from mock\nTokens: 2.4k sent, 3 received. Cost: $0.0060 message, $0.0060 session.\n────────\n> ");
        assert_eq!(reply_of("aider", &aider).as_deref(), Some("pong from mock"));

        let python = screen_fixture("python_idle.txt");
        assert_eq!(reply_of("python", &python).as_deref(), Some("hi"));
    }

    #[test]
    fn last_reply_needs_rules_and_survives_odd_screens() {
        let profiles = Profiles::builtin();
        let mut custom = profiles.clone();
        custom
            .from_yaml_str(
                "x.yaml",
                "name: plain\n---\nname: stops\nreply: { stop: ['^#'] }\n",
            )
            .unwrap();
        let screen = lines("# header\nsome output\nmore\n# footer");
        assert_eq!(last_reply(custom.get("plain").unwrap(), &screen), None);
        // Only stop rules: the rows between the last two stops.
        assert_eq!(
            last_reply(custom.get("stops").unwrap(), &screen).as_deref(),
            Some("some output\nmore")
        );
        for name in ["codex", "claude-code", "gemini", "aider", "python", "shell"] {
            let p = profiles.get(name).unwrap();
            assert!(p.reply.is_some(), "{name} has reply rules");
        }
        for p in profiles.iter() {
            for screen in [
                vec![],
                lines("\n\n"),
                lines("•\n●\n✦ \n› \n$"),
                lines("\x1b[1m• \x1b[0mhi\n\u{9b}"),
            ] {
                let _ = last_reply(p, &screen);
            }
        }
        // Escapes in the rows (capture-pane -e) are stripped.
        let r = reply_of("codex", &screen_fixture("codex_reply_idle.txt"));
        assert_eq!(
            r.as_deref(),
            Some(format!("Sure, here is my question.\n\n{BLOCK}").as_str())
        );
    }

    #[test]
    fn echoes_of_typed_text_are_recognised() {
        let typed = vec![
            "Please run the tests\nand report back.".to_owned(),
            "<<CONTROLLER_RESPONSE>>\nWORKER INSTRUCTIONS:\nProceed.\n<<CONTROLLER_RESPONSE_END>>"
                .to_owned(),
        ];
        assert!(is_echo("Please run the tests and\n  report back.", &typed));
        assert!(is_echo("WORKER INSTRUCTIONS: Proceed.", &typed));
        assert!(!is_echo("The tests pass. Should I commit?", &typed));
        assert!(!is_echo("  \n", &typed));
        assert!(!is_echo("anything", &[]));
    }

    proptest::proptest! {
        #[test]
        fn judge_and_last_reply_never_panic(
            rows in proptest::collection::vec("(?s).{0,30}", 0..30),
        ) {
            static H: std::sync::OnceLock<Heuristics> = std::sync::OnceLock::new();
            let _ = H.get_or_init(h).judge(&rows.join("\n"));
            let profiles = Profiles::builtin();
            for p in profiles.iter() {
                let _ = last_reply(p, &rows);
            }
            let _ = is_echo(&rows.join("\n"), &rows);
        }
    }
}
