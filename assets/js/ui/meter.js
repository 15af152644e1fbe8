// The instrument panel. A transport reports what it does to a Meter (the
// "probe"): requests sent and answered, connections opened and closed,
// frames in and out, retries, state changes, log lines. The Meter keeps the
// counters, draws each event on the timeline, and shows the numbers on the
// page. It knows nothing about chat messages: the shared document's pages
// use it too.
//
// The probe interface every transport uses:
//   probe.request(seq, {held}) → {answered(count, wire), stale(wire),
//                                 failed(err), cancelled()}
//       wire: what the exchange cost on the wire — a number of bytes
//       received, or (better) the `wire` promise net.js's request() gives
//   probe.connection()         → {opened(), closed(info)}
//       info: {code, meaning, reason, wasClean, opened} as the close event
//       said, and what the code means (SSE passes {kind} — it has no codes)
//   probe.frame('in'|'out', wireBytes, messageCount)
//   probe.wire({sent, received, sentHead, receivedHead})  — bytes that are
//       not a request or a frame (a WebSocket handshake)
//   probe.retry(attempt, waitMs) — a retry cycle starts: one per failure
//   probe.event(name, detail)  — the WebSocket's four events (and SSE's)
//   probe.state(label, tone)   — tone: ok | wait | retry | idle
//   probe.log(text, tone)
//
// Every number is shown in an element with data-stat="<name>" (inside the
// stats root or the events panel); the element also gets data-value with
// the raw number, for tests and for anyone reading the page with DevTools.

import { formatBytes, formatMs, percentile } from './format.js';
import { STALL_MS } from './timeline.js';

/** Latency samples kept for the percentiles. */
const SAMPLES = 200;
/** Below this many samples a 95th percentile is just the slowest one:
 * show the median alone until there are enough. */
const P95_MIN_SAMPLES = 20;
/** Lines kept in the connection log. */
const LOG_LINES = 80;

export class Meter {
  constructor({ stats, state, log, events, timeline, readyState } = {}) {
    this.statsRoot = stats; // element containing [data-stat=…] outputs
    this.stateEl = state; // the connection state pill
    this.logEl = log; // the <ol> connection log
    this.eventsEl = events; // the WebSocket four-events panel, if any
    this.readyStateEl = readyState;
    this.timeline = timeline; // a Timeline, or null
    this.sentAt = new Map(); // own message id → when we sent it
    this.arrivedAt = new Map(); // id → when it arrived (if before its id was known)
    this.awaiting = 0; // own sends whose id is not known yet
    this.epoch = 0; // bumped by reset(), so late byte counts of old requests are dropped
    this.reset();
  }

  reset() {
    this.epoch += 1;
    this.counts = {
      requests: 0, // requests sent, or connections attempted
      responses: 0, // answers, or frames/events received
      empty: 0, // answers with nothing in them
      stale: 0, // answers ignored: their request was sent before a failure
      inflight: 0,
      inflightMax: 0,
      outOfOrder: 0, // answers that overtook, or were overtaken by, another
      duplicates: 0, // from the message list
      misplaced: 0, // from the message list: out of order shown / put back in place
      retries: 0, // retry cycles (one per failure, however many requests failed)
      stalled: 0, // requests the browser held back, waiting for a connection
      bytesIn: 0,
      bytesOut: 0,
      headIn: 0, // of which response heads
      headOut: 0, // of which request heads (estimated)
      estimated: false, // some received bytes had no Resource Timing entry
    };
    this.lastClose = null; // {code, meaning, clean, refused}
    this.issued = 0; // requests numbered in the order they were sent
    this.highestAnswered = 0; // the latest-sent request answered so far
    this.latencies = [];
    this.lastLatency = null;
    this.schedule();
  }

  // ----- the probe: called by transports -----

