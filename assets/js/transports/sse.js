// Server-Sent Events — one HTTP response that never ends.
//
//     new EventSource('/api/events?since=<newest id I have>')
//
// The server answers with Content-Type: text/event-stream and keeps the
// response open, writing one event per message:
//
//     id: 42
//     event: message
//     data: {"id":42,"author":"ada",…}
//
// EventSource does the hard part of long polling for us: when the stream
// breaks it waits (the server's `retry:` hint, 2 s here) and reconnects by
// itself, sending the last id it saw as a Last-Event-ID header, and the
// server resumes right after it. One thing it will not do: if the server
// answers that reconnection with an error instead of a stream, the browser
// gives up for good (readyState CLOSED). That is exactly what the lab's
// outage does: the server ends the stream, EventSource reconnects by itself,
// gets a 503, and gives up. From then on it is our code that starts a new
// EventSource, after a back-off, until the server is back.
//
// It is one-way: the page still sends with POST.
//
// The shared document's operations (`event: op`, GET /api/doc/events) and
// presence (`event: presence`) come the same way; the page passes `log`
// (logs.js), which says the stream's URL and its event's name.
//
// Bytes: each event is counted as the text the server wrote (the id:,
// event: and data: lines) plus the chunked encoding's few bytes around
// it; the response head once per stream, as Resource Timing counts heads.
// (Keep-alive comments are invisible to the page, so they are not counted.)

import { backoff, byteLength, clientId, estimateRequestHead, RESPONSE_HEAD_BYTES } from '../net.js';
import { CHAT } from './logs.js';

/** EventSource.readyState values, by name. */
const STATES = ['CONNECTING', 'OPEN', 'CLOSED'];

export class EventSourceClient {
  constructor({ since, log = CHAT, probe, onEntries, onMessages, onReadyState }) {
    this.since = since; // cursor: the newest position we have (a message id, a rev…)
    this.log = log; // which log, and its names on the wire (logs.js)
    this.probe = probe; // the page's instruments and timeline
    this.onEntries = onEntries ?? onMessages; // where the entries go (the chat calls them messages)
    this.onReadyState = onReadyState ?? (() => {});
    this.source = null;
    this.running = false;
    this.failures = 0;
    this.retryTimer = null;
  }

  start() {
    this.running = true;
    this.connect();
  }

  stop(reason = 'page stopped') {
    this.running = false;
    clearTimeout(this.retryTimer);
    // close() fires no event of its own: end the connection's bar here.
    if (this.source && this.source.readyState !== EventSource.CLOSED) {
      this.connection?.closed({ error: false, kind: { headline: 'closed by the page', meaning: reason } });
    }
    this.source?.close();
    this.showReadyState();
    this.probe.state('stopped', 'idle');
  }

  connect() {
    // `since` only matters for this first request; when the browser
    // reconnects by itself it sends Last-Event-ID, which the server prefers.
    const source = new EventSource(`${this.log.events}?since=${this.since}&client=${clientId}`);
    this.source = source;
    let connection = this.probe.connection();
    this.connection = connection;
    let reconnected = false; // by the browser itself, after the stream broke
    this.probe.state('connecting…', 'wait');
    this.showReadyState();

    source.addEventListener('open', () => {
      // The request that opened the stream (estimated, with Last-Event-ID
      // when the browser reconnected by itself) and the response head.
      const lastId = reconnected ? { 'Last-Event-ID': String(this.since) } : {};
      this.probe.wire({ sent: estimateRequestHead('GET', source.url, lastId, 0, 'eventsource'), received: RESPONSE_HEAD_BYTES });
      connection.opened();
      this.probe.event('open', `stream open after #${this.since}`);
      this.probe.state('open', 'ok');
      if (this.failures > 0) this.probe.log(`stream back after ${this.failures} failed attempt(s)`, 'ok');
      this.failures = 0;
      this.showReadyState();
    });

    // "event: message" — one chat message per event ("event: op" for the
    // document). event.lastEventId is the id: line, which the browser will
    // send back when it reconnects.
    source.addEventListener(this.log.event, (event) => {
      const entry = JSON.parse(event.data);
      this.probe.frame('in', eventBytes(event), 1);
      this.since = Math.max(this.since, this.log.position(entry));
      this.onEntries([entry]);
    });

    source.addEventListener('error', () => {
      this.showReadyState();
      if (source.readyState === EventSource.CONNECTING) {
        // The stream broke; the browser is already reconnecting on its own.
        connection.closed({
          error: true,
          kind: {
            headline: 'stream ended',
            meaning: `the browser reconnects by itself in about 2 s, sending Last-Event-ID: ${this.since}`,
          },
        });
        this.probe.event('close', `stream broke — browser reconnects with Last-Event-ID: ${this.since}`);
        this.probe.state('reconnecting (browser)…', 'retry');
        this.probe.log('stream interrupted; EventSource reconnects by itself', 'error');
        connection = this.probe.connection();
        this.connection = connection;
        reconnected = true;
        return;
      }
      // CLOSED: the server answered with something that is not an event
      // stream (an error status: the outage's 503). The browser will not
      // retry: we do.
      connection.closed({
        error: true,
        kind: {
          headline: 'refused — browser gave up',
          meaning: 'the server answered with an error, not a stream (readyState CLOSED); our code opens a new EventSource after a back-off',
        },
      });
      source.close();
      if (!this.running) return;
      this.failures += 1;
      const wait = backoff(this.failures);
      this.probe.retry(this.failures, wait);
      this.probe.event('close', 'browser gave up (error answer) — we reconnect');
      this.probe.state(`retrying in ${(wait / 1000).toFixed(1)} s`, 'retry');
      this.probe.log(`the server refused the stream — new EventSource #${this.failures} in ${(wait / 1000).toFixed(1)} s`, 'error');
      this.retryTimer = setTimeout(() => this.running && this.connect(), wait);
    });
  }

  showReadyState() {
    this.onReadyState(this.source ? STATES[this.source.readyState] : '–');
  }
}

/** One event as the server wrote it — `id: 42\nevent: message\ndata: …\n\n`
 * — plus its chunk's framing in the chunked response (hex length, CRLF,
 * CRLF). */
function eventBytes(event) {
  const text = byteLength(`id: ${event.lastEventId}\nevent: ${event.type}\ndata: ${event.data}\n\n`);
  return text + text.toString(16).length + 4;
}
