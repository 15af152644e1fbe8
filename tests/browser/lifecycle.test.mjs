/// A page nobody looks at stops reading. When its tab is hidden, a polling
/// page sends no more requests and a WebSocket page closes its socket
/// (1000, normal); messages posted meanwhile are not lost: shown again, the
/// page resumes from its cursor and shows every message exactly once, in
/// order. (Headless Chromium cannot hide a tab, so the test plays that part
/// of the browser: see setHidden in helpers.mjs.)

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allMessages, openPage, post, serverAndBrowser, setHidden, shownIds, waitConnected } from './helpers.mjs';

const env = serverAndBrowser();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the page's list is exactly these ids, in this order. */
function waitForIds(page, ids) {
  return page.waitForFunction(
    (want) => JSON.stringify([...document.querySelectorAll('#messages > li')].map((li) => Number(li.dataset.id))) === JSON.stringify(want),
    ids,
    { timeout: 20_000 },
  );
}

for (const mode of ['interval', 'timeout', 'longpoll', 'websocket', 'sse']) {
  test(`${mode}: hidden, it stops reading; shown, it resumes from its cursor`, { timeout: 60_000 }, async () => {
    const page = await openPage(env.browser, `${env.base}/${mode}?every=200`);
    const requests = [];
    const sockets = [];
    page.on('request', (r) => {
      const url = new URL(r.url());
      if (url.pathname.startsWith('/api/')) requests.push({ at: Date.now(), url });
    });
    page.on('websocket', (ws) => sockets.push({ url: new URL(ws.url()), ws }));
    try {
      await waitConnected(page);
      await post(env.base, 'ada', `${mode}: before hiding`);
      let ids = (await allMessages(env.base)).map((m) => m.id);
      await page.waitForFunction((id) => !!document.querySelector(`#messages li[data-id="${id}"]`), ids.at(-1));
      const cursor = await page.evaluate(() => weebsockets.transport.since);

      await setHidden(page, true);
      const hiddenAt = Date.now();
      await page.waitForSelector('#conn-state[data-tone="idle"]');
      assert.match(await page.textContent('#conn-state'), /paused/);
      assert.equal(await page.evaluate(() => weebsockets.transport), null, 'no transport while hidden');
      if (mode === 'websocket') {
        await page.waitForFunction(() => document.querySelector('#stats [data-stat="last-close"]').textContent === '1000');
      }
      // Messages arrive while nobody looks.
      for (let i = 1; i <= 3; i += 1) await post(env.base, 'ada', `${mode}: while hidden ${i}`);
      // A measured window of silence: nothing asked while hidden (a request
      // already on its way when the tab was hidden is cancelled, not sent).
      await sleep(1200);
      const asked = requests.filter((r) => r.at > hiddenAt + 50);
      assert.deepEqual(asked.map((r) => r.url.pathname + r.url.search), [], 'no requests while hidden');
      assert.ok(!(await page.textContent('#messages')).includes(`${mode}: while hidden`), 'nothing read while hidden');

      const before = requests.length;
      const socketsBefore = sockets.length;
      await setHidden(page, false);
      ids = (await allMessages(env.base)).map((m) => m.id);
      await waitForIds(page, ids);
      await waitConnected(page);
      // It resumed from the cursor it had, not from the start.
      if (mode === 'websocket') {
        assert.equal(sockets.length, socketsBefore + 1, 'one new socket');
        assert.equal(sockets.at(-1).url.searchParams.get('since'), String(cursor));
      } else if (mode === 'sse') {
        const stream = requests.slice(before).find((r) => r.url.pathname === '/api/events');
        assert.equal(stream.url.searchParams.get('since'), String(cursor));
      } else {
        const first = requests.slice(before)[0];
        assert.equal(first.url.searchParams.get('since'), String(cursor), 'the first request after showing');
      }
      const shown = await shownIds(page);
      assert.equal(new Set(shown).size, shown.length, 'nothing shown twice');
    } finally {
      await page.context().close();
    }
  });
}

test('/compare pauses all five columns and resumes each from its cursor', { timeout: 60_000 }, async () => {
  const page = await openPage(env.browser, `${env.base}/compare`, { viewport: { width: 1440, height: 900 } });
  try {
    await page.waitForFunction(() => document.querySelectorAll('[data-role="state"][data-tone="ok"]').length === 5);
    await setHidden(page, true);
    await page.waitForFunction(() => document.querySelectorAll('[data-role="state"][data-tone="idle"]').length === 5);
    const text = `posted while /compare was hidden ${Date.now()}`;
    await post(env.base, 'ada', text);
    await setHidden(page, false);
    for (const mode of ['interval', 'timeout', 'longpoll', 'websocket', 'sse']) {
      const column = page.locator(`[data-column="${mode}"]`);
      await column.locator('.msg-text', { hasText: text }).waitFor({ timeout: 15_000 });
      assert.equal(await column.locator('.msg-text', { hasText: text }).count(), 1, `${mode}: exactly once`);
    }
  } finally {
    await page.context().close();
  }
});
