// /doc/history: the document replayed revision by revision, with who made
// each one; the teacher restores any revision, and anyone downloads it.
//
// The log of operations IS the history. Revision N is revision N−1 with
// operation N applied, so the page fetches the text once where you jump
// to (GET /api/doc/text?rev=N−1) and the operations (GET /api/doc/ops),
// and shows operation N over it: what it inserted, what it deleted, and
// whose it was. Stepping forward just applies the next operation.
//
// Restoring never rewrites anything: POST /api/doc/restore stores ONE MORE
// operation, the smallest edit from the text now to the text then. It is
// the teacher's (a teacher's session, or the token the dashboard asks for),
// and it shows up here as the newest revision, by the teacher.

import { request } from '../net.js';
import { DOC } from '../transports/logs.js';
import { TimeoutPoller } from '../transports/timeout.js';
import { Meter } from '../ui/meter.js';
import { apply, isDelete, isInsert, isRetain, length } from '../doc/ot.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'weebsockets.teacher-token'; // the dashboard's: one token per tab
/** Operations fetched per request while catching up with the log. */
const PAGE = 500;
/** Time per revision when playing. */
const PLAY_MS = 350;

const slider = $('rev');
const meter = new Meter({ state: $('conn-state') });
const ops = []; // ops[r - 1] is the stored operation of revision r
let shown = { rev: -1, before: '' }; // the revision on screen and the text before its operation
let playing = null;
let token = null;
try {
  token = sessionStorage.getItem(TOKEN_KEY);
} catch {
  token = null;
}

const newest = () => ops.length;

// ----- loading the log -----

/** Every stored operation from the first, PAGE at a time. */
async function catchUp() {
  for (;;) {
    const { body } = await request(`${DOC.poll}?since=${ops.length}&limit=${PAGE}`, { timeoutMs: 15_000 });
    took(body.ops);
    if (!body.ops.length || ops.length >= body.last_rev) return;
  }
}

/** New operations (from the catch-up, or the poller), in rev order. */
function took(entries) {
  const follow = Number(slider.value) === newest();
  for (const op of entries) if (op.rev === ops.length + 1) ops.push(op);
  slider.max = String(newest());
  $('rev-of').textContent = `of ${newest()}`;
  meter.state(`${newest().toLocaleString()} revisions`, 'ok');
  if (follow && shown.rev !== newest()) show(newest());
  else renderAround();
}

// ----- showing a revision -----

/** The text at `rev`, from the server. */
async function textAt(rev) {
  if (rev <= 0) return '';
  const res = await fetch(`/api/doc/text?rev=${rev}`, { cache: 'no-store' });
  if (!res.ok) throw new Error(`GET /api/doc/text?rev=${rev} answered ${res.status}`);
  return res.text();
}

let wanted = 0; // the newest request to show, so a slow answer cannot win
async function show(rev) {
  rev = Math.max(0, Math.min(rev, newest()));
  const mine = ++wanted;
  slider.value = String(rev);
  let before;
  if (shown.rev >= 1 && rev === shown.rev + 1) {
    before = apply(shown.before, ops[shown.rev - 1].op); // one step forward: apply, no request
  } else {
    before = await textAt(rev - 1);
  }
  if (mine !== wanted) return;
  shown = { rev, before };
  render();
}

function render() {
  const { rev, before } = shown;
  $('rev-out').textContent = String(rev);
  $('download').href = `/api/doc/text?rev=${rev}&download=1`;
  const view = $('rev-text');
  const meta = $('rev-meta');
  if (rev === 0) {
    view.replaceChildren();
    meta.textContent = 'Revision 0: the empty document, before anyone typed.';
  } else {
    const stored = ops[rev - 1];
    view.replaceChildren(...marked(before, stored.op));
    meta.textContent = describe(stored);
  }
  renderAuthors(rev);
  renderAround();
}

/** The text before `op`, with what op inserts as <ins> and deletes as <del>. */
function marked(text, op) {
  const chars = Array.from(text); // code points, as the operation counts
  const out = [];
  let at = 0;
  for (const c of op) {
    if (isRetain(c)) {
      out.push(document.createTextNode(chars.slice(at, at + c).join('')));
      at += c;
    } else if (isInsert(c)) {
      const ins = document.createElement('ins');
      ins.textContent = c;
      out.push(ins);
    } else if (isDelete(c)) {
      const del = document.createElement('del');
      del.textContent = chars.slice(at, at - c).join('');
      out.push(del);
      at -= c;
    }
  }
  return out;
}

/** "rev 12 by ada ✓ over websocket at 14:03:07 — inserted “hi”, deleted 3 characters" */
function describe(stored) {
  const inserted = stored.op.filter(isInsert).join('');
  const deleted = stored.op.filter(isDelete).reduce((n, c) => n - c, 0);
  const what = [];
  if (inserted) what.push(`inserted “${inserted.length > 60 ? `${inserted.slice(0, 60)}…` : inserted}”`);
  if (deleted) what.push(`deleted ${deleted} character${deleted === 1 ? '' : 's'}`);
  const who = `${stored.author ?? 'someone without a name'}${stored.account ? ' ✓' : ''}`;
  const when = new Date(stored.at).toLocaleTimeString([], { hour12: false });
  const via = stored.via ? ` over ${stored.via}` : '';
  return `Revision ${stored.rev} by ${who}${via} at ${when} — ${what.join(', ') || 'no change'} (${length(inserted)} in, ${deleted} out).`;
}

