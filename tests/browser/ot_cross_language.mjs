// The JavaScript half of tests/ot_cross_language.rs (run by it; not a test
// file of its own). Reads the cases Rust wrote — one JSON object a line,
// each with its inputs and what src/ot.rs computed — recomputes every
// result with assets/js/doc/ot.js and stops at the first one that differs.
//
//     node ot_cross_language.mjs CASES.jsonl

import { readFileSync } from 'node:fs';
import * as ot from '../../assets/js/doc/ot.js';

/** What JavaScript computes for one case, field by field, like Rust did. */
function compute(c) {
  if ('json' in c) {
    try {
      return { parsed: ot.fromJSON(c.json) };
    } catch (err) {
      if (!(err instanceof ot.OpError)) throw err;
      return { code: err.code };
    }
  }
  if ('patch' in c) {
    const [len, pos, del, text] = c.patch;
    return { op: ot.fromPatch(len, pos, del, text), replace_all: ot.replaceAll(len, text) };
  }
  const { doc, a, b, next } = c;
  const [a2, b2] = ot.transform(a, b);
  const afterA = ot.apply(doc, a);
  return {
    after_a: afterA,
    after_b: ot.apply(doc, b),
    transform: [a2, b2],
    converged: ot.apply(afterA, b2),
    compose: ot.compose(a, next),
    after_compose: ot.apply(doc, ot.compose(a, next)),
    carets: c.carets.map(([index]) => [
      index,
      ot.transformIndex(a, index, ot.Bias.BEFORE),
      ot.transformIndex(a, index, ot.Bias.AFTER),
    ]),
    selection: [
      ot.transformSelection(a, c.selection[0], ot.Bias.BEFORE),
      ot.transformSelection(a, c.selection[0], ot.Bias.AFTER),
    ],
  };
}

const lines = readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean);
for (const [i, line] of lines.entries()) {
  const input = JSON.parse(line);
  const expected = input.expected;
  let got;
  try {
    got = compute(input);
  } catch (err) {
    got = { threw: String(err) };
  }
  for (const field of Object.keys(expected)) {
    const want = JSON.stringify(expected[field]);
    const have = JSON.stringify(got[field]);
    if (want !== have) {
      console.error(`case ${i} differs in ${field}\n  input: ${line}\n  Rust:  ${want}\n  JS:    ${have}`);
      process.exit(1);
    }
  }
}
console.log(`${lines.length} cases agree`);
