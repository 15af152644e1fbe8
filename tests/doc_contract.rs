/// The shared document's contract (PROTOCOL.md, "The shared document
/// (v2)"), endpoint by endpoint, against the real server on an ephemeral
/// port: exact status codes, bodies and error codes for reading the text,
/// submitting operations (stored as transformed), resending a `(client,
/// seq)` over every way of submitting, stale and future revisions, every
/// malformed operation and field, the length and body limits, the
/// WebSocket's and the event stream's framing, the naive whole-text `PUT`
/// and the edit it loses, the tie rule, a character deleted twice, counting
/// in code points, the extensions (summary, text at a revision, restore),
/// the per-editor rate limit and the lab's outage.
mod common;

use common::editors::*;
use common::*;
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use weebsockets::Running;

/// A server with its rate limits lifted (the tests of the limit start
/// their own).
fn server() -> Running {
    start_with(|c| c.no_limits = true)
}

/// A document whose text is `text`, at revision 1.
async fn with_text(api: &Api, text: &str) {
    let (rev, op) = post_op_ok(api, "setup", 0, 0, json!([text])).await;
    assert_eq!((rev, op), (1, json!([text])));
}

/// An error answer: its status and code, and a sentence for a person.
fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(
        (answer.status, answer.code()),
        (status, code),
        "{}",
        answer.body
    );
    assert!(
        answer.body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        answer.body
    );
}

// ---------------------------------------------------------------------------
// Reading and submitting
// ---------------------------------------------------------------------------

/// `GET /api/doc` starts at revision 0 with no text; `POST /api/doc/ops`
/// answers `201 {"rev","op"}`; the stored operation carries `client`,
/// `seq`, `author` (only when given) and `at`, and the text follows.
#[tokio::test]
async fn the_document_starts_empty_and_follows_each_operation() {
    let server = server();
    let api = Api::new(&server);
    let (status, headers, body) = api.get("/api/doc").await;
    assert_eq!((status, body), (200, json!({"rev": 0, "text": ""})));
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    let before = weebsockets::store::now_ms();
    let answer = post_op(&api, "tab-1", 0, 0, json!(["hello"])).await;
    assert_eq!(
        (answer.status, answer.body),
        (201, json!({"rev": 1, "op": ["hello"]}))
    );
    let body = json!({"client": "tab-2", "seq": 0, "rev": 1, "op": [5, " world"], "author": "ada"});
    let answer = request(&api, Method::POST, "/api/doc/ops", &body).await;
    assert_eq!(
        (answer.status, answer.body),
        (201, json!({"rev": 2, "op": [5, " world"]}))
    );

    let (status, _, body) = api.get("/api/doc").await;
    assert_eq!(
        (status, body),
        (200, json!({"rev": 2, "text": "hello world"}))
    );
    let (status, _, page) = api.get("/api/doc/ops?since=0").await;
    assert_eq!(status, 200);
    assert_eq!(page["last_rev"], 2);
    let ops = page["ops"].as_array().unwrap();
    let fields = |op: &Value| {
        let mut keys: Vec<String> = op.as_object().unwrap().keys().cloned().collect();
        keys.sort_unstable();
        keys
    };
    assert_eq!(fields(&ops[0]), ["at", "client", "op", "rev", "seq", "via"]);
    assert_eq!(
        (
            &ops[0]["rev"],
            &ops[0]["op"],
            &ops[0]["client"],
            &ops[0]["seq"],
            &ops[0]["via"]
        ),
        (
            &json!(1),
            &json!(["hello"]),
            &json!("tab-1"),
            &json!(0),
            &json!("api")
        )
    );
    assert_eq!(ops[1]["author"], "ada");
    let at = ops[0]["at"].as_u64().unwrap();
    assert!(
        at >= before && at <= weebsockets::store::now_ms(),
        "at is the server's clock"
    );
    // `since` and `limit` page as for the chat.
    let (_, _, page) = api.get("/api/doc/ops?since=1&limit=1").await;
    assert_eq!(page["ops"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&page["ops"][0]["rev"], &page["last_rev"]),
        (&json!(2), &json!(2))
    );
}

/// An operation made at an old revision is stored transformed against
/// every one stored since, and the answer (and every reader) gets it as
/// stored, in the contract's normal form.
#[tokio::test]
async fn a_stale_operation_is_stored_transformed_in_normal_form() {
    let server = server();
    let api = Api::new(&server);
    with_text(&api, "hello").await;
    // Both made on "hello" at revision 1: Bob appends, Ada capitalises.
    assert_eq!(
        post_op_ok(&api, "bob", 0, 1, json!([5, " world"])).await,
        (2, json!([5, " world"]))
    );
    let (rev, op) = post_op_ok(&api, "ada", 0, 1, json!(["H", -1, 4])).await;
    assert_eq!(
        (rev, op),
        (3, json!(["H", -1, 10])),
        "transformed past Bob's append"
    );
    assert_eq!(document(&api).await, (3, "Hello world".to_owned()));
    let ops = ops_since(&api, 0).await;
    assert_eq!(
        ops[2]["op"],
        json!(["H", -1, 10]),
        "readers get the stored form"
    );

    // Normal form: a delete before an insert at one position is written
    // insert first, and neighbours of one kind are merged.
    let (_, op) = post_op_ok(&api, "ada", 1, 3, json!([-1, "J", 10])).await;
    assert_eq!(op, json!(["J", -1, 10]));
    let (_, op) = post_op_ok(&api, "ada", 2, 4, json!([1, 1, "a", "b", 4, 5])).await;
    assert_eq!(op, json!([2, "ab", 9]));
    let (_, op) = post_op_ok(&api, "ada", 3, 5, json!([-1, -1, 11])).await;
    assert_eq!(op, json!([-2, 11]));
    assert_eq!(document(&api).await.1, "abllo world");
}

