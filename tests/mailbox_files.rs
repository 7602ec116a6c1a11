//! The manual-mode mailbox on real files in temporary directories, with a real `notify` watcher.
//! Waiting on the watcher polls its channel with a deadline; nothing sleeps.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use macs_bridge::mailbox::{
    Delivered, Mailbox, MailboxError, OutboxEvent, RequestKind, RequestRecord, ResponseError,
};
use tokio::sync::mpsc;

const DEADLINE: Duration = Duration::from_secs(10);

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_000_000 + secs, 250_000_000)
        .single()
        .unwrap()
}

fn record(id: &str, text: &str, when: DateTime<Utc>) -> RequestRecord {
    RequestRecord {
        id: id.into(),
        session: "macs".into(),
        pane: "%3".into(),
        agent: "worker".into(),
        kind: RequestKind::Block,
        detected_at: when,
        text: text.into(),
    }
}

fn delivered(outcome: &str) -> Delivered {
    Delivered {
        at: at(60),
        pane: "%3".into(),
        outcome: outcome.into(),
        sent_text: "do the thing\nthen the other".into(),
    }
}

/// The names in a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// No temporary file anywhere in the mailbox.
fn assert_no_temp_files(mb: &Mailbox) {
    for dir in [mb.inbox_dir(), mb.outbox_dir(), mb.archive_dir()] {
        for name in names(dir) {
            assert!(
                !name.starts_with('.') && !name.contains("tmp"),
                "left-over file {name} in {}",
                dir.display()
            );
        }
    }
}

fn open() -> (tempfile::TempDir, Mailbox) {
    let tmp = tempfile::tempdir().unwrap();
    let mb = Mailbox::open(tmp.path()).unwrap();
    (tmp, mb)
}

/// Receives events until one matches `want`; returns everything received. Panics at the
/// deadline.
async fn wait_for(
    rx: &mut mpsc::Receiver<OutboxEvent>,
    what: &str,
    want: impl Fn(&OutboxEvent) -> bool,
) -> Vec<OutboxEvent> {
    let end = tokio::time::Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Some(ev)) => {
                let hit = want(&ev);
                seen.push(ev);
                if hit {
                    return seen;
                }
            }
            Ok(None) => panic!("watcher channel closed while waiting for {what}; saw {seen:?}"),
            Err(_) => panic!("no event for {what} within {DEADLINE:?}; saw {seen:?}"),
        }
    }
}

fn changed(id: &str) -> impl Fn(&OutboxEvent) -> bool + '_ {
    move |ev| ev.id() == id
}

// ---------------------------------------------------------------------------------------------

#[test]
fn request_round_trips_with_front_matter_and_awkward_text() {
    let (_tmp, mb) = open();
    let texts = [
        "plain",
        "ends with a newline\n",
        "two newlines\n\n",
        "",
        "---\nlooks like front matter\n---\nid: fake\n---",
        "Unicode: ⏺ café, 日本語, emoji 🦀\n  indented\ttab",
        "\nleading newline and CRLF\r\ninside",
        "<<CONTROLLER_REQUEST>>\nWhat next?\n<<CONTROLLER_REQUEST_END>>",
    ];
    for (i, text) in texts.iter().enumerate() {
        let id = format!("req-{i}");
        let mut r = record(&id, text, at(i as i64));
        r.agent = ["worker", "---", "a: b", "%3 #x"][i % 4].into();
        r.kind = if i % 2 == 0 {
            RequestKind::Block
        } else {
            RequestKind::Heuristic
        };
        let path = mb.write_request(&r).unwrap();
        assert_eq!(path, mb.inbox_dir().join(format!("{id}.md")));
        let back = mb.read_request(&id).unwrap();
        assert_eq!(back, r, "text {text:?}");

        let file = fs::read_to_string(&path).unwrap();
        assert!(file.starts_with(&format!("---\nid: {id}\n")), "{file}");
        assert!(file.contains("pane: '%3'\n"), "{file}");
        let kind = if i % 2 == 0 { "block" } else { "heuristic" };
        assert!(file.contains(&format!("kind: {kind}\n")), "{file}");
        assert!(file.contains("detected_at: "), "{file}");
        assert!(file.ends_with(&format!("---\n{text}\n")), "{file:?}");
    }
    assert_no_temp_files(&mb);
}

