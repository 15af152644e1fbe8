/// The class behind one address, under the default flags (only the
/// password hashes are made cheap). Sixty students, all reaching the server
/// from the same address (a school's NAT: here, 127.0.0.1), each create an
/// account and sign in at once. Each has two tabs open, and each tab keeps
/// a WebSocket, an event stream and a held long poll — 360 long-lived
/// connections from one address. Then everybody chats at a normal pace,
/// three messages each a second and a half apart, one tab posting over
/// HTTP and the other sending on its WebSocket. Everything is accepted —
/// no `429`, no refused connection — every message carries its author's
/// account name, and every connection of every tab receives every message
/// exactly once, in order.
///
/// Before accounts, every limit was per address, and this class shared one
/// person's share: 32 WebSockets and 5 messages a second for all sixty.
use std::time::Duration;

mod common;

use common::accounts::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const STUDENTS: usize = 60;
const TABS: usize = 2;
const MESSAGES_EACH: usize = 3;
/// A brisk classroom chat: one message every 1.5 s from every student at
/// once is 40 messages a second into one room.
const PACE: Duration = Duration::from_millis(1_500);
const TOTAL: usize = STUDENTS * MESSAGES_EACH;

/// What one connection of a tab saw.
#[derive(Debug, Default)]
struct Seen {
    /// Ids of the messages received, in the order received.
    ids: Vec<u64>,
    /// Acks of its own sends (WebSocket).
    acks: usize,
    /// Anything refused: error frames, non-2xx answers.
    refusals: Vec<String>,
}

impl Seen {
    fn check(&self, what: &str) {
        assert!(self.refusals.is_empty(), "{what}: {:?}", self.refusals);
        let expected: Vec<u64> = (1..=TOTAL as u64).collect();
        assert_eq!(self.ids, expected, "{what}: every message once, in order");
    }
}

/// When the class starts chatting: set once everybody is connected.
type Go = tokio::sync::watch::Receiver<Option<Instant>>;

/// What a tab sends: each text at its time after the start.
type Sends = Vec<(Duration, String)>;

/// Waits for the start; the moments at which to send.
async fn schedule(mut go: Go, sends: Sends) -> Vec<(Instant, String)> {
    let start = go.wait_for(Option::is_some).await.unwrap().unwrap();
    sends
        .into_iter()
        .map(|(after, text)| (start + after, text))
        .collect()
}

/// A tab's WebSocket: reads everything, and sends `sends` as `send`
/// frames on the way, until it has seen every message and every ack.
async fn websocket_tab(mut ws: Ws, go: Go, sends: Sends) -> Seen {
    let mut seen = Seen::default();
    let mut sends = schedule(go, sends).await;
    let own = sends.len();
    sends.reverse();
    let deadline = Instant::now() + PATIENCE * 3;
    while seen.ids.len() < TOTAL || seen.acks < own {
        let next_send = sends.last().map(|(at, _)| *at);
        tokio::select! {
            frame = ws.stream.next() => {
                let text = match frame {
                    Some(Ok(WsMessage::Text(text))) => text,
                    Some(Ok(WsMessage::Close(reason))) => panic!("closed: {reason:?}"),
                    Some(Ok(_)) => continue,
                    other => panic!("websocket ended: {other:?}"),
                };
                let frame: Value = serde_json::from_str(&text).unwrap();
                match frame["type"].as_str() {
                    Some("message") => seen.ids.push(frame["message"]["id"].as_u64().unwrap()),
                    Some("ack") => seen.acks += 1,
                    _ => seen.refusals.push(frame.to_string()),
                }
            }
            () = tokio::time::sleep_until(next_send.unwrap_or(deadline)), if next_send.is_some() => {
                let (_, text) = sends.pop().unwrap();
                let frame = json!({"type": "send", "ref": text, "text": text});
                ws.stream
                    .send(WsMessage::Text(frame.to_string().into()))
                    .await
                    .unwrap();
            }
            () = tokio::time::sleep_until(deadline) => {
                panic!("websocket tab: {} of {TOTAL} messages, {} of {own} acks", seen.ids.len(), seen.acks)
            }
        }
    }
    seen
}

/// A tab's held long poll, asked again after every answer.
async fn long_poll_tab(browser: Browser, client: String) -> Seen {
    let mut seen = Seen::default();
    let mut cursor = 0;
    while seen.ids.len() < TOTAL {
        let answer = browser
            .get(&format!(
                "/api/longpoll?since={cursor}&timeout=20&client={client}"
            ))
            .await;
        match answer.status {
            200 => {
                for message in answer.body["messages"].as_array().unwrap() {
                    seen.ids.push(message["id"].as_u64().unwrap());
                }
                cursor = answer.body["messages"]
                    .as_array()
                    .unwrap()
                    .last()
                    .map_or(cursor, |m| m["id"].as_u64().unwrap());
            }
            204 => {}
            _ => {
                seen.refusals
                    .push(format!("{} {}", answer.status, answer.body));
                return seen;
            }
        }
    }
    seen
}

