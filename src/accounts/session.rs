//! Session tokens (what the cookie holds), session ids (what the server
//! stores), roles, and the session a request turns out to belong to.
//!
//! # Token and id
//!
//! A session *token* is 256 bits from the operating system's CSPRNG,
//! written as 64 lowercase hex digits — safe in a cookie without quoting.
//! Guessing one is hopeless (2^256 possibilities), so it can be the whole
//! credential.
//!
//! The server never stores the token. It stores its SHA-256, the
//! [`SessionId`]: someone who reads the database (a backup, a copied file)
//! learns ids, and an id cannot be turned back into a cookie that works. A
//! fast hash is enough here, unlike for passwords: the token is random and
//! long, so there is nothing to guess by brute force.
//!
//! Looking a session up is `HashMap::get(sha256(token))`. That compare is
//! not constant-time, and need not be: what an attacker could learn from its
//! timing is how many leading bytes of *a hash of their own guess* match a
//! stored id, which says nothing useful about any token.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::AccountError;

/// Bytes of randomness in a token.
pub const TOKEN_BYTES: usize = 32;

/// What the session cookie holds. Secret: `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// A new token from the OS's CSPRNG.
    pub(crate) fn generate() -> Result<SessionToken, AccountError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)
            .map_err(|e| AccountError::Store(format!("the OS random generator failed: {e}")))?;
        Ok(SessionToken(hex(&bytes)))
    }

    /// The cookie value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id it is stored under.
    pub fn id(&self) -> SessionId {
        SessionId::of(&self.0)
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// The SHA-256 of a token: how the server knows a session. Not a secret
/// (it cannot be turned back into a token), so it may appear in logs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub(crate) [u8; 32]);

impl SessionId {
    /// The id of a token. Anything that is not a well-formed token (wrong
    /// length, not lowercase hex) has no id, so a mangled cookie costs no
    /// hashing and no lookup.
    pub fn parse_token(token: &str) -> Option<SessionId> {
        let well_formed = token.len() == 2 * TOKEN_BYTES
            && token
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        well_formed.then(|| SessionId::of(token))
    }

    fn of(token: &str) -> SessionId {
        SessionId(Sha256::digest(token.as_bytes()).into())
    }

    /// The raw 32 bytes, as stored in the database.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell sessions apart in a log line.
        write!(f, "SessionId({}…)", hex(&self.0[..4]))
    }
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everybody.
    Student,
    /// The one account named by `--teacher`: may change the lab and end
    /// other people's sessions.
    Teacher,
}

impl Role {
    /// The wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Teacher => "teacher",
        }
    }

    /// Parses a stored role.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "student" => Some(Role::Student),
            "teacher" => Some(Role::Teacher),
            _ => None,
        }
    }
}

/// A live session, as a request handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Which session: pass it to [`Accounts::ended`](super::Accounts::ended).
    pub id: SessionId,
    /// The account's display name: the `author` of everything this session
    /// sends.
    pub name: Arc<str>,
    /// The account's role.
    pub role: Role,
    /// When it ends by itself, in ms since the Unix epoch (for the cookie's
    /// `Max-Age`).
    pub expires_at_ms: u64,
}

/// What creating an account or signing in gives the caller: the token for
/// the cookie, and the session it opens.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Goes into the `Set-Cookie` header, and nowhere else.
    pub token: SessionToken,
    /// The new session.
    pub session: Session,
}

/// One row of the teacher's "who is signed in" list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedInUser {
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Live sessions (browsers, devices) of this account.
    pub sessions: usize,
    /// The latest request of any of them, in ms since the Unix epoch (since
    /// the server started: before a restart, the time of the sign-in).
    pub last_seen_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_64_hex_digits_and_all_different() {
        let a = SessionToken::generate().unwrap();
        let b = SessionToken::generate().unwrap();
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_ne!(a.id(), b.id());
    }

    #[test]
    fn the_id_is_the_sha256_of_the_token() {
        let token = "0".repeat(64);
        // sha256 of 64 ASCII zeros, computed independently (sha256sum).
        let expected = "60e05bd1b195af2f94112fa7197a5c88289058840ce7c6df9693756bc6250f55";
        assert_eq!(
            hex(SessionId::parse_token(&token).unwrap().as_bytes()),
            expected
        );
    }

    #[test]
    fn malformed_tokens_have_no_id() {
        assert!(SessionId::parse_token("").is_none());
        assert!(SessionId::parse_token(&"a".repeat(63)).is_none());
        assert!(SessionId::parse_token(&"A".repeat(64)).is_none());
        assert!(SessionId::parse_token(&"g".repeat(64)).is_none());
        assert!(SessionId::parse_token(&"é".repeat(32)).is_none());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = SessionToken::generate().unwrap();
        let shown = format!("{token:?} {:?}", token.id());
        assert!(!shown.contains(token.as_str()));
        assert!(shown.starts_with("SessionToken(<redacted>) SessionId("));
    }
}