#[test]
fn request_ids_are_never_reused() {
    let (_tmp, mb) = open();
    let id = Mailbox::new_id(at(0));
    let first = record(&id, "first", at(0));
    mb.write_request(&first).unwrap();
    let err = mb.write_request(&record(&id, "second", at(1))).unwrap_err();
    assert!(matches!(err, MailboxError::IdTaken { .. }), "{err}");
    assert_eq!(mb.read_request(&id).unwrap(), first);
    assert!(matches!(
        mb.write_request(&record("../escape", "x", at(0))),
        Err(MailboxError::BadId { .. })
    ));
    assert!(matches!(
        mb.read_request("nope"),
        Err(MailboxError::NoSuchRequest { .. })
    ));
    assert_no_temp_files(&mb);
}

#[test]
fn pending_requests_oldest_first_and_bad_files_are_kept() {
    let (_tmp, mb) = open();
    mb.write_request(&record("b-late", "late", at(20))).unwrap();
    mb.write_request(&record("a-early", "early", at(10)))
        .unwrap();
    mb.write_request(&record("c-mid", "mid", at(15))).unwrap();
    let bad = mb.inbox_dir().join("broken.md");
    fs::write(&bad, "no front matter at all\n").unwrap();
    let mismatch = mb.inbox_dir().join("renamed.md");
    fs::write(
        &mismatch,
        fs::read(mb.inbox_dir().join("c-mid.md")).unwrap(),
    )
    .unwrap();
    fs::write(mb.inbox_dir().join("notes.txt"), "not a request").unwrap();
    fs::write(mb.inbox_dir().join(".a-early.md.swp"), "swap").unwrap();

    let ids: Vec<String> = mb
        .pending_requests()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["a-early", "c-mid", "b-late"]);
    assert!(
        bad.exists() && mismatch.exists(),
        "bad inbox files are never deleted"
    );
    assert!(matches!(
        mb.read_request("broken"),
        Err(MailboxError::BadFile { .. })
    ));
}

#[test]
fn directories_and_files_get_private_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    // An existing directory keeps its mode.
    fs::create_dir_all(state.join("outbox")).unwrap();
    fs::set_permissions(state.join("outbox"), fs::Permissions::from_mode(0o755)).unwrap();
    let mb = Mailbox::open(&state).unwrap();
    assert_eq!(mode(&state.join("inbox")), 0o700);
    assert_eq!(mode(&state.join("archive")), 0o700);
    assert_eq!(mode(&state.join("outbox")), 0o755);

    let fresh = tmp.path().join("new/state");
    Mailbox::open(&fresh).unwrap();
    assert_eq!(mode(&fresh), 0o700);

    let id = "perm";
    let path = mb.write_request(&record(id, "q", at(0))).unwrap();
    assert_eq!(mode(&path), 0o600);
    fs::write(mb.response_path(id), "").unwrap();
    let err = mb.read_response(id).unwrap_err();
    mb.write_error(id, &err).unwrap();
    assert_eq!(mode(&mb.error_path(id)), 0o600);
    fs::write(mb.response_path(id), "answer").unwrap();
    let resp = mb.read_response(id).unwrap();
    mb.archive(id, &resp, &delivered("delivered (Enter)"))
        .unwrap();
    mb.archive_note(id, "fallback", "took the rules backend")
        .unwrap();
    for name in ["perm.request.md", "perm.response.md", "perm.fallback.md"] {
        assert_eq!(mode(&mb.archive_dir().join(name)), 0o600, "{name}");
    }
    assert_no_temp_files(&mb);
}

