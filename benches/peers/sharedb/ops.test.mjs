// The adapter's format conversion, checked on random documents and random
// operations (seeded, a few thousand of each): a contract op read with
// parseOp comes out in normal form and does what it said; ot-text-unicode
// applies its converted form to the same text; converting back gives the
// same op; and ops that ot-text-unicode itself produced by transforming
// come back as valid contract ops. Then the refusals, one by one.
//
//   node --test ops.test.mjs

import assert from 'node:assert/strict';
import { test } from 'node:test';

import otText from 'ot-text-unicode';

import { ApiError, codePoints, fromShareDB, lengthChange, parseOp, replaceAll, toShareDB } from './ops.js';

const CASES = 3000;

/** mulberry32: a small seeded generator, so a failure can be replayed. */
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

// Single code points: ASCII, newline and tab, CJK, a combining mark, an
// emoji outside the BMP, and the pieces of 👩‍💻 (woman, zero-width joiner,
// laptop), so joined emoji get split between components too.
const ALPHABET = ['a', 'b', 'Z', ' ', '\n', '\t', '漢', '字', '\u0301', 'é', '😀', '👩', '\u200d', '💻'];

function randomText(next, max) {
  let s = '';
  const n = Math.floor(next() * (max + 1));
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(next() * ALPHABET.length)];
  return s;
}

/**
 * A random contract op over a document of `length` characters, NOT in
 * normal form on purpose: retains split in two, deletes before inserts,
 * inserts split, so parseOp has something to normalise.
 */
function randomOp(next, length) {
  const op = [];
  let left = length;
  while (left > 0 || next() < 0.3) {
    const r = next();
    if (r < 0.3 && left > 0) {
      const n = 1 + Math.floor(next() * left);
      op.push(n);
      left -= n;
    } else if (r < 0.55 && left > 0) {
      const n = 1 + Math.floor(next() * Math.min(left, 4));
      op.push(-n);
      left -= n;
    } else if (r < 0.85) {
      op.push(randomText(next, 3) || 'x');
    } else if (left > 0) {
      op.push(1); // a retain right after another one, sometimes
      left -= 1;
    }
    if (left === 0 && next() < 0.7) break;
  }
  return op;
}

/** Apply a contract op to a string, counting code points: the reference. */
function applyContract(doc, op) {
  const chars = [...doc];
  let at = 0;
  const out = [];
  for (const c of op) {
    if (typeof c === 'string') out.push(c);
    else if (c > 0) {
      out.push(chars.slice(at, at + c).join(''));
      at += c;
    } else at -= c;
  }
  assert.equal(at, chars.length, 'the reference op must span the document');
  return out.join('');
}

function assertNormalForm(op, baseLength) {
  let span = 0;
  for (let i = 0; i < op.length; i++) {
    const c = op[i];
    const kind = typeof c === 'string' ? 'insert' : c > 0 ? 'retain' : 'delete';
    if (i > 0) {
      const p = op[i - 1];
      const prev = typeof p === 'string' ? 'insert' : p > 0 ? 'retain' : 'delete';
      assert.notEqual(kind, prev, `adjacent ${kind}s in ${JSON.stringify(op)}`);
      assert.ok(!(prev === 'delete' && kind === 'insert'), `a delete before an insert in ${JSON.stringify(op)}`);
    }
    if (kind !== 'insert') span += Math.abs(c);
  }
  assert.equal(span, baseLength, `${JSON.stringify(op)} spans ${span}, not ${baseLength}`);
}

test('parseOp gives the normal form of the same edit', () => {
  const next = rng(1);
  for (let i = 0; i < CASES; i++) {
    const doc = randomText(next, 12);
    const op = randomOp(next, codePoints(doc));
    const parsed = parseOp(op, codePoints(doc));
    assertNormalForm(parsed, codePoints(doc));
    assert.equal(applyContract(doc, parsed), applyContract(doc, op), `case ${i}: ${JSON.stringify(op)} on ${JSON.stringify(doc)}`);
    assert.deepEqual(parseOp(parsed, codePoints(doc)), parsed, 'normal form is idempotent');
  }
});

