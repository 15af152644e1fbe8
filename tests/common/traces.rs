//! Real editing sessions for the shared document's tests and benches: the
//! recorded traces in `tests/data/traces/` (Joseph Gentle's editing-traces,
//! CC BY 4.0 — see the README there), how to replay them, and seeded random
//! edits for tests that want many small cases.
//!
//! * [`load`] reads a trace; [`replay_sequential`] plays a one-person trace
//!   into a rope.
//! * [`replay_concurrent`] plays the two-person trace through a central
//!   server (anything implementing [`Central`]; [`InProcessServer`] is a
//!   `Vec` of stored operations plus `transform`) and two three-state
//!   clients, one per agent. It is written against the [`Central`] trait so
//!   that the same driver can later run against the real server over HTTP.
//! * [`Rng`], [`random_text`], [`random_op`]: reproducible random documents
//!   and operations mixing ASCII, CJK, combining marks and emoji.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::path::PathBuf;

use ropey::Rope;
use serde::Deserialize;
use weebsockets::ot::client::{Client, Received, Stored, Submission};
use weebsockets::ot::{Component, Operation, transform};

/// The sequential (one person) traces.
pub const SEQUENTIAL: [&str; 3] = ["seph-blog1", "rustcode", "sveltecomponent"];
/// The concurrent (two people at once) trace.
pub const CONCURRENT: &str = "friendsforever";

/// One recorded editing session.
#[derive(Debug, Clone, Deserialize)]
pub struct Trace {
    /// `"concurrent"` for the two-person trace; absent for sequential ones.
    #[serde(default)]
    pub kind: Option<String>,
    /// The text before the first transaction (empty in all four files).
    #[serde(rename = "startContent", default)]
    pub start_content: String,
    /// The text after the last one: what a replay must end with.
    #[serde(rename = "endContent")]
    pub end_content: String,
    /// How many people typed (concurrent traces).
    #[serde(rename = "numAgents", default)]
    pub num_agents: Option<usize>,
    /// The edits, in an order where parents come before children.
    pub txns: Vec<Txn>,
}

/// One transaction: a few patches made at once (a keystroke, a paste, a
/// multi-cursor edit).
#[derive(Debug, Clone, Deserialize)]
pub struct Txn {
    /// Applied in order, each to the result of the one before.
    pub patches: Vec<Patch>,
    /// Who typed it (concurrent traces).
    #[serde(default)]
    pub agent: Option<usize>,
    /// The transactions its author had seen (concurrent traces).
    #[serde(default)]
    pub parents: Vec<usize>,
}

/// At code point `0`, delete `1` characters and insert `2`.
#[derive(Debug, Clone, Deserialize)]
pub struct Patch(pub usize, pub usize, pub String);

impl Txn {
    /// The whole transaction as one operation on a document of `doc_len`
    /// characters (its patches composed): what an editor would submit.
    pub fn operation(&self, doc_len: usize) -> Operation {
        let mut op = Operation::new();
        op.retain(doc_len);
        for Patch(pos, delete, insert) in &self.patches {
            let patch = Operation::from_patch(op.target_len(), *pos, *delete, insert)
                .expect("a trace's patch fits the document it was made on");
            op = op.compose(&patch).expect("each patch applies to the last");
        }
        op
    }

    /// Characters inserted by this transaction.
    pub fn inserted_chars(&self) -> usize {
        self.patches.iter().map(|p| p.2.chars().count()).sum()
    }
}

/// Where the traces live in the repository.
pub fn traces_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/traces")
}

/// Reads `tests/data/traces/<name>.json.gz`.
pub fn load(name: &str) -> Trace {
    let path = traces_dir().join(format!("{name}.json.gz"));
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("cannot open the trace {}: {e}", path.display()));
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .unwrap_or_else(|e| panic!("cannot gunzip {}: {e}", path.display()));
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{} is not a trace: {e}", path.display()))
}

/// Plays a sequential trace into a rope, one patch at a time, each as an
/// [`Operation`] applied with [`Operation::apply_to_rope`].
pub fn replay_sequential(trace: &Trace) -> Rope {
    let mut rope = Rope::from_str(&trace.start_content);
    for txn in &trace.txns {
        for Patch(pos, delete, insert) in &txn.patches {
            let op = Operation::from_patch(rope.len_chars(), *pos, *delete, insert)
                .expect("a trace's patch fits the document it was made on");
            op.apply_to_rope(&mut rope)
                .expect("an operation built for this length fits");
        }
    }
    rope
}

