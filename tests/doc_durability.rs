/// An operation the server answered with its revision is on disk. The real
/// binary is killed with `kill -9` in the middle of a burst of edits from
/// four writers (two over `POST`, one of them also saving whole texts with
/// `PUT`, two over the WebSocket); started again on the same file, every
/// acknowledged operation is there with its revision, no revision is
/// reused, the text is exactly the replay of the log from revision 0, and
/// resends — of acknowledged edits and of the ones in flight at the kill —
/// are recognised. A clean restart after more than 1,000 operations (so
/// after a snapshot) keeps the text, the revisions and the texts of old
/// revisions, recognises resends, and starts from the snapshot rather than
/// replaying the whole history.
mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use common::editors::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use weebsockets::ot::Operation;

/// What a writer was told: revision → (client, seq, the operation as
/// stored).
type Acked = Arc<Mutex<BTreeMap<u64, (String, u64, Value)>>>;

/// The edit a writer makes on a text of `len` characters: its own marker,
/// appended or prepended, and now and then a deleted first character.
fn edit(writer: usize, seq: u64, len: usize) -> Operation {
    let mut op = Operation::new();
    let marker = format!("[{writer}:{seq}]");
    if seq % 7 == 6 && len > 0 {
        op.delete(1).retain(len - 1);
    } else if writer.is_multiple_of(2) {
        op.retain(len).insert(&marker);
    } else {
        op.insert(&marker).retain(len);
    }
    op
}

/// A writer over HTTP: each edit made at the revision of its last answer
/// (whose operation's length says the text's length then), so the server
/// transforms it past the other writers' edits. Writer 1 saves the whole
/// text with `PUT` every 20th edit. Returns the body in flight when the
/// server went away.
async fn http_writer(base: String, writer: usize, acked: Acked) -> Option<(String, Value)> {
    let http = reqwest::Client::new();
    let client = format!("http-{writer}");
    let (mut rev, mut len) = (0u64, 0usize);
    for seq in 0.. {
        let (method, path, body) = if writer == 1 && seq % 20 == 19 {
            let text = format!("saved by {client} at {seq}");
            (
                "PUT",
                "/api/doc/text",
                json!({"client": client, "seq": seq, "text": text}),
            )
        } else {
            let op = edit(writer, seq, len).to_json();
            (
                "POST",
                "/api/doc/ops",
                json!({"client": client, "seq": seq, "rev": rev, "op": op}),
            )
        };
        let request = match method {
            "PUT" => http.put(format!("{base}{path}")),
            _ => http.post(format!("{base}{path}")),
        };
        let in_flight = Some((path.to_owned(), body.clone()));
        let Ok(response) = request.json(&body).send().await else {
            return in_flight;
        };
        if response.status() != 201 {
            return in_flight;
        }
        let Ok(answer) = response.json::<Value>().await else {
            return in_flight;
        };
        rev = answer["rev"].as_u64().unwrap();
        len = operation(&answer).target_len();
        acked
            .lock()
            .unwrap()
            .insert(rev, (client.clone(), seq, answer["op"].clone()));
    }
    None
}

