// One chat page, one transport: /interval, /timeout, /longpoll, /websocket,
// /sse. This file only wires things together; the transport itself is in
// ../transports/<name>.js.
//
// A page that nobody looks at stops reading: when the tab is hidden (or
// the page is put in the back/forward cache) the transport stops, and when
// it is shown again a new one starts from the same cursor, so nothing is
// lost or shown twice. A background tab would otherwise keep polling until
// the browser throttles its timers, and its numbers would stop meaning
// anything; an open WebSocket would keep the page out of the back/forward
// cache. (?background=1 keeps a hidden tab reading, for the lesson's
// six-connection demo.)

import { onAccountChange } from '../account.js';
import { postMessage, startingPoint } from '../net.js';
import { setupComposer, TRANSPORTS } from '../chat.js';
import { MessageList } from '../ui/messages.js';
import { Meter } from '../ui/meter.js';
import { Timeline } from '../ui/timeline.js';

const root = document.getElementById('mode-root');
const name = root.dataset.transport;
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const push = name === 'websocket' || name === 'sse';
const timeline = new Timeline($('timeline'), { push, outTicks: name === 'websocket' });
const meter = new Meter({
  stats: $('stats'),
  state: $('conn-state'),
  log: $('log'),
  events: $('ws-events'),
  readyState: $('ready-state'),
  timeline,
});
const naiveSwitch = $('naive');
const list = new MessageList($('messages'), {
  naive: false,
  empty: $('messages-empty'),
  counter: $('message-count'),
});

// Settings: from the controls, which the URL may preset (?every=100&naive=1),
// so the teacher can hand out a link to the broken version.
const everyInput = $('every');
const holdSelect = $('hold');
if (everyInput && params.has('every')) everyInput.value = params.get('every');
if (naiveSwitch && params.get('naive') === '1') naiveSwitch.checked = true;
const settings = () => ({
  every: everyInput ? Number(everyInput.value) : undefined,
  hold: holdSelect ? Number(holdSelect.value) : undefined,
  naive: naiveSwitch?.checked ?? false,
});

let transport = null;
/** Set while the page is hidden: the cursor to resume from. */
let paused = null;

/** (Re)starts the transport from `since` with the current settings. */
function startTransport(since) {
  const { every, hold, naive } = settings();
  transport = new TRANSPORTS[name]({
    since,
    every,
    hold,
    naive,
    probe: meter,
    onMessages: (messages) => {
      const at = performance.now(); // before drawing: see Meter.delivered
      meter.delivered(list.add(messages), at);
    },
    onReadyState: (state) => meter.showReadyState(state),
    // The WebSocket page shows which scheme this page's socket uses.
    onUrl: (url) => {
      if ($('ws-url')) $('ws-url').textContent = url.replace(/[?].*$/, '');
      if ($('page-url')) $('page-url').textContent = location.origin;
    },
  });
  transport.start();
  root.dataset.running = 'true';
}

/** Restarts are numbered, so that a slow restart that was overtaken by a
 * newer one (the switch flicked twice) does not start a second transport;
 * and the older one's start-up retries are cancelled, so they cannot
 * overwrite the newer one's status. */
let generation = 0;
let starting = null; // aborts the start-up request and its retries

/** Starts over: the last 50 messages, fresh counters. */
async function restartFromScratch() {
  const mine = ++generation;
  starting?.abort();
  starting = new AbortController();
  transport?.stop();
  transport = null;
  paused = null;
  list.reset({ naive: settings().naive });
  meter.reset();
  timeline.clear();
  meter.state('loading…', 'wait');
  let since;
  try {
    since = await startingPoint({
      signal: starting.signal,
      onRetry: (err, wait) => {
        if (mine !== generation) return;
        meter.retry();
        meter.state(`retrying in ${(wait / 1000).toFixed(1)} s`, 'retry');
        meter.log(`could not load the room (${err.message}) — retry in ${(wait / 1000).toFixed(1)} s`, 'error');
      },
    });
  } catch (err) {
    if (err.name === 'AbortError') return; // a newer start, or the tab was hidden
    throw err;
  }
  if (mine !== generation) return;
  meter.log(`starting after message #${since} (the last 50 at most)`, 'info');
  if (document.hidden && !background) {
    pauseAt(since, 'tab hidden');
    return;
  }
  startTransport(since);
}

// --- hidden, shown, left, back ---

function pauseAt(since, why) {
  paused = { since };
  meter.state(`paused — ${why}`, 'idle');
  meter.log(`${why}: stopped reading at #${since}; will resume from there`, 'info');
}

