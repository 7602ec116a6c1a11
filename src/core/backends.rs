//! Auto mode's backends: who answers a request, in order (`rules`, the controller `pane`,
//! an `exec` command), ending with the person. One request at a time per controller pane; a
//! silent controller times out to the next backend; every step is in the request's trail.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use chrono::Utc;
use serde_json::json;
use tracing::warn;

use crate::config::{Config, Rule};
use crate::detect::blocks::{self, BlockKind};
use crate::store::{MessageKind, NewMessage, RequestStatus};

use super::{extract_response, first_line, Core, Effect, View};

/// One link of the backend chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The first matching rule answers.
    Rules,
    /// A controller agent in a tmux pane (also called `codex-interactive`).
    Pane,
    /// A command run once per request.
    Exec,
    /// A person, through the files.
    Manual,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Rules => "rules",
            Backend::Pane => "pane",
            Backend::Exec => "exec",
            Backend::Manual => "manual",
        }
    }

    fn parse(name: &str) -> Option<Backend> {
        match name {
            "rules" => Some(Backend::Rules),
            "pane" | "codex-interactive" => Some(Backend::Pane),
            "exec" => Some(Backend::Exec),
            "manual" => Some(Backend::Manual),
            _ => None,
        }
    }
}

/// The chain of backends for this configuration; it always ends with `manual`.
pub fn chain(cfg: &Config) -> Vec<Backend> {
    let mut chain: Vec<Backend> = if cfg.controller_backends.is_empty() {
        let mut c = Vec::new();
        if !cfg.rules.is_empty() {
            c.push(Backend::Rules);
        }
        if cfg.controller_cmd.is_empty() {
            c.push(Backend::Pane);
        } else {
            c.push(Backend::Exec);
        }
        c
    } else {
        cfg.controller_backends
            .iter()
            .filter_map(|n| Backend::parse(n))
            .collect()
    };
    if let Some(i) = chain.iter().position(|b| *b == Backend::Manual) {
        chain.truncate(i);
    }
    chain.dedup();
    chain.push(Backend::Manual);
    chain
}

/// The reply of the first rule that matches the request.
pub fn rules_answer<'r>(rules: &'r [Rule], request: &str) -> Option<&'r Rule> {
    rules.iter().find(|r| r.regex.is_match(request))
}

/// What an `exec` run came to.
#[derive(Debug)]
pub struct ExecDone {
    pub id: String,
    /// Standard output, or why there is no answer.
    pub result: Result<String, String>,
}

/// What the loop guard remembers of one asking agent.
#[derive(Debug, Default)]
pub struct Guard {
    /// Heuristic requests answered automatically since the last request block.
    pub streak: u32,
    /// Requests answered automatically lately (whitespace folded), newest last.
    pub answered: VecDeque<String>,
}

/// Auto mode's moving parts (the durable part is in the journal).
#[derive(Debug, Default)]
pub struct Auto {
    /// The loop guard, per asking agent.
    pub guards: HashMap<String, Guard>,
    /// Requests on their way down the chain: id → the next backend to try.
    pub routes: HashMap<String, Route>,
    /// Requests waiting for the controller pane, oldest first.
    pub waiting: VecDeque<String>,
    /// The one request the controller pane is working on.
    pub asking: Option<Asking>,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub text: String,
    pub agent: String,
    pub kind: crate::store::RequestKind,
    pub next: usize,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Asking {
    pub id: String,
    pub since: Instant,
    /// The prompt's delivery row, while it waits or is typed.
    pub delivery: Option<i64>,
    /// The prompt was typed; response blocks before that are not answers.
    pub typed: bool,
}

impl Core {
    pub(super) fn route_new(
        &mut self,
        id: &str,
        text: &str,
        agent: &str,
        kind: crate::store::RequestKind,
    ) {
        use crate::store::RequestKind;
        if !self.s.auto {
            return;
        }
        // A worker that ends every turn with "Done." and a controller that always answers would
        // otherwise talk forever (`guards:` in the config).
        let (max_streak, max_same) = (
            self.s.guards.heuristic_streak,
            self.s.guards.same_request as usize,
        );
        let guard = self.auto.guards.entry(agent.to_string()).or_default();
        if kind == RequestKind::Block {
            guard.streak = 0;
        }
        let norm = blocks::normalize(text);
        let same = guard.answered.iter().filter(|a| **a == norm).count();
        let why = if kind == RequestKind::Heuristic && guard.streak >= max_streak {
            Some(format!(
                "loop guard: {} questions in a row at the end of {agent}'s turns were answered \
                 automatically; a person decides whether it goes on",
                guard.streak
            ))
        } else if same >= max_same {
            Some(format!(
                "loop guard: {agent} asked this {} times already and got automatic answers; a \
                 person decides whether it goes on",
                same
            ))
        } else {
            None
        };
        if let Some(why) = why {
            self.print(
                "guard",
                format!("{id}: {why}"),
                json!({ "id": id, "agent": agent, "reason": why }),
            );
            if let Some(pane) = self.agents.worker {
                self.out.push(Effect::Tell {
                    pane,
                    text: format!("[macs] {why}; see inbox/{id}.md"),
                });
            }
            self.fallback(id, &[why]);
            return;
        }
        self.auto.routes.insert(
            id.to_string(),
            Route {
                text: text.to_string(),
                agent: agent.to_string(),
                kind,
                next: 0,
                notes: Vec::new(),
            },
        );
        self.route(id);
    }

