//! Persistence: the message log in SQLite, written by one thread with group
//! commit.
//!
//! # Why one writer thread
//!
//! SQLite calls block: a commit waits for the disk (`fsync`). Doing that on
//! an async worker would stall every connection that worker serves. So the
//! store owns a plain OS thread, the *writer*, and handlers talk to it over a
//! channel: they send a validated [`NewMessage`] and `.await` a oneshot reply.
//!
//! # Why group commit
//!
//! While the writer is busy with one commit, more messages queue up. The
//! writer takes *all* of them (up to [`MAX_BATCH`]) into the next
//! transaction, so 200 messages arriving together cost one `fsync`, not 200.
//! Nobody waits longer than one commit for their batch to start.
//!
//! # Why the writer assigns ids
//!
//! Ids are handed out inside the transaction and only kept when the commit
//! succeeds. A failed commit gives its ids back, so the contract holds: ids
//! have no gaps, a rejected message takes no id, and (because the next id is
//! read from the table at start) ids are never reused after a crash. Only
//! after the commit does the writer *publish* the batch to the room, so
//! readers never see a message that is not yet durable.
//!
//! # Why the writer recognises resends
//!
//! A page whose `POST` timed out cannot know whether the message was stored;
//! it sends it again with the same `key`. Checking "is this key stored
//! already?" and then inserting must happen as one step, or two copies sent
//! at the same moment would both see "no" and both be stored. The writer is
//! the one place where appends happen one after another, so the check lives
//! here: the writer keeps the keys of the newest [`KEYS_REMEMBERED`]
//! messages in memory (loaded from the table at start, so a resend after a
//! restart is recognised too) and answers a repeat with the message stored
//! the first time.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use crate::config::SyncMode;
use crate::message::{Message, NewMessage, StoredMessage, Via};

/// Most messages one transaction takes. Bounds the work (and latency) of one
/// commit under a flood; ordinary classroom traffic never comes near it.
pub const MAX_BATCH: usize = 1024;

/// Resend keys are recognised for (at least) the newest this many messages
/// (contract v2).
pub const KEYS_REMEMBERED: u64 = 10_000;

/// Store failures. They reach clients as `500 store_failed` (or `503` while
/// the server is shutting down), with a plain sentence: the details, which
/// may name tables and columns, go to the server's log only.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused something.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer thread has stopped (the server is shutting down).
    #[error("the message store is shutting down")]
    Closed,
    /// Too many messages are already waiting for the writer.
    #[error("the message store is busy")]
    Busy,
    /// A commit failed; the whole batch was refused.
    #[error("could not store the message: {0}")]
    Write(String),
    /// A thread or blocking task could not run.
    #[error("database task failed: {0}")]
    Task(String),
}

/// What an append did.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The message as stored, id assigned.
    pub message: Arc<StoredMessage>,
    /// False when the message was a resend: its key was stored already, and
    /// `message` is what was stored the first time.
    pub created: bool,
}

/// The writer's answer to one append.
type Reply = oneshot::Sender<Result<Appended, StoreError>>;

/// What the writer is asked to do.
enum Command {
    /// Store this message (unless it is a resend) and reply with it.
    Append(NewMessage, Reply),
    /// Finish what is queued, then stop.
    Stop(oneshot::Sender<()>),
}

/// The database, opened and checked, before the writer starts.
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
    last_id: u64,
    keys: Keys,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, or an in-memory
    /// one for `:memory:`, and creates the schema on first start.
    pub fn open(path: &Path, sync: SyncMode) -> Result<Store, StoreError> {
        let in_memory = path.as_os_str() == ":memory:";
        let conn = if in_memory {
            Connection::open_in_memory()?
        } else {
            Connection::open(path)?
        };
        // WAL lets the reader connection read while the writer commits, and
        // makes each commit one sequential append to the log file.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match sync {
                SyncMode::Full => "FULL",
                SyncMode::Normal => "NORMAL",
            },
        )?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS messages (
                 id      INTEGER PRIMARY KEY,
                 author  TEXT    NOT NULL,
                 text    TEXT    NOT NULL,
                 sent_at INTEGER NOT NULL,
                 via     TEXT    NOT NULL,
                 key     TEXT
             ) STRICT;",
        )?;
        // A database made before resend keys existed lacks the column.
        let has_key: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('messages') WHERE name = 'key'",
            [],
            |row| row.get(0),
        )?;
        if !has_key {
            conn.execute_batch("ALTER TABLE messages ADD COLUMN key TEXT;")?;
        }
        let last_id = max_id(&conn)?;
        let keys = Keys::load(&conn, last_id)?;
        Ok(Store {
            conn,
            path: (!in_memory).then(|| path.to_owned()),
            last_id,
            keys,
        })
    }

    /// True for a `:memory:` database.
    pub fn is_memory(&self) -> bool {
        self.path.is_none()
    }

    /// The newest stored id (0 for an empty log).
    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// The newest `count` messages, oldest first: what the room keeps in
    /// memory after a restart.
    pub fn recent(&self, count: usize) -> Result<Vec<Message>, StoreError> {
        let since = self.last_id.saturating_sub(count as u64);
        read_range(&self.conn, since, count)
    }

    /// A second, read-only connection, for readers that are further behind
    /// than the room's memory window. `None` for an in-memory database,
    /// which cannot be opened twice (the room then keeps the whole log in
    /// memory instead).
    pub fn reader(&self) -> Result<Option<Reader>, StoreError> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Ok(Some(Reader {
            conn: Arc::new(Mutex::new(conn)),
        }))
    }

    /// Starts the writer thread. `publish` is called on that thread after
    /// each successful commit, with the batch in id order.
    pub fn start(
        self,
        queue: usize,
        publish: impl Fn(&[Arc<StoredMessage>]) + Send + 'static,
    ) -> Result<StoreHandle, StoreError> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let writer = Writer {
            conn: self.conn,
            next_id: self.last_id + 1,
            keys: self.keys,
        };
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx, publish))
            .map_err(|e| StoreError::Task(e.to_string()))?;
        Ok(StoreHandle {
            tx,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }
}

