// /dashboard: the server's counters, live, the network lab, and who is
// signed in.
//
// The counters come from GET /api/stats once a second (with setTimeout, of
// course: one request at a time), and only while the tab is visible. Rates
// are the difference between two snapshots divided by the time between them.
//
// The server's byte counters count bodies and frames only — no HTTP heads
// (src/stats.rs) — and the page says so next to every byte figure: on the
// wire, each poll also carries a request head and a response head of a few
// hundred bytes, which the chat pages' own counters include.
//
// The teacher is whoever sends the teacher token (Authorization: Bearer,
// for scripts — and pasted here) or has a teacher's session: signed in as
// the --teacher account, the cookie rides on every request and the lab is
// unlocked without the token.

import { checkAccount, createAccount, currentAccount, onAccountChange, sentence } from '../account.js';
import { backoff, request } from '../net.js';
import { LineChart } from '../ui/chart.js';
import { formatBytes, formatCount, formatDuration } from '../ui/format.js';

const TRANSPORTS = ['interval', 'timeout', 'longpoll', 'websocket', 'sse'];
const STATS_EVERY_MS = 1000;
const TOKEN_KEY = 'weebsockets.teacher-token';

const $ = (id) => document.getElementById(id);
const state = $('conn-state');

let metric = 'requests';
const chart = new LineChart($('chart'), {
  series: TRANSPORTS,
  points: 60,
  format: (v) => (metric === 'bytes_sent' ? formatBytes(Math.round(v)) : v.toFixed(v < 10 && v > 0 ? 1 : 0)),
});
/** Snapshots of /api/stats, oldest first (one a second, a minute's worth). */
const snapshots = [];
/** Rates are measured over this many snapshots (seconds): per-second
 * differences jump around with the timing of each poll. */
const SMOOTH = 3;

// ----- the stats feed -----

let failures = 0;
let timer = null;
/** True while the tab is hidden and the feed waits to be shown again. */
let parked = false;

function later(ms) {
  clearTimeout(timer);
  timer = setTimeout(refresh, ms);
}

async function refresh() {
  if (document.hidden) {
    parked = true;
    state.textContent = 'paused (tab hidden)';
    state.dataset.tone = 'idle';
    return;
  }
  try {
    const { body } = await request('/api/stats', { timeoutMs: 5000 });
    snapshots.push({ at: performance.now(), stats: body });
    if (snapshots.length > 64) snapshots.shift();
    if (snapshots.length > 1) {
      chart.push(ratesAt(snapshots.length - 1, metric));
      showRates();
    }
    show(body);
    failures = 0;
    state.textContent = 'live';
    state.dataset.tone = 'ok';
    later(STATS_EVERY_MS);
  } catch (err) {
    failures += 1;
    const wait = backoff(failures, err.retryAfterMs);
    state.textContent = `retrying in ${(wait / 1000).toFixed(1)} s`;
    state.dataset.tone = 'retry';
    later(wait);
  }
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && parked) {
    parked = false;
    refresh();
  }
});

/** Per-second rate of `field` for every transport, at snapshot `i`. */
function ratesAt(i, field, names = TRANSPORTS) {
  const now = snapshots[i];
  const then = snapshots[Math.max(0, i - SMOOTH)];
  const seconds = (now.at - then.at) / 1000;
  const rates = {};
  for (const name of names) {
    const delta = now.stats.transports[name][field] - then.stats.transports[name][field];
    rates[name] = seconds > 0 ? Math.max(0, delta / seconds) : 0;
  }
  return rates;
}

function replot() {
  chart.clear();
  for (let i = 1; i < snapshots.length; i += 1) chart.push(ratesAt(i, metric));
}

function showRates() {
  const last = snapshots.length - 1;
  const all = [...TRANSPORTS, 'api'];
  const sum = (rates) => Object.values(rates).reduce((a, b) => a + b, 0);
  kpi('rps', sum(ratesAt(last, 'requests', all)).toFixed(1));
  kpi('bps', formatBytes(Math.round(sum(ratesAt(last, 'bytes_sent', all)))));
}

function kpi(name, value) {
  for (const el of document.querySelectorAll(`[data-kpi="${name}"]`)) el.textContent = value;
}

