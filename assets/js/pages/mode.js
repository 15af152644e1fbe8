// One chat page, one transport: /interval, /timeout, /longpoll, /websocket,
// /sse. This file only wires things together; the transport itself is in
// ../transports/<name>.js.

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
  });
  transport.start();
  root.dataset.running = 'true';
}

/** Restarts are numbered, so that a slow restart that was overtaken by a
 * newer one (the switch flicked twice) does not start a second transport. */
let generation = 0;

/** Starts over: the last 50 messages, fresh counters. */
async function restartFromScratch() {
  const mine = ++generation;
  transport?.stop();
  transport = null;
  list.reset({ naive: settings().naive });
  meter.reset();
  timeline.clear();
  meter.state('loading…', 'wait');
  const since = await startingPoint({
    onRetry: (err, wait) => {
      meter.state(`retrying in ${(wait / 1000).toFixed(1)} s`, 'retry');
      meter.log(`could not load the room (${err.message}) — retry in ${(wait / 1000).toFixed(1)} s`, 'error');
    },
  });
  if (mine !== generation) return;
  meter.log(`starting after message #${since} (the last 50 at most)`, 'info');
  startTransport(since);
}

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
    if (!transport) return; // still starting: it will read the new value
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
naiveSwitch?.addEventListener('change', () => {
  const label = document.querySelector('[data-stat-label="duplicates"]');
  label.textContent = naiveSwitch.checked ? 'Duplicates shown' : 'Duplicates dropped';
  meter.log(naiveSwitch.checked ? 'naive client: no de-duplication, no ordering' : 'careful client', 'info');
  restartFromScratch();
});
if (naiveSwitch?.checked) document.querySelector('[data-stat-label="duplicates"]').textContent = 'Duplicates shown';
$('reset-stats').addEventListener('click', () => {
  meter.reset();
  meter.log('counters reset', 'info');
});

// --- sending ---

setupComposer({
  form: $('composer'),
  status: $('send-status'),
  send: async (author, text) => {
    const sentAt = performance.now();
    const bar = meter.sending(!transport?.send);
    try {
      // The WebSocket page sends a frame on its open socket; every other
      // page sends an HTTP POST.
      const id = transport?.send
        ? await transport.send(author, text)
        : (await postMessage({ author, text, via: name })).id;
      bar.end('data');
      meter.sent(id, sentAt);
      list.markOwn(id);
    } catch (err) {
      bar.end('error');
      meter.sendFailed();
      throw err;
    }
  },
});

restartFromScratch();
