//! A load generator for any server that speaks the Weebsockets wire
//! contract (`PROTOCOL.md`): it puts numbers on the lesson.
//!
//! ```sh
//! cargo run --release --example loadgen -- --help
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8080 \
//!     browsers --clients 50 --rate 2 --interval-ms 1000
//! ```
//!
//! Modes:
//! - `browsers` — N simulated browsers per strategy (setInterval,
//!   setTimeout, long polling, WebSocket, SSE) while messages are posted at
//!   a steady rate; requests, bytes on the wire, latency and correctness,
//!   next to the textbook model ([`browsers`]).
//! - `posts`, `empty-polls`, `fanout`, `idle-memory` — the raw targets
//!   ([`targets`]).
//! - `report` — medians of repeated runs and one server against another
//!   ([`report`]).
//! - `doc …` — the shared document: a class typing, a trace replayed, the
//!   two-person trace, idle editors ([`doc`]).
//!
//! Results go to stdout as tables and, with `--json FILE`, as JSON lines
//! (one per scenario); progress goes to stderr. Every scenario has a hard
//! deadline, so a hung server fails the run instead of hanging it.

mod browsers;
mod clients;
mod concurrent;
mod doc;
mod editors;
mod measure;
mod report;
mod tally;
mod targets;
mod wire;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use crate::clients::Strategy;
use crate::measure::Monitor;
use crate::targets::Kind;
use crate::wire::{Headers, HttpConn, Meter, Target, request};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Simulates browsers (setInterval, setTimeout, long polling, WebSocket, SSE) against a server of the Weebsockets contract, and measures requests, bytes, latency, loss and server cost."
)]
struct Cli {
    /// The server's root URL.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The server's process id: its CPU time and peak RSS are reported.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Append one JSON line per scenario to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// A name for the server in the JSON lines (e.g. weebsockets, express).
    #[arg(long, global = true, default_value = "server")]
    label: String,
    /// Request headers the simulated browsers send.
    #[arg(long, global = true, value_enum, default_value_t = Headers::Browser)]
    headers: Headers,
    /// The teacher token, to set the lab's latency and jitter.
    #[arg(long, global = true)]
    teacher_token: Option<String>,
    /// Leave out the `client=<id>` the pages add to every poll (the
    /// server keeps a table of recent ids for /api/stats).
    #[arg(long, global = true)]
    no_client_id: bool,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// N simulated browsers per strategy while messages are posted.
    Browsers {
        /// Strategies to run, one after another.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = Strategy::ALL)]
        strategies: Vec<Strategy>,
        /// Clients per strategy; a list runs each.
        #[arg(long, value_delimiter = ',', default_value = "50")]
        clients: Vec<usize>,
        /// Poll interval in ms (interval, timeout); a list runs each.
        #[arg(long, value_delimiter = ',', default_value = "1000")]
        interval_ms: Vec<u64>,
        /// Messages per second posted by the sender tasks (0: none).
        #[arg(long, default_value_t = 2.0)]
        rate: f64,
        /// Long-poll hold asked for, in seconds (1..=55).
        #[arg(long, default_value_t = 25)]
        hold_s: u64,
        /// Seconds before measuring starts.
        #[arg(long, default_value_t = 3.0)]
        warmup_s: f64,
        /// Seconds measured.
        #[arg(long, default_value_t = 20.0)]
        duration_s: f64,
        /// The lab's latency for every delivery, ms (needs --teacher-token).
        #[arg(long, default_value_t = 0)]
        lab_latency_ms: u64,
        /// The lab's jitter: up to this much more, ms.
        #[arg(long, default_value_t = 0)]
        lab_jitter_ms: u64,
    },
    /// N connections posting as fast as they are acknowledged.
    Posts {
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 2.0)]
        warmup_s: f64,
        #[arg(long, default_value_t = 10.0)]
        duration_s: f64,
    },
    /// N keep-alive connections asking `since=<newest>` as fast as answered.
    EmptyPolls {
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 2.0)]
        warmup_s: f64,
        #[arg(long, default_value_t = 10.0)]
        duration_s: f64,
    },
    /// N idle push clients, then M messages at R/s: delivery latency, loss.
    Fanout {
        #[arg(long, value_enum)]
        kind: Kind,
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        #[arg(long, default_value_t = 20)]
        messages: u64,
        /// Messages per second.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
    },
    /// N WebSocket clients connecting at once: time to connect them all,
    /// and the kernel's accept-queue overflows meanwhile.
    ConnectBurst {
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 256)]
        at_once: usize,
    },
    /// N idle connections of one kind: server memory per connection.
    IdleMemory {
        #[arg(long, value_enum)]
        kind: Kind,
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
    },
    /// The shared document: editors, trace replays, idle editors.
    Doc {
        #[command(subcommand)]
        mode: doc::DocMode,
    },
    /// Medians per scenario and server from JSON lines, and their ratios.
    Report {
        /// JSON-lines files written with --json.
        files: Vec<PathBuf>,
        /// The label the others are divided by (default: the last seen).
        #[arg(long)]
        baseline: Option<String>,
    },
}

