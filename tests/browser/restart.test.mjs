/// The teacher restarts the server mid-lesson (Ctrl-C, then start it
/// again on the same database and port). Every open page, on every mode,
/// must notice, keep retrying while the server is gone, reconnect by
/// itself when it is back, and end up with the full log — the messages
/// from before the restart and after it — each exactly once, in order.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  allMessages,
  launchBrowser,
  openPage,
  post,
  startServer,
  unexpectedProblems,
  waitConnected,
} from './helpers.mjs';

const MODES = ['interval', 'timeout', 'longpoll', 'websocket', 'sse'];

let browser;
let dir;

before(async () => {
  browser = await launchBrowser();
  dir = mkdtempSync(path.join(tmpdir(), 'weebsockets-restart-'));
});

after(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

function waitForIds(page, ids, timeout = 60_000) {
  return page.waitForFunction(
    (want) => JSON.stringify([...document.querySelectorAll('#messages > li')].map((li) => Number(li.dataset.id))) === JSON.stringify(want),
    ids,
    { timeout },
  );
}

test('every mode reconnects by itself after a restart and shows the whole log once', { timeout: 180_000 }, async (t) => {
  const db = path.join(dir, 'room.db');
  let server = await startServer(['--post-rate', '0'], { db });
  const bind = `127.0.0.1:${server.port}`;
  const pages = {};
  try {
    for (const mode of MODES) pages[mode] = await openPage(browser, `${server.base}/${mode}`, { name: `student-${mode}` });
    await Promise.all(MODES.map((mode) => waitConnected(pages[mode])));
    for (let i = 1; i <= 3; i += 1) assert.equal((await post(server.base, 'teacher', `before ${i}`)).status, 201);
    let ids = (await allMessages(server.base)).map((m) => m.id);
    await Promise.all(MODES.map((mode) => waitForIds(pages[mode], ids)));

    // Ctrl-C: a graceful stop (SIGTERM). Every page notices and retries.
    await server.stop();
    await Promise.all(
      MODES.map((mode) => pages[mode].waitForSelector('#conn-state:not([data-tone="ok"])', { timeout: 30_000 })),
    );

    // Start again on the same file and port.
    const restartedAt = Date.now();
    server = await startServer(['--post-rate', '0'], { bind, db });
    for (let i = 1; i <= 3; i += 1) assert.equal((await post(server.base, 'teacher', `after ${i}`)).status, 201);
    ids = (await allMessages(server.base)).map((m) => m.id);
    assert.deepEqual(ids, [1, 2, 3, 4, 5, 6], 'the log survived the restart and ids continued');
    await Promise.all(MODES.map((mode) => waitForIds(pages[mode], ids)));
    await Promise.all(MODES.map((mode) => waitConnected(pages[mode])));
    t.diagnostic(`every mode was back with all 6 messages ${Date.now() - restartedAt} ms after the restart`);

    for (const mode of MODES) {
      assert.deepEqual(unexpectedProblems(pages[mode], { allowNetworkErrors: true }), [], mode);
    }
  } finally {
    for (const page of Object.values(pages)) await page.context().close();
    await server.stop();
  }
});
