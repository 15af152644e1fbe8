//! A push connection's view of the room: its cursor, plus the few frames
//! waiting to be written. Shared by the WebSocket and SSE transports, which
//! differ only in how a message is framed and how a frame is written.
//!
//! A feed never holds more than [`MAX_PENDING`] frames. When the client is
//! slow, the feed simply stops reading from the room — its cursor stays
//! where it is, and the messages wait in the room's log, where they are
//! anyway. Memory per connection is therefore bounded whatever the client
//! does, and one slow reader costs the others nothing. (A client that stays
//! too slow for too long is disconnected by its transport; it reconnects
//! from its cursor and misses nothing.)
//!
//! With the lab's latency or jitter on, each frame gets a due time from an
//! [`OrderedDelay`], so frames are held back but never reordered.

use std::collections::VecDeque;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::lab::{Lab, OrderedDelay};
use crate::message::StoredMessage;
use crate::room::Room;
use crate::store::StoreError;

/// Frames one connection may have waiting (read from the room but not yet
/// written). Small on purpose: the room's log is the real queue.
pub const MAX_PENDING: usize = 64;

/// One push connection's cursor and outgoing frames.
pub struct Feed<F> {
    room: Room,
    lab: Lab,
    /// Id of the last message taken from the room.
    cursor: u64,
    /// False while the room may hold messages past `cursor`.
    caught_up: bool,
    /// Changes whenever the room commits; only watched once caught up.
    latest: watch::Receiver<u64>,
    /// Frames read but not yet written, each with the time it is due.
    pending: VecDeque<(Option<Instant>, F)>,
    delay: OrderedDelay,
    /// How a message becomes a frame of this transport.
    frame: fn(&StoredMessage) -> F,
}

impl<F> Feed<F> {
    /// A feed that will deliver every message with `id > since`.
    pub fn new(room: Room, lab: Lab, since: u64, frame: fn(&StoredMessage) -> F) -> Feed<F> {
        // Subscribe before the first read: nothing committed from now on can
        // be missed (see Room::subscribe).
        let latest = room.subscribe();
        Feed {
            room,
            lab,
            cursor: since,
            caught_up: false,
            latest,
            pending: VecDeque::new(),
            delay: OrderedDelay::default(),
            frame,
        }
    }

    /// Queues a frame that is not a message (a welcome, an ack, a
    /// keep-alive) behind the messages already waiting, so order holds.
    pub fn push(&mut self, frame: F) {
        let due = self.delay.due(&self.lab);
        self.pending.push_back((due, frame));
    }

    /// Waits until there is something to do: messages to read, or a frame
    /// whose time has come. Cancel-safe, so it can sit in a `select!`.
    pub async fn ready(&mut self) {
        if self.has_due() || (!self.caught_up && self.pending.len() < MAX_PENDING) {
            return;
        }
        let next_due = self.pending.front().and_then(|(due, _)| *due);
        tokio::select! {
            changed = self.latest.changed(), if self.caught_up => {
                if changed.is_ok() {
                    self.caught_up = false;
                } else {
                    // The room is gone; only shutdown does that.
                    std::future::pending::<()>().await;
                }
            }
            _ = sleep_until_some(next_due) => {}
        }
    }

    /// Reads the next messages past the cursor into the pending queue, as
    /// many as fit.
    pub async fn fill(&mut self) -> Result<(), StoreError> {
        let room_for = MAX_PENDING.saturating_sub(self.pending.len());
        if self.caught_up || room_for == 0 {
            return Ok(());
        }
        let page = self.room.read_since(self.cursor, room_for).await?;
        for message in &page.messages {
            self.cursor = message.id();
            let frame = (self.frame)(message);
            self.push(frame);
        }
        self.caught_up = self.cursor >= page.last_id;
        Ok(())
    }

    /// The next frame whose due time has passed, if any.
    pub fn pop_due(&mut self) -> Option<F> {
        if self.has_due() {
            self.pending.pop_front().map(|(_, frame)| frame)
        } else {
            None
        }
    }

    /// Id of the last message this feed has taken from the room.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    fn has_due(&self) -> bool {
        match self.pending.front() {
            Some((None, _)) => true,
            Some((Some(due), _)) => *due <= Instant::now(),
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
