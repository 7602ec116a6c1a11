//! The API methods the core answers, as a typed enum with one function per method. The runner
//! parses a call into a [`Request`] (or answers it itself: subscriptions, pane snapshots); the
//! core answers with [`super::Effect::Reply`], at once or, for `request.ask` with a wait, when
//! the answer comes.

use std::time::Duration;

use serde_json::Value;

use crate::api::protocol::{self as p, method, RpcError};
use crate::names::PERSON;
use crate::store::{Cursor, HistoryQuery};
use crate::tmux::command::KeyName;

use super::chat::{store_err, wire_message};
use super::{CallId, Core, Effect};

/// A call the core answers.
#[derive(Debug, Clone)]
pub enum Request {
    Hello(p::HelloParams),
    ChatSend(p::ChatSendParams),
    ChatHistory(p::ChatHistoryParams),
    ChatRead(p::ChatReadParams),
    AgentsList,
    Pause(p::AgentNameParams),
    Resume(p::AgentNameParams),
    Key(p::AgentKeyParams),
    Ask(p::RequestAskParams),
    Get(p::RequestGetParams),
    Handoff(p::TaskParams),
    Assign(p::TaskParams),
    TaskGet(p::TaskGetParams),
    Discuss(p::DiscussParams),
    Stop,
    Info,
}

impl Request {
    /// The request for a method, or `Ok(None)` for a method the core does not answer.
    pub fn parse(name: &str, params: Value) -> Result<Option<Request>, RpcError> {
        Ok(Some(match name {
            method::HELLO => Request::Hello(p::params(params)?),
            method::CHAT_SEND => Request::ChatSend(p::params(params)?),
            method::CHAT_HISTORY => Request::ChatHistory(p::params(params)?),
            method::CHAT_READ => Request::ChatRead(p::params(params)?),
            method::AGENTS_LIST => Request::AgentsList,
            method::AGENT_PAUSE => Request::Pause(p::params(params)?),
            method::AGENT_RESUME => Request::Resume(p::params(params)?),
            method::AGENT_KEY => Request::Key(p::params(params)?),
            method::REQUEST_ASK => Request::Ask(p::params(params)?),
            method::REQUEST_GET => Request::Get(p::params(params)?),
            method::TASK_HANDOFF => Request::Handoff(p::params(params)?),
            method::TASK_ASSIGN => Request::Assign(p::params(params)?),
            method::TASK_GET => Request::TaskGet(p::params(params)?),
            method::CHAT_DISCUSS => Request::Discuss(p::params(params)?),
            method::CHAT_STOP => Request::Stop,
            method::DAEMON_INFO => Request::Info,
            _ => return Ok(None),
        }))
    }
}

impl Core {
    pub(super) fn call(
        &mut self,
        call: CallId,
        conn: u64,
        agent: Option<String>,
        request: Request,
    ) {
        let mark = self.out.len();
        let result = match self.check_identity(agent.as_deref(), &request) {
            Err(e) => Some(Err(e)),
            Ok(()) => self.run_call(call, conn, agent, request),
        };
        let Some(result) = result else { return };
        // The caller hears first; typing what the call queued comes after.
        self.out.insert(mark, Effect::Reply { call, result });
    }

    /// A connection from an agent's pane is that agent, whatever it says: it may not speak as
    /// anyone else, and the person's powers (keys, urgent text, pauses) are not its own.
    fn check_identity(&self, agent: Option<&str>, request: &Request) -> Result<(), RpcError> {
        let Some(me) = agent else { return Ok(()) };
        let claims = |name: &str, what: &str| -> Result<(), RpcError> {
            if name == me {
                Ok(())
            } else {
                Err(RpcError::forbidden(format!(
                    "this connection comes from {me}'s pane: it cannot {what} as {name:?}"
                )))
            }
        };
        match request {
            Request::Hello(h) => claims(&h.name, "say hello"),
            Request::ChatSend(s) => match &s.from {
                Some(from) => claims(from, "send"),
                None => Ok(()),
            },
            Request::Ask(a) => claims(&a.from, "ask"),
            Request::Pause(_) | Request::Resume(_) | Request::Key(_) => Err(RpcError::forbidden(
                format!("{me} is an agent: only the person pauses, resumes and sends keys"),
            )),
            _ => Ok(()),
        }
    }

