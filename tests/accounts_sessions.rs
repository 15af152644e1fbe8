/// The life of a session: every sign-in gets a brand-new session id (never
/// one the client brought), as a 64-hex-digit cookie whose SHA-256 — not
/// the token itself — is what the database holds; signing out, the teacher
/// ending a student's sessions, expiry and the per-account cap all end the
/// session at once, so the cookie stops working and whatever waits on
/// `ended` (an open WebSocket, an event stream) is woken; and a restart of
/// the server keeps accounts and sessions, in the same SQLite file as the
/// message log, which keeps working while accounts are written.
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use rusqlite::Connection;
use weebsockets::accounts::{
    AccountError, Accounts, AccountsConfig, MAX_SESSIONS_PER_ACCOUNT, ManualClock, PasswordParams,
    Role, SessionId, SignInLimits,
};
use weebsockets::config::SyncMode;
use weebsockets::message::{NewMessage, Via};
use weebsockets::room::Room;
use weebsockets::store::Database;

const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const PASSWORD: &str = "correct horse";
/// Long enough for anything a test waits on; short enough that a hang
/// fails the test.
const PATIENCE: Duration = Duration::from_secs(10);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn fast() -> AccountsConfig {
    AccountsConfig {
        password: PasswordParams::FAST_FOR_TESTS,
        sign_in_limits: SignInLimits::UNLIMITED,
        hash_concurrency: 2,
        ..AccountsConfig::default()
    }
}

fn in_memory() -> Accounts {
    Accounts::open(Path::new(":memory:"), fast()).expect("in-memory accounts open")
}

/// Resolves `ended` within PATIENCE or fails the test.
async fn wait_ended(accounts: &Accounts, id: &SessionId) {
    tokio::time::timeout(PATIENCE, accounts.ended(id))
        .await
        .expect("the session's end is signalled");
}

/// True when `ended` has not resolved (polled once, without waiting).
fn still_live(accounts: &Accounts, id: &SessionId) -> bool {
    accounts.ended(id).now_or_never().is_none()
}

#[tokio::test]
async fn every_sign_in_gets_a_new_session_id() {
    let accounts = in_memory();
    let created = accounts.create("ada", PASSWORD, false).await.unwrap();
    let token = created.token.as_str();
    assert_eq!(token.len(), 64);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );

    let mut seen = vec![created.token.clone()];
    for _ in 0..5 {
        let again = accounts.sign_in("ada", PASSWORD, HOME).await.unwrap();
        assert!(!seen.contains(&again.token), "a sign-in reused a token");
        assert_eq!(again.token.id(), again.session.id);
        seen.push(again.token);
    }
    // Each is its own live session (several browsers).
    for token in &seen {
        assert_eq!(&*accounts.session(token.as_str()).unwrap().name, "ada");
    }
    // A well-formed token nobody was given is nobody's session; nor is junk.
    assert!(accounts.session(&"ab".repeat(32)).is_none());
    assert!(accounts.session("ada").is_none());
    assert!(accounts.session("").is_none());
}

#[tokio::test]
async fn sign_out_ends_the_session_and_wakes_whoever_waits() {
    let accounts = in_memory();
    let laptop = accounts.create("ada", PASSWORD, false).await.unwrap();
    let phone = accounts.sign_in("ada", PASSWORD, HOME).await.unwrap();
    // An open WebSocket of the laptop's session, waiting for its end.
    let socket = tokio::spawn(accounts.ended(&laptop.session.id));
    assert!(still_live(&accounts, &laptop.session.id));

    assert!(accounts.sign_out(laptop.token.as_str()).await.unwrap());
    tokio::time::timeout(PATIENCE, socket)
        .await
        .expect("the socket is told")
        .unwrap();
    assert!(accounts.session(laptop.token.as_str()).is_none());
    // Ended already: resolves at once.
    assert!(!still_live(&accounts, &laptop.session.id));
    // A second sign-out finds nothing; junk tokens neither.
    assert!(!accounts.sign_out(laptop.token.as_str()).await.unwrap());
    assert!(!accounts.sign_out("not a token").await.unwrap());
    // The phone is still signed in.
    assert!(accounts.session(phone.token.as_str()).is_some());
    assert!(still_live(&accounts, &phone.session.id));
}