function show(stats) {
  const t = stats.transports;
  const all = Object.values(t);
  const sum = (field) => all.reduce((total, x) => total + (x[field] ?? 0), 0);
  kpi('last_id', formatCount(stats.room.last_id));
  kpi('posted', formatCount(stats.room.messages_posted));
  // Connections of every log: the chat's, the document's and its
  // presence's (a document editor holds two: its edits and the carets).
  const logs = [t, stats.doc?.transports, stats.doc?.presence].filter(Boolean);
  const across = (transport, field) => logs.reduce((total, l) => total + (l[transport]?.[field] ?? 0), 0);
  kpi('open', formatCount(across('websocket', 'open') + across('sse', 'open') + across('longpoll', 'open')));
  kpi('held', formatCount(across('longpoll', 'open')));
  kpi('held_max', formatCount(across('longpoll', 'open_max')));
  kpi('last_rev', formatCount(stats.doc?.last_rev ?? 0));
  kpi('ops', formatCount(stats.doc?.ops_received ?? 0));
  kpi('bytes', formatBytes(sum('bytes_sent')));
  const answers = sum('requests');
  kpi('empty_pct', answers ? `${Math.round((100 * sum('empty_responses')) / answers)}%` : '0%');
  kpi('uptime', formatDuration(stats.uptime_ms));
  kpi('rejected', formatCount(stats.room.posts_rejected));
  kpi('limited', formatCount(stats.room.posts_rate_limited));

  for (const row of document.querySelectorAll('#counters tbody tr')) {
    const s = t[row.dataset.transport];
    if (!s) continue;
    const cell = (col, value) => {
      row.querySelector(`[data-col="${col}"]`).textContent = value;
    };
    // `clients` is new in the server; show a dash until it is there.
    cell('clients', s.clients == null ? '–' : formatCount(s.clients));
    cell('requests', formatCount(s.requests));
    cell('empty', s.requests ? `${formatCount(s.empty_responses)} (${Math.round((100 * s.empty_responses) / s.requests)}%)` : '0');
    cell('delivered', formatCount(s.messages_delivered));
    cell('bytes', formatBytes(s.bytes_sent));
    cell('open', `${formatCount(s.open)} (${formatCount(s.open_max)})`);
    cell('posted', formatCount(s.messages_received));
    cell('errors', formatCount(s.errors));
  }
  showLab(stats.lab);
}

for (const button of document.querySelectorAll('[data-metric]')) {
  button.addEventListener('click', () => {
    metric = button.dataset.metric;
    for (const b of document.querySelectorAll('[data-metric]')) b.setAttribute('aria-pressed', String(b === button));
    replot();
  });
}

// ----- the lab -----
//
// Unlocked one of two ways. A teacher's session: nothing to paste, the
// cookie goes with every request. Or the token: it lives in a variable
// (and, for reloads, in sessionStorage, which dies with the tab), sent as
// an Authorization header — never put in the page, never in a URL.

let token = null;
try {
  token = sessionStorage.getItem(TOKEN_KEY);
} catch {
  token = null;
}
const unlockForm = $('unlock');
const labForm = $('lab');
const labStatus = $('lab-status');
let editing = false; // while the teacher drags a slider, do not overwrite it

/** True while this page is signed in as the teacher. */
const teacherSession = () => currentAccount()?.role === 'teacher';
/** How the teacher's requests prove it: the token's header, or nothing
 * (the session cookie goes by itself). */
const teacherHeaders = () => (token && !teacherSession() ? { Authorization: `Bearer ${token}` } : {});

function say(message, tone) {
  labStatus.textContent = message;
  labStatus.dataset.tone = tone;
}

async function putLab(change) {
  const { body } = await request('/api/lab', {
    method: 'PUT',
    json: change,
    headers: teacherHeaders(),
    timeoutMs: 5000,
  });
  return body;
}

/** Shows the lab (and the teacher's cards) unlocked — by the session, or
 * by the token — or locked. */
function showUnlocked() {
  const session = teacherSession();
  const unlocked = session || Boolean(token);
  $('teacher-session').hidden = !session;
  unlockForm.hidden = unlocked;
  labForm.hidden = !unlocked;
  $('lock').hidden = session || !token;
  // The token can make the teacher's account; a teacher's session has one.
  $('teacher-account').hidden = session || !token;
  accountsCard.hidden = !unlocked;
  if (unlocked) listAccounts();
  else stopAccounts();
}

