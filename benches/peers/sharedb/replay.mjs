// Replay a sequential editing trace through any server of the contract, as
// one editor on one WebSocket, as fast as the server acknowledges: it is the
// only writer, so edit k is sent against revision k - 1 without waiting for
// k - 1's ack (at most --window edits unacknowledged). At the end the
// server's text must equal the trace's endContent. Prints the acknowledged
// edits per second. A quick measuring tool for this peer, not the project's
// load generator.
//
//   node replay.mjs http://127.0.0.1:3000 path/to/seph-blog1.json.gz [--window 256] [--limit N]
//
// The server's document must be empty (a fresh peer). One edit is one
// transaction of the trace (its patches composed into one op).

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';

import otText from 'ot-text-unicode';
import WebSocket from 'ws';

import { codePoints, fromShareDB, lengthChange } from './ops.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { window: { type: 'string', default: '256' }, limit: { type: 'string' } },
});
const [base, tracePath] = positionals;
if (!base || !tracePath) {
  console.error('usage: node replay.mjs BASE_URL TRACE.json.gz [--window N] [--limit N]');
  process.exit(2);
}
const WINDOW = Number(values.window);

const trace = JSON.parse(gunzipSync(readFileSync(tracePath)).toString('utf8'));
if (trace.kind === 'concurrent') {
  console.error('this replays sequential traces only');
  process.exit(2);
}
const txns = values.limit ? trace.txns.slice(0, Number(values.limit)) : trace.txns;

// Prepare every op beforehand, so the timing is the server's: one patch
// [pos, deleted, inserted] is ot-text-unicode's [pos, inserted, {d: deleted}],
// a transaction's patches are composed, and the result is written in the
// contract's form against the document's length before it.
let length = codePoints(trace.startContent ?? '');
const ops = txns.map(({ patches }) => {
  let op = [];
  for (const [pos, del, ins] of patches) {
    const patch = [];
    if (pos) patch.push(pos);
    if (ins) patch.push(ins);
    if (del) patch.push({ d: del });
    op = otText.type.compose(op, patch);
  }
  const contract = fromShareDB(op, length);
  length += lengthChange(op);
  return contract;
});

const start = await (await fetch(`${base}/api/doc`)).json();
if (start.text !== (trace.startContent ?? '')) {
  console.error(`the document is not the trace's start (rev ${start.rev}, ${start.text.length} characters): start a fresh server`);
  process.exit(2);
}

const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/doc/ws?since=${start.rev}`);
await new Promise((resolve, reject) => {
  ws.once('open', resolve);
  ws.once('error', reject);
});

const client = `replay-${process.pid}`;
let sent = 0;
let acked = 0;
let t0 = 0;
const done = new Promise((resolve, reject) => {
  ws.on('message', (data) => {
    const frame = JSON.parse(data);
    if (frame.type === 'error') return reject(new Error(`edit ${frame.ref}: ${frame.code}: ${frame.error}`));
    if (frame.type !== 'ack') return; // welcome, and our own ops coming back
    acked++;
    if (acked === ops.length) return resolve();
    pump();
  });
  ws.on('close', (code) => reject(new Error(`socket closed (${code}) after ${acked} acks`)));
});

function pump() {
  while (sent < ops.length && sent - acked < WINDOW) {
    ws.send(JSON.stringify({ type: 'op', ref: sent, client, seq: sent, rev: start.rev + sent, op: ops[sent] }));
    sent++;
  }
}

t0 = performance.now();
pump();
await done;
const seconds = (performance.now() - t0) / 1000;
ws.close();

const end = await (await fetch(`${base}/api/doc`)).json();
const converged = end.text === trace.endContent || values.limit !== undefined;
console.log(JSON.stringify({
  trace: tracePath.split('/').at(-1),
  edits: ops.length,
  window: WINDOW,
  seconds: Number(seconds.toFixed(3)),
  edits_per_s: Math.round(ops.length / seconds),
  end_rev: end.rev,
  end_content_matches: values.limit !== undefined ? 'not checked (--limit)' : end.text === trace.endContent,
}));
process.exit(converged ? 0 : 1);
