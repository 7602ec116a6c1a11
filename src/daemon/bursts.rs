//! Block markers in the raw output of a pane, before the screen model has drawn it.
//!
//! The daemon looks at a pane once per batch of output. An agent that draws a block and erases
//! it within that batch (a full-screen redraw, the alternate screen) would leave nothing to
//! look at. So the output is searched for markers on the way in: start markers are counted (a
//! block that came and went is reported, not silently lost), and the output is cut right after
//! each end marker so that the screen can be looked at while the whole block is on it (at
//! once: a block never waits for the pacing of a streaming pane).

use std::collections::{HashMap, VecDeque};
use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::detect::blocks::{
    MESSAGE_END, REQUEST_END, REQUEST_START, RESPONSE_END, RESPONSE_START,
};
use crate::tmux::client::ClientEvent;
use crate::tmux::control::Event as T;
use crate::tmux::PaneId;

/// At most this many extra looks per chunk of output (hostile output full of end markers
/// costs a bounded amount of work; blocks beyond it are seen as the screen shows them).
pub const MAX_CUTS: usize = 4;

/// The markers that start a block (a message's start goes on with its recipient).
const STARTS: [&[u8]; 3] = [
    REQUEST_START.as_bytes(),
    RESPONSE_START.as_bytes(),
    b"<<MESSAGE ",
];
/// The markers that end a block.
const ENDS: [&[u8]; 3] = [
    REQUEST_END.as_bytes(),
    RESPONSE_END.as_bytes(),
    MESSAGE_END.as_bytes(),
];

/// Start markers in a chunk of pane output (a marker cut between two chunks is not counted).
pub fn count_starts(data: &[u8]) -> usize {
    if !has_marker(data) {
        return 0;
    }
    start_finders()
        .iter()
        .map(|f| f.find_iter(data).count())
        .sum()
}

/// How many blocks per pane are remembered as already drawn.
const REMEMBERED: usize = 64;
/// The bytes before an end marker that stand for a block whose start the pane's output did not
/// show (the daemon attached in the middle of it, or the start marker was cut between chunks).
const TAIL: usize = 64;

/// The blocks each pane drew lately, by a hash of their raw bytes: a TUI that repaints its
/// screen prints the same block again and again, and a repaint needs no look of its own (the
/// pane's next look sees it, as any other output).
#[derive(Debug, Default)]
pub struct Drawn {
    panes: HashMap<PaneId, Track>,
}

#[derive(Debug, Default)]
struct Track {
    /// Hashes of the blocks drawn lately, oldest first.
    recent: VecDeque<u64>,
    /// The last bytes the pane printed: tmux can cut a marker in two.
    tail: Vec<u8>,
    /// The hash of the bytes since the last start marker, while its block is open. A block's
    /// hash is that of its bytes from start marker to end marker, however tmux cut them into
    /// chunks (a repaint spans chunks at different places each time).
    open: Option<u64>,
}

