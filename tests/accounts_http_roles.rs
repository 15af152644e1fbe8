/// Who may write what, under which name, from where. Signed in, a message
/// or an edit carries the account's name and `"account": true` whatever
/// its body says, over HTTP and WebSocket, in the chat and in the
/// document; a guest may not use an account's name (nor the teacher's
/// reserved one): `409 name_taken` over HTTP, an `error` frame over
/// WebSocket. With `--accounts-required` guests read but cannot write
/// (`401 sign_in_required`). The `--teacher` name can only be created with
/// the teacher token, and a teacher session unlocks the lab and the
/// document's restore without the token. And a page of another site, with
/// the student's or the teacher's cookie attached, can change nothing
/// (`403 forbidden_origin`) and open no WebSocket.
mod common;

use common::accounts::*;
use reqwest::Method;
use serde_json::{Value, json};

/// The stored operations of the document, oldest first.
async fn doc_ops(browser: &Browser) -> Vec<Value> {
    let answer = browser.get("/api/doc/ops?since=0&limit=500").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["ops"].as_array().unwrap().clone()
}

/// The whole chat log, oldest first.
async fn messages(browser: &Browser) -> Vec<Value> {
    let answer = browser.get("/api/messages?since=0&limit=500").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["messages"].as_array().unwrap().clone()
}

/// `(author, account)` of a stored message or operation.
fn signed(entry: &Value) -> (Value, Value) {
    (entry["author"].clone(), entry["account"].clone())
}

/// A signed-in student's name is the one on everything she writes: the
/// `author` of a body or frame is ignored (or may be left out), on `POST`,
/// on the WebSocket, and for the document's operations and whole-text
/// saves. Readers see `"account": true`; a guest's entries do not have it.
#[tokio::test]
async fn signed_in_authors_are_the_account_s_name_whatever_the_body_says() {
    let server = start_accounts(|_| {});
    let mut ada = Browser::signed_up(&server, "Ada").await;
    let ada_signed = (json!("Ada"), json!(true));

    // The chat, over HTTP.
    let answer = ada
        .post_message(json!({"author": "Bob", "text": "I am Bob"}))
        .await;
    answer.expect(201, "");
    assert_eq!(signed(&answer.body), ada_signed);
    let answer = ada.post_message(json!({"text": "no author"})).await;
    answer.expect(201, "");
    assert_eq!(signed(&answer.body), ada_signed);

    // The chat, over WebSocket.
    let mut ws = ada.ws_open("/api/ws?since=2").await;
    ws.send_json(json!({"type": "send", "ref": "a", "author": "Mallory", "text": "over ws"}))
        .await;
    // The ack and the message itself may come in either order: the
    // message is pushed the moment it is stored, like anyone's.
    let (mut ack, mut message) = (None, None);
    while ack.is_none() || message.is_none() {
        let frame = ws.next().await;
        match frame["type"].as_str() {
            Some("ack") => ack = Some(frame),
            Some("message") => message = Some(frame["message"].clone()),
            _ => {}
        }
    }
    assert_eq!(ack.unwrap()["ref"], "a");
    assert_eq!(signed(&message.unwrap()), ada_signed);
    ws.send_json(json!({"type": "send", "ref": "b", "text": "no author over ws"}))
        .await;
    assert_eq!(ws.next_of("ack").await["ref"], "b");

    // The document, over HTTP and WebSocket.
    ada.post(
        "/api/doc/ops",
        json!({"client": "tab-1", "seq": 1, "rev": 0, "op": ["hi"], "author": "Bob"}),
    )
    .await
    .expect(201, "");
    let mut doc_ws = ada.ws_open("/api/doc/ws?since=1").await;
    doc_ws
        .send_json(
            json!({"type": "op", "ref": "d", "client": "tab-1", "seq": 2, "rev": 1,
                          "op": [2, "!"], "author": "Bob"}),
        )
        .await;
    assert_eq!(doc_ws.next_of("ack").await["ref"], "d");
    ada.send(
        Method::PUT,
        "/api/doc/text",
        Some(&json!({"client": "tab-1", "seq": 3, "text": "saved", "author": "Bob"})),
    )
    .await
    .expect(201, "");

    // A guest, for contrast.
    let mut guest = Browser::new(&server);
    let answer = guest
        .post_message(json!({"author": "Bob", "text": "I really am Bob"}))
        .await;
    answer.expect(201, "");
    assert_eq!(answer.body.get("account"), None, "{}", answer.body);

    let log = messages(&ada).await;
    let authors: Vec<(Value, Value)> = log.iter().map(signed).collect();
    assert_eq!(
        authors,
        [
            ada_signed.clone(),
            ada_signed.clone(),
            ada_signed.clone(),
            ada_signed.clone(),
            (json!("Bob"), Value::Null)
        ]
    );
    let ops = doc_ops(&ada).await;
    assert_eq!(ops.len(), 3);
    for op in &ops {
        assert_eq!(signed(op), ada_signed, "{op}");
    }
}

