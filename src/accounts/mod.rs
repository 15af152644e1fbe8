//! Accounts: so that nobody can write under somebody else's name.
//!
//! This module is the storage, crypto and session core; the HTTP layer
//! (`POST /api/accounts`, `/api/session`, the cookie, the Origin check) is
//! built on it. The lesson it shows: **a server that must know who you are
//! on every request needs that answer to cost nothing** — while proving a
//! password must cost a lot.
//!
//! * *Proving* who you are happens once, at sign-in: an Argon2id hash, tens
//!   of milliseconds of CPU and megabytes of memory on purpose
//!   ([`password`]). It runs on tokio's blocking pool, a bounded number at a
//!   time, so a class signing in at once never stalls the room.
//! * *Being* someone afterwards is a random 256-bit session token in a
//!   cookie ([`session`]). Every request of a signed-in student looks it up:
//!   [`Accounts::session`] is a SHA-256 and a hash-map lookup in memory, no
//!   I/O. So is [`Accounts::is_account_name`], which every guest's message
//!   goes through.
//! * *Ending* a session (sign-out, the teacher, expiry) takes effect at once:
//!   the in-memory entry goes, and every open WebSocket or event stream of
//!   that session, `select!`ing on [`Accounts::ended`], is woken and closes.
//!
//! SQLite (the `accounts` and `sessions` tables, [`db`]) is the durable copy.
//! Every change is made on disk and in memory while holding the database
//! connection's lock, so the two change in the same order and a restart
//! finds the same accounts and sessions. New things are written to disk
//! first (an account that failed to store never existed); ended sessions
//! leave memory first (the cookie stops working at once, even if the disk
//! is in trouble). Every SQLite call runs on the blocking pool too.
//!
//! One server per database file: the in-memory copy is the truth for
//! sign-ins, so accounts created by another process sharing the file are
//! not seen until a restart (the `UNIQUE` constraint still keeps names
//! unique across both).
//!
//! # Errors and codes
//!
//! | error | status | code |
//! | --- | --- | --- |
//! | name breaks the author's rules | 422 | `invalid_name` |
//! | password not 8..=128 characters | 422 | `invalid_password` |
//! | name taken (in any case, any normalisation) | 409 | `name_taken` |
//! | the teacher's name without the teacher token | 403 | `name_reserved` |
//! | unknown name or wrong password (one answer) | 401 | `bad_credentials` |
//! | too many failed sign-ins, name or address | 429 + `Retry-After` | `rate_limited` |
//! | ending the sessions of a name nobody has | 404 | `no_such_account` |
//! | the database or the hasher failed | 500 | `store_failed`, `hash_failed` |

pub mod clock;
pub mod db;
pub mod error;
pub mod name;
pub mod password;
pub mod session;
pub mod throttle;

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{Notify, oneshot, watch};

pub use clock::{Clock, MAX_SYSTEM_SLEEP, ManualClock, Sleep, SystemClock};
pub use db::BUSY_TIMEOUT;
pub use error::{AccountError, retry_secs};
pub use name::{AccountName, InvalidName};
pub use password::{
    Hasher, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordParams, PhcString, hash_blocking,
    validate_password, verify_blocking,
};
pub use session::{Role, Session, SessionId, SessionToken, SignedIn, SignedInUser};
pub use throttle::SignInLimits;

use db::SessionRow;
use throttle::Throttle;

/// Default for `--session-days`.
pub const DEFAULT_SESSION_DAYS: u32 = 30;

