/// A class editing the shared document at once, simulated: 30 editors, six
/// on each transport (setInterval polling, setTimeout polling, long
/// polling, WebSocket, SSE), each making 200 random edits through the
/// three-state client (`weebsockets::ot::client::Client`) against the real
/// server. Edits go out by `POST` (over the WebSocket as `op` frames), at
/// random moments. The network misbehaves on purpose: interval answers are
/// delayed at random on the client side, so they arrive out of order (the
/// client still applies the log in rev order, holding what came early);
/// some POST answers are cut off (the request aborted, stored or not) and
/// some WebSocket frames never sent, so the client resends its operation in
/// flight — same `seq` — after a timeout; WebSockets, event streams and
/// held long polls are dropped at random and reopened from the editor's
/// cursor.
///
/// Every inserted character is a code point no other insert uses (CJK and
/// astral CJK, so UTF-16 surrogate pairs too), which gives each character
/// an identity. At the end: every editor has the server's text and
/// revision; the log holds exactly one operation per `(client, seq)`, and
/// for each editor exactly the seqs it submitted; every answer the server
/// gave matches the log; no character is there twice or out of nowhere; and
/// a character is in the final text exactly when nobody deleted it.
///
/// Seeded: the seed is printed, `WEEBSOCKETS_SEED=<seed>` replays the same
/// edits, delays and faults (the interleaving is the machine's own).
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::editors::*;
use common::traces::Rng;
use common::*;
use futures_util::SinkExt;
use futures_util::stream::{SplitSink, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use weebsockets::ot::Operation;
use weebsockets::ot::client::{Client, Received, Stored, Submission};

const EDITORS: usize = 30;
const EDITS: usize = 200;
/// The most time between two edits of one editor (uniform from 0).
const MAX_PAUSE_MS: u64 = 25;
/// How often the setInterval editors poll, and the setTimeout editors
/// wait between polls.
const POLL_EVERY: Duration = Duration::from_millis(25);
/// An interval answer is held back up to this long on the client side, so
/// that answers overtake each other.
const MAX_ANSWER_DELAY_MS: u64 = 60;
/// An operation in flight that has not come back in the log after this
/// long is sent again, with the same `seq`. Impatient on purpose: often
/// the first send was stored and is only slow to come back through a
/// poll, so the server must recognise the resend.
const RESEND_AFTER: Duration = Duration::from_millis(100);
/// Code points reserved for each editor's inserts.
const CHARS_PER_EDITOR: usize = 1_200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Interval,
    Timeout,
    LongPoll,
    WebSocket,
    Sse,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Interval,
        Kind::Timeout,
        Kind::LongPoll,
        Kind::WebSocket,
        Kind::Sse,
    ];

    /// The `via` of the editor's page.
    fn via(self) -> &'static str {
        match self {
            Kind::Interval => "interval",
            Kind::Timeout => "timeout",
            Kind::LongPoll => "longpoll",
            Kind::WebSocket => "websocket",
            Kind::Sse => "sse",
        }
    }
}

/// The `n`th code point of editor `editor`: CJK ideographs, alternately
/// from the Basic Multilingual Plane (one UTF-16 unit) and from Extension
/// B (two: a surrogate pair). No two editors, no two inserts share one.
fn unique_char(editor: usize, n: usize) -> char {
    assert!(
        n < CHARS_PER_EDITOR,
        "editor {editor} ran out of characters"
    );
    let j = (editor * CHARS_PER_EDITOR + n) as u32;
    let code = if j.is_multiple_of(2) {
        0x4E00 + j / 2
    } else {
        0x2_0000 + j / 2
    };
    assert!(code <= 0x9FFF || (0x2_0000..=0x2_A6DF).contains(&code));
    char::from_u32(code).unwrap()
}

/// What the faults and the protocol did, over all editors.
#[derive(Default)]
struct Counts {
    submissions: AtomicU64,
    resends: AtomicU64,
    answers_cut_off: AtomicU64,
    frames_lost: AtomicU64,
    reconnects: AtomicU64,
    long_polls_dropped: AtomicU64,
    /// Polls the network (or an overloaded server: `408`) dropped; the
    /// reader asks again, as a browser would.
    polls_dropped: AtomicU64,
    interval_answers_reordered: AtomicU64,
    duplicates_received: AtomicU64,
    transformed_on_arrival: AtomicU64,
}

