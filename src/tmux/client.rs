//! The long-lived control-mode client: one `tmux [-L NAME|-S PATH] -u -C attach-session -t =NAME`
//! process over pipes per watched session (never `-CC`, which wants a terminal; never a bare
//! `tmux -C`, which would create a session).
//!
//! It owns the process, writes one command per line, matches replies first-in-first-out on the
//! `%begin … 1` blocks, and hands every notification to its consumer through an unbounded
//! channel: the reader never waits for a consumer, because with only control clients attached a
//! lagging reader makes tmux stop reading the pane, which would freeze the agent in it.
//!
//! On `%exit` or end of file it fails the pending commands, reports [`ClientEvent::Detached`],
//! backs off and attaches again once the session exists, then reports
//! [`ClientEvent::Attached`] so consumers resynchronise. It never interprets pane contents.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, trace, warn};

use super::command::Command;
use super::control::{Event, Parser, Reply};
use super::oneshot::{Tmux, TmuxError};

/// How the client attaches and behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub tmux: Tmux,
    /// The session to attach to (matched exactly).
    pub session: String,
    /// How long a command may wait for its reply.
    pub command_timeout: Duration,
    /// Attach again after the session went away and came back.
    pub reconnect: bool,
    /// `pause-after` in seconds: tmux pauses a pane's output to this client instead of
    /// stalling the pane when the client falls that far behind. `None` leaves it off.
    pub pause_after: Option<u32>,
}

impl ClientOptions {
    pub fn new(tmux: Tmux, session: impl Into<String>) -> ClientOptions {
        ClientOptions {
            tmux,
            session: session.into(),
            command_timeout: Duration::from_secs(10),
            reconnect: true,
            pause_after: Some(5),
        }
    }
}

/// What the client reports to its consumer, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Attached (the first time, or again after a loss): views must be rebuilt.
    Attached { generation: u64 },
    /// A notification from tmux (never a reply block).
    Tmux(Event),
    /// The reply to the command with this sequence number has been read. Comes in stream
    /// order, so a consumer can tell which notifications came before a command's reply.
    Replied { seq: u64 },
    /// The connection was lost; commands fail until the next `Attached`.
    Detached { reason: String },
    /// The client stopped for good (shut down, or lost with reconnect off).
    Closed,
}

/// Errors of the control client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Tmux(#[from] TmuxError),
    #[error("tmux session {session:?} does not exist (on {socket}); start it first, e.g. `tmux {flags}new-session -d -s {session}`")]
    NoSession {
        session: String,
        socket: String,
        flags: String,
    },
    #[error("could not attach to tmux session {session:?}: {reason}")]
    AttachFailed { session: String, reason: String },
    #[error("not attached to tmux (the session is gone or tmux exited)")]
    Detached,
    #[error("tmux did not answer `{command}` within {after:?}")]
    Timeout { command: String, after: Duration },
    #[error("tmux refused `{command}`: {message}")]
    Command { command: String, message: String },
}

type ReplyTx = oneshot::Sender<Reply>;

/// A line to write and the reply slot of each command on it, in order.
struct Pending {
    line: String,
    slots: Vec<(u64, ReplyTx)>,
}

struct Conn {
    generation: u64,
    lines: mpsc::UnboundedSender<Pending>,
}

struct Inner {
    opts: ClientOptions,
    conn: Mutex<Option<Conn>>,
    next_seq: Mutex<u64>,
    cancel: CancellationToken,
}

/// A handle on the control client; cheap to clone. Dropping every handle does not stop it:
/// call [`Client::shutdown`].
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// A reply with the sequence number that [`ClientEvent::Replied`] will carry for it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub seq: u64,
    pub lines: Vec<String>,
}

/// The reply to a command sent without waiting for it ([`Client::submit`]). It is there to
/// [`Later::take`] from the moment its [`ClientEvent::Replied`] comes.
#[derive(Debug)]
pub struct Later {
    pub seq: u64,
    command: String,
    rx: oneshot::Receiver<Reply>,
}

impl Later {
    /// The reply, once its `Replied` event came (`None` before, and if the connection was
    /// lost: it never will).
    pub fn take(&mut self) -> Option<Result<Vec<String>, ClientError>> {
        let reply = self.rx.try_recv().ok()?;
        Some(answer(self.seq, &self.command, reply).map(|a| a.lines))
    }

