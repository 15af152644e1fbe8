//! Persistence: each log in SQLite, written by one thread with group
//! commit. This module is the part every log shares — opening the
//! database, the writer thread and its batches, the read-only connection
//! for old entries; what a log stores, and how, is its owner's
//! [`Writer`] (the chat's in `room.rs`, the document's in `doc.rs`).
//!
//! # Why one writer thread
//!
//! SQLite calls block: a commit waits for the disk (`fsync`). Doing that on
//! an async worker would stall every connection that worker serves. So each
//! log's store owns a plain OS thread, the *writer*, and handlers talk to it
//! over a channel: they send a job (a validated message, an operation) and
//! `.await` a oneshot reply.
//!
//! # Why group commit
//!
//! While the writer is busy with one commit, more jobs queue up. The writer
//! takes *all* of them (up to [`MAX_BATCH`]) into the next transaction, so
//! 200 messages arriving together cost one `fsync`, not 200. Nobody waits
//! longer than one commit for their batch to start.
//!
//! # Why the writer assigns positions
//!
//! Ids and revisions are handed out inside the transaction and only kept
//! when the commit succeeds. A failed commit gives them back, so the
//! contract holds: positions have no gaps, a rejected entry takes none, and
//! (because the next one is read from the table at start) none is reused
//! after a crash. Only after the commit does the writer *publish* the batch
//! to its log, so readers never see an entry that is not yet durable.
//! Being the one place where appends happen one after another, the writer
//! is also where a resend is recognised: "is it stored already?" and "store
//! it" must be one step.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::config::SyncMode;

/// Most jobs one transaction takes. Bounds the work (and latency) of one
/// commit under a flood; ordinary classroom traffic never comes near it.
pub const MAX_BATCH: usize = 1024;

/// How long a connection waits for another one's write to finish before
/// giving up. Each log has its own writer connection to the one database
/// file, and SQLite lets one write at a time; commits take milliseconds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Store failures. They reach clients as `500 store_failed` (or `503` while
/// the server is shutting down), with a plain sentence: the details, which
/// may name tables and columns, go to the server's log only.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused something.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The writer thread has stopped (the server is shutting down).
    #[error("the store is shutting down")]
    Closed,
    /// Too many jobs are already waiting for the writer.
    #[error("the store is busy")]
    Busy,
    /// A commit failed; the whole batch was refused.
    #[error("could not store: {0}")]
    Write(String),
    /// A thread or blocking task could not run.
    #[error("database task failed: {0}")]
    Task(String),
}

/// One SQLite database, opened and set up, before its writer starts.
pub struct Database {
    conn: Connection,
    path: Option<PathBuf>,
}

impl Database {
    /// Opens (creating if needed) the database at `path`, or an in-memory
    /// one for `:memory:`.
    pub fn open(path: &Path, sync: SyncMode) -> Result<Database, StoreError> {
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
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Database {
            conn,
            path: (!in_memory).then(|| path.to_owned()),
        })
    }

    /// The connection, for creating tables and loading what a log keeps
    /// in memory before its writer starts.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// True for a `:memory:` database.
    pub fn is_memory(&self) -> bool {
        self.path.is_none()
    }

    /// A second, read-only connection, for readers that are further behind
    /// than a log's memory window. `None` for an in-memory database, which
    /// cannot be opened twice (its log then keeps everything in memory).
    pub fn reader(&self) -> Result<Option<Reader>, StoreError> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Some(Reader {
            conn: Arc::new(Mutex::new(conn)),
        }))
    }

    /// Starts the writer thread `name`, which owns this connection from now
    /// on and runs `writer` on every batch. At most `queue` jobs wait.
    pub fn start<W: Writer>(
        self,
        name: &str,
        queue: usize,
        writer: W,
    ) -> Result<WriterHandle<W>, StoreError> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let conn = self.conn;
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(conn, writer, rx))
            .map_err(|e| StoreError::Task(e.to_string()))?;
        Ok(WriterHandle {
            tx,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }
}

