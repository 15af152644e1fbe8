/// The browser's three-state OT client (assets/js/doc/client.js), against a
/// small in-test server (an array of stored ops and the contract's
/// transform): an edit is sent at once, a second one waits in the buffer
/// and a third is composed into it; the client's own op coming back in the
/// log is its acknowledgement, which sends the buffer; remote ops are
/// transformed past pending edits; duplicates are ignored and a gap is an
/// error; after a reconnect the op in flight is resent with the same seq and
/// rev and the server stores it once; and with random typing, delays,
/// duplicate deliveries, lost answers and resends, every client ends with
/// the server's text. The lesson's broken mode (transform: false) drifts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DocClient, GapError } from '../../assets/js/doc/client.js';
import { OpBuilder, apply, fromPatch, length, transform } from '../../assets/js/doc/ot.js';

/** The contract's server, in memory: one log, transform(stored, incoming). */
class TestServer {
  constructor() {
    this.log = [];
    this.text = '';
    this.seen = new Map(); // "client/seq" → stored op
  }

  /** Stores a submission (or recognises a resend) and returns the stored op. */
  submit({ client, seq, rev, op }) {
    const key = `${client}/${seq}`;
    if (this.seen.has(key)) return this.seen.get(key);
    assert.ok(rev <= this.log.length, 'rev ahead');
    for (const stored of this.log.slice(rev)) op = transform(stored.op, op)[1];
    this.text = apply(this.text, op);
    const stored = { rev: this.log.length + 1, op, client, seq, author: client, at: 0 };
    this.log.push(stored);
    this.seen.set(key, stored);
    return stored;
  }

  /** GET /api/doc/ops?since=rev */
  since(rev) {
    return this.log.slice(rev);
  }
}

/** A client whose sends are collected (the test decides when they arrive). */
function editor(id, options = {}) {
  const outbox = [];
  const client = new DocClient({ client: id, send: (s) => outbox.push(s), ...options });
  return { client, outbox };
}

/** Types text at a code point position of the client's text. */
function type(client, at, text) {
  client.edit(fromPatch(length(client.text), at, 0, text));
}

test('one op in flight, the rest buffered and composed', () => {
  const { client, outbox } = editor('tab-a');
  assert.equal(client.stateName, 'synchronized');
  type(client, 0, 'h');
  assert.deepEqual(outbox, [{ client: 'tab-a', seq: 0, rev: 0, op: ['h'] }]);
  assert.equal(client.stateName, 'awaiting_confirm');
  type(client, 1, 'i');
  type(client, 2, '!');
  assert.equal(outbox.length, 1, 'never more than one in flight');
  assert.equal(client.stateName, 'awaiting_with_buffer');
  assert.deepEqual(client.state.buffer, [1, 'i!'], 'the buffer is one composed op');
  assert.deepEqual(client.inFlight.op, ['h'], 'the op already sent is never changed');
  assert.equal(client.text, 'hi!');
});

test('our own op coming back in the log is the acknowledgement; then the buffer goes', () => {
  const server = new TestServer();
  const { client, outbox } = editor('tab-a');
  type(client, 0, 'h');
  type(client, 1, 'i');
  const stored = server.submit(outbox.shift());
  // The POST answer would say rev 1 — the client does not need it: the
  // stream does it.
  assert.equal(client.receive(stored), null, 'our own op changes nothing');
  assert.equal(client.rev, 1);
  assert.equal(client.stateName, 'awaiting_confirm');
  assert.deepEqual(outbox, [{ client: 'tab-a', seq: 1, rev: 1, op: [1, 'i'] }]);
  client.receive(server.submit(outbox.shift()));
  assert.equal(client.stateName, 'synchronized');
  assert.equal(server.text, 'hi');
  assert.equal(client.stats.acknowledged, 2);
});

