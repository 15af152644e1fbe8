//! What every log's entries have in common: a position, and their bytes on
//! each transport's wire, encoded once.

use bytes::Bytes;
use bytestring::ByteString;

/// One entry of an ordered log, as every reader gets it.
pub trait Entry: Send + Sync + 'static {
    /// Where it stands in its log: 1 for the first entry, then 2, 3, … with
    /// no gaps (a message's `id`, an operation's `rev`).
    fn position(&self) -> u64;

    /// Its bytes on each transport, encoded once when it was stored.
    fn wire(&self) -> &Wire;
}

/// An entry's pre-encoded forms. Every transport copies these bytes instead
/// of running serde again for each reader: with 1,000 WebSocket clients an
/// entry is encoded once, not 1,000 times. Cloning a field only bumps a
/// reference count.
#[derive(Debug, Clone)]
pub struct Wire {
    /// The entry as JSON — one element of a polling answer's array.
    pub json: Bytes,
    /// One WebSocket text frame.
    pub ws_frame: ByteString,
    /// One Server-Sent Event, `id: N` first, ending in a blank line.
    pub sse_event: Bytes,
}
