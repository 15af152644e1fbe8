//! The classroom pages: the lesson's map (`/`), one chat page per transport
//! (`/interval`, `/timeout`, `/longpoll`, `/websocket`, `/sse`), the
//! WebSocket echo bench (`/websocket/echo`), all five side by side
//! (`/compare`) and the teacher's dashboard (`/dashboard`); and the shared
//! document's: one editor per transport (`/doc/interval`, …), five editors
//! side by side (`/doc/compare`, where `/doc` leads) and the document's
//! history (`/doc/history`).
//!
//! The server only renders the frame of each page (askama templates in
//! `templates/`, autoescaped). Everything that moves — polling, sockets,
//! counters, timelines — is plain JavaScript in `assets/js/`, one small
//! module per transport, so a student can read in the browser exactly what
//! the browser does.
//!
//! Every page is rendered knowing who asks: the page's own `GET` carries the
//! session cookie like every other request, so the header says "Signed in
//! as Ada" (or shows the Name / Password form) in the first paint, without
//! the page asking `GET /api/session` — one request fewer on pages whose
//! lesson is counting requests. `assets/js/account.js` takes over from
//! there.
//!
//! Every page is served with a strict Content-Security-Policy: scripts and
//! styles only from this server, no inline `<script>`, no `style=""`, no
//! `onclick=""`. A chat page shows text typed by strangers; even if a bug
//! ever let that text in as HTML, the browser would refuse to run it.

use actix_files::Files;
use actix_web::http::header::{self, ContentType};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, guard, web};
use askama::Template;

use crate::accounts::Role;
use crate::identity::Peer;
use crate::state::AppState;

/// What pages may load and where they may connect: only this server.
/// `connect-src 'self'` also covers `ws://` to the same host and port (CSP
/// Level 3), which is what the WebSocket pages use.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Where the static files live. Resolved at compile time, so the server finds
/// them whatever directory it is started from (`cargo run` in the repo).
const ASSETS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");

/// One of the five ways to read the room, as the pages describe it. The
/// index lists them in this order, which is the lecture's order.
pub struct Mode {
    /// URL path segment and `data-transport` value (`interval`, …).
    pub slug: &'static str,
    /// The transport's name in headings.
    pub name: &'static str,
    /// A short name for navigation and column heads.
    pub short: &'static str,
    /// The endpoint it reads from.
    pub endpoint: &'static str,
    /// The browser file that implements it (under `assets/js/transports/`).
    pub script: &'static str,
    /// One sentence under the title.
    pub tagline: &'static str,
    /// How it works, in a few sentences.
    pub how: &'static str,
    /// What is good about it.
    pub pros: &'static str,
    /// What is bad about it.
    pub cons: &'static str,
    /// What to look at on its page.
    pub watch: &'static str,
    /// What its page's byte counters count, under the instruments.
    pub bytes_note: &'static str,
    /// Polls on a timer: the page gets an interval control.
    pub timed: bool,
    /// Offers the "naive client" switch (no de-duplication or ordering).
    pub naive: bool,
    /// A long poll: the page gets a hold-time control.
    pub holds: bool,
    /// Not part of the lecture itself.
    pub extra: bool,
}

/// What the polling pages' byte counters count.
const POLL_BYTES: &str = "Bytes, both ways. Received: what the browser's Resource Timing reports for each answer (transferSize: the body plus the response head, which Chrome counts as 300 B). Sent: each request's head as Chromium writes it — estimated, since a page cannot see it — plus the body of your POSTs. An empty poll still costs hundreds of bytes of headers.";

/// The lecture's "five lines of code" next to the module the page really
/// runs, for the setInterval page: the naive loop, then the whole file.
pub struct CodePair {
    /// The naive version, exactly five lines.
    pub naive: &'static str,
    /// What the naive version gets wrong, in a sentence.
    pub naive_note: &'static str,
    /// The real module, as served from `assets/js/transports/`.
    pub real: &'static str,
    /// Its length in lines.
    pub real_lines: usize,
}

