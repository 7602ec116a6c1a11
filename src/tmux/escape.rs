//! Unescaping of `%output` / `%extended-output` payloads, and the byte scanning it needs.
//!
//! tmux writes every pane byte below `0x20` and every `\` as a three-digit octal escape `\ooo`
//! (`control_append_data` in tmux's `control.c`); all other bytes come raw, including bytes
//! `>= 0x80`. Those raw bytes need not be valid UTF-8, and tmux cuts a pane's data into
//! `%output` lines at arbitrary byte positions, so a UTF-8 character can start on one line and
//! end on the next. Payloads therefore stay `Vec<u8>` here and everywhere after: decoding is
//! the terminal model's job, once the bytes of consecutive lines are joined.
//!
//! This module owns only that decoding. It never allocates more than the output it returns,
//! never fails, and never panics: input that tmux does not produce (a lone `\`, a short or
//! non-octal escape, `\400` and above) is kept literally rather than guessed at.

/// Decodes one `%output` payload (the bytes after `%output %P `, without the line end).
pub fn unescape_output(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    unescape_output_into(src, &mut out);
    out
}

/// Like [`unescape_output`], appending to `out` (for callers that reuse a buffer).
pub fn unescape_output_into(src: &[u8], out: &mut Vec<u8>) {
    out.reserve(src.len());
    let mut rest = src;
    while let Some(at) = find_byte(rest, b'\\') {
        out.extend_from_slice(&rest[..at]);
        match rest.get(at + 1..at + 4).and_then(octal_byte) {
            Some(byte) => {
                out.push(byte);
                rest = &rest[at + 4..];
            }
            None => {
                // Not an escape tmux writes: keep the backslash as it is.
                out.push(b'\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.extend_from_slice(rest);
}

/// `ooo` (exactly three octal digits, at most `377`) as the byte it stands for.
fn octal_byte(digits: &[u8]) -> Option<u8> {
    let [a, b, c] = *digits else { return None };
    let digit = |d: u8| (b'0'..=b'7').contains(&d).then(|| d - b'0');
    let (a, b, c) = (digit(a)?, digit(b)?, digit(c)?);
    // a <= 3 keeps the value within a byte: \400 and above are not escapes.
    (a <= 3).then_some((a << 6) | (b << 3) | c)
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Position of the first `needle` in `hay`: a portable word-at-a-time scan (eight bytes per
/// step), several times faster than a byte loop on the long runs found in pane output.
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    let pattern = LO.wrapping_mul(u64::from(needle));
    let mut chunks = hay.chunks_exact(16);
    let mut base = 0;
    for chunk in &mut chunks {
        let (lo, hi) = chunk.split_at(8);
        let a = word(lo) ^ pattern;
        let b = word(hi) ^ pattern;
        // A byte of `x` is zero where the needle is; the classic "has a zero byte" test. Its
        // lowest set bit always marks a true zero byte (false positives only sit above one).
        let za = a.wrapping_sub(LO) & !a & HI;
        let zb = b.wrapping_sub(LO) & !b & HI;
        if za | zb != 0 {
            let off = if za != 0 {
                za.trailing_zeros() / 8
            } else {
                8 + zb.trailing_zeros() / 8
            };
            return Some(base + off as usize);
        }
        base += 16;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|p| base + p)
}

#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_what_tmux_escapes() {
        assert_eq!(unescape_output(b"a\\033[1mb\\015\\012"), b"a\x1b[1mb\r\n");
        assert_eq!(unescape_output(b"bs:\\134 tab:\\011"), b"bs:\\ tab:\t");
        assert_eq!(
            unescape_output(b"\\000\\037\\177\\377"),
            [0, 0x1f, 0x7f, 0xff]
        );
        assert_eq!(unescape_output(b""), b"");
    }

    #[test]
    fn raw_high_bytes_and_invalid_utf8_pass_through() {
        // From attach-3.3a.ctl: "h\351llo" printed by the pane arrives as a raw 0xE9 byte.
        assert_eq!(unescape_output(b"h\xe9llo"), b"h\xe9llo");
        // Half a character (the other half comes on the next %output line).
        assert_eq!(unescape_output(b"caf\xc3"), b"caf\xc3");
        assert_eq!(unescape_output("€ 😀".as_bytes()), "€ 😀".as_bytes());
    }

    #[test]
    fn malformed_escapes_stay_literal() {
        assert_eq!(unescape_output(b"\\"), b"\\");
        assert_eq!(unescape_output(b"x\\0"), b"x\\0");
        assert_eq!(unescape_output(b"x\\01"), b"x\\01");
        assert_eq!(unescape_output(b"\\08a"), b"\\08a");
        assert_eq!(unescape_output(b"\\400"), b"\\400");
        assert_eq!(unescape_output(b"\\777x"), b"\\777x");
        assert_eq!(unescape_output(b"\\\\134"), b"\\\\");
        assert_eq!(unescape_output(b"\\x1b"), b"\\x1b");
    }

    #[test]
    fn into_appends() {
        let mut out = b"keep:".to_vec();
        unescape_output_into(b"\\033x", &mut out);
        assert_eq!(out, b"keep:\x1bx");
    }

    /// What tmux does to pane bytes (control_append_data).
    fn tmux_escape(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in data {
            if b < b' ' || b == b'\\' {
                out.extend_from_slice(format!("\\{b:03o}").as_bytes());
            } else {
                out.push(b);
            }
        }
        out
    }

    proptest! {
        #[test]
        fn round_trips_tmux_escaping(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(unescape_output(&tmux_escape(&data)), data);
        }

        #[test]
        fn never_panics_and_never_grows(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert!(unescape_output(&data).len() <= data.len());
        }

        #[test]
        fn find_byte_agrees_with_position(
            data in proptest::collection::vec(prop_oneof![Just(b'\\'), Just(b'\n'), any::<u8>()], 0..100),
            needle in prop_oneof![Just(b'\\'), Just(b'\n'), any::<u8>()],
        ) {
            prop_assert_eq!(find_byte(&data, needle), data.iter().position(|&b| b == needle));
        }
    }
}
