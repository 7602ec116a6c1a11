//! What a pane's new screen means: turns (busy → idle), new blocks (requests from the worker,
//! responses from the controller, messages from chat agents), questions at the end of the
//! worker's turn (heuristics), capped blocks. Then the queue of that pane gets its chance.

use std::time::Duration;

use serde_json::json;
use tracing::debug;

use crate::api::protocol as p;
use crate::detect::blocks::{self, BlockKind};
use crate::detect::heuristic;
use crate::detect::tracker::BlockTracker;
use crate::detect::PaneState;
use crate::store::RequestKind;
use crate::tmux::PaneId;

use super::{Core, PaneSeen};

/// Heuristic phrases that say a turn is over rather than ask: requests in manual mode only.
const COMPLETION: [&str; 3] = ["done", "complete", "finished"];

/// How long after a line left the prompt the pane may take to show it was submitted.
const LEFT_PROMPT_WINDOW: Duration = Duration::from_secs(5);

/// Per watched pane: what the detectors remember.
#[derive(Debug)]
pub struct Track {
    pub tracker: BlockTracker,
    pub turn: u64,
    pub block_this_turn: bool,
    pub asked_this_turn: bool,
    /// What the bridge typed here lately (for the heuristic's echo check).
    pub typed: Vec<String>,
    /// A capped block was reported and has not gone since.
    pub capped_reported: bool,
    /// A block left open at the bottom in the last look: its kind and size then.
    pub open_block: Option<(BlockKind, usize, usize)>,
    /// The pane has been looked at since the daemon started (or since it came).
    pub looked: bool,
    /// The agent's last reply as last seen (worker, heuristics on).
    pub last_reply: Option<String>,
    /// Something the bridge typed was submitted here and no turn was seen since: the reply
    /// that was on screen then. A new reply with the pane idle ends a turn, busy phase or not.
    pub awaiting: Option<Option<String>>,
    /// The input that started the turn under way (or the next one): its sender gets the reply.
    pub origin: Option<super::replies::Origin>,
    /// A line that left the prompt without the bridge typing (when, and the turn count before):
    /// the person's, once the pane works on it or shows it.
    pub left_prompt: Option<(String, std::time::Instant, u64)>,
    /// The last line recorded as the person's, and when.
    pub recorded_line: Option<(String, std::time::Instant)>,
    /// A turn began (the pane went busy) and has not ended (the pane has not been idle since).
    pub working: bool,
}

impl Default for Track {
    fn default() -> Track {
        Track {
            tracker: BlockTracker::new(Duration::from_millis(1500)),
            turn: 0,
            block_this_turn: false,
            asked_this_turn: false,
            typed: Vec::new(),
            capped_reported: false,
            open_block: None,
            looked: false,
            last_reply: None,
            awaiting: None,
            origin: None,
            left_prompt: None,
            recorded_line: None,
            working: false,
        }
    }
}

impl Track {
    pub fn typed(&mut self, text: &str) {
        self.tracker.typed(text);
        self.typed.push(text.to_string());
        if self.typed.len() > 32 {
            self.typed.remove(0);
        }
    }
}

