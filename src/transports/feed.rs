//! A push connection's view of a log: its cursor, plus the few frames
//! waiting to be written. Shared by the WebSocket and SSE transports, which
//! differ only in how an entry is framed and how a frame is written.
//!
//! A feed never holds more than [`MAX_PENDING`] frames — entries and
//! control frames (a welcome, an ack, a keep-alive) together. When the
//! client is slow, the feed simply stops reading from the log: its cursor
//! stays where it is, and the entries wait in the log, where they are
//! anyway. And the connection stops reading the *client's* frames while the
//! feed is full ([`Feed::has_room`]), so a client that sends faster than it
//! reads meets TCP's back-pressure instead of growing the server's memory.
//! Memory per connection is therefore bounded whatever the client does, and
//! one slow reader costs the others nothing. (A client that stays too slow
//! for too long is disconnected by its transport; it reconnects from its
//! cursor and misses nothing.)
//!
//! With the lab's latency or jitter on, each frame gets a due time from an
//! [`OrderedDelay`], so frames are held back but never reordered.

use std::collections::VecDeque;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::lab::{Lab, OrderedDelay};
use crate::log::{Entry, Log};
use crate::state::AppState;
use crate::store::StoreError;
use crate::transports::Topic;

/// Frames one connection may have waiting (read from the log but not yet
/// written). Small on purpose: the log is the real queue.
pub const MAX_PENDING: usize = 64;

/// One frame on its way out.
pub struct Outgoing<F> {
    /// The bytes of the frame.
    pub frame: F,
    /// True for an entry of the log, false for a control frame (welcome,
    /// ack, keep-alive…): only entries count as "delivered" in the stats.
    pub is_entry: bool,
}

/// A frame waiting for its due time.
struct Waiting<F> {
    /// `None`: send at once.
    due: Option<Instant>,
    out: Outgoing<F>,
}

/// One push connection's cursor and outgoing frames.
pub struct Feed<E, F> {
    log: Log<E>,
    lab: Lab,
    /// Position of the last entry taken from the log.
    cursor: u64,
    /// False while the log may hold entries past `cursor`.
    caught_up: bool,
    /// Changes whenever the log publishes; only watched once caught up.
    latest: watch::Receiver<u64>,
    /// Frames read but not yet written, in order.
    pending: VecDeque<Waiting<F>>,
    delay: OrderedDelay,
    /// When a frame was last queued: an idle stream's keep-alive is due a
    /// while after this.
    last_queued: Instant,
    /// How an entry becomes a frame of this transport.
    frame: fn(&E) -> F,
}

impl<E: Entry, F> Feed<E, F> {
    /// A feed of `topic`'s log, delayed by the server's lab, that will
    /// deliver every entry after `since` as `frame` makes it.
    pub fn of<T: Topic<Entry = E>>(
        topic: &T,
        state: &AppState,
        since: u64,
        frame: fn(&E) -> F,
    ) -> Feed<E, F> {
        Feed::new(topic.log().clone(), state.lab.clone(), since, frame)
    }

    /// A feed that will deliver every entry after `since`.
    pub fn new(log: Log<E>, lab: Lab, since: u64, frame: fn(&E) -> F) -> Feed<E, F> {
        // Subscribe before the first read: nothing published from now on can
        // be missed (see Log::subscribe).
        let latest = log.subscribe();
        Feed {
            log,
            lab,
            cursor: since,
            caught_up: false,
            latest,
            pending: VecDeque::new(),
            delay: OrderedDelay::default(),
            last_queued: Instant::now(),
            frame,
        }
    }

    /// Queues a frame that is not an entry (a welcome, an ack, a keep-alive)
    /// behind the entries already waiting, so order holds. Returns false —
    /// and queues nothing — when the feed is full; callers that respect
    /// [`has_room`](Feed::has_room) never see that.
    pub fn push(&mut self, frame: F) -> bool {
        if !self.has_room() {
            return false;
        }
        self.queue(frame, false);
        true
    }

    /// True while another frame fits.
    pub fn has_room(&self) -> bool {
        self.pending.len() < MAX_PENDING
    }

    /// When a frame (entry or control) was last queued. Counted from the
    /// queueing, not the sending: with the lab's latency a queued frame is
    /// sent seconds later, and counting from the send would make a stream
    /// look idle while its keep-alive is still waiting.
    pub fn last_queued(&self) -> Instant {
        self.last_queued
    }

    /// Waits until there is something to do: entries to read, or a frame
    /// whose time has come. Cancel-safe, so it can sit in a `select!`.
    pub async fn ready(&mut self) {
        if self.has_due() || (!self.caught_up && self.has_room()) {
            return;
        }
        let next_due = self.pending.front().and_then(|waiting| waiting.due);
        tokio::select! {
            changed = self.latest.changed(), if self.caught_up => {
                if changed.is_ok() {
                    self.caught_up = false;
                } else {
                    // The log is gone; only shutdown does that.
                    std::future::pending::<()>().await;
                }
            }
            _ = sleep_until_some(next_due) => {}
        }
    }

    /// Reads the next entries past the cursor into the pending queue, as
    /// many as fit.
    pub async fn fill(&mut self) -> Result<(), StoreError> {
        let room_for = MAX_PENDING.saturating_sub(self.pending.len());
        if self.caught_up || room_for == 0 {
            return Ok(());
        }
        let slice = self.log.read_since(self.cursor, room_for).await?;
        for entry in &slice.entries {
            self.cursor = entry.position();
            let frame = (self.frame)(entry);
            self.queue(frame, true);
        }
        self.caught_up = self.cursor >= slice.last;
        Ok(())
    }

    /// The next frame whose due time has passed, if any.
    pub fn pop_due(&mut self) -> Option<Outgoing<F>> {
        if self.has_due() {
            self.pending.pop_front().map(|waiting| waiting.out)
        } else {
            None
        }
    }

    /// Position of the last entry this feed has taken from the log.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    fn queue(&mut self, frame: F, is_entry: bool) {
        self.last_queued = Instant::now();
        let due = self.delay.due(&self.lab);
        self.pending.push_back(Waiting {
            due,
            out: Outgoing { frame, is_entry },
        });
    }

    fn has_due(&self) -> bool {
        match self.pending.front() {
            Some(Waiting { due: None, .. }) => true,
            Some(Waiting { due: Some(due), .. }) => *due <= Instant::now(),
            None => false,
        }
    }
}

async fn sleep_until_some(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}