    async fn wait(self, after: Duration) -> Result<Answer, ClientError> {
        let reply = match tokio::time::timeout(after, self.rx).await {
            Err(_) => {
                return Err(ClientError::Timeout {
                    command: self.command,
                    after,
                })
            }
            Ok(Err(_)) => return Err(ClientError::Detached),
            Ok(Ok(reply)) => reply,
        };
        answer(self.seq, &self.command, reply)
    }
}

fn answer(seq: u64, command: &str, reply: Reply) -> Result<Answer, ClientError> {
    if reply.ok {
        Ok(Answer {
            seq,
            lines: reply.lines,
        })
    } else {
        Err(ClientError::Command {
            command: command.to_string(),
            message: reply.lines.join("\n"),
        })
    }
}

impl Client {
    /// Checks tmux and the session, attaches, and starts the reader and the supervisor that
    /// re-attaches. Events arrive on the returned receiver, starting with `Attached`.
    pub async fn connect(
        opts: ClientOptions,
    ) -> Result<(Client, mpsc::UnboundedReceiver<ClientEvent>), ClientError> {
        opts.tmux.check_version().await?;
        if !opts.tmux.has_session(&opts.session).await? {
            return Err(no_session(&opts));
        }
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            opts,
            conn: Mutex::new(None),
            next_seq: Mutex::new(0),
            cancel: CancellationToken::new(),
        });
        let first = spawn_conn(&inner, 1, events_tx.clone())
            .map_err(|reason| attach_failed(&inner.opts, reason))?;
        let client = Client {
            inner: inner.clone(),
        };
        // The first command proves the attach worked (tmux answers a failed attach with a
        // flags-0 %error and exits, which fails this command).
        let probe = Command::display_message(None, "#{session_name}");
        let probe_result = client.run(&probe).await;
        let done = first.done;
        if let Err(e) = probe_result {
            client.shutdown();
            let reason = match done.await {
                Ok(r) => r,
                Err(_) => e.to_string(),
            };
            return Err(attach_failed(&inner.opts, reason));
        }
        tokio::spawn(supervise(inner, events_tx, done));
        Ok((client, events_rx))
    }

    /// The session this client is attached to.
    pub fn session(&self) -> &str {
        &self.inner.opts.session
    }

    /// The argv side of the same server, for one-shot calls.
    pub fn tmux(&self) -> &Tmux {
        &self.inner.opts.tmux
    }

    /// Sends one command and waits for its reply; `%error` becomes [`ClientError::Command`].
    pub async fn run(&self, cmd: &Command) -> Result<Vec<String>, ClientError> {
        self.run_seq(cmd).await.map(|a| a.lines)
    }

    /// As [`Client::run`], also returning the sequence number of the reply so the caller can
    /// place it among the notifications (see [`ClientEvent::Replied`]).
    pub async fn run_seq(&self, cmd: &Command) -> Result<Answer, ClientError> {
        let mut answers = self.run_list(std::slice::from_ref(cmd)).await?;
        answers.pop().ok_or(ClientError::Detached)
    }

    /// Runs commands written in one write, a line each (not `a ; b`: after a refusal tmux
    /// skips the rest of such a list and sends no reply for it, which would put every later
    /// reply in the wrong slot). tmux reads a short write at once and runs the lines it read
    /// one after the other, reading no pane output in between. One answer per command, in
    /// order; the first refusal is the error.
    pub async fn run_list(&self, cmds: &[Command]) -> Result<Vec<Answer>, ClientError> {
        let after = self.inner.opts.command_timeout;
        let mut answers = Vec::with_capacity(cmds.len());
        for later in self.submit(cmds)? {
            answers.push(later.wait(after).await?);
        }
        Ok(answers)
    }

    /// Sends commands in one write (see [`Client::run_list`]) without waiting for the replies.
    pub fn submit(&self, cmds: &[Command]) -> Result<Vec<Later>, ClientError> {
        let line = cmds
            .iter()
            .map(Command::line)
            .collect::<Vec<_>>()
            .join("\n");
        let mut slots = Vec::with_capacity(cmds.len());
        let mut laters = Vec::with_capacity(cmds.len());
        for cmd in cmds {
            let (tx, rx) = oneshot::channel();
            let seq = next_seq(&self.inner);
            slots.push((seq, tx));
            laters.push(Later {
                seq,
                command: cmd.line().to_string(),
                rx,
            });
        }
        let conn = lock(&self.inner.conn);
        let conn = conn.as_ref().ok_or(ClientError::Detached)?;
        trace!(line, "tmux command");
        conn.lines
            .send(Pending { line, slots })
            .map_err(|_| ClientError::Detached)?;
        Ok(laters)
    }

    /// Whether a connection is up right now.
    pub fn is_attached(&self) -> bool {
        lock(&self.inner.conn).is_some()
    }

    /// Detaches (closes tmux's standard input) and stops re-attaching. Idempotent.
    pub fn shutdown(&self) {
        self.inner.cancel.cancel();
        lock(&self.inner.conn).take();
    }
}

