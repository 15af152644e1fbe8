//! The small HTTP helpers every `/api/*` handler shares: reading a JSON
//! body, reading the cursor and other numbers from the query string,
//! writing JSON answers and `Server-Timing`, knowing who is asking (address,
//! `Origin`, `Authorization`).
//!
//! Nothing here knows about a particular log or transport; the transports
//! and handlers use these, never the other way round.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::log::{Entry, Slice};

/// Reads a JSON body of at most `limit` bytes and parses it as `T`.
///
/// Done by hand rather than with `web::Json` so that each failure — wrong
/// `Content-Type` (415), too big (413), malformed (400) — is *our* error with
/// the contract's JSON body, and the size is checked before the body is
/// buffered.
pub async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::NotJson);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::BodyTooLarge(limit));
    }
    let mut body = BytesMut::with_capacity(declared.map_or(1024, |len| len as usize));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadJson(format!("could not read the body: {e}")))?;
        // Chunked bodies have no Content-Length: count as we go.
        if body.len() + chunk.len() > limit {
            return Err(ApiError::BodyTooLarge(limit));
        }
        body.put(chunk);
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::BadJson(format!("invalid JSON body: {e}")))
}

/// Query parameters shared by the reading endpoints. All are strings here
/// and parsed by [`query_number`], so a bad value gets a sentence that names
/// the parameter and its range. Unknown parameters are ignored (contract).
#[derive(Debug, Default, Deserialize)]
pub struct ReadQuery {
    /// Cursor: deliver entries after this position.
    pub since: Option<String>,
    /// Most entries in one answer.
    pub limit: Option<String>,
    /// Long poll: longest hold in seconds.
    pub timeout: Option<String>,
    /// Which polling page is asking (`interval`, `timeout`), for the stats.
    pub transport: Option<String>,
    /// A per-tab id the pages send so the stats can count who is here.
    pub client: Option<String>,
}

/// Default and bounds of `limit` (contract).
pub const LIMIT_DEFAULT: u64 = 100;
/// See [`LIMIT_DEFAULT`].
pub const LIMIT_RANGE: RangeInclusive<u64> = 1..=500;

impl ReadQuery {
    /// `since`, default 0.
    pub fn since(&self) -> Result<u64, ApiError> {
        query_number("since", self.since.as_deref(), 0, 0..=u64::MAX)
    }

    /// The cursor of an event stream: a `Last-Event-ID` header (which
    /// `EventSource` sends by itself when it reconnects: the cursor of the
    /// stream that broke) wins over `since`.
    pub fn since_or_last_event_id(&self, req: &HttpRequest) -> Result<u64, ApiError> {
        match req.headers().get("last-event-id") {
            Some(value) => query_number(
                "Last-Event-ID",
                Some(value.to_str().unwrap_or("?")),
                0,
                0..=u64::MAX,
            ),
            None => self.since(),
        }
    }

    /// `client`, if given: 1..=64 of `A-Z a-z 0-9 _ -`.
    pub fn client(&self) -> Result<Option<&str>, ApiError> {
        match self.client.as_deref() {
            None => Ok(None),
            Some(id)
                if (1..=64).contains(&id.len())
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                Ok(Some(id))
            }
            Some(id) => Err(ApiError::BadQuery(format!(
                "client must be 1 to 64 letters, digits, '_' or '-' (got {id:?})"
            ))),
        }
    }

    /// `limit`, default 100, 1..=500.
    pub fn limit(&self) -> Result<usize, ApiError> {
        query_number("limit", self.limit.as_deref(), LIMIT_DEFAULT, LIMIT_RANGE).map(|n| n as usize)
    }
}

/// Parses an optional decimal query parameter within `range`.
pub fn query_number(
    name: &str,
    value: Option<&str>,
    default: u64,
    range: RangeInclusive<u64>,
) -> Result<u64, ApiError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let bounds = if *range.end() == u64::MAX {
        format!("a whole number from {}", range.start())
    } else {
        format!("a whole number from {} to {}", range.start(), range.end())
    };
    match value.parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ApiError::BadQuery(format!(
            "{name} must be {bounds} (got {value:?})"
        ))),
    }
}

/// The client's address, for per-client limits. IPv4 clients reaching an
/// IPv6 socket appear as `::ffff:a.b.c.d`; fold them back so one student is
/// one key.
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    match req.peer_addr().map(|a| a.ip()) {
        Some(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        Some(ip) => ip,
        None => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    }
}

/// `{"<entries>":[…],"<last>":M}` — a polling answer — assembled from each
/// entry's pre-encoded JSON (no serde work per request). The chat's is
/// `{"messages":[…],"last_id":M}`.
pub fn slice_body<E: Entry>(entries: &str, last: &str, slice: &Slice<E>) -> Bytes {
    let size: usize = slice.entries.iter().map(|e| e.wire().json.len() + 1).sum();
    let mut body = BytesMut::with_capacity(size + 40);
    body.put_slice(b"{\"");
    body.put_slice(entries.as_bytes());
    body.put_slice(b"\":[");
    for (i, entry) in slice.entries.iter().enumerate() {
        if i > 0 {
            body.put_u8(b',');
        }
        body.put_slice(&entry.wire().json);
    }
    body.put_slice(b"],\"");
    body.put_slice(last.as_bytes());
    body.put_slice(b"\":");
    body.put_slice(slice.last.to_string().as_bytes());
    body.put_u8(b'}');
    body.freeze()
}

