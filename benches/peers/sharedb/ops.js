// The two spellings of one text operation, and the checks the contract asks
// of every field a client sends. Pure functions, no ShareDB: this file is the
// whole "converts formats" part of the adapter (doc.js is the ShareDB part).
//
//   contract (PROTOCOL.md)          ot-text-unicode (what ShareDB stores)
//   ------------------------------  ------------------------------------------
//   5        retain 5 characters    5
//   "hi"     insert "hi"            "hi"
//   -3       delete 3 characters    {d: 3}
//   retains + deletes add up to     a trailing retain is left out: the op may
//   the whole document length       stop early, the rest of the text is kept
//
// Both count Unicode code points, never UTF-16 units: "👩‍💻" is three
// characters in either. So converting is a walk over the components, plus
// the base length (the document's length at the op's base revision) to put
// the trailing retain back. The contract's normal form (as ot.js builds ops):
// adjacent components of one kind merged, and where an insert and a delete
// meet, the insert first.

/** A refusal with the contract's status, stable code and a sentence for a person. */
export class ApiError extends Error {
  constructor(status, code, message, headers) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** A client id: 1..=64 printable ASCII characters (space to tilde). */
const CLIENT_ID = /^[\x20-\x7e]{1,64}$/;
/** Cc control characters other than newline and tab: refused in document text (CR too, see PROTOCOL.md). */
const FORBIDDEN_IN_TEXT = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;
/** Cc control characters other than newline, CR and tab: refused in an author, as for a chat message. */
const FORBIDDEN_IN_AUTHOR = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/;
const AUTHOR_MAX_CHARS = 32;

/**
 * Length in code points. A JS string's `.length` counts UTF-16 units, so
 * every low surrogate of a pair is one unit too many. (Strings reaching this
 * are well formed: `checkText` refused lone surrogates.)
 */
export function codePoints(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (unit >= 0xdc00 && unit <= 0xdfff) n--;
  }
  return n;
}

function badOperation(message) {
  return new ApiError(422, 'bad_operation', message);
}

/**
 * Check inserted text (or a whole document for PUT /api/doc/text): valid
 * Unicode, no refused control character.
 */
export function checkText(s, what) {
  // JSON may carry a lone surrogate ("\ud800"): not a Unicode scalar value,
  // so not text the contract can count. Like invalid UTF-8, it is bad JSON.
  if (!s.isWellFormed()) throw new ApiError(400, 'bad_json', `${what} is not valid Unicode (a lone surrogate)`);
  const m = FORBIDDEN_IN_TEXT.exec(s);
  if (m) {
    const hex = m[0].charCodeAt(0).toString(16).padStart(4, '0');
    throw new ApiError(422, 'control_character', `${what} contains the control character U+${hex.toUpperCase()}; only newline and tab are allowed`);
  }
}

/**
 * Bring contract components (numbers and strings, already checked one by
 * one) into normal form: same kinds merged, inserts before deletes between
 * two retains. Returns a new array.
 */
function normalForm(components) {
  const out = [];
  let insert = '';
  let del = 0;
  const flush = () => {
    if (insert) out.push(insert);
    if (del) out.push(-del);
    insert = '';
    del = 0;
  };
  for (const c of components) {
    if (typeof c === 'string') insert += c;
    else if (c < 0) del -= c;
    else {
      const hadRun = insert !== '' || del !== 0;
      flush();
      if (!hadRun && typeof out.at(-1) === 'number' && out.at(-1) > 0) out[out.length - 1] += c;
      else out.push(c);
    }
  }
  flush();
  return out;
}

/**
 * Read a client's `op` (any JSON value) made against a document of
 * `baseLength` characters. Returns the op in the contract's normal form;
 * throws 422 `bad_operation` (or `control_character`) otherwise.
 */
export function parseOp(op, baseLength) {
  if (!Array.isArray(op)) throw badOperation('"op" must be an array of components (positive integer: retain, string: insert, negative integer: delete)');
  let span = 0;
  for (let i = 0; i < op.length; i++) {
    const c = op[i];
    if (typeof c === 'number') {
      // JSON.parse has already turned 1.0 and 1e3 into the integers 1 and
      // 1000, so those pass here; 1.5, 0, -0 and counts beyond 2^53 - 1 do not.
      if (!Number.isSafeInteger(c) || c === 0) throw badOperation(`component ${i} (${c}) must be a non-zero whole number`);
      span += Math.abs(c);
    } else if (typeof c === 'string') {
      if (c === '') throw badOperation(`component ${i} is an empty insert`);
      checkText(c, `the insert in component ${i}`);
    } else {
      throw badOperation(`component ${i} must be a number or a string, not ${c === null ? 'null' : Array.isArray(c) ? 'an array' : typeof c}`);
    }
  }
  if (span !== baseLength) {
    throw badOperation(`the op retains and deletes ${span} characters, but the document at that revision has ${baseLength}`);
  }
  return normalForm(op);
}

