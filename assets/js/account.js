// Who this browser is — and the header's Name / Password form that changes
// it, on every page.
//
// The session is a cookie the page cannot read (HttpOnly: a script injected
// into the page could not steal it either). The browser simply sends it
// with every request to this server — this page's own GET, every poll, the
// event stream, the WebSocket's upgrade — and the server looks it up. So
// the page learns who it is from the server: the header was rendered for
// the cookie the page's GET carried (data-name on #account), and later
// GET /api/session says so again.
//
//   POST   /api/accounts {name, password}  create an account, signed in
//   POST   /api/session  {name, password}  sign in (a new session id)
//   GET    /api/session                    who am I? (401: a guest)
//   DELETE /api/session                    sign out, on the server too
//
// A connection that is already open keeps the identity it was opened with:
// the cookie went with its first request, and only then. So when this page
// signs in or out, it tells the rest of the page ('weebsockets:account' on
// document, see onAccountChange) and a WebSocket or an event stream is
// opened again, carrying the new cookie. The server, for its part, closes
// the sockets of a session that ended (1008) — the page then reconnects,
// as a guest.

import { request } from './net.js';

/** The event the rest of the page listens to (onAccountChange). */
const EVENT = 'weebsockets:account';
/** Other tabs of this browser share the cookie: they are told to look again. */
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('weebsockets.account') : null;
/** Hashing a password takes the server tens of milliseconds, and a class
 * signing in at once queues: give it time. */
const SIGN_IN_TIMEOUT_MS = 20_000;

const root = document.getElementById('account');
const form = document.getElementById('account-form');
const me = document.getElementById('account-me');
const status = document.getElementById('account-status');

/** {name, role} while signed in, null for a guest. */
let current = root?.dataset.name ? { name: root.dataset.name, role: root.dataset.role ?? 'student' } : null;

/** The account this page is signed in as ({name, role}), or null. */
export function currentAccount() {
  return current;
}

/**
 * Calls `listener(account, previous)` whenever this page signs in or out
 * (here, in another tab of this browser, or because the server ended the
 * session). `account` is {name, role} or null.
 */
export function onAccountChange(listener) {
  document.addEventListener(EVENT, (event) => listener(event.detail.account, event.detail.previous));
}

/**
 * Sets who this page is and tells the page if that changed. `announce`:
 * this tab signed in or out itself, so the other tabs are told to look.
 */
function become(account, { announce = false } = {}) {
  const previous = current;
  const same = previous?.name === account?.name && previous?.role === account?.role;
  current = account ? { name: account.name, role: account.role } : null;
  show();
  if (same) return;
  if (announce) channel?.postMessage('changed');
  document.dispatchEvent(new CustomEvent(EVENT, { detail: { account: current, previous } }));
}

/**
 * Asks the server who this browser is (GET /api/session) and updates the
 * page if that changed — the session may have ended meanwhile: signed out
 * in another tab, expired, or ended by the teacher. Resolves to the
 * account or null.
 */
export async function checkAccount() {
  const before = current;
  try {
    const { body } = await request('/api/session', { timeoutMs: 10_000 });
    become(body);
  } catch (err) {
    if (err.status === 401) become(null);
    // No answer at all: we do not know, so nothing changes.
  }
  // Changed behind this page's back: say so where the header said otherwise.
  if (before && !current) say(`Your session as ${before.name} has ended: this page is a guest now.`, 'error');
  else if (current && current.name !== before?.name) say(`Signed in as ${current.name} (in another tab).`, 'ok');
  return current;
}

/**
 * Creates an account and signs this browser in as it. `token` is the
 * teacher token, for the `--teacher` name (the dashboard sends it).
 * Rejects with the server's RequestError.
 */
export async function createAccount(name, password, { token } = {}) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const { body } = await request('/api/accounts', {
    method: 'POST',
    json: { name, password },
    headers,
    timeoutMs: SIGN_IN_TIMEOUT_MS,
  });
  become(body, { announce: true });
  return body;
}

async function signIn(name, password) {
  const { body } = await request('/api/session', { method: 'POST', json: { name, password }, timeoutMs: SIGN_IN_TIMEOUT_MS });
  become(body, { announce: true });
  return body;
}

async function signOut() {
  await request('/api/session', { method: 'DELETE', timeoutMs: 10_000 });
  become(null, { announce: true });
}

/** The server's `error` is a sentence without its capital and full stop. */
export function sentence(text) {
  const s = String(text ?? '').trim();
  if (!s) return '';
  return s[0].toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.');
}

/** What to tell the person when creating an account or signing in failed. */
function explain(err) {
  if (err.code === 'network' || err.code === 'timeout') return 'The server could not be reached. Try again in a moment.';
  if (err.code === 'name_reserved') {
    // The server's sentence speaks to scripts (the Authorization header).
    return 'That name is reserved for the teacher. The teacher creates it on the dashboard, with the teacher token.';
  }
  // name_taken, bad_credentials, invalid_name, invalid_password, and
  // rate_limited (its sentence says how long to wait): the server's own words.
  return sentence(err.message);
}

function say(message, tone) {
  if (!status) return;
  status.textContent = message;
  status.dataset.tone = tone;
}

/** Shows the half of the header that fits: the form, or who you are. */
function show() {
  if (!root) return;
  form.hidden = Boolean(current);
  me.hidden = !current;
  document.getElementById('account-who').textContent = current?.name ?? '';
  document.getElementById('account-role').hidden = current?.role !== 'teacher';
  // Anything else on the page that says who you are (the WebSocket page's lesson).
  for (const el of document.querySelectorAll('[data-show-account]')) el.textContent = current?.name ?? 'a guest';
  if (current) {
    root.dataset.name = current.name;
    root.dataset.role = current.role;
  } else {
    delete root.dataset.name;
    delete root.dataset.role;
  }
}

function busy(on) {
  for (const el of [...form.elements, document.getElementById('sign-out')]) el.disabled = on;
}

if (form) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault(); // the script sends JSON; the form's action is only a fallback
    const create = event.submitter?.value === 'create';
    const name = form.elements.name.value.trim();
    const password = form.elements.password.value; // taken as typed: not trimmed
    say(create ? 'Creating the account…' : 'Signing in…', 'idle');
    busy(true);
    try {
      const account = create ? await createAccount(name, password) : await signIn(name, password);
      form.elements.password.value = '';
      say(create ? `Account created: you are ${account.name}.` : `Signed in as ${account.name}.`, 'ok');
      document.getElementById('sign-out').focus({ preventScroll: true });
    } catch (err) {
      say(explain(err), 'error');
      (err.code === 'invalid_password' || err.code === 'bad_credentials' ? form.elements.password : form.elements.name).focus({
        preventScroll: true,
      });
    } finally {
      busy(false);
    }
  });

  document.getElementById('sign-out').addEventListener('click', async () => {
    busy(true);
    try {
      await signOut();
      say('Signed out: you are a guest again.', 'ok');
      form.elements.name.focus({ preventScroll: true });
    } catch (err) {
      say(`Not signed out: ${explain(err)}`, 'error');
    } finally {
      busy(false);
    }
  });
}

// Another tab of this browser signed in or out: the cookie is shared, so
// this tab is now that too. Ask the server rather than trust the message.
channel?.addEventListener('message', () => {
  checkAccount();
});
// Back from the back/forward cache, the page is as it was when left — the
// session may not be. A signed-in tab that comes back into view checks too:
// its session may have ended while nobody looked (a guest's cannot start
// behind its back: signing in here or in another tab says so).
addEventListener('pageshow', (event) => {
  if (event.persisted) checkAccount();
});
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && current) checkAccount();
});
