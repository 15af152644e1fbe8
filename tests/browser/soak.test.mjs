/// A page left open all lesson must not grow. The setInterval page polls
/// every 100 ms for 10 minutes with its timeline drawing, while messages
/// keep arriving (one every 2 s, and one of its own every 10 s); its list
/// is full (500 shown) from the start, so every new message replaces an
/// old one. After a garbage collection, its JS heap and its DOM node count
/// (Chromium's own numbers, CDP Performance.getMetrics) in the last minute
/// are within 20% of the first minute's.
///
/// It takes 10 minutes, so it lives in its own file: `node --test
/// soak.test.mjs`. WEEBSOCKETS_SOAK_MINUTES shortens it for a quick look
/// (the verdict then compares whatever first and last minutes there are).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, post, serverAndBrowser, waitConnected } from './helpers.mjs';

const MINUTES = Number(process.env.WEEBSOCKETS_SOAK_MINUTES ?? 10);
const SAMPLE_EVERY_MS = 15_000;
const TOLERANCE = 0.2;

const env = serverAndBrowser();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

test(`a page polling every 100 ms for ${MINUTES} minutes keeps its heap and DOM flat`, { timeout: (MINUTES * 60 + 240) * 1000 }, async (t) => {
  const page = await openPage(env.browser, `${env.base}/interval?every=100`, { name: 'soak' });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const sample = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    const { metrics } = await cdp.send('Performance.getMetrics');
    const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
    return { heap: m.JSHeapUsedSize, nodes: m.Nodes, listeners: m.JSEventListeners };
  };
  let n = 0;
  const chatter = setInterval(() => {
    n += 1;
    post(env.base, 'chatter', `background message ${n}`).catch(() => {});
  }, 2000);
  try {
    await waitConnected(page);
    // Fill the list to its cap first: from then on each message replaces one.
    for (let i = 1; i <= 520; i += 1) await post(env.base, 'warm-up', `warm-up message ${i}`);
    await page.waitForFunction(() => document.getElementById('message-count').textContent === '500', null, { timeout: 60_000 });

    const samples = [];
    const start = Date.now();
    const end = start + MINUTES * 60_000;
    let own = 0;
    let nextOwn = start;
    let nextSample = start;
    while (Date.now() < end) {
      const now = Date.now();
      if (now >= nextOwn) {
        own += 1;
        await page.fill('#text', `my own message ${own}`);
        await page.press('#text', 'Enter');
        nextOwn += 10_000;
      }
      if (now >= nextSample) {
        samples.push({ at: now - start, ...(await sample()) });
        nextSample += SAMPLE_EVERY_MS;
      }
      await sleep(Math.max(0, Math.min(nextOwn, nextSample, end) - Date.now()));
    }
    samples.push({ at: Date.now() - start, ...(await sample()) });

    const first = samples.filter((s) => s.at <= 60_000);
    const last = samples.filter((s) => s.at >= samples.at(-1).at - 60_000);
    const report = (key) => ({ first: Math.round(mean(first.map((s) => s[key]))), last: Math.round(mean(last.map((s) => s[key]))) });
    const heap = report('heap');
    const nodes = report('nodes');
    const requests = Number(await page.getAttribute('[data-stat="requests"]', 'data-value'));
    t.diagnostic(`${MINUTES} min, ${requests} polls, ${n} background + ${own} own messages`);
    t.diagnostic(`JS heap: first minute ${(heap.first / 1e6).toFixed(2)} MB, last minute ${(heap.last / 1e6).toFixed(2)} MB`);
    t.diagnostic(`DOM nodes: first minute ${nodes.first}, last minute ${nodes.last}`);
    t.diagnostic(`timeline model: ${await page.evaluate(() => `${weebsockets.timeline.spans.length} spans, ${weebsockets.timeline.ticks.length} ticks`)}`);

    // It kept working all along: it polled, and the last messages are shown.
    assert.ok(requests >= MINUTES * 60 * 10 * 0.5, `only ${requests} polls in ${MINUTES} min`);
    await page.waitForFunction((k) => [...document.querySelectorAll('.msg-text')].some((e) => e.textContent === `my own message ${k}`), own);
    assert.ok(Math.abs(heap.last - heap.first) / heap.first <= TOLERANCE, `JS heap grew from ${heap.first} to ${heap.last} bytes`);
    assert.ok(Math.abs(nodes.last - nodes.first) / nodes.first <= TOLERANCE, `DOM grew from ${nodes.first} to ${nodes.last} nodes`);
  } finally {
    clearInterval(chatter);
    await page.context().close();
  }
});
