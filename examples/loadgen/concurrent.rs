//! `loadgen doc concurrent`: the two-person trace `friendsforever` through
//! the real server, two editors on two WebSockets, with the lab's latency
//! between them and the server.
//!
//! The trace says, for every transaction, which of the other person's
//! transactions its author had seen (its `parents`): its positions are in
//! that text. So an editor may type a transaction only once its client has
//! received exactly those — and the lab's latency decides when that is.
//! The schedule is the one of `tests/common/traces.rs`
//! (`replay_concurrent`), run in real time instead of step by step:
//!
//! * an editor types its next transaction as soon as its client holds at
//!   least what the transaction's author had seen; operations that arrived
//!   beyond that are *unseen* (in the client's text, not in the typist's
//!   view), and the typed operation is transformed past them;
//! * otherwise it waits for the other editor's operations to arrive — which
//!   also waits for them to leave the other's buffer (one operation in
//!   flight per client, its acknowledgement a round trip away);
//! * an editor never lets its buffer straddle a point at which the other's
//!   view stops: there it waits for its acknowledgement first (an *early
//!   acknowledgement*), so the buffer goes out as it is.
//!
//! Both editors run the three-state client; the server transforms every
//! operation that was made at a revision older than the newest. At the end
//! both clients catch up, and their texts, the server's and `endContent`
//! are compared.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use weebsockets::ot::client::{Client, Received, Stored, Submission};
use weebsockets::ot::{Operation, transform};

use crate::Env;
use crate::doc::traces::Trace;
use crate::doc::{DocFrame, all_ops, get_doc, writer_cpu, ws_open};
use crate::measure::{now_us, round};
use crate::wire::{Headers, Meter};

/// What one editor's socket brings.
enum Event {
    Op(Stored),
    Error(String),
    Closed,
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

/// One person of the trace.
struct Agent {
    client: Client,
    /// This person's transactions, in order (indexes into the trace).
    own: Vec<usize>,
    /// How many of them are typed.
    typed: usize,
    /// The other person's transactions in the client's text.
    heard: usize,
    unseen: VecDeque<Unseen>,
    /// The typed count at which it last waited for an early
    /// acknowledgement (each wait is counted once).
    early_ack_at: Option<usize>,
    sink: futures_util::stream::SplitSink<crate::doc::Ws, WsMessage>,
}

/// Counters of the run.
#[derive(Default)]
struct Counts {
    submissions: u64,
    transformed_by_server: u64,
    transformed_on_arrival: u64,
    early_acks: u64,
    typed_ahead_of_view: u64,
    largest_batch: usize,
    /// Sum of how many revisions each transformed submission was behind.
    behind_sum: u64,
}

pub async fn replay(
    env: &Env,
    name: &str,
    trace: &Trace,
    lab_latency_ms: u64,
    dump: Option<&Path>,
) -> Result<Value, String> {
    if trace.num_agents.unwrap_or(2) != 2 {
        return Err("the replay drives two agents".into());
    }
    let txns = &trace.txns;
    let agent_of = |i: usize| txns[i].agent.unwrap_or(0);
    // known[i][x]: how many of agent x's transactions transaction i had
    // seen; stops[x]: the counts of x's transactions where the other's view
    // ever stops (a batch of x must not straddle one).
    let mut known: Vec<[usize; 2]> = Vec::with_capacity(txns.len());
    let mut own: [Vec<usize>; 2] = Default::default();
    for (i, txn) in txns.iter().enumerate() {
        let me = agent_of(i);
        if me > 1 {
            return Err(format!("transaction {i} has agent {me}"));
        }
        let mut k = [0usize; 2];
        for &p in &txn.parents {
            for (x, count) in k.iter_mut().enumerate() {
                *count = (*count).max(known[p][x] + usize::from(agent_of(p) == x));
            }
        }
        if k[me] != own[me].len() {
            return Err(format!("transaction {i}: not after its author's own"));
        }
        own[me].push(i);
        known.push(k);
    }
    let mut stops: [HashSet<usize>; 2] = Default::default();
    for (i, k) in known.iter().enumerate() {
        let other = 1 - agent_of(i);
        stops[other].insert(k[other]);
    }

    let start = get_doc(&env.target).await?;
    if start.text != trace.start_content {
        return Err(format!(
            "the document is not the trace's start (rev {}): use a fresh server",
            start.rev
        ));
    }
    let meter = Arc::new(Meter::default());
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Event)>();
    let mut readers = tokio::task::JoinSet::new();
    let mut agents = Vec::new();
    for (x, own) in own.into_iter().enumerate() {
        let ws = ws_open(
            &env.target,
            &meter,
            &format!("/api/doc/ws?since={}", start.rev),
            Headers::Minimal,
            WebSocketConfig::default(),
        )
        .await?;
        let (sink, mut stream) = ws.split();
        let tx = tx.clone();
        readers.spawn(async move {
            // Bounded: ends with the socket.
            while let Some(Ok(msg)) = stream.next().await {
                let WsMessage::Text(text) = msg else { continue };
                let event = match serde_json::from_str::<DocFrame>(&text) {
                    Ok(frame) if frame.kind == "op" => match frame.stored() {
                        Ok(stored) => Event::Op(stored),
                        Err(e) => Event::Error(e),
                    },
                    Ok(frame) if frame.kind == "error" => Event::Error(format!(
                        "{}: {}",
                        frame.code.unwrap_or_default(),
                        frame.error.unwrap_or_default()
                    )),
                    Ok(_) => continue, // welcome, acks
                    Err(e) => Event::Error(e.to_string()),
                };
                if tx.send((x, event)).is_err() {
                    return;
                }
            }
            let _ = tx.send((x, Event::Closed));
        });
        agents.push(Agent {
            client: Client::new(
                format!("cc-{}-{x}", env.run),
                start.rev,
                &trace.start_content,
                0,
            ),
            own,
            typed: 0,
            heard: 0,
            unseen: VecDeque::new(),
            early_ack_at: None,
            sink,
        });
    }
    drop(tx);
    // (client, seq) → how many of its agent's transactions the text holds
    // once that submission is applied; per agent, covered so far.
    let mut covers: HashMap<(String, u64), usize> = HashMap::new();
    let mut covered = [0usize; 2];
    let mut counts = Counts::default();