  request(seq, { held = false } = {}) {
    const order = ++this.issued;
    this.counts.requests += 1;
    this.setInflight(+1);
    const bar = this.timeline?.request(seq, { held });
    let done = false;
    const finish = (outcome) => {
      if (done) return false;
      done = true;
      this.setInflight(-1);
      bar?.end(outcome);
      this.schedule();
      return true;
    };
    return {
      answered: (count, wire) => {
        if (!finish(count > 0 ? 'data' : 'empty')) return;
        this.counts.responses += 1;
        this.addWire(wire, bar);
        if (count === 0) this.counts.empty += 1;
        // An answer to an older request arriving after a newer one's:
        // it was overtaken on the way.
        if (order < this.highestAnswered) this.counts.outOfOrder += 1;
        else this.highestAnswered = order;
      },
      stale: (wire) => {
        if (!finish('stale')) return;
        this.counts.responses += 1;
        this.counts.stale += 1;
        this.addWire(wire, bar);
      },
      failed: (err) => {
        if (!finish('error')) return;
        // An error answer crossed the wire too (a 503 has heads and a body).
        if (err?.wire) this.addWire(err.wire, bar);
      },
      cancelled: () => finish('cancelled'),
    };
  }

  connection() {
    this.counts.requests += 1;
    const bar = this.timeline?.connection();
    let open = false;
    this.schedule();
    return {
      opened: () => {
        open = true;
        this.setInflight(+1);
        bar?.opened();
        this.schedule();
      },
      /** `info`: the close event's {code, reason, wasClean} and whether
       * the connection ever opened; or just `true` for "an error". */
      closed: (info = {}) => {
        const details = typeof info === 'boolean' ? { error: info } : info;
        const wasOpen = open;
        if (open) this.setInflight(-1);
        open = false;
        const normal = details.code === 1000 || (details.error === false && details.code === undefined);
        bar?.end(normal ? 'closed' : 'error');
        if (details.code !== undefined || details.kind) this.noteClose({ ...details, opened: details.opened ?? wasOpen });
        this.schedule();
      },
    };
  }

  /** Remembers the last close, in words: the lecture's "CLOSE — who cares". */
  noteClose({ code, meaning: codeMeaning, wasClean, opened, kind, reason }) {
    let headline;
    let meaning;
    if (kind) {
      // Event streams have no close codes; the transport says what happened.
      headline = kind.headline;
      meaning = kind.meaning;
    } else if (!opened) {
      headline = 'handshake refused';
      meaning =
        'the socket never opened: the server refused the upgrade or could not be reached — the browser never shows you the HTTP status (DevTools → Network does)';
    } else {
      headline = String(code);
      meaning = codeMeaning ?? (code >= 4000 ? 'application-defined' : 'unknown code');
      if (reason) meaning += ` — “${reason}”`;
    }
    this.lastClose = { code, headline, meaning, clean: Boolean(wasClean), opened: Boolean(opened) };
  }

  frame(dir, bytes) {
    if (dir === 'in') {
      this.counts.responses += 1;
      this.counts.bytesIn += bytes;
    } else {
      this.counts.bytesOut += bytes;
    }
    this.timeline?.tick(dir);
    this.schedule();
  }

  /** Bytes that are neither a request nor a frame (a handshake). */
  wire({ sent = 0, received = 0, sentHead = sent, receivedHead = received } = {}) {
    this.counts.bytesOut += sent;
    this.counts.headOut += sentHead;
    this.counts.bytesIn += received;
    this.counts.headIn += receivedHead;
    this.schedule();
  }

  retry() {
    this.counts.retries += 1;
    this.schedule();
  }

  event(name, detail) {
    const item = this.eventsEl?.querySelector(`[data-event="${name}"]`);
    if (item) {
      const count = item.querySelector('[data-count]');
      count.textContent = String(Number(count.textContent) + 1);
      item.classList.remove('flash');
      void item.offsetWidth; // restart the CSS animation
      item.classList.add('flash');
    }
    this.log(detail, name === 'close' ? 'error' : 'event', name);
  }

  state(label, tone) {
    if (!this.stateEl) return;
    // The pill is a status region: setting the same text again would have a
    // screen reader say it again (a long poll sets it before every request).
    if (this.stateEl.textContent !== label) this.stateEl.textContent = label;
    this.stateEl.dataset.tone = tone;
  }

