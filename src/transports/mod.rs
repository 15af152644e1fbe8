//! The five ways to read the room, one module each.
//!
//! Every transport is a thin adapter over the same [`Room`](crate::room::Room):
//! it keeps a cursor (the last id it delivered), asks the room for what is
//! newer, and writes it to the client in its own framing. Read them in the
//! order the lesson teaches them:
//!
//! 1. [`polling`] — `GET /api/messages`: answer at once, whether or not there
//!    is news. Both setInterval and setTimeout pages use it; the difference
//!    between them is entirely in the browser.
//! 2. [`long_poll`] — `GET /api/longpoll`: hold the request until there is
//!    news, then answer; the client asks again.
//! 3. [`websocket`] — `GET /api/ws`: upgrade to one persistent, two-way
//!    connection; push every message as a frame.
//! 4. [`sse`] — `GET /api/events`: one long HTTP response that never ends;
//!    push every message as an event. One-way, but reconnects by itself.
//! 5. [`echo`] — `GET /api/echo`: not a transport of the room, the classic
//!    WebSocket echo, for playing with raw frames.

pub mod echo;
pub mod feed;
pub mod long_poll;
pub mod polling;
pub mod sse;
pub mod websocket;