/** Checks the token with an empty change (PUT merges: {} changes nothing). */
async function unlock(candidate) {
  token = candidate;
  try {
    const lab = await putLab({});
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      // Kept in memory only.
    }
    showUnlocked();
    showLab(lab, true);
    say('Lab unlocked.', 'ok');
  } catch (err) {
    token = null;
    forget();
    say(err.status === 401 ? 'That token is not right.' : `Could not reach the server: ${err.message}`, 'error');
  }
}

function forget() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Nothing stored.
  }
  token = null;
  showUnlocked();
}

unlockForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('token');
  const candidate = input.value.trim();
  input.value = ''; // do not leave the secret sitting in the page
  if (candidate) unlock(candidate);
});
$('lock').addEventListener('click', () => {
  forget();
  say('Token forgotten.', 'idle');
});

// Signing in or out in the header (or the session ending) locks or
// unlocks the lab at once.
onAccountChange((account, previous) => {
  showUnlocked();
  if (account?.role === 'teacher') say(`Unlocked by ${account.name}’s teacher session.`, 'ok');
  else if (previous?.role === 'teacher' && !token) say('Signed out: the lab is locked again.', 'idle');
});

// ----- the teacher's account -----

const teacherCreate = $('teacher-create');
teacherCreate?.addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = teacherCreate.elements.name.value;
  const password = teacherCreate.elements.password;
  try {
    const account = await createAccount(name, password.value, { token });
    password.value = '';
    // The token has done its job: from now on the session is the key.
    forget();
    say(`Teacher account ${account.name} created, and this browser is signed in as it. Next time, sign in at the top of any page.`, 'ok');
  } catch (err) {
    if (err.code === 'name_taken') say(`${name} exists already: sign in as ${name} at the top of the page.`, 'error');
    else if (err.code === 'name_reserved' || err.status === 401) say('The token was refused: unlock the lab with it again, then create the account.', 'error');
    else say(`Not created: ${sentence(err.message)}`, 'error');
  }
});

// ----- who is signed in -----
//
// GET /api/accounts every few seconds while the lab is unlocked and the tab
// visible; each row can end that person's sessions everywhere (their
// sockets close with 1008, their next message is a guest's).

const ACCOUNTS_EVERY_MS = 5000;
const accountsCard = $('accounts-card');
const accountsList = $('accounts-list');
let accountsTimer = null;
/** Each (re)start of the loop gets a number; an answer that arrives for an
 * older one is dropped, so there is never more than one loop. */
let accountsRun = 0;

function stopAccounts() {
  accountsRun += 1;
  clearTimeout(accountsTimer);
  accountsTimer = null;
}

async function listAccounts() {
  stopAccounts();
  const mine = accountsRun;
  if (document.hidden || accountsCard.hidden) return; // visibilitychange restarts it
  const status = $('accounts-status');
  try {
    const { body } = await request('/api/accounts', { headers: teacherHeaders(), timeoutMs: 5000 });
    if (mine !== accountsRun) return;
    showAccounts(body.signed_in);
    if (status.dataset.tone === 'error') status.textContent = '';
  } catch (err) {
    if (mine !== accountsRun) return;
    if (err.status === 401) {
      status.textContent = 'Not the teacher any more: sign in again, or unlock with the token.';
      status.dataset.tone = 'error';
      if (teacherSession()) checkAccount(); // the session ended: the header follows
      return;
    }
  }
  accountsTimer = setTimeout(listAccounts, ACCOUNTS_EVERY_MS);
}

