// Small formatting helpers shared by the pages.

const units = ['B', 'KB', 'MB', 'GB'];

/** 1536 → "1.5 KB" */
export function formatBytes(n) {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** 1234.5 → "1.23 s", 87.2 → "87 ms" */
export function formatMs(ms) {
  if (ms == null || Number.isNaN(ms)) return '–';
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 2)} s`;
  return `${Math.round(ms)} ms`;
}

/** Two durations with one unit: "87 / 240 ms", "1.20 / 3.05 s". */
export function formatMsPair(a, b) {
  if (a == null || b == null) return '–';
  if (Math.max(a, b) >= 1000) return `${(a / 1000).toFixed(2)} / ${(b / 1000).toFixed(2)} s`;
  return `${Math.round(a)} / ${Math.round(b)} ms`;
}

/** 12345 → "12,345" (in the reader's locale) */
export function formatCount(n) {
  return Number(n).toLocaleString();
}

/** Epoch ms → "14:03:07" */
export function formatClock(epochMs) {
  return new Date(epochMs).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Seconds → "2h 03m", "4m 12s", "9s" */
export function formatDuration(ms) {
  const s = Math.floor(ms / 1000);
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** The p-th percentile (0..1) of a list of numbers; null when empty. */
export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[index];
}
