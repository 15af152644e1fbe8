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
// What the browser does NOT do for us: reconnect. When the socket closes
// we open a new one after a back-off, with since=<last id we saw>, and the
// server resends exactly what we missed.

import { backoff, clientId } from '../net.js';

/** How long we wait for the server to acknowledge a sent message. */
const ACK_TIMEOUT_MS = 10_000;

export class WebSocketClient {
  constructor({ since, probe, onMessages }) {
    this.since = since; // cursor: the newest message id we have
    this.probe = probe; // the page's instruments and timeline
    this.onMessages = onMessages; // where the messages go
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

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    // 1000 = normal closure: "I am done", not an error.
    this.socket?.close(1000, 'page stopped');
  }

  connect() {
    // Same host and port as the page; ws: for http:, wss: for https:.
    const url = new URL(`/api/ws?since=${this.since}&client=${clientId}`, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.probe.state('connecting…', 'wait');
    const connection = this.probe.connection();
    const socket = new WebSocket(url);
    this.socket = socket;

    // 1. OPEN — the server said 101; we can send and receive now.
    socket.addEventListener('open', () => {
      connection.opened();
      this.probe.event('open', `connected, resuming after #${this.since}`);
      this.probe.state('open', 'ok');
      if (this.failures > 0) this.probe.log(`reconnected after ${this.failures} failed attempt(s)`, 'ok');
      this.failures = 0;
    });

    // 3. RECEIVE — every frame from the server is one "message" event.
    socket.addEventListener('message', (event) => {
      const bytes = new TextEncoder().encode(event.data).length;
      const frame = JSON.parse(event.data);
      this.probe.frame('in', bytes, frame.type === 'message' ? 1 : 0);
      this.probe.event('receive', summarise(frame));
      if (frame.type === 'message') {
        this.since = Math.max(this.since, frame.message.id);
        this.onMessages([frame.message]);
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
      connection.closed(event.code !== 1000);
      this.probe.event('close', `code ${event.code}${event.reason ? ` “${event.reason}”` : ''}`);
      this.failAll('the connection closed before the server confirmed the message');
      if (!this.running) return;
      this.failures += 1;
      const wait = backoff(this.failures);
      this.probe.state(`reconnecting in ${(wait / 1000).toFixed(1)} s`, 'retry');
      this.probe.log(`closed with ${event.code} ${closeMeaning(event.code)} — reconnect in ${(wait / 1000).toFixed(1)} s`, 'error');
      this.retryTimer = setTimeout(() => this.running && this.connect(), wait);
    });
  }

  /**
   * 2. SEND — a message is a frame on the open connection, not a request.
   * Resolves to the stored id when the server acknowledges it.
   */
  send(author, text) {
    if (this.socket?.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error('not connected — try again when the socket is open'));
    }
    const ref = `c-${++this.refs}`;
    const frame = JSON.stringify({ type: 'send', ref, author, text });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.settle({ type: 'error', ref, error: 'no acknowledgement in time' }), ACK_TIMEOUT_MS);
      this.pending.set(ref, { resolve, reject, timer });
      this.socket.send(frame);
      this.probe.frame('out', new TextEncoder().encode(frame).length, 0);
      this.probe.event('send', `send ${ref}`);
    });
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
    if (frame.type === 'ack') waiting.resolve(frame.id);
    else waiting.reject(Object.assign(new Error(frame.error), { code: frame.code, retryAfterMs: frame.retry_after_ms }));
  }

  failAll(reason) {
    for (const ref of [...this.pending.keys()]) this.settle({ type: 'error', ref, error: reason });
  }
}

function summarise(frame) {
  switch (frame.type) {
    case 'welcome':
      return `welcome (newest id #${frame.last_id})`;
    case 'message':
      return `message #${frame.message.id}`;
    case 'ack':
      return `ack ${frame.ref} → #${frame.id}`;
    default:
      return `${frame.type}${frame.code ? ` ${frame.code}` : ''}`;
  }
}

function closeMeaning(code) {
  const meanings = {
    1000: '(normal)',
    1001: '(server going away)',
    1006: '(connection lost, no close frame)',
    1009: '(frame too big)',
    1011: '(server error)',
    1013: '(try again later)',
  };
  return meanings[code] ?? '';
}