/// Most live sessions one account may have (browsers, phones, private
/// windows). Signing in once more ends the oldest: without a cap, a script
/// that signs in in a loop would grow the server's memory without bound.
pub const MAX_SESSIONS_PER_ACCOUNT: usize = 32;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// How the accounts behave; the server fills it from its flags.
#[derive(Debug, Clone)]
pub struct AccountsConfig {
    /// `--session-days`: a session ends this many days after its sign-in
    /// (at least 1; the flag should refuse 0).
    pub session_days: u32,
    /// `--teacher NAME`: the name reserved for the teacher.
    pub teacher: Option<String>,
    /// Argon2id costs for new hashes.
    pub password: PasswordParams,
    /// How many hashes may run at once (see [`default_hash_concurrency`]).
    pub hash_concurrency: usize,
    /// Failed sign-ins tolerated per name and per address.
    pub sign_in_limits: SignInLimits,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            session_days: DEFAULT_SESSION_DAYS,
            teacher: None,
            password: PasswordParams::DEFAULT,
            hash_concurrency: default_hash_concurrency(),
            sign_in_limits: SignInLimits::DEFAULT,
        }
    }
}

/// Half the cores, at least one: hashing may take that much of the machine
/// during a burst of sign-ins, and the room keeps the rest.
pub fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// The accounts and sessions: one cheap-to-clone handle shared by every
/// worker.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Deliberately no accounts, hashes or sessions.
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

struct Inner {
    /// The connection to the `accounts` and `sessions` tables. Locked only
    /// on the blocking pool (or the expiry thread), and every change to
    /// [`Inner::cache`] is made while holding it, so memory and disk change
    /// in the same order.
    db: Mutex<Connection>,
    /// What every hot path reads. A std `RwLock`: held for a hash-map
    /// lookup, never across an `.await`.
    cache: RwLock<Cache>,
    /// Argon2id on the blocking pool, bounded.
    hasher: Hasher,
    /// Failed sign-ins per name and per address.
    throttle: Throttle,
    /// Where "now" comes from (injectable for tests of expiry).
    clock: Arc<dyn Clock>,
    /// A session's lifetime, in ms.
    lifetime_ms: u64,
    /// The key of `--teacher`, if given.
    teacher_key: Option<String>,
    /// Wakes the expiry thread when a session is added, in case it was
    /// sleeping with nothing to expire.
    sessions_added: Arc<Notify>,
    /// The next [`SessionEntry::seq`].
    next_seq: AtomicU64,
    /// Dropped with the last handle: tells the expiry thread to stop.
    _stop_expiry: oneshot::Sender<()>,
}

#[derive(Default)]
struct Cache {
    /// By name key.
    accounts: HashMap<String, Arc<Account>>,
    /// By session id (the SHA-256 of the token).
    sessions: HashMap<SessionId, Arc<SessionEntry>>,
}

/// An account in memory.
struct Account {
    id: i64,
    key: String,
    name: Arc<str>,
    role: Role,
    phc: PhcString,
}

/// A live session in memory.
struct SessionEntry {
    id: SessionId,
    account: Arc<Account>,
    /// Order of sign-in (older is smaller), for the per-account cap: two
    /// sign-ins in the same millisecond still have an order.
    seq: u64,
    expires_at_ms: u64,
    /// Updated by every lookup: an atomic, so lookups need only the read
    /// lock.
    last_seen_ms: AtomicU64,
    /// Flips to `true` when the session ends. Connection tasks wait on it
    /// through [`Accounts::ended`].
    ended: watch::Sender<bool>,
}

impl SessionEntry {
    fn new(account: Arc<Account>, row: &SessionRow, seq: u64) -> SessionEntry {
        SessionEntry {
            id: row.id,
            account,
            seq,
            expires_at_ms: row.expires_at_ms,
            last_seen_ms: AtomicU64::new(row.created_at_ms),
            ended: watch::Sender::new(false),
        }
    }

    fn session(&self) -> Session {
        Session {
            id: self.id,
            name: Arc::clone(&self.account.name),
            role: self.account.role,
            expires_at_ms: self.expires_at_ms,
        }
    }
}

impl Cache {
    /// Removes one session from memory and wakes everything waiting for
    /// its end.
    fn end(&mut self, id: &SessionId) -> bool {
        match self.sessions.remove(id) {
            Some(entry) => {
                entry.ended.send_replace(true);
                true
            }
            None => false,
        }
    }
}