/// `rev` beyond the newest revision is `409 rev_ahead`, over HTTP and as
/// a WebSocket error frame.
#[tokio::test]
async fn a_revision_from_the_future_is_409_rev_ahead() {
    let server = server();
    let api = Api::new(&server);
    assert_error(
        &post_op(&api, "a", 0, 1, json!(["x"])).await,
        409,
        "rev_ahead",
    );
    with_text(&api, "x").await;
    assert_error(
        &post_op(&api, "a", 0, 2, json!([1, "y"])).await,
        409,
        "rev_ahead",
    );
    let mut ws = Ws::connect_url(&server.ws_url("/api/doc/ws")).await;
    ws.next_of("welcome").await;
    ws.send_json(
        json!({"type": "op", "ref": "f", "client": "w", "seq": 0, "rev": 9, "op": [1, "y"]}),
    )
    .await;
    let frame = ws.next_of("error").await;
    assert_eq!(
        (&frame["ref"], &frame["code"]),
        (&json!("f"), &json!("rev_ahead"))
    );
    assert_eq!(document(&api).await.0, 1, "nothing stored");
}

// ---------------------------------------------------------------------------
// Resending is safe
// ---------------------------------------------------------------------------

/// A `(client, seq)` sent again over HTTP answers `200` with the revision
/// and operation stored the first time — even if the body now says
/// something else — and stores nothing.
#[tokio::test]
async fn a_resend_over_http_answers_200_with_the_first_answer() {
    let server = server();
    let api = Api::new(&server);
    with_text(&api, "abc").await;
    assert_eq!(
        post_op_ok(&api, "ada", 4, 1, json!([3, "!"])).await,
        (2, json!([3, "!"]))
    );
    post_op_ok(&api, "bob", 0, 2, json!(["<", 4])).await;
    for body in [
        json!({"client": "ada", "seq": 4, "rev": 1, "op": [3, "!"]}),
        // The same (client, seq) with another op and rev: still the first.
        json!({"client": "ada", "seq": 4, "rev": 3, "op": [5, "?"]}),
    ] {
        let answer = request(&api, Method::POST, "/api/doc/ops", &body).await;
        assert_eq!(
            (answer.status, answer.body),
            (200, json!({"rev": 2, "op": [3, "!"]}))
        );
    }
    assert_eq!(document(&api).await, (3, "<abc!".to_owned()));
    assert_eq!(ops_since(&api, 0).await.len(), 3);
}

/// Over the WebSocket a resent `op` frame gets the same `ack` (same rev),
/// and its operation is not delivered a second time.
#[tokio::test]
async fn a_resend_over_websocket_gets_the_same_ack_and_no_second_op() {
    let server = server();
    let api = Api::new(&server);
    let mut ws = Ws::connect_url(&server.ws_url("/api/doc/ws?since=0")).await;
    assert_eq!(ws.next().await, json!({"type": "welcome", "last_rev": 0}));
    let frame = |reference: &str| json!({"type": "op", "ref": reference, "client": "w", "seq": 0, "rev": 0, "op": ["hi"]});
    ws.send_json(frame("one")).await;
    let mut acks = Vec::new();
    let mut ops = Vec::new();
    while acks.is_empty() || ops.is_empty() {
        let f = ws.next().await;
        match f["type"].as_str() {
            Some("ack") => acks.push(f),
            Some("op") => ops.push(f),
            _ => panic!("{f}"),
        }
    }
    assert_eq!(acks[0], json!({"type": "ack", "ref": "one", "rev": 1}));
    ws.send_json(frame("two")).await;
    assert_eq!(
        ws.next_of("ack").await,
        json!({"type": "ack", "ref": "two", "rev": 1})
    );
    // The next op on the socket is somebody else's revision 2, not the
    // resend again.
    post_op_ok(&api, "other", 0, 1, json!([2, "!"])).await;
    let next = ws.next_of("op").await;
    assert_eq!(
        (&next["rev"], &next["client"]),
        (&json!(2), &json!("other"))
    );
    assert_eq!(ops_since(&api, 0).await.len(), 2);
}

/// A `(client, seq)` is one edit whichever way it was sent: stored by
/// `PUT /api/doc/text`, the WebSocket or `POST`, it is recognised when it
/// comes again by any of the three.
#[tokio::test]
async fn a_resend_is_recognised_across_post_put_and_websocket() {
    let server = server();
    let api = Api::new(&server);
    let mut ws = Ws::connect_url(&server.ws_url("/api/doc/ws?since=0")).await;
    ws.next_of("welcome").await;
    let mut ws_send = async |client: &str, seq: u64, rev: u64, op: Value| {
        ws.send_json(
            json!({"type": "op", "ref": seq, "client": client, "seq": seq, "rev": rev, "op": op}),
        )
        .await;
        let ack = ws.next_of("ack").await;
        ack["rev"].as_u64().unwrap()
    };

    // Stored by PUT: recognised by POST, the WebSocket and PUT.
    let answer = put_text(&api, "p", 0, "abc").await;
    assert_eq!(
        (answer.status, answer.body),
        (201, json!({"rev": 1, "op": ["abc"]}))
    );
    let answer = post_op(&api, "p", 0, 1, json!([3, "x"])).await;
    assert_eq!(
        (answer.status, answer.body),
        (200, json!({"rev": 1, "op": ["abc"]}))
    );
    assert_eq!(ws_send("p", 0, 1, json!([3, "x"])).await, 1);
    let answer = put_text(&api, "p", 0, "zzz").await;
    assert_eq!(
        (answer.status, answer.body),
        (200, json!({"rev": 1, "op": ["abc"]}))
    );

    // Stored by the WebSocket: recognised by POST and PUT.
    assert_eq!(ws_send("w", 5, 1, json!(["<", 3])).await, 2);
    let answer = post_op(&api, "w", 5, 1, json!(["<", 3])).await;
    assert_eq!(
        (answer.status, answer.body),
        (200, json!({"rev": 2, "op": ["<", 3]}))
    );
    let answer = put_text(&api, "w", 5, "gone").await;
    assert_eq!(
        (answer.status, answer.body),
        (200, json!({"rev": 2, "op": ["<", 3]}))
    );

    // Stored by POST: recognised by the WebSocket and PUT.
    post_op_ok(&api, "h", 9, 2, json!([4, ">"])).await;
    assert_eq!(ws_send("h", 9, 2, json!([4, ">"])).await, 3);
    let answer = put_text(&api, "h", 9, "").await;
    assert_eq!(
        (answer.status, answer.body),
        (200, json!({"rev": 3, "op": [4, ">"]}))
    );

    assert_eq!(document(&api).await, (3, "<abc>".to_owned()));
    assert_eq!(ops_since(&api, 0).await.len(), 3);
}

