//! How an agent is started in its pane: the words of its command line, what it needs so that it
//! ends with its pane, and the arguments tmux gets. Pure: no tmux, no processes.
//!
//! - A command line (`--worker "codex --model o3"`) is split into words the way a POSIX shell
//!   would (quotes, backslashes), and never handed to a shell as text: tmux gets the words as
//!   separate arguments and runs the program directly. A single word would be run by tmux through
//!   the user's shell as a line, so it goes as `/bin/sh -c 'exec "$0"' WORD`, the word being an
//!   argument, not shell text.
//! - `codex` gets `--no-daemon` (unless given), so that it does not leave a `codex app-server`
//!   behind when its pane closes; `CODEX_HOME` from `MACS_CODEX_HOME` when set; and the words of
//!   `MACS_CODEX_ARGS` appended.
//! - `gemini` gets `GEMINI_CLI_NO_RELAUNCH=true`, so that it does not outlive its pane.
//!
//! The program is recognised by the file name of the first word (`/opt/bin/codex` is codex;
//! `npx codex` is not).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// What to run in a pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Variables set for it (`tmux … -e NAME=VALUE`).
    pub env: Vec<(String, String)>,
}

/// Why a command line cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{flag} {line:?}: {reason}")]
    BadCommand {
        flag: String,
        line: String,
        reason: String,
    },
    #[error("MACS_CODEX_ARGS {value:?}: {reason}")]
    BadCodexArgs { value: String, reason: String },
    #[error("{what}: `{program}` was not found{where_}; install it, or name another agent CLI with {flag} CMD")]
    NotFound {
        what: String,
        program: String,
        where_: String,
        flag: String,
    },
}

impl Launch {
    /// Reads a command line given with `flag` (for messages). `env` gives the environment
    /// (`MACS_CODEX_HOME`, `MACS_CODEX_ARGS`).
    pub fn parse(
        flag: &str,
        line: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Launch, LaunchError> {
        let bad = |reason: &str| LaunchError::BadCommand {
            flag: flag.to_string(),
            line: line.to_string(),
            reason: reason.to_string(),
        };
        let mut argv = shell_words::split(line).map_err(|e| bad(&e.to_string()))?;
        if argv.is_empty() || argv[0].is_empty() {
            return Err(bad("no command given"));
        }
        if argv.iter().any(|w| w.contains('\0')) {
            return Err(bad("a word holds a NUL character"));
        }
        let mut launch_env = Vec::new();
        match program_name(&argv[0]) {
            "codex" => {
                if !argv.iter().any(|a| a == "--no-daemon") {
                    argv.insert(1, "--no-daemon".into());
                }
                if let Some(home) = env("MACS_CODEX_HOME").filter(|v| !v.is_empty()) {
                    launch_env.push(("CODEX_HOME".into(), home));
                }
                if let Some(extra) = env("MACS_CODEX_ARGS").filter(|v| !v.trim().is_empty()) {
                    let words =
                        shell_words::split(&extra).map_err(|e| LaunchError::BadCodexArgs {
                            value: extra.clone(),
                            reason: e.to_string(),
                        })?;
                    argv.extend(words);
                }
            }
            "gemini" => launch_env.push(("GEMINI_CLI_NO_RELAUNCH".into(), "true".into())),
            _ => {}
        }
        Ok(Launch {
            argv,
            env: launch_env,
        })
    }

    /// The program's file name (`codex` for `/usr/local/bin/codex`).
    pub fn program(&self) -> &str {
        program_name(self.argv.first().map(String::as_str).unwrap_or(""))
    }

    /// The tail of a tmux `new-session`/`split-window`/`respawn-pane` call: `-e NAME=VALUE`…,
    /// `--`, then the words to run.
    pub fn tmux_args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &self.env {
            out.push("-e".into());
            out.push(format!("{k}={v}"));
        }
        out.push("--".into());
        if self.argv.len() == 1 {
            // tmux hands a lone word to the shell as a command line: pass it as an argument.
            out.extend([
                "/bin/sh".into(),
                "-c".into(),
                "exec \"$0\"".into(),
                self.argv[0].clone(),
            ]);
        } else {
            out.extend(self.argv.iter().cloned());
        }
        out
    }

    /// The command as a person would type it (quoted for a POSIX shell), for messages.
    pub fn display(&self) -> String {
        let mut words: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_word(v)))
            .collect();
        words.extend(self.argv.iter().map(|w| shell_word(w)));
        words.join(" ")
    }

    /// Checks that the program can be run: a word with a `/` must be an executable file, any
    /// other must be found on `path` (the `PATH` value). `what` and `flag` name it in the error.
    pub fn check_program(
        &self,
        what: &str,
        flag: &str,
        path: Option<&OsStr>,
    ) -> Result<PathBuf, LaunchError> {
        let word = self.argv.first().map(String::as_str).unwrap_or("");
        find_program(word, path).ok_or_else(|| LaunchError::NotFound {
            what: what.to_string(),
            program: word.to_string(),
            where_: if word.contains('/') {
                " (or is not an executable file)".into()
            } else {
                " on PATH".into()
            },
            flag: flag.to_string(),
        })
    }
}

/// A word as a POSIX shell would need it written: as it is when that is safe, else quoted.
pub fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        w.to_string()
    } else {
        shell_words::quote(w).into_owned()
    }
}

