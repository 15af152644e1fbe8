/// Every page loads cleanly under the strict Content-Security-Policy (no
/// console errors, no CSP violations), carries the security headers, is
/// usable by label and role, and the small tools work: the teacher's lab
/// behind its token, and the WebSocket echo bench.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, serverAndBrowser, TOKEN } from './helpers.mjs';

const PAGES = ['/', '/interval', '/timeout', '/longpoll', '/websocket', '/sse', '/compare', '/dashboard', '/websocket/echo'];
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const env = serverAndBrowser();

/** Records CSP violations the page reports (the init script runs outside
 * the page's CSP, so it cannot itself cause one). */
async function watchCsp(page) {
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
}

test('every page has the security headers and a strict CSP', async () => {
  for (const path of [...PAGES, '/no-such-page']) {
    const res = await fetch(env.base + path);
    assert.equal(res.headers.get('content-security-policy'), CSP, path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
    assert.match(res.headers.get('content-type'), /^text\/html/, path);
    assert.equal(res.status, path === '/no-such-page' ? 404 : 200, path);
    const html = await res.text();
    assert.doesNotMatch(html, /\sstyle=/i, `${path} has an inline style attribute`);
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, `${path} has an inline script`);
    assert.doesNotMatch(html, /\son[a-z]+=/i, `${path} has an inline event handler`);
  }
  const css = await fetch(`${env.base}/assets/css/app.css`);
  assert.equal(css.status, 200);
  assert.equal(css.headers.get('cache-control'), 'no-cache');
  assert.match(css.headers.get('content-type'), /^text\/css/);
  const js = await fetch(`${env.base}/assets/js/transports/interval.js`);
  assert.match(js.headers.get('content-type'), /javascript/);
  // The API keeps its own JSON 404.
  const api = await fetch(`${env.base}/api/nope`);
  assert.equal(api.status, 404);
  assert.match(api.headers.get('content-type'), /json/);
});

test('every page loads in Chromium without console errors or CSP violations', { timeout: 120_000 }, async () => {
  for (const path of PAGES) {
    const context = await env.browser.newContext();
    const page = await context.newPage();
    const problems = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    await watchCsp(page);
    await page.goto(env.base + path);
    if (['/interval', '/timeout', '/longpoll', '/websocket', '/sse'].includes(path)) {
      // Connected: proves fetch, WebSocket (ws: under connect-src 'self')
      // and EventSource all pass the policy.
      await page.waitForSelector('#conn-state[data-tone="ok"]', { timeout: 15_000 });
    }
    if (path === '/compare') {
      await page.waitForFunction(() => document.querySelectorAll('[data-role="state"][data-tone="ok"]').length === 5);
    }
    if (path === '/dashboard') await page.waitForSelector('#conn-state[data-tone="ok"]');
    // Flip the theme and large type: scripts that set classes, not styles.
    await page.click('#theme-toggle');
    await page.click('#large-type');
    assert.equal(await page.getAttribute('#large-type', 'aria-pressed'), 'true');
    const csp = await page.evaluate(() => window.__csp);
    assert.deepEqual(csp, [], `${path}: CSP violations`);
    assert.deepEqual(problems, [], `${path}: console errors`);
    await context.close();
  }
});

test('the friendly 404 page links back to the lesson', async () => {
  const page = await openPage(env.browser, `${env.base}/nowhere/<b>x</b>`);
  const heading = await page.textContent('h1');
  assert.match(heading, /Nothing lives at/);
  // The path is shown as text, escaped, never as markup.
  assert.equal(await page.locator('h1 b').count(), 0);
  await page.click('text=Back to the lesson map');
  await page.waitForURL(`${env.base}/`);
  await page.context().close();
});

