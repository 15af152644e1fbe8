// Weebsockets, the Express edition: the project's wire contract
// (shared PROTOCOL.md, v1) written the way a web-development student would
// write it with Express 5 and the `ws` package. It is the "peer to beat" in
// the benchmarks, so it is plain, documented-practice code: no clustering,
// no caching tricks, no native add-ons, and nothing slowed down on purpose.
//
// Layout of this file, top to bottom:
//   1. settings (flags and env)         6. Server-Sent Events  GET /api/events
//   2. shared state (room, lab, stats)  7. not found, and the one error handler
//   3. the Express app and helpers      8. WebSocket           /api/ws
//   4. plain HTTP: messages, stats, lab 9. start-up and shutdown
//   5. long polling  GET /api/longpoll
//
// The log lives in memory (see room.js): restart the process and it is empty.
//
// Run: npm ci && node server.js --port 3000

import { createHash, timingSafeEqual } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { createServer } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import { parseArgs } from 'node:util';

import express from 'express';
import { WebSocket, WebSocketServer } from 'ws';

import { ApiError, Room, validateDraft } from './room.js';

// ---------------------------------------------------------------------------
// 1. Settings
// ---------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    'teacher-token': { type: 'string' },
  },
});

const PORT = parsePort(flags.port ?? process.env.PORT ?? '3000');
const HOST = flags.host ?? process.env.HOST ?? '127.0.0.1';
/** Who may change the lab. Without a token nobody can: PUT /api/lab answers 401. */
const TEACHER_TOKEN = flags['teacher-token'] ?? process.env.TEACHER_TOKEN ?? '';

/** Largest request body we read; the contract says 16 KiB (body-parser's 'kb' is 1024 bytes). */
const BODY_LIMIT = '16kb';
/** Largest WebSocket frame we accept; ws closes bigger ones with 1009. */
const WS_MAX_PAYLOAD = 64 * 1024;
/** `limit` when the client does not say, and the most it may ask for. */
const PAGE_DEFAULT = 100;
const PAGE_MAX = 500;
/** How long a long-poll is held when the client does not say, and the allowed range, in seconds. */
const LONG_POLL_HOLD_DEFAULT_S = 25;
const LONG_POLL_HOLD_MIN_S = 1;
const LONG_POLL_HOLD_MAX_S = 55;
/**
 * Ping every WebSocket this often. A peer that has not answered the previous
 * ping by the next tick is terminated, so a dead one is gone within two
 * intervals. The contract asks for "at least every 30 s".
 */
const WS_HEARTBEAT_MS = 30_000;
/**
 * A comment line on every idle SSE stream this often, so proxies and the
 * browser do not decide the stream is dead. Half the contract's 30 s bound.
 */
const SSE_KEEP_ALIVE_MS = 15_000;
/** Told to EventSource in the `retry:` line: how long to wait before reconnecting. */
const SSE_RETRY_MS = 2000;
/** `Retry-After` on 503 answers during the lab's outage. */
const OUTAGE_RETRY_AFTER_S = 5;
/** The lab's latency and jitter are stored, and bounded so a typo cannot park a request for hours. */
const LAB_MAX_MS = 10_000;

// ---------------------------------------------------------------------------
// 2. Shared state
// ---------------------------------------------------------------------------

const room = new Room();

/** The teacher's network lab. Only `outage` has an effect here (see README). */
const lab = { latency_ms: 0, jitter_ms: 0, outage: false };

/** Plain counters, read by GET /api/stats. `posted` counts messages by their `via`. */
const stats = {
  started_at: Date.now(),
  transports: {
    api: { requests: 0, posted: 0 },
    interval: { requests: 0, posted: 0 },
    timeout: { requests: 0, posted: 0 },
    longpoll: { requests: 0, waiting: 0, timed_out: 0, posted: 0 },
    websocket: { open: 0, opened: 0, frames_in: 0, frames_out: 0, posted: 0 },
    sse: { open: 0, opened: 0, events_out: 0, posted: 0 },
  },
};
room.on('message', (message) => {
  stats.transports[message.via].posted++;
});

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
 * JSON bodies only, at most 16 KiB. `verify` sees the raw bytes before they
 * are decoded: body-parser would quietly turn invalid UTF-8 into U+FFFD, and
 * the contract says such a body is refused instead.
 */
