//! A live view of one session for the one-shot tools and `up`: a control client attached for
//! the time a tool runs, with the pane registry it feeds and the profiles that classify panes.
//!
//! It owns no policy: which pane is meant, what to type and what to print are its callers'.

use std::time::Duration;

use crate::detect::Profiles;
use crate::inject::{InjectError, Look, PaneWatch};
use crate::pane::{FindError, Panes};
use crate::tmux::client::{Client, ClientError, ClientEvent, ClientOptions};
use crate::tmux::oneshot::Tmux;
use crate::tmux::PaneId;

/// Why the view could not be opened or a pane not found.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Find(#[from] FindError),
    #[error("tmux did not send the panes in time")]
    Timeout,
    #[error("lost the connection to tmux")]
    Lost,
}

/// A live view of a session: the registry fed by the control client.
pub struct LiveView {
    pub panes: Panes,
    pub events: tokio::sync::mpsc::UnboundedReceiver<ClientEvent>,
    pub profiles: Profiles,
    pub busy_lines: usize,
}

impl LiveView {
    /// Attaches to `session` on `tmux`'s server and builds the registry.
    pub async fn open(tmux: Tmux, session: &str) -> Result<LiveView, LiveError> {
        let mut opts = ClientOptions::new(tmux, session);
        opts.reconnect = false;
        let (client, mut events) = Client::connect(opts).await?;
        let mut panes = Panes::new(client);
        // The first event is `Attached`: handling it subscribes and lists the panes.
        // Then every capture must be applied before anyone looks.
        let mut first = true;
        while first || panes.seeding() {
            first = false;
            let ev = tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .map_err(|_| LiveError::Timeout)?
                .ok_or(LiveError::Lost)?;
            panes.handle(ev).await?;
        }
        panes.drain(&mut events).await?;
        Ok(LiveView {
            panes,
            events,
            profiles: Profiles::builtin(),
            busy_lines: 40,
        })
    }

    /// Resolves a target to a pane id: `target`, else the session's pinned target, else
    /// `default_label`.
    pub async fn resolve(
        &self,
        target: Option<&str>,
        default_label: &str,
    ) -> Result<PaneId, LiveError> {
        let wanted = match target {
            Some(t) => t.to_string(),
            None => match self.panes.pinned_target().await? {
                Some(pinned) => pinned,
                None => default_label.to_string(),
            },
        };
        Ok(self.panes.find(&wanted).await?)
    }

    pub fn client(&self) -> &Client {
        self.panes.client()
    }

    pub fn close(self) {
        self.panes.client().shutdown();
    }
}

impl PaneWatch for LiveView {
    async fn look(&mut self, pane: PaneId) -> Result<Look, InjectError> {
        self.panes.drain(&mut self.events).await?;
        let p = self.panes.get(pane).ok_or(InjectError::PaneGone(pane))?;
        Ok(p.look(&self.profiles, self.busy_lines))
    }

    async fn settle(&mut self, max: Duration) {
        if let Ok(Some(ev)) = tokio::time::timeout(max, self.events.recv()).await {
            let _ = self.panes.handle(ev).await;
        }
    }

    fn client(&self) -> &Client {
        self.panes.client()
    }
}
