// The lesson, visible: three ways for a class to edit one text at once.
//
//   1. "Save the textarea" — the lecture's AJAX + setInterval: every change
//      PUTs the WHOLE text (PUT /api/doc/text), and a timer fetches the
//      whole text (GET /api/doc) and writes it into the page. Two people
//      typing at once overwrite each other: the last save wins, and
//      whatever the other typed is gone.
//   2. "Send edits, don't transform" — send each EDIT instead (an operation,
//      POST /api/doc/ops or a WebSocket frame), and apply everyone else's
//      edits as they come… at the positions where their authors made them,
//      as if nothing of ours were still on its way. When two edits cross,
//      each lands in the wrong place, and the texts drift apart.
//   3. "Operational transformation" — the same edits, but each one that
//      arrives is first transformed past our own edits still on their way
//      (client.js, the three-state client). Both edits survive, everywhere.
//
// Modes 2 and 3 are one class (SendOperations) with the transform switched
// off or on: that one switch is the whole difference. Both classes answer
// the same few questions for the editor (editor.js), which owns the
// textarea: what is the text and its revision, is anything still on its
// way, what did the user just do.

import { backoff, request } from '../net.js';
import { TRANSPORTS } from '../chat.js';
import { DOC } from '../transports/logs.js';
import { DocClient } from './client.js';
import { isNoop } from './ot.js';
import { diff } from './text.js';

/** The three modes, in the order of the lesson. */
export const MODES = Object.freeze({
  save: {
    id: 'save',
    label: 'Save the textarea',
    explain:
      'Every change PUTs the whole text; a timer GETs the whole text and writes it into the page. Two people typing at once: the last save wins, and the other one’s words are lost.',
    fixed: null, // nothing is repaired or misplaced: whole texts replace each other
  },
  'no-transform': {
    id: 'no-transform',
    label: 'Send edits, don’t transform',
    explain:
      'Each edit is sent as an operation, and everyone else’s are applied where their authors made them — even when our own edit is still on its way. Crossing edits land in the wrong place; the texts drift from the server’s.',
    fixed: 'Edits misplaced',
  },
  ot: {
    id: 'ot',
    label: 'Operational transformation',
    explain:
      'Each edit that arrives is first transformed past our own edits still on their way, as Google Docs does. Both edits survive, and every editor ends with the server’s text.',
    fixed: 'Edits repaired',
  },
});
export const DEFAULT_MODE = 'ot';

/** Errors worth sending the same edit again for: the server may well take it later. */
const RETRYABLE = new Set([
  'network',
  'timeout',
  'closed',
  'not_connected',
  'rate_limited',
  'outage',
  'busy',
  'shutting_down',
  'too_many_connections',
  'store_failed',
]);
const retryable = (err) => RETRYABLE.has(err.code) || err.status === 0 || err.status === 429 || err.status >= 500;

function describe(err) {
  return err.status ? `HTTP ${err.status} ${err.code}` : `${err.code ?? ''} ${err.message}`.trim();
}

/** What every request body says about who writes, when there is a name. */
const byAuthor = (host) => {
  const author = host.author();
  return author ? { author } : {};
};

// ---------------------------------------------------------------------------

/**
 * Mode 1, the lecture's naive editor: whole texts both ways. One PUT at a
 * time (a second change waits for the first save's answer, then the newest
 * text goes), and one GET /api/doc every `every` ms. A poll that finds a
 * newer revision writes its text into the textarea — unless we have typed
 * something not saved yet (even this version is a little careful).
 */
export class SaveTheTextarea {
  constructor(host, { rev, text }) {
    this.host = host;
    this.rev = rev; // the newest revision we know of (a poll's, or our own save's)
    this.text = text; // what the textarea shows
    this.saving = false; // a PUT is on its way
    this.dirty = false; // typed since that PUT left
    this.running = false;
    this.timer = null;
    this.polls = 0; // request counter, sent as seq= for DevTools
    this.failures = 0;
    this.aborter = null;
  }

  get mode() {
    return MODES.save;
  }

  get state() {
    if (this.saving) return { key: 'saving', label: 'saving the whole text…' };
    if (this.dirty) return { key: 'unsaved', label: 'unsaved changes' };
    return { key: 'saved', label: 'saved' };
  }

  /** Nothing of ours is on its way or waiting to go. */
  get settled() {
    return !this.saving && !this.dirty;
  }

  /** No operations here: whole texts replace each other. */
  localOps() {
    return null;
  }

  start() {
    this.running = true;
    this.aborter = new AbortController();
    this.host.meter.state(`polling GET /api/doc every ${this.host.every} ms`, 'ok');
    this.poll();
    if (this.dirty && !this.saving) this.save(); // typed before a pause
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.aborter?.abort();
  }

