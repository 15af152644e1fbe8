// A student creates an account from the header of a page, then chats as
// herself on every mode: on each page the composer's Name field holds her
// account's name and cannot be changed, and her message shows the account
// mark in the room (and carries "account": true in the log). She signs
// out: the WebSocket page reconnects once, as a guest, and does not loop;
// as a guest she cannot post under her account's name (the page says why,
// in a sentence) but can under any free name. The header's other refusals
// are sentences too: a taken name, a short password, a wrong password or
// an unknown name (the same words), and too many tries (with the wait).
// Signing in in one tab signs in the browser's other tabs. With
// --accounts-required a guest is told to sign in before writing.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ACCOUNT_ARGS,
  accountForm,
  accountStatus,
  allMessages,
  composerName,
  createAccount,
  launchBrowser,
  openPage,
  sendFromPage,
  serverAndBrowser,
  signIn,
  signOut,
  signUp,
  startServer,
  statValue,
  submitAccountForm,
  waitConnected,
  waitForText,
  waitSignedIn,
} from './helpers.mjs';

const MODES = ['interval', 'timeout', 'longpoll', 'websocket', 'sse'];
const env = serverAndBrowser(ACCOUNT_ARGS);

/** The <li> of the message with this text in a page's room. */
function messageItem(page, text) {
  return page.locator('#messages > li', { has: page.locator('.msg-text', { hasText: text }) });
}

/** Waits until the send status says something in `tone`; returns it. */
async function sendStatus(page, tone) {
  const el = await page.waitForSelector(`#send-status[data-tone="${tone}"]:not(:empty)`, { timeout: 15_000 });
  return el.textContent();
}

test('sign up, chat as oneself on every mode, sign out', { timeout: 120_000 }, async () => {
  const page = await openPage(env.browser, `${env.base}/interval`, { name: 'ada-the-guest' });
  assert.equal(await composerName(page).inputValue(), 'ada-the-guest', 'a guest types any name');
  assert.equal(await composerName(page).isEditable(), true);

  await signUp(page, 'Ada', 'correct horse battery');
  assert.equal(await accountForm(page).isHidden(), true, 'the form makes way for "Signed in as Ada"');
  assert.match(await accountStatus(page, 'ok'), /Ada/);

  for (const mode of MODES) {
    // A fresh page load on each mode: the page is rendered for the cookie.
    await page.goto(`${env.base}/${mode}`);
    await waitConnected(page);
    await waitSignedIn(page, 'Ada');
    const name = composerName(page);
    assert.equal(await name.inputValue(), 'Ada', `${mode}: the Name field is the account's`);
    assert.equal(await name.isEditable(), false, `${mode}: and locked`);
    assert.equal(await page.isVisible('#name-lock'), true, `${mode}: with the account mark next to its label`);

    const text = `Ada herself, on ${mode}`;
    await sendFromPage(page, text);
    await waitForText(page, text);
    const item = messageItem(page, text);
    assert.equal(await item.locator('.msg-author').textContent(), 'Ada');
    assert.equal(await item.locator('.msg-account').count(), 1, `${mode}: the room shows the account mark`);
    assert.match(await item.locator('.msg-account').textContent(), /signed in/, 'in words too, for screen readers');
  }
  const mine = (await allMessages(env.base)).filter((m) => m.text.startsWith('Ada herself'));
  assert.deepEqual(
    mine.map((m) => [m.author, m.account, m.via]),
    MODES.map((mode) => ['Ada', true, mode]),
    'stored under the account, marked, sent over each mode (the WebSocket page over its socket)',
  );

  // Signing out, on the WebSocket page: the socket opened with the session
  // is closed and opened again, as a guest — once.
  await page.goto(`${env.base}/websocket`);
  await waitConnected(page);
  const opened = await statValue(page, 'requests');
  await signOut(page);
  assert.equal(await composerName(page).isEditable(), true, 'the Name field is free again');
  assert.equal(await composerName(page).inputValue(), 'ada-the-guest', 'and holds the guest name again');
  assert.equal(await page.isHidden('#name-lock'), true);
  await page.waitForFunction((n) => Number(document.querySelector('[data-stat="requests"]').dataset.value) > n, opened);
  await waitConnected(page);
  // Not a reconnection loop: a few seconds later it is still the same socket.
  const after = await statValue(page, 'requests');
  await page.waitForTimeout(3000);
  assert.equal(await statValue(page, 'requests'), after, 'one new connection, not one per back-off');
  assert.ok(after - opened <= 2, `signing out opened ${after - opened} connections`);

  // A guest cannot write under the account's name…
  await composerName(page).fill('Ada');
  await sendFromPage(page, 'pretending to be Ada');
  assert.match(await sendStatus(page, 'error'), /that name belongs to an account/);
  assert.equal(await page.inputValue('#text'), 'pretending to be Ada', 'the text is given back');
  // …but under any free name.
  await composerName(page).fill('grace');
  await sendFromPage(page, 'grace, a guest');
  await waitForText(page, 'grace, a guest');
  assert.equal(await messageItem(page, 'grace, a guest').locator('.msg-account').count(), 0, 'a guest has no mark');
  assert.deepEqual(page.problems.filter((p) => !/409|Conflict/.test(p)), []);
  await page.context().close();
});

