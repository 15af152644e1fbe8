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

/// Store failures. They reach clients as `500 store_failed` (or `503` while
/// the server is shutting down).
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

/// What the writer is asked to do.
enum Command {
    /// Store this message and reply with it, id assigned.
    Append(
        NewMessage,
        oneshot::Sender<Result<Arc<StoredMessage>, StoreError>>,
    ),
    /// Finish what is queued, then stop.
    Stop(oneshot::Sender<()>),
}

/// The database, opened and checked, before the writer starts.
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
    last_id: u64,
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
                 via     TEXT    NOT NULL
             ) STRICT;",
        )?;
        let last_id = max_id(&conn)?;
        Ok(Store {
            conn,
            path: (!in_memory).then(|| path.to_owned()),
            last_id,
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

    /// Starts the writer thread. `publish` is called on that thread after
    /// each successful commit, with the batch in id order.
    pub fn start(
        self,
        queue: usize,
        publish: impl Fn(&[Arc<StoredMessage>]) + Send + 'static,
    ) -> Result<StoreHandle, StoreError> {
        let reader = match &self.path {
            Some(path) => Some(Arc::new(Mutex::new(Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?))),
            // An in-memory database cannot be opened twice; the room keeps
            // the whole log in memory instead, so no reader is needed.
            None => None,
        };
        let (tx, rx) = mpsc::channel(queue.max(1));
        let next_id = self.last_id + 1;
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(self.conn, next_id, rx, publish))
            .map_err(|e| StoreError::Task(e.to_string()))?;
        Ok(StoreHandle {
            tx,
            reader,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }
}

/// A cheap-to-clone handle to the running store.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Command>,
    /// A second, read-only connection for readers that are further behind
    /// than the room's memory window. `None` for an in-memory database.
    reader: Option<Arc<Mutex<Connection>>>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl StoreHandle {
    /// Queues `msg` for the writer and waits until it is committed.
    pub async fn append(&self, msg: NewMessage) -> Result<Arc<StoredMessage>, StoreError> {
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

    /// True when there is an on-disk database to read old messages from.
    pub fn has_reader(&self) -> bool {
        self.reader.is_some()
    }

    /// Messages with `id > since`, oldest first, at most `limit`, read from
    /// disk. Runs on tokio's blocking pool.
    pub async fn read_since(&self, since: u64, limit: usize) -> Result<Vec<Message>, StoreError> {
        let Some(reader) = self.reader.clone() else {
            return Ok(Vec::new());
        };
        tokio::task::spawn_blocking(move || {
            // unwrap: the lock is only poisoned if a reader panicked, which
            // read_range does not do.
            let conn = reader.lock().unwrap();
            read_range(&conn, since, limit)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Commits everything queued, stops the writer and waits for it. Safe to
    /// call more than once.
    pub async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.tx.send(Command::Stop(done)).await.is_ok() {
            let _ = finished.await;
        }
        // unwrap: see read_since.
        let thread = self.thread.lock().unwrap().take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// The writer thread: take a batch, commit it, publish it, reply.
fn writer_loop(
    mut conn: Connection,
    mut next_id: u64,
    mut rx: mpsc::Receiver<Command>,
    publish: impl Fn(&[Arc<StoredMessage>]),
) {
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
            commit(&mut conn, &mut next_id, &mut batch, &publish);
        }
        if let Some(done) = stop.take() {
            let _ = done.send(());
            return;
        }
    }
}

type Pending = (
    NewMessage,
    oneshot::Sender<Result<Arc<StoredMessage>, StoreError>>,
);

fn commit(
    conn: &mut Connection,
    next_id: &mut u64,
    batch: &mut Vec<Pending>,
    publish: &impl Fn(&[Arc<StoredMessage>]),
) {
    let sent_at = now_ms();
    let first_id = *next_id;
    let result = (|| -> Result<(), rusqlite::Error> {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages (id, author, text, sent_at, via) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (offset, (msg, _)) in batch.iter().enumerate() {
                insert.execute(params![
                    (first_id + offset as u64) as i64,
                    msg.author,
                    msg.text,
                    sent_at as i64,
                    msg.via.as_str()
                ])?;
            }
        }
        tx.commit()
    })();

    match result {
        Ok(()) => {
            let stored: Vec<Arc<StoredMessage>> = batch
                .iter()
                .enumerate()
                .map(|(offset, (msg, _))| {
                    Arc::new(StoredMessage::new(Message {
                        id: first_id + offset as u64,
                        author: msg.author.clone(),
                        text: msg.text.clone(),
                        sent_at,
                        via: msg.via,
                    }))
                })
                .collect();
            *next_id += stored.len() as u64;
            // Publish before replying: once a sender hears its id, every
            // reader can already see the message (read-your-writes).
            publish(&stored);
            for ((_, reply), message) in batch.drain(..).zip(stored) {
                let _ = reply.send(Ok(message));
            }
        }
        Err(err) => {
            tracing::error!(%err, "commit failed; the batch is refused and its ids reused");
            // Re-read the newest id rather than trusting our counter: if the
            // commit did reach the disk after all, its ids must not be reused.
            if let Ok(last) = max_id(conn) {
                *next_id = last + 1;
            }
            let text = err.to_string();
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(StoreError::Write(text.clone())));
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
    let rows = stmt.query_map(params![since, limit as i64], |row| {
        let via: String = row.get(4)?;
        Ok(Message {
            id: row.get::<_, i64>(0)? as u64,
            author: row.get(1)?,
            text: row.get(2)?,
            sent_at: row.get::<_, i64>(3)? as u64,
            via: Via::parse(&via).unwrap_or(Via::Api),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Milliseconds since the Unix epoch, by the server's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
