// The shared document, kept by ShareDB. ShareDB owns the log: it assigns
// versions, transforms an op made at an old version against everything
// committed since (with the ot-text-unicode type, which counts code points)
// and stores it, all in its default in-memory database. This file only
// feeds it and reads it back in the contract's shape:
//
//   - the contract's `rev` is ShareDB's op version (see "rev and version");
//   - ops go in and come out through ops.js (format conversion);
//   - `(client, seq)` resends are answered from a small map (ShareDB's own
//     src/seq check only catches a resend made at a version before the
//     original, see `#submitToShareDB`);
//   - ShareDB's errors become the contract's codes.
//
// rev and version. A ShareDB document does not exist at version 0; the op
// that creates it (here: empty text, at start-up) is op version 0 and brings
// the snapshot to version 1. So snapshot version V is the contract's
// revision V − 1, and the op that ShareDB stores with `v: N` (it applies to
// snapshot version N) turns revision N − 1 into revision N: its `v` is
// exactly its contract `rev`. An op a client made against revision R is
// submitted with `v: R + 1`.
//
// Everything lives in memory: restart the process and the document is empty
// again at revision 0 (Weebsockets keeps its log in SQLite).

import { EventEmitter } from 'node:events';

import ShareDB from 'sharedb';
import otText from 'ot-text-unicode';

import { ApiError, codePoints, fromShareDB, lengthChange, parseOp, replaceAll, toShareDB } from './ops.js';

const COLLECTION = 'documents';
const DOC_ID = 'lecture';

/** How many `(client, seq)` answers are remembered for resends; the contract asks for at least 10,000. */
const DEDUPE_KEEP = 10_000;

/**
 * Which insert goes first when two are made at the same position.
 *
 * ShareDB transforms an incoming op against each op committed since its base
 * version with `type.transform(incoming, committed, 'left')`, and
 * ot-text-unicode puts the 'left' op's insert first: the NEWCOMER goes
 * before the text stored first. The contract says the opposite ("the one
 * stored first stays first"), and a contract client transforms by that rule,
 * so with ShareDB's order it would end up with a different text from the
 * server after such a tie.
 *
 * `contract` (the default) registers ot-text-unicode once more under its own
 * name with that one argument flipped: the same code does the same work,
 * only the tie goes the contract's way. `sharedb` uses ot-text-unicode as
 * published. tie-break.test.mjs shows both.
 */
export const TIE_BREAKS = ['contract', 'sharedb'];

function typeFor(tieBreak) {
  const published = otText.type;
  if (tieBreak === 'sharedb') return published;
  return {
    ...published,
    name: 'text-unicode-stored-first',
    uri: 'urn:weebsockets:types:text-unicode-stored-first',
    transform: (op, committed, side) => published.transform(op, committed, side === 'left' ? 'right' : 'left'),
  };
}

/** ShareDB's error codes that mean something in the contract. */
const SHAREDB_ERRORS = {
  // Op version newer than the document: the client is ahead of the server.
  ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT: () => new ApiError(409, 'rev_ahead', 'that revision does not exist yet'),
  // The ops to transform from there are gone. ShareDB's in-memory database
  // keeps every op forever, so this does not happen here (see README).
  ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND: () => new ApiError(409, 'rev_too_old', 'that revision is too old to transform from; reload GET /api/doc'),
};

export class SharedDoc extends EventEmitter {
  /** ShareDB itself: default options, so its MemoryDB and MemoryPubSub. */
  backend = new ShareDB();
  /**
   * The server-side Agent every call below goes through. ShareDB's backend
   * methods take one (middleware sees it); backend.connect() is the
   * documented way for server code to get one.
   */
  agent = this.backend.connect().agent;
  /** The document's length at each revision: ot-text-unicode ops have no trailing retain, the contract's do. */
  #lengths = [];
  /**
   * When each revision was stored, and by whom. ShareDB keeps both in the
   * op's metadata (`m.ts`, and `m.author` set in the commit hook) but strips
   * metadata before publishing an op to subscribers, so live readers look
   * them up here.
   */
  #at = [];
  #author = [];
  /** `client\nseq` → Promise of `{rev, op}`: the first answer, for resends. Insertion-ordered, oldest evicted. */
  #answers = new Map();
  /** Serialised forms of an op as published to subscribers, made once and shared by every connection. */
  #wire = new WeakMap();

