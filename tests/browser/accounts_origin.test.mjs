// Cross-site WebSocket hijacking and cross-site posting, in real Chromium.
// A student signs up on the server's own page, so her browser holds the
// session cookie. Then, in the same browser, she visits a page of another
// origin — a tiny server of this test on another port of 127.0.0.1 — whose
// script tries to open the room's WebSocket and to post a message, with
// her cookie. Another port of the same host is another *origin* but the
// same *site*, so SameSite=Lax does not hold the cookie back: the browser
// attaches it to the upgrade and to the POST, and the Origin check is all
// that stands in the way. It must: the upgrade is refused with 403, the
// JSON POST never leaves the browser (CORS preflight), and a "simple" POST
// (no-cors fetch, or a plain HTML form) reaches the server and is refused
// with 403. The server's log of messages has nothing from that page. As
// the control that shows the attack is real, a third origin that the
// teacher allowed (--allowed-origin) does open the socket — and what it
// sends is stored under her account's name.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { allMessages, launchBrowser, startServer } from './helpers.mjs';

const PASSWORD = 'correct horse battery';

/** A one-page web server on a free port of 127.0.0.1: "another site". */
function otherOrigin() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Another site</title><p>Nothing to see here.</p>');
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const origin = `http://127.0.0.1:${server.address().port}`;
      resolve({ origin, close: () => new Promise((done) => server.close(done)) });
    });
  });
}

let server;
let browser;
let evil;
let allowed;