  showReadyState(name) {
    if (this.readyStateEl) this.readyStateEl.textContent = name;
    for (const item of document.querySelectorAll('[data-ready-state]')) {
      item.classList.toggle('is-current', item.dataset.readyState === name);
    }
  }

  log(text, tone = 'info', label = null) {
    if (!this.logEl) return;
    const li = document.createElement('li');
    li.className = `log-line log-${tone}`;
    const time = document.createElement('time');
    time.textContent = new Date().toLocaleTimeString([], { hour12: false });
    li.append(time);
    if (label) {
      const tag = document.createElement('span');
      tag.className = `log-tag log-tag-${label}`;
      tag.textContent = label;
      li.append(tag);
    }
    const span = document.createElement('span');
    span.className = 'log-text';
    span.textContent = text;
    li.append(span);
    this.logEl.prepend(li); // newest first
    while (this.logEl.childElementCount > LOG_LINES) this.logEl.lastElementChild.remove();
  }

  // ----- called by the page -----

  /** What the message list did with one delivery: messages arrived (at
   * `at`, taken before the list drew them, so the round trip measures the
   * network and the server, not our own DOM work). */
  delivered({ duplicates = 0, outOfOrder = 0, added = [] }, at = performance.now()) {
    this.counts.duplicates += duplicates;
    this.counts.misplaced += outOfOrder;
    for (const message of added) this.arrived(message.id, at);
    this.schedule();
  }

  /** We are sending a message. When it goes as a POST (`asRequest`), it is
   * a bar in the timeline's send lane; `end(outcome, wire)` counts its bytes. */
  sending(asRequest = true) {
    this.awaiting += 1;
    const bar = asRequest ? this.timeline?.send() : null;
    return {
      end: (outcome, wire) => {
        bar?.end(outcome);
        if (wire !== undefined) this.addWire(wire, null);
      },
    };
  }

  /** Our own message got id `id`; it was sent at `sentAt`. */
  sent(id, sentAt) {
    this.awaiting = Math.max(0, this.awaiting - 1);
    const arrived = this.arrivedAt.get(id);
    if (arrived !== undefined) {
      // It came back through the transport before the POST's answer did.
      this.sample(arrived - sentAt);
      this.arrivedAt.delete(id);
    } else {
      this.sentAt.set(id, sentAt);
      if (this.sentAt.size > 100) this.sentAt.delete(this.sentAt.keys().next().value);
    }
  }

  /** A send that failed: stop waiting for its id. */
  sendFailed() {
    this.awaiting = Math.max(0, this.awaiting - 1);
  }

  arrived(id, at) {
    const sentAt = this.sentAt.get(id);
    if (sentAt !== undefined) {
      this.sample(at - sentAt);
      this.sentAt.delete(id);
    } else if (this.awaiting > 0) {
      this.arrivedAt.set(id, at);
      if (this.arrivedAt.size > 100) this.arrivedAt.delete(this.arrivedAt.keys().next().value);
    }
  }

  sample(ms) {
    this.lastLatency = ms;
    this.latencies.push(ms);
    if (this.latencies.length > SAMPLES) this.latencies.shift();
    this.schedule();
  }

  setInflight(delta) {
    this.counts.inflight += delta;
    this.counts.inflightMax = Math.max(this.counts.inflightMax, this.counts.inflight);
  }

  /** Adds what one exchange cost on the wire: a byte count, a wire record,
   * or a promise of one (net.js resolves it once Resource Timing has the
   * entry). A promise from before a reset() is ignored. */
  addWire(wire, bar) {
    if (wire == null) return;
    if (typeof wire === 'number') {
      this.counts.bytesIn += wire;
      this.schedule();
      return;
    }
    const epoch = this.epoch;
    Promise.resolve(wire).then((cost) => {
      if (!cost || epoch !== this.epoch) return;
      this.counts.bytesIn += cost.received;
      this.counts.headIn += cost.receivedHead;
      this.counts.bytesOut += cost.sent;
      this.counts.headOut += cost.sentHead;
      if (!cost.measured) this.counts.estimated = true;
      if (cost.stalledMs >= STALL_MS) {
        this.counts.stalled += 1;
        bar?.waited(cost.stalledMs);
      }
      this.schedule();
    });
  }