/// The setInterval page's pair.
const INTERVAL_CODE: CodePair = CodePair {
    naive: "setInterval(async () => {\n  const res = await fetch(`/api/messages?since=${since}`);\n  const { messages, last_id } = await res.json();\n  messages.forEach(show); since = last_id;\n}, 1000);",
    naive_note: "It works on a fast network. On a slow one the requests overlap and answers overtake each other: it shows messages twice or out of order, and its cursor can move backwards. It never gives up on a request that hangs, and when the server is down it keeps asking every second. The Naive client switch makes the real module trust the last answer in the same way.",
    real: INTERVAL_JS,
    real_lines: count_lines(INTERVAL_JS),
};
const INTERVAL_JS: &str = include_str!("../assets/js/transports/interval.js");

/// Lines in a text (a last line without a newline counts too).
const fn count_lines(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut lines = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            lines += 1;
        }
        i += 1;
    }
    if !bytes.is_empty() && bytes[bytes.len() - 1] != b'\n' {
        lines += 1;
    }
    lines
}

/// The five modes, in the order the lesson teaches them.
pub const MODES: [Mode; 5] = [
    Mode {
        slug: "interval",
        name: "setInterval polling",
        short: "setInterval",
        endpoint: "GET /api/messages",
        script: "interval.js",
        tagline: "Ask the server for news on a fixed clock, whether or not the last answer came back.",
        how: "The page calls setInterval once. Every tick it sends GET /api/messages?since=<newest id it has>, and the server answers at once — usually with nothing.",
        pros: "Five lines of code (its page shows them next to the real module). Works with any server and any browser.",
        cons: "Mostly empty answers. When the network is slow, requests overlap, answers overtake each other, and a careless client shows messages twice or out of order.",
        watch: "A request takes the first free row of the timeline. A new one starts on every tick, answered or not: when answers take longer than the interval (the lab's Slow preset, polling every 500 ms), the rows stack up. Then turn the jitter on and switch to the naive client.",
        bytes_note: POLL_BYTES,
        timed: true,
        naive: true,
        holds: false,
        extra: false,
    },
    Mode {
        slug: "timeout",
        name: "setTimeout polling",
        short: "setTimeout",
        endpoint: "GET /api/messages",
        script: "timeout.js",
        tagline: "Ask, wait for the answer, then wait a little and ask again.",
        how: "Each answer schedules the next request with setTimeout. Only one request is ever in flight, so answers arrive in the order they were asked for.",
        pros: "It works: one request at a time, answers in order, nothing to de-duplicate.",
        cons: "Still asks when nothing has happened, and news waits up to a whole interval. It works, but it feels like a workaround.",
        watch: "The timeline never leaves its first row: each request starts only after the previous answer. Latency and jitter slow it down but never stack it up or scramble it.",
        bytes_note: POLL_BYTES,
        timed: true,
        naive: true,
        holds: false,
        extra: false,
    },
    Mode {
        slug: "longpoll",
        name: "Long polling",
        short: "Long poll",
        endpoint: "GET /api/longpoll",
        script: "long_poll.js",
        tagline: "Ask once, and let the server hold the question until it has an answer.",
        how: "The server does not answer until a message exists (or the hold runs out and it says 204 No Content). The page reads the answer and immediately asks again. This trick is also called Comet.",
        pros: "News arrives as soon as it exists. About one request per message instead of one per tick. Needs nothing new from the browser.",
        cons: "Each held request ties up a connection, and every message still costs a full HTTP round trip with headers. Error handling is all yours.",
        watch: "Long bars: each one is a request the server is holding. Open DevTools → Network → a longpoll request → Timing: the Server-Timing row says how long it was held.",
        bytes_note: POLL_BYTES,
        timed: false,
        naive: true,
        holds: true,
        extra: false,
    },
    Mode {
        slug: "websocket",
        name: "WebSockets",
        short: "WebSocket",
        endpoint: "GET /api/ws (Upgrade)",
        script: "websocket.js",
        tagline: "One connection, kept open, that both sides can talk on.",
        how: "An HTTP request asks to upgrade; the server says 101 Switching Protocols, and from then on the connection carries small frames both ways. There are four things to know: open, send, receive, close.",
        pros: "Real push, both directions, a few bytes of framing per message, no request per message.",
        cons: "A different protocol: proxies, load balancers and servers must support it, and reconnecting and resuming after a drop is still your job.",
        watch: "One line with ticks: a single connection, each tick a frame. In DevTools pick the ws request, then the Messages tab, to see every frame. Switch the lab's outage on and read the close code (1013); leave it on while the page reconnects and the socket never opens: the handshake is refused.",
        bytes_note: "Bytes, both ways: each frame is its payload plus a 2–14 byte header (frames the browser sends are masked: 4 bytes more). The handshake, one HTTP request and its 101 answer, is counted once per connection, estimated: a page cannot see it (DevTools can).",
        timed: false,
        naive: false,
        holds: false,
        extra: false,
    },
    Mode {
        slug: "sse",
        name: "Server-Sent Events",
        short: "SSE",
        endpoint: "GET /api/events",
        script: "sse.js",
        tagline: "One HTTP response that never ends; the server writes events into it.",
        how: "The browser's EventSource opens a text/event-stream response and fires an event for each message. When the stream breaks it reconnects by itself and sends Last-Event-ID, so the server resumes exactly where it stopped — unless that reconnection is answered with an error: then it gives up for good (readyState CLOSED), and only a new EventSource helps.",
        pros: "Push over plain HTTP; when a stream drops, reconnection and resume are built into the browser.",
        cons: "One direction only (sending is still a POST), text only, and over HTTP/1.1 each stream occupies one of the browser's six connections to the server.",
        watch: "One line with ticks, like a WebSocket. Switch the lab's outage on and watch readyState: the server ends the stream, the browser reconnects by itself (CONNECTING), is refused with a 503 and gives up (CLOSED). From then on it is this page's own code that opens a new EventSource, after a back-off.",
        bytes_note: "Bytes received: each event as the server wrote it (its id:, event: and data: lines, plus the chunked encoding's framing) and each stream's response head, counted as 300 B as Resource Timing counts heads; keep-alive comments are invisible to the page. Sent: your POSTs, their heads estimated.",
        timed: false,
        naive: false,
        holds: false,
        extra: true,
    },
];

