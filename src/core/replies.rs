//! The conversation coming back. When a turn the bridge started ends (a chat message, a relayed
//! message, an answer to a request, a task), the agent's reply — read from its screen by the
//! profile's `reply` rules, without the CLI's chrome — is stored as a chat message from that
//! agent, `in_reply_to` the message that started the turn, addressed to its sender. It is typed
//! into nobody, except:
//! - a task given with `task.assign`: the reply is typed into the caller as
//!   `[reply from NAME] …` through the caller's queue (so it waits until the caller is idle);
//! - a discussion (`chat.discuss`): when every agent has answered a round (or the round's time is
//!   up), each agent gets the others' replies as `[from NAME] …`, for at most N rounds.
//!
//! `task.handoff` waits for the reply and returns it. A line the person typed into a pane
//! directly (submitted, not typed by the bridge) is stored as the person's message to that agent,
//! and the agent's reply to it comes back like any other.
//!
//! What is remembered here lives in memory: a turn under way when the daemon stops is not
//! replied to after the restart, and a discussion ends with the daemon (its relays not yet typed
//! are withdrawn when their turn comes).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::api::protocol::{self as p, RpcError};
use crate::detect::heuristic::Reply;
use crate::names::PERSON;
use crate::store::{DeliveryStatus, MessageKind, NewMessage};
use crate::tmux::PaneId;

use super::chat::wire_message;
use super::deliveries::{Item, ItemKind, Thread};
use super::{first_line, CallId, Core, Effect};

/// How long `task.handoff` waits when the caller does not say.
const HANDOFF_WAIT: u64 = 60;
/// How long a discussion round waits for the slowest agent when the caller does not say.
const ROUND_SECONDS: u64 = 300;
/// The most rounds a discussion may have.
pub const MAX_ROUNDS: u32 = 10;
/// Tasks remembered for `task.get` (the oldest are forgotten first).
const MAX_TASKS: usize = 1000;

/// The input that started an agent's turn: the reply goes back to `from`, `in_reply_to`
/// `message`.
#[derive(Debug, Clone)]
pub struct Origin {
    pub message: String,
    pub from: String,
    /// The pane's turn count when it was typed: the reply ends a later turn.
    pub turn: u64,
    pub thread: Thread,
    /// The start of the input as the agent echoes it: a reply with this below it on screen
    /// is the one from before the input (the agent has not drawn its answer yet).
    pub probe: String,
}

/// What identifies an input's echo on screen: the start of its first line.
pub fn probe_of(input: &str) -> String {
    input
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(40)
        .collect()
}

/// A task given with `task.handoff` or `task.assign`.
#[derive(Debug)]
pub struct Task {
    to: String,
    reply: Option<(String, String, bool)>,
    seq: u64,
}

/// A round table under way.
#[derive(Debug)]
pub struct Discussion {
    /// The id of its first message.
    id: String,
    /// Its messages: the opening ones and the relays.
    messages: BTreeSet<String>,
    agents: Vec<String>,
    rounds: u32,
    round: u32,
    /// Who has not answered this round yet.
    waiting: BTreeSet<String>,
    /// This round's replies, in the order they came.
    replies: Vec<(String, String)>,
    round_time: Duration,
    deadline: Instant,
}

/// What the conversation keeps: tasks and the discussion.
#[derive(Debug, Default)]
pub struct Conversation {
    tasks: HashMap<String, Task>,
    /// `task.handoff` calls waiting for their reply: task id → (call, deadline). Only tasks
    /// with a waiting call are here.
    waits: HashMap<String, Vec<(CallId, Instant)>>,
    next_seq: u64,
    discussion: Option<Discussion>,
    /// A discussion's first messages are being sent (typed at once when their agent is idle).
    opening: bool,
}

impl Core {
    /// A job is about to be typed into `pane`: what it starts is remembered, so that the
    /// reply that ends the turn can be given to its sender.
    pub(super) fn remember_origin(&mut self, pane: PaneId, item: &Item) {
        let origin = match &item.kind {
            ItemKind::Chat {
                message,
                from,
                thread,
                ..
            } => Some((message.clone(), from.clone(), thread.clone())),
            ItemKind::Answer { request } => {
                let from = if self.s.auto {
                    self.s.controller.clone()
                } else {
                    PERSON.to_string()
                };
                Some((request.clone(), from, Thread::default()))
            }
            _ => None,
        };
        if let Some((message, from, thread)) = origin {
            let track = &mut self.agents.slot(pane).track;
            track.origin = Some(Origin {
                message,
                from,
                turn: track.turn,
                thread,
                probe: probe_of(&item.text),
            });
        }
    }

