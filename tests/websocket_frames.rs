//! The room's WebSocket reads the client's frames itself (its response body
//! is the connection, issue 15), so these check that reader on a raw
//! socket, frame by frame: a `send` that arrives in three fragments is
//! reassembled, stored and acknowledged; a ping gets its pong with the same
//! payload; a message whose fragments add up to more than
//! `--ws-max-frame-bytes` closes the connection with 1009, and one whose
//! fragments are not UTF-8 once joined closes it with 1007.

mod common;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A masked client frame; `fin` false for all but a message's last
/// fragment. Payloads up to 125 bytes.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = masked_frame(opcode, payload);
    if !fin {
        frame[0] &= 0x7f;
    }
    frame
}

/// Reads the server's next frame (unmasked): its opcode and payload.
async fn next_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    tokio::time::timeout(PATIENCE, async {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await.unwrap();
        let len = match head[1] & 0x7f {
            126 => {
                let mut ext = [0u8; 2];
                stream.read_exact(&mut ext).await.unwrap();
                u16::from_be_bytes(ext) as usize
            }
            127 => panic!("no frame here is that large"),
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).await.unwrap();
        (head[0] & 0x0f, payload)
    })
    .await
    .expect("a frame within PATIENCE")
}

/// The next text frame that is not the welcome, as JSON.
async fn next_json(stream: &mut TcpStream) -> Value {
    loop {
        let (opcode, payload) = next_frame(stream).await;
        assert_eq!(opcode, 0x1, "a text frame");
        let value: Value = serde_json::from_slice(&payload).unwrap();
        if value["type"] != "welcome" {
            return value;
        }
    }
}

/// The close frame's code, skipping any frame before it.
async fn close_code(stream: &mut TcpStream) -> u16 {
    loop {
        let (opcode, payload) = next_frame(stream).await;
        if opcode == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

#[tokio::test]
async fn a_fragmented_send_is_reassembled_stored_and_acknowledged() {
    let server = start_server();
    let mut ws = raw_websocket(server.addr, "/api/ws?since=0", 65536).await;
    let send = br#"{"type":"send","ref":"r-1","author":"ada","text":"in three pieces"}"#;
    let (a, rest) = send.split_at(20);
    let (b, c) = rest.split_at(25);
    let mut bytes = frame(false, 0x1, a);
    bytes.extend(frame(false, 0x0, b));
    // A ping may come between fragments (RFC 6455 §5.4): answered at once.
    bytes.extend(frame(true, 0x9, b"are you there"));
    bytes.extend(frame(true, 0x0, c));
    ws.write_all(&bytes).await.unwrap();

    // Skip the welcome; the pong comes before anything the send causes.
    let (mut opcode, mut payload) = next_frame(&mut ws).await;
    if opcode == 0x1 {
        (opcode, payload) = next_frame(&mut ws).await;
    }
    assert_eq!((opcode, payload.as_slice()), (0xA, &b"are you there"[..]));
    let mut seen = [next_json(&mut ws).await, next_json(&mut ws).await];
    seen.sort_by_key(|v| v["type"].as_str().map(str::to_owned));
    assert_eq!(seen[0]["type"], "ack");
    assert_eq!(seen[0]["ref"], "r-1");
    assert_eq!(seen[1]["type"], "message");
    assert_eq!(seen[1]["message"]["text"], "in three pieces");
    assert_eq!(seen[0]["id"], seen[1]["message"]["id"]);
}

#[tokio::test]
async fn fragments_past_the_frame_limit_close_with_1009() {
    let server = start_with(|c| c.ws_max_frame_bytes = 200);
    let mut ws = raw_websocket(server.addr, "/api/ws?since=0", 65536).await;
    // Each fragment is within the limit; together they are not.
    let mut bytes = frame(false, 0x1, &[b'x'; 100]);
    bytes.extend(frame(false, 0x0, &[b'x'; 100]));
    bytes.extend(frame(true, 0x0, &[b'x'; 100]));
    ws.write_all(&bytes).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 1009);
    // The server carries on.
    let api = Api::new(&server);
    assert_eq!(api.post_ok("ada", "still here").await, 1);
}

#[tokio::test]
async fn fragments_that_are_not_utf8_once_joined_close_with_1007() {
    let server = start_server();
    let mut ws = raw_websocket(server.addr, "/api/ws?since=0", 65536).await;
    // "é" is 0xC3 0xA9: split across fragments it is fine; a lone 0xC3
    // at the end is not.
    let mut bytes = frame(false, 0x1, &[b'"', 0xC3]);
    bytes.extend(frame(false, 0x0, &[0xA9, b'"']));
    bytes.extend(frame(true, 0x0, &[0xC3]));
    ws.write_all(&bytes).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 1007);
}
