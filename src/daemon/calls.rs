//! The runner's side of the API: a call from a connection is the core's (as a [`Request`]), or
//! answered here (pane status and snapshots); who is calling comes from the connection's peer
//! process, never from what the client says.

use std::collections::HashMap;

use tokio::sync::mpsc;
use tracing::debug;

use crate::api::protocol::{self as p, method, RpcError};
use crate::api::server::{ApiMsg, Call};
use crate::core::{Event, Request};
use crate::store::StoreError;
use crate::tmux::command::{Command, OptionScope, Target};
use crate::tmux::PaneId;

use super::Runner;

/// At most this many API messages are taken together (one journal commit for their calls).
const MAX_BATCH: usize = 256;

impl Runner {
    /// An API message, and the ones already waiting behind it: the calls among them that go to
    /// the core are handled together and their journal writes committed at once (one commit
    /// instead of one per call); nothing of theirs (answers, typing) is carried out before that
    /// commit. Anything answered here first lets the calls before it finish, so each
    /// connection's answers keep their order.
    pub(super) async fn api(
        &mut self,
        first: ApiMsg,
        more: &mut mpsc::Receiver<ApiMsg>,
    ) -> Result<(), StoreError> {
        let mut batch = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(msg) = next.take() {
            taken += 1;
            match self.core_call(msg).await {
                Ok(event) => batch.push(event),
                Err(msg) => {
                    self.run_batch(std::mem::take(&mut batch)).await?;
                    self.api_here(msg).await;
                }
            }
            if taken < MAX_BATCH {
                next = more.try_recv().ok();
            }
        }
        self.run_batch(batch).await?;
        self.look_dirty().await;
        Ok(())
    }

    /// The core's event for a call the core answers; any other message comes back.
    async fn core_call(&mut self, msg: ApiMsg) -> Result<Event, ApiMsg> {
        let ApiMsg::Call(call) = msg else {
            return Err(msg);
        };
        if self.cfg.dry_run
            || matches!(
                call.method.as_str(),
                method::PANE_STATUS | method::PANE_SNAPSHOT
            )
        {
            return Err(ApiMsg::Call(call));
        }
        let request = match Request::parse(&call.method, call.params.clone()) {
            Ok(Some(r)) => r,
            _ => return Err(ApiMsg::Call(call)),
        };
        self.next_call += 1;
        let id = self.next_call;
        let agent = self.identity(call.client.peer_pid).await;
        let conn = call.client.conn_id;
        self.calls.insert(id, call.reply);
        Ok(Event::Call {
            call: id,
            conn,
            agent,
            request,
        })
    }

    /// Hands calls to the core; two or more in one journal batch, their effects carried out
    /// once it has committed. A batch that cannot commit stops the daemon: none of its calls
    /// was answered and nothing of them typed, and the journal has none of them.
    async fn run_batch(&mut self, events: Vec<Event>) -> Result<(), StoreError> {
        if events.len() < 2 {
            for event in events {
                self.feed(event).await;
            }
            return Ok(());
        }
        let opened = self.core.begin_batch();
        let mut effects = Vec::new();
        for event in events {
            effects.extend(self.core.handle(std::time::Instant::now(), event));
        }
        crate::faults::point("batch-open");
        if opened {
            self.core.end_batch()?;
        }
        crate::faults::point("batch-committed");
        for e in effects {
            self.effect(e).await;
        }
        Ok(())
    }

    /// A message answered here, or not a call: connections closing, subscriptions, pane
    /// status and snapshots, errors.
    async fn api_here(&mut self, msg: ApiMsg) {
        if let ApiMsg::Gone { conn_id } = &msg {
            let conn = *conn_id;
            self.feed(Event::Gone { conn }).await;
        }
        let Some(call) = self.subs.handle(msg) else {
            return;
        };
        if self.cfg.dry_run {
            let _ = call
                .reply
                .send(Err(RpcError::unavailable("dry run: no API")));
            return;
        }
        if matches!(
            call.method.as_str(),
            method::PANE_STATUS | method::PANE_SNAPSHOT
        ) {
            let result = self.pane_call(&call).await;
            let _ = call.reply.send(result);
            return;
        }
        let error = match Request::parse(&call.method, call.params.clone()) {
            Ok(_) => RpcError::method_not_found(&call.method),
            Err(e) => e,
        };
        let _ = call.reply.send(Err(error));
    }

