//! Block markers in the raw output of a pane, before the screen model has drawn it.
//!
//! The daemon looks at a pane once per batch of output. An agent that draws a block and erases
//! it within that batch (a full-screen redraw, the alternate screen) would leave nothing to
//! look at. So the output is searched for markers on the way in: start markers are counted (a
//! block that came and went is reported, not silently lost), and the output is cut right after
//! each end marker so that the screen can be looked at while the whole block is on it (at
//! once: a block never waits for the pacing of a streaming pane).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use crate::detect::blocks::{
    MESSAGE_END, REQUEST_END, REQUEST_START, RESPONSE_END, RESPONSE_START,
};
use crate::tmux::client::ClientEvent;
use crate::tmux::control::Event as T;
use crate::tmux::PaneId;

/// At most this many extra looks per chunk of output (hostile output full of end markers
/// costs a bounded amount of work; blocks beyond it are seen as the screen shows them).
pub const MAX_CUTS: usize = 4;

/// Start markers in a chunk of pane output (a marker cut between two chunks is not counted).
pub fn count_starts(data: &[u8]) -> usize {
    let starts: [&[u8]; 3] = [
        REQUEST_START.as_bytes(),
        RESPONSE_START.as_bytes(),
        b"<<MESSAGE ",
    ];
    if !has_marker(data) {
        return 0;
    }
    starts.iter().map(|m| occurrences(data, m).count()).sum()
}

/// Offsets just after each end marker in `data`, in order, at most [`MAX_CUTS`].
pub fn end_cuts(data: &[u8]) -> Vec<usize> {
    if !has_marker(data) {
        return Vec::new();
    }
    let mut cuts: Vec<usize> = [REQUEST_END, RESPONSE_END, MESSAGE_END]
        .iter()
        .flat_map(|m| occurrences(data, m.as_bytes()).map(move |at| at + m.len()))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts.truncate(MAX_CUTS);
    cuts
}

/// How many blocks per pane are remembered as already drawn.
const REMEMBERED: usize = 64;
/// The bytes before an end marker that stand for a block whose start came in an earlier chunk.
const TAIL: usize = 64;

/// The blocks each pane drew lately, by a hash of their raw bytes: a TUI that repaints its
/// screen prints the same block again and again, and a repaint needs no look of its own (the
/// pane's next look sees it, as any other output).
#[derive(Debug, Default)]
pub struct Drawn {
    recent: HashMap<PaneId, VecDeque<u64>>,
    /// The last bytes of each pane's previous chunk: tmux can cut an end marker in two.
    tails: HashMap<PaneId, Vec<u8>>,
}

/// The longest end marker.
fn longest_end() -> usize {
    [REQUEST_END, RESPONSE_END, MESSAGE_END]
        .iter()
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

/// Offsets in `data` just after an end marker that began in `tail` (the previous chunk's end).
fn cuts_across(tail: &[u8], data: &[u8]) -> Vec<usize> {
    // A marker that began in the tail has its `<` there (most chunks end without one).
    if data.is_empty() || !tail.contains(&b'<') {
        return Vec::new();
    }
    let head = &data[..data.len().min(longest_end())];
    let joined = [tail, head].concat();
    [REQUEST_END, RESPONSE_END, MESSAGE_END]
        .iter()
        .flat_map(|m| {
            occurrences(&joined, m.as_bytes())
                .filter(|at| *at < tail.len() && at + m.len() > tail.len())
                .map(|at| at + m.len() - tail.len())
                .collect::<Vec<_>>()
        })
        .collect()
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
        let tail = self.tails.entry(pane).or_default();
        let mut cuts = cuts_across(tail, data);
        let keep = longest_end() - 1;
        if data.len() >= keep {
            tail.clear();
            tail.extend_from_slice(&data[data.len() - keep..]);
        } else {
            tail.extend_from_slice(data);
            let extra = tail.len().saturating_sub(keep);
            tail.drain(..extra);
        }
        cuts.extend(end_cuts(data));
        cuts.sort_unstable();
        cuts.dedup();
        cuts.truncate(MAX_CUTS);
        if cuts.is_empty() {
            return None;
        }
        let recent = self.recent.entry(pane).or_default();
        let mut fresh = Vec::new();
        for &end in &cuts {
            // The block's bytes: from the last start marker before its end (or, when the block
            // began in an earlier chunk, its last bytes, so that where a chunk happens to start
            // matters little).
            let from = last_start_before(data, end).unwrap_or(end.saturating_sub(TAIL));
            let mut h = std::collections::hash_map::DefaultHasher::new();
            data[from..end].hash(&mut h);
            let key = h.finish();
            if !recent.contains(&key) {
                if recent.len() == REMEMBERED {
                    recent.pop_front();
                }
                recent.push_back(key);
                fresh.push(end);
            }
        }
        (!fresh.is_empty()).then_some((pane, fresh))
    }

    pub fn forget(&mut self, pane: PaneId) {
        self.recent.remove(&pane);
        self.tails.remove(&pane);
    }
}

fn last_start_before(data: &[u8], end: usize) -> Option<usize> {
    [
        REQUEST_START.as_bytes(),
        RESPONSE_START.as_bytes(),
        b"<<MESSAGE ",
    ]
    .iter()
    .filter_map(|m| occurrences(&data[..end], m).last())
    .max()
}

/// An output event cut into consecutive events at `cuts` (offsets from [`end_cuts`]), each
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
    data.windows(2).any(|w| w == b"<<")
}

fn occurrences<'a>(data: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    data.windows(needle.len())
        .enumerate()
        .filter(move |(_, w)| *w == needle)
        .map(|(i, _)| i)
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
        assert!(end_cuts(b"").is_empty());
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
            let cuts = end_cuts(&raw);
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
        let raw = "<<CONTROLLER_RESPONSE_END>>x".repeat(1000);
        let cuts = end_cuts(raw.as_bytes());
        assert_eq!(cuts.len(), MAX_CUTS);
        let parts = split(output(raw.as_bytes()), &cuts);
        assert_eq!(parts.len(), MAX_CUTS + 1);
        let joined: Vec<u8> = parts.iter().flat_map(|p| data_of(&p.0).to_vec()).collect();
        assert_eq!(joined, raw.as_bytes());
    }
}
