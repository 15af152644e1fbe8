// Presence: everyone else's caret and selection, in my editor.
//
// A caret is a position in ONE REVISION of the text. Bob says "at revision
// 41 my selection is 12..17" (POST /api/doc/presence, or a frame on the
// presence socket); by the time it reaches Ada, she may have applied
// revisions 42 and 43, in which someone typed before Bob's caret. So Ada
// never trusts the numbers as they are: she moves Bob's caret through the
// operations since revision 41 — exactly as an operation is transformed —
// and from then on through every new operation she applies. A caret is
// never recomputed from scratch; it is carried along by the edits.
//
// Whose edit moves a caret how (ot.js, Bias): text inserted exactly at
// Bob's caret pushes it only if Bob typed it himself (AFTER); anyone
// else's insert there appears after his caret, which stays (BEFORE).
//
// Ada's own caret, when she publishes it, has the same problem the other
// way round: her text is revision R plus her own edits that the server has
// not stored yet, and a caret must be a position in revision R. So it is
// walked BACK through those pending edits (untransformIndex below): a caret
// inside text she has just typed maps to where that text goes in; once her
// edit is stored, the others move her caret past it (her own insert: AFTER).
//
// This file has the three parts: the model of the remote carets
// (RemoteCarets), the publisher of mine (CaretPublisher: at most ten
// updates a second, one every 20 s to say "still here", and "left" when the
// page goes), and the list of who is editing over which transport
// (PeopleList). overlay.js draws the carets.

import { request } from '../net.js';
import { Bias, isInsert, isRetain, length, transformSelection } from './ot.js';

/** Carets sent at most this often (10 a second; the server takes 20). */
export const PRESENCE_MIN_INTERVAL_MS = 100;
/** "Still here", even when the caret does not move. */
export const PRESENCE_HEARTBEAT_MS = 20_000;
/** A caret not refreshed for this long is forgotten: its page is gone
 * without saying so (a closed laptop). Three heartbeats. */
export const PRESENCE_EXPIRY_MS = 60_000;

/**
 * The opposite of transformIndex: `op` turns text A into text B, and
 * `index` is a position in B; returns the position in A it came from. A
 * position inside (or at either end of) text that `op` inserted maps to
 * where that insert goes in.
 */
export function untransformIndex(op, index) {
  let a = 0; // position in A
  let b = 0; // position in B
  for (const c of op) {
    if (isRetain(c)) {
      if (index <= b + c) return a + (index - b);
      a += c;
      b += c;
    } else if (isInsert(c)) {
      const n = length(c);
      if (index <= b + n) return a;
      b += n;
    } else {
      a -= c; // a delete: characters of A that B does not have
    }
  }
  return a;
}

/** The bias for moving `caret` through `stored`: its owner's own edit
 * carries it along, anyone else's leaves it before their text. */
const biasFor = (caret, stored) => (stored.client === caret.client ? Bias.AFTER : Bias.BEFORE);

/**
 * The other editors' carets, each kept as a selection {anchor, head} in
 * the server's text at `rev`, and moved forward by every stored operation
 * the editor applies.
 */
export class RemoteCarets {
  /** `me`: this editor's client id (its own caret comes back too: skipped). */
  constructor(me) {
    this.me = me;
    this.carets = new Map(); // client → {seq, client, name, color, account, via, rev, anchor, head, seenAt}
    this.lastSeq = new Map(); // client → the newest presence seq seen from it
  }

