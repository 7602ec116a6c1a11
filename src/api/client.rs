//! The API client (tokio), for `macs-bridge chat`, the MCP server and custom tools.
//!
//! One background task reads the socket: answers go to the call that waits for them (matched by
//! id), notifications to a queue read with [`ApiClient::next_notification`]. So calls work while
//! notifications stream in, and several calls may wait at once ([`ApiClient::caller`] gives a
//! cloneable handle for other tasks). Writes go through a second task, so a call cancelled
//! half-way never leaves half a line on the socket. Calls have no timeout of their own: wrap
//! them in `tokio::time::timeout` when one is needed.
//!
//! It never runs a method and never reconnects: when the daemon goes, every waiting call and
//! every later one fails with [`ApiError::Closed`], and `next_notification` returns `None`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::frame::{Frame, LineReader};
use super::protocol::{self, event, Incoming, Notification, SubscribeParams, SubscribeResult};
use super::ApiError;

/// The longest line read from the daemon (history and snapshots can be long).
const MAX_REPLY_LINE: usize = 32 * 1024 * 1024;
/// Notifications kept for a client that does not read them; more are thrown away and the
/// client reads a `subscription.dropped` notice in their place.
const MAX_QUEUED_NOTIFICATIONS: usize = 100_000;

type Reply = oneshot::Sender<Result<Value, ApiError>>;

#[derive(Default)]
struct Pending {
    calls: HashMap<u64, Reply>,
    /// Set when the connection ended: why.
    closed: Option<String>,
}

struct Inner {
    out: mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<Mutex<Pending>>,
    next_id: AtomicU64,
    reader: tokio::task::AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A connection to the daemon.
pub struct ApiClient {
    caller: Caller,
    notes: mpsc::UnboundedReceiver<Notification>,
    queued: Arc<AtomicUsize>,
    lost: Arc<AtomicUsize>,
}

/// Makes calls on an [`ApiClient`]'s connection; cheap to clone, usable from any task. The
/// connection closes when the client and every caller are dropped.
#[derive(Clone)]
pub struct Caller {
    inner: Arc<Inner>,
}

impl ApiClient {
    /// Connects to the daemon's socket. Needs a tokio runtime.
    pub async fn connect(path: impl AsRef<Path>) -> Result<ApiClient, ApiError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path).await.map_err(|source| {
            use std::io::ErrorKind::{ConnectionRefused, NotFound};
            match source.kind() {
                NotFound | ConnectionRefused => ApiError::NotRunning {
                    path: path.to_owned(),
                    source,
                },
                _ => ApiError::Socket {
                    action: "connect to",
                    path: path.to_owned(),
                    source,
                },
            }
        })?;
        Ok(Self::from_stream(stream))
    }

    /// A client on a connected stream. Needs a tokio runtime.
    pub fn from_stream(stream: UnixStream) -> ApiClient {
        let (read, write) = stream.into_split();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (note_tx, notes) = mpsc::unbounded_channel();
        let pending = Arc::new(Mutex::new(Pending::default()));
        let queued = Arc::new(AtomicUsize::new(0));
        let lost = Arc::new(AtomicUsize::new(0));
        tokio::spawn(write_loop(write, out_rx));
        let reader = tokio::spawn(read_loop(
            read,
            pending.clone(),
            note_tx,
            queued.clone(),
            lost.clone(),
        ));
        ApiClient {
            caller: Caller {
                inner: Arc::new(Inner {
                    out: out_tx,
                    pending,
                    next_id: AtomicU64::new(1),
                    reader: reader.abort_handle(),
                }),
            },
            notes,
            queued,
            lost,
        }
    }

    /// Calls `method` and waits for its answer; notifications that arrive meanwhile are kept
    /// for [`next_notification`](Self::next_notification).
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ApiError> {
        self.caller.call(method, params).await
    }

    /// [`call`](Self::call) with typed params and result.
    pub async fn call_as<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<R, ApiError> {
        self.caller.call_as(method, params).await
    }

    /// Sends a JSON-RPC notification: the daemon runs it and never answers.
    pub fn notify(&self, method: &str, params: Value) -> Result<(), ApiError> {
        self.caller.notify(method, params)
    }

    /// Subscribes to `events` (empty: all); returns the events now pushed.
    pub async fn subscribe(&self, events: &[&str]) -> Result<Vec<String>, ApiError> {
        let params = SubscribeParams {
            events: (!events.is_empty()).then(|| events.iter().map(|e| e.to_string()).collect()),
        };
        let r: SubscribeResult = self.call_as(protocol::method::SUBSCRIBE, &params).await?;
        Ok(r.subscribed)
    }

    /// The next notification, in the order the daemon sent them; `None` once the connection is
    /// closed and every notification was read. Cancel-safe.
    pub async fn next_notification(&mut self) -> Option<Notification> {
        if let Some(n) = self.lost_notice() {
            return Some(n);
        }
        let n = self.notes.recv().await?;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Some(n)
    }

    /// A notification already received, without waiting.
    pub fn try_next_notification(&mut self) -> Option<Notification> {
        if let Some(n) = self.lost_notice() {
            return Some(n);
        }
        let n = self.notes.try_recv().ok()?;
        self.queued.fetch_sub(1, Ordering::Relaxed);
        Some(n)
    }

    fn lost_notice(&self) -> Option<Notification> {
        let lost = self.lost.swap(0, Ordering::Relaxed);
        (lost > 0).then(|| {
            Notification::new(
                event::SUBSCRIPTION_DROPPED,
                protocol::SubscriptionDropped {
                    reason: format!(
                        "{lost} notifications were thrown away: this client did not read them"
                    ),
                },
            )
        })
    }

    /// A handle for making calls from other tasks.
    pub fn caller(&self) -> Caller {
        self.caller.clone()
    }
}

