// The instrument panel. A transport reports what it does to a Meter (the
// "probe"): requests sent and answered, connections opened, frames in and
// out, state changes, log lines. The Meter keeps the counters, draws each
// event on the timeline, and shows the numbers on the page.
//
// The probe interface every transport uses:
//   probe.request(seq, {held}) → {answered(count, bytes), failed(err), cancelled()}
//   probe.connection()         → {opened(), closed(isError)}
//   probe.frame('in'|'out', bytes, messageCount)
//   probe.event(name, detail)  — the WebSocket's four events (and SSE's)
//   probe.state(label, tone)   — tone: ok | wait | retry | idle
//   probe.log(text, tone)

import { formatBytes, formatMs, formatMsPair, percentile } from './format.js';

/** Latency samples kept for the percentiles. */
const SAMPLES = 200;
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
    this.reset();
  }

  reset() {
    this.counts = {
      requests: 0,
      responses: 0,
      empty: 0,
      inflight: 0,
      inflightMax: 0,
      outOfOrder: 0,
      duplicates: 0,
      bytes: 0,
    };
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
      answered: (count, bytes) => {
        if (!finish(count > 0 ? 'data' : 'empty')) return;
        this.counts.responses += 1;
        this.counts.bytes += bytes;
        if (count === 0) this.counts.empty += 1;
        // An answer to an older request arriving after a newer one's:
        // it was overtaken on the way.
        if (order < this.highestAnswered) this.counts.outOfOrder += 1;
        else this.highestAnswered = order;
      },
      failed: () => finish('error'),
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
      closed: (isError) => {
        if (open) this.setInflight(-1);
        open = false;
        bar?.end(isError ? 'error' : 'closed');
        this.schedule();
      },
    };
  }

  frame(dir, bytes) {
    if (dir === 'in') {
      this.counts.responses += 1;
      this.counts.bytes += bytes;
    }
    this.timeline?.tick(dir);
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
    this.stateEl.textContent = label;
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

  /** What the message list did with one delivery. */
  /** Messages arrived (at `at`, taken before the list drew them, so the
   * round trip measures the network and the server, not our own DOM work). */
  delivered({ duplicates, added }, at = performance.now()) {
    this.counts.duplicates += duplicates;
    for (const message of added) this.arrived(message.id, at);
    this.schedule();
  }

  /** We are sending a message. When it goes as a POST (`asRequest`), it is
   * a bar in the timeline's send lane. */
  sending(asRequest = true) {
    this.awaiting += 1;
    return (asRequest && this.timeline?.send()) || { end() {} };
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

  /** Redraws the numbers once per frame at most, however many events came. */
  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  render() {
    if (!this.statsRoot) return;
    const c = this.counts;
    const pct = c.responses ? Math.round((100 * c.empty) / c.responses) : 0;
    const values = {
      requests: c.requests.toLocaleString(),
      responses: c.responses.toLocaleString(),
      empty: c.empty.toLocaleString(),
      'empty-pct': `(${pct}%)`,
      inflight: String(c.inflight),
      'inflight-max': String(c.inflightMax),
      'out-of-order': c.outOfOrder.toLocaleString(),
      duplicates: c.duplicates.toLocaleString(),
      bytes: formatBytes(c.bytes),
      'p50-p95': formatMsPair(percentile(this.latencies, 0.5), percentile(this.latencies, 0.95)),
      latency: formatMs(this.lastLatency),
    };
    for (const [name, value] of Object.entries(values)) {
      for (const el of this.statsRoot.querySelectorAll(`[data-stat="${name}"]`)) {
        if (el.textContent !== value) el.textContent = value;
      }
    }
    for (const el of this.statsRoot.querySelectorAll('[data-role="latency"]')) {
      el.textContent = formatMs(this.lastLatency);
    }
  }
}
