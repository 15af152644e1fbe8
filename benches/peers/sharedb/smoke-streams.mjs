// The streaming half of smoke.sh: the document over WebSocket (welcome,
// backlog, own op back, ack, resends across WebSocket and HTTP, errors, an
// editor that sends without waiting), two editors at one revision, Server-
// Sent Events with Last-Event-ID, a long poll woken by an op, and the lab's
// latency and outage. Run by smoke.sh against a server it started:
//   node smoke-streams.mjs http://127.0.0.1:PORT TOKEN
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
const getJson = async (path) => JSON.parse((await http('GET', path)).body);

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
  /** Frames that arrived and were not taken yet (to check that nothing extra came). */
  ws.pending = () => queue.length;
  ws.sendJson = (frame) => ws.send(JSON.stringify(frame));
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

// --- WebSocket: welcome, backlog, own op back, ack ---------------------------

const start = await getJson('/api/doc');
const ws = openWs('/api/doc/ws?since=0');
const welcome = await ws.next();
check('ws: welcome first, with last_rev', welcome.type === 'welcome' && welcome.last_rev === start.rev, JSON.stringify(welcome));
let backlogOk = true;
for (let rev = 1; rev <= start.rev; rev++) {
  const frame = await ws.next();
  if (frame.type !== 'op' || frame.rev !== rev || !Array.isArray(frame.op) || typeof frame.at !== 'number') backlogOk = false;
}
check(`ws: backlog of ${start.rev} op(s) in rev order`, backlogOk);

const sse = await openSse(`/api/doc/events?since=${start.rev}`);
check('sse: 200 text/event-stream', sse.res.statusCode === 200 && sse.res.headers['content-type'].startsWith('text/event-stream'));

const length = [...start.text].length;
ws.sendJson({ type: 'op', ref: 'r-1', client: 'ws-a', seq: 1, rev: start.rev, op: [length, 'typed over a socket'], author: 'bob' });
const own = await ws.next();
const ack = await ws.next();
check('ws: own op comes back in the stream', own.type === 'op' && own.rev === start.rev + 1 && own.client === 'ws-a' && own.seq === 1 && own.author === 'bob', JSON.stringify(own));
check('ws: ack echoes ref and gives the rev', ack.type === 'ack' && ack.ref === 'r-1' && ack.rev === start.rev + 1, JSON.stringify(ack));
let rev = start.rev + 1;

// --- Resends, across the two paths --------------------------------------------

ws.sendJson({ type: 'op', ref: 'r-2', client: 'ws-a', seq: 1, rev: start.rev, op: [length, 'typed over a socket'] });
const again = await ws.next();
await sleep(50);
check('ws: resent op is acked with the same rev, and not sent again', again.type === 'ack' && again.ref === 'r-2' && again.rev === rev && ws.pending() === 0, JSON.stringify(again));
const overHttp = await http('POST', '/api/doc/ops', { client: 'ws-a', seq: 1, rev: 0, op: ['different'] });
check('http: resending an op first sent over ws answers 200 with it', overHttp.status === 200 && JSON.parse(overHttp.body).rev === rev, `${overHttp.status} ${overHttp.body}`);
ws.sendJson({ type: 'op', ref: 'r-3', client: 'tab-a', seq: 1, rev: 0, op: ['x'] });
const fromHttp = await ws.next();
check('ws: resending an op first sent over http acks its rev (1)', fromHttp.type === 'ack' && fromHttp.rev === 1, JSON.stringify(fromHttp));
check('resends stored nothing', (await getJson('/api/doc')).rev === rev);

// --- Error frames; the connection stays open ---------------------------------

