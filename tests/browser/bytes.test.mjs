/// The byte counters count what crosses the wire, both ways, headers
/// included. A polling page's "Bytes received" is the sum of Resource
/// Timing's transferSize for its polls — so after N answers it exceeds the
/// bodies by N response heads — and its "Bytes sent" estimate of the
/// request heads is close to the heads Chromium really sent. A WebSocket
/// page counts each frame's payload plus its 2–14 byte header. So on
/// /compare, setInterval costs more than the WebSocket, as the lesson says.
/// The dashboard's server-side counters say that they leave headers out.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, post, serverAndBrowser, statValue, waitConnected } from './helpers.mjs';

const env = serverAndBrowser();

/** Collects the Resource Timing entries of this page's polls from the
 * start, as the browser reports them. */
function recordTimings(context) {
  return context.addInitScript(() => {
    window.__polls = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.name.includes('transport=')) {
          window.__polls.push({ transferSize: e.transferSize, encodedBodySize: e.encodedBodySize });
        }
      }
    }).observe({ type: 'resource', buffered: true });
  });
}

/** Bytes in the request head the browser really sent. */
async function realHeadBytes(request) {
  const url = new URL(request.url());
  const headers = await request.headersArray();
  const line = `${request.method()} ${url.pathname}${url.search} HTTP/1.1\r\n`;
  return Buffer.byteLength(line + headers.map((h) => `${h.name}: ${h.value}\r\n`).join('') + '\r\n');
}

test('a polling page counts response heads and estimates request heads', { timeout: 60_000 }, async (t) => {
  for (let i = 1; i <= 3; i += 1) await post(env.base, 'ada', `some history ${i}`);
  const context = await env.browser.newContext();
  await recordTimings(context);
  const page = await context.newPage();
  const sent = [];
  page.on('request', (r) => {
    if (r.url().includes('transport=timeout')) sent.push(realHeadBytes(r));
  });
  try {
    await page.goto(`${env.base}/timeout?every=200`);
    await waitConnected(page);
    await page.waitForFunction(() => window.__polls.length >= 10, null, { timeout: 30_000 });
    // Stop polling, then wait until every answer's cost is in the counter.
    await page.evaluate(() => weebsockets.transport.stop());
    const expected = await page.waitForFunction(
      () => {
        const total = window.__polls.reduce((sum, e) => sum + e.transferSize, 0);
        const shown = Number(document.querySelector('[data-stat="bytes"]').dataset.value);
        return shown === total && { total, polls: window.__polls };
      },
      null,
      { timeout: 10_000 },
    );
    const { total, polls } = await expected.jsonValue();
    const n = polls.length;
    const bodies = polls.reduce((sum, e) => sum + e.encodedBodySize, 0);
    const head = Math.min(...polls.map((e) => e.transferSize - e.encodedBodySize));
    const received = await statValue(page, 'bytes');
    t.diagnostic(`${n} answers: ${received} B received, of which bodies ${bodies} B; Resource Timing counts each head as ${head} B`);
    assert.ok(head > 0, 'Resource Timing reports a response head');
    assert.ok(received >= bodies + n * head, `${received} < ${bodies} + ${n} × ${head}`);
    assert.equal(received, total);

    // Sent: our estimate of the heads against those Chromium really sent.
    const real = (await Promise.all(sent)).slice(0, n).reduce((a, b) => a + b, 0);
    const estimated = await statValue(page, 'bytes-out');
    t.diagnostic(`request heads: estimated ${estimated} B, really sent ${real} B (${sent.length} requests)`);
    assert.ok(Math.abs(estimated - real) / real < 0.15, `estimate ${estimated} B is within 15% of ${real} B`);
    assert.match(await page.textContent('#stats'), /estimated/);
  } finally {
    await context.close();
  }
});

