//! The chat room: one ordered [`Log`] of messages, kept durable by the
//! [`store`](crate::store).
//!
//! The room joins the two halves of a message's life. Writing: a validated
//! [`NewMessage`] goes to the store's writer thread, which gives it an id
//! inside a transaction and commits it. Reading: only after the commit does
//! the writer publish the message to the room's log, which wakes every
//! waiting reader (see [`crate::log`] for how reading and waking work; it is
//! the same for every log). So readers never see a message that is not
//! durable, and the ids they see have no gaps.

use std::sync::Arc;

use crate::log::{Log, Older};
use crate::message::{NewMessage, StoredMessage};
use crate::store::{Appended, Store, StoreError, StoreHandle};

/// A cheap-to-clone handle to the room; every handler holds one.
#[derive(Clone)]
pub struct Room {
    /// The messages, as every transport reads them.
    log: Log<StoredMessage>,
    /// The durable store (and its writer thread).
    store: StoreHandle,
}

impl Room {
    /// Loads the newest messages from `store` and starts its writer.
    ///
    /// `window` is how many messages to keep in memory; with an in-memory
    /// database the whole log is kept, since there is nowhere else to read
    /// it from.
    pub fn open(store: Store, window: usize, write_queue: usize) -> Result<Room, StoreError> {
        let last_id = store.last_id();
        let recent = store
            .recent(window.min(last_id as usize))?
            .into_iter()
            .map(|m| Arc::new(StoredMessage::new(m)))
            .collect();
        // Messages that have left the memory window are read back from disk.
        let older = store.reader()?.map(|reader| {
            let older: Older<StoredMessage> = Arc::new(move |since, limit| {
                let reader = reader.clone();
                Box::pin(async move {
                    let messages = reader.read_since(since, limit).await?;
                    Ok(messages
                        .into_iter()
                        .map(|m| Arc::new(StoredMessage::new(m)))
                        .collect())
                })
            });
            older
        });
        let log = Log::new(recent, last_id, window, older);

        // The writer thread publishes each committed batch to the log, which
        // wakes every waiting reader.
        let published = log.clone();
        let store = store.start(write_queue, move |batch| published.publish(batch))?;
        Ok(Room { log, store })
    }

    /// Validated message in, durable message (with its id) out — or, for a
    /// resend of a stored key, the message stored the first time. Returns
    /// once the message is committed and visible to every reader.
    pub async fn append(&self, message: NewMessage) -> Result<Appended, StoreError> {
        self.store.append(message).await
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
        self.store.shutdown().await;
    }
}
