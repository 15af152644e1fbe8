//! An ordered log that every transport reads by cursor — the chat's
//! messages, the shared document's operations, whatever comes next.
//!
//! This is the reason the five transports agree with each other. Every
//! reader — a polling GET, a held long poll, a WebSocket, an SSE stream —
//! remembers one number, its *cursor*: the position of the last entry it has
//! delivered. "What is new for me?" is always the same question,
//! [`Log::read_since`]`(cursor)`, and because positions are strictly
//! increasing and gap-free (1, 2, 3, …), answering it can never skip or
//! repeat an entry, however the reader got behind or reconnected.
//!
//! A `Log` does not decide what is stored or in what order: the log's owner
//! (the chat's [`Room`](crate::room::Room), later the document) commits
//! entries to disk and then [`publish`](Log::publish)es them here. A log
//! only holds the newest entries in memory, answers reads, and wakes the
//! readers that wait.
//!
//! # Waking readers
//!
//! Readers that are caught up wait on a [`tokio::sync::watch`] channel that
//! holds the newest position. Each publish bumps the watch once; every
//! waiting task wakes, reads from its own cursor and goes back to sleep.
//! There is no polling loop anywhere in the server, so 10,000 held long
//! polls cost memory but no CPU until something is published.
//!
//! ## One wake per worker, then local wakes
//!
//! Entries are published from the store's writer thread, which is not one
//! of the server's worker threads, so a wake from it lands in each worker's
//! *remote* queue — and tokio runs a worker's *local* queue first (the
//! remote one only every 31st task or when the local one is empty). Local is
//! where the network wakes go: a long-poll client that got its answer sends
//! its next request at once, and that request would then overtake the
//! answers still waiting in the remote queue. With 10,000 held polls the
//! last answer left only after ~all 10,000 new requests were parsed.
//!
//! So each worker thread gets a relay ([`Log::relay_on_this_thread`]): one
//! task that waits on the log's watch and passes the news on to a watch of
//! its own. Held long polls and push connections on that thread subscribe
//! to the relay ([`Log::subscribe_here`]); their wakes come from the same
//! thread, join the local queue in order and run before any new request
//! that arrives after them. One remote wake per worker instead of one per
//! reader; `docs/benchmarks.md` has what it bought.
//!
//! A fast reader and a slow reader never wait for each other: the log does
//! not push into per-client queues, each client *pulls* at its own pace.
//! (Compare tokio's `broadcast` channel, where a lagging receiver gets
//! `RecvError::Lagged` and silently loses entries; here a lagging reader
//! simply reads older entries, from memory or from disk.)
//!
//! # Locking
//!
//! The window sits behind a `std::sync::Mutex`, not a tokio one: it is held
//! for a few pointer copies and never across an `.await`, so an async mutex
//! would only add overhead.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio::sync::watch;

use crate::store::StoreError;
pub use crate::wire::{Entry, Wire};

/// One answer to "what is new after my cursor?".
#[derive(Debug)]
pub struct Slice<E> {
    /// Entries after the cursor, oldest first.
    pub entries: Vec<Arc<E>>,
    /// The newest position in the log when the slice was read; more than
    /// the last entry's position means the reader should ask again.
    pub last: u64,
}

/// Where a log finds entries that have left its memory window: the
/// database. `None` for a log that keeps everything in memory.
pub type Older<E> =
    Arc<dyn Fn(u64, usize) -> BoxFuture<'static, Result<Vec<Arc<E>>, StoreError>> + Send + Sync>;

/// A cheap-to-clone handle to one ordered log.
pub struct Log<E> {
    shared: Arc<Shared<E>>,
}

impl<E> Clone for Log<E> {
    fn clone(&self) -> Self {
        Log {
            shared: Arc::clone(&self.shared),
        }
    }
}

struct Shared<E> {
    /// The newest entries.
    window: Mutex<Window<E>>,
    /// The newest published position. Readers `subscribe()` and wait for
    /// changes.
    latest: watch::Sender<u64>,
    /// Reads behind the window.
    older: Option<Older<E>>,
}

/// The newest part of the log, kept in memory because almost every read
/// asks for the last few entries.
struct Window<E> {
    /// Consecutive entries, oldest first; the front is dropped when the
    /// window is full (the database still has it).
    recent: VecDeque<Arc<E>>,
    /// How many entries `recent` may hold.
    capacity: usize,
    /// The newest position ever published (0 while the log is empty).
    last: u64,
}

