//! Carrying out the core's effects, in the order it gave them.

use tokio::sync::watch;
use tracing::{debug, warn};

use crate::api::protocol::Notification;
use crate::core::{Effect, View};
use crate::tmux::command::{Command, OptionScope, Target};

use super::{controller, writer, Runner, STATUS_OPTION};

impl Runner {
    pub(super) async fn effect(&mut self, e: Effect) {
        match e {
            Effect::Print {
                event,
                line,
                fields,
            } => self.printer.event(event, &line, fields),
            Effect::Publish { method, params } => {
                if !self.subs.is_empty() {
                    self.subs.publish(&Notification {
                        method: method.to_string(),
                        params,
                    });
                }
            }
            Effect::Deliver(job) => {
                let pane = job.pane;
                let tx = self
                    .looks
                    .entry(pane)
                    .or_insert_with(|| watch::channel(None).0);
                if let Some(p) = self.panes.get(pane) {
                    tx.send_replace(Some(p.look(&self.profiles, self.cfg.busy_lines)));
                }
                let looks = tx.subscribe();
                self.writing.insert(pane);
                writer::spawn(
                    self.client.clone(),
                    looks,
                    job,
                    self.inject.clone(),
                    self.reports_tx.clone(),
                );
            }
            Effect::ShowQueue { pane, status } => {
                let scope = OptionScope::Pane(Target::Pane(pane));
                let cmd = match &status {
                    Some(s) => Command::set_option(scope, STATUS_OPTION, s),
                    None => Command::unset_option(scope, STATUS_OPTION),
                };
                self.looks
                    .entry(pane)
                    .or_insert_with(|| watch::channel(None).0);
                let client = self.client.clone();
                let session = self.cfg.session.clone();
                // Off the loop: tmux's answers must not hold up the core.
                tokio::spawn(async move {
                    if let Err(e) = client.run(&cmd).await {
                        debug!(error = %e, "could not set the status option");
                    }
                    if let Some(s) = status {
                        tell_people(&client, &session, &format!("{pane}: {s}")).await;
                    }
                });
            }
            Effect::Tell { pane, text } => {
                let client = self.client.clone();
                let session = self.cfg.session.clone();
                tokio::spawn(async move {
                    tell_people(&client, &session, &format!("{pane} {text}")).await;
                });
            }
            Effect::Look(panes) => self.dirty.extend(panes),
            Effect::View(v) => self.view(v),
            Effect::RunExec {
                id,
                prompt,
                timeout,
            } => {
                let codex_args = std::env::var("MACS_CODEX_ARGS").ok();
                match controller::exec_argv(&self.cfg.controller_cmd, codex_args.as_deref()) {
                    Ok(argv) => controller::spawn_exec(
                        id,
                        argv,
                        prompt,
                        timeout,
                        std::env::var("MACS_CODEX_HOME").ok(),
                        self.exec_tx.clone(),
                    ),
                    Err(reason) => {
                        let _ = self.exec_tx.send(crate::core::ExecDone {
                            id,
                            result: Err(reason),
                        });
                    }
                }
            }
            Effect::Reply { call, result } => {
                if let Some(reply) = self.calls.remove(&call) {
                    let _ = reply.send(result);
                }
            }
            Effect::Ack(n) => {
                if let Some(ack) = self.acks.remove(&n) {
                    let _ = ack.send(());
                }
            }
        }
    }

    /// Writes a mailbox view file. A failure is logged: the journal holds the truth, and the
    /// next start writes the view again.
    fn view(&self, v: View) {
        let Some(mb) = &self.mailbox else { return };
        let result = match &v {
            // Written once: a restart writes the view again only where it is missing.
            View::Inbox(r) if mb.request_path(&r.id).exists() || mb.is_archived(&r.id) => Ok(()),
            View::Inbox(r) => mb.write_request(r).map(drop),
            View::InboxNote { id, text } => mb.write_inbox_note(id, text).map(drop),
            View::Archive {
                id,
                response,
                facts,
            } => {
                crate::faults::point("before-archive");
                let r = mb.archive(id, response, facts);
                mb.remove_inbox_note(id);
                r
            }
            View::ArchiveNote { id, name, text } => mb.archive_note(id, name, text),
            View::Error { id, text } => mb.write_error_text(id, text),
            View::ClearError { id } => {
                mb.clear_error(id);
                Ok(())
            }
        };
        if let Err(e) = result {
            warn!(error = %e, view = ?v, "could not write a mailbox file");
        }
    }
}

/// Shows a line on the status line of every person's client of the session.
async fn tell_people(client: &crate::tmux::client::Client, session: &str, text: &str) {
    let Ok(clients) = client
        .run(&Command::list_clients_of(
            session,
            "#{client_name}\u{1f}#{client_control_mode}",
        ))
        .await
    else {
        return;
    };
    for line in clients {
        if let Some((name, "0")) = line.split_once('\u{1f}') {
            let _ = client
                .run(&Command::display_message_to(name, None, text))
                .await;
        }
    }
}
