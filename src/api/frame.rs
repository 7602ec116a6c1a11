//! A bounded line reader for the socket: one frame per `\n`, never buffering more than the limit
//! plus one read's worth, whatever the peer sends. A longer line is reported as
//! [`Frame::TooLong`] and skipped up to its newline.
//!
//! It owns its partial line, so a `read` cancelled in a `select!` loses nothing.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One line from the peer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// The line without its `\n` (and without a final `\r`).
    Line(Vec<u8>),
    /// The line was longer than the limit; its bytes were skipped.
    TooLong,
}

/// Reads lines of at most `limit` bytes from `R`.
pub struct LineReader<R> {
    inner: R,
    limit: usize,
    buf: Vec<u8>,
    /// The current line passed the limit: skipping to its end.
    skipping: bool,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R, limit: usize) -> Self {
        LineReader {
            inner,
            limit,
            buf: Vec::new(),
            skipping: false,
        }
    }

    /// The next line, or `None` at the end of the stream. A last line without a newline counts.
    /// Cancel-safe.
    pub async fn read(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            let avail = self.inner.fill_buf().await?;
            if avail.is_empty() {
                if self.skipping {
                    self.skipping = false;
                    return Ok(Some(Frame::TooLong));
                }
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.take_line()));
            }
            let (chunk, used, end) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (&avail[..i], i + 1, true),
                None => (avail, avail.len(), false),
            };
            if !self.skipping {
                // One byte of slack for a `\r` before the newline.
                if self.buf.len() + chunk.len() > self.limit + 1 {
                    self.skipping = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            self.inner.consume(used);
            if end {
                if self.skipping {
                    self.skipping = false;
                    return Ok(Some(Frame::TooLong));
                }
                return Ok(Some(self.take_line()));
            }
        }
    }

    /// The reader underneath.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    fn take_line(&mut self) -> Frame {
        let mut line = std::mem::take(&mut self.buf);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > self.limit {
            return Frame::TooLong;
        }
        Frame::Line(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], limit: usize, cap: usize) -> Vec<Frame> {
        let reader = tokio::io::BufReader::with_capacity(cap, input);
        let mut r = LineReader::new(reader, limit);
        let mut out = Vec::new();
        while let Some(f) = r.read().await.unwrap() {
            out.push(f);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(s.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn lines_split_anywhere_read_the_same() {
        let input = b"abc\r\n\nde\nlongerthanten\nxyz";
        for cap in [1, 2, 3, 5, 64] {
            assert_eq!(
                frames(input, 10, cap).await,
                vec![
                    line("abc"),
                    line(""),
                    line("de"),
                    Frame::TooLong,
                    line("xyz")
                ],
                "buffer capacity {cap}"
            );
        }
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_passes_and_one_more_byte_does_not() {
        assert_eq!(
            frames(b"0123456789\n", 10, 4).await,
            vec![line("0123456789")]
        );
        for cap in [4, 11, 12] {
            assert_eq!(
                frames(b"0123456789\r\n", 10, cap).await,
                vec![line("0123456789")]
            );
        }
        assert_eq!(
            frames(b"0123456789a\nok\n", 10, 4).await,
            vec![Frame::TooLong, line("ok")]
        );
        assert_eq!(frames(b"0123456789abc", 10, 4).await, vec![Frame::TooLong]);
    }

    #[tokio::test]
    async fn memory_stays_bounded_on_an_endless_line() {
        let big = vec![b'x'; 1 << 20];
        let reader = tokio::io::BufReader::with_capacity(4096, &big[..]);
        let mut r = LineReader::new(reader, 1000);
        assert_eq!(r.read().await.unwrap(), Some(Frame::TooLong));
        assert!(r.buf.capacity() <= 1001 + 4096);
    }
}
