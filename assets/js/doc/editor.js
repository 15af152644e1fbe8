// One editor of the shared document: a <textarea> labelled "Document",
// everyone else's carets drawn over it, and the instruments that tell the
// truth about it — is my text the server's (the in-sync badge), how many
// edits were lost, misplaced or repaired, and which of the client's states
// it is in.
//
// The editor owns the textarea and the presence; what happens to an edit
// is its mode's business (modes.js): saved whole, sent as an operation
// without transforming, or with. So this file answers three questions:
//
//   * The user typed: which edit was that? text.js turns "the value
//     changed" into an operation over code points; the mode sends it.
//   * Someone else's edit arrived: the mode gives the new text and the
//     operation it applied, and the user's caret and selection are moved
//     through that operation (ot.js, transformSelection, Bias.BEFORE: text
//     typed at my caret by someone else appears after it) — instead of
//     jumping to wherever the old numbers now point.
//   * Where are the others? presence.js keeps their carets, moved by every
//     operation this editor applies; overlay.js draws them.
//
// The page (pages/doc.js, pages/doc_compare.js) makes one Editor per
// textarea and tells it when to start, pause and resume.

import { backoff, request, sleep, startingPoint } from '../net.js';
import { TRANSPORTS } from '../chat.js';
import { PRESENCE } from '../transports/logs.js';
import { Meter } from '../ui/meter.js';
import { DEFAULT_MODE, MODES, SaveTheTextarea, SendOperations } from './modes.js';
import { Bias, length, transformSelection } from './ot.js';
import { CaretOverlay } from './overlay.js';
import { CaretPublisher, postCaret, RemoteCarets, untransformIndex } from './presence.js';
import { summarise } from './sync.js';
import { codePointOffset, utf16Offset } from './text.js';

/** Stored operations kept to move a late caret to our revision. */
const HISTORY_KEPT = 2000;
/** Control characters the document refuses (all Cc but \n and \t). A paste
 * that brings some in is cleaned before it becomes an edit. */
const REFUSED = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;
const REFUSED_ALL = new RegExp(REFUSED.source, 'g');

export class Editor {
  /**
   * root: the editor's element (the doc_editor.html macro); via: its
   * transport ('interval', …); client: its id in the document; mode: a key
   * of MODES; every: the polling interval; meter: the document transport's
   * instruments; presenceMeter: presence's; people: the page's PeopleList;
   * summary: the page's SummaryWatcher; name(): the name to write under.
   */
  constructor({ root, via, client, mode = DEFAULT_MODE, every = 1000, meter, presenceMeter, people, summary, name, log }) {
    this.root = root;
    this.via = via;
    this.client = client;
    this.modeName = MODES[mode] ? mode : DEFAULT_MODE;
    this.every = every;
    this.meter = meter;
    this.presenceMeter = presenceMeter ?? new Meter({});
    this.people = people;
    this.summary = summary;
    this.nameOf = name ?? (() => '');
    this.logTo = log ?? ((text, tone) => meter.log(text, tone));

    this.textarea = root.querySelector('[data-role="text"]');
    this.overlay = new CaretOverlay(this.textarea);
    this.carets = new RemoteCarets(client);
    this.history = new Map(); // rev → stored op
    this.engine = null; // the mode at work (modes.js)
    this.nextSeq = 0; // seqs only grow, across mode switches and reloads
    this.holding = 0; // > 0: news is held back (the demo; an IME composing)
    this.generation = 0; // numbers starts, so that an overtaken one gives up
    this.starting = null; // aborts the loading of the document
    this.presence = null; // the presence transport
    this.nameRefused = false; // the server said the name is an account's
    this.closed = false; // left, or closed: not started again by resume()
    this.counts = { fixed: 0, lost: 0 };
    this.sync = { state: 'pending' };
    this.listeners = new Set();
    this.syncListeners = new Set();

    this.publisher = new CaretPublisher({
      client,
      via,
      name: () => this.author() ?? '',
      current: () => this.caretInServerText(),
      send: (update) => this.sendCaret(update),
    });

    this.textarea.addEventListener('input', () => this.onInput());
    // An input method (Chinese, Japanese, accents on some keyboards) is
    // composing a character: rewriting the textarea now would break it, so
    // news waits until it is done. Our own changes still go out.
    this.textarea.addEventListener('compositionstart', () => this.hold());
    this.textarea.addEventListener('compositionend', () => this.release());
    const moved = () => this.publisher.moved();
    for (const type of ['keyup', 'mouseup', 'focus', 'select']) this.textarea.addEventListener(type, moved);
    document.addEventListener('selectionchange', () => {
      if (document.activeElement === this.textarea) moved();
    });
    root.querySelector('[data-role="reload"]')?.addEventListener('click', () => this.reload('reloaded by hand', this.unsent()));
    summary?.subscribe((s) => this.checkSync(s));
    setInterval(() => {
      if (this.carets.expire()) this.drawCarets();
    }, 5000);
    this.showCounts();
  }