/// A JSON answer that no browser or proxy may cache: a cached poll would
/// show old news as new.
pub fn json_response(mut builder: actix_web::HttpResponseBuilder, body: Bytes) -> HttpResponse {
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .body(body)
}

/// `Server-Timing` for DevTools' Timing tab: how long the server held the
/// request, and how long the lab delayed the answer after that. The two do
/// not overlap, so they add up to the server's share of the answer's time.
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

/// The token of an `Authorization: Bearer <token>` header. The scheme's
/// name is case-insensitive (RFC 7235 §2.1): `bearer` and `BEARER` count.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

/// True when the request carries `Authorization: Bearer <token>` with the
/// teacher's `token`.
///
/// The comparison takes the same time wherever the two differ (`subtle`),
/// so an attacker cannot guess the token one character at a time by timing
/// the 401s. Only the length can leak, which says nothing useful about a
/// random token.
pub fn teacher_token_matches(req: &HttpRequest, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let presented = bearer_token(req).unwrap_or("");
    presented.as_bytes().ct_eq(token.as_bytes()).into()
}

/// An origin, `scheme://host:port`, normalised: lowercase, the port always
/// written (80 for http, 443 for https when the origin leaves it out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses the serialised origin a browser sends (RFC 6454 §6.2):
    /// `http` or `https`, a host, an optional port — and nothing else (no
    /// user, path, query or fragment). `None` for anything else, including
    /// the opaque origin `null`.
    pub fn parse(text: &str) -> Option<Origin> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let (host, port) = split_host_port(rest, default_port)?;
        Some(Origin { scheme, host, port })
    }

    /// The port a `Host` header means when it names none.
    fn port_default(&self) -> u16 {
        if self.scheme == "https" { 443 } else { 80 }
    }
}

/// `host[:port]` (IPv6 hosts in brackets) → lowercase host and port.
fn split_host_port(text: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, after) = if let Some(bracketed) = text.strip_prefix('[') {
        // An IPv6 address: `[::1]`.
        let (address, after) = bracketed.split_once(']')?;
        if address.is_empty()
            || !address
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        (format!("[{address}]"), after)
    } else {
        let end = text.find(':').unwrap_or(text.len());
        let (name, after) = text.split_at(end);
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return None;
        }
        (name.to_owned(), after)
    };
    let port = match after.strip_prefix(':') {
        None if after.is_empty() => None,
        None => return None,
        Some(digits) => Some(digits),
    };
    let port = match port {
        None => default_port,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse().ok()?
        }
        Some(_) => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// Browsers send `Origin` with every WebSocket handshake and every
/// cross-site `POST`; the WebSocket API is not held back by CORS at all.
/// Without this check any site a student visits could open the room in
/// their browser, with their address (and, with accounts, their cookie).
/// So: a browser may come only from a page of this server — the Origin's
/// host and port equal the `Host` it asked for — or from an origin the
/// teacher allowed (`--allowed-origin`). Requests without an Origin
/// (curl, scripts) are let in.
pub fn check_origin(req: &HttpRequest, allowed: &[String]) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let refused = || ApiError::ForbiddenOrigin(text.to_owned());
    let origin = Origin::parse(text).ok_or_else(refused)?;
    // The teacher may write an allowed origin as a URL (`http://x/`) or with
    // its default port; compared as origins, those are the same.
    if allowed
        .iter()
        .filter_map(|a| Origin::parse(a.trim().trim_end_matches('/')))
        .any(|a| a == origin)
    {
        return Ok(());
    }
    // The Host header carries no scheme; a missing port is the default
    // port of the scheme the page was loaded with, which is the Origin's.
    let default_port = origin.port_default();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| split_host_port(h, default_port));
    match host {
        Some((host, port)) if host == origin.host && port == origin.port => Ok(()),
        _ => Err(refused()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_strictly_and_normalise_default_ports() {
        let o = Origin::parse("http://Localhost").unwrap();
        assert_eq!((o.host.as_str(), o.port), ("localhost", 80));
        assert_eq!(Origin::parse("http://localhost:80"), Some(o));
        assert_eq!(Origin::parse("https://x.example").unwrap().port, 443);
        assert_eq!(Origin::parse("http://[::1]:8080").unwrap().host, "[::1]");
        for bad in [
            "null",
            "",
            "localhost:8080",
            "ftp://x.example",
            "http://",
            "http://x.example/",
            "http://x.example/path",
            "http://user@x.example",
            "http://x.example:80:80",
            "http://x.example:port",
            "http://x.example?q",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad:?}");
        }
    }
}
