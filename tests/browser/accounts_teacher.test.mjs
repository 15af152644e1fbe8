// The teacher, as the dashboard sees it. The server is started with
// --teacher teach. Unlocked with the token, the dashboard creates the
// teacher's account; from then on the teacher's session unlocks the lab
// by itself — after a reload, with no token anywhere in the tab — and the
// lab's changes go through on the cookie alone. A student cannot take the
// teacher's name from the header (the page says who can). The teacher sees
// who is signed in and ends a student's sessions: the student's socket is
// closed with 1008, the page carries on as a guest, and the student's next
// message under her account's name is refused with a sentence saying that
// her session ended. Signing in as the teacher from the header unlocks the
// lab on the spot; signing out locks it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ACCOUNT_ARGS,
  accountStatus,
  createAccount,
  openPage,
  putLab,
  sendFromPage,
  serverAndBrowser,
  signIn,
  signOut,
  signUp,
  submitAccountForm,
  TOKEN,
  waitConnected,
  waitSignedIn,
} from './helpers.mjs';

const TEACHER = 'teach';
const PASSWORD = 'the teacher’s password';
const env = serverAndBrowser([...ACCOUNT_ARGS, '--teacher', TEACHER]);

async function lab() {
  return (await fetch(`${env.base}/api/lab`)).json();
}

test('the dashboard creates the teacher account with the token; then the session unlocks the lab', { timeout: 60_000 }, async () => {
  const page = await openPage(env.browser, `${env.base}/dashboard`);
  await page.waitForSelector('#conn-state[data-tone="ok"]');
  assert.equal(await page.isHidden('#teacher-account'), true, 'nothing to create before the token');

  await page.fill('#token', TOKEN);
  await page.press('#token', 'Enter');
  await page.waitForSelector('#lab:not([hidden])');
  await page.waitForSelector('#teacher-account:not([hidden])');
  const create = page.getByRole('form', { name: 'Create the teacher account' });
  await create.getByLabel(`Password for ${TEACHER}`).fill(PASSWORD);
  await create.getByRole('button', { name: 'Create teacher account' }).click();

  await waitSignedIn(page, TEACHER);
  assert.equal(await page.isVisible('#account-role'), true, 'the header says "teacher"');
  await page.waitForSelector('#teacher-session:not([hidden])');
  assert.equal(await page.isHidden('#teacher-account'), true);
  assert.equal(
    await page.evaluate(() => sessionStorage.getItem('weebsockets.teacher-token')),
    null,
    'the token is forgotten: the session is the key now',
  );

  // A reload: the page is rendered for the teacher's cookie, unlocked.
  await page.reload();
  await page.waitForSelector('#conn-state[data-tone="ok"]');
  assert.equal(await page.isVisible('#lab'), true, 'the lab is unlocked without the token');
  assert.equal(await page.isHidden('#unlock'), true, 'and nobody is asked for it');
  assert.ok(!(await page.content()).includes(TOKEN));
  const sentAuthorization = [];
  page.on('request', (req) => req.headers().authorization && sentAuthorization.push(req.url()));
  await page.click('[data-preset="slow"]');
  await page.waitForSelector('#lab-status[data-tone="ok"]');
  assert.deepEqual(await lab(), { latency_ms: 800, jitter_ms: 0, outage: false }, 'changed on the cookie alone');
  assert.deepEqual(sentAuthorization, [], 'no Authorization header was sent');
  await page.click('[data-preset="calm"]');
  await page.waitForFunction(() => document.getElementById('lab-state').textContent === 'lab off');
  await page.context().close();
});

test('a student cannot create the teacher’s name from the header', async () => {
  const page = await openPage(env.browser, `${env.base}/interval`);
  await submitAccountForm(page, 'Teach', 'I would like to be the teacher', 'Create account');
  assert.equal(
    await accountStatus(page),
    'That name is reserved for the teacher. The teacher creates it on the dashboard, with the teacher token.',
  );
  await page.context().close();
});

test('the teacher sees who is signed in and ends a student’s sessions', { timeout: 60_000 }, async () => {
  await createAccount(env.base, TEACHER, PASSWORD, { token: TOKEN }); // 409 if the first test made it
  const student = await openPage(env.browser, `${env.base}/websocket`);
  await waitConnected(student);
  await signUp(student, 'Ada', 'correct horse battery');
  await waitConnected(student);

  const teacher = await openPage(env.browser, `${env.base}/dashboard`);
  await signIn(teacher, TEACHER, PASSWORD);
  await teacher.waitForSelector('#accounts-card:not([hidden])');
  const row = teacher.locator('#accounts-list tr[data-name="Ada"]');
  await row.waitFor();
  assert.deepEqual(await row.locator('th, td').allTextContents().then((cells) => cells.slice(0, 3)), ['Ada', 'student', '1']);
  assert.equal(await teacher.locator(`#accounts-list tr[data-name="${TEACHER}"] button`).count(), 0, 'no button to end one’s own');

  await teacher.getByRole('button', { name: 'End sessions of Ada' }).click();
  const ended = await teacher.waitForSelector('#accounts-status[data-tone="ok"]:not(:empty)');
  assert.match(await ended.textContent(), /Ada is signed out everywhere \(1 session ended\)/);
  await row.waitFor({ state: 'detached' });

  // The student's socket was opened with the session: the server closes it
  // with 1008, and the page reconnects — as a guest now.
  await student.waitForFunction(() => document.querySelector('[data-stat="last-close"]').textContent.includes('1008'));
  await waitConnected(student);
  await sendFromPage(student, 'still me?');
  const said = await student.waitForSelector('#send-status[data-tone="error"]:not(:empty)');
  assert.match(await said.textContent(), /your session has ended/);
  await student.waitForSelector('#account-form:not([hidden])');
  assert.match(await accountStatus(student), /Your session as Ada has ended/);
  await student.context().close();
  await teacher.context().close();
});

test('signing in as the teacher unlocks the lab at once; signing out locks it', async () => {
  await createAccount(env.base, TEACHER, PASSWORD, { token: TOKEN });
  const page = await openPage(env.browser, `${env.base}/dashboard`);
  await page.waitForSelector('#conn-state[data-tone="ok"]');
  assert.equal(await page.isHidden('#lab'), true);
  await signIn(page, TEACHER, PASSWORD);
  await page.waitForSelector('#lab:not([hidden])');
  await page.waitForSelector('#teacher-session:not([hidden])');
  await page.click('[data-preset="jitter"]');
  await page.waitForSelector('#lab-status[data-tone="ok"]');
  assert.equal((await lab()).jitter_ms, 600);
  await putLab(env.base, { latency_ms: 0, jitter_ms: 0, outage: false });

  await signOut(page);
  await page.waitForSelector('#lab[hidden]', { state: 'attached' });
  assert.equal(await page.isVisible('#unlock'), true, 'back to the token form');
  assert.equal(await page.isHidden('#accounts-card'), true);
  await page.context().close();
});