  /**
   * A caret from the presence log. `rev` is the revision this editor has
   * applied; `history(r)` gives the stored operation of revision r (or
   * undefined when it is no longer kept). Returns true when a caret changed.
   */
  receive(entry, rev, history) {
    if (entry.client === this.me) return false;
    // Overlapping polls deliver an entry twice, or an older one late.
    if ((this.lastSeq.get(entry.client) ?? -1) >= entry.seq) return false;
    this.lastSeq.set(entry.client, entry.seq);
    if (entry.left) return this.carets.delete(entry.client);
    const caret = {
      seq: entry.seq,
      client: entry.client,
      name: entry.name,
      color: entry.color,
      account: Boolean(entry.account),
      via: entry.via,
      rev: entry.rev,
      anchor: entry.anchor,
      head: entry.head,
      seenAt: performance.now(),
    };
    // Made at an older revision than ours: move it through what happened since.
    while (caret.rev < rev) {
      const stored = history(caret.rev + 1);
      if (!stored) {
        caret.rev = rev; // too old to move exactly; its numbers are close enough
        break;
      }
      Object.assign(caret, transformSelection(stored.op, caret, biasFor(caret, stored)));
      caret.rev += 1;
    }
    // (Made at a NEWER revision than ours: it is exact as soon as we get there.)
    // When its owner last MOVED it (not when an edit carried it along): the
    // name flag shows for a moment after that, as in Google Docs.
    const before = this.carets.get(caret.client);
    const same = before && before.rev === caret.rev && before.anchor === caret.anchor && before.head === caret.head;
    caret.movedAt = same ? before.movedAt : caret.seenAt;
    this.carets.set(caret.client, caret);
    return true;
  }

  /** This editor applied `stored` (someone's edit, or its own coming back). */
  advance(stored) {
    for (const caret of this.carets.values()) {
      if (caret.rev !== stored.rev - 1) continue;
      Object.assign(caret, transformSelection(stored.op, caret, biasFor(caret, stored)));
      caret.rev = stored.rev;
    }
  }

  /** Forgets carets whose page has gone quiet. Returns true if any went. */
  expire(now = performance.now()) {
    let gone = false;
    for (const [client, caret] of this.carets) {
      if (now - caret.seenAt > PRESENCE_EXPIRY_MS) gone = this.carets.delete(client) || gone;
    }
    if (this.lastSeq.size > 1000) this.lastSeq.clear(); // a long lesson: start counting again
    return gone;
  }

  clear() {
    this.carets.clear();
    this.lastSeq.clear();
  }

  /** The editor starts again at revision `rev` without the operations in
   * between: the carets keep their numbers until their owners move them. */
  rebase(rev) {
    for (const caret of this.carets.values()) caret.rev = Math.max(caret.rev, rev);
  }

  /**
   * Where to draw each caret in the local text: through `localOps` (this
   * editor's own edits not stored yet, oldest first: they are not the
   * caret owner's, so BEFORE), then kept inside the text.
   */
  local(localOps, textLength) {
    const out = [];
    for (const caret of this.carets.values()) {
      let sel = { anchor: caret.anchor, head: caret.head };
      for (const op of localOps) sel = transformSelection(op, sel, Bias.BEFORE);
      const clamp = (n) => Math.max(0, Math.min(n, textLength));
      out.push({ ...caret, anchor: clamp(sel.anchor), head: clamp(sel.head) });
    }
    return out;
  }
}

/**
 * Publishes this editor's caret: when it moves (throttled), every 20 s,
 * and `left` when the page goes. `send(update)` delivers one update (a
 * frame on the presence socket, or a POST); `current()` says where the
 * caret is now, in the server's text: {rev, anchor, head}, or null.
 */
export class CaretPublisher {
  constructor({ client, via, name, current, send }) {
    this.client = client;
    this.via = via;
    this.name = name; // () → the name to show, or '' for "guest"
    this.current = current;
    this.send = send;
    this.lastSent = 0;
    this.last = null; // what we last said, moved since through every edit, as the others move it
    this.timer = null;
    this.heartbeat = null;
  }

  start() {
    this.stop();
    this.heartbeat = setInterval(() => this.publish(true), PRESENCE_HEARTBEAT_MS);
    this.moved();
  }

  stop() {
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    this.timer = null;
    this.heartbeat = null;
  }