  /** Redraws the numbers once per frame at most, however many events came.
   * (A hidden tab gets no animation frames: nothing is drawn meanwhile.) */
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  /** The round trip, as honestly as the sample count allows. */
  latencyText() {
    const n = this.latencies.length;
    if (n === 0) return { value: '–', samples: 'no samples yet' };
    const p50 = percentile(this.latencies, 0.5);
    if (n < P95_MIN_SAMPLES) {
      return { value: formatMs(p50), samples: n === 1 ? '1 sample' : `median of ${n}` };
    }
    const p95 = percentile(this.latencies, 0.95);
    const pair = Math.max(p50, p95) >= 1000 ? `${(p50 / 1000).toFixed(2)} / ${(p95 / 1000).toFixed(2)} s` : `${Math.round(p50)} / ${Math.round(p95)} ms`;
    return { value: pair, samples: `p50 / p95 of ${n}` };
  }

  render() {
    const roots = [this.statsRoot, this.eventsEl].filter(Boolean);
    if (!roots.length) return;
    const c = this.counts;
    const pct = c.responses ? Math.round((100 * c.empty) / c.responses) : 0;
    const total = c.bytesIn + c.bytesOut;
    const heads = c.headIn + c.headOut;
    const latency = this.latencyText();
    const close = this.lastClose;
    // name → [text shown, raw number (or null)]
    const values = {
      requests: [c.requests.toLocaleString(), c.requests],
      responses: [c.responses.toLocaleString(), c.responses],
      empty: [c.empty.toLocaleString(), c.empty],
      'empty-pct': [`(${pct}%)`, pct],
      stale: [c.stale.toLocaleString(), c.stale],
      inflight: [String(c.inflight), c.inflight],
      'inflight-max': [String(c.inflightMax), c.inflightMax],
      'out-of-order': [c.outOfOrder.toLocaleString(), c.outOfOrder],
      duplicates: [c.duplicates.toLocaleString(), c.duplicates],
      misplaced: [c.misplaced.toLocaleString(), c.misplaced],
      retries: [c.retries.toLocaleString(), c.retries],
      reconnects: [Math.max(0, c.requests - 1).toLocaleString(), Math.max(0, c.requests - 1)],
      stalled: [c.stalled.toLocaleString(), c.stalled],
      bytes: [formatBytes(c.bytesIn), c.bytesIn],
      'bytes-out': [formatBytes(c.bytesOut), c.bytesOut],
      'bytes-total': [formatBytes(total), total],
      'heads-pct': [total ? `${Math.round((100 * heads) / total)}% headers` : '–', total ? heads / total : null],
      'heads-in-pct': [c.bytesIn ? `(${Math.round((100 * c.headIn) / c.bytesIn)}% heads)` : '', c.bytesIn ? c.headIn / c.bytesIn : null],
      'heads-out-pct': [c.bytesOut ? `(${Math.round((100 * c.headOut) / c.bytesOut)}% heads)` : '', c.bytesOut ? c.headOut / c.bytesOut : null],
      'p50-p95': [latency.value, this.latencies.length],
      samples: [latency.samples, this.latencies.length],
      latency: [formatMs(this.lastLatency), this.lastLatency],
      'last-close': [close ? close.headline : '–', close?.code ?? null],
      'last-close-meaning': [close ? close.meaning : 'not closed yet', null],
      'last-close-clean': [close ? (close.clean ? 'wasClean: true' : 'wasClean: false') : '', close ? Number(close.clean) : null],
    };
    for (const root of roots) {
      for (const [name, [text, raw]] of Object.entries(values)) {
        for (const el of root.querySelectorAll(`[data-stat="${name}"]`)) {
          if (el.textContent !== text) el.textContent = text;
          if (raw !== null && raw !== undefined) el.dataset.value = String(raw);
        }
      }
      for (const el of root.querySelectorAll('[data-role="latency"]')) {
        el.textContent = formatMs(this.lastLatency);
      }
    }
  }
}
