// /doc/compare: five editors of the one document in one tab, each reading
// it over a different transport — what the teacher projects. A keystroke
// in any of them shows up in all five, each in its transport's own time.
//
// One mode switch for all five (the lesson's point is the mode, not a mix
// of them), and one demo: Ada types in the setTimeout editor, Bob in the
// WebSocket one, and the other three watch.

import { clientId } from '../net.js';
import { Meter } from '../ui/meter.js';
import { Timeline } from '../ui/timeline.js';
import { playConflict } from '../doc/demo.js';
import { Editor } from '../doc/editor.js';
import { announceDivergence, lifecycle, modeFromUrl, modeSwitch, nameField } from '../doc/page.js';
import { PeopleList } from '../doc/presence.js';
import { SummaryWatcher } from '../doc/sync.js';

const $ = (id) => document.getElementById(id);
const log = $('log');
const summary = new SummaryWatcher();
const ours = new Set();
const people = new PeopleList($('people'), { empty: $('people-empty'), mine: (client) => ours.has(client) });
const name = nameField($('name'));
let mode = modeFromUrl();

// The page's log, one line per event, labelled with the editor it is about.
const pageLog = new Meter({ log });

const editors = [...document.querySelectorAll('[data-column]')].map((column) => {
  const via = column.dataset.column;
  const push = via === 'websocket' || via === 'sse';
  const timeline = new Timeline(column.querySelector('canvas'), { push, outTicks: via === 'websocket', minRows: 2, maxRows: 4, compact: true });
  const meter = new Meter({ stats: column, state: column.querySelector('[data-role="state"]'), timeline });
  const editor = new Editor({
    root: column.querySelector('[data-editor]'),
    via,
    client: `${clientId}-${via}`,
    mode,
    every: 1000,
    meter,
    presenceMeter: new Meter({}),
    people,
    summary,
    name,
    log: (text, tone) => pageLog.log(`${via}: ${text}`, tone),
  });
  editor.timeline = timeline;
  ours.add(editor.client);
  announceDivergence(editor, $('announce'), `The ${via} editor`);
  return editor;
});
const byVia = Object.fromEntries(editors.map((e) => [e.via, e]));

modeSwitch({
  explain: $('mode-explain'),
  initial: mode,
  onChange: (next) => {
    mode = next;
    for (const editor of editors) editor.setMode(next);
  },
});

const demoButton = $('demo');
const demoStatus = $('demo-status');
demoButton.addEventListener('click', async () => {
  demoButton.disabled = true;
  try {
    const result = await playConflict(byVia.timeout, byVia.websocket, {
      say: (text) => (demoStatus.textContent = text),
      watchers: editors,
    });
    demoStatus.textContent = `Ada’s (setTimeout): “${result.ada}” · Bob’s (WebSocket): “${result.bob}” · the server’s: “${result.server}”`;
    pageLog.log(`demo (${mode}): Ada “${result.ada}”, Bob “${result.bob}”, the server “${result.server}”`, 'info');
  } catch (err) {
    demoStatus.textContent = `The demo stopped: ${err.message}`;
  } finally {
    demoButton.disabled = false;
  }
});

lifecycle(() => editors);

// For the console (and the tests): `weebsockets.editors.sse.engine.rev`.
window.weebsockets = { editors: byVia, summary };

for (const editor of editors) editor.start();