  /** The caret or selection moved: publish, at most every 100 ms. */
  moved() {
    if (this.timer) return; // one is already scheduled; it will read the newest caret
    const wait = Math.max(0, this.lastSent + PRESENCE_MIN_INTERVAL_MS - performance.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.publish(false);
    }, wait);
  }

  /**
   * The editor applied a stored operation. The others move our caret
   * through it by themselves, so we do the same to what we last told them:
   * if our caret is where they now think it is, there is nothing to send.
   * (Otherwise every edit anyone made would make every editor publish.)
   */
  advance(stored) {
    if (!this.last || this.last.rev !== stored.rev - 1) return;
    const bias = stored.client === this.client ? Bias.AFTER : Bias.BEFORE;
    Object.assign(this.last, transformSelection(stored.op, this.last, bias), { rev: stored.rev });
  }

  /** Sends the caret now; unless `always`, only if it moved. */
  publish(always) {
    const at = this.current();
    if (!at) return;
    const update = this.update(at);
    const known = this.last;
    const same =
      known &&
      known.rev === update.rev &&
      known.anchor === update.anchor &&
      known.head === update.head &&
      known.name === update.name;
    if (!always && same) return;
    this.last = { rev: update.rev, anchor: update.anchor, head: update.head, name: update.name };
    this.lastSent = performance.now();
    this.send(update);
  }

  update({ rev, anchor, head }) {
    const name = this.name();
    return { client: this.client, rev, anchor, head, via: this.via, ...(name ? { name } : {}) };
  }

  /** The page is going: one last POST that outlives it (fetch keepalive). */
  leave() {
    this.stop();
    const at = this.current() ?? { rev: 0, anchor: 0, head: 0 };
    request('/api/doc/presence', { method: 'POST', json: { ...this.update(at), left: true }, keepalive: true }).catch(() => {});
  }
}

/** POSTs one caret update: POST /api/doc/presence answers 204. */
export function postCaret(update) {
  return request('/api/doc/presence', { method: 'POST', json: update, timeoutMs: 10_000 }).catch(() => {
    // A lost caret update is not worth a retry: the next one replaces it.
  });
}

/**
 * "Who is editing, over which transport": one list for the page, fed by
 * every editor's presence stream (on /doc/compare, five of them), one line
 * per editor (client), newest first.
 */
export class PeopleList {
  /** `mine(client)`: true for the editors of this page (shown as "you"). */
  constructor(list, { empty, mine = () => false } = {}) {
    this.list = list;
    this.empty = empty;
    this.mine = mine;
    this.people = new Map(); // client → {name, account, color, via, seenAt}
    setInterval(() => this.expire(), 5000);
  }

  receive(entry) {
    if (entry.left) {
      if (this.people.delete(entry.client)) this.render();
      return;
    }
    const before = this.people.get(entry.client);
    const person = { name: entry.name, account: Boolean(entry.account), color: entry.color, via: entry.via, seenAt: performance.now() };
    this.people.set(entry.client, person);
    if (!before || before.name !== person.name || before.via !== person.via || before.account !== person.account) this.render();
  }

  expire(now = performance.now()) {
    let gone = false;
    for (const [client, p] of this.people) {
      if (now - p.seenAt > PRESENCE_EXPIRY_MS) gone = this.people.delete(client) || gone;
    }
    if (gone) this.render();
  }

  render() {
    if (!this.list) return;
    const items = [];
    for (const [client, p] of this.people) {
      const li = document.createElement('li');
      li.className = 'person';
      li.dataset.client = client;
      li.dataset.transport = p.via;
      const dot = document.createElement('span');
      dot.className = 'person-dot';
      dot.setAttribute('aria-hidden', 'true');
      // A colour from the server (a CSSOM property, which the page's CSP allows).
      dot.style.setProperty('--who', p.color);
      const name = document.createElement('span');
      name.className = 'person-name';
      name.textContent = p.name;
      li.append(dot, name);
      if (p.account) {
        const mark = document.createElement('span');
        mark.className = 'person-account';
        mark.textContent = '✓';
        mark.title = 'signed in: this name is an account’s';
        const hidden = document.createElement('span');
        hidden.className = 'visually-hidden';
        hidden.textContent = ' (signed in)';
        li.append(mark, hidden);
      }
      if (this.mine(client)) {
        const you = document.createElement('span');
        you.className = 'person-you';
        you.textContent = 'you';
        li.append(you);
      }
      const via = document.createElement('span');
      via.className = 'via person-via';
      via.textContent = p.via;
      li.append(via);
      items.push(li);
    }
    this.list.replaceChildren(...items);
    if (this.empty) this.empty.hidden = items.length > 0;
  }
}
