//! Counters per transport, served at `GET /api/stats` for the teacher's
//! dashboard and the benchmarks.
//!
//! The numbers are the lesson in figures: setInterval polling piles up
//! `requests` and `empty_responses` whatever the traffic; long polling spends
//! about one request per delivered message; a WebSocket spends one request
//! (the upgrade) for the whole session. Counters are plain atomics bumped
//! with `Relaxed` ordering: each is an independent tally, nothing is
//! synchronised through them, and a dashboard that is a microsecond stale is
//! fine.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::message::Via;

/// One transport's counters.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// HTTP requests answered (for WebSocket and SSE: connections opened).
    pub requests: AtomicU64,
    /// Answers that carried no message: the waste of polling.
    pub empty_responses: AtomicU64,
    /// Messages delivered to readers of this transport.
    pub messages_delivered: AtomicU64,
    /// Body or frame bytes sent to readers (HTTP headers not included).
    pub bytes_sent: AtomicU64,
    /// Right now: polls being answered, long polls held, or connections open.
    pub open: AtomicU64,
    /// Most `open` at any moment since start.
    pub open_max: AtomicU64,
    /// Messages that senders on this transport's page posted.
    pub messages_received: AtomicU64,
    /// Requests refused with an error (4xx/5xx) or frames answered with an
    /// error frame.
    pub errors: AtomicU64,
    /// Polling clients (by their `client=` id) and when each was last seen:
    /// polling has no connection to count, so "who is here" is "who asked
    /// recently".
    recent_clients: Mutex<RecentClients>,
}

/// Client ids seen recently, swept of stale ones at most once a second so
/// that a busy transport does not rescan the table on every request.
#[derive(Debug)]
struct RecentClients {
    seen: HashMap<String, Instant>,
    swept: Instant,
}

impl Default for RecentClients {
    fn default() -> Self {
        RecentClients {
            seen: HashMap::new(),
            swept: Instant::now(),
        }
    }
}

impl RecentClients {
    fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.swept) >= SWEEP_EVERY {
            self.seen
                .retain(|_, seen| now.duration_since(*seen) < CLIENT_SEEN_WINDOW);
            self.swept = now;
        }
    }
}

/// How often stale client ids are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A polling client counts as connected this long after its last request.
pub const CLIENT_SEEN_WINDOW: Duration = Duration::from_secs(10);

/// Most polling clients remembered per transport; beyond it new ids are not
/// tracked (the count then reads as "at least this many").
const MAX_TRACKED_CLIENTS: usize = 10_000;

impl TransportStats {
    /// Counts one request (for WebSocket and SSE: one connection attempt),
    /// and whether it was refused. Every transport counts its requests with
    /// this, once, from the request's result.
    pub fn count<T, E>(&self, result: &Result<T, E>) {
        self.requests.fetch_add(1, Relaxed);
        if result.is_err() {
            self.errors.fetch_add(1, Relaxed);
        }
    }

    /// Counts a frame answered with an error frame (WebSocket).
    pub fn refused_frame(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    /// Counts one delivery of `messages` messages in `bytes` bytes.
    pub fn delivered(&self, messages: usize, bytes: usize) {
        if messages == 0 {
            self.empty_responses.fetch_add(1, Relaxed);
        }
        self.messages_delivered.fetch_add(messages as u64, Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Relaxed);
    }

    /// Notes that the client with this id just asked.
    pub fn seen_client(&self, client: &str) {
        let now = Instant::now();
        // unwrap: nothing panics while holding this lock.
        let mut clients = self.recent_clients.lock().unwrap();
        clients.sweep(now);
        if let Some(seen) = clients.seen.get_mut(client) {
            *seen = now;
        } else if clients.seen.len() < MAX_TRACKED_CLIENTS {
            clients.seen.insert(client.to_owned(), now);
        }
    }

    /// Distinct clients seen within [`CLIENT_SEEN_WINDOW`] (to within the
    /// one-second sweep).
    pub fn recent_client_count(&self) -> u64 {
        let now = Instant::now();
        // unwrap: see seen_client.
        let clients = self.recent_clients.lock().unwrap();
        clients
            .seen
            .values()
            .filter(|seen| now.duration_since(**seen) < CLIENT_SEEN_WINDOW)
            .count() as u64
    }

    /// Marks one more open request/connection until the guard is dropped.
    pub fn open_guard(&self) -> OpenGuard<'_> {
        let now = self.open.fetch_add(1, Relaxed) + 1;
        self.open_max.fetch_max(now, Relaxed);
        OpenGuard(self)
    }
}

/// Decrements `open` when dropped, however the request ends (answered,
/// failed, or abandoned by a client that went away).
pub struct OpenGuard<'a>(&'a TransportStats);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
    }
}

/// One log's counters, one set per transport (the chat's; later the
/// document's).
#[derive(Debug, Default)]
pub struct TransportSet {
    transports: [TransportStats; 6],
}

impl TransportSet {
    /// The counters of one transport.
    pub fn of(&self, via: Via) -> &TransportStats {
        &self.transports[via as usize]
    }