    let cpu0 = env.monitor.mark();
    let writer0 = writer_cpu(env);
    env.monitor.reset_peak();
    let t0 = now_us();
    let mut last_note = t0;
    // Bounded: each pass types or waits for an event; a silence of a
    // minute fails the run.
    loop {
        // Type whatever can be typed now.
        let mut progress = true;
        while progress {
            progress = false;
            for x in 0..2 {
                if let Some(sub) = try_type(x, &mut agents, txns, &known, &stops, &mut counts)? {
                    send(
                        x,
                        &mut agents[x],
                        sub,
                        &mut covers,
                        &mut covered,
                        &mut counts,
                    )
                    .await?;
                    progress = true;
                }
            }
        }
        let done = agents
            .iter()
            .all(|a| a.typed == a.own.len() && a.client.state_name() == "synchronized")
            && agents[0].client.rev() == agents[1].client.rev();
        if done {
            break;
        }
        if now_us() - last_note > 10_000_000 {
            last_note = now_us();
            eprintln!(
                "  [concurrent] {:.0} s: typed {} + {} of {}, {} submissions, {} transformed by the server",
                (last_note - t0) as f64 / 1e6,
                agents[0].typed,
                agents[1].typed,
                txns.len(),
                counts.submissions,
                counts.transformed_by_server
            );
        }
        let (x, event) = match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(e)) => e,
            Ok(None) => return Err("both sockets ended".into()),
            Err(_) => {
                return Err(format!(
                    "nothing arrived for 60 s: typed {} + {}, states {} / {}",
                    agents[0].typed,
                    agents[1].typed,
                    agents[0].client.state_name(),
                    agents[1].client.state_name()
                ));
            }
        };
        let stored = match event {
            Event::Op(stored) => stored,
            Event::Error(e) => return Err(format!("editor {x}: {e}")),
            Event::Closed => return Err(format!("editor {x}'s socket closed")),
        };
        let agent = &mut agents[x];
        let pending = agent.client.state_name() != "synchronized";
        let in_flight_rev = agent.client.resend().map(|s| s.rev);
        match agent
            .client
            .receive(&stored)
            .map_err(|e| format!("editor {x}, rev {}: {e}", stored.rev))?
        {
            Received::Duplicate => {}
            Received::Acknowledged { send: next } => {
                if let Some(r) = in_flight_rev
                    && stored.rev > r + 1
                {
                    counts.transformed_by_server += 1;
                    counts.behind_sum += stored.rev - r - 1;
                }
                if let Some(sub) = next {
                    send(x, agent, sub, &mut covers, &mut covered, &mut counts).await?;
                }
            }
            Received::Applied(op) => {
                if pending {
                    counts.transformed_on_arrival += 1;
                }
                let heard_after = *covers
                    .get(&(stored.client.clone(), stored.seq))
                    .ok_or_else(|| format!("rev {} is not this replay's", stored.rev))?;
                agent.unseen.push_back(Unseen {
                    heard_before: agent.heard,
                    heard_after,
                    op,
                });
                agent.heard = heard_after;
            }
        }
    }
    let seconds = (now_us() - t0) as f64 / 1e6;
    let cpu1 = env.monitor.mark();
    let writer1 = writer_cpu(env);
    let usage = env.monitor.usage(cpu0, cpu1);
    readers.abort_all();
    for agent in &mut agents {
        let _ = agent.sink.close().await;
    }

    let server = get_doc(&env.target).await?;
    let texts: Vec<String> = agents.iter().map(|a| a.client.text()).collect();
    let converged = texts.iter().all(|t| *t == server.text);
    let ours: Vec<char> = server.text.chars().collect();
    let recorded: Vec<char> = trace.end_content.chars().collect();
    let prefix = ours
        .iter()
        .zip(&recorded)
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = ours[prefix..]
        .iter()
        .rev()
        .zip(recorded[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let differing = ours.len().max(recorded.len()) - prefix - suffix;
    let snippet = |v: &[char]| -> String {
        let from = prefix.saturating_sub(20);
        let to = (v.len() - suffix + 20).min(v.len());
        v[from..to].iter().collect()
    };
    if let Some(path) = dump {
        let ops = all_ops(&env.target, start.rev).await?;
        let mut file =
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for stored in &ops {
            writeln!(file, "{}", stored.op).map_err(|e| e.to_string())?;
        }
        eprintln!(
            "  wrote the {} stored operations to {}",
            ops.len(),
            path.display()
        );
    }
    let subs = counts.submissions.max(1) as f64;
    let per_sub = usage.server_cpu_s.map(|c| round(c * 1e6 / subs));
    let writer_s = writer0.zip(writer1).map(|(a, b)| b - a);
    let transformed_pct = round(100.0 * counts.transformed_by_server as f64 / subs);
    println!(
        "\ndoc concurrent {name} ({} transactions, lab latency {lab_latency_ms} ms): {seconds:.1} s; {} submissions (largest batch {}), {} transformed by the server ({transformed_pct}%, {:.1} revisions behind on average), {} transformed on arrival by a busy client; {} early acknowledgements",
        txns.len(),
        counts.submissions,
        counts.largest_batch,
        counts.transformed_by_server,
        counts.behind_sum as f64 / counts.transformed_by_server.max(1) as f64,
        counts.transformed_on_arrival,
        counts.early_acks,
    );
    println!(
        "  end: server and both clients {}; against endContent: {} characters differ{}",
        if converged { "agree" } else { "DIFFER" },
        differing,
        if differing > 0 {
            format!(
                " (endContent …{:?}…, the server …{:?}…)",
                snippet(&recorded),
                snippet(&ours)
            )
        } else {
            String::new()
        }
    );
    println!(
        "  server CPU per submission {} µs{}; {}",
        per_sub.map_or("?".into(), |x| format!("{x:.1}")),
        writer_s.map_or(String::new(), |w| format!(
            " (writer thread {:.1} µs)",
            w * 1e6 / subs
        )),
        usage.line()
    );
    Ok(json!({
        "mode": "doc-concurrent", "trace": name, "transactions": txns.len(),
        "lab_latency_ms": lab_latency_ms, "seconds": round(seconds),
        "submissions": counts.submissions, "largest_batch": counts.largest_batch,
        "transformed_by_server": counts.transformed_by_server,
        "transformed_pct": transformed_pct,
        "mean_revisions_behind": round(counts.behind_sum as f64 / counts.transformed_by_server.max(1) as f64),
        "transformed_on_arrival": counts.transformed_on_arrival,
        "early_acks": counts.early_acks, "typed_ahead_of_view": counts.typed_ahead_of_view,
        "converged": converged, "end_matches": differing == 0, "differing_chars": differing,
        "end_content_window": snippet(&recorded), "server_window": snippet(&ours),
        "end_rev": server.rev,
        "server_cpu_us_per_submission": per_sub,
        "writer_cpu_us_per_submission": writer_s.map(|w| round(w * 1e6 / subs)),
        "usage": usage.json(),
    }))
}

/// Agent `x` types its next transaction if it can now; returns the
/// submission to send, if one goes out.
fn try_type(
    x: usize,
    agents: &mut [Agent],
    txns: &[crate::doc::traces::Txn],
    known: &[[usize; 2]],
    stops: &[HashSet<usize>; 2],
    counts: &mut Counts,
) -> Result<Option<Submission>, String> {
    let agent = &mut agents[x];
    let Some(&i) = agent.own.get(agent.typed) else {
        return Ok(None);
    };
    let need = known[i][1 - x];
    while agent.unseen.front().is_some_and(|u| u.heard_after <= need) {
        agent.unseen.pop_front();
    }
    let seen = agent.unseen.front().map_or(agent.heard, |u| u.heard_before);
    if seen < need {
        if !agent.unseen.is_empty() {
            return Err(format!(
                "transaction {i}: an operation of the other straddles the view ({seen} < {need})"
            ));
        }
        return Ok(None); // wait for the other's operations
    }
    if seen > need {
        return Err(format!(
            "transaction {i}: the view has {seen} of the other's edits, the parents {need}"
        ));
    }
    if agent.client.state_name() == "awaiting_with_buffer" && stops[x].contains(&agent.typed) {
        // Wait for the acknowledgement: the buffer goes out as it is.
        if agent.early_ack_at != Some(agent.typed) {
            agent.early_ack_at = Some(agent.typed);
            counts.early_acks += 1;
        }
        return Ok(None);
    }
    let view_len = agent
        .unseen
        .front()
        .map_or(agent.client.doc().len_chars(), |u| u.op.base_len());
    let mut op = txns[i].operation(view_len);
    if !agent.unseen.is_empty() {
        counts.typed_ahead_of_view += 1;
    }
    for unseen in agent.unseen.iter_mut() {
        let (unseen_after, op_after) =
            transform(&unseen.op, &op).map_err(|e| format!("transaction {i}: {e}"))?;
        unseen.op = unseen_after;
        op = op_after;
    }
    agent.typed += 1;
    agent
        .client
        .edit(op)
        .map_err(|e| format!("transaction {i}: {e}"))
}

/// Sends agent `x`'s submission (covering everything it typed).
async fn send(
    x: usize,
    agent: &mut Agent,
    sub: Submission,
    covers: &mut HashMap<(String, u64), usize>,
    covered: &mut [usize; 2],
    counts: &mut Counts,
) -> Result<(), String> {
    counts.submissions += 1;
    counts.largest_batch = counts.largest_batch.max(agent.typed - covered[x]);
    covered[x] = agent.typed;
    covers.insert((sub.client.clone(), sub.seq), agent.typed);
    let frame = format!(
        r#"{{"type":"op","ref":{},"client":"{}","seq":{},"rev":{},"op":{}}}"#,
        sub.seq,
        sub.client,
        sub.seq,
        sub.rev,
        sub.op.to_json()
    );
    agent
        .sink
        .send(WsMessage::text(frame))
        .await
        .map_err(|e| format!("editor {x}: {e}"))
}
