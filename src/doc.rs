//! The shared document: one plain text that the whole class edits at once
//! — the lecture's Google Docs — kept as an ordered [`Log`] of edit
//! operations, durable in SQLite.
//!
//! The chat was easy to share because a message never changes what came
//! before it. An edit does: it says "at character 12, insert `hi`", and by
//! the time it arrives somebody else may have typed in front of character
//! 12. So the document's writer does what the room's does — one edit after
//! another, positions (here: revisions) given out inside a transaction,
//! group commit, publish after the commit — plus one thing: an operation
//! made at an old revision is first **transformed** against every operation
//! stored since ([`ot::transform`], stored op first), so that it means what
//! its author meant (operational transformation, as in Google Docs: the
//! server is the authority, each client has one operation in flight).
//!
//! # What is kept where
//!
//! * The text itself, as a [`Rope`] (`ropey`, counting characters = code
//!   points): applying an edit costs O(log n), never O(document).
//! * The newest operations, in memory: the log's window for readers, and
//!   the writer's history of the newest [`OPS_REMEMBERED`] for transforming
//!   and for recognising resends by `(client, seq)`.
//! * Every operation, in the `doc_ops` table; every [`SNAPSHOT_EVERY`]
//!   revisions the whole text, in `doc_snapshots`, so that a restart loads
//!   the newest snapshot and replays only what came after it.
//!
//! The HTTP side (what a client sends, the endpoints, the document as a
//! topic of the transports) is `editing.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use ropey::Rope;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::log::{Log, Older};
use crate::message::Via;
use crate::ot::{self, OpError, Operation};
use crate::store::{Database, Reader, StoreError, Writer, WriterHandle, now_ms, refuse_all};
use crate::wire::{Entry, Wire};

/// Operations the writer keeps in memory: an operation made at any of the
/// newest this many revisions can be transformed (the contract asks for at
/// least 1,000), and a resend of any of them is recognised (at least
/// 10,000).
pub const OPS_REMEMBERED: usize = 10_000;

/// A snapshot of the whole text is stored every this many revisions.
pub const SNAPSHOT_EVERY: u64 = 1_000;

/// A stored operation, as every reader gets it.
#[derive(Debug)]
pub struct StoredOp {
    /// The revision it made: it turned revision `rev - 1` into `rev`.
    pub rev: u64,
    /// The operation as stored, after transformation.
    pub op: Operation,
    /// The editor (browser tab) that sent it.
    pub client: String,
    /// That editor's number for it.
    pub seq: u64,
    /// Who wrote it, if they said (signed in: the account's name).
    pub author: Option<String>,
    /// True when `author` is a signed-in account.
    pub account: bool,
    /// The page it was sent from (an extension: the contract leaves it out).
    pub via: Via,
    /// Server clock when it was stored, ms since the Unix epoch.
    pub at: u64,
    /// Its bytes on each transport.
    pub wire: Wire,
}

/// A stored operation's JSON fields, in the contract's order.
#[derive(Serialize)]
struct OpJson<'a> {
    rev: u64,
    op: &'a serde_json::Value,
    client: &'a str,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    account: bool,
    at: u64,
    via: Via,
}

impl StoredOp {
    /// Builds a stored operation and encodes it once for every transport:
    /// `{"rev":7,"op":[…],…}` in polling answers, `{"type":"op","rev":7,…}`
    /// as a WebSocket frame, `id: 7\nevent: op\ndata: {…}` as an event.
    #[allow(clippy::too_many_arguments)]
    fn new(
        rev: u64,
        op: Operation,
        client: String,
        seq: u64,
        author: Option<String>,
        account: bool,
        via: Via,
        at: u64,
    ) -> StoredOp {
        let op_json = op.to_json();
        let fields = OpJson {
            rev,
            op: &op_json,
            client: &client,
            seq,
            author: author.as_deref(),
            account,
            at,
            via,
        };
        // unwrap: a struct of strings, numbers and a JSON value serialises.
        let wire = Wire::flat("op", rev, serde_json::to_vec(&fields).unwrap());
        StoredOp {
            rev,
            op,
            client,
            seq,
            author,
            account,
            via,
            at,
            wire,
        }
    }
}