    /// Who a connection is: the agent whose pane the calling process runs in (its pid descends
    /// from the pane's process), else the person. Decided from the socket's peer credentials on
    /// each call, so a process cannot keep an identity it had.
    async fn identity(&self, peer: Option<u32>) -> Option<String> {
        let pane = self.pane_of_process(peer?)?;
        if let Some(name) = self.core.identity_of(pane) {
            return Some(name);
        }
        // A label the registry knows (the person's `chat` pane, a pane that is no agent) is
        // the answer; only an unlabelled pane may have been labelled a moment ago.
        if self.panes.get(pane).is_some_and(|p| p.info.label.is_some()) {
            return None;
        }
        // A pane labelled a moment ago (an agent's MCP server can connect before the label's
        // change reaches us): ask tmux for the label now.
        let label = self
            .client
            .run(&Command::show_option_value(
                OptionScope::Pane(Target::Pane(pane)),
                crate::pane::LABEL_OPTION,
            ))
            .await
            .ok()?
            .into_iter()
            .next()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty() && l != crate::names::CHAT_LABEL)?;
        Some(label)
    }

    /// The pane a process runs in (its pid descends from the pane's process).
    fn pane_of_process(&self, peer: u32) -> Option<PaneId> {
        let mut pid = peer;
        let panes: HashMap<u32, PaneId> = self
            .panes
            .iter()
            .filter(|p| p.info.pid != 0)
            .map(|p| (p.info.pid, p.id()))
            .collect();
        for _ in 0..64 {
            if let Some(pane) = panes.get(&pid) {
                return Some(*pane);
            }
            match parent_of(pid) {
                Some(parent) if parent > 1 && parent != pid => pid = parent,
                _ => return None,
            }
        }
        None
    }

    /// `pane.status` and `pane.snapshot`, answered from the screen models (or tmux's rows, for
    /// a pane whose output is skimmed).
    async fn pane_call(&mut self, call: &Call) -> Result<serde_json::Value, RpcError> {
        let target = call
            .params
            .get("target")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("missing `target`"))?
            .to_string();
        let id = self
            .panes
            .find(&target)
            .await
            .map_err(|e| RpcError::not_found(e.to_string()))?;
        if let Err(e) = self.panes.catch_up(id).await {
            debug!(pane = %id, error = %e, "cannot read the pane's rows");
        }
        let pane = self
            .panes
            .get(id)
            .ok_or_else(|| RpcError::not_found(format!("pane {id} closed")))?;
        if call.method == method::PANE_STATUS {
            let c = pane.classify(&self.profiles, self.cfg.busy_lines);
            p::result(&p::PaneStatusResult {
                pane: id.to_string(),
                state: c.state.into(),
                profile: c.profile,
                target: Some(pane.info.target()),
                label: pane.info.label.clone(),
                title: Some(pane.info.title.clone()),
                current_command: Some(pane.info.current_command.clone()),
                reason: Some(c.reason),
            })
        } else {
            let s: p::PaneSnapshotParams = p::params(call.params.clone())?;
            let n = s.lines.unwrap_or(200) as usize;
            let mut lines = pane.lines();
            while lines.last().is_some_and(|l| l.trim().is_empty()) {
                lines.pop();
            }
            let skip = lines.len().saturating_sub(n);
            p::result(&p::PaneSnapshotResult {
                pane: id.to_string(),
                lines: lines.split_off(skip),
            })
        }
    }
}

/// A process's parent, from `/proc/PID/stat` (the field after the command, which is in
/// parentheses and may itself hold spaces and parentheses).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}
