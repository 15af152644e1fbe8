/// The projector view of the document: five editors in one tab, one per
/// transport. One keystroke typed in any of them shows up in all five —
/// each in its transport's own time (the diagnostics say how long) — and
/// afterwards all five are at the same revision, in sync with the server.
/// Each of the five takes its turn as the one typing.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverAndBrowser, unexpectedProblems } from './helpers.mjs';
import { openEditor, serverDoc, setDoc, textarea, TRANSPORTS, waitText } from './doc_helpers.mjs';

const env = serverAndBrowser();

test('one keystroke in any editor on /doc/compare shows in all five', { timeout: 120_000 }, async (t) => {
  await setDoc(env.base, 'keys: ');
  const page = await openEditor(env.browser, `${env.base}/doc/compare`, {
    name: 'projector',
    viewport: { width: 1440, height: 900 },
    editors: '[data-editor]',
  });
  try {
    for (const via of TRANSPORTS) await waitText(page, 'keys: ', `[data-editor="${via}"]`);
    let expected = 'keys: ';
    for (const [i, typist] of TRANSPORTS.entries()) {
      const key = 'abcde'[i];
      // Note, in the page, when each editor first shows the key.
      await page.evaluate((n) => {
        let started = null; // the key going down
        document.addEventListener('keydown', () => (started = performance.now()), { once: true, capture: true });
        window.__arrived = {};
        const watch = () => {
          for (const ta of document.querySelectorAll('[data-editor] textarea')) {
            const via = ta.closest('[data-editor]').dataset.editor;
            if (started !== null && window.__arrived[via] === undefined && ta.value.length === n) window.__arrived[via] = Math.round(performance.now() - started);
          }
          if (Object.keys(window.__arrived).length < 5) requestAnimationFrame(watch);
        };
        requestAnimationFrame(watch);
      }, expected.length + 1);
      await page.focus(textarea(`[data-editor="${typist}"]`));
      await page.evaluate((sel) => {
        const ta = document.querySelector(sel);
        ta.setSelectionRange(ta.value.length, ta.value.length);
      }, textarea(`[data-editor="${typist}"]`));
      await page.keyboard.press(key);
      expected += key;
      for (const via of TRANSPORTS) await waitText(page, expected, `[data-editor="${via}"]`);
      const arrived = await page.evaluate(() => window.__arrived);
      t.diagnostic(`typed in ${typist}: arrived after ${JSON.stringify(arrived)} ms`);
    }
    const server = await serverDoc(env.base);
    assert.equal(server.text, expected);
    await page.waitForFunction(
      (rev) => [...document.querySelectorAll('[data-editor] [data-role="sync"]')].every((b) => b.dataset.sync === 'ok' && b.dataset.rev === String(rev)),
      server.rev,
      { timeout: 20_000 },
    );
    const revs = await page.$$eval('[data-editor] [data-role="rev"]', (els) => els.map((e) => Number(e.dataset.value)));
    assert.deepEqual(revs, TRANSPORTS.map(() => server.rev), 'all five at the same revision');
    assert.deepEqual(unexpectedProblems(page), []);
  } finally {
    await page.context().close();
  }
});
