// The few HTTP helpers every page shares: one `request` wrapper around
// fetch, the retry back-off, the id this tab introduces itself with, and
// the count of what a request really costs on the wire.
//
// Bytes on the wire. The body of an answer is only part of what crosses the
// network: every HTTP request carries a request head (the method, the URL,
// a dozen headers the browser adds) and every answer a response head. For a
// poll that finds nothing, the heads are almost all of it. So each request
// resolves, a moment after its answer, to a `wire` record:
//   - received: the browser's own count from Resource Timing
//     (`transferSize`: the encoded body plus the response head). Chrome
//     counts every response head as a flat 300 bytes — the spec's figure, so
//     that a page cannot learn the size of headers — and we use the same
//     300 where there is no entry to read (a WebSocket's 101, an open event
//     stream; see RESPONSE_HEAD_BYTES).
//   - sent: an ESTIMATE. JavaScript cannot see the headers the browser adds
//     to a request, so estimateRequestHead() writes out the ones Chromium
//     sends (User-Agent, Accept-*, Sec-Fetch-*, …) and counts them.

import { CHAT } from './transports/logs.js';

/** Base of the exponential back-off: the first retry waits about this long. */
export const BACKOFF_BASE_MS = 500;
/** The back-off never grows past this: a class waiting for the network to
 * come back should not wait a minute after it does. */
export const BACKOFF_MAX_MS = 10_000;

/**
 * A random id for this tab, sent as `client=` on every reading request so
 * the server can count who is connected on each mode (`/api/stats`).
 * crypto.getRandomValues works on plain http:// too (randomUUID does not,
 * and the class reaches the teacher's laptop over http://192.168…).
 */
export const clientId = (() => {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return 'tab-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
})();

/**
 * What we count for a response head we cannot measure: Resource Timing's
 * own figure (every `transferSize` is the encoded body plus 300), so that
 * every page counts heads the same way.
 */
export const RESPONSE_HEAD_BYTES = 300;

/** How long we wait for a request's Resource Timing entry after its answer
 * (the browser queues it a moment after the body is read). */
const TIMING_WAIT_MS = 1000;

/** An answer with a 4xx/5xx status, or a request that never got an answer. */
export class RequestError extends Error {
  constructor(message, { status = 0, code = 'network', retryAfterMs = 0 } = {}) {
    super(message);
    this.name = 'RequestError';
    this.status = status; // 0: no HTTP answer at all (network down, refused…)
    this.code = code; // the server's stable error code, when it sent one
    this.retryAfterMs = retryAfterMs; // the server's Retry-After, in ms
  }
}

/**
 * fetch() plus what every caller needs: JSON in and out, the size of the
 * body, what the exchange cost on the wire (`wire`, a promise; see the top
 * of this file) and errors as RequestError (which carry `wire` too when the
 * server answered). `signal` cancels it; `timeoutMs` gives up on an answer
 * that never comes; `keepalive` lets it finish after the page has gone.
 */
export async function request(url, { method = 'GET', json, signal, timeoutMs, headers = {}, keepalive = false } = {}) {
  const signals = [signal, timeoutMs && AbortSignal.timeout(timeoutMs)].filter(Boolean);
  const sentHeaders = json === undefined ? headers : { 'Content-Type': 'application/json', ...headers };
  const payload = json === undefined ? undefined : JSON.stringify(json);
  const href = new URL(url, location.href).href;
  const startedAt = performance.now();
  let response;
  try {
    response = await fetch(href, {
      method,
      headers: sentHeaders,
      body: payload,
      signal: signals.length ? AbortSignal.any(signals) : undefined,
      // Polls must never be answered from the browser's cache.
      cache: 'no-store',
      // keepalive: the request outlives the page (a "goodbye" on pagehide).
      keepalive,
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err; // we cancelled it ourselves
    // fetch only rejects when there is no HTTP answer at all.
    const why = err.name === 'TimeoutError' ? 'no answer in time' : 'network error';
    throw new RequestError(why, { code: err.name === 'TimeoutError' ? 'timeout' : 'network' });
  }
  const text = await response.text();
  const bytes = byteLength(text);
  const wire = wireCost({ href, method, headers: sentHeaders, payload, startedAt, bodyBytes: bytes });
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!response.ok) {
    const err = new RequestError(body?.error ?? `HTTP ${response.status}`, {
      status: response.status,
      code: body?.code ?? `http_${response.status}`,
      retryAfterMs: retryAfterMs(response.headers.get('Retry-After')),
    });
    err.wire = wire;
    throw err;
  }
  return { status: response.status, body, bytes, headers: response.headers, wire };
}

/** UTF-8 bytes of a string. */
export function byteLength(text) {
  return encoder.encode(text).length;
}
const encoder = new TextEncoder();

// ----- what crosses the wire -----

/** Resource Timing entries of /api/ requests, by URL, until a request
 * claims its own (see timingOf). */
const entries = new Map();
/** Requests waiting for their entry: URL → [{startedAt, resolve}]. */
const waiting = new Map();

if (typeof PerformanceObserver !== 'undefined') {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (!entry.name.includes('/api/')) continue;
      const waiter = waiting.get(entry.name)?.find((w) => entry.startTime >= w.startedAt - 1);
      if (waiter) {
        waiter.resolve(entry);
        continue;
      }
      const list = entries.get(entry.name) ?? [];
      list.push(entry);
      entries.set(entry.name, list);
    }
    // Entries nobody claimed (a stream that ended, a request that timed
    // out): forget them after a while, so a page left open stays small.
    const old = performance.now() - 30_000;
    for (const [name, list] of entries) {
      const kept = list.filter((e) => e.startTime >= old);
      if (kept.length) entries.set(name, kept);
      else entries.delete(name);
    }
  }).observe({ type: 'resource' });
  // The browser's own list of entries holds 250; a page that polls every
  // 100 ms fills it in 25 s. We read entries through the observer above, so
  // the list itself can be emptied whenever it is full.
  performance.addEventListener?.('resourcetimingbufferfull', () => performance.clearResourceTimings());
}

