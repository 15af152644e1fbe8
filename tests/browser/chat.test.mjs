/// Two people on two different transports chat both ways: whatever one
/// sends (a POST, or a frame on the WebSocket) reaches the other through the
/// other's transport, stored once with the sender's `via`. Every mode is
/// paired with a WebSocket page, and setInterval with SSE.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  allMessages,
  openPage,
  sendFromPage,
  serverAndBrowser,
  unexpectedProblems,
  waitConnected,
  waitForText,
} from './helpers.mjs';

const PAIRS = [
  ['interval', 'websocket'],
  ['timeout', 'websocket'],
  ['longpoll', 'websocket'],
  ['sse', 'websocket'],
  ['websocket', 'websocket'],
  ['interval', 'sse'],
];

const env = serverAndBrowser();

for (const [a, b] of PAIRS) {
  test(`${a} ↔ ${b}`, { timeout: 60_000 }, async () => {
    // Separate browser contexts: two people, two sets of connections.
    const pageA = await openPage(env.browser, `${env.base}/${a}`, { name: `ann-${a}` });
    const pageB = await openPage(env.browser, `${env.base}/${b}`, { name: `ben-${b}` });
    try {
      await Promise.all([waitConnected(pageA), waitConnected(pageB)]);

      const there = `hello from ${a} to ${b} (${Date.now()})`;
      await sendFromPage(pageA, there);
      await waitForText(pageB, there);
      await waitForText(pageA, there); // and back to its sender, once

      const back = `and back from ${b} to ${a} (${Date.now()})`;
      await sendFromPage(pageB, back);
      await waitForText(pageA, back);
      await waitForText(pageB, back);

      // Stored once each, marked with the sender's transport.
      const log = await allMessages(env.base);
      const sent = log.filter((m) => m.text === there);
      const replied = log.filter((m) => m.text === back);
      assert.equal(sent.length, 1);
      assert.equal(replied.length, 1);
      assert.equal(sent[0].via, a);
      assert.equal(sent[0].author, `ann-${a}`);
      assert.equal(replied[0].via, b);

      // The sender's own message is highlighted and its round trip measured.
      await pageA.waitForSelector(`#messages li.own[data-id="${sent[0].id}"]`);
      await pageA.waitForFunction(() => document.querySelector('[data-stat="p50-p95"]').textContent !== '–');

      for (const page of [pageA, pageB]) {
        assert.deepEqual(unexpectedProblems(page), []);
        // Nothing shown twice.
        const ids = await page.$$eval('#messages > li', (li) => li.map((x) => x.dataset.id));
        assert.equal(new Set(ids).size, ids.length);
      }
    } finally {
      await pageA.context().close();
      await pageB.context().close();
    }
  });
}
