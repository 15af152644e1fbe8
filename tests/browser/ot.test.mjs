/// The browser's operation algebra (assets/js/doc/ot.js), in plain Node: the
/// contract's examples; refusals with their codes; and, on thousands of
/// seeded random documents mixing ASCII, CJK, combining accents and emoji,
/// the same properties the Rust side has — both orders of a transform end
/// in the same text, compose equals applying in sequence, the first
/// argument's insert goes first, a caret moves as a marker would, normal
/// form is idempotent. (tests/ot_cross_language.rs checks that the results
/// are also identical to Rust's.)

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Bias,
  OpBuilder,
  apply,
  baseLength,
  compose,
  fit,
  fromJSON,
  fromPatch,
  length,
  replaceAll,
  targetLength,
  transform,
  transformIndex,
  transformSelection,
} from '../../assets/js/doc/ot.js';

/** A small seeded generator (mulberry32): the same cases on every run. */
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['a', 'b', 'x', ' ', '\n', '\t', '中', '文字', 'é', 'e\u0301', '🎉', '👩\u200d💻', '🇫🇷', '∑'];

function random(seed) {
  const r = rng(seed);
  const below = (n) => Math.floor(r() * n);
  const text = (max) => Array.from({ length: below(max + 1) }, () => PIECES[below(PIECES.length)]).join('');
  const op = (len) => {
    const b = new OpBuilder();
    let left = len;
    for (let steps = below(8); steps > 0; steps--) {
      const n = Math.min(left, 1 + below(4));
      const k = below(4);
      if (k < 2) b.retain(n);
      else if (k === 2) b.delete(n);
      else b.insert(text(2) || 'y');
      left -= k === 3 ? 0 : n;
    }
    return b.retain(left).done();
  };
  return { below, text, op };
}

const CASES = 10_000;

test('the contract examples', () => {
  assert.equal(apply('hello', fromJSON([5, ' world'])), 'hello world');
  assert.equal(apply('hello', fromJSON(['H', -1, 4])), 'Hello');
  assert.deepEqual(fromJSON([-1, 'H', 4]), ['H', -1, 4]);
  assert.deepEqual(fromJSON([2, 3, 'a', 'b', -1, -1]), [5, 'ab', -2]);
  assert.equal(apply('', fromJSON([])), '');
  // 👩‍💻 is three characters (and five UTF-16 units).
  assert.equal(length('👩\u200d💻'), 3);
  assert.equal(apply('👩\u200d💻', [3, '!']), '👩\u200d💻!');
  assert.deepEqual(replaceAll(5, 'bye'), ['bye', -5]);
  assert.deepEqual(fromPatch(5, 1, 2, 'EE'), [1, 'EE', -2, 2]);
});

test('refusals carry the contract codes', () => {
  const code = (value) => {
    try {
      fromJSON(value);
    } catch (err) {
      return err.code;
    }
    return 'accepted';
  };
  const refused = [
    { op: [1] },
    'abc',
    [0],
    [-0],
    [1.5],
    [''],
    [[1]],
    [{ retain: 1 }],
    [null],
    [true],
    [2 ** 53],
    [Number.MAX_SAFE_INTEGER, 1], // merged, the retain would not be exact
    ['a', Number.MAX_SAFE_INTEGER],
    ['\uD800'], // half a surrogate pair
  ];
  for (const bad of refused) {
    assert.equal(code(bad), 'bad_operation', JSON.stringify(bad));
  }
  for (const bad of [['a\rb'], ['\u0000'], ['\u007f'], ['\u0085']]) {
    assert.equal(code(bad), 'control_character', JSON.stringify(bad));
  }
  assert.equal(code([Number.MAX_SAFE_INTEGER]), 'accepted');
  assert.equal(code(['line\n\tend']), 'accepted');
  assert.throws(() => apply('hello', [4, '!']), { code: 'bad_operation' });
  assert.throws(() => compose([4, '!'], [4, '!']), { code: 'bad_operation' });
  assert.throws(() => transform([4, '!'], []), { code: 'bad_operation' });
  assert.throws(() => fromPatch(3, 2, 2, ''), { code: 'bad_operation' });
});

test('transform: both orders end in the same text', () => {
  for (let seed = 0; seed < CASES; seed++) {
    const g = random(seed);
    const s = g.text(8);
    const a = g.op(length(s));
    const b = g.op(length(s));
    const [a2, b2] = transform(a, b);
    assert.equal(apply(apply(s, a), b2), apply(apply(s, b), a2), `seed ${seed}`);
  }
});

