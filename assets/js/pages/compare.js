// /compare: all five transports in one tab, reading one room. One Send
// button; each column measures how long the message took to reach it.
//
// Like every chat page, it stops reading while the tab is hidden and
// resumes each column from its own cursor when shown (see mode.js).
//
// A screen reader hears each new message once: the five lists are logs
// with their live announcements off, and one polite status line says who
// wrote what, when the first column has it.

import { onAccountChange } from '../account.js';
import { postMessage, startingPoint } from '../net.js';
import { setupComposer, TRANSPORTS } from '../chat.js';
import { MessageList } from '../ui/messages.js';
import { Meter } from '../ui/meter.js';
import { Timeline } from '../ui/timeline.js';

const announcer = document.getElementById('announce');
/** Ids already announced (bounded: only the newest matter). */
const announced = new Set();

function announce(messages) {
  for (const m of messages) {
    if (announced.has(m.id)) continue;
    announced.add(m.id);
    if (announced.size > 200) announced.delete(announced.values().next().value);
    announcer.textContent = `${m.author}: ${m.text}`;
  }
}

const columns = [...document.querySelectorAll('[data-column]')].map((el) => {
  const name = el.dataset.column;
  const push = name === 'websocket' || name === 'sse';
  const timeline = new Timeline(el.querySelector('canvas'), {
    push,
    outTicks: name === 'websocket',
    minRows: 2,
    maxRows: 4,
    compact: true,
  });
  const meter = new Meter({ stats: el, state: el.querySelector('[data-role="state"]'), timeline });
  const list = new MessageList(el.querySelector('[data-role="messages"]'));
  return { name, el, meter, timeline, list, transport: null, since: null };
});

let starting = null;

async function start() {
  starting = new AbortController();
  // One look at the room for all five; then each column reads on its own.
  let since;
  try {
    since = await startingPoint({
      keep: 20,
      signal: starting.signal,
      onRetry: (err, wait) => {
        for (const c of columns) c.meter.state(`retrying in ${(wait / 1000).toFixed(1)} s`, 'retry');
      },
    });
  } catch (err) {
    if (err.name === 'AbortError') return; // hidden while loading: start() again when shown
    throw err;
  }
  starting = null;
  for (const column of columns) column.since = since;
  if (!document.hidden) for (const column of columns) startColumn(column);
}

function startColumn(column) {
  column.transport = new TRANSPORTS[column.name]({
    since: column.since,
    every: 1000,
    probe: column.meter,
    onMessages: (messages) => {
      const at = performance.now(); // before drawing: see Meter.delivered
      column.meter.delivered(column.list.add(messages), at);
      announce(messages);
    },
  });
  column.transport.start();
}

document.addEventListener('visibilitychange', () => {
  if (document.hidden) {
    if (starting) {
      starting.abort();
      starting = null;
    }
    for (const column of columns) {
      if (!column.transport) continue;
      column.since = column.transport.since;
      column.transport.stop('tab hidden');
      column.transport = null;
      column.meter.state('paused — tab hidden', 'idle');
    }
  } else if (columns[0].since === null) {
    if (!starting) start();
  } else {
    for (const column of columns) if (!column.transport) startColumn(column);
  }
});
addEventListener('pagehide', () => {
  for (const column of columns) {
    if (!column.transport) continue;
    column.since = column.transport.since;
    column.transport.stop('page left');
    column.transport = null;
  }
});
addEventListener('pageshow', (event) => {
  if (!event.persisted || document.hidden) return;
  for (const column of columns) if (!column.transport && column.since !== null) startColumn(column);
});

// Signed in or out: the WebSocket and the event stream open again, so
// that they carry the new cookie (see mode.js).
onAccountChange(() => {
  for (const column of columns) {
    if (!column.transport || (column.name !== 'websocket' && column.name !== 'sse')) continue;
    column.since = column.transport.since;
    column.transport.stop('account changed');
    startColumn(column);
  }
});

setupComposer({
  form: document.getElementById('composer'),
  status: document.getElementById('send-status'),
  // Sent once, over HTTP; the POST shows in every column's send lane. Its
  // bytes are not counted in any column: the columns compare reading.
  send: async (author, text, key) => {
    const sentAt = performance.now();
    const bars = columns.map((c) => c.meter.sending());
    try {
      const { message } = await postMessage({ author, text, key });
      for (const [i, c] of columns.entries()) {
        bars[i].end('data');
        c.meter.sent(message.id, sentAt);
        c.list.markOwn(message.id);
      }
    } catch (err) {
      for (const [i, c] of columns.entries()) {
        bars[i].end('error');
        c.meter.sendFailed();
      }
      throw err;
    }
  },
});

// For the console (and the tests): `weebsockets.columns.interval.timeline.spans`.
window.weebsockets = {
  columns: Object.fromEntries(columns.map((c) => [c.name, c])),
};

start();