impl Accounts {
    /// Opens the accounts in the database at `path` — the message store's
    /// file, through a connection of its own — or in a private in-memory
    /// database for `:memory:`. Creates the tables on first start, drops
    /// sessions that expired while the server was stopped, loads the rest,
    /// and starts the expiry thread.
    ///
    /// Blocks (SQLite, and one Argon2 hash for the dummy): call it at
    /// start-up, like `Store::open`.
    pub fn open(path: &Path, config: AccountsConfig) -> Result<Accounts, AccountError> {
        Accounts::open_with_clock(path, config, Arc::new(SystemClock))
    }

    /// [`Accounts::open`] with another clock (tests of expiry use a
    /// [`ManualClock`]).
    pub fn open_with_clock(
        path: &Path,
        config: AccountsConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Accounts, AccountError> {
        let teacher_key = match &config.teacher {
            Some(teacher) => Some(AccountName::parse(teacher)?.key),
            None => None,
        };
        let mut conn = db::open(path)?;
        let loaded = db::load(&mut conn, clock.now_ms())?;

        let mut cache = Cache::default();
        let mut by_id = HashMap::new();
        for row in loaded.accounts {
            let is_teacher_name = teacher_key.as_deref() == Some(row.key.as_str());
            // The teacher's role follows the flag: an account stored as
            // teacher whose name is no longer `--teacher` is a student now.
            // The other way round is refused on purpose: a student who took
            // the name before the flag named it does not become the teacher.
            let role = match (row.role, is_teacher_name) {
                (Role::Teacher, true) => Role::Teacher,
                (Role::Student, true) => {
                    tracing::warn!(
                        name = %row.name,
                        "--teacher names an account that was created as a student; it stays a student"
                    );
                    Role::Student
                }
                (_, false) => Role::Student,
            };
            let account = Arc::new(Account {
                id: row.id,
                key: row.key,
                name: row.name.into(),
                role,
                phc: row.phc,
            });
            by_id.insert(account.id, Arc::clone(&account));
            cache.accounts.insert(account.key.clone(), account);
        }
        let mut sessions = loaded.sessions;
        sessions.sort_by_key(|(_, row)| row.created_at_ms);
        let next_seq = sessions.len() as u64;
        for (seq, (account_id, row)) in sessions.into_iter().enumerate() {
            // The foreign key makes a session without its account impossible.
            if let Some(account) = by_id.get(&account_id) {
                let entry = SessionEntry::new(Arc::clone(account), &row, seq as u64);
                cache.sessions.insert(row.id, Arc::new(entry));
            }
        }

        let (stop_expiry, stopped) = oneshot::channel();
        let inner = Arc::new(Inner {
            db: Mutex::new(conn),
            cache: RwLock::new(cache),
            hasher: Hasher::new(config.password, config.hash_concurrency)?,
            throttle: Throttle::new(config.sign_in_limits),
            clock,
            lifetime_ms: u64::from(config.session_days.max(1)) * DAY_MS,
            teacher_key,
            sessions_added: Arc::new(Notify::new()),
            next_seq: AtomicU64::new(next_seq),
            _stop_expiry: stop_expiry,
        });
        spawn_expiry_thread(&inner, stopped)?;
        Ok(Accounts { inner })
    }

    /// Creates an account and signs it in. `teacher_token_proved`: the
    /// request carried the teacher token (the HTTP layer checked it); only
    /// then may the `--teacher` name be created, and it gets
    /// [`Role::Teacher`].
    pub async fn create(
        &self,
        name: &str,
        password: &str,
        teacher_token_proved: bool,
    ) -> Result<SignedIn, AccountError> {
        let name = AccountName::parse(name)?;
        validate_password(password)?;
        let role = if self.inner.teacher_key.as_deref() == Some(name.key.as_str()) {
            if !teacher_token_proved {
                return Err(AccountError::NameReserved);
            }
            Role::Teacher
        } else {
            Role::Student
        };
        // A cheap early answer; the database's UNIQUE constraint decides
        // for two creations racing each other.
        if self.read_cache().accounts.contains_key(&name.key) {
            return Err(AccountError::NameTaken);
        }
        let phc = self.inner.hasher.hash(password).await?;
        let (token, row) = self.new_session_row()?;
        self.with_db(move |inner, conn| {
            let account_id = db::insert_account(conn, &name.key, &name.display, role, &phc, &row)?;
            let account = Arc::new(Account {
                id: account_id,
                key: name.key,
                name: name.display.into(),
                role,
                phc,
            });
            let seq = inner.next_seq.fetch_add(1, Ordering::Relaxed);
            let entry = Arc::new(SessionEntry::new(Arc::clone(&account), &row, seq));
            let session = entry.session();
            let mut cache = inner.write_cache();
            cache.accounts.insert(account.key.clone(), account);
            cache.sessions.insert(row.id, entry);
            drop(cache);
            inner.sessions_added.notify_one();
            Ok(SignedIn { token, session })
        })
        .await
    }

    /// Signs in: a new session (and a new token: never one the client
    /// brought along, so a planted cookie cannot become a signed-in one).
    ///
    /// An unknown name and a wrong password give the same error after the
    /// same work (one Argon2 verification). Too many failures for this
    /// name, or from this address, are refused before any work with
    /// [`AccountError::RateLimited`].
    pub async fn sign_in(
        &self,
        name: &str,
        password: &str,
        from: IpAddr,
    ) -> Result<SignedIn, AccountError> {
        let key = name::key_of(name);
        let now = self.inner.clock.now_ms();
        self.inner
            .throttle
            .begin(key.as_deref(), from, now)
            .map_err(AccountError::RateLimited)?;
        let account = key
            .as_deref()
            .and_then(|key| self.read_cache().accounts.get(key).cloned());
        let matched = self
            .inner
            .hasher
            .verify(account.as_ref().map(|a| &a.phc), password)
            .await?;
        let (Some(account), true) = (account, matched) else {
            return Err(AccountError::BadCredentials);
        };
        self.inner
            .throttle
            .succeeded(&account.key, from, self.inner.clock.now_ms());

        let (token, row) = self.new_session_row()?;
        self.with_db(move |inner, conn| {
            // The oldest sessions beyond the cap make room for this one.
            let mut own: Vec<(u64, SessionId)> = inner
                .read_cache()
                .sessions
                .values()
                .filter(|s| s.account.id == account.id)
                .map(|s| (s.seq, s.id))
                .collect();
            own.sort_unstable_by_key(|(seq, _)| *seq);
            let excess = (own.len() + 1).saturating_sub(MAX_SESSIONS_PER_ACCOUNT);
            let replaced: Vec<SessionId> = own.iter().take(excess).map(|(_, id)| *id).collect();

            db::insert_session(conn, account.id, &row, &replaced)?;
            let seq = inner.next_seq.fetch_add(1, Ordering::Relaxed);
            let entry = Arc::new(SessionEntry::new(account, &row, seq));
            let session = entry.session();
            let mut cache = inner.write_cache();
            for old in &replaced {
                cache.end(old);
            }
            cache.sessions.insert(row.id, entry);
            drop(cache);
            inner.sessions_added.notify_one();
            Ok(SignedIn { token, session })
        })
        .await
    }

    /// The live session a cookie belongs to, or `None` (no such session,
    /// ended, expired, or not even a well-formed token). Memory only: one
    /// SHA-256 and one hash-map lookup. Counts as the session being seen.
    pub fn session(&self, token: &str) -> Option<Session> {
        let id = SessionId::parse_token(token)?;
        let now = self.inner.clock.now_ms();
        let cache = self.read_cache();
        let entry = cache.sessions.get(&id)?;
        // Expired but not yet swept by the expiry thread: already dead.
        if now >= entry.expires_at_ms {
            return None;
        }
        entry.last_seen_ms.fetch_max(now, Ordering::Relaxed);
        Some(entry.session())
    }

    /// Signs out: the session ends, here and on disk. True if there was a
    /// live session for this token.
    pub async fn sign_out(&self, token: &str) -> Result<bool, AccountError> {
        let Some(id) = SessionId::parse_token(token) else {
            return Ok(false);
        };
        self.with_db(move |inner, conn| {
            // Memory first, so that the cookie stops working at once even
            // if the disk is in trouble; then the disk, so that it stays
            // ended after a restart.
            let ended = inner.write_cache().end(&id);
            db::delete_session(conn, &id)?;
            Ok(ended)
        })
        .await
    }

    /// Ends every session of the account `name` (the teacher's "sign this
    /// student out everywhere"). How many there were.
    pub async fn end_sessions_of(&self, name: &str) -> Result<usize, AccountError> {
        let account = name::key_of(name)
            .and_then(|key| self.read_cache().accounts.get(&key).cloned())
            .ok_or(AccountError::NoSuchAccount)?;
        self.with_db(move |inner, conn| {
            let mut cache = inner.write_cache();
            let ids: Vec<SessionId> = cache
                .sessions
                .values()
                .filter(|s| s.account.id == account.id)
                .map(|s| s.id)
                .collect();
            for id in &ids {
                cache.end(id);
            }
            drop(cache);
            db::delete_sessions_of(conn, account.id)?;
            Ok(ids.len())
        })
        .await
    }

    /// Resolves when the session `id` ends — signed out, ended by the
    /// teacher, expired, or replaced — and at once if it is not live now.
    /// A WebSocket or event-stream task `select!`s on it next to its other
    /// events and closes when it fires. Backed by a `watch` channel: no
    /// polling, and it holds no lock.
    pub fn ended(&self, id: &SessionId) -> impl Future<Output = ()> + Send + 'static {
        let waiting = self
            .read_cache()
            .sessions
            .get(id)
            .map(|entry| entry.ended.subscribe());
        async move {
            if let Some(mut ended) = waiting {
                // Err: the entry was dropped without ending, which cannot
                // happen while it is live; either way it is over.
                let _ = ended.wait_for(|ended| *ended).await;
            }
        }
    }