#[test]
fn outbox_ignores_swap_backup_and_temp_names() {
    let (_tmp, mb) = open();
    let ignored = [
        ".x.md.swp",
        "x.md~",
        "#x.md#",
        ".#x.md",
        "4913",
        "x.md.tmp",
        "x.md.bak",
        ".x.md.kate-swp",
        "x.error",
        "x.txt",
        "x.y.md",
    ];
    for name in ignored {
        fs::write(mb.outbox_dir().join(name), "text").unwrap();
    }
    fs::write(mb.outbox_dir().join("x.md"), "text").unwrap();
    fs::write(mb.outbox_dir().join("20261120-233512-3f9a.md"), "text").unwrap();
    assert_eq!(mb.outbox_ids(), ["20261120-233512-3f9a", "x"]);
}

struct BadCase {
    id: &'static str,
    bytes: Vec<u8>,
    /// Whether `inbox/<id>.md` exists.
    known: bool,
    expect: fn(&ResponseError) -> bool,
    /// Words the error message must hold.
    reason: &'static str,
}

#[test]
fn each_bad_response_gets_its_own_error_and_stays_put() {
    let (_tmp, mb) = open();
    let big = "a".repeat(64 * 1024 + 1);
    let case = |id, bytes: &[u8], known, expect: fn(&ResponseError) -> bool, reason| BadCase {
        id,
        bytes: bytes.to_vec(),
        known,
        expect,
        reason,
    };
    let cases = [
        case(
            "empty",
            b"",
            true,
            |e| matches!(e, ResponseError::Empty { .. }),
            "empty",
        ),
        case(
            "blank",
            b" \n\t\r\n  ",
            true,
            |e| matches!(e, ResponseError::WhitespaceOnly { .. }),
            "only whitespace",
        ),
        case(
            "bomonly",
            "\u{feff}".as_bytes(),
            true,
            |e| matches!(e, ResponseError::Empty { .. }),
            "empty",
        ),
        case(
            "unknown",
            b"a fine answer",
            false,
            |e| matches!(e, ResponseError::UnknownId { .. }),
            "no request with id unknown",
        ),
        case(
            "latin1",
            b"caf\xe9 ok",
            true,
            |e| matches!(e, ResponseError::NotUtf8 { offset: 3, .. }),
            "not UTF-8",
        ),
        case(
            "huge",
            big.as_bytes(),
            true,
            |e| {
                matches!(
                    e,
                    ResponseError::TooLarge {
                        len: 65537,
                        limit: 65536,
                        ..
                    }
                )
            },
            "more than the limit",
        ),
    ];
    let mut kinds = Vec::new();
    for BadCase {
        id,
        bytes,
        known,
        expect,
        reason,
    } in &cases
    {
        if *known {
            mb.write_request(&record(id, "question", at(0))).unwrap();
        }
        let path = mb.response_path(id);
        fs::write(&path, bytes).unwrap();
        let err = mb.read_response(id).unwrap_err();
        assert!(expect(&err), "{id}: unexpected {err:?}");
        assert!(err.is_content_problem(), "{id}");
        assert!(err.to_string().contains(reason), "{id}: {err}");
        kinds.push(std::mem::discriminant(&err));

        mb.write_error(id, &err).unwrap();
        let error_text = fs::read_to_string(mb.error_path(id)).unwrap();
        assert!(error_text.contains(reason), "{id}: {error_text}");
        assert!(
            error_text.contains(&format!("outbox/{id}.md")),
            "{error_text}"
        );
        assert_eq!(fs::read(&path).unwrap(), *bytes, "{id}: response changed");
    }
    kinds.dedup();
    // empty and BOM-only share a kind; the rest are all different.
    let distinct: std::collections::HashSet<_> = kinds.iter().collect();
    assert_eq!(distinct.len(), 5);
    // None of the error files counts as a response.
    let mut ids = mb.outbox_ids();
    ids.sort();
    assert_eq!(
        ids,
        ["blank", "bomonly", "empty", "huge", "latin1", "unknown"]
    );

    assert!(matches!(
        mb.read_response("absent"),
        Err(ResponseError::Missing { .. })
    ));
    assert!(matches!(
        mb.read_response("../inbox/x"),
        Err(ResponseError::BadId { .. })
    ));
    fs::create_dir(mb.response_path("adir")).unwrap();
    assert!(matches!(
        mb.read_response("adir"),
        Err(ResponseError::NotAFile { .. })
    ));
    assert_no_temp_files(&mb);
}