  // ----- life -----

  /** Loads the document and starts the mode (again, if it was running). */
  async start() {
    this.closed = false;
    const mine = ++this.generation;
    this.starting?.abort();
    this.starting = new AbortController();
    this.engine?.stop();
    this.engine = null;
    this.textarea.readOnly = true;
    this.showState({ key: 'loading', label: 'loading the document…' });
    let doc;
    try {
      doc = await loadDocument(this.starting.signal, (err, wait) => {
        this.meter.state(`retrying in ${(wait / 1000).toFixed(1)} s`, 'retry');
        this.log(`could not load the document (${err.message}) — retry in ${(wait / 1000).toFixed(1)} s`, 'error');
      });
    } catch (err) {
      if (err.name === 'AbortError') return;
      throw err;
    }
    if (mine !== this.generation) return;
    this.history.clear();
    this.carets.rebase(doc.rev);
    this.setText(doc.text);
    this.engine =
      this.modeName === 'save'
        ? new SaveTheTextarea(this, doc)
        : new SendOperations(this, { ...doc, transform: this.modeName === 'ot' });
    this.root.dataset.mode = this.modeName;
    this.engine.start();
    this.textarea.readOnly = false;
    this.log(`${this.engine.mode.label}: starting at rev ${doc.rev} (${length(doc.text)} characters)`, 'info');
    if (!this.presence) await this.startPresence();
    this.publisher.start();
    this.changed();
  }

  /** Another mode: the counters start again, and so does the editor. */
  setMode(mode) {
    if (!MODES[mode] || mode === this.modeName) return;
    const unsent = this.unsent();
    if (unsent) this.lost(unsent, 'switched modes with edits still on their way: they may not have been stored');
    this.modeName = mode;
    this.counts = { fixed: 0, lost: 0 };
    this.sync = { state: 'pending' };
    this.showSync();
    this.showCounts();
    this.start();
  }

  /** Our edits the server has not stored yet (that a restart drops). */
  unsent() {
    if (!this.engine || this.engine.settled) return 0;
    return this.engine.localOps()?.length ?? 1;
  }

  /** Starts over from the server's text; `lostEdits` of ours are dropped. */
  reload(why, lostEdits) {
    if (lostEdits) this.lost(lostEdits, `${why}: our unsent edits are dropped`);
    else this.log(why, 'info');
    this.sync = { state: 'pending' };
    this.showSync();
    this.start();
  }

  /** The tab is hidden: stop reading (like the chat's pages). The client
   * and its pending edits are kept; resume() carries on from them. */
  pause() {
    this.starting?.abort();
    this.engine?.stop();
    this.presence?.stop();
    this.presence = null;
    this.publisher.stop();
    this.meter.state('paused — tab hidden', 'idle');
  }

  async resume() {
    if (this.closed) return; // left (or closed) stays so until start()
    if (!this.engine) {
      this.start();
      return;
    }
    this.engine.start();
    if (this.engine.client) this.engine.client.resend(); // in case it was lost meanwhile
    await this.startPresence();
    this.publisher.start();
  }

  /** The page is going away (or the editor is closed): say goodbye to the
   * others, and stop. start() begins again from the server's text. */
  leave() {
    this.publisher.leave();
    this.starting?.abort();
    this.engine?.stop();
    this.engine = null;
    this.presence?.stop();
    this.presence = null;
    this.textarea.readOnly = true;
    this.closed = true;
  }

  async startPresence() {
    const since = await startingPoint({ log: PRESENCE, keep: 200 }).catch(() => 0);
    this.presence?.stop();
    this.presence = new TRANSPORTS[this.via]({
      since,
      log: PRESENCE,
      every: this.every,
      probe: this.presenceMeter,
      onEntries: (entries) => this.presenceArrived(entries),
    });
    this.presence.start();
  }

  /** Replaces the whole text (a fresh start): the caret keeps its numbers. */
  setText(text) {
    const ta = this.textarea;
    const sel = selectionOf(ta, ta.value);
    ta.value = text;
    const n = length(text);
    setSelection(ta, text, { anchor: Math.min(sel.anchor, n), head: Math.min(sel.head, n) });
  }

  // ----- the user types -----