    /// A turn the bridge (or the person) started in `pane` ended with `reply` on screen.
    pub(super) fn turn_replied(&mut self, pane: PaneId, origin: Origin, reply: Reply) {
        let name = self.agents.display(pane);
        let Reply { text, whole, .. } = reply;
        let content = if whole {
            text.clone()
        } else {
            format!("(the start of this reply scrolled off {name}'s screen before the bridge read it)\n{text}")
        };
        // A discussion's replies are for everyone in it; others for the sender.
        let in_discussion = self
            .conv
            .discussion
            .as_ref()
            .filter(|d| d.messages.contains(&origin.message))
            .map(|d| d.id.clone());
        let to = if in_discussion.is_some() {
            "all".to_string()
        } else {
            origin.from.clone()
        };
        // `task.assign`: typed into the caller when it is an agent with a pane.
        let back_to = (origin.thread.assign
            && self.agents.is_agent(&origin.from)
            && self.routes.allows(&name, &origin.from))
        .then(|| {
            (
                origin.from.clone(),
                self.agents.pane_of(&origin.from).map(|p| p.to_string()),
            )
        });
        let mut meta = Map::new();
        meta.insert("in_reply_to".into(), Value::from(origin.message.clone()));
        meta.insert("reply".into(), Value::Bool(true));
        if !whole {
            meta.insert("partial".into(), Value::Bool(true));
        }
        if origin.thread.assign {
            meta.insert("task".into(), Value::from("reply"));
        }
        if let Some(d) = &in_discussion {
            meta.insert("discussion".into(), Value::from(d.clone()));
        }
        let new = NewMessage {
            from: name.clone(),
            to: to.clone(),
            content,
            urgent: false,
            meta: Value::Object(meta),
            kind: MessageKind::Chat,
        };
        let recipients: Vec<(String, Option<String>)> = back_to.into_iter().collect();
        let paused = self.paused.clone();
        let Some(message) =
            self.journal(|st| st.add_message(&new, &recipients, &|n| paused.contains(n)))
        else {
            return;
        };
        self.publish(p::event::CHAT_MESSAGE, wire_message(&message));
        self.print(
            "reply",
            format!(
                "{} {name} → {to} (reply to {}): {}",
                message.id,
                origin.message,
                first_line(&text)
            ),
            json!({ "id": message.id, "from": name, "to": to, "in_reply_to": origin.message,
                    "partial": !whole }),
        );
        for (r, _) in &recipients {
            self.load_queue(r);
        }
        if let Some(task) = self.conv.tasks.get_mut(&origin.message) {
            task.reply = Some((message.id.clone(), text.clone(), !whole));
            let waiters = self.conv.waits.remove(&origin.message).unwrap_or_default();
            let info = self.task_info(&origin.message);
            for (call, _) in waiters {
                self.out.push(Effect::Reply {
                    call,
                    result: p::result(&info),
                });
            }
        }
        if in_discussion.is_some() {
            self.discussion_reply(&name, &text);
        }
    }

    /// The person submitted `line` in `pane` themselves: it is their message to the agent.
    /// `turn` is the pane's turn count from before the line left the prompt.
    pub(super) fn person_typed(&mut self, pane: PaneId, line: &str, turn: u64) {
        let name = self.agents.display(pane);
        let new = NewMessage {
            from: PERSON.to_string(),
            to: name.clone(),
            content: line.to_string(),
            urgent: false,
            meta: json!({ "typed_in_pane": pane.to_string() }),
            kind: MessageKind::Chat,
        };
        let Some(message) = self.journal(|st| st.add_message(&new, &[], &|_| false)) else {
            return;
        };
        self.publish(p::event::CHAT_MESSAGE, wire_message(&message));
        self.print(
            "typed",
            format!(
                "{} {PERSON} → {name} (typed in {pane}): {}",
                message.id,
                first_line(line)
            ),
            json!({ "id": message.id, "to": name, "pane": pane.to_string() }),
        );
        let track = &mut self.agents.slot(pane).track;
        // Seen again (an agent that shows queued input again), it is the same line.
        track.typed(line);
        track.origin = Some(Origin {
            message: message.id,
            from: PERSON.to_string(),
            turn,
            thread: Thread::default(),
            probe: probe_of(line),
        });
    }