  constructor({ maxChars, tieBreak }) {
    super();
    this.maxChars = maxChars;
    this.type = typeFor(tieBreak);
    ShareDB.types.register(this.type);

    // ShareDB's middleware hooks (docs: "Op submission"). 'apply' runs after
    // the op has been transformed to the current version, just before it is
    // applied: the place to refuse a document that would grow too long.
    this.backend.use('apply', (context, next) => {
      if (!('op' in context.op)) return next(); // the create op at start-up
      const after = this.#lengths[context.op.v - 1] + lengthChange(context.op.op);
      if (after > this.maxChars) {
        return next(new ApiError(422, 'document_too_long', `the document would be ${after} characters long; the limit is ${this.maxChars}`));
      }
      context.custom.length = after;
      next();
    });
    // 'commit': the op is final; metadata set here is stored with it.
    this.backend.use('commit', (context, next) => {
      const author = context.extra?.source?.author;
      if (author !== undefined) context.op.m.author = author;
      context.custom.meta = context.op.m; // ShareDB clears op.m before publishing
      next();
    });
    // 'afterWrite': the op is in the database. This runs in the same turn of
    // the event loop as the write, so no reader can see an op whose length
    // and time are not recorded yet.
    this.backend.use('afterWrite', (context, next) => {
      const rev = context.op.v;
      if (context.op.create) {
        this.#lengths[0] = 0;
      } else {
        this.#lengths[rev] = context.custom.length;
        this.#at[rev] = context.custom.meta.ts;
        this.#author[rev] = context.custom.meta.author;
      }
      this.emit('op', rev); // wakes held long polls (server.js §5)
      next();
    });
  }

  /** Create the (empty) document: ShareDB op version 0, revision 0. */
  start() {
    return new Promise((resolve, reject) => {
      const create = { v: 0, create: { type: this.type.uri, data: '' } };
      this.backend.submit(this.agent, COLLECTION, DOC_ID, create, null, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** The newest revision. */
  get rev() {
    return this.#lengths.length - 1;
  }

  /** The current length in characters. */
  get length() {
    return this.#lengths[this.rev];
  }

  /** `GET /api/doc`: ShareDB's current snapshot. */
  fetch() {
    return new Promise((resolve, reject) => {
      this.backend.fetch(this.agent, COLLECTION, DOC_ID, (err, snapshot) => {
        if (err) return reject(err);
        resolve({ rev: snapshot.v - 1, text: snapshot.data });
      });
    });
  }

  /**
   * Submit `{client, seq, rev, op, author?}` (fields checked by ops.js
   * readSubmission; `op` still raw). Resolves `{status, rev, op}`: 201 when
   * stored now, 200 with the first answer for a resend.
   */
  submit({ client, seq, rev, op, author }) {
    return this.#once(client, seq, () => {
      if (rev > this.rev) throw new ApiError(409, 'rev_ahead', `revision ${rev} does not exist yet; the newest is ${this.rev}`);
      return this.#submitToShareDB(client, seq, rev, parseOp(op, this.#lengths[rev]), author);
    });
  }

  /** `PUT /api/doc/text`: one op at the current revision that deletes everything and inserts `text`. */
  replace({ client, seq, text, author }) {
    return this.#once(client, seq, () => {
      const chars = codePoints(text);
      if (chars > this.maxChars) {
        throw new ApiError(422, 'document_too_long', `the text is ${chars} characters long; the limit is ${this.maxChars}`);
      }
      return this.#submitToShareDB(client, seq, this.rev, replaceAll(this.length, text), author);
    });
  }

