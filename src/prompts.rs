//! The texts the bridge types into agents: the worker's, the controller's and the chat agents'
//! start-up prompts (sent by `up`) and the wrapper around each request typed into a controller
//! pane.
//!
//! Each is built in (`prompts/*.txt`, through `include_str!`) and can be replaced by a file of
//! the same name in `<state dir>/prompts/`. This module owns loading them and filling in the
//! request wrapper; it never types anything and never talks to tmux.
//!
//! # What the texts must keep true
//!
//! - No leading `!` or `/` (a shell escape or a slash command in most agents).
//! - The start-up prompts are typed by `up`, not by the daemon, so the daemon does not know them
//!   as its own text: when an agent echoes its prompt, a complete block in it would be taken for
//!   a real request or answer. They therefore name the markers inside sentences, each marker
//!   directly followed by punctuation, so that no row of the echo can ever be a marker row, however
//!   the agent wraps it (a test checks every width). The request wrapper is typed by the daemon,
//!   which ignores echoes of what it typed: it holds the request as a real block and may show an
//!   example response block.

use std::path::{Path, PathBuf};

/// Which text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromptKind {
    /// `controller_prompt.txt`: teaches a controller agent its role and the response format.
    ControllerPrompt,
    /// `controller_request.txt`: the wrapper typed into the controller pane for each request,
    /// with the placeholders `{id}`, `{worker}` and `{request}`.
    ControllerRequest,
    /// `worker_prompt.txt`: teaches a worker agent to ask with request blocks.
    WorkerPrompt,
    /// `chat_agent_prompt.txt`: teaches an agent of the group chat the message block and the
    /// MCP tools, with the placeholders `{name}` (its own) and `{agents}` (the others').
    ChatAgentPrompt,
}

impl PromptKind {
    /// Every kind.
    pub const ALL: [PromptKind; 4] = [
        PromptKind::ControllerPrompt,
        PromptKind::ControllerRequest,
        PromptKind::WorkerPrompt,
        PromptKind::ChatAgentPrompt,
    ];

    /// The file name, built in and in `<state dir>/prompts/`.
    pub fn file_name(self) -> &'static str {
        match self {
            PromptKind::ControllerPrompt => "controller_prompt.txt",
            PromptKind::ControllerRequest => "controller_request.txt",
            PromptKind::WorkerPrompt => "worker_prompt.txt",
            PromptKind::ChatAgentPrompt => "chat_agent_prompt.txt",
        }
    }

    /// The built-in text.
    pub fn builtin(self) -> &'static str {
        match self {
            PromptKind::ControllerPrompt => include_str!("../prompts/controller_prompt.txt"),
            PromptKind::ControllerRequest => include_str!("../prompts/controller_request.txt"),
            PromptKind::WorkerPrompt => include_str!("../prompts/worker_prompt.txt"),
            PromptKind::ChatAgentPrompt => include_str!("../prompts/chat_agent_prompt.txt"),
        }
    }
}

/// Why an override file cannot be used. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("cannot read the prompt file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the prompt file {} is not UTF-8 text", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("the prompt file {} is empty: write the text in it, or delete it to use the built-in one", path.display())]
    Empty { path: PathBuf },
    #[error("the prompt file {} has no {{request}} placeholder: the worker's request would never reach the controller", path.display())]
    NoRequestPlaceholder { path: PathBuf },
}

/// Where the override of `kind` lives: `<state dir>/prompts/<file name>`.
pub fn override_path(kind: PromptKind, state_dir: &Path) -> PathBuf {
    state_dir.join("prompts").join(kind.file_name())
}

/// The text of `kind`: the override in `<state dir>/prompts/` when that file exists, else the
/// built-in one. An override that cannot be read, is not UTF-8, is empty, or (for the request
/// wrapper) lacks `{request}` is an error naming the file, never silently replaced.
pub fn load(kind: PromptKind, state_dir: &Path) -> Result<String, PromptError> {
    let path = override_path(kind, state_dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(kind.builtin().into()),
        Err(source) => return Err(PromptError::Read { path, source }),
    };
    let text = String::from_utf8(bytes).map_err(|_| PromptError::NotUtf8 { path: path.clone() })?;
    if text.trim().is_empty() {
        return Err(PromptError::Empty { path });
    }
    if kind == PromptKind::ControllerRequest && !text.contains("{request}") {
        return Err(PromptError::NoRequestPlaceholder { path });
    }
    Ok(text)
}