    /// Runs a call; `None` when the answer comes later.
    fn run_call(
        &mut self,
        call: CallId,
        conn: u64,
        agent: Option<String>,
        request: Request,
    ) -> Option<Result<Value, RpcError>> {
        if let Some(me) = &agent {
            self.names.insert(conn, me.clone());
        }
        Some(match request {
            Request::Hello(h) => self.hello(conn, h),
            Request::ChatSend(s) => self.api_send(conn, s),
            Request::ChatHistory(h) => self.history(h),
            Request::ChatRead(r) => self.read(r),
            Request::AgentsList => p::result(&self.agents_list()),
            Request::Pause(a) => self
                .pause(a.name, true)
                .and_then(|names| p::result(&p::AgentNamesResult { names })),
            Request::Resume(a) => self
                .pause(a.name, false)
                .and_then(|names| p::result(&p::AgentNamesResult { names })),
            Request::Key(k) => self.key(conn, k),
            Request::Ask(a) => match self.ask(call, a) {
                Ok(None) => return None,
                Ok(Some(v)) => Ok(v),
                Err(e) => Err(e),
            },
            Request::Get(g) => self.get(g),
            Request::Handoff(t) => {
                let caller = self.caller(conn);
                match self.task(call, &caller, t, false) {
                    Ok(None) => return None,
                    Ok(Some(v)) => Ok(v),
                    Err(e) => Err(e),
                }
            }
            Request::Assign(t) => {
                let caller = self.caller(conn);
                self.task(call, &caller, t, true)
                    .map(|v| v.unwrap_or(Value::Null))
            }
            Request::TaskGet(g) => self.task_get(g),
            Request::Discuss(d) => {
                let caller = self.caller(conn);
                self.discuss(&caller, d)
            }
            Request::Stop => {
                let caller = self.caller(conn);
                self.stop_discussion(&caller)
            }
            Request::Info => p::result(&self.info()),
        })
    }

    fn caller(&self, conn: u64) -> String {
        self.names
            .get(&conn)
            .cloned()
            .unwrap_or_else(|| PERSON.to_string())
    }

    fn hello(&mut self, conn: u64, h: p::HelloParams) -> Result<Value, RpcError> {
        if !p::is_valid_name(&h.name) {
            return Err(RpcError::invalid_params(format!(
                "not a valid name: {:?}",
                h.name
            )));
        }
        self.names.insert(conn, h.name.clone());
        p::result(&p::HelloResult {
            name: h.name,
            session: self.s.session.clone(),
        })
    }

    fn api_send(&mut self, conn: u64, s: p::ChatSendParams) -> Result<Value, RpcError> {
        let from = s.from.clone().unwrap_or_else(|| self.caller(conn));
        if !p::is_valid_name(&from) {
            return Err(RpcError::invalid_params(format!(
                "not a valid sender name: {from:?}"
            )));
        }
        let r = self.chat_send(&from, &s.content, s.to.as_deref(), s.urgent, s.meta)?;
        p::result(&r)
    }

