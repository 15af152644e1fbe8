//! Wiring: the shared state every handler sees, the routes, and the
//! server's life from start to graceful stop.
//!
//! [`run`] takes an already-bound listener and a shutdown future, so tests
//! and benchmarks bind port 0 and start exactly the server `main` starts
//! ([`start`] does that on a background thread).

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{App, HttpServer, web};
use tokio::sync::oneshot;

use crate::api;
use crate::config::Config;
use crate::error::{ApiError, query_error};
use crate::lab::Lab;
use crate::limits::{ConnectionGuard, ConnectionLimiter, RateLimiter};
use crate::pages;
use crate::room::Room;
use crate::stats::Stats;
use crate::store::{Store, StoreError};
use crate::transports::{echo, long_poll, polling, sse, websocket};

/// Everything a handler may need, shared by all workers (actix wraps it in
/// an `Arc` as `web::Data<AppState>`).
pub struct AppState {
    /// The one chat room.
    pub room: Room,
    /// The teacher's network lab.
    pub lab: Lab,
    /// Counters for `/api/stats`.
    pub stats: Stats,
    /// The flags the server was started with.
    pub config: Config,
    /// The token `PUT /api/lab` must present (from the flag, or generated).
    pub teacher_token: String,
    /// Messages per second per client address.
    pub post_rate: RateLimiter,
    /// Open WebSockets (room and echo), per address and in total.
    pub ws_slots: Arc<ConnectionLimiter>,
    /// Open SSE streams, per address and in total.
    pub sse_slots: Arc<ConnectionLimiter>,
    /// Held long polls, per address and in total.
    pub longpoll_slots: Arc<ConnectionLimiter>,
}

impl AppState {
    /// Opens the store, loads the room and sets up the limits.
    pub fn open(config: Config) -> Result<AppState, StoreError> {
        let store = Store::open(&config.db, config.sync)?;
        let room = Room::open(store, config.memory_window, config.write_queue)?;
        let teacher_token = config
            .teacher_token
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(generate_token);
        let rate = if config.no_limits {
            0.0
        } else {
            config.post_rate
        };
        Ok(AppState {
            room,
            lab: Lab::new(),
            stats: Stats::default(),
            teacher_token,
            post_rate: RateLimiter::new(rate, config.post_burst),
            ws_slots: ConnectionLimiter::new(
                "WebSocket connections",
                config.limit(config.ws_per_ip),
                config.limit(config.ws_total),
            ),
            sse_slots: ConnectionLimiter::new(
                "event streams",
                config.limit(config.sse_per_ip),
                config.limit(config.sse_total),
            ),
            longpoll_slots: ConnectionLimiter::new(
                "held long polls",
                config.limit(config.longpoll_per_ip),
                config.limit(config.longpoll_total),
            ),
            config,
        })
    }

    /// `503 outage` while the lab's outage is on.
    pub fn check_outage(&self) -> Result<(), ApiError> {
        if self.lab.outage() {
            Err(ApiError::Outage)
        } else {
            Ok(())
        }
    }

    /// Takes a connection slot or explains the refusal.
    pub fn acquire(
        &self,
        limiter: &Arc<ConnectionLimiter>,
        ip: IpAddr,
    ) -> Result<ConnectionGuard, ApiError> {
        limiter
            .acquire(ip)
            .map_err(|refusal| ApiError::TooManyConnections {
                what: limiter.what,
                refusal,
            })
    }
}

/// A token that is easy to read off a projector and type on a laptop:
/// three groups of four from an alphabet without look-alikes (no 0/O, 1/l).
fn generate_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut token = String::with_capacity(14);
    for i in 0..12 {
        if i > 0 && i % 4 == 0 {
            token.push('-');
        }
        token.push(ALPHABET[rand::random_range(0..ALPHABET.len())] as char);
    }
    token
}

