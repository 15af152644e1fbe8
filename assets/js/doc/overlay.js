// Drawing other people's carets over a <textarea>: the mirror-div trick.
//
// A textarea draws its text itself and tells a page nothing about where a
// character ends up on screen. So behind the scenes we keep a MIRROR: an
// invisible <div> over the textarea with the same text, the same font,
// padding, width and wrapping (white-space: pre-wrap), so that every
// character lands exactly where it does in the textarea. To find where
// character 42 is, put an empty <span> at 42 in the mirror and ask the
// browser for the span's position (getClientRects). Then draw a thin
// coloured bar there, and a small flag with the name, on a layer above the
// textarea that lets every click through (pointer-events: none).
//
// The mirror is visibility: hidden and the layer aria-hidden: a screen
// reader hears the textarea, and the list of who is editing, once.
//
// A caret's flag shows for a few seconds after its owner moved it, then
// fades to a small dot on top of the bar: five people's names over one
// paragraph would hide the paragraph.
//
// Everything here is in UTF-16 offsets of the text (the textarea's units);
// the caller converts from the document's code points (text.js).

/** How long a flag stays after its caret moved. */
export const FLAG_MS = 3500;

/** What decides where a character lands: copied from the textarea. */
const MIRRORED = [
  'fontFamily',
  'fontSize',
  'fontWeight',
  'fontStyle',
  'fontVariant',
  'letterSpacing',
  'wordSpacing',
  'lineHeight',
  'tabSize',
  'textTransform',
  'textIndent',
  'paddingTop',
  'paddingRight',
  'paddingBottom',
  'paddingLeft',
  'whiteSpace',
  'overflowWrap',
  'wordBreak',
];

/** One bar and one flag per remote caret; a tinted box per line of a selection. */
export class CaretOverlay {
  constructor(textarea) {
    this.textarea = textarea;
    this.layer = document.createElement('div');
    this.layer.className = 'doc-overlay';
    this.layer.setAttribute('aria-hidden', 'true');
    this.mirror = document.createElement('div');
    this.mirror.className = 'doc-mirror';
    this.marks = document.createElement('div');
    this.marks.className = 'doc-marks';
    this.layer.append(this.mirror, this.marks);
    textarea.after(this.layer);
    this.text = '';
    this.carets = [];
    this.frame = 0;
    this.fade = null; // the timer that quiets the next flag
    textarea.addEventListener('scroll', () => this.place());
    new ResizeObserver(() => this.schedule()).observe(textarea);
    document.addEventListener('weebsockets:appearance', () => this.schedule());
  }

  /** carets: [{client, name, account, color, via, anchor, head, point}]:
   * anchor and head in UTF-16 offsets of `text`, point the head in code points. */
  draw(text, carets) {
    this.text = text;
    this.carets = carets;
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** Lays the layer exactly over the textarea's text area (inside its border,
   * without its scrollbar), so the mirror wraps lines at the same width. */
  fit() {
    const ta = this.textarea;
    this.layer.style.top = `${ta.offsetTop + ta.clientTop}px`;
    this.layer.style.left = `${ta.offsetLeft + ta.clientLeft}px`;
    this.layer.style.width = `${ta.clientWidth}px`;
    this.layer.style.height = `${ta.clientHeight}px`;
    // The mirror takes the textarea's own metrics, whatever the stylesheet
    // (and Large type) made them: the same characters on the same lines.
    const style = getComputedStyle(ta);
    for (const prop of MIRRORED) this.mirror.style[prop] = style[prop];
    this.mirror.style.width = `${ta.clientWidth}px`;
  }