/// What every editor shares.
struct Shared {
    api: Api,
    counts: Counts,
    /// Every character inserted, and every character some editor deleted.
    inserted: Mutex<HashSet<char>>,
    deleted: Mutex<HashSet<char>>,
    /// Answers to POSTs: (client, seq, status, body); acks on WebSockets:
    /// (client, seq, rev).
    answers: Mutex<Vec<(String, u64, u16, Value)>>,
    acks: Mutex<Vec<(String, u64, u64)>>,
    /// Anything that must not happen (an error answer, an error frame).
    problems: Mutex<Vec<String>>,
    /// Editors done: all edits made, and nothing of theirs pending.
    done: AtomicU64,
}

impl Shared {
    fn problem(&self, what: String) {
        self.problems.lock().unwrap().push(what);
    }
}

/// What an editor ends with.
struct Report {
    id: String,
    kind: Kind,
    text: String,
    rev: u64,
    state: &'static str,
    /// The seq of every operation it submitted (first sends, not resends).
    seqs: Vec<u64>,
    /// The revision each was made at, by seq.
    made_at: HashMap<u64, u64>,
}

/// An open WebSocket of an editor: the sending half, and the task reading
/// the other half into the editor's inbox.
struct WsLink {
    sink: SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, WsMessage>,
    reader: JoinHandle<()>,
}

/// One editor: a tab with the document open on one transport.
struct Editor {
    index: usize,
    id: String,
    kind: Kind,
    shared: Arc<Shared>,
    rng: Rng,
    client: Client,
    /// The client's revision, for the readers to poll from.
    cursor: Arc<AtomicU64>,
    /// Where readers put the stored operations they get.
    tx: mpsc::UnboundedSender<Stored>,
    /// Operations that arrived ahead of a gap, by rev.
    early: BTreeMap<u64, Stored>,
    ws: Option<WsLink>,
    chars_used: usize,
    seqs: Vec<u64>,
    made_at: HashMap<u64, u64>,
    resend_at: Option<Instant>,
}

impl Editor {
    /// A random edit of the local text: insert fresh characters, delete
    /// some, or both at one place.
    fn random_edit(&mut self) -> Operation {
        let len = self.client.doc().len_chars();
        let roll = self.rng.below(100);
        let (delete, insert) = if len == 0 || roll < 55 {
            (0, 1 + self.rng.below(3))
        } else if roll < 85 {
            (1 + self.rng.below(len.min(3)), 0)
        } else {
            (1 + self.rng.below(len.min(2)), 1 + self.rng.below(2))
        };
        let pos = self.rng.below(len - delete + 1);
        let text: String = (0..insert)
            .map(|_| {
                self.chars_used += 1;
                unique_char(self.index, self.chars_used - 1)
            })
            .collect();
        self.shared.inserted.lock().unwrap().extend(text.chars());
        let gone = self.client.doc().slice(pos..pos + delete).chars();
        self.shared.deleted.lock().unwrap().extend(gone);
        Operation::from_patch(len, pos, delete, &text).unwrap()
    }

    /// Sends a submission the way this editor's page does, with the
    /// network's faults.
    async fn send(&mut self, submission: Submission) {
        self.resend_at = Some(Instant::now() + RESEND_AFTER);
        if self.kind == Kind::WebSocket {
            return self.send_frame(submission).await;
        }
        let mut body = submission_body(&submission);
        body["via"] = json!(self.kind.via());
        let shared = Arc::clone(&self.shared);
        // One POST in ten loses its answer: the request is abandoned after
        // a few milliseconds, before or after the server stored it.
        let cut_off = self.rng.percent(10).then(|| self.rng.pause_below(6));
        tokio::spawn(async move {
            let post = request(&shared.api, reqwest::Method::POST, "/api/doc/ops", &body);
            match cut_off {
                Some(patience) => {
                    shared.counts.answers_cut_off.fetch_add(1, Relaxed);
                    let _ = tokio::time::timeout(patience, post).await;
                }
                None => {
                    let answer = post.await;
                    if ![200, 201].contains(&answer.status) {
                        shared.problem(format!("{body}: {} {}", answer.status, answer.body));
                    }
                    shared.answers.lock().unwrap().push((
                        submission.client,
                        submission.seq,
                        answer.status,
                        answer.body,
                    ));
                }
            }
        });
    }

