/// The lab's jitter breaks setInterval polling. With 50 ms latency plus up
/// to 600 ms of jitter and a poll every 100 ms, requests overlap and answers
/// overtake each other. The naive client (append whatever arrives, move the
/// cursor to the last answer's last_id) shows duplicates and messages out of
/// order; the careful client (de-duplicate, order by id, cursor only moves
/// forward) shows exactly the server's log, in order — although it saw the
/// same out-of-order answers.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allMessages, openPage, post, putLab, serverAndBrowser, shownIds, waitConnected } from './helpers.mjs';

const env = serverAndBrowser();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('jitter: the naive client shows duplicates or disorder, the careful one the exact log', { timeout: 120_000 }, async (t) => {
  await putLab(env.base, { latency_ms: 50, jitter_ms: 600 });
  const careful = await openPage(env.browser, `${env.base}/interval?every=100`);
  // The naive one is switched on with the page's own switch.
  const naive = await openPage(env.browser, `${env.base}/interval?every=100`);
  try {
    await naive.check('#naive');
    assert.equal(await naive.textContent('[data-stat-label="duplicates"]'), 'Duplicates shown');
    await Promise.all([waitConnected(careful), waitConnected(naive)]);

    for (let i = 1; i <= 12; i += 1) {
      const { status } = await post(env.base, 'lab', `jittery message ${i}`);
      assert.equal(status, 201);
      await sleep(250);
    }
    const logIds = (await allMessages(env.base)).map((m) => m.id);
    assert.equal(logIds.length, 12);

    // Careful: exactly the log, each id once, in order.
    await careful.waitForFunction(
      (ids) => JSON.stringify([...document.querySelectorAll('#messages > li')].map((li) => Number(li.dataset.id))) === JSON.stringify(ids),
      logIds,
      { timeout: 30_000 },
    );

    // Naive: sooner or later an id twice, or an id lower than the one before.
    await naive.waitForFunction(
      () => {
        const ids = [...document.querySelectorAll('#messages > li')].map((li) => Number(li.dataset.id));
        return ids.some((id, i) => i > 0 && id <= ids[i - 1]);
      },
      null,
      { timeout: 30_000 },
    );
    const naiveIds = await shownIds(naive);
    const duplicates = naiveIds.length - new Set(naiveIds).size;
    const disorder = naiveIds.filter((id, i) => i > 0 && id < naiveIds[i - 1]).length;
    assert.ok(duplicates + disorder > 0, `naive list: ${naiveIds.join(',')}`);
    // The page marks them, and counts them.
    assert.ok((await naive.locator('#messages li.dup, #messages li.late').count()) > 0);
    if (duplicates > 0) assert.ok(Number(await naive.textContent('[data-stat="duplicates"]')) > 0);

    // The careful client saw the same kind of traffic: answers overtaken on
    // the way, duplicates that it dropped.
    assert.ok(Number(await careful.textContent('[data-stat="inflight-max"]')) > 1, 'requests overlapped');
    const overtaken = Number(await careful.textContent('[data-stat="out-of-order"]'));
    const dropped = Number(await careful.textContent('[data-stat="duplicates"]'));
    assert.ok(overtaken + dropped > 0, `careful page saw ${overtaken} overtaken answers and dropped ${dropped} duplicates`);

    // And it stays exact while stale answers keep trickling in.
    await sleep(1500);
    assert.deepEqual(await shownIds(careful), logIds);
    t.diagnostic(
      `naive: ${naiveIds.length} items for ${logIds.length} messages (${duplicates} duplicates, ${disorder} out of order); careful: ${overtaken} overtaken answers, ${dropped} duplicates dropped`,
    );
  } finally {
    await putLab(env.base, { latency_ms: 0, jitter_ms: 0 });
    await careful.context().close();
    await naive.context().close();
  }
});
