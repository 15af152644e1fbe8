// The request timeline: a live swimlane drawn on a <canvas>.
//
// Time runs left to right (the last 15 seconds, "now" at the right edge).
// Each HTTP request is a bar from the moment it was sent to the moment its
// answer arrived; each WebSocket or SSE frame is a tick on its connection's
// line.
//
// A row means CONCURRENCY, like the lanes of DevTools' waterfall: a new
// request takes the first row that has no request waiting in it. So the
// number of rows in use is the number of requests that were in flight at
// the same time, and the shape tells the story at a glance:
//
//   setInterval   stacks up rows as soon as answers take longer than the
//                 interval — the clock does not wait for them
//   setTimeout    always one row: the next request starts after the answer
//   long polling  one row of long bars, each held by the server until news
//   WebSocket/SSE one line, with a tick for every frame
//
// Where the browser made a request wait for one of its six connections to
// the host before sending it (Resource Timing tells us; DevTools calls it
// "Stalled"), the bar starts with a thin dashed lead-in of that length.
//
// `spans` and `ticks` are the model the canvas is drawn from; tests read
// them (and so can you, in the console: `weebsockets.timeline.spans`).

/** Every timeline on the page redraws in one animation loop. */
const timelines = new Set();
/** Redraw at most this often (ms): smooth enough, and cheap on a laptop
 * that is also projecting. */
const FRAME_MS = 33;
/** Past this many, spans and ticks are pruned as they are added, not only
 * when drawn: a hidden tab draws nothing (no animation frames), and its
 * timeline must not grow meanwhile. */
const MAX_SPANS = 400;
const MAX_TICKS = 2000;
/** A wait before sending shorter than this (ms) is the browser's own
 * overhead, not a queue: not drawn. (Meter counts stalls the same way.) */
export const STALL_MS = 50;

let lastFrame = 0;
function loop(now) {
  if (now - lastFrame >= FRAME_MS) {
    lastFrame = now;
    for (const timeline of timelines) timeline.draw(now);
  }
  requestAnimationFrame(loop);
}
requestAnimationFrame(loop);
document.addEventListener('weebsockets:appearance', () => {
  for (const timeline of timelines) timeline.readColours();
});