impl Entry for StoredOp {
    fn position(&self) -> u64 {
        self.rev
    }

    fn wire(&self) -> &Wire {
        &self.wire
    }
}

/// What an editor sends, validated (see `editing.rs`).
#[derive(Debug, Clone)]
pub struct Submission {
    /// The editor (browser tab).
    pub client: String,
    /// Its number for this edit.
    pub seq: u64,
    /// The edit.
    pub change: Change,
    /// Who writes, if known.
    pub author: Option<String>,
    /// True when `author` is a signed-in account.
    pub account: bool,
    /// The page it comes from.
    pub via: Via,
}

/// The two ways to change the document.
#[derive(Debug, Clone)]
pub enum Change {
    /// An operation made at revision `rev` (the last one its author saw).
    Edit {
        /// The revision the operation applies to.
        rev: u64,
        /// The operation.
        op: Operation,
    },
    /// Replace the whole text at the current revision, whatever others
    /// typed meanwhile: the naive "save the textarea" (`PUT /api/doc/text`).
    /// Stored as the contract says: delete everything, insert the text.
    ReplaceAll(String),
    /// Make the text this at the current revision, with the smallest edit
    /// (one delete and one insert between the common start and end): the
    /// teacher restoring an old revision, as a new operation — history is
    /// never rewritten, and editors' carets outside the change stay put.
    Restore(String),
}

/// What a submission did.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The operation as stored.
    pub stored: Arc<StoredOp>,
    /// False for a resend of a `(client, seq)` stored before.
    pub created: bool,
}

/// Why a submission was refused (each is one of the contract's errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// `409 rev_ahead`.
    #[error("revision {rev} does not exist yet: the document is at revision {last}")]
    RevAhead {
        /// What the client said.
        rev: u64,
        /// The newest revision.
        last: u64,
    },
    /// `409 rev_too_old`: reload the document.
    #[error(
        "revision {rev} is too old to transform from (the oldest is {oldest}); reload the document (GET /api/doc)"
    )]
    RevTooOld {
        /// What the client said.
        rev: u64,
        /// The oldest revision an operation may still be made at.
        oldest: u64,
    },
    /// `422 bad_operation` (or `control_character`).
    #[error(transparent)]
    Op(#[from] OpError),
    /// `422 bad_operation`: the operation does not fit the document at its
    /// revision.
    #[error(
        "the operation covers {op_len} characters, but the document had {doc_len} at revision {rev}"
    )]
    DoesNotFit {
        /// The operation's base length.
        op_len: usize,
        /// The document's length at that revision.
        doc_len: usize,
        /// The revision.
        rev: u64,
    },
    /// `422 document_too_long`.
    #[error("the document would be {chars} characters long; the limit is {max}")]
    TooLong {
        /// Its length after the edit.
        chars: usize,
        /// `--doc-max-chars`.
        max: usize,
    },
}

/// The current text, shared between the writer (which applies each edit
/// after its commit) and readers of `GET /api/doc`.
struct Current {
    rev: u64,
    text: Rope,
}

/// A cheap-to-clone handle to the document.
#[derive(Clone)]
pub struct Document {
    /// The operations, as every transport reads them.
    log: Log<StoredOp>,
    /// The text at the newest revision.
    current: Arc<Mutex<Current>>,
    /// The writer thread.
    writer: WriterHandle<OpWriter>,
    /// For the text at an old revision (`None` for an in-memory database,
    /// whose log keeps every operation).
    reader: Option<Reader>,
}

