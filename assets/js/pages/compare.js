// /compare: all five transports in one tab, reading one room. One Send
// button; each column measures how long the message took to reach it.

import { postMessage, startingPoint } from '../net.js';
import { setupComposer, TRANSPORTS } from '../chat.js';
import { MessageList } from '../ui/messages.js';
import { Meter } from '../ui/meter.js';
import { Timeline } from '../ui/timeline.js';

const columns = [...document.querySelectorAll('[data-column]')].map((el) => {
  const name = el.dataset.column;
  const push = name === 'websocket' || name === 'sse';
  const timeline = new Timeline(el.querySelector('canvas'), {
    push,
    outTicks: name === 'websocket',
    rows: 4,
    compact: true,
  });
  const meter = new Meter({ stats: el, state: el.querySelector('[data-role="state"]'), timeline });
  const list = new MessageList(el.querySelector('[data-role="messages"]'));
  return { name, el, meter, list, transport: null };
});

async function start() {
  // One look at the room for all five; then each column reads on its own.
  const since = await startingPoint({
    keep: 20,
    onRetry: (err, wait) => {
      for (const c of columns) c.meter.state(`retrying in ${(wait / 1000).toFixed(1)} s`, 'retry');
    },
  });
  for (const column of columns) {
    column.transport = new TRANSPORTS[column.name]({
      since,
      every: 1000,
      probe: column.meter,
      onMessages: (messages) => {
        const at = performance.now(); // before drawing: see Meter.delivered
        column.meter.delivered(column.list.add(messages), at);
      },
    });
    column.transport.start();
  }
}

setupComposer({
  form: document.getElementById('composer'),
  status: document.getElementById('send-status'),
  // Sent once, over HTTP; the POST shows in every column's send lane.
  send: async (author, text) => {
    const sentAt = performance.now();
    const bars = columns.map((c) => c.meter.sending());
    try {
      const { id } = await postMessage({ author, text });
      for (const [i, c] of columns.entries()) {
        bars[i].end('data');
        c.meter.sent(id, sentAt);
        c.list.markOwn(id);
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

start();
