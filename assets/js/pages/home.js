// The lesson map: live "who is connected" per mode, from GET /api/stats —
// while the tab is visible; a hidden tab stops asking until it is shown.

import { backoff, request } from '../net.js';

const EVERY_MS = 2000;
const status = document.getElementById('stats-status');
let failures = 0;
let parked = false;

async function refresh() {
  if (document.hidden) {
    parked = true;
    return;
  }
  try {
    const { body } = await request('/api/stats', { timeoutMs: 5000 });
    for (const el of document.querySelectorAll('[data-clients]')) {
      // `clients` = distinct tabs seen on that mode in the last 10 s. Older
      // servers do not send it: then we show a dash.
      const clients = body.transports[el.dataset.clients]?.clients;
      el.querySelector('[data-count]').textContent = clients == null ? '–' : String(clients);
      el.classList.toggle('is-live', Number(clients) > 0);
    }
    status.textContent = `${body.room.last_id.toLocaleString()} messages in the room`;
    failures = 0;
    setTimeout(refresh, EVERY_MS);
  } catch (err) {
    failures += 1;
    status.textContent = 'Server counters: unreachable, retrying…';
    setTimeout(refresh, backoff(failures, err.retryAfterMs));
  }
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && parked) {
    parked = false;
    refresh();
  }
});

refresh();