    /// An automatic answer was given: the loop guard counts it.
    fn count_automatic(&mut self, route: &Route) {
        let guard = self.auto.guards.entry(route.agent.clone()).or_default();
        if route.kind == crate::store::RequestKind::Heuristic {
            guard.streak += 1;
        }
        guard.answered.push_back(blocks::normalize(&route.text));
        while guard.answered.len() > 20 {
            guard.answered.pop_front();
        }
    }

    /// Sends a request down the chain, from the next backend it has not tried.
    pub(super) fn route(&mut self, id: &str) {
        loop {
            let Some(route) = self.auto.routes.get_mut(id) else {
                return;
            };
            let Some(&backend) = self.s.chain.get(route.next) else {
                break;
            };
            route.next += 1;
            match backend {
                Backend::Rules => match rules_answer(&self.s.rules, &route.text) {
                    Some(rule) => {
                        let (reply, why) = (rule.reply.clone(), rule.regex.as_str().to_string());
                        self.backend_answer(id, &reply, &format!("rules (matched {why:?})"));
                        return;
                    }
                    None => route.notes.push("rules: no rule matched".into()),
                },
                Backend::Pane => {
                    if self.agents.controller.is_some() {
                        self.auto.waiting.push_back(id.to_string());
                        self.journal(|st| {
                            st.set_request_status(id, RequestStatus::Asked, Some("pane: asked"))
                        });
                        self.print(
                            "asking",
                            format!("{id}: waiting for the controller pane"),
                            json!({ "id": id, "backend": "pane" }),
                        );
                        self.pump_controller();
                        return;
                    }
                    route.notes.push(format!(
                        "pane: no controller pane (no pane matches {:?})",
                        self.s.controller
                    ));
                }
                Backend::Exec => {
                    let (agent, text) = (route.agent.clone(), route.text.clone());
                    let prompt = self.wrap(id, &agent, &text);
                    self.journal(|st| {
                        st.set_request_status(id, RequestStatus::Asked, Some("exec: asked"))
                    });
                    self.print(
                        "asking",
                        format!("{id}: running the exec backend"),
                        json!({ "id": id, "backend": "exec" }),
                    );
                    self.out.push(Effect::RunExec {
                        id: id.to_string(),
                        prompt,
                        timeout: self.s.timeout,
                    });
                    return;
                }
                Backend::Manual => break,
            }
        }
        let notes = self
            .auto
            .routes
            .remove(id)
            .map(|r| r.notes)
            .unwrap_or_default();
        self.fallback(id, &notes);
    }

    /// The request wrapped for a controller (`prompts/controller_request.txt` or the state
    /// dir's override, which the runner loaded into the settings' state dir).
    pub(super) fn wrap(&self, id: &str, worker: &str, request: &str) -> String {
        use crate::prompts::{load, render_request, PromptKind};
        let template = load(PromptKind::ControllerRequest, &self.s.state_dir).unwrap_or_else(|e| {
            warn!(error = %e, "using the built-in controller request wrapper");
            PromptKind::ControllerRequest.builtin().to_string()
        });
        render_request(&template, id, worker, request)
    }

    /// No backend answered: the request waits for a person, with a note.
    pub(super) fn fallback(&mut self, id: &str, notes: &[String]) {
        let why = if notes.is_empty() {
            "no controller backend is configured".to_string()
        } else {
            notes.join("; ")
        };
        let text = format!(
            "Request {id} is waiting for a person: the controller could not answer it.\n\n{}\n\nAnswer it in outbox/{id}.md.\n",
            notes.iter().map(|n| format!("- {n}")).collect::<Vec<_>>().join("\n")
        );
        self.journal(|st| st.set_request_status(id, RequestStatus::Fallback, Some(&why)));
        self.view(View::InboxNote {
            id: id.to_string(),
            text: text.clone(),
        });
        self.view(View::ArchiveNote {
            id: id.to_string(),
            name: "fallback",
            text,
        });
        self.print(
            "fallback",
            format!("{id} goes to the person (inbox/{id}.md): {why}"),
            json!({ "id": id, "reasons": notes }),
        );
    }

