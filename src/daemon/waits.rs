//! What the runner's loop waits on besides its channels: the outbox watcher's "events may be
//! lost" signal and the signals that stop the daemon.

use tokio_util::sync::CancellationToken;

/// Returns once the outbox watcher may have lost events; never without a watcher.
pub(super) async fn wait_missed(missed: Option<&crate::mailbox::Missed>) {
    match missed {
        Some(m) => m.wait().await,
        None => std::future::pending().await,
    }
}

pub(super) fn spawn_signal_handler(cancel: CancellationToken) {
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        cancel.cancel();
    });
}
