// The classic two-person conflict, scripted: "EASY AS 123".
//
// Two editors have the line "EASY AS 123". At the same moment — before
// either has seen the other's edit — Ada selects the word "AS" and deletes
// it, and Bob puts his caret inside that word, between the A and the S, and
// types "LWAY" (he is making it "ALWAYS"). What should the line be?
//
//   Save the textarea        the last save wins: "EASY ALWAYS 123" (Ada's
//                            delete is lost) or "EASY  123" (Bob's typing is)
//   Send edits, don't        each edit lands where it was made in a text
//   transform                that has changed: Bob's editor ends with a
//                            line that is not the server's — and the
//                            server's, misled by his positions, is not
//                            what anyone meant either
//   Operational              Ada's delete removes the A and the S she saw,
//   transformation           Bob's letters survive between them:
//                            "EASY LWAY 123" everywhere — odd, but nobody's
//                            edit is lost and every editor agrees
//
// To make "at the same moment" visible at classroom speed, the demo holds
// back the news in both editors (as a slow network would) while the two
// edits are typed, one key at a time, then lets it through.

import { request, sleep } from '../net.js';

export const DEMO_LINE = 'EASY AS 123';
/** Where the word "AS" is in the line, and where Bob types. */
const AS_START = 5;
const AS_END = 7;
const INSIDE_AS = 6;

/** Resolves when `done()` is true (checked on every change, and every 50 ms),
 * or rejects after `timeoutMs`. */
function until(done, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const check = () => {
      if (done()) return resolve();
      if (performance.now() - started > timeoutMs) return reject(new Error('the editors did not settle in time'));
      setTimeout(check, 50);
    };
    check();
  });
}

/** The editors have nothing on the way and have read up to the server's
 * newest revision — and the server has nothing newer since (a buffered
 * edit that went out meanwhile makes one more round). */
async function caughtUp(editors) {
  const newest = async () => (await request('/api/doc/summary', { timeoutMs: 5000 })).body.rev;
  for (let round = 0; round < 20; round++) {
    const rev = await newest();
    await until(() => editors.every((e) => e.engine && e.engine.settled && !e.holding && e.engine.rev >= rev));
    if (editors.every((e) => e.engine.rev === rev) && (await newest()) === rev) return;
  }
  throw new Error('the document kept changing');
}

/** The demo line as an editor shows it: the last line that starts like it. */
export function demoLine(text) {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) if (lines[i].startsWith('EASY')) return lines[i];
  return lines.at(-1) ?? '';
}

/**
 * Plays the conflict between editors `ada` and `bob` (editor.js), in
 * whatever mode they are in. `say(text)` narrates; `pace` is the time
 * between keys; `watchers` are the editors that scroll to the demo's line
 * (Ada's and Bob's at least). Resolves with each editor's line and the
 * server's.
 */
export async function playConflict(ada, bob, { say = () => {}, pace = 220, watchers = [] } = {}) {
  // The line is added at the end: let everyone watching see the end.
  const showLine = () => {
    for (const e of new Set([ada, bob, ...watchers])) e.textarea.scrollTop = e.textarea.scrollHeight;
  };
  await caughtUp([ada, bob]);
  // 1. Ada adds the line at the end of the document, and both get it.
  say('Ada adds a line: “EASY AS 123”…');
  const text = ada.textarea.value;
  const start = text.length + (text && !text.endsWith('\n') ? 1 : 0);
  ada.type(text.length, text.length, (start > text.length ? '\n' : '') + DEMO_LINE);
  await until(() => ada.engine.settled); // the server has it
  await caughtUp([ada, bob]); // and Bob has read it
  showLine();

  // 2. The network slows down: from now on neither sees the other's edit.
  say('The network slows down: neither editor sees the other’s edit…');
  ada.hold();
  bob.hold();
  try {
    const a0 = ada.textarea.value.lastIndexOf(DEMO_LINE);
    const b0 = bob.textarea.value.lastIndexOf(DEMO_LINE);
    await sleep(pace);
    say('Ada selects “AS” and deletes it; Bob types “LWAY” inside it, to make “ALWAYS”…');
    ada.textarea.setSelectionRange(a0 + AS_START, a0 + AS_END);
    ada.publisher.moved();
    await sleep(pace);
    ada.type(a0 + AS_START, a0 + AS_END, '');
    for (const [i, key] of [...'LWAY'].entries()) {
      await sleep(pace);
      bob.type(b0 + INSIDE_AS + i, b0 + INSIDE_AS + i, key);
    }
    await sleep(pace * 2);
  } finally {
    // 3. The news goes through.
    ada.release();
    bob.release();
  }
  say('…and now each editor hears about the other’s edit.');
  await caughtUp([ada, bob]);
  showLine();
  const server = (await request('/api/doc', { timeoutMs: 5000 })).body.text;
  return { ada: demoLine(ada.textarea.value), bob: demoLine(bob.textarea.value), server: demoLine(server) };
}
