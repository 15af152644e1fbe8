//! The two checks in front of the room, read as the standards define them
//! rather than as string prefixes. The WebSocket upgrade's `Origin` is
//! parsed as an origin (scheme, host, port — the scheme's default port may
//! be written or left out, on either side) and compared with the server's
//! own host or an allowed origin; anything that is not an origin at all
//! (`null`, a path, userinfo, garbage) is refused with a JSON 403. And the
//! teacher's `Authorization: Bearer <token>` is accepted whatever the case
//! of `Bearer` (RFC 7235: the auth scheme is case-insensitive). (Review,
//! issue 10.)

mod common;

use std::net::SocketAddr;

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends a WebSocket upgrade to `path` with this `Host` and `Origin`;
/// returns the status and, for a refusal, its JSON body.
async fn upgrade(addr: SocketAddr, path: &str, host: &str, origin: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(PATIENCE, stream.read_exact(&mut byte))
            .await
            .expect("an answer within PATIENCE")
            .expect("an answer head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status: u16 = head[9..12].parse().unwrap();
    if status == 101 {
        return (status, Value::Null);
    }
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Both WebSocket endpoints check the Origin the same way.
const ENDPOINTS: [&str; 2] = ["/api/ws", "/api/echo"];

/// Origins a browser sends for a page of this server, seen through a
/// `Host` that a proxy wrote with the scheme's default port: one origin,
/// written two ways.
#[tokio::test]
async fn an_origin_matches_its_host_whether_or_not_the_default_port_is_written() {
    let server = start_server();
    let own = server.addr.to_string();
    let cases = [
        // The everyday case: right today, kept right.
        (own.as_str(), format!("http://{own}")),
        // Page http://localhost/ (port 80 left out, as browsers serialise
        // it), Host written with its port by a reverse proxy.
        ("localhost:80", "http://localhost".to_owned()),
        // Page https://class.example/ behind a TLS-terminating proxy that
        // passes the Host with its port.
        ("class.example:443", "https://class.example".to_owned()),
    ];
    let mut wrong = Vec::new();
    for path in ENDPOINTS {
        for (host, origin) in &cases {
            let (status, body) = upgrade(server.addr, path, host, origin).await;
            if status != 101 {
                wrong.push(format!(
                    "{path}: Origin {origin:?}, Host {host:?}: {status} {body}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the same origin must be let in (101):\n{}",
        wrong.join("\n")
    );
}

/// `--allowed-origin` is an origin too: written with a trailing slash (as
/// copied from the address bar) or with its default port, it still matches
/// what the browser sends.
#[tokio::test]
async fn an_allowed_origin_matches_however_the_teacher_wrote_it() {
    let server = start_with(|c| {
        c.allowed_origins = vec![
            "http://teacher.example/".into(),
            "https://slides.example:443".into(),
            "HTTP://Board.Example".into(),
        ]
    });
    let host = server.addr.to_string();
    let mut wrong = Vec::new();
    for path in ENDPOINTS {
        for origin in [
            "http://teacher.example",
            "https://slides.example",
            "http://board.example",
        ] {
            let (status, body) = upgrade(server.addr, path, &host, origin).await;
            if status != 101 {
                wrong.push(format!("{path}: Origin {origin:?}: {status} {body}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "allowed origins must be let in (101):\n{}",
        wrong.join("\n")
    );
}

/// What is not this server's origin, or not an origin at all, is refused
/// with the contract's JSON 403.
#[tokio::test]
async fn other_and_malformed_origins_are_refused_with_json() {
    let server = start_with(|c| c.allowed_origins = vec!["http://teacher.example".into()]);
    let own = server.addr.to_string();
    let port = server.addr.port();
    let refused = [
        // Another site, another port, another host: right today.
        "http://evil.example".to_owned(),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        format!("http://localhost:{port}"),
        // An allowed origin's host on another port.
        "http://teacher.example:8080".to_owned(),
        // Not origins at all.
        "null".to_owned(),
        format!("http://{own}/page"),
        format!("http://user@{own}"),
        format!("http://user:secret@{own}"),
        format!("http://{own}?x=1"),
        format!("http://{own}#top"),
        own.clone(),
        format!("//{own}"),
        format!("ws://{own}"),
        format!("http://{own}:{port}"),
        format!("http://{own}x"),
        "http://".to_owned(),
        "garbage".to_owned(),
        "".to_owned(),
    ];
    let mut wrong = Vec::new();
    for path in ENDPOINTS {
        for origin in &refused {
            let (status, body) = upgrade(server.addr, path, &own, origin).await;
            if (status, body["code"].as_str(), body["error"].is_string())
                != (403, Some("forbidden_origin"), true)
            {
                wrong.push(format!("{path}: Origin {origin:?}: {status} {body}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "must be refused with 403 forbidden_origin (Host {own:?}):\n{}",
        wrong.join("\n")
    );
}

/// `Authorization: bearer <token>`: the scheme's case does not matter; the
/// token's does, and so does having one.
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let server = start_server();
    let api = Api::new(&server);
    let put = |authorization: &'static str| {
        let api = api.clone();
        async move {
            let response = api
                .http
                .put(api.url("/api/lab"))
                .header("authorization", authorization)
                .json(&json!({"latency_ms": 0}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let mut wrong = Vec::new();
    for accepted in [
        "Bearer teacher",
        "bearer teacher",
        "BEARER teacher",
        "bEaReR teacher",
    ] {
        let (status, body) = put(accepted).await;
        if status != 200 {
            wrong.push(format!(
                "Authorization: {accepted} must be accepted: {status} {body}"
            ));
        }
    }
    for refused in [
        "bearer Teacher",
        "bearer",
        "Bearer",
        "Basic dGVhY2hlcg==",
        "teacher",
    ] {
        let (status, body) = put(refused).await;
        if (status, body["code"].as_str()) != (401, Some("unauthorized")) {
            wrong.push(format!(
                "Authorization: {refused} must be a 401: {status} {body}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
