// setInterval polling — "ask on the clock".
//
// HTTP gives the server no way to speak first, so the page keeps asking:
//
//     GET /api/messages?since=<newest id I have>
//
// and the server answers at once, usually with {"messages":[], …}.
// (The same file reads the shared document's operations, GET /api/doc/ops,
// and its presence: the page passes `log`, see logs.js.)
//
// Read this file next to timeout.js. They are the same file except for one
// spot, marked ▶ THE DIFFERENCE ◀ in run(): *when* the next request is sent.
// Here, setInterval sends one every `every` ms on the clock, whether or not
// the previous answer has come back. On a slow or jittery network the
// requests overlap, a later answer can overtake an earlier one, and a
// careless client shows messages twice or out of order. Tick "naive client"
// on the page, turn on the lab's jitter, and watch it happen.

import { backoff, clientId, request } from '../net.js';
import { CHAT } from './logs.js';

export class IntervalPoller {
  constructor({ since, log = CHAT, every = 1000, naive = false, probe, onEntries, onMessages }) {
    this.since = since; // cursor: the newest position we have (a message id, a rev…)
    this.log = log; // which log, and its names on the wire (logs.js)
    this.every = every; // milliseconds between polls
    this.naive = naive; // beginner mode: trust whichever answer came last
    this.probe = probe; // the page's instruments and timeline
    this.onEntries = onEntries ?? onMessages; // where the entries go (the chat calls them messages)
    this.seq = 0; // our own request counter, sent as seq= for DevTools
    this.failures = 0; // failed retry cycles in a row, for the back-off
    this.cycle = 0; // numbers each run of polls; a failure ends the run
    this.timer = null;
    this.running = false;
    this.aborter = null; // cancels our requests when we stop
  }

  start() {
    this.running = true;
    this.aborter = new AbortController();
    this.probe.state(`polling every ${this.every} ms`, 'ok');
    this.run();
  }

  stop() {
    this.running = false;
    this.clearTimer();
    this.aborter?.abort();
    this.probe.state('stopped', 'idle');
  }

  /** Ask now, then keep asking. */
  run() {
    this.cycle += 1;
    this.poll();
    // ▶ THE DIFFERENCE ◀ setInterval: the browser calls poll() again every
    // `every` ms, on the clock, WHETHER OR NOT the last answer came back.
    this.timer = setInterval(() => this.poll(), this.every);
  }

  /** One request. Resolves to true when it got an answer. */
  async poll() {
    const seq = ++this.seq;
    const cycle = this.cycle; // the run this request belongs to
    const url = `${this.log.poll}?since=${this.since}&transport=interval&seq=${seq}&client=${clientId}`;
    const req = this.probe.request(seq);
    try {
      const { body, wire } = await request(url, { signal: this.aborter.signal, timeoutMs: 15_000 });
      if (cycle !== this.cycle) {
        // Sent before a failure that a retry is already waiting out: this
        // late answer must not turn the page green or move the cursor. The
        // retry asks again from the cursor, so nothing in it is lost.
        req.stale(wire);
        return false;
      }
      const entries = body[this.log.entries];
      req.answered(entries.length, wire);
      this.advance(body);
      this.onEntries(entries);
      this.recovered();
      return true;
    } catch (err) {
      if (err.name === 'AbortError') {
        req.cancelled(); // we stopped; not a failure
        return false;
      }
      req.failed(err);
      // Several requests of one run can fail together (with setInterval,
      // all those in flight when the network drops): that is ONE failure,
      // and one retry. The others belong to a run that already ended.
      if (cycle === this.cycle) this.retryLater(err);
      return false;
    }
  }

  /** Moves the cursor past what an answer contained. */
  advance(page) {
    if (this.naive) {
      // The beginner's line: "the server says the newest id is last_id, so
      // that is where I am". The answer that ARRIVED last wins, even when it
      // is an old answer that was overtaken: the cursor can jump backwards.
      this.since = page[this.log.last];
    } else {
      // The careful line: only ever move forward, and only as far as the
      // entries we actually received.
      const last = page[this.log.entries].at(-1);
      if (last) this.since = Math.max(this.since, this.log.position(last));
    }
  }

  /** A request failed: stop asking for a while (exponential back-off with
   * jitter, never sooner than the server's Retry-After), then start again
   * from the cursor, so nothing is lost. */
  retryLater(err) {
    this.failures += 1;
    this.cycle += 1; // answers to requests sent until now are stale
    const wait = backoff(this.failures, err.retryAfterMs);
    this.clearTimer();
    this.timer = setTimeout(() => this.running && this.run(), wait);
    this.probe.retry(this.failures, wait);
    this.probe.state(`retrying in ${(wait / 1000).toFixed(1)} s`, 'retry');
    this.probe.log(`${describe(err)} — retry #${this.failures} in ${(wait / 1000).toFixed(1)} s`, 'error');
  }

  recovered() {
    if (this.failures === 0) return;
    this.probe.log(`answered again after ${this.failures} failed attempt(s)`, 'ok');
    this.failures = 0;
    this.probe.state(`polling every ${this.every} ms`, 'ok');
  }

  clearTimer() {
    // clearTimeout also cancels a setInterval: browsers keep both kinds of
    // timer in one list, so this line is the same in both files.
    clearTimeout(this.timer);
  }
}

function describe(err) {
  return err.status ? `HTTP ${err.status} ${err.code}` : err.message;
}