test('a remote op is transformed past our pending edits', () => {
  const server = new TestServer();
  const a = editor('tab-a');
  const b = editor('tab-b');
  // Both start from "EASY AS 123" at rev 1.
  const base = server.submit({ client: 'setup', seq: 0, rev: 0, op: ['EASY AS 123'] });
  a.client.receive(base);
  b.client.receive(base);
  // a deletes "EASY " while b types inside "AS", concurrently.
  a.client.edit([-5, 6]);
  type(b.client, 6, 'L');
  type(b.client, 7, 'S');
  const fromA = server.submit(a.outbox.shift());
  // b receives a's op while its own edit is in flight and "S" is buffered.
  const applied = b.client.receive(fromA);
  assert.deepEqual(applied, [-5, 8], 'transformed past b pending edits');
  assert.equal(b.client.text, 'ALSS 123');
  assert.equal(b.client.stats.transformed, 1);
  a.client.receive(fromA);
  const fromB1 = server.submit(b.outbox.shift());
  b.client.receive(fromB1);
  const fromB2 = server.submit(b.outbox.shift());
  b.client.receive(fromB2);
  a.client.receive(fromB1);
  a.client.receive(fromB2);
  assert.equal(server.text, 'ALSS 123');
  assert.equal(a.client.text, server.text);
  assert.equal(b.client.text, server.text);
});

test('duplicates are ignored, a gap is an error', () => {
  const server = new TestServer();
  const { client } = editor('tab-a');
  const first = server.submit({ client: 'x', seq: 0, rev: 0, op: ['ab'] });
  const second = server.submit({ client: 'x', seq: 1, rev: 1, op: [2, 'c'] });
  const third = server.submit({ client: 'x', seq: 2, rev: 2, op: [3, 'd'] });
  client.receive(first);
  assert.equal(client.receive(first), null, 'overlapping poll answers');
  assert.equal(client.stats.duplicates, 1);
  assert.throws(() => client.receive(third), GapError);
  client.receive(second);
  client.receive(third);
  assert.equal(client.text, 'abcd');
});

test('after a reconnect the op in flight is resent unchanged and stored once', () => {
  const server = new TestServer();
  const a = editor('tab-a');
  const b = editor('tab-b');
  type(a.client, 0, 'A');
  const sent = a.outbox.shift();
  // The POST reached the server, but the answer was lost with the connection.
  server.submit(sent);
  // Meanwhile b typed and its op was stored after ours.
  type(b.client, 0, 'B');
  server.submit(b.outbox.shift());
  // a reconnects: it resends what is in flight, same seq and rev and op.
  const again = a.client.resend();
  assert.deepEqual(again, sent);
  assert.deepEqual(a.outbox.shift(), sent);
  const answer = server.submit(again);
  assert.equal(answer.rev, 1, 'the server recognised (client, seq): the first rev');
  assert.equal(server.log.length, 2, 'stored once');
  // Then it reads the log from its rev: its own op (the ack), then b's.
  for (const stored of server.since(a.client.rev)) a.client.receive(stored);
  for (const stored of server.since(b.client.rev)) b.client.receive(stored);
  assert.equal(a.client.stateName, 'synchronized');
  assert.equal(a.client.text, server.text);
  assert.equal(b.client.text, server.text);
  assert.equal(server.text, 'AB', 'the one stored first stays first');
});

test('a resend keeps the original rev and op even after remote ops were applied', () => {
  const server = new TestServer();
  const a = editor('tab-a');
  const b = editor('tab-b');
  type(a.client, 0, 'A');
  const sent = a.outbox.shift();
  type(b.client, 0, 'B');
  a.client.receive(server.submit(b.outbox.shift()));
  assert.deepEqual(a.client.state.outstanding, [1, 'A'], 'outstanding is transformed…');
  assert.deepEqual(a.client.resend(), sent, '…but the resend is what was sent');
  a.client.receive(server.submit(sent));
  assert.equal(a.client.text, server.text);
  assert.equal(server.text, 'BA');
});