/// A guest may not write under an account's name — in any case or
/// spelling of it, nor under the teacher's reserved name before the
/// teacher's account even exists — over HTTP (`409 name_taken`) or
/// WebSocket (an `error` frame with the frame's `ref`; the socket stays
/// open), in the chat or the document. Nothing is stored under the name.
#[tokio::test]
async fn guests_cannot_take_an_account_s_name() {
    let server = start_accounts(|c| c.teacher = Some("Teach".into()));
    Browser::signed_up(&server, "Ada").await;
    Browser::signed_up(&server, "Straße").await;
    let mut guest = Browser::new(&server);

    for name in [
        "Ada", "ada", "  ADA  ", "STRASSE", "strasse", "teach", "TEACH",
    ] {
        guest
            .post_message(json!({"author": name, "text": "it is me"}))
            .await
            .expect(409, "name_taken");
        guest
            .post(
                "/api/doc/ops",
                json!({"client": "guest-tab", "seq": 1, "rev": 0, "op": ["x"], "author": name}),
            )
            .await
            .expect(409, "name_taken");
    }
    guest
        .send(
            Method::PUT,
            "/api/doc/text",
            Some(&json!({"client": "guest-tab", "seq": 1, "text": "x", "author": "ada"})),
        )
        .await
        .expect(409, "name_taken");

    let mut ws = guest.ws_open("/api/ws?since=0").await;
    ws.send_json(json!({"type": "send", "ref": "x1", "author": "ADA", "text": "it is me"}))
        .await;
    let error = ws.next_of("error").await;
    assert_eq!(
        (&error["code"], &error["ref"]),
        (&json!("name_taken"), &json!("x1"))
    );
    // Still open, and the guest's own name works.
    ws.send_json(json!({"type": "send", "ref": "x2", "author": "Guest", "text": "fine"}))
        .await;
    assert_eq!(ws.next_of("ack").await["ref"], "x2");

    let mut doc_ws = guest.ws_open("/api/doc/ws?since=0").await;
    doc_ws
        .send_json(
            json!({"type": "op", "ref": "o1", "client": "guest-tab", "seq": 1, "rev": 0,
                          "op": ["x"], "author": "ada"}),
        )
        .await;
    let error = doc_ws.next_of("error").await;
    assert_eq!(
        (&error["code"], &error["ref"]),
        (&json!("name_taken"), &json!("o1"))
    );
    // A guest's edit with no author at all is an anonymous edit.
    doc_ws
        .send_json(
            json!({"type": "op", "ref": "o2", "client": "guest-tab", "seq": 2, "rev": 0,
                          "op": ["x"]}),
        )
        .await;
    assert_eq!(doc_ws.next_of("ack").await["ref"], "o2");

    // Nor can a guest claim the badge: an `account` field in the body is
    // not the server's to take.
    let answer = guest
        .post_message(json!({"author": "Fake", "text": "a badge", "account": true}))
        .await;
    answer.expect(201, "");
    assert_eq!(answer.body.get("account"), None, "{}", answer.body);
    guest
        .post(
            "/api/doc/ops",
            json!({"client": "guest-tab", "seq": 3, "rev": 1, "op": [1, "y"],
                   "author": "Fake", "account": true}),
        )
        .await
        .expect(201, "");

    let log = messages(&guest).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(signed(&log[1]), (json!("Fake"), Value::Null));
    assert_eq!(signed(&log[0]), (json!("Guest"), Value::Null));
    let ops = doc_ops(&guest).await;
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert_eq!(ops[0].get("author"), None);
    assert_eq!(signed(&ops[1]), (json!("Fake"), Value::Null));
}

