//! # Weebsockets
//!
//! One chat room, one ordered message log, and five ways for a browser to
//! read it — so that a class can watch, side by side, why real-time on the
//! web is hard and how each fix behaves:
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
//! * [`room`] — the heart: the ordered log, cursors, waking waiting readers.
//! * [`store`] — SQLite persistence: one writer thread, group commit.
//! * [`message`] — the message, its validation, its pre-encoded wire forms.
//! * [`ot`] — the shared document's edits: operations, compose, transform
//!   (operational transformation), carets, and the three-state editor client.
//! * [`transports`] — one thin adapter per transport:
//!   [`polling`](transports::polling), [`long_poll`](transports::long_poll),
//!   [`websocket`](transports::websocket), [`sse`](transports::sse), plus the
//!   [`echo`](transports::echo) socket for playing with raw frames.
//! * [`api`] — sending (`POST /api/messages`), stats, lab, health, and the
//!   helpers every handler shares.
//! * [`lab`] — the teacher's latency, jitter and outage switches.
//! * [`limits`] — rate and connection limits per client address.
//! * [`stats`] — the counters behind `/api/stats`.
//! * [`error`] — every failure, mapped once to the contract's JSON.
//! * [`pages`] — the HTML pages.
//! * [`server`] — wiring, start and graceful stop.
//! * [`config`] — command-line flags.

pub mod api;
pub mod config;
pub mod error;
pub mod lab;
pub mod limits;
pub mod message;
pub mod ot;
pub mod pages;
pub mod room;
pub mod server;
pub mod stats;
pub mod store;
pub mod transports;

pub use config::Config;
pub use server::{AppState, Running, raise_open_files_limit, run, start};