    /// `task.handoff` / `task.assign`.
    pub(super) fn task(
        &mut self,
        call: CallId,
        caller: &str,
        t: p::TaskParams,
        assign: bool,
    ) -> Result<Option<Value>, RpcError> {
        if assign && t.wait_seconds.is_some() {
            return Err(RpcError::invalid_params(
                "task.assign does not wait: the reply is typed into the caller when it comes \
                 (use task.handoff to wait)",
            ));
        }
        if t.task.trim().is_empty() {
            return Err(RpcError::invalid_params("the task is empty"));
        }
        if t.to == "all" || t.to.starts_with('@') {
            return Err(RpcError::invalid_params(
                "a task goes to one agent: give its name",
            ));
        }
        let mut meta = Map::new();
        meta.insert(
            "task".into(),
            Value::from(if assign { "assign" } else { "handoff" }),
        );
        // The task's text is sent as it is: `@name` or `!` at its start is not a command.
        let sent = self.chat_send(caller, &t.task, Some(&t.to), false, Some(meta))?;
        let seq = self.conv.next_seq;
        self.conv.next_seq += 1;
        self.conv.tasks.insert(
            sent.id.clone(),
            Task {
                to: t.to.clone(),
                reply: None,
                seq,
            },
        );
        if self.conv.tasks.len() > MAX_TASKS {
            if let Some(oldest) = self
                .conv
                .tasks
                .iter()
                .filter(|(id, _)| !self.conv.waits.contains_key(*id))
                .min_by_key(|(_, t)| t.seq)
                .map(|(id, _)| id.clone())
            {
                self.conv.tasks.remove(&oldest);
            }
        }
        let wait = if assign {
            0
        } else {
            t.wait_seconds.unwrap_or(HANDOFF_WAIT).min(p::MAX_WAIT_SECS)
        };
        if wait == 0 {
            return p::result(&self.task_info(&sent.id)).map(Some);
        }
        let deadline = self.now + Duration::from_secs(wait);
        self.conv
            .waits
            .entry(sent.id.clone())
            .or_default()
            .push((call, deadline));
        Ok(None)
    }

    /// `task.get`.
    pub(super) fn task_get(&self, g: p::TaskGetParams) -> Result<Value, RpcError> {
        if !self.conv.tasks.contains_key(&g.id) {
            return Err(RpcError::not_found(format!(
                "no task {:?} (tasks are remembered until the daemon stops)",
                g.id
            )));
        }
        p::result(&self.task_info(&g.id))
    }

    fn task_info(&self, id: &str) -> p::TaskInfo {
        let task = self.conv.tasks.get(id);
        let to = task.map(|t| t.to.clone()).unwrap_or_default();
        match task.and_then(|t| t.reply.clone()) {
            Some((reply_id, reply, partial)) => p::TaskInfo {
                id: id.to_string(),
                to,
                status: p::TaskStatus::Replied,
                reply_id: Some(reply_id),
                reply: Some(reply),
                partial,
            },
            None => {
                let held = self
                    .store
                    .as_ref()
                    .and_then(|st| st.deliveries_of(id).ok())
                    .is_some_and(|ds| ds.iter().any(|d| d.status == DeliveryStatus::Held));
                p::TaskInfo {
                    id: id.to_string(),
                    to,
                    status: if held {
                        p::TaskStatus::Held
                    } else {
                        p::TaskStatus::Pending
                    },
                    reply_id: None,
                    reply: None,
                    partial: false,
                }
            }
        }
    }

