// The editor's side of the shared document: the classic three-state OT
// client (Jupiter — as in ot.js and Google Docs).
//
// The server is the authority: it puts every edit into one ordered log.
// This client keeps AT MOST ONE OPERATION IN FLIGHT. While it waits for
// that one to come back stored, whatever the user types is composed into a
// buffer — never into the operation already sent (ShareDB once lost edits
// that way). So there are three states, each answering three events:
//
//   state                 user edits             someone's op arrives          our op comes back
//   Synchronized          send it →              apply it                      (cannot happen)
//                         AwaitingConfirm
//   AwaitingConfirm       buffer it →            transform it past ours,       → Synchronized
//                         AwaitingWithBuffer     then apply
//   AwaitingWithBuffer    compose into buffer    transform it past ours and    send the buffer →
//                                                the buffer, then apply        AwaitingConfirm
//
// THE ORDERED LOG IS THE TRUTH. Stored operations are applied strictly in
// rev order as the transport delivers them, and our OWN operation is
// recognised in that stream by (client, seq): that is the acknowledgement.
// The answer to the POST (or a WebSocket ack frame) only tells us the rev
// early; it changes nothing here. That is why all five transports behave
// the same.
//
// Every operation we send carries client, seq (one more per operation) and
// rev (the last revision we applied). After a reconnect, resend() sends
// the operation in flight again with the SAME seq and rev: the server
// recognises it and does not store it twice.
//
// transform: false is the lesson's BROKEN variant ("send edits, don't
// transform"), marked ⚠ below: remote ops are applied where their author
// made them, as if nothing of ours were pending, and the text drifts.

import { apply, compose, fit, length, targetLength, transform } from './ot.js';

class Synchronized {
  get name() {
    return 'synchronized';
  }

  applyClient(client, op) {
    return new AwaitingConfirm(client.submit(op), op);
  }

  applyServer(client, op) {
    return [this, op];
  }

  serverAck() {
    throw new Error('an acknowledgement with nothing in flight');
  }
}

class AwaitingConfirm {
  constructor(sent, outstanding) {
    this.sent = sent; // exactly what was submitted (for a resend)
    this.outstanding = outstanding; // the same edit, as it applies to our text now
  }

  get name() {
    return 'awaiting_confirm';
  }

  applyClient(client, op) {
    return new AwaitingWithBuffer(this.sent, this.outstanding, op);
  }

  applyServer(client, op) {
    // The stored op first: it was stored before ours will be.
    const [mine, outstanding] = transform(op, this.outstanding);
    return [new AwaitingConfirm(this.sent, outstanding), mine];
  }

  serverAck() {
    return SYNCHRONIZED;
  }
}

class AwaitingWithBuffer {
  constructor(sent, outstanding, buffer) {
    this.sent = sent;
    this.outstanding = outstanding;
    this.buffer = buffer; // everything typed since, applying after outstanding
  }

  get name() {
    return 'awaiting_with_buffer';
  }

  applyClient(client, op) {
    return new AwaitingWithBuffer(this.sent, this.outstanding, compose(this.buffer, op));
  }

  applyServer(client, op) {
    const [op1, outstanding] = transform(op, this.outstanding);
    const [mine, buffer] = transform(op1, this.buffer);
    return [new AwaitingWithBuffer(this.sent, outstanding, buffer), mine];
  }

  serverAck(client) {
    return new AwaitingConfirm(client.submit(this.buffer), this.buffer);
  }
}

const SYNCHRONIZED = new Synchronized();

/** A revision was skipped: read from `expected` again. */
export class GapError extends Error {
  constructor(expected, got) {
    super(`expected revision ${expected} next but got ${got}`);
    this.name = 'GapError';
    this.expected = expected;
    this.got = got;
  }
}

export class DocClient {
  /**
   * client: this tab's id; rev and text: what GET /api/doc answered;
   * seq: the first seq to use; send(submission): posts
   * {client, seq, rev, op} by whatever transport the page uses.
   */
  constructor({ client, rev = 0, text = '', seq = 0, transform = true, send = () => {} }) {
    this.client = client;
    this.rev = rev; // the last revision applied
    this.text = text; // the local text: revision rev plus our pending edits
    this.nextSeq = seq;
    this.transforms = transform; // false: the lesson's broken mode
    this.send = send;
    this.state = SYNCHRONIZED;
    this.serverLength = length(text); // the server's text length at this.rev
    // For the page's counters.
    this.stats = { sent: 0, acknowledged: 0, applied: 0, transformed: 0, duplicates: 0 };
  }

  /** 'synchronized', 'awaiting_confirm' or 'awaiting_with_buffer'. */
  get stateName() {
    return this.state.name;
  }

  /** The submission in flight, or null. */
  get inFlight() {
    return this.state.sent ?? null;
  }

  /** The user changed the text by `op` (on the current local text). */
  edit(op) {
    this.text = apply(this.text, op); // throws if op does not fit: nothing changes
    // ⚠ In the broken mode our buffer was never transformed, so it may end
    // at another length than the text: force the new edit onto it.
    if (!this.transforms && this.state.buffer) op = fit(op, targetLength(this.state.buffer));
    this.state = this.state.applyClient(this, op);
  }

  /**
   * The next stored operation from the transport ({rev, op, client, seq, …}).
   * Returns the operation applied to the local text — move carets through
   * it — or null if the text did not change (a duplicate, or our own op).
   */
  receive(stored) {
    if (stored.rev <= this.rev) {
      this.stats.duplicates++; // overlapping polls: already applied
      return null;
    }
    if (stored.rev !== this.rev + 1) throw new GapError(this.rev + 1, stored.rev);
    const sent = this.inFlight;
    if (sent && stored.client === this.client && stored.seq === sent.seq) {
      // Our own op, back from the log: the acknowledgement. The text
      // already has it, transformed exactly as the server did.
      this.rev = stored.rev;
      this.serverLength = targetLength(stored.op);
      this.stats.acknowledged++;
      this.state = this.state.serverAck(this);
      return null;
    }
    let op;
    if (this.transforms) {
      if (this.state !== SYNCHRONIZED) this.stats.transformed++;
      [this.state, op] = this.state.applyServer(this, stored.op);
    } else {
      // ⚠ THE BROKEN VARIANT: apply the op where its author made it, as if
      // nothing of ours were pending. Our pending edits are not transformed
      // either. Positions are forced to fit, so nothing throws — the text
      // simply drifts from the server's.
      op = fit(stored.op, length(this.text));
    }
    this.text = apply(this.text, op);
    this.rev = stored.rev;
    this.serverLength = targetLength(stored.op);
    this.stats.applied++;
    return op;
  }

  /** After a reconnect: send the operation in flight again, unchanged. */
  resend() {
    const sent = this.inFlight;
    if (sent) this.send(sent);
    return sent;
  }

  /** Called by the states: sends op as the next submission. */
  submit(op) {
    // ⚠ In the broken mode our op was made on a drifted text; force it onto
    // the server's length so that the server takes it (to the wrong places).
    if (!this.transforms) op = fit(op, this.serverLength);
    const sent = { client: this.client, seq: this.nextSeq++, rev: this.rev, op };
    this.stats.sent++;
    this.send(sent);
    return sent;
  }
}
