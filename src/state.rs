//! The state every handler shares, and its few small operations: open it,
//! refuse during the lab's outage, take a connection slot, tell long-lived
//! connections that the server is stopping.
//!
//! It sits below the transports and handlers (they all take a
//! `web::Data<AppState>`) and above the parts it holds, so that no module
//! needs the one that wires the routes (`server`).

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::watch;

use crate::accounts::{AccountError, Accounts, AccountsConfig, PasswordParams, SignInLimits};
use crate::config::Config;
use crate::doc::Document;
use crate::error::ApiError;
use crate::lab::Lab;
use crate::limits::{ConnectionLimiter, RateLimiter, Who};
use crate::presence::Presence;
use crate::room::Room;
use crate::stats::Stats;
use crate::store::{Database, StoreError};

/// Caret updates each editor may send per second: a caret moving while
/// someone types is sent at most every 100 ms by the pages.
pub const PRESENCE_RATE: f64 = 20.0;
/// How many caret updates an editor may send at once.
pub const PRESENCE_BURST: u32 = 40;

/// Accounts an address may create per second, after its burst: one every
/// three seconds.
pub const SIGNUP_RATE: f64 = 1.0 / 3.0;
/// Accounts an address may create at once: a class of 100 behind one
/// address signing up in the same minute.
pub const SIGNUP_BURST: u32 = 100;

/// Why the server's state could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The message or document store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The accounts' tables.
    #[error(transparent)]
    Accounts(#[from] AccountError),
}

/// Everything a handler may need, shared by all workers (actix wraps it in
/// an `Arc` as `web::Data<AppState>`).
pub struct AppState {
    /// The chat room.
    pub room: Room,
    /// The shared document.
    pub doc: Document,
    /// Accounts and sessions.
    pub accounts: Accounts,
    /// Who edits the document where (carets), in memory only.
    pub presence: Presence,
    /// Caret updates per second per editor.
    pub presence_rate: RateLimiter<String>,
    /// Accounts created per client address (each costs a password hash).
    pub signup_rate: RateLimiter<IpAddr>,
    /// The teacher's network lab.
    pub lab: Lab,
    /// Counters for `/api/stats`.
    pub stats: Stats,
    /// The flags the server was started with.
    pub config: Config,
    /// The token `PUT /api/lab` must present (from the flag, or generated).
    pub teacher_token: String,
    /// Messages per second per person.
    pub post_rate: RateLimiter<Who>,
    /// Messages per second per client address (the outer bound).
    pub post_rate_ip: RateLimiter<IpAddr>,
    /// Document edits per second per person (account, or editor `client`).
    pub doc_rate: RateLimiter<Who>,
    /// Document edits per second per client address (the outer bound).
    pub doc_rate_ip: RateLimiter<IpAddr>,
    /// Open WebSockets (every log's and echo), per person, per address and
    /// in total.
    pub ws_slots: Arc<ConnectionLimiter<Who>>,
    /// Open SSE streams, likewise.
    pub sse_slots: Arc<ConnectionLimiter<Who>>,
    /// Held long polls, likewise.
    pub longpoll_slots: Arc<ConnectionLimiter<Who>>,
    /// Flips to `true` once when the server begins shutting down, so that
    /// long-lived connections can say goodbye properly.
    closing: watch::Sender<bool>,
}

impl AppState {
    /// Opens the stores, loads the room, the document and the accounts,
    /// and sets up the limits.
    pub fn open(config: Config) -> Result<AppState, OpenError> {
        let db = Database::open(&config.db, config.sync)?;
        let room = Room::open(db, config.memory_window, config.write_queue)?;
        // The document has a writer (and so a connection) of its own.
        let db = Database::open(&config.db, config.sync)?;
        let doc = Document::open(
            db,
            config.doc_max_chars,
            config.memory_window,
            config.write_queue,
        )?;
        let accounts = Accounts::open(
            &config.db,
            AccountsConfig {
                session_days: config.session_days,
                teacher: config.teacher.clone(),
                password: if config.insecure_fast_passwords {
                    PasswordParams::FAST_FOR_TESTS
                } else {
                    PasswordParams::DEFAULT
                },
                sign_in_limits: if config.no_limits {
                    SignInLimits::UNLIMITED
                } else {
                    SignInLimits::DEFAULT
                },
                ..AccountsConfig::default()
            },
        )?;
        let teacher_token = config
            .teacher_token
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(generate_token);
        let rate = |rate: f64| if config.no_limits { 0.0 } else { rate };
        Ok(AppState {
            room,
            doc,
            accounts,
            presence: Presence::new(),
            presence_rate: RateLimiter::new(rate(PRESENCE_RATE), PRESENCE_BURST),
            signup_rate: RateLimiter::new(rate(SIGNUP_RATE), SIGNUP_BURST),
            lab: Lab::new(),
            stats: Stats::default(),
            teacher_token,
            post_rate: RateLimiter::new(rate(config.post_rate), config.post_burst),
            post_rate_ip: RateLimiter::new(rate(config.post_rate_per_ip), config.post_burst_per_ip),
            doc_rate: RateLimiter::new(rate(config.doc_op_rate), config.doc_op_burst),
            doc_rate_ip: RateLimiter::new(
                rate(config.doc_op_rate_per_ip),
                config.doc_op_burst_per_ip,
            ),
            ws_slots: ConnectionLimiter::new(
                "WebSocket connections",
                config.limit(config.ws_per_person),
                config.limit(config.ws_per_ip),
                config.limit(config.ws_total),
            ),
            sse_slots: ConnectionLimiter::new(
                "event streams",
                config.limit(config.sse_per_person),
                config.limit(config.sse_per_ip),
                config.limit(config.sse_total),
            ),
            longpoll_slots: ConnectionLimiter::new(
                "held long polls",
                config.limit(config.longpoll_per_person),
                config.limit(config.longpoll_per_ip),
                config.limit(config.longpoll_total),
            ),
            closing: watch::channel(false).0,
            config,
        })
    }

    /// `503 outage` while the lab's outage is on.
    pub fn check_outage(&self) -> Result<(), ApiError> {
        if self.lab.outage() {
            Err(ApiError::Outage)
        } else {
            Ok(())
        }
    }

    /// True once shutdown has begun.
    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Resolves when the server begins shutting down.
    pub fn closing(&self) -> impl std::future::Future<Output = ()> + use<> {
        let mut rx = self.closing.subscribe();
        async move {
            // An error means the sender is gone, i.e. the state is dropped:
            // also a reason to stop.
            let _ = rx.wait_for(|closing| *closing).await;
        }
    }

    /// Tells every long-lived connection to close (first step of shutdown).
    pub fn begin_close(&self) {
        self.closing.send_replace(true);
    }

    /// Commits what is queued and stops the writers (last step of shutdown).
    pub async fn flush_and_stop(&self) {
        tokio::join!(self.room.flush_and_stop(), self.doc.flush_and_stop());
    }
}

/// A token that is easy to read off a projector and type on a laptop:
/// three groups of four from an alphabet without look-alikes (no 0/O, 1/l).
fn generate_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut token = String::with_capacity(14);
    for i in 0..12 {
        if i > 0 && i % 4 == 0 {
            token.push('-');
        }
        token.push(ALPHABET[rand::random_range(0..ALPHABET.len())] as char);
    }
    token
}
