//! Every knob the server has, as command-line flags (and `WEEBSOCKETS_*`
//! environment variables).
//!
//! The defaults are chosen for a classroom: one laptop, 30–300 students on
//! the same Wi-Fi, each with a few tabs open. `docs/limits.md` explains each
//! limit, what a client sees when it hits it, and why its default is what it
//! is. Tests and benchmarks build a [`Config`] with
//! [`Config::default`] and change the fields they care about.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// How hard SQLite works to keep a commit on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncMode {
    /// `synchronous=FULL`: every commit is fsynced before a client hears
    /// "stored". Survives a crash of the server *and* of the machine.
    Full,
    /// `synchronous=NORMAL`: survives a crash of the server (even `kill -9`),
    /// but a power cut may lose the last commits. Faster on slow disks.
    Normal,
}

/// Command-line configuration of the server.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "weebsockets",
    version,
    about = "One chat room over setInterval polling, setTimeout polling, long polling, WebSockets and Server-Sent Events — a live lesson in real-time web transports."
)]
pub struct Config {
    /// Address to listen on. Use 0.0.0.0:8080 to let students on the
    /// classroom network connect.
    #[arg(long, env = "WEEBSOCKETS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// SQLite database file holding the message log; `:memory:` keeps
    /// nothing after the server stops.
    #[arg(long, env = "WEEBSOCKETS_DB", default_value = "weebsockets.db")]
    pub db: PathBuf,

    /// Token the teacher enters on /dashboard to change the network lab.
    /// When left out, a random one is generated and printed at start.
    #[arg(long, env = "WEEBSOCKETS_TEACHER_TOKEN", hide_env_values = true)]
    pub teacher_token: Option<String>,

    /// HTTP worker threads (each runs its own single-threaded runtime);
    /// 0 means one per CPU core.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,

    /// SQLite durability level for each commit.
    #[arg(long, value_enum, default_value_t = SyncMode::Full)]
    pub sync: SyncMode,

    /// How many of the newest messages the room keeps in memory; readers
    /// further behind are served from the database.
    #[arg(long, default_value_t = 10_000)]
    pub memory_window: usize,

    // ----- limits (0 means "no limit" wherever a count is asked) -----
    /// Largest accepted HTTP request body, in bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,

    /// Longest message text in characters (at most the contract's 2000).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u16).range(1..=2000))]
    pub max_text_chars: u16,

    /// Largest accepted WebSocket frame (or reassembled message), in bytes;
    /// a bigger one closes the connection with code 1009.
    #[arg(long, default_value_t = 64 * 1024)]
    pub ws_max_frame_bytes: usize,

    /// Messages each person (an account, or a guest's tab; a client that
    /// says neither: its address) may send per second, on average (token
    /// bucket; 0 = unlimited).
    #[arg(long, default_value_t = 5.0)]
    pub post_rate: f64,

    /// How many messages a person may send in one burst.
    #[arg(long, default_value_t = 20)]
    pub post_burst: u32,

    /// Messages each client address may send per second, all its people
    /// together: a looser outer bound over `--post-rate`, for a class that
    /// reaches the server through one address (0 = unlimited).
    #[arg(long, default_value_t = 60.0)]
    pub post_rate_per_ip: f64,

    /// How many messages a client address may send in one burst.
    #[arg(long, default_value_t = 300)]
    pub post_burst_per_ip: u32,

    /// Open WebSockets allowed per person: an account, or a guest's tab
    /// (0 = unlimited).
    #[arg(long, default_value_t = 32)]
    pub ws_per_person: u32,
    /// Open WebSocket connections allowed per client address, everyone
    /// behind it together (0 = unlimited).
    #[arg(long, default_value_t = 1024)]
    pub ws_per_ip: u32,
    /// Open WebSocket connections allowed in total (0 = unlimited).
    #[arg(long, default_value_t = 10_000)]
    pub ws_total: u32,
    /// Open SSE streams allowed per person (0 = unlimited).
    #[arg(long, default_value_t = 32)]
    pub sse_per_person: u32,
    /// Open SSE streams allowed per client address (0 = unlimited).
    #[arg(long, default_value_t = 1024)]
    pub sse_per_ip: u32,
    /// Open SSE streams allowed in total (0 = unlimited).
    #[arg(long, default_value_t = 10_000)]
    pub sse_total: u32,
    /// Long polls held at once per person (0 = unlimited).
    #[arg(long, default_value_t = 32)]
    pub longpoll_per_person: u32,
    /// Long polls held at once per client address (0 = unlimited).
    #[arg(long, default_value_t = 1024)]
    pub longpoll_per_ip: u32,
    /// Long polls held at once in total (0 = unlimited).
    #[arg(long, default_value_t = 10_000)]
    pub longpoll_total: u32,

