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

/// Which way a reader reads.
#[derive(Debug, Clone, Copy)]
enum Reader {
    Polling,
    LongPoll,
    WebSocket,
    Sse,
}

/// Reads messages after `since` from `base` the way `reader` does, until
/// the id `until` has arrived (if given) or the connection fails — as it
/// does when the server is killed. Returns what arrived, in order.
async fn read_until(
    reader: Reader,
    base: &str,
    since: u64,
    until: Option<u64>,
) -> Vec<serde_json::Value> {
    use futures_util::StreamExt;
    let done = |got: &[serde_json::Value], since: u64| {
        let cursor = got.last().map_or(since, |m| m["id"].as_u64().unwrap());
        until.is_some_and(|u| cursor >= u)
    };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut got: Vec<serde_json::Value> = Vec::new();
    let http = reqwest::Client::new();
    match reader {
        Reader::Polling | Reader::LongPoll => loop {
            if done(&got, since) || tokio::time::Instant::now() > deadline {
                return got;
            }
            let cursor = got.last().map_or(since, |m| m["id"].as_u64().unwrap());
            let path = match reader {
                Reader::Polling => format!("/api/messages?since={cursor}&transport=timeout"),
                _ => format!("/api/longpoll?since={cursor}&timeout=5"),
            };
            let Ok(response) = http.get(format!("{base}{path}")).send().await else {
                return got;
            };
            if response.status() == 204 {
                continue;
            }
            let Ok(page) = response.json::<serde_json::Value>().await else {
                return got;
            };
            got.extend(page["messages"].as_array().unwrap().iter().cloned());
        },
        Reader::WebSocket => {
            let url = format!("{}/api/ws?since={since}", base.replacen("http", "ws", 1));
            let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else {
                return got;
            };
            while !done(&got, since) {
                let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, ws.next()).await else {
                    return got;
                };
                if let Ok(text) = frame.to_text() {
                    let frame: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
                    if frame["type"] == "message" {
                        got.push(frame["message"].clone());
                    }
                }
            }
            got
        }
        Reader::Sse => {
            // As EventSource does when it reconnects: the cursor rides in
            // Last-Event-ID.
            let Ok(mut response) = http
                .get(format!("{base}/api/events"))
                .header("Last-Event-ID", since.to_string())
                .send()
                .await
            else {
                return got;
            };
            let mut buffer = String::new();
            while !done(&got, since) {
                let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, response.chunk()).await
                else {
                    return got;
                };
                buffer.push_str(std::str::from_utf8(&chunk).unwrap());
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                        got.push(serde_json::from_str(data).unwrap());
                    }
                }
            }
            got
        }
    }
}

/// `kill -9` in the middle of a burst of concurrent posts, with a reader of
/// every transport following along; then restart on the same file. Every
/// message that got its 201 is there exactly once with the id it was given,
/// ids are gap-free, the next post takes the next id — and every reader,
/// resuming from its cursor, ends with the whole log exactly once.
#[tokio::test]
async fn kill_dash_nine_mid_burst_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("room.db");
    let (mut child, base) = spawn_binary(&db, &["--no-limits"]);
    let http = reqwest::Client::new();
    let acked: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();

    let readers = [
        Reader::Polling,
        Reader::LongPoll,
        Reader::WebSocket,
        Reader::Sse,
    ];
    let reading: Vec<_> = readers
        .iter()
        .map(|&reader| {
            let base = base.clone();
            tokio::spawn(async move { read_until(reader, &base, 0, None).await })
        })
        .collect();

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
    let mut before = Vec::new();
    for reader in reading {
        before.push(reader.await.unwrap());
    }
    let acked = acked.lock().unwrap().clone();

    let (mut child, base) = spawn_binary(&db, &["--no-limits"]);
    let api = Api {
        base: base.clone(),
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
    let (status, body) = api.post("after", "crash", None).await;
    assert_eq!((status, body["id"].as_u64()), (201, Some(last + 1)));

    // Every reader resumes from its own cursor and ends with the whole log,
    // each message once, in order.
    for (reader, mut seen) in readers.into_iter().zip(before) {
        assert!(!seen.is_empty(), "{reader:?} was reading before the kill");
        let cursor = seen.last().map_or(0, |m| m["id"].as_u64().unwrap());
        seen.extend(read_until(reader, &base, cursor, Some(last + 1)).await);
        assert_eq!(
            ids(&seen),
            (1..=last + 1).collect::<Vec<_>>(),
            "{reader:?} resumed with nothing lost or repeated"
        );
        assert_eq!(
            seen[..last as usize],
            stored[..],
            "{reader:?} saw what was stored"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