  /**
   * Run `store` for a `(client, seq)` not seen yet, else answer with the
   * first answer. The answer is remembered as a promise from the start, so a
   * resend that arrives while the original is still in ShareDB waits for it
   * instead of storing the op twice. A refused op is forgotten: the client
   * may fix it and send it again.
   */
  async #once(client, seq, store) {
    const key = `${client}\n${seq}`;
    const first = this.#answers.get(key);
    if (first) return { status: 200, ...(await first) };
    const answer = (async () => store())();
    this.#answers.set(key, answer);
    if (this.#answers.size > DEDUPE_KEEP) this.#answers.delete(this.#answers.keys().next().value);
    try {
      return { status: 201, ...(await answer) };
    } catch (err) {
      if (this.#answers.get(key) === answer) this.#answers.delete(key);
      throw err;
    }
  }

  /** Hand a checked op (contract normal form, made at `rev`) to ShareDB; resolve `{rev, op}` as stored. */
  #submitToShareDB(client, seq, rev, op, author) {
    const submission = { v: rev + 1, op: toShareDB(op), src: client, seq };
    // `x.source` is how a ShareDB client passes extra data along with an op
    // (the `extra.source` the middleware docs describe); the commit hook
    // above stores it as metadata.
    if (author !== undefined) submission.x = { source: { author } };
    return new Promise((resolve, reject) => {
      this.backend.submit(this.agent, COLLECTION, DOC_ID, submission, null, (err, ops, request) => {
        if (!err) {
          const stored = request.op.v;
          return resolve({ rev: stored, op: fromShareDB(request.op.op, this.#lengths[stored - 1]) });
        }
        if (err.code === 'ERR_OP_ALREADY_SUBMITTED') {
          // ShareDB met the same src/seq among the ops it transformed this
          // one against: a resend we no longer remembered. Find the original.
          return this.#findStored(client, seq, rev + 1).then(resolve, reject);
        }
        reject(err instanceof ApiError ? err : SHAREDB_ERRORS[err.code]?.() ?? err);
      });
    });
  }

  async #findStored(client, seq, from) {
    const ops = await this.#getOps(from, null);
    const original = ops.find((op) => op.src === client && op.seq === seq);
    if (!original) throw new Error(`ShareDB reported ${client}/${seq} as already submitted but it is not in the log`);
    return { rev: original.v, op: fromShareDB(original.op, this.#lengths[original.v - 1]) };
  }

  #getOps(from, to) {
    return new Promise((resolve, reject) => {
      this.backend.getOps(this.agent, COLLECTION, DOC_ID, from, to, (err, ops) => (err ? reject(err) : resolve(ops)));
    });
  }

  /** Stored ops with revision > `since`, oldest first, at most `limit`, as readers see them. */
  async since(since, limit = Infinity) {
    const newest = this.rev;
    if (since >= newest || limit === 0) return [];
    const to = Math.min(newest, since + limit) + 1; // ShareDB's `to` is exclusive
    const ops = await this.#getOps(since + 1, to);
    return ops.map((op) => this.stored(op));
  }

  /** One ShareDB op (from getOps or a subscription) as the contract's stored operation. */
  stored(op) {
    const rev = op.v;
    const stored = { rev, op: fromShareDB(op.op, this.#lengths[rev - 1]), client: op.src, seq: op.seq };
    if (this.#author[rev] !== undefined) stored.author = this.#author[rev];
    stored.at = this.#at[rev];
    return stored;
  }

  /**
   * The WebSocket frame and SSE event of a published op. ShareDB pushes the
   * same op object to every subscriber's stream, so it is converted and
   * serialised once, for the first connection that asks.
   */
  wire(op) {
    let wire = this.#wire.get(op);
    if (!wire) {
      const json = JSON.stringify(this.stored(op));
      wire = {
        frame: `{"type":"op",${json.slice(1)}`,
        event: `id: ${op.v}\nevent: op\ndata: ${json}\n\n`,
      };
      this.#wire.set(op, wire);
    }
    return wire;
  }

  /**
   * Follow the document from revision `since`: ShareDB's own subscription
   * (what its Agent does for every client that subscribes to a document):
   * a pub/sub stream, opened first, plus the ops already stored. Resolves
   * `{stream, backlog}`; ops in the stream may repeat the end of the backlog
   * and must be skipped by revision, as ShareDB's client does.
   */
  subscribe(since) {
    return new Promise((resolve, reject) => {
      this.backend.subscribe(this.agent, COLLECTION, DOC_ID, since + 1, (err, stream, snapshot, ops) => {
        if (err) return reject(err);
        resolve({ stream, backlog: ops });
      });
    });
  }
}