    /// Longest hold a long poll may ask for, in seconds (1..=55).
    #[arg(long, default_value_t = 55, value_parser = clap::value_parser!(u64).range(1..=55))]
    pub longpoll_max_s: u64,

    /// Longest shared document, in characters (code points); an edit that
    /// would make it longer is refused with 422 document_too_long.
    #[arg(long, default_value_t = 100_000)]
    pub doc_max_chars: usize,

    /// Largest accepted body (or WebSocket frame) of a document edit, in
    /// bytes: a whole 100,000-character text must fit in one
    /// `PUT /api/doc/text`.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub doc_max_body_bytes: usize,

    /// Edits each editor (browser tab) may send per second, on average
    /// (token bucket; 0 = unlimited).
    #[arg(long, default_value_t = 30.0)]
    pub doc_op_rate: f64,

    /// How many edits an editor may send in one burst.
    #[arg(long, default_value_t = 60)]
    pub doc_op_burst: u32,

    /// Edits each client address may send per second, everyone behind it
    /// together: the outer bound over `--doc-op-rate` (0 = unlimited).
    #[arg(long, default_value_t = 1000.0)]
    pub doc_op_rate_per_ip: f64,

    /// How many edits a client address may send in one burst.
    #[arg(long, default_value_t = 2000)]
    pub doc_op_burst_per_ip: u32,

    /// Messages waiting for the database writer before new posts are
    /// refused with 503.
    #[arg(long, default_value_t = 10_000)]
    pub write_queue: usize,

    /// Lift every rate and connection limit (for benchmarks and load tests;
    /// never in a classroom).
    #[arg(long)]
    pub no_limits: bool,

    // ----- timers -----
    /// How often the server pings each WebSocket, in milliseconds.
    #[arg(long, default_value_t = 15_000)]
    pub ws_ping_ms: u64,
    /// A WebSocket that has sent nothing (not even a pong) for this long is
    /// dropped. Keep it above two ping intervals.
    #[arg(long, default_value_t = 45_000)]
    pub ws_timeout_ms: u64,
    /// Idle SSE streams get a comment line this often so proxies and
    /// browsers keep them open, and so a vanished client is noticed.
    #[arg(long, default_value_t = 15_000)]
    pub sse_keepalive_ms: u64,
    /// The `retry:` an SSE stream tells EventSource to wait before
    /// reconnecting, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    pub sse_retry_ms: u64,
    /// A WebSocket or SSE client that cannot take a frame for this long is
    /// a slow consumer and is disconnected (it resumes from its cursor).
    #[arg(long, default_value_t = 10_000)]
    pub send_timeout_ms: u64,
    /// Time a client has to send its request headers (slowloris guard).
    /// At least 1000: actix measures it from a clock it refreshes only every
    /// 500 ms, and a shorter deadline can land in the past and never fire.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1_000..))]
    pub client_request_timeout_ms: u64,
    /// On Ctrl-C, how long open requests get to finish.
    #[arg(long, default_value_t = 5)]
    pub shutdown_timeout_s: u64,

    /// Connections the kernel may hold waiting for the server to accept
    /// them (the listen backlog): room for a whole class connecting at
    /// once. Linux caps it at `net.core.somaxconn`.
    #[arg(long, default_value_t = 4096)]
    pub backlog: u32,

    /// Extra origins (scheme://host:port) allowed to open the WebSocket and
    /// to send changes, besides the server's own host. Repeat the flag for
    /// several.
    #[arg(long = "allowed-origin")]
    pub allowed_origins: Vec<String>,

    // ----- accounts -----
    /// Guests may read but not write: sending a message or an edit needs an
    /// account (401 sign_in_required).
    #[arg(long)]
    pub accounts_required: bool,