    /// `{"interval": {…}, …, "api": {…}}` for `GET /api/stats`.
    pub fn snapshot(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut transports = serde_json::Map::new();
        for via in Via::ALL {
            let t = self.of(via);
            // A push transport's clients are its open connections; a
            // polling transport's are those that asked recently.
            let clients = match via {
                Via::Websocket | Via::Sse => t.open.load(Relaxed),
                // A held poll may be quiet longer than the window.
                Via::Longpoll => t.open.load(Relaxed).max(t.recent_client_count()),
                _ => t.recent_client_count(),
            };
            // unwrap: a struct of integers always serialises.
            let value = serde_json::to_value(TransportSnapshot {
                requests: t.requests.load(Relaxed),
                empty_responses: t.empty_responses.load(Relaxed),
                messages_delivered: t.messages_delivered.load(Relaxed),
                bytes_sent: t.bytes_sent.load(Relaxed),
                open: t.open.load(Relaxed),
                open_max: t.open_max.load(Relaxed),
                messages_received: t.messages_received.load(Relaxed),
                errors: t.errors.load(Relaxed),
                clients,
            })
            .unwrap();
            transports.insert(via.as_str().to_owned(), value);
        }
        transports
    }

    /// Entries that senders on any transport wrote into this log.
    pub fn received(&self) -> u64 {
        self.transports
            .iter()
            .map(|t| t.messages_received.load(Relaxed))
            .sum()
    }
}

/// All counters of the server.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    /// The chat's transports.
    pub chat: TransportSet,
    /// The shared document's transports (`messages_*` count operations).
    pub doc: TransportSet,
    /// Presence's transports (`messages_*` count carets).
    pub presence: TransportSet,
    /// Edits refused as invalid (or not fitting the document) since start.
    pub doc_rejected: AtomicU64,
    /// Edits refused by an editor's rate limit since start.
    pub doc_rate_limited: AtomicU64,
    /// Posts refused by validation (4xx other than 429).
    pub posts_rejected: AtomicU64,
    /// Posts refused by the rate limit (429).
    pub posts_rate_limited: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            chat: TransportSet::default(),
            doc: TransportSet::default(),
            presence: TransportSet::default(),
            doc_rejected: AtomicU64::new(0),
            doc_rate_limited: AtomicU64::new(0),
            posts_rejected: AtomicU64::new(0),
            posts_rate_limited: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// A consistent-enough copy for `GET /api/stats`.
    pub fn snapshot(&self, last_id: u64, last_rev: u64) -> StatsSnapshot {
        StatsSnapshot {
            doc: DocSnapshot {
                last_rev,
                ops_received: self.doc.received(),
                ops_rejected: self.doc_rejected.load(Relaxed),
                ops_rate_limited: self.doc_rate_limited.load(Relaxed),
                transports: self.doc.snapshot(),
                presence: self.presence.snapshot(),
            },
            uptime_ms: self.started.elapsed().as_millis() as u64,
            room: RoomSnapshot {
                last_id,
                messages_posted: self.chat.received(),
                posts_rejected: self.posts_rejected.load(Relaxed),
                posts_rate_limited: self.posts_rate_limited.load(Relaxed),
            },
            transports: self.chat.snapshot(),
        }
    }
}

/// `GET /api/stats` body.
#[derive(Debug, Serialize)]
pub struct StatsSnapshot {
    /// Milliseconds since the server started.
    pub uptime_ms: u64,
    /// Room-wide totals.
    pub room: RoomSnapshot,
    /// One entry per transport name (`interval`, …, `api`), for the chat.
    pub transports: serde_json::Map<String, serde_json::Value>,
    /// The shared document (an extension).
    pub doc: DocSnapshot,
}

/// The shared document in `GET /api/stats`.
#[derive(Debug, Serialize)]
pub struct DocSnapshot {
    /// Newest revision (also the number of operations ever stored).
    pub last_rev: u64,
    /// Operations accepted since this server process started.
    pub ops_received: u64,
    /// Edits refused as invalid since start.
    pub ops_rejected: u64,
    /// Edits refused by the rate limit since start.
    pub ops_rate_limited: u64,
    /// Per transport, as for the chat (`messages_delivered` counts
    /// operations).
    pub transports: serde_json::Map<String, serde_json::Value>,
    /// Presence per transport (`messages_*` count carets).
    pub presence: serde_json::Map<String, serde_json::Value>,
}

/// Room-wide totals.
#[derive(Debug, Serialize)]
pub struct RoomSnapshot {
    /// Newest message id (also the number of messages ever stored).
    pub last_id: u64,
    /// Messages accepted since this server process started.
    pub messages_posted: u64,
    /// Posts refused as invalid since start.
    pub posts_rejected: u64,
    /// Posts refused by the rate limit since start.
    pub posts_rate_limited: u64,
}

/// One transport in `GET /api/stats`.
#[derive(Debug, Serialize)]
pub struct TransportSnapshot {
    /// See [`TransportStats::requests`].
    pub requests: u64,
    /// See [`TransportStats::empty_responses`].
    pub empty_responses: u64,
    /// See [`TransportStats::messages_delivered`].
    pub messages_delivered: u64,
    /// See [`TransportStats::bytes_sent`].
    pub bytes_sent: u64,
    /// See [`TransportStats::open`].
    pub open: u64,
    /// See [`TransportStats::open_max`].
    pub open_max: u64,
    /// See [`TransportStats::messages_received`].
    pub messages_received: u64,
    /// See [`TransportStats::errors`].
    pub errors: u64,
    /// Clients on this transport now: open connections (WebSocket, SSE) or
    /// distinct `client=` ids seen in the last 10 s (polling).
    pub clients: u64,
}
