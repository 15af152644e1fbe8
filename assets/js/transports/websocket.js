// WebSockets — one connection, kept open, that both sides can talk on.
//
//     new WebSocket('ws://host/api/ws?since=<newest id I have>')
//
// The browser sends one HTTP request with "Upgrade: websocket"; the server
// answers "101 Switching Protocols", and from then on the same TCP
// connection carries small frames in both directions. The API has four
// things, and they are the four events on the page:
//
//   1. open     — the upgrade worked; the connection is ready.
//   2. send     — socket.send(text): a frame to the server, no new request.
//   3. receive  — a "message" event for each frame the server pushes.
//   4. close    — either side ends it, with a code (1000 normal, 1001 going
//                 away, 1013 try again later, 1006 the connection just died).
//
// "Close — who cares?" We do: the close event is all the error handling the
// API gives us. Its code says why (the server's outage closes with 1013,
// "try again later"); `wasClean` says whether the two sides said goodbye
// with close frames. And a socket that never opened — the server answered
// the upgrade with an HTTP error, a 503 during the outage — closes with
// 1006 too: the browser never tells the page the HTTP status. The only way
// to tell "refused" from "dropped" is whether `open` ever fired.
//
// What the browser does NOT do for us: reconnect. When the socket closes
// we open a new one after a back-off, with since=<last id we saw>, and the
// server resends exactly what we missed.
//
// The same file reads the shared document (GET /api/doc/ws: `op` frames,
// and the editor sends its edits as frames) and its presence: the page
// passes `log` (logs.js), which says where the socket is and what an
// entry's frame is called.
//
// Bytes: a frame costs its payload plus a 2–14 byte header — 2 for a short
// frame from the server, 4 from 126 bytes, 10 from 64 KiB, and 4 more
// (the mask key) on every frame the browser sends. The handshake is one
// HTTP request and a 101 answer, once per connection.

import { backoff, byteLength, clientId, estimateRequestHead, RESPONSE_HEAD_BYTES } from '../net.js';
import { CHAT } from './logs.js';

/** What a WebSocket close code means (RFC 6455 §7.4, and ours). */
export const CLOSE_MEANINGS = {
  1000: 'normal closure',
  1001: 'going away (server shutting down, or page left)',
  1005: 'closed without a code',
  1006: 'connection dropped — no close frame',
  1008: 'policy violation',
  1009: 'message too big',
  1011: 'server error',
  1012: 'server restarting',
  1013: 'try again later',
};

/** How long we wait for the server to acknowledge a sent frame. */
const ACK_TIMEOUT_MS = 10_000;

export class WebSocketClient {
  constructor({ since, log = CHAT, probe, onEntries, onMessages, onUrl, onOpen }) {
    this.since = since; // cursor: the newest position we have (a message id, a rev…)
    this.log = log; // which log, and its names on the wire (logs.js)
    this.probe = probe; // the page's instruments and timeline
    this.onEntries = onEntries ?? onMessages; // where the entries go (the chat calls them messages)
    this.onUrl = onUrl; // told the ws:// (or wss://) URL it connects to
    this.onOpen = onOpen; // told each time a connection opens (an editor resends then)
    this.socket = null;
    this.running = false;
    this.failures = 0; // connection attempts in a row that failed
    this.refs = 0; // numbering of our sends, echoed back in acks
    this.pending = new Map(); // ref → {resolve, reject, timer}
    this.retryTimer = null;
  }

  start() {
    this.running = true;
    this.connect();
  }

  stop(reason = 'page stopped') {
    this.running = false;
    clearTimeout(this.retryTimer);
    // 1000 = normal closure: "I am done", not an error.
    this.socket?.close(1000, reason);
  }

