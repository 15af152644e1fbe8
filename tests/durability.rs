//! A message the server answered with its id is on disk: it survives a
//! graceful restart and a `kill -9` in the middle of a burst of posts, ids
//! continue after the restart without reuse, and readers further behind
//! than the in-memory window are served from the database.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;
use weebsockets::config::SyncMode;

/// Stop the server, start it again on the same file: every acknowledged
/// message is there, in order, and the next id follows the last.
#[tokio::test]
async fn restart_keeps_every_acked_message_and_continues_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("room.db");
    let config = |c: &mut weebsockets::Config| {
        c.db = db.clone();
        c.no_limits = true;
    };

    let server = start_with(config);
    let api = Api::new(&server);
    for i in 0..30 {
        api.post_ok("ada", &format!("http {i}")).await;
    }
    let mut ws = Ws::connect(&server, 30).await;
    for i in 0..10 {
        ws.send_json(
            json!({"type":"send","ref":i.to_string(),"author":"bob","text":format!("ws {i}")}),
        )
        .await;
        ws.next_of("ack").await;
    }
    let before = api.all_since(0).await;
    drop(ws);
    server.stop().unwrap();

    let server = start_with(config);
    let api = Api::new(&server);
    let after = api.all_since(0).await;
    assert_eq!(after, before, "same messages, same ids, same everything");
    assert_eq!(ids(&after), (1..=40).collect::<Vec<_>>());
    assert_eq!(api.post_ok("ada", "after restart").await, 41);
}

/// With a small memory window, a reader far behind is served from SQLite,
/// through every reading path, without gaps or repeats.
#[tokio::test]
async fn readers_behind_the_memory_window_read_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("room.db");
    let server = start_with(|c| {
        c.db = db.clone();
        c.memory_window = 500;
        c.no_limits = true;
        c.sync = SyncMode::Normal;
    });
    let api = Api::new(&server);
    const N: u64 = 1_300;
    // Post concurrently so group commit batches them.
    let mut posters = Vec::new();
    for p in 0..10 {
        let api = api.clone();
        posters.push(tokio::spawn(async move {
            for i in 0..N / 10 {
                api.post_ok("p", &format!("{p}-{i}")).await;
            }
        }));
    }
    for poster in posters {
        poster.await.unwrap();
    }
    assert_eq!(ids(&api.all_since(0).await), (1..=N).collect::<Vec<_>>());
    let mut ws = Ws::connect(&server, 0).await;
    ws.next_of("welcome").await;
    assert_eq!(
        ids(&ws.messages(N as usize).await),
        (1..=N).collect::<Vec<_>>()
    );
    let mut sse = Sse::connect(&server, "?since=100", None).await;
    assert_eq!(
        ids(&sse.messages((N - 100) as usize).await),
        (101..=N).collect::<Vec<_>>()
    );
}

/// `kill -9` in the middle of a burst of concurrent posts, then restart on
/// the same file: every message that got its 201 is there exactly once with
/// the id it was given, ids are gap-free, and the next post takes the next
/// id.
#[tokio::test]
async fn kill_dash_nine_mid_burst_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("room.db");
    let (mut child, base) = spawn_binary(&db, &["--no-limits"]);
    let http = reqwest::Client::new();
    let acked: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();

    let mut posters = Vec::new();
    for p in 0..8 {
        let (http, base, acked) = (http.clone(), base.clone(), Arc::clone(&acked));
        posters.push(tokio::spawn(async move {
            for i in 0.. {
                let text = format!("poster {p} message {i}");
                let response = http
                    .post(format!("{base}/api/messages"))
                    .json(&json!({"author": "burst", "text": text}))
                    .send()
                    .await;
                let Ok(response) = response else { return };
                if response.status() != 201 {
                    return;
                }
                let Ok(body) = response.json::<serde_json::Value>().await else {
                    return;
                };
                acked
                    .lock()
                    .unwrap()
                    .insert(body["id"].as_u64().unwrap(), text);
            }
        }));
    }
    // Kill once a good number of posts have been acknowledged.
    let deadline = std::time::Instant::now() + PATIENCE;
    while acked.lock().unwrap().len() < 300 {
        assert!(std::time::Instant::now() < deadline, "posts too slow");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL: no shutdown code runs.
    child.wait().unwrap();
    for poster in posters {
        poster.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let (mut child, base) = spawn_binary(&db, &["--no-limits"]);
    let api = Api {
        base,
        http: reqwest::Client::new(),
    };
    let stored = api.all_since(0).await;
    let stored_ids = ids(&stored);
    let last = *stored_ids.last().unwrap();
    assert_eq!(
        stored_ids,
        (1..=last).collect::<Vec<_>>(),
        "gap-free, no repeats"
    );
    for (id, text) in &acked {
        assert_eq!(
            stored[(*id - 1) as usize]["text"].as_str(),
            Some(text.as_str()),
            "acknowledged message {id} survives with its id"
        );
    }
    // A resumed reader sees each exactly once.
    let (status, body) = api.post("after", "crash", None).await;
    assert_eq!((status, body["id"].as_u64()), (201, Some(last + 1)));
    child.kill().unwrap();
    child.wait().unwrap();
}