  onInput() {
    const ta = this.textarea;
    let value = ta.value;
    if (REFUSED.test(value)) {
      const caret = ta.selectionEnd - (value.slice(0, ta.selectionEnd).match(REFUSED_ALL)?.length ?? 0);
      value = value.replace(REFUSED_ALL, '');
      ta.value = value;
      ta.setSelectionRange(caret, caret);
      this.log('control characters removed from the pasted text (the document keeps only newline and tab)', 'info');
    }
    if (!this.engine) return;
    this.engine.edited(value, ta.selectionEnd);
    this.publisher.moved();
    this.changed();
  }

  /** Types as a user would: replaces UTF-16 range [from, to) with `text`
   * and fires the input event (the demo's hands). */
  type(from, to, text) {
    const ta = this.textarea;
    ta.setRangeText(text, from, to, 'end');
    ta.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: text ? 'insertText' : 'deleteContentBackward', data: text || null }));
  }

  // ----- news arrives (called by the mode) -----

  /** The mode's text changed under the user: `op` is what was applied
   * (null when a whole text replaced ours: save mode). */
  showRemote(text, op) {
    const ta = this.textarea;
    const old = ta.value;
    const sel = selectionOf(ta, old);
    const moved = op
      ? transformSelection(op, sel, Bias.BEFORE)
      : { anchor: Math.min(sel.anchor, length(text)), head: Math.min(sel.head, length(text)) }; // the naive way: the same numbers
    const scroll = ta.scrollTop;
    ta.value = text;
    setSelection(ta, text, moved);
    ta.scrollTop = scroll;
  }

  /** A stored operation was applied (someone's, or ours coming back). */
  applied(stored) {
    this.history.set(stored.rev, stored);
    if (this.history.size > HISTORY_KEPT) this.history.delete(this.history.keys().next().value);
    this.carets.advance(stored);
    this.publisher.advance(stored);
  }

  /** Someone's edit crossed one of ours. */
  fixed(stored) {
    this.counts.fixed += 1;
    const how = this.modeName === 'ot' ? 'transformed past our pending edit' : 'applied WITHOUT transforming: in the wrong place';
    this.log(`rev ${stored.rev} by ${stored.author ?? stored.client} crossed our edit — ${how}`, this.modeName === 'ot' ? 'ok' : 'error');
    this.showCounts();
  }

  /** `n` edits are gone (whose and why, in `why`). */
  lost(n, why) {
    this.counts.lost += n;
    this.log(why, 'error');
    this.showCounts();
  }

  nameTaken() {
    this.nameRefused = true;
    this.log('that name belongs to an account: sign in to use it. Edits go without a name meanwhile.', 'error');
  }

  takeSeq() {
    return this.nextSeq++;
  }

  author() {
    if (this.nameRefused) return null;
    return this.nameOf()?.trim() || null;
  }

  log(text, tone) {
    this.logTo(text, tone);
  }

  /** Something changed: redraw the state, carets and counters; check the badge soon. */
  changed() {
    if (!this.engine) return;
    this.showState(this.engine.state);
    const rev = this.root.querySelector('[data-role="rev"]');
    if (rev) {
      rev.textContent = `rev ${this.engine.rev}`;
      rev.dataset.value = String(this.engine.rev);
    }
    this.drawCarets();
    if (this.engine.settled && !this.holding) this.summary?.soon();
    for (const listener of this.listeners) listener(this);
  }

  /** Calls `listener(state)` when the badge changes: 'ok', 'diverged', 'pending'. */
  onSync(listener) {
    this.syncListeners.add(listener);
  }

  /** Calls `listener(editor)` after every change; returns an unsubscribe. */
  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ----- holding news back (the demo, and input methods) -----

  hold() {
    this.holding += 1;
  }

  release() {
    this.holding = Math.max(0, this.holding - 1);
    if (this.holding === 0) this.engine?.release?.();
    this.changed();
  }

  // ----- presence -----

  presenceArrived(entries) {
    let moved = false;
    for (const entry of entries) {
      this.people?.receive(entry);
      const rev = this.engine?.rev ?? 0;
      if (this.carets.receive(entry, rev, (r) => this.history.get(r))) moved = true;
    }
    if (moved) this.drawCarets();
  }

  /** Our caret as a position in the server's text at our revision. */
  caretInServerText() {
    if (!this.engine) return null;
    const text = this.engine.text;
    if (this.textarea.value !== text) return null;
    let { anchor, head } = selectionOf(this.textarea, text);
    // Walk back through our own edits the server does not have yet.
    for (const op of [...(this.engine.localOps() ?? [])].reverse()) {
      anchor = untransformIndex(op, anchor);
      head = untransformIndex(op, head);
    }
    return { rev: this.engine.rev, anchor, head };
  }

  sendCaret(update) {
    // The WebSocket editor publishes on its presence socket; the others POST.
    if (this.via === 'websocket' && this.presence?.tell?.({ type: 'presence', ...update })) return;
    const bar = this.presenceMeter.sending();
    postCaret(update).then((answer) => bar.end(answer ? 'data' : 'error', answer?.wire));
  }

  drawCarets() {
    const text = this.engine?.text ?? this.textarea.value;
    const carets = this.carets.local(this.engine?.localOps() ?? [], length(text));
    this.overlay.draw(
      text,
      carets.map((c) => ({ ...c, point: c.head, anchor: utf16Offset(text, c.anchor), head: utf16Offset(text, c.head) })),
    );
  }

  // ----- the badge, the counters, the state -----

  /** A summary from the server: compare, if we are where it is. */
  checkSync(summary) {
    const engine = this.engine;
    if (!engine || !engine.settled || this.holding || engine.rev !== summary.rev) {
      if (this.sync.state !== 'diverged') {
        this.sync = { state: 'pending' };
        this.showSync();
      }
      return;
    }
    const mine = summarise(engine.text);
    const same = mine.length === summary.length && mine.hash === summary.hash;
    const state = same ? 'ok' : 'diverged';
    if (state === 'diverged' && this.sync.state !== 'diverged') {
      this.log(`DIVERGED at rev ${summary.rev}: here ${mine.length} characters #${mine.hash}, the server ${summary.length} #${summary.hash}`, 'error');
    }
    this.sync = { state, rev: summary.rev, mine, server: summary };
    this.showSync();
  }

  showSync() {
    const badge = this.root.querySelector('[data-role="sync"]');
    if (!badge) return;
    const { state, rev, mine, server } = this.sync;
    const text = { ok: 'in sync', diverged: 'diverged', pending: 'checking…' }[state];
    if (badge.textContent !== text) badge.textContent = text;
    if (badge.dataset.sync !== state) for (const listener of this.syncListeners) listener(state);
    badge.dataset.sync = state;
    this.root.dataset.sync = state; // the textarea's border turns red too
    if (rev !== undefined) badge.dataset.rev = String(rev); // the revision it compared
    const detail = this.root.querySelector('[data-role="sync-detail"]');
    if (detail) {
      detail.textContent =
        state === 'pending'
          ? 'compared with the server when caught up'
          : state === 'ok'
            ? `rev ${rev}: ${mine.length} characters, #${mine.hash}, as on the server`
            : `rev ${rev}: here ${mine.length} characters #${mine.hash}, server ${server.length} #${server.hash}`;
    }
  }

  showCounts() {
    const mode = MODES[this.modeName];
    const fixed = this.root.querySelector('[data-stat="doc-fixed"]');
    if (fixed) {
      fixed.textContent = String(this.counts.fixed);
      fixed.dataset.value = String(this.counts.fixed);
      fixed.closest('[data-role="fixed-box"]').hidden = !mode.fixed;
      const label = this.root.querySelector('[data-role="fixed-label"]');
      if (label && mode.fixed) label.textContent = mode.fixed;
    }
    const lost = this.root.querySelector('[data-stat="doc-lost"]');
    if (lost) {
      lost.textContent = String(this.counts.lost);
      lost.dataset.value = String(this.counts.lost);
    }
  }

  showState({ key, label }) {
    const el = this.root.querySelector('[data-role="doc-state"]');
    if (!el) return;
    if (el.textContent !== label) el.textContent = label;
    el.dataset.state = key;
  }
}

/** GET /api/doc, retried with a back-off until it works or `signal` aborts. */
async function loadDocument(signal, onRetry) {
  for (let attempt = 1; ; attempt += 1) {
    signal.throwIfAborted();
    try {
      const { body } = await request('/api/doc', { signal, timeoutMs: 10_000 });
      return body;
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      const wait = backoff(attempt, err.retryAfterMs);
      onRetry(err, wait);
      await sleep(wait, signal);
    }
  }
}

/** The textarea's selection in code points of `text`: {anchor, head}
 * (a backward selection has its head at the start). */
function selectionOf(textarea, text) {
  const start = codePointOffset(text, textarea.selectionStart);
  const end = codePointOffset(text, textarea.selectionEnd);
  return textarea.selectionDirection === 'backward' ? { anchor: end, head: start } : { anchor: start, head: end };
}

function setSelection(textarea, text, { anchor, head }) {
  const a = utf16Offset(text, anchor);
  const h = utf16Offset(text, head);
  textarea.setSelectionRange(Math.min(a, h), Math.max(a, h), h < a ? 'backward' : 'forward');
}