/// `--accounts-required`: a guest still reads everything — polls, long
/// polls, event streams, WebSockets — but sending a message or an edit,
/// on any path, is `401 sign_in_required` (an `error` frame on a
/// WebSocket). Signing up is how to get in, and then writing works.
#[tokio::test]
async fn accounts_required_lets_guests_read_but_not_write() {
    let server = start_accounts(|c| c.accounts_required = true);
    let mut guest = Browser::new(&server);
    guest
        .post_message(json!({"author": "Guest", "text": "hello"}))
        .await
        .expect(401, "sign_in_required");
    // Anonymous edits too: every edit needs an account now.
    guest
        .post(
            "/api/doc/ops",
            json!({"client": "guest-tab", "seq": 1, "rev": 0, "op": ["x"]}),
        )
        .await
        .expect(401, "sign_in_required");
    guest
        .send(
            Method::PUT,
            "/api/doc/text",
            Some(&json!({"client": "guest-tab", "seq": 1, "text": "x"})),
        )
        .await
        .expect(401, "sign_in_required");
    let mut ws = guest.ws_open("/api/ws?since=0").await;
    ws.send_json(json!({"type": "send", "ref": "g", "author": "Guest", "text": "hello"}))
        .await;
    let error = ws.next_of("error").await;
    assert_eq!(
        (&error["code"], &error["ref"]),
        (&json!("sign_in_required"), &json!("g"))
    );
    let mut doc_ws = guest.ws_open("/api/doc/ws?since=0").await;
    doc_ws
        .send_json(
            json!({"type": "op", "ref": "e", "client": "guest-tab", "seq": 1, "rev": 0,
                          "op": ["x"]}),
        )
        .await;
    assert_eq!(doc_ws.next_of("error").await["code"], "sign_in_required");

    // The guest reads on every transport.
    let mut events = guest.sse("/api/events?since=0").await;
    let mut ada = Browser::new(&server);
    ada.sign_up("Ada", PASSWORD).await.expect(201, "");
    ada.post_message(json!({"text": "signed in, so I may"}))
        .await
        .expect(201, "");
    assert_eq!(ws.messages(1).await[0]["author"], "Ada");
    assert_eq!(events.messages(1).await[0]["author"], "Ada");
    assert_eq!(messages(&guest).await.len(), 1);
    let held = guest.get("/api/longpoll?since=0&timeout=1").await;
    assert_eq!(held.status, 200);
    assert_eq!(held.body["messages"][0]["text"], "signed in, so I may");
    ada.post(
        "/api/doc/ops",
        json!({"client": "ada-tab", "seq": 1, "rev": 0, "op": ["ok"]}),
    )
    .await
    .expect(201, "");
}

