//! Acting on each block exactly once: which of the blocks on a pane's screen are new.
//!
//! A block stays on screen for as long as the agent's UI keeps it there, and TUIs redraw it:
//! full repaints (that may clear the screen for a moment), scrolling, re-wrapping on resize.
//! [`BlockTracker`] turns the blocks seen on successive screens of one pane into the blocks that
//! must be acted on, once each. It owns that memory and nothing else: it does no I/O, reads no
//! clock (time comes in as an argument, so tests are deterministic), and its memory is bounded.
//!
//! # Semantics
//!
//! - **Identity.** A block is its kind plus its body with all whitespace removed. That is
//!   [`normalize`](super::blocks::normalize) made immune to the one thing folding cannot undo: a
//!   terminal that wraps a word in two (`proc` / `eed`), besides re-wrapping and indentation.
//! - **Counting.** Per identity the tracker holds *records*, one per copy it has acted on (or was
//!   told about). An observation with `v` visible copies and `a` records matches `min(v, a)`
//!   records (refreshing them) and fires the `v − a` lowest copies when `v > a`. So two
//!   identical blocks on one screen fire twice, and a repaint fires nothing.
//! - **Retiring.** A record that no copy matched is *missing* from that observation on. It retires
//!   (and the same text on screen later fires again) when it has been missing for `grace`
//!   (measured from the first observation that lacked it; the daemon observes on every screen
//!   change, so no observation means an unchanged screen), or at once when the pane turned busy
//!   since the record was last matched (`turn` moved on): the agent worked after the block, so a
//!   copy that shows up again is a new one. A preloaded record is subject only to `grace` until it
//!   is first matched. A repaint that clears the screen for less than `grace` in the same turn
//!   changes nothing; a question asked again after its answer fires again, whether the old copy
//!   is still on screen (then `v = 2`) or gone.
//! - **Typed text.** A block whose whole text (markers included, whitespace removed) lies inside
//!   something the bridge typed into this pane ([`BlockTracker::typed`]) never fires and is not
//!   counted: the prompt that explains the format, an injected answer, a wrapper with example
//!   markers, and the agent's echo of them (`› …`). The last [`TYPED_KEPT`] texts are kept.
//!
//! # Known limits
//!
//! - Copies are told apart by count, not position. When, in one screen change, the old copy of
//!   a repeated question leaves the screen and the new copy arrives, and the old copy had been
//!   seen since the pane last turned busy, the new copy is taken for the old one and does not
//!   fire. Screens of alternate-screen agents that scroll the old copy off exactly as the new one
//!   completes are the case; on Gemini (scrollback kept) and any screen with the old copy still
//!   visible it does not happen.
//! - Typed text is matched by content, not by where it shows: when the bridge's injected answer
//!   itself holds a block (an instruction to print `<<MESSAGE to=all>>…`) and the agent prints
//!   exactly that block, it is taken for the echo and does not fire.
//! - A record of a block the bridge never saw go away stays until it does; at most
//!   [`MAX_RECORDS`] records are kept (the oldest-seen go first).

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use super::blocks::{block_text, Block, BlockKind};

/// How long a block may be missing from the screen before the same text counts as new.
pub const DEFAULT_GRACE: Duration = Duration::from_millis(1500);
/// How many typed texts are kept per tracker.
pub const TYPED_KEPT: usize = 64;
/// Bytes kept of one typed text (a longer text is kept truncated).
pub const TYPED_MAX_BYTES: usize = 256 * 1024;
/// How many records a tracker keeps at most.
pub const MAX_RECORDS: usize = 1024;

/// Which blocks of a pane are new. One per pane.
#[derive(Debug)]
pub struct BlockTracker {
    grace: Duration,
    records: HashMap<Key, Vec<Record>>,
    typed: VecDeque<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    kind: BlockKind,
    digest: u64,
}

#[derive(Debug, Clone)]
struct Record {
    /// The last observation a copy matched this record (or the preload time).
    last_seen: Instant,
    /// The first observation, since `last_seen`, that no copy matched it.
    missing_since: Option<Instant>,
    /// The turn of `last_seen`; `None` for a preloaded record not matched yet.
    turn: Option<u64>,
}

impl Default for BlockTracker {
    fn default() -> Self {
        BlockTracker::new(DEFAULT_GRACE)
    }
}

