//! Output that broke or froze the old screen model (vt100 0.15), printed by a real pane on a
//! private tmux server and fed to the registry through control mode: the registry must keep
//! answering, show the output that comes after, and not need to rebuild any model.

mod common;

use std::time::Duration;

use common::{shell, wait_for, TmuxServer};
use macs_bridge::pane::Panes;
use macs_bridge::tmux::client::{Client, ClientEvent, ClientOptions};
use macs_bridge::tmux::PaneId;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

const LONG: Duration = Duration::from_secs(20);

/// Applies events until `done` says the registry is as wanted.
async fn pump_until(
    panes: &mut Panes,
    events: &mut UnboundedReceiver<ClientEvent>,
    what: &str,
    mut done: impl FnMut(&Panes) -> bool,
) {
    let deadline = tokio::time::Instant::now() + LONG;
    while !done(panes) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ev = timeout(left, events.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("client running");
        panes.handle(ev).await.expect("handle event");
    }
}

fn text(panes: &Panes, id: PaneId) -> String {
    panes
        .get(id)
        .map(|p| p.lines().join("\n"))
        .unwrap_or_default()
}

struct Setup {
    server: TmuxServer,
    client: Client,
    events: UnboundedReceiver<ClientEvent>,
    panes: Panes,
    id: PaneId,
}

async fn setup() -> Setup {
    let server = TmuxServer::start("macs", &shell());
    let (client, mut events) = Client::connect(ClientOptions::new(server.tmux(), "macs"))
        .await
        .expect("attach");
    let mut panes = Panes::new(client.clone());
    let first = timeout(LONG, events.recv())
        .await
        .expect("attached in time")
        .expect("client running");
    panes.handle(first).await.expect("sync");
    let id: PaneId = server.pane_id("macs").parse().expect("pane id");
    Setup {
        server,
        client,
        events,
        panes,
        id,
    }
}

impl Setup {
    fn type_line(&self, line: &str) {
        self.server.ok(&["send-keys", "-t", "macs", "-l", line]);
        self.server.ok(&["send-keys", "-t", "macs", "Enter"]);
    }

    async fn resize(&mut self, cols: u16, rows: u16) {
        self.server.ok(&[
            "resize-window",
            "-t",
            "macs",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
        let id = self.id;
        pump_until(&mut self.panes, &mut self.events, "the resize", |p| {
            p.get(id)
                .is_some_and(|p| (p.info.width, p.info.height) == (cols, rows))
        })
        .await;
    }

    async fn wait_text(&mut self, what: &str) {
        let id = self.id;
        pump_until(&mut self.panes, &mut self.events, what, |p| {
            text(p, id).contains(what)
        })
        .await;
    }

    /// The registry still answers for the pane, shows `after-42`, and never rebuilt a model.
    async fn still_fine(mut self) {
        self.wait_text("after-42").await;
        let id = self.id;
        assert_eq!(self.panes.resolve(&id.to_string()).expect("resolves"), id);
        assert_eq!(self.panes.find("macs:0.0").await.expect("finds"), id);
        let pane = self.panes.get(id).expect("pane");
        assert_eq!(pane.model_faults(), 0, "the model had to be rebuilt");
        self.client.shutdown();
    }
}

#[tokio::test]
async fn a_one_row_pane_printing_a_line_wider_than_itself() {
    let mut s = setup().await;
    s.resize(20, 1).await;
    s.type_line("printf '%0100d' 0; printf '\\nafter-%s' $((6*7)); read x");
    s.still_fine().await;
}

#[tokio::test]
async fn cursor_saved_then_pane_shrunk_then_restored() {
    let mut s = setup().await;
    s.type_line("printf '\\033[30;100Hmark-%s\\0337' 1");
    s.wait_text("mark-1").await;
    s.resize(20, 5).await;
    s.type_line("printf '\\0338x'; printf '\\nafter-%s' $((6*7)); read x");
    s.still_fine().await;
}

#[tokio::test]
async fn leaving_the_alternate_screen_after_a_shrink() {
    let mut s = setup().await;
    s.type_line("printf '\\033[?1049h\\033[35;1Halt-%s' on");
    s.wait_text("alt-on").await;
    s.resize(30, 4).await;
    s.type_line("printf '\\033[?1049l'; clear; printf 'after-%s' $((6*7)); read x");
    s.still_fine().await;
}

#[tokio::test]
async fn a_wide_character_in_a_one_column_pane() {
    let mut s = setup().await;
    s.resize(1, 10).await;
    let done = s.server.path("wide-done");
    s.type_line(&format!(
        "printf '中文😀中'; touch {}; read x",
        done.display()
    ));
    wait_for("the wide characters printed", LONG, || {
        done.exists().then_some(())
    });
    s.resize(60, 10).await;
    s.server.ok(&["send-keys", "-t", "macs", "Enter"]);
    s.type_line("clear; echo after-$((6*7))");
    s.still_fine().await;
}

#[tokio::test]
async fn huge_csi_counts_do_not_stall_the_registry() {
    let s = setup().await;
    // 20 of these cost vt100 0.15 about 25 s; the deadline here is 20 s for everything.
    s.type_line(
        "for c in @ L T S P M X; do printf \"\\033[65535$c%.0s\" {1..40}; done; \
         printf 'x\\033[65535b'; clear; echo after-$((6*7))",
    );
    s.still_fine().await;
}