    /// A backend answered.
    pub(super) fn backend_answer(&mut self, id: &str, raw: &str, backend: &str) {
        // No route: answered already (a person was quicker), or given up; a late answer from
        // a backend is not a second answer.
        let Some(route) = self.auto.routes.remove(id) else {
            self.print(
                "ignored",
                format!("{id}: a late answer from {backend}; the request was answered already"),
                json!({ "id": id, "backend": backend }),
            );
            return;
        };
        self.count_automatic(&route);
        let note = format!(
            "answered by: {backend}\nat: {}\n\n{raw}\n",
            Utc::now().to_rfc3339()
        );
        self.view(View::ArchiveNote {
            id: id.to_string(),
            name: "controller",
            text: note,
        });
        let text = extract_response(raw);
        self.print(
            "answer",
            format!("{id} answered by {backend}: {}", first_line(&text)),
            json!({ "id": id, "backend": backend, "text": raw }),
        );
        let by = backend
            .split_whitespace()
            .next()
            .unwrap_or(backend)
            .to_string();
        self.take_answer(id, raw, None, &by);
    }

    /// A new response block in the controller pane.
    pub(super) fn controller_response(&mut self, body: String) {
        match self.auto.asking.take() {
            Some(asking) if asking.typed => {
                let text = blocks::block_text(&BlockKind::Response, &body);
                self.backend_answer(&asking.id, &text, "pane");
                self.pump_controller();
            }
            other => {
                self.auto.asking = other;
                self.print(
                    "ignored",
                    "a response block in the controller pane that answers no request".into(),
                    json!({ "text": body }),
                );
            }
        }
    }

    /// Gives the controller pane its next request, when it has none.
    pub(super) fn pump_controller(&mut self) {
        let Some(controller) = self.agents.controller else {
            return;
        };
        if self.auto.asking.is_some() {
            return;
        }
        let Some(id) = self.auto.waiting.pop_front() else {
            return;
        };
        let Some(route) = self.auto.routes.get(&id).cloned() else {
            return;
        };
        let text = self.wrap(&id, &route.agent, &route.text);
        let recipient = self.agents.recipient(controller);
        let message = NewMessage {
            from: "bridge".into(),
            to: recipient.clone(),
            content: text,
            urgent: false,
            meta: json!({ "request": id }),
            kind: MessageKind::Prompt,
        };
        let pane = Some(controller.to_string());
        let stored =
            self.journal(|st| st.add_message(&message, &[(recipient.clone(), pane)], &|_| false));
        self.auto.asking = Some(Asking {
            id,
            since: self.now,
            delivery: None,
            typed: false,
        });
        if stored.is_some() {
            self.load_queue_of(controller, &recipient);
        }
    }

    /// A controller pane that takes too long: the next backend gets the request.
    pub(super) fn controller_timeout(&mut self) {
        let late = self
            .auto
            .asking
            .as_ref()
            .is_some_and(|a| self.now.duration_since(a.since) >= self.s.timeout);
        if !late {
            return;
        }
        let Some(asking) = self.auto.asking.take() else {
            return;
        };
        let reason = format!(
            "the controller pane did not answer within {}s",
            self.s.timeout.as_secs()
        );
        self.print(
            "no-answer",
            format!("{}: pane: {reason}", asking.id),
            json!({ "id": asking.id, "backend": "pane", "reason": reason }),
        );
        if let Some(c) = self.agents.controller {
            self.drop_queued(c, &asking.id, "the controller timed out");
        }
        if let Some(route) = self.auto.routes.get_mut(&asking.id) {
            route.notes.push(format!("pane: {reason}"));
        }
        self.route(&asking.id);
        self.pump_controller();
    }

    pub(super) fn exec_done(&mut self, done: ExecDone) {
        match done.result {
            Ok(out) => self.backend_answer(&done.id, &out, "exec"),
            Err(reason) => {
                self.print(
                    "no-answer",
                    format!("{}: exec: {reason}", done.id),
                    json!({ "id": done.id, "backend": "exec", "reason": reason }),
                );
                if let Some(route) = self.auto.routes.get_mut(&done.id) {
                    route.notes.push(format!("exec: {reason}"));
                }
                self.route(&done.id);
            }
        }
    }
}