/// Every route of the server.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // A resource answers its known methods; any other gets a JSON 405.
    fn resource(path: &str) -> actix_web::Resource {
        web::resource(path).default_service(web::to(api::method_not_allowed))
    }
    cfg.service(
        web::scope("/api")
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .service(
                resource("/messages")
                    .route(web::get().to(polling::get_messages))
                    .route(web::post().to(api::post_message)),
            )
            .service(resource("/longpoll").route(web::get().to(long_poll::long_poll)))
            .service(resource("/ws").route(web::get().to(websocket::websocket)))
            .service(resource("/events").route(web::get().to(sse::events)))
            .service(resource("/echo").route(web::get().to(echo::echo)))
            .service(resource("/stats").route(web::get().to(api::stats)))
            .service(
                resource("/lab")
                    .route(web::get().to(api::get_lab))
                    .route(web::put().to(api::put_lab)),
            )
            .default_service(web::to(api::not_found)),
    )
    .service(resource("/healthz").route(web::get().to(api::healthz)));
    pages::routes(cfg);
}

/// Serves `state` on `listener` until `shutdown` resolves, then stops
/// gracefully: held long polls are answered, WebSockets closed with 1001,
/// SSE streams ended, and every queued message committed.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let state = web::Data::new(state);
    let config = state.config.clone();
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        // Actix calls this once on each worker thread: the place to give the
        // worker its own relay of the room's news (see `room`).
        app_state.room.relay_on_this_thread();
        App::new().app_data(app_state.clone()).configure(routes)
    })
    .workers(config.worker_count())
    // We handle Ctrl-C/SIGTERM ourselves (in main) so that shutdown can
    // first tell long-lived connections to close.
    .disable_signals()
    .shutdown_timeout(config.shutdown_timeout_s)
    // Slowloris guard: the request head must arrive within this time.
    .client_request_timeout(Duration::from_millis(config.client_request_timeout_ms))
    // A client that closes its side has gone away: stop holding its
    // long poll (and free the slot) instead of waiting for the timeout.
    .h1_allow_half_closed(false)
    // Close a finished connection at once instead of lingering up to a
    // second for the client to close first: after a WebSocket closing
    // handshake RFC 6455 wants the *server* to drop the TCP connection,
    // and clients wait for it.
    .client_disconnect_timeout(Duration::ZERO)
    // Real-time traffic is many small writes: send each at once rather
    // than letting Nagle's algorithm hold it for the previous one's ACK
    // (a 40 ms stall whenever two frames go out back to back).
    .tcp_nodelay(true)
    // Room in the accept queue for a class that all connects at once.
    .backlog(4096)
    .max_connections(100_000)
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result?,
        _ = shutdown => {
            tracing::info!("shutting down");
            state.room.begin_close();
            let (_, result) = tokio::join!(handle.stop(true), &mut server);
            result?;
        }
    }
    state.room.flush_and_stop().await;
    tracing::info!("stopped; every stored message is on disk");
    Ok(())
}

/// Raises this process's soft limit on open files to its hard limit and
/// returns the limit now in force.
///
/// Every connection is a file descriptor, and many systems start a process
/// with a soft limit of 1,024 — far below the 10,000 WebSockets the server
/// allows by default. The hard limit is what an unprivileged process may
/// raise itself to. Tests, benchmarks and the load generator use it too.
#[cfg(unix)]
pub fn raise_open_files_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
        limit.rlim_cur
    }
}

/// Elsewhere the operating system's defaults stand.
#[cfg(not(unix))]
pub fn raise_open_files_limit() -> u64 {
    u64::MAX
}

/// `Server-Timing` for DevTools' Timing tab: how long the server held the
/// request, and how long the lab delayed the answer.
pub fn server_timing(held: Duration, lab: Duration) -> (header::HeaderName, String) {
    (
        header::HeaderName::from_static("server-timing"),
        format!(
            "hold;dur={:.1};desc=\"held by server\", lab;dur={};desc=\"lab delay\"",
            held.as_secs_f64() * 1000.0,
            lab.as_millis()
        ),
    )
}

/// A server running on a background thread: for tests and benchmarks.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The teacher token it accepts.
    pub teacher_token: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

/// Opens the state, binds `config.bind` and serves on a new thread.
pub fn start(config: Config) -> io::Result<Running> {
    let listener = TcpListener::bind(config.bind)?;
    let addr = listener.local_addr()?;
    let state = AppState::open(config).map_err(io::Error::other)?;
    let teacher_token = state.teacher_token.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("weebsockets-server".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(run(listener, state, async {
                let _ = stopped.await;
            }))
        })?;
    Ok(Running {
        addr,
        teacher_token,
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Running {
    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `ws://127.0.0.1:PORT{path}`
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Stops gracefully and waits until the store is flushed.
    pub fn stop(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| io::Error::other("server thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
