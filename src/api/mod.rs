//! The daemon API: JSON-RPC 2.0 over a unix socket, `<state dir>/macs.sock` (mode 0600), one
//! JSON object per line. Clients — the person's `macs-bridge chat`, an agent's MCP server,
//! custom tools — join the group chat and look at the agents through it.
//!
//! # Layout
//! - [`protocol`]: the wire format without I/O: envelopes, error codes, method and event names,
//!   and the params and results of every method (the table of methods is there).
//! - [`socket`]: the socket file: created 0600, a stale one replaced, a live one refused.
//! - [`server`]: the connections and the subscriptions. It runs no method itself: each call
//!   goes to the core as an [`server::ApiMsg`] and the core's answer is written back.
//! - [`client`]: [`client::ApiClient`], the tokio client used by `chat` and the MCP server.
//! - [`frame`]: the bounded line reader both sides use.
//!
//! Nothing here may block the core: the core hands notifications to connections with
//! `try_send` only, and a connection that cannot keep up loses its subscription, not the core's
//! time.

pub mod client;
pub mod frame;
pub mod protocol;
pub mod server;
pub mod socket;

use std::path::{Path, PathBuf};

pub use client::{ApiClient, Caller};
pub use protocol::{Notification, RpcError, METHODS};
pub use server::{serve, serve_with, ApiMsg, Call, ClientInfo, Listener, ServeOptions};

/// The socket of the daemon whose state dir is `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(protocol::SOCKET_NAME)
}

/// What can go wrong at the API's boundary (binding, connecting, calling).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "no macs-bridge daemon at {} (is it running? start it with `macs-bridge --session …`): {source}",
        path.display()
    )]
    NotRunning {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another macs-bridge daemon is already listening on {}", path.display())]
    InUse { path: PathBuf },
    #[error(
        "{} exists and is not a socket: the API socket cannot go there (move the file away)",
        path.display()
    )]
    NotASocket { path: PathBuf },
    #[error(
        "the API socket path {} is too long for a unix socket (about 100 bytes at most): use a shorter --state-dir",
        path.display()
    )]
    PathTooLong { path: PathBuf },
    #[error("cannot {action} {}: {source}", path.display())]
    Socket {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The daemon answered the call with an error.
    #[error("{0}")]
    Rpc(RpcError),
    #[error("the daemon closed the connection{}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    Closed { reason: String },
    #[error("the request is too large: {bytes} bytes (the daemon takes at most {max})")]
    TooLarge { bytes: usize, max: usize },
    #[error("unexpected answer from the daemon: {0}")]
    Protocol(String),
}

impl ApiError {
    /// The JSON-RPC error, when the daemon answered with one.
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            ApiError::Rpc(e) => Some(e),
            _ => None,
        }
    }
}
