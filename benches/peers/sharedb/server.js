// Weebsockets' shared document on ShareDB: what a Node team would reach for
// to build the lecture's Google Docs. ShareDB (its default in-memory
// database, the ot-text-unicode type) keeps the document and does the
// versioning and the operational transformation; Express and `ws` carry the
// document part of the shared PROTOCOL.md (v2); a thin adapter (doc.js,
// ops.js) converts between the two. It is the "peer to beat" in the document
// benchmarks, so it is plain, documented-practice code: no clustering, no
// caching tricks, no native add-ons, nothing slowed down on purpose.
//
// Layout of this file, top to bottom:
//   1. settings (flags and env)           6. Server-Sent Events  GET /api/doc/events
//   2. shared state (doc, lab, stats)     7. not found, and the one error handler
//   3. the Express app and helpers        8. WebSocket           /api/doc/ws
//   4. plain HTTP: doc, ops, text, lab    9. start-up and shutdown
//   5. long polling  GET /api/doc/longpoll
//
// The log lives in memory (ShareDB's MemoryDB): restart the process and the
// document is empty again, at revision 0.
//
// Run: npm ci && node server.js --port 3000

import { createHash, timingSafeEqual } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { createServer } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import { parseArgs } from 'node:util';

import express from 'express';
import { WebSocket, WebSocketServer } from 'ws';

import { SharedDoc, TIE_BREAKS } from './doc.js';
import { ApiError, readReplacement, readSubmission } from './ops.js';

// ---------------------------------------------------------------------------
// 1. Settings
// ---------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    'teacher-token': { type: 'string' },
    'doc-max-chars': { type: 'string' },
    'max-body-bytes': { type: 'string' },
    'tie-break': { type: 'string' },
  },
});

const PORT = parseWhole(flags.port ?? process.env.PORT ?? '3000', 'port', 65535);
const HOST = flags.host ?? process.env.HOST ?? '127.0.0.1';
/** Who may change the lab. Without a token nobody can: PUT /api/lab answers 401. */
const TEACHER_TOKEN = flags['teacher-token'] ?? process.env.TEACHER_TOKEN ?? '';
/** The longest document, in characters (code points); the contract's default. */
const DOC_MAX_CHARS = parseWhole(flags['doc-max-chars'] ?? '100000', 'doc-max-chars');
/**
 * Largest request body and largest WebSocket frame. Big enough for a whole
 * document of DOC_MAX_CHARS characters in one PUT /api/doc/text, even at
 * four UTF-8 bytes a character; past it, 413 (and ws closes with 1009).
 */
const MAX_BODY_BYTES = parseWhole(flags['max-body-bytes'] ?? String(1024 * 1024), 'max-body-bytes');
/** Whose insert goes first at one position: the contract's rule or ShareDB's own (doc.js). */
const TIE_BREAK = flags['tie-break'] ?? 'contract';
if (!TIE_BREAKS.includes(TIE_BREAK)) {
  console.error(`--tie-break must be one of: ${TIE_BREAKS.join(', ')}`);
  process.exit(2);
}

/** `limit` when the client does not say, and the range it may ask for. */
const PAGE_DEFAULT = 100;
const PAGE_MAX = 500;
/** How long a long poll is held when the client does not say, and the allowed range, in seconds. */
const LONG_POLL_HOLD_DEFAULT_S = 25;
const LONG_POLL_HOLD_MIN_S = 1;
const LONG_POLL_HOLD_MAX_S = 55;
/**
 * Ping every WebSocket this often. A peer that has not answered the previous
 * ping by the next tick is terminated, so a dead one is gone within two
 * intervals. The contract asks for "at least every 30 s".
 */
const WS_HEARTBEAT_MS = 30_000;
/** A comment line on every SSE stream this often; half the contract's 30 s bound. */
const SSE_KEEP_ALIVE_MS = 15_000;
/** Told to EventSource in the `retry:` line: how long to wait before reconnecting. */
const SSE_RETRY_MS = 2000;
/** `Retry-After` on 503 answers during the lab's outage. */
const OUTAGE_RETRY_AFTER_S = 5;
/** The lab's latency and jitter are bounded so a typo cannot park a request for hours. */
const LAB_MAX_MS = 30_000;