/// A writer over the WebSocket: it follows the log on its socket (a rope
/// of every op frame), makes each edit at the newest revision it has, and
/// waits for its ack. Returns the body of the edit in flight when the
/// server went away.
async fn ws_writer(base: String, writer: usize, acked: Acked) -> Option<(String, Value)> {
    let client = format!("ws-{writer}");
    let url = format!("{}/api/doc/ws?since=0", base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
    let mut text = ropey::Rope::new();
    let mut rev = 0u64;
    let mut ours: BTreeMap<u64, u64> = BTreeMap::new(); // rev → seq
    for seq in 0.. {
        let op = edit(writer, seq, text.len_chars()).to_json();
        let body = json!({"client": client, "seq": seq, "rev": rev, "op": op});
        let mut frame = body.clone();
        frame["type"] = json!("op");
        frame["ref"] = json!(seq);
        let in_flight = Some(("/api/doc/ops".to_owned(), body));
        if ws
            .send(WsMessage::Text(frame.to_string().into()))
            .await
            .is_err()
        {
            return in_flight;
        }
        // Read until our ack, and until our own op has come back.
        let mut acked_rev = None;
        while acked_rev.is_none_or(|r| rev < r) {
            let Some(Ok(WsMessage::Text(frame))) = ws.next().await else {
                return in_flight;
            };
            let frame: Value = serde_json::from_str(&frame).unwrap();
            match frame["type"].as_str() {
                Some("ack") => {
                    let r = frame["rev"].as_u64().unwrap();
                    ours.insert(r, seq);
                    acked_rev = Some(r);
                }
                Some("op") => {
                    assert_eq!(frame["rev"].as_u64(), Some(rev + 1), "in rev order");
                    operation(&frame).apply_to_rope(&mut text).unwrap();
                    rev += 1;
                    if let Some(&s) = ours.get(&rev) {
                        assert_eq!(frame["client"], client.as_str());
                        acked
                            .lock()
                            .unwrap()
                            .insert(rev, (client.clone(), s, frame["op"].clone()));
                    }
                }
                Some("welcome") => {}
                _ => panic!("unexpected frame {frame}"),
            }
        }
    }
    None
}

/// `kill -9` mid-burst; restart on the same file.
#[tokio::test]
async fn kill_dash_nine_mid_burst_loses_no_acknowledged_operation() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("doc.db");
    let (mut child, base) = spawn_binary(&db, &["--no-limits"]);
    let acked: Acked = Arc::default();
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (base, acked) = (base.clone(), Arc::clone(&acked));
            tokio::spawn(async move {
                match writer {
                    0 | 1 => http_writer(base, writer, acked).await,
                    _ => ws_writer(base, writer, acked).await,
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + PATIENCE;
    while acked.lock().unwrap().len() < 400 {
        assert!(std::time::Instant::now() < deadline, "edits too slow");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL: no shutdown code runs.
    child.wait().unwrap();
    let mut in_flight = Vec::new();
    for writer in writers {
        in_flight.extend(writer.await.unwrap());
    }
    let acked = acked.lock().unwrap().clone();
    let by_writer = |prefix: &str| {
        acked
            .values()
            .filter(|(c, ..)| c.starts_with(prefix))
            .count()
    };
    assert!(
        by_writer("http-") > 0 && by_writer("ws-") > 0,
        "every transport wrote"
    );

    let (mut child, base) = spawn_binary(&db, &["--no-limits"]);
    let api = Api {
        base,
        http: reqwest::Client::new(),
    };
    let ops = ops_since(&api, 0).await;
    let last = ops.len() as u64;
    let replayed = replay_log(&ops); // also checks revisions 1..=last in order
    assert_eq!(
        document(&api).await,
        (last, replayed),
        "the text is the log's replay"
    );
    for (rev, (client, seq, op)) in &acked {
        assert!(
            *rev <= last,
            "acknowledged revision {rev} survives (last {last})"
        );
        let stored = &ops[(*rev - 1) as usize];
        assert_eq!(
            (&stored["client"], &stored["seq"], &stored["op"]),
            (&json!(client), &json!(seq), op),
            "revision {rev} is the operation acknowledged with it"
        );
    }
    let keys: HashSet<(String, u64)> = ops
        .iter()
        .map(|op| {
            (
                op["client"].as_str().unwrap().to_owned(),
                op["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys.len(), ops.len(), "one operation per (client, seq)");

    // Resends after the crash: an acknowledged one is answered with its
    // revision; one in flight at the kill either was stored (200, an old
    // revision) or is stored now (201, the next one) — never twice.
    let (rev, (client, seq, op)) = acked.iter().next_back().unwrap();
    let answer = post_op(&api, client, *seq, 0, json!(["resent"])).await;
    assert_eq!(
        (answer.status, &answer.body),
        (200, &json!({"rev": rev, "op": op}))
    );
    let mut next = last + 1;
    for (path, body) in &in_flight {
        // Sent again the way it was sent: a text replacement by PUT.
        let method = if *path == "/api/doc/text" {
            reqwest::Method::PUT
        } else {
            reqwest::Method::POST
        };
        let answer = request(&api, method, path, body).await;
        let rev = answer.body["rev"]
            .as_u64()
            .unwrap_or_else(|| panic!("{path} {body}: {} {}", answer.status, answer.body));
        match answer.status {
            200 => assert!(rev <= last, "{path} {body}: {}", answer.body),
            201 => {
                assert_eq!(rev, next, "no revision reused");
                next += 1;
            }
            other => panic!("{path} {body}: {other} {}", answer.body),
        }
    }
    let (now, text) = document(&api).await;
    assert_eq!(now, next - 1);
    let op = Operation::from_patch(text.chars().count(), 0, 0, "!").unwrap();
    let (rev, _) = post_op_ok(&api, "after", 0, now, op.to_json()).await;
    assert_eq!(rev, next, "the next revision follows the last, none reused");
    let ops = ops_since(&api, 0).await;
    assert_eq!(document(&api).await, (next, replay_log(&ops)));
    eprintln!(
        "killed after {} acknowledged operations; {last} on disk; {} in flight resent",
        acked.len(),
        in_flight.len()
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A clean restart after 1,500 operations: the same text, the same log,
/// the same texts at old revisions, resends recognised, revisions going
/// on — and the text comes from the snapshot at (the first commit past)
/// revision 1,000, not from replaying all 1,500 (an operation before the snapshot, altered in the
/// file, does not change it).
#[tokio::test]
async fn a_restart_after_a_snapshot_keeps_text_revisions_and_resends() {
    const COUNT: u64 = 1_500;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("doc.db");
    let config = |c: &mut weebsockets::Config| {
        c.db = db.clone();
        c.no_limits = true;
    };
    let server = start_with(config);
    let api = Api::new(&server);
    // One typist, pipelined on the WebSocket: a character typed at the
    // end each time (ASCII, CJK, an emoji, a combining accent), and every
    // tenth edit deletes the last one.
    let pieces = ["a", "中", "🎉", "e\u{301}", " ", "\n"];
    let mut local = String::new();
    let (ws, _) = tokio_tungstenite::connect_async(server.ws_url("/api/doc/ws?since=0"))
        .await
        .unwrap();
    let (mut sink, mut stream) = ws.split();
    let mut frames = Vec::new();
    for k in 0..COUNT {
        let len = local.chars().count();
        let mut op = Operation::new();
        if k % 10 == 9 {
            op.retain(len - 1).delete(1);
        } else {
            op.retain(len).insert(pieces[k as usize % pieces.len()]);
        }
        local = op.apply(&local).unwrap();
        frames.push(
            json!({"type": "op", "client": "typist", "seq": k, "rev": k, "op": op.to_json()}),
        );
    }
    let write = async {
        for frame in &frames {
            sink.send(WsMessage::Text(frame.to_string().into()))
                .await
                .unwrap();
        }
    };
    let read = async {
        let mut acks = 0;
        while acks < COUNT {
            let frame = tokio::time::timeout(PATIENCE, stream.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let frame: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
            acks += u64::from(frame["type"] == "ack");
        }
    };
    tokio::join!(write, read);
    let before = document(&api).await;
    assert_eq!(before, (COUNT, local.clone()));
    let ops_before = ops_since(&api, 0).await;
    let mut texts_before = Vec::new();
    for rev in [0, 1, 999, 1_000, 1_001, 1_234, COUNT] {
        texts_before.push(text_at(&api, rev).await);
    }
    server.stop().unwrap();

    let snapshots: Vec<i64> = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut stmt = conn
            .prepare("SELECT rev FROM doc_snapshots ORDER BY rev")
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    // The snapshot is taken at the end of the first commit that reaches
    // 1,000 revisions since the last one. Pipelined edits share commits
    // (the writer takes a batch at a time), so that commit may end a little
    // past 1,000 — but one snapshot, and at most a batch past it.
    assert_eq!(snapshots.len(), 1, "one snapshot: {snapshots:?}");
    assert!(
        (1_000..1_000 + 1_024).contains(&snapshots[0]),
        "the snapshot is at the first commit past revision 1,000: {snapshots:?}"
    );

    let server = start_with(config);
    let api = Api::new(&server);
    assert_eq!(
        document(&api).await,
        before,
        "the same text at the same revision"
    );
    assert_eq!(ops_since(&api, 0).await, ops_before, "the same log");
    for (i, rev) in [0, 1, 999, 1_000, 1_001, 1_234, COUNT]
        .into_iter()
        .enumerate()
    {
        assert_eq!(
            text_at(&api, rev).await,
            texts_before[i],
            "text at revision {rev}"
        );
    }
    for seq in [3, COUNT - 1] {
        let answer = post_op(&api, "typist", seq, 0, json!(["?"])).await;
        assert_eq!(
            (answer.status, &answer.body),
            (
                200,
                &json!({"rev": seq + 1, "op": ops_before[seq as usize]["op"]})
            ),
            "a resend of seq {seq} after the restart"
        );
    }
    let (rev, _) = post_op_ok(&api, "after", 0, COUNT, json!(["<", local.chars().count()])).await;
    assert_eq!(rev, COUNT + 1);
    let after = document(&api).await;
    server.stop().unwrap();

    // Alter revision 2 in the file (same lengths, another character): a
    // restart that replayed the whole history would show it.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let changed = conn
            .execute("UPDATE doc_ops SET op = '[1, \"Z\"]' WHERE rev = 2", [])
            .unwrap();
        assert_eq!(changed, 1);
    }
    let server = start_with(config);
    let api = Api::new(&server);
    assert_eq!(
        document(&api).await,
        after,
        "the text comes from the snapshot"
    );
    assert!(
        text_at(&api, 2).await.ends_with('Z'),
        "…while revision 2 is read from the log"
    );
}

/// `GET /api/doc/text?rev=N`.
async fn text_at(api: &Api, rev: u64) -> String {
    let response = api
        .http
        .get(api.url(&format!("/api/doc/text?rev={rev}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}
