// Many editors at once, on stale revisions: 8 clients each submit 60 random
// ops over HTTP (inserts of mixed scripts and emoji, deletes), all at the
// same time and in small bursts, each against the last revision it fetched,
// so ShareDB has to transform nearly every op (478 of 480 with these seeds);
// some ops are sent twice. Afterwards the log must replay, op by op
// from the empty document, to exactly the server's text; every stored op
// must be in normal form and span the document it applies to; and there
// must be one stored op per distinct (client, seq). Runs against the real
// peer on a free port.
//
//   node --test concurrency.test.mjs

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';

const CLIENTS = 8;
const OPS_EACH = 60;
const ALPHABET = ['a', 'b', ' ', '\n', '漢', 'é', '😀', '👩‍💻'];

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function startPeer() {
  const child = spawn(process.execPath, ['server.js', '--port', '0'], { cwd: import.meta.dirname, stdio: ['ignore', 'pipe', 'inherit'] });
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
  return { base, stop: async () => (child.kill('SIGTERM'), once(child, 'exit')) };
}

/** Apply a contract op over code points (the reference, independent of ops.js). */
function apply(doc, op) {
  const chars = [...doc];
  let at = 0;
  let out = '';
  for (const c of op) {
    if (typeof c === 'string') out += c;
    else if (c > 0) {
      out += chars.slice(at, at + c).join('');
      at += c;
    } else at -= c;
  }
  assert.equal(at, chars.length, `${JSON.stringify(op)} does not span a document of ${chars.length}`);
  return out;
}

/** A random edit at one place of a document of `length` characters. */
function randomEdit(next, length) {
  const pos = Math.floor(next() * (length + 1));
  const del = next() < 0.3 ? Math.min(length - pos, 1 + Math.floor(next() * 3)) : 0;
  const ins = del && next() < 0.5 ? '' : ALPHABET[Math.floor(next() * ALPHABET.length)];
  const op = [];
  if (pos) op.push(pos);
  if (ins) op.push(ins);
  if (del) op.push(-del);
  if (length - pos - del) op.push(length - pos - del);
  return op;
}

test(`${CLIENTS} editors × ${OPS_EACH} ops on stale revisions: the log replays to the text`, async () => {
  const peer = await startPeer();
  try {
    const post = async (body) => {
      const res = await fetch(`${peer.base}/api/doc/ops`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      assert.ok(res.status === 201 || res.status === 200, `${res.status} ${await res.clone().text()}`);
      return { status: res.status, ...(await res.json()) };
    };
    const fetchDoc = async () => (await fetch(`${peer.base}/api/doc`)).json();

    const answers = new Map(); // `${client}/${seq}` → first answer's rev
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        const next = rng(100 + c);
        let seen = await fetchDoc();
        for (let seq = 0; seq < OPS_EACH; ) {
          // Refresh now and then, so most ops are made several revisions back.
          if (next() < 0.25) seen = await fetchDoc();
          // A burst of 1 to 3 ops in flight at once, more than a contract
          // client sends. (They still do not make ShareDB's commits race:
          // with MemoryDB a submission runs to its commit in one series of
          // process.nextTick callbacks, before the next request is read.)
          const burst = Math.min(OPS_EACH - seq, 1 + Math.floor(next() * 3));
          const bodies = Array.from({ length: burst }, (_, k) => ({ client: `ed-${c}`, seq: seq + k, rev: seen.rev, op: randomEdit(next, [...seen.text].length) }));
          seq += burst;
          await Promise.all(
            bodies.map(async (body) => {
              const first = await post(body);
              assert.equal(first.status, 201);
              answers.set(`${body.client}/${body.seq}`, first.rev);
              if (next() < 0.1) {
                const again = await post(body); // a resend: stores nothing
                assert.equal(again.status, 200);
                assert.equal(again.rev, first.rev);
              }
            }),
          );
        }
      }),
    );

    const final = await fetchDoc();
    assert.equal(final.rev, CLIENTS * OPS_EACH, 'one revision per distinct (client, seq)');

    let text = '';
    const seenKeys = new Set();
    for (let since = 0; since < final.rev; since += 500) {
      const { ops } = await (await fetch(`${peer.base}/api/doc/ops?since=${since}&limit=500`)).json();
      for (const stored of ops) {
        for (let i = 1; i < stored.op.length; i++) {
          const [p, c] = [stored.op[i - 1], stored.op[i]];
          const kind = (x) => (typeof x === 'string' ? 'i' : x > 0 ? 'r' : 'd');
          assert.ok(kind(p) !== kind(c) && !(kind(p) === 'd' && kind(c) === 'i'), `rev ${stored.rev} not in normal form: ${JSON.stringify(stored.op)}`);
        }
        text = apply(text, stored.op);
        const key = `${stored.client}/${stored.seq}`;
        assert.ok(!seenKeys.has(key), `${key} stored twice`);
        seenKeys.add(key);
        assert.equal(answers.get(key), stored.rev, `${key} was answered with another rev`);
      }
    }
    assert.equal(seenKeys.size, CLIENTS * OPS_EACH);
    assert.equal(text, final.text, 'the log replays to the server text');
  } finally {
    await peer.stop();
  }
});
