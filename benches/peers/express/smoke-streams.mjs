// The streaming half of smoke.sh: WebSocket, Server-Sent Events, a long-poll
// woken by an append, and the lab's outage. Run by smoke.sh against a
// server it started:  node smoke-streams.mjs http://127.0.0.1:PORT TOKEN
// Prints one "ok - …" / "not ok - …" line per check; exits 1 on any failure.

import { get, request } from 'node:http';
import { once } from 'node:events';
import WebSocket from 'ws';

const [base, token] = process.argv.slice(2);
const wsBase = base.replace(/^http/, 'ws');
let failed = 0;

function check(name, condition, detail = '') {
  console.log(`${condition ? 'ok' : 'not ok'} - ${name}${condition || !detail ? '' : `: ${detail}`}`);
  if (!condition) failed++;
}

/** A tiny fetch-alike over node:http that returns { status, headers, body }. */
function http(method, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = request(base + path, { method, headers: { 'Content-Type': 'application/json', ...headers } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (data += chunk));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Collects a WebSocket's frames; `next()` resolves with the next one (or rejects after 2 s). */
function openWs(path) {
  const ws = new WebSocket(wsBase + path);
  const queue = [];
  const waiters = [];
  ws.on('message', (data) => {
    const frame = JSON.parse(data);
    const waiter = waiters.shift();
    if (waiter) waiter(frame);
    else queue.push(frame);
  });
  ws.next = () =>
    queue.length
      ? Promise.resolve(queue.shift())
      : new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no frame within 2 s')), 2000);
          waiters.push((frame) => {
            clearTimeout(timer);
            resolve(frame);
          });
        });
  return ws;
}

/** Opens an SSE stream; `events()` returns what has been parsed so far. */
function openSse(path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = get(base + path, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      let raw = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (raw += chunk));
      resolve({
        res,
        req,
        raw: () => raw,
        events: () =>
          raw
            .split('\n\n')
            .filter((block) => block.startsWith('id: '))
            .map((block) => Object.fromEntries(block.split('\n').map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]))),
      });
    });
    req.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// --- WebSocket: welcome, backlog, live, ack, errors -------------------------

const before = JSON.parse((await http('GET', '/api/messages?since=0&limit=500')).body);
const lastId = before.last_id;

const ws = openWs('/api/ws?since=0');
const welcome = await ws.next();
check('ws: welcome first, with last_id', welcome.type === 'welcome' && welcome.last_id === lastId, JSON.stringify(welcome));
let backlogOk = true;
for (let id = 1; id <= lastId; id++) {
  const frame = await ws.next();
  if (frame.type !== 'message' || frame.message.id !== id) backlogOk = false;
}
check(`ws: backlog of ${lastId} message(s) in id order`, backlogOk);

const sse = await openSse(`/api/events?since=${lastId}`);
check('sse: 200 text/event-stream', sse.res.statusCode === 200 && sse.res.headers['content-type'].startsWith('text/event-stream'));

ws.send(JSON.stringify({ type: 'send', ref: 'c-1', author: 'ada', text: 'hello from ws' }));
const live = await ws.next();
const ack = await ws.next();
check('ws: own message comes back with via websocket', live.type === 'message' && live.message.id === lastId + 1 && live.message.via === 'websocket', JSON.stringify(live));
check('ws: ack echoes ref and gives the id', ack.type === 'ack' && ack.ref === 'c-1' && ack.id === lastId + 1, JSON.stringify(ack));

ws.send('not json');
const e1 = await ws.next();
check('ws: bad JSON frame -> error invalid_json', e1.type === 'error' && e1.code === 'invalid_json' && !('ref' in e1), JSON.stringify(e1));
ws.send(JSON.stringify({ type: 'send', ref: 'c-2', author: '   ', text: 'x' }));
const e2 = await ws.next();
check('ws: empty author -> error invalid_field with ref', e2.type === 'error' && e2.code === 'invalid_field' && e2.ref === 'c-2', JSON.stringify(e2));
ws.send(JSON.stringify({ type: 'send', ref: 'c-3', author: 'ada', text: 'still open' }));
const afterError = await ws.next();
check('ws: connection stays open after errors', afterError.type === 'message' && afterError.message.text === 'still open');
await ws.next(); // its ack