impl Document {
    /// Creates the tables if needed, loads the newest snapshot, replays the
    /// operations after it, and starts the writer. At most `max_chars`
    /// characters; `window` operations kept in memory for readers.
    pub fn open(
        db: Database,
        max_chars: usize,
        window: usize,
        write_queue: usize,
    ) -> Result<Document, StoreError> {
        let conn = db.conn();
        create_tables(conn)?;
        let last_rev = max_rev(conn)?;
        // The newest snapshot, then every operation after it.
        let (snapshot_rev, snapshot): (u64, String) = conn
            .query_row(
                "SELECT rev, text FROM doc_snapshots ORDER BY rev DESC LIMIT 1",
                [],
                |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, String::new()));
        let mut text = Rope::from_str(&snapshot);
        for stored in read_ops(conn, snapshot_rev, usize::MAX)? {
            stored
                .op
                .apply_to_rope(&mut text)
                .map_err(|e| StoreError::Write(format!("revision {}: {e}", stored.rev)))?;
        }
        // The newest operations: the writer's history and the readers'
        // window.
        let keep = OPS_REMEMBERED.max(window);
        let recent: Vec<Arc<StoredOp>> =
            read_ops(conn, last_rev.saturating_sub(keep as u64), keep)?
                .into_iter()
                .map(Arc::new)
                .collect();
        let max_seq = max_seq_by_client(conn)?;

        let reader = db.reader()?;
        let older = reader.clone().map(|reader| {
            let older: Older<StoredOp> = Arc::new(move |since, limit| {
                let reader = reader.clone();
                Box::pin(async move {
                    let ops = reader
                        .read(move |conn| read_ops(conn, since, limit))
                        .await?;
                    Ok(ops.into_iter().map(Arc::new).collect())
                })
            });
            older
        });
        let log_recent: Vec<_> = recent
            .iter()
            .skip(recent.len().saturating_sub(window))
            .cloned()
            .collect();
        let log = Log::new(log_recent, last_rev, window, older);

        let current = Arc::new(Mutex::new(Current {
            rev: last_rev,
            text,
        }));
        let writer = OpWriter {
            next_rev: last_rev + 1,
            len: current_len(&current),
            history: recent
                .iter()
                .skip(recent.len().saturating_sub(OPS_REMEMBERED))
                .cloned()
                .collect(),
            by_seq: HashMap::new(),
            max_seq,
            snapshot_rev,
            max_chars,
            current: Arc::clone(&current),
            log: log.clone(),
        }
        .indexed();
        let writer = db.start("doc-writer", write_queue, writer)?;
        Ok(Document {
            log,
            current,
            writer,
            reader,
        })
    }

    /// Stores an edit (transformed as needed) and returns it as stored, or
    /// the operation stored the first time for a resend. Returns once it is
    /// committed and visible to every reader.
    pub async fn submit(&self, submission: Submission) -> Result<Submitted, SubmitError> {
        match self.writer.submit(submission).await {
            Ok(Ok(submitted)) => Ok(submitted),
            Ok(Err(refused)) => Err(SubmitError::Refused(refused)),
            Err(err) => Err(SubmitError::Store(err)),
        }
    }

    /// The operations, for the transports.
    pub fn log(&self) -> &Log<StoredOp> {
        &self.log
    }

    /// The newest revision.
    pub fn rev(&self) -> u64 {
        self.log.last()
    }

    /// The revision and text now (`GET /api/doc`). The rope is cloned under
    /// the lock (cheap: ropes share their nodes) and turned into a string
    /// outside it.
    pub fn current(&self) -> (u64, String) {
        let (rev, text) = {
            // unwrap: the lock is only poisoned if a holder panicked; none can.
            let current = self.current.lock().unwrap();
            (current.rev, current.text.clone())
        };
        (rev, text.to_string())
    }

    /// The text at revision `rev` (`0..=` the newest): the newest snapshot
    /// at or before it, and the operations up to it replayed.
    pub async fn text_at(&self, rev: u64) -> Result<String, StoreError> {
        let (now, text) = self.current();
        if rev >= now {
            return Ok(text);
        }
        match &self.reader {
            Some(reader) => reader.read(move |conn| text_at(conn, rev)).await,
            None => {
                // In memory the log holds every operation: replay them.
                let mut text = Rope::new();
                let mut since = 0;
                while since < rev {
                    let slice = self.log.read_since(since, crate::log::MAX_READ).await?;
                    for stored in slice.entries.iter().take_while(|s| s.rev <= rev) {
                        let _ = stored.op.apply_to_rope(&mut text);
                        since = stored.rev;
                    }
                    if slice.entries.is_empty() {
                        break;
                    }
                }
                Ok(text.to_string())
            }
        }
    }

    /// Commits what is queued and stops the writer (last step of shutdown).
    pub async fn flush_and_stop(&self) {
        self.writer.shutdown().await;
    }
}