ws.send('not json');
const e1 = await ws.next();
check('ws: bad JSON -> error bad_json, no ref', e1.type === 'error' && e1.code === 'bad_json' && !('ref' in e1), JSON.stringify(e1));
ws.sendJson({ type: 'send', ref: 'r-4', author: 'a', text: 'chat?' });
const e2 = await ws.next();
check('ws: unknown frame type -> error unknown_type with ref', e2.type === 'error' && e2.code === 'unknown_type' && e2.ref === 'r-4', JSON.stringify(e2));
ws.sendJson({ type: 'op', ref: 'r-5', client: 'ws-a', seq: 2, rev, op: [1] });
const e3 = await ws.next();
check('ws: op that does not add up -> error bad_operation', e3.type === 'error' && e3.code === 'bad_operation' && e3.ref === 'r-5', JSON.stringify(e3));
ws.sendJson({ type: 'op', ref: 'r-6', client: 'ws-a', seq: 2, rev: rev + 5, op: [1] });
const e4 = await ws.next();
check('ws: rev ahead -> error rev_ahead', e4.type === 'error' && e4.code === 'rev_ahead', JSON.stringify(e4));
ws.send(Buffer.from([1, 2, 3]), { binary: true });
const e5 = await ws.next();
check('ws: binary frame -> error binary_not_supported', e5.type === 'error' && e5.code === 'binary_not_supported', JSON.stringify(e5));

// --- An editor that does not wait: edit k against rev k - 1 ------------------

const text0 = (await getJson('/api/doc')).text;
let len = [...text0].length;
const burst = 50;
for (let k = 0; k < burst; k++) {
  ws.sendJson({ type: 'op', ref: `b-${k}`, client: 'ws-a', seq: 10 + k, rev: rev + k, op: [len + k, String(k % 10)] });
}
let burstOk = true;
let acks = 0;
let echoed = 0;
while (acks < burst || echoed < burst) {
  const frame = await ws.next();
  if (frame.type === 'op') {
    if (frame.rev !== rev + echoed + 1 || frame.seq !== 10 + echoed) burstOk = false;
    echoed++;
  } else if (frame.type === 'ack') {
    if (frame.ref !== `b-${acks}` || frame.rev !== rev + acks + 1) burstOk = false;
    acks++;
  } else {
    burstOk = false;
    break;
  }
}
rev += burst;
const afterBurst = await getJson('/api/doc');
const digits = Array.from({ length: burst }, (_, k) => String(k % 10)).join('');
check(`ws: ${burst} ops sent without waiting are all stored, untransformed, in order`, burstOk && afterBurst.rev === rev && afterBurst.text === text0 + digits, afterBurst.text);
len += burst;

// --- Two editors at one revision ---------------------------------------------

const other = openWs(`/api/doc/ws?since=${rev}`);
await other.next(); // welcome
ws.sendJson({ type: 'op', ref: 'c-1', client: 'ws-a', seq: 100, rev, op: ['<A>', len] });
other.sendJson({ type: 'op', ref: 'c-2', client: 'ws-b', seq: 1, rev, op: [len, '<B>'] });
const seen = { a: [], b: [] };
for (const [socket, list] of [[ws, seen.a], [other, seen.b]]) {
  while (list.filter((f) => f.type === 'op').length < 2 || (list.every((f) => f.type !== 'ack'))) list.push(await socket.next());
}
const opsA = seen.a.filter((f) => f.type === 'op').map((f) => JSON.stringify([f.rev, f.op]));
const opsB = seen.b.filter((f) => f.type === 'op').map((f) => JSON.stringify([f.rev, f.op]));
const both = await getJson('/api/doc');
check('ws: two ops at one rev both survive', both.rev === rev + 2 && both.text === `<A>${afterBurst.text}<B>`, both.text);
check('ws: both editors see the same two stored ops in the same order', opsA.join() === opsB.join(), `${opsA} / ${opsB}`);
rev += 2;
other.close();

// --- SSE: retry line, live events, Last-Event-ID -----------------------------

await sleep(100);
const events = sse.events();
check('sse: starts with retry:', sse.raw().startsWith('retry: 2000\n\n'), JSON.stringify(sse.raw().slice(0, 40)));
check(`sse: every op since ${start.rev} as id / event: op / data`, events.length === rev - start.rev && events.every((e, i) => e.id === String(start.rev + 1 + i) && e.event === 'op' && JSON.parse(e.data).rev === start.rev + 1 + i), `${events.length} events`);
sse.req.destroy();

const resumed = await openSse('/api/doc/events?since=0', { 'Last-Event-ID': String(rev - 1) });
await sleep(100);
const resumedEvents = resumed.events();
check('sse: Last-Event-ID wins over since', resumedEvents.length === 1 && resumedEvents[0].id === String(rev), JSON.stringify(resumedEvents.map((e) => e.id)));