/// What the frame of every page (`templates/base.html`: the header's
/// account form, or who is signed in) needs to know about the browser
/// asking.
pub struct Frame {
    /// The signed-in account, if the request carried a live session.
    pub account: Option<SignedInAs>,
    /// `--accounts-required`: guests read but cannot write, and the header
    /// says so.
    pub accounts_required: bool,
}

/// The account a page was rendered for.
pub struct SignedInAs {
    /// The account's name, as it was registered.
    pub name: String,
    /// Student or teacher.
    pub role: Role,
}

impl Frame {
    /// The frame for `peer`'s request.
    fn of(peer: &Peer, state: &AppState) -> Frame {
        Frame {
            account: peer.session.as_ref().map(|session| SignedInAs {
                name: session.name.to_string(),
                role: session.role,
            }),
            accounts_required: state.config.accounts_required,
        }
    }

    /// True when the page is rendered for the teacher's session.
    fn is_teacher(&self) -> bool {
        self.account
            .as_ref()
            .is_some_and(|a| a.role == Role::Teacher)
    }
}

/// What the shared document's page over one transport reads and sends
/// with: the same transport files as the chat, pointed at the document's
/// log (`assets/js/transports/logs.js`).
pub struct DocMode {
    /// The transport's slug, as in [`MODES`].
    pub slug: &'static str,
    /// The endpoint its operations are read from.
    pub reads: &'static str,
    /// How its edits reach the server, in words.
    pub sends: &'static str,
}

/// The document's five transports, in the lesson's order (as [`MODES`]).
pub const DOC_MODES: [DocMode; 5] = [
    DocMode {
        slug: "interval",
        reads: "GET /api/doc/ops",
        sends: "POST /api/doc/ops",
    },
    DocMode {
        slug: "timeout",
        reads: "GET /api/doc/ops",
        sends: "POST /api/doc/ops",
    },
    DocMode {
        slug: "longpoll",
        reads: "GET /api/doc/longpoll",
        sends: "POST /api/doc/ops",
    },
    DocMode {
        slug: "websocket",
        reads: "GET /api/doc/ws (Upgrade)",
        sends: "frames on the same socket",
    },
    DocMode {
        slug: "sse",
        reads: "GET /api/doc/events",
        sends: "POST /api/doc/ops",
    },
];

/// `/`
#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    page: &'static str,
    title: &'static str,
    frame: Frame,
    modes: &'static [Mode],
}

/// `/interval`, `/timeout`, `/longpoll`, `/websocket`, `/sse`
#[derive(Template)]
#[template(path = "mode.html")]
struct ModePage {
    page: &'static str,
    title: &'static str,
    frame: Frame,
    mode: &'static Mode,
    /// Where it stands in the lesson, for "mode N of 5" and "previous / next".
    place: Place,
    /// The naive code next to the real module (the setInterval page).
    code: Option<&'static CodePair>,
}

