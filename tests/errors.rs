//! Every error the contract names is produced here by a real request, with
//! its status, its JSON body (`error` for a person, `code` for a program)
//! and, where the client should come back later, `Retry-After`. After each
//! refusal the server still serves a normal client, and a rejected message
//! never takes an id.

mod common;

use common::*;
use serde_json::{Value, json};

async fn send(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = api.http.request(method, api.url(path)).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{status} body is not JSON: {text:?}"));
    (status, headers, json)
}

fn assert_error(got: &(u16, reqwest::header::HeaderMap, Value), status: u16, code: &str) {
    let (s, headers, body) = got;
    assert_eq!((*s, body["code"].as_str()), (status, Some(code)), "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "a sentence for a person: {body}"
    );
    assert_eq!(headers["content-type"], "application/json");
}

#[tokio::test]
async fn every_contract_error_has_its_status_code_and_json_body() {
    let server = start_with(|c| {
        c.max_body_bytes = 8192;
        c.post_burst = 3;
        c.post_rate = 0.5;
    });
    let api = Api::new(&server);
    let post = reqwest::Method::POST;
    let json_ct = Some("application/json");

    // 400 bad query: non-numbers, negatives, overflow, out of range.
    for path in [
        "/api/messages?since=abc",
        "/api/messages?since=-1",
        "/api/messages?since=99999999999999999999999",
        "/api/messages?limit=0",
        "/api/messages?limit=501",
        "/api/longpoll?timeout=0",
        "/api/longpoll?timeout=56",
        "/api/longpoll?since=1.5",
        "/api/events?since=x",
    ] {
        assert_error(&api.get_raw(path).await, 400, "bad_query");
    }
    let sse_bad_id = api
        .http
        .get(api.url("/api/events"))
        .header("Last-Event-ID", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(sse_bad_id.status(), 400);

    // 400 bad JSON: malformed, wrong types, missing fields, invalid UTF-8.
    for body in [
        &b"{\"author\":"[..],
        br#"{"author":5,"text":"x"}"#,
        br#"{"text":"no author"}"#,
        b"[1,2,3]",
        b"{\"author\":\"a\",\"text\":\"\xff\xfe\"}",
    ] {
        let got = send(&api, post.clone(), "/api/messages", json_ct, body.to_vec()).await;
        assert_error(&got, 400, "bad_json");
    }

    // 413: over --max-body-bytes, declared or chunked.
    let big = json!({"author":"ada","text":"x".repeat(9000)}).to_string();
    assert_error(
        &send(&api, post.clone(), "/api/messages", json_ct, big.clone()).await,
        413,
        "body_too_large",
    );
    let chunked = reqwest::Body::wrap_stream(futures_util::stream::iter(
        big.into_bytes()
            .chunks(100)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    ));
    assert_error(
        &send(&api, post.clone(), "/api/messages", json_ct, chunked).await,
        413,
        "body_too_large",
    );

    // 415: not declared as JSON.
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let got = send(
            &api,
            post.clone(),
            "/api/messages",
            ct,
            r#"{"author":"a","text":"b"}"#,
        )
        .await;
        assert_error(&got, 415, "not_json");
    }
    // ...while a charset parameter is fine.
    let got = send(
        &api,
        post.clone(),
        "/api/messages",
        Some("application/json; charset=utf-8"),
        r#"{"author":"a","text":"charset ok"}"#,
    )
    .await;
    assert_eq!(got.0, 201);

    // 422: each field out of its bounds.
    for (body, code) in [
        (json!({"author":"","text":"x"}), "invalid_author"),
        (json!({"author":"   ","text":"x"}), "invalid_author"),
        (
            json!({"author":"a".repeat(33),"text":"x"}),
            "invalid_author",
        ),
        (json!({"author":"ada","text":""}), "invalid_text"),
        (json!({"author":"ada","text":" \n\t "}), "invalid_text"),
        (
            json!({"author":"ada","text":"é".repeat(2001)}),
            "invalid_text",
        ),
        (
            json!({"author":"ada","text":"nul\u{0}"}),
            "control_character",
        ),
        (
            json!({"author":"a\u{1b}[31m","text":"ansi"}),
            "control_character",
        ),
        (
            json!({"author":"ada","text":"c1\u{85}"}),
            "control_character",
        ),
        (
            json!({"author":"ada","text":"x","via":"carrier-pigeon"}),
            "invalid_via",
        ),
    ] {
        let got = send(
            &api,
            post.clone(),
            "/api/messages",
            json_ct,
            body.to_string(),
        )
        .await;
        assert_error(&got, 422, code);
    }
    // Exactly at the limits is fine (counted in characters, not bytes).
    let got = send(
        &api,
        post.clone(),
        "/api/messages",
        json_ct,
        json!({"author":"ü".repeat(32),"text":"é".repeat(2000)}).to_string(),
    )
    .await;
    assert_eq!(got.0, 201);
    assert_eq!(got.2["id"], 2, "rejected messages took no id");

    // 429: the burst (3) is spent by the two posts above and one more.
    assert_eq!(api.post("ada", "third", None).await.0, 201);
    let got = send(
        &api,
        post.clone(),
        "/api/messages",
        json_ct,
        json!({"author":"ada","text":"too fast"}).to_string(),
    )
    .await;
    assert_error(&got, 429, "rate_limited");
    let retry: u64 = got.1["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(
        got.2["retry_after_ms"].as_u64().map(|ms| ms <= 2000),
        Some(true)
    );

    // 401: lab change without a token, or with a wrong one.
    let lab = json!({"outage": true}).to_string();
    let got = send(&api, reqwest::Method::PUT, "/api/lab", json_ct, lab.clone()).await;
    assert_error(&got, 401, "unauthorized");
    let wrong = api
        .http
        .put(api.url("/api/lab"))
        .bearer_auth("teacherX")
        .header("content-type", "application/json")
        .body(lab.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        api.get("/api/lab").await.2["outage"],
        false,
        "nothing changed"
    );

    // 422 for a lab value out of bounds, 400 for an unknown lab field.
    let bad_lab = api
        .http
        .put(api.url("/api/lab"))
        .bearer_auth("teacher")
        .json(&json!({"latency_ms": 10_000_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_lab.status(), 422);
    let unknown = api
        .http
        .put(api.url("/api/lab"))
        .bearer_auth("teacher")
        .json(&json!({"latency": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);

    // 503: the lab's outage, on every transport endpoint, with Retry-After.
    api.lab("teacher", json!({"outage": true})).await;
    for path in [
        "/api/messages",
        "/api/longpoll?timeout=1",
        "/api/events",
        "/api/ws",
    ] {
        let got = api.get_raw(path).await;
        assert_error(&got, 503, "outage");
        assert!(got.1.contains_key("retry-after"));
    }
    let got = send(
        &api,
        post.clone(),
        "/api/messages",
        json_ct,
        json!({"author":"ada","text":"during outage"}).to_string(),
    )
    .await;
    assert_error(&got, 503, "outage");
    // ...while stats, lab, health and pages keep working.
    assert_eq!(api.get("/api/stats").await.0, 200);
    assert_eq!(api.get("/api/lab").await.0, 200);
    assert_eq!(api.get("/healthz").await.0, 200);
    assert_eq!(
        api.http.get(api.url("/")).send().await.unwrap().status(),
        200
    );
    api.lab("teacher", json!({"outage": false})).await;

    // 404 and 405 under /api are JSON too.
    assert_error(&api.get_raw("/api/nothing-here").await, 404, "not_found");
    let got = send(&api, reqwest::Method::DELETE, "/api/messages", None, "").await;
    assert_error(&got, 405, "method_not_allowed");

    // After all that, a normal client is served normally.
    let (_, _, page) = api.get("/api/messages?since=0").await;
    assert_eq!(ids(page["messages"].as_array().unwrap()), vec![1, 2, 3]);
}

/// Holds of a long poll that the outage interrupts end in 503 at once.
#[tokio::test]
async fn outage_answers_held_long_polls() {
    let server = start_server();
    let api = Api::new(&server);
    let held = {
        let api = api.clone();
        tokio::spawn(async move { api.get_raw("/api/longpoll?since=0&timeout=50").await })
    };
    api.wait_for_stats("a held poll", |s| s["transports"]["longpoll"]["open"] == 1)
        .await;
    api.lab(&server.teacher_token, json!({"outage": true}))
        .await;
    let got = held.await.unwrap();
    assert_error(&got, 503, "outage");
}

trait GetRaw {
    async fn get_raw(&self, path: &str) -> (u16, reqwest::header::HeaderMap, Value);
}

impl GetRaw for Api {
    /// Like `get`, but insists on a JSON body.
    async fn get_raw(&self, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        send(self, reqwest::Method::GET, path, None, "").await
    }
}
