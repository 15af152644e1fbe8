//! What goes over the wire, and how much of it.
//!
//! Every connection the load generator opens is a [`Counted`] TCP stream:
//! it adds each byte read or written to a [`Meter`]. Counting at the socket
//! means the numbers include everything a browser's connection carries and
//! that a program can see — HTTP request and response headers, chunked
//! encoding, the WebSocket handshake and frame headers, SSE field names —
//! not just the JSON bodies the server's own `/api/stats` counts. (TCP/IP
//! headers, ~52 bytes a segment on loopback, are below the socket and not
//! counted.)
//!
//! On top of it sits [`HttpConn`], a deliberately tiny HTTP/1.1 client:
//! keep-alive, one request at a time, `Content-Length` and chunked bodies.
//! Hand-rolled so that no byte is hidden from the meter and so that the
//! requests carry exactly the headers we choose.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// How long connecting, or waiting for an answer that is due at once, may
/// take before the attempt counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Counters shared by every connection of one strategy (or one target).
/// Relaxed atomics: they are only summed, never used to synchronise.
#[derive(Default, Debug)]
pub struct Meter {
    /// Bytes the load generator received (server → client).
    pub read: AtomicU64,
    /// Bytes the load generator sent (client → server).
    pub written: AtomicU64,
    /// HTTP requests sent (a WebSocket upgrade or an SSE stream is one).
    pub requests: AtomicU64,
    /// Answers that carried no message (an empty poll, a `204`).
    pub empty: AtomicU64,
    /// Answers received (complete responses, for the request/response kinds).
    pub answers: AtomicU64,
    /// Failed requests or connections (I/O errors, unexpected statuses).
    pub errors: AtomicU64,
    /// TCP connections opened.
    pub connections: AtomicU64,
}

/// A copy of a [`Meter`] at one moment; two snapshots subtract to the
/// traffic of a time window.
#[derive(Default, Debug, Clone, Copy)]
pub struct MeterSnapshot {
    pub read: u64,
    pub written: u64,
    pub requests: u64,
    pub empty: u64,
    pub answers: u64,
    pub errors: u64,
    pub connections: u64,
}

impl Meter {
    pub fn snapshot(&self) -> MeterSnapshot {
        MeterSnapshot {
            read: self.read.load(Relaxed),
            written: self.written.load(Relaxed),
            requests: self.requests.load(Relaxed),
            empty: self.empty.load(Relaxed),
            answers: self.answers.load(Relaxed),
            errors: self.errors.load(Relaxed),
            connections: self.connections.load(Relaxed),
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

impl std::ops::Sub for MeterSnapshot {
    type Output = MeterSnapshot;
    fn sub(self, earlier: MeterSnapshot) -> MeterSnapshot {
        MeterSnapshot {
            read: self.read - earlier.read,
            written: self.written - earlier.written,
            requests: self.requests - earlier.requests,
            empty: self.empty - earlier.empty,
            answers: self.answers - earlier.answers,
            errors: self.errors - earlier.errors,
            connections: self.connections - earlier.connections,
        }
    }
}

/// A stream that counts what passes through it.
pub struct Counted<S> {
    inner: S,
    meter: Arc<Meter>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.meter.read.fetch_add(n as u64, Relaxed);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            self.meter.written.fetch_add(n as u64, Relaxed);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Where the server is: its socket address and the `Host` header to send.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
}

impl Target {
    /// Parses `http://host:port` (a trailing `/` is fine). Only plain HTTP:
    /// the load generator is for servers on this machine.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let host = rest.trim_end_matches('/').to_owned();
        if host.contains('/') {
            return Err(format!("{url}: give the server's root URL, without a path"));
        }
        use std::net::ToSocketAddrs;
        let addr = host
            .to_socket_addrs()
            .map_err(|e| format!("{url}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: no address"))?;
        Ok(Target { addr, host })
    }

    /// Opens a counted TCP connection.
    pub async fn connect(&self, meter: &Arc<Meter>) -> io::Result<Counted<TcpStream>> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        // Browsers turn Nagle off too: small requests go out at once.
        stream.set_nodelay(true)?;
        meter.connections.fetch_add(1, Relaxed);
        Ok(Counted {
            inner: stream,
            meter: Arc::clone(meter),
        })
    }
}

/// Which request headers to send besides `Host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Headers {
    /// What Chromium sends with a page's `fetch()` (without cookies): the
    /// honest cost of a browser's request.
    Browser,
    /// Just `Host` (and the body's headers): for raw server throughput.
    Minimal,
}

