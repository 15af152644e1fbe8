//! # Weebsockets
//!
//! One chat room and one shared document — two ordered logs — and five
//! ways for a browser to read each, so that a class can watch, side by
//! side, why real-time on the web is hard and how each fix behaves:
//!
//! | transport | endpoint | what it teaches |
//! | --- | --- | --- |
//! | setInterval polling | `GET /api/messages?transport=interval` | asking on a clock: overlapping requests, out-of-order answers |
//! | setTimeout polling | `GET /api/messages?transport=timeout` | asking after each answer: in order, still wasteful |
//! | long polling | `GET /api/longpoll` | the server holds the question until there is news |
//! | WebSockets | `GET /api/ws` | one persistent two-way connection: open, send, receive, close |
//! | Server-Sent Events | `GET /api/events` | one endless HTTP response the server writes events into |
//!
//! The wire contract is `docs/protocol.md`; how a message travels from a
//! `POST` to every reader is `docs/architecture.md`.
//!
//! # Layout
//!
//! From the bottom up — each module uses only modules above it in this
//! list, never one below (no module imports one that imports it back):
//!
//! * [`config`] — command-line flags.
//! * [`listen`] — the listening socket: its accept queue and send deadline.
//! * [`wire`] — what every log's entries share: a position and pre-encoded
//!   bytes for each transport.
//! * [`message`] — the chat message, its validation, its wire forms.
//! * [`ot`] — operational transformation: the document's operations,
//!   apply, compose, transform (and a three-state client for tests).
//! * [`store`] — SQLite persistence that every log shares: one writer
//!   thread per log, group commit, a read-only connection for old entries.
//! * [`accounts`] — accounts and sessions: names unique after NFC and case
//!   folding, Argon2id off the async workers, session lookups from memory.
//! * [`log`] — the heart: an ordered log read by cursor, waking waiting
//!   readers. Generic over its entries.
//! * [`room`] — the chat room: the messages' log, their table and writer
//!   (with resend keys).
//! * [`doc`] — the shared document: its operations' log, the text in a
//!   rope, the writer that transforms and stores each edit.
//! * [`presence`] — who edits the document where: carets as a third,
//!   in-memory log.
//! * [`lab`] — the teacher's latency, jitter and outage switches.
//! * [`limits`] — rate and connection limits per client address.
//! * [`stats`] — the counters behind `/api/stats`.
//! * [`error`] — every failure, mapped once to the contract's JSON.
//! * [`state`] — the state every handler shares.
//! * [`http`] — helpers every handler shares: JSON bodies, query numbers,
//!   `Server-Timing`, `Origin`, `Authorization`.
//! * [`identity`] — who is asking (address, session cookie, tab), and what
//!   follows: whose name a message carries, whose limits it counts against.
//! * [`transports`] — one thin adapter per transport, written once for any
//!   log: [`polling`](transports::polling),
//!   [`long_poll`](transports::long_poll),
//!   [`websocket`](transports::websocket), [`sse`](transports::sse), their
//!   shared [`feed`](transports::feed), plus the [`echo`](transports::echo)
//!   socket for playing with raw frames.
//! * [`chat`] — sending a message (one path for `POST` and the WebSocket),
//!   and the room as a [`Topic`](transports::Topic) of the transports.
//! * [`editing`] — submitting an edit (one path for `POST`, `PUT` and the
//!   WebSocket), the document's other endpoints, and the document as a
//!   topic of the transports.
//! * [`signin`] — signing up, in and out; the session cookie; the
//!   teacher's view of who is signed in.
//! * [`api`] — stats, lab, health: the endpoints that are not a log's.
//! * [`pages`] — the HTML pages.
//! * [`server`] — wiring, start and graceful stop.

pub mod accounts;
pub mod api;
pub mod chat;
pub mod config;
pub mod doc;
pub mod editing;
pub mod error;
pub mod http;
pub mod identity;
pub mod lab;
pub mod limits;
pub mod listen;
pub mod log;
pub mod message;
pub mod ot;
pub mod pages;
pub mod presence;
pub mod room;
pub mod server;
pub mod signin;
pub mod state;
pub mod stats;
pub mod store;
pub mod transports;
pub mod wire;

pub use config::Config;
pub use server::{Running, raise_open_files_limit, run, run_with, start, start_with};
pub use state::AppState;
