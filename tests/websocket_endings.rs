//! How a WebSocket ends when the server, not the client, decides: the echo
//! socket (`/api/echo`) says goodbye like the room's socket does — 1001
//! when the server shuts down, 1013 when the teacher switches the lab's
//! outage on — and a client that stops reading is closed within the send
//! timeout even when all the server has to write are pongs to its pings.
//! (Review, issue 10: echo watched neither shutdown nor the outage, and
//! pings and pongs were written without the send timeout, parking the
//! connection's task for good.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Opens `/api/echo` and checks it echoes, so the socket is surely served.
async fn open_echo(server: &weebsockets::Running) -> Ws {
    let mut echo = Ws::connect_path(server, "/api/echo").await;
    echo.stream
        .send(WsMessage::Text(r#"{"hello":"echo"}"#.into()))
        .await
        .unwrap();
    assert_eq!(echo.next().await, json!({"hello": "echo"}));
    echo
}

/// Ctrl-C / SIGTERM: the echo socket gets a 1001 close frame while the
/// server is still there to send it (the room's socket does, see
/// tests/shutdown.rs), not a dropped connection after the shutdown timeout.
#[tokio::test]
async fn echo_closes_with_1001_on_shutdown() {
    let server = start_server();
    let mut echo = open_echo(&server).await;
    let stopping = tokio::task::spawn_blocking(move || server.stop());
    let code = echo.close_code_within(PATIENCE).await;
    stopping.await.unwrap().unwrap();
    assert_eq!(code, Ok(1001), "the echo socket on shutdown");
}

/// The lab's outage closes every open WebSocket with 1013 ("try again
/// later") — the echo socket too.
#[tokio::test]
async fn echo_closes_with_1013_on_the_outage() {
    let server = start_server();
    let api = Api::new(&server);
    let mut echo = open_echo(&server).await;
    // The room's socket, as the yardstick: it is closed at once.
    let mut room = Ws::connect(&server, 0).await;
    room.next_of("welcome").await;
    api.lab("teacher", json!({"outage": true})).await;
    assert_eq!(room.close_code().await, 1013, "the room's socket");
    assert_eq!(
        echo.close_code_within(Duration::from_secs(5)).await,
        Ok(1013),
        "the echo socket on the outage"
    );
}

/// A client that never reads but keeps sending 125-byte pings: the only
/// frames the server must write are pongs. Once the client's receive
/// buffer, the kernel's send buffer, actix's write buffer and actix-ws's
/// 32-frame channel are full, the next `pong` cannot be written. The server
/// must treat that like any frame it cannot write: give up after
/// `--send-timeout-ms` and close (the slot and the `open` counter go back
/// to zero).
///
/// Why this is deterministic: the client never reads, so from some point on
/// every pong waits, for ever; the client sends far more pongs' worth of
/// pings than all those buffers hold (the writes block once the server
/// stops reading, which it does as soon as one pong waits); and the
/// heartbeat is set far out (ping every 30 s, timeout 60 s), so nothing but
/// the send timeout can close the connection within the test's deadline.
#[tokio::test]
async fn a_client_that_never_reads_its_pongs_is_closed_within_the_send_timeout() {
    const SEND_TIMEOUT_MS: u64 = 500;
    let server = start_with(|c| {
        c.send_timeout_ms = SEND_TIMEOUT_MS;
        c.ws_ping_ms = 30_000;
        c.ws_timeout_ms = 60_000;
    });
    let api = Api::new(&server);
    let socket = raw_websocket(server.addr, "/api/ws?since=0", 4096).await;
    api.wait_for_stats("the socket to be open", |s| {
        s["transports"]["websocket"]["open"] == 1
    })
    .await;
    // (The welcome frame is waiting unread in the socket: fine, it is the
    // kind of frame the send timeout already guards.)

    let pings: Vec<u8> = (0..1_000)
        .flat_map(|_| masked_frame(0x9, &[b'p'; 125]))
        .collect();
    let (_read_half, mut write_half) = socket.into_split();
    let (written_tx, mut written_rx) = tokio::sync::watch::channel(0usize);
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        // 64 MB of pings at most: far more than every buffer on the way.
        for _ in 0..500 {
            if write_half.write_all(&pings).await.is_err() {
                break; // the server closed the connection
            }
            written_tx.send_modify(|n| *n += pings.len());
        }
    });

    // Generous: the buffers fill in well under a second on loopback, then
    // one send timeout for the pong and one for the close frame.
    let deadline = Duration::from_millis(5_000 + 2 * SEND_TIMEOUT_MS);
    let closed = tokio::time::timeout(deadline, async {
        loop {
            let stats = api.stats().await;
            if stats["transports"]["websocket"]["open"] == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let written = *written_rx.borrow_and_update();
    writer.abort();
    assert!(
        closed.is_ok(),
        "a client that never reads its pongs must be closed within the send timeout \
         ({SEND_TIMEOUT_MS} ms): still open after {:?}, {written} bytes of pings written \
         (the server stopped reading them: its connection task is parked on a pong)",
        started.elapsed()
    );
    eprintln!(
        "closed {:?} after the first ping; {written} bytes of pings written",
        started.elapsed()
    );
    // The server carries on.
    assert_eq!(api.post_ok("ada", "still here").await, 1);
}