impl BlockTracker {
    /// A tracker that lets a block be missing for `grace` before its text counts as new
    /// ([`DEFAULT_GRACE`] is 1.5 s).
    pub fn new(grace: Duration) -> Self {
        BlockTracker {
            grace,
            records: HashMap::new(),
            typed: VecDeque::new(),
        }
    }

    /// The bridge typed this into the pane: blocks whose text lies inside it never fire.
    pub fn typed(&mut self, text: &str) {
        let mut squeezed = squeeze(text);
        if squeezed.is_empty() {
            return;
        }
        if squeezed.len() > TYPED_MAX_BYTES {
            let mut cut = TYPED_MAX_BYTES;
            while !squeezed.is_char_boundary(cut) {
                cut -= 1;
            }
            squeezed.truncate(cut);
        }
        if self.typed.len() >= TYPED_KEPT {
            self.typed.pop_front();
        }
        self.typed.push_back(squeezed);
    }

    /// Already handled before a restart (from the inbox or the archive): treated as seen just
    /// now. Each call stands for one copy.
    pub fn preload(&mut self, kind: &BlockKind, body: &str, now: Instant) {
        let key = key(kind, body);
        self.records.entry(key).or_default().push(Record {
            last_seen: now,
            missing_since: None,
            turn: None,
        });
        self.bound();
    }

    /// One observation of the pane: `blocks` are the complete blocks on screen now (visible rows
    /// plus whatever scrollback the caller includes), `turn` the counter the daemon bumps each
    /// time the pane turns busy. Returns the blocks that are new and must be acted on, top to
    /// bottom.
    pub fn observe(&mut self, blocks: &[Block], turn: u64, now: Instant) -> Vec<Block> {
        let grace = self.grace;
        // Missing for `grace` already: gone, whatever this screen shows.
        for recs in self.records.values_mut() {
            recs.retain(|r| {
                r.missing_since
                    .is_none_or(|m| now.saturating_duration_since(m) < grace)
            });
        }

        // Visible copies per identity, in screen order.
        let mut order: Vec<Key> = Vec::new();
        let mut copies: HashMap<Key, Vec<usize>> = HashMap::new();
        for (i, b) in blocks.iter().enumerate() {
            if self.is_typed(b) {
                continue;
            }
            let k = key(&b.kind, &b.body);
            let entry = copies.entry(k.clone()).or_default();
            if entry.is_empty() {
                order.push(k);
            }
            entry.push(i);
        }

        let mut fired: Vec<usize> = Vec::new();
        for k in &order {
            let idx = copies.get(k).map(Vec::as_slice).unwrap_or_default();
            let recs = self.records.entry(k.clone()).or_default();
            // Match the most alive records first: seen this turn, then most recently seen.
            recs.sort_by_key(|r| std::cmp::Reverse((r.turn == Some(turn), r.last_seen)));
            let matched = idx.len().min(recs.len());
            for r in recs.iter_mut().take(matched) {
                r.last_seen = now;
                r.missing_since = None;
                r.turn = Some(turn);
            }
            for &i in &idx[matched..] {
                recs.push(Record {
                    last_seen: now,
                    missing_since: None,
                    turn: Some(turn),
                });
                fired.push(i);
            }
        }

        // Records no copy matched: missing from now on; retired at a turn boundary.
        for (k, recs) in self.records.iter_mut() {
            let visible = copies.get(k).map_or(0, Vec::len);
            let mut rest: Vec<Record> = Vec::with_capacity(recs.len());
            for (n, mut r) in recs.drain(..).enumerate() {
                if n < visible {
                    rest.push(r);
                    continue;
                }
                let since = *r.missing_since.get_or_insert(now);
                let turned = r.turn.is_some_and(|t| t != turn);
                if !turned && now.saturating_duration_since(since) < grace {
                    rest.push(r);
                }
            }
            *recs = rest;
        }
        self.records.retain(|_, recs| !recs.is_empty());
        self.bound();

        fired.sort_unstable();
        fired.into_iter().map(|i| blocks[i].clone()).collect()
    }

    /// Records held (for tests and the status report).
    pub fn records(&self) -> usize {
        self.records.values().map(Vec::len).sum()
    }

    fn is_typed(&self, block: &Block) -> bool {
        if self.typed.is_empty() {
            return false;
        }
        let text = squeeze(&block_text(&block.kind, &block.body));
        self.typed.iter().any(|t| t.contains(&text))
    }

