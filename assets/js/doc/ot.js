// Operational transformation — the shared document's edits, in the browser.
//
// The chat never changes what came before; a document does. Ada deletes a
// word while Bob types inside it, each against the text *they* saw. This
// module is the algebra that lets both edits survive. It is the same,
// rule for rule, as the server's src/ot.rs (a Rust test checks the two
// against each other on thousands of random cases).
//
// AN OPERATION is a plain array — exactly what travels as JSON — walking
// over the whole document from left to right:
//
//     5        keep (retain) the next 5 characters
//     "hi"     insert "hi" here
//     -3       delete the next 3 characters
//
// On "hello", [5, " world"] appends and ["H", -1, 4] capitalises.
//
// CHARACTERS ARE CODE POINTS, not UTF-16 units: "👩‍💻".length is 5 in
// JavaScript but the document counts 3 characters (woman, zero-width joiner,
// laptop). Every count here goes through length() below, never .length.
// (Converting a textarea's UTF-16 offsets is text.js's job.)
//
// THE INVARIANT: an operation's base length (retains + deletes) equals the
// length of the document it applies to; its target length (retains +
// inserted characters) is the result's length. Every function checks it.
//
// NORMAL FORM (as ot.js builds ops, and as the server stores them): no two
// neighbours of one kind, and where an insert and a delete meet, the insert
// comes first: [-1, "H", 4] is written ["H", -1, 4]. Build ops with
// OpBuilder, or parse them with fromJSON, and they are in normal form.
//
// THE TIE RULE: transform(a, b) puts a's insert first when both insert at
// the same point. The contract says the operation stored first stays first,
// so the stored one is always the first argument: the server calls
// transform(stored, incoming), and this browser's client (client.js) calls
// transform(serverOp, ownPending). (ot.js's server does the opposite.)

/** Why an operation was refused; `code` is the contract's stable code. */
export class OpError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'OpError';
    this.code = code; // 'bad_operation' or 'control_character'
  }
}

/** What happens to a caret when text is inserted exactly at it. */
export const Bias = Object.freeze({
  // Someone else typed it: the caret stays before it.
  BEFORE: 'before',
  // The caret's owner typed it: the caret moves past it.
  AFTER: 'after',
});

export const isRetain = (c) => typeof c === 'number' && c > 0;
export const isDelete = (c) => typeof c === 'number' && c < 0;
export const isInsert = (c) => typeof c === 'string';

/** Length in code points — what every count in an operation means. */
export function length(text) {
  let n = 0;
  for (const _ of text) n++; // for…of walks code points, not UTF-16 units
  return n;
}

/** Builds an operation in normal form: merges neighbours, inserts first. */
export class OpBuilder {
  constructor() {
    this.ops = [];
  }

  retain(n) {
    if (n === 0) return this;
    const last = this.ops.length - 1;
    if (isRetain(this.ops[last])) this.ops[last] += n;
    else this.ops.push(n);
    return this;
  }

  insert(text) {
    if (text === '') return this;
    const ops = this.ops;
    const last = ops.length - 1;
    if (isInsert(ops[last])) {
      ops[last] += text; // insert after insert: one longer insert
    } else if (isDelete(ops[last])) {
      // Insert after a delete is written insert-first (same text either
      // way). If an insert stands before the delete, join it.
      if (isInsert(ops[last - 1])) ops[last - 1] += text;
      else ops.splice(last, 0, text);
    } else {
      ops.push(text);
    }
    return this;
  }

  delete(n) {
    if (n === 0) return this;
    const last = this.ops.length - 1;
    if (isDelete(this.ops[last])) this.ops[last] -= n;
    else this.ops.push(-n);
    return this;
  }

  /** The finished operation (a plain array). */
  done() {
    return this.ops;
  }
}

/** Characters the operation applies to: retains + deletes. */
export function baseLength(op) {
  let n = 0;
  for (const c of op) if (!isInsert(c)) n += Math.abs(c);
  return n;
}

/** Characters of the result: retains + inserted characters. */
export function targetLength(op) {
  let n = 0;
  for (const c of op) n += isInsert(c) ? length(c) : isRetain(c) ? c : 0;
  return n;
}

/** True when applying it changes nothing. */
export function isNoop(op) {
  return op.every(isRetain);
}

// Cc control characters other than \n and \t (CR too: one kind of line end).
const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/u;
// Half of a surrogate pair on its own is not a character at all.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Refuses text the document may not contain. */
export function checkText(text) {
  const control = CONTROL.exec(text);
  if (control) {
    const hex = control[0].codePointAt(0).toString(16).toUpperCase().padStart(4, '0');
    throw new OpError(
      'control_character',
      `the inserted text contains a control character (U+${hex}); only newline and tab are allowed, and line ends are \\n alone`,
    );
  }
  if (LONE_SURROGATE.test(text)) {
    throw bad('the inserted text contains half of a surrogate pair');
  }
}