/// A mode's place in the lesson (the order of [`MODES`]): the chat's and
/// the document's page of a mode both say "mode N of 5" and link to the
/// modes before and after it.
struct Place {
    /// Index into [`MODES`] (and [`DOC_MODES`]).
    index: usize,
    /// 1-based, for people.
    number: usize,
    previous: Option<&'static Mode>,
    next: Option<&'static Mode>,
}

impl Place {
    /// The mode whose slug is `slug`, if there is one.
    fn of(slug: &str) -> Option<(&'static Mode, Place)> {
        let index = MODES.iter().position(|m| m.slug == slug)?;
        let place = Place {
            index,
            number: index + 1,
            previous: index.checked_sub(1).map(|i| &MODES[i]),
            next: MODES.get(index + 1),
        };
        Some((&MODES[index], place))
    }
}

/// `/websocket/echo`
#[derive(Template)]
#[template(path = "echo.html")]
struct EchoPage {
    page: &'static str,
    title: &'static str,
    frame: Frame,
}

/// `/compare`
#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    page: &'static str,
    title: &'static str,
    frame: Frame,
    modes: &'static [Mode],
}

/// `/dashboard`
#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    page: &'static str,
    title: &'static str,
    frame: Frame,
    modes: &'static [Mode],
    /// `--teacher NAME`: the name the dashboard offers to create the
    /// teacher's account under (with the token).
    teacher: Option<String>,
    /// Rendered for the teacher's session: the lab starts unlocked.
    teacher_session: bool,
}

/// `/doc/interval`, `/doc/timeout`, `/doc/longpoll`, `/doc/websocket`, `/doc/sse`
#[derive(Template)]
#[template(path = "doc.html")]
struct DocPage {
    page: &'static str,
    title: &'static str,
    frame: Frame,
    mode: &'static Mode,
    doc_mode: &'static DocMode,
    /// Where it stands in the lesson.
    place: Place,
}

/// `/doc/compare`
#[derive(Template)]
#[template(path = "doc_compare.html")]
struct DocComparePage {
    page: &'static str,
    title: &'static str,
    frame: Frame,
    modes: &'static [Mode],
}

/// `/doc/history`
#[derive(Template)]
#[template(path = "doc_history.html")]
struct DocHistoryPage {
    page: &'static str,
    title: &'static str,
    frame: Frame,
}

/// The friendly 404.
#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage<'a> {
    page: &'static str,
    title: &'static str,
    frame: Frame,
    path: &'a str,
}

/// Page routes. Registered after `/api` (see [`crate::server::routes`]), so
/// the catch-all here only sees paths the API did not claim.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/assets")
            // no-cache is not "do not cache": the browser keeps the file but
            // revalidates it (ETag) on every load, so an edit shows on reload.
            .wrap(security_headers().add((header::CACHE_CONTROL, "no-cache")))
            .service(
                Files::new("/", ASSETS_DIR)
                    .prefer_utf8(true)
                    // Files only: a directory gets the friendly 404 too,
                    // not actix-files' plain-text refusal.
                    .path_filter(|path, _| std::path::Path::new(ASSETS_DIR).join(path).is_file())
                    .default_handler(web::to(not_found)),
            ),
    )
    .service(
        web::scope("")
            .wrap(security_headers())
            .route("/", read().to(index))
            .route("/compare", read().to(compare))
            .route("/dashboard", read().to(dashboard))
            .route("/websocket/echo", read().to(echo))
            // The document's pages, before `/doc/{mode}` claims every name.
            .route("/doc", read().to(doc_home))
            .route("/doc/compare", read().to(doc_compare))
            .route("/doc/history", read().to(doc_history))
            .route("/doc/{mode}", read().to(doc_mode))
            .route("/{mode}", read().to(mode))
            .default_service(web::to(not_found)),
    );
}

/// GET, and HEAD (the same answer without its body, which actix drops).
fn read() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// The headers every page (and asset) carries: the CSP above; `nosniff`, so
/// a browser never guesses that a text file is a script; and no `Referer`,
/// so a student's URL never leaks to another site.
fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
}

