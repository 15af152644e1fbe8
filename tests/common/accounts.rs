//! Accounts over HTTP, for the integration tests: a [`Browser`] that keeps
//! the session cookie the way a browser does — taken from `Set-Cookie`,
//! sent back as `Cookie` on every request, polls, long polls, event streams
//! and WebSocket upgrades alike — and that sends the `Origin` a page of the
//! server would send (or another site's, for the tests of the Origin
//! check).
//!
//! reqwest's own cookie store is not used on purpose: the tests look at
//! every attribute of `Set-Cookie`, and keep old cookies around to prove
//! that they stopped working.

use std::collections::BTreeMap;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use weebsockets::Running;

use super::{Sse, Ws};

/// The session cookie's name (contract: any name works for the browser;
/// this is the server's).
pub const SESSION_COOKIE: &str = "weebsockets_session";

/// A password that follows the rules (8..=128 characters).
pub const PASSWORD: &str = "correct horse battery";

/// One `Set-Cookie` header, taken apart.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Attribute names lowercased (`httponly`, `max-age`, …) → their value
    /// (`None` for flags such as `HttpOnly`).
    pub attributes: BTreeMap<String, Option<String>>,
}

impl SetCookie {
    /// Parses `name=value; Attr; Attr=value` (RFC 6265 §5.2, enough of it).
    pub fn parse(header: &str) -> SetCookie {
        let mut parts = header.split(';');
        let (name, value) = parts
            .next()
            .and_then(|pair| pair.split_once('='))
            .unwrap_or_else(|| panic!("not a cookie: {header:?}"));
        let attributes = parts
            .map(|attribute| match attribute.split_once('=') {
                Some((key, value)) => (
                    key.trim().to_ascii_lowercase(),
                    Some(value.trim().to_owned()),
                ),
                None => (attribute.trim().to_ascii_lowercase(), None),
            })
            .collect();
        SetCookie {
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            attributes,
        }
    }

    /// True when the flag or attribute is there (`"httponly"`, `"secure"`).
    pub fn has(&self, attribute: &str) -> bool {
        self.attributes.contains_key(attribute)
    }

    /// The value of an attribute (`"samesite"` → `"Lax"`).
    pub fn get(&self, attribute: &str) -> Option<&str> {
        self.attributes.get(attribute)?.as_deref()
    }

    /// What a browser does with it: delete the cookie (empty, or a
    /// `Max-Age` of zero or less).
    pub fn removes(&self) -> bool {
        self.value.is_empty()
            || self
                .get("max-age")
                .and_then(|age| age.parse::<i64>().ok())
                .is_some_and(|age| age <= 0)
    }
}

/// An HTTP answer: status, headers, and the body as JSON (`Null` when it is
/// empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The body's `code` (`""` when there is none).
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The session cookie this answer sets, if it sets one.
    pub fn session_cookie(&self) -> Option<SetCookie> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|value| SetCookie::parse(value.to_str().unwrap()))
            .find(|cookie| cookie.name == SESSION_COOKIE)
    }

    /// `Retry-After`, in seconds, if the answer has one.
    pub fn retry_after(&self) -> Option<u64> {
        self.headers
            .get(reqwest::header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().parse().expect("Retry-After in seconds"))
    }

    /// Panics with the whole answer unless the status and code are these.
    #[track_caller]
    pub fn expect(&self, status: u16, code: &str) -> &Answer {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "expected {status} {code:?}, got {} {}",
            self.status,
            self.body
        );
        self
    }
}

/// What one browser holds for one server: the session cookie (if any),
/// and the `Origin` its pages send.
#[derive(Clone)]
pub struct Browser {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `ws://127.0.0.1:PORT`
    pub ws_base: String,
    /// The session cookie's value, sent as `Cookie` on every request.
    pub cookie: Option<String>,
    /// The `Origin` sent on requests that change something and on
    /// WebSocket upgrades, as a browser does (`None`: like curl, no Origin).
    pub origin: Option<String>,
    /// Extra headers on every request (`X-Forwarded-Proto`, say).
    pub extra: Vec<(String, String)>,
    http: reqwest::Client,
}

impl Browser {
    /// A browser with no cookie, on a page of `server` (so it sends the
    /// server's own origin).
    pub fn new(server: &Running) -> Browser {
        Browser::at(&server.url(""))
    }