/// `--teacher Teach` reserves the name: creating it without the teacher
/// token, or with a wrong one, is `403 name_reserved` in any case; with
/// the token it is the teacher's account (`"role":"teacher"`, also at
/// every later sign-in). Without `--teacher`, the token makes nobody a
/// teacher.
#[tokio::test]
async fn the_teacher_s_name_needs_the_teacher_token() {
    let server = start_accounts(|c| c.teacher = Some("Teach".into()));
    for (name, token) in [
        ("Teach", None),
        ("teach", None),
        (" TEACH ", None),
        ("Teach", Some("not-the-token")),
        ("Teach", Some("")),
    ] {
        let mut browser = Browser::new(&server);
        if let Some(token) = token {
            browser.extra = vec![("authorization".into(), format!("Bearer {token}"))];
        }
        let answer = browser.sign_up(name, PASSWORD).await;
        answer.expect(403, "name_reserved");
        assert!(answer.session_cookie().is_none());
    }
    let mut teacher = Browser::new(&server);
    teacher.extra = vec![("authorization".into(), "Bearer teacher".into())];
    let answer = teacher.sign_up("Teach", PASSWORD).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body, json!({"name": "Teach", "role": "teacher"}));
    // Once is enough, token or not.
    teacher
        .sign_up("teach", PASSWORD)
        .await
        .expect(409, "name_taken");
    let mut later = Browser::new(&server);
    let answer = later.sign_in("TEACH", PASSWORD).await;
    assert_eq!(answer.body, json!({"name": "Teach", "role": "teacher"}));
    assert_eq!(later.who_am_i().await.body["role"], "teacher");

    // No --teacher: the token on a sign-up makes an ordinary student.
    let server = start_accounts(|_| {});
    let mut browser = Browser::new(&server);
    browser.extra = vec![("authorization".into(), "Bearer teacher".into())];
    let answer = browser.sign_up("Teach", PASSWORD).await;
    assert_eq!(answer.body, json!({"name": "Teach", "role": "student"}));
}

/// The teacher signs in once and the lab (`PUT /api/lab`) and the
/// document's restore (`POST /api/doc/restore`) are unlocked by the
/// session alone — no token to paste. A student's session, or a guest, is
/// `401 unauthorized`; the bearer token keeps working for scripts.
#[tokio::test]
async fn a_teacher_session_unlocks_the_lab_and_the_restore_without_the_token() {
    let server = start_accounts(|c| c.teacher = Some("Teach".into()));
    let mut teacher = Browser::new(&server);
    teacher.extra = vec![("authorization".into(), "Bearer teacher".into())];
    teacher.sign_up("Teach", PASSWORD).await.expect(201, "");
    // From now on only the cookie.
    teacher.extra.clear();
    let mut ada = Browser::signed_up(&server, "Ada").await;
    let mut guest = Browser::new(&server);

    let lab = teacher
        .send(Method::PUT, "/api/lab", Some(&json!({"latency_ms": 120})))
        .await;
    assert_eq!(lab.status, 200, "{}", lab.body);
    assert_eq!(teacher.get("/api/lab").await.body["latency_ms"], 120);
    for student in [&mut ada, &mut guest] {
        student
            .send(Method::PUT, "/api/lab", Some(&json!({"latency_ms": 0})))
            .await
            .expect(401, "unauthorized");
    }
    assert_eq!(teacher.get("/api/lab").await.body["latency_ms"], 120);
    let mut script = Browser::new(&server);
    script.origin = None;
    script.extra = vec![("authorization".into(), "Bearer teacher".into())];
    let lab = script
        .send(Method::PUT, "/api/lab", Some(&json!({"latency_ms": 0})))
        .await;
    assert_eq!(lab.status, 200, "{}", lab.body);

    // The document: Ada writes, the teacher restores revision 0.
    ada.post(
        "/api/doc/ops",
        json!({"client": "ada-tab", "seq": 1, "rev": 0, "op": ["oops"]}),
    )
    .await
    .expect(201, "");
    for student in [&mut ada, &mut guest] {
        student
            .post("/api/doc/restore", json!({"rev": 0}))
            .await
            .expect(401, "unauthorized");
    }
    let restored = teacher.post("/api/doc/restore", json!({"rev": 0})).await;
    assert_eq!(restored.status, 201, "{}", restored.body);
    let doc = teacher.get("/api/doc").await.body;
    assert_eq!((&doc["rev"], &doc["text"]), (&json!(2), &json!("")));
    let ops = doc_ops(&teacher).await;
    assert_eq!(signed(&ops[1]), (json!("Teach"), json!(true)));
}

