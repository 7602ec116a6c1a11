//! The group chat: who a line goes to (`@name`, `@all`), urgent text and keys (the person's
//! alone), routes, pause and resume. A message is stored with one journal row per recipient
//! in one transaction, then typed like everything else ([`super::deliveries`]).

use serde_json::{json, Map, Value};

use crate::api::protocol::{self as p, RpcError};
use crate::chatline::{self, Line, To};
use crate::store::{MessageKind, NewMessage, StoreError};
use crate::tmux::PaneId;

use super::{first_line, Core};

pub(super) fn store_err(e: StoreError) -> RpcError {
    if e.is_bad_input() {
        RpcError::invalid_params(e.to_string())
    } else {
        RpcError::internal(e.to_string())
    }
}

impl Core {
    /// A message from `from` (the person, an API client, or an agent's block).
    pub(super) fn chat_send(
        &mut self,
        from: &str,
        content: &str,
        to: Option<&str>,
        urgent: bool,
        meta: Option<Map<String, Value>>,
    ) -> Result<p::ChatSendResult, RpcError> {
        if self.store.is_none() {
            return Err(RpcError::unavailable("the chat is off in a dry run"));
        }
        let line = chatline::parse_line(content, to).map_err(RpcError::invalid_params)?;
        let from_agent = self.agents.is_agent(from);
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
        let names = self.agents.names();
        let recipients: Vec<String> = match &dest {
            To::All => names.iter().filter(|n| *n != from).cloned().collect(),
            To::One(n) => {
                if !self.agents.is_agent(n) {
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
            .filter(|r| self.routes.allows(from, r))
            .collect();
        if recipients.is_empty() {
            return Err(match dest {
                To::One(n) => RpcError::forbidden(format!("{from} may not send to {n} (routes)")),
                To::All => RpcError::unavailable("nobody to send to"),
            });
        }
        let with_panes: Vec<(String, Option<String>)> = recipients
            .iter()
            .map(|r| (r.clone(), self.agents.pane_of(r).map(|p| p.to_string())))
            .collect();
        let paused = self.paused.clone();
        // Agents talking to agents: each message is one hop further from the person, and each
        // agent has a send rate. Beyond either limit the message is held for the person
        // (stored, visible, released by resuming its recipient), never dropped.
        let (hop, held_why) = if from_agent {
            self.agent_limits(from)
        } else {
            (0, None)
        };
        let mut meta = meta.unwrap_or_default();
        if from_agent {
            meta.insert("hop".into(), Value::from(hop));
        }
        let hold_all = held_why.is_some();
        let new = NewMessage {
            from: from.to_string(),
            to: dest.name().to_string(),
            content: content.clone(),
            urgent,
            meta: if meta.is_empty() {
                Value::Null
            } else {
                Value::Object(meta)
            },
            kind: if key.is_some() {
                MessageKind::Key
            } else {
                MessageKind::Chat
            },
        };
        let store = self
            .store
            .as_mut()
            .ok_or_else(|| RpcError::unavailable("no chat"))?;
        let message = store
            .add_message(&new, &with_panes, &|n| {
                key.is_none() && (hold_all || paused.contains(n))
            })
            .map_err(store_err)?;
        self.publish(p::event::CHAT_MESSAGE, wire_message(&message));
        if let Some(why) = &held_why {
            self.print(
                "held",
                format!(
                    "{} {from} → {}: held for the person ({why}); resume the recipient to send it",
                    message.id,
                    dest.name()
                ),
                json!({ "id": message.id, "from": from, "to": dest.name(), "reason": why }),
            );
            if let Some(pane) = self.agents.pane_of(from) {
                self.out.push(super::Effect::Tell {
                    pane,
                    text: format!("[macs] a message from {from} is held: {why}"),
                });
            }
        }
        let mut queued = Vec::new();
        for r in &recipients {
            self.load_queue(r);
            let ready = !hold_all
                && self
                    .agents
                    .pane_of(r)
                    .filter(|_| key.is_some() || !self.paused.contains(r))
                    .and_then(|p| self.agents.get_slot(p))
                    .is_some_and(|s| key.is_some() || s.ready() || s.queue.in_flight.is_some());
            if !ready {
                queued.push(r.clone());
            }
        }
        self.print(
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

    /// The hop count of a message `from` sends now, and why it must be held, if it must.
    fn agent_limits(&mut self, from: &str) -> (u32, Option<String>) {
        let now = self.now;
        let g = &self.s.guards;
        let (max_hops, max_rate) = (g.max_hops, g.max_rate as usize);
        let window = std::time::Duration::from_secs(g.rate_window_secs);
        let Some(pane) = self.agents.pane_of(from) else {
            return (1, None);
        };
        let slot = self.agents.slot(pane);
        let hop = slot.hop_in.saturating_add(1);
        while slot
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            slot.sent.pop_front();
        }
        slot.sent.push_back(now);
        let why = if hop > max_hops {
            Some(format!(
                "it is {hop} messages away from the person (agents answering agents; the limit \
                 is {max_hops})"
            ))
        } else if slot.sent.len() > max_rate {
            Some(format!(
                "{from} sent {} messages within {}s (the limit is {max_rate})",
                slot.sent.len(),
                window.as_secs()
            ))
        } else {
            None
        };
        (hop, why)
    }

    /// A `<<MESSAGE to=…>>` block in an agent's pane.
    pub(super) fn agent_message(&mut self, from: &str, to: &str, body: &str) {
        if let Err(e) = self.chat_send(from, body, Some(to), false, None) {
            self.print(
                "error",
                format!("message from {from} to {to} not sent: {}", e.message),
                json!({ "from": from, "to": to, "error": e.message }),
            );
            self.notice(
                from,
                &format!("[macs] your message to {to} was not sent: {}", e.message),
            );
        }
    }

    /// A notice from the bridge to one agent: a journal row like any other, typed only into
    /// agents that take prose. Into a shell (or a REPL, or a pane not read yet) a notice would
    /// be run as a command: there it goes to the people's status lines instead.
    pub(super) fn notice(&mut self, to: &str, text: &str) {
        let Some(pane) = self.agents.pane_of(to) else {
            return;
        };
        let profile = self
            .agents
            .get_slot(pane)
            .map(|s| s.profile.clone())
            .unwrap_or_default();
        if matches!(profile.as_str(), "" | "shell" | "python") {
            self.out.push(super::Effect::Tell {
                pane,
                text: format!("{to}: {text}"),
            });
            return;
        }
        let new = NewMessage {
            from: "bridge".into(),
            to: to.to_string(),
            content: text.to_string(),
            urgent: false,
            meta: Value::Null,
            kind: MessageKind::Notice,
        };
        let with = [(to.to_string(), Some(pane.to_string()))];
        if self
            .journal(|st| st.add_message(&new, &with, &|_| false))
            .is_some()
        {
            self.load_queue(to);
        }
    }

    /// Pauses or resumes agents (all when `name` is None).
    pub(super) fn pause(
        &mut self,
        name: Option<String>,
        pause: bool,
    ) -> Result<Vec<String>, RpcError> {
        if self.store.is_none() {
            return Err(RpcError::unavailable("no chat"));
        }
        let names: Vec<String> = match name {
            Some(n) if self.agents.is_agent(&n) => vec![n],
            Some(n) => return Err(RpcError::not_found(format!("unknown agent {n:?}"))),
            None => self.agents.names(),
        };
        for n in &names {
            if pause {
                self.paused.insert(n.clone());
                self.journal(|st| st.hold(n));
            } else {
                self.paused.remove(n);
                self.journal(|st| st.release(n));
            }
        }
        self.print(
            if pause { "paused" } else { "resumed" },
            names.join(", "),
            json!({ "names": names }),
        );
        if pause {
            // Held in the journal: out of the queues (what is being typed finishes).
            let panes: Vec<PaneId> = names
                .iter()
                .filter_map(|n| self.agents.pane_of(n))
                .collect();
            for pane in panes {
                let q = &mut self.agents.slot(pane).queue;
                let mut dropped = Vec::new();
                q.waiting.retain(|i| {
                    let chat = matches!(i.kind, super::deliveries::ItemKind::Chat { .. });
                    if chat {
                        dropped.push(i.delivery);
                    }
                    !chat
                });
                for d in dropped {
                    self.in_queue.remove(&d);
                }
                self.show_queue(pane);
            }
        } else {
            for n in &names {
                self.load_queue(n);
            }
        }
        Ok(names)
    }

    /// `agents.list`.
    pub(super) fn agents_list(&self) -> p::AgentsListResult {
        let mut agents = Vec::new();
        for name in self.agents.names() {
            let pane = self.agents.pane_of(&name);
            let slot = pane.and_then(|p| self.agents.get_slot(p));
            let held = self
                .store
                .as_ref()
                .and_then(|s| s.held_count(&name).ok())
                .unwrap_or(0);
            agents.push(p::AgentInfo {
                name: name.clone(),
                pane: pane.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                profile: slot
                    .map(|s| s.profile.clone())
                    .unwrap_or_else(|| "-".into()),
                state: slot
                    .map(|s| s.state)
                    .unwrap_or(crate::detect::PaneState::Unknown)
                    .into(),
                queued: (slot.map(|s| s.queue.len()).unwrap_or(0) + held) as u32,
                held: held as u32,
                paused: self.paused.contains(&name),
                replying_to: slot.and_then(|s| s.track.origin.as_ref().map(|o| o.message.clone())),
                typing: slot.is_some_and(|s| {
                    s.queue.in_flight.is_none()
                        && s.prompt.as_deref().is_some_and(|p| !p.trim().is_empty())
                }),
            });
        }
        p::AgentsListResult { agents }
    }
}

pub(super) fn wire_message(m: &crate::store::Message) -> p::ChatMessage {
    p::ChatMessage {
        id: m.id.clone(),
        ts: m.ts.to_rfc3339(),
        from: m.from.clone(),
        to: m.to.clone(),
        content: m.content.clone(),
        urgent: m.urgent,
        meta: m.meta.as_object().cloned(),
        in_reply_to: m
            .meta
            .get("in_reply_to")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        deliveries: Vec::new(),
    }
}