/// Chromium's headers for a same-origin `fetch()`, minus `Accept-Encoding`
/// (we would have to decompress) and cookies.
const BROWSER_HEADERS: &str = "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
Accept: */*\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-Fetch-Dest: empty\r\n\
Sec-Fetch-Mode: cors\r\n\
Sec-Fetch-Site: same-origin\r\n\
Connection: keep-alive\r\n";

/// Writes an HTTP/1.1 request head (and body) into one buffer, so it goes
/// out in one write.
pub fn request(
    method: &str,
    target: &Target,
    path: &str,
    headers: Headers,
    extra: &str,
    json_body: Option<&str>,
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", target.host);
    if headers == Headers::Browser {
        out.push_str(BROWSER_HEADERS);
        out.push_str(&format!("Referer: http://{}/\r\n", target.host));
    }
    out.push_str(extra);
    if let Some(body) = json_body {
        out.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// The parts of a response head the client acts on.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub content_length: Option<usize>,
    pub chunked: bool,
    /// The server will close the connection after this response.
    pub close: bool,
}

/// A complete response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: BytesMut,
}

/// Longest response head we accept; a real one is a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;

/// One keep-alive HTTP/1.1 connection.
pub struct HttpConn {
    io: Counted<TcpStream>,
    buf: BytesMut,
    /// Requests answered on this connection (a reused connection that fails
    /// before answering may simply have been closed by the server's idle
    /// timer, and is worth one retry on a fresh connection).
    pub used: u64,
    /// The server said `Connection: close`: do not reuse.
    pub closing: bool,
}

impl HttpConn {
    pub async fn open(target: &Target, meter: &Arc<Meter>) -> io::Result<HttpConn> {
        Ok(HttpConn {
            io: target.connect(meter).await?,
            buf: BytesMut::with_capacity(4096),
            used: 0,
            closing: false,
        })
    }

    /// Sends a request (built by [`request`]) and reads the whole answer.
    pub async fn roundtrip(&mut self, request: &[u8]) -> io::Result<Response> {
        self.send(request).await?;
        let head = self.read_head().await?;
        let body = self.read_body(&head).await?;
        self.used += 1;
        self.closing |= head.close;
        Ok(Response {
            status: head.status,
            body,
        })
    }

    pub async fn send(&mut self, request: &[u8]) -> io::Result<()> {
        self.io.write_all(request).await
    }

    /// Reads more bytes into the buffer; an error at end of stream.
    async fn fill(&mut self) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(4096);
        }
        if self.io.read_buf(&mut self.buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }

    /// Reads and parses the status line and headers.
    pub async fn read_head(&mut self) -> io::Result<Head> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = parsed.code.unwrap_or(0);
                    let mut head = Head {
                        status,
                        content_length: None,
                        chunked: false,
                        close: parsed.version == Some(0),
                    };
                    for header in parsed.headers.iter() {
                        let value = std::str::from_utf8(header.value).unwrap_or("");
                        if header.name.eq_ignore_ascii_case("content-length") {
                            head.content_length = value.trim().parse().ok();
                        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                            head.chunked = value.to_ascii_lowercase().contains("chunked");
                        } else if header.name.eq_ignore_ascii_case("connection") {
                            head.close = value.eq_ignore_ascii_case("close");
                        }
                    }
                    self.buf.advance(len);
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => self.fill().await?,
                Ok(httparse::Status::Partial) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }

    /// Reads a whole body: by `Content-Length`, chunked, or none.
    pub async fn read_body(&mut self, head: &Head) -> io::Result<BytesMut> {
        if head.status == 204 || head.status == 304 || head.status == 101 {
            return Ok(BytesMut::new());
        }
        if head.chunked {
            let mut body = BytesMut::new();
            while let Some(chunk) = self.read_chunk().await? {
                body.extend_from_slice(&chunk);
            }
            return Ok(body);
        }
        let len = head.content_length.unwrap_or(0);
        while self.buf.len() < len {
            self.fill().await?;
        }
        Ok(self.buf.split_to(len))
    }

    /// The next piece of a chunked body, or `None` after the last chunk.
    /// An SSE stream is read this way, one chunk at a time, as it arrives.
    pub async fn read_chunk(&mut self) -> io::Result<Option<BytesMut>> {
        let size = loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let line = std::str::from_utf8(&self.buf[..end]).unwrap_or("");
                let hex = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(hex, 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
                self.buf.advance(end + 2);
                break size;
            }
            self.fill().await?;
        };
        if size == 0 {
            // Trailers (normally none), then the blank line.
            loop {
                if let Some(end) = find(&self.buf, b"\r\n") {
                    self.buf.advance(end + 2);
                    if end == 0 {
                        return Ok(None);
                    }
                } else {
                    self.fill().await?;
                }
            }
        }
        while self.buf.len() < size + 2 {
            self.fill().await?;
        }
        let chunk = self.buf.split_to(size);
        self.buf.advance(2);
        Ok(Some(chunk))
    }

    /// Whatever arrives next, for a streamed body that is not chunked
    /// (HTTP/1.0 style, ended by closing the connection).
    pub async fn read_some(&mut self) -> io::Result<BytesMut> {
        if self.buf.is_empty() {
            self.fill().await?;
        }
        Ok(self.buf.split())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A keep-alive request with one retry on a fresh connection when a reused
/// connection turns out to be closed (the server's idle timer — Node closes
/// idle keep-alive sockets after 5 s — or a reset). Browsers do the same.
/// `conn` is replaced by the fresh connection when that happens.
pub async fn roundtrip_retry(
    conn: &mut Option<HttpConn>,
    target: &Target,
    meter: &Arc<Meter>,
    request: &[u8],
) -> io::Result<Response> {
    if let Some(open) = conn.as_mut() {
        let reused = open.used > 0;
        match open.roundtrip(request).await {
            Ok(response) => {
                if open.closing {
                    *conn = None;
                }
                return Ok(response);
            }
            Err(e) if reused && is_stale(&e) => {}
            Err(e) => {
                *conn = None;
                return Err(e);
            }
        }
    }
    *conn = None;
    let mut fresh = HttpConn::open(target, meter).await?;
    let result = fresh.roundtrip(request).await;
    if result.is_ok() && !fresh.closing {
        *conn = Some(fresh);
    }
    result
}

fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}