// --- SSE: retry line, live events, Last-Event-ID ----------------------------

await sleep(100);
const events = sse.events();
check('sse: starts with retry:', sse.raw().startsWith('retry: 2000\n\n'), JSON.stringify(sse.raw().slice(0, 40)));
check('sse: live events with id and event: message', events.length === 2 && events[0].id === String(lastId + 1) && events[0].event === 'message' && JSON.parse(events[0].data).text === 'hello from ws', JSON.stringify(events));
sse.req.destroy();

const resumed = await openSse('/api/events?since=0', { 'Last-Event-ID': String(lastId + 1) });
await sleep(100);
const resumedEvents = resumed.events();
check('sse: Last-Event-ID wins over since', resumedEvents.length === 1 && resumedEvents[0].id === String(lastId + 2), JSON.stringify(resumedEvents));
resumed.req.destroy();

// --- Long-poll woken by an append (not by a timer) ---------------------------

const held = http('GET', `/api/longpoll?since=${lastId + 2}&timeout=10`);
await sleep(200);
const started = Date.now();
await http('POST', '/api/messages', { author: 'bob', text: 'wake up', via: 'longpoll' });
const woken = await held;
const wokenBody = JSON.parse(woken.body || '{}');
check('longpoll: append answers the held request at once', woken.status === 200 && wokenBody.messages?.[0]?.text === 'wake up' && Date.now() - started < 1000, `${woken.status} ${woken.body}`);

// --- Refusals ----------------------------------------------------------------

const badUpgrade = new WebSocket(`${wsBase}/api/ws?since=-1`);
const [, response] = await once(badUpgrade, 'unexpected-response');
let refusal = '';
for await (const chunk of response) refusal += chunk;
check('ws: bad since is an HTTP 400 with the JSON body', response.statusCode === 400 && JSON.parse(refusal).code === 'invalid_query', `${response.statusCode} ${refusal}`);

const big = openWs('/api/ws');
await big.next(); // welcome
big.send(JSON.stringify({ type: 'send', author: 'a', text: 'x'.repeat(70 * 1024) }));
const [bigCode] = await once(big, 'close');
check('ws: frame over 64 KiB closes with 1009', bigCode === 1009, String(bigCode));

// --- The lab's outage --------------------------------------------------------

const victim = openWs('/api/ws');
await victim.next();
const victimSse = await openSse('/api/events');
const unauthorised = await http('PUT', '/api/lab', { outage: true });
check('lab: PUT without token -> 401', unauthorised.status === 401 && JSON.parse(unauthorised.body).code === 'unauthorized', unauthorised.body);
const on = await http('PUT', '/api/lab', { outage: true }, { Authorization: `Bearer ${token}` });
check('lab: PUT with token turns the outage on', on.status === 200 && JSON.parse(on.body).outage === true, on.body);
const [victimCode] = await once(victim, 'close');
check('lab: outage closes open WebSockets with 1013', victimCode === 1013, String(victimCode));
await Promise.race([once(victimSse.res, 'end'), sleep(1000)]);
check('lab: outage ends open SSE streams', victimSse.res.complete);
const refused = await http('GET', '/api/messages');
check('lab: transport endpoints answer 503 with Retry-After', refused.status === 503 && refused.headers['retry-after'] === '5', `${refused.status} ${refused.body}`);
const statsDuring = await http('GET', '/api/stats');
check('lab: /api/stats keeps working', statsDuring.status === 200);
const off = await http('PUT', '/api/lab', { outage: false }, { Authorization: `Bearer ${token}` });
check('lab: outage off again', off.status === 200 && JSON.parse(off.body).outage === false, off.body);

// (The first WebSocket, `ws`, was closed by the outage as well.)
process.exit(failed ? 1 : 0);