function pause(why) {
  if (paused) return;
  if (!transport) {
    // Still loading the room: cancel that too, and start over when shown.
    if (starting && !starting.signal.aborted) {
      starting.abort();
      paused = { since: null };
      meter.state(`paused — ${why}`, 'idle');
    }
    return;
  }
  const since = transport.since;
  transport.stop(why);
  transport = null;
  pauseAt(since, why);
}

function resume(why) {
  if (!paused) return;
  const { since } = paused;
  paused = null;
  if (since === null) {
    restartFromScratch();
    return;
  }
  meter.log(`${why}: resuming after #${since}`, 'info');
  startTransport(since);
}

// ?background=1 keeps reading while hidden: for the lesson's six-connection
// demo, seven tabs that each hold a long poll.
const background = params.get('background') === '1';
document.addEventListener('visibilitychange', () => {
  if (background) return;
  if (document.hidden) pause('tab hidden');
  else resume('tab shown');
});
// Leaving the page: close everything, so the page can go into the
// back/forward cache (an open socket keeps it out). pageshow with
// `persisted` means it came back from there.
addEventListener('pagehide', () => pause('page left'));
addEventListener('pageshow', (event) => {
  if (event.persisted && !document.hidden) resume('back from the back/forward cache');
});

// --- signed in, signed out ---

// A WebSocket or an event stream is who it was when it opened: the cookie
// went with its first request only. After signing in or out, open it again
// so that it carries the new cookie. (Polls need nothing: each one carries
// the cookie of its moment.) Signing out also ends the session on the
// server, which closes the old socket with 1008 by itself.
onAccountChange((account) => {
  if (!push || !transport) return; // still starting, or paused: it opens with the new cookie
  const since = transport.since;
  transport.stop(account ? 'signed in' : 'signed out');
  meter.log(`${account ? `signed in as ${account.name}` : 'signed out'}: reconnecting, so that the connection carries the new cookie`, 'info');
  startTransport(since);
});

// --- controls ---

function showEvery() {
  $('every-out').textContent = `${everyInput.value} ms`;
}
if (everyInput) {
  showEvery();
  everyInput.addEventListener('input', showEvery);
  // Applied when the slider is let go: stop, then start again from the same
  // cursor with the new interval.
  everyInput.addEventListener('change', () => {
    if (!transport) return; // still starting (or paused): it will read the new value
    const since = transport.since;
    transport.stop();
    meter.log(`interval set to ${everyInput.value} ms`, 'info');
    startTransport(since);
  });
}
holdSelect?.addEventListener('change', () => {
  if (!transport) return;
  const since = transport.since;
  transport.stop();
  meter.log(`hold set to ${holdSelect.value} s`, 'info');
  startTransport(since);
});

/** The list's labels follow the switch: a careful list drops duplicates
 * and puts stragglers back in place; a naive one shows both. */
function showNaiveLabels() {
  const naive = naiveSwitch?.checked ?? false;
  const dup = document.querySelector('[data-stat-label="duplicates"]');
  if (dup) dup.textContent = naive ? 'Duplicates shown' : 'Duplicates dropped';
  const late = document.querySelector('[data-stat-label="misplaced"]');
  if (late) late.textContent = naive ? 'Shown out of order' : 'Put back in order';
}
naiveSwitch?.addEventListener('change', () => {
  showNaiveLabels();
  meter.log(naiveSwitch.checked ? 'naive client: no de-duplication, no ordering' : 'careful client', 'info');
  restartFromScratch();
});
showNaiveLabels();
$('reset-stats').addEventListener('click', () => {
  meter.reset();
  meter.log('counters reset', 'info');
});

// --- sending ---

setupComposer({
  form: $('composer'),
  status: $('send-status'),
  send: async (author, text, key) => {
    const sentAt = performance.now();
    const bar = meter.sending(!transport?.send);
    try {
      // The WebSocket page sends a frame on its open socket; every other
      // page sends an HTTP POST.
      let id;
      if (transport?.send) {
        id = await transport.send(author, text, key);
        bar.end('data');
      } else {
        const { message, wire } = await postMessage({ author, text, via: name, key });
        id = message.id;
        bar.end('data', wire);
      }
      meter.sent(id, sentAt);
      list.markOwn(id);
    } catch (err) {
      bar.end('error', err.wire);
      meter.sendFailed();
      throw err;
    }
  },
});

// For the console (and the tests): the live objects behind the page.
// Try `weebsockets.transport.since`, or `weebsockets.timeline.spans`.
window.weebsockets = {
  get transport() {
    return transport;
  },
  meter,
  timeline,
  list,
};

restartFromScratch();