// --- Long poll woken by an op (not by a timer) --------------------------------

const held = http('GET', `/api/doc/longpoll?since=${rev}&timeout=10`);
const held2 = http('GET', `/api/doc/longpoll?since=${rev}&timeout=10`);
await sleep(200);
const woke = Date.now();
await http('POST', '/api/doc/ops', { client: 'lp', seq: 1, rev, op: ['wake up ', len + 6] });
const [woken, woken2] = await Promise.all([held, held2]);
const wokenBody = JSON.parse(woken.body || '{}');
check('longpoll: an op answers the held requests at once', woken.status === 200 && woken2.body === woken.body && wokenBody.ops?.[0]?.client === 'lp' && wokenBody.last_rev === rev + 1 && Date.now() - woke < 1000, `${woken.status} ${woken.body}`);
rev += 1;
await sleep(100);
check('sse: a stream resumed with Last-Event-ID goes on live', resumed.events().length === 2 && resumed.events()[1].id === String(rev));
resumed.req.destroy();

// --- Refused upgrades, and frames over the limit -----------------------------

const badUpgrade = new WebSocket(`${wsBase}/api/doc/ws?since=-1`);
const [, response] = await once(badUpgrade, 'unexpected-response');
let refusal = '';
for await (const chunk of response) refusal += chunk;
check('ws: bad since is an HTTP 400 with the JSON body', response.statusCode === 400 && JSON.parse(refusal).code === 'bad_query', `${response.statusCode} ${refusal}`);

const big = openWs('/api/doc/ws');
await big.next(); // welcome
big.sendJson({ type: 'op', client: 'big', seq: 1, rev, op: ['x'.repeat(1100 * 1024)] });
const [bigCode] = await once(big, 'close');
check('ws: frame over 1 MiB closes with 1009', bigCode === 1009, String(bigCode));

// --- The lab: latency delays frames without reordering; the outage -----------

const auth = { Authorization: `Bearer ${token}` };
await http('PUT', '/api/lab', { latency_ms: 300, jitter_ms: 200 }, auth);
const slow = openWs(`/api/doc/ws?since=${rev}`);
await slow.next(); // welcome (itself delayed)
const sentAt = Date.now();
for (let k = 0; k < 5; k++) await http('POST', '/api/doc/ops', { client: 'lab', seq: k, rev: rev + k, op: [len + 14 + k, 'z'] });
const delayed = [];
for (let k = 0; k < 5; k++) delayed.push(await slow.next());
check('lab: latency delays ws frames (>= 300 ms) and keeps them in rev order', Date.now() - sentAt >= 300 && delayed.every((f, k) => f.rev === rev + 1 + k), delayed.map((f) => f.rev).join());
rev += 5;
await http('PUT', '/api/lab', { latency_ms: 0, jitter_ms: 0 }, auth);
slow.close();

const victim = openWs('/api/doc/ws');
await victim.next();
const victimSse = await openSse('/api/doc/events');
const on = await http('PUT', '/api/lab', { outage: true }, auth);
check('lab: PUT with token turns the outage on', on.status === 200 && JSON.parse(on.body).outage === true, on.body);
const [victimCode] = await once(victim, 'close');
check('lab: outage closes open WebSockets with 1013', victimCode === 1013, String(victimCode));
await Promise.race([once(victimSse.res, 'end'), sleep(1000)]);
check('lab: outage ends open SSE streams', victimSse.res.complete);
const refused = await http('POST', '/api/doc/ops', { client: 'x', seq: 1, rev, op: [len + 19] });
check('lab: document endpoints answer 503 outage with Retry-After', refused.status === 503 && refused.headers['retry-after'] === '5' && JSON.parse(refused.body).code === 'outage', `${refused.status} ${refused.body}`);
check('lab: /api/stats keeps working', (await http('GET', '/api/stats')).status === 200);
const off = await http('PUT', '/api/lab', { outage: false }, auth);
check('lab: outage off again', off.status === 200 && JSON.parse(off.body).outage === false, off.body);

// (The first WebSocket, `ws`, was closed by the outage as well.)
process.exit(failed ? 1 : 0);
