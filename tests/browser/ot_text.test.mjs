/// A textarea counts UTF-16 units, the document code points
/// (assets/js/doc/text.js): offsets convert both ways through emoji, flags
/// and accents, an offset between the two halves of a surrogate pair snaps
/// to before the pair, and diff() turns any change of a textarea's value
/// into an operation over code points that reproduces the new value —
/// including an emoji replaced by another that shares its first half — and
/// uses the caret to place an ambiguous edit where the user made it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apply, length } from '../../assets/js/doc/ot.js';
import { codePointOffset, diff, utf16Offset } from '../../assets/js/doc/text.js';

test('offsets convert both ways and never land inside a pair', () => {
  const text = 'a🎉b👩\u200d💻é';
  // UTF-16:      a=0 🎉=1,2 b=3 👩=4,5 ZWJ=6 💻=7,8 é=9 end=10
  const expected = [0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7];
  for (let u = 0; u <= text.length; u++) {
    assert.equal(codePointOffset(text, u), expected[u], `UTF-16 offset ${u}`);
  }
  assert.equal(codePointOffset(text, 2), 1, 'inside 🎉: snapped to before it');
  for (let p = 0; p <= length(text); p++) {
    const u = utf16Offset(text, p);
    assert.equal(codePointOffset(text, u), p, `code point ${p} and back`);
  }
  assert.equal(utf16Offset(text, 99), text.length, 'past the end: the end');
  assert.equal(codePointOffset(text, 99), length(text));
});

test('diff of typing, deleting and pasting reproduces the new value', () => {
  const cases = [
    ['', 'h'],
    ['hello', 'hello!'],
    ['hello', 'Hello'],
    ['hello world', 'hello'],
    ['🎉', '🎊'], // same high surrogate, different low one
    ['🎊🎉', '🎊🎊'],
    ['a👩\u200d💻b', 'ab'],
    ['e\u0301', 'e'], // deleting a combining accent leaves the e
    ['中文', '中a文'],
    ['abc', ''],
  ];
  for (const [before, after] of cases) {
    const op = diff(before, after);
    assert.equal(apply(before, op), after, `${JSON.stringify(before)} → ${JSON.stringify(after)}: ${JSON.stringify(op)}`);
  }
  assert.deepEqual(diff('🎉', '🎊'), ['🎊', -1], 'the pair is replaced whole');
  assert.deepEqual(diff('hello', 'hello'), [5], 'no change: a retain');
});

test('the caret places an ambiguous edit where the user made it', () => {
  // "aa" → "aaa": typed at 0, 1 or 2? The caret after typing says.
  assert.deepEqual(diff('aa', 'aaa', 1), ['a', 2]);
  assert.deepEqual(diff('aa', 'aaa', 2), [1, 'a', 1]);
  assert.deepEqual(diff('aa', 'aaa', 3), [2, 'a']);
  // "aa" → "a": Delete at 0 leaves the caret at 0, Backspace at 2 at 1.
  assert.deepEqual(diff('aa', 'a', 0), [-1, 1]);
  assert.deepEqual(diff('aa', 'a', 1), [1, -1]);
  // Typing an emoji after an emoji: the caret is in UTF-16 units.
  assert.deepEqual(diff('🎉', '🎉🎉', 4), [1, '🎉']);
  assert.deepEqual(diff('🎉', '🎉🎉', 2), ['🎉', 1]);
});

test('random edits of random texts: diff always reproduces them', () => {
  const pieces = ['a', 'b', ' ', '\n', '中', 'é', 'e\u0301', '🎉', '🎊', '😀', '👩\u200d💻', '🇫🇷'];
  let seed = 42;
  const below = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const text = (max) => Array.from({ length: below(max + 1) }, () => pieces[below(pieces.length)]).join('');
  for (let i = 0; i < 10_000; i++) {
    const before = text(6);
    // Replace a random code point range by random text, as a user would.
    const chars = Array.from(before);
    const from = below(chars.length + 1);
    const to = from + below(chars.length - from + 1);
    const typed = text(2);
    const after = chars.slice(0, from).join('') + typed + chars.slice(to).join('');
    const caret = chars.slice(0, from).join('').length + typed.length; // UTF-16, after the typed text
    for (const hint of [undefined, caret]) {
      const op = diff(before, after, hint);
      assert.equal(apply(before, op), after, `${JSON.stringify(before)} → ${JSON.stringify(after)} caret ${hint}`);
    }
  }
});
