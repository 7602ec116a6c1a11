//! `macs-bridge mcp --as NAME` as an agent CLI runs it: the test starts the server with piped
//! standard input and output and speaks raw MCP JSON-RPC to it, one JSON object per line.
//!
//! The first tests need no daemon (the handshake, the tool list, errors, the snippets) or stand
//! in for it with a scripted socket (the API calls each tool makes). The last ones run the real
//! daemon on a private tmux server with scripted agents: a message lands in another agent's pane
//! naming its sender, and a scripted controller answers `ask_controller`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{sim_command, sim_inputs, wait_for, Daemon, TmuxServer};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(30);
/// How long any answer of the MCP server may take when nothing waits on purpose: a tool call
/// without a daemon must come back well within it, never hang.
const ANSWER: Duration = Duration::from_secs(10);
/// The protocol version Claude Code, Codex and Gemini CLI send today.
const PROTOCOL: &str = "2025-06-18";

/// A running `macs-bridge mcp`, spoken to over its standard input and output.
struct Mcp {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    next_id: u64,
}

impl Mcp {
    fn start(name: &str, state_dir: &Path) -> Mcp {
        let mut child = Command::new(env!("CARGO_BIN_EXE_macs-bridge"))
            .args(["mcp", "--as", name, "--state-dir"])
            .arg(state_dir)
            .env("MACS_BRIDGE_LOG", "macs_bridge=debug,rmcp=info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start macs-bridge mcp");
        let stdin = child.stdin.take().expect("stdin");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().expect("stderr");
        let se = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = se.lock().expect("lock");
                s.push_str(&line);
                s.push('\n');
            }
        });
        Mcp {
            child,
            stdin,
            lines,
            stderr,
            next_id: 1,
        }
    }

    /// Starts it and does the handshake (`initialize`, then `notifications/initialized`).
    fn ready(name: &str, state_dir: &Path) -> Mcp {
        let mut mcp = Mcp::start(name, state_dir);
        let init = mcp.initialize(PROTOCOL);
        assert_eq!(init["protocolVersion"], PROTOCOL, "{init}");
        mcp
    }

    fn send(&mut self, v: &Value) {
        let mut line = v.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .and_then(|_| self.stdin.flush())
            .expect("write to the MCP server");
    }

    /// Sends a request and waits (at most `limit`) for the response with its id. Every line
    /// on standard output must be JSON-RPC: nothing else may be printed there.
    fn request_within(&mut self, method: &str, params: Value, limit: Duration) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no answer to {method} within {limit:?}; stderr:\n{}",
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "the MCP server closed its output during {method}; stderr:\n{}",
                    self.stderr()
                ),
            };
            let msg: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not JSON on the MCP server's stdout ({e}): {line}"));
            assert_eq!(msg["jsonrpc"], "2.0", "{msg}");
            if msg["id"] == json!(id) && msg.get("method").is_none() {
                return msg;
            }
        }
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.request_within(method, params, ANSWER)
    }

    /// A request that must succeed; its result.
    fn ok(&mut self, method: &str, params: Value) -> Value {
        let r = self.request(method, params);
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"].clone()
    }

    fn initialize(&mut self, version: &str) -> Value {
        let result = self.ok(
            "initialize",
            json!({
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": {"name": "mcp-stdio-test", "version": "0.0.1"}
            }),
        );
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        result
    }

    /// `tools/call`; its result (a tool error is a result with `isError: true`).
    fn call(&mut self, tool: &str, args: Value) -> Value {
        self.call_within(tool, args, ANSWER)
    }

    fn call_within(&mut self, tool: &str, args: Value, limit: Duration) -> Value {
        let r = self.request_within(
            "tools/call",
            json!({"name": tool, "arguments": args}),
            limit,
        );
        assert!(r.get("error").is_none(), "tools/call {tool}: {r}");
        r["result"].clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of a tool result.
fn text(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn is_error(result: &Value) -> bool {
    result["isError"] == json!(true)
}

/// A tool error whose text holds `want`.
#[track_caller]
fn assert_tool_error(result: &Value, want: &str) {
    assert!(is_error(result), "expected a tool error: {result}");
    let t = text(result);
    assert!(t.contains(want), "{want:?} not in {t:?}");
}

#[track_caller]
fn assert_tool_ok(result: &Value) -> String {
    assert!(!is_error(result), "expected success: {result}");
    text(result)
}

// --- no daemon -------------------------------------------------------------------------------

#[test]
fn initialize_then_tools_list_shows_the_tools_and_their_schemas() {
    let state = tempfile::tempdir().expect("dir");
    for version in [PROTOCOL, "2025-11-25", "2025-03-26"] {
        let mut mcp = Mcp::start("claude", state.path());
        let init = mcp.initialize(version);
        assert_eq!(init["protocolVersion"], version, "{init}");
        assert_eq!(init["serverInfo"]["name"], "macs-bridge");
        assert_eq!(init["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(init["capabilities"]["tools"].is_object(), "{init}");
        let instructions = init["instructions"].as_str().expect("instructions");
        assert!(instructions.contains("`claude`"), "{instructions}");
    }

    let mut mcp = Mcp::ready("claude", state.path());
    assert_eq!(mcp.ok("ping", json!({})), json!({}));
    let list = mcp.ok("tools/list", json!({}));
    let tools = list["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "send_message",
            "list_agents",
            "read_messages",
            "ask_controller",
            "get_request",
            "handoff",
            "assign",
            "get_task"
        ]
    );
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .expect("tool")
    };
    for t in tools {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(
            t["description"].as_str().is_some_and(|d| d.len() > 20),
            "{t}"
        );
    }
    let send = tool("send_message");
    assert_eq!(send["inputSchema"]["required"], json!(["to", "content"]));
    assert_eq!(send["inputSchema"]["properties"]["to"]["type"], "string");
    assert_eq!(
        send["inputSchema"]["properties"]["content"]["type"],
        "string"
    );
    assert_eq!(tool("list_agents")["inputSchema"]["properties"], json!({}));
    assert_eq!(tool("list_agents")["annotations"]["readOnlyHint"], true);
    let read = tool("read_messages");
    assert_eq!(read["inputSchema"]["properties"]["since"]["type"], "string");
    assert!(read["inputSchema"].get("required").is_none());
    let ask = tool("ask_controller");
    assert_eq!(ask["inputSchema"]["required"], json!(["question"]));
    let wait = &ask["inputSchema"]["properties"]["wait_seconds"];
    assert_eq!(wait["type"], "integer");
    assert_eq!(
        (wait["minimum"].clone(), wait["maximum"].clone()),
        (json!(0), json!(600))
    );
    assert_eq!(
        tool("get_request")["inputSchema"]["required"],
        json!(["id"])
    );
}

#[test]
fn without_a_daemon_every_tool_says_so_at_once_and_the_server_keeps_answering() {
    let state = tempfile::tempdir().expect("dir");
    let mut mcp = Mcp::ready("claude", state.path());
    let socket = state.path().join("macs.sock");
    let calls = [
        ("send_message", json!({"to": "codex", "content": "hello"})),
        ("list_agents", json!({})),
        ("read_messages", json!({})),
        (
            "ask_controller",
            json!({"question": "May I?", "wait_seconds": 600}),
        ),
        ("get_request", json!({"id": "20261121-000748-7fe6"})),
        ("handoff", json!({"to": "codex", "task": "count the files"})),
        ("assign", json!({"to": "codex", "task": "count the files"})),
        ("get_task", json!({"id": "m-20261121-000748-000001"})),
    ];
    for (tool, args) in &calls {
        let r = mcp.call(tool, args.clone());
        assert_tool_error(&r, "daemon is not running");
        assert_tool_error(&r, &socket.display().to_string());
        assert_tool_error(&r, &format!("{tool} failed"));
    }
    // A socket file left behind by a daemon that died is the same.
    drop(UnixListener::bind(&socket).expect("bind"));
    assert!(socket.exists());
    let r = mcp.call("list_agents", json!({}));
    assert_tool_error(&r, "daemon is not running");
    // Still serving.
    assert_eq!(
        mcp.ok("tools/list", json!({}))["tools"]
            .as_array()
            .map(Vec::len),
        Some(8)
    );
}

#[test]
fn bad_arguments_are_tool_errors_and_an_unknown_tool_is_a_protocol_error() {
    let state = tempfile::tempdir().expect("dir");
    let mut mcp = Mcp::ready("claude", state.path());
    let cases = [
        (
            "send_message",
            json!({"content": "hello"}),
            "missing field `to`",
        ),
        (
            "send_message",
            json!({"to": "codex"}),
            "missing field `content`",
        ),
        (
            "send_message",
            json!({"to": "", "content": "hello"}),
            "`to` is empty",
        ),
        (
            "send_message",
            json!({"to": "codex", "content": "x".repeat(64 * 1024 + 1)}),
            "too large: 65537 bytes, the limit is 65536 bytes",
        ),
        (
            "send_message",
            json!({"to": ["codex"], "content": "x"}),
            "invalid type",
        ),
        ("ask_controller", json!({}), "missing field `question`"),
        (
            "ask_controller",
            json!({"question": "May I?", "wait_seconds": 601}),
            "at most 600",
        ),
        (
            "ask_controller",
            json!({"question": "May I?", "wait_seconds": -5}),
            "from 0 to 600",
        ),
        ("get_request", json!({}), "missing field `id`"),
        (
            "read_messages",
            json!({"since": {"id": 1}}),
            "`since` must be",
        ),
    ];
    for (tool, args, want) in cases {
        let r = mcp.call(tool, args);
        assert_tool_error(&r, want);
    }
    // No arguments at all is a missing field too, not a crash.
    let r = mcp.request("tools/call", json!({"name": "send_message"}));
    assert_tool_error(&r["result"], "missing field");

    let r = mcp.request("tools/call", json!({"name": "rm_rf", "arguments": {}}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown tool `rm_rf`")),
        "{r}"
    );
    // A line that is not JSON does not end the session either.
    mcp.stdin.write_all(b"{not json\n").expect("write");
    assert_eq!(mcp.ok("ping", json!({})), json!({}));
    let r = mcp.call("list_agents", json!({}));
    assert_tool_error(&r, "not running");
}

#[test]
fn a_bad_name_is_refused_at_start() {
    let state = tempfile::tempdir().expect("dir");
    for name in ["all", "two words", ""] {
        let out = Command::new(env!("CARGO_BIN_EXE_macs-bridge"))
            .args(["mcp", "--as", name, "--state-dir"])
            .arg(state.path())
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{name:?}");
        assert!(out.stdout.is_empty(), "nothing on the protocol's stream");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--as"), "{err}");
    }
}

#[test]
fn print_config_shows_the_three_snippets() {
    let state = tempfile::tempdir().expect("dir");
    let dir = state.path().to_string_lossy().into_owned();
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_macs-bridge")).expect("exe");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_macs-bridge"))
            .args([
                "mcp",
                "--print-config",
                "--as",
                "worker",
                "--state-dir",
                &dir,
            ])
            .args(extra)
            .output()
            .expect("run");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let args = json!(["mcp", "--as", "worker", "--state-dir", dir]);

    let all = run(&[]);
    for want in [
        "# Claude Code: .mcp.json",
        "# Codex: ~/.codex/config.toml",
        "[mcp_servers.macs]",
        "# Gemini CLI: .gemini/settings.json",
    ] {
        assert!(all.contains(want), "{want:?} not in:\n{all}");
    }

    let claude: Value = serde_json::from_str(&run(&["--agent", "claude-code"])).expect("JSON");
    let server = &claude["mcpServers"]["macs"];
    assert_eq!(server["type"], "stdio");
    assert_eq!(
        std::fs::canonicalize(server["command"].as_str().expect("command")).expect("exists"),
        exe
    );
    assert_eq!(server["args"], args);

    let gemini: Value = serde_json::from_str(&run(&["--agent", "gemini"])).expect("JSON");
    assert_eq!(gemini["mcpServers"]["macs"]["args"], args);
    assert_eq!(gemini["mcpServers"]["macs"]["timeout"], 660_000);

    let codex = run(&["--agent", "codex"]);
    let lines: Vec<&str> = codex.lines().collect();
    assert_eq!(lines[0], "[mcp_servers.macs]");
    assert!(lines[1].starts_with("command = \"/"), "{codex}");
    assert_eq!(
        lines[2],
        format!(
            "args = [\"mcp\", \"--as\", \"worker\", \"--state-dir\", {:?}]",
            dir
        )
    );
    assert_eq!(lines[3], "tool_timeout_sec = 660");

    // The snippet's command line really starts a server.
    let command = server["command"].as_str().expect("command");
    let mut child = Command::new(command)
        .args(["mcp", "--as", "worker", "--state-dir", &dir])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":PROTOCOL,"capabilities":{},"clientInfo":{"name":"t","version":"1"}}})
    )
    .expect("write");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    let first = String::from_utf8_lossy(&out.stdout);
    let reply: Value = serde_json::from_str(first.lines().next().expect("a reply")).expect("JSON");
    assert_eq!(reply["result"]["serverInfo"]["name"], "macs-bridge");
    // Standard input closed: the server ends, cleanly.
    assert!(out.status.success(), "{out:?}");
}