/// A submission's failure: refused for what it is, or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The edit was refused.
    #[error(transparent)]
    Refused(DocError),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

fn current_len(current: &Mutex<Current>) -> usize {
    // unwrap: see Document::current.
    current.lock().unwrap().text.len_chars()
}

fn create_tables(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS doc_ops (
             rev    INTEGER PRIMARY KEY,
             client TEXT    NOT NULL,
             seq    INTEGER NOT NULL,
             author TEXT,
             account INTEGER NOT NULL DEFAULT 0,
             via    TEXT    NOT NULL,
             op     TEXT    NOT NULL,
             at     INTEGER NOT NULL
         ) STRICT;
         CREATE INDEX IF NOT EXISTS doc_ops_by_client ON doc_ops (client, seq);
         CREATE TABLE IF NOT EXISTS doc_snapshots (
             rev  INTEGER PRIMARY KEY,
             text TEXT    NOT NULL
         ) STRICT;",
    )?;
    Ok(())
}

fn max_rev(conn: &Connection) -> Result<u64, StoreError> {
    let max: Option<i64> = conn
        .query_row("SELECT MAX(rev) FROM doc_ops", [], |row| row.get(0))
        .optional()?
        .flatten();
    Ok(max.unwrap_or(0) as u64)
}

/// Every client's highest stored `seq`: a `seq` above it is new without
/// looking anything up.
fn max_seq_by_client(conn: &Connection) -> Result<HashMap<String, u64>, StoreError> {
    let mut stmt = conn.prepare("SELECT client, MAX(seq) FROM doc_ops GROUP BY client")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Operations with `rev > since`, oldest first, at most `limit`.
fn read_ops(conn: &Connection, since: u64, limit: usize) -> rusqlite::Result<Vec<StoredOp>> {
    let mut stmt = conn.prepare_cached(
        "SELECT rev, op, client, seq, author, account, via, at FROM doc_ops \
         WHERE rev > ?1 ORDER BY rev LIMIT ?2",
    )?;
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![since, limit], op_from_row)?;
    rows.collect()
}

/// A row of `rev, op, client, seq, author, account, via, at`.
fn op_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredOp> {
    let rev = row.get::<_, i64>(0)? as u64;
    let op_text: String = row.get(1)?;
    // Only the writer stores operations, and only valid ones.
    let op = Operation::from_json_str(&op_text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let via: String = row.get(6)?;
    Ok(StoredOp::new(
        rev,
        op,
        row.get(2)?,
        row.get::<_, i64>(3)? as u64,
        row.get(4)?,
        row.get(5)?,
        Via::parse(&via).unwrap_or(Via::Api),
        row.get::<_, i64>(7)? as u64,
    ))
}

/// The text at `rev`, from the newest snapshot at or before it.
fn text_at(conn: &Connection, rev: u64) -> rusqlite::Result<String> {
    let (from, snapshot): (u64, String) = conn
        .query_row(
            "SELECT rev, text FROM doc_snapshots WHERE rev <= ?1 ORDER BY rev DESC LIMIT 1",
            [rev as i64],
            |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)),
        )
        .optional()?
        .unwrap_or((0, String::new()));
    let mut text = Rope::from_str(&snapshot);
    for stored in read_ops(conn, from, (rev - from) as usize)? {
        // Stored operations always fit the text they were stored on.
        let _ = stored.op.apply_to_rope(&mut text);
    }
    Ok(text.to_string())
}