impl Core {
    /// A pane's screen changed.
    pub(super) fn seen(&mut self, seen: PaneSeen) {
        let id = seen.pane;
        let is_worker = self.agents.worker == Some(id);
        let is_controller = self.agents.controller == Some(id);
        let chat_agent = self.agents.agent_of(id);
        let watched = is_worker || is_controller || chat_agent.is_some();
        let look = &seen.look;
        let now = self.now;
        let mut requests = Vec::new();
        let mut responses = Vec::new();
        let mut messages = Vec::new();
        let mut capped_event = None;
        let mut history_lines = Vec::new();
        let mut replied = None;
        let mut person_line = None;
        let (slot_prompt, bridge_typing) = {
            let slot = self.agents.slot(id);
            (
                slot.prompt.clone(),
                slot.queue.in_flight.is_some() || !slot.recovering.is_empty(),
            )
        };
        if watched {
            let limits = self.s.limits;
            let scan = blocks::find_blocks(&seen.lines, &limits);
            let first_sight = !self.agents.slot(id).track.looked;
            let history = if first_sight {
                self.finished_blocks(id, &scan, look, &seen.lines, chat_agent.as_deref())
            } else {
                Vec::new()
            };
            let slot = self.agents.slot(id);
            let track = &mut slot.track;
            track.looked = true;
            for b in &history {
                track.tracker.preload(&b.kind, &b.body, now);
                history_lines.push((
                    format!(
                        "{id}: a {} block of a finished turn (seen on first sight), not acted on: {}",
                        b.kind.label(),
                        super::first_line(&b.body)
                    ),
                    json!({ "pane": id.to_string(), "kind": b.kind.label(), "text": b.body }),
                ));
            }
            // A quick turn (a fast tool, a short reply, a pane read as unknown while it works)
            // may show no busy phase: after input, a new reply on an idle pane ends it.
            // The reply on screen now, for every watched pane: input the bridge or the person
            // gives is measured against it (a quick turn shows a different one).
            let reply_full = self
                .profiles
                .get(&look.profile)
                .and_then(|p| heuristic::reply_on_screen(p, &seen.lines));
            let reply_now = reply_full.as_ref().map(|r| r.text.clone());
            let quick_turn = look.state == PaneState::Idle
                && !track.working
                && reply_now.is_some()
                && track
                    .awaiting
                    .as_ref()
                    .is_some_and(|before| *before != reply_now)
                && !reply_now
                    .as_deref()
                    .is_some_and(|r| heuristic::is_echo(r, &track.typed));
            let turn_before = track.turn;
            // A turn runs from busy to idle, whatever the pane showed in between (a frame read as
            // unknown, a menu).
            let turn_over = look.state == PaneState::Idle && (track.working || quick_turn);
            if (look.state == PaneState::Busy && !track.working) || quick_turn {
                track.working = look.state == PaneState::Busy;
                track.turn += 1;
                track.block_this_turn = false;
                track.asked_this_turn = false;
                // A quick turn (its reply already on screen) draws no new block: a capped one
                // still there is the same one.
                if !quick_turn {
                    track.capped_reported = false;
                }
                track.awaiting = None;
            }
            // While text sits in the prompt, the composer can hide the reply area (Codex shows
            // its key hints there): the last reply stays the one seen before the typing.
            let typing = look
                .prompt_input
                .as_deref()
                .is_some_and(|p| !p.trim().is_empty());
            let prev_reply = if typing {
                track.last_reply.clone()
            } else {
                std::mem::replace(&mut track.last_reply, reply_now)
            };
            // Blocks first, so that a block that ends the turn counts for this turn.
            let fresh = track.tracker.observe(&scan.blocks, track.turn, now);
            // A block still open when its start scrolled out of what the screen model keeps (a
            // huge block, a 100k-character line) ended no block: it is capped too.
            let mut capped = scan.capped.clone();
            match (&scan.open, track.open_block.take()) {
                (Some(o), _) => track.open_block = Some((o.kind.clone(), o.lines, o.bytes)),
                (None, Some((kind, lines, bytes))) => {
                    if !scan.blocks.iter().any(|b| b.kind == kind) {
                        capped.push(blocks::Unterminated {
                            kind,
                            start_row: 0,
                            lines,
                            bytes,
                        });
                    }
                }
                (None, None) if seen.starts > 0 && scan.blocks.is_empty() => {
                    // Started and gone between two looks without a block to show for it.
                    capped.push(blocks::Unterminated {
                        kind: BlockKind::Request,
                        start_row: 0,
                        lines: seen.lines.len(),
                        bytes: 0,
                    });
                }
                (None, None) => {}
            }
            if !capped.is_empty() && !track.capped_reported {
                track.capped_reported = true;
                let c = &capped[0];
                capped_event = Some(format!(
                    "{id}: a {} block of {} lines / {} bytes (at least) was never closed within the limits ({} lines, {} bytes, or what the screen keeps); ignored",
                    c.kind.label(), c.lines, c.bytes, limits.max_lines, limits.max_bytes
                ));
            }
            // Reported once per turn: a new turn, or a block that closed, starts over.
            if !fresh.is_empty() {
                track.capped_reported = false;
            }
            for b in fresh {
                match (&b.kind, is_controller) {
                    (BlockKind::Request, false) if is_worker => {
                        track.block_this_turn = true;
                        requests.push((RequestKind::Block, b.body));
                    }
                    (BlockKind::Response, true) => responses.push(b.body),
                    (BlockKind::Message { to }, _) if chat_agent.is_some() => {
                        messages.push((to.clone(), b.body));
                    }
                    _ => debug!(pane = %id, kind = ?b.kind, "block ignored"),
                }
            }
            if look.state == PaneState::Idle {
                track.working = false;
            }
            let turn_ended = is_worker && turn_over;
            if turn_ended && self.s.heuristic && !track.block_this_turn && !track.asked_this_turn {
                if let Some(profile) = self.profiles.get(&look.profile) {
                    if let Some(reply) = heuristic::last_reply(profile, &look.lines) {
                        if !heuristic::is_echo(&reply, &track.typed) {
                            let reason = self.heuristics.judge(&reply).filter(|r| {
                                // "Done." ends a turn; in auto mode it is not a question for a
                                // controller (that is how agents talk in circles).
                                !(self.s.auto
                                    && COMPLETION.iter().any(|c| *r == format!("says {c:?}")))
                            });
                            if let Some(reason) = reason {
                                debug!(pane = %id, %reason, "heuristic request");
                                track.asked_this_turn = true;
                                requests.push((RequestKind::Heuristic, reply));
                            }
                        }
                    }
                }
            }
            // A line the person typed into the pane and submitted: it left the prompt (not by
            // the bridge's hand), then the pane went to work or shows it above, within a moment.
            let empty_now = look
                .prompt_input
                .as_deref()
                .is_none_or(|p| p.trim().is_empty());
            // Text in the prompt again means the person typed on (what left it was no line),
            // unless it is what the bridge typed: a row of the transcript read as the prompt in
            // a half-drawn frame (seen on Gemini under load) changes nothing.
            let shows_echo = look
                .prompt_input
                .as_deref()
                .is_some_and(|p| heuristic::is_echo(p.trim(), &track.typed));
            if bridge_typing || (!empty_now && !shows_echo) {
                track.left_prompt = None;
            } else if let Some(line) = slot_prompt
                .as_deref()
                .map(str::trim)
                .filter(|l| !l.is_empty() && empty_now)
            {
                debug!(pane = %id, %line, state = ?look.state, "a line left the prompt");
                // The same line seen leaving again a moment after it was recorded is that line
                // (a half-drawn frame showed it in the prompt once more).
                let again = track.recorded_line.as_ref().is_some_and(|(l, at)| {
                    l == line && now.duration_since(*at) < LEFT_PROMPT_WINDOW
                });
                if !again && !heuristic::is_echo(line, &track.typed) {
                    // Input that a look already shows at work started its turn there (busy):
                    // measuring a quick turn against it as well would end that turn twice.
                    if track.awaiting.is_none() && !track.working {
                        track.awaiting = Some(prev_reply.clone());
                    }
                    track.left_prompt = Some((line.to_string(), now, turn_before));
                }
            }
            if let Some((line, at, turn)) = track.left_prompt.take() {
                let shown =
                    line.chars().count() >= 3 && look.lines.iter().any(|r| r.contains(&line));
                if look.state == PaneState::Busy || shown {
                    track.recorded_line = Some((line.clone(), now));
                    person_line = Some((line, turn));
                } else if now.duration_since(at) < LEFT_PROMPT_WINDOW {
                    track.left_prompt = Some((line, at, turn));
                } else {
                    debug!(pane = %id, %line, "a line that left the prompt was never worked on or shown");
                }
            }
            // A turn the bridge (or the person, typing in the pane) started is over: its reply
            // goes back to whoever started it. A turn that ends with no reply on screen (an
            // agent still starting up that queued the input, an error) leaves it waiting for the
            // next turn's.
            // (The reply that was on screen when the input was given is not its reply: an agent
            // that looks idle before it has drawn its answer shows it still. The turn's reply is
            // then taken from a later idle look.)
            let started = match &person_line {
                Some((line, turn)) => Some((*turn, super::replies::probe_of(line))),
                None => track.origin.as_ref().map(|o| (o.turn, o.probe.clone())),
            };
            if let Some((_, probe)) =
                started.filter(|(t, _)| look.state == PaneState::Idle && *t < track.turn)
            {
                let reply = reply_full
                    .filter(|r| !heuristic::is_echo(&r.text, &track.typed))
                    .filter(|r| {
                        probe.is_empty()
                            || !seen.lines[r.end.min(seen.lines.len())..]
                                .iter()
                                .any(|row| row.contains(probe.as_str()))
                    });
                match reply {
                    Some(r) => replied = Some(r),
                    None => debug!(pane = %id, "a turn ended with no reply on screen"),
                }
            }
        }
        for b in history_lines {
            self.print("history", b.0, b.1);
        }
        let slot = self.agents.slot(id);
        let changed = slot.state != look.state;
        slot.state = look.state;
        slot.prompt = look.prompt_input.clone();
        slot.profile = look.profile.clone();
        slot.reason = look.reason.clone();
        slot.seen = true;
        if let Some(line) = capped_event {
            self.print("capped", line, json!({ "pane": id.to_string() }));
        }
        if let Some((line, turn)) = person_line {
            self.person_typed(id, &line, turn);
        }
        if let Some(reply) = replied {
            if let Some(origin) = self.agents.slot(id).track.origin.take() {
                self.turn_replied(id, origin, reply);
            }
        }
        let agent = self.agents.display(id);
        for (kind, text) in requests {
            self.request(id, &agent, kind, text);
        }
        for body in responses {
            self.controller_response(body);
        }
        if let Some(from) = &chat_agent {
            for (to, body) in messages {
                self.agent_message(from, &to, &body);
            }
            if changed {
                self.publish(
                    p::event::AGENT_STATE,
                    p::AgentStateEvent {
                        name: from.clone(),
                        pane: id.to_string(),
                        state: look.state.into(),
                    },
                );
            }
        }
        self.recover_pane(id, look);
        self.pump(id);
    }