// --- a scripted daemon: the API calls behind each tool ------------------------------------------

/// Stands in for the daemon on `<dir>/macs.sock`: answers per the API's method table and keeps
/// every request it reads.
struct FakeDaemon {
    seen: Arc<Mutex<Vec<Value>>>,
}

impl FakeDaemon {
    fn start(dir: &Path) -> FakeDaemon {
        let listener = UnixListener::bind(dir.join("macs.sock")).expect("bind");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut out = stream.try_clone().expect("clone");
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        let req: Value = serde_json::from_str(&line).expect("JSON request");
                        s.lock().expect("lock").push(req.clone());
                        let reply = match fake_answer(&req["method"], &req["params"]) {
                            Ok(result) => json!({"jsonrpc":"2.0","id":req["id"],"result":result}),
                            Err((code, message)) => json!({"jsonrpc":"2.0","id":req["id"],
                                "error":{"code":code,"message":message}}),
                        };
                        if writeln!(out, "{reply}").is_err() {
                            break;
                        }
                    }
                });
            }
        });
        FakeDaemon { seen }
    }

    fn requests(&self) -> Vec<Value> {
        self.seen.lock().expect("lock").clone()
    }
}

fn fake_answer(method: &Value, p: &Value) -> Result<Value, (i64, String)> {
    match method.as_str().unwrap_or_default() {
        "hello" => Ok(json!({"name": p["name"], "session": "macs"})),
        "chat.send" if p["to"] == "zed" => Err((-32001, "unknown recipient: zed".into())),
        "chat.send" => {
            Ok(json!({"id": "m7", "to": p["to"], "recipients": [p["to"]], "queued": [p["to"]]}))
        }
        "agents.list" => Ok(json!({"agents": [
            {"name": "claude", "pane": "%1", "profile": "claude-code", "state": "busy", "queued": 0, "paused": false},
            {"name": "codex", "pane": "%2", "profile": "codex", "state": "idle", "queued": 1, "paused": true}
        ]})),
        "chat.read" => Ok(json!({"messages": [
            {"id": "m3", "ts": "2026-11-21T00:07:48Z", "from": "codex", "to": "claude", "content": "tests pass", "urgent": false}
        ]})),
        "request.ask" => Ok(
            json!({"id": "r1", "from": p["from"], "question": p["question"],
            "status": "answered", "answer": "Yes, add the cache.", "answered_by": "pane"}),
        ),
        "request.get" => Ok(
            json!({"id": p["id"], "from": "claude", "question": "Should I?", "status": "pending"}),
        ),
        other => Err((-32601, format!("method not found: {other:?}"))),
    }
}

