//! A request's road: detected → asked → answered → delivered, or to the person.
//!
//! Each request has one record in the journal (the store's `requests` table): its text, where
//! it stands, the answer and who gave it, and the trail of backends that tried. `inbox/<id>.md`
//! and `archive/` are views written from it. An answer, whoever gives it (a rule, the
//! controller pane, an `exec` command, a person's `outbox/<id>.md`), becomes an `answer`
//! message with one delivery row for the worker, and takes the road every typed item takes
//! (`deliveries`). An answer taken from `outbox/` is recorded with its content and time, so a
//! restart never takes the same file again.

use std::time::{Instant, SystemTime};

use chrono::Utc;
use serde_json::json;
use tracing::warn;

use crate::api::protocol as p;
use crate::mailbox::{Delivered, Mailbox, RequestRecord, ResponseError, ResponseFile};
use crate::names::API_PANE;
use crate::store::{
    DeliveryStatus, MessageKind, NewMessage, RequestKind, RequestRow, RequestStatus,
};
use crate::tmux::PaneId;

use super::backends::Route;
use super::{extract_response, first_line, CallId, Core, Effect, View};

fn mtime_ns(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Core {
    /// A detected request.
    pub(super) fn request(&mut self, pane: PaneId, agent: &str, kind: RequestKind, text: String) {
        let now = Utc::now();
        let first = first_line(&text);
        if self.s.dry_run {
            self.print(
                "request",
                format!("{pane} ({agent}) {kind}: {first}"),
                json!({ "pane": pane.to_string(), "agent": agent, "kind": kind.as_str(), "text": text }),
            );
            return;
        }
        let id = Mailbox::new_id(now);
        let record = RequestRecord {
            id: id.clone(),
            session: self.s.session.clone(),
            pane: pane.to_string(),
            agent: agent.to_string(),
            kind,
            detected_at: now,
            text: text.clone(),
        };
        self.file_request(&record, kind.as_str());
        let file = self.s.state_dir.join("inbox").join(format!("{id}.md"));
        self.print(
            "request",
            format!(
                "{id} from {pane} ({agent}) {kind} → {}: {first}",
                file.display()
            ),
            json!({ "id": id, "pane": pane.to_string(), "agent": agent, "kind": kind.as_str(),
                    "text": text, "file": file }),
        );
        self.route_new(&id, &text, agent, kind);
    }

    /// Records a request (journal, then the inbox view) and tells subscribers.
    fn file_request(&mut self, r: &RequestRecord, kind: &str) {
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
            answer_raw: None,
            trail: Vec::new(),
            server: self.server.clone(),
        };
        self.journal(|st| st.upsert_request(&row));
        self.view(View::Inbox(r.clone()));
        self.publish(
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

    /// Files a question from an API client as a request (pane [`API_PANE`]).
    pub(super) fn file_api_request(&mut self, from: &str, question: &str) -> String {
        let now = Utc::now();
        let id = Mailbox::new_id(now);
        let record = RequestRecord {
            id: id.clone(),
            session: self.s.session.clone(),
            pane: API_PANE.to_string(),
            agent: from.to_string(),
            kind: RequestKind::Ask,
            detected_at: now,
            text: question.to_string(),
        };
        self.file_request(&record, "ask");
        self.print(
            "request",
            format!("{id} from {from} (API): {}", first_line(question)),
            json!({ "id": id, "pane": API_PANE, "agent": from, "kind": "ask", "text": question }),
        );
        self.route_new(&id, question, from, RequestKind::Ask);
        id
    }

    /// An answer for request `id` (raw as given; `stamp` for a file from `outbox/`): recorded,
    /// then queued for the worker or returned to the API caller.
    pub(super) fn take_answer(&mut self, id: &str, raw: &str, stamp: Option<i64>, by: &str) {
        let Some(mut row) = self
            .store
            .as_ref()
            .and_then(|s| s.request(id).ok().flatten())
        else {
            return;
        };
        let text = extract_response(raw);
        if text.is_empty() {
            self.view(View::Error {
                id: id.to_string(),
                text: "the response has nothing to send (an empty WORKER INSTRUCTIONS part?)"
                    .into(),
            });
            return;
        }
        let raw_key = match stamp {
            Some(ns) => format!("{ns}\n{raw}"),
            None => raw.to_string(),
        };
        row.status = RequestStatus::Answered;
        row.answer = Some(text.clone());
        row.answer_raw = Some(raw_key);
        row.answered_by = Some(by.to_string());
        row.trail.push(format!("answered by {by}"));
        if row.pane == API_PANE {
            // Asked through the API (an MCP tool call): the answer goes back to the caller,
            // never into a pane.
            row.status = RequestStatus::Delivered;
            self.journal(|st| st.upsert_request(&row));
            let facts = Delivered {
                at: Utc::now(),
                pane: API_PANE.to_string(),
                outcome: format!("returned to {}'s API call", row.agent),
                sent_text: text.clone(),
            };
            self.archive(id, raw, facts);
            self.print(
                "answered",
                format!("{id} for {} (API): {}", row.agent, first_line(&text)),
                json!({ "id": id, "agent": row.agent, "text": text }),
            );
            self.answer_asks(id);
            return;
        }
        // The pane that asked, when it is still the same pane (same tmux server, same name);
        // else the worker.
        let same_server = row.server.is_empty() || row.server == self.server;
        let pane = row
            .pane
            .parse::<PaneId>()
            .ok()
            .filter(|p| same_server && self.agents.info(*p).is_some())
            .filter(|p| self.agents.display(*p) == row.agent)
            .or(self.agents.worker);
        let recipient = match pane {
            Some(p) => self.agents.recipient(p),
            None => row.agent.clone(),
        };
        let message = NewMessage {
            from: by.to_string(),
            to: recipient.clone(),
            content: text.clone(),
            urgent: false,
            meta: json!({ "request": id }),
            kind: MessageKind::Answer,
        };
        let pane_s = pane.map(|p| p.to_string());
        let stored = self.journal(|st| {
            st.batch(|st| {
                st.upsert_request(&row)?;
                st.add_message(&message, &[(recipient.clone(), pane_s.clone())], &|_| false)
            })
        });
        if stored.is_none() {
            return;
        }
        self.view(View::ClearError { id: id.to_string() });
        match pane {
            Some(p) => {
                self.print(
                    "queued",
                    format!("{id} for {p}: {}", first_line(&text)),
                    json!({ "id": id, "pane": p.to_string(), "text": text }),
                );
                self.load_queue_of(p, &recipient);
            }
            None => warn!(%id, "no pane to deliver to yet; it waits in the journal"),
        }
    }

    /// Writes the archive view of a delivered request.
    pub(super) fn archive(&mut self, id: &str, raw: &str, facts: Delivered) {
        self.view(View::Archive {
            id: id.to_string(),
            response: ResponseFile {
                raw: raw.to_string(),
                modified: SystemTime::now(),
                len: raw.len() as u64,
            },
            facts,
        });
    }

    /// Writes the archive view of a request the journal says was delivered (a restart, or a
    /// crash before the view was written).
    fn archive_again(&mut self, row: &RequestRow) {
        let facts = Delivered {
            at: Utc::now(),
            pane: row.pane.clone(),
            outcome: "delivered (recorded in the journal)".into(),
            sent_text: row.answer.clone().unwrap_or_default(),
        };
        self.archive(&row.id, &raw_of(row), facts);
    }

    /// The answer to request `id` was typed and submitted.
    pub(super) fn answer_delivered(&mut self, id: &str, pane: PaneId, text: &str, detail: &str) {
        let Some(row) = self
            .store
            .as_ref()
            .and_then(|s| s.request(id).ok().flatten())
        else {
            return;
        };
        self.journal(|st| st.set_request_status(id, RequestStatus::Delivered, Some("delivered")));
        let raw = raw_of(&row);
        let facts = Delivered {
            at: Utc::now(),
            pane: pane.to_string(),
            outcome: format!("delivered ({detail})"),
            sent_text: text.to_string(),
        };
        self.archive(id, &raw, facts);
        self.answer_asks(id);
    }

    /// `outbox/<id>.md` was read.
    pub(super) fn outbox(&mut self, id: &str, read: Result<ResponseFile, ResponseError>) {
        let response = match read {
            Ok(r) => r,
            Err(e) if !e.is_content_problem() => {
                // The file could not be read now (a transient error): the runner tries again.
                warn!(%id, error = %e, "outbox file not readable now");
                return;
            }
            Err(e) => return self.refuse_answer(id, &e),
        };
        let row = self
            .store
            .as_ref()
            .and_then(|s| s.request(id).ok().flatten());
        let Some(row) = row else {
            return self.refuse_answer(id, &ResponseError::UnknownId { id: id.to_string() });
        };
        let key = format!("{}\n{}", mtime_ns(response.modified), response.raw);
        match row.status {
            RequestStatus::Delivered => {
                if row.answer_raw.as_deref() == Some(&key)
                    || row.answer_raw.as_deref() == Some(&response.raw)
                {
                    // The archive was interrupted: finish it.
                    self.archive_again(&row);
                } else {
                    let e = ResponseError::AlreadyAnswered { id: id.to_string() };
                    self.view(View::Error {
                        id: id.to_string(),
                        text: e.to_string(),
                    });
                }
            }
            RequestStatus::Answered if row.answer_raw.as_deref() == Some(&key) => {
                // Taken already (a restart, or the same save seen twice).
            }
            RequestStatus::Answered if self.answer_typing(id) => {
                // Being typed right now; a change after this is not sent again.
            }
            _ => {
                // New, or a newer answer while the old one waits: it replaces the queued one.
                self.drop_queued_answers(id);
                self.auto.routes.remove(id);
                self.auto.waiting.retain(|w| w != id);
                if self.auto.asking.as_ref().is_some_and(|a| a.id == id) {
                    // The person answered what the controller is working on: it is free again.
                    self.auto.asking = None;
                    if let Some(c) = self.agents.controller {
                        self.drop_queued(c, id, "answered by a person first");
                    }
                    self.pump_controller();
                }
                self.take_answer(
                    id,
                    &response.raw,
                    Some(mtime_ns(response.modified)),
                    "person",
                );
            }
        }
    }

    /// After a restart: requests already filed are not filed again (their blocks are known on
    /// their panes), answered ones finish their road, and in auto mode those that were on
    /// their way to a backend go down the chain again.
    pub(super) fn recover_requests(&mut self, files: &[String]) {
        let Some(store) = &self.store else { return };
        let active = store.active_requests().unwrap_or_default();
        let recent = store.recent_requests(64).unwrap_or_default();
        // The inbox view is written again for every request still waiting (the daemon may
        // have stopped between the journal and the file).
        for r in &active {
            if r.status == RequestStatus::Fallback {
                let notes: Vec<String> = r.trail.iter().map(|n| format!("- {n}")).collect();
                self.view(View::InboxNote {
                    id: r.id.clone(),
                    text: format!(
                        "Request {} is waiting for a person: the controller could not answer it.\n\n{}\n\nAnswer it in outbox/{}.md.\n",
                        r.id,
                        notes.join("\n"),
                        r.id
                    ),
                });
            }
            if r.status != RequestStatus::Answered {
                self.view(View::Inbox(RequestRecord {
                    id: r.id.clone(),
                    session: self.s.session.clone(),
                    pane: r.pane.clone(),
                    agent: r.agent.clone(),
                    kind: r.kind,
                    detected_at: r.detected_at,
                    text: r.text.clone(),
                }));
            }
        }
        for r in &recent {
            // A pane id of another tmux server names another pane (ids start again at `%0`).
            if !r.server.is_empty() && r.server != self.server {
                continue;
            }
            if let Ok(pane) = r.pane.parse::<PaneId>() {
                if r.kind != RequestKind::Ask {
                    self.preload(pane, r.kind, &r.text);
                }
            }
        }
        for id in files {
            let row = self
                .store
                .as_ref()
                .and_then(|s| s.request(id).ok().flatten());
            if let Some(row) = row.filter(|r| r.status == RequestStatus::Delivered) {
                // Delivered, but the archive view was not finished.
                self.archive_again(&row);
            }
        }
        if !self.s.auto {
            return;
        }
        // Controller prompts still queued from before: their requests are asked again below,
        // once each.
        if let Some(c) = self.agents.controller {
            let recipient = self.agents.recipient(c);
            let stale: Vec<i64> = self
                .store
                .as_ref()
                .and_then(|st| st.next_deliveries_with_messages(&recipient, 1000).ok())
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, m)| m.kind == crate::store::MessageKind::Prompt)
                .map(|(d, _)| d.id)
                .collect();
            for d in stale {
                self.journal(|st| {
                    st.mark(
                        d,
                        DeliveryStatus::Failed,
                        Some("asked again after a restart"),
                    )
                });
            }
        }
        let asking = self.auto.asking.as_ref().map(|a| a.id.clone());
        for r in active {
            if matches!(r.status, RequestStatus::Open | RequestStatus::Asked) {
                let being_asked = asking.as_deref() == Some(r.id.as_str());
                // The request whose prompt was being typed stays with the controller.
                let next = if being_asked {
                    self.s
                        .chain
                        .iter()
                        .position(|b| *b == super::Backend::Pane)
                        .map_or(0, |i| i + 1)
                } else {
                    0
                };
                self.auto.routes.insert(
                    r.id.clone(),
                    Route {
                        text: r.text.clone(),
                        agent: r.agent.clone(),
                        kind: r.kind,
                        next,
                        notes: Vec::new(),
                    },
                );
                if !being_asked {
                    self.route(&r.id);
                }
            }
        }
    }

    /// Whether the answer to `id` is being typed now.
    fn answer_typing(&self, id: &str) -> bool {
        self.agents.slots().any(|(_, s)| {
            s.queue
                .in_flight
                .as_ref()
                .is_some_and(|i| i.request() == Some(id))
        })
    }

    /// Answers waiting in a queue for request `id` are replaced by a newer one.
    fn drop_queued_answers(&mut self, id: &str) {
        let panes: Vec<PaneId> = self.agents.slots().map(|(p, _)| *p).collect();
        for p in panes {
            self.drop_queued(p, id, "replaced by a newer answer");
        }
    }

    /// Takes the items for request `id` out of `pane`'s queue; their rows fail with `why`.
    pub(super) fn drop_queued(&mut self, pane: PaneId, id: &str, why: &str) {
        let mut dropped = Vec::new();
        self.agents.slot(pane).queue.waiting.retain(|i| {
            let hit = i.request() == Some(id);
            if hit {
                dropped.push(i.delivery);
            }
            !hit
        });
        for d in dropped {
            self.in_queue.remove(&d);
            self.journal(|st| st.mark(d, DeliveryStatus::Failed, Some(why)));
        }
    }

    /// An answer file that cannot be used: said on the console and in `outbox/<id>.error`.
    fn refuse_answer(&mut self, id: &str, e: &ResponseError) {
        self.print(
            "error",
            format!("outbox/{id}.md: {e} (see outbox/{id}.error)"),
            json!({ "id": id, "error": e.to_string() }),
        );
        self.view(View::Error {
            id: id.to_string(),
            text: e.to_string(),
        });
    }

    /// `request.ask` calls waiting for `id` get their answer.
    fn answer_asks(&mut self, id: &str) {
        let waiting = self.asks.remove(id).unwrap_or_default();
        if waiting.is_empty() {
            return;
        }
        let info = self.request_info(id);
        for (call, _) in waiting {
            self.out.push(Effect::Reply {
                call,
                result: p::result(&info),
            });
        }
    }

    /// A `request.ask` call waits for `id` until `deadline`.
    pub(super) fn wait_ask(&mut self, id: &str, call: CallId, deadline: Instant) {
        self.asks
            .entry(id.to_string())
            .or_default()
            .push((call, deadline));
    }

    /// `request.ask` calls whose time is up get "pending".
    pub(super) fn expire_asks(&mut self) {
        let now = self.now;
        let mut due = Vec::new();
        for (id, waiters) in self.asks.iter_mut() {
            let (late, keep): (Vec<_>, Vec<_>) = waiters.drain(..).partition(|(_, d)| *d <= now);
            *waiters = keep;
            if !late.is_empty() {
                due.push((id.clone(), late));
            }
        }
        self.asks.retain(|_, w| !w.is_empty());
        for (id, late) in due {
            let info = self.request_info(&id);
            for (call, _) in late {
                self.out.push(Effect::Reply {
                    call,
                    result: p::result(&info),
                });
            }
        }
    }

    pub(super) fn request_info(&self, id: &str) -> p::RequestInfo {
        let row = self
            .store
            .as_ref()
            .and_then(|s| s.request(id).ok().flatten());
        match row {
            Some(r) => p::RequestInfo {
                id: r.id,
                from: r.agent,
                question: r.text,
                status: if r.status.is_answered() {
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
}

/// The answer as given (without the file's time stamp kept in front of it).
fn raw_of(row: &RequestRow) -> String {
    let raw = row.answer_raw.clone().unwrap_or_default();
    match raw.split_once('\n') {
        Some((ns, rest)) if !ns.is_empty() && ns.bytes().all(|b| b.is_ascii_digit()) => {
            rest.to_string()
        }
        _ => raw,
    }
}