  /** The user changed the textarea. */
  edited(text) {
    this.text = text;
    if (this.saving) this.dirty = true; // the newest text goes when this save is answered
    else this.save();
  }

  async save() {
    this.saving = true;
    this.dirty = false;
    const json = { client: this.host.client, seq: this.host.takeSeq(), text: this.text, via: this.host.via, ...byAuthor(this.host) };
    const bar = this.host.meter.sending();
    this.host.changed();
    try {
      const { body, wire } = await request('/api/doc/text', { method: 'PUT', json, timeoutMs: 15_000 });
      bar.end('data', wire);
      // Our save replaced the whole text at revision body.rev. Every
      // revision between the last one we saw and ours was somebody else's,
      // and we never saw it: our save has just erased it.
      const erased = body.rev - 1 - this.rev;
      if (erased > 0) this.host.lost(erased, `your save (rev ${body.rev}) replaced the whole text: ${erased} edit(s) by others since rev ${this.rev} are gone`);
      this.rev = Math.max(this.rev, body.rev);
    } catch (err) {
      bar.end('error', err.wire);
      if (err.name === 'AbortError' || !this.running) return;
      this.host.log(`save failed (${describe(err)})`, 'error');
      if (retryable(err)) {
        // The text is still in the textarea: the next save sends it.
        this.dirty = true;
        this.failures += 1;
        await new Promise((resolve) => setTimeout(resolve, backoff(this.failures, err.retryAfterMs)));
      }
    } finally {
      this.saving = false;
    }
    if (this.dirty && this.running) this.save();
    this.host.changed();
  }

  /** setTimeout polling of the whole text. */
  async poll() {
    if (!this.running) return;
    const seq = ++this.polls;
    const req = this.host.meter.request(seq);
    let wait = this.host.every;
    try {
      const url = `/api/doc?transport=save&seq=${seq}&client=${encodeURIComponent(this.host.client)}`;
      const { body, wire } = await request(url, { signal: this.aborter.signal, timeoutMs: 15_000 });
      const news = body.rev > this.rev;
      req.answered(news ? 1 : 0, wire);
      // While the editor holds news back (the demo's slow network), the
      // answer is dropped; the next poll asks again.
      if (news && !this.host.holding) this.took(body);
      if (this.failures) this.host.meter.state(`polling GET /api/doc every ${this.host.every} ms`, 'ok');
      this.failures = 0;
    } catch (err) {
      if (err.name === 'AbortError') {
        req.cancelled();
        return;
      }
      req.failed(err);
      this.failures += 1;
      wait = backoff(this.failures, err.retryAfterMs);
      this.host.meter.state(`retrying in ${(wait / 1000).toFixed(1)} s`, 'retry');
    }
    if (this.running) this.timer = setTimeout(() => this.poll(), wait);
  }

  /** The lecture's "write it to the DOM": the server's text replaces ours. */
  took({ rev, text }) {
    if (this.saving || this.dirty) return; // ours first; the next poll brings theirs
    this.rev = rev;
    if (text !== this.text) {
      this.text = text;
      this.host.showRemote(text, null);
    }
    this.host.changed();
  }
}

// ---------------------------------------------------------------------------

/**
 * Modes 2 and 3: edits as operations, over the page's transport. The
 * three-state client (client.js) keeps one edit in flight and buffers the
 * rest; the ordered log of stored operations comes in over the transport
 * (transports/*.js with `log: DOC`), our own included — that is our
 * acknowledgement. `transform` is the lesson's switch.
 */
export class SendOperations {
  constructor(host, { rev, text, transform }) {
    this.host = host;
    this.transforms = transform;
    this.client = new DocClient({
      client: host.client,
      rev,
      text,
      seq: host.nextSeq,
      transform,
      send: (submission) => this.submit(submission),
    });
    this.transport = null;
    this.held = []; // stored ops that arrived while the editor held news back, in order
    this.sentAt = new Map(); // seq → when it was sent: the edit's round trip
    this.attempts = 0; // failed sends of the edit in flight, for the back-off
    this.retryTimer = null;
  }

  get mode() {
    return this.transforms ? MODES.ot : MODES['no-transform'];
  }

  get text() {
    return this.client.text;
  }

  get rev() {
    return this.client.rev;
  }

  get state() {
    const sent = this.client.inFlight;
    switch (this.client.stateName) {
      case 'awaiting_confirm':
        return { key: 'awaiting_confirm', label: `awaiting ack · seq ${sent.seq} in flight` };
      case 'awaiting_with_buffer':
        return { key: 'awaiting_with_buffer', label: `awaiting ack · seq ${sent.seq} in flight, more buffered` };
      default:
        return { key: 'synchronized', label: 'synchronized' };
    }
  }

  get settled() {
    return this.client.stateName === 'synchronized' && this.held.length === 0;
  }