#[test]
fn each_tool_makes_its_api_call_under_the_agents_name() {
    let state = tempfile::tempdir().expect("dir");
    let daemon = FakeDaemon::start(state.path());
    let mut mcp = Mcp::ready("claude", state.path());

    let sent = assert_tool_ok(&mcp.call(
        "send_message",
        json!({"to": "codex", "content": "run the tests"}),
    ));
    assert!(sent.contains("Sent to codex (message m7)"), "{sent}");
    assert!(sent.contains("Queued for codex"), "{sent}");
    let agents = assert_tool_ok(&mcp.call("list_agents", json!({})));
    assert_eq!(
        agents,
        "claude: busy, 0 queued, pane %1, profile claude-code\ncodex: idle, 1 queued, paused, pane %2, profile codex"
    );
    let read = assert_tool_ok(&mcp.call("read_messages", json!({"since": "m2"})));
    assert_eq!(read, "[m3] 2026-11-21T00:07:48Z codex → claude: tests pass");
    let r = mcp.call(
        "ask_controller",
        json!({"question": "Should I add a cache?", "wait_seconds": 5}),
    );
    assert_eq!(
        assert_tool_ok(&r),
        "The controller answered (request r1):\nYes, add the cache."
    );
    assert_eq!(r["structuredContent"]["status"], "answered");
    let got = assert_tool_ok(&mcp.call("get_request", json!({"id": "r1"})));
    assert!(got.starts_with("Request r1: pending."), "{got}");
    assert_tool_error(
        &mcp.call("send_message", json!({"to": "zed", "content": "hi"})),
        "send_message failed: unknown recipient: zed",
    );

    let requests = daemon.requests();
    let calls: Vec<(String, Value)> = requests
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default().to_string(),
                r["params"].clone(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("hello".into(), json!({"name": "claude"})),
            (
                "chat.send".into(),
                json!({"from": "claude", "to": "codex", "content": "run the tests"})
            ),
            ("agents.list".into(), json!({})),
            ("chat.read".into(), json!({"name": "claude", "since": "m2"})),
            (
                "request.ask".into(),
                json!({"from": "claude", "question": "Should I add a cache?", "wait_seconds": 5})
            ),
            ("request.get".into(), json!({"id": "r1"})),
            (
                "chat.send".into(),
                json!({"from": "claude", "to": "zed", "content": "hi"})
            ),
        ],
        "one hello, then each tool's call on the same connection"
    );
    for r in &requests {
        assert_eq!(r["jsonrpc"], "2.0");
        assert!(r["id"].is_u64(), "{r}");
    }
}

