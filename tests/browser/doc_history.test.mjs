/// The document's history page replays the log revision by revision:
/// stepping from revision 0 to the newest, each revision shows the text
/// before it with what its operation inserted and deleted marked, and what
/// is left once the deletions are taken out is exactly the server's text at
/// that revision (GET /api/doc/text?rev=N); each says whose it was. The
/// download link asks the browser to save that revision. Restoring is the
/// teacher's: without a teacher session the page asks for the token (a
/// wrong one is refused), and with it the old text comes back as ONE NEW
/// revision by the teacher — the history only grows. A teacher's session
/// restores without any token. A page left on the newest revision follows
/// new edits as they come.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, serverAndBrowser, TOKEN } from './helpers.mjs';
import { serverDoc, setDoc } from './doc_helpers.mjs';

const env = serverAndBrowser(['--post-rate', '0', '--teacher', 'prof']);

async function edit(base, client, seq, rev, op, author) {
  const res = await fetch(`${base}/api/doc/ops`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client, seq, rev, op, author }),
  });
  assert.equal(res.status, 201);
  return res.json();
}

const textAt = async (rev) => (await fetch(`${env.base}/api/doc/text?rev=${rev}`)).text();

/** What the page shows at revision `rev`: the text after it (deletions taken out), and the meta line. */
function shown(page) {
  return page.evaluate(() => {
    const view = document.querySelector('#rev-text').cloneNode(true);
    for (const del of view.querySelectorAll('del')) del.remove();
    return { rev: window.weebsockets.shown, after: view.textContent, meta: document.querySelector('#rev-meta').textContent };
  });
}

test('stepping through every revision shows the server’s text at each, and whose it was', { timeout: 90_000 }, async () => {
  await setDoc(env.base, 'hello');
  let { rev } = await serverDoc(env.base);
  ({ rev } = await edit(env.base, 'tab-ada', 1, rev, [5, ' world'], 'ada'));
  ({ rev } = await edit(env.base, 'tab-bob', 1, rev, ['H', -1, 10], 'bob'));
  ({ rev } = await edit(env.base, 'tab-bob', 2, rev, [11, ' 🎉'], 'bob'));
  const page = await openPage(env.browser, `${env.base}/doc/history`);
  try {
    await page.waitForFunction((r) => window.weebsockets?.shown === r, rev);
    assert.match((await shown(page)).meta, new RegExp(`^Revision ${rev} by bob over api`));
    await page.click('#first');
    await page.waitForFunction(() => window.weebsockets.shown === 0);
    for (let r = 1; r <= rev; r++) {
      await page.click('#next');
      await page.waitForFunction((n) => window.weebsockets.shown === n, r);
      const view = await shown(page);
      assert.equal(view.after, await textAt(r), `revision ${r}`);
      assert.match(view.meta, new RegExp(`^Revision ${r} by `));
    }
    // Revision 3 capitalised the h: its delete and insert are marked.
    await page.fill('#rev', String(rev - 1));
    await page.dispatchEvent('#rev', 'input');
    await page.waitForFunction((n) => window.weebsockets.shown === n, rev - 1);
    assert.equal(await page.textContent('#rev-text ins'), 'H');
    assert.equal(await page.textContent('#rev-text del'), 'h');
    // The download link, for that revision.
    const href = await page.getAttribute('#download', 'href');
    assert.equal(href, `/api/doc/text?rev=${rev - 1}&download=1`);
    const download = await fetch(env.base + href);
    assert.match(download.headers.get('content-disposition'), /^attachment/);
    assert.equal(await download.text(), await textAt(rev - 1));
  } finally {
    await page.context().close();
  }
});

test('restoring is the teacher’s, and adds a revision instead of rewriting any', { timeout: 90_000 }, async () => {
  await setDoc(env.base, 'first draft');
  const { rev: draft } = await serverDoc(env.base);
  await setDoc(env.base, 'second draft, worse');
  const { rev: newest } = await serverDoc(env.base);
  const page = await openPage(env.browser, `${env.base}/doc/history`);
  try {
    await page.waitForFunction((r) => window.weebsockets?.shown === r, newest);
    await page.fill('#rev', String(draft));
    await page.dispatchEvent('#rev', 'input');
    await page.waitForFunction((r) => window.weebsockets.shown === r, draft);
    // A guest: the page asks for the token.
    await page.click('#restore');
    await page.waitForSelector('#unlock:not([hidden])');
    await page.fill('#token', 'not the token');
    await page.press('#token', 'Enter');
    await page.waitForFunction(() => /Only the teacher/.test(document.querySelector('#restore-status').textContent));
    assert.equal((await serverDoc(env.base)).rev, newest, 'nothing was restored');
    await page.fill('#token', TOKEN);
    await page.press('#token', 'Enter');
    await page.waitForFunction((r) => window.weebsockets.shown === r, newest + 1);
    const doc = await serverDoc(env.base);
    assert.deepEqual(doc, { rev: newest + 1, text: 'first draft' }, 'the old text is back, as a new revision');
    assert.match((await shown(page)).meta, new RegExp(`^Revision ${newest + 1} by teacher`));
    assert.equal(await textAt(newest), 'second draft, worse', 'and the history still has what was replaced');
    assert.equal(await page.inputValue('#token'), '', 'the token is not left in the page');

    // Left on the newest revision, the page follows new edits.
    await edit(env.base, 'tab-ada', 10, doc.rev, [11, '!'], 'ada');
    await page.waitForFunction((r) => window.weebsockets.shown === r, doc.rev + 1, { timeout: 15_000 });
  } finally {
    await page.context().close();
  }
});

test('a teacher’s session restores without a token', { timeout: 60_000 }, async () => {
  await setDoc(env.base, 'keep this');
  const { rev: keep } = await serverDoc(env.base);
  await setDoc(env.base, 'oops');
  const context = await env.browser.newContext();
  const created = await context.request.post(`${env.base}/api/accounts`, {
    data: { name: 'prof', password: 'a long teacher password' },
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(created.status(), 201);
  const page = await context.newPage();
  try {
    await page.goto(`${env.base}/doc/history`);
    const { rev: newest } = await serverDoc(env.base);
    await page.waitForFunction((r) => window.weebsockets?.shown === r, newest);
    await page.fill('#rev', String(keep));
    await page.dispatchEvent('#rev', 'input');
    await page.waitForFunction((r) => window.weebsockets.shown === r, keep);
    await page.click('#restore');
    await page.waitForFunction((r) => window.weebsockets.shown === r, newest + 1);
    assert.equal(await page.isHidden('#unlock'), true, 'no token asked for');
    assert.equal((await serverDoc(env.base)).text, 'keep this');
    assert.match((await shown(page)).meta, /^Revision \d+ by prof ✓/);
  } finally {
    await context.close();
  }
});
