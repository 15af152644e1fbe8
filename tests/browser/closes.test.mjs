/// Closing, shown as it is. When the lab's outage closes an open WebSocket,
/// the page shows the close code 1013 and what it means ("try again
/// later"), and that the close was clean. When the outage is already on as
/// the page connects, the upgrade is refused with a 503 that the browser
/// never shows the page (the close event says 1006): the page says
/// "handshake refused", not "connection lost". The SSE page says that the
/// browser gave up on the refused stream and the page reconnects itself.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, putLab, serverAndBrowser, waitConnected } from './helpers.mjs';

const env = serverAndBrowser();

/** Waits until the page's "last close" reads `headline`. */
function waitForClose(page, headline) {
  return page.waitForFunction(
    (h) => document.querySelector('#stats [data-stat="last-close"]').textContent === h,
    headline,
    { timeout: 30_000 },
  );
}

test('the outage closes a WebSocket with 1013, then refuses its handshakes', { timeout: 90_000 }, async () => {
  const page = await openPage(env.browser, `${env.base}/websocket`);
  try {
    await waitConnected(page);
    assert.equal(await page.textContent('#stats [data-stat="last-close"]'), '–');
    await putLab(env.base, { outage: true });

    await waitForClose(page, '1013');
    assert.match(await page.textContent('#stats [data-stat="last-close-meaning"]'), /try again later/);
    assert.equal(await page.textContent('#stats [data-stat="last-close-clean"]'), 'wasClean: true');
    // The CLOSE tile of the four events says it too.
    assert.match(await page.textContent('#ws-events [data-event="close"]'), /1013/);

    // The page reconnects while the outage is still on: refused at the handshake.
    await waitForClose(page, 'handshake refused');
    assert.match(await page.textContent('#stats [data-stat="last-close-meaning"]'), /never shows you the HTTP status/);
    assert.equal(await page.textContent('#stats [data-stat="last-close-clean"]'), 'wasClean: false');
    assert.match(await page.textContent('#log'), /handshake refused/);
    assert.doesNotMatch(await page.textContent('#log'), /connection lost/);
  } finally {
    await putLab(env.base, { outage: false });
    await page.context().close();
  }
});

test('a WebSocket page opened during the outage says the handshake was refused', { timeout: 90_000 }, async () => {
  await putLab(env.base, { outage: true });
  const context = await env.browser.newContext();
  try {
    // The outage refuses the page's first look at the room too; answer that
    // one GET here, so that the page goes on to open its socket while the
    // outage is on — its very first connection is refused.
    await context.route('**/api/messages?since=0&limit=1*', (route) => route.fulfill({ json: { messages: [], last_id: 0 } }));
    const page = await context.newPage();
    await page.goto(`${env.base}/websocket`);
    await waitForClose(page, 'handshake refused');
    assert.equal(await page.textContent('#ws-events [data-event="open"] [data-count]'), '0', 'it never opened');
    assert.match(await page.textContent('#log'), /handshake refused/);
    assert.equal(await page.getAttribute('#conn-state', 'data-tone'), 'retry');
    // And once the outage ends, it connects on its own.
    await putLab(env.base, { outage: false });
    await waitConnected(page);
  } finally {
    await putLab(env.base, { outage: false });
    await context.close();
  }
});

test('the SSE page says the browser gave up and the page reconnects', { timeout: 90_000 }, async () => {
  const page = await openPage(env.browser, `${env.base}/sse`);
  try {
    await waitConnected(page);
    await putLab(env.base, { outage: true });
    // The server ends the stream; EventSource reconnects by itself, is
    // refused with a 503, and gives up (CLOSED).
    await waitForClose(page, 'refused — browser gave up');
    assert.match(await page.textContent('#stats [data-stat="last-close-meaning"]'), /our code opens a new EventSource/);
    assert.match(await page.textContent('#log'), /EventSource reconnects by itself/);
    await putLab(env.base, { outage: false });
    await waitConnected(page);
    assert.ok(Number(await page.textContent('#stats [data-stat="reconnects"]')) >= 2);
  } finally {
    await putLab(env.base, { outage: false });
    await page.context().close();
  }
});
