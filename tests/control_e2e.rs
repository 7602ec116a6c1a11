//! The control-mode client and the pane registry against a real tmux on a private socket.

mod common;

use std::time::Duration;

use common::{shell, wait_for, TmuxServer};
use macs_bridge::pane::Panes;
use macs_bridge::tmux::client::{Client, ClientError, ClientEvent, ClientOptions};
use macs_bridge::tmux::control::Event;
use macs_bridge::tmux::PaneId;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

const LONG: Duration = Duration::from_secs(20);

async fn next_event(events: &mut UnboundedReceiver<ClientEvent>) -> ClientEvent {
    timeout(LONG, events.recv())
        .await
        .expect("an event within the deadline")
        .expect("the client is still running")
}

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

fn pane_text(panes: &Panes, id: PaneId) -> String {
    panes
        .get(id)
        .map(|p| p.lines().join("\n"))
        .unwrap_or_default()
}

/// A control client attached to the server's session `macs`, its registry synced, and the
/// session's pane.
async fn attached(server: &TmuxServer) -> (Client, UnboundedReceiver<ClientEvent>, Panes, PaneId) {
    let (client, mut events) = Client::connect(ClientOptions::new(server.tmux(), "macs"))
        .await
        .expect("attach");
    let mut panes = Panes::new(client.clone());
    let first = next_event(&mut events).await;
    assert!(matches!(first, ClientEvent::Attached { .. }), "{first:?}");
    panes.handle(first).await.expect("sync");
    let id: PaneId = server.pane_id("macs").parse().expect("pane id");
    (client, events, panes, id)
}

#[tokio::test]
async fn attach_and_see_output_pushed() {
    let server = TmuxServer::start("macs", &shell());
    let (client, mut events, mut panes, id) = attached(&server).await;
    server.ok(&["send-keys", "-t", "macs", "echo hello-$((6*7))", "Enter"]);
    pump_until(
        &mut panes,
        &mut events,
        "hello-42 on the screen model",
        |p| pane_text(p, id).contains("hello-42"),
    )
    .await;
    client.shutdown();
}

#[tokio::test]
async fn a_title_the_output_sets_is_the_panes_title_at_once() {
    // tmux tells control clients about titles on a one-second timer; agents (Codex's spinner,
    // Gemini's `✦  Working…`) say in the title whether they work, so it is read from the output.
    let server = TmuxServer::start("macs", &shell());
    let (client, mut events, mut panes, id) = attached(&server).await;
    for (title, mark) in [("\u{2827} work", "busy-42"), ("work", "idle-42")] {
        let cmd = format!("printf '\\033]2;{title}\\007{}-%s\\n' $((6*7))", &mark[..4]);
        server.ok(&["send-keys", "-t", "macs", "-l", &cmd]);
        server.ok(&["send-keys", "-t", "macs", "Enter"]);
        // The title comes in the same write as the mark, before it.
        pump_until(&mut panes, &mut events, mark, |p| {
            p.get(id)
                .is_some_and(|p| p.lines().iter().any(|l| l.starts_with(mark)))
        })
        .await;
        assert_eq!(panes.get(id).expect("pane").title(), title);
    }
    // tmux's own word comes later, and agrees.
    pump_until(&mut panes, &mut events, "tmux's title", |p| {
        p.get(id).is_some_and(|p| p.info.title == "work")
    })
    .await;
    assert_eq!(panes.get(id).expect("pane").title(), "work");
    client.shutdown();
}

