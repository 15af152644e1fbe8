// Two editors insert at the same position of the same revision: which text
// goes first? The contract: "the one stored first stays first and the
// newcomer goes after it". ShareDB, as published, does the opposite: it
// transforms the newcomer with side 'left', and ot-text-unicode puts the
// left insert first. This test starts the real peer twice on free ports,
// once with the default (`--tie-break contract`) and once with
// `--tie-break sharedb`, submits "a" then "b", both at revision 0, and
// looks at the text. It also plays the second editor as a contract client
// would (it receives "a" while its own "b" is unacknowledged, and
// transforms with the stored op's insert first): with ShareDB's order that
// client ends up with a different text from the server.
//
//   node --test tie-break.test.mjs

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';

import otText from 'ot-text-unicode';

import { toShareDB } from './ops.js';

/** Start server.js on a free port; resolves `{base, stop}` once it prints its address. */
async function startPeer(args = []) {
  const child = spawn(process.execPath, ['server.js', '--port', '0', ...args], { cwd: import.meta.dirname, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  const base = await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /^listening on (\S+)$/m.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
  });
  return {
    base,
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

async function post(base, body) {
  const res = await fetch(`${base}/api/doc/ops`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

/**
 * Editor B's text as a contract client computes it: it typed `own` into
 * `base` and has not seen its ack; the stored op `stored` arrives. By the
 * contract's rule the stored op's insert goes first, i.e. B transforms the
 * stored op with side 'left' against its own pending op.
 */
function contractClientText(baseText, own, stored) {
  const mine = otText.type.apply(baseText, toShareDB(own));
  return otText.type.apply(mine, otText.type.transform(toShareDB(stored), toShareDB(own), 'left'));
}

async function tie(args) {
  const peer = await startPeer(args);
  try {
    await post(peer.base, { client: 'setup', seq: 1, rev: 0, op: ['[]'] });
    // Both at revision 1, both inserting between the brackets.
    const first = await post(peer.base, { client: 'ed-a', seq: 1, rev: 1, op: [1, 'a', 1] });
    const second = await post(peer.base, { client: 'ed-b', seq: 1, rev: 1, op: [1, 'b', 1] });
    const { text } = await (await fetch(`${peer.base}/api/doc`)).json();
    return { text, first, second, clientB: contractClientText('[]', [1, 'b', 1], first.op) };
  } finally {
    await peer.stop();
  }
}

test('default (--tie-break contract): the insert stored first stays first', async () => {
  const { text, second, clientB } = await tie([]);
  assert.equal(text, '[ab]');
  assert.deepEqual(second.op, [2, 'b', 1], 'the newcomer was moved after "a"');
  assert.equal(clientB, text, 'a contract client agrees with the server');
});

test("--tie-break sharedb: ShareDB's own order puts the newcomer first", async () => {
  const { text, second, clientB } = await tie(['--tie-break', 'sharedb']);
  assert.equal(text, '[ba]');
  assert.deepEqual(second.op, [1, 'b', 2], 'the newcomer stayed before "a"');
  assert.equal(clientB, '[ab]');
  assert.notEqual(clientB, text, 'a contract client now disagrees with the server');
});

test('both orders agree when the inserts are at different positions', async () => {
  for (const args of [[], ['--tie-break', 'sharedb']]) {
    const peer = await startPeer(args);
    try {
      await post(peer.base, { client: 'setup', seq: 1, rev: 0, op: ['[]'] });
      await post(peer.base, { client: 'ed-a', seq: 1, rev: 1, op: ['a', 2] });
      await post(peer.base, { client: 'ed-b', seq: 1, rev: 1, op: [2, 'b'] });
      const { text } = await (await fetch(`${peer.base}/api/doc`)).json();
      assert.equal(text, 'a[]b', args.join(' ') || 'default');
    } finally {
      await peer.stop();
    }
  }
});
