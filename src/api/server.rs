//! The API server: the accept loop, one task per connection, subscriptions.
//!
//! It owns the connections, and never runs a method: each call goes to the
//! core as [`ApiMsg::Call`] with a oneshot for the answer, which is written back when it comes
//! (answers may come out of order; ids match them up). It never blocks the core: notifications
//! reach a connection through a bounded channel the core fills with `try_send` only
//! ([`Subscribers`] does that for the core). The socket file itself is [`super::socket`]'s.
//!
//! # Connections
//!
//! Each line is one request ([`super::protocol`]); the answers to bad lines are errors, and the
//! connection goes on. At most [`ServeOptions::max_in_flight`] calls of one connection wait for
//! answers at a time; then the server stops reading that connection until one is written (the
//! client feels it as backpressure). A client that only shuts down its writing half (`nc -N`,
//! a script) still gets the answers to the calls it made, then the connection closes. A client
//! that goes away mid-call is fine: its pending calls are forgotten (the core's answers go
//! nowhere). The core hears [`ApiMsg::Gone`] when a connection ends.
//!
//! # Subscriptions
//!
//! `subscribe` is answered here: the server makes a channel of
//! [`ServeOptions::subscription_buffer`] notifications for the connection and hands its sender
//! to the core ([`ApiMsg::Subscribe`]); `{"subscribed": […]}` is written before any
//! notification. Subscribing again replaces the set. The core must only `try_send` into the
//! channel and forget the sender when it is full or closed ([`Subscribers::publish`]). When the
//! core has dropped the sender, the connection writes what is still buffered, then
//! `{"jsonrpc":"2.0","method":"subscription.dropped","params":{"reason":…}}`, and keeps
//! answering calls; the client may subscribe again and catch up with `chat.history`.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::frame::{Frame, LineReader};
use super::protocol::{self, event, method, SubscribeParams, SubscribeResult};
pub use super::protocol::{Notification, RpcError, METHODS};
pub use super::socket::Listener;

/// One call for the core to run.
#[derive(Debug)]
pub struct Call {
    pub method: String,
    /// Always an object.
    pub params: Value,
    pub client: ClientInfo,
    /// Where the answer goes. Dropping it answers -32603; for a client's notification (no id)
    /// the answer is thrown away.
    pub reply: oneshot::Sender<Result<Value, RpcError>>,
}

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// Unique for the life of the server, from 1.
    pub conn_id: u64,
    /// The client process, from the socket's peer credentials.
    pub peer_pid: Option<u32>,
}

/// What the server sends the core.
#[derive(Debug)]
pub enum ApiMsg {
    Call(Call),
    /// Push these events (empty: all) to this connection from now on, replacing an earlier
    /// subscription of the same connection. The core must only `try_send` into `tx`.
    Subscribe {
        conn_id: u64,
        events: Vec<String>,
        tx: mpsc::Sender<Notification>,
    },
    /// The connection is closed: forget its subscription and its `hello` name.
    Gone {
        conn_id: u64,
    },
}

/// The server's limits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The methods passed to the core; others get -32601 here. Default: [`METHODS`].
    pub methods: Vec<String>,
    /// The longest request line (default [`protocol::MAX_LINE`]).
    pub max_line: usize,
    /// Notifications buffered per subscriber before the core drops it (default 256).
    pub subscription_buffer: usize,
    /// Calls of one connection waiting for answers at a time (default 64).
    pub max_in_flight: usize,
    /// Connections open at a time (default 256); one more is told so and closed, so that idle
    /// clients cannot take every file handle the daemon needs.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            methods: METHODS.iter().map(|m| m.to_string()).collect(),
            max_line: protocol::MAX_LINE,
            subscription_buffer: 256,
            max_in_flight: 64,
            max_connections: 256,
        }
    }
}

/// The subscribers, for the core to own: it records [`ApiMsg::Subscribe`] and
/// [`ApiMsg::Gone`] here and publishes each event with [`Subscribers::publish`], which never
/// waits.
#[derive(Debug, Default)]
pub struct Subscribers {
    subs: HashMap<u64, Subscriber>,
}

#[derive(Debug)]
struct Subscriber {
    /// Empty: all.
    events: Vec<String>,
    tx: mpsc::Sender<Notification>,
}