function showAccounts(users) {
  users.sort((a, b) => b.last_seen_ms - a.last_seen_ms || a.name.localeCompare(b.name));
  $('accounts-count').textContent = users.length === 1 ? '1 person' : `${users.length} people`;
  $('accounts-empty').hidden = users.length > 0;
  const rows = users.map((user) => {
    const row = document.createElement('tr');
    row.dataset.name = user.name;
    const name = document.createElement('th');
    name.scope = 'row';
    name.textContent = user.name; // a student's name: text, never HTML
    const age = Math.max(0, Date.now() - user.last_seen_ms);
    const seen = age < 5000 ? 'just now' : `${formatDuration(age)} ago`;
    const cells = [user.role, formatCount(user.sessions), seen].map((text) => {
      const td = document.createElement('td');
      td.textContent = text;
      return td;
    });
    const action = document.createElement('td');
    const me = currentAccount()?.name === user.name;
    if (!me) {
      const end = document.createElement('button');
      end.type = 'button';
      end.className = 'btn btn-small';
      // "End sessions of Ada" to a screen reader: the visible words first.
      const whose = document.createElement('span');
      whose.className = 'visually-hidden';
      whose.textContent = ` of ${user.name}`;
      end.append('End sessions', whose);
      end.addEventListener('click', () => endSessions(user.name, end));
      action.append(end);
    } else {
      action.textContent = 'you';
    }
    row.append(name, ...cells, action);
    return row;
  });
  accountsList.replaceChildren(...rows);
}

async function endSessions(name, button) {
  button.disabled = true;
  const status = $('accounts-status');
  try {
    const { body } = await request(`/api/accounts/${encodeURIComponent(name)}/sessions`, {
      method: 'DELETE',
      headers: teacherHeaders(),
      timeoutMs: 5000,
    });
    status.textContent = `${name} is signed out everywhere (${body.ended} session${body.ended === 1 ? '' : 's'} ended).`;
    status.dataset.tone = 'ok';
  } catch (err) {
    status.textContent = `Could not sign ${name} out: ${sentence(err.message)}`;
    status.dataset.tone = 'error';
    button.disabled = false;
  }
  listAccounts();
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && !accountsCard.hidden) listAccounts();
});

const latency = $('latency');
const jitter = $('jitter');
const outage = $('outage');
function showSliders() {
  $('latency-out').textContent = `${latency.value} ms`;
  $('jitter-out').textContent = `± ${jitter.value} ms`;
}
for (const input of [latency, jitter]) {
  input.addEventListener('input', () => {
    editing = true;
    showSliders();
  });
}

function showLab(lab, force = false) {
  if (!lab) return;
  const pill = $('lab-state');
  const parts = [];
  if (lab.outage) parts.push('OUTAGE');
  if (lab.latency_ms || lab.jitter_ms) parts.push(`${lab.latency_ms} ms ± ${lab.jitter_ms}`);
  pill.textContent = parts.length ? parts.join(' · ') : 'lab off';
  pill.dataset.tone = lab.outage ? 'retry' : parts.length ? 'wait' : 'idle';
  if (force || !editing) {
    latency.value = lab.latency_ms;
    jitter.value = lab.jitter_ms;
    outage.checked = lab.outage;
    showSliders();
  }
}

const presets = {
  calm: { latency_ms: 0, jitter_ms: 0, outage: false },
  jitter: { latency_ms: 50, jitter_ms: 600, outage: false },
  slow: { latency_ms: 800, jitter_ms: 0, outage: false },
};
async function apply(change) {
  try {
    const lab = await putLab(change);
    editing = false;
    showLab(lab, true);
    say('Applied.', 'ok');
  } catch (err) {
    if (err.status === 401 && teacherSession()) {
      // The session ended (signed out elsewhere, expired): ask who we are.
      await checkAccount();
      say('Your teacher session has ended: sign in again, or unlock with the token.', 'error');
    } else if (err.status === 401) {
      forget();
      say('The token was refused; enter it again.', 'error');
    } else {
      say(`Not applied: ${err.message}`, 'error');
    }
  }
}
for (const button of document.querySelectorAll('[data-preset]')) {
  button.addEventListener('click', () => apply(presets[button.dataset.preset]));
}
outage.addEventListener('change', () => apply({ outage: outage.checked }));
labForm.addEventListener('submit', (event) => {
  event.preventDefault();
  apply({ latency_ms: Number(latency.value), jitter_ms: Number(jitter.value), outage: outage.checked });
});

if (teacherSession()) {
  // Rendered unlocked: the page's own GET carried the teacher's cookie.
  // The lab's values arrive with the first stats.
  showUnlocked();
} else if (token) {
  unlock(token);
}
showSliders();
refresh();