/// What every mode needs.
pub struct Env {
    pub target: Target,
    pub headers: Headers,
    /// Polls carry `client=<id>`, as the pages' do.
    pub client_ids: bool,
    pub monitor: Monitor,
    /// This run's id, in every message text, so receivers can tell our
    /// messages from anyone else's.
    pub run: Arc<str>,
}

fn main() {
    let cli = Cli::parse();
    if let Mode::Report { files, baseline } = &cli.mode {
        if let Err(e) = report::report(files, baseline.as_deref()) {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
        return;
    }
    // 10,000 clients need 10,000 sockets.
    weebsockets::raise_open_files_limit();
    // Two workers: as many as the machine has cores. The server shares
    // them; the load generator's own CPU time is reported so you can see
    // how much it took.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
    }
    // Clients still winding down are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
}

async fn run(cli: Cli) -> Result<(), String> {
    let env = Env {
        target: Target::parse(&cli.url)?,
        headers: cli.headers,
        client_ids: !cli.no_client_id,
        monitor: Monitor::start(cli.server_pid),
        run: format!("{:08x}", rand::random::<u32>()).into(),
    };
    let mut out = Output::open(&cli)?;
    match cli.mode {
        Mode::Browsers {
            strategies,
            clients,
            interval_ms,
            rate,
            hold_s,
            warmup_s,
            duration_s,
            lab_latency_ms,
            lab_jitter_ms,
        } => {
            let lab = (lab_latency_ms, lab_jitter_ms);
            if lab != (0, 0) {
                set_lab(&env, cli.teacher_token.as_deref(), lab).await?;
            }
            let latest = browsers::latest_id(&env.target).await?;
            let rtt = browsers::probe_rtt(&env.target, latest).await;
            eprintln!("round trip of an immediate poll: {rtt:.2} ms");
            let mut results = Vec::new();
            let outcome = async {
                for &n in &clients {
                    for &every in &interval_ms {
                        for &strategy in &strategies {
                            // Interval doesn't matter to the push kinds: run
                            // them once per client count.
                            let polls = matches!(strategy, Strategy::Interval | Strategy::Timeout);
                            if !polls && every != interval_ms[0] {
                                continue;
                            }
                            let spec = browsers::Spec {
                                strategy,
                                clients: n,
                                rate,
                                interval: Duration::from_millis(every.max(1)),
                                hold_s,
                                warmup: Duration::from_secs_f64(warmup_s),
                                duration: Duration::from_secs_f64(duration_s),
                                lab,
                            };
                            let budget = spec.warmup
                                + spec.duration
                                + 2 * spec.interval
                                + Duration::from_millis(lab.0 + lab.1)
                                + Duration::from_secs(30);
                            eprintln!(
                                "— {} ×{n}, interval {every} ms, {rate} msg/s",
                                strategy.name()
                            );
                            let result =
                                deadline(budget, browsers::phase(&env, &spec, rtt)).await?;
                            out.write(&env, result.clone())?;
                            results.push(result);
                        }
                    }
                }
                Ok::<(), String>(())
            }
            .await;
            if lab != (0, 0) {
                set_lab(&env, cli.teacher_token.as_deref(), (0, 0)).await?;
            }
            browsers::print_tables(&results);
            outcome?;
        }
        Mode::Posts {
            connections,
            warmup_s,
            duration_s,
        } => {
            let budget = Duration::from_secs_f64(warmup_s + duration_s + 30.0);
            let r = deadline(
                budget,
                targets::posts(
                    &env,
                    connections,
                    Duration::from_secs_f64(warmup_s),
                    Duration::from_secs_f64(duration_s),
                ),
            )
            .await?;
            out.write(&env, r)?;
        }
        Mode::EmptyPolls {
            connections,
            warmup_s,
            duration_s,
        } => {
            let budget = Duration::from_secs_f64(warmup_s + duration_s + 30.0);
            let r = deadline(
                budget,
                targets::empty_polls(
                    &env,
                    connections,
                    Duration::from_secs_f64(warmup_s),
                    Duration::from_secs_f64(duration_s),
                ),
            )
            .await?;
            out.write(&env, r)?;
        }
        Mode::Fanout {
            kind,
            clients,
            messages,
            rate,
        } => {
            if rate <= 0.0 || messages == 0 {
                return Err("fanout needs --messages > 0 and --rate > 0".into());
            }
            let budget =
                Duration::from_secs_f64(90.0 + clients as f64 / 50.0 + messages as f64 / rate);
            let r = deadline(budget, targets::fanout(&env, kind, clients, messages, rate)).await?;
            out.write(&env, r)?;
        }
        Mode::ConnectBurst { clients, at_once } => {
            let budget = Duration::from_secs_f64(30.0 + clients as f64 / 50.0);
            let r = deadline(budget, targets::connect_burst(&env, clients, at_once)).await?;
            out.write(&env, r)?;
        }
        Mode::IdleMemory { kind, clients } => {
            let budget = Duration::from_secs_f64(60.0 + clients as f64 / 50.0);
            let r = deadline(budget, targets::idle_memory(&env, kind, clients)).await?;
            out.write(&env, r)?;
        }
        Mode::Doc { mode } => {
            for r in doc::run(&env, mode, cli.teacher_token.as_deref()).await? {
                out.write(&env, r)?;
            }
        }
        Mode::Report { .. } => unreachable!("handled before the runtime starts"),
    }
    Ok(())
}