impl Subscribers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records (or replaces) a connection's subscription.
    pub fn subscribe(&mut self, conn_id: u64, events: Vec<String>, tx: mpsc::Sender<Notification>) {
        self.subs.insert(conn_id, Subscriber { events, tx });
    }

    /// Forgets a connection.
    pub fn gone(&mut self, conn_id: u64) {
        self.subs.remove(&conn_id);
    }

    /// Handles an `ApiMsg::Subscribe` or `ApiMsg::Gone`; gives a call back.
    pub fn handle(&mut self, msg: ApiMsg) -> Option<Call> {
        match msg {
            ApiMsg::Call(c) => return Some(c),
            ApiMsg::Subscribe {
                conn_id,
                events,
                tx,
            } => self.subscribe(conn_id, events, tx),
            ApiMsg::Gone { conn_id } => self.gone(conn_id),
        }
        None
    }

    /// Offers a notification to every subscriber of its method, without waiting. A subscriber
    /// whose buffer is full (it fell behind) or whose connection is gone is dropped; its
    /// connection then tells the client. Returns how many took it.
    pub fn publish(&mut self, n: &Notification) -> usize {
        let mut taken = 0;
        self.subs.retain(|conn_id, s| {
            if !s.events.is_empty() && !s.events.contains(&n.method) {
                return true;
            }
            match s.tx.try_send(n.clone()) {
                Ok(()) => {
                    taken += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    warn!(conn_id, method = %n.method, "an API subscriber fell behind: dropping its subscription");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        taken
    }

    pub fn len(&self) -> usize {
        self.subs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }
}

/// Serves with the default options until `cancel`; removes the socket file when done.
pub async fn serve(listener: Listener, core: mpsc::Sender<ApiMsg>, cancel: CancellationToken) {
    serve_with(listener, core, cancel, ServeOptions::default()).await
}

/// Serves until `cancel`; removes the socket file when done.
pub async fn serve_with(
    listener: Listener,
    core: mpsc::Sender<ApiMsg>,
    cancel: CancellationToken,
    opts: ServeOptions,
) {
    let (std, file) = listener.into_parts();
    let listener = match std
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixListener::from_std(std))
    {
        Ok(l) => l,
        Err(e) => {
            warn!(path = %file.path().display(), error = %e, "cannot serve the API socket");
            return;
        }
    };
    let opts = Arc::new(opts);
    let tracker = TaskTracker::new();
    let mut next_id: u64 = 0;
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) if tracker.len() >= opts.max_connections => {
                warn!(
                    max = opts.max_connections,
                    "too many API connections; refusing one"
                );
                let line = protocol::response_line(
                    &Value::Null,
                    Err(&RpcError::unavailable(format!(
                        "too many API connections ({}); close some and try again",
                        opts.max_connections
                    ))),
                );
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let mut stream = stream;
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        let _ = stream.write_all(line.as_bytes()).await;
                        let _ = stream.write_all(b"\n").await;
                    })
                    .await;
                });
            }
            Ok((stream, _)) => {
                next_id += 1;
                let client = ClientInfo {
                    conn_id: next_id,
                    peer_pid: stream
                        .peer_cred()
                        .ok()
                        .and_then(|c| c.pid())
                        .and_then(|p| u32::try_from(p).ok()),
                };
                debug!(conn_id = client.conn_id, peer_pid = ?client.peer_pid, "API client connected");
                let conn = Connection {
                    client,
                    core: core.clone(),
                    cancel: cancel.child_token(),
                    stopping: cancel.clone(),
                    opts: opts.clone(),
                };
                tracker.spawn(conn.run(stream));
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                warn!(error = %e, "cannot accept an API connection");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    drop(file);
}

/// What the connection's writer writes, in order.
enum Out {
    Line(String, Option<OwnedSemaphorePermit>),
    /// Start writing these notifications (after the lines before this).
    Subscribe(mpsc::Receiver<Notification>),
}

struct Connection {
    client: ClientInfo,
    core: mpsc::Sender<ApiMsg>,
    /// Ends this connection: the server stops, or the writer failed (a child of the server's).
    cancel: CancellationToken,
    /// The server stops.
    stopping: CancellationToken,
    opts: Arc<ServeOptions>,
}

