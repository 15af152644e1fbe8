//! When SQLite refuses to store a message, the sender is told so in a plain
//! sentence; SQLite's own error text (which names tables, triggers and
//! constraints) stays in the server's log and never reaches a client. The
//! test makes every insert fail by adding a trigger to the database file
//! from a second connection, as a broken disk or a full quota would, and
//! sends over HTTP and over WebSocket. (Review, issue 10: the JSON `error`
//! carried SQLite's message.)

mod common;

use common::*;
use serde_json::{Value, json};

/// The text SQLite will fail every insert with.
const DETAIL: &str = "some sqlite detail";

/// A client-facing error text that gives away nothing of the database.
fn assert_plain(error: &Value, what: &str) {
    let text = error["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error sentence: {error}"));
    assert!(!text.trim().is_empty(), "{what}: empty error: {error}");
    let lower = text.to_lowercase();
    for leak in [DETAIL, "database error", "sqlite"] {
        assert!(
            !lower.contains(leak),
            "{what}: the error a client sees must not contain {leak:?}: {text:?}"
        );
    }
    assert!(
        error["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{what}: a stable code: {error}"
    );
}

#[tokio::test]
async fn sqlite_error_text_does_not_reach_clients() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("room.db");
    let server = start_with(|c| c.db = db.clone());
    let api = Api::new(&server);
    assert_eq!(api.post_ok("ada", "before the fault").await, 1);

    let side = rusqlite::Connection::open(&db).unwrap();
    side.execute_batch(&format!(
        "CREATE TRIGGER refuse_all BEFORE INSERT ON messages \
         BEGIN SELECT RAISE(FAIL, '{DETAIL}'); END;"
    ))
    .unwrap();

    let (status, answer) = api.post("ada", "refused", None).await;
    assert!(
        (500..600).contains(&status),
        "a failed store is a 5xx: {status} {answer}"
    );
    assert_plain(&answer, "POST /api/messages");

    let mut ws = Ws::connect(&server, 1).await;
    ws.next_of("welcome").await;
    ws.send_json(json!({"type":"send","ref":"r","author":"ada","text":"refused"}))
        .await;
    let reply = ws.next_of("error").await;
    assert_eq!(reply["ref"], "r", "{reply}");
    assert_plain(&reply, "a WebSocket send");

    // The fault goes away: the room carries on, without a gap in the ids.
    side.execute_batch("DROP TRIGGER refuse_all;").unwrap();
    assert_eq!(api.post_ok("ada", "after the fault").await, 2);
}
