//! Standard input for the chat when no line editor reads it: read on its own thread, as lines
//! (piped, or a terminal in canonical mode) of bounded length.

use std::io::{BufRead, Read};

use tokio::sync::mpsc;

use crate::api::protocol;

pub(super) enum Input {
    /// A line, or why it could not be read.
    Line(Result<String, String>),
    Eof,
}

/// Reads standard input on its own thread (a blocking read in the runtime's pool would hold
/// the runtime open at exit).
pub(super) fn spawn_stdin() -> mpsc::UnboundedReceiver<Input> {
    let (tx, rx) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("chat-stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut r = stdin.lock();
            read_lines(&mut r, &tx);
            let _ = tx.send(Input::Eof);
        });
    if spawned.is_err() {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(Input::Line(Err("cannot read standard input".into())));
        let _ = tx.send(Input::Eof);
        return rx;
    }
    rx
}

/// Lines of at most [`protocol::MAX_LINE`] bytes; a longer one is skipped and reported.
fn read_lines(r: &mut impl BufRead, tx: &mpsc::UnboundedSender<Input>) {
    let limit = protocol::MAX_LINE;
    loop {
        let mut buf = Vec::new();
        let n = match r
            .by_ref()
            .take(limit as u64 + 2)
            .read_until(b'\n', &mut buf)
        {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Input::Line(Err(format!("cannot read standard input: {e}"))));
                return;
            }
        };
        if n == 0 {
            return;
        }
        let ended = buf.last() == Some(&b'\n');
        if ended {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        let line = if buf.len() > limit {
            if !ended {
                let _ = r.skip_until(b'\n');
            }
            Err(format!("the line is longer than {} KiB", limit / 1024))
        } else {
            String::from_utf8(buf).map_err(|_| "the line is not UTF-8".to_string())
        };
        if tx.send(Input::Line(line)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piped_lines_are_bounded() {
        let long = "x".repeat(protocol::MAX_LINE + 10);
        let input = format!("one\r\n{long}\ntwo");
        let (tx, mut rx) = mpsc::unbounded_channel();
        read_lines(&mut std::io::Cursor::new(input.into_bytes()), &tx);
        let mut got = Vec::new();
        while let Ok(Input::Line(l)) = rx.try_recv() {
            got.push(l.map_err(|e| e.contains("longer")));
        }
        assert_eq!(got, vec![Ok("one".into()), Err(true), Ok("two".into())]);
    }
}
