// The request timeline: a live swimlane drawn on a <canvas>.
//
// Time runs left to right (the last 15 seconds, "now" at the right edge).
// Each HTTP request is a bar from the moment it was sent to the moment its
// answer arrived; each WebSocket or SSE frame is a tick on its connection's
// line. Polls take turns over a few rows, like DevTools' waterfall, so the
// shape tells the story at a glance:
//
//   setInterval   a dense comb — new bars start on the clock and overlap
//   setTimeout    a staircase — each bar starts where the last one ended
//   long polling  long bars — each one held by the server until there is news
//   WebSocket/SSE one line, with a tick for every frame

/** Every timeline on the page redraws in one animation loop. */
const timelines = new Set();
/** Redraw at most this often (ms): smooth enough, and cheap on a laptop
 * that is also projecting. */
const FRAME_MS = 33;

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
   *   rows: how many rows the polls take turns on
   *   windowMs: how much time is visible
   *   outTicks: frames we send are ticks on the line (WebSocket) rather
   *             than POST bars in the "send" lane
   */
  constructor(canvas, { push = false, rows = 6, windowMs = 15_000, outTicks = false, compact = false } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.push = push;
    this.rows = push ? 1 : rows;
    this.windowMs = windowMs;
    this.outTicks = outTicks;
    this.compact = compact;
    this.spans = []; // {lane, start, end, kind, outcome}
    this.ticks = []; // {t, dir}
    this.readColours();
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.resize();
    timelines.add(this);
  }

  /** A polling request (a bar in one of the rows). */
  request(seq, { held = false } = {}) {
    return this.span(1 + ((seq - 1) % this.rows), held ? 'held' : 'req');
  }

  /** A POST that sends a message (a bar in the "send" lane). */
  send() {
    return this.span(0, 'send');
  }

  /** A WebSocket or event stream: one bar from handshake to close. */
  connection() {
    return this.span(1, 'conn');
  }

  /** One frame in ('in') or out ('out') on the connection line. */
  tick(dir) {
    this.ticks.push({ t: performance.now(), dir });
  }

  span(lane, kind) {
    const span = { lane, kind, start: performance.now(), end: null, outcome: 'pending', openedAt: null };
    this.spans.push(span);
    return {
      opened: () => {
        span.openedAt = performance.now();
      },
      end: (outcome) => {
        if (span.end === null) {
          span.end = performance.now();
          span.outcome = outcome;
        }
      },
    };
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
      label: get('--text-3', '#888'),
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
    const t0 = now - this.windowMs;
    const labelW = this.compact ? 0 : Math.round(46 * this.fontScale);
    const axisH = this.compact ? 0 : 16;
    const plotW = width - labelW - 6;
    const x = (t) => labelW + ((t - t0) / this.windowMs) * plotW;

    // Lanes: 0 = send; 1..rows = requests (or the one connection line).
    // (A WebSocket sends frames on its own line, so it needs no send lane.)
    const sendH = this.outTicks ? 0 : this.compact ? 8 : 12;
    const top = 4;
    const bodyH = height - axisH - top - sendH - 6;
    const rowH = bodyH / this.rows;
    const laneY = (lane) => (lane === 0 ? top : top + sendH + 6 + (lane - 1) * rowH);
    const laneH = (lane) => (lane === 0 ? sendH : rowH);

    ctx.clearRect(0, 0, width, height);
    ctx.font = `${Math.round((this.compact ? 9 : 11) * this.fontScale)}px system-ui, sans-serif`;
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
      if (axisH && age % 5 === 0 && age > 0) {
        ctx.fillStyle = colours.label;
        ctx.textAlign = 'center';
        ctx.fillText(`−${age} s`, gx, height - axisH / 2);
      }
    }
    if (labelW) {
      ctx.fillStyle = colours.label;
      ctx.textAlign = 'left';
      if (sendH) ctx.fillText('POST', 4, laneY(0) + sendH / 2);
      const name = this.push ? (this.outTicks ? 'socket' : 'stream') : 'GET';
      ctx.fillText(name, 4, laneY(1) + (this.push ? rowH / 2 : Math.min(rowH, 14) / 2 + 2));
    }

    // Forget what scrolled out of view.
    this.spans = this.spans.filter((s) => s.end === null || s.end >= t0);
    this.ticks = this.ticks.filter((k) => k.t >= t0);

    for (const span of this.spans) {
      const x1 = Math.max(labelW, x(span.start));
      const x2 = Math.max(x1 + 2, x(span.end ?? now));
      const y = laneY(span.lane);
      const h = laneH(span.lane);
      if (span.kind === 'conn') this.drawConnection(span, x1, x2, y, h, x);
      else this.drawBar(span, x1, x2, y, h);
    }

    // Ticks: frames in below the line, frames out above it.
    const lineY = laneY(1) + rowH / 2;
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

  drawBar(span, x1, x2, y, h) {
    const { ctx, colours } = this;
    const pad = span.kind === 'send' ? 1 : Math.min(3, h * 0.18);
    const by = y + pad;
    const bh = Math.max(3, h - pad * 2);
    const w = x2 - x1;
    const radius = Math.min(4, bh / 2, w / 2);
    ctx.beginPath();
    ctx.roundRect(x1, by, w, bh, radius);
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
      // Where the connection died: a small red cross.
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