const bad = (message) => new OpError('bad_operation', message);

const kind = (v) =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;

/**
 * Parses an operation from its JSON value (after JSON.parse), refusing what
 * the contract does not allow, and returns it in normal form.
 *
 * JSON.parse has already turned 1e3 and 1.0 into 1000 and 1, so those are
 * accepted here; the server, which sees the text, refuses them. 1.5 and
 * -0 are refused here as there.
 */
export function fromJSON(value) {
  if (!Array.isArray(value)) {
    throw bad(`an operation is a JSON array of components, not ${kind(value)}`);
  }
  const b = new OpBuilder();
  let base = 0;
  let target = 0;
  value.forEach((c, index) => {
    if (typeof c === 'number') {
      if (!Number.isInteger(c)) throw bad(`component ${index} is ${c}, not a whole number`);
      if (c === 0) throw bad(`component ${index} is 0; retain and delete counts are never zero`);
      if (c > 0) {
        b.retain(c);
        target += c;
      } else b.delete(-c);
      base += Math.abs(c);
    } else if (typeof c === 'string') {
      if (c === '') throw bad(`component ${index} is an empty string; an insert inserts at least one character`);
      checkText(c);
      b.insert(c);
      target += length(c);
    } else {
      throw bad(
        `component ${index} is ${kind(c)}; a component is a positive whole number (retain), ` +
          'a negative whole number (delete) or a non-empty string (insert)',
      );
    }
    // Also catches [2^53 − 1, 1], whose merged retain would not be exact.
    if (base > Number.MAX_SAFE_INTEGER || target > Number.MAX_SAFE_INTEGER) {
      throw bad(`component ${index} takes the operation past 2^53 - 1 characters`);
    }
  });
  return b.done();
}

function doesNotFit(op, docLength) {
  return bad(`the operation covers ${baseLength(op)} characters but the document has ${docLength}`);
}

/** Applies an operation to a text and returns the new text. */
export function apply(text, op) {
  const chars = Array.from(text); // code points
  if (baseLength(op) !== chars.length) throw doesNotFit(op, chars.length);
  const out = [];
  let at = 0;
  for (const c of op) {
    if (isRetain(c)) {
      for (let i = 0; i < c; i++) out.push(chars[at + i]);
      at += c;
    } else if (isInsert(c)) {
      out.push(c);
    } else {
      at -= c; // skip the deleted characters (c is negative)
    }
  }
  return out.join('');
}

/**
 * Walks an operation's components, letting compose and transform consume
 * them a few characters at a time (a retain of 5 met by a delete of 2 is
 * taken as 2, then 3).
 */
class Steps {
  constructor(op) {
    this.op = op;
    this.index = 0;
    this.head = null;
    this.next();
  }

  next() {
    const c = this.op[this.index++];
    if (c === undefined) this.head = null;
    else if (isInsert(c)) this.head = { kind: 'insert', chars: Array.from(c) };
    else this.head = { kind: c > 0 ? 'retain' : 'delete', n: Math.abs(c) };
  }

  /** Length of what is left of the current component. */
  get size() {
    return this.head.kind === 'insert' ? this.head.chars.length : this.head.n;
  }

  /** Consumes n characters of the current component; returns an insert's text. */
  take(n) {
    const head = this.head;
    let text = '';
    if (head.kind === 'insert') {
      text = head.chars.slice(0, n).join('');
      head.chars = head.chars.slice(n);
    } else {
      head.n -= n;
    }
    if (this.size === 0) this.next();
    return text;
  }
}

/** a then b, as one operation: apply(apply(s, a), b) === apply(s, compose(a, b)). */
export function compose(a, b) {
  if (targetLength(a) !== baseLength(b)) {
    throw bad(`cannot compose: the first operation leaves ${targetLength(a)} characters but the second covers ${baseLength(b)}`);
  }
  const out = new OpBuilder();
  const sa = new Steps(a);
  const sb = new Steps(b);
  while (sa.head || sb.head) {
    if (sa.head?.kind === 'delete') {
      out.delete(sa.size); // a's deletes first: b never saw those characters
      sa.take(sa.size);
    } else if (sb.head?.kind === 'insert') {
      out.insert(sb.take(sb.size)); // b's inserts are new text
    } else {
      const n = Math.min(sa.size, sb.size);
      const ka = sa.head.kind;
      const kb = sb.head.kind;
      const text = sa.take(n);
      sb.take(n);
      if (ka === 'retain' && kb === 'retain') out.retain(n);
      else if (ka === 'retain' && kb === 'delete') out.delete(n);
      else if (ka === 'insert' && kb === 'retain') out.insert(text);
      // insert then delete: the text never existed — nothing to write.
    }
  }
  return out.done();
}

