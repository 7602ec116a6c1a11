//! The API transport: the socket, JSON-RPC framing and errors, subscriptions, the client
//! library and `macs-bridge chat` with piped input, against a fake core (a task answering
//! `ApiMsg::Call`s: `echo` gives its params back, `hold` is never answered, `hello` and
//! `chat.send` answer like the daemon, the rest are errors). The real core is tested end to end
//! elsewhere.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use macs_bridge::api::protocol::{self, code, ChatSendResult, Notification, RpcError};
use macs_bridge::api::server::Subscribers;
use macs_bridge::api::{serve_with, ApiClient, ApiError, ApiMsg, Call, Listener, ServeOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// How long anything may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// What the test asks the fake core to do.
enum Control {
    /// Publish these, in order, and say how many subscribers are left.
    Publish(Vec<Notification>, oneshot::Sender<usize>),
    /// Answer the calls held so far with `{"late": true}`; say how many there were.
    ReleaseHeld(oneshot::Sender<usize>),
}

#[derive(Default)]
struct Seen {
    calls: Vec<(String, Value)>,
    gone: Vec<u64>,
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    control: mpsc::UnboundedSender<Control>,
    seen: Arc<Mutex<Seen>>,
    cancel: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

impl Fixture {
    async fn start() -> Fixture {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut ServeOptions)) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("macs.sock");
        let listener = Listener::bind(&path).expect("bind");
        let mut opts = ServeOptions::default();
        opts.methods.push("echo".into());
        opts.methods.push("hold".into());
        tweak(&mut opts);
        let (core_tx, core_rx) = mpsc::channel(64);
        let (control, control_rx) = mpsc::unbounded_channel();
        let seen = Arc::new(Mutex::new(Seen::default()));
        tokio::spawn(fake_core(core_rx, control_rx, seen.clone()));
        let cancel = CancellationToken::new();
        let server = tokio::spawn(serve_with(listener, core_tx, cancel.clone(), opts));
        Fixture {
            _dir: dir,
            path,
            control,
            seen,
            cancel,
            server,
        }
    }

    async fn publish(&self, notes: Vec<Notification>) -> usize {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Publish(notes, tx))
            .expect("core alive");
        timeout(DEADLINE, rx)
            .await
            .expect("the core must never wait for a subscriber")
            .expect("core answers")
    }

    async fn release_held(&self) -> usize {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::ReleaseHeld(tx))
            .expect("core alive");
        timeout(DEADLINE, rx).await.expect("in time").expect("core")
    }

    fn calls(&self, method: &str) -> Vec<Value> {
        let seen = self.seen.lock().expect("lock");
        seen.calls
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, p)| p.clone())
            .collect()
    }

    async fn stop(self) {
        self.cancel.cancel();
        timeout(DEADLINE, self.server)
            .await
            .expect("the server stops")
            .expect("no panic");
    }
}

async fn fake_core(
    mut api: mpsc::Receiver<ApiMsg>,
    mut control: mpsc::UnboundedReceiver<Control>,
    seen: Arc<Mutex<Seen>>,
) {
    let mut subs = Subscribers::new();
    let mut held: Vec<Call> = Vec::new();
    loop {
        tokio::select! {
            msg = api.recv() => {
                let Some(msg) = msg else { return };
                if let ApiMsg::Gone { conn_id } = &msg {
                    seen.lock().expect("lock").gone.push(*conn_id);
                }
                let Some(call) = subs.handle(msg) else { continue };
                seen.lock().expect("lock").calls.push((call.method.clone(), call.params.clone()));
                let answer = match call.method.as_str() {
                    "echo" => Ok(call.params.clone()),
                    "hold" => { held.push(call); continue; }
                    "hello" => Ok(json!({"name": call.params["name"], "session": "test"})),
                    "chat.send" => {
                        let content = call.params["content"].as_str().unwrap_or("");
                        if content.starts_with("@bob") {
                            Err(RpcError::not_found("unknown agent \"bob\" (the agents are codex, claude)"))
                        } else {
                            Ok(serde_json::to_value(ChatSendResult {
                                id: "1".into(),
                                to: "codex".into(),
                                recipients: vec!["codex".into()],
                                queued: vec!["codex".into()],
                            }).expect("json"))
                        }
                    }
                    other => Err(RpcError::unavailable(format!("the fake core does not do {other}"))
                        .with_data(json!({"method": other}))),
                };
                let _ = call.reply.send(answer);
            }
            c = control.recv() => match c {
                None => return,
                Some(Control::Publish(notes, done)) => {
                    for n in &notes {
                        subs.publish(n);
                    }
                    let _ = done.send(subs.len());
                }
                Some(Control::ReleaseHeld(done)) => {
                    let n = held.len();
                    for call in held.drain(..) {
                        let _ = call.reply.send(Ok(json!({"late": true})));
                    }
                    let _ = done.send(n);
                }
            }
        }
    }
}

