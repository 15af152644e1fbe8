/// Retry waits on screen match the lesson. setInterval keeps several
/// requests in flight; when they all fail together, that is one failure and
/// one retry — not one per request, which would push the back-off to its
/// ceiling at once. And an answer to a request sent before the failure,
/// arriving late, is ignored: it does not turn the page green while a
/// retry is still pending.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, putLab, serverAndBrowser, statValue, waitConnected } from './helpers.mjs';

const env = serverAndBrowser();

test('a burst of overlapping failures is one retry', { timeout: 60_000 }, async (t) => {
  const page = await openPage(env.browser, `${env.base}/interval?every=200`);
  try {
    await waitConnected(page);
    // Hold every poll in the browser until five are in flight, then answer
    // them all at once with the outage's 503 (and its Retry-After): a burst
    // of failures, all from one run of setInterval.
    const held = [];
    let release;
    const burst = new Promise((resolve) => {
      release = resolve;
    });
    await page.route('**/api/messages?*transport=interval*', async (route) => {
      held.push(route);
      if (held.length === 5) release();
      await burst;
      await route.fulfill({
        status: 503,
        headers: { 'Retry-After': '3', 'Content-Type': 'application/json' },
        body: JSON.stringify({ error: 'the lab outage is on', code: 'outage' }),
      });
    });
    await page.waitForSelector('#conn-state[data-tone="retry"]');
    // The retry (3 s away) will reach the real server again.
    await page.unroute('**/api/messages?*transport=interval*');
    await waitConnected(page);
    const log = await page.textContent('#log');
    t.diagnostic(`${held.length} requests failed together; the log says: ${log.match(/retry #\d+ in [\d.]+ s/g)}`);
    assert.ok(held.length >= 5);
    assert.equal(await statValue(page, 'retries'), 1, 'one retry for the whole burst');
    assert.match(log, /retry #1 in 3\.0 s/, 'the wait is the server’s Retry-After, not the ceiling');
    assert.doesNotMatch(log, /retry #2/);
    assert.match(log, /answered again after 1 failed attempt/);
  } finally {
    await page.context().close();
  }
});

test('a late answer from before the failure does not turn the page green', { timeout: 60_000 }, async () => {
  // 1,500 ms of latency and a poll every 500 ms: three requests in flight.
  await putLab(env.base, { latency_ms: 1500, jitter_ms: 0 });
  const page = await openPage(env.browser, `${env.base}/interval?every=500`);
  try {
    await waitConnected(page);
    await page.waitForFunction(() => Number(document.querySelector('[data-stat="inflight"]').textContent) >= 2);
    // Watch every tone the state pill takes from here on.
    await page.evaluate(() => {
      const pill = document.getElementById('conn-state');
      window.__tones = [];
      new MutationObserver(() => window.__tones.push(pill.dataset.tone)).observe(pill, { attributes: true, childList: true });
    });
    // The outage refuses the next poll at once (and says Retry-After: 2 s);
    // the requests already past the door are answered after their delay.
    await putLab(env.base, { outage: true });
    await page.waitForSelector('#conn-state[data-tone="retry"]');
    await page.waitForFunction(() => Number(document.querySelector('[data-stat="stale"]').dataset.value) >= 1, null, {
      timeout: 10_000,
    });
    const tones = await page.evaluate(() => window.__tones);
    const sinceRetry = tones.slice(tones.indexOf('retry'));
    assert.ok(!sinceRetry.includes('ok'), `the pill went ${sinceRetry.join(' → ')} while the retry was pending`);
    assert.equal(await page.getAttribute('#conn-state', 'data-tone'), 'retry');
    await putLab(env.base, { outage: false });
    await waitConnected(page);
  } finally {
    await putLab(env.base, { latency_ms: 0, jitter_ms: 0, outage: false });
    await page.context().close();
  }
});