#[tokio::test]
async fn the_teacher_ends_every_session_of_a_student() {
    let accounts = in_memory();
    let first = accounts.create("Ada", PASSWORD, false).await.unwrap();
    let mut ada = vec![first];
    for _ in 0..2 {
        ada.push(accounts.sign_in("ada", PASSWORD, HOME).await.unwrap());
    }
    let grace = accounts.create("grace", PASSWORD, false).await.unwrap();
    let sockets: Vec<_> = ada
        .iter()
        .map(|s| tokio::spawn(accounts.ended(&s.session.id)))
        .collect();

    assert_eq!(accounts.end_sessions_of("ADA").await.unwrap(), 3);
    for socket in sockets {
        tokio::time::timeout(PATIENCE, socket)
            .await
            .unwrap()
            .unwrap();
    }
    for s in &ada {
        assert!(accounts.session(s.token.as_str()).is_none());
    }
    // Grace is untouched.
    assert!(accounts.session(grace.token.as_str()).is_some());
    assert!(still_live(&accounts, &grace.session.id));
    assert_eq!(accounts.end_sessions_of("ada").await.unwrap(), 0);
    match accounts.end_sessions_of("nobody").await {
        Err(err @ AccountError::NoSuchAccount) => assert_eq!(err.code(), "no_such_account"),
        other => panic!("expected no_such_account, got {other:?}"),
    }
    // The account itself remains: Ada can sign in again.
    accounts.sign_in("ada", PASSWORD, HOME).await.unwrap();
}

#[tokio::test]
async fn sessions_expire_by_the_clock_and_close_what_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("class.db");
    let clock = ManualClock::new(1_700_000_000_000);
    let config = AccountsConfig {
        session_days: 1,
        ..fast()
    };
    let accounts =
        Accounts::open_with_clock(&path, config.clone(), Arc::new(clock.clone())).unwrap();
    let ada = accounts.create("ada", PASSWORD, false).await.unwrap();
    assert_eq!(accounts.session_lifetime(), DAY);
    assert_eq!(
        ada.session.expires_at_ms,
        1_700_000_000_000 + DAY.as_millis() as u64
    );
    let socket = tokio::spawn(accounts.ended(&ada.session.id));

    clock.advance(DAY - Duration::from_millis(1));
    assert!(accounts.session(ada.token.as_str()).is_some());
    assert!(still_live(&accounts, &ada.session.id));

    // The moment it is due, the expiry thread ends it: nobody had to ask.
    clock.advance(Duration::from_millis(1));
    tokio::time::timeout(PATIENCE, socket)
        .await
        .unwrap()
        .unwrap();
    assert!(accounts.session(ada.token.as_str()).is_none());
    assert!(accounts.signed_in().is_empty());

    // Gone from the disk too.
    let rows: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    // Signing in again starts a new day.
    let again = accounts.sign_in("ada", PASSWORD, HOME).await.unwrap();
    assert!(accounts.session(again.token.as_str()).is_some());
}

#[tokio::test]
async fn a_session_that_expired_while_the_server_was_down_stays_dead() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("class.db");
    let clock = ManualClock::new(1_700_000_000_000);
    let config = AccountsConfig {
        session_days: 2,
        ..fast()
    };
    let token = {
        let accounts =
            Accounts::open_with_clock(&path, config.clone(), Arc::new(clock.clone())).unwrap();
        accounts.create("ada", PASSWORD, false).await.unwrap().token
    };
    clock.advance(3 * DAY);
    let accounts = Accounts::open_with_clock(&path, config, Arc::new(clock.clone())).unwrap();
    assert!(accounts.session(token.as_str()).is_none());
    assert!(!still_live(&accounts, &token.id()));
}

#[tokio::test]
async fn accounts_and_sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("class.db");
    let (kept, signed_out) = {
        let accounts = Accounts::open(&path, fast()).unwrap();
        let kept = accounts.create("Straße", PASSWORD, false).await.unwrap();
        let signed_out = accounts.sign_in("strasse", PASSWORD, HOME).await.unwrap();
        accounts.sign_out(signed_out.token.as_str()).await.unwrap();
        (kept, signed_out)
    };

    let accounts = Accounts::open(&path, fast()).unwrap();
    let session = accounts
        .session(kept.token.as_str())
        .expect("kept across the restart");
    assert_eq!(&*session.name, "Straße");
    assert_eq!(session.expires_at_ms, kept.session.expires_at_ms);
    assert!(still_live(&accounts, &kept.session.id));
    assert!(accounts.session(signed_out.token.as_str()).is_none());
    assert!(accounts.is_account_name("STRASSE"));
    assert!(matches!(
        accounts.create("STRASSE", PASSWORD, false).await,
        Err(AccountError::NameTaken)
    ));
    accounts.sign_in("STRASSE", PASSWORD, HOME).await.unwrap();
    assert!(matches!(
        accounts.sign_in("STRASSE", "wrong password", HOME).await,
        Err(AccountError::BadCredentials)
    ));
    // And the restarted server can still end the old session.
    assert_eq!(accounts.end_sessions_of("straße").await.unwrap(), 2);
    wait_ended(&accounts, &kept.session.id).await;
}