    fn history(&self, h: p::ChatHistoryParams) -> Result<Value, RpcError> {
        let store = self
            .store
            .as_ref()
            .ok_or_else(|| RpcError::unavailable("no chat"))?;
        let q = HistoryQuery {
            limit: h.limit.map(|l| l as usize),
            since: h.since.as_deref().map(Cursor::parse),
            involving: h.involving,
            ..Default::default()
        };
        let rows = store.history(&q).map_err(store_err)?;
        let messages = rows
            .into_iter()
            .map(|m| {
                let mut w = wire_message(&m.message);
                w.deliveries = m
                    .deliveries
                    .iter()
                    .map(|d| p::Delivery {
                        recipient: d.recipient.clone(),
                        status: super::deliveries::wire_status(d.status),
                    })
                    .collect();
                w
            })
            .collect();
        p::result(&p::ChatHistoryResult { messages })
    }

    fn read(&mut self, r: p::ChatReadParams) -> Result<Value, RpcError> {
        let since = r
            .since
            .clone()
            .or_else(|| self.read_marks.get(&r.name).cloned());
        let store = self
            .store
            .as_ref()
            .ok_or_else(|| RpcError::unavailable("no chat"))?;
        let msgs = store
            .messages_for(&r.name, since.as_deref(), 200)
            .map_err(store_err)?;
        if let Some(last) = msgs.last() {
            self.read_marks.insert(r.name.clone(), last.id.clone());
        }
        p::result(&p::ChatReadResult {
            messages: msgs.iter().map(wire_message).collect(),
        })
    }

    fn key(&mut self, conn: u64, k: p::AgentKeyParams) -> Result<Value, RpcError> {
        let caller = self.caller(conn);
        if self.agents.is_agent(&caller) {
            return Err(RpcError::forbidden("only the person sends keys"));
        }
        let key = KeyName::parse(&k.key).map_err(|e| RpcError::invalid_params(e.to_string()))?;
        if !self.agents.is_agent(&k.name) {
            return Err(RpcError::not_found(format!("unknown agent {:?}", k.name)));
        }
        if self.agents.pane_of(&k.name).is_none() {
            return Err(RpcError::not_found(format!("{} has no pane now", k.name)));
        }
        self.chat_send(&caller, &format!("!{key}"), Some(&k.name), true, None)?;
        p::result(&p::Empty {})
    }

    /// `request.ask`: files the question; answers at once, or when the answer comes (at most
    /// `wait_seconds`).
    fn ask(&mut self, call: CallId, a: p::RequestAskParams) -> Result<Option<Value>, RpcError> {
        if self.store.is_none() {
            return Err(RpcError::unavailable("dry run: requests are not filed"));
        }
        if a.question.trim().is_empty() {
            return Err(RpcError::invalid_params("the question is empty"));
        }
        let id = self.file_api_request(&a.from, &a.question);
        let wait = a.wait_seconds.unwrap_or(0).min(p::MAX_WAIT_SECS);
        let info = self.request_info(&id);
        if wait == 0 || info.status == p::RequestStatus::Answered {
            return p::result(&info).map(Some);
        }
        let deadline = self.now + Duration::from_secs(wait);
        self.wait_ask(&id, call, deadline);
        Ok(None)
    }

    /// `daemon.info`: how the daemon is doing.
    pub(super) fn info(&self) -> p::DaemonInfoResult {
        let mode = self.s.mode_label();
        p::DaemonInfoResult {
            version: env!("CARGO_PKG_VERSION").to_string(),
            session: self.s.session.clone(),
            pid: std::process::id(),
            state_dir: self.s.state_dir.display().to_string(),
            mode: mode.to_string(),
            started_at: self.health.started_at.to_rfc3339(),
            uptime_secs: self.now.duration_since(self.health.born).as_secs(),
            attached: self.health.attached,
            agents: self.agents_list().agents,
            last_error: self.health.last_error.clone(),
        }
    }

    fn get(&self, g: p::RequestGetParams) -> Result<Value, RpcError> {
        let exists = self
            .store
            .as_ref()
            .and_then(|s| s.request(&g.id).ok().flatten())
            .is_some();
        if !exists {
            return Err(RpcError::not_found(format!("no request {:?}", g.id)));
        }
        p::result(&self.request_info(&g.id))
    }
}