/// Words as a POSIX shell line (for messages a person may copy).
pub fn shell_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_word(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn program_name(word: &str) -> &str {
    Path::new(word)
        .file_name()
        .and_then(OsStr::to_str)
        .unwrap_or(word)
}

/// Where `word` would be run from: itself when it holds a `/`, else the first executable file
/// of that name in the directories of `path`.
pub fn find_program(word: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    if word.is_empty() {
        return None;
    }
    if word.contains('/') {
        let p = PathBuf::from(word);
        return is_executable(&p).then_some(p);
    }
    std::env::split_paths(path?)
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                PathBuf::from(".").join(word)
            } else {
                dir.join(word)
            }
        })
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn codex_gets_no_daemon_home_and_extra_args() {
        let l = Launch::parse("--worker", "codex", &env_of(&[])).unwrap();
        assert_eq!(l.argv, ["codex", "--no-daemon"]);
        assert!(l.env.is_empty());

        let env = env_of(&[
            ("MACS_CODEX_HOME", "/home/me/.codex-team"),
            ("MACS_CODEX_ARGS", "--model 'o3 mini' -c x=1"),
        ]);
        let l = Launch::parse("--worker", "/opt/bin/codex --full-auto", &env).unwrap();
        assert_eq!(
            l.argv,
            [
                "/opt/bin/codex",
                "--no-daemon",
                "--full-auto",
                "--model",
                "o3 mini",
                "-c",
                "x=1"
            ]
        );
        assert_eq!(
            l.env,
            [("CODEX_HOME".to_string(), "/home/me/.codex-team".to_string())]
        );
        // Given already: not twice.
        let l = Launch::parse("--worker", "codex --no-daemon", &env_of(&[])).unwrap();
        assert_eq!(l.argv, ["codex", "--no-daemon"]);
        // Empty variables count as unset.
        let l = Launch::parse(
            "--worker",
            "codex",
            &env_of(&[("MACS_CODEX_HOME", ""), ("MACS_CODEX_ARGS", "  ")]),
        )
        .unwrap();
        assert_eq!(l.argv, ["codex", "--no-daemon"]);
        assert!(l.env.is_empty());
        // Other programs get none of it.
        let l = Launch::parse("--worker", "claude --verbose", &env).unwrap();
        assert_eq!(l.argv, ["claude", "--verbose"]);
        assert!(l.env.is_empty());
    }

    #[test]
    fn gemini_does_not_relaunch() {
        let l = Launch::parse("--controller", "gemini -m flash", &env_of(&[])).unwrap();
        assert_eq!(l.argv, ["gemini", "-m", "flash"]);
        assert_eq!(
            l.env,
            [("GEMINI_CLI_NO_RELAUNCH".to_string(), "true".to_string())]
        );
        assert_eq!(
            l.tmux_args(),
            [
                "-e",
                "GEMINI_CLI_NO_RELAUNCH=true",
                "--",
                "gemini",
                "-m",
                "flash"
            ]
        );
    }

    #[test]
    fn words_go_to_tmux_as_arguments_never_as_shell_text() {
        let l = Launch::parse(
            "--worker",
            r#"my-agent --say "it's $HOME; rm -rf ~" -- 'a b'"#,
            &env_of(&[]),
        )
        .unwrap();
        assert_eq!(
            l.argv,
            ["my-agent", "--say", "it's $HOME; rm -rf ~", "--", "a b"]
        );
        assert_eq!(l.tmux_args()[0], "--");
        assert_eq!(&l.tmux_args()[1..], l.argv.as_slice());
        // A lone word is an argument of a fixed shell line.
        let l = Launch::parse("--worker", "'my agent;x'", &env_of(&[])).unwrap();
        assert_eq!(
            l.tmux_args(),
            ["--", "/bin/sh", "-c", "exec \"$0\"", "my agent;x"]
        );
        assert_eq!(l.display(), "'my agent;x'");
    }

    #[test]
    fn bad_command_lines_are_refused_with_the_flag() {
        for line in ["", "   ", "codex 'unclosed", "''"] {
            let e = Launch::parse("--worker", line, &env_of(&[])).unwrap_err();
            assert!(e.to_string().starts_with("--worker"), "{e}");
        }
        let e = Launch::parse(
            "--worker",
            "codex",
            &env_of(&[("MACS_CODEX_ARGS", "--x \"y")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("MACS_CODEX_ARGS"), "{e}");
    }

    #[test]
    fn programs_are_found_on_path_or_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("agent");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        let plain = dir.path().join("notes");
        std::fs::write(&plain, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths(["/nonexistent", dir.path().to_str().unwrap()]).unwrap();
        assert_eq!(find_program("agent", Some(&path)), Some(exe.clone()));
        assert_eq!(find_program("notes", Some(&path)), None);
        assert_eq!(find_program("absent", Some(&path)), None);
        assert_eq!(find_program("agent", None), None);
        assert_eq!(find_program(exe.to_str().unwrap(), None), Some(exe.clone()));
        assert_eq!(find_program(plain.to_str().unwrap(), None), None);

        let l = Launch::parse("--worker", "codex", &env_of(&[])).unwrap();
        let e = l
            .check_program("the worker", "--worker", Some(&path))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the worker: `codex` was not found on PATH; install it, or name another agent CLI with --worker CMD"
        );
    }
}