    /// Whether a guest may not use `name` as an author: it belongs to an
    /// account (compared like account names: NFC and case folded), or it
    /// is the teacher's reserved name. Memory only.
    pub fn is_account_name(&self, name: &str) -> bool {
        let Some(key) = name::key_of(name) else {
            return false;
        };
        self.inner.teacher_key.as_deref() == Some(key.as_str())
            || self.read_cache().accounts.contains_key(&key)
    }

    /// Who is signed in, for the teacher's dashboard: every account with a
    /// live session, in name order.
    pub fn signed_in(&self) -> Vec<SignedInUser> {
        let now = self.inner.clock.now_ms();
        let cache = self.read_cache();
        let mut by_account: HashMap<i64, (&Account, usize, u64)> = HashMap::new();
        for entry in cache.sessions.values() {
            if now >= entry.expires_at_ms {
                continue;
            }
            let seen = entry.last_seen_ms.load(Ordering::Relaxed);
            let row = by_account
                .entry(entry.account.id)
                .or_insert((&entry.account, 0, 0));
            row.1 += 1;
            row.2 = row.2.max(seen);
        }
        let mut list: Vec<(&str, SignedInUser)> = by_account
            .into_values()
            .map(|(account, sessions, last_seen_ms)| {
                (
                    account.key.as_str(),
                    SignedInUser {
                        name: account.name.to_string(),
                        role: account.role,
                        sessions,
                        last_seen_ms,
                    },
                )
            })
            .collect();
        list.sort_unstable_by(|a, b| a.0.cmp(b.0));
        list.into_iter().map(|(_, user)| user).collect()
    }

