//! Helpers for the shared document's tests: its endpoints as small async
//! calls, stored operations in the form the three-state client
//! (`weebsockets::ot::client`) takes them, the replay of a whole log, and
//! the recorded editing traces of `tests/data/traces/`.
//!
//! Everything here talks to a real server over real HTTP, WebSocket or SSE
//! (the `Api`, `Ws` and `Sse` clients of `common`); nothing reaches into the
//! server's memory.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use weebsockets::ot::Operation;
use weebsockets::ot::client::{Stored, Submission};

use super::Api;

/// An HTTP answer: status, headers and the body as JSON (`Null` if empty or
/// not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The `code` of an error body.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// Sends `body` as JSON with `method` to `path`.
pub async fn request(api: &Api, method: Method, path: &str, body: &Value) -> Answer {
    let response = api
        .http
        .request(method, api.url(path))
        .json(body)
        .send()
        .await
        .expect("the server answers");
    read_answer(response).await
}

/// Sends raw bytes with a content type (for bodies that are not JSON).
pub async fn request_raw(
    api: &Api,
    method: Method,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Answer {
    let response = api
        .http
        .request(method, api.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the server answers");
    read_answer(response).await
}

async fn read_answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a whole body");
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// `POST /api/doc/ops` with `{"client","seq","rev","op"}`.
pub async fn post_op(api: &Api, client: &str, seq: u64, rev: u64, op: Value) -> Answer {
    let body = json!({"client": client, "seq": seq, "rev": rev, "op": op});
    request(api, Method::POST, "/api/doc/ops", &body).await
}

/// [`post_op`] that must be stored as a new operation: returns the
/// revision and the operation as stored.
pub async fn post_op_ok(api: &Api, client: &str, seq: u64, rev: u64, op: Value) -> (u64, Value) {
    let answer = post_op(api, client, seq, rev, op).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    (
        answer.body["rev"].as_u64().unwrap(),
        answer.body["op"].clone(),
    )
}

/// `PUT /api/doc/text` with `{"client","seq","text"}`.
pub async fn put_text(api: &Api, client: &str, seq: u64, text: &str) -> Answer {
    let body = json!({"client": client, "seq": seq, "text": text});
    request(api, Method::PUT, "/api/doc/text", &body).await
}

/// `GET /api/doc`: the revision and the text.
pub async fn document(api: &Api) -> (u64, String) {
    let (status, _, body) = api.get("/api/doc").await;
    assert_eq!(status, 200, "{body}");
    (
        body["rev"].as_u64().expect("rev"),
        body["text"].as_str().expect("text").to_owned(),
    )
}

/// Every stored operation after `since`, paging through
/// `GET /api/doc/ops` 500 at a time.
pub async fn ops_since(api: &Api, mut since: u64) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let (status, _, page) = api
            .get(&format!("/api/doc/ops?since={since}&limit=500"))
            .await;
        assert_eq!(status, 200, "{page}");
        let ops = page["ops"].as_array().expect("ops").clone();
        match ops.last() {
            None => return out,
            Some(last) => since = last["rev"].as_u64().expect("rev"),
        }
        out.extend(ops);
    }
}

/// The operation of a stored op (or of any `"op"` field).
pub fn operation(stored: &Value) -> Operation {
    Operation::from_json(&stored["op"])
        .unwrap_or_else(|e| panic!("the server sent an operation it should refuse: {e}"))
}

/// A stored operation as the three-state client takes it.
pub fn stored(value: &Value) -> Stored {
    Stored {
        rev: value["rev"].as_u64().expect("rev"),
        client: value["client"].as_str().expect("client").to_owned(),
        seq: value["seq"].as_u64().expect("seq"),
        op: operation(value),
    }
}

