//! The chat side of the core: agents (from the config and from `@macs-agent` labels), the
//! store, the API calls, routing, pause/resume, urgent messages and keys, and the
//! notifications pushed to subscribers.
//!
//! Everything here runs in the core task (it is `impl Core`); it never types: chat deliveries go
//! into the same per-pane queues as answers, and the writer tasks type them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tokio::sync::oneshot;

use super::chat::{self, Line, Routes, To, PERSON};
use super::*;
use crate::api::protocol::{self as p, method, RpcError};
use crate::api::server::{ApiMsg, Notification, Subscribers};
use crate::store::{
    DeliveryStatus as DS, MessageKind, NewMessage, RequestRow, RequestStatus, Store,
};

/// The pane label of the person's chat pane: never an agent.
pub const CHAT_LABEL: &str = "chat";
/// The `pane` of requests that came by `request.ask` (an MCP tool call): answers go back to
/// the caller, never typed.
pub const API_PANE: &str = "api";

pub(super) struct AgentEntry {
    pub pane: Option<PaneId>,
    pub state: PaneState,
}

type Reply = oneshot::Sender<Result<Value, RpcError>>;

pub(super) struct Chat {
    pub store: Store,
    pub agents: BTreeMap<String, AgentEntry>,
    pub routes: Routes,
    pub paused: BTreeSet<String>,
    pub subs: Subscribers,
    /// `hello` names by connection.
    pub names: HashMap<u64, String>,
    /// Per name, the last message id `chat.read` returned.
    pub read_marks: HashMap<String, String>,
    /// Chat deliveries in the queues: delivery id -> (message id, recipient).
    pub in_queue: HashMap<i64, (String, String)>,
    /// `request.ask` calls waiting for their answer.
    pub asks: HashMap<String, Vec<(Reply, Instant)>>,
}

impl Chat {
    pub fn open(cfg: &Config) -> Result<Chat, Failure> {
        let store = Store::open(&cfg.state_dir.join("macs.sqlite3"))
            .map_err(|e| failure(format!("cannot open the store: {e}")))?;
        let paused = store
            .paused()
            .map_err(|e| failure(format!("cannot read the store: {e}")))?
            .into_iter()
            .collect();
        Ok(Chat {
            store,
            agents: BTreeMap::new(),
            routes: Routes::new(&cfg.routes),
            paused,
            subs: Subscribers::new(),
            names: HashMap::new(),
            read_marks: HashMap::new(),
            in_queue: HashMap::new(),
            asks: HashMap::new(),
        })
    }

    fn publish(&mut self, method: &str, params: impl serde::Serialize) {
        if !self.subs.is_empty() {
            self.subs.publish(&Notification::new(method, params));
        }
    }
}

fn wire_status(s: DS) -> p::DeliveryStatus {
    match s {
        DS::Queued | DS::Held => p::DeliveryStatus::Queued,
        DS::Delivering => p::DeliveryStatus::Delivering,
        DS::Delivered => p::DeliveryStatus::Delivered,
        DS::Unconfirmed => p::DeliveryStatus::Unconfirmed,
        DS::Failed => p::DeliveryStatus::Failed,
    }
}

fn wire_message(m: &crate::store::Message) -> p::ChatMessage {
    p::ChatMessage {
        id: m.id.clone(),
        ts: m.ts.to_rfc3339(),
        from: m.from.clone(),
        to: m.to.clone(),
        content: m.content.clone(),
        urgent: m.urgent,
        meta: m.meta.as_object().cloned(),
        deliveries: Vec::new(),
    }
}

fn store_err(e: crate::store::StoreError) -> RpcError {
    if e.is_bad_input() {
        RpcError::invalid_params(e.to_string())
    } else {
        RpcError::internal(e.to_string())
    }
}

