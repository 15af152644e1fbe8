/// The lab's outage: every transport endpoint answers 503 and open sockets
/// and streams are closed. Every mode must show that it is retrying, back
/// off, and — once the outage ends — recover on its own and show every
/// message exactly once, in order: those posted before the outage and those
/// posted after it. (Posts fail during the outage; nothing is queued.)

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  allMessages,
  openPage,
  post,
  putLab,
  serverAndBrowser,
  unexpectedProblems,
  waitConnected,
} from './helpers.mjs';

const MODES = ['interval', 'timeout', 'longpoll', 'websocket', 'sse'];

const env = serverAndBrowser();

/** Waits until a page's list is exactly these ids, in this order. */
function waitForIds(page, ids, timeout = 45_000) {
  return page.waitForFunction(
    (want) => JSON.stringify([...document.querySelectorAll('#messages > li')].map((li) => Number(li.dataset.id))) === JSON.stringify(want),
    ids,
    { timeout },
  );
}

test('every mode shows the outage, retries, and recovers with every message exactly once', { timeout: 180_000 }, async (t) => {
  const pages = {};
  for (const mode of MODES) pages[mode] = await openPage(env.browser, `${env.base}/${mode}`, { name: `student-${mode}` });
  try {
    await Promise.all(MODES.map((mode) => waitConnected(pages[mode])));

    for (let i = 1; i <= 3; i += 1) assert.equal((await post(env.base, 'teacher', `before ${i}`)).status, 201);
    let ids = (await allMessages(env.base)).map((m) => m.id);
    await Promise.all(MODES.map((mode) => waitForIds(pages[mode], ids)));

    // Pull the plug.
    const outageAt = Date.now();
    await putLab(env.base, { outage: true });
    await Promise.all(
      MODES.map((mode) => pages[mode].waitForSelector('#conn-state[data-tone="retry"]', { timeout: 30_000 })),
    );
    t.diagnostic(`every mode showed a retry state within ${Date.now() - outageAt} ms`);
    for (const mode of MODES) {
      const log = await pages[mode].textContent('#log');
      assert.ok(log.length > 0, `${mode}: the log says what happened`);
    }
    assert.ok(
      (await pages.interval.locator('#log .log-error').count()) > 0,
      'the interval page logged the failed requests',
    );
    assert.match(await pages.websocket.textContent('#log'), /1013/, 'the socket was closed with 1013 (try again later)');
    assert.match(await pages.sse.textContent('#ready-state'), /CONNECTING|CLOSED/, 'SSE shows its readyState');

    // Sending fails during the outage, and the page says so.
    const refused = await post(env.base, 'teacher', 'during');
    assert.equal(refused.status, 503);
    assert.equal(refused.body.code, 'outage');
    await pages.timeout.fill('#text', 'typed during the outage');
    await pages.timeout.press('#text', 'Enter');
    await pages.timeout.waitForSelector('#send-status[data-tone="error"]');
    assert.match(await pages.timeout.textContent('#send-status'), /outage/);
    assert.equal(await pages.timeout.inputValue('#text'), 'typed during the outage', 'the text is kept to send again');

    // Back on.
    await putLab(env.base, { outage: false });
    const backAt = Date.now();
    for (let i = 1; i <= 3; i += 1) assert.equal((await post(env.base, 'teacher', `after ${i}`)).status, 201);
    ids = (await allMessages(env.base)).map((m) => m.id);
    assert.equal(ids.length, 6);
    await Promise.all(MODES.map((mode) => waitForIds(pages[mode], ids)));
    await Promise.all(MODES.map((mode) => waitConnected(pages[mode])));
    t.diagnostic(`every mode showed all 6 messages, once each, ${Date.now() - backAt} ms after the outage ended`);

    // The unsent text can now be sent.
    await pages.timeout.press('#text', 'Enter');
    await pages.timeout.waitForFunction(() =>
      [...document.querySelectorAll('.msg-text')].some((e) => e.textContent === 'typed during the outage'),
    );

    // SSE: the browser reconnected by itself at least once, or we did.
    assert.match(await pages.sse.textContent('#log'), /reconnect|EventSource/);
    for (const mode of MODES) {
      assert.deepEqual(unexpectedProblems(pages[mode], { allowNetworkErrors: true }), [], mode);
    }
  } finally {
    await putLab(env.base, { outage: false });
    for (const page of Object.values(pages)) await page.context().close();
  }
});