/// A bare connection speaking lines.
struct Raw {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
}

impl Raw {
    async fn connect(path: &Path) -> Raw {
        let s = UnixStream::connect(path).await.expect("connect");
        let (r, w) = s.into_split();
        Raw {
            reader: BufReader::new(r),
            writer: w,
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    async fn send(&mut self, v: Value) {
        self.send_raw(format!("{v}\n").as_bytes()).await;
    }

    /// The next line as JSON.
    async fn recv(&mut self) -> Value {
        let mut line = String::new();
        let n = timeout(DEADLINE, self.reader.read_line(&mut line))
            .await
            .expect("a line in time")
            .expect("read");
        assert!(n > 0, "the server closed the connection");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
    }

    async fn call(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}))
            .await;
        let r = self.recv().await;
        assert_eq!(r["id"], id, "{r}");
        r
    }

    /// Calls `echo` and checks the answer: the connection works.
    async fn works(&mut self, id: u64) {
        let r = self.call(json!(id), "echo", json!({"n": id})).await;
        assert_eq!(r["result"], json!({"n": id}), "{r}");
    }
}

fn error_code(r: &Value) -> i64 {
    r["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {r}"))
}

fn chat_note(n: u64) -> Notification {
    Notification::new(
        "chat.message",
        json!({"id": n.to_string(), "ts": "2026-01-01T00:00:00Z", "from": "codex", "to": "all",
               "content": format!("message {n}"), "urgent": false}),
    )
}

#[tokio::test]
async fn the_socket_is_private_and_echo_answers() {
    let f = Fixture::start().await;
    let mode = std::fs::metadata(&f.path)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let mut c = Raw::connect(&f.path).await;
    c.works(1).await;
    let path = f.path.clone();
    f.stop().await;
    assert!(!path.exists(), "the socket file goes when the server stops");
}

#[tokio::test]
async fn a_live_socket_refuses_a_second_server_and_a_stale_one_is_replaced() {
    let f = Fixture::start().await;
    match Listener::bind(&f.path) {
        Err(ApiError::InUse { path }) => assert_eq!(path, f.path),
        other => panic!("expected InUse, got {other:?}"),
    }
    // The refused attempt left the live socket alone.
    let mut c = Raw::connect(&f.path).await;
    c.works(1).await;
    f.stop().await;

    // A crashed daemon's socket: the file is there, nobody listens.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("macs.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let listener = Listener::bind(&path).expect("a stale socket is replaced");
    let (core_tx, core_rx) = mpsc::channel(8);
    let (_control, control_rx) = mpsc::unbounded_channel();
    tokio::spawn(fake_core(core_rx, control_rx, Default::default()));
    let cancel = CancellationToken::new();
    let mut opts = ServeOptions::default();
    opts.methods.push("echo".into());
    let server = tokio::spawn(serve_with(listener, core_tx, cancel.clone(), opts));
    let mut c = Raw::connect(&path).await;
    c.works(2).await;
    let mode = std::fs::metadata(&path)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    cancel.cancel();
    timeout(DEADLINE, server)
        .await
        .expect("stops")
        .expect("no panic");
}

