/// The document's pages are readable by everyone in the room: axe-core
/// runs in each of them — with a text in the document, other people's
/// carets and selection drawn over it, the list of who is editing filled
/// in, the demo played (badges red or green, counters moving) and the
/// history showing a revision — in the light theme, the dark theme and
/// Large type, and finds no serious or critical violation (colour
/// contrast included).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LOOKS, seriousViolationsInLooks } from './axe.mjs';
import { openPage, serverAndBrowser } from './helpers.mjs';
import { setDoc, waitEditing } from './doc_helpers.mjs';

const PAGES = ['/doc/interval', '/doc/websocket?mode=no-transform', '/doc/sse?mode=save', '/doc/compare', '/doc/compare?mode=no-transform', '/doc/history'];

const env = serverAndBrowser();

test('axe finds no serious or critical violation on the document pages', { timeout: 400_000 }, async (t) => {
  await setDoc(env.base, 'Notes for today.\nWho remembers what setTimeout does?');
  // Someone else is editing, with a selection: carets, flags and tints to check.
  const other = await openPage(env.browser, `${env.base}/doc/longpoll`, { name: 'grace' });
  await waitEditing(other, '[data-editor="main"]');
  const select = () =>
    other.evaluate(() => {
      const ta = document.querySelector('#main-text');
      ta.focus();
      ta.setSelectionRange(6 + Math.floor(Math.random() * 3), 12);
      ta.dispatchEvent(new Event('select'));
    });
  const failures = await seriousViolationsInLooks(t, {
    browser: env.browser,
    base: env.base,
    paths: PAGES,
    // Three looks, as before: light with Large type is covered for the
    // shared styles by the chat pages' check.
    looks: LOOKS.filter((look) => look.name !== 'light, Large type'),
    viewport: { width: 1440, height: 900 },
    ready: async (page, path) => {
      if (path === '/doc/history') {
        await page.waitForFunction(() => window.weebsockets?.shown >= 1);
        return;
      }
      await waitEditing(page);
      await select();
      await page.waitForSelector('.remote-selection', { timeout: 15_000 });
      if (path.includes('no-transform') || path === '/doc/compare') {
        // Play the conflict: red badges, counters, the result line.
        await page.click('#demo');
        await page.waitForFunction(() => /the server’s: “/.test(document.querySelector('#demo-status').textContent), null, { timeout: 60_000 });
      }
    },
  });
  await other.context().close();
  assert.deepEqual(failures, [], failures.join('\n'));
});