/// Fills in the request wrapper: `{id}`, `{worker}` and `{request}` are replaced in one pass, so
/// placeholders inside the values (a request that itself holds `{id}`) stay as they are. Other
/// braces are left alone.
pub fn render_request(template: &str, id: &str, worker: &str, request: &str) -> String {
    fill(
        template,
        &[("{id}", id), ("{worker}", worker), ("{request}", request)],
    )
}

/// Fills in a chat agent's start-up prompt: `{name}` is the agent's name, `{agents}` the other
/// agents' names (`none yet` when there are none), in one pass like [`render_request`].
pub fn render_chat_prompt(template: &str, name: &str, others: &[&str]) -> String {
    let agents = if others.is_empty() {
        "none yet".to_string()
    } else {
        others.join(", ")
    };
    fill(template, &[("{name}", name), ("{agents}", &agents)])
}

/// Replaces each placeholder by its value, in one pass over the template.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        match values.iter().find(|(p, _)| tail.starts_with(p)) {
            Some((placeholder, value)) => {
                out.push_str(value);
                rest = &tail[placeholder.len()..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::blocks::{find_blocks, BlockKind, Limits, REQUEST_END, REQUEST_START};

    #[test]
    fn builtins_are_plain_and_safe_to_type() {
        for kind in PromptKind::ALL {
            let text = kind.builtin();
            assert!(!text.trim().is_empty(), "{kind:?}");
            let first = text.trim_start();
            assert!(
                !first.starts_with('!') && !first.starts_with('/'),
                "{kind:?} starts with ! or /"
            );
            // Nothing the keystroke writer would strip.
            assert_eq!(crate::inject::sanitize(text), text.trim_end(), "{kind:?}");
        }
    }

    /// Word wrap at `width`, as an agent's TUI echoes input (continuation rows indented).
    fn word_wrap(text: &str, width: usize) -> Vec<String> {
        let mut rows = Vec::new();
        for line in text.lines() {
            let mut row = String::new();
            for word in line.split(' ') {
                let len = row.chars().count();
                if len > 0 && len + 1 + word.chars().count() > width {
                    rows.push(std::mem::take(&mut row));
                    row.push_str("  ");
                }
                if !row.trim().is_empty() {
                    row.push(' ');
                }
                row.push_str(word);
            }
            rows.push(row);
        }
        rows
    }

    /// Character wrap at `width`, as a terminal wraps a long line.
    fn char_wrap(text: &str, width: usize) -> Vec<String> {
        let mut rows = Vec::new();
        for line in text.lines() {
            let chars: Vec<char> = line.chars().collect();
            if chars.is_empty() {
                rows.push(String::new());
            }
            for chunk in chars.chunks(width) {
                rows.push(chunk.iter().collect());
            }
        }
        rows
    }

    #[test]
    fn start_up_prompts_hold_no_block_at_any_width() {
        // `up` types these; the daemon does not know them, so their echo must never read as a
        // request or a response, whatever the agent's wrap, gutter or echo glyph.
        let chat = render_chat_prompt(
            PromptKind::ChatAgentPrompt.builtin(),
            "agent1",
            &["agent2", "claude-code.2"],
        );
        for (kind, text) in [
            (PromptKind::WorkerPrompt, PromptKind::WorkerPrompt.builtin()),
            (
                PromptKind::ControllerPrompt,
                PromptKind::ControllerPrompt.builtin(),
            ),
            (PromptKind::ChatAgentPrompt, chat.as_str()),
        ] {
            for width in 20..=220 {
                for rows in [word_wrap(text, width), char_wrap(text, width)] {
                    for prefix in ["", "› ", "  ", "• "] {
                        let rows: Vec<String> =
                            rows.iter().map(|r| format!("{prefix}{r}")).collect();
                        let scan = find_blocks(&rows, &Limits::default());
                        assert!(
                            scan.blocks.is_empty(),
                            "{kind:?} at width {width}: {:?}",
                            scan.blocks
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn start_up_prompts_name_the_markers_they_teach() {
        let worker = PromptKind::WorkerPrompt.builtin();
        assert!(worker.contains(REQUEST_START) && worker.contains(REQUEST_END));
        let controller = PromptKind::ControllerPrompt.builtin();
        for s in [
            "<<CONTROLLER_RESPONSE>>",
            "<<CONTROLLER_RESPONSE_END>>",
            "WORKER INSTRUCTIONS:",
            "NOTES:",
        ] {
            assert!(controller.contains(s), "{s}");
        }
    }

    #[test]
    fn the_chat_prompt_names_the_agent_the_others_the_block_and_the_tools() {
        let text = render_chat_prompt(
            PromptKind::ChatAgentPrompt.builtin(),
            "agent1",
            &["agent2", "agent3"],
        );
        assert!(
            !text.contains("{name}") && !text.contains("{agents}"),
            "{text}"
        );
        assert!(text.starts_with("You are agent1,"), "{text}");
        assert!(text.contains("The other agents: agent2, agent3."), "{text}");
        for s in [
            "<<MESSAGE to=NAME>>",
            crate::detect::blocks::MESSAGE_END,
            "to=all",
            "[from NAME]",
            "send_message",
            "list_agents",
            "read_messages",
        ] {
            assert!(text.contains(s), "{s}");
        }
        let alone = render_chat_prompt(PromptKind::ChatAgentPrompt.builtin(), "solo", &[]);
        assert!(alone.contains("The other agents: none yet."), "{alone}");
    }

    #[test]
    fn the_rendered_request_is_one_block_with_the_request_in_it() {
        let text = render_request(
            PromptKind::ControllerRequest.builtin(),
            "20261121-000748-7fe6",
            "worker",
            "Should I delete the old parser?\nIt has no callers left.",
        );
        let rows: Vec<String> = text.lines().map(str::to_string).collect();
        let scan = find_blocks(&rows, &Limits::default());
        let requests: Vec<_> = scan
            .blocks
            .iter()
            .filter(|b| b.kind == BlockKind::Request)
            .collect();
        assert_eq!(requests.len(), 1, "{scan:?}");
        assert_eq!(
            requests[0].body,
            "Should I delete the old parser?\nIt has no callers left."
        );
        assert!(text.contains("20261121-000748-7fe6") && text.contains("(worker)"));
        // The example answer is a response block whose instructions parse.
        let response = scan
            .blocks
            .iter()
            .find(|b| b.kind == BlockKind::Response)
            .expect("an example response");
        let parsed = crate::detect::blocks::parse_response(&response.body);
        assert!(!parsed.instructions.is_empty() && parsed.notes.is_some());
    }

    #[test]
    fn placeholders_are_replaced_once_in_one_pass() {
        let t = "[{id}] {worker}: {request} {id} {unknown} { {id";
        assert_eq!(
            render_request(t, "7", "w", "use {id} and {worker}"),
            "[7] w: use {id} and {worker} 7 {unknown} { {id"
        );
        assert_eq!(render_request("", "a", "b", "c"), "");
        assert_eq!(render_request("{request}", "a", "b", "é{"), "é{");
        assert_eq!(render_request("ü{id}ü", "x", "b", "c"), "üxü");
    }

    #[test]
    fn overrides_beat_the_builtins_and_bad_ones_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // No prompts/ folder: the built-in texts.
        for kind in PromptKind::ALL {
            assert_eq!(load(kind, dir.path()).unwrap(), kind.builtin());
        }
        std::fs::create_dir(dir.path().join("prompts")).unwrap();
        let worker = override_path(PromptKind::WorkerPrompt, dir.path());
        std::fs::write(&worker, "Ask me with blocks.\n").unwrap();
        assert_eq!(
            load(PromptKind::WorkerPrompt, dir.path()).unwrap(),
            "Ask me with blocks.\n"
        );
        assert_eq!(
            load(PromptKind::ControllerPrompt, dir.path()).unwrap(),
            PromptKind::ControllerPrompt.builtin()
        );

        std::fs::write(&worker, b"caf\xe9").unwrap();
        let e = load(PromptKind::WorkerPrompt, dir.path()).unwrap_err();
        assert!(matches!(e, PromptError::NotUtf8 { .. }));
        assert!(e.to_string().contains("worker_prompt.txt"), "{e}");

        std::fs::write(&worker, " \n").unwrap();
        let e = load(PromptKind::WorkerPrompt, dir.path()).unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");

        let request = override_path(PromptKind::ControllerRequest, dir.path());
        std::fs::write(&request, "Request {id}: answer it.").unwrap();
        let e = load(PromptKind::ControllerRequest, dir.path()).unwrap_err();
        assert!(e.to_string().contains("{request}"), "{e}");
        std::fs::write(&request, "From {worker}:\n{request}").unwrap();
        assert_eq!(
            load(PromptKind::ControllerRequest, dir.path()).unwrap(),
            "From {worker}:\n{request}"
        );

        // A directory where the file should be: unreadable, named.
        let controller = override_path(PromptKind::ControllerPrompt, dir.path());
        std::fs::create_dir(&controller).unwrap();
        let e = load(PromptKind::ControllerPrompt, dir.path()).unwrap_err();
        assert!(matches!(e, PromptError::Read { .. }));
        assert!(e.to_string().contains("controller_prompt.txt"), "{e}");
    }
}