/// A tab's event stream.
async fn sse_tab(mut sse: Sse) -> Seen {
    let mut seen = Seen::default();
    for message in sse.messages(TOTAL).await {
        seen.ids.push(message["id"].as_u64().unwrap());
    }
    seen
}

/// A tab posting `sends` over HTTP, each at its time.
async fn posting_tab(mut browser: Browser, go: Go, sends: Sends) -> Seen {
    let mut seen = Seen::default();
    for (at, text) in schedule(go, sends).await {
        tokio::time::sleep_until(at).await;
        let answer = browser.post_message(json!({"text": text})).await;
        if answer.status != 201 {
            seen.refusals
                .push(format!("{} {}", answer.status, answer.body));
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_students_behind_one_address_connect_and_chat_under_default_flags() {
    raise_fd_limit();
    // Config::default's limits: only the hashes are cheap.
    let server = start_accounts(|_| {});
    let base = server.url("");
    let api = Api::new(&server);

    // Everybody signs up, then signs in, at the same moment.
    let names: Vec<String> = (0..STUDENTS).map(|i| format!("Student {i:02}")).collect();
    let browsers = futures_util::future::join_all(names.iter().map(|name| {
        let mut browser = Browser::at(&base);
        async move {
            browser.sign_up(name, PASSWORD).await.expect(201, "");
            browser.sign_in(name, PASSWORD).await.expect(200, "");
            browser
        }
    }))
    .await;

    // Two tabs each, each with a WebSocket, an event stream and a held
    // long poll, all with the session cookie and the tab's client id.
    let (go, going) = tokio::sync::watch::channel(None);
    let mut tabs = Vec::new();
    let mut connections = Vec::new();
    for (i, browser) in browsers.iter().enumerate() {
        for tab in 0..TABS {
            let client = format!("s{i}-t{tab}");
            let (ws, sse) = (
                format!("/api/ws?since=0&client={client}"),
                format!("/api/events?since=0&client={client}"),
            );
            connections.push(async move { (browser.ws(&ws).await, browser.sse(&sse).await) });
            tabs.push((i, tab, client));
        }
    }
    let opened = futures_util::future::join_all(connections).await;

    let mut tasks = Vec::new();
    for ((i, tab, client), (ws, sse)) in tabs.into_iter().zip(opened) {
        let mut ws = ws.unwrap_or_else(|(status, body)| panic!("tab {client}: {status} {body}"));
        ws.next_of("welcome").await;
        let browser = browsers[i].clone();
        // Student i's k-th message goes k × PACE after the start (plus a
        // stagger, so the class is not in lockstep), from tab k % 2.
        let sends: Sends = (0..MESSAGES_EACH)
            .filter(|k| k % TABS == tab)
            .map(|k| {
                let after = PACE * k as u32 + PACE * i as u32 / STUDENTS as u32;
                (after, format!("message {k} from {}", names[i]))
            })
            .collect();
        let (ws_sends, post_sends) = if tab == 1 {
            (sends, Vec::new())
        } else {
            (Vec::new(), sends)
        };
        let what = format!("{}, tab {tab}", names[i]);
        tasks.push((
            format!("{what}: WebSocket"),
            tokio::spawn(websocket_tab(ws, going.clone(), ws_sends)),
        ));
        tasks.push((format!("{what}: event stream"), tokio::spawn(sse_tab(sse))));
        tasks.push((
            format!("{what}: long poll"),
            tokio::spawn(long_poll_tab(browser.clone(), client)),
        ));
        tasks.push((
            format!("{what}: posts"),
            tokio::spawn(posting_tab(browser, going.clone(), post_sends)),
        ));
    }
    // All 360 are open (the long polls held) before anyone says anything.
    api.wait_for_stats("every tab's connections open", |s| {
        let open = |t: &str| s["transports"][t]["open"].as_u64().unwrap_or(0);
        open("websocket") == (STUDENTS * TABS) as u64
            && open("sse") == (STUDENTS * TABS) as u64
            && open("longpoll") == (STUDENTS * TABS) as u64
    })
    .await;
    go.send_replace(Some(Instant::now()));

    for (what, task) in tasks {
        let seen = task.await.unwrap();
        if what.ends_with("posts") {
            assert!(seen.refusals.is_empty(), "{what}: {:?}", seen.refusals);
        } else {
            seen.check(&what);
        }
    }

    // Each message is its author's, signed.
    let log = api.all_since(0).await;
    assert_eq!(log.len(), TOTAL);
    for name in &names {
        let own: Vec<&Value> = log.iter().filter(|m| m["author"] == **name).collect();
        assert_eq!(own.len(), MESSAGES_EACH, "{name}");
        assert!(own.iter().all(|m| m["account"] == true), "{name}");
    }
    let stats = api.stats().await;
    assert_eq!(stats["room"]["posts_rate_limited"], 0, "{stats}");
    assert_eq!(stats["room"]["posts_rejected"], 0, "{stats}");
    for transport in ["websocket", "sse", "longpoll"] {
        assert_eq!(stats["transports"][transport]["errors"], 0, "{stats}");
    }
}
