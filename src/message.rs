//! The chat message: what a client may send, what the room stores, and the
//! bytes every transport puts on the wire.
//!
//! Validation lives here, once, so that a message is held to the same rules
//! whether it arrived as `POST /api/messages` or as a WebSocket `send` frame.
//! A message that fails validation never reaches the store, so it never takes
//! an id (the contract: "a rejected message takes no id").
//!
//! A stored message is serialised to JSON exactly once, when it is committed
//! (its [`Wire`] forms); every transport then copies those bytes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::wire::{Entry, Wire};

/// Longest author name, in Unicode scalar values after trimming (contract).
pub const MAX_AUTHOR_CHARS: usize = 32;
/// Longest message text, in Unicode scalar values after trimming (contract).
pub const MAX_TEXT_CHARS: usize = 2000;
/// Longest resend key, in (printable ASCII) characters (contract v2).
pub const MAX_KEY_CHARS: usize = 64;

/// Which page (transport) the sender used. Stored with the message so the
/// class can see who is chatting from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The setInterval polling page.
    Interval,
    /// The setTimeout polling page.
    Timeout,
    /// The long-polling page.
    Longpoll,
    /// The WebSocket page (and any WebSocket `send` frame).
    Websocket,
    /// The Server-Sent Events page.
    Sse,
    /// Anything else: curl, a script, a client that did not say.
    Api,
}

impl Via {
    /// Every value, in the order the lesson teaches them.
    pub const ALL: [Via; 6] = [
        Via::Interval,
        Via::Timeout,
        Via::Longpoll,
        Via::Websocket,
        Via::Sse,
        Via::Api,
    ];

    /// The wire name (`"interval"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Interval => "interval",
            Via::Timeout => "timeout",
            Via::Longpoll => "longpoll",
            Via::Websocket => "websocket",
            Via::Sse => "sse",
            Via::Api => "api",
        }
    }

    /// Parses a wire name; `None` for anything the contract does not list.
    pub fn parse(s: &str) -> Option<Via> {
        Via::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message as stored and as sent to readers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Assigned by the store at commit time; strictly increasing, no gaps.
    pub id: u64,
    /// Who wrote it (trimmed, 1..=32 characters).
    pub author: String,
    /// What they wrote (trimmed, 1..=2000 characters).
    pub text: String,
    /// Server clock at commit, milliseconds since the Unix epoch.
    pub sent_at: u64,
    /// The page the sender used.
    pub via: Via,
    /// True when the author is a signed-in account (contract v2: readers
    /// see `"account": true`; left out for guests).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub account: bool,
}

/// A message that passed validation and waits for the store to give it an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Trimmed author.
    pub author: String,
    /// Trimmed text.
    pub text: String,
    /// Where it came from.
    pub via: Via,
    /// The sender's resend key, if it sent one: a second message with the
    /// same author and key is the same message sent again (a retry after a
    /// timeout), and is answered with the first instead of being stored.
    pub key: Option<String>,
    /// The author is a signed-in account's name.
    pub account: bool,
}

/// Why a message was refused. Each variant maps to one stable error `code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    /// `author` empty after trimming, or too long.
    #[error("author must be 1 to {max} characters after trimming (got {got})")]
    AuthorLength {
        /// Characters after trimming.
        got: usize,
        /// The limit in force.
        max: usize,
    },
    /// `text` empty after trimming, or too long.
    #[error("text must be 1 to {max} characters after trimming (got {got})")]
    TextLength {
        /// Characters after trimming.
        got: usize,
        /// The limit in force.
        max: usize,
    },
    /// A control character other than newline, carriage return or tab.
    #[error(
        "{field} contains a control character (U+{code_point:04X}); only newline, carriage return and tab are allowed"
    )]
    ControlCharacter {
        /// `author` or `text`.
        field: &'static str,
        /// The offending character.
        code_point: u32,
    },
    /// `via` is not one of the contract's names.
    #[error("via must be one of interval, timeout, longpoll, websocket, sse, api")]
    UnknownVia,
    /// `key` is empty, too long, or not printable ASCII.
    #[error("key must be 1 to {MAX_KEY_CHARS} printable ASCII characters (U+0020 to U+007E)")]
    Key,
}