    /// How long a new session lives (the cookie's `Max-Age`).
    pub fn session_lifetime(&self) -> Duration {
        Duration::from_millis(self.inner.lifetime_ms)
    }

    /// How many hashes may run at once.
    pub fn hash_concurrency(&self) -> usize {
        self.inner.hasher.concurrency()
    }

    /// A fresh token, and the row its session will be stored as.
    fn new_session_row(&self) -> Result<(SessionToken, SessionRow), AccountError> {
        let token = SessionToken::generate()?;
        let now = self.inner.clock.now_ms();
        let row = SessionRow {
            id: token.id(),
            created_at_ms: now,
            expires_at_ms: now.saturating_add(self.inner.lifetime_ms),
        };
        Ok((token, row))
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.inner.read_cache()
    }

    /// Runs `work` with the database connection on tokio's blocking pool.
    async fn with_db<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner, &mut Connection) -> Result<T, AccountError> + Send + 'static,
    ) -> Result<T, AccountError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.lock_db();
            work(&inner, &mut conn)
        })
        .await?
    }
}

impl Inner {
    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        // A panic while holding the lock leaves the maps as they were
        // between two whole operations (every change is one insert or
        // remove), so a poisoned lock is still safe to use.
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        // See read_cache.
        self.cache.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A transaction interrupted by a panic rolls back when it is
        // dropped, so the connection is fine to use after one.
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the sessions whose time is up, on disk and in memory.
    fn expire(&self) {
        let now = self.clock.now_ms();
        let due = self
            .read_cache()
            .sessions
            .values()
            .any(|s| now >= s.expires_at_ms);
        if !due {
            return;
        }
        let conn = self.lock_db();
        if let Err(err) = db::delete_expired(&conn, now) {
            // They are ended in memory anyway; the next start deletes them.
            tracing::error!(%err, "could not delete expired sessions");
        }
        let mut cache = self.write_cache();
        let expired: Vec<SessionId> = cache
            .sessions
            .values()
            .filter(|s| now >= s.expires_at_ms)
            .map(|s| s.id)
            .collect();
        for id in &expired {
            cache.end(id);
        }
    }