/// The document's writer thread's state.
struct OpWriter {
    /// The revision the next stored operation makes.
    next_rev: u64,
    /// The document's length at revision `next_rev - 1`.
    len: usize,
    /// The newest stored operations, oldest first: what an operation made
    /// at an old revision is transformed against.
    history: VecDeque<Arc<StoredOp>>,
    /// `(client, seq)` → the operation, for the history's operations.
    by_seq: HashMap<(String, u64), Arc<StoredOp>>,
    /// Every client's highest stored `seq`.
    max_seq: HashMap<String, u64>,
    /// The revision of the newest snapshot.
    snapshot_rev: u64,
    /// `--doc-max-chars`.
    max_chars: usize,
    /// The text, updated after each commit.
    current: Arc<Mutex<Current>>,
    /// Where committed operations are published.
    log: Log<StoredOp>,
}

/// One submission of a batch, once the writer has looked at it.
enum Slot {
    /// The `n`th new operation of this batch.
    Made(usize),
    /// A resend of the `n`th new operation of this same batch.
    Earlier(usize),
    /// A resend of an operation stored before this batch.
    Stored(Arc<StoredOp>),
    /// Refused.
    Refused(DocError),
}

/// A new operation before it is stored.
struct StoredOpParts {
    op: Operation,
    submission: Submission,
}

impl OpWriter {
    /// Fills the `(client, seq)` index from the history.
    fn indexed(mut self) -> OpWriter {
        for stored in &self.history {
            self.by_seq
                .insert((stored.client.clone(), stored.seq), Arc::clone(stored));
        }
        self
    }

    /// The oldest revision an operation may be made at: the history holds
    /// every operation after it.
    fn oldest_rev(&self) -> u64 {
        self.history
            .front()
            .map_or(self.next_rev - 1, |s| s.rev - 1)
    }

    /// Looks for `(client, seq)` among the stored operations: in memory, or
    /// (for a resend older than the history, rare) in the table.
    fn find(&self, conn: &Connection, client: &str, seq: u64) -> Option<Arc<StoredOp>> {
        if self.max_seq.get(client).is_none_or(|max| seq > *max) {
            return None; // new: every stored seq of this client is lower
        }
        if let Some(stored) = self.by_seq.get(&(client.to_owned(), seq)) {
            return Some(Arc::clone(stored));
        }
        conn.query_row(
            "SELECT rev, op, client, seq, author, account, via, at FROM doc_ops \
             WHERE client = ?1 AND seq = ?2",
            params![client, seq as i64],
            op_from_row,
        )
        .optional()
        .ok()
        .flatten()
        .map(Arc::new)
    }

    /// Transforms `op`, made at `rev`, against every operation stored since
    /// (and those before it in this batch): the stored one first, so that
    /// of two inserts at one position the one stored first stays first.
    fn transform(
        &self,
        rev: u64,
        mut op: Operation,
        earlier: &[&Operation],
    ) -> Result<Operation, DocError> {
        let last = self.next_rev - 1 + earlier.len() as u64;
        if rev > last {
            return Err(DocError::RevAhead { rev, last });
        }
        let oldest = self.oldest_rev();
        if rev < oldest {
            return Err(DocError::RevTooOld { rev, oldest });
        }
        let stored = self
            .history
            .iter()
            .skip((rev - oldest) as usize)
            .map(|s| &s.op)
            .chain(
                earlier
                    .iter()
                    .copied()
                    .skip((rev + earlier.len() as u64).saturating_sub(last) as usize),
            );
        // The op must fit the document as it was at `rev`: the first
        // concurrent operation's base, or today's length.
        for (i, concurrent) in stored.enumerate() {
            if i == 0 && concurrent.base_len() != op.base_len() {
                return Err(DocError::DoesNotFit {
                    op_len: op.base_len(),
                    doc_len: concurrent.base_len(),
                    rev,
                });
            }
            op = ot::transform(concurrent, &op)?.1;
        }
        Ok(op)
    }
}