// --- the real daemon, real tmux panes --------------------------------------------------------
//
// These need the daemon's core to serve the API methods (`chat.send`, `agents.list`,
// `chat.read`, `request.ask`, `request.get`).

/// An agent that, for every message it gets, tells `reviewer` it is done (a MESSAGE block; its
/// text is its own, so no echo rule can take it for something the bridge typed).
const WORKER_REPLIES: &str = "on-input
busy 300ms
message reviewer
Done: the tests pass ($N).
end
end
";

/// An agent that takes its inputs and answers OK.
const QUIET: &str = "on-input
busy 200ms
say OK
end
";

const CONTROLLER: &str = "on-input
think 500ms
respond
WORKER INSTRUCTIONS:
Go ahead with: $REQUEST
NOTES:
answered by the scripted controller
end
end
";

/// A session `macs` whose first pane runs `first` (labelled `first_name`) and, split beside it,
/// `second` (labelled `second_name`), both sim-agents.
fn two_agents(first_name: &str, first: &str, second_name: &str, second: &str) -> TmuxServer {
    let server = TmuxServer::start("macs", "sleep 600");
    let cmd = sim_command(&server, first_name, first, "");
    server.ok(&["respawn-pane", "-k", "-t", "macs", &cmd]);
    server.ok(&["set-option", "-p", "-t", "macs", "@macs-agent", first_name]);
    let cmd = sim_command(&server, second_name, second, "");
    server.ok(&["split-window", "-h", "-t", "macs", &cmd]);
    server.ok(&[
        "set-option",
        "-p",
        "-t",
        "macs:0.1",
        "@macs-agent",
        second_name,
    ]);
    server
}