  /** Our edits the server has not stored yet, oldest first: the text the
   * user sees is the server's revision `rev` with these applied. */
  localOps() {
    const { outstanding, buffer } = this.client.state;
    return [outstanding, buffer].filter(Boolean);
  }

  start() {
    const { via, meter, every } = this.host;
    this.transport = new TRANSPORTS[via]({
      since: this.client.rev,
      log: DOC,
      every,
      probe: meter,
      onEntries: (entries) => this.arrived(entries),
      // A new socket: the edit in flight may never have reached the old
      // one. Sending it again is safe — same (client, seq).
      onOpen: () => this.client.resend(),
      onReadyState: (state) => meter.showReadyState(state),
    });
    this.transport.start();
  }

  stop() {
    this.transport?.stop();
    this.transport = null;
    clearTimeout(this.retryTimer);
  }

  /** The user changed the textarea from our text to `text`; `caret` is
   * where the edit ended (UTF-16), to place an ambiguous one. */
  edited(text, caret) {
    const op = diff(this.client.text, text, caret);
    if (isNoop(op)) return;
    this.client.edit(op);
  }

  /** Stored operations from the transport, in rev order. */
  arrived(entries) {
    for (const stored of entries) {
      if (this.host.holding) this.held.push(stored);
      else this.take(stored);
    }
    this.host.changed();
  }

  /** The news held back is let through, in order. */
  release() {
    const held = this.held;
    this.held = [];
    for (const stored of held) this.take(stored);
    this.host.changed();
  }

  take(stored) {
    const client = this.client;
    if (stored.rev <= client.rev) {
      this.host.meter.delivered({ duplicates: 1 }); // overlapping polls
      return;
    }
    if (stored.rev !== client.rev + 1) {
      // A revision is missing (cannot happen with these transports; if it
      // ever does, read again from the last one we have).
      this.host.log(`expected rev ${client.rev + 1}, got ${stored.rev}: reading again from rev ${client.rev}`, 'error');
      this.held = [];
      this.stop();
      this.start();
      return;
    }
    const sent = client.inFlight;
    const own = sent && stored.client === client.client && stored.seq === sent.seq;
    const pending = client.stateName !== 'synchronized';
    const op = client.receive(stored); // (our own: the ack, which may send the buffer)
    this.host.applied(stored);
    if (own) {
      this.attempts = 0;
      const at = this.sentAt.get(stored.seq);
      if (at !== undefined) this.host.meter.sample(performance.now() - at);
      this.sentAt.delete(stored.seq);
    } else if (pending) {
      // Someone's edit crossed ours. Transformed: repaired. Not: misplaced.
      this.host.fixed(stored);
    }
    if (op) this.host.showRemote(client.text, op);
  }

  /** Called by the client for each edit it sends (never two at once). */
  submit(submission) {
    this.host.nextSeq = this.client.nextSeq;
    this.sentAt.set(submission.seq, performance.now());
    if (this.sentAt.size > 100) this.sentAt.delete(this.sentAt.keys().next().value);
    this.deliver(submission);
  }

  /** A frame on the document's socket, or a POST. The answer only says the
   * edit's rev early: the edit coming back in the log is what counts. */
  async deliver(submission) {
    const { via, meter } = this.host;
    try {
      if (via === 'websocket') {
        if (!this.transport) return; // stopped; a restart reloads the document
        await this.transport.submit({ type: 'op', ...submission, ...byAuthor(this.host) });
      } else {
        const bar = meter.sending();
        const json = { ...submission, via, ...byAuthor(this.host) };
        try {
          const { wire } = await request('/api/doc/ops', { method: 'POST', json, timeoutMs: 15_000 });
          bar.end('data', wire);
        } catch (err) {
          bar.end('error', err.wire);
          throw err;
        }
      }
    } catch (err) {
      this.failed(submission, err);
    }
  }

  failed(submission, err) {
    // Came back in the log meanwhile: it was stored after all.
    if (this.client.inFlight?.seq !== submission.seq || !this.transport) return;
    if (retryable(err)) {
      // A socket that closed: the next one resends (onOpen above).
      if (this.host.via === 'websocket' && (err.code === 'closed' || err.code === 'not_connected')) return;
      this.attempts += 1;
      const wait = backoff(this.attempts, err.retryAfterMs);
      this.host.log(`edit seq ${submission.seq} not stored (${describe(err)}) — sending it again in ${(wait / 1000).toFixed(1)} s`, 'error');
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        if (this.client.inFlight?.seq === submission.seq) this.client.resend();
      }, wait);
      return;
    }
    if (err.code === 'name_taken') {
      this.host.nameTaken();
      this.client.resend();
      return;
    }
    // Refused for good (too long for the document, a revision too old…):
    // sending it again cannot help. Start over from the server's text.
    const lost = this.localOps().length;
    this.host.reload(`the server refused edit seq ${submission.seq} (${describe(err)})`, lost);
  }
}