    /// `chat.discuss`: the person starts a round table.
    pub(super) fn discuss(&mut self, caller: &str, d: p::DiscussParams) -> Result<Value, RpcError> {
        if self.agents.is_agent(caller) {
            return Err(RpcError::forbidden("only the person starts a discussion"));
        }
        if let Some(x) = &self.conv.discussion {
            return Err(RpcError::unavailable(format!(
                "discussion {} is under way (round {} of {}); /stop it first",
                x.id, x.round, x.rounds
            )));
        }
        if d.rounds == 0 || d.rounds > MAX_ROUNDS {
            return Err(RpcError::invalid_params(format!(
                "rounds must be 1 to {MAX_ROUNDS}"
            )));
        }
        if d.content.trim().is_empty() {
            return Err(RpcError::invalid_params(
                "nothing to discuss: the text is empty",
            ));
        }
        let all = self.agents.names();
        let agents: Vec<String> = match d.to {
            Some(list) => {
                for n in &list {
                    if !self.agents.is_agent(n) {
                        return Err(RpcError::not_found(format!(
                            "unknown agent {n:?}; agents: {}",
                            all.join(", ")
                        )));
                    }
                }
                list.into_iter()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect()
            }
            None => all,
        };
        if agents.len() < 2 {
            return Err(RpcError::invalid_params(
                "a discussion needs at least two agents",
            ));
        }
        let round_time =
            Duration::from_secs(d.round_seconds.unwrap_or(ROUND_SECONDS).clamp(1, 3600));
        // One message per agent (each its own turn's origin), checked before any is sent.
        for a in &agents {
            if !self.routes.allows(caller, a) {
                return Err(RpcError::forbidden(format!(
                    "{caller} may not send to {a} (routes)"
                )));
            }
        }
        let mut messages = BTreeSet::new();
        let mut first: Option<String> = None;
        self.conv.opening = true;
        for a in &agents {
            let mut meta = Map::new();
            meta.insert("round".into(), Value::from(1));
            if let Some(id) = &first {
                meta.insert("discussion".into(), Value::from(id.clone()));
            }
            let sent = self.chat_send(caller, &d.content, Some(a), false, Some(meta));
            let sent = match sent {
                Ok(s) => s,
                Err(e) => {
                    self.conv.opening = false;
                    return Err(e);
                }
            };
            first.get_or_insert_with(|| sent.id.clone());
            messages.insert(sent.id);
        }
        self.conv.opening = false;
        let id = first.unwrap_or_default();
        self.conv.discussion = Some(Discussion {
            id: id.clone(),
            messages,
            agents: agents.clone(),
            rounds: d.rounds,
            round: 1,
            waiting: agents.iter().cloned().collect(),
            replies: Vec::new(),
            round_time,
            deadline: self.now + round_time,
        });
        self.print(
            "discuss",
            format!(
                "{id}: a discussion of {} rounds among {}",
                d.rounds,
                agents.join(", ")
            ),
            json!({ "id": id, "agents": agents, "rounds": d.rounds }),
        );
        p::result(&p::DiscussResult {
            id,
            agents,
            rounds: d.rounds,
        })
    }

    /// `chat.stop`: ends the discussion; relays not typed yet are withdrawn.
    pub(super) fn stop_discussion(&mut self, caller: &str) -> Result<Value, RpcError> {
        if self.agents.is_agent(caller) {
            return Err(RpcError::forbidden("only the person stops a discussion"));
        }
        let Some(d) = self.conv.discussion.take() else {
            return p::result(&p::StopResult {
                stopped: None,
                withdrawn: 0,
            });
        };
        let mut withdrawn = 0;
        let panes: Vec<PaneId> = self.agents.slots().map(|(p, _)| *p).collect();
        for pane in panes {
            let mut dropped = Vec::new();
            self.agents.slot(pane).queue.waiting.retain(|i| {
                let hit = d.messages.contains(&i.message);
                if hit {
                    dropped.push(i.clone());
                }
                !hit
            });
            for item in dropped {
                withdrawn += 1;
                self.give_up(&item, "the discussion was stopped");
            }
            self.show_queue(pane);
        }
        self.print(
            "discuss",
            format!(
                "{}: stopped in round {} of {} ({withdrawn} relays withdrawn)",
                d.id, d.round, d.rounds
            ),
            json!({ "id": d.id, "stopped": true, "round": d.round, "withdrawn": withdrawn }),
        );
        p::result(&p::StopResult {
            stopped: Some(d.id),
            withdrawn,
        })
    }

    /// An item of a discussion that is over (stopped, ended, or from before a restart) is not
    /// typed any more.
    pub(super) fn discussion_over(&self, item: &Item) -> bool {
        let ItemKind::Chat {
            message, thread, ..
        } = &item.kind
        else {
            return false;
        };
        thread.round.is_some()
            && !self.conv.opening
            && self
                .conv
                .discussion
                .as_ref()
                .is_none_or(|d| !d.messages.contains(message))
    }