impl InvalidMessage {
    /// The stable snake_case code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            InvalidMessage::AuthorLength { .. } => "invalid_author",
            InvalidMessage::TextLength { .. } => "invalid_text",
            InvalidMessage::ControlCharacter { .. } => "control_character",
            InvalidMessage::UnknownVia => "invalid_via",
            InvalidMessage::Key => "invalid_key",
        }
    }
}

impl NewMessage {
    /// Validates raw client input against the contract's rules.
    ///
    /// `max_text` lets the server tighten the text limit below the
    /// contract's 2,000 characters (never loosen it).
    pub fn validate(
        author: &str,
        text: &str,
        via: Via,
        max_text: usize,
    ) -> Result<NewMessage, InvalidMessage> {
        NewMessage::validate_keyed(author, text, via, None, max_text)
    }

    /// [`validate`](NewMessage::validate), with the sender's resend key.
    pub fn validate_keyed(
        author: &str,
        text: &str,
        via: Via,
        key: Option<&str>,
        max_text: usize,
    ) -> Result<NewMessage, InvalidMessage> {
        // Printable ASCII (U+0020 to U+007E): a key is a token a program
        // made up, and its bytes are its characters.
        if key.is_some_and(|k| {
            k.is_empty()
                || k.len() > MAX_KEY_CHARS
                || !k.bytes().all(|b| (b' '..=b'~').contains(&b))
        }) {
            return Err(InvalidMessage::Key);
        }
        // Controls are checked before trimming: some of them (U+000B, U+000C,
        // U+001C..U+001F, U+0085) count as whitespace and would otherwise
        // slip through by being trimmed off the ends.
        check_controls("author", author)?;
        check_controls("text", text)?;
        let author = author.trim();
        let text = text.trim();
        // Counted in Unicode scalar values (`chars()`), not bytes: "ü" is one
        // character even though UTF-8 spends two bytes on it.
        let author_chars = author.chars().count();
        if author_chars == 0 || author_chars > MAX_AUTHOR_CHARS {
            return Err(InvalidMessage::AuthorLength {
                got: author_chars,
                max: MAX_AUTHOR_CHARS,
            });
        }
        let max_text = max_text.min(MAX_TEXT_CHARS);
        let text_chars = text.chars().count();
        if text_chars == 0 || text_chars > max_text {
            return Err(InvalidMessage::TextLength {
                got: text_chars,
                max: max_text,
            });
        }
        Ok(NewMessage {
            author: author.to_owned(),
            text: text.to_owned(),
            via,
            key: key.map(str::to_owned),
            account: false,
        })
    }
}

/// Rejects Unicode category Cc (C0, DEL, C1) except `\n`, `\r`, `\t`.
/// Rust's `char::is_control` is exactly "general category Cc".
fn check_controls(field: &'static str, s: &str) -> Result<(), InvalidMessage> {
    match s
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Some(c) => Err(InvalidMessage::ControlCharacter {
            field,
            code_point: c as u32,
        }),
        None => Ok(()),
    }
}

/// A committed message plus its pre-encoded wire forms, shared (`Arc`) by
/// every reader.
#[derive(Debug)]
pub struct StoredMessage {
    /// The message itself.
    pub message: Message,
    /// `{"id":…,"author":…,…}` inside HTTP answers;
    /// `{"type":"message","message":{…}}` as a WebSocket frame;
    /// `id: N\nevent: message\ndata: {…}\n\n` as a Server-Sent Event.
    pub wire: Wire,
}