/// Cross-site request forgery and cross-site WebSocket hijacking, as far
/// as a client outside a browser can play them: requests that carry the
/// student's (or the teacher's) cookie but come from a page of another
/// origin — another site, the same host on another port, or an opaque
/// `null` origin — change nothing (`403 forbidden_origin`) and open no
/// WebSocket. The same requests from the server's own pages, from an
/// `--allowed-origin`, or without `Origin` (curl, scripts) work.
#[tokio::test]
async fn another_origin_cannot_act_with_the_cookie() {
    let server = start_accounts(|c| {
        c.teacher = Some("Teach".into());
        c.allowed_origins = vec!["http://projector.example".into()];
    });
    let mut teacher = Browser::new(&server);
    teacher.extra = vec![("authorization".into(), "Bearer teacher".into())];
    teacher.sign_up("Teach", PASSWORD).await.expect(201, "");
    teacher.extra.clear();
    let ada = Browser::signed_up(&server, "Ada").await;
    let other_port = format!("http://127.0.0.1:{}", server.addr.port() ^ 1);

    for origin in ["http://evil.example", other_port.as_str(), "null"] {
        let mut evil = ada.on_site(origin);
        let changes: [(Method, &str, Option<Value>); 6] = [
            (
                Method::POST,
                "/api/messages",
                Some(json!({"text": "forged"})),
            ),
            (
                Method::POST,
                "/api/doc/ops",
                Some(json!({"client": "x", "seq": 1, "rev": 0, "op": ["forged"]})),
            ),
            (
                Method::PUT,
                "/api/doc/text",
                Some(json!({"client": "x", "seq": 1, "text": "forged"})),
            ),
            // Signing her out, or into the attacker's account (login CSRF).
            (Method::DELETE, "/api/session", None),
            (
                Method::POST,
                "/api/session",
                Some(json!({"name": "Ada", "password": PASSWORD})),
            ),
            (
                Method::POST,
                "/api/accounts",
                Some(json!({"name": "Forged", "password": PASSWORD})),
            ),
        ];
        for (method, path, body) in changes {
            evil.send(method.clone(), path, body.as_ref())
                .await
                .expect(403, "forbidden_origin");
        }
        for path in ["/api/ws?since=0", "/api/doc/ws?since=0", "/api/echo"] {
            match evil.ws(path).await {
                Err((status, body)) => {
                    assert_eq!((status, &body["code"]), (403, &json!("forbidden_origin")))
                }
                Ok(_) => panic!("{origin} opened {path} with Ada's cookie"),
            }
        }
        // The teacher's cookie from the same page: no lab, no restore, no
        // signing students out.
        let mut evil_teacher = teacher.on_site(origin);
        for (method, path, body) in [
            (Method::PUT, "/api/lab", Some(json!({"outage": true}))),
            (Method::POST, "/api/doc/restore", Some(json!({"rev": 0}))),
            (Method::DELETE, "/api/accounts/Ada/sessions", None),
        ] {
            evil_teacher
                .send(method.clone(), path, body.as_ref())
                .await
                .expect(403, "forbidden_origin");
        }
    }
    // Nothing happened: Ada is still signed in, the room and the document
    // are empty, no account was made, the lab is as it was.
    assert_eq!(ada.who_am_i().await.body["name"], "Ada");
    assert!(messages(&ada).await.is_empty());
    assert!(doc_ops(&ada).await.is_empty());
    assert_eq!(teacher.get("/api/lab").await.body["outage"], false);
    Browser::new(&server)
        .sign_up("Forged", PASSWORD)
        .await
        .expect(201, "");

    // Reading is not a change: a GET from another origin is answered
    // (what stops the page reading the answer is the browser's CORS).
    assert_eq!(
        ada.on_site("http://evil.example").who_am_i().await.status,
        200
    );

    // The same requests work from the server's own page, an allowed
    // origin, and without any Origin.
    let mut script = ada.clone();
    script.origin = None;
    for mut browser in [ada.clone(), ada.on_site("http://projector.example"), script] {
        let answer = browser.post_message(json!({"text": "really me"})).await;
        answer.expect(201, "");
        assert_eq!(signed(&answer.body), (json!("Ada"), json!(true)));
        browser.ws_open("/api/ws?since=0").await;
    }
}