#[tokio::test]
async fn the_teacher_role_follows_the_flag_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("class.db");
    let teacher = |name: Option<&str>| AccountsConfig {
        teacher: name.map(str::to_owned),
        ..fast()
    };
    {
        let accounts = Accounts::open(&path, teacher(Some("Ms Lee"))).unwrap();
        let lee = accounts.create("Ms Lee", PASSWORD, true).await.unwrap();
        assert_eq!(lee.session.role, Role::Teacher);
        // Before `--teacher Sam` is ever given, a student takes the name.
        accounts.create("sam", PASSWORD, false).await.unwrap();
    }
    {
        let accounts = Accounts::open(&path, teacher(Some("MS LEE"))).unwrap();
        let lee = accounts.sign_in("ms lee", PASSWORD, HOME).await.unwrap();
        assert_eq!(lee.session.role, Role::Teacher);
    }
    {
        // The flag now names the student's account: it does not make the
        // student the teacher, and the teacher cannot take the name.
        let accounts = Accounts::open(&path, teacher(Some("Sam"))).unwrap();
        let sam = accounts.sign_in("Sam", PASSWORD, HOME).await.unwrap();
        assert_eq!(sam.session.role, Role::Student);
        assert!(matches!(
            accounts.create("SAM", PASSWORD, true).await,
            Err(AccountError::NameTaken)
        ));
        // And Ms Lee, no longer named by the flag, is a student.
        let lee = accounts.sign_in("Ms Lee", PASSWORD, HOME).await.unwrap();
        assert_eq!(lee.session.role, Role::Student);
    }
}

#[tokio::test]
async fn the_database_holds_hashes_not_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("class.db");
    let accounts = Accounts::open(&path, fast()).unwrap();
    let ada = accounts
        .create("ada", "my secret password", false)
        .await
        .unwrap();

    let conn = Connection::open(&path).unwrap();
    let stored: Vec<u8> = conn
        .query_row("SELECT id_hash FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(&stored[..], &ada.token.id().as_bytes()[..]);
    let phc: String = conn
        .query_row("SELECT password_hash FROM accounts", [], |r| r.get(0))
        .unwrap();
    assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
    drop(conn);

    // Neither the cookie nor the password is anywhere in the files.
    for file in ["class.db", "class.db-wal"] {
        let Ok(bytes) = std::fs::read(dir.path().join(file)) else {
            continue;
        };
        for secret in [ada.token.as_str(), "my secret password"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{file} contains a secret"
            );
        }
    }
}

#[tokio::test]
async fn beyond_the_cap_the_oldest_session_makes_room() {
    let accounts = in_memory();
    let oldest = accounts.create("ada", PASSWORD, false).await.unwrap();
    let mut newest = Vec::new();
    for _ in 1..MAX_SESSIONS_PER_ACCOUNT {
        newest.push(accounts.sign_in("ada", PASSWORD, HOME).await.unwrap());
    }
    assert!(accounts.session(oldest.token.as_str()).is_some());
    assert_eq!(accounts.signed_in()[0].sessions, MAX_SESSIONS_PER_ACCOUNT);

    let one_more = accounts.sign_in("ada", PASSWORD, HOME).await.unwrap();
    wait_ended(&accounts, &oldest.session.id).await;
    assert!(accounts.session(oldest.token.as_str()).is_none());
    assert!(accounts.session(one_more.token.as_str()).is_some());
    assert!(
        newest
            .iter()
            .all(|s| accounts.session(s.token.as_str()).is_some())
    );
    assert_eq!(accounts.signed_in()[0].sessions, MAX_SESSIONS_PER_ACCOUNT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_share_the_message_store_s_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("class.db");
    // The store first (as the server does), then the accounts.
    let room = Room::open(Database::open(&path, SyncMode::Normal).unwrap(), 100, 64).unwrap();
    let accounts = Accounts::open(&path, fast()).unwrap();

    // Messages and accounts are written at the same time: the two
    // connections take turns at SQLite's write lock, nobody fails.
    let writer = {
        let room = room.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                let msg =
                    NewMessage::validate("guest", &format!("hello {i}"), Via::Api, 2000).unwrap();
                room.append(msg).await.expect("message stored");
            }
        })
    };
    let mut tokens = Vec::new();
    for i in 0..20 {
        let s = accounts
            .create(&format!("student{i}"), PASSWORD, false)
            .await
            .unwrap();
        tokens.push(s.token);
    }
    writer.await.unwrap();
    room.flush_and_stop().await;
    drop(accounts);

    // Both are in the one file after a restart, in either order.
    let accounts = Accounts::open(&path, fast()).unwrap();
    let room = Room::open(Database::open(&path, SyncMode::Normal).unwrap(), 100, 64).unwrap();
    assert_eq!(room.last_id(), 200);
    for token in &tokens {
        assert!(accounts.session(token.as_str()).is_some());
    }
}