export class Timeline {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {object} options
   *   push: true for WebSocket/SSE (one connection line) — false for polls
   *   minRows: rows always drawn for requests, used or not, so that "only
   *            ever one row" is visible as such
   *   maxRows: rows drawn at most; requests beyond it share the last row
   *            (the model keeps their true row)
   *   windowMs: how much time is visible
   *   outTicks: frames we send are ticks on the line (WebSocket) rather
   *             than POST bars in the "send" lane
   *   compact: the small version on /compare (no labels or axis)
   */
  constructor(
    canvas,
    { push = false, minRows = 3, maxRows = 8, windowMs = 15_000, outTicks = false, compact = false } = {},
  ) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.push = push;
    this.minRows = push ? 1 : minRows;
    this.maxRows = push ? 1 : Math.max(minRows, maxRows);
    this.windowMs = windowMs;
    this.outTicks = outTicks;
    this.compact = compact;
    this.spans = []; // {lane: 'send'|'main', row, kind, start, end, outcome, openedAt, waitMs}
    this.ticks = []; // {t, dir}
    this.readColours();
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
    timelines.add(this);
  }

  /** A polling request: a bar in the first row with nothing in flight. */
  request(seq, { held = false } = {}) {
    return this.span('main', this.freeRow(), held ? 'held' : 'req');
  }

  /** A POST that sends a message (a bar in the "send" lane). */
  send() {
    return this.span('send', 0, 'send');
  }

  /** A WebSocket or event stream: one bar from handshake to close. */
  connection() {
    return this.span('main', 1, 'conn');
  }

  /** One frame in ('in') or out ('out') on the connection line. */
  tick(dir) {
    this.ticks.push({ t: performance.now(), dir });
    if (this.ticks.length > MAX_TICKS) this.prune(performance.now());
  }

  /** The lowest row (1, 2, …) in which no request is still waiting. */
  freeRow() {
    const busy = new Set();
    for (const s of this.spans) if (s.lane === 'main' && s.end === null) busy.add(s.row);
    let row = 1;
    while (busy.has(row)) row += 1;
    return row;
  }

  /** The most requests that were in flight at once among those still on
   * screen: the highest row in use. */
  rowsUsed(now = performance.now()) {
    const t0 = now - this.windowMs;
    let rows = 0;
    for (const s of this.spans) {
      if (s.lane === 'main' && (s.end === null || s.end >= t0)) rows = Math.max(rows, s.row);
    }
    return rows;
  }

  span(lane, row, kind) {
    const span = { lane, row, kind, start: performance.now(), end: null, outcome: 'pending', openedAt: null, waitMs: 0 };
    this.spans.push(span);
    if (this.spans.length > MAX_SPANS) this.prune(performance.now());
    return {
      opened: () => {
        span.openedAt = performance.now();
      },
      /** The browser held the request back this long before sending it. */
      waited: (ms) => {
        span.waitMs = ms;
      },
      end: (outcome) => {
        if (span.end === null) {
          span.end = performance.now();
          span.outcome = outcome;
        }
      },
    };
  }

  /** Forgets what scrolled out of view. */
  prune(now) {
    const t0 = now - this.windowMs;
    this.spans = this.spans.filter((s) => s.end === null || s.end >= t0);
    this.ticks = this.ticks.filter((k) => k.t >= t0);
  }

  clear() {
    this.spans = [];
    this.ticks = [];
  }

  readColours() {
    const css = getComputedStyle(this.canvas);
    const get = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    this.colours = {
      tone: get('--tone', '#6366f1'),
      toneSoft: get('--tone-soft', 'rgba(99,102,241,.25)'),
      danger: get('--danger', '#ef4444'),
      grid: get('--grid', 'rgba(127,127,127,.15)'),
      label: get('--text-3', '#666'),
      send: get('--send', '#64748b'),
      surface: get('--surface-2', '#fff'),
    };
    // Labels grow with the page's "large type" (the root font size).
    this.fontScale = parseFloat(getComputedStyle(document.documentElement).fontSize) / 15 || 1;
    this.stripes = this.makeStripes(this.colours.toneSoft, this.colours.tone, 0.55);
    // Errors are red with dark stripes, so they never pass for a transport colour.
    this.errorStripes = this.makeStripes(this.colours.danger, 'rgba(0,0,0,0.45)', 1);
  }

  makeStripes(background, stripe, alpha) {
    const tile = document.createElement('canvas');
    tile.width = tile.height = 8;
    const c = tile.getContext('2d');
    c.fillStyle = background;
    c.fillRect(0, 0, 8, 8);
    c.strokeStyle = stripe;
    c.globalAlpha = alpha;
    c.lineWidth = 2;
    c.beginPath();
    c.moveTo(-2, 10);
    c.lineTo(10, -2);
    c.moveTo(6, 10);
    c.lineTo(10, 6);
    c.moveTo(-2, 2);
    c.lineTo(2, -2);
    c.stroke();
    return this.ctx.createPattern(tile, 'repeat');
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const { width, height } = this.canvas.getBoundingClientRect();
    this.width = Math.max(1, width);
    this.height = Math.max(1, height);
    this.canvas.width = Math.round(this.width * ratio);
    this.canvas.height = Math.round(this.height * ratio);
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  }

  draw(now) {
    const { ctx, width, height, colours } = this;
    if (width < 10) return;
    this.prune(now);
    const t0 = now - this.windowMs;
    const fontPx = Math.round((this.compact ? 10 : 12) * this.fontScale);
    const labelW = this.compact ? 0 : Math.round(fontPx * 4);
    const axisH = this.compact ? 0 : Math.round(fontPx * 1.5);
    const plotW = width - labelW - 6;
    const x = (t) => labelW + ((t - t0) / this.windowMs) * plotW;

    // Lanes: the send lane on top, then the request rows (or the one
    // connection line). A WebSocket sends frames on its own line, so it
    // needs no send lane.
    const used = this.rowsUsed(now);
    const rows = Math.min(this.maxRows, Math.max(this.minRows, used));
    const sendH = this.outTicks ? 0 : this.compact ? 8 : 12;
    const top = 4;
    const bodyH = height - axisH - top - sendH - 6;
    const rowH = bodyH / rows;
    const rowY = (row) => top + sendH + 6 + (Math.min(row, rows) - 1) * rowH;

    ctx.clearRect(0, 0, width, height);
    ctx.font = `${fontPx}px system-ui, sans-serif`;
    ctx.textBaseline = 'middle';

    // Grid: a line every second, a label every five.
    const firstSecond = Math.ceil(t0 / 1000) * 1000;
    for (let t = firstSecond; t <= now; t += 1000) {
      const gx = Math.round(x(t)) + 0.5;
      const age = Math.round((now - t) / 1000);
      ctx.strokeStyle = colours.grid;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(gx, top);
      ctx.lineTo(gx, height - axisH);
      ctx.stroke();
      if (axisH && age % 5 === 0 && age > 0 && age < this.windowMs / 1000) {
        ctx.fillStyle = colours.label;
        ctx.textAlign = 'center';
        ctx.fillText(`−${age} s`, gx, height - axisH / 2);
      }
    }
    // Faint row separators, so empty rows read as "nothing in flight here".
    if (!this.push) {
      ctx.strokeStyle = colours.grid;
      for (let row = 2; row <= rows; row += 1) {
        const y = Math.round(rowY(row)) + 0.5;
        ctx.beginPath();
        ctx.moveTo(labelW, y);
        ctx.lineTo(width - 6, y);
        ctx.stroke();
      }
    }
    if (labelW) {
      ctx.fillStyle = colours.label;
      ctx.textAlign = 'left';
      if (sendH) ctx.fillText('POST', 2, top + sendH / 2);
      const name = this.push ? (this.outTicks ? 'socket' : 'stream') : 'GET';
      ctx.fillText(name, 2, rowY(1) + (this.push ? rowH / 2 : rowH / 2));
      if (!this.push) {
        // How many were in flight at once, in words: the point of the rows.
        ctx.textAlign = 'left';
        const caption = used <= 1 ? 'one at a time' : `up to ${used} at once`;
        if (axisH) ctx.fillText(caption, labelW, height - axisH / 2);
      }
    }

    for (const span of this.spans) {
      const x1 = Math.max(labelW, x(span.start));
      const x2 = Math.max(x1 + 2, x(span.end ?? now));
      if (span.lane === 'send') {
        this.drawBar(span, x1, x2, top, sendH, x);
      } else if (span.kind === 'conn') {
        this.drawConnection(span, x1, x2, rowY(1), rowH, x);
      } else {
        this.drawBar(span, x1, x2, rowY(span.row), rowH, x);
      }
    }

    // Ticks: frames in below the line, frames out above it.
    const lineY = rowY(1) + rowH / 2;
    const tickH = Math.min(rowH / 2 - 2, this.compact ? 10 : 18);
    for (const tick of this.ticks) {
      const tx = Math.round(x(tick.t)) + 0.5;
      if (tx < labelW) continue;
      ctx.strokeStyle = tick.dir === 'out' ? colours.send : colours.tone;
      ctx.lineWidth = 2;
      ctx.beginPath();
      if (tick.dir === 'out') {
        ctx.moveTo(tx, lineY - 2);
        ctx.lineTo(tx, lineY - tickH);
      } else {
        ctx.moveTo(tx, lineY + 2);
        ctx.lineTo(tx, lineY + tickH);
      }
      ctx.stroke();
    }
  }

  drawBar(span, x1, x2start, y, h, x) {
    const { ctx, colours } = this;
    const pad = span.kind === 'send' ? 1 : Math.min(3, h * 0.18);
    const by = y + pad;
    const bh = Math.max(3, h - pad * 2);
    let x2 = x2start;
    let xs = x1;
    if (span.waitMs >= STALL_MS) {
      // Stalled: the browser held the request back, waiting for a free
      // connection. A thin dashed lead-in, then the bar proper.
      xs = Math.min(x2 - 2, Math.max(x1, x(span.start + span.waitMs)));
      ctx.strokeStyle = colours.label;
      ctx.lineWidth = 2;
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(x1, by + bh / 2);
      ctx.lineTo(xs, by + bh / 2);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    x2 = Math.max(xs + 2, x2);
    const w = x2 - xs;
    const radius = Math.min(4, bh / 2, w / 2);
    ctx.beginPath();
    ctx.roundRect(xs, by, w, bh, radius);
    if (span.kind === 'send') {
      ctx.fillStyle = span.outcome === 'error' ? colours.danger : colours.send;
      ctx.fill();
      return;
    }
    switch (span.outcome) {
      case 'pending':
        // Still waiting for the answer. A held long poll is striped.
        ctx.fillStyle = span.kind === 'held' ? this.stripes : colours.toneSoft;
        ctx.fill();
        ctx.strokeStyle = colours.tone;
        ctx.lineWidth = 1;
        ctx.stroke();
        break;
      case 'data':
        ctx.fillStyle = colours.tone;
        ctx.fill();
        break;
      case 'empty':
        // An answer with nothing in it: just an outline.
        ctx.fillStyle = span.kind === 'held' ? this.stripes : colours.surface;
        ctx.fill();
        ctx.strokeStyle = colours.tone;
        ctx.lineWidth = 1.25;
        ctx.stroke();
        break;
      case 'error':
        ctx.fillStyle = this.errorStripes;
        ctx.fill();
        break;
      case 'stale':
        // An answer to a request sent before a failure: it came, but the
        // page ignores it (a retry is already scheduled). Dashed outline.
        ctx.setLineDash([3, 2]);
        ctx.strokeStyle = colours.tone;
        ctx.lineWidth = 1.25;
        ctx.stroke();
        ctx.setLineDash([]);
        break;
      default: // cancelled
        ctx.strokeStyle = colours.grid;
        ctx.lineWidth = 1;
        ctx.stroke();
    }
  }

  drawConnection(span, x1, x2, y, h, x) {
    const { ctx, colours } = this;
    const mid = y + h / 2;
    // Handshake: from the request to `open`, a short hollow segment.
    const opened = span.openedAt;
    const xOpen = opened ? Math.max(x1, x(opened)) : x2;
    ctx.lineCap = 'round';
    ctx.strokeStyle = colours.toneSoft;
    ctx.lineWidth = 6;
    ctx.beginPath();
    ctx.moveTo(x1, mid);
    ctx.lineTo(xOpen, mid);
    ctx.stroke();
    if (opened) {
      ctx.strokeStyle = colours.tone;
      ctx.lineWidth = 4;
      ctx.beginPath();
      ctx.moveTo(xOpen, mid);
      ctx.lineTo(x2, mid);
      ctx.stroke();
    }
    if (span.outcome === 'error') {
      // Where the connection died (or was refused): a small red cross.
      ctx.strokeStyle = colours.danger;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(x2 - 4, mid - 4);
      ctx.lineTo(x2 + 4, mid + 4);
      ctx.moveTo(x2 + 4, mid - 4);
      ctx.lineTo(x2 - 4, mid + 4);
      ctx.stroke();
    }
    ctx.lineCap = 'butt';
  }
}