impl Writer for OpWriter {
    type Job = Submission;
    type Done = Result<Submitted, DocError>;

    /// Snapshots are written after the batch's answers went out: an editor
    /// never waits for a whole-text write.
    fn after_answers(&mut self, conn: &mut Connection) {
        self.snapshot_if_due(conn);
    }

    fn commit(
        &mut self,
        conn: &mut Connection,
        batch: Vec<Submission>,
    ) -> Vec<Result<Result<Submitted, DocError>, StoreError>> {
        let count = batch.len();
        // First decide every submission, in order, against the history and
        // the new operations before it in this batch. Nothing in memory
        // changes until the commit has succeeded.
        let mut slots = Vec::with_capacity(count);
        let mut parts: Vec<StoredOpParts> = Vec::new();
        let mut in_batch: HashMap<(String, u64), usize> = HashMap::new();
        let mut len = self.len;
        for submission in batch {
            let key = (submission.client.clone(), submission.seq);
            if let Some(&n) = in_batch.get(&key) {
                slots.push(Slot::Earlier(n));
                continue;
            }
            if let Some(stored) = self.find(conn, &submission.client, submission.seq) {
                slots.push(Slot::Stored(stored));
                continue;
            }
            let decided = match &submission.change {
                Change::Edit { rev, op } => {
                    // The new operations of this batch, as plain refs.
                    let earlier: Vec<&Operation> = parts.iter().map(|p| &p.op).collect();
                    let transformed = self.transform(*rev, op.clone(), &earlier);
                    match transformed {
                        Ok(op) if op.base_len() != len => Err(DocError::DoesNotFit {
                            op_len: op.base_len(),
                            doc_len: len,
                            rev: *rev,
                        }),
                        other => other,
                    }
                }
                Change::ReplaceAll(text) => {
                    Operation::replace_all(len, text).map_err(DocError::from)
                }
                Change::Restore(text) => self.smallest_edit_to(text, &parts, len),
            };
            let decided = decided.and_then(|op| {
                let chars = op.target_len();
                // A document already over a lowered limit may still shrink.
                if chars > self.max_chars && chars > len {
                    Err(DocError::TooLong {
                        chars,
                        max: self.max_chars,
                    })
                } else {
                    Ok(op)
                }
            });
            match decided {
                Ok(op) => {
                    len = op.target_len();
                    in_batch.insert(key, parts.len());
                    slots.push(Slot::Made(parts.len()));
                    parts.push(StoredOpParts { op, submission });
                }
                Err(refused) => slots.push(Slot::Refused(refused)),
            }
        }

        // One transaction for every new operation of the batch (none when
        // every submission was a resend or refused: nothing to commit, and
        // nobody to wake).
        let at = now_ms();
        let first_rev = self.next_rev;
        let inserted = (|| -> Result<(), rusqlite::Error> {
            if parts.is_empty() {
                return Ok(());
            }
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO doc_ops (rev, client, seq, author, account, via, op, at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for (offset, part) in parts.iter().enumerate() {
                    let s = &part.submission;
                    insert.execute(params![
                        (first_rev + offset as u64) as i64,
                        s.client,
                        s.seq as i64,
                        s.author,
                        s.account,
                        s.via.as_str(),
                        part.op.to_json().to_string(),
                        at as i64,
                    ])?;
                }
            }
            tx.commit()
        })();
        if let Err(err) = inserted {
            return refuse_all(count, &err);
        }

        // Committed: now the text, the history and the index change, and
        // readers hear of it.
        let stored: Vec<Arc<StoredOp>> = parts
            .into_iter()
            .enumerate()
            .map(|(offset, part)| {
                let StoredOpParts { op, submission } = part;
                Arc::new(StoredOp::new(
                    first_rev + offset as u64,
                    op,
                    submission.client,
                    submission.seq,
                    submission.author,
                    submission.account,
                    submission.via,
                    at,
                ))
            })
            .collect();
        {
            // unwrap: see Document::current.
            let mut current = self.current.lock().unwrap();
            for s in &stored {
                // Checked against the length above: it fits.
                let _ = s.op.apply_to_rope(&mut current.text);
                current.rev = s.rev;
            }
        }
        for s in &stored {
            self.history.push_back(Arc::clone(s));
            self.by_seq.insert((s.client.clone(), s.seq), Arc::clone(s));
            let max = self.max_seq.entry(s.client.clone()).or_insert(0);
            *max = (*max).max(s.seq);
        }
        while self.history.len() > OPS_REMEMBERED {
            if let Some(old) = self.history.pop_front() {
                self.by_seq.remove(&(old.client.clone(), old.seq));
            }
        }
        self.next_rev += stored.len() as u64;
        self.len = len;
        if !stored.is_empty() {
            self.log.publish(&stored);
        }

        slots
            .into_iter()
            .map(|slot| {
                Ok(match slot {
                    Slot::Made(n) => Ok(Submitted {
                        stored: Arc::clone(&stored[n]),
                        created: true,
                    }),
                    Slot::Earlier(n) => Ok(Submitted {
                        stored: Arc::clone(&stored[n]),
                        created: false,
                    }),
                    Slot::Stored(stored) => Ok(Submitted {
                        stored,
                        created: false,
                    }),
                    Slot::Refused(refused) => Err(refused),
                })
            })
            .collect()
    }
}

