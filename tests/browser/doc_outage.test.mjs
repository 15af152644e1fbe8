/// The lab's outage in the middle of typing. The server refuses everything
/// and closes the document's sockets and streams; Ada (WebSocket) and Bob
/// (setInterval polling) keep typing anyway: their editors keep the text,
/// hold their edits (one in flight, the rest buffered), say they are
/// retrying, and when the outage ends they send the edit in flight again —
/// with the same (client, seq), so the server stores it once — and both end
/// with the server's text, which has everything both of them typed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { putLab, serverAndBrowser, unexpectedProblems } from './helpers.mjs';
import { openEditor, placeCaret, serverDoc, setDoc, waitText } from './doc_helpers.mjs';

const env = serverAndBrowser();

test('edits typed during an outage are kept, sent when it ends, and stored once', { timeout: 120_000 }, async () => {
  await setDoc(env.base, 'Notes: ');
  const ada = await openEditor(env.browser, `${env.base}/doc/websocket`, { name: 'ada' });
  const bob = await openEditor(env.browser, `${env.base}/doc/interval`, { name: 'bob' });
  try {
    await waitText(ada, 'Notes: ');
    await waitText(bob, 'Notes: ');
    await putLab(env.base, { outage: true });
    for (const page of [ada, bob]) await page.waitForSelector('#conn-state[data-tone="retry"]', { timeout: 20_000 });
    await placeCaret(ada, 'Notes: '.length);
    await ada.keyboard.type('ada was here. ', { delay: 20 });
    await placeCaret(bob, 0);
    await bob.keyboard.type('[bob] ', { delay: 20 });
    // Nothing got through: both hold their edits.
    for (const page of [ada, bob]) {
      await page.waitForSelector('[data-role="doc-state"]:is([data-state="awaiting_confirm"], [data-state="awaiting_with_buffer"])');
    }
    assert.equal((await fetch(`${env.base}/api/doc`)).status, 503);
    await putLab(env.base, { outage: false });
    const expected = '[bob] Notes: ada was here. ';
    await waitText(ada, expected, undefined, 40_000);
    await waitText(bob, expected, undefined, 40_000);
    const server = await serverDoc(env.base);
    assert.equal(server.text, expected);
    for (const page of [ada, bob]) {
      await page.waitForSelector(`[data-role="sync"][data-sync="ok"][data-rev="${server.rev}"]`, { timeout: 20_000 });
    }
    // Each (client, seq) once in the log, however often it was sent.
    const { ops } = await (await fetch(`${env.base}/api/doc/ops?since=0&limit=500`)).json();
    const keys = ops.map((op) => `${op.client}/${op.seq}`);
    assert.equal(new Set(keys).size, keys.length, 'no edit stored twice');
    assert.deepEqual(unexpectedProblems(ada, { allowNetworkErrors: true }), []);
    assert.deepEqual(unexpectedProblems(bob, { allowNetworkErrors: true }), []);
  } finally {
    await putLab(env.base, { outage: false });
    await ada.context().close();
    await bob.context().close();
  }
});
