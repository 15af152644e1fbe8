/// The projector view: five transports in one tab, one room. A message sent
/// once lands in all five columns, and each column measures its own round
/// trip.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allMessages, openPage, serverAndBrowser, unexpectedProblems } from './helpers.mjs';

const MODES = ['interval', 'timeout', 'longpoll', 'websocket', 'sse'];

const env = serverAndBrowser();

test('one message sent on /compare lands in all five columns', { timeout: 60_000 }, async (t) => {
  const page = await openPage(env.browser, `${env.base}/compare`, { name: 'projector', viewport: { width: 1440, height: 900 } });
  try {
    await page.waitForFunction(() => document.querySelectorAll('[data-role="state"][data-tone="ok"]').length === 5, null, {
      timeout: 20_000,
    });
    const text = `side by side ${Date.now()}`;
    await page.getByLabel('Message', { exact: true }).fill(text);
    await page.getByRole('button', { name: 'Send', exact: true }).click();

    // The click only starts the POST: wait until the room has the message.
    let stored;
    for (const deadline = Date.now() + 15_000; !stored && Date.now() < deadline; ) {
      [stored] = (await allMessages(env.base)).filter((m) => m.text === text);
      if (!stored) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(stored, 'the message was stored');
    for (const mode of MODES) {
      const column = page.locator(`[data-column="${mode}"]`);
      await column.locator(`li[data-id="${stored.id}"] .msg-text`).filter({ hasText: text }).waitFor({ timeout: 15_000 });
      assert.equal(await column.locator(`li[data-id="${stored.id}"]`).count(), 1, `${mode}: exactly once`);
      // Each column timed the trip from the click to its own arrival.
      await page.waitForFunction(
        (m) => /\d/.test(document.querySelector(`[data-column="${m}"] [data-role="latency"]`).textContent),
        mode,
      );
    }
    const latencies = {};
    for (const mode of MODES) {
      latencies[mode] = await page.textContent(`[data-column="${mode}"] [data-role="latency"]`);
    }
    t.diagnostic(`round trips: ${JSON.stringify(latencies)}`);
    // The polling columns counted requests; the push columns one connection each.
    assert.ok(Number(await page.textContent('[data-column="interval"] [data-stat="requests"]')) >= 1);
    assert.equal(await page.textContent('[data-column="websocket"] [data-stat="requests"]'), '1');
    assert.equal(await page.textContent('[data-column="sse"] [data-stat="requests"]'), '1');
    assert.deepEqual(unexpectedProblems(page), []);
  } finally {
    await page.context().close();
  }
});