/** The Resource Timing entry of the request to `href` started at
 * `startedAt`, or null if none arrives in time. */
function timingOf(href, startedAt) {
  const list = entries.get(href);
  const index = list?.findIndex((e) => e.startTime >= startedAt - 1) ?? -1;
  if (index >= 0) {
    const [entry] = list.splice(index, 1);
    if (!list.length) entries.delete(href);
    return Promise.resolve(entry);
  }
  return new Promise((resolve) => {
    const waiter = { startedAt, resolve: null };
    const done = (entry) => {
      clearTimeout(timer);
      const all = waiting.get(href) ?? [];
      all.splice(all.indexOf(waiter), 1);
      if (!all.length) waiting.delete(href);
      resolve(entry);
    };
    waiter.resolve = done;
    const timer = setTimeout(() => done(null), TIMING_WAIT_MS);
    waiting.set(href, [...(waiting.get(href) ?? []), waiter]);
  });
}

/**
 * What one request/answer cost, both ways, once its timing entry is in:
 *   received     bytes in: response head + body (Resource Timing)
 *   receivedHead of which the response head
 *   sent         bytes out: request head (estimated) + body
 *   sentHead     of which the request head (estimated)
 *   stalledMs    how long the browser held the request back before sending
 *                it — waiting for one of its six connections to this host
 *                (DevTools calls it "Stalled" / "Queueing")
 *   measured     false when no entry came and `received` is an estimate too
 */
async function wireCost({ href, method, headers, payload, startedAt, bodyBytes }) {
  const sentBody = payload === undefined ? 0 : byteLength(payload);
  const sentHead = estimateRequestHead(method, href, headers, sentBody);
  const entry = await timingOf(href, startedAt);
  const cost = { sent: sentHead + sentBody, sentHead, stalledMs: 0, measured: Boolean(entry) };
  if (entry && entry.transferSize > 0) {
    cost.received = entry.transferSize;
    cost.receivedHead = Math.max(0, entry.transferSize - entry.encodedBodySize);
    // From the call to the moment the request went out, minus the time
    // spent looking up the name and opening a connection: what is left is
    // time spent waiting in the browser's queue.
    if (entry.requestStart > 0) {
      const setup = entry.connectEnd - entry.connectStart + (entry.domainLookupEnd - entry.domainLookupStart);
      cost.stalledMs = Math.max(0, entry.requestStart - entry.startTime - setup);
    }
  } else {
    cost.received = RESPONSE_HEAD_BYTES + bodyBytes;
    cost.receivedHead = RESPONSE_HEAD_BYTES;
    cost.measured = false;
  }
  return cost;
}

/**
 * An estimate of the request head Chromium sends for a request from this
 * page: the request line and the headers it adds by itself, written out and
 * counted. (A page cannot read them; DevTools → Network → Headers → "Request
 * Headers", with "Raw" ticked, shows the real ones.) `kind` says who sends
 * it: 'fetch', 'eventsource' (Accept: text/event-stream) or 'websocket' (the
 * upgrade: no Accept, no Sec-Fetch-* or client hints). `headers` are the
 * ones the caller adds.
 */
