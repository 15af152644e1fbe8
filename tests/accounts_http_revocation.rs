/// A session that ends, ends everywhere at once. Ada is signed in on her
/// laptop and her phone, with the chat's and the document's WebSockets,
/// the echo socket and both event streams open. When she signs out on the
/// laptop, every socket the laptop's session opened closes with 1008 and
/// its streams end, its cookie stops working — and her phone's session,
/// and a guest's socket, carry on. When the teacher ends all her sessions,
/// both devices are signed out and all their sockets and streams close. A
/// new sign-in in the same browser ends the session it replaces, sockets
/// included.
mod common;

use common::accounts::*;
use common::*;
use futures_util::SinkExt;
use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The close code for "your session ended" (RFC 6455: policy violation).
const SESSION_ENDED: u16 = 1008;

/// Everything one browser keeps open: both logs' WebSockets, the echo
/// socket and both event streams, all opened with its cookie.
struct Open {
    chat: Ws,
    doc: Ws,
    echo: Ws,
    chat_events: Sse,
    doc_events: Sse,
}

impl Open {
    async fn all(browser: &Browser) -> Open {
        let chat = browser.ws_open("/api/ws?since=0").await;
        let doc = browser.ws_open("/api/doc/ws?since=0").await;
        let mut echo = browser.ws("/api/echo").await.expect("echo upgrade");
        // The echo socket says nothing first: one echo proves it is served.
        echo.stream
            .send(WsMessage::Text(r#"{"echo":1}"#.into()))
            .await
            .unwrap();
        assert_eq!(echo.next().await, json!({"echo": 1}));
        let mut chat_events = browser.sse("/api/events?since=0").await;
        let mut doc_events = browser.sse("/api/doc/events?since=0").await;
        // Each stream starts with `retry:`: it is running.
        for sse in [&mut chat_events, &mut doc_events] {
            assert!(sse.next().await.unwrap().retry.is_some());
        }
        Open {
            chat,
            doc,
            echo,
            chat_events,
            doc_events,
        }
    }

    /// Every socket closes with 1008 and every stream ends.
    async fn all_end(mut self, whose: &str) {
        for (what, ws) in [
            ("chat", &mut self.chat),
            ("doc", &mut self.doc),
            ("echo", &mut self.echo),
        ] {
            assert_eq!(
                ws.close_code_within(PATIENCE).await,
                Ok(SESSION_ENDED),
                "{whose}'s {what} WebSocket"
            );
        }
        stream_ends(&mut self.chat_events).await;
        stream_ends(&mut self.doc_events).await;
    }
}

/// Signing out on the laptop: the laptop's sockets close (1008) and its
/// streams end; its old cookie is a guest's now, over HTTP and on a new
/// WebSocket; the phone's session and a guest's socket see the next
/// message as if nothing happened.
#[tokio::test]
async fn signing_out_closes_what_that_session_opened_and_nothing_else() {
    let server = start_accounts(|_| {});
    let mut laptop = Browser::signed_up(&server, "Ada").await;
    let mut phone = Browser::new(&server);
    phone.sign_in("Ada", PASSWORD).await.expect(200, "");
    let guest = Browser::new(&server);

    let laptop_open = Open::all(&laptop).await;
    let mut phone_ws = phone.ws_open("/api/ws?since=0").await;
    let mut phone_events = phone.sse("/api/events?since=0").await;
    let mut guest_ws = guest.ws_open("/api/ws?since=0").await;

    // Signed out in another tab of the laptop: same cookie, same session.
    let old = laptop.cookie.clone();
    laptop.sign_out().await;
    laptop_open.all_end("the laptop").await;

    // The old cookie is nobody's now.
    let stale = Browser::new(&server).with_cookie(old);
    stale.who_am_i().await.expect(401, "not_signed_in");
    let mut stale_post = stale.clone();
    // As a guest it must name itself, and not as Ada.
    stale_post
        .post_message(json!({"text": "no author: only a session may leave it out"}))
        .await
        .expect(400, "bad_json");
    stale_post
        .post_message(json!({"author": "Ada", "text": "still me?"}))
        .await
        .expect(409, "name_taken");
    let mut stale_ws = stale.ws_open("/api/ws?since=0").await;
    stale_ws
        .send_json(json!({"type": "send", "ref": "r1", "author": "Ada", "text": "still me?"}))
        .await;
    let refused = stale_ws.next_of("error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["ref"].as_str()),
        (Some("name_taken"), Some("r1"))
    );

    // The phone is still Ada, and everything else still flows.
    assert_eq!(phone.who_am_i().await.body["name"], "Ada");
    let sent = phone.post_message(json!({"text": "from the phone"})).await;
    sent.expect(201, "");
    assert_eq!(
        (&sent.body["author"], &sent.body["account"]),
        (&json!("Ada"), &json!(true))
    );
    for (what, ws) in [("phone", &mut phone_ws), ("guest", &mut guest_ws)] {
        let got = ws.messages(1).await;
        assert_eq!(got[0]["text"], "from the phone", "{what}'s WebSocket");
    }
    assert_eq!(phone_events.messages(1).await[0]["text"], "from the phone");
}

/// The teacher signs a student out everywhere: both of Ada's devices lose
/// their session, all their sockets close with 1008 and streams end; the
/// teacher's list of who is signed in says so before and after; the
/// teacher's own session carries on. A script with the bearer token can
/// do the same, and a name nobody has is `404 no_such_account`.
#[tokio::test]
async fn the_teacher_ending_a_student_s_sessions_closes_them_everywhere() {
    let server = start_accounts(|c| c.teacher = Some("Teach".into()));
    let mut teacher = Browser::new(&server);
    teacher.extra = vec![("authorization".into(), "Bearer teacher".into())];
    teacher.sign_up("Teach", PASSWORD).await.expect(201, "");
    teacher.extra.clear();

    let laptop = Browser::signed_up(&server, "Ada").await;
    let mut phone = Browser::new(&server);
    phone.sign_in("ada", PASSWORD).await.expect(200, "");
    let grace = Browser::signed_up(&server, "Grace").await;
    let laptop_open = Open::all(&laptop).await;
    let phone_open = Open::all(&phone).await;
    let mut grace_ws = grace.ws_open("/api/ws?since=0").await;

    let list = teacher.get("/api/accounts").await;
    assert_eq!(list.status, 200, "{}", list.body);
    let names: Vec<(String, u64)> = list.body["signed_in"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_owned(),
                u["sessions"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("Ada".into(), 2), ("Grace".into(), 1), ("Teach".into(), 1)]
    );
    assert_eq!(list.body["signed_in"][2]["role"], "teacher");

    let ended = teacher
        .send(Method::DELETE, "/api/accounts/ADA/sessions", None)
        .await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    assert_eq!(ended.body, json!({"ended": 2}));
    laptop_open.all_end("the laptop").await;
    phone_open.all_end("the phone").await;
    laptop.who_am_i().await.expect(401, "not_signed_in");
    phone.who_am_i().await.expect(401, "not_signed_in");

    // Grace and the teacher are untouched.
    assert_eq!(teacher.who_am_i().await.body["role"], "teacher");
    let mut grace_post = grace.clone();
    grace_post
        .post_message(json!({"text": "still here"}))
        .await
        .expect(201, "");
    assert_eq!(grace_ws.messages(1).await[0]["author"], "Grace");
    let list = teacher.get("/api/accounts").await;
    let names: Vec<&str> = list.body["signed_in"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Grace", "Teach"]);

    // Scripts: the bearer token, no session.
    let mut script = Browser::new(&server);
    script.origin = None;
    script.extra = vec![("authorization".into(), "Bearer teacher".into())];
    let ended = script
        .send(Method::DELETE, "/api/accounts/grace/sessions", None)
        .await;
    assert_eq!(ended.body, json!({"ended": 1}));
    assert_eq!(
        grace_ws.close_code_within(PATIENCE).await,
        Ok(SESSION_ENDED)
    );
    assert_eq!(script.get("/api/accounts").await.status, 200);
    teacher
        .send(Method::DELETE, "/api/accounts/Nobody/sessions", None)
        .await
        .expect(404, "no_such_account");
}

/// Names are a message author's: spaces, slashes, plus signs, percent
/// signs, any script. The teacher's `DELETE /api/accounts/{name}/sessions`
/// must reach each of them, percent-encoded in the path as a browser's
/// `encodeURIComponent` would write it.
#[tokio::test]
async fn the_teacher_can_end_the_sessions_of_any_name() {
    let server = start_accounts(|_| {});
    let mut script = Browser::new(&server);
    script.extra = vec![("authorization".into(), "Bearer teacher".into())];
    for name in [
        "Ada Lovelace",
        "AC/DC",
        "C++",
        "100%",
        "Zoë",
        "a?b#c",
        "semi;colon",
    ] {
        let student = Browser::signed_up(&server, name).await;
        let path = format!("/api/accounts/{}/sessions", encode_uri_component(name));
        let ended = script.send(Method::DELETE, &path, None).await;
        assert_eq!(
            (ended.status, &ended.body),
            (200, &json!({"ended": 1})),
            "{name:?} as {path}"
        );
        student.who_am_i().await.expect(401, "not_signed_in");
    }
}

/// Signing in again in the same browser ends the session it replaces
/// (see `accounts_http.rs`, rotation): the sockets opened with the old
/// cookie close with 1008, and the page reconnects with the new one.
#[tokio::test]
async fn a_new_sign_in_closes_the_sockets_of_the_session_it_replaces() {
    let server = start_accounts(|_| {});
    let mut ada = Browser::signed_up(&server, "Ada").await;
    let mut old_ws = ada.ws_open("/api/ws?since=0").await;
    ada.sign_in("Ada", PASSWORD).await.expect(200, "");
    assert_eq!(old_ws.close_code_within(PATIENCE).await, Ok(SESSION_ENDED));
    let mut new_ws = ada.ws_open("/api/ws?since=0").await;
    new_ws
        .send_json(json!({"type": "send", "ref": "r", "text": "reconnected"}))
        .await;
    let message = new_ws.messages(1).await.remove(0);
    assert_eq!(
        (&message["author"], &message["account"]),
        (&json!("Ada"), &json!(true))
    );
}

/// JavaScript's `encodeURIComponent`: everything but `A-Z a-z 0-9 - _ . ! ~
/// * ' ( )` as UTF-8 percent-escapes.
fn encode_uri_component(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
