//! Opening the listening socket — with the accept queue a class needs, and
//! a deadline on clients that stop taking our bytes.
//!
//! **The backlog.** When the teacher says "open the page now", three
//! hundred browsers connect within the same few milliseconds. The kernel
//! completes each TCP handshake by itself and parks the connection in the
//! listening socket's *accept queue* until the server calls `accept()`; the
//! queue's length is the `backlog` given to `listen()`. A full queue drops
//! the client's final ACK (Linux counts it as `TcpExtListenOverflows`,
//! see `nstat`), and the browser retransmits its SYN only after a second.
//! Rust's `std::net::TcpListener::bind` always asks for 128, and actix's
//! `.backlog()` applies only to sockets actix binds itself, so we bind with
//! [`socket2`] and ask for `--backlog` (the kernel caps it at
//! `net.core.somaxconn`, 4096 on current Linux).
//!
//! **The send deadline.** Every connection accepted from this socket
//! inherits `TCP_USER_TIMEOUT` = `--send-timeout-ms`: when bytes we sent
//! stay unacknowledged — or the client's receive window stays shut (it
//! stopped reading) — for that long, the kernel aborts the connection.
//! This is what cuts off a slow consumer of a WebSocket or an event
//! stream: their frames are written by actix's connection task, which
//! stops asking our code for frames while the client is not reading, so
//! the kernel, which sees the stall directly, is the one to end it.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Binds `addr` and listens with an accept queue of `backlog`; every
/// connection accepted from it gives up on a client that takes none of our
/// bytes for `send_timeout` (none: the kernel's default, minutes).
pub fn bind(
    addr: SocketAddr,
    backlog: u32,
    send_timeout: Option<Duration>,
) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std does: a restarted server may bind the port while connections
    // of the old one are still in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    socket.set_tcp_user_timeout(send_timeout)?;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = send_timeout;
    socket.bind(&addr.into())?;
    // listen() takes a C int; anything larger is capped by the kernel anyway.
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nobody calls `accept()`, so every connection waits in the queue: all
    /// `backlog + 1` of them (Linux admits one more than asked) complete
    /// their handshake. With std's fixed 128, the 130th would wait for SYN
    /// retransmits and time out.
    #[test]
    fn the_accept_queue_holds_the_backlog_asked_for() {
        const BACKLOG: u32 = 300;
        let listener = bind("127.0.0.1:0".parse().unwrap(), BACKLOG, None).unwrap();
        let addr = listener.local_addr().unwrap();
        // Linux completes the handshake of backlog + 1 connections before
        // it starts dropping; std's fixed 128 would stop at 129.
        let clients: Vec<_> = (0..=BACKLOG)
            .map(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)))
            .collect::<Result<_, _>>()
            .expect("every connection fits the accept queue");
        assert_eq!(clients.len(), BACKLOG as usize + 1);
        listener.set_nonblocking(true).unwrap();
        let mut accepted = 0;
        while listener.accept().is_ok() {
            accepted += 1;
        }
        assert_eq!(accepted, BACKLOG as usize + 1, "all of them were queued");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn accepted_connections_inherit_the_send_deadline() {
        let listener = bind(
            "127.0.0.1:0".parse().unwrap(),
            16,
            Some(Duration::from_millis(1_234)),
        )
        .unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let accepted = Socket::from(accepted);
        assert_eq!(
            accepted.tcp_user_timeout().unwrap(),
            Some(Duration::from_millis(1_234))
        );
    }
}
