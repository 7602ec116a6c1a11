//! The API socket file: `<state dir>/macs.sock`, made private, replaced when stale, removed
//! when done. It owns the file and nothing else: the connections are [`super::server`]'s.
//!
//! # The socket file
//!
//! `Listener::bind` makes `<state dir>/macs.sock` with mode 0600 and no moment when it is more
//! open: the socket is bound inside a fresh private directory (0700) next to it, set to 0600
//! there, and only then linked to its real name (a hard link, which also refuses to replace a
//! socket another daemon put there meanwhile; on a file system without hard links, a rename).
//! Setting the umask around `bind` would do the same for one thread, but the umask belongs to
//! the whole process, and the daemon's other threads create files at the same time.
//!
//! A socket file already there is probed: when a daemon answers, binding fails
//! ([`ApiError::InUse`]); when nobody does (a crashed daemon's), it is replaced. Anything else
//! at that path (a regular file…) is left alone and is an error. The file is removed when the
//! server stops, unless another daemon's socket has replaced it meanwhile.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracing::{debug, info};

use super::ApiError;

/// The bound socket, before serving. Removes the socket file when dropped (unless another
/// daemon's socket replaced it).
#[derive(Debug)]
pub struct Listener {
    std: std::os::unix::net::UnixListener,
    file: SocketFile,
}

/// The socket file of a listener: removed when dropped, unless it is not ours any more.

#[derive(Debug)]
pub(super) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    debug!(path = %self.path.display(), error = %e, "cannot remove the API socket");
                }
            }
            _ => {}
        }
    }
}

/// A private directory for binding; removed with whatever is left in it.
struct BindDir(PathBuf);

impl Drop for BindDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0.join("s"));
        let _ = std::fs::remove_dir(&self.0);
    }
}

static BIND_DIRS: AtomicU64 = AtomicU64::new(0);

impl Listener {
    /// Creates the socket at `path` (mode 0600), replacing a stale one; fails when a daemon
    /// answers there. Does not need a runtime.
    pub fn bind(path: impl AsRef<Path>) -> Result<Listener, ApiError> {
        let path = path.as_ref();
        // Twice at most: a daemon that starts at the same moment may take the name in between.
        for _ in 0..2 {
            clear_stale(path)?;
            let dir = private_dir(path)?;
            let tmp = dir.0.join("s");
            let std = std::os::unix::net::UnixListener::bind(&tmp).map_err(|e| {
                if e.kind() == ErrorKind::InvalidInput {
                    ApiError::PathTooLong {
                        path: path.to_owned(),
                    }
                } else {
                    socket_error("create the socket", &tmp, e)
                }
            })?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| socket_error("set the mode of", &tmp, e))?;
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    debug!(path = %path.display(), "the API socket appeared while binding; checking again");
                    continue;
                }
                Err(e) => {
                    debug!(error = %e, "cannot hard-link the API socket; renaming it instead");
                    std::fs::rename(&tmp, path)
                        .map_err(|e| socket_error("create the socket", path, e))?;
                }
            }
            drop(dir);
            let meta = std::fs::symlink_metadata(path)
                .map_err(|e| socket_error("create the socket", path, e))?;
            info!(path = %path.display(), "API socket ready");
            return Ok(Listener {
                std,
                file: SocketFile {
                    path: path.to_owned(),
                    dev: meta.dev(),
                    ino: meta.ino(),
                },
            });
        }
        Err(ApiError::InUse {
            path: path.to_owned(),
        })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The listener and the file's guard, for the server.
    pub(super) fn into_parts(self) -> (std::os::unix::net::UnixListener, SocketFile) {
        (self.std, self.file)
    }
}

fn socket_error(action: &'static str, path: &Path, source: std::io::Error) -> ApiError {
    ApiError::Socket {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Removes a socket file nobody answers on; errors when somebody does or when it is not a socket.
fn clear_stale(path: &Path) -> Result<(), ApiError> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(socket_error("look at", path, e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ApiError::NotASocket {
            path: path.to_owned(),
        });
    }
    match probe(path) {
        Ok(()) => Err(ApiError::InUse {
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            info!(path = %path.display(), "removing the stale API socket of a daemon that is gone");
            match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(socket_error("remove the stale socket", path, e)),
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(socket_error("check the socket", path, e)),
    }
}

/// Connects to `path` and hangs up. A blocking `connect` waits while a live listener's queue
/// is full: that counts as live after a while.
fn probe(path: &Path) -> std::io::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.to_owned();
    std::thread::Builder::new()
        .name("api-probe".into())
        .spawn(move || {
            let _ = tx.send(std::os::unix::net::UnixStream::connect(&p).map(drop));
        })?;
    match rx.recv_timeout(Duration::from_secs(2)) {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

/// A new directory next to `path`, mode 0700 (short name: socket paths are limited).
fn private_dir(path: &Path) -> Result<BindDir, ApiError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut attempt = 0;
    loop {
        let n = BIND_DIRS.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!(".mb{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                let guard = BindDir(dir);
                // The umask may have taken bits away; never more than 0700 either way.
                std::fs::set_permissions(&guard.0, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| socket_error("set the mode of", &guard.0, e))?;
                return Ok(guard);
            }
            // Left by a crashed process with the same pid: take the next name.
            Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(socket_error("create a directory in", parent, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_needs_no_runtime_and_makes_a_private_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("macs.sock");
        let l = Listener::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "the bind directory is gone");
        assert!(matches!(Listener::bind(&path), Err(ApiError::InUse { .. })));
        drop(l);
        assert!(!path.exists(), "the socket is removed with the listener");
    }

    #[test]
    fn a_path_too_long_for_a_socket_says_so_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(120));
        std::fs::create_dir(&deep).unwrap();
        let err = Listener::bind(deep.join("macs.sock")).unwrap_err();
        assert!(matches!(err, ApiError::PathTooLong { .. }), "{err}");
        assert!(err.to_string().contains("--state-dir"), "{err}");
        assert_eq!(std::fs::read_dir(&deep).unwrap().count(), 0);
    }

    #[test]
    fn a_regular_file_in_the_way_is_never_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("macs.sock");
        std::fs::write(&path, "mine").unwrap();
        assert!(matches!(
            Listener::bind(&path),
            Err(ApiError::NotASocket { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    }
}
