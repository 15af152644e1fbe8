//! Presence: who is editing the shared document right now, over which
//! transport, and where their caret and selection are — so that every
//! editor can draw everyone else's.
//!
//! Presence is not part of the shared contract (it is this project's
//! design; `docs/protocol.md`, "Presence"). It is a third ordered log, read
//! by the same five transports as the chat and the document — which is the
//! point of writing the transports once — with two differences:
//!
//! * **It is not stored.** A caret is only worth knowing while it is fresh:
//!   the log lives in memory, keeps its newest [`KEPT`] entries, and a
//!   reader further behind than that simply skips ahead. Nothing is fsynced,
//!   so a caret costs almost nothing to publish.
//! * **A caret is a position in one revision of the text.** An entry says
//!   "at revision 41, Ada's selection was 12..17". An editor that has seen
//!   more (or less) of the document moves it through the operations in
//!   between — *transforms* it, exactly as an operation is transformed —
//!   instead of trusting the numbers: text inserted before the caret since
//!   revision 41 moves it right. That is why every entry carries `rev`.
//!
//! An editor sends its presence when its caret or selection moves (at most
//! a few times a second), every 20 seconds while it is open, and once more
//! with `"left": true` when the page goes away; editors forget a caret
//! that has not been refreshed for a minute.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::log::Log;
use crate::message::Via;
use crate::store::now_ms;
use crate::wire::{Entry, Wire};

/// Presence entries kept in memory (a reader further behind skips ahead).
pub const KEPT: usize = 1_000;

/// Colours handed out to editors (readable on white and on the dark
/// theme's background, and told apart from each other).
const PALETTE: [&str; 10] = [
    "#d6336c", "#1971c2", "#2f9e44", "#e8590c", "#7048e8", "#0c8599", "#c2255c", "#5c940d",
    "#9c36b5", "#e67700",
];

/// One editor's presence at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Caret {
    /// The editor (browser tab) it belongs to.
    pub client: String,
    /// The name to show next to the caret.
    pub name: String,
    /// True when `name` is a signed-in account's.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub account: bool,
    /// The caret's colour, the same for an editor every time.
    pub color: &'static str,
    /// The transport the editor reads the document over.
    pub via: Via,
    /// The revision `anchor` and `head` are positions in.
    pub rev: u64,
    /// Where the selection started (characters = code points).
    pub anchor: u64,
    /// Where the caret is.
    pub head: u64,
    /// True once: the editor closed its page.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub left: bool,
}

/// A caret as every reader gets it: the caret, its position in the
/// presence log (`seq`), and the server's clock.
#[derive(Debug)]
pub struct PresenceEntry {
    /// Position in the presence log.
    pub seq: u64,
    /// The caret.
    pub caret: Caret,
    /// Server clock when it was published, ms since the Unix epoch.
    pub at: u64,
    wire: Wire,
}

#[derive(Serialize)]
struct EntryJson<'a> {
    seq: u64,
    #[serde(flatten)]
    caret: &'a Caret,
    at: u64,
}

impl PresenceEntry {
    fn new(seq: u64, caret: Caret) -> PresenceEntry {
        let at = now_ms();
        // unwrap: strings, numbers and booleans always serialise.
        let json = serde_json::to_vec(&EntryJson {
            seq,
            caret: &caret,
            at,
        })
        .unwrap();
        PresenceEntry {
            seq,
            caret,
            at,
            wire: Wire::flat("presence", seq, json),
        }
    }
}

impl Entry for PresenceEntry {
    fn position(&self) -> u64 {
        self.seq
    }

    fn wire(&self) -> &Wire {
        &self.wire
    }
}

/// The presence log; cheap to clone.
#[derive(Clone)]
pub struct Presence {
    log: Log<PresenceEntry>,
    /// The last position handed out. Publishing takes the number and
    /// publishes under one lock (see [`Presence::publish`]).
    next: Arc<std::sync::Mutex<u64>>,
    /// Carets published since start, for the stats.
    published: Arc<AtomicU64>,
}

impl Default for Presence {
    fn default() -> Self {
        Presence::new()
    }
}

impl Presence {
    /// An empty presence log.
    pub fn new() -> Presence {
        Presence {
            log: Log::bounded(KEPT),
            next: Arc::default(),
            published: Arc::default(),
        }
    }

    /// The colour of `client`: picked from the palette by a hash of its
    /// id, so the same tab keeps its colour across reconnects.
    pub fn color_of(client: &str) -> &'static str {
        let hash = client.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        PALETTE[hash as usize % PALETTE.len()]
    }

    /// Publishes a caret to every reader; returns its entry.
    pub fn publish(&self, caret: Caret) -> Arc<PresenceEntry> {
        // Positions must reach the log in order: number and publish under
        // one lock (held for an Arc push, never across an await).
        // unwrap: the lock is only poisoned if a holder panicked; none can.
        let mut next = self.next.lock().unwrap();
        *next += 1;
        let entry = Arc::new(PresenceEntry::new(*next, caret));
        self.log.publish(std::slice::from_ref(&entry));
        self.published.fetch_add(1, Ordering::Relaxed);
        entry
    }

    /// The log, for the transports.
    pub fn log(&self) -> &Log<PresenceEntry> {
        &self.log
    }

    /// Carets published since start.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
}
