//! Rows found half-typed after a crash (`delivering` in the journal), finished by looking at
//! the pane instead of guessing.
//!
//! The journal records each step of a typing before it happens (`crate::store` journal), so:
//! - before the `submit` stage no submit key was sent: the text is in the prompt (all or part
//!   of it) or nowhere. All of it → submit it; part of it → clear exactly that line and type
//!   it again; nowhere → type it again. Someone else's text → wait, as for a person.
//! - at the `submit` stage a key may have been sent: the text still in the prompt → submit
//!   again; an empty prompt, other text, or a pane that went busy or asks → it was taken.
//!
//! Never typed twice, never left in a prompt, never lost.

use serde_json::json;

use crate::detect::PaneState;
use crate::inject::{self, Look};
use crate::store::{DeliveryStatus as DS, Stage};
use crate::tmux::command::KeyName;
use crate::tmux::PaneId;

use super::deliveries::Item;
use super::{Core, How};

/// Keys that clear the bridge's own half-typed line: end of line, then delete to its start
/// (readline, Codex, Claude Code and Gemini CLI all take these).
pub const CLEAR_KEYS: [&str; 2] = ["C-e", "C-u"];

pub use super::deliveries::Recovering;

/// What to do with a half-typed row, given what the pane shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not now (the pane is busy, asks, or holds someone's text).
    Wait(&'static str),
    /// It reached the agent: record it, with this evidence.
    Taken(&'static str),
    /// It is not in the pane: type it.
    Type,
    /// All of it is in the prompt: submit it.
    Submit,
    /// Part of it is in the prompt: clear that, then type it.
    Retype,
}

/// Decides for one row. Pure: the stage from the journal, the text, the pane's look.
pub fn decide(stage: Option<Stage>, typed: &str, look: &Look) -> Verdict {
    let submitted = stage == Some(Stage::Submit);
    match look.state {
        PaneState::Idle => {}
        PaneState::Busy | PaneState::Asking if submitted => {
            return Verdict::Taken("the pane went on working after the submit key")
        }
        PaneState::Busy => return Verdict::Wait("the pane is busy"),
        PaneState::Asking => return Verdict::Wait("a menu is open"),
        PaneState::Unknown => return Verdict::Wait("the pane's state is unknown"),
    }
    let marker = inject::tail_marker(typed);
    let input = look
        .prompt_input
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let (ours, complete) = match input {
        Some(i) => {
            let complete =
                (!marker.is_empty() && i.contains(&marker)) || i.contains("[Pasted text");
            let prefix = typed.trim_start().starts_with(i)
                || typed
                    .lines()
                    .next()
                    .is_some_and(|l| l.trim().starts_with(i));
            (complete || prefix, complete)
        }
        None => {
            let near = inject::seen(look, &marker) == inject::Seen::NearBottom;
            // No prompt line to read: the text showing at the bottom after the text stage is
            // the text in the input.
            let here = near && stage == Some(Stage::Text);
            (here, here)
        }
    };
    match (submitted, ours, complete, input.is_some()) {
        (_, true, true, _) => Verdict::Submit,
        (true, true, false, _) => Verdict::Retype,
        (true, false, _, true) => Verdict::Taken("the prompt held other text after the submit key"),
        (true, false, _, false) => Verdict::Taken("the prompt was empty after the submit key"),
        (false, true, false, _) => Verdict::Retype,
        (false, false, _, true) => Verdict::Wait("the prompt holds someone's text"),
        (false, false, _, false) => Verdict::Type,
    }
}

impl Core {
    /// Start-up: the rows being typed when the daemon stopped wait for a look at their pane.
    pub(super) fn recover_typing(&mut self) {
        let Some(store) = &self.store else { return };
        let rows = match store.typing() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the rows being typed");
                return;
            }
        };
        for (d, m) in rows {
            // The row's pane only while it is still its recipient's (pane ids are reused after a
            // tmux server restart); else the recipient's pane now.
            let pane = d
                .pane
                .as_deref()
                .and_then(|p| p.parse::<PaneId>().ok())
                .filter(|p| {
                    self.agents.info(*p).is_some() && self.agents.recipient(*p) == d.recipient
                })
                .or_else(|| self.agents.pane_of(&d.recipient))
                .or_else(|| {
                    [self.agents.worker, self.agents.controller]
                        .into_iter()
                        .flatten()
                        .find(|p| self.agents.recipient(*p) == d.recipient)
                });
            let Some(item) = Item::from_row(d.id, &d.recipient, &m) else {
                continue;
            };
            let typed = d.typed.clone().unwrap_or_else(|| item.text.clone());
            let Some(pane) = pane else {
                // Its pane is gone: it goes back to the queue of its recipient.
                self.journal(|st| {
                    st.mark(d.id, DS::Queued, Some("its pane was gone after a restart"))
                });
                continue;
            };
            self.print(
                "recovering",
                format!(
                    "{} → {pane}: was being typed when the bridge stopped (stage {}); looking at the pane",
                    d.message_id,
                    d.stage.map(|s| s.as_str()).unwrap_or("none")
                ),
                json!({ "delivery": d.id, "pane": pane.to_string(), "stage": d.stage }),
            );
            self.in_queue.insert(d.id);
            if let super::deliveries::ItemKind::Prompt { request } = &item.kind {
                self.auto.asking = Some(super::backends::Asking {
                    id: request.clone(),
                    since: self.now,
                    delivery: Some(d.id),
                    typed: true,
                });
            }
            self.agents.slot(pane).recovering.push(Recovering {
                item,
                typed,
                stage: d.stage,
            });
        }
    }

    /// A look at a pane with a half-typed row: finish it.
    pub(super) fn recover_pane(&mut self, pane: PaneId, look: &Look) {
        let slot = self.agents.slot(pane);
        if slot.queue.in_flight.is_some() {
            return;
        }
        let Some(r) = slot.recovering.first().cloned() else {
            return;
        };
        let verdict = decide(r.stage, &r.typed, look);
        let how = match verdict {
            Verdict::Wait(why) => {
                tracing::debug!(%pane, why, "recovery waits");
                return;
            }
            Verdict::Taken(evidence) => {
                self.agents.slot(pane).recovering.remove(0);
                self.print(
                    "recovered",
                    format!("delivery {} → {pane}: taken ({evidence})", r.item.delivery),
                    json!({ "delivery": r.item.delivery, "evidence": evidence }),
                );
                let job = super::Job {
                    delivery: r.item.delivery,
                    pane,
                    text: r.typed.clone(),
                    how: How::Submit,
                    urgent: false,
                };
                self.agents.slot(pane).queue.in_flight = Some(r.item.clone());
                self.done(
                    job,
                    Ok(inject::Outcome::Delivered {
                        key: "-".into(),
                        evidence: format!("recovered after a restart: {evidence}"),
                    }),
                );
                return;
            }
            Verdict::Type => How::Type,
            Verdict::Submit => How::Submit,
            Verdict::Retype => How::Retype {
                clear: CLEAR_KEYS
                    .iter()
                    .filter_map(|k| KeyName::parse(k).ok())
                    .collect(),
            },
        };
        self.agents.slot(pane).recovering.remove(0);
        self.print(
            "recovered",
            format!("delivery {} → {pane}: {verdict:?}", r.item.delivery),
            json!({ "delivery": r.item.delivery, "verdict": format!("{verdict:?}") }),
        );
        // The row stays `delivering`: typing it again starts a new attempt with the same text.
        self.start_job(pane, r.item, how);
    }
}
