//! Panes whose output floods are not modelled byte by byte.
//!
//! Feeding the screen model costs about as much per byte as the pane prints, and a pane that
//! prints a screenful many times between two looks is modelled for nothing: every row but the
//! last screenful is scrolled away unseen. Such a pane is *skimmed* (the runner decides when,
//! from its output rate): its output is searched for titles and block markers on the way in
//! but not fed to the model, which falls behind tmux (*stale*). A look at a stale pane reads
//! tmux's own rows instead ([`Panes::request_view`]: `capture-pane -p` with history, applied
//! at its place in the stream, so the look sees exactly the output delivered before it). When
//! the pane calms down, one capture with its history, cursor and screen
//! ([`Panes::capture_whole`]) replaces the model, which is fed again from there.

use tracing::debug;

use super::{Pane, Panes, Seed};
use crate::tmux::client::ClientError;
use crate::tmux::command::{CaptureOpts, Command, Target};
use crate::tmux::PaneId;

/// Rows of history read with a pane's rows (as many as a look scans).
pub const VIEW_HISTORY: usize = 200;

/// tmux's rows of a pane (history, then the visible rows), and whether a look used them.
#[derive(Debug)]
pub(super) struct View {
    rows: Vec<String>,
    unread: bool,
}

/// What tmux said with a whole capture.
#[derive(Debug, Clone, Copy)]
pub(super) struct Whole {
    cursor: (u16, u16),
    alternate: bool,
}

impl Pane {
    /// Output not fed to the model: counted, searched for titles, and the model marked behind.
    pub(super) fn skip(&mut self, data: &[u8]) {
        self.last_output = Some(std::time::Instant::now());
        self.output_bytes += data.len() as u64;
        self.stale = true;
        self.screen.skim_titles(data);
        if let Some(title) = self.screen.take_title() {
            self.live_title = Some(title);
        }
    }

    /// tmux's rows while the model is behind (the last ones read).
    pub(super) fn behind_view(&self) -> Option<&[String]> {
        match &self.view {
            Some(v) if self.stale => Some(&v.rows),
            _ => None,
        }
    }

    /// A look used the rows read.
    pub(super) fn view_read(&mut self) {
        if let Some(v) = &mut self.view {
            v.unread = false;
        }
    }

    /// Whether a look must wait for tmux's rows: the model is behind and no rows read since
    /// the last look.
    pub fn needs_view(&self) -> bool {
        self.stale && !self.view.as_ref().is_some_and(|v| v.unread)
    }

    /// Whether the pane's output is skimmed.
    pub fn skimmed(&self) -> bool {
        self.skim
    }

    /// Replaces the model by a whole capture; it is in step with tmux again.
    pub(super) fn replace(
        &mut self,
        lines: &[String],
        whole: Whole,
    ) -> Result<(), super::ModelFault> {
        self.info.cursor_x = whole.cursor.0;
        self.info.cursor_y = whole.cursor.1;
        self.info.alternate_on = whole.alternate;
        let (rows, cols) = (self.info.height, self.info.width);
        let resized = self.screen.set_size(rows, cols);
        let result =
            resized.and_then(|()| self.screen.replace(lines, whole.cursor, whole.alternate));
        self.stale = false;
        self.view = None;
        self.note(result)
    }
}

impl Panes {
    /// Skims the pane's output or not. A pane that stops being skimmed while its model is
    /// behind is captured whole; it is fed again once that capture is applied.
    pub async fn set_skim(&mut self, id: PaneId, skim: bool) -> Result<(), ClientError> {
        let Some(pane) = self.panes.get_mut(&id) else {
            return Ok(());
        };
        if pane.skim != skim {
            debug!(pane = %id, skim, "skimming the pane's output");
        }
        pane.skim = skim;
        let behind = !skim && pane.stale;
        if behind && !self.seeds.values().any(|s| s.pane == id) {
            self.capture_whole(id).await?;
        }
        Ok(())
    }

