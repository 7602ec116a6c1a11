//! The MCP server's line to the daemon: the API client ([`crate::api::ApiClient`]) on the unix
//! socket `<state dir>/macs.sock`, opened at the first tool call, introduced with
//! `hello {name}`, and kept for the calls after it (the daemon lets one client at a time speak
//! under a name). When the daemon goes away the line is dropped and the next call connects
//! again, so a restarted daemon is simply found again.
//!
//! It owns the time limits: connecting never waits more than [`CONNECT_TIMEOUT`], and every call
//! has its own deadline, so a daemon that is gone, stale or stuck is an error the agent can read,
//! never a hang. It never sends a call twice: a message sent twice would be typed twice.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::api::protocol::{code, method};
use crate::api::{ApiClient, ApiError, Caller};

/// How long connecting to the socket may take (a local socket answers at once or never).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the daemon may take to answer `hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong talking to the daemon. Each message is written for the agent that called
/// the tool: it says what happened and, where it can, what to do.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(
        "the macs-bridge daemon is not running (no one answers on {}); start it with `macs-bridge up`, or `macs-bridge --state-dir {}` in the tmux session",
        socket.display(),
        socket.parent().unwrap_or(Path::new(".")).display()
    )]
    NotRunning { socket: PathBuf },
    #[error(
        "the macs-bridge daemon at {} did not accept the connection within {} s",
        socket.display(),
        CONNECT_TIMEOUT.as_secs()
    )]
    ConnectTimeout { socket: PathBuf },
    #[error("the macs-bridge daemon refused the name `{name}`: {message}")]
    Hello { name: String, message: String },
    #[error("the macs-bridge daemon did not answer `{method}` within {} s", timeout.as_secs_f64())]
    Timeout { method: String, timeout: Duration },
    #[error(
        "the macs-bridge daemon closed the connection while `{method}` waited for its answer (it stopped or restarted), so whether it was done is not known; look (list_agents, read_messages, get_request) before trying again"
    )]
    Closed { method: String },
    #[error(
        "the request is too large once encoded: {bytes} bytes, and the daemon takes at most {max}; send less (in parts, or write it to a file and send the path)"
    )]
    TooLarge { bytes: usize, max: usize },
    /// The daemon refused the call (a JSON-RPC error): its message is the one to show.
    #[error("{}", rpc_message(*code, message, method))]
    Rpc {
        method: String,
        code: i64,
        message: String,
    },
    #[error("{0}")]
    Api(ApiError),
}

fn rpc_message(code: i64, message: &str, method: &str) -> String {
    if code == code::METHOD_NOT_FOUND {
        format!(
            "the macs-bridge daemon does not know `{method}` ({message}); it may be older than this `macs-bridge mcp`: restart it"
        )
    } else {
        message.to_string()
    }
}

impl DaemonError {
    fn from_api(e: ApiError, method: &str, socket: &Path) -> DaemonError {
        match e {
            ApiError::NotRunning { .. } => DaemonError::NotRunning {
                socket: socket.to_path_buf(),
            },
            ApiError::Rpc(r) => DaemonError::Rpc {
                method: method.to_string(),
                code: r.code,
                message: r.message,
            },
            ApiError::Closed { .. } => DaemonError::Closed {
                method: method.to_string(),
            },
            ApiError::TooLarge { bytes, max } => DaemonError::TooLarge { bytes, max },
            other => DaemonError::Api(other),
        }
    }
}

/// One JSON-RPC call to the daemon. The MCP tools only need this, so tests can stand in for the
/// daemon.
pub trait Rpc: Send + Sync + 'static {
    fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> impl Future<Output = Result<Value, DaemonError>> + Send;
}

/// The daemon of a state dir, reached through its socket.
pub struct DaemonLink {
    socket: PathBuf,
    name: String,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

/// An open connection that said `hello`. `open` turns false when the daemon closes it (a task
/// waits for that); dropping it ends that task and, with the last caller, the connection.
struct Conn {
    caller: Caller,
    open: Arc<AtomicBool>,
    watch: tokio::task::AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.watch.abort();
    }
}

