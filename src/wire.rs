//! What every log's entries have in common: a position, and their bytes on
//! each transport's wire, encoded once.

use bytes::{BufMut, Bytes, BytesMut};
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

impl Wire {
    /// The forms of an entry whose JSON is `json` (an object), named `kind`
    /// (`op`, `presence`), at `position`: the WebSocket frame is the same
    /// object with `"type":kind` in front — `{"type":"op","rev":7,…}`.
    pub fn flat(kind: &str, position: u64, json: Vec<u8>) -> Wire {
        debug_assert!(json.starts_with(b"{"), "an entry's JSON is an object");
        let mut frame = Vec::with_capacity(json.len() + kind.len() + 12);
        frame.extend_from_slice(br#"{"type":""#);
        frame.extend_from_slice(kind.as_bytes());
        frame.extend_from_slice(b"\",");
        frame.extend_from_slice(&json[1..]);
        Wire::with_frame(kind, position, json, frame)
    }

    /// The forms of an entry whose WebSocket frame wraps it under its kind
    /// — the chat's `{"type":"message","message":{…}}`.
    pub fn wrapped(kind: &str, position: u64, json: Vec<u8>) -> Wire {
        let mut frame = Vec::with_capacity(json.len() + 2 * kind.len() + 16);
        frame.extend_from_slice(br#"{"type":""#);
        frame.extend_from_slice(kind.as_bytes());
        frame.extend_from_slice(br#"",""#);
        frame.extend_from_slice(kind.as_bytes());
        frame.extend_from_slice(br#"":"#);
        frame.extend_from_slice(&json);
        frame.push(b'}');
        Wire::with_frame(kind, position, json, frame)
    }

    /// The Server-Sent Event is the same for every log:
    /// `id: <position>`, `event: <kind>`, `data: <json>`, a blank line.
    /// serde_json escapes newlines inside strings, so the JSON is always one
    /// line, as SSE's `data:` field requires.
    fn with_frame(kind: &str, position: u64, json: Vec<u8>, frame: Vec<u8>) -> Wire {
        let mut event = BytesMut::with_capacity(json.len() + kind.len() + 32);
        event.put_slice(b"id: ");
        event.put_slice(position.to_string().as_bytes());
        event.put_slice(b"\nevent: ");
        event.put_slice(kind.as_bytes());
        event.put_slice(b"\ndata: ");
        event.put_slice(&json);
        event.put_slice(b"\n\n");
        Wire {
            json: Bytes::from(json),
            // unwrap: made of serde_json's output (valid UTF-8) and ASCII.
            ws_frame: ByteString::try_from(frame).unwrap(),
            sse_event: event.freeze(),
        }
    }
}
