//! One-shot tmux calls by argv (`tmux -L NAME has-session -t =macs`): for the few things that
//! happen before or without a control client — the version check, whether a session exists,
//! creating or killing one. Everything that runs while attached goes through [`super::client`].
//!
//! Never uses a shell: arguments go to tmux as they are.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;

/// Which tmux server to talk to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Socket {
    /// The user's default server (`$TMUX` or the default socket).
    #[default]
    Default,
    /// `-L NAME`: a named socket in tmux's socket directory.
    Name(String),
    /// `-S PATH`: a socket at a path.
    Path(PathBuf),
}

impl Socket {
    /// Reads `TMUX_SOCKET`-style text: a value with a `/` is a path, otherwise a name.
    pub fn from_env_value(value: &str) -> Socket {
        if value.is_empty() {
            Socket::Default
        } else if value.contains('/') {
            Socket::Path(PathBuf::from(value))
        } else {
            Socket::Name(value.to_string())
        }
    }

    /// The flags that select this server, to put right after `tmux`.
    pub fn args(&self) -> Vec<OsString> {
        match self {
            Socket::Default => Vec::new(),
            Socket::Name(n) => vec!["-L".into(), n.into()],
            Socket::Path(p) => vec!["-S".into(), p.into()],
        }
    }
}

/// Errors of one-shot tmux calls.
#[derive(Debug, thiserror::Error)]
pub enum TmuxError {
    #[error("tmux was not found (looked for {bin:?} on PATH); install tmux 3.2 or newer, e.g. `apt-get install tmux` or `brew install tmux`")]
    NotFound { bin: PathBuf },
    #[error("could not run {bin:?}: {source}")]
    Spawn {
        bin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("tmux {version} is too old: macs-bridge needs tmux 3.2 or newer (for pause-after flow control and control-mode subscriptions)")]
    TooOld { version: String },
    #[error("`tmux {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
}

/// A tmux server reached by argv calls.
#[derive(Debug, Clone)]
pub struct Tmux {
    pub bin: PathBuf,
    pub socket: Socket,
}

/// A tmux version as `tmux -V` prints it (`tmux 3.3a`, `tmux next-3.6`, `tmux 3.2-rc2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub text: String,
    /// (major, minor) when they could be read.
    pub number: Option<(u32, u32)>,
}

impl Version {
    /// Parses the output of `tmux -V`.
    pub fn parse(output: &str) -> Version {
        let text = output.trim().to_string();
        let word = text.split_whitespace().nth(1).unwrap_or("");
        let word = word.strip_prefix("next-").unwrap_or(word);
        let mut parts = word.split('.');
        let major = parts.next().and_then(|m| m.parse::<u32>().ok());
        let minor = parts.next().map(|m| {
            m.chars()
                .take_while(|c| c.is_ascii_digit())
                .collect::<String>()
        });
        let number = match (major, minor) {
            (Some(ma), Some(mi)) => mi.parse::<u32>().ok().map(|mi| (ma, mi)),
            _ => None,
        };
        Version { text, number }
    }

    /// True when this version is known to be older than 3.2. Unreadable versions (`tmux master`)
    /// are given the benefit of the doubt.
    pub fn is_too_old(&self) -> bool {
        matches!(self.number, Some(n) if n < (3, 2))
    }
}

impl Tmux {
    pub fn new(socket: Socket) -> Tmux {
        Tmux {
            bin: PathBuf::from("tmux"),
            socket,
        }
    }

    /// A `tokio::process::Command` for `tmux <socket flags> ARGS…`, with no standard input.
    pub fn command<I, S>(&self, args: I) -> tokio::process::Command
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(self.socket.args());
        cmd.args(args.into_iter().map(Into::into));
        cmd.stdin(Stdio::null());
        cmd.kill_on_drop(true);
        cmd
    }

    fn spawn_error(&self, e: std::io::Error) -> TmuxError {
        if e.kind() == std::io::ErrorKind::NotFound {
            TmuxError::NotFound {
                bin: self.bin.clone(),
            }
        } else {
            TmuxError::Spawn {
                bin: self.bin.clone(),
                source: e,
            }
        }
    }

    /// Runs `tmux ARGS…` and returns its standard output; a non-zero exit is an error carrying
    /// tmux's own message.
    pub async fn run<I, S>(&self, args: I) -> Result<String, TmuxError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let out = self
            .command(args.iter().cloned())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|e| self.spawn_error(e))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(TmuxError::Failed {
                args: args
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    /// `tmux -V`, refusing versions older than 3.2.
    pub async fn check_version(&self) -> Result<Version, TmuxError> {
        let out = tokio::process::Command::new(&self.bin)
            .arg("-V")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| self.spawn_error(e))?;
        let version = Version::parse(&String::from_utf8_lossy(&out.stdout));
        if version.is_too_old() {
            return Err(TmuxError::TooOld {
                version: version.text,
            });
        }
        Ok(version)
    }

    /// Whether a session of exactly this name exists on the server (false also when no
    /// server runs).
    pub async fn has_session(&self, name: &str) -> Result<bool, TmuxError> {
        let status = self
            .command(["has-session", "-t", &format!("={name}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .map_err(|e| self.spawn_error(e))?;
        Ok(status.success())
    }

    /// Kills the whole server of this socket (for private test servers and `down --kill`).
    pub async fn kill_server(&self) -> Result<(), TmuxError> {
        self.run(["kill-server"]).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        let v = Version::parse("tmux 3.3a\n");
        assert_eq!(v.number, Some((3, 3)));
        assert!(!v.is_too_old());
        assert!(Version::parse("tmux 3.1c").is_too_old());
        assert!(Version::parse("tmux 2.9").is_too_old());
        assert!(!Version::parse("tmux 3.2").is_too_old());
        assert_eq!(Version::parse("tmux next-3.6").number, Some((3, 6)));
        assert_eq!(Version::parse("tmux 3.2-rc2").number, Some((3, 2)));
        assert!(!Version::parse("tmux master").is_too_old());
        assert!(!Version::parse("").is_too_old());
    }

    #[test]
    fn socket_from_env() {
        assert_eq!(Socket::from_env_value(""), Socket::Default);
        assert_eq!(Socket::from_env_value("x"), Socket::Name("x".into()));
        assert_eq!(
            Socket::from_env_value("/tmp/s"),
            Socket::Path("/tmp/s".into())
        );
    }
}