test('compose equals applying in sequence', () => {
  for (let seed = 0; seed < CASES; seed++) {
    const g = random(seed);
    const s = g.text(8);
    const a = g.op(length(s));
    const b = g.op(targetLength(a));
    const ab = compose(a, b);
    assert.equal(baseLength(ab), baseLength(a));
    assert.equal(apply(s, ab), apply(apply(s, a), b), `seed ${seed}`);
  }
});

test("on a tie the first argument's insert goes first, and a double delete deletes once", () => {
  for (let seed = 0; seed < CASES; seed++) {
    const g = random(seed);
    const s = g.text(8);
    const chars = Array.from(s);
    const at = g.below(chars.length + 1);
    const [dx, dy] = [g.below(3), g.below(3)].map((d) => Math.min(d, chars.length - at));
    const [x, y] = [g.text(2) || 'x', g.text(2) || 'y'];
    const a = fromPatch(chars.length, at, dx, x);
    const b = fromPatch(chars.length, at, dy, y);
    const [a2, b2] = transform(a, b);
    const expected = chars.slice(0, at).join('') + x + y + chars.slice(at + Math.max(dx, dy)).join('');
    assert.equal(apply(apply(s, a), b2), expected, `seed ${seed}`);
    assert.equal(apply(apply(s, b), a2), expected, `seed ${seed}`);
  }
});

test('a caret moves like a marker character', () => {
  const marker = '\uE000';
  for (let seed = 0; seed < CASES; seed++) {
    const g = random(seed);
    const s = g.text(8);
    const op = g.op(length(s));
    const caret = g.below(length(s) + 1);
    const put = fromPatch(length(s), caret, 0, marker);
    for (const bias of [Bias.BEFORE, Bias.AFTER]) {
      const after = bias === Bias.BEFORE ? transform(put, op)[1] : transform(op, put)[0];
      const found = Array.from(apply(apply(s, put), after)).indexOf(marker);
      assert.equal(transformIndex(op, caret, bias), found, `seed ${seed} ${bias}`);
    }
  }
});

test('selections keep foreign text outside and collapse when deleted', () => {
  const op = [6, 'big ', 5, '!'];
  assert.deepEqual(transformSelection(op, { anchor: 6, head: 11 }, Bias.BEFORE), { anchor: 10, head: 15 });
  assert.equal(transformSelection(op, { anchor: 11, head: 11 }, Bias.BEFORE).head, 15);
  assert.equal(transformSelection(op, { anchor: 11, head: 11 }, Bias.AFTER).head, 16);
  assert.deepEqual(transformSelection([6, -5], { anchor: 11, head: 6 }, Bias.BEFORE), { anchor: 6, head: 6 });
});

test('normal form: idempotent, same meaning as the raw components', () => {
  for (let seed = 0; seed < CASES; seed++) {
    const g = random(seed);
    const s = g.text(8);
    // Raw, un-normalised components: neighbours of one kind, deletes
    // before inserts.
    const raw = [];
    let left = length(s);
    for (let steps = g.below(8); steps > 0; steps--) {
      const k = g.below(3);
      if (k === 2) raw.push(g.text(2) || 'z');
      else if (left > 0) {
        const n = 1 + g.below(Math.min(left, 3));
        raw.push(k === 0 ? n : -n);
        left -= n;
      }
    }
    if (left > 0) raw.push(left);
    const op = fromJSON(raw);
    assert.deepEqual(fromJSON(op), op);
    const chars = Array.from(s);
    let at = 0;
    let naive = '';
    for (const c of raw) {
      if (typeof c === 'string') naive += c;
      else if (c > 0) naive += chars.slice(at, (at += c)).join('');
      else at -= c;
    }
    assert.equal(apply(s, op), naive, `seed ${seed}`);
    for (let i = 1; i < op.length; i++) {
      const kinds = [op[i - 1], op[i]].map((c) => (typeof c === 'string' ? 'i' : c > 0 ? 'r' : 'd'));
      assert.notEqual(kinds[0], kinds[1], JSON.stringify(op));
      assert.ok(!(kinds[0] === 'd' && kinds[1] === 'i'), JSON.stringify(op));
    }
  }
});

test('fit (the broken mode only) forces an op onto another length', () => {
  assert.deepEqual(fit([5, 'x', -2, 3], 4), [4, 'x']);
  assert.deepEqual(fit([2, 'x'], 6), [2, 'x', 4]);
  assert.equal(apply('abcd', fit([5, 'x', -2, 3], 4)), 'abcdx');
});
