/// The document's pages are readable by everyone in the room: axe-core
/// runs in each of them — with a text in the document, other people's
/// carets and selection drawn over it, the list of who is editing filled
/// in, the demo played (badges red or green, counters moving) and the
/// history showing a revision — in the light theme, the dark theme and
/// Large type, and finds no serious or critical violation (colour
/// contrast included).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { openPage, serverAndBrowser } from './helpers.mjs';
import { setDoc, waitEditing } from './doc_helpers.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const PAGES = ['/doc/interval', '/doc/websocket?mode=no-transform', '/doc/sse?mode=save', '/doc/compare', '/doc/compare?mode=no-transform', '/doc/history'];
const LOOKS = [
  { name: 'light', theme: 'light', large: false },
  { name: 'dark', theme: 'dark', large: false },
  { name: 'dark, Large type', theme: 'dark', large: true },
];

const env = serverAndBrowser();

async function axe(page) {
  await page.evaluate(AXE);
  return page.evaluate(async () => {
    const finite = document.getAnimations().filter((a) => a.effect?.getComputedTiming().iterations !== Infinity);
    await Promise.all(finite.map((a) => a.finished.catch(() => {})));
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')} — ${n.failureSummary?.split('\n').slice(1, 2).join('')}`),
    }));
  });
}

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
  const failures = [];
  for (const look of LOOKS) {
    for (const path of PAGES) {
      const context = await env.browser.newContext({ viewport: { width: 1440, height: 900 } });
      await context.addInitScript(({ theme, large }) => {
        localStorage.setItem('weebsockets.theme', theme);
        localStorage.setItem('weebsockets.large', large ? '1' : '0');
        localStorage.setItem('weebsockets.name', 'axe');
      }, look);
      const page = await context.newPage();
      await page.goto(env.base + path);
      if (path === '/doc/history') {
        await page.waitForFunction(() => window.weebsockets?.shown >= 1);
      } else {
        await waitEditing(page);
        await select();
        await page.waitForSelector('.remote-selection', { timeout: 15_000 });
        if (path.includes('no-transform') || path === '/doc/compare') {
          // Play the conflict: red badges, counters, the result line.
          await page.click('#demo');
          await page.waitForFunction(() => /the server’s: “/.test(document.querySelector('#demo-status').textContent), null, { timeout: 60_000 });
        }
      }
      const found = (await axe(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical');
      for (const v of found) failures.push(`${path} (${look.name}): ${v.id} [${v.impact}] ${v.help}\n    ${v.nodes.join('\n    ')}`);
      await context.close();
    }
    t.diagnostic(`${look.name}: ${PAGES.length} pages checked`);
  }
  await other.context().close();
  assert.deepEqual(failures, [], failures.join('\n'));
});