// ---------------------------------------------------------------------------
// The concurrent replay
// ---------------------------------------------------------------------------

/// The central server, as the concurrent replay talks to it: submit an
/// operation, read the log by revision.
pub trait Central {
    /// Stores `submission` (transformed against everything stored since its
    /// `rev`) as the next revision, or recognises a resend by
    /// `(client, seq)`. The replay reads the result back from the log.
    fn submit(&mut self, submission: &Submission);
    /// The stored operation with this revision, once it exists.
    fn stored(&mut self, rev: u64) -> Option<Stored>;
}

/// A test-only central server: the log is a `Vec`, the text a rope, and an
/// incoming operation is transformed exactly as the contract says — against
/// every operation stored since its revision, the stored one first.
#[derive(Debug, Default)]
pub struct InProcessServer {
    /// `log[i]` has revision `i + 1`.
    log: Vec<Stored>,
    /// The current text (revision `log.len()`).
    doc: Rope,
    /// `(client, seq)` → rev, to recognise a resend.
    seen: HashMap<(String, u64), u64>,
    /// Every time an incoming op and a stored one inserted at the same
    /// point, so that the tie rule decided their order.
    ties: Vec<Tie>,
}

/// An incoming operation and a stored one that inserted at the same point:
/// the tie rule ("the one stored first stays first") decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tie {
    /// The revision of the stored op.
    pub stored_rev: u64,
    /// The point, in characters of the document both applied to.
    pub at: usize,
}

/// The points (in the document an op applies to) where it inserts.
pub fn insert_points(op: &Operation) -> Vec<usize> {
    let mut at = 0;
    let mut points = Vec::new();
    for component in op.components() {
        match component {
            Component::Retain(n) | Component::Delete(n) => at += n,
            Component::Insert(_) => points.push(at),
        }
    }
    points
}

impl InProcessServer {
    /// An empty document at revision 0.
    pub fn new() -> InProcessServer {
        InProcessServer::default()
    }

    /// The current text.
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// Every stored operation, oldest first.
    pub fn log(&self) -> &[Stored] {
        &self.log
    }

    /// Where the tie rule decided (see [`Tie`]).
    pub fn ties(&self) -> &[Tie] {
        &self.ties
    }

    /// Stores a submission and returns its revision (the one stored the
    /// first time, for a resend).
    pub fn receive(&mut self, submission: &Submission) -> u64 {
        let key = (submission.client.clone(), submission.seq);
        if let Some(&rev) = self.seen.get(&key) {
            return rev;
        }
        let since = usize::try_from(submission.rev).expect("a small rev");
        assert!(since <= self.log.len(), "rev {since} is ahead of the log");
        let mut op = submission.op.clone();
        for stored in &self.log[since..] {
            let theirs = insert_points(&stored.op);
            for at in insert_points(&op) {
                if theirs.contains(&at) {
                    self.ties.push(Tie {
                        stored_rev: stored.rev,
                        at,
                    });
                }
            }
            // The stored op first: of two inserts at one position, the one
            // stored first stays first. Keep the second result.
            op = transform(&stored.op, &op)
                .expect("a submission fits the revision it names")
                .1;
        }
        op.apply_to_rope(&mut self.doc)
            .expect("a transformed op fits the current text");
        let rev = self.log.len() as u64 + 1;
        self.log.push(Stored {
            rev,
            client: submission.client.clone(),
            seq: submission.seq,
            op,
        });
        self.seen.insert(key, rev);
        rev
    }
}

impl Central for InProcessServer {
    fn submit(&mut self, submission: &Submission) {
        self.receive(submission);
    }

    fn stored(&mut self, rev: u64) -> Option<Stored> {
        let index = usize::try_from(rev.checked_sub(1)?).ok()?;
        self.log.get(index).cloned()
    }
}

