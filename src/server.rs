//! Wiring: the routes, and the server's life from start to graceful stop.
//! This is the top of the module graph: it uses everything, nothing uses it.
//!
//! [`run`] takes an already-bound listener and a shutdown future, so tests
//! and benchmarks bind port 0 and start exactly the server `main` starts
//! ([`start`] does that on a background thread).

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use tokio::sync::oneshot;

use crate::api;
use crate::chat;
use crate::config::Config;
use crate::doc::Document;
use crate::editing;
use crate::error::query_error;
use crate::identity;
use crate::pages;
use crate::presence::Presence;
use crate::room::Room;
use crate::signin;
use crate::state::AppState;
use crate::transports::{echo, long_poll, polling, sse, websocket};

/// A resource that answers its known methods; any other gets a JSON 405.
pub fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(api::method_not_allowed))
}

/// A scope under which a malformed query string is the contract's JSON
/// `400 bad_query`, not actix's plain-text error.
pub fn api_scope(path: &str) -> actix_web::Scope {
    web::scope(path).app_data(web::QueryConfig::default().error_handler(query_error))
}

/// Every route of the server. Each of a log's transports is one generic
/// handler named with the log's [`Topic`](crate::transports::Topic) type.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        api_scope("/api")
            // The chat.
            .service(
                resource("/messages")
                    .route(web::get().to(polling::poll::<Room>))
                    .route(web::post().to(chat::post_message)),
            )
            .service(resource("/longpoll").route(web::get().to(long_poll::long_poll::<Room>)))
            .service(resource("/ws").route(web::get().to(websocket::websocket::<Room>)))
            .service(resource("/events").route(web::get().to(sse::events::<Room>)))
            // The shared document: the same four transports, and its edits.
            .service(resource("/doc").route(web::get().to(editing::get_doc)))
            .service(
                resource("/doc/ops")
                    .route(web::get().to(polling::poll::<Document>))
                    .route(web::post().to(editing::post_op)),
            )
            .service(
                resource("/doc/longpoll").route(web::get().to(long_poll::long_poll::<Document>)),
            )
            .service(resource("/doc/ws").route(web::get().to(websocket::websocket::<Document>)))
            .service(resource("/doc/events").route(web::get().to(sse::events::<Document>)))
            .service(
                resource("/doc/text")
                    .route(web::get().to(editing::get_text))
                    .route(web::put().to(editing::put_text)),
            )
            .service(resource("/doc/summary").route(web::get().to(editing::summary)))
            .service(resource("/doc/restore").route(web::post().to(editing::restore)))
            // Presence: a third log (carets), the same transports again.
            .service(
                resource("/doc/presence")
                    .route(web::get().to(polling::poll::<Presence>))
                    .route(web::post().to(editing::post_presence)),
            )
            .service(
                resource("/doc/presence/longpoll")
                    .route(web::get().to(long_poll::long_poll::<Presence>)),
            )
            .service(
                resource("/doc/presence/ws").route(web::get().to(websocket::websocket::<Presence>)),
            )
            .service(resource("/doc/presence/events").route(web::get().to(sse::events::<Presence>)))
            .service(resource("/echo").route(web::get().to(echo::echo)))
            // Accounts.
            .service(
                resource("/accounts")
                    .route(web::post().to(signin::create_account))
                    .route(web::get().to(signin::signed_in)),
            )
            .service(
                resource("/accounts/{name}/sessions").route(web::delete().to(signin::end_sessions)),
            )
            .service(
                resource("/session")
                    .route(web::post().to(signin::sign_in))
                    .route(web::get().to(signin::who_am_i))
                    .route(web::delete().to(signin::sign_out)),
            )
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
    run_with(listener, state, shutdown, |_| {}).await
}

/// [`run`], with `extra` routes and app data next to the server's own — how
/// a test mounts the transports over a log of its own.
pub async fn run_with(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()>,
    extra: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> io::Result<()> {
    let state = web::Data::new(state);
    let config = state.config.clone();
    let app_state = state.clone();
    let room = web::Data::new(state.room.clone());
    let doc = web::Data::new(state.doc.clone());
    let presence = web::Data::new(state.presence.clone());
    let server = HttpServer::new(move || {
        // Actix calls this once on each worker thread: the place to give the
        // worker its own relay of each log's news (see `log`).
        app_state.room.log().relay_on_this_thread();
        app_state.doc.log().relay_on_this_thread();
        app_state.presence.log().relay_on_this_thread();
        App::new()
            // Changes only from this server's own pages (see `identity`).
            .wrap(actix_web::middleware::from_fn(
                identity::refuse_cross_site_changes,
            ))
            .app_data(app_state.clone())
            .app_data(room.clone())
            .app_data(doc.clone())
            .app_data(presence.clone())
            .configure(extra.clone())
            .configure(routes)
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
    // (The accept queue's length is the listener's own: `listen::bind`
    // gives it `--backlog`; actix's `.backlog()` only applies to sockets it
    // binds itself.)
    .max_connections(100_000)
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result?,
        _ = shutdown => {
            tracing::info!("shutting down");
            state.begin_close();
            let (_, result) = tokio::join!(handle.stop(true), &mut server);
            result?;
        }
    }
    state.flush_and_stop().await;
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
pub fn raise_open_files_limit() -> u64 {
    // `rlimit` asks for as much as the hard limit allows (and knows each
    // system's quirks); on systems without such limits it changes nothing.
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(u64::MAX)
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
    start_with(config, |_| {})
}

/// [`start`], with `extra` routes (see [`run_with`]).
pub fn start_with(
    config: Config,
    extra: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
) -> io::Result<Running> {
    let listener = crate::listen::bind(config.bind, config.backlog, Some(config.send_timeout()))?;
    let addr = listener.local_addr()?;
    let state = AppState::open(config).map_err(io::Error::other)?;
    let teacher_token = state.teacher_token.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("weebsockets-server".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(run_with(
                listener,
                state,
                async {
                    let _ = stopped.await;
                },
                extra,
            ))
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