impl StoredMessage {
    /// Encodes the message once for every transport.
    pub fn new(message: Message) -> StoredMessage {
        // unwrap: serialising a struct of strings and integers cannot fail.
        let json = serde_json::to_vec(&message).unwrap();
        StoredMessage {
            wire: Wire::wrapped("message", message.id, json),
            message,
        }
    }

    /// The message id.
    pub fn id(&self) -> u64 {
        self.message.id
    }
}

impl Entry for StoredMessage {
    fn position(&self) -> u64 {
        self.message.id
    }

    fn wire(&self) -> &Wire {
        &self.wire
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_counts_characters_not_bytes() {
        let m = NewMessage::validate("  ada ", " hi ", Via::Api, MAX_TEXT_CHARS).unwrap();
        assert_eq!((m.author.as_str(), m.text.as_str()), ("ada", "hi"));
        // 32 two-byte characters are 64 bytes but exactly at the limit.
        let name = "ü".repeat(32);
        assert!(NewMessage::validate(&name, "x", Via::Api, MAX_TEXT_CHARS).is_ok());
        let too_long = "ü".repeat(33);
        assert_eq!(
            NewMessage::validate(&too_long, "x", Via::Api, MAX_TEXT_CHARS)
                .unwrap_err()
                .code(),
            "invalid_author"
        );
    }

    #[test]
    fn whitespace_only_is_empty() {
        let err = NewMessage::validate("ada", " \n\t ", Via::Api, MAX_TEXT_CHARS).unwrap_err();
        assert_eq!(err.code(), "invalid_text");
    }

    #[test]
    fn control_characters_except_newline_cr_tab_are_refused() {
        assert!(NewMessage::validate("ada", "a\nb\r\tc", Via::Api, MAX_TEXT_CHARS).is_ok());
        for bad in [
            '\u{0}', '\u{7}', '\u{b}', '\u{1b}', '\u{1f}', '\u{7f}', '\u{85}', '\u{9f}',
        ] {
            // In the middle, and at the end where trimming would eat the
            // whitespace-like ones.
            for text in [format!("a{bad}b"), format!("ab{bad}")] {
                let err = NewMessage::validate("ada", &text, Via::Api, MAX_TEXT_CHARS).unwrap_err();
                assert_eq!(err.code(), "control_character", "{bad:?}");
            }
        }
        // Format characters (Cf) such as a zero-width joiner are not Cc.
        assert!(NewMessage::validate("ada", "👩\u{200d}💻", Via::Api, MAX_TEXT_CHARS).is_ok());
    }

    #[test]
    fn keys_are_printable_ascii_up_to_64() {
        let ok = |key: &str| {
            NewMessage::validate_keyed("ada", "hi", Via::Api, Some(key), MAX_TEXT_CHARS)
        };
        assert_eq!(ok("c-1").unwrap().key.as_deref(), Some("c-1"));
        assert!(ok(&"k".repeat(64)).is_ok());
        assert!(ok("a b").is_ok(), "the space is printable");
        for bad in ["", "ü", "a\u{7f}", "a\tb", &"k".repeat(65)] {
            assert_eq!(ok(bad).unwrap_err().code(), "invalid_key", "{bad:?}");
        }
    }

    #[test]
    fn wire_forms_agree() {
        let m = StoredMessage::new(Message {
            id: 7,
            author: "ada".into(),
            text: "line1\nline2".into(),
            sent_at: 1,
            via: Via::Websocket,
            account: false,
        });
        let frame: serde_json::Value = serde_json::from_str(&m.wire.ws_frame).unwrap();
        assert_eq!(frame["type"], "message");
        assert_eq!(frame["message"]["via"], "websocket");
        let event = std::str::from_utf8(&m.wire.sse_event).unwrap();
        assert!(event.starts_with("id: 7\nevent: message\ndata: {"));
        assert!(event.ends_with("}\n\n"));
        assert_eq!(
            event.trim_end().lines().count(),
            3,
            "data must stay on one line"
        );
    }
}