    /// An `op` frame on the WebSocket: one in twenty is lost (never sent),
    /// one in twenty is sent just before the connection drops (so its ack
    /// is lost), and a failed send means the connection is gone.
    async fn send_frame(&mut self, submission: Submission) {
        if self.rng.percent(5) {
            self.shared.counts.frames_lost.fetch_add(1, Relaxed);
            return;
        }
        let frame = op_frame(submission.seq, &submission).to_string();
        let link = self.ws.as_mut().expect("a WebSocket editor is connected");
        let sent = link.sink.send(WsMessage::Text(frame.into())).await.is_ok();
        if !sent || self.rng.percent(5) {
            self.reconnect().await;
        }
    }

    /// Drops the WebSocket and opens a new one from the client's revision;
    /// then resends the operation in flight, as a page does on reconnect.
    async fn reconnect(&mut self) {
        if let Some(link) = self.ws.take() {
            link.reader.abort();
        }
        self.shared.counts.reconnects.fetch_add(1, Relaxed);
        self.ws = Some(open_ws(&self.shared, &self.id, self.client.rev(), self.tx.clone()).await);
        if let Some(submission) = self.client.resend() {
            self.shared.counts.resends.fetch_add(1, Relaxed);
            Box::pin(self.send(submission)).await;
        }
    }

    /// Takes a stored operation from a reader: applies it and whatever it
    /// unblocks, strictly in rev order.
    async fn take(&mut self, stored: Stored) {
        if stored.rev <= self.client.rev() || self.early.contains_key(&stored.rev) {
            self.shared.counts.duplicates_received.fetch_add(1, Relaxed);
            return;
        }
        self.early.insert(stored.rev, stored);
        while let Some(next) = self.early.remove(&(self.client.rev() + 1)) {
            let busy = self.client.state_name() != "synchronized";
            match self.client.receive(&next) {
                Ok(Received::Acknowledged { send }) => {
                    self.resend_at = None;
                    if let Some(submission) = send {
                        self.submitted(submission).await;
                    }
                }
                Ok(Received::Applied(_)) => {
                    if busy {
                        self.shared
                            .counts
                            .transformed_on_arrival
                            .fetch_add(1, Relaxed);
                    }
                }
                Ok(Received::Duplicate) => unreachable!("only the next rev is taken"),
                Err(err) => panic!("{}: {err}", self.id),
            }
        }
        self.cursor.store(self.client.rev(), Relaxed);
    }

    /// A new submission from the client (not a resend).
    async fn submitted(&mut self, submission: Submission) {
        self.seqs.push(submission.seq);
        self.made_at.insert(submission.seq, submission.rev);
        self.shared.counts.submissions.fetch_add(1, Relaxed);
        self.send(submission).await;
    }

