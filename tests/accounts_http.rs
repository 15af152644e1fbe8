/// Accounts over HTTP, against the real server on an ephemeral port: a
/// student signs up, is signed in by a cookie, asks who they are and signs
/// out; every refusal answers its status and JSON code; the session cookie
/// is `HttpOnly`, `SameSite=Lax`, `Path=/`, lives `--session-days` and is
/// `Secure` when a proxy says the page came over HTTPS; every sign-in gets
/// a new session id and the old cookie dies (no session fixation); a wrong
/// password and an unknown name get the very same answer; guessing is
/// refused with `429` and `Retry-After`; and accounts and sessions survive
/// a restart of the server.
mod common;

use common::accounts::*;
use reqwest::Method;
use serde_json::json;

/// Signing up answers `201` with the name and role, sets the cookie and is
/// never cached; the cookie makes `GET /api/session` answer who this is;
/// signing out answers `204`, clears it, and the browser is a guest again.
#[tokio::test]
async fn sign_up_who_am_i_sign_out() {
    let server = start_accounts(|_| {});
    let mut ada = Browser::new(&server);

    let created = ada.sign_up("Ada", PASSWORD).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body, json!({"name": "Ada", "role": "student"}));
    assert_eq!(created.headers["cache-control"], "no-store");
    assert!(ada.cookie.is_some());

    let me = ada.who_am_i().await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body, json!({"name": "Ada", "role": "student"}));
    assert_eq!(me.headers["cache-control"], "no-store");

    let signed_in = ada.sign_in("Ada", PASSWORD).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert_eq!(signed_in.body, json!({"name": "Ada", "role": "student"}));

    let old = ada.cookie.clone();
    let out = ada.sign_out().await;
    assert_eq!(out.status, 204);
    assert!(
        out.session_cookie()
            .expect("the cookie is cleared")
            .removes()
    );
    assert_eq!(ada.cookie, None);
    ada.who_am_i().await.expect(401, "not_signed_in");
    // The cookie the browser had is dead on the server too, not just
    // forgotten by the browser.
    ada.with_cookie(old)
        .who_am_i()
        .await
        .expect(401, "not_signed_in");

    // Among the other cookies a browser sends to this host (other apps on
    // localhost in a classroom), the session is still found.
    ada.sign_in("Ada", PASSWORD).await.expect(200, "");
    let response = ada
        .http()
        .get(server.url("/api/session"))
        .header(
            "cookie",
            format!(
                "theme=dark; {SESSION_COOKIE}={}; other_app=1",
                ada.cookie.as_deref().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    ada.sign_out().await;

    // No cookie, or one the server never gave out: a guest.
    Browser::new(&server)
        .who_am_i()
        .await
        .expect(401, "not_signed_in");
    let made_up = Browser::new(&server).with_cookie(Some("0".repeat(64)));
    made_up.who_am_i().await.expect(401, "not_signed_in");
    Browser::new(&server)
        .with_cookie(Some("not even hex".into()))
        .who_am_i()
        .await
        .expect(401, "not_signed_in");

    // Signing out without a session is no error: there is nothing to end.
    let mut guest = Browser::new(&server);
    assert_eq!(guest.sign_out().await.status, 204);
}

/// Each way to get it wrong has its own status and stable code.
#[tokio::test]
async fn every_refusal_answers_its_status_and_code() {
    let server = start_accounts(|_| {});
    let mut browser = Browser::new(&server);

    // Names follow a message author's rules: 1..=32 characters after
    // trimming, no control characters.
    for name in ["", "   ", &"n".repeat(33), "a\u{7}b", "tab\u{85}"] {
        browser
            .sign_up(name, PASSWORD)
            .await
            .expect(422, "invalid_name");
    }
    // Passwords: 8..=128 Unicode scalar values, as typed.
    for password in ["short", "seven77", &"p".repeat(129), &"é".repeat(7)] {
        browser
            .sign_up("Grace", password)
            .await
            .expect(422, "invalid_password");
    }
    // The bounds themselves are fine: a 32-character name, an 8- and a
    // 128-character password (é is one character, two bytes).
    Browser::new(&server)
        .sign_up(&"n".repeat(32), &"é".repeat(8))
        .await
        .expect(201, "");
    Browser::new(&server)
        .sign_up("Grace", &"p".repeat(128))
        .await
        .expect(201, "");
    // A password is taken as typed: spaces around it are part of it.
    Browser::new(&server)
        .sign_up("Spaces", "  padded  ")
        .await
        .expect(201, "");
    Browser::new(&server)
        .sign_in("Spaces", "padded")
        .await
        .expect(401, "bad_credentials");
    Browser::new(&server)
        .sign_in("Spaces", "  padded  ")
        .await
        .expect(200, "");

    // Names are unique after NFC and full case folding.
    Browser::new(&server)
        .sign_up("Ada", PASSWORD)
        .await
        .expect(201, "");
    Browser::new(&server)
        .sign_up("Straße", PASSWORD)
        .await
        .expect(201, "");
    Browser::new(&server)
        .sign_up("Jos\u{e9}", PASSWORD)
        .await
        .expect(201, "");
    for taken in ["Ada", "ada", "  ADA ", "STRASSE", "strasse", "JOSE\u{301}"] {
        browser
            .sign_up(taken, PASSWORD)
            .await
            .expect(409, "name_taken");
    }
    // Signing in works in any case and answers the name as registered.
    let answer = browser.sign_in("STRASSE", PASSWORD).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["name"], "Straße");

    // Wrong name or password.
    Browser::new(&server)
        .sign_in("Ada", "wrong password")
        .await
        .expect(401, "bad_credentials");
    Browser::new(&server)
        .sign_in("Nobody", PASSWORD)
        .await
        .expect(401, "bad_credentials");

    // The body must be JSON, said so by Content-Type (part of what keeps
    // a form on another site from posting here).
    let response = browser
        .http()
        .post(server.url("/api/session"))
        .header("content-type", "text/plain")
        .body(r#"{"name":"Ada","password":"correct horse battery"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "not_json");
    browser
        .post("/api/accounts", json!({"name": "NoPassword"}))
        .await
        .expect(400, "bad_json");

    // Not the teacher: no list of who is signed in, no ending sessions, no
    // lab.
    let student = Browser::signed_up(&server, "Student").await;
    for (method, path, body) in [
        (Method::GET, "/api/accounts", None),
        (Method::DELETE, "/api/accounts/Ada/sessions", None),
        (Method::PUT, "/api/lab", Some(json!({"latency_ms": 100}))),
    ] {
        let answer = student
            .send_keeping_cookie(method.clone(), path, body.as_ref())
            .await;
        answer.expect(401, "unauthorized");
        assert_eq!(
            answer.headers["www-authenticate"], "Bearer",
            "{method} {path}"
        );
    }
}

/// The session cookie, as the browser gets it at sign-up and at sign-in:
/// `HttpOnly` (no script can read it), `SameSite=Lax`, `Path=/` (every
/// endpoint gets it), host-only (no `Domain`), a `Max-Age` of
/// `--session-days`, and not `Secure` over plain HTTP (a browser would
/// drop a `Secure` cookie from an `http://` page).
#[tokio::test]
async fn the_session_cookie_has_the_contract_s_attributes() {
    for (days, server) in [
        (30, start_accounts(|_| {})),
        (7, start_accounts(|c| c.session_days = 7)),
    ] {
        let mut browser = Browser::new(&server);
        let up = browser.sign_up("Ada", PASSWORD).await;
        let mut again = Browser::new(&server);
        let in_ = again.sign_in("ada", PASSWORD).await;
        for (what, answer) in [("sign-up", &up), ("sign-in", &in_)] {
            let cookie = answer.session_cookie().expect(what);
            assert_eq!(cookie.name, SESSION_COOKIE);
            // 256 random bits, hex.
            assert_eq!(cookie.value.len(), 64, "{what}");
            assert!(cookie.value.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(cookie.has("httponly"), "{what}: {cookie:?}");
            assert_eq!(cookie.get("samesite"), Some("Lax"), "{what}");
            assert_eq!(cookie.get("path"), Some("/"), "{what}");
            let max_age = (days * 24 * 60 * 60).to_string();
            assert_eq!(cookie.get("max-age"), Some(max_age.as_str()), "{what}");
            assert!(!cookie.has("domain"), "{what}: {cookie:?}");
            assert!(!cookie.has("secure"), "{what}: plain HTTP: {cookie:?}");
        }
        // Signing out clears the cookie the same way it was set (same
        // name, same Path, so the browser replaces it).
        let out = browser.sign_out().await;
        let cleared = out.session_cookie().expect("cleared");
        assert!(cleared.removes(), "{cleared:?}");
        assert_eq!(cleared.get("path"), Some("/"));
        assert!(cleared.has("httponly"));
        assert_eq!(cleared.get("samesite"), Some("Lax"));
    }
}

/// Behind a proxy that speaks HTTPS to the browser and HTTP to us, the
/// cookie must be `Secure`. actix's `connection_info()` honours both
/// `X-Forwarded-Proto` and the standard `Forwarded: proto=…` (RFC 7239),
/// so either header makes it `Secure` — on sign-up, sign-in and sign-out.
/// (A client could send the header itself; that only makes its own cookie
/// stricter.)
#[tokio::test]
async fn the_cookie_is_secure_when_a_proxy_says_https() {
    let server = start_accounts(|_| {});
    let headers = [
        ("x-forwarded-proto", "https", true),
        ("forwarded", "for=192.0.2.60;proto=https", true),
        ("x-forwarded-proto", "http", false),
    ];
    for (i, (header, value, secure)) in headers.into_iter().enumerate() {
        let mut browser = Browser::new(&server);
        browser.extra = vec![(header.into(), value.into())];
        let name = format!("Proxied{i}");
        let up = browser.sign_up(&name, PASSWORD).await;
        let in_ = browser.sign_in(&name, PASSWORD).await;
        let out = browser.sign_out().await;
        for (what, answer) in [("sign-up", up), ("sign-in", in_), ("sign-out", out)] {
            let cookie = answer.session_cookie().expect(what);
            assert_eq!(
                cookie.has("secure"),
                secure,
                "{header}: {value}, {what}: {cookie:?}"
            );
        }
    }
}

/// Every sign-in is a new session with a new id, whatever cookie the
/// browser brought: the brought one ends. So a session id planted in a
/// student's browser beforehand (session fixation) never becomes the
/// student's, and a student signed in twice on two devices has two
/// sessions.
#[tokio::test]
async fn every_sign_in_rotates_the_session_id() {
    let server = start_accounts(|_| {});
    let mut ada = Browser::new(&server);
    ada.sign_up("Ada", PASSWORD).await.expect(201, "");
    let first = ada.cookie.clone().unwrap();

    ada.sign_in("Ada", PASSWORD).await.expect(200, "");
    let second = ada.cookie.clone().unwrap();
    assert_ne!(first, second, "a new id at sign-in");
    ada.with_cookie(Some(first))
        .who_am_i()
        .await
        .expect(401, "not_signed_in");
    assert_eq!(ada.who_am_i().await.body["name"], "Ada");

    // Another device: a session of its own; the first device's stays.
    let mut phone = Browser::new(&server);
    phone.sign_in("ada", PASSWORD).await.expect(200, "");
    assert_ne!(phone.cookie.as_deref(), Some(second.as_str()));
    assert_eq!(ada.who_am_i().await.body["name"], "Ada");
    assert_eq!(phone.who_am_i().await.body["name"], "Ada");

    // Fixation: Mallory signs in, plants her live cookie in Bob's browser
    // (a shared lab computer, say), and Bob signs in there.
    let mut mallory = Browser::signed_up(&server, "Mallory").await;
    let planted = mallory.cookie.clone();
    Browser::signed_up(&server, "Bob").await.sign_out().await;
    let mut bobs_browser = Browser::new(&server).with_cookie(planted.clone());
    bobs_browser.sign_in("Bob", PASSWORD).await.expect(200, "");
    assert_ne!(bobs_browser.cookie, planted, "Bob got an id of his own");
    assert_eq!(bobs_browser.who_am_i().await.body["name"], "Bob");
    // The planted id is dead: it is neither Bob nor still Mallory.
    mallory.who_am_i().await.expect(401, "not_signed_in");
    // Nor does a made-up id brought to a sign-in ever become live.
    let made_up = "ab".repeat(32);
    let mut browser = Browser::new(&server).with_cookie(Some(made_up.clone()));
    browser.sign_in("Bob", PASSWORD).await.expect(200, "");
    assert_ne!(browser.cookie.as_deref(), Some(made_up.as_str()));
    browser
        .with_cookie(Some(made_up))
        .who_am_i()
        .await
        .expect(401, "not_signed_in");
    // Signing up does the same with a brought cookie.
    mallory.sign_in("Mallory", PASSWORD).await.expect(200, "");
    let planted = mallory.cookie.clone();
    let mut carols_browser = Browser::new(&server).with_cookie(planted.clone());
    carols_browser
        .sign_up("Carol", PASSWORD)
        .await
        .expect(201, "");
    assert_ne!(carols_browser.cookie, planted);
    assert_eq!(carols_browser.who_am_i().await.body["name"], "Carol");
    mallory.who_am_i().await.expect(401, "not_signed_in");
}

/// A wrong password for a real account and any password for a name nobody
/// has get one and the same answer — status, code, sentence, headers, no
/// cookie — so nobody can find out which names exist by signing in.
/// (That they take the same time is `accounts_http_timing.rs`.)
#[tokio::test]
async fn a_wrong_password_and_an_unknown_name_answer_the_same() {
    let server = start_accounts(|_| {});
    Browser::signed_up(&server, "Ada").await;
    let wrong = Browser::new(&server)
        .sign_in("Ada", "not her password")
        .await;
    let unknown = Browser::new(&server)
        .sign_in("Nobody", "not her password")
        .await;
    let not_a_name = Browser::new(&server).sign_in("", "not her password").await;
    for answer in [&wrong, &unknown, &not_a_name] {
        answer.expect(401, "bad_credentials");
        assert!(answer.session_cookie().is_none());
        assert_eq!(answer.retry_after(), None);
    }
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.body, not_a_name.body);
    let names = |answer: &Answer| {
        let mut headers: Vec<(String, String)> = answer
            .headers
            .iter()
            .filter(|(name, _)| *name != "date")
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        headers
    };
    assert_eq!(names(&wrong), names(&unknown));
    assert_eq!(names(&wrong), names(&not_a_name));
}

/// Guessing one student's password: five failures, then `429` with
/// `Retry-After` (and `retry_after_ms`) — even for the right password, or
/// the lock would tell the guesser when they are right. A name nobody has
/// is throttled the same way (or the throttle would tell which names
/// exist). Other names from the same address are not affected.
#[tokio::test]
async fn guessing_one_name_gets_429_with_retry_after() {
    let server = start_accounts(|_| {});
    Browser::signed_up(&server, "Ada").await;
    for name in ["Ada", "Nobody"] {
        let mut guesser = Browser::new(&server);
        for guess in 0..5 {
            guesser
                .sign_in(name, &format!("guess number {guess}"))
                .await
                .expect(401, "bad_credentials");
        }
        let refused = guesser.sign_in(name, "guess number 5").await;
        refused.expect(429, "rate_limited");
        let wait = refused.retry_after().expect("Retry-After");
        assert!((1..=30).contains(&wait), "Retry-After: {wait}");
        let wait_ms = refused.body["retry_after_ms"].as_u64().unwrap();
        assert!(wait_ms <= wait * 1000 && wait_ms + 1000 > wait * 1000);
        assert!(refused.session_cookie().is_none());
        // Any case, any spelling of the same name is the same name.
        guesser
            .sign_in(&name.to_uppercase(), PASSWORD)
            .await
            .expect(429, "rate_limited");
    }
    // Ada herself must wait too (the name is what is being guessed)…
    Browser::new(&server)
        .sign_in("Ada", PASSWORD)
        .await
        .expect(429, "rate_limited");
    // …but her classmates at the same address sign in as usual.
    Browser::signed_up(&server, "Grace").await;
    Browser::new(&server)
        .sign_in("Grace", PASSWORD)
        .await
        .expect(200, "");
}

/// One address trying name after name: after 200 failures (loose enough
/// for a class of 60 behind one address to mistype three times each), the
/// address waits too — whatever name it tries next.
#[tokio::test]
async fn one_address_spraying_names_gets_429() {
    let server = start_accounts(|_| {});
    let mut sprayer = Browser::new(&server);
    for i in 0..200 {
        sprayer
            .sign_in(&format!("student{i}"), "password123")
            .await
            .expect(401, "bad_credentials");
    }
    let refused = sprayer.sign_in("student200", "password123").await;
    refused.expect(429, "rate_limited");
    assert!(refused.retry_after().is_some_and(|s| s >= 1));
}

/// Accounts and sessions are in the database file: stopped and started
/// again on the same file, the server knows the accounts (names still
/// taken, passwords still work), the cookie it gave out still signs the
/// browser in — and a session that was signed out stays dead.
#[tokio::test]
async fn accounts_and_sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("weebsockets.db");
    let on_file = |db: std::path::PathBuf| move |c: &mut weebsockets::Config| c.db = db;

    let server = start_accounts(on_file(db.clone()));
    let ada = Browser::signed_up(&server, "Ada").await;
    let mut bob = Browser::signed_up(&server, "Bob").await;
    let bobs_old = bob.cookie.clone();
    bob.sign_out().await;
    let ada_cookie = ada.cookie.clone();
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap()
        .unwrap();

    let server = start_accounts(on_file(db));
    let browser = Browser::new(&server);
    let me = browser.with_cookie(ada_cookie).who_am_i().await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["name"], "Ada");
    browser
        .with_cookie(bobs_old)
        .who_am_i()
        .await
        .expect(401, "not_signed_in");
    Browser::new(&server)
        .sign_up("ADA", PASSWORD)
        .await
        .expect(409, "name_taken");
    Browser::new(&server)
        .sign_in("bob", PASSWORD)
        .await
        .expect(200, "");
    // And guests still cannot write as her.
    Browser::new(&server)
        .post_message(json!({"author": "ada", "text": "it is me, really"}))
        .await
        .expect(409, "name_taken");
}

/// A class behind one address can all sign up at once (100), but a script
/// creating accounts in a loop is slowed down: each one costs a password
/// hash and memory.
#[tokio::test]
async fn creating_accounts_is_limited_per_address() {
    let server = start_accounts(|_| {});
    for i in 0..weebsockets::state::SIGNUP_BURST {
        let mut student = Browser::new(&server);
        let created = student.sign_up(&format!("student{i}"), PASSWORD).await;
        assert_eq!(created.status, 201, "student{i}: {}", created.body);
    }
    let mut one_more = Browser::new(&server);
    let refused = one_more.sign_up("student-extra", PASSWORD).await;
    refused.expect(429, "rate_limited");
    assert!(refused.retry_after().is_some_and(|s| (1..=3).contains(&s)));
}