impl Connection {
    async fn run(self, stream: UnixStream) {
        let (read, write) = stream.into_split();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(
            write,
            out_rx,
            self.core.clone(),
            self.opts.subscription_buffer,
            self.cancel.clone(),
        ));
        self.read_loop(
            LineReader::new(BufReader::new(read), self.opts.max_line),
            out_tx,
        )
        .await;
        // The writer ends once every answer is written (or the peer is gone, or cancel).
        let _ = writer.await;
        debug!(conn_id = self.client.conn_id, "API client gone");
        tokio::select! {
            _ = self.core.send(ApiMsg::Gone { conn_id: self.client.conn_id }) => {}
            _ = self.stopping.cancelled() => {}
        }
    }

    async fn read_loop(
        &self,
        mut reader: LineReader<BufReader<tokio::net::unix::OwnedReadHalf>>,
        out: mpsc::UnboundedSender<Out>,
    ) {
        let permits = Arc::new(Semaphore::new(self.opts.max_in_flight.max(1)));
        let mut calls = JoinSet::new();
        loop {
            while calls.try_join_next().is_some() {}
            let frame = tokio::select! {
                _ = self.cancel.cancelled() => return,
                f = reader.read() => f,
            };
            let line = match frame {
                Ok(Some(Frame::Line(l))) => l,
                Ok(Some(Frame::TooLong)) => {
                    let err = RpcError::invalid_request(format!(
                        "message too large: a request line may hold at most {} bytes",
                        self.opts.max_line
                    ));
                    if !self.answer(&out, &permits, &Value::Null, Err(&err)).await {
                        return;
                    }
                    continue;
                }
                Ok(None) => break,
                Err(e) => {
                    debug!(conn_id = self.client.conn_id, error = %e, "API read failed");
                    break;
                }
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let req = match protocol::parse_request(&line) {
                Ok(r) => r,
                Err(rej) => {
                    if !rej.silent && !self.answer(&out, &permits, &rej.id, Err(&rej.error)).await {
                        return;
                    }
                    continue;
                }
            };
            if req.method == method::SUBSCRIBE {
                if !self.subscribe(req.id, req.params, &out, &permits).await {
                    return;
                }
                continue;
            }
            if !self.opts.methods.contains(&req.method) {
                if let Some(id) = &req.id {
                    let err = RpcError::method_not_found(&req.method);
                    if !self.answer(&out, &permits, id, Err(&err)).await {
                        return;
                    }
                }
                continue;
            }
            // A permit per call that will be answered, held until its answer is written.
            let permit = match &req.id {
                Some(_) => match self.permit(&permits).await {
                    Some(p) => Some(p),
                    None => return,
                },
                None => None,
            };
            let (reply, answer) = oneshot::channel();
            let call = Call {
                method: req.method,
                params: req.params,
                client: self.client,
                reply,
            };
            let sent = tokio::select! {
                _ = self.cancel.cancelled() => return,
                r = self.core.send(ApiMsg::Call(call)) => r.is_ok(),
            };
            let Some(id) = req.id else { continue };
            if !sent {
                let err = RpcError::unavailable("the daemon is shutting down");
                let _ = out.send(Out::Line(protocol::response_line(&id, Err(&err)), permit));
                continue;
            }
            let out = out.clone();
            calls.spawn(async move {
                let result = answer.await.unwrap_or_else(|_| {
                    Err(RpcError::internal(
                        "the daemon dropped the call without an answer",
                    ))
                });
                let line = match &result {
                    Ok(v) => protocol::response_line(&id, Ok(v)),
                    Err(e) => protocol::response_line(&id, Err(e)),
                };
                let _ = out.send(Out::Line(line, permit));
            });
        }
        // The client closed its side. When it only shut down its writing half, the answers to
        // its calls still go out; when it is gone altogether, they are dropped now.
        drop(out);
        if peer_gone(reader.get_ref().get_ref()).await {
            return;
        }
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                next = calls.join_next() => if next.is_none() { return },
            }
        }
    }

    async fn permit(&self, permits: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        tokio::select! {
            _ = self.cancel.cancelled() => None,
            p = permits.clone().acquire_owned() => p.ok(),
        }
    }

    /// Queues an answer written by the server itself; false when the connection is over.
    async fn answer(
        &self,
        out: &mpsc::UnboundedSender<Out>,
        permits: &Arc<Semaphore>,
        id: &Value,
        outcome: Result<&Value, &RpcError>,
    ) -> bool {
        let Some(permit) = self.permit(permits).await else {
            return false;
        };
        out.send(Out::Line(
            protocol::response_line(id, outcome),
            Some(permit),
        ))
        .is_ok()
    }

    /// Handles `subscribe`; false when the connection is over.
    async fn subscribe(
        &self,
        id: Option<Value>,
        params: Value,
        out: &mpsc::UnboundedSender<Out>,
        permits: &Arc<Semaphore>,
    ) -> bool {
        let (outcome, rx) = match self.start_subscription(params).await {
            Some(Ok((subscribed, rx))) => {
                (protocol::result(&SubscribeResult { subscribed }), Some(rx))
            }
            Some(Err(e)) => (Err(e), None),
            None => return false,
        };
        if let Some(id) = &id {
            let written = match &outcome {
                Ok(v) => self.answer(out, permits, id, Ok(v)).await,
                Err(e) => self.answer(out, permits, id, Err(e)).await,
            };
            if !written {
                return false;
            }
        }
        match rx {
            Some(rx) => out.send(Out::Subscribe(rx)).is_ok(),
            None => true,
        }
    }

    /// Checks the events and hands a new channel to the core; `None` on cancel.
    async fn start_subscription(
        &self,
        params: Value,
    ) -> Option<Result<(Vec<String>, mpsc::Receiver<Notification>), RpcError>> {
        let p: SubscribeParams = match protocol::params(params) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let events = p.events.unwrap_or_default();
        if let Some(bad) = events
            .iter()
            .find(|e| !protocol::EVENTS.contains(&e.as_str()))
        {
            return Some(Err(RpcError::invalid_params(format!(
                "unknown event {bad:?}; the events are {}",
                protocol::EVENTS.join(", ")
            ))));
        }
        let (tx, rx) = mpsc::channel(self.opts.subscription_buffer.max(1));
        let msg = ApiMsg::Subscribe {
            conn_id: self.client.conn_id,
            events: events.clone(),
            tx,
        };
        let sent = tokio::select! {
            _ = self.cancel.cancelled() => return None,
            r = self.core.send(msg) => r.is_ok(),
        };
        if !sent {
            return Some(Err(RpcError::unavailable("the daemon is shutting down")));
        }
        let subscribed = if events.is_empty() {
            protocol::EVENTS.iter().map(|e| e.to_string()).collect()
        } else {
            events
        };
        Some(Ok((subscribed, rx)))
    }
}

