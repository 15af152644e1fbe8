//! The `accounts` and `sessions` tables, in the same SQLite file as the
//! message log but through a connection of their own.
//!
//! Every function here blocks (SQLite does), so [`super::Accounts`] only
//! calls them from tokio's blocking pool or at start-up, never on an async
//! worker.
//!
//! # Sharing the file with the message writer
//!
//! SQLite allows one writer at a time per database file. The message store's
//! writer thread commits often; an account write that arrives meanwhile
//! waits for it ([`BUSY_TIMEOUT`]) instead of failing at once with
//! `SQLITE_BUSY`. Write transactions start with `BEGIN IMMEDIATE`, which
//! takes the write lock up front: a transaction that first reads and then
//! tries to write can be refused *without* waiting in WAL mode, because by
//! then its snapshot may be stale.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, TransactionBehavior, params};

use super::error::AccountError;
use super::password::PhcString;
use super::session::{Role, SessionId};

/// How long an account write waits for the message writer to finish its
/// commit. A commit takes about a millisecond; five seconds means "the disk
/// is in trouble".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An `accounts` row.
#[derive(Debug)]
pub struct AccountRow {
    /// Primary key.
    pub id: i64,
    /// NFC + case folded: unique.
    pub key: String,
    /// As typed (trimmed, NFC).
    pub name: String,
    /// As stored.
    pub role: Role,
    /// Argon2id, PHC string.
    pub phc: PhcString,
}

/// A `sessions` row, without the account it belongs to.
#[derive(Debug)]
pub struct SessionRow {
    /// SHA-256 of the token.
    pub id: SessionId,
    /// Sign-in time, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// End of life, ms since the Unix epoch.
    pub expires_at_ms: u64,
}

/// What [`load`] finds at start-up.
#[derive(Debug)]
pub struct Loaded {
    /// Every account.
    pub accounts: Vec<AccountRow>,
    /// Every live session, with the id of its account.
    pub sessions: Vec<(i64, SessionRow)>,
}

/// Opens its own connection to `path` (or a private in-memory database for
/// `:memory:`) and creates the tables on first start.
pub fn open(path: &Path) -> Result<Connection, AccountError> {
    let conn = if path.as_os_str() == ":memory:" {
        Connection::open_in_memory()?
    } else {
        let conn = Connection::open(path)?;
        // The store sets WAL too; it is a property of the file, so whichever
        // opens first sets it and the other's request changes nothing.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn
    };
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // A new account or session is rare and must survive a power cut.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS accounts (
             id            INTEGER PRIMARY KEY,
             name_key      TEXT    NOT NULL UNIQUE,
             name          TEXT    NOT NULL,
             role          TEXT    NOT NULL CHECK (role IN ('student', 'teacher')),
             password_hash TEXT    NOT NULL,
             created_at    INTEGER NOT NULL
         ) STRICT;
         CREATE TABLE IF NOT EXISTS sessions (
             id_hash    BLOB    PRIMARY KEY CHECK (length(id_hash) = 32),
             account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
             created_at INTEGER NOT NULL,
             expires_at INTEGER NOT NULL
         ) STRICT, WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS sessions_by_account ON sessions (account_id);",
    )?;
    Ok(conn)
}

/// Deletes the sessions that expired while the server was stopped, then
/// reads every account and every live session (with its account's id).
pub fn load(conn: &mut Connection, now_ms: u64) -> Result<Loaded, AccountError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1",
        [now_ms as i64],
    )?;
    let accounts = {
        let mut stmt =
            tx.prepare("SELECT id, name_key, name, role, password_hash FROM accounts")?;
        stmt.query_map([], |row| {
            let role: String = row.get(3)?;
            Ok(AccountRow {
                id: row.get(0)?,
                key: row.get(1)?,
                name: row.get(2)?,
                // The CHECK constraint admits only these two.
                role: Role::parse(&role).unwrap_or(Role::Student),
                phc: PhcString::new(row.get(4)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?
    };
    let sessions = {
        let mut stmt =
            tx.prepare("SELECT id_hash, account_id, created_at, expires_at FROM sessions")?;
        stmt.query_map([], |row| {
            let hash: Vec<u8> = row.get(0)?;
            Ok((
                hash,
                row.get(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?
        .filter_map(|row| match row {
            // The CHECK constraint makes every id 32 bytes.
            Ok((hash, account_id, created, expires)) => {
                let id: [u8; 32] = hash.try_into().ok()?;
                Some(Ok((
                    account_id,
                    SessionRow {
                        id: SessionId(id),
                        created_at_ms: created as u64,
                        expires_at_ms: expires as u64,
                    },
                )))
            }
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<Vec<_>, _>>()?
    };
    tx.commit()?;
    Ok(Loaded { accounts, sessions })
}

/// Inserts an account and its first session in one transaction. A name
/// whose key exists already is [`AccountError::NameTaken`]: the `UNIQUE`
/// constraint decides, even between two servers sharing the file.
pub fn insert_account(
    conn: &mut Connection,
    key: &str,
    name: &str,
    role: Role,
    phc: &PhcString,
    session: &SessionRow,
) -> Result<i64, AccountError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let inserted = tx.execute(
        "INSERT INTO accounts (name_key, name, role, password_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            key,
            name,
            role.as_str(),
            phc.as_str(),
            session.created_at_ms as i64
        ],
    );
    match inserted {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
            return Err(AccountError::NameTaken);
        }
        Err(e) => return Err(e.into()),
    }
    let id = tx.last_insert_rowid();
    insert_session_in(&tx, id, session)?;
    tx.commit()?;
    Ok(id)
}

/// Inserts a session of an existing account, ending `replaced` (the oldest
/// sessions beyond the per-account cap) in the same transaction.
pub fn insert_session(
    conn: &mut Connection,
    account_id: i64,
    session: &SessionRow,
    replaced: &[SessionId],
) -> Result<(), AccountError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for old in replaced {
        tx.execute(
            "DELETE FROM sessions WHERE id_hash = ?1",
            [&old.as_bytes()[..]],
        )?;
    }
    insert_session_in(&tx, account_id, session)?;
    tx.commit()?;
    Ok(())
}

fn insert_session_in(
    conn: &Connection,
    account_id: i64,
    session: &SessionRow,
) -> Result<(), AccountError> {
    conn.execute(
        "INSERT INTO sessions (id_hash, account_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            &session.id.as_bytes()[..],
            account_id,
            session.created_at_ms as i64,
            session.expires_at_ms as i64
        ],
    )?;
    Ok(())
}

/// Deletes one session; true if it was there.
pub fn delete_session(conn: &Connection, id: &SessionId) -> Result<bool, AccountError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE id_hash = ?1",
        [&id.as_bytes()[..]],
    )? > 0)
}

/// Deletes every session of one account; how many there were.
pub fn delete_sessions_of(conn: &Connection, account_id: i64) -> Result<usize, AccountError> {
    Ok(conn.execute("DELETE FROM sessions WHERE account_id = ?1", [account_id])?)
}

/// Deletes the sessions whose time is up.
pub fn delete_expired(conn: &Connection, now_ms: u64) -> Result<usize, AccountError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1",
        [now_ms as i64],
    )?)
}
