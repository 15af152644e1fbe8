// The accounts' additions are readable by everyone, in the light and the
// dark theme: axe-core finds no serious or critical violation with the
// header in each of its states — a guest's form, a refusal in its status
// line, "Signed in as …" for a student and for the teacher — nor in what
// signing in adds to the pages: the locked Name field, the account mark on
// messages, the WebSocket page's lesson, and the dashboard's teacher
// account form and list of who is signed in.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seriousAxeViolations } from './axe.mjs';
import {
  ACCOUNT_ARGS,
  createAccount,
  post,
  serverAndBrowser,
  signIn,
  submitAccountForm,
  TOKEN,
  waitConnected,
  waitForText,
} from './helpers.mjs';

const env = serverAndBrowser([...ACCOUNT_ARGS, '--teacher', 'teach']);

/** A browser context in a theme, with the page at `path` loaded. */
async function openIn(theme, path) {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript((t) => localStorage.setItem('weebsockets.theme', t), theme);
  const page = await context.newPage();
  await page.goto(env.base + path);
  return page;
}

test('axe finds nothing serious with the accounts header and marks, light and dark', { timeout: 240_000 }, async (t) => {
  await createAccount(env.base, 'Ada', 'correct horse battery');
  await createAccount(env.base, 'teach', 'the teacher’s password', { token: TOKEN });
  const failures = [];
  const check = async (page, what) => {
    for (const v of await seriousAxeViolations(page)) failures.push(`${what}: ${v}`);
  };

  for (const theme of ['light', 'dark']) {
    // A guest whose sign-in was refused: the form and its error.
    let page = await openIn(theme, '/sse');
    await waitConnected(page);
    await submitAccountForm(page, 'Ada', 'not the password', 'Sign in');
    await page.waitForSelector('#account-status[data-tone="error"]:not(:empty)');
    await check(page, `${theme} /sse, a refused sign-in`);

    // A student, signed in: every chat page, with her marked message.
    await signIn(page, 'Ada', 'correct horse battery');
    await waitConnected(page);
    const text = `Ada, marked, in ${theme}`;
    await page.fill('#text', text);
    await page.press('#text', 'Enter');
    await waitForText(page, text);
    await post(env.base, 'a guest', `and a guest, in ${theme}`);
    for (const path of ['/', '/interval', '/websocket', '/compare', '/dashboard']) {
      await page.goto(env.base + path);
      if (['/interval', '/websocket'].includes(path)) {
        await waitConnected(page);
        await waitForText(page, text);
      }
      await check(page, `${theme} ${path}, signed in as a student`);
    }
    await page.context().close();

    // The dashboard unlocked with the token: the teacher account form.
    page = await openIn(theme, '/dashboard');
    await page.fill('#token', TOKEN);
    await page.press('#token', 'Enter');
    await page.waitForSelector('#teacher-account:not([hidden])');
    await page.locator('#accounts-list tr[data-name="Ada"]').waitFor();
    await check(page, `${theme} /dashboard, unlocked with the token`);
    await page.context().close();

    // The teacher's session: the header's role and the list of who is in.
    page = await openIn(theme, '/dashboard');
    await signIn(page, 'teach', 'the teacher’s password');
    await page.waitForSelector('#teacher-session:not([hidden])');
    await page.locator('#accounts-list tr[data-name="teach"]').waitFor();
    await check(page, `${theme} /dashboard, the teacher's session`);
    await page.context().close();
    t.diagnostic(`${theme}: checked`);
  }
  assert.deepEqual(failures, [], failures.join('\n'));
});