impl OpWriter {
    /// The smallest edit from the text as it is (after `pending`, the new
    /// operations of this batch) to `wanted`: keep the common start and end,
    /// replace the middle.
    fn smallest_edit_to(
        &self,
        wanted: &str,
        pending: &[StoredOpParts],
        len: usize,
    ) -> Result<Operation, DocError> {
        let mut text = {
            // unwrap: see Document::current.
            let current = self.current.lock().unwrap();
            current.text.clone()
        };
        for part in pending {
            // Each was checked against the length before it.
            let _ = part.op.apply_to_rope(&mut text);
        }
        let have: Vec<char> = text.chars().collect();
        let want: Vec<char> = wanted.chars().collect();
        let start = have.iter().zip(&want).take_while(|(a, b)| a == b).count();
        let end = have[start..]
            .iter()
            .rev()
            .zip(want[start..].iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let inserted: String = want[start..want.len() - end].iter().collect();
        Ok(Operation::from_patch(
            len,
            start,
            have.len() - end - start,
            &inserted,
        )?)
    }

    /// Stores the whole text every [`SNAPSHOT_EVERY`] revisions, so that a
    /// restart replays at most that many operations (plus one batch: the
    /// snapshot is taken at the end of the commit that gets there, which may
    /// hold up to `MAX_BATCH` edits). A failed snapshot only costs a longer
    /// replay; it is logged and tried again later.
    fn snapshot_if_due(&mut self, conn: &Connection) {
        let rev = self.next_rev - 1;
        if rev < self.snapshot_rev + SNAPSHOT_EVERY {
            return;
        }
        let text = {
            // unwrap: see Document::current.
            let current = self.current.lock().unwrap();
            current.text.clone()
        };
        match conn.execute(
            "INSERT OR REPLACE INTO doc_snapshots (rev, text) VALUES (?1, ?2)",
            params![rev as i64, text.to_string()],
        ) {
            Ok(_) => self.snapshot_rev = rev,
            Err(err) => tracing::warn!(%err, rev, "document snapshot failed; will retry"),
        }
    }
}
