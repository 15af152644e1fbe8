//! Passwords: their bounds, and Argon2id hashing off the async workers.
//!
//! # Why Argon2id, and why it must not run on an async worker
//!
//! A password hash is *meant* to be slow and to need memory, so that a
//! stolen database cannot be tried against millions of guesses a second.
//! Argon2id (RFC 9106) is the memory-hard function OWASP recommends; the
//! parameters are in [`PasswordParams`] and, with their measured cost, in
//! `docs/decisions.md`. A hash takes tens of milliseconds of CPU. On an
//! async worker that is tens of milliseconds during which none of the
//! worker's other connections — the whole room — gets an answer. So every
//! hash runs on tokio's blocking pool, and at most
//! [`Hasher::concurrency`] at once: a burst of sign-ins queues here instead
//! of eating every core and all the memory (each hash holds
//! [`PasswordParams::memory_kib`] of RAM while it runs).
//!
//! # Stored form
//!
//! The PHC string (`$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`): it carries
//! its own salt and parameters, so the parameters can change later without
//! breaking old passwords. It is a secret and is never logged: [`PhcString`]
//! prints as `PhcString(<redacted>)`.
//!
//! # Unknown names cost the same as wrong passwords
//!
//! Signing in with a name that has no account still verifies the password,
//! against a *dummy* hash made with the same parameters at start, so that an
//! attacker timing the answer cannot tell "no such name" from "wrong
//! password" ([`Hasher::verify`] with `None`).

use std::fmt;
use std::sync::Arc;

use argon2::{Algorithm, Argon2, CustomizedPasswordHasher, PasswordHash, PasswordHasher, Version};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::error::AccountError;

/// Shortest password, in Unicode scalar values (contract).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password, in Unicode scalar values (contract).
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Salt length in bytes (RFC 9106 recommends 16).
const SALT_BYTES: usize = 16;

/// Checks the contract's bounds. The password is taken as typed: not
/// trimmed, not normalised (a space at the end is part of it).
pub fn validate_password(password: &str) -> Result<(), AccountError> {
    let got = password.chars().count();
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&got) {
        Ok(())
    } else {
        Err(AccountError::InvalidPassword {
            got,
            min: MIN_PASSWORD_CHARS,
            max: MAX_PASSWORD_CHARS,
        })
    }
}

/// Argon2id's three costs. The defaults are this project's choice, measured
/// in `docs/decisions.md` ("Argon2id parameters"); tests that are not about
/// cost use [`PasswordParams::FAST_FOR_TESTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordParams {
    /// Memory per hash, in KiB (`m`).
    pub memory_kib: u32,
    /// Passes over that memory (`t`).
    pub iterations: u32,
    /// Lanes (`p`). 1: parallel lanes would need threads of their own, and
    /// the server would rather hash two passwords at once than one twice as
    /// fast.
    pub lanes: u32,
}

impl PasswordParams {
    /// 46 MiB, 1 pass, 1 lane: the first of OWASP's equally strong
    /// Argon2id settings, and the most memory-hard of them (memory is what
    /// an attacker's GPUs are short of). About 32 ms per hash on the
    /// project's 2-core machine.
    pub const DEFAULT: PasswordParams = PasswordParams {
        memory_kib: 46 * 1024,
        iterations: 1,
        lanes: 1,
    };

    /// The smallest Argon2id allows: for tests of everything except cost.
    /// Never use it for real passwords.
    pub const FAST_FOR_TESTS: PasswordParams = PasswordParams {
        memory_kib: 8,
        iterations: 1,
        lanes: 1,
    };

    fn argon2(&self) -> Result<Argon2<'static>, AccountError> {
        let params = argon2::Params::new(self.memory_kib, self.iterations, self.lanes, None)
            .map_err(|e| AccountError::Hash(format!("bad Argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for PasswordParams {
    fn default() -> Self {
        PasswordParams::DEFAULT
    }
}

/// A stored password hash in PHC format. Secret: its `Debug` does not show
/// it, and nothing in this module logs it.
#[derive(Clone, PartialEq, Eq)]
pub struct PhcString(String);

impl PhcString {
    /// Wraps a PHC string read from the database.
    pub fn new(phc: String) -> PhcString {
        PhcString(phc)
    }

    /// The string, for storing it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhcString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhcString(<redacted>)")
    }
}

/// Hashes `password` with a fresh random salt. Blocks for the whole cost of
/// a hash: call it off the async workers (as [`Hasher`] does).
pub fn hash_blocking(params: &PasswordParams, password: &str) -> Result<PhcString, AccountError> {
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt)
        .map_err(|e| AccountError::Hash(format!("the OS random generator failed: {e}")))?;
    let hash = params
        .argon2()?
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| AccountError::Hash(e.to_string()))?;
    Ok(PhcString(hash.to_string()))
}

