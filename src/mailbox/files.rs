//! Files: documents (front matter + text), reading responses, and atomic writes.

use super::*;

// ---------------------------------------------------------------------------------------------
// Documents: front matter + text.

/// Maps an I/O error on `path` to [`MailboxError::Io`].
pub(super) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> MailboxError + 'a {
    move |source| MailboxError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

pub(super) fn check_id(id: &str) -> Result<(), MailboxError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(MailboxError::BadId { id: id.to_owned() })
    }
}

/// `---\n<yaml>---\n<text>\n`
pub(super) fn render_doc<T: Serialize>(
    id: &str,
    front: &T,
    text: &str,
) -> Result<String, MailboxError> {
    let yaml = serde_yaml::to_string(front).map_err(|source| MailboxError::Yaml {
        id: id.to_owned(),
        source,
    })?;
    let mut doc = String::with_capacity(yaml.len() + text.len() + 10);
    doc.push_str("---\n");
    doc.push_str(&yaml);
    if !yaml.ends_with('\n') {
        doc.push('\n');
    }
    doc.push_str("---\n");
    doc.push_str(text);
    doc.push('\n');
    Ok(doc)
}

/// Whether a line (with or without its line ending) is a front matter delimiter.
pub(super) fn is_delimiter(line: &str) -> bool {
    line.trim_end_matches(['\n', '\r', ' ', '\t']) == "---"
}

/// Splits a document into its front matter (YAML) and its body. Accepts a UTF-8 BOM and CRLF
/// delimiter lines.
pub(super) fn split_front(doc: &str) -> Result<(&str, &str), String> {
    let doc = doc.strip_prefix('\u{feff}').unwrap_or(doc);
    let mut lines = doc.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if !is_delimiter(first) {
        return Err("it does not start with a `---` line".into());
    }
    let rest = &doc[first.len()..];
    let mut at = 0;
    for line in rest.split_inclusive('\n') {
        if is_delimiter(line) {
            return Ok((&rest[..at], &rest[at + line.len()..]));
        }
        at += line.len();
    }
    Err("no `---` line closes the front matter".into())
}

/// The text of a body: without the one newline the writer added.
pub(super) fn strip_final_newline(body: &str) -> String {
    body.strip_suffix('\n').unwrap_or(body).to_owned()
}

pub(super) fn parse_request(id: &str, bytes: &[u8]) -> Result<RequestRecord, String> {
    let doc = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let (yaml, body) = split_front(doc)?;
    let front: RequestFront =
        serde_yaml::from_str(yaml).map_err(|e| format!("bad front matter: {e}"))?;
    if front.id != id {
        return Err(format!(
            "its front matter says id {:?}, its name says {id:?}",
            front.id
        ));
    }
    Ok(RequestRecord {
        id: front.id,
        session: front.session,
        pane: front.pane,
        agent: front.agent,
        kind: front.kind,
        detected_at: front.detected_at,
        text: strip_final_newline(body),
    })
}

