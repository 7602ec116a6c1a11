//! What the bench watches: the worker pane's output, on its own control connection
//! ([`common::Observer`]), and the request files that appear in both inboxes (inotify).

use super::*;

/// One worker pane as the bench sees it, through its own control connection
/// ([`common::Observer`]): wall-clock stamps of awaited output, and typing as a person would.
pub(super) struct Observer {
    pub(super) obs: common::Observer,
    pub(super) pane: PaneId,
    pub(super) rt: tokio::runtime::Handle,
}

impl Observer {
    pub(super) fn start(
        rt: &tokio::runtime::Runtime,
        tmux: Tmux,
        session: &str,
        pane: PaneId,
    ) -> Observer {
        Observer {
            obs: rt.block_on(common::Observer::start(tmux, session, &[pane])),
            pane,
            rt: rt.handle().clone(),
        }
    }

    /// From now on, waits for `parts` to show in this order; sends the time of the `%output`
    /// that completed them.
    pub(super) fn expect(&self, parts: &[&str]) -> mpsc::Receiver<i64> {
        let (tx, rx) = mpsc::channel();
        self.obs.expect(self.pane, parts, move |at| {
            let _ = tx.send(at.wall_us);
        });
        rx
    }

    /// Types `text` into the pane and presses Enter (as a person would, from our connection).
    pub(super) fn type_line(&self, text: &str) -> Result<(), String> {
        let target = Target::Pane(self.pane);
        let enter = KeyName::parse("Enter").map_err(|e| e.to_string())?;
        let client = self.obs.client();
        self.rt
            .block_on(async {
                client
                    .run(&Command::send_keys_literal(&target, text))
                    .await?;
                client.run(&Command::send_keys(&target, &[enter])).await
            })
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// Inbox files, for both sides

/// A request file that appeared in an inbox.
pub(super) struct Filed {
    pub(super) n: u64,
    pub(super) id: String,
    pub(super) printed_us: i64,
    pub(super) seen_us: i64,
}

/// Watches both inboxes with inotify; each new `<id>.md` is stamped, read and sent to its side.
pub(super) fn watch_inboxes(
    routes: Vec<(PathBuf, mpsc::Sender<Filed>)>,
) -> notify::RecommendedWatcher {
    use notify::{EventKind, RecursiveMode, Watcher};
    let dirs: Vec<PathBuf> = routes.iter().map(|(d, _)| d.clone()).collect();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let at = now_us();
        let Ok(ev) = res else { return };
        if matches!(ev.kind, EventKind::Remove(_) | EventKind::Access(_)) {
            return;
        }
        for path in ev.paths {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.starts_with('.') || !name.ends_with(".md") || seen.contains(&path) {
                continue;
            }
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let Some((n, printed_us)) = parse_request(&text) else {
                continue;
            };
            seen.insert(path.clone());
            let id = name.trim_end_matches(".md").to_string();
            if let Some((_, tx)) = routes.iter().find(|(d, _)| path.parent() == Some(d)) {
                let _ = tx.send(Filed {
                    n,
                    id,
                    printed_us,
                    seen_us: at,
                });
            }
        }
    })
    .expect("an inotify watcher");
    for d in dirs {
        watcher
            .watch(&d, RecursiveMode::NonRecursive)
            .expect("watch an inbox");
    }
    watcher
}

/// `bench request N at T` in a request's text.
pub(super) fn parse_request(text: &str) -> Option<(u64, i64)> {
    let rest = &text[text.find("bench request ")? + "bench request ".len()..];
    let mut words = rest.split_whitespace();
    let n = words.next()?.parse().ok()?;
    (words.next()? == "at").then_some(())?;
    let t = words.next()?.trim_end_matches(':');
    Some((n, parse_epoch(t)?))
}