/// Reads old messages from disk (see [`Store::reader`]); cheap to clone.
#[derive(Clone)]
pub struct Reader {
    conn: Arc<Mutex<Connection>>,
}

impl Reader {
    /// Messages with `id > since`, oldest first, at most `limit`. Runs on
    /// tokio's blocking pool: SQLite calls block.
    pub async fn read_since(&self, since: u64, limit: usize) -> Result<Vec<Message>, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // unwrap: the lock is only poisoned if a reader panicked, which
            // read_range does not do.
            let conn = conn.lock().unwrap();
            read_range(&conn, since, limit)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

/// A cheap-to-clone handle to the running store.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Command>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl StoreHandle {
    /// Queues `msg` for the writer and waits until it is committed (or
    /// recognised as a resend of a stored message).
    pub async fn append(&self, msg: NewMessage) -> Result<Appended, StoreError> {
        let (reply, answer) = oneshot::channel();
        // try_send, not send().await: a full queue is answered at once with
        // 503 instead of piling up waiting requests.
        self.tx
            .try_send(Command::Append(msg, reply))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Busy,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits everything queued, stops the writer and waits for it. Safe to
    /// call more than once.
    pub async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.tx.send(Command::Stop(done)).await.is_ok() {
            let _ = finished.await;
        }
        // unwrap: the lock is only poisoned if a holder panicked; none can.
        let thread = self.thread.lock().unwrap().take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// The writer thread's state: the only connection that writes.
struct Writer {
    conn: Connection,
    /// The id the next stored message gets.
    next_id: u64,
    /// Resend keys of the newest messages.
    keys: Keys,
}

/// One append of a batch, once the writer has looked at its key.
enum Slot {
    /// A new message: gets the next id.
    New(NewMessage, Reply),
    /// A resend of a message stored before this batch.
    Stored(Arc<StoredMessage>, Reply),
    /// A resend of the `n`th new message of this same batch.
    Earlier(usize, Reply),
}

impl Writer {
    /// Take a batch, commit it, publish it, reply; until told to stop.
    fn run(mut self, mut rx: mpsc::Receiver<Command>, publish: impl Fn(&[Arc<StoredMessage>])) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut stop = None;
        // blocking_recv parks this OS thread until work arrives: no busy loop.
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            // Group commit: everything already waiting joins this transaction.
            while let Some(cmd) = next.take() {
                match cmd {
                    Command::Append(msg, reply) => batch.push((msg, reply)),
                    Command::Stop(done) => {
                        stop = Some(done);
                        break;
                    }
                }
                if batch.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit(batch.drain(..), &publish);
            }
            if let Some(done) = stop.take() {
                let _ = done.send(());
                return;
            }
        }
    }

    /// Commits one batch: resends are answered with what was stored before,
    /// new messages get consecutive ids in one transaction.
    fn commit(
        &mut self,
        batch: impl Iterator<Item = (NewMessage, Reply)>,
        publish: &impl Fn(&[Arc<StoredMessage>]),
    ) {
        // Sort out the resends first. A key seen earlier in this same batch
        // is a resend too: the two copies arrived in one group commit.
        let mut in_batch: HashMap<(String, String), usize> = HashMap::new();
        let mut new = 0;
        let slots: Vec<Slot> = batch
            .map(|(msg, reply)| {
                let Some(key) = msg.key.clone() else {
                    new += 1;
                    return Slot::New(msg, reply);
                };
                if let Some(stored) = self.keys.get(&msg.author, &key) {
                    return Slot::Stored(stored, reply);
                }
                let author_key = (msg.author.clone(), key);
                if let Some(&earlier) = in_batch.get(&author_key) {
                    return Slot::Earlier(earlier, reply);
                }
                in_batch.insert(author_key, new);
                new += 1;
                Slot::New(msg, reply)
            })
            .collect();

        let sent_at = now_ms();
        let first_id = self.next_id;
        let result = (|| -> Result<(), rusqlite::Error> {
            let tx = self.conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO messages (id, author, text, sent_at, via, key) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                let new_messages = slots.iter().filter_map(|slot| match slot {
                    Slot::New(msg, _) => Some(msg),
                    _ => None,
                });
                for (offset, msg) in new_messages.enumerate() {
                    insert.execute(params![
                        (first_id + offset as u64) as i64,
                        msg.author,
                        msg.text,
                        sent_at as i64,
                        msg.via.as_str(),
                        msg.key,
                    ])?;
                }
            }
            tx.commit()
        })();

