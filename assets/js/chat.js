// What every chat page shares: the five transports by name, and the form
// that sends a message.
//
// Who the message is from: a guest types any name that is nobody's account
// (remembered in localStorage); signed in, the Name field shows the
// account's name and is read-only — the server puts that name on the
// message whatever the body says, and marks it "account": true.

import { IntervalPoller } from './transports/interval.js';
import { TimeoutPoller } from './transports/timeout.js';
import { LongPoller } from './transports/long_poll.js';
import { WebSocketClient } from './transports/websocket.js';
import { EventSourceClient } from './transports/sse.js';
import { checkAccount, currentAccount, onAccountChange } from './account.js';
import { newMessageKey } from './net.js';

/** Transport classes by page name (the `via` a message is sent with). */
export const TRANSPORTS = {
  interval: IntervalPoller,
  timeout: TimeoutPoller,
  longpoll: LongPoller,
  websocket: WebSocketClient,
  sse: EventSourceClient,
};

const NAME_KEY = 'weebsockets.name';

/**
 * Wires the Name / Message / Send form. `send(author, text, key)` does the
 * sending and resolves when the server has the message. The field is
 * emptied while it is on its way; if the send fails, the text comes back,
 * so it can simply be sent again.
 *
 * `key` is the message's idempotency key (PROTOCOL.md, "key"): a fresh one
 * for every new message, and the SAME one when the same message is sent
 * again after a failure — same author, same text. A send that timed out
 * may still have reached the server; with its key, the resend is recognised
 * there and not stored twice.
 */
export function setupComposer({ form, status, send }) {
  const name = form.elements.name;
  const text = form.elements.text;
  const lock = document.getElementById('name-lock');

  /** The guest's own name, as last typed (not the account's). */
  function guestName() {
    try {
      return localStorage.getItem(NAME_KEY) ?? '';
    } catch {
      return ''; // No storage: the name is simply not remembered.
    }
  }
  name.addEventListener('change', () => {
    if (name.readOnly) return; // the account's name is not the guest's
    try {
      localStorage.setItem(NAME_KEY, name.value.trim());
    } catch {
      // Not remembered.
    }
  });

  /** Signed in: the account's name, locked. A guest: their own, editable. */
  function showAccount(account) {
    name.readOnly = Boolean(account);
    name.value = account ? account.name : guestName();
    if (lock) lock.hidden = !account;
    if (account) {
      name.setAttribute('aria-describedby', 'name-lock');
      name.title = 'Signed in: your messages carry your account’s name. Sign out to write as a guest.';
    } else {
      name.removeAttribute('aria-describedby');
      name.removeAttribute('title');
    }
  }
  showAccount(currentAccount());
  onAccountChange((account) => {
    showAccount(account);
    showStatus(status, '', 'idle');
  });

  /** The last message that failed to send, kept with its key: pressing
   * Send again on the same text is a resend of the same message. */
  let unsent = null;

  // The fields are ordinary form inputs, so Enter in either one submits
  // the form: no key handler needed.
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const author = name.value.trim();
    const message = text.value.trim();
    if (!author) {
      showStatus(status, 'Please enter a name first.', 'error');
      name.focus({ preventScroll: true });
      return;
    }
    if (!message) {
      text.focus({ preventScroll: true });
      return;
    }
    const resend = unsent && unsent.author === author && unsent.text === message;
    const key = resend ? unsent.key : newMessageKey();
    unsent = null;
    text.value = '';
    showStatus(status, '', 'idle');
    try {
      await send(author, message, key);
    } catch (err) {
      // Give the text back, so it can be sent again — with the same key.
      unsent = { author, text: message, key };
      if (!text.value) text.value = message;
      showStatus(status, await explainSendError(err), 'error');
    }
    text.focus({ preventScroll: true });
  });
  if (!name.value) name.focus({ preventScroll: true });
  else text.focus({ preventScroll: true });
}

function showStatus(el, message, tone) {
  if (!el) return;
  el.textContent = message;
  el.dataset.tone = tone;
}

async function explainSendError(err) {
  switch (err.code) {
    case 'name_taken':
      // The server took us for a guest using an account's name. If this
      // page thought it was signed in, the session has ended meanwhile
      // (signed out elsewhere, or by the teacher): ask, and say so.
      if (currentAccount() && !(await checkAccount())) {
        return 'Not sent: your session has ended, so this page is a guest again — and that name belongs to an account. Sign in again, or choose another name.';
      }
      return `Not sent: ${err.message}.`;
    case 'sign_in_required':
      if (currentAccount()) await checkAccount();
      return 'Not sent: this class needs an account to write. Sign in (or create an account) at the top of the page.';
    case 'rate_limited':
      return `Too fast — wait ${Math.ceil((err.retryAfterMs || 1000) / 1000)} s and send again.`;
    case 'outage':
      return 'Not sent: the server is down (the lab’s outage is on). Try again when it is back.';
    case 'network':
    case 'timeout':
      return 'Not sent: the server could not be reached.';
    default:
      return `Not sent: ${err.message}`;
  }
}
