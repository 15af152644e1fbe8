// Shared by every browser test: start the real server binary, launch
// headless Chromium, and talk to the API directly.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');

export const TOKEN = 'test-token';

/** The server binary: $WEEBSOCKETS_BIN, or the debug build. */
export function serverBinary() {
  const bin = process.env.WEEBSOCKETS_BIN ?? path.join(repo, 'target', 'debug', 'weebsockets');
  if (!existsSync(bin)) {
    throw new Error(`server binary not found at ${bin}: run \`cargo build\` or set WEEBSOCKETS_BIN`);
  }
  return bin;
}

/**
 * Starts the server with a known teacher token — by default on a free port
 * with an in-memory room — and resolves once it has printed its address.
 * `bind` and `db` let a test restart a server where it was.
 */
export function startServer(extraArgs = [], { bind = '127.0.0.1:0', db = ':memory:' } = {}) {
  const args = ['--bind', bind, '--db', db, '--teacher-token', TOKEN, '--workers', '2', ...extraArgs];
  const child = spawn(serverBinary(), args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not print its address within 15 s:\n${output}`));
    }, 15_000);
    const onData = (chunk) => {
      output += chunk;
      const match = output.match(/http:\/\/127\.0\.0\.1:(\d+)\//);
      if (match) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.stdout.resume(); // keep draining so the pipe never fills
        const base = `http://127.0.0.1:${match[1]}`;
        resolve({
          base,
          port: Number(match[1]),
          stop: () => stopProcess(child),
        });
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited early (code ${code}):\n${output}`));
    });
  });
}

function stopProcess(child) {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Headless Chromium from Debian's package (never a downloaded build). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/**
 * The setup most test files share: one server (posts not rate-limited, so a
 * test can post as fast as it likes) and one headless browser for all the
 * file's tests, both stopped when the file is done. Call it at the top level
 * of a test file; the returned object's `base` (the server's URL), `server`
 * and `browser` are set once the file's `before` hook has run.
 */
export function serverAndBrowser(extraArgs = ['--post-rate', '0', '--post-rate-per-ip', '0']) {
  const env = { base: undefined, server: undefined, browser: undefined };
  before(async () => {
    env.server = await startServer(extraArgs);
    env.base = env.server.base;
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}

/**
 * A page in its own browser context (its own cookies, storage and — the
 * point for us — its own six HTTP/1.1 connections per host), that records
 * console errors and CSP violations so a test can assert there were none.
 */
export async function openPage(browser, url, { name, viewport = { width: 1280, height: 860 } } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.problems.push(`console: ${msg.text()}`);
  });
  page.on('pageerror', (err) => page.problems.push(`pageerror: ${err.message}`));
  if (name) {
    await context.addInitScript((n) => localStorage.setItem('weebsockets.name', n), name);
  }
  await page.goto(url);
  return page;
}

/** Console errors that are not expected. Errors about refused connections
 * are what an outage looks like, so a test can opt to allow them. */
export function unexpectedProblems(page, { allowNetworkErrors = false } = {}) {
  return page.problems.filter((p) => {
    if (!allowNetworkErrors) return true;
    return !/503|Service Unavailable|ERR_|WebSocket connection|EventSource|Failed to load resource/i.test(p);
  });
}

// ----- the API, directly -----

export async function post(base, author, text, via) {
  const res = await fetch(`${base}/api/messages`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(via ? { author, text, via } : { author, text }),
  });
  return { status: res.status, body: await res.json() };
}

export async function putLab(base, change) {
  const res = await fetch(`${base}/api/lab`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(change),
  });
  if (res.status !== 200) throw new Error(`PUT /api/lab answered ${res.status}`);
  return res.json();
}

/** The whole log, in id order. */
export async function allMessages(base) {
  const res = await fetch(`${base}/api/messages?since=0&limit=500`);
  return (await res.json()).messages;
}

/** Ids shown in a page's message list, top to bottom. */
export function shownIds(page, selector = '#messages') {
  return page.$$eval(`${selector} > li`, (items) => items.map((li) => Number(li.dataset.id)));
}

/** Waits until a page's message list shows a message with this text. */
export function waitForText(page, text, { selector = '#messages', timeout = 15_000 } = {}) {
  return page.waitForFunction(
    ([sel, t]) => [...document.querySelectorAll(`${sel} .msg-text`)].some((el) => el.textContent === t),
    [selector, text],
    { timeout },
  );
}

/** Types a message into a page's composer and presses Enter. */
export async function sendFromPage(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

/** Waits until a transport page has connected (its state pill says ok). */
export function waitConnected(page, selector = '#conn-state') {
  return page.waitForSelector(`${selector}[data-tone="ok"]`, { timeout: 15_000 });
}

// ----- the page's own model -----

/**
 * Plays the browser's part of hiding and showing a tab. Headless Chromium
 * has no hidden tabs — every page reports "visible", even in a minimised
 * window — so the test sets document.visibilityState and fires the
 * visibilitychange event, as a real browser does when the tab goes to the
 * background or comes back.
 */
export function setHidden(page, hidden) {
  return page.evaluate((h) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

/** The raw number behind a stat (its data-value), not its formatted text. */
export async function statValue(page, name, scope = '') {
  const value = await page.getAttribute(`${scope} [data-stat="${name}"]`.trim(), 'data-value');
  return value === null ? null : Number(value);
}

// ----- accounts -----

/** Flags for a server with accounts in a test: cheap Argon2 (a hidden
 * flag, for test suites only), posts not rate-limited. */
export const ACCOUNT_ARGS = ['--insecure-fast-passwords', '--post-rate', '0'];

/** The header's Name / Password form (every page has one). */
export function accountForm(page) {
  return page.getByRole('form', { name: 'Account' });
}

/** The composer's Name field — not the header's, which is labelled Name too. */
export function composerName(page) {
  return page.getByRole('form', { name: 'Send a message' }).getByLabel('Name', { exact: true });
}

/** Fills the header's form and presses "Create account" or "Sign in"
 * (`button`); does not wait for the answer. The status line is emptied
 * first, so that accountStatus() reads this answer, not the last one. */
export async function submitAccountForm(page, name, password, button) {
  await page.evaluate(() => {
    const status = document.getElementById('account-status');
    status.textContent = '';
    delete status.dataset.tone;
  });
  const form = accountForm(page);
  await form.getByLabel('Name', { exact: true }).fill(name);
  await form.getByLabel('Password', { exact: true }).fill(password);
  await form.getByRole('button', { name: button, exact: true }).click();
}

/** Creates an account from the header and waits until the page says who it is. */
export async function signUp(page, name, password) {
  await submitAccountForm(page, name, password, 'Create account');
  await waitSignedIn(page, name);
}

/** Signs in from the header and waits until the page says who it is. */
export async function signIn(page, name, password) {
  await submitAccountForm(page, name, password, 'Sign in');
  await waitSignedIn(page, name);
}

/** Presses the header's "Sign out" and waits for the form to come back. */
export async function signOut(page) {
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForSelector('#account-form:not([hidden])');
}

/** Waits until the header says "Signed in as `name`". */
export function waitSignedIn(page, name) {
  return page.waitForFunction(
    (n) => !document.getElementById('account-me').hidden && document.getElementById('account-who').textContent === n,
    name,
    { timeout: 15_000 },
  );
}

/** Waits for the header's status line to say something in `tone`, and
 * returns what it says. */
export async function accountStatus(page, tone = 'error') {
  const el = await page.waitForSelector(`#account-status[data-tone="${tone}"]:not(:empty)`, { timeout: 15_000 });
  return el.textContent();
}

/** POST /api/accounts from the test itself (`token`: the teacher token). */
export async function createAccount(base, name, password, { token } = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${base}/api/accounts`, { method: 'POST', headers, body: JSON.stringify({ name, password }) });
  return { status: res.status, body: await res.json() };
}