impl Core {
    /// Re-reads who the agents are: the config's, then every labelled pane (not the chat pane).
    pub(super) async fn refresh_agents(&mut self) {
        if self.chat.is_none() {
            return;
        }
        let mut found: BTreeMap<String, Option<PaneId>> = BTreeMap::new();
        let configured: Vec<(String, String)> = self
            .cfg
            .agents
            .iter()
            .map(|a| {
                (
                    a.name.clone(),
                    a.target.clone().unwrap_or_else(|| a.name.clone()),
                )
            })
            .collect();
        for (name, target) in configured {
            let pane = self.panes.find(&target).await.ok();
            found.insert(name, pane);
        }
        for pane in self.panes.iter() {
            if let Some(label) = &pane.info.label {
                if label != CHAT_LABEL && !found.contains_key(label) {
                    found.insert(label.clone(), Some(pane.id()));
                }
            }
        }
        let Some(chat) = &mut self.chat else { return };
        let mut gained = Vec::new();
        chat.agents.retain(|name, _| found.contains_key(name));
        for (name, pane) in found {
            let entry = chat.agents.entry(name.clone()).or_insert(AgentEntry {
                pane: None,
                state: PaneState::Unknown,
            });
            if entry.pane != pane {
                if let Some(p) = pane {
                    gained.push(name.clone());
                    self.tracks.entry(p).or_insert_with(Track::new);
                    self.dirty.insert(p);
                }
                entry.pane = pane;
            }
        }
        for name in gained {
            self.load_queue(&name);
        }
    }

    pub(super) fn agent_of_pane(&self, pane: PaneId) -> Option<String> {
        self.chat.as_ref().and_then(|c| {
            c.agents
                .iter()
                .find(|(_, a)| a.pane == Some(pane))
                .map(|(n, _)| n.clone())
        })
    }

    pub(super) fn is_paused_pane(&self, pane: PaneId) -> bool {
        match (self.agent_of_pane(pane), &self.chat) {
            (Some(name), Some(chat)) => chat.paused.contains(&name),
            _ => false,
        }
    }