test('random typing, delays, duplicates, lost answers and resends: everyone converges', () => {
  let seed = 7;
  const below = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const pieces = ['a', 'b', ' ', '\n', '中', 'é', '🎉', '👩\u200d💻'];
  for (let round = 0; round < 200; round++) {
    const server = new TestServer();
    const editors = ['p', 'q', 'r'].map((id) => ({ ...editor(id), cursor: 0 }));
    for (let step = 0; step < 60; step++) {
      const e = editors[below(editors.length)];
      const action = below(6);
      if (action < 2) {
        // Type or delete somewhere.
        const n = length(e.client.text);
        const at = below(n + 1);
        const del = Math.min(n - at, below(3));
        e.client.edit(fromPatch(n, at, del, below(3) ? pieces[below(pieces.length)] : ''));
      } else if (action === 2 && e.outbox.length) {
        // The submission reaches the server (maybe twice).
        const s = e.outbox.shift();
        server.submit(s);
        if (below(4) === 0) server.submit(s);
      } else if (action === 3) {
        // The transport delivers some of the log, maybe a stale page again.
        const from = Math.max(0, e.client.rev - below(2));
        for (const stored of server.since(from).slice(0, 1 + below(3))) e.client.receive(stored);
      } else if (action === 4) {
        // Reconnect: the in-flight op is resent (its first copy may be lost).
        e.outbox.length = 0;
        e.client.resend();
      }
    }
    // Settle: every submission arrives, everyone reads everything.
    for (let settled = false; !settled; ) {
      settled = true;
      for (const e of editors) {
        while (e.outbox.length) {
          server.submit(e.outbox.shift());
          settled = false;
        }
        for (const stored of server.since(e.client.rev)) {
          e.client.receive(stored);
          settled = false;
        }
      }
    }
    for (const e of editors) {
      assert.equal(e.client.stateName, 'synchronized', `round ${round}`);
      assert.equal(e.client.text, server.text, `round ${round}: ${e.client.client}`);
    }
    const keys = server.log.map((s) => `${s.client}/${s.seq}`);
    assert.equal(new Set(keys).size, keys.length, 'one op per (client, seq)');
  }
});

test('⚠ the broken mode (transform: false) drifts from the server', () => {
  const server = new TestServer();
  const base = server.submit({ client: 'setup', seq: 0, rev: 0, op: ['EASY AS 123'] });
  const a = editor('tab-a', { transform: false });
  const b = editor('tab-b', { transform: false });
  a.client.receive(base);
  b.client.receive(base);
  a.client.edit([-5, 6]); // delete "EASY "
  type(b.client, 6, 'L'); // "EASY ALS 123"
  type(b.client, 7, 'S'); // buffered
  const fromA = server.submit(a.outbox.shift());
  b.client.receive(fromA); // applied untransformed: deletes "EASY " of b's text
  a.client.receive(fromA);
  const fromB = server.submit(b.outbox.shift());
  a.client.receive(fromB);
  b.client.receive(fromB);
  const fromB2 = server.submit(b.outbox.shift());
  a.client.receive(fromB2);
  b.client.receive(fromB2);
  // b's first op was transformed by the server ("L" inside "AS"), but b's
  // buffered "S" was made on b's own, untransformed text, forced onto the
  // server's length, and landed at the end.
  assert.equal(server.text, 'ALS 123S');
  assert.equal(a.client.text, server.text, 'a had nothing pending');
  assert.equal(b.client.text, 'ALSS 123', 'b drifted from the server');
  assert.equal(a.client.stateName, 'synchronized');
  assert.equal(b.client.stateName, 'synchronized');
});

test('OpBuilder ops and textarea-style patches make the same edits', () => {
  // A sanity check of the helpers this file uses.
  assert.deepEqual(fromPatch(3, 1, 1, 'X'), new OpBuilder().retain(1).insert('X').delete(1).retain(1).done());
});