const jsonBody = express.json({
  limit: BODY_LIMIT,
  verify(req, res, buf) {
    // body-parser would hand an empty body on as `{}`; it is not JSON.
    if (buf.length === 0) throw new ApiError(400, 'invalid_json', 'the body is empty');
    if (!isUtf8(buf)) throw new ApiError(400, 'invalid_json', 'the body is not valid UTF-8');
  },
});

// Chat messages change every second: no browser or proxy may cache an answer.
app.use('/api', (req, res, next) => {
  res.set('Cache-Control', 'no-store');
  next();
});

/** express.json() leaves `req.body` undefined for other types; say why with a 415. */
function requireJson(req) {
  if (!req.is('application/json')) {
    throw new ApiError(415, 'unsupported_media_type', 'send the body as JSON with Content-Type: application/json');
  }
}

/**
 * Read an unsigned 64-bit integer from the query string (or a header).
 * Repeated parameters arrive as arrays and are refused, as is anything that
 * is not plain digits.
 */
function readU64(value, name, fallback) {
  if (value === undefined || value === '') return fallback;
  if (typeof value !== 'string' || !/^\d{1,20}$/.test(value) || BigInt(value) > 0xffff_ffff_ffff_ffffn) {
    throw new ApiError(400, 'invalid_query', `"${name}" must be a whole number of 0 or more`);
  }
  // Ids will never get near 2^53, so a Number is exact where it matters; a
  // larger cursor only ever means "after everything", which it still does.
  return Number(value);
}

/** `limit`: default 100; anything above the maximum is served as the maximum. */
function readLimit(value) {
  return Math.min(readU64(value, 'limit', PAGE_DEFAULT), PAGE_MAX);
}