#[tokio::test]
async fn a_megabyte_of_multibyte_output_arrives_byte_identical() {
    let server = TmuxServer::start("macs", &shell());
    let data_path = server.path("data.txt");
    let go = server.path("go");
    // Lines of mixed widths so that tmux cuts %output lines inside multibyte characters.
    let mut data = Vec::new();
    let mut i = 0u32;
    while data.len() < 1 << 20 {
        let line = format!(
            "{i:06} é日本語✓ 🦀 ascii text {}\n",
            "ü".repeat((i % 37) as usize)
        );
        data.extend_from_slice(line.as_bytes());
        i += 1;
    }
    data.extend_from_slice(b"\xff\xfe raw bytes\n");
    std::fs::write(&data_path, &data).expect("write data");
    let script = format!(
        "while [ ! -e {go} ]; do sleep 0.02; done; stty -onlcr; cat {data}; printf __END__; exec sleep 600",
        go = go.display(),
        data = data_path.display()
    );
    server.ok(&["new-window", "-t", "macs", "-n", "big", &script]);
    let id: PaneId = server.pane_id("macs:big").parse().expect("pane id");

    let (client, mut events) = Client::connect(ClientOptions::new(server.tmux(), "macs"))
        .await
        .expect("attach");
    std::fs::write(&go, b"").expect("go");
    let mut got = Vec::new();
    let mut want = data.clone();
    want.extend_from_slice(b"__END__");
    while !got.ends_with(b"__END__") {
        match next_event(&mut events).await {
            ClientEvent::Tmux(Event::Output { pane, data })
            | ClientEvent::Tmux(Event::ExtendedOutput { pane, data, .. })
                if pane == id =>
            {
                got.extend_from_slice(&data)
            }
            _ => {}
        }
        assert!(got.len() <= want.len(), "more output than was printed");
    }
    assert_eq!(got.len(), want.len());
    assert!(got == want, "output differs from what was printed");
    client.shutdown();
}

#[tokio::test]
async fn a_pane_created_after_attach_is_seen_and_a_closed_one_dropped() {
    let server = TmuxServer::start("macs", &shell());
    let (client, mut events) = Client::connect(ClientOptions::new(server.tmux(), "macs"))
        .await
        .expect("attach");
    let mut panes = Panes::new(client.clone());
    pump_until(&mut panes, &mut events, "first listing", |p| {
        p.iter().count() == 1
    })
    .await;

    server.ok(&["split-window", "-t", "macs", &shell()]);
    server.ok(&["new-window", "-t", "macs", "-n", "late", &shell()]);
    let late: PaneId = server.pane_id("macs:late").parse().expect("id");
    pump_until(&mut panes, &mut events, "three panes", |p| {
        p.iter().count() == 3
    })
    .await;
    server.ok(&[
        "send-keys",
        "-t",
        "macs:late",
        "echo late-$((1+1))",
        "Enter",
    ]);
    pump_until(&mut panes, &mut events, "output of the late pane", |p| {
        pane_text(p, late).contains("late-2")
    })
    .await;
    assert_eq!(
        panes.find("late").await.expect("found by window name"),
        late
    );

    server.ok(&["kill-window", "-t", "macs:late"]);
    pump_until(&mut panes, &mut events, "the closed pane dropped", |p| {
        p.get(late).is_none()
    })
    .await;
    client.shutdown();
}

#[tokio::test]
async fn kill_session_then_recreate_reattaches() {
    let server = TmuxServer::start("macs", &shell());
    // A second session keeps the server alive while `macs` is gone.
    server.ok(&["new-session", "-d", "-s", "keep", &shell()]);
    let (client, mut events) = Client::connect(ClientOptions::new(server.tmux(), "macs"))
        .await
        .expect("attach");
    assert!(matches!(
        next_event(&mut events).await,
        ClientEvent::Attached { generation: 1 }
    ));

    server.ok(&["kill-session", "-t", "=macs"]);
    loop {
        if let ClientEvent::Detached { .. } = next_event(&mut events).await {
            break;
        }
    }
    let err = client
        .run(&macs_bridge::tmux::command::Command::display_message(
            None, "x",
        ))
        .await
        .expect_err("no commands while detached");
    assert!(matches!(err, ClientError::Detached), "{err:?}");

    server.ok(&["new-session", "-d", "-s", "macs", &shell()]);
    loop {
        if let ClientEvent::Attached { generation } = next_event(&mut events).await {
            assert_eq!(generation, 2);
            break;
        }
    }
    let mut panes = Panes::new(client.clone());
    panes
        .handle(ClientEvent::Attached { generation: 2 })
        .await
        .expect("sync after re-attach");
    let id: PaneId = server.pane_id("macs").parse().expect("id");
    server.ok(&["send-keys", "-t", "=macs:", "echo back-$((2+2))", "Enter"]);
    pump_until(&mut panes, &mut events, "output after re-attach", |p| {
        pane_text(p, id).contains("back-4")
    })
    .await;
    client.shutdown();
    loop {
        if let ClientEvent::Closed = next_event(&mut events).await {
            break;
        }
    }
}

