/// The shared document's pages load cleanly under the strict
/// Content-Security-Policy — no console errors, no CSP violations, even
/// though the carets' colours are set from script (CSSOM properties,
/// which the policy allows, never style attributes) — carry the security
/// headers, and are usable by label: the editor is a textarea labelled
/// "Document". /doc leads to the projector view, an unknown /doc/… is the
/// friendly 404, the lesson map links to every document page, and text in
/// the document is only ever text.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, serverAndBrowser } from './helpers.mjs';
import { setDoc, waitEditing, waitText } from './doc_helpers.mjs';

const PAGES = ['/doc/interval', '/doc/timeout', '/doc/longpoll', '/doc/websocket', '/doc/sse', '/doc/compare', '/doc/history'];
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const env = serverAndBrowser();

test('every document page has the security headers, and no inline script or style', async () => {
  for (const path of PAGES) {
    const res = await fetch(env.base + path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-security-policy'), CSP, path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    assert.match(res.headers.get('content-type'), /^text\/html/, path);
    const html = await res.text();
    assert.doesNotMatch(html, /\sstyle=/i, `${path} has an inline style attribute`);
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, `${path} has an inline script`);
    assert.doesNotMatch(html, /\son[a-z]+=/i, `${path} has an inline event handler`);
  }
  const doc = await fetch(`${env.base}/doc`, { redirect: 'manual' });
  assert.equal(doc.status, 303);
  assert.equal(doc.headers.get('location'), '/doc/compare');
  assert.equal((await fetch(`${env.base}/doc/nowhere`)).status, 404);
});

test('every document page runs in Chromium without console errors or CSP violations', { timeout: 120_000 }, async () => {
  await setDoc(env.base, 'Carets, 🎉 and all.\nA second line.');
  // A second editor, so every page has someone's caret to draw (colours set from script).
  const other = await openPage(env.browser, `${env.base}/doc/websocket`, { name: 'other' });
  await waitEditing(other, '[data-editor="main"]');
  for (const path of PAGES) {
    const context = await env.browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    const problems = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    await page.addInitScript(() => {
      window.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    await page.goto(env.base + path);
    if (path === '/doc/history') {
      await page.waitForFunction(() => window.weebsockets?.shown >= 1);
    } else {
      await waitEditing(page);
      // Someone's caret is drawn: its colour went in through CSSOM.
      await other.evaluate(() => {
        const ta = document.querySelector('#main-text');
        ta.focus();
        ta.setSelectionRange(3, 3);
        ta.dispatchEvent(new MouseEvent('mouseup'));
      });
      await page.waitForSelector('.remote-caret', { timeout: 15_000 });
      await page.waitForSelector('.person', { timeout: 15_000 });
    }
    await page.click('#theme-toggle');
    await page.click('#large-type');
    assert.deepEqual(await page.evaluate(() => window.__csp), [], `${path}: CSP violations`);
    assert.deepEqual(problems, [], `${path}: console errors`);
    await context.close();
  }
  await other.context().close();
});

test('the editor is found by its label, and what it holds is only ever text', { timeout: 60_000 }, async () => {
  const evil = '<img src=x onerror="window.__pwned=1">';
  await setDoc(env.base, 'plain ');
  const page = await openPage(env.browser, `${env.base}/doc/timeout`, { name: '<b>mallory</b>' });
  const other = await openPage(env.browser, `${env.base}/doc/sse`, { name: 'ada' });
  try {
    await waitEditing(page, '[data-editor="main"]');
    await waitEditing(other, '[data-editor="main"]');
    const editor = page.getByLabel('Document', { exact: true });
    await editor.click();
    await editor.press('End');
    await editor.pressSequentially(evil);
    await waitText(other, `plain ${evil}`);
    // The name shows on the caret and in the list as text, not markup.
    await other.waitForFunction(() => [...document.querySelectorAll('.person-name')].some((e) => e.textContent === '<b>mallory</b>'));
    assert.equal(await other.locator('img, .people b, .doc-marks b').count(), 0);
    assert.equal(await other.evaluate(() => window.__pwned), undefined);
    // The history shows it as text too.
    const history = await openPage(env.browser, `${env.base}/doc/history`);
    await history.waitForFunction(() => window.weebsockets?.shown >= 2);
    assert.equal(await history.locator('#rev-text img').count(), 0);
    await history.context().close();
  } finally {
    await page.context().close();
    await other.context().close();
  }
});

test('the lesson map links to the document’s pages', async () => {
  const page = await openPage(env.browser, `${env.base}/`);
  for (const path of PAGES) assert.ok((await page.locator(`a[href="${path}"]`).count()) >= 1, `a link to ${path}`);
  await page.click('text=Open the document');
  await page.waitForURL(`${env.base}/doc/compare`);
  await page.context().close();
});
