// The few HTTP helpers every page shares: one `request` wrapper around
// fetch, the retry back-off, and the id this tab introduces itself with.

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
 * body (for the "bytes received" counters), and errors as RequestError.
 * `signal` cancels it; `timeoutMs` gives up on an answer that never comes.
 */
export async function request(url, { method = 'GET', json, signal, timeoutMs, headers = {} } = {}) {
  const signals = [signal, timeoutMs && AbortSignal.timeout(timeoutMs)].filter(Boolean);
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: json === undefined ? headers : { 'Content-Type': 'application/json', ...headers },
      body: json === undefined ? undefined : JSON.stringify(json),
      signal: signals.length ? AbortSignal.any(signals) : undefined,
      // Polls must never be answered from the browser's cache.
      cache: 'no-store',
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err; // we cancelled it ourselves
    // fetch only rejects when there is no HTTP answer at all.
    const why = err.name === 'TimeoutError' ? 'no answer in time' : 'network error';
    throw new RequestError(why, { code: err.name === 'TimeoutError' ? 'timeout' : 'network' });
  }
  const text = await response.text();
  const bytes = new TextEncoder().encode(text).length;
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!response.ok) {
    throw new RequestError(body?.error ?? `HTTP ${response.status}`, {
      status: response.status,
      code: body?.code ?? `http_${response.status}`,
      retryAfterMs: retryAfterMs(response.headers.get('Retry-After')),
    });
  }
  return { status: response.status, body, bytes, headers: response.headers };
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
 * history without downloading the whole log. Retries until it works.
 */
export async function startingPoint({ keep = 50, onRetry } = {}) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const { body } = await request(`/api/messages?since=0&limit=1&client=${clientId}`, {
        timeoutMs: 10_000,
      });
      return Math.max(0, body.last_id - keep);
    } catch (err) {
      const wait = backoff(attempt, err.retryAfterMs);
      onRetry?.(err, wait);
      await sleep(wait);
    }
  }
}

/** Sends a chat message the HTTP way: POST /api/messages. Resolves to the
 * stored message (its `id` proves the server has it). */
export async function postMessage({ author, text, via }) {
  const { body } = await request('/api/messages', {
    method: 'POST',
    json: via ? { author, text, via } : { author, text },
    timeoutMs: 15_000,
  });
  return body;
}