    /// Keeps at most `MAX_RECORDS` records: past that, drops the ones seen longest ago down to
    /// three quarters of it (so the sort below is paid once per `MAX_RECORDS / 4` new records).
    fn bound(&mut self) {
        let total = self.records();
        if total <= MAX_RECORDS {
            return;
        }
        let mut seen: Vec<Instant> = self
            .records
            .values()
            .flat_map(|recs| recs.iter().map(|r| r.last_seen))
            .collect();
        seen.sort_unstable();
        let mut excess = total - MAX_RECORDS * 3 / 4;
        let cutoff = seen[excess - 1];
        for recs in self.records.values_mut() {
            recs.retain(|r| {
                if excess > 0 && r.last_seen <= cutoff {
                    excess -= 1;
                    false
                } else {
                    true
                }
            });
        }
        self.records.retain(|_, recs| !recs.is_empty());
    }
}

/// The text with every whitespace character removed.
fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

fn key(kind: &BlockKind, body: &str) -> Key {
    let mut h = DefaultHasher::new();
    for c in body.chars().filter(|c| !c.is_whitespace()) {
        c.hash(&mut h);
    }
    Key {
        kind: kind.clone(),
        digest: h.finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::blocks::{find_blocks, Limits};
    use std::path::Path;

    fn req(body: &str) -> Block {
        Block {
            kind: BlockKind::Request,
            body: body.to_owned(),
            rows: 0..3,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn screen(text: &str) -> Vec<Block> {
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        find_blocks(&lines, &Limits::default()).blocks
    }

    fn fixture(name: &str) -> Vec<Block> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/blocks")
            .join(name);
        screen(&std::fs::read_to_string(path).unwrap())
    }

    #[test]
    fn same_block_observed_a_thousand_times_fires_once() {
        let mut t = BlockTracker::default();
        let t0 = Instant::now();
        let blocks = fixture("demo-codex-ask-3-idle-after.txt");
        assert_eq!(blocks.len(), 1);
        let mut fired = 0;
        for i in 0..1000 {
            fired += t.observe(&blocks, 1, t0 + ms(i * 100)).len();
        }
        assert_eq!(fired, 1);
        assert_eq!(t.records(), 1);
    }

    #[test]
    fn a_repaint_gap_shorter_than_grace_fires_once() {
        let mut t = BlockTracker::default();
        let t0 = Instant::now();
        let b = [req("Should I proceed?")];
        assert_eq!(t.observe(&b, 1, t0).len(), 1);
        // Cleared and redrawn, several screens in between.
        assert!(t.observe(&[], 1, t0 + ms(100)).is_empty());
        assert!(t.observe(&[], 1, t0 + ms(900)).is_empty());
        assert!(t.observe(&b, 1, t0 + ms(1500)).is_empty());
        // Missing for longer than grace: the same text is new.
        assert!(t.observe(&[], 1, t0 + ms(2000)).is_empty());
        assert_eq!(t.observe(&b, 1, t0 + ms(3600)).len(), 1);
    }

    #[test]
    fn a_long_unchanged_screen_is_not_a_gap() {
        // No observation for a minute means nothing changed: still the same block.
        let mut t = BlockTracker::default();
        let t0 = Instant::now();
        let b = [req("Q?")];
        assert_eq!(t.observe(&b, 1, t0).len(), 1);
        assert!(t.observe(&b, 1, t0 + Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn a_rewrapped_body_is_the_same_block() {
        let mut t = BlockTracker::default();
        let t0 = Instant::now();
        let wide = screen("• Sure.\n  <<CONTROLLER_REQUEST>>\n  Should I proceed with the migration of the\n  whole database?\n  <<CONTROLLER_REQUEST_END>>");
        let narrow = screen("• Sure.\n  <<CONTROLLER_REQUEST>>\n  Should I proceed with\n  the migration of the whole\n  data\nbase?\n  <<CONTROLLER_REQUEST_END>>");
        assert_ne!(wide[0].body, narrow[0].body);
        assert_eq!(t.observe(&wide, 1, t0).len(), 1);
        assert!(t.observe(&narrow, 1, t0 + ms(50)).is_empty());
        assert!(t.observe(&wide, 1, t0 + ms(100)).is_empty());
    }

    #[test]
    fn the_same_question_in_a_later_turn_fires_again_with_the_old_copy_on_screen() {
        let mut t = BlockTracker::default();
        let t0 = Instant::now();
        let one = fixture("demo-claude-ask-3-idle-after.txt");
        assert_eq!(t.observe(&one, 1, t0).len(), 1);
        // The answer goes in, the pane turns busy (turn 2), the old copy stays on screen.
        assert!(t.observe(&one, 2, t0 + ms(300)).is_empty());
        // The worker asks the very same thing again: two copies.
        let two = [one[0].clone(), one[0].clone()];
        let fired = t.observe(&two, 2, t0 + ms(600));
        assert_eq!(fired.len(), 1);
        assert!(t.observe(&two, 2, t0 + ms(700)).is_empty());
        assert_eq!(t.records(), 2);
    }

    #[test]
    fn the_same_question_in_a_later_turn_fires_again_with_the_old_copy_gone() {
        let mut t = BlockTracker::default();
        let t0 = Instant::now();
        let b = [req("Should I proceed?")];
        assert_eq!(t.observe(&b, 1, t0).len(), 1);
        // Turn 2: busy; the screen was cleared (Codex, Claude: alternate screen).
        assert!(t.observe(&[], 2, t0 + ms(100)).is_empty());
        // Quickly (within grace) the same question again.
        assert_eq!(t.observe(&b, 2, t0 + ms(400)).len(), 1);
        // Without a turn it would have been a repaint.
        let mut u = BlockTracker::default();
        assert_eq!(u.observe(&b, 1, t0).len(), 1);
        assert!(u.observe(&[], 1, t0 + ms(100)).is_empty());
        assert!(u.observe(&b, 1, t0 + ms(400)).is_empty());
    }

    #[test]
    fn a_repaint_during_the_next_turn_does_not_fire_again() {
        let mut t = BlockTracker::default();
        let t0 = Instant::now();
        let b = [req("Should I proceed?")];
        assert_eq!(t.observe(&b, 1, t0).len(), 1);
        assert!(t.observe(&b, 2, t0 + ms(100)).is_empty()); // busy, still on screen
        assert!(t.observe(&[], 2, t0 + ms(150)).is_empty()); // mid-repaint
        assert!(t.observe(&b, 2, t0 + ms(200)).is_empty());
    }

    #[test]
    fn two_identical_blocks_on_one_screen_fire_twice() {
        let mut t = BlockTracker::default();
        let t0 = Instant::now();
        let two = [req("Continue?"), req("Continue?")];
        assert_eq!(t.observe(&two, 1, t0).len(), 2);
        assert!(t.observe(&two, 1, t0 + ms(10)).is_empty());
        // One scrolls off, and stays off for grace: a third copy later is new.
        assert!(t.observe(&two[..1], 1, t0 + ms(20)).is_empty());
        assert!(t.observe(&two[..1], 1, t0 + ms(2000)).is_empty());
        assert_eq!(t.observe(&two, 1, t0 + ms(2100)).len(), 1);
    }

    #[test]
    fn fired_blocks_come_in_screen_order_and_new_copies_are_the_lowest() {
        let mut t = BlockTracker::default();
        let t0 = Instant::now();
        let mk = |body: &str, row: usize| Block {
            kind: BlockKind::Request,
            body: body.into(),
            rows: row..row + 3,
        };
        assert_eq!(t.observe(&[mk("A", 0)], 1, t0).len(), 1);
        let screen = [mk("B", 0), mk("A", 3), mk("A", 6), mk("C", 9)];
        let fired = t.observe(&screen, 2, t0 + ms(10));
        let rows: Vec<usize> = fired.iter().map(|b| b.rows.start).collect();
        assert_eq!(rows, [0, 6, 9]);
    }

    #[test]
    fn kinds_and_addressees_are_part_of_the_identity() {
        let mut t = BlockTracker::default();
        let t0 = Instant::now();
        let mk = |kind: BlockKind| Block {
            kind,
            body: "hi".into(),
            rows: 0..3,
        };
        let blocks = [
            mk(BlockKind::Request),
            mk(BlockKind::Response),
            mk(BlockKind::Message { to: "a".into() }),
            mk(BlockKind::Message { to: "all".into() }),
        ];
        assert_eq!(t.observe(&blocks, 1, t0).len(), 4);
    }

    #[test]
    fn blocks_inside_typed_text_never_fire() {
        let mut t = BlockTracker::default();
        let t0 = Instant::now();
        // The controller prompt wrapper with example markers, and an injected answer.
        t.typed(
            "You work for a controller. When you need a decision, print\n\
             <<CONTROLLER_REQUEST>>\n(your question)\n<<CONTROLLER_REQUEST_END>>\n\
             and wait for the answer.",
        );
        t.typed("<<CONTROLLER_RESPONSE>>\nWORKER INSTRUCTIONS:\nRun the tests first.\n<<CONTROLLER_RESPONSE_END>>");
        // The agent echoes both as `› …`, and asks a real question in between.
        let blocks = fixture("codex-echo.txt");
        assert_eq!(blocks.len(), 3);
        let fired = t.observe(&blocks, 1, t0);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].body, "Should I proceed?");
        for i in 1..50 {
            assert!(t.observe(&blocks, 1 + i / 10, t0 + ms(i * 700)).is_empty());
        }
        // The same example printed by the agent itself is still the bridge's text.
        assert!(t
            .observe(
                &screen(
                    "● <<CONTROLLER_REQUEST>>\n  (your question)\n  <<CONTROLLER_REQUEST_END>>"
                ),
                9,
                t0 + ms(60_000)
            )
            .is_empty());
        // A real block that only shares its body with typed text is not the typed text.
        let other = screen("<<MESSAGE to=all>>\n(your question)\n<<MESSAGE_END>>");
        assert_eq!(t.observe(&other, 9, t0 + ms(60_100)).len(), 1);
    }

    #[test]
    fn typed_texts_are_bounded() {
        let mut t = BlockTracker::default();
        t.typed("<<CONTROLLER_REQUEST>>\nold\n<<CONTROLLER_REQUEST_END>>");
        for i in 0..TYPED_KEPT {
            t.typed(&format!("text {i}"));
        }
        t.typed(" \n ");
        assert_eq!(t.typed.len(), TYPED_KEPT);
        let t0 = Instant::now();
        // The oldest typed text fell out: its block fires now.
        assert_eq!(t.observe(&[req("old")], 1, t0).len(), 1);
        t.typed(&"é".repeat(TYPED_MAX_BYTES));
        assert!(t.typed.back().is_some_and(|s| s.len() <= TYPED_MAX_BYTES));
    }

    #[test]
    fn preloaded_blocks_do_not_fire() {
        let mut t = BlockTracker::default();
        let t0 = Instant::now();
        t.preload(&BlockKind::Request, "Should I\n  proceed?", t0);
        let blocks = fixture("demo-gemini-ask-3-idle-after.txt");
        // The first observation may come long after the preload, in any turn.
        assert!(t.observe(&blocks, 7, t0 + ms(5000)).is_empty());
        assert!(t.observe(&blocks, 7, t0 + ms(5100)).is_empty());
        // A second copy is new.
        let two = [blocks[0].clone(), blocks[0].clone()];
        assert_eq!(t.observe(&two, 8, t0 + ms(5200)).len(), 1);
        // A preload that is never seen retires after grace from the first observation.
        let mut u = BlockTracker::default();
        u.preload(&BlockKind::Request, "gone", t0);
        assert!(u.observe(&[], 3, t0 + ms(10_000)).is_empty());
        assert_eq!(u.records(), 1);
        assert!(u.observe(&[], 3, t0 + ms(11_600)).is_empty());
        assert_eq!(u.records(), 0);
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = BlockTracker::default();
        let t0 = Instant::now();
        let many: Vec<Block> = (0..3000).map(|i| req(&format!("q{i}"))).collect();
        assert_eq!(t.observe(&many, 1, t0).len(), 3000);
        assert!(t.records() <= MAX_RECORDS);
        for i in 0..5000u64 {
            t.preload(&BlockKind::Request, &format!("p{i}"), t0 + ms(i));
        }
        assert!(t.records() <= MAX_RECORDS);
        // Nothing visible for grace: everything retires.
        t.observe(&[], 1, t0 + ms(10_000));
        t.observe(&[], 1, t0 + ms(20_000));
        assert_eq!(t.records(), 0);
    }

    #[test]
    fn time_going_backwards_does_not_panic() {
        let mut t = BlockTracker::default();
        let t0 = Instant::now() + Duration::from_secs(10);
        let b = [req("Q?")];
        assert_eq!(t.observe(&b, 1, t0).len(), 1);
        assert!(t.observe(&[], 1, t0 - ms(5000)).is_empty());
        assert!(t.observe(&b, 0, t0 - ms(9000)).len() <= 1);
    }
}