#[test]
fn a_response_that_becomes_good_clears_its_error() {
    let (_tmp, mb) = open();
    let id = "fixme";
    mb.write_request(&record(id, "question", at(0))).unwrap();
    fs::write(mb.response_path(id), "   \n").unwrap();
    let err = mb.read_response(id).unwrap_err();
    mb.write_error(id, &err).unwrap();
    assert!(mb.error_path(id).exists());

    // Saved from a Windows editor: BOM and CRLF.
    fs::write(
        mb.response_path(id),
        "\u{feff}<<CONTROLLER_RESPONSE>>\r\nWORKER INSTRUCTIONS:\r\ngo on\r\n",
    )
    .unwrap();
    let resp = mb.read_response(id).unwrap();
    assert_eq!(
        resp.raw,
        "<<CONTROLLER_RESPONSE>>\nWORKER INSTRUCTIONS:\ngo on\n"
    );
    assert_eq!(resp.len, fs::metadata(mb.response_path(id)).unwrap().len());
    mb.clear_error(id);
    assert!(!mb.error_path(id).exists());
    mb.clear_error(id); // nothing to clear: fine
}

#[test]
fn archive_moves_both_and_records_the_delivery() {
    let (_tmp, mb) = open();
    let id = "arch";
    mb.write_request(&record(id, "what next?", at(0))).unwrap();
    let inbox_bytes = fs::read(mb.request_path(id)).unwrap();
    fs::write(mb.response_path(id), "do the thing\r\nthen the other\r\n").unwrap();
    fs::write(mb.error_path(id), "stale").unwrap();
    let resp = mb.read_response(id).unwrap();
    assert!(!mb.is_archived(id));

    mb.archive(id, &resp, &delivered("delivered (Enter)"))
        .unwrap();
    assert!(mb.is_archived(id));
    assert!(names(mb.inbox_dir()).is_empty());
    assert!(
        names(mb.outbox_dir()).is_empty(),
        "{:?}",
        names(mb.outbox_dir())
    );
    assert_eq!(
        names(mb.archive_dir()),
        ["arch.request.md", "arch.response.md"]
    );
    assert_eq!(
        fs::read(mb.archive_dir().join("arch.request.md")).unwrap(),
        inbox_bytes
    );
    let archived = fs::read_to_string(mb.archive_dir().join("arch.response.md")).unwrap();
    assert!(archived.starts_with("---\nid: arch\n"), "{archived}");
    assert!(
        archived.contains("outcome: delivered (Enter)\n"),
        "{archived}"
    );
    assert!(archived.contains("pane: '%3'\n"), "{archived}");
    assert!(archived.contains("delivered_at: "), "{archived}");
    assert!(archived.contains("sent_text: "), "{archived}");
    assert!(
        archived.ends_with("---\ndo the thing\nthen the other\n\n"),
        "{archived:?}"
    );

    // Answered: not pending, and a late response for it is refused with a clear reason.
    assert!(mb.pending_requests().unwrap().is_empty());
    fs::write(mb.response_path(id), "again").unwrap();
    assert!(matches!(
        mb.read_response(id),
        Err(ResponseError::AlreadyAnswered { .. })
    ));
    assert_no_temp_files(&mb);
}

/// Puts back the inbox and outbox files as a crash before the removals would have left them.
fn simulate_crash_before_removal(mb: &Mailbox, id: &str, inbox: &[u8], outbox: &[u8]) {
    fs::write(mb.request_path(id), inbox).unwrap();
    fs::write(mb.response_path(id), outbox).unwrap();
}

