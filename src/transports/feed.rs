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
//! for too long is disconnected; it reconnects from its cursor and misses
//! nothing.)
//!
//! With the lab's latency or jitter on, each frame gets a due time from an
//! [`OrderedDelay`], so frames are held back but never reordered.
//!
//! # Polled, not awaited
//!
//! A feed is driven by [`Feed::poll_next`], not by an `async fn`, because
//! it lives *inside the response body* of its connection: actix's
//! connection task asks the body for bytes whenever it can write, and the
//! body asks the feed. So one wake of that task — the log published, a
//! delayed frame came due — goes straight to one write on the socket, with
//! no task of our own and no channel in between (see `websocket.rs`, "One
//! task per connection"). The few futures a feed has to wait on (the log's
//! watch, a read from the database) are kept in reusable boxes between
//! polls, so waiting allocates nothing per delivery.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::ReusableBoxFuture;

use crate::lab::{Lab, OrderedDelay};
use crate::log::{Entry, Log, Slice};
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
pub struct Feed<E: Entry, F> {
    log: Log<E>,
    lab: Lab,
    /// Position of the last entry taken from the log.
    cursor: u64,
    /// False while the log may hold entries past `cursor`.
    caught_up: bool,
    /// Resolves when the log publishes; only polled once caught up.
    changed: Changed,
    /// A read from the log that did not finish at once (it went to the
    /// database): polled again until it does. `None` between reads, so an
    /// idle feed holds no read.
    reading: Option<ReusableBoxFuture<'static, Result<Slice<E>, StoreError>>>,
    /// True while `reading` holds a read that has not finished.
    read_in_flight: bool,
    /// Frames read but not yet written, in order.
    pending: VecDeque<Waiting<F>>,
    /// Places kept for replies still being worked on (a WebSocket's acks
    /// while their edits are committed): counted as taken, so that entries
    /// read from the log meanwhile cannot use them up.
    reserved: usize,
    delay: OrderedDelay,
    /// Wakes the connection when the first waiting frame comes due; made
    /// the first time the lab delays a frame.
    timer: Option<Pin<Box<Sleep>>>,
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
        // be missed (see Log::subscribe). Through this worker's relay: the
        // connection is woken, and writes, on this thread's local queue.
        let changed = Changed::new(log.subscribe_here());
        Feed {
            log,
            lab,
            cursor: since,
            caught_up: false,
            changed,
            reading: None,
            read_in_flight: false,
            pending: VecDeque::new(),
            reserved: 0,
            delay: OrderedDelay::default(),
            timer: None,
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
        self.pending.len() + self.reserved < MAX_PENDING
    }

    /// Keeps a place for a reply that will be ready later, so that it
    /// fits whatever the log delivers meanwhile. Returns false — and keeps
    /// nothing — when the feed is full.
    pub fn reserve(&mut self) -> bool {
        if !self.has_room() {
            return false;
        }
        self.reserved += 1;
        true
    }

    /// Queues a reply in a place kept by [`reserve`](Feed::reserve).
    pub fn push_reserved(&mut self, frame: F) {
        self.release();
        self.queue(frame, false);
    }

    /// Gives back a kept place whose reply turned out to be nothing (a
    /// presence frame is not answered).
    pub fn release(&mut self) {
        self.reserved = self.reserved.saturating_sub(1);
    }

    /// When a frame (entry or control) was last queued. Counted from the
    /// queueing, not the sending: with the lab's latency a queued frame is
    /// sent seconds later, and counting from the send would make a stream
    /// look idle while its keep-alive is still waiting.
    pub fn last_queued(&self) -> Instant {
        self.last_queued
    }

