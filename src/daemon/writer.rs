//! The writer tasks: one per pane at a time, each running the recipe in [`crate::inject`]
//! against a live view of its pane that the runner publishes, announcing each step to the core
//! (which journals it) and reporting the outcome.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use crate::core::{How, Job};
use crate::inject::{self, InjectError, InjectOptions, Look, Mode, Outcome, PaneWatch, Step};
use crate::tmux::client::Client;
use crate::tmux::command::{Command, Target};
use crate::tmux::PaneId;

/// What a writer tells the runner.
pub enum Report {
    /// About to take a step; go on when `ack` fires.
    Step {
        delivery: i64,
        step: Step,
        ack: oneshot::Sender<()>,
    },
    /// Finished.
    Done {
        job: Job,
        result: Result<Outcome, InjectError>,
    },
}

/// A view of one pane for a writer, fed by the runner through a watch channel.
struct View {
    client: Client,
    looks: watch::Receiver<Option<Look>>,
    delivery: i64,
    reports: mpsc::UnboundedSender<Report>,
}

impl PaneWatch for View {
    async fn look(&mut self, pane: PaneId) -> Result<Look, InjectError> {
        self.looks
            .borrow_and_update()
            .clone()
            .ok_or(InjectError::PaneGone(pane))
    }

    async fn settle(&mut self, max: Duration) {
        let _ = tokio::time::timeout(max, self.looks.changed()).await;
    }

    fn client(&self) -> &Client {
        &self.client
    }

    async fn step(&mut self, step: Step) {
        let (ack, wait) = oneshot::channel();
        let sent = self.reports.send(Report::Step {
            delivery: self.delivery,
            step,
            ack,
        });
        if sent.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Starts the writer for one job.
pub fn spawn(
    client: Client,
    looks: watch::Receiver<Option<Look>>,
    job: Job,
    mut opts: InjectOptions,
    reports: mpsc::UnboundedSender<Report>,
) {
    tokio::spawn(async move {
        crate::faults::point("recorded");
        let mut view = View {
            client,
            looks,
            delivery: job.delivery,
            reports: reports.clone(),
        };
        if job.urgent {
            opts.guard_busy = false;
        }
        // The journal holds the exact text: type it as it is.
        opts.guard_prefix = false;
        let result = match &job.how {
            How::Key(key) => view
                .client
                .run(&Command::send_keys(
                    &Target::Pane(job.pane),
                    std::slice::from_ref(key),
                ))
                .await
                .map(|_| Outcome::Delivered {
                    key: key.to_string(),
                    evidence: "key sent".into(),
                })
                .map_err(InjectError::from),
            how => {
                let mode = match how {
                    How::Submit => Mode::Submit,
                    How::Retype { clear } => Mode::Retype(clear.clone()),
                    _ => Mode::Type,
                };
                inject::deliver_with(&mut view, job.pane, &job.text, &opts, &mode).await
            }
        };
        let _ = reports.send(Report::Done { job, result });
    });
}
