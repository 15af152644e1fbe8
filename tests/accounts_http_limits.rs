/// Limits per person, with the address only as a looser outer bound. Ada,
/// Grace and two guest tabs all reach the server from one address. Each
/// signed-in student has her own share of WebSockets, event streams, held
/// long polls and messages per second — all her tabs together, whatever
/// tab ids they send (the account is the key, so a new tab id is no way
/// around it) — and so does each guest tab. One person at her limit gets
/// `429` with `Retry-After` and leaves everybody else's share alone. The
/// per-address bound still holds over all of them together.
use serde_json::json;

mod common;

use common::accounts::*;
use common::*;

/// A refused upgrade: its status, code, sentence and `Retry-After`.
async fn refused_ws(browser: &Browser, path: &str) -> (u16, String, String) {
    match browser.ws(path).await {
        Ok(_) => panic!("{path} was accepted"),
        Err((status, body)) => (
            status,
            body["code"].as_str().unwrap().to_owned(),
            body["error"].as_str().unwrap().to_owned(),
        ),
    }
}

/// Each person's own share of connections, one address for all.
#[tokio::test]
async fn connections_are_counted_per_person_not_per_address() {
    let server = start_accounts(|c| {
        c.ws_per_person = 3;
        c.sse_per_person = 2;
        c.longpoll_per_person = 2;
    });
    let ada = Browser::signed_up(&server, "Ada").await;
    let grace = Browser::signed_up(&server, "Grace").await;
    let guest = Browser::new(&server);

    // Ada's three tabs each open a WebSocket; a fourth tab is one too many,
    // whatever id it gives itself.
    let mut open = Vec::new();
    for tab in 0..3 {
        open.push(
            ada.ws_open(&format!("/api/ws?since=0&client=ada-{tab}"))
                .await,
        );
    }
    let (status, code, sentence) = refused_ws(&ada, "/api/ws?since=0&client=ada-new").await;
    assert_eq!((status, code.as_str()), (429, "too_many_connections"));
    assert!(sentence.contains("you have too many"), "{sentence}");
    // The document's socket counts against the same share.
    assert_eq!(refused_ws(&ada, "/api/doc/ws?since=0").await.0, 429);

    // Grace, at the same address, has a share of her own; so has each
    // guest tab.
    for tab in 0..3 {
        open.push(
            grace
                .ws_open(&format!("/api/ws?since=0&client=g-{tab}"))
                .await,
        );
        open.push(guest.ws_open("/api/ws?since=0&client=guest-a").await);
        open.push(guest.ws_open("/api/ws?since=0&client=guest-b").await);
    }
    assert_eq!(
        refused_ws(&guest, "/api/ws?since=0&client=guest-a").await.0,
        429
    );
    assert_eq!(refused_ws(&grace, "/api/ws?since=0").await.0, 429);

    // Event streams and held long polls: the same, per person.
    let mut streams = Vec::new();
    for _ in 0..2 {
        streams.push(ada.sse("/api/events?since=0").await);
        streams.push(grace.sse("/api/events?since=0").await);
    }
    let refused = ada.get("/api/events?since=0&client=another").await;
    refused.expect(429, "too_many_connections");
    assert!(refused.retry_after().is_some());

    let api = Api::new(&server);
    let mut held = Vec::new();
    for browser in [&ada, &ada, &grace] {
        let browser = browser.clone();
        held.push(tokio::spawn(async move {
            browser.get("/api/longpoll?since=0&timeout=30").await
        }));
    }
    api.wait_for_stats("three held polls", |s| {
        s["transports"]["longpoll"]["open"] == 3
    })
    .await;
    ada.get("/api/longpoll?since=0&timeout=30&client=x")
        .await
        .expect(429, "too_many_connections");

    // Closing one of Ada's sockets gives her the slot back.
    drop(open.remove(0));
    api.wait_for_stats("Ada's slot back", |s| {
        s["transports"]["websocket"]["open"] == 11
    })
    .await;
    ada.ws_open("/api/ws?since=0").await;

    // Everybody's held polls are answered by the next message.
    let mut grace = grace.clone();
    grace
        .post_message(json!({"text": "hello"}))
        .await
        .expect(201, "");
    for poll in held {
        assert_eq!(poll.await.unwrap().status, 200);
    }
}

/// The per-address bound holds over everybody behind the address, and
/// says so.
#[tokio::test]
async fn the_address_is_a_looser_outer_bound() {
    let server = start_accounts(|c| {
        c.ws_per_person = 3;
        c.ws_per_ip = 5;
    });
    let ada = Browser::signed_up(&server, "Ada").await;
    let grace = Browser::signed_up(&server, "Grace").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(ada.ws_open("/api/ws?since=0").await);
    }
    for _ in 0..2 {
        open.push(grace.ws_open("/api/ws?since=0").await);
    }
    let (status, code, sentence) = refused_ws(&grace, "/api/ws?since=0").await;
    assert_eq!((status, code.as_str()), (429, "too_many_connections"));
    assert!(sentence.contains("from your address"), "{sentence}");
}

/// Messages per second: each account has its own bucket, shared by all
/// its tabs and both ways of sending (a new tab id does not refill it);
/// another student, or a guest tab, at the same address is not slowed by
/// it. The per-address bucket is the outer bound over all of them.
#[tokio::test]
async fn messages_are_rate_limited_per_person_with_the_address_as_the_outer_bound() {
    let server = start_accounts(|c| {
        c.post_rate = 0.1;
        c.post_burst = 3;
        c.post_rate_per_ip = 0.1;
        c.post_burst_per_ip = 8;
    });
    let mut ada = Browser::signed_up(&server, "Ada").await;
    let mut grace = Browser::signed_up(&server, "Grace").await;
    let mut guest = Browser::new(&server);

    // Ada: two posts from two tabs, one on a WebSocket; the fourth is
    // refused, from any tab.
    ada.post("/api/messages?client=tab-1", json!({"text": "one"}))
        .await
        .expect(201, "");
    ada.post("/api/messages?client=tab-2", json!({"text": "two"}))
        .await
        .expect(201, "");
    let mut ws = ada.ws_open("/api/ws?since=0&client=tab-3").await;
    ws.send_json(json!({"type": "send", "ref": "three", "text": "three"}))
        .await;
    assert_eq!(ws.next_of("ack").await["ref"], "three");
    let refused = ada
        .post("/api/messages?client=tab-4", json!({"text": "four"}))
        .await;
    refused.expect(429, "rate_limited");
    assert!(refused.retry_after().is_some_and(|s| s >= 1));
    ws.send_json(json!({"type": "send", "ref": "five", "text": "five"}))
        .await;
    assert_eq!(ws.next_of("error").await["code"], "rate_limited");

    // Grace and a guest tab have buckets of their own.
    for text in ["a", "b", "c"] {
        grace
            .post("/api/messages?client=grace-1", json!({"text": text}))
            .await
            .expect(201, "");
    }
    for text in ["x", "y"] {
        guest
            .post(
                "/api/messages?client=guest-1",
                json!({"author": "Guest", "text": text}),
            )
            .await
            .expect(201, "");
    }
    // That is eight from the address: the ninth is refused whoever sends
    // it, even a guest tab with tokens of its own left.
    let refused = guest
        .post(
            "/api/messages?client=guest-2",
            json!({"author": "Other guest", "text": "z"}),
        )
        .await;
    refused.expect(429, "rate_limited");
    assert!(refused.retry_after().is_some());
    assert_eq!(Api::new(&server).all_since(0).await.len(), 8);
}
