//! A classroom network misbehaves: clients that stop reading, vanish
//! without a word, trickle their headers, or send frames that break the
//! protocol. None of them may hurt anyone else or leak a slot.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Opens a WebSocket by hand on a raw socket with a tiny receive buffer,
/// and returns the socket after the 101 — a client that can then simply
/// never read.
async fn raw_websocket(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// Five clients that never read while a 4,000-message burst goes out: the
/// readers get every message, the stuck ones are disconnected (1013 after
/// `--send-timeout-ms`), and the server's memory stays bounded — the room
/// does not queue messages per client.
#[tokio::test]
async fn slow_consumers_are_dropped_without_hurting_anyone() {
    raise_fd_limit();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = spawn_binary(
        &dir.path().join("room.db"),
        &[
            "--no-limits",
            "--send-timeout-ms",
            "500",
            "--memory-window",
            "500",
            "--sync",
            "normal",
        ],
    );
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let api = Api {
        base: base.clone(),
        http: reqwest::Client::new(),
    };

    let mut stuck = Vec::new();
    for _ in 0..5 {
        stuck.push(raw_websocket(addr, "/api/ws?since=0").await);
    }
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws?since=0"))
            .await
            .unwrap();
        readers.push(Ws { stream });
    }
    api.wait_for_stats("8 sockets open", |s| {
        s["transports"]["websocket"]["open"] == 8
    })
    .await;
    let rss_before = rss_kib(child.id());

    const N: usize = 4_000;
    let text = "x".repeat(2_000);
    let mut posters = Vec::new();
    for p in 0..16 {
        let (api, text) = (api.clone(), text.clone());
        posters.push(tokio::spawn(async move {
            for _ in (p..N).step_by(16) {
                api.post_ok("flood", &text).await;
            }
        }));
    }
    let reading: Vec<_> = readers
        .into_iter()
        .map(|mut ws| tokio::spawn(async move { ids(&ws.messages(N).await) }))
        .collect();
    for poster in posters {
        poster.await.unwrap();
    }
    for reader in reading {
        assert_eq!(reader.await.unwrap(), (1..=N as u64).collect::<Vec<_>>());
    }
    api.wait_for_stats("the stuck clients to be dropped", |s| {
        s["transports"]["websocket"]["open"] == 0
    })
    .await;
    let grown_mib = rss_kib(child.id()).saturating_sub(rss_before) / 1024;
    eprintln!("server memory grew by {grown_mib} MiB during the burst");
    // Queuing the burst for the five stuck clients would take 5 × 8 MB.
    assert!(grown_mib < 24, "server memory grew by {grown_mib} MiB");

    // The stuck clients, reconnecting with their cursor (0), get it all.
    let mut back = Ws::connect_to(addr, 0).await;
    assert_eq!(back.messages(N).await.len(), N);
    drop(stuck);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A WebSocket peer that stops answering pings is dropped after
/// `--ws-timeout-ms`; long polls and event streams whose client disconnects
/// are released at once. Every counter goes back to idle.
#[tokio::test]
async fn vanished_clients_are_reaped() {
    let server = start_with(|c| {
        c.ws_ping_ms = 100;
        c.ws_timeout_ms = 300;
    });
    let api = Api::new(&server);

    // A WebSocket client that never reads, never pongs.
    let silent = raw_websocket(server.addr, "/api/ws").await;
    // A long poll whose client closes its socket while it is held.
    let mut poll = TcpStream::connect(server.addr).await.unwrap();
    poll.write_all(b"GET /api/longpoll?since=0&timeout=50 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // An event stream whose client goes away.
    let stream = Sse::connect(&server, "", None).await;

    api.wait_for_stats("everything open", |s| {
        let t = &s["transports"];
        t["websocket"]["open"] == 1 && t["longpoll"]["open"] == 1 && t["sse"]["open"] == 1
    })
    .await;
    drop(poll);
    drop(stream);
    api.wait_for_stats("everything reaped", |s| {
        let t = &s["transports"];
        t["websocket"]["open"] == 0 && t["longpoll"]["open"] == 0 && t["sse"]["open"] == 0
    })
    .await;
    drop(silent);
    // Nothing was lost for anyone: the room still works.
    assert_eq!(api.post_ok("ada", "still here").await, 1);
}

/// A client that sends its request head one byte at a time (slowloris) is
/// cut off after `--client-request-timeout-ms`, while others are served.
#[tokio::test]
async fn slow_headers_are_cut_off() {
    let server = start_with(|c| c.client_request_timeout_ms = 1_000);
    let api = Api::new(&server);
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let head = b"GET /api/messages HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let trickle = async {
        for byte in head {
            if slow.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let others = async {
        // Served normally meanwhile.
        assert_eq!(api.get("/api/messages").await.0, 200);
    };
    tokio::join!(trickle, others);
    let mut answer = Vec::new();
    let read = tokio::time::timeout(PATIENCE, slow.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server closed the connection");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A connection that never says anything at all is closed too.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut nothing = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, silent.read_to_end(&mut nothing)).await;
    assert!(closed.is_ok(), "a silent connection is closed");
}

/// Frames that break the WebSocket protocol close the connection with the
/// right code; the server carries on.
#[tokio::test]
async fn protocol_violations_close_with_the_right_code() {
    let server = start_server();
    let api = Api::new(&server);

    // Invalid UTF-8 in a text frame: 1007.
    let mut raw = raw_websocket(server.addr, "/api/ws").await;
    // FIN + text, masked, 2 bytes: 0xC3 0x28 is not UTF-8.
    let mask = [1u8, 2, 3, 4];
    let payload = [0xC3u8, 0x28];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    raw.write_all(&frame).await.unwrap();
    assert_eq!(read_close_code(&mut raw).await, 1007);

    // An unmasked client frame is a protocol error: 1002.
    let mut raw = raw_websocket(server.addr, "/api/ws").await;
    raw.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
    assert_eq!(read_close_code(&mut raw).await, 1002);

    let mut ws = Ws::connect(&server, 0).await;
    ws.send_json(json!({"type":"send","ref":1,"author":"ada","text":"fine"}))
        .await;
    assert_eq!(ws.next_of("ack").await["id"], 1);
    assert_eq!(api.stats().await["room"]["last_id"], 1);
}

/// Reads server frames from a raw socket until the close frame; its code.
async fn read_close_code(stream: &mut TcpStream) -> u16 {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        // Parse whole frames from the front of the buffer (server frames
        // are unmasked; lengths under 126 here).
        while buf.len() >= 2 {
            let len = (buf[1] & 0x7f) as usize;
            let (header, len) = match len {
                126 if buf.len() >= 4 => (4, u16::from_be_bytes([buf[2], buf[3]]) as usize),
                126 | 127 => (usize::MAX, 0),
                n => (2, n),
            };
            if header == usize::MAX || buf.len() < header + len {
                break;
            }
            let opcode = buf[0] & 0x0f;
            if opcode == 0x8 {
                return u16::from_be_bytes([buf[header], buf[header + 1]]);
            }
            buf.drain(..header + len);
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .expect("a close frame within PATIENCE")
            .unwrap();
        assert!(n > 0, "connection closed without a close frame");
        buf.extend_from_slice(&chunk[..n]);
    }
}