/// What a concurrent replay ended with, and how much concurrency it saw.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// Each agent's text at the end, after it caught up with the log.
    pub client_texts: Vec<String>,
    /// Operations submitted to the server (transactions are batched while
    /// one is in flight, so fewer than the transactions).
    pub submissions: usize,
    /// Most transactions in one submission.
    pub largest_batch: usize,
    /// Remote operations that arrived while the receiver had edits of its
    /// own in flight, so were transformed by the client.
    pub transformed_on_arrival: usize,
    /// Submissions the server had to transform against operations stored
    /// after their revision.
    pub transformed_by_server: usize,
    /// Times an agent collected its acknowledgement early (see
    /// [`replay_concurrent`]).
    pub early_acks: usize,
    /// Transactions typed while the agent's text already held remote edits
    /// the typist had not seen yet.
    pub typed_ahead_of_view: usize,
}

/// One person of the trace, typing through a three-state client.
struct Agent {
    /// The real client logic; its text is what this person's editor shows.
    client: Client,
    /// This person's transactions typed so far.
    typed: usize,
    /// The other person's transactions included in `client`'s text.
    heard: usize,
    /// Remote operations already in the client's text that the typist has
    /// not "seen" yet (the trace's parents say so), oldest first. The
    /// typist's view is the client's text without them.
    unseen: VecDeque<Unseen>,
}

/// A remote operation in the client's text that the typist has not seen.
struct Unseen {
    /// The other person's transaction count before it…
    heard_before: usize,
    /// …and after it.
    heard_after: usize,
    /// The operation, as it applies after the typist's view and the unseen
    /// operations before it.
    op: Operation,
}

