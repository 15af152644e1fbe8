/// Presence: every editor sees the others' carets, with their name and
/// colour, and the carets move with the text. Ada (a signed-in account,
/// on the WebSocket page) puts her caret before "world"; Bob (a guest, on
/// the SSE page) sees it there, flagged "Ada ✓ · websocket", and sees her
/// selection when she selects the word. Then Ada stops telling anyone
/// where she is, and Carol (long polling) types at the start of the line:
/// in Bob's editor Ada's caret moves right by what Carol typed — carried
/// by Carol's edit, not by anything Ada sent — and Ada's own caret moves
/// with it in her textarea. Carol then types exactly at Ada's caret: it
/// stays before Carol's text (someone else's insert at my caret appears
/// after it). Bob's own selection of "world" is still "world" after
/// Carol's edit moved it. A caret that moves forty times in half a second
/// is published at most ten times a second. The list of who is editing
/// names all three and their transports; when Ada closes her page her
/// caret and her line go.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serverAndBrowser } from './helpers.mjs';
import { openEditor, placeCaret, setDoc, textarea, waitEditing, waitText } from './doc_helpers.mjs';

const env = serverAndBrowser();

/** Where Bob's editor draws the caret of `client` (its code point, and pixels). */
function caretIn(page, client) {
  return page.evaluate((c) => {
    const el = document.querySelector(`[data-editor="main"] .remote-caret[data-client="${c}"]`);
    return el && { at: Number(el.dataset.at), left: parseFloat(el.style.left), flag: el.textContent };
  }, client);
}

function waitCaretAt(page, client, at) {
  return page.waitForFunction(
    ([c, n]) => document.querySelector(`[data-editor="main"] .remote-caret[data-client="${c}"]`)?.dataset.at === String(n),
    [client, at],
    { timeout: 15_000 },
  );
}