/// `Missing` or `NotAFile` unless `path` is a regular file (after symlinks). Checked before
/// opening, so that a FIFO never blocks the daemon.
pub(super) fn check_regular_file(id: &str, path: &Path) -> Result<(), ResponseError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(ResponseError::NotAFile { id: id.to_owned() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(ResponseError::Missing { id: id.to_owned() })
        }
        Err(source) => Err(ResponseError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads a response file with every content check but the id check.
pub(super) fn read_response_file(
    id: &str,
    path: &Path,
    limit: u64,
) -> Result<ResponseFile, ResponseError> {
    let read_err = |source| ResponseError::Io {
        path: path.to_owned(),
        source,
    };
    check_regular_file(id, path)?;
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ResponseError::Missing { id: id.to_owned() })
        }
        Err(e) => return Err(read_err(e)),
    };
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(ResponseError::NotAFile { id: id.to_owned() });
    }
    let stamp = FileStamp::of(&meta);
    if stamp.len > limit {
        return Err(ResponseError::TooLarge {
            id: id.to_owned(),
            len: stamp.len,
            limit,
        });
    }
    // The file may grow while it is read: never read more than the limit and one byte.
    let mut bytes = Vec::with_capacity(usize::try_from(stamp.len).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    let len = bytes.len() as u64;
    if len > limit {
        return Err(ResponseError::TooLarge {
            id: id.to_owned(),
            len: len.max(stamp.len),
            limit,
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| ResponseError::NotUtf8 {
        id: id.to_owned(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.is_empty() {
        return Err(ResponseError::Empty { id: id.to_owned() });
    }
    if text.trim().is_empty() {
        return Err(ResponseError::WhitespaceOnly { id: id.to_owned() });
    }
    Ok(ResponseFile {
        raw: text.replace("\r\n", "\n"),
        modified: stamp.modified,
        len: stamp.len.max(len),
    })
}

pub(super) fn system_to_utc(t: SystemTime) -> Option<DateTime<Utc>> {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    DateTime::<Utc>::from_timestamp(i64::try_from(d.as_secs()).ok()?, d.subsec_nanos())
}

// ---------------------------------------------------------------------------------------------
// Files.

pub(super) fn ensure_dir(dir: &Path) -> Result<(), MailboxError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        // The umask may have taken bits away: say exactly 0700.
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err("set the mode of", dir)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check_private(dir, false),
        Err(source) => Err(io_err("create", dir)(source)),
    }
}

/// Refuses a directory that another user could write into: owned by someone else, writable by
/// group or others, or (below the state dir) a symbolic link. Whatever is in such a directory
/// could have been put there by another user, and the bridge types what it reads there.
pub fn check_private(dir: &Path, root: bool) -> Result<(), MailboxError> {
    use std::os::unix::fs::MetadataExt;
    let unsafe_dir = |why: String| MailboxError::Unsafe {
        path: dir.to_owned(),
        why,
    };
    let meta = if root {
        fs::metadata(dir)
    } else {
        fs::symlink_metadata(dir)
    }
    .map_err(io_err("look at", dir))?;
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir(
            "it is a symbolic link (the bridge follows none in its state dir)".into(),
        ));
    }
    if !meta.is_dir() {
        return Err(MailboxError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(unsafe_dir(format!(
            "it belongs to user id {}, not to you ({me}); use a directory of your own",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "it is writable by {} (mode {mode:o}); make it private (chmod 700) or use another one",
            if mode & 0o002 != 0 {
                "others"
            } else {
                "its group"
            }
        )));
    }
    Ok(())
}

/// Reads a file without following a symbolic link in its last component.
pub(super) fn read_nofollow(path: &Path) -> io::Result<Vec<u8>> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The ids of the `<id>.md` files in a directory.
pub(super) fn list_ids(dir: &Path) -> io::Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        match name.to_str().and_then(response_id) {
            Some(id) => {
                ids.insert(id.to_owned());
            }
            None => debug!(dir = %dir.display(), name = ?name, "ignoring a file"),
        }
    }
    Ok(ids)
}

pub(super) fn remove_if_present(path: &Path) -> Result<(), MailboxError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io_err("remove", path)(source)),
    }
}

/// Removes this module's temporary files that a crash left behind. Best effort.
pub(super) fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let ours = name
            .to_str()
            .is_some_and(|n| n.starts_with('.') && n.contains(TEMP_MARK));
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP_AGE);
        if ours && old {
            match fs::remove_file(entry.path()) {
                Ok(()) => {
                    info!(path = %entry.path().display(), "removed a left-over temporary file")
                }
                Err(error) => {
                    warn!(path = %entry.path().display(), %error, "cannot remove a left-over temporary file")
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Replace {
    Always,
    /// Fail with `AlreadyExists` when the destination exists.
    Never,
}

/// Writes a file atomically: a temporary file (mode 0600) in the same directory, flushed to
/// disk, then renamed (or hard-linked, for `Replace::Never`) into place.
pub(super) fn write_atomic(dest: &Path, bytes: &[u8], replace: Replace) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(
        ".{name}{TEMP_MARK}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_then_place(&tmp, dest, bytes, replace);
    if result.is_err() || replace == Replace::Never {
        // After a hard link (or a failure) the temporary name is still there.
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // Make the rename itself durable; not every file system can sync a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub(super) fn write_then_place(
    tmp: &Path,
    dest: &Path,
    bytes: &[u8],
    replace: Replace,
) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    match replace {
        Replace::Always => fs::rename(tmp, dest),
        Replace::Never => match fs::hard_link(tmp, dest) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
            // A file system without hard links: check, then rename (a small race, no worse).
            Err(_) if dest.exists() => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "destination exists",
            )),
            Err(_) => fs::rename(tmp, dest),
        },
    }
}