before(async () => {
  evil = await otherOrigin();
  allowed = await otherOrigin();
  server = await startServer(['--insecure-fast-passwords', '--allowed-origin', allowed.origin]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await evil?.close();
  await allowed?.close();
});

/**
 * In `page`, opens a WebSocket to `url` and, if it opens, sends a chat
 * message on it. Resolves with what happened: `{opened, frame}` with the
 * server's answer (ack or error), or `{opened: false, code}` with the close
 * code the page saw.
 */
function tryWebSocket(page, url, text) {
  return page.evaluate(
    ([url, text]) =>
      new Promise((resolve) => {
        const ws = new WebSocket(url);
        ws.onopen = () => ws.send(JSON.stringify({ type: 'send', ref: 'r1', text }));
        ws.onmessage = (event) => {
          const frame = JSON.parse(event.data);
          if (frame.type === 'ack' || frame.type === 'error') {
            ws.close();
            resolve({ opened: true, frame });
          }
        };
        ws.onclose = (event) => resolve({ opened: false, code: event.code });
      }),
    [url, text],
  );
}

/**
 * Records, for a page, the error Chromium gives each failed WebSocket (from
 * DevTools' protocol, so it may come a little after the page saw the close).
 * `count(n)` resolves with the list once there are `n`.
 */
function recordSocketErrors(page) {
  const errors = [];
  let waiting = null;
  page.on('websocket', (ws) =>
    ws.on('socketerror', (error) => {
      errors.push({ url: ws.url(), error });
      if (waiting && errors.length >= waiting.n) waiting.resolve(errors);
    }),
  );
  return {
    count: (n) =>
      errors.length >= n ? Promise.resolve(errors) : new Promise((resolve) => (waiting = { n, resolve })),
  };
}

test('a page of another origin cannot use the student\'s cookie to open /api/ws or to post', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  const wsBase = server.base.replace('http://', 'ws://');

  // 1. She signs up on the server's own page.
  const own = await context.newPage();
  await own.goto(`${server.base}/`);
  const signedUp = await own.evaluate(async (password) => {
    const res = await fetch('/api/accounts', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'Ada', password }),
    });
    return { status: res.status, body: await res.json(), visible: document.cookie };
  }, PASSWORD);
  assert.equal(signedUp.status, 201);
  assert.deepEqual(signedUp.body, { name: 'Ada', role: 'student' });
  // HttpOnly: the page's own scripts cannot read it (nor could an injected one).
  assert.doesNotMatch(signedUp.visible, /weebsockets_session/);
  const [cookie] = (await context.cookies(server.base)).filter((c) => c.name === 'weebsockets_session');
  assert.ok(cookie, 'the browser holds the session cookie');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Lax');
  assert.equal(cookie.path, '/');
  // On her own page, the cookie makes her Ada on a WebSocket.
  const ownTry = await tryWebSocket(own, `${wsBase}/api/ws?since=0`, 'from her own page');
  assert.equal(ownTry.opened, true);
  assert.equal(ownTry.frame.type, 'ack');

  // 2. The other site's page, in the same browser: her cookie goes along.
  const page = await context.newPage();
  const socketErrors = recordSocketErrors(page);
  await page.goto(`${evil.origin}/`);

  for (const path of ['/api/ws?since=0', '/api/doc/ws?since=0']) {
    const hijack = await tryWebSocket(page, `${wsBase}${path}`, 'hijacked over the WebSocket');
    assert.deepEqual(hijack, { opened: false, code: 1006 }, `${path} must not open`);
  }
  for (const { url, error } of await socketErrors.count(2)) {
    assert.match(error, /Unexpected response code: 403/, `${url}: ${error}`);
  }

  // A JSON POST with credentials: the browser asks first (CORS preflight),
  // the server grants no cross-origin access, so the POST is never sent.
  const jsonPost = await page.evaluate(async (url) => {
    try {
      const res = await fetch(url, {
        method: 'POST',
        credentials: 'include',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ text: 'forged by fetch' }),
      });
      return `answered ${res.status}`;
    } catch (err) {
      return `refused: ${err.name}`;
    }
  }, `${server.base}/api/messages`);
  assert.equal(jsonPost, 'refused: TypeError');

  // A "simple" request needs no preflight: it reaches the server, cookie and
  // all, and the Origin check refuses it (the page cannot read the answer;
  // the browser's network log can).
  const refusedPost = page.waitForResponse(
    (res) => res.url() === `${server.base}/api/messages` && res.request().method() === 'POST',
  );
  await page.evaluate(async (url) => {
    await fetch(url, {
      method: 'POST',
      mode: 'no-cors',
      credentials: 'include',
      headers: { 'Content-Type': 'text/plain' },
      body: JSON.stringify({ text: 'forged by a no-cors fetch' }),
    });
  }, `${server.base}/api/messages`);
  assert.equal((await refusedPost).status(), 403);

  // The classic: a form that posts itself, its body shaped like JSON.
  const formAnswer = page.waitForResponse(
    (res) => res.url() === `${server.base}/api/messages` && res.request().method() === 'POST',
  );
  await page.evaluate((url) => {
    const form = document.createElement('form');
    form.method = 'POST';
    form.action = url;
    form.enctype = 'text/plain';
    const field = document.createElement('input');
    field.name = '{"text":"forged by a form","padding":"';
    field.value = '"}';
    form.append(field);
    document.body.append(form);
    form.submit();
  }, `${server.base}/api/messages`);
  const form = await formAnswer;
  assert.equal(form.status(), 403);
  assert.equal((await form.json()).code, 'forbidden_origin');

  // 3. The control: an origin the teacher allowed opens the socket the same
  // way, and the server takes it as Ada — so the cookie really did ride
  // along on a cross-origin upgrade, and only the Origin check stopped the
  // other page.
  const friendly = await context.newPage();
  await friendly.goto(`${allowed.origin}/`);
  const allowedTry = await tryWebSocket(friendly, `${wsBase}/api/ws?since=0`, 'from the allowed origin');
  assert.equal(allowedTry.opened, true);
  assert.equal(allowedTry.frame.type, 'ack');

  // The room has her two real messages, both signed as her account, and
  // nothing the other page tried.
  const log = await allMessages(server.base);
  assert.deepEqual(
    log.map((m) => [m.author, m.account, m.text]),
    [
      ['Ada', true, 'from her own page'],
      ['Ada', true, 'from the allowed origin'],
    ],
  );
  // She is still signed in.
  const me = await own.evaluate(async () => (await fetch('/api/session')).status);
  assert.equal(me, 200);
  await context.close();
});