test('a WebSocket page counts each frame with its header', { timeout: 60_000 }, async (t) => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const frames = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(Buffer.byteLength(f.payload))));
  // The upgrade request as Chromium sent it (Playwright does not show it; CDP does).
  let handshake = null;
  let upgradeUrl = null;
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketWillSendHandshakeRequest', (e) => {
    handshake = e.request.headers;
  });
  page.on('websocket', (ws) => {
    upgradeUrl = new URL(ws.url());
  });
  try {
    await page.goto(`${env.base}/websocket`);
    await waitConnected(page);
    // Sent so far: only the upgrade request, whose head we estimate.
    const line = `GET ${upgradeUrl.pathname}${upgradeUrl.search} HTTP/1.1\r\n`;
    const real = Buffer.byteLength(line + Object.entries(handshake).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n');
    const estimated = await statValue(page, 'bytes-out');
    t.diagnostic(`upgrade request head: estimated ${estimated} B, really sent ${real} B`);
    assert.ok(Math.abs(estimated - real) / real < 0.15, `estimate ${estimated} B is within 15% of ${real} B`);
    for (let i = 1; i <= 5; i += 1) await post(env.base, 'ada', `pushed ${i} ${'x'.repeat(i * 40)}`);
    await page.waitForFunction(() => [...document.querySelectorAll('.msg-text')].some((e) => e.textContent.startsWith('pushed 5')));
    // Payload plus header: 2 bytes up to 125, 4 up to 65,535 (RFC 6455).
    const framed = frames.reduce((sum, p) => sum + p + (p < 126 ? 2 : p < 65_536 ? 4 : 10), 0);
    const answerHead = 300; // the 101 answer's head, counted as Resource Timing counts heads
    await page.waitForFunction((want) => Number(document.querySelector('[data-stat="bytes"]').dataset.value) === want, framed + answerHead);
    t.diagnostic(`${frames.length} frames: ${frames.reduce((a, b) => a + b, 0)} B of payload, ${framed} B on the wire, + ${answerHead} B for the 101 answer`);
  } finally {
    await context.close();
  }
});

test('on /compare polling costs more bytes than the WebSocket', { timeout: 60_000 }, async (t) => {
  const page = await openPage(env.browser, `${env.base}/compare`, { viewport: { width: 1440, height: 900 } });
  try {
    await page.waitForFunction(() => document.querySelectorAll('[data-role="state"][data-tone="ok"]').length === 5);
    for (let i = 1; i <= 3; i += 1) await post(env.base, 'ada', `compare bytes ${i}`);
    // A few seconds of polling, synchronised on the interval column's own count.
    await page.waitForFunction(() => Number(document.querySelector('[data-column="interval"] [data-stat="requests"]').dataset.value) >= 6, null, {
      timeout: 20_000,
    });
    await page.waitForFunction(() =>
      [...document.querySelectorAll('[data-column="websocket"] .msg-text')].some((e) => e.textContent === 'compare bytes 3'),
    );
    const cost = {};
    for (const mode of ['interval', 'timeout', 'longpoll', 'websocket', 'sse']) {
      const scope = `[data-column="${mode}"]`;
      cost[mode] = (await statValue(page, 'bytes', scope)) + (await statValue(page, 'bytes-out', scope));
    }
    t.diagnostic(`bytes in + out per column: ${JSON.stringify(cost)}`);
    assert.ok(cost.interval > cost.websocket, 'setInterval costs more than the WebSocket');
    assert.ok(cost.timeout > cost.websocket, 'so does setTimeout');
  } finally {
    await page.context().close();
  }
});

test('the dashboard says its byte counters leave the headers out', async () => {
  const page = await openPage(env.browser, `${env.base}/dashboard`);
  try {
    await page.waitForSelector('#conn-state[data-tone="ok"]');
    assert.match(await page.textContent('#kpis'), /no HTTP headers/);
    assert.match(await page.textContent('#counters thead'), /no headers/);
    assert.match(await page.textContent('[data-metric="bytes_sent"]'), /Body bytes/);
  } finally {
    await page.context().close();
  }
});
