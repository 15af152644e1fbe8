//! The chat room: one ordered [`Log`] of messages, kept durable in SQLite.
//!
//! The room joins the two halves of a message's life. Writing: a validated
//! [`NewMessage`] goes to the room's writer thread (see
//! [`store`](crate::store) for why there is one), which gives it an id
//! inside a transaction and commits it. Reading: only after the commit does
//! the writer publish the message to the room's log, which wakes every
//! waiting reader (see [`crate::log`]: reading and waking are the same for
//! every log). So readers never see a message that is not durable, and the
//! ids they see have no gaps.
//!
//! # Resends
//!
//! A page whose `POST` timed out cannot know whether the message was stored;
//! it sends it again with the same `key`. The writer keeps the keys of the
//! newest [`KEYS_REMEMBERED`] messages in memory (loaded from the table at
//! start, so a resend after a restart is recognised too) and answers a
//! repeat with the message stored the first time — also when both copies
//! arrive in the same batch.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use crate::log::{Log, Older};
use crate::message::{Message, NewMessage, StoredMessage, Via};
use crate::store::{Database, StoreError, Writer, WriterHandle, now_ms, refuse_all};

/// Resend keys are recognised for (at least) the newest this many messages
/// (contract v2).
pub const KEYS_REMEMBERED: u64 = 10_000;

/// What an append did.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The message as stored, id assigned.
    pub message: Arc<StoredMessage>,
    /// False when the message was a resend: its key was stored already, and
    /// `message` is what was stored the first time.
    pub created: bool,
}

/// A cheap-to-clone handle to the room; every handler holds one.
#[derive(Clone)]
pub struct Room {
    /// The messages, as every transport reads them.
    log: Log<StoredMessage>,
    /// The writer thread.
    writer: WriterHandle<MessageWriter>,
}

impl Room {
    /// Creates the messages table if needed, loads the newest messages and
    /// starts the room's writer.
    ///
    /// `window` is how many messages to keep in memory; with an in-memory
    /// database the whole log is kept, since there is nowhere else to read
    /// it from.
    pub fn open(db: Database, window: usize, write_queue: usize) -> Result<Room, StoreError> {
        let conn = db.conn();
        create_table(conn)?;
        let last_id = max_id(conn)?;
        let since = last_id.saturating_sub(window as u64);
        let recent = read_range(conn, since, window)?
            .into_iter()
            .map(|m| Arc::new(StoredMessage::new(m)))
            .collect();
        let keys = Keys::load(conn, last_id)?;

        // Messages that have left the memory window are read back from disk.
        let older = db.reader()?.map(|reader| {
            let older: Older<StoredMessage> = Arc::new(move |since, limit| {
                let reader = reader.clone();
                Box::pin(async move {
                    let messages = reader
                        .read(move |conn| read_range(conn, since, limit))
                        .await?;
                    Ok(messages
                        .into_iter()
                        .map(|m| Arc::new(StoredMessage::new(m)))
                        .collect())
                })
            });
            older
        });
        let log = Log::new(recent, last_id, window, older);

        // The writer publishes each committed batch to the log, which wakes
        // every waiting reader.
        let writer = MessageWriter {
            next_id: last_id + 1,
            keys,
            log: log.clone(),
        };
        let writer = db.start("room-writer", write_queue, writer)?;
        Ok(Room { log, writer })
    }

    /// Validated message in, durable message (with its id) out — or, for a
    /// resend of a stored key, the message stored the first time. Returns
    /// once the message is committed and visible to every reader.
    pub async fn append(&self, message: NewMessage) -> Result<Appended, StoreError> {
        self.writer.submit(message).await
    }

    /// The messages, for the transports.
    pub fn log(&self) -> &Log<StoredMessage> {
        &self.log
    }

    /// The newest id in the room.
    pub fn last_id(&self) -> u64 {
        self.log.last()
    }

    /// Commits what is queued and stops the writer (last step of shutdown).
    pub async fn flush_and_stop(&self) {
        self.writer.shutdown().await;
    }
}

fn create_table(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS messages (
             id      INTEGER PRIMARY KEY,
             author  TEXT    NOT NULL,
             text    TEXT    NOT NULL,
             sent_at INTEGER NOT NULL,
             via     TEXT    NOT NULL,
             key     TEXT,
             account INTEGER NOT NULL DEFAULT 0
         ) STRICT;",
    )?;
    // A database made before resend keys (or accounts) existed lacks the
    // column: add it, rewriting nothing.
    for (column, definition) in [("key", "TEXT"), ("account", "INTEGER NOT NULL DEFAULT 0")] {
        let has: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('messages') WHERE name = ?1",
            [column],
            |row| row.get(0),
        )?;
        if !has {
            conn.execute_batch(&format!(
                "ALTER TABLE messages ADD COLUMN {column} {definition};"
            ))?;
        }
    }
    Ok(())
}

