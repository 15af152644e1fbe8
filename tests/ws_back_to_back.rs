/// A WebSocket client that sends many frames back to back, without waiting
/// for any reply: the server works on them together (so they share the
/// store's commits) but must keep their order. An editor that is the only
/// writer sends 300 edits at once, edit k made at revision k − 1 (the one
/// edit k − 1 will get): every edit is stored at exactly the revision after
/// the one it names, nothing is transformed, the acks come back in the
/// order the frames were sent, and the text is what the edits make. A
/// frame that cannot be taken, in the middle, gets its error reply in its
/// place. Chat `send` frames back to back are stored in the order sent.
mod common;

use common::{Api, Ws};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Sends every frame of `frames` in one go, flushing once at the end.
async fn send_all(ws: &mut Ws, frames: &[Value]) {
    for frame in frames {
        ws.stream
            .feed(WsMessage::Text(frame.to_string().into()))
            .await
            .expect("frame queued");
    }
    ws.stream.flush().await.expect("frames sent");
}

/// The replies (acks and errors) to `count` frames, in arrival order.
async fn replies(ws: &mut Ws, count: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < count {
        let frame = ws.next().await;
        if frame["type"] == "ack" || frame["type"] == "error" {
            out.push(frame);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_sent_back_to_back_are_stored_in_order() {
    let server = common::start_with(|c| c.no_limits = true);
    let api = Api::new(&server);
    let mut ws = Ws::connect_path(&server, "/api/doc/ws?since=0").await;
    assert_eq!(ws.next().await["type"], "welcome");

    // Edit k appends the k-th letter; the 150th frame is not an op.
    const EDITS: usize = 300;
    let mut frames = Vec::new();
    let mut expected = String::new();
    for k in 0..EDITS {
        let letter = char::from(b'a' + (k % 26) as u8).to_string();
        frames.push(json!({
            "type": "op", "ref": k, "client": "fast-editor", "seq": k,
            "rev": k, "op": if k == 0 { json!([letter]) } else { json!([k, letter]) },
        }));
        expected.push_str(&letter);
        if k == 149 {
            frames.push(json!({"type": "no-such-frame", "ref": "odd"}));
        }
    }
    send_all(&mut ws, &frames).await;

    let got = replies(&mut ws, frames.len()).await;
    let mut k = 0;
    for (i, reply) in got.iter().enumerate() {
        if i == 150 {
            assert_eq!(
                reply["type"], "error",
                "reply {i} is the odd frame's: {reply}"
            );
            assert_eq!(reply["ref"], "odd");
            continue;
        }
        assert_eq!(reply["type"], "ack", "reply {i}: {reply}");
        assert_eq!(
            reply["ref"], k,
            "replies come in the order the frames were sent"
        );
        assert_eq!(
            reply["rev"],
            k + 1,
            "edit {k} made at rev {k} is stored at rev {}",
            k + 1
        );
        k += 1;
    }
    assert_eq!(k, EDITS);

    let (status, _, doc) = api.get("/api/doc").await;
    assert_eq!(status, 200);
    assert_eq!(doc["rev"], EDITS);
    assert_eq!(doc["text"], expected.as_str());
    server.stop().expect("server stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_messages_sent_back_to_back_keep_their_order() {
    let server = common::start_with(|c| c.no_limits = true);
    let api = Api::new(&server);
    let mut ws = Ws::connect(&server, 0).await;
    assert_eq!(ws.next().await["type"], "welcome");
    let frames: Vec<Value> = (0..100)
        .map(|i| json!({"type": "send", "ref": i, "author": "ada", "text": format!("line {i}")}))
        .collect();
    send_all(&mut ws, &frames).await;
    let got = replies(&mut ws, frames.len()).await;
    for (i, reply) in got.iter().enumerate() {
        assert_eq!(reply["type"], "ack", "reply {i}: {reply}");
        assert_eq!(reply["ref"], i);
        assert_eq!(reply["id"], i + 1);
    }
    let stored = api.all_since(0).await;
    let texts: Vec<&str> = stored.iter().map(|m| m["text"].as_str().unwrap()).collect();
    let sent: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
    assert_eq!(texts, sent);
    server.stop().expect("server stops");
}