fn next_seq(inner: &Inner) -> u64 {
    let mut n = lock(&inner.next_seq);
    *n += 1;
    *n
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked while holding it; the data (a
    // sequence counter or a sender) is still sound.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn socket_words(opts: &ClientOptions) -> (String, String) {
    use super::oneshot::Socket;
    match &opts.tmux.socket {
        Socket::Default => ("the default tmux server".into(), String::new()),
        Socket::Name(n) => (format!("socket name {n:?}"), format!("-L {n} ")),
        Socket::Path(p) => (
            format!("socket {}", p.display()),
            format!("-S {} ", p.display()),
        ),
    }
}

fn no_session(opts: &ClientOptions) -> ClientError {
    let (socket, flags) = socket_words(opts);
    ClientError::NoSession {
        session: opts.session.clone(),
        socket,
        flags,
    }
}

fn attach_failed(opts: &ClientOptions, reason: String) -> ClientError {
    ClientError::AttachFailed {
        session: opts.session.clone(),
        reason,
    }
}

/// A running connection: `done` resolves with the reason it ended.
struct Running {
    done: oneshot::Receiver<String>,
}

fn spawn_conn(
    inner: &Arc<Inner>,
    generation: u64,
    events: mpsc::UnboundedSender<ClientEvent>,
) -> Result<Running, String> {
    let opts = &inner.opts;
    let mut cmd = opts.tmux.command([
        "-u",
        "-C",
        "attach-session",
        "-t",
        &format!("={}", opts.session),
    ]);
    cmd.env_remove("TMUX")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start tmux: {e}"))?;
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("tmux started without pipes".into());
    };

    let pending: Arc<Mutex<VecDeque<(u64, ReplyTx)>>> = Arc::default();
    let (lines_tx, mut lines_rx) = mpsc::unbounded_channel::<Pending>();
    if let Some(secs) = opts.pause_after {
        // Sent first, so it takes effect before any output can pile up. Its reply is ignored.
        let (tx, _rx) = oneshot::channel();
        let _ = lines_tx.send(Pending {
            line: Command::refresh_client_flags(&format!("pause-after={secs}"))
                .line()
                .to_string(),
            slots: vec![(next_seq(inner), tx)],
        });
    }

    // Writer: the only owner of tmux's stdin. Registers each reply slot before its line is
    // written, so the reader can never see a reply it has no slot for.
    // tmux may read our first lines before it has run the attach itself, and commands that
    // need "the current client" then fail: hold every line until the attach's own block
    // (flags 0) has closed.
    let (ready_tx, ready_rx) = oneshot::channel::<()>();
    let writer_pending = pending.clone();
    let cancel = inner.cancel.clone();
    tokio::spawn(async move {
        let ready = tokio::select! {
            _ = cancel.cancelled() => false,
            r = ready_rx => r.is_ok(),
        };
        while !cancel.is_cancelled() && ready {
            let p = tokio::select! {
                _ = cancel.cancelled() => break,
                p = lines_rx.recv() => match p { Some(p) => p, None => break },
            };
            lock(&writer_pending).extend(p.slots);
            let mut line = p.line.into_bytes();
            line.push(b'\n');
            if let Err(e) = stdin.write_all(&line).await {
                debug!(error = %e, "tmux stdin closed");
                break;
            }
        }
        // Closing stdin makes tmux detach this client.
        drop(stdin);
    });

    // stderr is only kept for the error message of a failed attach.
    let stderr_task = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut buf).await;
        String::from_utf8_lossy(&buf).trim().to_string()
    });

    // Reader: parses everything tmux writes and never waits for a consumer.
    let (done_tx, done_rx) = oneshot::channel();
    let reader_pending = pending;
    tokio::spawn(async move {
        let mut parser = Parser::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut exit_reason: Option<String> = None;
        let mut attach_error: Option<String> = None;
        let mut ready = Some(ready_tx);
        let mut events_out = Vec::new();
        loop {
            let n = match stdout.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    exit_reason.get_or_insert_with(|| format!("read error: {e}"));
                    break;
                }
            };
            events_out.clear();
            events_out.extend(parser.feed(&buf[..n]));
            for ev in events_out.drain(..) {
                match ev {
                    Event::Reply(reply) if reply.flags & 1 == 1 => {
                        let slot = lock(&reader_pending).pop_front();
                        match slot {
                            Some((seq, tx)) => {
                                let _ = tx.send(reply);
                                let _ = events.send(ClientEvent::Replied { seq });
                            }
                            None => warn!(number = reply.number, "tmux reply with no command"),
                        }
                    }
                    Event::Reply(reply) => {
                        trace!(
                            number = reply.number,
                            ok = reply.ok,
                            "tmux block (not ours)"
                        );
                        if let Some(ready) = ready.take() {
                            // The first flags-0 block is the attach-session itself.
                            if reply.ok {
                                let _ = events.send(ClientEvent::Attached { generation });
                                let _ = ready.send(());
                            } else {
                                attach_error = Some(reply.lines.join(" "));
                            }
                        }
                    }
                    Event::Exit { reason } => {
                        exit_reason = Some(reason.unwrap_or_else(|| "tmux exited".into()));
                    }
                    other => {
                        let _ = events.send(ClientEvent::Tmux(other));
                    }
                }
            }
        }
        // Fail every command still waiting: dropping its slot wakes it with `Detached`.
        lock(&reader_pending).clear();
        let _ = child.wait().await;
        let stderr_text = stderr_task.await.unwrap_or_default();
        let reason = attach_error
            .or(exit_reason)
            .filter(|r| !r.is_empty())
            .or_else(|| (!stderr_text.is_empty()).then_some(stderr_text))
            .unwrap_or_else(|| "tmux closed the connection".into());
        let _ = done_tx.send(reason);
    });

    *lock(&inner.conn) = Some(Conn {
        generation,
        lines: lines_tx,
    });
    Ok(Running { done: done_rx })
}