    /// The editor's life: readers started, 200 edits at random moments,
    /// resends when an operation does not come back, and reading on until
    /// the document stops changing (`last` says where that is).
    async fn run(
        mut self,
        mut inbox: mpsc::UnboundedReceiver<Stored>,
        mut last: watch::Receiver<Option<u64>>,
    ) -> Report {
        let mut readers = Vec::new();
        let start = self.client.rev();
        let rng = self.rng.fork();
        let (shared, cursor, tx) = (
            Arc::clone(&self.shared),
            Arc::clone(&self.cursor),
            self.tx.clone(),
        );
        match self.kind {
            Kind::Interval => readers.push(tokio::spawn(interval_reader(shared, cursor, tx, rng))),
            Kind::Timeout => readers.push(tokio::spawn(timeout_reader(shared, cursor, tx))),
            Kind::LongPoll => readers.push(tokio::spawn(long_poll_reader(shared, cursor, tx, rng))),
            Kind::Sse => readers.push(tokio::spawn(sse_reader(shared, start, tx, rng))),
            Kind::WebSocket => {
                self.ws = Some(open_ws(&self.shared, &self.id, start, self.tx.clone()).await);
            }
        }
        let mut edits_left = EDITS;
        let mut next_edit = Instant::now() + self.rng.pause_below(MAX_PAUSE_MS);
        let mut health = tokio::time::interval(Duration::from_millis(200));
        let mut done = false;
        loop {
            if !done && edits_left == 0 && self.client.state_name() == "synchronized" {
                done = true;
                self.shared.done.fetch_add(1, Relaxed);
            }
            if last.borrow().is_some_and(|last| self.client.rev() >= last) {
                break;
            }
            let resend_at = self.resend_at;
            tokio::select! {
                Some(stored) = inbox.recv() => self.take(stored).await,
                _ = tokio::time::sleep_until(next_edit), if edits_left > 0 => {
                    edits_left -= 1;
                    next_edit = Instant::now() + self.rng.pause_below(MAX_PAUSE_MS);
                    let op = self.random_edit();
                    if let Some(submission) = self.client.edit(op).unwrap() {
                        self.submitted(submission).await;
                    }
                    if self.kind == Kind::WebSocket && self.rng.percent(3) {
                        self.reconnect().await;
                    }
                }
                _ = tokio::time::sleep_until(resend_at.unwrap_or_else(Instant::now)), if resend_at.is_some() => {
                    match self.client.resend() {
                        Some(submission) => {
                            self.shared.counts.resends.fetch_add(1, Relaxed);
                            self.send(submission).await;
                        }
                        None => self.resend_at = None,
                    }
                }
                // A WebSocket the server closed (it should not) is reopened.
                _ = health.tick() => {
                    if self.ws.as_ref().is_some_and(|link| link.reader.is_finished()) {
                        self.shared.problem(format!("{}: the server closed the WebSocket", self.id));
                        self.reconnect().await;
                    }
                }
                _ = last.changed() => {}
            }
        }
        for reader in readers {
            reader.abort();
        }
        if let Some(link) = self.ws.take() {
            link.reader.abort();
        }
        Report {
            id: self.id,
            kind: self.kind,
            text: self.client.text(),
            rev: self.client.rev(),
            state: self.client.state_name(),
            seqs: self.seqs,
            made_at: self.made_at,
        }
    }
}

