// The room: one ordered, in-memory message log and the rules a message must
// follow before it may enter it. Every transport in server.js is a thin
// adapter over this file: they read with `since()` and learn about new
// messages from the `'message'` event, never by polling.

import { EventEmitter } from 'node:events';

/** The transports a sender may name in `via`; `api` is the default. */
export const VIA = new Set(['interval', 'timeout', 'longpoll', 'websocket', 'sse', 'api']);

/** Bounds from the contract, counted in Unicode scalar values after trimming. */
export const AUTHOR_MAX_CHARS = 32;
export const TEXT_MAX_CHARS = 2000;

// Unicode category Cc is C0 (U+0000–U+001F), DEL (U+007F) and C1
// (U+0080–U+009F). Newline, carriage return and tab are the three a chat
// message may legitimately contain, so they are cut out of the range.
const FORBIDDEN_CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;

/**
 * An error that knows how it should look on the wire: the HTTP status, the
 * stable snake_case `code` of the contract and a sentence for a person.
 * WebSocket errors reuse the same `code`s, so validation lives in one place.
 */
export class ApiError extends Error {
  constructor(status, code, message, headers = undefined) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/**
 * The log itself. Ids start at 1 and never skip, so the message with id N
 * sits at index N - 1 and "everything after cursor N" is a plain `slice`.
 *
 * It extends EventEmitter because that is Node's own way to say "something
 * happened, whoever cares may react": long-poll, SSE and WebSocket each
 * register one listener for `'message'` and wake their own clients.
 */
export class Room extends EventEmitter {
  /** Every message ever accepted, oldest first. In memory only: a restart forgets them. */
  #messages = [];

  /** The newest id in the room (0 while it is empty). */
  get lastId() {
    return this.#messages.length;
  }

  /** Messages with `id > cursor`, oldest first, at most `limit` of them. */
  since(cursor, limit = Infinity) {
    if (cursor >= this.#messages.length) return [];
    return this.#messages.slice(cursor, cursor + limit);
  }

  /**
   * Store an already validated draft, give it the next id and tell every
   * listener. Node runs this to completion before any other callback, so no
   * reader can observe a half-appended log or miss the event.
   */
  append({ author, text, via }) {
    const message = { id: this.#messages.length + 1, author, text, sent_at: Date.now(), via };
    this.#messages.push(message);
    this.emit('message', message);
    return message;
  }
}

/**
 * Check an incoming `{author, text, via?}` and return the cleaned-up draft.
 * Throws an ApiError (422 `invalid_field`, or 400 `invalid_json` for text that
 * is not valid Unicode) so HTTP and WebSocket answer the same way.
 */
export function validateDraft(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError(422, 'invalid_field', 'the body must be a JSON object with "author" and "text"');
  }
  const author = checkText(body.author, 'author', AUTHOR_MAX_CHARS);
  const text = checkText(body.text, 'text', TEXT_MAX_CHARS);

  let via = 'api';
  if (body.via !== undefined && body.via !== null) {
    if (typeof body.via !== 'string' || !VIA.has(body.via)) {
      throw new ApiError(422, 'invalid_field', `"via" must be one of: ${[...VIA].join(', ')}`);
    }
    via = body.via;
  }
  return { author, text, via };
}

function checkText(value, field, max) {
  if (typeof value !== 'string') {
    throw new ApiError(422, 'invalid_field', `"${field}" must be a string`);
  }
  // JSON may carry a lone surrogate ("\ud800"), which is not a Unicode scalar
  // value and could not be written back out as UTF-8.
  if (!value.isWellFormed()) {
    throw new ApiError(400, 'invalid_json', `"${field}" is not valid Unicode`);
  }
  // Checked before trimming: a control character is refused wherever it
  // sits, even at an end that trimming would have cut off.
  if (FORBIDDEN_CONTROL.test(value)) {
    throw new ApiError(422, 'invalid_field', `"${field}" contains a control character`);
  }
  const trimmed = value.trim();
  // A JS string's .length counts UTF-16 units ("😀".length === 2); spreading
  // it iterates code points, which is what the contract counts.
  const chars = [...trimmed].length;
  if (chars < 1 || chars > max) {
    throw new ApiError(422, 'invalid_field', `"${field}" must be 1 to ${max} characters after trimming (got ${chars})`);
  }
  return trimmed;
}
