//! `weebsockets`: parse the flags, open the room, print where to point the
//! class, serve until Ctrl-C or SIGTERM, then stop gracefully.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::ExitCode;

use weebsockets::{AppState, Config};

#[actix_web::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,actix_server=warn".into()),
        )
        .init();

    let config = Config::from_command_line();
    // Each connection is a file descriptor: make room for the class.
    let open_files = weebsockets::raise_open_files_limit();
    let send_timeout = Some(config.send_timeout());
    let listener = match weebsockets::listen::bind(config.bind, config.backlog, send_timeout) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("cannot listen on {}: {err}", config.bind);
            if err.kind() == std::io::ErrorKind::AddrInUse {
                eprintln!("another server is using that port; try --bind 127.0.0.1:8081");
            }
            return ExitCode::FAILURE;
        }
    };
    let db = config.db.display().to_string();
    let state = match AppState::open(config) {
        Ok(state) => state,
        Err(err) => {
            eprintln!("cannot open the message store {db}: {err}");
            return ExitCode::FAILURE;
        }
    };
    // unwrap: a bound listener always has a local address.
    let addr = listener.local_addr().unwrap();
    print_banner(addr, &state, &db);
    let needed = [
        state.config.limit(state.config.ws_total),
        state.config.limit(state.config.sse_total),
        state.config.limit(state.config.longpoll_total),
    ];
    // Warn when even one kind of connection could not reach its own limit.
    let largest = needed.iter().map(|n| u64::from(*n)).max().unwrap_or(0);
    if needed.contains(&0) && open_files < 100_000 || largest > open_files {
        println!(
            "  Note: this process may open only {open_files} files and every connection \
             takes one; raise `ulimit -n` (hard limit) if more tabs than that will connect."
        );
        println!();
    }

    match weebsockets::run(listener, state, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("server error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on Ctrl-C, or on SIGTERM (what `kill` and service managers send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// What the teacher needs at a glance: every page's address (on the LAN too
/// when bound to all interfaces) and the lab's token.
fn print_banner(addr: SocketAddr, state: &AppState, db: &str) {
    let mut hosts = Vec::new();
    if addr.ip().is_unspecified() {
        hosts.push(format!("localhost:{}", addr.port()));
        if let Some(lan) = lan_address() {
            hosts.push(SocketAddr::new(lan, addr.port()).to_string());
        }
    } else {
        hosts.push(addr.to_string());
    }
    let pages = [
        ("lesson map", "/"),
        ("setInterval", "/interval"),
        ("setTimeout", "/timeout"),
        ("long polling", "/longpoll"),
        ("WebSockets", "/websocket"),
        ("Server-Sent Events", "/sse"),
        ("side by side", "/compare"),
        ("dashboard", "/dashboard"),
    ];
    println!();
    println!(
        "  Weebsockets is running — messages so far: {}",
        state.room.last_id()
    );
    for host in &hosts {
        println!();
        for (name, path) in pages {
            println!("    {name:<20} http://{host}{path}");
        }
    }
    if !addr.ip().is_unspecified() && addr.ip().is_loopback() {
        println!();
        println!(
            "  Only this computer can connect. For the class: --bind 0.0.0.0:{}",
            addr.port()
        );
    }
    println!();
    println!(
        "  Teacher token (for the dashboard's lab): {}",
        state.teacher_token
    );
    if let Some(teacher) = &state.config.teacher {
        // The reserved name can only be created with the token; once it is,
        // signing in unlocks the lab and nobody pastes the token again.
        println!(
            "  Teacher account: create {teacher} on /dashboard with the token above; from then on, signing in as {teacher} unlocks the lab."
        );
    }
    println!("  Message log: {db}   Stop with Ctrl-C.");
    println!();
}

/// The address other machines on the network reach us at: the source
/// address the OS would use to reach an outside host. Connecting a UDP
/// socket sends no packet; it only picks a route.
fn lan_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}
