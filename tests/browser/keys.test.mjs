/// Every message a page sends carries an idempotency key (PROTOCOL.md,
/// "key"): a fresh one for each new message, and the same one when the
/// same message is sent again after a failure — so that a server which
/// already stored it the first time does not store it twice. Over HTTP the
/// key is in the POST body; on the WebSocket page, in the send frame.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, putLab, serverAndBrowser, waitConnected, waitForText } from './helpers.mjs';

const env = serverAndBrowser();

const KEY = /^[\x21-\x7e]{1,64}$/;

test('a resend after a failure reuses the key; a new message gets a new one', { timeout: 60_000 }, async () => {
  const page = await openPage(env.browser, `${env.base}/timeout`, { name: 'keys' });
  const posts = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/messages') posts.push(r.postDataJSON());
  });
  try {
    await waitConnected(page);
    await putLab(env.base, { outage: true });
    await page.fill('#text', 'sent twice, stored once');
    await page.press('#text', 'Enter');
    await page.waitForSelector('#send-status[data-tone="error"]');
    assert.equal(await page.inputValue('#text'), 'sent twice, stored once', 'the text is given back');
    await putLab(env.base, { outage: false });
    await page.press('#text', 'Enter'); // the same message, again
    await waitForText(page, 'sent twice, stored once');

    await page.fill('#text', 'a new message');
    await page.press('#text', 'Enter');
    await waitForText(page, 'a new message');

    assert.equal(posts.length, 3);
    for (const body of posts) assert.match(body.key, KEY);
    assert.equal(posts[1].key, posts[0].key, 'the resend carries the first key');
    assert.notEqual(posts[2].key, posts[0].key, 'a new message, a new key');

    // Changing the text after a failure makes it a new message.
    await putLab(env.base, { outage: true });
    await page.fill('#text', 'first draft');
    await page.press('#text', 'Enter');
    await page.waitForSelector('#send-status[data-tone="error"]');
    await putLab(env.base, { outage: false });
    await page.fill('#text', 'second draft');
    await page.press('#text', 'Enter');
    await waitForText(page, 'second draft');
    assert.equal(posts.length, 5);
    assert.notEqual(posts[4].key, posts[3].key);
  } finally {
    await putLab(env.base, { outage: false });
    await page.context().close();
  }
});

test('the WebSocket page puts the key in its send frame', { timeout: 60_000 }, async () => {
  const page = await openPage(env.browser, `${env.base}/websocket`, { name: 'keys' });
  const sent = [];
  page.on('websocket', (ws) => ws.on('framesent', (f) => sent.push(JSON.parse(f.payload))));
  try {
    await waitConnected(page);
    for (const text of ['one frame', 'another frame']) {
      await page.fill('#text', text);
      await page.press('#text', 'Enter');
      await waitForText(page, text);
    }
    const sends = sent.filter((f) => f.type === 'send');
    assert.equal(sends.length, 2);
    for (const frame of sends) assert.match(frame.key, KEY);
    assert.notEqual(sends[0].key, sends[1].key);
  } finally {
    await page.context().close();
  }
});