/// Whether `password` is the one `phc` was made from. Blocks like
/// [`hash_blocking`]; the cost is that of the parameters inside `phc`.
///
/// This is what argon2's `PasswordVerifier` does, written out so that the
/// lesson is visible: hash the candidate with the stored salt and
/// parameters, then compare the two outputs in constant time — a compare
/// that stops at the first differing byte would tell an attacker, by its
/// timing, how much of the hash they got right.
pub fn verify_blocking(phc: &PhcString, password: &str) -> bool {
    let Ok(stored) = PasswordHash::new(phc.as_str()) else {
        tracing::error!("a stored password hash is not a PHC string; refusing the sign-in");
        return false;
    };
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&stored) else {
        return false;
    };
    let computed = Argon2::default().hash_password_customized(
        password.as_bytes(),
        salt.as_ref(),
        Some(stored.algorithm.as_str()),
        stored.version,
        params,
    );
    match computed.ok().and_then(|c| c.hash) {
        Some(computed) => computed.as_ref().ct_eq(expected.as_ref()).into(),
        None => false,
    }
}

/// The hashing service: runs hashes on tokio's blocking pool, at most
/// `concurrency` at once.
#[derive(Debug)]
pub struct Hasher {
    /// The parameters new hashes are made with.
    params: PasswordParams,
    /// One permit per hash allowed to run at once. A permit is held by the
    /// blocking task itself, so a client that gives up waiting (and drops
    /// its request) does not free a slot while its hash still burns a core.
    permits: Arc<Semaphore>,
    /// How many permits there are.
    concurrency: usize,
    /// A hash of a random password, verified against when a name has no
    /// account so that both cases cost one verification.
    dummy: PhcString,
}

impl Hasher {
    /// A hasher with `params`, running at most `concurrency` (≥ 1) hashes
    /// at once. Blocks for one hash's cost to make the dummy hash: call it
    /// at start-up, not on an async worker.
    pub fn new(params: PasswordParams, concurrency: usize) -> Result<Hasher, AccountError> {
        // Fails early, at start, on parameters Argon2 refuses.
        params.argon2()?;
        let mut random = [0u8; 32];
        getrandom::fill(&mut random)
            .map_err(|e| AccountError::Hash(format!("the OS random generator failed: {e}")))?;
        let dummy_password: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dummy = hash_blocking(&params, &dummy_password)?;
        let concurrency = concurrency.max(1);
        Ok(Hasher {
            params,
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            dummy,
        })
    }

    /// How many hashes may run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The parameters new hashes use.
    pub fn params(&self) -> PasswordParams {
        self.params
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: &str) -> Result<PhcString, AccountError> {
        let params = self.params;
        let password = password.to_owned();
        self.run(move || hash_blocking(&params, &password)).await?
    }

    /// Verifies `password` against `phc`, or against the dummy hash when
    /// there is no account (`None`): then the answer is always `false`, but
    /// it takes as long as a real verification.
    pub async fn verify(
        &self,
        phc: Option<&PhcString>,
        password: &str,
    ) -> Result<bool, AccountError> {
        let (phc, real) = match phc {
            Some(phc) => (phc.clone(), true),
            None => (self.dummy.clone(), false),
        };
        let password = password.to_owned();
        let matched = self.run(move || verify_blocking(&phc, &password)).await?;
        // `real &&` after the work: the dummy's password is random and never
        // matches anyway, but this makes "no account" false by construction.
        Ok(real && matched)
    }

    /// Runs `work` on the blocking pool once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AccountError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            // The semaphore is never closed.
            .map_err(|e| AccountError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_count_scalar_values_as_typed() {
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password("1234567").is_err());
        // Eight scalar values, more bytes: still eight.
        assert!(validate_password("ääääääää").is_ok());
        // Not trimmed: seven letters and a space are eight characters.
        assert!(validate_password("passwor ").is_ok());
        assert!(validate_password(&"x".repeat(128)).is_ok());
        assert!(matches!(
            validate_password(&"x".repeat(129)),
            Err(AccountError::InvalidPassword { got: 129, .. })
        ));
    }

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let phc = hash_blocking(&PasswordParams::FAST_FOR_TESTS, "correct horse").unwrap();
        assert!(phc.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(verify_blocking(&phc, "correct horse"));
        assert!(!verify_blocking(&phc, "correct horsE"));
        assert!(!verify_blocking(&phc, "correct horse "));
        // Salted: the same password twice gives two different strings.
        let again = hash_blocking(&PasswordParams::FAST_FOR_TESTS, "correct horse").unwrap();
        assert_ne!(phc, again);
        assert!(!verify_blocking(&PhcString::new("not a hash".into()), "x"));
    }

    #[test]
    fn default_parameters_are_the_documented_ones() {
        let phc = hash_blocking(&PasswordParams::default(), "correct horse").unwrap();
        assert!(phc.as_str().starts_with("$argon2id$v=19$m=47104,t=1,p=1$"));
    }

    #[test]
    fn debug_never_shows_the_hash() {
        let phc = hash_blocking(&PasswordParams::FAST_FOR_TESTS, "correct horse").unwrap();
        assert_eq!(format!("{phc:?}"), "PhcString(<redacted>)");
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify() {
        let hasher = Hasher::new(PasswordParams::FAST_FOR_TESTS, 1).unwrap();
        assert!(!hasher.verify(None, "anything at all").await.unwrap());
        let phc = hasher.hash("correct horse").await.unwrap();
        assert!(hasher.verify(Some(&phc), "correct horse").await.unwrap());
    }
}