    /// Position of the last entry this feed has taken from the log.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The next frame to write, reading the log past the cursor as needed:
    /// `Ready(Ok(frame))` when one is due, `Pending` when there is nothing
    /// to write yet — the log has nothing new, or the next frame's time has
    /// not come — after arranging for `cx` to be woken when there is.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Outgoing<F>, StoreError>> {
        loop {
            if let Some(waiting) = self.pending.front() {
                match waiting.due {
                    Some(due) if due > Instant::now() => {
                        // The head is held back by the lab; so is everything
                        // behind it (never reordered). Wake up when it is due.
                        let timer = self
                            .timer
                            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                        if timer.deadline() != due {
                            timer.as_mut().reset(due);
                        }
                        if timer.as_mut().poll(cx).is_ready() {
                            continue;
                        }
                        // Meanwhile, read on while there is room.
                        if !self.has_room() {
                            return Poll::Pending;
                        }
                    }
                    _ => {
                        // unwrap: the front exists, just looked at.
                        let waiting = self.pending.pop_front().unwrap();
                        if self.pending.is_empty() && self.pending.capacity() > 8 {
                            // A burst is over: do not keep its room.
                            self.pending = VecDeque::new();
                        }
                        return Poll::Ready(Ok(waiting.out));
                    }
                }
            } else if self.timer.is_some() {
                // Nothing is held back any more: give the timer back.
                self.timer = None;
            }
            // Nothing due. Read more, if the log has more and there is room.
            if !self.has_room() {
                return Poll::Pending;
            }
            if self.caught_up {
                // Pending until the log publishes (this registers the wake).
                ready!(self.changed.poll(cx));
                self.caught_up = false;
            }
            let slice = ready!(self.poll_read(cx))?;
            for entry in &slice.entries {
                self.cursor = entry.position();
                let frame = (self.frame)(entry);
                self.queue(frame, true);
            }
            self.caught_up = self.cursor >= slice.last;
        }
    }

    /// Reads up to the room left past the cursor. Almost always finishes
    /// at once (the log's memory window); a read behind the window goes to
    /// the database and finishes on a later poll.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Result<Slice<E>, StoreError>> {
        if !self.read_in_flight {
            let (log, since) = (self.log.clone(), self.cursor);
            let room = MAX_PENDING - self.pending.len() - self.reserved;
            let read = async move { log.read_since(since, room).await };
            match &mut self.reading {
                Some(reading) => reading.set(read),
                None => self.reading = Some(ReusableBoxFuture::new(read)),
            }
            self.read_in_flight = true;
        }
        // unwrap: set just above, or by the poll that started this read.
        let result = ready!(self.reading.as_mut().unwrap().poll(cx));
        self.read_in_flight = false;
        Poll::Ready(result)
    }

    fn queue(&mut self, frame: F, is_entry: bool) {
        self.last_queued = Instant::now();
        let due = self.delay.due(&self.lab);
        self.pending.push_back(Waiting {
            due,
            out: Outgoing { frame, is_entry },
        });
    }
}

/// "The log published": a `watch` receiver's `changed()`, kept between
/// polls in one allocation that every wait reuses.
struct Changed {
    future: ReusableBoxFuture<'static, (bool, watch::Receiver<u64>)>,
}

impl Changed {
    fn new(receiver: watch::Receiver<u64>) -> Changed {
        Changed {
            future: ReusableBoxFuture::new(wait_for_change(receiver)),
        }
    }

    /// Ready once for every change (several publishes between two polls
    /// are one change: the reader reads them all at once). A log that is
    /// gone never changes again: pending for ever.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (changed, receiver) = ready!(self.future.poll(cx));
        self.future.set(wait_for_change(receiver));
        if changed {
            Poll::Ready(())
        } else {
            // The log is gone; only shutdown does that, and shutdown ends
            // the connection another way.
            Poll::Pending
        }
    }
}

async fn wait_for_change(mut receiver: watch::Receiver<u64>) -> (bool, watch::Receiver<u64>) {
    let changed = receiver.changed().await.is_ok();
    if !changed {
        std::future::pending::<()>().await;
    }
    (changed, receiver)
}