test('ot-text-unicode applies the converted op to the same result, and it converts back', () => {
  const next = rng(2);
  for (let i = 0; i < CASES; i++) {
    const doc = randomText(next, 12);
    const length = codePoints(doc);
    const parsed = parseOp(randomOp(next, length), length);
    const shared = toShareDB(parsed);
    otText.type.checkOp(shared); // throws on anything ot-text-unicode would refuse
    assert.equal(otText.type.apply(doc, shared), applyContract(doc, parsed), `case ${i}`);
    assert.equal(codePoints(applyContract(doc, parsed)), length + lengthChange(shared));
    assert.deepEqual(fromShareDB(shared, length), parsed, `case ${i}: round trip`);
  }
});

test('ops that ot-text-unicode transformed come back as valid contract ops', () => {
  const next = rng(3);
  for (let i = 0; i < CASES; i++) {
    const doc = randomText(next, 12);
    const length = codePoints(doc);
    const a = toShareDB(parseOp(randomOp(next, length), length));
    const b = toShareDB(parseOp(randomOp(next, length), length));
    for (const side of ['left', 'right']) {
      const aPrime = otText.type.transform(a, b, side);
      const afterB = otText.type.apply(doc, b);
      const contract = fromShareDB(aPrime, codePoints(afterB));
      assertNormalForm(contract, codePoints(afterB));
      assert.equal(applyContract(afterB, contract), otText.type.apply(afterB, aPrime), `case ${i} (${side})`);
    }
  }
});

test('invertible deletes ({d: "text"}) count code points', () => {
  assert.deepEqual(fromShareDB([1, { d: '👩‍💻' }], 5), [1, -3, 1]);
});

test('examples from the contract', () => {
  assert.deepEqual(parseOp([5, ' world'], 5), [5, ' world']);
  assert.deepEqual(parseOp(['H', -1, 4], 5), ['H', -1, 4]);
  assert.deepEqual(parseOp([-1, 'H', 4], 5), ['H', -1, 4]);
  assert.deepEqual(parseOp([2, 3, 'a', 'b', -1, -1], 7), [5, 'ab', -2]);
  assert.deepEqual(parseOp([], 0), []);
  assert.deepEqual(parseOp([3], 3), [3]);
  assert.deepEqual(toShareDB(['H', -1, 4]), ['H', { d: 1 }]);
  assert.deepEqual(fromShareDB(['H', { d: 1 }], 5), ['H', -1, 4]);
  assert.deepEqual(fromShareDB([], 4), [4]);
  assert.deepEqual(replaceAll(3, 'new'), ['new', -3]);
  assert.deepEqual(replaceAll(0, ''), []);
  assert.equal(codePoints('👩‍💻'), 3);
  assert.equal(codePoints('é'), 1);
});

test('refusals: status and code', () => {
  const refused = (op, length, status, code) => {
    assert.throws(() => parseOp(op, length), (err) => err instanceof ApiError && err.status === status && err.code === code, JSON.stringify(op));
  };
  refused('abc', 3, 422, 'bad_operation');
  refused({ 0: 3 }, 3, 422, 'bad_operation');
  refused(null, 0, 422, 'bad_operation');
  refused([0, 3], 3, 422, 'bad_operation');
  refused([-0, 3], 3, 422, 'bad_operation');
  refused([1.5, 1.5], 3, 422, 'bad_operation');
  refused([2 ** 53, -3], 3, 422, 'bad_operation');
  refused(['', 3], 3, 422, 'bad_operation');
  refused([[3]], 3, 422, 'bad_operation');
  refused([true, 3], 3, 422, 'bad_operation');
  refused([null, 3], 3, 422, 'bad_operation');
  refused([2], 3, 422, 'bad_operation');
  refused([4], 3, 422, 'bad_operation');
  refused([3, -1], 3, 422, 'bad_operation');
  refused([3, 'a\rb'], 3, 422, 'control_character');
  refused([3, 'a\u0000'], 3, 422, 'control_character');
  refused([3, '\u0085'], 3, 422, 'control_character');
  refused([3, '\ud800'], 3, 400, 'bad_json');
  assert.deepEqual(parseOp([3, 'a\nb\tc'], 3), [3, 'a\nb\tc']);
});
