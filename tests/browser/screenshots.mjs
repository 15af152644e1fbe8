// Takes the screenshots in docs/screenshots/ (1440×900) from a real server
// with a few messages in the room and traffic flowing. Not a test:
//
//     node screenshots.mjs [out-dir] [light|dark]
//
// Dark pictures get a -dark suffix; SHOTS=index,compare takes only those.
// The shared document's are doc-*: /doc/compare just after the "EASY AS
// 123" demo in each of the three modes, one editor's page, the history.
//
// It starts the server from $WEEBSOCKETS_BIN (default target/debug).

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchBrowser, post, putLab, startServer, TOKEN } from './helpers.mjs';
import { setDoc, waitEditing } from './doc_helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? path.join(here, '..', '..', 'docs', 'screenshots'));
const scheme = process.argv[3] ?? 'light';
const only = process.env.SHOTS?.split(',');
mkdirSync(out, { recursive: true });

const lines = [
  ['ada', 'Is anyone else seeing this in the setInterval tab?', 'interval'],
  ['grace', 'Yes, mine shows every message twice when the jitter is on', 'websocket'],
  ['linus', 'Long poll feels instant but DevTools says it held the request for 9 s', 'longpoll'],
  ['margaret', 'SSE reconnected by itself after the outage', 'sse'],
  ['ada', 'setTimeout is slower but at least it never shows things out of order', 'timeout'],
  ['tim', 'So WebSockets send a frame instead of a whole request?', 'websocket'],
];