    fn discussion_reply(&mut self, name: &str, text: &str) {
        let Some(d) = self.conv.discussion.as_mut() else {
            return;
        };
        if !d.waiting.remove(name) {
            return;
        }
        d.replies.push((name.to_string(), text.to_string()));
        if d.waiting.is_empty() {
            self.next_round();
        }
    }

    /// Every agent answered the round, or its time is up: relay, or end.
    fn next_round(&mut self) {
        let Some(mut d) = self.conv.discussion.take() else {
            return;
        };
        let late: Vec<String> = d.waiting.iter().cloned().collect();
        if !late.is_empty() {
            self.print(
                "discuss",
                format!(
                    "{}: round {} ended after {}s without a reply from {}",
                    d.id,
                    d.round,
                    d.round_time.as_secs(),
                    late.join(", ")
                ),
                json!({ "id": d.id, "round": d.round, "late": late }),
            );
        }
        if d.round >= d.rounds || d.replies.is_empty() {
            self.print(
                "discuss",
                format!("{}: ended after {} rounds", d.id, d.round),
                json!({ "id": d.id, "ended": true, "rounds": d.round }),
            );
            return;
        }
        d.round += 1;
        let replies = std::mem::take(&mut d.replies);
        d.waiting.clear();
        let id = d.id.clone();
        let round = d.round;
        let agents = d.agents.clone();
        d.deadline = self.now + d.round_time;
        self.conv.discussion = Some(d);
        for a in &agents {
            let others: Vec<String> = replies
                .iter()
                .filter(|(n, _)| n != a)
                .map(|(n, t)| format!("[from {n}] {t}"))
                .collect();
            if others.is_empty() {
                continue;
            }
            let mut meta = Map::new();
            meta.insert("discussion".into(), Value::from(id.clone()));
            meta.insert("round".into(), Value::from(round));
            meta.insert("relay".into(), Value::Bool(true));
            let new = NewMessage {
                from: "bridge".into(),
                to: a.clone(),
                content: others.join("\n\n"),
                urgent: false,
                meta: Value::Object(meta),
                kind: MessageKind::Chat,
            };
            let with = [(a.clone(), self.agents.pane_of(a).map(|p| p.to_string()))];
            let paused = self.paused.clone();
            if let Some(m) = self.journal(|st| st.add_message(&new, &with, &|n| paused.contains(n)))
            {
                if let Some(d) = self.conv.discussion.as_mut() {
                    d.messages.insert(m.id.clone());
                }
                self.publish(p::event::CHAT_MESSAGE, wire_message(&m));
                self.print(
                    "relay",
                    format!("{} round {round} → {a}: {}", m.id, first_line(&m.content)),
                    json!({ "id": m.id, "discussion": id, "round": round, "to": a }),
                );
                if let Some(d) = self.conv.discussion.as_mut() {
                    d.waiting.insert(a.clone());
                }
                self.load_queue(a);
            }
        }
        if self
            .conv
            .discussion
            .as_ref()
            .is_some_and(|d| d.waiting.is_empty())
        {
            self.conv.discussion = None;
        }
    }

    /// Handoffs whose wait is over get "pending"; a discussion round whose time is up ends.
    pub(super) fn expire_conversation(&mut self) {
        let now = self.now;
        let mut due = Vec::new();
        for (id, waiters) in self.conv.waits.iter_mut() {
            waiters.retain(|(call, deadline)| {
                if *deadline <= now {
                    due.push((id.clone(), *call));
                    false
                } else {
                    true
                }
            });
        }
        self.conv.waits.retain(|_, w| !w.is_empty());
        for (id, call) in due {
            let info = self.task_info(&id);
            self.out.push(Effect::Reply {
                call,
                result: p::result(&info),
            });
        }
        if self
            .conv
            .discussion
            .as_ref()
            .is_some_and(|d| d.deadline <= now)
        {
            self.next_round();
        }
    }

    /// The earliest time the conversation needs the core: a handoff's wait, a round's end.
    pub(super) fn conversation_deadline(&self) -> Option<Instant> {
        let tasks = self.conv.waits.values().flatten().map(|(_, d)| *d);
        let round = self.conv.discussion.as_ref().map(|d| d.deadline);
        tasks.chain(round).min()
    }
}