#[tokio::test]
async fn missing_session_is_a_clear_error() {
    let server = TmuxServer::start("macs", &shell());
    let err = Client::connect(ClientOptions::new(server.tmux(), "nope"))
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(text.contains("\"nope\" does not exist"), "{text}");
}

#[tokio::test]
async fn commands_get_their_own_replies_in_order() {
    let server = TmuxServer::start("macs", &shell());
    let (client, _events) = Client::connect(ClientOptions::new(server.tmux(), "macs"))
        .await
        .expect("attach");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let fmt = format!("reply-{i}");
            c.run(&macs_bridge::tmux::command::Command::display_message(
                None, &fmt,
            ))
            .await
            .map(|lines| (i, lines))
        }));
    }
    for t in tasks {
        let (i, lines) = t.await.expect("task").expect("reply");
        assert_eq!(lines, vec![format!("reply-{i}")]);
    }
    let err = client
        .run(&macs_bridge::tmux::command::Command::raw("no-such-command"))
        .await
        .expect_err("tmux refuses");
    assert!(err.to_string().contains("unknown command"), "{err}");
    // The client still works after an error.
    let ok = client
        .run(&macs_bridge::tmux::command::Command::display_message(
            None, "after",
        ))
        .await
        .expect("reply");
    assert_eq!(ok, vec!["after".to_string()]);
    client.shutdown();
}

#[tokio::test]
async fn commands_written_together_each_get_their_reply_even_after_a_refusal() {
    use macs_bridge::tmux::command::Command;
    let server = TmuxServer::start("macs", &shell());
    let (client, _events) = Client::connect(ClientOptions::new(server.tmux(), "macs"))
        .await
        .expect("attach");
    let answers = client
        .run_list(&[
            Command::display_message(None, "first"),
            Command::display_message(None, "second"),
        ])
        .await
        .expect("replies");
    let lines: Vec<Vec<String>> = answers.into_iter().map(|a| a.lines).collect();
    assert_eq!(
        lines,
        [vec!["first".to_string()], vec!["second".to_string()]]
    );
    // A refused command among them does not take the next one's reply (tmux skips the rest
    // of a `a ; b` list after a refusal, and sends no reply for it).
    let mut laters = client
        .submit(&[
            Command::raw("no-such-command"),
            Command::display_message(None, "still-here"),
        ])
        .expect("sent");
    let after = client
        .run(&Command::display_message(None, "after"))
        .await
        .expect("reply");
    assert_eq!(after, vec!["after".to_string()]);
    let second = laters
        .pop()
        .and_then(|mut l| l.take())
        .expect("its reply came");
    assert_eq!(second.expect("ok"), vec!["still-here".to_string()]);
    let first = laters
        .pop()
        .and_then(|mut l| l.take())
        .expect("its reply came");
    assert!(first.is_err());
    client.shutdown();
}

#[tokio::test]
async fn a_paused_pane_is_resynced_from_a_capture_and_resumed() {
    let server = TmuxServer::start("macs", &shell());
    let (client, mut events) = Client::connect(ClientOptions::new(server.tmux(), "macs"))
        .await
        .expect("attach");
    let mut panes = Panes::new(client.clone());
    pump_until(&mut panes, &mut events, "first listing", |p| {
        p.iter().count() == 1
    })
    .await;
    let id: PaneId = server.pane_id("macs").parse().expect("id");

    // Pause the pane for this client, as tmux does when the client lags behind `pause-after`.
    client
        .run(&macs_bridge::tmux::command::Command::raw(format!(
            "refresh-client -A '{id}:pause'"
        )))
        .await
        .expect("pause");
    // Output printed while paused never reaches this client as %output …
    server.ok(&["send-keys", "-t", "macs", "echo during-$((3*3))", "Enter"]);
    wait_for("tmux to show the output", LONG, || {
        server.capture("macs").contains("during-9").then_some(())
    });
    // … but the resync on %pause brings it into the model, and output flows again after.
    pump_until(
        &mut panes,
        &mut events,
        "the paused output in the model",
        |p| pane_text(p, id).contains("during-9"),
    )
    .await;
    server.ok(&["send-keys", "-t", "macs", "echo after-$((5*5))", "Enter"]);
    pump_until(
        &mut panes,
        &mut events,
        "output after the pane resumed",
        |p| pane_text(p, id).contains("after-25"),
    )
    .await;
    client.shutdown();
}
