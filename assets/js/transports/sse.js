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
// breaks it waits (the server's `retry:` hint) and reconnects by itself,
// sending the last id it saw as a Last-Event-ID header, and the server
// resumes right after it. One thing it will not do: if the server answers
// with an error instead of a stream (a 503 during an outage, say), the
// browser gives up for good (readyState CLOSED). Then we start a new
// EventSource ourselves, after a back-off.
//
// It is one-way: the page still sends with POST.

import { backoff, clientId } from '../net.js';

/** EventSource.readyState values, by name. */
const STATES = ['CONNECTING', 'OPEN', 'CLOSED'];

export class EventSourceClient {
  constructor({ since, probe, onMessages, onReadyState }) {
    this.since = since; // cursor: the newest message id we have
    this.probe = probe; // the page's instruments and timeline
    this.onMessages = onMessages; // where the messages go
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

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.source?.close();
    this.showReadyState();
    this.probe.state('stopped', 'idle');
  }

  connect() {
    // `since` only matters for this first request; when the browser
    // reconnects by itself it sends Last-Event-ID, which the server prefers.
    const source = new EventSource(`/api/events?since=${this.since}&client=${clientId}`);
    this.source = source;
    let connection = this.probe.connection();
    this.probe.state('connecting…', 'wait');
    this.showReadyState();

    source.addEventListener('open', () => {
      connection.opened();
      this.probe.event('open', `stream open after #${this.since}`);
      this.probe.state('open', 'ok');
      if (this.failures > 0) this.probe.log(`stream back after ${this.failures} failed attempt(s)`, 'ok');
      this.failures = 0;
      this.showReadyState();
    });

    // "event: message" — one chat message per event. event.lastEventId is
    // the id: line, which the browser will send back when it reconnects.
    source.addEventListener('message', (event) => {
      const message = JSON.parse(event.data);
      const bytes = new TextEncoder().encode(event.data).length;
      this.probe.frame('in', bytes, 1);
      this.since = Math.max(this.since, message.id);
      this.onMessages([message]);
    });

    source.addEventListener('error', () => {
      connection.closed(true);
      this.showReadyState();
      if (source.readyState === EventSource.CONNECTING) {
        // The stream broke; the browser is already reconnecting on its own.
        this.probe.event('close', `stream broke — browser reconnects with Last-Event-ID: ${this.since}`);
        this.probe.state('reconnecting (browser)…', 'retry');
        this.probe.log('stream interrupted; EventSource reconnects by itself', 'error');
        connection = this.probe.connection();
        return;
      }
      // CLOSED: the server answered with something that is not an event
      // stream (an error status). The browser will not retry: we do.
      source.close();
      if (!this.running) return;
      this.failures += 1;
      const wait = backoff(this.failures);
      this.probe.event('close', 'browser gave up (error answer) — we reconnect');
      this.probe.state(`retrying in ${(wait / 1000).toFixed(1)} s`, 'retry');
      this.probe.log(`the server refused the stream — new EventSource in ${(wait / 1000).toFixed(1)} s`, 'error');
      this.retryTimer = setTimeout(() => this.running && this.connect(), wait);
    });
  }

  showReadyState() {
    this.onReadyState(this.source ? STATES[this.source.readyState] : '–');
  }
}