    /// Reserves this name for the teacher: its account can only be created
    /// with the teacher token, and it may change the lab and end other
    /// people's sessions.
    #[arg(long, env = "WEEBSOCKETS_TEACHER")]
    pub teacher: Option<String>,

    /// Hash passwords with toy Argon2 costs (milliseconds instead of tens of
    /// them). For the test suites only: never in a classroom.
    #[arg(long, hide = true)]
    pub insecure_fast_passwords: bool,

    /// A session (and its cookie) ends this many days after sign-in.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub session_days: u32,
}

impl Default for Config {
    /// The flags' defaults — and only those: `WEEBSOCKETS_*` environment
    /// variables are for the command line ([`Config::parse`], which reports
    /// a malformed one as a usage error), not for tests and benchmarks that
    /// build a config in code.
    fn default() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let command = Config::command().mut_args(|arg| arg.env(None::<&str>));
        // unwrap: with no arguments and no environment only the defaults
        // above are parsed, and they always parse.
        let matches = command.try_get_matches_from(["weebsockets"]).unwrap();
        // unwrap: the matches come from this very command.
        Config::from_arg_matches(&matches).unwrap()
    }
}

impl Config {
    /// The configuration of the server the teacher starts: the command line
    /// and the `WEEBSOCKETS_*` environment. A mistake in either is a usage
    /// error (status 2), with clap's explanation — and, when the bad value
    /// came from the environment, the name of the variable, which clap
    /// itself leaves out (it names only the flag).
    pub fn from_command_line() -> Config {
        // A value that is not UTF-8 cannot even be shown; clap would only
        // say "invalid UTF-8 was detected in one or more arguments".
        for (name, value) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("WEEBSOCKETS_") && value.to_str().is_none() {
                eprintln!("error: the environment variable {name} is not valid UTF-8");
                std::process::exit(2);
            }
        }
        match Config::try_parse() {
            Ok(config) => config,
            Err(err) => {
                if let Some(variable) = variable_behind(&err) {
                    eprintln!(
                        "error in the environment variable {variable} (set it to a valid value, \
                         or unset it):"
                    );
                }
                err.exit()
            }
        }
    }

    /// A configuration for tests and benchmarks: an ephemeral port on
    /// loopback, an in-memory database, a known teacher token, two workers.
    pub fn for_tests() -> Config {
        Config {
            // unwrap: a literal socket address.
            bind: "127.0.0.1:0".parse().unwrap(),
            db: PathBuf::from(":memory:"),
            teacher_token: Some("teacher".into()),
            workers: 2,
            ..Config::default()
        }
    }

    /// True when the database lives only in memory.
    pub fn in_memory(&self) -> bool {
        self.db.as_os_str() == ":memory:"
    }

    /// Applies `--no-limits`: returns the limit, or 0 ("unlimited").
    pub fn limit(&self, value: u32) -> u32 {
        if self.no_limits { 0 } else { value }
    }

    /// The configured number of workers, resolving 0 to the core count.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }

    /// `ws_ping_ms` as a duration.
    pub fn ws_ping(&self) -> Duration {
        Duration::from_millis(self.ws_ping_ms)
    }
    /// `ws_timeout_ms` as a duration.
    pub fn ws_timeout(&self) -> Duration {
        Duration::from_millis(self.ws_timeout_ms)
    }
    /// `sse_keepalive_ms` as a duration.
    pub fn sse_keepalive(&self) -> Duration {
        Duration::from_millis(self.sse_keepalive_ms)
    }
    /// `send_timeout_ms` as a duration.
    pub fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }
}

/// The environment variable that gave the value clap refused, if the
/// refused flag was not on the command line but its variable is set.
fn variable_behind(err: &clap::Error) -> Option<String> {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue};
    let ContextValue::String(arg) = err.get(ContextKind::InvalidArg)? else {
        return None;
    };
    // "--bind <BIND>" → "bind"
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    let command = Config::command();
    let variable = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))?
        .get_env()?
        .to_str()?
        .to_owned();
    let flag = format!("--{long}");
    let on_command_line = std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    (!on_command_line && std::env::var_os(&variable).is_some()).then_some(variable)
}