#[tokio::test]
async fn bad_lines_get_errors_and_the_connection_and_others_go_on() {
    let f = Fixture::start().await;
    let mut a = Raw::connect(&f.path).await;
    let mut b = Raw::connect(&f.path).await;
    b.works(100).await;
    // B is half-way through a line while A misbehaves.
    b.send_raw(br#"{"jsonrpc":"2.0","id":101,"#).await;

    a.send_raw(b"{not json\n").await;
    let r = a.recv().await;
    assert_eq!(
        (error_code(&r), &r["id"]),
        (code::PARSE_ERROR, &Value::Null),
        "{r}"
    );
    a.works(1).await;

    let r = a.call(json!(2), "no.such.method", json!({})).await;
    assert_eq!(error_code(&r), code::METHOD_NOT_FOUND, "{r}");
    a.works(3).await;

    a.send_raw(b"42\n").await;
    let r = a.recv().await;
    assert_eq!(
        (error_code(&r), &r["id"]),
        (code::INVALID_REQUEST, &Value::Null),
        "{r}"
    );

    a.send_raw(br#"[{"jsonrpc":"2.0","id":4,"method":"echo"}]"#)
        .await;
    a.send_raw(b"\n").await;
    let r = a.recv().await;
    assert_eq!(error_code(&r), code::INVALID_REQUEST, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("batch"),
        "{r}"
    );
    a.works(5).await;

    a.send(json!({"jsonrpc":"1.0","id":6,"method":"echo"}))
        .await;
    let r = a.recv().await;
    assert_eq!(
        (error_code(&r), &r["id"]),
        (code::INVALID_REQUEST, &json!(6)),
        "{r}"
    );

    a.send(json!({"jsonrpc":"2.0","id":7,"method":"echo","params":[1,2]}))
        .await;
    let r = a.recv().await;
    assert_eq!(error_code(&r), code::INVALID_PARAMS, "{r}");

    // A 70 KiB line: refused as too large, and the next line is read normally.
    let big = format!(
        "{}\n",
        json!({"jsonrpc":"2.0","id":8,"method":"echo","params":{"x":"y".repeat(70 * 1024)}})
    );
    a.send_raw(big.as_bytes()).await;
    let r = a.recv().await;
    assert_eq!(error_code(&r), code::INVALID_REQUEST, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("too large"),
        "{r}"
    );
    a.works(9).await;

    // An error from the core comes through with its code and data.
    let r = a.call(json!(10), "agents.list", json!({})).await;
    assert_eq!(error_code(&r), code::UNAVAILABLE, "{r}");
    assert_eq!(r["error"]["data"], json!({"method": "agents.list"}));

    // A notification (no id) is run and not answered: the next line is the next call's.
    a.send(json!({"jsonrpc":"2.0","method":"echo","params":{"quiet":true}}))
        .await;
    a.works(11).await;
    assert_eq!(
        f.calls("echo")
            .iter()
            .filter(|p| p["quiet"] == true)
            .count(),
        1
    );

    // Blank lines are skipped.
    a.send_raw(b"\n\r\n").await;
    a.works(12).await;

    b.send_raw(br#""method":"echo","params":{"b":1}}"#).await;
    b.send_raw(b"\n").await;
    let r = b.recv().await;
    assert_eq!(
        (r["id"].clone(), r["result"].clone()),
        (json!(101), json!({"b":1}))
    );
    f.stop().await;
}

#[tokio::test]
async fn ids_are_echoed_as_they_came() {
    let f = Fixture::start().await;
    let mut c = Raw::connect(&f.path).await;
    for id in [
        json!(0),
        json!(-5),
        json!(18446744073709551615u64),
        json!(2.5),
        json!("abc"),
        json!(""),
        json!("ünïcode-id"),
        Value::Null,
    ] {
        let r = c.call(id.clone(), "echo", json!({"v": 1})).await;
        assert_eq!(r["jsonrpc"], "2.0");
        assert_eq!(r["result"], json!({"v": 1}), "{r}");
    }
    f.stop().await;
}

#[tokio::test]
async fn notifications_reach_subscribers_in_order() {
    let f = Fixture::start().await;
    let mut all = Raw::connect(&f.path).await;
    let r = all.call(json!(1), "subscribe", json!({})).await;
    assert_eq!(
        r["result"]["subscribed"],
        json!([
            "chat.message",
            "agent.state",
            "request.detected",
            "delivery.update"
        ])
    );
    let mut picky = Raw::connect(&f.path).await;
    let r = picky
        .call(json!("s"), "subscribe", json!({"events": ["agent.state"]}))
        .await;
    assert_eq!(r["result"]["subscribed"], json!(["agent.state"]));
    let r = picky
        .call(json!("t"), "subscribe", json!({"events": ["nope"]}))
        .await;
    assert_eq!(error_code(&r), code::INVALID_PARAMS, "{r}");

    let mut notes: Vec<Notification> = (1..=200).map(chat_note).collect();
    notes.push(Notification::new(
        "agent.state",
        json!({"name":"codex","pane":"%1","state":"busy"}),
    ));
    assert_eq!(f.publish(notes).await, 2);
    for n in 1..=200u64 {
        let m = all.recv().await;
        assert_eq!(m["jsonrpc"], "2.0");
        assert_eq!(m["method"], "chat.message");
        assert!(m.get("id").is_none(), "{m}");
        assert_eq!(m["params"]["id"], n.to_string());
    }
    assert_eq!(all.recv().await["method"], "agent.state");
    let m = picky.recv().await;
    assert_eq!(
        (m["method"].clone(), m["params"]["state"].clone()),
        (json!("agent.state"), json!("busy"))
    );
    // Calls still work on a subscribed connection.
    picky.works(5).await;
    f.stop().await;
}

#[tokio::test]
async fn a_slow_subscriber_is_dropped_without_blocking_the_core() {
    let f = Fixture::start_with(|o| o.subscription_buffer = 8).await;
    let mut slow = Raw::connect(&f.path).await;
    slow.call(json!(1), "subscribe", json!({})).await;
    let mut fast = Raw::connect(&f.path).await;
    fast.call(json!(1), "subscribe", json!({"events":["agent.state"]}))
        .await;

    // Far more than the socket and the channel hold; the slow one reads nothing meanwhile.
    let pad = "p".repeat(4096);
    let notes: Vec<Notification> = (1..=5000u64)
        .map(|n| {
            let mut note = chat_note(n);
            note.params["content"] = json!(pad);
            note
        })
        .collect();
    let left = f.publish(notes).await;
    assert_eq!(left, 1, "the slow subscriber is dropped, the other stays");

    // The slow one reads what was buffered, in order, then the notice.
    let mut last = 0u64;
    loop {
        let m = slow.recv().await;
        if m["method"] == "subscription.dropped" {
            assert!(
                m["params"]["reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("fell behind"),
                "{m}"
            );
            break;
        }
        let n: u64 = m["params"]["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("id");
        assert!(n > last, "in order: {n} after {last}");
        last = n;
    }
    assert!(
        last < 5000,
        "notifications were dropped, not queued without bound"
    );
    // Its connection still answers, and it can subscribe again.
    slow.works(2).await;
    slow.call(json!(3), "subscribe", json!({})).await;
    assert_eq!(f.publish(vec![chat_note(9999)]).await, 2);
    assert_eq!(slow.recv().await["params"]["id"], "9999");

    f.publish(vec![Notification::new(
        "agent.state",
        json!({"name":"a","pane":"%1","state":"idle"}),
    )])
    .await;
    assert_eq!(fast.recv().await["method"], "agent.state");
    f.stop().await;
}

#[tokio::test]
async fn the_client_library_calls_while_notifications_stream_in() {
    // Room for all of them even if the connection's writer runs late: this test is not about
    // dropping.
    let f = Fixture::start_with(|o| o.subscription_buffer = 1024).await;
    let mut client = ApiClient::connect(&f.path).await.expect("connect");
    assert_eq!(
        client
            .subscribe(&["chat.message"])
            .await
            .expect("subscribe"),
        vec!["chat.message"]
    );
    let control = f.control.clone();
    let publisher = tokio::spawn(async move {
        for chunk in 0..50u64 {
            let (tx, rx) = oneshot::channel();
            let notes = (chunk * 10 + 1..=chunk * 10 + 10).map(chat_note).collect();
            let _ = control.send(Control::Publish(notes, tx));
            let _ = rx.await;
        }
    });
    for i in 0..50u64 {
        let r = client.call("echo", json!({"i": i})).await.expect("echo");
        assert_eq!(r, json!({"i": i}));
    }
    // Calls from several tasks at once, answered out of order.
    let caller = client.caller();
    let held = tokio::spawn(async move { caller.call("hold", json!({})).await });
    let caller = client.caller();
    let quick = tokio::spawn(async move { caller.call("echo", json!({"q": 1})).await });
    assert_eq!(quick.await.expect("task").expect("echo"), json!({"q": 1}));
    common_wait(|| f.calls("hold").len() == 1).await;
    assert_eq!(f.release_held().await, 1);
    assert_eq!(
        held.await.expect("task").expect("hold"),
        json!({"late": true})
    );

    publisher.await.expect("publisher");
    for n in 1..=500u64 {
        let note = timeout(DEADLINE, client.next_notification())
            .await
            .expect("in time")
            .expect("a notification");
        assert_eq!(note.method, "chat.message");
        assert_eq!(note.params["id"], n.to_string());
    }
    // An error answer is an ApiError::Rpc with the daemon's code.
    match client.call("agents.list", json!({})).await {
        Err(ApiError::Rpc(e)) => assert_eq!(e.code, code::UNAVAILABLE),
        other => panic!("expected an RPC error, got {other:?}"),
    }
    // A request over the server's limit is refused here rather than left unanswered.
    let big = json!({"x": "y".repeat(protocol::MAX_LINE)});
    assert!(matches!(
        client.call("echo", big).await,
        Err(ApiError::TooLarge { .. })
    ));
    client
        .call("echo", json!({}))
        .await
        .expect("still connected");

    f.cancel.cancel();
    assert!(
        timeout(DEADLINE, client.next_notification())
            .await
            .expect("in time")
            .is_none(),
        "the end of the connection ends the notifications"
    );
    assert!(matches!(
        client.call("echo", json!({})).await,
        Err(ApiError::Closed { .. })
    ));
}

#[tokio::test]
async fn connecting_without_a_daemon_says_so() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("macs.sock");
    let err = match ApiClient::connect(&path).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("connected to nothing"),
    };
    assert!(err.contains("no macs-bridge daemon at"), "{err}");
    assert!(err.contains("is it running?"), "{err}");
}

#[tokio::test]
async fn a_client_that_goes_away_mid_call_is_fine() {
    let f = Fixture::start().await;
    let mut c = Raw::connect(&f.path).await;
    c.send(json!({"jsonrpc":"2.0","id":1,"method":"hold","params":{}}))
        .await;
    common_wait(|| f.calls("hold").len() == 1).await;
    drop(c);
    common_wait(|| !f.seen.lock().expect("lock").gone.is_empty()).await;
    assert_eq!(
        f.release_held().await,
        1,
        "answering a gone client is harmless"
    );

    // A client that sends and closes its side still gets its answers.
    let s = UnixStream::connect(&f.path).await.expect("connect");
    let (r, mut w) = s.into_split();
    w.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{\"a\":1}}\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"hold\"}\n")
        .await
        .expect("write");
    w.shutdown().await.expect("half-close");
    let mut r = BufReader::new(r);
    let mut line = String::new();
    timeout(DEADLINE, r.read_line(&mut line))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(
        serde_json::from_str::<Value>(&line).expect("json")["result"],
        json!({"a":1})
    );
    common_wait(|| f.calls("hold").len() == 2).await;
    f.release_held().await;
    line.clear();
    timeout(DEADLINE, r.read_line(&mut line))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(
        serde_json::from_str::<Value>(&line).expect("json")["result"],
        json!({"late":true})
    );
    line.clear();
    let n = timeout(DEADLINE, r.read_line(&mut line))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(n, 0, "then the server closes the connection");

    let mut c = Raw::connect(&f.path).await;
    c.works(3).await;
    f.stop().await;
}

/// Polls `f` until it is true, with a deadline.
async fn common_wait(mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `macs-bridge chat --state-dir DIR` with `input` on standard input.
async fn chat(dir: &Path, input: &str) -> std::process::Output {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_macs-bridge"))
        .arg("chat")
        .arg("--state-dir")
        .arg(dir)
        .env_remove("MACS_SESSION")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start chat");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).await.expect("write");
    drop(stdin);
    timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("chat exits at the end of its input")
        .expect("chat output")
}

#[tokio::test]
async fn chat_with_piped_input_sends_each_line_and_fails_on_an_error() {
    let f = Fixture::start().await;
    let dir = f.path.parent().expect("dir").to_owned();

    let out = chat(&dir, "@codex hi there\n").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("sent #1 to codex; queued for codex"),
        "{stdout}"
    );
    assert_eq!(f.calls("hello"), vec![json!({"name": "person"})]);
    assert_eq!(
        f.calls("chat.send"),
        vec![json!({"content": "@codex hi there"})]
    );

    let out = chat(&dir, "@bob are you there?\n!@codex hurry\n").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr.contains("line 1: unknown agent \"bob\""), "{stderr}");
    // The line after the error still went.
    let sends = f.calls("chat.send");
    assert_eq!(
        sends.last(),
        Some(&json!({"content": "@codex hurry", "urgent": true}))
    );

    let out = chat(&dir, "/frobnicate\n").await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown command /frobnicate"));
    f.stop().await;

    let out = chat(&dir, "hello\n").await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no macs-bridge daemon at"), "{stderr}");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_told_so_and_the_others_go_on() {
    let f = Fixture::start_with(|o| o.max_connections = 2).await;
    let mut a = Raw::connect(&f.path).await;
    let mut b = Raw::connect(&f.path).await;
    a.works(1).await;
    b.works(2).await;
    let mut c = Raw::connect(&f.path).await;
    let r = c.recv().await;
    assert_eq!(error_code(&r), code::UNAVAILABLE, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("too many API connections")),
        "{r}"
    );
    a.works(3).await;
    // One closes: room for a new one.
    drop(b);
    common_wait(|| !f.seen.lock().expect("lock").gone.is_empty()).await;
    let mut d = Raw::connect(&f.path).await;
    d.works(4).await;
    f.stop().await;
}
