//! Why an account operation failed, with the contract's stable codes.
//!
//! The HTTP layer turns an [`AccountError`] into `{"error","code"}` with
//! [`AccountError::status`] and [`AccountError::code`] (and a `Retry-After`
//! header from [`AccountError::retry_after`]); the sentences are written for
//! the person at the keyboard. `sign_in_required` is not here: whether a
//! request needed a session is the HTTP layer's decision.

use std::time::Duration;

use super::name::InvalidName;

/// A failed account operation.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// 422 `invalid_name`: the name breaks the author's rules.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// 422 `invalid_password`: too short or too long.
    #[error("a password must be {min} to {max} characters (got {got})")]
    InvalidPassword {
        /// Unicode scalar values typed.
        got: usize,
        /// Shortest allowed.
        min: usize,
        /// Longest allowed.
        max: usize,
    },
    /// 409 `name_taken`: another account has this name (in any case).
    #[error("that name belongs to an account already; choose another one")]
    NameTaken,
    /// 403 `name_reserved`: the teacher's name, asked for without the token.
    #[error(
        "that name is reserved for the teacher; creating it needs the teacher token (Authorization: Bearer <token>)"
    )]
    NameReserved,
    /// 401 `bad_credentials`: the same answer for an unknown name and for a
    /// wrong password, so that nobody can find out which names exist.
    #[error("wrong name or password")]
    BadCredentials,
    /// 429 `rate_limited`: too many failed sign-ins for this name or from
    /// this address.
    #[error("too many failed sign-ins: wait {}s before trying again", retry_secs(*.0))]
    RateLimited(Duration),
    /// 404 `no_such_account`: ending the sessions of a name nobody has.
    #[error("there is no account with that name")]
    NoSuchAccount,
    /// 500 `store_failed`: the database refused.
    #[error("the account database failed: {0}")]
    Store(String),
    /// 500 `hash_failed`: the password hasher failed (never says why in
    /// terms of the password).
    #[error("could not hash the password: {0}")]
    Hash(String),
}

/// Whole seconds, rounded up, as `Retry-After` wants them.
pub fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl AccountError {
    /// The stable snake_case code sent to clients.
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::InvalidName(_) => "invalid_name",
            AccountError::InvalidPassword { .. } => "invalid_password",
            AccountError::NameTaken => "name_taken",
            AccountError::NameReserved => "name_reserved",
            AccountError::BadCredentials => "bad_credentials",
            AccountError::RateLimited(_) => "rate_limited",
            AccountError::NoSuchAccount => "no_such_account",
            AccountError::Store(_) => "store_failed",
            AccountError::Hash(_) => "hash_failed",
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            AccountError::InvalidName(_) | AccountError::InvalidPassword { .. } => 422,
            AccountError::NameTaken => 409,
            AccountError::NameReserved => 403,
            AccountError::BadCredentials => 401,
            AccountError::RateLimited(_) => 429,
            AccountError::NoSuchAccount => 404,
            AccountError::Store(_) | AccountError::Hash(_) => 500,
        }
    }

    /// How long to wait before trying again, for `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AccountError::RateLimited(wait) => Some(*wait),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for AccountError {
    fn from(err: rusqlite::Error) -> Self {
        AccountError::Store(err.to_string())
    }
}

impl From<tokio::task::JoinError> for AccountError {
    fn from(err: tokio::task::JoinError) -> Self {
        AccountError::Store(format!("a database task failed: {err}"))
    }
}