impl DaemonLink {
    /// `name` is who this server speaks for (sent in `hello`).
    pub fn new(state_dir: &Path, name: &str) -> DaemonLink {
        DaemonLink {
            socket: crate::api::socket_path(state_dir),
            name: name.to_string(),
            conn: tokio::sync::Mutex::new(None),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The open connection, or a new one.
    async fn caller(&self) -> Result<(Caller, Arc<AtomicBool>), DaemonError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            if c.open.load(Ordering::Acquire) {
                return Ok((c.caller.clone(), c.open.clone()));
            }
        }
        *slot = None;
        let socket = &self.socket;
        let mut client =
            match tokio::time::timeout(CONNECT_TIMEOUT, ApiClient::connect(socket)).await {
                Err(_) => {
                    return Err(DaemonError::ConnectTimeout {
                        socket: socket.clone(),
                    })
                }
                Ok(r) => r.map_err(|e| DaemonError::from_api(e, method::HELLO, socket))?,
            };
        let caller = client.caller();
        let hello = caller.call(method::HELLO, json!({ "name": self.name }));
        match tokio::time::timeout(HELLO_TIMEOUT, hello).await {
            Err(_) => {
                return Err(DaemonError::Timeout {
                    method: method::HELLO.into(),
                    timeout: HELLO_TIMEOUT,
                })
            }
            Ok(Err(ApiError::Rpc(r))) if r.code != code::METHOD_NOT_FOUND => {
                return Err(DaemonError::Hello {
                    name: self.name.clone(),
                    message: r.message,
                })
            }
            Ok(Err(e)) => return Err(DaemonError::from_api(e, method::HELLO, socket)),
            Ok(Ok(_)) => {}
        }
        let open = Arc::new(AtomicBool::new(true));
        let flag = open.clone();
        // This server subscribes to nothing: the queue ends when the connection does.
        let watch = tokio::spawn(async move {
            while client.next_notification().await.is_some() {}
            flag.store(false, Ordering::Release);
            tracing::debug!("the daemon closed the API connection");
        })
        .abort_handle();
        *slot = Some(Conn {
            caller: caller.clone(),
            open: open.clone(),
            watch,
        });
        Ok((caller, open))
    }
}

