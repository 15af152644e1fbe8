// Shared by the document's browser tests (doc*.test.mjs): open an editor
// page and wait until it is editing, read an editor's text and badge, and
// talk to the document's API directly.

import { openPage } from './helpers.mjs';

/** The document's five transports, in the lesson's order. */
export const TRANSPORTS = ['interval', 'timeout', 'longpoll', 'websocket', 'sse'];

/**
 * Opens `path` (a /doc/… page) and resolves once every editor on it has
 * loaded the document and its transport is connected. `editors` is the
 * CSS selector of the editors to wait for.
 */
export async function openEditor(browser, url, { name, viewport, editors = '[data-editor="main"]' } = {}) {
  const page = await openPage(browser, url, { name, viewport });
  await waitEditing(page, editors);
  return page;
}

/** Waits until every editor matching `editors` has a running mode and a
 * connected transport (its state pill says ok). */
export function waitEditing(page, editors = '[data-editor]') {
  return page.waitForFunction(
    (sel) => {
      const roots = [...document.querySelectorAll(sel)].filter((r) => !r.closest('[hidden]'));
      if (!roots.length) return false;
      const pills = [...document.querySelectorAll('#conn-state, [data-role="state"]')];
      return (
        roots.every((r) => !r.querySelector('textarea').readOnly && r.querySelector('[data-role="doc-state"]').dataset.state !== 'loading') &&
        pills.every((p) => p.dataset.tone === 'ok')
      );
    },
    editors,
    { timeout: 20_000 },
  );
}

/** The textarea of an editor. */
export const textarea = (editor = '[data-editor="main"]') => `${editor} textarea`;

/** What an editor's textarea shows. */
export function editorText(page, editor = '[data-editor="main"]') {
  return page.inputValue(textarea(editor));
}

/** Waits until an editor's badge says `state` ('ok', 'diverged'). */
export function waitBadge(page, state, editor = '[data-editor="main"]', timeout = 20_000) {
  return page.waitForSelector(`${editor} [data-role="sync"][data-sync="${state}"]`, { timeout });
}

/** An editor's counter: 'doc-lost' or 'doc-fixed' (its raw number). */
export async function counter(page, name, editor = '[data-editor="main"]') {
  return Number(await page.getAttribute(`${editor} [data-stat="${name}"]`, 'data-value'));
}

/** GET /api/doc */
export async function serverDoc(base) {
  return (await fetch(`${base}/api/doc`)).json();
}

let writers = 0;
/** Replaces the whole document (PUT /api/doc/text) as a test's own client. */
export async function setDoc(base, text, author) {
  writers += 1;
  const res = await fetch(`${base}/api/doc/text`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client: `test-${process.pid}-${writers}`, seq: 1, text, ...(author ? { author } : {}) }),
  });
  if (res.status !== 201) throw new Error(`PUT /api/doc/text answered ${res.status}`);
  return res.json();
}

/** Waits until the editor shows exactly `text`. */
export function waitText(page, text, editor = '[data-editor="main"]', timeout = 20_000) {
  return page.waitForFunction(([sel, t]) => document.querySelector(sel)?.value === t, [textarea(editor), text], { timeout });
}

/** Waits until the editor's text contains `text`. */
export function waitContains(page, text, editor = '[data-editor="main"]', timeout = 20_000) {
  return page.waitForFunction(([sel, t]) => document.querySelector(sel)?.value.includes(t), [textarea(editor), text], { timeout });
}

/** Puts an editor's caret at a UTF-16 offset, as a click would, and lets
 * the page hear about it (the events a real click fires). */
export async function placeCaret(page, at, editor = '[data-editor="main"]') {
  await page.focus(textarea(editor));
  await page.evaluate(
    ([sel, n]) => {
      const ta = document.querySelector(sel);
      ta.setSelectionRange(n, n);
      ta.dispatchEvent(new MouseEvent('mouseup', { bubbles: true }));
    },
    [textarea(editor), at],
  );
}