    /// When the next session expires.
    fn next_expiry(&self) -> Option<u64> {
        self.read_cache()
            .sessions
            .values()
            .map(|s| s.expires_at_ms)
            .min()
    }
}

/// Starts the thread that ends sessions when their time is up, so that an
/// open WebSocket of an expired session closes without anyone asking. It
/// sleeps until the next expiry (or a new session), on the clock of the
/// accounts, in a small runtime of its own — so it does not depend on which
/// runtime opened the accounts — and stops when the last handle is dropped.
fn spawn_expiry_thread(
    inner: &Arc<Inner>,
    mut stopped: oneshot::Receiver<()>,
) -> Result<(), AccountError> {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let clock = Arc::clone(&inner.clock);
    let added = Arc::clone(&inner.sessions_added);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| AccountError::Store(format!("could not start the expiry thread: {e}")))?;
    std::thread::Builder::new()
        .name("accounts-expiry".into())
        .spawn(move || {
            runtime.block_on(async move {
                loop {
                    // Hold the accounts only while working, never while
                    // sleeping: the last handle's drop must be able to stop
                    // this thread.
                    let next = match weak.upgrade() {
                        Some(inner) => {
                            inner.expire();
                            inner.next_expiry()
                        }
                        None => return,
                    };
                    tokio::select! {
                        // The next expiry is due (or, with the system
                        // clock, a minute has passed: see MAX_SYSTEM_SLEEP).
                        () = clock.sleep_until(next.unwrap_or(u64::MAX)) => {}
                        // A new session may expire before `next`, or there
                        // was none to wait for.
                        () = added.notified() => {}
                        // The last handle is gone.
                        _ = &mut stopped => return,
                    }
                }
            });
        })
        .map_err(|e| AccountError::Store(format!("could not start the expiry thread: {e}")))?;
    Ok(())
}