/// Opens `/api/doc/ws?since=R` and starts a task that puts every `op`
/// frame in the inbox and notes every `ack` (and any `error`).
async fn open_ws(
    shared: &Arc<Shared>,
    id: &str,
    since: u64,
    tx: mpsc::UnboundedSender<Stored>,
) -> WsLink {
    let url = doc_ws_url(&shared.api, since);
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the WebSocket opens");
    let (sink, mut stream) = ws.split();
    let (shared, id) = (Arc::clone(shared), id.to_owned());
    let reader = tokio::spawn(async move {
        while let Some(Ok(frame)) = stream.next().await {
            let WsMessage::Text(text) = frame else {
                continue;
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            match frame["type"].as_str() {
                Some("op") => {
                    let _ = tx.send(stored(&frame));
                }
                Some("ack") => {
                    let seq = frame["ref"].as_u64().unwrap();
                    let rev = frame["rev"].as_u64().unwrap();
                    shared.acks.lock().unwrap().push((id.clone(), seq, rev));
                }
                Some("welcome") => {}
                _ => shared.problem(format!("{id}: {frame}")),
            }
        }
    });
    WsLink { sink, reader }
}

/// Puts the operations of a polling answer in the inbox.
fn deliver(page: &Value, tx: &mpsc::UnboundedSender<Stored>) {
    for op in page["ops"].as_array().into_iter().flatten() {
        let _ = tx.send(stored(op));
    }
}

/// setInterval: a GET every 25 ms whether or not the last one came back,
/// each answer held back a random time, so that later answers overtake
/// earlier ones (counted when it happens).
async fn interval_reader(
    shared: Arc<Shared>,
    cursor: Arc<AtomicU64>,
    tx: mpsc::UnboundedSender<Stored>,
    mut rng: Rng,
) {
    let newest_delivered = Arc::new(AtomicU64::new(0));
    let mut tick = tokio::time::interval(POLL_EVERY);
    for n in 1.. {
        tick.tick().await;
        let path = format!(
            "/api/doc/ops?since={}&transport=interval&seq={n}",
            cursor.load(Relaxed)
        );
        let delay = rng.pause_below(MAX_ANSWER_DELAY_MS);
        let (shared, tx, newest) = (
            Arc::clone(&shared),
            tx.clone(),
            Arc::clone(&newest_delivered),
        );
        tokio::spawn(async move {
            let Some((status, page)) = poll_answer(&shared, &path).await else {
                return;
            };
            tokio::time::sleep(delay).await;
            if status != 200 {
                return shared.problem(format!("{path}: {status} {page}"));
            }
            if newest.fetch_max(n, Relaxed) > n {
                shared
                    .counts
                    .interval_answers_reordered
                    .fetch_add(1, Relaxed);
            }
            deliver(&page, &tx);
        });
    }
}

/// A poll's answer, or `None` when it never came: the connection was closed
/// under it, or the server answered `408` (it could not read the request in
/// time — a machine busy with other work gets there). A browser's page sees
/// the same as a failed request and asks again; so do these readers.
async fn poll_answer(shared: &Shared, path: &str) -> Option<(u16, Value)> {
    let answer = shared.api.http.get(shared.api.url(path)).send().await;
    let answer = match answer {
        Ok(response) if response.status() != 408 => response,
        _ => {
            shared.counts.polls_dropped.fetch_add(1, Relaxed);
            return None;
        }
    };
    let status = answer.status().as_u16();
    let page = match answer.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(_) => {
            shared.counts.polls_dropped.fetch_add(1, Relaxed);
            return None;
        }
    };
    Some((status, page))
}

