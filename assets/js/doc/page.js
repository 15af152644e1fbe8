// What the document's pages share: the name field, the mode switch, and
// the page's life (hidden, shown, left) for all of its editors.

import { DEFAULT_MODE, MODES } from './modes.js';

const NAME_KEY = 'weebsockets.name'; // the same as the chat's: one name per browser

/** The "Your name" field, remembered like the chat's. Returns a getter. */
export function nameField(input) {
  try {
    input.value = localStorage.getItem(NAME_KEY) ?? '';
  } catch {
    // No storage: not remembered.
  }
  input.addEventListener('change', () => {
    try {
      localStorage.setItem(NAME_KEY, input.value.trim());
    } catch {
      // Not remembered.
    }
  });
  return () => input.value.trim();
}

/** The mode from the URL (?mode=save), so a teacher can hand out a link. */
export function modeFromUrl() {
  const mode = new URLSearchParams(location.search).get('mode');
  return MODES[mode] ? mode : DEFAULT_MODE;
}

/**
 * The three radio buttons. `onChange(mode)` is called when one is picked;
 * the sentence under them explains the mode, and the URL remembers it.
 */
export function modeSwitch({ form = document, explain, initial, onChange }) {
  const radios = [...form.querySelectorAll('input[name="doc-mode"]')];
  // Saving polls GET /api/doc on every page, even a push transport's: the
  // instruments that count connections count requests then.
  for (const el of document.querySelectorAll('[data-label-save]')) el.dataset.labelOps = el.textContent;
  const show = (mode) => {
    if (explain) explain.textContent = MODES[mode].explain;
    document.body.dataset.docMode = mode;
    for (const el of document.querySelectorAll('[data-label-save]')) {
      el.textContent = mode === 'save' ? el.dataset.labelSave : el.dataset.labelOps;
    }
  };
  for (const radio of radios) {
    radio.checked = radio.value === initial;
    radio.addEventListener('change', () => {
      if (!radio.checked) return;
      show(radio.value);
      const url = new URL(location.href);
      if (radio.value === DEFAULT_MODE) url.searchParams.delete('mode');
      else url.searchParams.set('mode', radio.value);
      history.replaceState(null, '', url);
      onChange(radio.value);
    });
  }
  show(initial);
}

/**
 * Hidden tab: every editor stops reading, and starts again from where it
 * was when shown (as the chat's pages do). Leaving: every editor says
 * goodbye (presence `left`), so its caret disappears from the others'.
 */
export function lifecycle(editors) {
  const all = () => editors().filter(Boolean);
  document.addEventListener('visibilitychange', () => {
    for (const e of all()) {
      if (document.hidden) e.pause();
      else e.resume();
    }
  });
  addEventListener('pagehide', () => {
    for (const e of all()) e.leave();
  });
  addEventListener('pageshow', (event) => {
    if (event.persisted && !document.hidden) for (const e of all()) e.resume();
  });
}

/** Says once, politely, when an editor's text drifts from the server's. */
export function announceDivergence(editor, announcer, label) {
  let last = 'pending';
  editor.onSync?.((state) => {
    if (state === 'diverged' && last !== 'diverged' && announcer) {
      announcer.textContent = `${label}: its text has diverged from the server’s`;
    }
    last = state;
  });
}