#[test]
fn archive_is_idempotent_after_a_crash_between_steps() {
    let (tmp, mb) = open();
    let id = "crash";
    mb.write_request(&record(id, "q", at(0))).unwrap();
    let inbox = fs::read(mb.request_path(id)).unwrap();
    let outbox = b"the answer\n".to_vec();
    fs::write(mb.response_path(id), &outbox).unwrap();
    let resp = mb.read_response(id).unwrap();
    let d = delivered("delivered (Enter)");
    mb.archive(id, &resp, &d).unwrap();
    let archive_after_first = names(mb.archive_dir());
    let response_after_first = fs::read(mb.archive_dir().join("crash.response.md")).unwrap();

    // 1. Archive files written, inbox and outbox not removed: run archive again.
    simulate_crash_before_removal(&mb, id, &inbox, &outbox);
    assert!(
        mb.pending_requests().unwrap().is_empty(),
        "answered is never pending"
    );
    mb.archive(id, &resp, &d).unwrap();
    assert_eq!(names(mb.archive_dir()), archive_after_first);
    assert_eq!(
        fs::read(mb.archive_dir().join("crash.response.md")).unwrap(),
        response_after_first
    );
    assert!(names(mb.inbox_dir()).is_empty());
    assert!(names(mb.outbox_dir()).is_empty());

    // 2. The same crash, then a restart: opening the mailbox finishes the job.
    simulate_crash_before_removal(&mb, id, &inbox, &outbox);
    let reopened = Mailbox::open(tmp.path()).unwrap();
    assert_eq!(names(reopened.archive_dir()), archive_after_first);
    assert!(names(reopened.inbox_dir()).is_empty());
    assert!(names(reopened.outbox_dir()).is_empty());

    // 3. A crash after the inbox file went but before the outbox file did.
    fs::write(mb.response_path(id), &outbox).unwrap();
    assert_eq!(mb.recover().unwrap(), [id]);
    assert!(names(mb.outbox_dir()).is_empty());

    // 4. A crash after only the request was copied: not answered yet, archive completes it.
    let id2 = "half";
    mb.write_request(&record(id2, "q2", at(1))).unwrap();
    fs::write(mb.response_path(id2), "a2").unwrap();
    fs::copy(
        mb.request_path(id2),
        mb.archive_dir().join("half.request.md"),
    )
    .unwrap();
    assert!(!mb.is_archived(id2));
    assert_eq!(mb.pending_requests().unwrap().len(), 1);
    let resp2 = mb.read_response(id2).unwrap();
    mb.archive(id2, &resp2, &d).unwrap();
    assert_eq!(
        names(mb.archive_dir()),
        [
            "crash.request.md",
            "crash.response.md",
            "half.request.md",
            "half.response.md"
        ]
    );
    assert!(names(mb.inbox_dir()).is_empty());
    assert!(names(mb.outbox_dir()).is_empty());

    // 5. Archived again with other facts: the first record is kept, the second sits beside it.
    mb.archive(
        id2,
        &resp2,
        &delivered("unconfirmed: the prompt still holds the text"),
    )
    .unwrap();
    assert!(mb.archive_dir().join("half.response-2.md").exists());
    assert!(
        fs::read_to_string(mb.archive_dir().join("half.response.md"))
            .unwrap()
            .contains("outcome: delivered (Enter)")
    );
    assert_no_temp_files(&mb);
}

#[test]
fn a_response_edited_after_reading_is_not_lost_by_the_archive() {
    let (_tmp, mb) = open();
    let id = "edited";
    mb.write_request(&record(id, "q", at(0))).unwrap();
    fs::write(mb.response_path(id), "first version").unwrap();
    let resp = mb.read_response(id).unwrap();
    fs::write(mb.response_path(id), "second version").unwrap();
    mb.archive(id, &resp, &delivered("delivered (Enter)"))
        .unwrap();
    assert!(!mb.request_path(id).exists());
    assert_eq!(
        fs::read_to_string(mb.response_path(id)).unwrap(),
        "second version"
    );
    assert!(matches!(
        mb.read_response(id),
        Err(ResponseError::AlreadyAnswered { .. })
    ));
}