/**
 * Two operations made concurrently on the same text, rewritten to apply
 * after each other: [a2, b2] with apply(apply(s, a), b2) === apply(apply(s, b), a2).
 * On a tie (both insert at one point) a's text comes first — pass the
 * operation that was stored first as a.
 */
export function transform(a, b) {
  if (baseLength(a) !== baseLength(b)) {
    throw bad(
      `cannot transform: the operations cover ${baseLength(a)} and ${baseLength(b)} characters, ` +
        'but concurrent operations start from the same document',
    );
  }
  const a2 = new OpBuilder(); // a, to apply after b
  const b2 = new OpBuilder(); // b, to apply after a
  const sa = new Steps(a);
  const sb = new Steps(b);
  while (sa.head || sb.head) {
    // THE TIE RULE: a's insert is looked at first.
    if (sa.head?.kind === 'insert') {
      const n = sa.size;
      a2.insert(sa.take(n));
      b2.retain(n);
    } else if (sb.head?.kind === 'insert') {
      const n = sb.size;
      a2.retain(n);
      b2.insert(sb.take(n));
    } else {
      const n = Math.min(sa.size, sb.size);
      const ka = sa.head.kind;
      const kb = sb.head.kind;
      sa.take(n);
      sb.take(n);
      if (ka === 'retain' && kb === 'retain') {
        a2.retain(n);
        b2.retain(n);
      } else if (ka === 'delete' && kb === 'retain') {
        a2.delete(n);
      } else if (ka === 'retain' && kb === 'delete') {
        b2.delete(n);
      }
      // both delete: gone once, nothing to redo
    }
  }
  return [a2.done(), b2.done()];
}

/**
 * Moves a caret (a code point index in the text op applies to) to the same
 * spot afterwards. Inserts before the caret push it, deletes before it pull
 * it back; for an insert exactly at the caret, bias decides:
 *
 *   a caret moves past text inserted exactly at it only if the caret's
 *   owner typed that text (Bias.AFTER); text someone else inserts at my
 *   caret appears after it, and my caret stays (Bias.BEFORE).
 *
 * So the local caret, when a remote op arrives: BEFORE. Someone's caret
 * drawn by presence: BEFORE for other people's ops, AFTER for their own.
 */
export function transformIndex(op, index, bias) {
  index = Math.min(index, baseLength(op));
  let pos = 0; // where we are in the old text
  let moved = index;
  for (const c of op) {
    if (pos > index) break;
    if (isRetain(c)) {
      pos += c;
    } else if (isInsert(c)) {
      if (pos < index || bias === Bias.AFTER) moved += length(c);
    } else {
      const end = pos - c;
      moved -= Math.max(0, Math.min(index, end) - pos);
      pos = end;
    }
  }
  return moved;
}

/**
 * Moves a selection {anchor, head}. A caret moves as transformIndex does. A
 * real selection, under someone else's op (BEFORE), keeps text inserted at
 * its edges outside it: its left edge moves past such text, its right edge
 * stays before it. Under its owner's op (AFTER) both edges move past.
 */
export function transformSelection(op, { anchor, head }, bias) {
  if (anchor === head || bias === Bias.AFTER) {
    return { anchor: transformIndex(op, anchor, bias), head: transformIndex(op, head, bias) };
  }
  const left = transformIndex(op, Math.min(anchor, head), Bias.AFTER);
  const right = Math.max(left, transformIndex(op, Math.max(anchor, head), Bias.BEFORE));
  return anchor < head ? { anchor: left, head: right } : { anchor: right, head: left };
}

/** At pos, delete `del` characters and insert `text`, in a document of docLength. */
export function fromPatch(docLength, pos, del, text) {
  if (pos + del > docLength) {
    throw bad(`the patch deletes ${del} characters at ${pos} in a document of ${docLength}`);
  }
  checkText(text);
  return new OpBuilder().retain(pos).delete(del).insert(text).retain(docLength - pos - del).done();
}

/** Deletes everything and inserts text: what PUT /api/doc/text stores. */
export function replaceAll(oldLength, text) {
  return fromPatch(oldLength, 0, oldLength, text);
}

/**
 * ⚠ FOR THE LESSON'S BROKEN MODE ONLY ("send edits, don't transform").
 * Forces an operation onto a text of another length by clamping: counts
 * past the end are cut, a shortfall is retained. The result applies without
 * an error — to the wrong places. That is the drift the lesson shows.
 */
export function fit(op, docLength) {
  const out = new OpBuilder();
  let left = docLength;
  for (const c of op) {
    if (isInsert(c)) {
      out.insert(c);
    } else {
      const n = Math.min(Math.abs(c), left);
      if (c > 0) out.retain(n);
      else out.delete(n);
      left -= n;
    }
  }
  return out.retain(left).done();
}