impl<E: Entry> Window<E> {
    /// The position of the oldest entry held in memory (or `last + 1`).
    fn first(&self) -> u64 {
        self.recent.front().map_or(self.last + 1, |e| e.position())
    }
}

/// Most entries copied out of memory by one read before the lock is let go.
pub const MAX_READ: usize = 500;

thread_local! {
    /// This worker thread's relays, one per log (tests run several servers,
    /// each with two logs, in one process).
    static RELAYS: RefCell<Vec<Relay>> = const { RefCell::new(Vec::new()) };
}

/// A worker thread's copy of one log's "newest position" watch.
struct Relay {
    /// A receiver of the log's own watch: tells which log this relay is for
    /// (`same_channel`), and whether that log still exists.
    source: watch::Receiver<u64>,
    /// The relay's watch, which this thread's held polls subscribe to.
    latest: watch::Sender<u64>,
}

impl<E: Entry> Log<E> {
    /// A log whose newest entries are `recent` (consecutive, oldest first,
    /// ending at `last`), keeping at most `capacity` in memory and reading
    /// older ones through `older`.
    pub fn new(recent: Vec<Arc<E>>, last: u64, capacity: usize, older: Option<Older<E>>) -> Log<E> {
        let capacity = if older.is_some() {
            capacity.max(1)
        } else {
            // Nowhere else to read from: keep everything.
            usize::MAX
        };
        Log::with_window(recent, last, capacity, older)
    }

    /// A log that is never stored — like the document's presence: it keeps
    /// its newest `capacity` entries in memory, and a reader further behind
    /// than that skips ahead to the oldest it still has (for such a log,
    /// only the newest entries matter).
    pub fn bounded(capacity: usize) -> Log<E> {
        Log::with_window(Vec::new(), 0, capacity.max(1), None)
    }

    fn with_window(
        recent: Vec<Arc<E>>,
        last: u64,
        capacity: usize,
        older: Option<Older<E>>,
    ) -> Log<E> {
        debug_assert!(recent.last().is_none_or(|e| e.position() == last));
        let mut recent = VecDeque::from(recent);
        while recent.len() > capacity {
            recent.pop_front();
        }
        Log {
            shared: Arc::new(Shared {
                window: Mutex::new(Window {
                    recent,
                    capacity,
                    last,
                }),
                latest: watch::channel(last).0,
                older,
            }),
        }
    }

    /// Makes a committed batch visible to every reader and wakes the ones
    /// that wait. Call it only once the batch is durable, in position order.
    pub fn publish(&self, batch: &[Arc<E>]) {
        let newest = {
            // unwrap: the lock is only poisoned if a holder panicked, and no
            // code that holds it can panic.
            let mut window = self.shared.window.lock().unwrap();
            for entry in batch {
                debug_assert_eq!(entry.position(), window.last + 1, "must be gap-free");
                window.recent.push_back(Arc::clone(entry));
                window.last = entry.position();
            }
            while window.recent.len() > window.capacity {
                window.recent.pop_front();
            }
            window.last
        };
        // The lock is released before waking anyone: woken readers will want
        // it at once.
        self.shared.latest.send_replace(newest);
    }

    /// The newest position in the log.
    pub fn last(&self) -> u64 {
        *self.shared.latest.borrow()
    }

    /// Entries after `since`, oldest first, at most `limit` (1..=500).
    ///
    /// Almost always answered from memory under a short lock; a reader that
    /// is further behind than the memory window is served from the database.
    pub async fn read_since(&self, since: u64, limit: usize) -> Result<Slice<E>, StoreError> {
        let limit = limit.clamp(1, MAX_READ);
        {
            // unwrap: see `publish`.
            let window = self.shared.window.lock().unwrap();
            if since >= window.last {
                return Ok(Slice {
                    entries: Vec::new(),
                    last: window.last,
                });
            }
            if since + 1 >= window.first() || self.shared.older.is_none() {
                // The window is consecutive, so position N sits at N - first.
                let start = (since + 1).saturating_sub(window.first()) as usize;
                return Ok(Slice {
                    entries: window.recent.range(start..).take(limit).cloned().collect(),
                    last: window.last,
                });
            }
        }
        // Behind the window: read from disk. The database already holds
        // every entry the log ever published, so this can only be *more* up
        // to date than the window, never less.
        // unwrap: checked above that there is an `older`.
        let older = self.shared.older.as_ref().unwrap();
        let entries = older(since, limit).await?;
        let last = self.last().max(entries.last().map_or(0, |e| e.position()));
        Ok(Slice { entries, last })
    }

