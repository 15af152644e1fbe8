//! The room: one ordered message log that every transport reads by cursor.
//!
//! This is the heart of the server and the reason the five transports agree
//! with each other. Every reader — a polling GET, a held long poll, a
//! WebSocket, an SSE stream — remembers one number, its *cursor*: the id of
//! the last message it has delivered. "What is new for me?" is always the same
//! question, [`Room::read_since`]`(cursor)`, and because ids are strictly
//! increasing and gap-free, answering it can never skip or repeat a message,
//! however the reader got behind or reconnected.
//!
//! # Waking readers
//!
//! Readers that are caught up wait on a [`tokio::sync::watch`] channel that
//! holds the newest id. The store's writer thread publishes each committed
//! batch here and bumps the watch once; every waiting task wakes, reads from
//! its own cursor and goes back to sleep. There is no polling loop anywhere in
//! the server, so 10,000 held long polls cost memory but no CPU until a
//! message arrives.
//!
//! ## One wake per worker, then local wakes
//!
//! The writer thread is not one of the server's worker threads, so a wake
//! from it lands in each worker's *remote* queue — and tokio runs a worker's
//! *local* queue first (the remote one only every 31st task or when the local
//! one is empty). Local is where the network wakes go: a long-poll client that
//! got its answer sends its next request at once, and that request would then
//! overtake the answers still waiting in the remote queue. With 10,000 held
//! polls the last answer left only after ~all 10,000 new requests were parsed.
//!
//! So each worker thread gets a relay ([`Room::relay_on_this_thread`]): one
//! task that waits on the room's watch and passes the news on to a watch of
//! its own. Held long polls on that thread subscribe to the relay
//! ([`Room::subscribe_here`]); their wakes come from the same thread, join
//! the local queue in order and run before any new request that arrives
//! after them. One remote wake per worker instead of one per reader;
//! `docs/benchmarks.md` has what it bought — and why WebSockets and SSE,
//! whose frames are written by a second task, stay on the room's watch.
//!
//! A fast reader and a slow reader never wait for each other: the room does
//! not push into per-client queues, each client *pulls* from the shared log
//! at its own pace. (Compare tokio's `broadcast` channel, where a lagging
//! receiver gets `RecvError::Lagged` and silently loses messages; here a
//! lagging reader simply reads older entries, from memory or from disk.)
//!
//! # Locking
//!
//! The log sits behind a `std::sync::Mutex`, not a tokio one: it is held for
//! a few pointer copies and never across an `.await`, so an async mutex
//! would only add overhead.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::message::{NewMessage, StoredMessage};
use crate::store::{Store, StoreError, StoreHandle};

/// One answer to "what is new after my cursor?".
#[derive(Debug, Clone)]
pub struct Page {
    /// Messages with `id > since`, oldest first.
    pub messages: Vec<Arc<StoredMessage>>,
    /// The newest id in the room when the page was read; more than the last
    /// id in `messages` means the reader should ask again.
    pub last_id: u64,
}

/// A cheap-to-clone handle to the room; every handler holds one.
#[derive(Clone)]
pub struct Room {
    shared: Arc<Shared>,
}

struct Shared {
    /// The in-memory window of the log. Shared (`Arc`) with the store's
    /// writer thread, which appends to it after each commit.
    log: Arc<Mutex<Log>>,
    /// The newest committed id. Readers `subscribe()` and wait for changes.
    latest: watch::Sender<u64>,
    /// Flips to `true` once when the server begins shutting down, so that
    /// long-lived connections can say goodbye properly.
    closing: watch::Sender<bool>,
    /// The durable store (and its writer thread).
    store: StoreHandle,
}

thread_local! {
    /// This worker thread's relay, if it has one.
    static RELAY: RefCell<Option<Relay>> = const { RefCell::new(None) };
}

/// A worker thread's copy of the room's "newest id" watch.
struct Relay {
    /// Which room it relays (tests run several servers in one process). Only
    /// compared, never dereferenced.
    room: *const Shared,
    latest: watch::Sender<u64>,
}

/// The newest part of the log, kept in memory because almost every read asks
/// for the last few messages.
struct Log {
    /// Consecutive messages, oldest first; the front is dropped when the
    /// window is full (the database still has it).
    recent: VecDeque<Arc<StoredMessage>>,
    /// How many messages `recent` may hold.
    window: usize,
    /// The newest id ever committed (0 while the room is empty).
    last_id: u64,
}

impl Log {
    /// The id of the oldest message held in memory (or `last_id + 1`).
    fn first_id(&self) -> u64 {
        self.recent.front().map_or(self.last_id + 1, |m| m.id())
    }

    /// Appends a committed batch and trims the window.
    fn push(&mut self, batch: &[Arc<StoredMessage>]) {
        for message in batch {
            debug_assert_eq!(message.id(), self.last_id + 1, "ids must be gap-free");
            self.recent.push_back(Arc::clone(message));
            self.last_id = message.id();
        }
        while self.recent.len() > self.window {
            self.recent.pop_front();
        }
    }
}

/// Most messages copied out of memory by one read before the lock is let go.
const MAX_READ: usize = 500;

