/// Every page is readable by everyone in the room, the back row included:
/// axe-core (the accessibility engine behind Lighthouse and DevTools) runs
/// in the real page, in the light theme, the dark theme and Large type,
/// and finds no serious or critical violation — colour contrast included
/// (WCAG AA: 4.5:1 for text). And a screen reader hears each new chat
/// message once: on a chat page only the room's list announces it (the
/// connection log is not a live region), and on /compare, with five lists,
/// one status line does.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seriousViolationsInLooks } from './axe.mjs';
import { openPage, post, serverAndBrowser, waitConnected, waitForText } from './helpers.mjs';

const PAGES = ['/', '/interval', '/timeout', '/longpoll', '/websocket', '/sse', '/compare', '/dashboard', '/websocket/echo', '/no-such-page'];

const env = serverAndBrowser();

test('axe finds no serious or critical violation on any page, light, dark and Large type', { timeout: 300_000 }, async (t) => {
  // Messages in the room, with a duplicate-free list and own messages, so
  // the message styles are checked too.
  for (let i = 1; i <= 3; i += 1) await post(env.base, 'ada', `a message to read, number ${i}`, i === 2 ? 'websocket' : 'interval');
  const failures = await seriousViolationsInLooks(t, {
    browser: env.browser,
    base: env.base,
    paths: PAGES,
    viewport: { width: 1280, height: 900 },
    ready: async (page, path) => {
      if (['/interval', '/timeout', '/longpoll', '/websocket', '/sse'].includes(path)) {
        await waitConnected(page);
        await waitForText(page, 'a message to read, number 3');
      }
      if (path === '/compare') {
        await page.waitForFunction(() => document.querySelectorAll('[data-role="state"][data-tone="ok"]').length === 5);
      }
      if (path === '/dashboard') await page.waitForSelector('#conn-state[data-tone="ok"]');
    },
  });
  assert.deepEqual(failures, [], failures.join('\n'));
});

test('a new message is announced once, on a chat page and on /compare', { timeout: 60_000 }, async () => {
  for (const path of ['/websocket', '/sse', '/interval', '/compare']) {
    const page = await openPage(env.browser, env.base + path);
    if (path === '/compare') {
      await page.waitForFunction(() => document.querySelectorAll('[data-role="state"][data-tone="ok"]').length === 5);
    } else {
      await waitConnected(page);
    }
    // Record every live region whose content changes from now on: what a
    // screen reader would read out. (role=log and role=status are polite
    // live regions unless they say aria-live="off".)
    await page.evaluate(() => {
      window.__spoken = new Set();
      const region = (el) => {
        for (let n = el; n && n !== document.body; n = n.parentElement) {
          const aria = n.getAttribute('aria-live');
          if (aria) return aria === 'off' ? null : n;
          if (['log', 'status', 'alert'].includes(n.getAttribute('role'))) return n;
        }
        return null;
      };
      new MutationObserver((records) => {
        for (const r of records) {
          const target = r.target.nodeType === Node.ELEMENT_NODE ? r.target : r.target.parentElement;
          const live = region(target);
          if (live) window.__spoken.add(live.id || live.getAttribute('aria-label') || live.className);
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const text = `announced once ${Date.now()}`;
    await post(env.base, 'ada', text);
    if (path === '/compare') {
      await page.waitForFunction(
        (t) => [...document.querySelectorAll('[data-role="messages"]')].every((l) => l.textContent.includes(t)),
        text,
      );
    } else {
      await waitForText(page, text);
    }
    // Whatever the page does in the same turn (a log line) has happened.
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 50))));
    const spoken = await page.evaluate(() => [...window.__spoken]);
    assert.equal(spoken.length, 1, `${path}: the message reached ${spoken.length} live regions: ${spoken.join(', ')}`);
    await page.context().close();
  }
});