        if let Err(err) = result {
            tracing::error!(%err, "commit failed; the batch is refused and its ids reused");
            // Re-read the newest id rather than trusting our counter: if the
            // commit did reach the disk after all, its ids must not be reused.
            if let Ok(last) = max_id(&self.conn) {
                self.next_id = last + 1;
            }
            let text = err.to_string();
            for slot in slots {
                let reply = match slot {
                    Slot::New(_, reply) | Slot::Stored(_, reply) | Slot::Earlier(_, reply) => reply,
                };
                let _ = reply.send(Err(StoreError::Write(text.clone())));
            }
            return;
        }

        let mut stored = Vec::with_capacity(new);
        let mut replies = Vec::with_capacity(slots.len());
        for slot in slots {
            match slot {
                Slot::New(msg, reply) => {
                    let message = Arc::new(StoredMessage::new(Message {
                        id: first_id + stored.len() as u64,
                        author: msg.author,
                        text: msg.text,
                        sent_at,
                        via: msg.via,
                    }));
                    if let Some(key) = msg.key {
                        self.keys.insert(key, Arc::clone(&message));
                    }
                    replies.push((reply, stored.len(), true));
                    stored.push(message);
                }
                Slot::Earlier(n, reply) => replies.push((reply, n, false)),
                Slot::Stored(message, reply) => {
                    let _ = reply.send(Ok(Appended {
                        message,
                        created: false,
                    }));
                }
            }
        }
        self.next_id += stored.len() as u64;
        self.keys
            .forget_before(self.next_id.saturating_sub(KEYS_REMEMBERED));
        // Publish before replying: once a sender hears its id, every reader
        // can already see the message (read-your-writes).
        publish(&stored);
        for (reply, n, created) in replies {
            let _ = reply.send(Ok(Appended {
                message: Arc::clone(&stored[n]),
                created,
            }));
        }
    }
}

/// The resend keys of the newest messages: `(author, key)` → the message.
#[derive(Default)]
struct Keys {
    by_key: HashMap<(String, String), Arc<StoredMessage>>,
    /// The same entries in id order, to forget the oldest.
    order: VecDeque<(u64, (String, String))>,
}

impl Keys {
    /// The keys of the newest [`KEYS_REMEMBERED`] messages in the table.
    fn load(conn: &Connection, last_id: u64) -> Result<Keys, StoreError> {
        let mut keys = Keys::default();
        let mut stmt = conn.prepare(
            "SELECT id, author, text, sent_at, via, key FROM messages \
             WHERE id > ?1 AND key IS NOT NULL ORDER BY id",
        )?;
        let since = last_id.saturating_sub(KEYS_REMEMBERED) as i64;
        let rows = stmt.query_map([since], |row| Ok((message_from_row(row)?, row.get(5)?)))?;
        for row in rows {
            let (message, key): (Message, String) = row?;
            keys.insert(key, Arc::new(StoredMessage::new(message)));
        }
        Ok(keys)
    }

    fn get(&self, author: &str, key: &str) -> Option<Arc<StoredMessage>> {
        // A tuple of Strings cannot be looked up by (&str, &str) without
        // allocating; two small allocations per keyed send are fine.
        self.by_key
            .get(&(author.to_owned(), key.to_owned()))
            .cloned()
    }

    fn insert(&mut self, key: String, message: Arc<StoredMessage>) {
        let author_key = (message.message.author.clone(), key);
        self.order.push_back((message.id(), author_key.clone()));
        self.by_key.insert(author_key, message);
    }

    /// Forgets the keys of messages with an id below `first_kept`.
    fn forget_before(&mut self, first_kept: u64) {
        while self.order.front().is_some_and(|(id, _)| *id < first_kept) {
            if let Some((_, author_key)) = self.order.pop_front() {
                self.by_key.remove(&author_key);
            }
        }
    }
}

fn max_id(conn: &Connection) -> Result<u64, StoreError> {
    let max: Option<i64> = conn
        .query_row("SELECT MAX(id) FROM messages", [], |row| row.get(0))
        .optional()?
        .flatten();
    Ok(max.unwrap_or(0) as u64)
}

fn read_range(conn: &Connection, since: u64, limit: usize) -> Result<Vec<Message>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, author, text, sent_at, via FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    // SQLite integers are i64; ids beyond i64::MAX cannot exist in the table.
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![since, limit as i64], message_from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// A row that starts `id, author, text, sent_at, via`.
fn message_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    let via: String = row.get(4)?;
    Ok(Message {
        id: row.get::<_, i64>(0)? as u64,
        author: row.get(1)?,
        text: row.get(2)?,
        sent_at: row.get::<_, i64>(3)? as u64,
        via: Via::parse(&via).unwrap_or(Via::Api),
    })
}

/// Milliseconds since the Unix epoch, by the server's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
