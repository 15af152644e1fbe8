// A small live line chart on a <canvas>, for the dashboard: one line per
// transport, the newest sample on the right.

export class LineChart {
  constructor(canvas, { series, points = 120, format = String }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.series = series; // names; the colour comes from CSS --c-<name>
    this.points = points; // samples kept (one per second)
    this.format = format; // y-axis label formatter
    this.data = new Map(series.map((name) => [name, []]));
    this.readColours();
    new ResizeObserver(() => this.resize()).observe(canvas);
    document.addEventListener('weebsockets:appearance', () => {
      this.readColours();
      this.draw();
    });
    this.resize();
  }

  readColours() {
    const css = getComputedStyle(this.canvas);
    this.colours = Object.fromEntries(this.series.map((n) => [n, css.getPropertyValue(`--c-${n}`).trim() || '#888']));
    this.grid = css.getPropertyValue('--grid').trim() || 'rgba(127,127,127,.2)';
    this.label = css.getPropertyValue('--text-3').trim() || '#666';
    // Labels follow the page's type size ("Large type" for the projector).
    this.fontPx = Math.round(12 * (parseFloat(getComputedStyle(document.documentElement).fontSize) / 15 || 1));
  }

  resize() {
    const ratio = window.devicePixelRatio || 1;
    const { width, height } = this.canvas.getBoundingClientRect();
    this.width = width;
    this.height = height;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.draw();
  }

  /** Adds one sample per series: {interval: 3.2, …}. */
  push(values) {
    for (const name of this.series) {
      const line = this.data.get(name);
      line.push(values[name] ?? 0);
      if (line.length > this.points) line.shift();
    }
    this.draw();
  }

  clear() {
    for (const line of this.data.values()) line.length = 0;
    this.draw();
  }

  draw() {
    const { ctx, width, height } = this;
    if (!width) return;
    ctx.clearRect(0, 0, width, height);
    const font = this.fontPx;
    const left = Math.round(font * 4.8);
    const bottom = height - Math.round(font * 1.8);
    const top = Math.round(font * 0.8);
    const plotW = width - left - 8;
    let max = 0;
    for (const line of this.data.values()) for (const v of line) max = Math.max(max, v);
    max = niceCeiling(max);

    ctx.font = `${font}px system-ui, sans-serif`;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    for (let i = 0; i <= 4; i += 1) {
      const y = Math.round(bottom - ((bottom - top) * i) / 4) + 0.5;
      ctx.strokeStyle = this.grid;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(width - 8, y);
      ctx.stroke();
      ctx.fillStyle = this.label;
      ctx.fillText(this.format((max * i) / 4), left - 8, y);
    }
    ctx.textAlign = 'center';
    for (const fraction of [1, 0.75, 0.5, 0.25]) {
      const secondsAgo = Math.round(this.points * fraction);
      const x = left + plotW * (1 - fraction);
      ctx.fillText(`−${secondsAgo} s`, x, height - font * 0.7);
    }
    ctx.textAlign = 'right';
    ctx.fillText('now', width - 8, height - font * 0.7);

    const step = plotW / (this.points - 1);
    for (const name of this.series) {
      const line = this.data.get(name);
      if (line.length < 2) continue;
      const x0 = left + plotW - step * (line.length - 1);
      const y = (v) => bottom - (bottom - top) * (v / max);
      // A soft area under the line, then the line itself.
      ctx.beginPath();
      ctx.moveTo(x0, bottom);
      line.forEach((v, i) => ctx.lineTo(x0 + step * i, y(v)));
      ctx.lineTo(x0 + step * (line.length - 1), bottom);
      ctx.closePath();
      ctx.globalAlpha = 0.06;
      ctx.fillStyle = this.colours[name];
      ctx.fill();
      ctx.globalAlpha = 1;
      ctx.beginPath();
      line.forEach((v, i) => (i ? ctx.lineTo(x0 + step * i, y(v)) : ctx.moveTo(x0, y(v))));
      ctx.strokeStyle = this.colours[name];
      ctx.lineWidth = 2;
      ctx.lineJoin = 'round';
      ctx.stroke();
    }
  }
}

/** 7.3 → 10, 42 → 50, 0 → 1: a round top for the y axis. */
function niceCeiling(v) {
  if (v <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * magnitude) return m * magnitude;
  return 10 * magnitude;
}