// ---------------------------------------------------------------------------
// 2. Shared state
// ---------------------------------------------------------------------------

const doc = new SharedDoc({ maxChars: DOC_MAX_CHARS, tieBreak: TIE_BREAK });

/** The teacher's network lab: delays every delivery, or switches the transports off. */
const lab = { latency_ms: 0, jitter_ms: 0, outage: false };

/** Plain counters, read by GET /api/stats. */
const stats = {
  started_at: Date.now(),
  doc: { stored: 0, resent: 0, refused: 0 },
  transports: {
    api: { requests: 0 },
    interval: { requests: 0 },
    timeout: { requests: 0 },
    longpoll: { requests: 0, waiting: 0, timed_out: 0 },
    websocket: { open: 0, opened: 0, frames_in: 0, frames_out: 0 },
    sse: { open: 0, opened: 0, events_out: 0 },
  },
};

let shuttingDown = false;

// ---------------------------------------------------------------------------
// 3. The Express app and small helpers
// ---------------------------------------------------------------------------

const app = express();

// Do not advertise the framework (Express's own security advice).
app.disable('x-powered-by');
// Every API answer below is `no-store`, so a browser never keeps one and never
// revalidates it; hashing each body into an ETag would be work for nothing.
app.set('etag', false);

/**
 * JSON bodies only, at most MAX_BODY_BYTES. `verify` sees the raw bytes
 * before they are decoded: body-parser would quietly turn invalid UTF-8 into
 * U+FFFD, and the contract says such a body is refused instead.
 */
const jsonBody = express.json({
  limit: MAX_BODY_BYTES,
  verify(req, res, buf) {
    if (buf.length === 0) throw new ApiError(400, 'bad_json', 'the body is empty');
    if (!isUtf8(buf)) throw new ApiError(400, 'bad_json', 'the body is not valid UTF-8');
  },
});

// The document changes with every keystroke: no browser or proxy may cache an answer.
app.use('/api', (req, res, next) => {
  res.set('Cache-Control', 'no-store');
  next();
});

/** express.json() leaves `req.body` undefined for other types; say why with a 415. */
function requireJson(req) {
  if (!req.is('application/json')) {
    throw new ApiError(415, 'not_json', 'send the body as JSON with Content-Type: application/json');
  }
}

/**
 * Read a whole number from the query string (or a header), at most `max`.
 * Repeated parameters arrive as arrays and are refused, as is anything that
 * is not plain digits.
 */
function readNumber(value, name, fallback, min = 0, max = Number.MAX_SAFE_INTEGER) {
  if (value === undefined || value === '') return fallback;
  if (typeof value !== 'string' || !/^\d{1,20}$/.test(value) || BigInt(value) > 0xffff_ffff_ffff_ffffn) {
    throw new ApiError(400, 'bad_query', `"${name}" must be a whole number`);
  }
  // A cursor beyond 2^53 is not exact as a Number, but it only ever means
  // "after everything", which it still does.
  const n = Number(value);
  if (n < min || n > max) throw new ApiError(400, 'bad_query', `"${name}" must be ${min} to ${max}`);
  return n;
}

const readSince = (value, name = 'since') => readNumber(value, name, 0);
const readLimit = (value) => readNumber(value, 'limit', PAGE_DEFAULT, 1, PAGE_MAX);

/** One page of the log, as every polling endpoint answers it. `last_rev` is read after the ops, so it is never behind them. */
async function page(since, limit) {
  const ops = await doc.since(since, limit);
  return { ops, last_rev: doc.rev };
}

/** The lab's delay for one delivery: latency plus up to `jitter_ms` more. */
function labDelay() {
  return lab.latency_ms + (lab.jitter_ms ? Math.floor(Math.random() * (lab.jitter_ms + 1)) : 0);
}