/// Renders a template as an HTML answer with `status`.
fn html(status: actix_web::http::StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type(ContentType::html())
            // Pages are tiny and change with every deploy; never serve a stale
            // one. `private`: a page names the account it was rendered for,
            // so no shared cache (a school's proxy) may keep it for others.
            .insert_header((header::CACHE_CONTROL, "no-cache, private"))
            .body(body),
        // Rendering only fails if a value's Display fails, which ours cannot;
        // still, answer instead of panicking.
        Err(err) => {
            tracing::error!(%err, "template failed to render");
            HttpResponse::InternalServerError()
                .content_type(ContentType::plaintext())
                .body("the page could not be rendered")
        }
    }
}

async fn index(peer: Peer, state: web::Data<AppState>) -> HttpResponse {
    html(
        actix_web::http::StatusCode::OK,
        &IndexPage {
            page: "index",
            title: "Weebsockets — real-time on the web, five ways",
            frame: Frame::of(&peer, &state),
            modes: &MODES,
        },
    )
}

async fn mode(
    req: HttpRequest,
    peer: Peer,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> HttpResponse {
    let Some((mode, place)) = Place::of(&slug) else {
        return not_found(req, peer, state).await;
    };
    html(
        actix_web::http::StatusCode::OK,
        &ModePage {
            page: mode.slug,
            title: mode.name,
            frame: Frame::of(&peer, &state),
            mode,
            place,
            code: (mode.slug == "interval").then_some(&INTERVAL_CODE),
        },
    )
}

async fn echo(peer: Peer, state: web::Data<AppState>) -> HttpResponse {
    html(
        actix_web::http::StatusCode::OK,
        &EchoPage {
            page: "websocket",
            title: "WebSocket echo",
            frame: Frame::of(&peer, &state),
        },
    )
}

async fn compare(peer: Peer, state: web::Data<AppState>) -> HttpResponse {
    html(
        actix_web::http::StatusCode::OK,
        &ComparePage {
            page: "compare",
            title: "All five, side by side",
            frame: Frame::of(&peer, &state),
            modes: &MODES,
        },
    )
}

async fn dashboard(peer: Peer, state: web::Data<AppState>) -> HttpResponse {
    let frame = Frame::of(&peer, &state);
    let teacher_session = frame.is_teacher();
    html(
        actix_web::http::StatusCode::OK,
        &DashboardPage {
            page: "dashboard",
            title: "Teacher's dashboard",
            frame,
            modes: &MODES,
            teacher: state.config.teacher.clone(),
            teacher_session,
        },
    )
}

/// `/doc`: the document's projector view is where a class starts.
async fn doc_home() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/doc/compare"))
        .finish()
}

async fn doc_mode(
    req: HttpRequest,
    peer: Peer,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> HttpResponse {
    let Some((mode, place)) = Place::of(&slug) else {
        return not_found(req, peer, state).await;
    };
    html(
        actix_web::http::StatusCode::OK,
        &DocPage {
            page: "doc",
            title: "The shared document",
            frame: Frame::of(&peer, &state),
            mode,
            doc_mode: &DOC_MODES[place.index],
            place,
        },
    )
}

async fn doc_compare(peer: Peer, state: web::Data<AppState>) -> HttpResponse {
    html(
        actix_web::http::StatusCode::OK,
        &DocComparePage {
            page: "doc",
            title: "The shared document, five ways",
            frame: Frame::of(&peer, &state),
            modes: &MODES,
        },
    )
}

async fn doc_history(peer: Peer, state: web::Data<AppState>) -> HttpResponse {
    html(
        actix_web::http::StatusCode::OK,
        &DocHistoryPage {
            page: "doc",
            title: "The document's history",
            frame: Frame::of(&peer, &state),
        },
    )
}

/// Any path nobody serves: an HTML page that points back to the lesson.
async fn not_found(req: HttpRequest, peer: Peer, state: web::Data<AppState>) -> HttpResponse {
    html(
        actix_web::http::StatusCode::NOT_FOUND,
        &NotFoundPage {
            page: "",
            title: "Page not found",
            frame: Frame::of(&peer, &state),
            path: req.path(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document's pages follow the lesson: one per chat mode, in its order.
    #[test]
    fn the_document_has_a_page_per_transport_in_the_lessons_order() {
        let chat: Vec<_> = MODES.iter().map(|m| m.slug).collect();
        let doc: Vec<_> = DOC_MODES.iter().map(|m| m.slug).collect();
        assert_eq!(chat, doc);
    }
}