/// 64-bit FNV-1a: a hash that can be carried from one chunk to the next.
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The longest marker.
fn longest_marker() -> usize {
    ENDS.iter()
        .chain(STARTS.iter())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

/// Markers that began in `tail` (the previous chunk's end) and end in `data`: where each
/// began in `tail` and where it ends in `data`.
fn across(tail: &[u8], data: &[u8], markers: &[Finder<'static>]) -> Vec<(usize, usize)> {
    // A marker that began in the tail has its `<` there (most chunks end without one).
    if data.is_empty() || memchr::memchr(b'<', tail).is_none() {
        return Vec::new();
    }
    let head = &data[..data.len().min(longest_marker())];
    let joined = [tail, head].concat();
    markers
        .iter()
        .flat_map(|m| {
            let len = m.needle().len();
            m.find_iter(&joined)
                .filter(|at| *at < tail.len() && at + len > tail.len())
                .map(|at| (at, at + len - tail.len()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A marker in one chunk, in the order the pane printed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mark {
    /// An end marker, by the offset just after it.
    End(usize),
    /// A start marker, by its offset (0 for one that began in the previous chunk).
    Start(usize),
}

impl Mark {
    fn at(self) -> usize {
        match self {
            Mark::End(at) | Mark::Start(at) => at,
        }
    }
}

impl Drawn {
    /// The pane of an output event and where to cut it: after each end marker of a block this
    /// pane did not draw lately.
    pub fn cuts_of(&mut self, ev: &ClientEvent) -> Option<(PaneId, Vec<usize>)> {
        let (pane, data) = match ev {
            ClientEvent::Tmux(T::Output { pane, data } | T::ExtendedOutput { pane, data, .. }) => {
                (*pane, data)
            }
            _ => return None,
        };
        let track = self.panes.entry(pane).or_default();
        let mut marks = Vec::new();
        let mut open_from_tail = None;
        marks.extend(
            across(&track.tail, data, end_finders())
                .into_iter()
                .map(|(_, end)| Mark::End(end)),
        );
        if let Some((began, _)) = across(&track.tail, data, start_finders()).last() {
            open_from_tail = Some(track.tail[*began..].to_vec());
            marks.push(Mark::Start(0));
        }
        if has_marker(data) {
            for m in end_finders() {
                let len = m.needle().len();
                marks.extend(m.find_iter(data).map(|at| Mark::End(at + len)));
            }
            for m in start_finders() {
                marks.extend(m.find_iter(data).map(Mark::Start));
            }
        }
        if marks.is_empty() {
            keep_tail(&mut track.tail, data);
            if let Some(h) = track.open {
                track.open = Some(fnv(h, data));
            }
            return None;
        }
        // By place; an end before a start at the same place (the start follows it).
        marks.sort_unstable_by_key(|m| (m.at(), matches!(m, Mark::Start(_))));
        marks.dedup();
        let mut fresh = Vec::new();
        let mut from = 0;
        for mark in marks {
            match mark {
                Mark::Start(at) => {
                    let h = open_from_tail
                        .take()
                        .map_or(FNV_START, |t| fnv(FNV_START, &t));
                    track.open = Some(h);
                    from = at;
                }
                Mark::End(end) => {
                    let key = match track.open.take() {
                        Some(h) => fnv(h, &data[from..end]),
                        // No start: the bytes just before the end stand for the block (a TUI
                        // repainting the rows around the end marker alone), wherever the
                        // chunk began.
                        None => {
                            let short = TAIL.saturating_sub(end);
                            let before = &track.tail[track.tail.len().saturating_sub(short)..];
                            fnv(fnv(FNV_START, before), &data[end.saturating_sub(TAIL)..end])
                        }
                    };
                    from = end;
                    if !track.recent.contains(&key) {
                        if track.recent.len() == REMEMBERED {
                            track.recent.pop_front();
                        }
                        track.recent.push_back(key);
                        if fresh.len() < MAX_CUTS {
                            fresh.push(end);
                        }
                    }
                }
            }
        }
        if let Some(h) = track.open {
            track.open = Some(fnv(h, &data[from..]));
        }
        keep_tail(&mut track.tail, data);
        (!fresh.is_empty()).then_some((pane, fresh))
    }

    pub fn forget(&mut self, pane: PaneId) {
        self.panes.remove(&pane);
    }
}

/// Keeps the pane's last bytes: enough for the longest marker less one byte, and for the
/// [`TAIL`] that stands for a block without a start.
fn keep_tail(tail: &mut Vec<u8>, data: &[u8]) {
    let keep = (longest_marker() - 1).max(TAIL);
    if data.len() >= keep {
        tail.clear();
        tail.extend_from_slice(&data[data.len() - keep..]);
    } else {
        tail.extend_from_slice(data);
        let extra = tail.len().saturating_sub(keep);
        tail.drain(..extra);
    }
}

/// An output event cut into consecutive events at `cuts` (offsets from [`Drawn::cuts_of`]), each
/// saying whether it ends with an end marker.
pub fn split(ev: ClientEvent, cuts: &[usize]) -> Vec<(ClientEvent, bool)> {
    let rebuild = |ev: &ClientEvent, data: Vec<u8>| match ev {
        ClientEvent::Tmux(T::ExtendedOutput { pane, age_ms, .. }) => {
            ClientEvent::Tmux(T::ExtendedOutput {
                pane: *pane,
                age_ms: *age_ms,
                data,
            })
        }
        ClientEvent::Tmux(T::Output { pane, .. }) => {
            ClientEvent::Tmux(T::Output { pane: *pane, data })
        }
        _ => unreachable!("only output events are cut"),
    };
    let data = match &ev {
        ClientEvent::Tmux(T::Output { data, .. } | T::ExtendedOutput { data, .. }) => data,
        _ => return vec![(ev, false)],
    };
    let mut parts = Vec::with_capacity(cuts.len() + 1);
    let mut from = 0;
    for &at in cuts.iter().filter(|&&at| at > 0 && at <= data.len()) {
        if at > from {
            parts.push((rebuild(&ev, data[from..at].to_vec()), true));
            from = at;
        }
    }
    if from < data.len() || parts.is_empty() {
        parts.push((rebuild(&ev, data[from..].to_vec()), false));
    }
    parts
}

fn has_marker(data: &[u8]) -> bool {
    static OPEN: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"<<"));
    OPEN.find(data).is_some()
}

/// Searchers for the [`STARTS`] markers, built once (building one costs more than searching a
/// chunk of output).
fn start_finders() -> &'static [Finder<'static>] {
    static FINDERS: LazyLock<Vec<Finder<'static>>> =
        LazyLock::new(|| STARTS.iter().map(Finder::new).collect());
    &FINDERS
}

/// Searchers for the [`ENDS`] markers (see [`start_finders`]).
fn end_finders() -> &'static [Finder<'static>] {
    static FINDERS: LazyLock<Vec<Finder<'static>>> =
        LazyLock::new(|| ENDS.iter().map(Finder::new).collect());
    &FINDERS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(data: &[u8]) -> ClientEvent {
        ClientEvent::Tmux(T::Output {
            pane: PaneId(3),
            data: data.to_vec(),
        })
    }

    fn data_of(ev: &ClientEvent) -> &[u8] {
        match ev {
            ClientEvent::Tmux(T::Output { data, .. }) => data,
            _ => panic!("not output"),
        }
    }

    #[test]
    fn a_block_drawn_and_erased_in_one_chunk_is_cut_after_its_end() {
        let raw = b"\x1b[?1049h<<CONTROLLER_REQUEST>>\r\nWhich port?\r\n<<CONTROLLER_REQUEST_END>>\r\n\x1b[2J\x1b[H\x1b[?1049l";
        assert_eq!(count_starts(raw), 1);
        let (pane, cuts) = Drawn::default().cuts_of(&output(raw)).expect("cut");
        assert_eq!(pane, PaneId(3));
        let parts = split(output(raw), &cuts);
        assert_eq!(parts.len(), 2);
        assert!(data_of(&parts[0].0).ends_with(b"<<CONTROLLER_REQUEST_END>>"));
        assert!(parts[0].1);
        assert_eq!(data_of(&parts[1].0), b"\r\n\x1b[2J\x1b[H\x1b[?1049l");
        assert!(!parts[1].1);
        let joined: Vec<u8> = parts.iter().flat_map(|p| data_of(&p.0).to_vec()).collect();
        assert_eq!(joined, raw);
    }

    #[test]
    fn a_chunk_that_ends_with_the_marker_is_one_part_that_ends_at_it() {
        let raw = b"<<MESSAGE to=a1>>\r\nhi\r\n<<MESSAGE_END>>";
        let (_, cuts) = Drawn::default().cuts_of(&output(raw)).expect("cut");
        let parts = split(output(raw), &cuts);
        assert_eq!(parts.len(), 1);
        assert!(parts[0].1);
        assert!(Drawn::default()
            .cuts_of(&output(b"plain output << shifted"))
            .is_none());
        assert!(Drawn::default().cuts_of(&output(b"")).is_none());
    }

    proptest::proptest! {
        #[test]
        fn any_output_cut_and_rejoined_is_the_same_bytes(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::num::u8::ANY, 0..40),
                    proptest::sample::select(vec![
                        REQUEST_END.as_bytes().to_vec(),
                        MESSAGE_END.as_bytes().to_vec(),
                        b"<<".to_vec(),
                        REQUEST_START.as_bytes().to_vec(),
                    ]),
                ],
                0..20,
            )
        ) {
            let raw: Vec<u8> = parts.concat();
            let cuts = Drawn::default()
                .cuts_of(&output(&raw))
                .map(|(_, cuts)| cuts)
                .unwrap_or_default();
            proptest::prop_assert!(cuts.len() <= MAX_CUTS);
            proptest::prop_assert!(cuts.windows(2).all(|w| w[0] < w[1]));
            let split = split(output(&raw), &cuts);
            let joined: Vec<u8> = split.iter().flat_map(|p| data_of(&p.0).to_vec()).collect();
            proptest::prop_assert_eq!(joined, raw);
        }
    }

    #[test]
    fn a_block_repainted_needs_no_look_of_its_own_and_a_new_one_does() {
        let mut d = Drawn::default();
        let frame =
            b"\x1b[H<<CONTROLLER_REQUEST>>\r\nWhich port?\r\n<<CONTROLLER_REQUEST_END>>\r\n";
        assert!(d.cuts_of(&output(frame)).is_some());
        for _ in 0..10 {
            assert!(d.cuts_of(&output(frame)).is_none());
        }
        let other =
            b"\x1b[H<<CONTROLLER_REQUEST>>\r\nWhich host?\r\n<<CONTROLLER_REQUEST_END>>\r\n";
        assert!(d.cuts_of(&output(other)).is_some());
        // Another pane drawing the same block is news there.
        let elsewhere = ClientEvent::Tmux(T::Output {
            pane: PaneId(4),
            data: frame.to_vec(),
        });
        assert!(d.cuts_of(&elsewhere).is_some());
        d.forget(PaneId(3));
        assert!(d.cuts_of(&output(frame)).is_some());
    }

    #[test]
    fn a_block_repainted_in_chunks_cut_elsewhere_is_still_the_same_block() {
        let frame: &[u8] = b"\x1b[H<<CONTROLLER_REQUEST>>\r\nWhich port, 8080 or 9090?\r\n<<CONTROLLER_REQUEST_END>>\r\n";
        let mut d = Drawn::default();
        let mut looks = 0;
        // Every way of cutting the frame in two, and byte by byte: one look, the first time.
        for cut in 0..=frame.len() {
            for part in [&frame[..cut], &frame[cut..]] {
                looks += usize::from(d.cuts_of(&output(part)).is_some());
            }
        }
        for b in frame {
            looks += usize::from(d.cuts_of(&output(&[*b])).is_some());
        }
        assert_eq!(looks, 1);
        // The same block with one character changed is news, however it is cut.
        let changed: Vec<u8> = frame
            .iter()
            .map(|&b| if b == b'8' { b'7' } else { b })
            .collect();
        let (head, rest) = changed.split_at(30);
        assert!(d.cuts_of(&output(head)).is_none());
        assert!(d.cuts_of(&output(rest)).is_some());
    }

    /// The captured agent screens (TUIs repainting their blocks, some rows around an end
    /// marker alone), replayed four times in chunks cut at random places: looks on the first
    /// pass only.
    #[test]
    fn real_agent_screens_replayed_are_looked_at_on_their_first_pass_only() {
        let raw = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/control/agents-3.3a.ctl"
        ))
        .expect("the fixture");
        let mut data = Vec::new();
        for ev in crate::tmux::control::Parser::new().feed(&raw) {
            if let T::Output { data: d, .. } | T::ExtendedOutput { data: d, .. } = ev {
                data.extend(d);
            }
        }
        for (min, spread) in [(1, 300), (200, 3000)] {
            let mut d = Drawn::default();
            let mut seed = 12345u64;
            let mut fresh = Vec::new();
            for _ in 0..4 {
                let mut looks = 0;
                let mut i = 0;
                while i < data.len() {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let end = (i + min + (seed >> 33) as usize % spread).min(data.len());
                    looks += d
                        .cuts_of(&output(&data[i..end]))
                        .map_or(0, |(_, c)| c.len());
                    i = end;
                }
                fresh.push(looks);
            }
            assert!(fresh[0] > 0, "{fresh:?}");
            assert_eq!(fresh[1..], [0, 0, 0], "chunks of {min}..{}", min + spread);
        }
    }

    #[test]
    fn an_end_marker_cut_between_two_chunks_is_cut_after_where_it_ends() {
        let mut d = Drawn::default();
        let first = b"<<CONTROLLER_REQUEST>>\r\nWhich port?\r\n<<CONTROLLER_REQ";
        assert!(d.cuts_of(&output(first)).is_none());
        let second = b"UEST_END>>\r\n\x1b[2J";
        let (_, cuts) = d.cuts_of(&output(second)).expect("cut");
        assert_eq!(cuts, vec![b"UEST_END>>".len()]);
        // Byte by byte, too.
        let mut d = Drawn::default();
        let all = b"x<<MESSAGE to=a1>>\r\nhi\r\n<<MESSAGE_END>>\r\n";
        let mut found = Vec::new();
        for (i, b) in all.iter().enumerate() {
            if let Some((_, cuts)) = d.cuts_of(&output(&[*b])) {
                found.push((i, cuts));
            }
        }
        assert_eq!(found, vec![(all.len() - 3, vec![1])]);
    }

    #[test]
    fn hostile_output_full_of_end_markers_costs_a_bounded_number_of_looks() {
        let raw: String = (0..1000)
            .map(|i| format!("<<CONTROLLER_RESPONSE>>{i}<<CONTROLLER_RESPONSE_END>>x"))
            .collect();
        let (_, cuts) = Drawn::default()
            .cuts_of(&output(raw.as_bytes()))
            .expect("cut");
        assert_eq!(cuts.len(), MAX_CUTS);
        let parts = split(output(raw.as_bytes()), &cuts);
        assert_eq!(parts.len(), MAX_CUTS + 1);
        let joined: Vec<u8> = parts.iter().flat_map(|p| data_of(&p.0).to_vec()).collect();
        assert_eq!(joined, raw.as_bytes());
    }
}