/**
 * Deliveries on one connection (WebSocket frames, SSE events), each delayed
 * by the lab but never reordered: a delivery waits for the one before it.
 * Without a lab delay, it happens at once.
 */
class Delivery {
  #queue = [];
  #timer = null;
  #last = 0;

  push(deliver) {
    const delay = labDelay();
    if (delay === 0 && this.#queue.length === 0) return deliver();
    const at = Math.max(Date.now() + delay, this.#last);
    this.#last = at;
    this.#queue.push({ at, deliver });
    if (!this.#timer) this.#arm();
  }

  #arm() {
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, this.#queue[0].at - Date.now()));
  }

  #fire() {
    this.#timer = null;
    const now = Date.now();
    while (this.#queue.length && this.#queue[0].at <= now) this.#queue.shift().deliver();
    if (this.#queue.length) this.#arm();
  }

  clear() {
    clearTimeout(this.#timer);
    this.#queue = [];
  }
}

/** Answer a poll with JSON after the lab's delay, unless the client has gone. */
function replyLater(res, status, body) {
  const send = () => {
    if (!res.writableEnded && !res.destroyed) res.status(status).json(body);
  };
  const delay = labDelay();
  if (delay === 0) send();
  else setTimeout(send, delay);
}

/** While the lab's outage is on, transport endpoints answer 503. */
function outageError() {
  return new ApiError(503, 'outage', 'the teacher switched the network off; try again shortly', {
    'Retry-After': String(OUTAGE_RETRY_AFTER_S),
  });
}
function refuseDuringOutage(req, res, next) {
  next(lab.outage ? outageError() : undefined);
}

/** For routes that exist but not with this method. */
function methodNotAllowed(req, res, next) {
  next(new ApiError(405, 'method_not_allowed', `${req.method} is not supported on ${req.path}`));
}

/** Count a stored op or a resend (201 or 200). */
function counted(answer) {
  if (answer.status === 201) stats.doc.stored++;
  else stats.doc.resent++;
  return answer;
}

// ---------------------------------------------------------------------------
// 4. Plain HTTP endpoints
// ---------------------------------------------------------------------------

// Every document endpoint is a transport endpoint for the lab's outage.
app.use('/api/doc', refuseDuringOutage);

app
  .route('/api/doc')
  .get(async (req, res) => {
    stats.transports.api.requests++;
    replyLater(res, 200, await doc.fetch());
  })
  .all(methodNotAllowed);

app
  .route('/api/doc/ops')
  // Polling: answer at once with whatever is newer than the cursor. The
  // browser pages add ?transport=interval|timeout so the counters can tell
  // the two polling styles apart; everything else counts as `api`.
  .get(async (req, res) => {
    const query = req.query; // Express 5 re-parses on every access: read it once.
    const since = readSince(query.since);
    const limit = readLimit(query.limit);
    const transport = query.transport === 'interval' || query.transport === 'timeout' ? query.transport : 'api';
    stats.transports[transport].requests++;
    replyLater(res, 200, await page(since, limit));
  })
  // Submitting: check the fields, hand the op to ShareDB, answer with the
  // revision it got and the op as stored (transformed). Storing it also
  // wakes every long poll, SSE stream and WebSocket (sections 5, 6, 8).
  .post(jsonBody, async (req, res) => {
    requireJson(req);
    const answer = counted(await doc.submit(readSubmission(req.body)));
    res.status(answer.status).json({ rev: answer.rev, op: answer.op });
  })
  .all(methodNotAllowed);

app
  .route('/api/doc/text')
  // The naive "save the textarea": one op that replaces everything.
  .put(jsonBody, async (req, res) => {
    requireJson(req);
    const answer = counted(await doc.replace(readReplacement(req.body)));
    res.status(answer.status).json({ rev: answer.rev, op: answer.op });
  })
  .all(methodNotAllowed);

app
  .route('/api/stats')
  .get((req, res) => {
    res.json({
      doc: { rev: doc.rev, chars: doc.length, ...stats.doc },
      uptime_s: Math.floor((Date.now() - stats.started_at) / 1000),
      transports: stats.transports,
      lab,
    });
  })
  .all(methodNotAllowed);

/** Constant-time token check, so timing does not leak how much of a guess was right. */
function isTeacher(req) {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.get('Authorization') ?? '');
  if (!TEACHER_TOKEN || !match) return false;
  const digest = (s) => createHash('sha256').update(s).digest(); // equal lengths for timingSafeEqual
  return timingSafeEqual(digest(match[1]), digest(TEACHER_TOKEN));
}

function requireTeacher(req, res, next) {
  next(isTeacher(req) ? undefined : new ApiError(401, 'unauthorized', 'changing the lab needs Authorization: Bearer <teacher token>', {
    'WWW-Authenticate': 'Bearer',
  }));
}

function checkLabMs(value, name) {
  if (!Number.isInteger(value) || value < 0 || value > LAB_MAX_MS) {
    throw new ApiError(422, 'invalid_lab', `"${name}" must be a whole number of milliseconds from 0 to ${LAB_MAX_MS}`);
  }
  return value;
}

app
  .route('/api/lab')
  .get((req, res) => res.json(lab))
  // PUT merges: fields left out keep their value. Everything is checked
  // before anything changes, so a bad request leaves the lab as it was.
  .put(requireTeacher, jsonBody, (req, res) => {
    requireJson(req);
    const body = req.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ApiError(400, 'bad_json', 'the body must be a JSON object');
    }
    const next = { ...lab };
    if (body.latency_ms !== undefined) next.latency_ms = checkLabMs(body.latency_ms, 'latency_ms');
    if (body.jitter_ms !== undefined) next.jitter_ms = checkLabMs(body.jitter_ms, 'jitter_ms');
    if (body.outage !== undefined) {
      if (typeof body.outage !== 'boolean') throw new ApiError(422, 'invalid_lab', '"outage" must be true or false');
      next.outage = body.outage;
    }
    const outageStarts = next.outage && !lab.outage;
    Object.assign(lab, next);
    if (outageStarts) dropLiveClients(1013, 'lab outage', outageError());
    res.json(lab);
  })
  .all(methodNotAllowed);

app.get('/healthz', (req, res) => {
  res.set('Cache-Control', 'no-store').json({ status: 'ok', rev: doc.rev });
});

// ---------------------------------------------------------------------------
// 5. Long polling: hold the request until there is news or time runs out
// ---------------------------------------------------------------------------

/**
 * Requests that are being held, each `{ since, limit, res, timer }`. A Set
 * because clients come and go in any order and removal must be cheap.
 */
const heldPolls = new Set();

app.get('/api/doc/longpoll', async (req, res) => {
  const query = req.query;
  const since = readSince(query.since);
  const limit = readLimit(query.limit);
  const holdS = readNumber(query.timeout, 'timeout', LONG_POLL_HOLD_DEFAULT_S, LONG_POLL_HOLD_MIN_S, LONG_POLL_HOLD_MAX_S);
  stats.transports.longpoll.requests++;

  // Something is already waiting for this client: no need to hold at all.
  if (doc.rev > since) return replyLater(res, 200, await page(since, limit));

  const poll = { since, limit, res, timer: undefined };
  poll.timer = setTimeout(() => {
    release(poll);
    stats.transports.longpoll.timed_out++;
    res.status(204).end(); // "nothing new": the client simply asks again
  }, holdS * 1000);
  heldPolls.add(poll);
  stats.transports.longpoll.waiting++;

  // The client may give up first (tab closed, its own timeout). Forget it
  // then; `release` is safe to call twice because `close` also follows a
  // normal answer.
  res.on('close', () => release(poll));
});

function release(poll) {
  if (heldPolls.delete(poll)) {
    clearTimeout(poll.timer);
    stats.transports.longpoll.waiting--;
  }
}

// The wake-up: no timer checks for news; storing an op answers the held
// requests it concerns, right when it happens. Polls that wait at the same
// cursor (the usual case: everyone is up to date) share one read.
doc.on('op', () => {
  const pages = new Map();
  for (const poll of heldPolls) {
    if (doc.rev <= poll.since) continue;
    release(poll);
    const key = `${poll.since}/${poll.limit}`;
    if (!pages.has(key)) pages.set(key, page(poll.since, poll.limit));
    pages.get(key).then(
      (body) => replyLater(poll.res, 200, body),
      (err) => {
        console.error(`longpoll: ${err.message}`);
        if (!poll.res.headersSent) poll.res.status(500).json({ error: 'could not read the document', code: 'internal' });
      },
    );
  }
});

// ---------------------------------------------------------------------------
// 6. Server-Sent Events: one long response, one event per stored op
// ---------------------------------------------------------------------------

/** Responses of the open event streams. */
const sseStreams = new Set();

app.get('/api/doc/events', async (req, res) => {
  // A reconnecting EventSource sends the id of the last event it saw; that
  // is more trustworthy than the `since` of the URL it first opened.
  const lastEventId = req.get('Last-Event-ID');
  const since = lastEventId ? readSince(lastEventId, 'Last-Event-ID') : readSince(req.query.since);

  res.status(200).set({
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
  });
  res.flushHeaders(); // send the headers now: the browser's `open` fires before any event

  const out = new Delivery();
  const write = (text, events = 0) =>
    out.push(() => {
      res.write(text);
      stats.transports.sse.events_out += events;
    });
  write(`retry: ${SSE_RETRY_MS}\n\n`);
  sseStreams.add(res);
  stats.transports.sse.opened++;
  stats.transports.sse.open++;

  // A comment line (starts with ':') is ignored by EventSource but keeps the
  // connection visibly alive.
  const keepAlive = setInterval(() => write(': keep-alive\n\n'), SSE_KEEP_ALIVE_MS);

  let stream = null;
  res.on('close', () => {
    clearInterval(keepAlive);
    out.clear();
    stream?.destroy();
    if (sseStreams.delete(res)) stats.transports.sse.open--;
  });

  const follow = await followDoc(since, (op) => write(doc.wire(op).event, 1), () => res.end());
  if (res.destroyed || res.writableEnded) follow?.destroy();
  else stream = follow;
});

/**
 * Send a connection every stored op after `since`, then the live ones, in
 * rev order, never twice: ShareDB's subscription (doc.subscribe) gives the
 * backlog and a stream that may repeat its end, so a cursor skips what was
 * already sent. Resolves the stream (to destroy when the connection ends),
 * or null if the document could not be read (then `fail` was called).
 */
async function followDoc(since, send, fail) {
  let subscription;
  try {
    subscription = await doc.subscribe(since);
  } catch (err) {
    console.error(`subscribe: ${err.message}`);
    fail();
    return null;
  }
  let cursor = since;
  const forward = (op) => {
    if (op.v <= cursor) return; // already sent with the backlog
    if (op.v !== cursor + 1) {
      console.error(`subscription skipped from rev ${cursor} to ${op.v}`);
      subscription.stream.destroy();
      return fail();
    }
    cursor = op.v;
    send(op);
  };
  for (const op of subscription.backlog) forward(op);
  subscription.stream.on('data', forward);
  return subscription.stream;
}

// ---------------------------------------------------------------------------
// 7. Not found, and the one error handler (Express runs these last because
//    they are registered last)
// ---------------------------------------------------------------------------

// A plain GET on the WebSocket path (a browser tab, curl) gets told what to do.
app.all('/api/doc/ws', (req, res, next) => {
  next(new ApiError(400, 'not_websocket', 'this endpoint speaks WebSocket; connect with ws://'));
});

app.use((req, res, next) => {
  next(new ApiError(404, 'not_found', `nothing at ${req.method} ${req.path}`));
});

/**
 * Turn anything thrown or passed to next() into the contract's `{error, code}`.
 * (An ApiError thrown in express.json's `verify` arrives here as itself;
 * body-parser only adds a `type` to it.)
 */
function toApiError(err) {
  if (err instanceof ApiError) return err;
  switch (err.type) { // body-parser labels its errors
    case 'entity.too.large':
      return new ApiError(413, 'body_too_large', `the body is larger than ${MAX_BODY_BYTES} bytes`);
    case 'entity.parse.failed':
      return new ApiError(400, 'bad_json', 'the body is not valid JSON');
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new ApiError(415, 'not_json', err.message);
  }
  const status = err.status ?? err.statusCode;
  if (status >= 400 && status < 500) return new ApiError(status, 'bad_request', err.message);
  console.error(err);
  return new ApiError(500, 'internal', 'something went wrong on the server');
}

// Express recognises an error handler by its four parameters.
app.use((err, req, res, next) => {
  // Mid-stream there is no status line left to send: let Express close it.
  if (res.headersSent) return next(err);
  const apiError = toApiError(err);
  if (req.path.startsWith('/api/doc') && req.method !== 'GET') stats.doc.refused++;
  if (apiError.headers) res.set(apiError.headers);
  res.status(apiError.status).json({ error: apiError.message, code: apiError.code });
});

// ---------------------------------------------------------------------------
// 8. WebSocket: the same HTTP server, upgraded at /api/doc/ws
// ---------------------------------------------------------------------------

const server = createServer(app);

const wss = new WebSocketServer({
  server, // share the port with Express
  path: '/api/doc/ws',
  maxPayload: MAX_BODY_BYTES, // bigger frames: ws closes with 1009
  // A refused upgrade must be an ordinary HTTP error with the JSON body.
  // verifyClient is the hook ws offers for that when it owns the `upgrade`
  // event; it runs before the 101 is sent.
  verifyClient({ req }, done) {
    try {
      if (shuttingDown) throw new ApiError(503, 'shutting_down', 'the server is shutting down', { 'Retry-After': '1' });
      if (lab.outage) throw outageError();
      wsCursor(req); // only to validate: `connection` reads it again
      done(true);
    } catch (err) {
      const apiError = toApiError(err);
      const body = JSON.stringify({ error: apiError.message, code: apiError.code });
      done(false, apiError.status, body, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...apiError.headers });
    }
  },
});

/** `since` from the upgrade request's URL (Express is not involved in upgrades). */
function wsCursor(req) {
  const search = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
  return readSince(parseQuery(search).since);
}

// The heartbeat pattern from the ws README: a peer that did not answer the
// last ping with a pong is dead (unplugged cable, sleeping laptop), and
// terminate() frees it without waiting for a close handshake.
function heartbeat() {
  this.isAlive = true;
}

wss.on('connection', (ws, req) => {
  stats.transports.websocket.opened++;
  stats.transports.websocket.open++;
  ws.isAlive = true;
  ws.on('pong', heartbeat);
  ws.on('error', (err) => console.error(`websocket: ${err.message}`));

  const out = new Delivery();
  const send = (text) =>
    out.push(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(text);
      stats.transports.websocket.frames_out++;
    });
  const sendError = (ref, apiError) => {
    const frame = { type: 'error' };
    if (ref !== undefined) frame.ref = ref; // echo the client's ref whenever it gave one
    frame.error = apiError.message;
    frame.code = apiError.code;
    send(JSON.stringify(frame));
  };

  // First the welcome, the backlog and the subscription to live ops. The
  // client's frames wait for that (so no ack can overtake the welcome), and
  // then for each other: one connection's ops reach ShareDB in the order
  // they were sent, each after the previous one is stored, so an editor that
  // sends edit k against revision k - 1 without waiting is not refused as
  // `rev_ahead` because ShareDB had not finished storing k - 1 yet.
  send(JSON.stringify({ type: 'welcome', last_rev: doc.rev }));
  let stream = null;
  let turn = followDoc(
    wsCursor(req),
    (op) => send(doc.wire(op).frame),
    () => ws.close(1011, 'cannot read the document'),
  ).then((follow) => {
    if (ws.readyState !== WebSocket.OPEN) follow?.destroy();
    else stream = follow;
  });

  ws.on('close', () => {
    stats.transports.websocket.open--;
    out.clear();
    stream?.destroy();
  });

  ws.on('message', (data, isBinary) => {
    stats.transports.websocket.frames_in++;
    // The catch keeps the chain alive: one frame that fails in an unexpected
    // way must not silently swallow every frame after it.
    turn = turn
      .then(() => takeFrame(data, isBinary))
      .catch((err) => {
        console.error(`websocket frame: ${err.stack ?? err}`);
        sendError(undefined, new ApiError(500, 'internal', 'something went wrong on the server'));
      });
  });

  async function takeFrame(data, isBinary) {
    if (isBinary) return sendError(undefined, new ApiError(415, 'binary_not_supported', 'send text frames with JSON'));
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return sendError(undefined, new ApiError(400, 'bad_json', 'the frame is not valid JSON'));
    }
    const isObject = frame !== null && typeof frame === 'object' && !Array.isArray(frame);
    const ref = isObject ? frame.ref : undefined;
    if (!isObject || typeof frame.type !== 'string') {
      return sendError(ref, new ApiError(400, 'bad_json', 'a frame is a JSON object with a "type"'));
    }
    if (frame.type !== 'op') {
      return sendError(ref, new ApiError(422, 'unknown_type', 'the only frame a client may send is {"type":"op",...}'));
    }
    let answer;
    try {
      answer = counted(await doc.submit(readSubmission(frame)));
    } catch (err) {
      stats.doc.refused++;
      return sendError(ref, toApiError(err)); // the connection stays open
    }
    // The op itself reaches this client through its subscription, like
    // every other client; the ack says which revision it got.
    const ack = { type: 'ack' };
    if (ref !== undefined) ack.ref = ref;
    ack.rev = answer.rev;
    send(JSON.stringify(ack));
  }
});