/** One page of the log, as every polling endpoint answers it. */
function page(since, limit) {
  return { messages: room.since(since, limit), last_id: room.lastId };
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

// ---------------------------------------------------------------------------
// 4. Plain HTTP endpoints
// ---------------------------------------------------------------------------

app.use(['/api/messages', '/api/longpoll', '/api/events'], refuseDuringOutage);

app
  .route('/api/messages')
  // Polling: answer at once with whatever is newer than the cursor. The
  // browser pages add ?transport=interval|timeout so the counters can tell
  // the two polling styles apart; everything else counts as `api`.
  .get((req, res) => {
    const query = req.query; // Express 5 re-parses on every access: read it once.
    const since = readU64(query.since, 'since', 0);
    const limit = readLimit(query.limit);
    const transport = query.transport === 'interval' || query.transport === 'timeout' ? query.transport : 'api';
    stats.transports[transport].requests++;
    res.json(page(since, limit));
  })
  // Sending: validate, append, answer with the stored message. Appending
  // also wakes every long-poll, SSE stream and WebSocket (sections 5, 6, 8).
  .post(jsonBody, (req, res) => {
    requireJson(req);
    const message = room.append(validateDraft(req.body));
    res.status(201).json(message);
  })
  .all(methodNotAllowed);

app
  .route('/api/stats')
  .get((req, res) => {
    res.json({
      room: { last_id: room.lastId, messages: room.lastId },
      uptime_s: Math.floor((Date.now() - stats.started_at) / 1000),
      transports: stats.transports,
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
    throw new ApiError(422, 'invalid_field', `"${name}" must be a whole number of milliseconds from 0 to ${LAB_MAX_MS}`);
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
      throw new ApiError(422, 'invalid_field', 'the body must be a JSON object');
    }
    const next = { ...lab };
    if (body.latency_ms !== undefined) next.latency_ms = checkLabMs(body.latency_ms, 'latency_ms');
    if (body.jitter_ms !== undefined) next.jitter_ms = checkLabMs(body.jitter_ms, 'jitter_ms');
    if (body.outage !== undefined) {
      if (typeof body.outage !== 'boolean') throw new ApiError(422, 'invalid_field', '"outage" must be true or false');
      next.outage = body.outage;
    }
    const outageStarts = next.outage && !lab.outage;
    Object.assign(lab, next);
    if (outageStarts) dropLiveClients(1013, 'lab outage', outageError());
    res.json(lab);
  })
  .all(methodNotAllowed);

app.get('/healthz', (req, res) => {
  res.set('Cache-Control', 'no-store').json({ status: 'ok' });
});

// ---------------------------------------------------------------------------
// 5. Long polling: hold the request until there is news or time runs out
// ---------------------------------------------------------------------------

/**
 * Requests that are being held, each `{ since, limit, res, timer }`. A Set
 * because clients come and go in any order and removal must be cheap.
 */
const heldPolls = new Set();

app.get('/api/longpoll', (req, res) => {
  const query = req.query;
  const since = readU64(query.since, 'since', 0);
  const limit = readLimit(query.limit);
  const holdS = readU64(query.timeout, 'timeout', LONG_POLL_HOLD_DEFAULT_S);
  if (holdS < LONG_POLL_HOLD_MIN_S || holdS > LONG_POLL_HOLD_MAX_S) {
    throw new ApiError(400, 'invalid_query', `"timeout" must be ${LONG_POLL_HOLD_MIN_S} to ${LONG_POLL_HOLD_MAX_S} seconds`);
  }
  stats.transports.longpoll.requests++;

  // Something is already waiting for this client: no need to hold at all.
  if (room.lastId > since) return res.json(page(since, limit));

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

// The wake-up: no timer checks for news; an append answers the held requests
// it concerns, right when it happens.
room.on('message', () => {
  for (const poll of heldPolls) {
    if (room.lastId > poll.since) {
      release(poll);
      poll.res.json(page(poll.since, poll.limit));
    }
  }
});

// ---------------------------------------------------------------------------
// 6. Server-Sent Events: one long response, one event per message
// ---------------------------------------------------------------------------

/** Responses of the open event streams. */
const sseStreams = new Set();

/** The wire form of one message. `id:` is what EventSource sends back as Last-Event-ID. */
function sseEvent(message) {
  return `id: ${message.id}\nevent: message\ndata: ${JSON.stringify(message)}\n\n`;
}

app.get('/api/events', (req, res) => {
  // A reconnecting EventSource sends the id of the last event it saw; that
  // is more trustworthy than the `since` of the URL it first opened.
  const lastEventId = req.get('Last-Event-ID');
  const since = lastEventId
    ? readU64(lastEventId, 'Last-Event-ID', 0)
    : readU64(req.query.since, 'since', 0);

  res.status(200).set({
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
  });
  res.flushHeaders(); // send the headers now: the browser's `open` fires before any message

  // Backlog and the retry hint in one write; then live events from the
  // listener below. Nothing can be appended in between: this all runs
  // before Node handles any other request.
  const backlog = room.since(since);
  res.write(`retry: ${SSE_RETRY_MS}\n\n` + backlog.map(sseEvent).join(''));
  stats.transports.sse.events_out += backlog.length;
  sseStreams.add(res);
  stats.transports.sse.opened++;
  stats.transports.sse.open++;

  // A comment line (starts with ':') is ignored by EventSource but keeps the
  // connection visibly alive.
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), SSE_KEEP_ALIVE_MS);

  res.on('close', () => {
    clearInterval(keepAlive);
    if (sseStreams.delete(res)) stats.transports.sse.open--;
  });
});

room.on('message', (message) => {
  if (sseStreams.size === 0) return;
  const event = sseEvent(message); // serialise once, write to everyone
  for (const res of sseStreams) res.write(event);
  stats.transports.sse.events_out += sseStreams.size;
});

// ---------------------------------------------------------------------------
// 7. Not found, and the one error handler (Express runs these last because
//    they are registered last)
// ---------------------------------------------------------------------------

// A plain GET on the WebSocket path (a browser tab, curl) gets told what to do.
app.all('/api/ws', (req, res, next) => {
  next(new ApiError(426, 'upgrade_required', 'this endpoint speaks WebSocket; connect with ws://', { Upgrade: 'websocket' }));
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
      return new ApiError(413, 'payload_too_large', 'the body is larger than 16 KiB');
    case 'entity.parse.failed':
      return new ApiError(400, 'invalid_json', 'the body is not valid JSON');
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new ApiError(415, 'unsupported_media_type', err.message);
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
  if (apiError.headers) res.set(apiError.headers);
  res.status(apiError.status).json({ error: apiError.message, code: apiError.code });
});

// ---------------------------------------------------------------------------
// 8. WebSocket: the same HTTP server, upgraded at /api/ws
// ---------------------------------------------------------------------------

const server = createServer(app);

const wss = new WebSocketServer({
  server, // share the port with Express
  path: '/api/ws',
  maxPayload: WS_MAX_PAYLOAD, // bigger frames: ws closes with 1009
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
  return readU64(parseQuery(search).since, 'since', 0);
}

/** Send one JSON frame to one client. */
function sendFrame(ws, frame) {
  ws.send(JSON.stringify(frame));
  stats.transports.websocket.frames_out++;
}

function sendError(ws, ref, apiError) {
  const frame = { type: 'error' };
  if (ref !== undefined) frame.ref = ref; // echo the client's ref whenever it gave one
  frame.error = apiError.message;
  frame.code = apiError.code;
  sendFrame(ws, frame);
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
  ws.on('close', () => stats.transports.websocket.open--);

  // ws added this socket to wss.clients before calling us, and the broadcast
  // below walks wss.clients. Welcome and backlog go out now, in this same
  // turn of the event loop, so live messages follow them with no gap and no
  // repeat.
  sendFrame(ws, { type: 'welcome', last_id: room.lastId });
  for (const message of room.since(wsCursor(req))) sendFrame(ws, { type: 'message', message });

  ws.on('message', (data, isBinary) => {
    stats.transports.websocket.frames_in++;
    if (isBinary) {
      return sendError(ws, undefined, new ApiError(415, 'unsupported_media_type', 'send text frames with JSON'));
    }
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return sendError(ws, undefined, new ApiError(400, 'invalid_json', 'the frame is not valid JSON'));
    }
    const isObject = frame !== null && typeof frame === 'object' && !Array.isArray(frame);
    const ref = isObject ? frame.ref : undefined;
    if (!isObject || frame.type !== 'send') {
      return sendError(ws, ref, new ApiError(422, 'invalid_field', 'the only frame a client may send is {"type":"send",...}'));
    }
    let message;
    try {
      message = room.append({ ...validateDraft({ author: frame.author, text: frame.text }), via: 'websocket' });
    } catch (err) {
      return sendError(ws, ref, toApiError(err)); // the connection stays open
    }
    // The broadcast (below) has already delivered the message itself to
    // every client, this one included; the ack tells the sender which id it got.
    const ack = { type: 'ack' };
    if (ref !== undefined) ack.ref = ref;
    ack.id = message.id;
    sendFrame(ws, ack);
  });
});

// Broadcast, as in the ws README: serialise once, send to every open client.
room.on('message', (message) => {
  const frame = JSON.stringify({ type: 'message', message });
  for (const client of wss.clients) {
    if (client.readyState === WebSocket.OPEN) {
      client.send(frame);
      stats.transports.websocket.frames_out++;
    }
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
 * ending the response, held long-polls with `pollError`. Used by the lab's
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

function parsePort(value) {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    console.error(`invalid port: ${value}`);
    process.exit(2);
  }
  return port;
}

server.on('error', (err) => {
  console.error(`cannot listen on ${HOST}:${PORT}: ${err.message}`);
  process.exit(1);
});

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