const server = await startServer(['--post-rate', '0']);
const browser = await launchBrowser();
try {
  for (const [author, text, via] of lines) await post(server.base, author, text, via);
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: scheme });
  await context.addInitScript(() => localStorage.setItem('weebsockets.name', 'teacher'));
  // Some background chatter, so timelines and counters move.
  let n = 0;
  const chatter = setInterval(() => {
    n += 1;
    const [author, text, via] = lines[n % lines.length];
    post(server.base, author, `${text.split(' ').slice(0, 5).join(' ')}… (#${n})`, via).catch(() => {});
  }, 1600);

  // name, path, how long to let it run, and the lab while it runs. The
  // setInterval/setTimeout pair is shot under the same latency (1,500 ms,
  // longer than the 1,000 ms interval): the README shows them side by side.
  const slow = { latency_ms: 1500, jitter_ms: 0 };
  const shots = [
    ['index', '/', 2500],
    ['interval', '/interval?every=1000', 13000, slow],
    ['timeout', '/timeout?every=1000', 13000, slow],
    ['longpoll', '/longpoll', 7000],
    ['websocket', '/websocket', 7000],
    ['sse', '/sse', 6000],
    ['echo', '/websocket/echo', 1500],
    ['compare', '/compare', 9000],
    ['dashboard', '/dashboard', 35000],
  ];
  // Other tabs keep all modes busy for the dashboard and the index counts.
  const others = [];
  const otherPaths = ['interval?every=250', 'timeout?every=500', 'longpoll', 'websocket', 'sse'];
  for (const path of otherPaths) {
    const c = await browser.newContext();
    const p = await c.newPage();
    await p.goto(`${server.base}/${path}`);
    others.push(c);
  }
  // Headless Chromium draws on the CPU: five busy background tabs on a
  // two-core machine would inflate the latencies a page shows. They are
  // only needed for the counts on / and /dashboard, so park them while the
  // other pages are taken.
  const parkOthers = (park) =>
    Promise.all(others.map((c, i) => c.pages()[0].goto(park ? 'about:blank' : `${server.base}/${otherPaths[i]}`)));
  for (const [name, url, settle, lab] of shots) {
    if (only && !only.includes(name)) continue;
    const parked = name !== 'index' && name !== 'dashboard';
    if (parked) await parkOthers(true);
    if (lab) await putLab(server.base, lab);
    const page = await context.newPage();
    await page.goto(server.base + url);
    if (name === 'dashboard') {
      await page.fill('#token', TOKEN);
      await page.press('#token', 'Enter');
      await page.waitForSelector('#lab:not([hidden])');
    }
    if (name === 'echo') {
      await page.click('#echo-open');
      await page.waitForSelector('#echo-send:not([disabled])');
      await page.click('#echo-send');
      await page.check('input[value="binary"]');
      await page.click('#echo-send');
    }
    if (url !== '/' && name !== 'echo' && name !== 'dashboard') {
      await page.fill('#text', 'Hello from the projector!');
      await page.press('#text', 'Enter');
    }
    await page.waitForTimeout(settle);
    const file = scheme === 'dark' ? `${name}-dark.png` : `${name}.png`;
    await page.screenshot({ path: path.join(out, file) });
    if (lab) await putLab(server.base, { latency_ms: 0, jitter_ms: 0 });
    if (parked) await parkOthers(false);
    await page.close();
  }
  clearInterval(chatter);
  for (const c of others) await c.close();

  // The shared document. Class notes in it, and two classmates editing on
  // other transports (their carets, a selection, the list of who is there).
  const notes = ['Notes: real-time on the web', 'setTimeout asks once at a time.', 'A socket stays open.'].join('\n');
  const docShots = [
    ['doc-compare-save', '/doc/compare?mode=save'],
    ['doc-compare-no-transform', '/doc/compare?mode=no-transform'],
    ['doc-compare-ot', '/doc/compare'],
    ['doc-websocket', '/doc/websocket'],
    ['doc-history', '/doc/history'],
  ].filter(([name]) => !only || only.includes(name));
  if (docShots.length) {
    const classmates = [];
    for (const [who, via] of [
      ['grace', 'sse'],
      ['linus', 'longpoll'],
    ]) {
      const c = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await c.addInitScript((n) => localStorage.setItem('weebsockets.name', n), who);
      const p = await c.newPage();
      await p.goto(`${server.base}/doc/${via}`);
      await waitEditing(p, '[data-editor="main"]');
      classmates.push(p);
    }
    // Grace selects a word, Linus puts his caret after one, both above the
    // demo's line (so their flags do not hide it); each time somewhere
    // else, so that their flags show (a caret's flag shows for a moment
    // after its owner moves it).
    let round = 0;
    const place = async () => {
      const spots = round++ % 2 ? [['Notes', 'Notes'.length], ['socket', 0]] : [['real-time', 'real-time'.length], ['web', 0]];
      for (const [i, p] of classmates.entries()) {
        await p.evaluate(([word, len]) => {
          const ta = document.querySelector('#main-text');
          const at = ta.value.indexOf(word) + (len ? 0 : word.length);
          ta.focus();
          ta.setSelectionRange(at, at + len);
          ta.dispatchEvent(new Event('select'));
        }, spots[i]);
      }
    };
    for (const [name, url] of docShots) {
      if (name !== 'doc-history') await setDoc(server.base, notes, 'teacher');
      const page = await context.newPage();
      await page.goto(server.base + url);
      if (name === 'doc-history') {
        await page.waitForFunction(() => window.weebsockets?.shown >= 1);
        // A revision from the middle of the last demo: Bob typing inside "AS".
        const rev = await page.evaluate(() => window.weebsockets.ops.findLast((op) => op.op.includes('L'))?.rev);
        if (rev) await page.evaluate((r) => window.weebsockets.show(r), rev);
        await page.waitForTimeout(500);
      } else {
        await waitEditing(page);
        await place();
        await page.waitForFunction(() => document.querySelectorAll('.remote-selection').length > 0);
        await page.click('#demo');
        await page.waitForFunction(() => /the server’s: “/.test(document.querySelector('#demo-status').textContent), null, { timeout: 60_000 });
        if (name !== 'doc-websocket') {
          // Ada's and Bob's flags fade to dots (the result line says who
          // is who); the classmates move, and theirs show. (On one
          // editor's page, Bob's flag stays: he is right there.)
          await page.waitForTimeout(3800);
          await place();
        }
        // The mode switch, the demo's result and the editors in one picture.
        await page.evaluate(() => {
          const bar = document.querySelector('.topbar').getBoundingClientRect().height;
          window.scrollTo(0, document.querySelector('.doc-modes').getBoundingClientRect().top + window.scrollY - bar - 12);
        });
        await page.waitForTimeout(700);
      }
      const file = scheme === 'dark' ? `${name}-dark.png` : `${name}.png`;
      await page.screenshot({ path: path.join(out, file) });
      await page.close();
    }
    for (const p of classmates) await p.context().close();
  }
  console.log(`screenshots in ${out}`);
} finally {
  await browser.close();
  await server.stop();
}