const pingTimer = setInterval(() => {
  for (const ws of wss.clients) {
    if (ws.isAlive === false) {
      ws.terminate();
      continue;
    }
    ws.isAlive = false;
    ws.ping();
  }
}, WS_HEARTBEAT_MS);
wss.on('close', () => clearInterval(pingTimer));

/**
 * End every live connection: WebSockets with `closeCode`, SSE streams by
 * ending the response, held long polls with `pollError`. Used by the lab's
 * outage (1013 "try again later") and by shutdown (1001 "going away").
 */
function dropLiveClients(closeCode, reason, pollError) {
  for (const ws of wss.clients) ws.close(closeCode, reason);
  for (const res of sseStreams) res.end();
  for (const poll of heldPolls) {
    release(poll);
    poll.res.status(pollError.status).set(pollError.headers ?? {}).json({ error: pollError.message, code: pollError.code });
  }
}

// ---------------------------------------------------------------------------
// 9. Start-up and shutdown
// ---------------------------------------------------------------------------

function parseWhole(value, name, max = Number.MAX_SAFE_INTEGER) {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > max) {
    console.error(`invalid ${name}: ${value}`);
    process.exit(2);
  }
  return n;
}

server.on('error', (err) => {
  console.error(`cannot listen on ${HOST}:${PORT}: ${err.message}`);
  process.exit(1);
});

// The document exists (empty, revision 0) before the first request.
await doc.start();

server.listen(PORT, HOST, () => {
  // With --port 0 the OS picks a free port; print the real one. The
  // benchmark script waits for exactly this line.
  const { port } = server.address();
  const host = HOST.includes(':') ? `[${HOST}]` : HOST;
  console.log(`listening on http://${host}:${port}`);
});

function shutdown(signal) {
  if (shuttingDown) return;
  shuttingDown = true;
  console.log(`${signal}: shutting down`);
  dropLiveClients(1001, 'server shutting down', new ApiError(503, 'shutting_down', 'the server is shutting down', { 'Retry-After': '1' }));
  wss.close();
  server.close(() => process.exit(0));
  server.closeIdleConnections(); // idle keep-alive sockets would hold close() open
  // Clients that never finish their close handshake must not keep us alive.
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