    /// Asks for tmux's rows of a pane whose model is behind (one read at a time per pane);
    /// [`super::PaneChange::Viewed`] says when they are there.
    pub fn request_view(&mut self, id: PaneId) {
        if self.views.values().any(|(p, _)| *p == id) {
            return;
        }
        match self
            .client
            .submit(&[Command::capture_pane(&Target::Pane(id), &view_opts())])
        {
            Ok(mut laters) => {
                if let Some(later) = laters.pop() {
                    self.views.insert(later.seq, (id, later));
                }
            }
            Err(e) => debug!(pane = %id, error = %e, "cannot read the pane's rows"),
        }
    }

    /// Reads tmux's rows of a pane whose model is behind, for a caller that wants the pane as
    /// it is now (the API's `pane.status` and `pane.snapshot`); a pane whose model is in step
    /// needs nothing.
    pub async fn catch_up(&mut self, id: PaneId) -> Result<(), ClientError> {
        if !self.panes.get(&id).is_some_and(|p| p.stale) {
            return Ok(());
        }
        let rows = self
            .client
            .run(&Command::capture_pane(&Target::Pane(id), &view_opts()))
            .await?;
        if let Some(pane) = self.panes.get_mut(&id).filter(|p| p.stale) {
            // Not a look's: the next look still reads tmux's rows of its own moment.
            pane.view = Some(View {
                rows,
                unread: false,
            });
        }
        Ok(())
    }

    /// The rows read by the command with this sequence number, stored in their pane.
    pub(super) fn viewed(&mut self, seq: u64) -> Option<PaneId> {
        let (id, mut later) = self.views.remove(&seq)?;
        let rows = match later.take() {
            Some(Ok(rows)) => rows,
            Some(Err(e)) => {
                debug!(pane = %id, error = %e, "reading the pane's rows failed");
                return None;
            }
            None => return None,
        };
        let pane = self.panes.get_mut(&id)?;
        pane.view = Some(View { rows, unread: true });
        Some(id)
    }

    /// Asks for the pane's history, screen (with escapes), cursor and screen kind, read
    /// together, to replace its model when the reply's place in the stream comes.
    pub(super) async fn capture_whole(&mut self, id: PaneId) -> Result<(), ClientError> {
        let opts = CaptureOpts {
            escapes: true,
            start: Some(-(VIEW_HISTORY as i64)),
            ..CaptureOpts::default()
        };
        let target = Target::Pane(id);
        let cmds = [
            Command::capture_pane(&target, &opts),
            Command::display_message(Some(&target), "#{cursor_x} #{cursor_y} #{alternate_on}"),
        ];
        match self.client.run_list(&cmds).await {
            Ok(answers) => {
                let Ok([capture, facts]) = <[_; 2]>::try_from(answers) else {
                    return Ok(());
                };
                let Some(whole) = parse_facts(&facts.lines) else {
                    debug!(pane = %id, lines = ?facts.lines, "unreadable cursor");
                    return Ok(());
                };
                self.seeds.insert(
                    facts.seq,
                    Seed {
                        pane: id,
                        lines: capture.lines,
                        whole: Some(whole),
                    },
                );
                Ok(())
            }
            // The pane closed in the meantime: the next refresh drops it.
            Err(ClientError::Command { message, .. }) => {
                debug!(pane = %id, %message, "capture failed");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// A pane's rows and [`VIEW_HISTORY`] rows of its history, as text.
fn view_opts() -> CaptureOpts {
    CaptureOpts {
        start: Some(-(VIEW_HISTORY as i64)),
        ..CaptureOpts::default()
    }
}

/// `cursor_x cursor_y alternate_on`.
fn parse_facts(lines: &[String]) -> Option<Whole> {
    let mut words = lines.first()?.split_whitespace();
    let x = words.next()?.parse().ok()?;
    let y = words.next()?.parse().ok()?;
    let alternate = words.next()? == "1";
    Some(Whole {
        cursor: (x, y),
        alternate,
    })
}