test('carets appear with names, follow their owner, and are moved by other people’s edits', { timeout: 120_000 }, async () => {
  await setDoc(env.base, 'hello world');
  // Ada signs up (her browser keeps the session cookie), then opens the page.
  const adaContext = await env.browser.newContext({ viewport: { width: 1280, height: 860 } });
  const signUp = await adaContext.request.post(`${env.base}/api/accounts`, { data: { name: 'Ada', password: 'correct horse battery' } });
  assert.equal(signUp.status(), 201);
  const ada = await adaContext.newPage();
  await ada.goto(`${env.base}/doc/websocket`);
  await waitEditing(ada, '[data-editor="main"]');
  const bob = await openEditor(env.browser, `${env.base}/doc/sse`, { name: 'bob' });
  const carol = await openEditor(env.browser, `${env.base}/doc/longpoll`, { name: 'carol' });
  try {
    for (const page of [ada, bob, carol]) await waitText(page, 'hello world');
    const adaId = await ada.evaluate(() => window.weebsockets.editor.client);

    // Ada's caret, before "world": Bob sees it there, with her name and ✓.
    await placeCaret(ada, 'hello '.length);
    await waitCaretAt(bob, adaId, 6);
    const before = await caretIn(bob, adaId);
    assert.match(before.flag, /^Ada ✓ · websocket$/, 'a signed-in name carries the ✓');

    // A selection is drawn too.
    await ada.evaluate((sel) => {
      const ta = document.querySelector(sel);
      ta.setSelectionRange(6, 11);
      ta.dispatchEvent(new Event('select'));
    }, textarea());
    await bob.waitForSelector('[data-editor="main"] .remote-selection', { timeout: 15_000 });
    await placeCaret(ada, 6);
    await bob.waitForFunction(() => !document.querySelector('[data-editor="main"] .remote-selection'), null, { timeout: 15_000 });
    await waitCaretAt(bob, adaId, 6);

    // From now on Ada says nothing more about her caret…
    await ada.evaluate(() => {
      const publisher = window.weebsockets.editor.publisher;
      publisher.stop();
      publisher.moved = () => {};
    });
    // Bob selects "world" in his own editor.
    await bob.evaluate((sel) => document.querySelector(sel).setSelectionRange(6, 11), textarea());
    // …and Carol types at the start: Ada's caret is carried along.
    await placeCaret(carol, 0);
    await carol.keyboard.type('Oh, ');
    await waitText(bob, 'Oh, hello world');
    await waitCaretAt(bob, adaId, 10);
    const after = await caretIn(bob, adaId);
    assert.ok(after.left > before.left, `the caret moved right on screen (${before.left} → ${after.left} px)`);
    // In Ada's own editor her caret moved the same way.
    await waitText(ada, 'Oh, hello world');
    assert.equal(await ada.evaluate((sel) => document.querySelector(sel).selectionStart, textarea()), 10);
    // Bob's selection moved with the text: it is still the word.
    const selected = await bob.evaluate((sel) => {
      const ta = document.querySelector(sel);
      return ta.value.slice(ta.selectionStart, ta.selectionEnd);
    }, textarea());
    assert.equal(selected, 'world', "Bob's selection survived Carol's edit");

    // Carol types exactly at Ada's caret: Ada's caret stays before it.
    await placeCaret(carol, 10);
    await carol.keyboard.type('big ');
    await waitText(bob, 'Oh, hello big world');
    await waitText(ada, 'Oh, hello big world');
    assert.equal((await caretIn(bob, adaId)).at, 10, "someone else's text at Ada's caret goes after it");
    assert.equal(await ada.evaluate((sel) => document.querySelector(sel).selectionStart, textarea()), 10);

    // Bob's caret moves forty times in half a second: at most ten updates a second go out.
    const bobId = await bob.evaluate(() => window.weebsockets.editor.client);
    const { last_seq: from } = await (await fetch(`${env.base}/api/doc/presence?since=0&limit=1`)).json();
    const started = Date.now();
    await bob.evaluate(async (sel) => {
      const ta = document.querySelector(sel);
      ta.focus();
      for (let i = 0; i < 40; i++) {
        ta.setSelectionRange(i % 15, i % 15);
        ta.dispatchEvent(new MouseEvent('mouseup'));
        await new Promise((resolve) => setTimeout(resolve, 12));
      }
    }, textarea());
    await new Promise((resolve) => setTimeout(resolve, 300)); // the last one, throttled, goes out
    const seconds = (Date.now() - started) / 1000;
    const { carets } = await (await fetch(`${env.base}/api/doc/presence?since=${from}&limit=500`)).json();
    const sent = carets.filter((c) => c.client === bobId).length;
    assert.ok(sent >= 2, `Bob's moves were published (${sent})`);
    assert.ok(sent <= Math.ceil(seconds * 10) + 1, `${sent} updates in ${seconds.toFixed(2)} s: at most ten a second`);

    // Who is editing, over which transport.
    await bob.waitForFunction(() => document.querySelectorAll('#people .person').length >= 3, null, { timeout: 15_000 });
    const people = await bob.$$eval('#people .person', (items) => items.map((li) => li.textContent));
    assert.ok(people.some((p) => /^Ada✓ \(signed in\)websocket$/.test(p)), people.join(' | '));
    assert.ok(people.some((p) => /^bobyousse$/.test(p)), people.join(' | '));
    assert.ok(people.some((p) => /^carollongpoll$/.test(p)), people.join(' | '));

    // Ada leaves: her caret and her line go from Bob's page.
    await adaContext.close();
    await bob.waitForFunction((c) => !document.querySelector(`.remote-caret[data-client="${c}"]`), adaId, { timeout: 15_000 });
    await bob.waitForFunction(() => ![...document.querySelectorAll('#people .person')].some((li) => li.textContent.startsWith('Ada')), null, { timeout: 15_000 });
  } finally {
    await adaContext.close().catch(() => {});
    await bob.context().close();
    await carol.context().close();
  }
});