/// What a log's writer does with a batch: everything that must happen in
/// one place, one batch after another.
pub trait Writer: Send + 'static {
    /// One thing to store (a validated message, an operation).
    type Job: Send + 'static;
    /// What its sender hears back once it is stored.
    type Done: Send + 'static;

    /// Stores `jobs` in one transaction and — only after the commit —
    /// publishes them to the log. Returns one answer per job, in order. If
    /// the commit fails, nothing of the batch may be kept (positions given
    /// back, memory state unchanged) and every answer is an error.
    fn commit(
        &mut self,
        conn: &mut Connection,
        jobs: Vec<Self::Job>,
    ) -> Vec<Result<Self::Done, StoreError>>;

    /// Called after a batch's answers have gone out: for housekeeping that
    /// nobody should wait for (the document's snapshots).
    fn after_answers(&mut self, _conn: &mut Connection) {}
}

/// What the writer thread is asked to do.
enum Command<W: Writer> {
    /// Store this and answer on the oneshot.
    Store(W::Job, oneshot::Sender<Result<W::Done, StoreError>>),
    /// Finish what is queued, then stop.
    Stop(oneshot::Sender<()>),
}

/// The writer thread: take a batch, commit it, answer; until told to stop.
fn run<W: Writer>(mut conn: Connection, mut writer: W, mut rx: mpsc::Receiver<Command<W>>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    let mut stop = None;
    // blocking_recv parks this OS thread until work arrives: no busy loop.
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        // Group commit: everything already waiting joins this transaction.
        while let Some(command) = next.take() {
            match command {
                Command::Store(job, reply) => {
                    jobs.push(job);
                    replies.push(reply);
                }
                Command::Stop(done) => {
                    stop = Some(done);
                    break;
                }
            }
            if jobs.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !jobs.is_empty() {
            let answers = writer.commit(&mut conn, std::mem::take(&mut jobs));
            debug_assert_eq!(answers.len(), replies.len(), "one answer per job");
            for (reply, answer) in replies.drain(..).zip(answers) {
                let _ = reply.send(answer);
            }
            writer.after_answers(&mut conn);
        }
        if let Some(done) = stop.take() {
            let _ = done.send(());
            return;
        }
    }
}

/// A cheap-to-clone handle to a running writer.
pub struct WriterHandle<W: Writer> {
    tx: mpsc::Sender<Command<W>>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl<W: Writer> Clone for WriterHandle<W> {
    fn clone(&self) -> Self {
        WriterHandle {
            tx: self.tx.clone(),
            thread: Arc::clone(&self.thread),
        }
    }
}

impl<W: Writer> WriterHandle<W> {
    /// Queues `job` for the writer and waits until it is committed.
    pub async fn submit(&self, job: W::Job) -> Result<W::Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        // try_send, not send().await: a full queue is answered at once with
        // 503 instead of piling up waiting requests.
        self.tx
            .try_send(Command::Store(job, reply))
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

/// Reads old entries from disk (see [`Database::reader`]); cheap to clone.
#[derive(Clone)]
pub struct Reader {
    conn: Arc<Mutex<Connection>>,
}

impl Reader {
    /// Runs `read` on the read-only connection, on tokio's blocking pool:
    /// SQLite calls block.
    pub async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // unwrap: the lock is only poisoned if a reader panicked; the
            // readers only run SQLite queries, which return errors instead.
            let conn = conn.lock().unwrap();
            read(&conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
        .map_err(StoreError::from)
    }
}

/// The answers for a batch whose commit failed: the same error for every
/// job (logged once here; clients get a plain sentence).
pub fn refuse_all<D>(count: usize, err: &rusqlite::Error) -> Vec<Result<D, StoreError>> {
    tracing::error!(%err, "commit failed; the batch is refused and its positions reused");
    let text = err.to_string();
    (0..count)
        .map(|_| Err(StoreError::Write(text.clone())))
        .collect()
}

/// Milliseconds since the Unix epoch, by the server's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