/// Twenty identical POSTs at once (a client retrying impatiently): one is
/// stored (`201`), the nineteen others answer `200` with the same revision
/// and operation. Then the same with ten POSTs and ten WebSocket frames.
#[tokio::test]
async fn twenty_concurrent_identical_posts_store_one_operation() {
    let server = server();
    let api = Api::new(&server);
    with_text(&api, "ab").await;
    let answers =
        join_all((0..20).map(|_| post_op(&api, "impatient", 7, 1, json!([1, "x", 1])))).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let resent = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!((created, resent), (1, 19));
    for answer in &answers {
        assert_eq!(answer.body, json!({"rev": 2, "op": [1, "x", 1]}));
    }

    let mut sockets = Vec::new();
    for _ in 0..10 {
        let mut ws = Ws::connect_url(&server.ws_url("/api/doc/ws?since=2")).await;
        ws.next_of("welcome").await;
        sockets.push(ws);
    }
    let frame = json!({"type": "op", "ref": "r", "client": "impatient", "seq": 8, "rev": 2, "op": [3, "y"]});
    let posts = join_all((0..10).map(|_| post_op(&api, "impatient", 8, 2, json!([3, "y"]))));
    let frames = join_all(sockets.iter_mut().map(|ws| {
        let frame = frame.clone();
        async move {
            ws.send_json(frame).await;
            ws.next_of("ack").await["rev"].as_u64().unwrap()
        }
    }));
    let (answers, acks) = tokio::join!(posts, frames);
    assert_eq!(acks, vec![3; 10]);
    assert!(
        answers
            .iter()
            .all(|a| a.body == json!({"rev": 3, "op": [3, "y"]}))
    );
    assert!(answers.iter().filter(|a| a.status == 201).count() <= 1);
    assert_eq!(
        ops_since(&api, 0).await.len(),
        3,
        "one op per (client, seq)"
    );
    assert_eq!(document(&api).await.1, "axby");
}

/// The writer transforms from any of its newest 10,000 revisions
/// (`OPS_REMEMBERED`); one older is `409 rev_too_old`, which tells the
/// client to reload. A resend of an operation that has left that history
/// is still recognised (from the table).
#[tokio::test]
async fn a_revision_older_than_the_history_is_409_rev_too_old() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    const HISTORY: u64 = weebsockets::doc::OPS_REMEMBERED as u64;
    let server = server();
    let api = Api::new(&server);
    // One typist, pipelined over the WebSocket: "ab" typed, deleted,
    // typed…, each edit at the revision the one before makes.
    let count = HISTORY + 1;
    let (ws, _) = tokio_tungstenite::connect_async(server.ws_url("/api/doc/ws?since=0"))
        .await
        .unwrap();
    let (mut sink, mut stream) = ws.split();
    let write = async {
        for k in 0..count {
            let op = if k % 2 == 0 {
                json!(["ab"])
            } else {
                json!([-2])
            };
            let frame = json!({"type": "op", "client": "typist", "seq": k, "rev": k, "op": op});
            sink.send(WsMessage::Text(frame.to_string().into()))
                .await
                .unwrap();
        }
    };
    let read = async {
        let mut acks = 0;
        while acks < count {
            let frame = tokio::time::timeout(PATIENCE, stream.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let frame: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
            if frame["type"] == "ack" {
                acks += 1;
                assert_eq!(frame["rev"], acks);
            }
        }
    };
    tokio::join!(write, read);
    assert_eq!(document(&api).await, (count, "ab".to_owned()));

    // The history holds revisions 2..=10,001: an op may be made at 1, not 0.
    let answer = post_op(&api, "late", 0, 0, json!(["z"])).await;
    assert_error(&answer, 409, "rev_too_old");
    assert!(
        answer.body["error"]
            .as_str()
            .unwrap()
            .contains("GET /api/doc"),
        "{}",
        answer.body
    );
    // At revision 1 the text was "ab": a "z" between a and b, carried
    // through 10,000 operations that delete "ab" and type it again at 0
    // (stored first, so before the z), ends after the newest "ab".
    let (rev, op) = post_op_ok(&api, "late", 1, 1, json!([1, "z", 1])).await;
    assert_eq!((rev, op), (count + 1, json!([2, "z"])));
    // Now 1 has left the history too.
    assert_error(
        &post_op(&api, "late", 2, 1, json!([2, "!"])).await,
        409,
        "rev_too_old",
    );
    // The typist's first op (revision 1) is long out of the history, but a
    // resend of it is recognised.
    let answer = post_op(&api, "typist", 0, 0, json!(["ab"])).await;
    assert_eq!(
        (answer.status, answer.body),
        (200, json!({"rev": 1, "op": ["ab"]}))
    );
    assert_eq!(document(&api).await, (count + 1, "abz".to_owned()));
}

// ---------------------------------------------------------------------------
// Refused operations and fields
// ---------------------------------------------------------------------------

