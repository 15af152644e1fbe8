/// The request timeline's rows mean concurrency. With the lab's latency at
/// 1,500 ms and a poll every 1,000 ms, setInterval sends a new request
/// before the last one is answered, so its timeline uses at least two rows;
/// setTimeout waits for each answer, so its timeline never leaves the first
/// row. Asserted on the model the canvas is drawn from (`spans`), not on
/// pixels.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, putLab, serverAndBrowser, waitConnected } from './helpers.mjs';

const env = serverAndBrowser();

/** The rows used by the page's polls, and how many polls were answered. */
function rows(page) {
  return page.evaluate(() => {
    const polls = weebsockets.timeline.spans.filter((s) => s.kind === 'req');
    return {
      rows: [...new Set(polls.map((s) => s.row))].sort(),
      answered: polls.filter((s) => s.end !== null).length,
      drawn: weebsockets.timeline.rowsUsed(),
    };
  });
}

test('under latency, setInterval stacks rows and setTimeout stays on one', { timeout: 90_000 }, async (t) => {
  await putLab(env.base, { latency_ms: 1500, jitter_ms: 0 });
  const interval = await openPage(env.browser, `${env.base}/interval?every=1000`);
  const timeout = await openPage(env.browser, `${env.base}/timeout?every=1000`);
  try {
    await Promise.all([waitConnected(interval), waitConnected(timeout)]);
    // Wait for enough answers that the shape is settled: four on each page.
    for (const page of [interval, timeout]) {
      await page.waitForFunction(
        () => weebsockets.timeline.spans.filter((s) => s.kind === 'req' && s.end !== null).length >= 4,
        null,
        { timeout: 30_000 },
      );
    }
    const a = await rows(interval);
    const b = await rows(timeout);
    t.diagnostic(`setInterval rows ${JSON.stringify(a)}; setTimeout rows ${JSON.stringify(b)}`);
    assert.ok(Math.max(...a.rows) >= 2, `setInterval used rows ${a.rows}`);
    assert.ok(a.drawn >= 2, 'and the canvas draws them');
    assert.deepEqual(b.rows, [1], 'setTimeout only ever uses the first row');
    assert.equal(b.drawn, 1);
    // The instruments agree with the picture.
    assert.ok(Number(await interval.textContent('[data-stat="inflight-max"]')) >= 2);
    assert.equal(await timeout.textContent('[data-stat="inflight-max"]'), '1');
  } finally {
    await putLab(env.base, { latency_ms: 0, jitter_ms: 0 });
    await interval.context().close();
    await timeout.context().close();
  }
});

test('a request that waited for one of the six connections shows the wait', { timeout: 90_000 }, async (t) => {
  // Seven held long polls in one browser context: the seventh has no
  // connection left and waits in the browser's queue until one answers.
  await putLab(env.base, { latency_ms: 0, jitter_ms: 0 });
  const context = await env.browser.newContext();
  const pages = [];
  try {
    for (let i = 0; i < 6; i += 1) {
      const page = await context.newPage();
      await page.goto(`${env.base}/longpoll`);
      pages.push(page);
    }
    await Promise.all(pages.map((p) => waitConnected(p)));
    // All six hold their request; a setTimeout page in the same context now
    // has to wait for a connection until a hold ends (5 s holds here).
    for (const page of pages) await page.selectOption('#hold', '5');
    const poller = await context.newPage();
    await poller.goto(`${env.base}/timeout?every=1000`);
    await poller.waitForFunction(() => weebsockets.timeline.spans.some((s) => s.kind === 'req' && s.waitMs >= 50), null, {
      timeout: 30_000,
    });
    const waits = await poller.evaluate(() => weebsockets.timeline.spans.map((s) => Math.round(s.waitMs)).filter((w) => w >= 50));
    t.diagnostic(`stalled requests waited ${waits.join(', ')} ms for a connection`);
    assert.ok(Number(await poller.textContent('[data-stat="stalled"]')) >= 1, 'the Stalled counter counts it');
  } finally {
    await context.close();
  }
});
