/// The lesson's three modes, each shown doing what it claims. With the
/// network slowed down by the lab, Ada and Bob type into one paragraph at
/// the same moment from two pages on two transports:
///   - "Save the textarea": the last whole-text save wins — the server's
///     text lacks one of the two words, an editor counts the edit its save
///     erased, and yet both badges say "in sync" (in sync is not enough);
///   - "Send edits, don't transform": an editor that applied the other's
///     edit where it was made, with its own still on the way, drifts from
///     the server: its badge turns red, and it counts the misplaced edit.
/// Then the scripted demo on /doc/compare plays "EASY AS 123" in each
/// mode: OT gives "EASY LWAY 123" in all five editors, in sync; no
/// transform leaves Bob's editor diverged; saving loses Ada's delete.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { putLab, serverAndBrowser, unexpectedProblems } from './helpers.mjs';
import { counter, openEditor, placeCaret, serverDoc, setDoc, TRANSPORTS, waitBadge, waitEditing, waitText } from './doc_helpers.mjs';

const env = serverAndBrowser();

const PARAGRAPH = 'The quick fox jumps.';

/** Ada and Bob type at once, on two transports, in `mode`. */
async function typeAtOnce(mode, adaVia, bobVia) {
  await setDoc(env.base, PARAGRAPH);
  const ada = await openEditor(env.browser, `${env.base}/doc/${adaVia}?mode=${mode}`, { name: 'ada' });
  const bob = await openEditor(env.browser, `${env.base}/doc/${bobVia}?mode=${mode}`, { name: 'bob' });
  await waitText(ada, PARAGRAPH);
  await waitText(bob, PARAGRAPH);
  await putLab(env.base, { latency_ms: 300, jitter_ms: 0 });
  try {
    await placeCaret(ada, 'The quick'.length);
    await placeCaret(bob, 'The'.length);
    await Promise.all([ada.keyboard.type(' brown', { delay: 60 }), bob.keyboard.type(' big', { delay: 60 })]);
  } finally {
    await putLab(env.base, { latency_ms: 0 });
  }
  return { ada, bob };
}

test('save the textarea: two people typing at once lose a word, and the badges still say in sync', { timeout: 90_000 }, async (t) => {
  const { ada, bob } = await typeAtOnce('save', 'interval', 'sse');
  try {
    // Both end up showing the server's text (the polls bring it)…
    const settled = async () => {
      const server = await serverDoc(env.base);
      for (const page of [ada, bob]) await page.waitForSelector(`[data-role="sync"][data-sync="ok"][data-rev="${server.rev}"]`, { timeout: 20_000 });
      return server;
    };
    let server = await settled();
    if (server.rev !== (await serverDoc(env.base)).rev) server = await settled();
    // …which has lost one of the two words: the last save replaced the
    // whole text with a version that did not have the other's typing.
    const both = server.text.includes(' brown') && server.text.includes(' big');
    assert.ok(!both, `the last save won and a word is gone: "${server.text}"`);
    const lost = (await counter(ada, 'doc-lost')) + (await counter(bob, 'doc-lost'));
    t.diagnostic(`server: "${server.text}"; edits counted lost: ${lost}`);
    assert.ok(lost >= 1, 'an editor counted the edit its save erased');
    assert.deepEqual(unexpectedProblems(ada), []);
    assert.deepEqual(unexpectedProblems(bob), []);
  } finally {
    await ada.context().close();
    await bob.context().close();
  }
});

