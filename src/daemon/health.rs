//! Is a daemon running for a session, and how is it doing? Asked from outside (`macs-bridge
//! info`): the session's claim (`@macs-daemon`, see `claim`) names the daemon's pid and state
//! dir, and the daemon's socket answers `daemon.info`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api::protocol::{method, DaemonInfoResult, Empty};
use crate::api::ApiClient;
use crate::tmux::oneshot::Tmux;

use super::claim::{self, CLAIM_OPTION};

/// How long the daemon gets to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The session's claim as tmux holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Claim {
    pub pid: u32,
    pub state_dir: String,
    /// A live macs-bridge process has that pid.
    pub alive: bool,
}

/// What was found.
#[derive(Debug, serde::Serialize)]
pub struct Health {
    pub session: String,
    /// The state dir whose socket was asked.
    pub state_dir: PathBuf,
    /// The session exists on the tmux server (`None`: tmux could not be asked).
    pub session_exists: Option<bool>,
    pub claim: Option<Claim>,
    /// The daemon's own answer, when its socket answered.
    pub info: Option<DaemonInfoResult>,
    /// Why there is no answer.
    pub problem: Option<String>,
}

impl Health {
    /// A daemon answered.
    pub fn running(&self) -> bool {
        self.info.is_some()
    }
}

/// Looks for the daemon of `session`: its claim in tmux, then its socket — in the claim's state
/// dir when a live daemon holds the claim and no state dir was asked for (`state_dir: None`),
/// else in `state_dir` (or `default_dir`).
pub async fn check(
    tmux: &Tmux,
    session: &str,
    state_dir: Option<&Path>,
    default_dir: &Path,
) -> Health {
    let (session_exists, claim) = read_claim(tmux, session).await;
    let dir = match (&claim, state_dir) {
        (_, Some(d)) => d.to_path_buf(),
        (Some(c), None) if c.alive => PathBuf::from(&c.state_dir),
        _ => default_dir.to_path_buf(),
    };
    let (info, problem) = match ask(&dir).await {
        Ok(info) => (Some(info), None),
        Err(e) => (None, Some(e)),
    };
    Health {
        session: session.to_string(),
        state_dir: dir,
        session_exists,
        claim,
        info,
        problem,
    }
}

async fn read_claim(tmux: &Tmux, session: &str) -> (Option<bool>, Option<Claim>) {
    if tmux.check_version().await.is_err() {
        return (None, None);
    }
    match tmux.has_session(session).await {
        Ok(true) => {}
        Ok(false) => return (Some(false), None),
        Err(_) => return (None, None),
    }
    let value = tmux
        .run([
            "show-options",
            "-v",
            "-q",
            "-t",
            &format!("={session}:"),
            CLAIM_OPTION,
        ])
        .await
        .unwrap_or_default();
    let claim = claim::parse(&value).map(|(pid, state_dir)| Claim {
        pid,
        state_dir,
        alive: claim::alive(pid),
    });
    (Some(true), claim)
}

async fn ask(dir: &Path) -> Result<DaemonInfoResult, String> {
    let socket = crate::api::socket_path(dir);
    let call = async {
        let client = ApiClient::connect(&socket).await?;
        client
            .call_as::<_, DaemonInfoResult>(method::DAEMON_INFO, &Empty {})
            .await
    };
    match tokio::time::timeout(ANSWER_TIMEOUT, call).await {
        Ok(Ok(info)) => Ok(info),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "{} did not answer within {} s",
            socket.display(),
            ANSWER_TIMEOUT.as_secs()
        )),
    }
}