impl Caller {
    /// See [`ApiClient::call`].
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ApiError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let line = line_bytes(protocol::request_line(Some(id), method, &params))?;
        let (tx, rx) = oneshot::channel();
        {
            let mut p = lock(&self.inner.pending);
            if let Some(reason) = &p.closed {
                return Err(ApiError::Closed {
                    reason: reason.clone(),
                });
            }
            p.calls.insert(id, tx);
        }
        // Forget the call if this future is dropped before its answer comes.
        let _guard = Forget {
            pending: &self.inner.pending,
            id,
        };
        if self.inner.out.send(line).is_err() {
            return Err(ApiError::Closed {
                reason: String::new(),
            });
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(ApiError::Closed {
                reason: String::new(),
            }),
        }
    }

    /// See [`ApiClient::call_as`].
    pub async fn call_as<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<R, ApiError> {
        let params = serde_json::to_value(params)
            .map_err(|e| ApiError::Protocol(format!("cannot serialize the params: {e}")))?;
        let v = self.call(method, params).await?;
        serde_json::from_value(v)
            .map_err(|e| ApiError::Protocol(format!("the answer to {method} does not fit: {e}")))
    }

    /// See [`ApiClient::notify`].
    pub fn notify(&self, method: &str, params: Value) -> Result<(), ApiError> {
        let line = line_bytes(protocol::request_line(None, method, &params))?;
        self.inner.out.send(line).map_err(|_| ApiError::Closed {
            reason: String::new(),
        })
    }
}

struct Forget<'a> {
    pending: &'a Mutex<Pending>,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.pending).calls.remove(&self.id);
    }
}

fn lock(p: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    // Nothing panics while holding it; a poisoned lock still holds consistent data.
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// The line with its newline; refuses what the server would refuse as too large (it could not
/// say which call it refused, and the call would wait forever).
fn line_bytes(line: String) -> Result<Vec<u8>, ApiError> {
    if line.len() > protocol::MAX_LINE {
        return Err(ApiError::TooLarge {
            bytes: line.len(),
            max: protocol::MAX_LINE,
        });
    }
    let mut bytes = line.into_bytes();
    bytes.push(b'\n');
    Ok(bytes)
}

async fn write_loop(mut w: OwnedWriteHalf, mut out: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(line) = out.recv().await {
        if let Err(e) = w.write_all(&line).await {
            debug!(error = %e, "API client: write failed");
            return;
        }
    }
    let _ = w.shutdown().await;
}

async fn read_loop(
    read: OwnedReadHalf,
    pending: Arc<Mutex<Pending>>,
    notes: mpsc::UnboundedSender<Notification>,
    queued: Arc<AtomicUsize>,
    lost: Arc<AtomicUsize>,
) {
    let mut reader = LineReader::new(BufReader::new(read), MAX_REPLY_LINE);
    let reason = loop {
        let line = match reader.read().await {
            Ok(Some(Frame::Line(l))) => l,
            Ok(Some(Frame::TooLong)) => {
                // Its id cannot be read: fail every waiting call rather than leave one hanging.
                warn!("API client: a line from the daemon is over {MAX_REPLY_LINE} bytes");
                let calls = std::mem::take(&mut lock(&pending).calls);
                for (_, tx) in calls {
                    let _ = tx.send(Err(ApiError::Protocol(format!(
                        "an answer was larger than {MAX_REPLY_LINE} bytes"
                    ))));
                }
                continue;
            }
            Ok(None) => break String::new(),
            Err(e) => break e.to_string(),
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match protocol::parse_incoming(&line) {
            Ok(Incoming::Response { id, result }) => {
                let tx = id.as_u64().and_then(|id| lock(&pending).calls.remove(&id));
                match tx {
                    Some(tx) => {
                        let _ = tx.send(result.map_err(ApiError::Rpc));
                    }
                    None => debug!(%id, "API client: an answer nobody waits for"),
                }
            }
            Ok(Incoming::Notification(n)) => {
                if queued.load(Ordering::Relaxed) >= MAX_QUEUED_NOTIFICATIONS {
                    lost.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                queued.fetch_add(1, Ordering::Relaxed);
                if notes.send(n).is_err() {
                    queued.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(e) => warn!(error = %e, "API client: unreadable line from the daemon"),
        }
    };
    let calls = {
        let mut p = lock(&pending);
        p.closed = Some(reason.clone());
        std::mem::take(&mut p.calls)
    };
    for (_, tx) in calls {
        let _ = tx.send(Err(ApiError::Closed {
            reason: reason.clone(),
        }));
    }
}