/** Contract normal form → ot-text-unicode (deletes as {d: n}, no trailing retain). */
export function toShareDB(op) {
  const out = op.map((c) => (typeof c === 'number' && c < 0 ? { d: -c } : c));
  if (typeof out.at(-1) === 'number') out.pop();
  return out;
}

/**
 * ot-text-unicode → contract normal form, given the length of the document
 * the op applies to (to add the trailing retain back).
 */
export function fromShareDB(op, baseLength) {
  const components = [];
  let span = 0;
  for (const c of op) {
    if (typeof c === 'number') {
      components.push(c);
      span += c;
    } else if (typeof c === 'string') {
      components.push(c);
    } else {
      // {d: n}, or {d: "text"} in an invertible op; either way n characters.
      const n = typeof c.d === 'number' ? c.d : codePoints(c.d);
      components.push(-n);
      span += n;
    }
  }
  if (baseLength > span) components.push(baseLength - span);
  return normalForm(components);
}

/** Characters added (positive) or removed (negative) by an ot-text-unicode op. */
export function lengthChange(op) {
  let change = 0;
  for (const c of op) {
    if (typeof c === 'string') change += codePoints(c);
    else if (typeof c === 'object') change -= typeof c.d === 'number' ? c.d : codePoints(c.d);
  }
  return change;
}

/** The op that `PUT /api/doc/text` stores: delete everything, insert the new text. */
export function replaceAll(oldLength, text) {
  return normalForm([...(oldLength ? [-oldLength] : []), ...(text ? [text] : [])]);
}

// ---------------------------------------------------------------------------
// The fields of a submission (POST /api/doc/ops, PUT /api/doc/text, a
// WebSocket "op" frame). A field of the wrong JSON type, or a missing one, is
// `400 bad_json`; a value out of its bounds is `422` with the field's code.
// ---------------------------------------------------------------------------

function requireObject(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError(400, 'bad_json', 'the body must be a JSON object');
  }
}

function readClient(value) {
  if (typeof value !== 'string') throw new ApiError(400, 'bad_json', '"client" must be a string');
  if (!CLIENT_ID.test(value)) throw new ApiError(422, 'invalid_client', '"client" must be 1 to 64 printable ASCII characters');
  return value;
}

function readWhole(value, name, what) {
  if (typeof value !== 'number') throw new ApiError(400, 'bad_json', `"${name}" must be a number`);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ApiError(422, `invalid_${name}`, `"${name}" must be ${what}, a whole number from 0 to 2^53 - 1`);
  }
  return value;
}

/** `author` is optional; when given it follows the rules of a chat message's author. */
function readAuthor(value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new ApiError(400, 'bad_json', '"author" must be a string');
  if (!value.isWellFormed()) throw new ApiError(400, 'bad_json', '"author" is not valid Unicode (a lone surrogate)');
  if (FORBIDDEN_IN_AUTHOR.test(value)) throw new ApiError(422, 'control_character', '"author" contains a control character');
  const trimmed = value.trim();
  const chars = codePoints(trimmed);
  if (chars < 1 || chars > AUTHOR_MAX_CHARS) {
    throw new ApiError(422, 'invalid_author', `"author" must be 1 to ${AUTHOR_MAX_CHARS} characters after trimming (got ${chars})`);
  }
  return trimmed;
}

/** `{client, seq, rev, op, author?}`; `op` is checked later, against the base revision's length. */
export function readSubmission(body) {
  requireObject(body);
  return {
    client: readClient(body.client),
    seq: readWhole(body.seq, 'seq', 'the client\'s operation counter'),
    rev: readWhole(body.rev, 'rev', 'the revision the op was made against'),
    op: body.op,
    author: readAuthor(body.author),
  };
}

/** `{client, seq, text, author?}` for PUT /api/doc/text. */
export function readReplacement(body) {
  requireObject(body);
  const client = readClient(body.client);
  const seq = readWhole(body.seq, 'seq', 'the client\'s operation counter');
  if (typeof body.text !== 'string') throw new ApiError(400, 'bad_json', '"text" must be a string');
  checkText(body.text, '"text"');
  return { client, seq, text: body.text, author: readAuthor(body.author) };
}