    /// Puts an agent's queued deliveries from the store into its pane's queue (once each).
    pub(super) fn load_queue(&mut self, name: &str) {
        let Some(chat) = &mut self.chat else { return };
        let Some(pane) = chat.agents.get(name).and_then(|a| a.pane) else {
            return;
        };
        let rows = match chat.store.next_deliveries_with_messages(name, 1000) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, agent = name, "cannot read the queued messages");
                return;
            }
        };
        let queue = self.queues.entry(pane).or_default();
        for (d, m) in rows {
            if chat.in_queue.contains_key(&d.id) {
                continue;
            }
            chat.in_queue.insert(d.id, (m.id.clone(), name.to_string()));
            let delivery = Delivery {
                pane,
                text: chat::delivered_text(&m.from, &To::parse(&m.to), &m.content),
                origin: Origin::Chat {
                    id: d.id.to_string(),
                },
                urgent: m.urgent,
            };
            if m.urgent {
                // Before the ordinary messages, after earlier urgent ones.
                let at = queue.waiting.iter().take_while(|x| x.urgent).count();
                queue.waiting.insert(at, delivery);
            } else {
                queue.waiting.push_back(delivery);
            }
        }
        self.dirty.insert(pane);
    }

    /// A chat delivery changed: record it and tell subscribers.
    pub(super) fn chat_delivery(&mut self, delivery_id: &str, status: DS, detail: Option<&str>) {
        let Some(chat) = &mut self.chat else { return };
        let Ok(id) = delivery_id.parse::<i64>() else {
            return;
        };
        if let Err(e) = chat.store.mark(id, status, detail) {
            warn!(error = %e, id, "cannot record the delivery");
        }
        let Some((message_id, recipient)) = chat.in_queue.get(&id).cloned() else {
            return;
        };
        if !matches!(status, DS::Queued | DS::Delivering | DS::Held) {
            chat.in_queue.remove(&id);
        }
        chat.publish(
            p::event::DELIVERY_UPDATE,
            p::DeliveryUpdateEvent {
                message_id,
                recipient,
                status: wire_status(status),
                detail: detail.map(str::to_string),
            },
        );
    }

    /// A message from `from` (the person, an API client, or an agent's block).
    pub(super) fn chat_send(
        &mut self,
        from: &str,
        content: &str,
        to: Option<&str>,
        urgent: bool,
        meta: Option<serde_json::Map<String, Value>>,
    ) -> Result<p::ChatSendResult, RpcError> {
        if self.chat.is_none() {
            return Err(RpcError::unavailable("the chat is off in a dry run"));
        }
        let line = chat::parse_line(content, to).map_err(RpcError::invalid_params)?;
        let Some(chat) = &mut self.chat else {
            return Err(RpcError::unavailable("no chat"));
        };
        let from_agent = chat.agents.contains_key(from);
        let (dest, content, urgent, key) = match line {
            Line::Message {
                to,
                content,
                urgent: u,
            } => (to, content, u || urgent, None),
            Line::Key { to, key } => (to, format!("key {key}"), true, Some(key)),
        };
        if (urgent || key.is_some()) && from_agent {
            return Err(RpcError::forbidden(
                "agents cannot send urgent messages or keys; only the person can",
            ));
        }
        let names: Vec<String> = chat.agents.keys().cloned().collect();
        let recipients: Vec<String> = match &dest {
            To::All => names.iter().filter(|n| *n != from).cloned().collect(),
            To::One(n) => {
                if !chat.agents.contains_key(n) {
                    return Err(RpcError::not_found(format!(
                        "unknown agent {n:?}; agents: {}",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    )));
                }
                if n == from {
                    return Err(RpcError::invalid_params("a message to oneself is not sent"));
                }
                vec![n.clone()]
            }
        };
        let recipients: Vec<String> = recipients
            .into_iter()
            .filter(|r| chat.routes.allows(from, r))
            .collect();
        if recipients.is_empty() {
            return Err(match dest {
                To::One(n) => RpcError::forbidden(format!("{from} may not send to {n} (routes)")),
                To::All => RpcError::unavailable("nobody to send to"),
            });
        }
        let with_panes: Vec<(String, Option<String>)> = recipients
            .iter()
            .map(|r| {
                let pane = chat
                    .agents
                    .get(r)
                    .and_then(|a| a.pane)
                    .map(|p| p.to_string());
                (r.clone(), pane)
            })
            .collect();
        let paused = chat.paused.clone();
        let message = chat
            .store
            .add_message(
                &NewMessage {
                    from: from.to_string(),
                    to: dest.name().to_string(),
                    content: content.clone(),
                    urgent,
                    meta: meta.map(Value::Object).unwrap_or(Value::Null),
                    kind: if key.is_some() {
                        MessageKind::Key
                    } else {
                        MessageKind::Chat
                    },
                },
                &with_panes,
                &|n| paused.contains(n),
            )
            .map_err(store_err)?;
        chat.publish(p::event::CHAT_MESSAGE, wire_message(&message));
        let mut queued = Vec::new();
        if let Some(key) = key {
            // Keys go at once, past every queue.
            let panes: Vec<(String, Option<PaneId>)> = recipients
                .iter()
                .map(|r| (r.clone(), chat.agents.get(r).and_then(|a| a.pane)))
                .collect();
            for (name, pane) in panes {
                match pane {
                    Some(pane) => {
                        let client = self.client.clone();
                        let key = key.clone();
                        tokio::spawn(async move {
                            let _ = client
                                .run(&Command::send_keys(&Target::Pane(pane), &[key]))
                                .await;
                        });
                    }
                    None => queued.push(name),
                }
            }
            self.settle_key_message(&message.id, &recipients);
        } else {
            for r in &recipients {
                self.load_queue(r);
                let Some(chat) = &self.chat else { break };
                let ready = chat
                    .agents
                    .get(r)
                    .and_then(|a| a.pane)
                    .filter(|_| !chat.paused.contains(r))
                    .and_then(|p| self.panes.get(p))
                    .is_some_and(|pane| {
                        let l = pane.look(&self.profiles, self.cfg.busy_lines);
                        l.state == PaneState::Idle
                            && l.prompt_input
                                .as_deref()
                                .is_none_or(|t| t.trim().is_empty())
                    });
                if !ready {
                    queued.push(r.clone());
                }
            }
        }
        self.printer.event(
            "message",
            format!(
                "{} {from} → {}: {}",
                message.id,
                dest.name(),
                first_line(&content)
            ),
            json!({ "id": message.id, "from": from, "to": dest.name(), "content": content,
                    "recipients": recipients, "urgent": urgent }),
        );
        Ok(p::ChatSendResult {
            id: message.id,
            to: dest.name().to_string(),
            recipients,
            queued,
        })
    }

    /// A key message is done as soon as it is sent.
    fn settle_key_message(&mut self, message_id: &str, recipients: &[String]) {
        let Some(chat) = &mut self.chat else { return };
        let mut marks = Vec::new();
        for r in recipients {
            if let Ok(rows) = chat.store.next_deliveries(r, 1000) {
                for d in rows.into_iter().filter(|d| d.message_id == message_id) {
                    marks.push((d.id, DS::Delivering, None));
                    marks.push((d.id, DS::Delivered, None));
                }
            }
        }
        // One commit for all recipients, not two per recipient.
        if let Err(e) = chat.store.mark_many(&marks) {
            warn!(error = %e, message_id, "cannot record the key as sent");
        }
    }

    /// A `<<MESSAGE to=…>>` block in an agent's pane.
    pub(super) fn agent_message(&mut self, from: &str, to: &str, body: &str) {
        if let Err(e) = self.chat_send(from, body, Some(to), false, None) {
            self.printer.event(
                "error",
                format!("message from {from} to {to} not sent: {}", e.message),
                json!({ "from": from, "to": to, "error": e.message }),
            );
            // Shown to the sender, in its prompt, as a plain line (no block: no loop).
            if let Some(pane) = self
                .chat
                .as_ref()
                .and_then(|c| c.agents.get(from))
                .and_then(|a| a.pane)
            {
                let queue = self.queues.entry(pane).or_default();
                queue.waiting.push_back(Delivery {
                    pane,
                    text: format!("[macs] your message to {to} was not sent: {}", e.message),
                    origin: Origin::Chat { id: String::new() },
                    urgent: false,
                });
                self.dirty.insert(pane);
            }
        }
    }

    /// An agent's state changed.
    pub(super) fn agent_state(&mut self, pane: PaneId, state: PaneState) {
        let Some(name) = self.agent_of_pane(pane) else {
            return;
        };
        let Some(chat) = &mut self.chat else { return };
        let Some(entry) = chat.agents.get_mut(&name) else {
            return;
        };
        if entry.state != state {
            entry.state = state;
            chat.publish(
                p::event::AGENT_STATE,
                p::AgentStateEvent {
                    name,
                    pane: pane.to_string(),
                    state: state.into(),
                },
            );
        }
    }

    /// Start-up: deliveries cut short by a crash are reported, the rest queued again.
    pub(super) fn recover_chat(&mut self) {
        let Some(chat) = &mut self.chat else { return };
        match chat.store.recover() {
            Ok(r) => {
                for d in &r.unconfirmed {
                    self.printer.event(
                        "unconfirmed",
                        format!(
                            "message {} to {} was being typed when the bridge stopped; not typed again",
                            d.message_id, d.recipient
                        ),
                        json!({ "message_id": d.message_id, "recipient": d.recipient }),
                    );
                }
            }
            Err(e) => warn!(error = %e, "cannot recover the store"),
        }
        let names: Vec<String> = self
            .chat
            .as_ref()
            .map(|c| c.agents.keys().cloned().collect())
            .unwrap_or_default();
        for n in names {
            self.load_queue(&n);
        }
    }

    /// One message from the API server.
    pub(super) async fn api_msg(&mut self, msg: ApiMsg) {
        let Some(chat) = &mut self.chat else {
            if let ApiMsg::Call(c) = msg {
                let _ = c.reply.send(Err(RpcError::unavailable("dry run: no API")));
            }
            return;
        };
        if let ApiMsg::Gone { conn_id } = &msg {
            chat.names.remove(conn_id);
        }
        let Some(call) = chat.subs.handle(msg) else {
            return;
        };
        let conn = call.client.conn_id;
        let result = self.api_call(conn, &call.method, call.params).await;
        match result {
            Ok(Some(v)) => {
                let _ = call.reply.send(Ok(v));
            }
            Ok(None) => {
                // `request.ask` waiting: the reply is sent when the answer comes.
                if let Some(pending) = self.pending_ask.take() {
                    if let Some(chat) = &mut self.chat {
                        chat.asks
                            .entry(pending.0)
                            .or_default()
                            .push((call.reply, pending.1));
                    }
                }
            }
            Err(e) => {
                let _ = call.reply.send(Err(e));
            }
        }
    }

    fn caller_name(&self, conn: u64) -> String {
        self.chat
            .as_ref()
            .and_then(|c| c.names.get(&conn).cloned())
            .unwrap_or_else(|| PERSON.to_string())
    }

    async fn api_call(
        &mut self,
        conn: u64,
        method: &str,
        params: Value,
    ) -> Result<Option<Value>, RpcError> {
        let ok = |v: Result<Value, RpcError>| v.map(Some);
        match method {
            method::HELLO => {
                let h: p::HelloParams = p::params(params)?;
                if !p::is_valid_name(&h.name) {
                    return Err(RpcError::invalid_params(format!(
                        "not a valid name: {:?}",
                        h.name
                    )));
                }
                if let Some(chat) = &mut self.chat {
                    chat.names.insert(conn, h.name.clone());
                }
                ok(p::result(&p::HelloResult {
                    name: h.name,
                    session: self.cfg.session.clone(),
                }))
            }
            method::CHAT_SEND => {
                let s: p::ChatSendParams = p::params(params)?;
                let from = s.from.clone().unwrap_or_else(|| self.caller_name(conn));
                if !p::is_valid_name(&from) {
                    return Err(RpcError::invalid_params(format!(
                        "not a valid sender name: {from:?}"
                    )));
                }
                let r = self.chat_send(&from, &s.content, s.to.as_deref(), s.urgent, s.meta)?;
                self.after_batch().await;
                ok(p::result(&r))
            }
            method::CHAT_HISTORY => {
                let h: p::ChatHistoryParams = p::params(params)?;
                let chat = self
                    .chat
                    .as_ref()
                    .ok_or_else(|| RpcError::unavailable("no chat"))?;
                let q = crate::store::HistoryQuery {
                    limit: h.limit.map(|l| l as usize),
                    since: h.since.as_deref().map(crate::store::Cursor::parse),
                    involving: h.involving,
                    ..Default::default()
                };
                let rows = chat.store.history(&q).map_err(store_err)?;
                let messages = rows
                    .into_iter()
                    .map(|m| {
                        let mut w = wire_message(&m.message);
                        w.deliveries = m
                            .deliveries
                            .iter()
                            .map(|d| p::Delivery {
                                recipient: d.recipient.clone(),
                                status: wire_status(d.status),
                            })
                            .collect();
                        w
                    })
                    .collect();
                ok(p::result(&p::ChatHistoryResult { messages }))
            }
            method::CHAT_READ => {
                let r: p::ChatReadParams = p::params(params)?;
                let chat = self
                    .chat
                    .as_mut()
                    .ok_or_else(|| RpcError::unavailable("no chat"))?;
                let since = r
                    .since
                    .clone()
                    .or_else(|| chat.read_marks.get(&r.name).cloned());
                let msgs = chat
                    .store
                    .messages_for(&r.name, since.as_deref(), 200)
                    .map_err(store_err)?;
                if let Some(last) = msgs.last() {
                    chat.read_marks.insert(r.name.clone(), last.id.clone());
                }
                ok(p::result(&p::ChatReadResult {
                    messages: msgs.iter().map(wire_message).collect(),
                }))
            }
            method::AGENTS_LIST => {
                let chat = self
                    .chat
                    .as_ref()
                    .ok_or_else(|| RpcError::unavailable("no chat"))?;
                let mut agents = Vec::new();
                for (name, a) in &chat.agents {
                    let (profile, state) = match a.pane.and_then(|p| self.panes.get(p)) {
                        Some(pane) => {
                            let c = pane.classify(&self.profiles, self.cfg.busy_lines);
                            (c.profile, c.state)
                        }
                        None => ("-".to_string(), PaneState::Unknown),
                    };
                    let queued = a
                        .pane
                        .and_then(|p| self.queues.get(&p))
                        .map(|q| q.waiting.len() + usize::from(q.in_flight))
                        .unwrap_or(0);
                    agents.push(p::AgentInfo {
                        name: name.clone(),
                        pane: a.pane.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                        profile,
                        state: state.into(),
                        queued: queued as u32,
                        paused: chat.paused.contains(name),
                    });
                }
                ok(p::result(&p::AgentsListResult { agents }))
            }
            method::AGENT_PAUSE | method::AGENT_RESUME => {
                let a: p::AgentNameParams = p::params(params)?;
                let pause = method == method::AGENT_PAUSE;
                let chat = self
                    .chat
                    .as_mut()
                    .ok_or_else(|| RpcError::unavailable("no chat"))?;
                let names: Vec<String> = match a.name {
                    Some(n) if chat.agents.contains_key(&n) => vec![n],
                    Some(n) => return Err(RpcError::not_found(format!("unknown agent {n:?}"))),
                    None => chat.agents.keys().cloned().collect(),
                };
                for n in &names {
                    if pause {
                        chat.paused.insert(n.clone());
                        let _ = chat.store.hold(n);
                    } else {
                        chat.paused.remove(n);
                        let _ = chat.store.release(n);
                    }
                }
                self.printer.event(
                    if pause { "paused" } else { "resumed" },
                    names.join(", "),
                    json!({ "names": names }),
                );
                if !pause {
                    for n in &names {
                        self.load_queue(n);
                    }
                }
                let panes: Vec<PaneId> = names
                    .iter()
                    .filter_map(|n| self.chat.as_ref()?.agents.get(n)?.pane)
                    .collect();
                self.dirty.extend(panes);
                self.after_batch().await;
                ok(p::result(&p::AgentNamesResult { names }))
            }
            method::AGENT_KEY => {
                let k: p::AgentKeyParams = p::params(params)?;
                let caller = self.caller_name(conn);
                if self
                    .chat
                    .as_ref()
                    .is_some_and(|c| c.agents.contains_key(&caller))
                {
                    return Err(RpcError::forbidden("only the person sends keys"));
                }
                let key =
                    KeyName::parse(&k.key).map_err(|e| RpcError::invalid_params(e.to_string()))?;
                let pane = self
                    .chat
                    .as_ref()
                    .and_then(|c| c.agents.get(&k.name))
                    .ok_or_else(|| RpcError::not_found(format!("unknown agent {:?}", k.name)))?
                    .pane
                    .ok_or_else(|| RpcError::not_found(format!("{} has no pane now", k.name)))?;
                self.client
                    .run(&Command::send_keys(&Target::Pane(pane), &[key]))
                    .await
                    .map_err(|e| RpcError::internal(e.to_string()))?;
                ok(p::result(&p::Empty {}))
            }
            method::PANE_STATUS | method::PANE_SNAPSHOT => {
                let target = params
                    .get("target")
                    .and_then(Value::as_str)
                    .ok_or_else(|| RpcError::invalid_params("missing `target`"))?
                    .to_string();
                let id = self
                    .panes
                    .find(&target)
                    .await
                    .map_err(|e| RpcError::not_found(e.to_string()))?;
                let pane = self
                    .panes
                    .get(id)
                    .ok_or_else(|| RpcError::not_found(format!("pane {id} closed")))?;
                if method == method::PANE_STATUS {
                    let c = pane.classify(&self.profiles, self.cfg.busy_lines);
                    ok(p::result(&p::PaneStatusResult {
                        pane: id.to_string(),
                        state: c.state.into(),
                        profile: c.profile,
                        target: Some(pane.info.target()),
                        label: pane.info.label.clone(),
                        title: Some(pane.info.title.clone()),
                        current_command: Some(pane.info.current_command.clone()),
                        reason: Some(c.reason),
                    }))
                } else {
                    let s: p::PaneSnapshotParams = p::params(params)?;
                    let n = s.lines.unwrap_or(200) as usize;
                    let mut lines = pane.lines();
                    while lines.last().is_some_and(|l| l.trim().is_empty()) {
                        lines.pop();
                    }
                    let skip = lines.len().saturating_sub(n);
                    ok(p::result(&p::PaneSnapshotResult {
                        pane: id.to_string(),
                        lines: lines.split_off(skip),
                    }))
                }
            }
            method::REQUEST_ASK => {
                let a: p::RequestAskParams = p::params(params)?;
                if self.mailbox.is_none() {
                    return Err(RpcError::unavailable("dry run: requests are not filed"));
                }
                if a.question.trim().is_empty() {
                    return Err(RpcError::invalid_params("the question is empty"));
                }
                let id = self.file_api_request(&a.from, &a.question)?;
                let wait = a.wait_seconds.unwrap_or(0).min(600);
                if wait == 0 || self.answered(&id).is_some() {
                    return ok(p::result(&self.request_info(&id)));
                }
                self.pending_ask = Some((id, Instant::now() + Duration::from_secs(wait)));
                Ok(None)
            }
            method::REQUEST_GET => {
                let g: p::RequestGetParams = p::params(params)?;
                let exists = self
                    .chat
                    .as_ref()
                    .and_then(|c| c.store.request(&g.id).ok().flatten())
                    .is_some();
                if !exists {
                    return Err(RpcError::not_found(format!("no request {:?}", g.id)));
                }
                ok(p::result(&self.request_info(&g.id)))
            }
            other => Err(RpcError::method_not_found(other)),
        }
    }

    /// Files a question from an API client as a request (kind `ask`, pane [`API_PANE`]).
    fn file_api_request(&mut self, from: &str, question: &str) -> Result<String, RpcError> {
        let now = Utc::now();
        let id = Mailbox::new_id(now);
        let record = RequestRecord {
            id: id.clone(),
            session: self.cfg.session.clone(),
            pane: API_PANE.to_string(),
            agent: from.to_string(),
            kind: RequestKind::Block,
            detected_at: now,
            text: question.to_string(),
        };
        let mb = self
            .mailbox
            .as_ref()
            .ok_or_else(|| RpcError::unavailable("no mailbox"))?;
        mb.write_request(&record)
            .map_err(|e| RpcError::internal(e.to_string()))?;
        self.record_request(&record, "ask");
        self.printer.event(
            "request",
            format!("{id} from {from} (API): {}", first_line(question)),
            json!({ "id": id, "pane": API_PANE, "agent": from, "kind": "ask", "text": question }),
        );
        if let Some(auto) = &mut self.auto {
            auto.routes.insert(
                id.clone(),
                Route {
                    text: question.to_string(),
                    agent: from.to_string(),
                    next: 0,
                    notes: Vec::new(),
                },
            );
            self.route(&id);
        }
        Ok(id)
    }

    /// Mirrors a request into the store and tells subscribers.
    pub(super) fn record_request(&mut self, r: &RequestRecord, kind: &str) {
        let Some(chat) = &mut self.chat else { return };
        let row = RequestRow {
            id: r.id.clone(),
            pane: r.pane.clone(),
            agent: r.agent.clone(),
            kind: r.kind,
            text: r.text.clone(),
            detected_at: r.detected_at,
            status: RequestStatus::Open,
            answered_by: None,
            answer: None,
        };
        if let Err(e) = chat.store.upsert_request(&row) {
            warn!(error = %e, id = %r.id, "cannot record the request");
        }
        chat.publish(
            p::event::REQUEST_DETECTED,
            p::RequestDetectedEvent {
                id: r.id.clone(),
                pane: r.pane.clone(),
                agent: r.agent.clone(),
                kind: kind.to_string(),
                text: r.text.clone(),
            },
        );
    }

    /// A request got its answer: the store records it, and waiting `request.ask` calls return.
    pub(super) fn request_answered(&mut self, id: &str, answer: &str, by: &str) {
        let Some(chat) = &mut self.chat else { return };
        if let Ok(Some(mut row)) = chat.store.request(id) {
            row.status = RequestStatus::Answered;
            row.answer = Some(answer.to_string());
            row.answered_by = Some(by.to_string());
            let _ = chat.store.upsert_request(&row);
        }
        let waiting = chat.asks.remove(id).unwrap_or_default();
        if !waiting.is_empty() {
            let info = self.request_info(id);
            for (reply, _) in waiting {
                let _ = reply.send(p::result(&info));
            }
        }
    }

    fn answered(&self, id: &str) -> Option<String> {
        self.chat
            .as_ref()
            .and_then(|c| c.store.request(id).ok().flatten())
            .filter(|r| r.status == RequestStatus::Answered)
            .and_then(|r| r.answer)
    }

    fn request_info(&self, id: &str) -> p::RequestInfo {
        let row = self
            .chat
            .as_ref()
            .and_then(|c| c.store.request(id).ok().flatten());
        match row {
            Some(r) => p::RequestInfo {
                id: r.id,
                from: r.agent,
                question: r.text,
                status: if r.status == RequestStatus::Answered {
                    p::RequestStatus::Answered
                } else {
                    p::RequestStatus::Pending
                },
                answer: r.answer,
                answered_by: r.answered_by,
            },
            None => p::RequestInfo {
                id: id.to_string(),
                from: String::new(),
                question: String::new(),
                status: p::RequestStatus::Pending,
                answer: None,
                answered_by: None,
            },
        }
    }

    /// `request.ask` calls whose time is up get "pending".
    pub(super) fn expire_asks(&mut self) {
        let now = Instant::now();
        let Some(chat) = &mut self.chat else { return };
        let mut due = Vec::new();
        for (id, waiters) in chat.asks.iter_mut() {
            let (late, keep): (Vec<_>, Vec<_>) = waiters.drain(..).partition(|(_, d)| *d <= now);
            *waiters = keep;
            if !late.is_empty() {
                due.push((id.clone(), late));
            }
        }
        chat.asks.retain(|_, w| !w.is_empty());
        for (id, late) in due {
            let info = self.request_info(&id);
            for (reply, _) in late {
                let _ = reply.send(p::result(&info));
            }
        }
    }
}
