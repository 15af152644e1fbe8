/// Two people edit the same paragraph at the same moment, each from a page
/// on a different transport, with the network slowed down by the lab so
/// that their edits really cross on the way: Ada types " brown🦊" after
/// "quick" while Bob types " big" after "The". With operational
/// transformation (the default) both end with the server's text, in which
/// each one's words are whole and in their place — the emoji (two UTF-16
/// units, one character) included; Ada's caret is still right after what
/// she typed, although Bob's edit moved everything before it; and both
/// badges say "in sync" at the server's newest revision. And an editor whose
/// tab is hidden stops reading, and catches up when it is shown again.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { putLab, serverAndBrowser, setHidden, unexpectedProblems } from './helpers.mjs';
import { counter, editorText, openEditor, placeCaret, serverDoc, setDoc, textarea, waitText } from './doc_helpers.mjs';

const env = serverAndBrowser();

const PARAGRAPH = 'The quick fox jumps.';
const EXPECTED = 'The big quick brown🦊 fox jumps.';

for (const [adaVia, bobVia] of [
  ['interval', 'websocket'],
  ['longpoll', 'sse'],
  ['timeout', 'websocket'],
]) {
  test(`${adaVia} and ${bobVia}: typing into one paragraph at once, both edits survive`, { timeout: 90_000 }, async (t) => {
    await setDoc(env.base, PARAGRAPH);
    const ada = await openEditor(env.browser, `${env.base}/doc/${adaVia}`, { name: 'ada' });
    const bob = await openEditor(env.browser, `${env.base}/doc/${bobVia}`, { name: 'bob' });
    try {
      await waitText(ada, PARAGRAPH);
      await waitText(bob, PARAGRAPH);
      await putLab(env.base, { latency_ms: 300, jitter_ms: 0 });
      await placeCaret(ada, 'The quick'.length);
      await placeCaret(bob, 'The'.length);
      // At the same time, a key every 60 ms: each edit leaves before the
      // other's (delayed 300 ms by the lab) arrives.
      await Promise.all([
        ada.keyboard.type(' brown🦊', { delay: 60 }),
        bob.keyboard.type(' big', { delay: 60 }),
      ]);
      await putLab(env.base, { latency_ms: 0 });
      await waitText(ada, EXPECTED);
      await waitText(bob, EXPECTED);
      const server = await serverDoc(env.base);
      assert.equal(server.text, EXPECTED, 'the server has both edits, each whole');
      for (const page of [ada, bob]) {
        await page.waitForSelector(`[data-role="sync"][data-sync="ok"][data-rev="${server.rev}"]`, { timeout: 20_000 });
      }
      // Ada's caret was carried along by Bob's edit: still after her emoji.
      const caret = await ada.evaluate((sel) => document.querySelector(sel).selectionStart, textarea());
      assert.equal(caret, 'The big quick brown🦊'.length, "Ada's caret stays after what she typed");
      // The edits did cross (else this would test nothing): at least one
      // editor transformed someone's edit past its own pending one.
      const repaired = (await counter(ada, 'doc-fixed')) + (await counter(bob, 'doc-fixed'));
      t.diagnostic(`rev ${server.rev}; ${repaired} crossing edit(s) repaired`);
      assert.ok(repaired >= 1, 'the two edits crossed on the way');
      assert.equal(await editorText(bob), EXPECTED);
      assert.deepEqual(unexpectedProblems(ada), []);
      assert.deepEqual(unexpectedProblems(bob), []);
    } finally {
      await putLab(env.base, { latency_ms: 0 });
      await ada.context().close();
      await bob.context().close();
    }
  });
}

test('a hidden editor stops reading, and shown again catches up from its revision', { timeout: 60_000 }, async () => {
  await setDoc(env.base, 'while you were away');
  for (const via of ['interval', 'websocket']) {
    const page = await openEditor(env.browser, `${env.base}/doc/${via}`, { name: 'ada' });
    try {
      await waitText(page, (await serverDoc(env.base)).text);
      await setHidden(page, true);
      await page.waitForSelector('#conn-state[data-tone="idle"]');
      assert.equal(await page.evaluate(() => window.weebsockets.editor.engine.transport), null, `${via}: not reading`);
      const { rev, text } = await serverDoc(env.base);
      const res = await fetch(`${env.base}/api/doc/ops`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ client: `tab-away-${via}`, seq: 1, rev, op: [text.length, '!'], author: 'bob' }),
      });
      assert.equal(res.status, 201);
      await setHidden(page, false);
      await waitText(page, `${text}!`);
      await page.waitForSelector(`[data-role="sync"][data-sync="ok"][data-rev="${rev + 1}"]`, { timeout: 20_000 });
    } finally {
      await page.context().close();
    }
  }
});