/// Waits for the connection to end, reports it, and attaches again when the session is back
/// (with reconnect on), until shut down.
async fn supervise(
    inner: Arc<Inner>,
    events: mpsc::UnboundedSender<ClientEvent>,
    mut done: oneshot::Receiver<String>,
) {
    let mut generation = 1;
    loop {
        let reason = tokio::select! {
            r = &mut done => r.unwrap_or_else(|_| "tmux closed the connection".into()),
            _ = inner.cancel.cancelled() => {
                // Closing stdin (by dropping the writer) detaches; wait for the process to go.
                lock(&inner.conn).take();
                let _ = done.await;
                break;
            }
        };
        {
            let mut conn = lock(&inner.conn);
            if conn.as_ref().is_some_and(|c| c.generation == generation) {
                conn.take();
            }
        }
        debug!(session = %inner.opts.session, %reason, "detached from tmux");
        let _ = events.send(ClientEvent::Detached { reason });
        if !inner.opts.reconnect || inner.cancel.is_cancelled() {
            break;
        }
        // Back off until the session exists again, then attach.
        let mut delay = Duration::from_millis(50);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = inner.cancel.cancelled() => {
                    let _ = events.send(ClientEvent::Closed);
                    return;
                }
            }
            delay = (delay * 2).min(Duration::from_secs(2));
            match inner.opts.tmux.has_session(&inner.opts.session).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    warn!(error = %e, "cannot ask tmux whether the session is back");
                    continue;
                }
            }
            generation += 1;
            match spawn_conn(&inner, generation, events.clone()) {
                Ok(running) => {
                    done = running.done;
                    break;
                }
                Err(e) => warn!(error = %e, "re-attach failed"),
            }
        }
    }
    let _ = events.send(ClientEvent::Closed);
}