/// The room's writer thread's state.
struct MessageWriter {
    /// The id the next stored message gets.
    next_id: u64,
    /// Resend keys of the newest messages.
    keys: Keys,
    /// Where committed messages are published.
    log: Log<StoredMessage>,
}

/// One append of a batch, once the writer has looked at its key.
enum Slot {
    /// A new message: gets the next id.
    New(NewMessage),
    /// A resend of a message stored before this batch.
    Stored(Arc<StoredMessage>),
    /// A resend of the `n`th new message of this same batch.
    Earlier(usize),
}

impl Writer for MessageWriter {
    type Job = NewMessage;
    type Done = Appended;

    /// Resends are answered with what was stored before; new messages get
    /// consecutive ids in one transaction.
    fn commit(
        &mut self,
        conn: &mut Connection,
        batch: Vec<NewMessage>,
    ) -> Vec<Result<Appended, StoreError>> {
        // Sort out the resends first. A key seen earlier in this same batch
        // is a resend too: the two copies arrived in one group commit.
        let count = batch.len();
        let mut in_batch: HashMap<(String, String), usize> = HashMap::new();
        let mut new = 0;
        let slots: Vec<Slot> = batch
            .into_iter()
            .map(|msg| {
                let Some(key) = msg.key.clone() else {
                    new += 1;
                    return Slot::New(msg);
                };
                if let Some(stored) = self.keys.get(&msg.author, &key) {
                    return Slot::Stored(stored);
                }
                let author_key = (msg.author.clone(), key);
                if let Some(&earlier) = in_batch.get(&author_key) {
                    return Slot::Earlier(earlier);
                }
                in_batch.insert(author_key, new);
                new += 1;
                Slot::New(msg)
            })
            .collect();

        let sent_at = now_ms();
        let first_id = self.next_id;
        let inserted = (|| -> Result<(), rusqlite::Error> {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO messages (id, author, text, sent_at, via, key, account) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                let new_messages = slots.iter().filter_map(|slot| match slot {
                    Slot::New(msg) => Some(msg),
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
                        msg.account,
                    ])?;
                }
            }
            tx.commit()
        })();
        if let Err(err) = inserted {
            // Re-read the newest id rather than trusting our counter: if the
            // commit did reach the disk after all, its ids must not be reused.
            if let Ok(last) = max_id(conn) {
                self.next_id = last + 1;
            }
            return refuse_all(count, &err);
        }

        let mut stored: Vec<Arc<StoredMessage>> = Vec::with_capacity(new);
        let mut answers = Vec::with_capacity(count);
        for slot in slots {
            answers.push(match slot {
                Slot::New(msg) => {
                    let message = Arc::new(StoredMessage::new(Message {
                        id: first_id + stored.len() as u64,
                        author: msg.author,
                        text: msg.text,
                        sent_at,
                        via: msg.via,
                        account: msg.account,
                    }));
                    if let Some(key) = msg.key {
                        self.keys.insert(key, Arc::clone(&message));
                    }
                    stored.push(Arc::clone(&message));
                    (message, true)
                }
                Slot::Earlier(n) => (Arc::clone(&stored[n]), false),
                Slot::Stored(message) => (message, false),
            });
        }
        self.next_id += stored.len() as u64;
        self.keys
            .forget_before(self.next_id.saturating_sub(KEYS_REMEMBERED));
        // Publish before answering: once a sender hears its id, every reader
        // can already see the message (read-your-writes).
        self.log.publish(&stored);
        answers
            .into_iter()
            .map(|(message, created)| Ok(Appended { message, created }))
            .collect()
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
            "SELECT id, author, text, sent_at, via, account, key FROM messages \
             WHERE id > ?1 AND key IS NOT NULL ORDER BY id",
        )?;
        let since = last_id.saturating_sub(KEYS_REMEMBERED) as i64;
        let rows = stmt.query_map([since], |row| Ok((message_from_row(row)?, row.get(6)?)))?;
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

/// Messages with `id > since`, oldest first, at most `limit`.
fn read_range(conn: &Connection, since: u64, limit: usize) -> rusqlite::Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, author, text, sent_at, via, account FROM messages \
         WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    // SQLite integers are i64; ids beyond i64::MAX cannot exist in the table.
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![since, limit as i64], message_from_row)?;
    rows.collect()
}

/// A row that starts `id, author, text, sent_at, via, account`.
fn message_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    let via: String = row.get(4)?;
    Ok(Message {
        id: row.get::<_, i64>(0)? as u64,
        author: row.get(1)?,
        text: row.get(2)?,
        sent_at: row.get::<_, i64>(3)? as u64,
        via: Via::parse(&via).unwrap_or(Via::Api),
        account: row.get(5)?,
    })
}