fn wait_for_socket(state: &Path) -> PathBuf {
    let socket = state.join("macs.sock");
    wait_for(
        "the daemon's API socket (the core must serve the API)",
        LONG,
        || {
            std::os::unix::net::UnixStream::connect(&socket)
                .ok()
                .map(|_| ())
        },
    );
    socket
}

#[test]
fn send_message_lands_in_the_other_agents_pane_naming_its_sender() {
    let server = two_agents("worker", WORKER_REPLIES, "reviewer", QUIET);
    let state = tempfile::tempdir().expect("dir");
    let daemon = Daemon::start_manual(&server, state.path());
    let mut mcp = Mcp::ready("reviewer", state.path());

    let agents = mcp.call("list_agents", json!({}));
    let listed = assert_tool_ok(&agents);
    assert!(
        listed.contains("worker:") && listed.contains("reviewer:"),
        "{listed}"
    );
    let names: Vec<&str> = agents["structuredContent"]["agents"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"worker"), "{agents}");

    let sent = mcp.call(
        "send_message",
        json!({"to": "worker", "content": "please run the tests"}),
    );
    assert_tool_ok(&sent);
    assert_eq!(sent["structuredContent"]["recipients"], json!(["worker"]));

    // Typed into the worker's prompt once, naming who sent it.
    let got = wait_for("the message in the worker", LONG, || {
        let v = sim_inputs(&server, "worker");
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(got, ["[from reviewer] please run the tests"]);
    assert!(server
        .capture("macs:0.0")
        .contains("[from reviewer] please run the tests"));

    // The worker answers with a MESSAGE block: the reviewer reads it through MCP (and gets it
    // typed into its own pane too).
    let read = wait_for("the worker's reply in read_messages", LONG, || {
        let r = mcp.call("read_messages", json!({}));
        let t = assert_tool_ok(&r);
        t.contains("worker → reviewer").then_some(t)
    });
    assert!(read.contains("Done: the tests pass (1)."), "{read}");
    let typed = wait_for("the reply in the reviewer's pane", LONG, || {
        let v = sim_inputs(&server, "reviewer");
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(typed, ["[from worker] Done: the tests pass (1)."]);

    // A name nobody has is the daemon's clear error, as a tool error.
    let r = mcp.call("send_message", json!({"to": "nobody", "content": "hello?"}));
    assert_tool_error(&r, "nobody");
    // The server is still there.
    assert_tool_ok(&mcp.call("list_agents", json!({})));
    drop(mcp);
    daemon.stop();
}

#[test]
fn ask_controller_is_answered_by_the_scripted_controller() {
    let server = two_agents("worker", QUIET, "controller", CONTROLLER);
    let state = tempfile::tempdir().expect("dir");
    let daemon = Daemon::start(&server, state.path(), &["--mode", "auto", "--no-heuristic"]);
    wait_for_socket(state.path());
    let mut mcp = Mcp::ready("worker", state.path());

    // Waiting: the answer comes back in the tool result.
    let r = mcp.call_within(
        "ask_controller",
        json!({"question": "Should I add a cache?", "wait_seconds": 30}),
        Duration::from_secs(60),
    );
    let answer = assert_tool_ok(&r);
    assert!(answer.starts_with("The controller answered"), "{answer}");
    assert!(
        answer.contains("Go ahead with: Should I add a cache?"),
        "{answer}"
    );
    assert!(
        !answer.contains("answered by the scripted controller"),
        "NOTES stay out: {answer}"
    );
    let id = r["structuredContent"]["id"]
        .as_str()
        .expect("a request id")
        .to_string();
    // The controller got the question once.
    let prompts = wait_for("the controller's prompt", LONG, || {
        let v = sim_inputs(&server, "controller");
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(prompts.len(), 1, "{prompts:?}");
    assert!(
        prompts[0].contains("Should I add a cache?"),
        "{}",
        prompts[0]
    );

    let got = mcp.call("get_request", json!({"id": id}));
    assert_tool_ok(&got);
    assert_eq!(got["structuredContent"]["status"], "answered", "{got}");

    // Not waiting: the request id now, the answer later through get_request.
    let r = mcp.call(
        "ask_controller",
        json!({"question": "Which port should I use?", "wait_seconds": 0}),
    );
    let t = assert_tool_ok(&r);
    let id = r["structuredContent"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    if r["structuredContent"]["status"] == "pending" {
        assert!(t.contains("get_request"), "{t}");
    }
    let answered = wait_for("the second answer", LONG, || {
        let g = mcp.call("get_request", json!({"id": id}));
        (g["structuredContent"]["status"] == "answered").then_some(g)
    });
    assert!(
        text(&answered).contains("Go ahead with: Which port should I use?"),
        "{answered}"
    );

    // An id nobody gave is the daemon's clear error.
    assert_tool_error(
        &mcp.call("get_request", json!({"id": "no-such-request"})),
        "get_request failed",
    );
    drop(mcp);
    daemon.stop();
}

#[test]
fn handoff_returns_the_workers_reply_and_assign_types_it_into_the_caller() {
    let worker = "on-input\nbusy 300ms\nsay Counted: 42 files.\nend\n";
    let server = two_agents("worker", worker, "boss", QUIET);
    let state = tempfile::tempdir().expect("dir");
    let daemon = Daemon::start_manual(&server, state.path());
    let mut mcp = Mcp::ready("boss", state.path());
    let r = mcp.call_within(
        "handoff",
        json!({"to": "worker", "task": "count the files", "wait_seconds": 30}),
        Duration::from_secs(60),
    );
    let text = assert_tool_ok(&r);
    assert!(text.starts_with("worker replied"), "{text}");
    assert!(text.ends_with("Counted: 42 files."), "{text}");
    assert_eq!(
        sim_inputs(&server, "worker"),
        ["[from boss] count the files"]
    );
    assert!(
        sim_inputs(&server, "boss").is_empty(),
        "a handoff's reply is not typed"
    );

    let r = mcp.call("assign", json!({"to": "worker", "task": "count again"}));
    assert!(assert_tool_ok(&r).contains("[reply from worker]"));
    let typed = wait_for("the reply typed into the boss", LONG, || {
        let v = sim_inputs(&server, "boss");
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(typed, ["[reply from worker] Counted: 42 files."]);
    drop(mcp);
    daemon.stop();
}