#[test]
fn archive_notes() {
    let (_tmp, mb) = open();
    mb.archive_note("n1", "fallback", "pane backend timed out; used rules")
        .unwrap();
    let text = fs::read_to_string(mb.archive_dir().join("n1.fallback.md")).unwrap();
    assert!(
        text.ends_with("---\npane backend timed out; used rules\n"),
        "{text}"
    );
    for bad in ["response", "request", "response-2", "a.b", "", "x/y"] {
        assert!(
            matches!(
                mb.archive_note("n1", bad, "x"),
                Err(MailboxError::BadNoteName { .. })
            ),
            "{bad:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The watcher.

#[tokio::test]
async fn watcher_reports_editor_saves_and_ignores_other_names() {
    let (_tmp, mb) = open();
    let (tx, mut rx) = mpsc::channel(256);
    let watcher = mb.watch(tx).unwrap();
    let outbox = mb.outbox_dir().to_owned();

    // Write a temporary file, then rename it into place (most GUI editors, `sed -i`).
    fs::write(outbox.join(".renamed.md.tmp123"), "answer one\n").unwrap();
    fs::write(outbox.join("renamed.md.tmp"), "answer one\n").unwrap();
    fs::rename(outbox.join("renamed.md.tmp"), outbox.join("renamed.md")).unwrap();
    let seen = wait_for(&mut rx, "a renamed file", changed("renamed")).await;
    assert_only_ids(&seen, &["renamed"]);

    // vim: probe file 4913, a swap file, a backup of the old file, then a new file.
    fs::write(outbox.join("vimmed.md"), "old\n").unwrap();
    fs::write(outbox.join("4913"), "").unwrap();
    fs::remove_file(outbox.join("4913")).unwrap();
    fs::write(outbox.join(".vimmed.md.swp"), "swap").unwrap();
    fs::rename(outbox.join("vimmed.md"), outbox.join("vimmed.md~")).unwrap();
    fs::write(outbox.join("vimmed.md"), "new answer\n").unwrap();
    fs::write(outbox.join("#vimmed.md#"), "emacs autosave").unwrap();
    fs::write(outbox.join(".#vimmed.md"), "emacs lock").unwrap();
    // Our own error file must not look like a response either.
    mb.write_error(
        "vimmed",
        &ResponseError::Empty {
            id: "vimmed".into(),
        },
    )
    .unwrap();
    // A sentinel: once it is seen, everything before it has been reported.
    fs::write(outbox.join("sentinel.md"), "s").unwrap();
    let seen = wait_for(&mut rx, "the sentinel", changed("sentinel")).await;
    assert_only_ids(&seen, &["renamed", "vimmed", "sentinel"]);
    assert!(seen.iter().any(|e| e.id() == "vimmed"));
    assert!(!watcher.take_missed());
}

#[tokio::test]
async fn the_watcher_reports_each_chunk_of_a_file_written_in_two_chunks() {
    let (_tmp, mb) = open();
    let id = "chunks";
    mb.write_request(&record(id, "q", at(0))).unwrap();
    let (tx, mut rx) = mpsc::channel(256);
    let _watcher = mb.watch(tx).unwrap();

    let mut f = fs::File::create(mb.response_path(id)).unwrap();
    f.write_all(b"first half, ").unwrap();
    f.flush().unwrap();
    wait_for(&mut rx, "the first chunk", changed(id)).await;
    let half = mb.response_stamp(id);
    f.write_all(b"second half\n").unwrap();
    drop(f);
    wait_for(&mut rx, "the second chunk", changed(id)).await;
    let full = mb.response_stamp(id);
    assert_ne!(full, half);
    let resp = mb.read_answer(id).unwrap();
    assert_eq!(resp.raw, "first half, second half\n");
    let stamp = full.unwrap();
    assert_eq!((resp.len, resp.modified), (stamp.len, stamp.modified));
}

fn assert_only_ids(events: &[OutboxEvent], allowed: &[&str]) {
    for ev in events {
        let id = ev.id();
        assert!(allowed.contains(&id), "unexpected {id}: {events:?}");
    }
}

#[test]
fn a_fifo_in_the_outbox_never_blocks() {
    let (tmp, mb) = open();
    let id = "fifo";
    mb.write_request(&record(id, "q", at(0))).unwrap();
    fs::write(mb.response_path(id), "answer").unwrap();
    let resp = mb.read_response(id).unwrap();
    mb.archive(id, &resp, &delivered("delivered (Enter)"))
        .unwrap();
    // A FIFO where the answer was: reading it must not wait for a writer.
    let path = std::ffi::CString::new(mb.response_path(id).to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    assert!(matches!(
        mb.read_response(id),
        Err(ResponseError::NotAFile { .. })
    ));
    assert!(mb.recover().unwrap().is_empty(), "nothing to finish");
    Mailbox::open(tmp.path()).unwrap();
    assert!(
        mb.response_path(id).exists(),
        "a file that is not the answer is kept"
    );
}

#[test]
fn the_response_limit_is_configurable() {
    let (_tmp, mb) = open();
    let mb = mb.with_response_limit(10);
    mb.write_request(&record("lim", "q", at(0))).unwrap();
    fs::write(mb.response_path("lim"), "0123456789").unwrap();
    assert!(mb.read_response("lim").is_ok());
    fs::write(mb.response_path("lim"), "0123456789a").unwrap();
    assert!(matches!(
        mb.read_response("lim"),
        Err(ResponseError::TooLarge {
            len: 11,
            limit: 10,
            ..
        })
    ));
}

#[test]
fn open_removes_only_old_temporary_files_of_its_own() {
    let (tmp, mb) = open();
    let old = mb.inbox_dir().join(".x.md.macs-tmp-1-1");
    let fresh = mb.outbox_dir().join(".y.md.macs-tmp-1-2");
    let foreign = mb.outbox_dir().join(".y.md.swp");
    for p in [&old, &fresh, &foreign] {
        fs::write(p, "partial").unwrap();
    }
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for p in [&old, &foreign] {
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
    }
    Mailbox::open(tmp.path()).unwrap();
    assert!(!old.exists());
    assert!(fresh.exists(), "may belong to a writer at work");
    assert!(foreign.exists(), "an editor's file is not ours");
}

#[test]
fn error_text_and_recent_archived_requests() {
    let (_tmp, mb) = open();
    mb.write_error_text(
        "e1",
        "delivery unconfirmed: the prompt still holds the text",
    )
    .unwrap();
    let text = fs::read_to_string(mb.error_path("e1")).unwrap();
    assert!(
        text.starts_with("outbox/e1.md was not delivered: delivery unconfirmed"),
        "{text}"
    );
    assert!(
        mb.outbox_ids().is_empty(),
        "an error file is not a response"
    );

    for (i, id) in [
        "20261120-000001-0000",
        "20261120-000002-0000",
        "20261120-000003-0000",
    ]
    .iter()
    .enumerate()
    {
        mb.write_request(&record(id, &format!("question {i}"), at(i as i64)))
            .unwrap();
        fs::write(mb.response_path(id), "answer").unwrap();
        let resp = mb.read_response(id).unwrap();
        mb.archive(id, &resp, &delivered("delivered (Enter)"))
            .unwrap();
    }
    fs::write(
        mb.archive_dir().join("20261120-000004-0000.request.md"),
        "garbage",
    )
    .unwrap();
    let recent: Vec<String> = mb
        .recent_archived_requests(2)
        .into_iter()
        .map(|r| r.text)
        .collect();
    // The garbage file is skipped (not counted); the two latest good ones, oldest first.
    assert_eq!(recent, ["question 1", "question 2"]);
    assert_eq!(mb.recent_archived_requests(10).len(), 3);
    assert!(mb.recent_archived_requests(0).is_empty());
}