test('a guest cannot post under an account’s name over HTTP either', async () => {
  const created = await createAccount(env.base, 'Linus', 'penguins are great');
  assert.equal(created.status, 201);
  const page = await openPage(env.browser, `${env.base}/timeout`, { name: 'linus' }); // any case: the same name
  await waitConnected(page);
  await sendFromPage(page, 'am I Linus?');
  assert.equal(
    await sendStatus(page, 'error'),
    'Not sent: that name belongs to an account: sign in as it, or choose another name.',
  );
  await page.context().close();
});

test('the header’s refusals are sentences', { timeout: 60_000 }, async () => {
  await createAccount(env.base, 'Carol', 'carols are sung');
  await createAccount(env.base, 'Dora', 'the explorer!');
  const page = await openPage(env.browser, `${env.base}/`);

  await submitAccountForm(page, 'carol', 'something long enough', 'Create account');
  assert.equal(await accountStatus(page), 'That name belongs to an account already; choose another one.');

  await submitAccountForm(page, 'Eve', 'short', 'Create account');
  assert.equal(await accountStatus(page), 'A password must be 8 to 128 characters (got 5).');

  // A wrong password and an unknown name: the same words.
  await submitAccountForm(page, 'Carol', 'not her password', 'Sign in');
  const wrong = await accountStatus(page);
  await submitAccountForm(page, 'Nobody-at-all', 'not her password', 'Sign in');
  const unknown = await accountStatus(page);
  assert.equal(wrong, 'Wrong name or password.');
  assert.equal(unknown, wrong);

  // Too many failures for one name: the sentence says how long to wait.
  let said = '';
  for (let attempt = 0; attempt < 8 && !/wait/.test(said); attempt += 1) {
    await submitAccountForm(page, 'Dora', `guess number ${attempt}`, 'Sign in');
    said = await accountStatus(page);
  }
  assert.match(said, /^Too many failed sign-ins: wait \d+s before trying again\.$/);
  assert.equal(await page.isVisible('#account-form'), true, 'still a guest');
  await page.context().close();
});

test('signing in in one tab signs in the browser’s other tabs', async () => {
  await createAccount(env.base, 'Grace', 'cobol forever');
  const first = await openPage(env.browser, `${env.base}/sse`);
  const second = await first.context().newPage();
  await second.goto(`${env.base}/websocket`);
  await waitConnected(first);
  await waitConnected(second);

  await signIn(first, 'Grace', 'cobol forever');
  // The other tab shares the cookie: it is told, asks the server, follows.
  await waitSignedIn(second, 'Grace');
  assert.equal(await composerName(second).inputValue(), 'Grace');
  assert.equal(await composerName(second).isEditable(), false);
  await waitConnected(second); // its socket opened again, with the cookie
  await sendFromPage(second, 'Grace from the other tab');
  await waitForText(second, 'Grace from the other tab');
  const stored = (await allMessages(env.base)).find((m) => m.text === 'Grace from the other tab');
  assert.deepEqual([stored.author, stored.account], ['Grace', true]);

  await signOut(second);
  await first.waitForSelector('#account-form:not([hidden])');
  assert.equal(await composerName(first).isEditable(), true);
  await first.context().close();
});

test('with --accounts-required a guest is told to sign in before writing', async () => {
  const server = await startServer([...ACCOUNT_ARGS, '--accounts-required']);
  const browser = await launchBrowser();
  try {
    const page = await openPage(browser, `${server.base}/longpoll`, { name: 'guest' });
    await waitConnected(page);
    assert.match(await accountForm(page).textContent(), /Sign in to write/);
    await sendFromPage(page, 'may I?');
    assert.match(await sendStatus(page, 'error'), /needs an account to write/);
    await signUp(page, 'Margaret', 'apollo eleven');
    await sendFromPage(page, 'now I may');
    await waitForText(page, 'now I may');
    await page.context().close();
  } finally {
    await browser.close();
    await server.stop();
  }
});