test('chat pages are usable by label and role', async () => {
  const page = await openPage(env.browser, `${env.base}/timeout`);
  // The header has a Name field too (its "Account" form): this is the composer's.
  await page.getByRole('form', { name: 'Send a message' }).getByLabel('Name', { exact: true }).fill('ada');
  await page.getByLabel('Message', { exact: true }).fill('found by label');
  await page.getByRole('button', { name: 'Send', exact: true }).click();
  const log = page.getByRole('log', { name: 'Messages' });
  await log.getByText('found by label').waitFor();
  // The name is remembered for the next visit.
  assert.equal(await page.evaluate(() => localStorage.getItem('weebsockets.name')), 'ada');
  await page.reload();
  assert.equal(await page.inputValue('#name'), 'ada');
  await page.context().close();
});

test('message text is shown as text, never as HTML', async () => {
  const page = await openPage(env.browser, `${env.base}/websocket`, { name: 'mallory' });
  await page.waitForSelector('#conn-state[data-tone="ok"]');
  const evil = '<img src=x onerror="window.__pwned=1">';
  await page.fill('#text', evil);
  await page.press('#text', 'Enter');
  await page.waitForFunction((t) => [...document.querySelectorAll('.msg-text')].some((e) => e.textContent === t), evil);
  assert.equal(await page.locator('#messages img').count(), 0);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  await page.context().close();
});

test('the dashboard unlocks the lab with the token and changes it', async () => {
  const page = await openPage(env.browser, `${env.base}/dashboard`);
  await page.waitForSelector('#conn-state[data-tone="ok"]');
  assert.equal(await page.isHidden('#lab'), true, 'lab controls hidden before unlocking');

  await page.fill('#token', 'wrong');
  await page.press('#token', 'Enter');
  await page.waitForSelector('#lab-status[data-tone="error"]');
  assert.equal(await page.isHidden('#lab'), true);

  await page.fill('#token', TOKEN);
  await page.press('#token', 'Enter');
  await page.waitForSelector('#lab:not([hidden])');
  // The token is not left in the page or the URL.
  assert.equal(await page.inputValue('#token'), '');
  assert.ok(!page.url().includes(TOKEN));
  assert.ok(!(await page.content()).includes(TOKEN));

  await page.click('[data-preset="jitter"]');
  await page.waitForSelector('#lab-status[data-tone="ok"]');
  let lab = await (await fetch(`${env.base}/api/lab`)).json();
  assert.deepEqual(lab, { latency_ms: 50, jitter_ms: 600, outage: false });
  await page.waitForFunction(() => document.getElementById('lab-state').textContent.includes('600'));

  await page.click('[data-preset="calm"]');
  await page.waitForFunction(() => document.getElementById('lab-state').textContent === 'lab off');
  lab = await (await fetch(`${env.base}/api/lab`)).json();
  assert.deepEqual(lab, { latency_ms: 0, jitter_ms: 0, outage: false });

  // The chart and the table fill from /api/stats.
  await page.waitForFunction(() => document.querySelector('[data-kpi="uptime"]').textContent !== '–');

  // The document's revisions show too: one edit, and the tile counts it.
  const edit = await fetch(`${env.base}/api/doc/ops`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client: 'dashboard-test', seq: 1, rev: 0, op: ['hello'] }),
  });
  assert.equal(edit.status, 201);
  const { rev } = await edit.json();
  await page.waitForFunction((r) => document.querySelector('[data-kpi="last_rev"]').textContent === String(r), rev);
  await page.context().close();
});

test('the echo bench sends text and binary frames and gets them back', async () => {
  const page = await openPage(env.browser, `${env.base}/websocket/echo`);
  await page.click('#echo-open');
  await page.waitForSelector('#conn-state[data-tone="ok"]');
  await page.fill('#echo-text', 'ping?');
  await page.click('#echo-send');
  await page.waitForSelector('.log-tag-receive + .log-text:has-text("text frame (5 B): ping?")');
  await page.check('input[value="binary"]');
  await page.fill('#echo-text', 'AB');
  await page.click('#echo-send');
  await page.waitForSelector('.log-tag-receive + .log-text:has-text("binary frame (2 B): 41 42")');
  await page.click('#echo-close');
  await page.waitForSelector('.log-tag-close + .log-text:has-text("code 1000")');
  await page.context().close();
});