/// Replays a two-person trace: a central server and two three-state
/// clients, one per agent; each agent types its transactions against the
/// revision it has seen. At the end both clients catch up with the log.
///
/// **How the schedule follows the trace.** A transaction's positions are
/// relative to the text after its parents, so before an agent types one, it
/// must have received exactly the other agent's transactions that the
/// parents include. The replay delivers the log's operations to an agent
/// only when a transaction needs them. Two things of the protocol get in the
/// way, and the replay handles each:
///
/// 1. *The other's edits are still in its buffer* (one op in flight at a
///    time). The other agent then collects its acknowledgement (reads the
///    log up to its own op), which sends its buffer.
/// 2. *Receiving in order can bring more than the parents say*: to reach its
///    acknowledgement a client must apply every op stored before its own.
///    Those become *unseen*: in the client's text, not yet in the typist's
///    view. A transaction typed on the view is transformed past them before
///    it goes to the client (`transform(unseen, typed)`, the unseen op first
///    since it was stored first). An unseen op leaves the list when a
///    transaction's parents include it.
///
/// For 2. to work, a batch must never straddle a point the other agent's
/// view stops at; so an agent about to type past such a point with a
/// non-empty buffer first collects its acknowledgement (counted as
/// `early_acks`), which sends the buffer as it is.
///
/// Only two agents: with more, an unseen op of one could stand before a
/// needed op of another in the log.
pub fn replay_concurrent(
    trace: &Trace,
    central: &mut impl Central,
) -> Result<ReplayReport, String> {
    let agents_in_trace = trace.num_agents.unwrap_or(2);
    if agents_in_trace != 2 {
        return Err(format!(
            "the replay drives two agents; this trace has {agents_in_trace}"
        ));
    }
    let txns = &trace.txns;
    let agent_of = |i: usize| txns[i].agent.unwrap_or(0);
    // known[i][x]: how many of agent x's transactions transaction i had seen
    // (its parents and their ancestors). Each agent's own transactions form
    // a chain, so a count says which ones.
    let mut known: Vec<[usize; 2]> = Vec::with_capacity(txns.len());
    let mut typed_so_far = [0usize; 2];
    for (i, txn) in txns.iter().enumerate() {
        let me = agent_of(i);
        if me > 1 {
            return Err(format!("transaction {i} has agent {me}"));
        }
        let mut k = [0usize; 2];
        for &p in &txn.parents {
            if p >= i {
                return Err(format!("transaction {i} has a later parent {p}"));
            }
            for (x, count) in k.iter_mut().enumerate() {
                let through_p = known[p][x] + usize::from(agent_of(p) == x);
                *count = (*count).max(through_p);
            }
        }
        if k[me] != typed_so_far[me] {
            return Err(format!(
                "transaction {i}: agent {me} had not seen all its own earlier edits"
            ));
        }
        typed_so_far[me] += 1;
        known.push(k);
    }
    // stops[x]: the counts of x's transactions at which the other agent's
    // view ever stops. A batch of x must not straddle one of them.
    let mut stops: [HashSet<usize>; 2] = Default::default();
    for (i, k) in known.iter().enumerate() {
        let other = 1 - agent_of(i);
        stops[other].insert(k[other]);
    }

    let mut replay = Replay {
        central,
        agents: [0, 1].map(|x| Agent {
            client: Client::new(format!("agent-{x}"), 0, &trace.start_content, 0),
            typed: 0,
            heard: 0,
            unseen: VecDeque::new(),
        }),
        covers: HashMap::new(),
        covered: [0, 0],
        report: ReplayReport::default(),
    };

    for (i, txn) in txns.iter().enumerate() {
        let me = agent_of(i);
        let need = known[i][1 - me];
        // Bring the typist's view to exactly the parents' state.
        loop {
            let agent = &mut replay.agents[me];
            while agent.unseen.front().is_some_and(|u| u.heard_after <= need) {
                agent.unseen.pop_front();
            }
            let seen = agent.unseen.front().map_or(agent.heard, |u| u.heard_before);
            if seen == need {
                break;
            }
            if seen > need || !agent.unseen.is_empty() {
                return Err(format!(
                    "transaction {i}: the view has {seen} of the other's edits, the parents {need}"
                ));
            }
            if !replay.deliver_one(me)? {
                // Everything stored is applied, and still not enough: what
                // we need is in the other agent's buffer.
                replay.collect_ack(1 - me)?;
            }
        }
        // Never let our buffer straddle a point where the other's view stops.
        let agent = &replay.agents[me];
        if agent.client.state_name() == "awaiting_with_buffer" && stops[me].contains(&agent.typed) {
            replay.report.early_acks += 1;
            replay.collect_ack(me)?;
        }
        // Type the transaction on the view, then carry it past the unseen ops.
        let agent = &mut replay.agents[me];
        let view_len = agent
            .unseen
            .front()
            .map_or(agent.client.doc().len_chars(), |u| u.op.base_len());
        let mut op = txn.operation(view_len);
        if !agent.unseen.is_empty() {
            replay.report.typed_ahead_of_view += 1;
        }
        for unseen in agent.unseen.iter_mut() {
            let (unseen_after, op_after) =
                transform(&unseen.op, &op).map_err(|e| format!("transaction {i}: {e}"))?;
            unseen.op = unseen_after;
            op = op_after;
        }
        agent.typed += 1;
        let send = agent
            .client
            .edit(op)
            .map_err(|e| format!("transaction {i}: {e}"))?;
        if let Some(submission) = send {
            replay.submit(me, submission);
        }
    }

    // Everyone catches up: deliver until both are synchronized at the end of
    // the log (an acknowledgement may send a buffer, which must come back).
    loop {
        let mut progress = false;
        for x in 0..2 {
            while replay.deliver_one(x)? {
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    for (x, agent) in replay.agents.iter().enumerate() {
        if agent.client.state_name() != "synchronized" {
            return Err(format!(
                "agent {x} is still {} at the end",
                agent.client.state_name()
            ));
        }
    }
    let mut report = replay.report;
    report.client_texts = replay.agents.iter().map(|a| a.client.text()).collect();
    Ok(report)
}

/// The replay's moving parts.
struct Replay<'c, C: Central> {
    central: &'c mut C,
    agents: [Agent; 2],
    /// `(client, seq)` → how many of its agent's transactions the text
    /// includes once that submission is applied.
    covers: HashMap<(String, u64), usize>,
    /// Per agent, the transactions its submissions cover so far.
    covered: [usize; 2],
    report: ReplayReport,
}

impl<C: Central> Replay<'_, C> {
    /// Sends a submission of agent `x` (covering everything it typed).
    fn submit(&mut self, x: usize, submission: Submission) {
        let typed = self.agents[x].typed;
        self.report.submissions += 1;
        self.report.largest_batch = self.report.largest_batch.max(typed - self.covered[x]);
        self.covered[x] = typed;
        self.covers
            .insert((submission.client.clone(), submission.seq), typed);
        self.central.submit(&submission);
    }

    /// Delivers the next stored operation to agent `x`. False when it has
    /// applied everything stored.
    fn deliver_one(&mut self, x: usize) -> Result<bool, String> {
        let rev = self.agents[x].client.rev() + 1;
        let Some(stored) = self.central.stored(rev) else {
            return Ok(false);
        };
        let agent = &mut self.agents[x];
        let pending = agent.client.state_name() != "synchronized";
        let in_flight_rev = agent.client.resend().map(|s| s.rev);
        match agent
            .client
            .receive(&stored)
            .map_err(|e| format!("agent {x}, rev {rev}: {e}"))?
        {
            Received::Duplicate => return Err(format!("agent {x}: rev {rev} twice")),
            Received::Acknowledged { send } => {
                // Stored later than the revision it was made on: the server
                // transformed it.
                if in_flight_rev.is_some_and(|r| stored.rev > r + 1) {
                    self.report.transformed_by_server += 1;
                }
                if let Some(submission) = send {
                    self.submit(x, submission);
                }
            }
            Received::Applied(op) => {
                if pending {
                    self.report.transformed_on_arrival += 1;
                }
                let heard_after = *self
                    .covers
                    .get(&(stored.client.clone(), stored.seq))
                    .ok_or_else(|| format!("rev {rev} was not submitted by this replay"))?;
                agent.unseen.push_back(Unseen {
                    heard_before: agent.heard,
                    heard_after,
                    op,
                });
                agent.heard = heard_after;
            }
        }
        Ok(true)
    }

    /// Agent `x` reads the log until its operation in flight comes back.
    fn collect_ack(&mut self, x: usize) -> Result<(), String> {
        while self.agents[x].client.resend().is_some() {
            if !self.deliver_one(x)? {
                return Err(format!(
                    "agent {x}: its operation in flight is not in the log"
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Random documents and operations
// ---------------------------------------------------------------------------

/// A small seeded random generator (SplitMix64): the same seed gives the
/// same cases on every machine, so a failure can be replayed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for this seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u32) -> bool {
        self.next_u64() % 100 < u64::from(percent)
    }

    /// A wait of less than `ms` milliseconds (`ms > 0`).
    pub fn pause_below(&mut self, ms: u64) -> std::time::Duration {
        std::time::Duration::from_millis(self.next_u64() % ms)
    }

    /// A seed for another generator.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

/// Pieces of text the random documents are made of: ASCII, whitespace, CJK,
/// a precomposed and a combining accent, emoji of one code point and of
/// several (👩‍💻 is woman + zero-width joiner + laptop: three code points).
pub const PIECES: &[&str] = &[
    "a",
    "b",
    "c",
    "x",
    "Hello",
    " ",
    "\n",
    "\t",
    "中",
    "文字",
    "é",
    "e\u{301}",
    "ñ",
    "🎉",
    "👩\u{200d}💻",
    "🇫🇷",
    "🏳\u{fe0f}\u{200d}🌈",
    "∑",
];

/// A random text of up to `max_pieces` pieces of [`PIECES`].
pub fn random_text(rng: &mut Rng, max_pieces: usize) -> String {
    let pieces = rng.below(max_pieces + 1);
    (0..pieces)
        .map(|_| PIECES[rng.below(PIECES.len())])
        .collect()
}

/// A random operation on a document of `doc_len` characters: a mix of
/// retains, deletes and inserts (inserts often at the same spots another
/// random op would pick, so transform's ties happen).
pub fn random_op(rng: &mut Rng, doc_len: usize) -> Operation {
    let mut op = Operation::new();
    let mut left = doc_len;
    while left > 0 {
        let n = 1 + rng.below(left.min(4));
        match rng.below(5) {
            0 | 1 => {
                op.retain(n);
            }
            2 => {
                op.delete(n);
            }
            3 => {
                op.insert(&random_text(rng, 2));
                continue;
            }
            _ => {
                op.insert(&random_text(rng, 1));
                op.retain(n);
            }
        }
        left -= n;
    }
    if rng.percent(40) {
        op.insert(&random_text(rng, 2));
    }
    op
}