  connect() {
    // Same host and port as the page; ws: for http:, wss: for https:.
    const url = new URL(`${this.log.ws}?since=${this.since}&client=${clientId}`, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.probe.state('connecting…', 'wait');
    this.onUrl?.(url.href);
    const connection = this.probe.connection();
    const socket = new WebSocket(url);
    this.socket = socket;
    let opened = false;

    // 1. OPEN — the server said 101; we can send and receive now.
    socket.addEventListener('open', () => {
      opened = true;
      // The handshake that just happened, both ways (estimated: a page
      // cannot see it; DevTools → Network → the ws request shows it).
      this.probe.wire({ sent: handshakeRequestBytes(url), received: RESPONSE_HEAD_BYTES });
      connection.opened();
      this.probe.event('open', `connected, resuming after #${this.since}`);
      this.probe.state('open', 'ok');
      if (this.failures > 0) this.probe.log(`reconnected after ${this.failures} failed attempt(s)`, 'ok');
      this.failures = 0;
      this.onOpen?.();
    });

    // 3. RECEIVE — every frame from the server is one "message" event.
    socket.addEventListener('message', (event) => {
      const frame = JSON.parse(event.data);
      const isEntry = frame.type === this.log.event; // 'message', 'op', 'presence'
      this.probe.frame('in', frameBytes(event.data, false), isEntry ? 1 : 0);
      this.probe.event('receive', summarise(frame, this.log));
      if (isEntry) {
        const entry = this.log.unwrap(frame);
        this.since = Math.max(this.since, this.log.position(entry));
        this.onEntries([entry]);
      } else if (frame.type === 'ack' || frame.type === 'error') {
        this.settle(frame);
      }
    });

    // An 'error' event carries no detail (on purpose: a page must not learn
    // why a connection to another site failed). A 'close' always follows.
    socket.addEventListener('error', () => {
      this.probe.log('the connection failed (the browser does not say why)', 'error');
    });

    // 4. CLOSE — the end, whoever started it. We come back unless we stopped.
    socket.addEventListener('close', (event) => {
      connection.closed({
        code: event.code,
        meaning: CLOSE_MEANINGS[event.code],
        reason: event.reason,
        wasClean: event.wasClean,
        opened,
      });
      const clean = `wasClean: ${event.wasClean}`;
      if (opened) {
        const reason = event.reason ? ` “${event.reason}”` : '';
        this.probe.event('close', `code ${event.code} ${closeMeaning(event.code)}${reason}, ${clean}`);
      } else {
        // Never opened: the upgrade was answered with an error (or nobody
        // answered). The event still says 1006, but nothing was dropped.
        this.probe.event('close', `handshake refused (or server unreachable) — code ${event.code}, ${clean}; the browser never shows the HTTP status`);
      }
      this.failAll('the connection closed before the server confirmed the message');
      if (!this.running) return;
      this.failures += 1;
      const wait = backoff(this.failures);
      this.probe.retry(this.failures, wait);
      this.probe.state(`reconnecting in ${(wait / 1000).toFixed(1)} s`, 'retry');
      const why = opened ? `closed with ${event.code} ${closeMeaning(event.code)}` : 'the handshake was refused';
      this.probe.log(`${why} — reconnect #${this.failures} in ${(wait / 1000).toFixed(1)} s`, 'error');
      this.retryTimer = setTimeout(() => this.running && this.connect(), wait);
    });
  }

  /**
   * 2. SEND — a message is a frame on the open connection, not a request.
   * Resolves to the stored id when the server acknowledges it. `key` makes
   * a resend safe: sent again with the same key (after a timeout, or on a
   * new connection), the server answers with the message it already has.
   */
  send(author, text, key) {
    const fields = key ? { author, text, key } : { author, text };
    return this.submit({ type: 'send', ...fields }).then((ack) => ack.id);
  }

  /**
   * Any frame that the server answers (a chat `send`, a document `op`):
   * numbered with a `ref`, which the server's `ack` (or `error`) echoes.
   * Resolves to the ack frame.
   */
  submit(fields) {
    if (this.socket?.readyState !== WebSocket.OPEN) {
      return Promise.reject(Object.assign(new Error('not connected — try again when the socket is open'), { code: 'not_connected' }));
    }
    const ref = `c-${++this.refs}`;
    const frame = JSON.stringify({ type: fields.type, ref, ...fields });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.settle({ type: 'error', ref, error: 'no acknowledgement in time', code: 'timeout' }), ACK_TIMEOUT_MS);
      this.pending.set(ref, { resolve, reject, timer });
      this.socket.send(frame);
      this.probe.frame('out', frameBytes(frame, true), 0);
      this.probe.event('send', `${fields.type} ${ref}`);
    });
  }

  /** A frame the server does not answer (a caret on the presence socket).
   * Returns false when the socket is not open: the frame was not sent. */
  tell(fields) {
    if (this.socket?.readyState !== WebSocket.OPEN) return false;
    const frame = JSON.stringify(fields);
    this.socket.send(frame);
    this.probe.frame('out', frameBytes(frame, true), 0);
    this.probe.event('send', fields.type);
    return true;
  }

  /** An ack or error frame answers one of our sends (matched by ref). */
  settle(frame) {
    const waiting = this.pending.get(frame.ref);
    if (!waiting) {
      if (frame.type === 'error') this.probe.log(`server error: ${frame.error}`, 'error');
      return;
    }
    this.pending.delete(frame.ref);
    clearTimeout(waiting.timer);
    if (frame.type === 'ack') waiting.resolve(frame);
    else waiting.reject(Object.assign(new Error(frame.error), { code: frame.code, retryAfterMs: frame.retry_after_ms }));
  }

  failAll(reason) {
    for (const ref of [...this.pending.keys()]) this.settle({ type: 'error', ref, error: reason, code: 'closed' });
  }
}

function summarise(frame, log) {
  switch (frame.type) {
    case 'welcome':
      return `welcome (newest ${log.label(frame[log.last])})`;
    case log.event:
      return `${log.event} ${log.label(log.position(log.unwrap(frame)))}`;
    case 'ack':
      // The chat's ack says the message's id; the document's, the rev.
      return `ack ${frame.ref} → ${log.label(frame.id ?? frame.rev)}`;
    default:
      return `${frame.type}${frame.code ? ` ${frame.code}` : ''}`;
  }
}

function closeMeaning(code) {
  const meaning = CLOSE_MEANINGS[code];
  return meaning ? `(${meaning})` : '';
}

/** A text frame on the wire: the UTF-8 payload plus the frame header —
 * 2 bytes, +2 from 126 bytes, +8 from 64 KiB; frames the browser sends
 * are masked, +4 (RFC 6455 §5.2). */
function frameBytes(text, masked) {
  const payload = byteLength(text);
  const length = payload < 126 ? 0 : payload < 65_536 ? 2 : 8;
  return payload + 2 + length + (masked ? 4 : 0);
}

/** The upgrade request, estimated like any other request head (net.js),
 * with the headers a WebSocket handshake adds. */
function handshakeRequestBytes(url) {
  const headers = {
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': 'x'.repeat(24), // 16 random bytes, base64
    'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits',
  };
  return estimateRequestHead('GET', url.href, headers, 0, 'websocket');
}