impl Room {
    /// Loads the newest messages from `store` and starts its writer.
    ///
    /// `window` is how many messages to keep in memory; with an in-memory
    /// database the whole log is kept, since there is nowhere else to read
    /// it from.
    pub fn open(store: Store, window: usize, write_queue: usize) -> Result<Room, StoreError> {
        let window = if store.is_memory() {
            usize::MAX
        } else {
            window.max(1)
        };
        let last_id = store.last_id();
        let recent = store
            .recent(window.min(last_id as usize))?
            .into_iter()
            .map(|m| Arc::new(StoredMessage::new(m)))
            .collect();
        let log = Arc::new(Mutex::new(Log {
            recent,
            window,
            last_id,
        }));
        let (latest, _) = watch::channel(last_id);
        let (closing, _) = watch::channel(false);

        // The writer thread publishes each committed batch: append it to the
        // log, then wake every waiting reader.
        let publish_log = Arc::clone(&log);
        let publish_latest = latest.clone();
        let store = store.start(write_queue, move |batch| {
            // unwrap: the lock is only poisoned if a holder panicked, and no
            // code that holds it can panic.
            let newest = {
                let mut log = publish_log.lock().unwrap();
                log.push(batch);
                log.last_id
            };
            // The lock is released before waking anyone: woken readers
            // will want it at once.
            publish_latest.send_replace(newest);
        })?;

        Ok(Room {
            shared: Arc::new(Shared {
                log,
                latest,
                closing,
                store,
            }),
        })
    }

    /// Validated message in, durable message (with its id) out. Returns once
    /// the message is committed and visible to every reader.
    pub async fn append(&self, message: NewMessage) -> Result<Arc<StoredMessage>, StoreError> {
        if self.is_closing() {
            return Err(StoreError::Closed);
        }
        self.shared.store.append(message).await
    }

    /// The newest id in the room.
    pub fn last_id(&self) -> u64 {
        *self.shared.latest.borrow()
    }

    /// Messages with `id > since`, oldest first, at most `limit`.
    ///
    /// Almost always answered from memory under a short lock; a reader that
    /// is further behind than the memory window is served from the database.
    pub async fn read_since(&self, since: u64, limit: usize) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, MAX_READ);
        {
            // unwrap: see `open`.
            let log = self.shared.log.lock().unwrap();
            let first_id = log.first_id();
            if since >= log.last_id {
                return Ok(Page {
                    messages: Vec::new(),
                    last_id: log.last_id,
                });
            }
            if since + 1 >= first_id {
                // The window is consecutive, so id N sits at N - first_id.
                let start = (since + 1 - first_id) as usize;
                let messages = log.recent.range(start..).take(limit).cloned().collect();
                return Ok(Page {
                    messages,
                    last_id: log.last_id,
                });
            }
        }
        // Behind the window: read from disk. The database already holds
        // every message the room ever published, so this can only be *more*
        // up to date than the window, never less.
        let messages: Vec<_> = self
            .shared
            .store
            .read_since(since, limit)
            .await?
            .into_iter()
            .map(|m| Arc::new(StoredMessage::new(m)))
            .collect();
        let last_id = self
            .last_id()
            .max(messages.last().map_or(0, |m: &Arc<StoredMessage>| m.id()));
        Ok(Page { messages, last_id })
    }

    /// A receiver that changes whenever new messages are committed.
    ///
    /// Subscribe *before* reading from your cursor: a message committed
    /// between the read and the wait will then still mark the receiver as
    /// changed, and no wake-up is lost.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.latest.subscribe()
    }

    /// Like [`subscribe`](Room::subscribe), but through this worker thread's
    /// relay when it has one, for a reader that answers from the very task
    /// that waits — a held long poll. The relay's watch changes after the
    /// room's, never before the message is in the log, so the rule above
    /// still holds.
    ///
    /// Push connections do *not* use it: their feed task hands each frame to
    /// actix-ws, whose write happens in another task (the connection's
    /// dispatcher). Woken in local order, all of a worker's feed tasks would
    /// run before the first of those writes; woken remotely, each feed's
    /// write runs right after it. Measured: WebSocket fan-out to 10,000
    /// went from p99 ~250 to ~400 ms through the relay.
    pub fn subscribe_here(&self) -> watch::Receiver<u64> {
        RELAY.with(|relay| match &*relay.borrow() {
            Some(relay) if std::ptr::eq(relay.room, Arc::as_ptr(&self.shared)) => {
                relay.latest.subscribe()
            }
            _ => self.shared.latest.subscribe(),
        })
    }

    /// Starts this thread's relay of the newest id (see "One wake per worker"
    /// in the module docs). Call it on each worker thread, inside its tokio
    /// `LocalSet` — the server does, from the app factory that actix runs
    /// once per worker. Readers on other threads keep using the room's own
    /// watch.
    pub fn relay_on_this_thread(&self) {
        let mut room_latest = self.shared.latest.subscribe();
        let (latest, _) = watch::channel(*room_latest.borrow_and_update());
        let relayed = latest.clone();
        // Ends when the room's sender is gone, i.e. when the room is dropped.
        tokio::task::spawn_local(async move {
            while room_latest.changed().await.is_ok() {
                let newest = *room_latest.borrow_and_update();
                relayed.send_replace(newest);
            }
        });
        RELAY.with(|relay| {
            *relay.borrow_mut() = Some(Relay {
                room: Arc::as_ptr(&self.shared),
                latest,
            })
        });
    }

    /// True once shutdown has begun.
    pub fn is_closing(&self) -> bool {
        *self.shared.closing.borrow()
    }

    /// Resolves when the server begins shutting down.
    pub fn closing(&self) -> impl std::future::Future<Output = ()> + use<> {
        let mut rx = self.shared.closing.subscribe();
        async move {
            // An error means the sender is gone, i.e. the room is dropped:
            // also a reason to stop.
            let _ = rx.wait_for(|closing| *closing).await;
        }
    }

    /// Tells every long-lived connection to close (first step of shutdown).
    pub fn begin_close(&self) {
        self.shared.closing.send_replace(true);
    }

    /// Commits what is queued and stops the writer (last step of shutdown).
    pub async fn flush_and_stop(&self) {
        self.shared.store.shutdown().await;
    }
}
