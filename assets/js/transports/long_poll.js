// Long polling ("Comet") — "ask once, and let the server hold the question".
//
//     GET /api/longpoll?since=<newest id I have>&timeout=25
//
// The server does not answer until it has a message newer than `since`, or
// until `timeout` seconds pass with nothing new (then it answers
// 204 No Content, which only means "ask again"). As soon as an answer
// arrives, the page asks again. So there is always exactly one request
// waiting at the server, and news travels down it the moment it exists.
//
// It needs nothing new from the browser — it is ordinary fetch() — but all
// the care is ours: a request that never comes back, an error, a server
// that is down. That is the loop below. (The shared document's operations
// and presence are read the same way, from their own endpoints: the page
// passes `log`, see logs.js.)

import { backoff, clientId, request, sleep } from '../net.js';
import { CHAT } from './logs.js';

/** How much longer than the hold we wait before deciding the answer is lost
 * (a dead Wi-Fi does not always produce an error; sometimes just silence). */
const ANSWER_GRACE_MS = 10_000;

export class LongPoller {
  constructor({ since, log = CHAT, hold = 25, naive = false, probe, onEntries, onMessages }) {
    this.since = since; // cursor: the newest position we have (a message id, a rev…)
    this.log = log; // which log, and its names on the wire (logs.js)
    this.hold = hold; // seconds the server may hold each request
    this.naive = naive; // beginner mode: trust the answer's last_id
    this.probe = probe; // the page's instruments and timeline
    this.onEntries = onEntries ?? onMessages; // where the entries go (the chat calls them messages)
    this.seq = 0; // our own request counter
    this.failures = 0; // failures in a row, for the back-off
    this.running = false;
    this.aborter = null; // cancels the held request when we stop
  }

  start() {
    this.running = true;
    this.aborter = new AbortController();
    this.loop();
  }

  stop() {
    this.running = false;
    this.aborter?.abort();
    this.probe.state('stopped', 'idle');
  }

  /** Ask, wait (as long as the server likes), handle the answer, ask again. */
  async loop() {
    const signal = this.aborter.signal;
    while (this.running) {
      const seq = ++this.seq;
      // seq= is ours, for DevTools (and to tell each request's timing apart);
      // the server ignores parameters it does not know.
      const url = `${this.log.longpoll}?since=${this.since}&timeout=${this.hold}&seq=${seq}&client=${clientId}`;
      const req = this.probe.request(seq, { held: true });
      this.probe.state('waiting for news (request held)', 'ok');
      try {
        const answer = await request(url, { signal, timeoutMs: this.hold * 1000 + ANSWER_GRACE_MS });
        if (answer.status === 204) {
          // The hold ran out with nothing new. Not an error: ask again.
          req.answered(0, answer.wire);
        } else {
          const entries = answer.body[this.log.entries];
          req.answered(entries.length, answer.wire);
          this.advance(answer.body);
          this.onEntries(entries);
        }
        this.recovered();
      } catch (err) {
        if (err.name === 'AbortError') {
          req.cancelled(); // we stopped
          return;
        }
        req.failed(err);
        // Back off before asking again — otherwise a server that answers
        // every request with an error at once gets hammered in a tight loop.
        this.failures += 1;
        const wait = backoff(this.failures, err.retryAfterMs);
        this.probe.retry(this.failures, wait);
        this.probe.state(`retrying in ${(wait / 1000).toFixed(1)} s`, 'retry');
        this.probe.log(`${describe(err)} — retry #${this.failures} in ${(wait / 1000).toFixed(1)} s`, 'error');
        try {
          await sleep(wait, signal);
        } catch {
          return; // stopped while waiting
        }
      }
    }
  }

  /** Moves the cursor past what an answer contained. */
  advance(page) {
    if (this.naive) {
      // The beginner's line. With one request at a time it happens to work
      // here — long polling answers can never overtake each other.
      this.since = page[this.log.last];
    } else {
      const last = page[this.log.entries].at(-1);
      if (last) this.since = Math.max(this.since, this.log.position(last));
    }
  }

  recovered() {
    if (this.failures === 0) return;
    this.probe.log(`answered again after ${this.failures} failed attempt(s)`, 'ok');
    this.failures = 0;
  }
}

function describe(err) {
  return err.status ? `HTTP ${err.status} ${err.code}` : err.message;
}