export function estimateRequestHead(method, href, headers = {}, bodyBytes = 0, kind = 'fetch') {
  const url = new URL(href, location.href);
  const socket = kind === 'websocket';
  const hints = navigator.userAgentData && !socket;
  const lines = [
    `${method} ${url.pathname}${url.search} HTTP/1.1`,
    `Host: ${url.host}`,
    socket ? 'Connection: Upgrade' : 'Connection: keep-alive',
    // cache: 'no-store' (and EventSource, and WebSocket) tell every cache on the way.
    'Pragma: no-cache',
    'Cache-Control: no-cache',
    ...(hints
      ? [
          `sec-ch-ua: ${navigator.userAgentData.brands.map((b) => `"${b.brand}";v="${b.version}"`).join(', ')}`,
          `sec-ch-ua-mobile: ?${navigator.userAgentData.mobile ? 1 : 0}`,
          `sec-ch-ua-platform: "${navigator.userAgentData.platform}"`,
        ]
      : []),
    `User-Agent: ${navigator.userAgent}`,
    ...(socket ? [] : [`Accept: ${kind === 'eventsource' ? 'text/event-stream' : '*/*'}`]),
    'Accept-Encoding: gzip, deflate, br, zstd',
    `Accept-Language: ${acceptLanguage()}`,
    ...(socket ? [] : ['Sec-Fetch-Site: same-origin', 'Sec-Fetch-Mode: cors', 'Sec-Fetch-Dest: empty']),
  ];
  if (method !== 'GET' || socket) lines.push(`Origin: ${url.origin}`);
  if (bodyBytes > 0) lines.push(`Content-Length: ${bodyBytes}`);
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (document.cookie) lines.push(`Cookie: ${document.cookie}`);
  return byteLength(lines.map((l) => `${l}\r\n`).join('') + '\r\n');
}

/** The Accept-Language header Chromium builds from the language list. */
function acceptLanguage() {
  const langs = navigator.languages?.length ? navigator.languages : [navigator.language || 'en-US'];
  return langs.map((lang, i) => (i === 0 ? lang : `${lang};q=${Math.max(0.1, 1 - i / 10).toFixed(1)}`)).join(',');
}

/** Retry-After is whole seconds (or an HTTP date); we want milliseconds. */
function retryAfterMs(value) {
  if (!value) return 0;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? 0 : Math.max(0, date - Date.now());
}

/**
 * How long to wait before retry number `attempt` (1, 2, 3…): doubling each
 * time up to a ceiling, with "equal jitter" — half of it fixed, half random —
 * so that thirty laptops that lost the server at the same moment do not all
 * come back at the same moment. Never less than the server's Retry-After.
 */
export function backoff(attempt, retryAfter = 0) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  const wait = ceiling / 2 + Math.random() * (ceiling / 2);
  return Math.max(wait, retryAfter);
}

/** A promise that resolves after `ms`, or rejects when `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/**
 * Where a page starts reading: it asks for one message just to learn the
 * newest id (`last_id`), then starts 50 before it. The page shows recent
 * history without downloading the whole log. Retries until it works, or
 * until `signal` aborts (the page started over, or was hidden): then it
 * rejects with the abort, and an old retry loop never outlives its page.
 * `log` (transports/logs.js) is the chat's unless said: the document's
 * pages start presence this way too.
 */
export async function startingPoint({ keep = 50, log = CHAT, onRetry, signal } = {}) {
  for (let attempt = 1; ; attempt += 1) {
    signal?.throwIfAborted();
    try {
      const { body } = await request(`${log.poll}?since=0&limit=1&client=${clientId}`, {
        signal,
        timeoutMs: 10_000,
      });
      return Math.max(0, body[log.last] - keep);
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      const wait = backoff(attempt, err.retryAfterMs);
      onRetry?.(err, wait);
      await sleep(wait, signal);
    }
  }
}

/**
 * A fresh idempotency key for one message (PROTOCOL.md, "key"): this tab's
 * id and a counter, printable ASCII, at most 64 characters. Sending the same
 * message again — after a timeout, a lost acknowledgement, a failed send the
 * user retries — must reuse its key: then the server recognises the resend
 * and does not store the message twice.
 */
let keys = 0;
export function newMessageKey() {
  keys += 1;
  return `${clientId}-m${keys}`;
}

/**
 * Sends a chat message the HTTP way: POST /api/messages. Resolves to
 * `{message, wire}`: the stored message (its `id` proves the server has it;
 * a resend with the same `key` gets the first one back) and what the POST
 * cost on the wire.
 */
export async function postMessage({ author, text, via, key }) {
  const json = { author, text };
  if (via) json.via = via;
  if (key) json.key = key;
  const { body, wire } = await request('/api/messages', { method: 'POST', json, timeoutMs: 15_000 });
  return { message: body, wire };
}
