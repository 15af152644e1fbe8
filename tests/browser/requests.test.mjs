/// What each page costs in HTTP requests, counted from the browser's side:
/// the setInterval page sends about one GET per interval whether or not
/// anything happens, tagged transport=interval, seq= and client= for
/// DevTools; the WebSocket page sends no HTTP polling at all once its socket
/// is open; the setTimeout page never has two requests in flight.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { putLab, serverAndBrowser, waitConnected } from './helpers.mjs';

const env = serverAndBrowser();

/** Opens a page and records every request to the API it makes. */
async function recordedPage(path) {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const requests = [];
  const sockets = [];
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.pathname.startsWith('/api/')) requests.push({ at: Date.now(), method: req.method(), url });
  });
  // WebSocket handshakes are not 'request' events; Playwright reports them apart.
  page.on('websocket', (ws) => sockets.push({ at: Date.now(), url: new URL(ws.url()) }));
  await page.goto(env.base + path);
  return { page, requests, sockets };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('setInterval sends about one request per interval', { timeout: 60_000 }, async () => {
  const every = 250;
  const { page, requests } = await recordedPage(`/interval?every=${every}`);
  await waitConnected(page);
  // Count over a measured window of real time (the page runs on its own
  // clock; this only decides how long we watch it).
  const windowMs = 4000;
  const start = Date.now();
  await sleep(windowMs);
  const polls = requests.filter((r) => r.at >= start && r.url.searchParams.get('transport') === 'interval');
  const expected = windowMs / every;
  assert.ok(
    polls.length >= expected * 0.7 && polls.length <= expected * 1.3,
    `expected about ${expected} polls in ${windowMs} ms, saw ${polls.length}`,
  );
  // Every poll says who it is and counts itself.
  const seqs = polls.map((r) => Number(r.url.searchParams.get('seq')));
  for (const poll of polls) {
    assert.equal(poll.url.pathname, '/api/messages');
    assert.match(poll.url.searchParams.get('client'), /^[A-Za-z0-9_-]{1,64}$/);
    assert.ok(poll.url.searchParams.has('since'));
  }
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'seq counts up');
  assert.equal(new Set(polls.map((r) => r.url.searchParams.get('client'))).size, 1, 'one client id per tab');
  // The page's own counter agrees with what the browser sent.
  const shown = Number(await page.textContent('[data-stat="requests"]'));
  assert.ok(shown >= polls.length, `instrument shows ${shown}, browser sent ${polls.length} in the window`);
  await page.context().close();
});

test('the WebSocket page does no HTTP polling at all', { timeout: 60_000 }, async () => {
  const { page, requests, sockets } = await recordedPage('/websocket');
  await waitConnected(page);
  const start = Date.now();
  // News arrives over the socket while we watch.
  for (let i = 0; i < 3; i += 1) {
    await fetch(`${env.base}/api/messages`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ author: 'api', text: `push ${i}` }),
    });
    await sleep(1000);
  }
  await page.waitForFunction(() => [...document.querySelectorAll('.msg-text')].some((e) => e.textContent === 'push 2'));
  const after = requests.filter((r) => r.at >= start);
  assert.deepEqual(
    after.map((r) => `${r.method} ${r.url.pathname}`),
    [],
    'no HTTP requests once the socket is open',
  );
  // Before it: one look at the room, then the upgrade. Nothing else.
  const before = requests.filter((r) => r.at < start).map((r) => `${r.method} ${r.url.pathname}`);
  assert.deepEqual(before, ['GET /api/messages']);
  assert.equal(requests[0].url.searchParams.get('limit'), '1', 'the first look asks for one message');
  assert.equal(sockets.length, 1, 'one WebSocket for the whole session');
  assert.equal(sockets[0].url.pathname, '/api/ws');
  assert.equal(sockets[0].url.protocol, 'ws:');
  assert.ok(sockets[0].url.searchParams.has('since'));
  assert.ok(sockets[0].url.searchParams.has('client'));
  await page.context().close();
});

test('setTimeout never has two requests in flight, even with jitter', { timeout: 60_000 }, async () => {
  await putLab(env.base, { latency_ms: 50, jitter_ms: 400 });
  try {
    const { page, requests } = await recordedPage('/timeout?every=100');
    await waitConnected(page);
    await page.waitForFunction(() => Number(document.querySelector('[data-stat="responses"]').textContent) >= 8, null, {
      timeout: 30_000,
    });
    assert.equal(await page.textContent('[data-stat="inflight-max"]'), '1');
    assert.equal(await page.textContent('[data-stat="out-of-order"]'), '0');
    const polls = requests.filter((r) => r.url.searchParams.get('transport') === 'timeout');
    assert.ok(polls.length >= 8);
    await page.context().close();
  } finally {
    await putLab(env.base, { latency_ms: 0, jitter_ms: 0 });
  }
});