    /// A receiver that changes whenever new entries are published.
    ///
    /// Subscribe *before* reading from your cursor: an entry published
    /// between the read and the wait will then still mark the receiver as
    /// changed, and no wake-up is lost.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.latest.subscribe()
    }

    /// Like [`subscribe`](Log::subscribe), but through this worker thread's
    /// relay when it has one, for a reader that answers from the very task
    /// that waits — a held long poll, a push connection's body (its write
    /// happens in the task that is woken). The relay's watch changes after
    /// the log's, never before the entry is in the window, so the rule above
    /// still holds.
    ///
    /// (Push connections used to hand each frame to a second task, actix-ws's
    /// writer; woken in local order, all of a worker's feed tasks ran before
    /// the first write, and fan-out to 10,000 went from p99 ~250 to ~400 ms
    /// through the relay. Now that the body reads the log itself, that
    /// reason is gone.)
    pub fn subscribe_here(&self) -> watch::Receiver<u64> {
        let own = self.shared.latest.subscribe();
        RELAYS.with(|relays| {
            relays
                .borrow()
                .iter()
                .find(|relay| relay.source.same_channel(&own))
                .map(|relay| relay.latest.subscribe())
                .unwrap_or(own)
        })
    }

    /// Starts this thread's relay of the newest position (see "One wake per
    /// worker" in the module docs). Call it on each worker thread, inside
    /// its tokio `LocalSet` — the server does, from the app factory that
    /// actix runs once per worker. Readers on other threads keep using the
    /// log's own watch.
    pub fn relay_on_this_thread(&self) {
        let mut source = self.shared.latest.subscribe();
        let (latest, _) = watch::channel(*source.borrow_and_update());
        let relayed = latest.clone();
        // Ends when the log's sender is gone, i.e. when the log is dropped.
        tokio::task::spawn_local(async move {
            while source.changed().await.is_ok() {
                let newest = *source.borrow_and_update();
                relayed.send_replace(newest);
            }
        });
        let source = self.shared.latest.subscribe();
        RELAYS.with(|relays| {
            let mut relays = relays.borrow_mut();
            // A relay whose log is gone will never change again: forget it.
            relays.retain(|relay| relay.source.has_changed().is_ok());
            relays.push(Relay { source, latest });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use bytestring::ByteString;

    /// A log entry that is only its position.
    struct Numbered {
        position: u64,
        wire: Wire,
    }

    impl Numbered {
        fn new(position: u64) -> Arc<Numbered> {
            let text = position.to_string();
            Arc::new(Numbered {
                position,
                wire: Wire {
                    json: Bytes::from(text.clone()),
                    ws_frame: ByteString::from(text.clone()),
                    sse_event: Bytes::from(format!("id: {text}\n\n")),
                },
            })
        }
    }

    impl Entry for Numbered {
        fn position(&self) -> u64 {
            self.position
        }
        fn wire(&self) -> &Wire {
            &self.wire
        }
    }

    fn positions(slice: &Slice<Numbered>) -> Vec<u64> {
        slice.entries.iter().map(|e| e.position()).collect()
    }

    #[tokio::test]
    async fn reads_from_the_window_and_from_older() {
        // Older entries come from "disk": here, made up on demand.
        let older: Older<Numbered> = Arc::new(|since, limit| {
            Box::pin(async move {
                Ok((since + 1..=10)
                    .take(limit)
                    .map(Numbered::new)
                    .collect::<Vec<_>>())
            })
        });
        let log = Log::new((8..=10).map(Numbered::new).collect(), 10, 3, Some(older));
        assert_eq!(positions(&log.read_since(8, 100).await.unwrap()), [9, 10]);
        assert_eq!(positions(&log.read_since(2, 3).await.unwrap()), [3, 4, 5]);
        let caught_up = log.read_since(10, 100).await.unwrap();
        assert!(caught_up.entries.is_empty());
        assert_eq!(caught_up.last, 10);
    }

    #[tokio::test]
    async fn publish_wakes_a_subscriber_and_trims_the_window() {
        let log = Log::new(Vec::new(), 0, 2, None);
        let mut latest = log.subscribe();
        log.publish(&[Numbered::new(1), Numbered::new(2), Numbered::new(3)]);
        latest.changed().await.unwrap();
        assert_eq!(*latest.borrow(), 3);
        // Without an `older`, nothing is ever dropped.
        assert_eq!(positions(&log.read_since(0, 100).await.unwrap()), [1, 2, 3]);
    }
}