/// Every malformed operation is `422 bad_operation`, and nothing is stored.
/// Numbers are sent as written on the wire (`1e3`, `1.0`, `-0`), not as a
/// JSON library would rewrite them.
#[tokio::test]
async fn every_malformed_operation_is_422_bad_operation() {
    let server = server();
    let api = Api::new(&server);
    with_text(&api, "hello").await;
    let cases = [
        ("a zero", "[0, 5]"),
        ("an empty insert", r#"["", 5]"#),
        ("a fraction", "[1.5, 3.5]"),
        ("an exponent", "[1e3]"),
        ("a whole number written as a float", "[5.0]"),
        ("minus zero", "[-0, 5]"),
        ("a nested array", "[[5]]"),
        ("an object", r#"[{"retain": 5}]"#),
        ("null", "[null, 5]"),
        ("a boolean", "[true, 5]"),
        ("too short", "[4]"),
        ("too long", "[6]"),
        ("a delete past the end", "[5, -1]"),
        ("counts in UTF-8 bytes", r#"[5, "é", 1]"#),
        ("past 2^53", "[9007199254740992]"),
        ("a string", r#""hello""#),
        ("an object, not an array", r#"{"ops": [5]}"#),
        ("null, not an array", "null"),
        ("a number, not an array", "5"),
        ("an empty array on a non-empty text", "[]"),
    ];
    for (what, op) in cases {
        let body = format!(r#"{{"client": "c", "seq": 1, "rev": 1, "op": {op}}}"#);
        let answer =
            request_raw(&api, Method::POST, "/api/doc/ops", "application/json", body).await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "bad_operation"),
            "{what}: {}",
            answer.body
        );
    }
    assert_eq!(
        document(&api).await,
        (1, "hello".to_owned()),
        "nothing stored"
    );
}

/// Control characters (Unicode Cc) other than newline and tab are
/// `422 control_character` in an insert, in a whole text and in a
/// WebSocket frame — carriage return too: one document, one kind of line
/// end.
#[tokio::test]
async fn control_characters_are_refused_carriage_return_included() {
    let server = server();
    let api = Api::new(&server);
    for (seq, bad) in [
        "a\rb",
        "\r\n",
        "\u{0}",
        "\u{7}",
        "\u{1b}[0m",
        "\u{7f}",
        "\u{85}",
        "\u{9f}",
    ]
    .into_iter()
    .enumerate()
    {
        let answer = post_op(&api, "c", seq as u64, 0, json!([bad])).await;
        assert_error(&answer, 422, "control_character");
        let answer = put_text(&api, "c", seq as u64, bad).await;
        assert_error(&answer, 422, "control_character");
    }
    let mut ws = Ws::connect_url(&server.ws_url("/api/doc/ws")).await;
    ws.next_of("welcome").await;
    ws.send_json(
        json!({"type": "op", "ref": 1, "client": "w", "seq": 0, "rev": 0, "op": ["x\ry"]}),
    )
    .await;
    let frame = ws.next_of("error").await;
    assert_eq!(
        (&frame["ref"], &frame["code"]),
        (&json!(1), &json!("control_character"))
    );
    assert_eq!(document(&api).await.0, 0);
    // Newline and tab are text.
    post_op_ok(&api, "c", 100, 0, json!(["a\tb\nc"])).await;
    assert_eq!(put_text(&api, "c", 101, "x\n\ty").await.status, 201);
}

/// `client` (1..=64 printable ASCII), `seq` and `rev` (whole numbers up to
/// 2^53 − 1) out of their form are `422` with their own codes; `author`
/// follows a chat author's rules and `via` names a page.
#[tokio::test]
async fn client_seq_rev_author_and_via_have_their_forms() {
    let server = server();
    let api = Api::new(&server);
    let base = json!({"client": "c", "seq": 0, "rev": 0, "op": ["x"]});
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let cases = [
        ("client", json!(""), "invalid_client"),
        ("client", json!("a".repeat(65)), "invalid_client"),
        ("client", json!("tab-é"), "invalid_client"),
        ("client", json!("tab\u{1}"), "invalid_client"),
        ("client", json!(5), "invalid_client"),
        ("client", Value::Null, "invalid_client"),
        ("seq", json!(-1), "invalid_seq"),
        ("seq", json!(1.5), "invalid_seq"),
        ("seq", json!("1"), "invalid_seq"),
        ("seq", json!(1u64 << 53), "invalid_seq"),
        ("seq", Value::Null, "invalid_seq"),
        ("rev", json!(-1), "invalid_rev"),
        ("rev", json!(0.5), "invalid_rev"),
        ("rev", json!("0"), "invalid_rev"),
        ("rev", json!(1u64 << 53), "invalid_rev"),
        ("author", json!("   "), "invalid_author"),
        ("author", json!("a".repeat(33)), "invalid_author"),
        ("via", json!("carrier-pigeon"), "invalid_via"),
    ];
    for (field, value, code) in cases {
        let answer = request(
            &api,
            Method::POST,
            "/api/doc/ops",
            &with(field, value.clone()),
        )
        .await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, code),
            "{field} = {value}: {}",
            answer.body
        );
    }
    for (field, value, code) in [
        ("client", json!(""), "invalid_client"),
        ("seq", json!(-3), "invalid_seq"),
    ] {
        let mut body = json!({"client": "c", "seq": 0, "text": "x"});
        body[field] = value;
        let answer = request(&api, Method::PUT, "/api/doc/text", &body).await;
        assert_error(&answer, 422, code);
    }
    // A field left out is a body of the wrong shape.
    for missing in ["client", "seq", "rev", "op"] {
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove(missing);
        let answer = request(&api, Method::POST, "/api/doc/ops", &body).await;
        assert!(
            [400, 422].contains(&answer.status) && !answer.code().is_empty(),
            "without {missing}: {} {}",
            answer.status,
            answer.body
        );
    }
    assert_eq!(document(&api).await.0, 0, "nothing stored");
    // The edges of each form are accepted.
    let body = json!({
        "client": "~".repeat(64), "seq": (1u64 << 53) - 1, "rev": 0, "op": ["x"],
        "author": "  ada  ", "via": "sse",
    });
    let answer = request(&api, Method::POST, "/api/doc/ops", &body).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let op = &ops_since(&api, 0).await[0];
    assert_eq!((&op["author"], &op["via"]), (&json!("ada"), &json!("sse")));
    assert_eq!(
        post_op(&api, "a b", 0, 1, json!([1, "y"])).await.status,
        201,
        "space is printable"
    );
}

/// A text longer than `--doc-max-chars` is `422 document_too_long`, by
/// operation and by `PUT`. A document already over a lowered limit may
/// still shrink (or keep its length), but not grow.
#[tokio::test]
async fn a_document_over_its_length_limit_is_422_but_may_shrink() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("doc.db");
    let server = start_with(|c| {
        c.db = db.clone();
        c.no_limits = true;
        c.doc_max_chars = 10;
    });
    let api = Api::new(&server);
    post_op_ok(&api, "a", 0, 0, json!(["0123456789"])).await;
    assert_error(
        &post_op(&api, "a", 1, 1, json!([10, "x"])).await,
        422,
        "document_too_long",
    );
    assert_error(
        &put_text(&api, "a", 2, "01234567890").await,
        422,
        "document_too_long",
    );
    // Ten characters of four bytes each are ten characters.
    assert_eq!(put_text(&api, "a", 3, &"🎉".repeat(10)).await.status, 201);
    server.stop().unwrap();

    // The teacher lowers the limit below the text's length.
    let server = start_with(|c| {
        c.db = db.clone();
        c.no_limits = true;
        c.doc_max_chars = 5;
    });
    let api = Api::new(&server);
    assert_eq!(document(&api).await, (2, "🎉".repeat(10)));
    assert_eq!(
        post_op(&api, "b", 0, 2, json!([-1, 9])).await.status,
        201,
        "shrinks"
    );
    assert_eq!(
        post_op(&api, "b", 1, 3, json!(["x", -1, 8])).await.status,
        201,
        "same length"
    );
    assert_error(
        &post_op(&api, "b", 2, 4, json!([9, "y"])).await,
        422,
        "document_too_long",
    );
    assert_eq!(
        put_text(&api, "b", 3, "abcdef").await.status,
        201,
        "shrinks to 6"
    );
    assert_error(
        &put_text(&api, "b", 4, "abcdefg").await,
        422,
        "document_too_long",
    );
    assert_eq!(document(&api).await, (5, "abcdef".to_owned()));
}

/// An edit's body is limited by `--doc-max-body-bytes` (not the chat's
/// `--max-body-bytes`): over it is `413 body_too_large` (a WebSocket frame
/// over it closes with 1009); by default a whole 100,000-character text
/// fits one `PUT`.
#[tokio::test]
async fn bodies_over_the_edit_body_limit_are_413() {
    let server = start_with(|c| {
        c.no_limits = true;
        c.doc_max_body_bytes = 2_000;
    });
    let api = Api::new(&server);
    let big = "x".repeat(2_000);
    assert_error(
        &post_op(&api, "a", 0, 0, json!([big])).await,
        413,
        "body_too_large",
    );
    assert_error(&put_text(&api, "a", 0, &big).await, 413, "body_too_large");
    // Without a Content-Length (chunked) the body is counted as it comes.
    let chunks = futures_util::stream::iter((0..10).map(|i| {
        let piece = if i == 0 {
            r#"{"client":"a","seq":0,"rev":0,"op":[""#.to_owned()
        } else {
            "y".repeat(300)
        };
        Ok::<_, std::io::Error>(piece)
    }));
    let answer = request_raw(
        &api,
        Method::POST,
        "/api/doc/ops",
        "application/json",
        reqwest::Body::wrap_stream(chunks),
    )
    .await;
    assert_error(&answer, 413, "body_too_large");
    assert_eq!(
        post_op(&api, "a", 0, 0, json!(["x".repeat(1_900)]))
            .await
            .status,
        201
    );
    let mut ws = Ws::connect_url(&server.ws_url("/api/doc/ws")).await;
    ws.next_of("welcome").await;
    ws.send_json(json!({"type": "op", "client": "w", "seq": 0, "rev": 1, "op": [1_900, big]}))
        .await;
    assert_eq!(ws.close_code().await, 1009);
    assert_eq!(document(&api).await.0, 1);

    let server = self::server();
    let api = Api::new(&server);
    let whole = "ab\n".repeat(33_333) + "z";
    assert_eq!(whole.chars().count(), 100_000);
    let answer = put_text(&api, "a", 0, &whole).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(document(&api).await.1, whole);
}

/// A body not declared as JSON is `415 not_json`; one that is not JSON, or
/// not an object of the right shape, is `400 bad_json`.
#[tokio::test]
async fn not_json_is_415_and_broken_json_is_400() {
    let server = server();
    let api = Api::new(&server);
    let valid = r#"{"client":"c","seq":0,"rev":0,"op":["x"]}"#;
    for (method, path) in [
        (Method::POST, "/api/doc/ops"),
        (Method::PUT, "/api/doc/text"),
    ] {
        let answer = request_raw(&api, method.clone(), path, "text/plain", valid).await;
        assert_error(&answer, 415, "not_json");
        for broken in ["{nope", "", "[1, 2]", "\"text\""] {
            let answer = request_raw(&api, method.clone(), path, "application/json", broken).await;
            assert_error(&answer, 400, "bad_json");
        }
    }
    let answer = request_raw(
        &api,
        Method::POST,
        "/api/doc/ops",
        "application/json; charset=utf-8",
        valid,
    )
    .await;
    assert_eq!(answer.status, 201, "a charset parameter is still JSON");
}

// ---------------------------------------------------------------------------
// The WebSocket and the event stream
// ---------------------------------------------------------------------------

/// `/api/doc/ws?since=R`: `welcome` with `last_rev` first, then the stored
/// operations after R in rev order, then live ones — each the stored
/// operation with `"type":"op"` in front. A bad `since` is an HTTP `400`
/// before any upgrade.
#[tokio::test]
async fn the_websocket_says_welcome_then_the_backlog_then_live_ops() {
    let server = server();
    let api = Api::new(&server);
    with_text(&api, "a").await;
    post_op_ok(&api, "b", 0, 1, json!([1, "b"])).await;
    post_op_ok(&api, "c", 0, 2, json!([2, "c"])).await;
    let stored = ops_since(&api, 0).await;
    let as_frame = |op: &Value| {
        let mut frame = op.clone();
        frame["type"] = json!("op");
        frame
    };
    let mut ws = Ws::connect_url(&server.ws_url("/api/doc/ws?since=1")).await;
    assert_eq!(ws.next().await, json!({"type": "welcome", "last_rev": 3}));
    assert_eq!(ws.next().await, as_frame(&stored[1]));
    assert_eq!(ws.next().await, as_frame(&stored[2]));
    post_op_ok(&api, "d", 0, 3, json!([3, "d"])).await;
    assert_eq!(ws.next().await, as_frame(&ops_since(&api, 3).await[0]));

    for bad in ["since=abc", "since=-1"] {
        let url = server.ws_url(&format!("/api/doc/ws?{bad}"));
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400, "{bad}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}

/// A frame the server cannot take gets an `error` frame with its `ref`
/// echoed (whatever its JSON type) and the contract's code; the connection
/// stays open and the next good frame is stored.
#[tokio::test]
async fn websocket_error_frames_echo_ref_and_keep_the_connection_open() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    let server = server();
    let api = Api::new(&server);
    let mut ws = Ws::connect_url(&server.ws_url("/api/doc/ws")).await;
    ws.next_of("welcome").await;
    let op = |reference: Value, rev: u64, op: Value| json!({"type": "op", "ref": reference, "client": "w", "seq": 0, "rev": rev, "op": op});
    let cases = [
        (op(json!("e1"), 0, json!([0])), json!("e1"), "bad_operation"),
        (op(json!(2), 0, json!([3])), json!(2), "bad_operation"),
        (
            op(json!({"n": 3}), 4, json!(["x"])),
            json!({"n": 3}),
            "rev_ahead",
        ),
        (
            op(json!("e4"), 0, json!(["\u{7}"])),
            json!("e4"),
            "control_character",
        ),
        (
            json!({"type": "op", "ref": "e5", "client": "", "seq": 0, "rev": 0, "op": ["x"]}),
            json!("e5"),
            "invalid_client",
        ),
        (
            json!({"type": "send", "ref": "e6", "text": "hi"}),
            json!("e6"),
            "unknown_type",
        ),
        (json!({"ref": "e7", "op": ["x"]}), json!("e7"), "bad_json"),
        (json!({"type": "op", "ref": "e8"}), json!("e8"), "bad_json"),
    ];
    for (frame, reference, code) in cases {
        ws.send_json(frame).await;
        let error = ws.next().await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(
            (&error["ref"], error["code"].as_str()),
            (&reference, Some(code)),
            "{error}"
        );
        assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // Not JSON at all: no ref to echo.
    ws.stream
        .send(WsMessage::Text("{not json".into()))
        .await
        .unwrap();
    let error = ws.next().await;
    assert_eq!(
        (&error["type"], &error["code"]),
        (&json!("error"), &json!("bad_json"))
    );
    assert!(error.get("ref").is_none(), "{error}");
    ws.stream
        .send(WsMessage::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(ws.next().await["code"], "binary_not_supported");
    // Still open: a good op is stored and acknowledged.
    ws.send_json(op(json!("ok"), 0, json!(["fine"]))).await;
    assert_eq!(
        ws.next_of("ack").await,
        json!({"type": "ack", "ref": "ok", "rev": 1})
    );
    assert_eq!(document(&api).await, (1, "fine".to_owned()));
}

/// `/api/doc/events`: `retry:` first, then each stored operation as one
/// event with `id: <rev>`, `event: op` and the stored operation as data;
/// a reconnect with `Last-Event-ID` (which wins over `since`) resumes
/// after it, with nothing lost or repeated.
#[tokio::test]
async fn events_carry_the_rev_as_id_and_resume_from_last_event_id() {
    let server = server();
    let api = Api::new(&server);
    with_text(&api, "a").await;
    post_op_ok(&api, "b", 0, 1, json!([1, "b"])).await;
    post_op_ok(&api, "c", 0, 2, json!([2, "c"])).await;
    let stored = ops_since(&api, 0).await;

    let mut events = Sse::connect_url(&server.url("/api/doc/events?since=0"), None).await;
    let first = events.next().await.unwrap();
    assert!(first.retry.is_some() && first.id.is_none(), "{first:?}");
    for op in &stored {
        let event = events.next().await.unwrap();
        assert_eq!(event.id, Some(op["rev"].to_string()));
        assert_eq!(event.event.as_deref(), Some("op"));
        assert_eq!(serde_json::from_str::<Value>(&event.data).unwrap(), *op);
    }
    drop(events);

    let url = server.url("/api/doc/events?since=0");
    let mut events = Sse::connect_url(&url, Some("2")).await;
    let retry = events.next().await.unwrap();
    assert!(retry.retry.is_some());
    let event = events.next().await.unwrap();
    assert_eq!(
        event.id.as_deref(),
        Some("3"),
        "resumed after Last-Event-ID"
    );
    post_op_ok(&api, "d", 0, 3, json!([3, "d"])).await;
    let event = events.next().await.unwrap();
    assert_eq!(
        (event.id.as_deref(), event.event.as_deref()),
        (Some("4"), Some("op"))
    );
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(
        (&data["client"], &data["op"]),
        (&json!("d"), &json!([3, "d"]))
    );
}

// ---------------------------------------------------------------------------
// What the lesson shows
// ---------------------------------------------------------------------------

/// `PUT /api/doc/text` stores "delete everything, insert the new text" at
/// the current revision. So an edit somebody made meanwhile is lost: the
/// naive "save the textarea" of the lecture. The same change sent as an
/// operation keeps both.
#[tokio::test]
async fn saving_the_textarea_loses_an_edit_made_meanwhile() {
    let server = server();
    let api = Api::new(&server);
    with_text(&api, "hello").await;
    let answer = put_text(&api, "p", 0, "bye").await;
    assert_eq!(
        (answer.status, answer.body),
        (201, json!({"rev": 2, "op": ["bye", -5]}))
    );
    assert_eq!(document(&api).await, (2, "bye".to_owned()));

    // Ada and Bob both see "bye" (revision 2). Ada types " now"; Bob, whose
    // textarea still says "bye", types "!" and his page saves the textarea.
    post_op_ok(&api, "ada", 0, 2, json!([3, " now"])).await;
    let answer = put_text(&api, "bob", 0, "bye!").await;
    assert_eq!(
        (answer.status, answer.body),
        (201, json!({"rev": 4, "op": ["bye!", -7]}))
    );
    assert_eq!(
        document(&api).await,
        (4, "bye!".to_owned()),
        "Ada's \" now\" is lost"
    );

    // Bob's "!" as an operation made at revision 2 keeps Ada's words.
    let server = self::server();
    let api = Api::new(&server);
    with_text(&api, "bye").await;
    post_op_ok(&api, "ada", 0, 1, json!([3, " now"])).await;
    post_op_ok(&api, "bob", 0, 1, json!([3, "!"])).await;
    assert_eq!(document(&api).await.1, "bye now!", "both edits survive");
}

/// Two inserts at one position, made at the same revision: the one stored
/// first stays first, the newcomer goes after it — whoever they are.
#[tokio::test]
async fn of_two_inserts_at_one_position_the_one_stored_first_stays_first() {
    let server = server();
    let api = Api::new(&server);
    with_text(&api, "ab").await;
    post_op_ok(&api, "zed", 0, 1, json!([1, "X", 1])).await;
    let (_, op) = post_op_ok(&api, "amy", 0, 1, json!([1, "Y", 1])).await;
    assert_eq!(op, json!([2, "Y", 1]), "the newcomer goes after");
    assert_eq!(document(&api).await.1, "aXYb");
    // And the other way round (not by name): amy first this time.
    post_op_ok(&api, "amy", 1, 3, json!([4, "1"])).await;
    post_op_ok(&api, "zed", 1, 3, json!([4, "2"])).await;
    assert_eq!(document(&api).await.1, "aXYb12");
    // Three at once, over both ways of sending.
    let mut ws = Ws::connect_url(&server.ws_url("/api/doc/ws")).await;
    ws.next_of("welcome").await;
    ws.send_json(
        json!({"type": "op", "ref": 0, "client": "ws", "seq": 0, "rev": 5, "op": ["P", 6]}),
    )
    .await;
    ws.next_of("ack").await;
    post_op_ok(&api, "http", 0, 5, json!(["Q", 6])).await;
    post_op_ok(&api, "put", 0, 5, json!(["R", 6])).await;
    assert_eq!(document(&api).await.1, "PQRaXYb12");
}

/// Two editors delete overlapping text at the same revision: a character
/// deleted by both is deleted once, and the rest of each delete still
/// happens. The same character deleted by both leaves a no-op, stored all
/// the same (its author needs its revision).
#[tokio::test]
async fn a_character_deleted_twice_is_deleted_once() {
    let server = server();
    let api = Api::new(&server);
    with_text(&api, "abcdef").await;
    post_op_ok(&api, "ada", 0, 1, json!([2, -2, 2])).await; // "cd"
    let (rev, op) = post_op_ok(&api, "bob", 0, 1, json!([3, -2, 1])).await; // "de"
    assert_eq!(
        (rev, op),
        (3, json!([2, -1, 1])),
        "only the e is left to delete"
    );
    assert_eq!(document(&api).await.1, "abf");
    post_op_ok(&api, "ada", 1, 3, json!([1, -1, 1])).await;
    let (rev, op) = post_op_ok(&api, "bob", 1, 3, json!([1, -1, 1])).await;
    assert_eq!((rev, op), (5, json!([2])), "nothing left to delete");
    assert_eq!(document(&api).await, (5, "af".to_owned()));
}

/// Every count is in Unicode code points: 👩‍💻 is three (woman, zero-width
/// joiner, laptop), é written as e + combining accent is two, 中 is one.
/// An operation counted in UTF-16 units (what a textarea's offsets are)
/// does not fit and is refused.
#[tokio::test]
async fn counts_are_code_points_not_utf16_units() {
    let server = server();
    let api = Api::new(&server);
    let text = "a👩\u{200d}💻be\u{301}中文";
    assert_eq!(
        (
            text.chars().count(),
            text.encode_utf16().count(),
            text.len()
        ),
        (9, 11, 22)
    );
    with_text(&api, text).await;
    let (_, _, summary) = api.get("/api/doc/summary").await;
    assert_eq!(summary["length"], 9);

    // Counted in UTF-16 units: 11 is not the document's length.
    let answer = post_op(&api, "u16", 0, 1, json!([11, "!"])).await;
    assert_error(&answer, 422, "bad_operation");
    post_op_ok(&api, "cp", 0, 1, json!([9, "!"])).await;
    // Made at revision 1: delete the laptop (code point 3), and the
    // combining accent (code point 6), carried past the "!".
    let (_, op) = post_op_ok(&api, "cp", 1, 1, json!([3, -1, 2, -1, 2])).await;
    assert_eq!(op, json!([3, -1, 2, -1, 3]));
    assert_eq!(document(&api).await.1, "a👩\u{200d}be中文!");
    // An insert between the parts of a sequence is the editor's business:
    // the server counts code points, nothing else.
    let (_, op) = post_op_ok(&api, "cp", 2, 3, json!([1, "🎉", 7])).await;
    assert_eq!(op, json!([1, "🎉", 7]));
    let (rev, text) = document(&api).await;
    assert_eq!(text, "a🎉👩\u{200d}be中文!");
    let (_, _, summary) = api.get("/api/doc/summary").await;
    assert_eq!(
        (summary["rev"].as_u64(), summary["length"].as_u64()),
        (Some(rev), Some(9))
    );
}

// ---------------------------------------------------------------------------
// Extensions: summary, text at a revision, restore
// ---------------------------------------------------------------------------

/// FNV-1a, 32 bits, of the text's UTF-8 bytes, written out here so the test
/// does not trust the server's own.
fn fnv1a(text: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{hash:08x}")
}

/// `GET /api/doc/summary`: `{"rev","length","hash"}` of the text now.
#[tokio::test]
async fn the_summary_is_rev_length_and_hash() {
    let server = server();
    let api = Api::new(&server);
    let (_, _, summary) = api.get("/api/doc/summary").await;
    assert_eq!(summary, json!({"rev": 0, "length": 0, "hash": fnv1a("")}));
    assert_eq!(fnv1a(""), "811c9dc5");
    assert_eq!(fnv1a("a"), "e40c292c", "the published FNV-1a test vector");
    with_text(&api, "héllo 🎉").await;
    let (status, _, summary) = api.get("/api/doc/summary").await;
    assert_eq!(status, 200);
    assert_eq!(
        summary,
        json!({"rev": 1, "length": 7, "hash": fnv1a("héllo 🎉")})
    );
}

/// `GET /api/doc/text?rev=N`: the plain text at any revision (newest by
/// default), with `X-Doc-Rev`; `download=1` makes it a file; a revision
/// that does not exist is `400`.
#[tokio::test]
async fn the_text_at_every_revision() {
    let server = server();
    let api = Api::new(&server);
    let mut texts = vec![String::new()];
    for (seq, word) in ["one", " two", " three", " four"].iter().enumerate() {
        let len = texts.last().unwrap().chars().count();
        let op = if len == 0 {
            json!([word])
        } else {
            json!([len, word])
        };
        post_op_ok(&api, "w", seq as u64, seq as u64, op).await;
        texts.push(format!("{}{word}", texts.last().unwrap()));
    }
    post_op_ok(&api, "w", 4, 4, json!([-4, 14])).await;
    texts.push("two three four".to_owned());
    for (rev, text) in texts.iter().enumerate() {
        let response = api
            .http
            .get(api.url(&format!("/api/doc/text?rev={rev}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-doc-rev"], rev.to_string().as_str());
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8"
        );
        assert!(response.headers().get("content-disposition").is_none());
        assert_eq!(response.text().await.unwrap(), *text, "revision {rev}");
    }
    let response = api.http.get(api.url("/api/doc/text")).send().await.unwrap();
    assert_eq!(response.headers()["x-doc-rev"], "5");
    assert_eq!(response.text().await.unwrap(), texts[5]);
    let response = api
        .http
        .get(api.url("/api/doc/text?rev=2&download=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"document-rev-2.txt\""
    );
    assert_eq!(response.text().await.unwrap(), "one two");
    for bad in ["rev=6", "rev=-1", "rev=two"] {
        let (status, _, body) = api.get(&format!("/api/doc/text?{bad}")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad_query")),
            "{bad}"
        );
    }
}

/// `POST /api/doc/restore {"rev":N}` (the teacher's token only) brings the
/// text of revision N back as a new operation — the smallest edit from now
/// to then — so the history is never rewritten.
#[tokio::test]
async fn restore_brings_an_old_text_back_as_a_new_operation() {
    let server = server();
    let api = Api::new(&server);
    with_text(&api, "hello world").await;
    post_op_ok(&api, "w", 1, 1, json!([6, "brave new ", 5])).await;
    post_op_ok(&api, "w", 2, 2, json!(["Oh, ", 21])).await;
    let restore = |token: Option<&str>, body: Value| {
        let mut request = api.http.post(api.url("/api/doc/restore")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let authenticate = response.headers().get("www-authenticate").cloned();
            (
                status,
                authenticate,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    for token in [None, Some("not the token")] {
        let (status, authenticate, body) = restore(token, json!({"rev": 1})).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
        assert_eq!(authenticate.unwrap(), "Bearer");
    }
    let token = server.teacher_token.as_str();
    let (status, _, body) = restore(Some(token), json!({"rev": 4})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("rev_ahead")));
    let (status, _, body) = restore(Some(token), json!({"rev": "one"})).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_rev")));
    assert_eq!(document(&api).await.0, 3, "nothing stored");

    let (status, _, body) = restore(Some(token), json!({"rev": 1})).await;
    // Keep the common end (" world"), replace the rest.
    assert_eq!(
        (status, body),
        (201, json!({"rev": 4, "op": ["hello", -19, 6]}))
    );
    assert_eq!(document(&api).await, (4, "hello world".to_owned()));
    let ops = ops_since(&api, 0).await;
    assert_eq!(ops.len(), 4, "history is kept");
    assert_eq!(
        (&ops[3]["author"], &ops[3]["client"]),
        (&json!("teacher"), &json!("teacher-restore"))
    );
    let old = api
        .http
        .get(api.url("/api/doc/text?rev=3"))
        .send()
        .await
        .unwrap();
    assert_eq!(old.text().await.unwrap(), "Oh, hello brave new world");
    // Restoring the empty start.
    let (status, _, body) = restore(Some(token), json!({"rev": 0})).await;
    assert_eq!((status, &body["rev"]), (201, &json!(5)));
    assert_eq!(document(&api).await, (5, String::new()));

    // Two restores at once (two clicks, two tabs) are two operations: each
    // answered 201 with a revision of its own.
    for round in 0..5 {
        let (a, b) = tokio::join!(
            restore(Some(token), json!({"rev": 2})),
            restore(Some(token), json!({"rev": 3}))
        );
        assert_eq!((a.0, b.0), (201, 201), "round {round}: {} {}", a.2, b.2);
        assert_ne!(a.2["rev"], b.2["rev"], "round {round}");
    }
}

// ---------------------------------------------------------------------------
// Limits and the lab
// ---------------------------------------------------------------------------

/// The next frame that is not somebody's operation: the reply to what we
/// sent.
async fn reply_to(ws: &mut Ws) -> Value {
    loop {
        let frame = ws.next().await;
        if frame["type"] != "op" {
            return frame;
        }
    }
}

/// Each editor (`client`, one per tab) has its own bucket of edits: past
/// it, `429 rate_limited` with `Retry-After` over HTTP, an error frame
/// with `retry_after_ms` over the WebSocket. Another editor behind the
/// same address is not held back.
#[tokio::test]
async fn too_many_edits_from_one_editor_are_429_with_retry_after() {
    let server = start_with(|c| {
        c.doc_op_rate = 0.1;
        c.doc_op_burst = 2;
    });
    let api = Api::new(&server);
    post_op_ok(&api, "fast", 0, 0, json!(["a"])).await;
    assert_eq!(put_text(&api, "fast", 1, "ab").await.status, 201);
    for answer in [
        post_op(&api, "fast", 2, 2, json!([2, "c"])).await,
        put_text(&api, "fast", 2, "abc").await,
    ] {
        assert_error(&answer, 429, "rate_limited");
        let wait: u64 = answer.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=10).contains(&wait), "Retry-After: {wait}");
    }
    // Another tab of the same class, same address.
    post_op_ok(&api, "other", 0, 2, json!([2, "c"])).await;

    let mut ws = Ws::connect_url(&server.ws_url("/api/doc/ws")).await;
    ws.next_of("welcome").await;
    for seq in 0..3u64 {
        ws.send_json(json!({"type": "op", "ref": seq, "client": "sock", "seq": seq, "rev": 3 + seq, "op": [3 + seq as usize, "x"]}))
            .await;
        let reply = reply_to(&mut ws).await;
        if seq < 2 {
            assert_eq!(reply["type"], "ack", "{reply}");
        } else {
            assert_eq!(
                (&reply["type"], &reply["code"], &reply["ref"]),
                (&json!("error"), &json!("rate_limited"), &json!(2))
            );
            let wait = reply["retry_after_ms"].as_u64().unwrap();
            assert!(wait > 0 && wait <= 10_000, "{reply}");
        }
    }
    assert_eq!(document(&api).await, (5, "abcxx".to_owned()));
}

/// The lab's outage refuses the document's endpoints as it does the
/// chat's: `503 outage` with `Retry-After`.
#[tokio::test]
async fn the_outage_refuses_the_document_too() {
    let server = server();
    let api = Api::new(&server);
    with_text(&api, "x").await;
    api.lab(&server.teacher_token, json!({"outage": true}))
        .await;
    let answers = [
        post_op(&api, "a", 0, 1, json!([1, "y"])).await,
        put_text(&api, "a", 1, "z").await,
        request(&api, Method::GET, "/api/doc", &Value::Null).await,
        request(&api, Method::GET, "/api/doc/summary", &Value::Null).await,
        request(&api, Method::GET, "/api/doc/ops", &Value::Null).await,
    ];
    for answer in answers {
        assert_error(&answer, 503, "outage");
        assert!(answer.headers.contains_key("retry-after"));
    }
    api.lab(&server.teacher_token, json!({"outage": false}))
        .await;
    assert_eq!(document(&api).await, (1, "x".to_owned()));
}
