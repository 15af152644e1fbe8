// The shared document over one transport: /doc/interval, /doc/timeout,
// /doc/longpoll, /doc/websocket, /doc/sse. This file only wires things
// together: the editor is ../doc/editor.js, its three modes
// ../doc/modes.js, and the transport the same ../transports/<name>.js the
// chat uses, pointed at the document's log.
//
// The demo needs two people. On this page the second one is "Bob": a
// second editor in the same tab, over the same transport, that the script
// types into (../doc/demo.js).

import { clientId } from '../net.js';
import { Meter } from '../ui/meter.js';
import { Timeline } from '../ui/timeline.js';
import { playConflict } from '../doc/demo.js';
import { Editor } from '../doc/editor.js';
import { announceDivergence, lifecycle, modeFromUrl, modeSwitch, nameField } from '../doc/page.js';
import { PeopleList } from '../doc/presence.js';
import { SummaryWatcher } from '../doc/sync.js';

const $ = (id) => document.getElementById(id);
const root = $('doc-root');
const via = root.dataset.transport;
const params = new URLSearchParams(location.search);
const push = via === 'websocket' || via === 'sse';

const timeline = new Timeline($('timeline'), { push, outTicks: via === 'websocket' });
const meter = new Meter({ stats: $('stats'), state: $('conn-state'), log: $('log'), readyState: $('ready-state'), timeline });
const presenceMeter = new Meter({ stats: $('presence-stats') });
const summary = new SummaryWatcher();
const ours = new Set(); // this page's editors' ids
const people = new PeopleList($('people'), { empty: $('people-empty'), mine: (client) => ours.has(client) });
const name = nameField($('name'));
const everySelect = $('every');
if (everySelect && params.has('every')) everySelect.value = params.get('every');
const every = () => Number(everySelect?.value ?? params.get('every') ?? 1000) || 1000;
let mode = modeFromUrl();

const editor = new Editor({
  root: document.querySelector('[data-editor="main"]'),
  via,
  client: `${clientId}-${via}`,
  mode,
  every: every(),
  meter,
  presenceMeter,
  people,
  summary,
  name,
});
ours.add(editor.client);
announceDivergence(editor, $('announce'), 'Your editor');

/** Bob, made when the demo first needs him: a second editor with
 * instruments of his own (not shown), so the page's stay yours. */
let partner = null;
function makePartner() {
  if (partner) return partner;
  partner = new Editor({
    root: document.querySelector('[data-editor="partner"]'),
    via,
    client: `${clientId}-${via}-bob`,
    mode,
    every: every(),
    meter: new Meter({}),
    summary,
    people,
    name: () => 'Bob (demo)',
    log: (text, tone) => meter.log(`Bob: ${text}`, tone),
  });
  ours.add(partner.client);
  announceDivergence(partner, $('announce'), 'Bob’s editor');
  return partner;
}

modeSwitch({
  explain: $('mode-explain'),
  initial: mode,
  onChange: (next) => {
    mode = next;
    editor.setMode(next);
    partner?.setMode(next);
  },
});

everySelect?.addEventListener('change', () => {
  editor.every = every();
  if (partner) partner.every = every();
  meter.log(`polling every ${every()} ms`, 'info');
  editor.reload(`poll interval set to ${every()} ms`, 0);
  partner?.reload(`poll interval set to ${every()} ms`, 0);
});

$('reset-stats').addEventListener('click', () => {
  meter.reset();
  presenceMeter.reset();
  meter.log('counters reset', 'info');
});

// --- the demo ---

const demoButton = $('demo');
const demoStatus = $('demo-status');
demoButton.addEventListener('click', async () => {
  demoButton.disabled = true;
  const bob = makePartner();
  $('partner').hidden = false;
  try {
    if (!bob.engine) await bob.start();
    const result = await playConflict(editor, bob, { say: (text) => (demoStatus.textContent = text) });
    demoStatus.textContent = `Yours: “${result.ada}” · Bob’s: “${result.bob}” · the server’s: “${result.server}”`;
    meter.log(`demo (${mode}): yours “${result.ada}”, Bob’s “${result.bob}”, the server’s “${result.server}”`, 'info');
  } catch (err) {
    demoStatus.textContent = `The demo stopped: ${err.message}`;
  } finally {
    demoButton.disabled = false;
  }
});
$('partner-close').addEventListener('click', () => {
  partner?.leave(); // his caret goes from everyone's editor; the demo starts him again
  $('partner').hidden = true;
});

lifecycle(() => [editor, partner]);

// For the console (and the tests): the live objects behind the page.
window.weebsockets = {
  editor,
  get partner() {
    return partner;
  },
  meter,
  presenceMeter,
  timeline,
  summary,
};

editor.start();
