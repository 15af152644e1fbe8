// "Is my text the server's?" — the editor's in-sync badge.
//
// Downloading the whole document to compare it would cost as much as the
// document. Instead the server answers GET /api/doc/summary with the
// revision, the text's length in characters (code points) and a 32-bit
// FNV-1a hash of its UTF-8 bytes; the editor computes the same two numbers
// of its own text. The comparison only means something when the editor
// has caught up: its revision is the summary's and nothing of its own is
// still on the way. Then equal numbers say "in sync" — and different ones
// say the text has DRIFTED from the server's: red, and it stays red until
// the editor reloads. (A 32-bit hash can collide, one time in four
// billion: fine for a badge, not for a bank.)

import { request } from '../net.js';
import { length } from './ot.js';

const encoder = new TextEncoder();

/** FNV-1a, 32 bits, of the text's UTF-8 bytes, as 8 hex digits — the
 * server's `hash` (src/editing.rs, fnv1a). */
export function fnv1a(text) {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0; // multiply modulo 2^32
  }
  return hash.toString(16).padStart(8, '0');
}

/** {length, hash} of a text, as the summary says them. */
export function summarise(text) {
  return { length: length(text), hash: fnv1a(text) };
}

/** How often the page asks for the summary (only while it is shown). */
const SUMMARY_EVERY_MS = 1000;

/**
 * One GET /api/doc/summary at a time for the whole page, however many
 * editors it has (five on /doc/compare): each answer goes to every editor,
 * and each one checks itself against it if it is at that revision. Not
 * counted in any editor's instruments (it is the badge's, not the
 * transport's); DevTools shows it as `summary`.
 */
export class SummaryWatcher {
  constructor() {
    this.listeners = new Set();
    this.timer = null;
    this.dueAt = 0; // when the next question is asked
    this.busy = false;
    this.last = null; // the newest answer
  }

  subscribe(listener) {
    this.listeners.add(listener);
    if (this.last) listener(this.last);
    this.start();
    return () => this.listeners.delete(listener);
  }

  start() {
    if (this.timer === null) this.after(0);
  }

  /** Ask again soon (an editor has just caught up), not in a second —
   * but never later than already planned. */
  soon() {
    if (this.timer !== null && this.dueAt <= performance.now() + 150) return;
    this.after(150);
  }

  after(ms) {
    clearTimeout(this.timer);
    this.dueAt = performance.now() + ms;
    this.timer = setTimeout(() => this.tick(), ms);
  }

  async tick() {
    this.timer = null;
    if (!document.hidden && !this.busy && this.listeners.size) {
      this.busy = true;
      try {
        const { body } = await request('/api/doc/summary', { timeoutMs: 5000 });
        this.last = body;
        for (const listener of this.listeners) listener(body);
      } catch {
        // The server is away (the lab's outage): the badge keeps its last word.
      } finally {
        this.busy = false;
      }
    }
    if (this.timer === null) this.after(SUMMARY_EVERY_MS);
  }
}