/// setTimeout: the next GET 25 ms after the last answer.
async fn timeout_reader(
    shared: Arc<Shared>,
    cursor: Arc<AtomicU64>,
    tx: mpsc::UnboundedSender<Stored>,
) {
    loop {
        let path = format!(
            "/api/doc/ops?since={}&transport=timeout",
            cursor.load(Relaxed)
        );
        if let Some((status, page)) = poll_answer(&shared, &path).await {
            if status != 200 {
                shared.problem(format!("{path}: {status} {page}"));
            }
            deliver(&page, &tx);
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Long polling from the cursor, with holds of 1 to 3 s; now and then the
/// client gives up on a poll (a tab put to sleep, a flaky network) and
/// asks again.
async fn long_poll_reader(
    shared: Arc<Shared>,
    cursor: Arc<AtomicU64>,
    tx: mpsc::UnboundedSender<Stored>,
    mut rng: Rng,
) {
    loop {
        let path = format!(
            "/api/doc/longpoll?since={}&timeout={}",
            cursor.load(Relaxed),
            1 + rng.below(3)
        );
        // One poll in ten is abandoned within 5 ms, held or not.
        let patience = match rng.percent(10) {
            true => rng.pause_below(6),
            false => PATIENCE,
        };
        match tokio::time::timeout(patience, poll_answer(&shared, &path)).await {
            Err(_) => {
                shared.counts.long_polls_dropped.fetch_add(1, Relaxed);
            }
            Ok(None) => {}
            Ok(Some((200, page))) => deliver(&page, &tx),
            Ok(Some((204, _))) => {}
            Ok(Some((status, page))) => shared.problem(format!("{path}: {status} {page}")),
        }
    }
}

/// An event stream, dropped now and then and reopened as `EventSource`
/// does: with `Last-Event-ID`, the id of the last event it got.
async fn sse_reader(
    shared: Arc<Shared>,
    start: u64,
    tx: mpsc::UnboundedSender<Stored>,
    mut rng: Rng,
) {
    let mut last_id = start;
    let url = shared.api.url("/api/doc/events");
    loop {
        let mut events = Sse::connect_url(&url, Some(&last_id.to_string())).await;
        while let Some(event) = events.next().await {
            if event.event.as_deref() != Some("op") {
                continue;
            }
            let op: Value = serde_json::from_str(&event.data).unwrap();
            last_id = event.id.unwrap().parse().unwrap();
            let _ = tx.send(stored(&op));
            if rng.percent(2) {
                break;
            }
        }
        shared.counts.reconnects.fetch_add(1, Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_editors_on_five_transports_converge_and_lose_nothing() {
    let seed = seed("thirty_editors_on_five_transports");
    let mut rng = Rng::new(seed);
    let server = start_with(|c| c.no_limits = true);
    let shared = Arc::new(Shared {
        api: Api::new(&server),
        counts: Counts::default(),
        inserted: Mutex::default(),
        deleted: Mutex::default(),
        answers: Mutex::default(),
        acks: Mutex::default(),
        problems: Mutex::default(),
        done: AtomicU64::new(0),
    });
    let started = std::time::Instant::now();
    let (last_tx, last_rx) = watch::channel(None);
    let mut editors = Vec::new();
    for index in 0..EDITORS {
        let kind = Kind::ALL[index % Kind::ALL.len()];
        let id = format!("ed{index:02}-{}", kind.via());
        let (rev, text) = document(&shared.api).await;
        let (tx, inbox) = mpsc::unbounded_channel();
        let editor = Editor {
            index,
            id: id.clone(),
            kind,
            shared: Arc::clone(&shared),
            rng: rng.fork(),
            client: Client::new(id, rev, &text, 0),
            cursor: Arc::new(AtomicU64::new(rev)),
            tx,
            early: BTreeMap::new(),
            ws: None,
            chars_used: 0,
            seqs: Vec::new(),
            made_at: HashMap::new(),
            resend_at: None,
        };
        editors.push(tokio::spawn(editor.run(inbox, last_rx.clone())));
    }

    // Everyone has typed everything and has nothing pending: the document
    // stops changing. Then everyone reads up to its last revision.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while shared.done.load(Relaxed) < EDITORS as u64 {
        if let Some(ended) = editors.iter().position(|e| e.is_finished()) {
            let ended = editors.swap_remove(ended).await;
            panic!(
                "an editor ended before the others had finished: {:?}",
                ended.err()
            );
        }
        if std::time::Instant::now() > deadline {
            let problems = shared.problems.lock().unwrap().clone();
            panic!(
                "only {} of {EDITORS} editors finished; problems: {problems:?}",
                shared.done.load(Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (last, text) = document(&shared.api).await;
    last_tx.send(Some(last)).unwrap();
    let mut reports = Vec::new();
    for editor in editors {
        reports.push(
            tokio::time::timeout(PATIENCE, editor)
                .await
                .expect("editors catch up")
                .unwrap(),
        );
    }
    let took = started.elapsed();
    assert_eq!(
        document(&shared.api).await,
        (last, text.clone()),
        "nothing changed after the end"
    );
    let problems = shared.problems.lock().unwrap().clone();
    assert!(problems.is_empty(), "{problems:#?}");

    // Every editor has the server's text.
    for report in &reports {
        assert_eq!(
            (report.rev, report.state),
            (last, "synchronized"),
            "{}",
            report.id
        );
        assert!(
            report.text == text,
            "{} ({:?}) has the server's text",
            report.id,
            report.kind
        );
    }

    // The log: the text's replay; one op per (client, seq); per editor,
    // exactly the seqs it submitted.
    let ops = ops_since(&shared.api, 0).await;
    assert_eq!(ops.len() as u64, last);
    assert!(replay_log(&ops) == text, "the log replays to the text");
    let mut by_client: HashMap<String, Vec<u64>> = HashMap::new();
    for op in &ops {
        by_client
            .entry(op["client"].as_str().unwrap().to_owned())
            .or_default()
            .push(op["seq"].as_u64().unwrap());
    }
    for report in &reports {
        let mut logged = by_client.remove(&report.id).unwrap_or_default();
        logged.sort_unstable();
        assert_eq!(
            logged, report.seqs,
            "{}: each submission stored once",
            report.id
        );
    }
    assert!(
        by_client.is_empty(),
        "ops by nobody: {:?}",
        by_client.keys()
    );

    // Every answer and every ack names the revision the log has.
    let at = |rev: u64| &ops[(rev - 1) as usize];
    let answers = shared.answers.lock().unwrap().clone();
    let resends_recognised = answers
        .iter()
        .filter(|(.., status, _)| *status == 200)
        .count();
    for (client, seq, _, body) in &answers {
        let stored = at(body["rev"].as_u64().unwrap());
        assert_eq!(
            (&stored["client"], &stored["seq"]),
            (&json!(client), &json!(seq))
        );
        assert_eq!(stored["op"], body["op"], "the answer is the stored op");
    }
    for (client, seq, rev) in shared.acks.lock().unwrap().iter() {
        assert_eq!(
            (&at(*rev)["client"], &at(*rev)["seq"]),
            (&json!(client), &json!(seq))
        );
    }

    // Characters: each has an identity. None twice, none from nowhere, and
    // one is in the text exactly when nobody deleted it.
    let inserted = shared.inserted.lock().unwrap().clone();
    let deleted = shared.deleted.lock().unwrap().clone();
    let mut in_text = HashSet::new();
    for c in text.chars() {
        assert!(inserted.contains(&c), "{c:?} was never inserted");
        assert!(in_text.insert(c), "{c:?} is in the text twice");
    }
    let lost: Vec<char> = inserted
        .iter()
        .filter(|c| !deleted.contains(c) && !in_text.contains(c))
        .copied()
        .collect();
    assert!(
        lost.is_empty(),
        "{} characters nobody deleted are missing: {lost:?}",
        lost.len()
    );
    let revived: Vec<char> = deleted
        .iter()
        .filter(|c| in_text.contains(c))
        .copied()
        .collect();
    assert!(
        revived.is_empty(),
        "deleted characters are back: {revived:?}"
    );

    // The faults happened, so the test proves something.
    let c = &shared.counts;
    let n = |a: &AtomicU64| a.load(Relaxed);
    // Stored later than right after the revision they were made at: the
    // server transformed them.
    let made_at: HashMap<(&str, u64), u64> = reports
        .iter()
        .flat_map(|r| {
            r.made_at
                .iter()
                .map(|(seq, rev)| ((r.id.as_str(), *seq), *rev))
        })
        .collect();
    let transformed_by_server = ops
        .iter()
        .filter(|op| {
            let key = (op["client"].as_str().unwrap(), op["seq"].as_u64().unwrap());
            op["rev"].as_u64().unwrap() > made_at[&key] + 1
        })
        .count() as u64;
    eprintln!(
        "{EDITORS} editors x {EDITS} edits in {took:.1?}: {last} revisions, {} characters; \
         {} submissions, {} resends ({resends_recognised} answered 200), {} answers cut off, \
         {} frames lost, {} reconnects, {} long polls dropped, {} polls dropped, \
         {} interval answers reordered, \
         {} duplicates, {transformed_by_server} transformed by the server, {} \
         transformed on arrival; {} characters inserted, {} deleted",
        text.chars().count(),
        n(&c.submissions),
        n(&c.resends),
        n(&c.answers_cut_off),
        n(&c.frames_lost),
        n(&c.reconnects),
        n(&c.long_polls_dropped),
        n(&c.polls_dropped),
        n(&c.interval_answers_reordered),
        n(&c.duplicates_received),
        n(&c.transformed_on_arrival),
        inserted.len(),
        deleted.len(),
    );
    for (what, count) in [
        ("resends", n(&c.resends)),
        ("answers cut off", n(&c.answers_cut_off)),
        ("lost frames", n(&c.frames_lost)),
        ("reconnects", n(&c.reconnects)),
        ("dropped long polls", n(&c.long_polls_dropped)),
        (
            "reordered interval answers",
            n(&c.interval_answers_reordered),
        ),
        (
            "operations transformed by the server",
            transformed_by_server,
        ),
        ("transformations on arrival", n(&c.transformed_on_arrival)),
        ("resends answered 200", resends_recognised as u64),
    ] {
        assert!(
            count > 0,
            "no {what}: the simulation proved less than it claims"
        );
    }
    assert_eq!(
        reports.iter().filter(|r| r.kind == Kind::Sse).count(),
        EDITORS / 5
    );
}