test("send edits, don't transform: an editor drifts from the server and its badge turns red", { timeout: 90_000 }, async (t) => {
  const { ada, bob } = await typeAtOnce('no-transform', 'websocket', 'longpoll');
  try {
    // Each applied the other's letters at the positions they were typed,
    // in a text where its own typing had moved things along. Which of the
    // two drifts (or both) depends on whose edits crossed whose.
    await Promise.any([waitBadge(ada, 'diverged'), waitBadge(bob, 'diverged')]);
    const server = await serverDoc(env.base);
    const texts = { server: server.text, ada: await ada.inputValue('#main-text'), bob: await bob.inputValue('#main-text') };
    t.diagnostic(JSON.stringify(texts));
    assert.ok(texts.ada !== texts.server || texts.bob !== texts.server, 'an editor is not showing the server’s text');
    const misplaced = (await counter(ada, 'doc-fixed')) + (await counter(bob, 'doc-fixed'));
    assert.ok(misplaced >= 1, 'the misplaced edit was counted');
  } finally {
    await ada.context().close();
    await bob.context().close();
  }
});

test('the EASY AS 123 demo on /doc/compare, in each mode', { timeout: 180_000 }, async (t) => {
  const expected = {
    ot: (r) => r.ada === 'EASY LWAY 123' && r.bob === 'EASY LWAY 123' && r.server === 'EASY LWAY 123',
    'no-transform': (r) => r.ada !== r.bob || r.bob !== r.server,
    save: (r) => r.server === 'EASY ALWAYS 123' || r.server === 'EASY  123',
  };
  for (const mode of ['ot', 'no-transform', 'save']) {
    await setDoc(env.base, 'Our notes:');
    const page = await openEditor(env.browser, `${env.base}/doc/compare?mode=${mode}`, {
      name: 'teacher',
      viewport: { width: 1440, height: 900 },
      editors: '[data-editor]',
    });
    try {
      await page.click('#demo');
      await page.waitForFunction(() => /the server’s: “/.test(document.querySelector('#demo-status').textContent), null, { timeout: 60_000 });
      const status = await page.textContent('#demo-status');
      const [ada, bob, server] = [...status.matchAll(/“([^”]*)”/g)].map((m) => m[1]);
      const result = { ada, bob, server };
      t.diagnostic(`${mode}: ${JSON.stringify(result)}`);
      assert.ok(expected[mode](result), `${mode}: ${status}`);
      const states = await page.$$eval('[data-editor] [data-role="sync"]', (els) => els.map((e) => e.dataset.sync));
      if (mode === 'ot') {
        for (const via of TRANSPORTS) await waitText(page, (await serverDoc(env.base)).text, `[data-editor="${via}"]`);
        await page.waitForFunction(() => [...document.querySelectorAll('[data-role="sync"]')].every((b) => b.dataset.sync === 'ok'), null, { timeout: 20_000 });
      }
      if (mode === 'no-transform') await waitBadge(page, 'diverged', '[data-editor="websocket"]');
      if (mode === 'save') assert.ok((await counter(page, 'doc-lost', '[data-editor="websocket"]')) >= 1, "Bob's save erased Ada's delete");
      t.diagnostic(`${mode}: badges ${states.join(' ')}`);
      assert.deepEqual(unexpectedProblems(page), []);
    } finally {
      await page.context().close();
    }
  }
});

test('switching the mode restarts every editor in it, and the URL remembers it', { timeout: 60_000 }, async () => {
  const page = await openEditor(env.browser, `${env.base}/doc/compare`, { editors: '[data-editor]', viewport: { width: 1440, height: 900 } });
  try {
    await page.check('input[name="doc-mode"][value="save"]');
    await page.waitForFunction(() => [...document.querySelectorAll('[data-editor]')].every((e) => e.dataset.mode === 'save'));
    await waitEditing(page);
    assert.match(page.url(), /mode=save/);
    // The save mode counts edits lost, and has nothing to repair.
    assert.equal(await page.isHidden('[data-editor="sse"] [data-role="fixed-box"]'), true);
    await page.check('input[name="doc-mode"][value="no-transform"]');
    await page.waitForFunction(() => [...document.querySelectorAll('[data-editor]')].every((e) => e.dataset.mode === 'no-transform'));
    assert.equal(await page.textContent('[data-editor="sse"] [data-role="fixed-label"]'), 'Edits misplaced');
  } finally {
    await page.context().close();
  }
});
