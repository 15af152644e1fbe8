// The message list: turns message objects into <li> elements, and decides
// what to do with duplicates and stragglers.
//
// A careful client keeps the list equal to the server's log: each id once,
// in id order, wherever and whenever it arrived. The naive client appends
// whatever an answer contains, in the order answers arrive — so when answers
// overlap or overtake each other, the class sees the mess.
//
// Text from other people is only ever set with textContent, never as HTML:
// "<img src=x onerror=…>" shows up as those characters, harmlessly.
//
// A message whose author was signed in carries "account": true, and its
// name gets a mark: that name is an account's, and only its owner can
// write under it. A name without the mark is a guest's: anyone could have
// typed it.

import { formatClock } from './format.js';

/** More than this many <li> and the oldest are removed (the log keeps them). */
const MAX_SHOWN = 500;
/** Ids remembered for de-duplication: far more than are shown, and still
 * bounded, so a page left open all day does not grow. */
const MAX_SEEN = 5000;

export class MessageList {
  constructor(list, { naive = false, empty = null, counter = null } = {}) {
    this.list = list; // the <ol role="log">
    this.naive = naive;
    this.empty = empty; // "no messages yet" element, hidden once there are some
    this.counter = counter; // element showing how many are shown
    this.seen = new Set(); // ids already shown (or dropped as duplicates)
    this.own = new Set(); // ids of messages this tab sent
    this.lastShownId = 0; // id of the last <li> appended (naive mode)
    // Follow new messages while the reader is at the bottom; stop following
    // when they scroll up to read, start again when they come back down.
    this.follow = true;
    this.box = list.closest('.messages-wrap') ?? list;
    this.box.addEventListener('scroll', () => {
      this.follow = this.box.scrollHeight - this.box.scrollTop - this.box.clientHeight < 60;
    });
  }

  /**
   * Adds the messages of one answer. Returns what happened, for the
   * instruments: which were new, how many were duplicates, and how many
   * arrived older than something already shown (`outOfOrder`: shown out of
   * order by the naive list, put back in place by the careful one).
   */
  add(messages) {
    const result = { added: [], duplicates: 0, outOfOrder: 0 };
    for (const message of messages) {
      const duplicate = this.seen.has(message.id);
      if (duplicate) result.duplicates += 1;
      if (this.naive) {
        // Naive: append everything, as it comes.
        const late = message.id < this.lastShownId;
        if (late) result.outOfOrder += 1;
        this.list.append(this.render(message, duplicate, late));
        this.lastShownId = message.id;
      } else {
        if (duplicate) continue; // careful: each id once
        const last = Number(this.list.lastElementChild?.dataset.id ?? 0);
        if (message.id < last) result.outOfOrder += 1; // a straggler
        this.insertInOrder(this.render(message, false), message.id);
      }
      if (!duplicate) result.added.push(message);
      this.seen.add(message.id);
    }
    // Sets iterate in insertion order: the first ids are the oldest.
    for (const id of this.seen) {
      if (this.seen.size <= MAX_SEEN) break;
      this.seen.delete(id);
    }
    while (this.list.childElementCount > MAX_SHOWN) this.list.firstElementChild.remove();
    this.refresh();
    if (this.follow && messages.length) this.box.scrollTop = this.box.scrollHeight;
    return result;
  }

  /** Careful mode: almost always an append; a straggler goes to its place. */
  insertInOrder(li, id) {
    let after = this.list.lastElementChild;
    while (after && Number(after.dataset.id) > id) after = after.previousElementSibling;
    if (after) after.after(li);
    else this.list.prepend(li);
  }

  /** Marks a message as sent from this tab. */
  markOwn(id) {
    this.own.add(id);
    if (this.own.size > MAX_SHOWN) this.own.delete(this.own.values().next().value);
    for (const li of this.list.querySelectorAll(`li[data-id="${Number(id)}"]`)) li.classList.add('own');
  }

  /** Switches mode; the list starts over (the transport reloads it). */
  reset({ naive = this.naive } = {}) {
    this.naive = naive;
    this.seen.clear();
    this.lastShownId = 0;
    this.list.replaceChildren();
    this.refresh();
  }

  render(message, duplicate, late = false) {
    const li = document.createElement('li');
    li.className = 'msg';
    li.dataset.id = String(message.id);
    li.dataset.via = message.via;
    if (this.own.has(message.id)) li.classList.add('own');
    if (duplicate) li.classList.add('dup');
    if (late) li.classList.add('late');

    const avatar = document.createElement('span');
    avatar.className = `avatar hue-${hue(message.author)}`;
    avatar.setAttribute('aria-hidden', 'true');
    avatar.textContent = [...message.author.trim()][0]?.toUpperCase() ?? '?';

    const meta = document.createElement('div');
    meta.className = 'msg-meta';
    const author = document.createElement('span');
    author.className = 'msg-author';
    author.textContent = message.author;
    const via = document.createElement('span');
    via.className = 'via';
    via.dataset.transport = message.via;
    via.textContent = message.via;
    const time = document.createElement('time');
    time.dateTime = new Date(message.sent_at).toISOString();
    time.textContent = formatClock(message.sent_at);
    const id = document.createElement('span');
    id.className = 'msg-id';
    id.textContent = `#${message.id}`;
    meta.append(author);
    if (message.account) meta.append(accountMark());
    meta.append(via, time, id);
    if (duplicate) {
      const badge = document.createElement('span');
      badge.className = 'badge badge-warn';
      badge.textContent = 'duplicate';
      meta.append(badge);
    }
    if (late) {
      const badge = document.createElement('span');
      badge.className = 'badge badge-danger';
      badge.textContent = 'out of order';
      meta.append(badge);
    }

    const text = document.createElement('p');
    text.className = 'msg-text';
    text.textContent = message.text;

    const body = document.createElement('div');
    body.className = 'msg-body';
    body.append(meta, text);
    li.append(avatar, body);
    return li;
  }

  refresh() {
    const count = this.list.childElementCount;
    if (this.empty) this.empty.hidden = count > 0;
    if (this.counter) this.counter.textContent = String(count);
  }
}

const SVG = 'http://www.w3.org/2000/svg';

/** The mark of a signed-in author: a small shield, with words for screen
 * readers and a tooltip for everyone. */
function accountMark() {
  const mark = document.createElement('span');
  mark.className = 'account-mark msg-account';
  mark.title = 'Signed in: this name belongs to an account';
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', 'M8 1.2 2.5 3.4v4.1c0 3.4 2.3 6.1 5.5 7.3 3.2-1.2 5.5-3.9 5.5-7.3V3.4L8 1.2Zm-1 9.9L4.4 8.5l1.1-1.1L7 8.9l3.5-3.5 1.1 1.1L7 11.1Z');
  svg.append(path);
  const words = document.createElement('span');
  words.className = 'visually-hidden';
  words.textContent = '(signed in)';
  mark.append(svg, words);
  return mark;
}

/** A stable colour (one of 8 classes) per author name. */
function hue(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 8;
}