/// Runs a scenario under its hard deadline.
async fn deadline<T>(
    budget: Duration,
    scenario: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(budget, scenario)
        .await
        .map_err(|_| format!("scenario exceeded its deadline of {budget:?}"))?
}

/// Where JSON lines go.
struct Output {
    file: Option<std::fs::File>,
    label: String,
    url: String,
}

impl Output {
    fn open(cli: &Cli) -> Result<Output, String> {
        let file = match &cli.json {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(Output {
            file,
            label: cli.label.clone(),
            url: cli.url.clone(),
        })
    }

    /// Adds who/what/when to a result and appends it as one line.
    fn write(&mut self, env: &Env, mut result: Value) -> Result<(), String> {
        if let Some(fields) = result.as_object_mut() {
            fields.insert("label".into(), json!(self.label));
            fields.insert("url".into(), json!(self.url));
            fields.insert("run".into(), json!(&*env.run));
            let unix = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            fields.insert("unix_time".into(), json!(unix));
            // Other work on this machine skews every figure: keep the
            // load average next to the result.
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            let one_minute: Option<f64> = load.split(' ').next().and_then(|x| x.parse().ok());
            fields.insert("loadavg_1m".into(), json!(one_minute));
        }
        if let Some(file) = &mut self.file {
            writeln!(file, "{result}").map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// `PUT /api/lab` with the teacher token.
pub async fn set_lab(
    env: &Env,
    token: Option<&str>,
    (latency, jitter): (u64, u64),
) -> Result<(), String> {
    let token = token.ok_or("the lab needs --teacher-token")?;
    let meter = Arc::new(Meter::default());
    let mut conn = HttpConn::open(&env.target, &meter)
        .await
        .map_err(|e| e.to_string())?;
    let body = format!(r#"{{"latency_ms":{latency},"jitter_ms":{jitter}}}"#);
    let auth = format!("Authorization: Bearer {token}\r\n");
    let req = request(
        "PUT",
        &env.target,
        "/api/lab",
        Headers::Minimal,
        &auth,
        Some(&body),
    );
    let r = conn.roundtrip(&req).await.map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!(
            "PUT /api/lab: status {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
    }
    eprintln!("lab: latency {latency} ms, jitter {jitter} ms");
    Ok(())
}

/// A line on stderr every second while a scenario runs.
mod progress {
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    use crate::clients::Ctx;
    use crate::wire::Meter;

    pub fn spawn(
        label: String,
        meter: Arc<Meter>,
        crowd: Option<Arc<Ctx>>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut last = meter.snapshot();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            // Bounded: the caller aborts it at the end of the scenario.
            loop {
                tick.tick().await;
                let now = meter.snapshot();
                let delta = now - last;
                last = now;
                let ready = crowd.as_ref().map_or(String::new(), |c| {
                    format!(", {} connected", c.ready.load(Relaxed))
                });
                eprintln!(
                    "  [{label}] {:>4.0} s: {} req/s, {} answers/s, {:.1} KiB/s in{ready}, {} errors",
                    started.elapsed().as_secs_f64(),
                    delta.requests,
                    delta.answers,
                    delta.read as f64 / 1024.0,
                    now.errors
                );
            }
        })
    }
}
