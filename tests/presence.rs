//! Presence: an editor publishes its caret (a selection at a revision of
//! the document) and every other editor reads it over its own transport.
//! The caret carries a colour that stays the editor's, the name rules of a
//! message author (a guest may not show an account's name), refuses a
//! revision the document has not reached, and a reader further behind
//! than the kept window skips ahead instead of failing.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn publish(api: &Api, body: Value) -> (u16, Value) {
    api.json(Method::POST, "/api/doc/presence", &body).await
}

async fn carets(api: &Api, since: u64) -> Vec<Value> {
    let (status, _, body) = api
        .get(&format!("/api/doc/presence?since={since}&limit=500"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["carets"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_caret_reaches_readers_with_its_revision_colour_and_name() {
    let server = start_server();
    let api = Api::new(&server);
    let (status, body) = api
        .json(
            Method::POST,
            "/api/doc/ops",
            &json!({"client": "ada-tab", "seq": 1, "rev": 0, "op": ["hello world"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let mut ws = Ws::connect_url(&server.ws_url("/api/doc/presence/ws?since=0")).await;
    assert_eq!(ws.next().await["type"], "welcome");

    let caret = json!({"client": "ada-tab", "rev": 1, "anchor": 6, "head": 11, "name": "ada", "via": "sse"});
    assert_eq!(publish(&api, caret.clone()).await.0, 204);
    assert_eq!(publish(&api, caret).await.0, 204);
    let first = ws.next_of("presence").await;
    let second = ws.next_of("presence").await;
    assert_eq!(
        (
            &first["client"],
            &first["rev"],
            &first["anchor"],
            &first["head"],
            &first["name"],
            &first["via"]
        ),
        (
            &json!("ada-tab"),
            &json!(1),
            &json!(6),
            &json!(11),
            &json!("ada"),
            &json!("sse")
        )
    );
    assert!(first["color"].as_str().unwrap().starts_with('#'));
    assert_eq!(
        first["color"], second["color"],
        "an editor keeps its colour"
    );
    assert_eq!(second["seq"].as_u64(), first["seq"].as_u64().map(|s| s + 1));

    // Leaving is said once, with the same client.
    let left = json!({"client": "ada-tab", "rev": 1, "anchor": 0, "head": 0, "left": true});
    assert_eq!(publish(&api, left).await.0, 204);
    assert_eq!(ws.next_of("presence").await["left"], true);

    // A nameless guest is "guest"; polling sees every caret in order.
    assert_eq!(
        publish(
            &api,
            json!({"client": "b", "rev": 0, "anchor": 0, "head": 0})
        )
        .await
        .0,
        204
    );
    let all = carets(&api, 0).await;
    assert_eq!(all.len(), 4);
    assert_eq!(all[3]["name"], "guest");
}

#[tokio::test]
async fn carets_are_checked_like_every_other_input() {
    let server = start_server();
    let api = Api::new(&server);
    let bad = [
        (
            json!({"client": "", "rev": 0, "anchor": 0, "head": 0}),
            422,
            "invalid_client",
        ),
        (
            json!({"client": "a", "rev": 5, "anchor": 0, "head": 0}),
            409,
            "rev_ahead",
        ),
        (
            json!({"client": "a", "rev": 0, "anchor": -1, "head": 0}),
            422,
            "invalid_caret",
        ),
        (
            json!({"client": "a", "rev": 0, "anchor": 0, "head": 1.5}),
            422,
            "invalid_caret",
        ),
        (
            json!({"client": "a", "rev": 0, "anchor": 0}),
            400,
            "bad_json",
        ),
        (
            json!({"client": "a", "rev": 0, "anchor": 0, "head": 0, "via": "pigeon"}),
            422,
            "invalid_via",
        ),
    ];
    for (body, status, code) in bad {
        let (got, answer) = publish(&api, body.clone()).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    assert!(
        carets(&api, 0).await.is_empty(),
        "nothing refused was published"
    );
}

#[tokio::test]
async fn a_reader_far_behind_skips_ahead_to_what_is_kept() {
    let server = start_with(|c| c.no_limits = true);
    let api = Api::new(&server);
    let kept = weebsockets::presence::KEPT;
    for i in 0..kept + 20 {
        let body = json!({"client": format!("e{}", i % 7), "rev": 0, "anchor": 0, "head": 0});
        assert_eq!(publish(&api, body).await.0, 204);
    }
    let first = carets(&api, 0).await;
    assert_eq!(
        first[0]["seq"].as_u64().unwrap(),
        21,
        "the oldest kept caret, not the first ever"
    );
    assert_eq!(first.len(), 500);
}