    /// Like [`Browser::new`], for a server known by its base URL.
    pub fn at(base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            ws_base: base.replacen("http://", "ws://", 1),
            cookie: None,
            origin: Some(base.to_owned()),
            extra: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(70))
                .build()
                .unwrap(),
        }
    }

    /// The same browser on a page of another site: it still holds (and
    /// sends) the cookie, but its `Origin` is `origin`.
    pub fn on_site(&self, origin: &str) -> Browser {
        Browser {
            origin: Some(origin.to_owned()),
            ..self.clone()
        }
    }

    /// Another browser holding this cookie (a copied, planted or stolen
    /// one), on a page of the server.
    pub fn with_cookie(&self, cookie: Option<String>) -> Browser {
        Browser {
            cookie,
            ..self.clone()
        }
    }

    /// Sends `method path` with the cookie (and, unless it is a `GET`, the
    /// Origin), and `body` as JSON if there is one. Keeps whatever session
    /// cookie the answer sets or clears, as a browser would.
    pub async fn send(&mut self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let answer = self.send_keeping_cookie(method, path, body).await;
        if let Some(cookie) = answer.session_cookie() {
            self.cookie = (!cookie.removes()).then_some(cookie.value);
        }
        answer
    }

    /// [`Browser::send`], but leaves the cookie this browser holds alone.
    pub async fn send_keeping_cookie(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("{SESSION_COOKIE}={cookie}"));
        }
        if method != Method::GET
            && let Some(origin) = &self.origin
        {
            request = request.header("origin", origin);
        }
        for (name, value) in &self.extra {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send_keeping_cookie(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&mut self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(&body)).await
    }

    /// `POST /api/accounts`: create an account (and be signed in as it).
    pub async fn sign_up(&mut self, name: &str, password: &str) -> Answer {
        self.post("/api/accounts", json!({"name": name, "password": password}))
            .await
    }

    /// `POST /api/session`: sign in.
    pub async fn sign_in(&mut self, name: &str, password: &str) -> Answer {
        self.post("/api/session", json!({"name": name, "password": password}))
            .await
    }

    /// `GET /api/session`: who am I.
    pub async fn who_am_i(&self) -> Answer {
        self.get("/api/session").await
    }

    /// `DELETE /api/session`: sign out.
    pub async fn sign_out(&mut self) -> Answer {
        self.send(Method::DELETE, "/api/session", None).await
    }

    /// A new account, signed in; panics unless it is created.
    pub async fn signed_up(server: &Running, name: &str) -> Browser {
        let mut browser = Browser::new(server);
        browser.sign_up(name, PASSWORD).await.expect(201, "");
        assert!(browser.cookie.is_some(), "signing up sets the cookie");
        browser
    }

    /// `POST /api/messages` with this body.
    pub async fn post_message(&mut self, body: Value) -> Answer {
        self.post("/api/messages", body).await
    }

    /// Opens a WebSocket at `path` (`/api/ws?since=0`, …) with the cookie
    /// and the Origin; the refusal's status and JSON body if it is refused.
    pub async fn ws(&self, path: &str) -> Result<Ws, (u16, Value)> {
        let mut request = format!("{}{path}", self.ws_base)
            .into_client_request()
            .unwrap();
        let headers = request.headers_mut();
        if let Some(cookie) = &self.cookie {
            headers.insert(
                "cookie",
                format!("{SESSION_COOKIE}={cookie}").parse().unwrap(),
            );
        }
        if let Some(origin) = &self.origin {
            headers.insert("origin", origin.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, response)) => {
                assert_eq!(response.status(), 101);
                Ok(Ws { stream })
            }
            Err(tungstenite::Error::Http(response)) => {
                let body = response
                    .body()
                    .as_deref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                Err((response.status().as_u16(), body))
            }
            Err(other) => panic!("websocket upgrade to {path} failed: {other}"),
        }
    }

    /// Opens a WebSocket that must be accepted, and reads its `welcome`
    /// (so the server has surely set it up).
    pub async fn ws_open(&self, path: &str) -> Ws {
        let mut ws = match self.ws(path).await {
            Ok(ws) => ws,
            Err((status, body)) => panic!("upgrade to {path} refused: {status} {body}"),
        };
        ws.next_of("welcome").await;
        ws
    }

    /// Opens an event stream at `path` with the cookie; panics unless it is
    /// accepted.
    pub async fn sse(&self, path: &str) -> Sse {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("{SESSION_COOKIE}={cookie}"));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "event stream {path}");
        Sse::from_response(response)
    }

    /// The raw client, for requests the helpers above do not cover.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// Waits for the end of an event stream (its response body ends); panics
/// if it is still open after [`PATIENCE`](super::PATIENCE).
pub async fn stream_ends(sse: &mut Sse) {
    while let Some(event) = sse.next().await {
        let _ = event;
    }
}

/// The real server, as [`start_with`](super::start_with) starts it, with
/// cheap password hashes (`--insecure-fast-passwords`): every test but the
/// one about the hash's cost.
pub fn start_accounts(adjust: impl FnOnce(&mut weebsockets::Config)) -> Running {
    super::start_with(|config| {
        config.insecure_fast_passwords = true;
        adjust(config);
    })
}