/// Writes answers and notifications until every sender of `out` is gone, the peer stops
/// reading for good (an error), or `cancel`. Cancels the connection when it stops on an error.
async fn write_loop(
    mut w: OwnedWriteHalf,
    mut out: mpsc::UnboundedReceiver<Out>,
    core: mpsc::Sender<ApiMsg>,
    buffer: usize,
    cancel: CancellationToken,
) {
    let mut sub: Option<mpsc::Receiver<Notification>> = None;
    loop {
        let line = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            o = out.recv() => match o {
                None => break,
                Some(Out::Line(line, permit)) => {
                    if write_line(&mut w, &line, &cancel).await.is_err() {
                        break;
                    }
                    drop(permit);
                    continue;
                }
                Some(Out::Subscribe(rx)) => {
                    sub = Some(rx);
                    continue;
                }
            },
            n = next_notification(&mut sub) => match n {
                Some(n) => protocol::notification_line(&n.method, &n.params),
                None => {
                    sub = None;
                    let reason = if core.is_closed() {
                        "the daemon is stopping".to_string()
                    } else {
                        format!("the client fell behind: {buffer} notifications were waiting unread; subscribe again and catch up with chat.history")
                    };
                    let params = protocol::SubscriptionDropped { reason };
                    protocol::notification_line(
                        event::SUBSCRIPTION_DROPPED,
                        &protocol::result(&params).unwrap_or(Value::Null),
                    )
                }
            },
        };
        if write_line(&mut w, &line, &cancel).await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}

/// Whether the peer closed the whole connection (not just its writing half), as far as the
/// socket has said so already; never waits.
async fn peer_gone(read: &tokio::net::unix::OwnedReadHalf) -> bool {
    tokio::select! {
        biased;
        r = read.ready(tokio::io::Interest::WRITABLE) => r.map_or(true, |r| r.is_write_closed()),
        _ = std::future::ready(()) => false,
    }
}

async fn next_notification(sub: &mut Option<mpsc::Receiver<Notification>>) -> Option<Notification> {
    match sub {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn write_line(
    w: &mut OwnedWriteHalf,
    line: &str,
    cancel: &CancellationToken,
) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let r = tokio::select! {
        _ = cancel.cancelled() => Err(std::io::Error::new(ErrorKind::Interrupted, "cancelled")),
        r = w.write_all(&bytes) => r,
    };
    if let Err(e) = &r {
        debug!(error = %e, "API write failed; closing the connection");
        cancel.cancel();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn publish_drops_a_full_subscriber_and_skips_unsubscribed_events() {
        let mut subs = Subscribers::new();
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        let (slow_tx, _slow_rx) = mpsc::channel(1);
        let (picky_tx, mut picky_rx) = mpsc::channel(8);
        subs.subscribe(1, vec![], fast_tx);
        subs.subscribe(2, vec![], slow_tx);
        subs.subscribe(3, vec!["agent.state".into()], picky_tx);
        let n = Notification::new("chat.message", json!({"id":"1"}));
        assert_eq!(subs.publish(&n), 2);
        assert_eq!(subs.publish(&n), 1, "the slow one is full now");
        assert_eq!(subs.len(), 2, "and dropped");
        assert_eq!(
            subs.publish(&Notification::new("agent.state", json!({}))),
            2
        );
        assert_eq!(fast_rx.recv().await.unwrap(), n);
        assert_eq!(picky_rx.recv().await.unwrap().method, "agent.state");
        subs.gone(1);
        drop(picky_rx);
        assert_eq!(
            subs.publish(&Notification::new("agent.state", json!({}))),
            0
        );
        assert!(subs.is_empty(), "a closed subscriber is dropped too");
    }
}