impl Rpc for DaemonLink {
    async fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, DaemonError> {
        let (caller, open) = self.caller().await?;
        match tokio::time::timeout(timeout, caller.call(method, params)).await {
            Err(_) => Err(DaemonError::Timeout {
                method: method.to_string(),
                timeout,
            }),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if matches!(e, ApiError::Closed { .. }) {
                    open.store(false, Ordering::Release);
                }
                Err(DaemonError::from_api(e, method, &self.socket))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::protocol::SOCKET_NAME;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixListener;

    #[test]
    fn unknown_methods_say_the_daemon_may_be_older() {
        let e = DaemonError::Rpc {
            method: "chat.send".into(),
            code: -32601,
            message: "method not found".into(),
        };
        assert!(e.to_string().contains("does not know `chat.send`"), "{e}");
        let e = DaemonError::Rpc {
            method: "chat.send".into(),
            code: -32001,
            message: "unknown recipient: zed".into(),
        };
        assert_eq!(e.to_string(), "unknown recipient: zed");
    }

    #[tokio::test]
    async fn no_socket_and_a_stale_socket_mean_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let link = DaemonLink::new(dir.path(), "me");
        let e = link
            .call("agents.list", json!({}), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, DaemonError::NotRunning { .. }), "{e:?}");
        assert!(e.to_string().contains("not running"), "{e}");
        // A socket file left behind by a daemon that died.
        drop(std::os::unix::net::UnixListener::bind(dir.path().join(SOCKET_NAME)).unwrap());
        let e = link
            .call("agents.list", json!({}), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, DaemonError::NotRunning { .. }), "{e:?}");
    }

    type Answer = fn(&str, &Value) -> Option<Value>;

    /// A daemon that takes `connections` connections one after the other and answers each
    /// request with `answer(method, params)` (`None`: silence), after pushing a notification the
    /// client must skip. Returns every request it read.
    fn fake(dir: &Path, connections: usize, answer: Answer) -> tokio::task::JoinHandle<Vec<Value>> {
        let listener = UnixListener::bind(dir.join(SOCKET_NAME)).unwrap();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..connections {
                let (stream, _) = listener.accept().await.unwrap();
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let req: Value = serde_json::from_str(&line).unwrap();
                    seen.push(req.clone());
                    let method = req["method"].as_str().unwrap().to_string();
                    if method == "bye" {
                        break;
                    }
                    if let Some(mut reply) = answer(&method, &req["params"]) {
                        let note = json!({"jsonrpc":"2.0","method":"agent.state","params":{}});
                        reply["jsonrpc"] = json!("2.0");
                        reply["id"] = req["id"].clone();
                        let out = format!("{note}\n{reply}\n");
                        w.write_all(out.as_bytes()).await.unwrap();
                    }
                }
            }
            seen
        })
    }

    fn agents(method: &str, _: &Value) -> Option<Value> {
        match method {
            "hello" => Some(json!({"result": {"name": "codex", "session": "macs"}})),
            "bye" => None,
            _ => Some(json!({"result": {"agents": []}})),
        }
    }

    #[tokio::test]
    async fn one_hello_then_the_calls_on_the_same_connection() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = fake(dir.path(), 1, agents);
        let link = DaemonLink::new(dir.path(), "codex");
        for _ in 0..2 {
            let v = link
                .call("agents.list", json!({}), Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(v, json!({"agents": []}));
        }
        // "bye" makes the fake hang up; its answer never comes.
        let _ = link.call("bye", json!({}), Duration::from_secs(5)).await;
        let seen = daemon.await.unwrap();
        let methods: Vec<&str> = seen.iter().map(|r| r["method"].as_str().unwrap()).collect();
        assert_eq!(methods, ["hello", "agents.list", "agents.list", "bye"]);
        assert_eq!(seen[0]["params"], json!({"name": "codex"}));
    }

    #[tokio::test]
    async fn a_restarted_daemon_is_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = fake(dir.path(), 2, agents);
        let link = DaemonLink::new(dir.path(), "codex");
        link.call("agents.list", json!({}), Duration::from_secs(5))
            .await
            .unwrap();
        // The daemon hangs up while a call waits: that call fails and says so.
        let e = link
            .call("bye", json!({}), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, DaemonError::Closed { .. }), "{e:?}");
        assert!(e.to_string().contains("closed the connection"), "{e}");
        // The next call connects again and says hello again.
        link.call("agents.list", json!({}), Duration::from_secs(5))
            .await
            .unwrap();
        drop(link);
        let seen = daemon.await.unwrap();
        let methods: Vec<&str> = seen.iter().map(|r| r["method"].as_str().unwrap()).collect();
        assert_eq!(
            methods,
            ["hello", "agents.list", "bye", "hello", "agents.list"]
        );
    }

    #[tokio::test]
    async fn errors_come_back_with_the_daemons_message() {
        let dir = tempfile::tempdir().unwrap();
        let _daemon = fake(dir.path(), 1, |method, _| match method {
            "hello" => Some(json!({"result": {}})),
            _ => Some(json!({"error": {"code": -32001, "message": "unknown recipient: zed"}})),
        });
        let link = DaemonLink::new(dir.path(), "codex");
        let e = link
            .call("chat.send", json!({}), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "unknown recipient: zed");
    }

    #[tokio::test]
    async fn a_refused_name_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let _daemon = fake(dir.path(), 1, |_, _| {
            Some(json!({"error": {"code": -32004, "message": "the name codex is taken"}}))
        });
        let link = DaemonLink::new(dir.path(), "codex");
        let e = link
            .call("agents.list", json!({}), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the macs-bridge daemon refused the name `codex`: the name codex is taken"
        );
    }

    #[tokio::test]
    async fn a_silent_daemon_is_a_timeout_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let _daemon = fake(dir.path(), 1, |method, _| {
            (method == "hello").then(|| json!({"result": {}}))
        });
        let link = DaemonLink::new(dir.path(), "codex");
        let e = link
            .call("agents.list", json!({}), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(e, DaemonError::Timeout { .. }), "{e:?}");
        assert!(
            e.to_string().contains("did not answer `agents.list`"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn too_large_a_request_is_refused_before_it_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let daemon = fake(dir.path(), 1, agents);
        let link = DaemonLink::new(dir.path(), "codex");
        // 40 000 newlines: 40 000 bytes of text, 80 000 once JSON-escaped.
        let content = "\n".repeat(40_000);
        let e = link
            .call(
                "chat.send",
                json!({"from": "codex", "to": "x", "content": content}),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, DaemonError::TooLarge { .. }), "{e:?}");
        assert!(e.to_string().contains("too large"), "{e}");
        let _ = link.call("bye", json!({}), Duration::from_secs(5)).await;
        let seen = daemon.await.unwrap();
        assert!(seen.iter().all(|r| r["method"] != "chat.send"));
    }
}