  render() {
    this.fit();
    // The mirror: the text, cut at every point we need to measure.
    const cuts = new Set([0, this.text.length]);
    for (const c of this.carets) {
      cuts.add(c.anchor);
      cuts.add(c.head);
    }
    const points = [...cuts].sort((a, b) => a - b);
    const markers = new Map(); // offset → empty span at that offset
    const pieces = [];
    for (let i = 0; i < points.length; i++) {
      const at = points[i];
      const marker = document.createElement('span');
      // An empty inline box at a line start that nothing else is on would
      // take no line: give it a zero-width space there (an empty line, or
      // the end after a final newline).
      const lineStart = at === 0 || this.text[at - 1] === '\n';
      const lineEmpty = at === this.text.length || this.text[at] === '\n';
      if (lineStart && lineEmpty) marker.textContent = '\u200b';
      markers.set(at, marker);
      pieces.push(marker);
      const next = points[i + 1];
      if (next !== undefined && next > at) pieces.push(document.createTextNode(this.text.slice(at, next)));
    }
    this.mirror.replaceChildren(...pieces);
    this.marks.replaceChildren();
    const origin = this.mirror.getBoundingClientRect();
    this.lineHeight = parseFloat(getComputedStyle(this.textarea).lineHeight) || 20;
    const now = performance.now();
    let nextFade = Infinity;
    this.flags = []; // flags drawn so far, to keep the next one off them
    for (const c of this.carets) {
      const start = Math.min(c.anchor, c.head);
      const end = Math.max(c.anchor, c.head);
      if (end > start) this.drawSelection(c, markers.get(start), markers.get(end), origin);
      const left = FLAG_MS - (now - (c.movedAt ?? now));
      this.drawCaret(c, markers.get(c.head), origin, left <= 0);
      if (left > 0) nextFade = Math.min(nextFade, left);
    }
    clearTimeout(this.fade);
    if (nextFade < Infinity) this.fade = setTimeout(() => this.schedule(), nextFade + 20);
    this.place();
  }

  /** A tinted box over each line the selection covers. */
  drawSelection(caret, from, to, origin) {
    const range = document.createRange();
    range.setStartAfter(from);
    range.setEndBefore(to);
    for (const r of range.getClientRects()) {
      if (r.width < 1) continue;
      const box = document.createElement('div');
      box.className = 'remote-selection';
      box.style.setProperty('--who', caret.color);
      box.style.left = `${r.left - origin.left}px`;
      box.style.top = `${r.top - origin.top}px`;
      box.style.width = `${r.width}px`;
      box.style.height = `${r.height}px`;
      this.marks.append(box);
    }
  }

  /** The bar where the caret is, and its flag: name (✓ signed in) · transport. */
  drawCaret(caret, marker, origin, quiet) {
    const r = marker.getBoundingClientRect();
    const bar = document.createElement('div');
    bar.className = 'remote-caret';
    bar.dataset.client = caret.client;
    // Where it is in the document (code points) and its revision, for
    // tests and for anyone inspecting the page.
    if (caret.point !== undefined) bar.dataset.at = String(caret.point);
    bar.style.setProperty('--who', caret.color);
    bar.style.left = `${r.left - origin.left}px`;
    bar.style.top = `${r.top - origin.top}px`;
    bar.style.height = `${r.height || this.lineHeight}px`;
    const flag = document.createElement('span');
    flag.className = 'remote-caret-flag';
    flag.textContent = `${caret.name}${caret.account ? ' ✓' : ''} · ${caret.via}`;
    // On the first line there is no room above the caret: hang it below.
    if (r.top - origin.top < this.lineHeight) flag.classList.add('below');
    if (quiet) bar.classList.add('quiet');
    bar.append(flag);
    this.marks.append(bar);
    // Near the right edge the flag would be cut off: it hangs to the left.
    if (r.left - origin.left + flag.offsetWidth > this.layer.clientWidth) flag.classList.add('flip');
    // On top of another person's flag: hang it the other way, or on the
    // other side of the line (never above the first line: no room there).
    if (!quiet) {
      const edge = this.layer.getBoundingClientRect();
      const overlaps = () => {
        const a = flag.getBoundingClientRect();
        if (a.right > edge.right || a.left < edge.left) return true; // cut off: as bad
        return this.flags.some((b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom);
      };
      const firstLine = r.top - origin.top < this.lineHeight;
      const tries = firstLine ? ['flip'] : ['flip', 'below', 'flip'];
      const placed = flag.className;
      for (const change of tries) {
        if (!overlaps()) break;
        flag.classList.toggle(change);
      }
      if (overlaps()) flag.className = placed; // nowhere better: as it was
      this.flags.push(flag.getBoundingClientRect());
    }
  }

  /** Follows the textarea's scrolling. */
  place() {
    this.marks.style.transform = `translateY(${-this.textarea.scrollTop}px)`;
  }
}