/** Revisions per author up to `rev`. */
function renderAuthors(rev) {
  const counts = new Map();
  for (const stored of ops.slice(0, rev)) {
    const who = stored.author ?? '(no name)';
    counts.set(who, (counts.get(who) ?? 0) + 1);
  }
  const top = [...counts].sort((a, b) => b[1] - a[1]);
  const items = top.map(([who, n]) => {
    const li = document.createElement('li');
    li.className = 'author';
    const name = document.createElement('span');
    name.textContent = who;
    const count = document.createElement('span');
    count.className = 'author-count';
    count.textContent = `${n} rev${n === 1 ? '' : 's'}`;
    const bar = document.createElement('span');
    bar.className = 'author-bar';
    bar.setAttribute('aria-hidden', 'true');
    bar.style.width = `${Math.max(2, (100 * n) / rev)}%`;
    li.append(name, count, bar);
    return li;
  });
  $('authors').replaceChildren(...items);
}

/** The revisions just before and after the one shown, to jump to. */
function renderAround() {
  const rev = shown.rev;
  const items = [];
  for (let r = Math.max(1, rev - 4); r <= Math.min(newest(), rev + 4); r++) {
    const stored = ops[r - 1];
    const li = document.createElement('li');
    if (r === rev) li.setAttribute('aria-current', 'true');
    const inserted = stored.op.filter(isInsert).join('');
    const deleted = stored.op.filter(isDelete).reduce((n, c) => n - c, 0);
    li.textContent = `${r} · ${stored.author ?? '–'} · ${inserted ? `+“${inserted.slice(0, 20)}”` : ''}${deleted ? ` −${deleted}` : ''}`;
    items.push(li);
  }
  $('rev-list').replaceChildren(...items);
}

// ----- the controls -----

slider.addEventListener('input', () => {
  stop();
  show(Number(slider.value));
});
$('first').addEventListener('click', () => {
  stop();
  show(0);
});
$('prev').addEventListener('click', () => {
  stop();
  show(shown.rev - 1);
});
$('next').addEventListener('click', () => {
  stop();
  show(shown.rev + 1);
});
$('newest').addEventListener('click', () => {
  stop();
  show(newest());
});
$('play').addEventListener('click', () => (playing ? stop() : play()));

function play() {
  if (shown.rev >= newest()) show(0);
  $('play').setAttribute('aria-pressed', 'true');
  $('play').textContent = 'Pause';
  playing = setInterval(() => {
    if (shown.rev >= newest()) stop();
    else show(shown.rev + 1);
  }, PLAY_MS);
}

function stop() {
  clearInterval(playing);
  playing = null;
  $('play').setAttribute('aria-pressed', 'false');
  $('play').textContent = 'Play';
}

// ----- restoring (the teacher) -----

const status = $('restore-status');
const say = (text, tone) => {
  status.textContent = text;
  status.dataset.tone = tone;
};

/** POST /api/doc/restore: with the teacher's session cookie, or the token. */
async function restore() {
  const rev = shown.rev;
  try {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    const { body } = await request('/api/doc/restore', { method: 'POST', json: { rev }, headers, timeoutMs: 15_000 });
    say(`Restored: revision ${body.rev} brings back the text of revision ${rev}.`, 'ok');
    $('unlock').hidden = true;
    await catchUp(); // the restore is the newest revision: show it
    await show(body.rev);
  } catch (err) {
    if (err.status === 401) {
      token = null;
      forget();
      $('unlock').hidden = false;
      $('token').focus();
      say('Only the teacher restores: sign in as the teacher, or enter the teacher token.', 'error');
    } else {
      say(`Not restored: ${err.message}`, 'error');
    }
  }
}

function forget() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Nothing stored.
  }
}

$('restore').addEventListener('click', restore);
$('unlock').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('token');
  token = input.value.trim() || null;
  input.value = ''; // do not leave the secret sitting in the page
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Kept in memory only.
  }
  if (token) restore();
});

// ----- start: the whole log, then new revisions as they come -----

let poller = null;
async function start() {
  try {
    await catchUp();
  } catch (err) {
    meter.state(`could not load the history: ${err.message}`, 'retry');
    setTimeout(start, 3000);
    return;
  }
  await show(newest());
  poller = new TimeoutPoller({ since: newest(), log: DOC, every: 2000, probe: new Meter({}), onEntries: took });
  poller.start();
}

// For the console (and the tests).
window.weebsockets = {
  ops,
  get shown() {
    return shown.rev;
  },
  show,
  get poller() {
    return poller;
  },
};

start();