/// Applies every operation of `ops` (which must start at revision 1) to
/// the empty text, checking that the revisions have no gaps: the text the
/// log describes.
pub fn replay_log(ops: &[Value]) -> String {
    let mut text = ropey::Rope::new();
    for (i, op) in ops.iter().enumerate() {
        assert_eq!(op["rev"].as_u64(), Some(i as u64 + 1), "revisions in order");
        operation(op)
            .apply_to_rope(&mut text)
            .unwrap_or_else(|e| panic!("revision {} does not fit the text: {e}", i + 1));
    }
    text.to_string()
}

/// The body of `POST /api/doc/ops` for a client's submission.
pub fn submission_body(submission: &Submission) -> Value {
    json!({
        "client": submission.client,
        "seq": submission.seq,
        "rev": submission.rev,
        "op": submission.op.to_json(),
    })
}

/// A WebSocket `op` frame for a client's submission.
pub fn op_frame(reference: impl Into<Value>, submission: &Submission) -> Value {
    let mut frame = submission_body(submission);
    frame["type"] = json!("op");
    frame["ref"] = reference.into();
    frame
}

/// `ws://…/api/doc/ws?since=N` for a server at `api.base`.
pub fn doc_ws_url(api: &Api, since: u64) -> String {
    format!(
        "{}/api/doc/ws?since={since}",
        api.base.replacen("http", "ws", 1)
    )
}

// ---------------------------------------------------------------------------
// The recorded editing traces
// ---------------------------------------------------------------------------

/// One recorded editing session (Joseph Gentle's editing-traces, CC BY 4.0;
/// see `tests/data/traces/README.md`).
#[derive(Debug, Clone, Deserialize)]
pub struct Trace {
    /// The text before the first transaction.
    #[serde(rename = "startContent", default)]
    pub start_content: String,
    /// The text after the last one.
    #[serde(rename = "endContent")]
    pub end_content: String,
    /// How many people typed (the concurrent trace).
    #[serde(rename = "numAgents", default)]
    pub num_agents: Option<usize>,
    /// The edits; parents always come before children.
    pub txns: Vec<Txn>,
}

/// A keystroke, a paste, a multi-cursor edit: patches applied in order.
#[derive(Debug, Clone, Deserialize)]
pub struct Txn {
    /// `(position, deleted, inserted)`, in code points, each on the text
    /// the previous one left.
    pub patches: Vec<(usize, usize, String)>,
    /// Who typed it (the concurrent trace).
    #[serde(default)]
    pub agent: Option<usize>,
    /// The transactions its author had seen (the concurrent trace).
    #[serde(default)]
    pub parents: Vec<usize>,
}

impl Txn {
    /// The transaction as the one operation an editor would send, on a
    /// text of `len` characters.
    pub fn operation(&self, len: usize) -> Operation {
        let mut op = Operation::new();
        op.retain(len);
        for (pos, delete, insert) in &self.patches {
            let patch = Operation::from_patch(op.target_len(), *pos, *delete, insert)
                .expect("a trace's patch fits the text it was made on");
            op = op.compose(&patch).expect("each patch follows the last");
        }
        op
    }
}

/// The folder of the traces: `WEEBSOCKETS_TRACES` if set, else
/// `tests/data/traces/`.
pub fn traces_dir() -> PathBuf {
    std::env::var_os("WEEBSOCKETS_TRACES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/traces"))
}

/// Reads `<name>.json.gz` from [`traces_dir`].
pub fn load_trace(name: &str) -> Trace {
    let path = traces_dir().join(format!("{name}.json.gz"));
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("cannot open the trace {}: {e}", path.display()));
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .unwrap_or_else(|e| panic!("cannot gunzip {}: {e}", path.display()));
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{} is not a trace: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------

/// The seed of a randomized test: `WEEBSOCKETS_SEED` if set (to replay a
/// failure), else the clock. Printed, so a failing run can be repeated.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("WEEBSOCKETS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("{test}: seed {seed} (rerun with WEEBSOCKETS_SEED={seed})");
    seed
}