    /// On first sight of a pane, the blocks that belong to finished turns: every block but the
    /// one in the current turn (the pane works on it, or it is inside the agent's last reply
    /// with nothing after it but the prompt), and a message the journal already holds.
    fn finished_blocks(
        &self,
        pane: PaneId,
        scan: &blocks::Scan,
        look: &crate::inject::Look,
        lines: &[String],
        agent: Option<&str>,
    ) -> Vec<blocks::Block> {
        let Some(last) = scan.blocks.len().checked_sub(1) else {
            return Vec::new();
        };
        // The blocks of the current turn: inside the agent's last reply; or, for an agent
        // whose replies cannot be read, those followed by nothing but the prompt.
        let profile = self.profiles.get(&look.profile);
        let reply = profile
            .and_then(|p| heuristic::last_reply(p, &look.lines))
            .map(|r| blocks::normalize(&r));
        let current: Vec<usize> = match reply {
            Some(reply) => scan
                .blocks
                .iter()
                .enumerate()
                .filter(|(_, b)| reply.contains(&blocks::normalize(&b.body)))
                .map(|(i, _)| i)
                .collect(),
            None => {
                let in_blocks = |row: usize| scan.blocks.iter().any(|b| b.rows.contains(&row));
                scan.blocks
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| {
                        (b.rows.end..lines.len())
                            .filter(|r| !in_blocks(*r) && !lines[*r].trim().is_empty())
                            .count()
                            <= 1
                    })
                    .map(|(i, _)| i)
                    .collect()
            }
        };
        // A pane at work is in its turn: its last block is current whatever the reply shows.
        let current: Vec<usize> = if look.state == PaneState::Busy && !current.contains(&last) {
            current.into_iter().chain([last]).collect()
        } else {
            current
        };
        let sent: Vec<String> = match (agent, &self.store) {
            (Some(a), Some(st)) => st
                .history(&crate::store::HistoryQuery {
                    involving: Some(a.to_string()),
                    limit: Some(200),
                    ..Default::default()
                })
                .map(|v| {
                    v.into_iter()
                        .filter(|m| m.message.from == a)
                        .map(|m| blocks::normalize(&m.message.content))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let _ = pane;
        scan.blocks
            .iter()
            .enumerate()
            .filter(|(i, b)| {
                !current.contains(i)
                    || (matches!(b.kind, BlockKind::Message { .. })
                        && sent.contains(&blocks::normalize(&b.body)))
            })
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Block texts already handled before a restart are known as seen on this pane.
    pub(super) fn preload(&mut self, pane: PaneId, kind: RequestKind, text: &str) {
        let now = self.now;
        let track = &mut self.agents.slot(pane).track;
        if kind == RequestKind::Heuristic {
            track.asked_this_turn = true;
        } else {
            track.tracker.preload(&BlockKind::Request, text, now);
        }
    }
}
