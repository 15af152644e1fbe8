// A textarea speaks UTF-16; the document speaks code points.
//
// textarea.value, .selectionStart and .selectionEnd count UTF-16 code
// units, so "🎉" is 2 there and 1 in the document (and in every operation).
// The two helpers below are the ONLY place that converts between the two,
// and neither ever lands inside a surrogate pair: an offset that points
// between the two halves of "🎉" is snapped to before the pair.
//
// diff() turns "the textarea's value changed from A to B" into an
// operation, the way an editor reports an edit: one region replaced.

import { OpBuilder } from './ot.js';

const isHigh = (unit) => unit >= 0xd800 && unit <= 0xdbff;
const isLow = (unit) => unit >= 0xdc00 && unit <= 0xdfff;

/** True when UTF-16 offset `at` falls between the halves of a surrogate pair. */
function insidePair(text, at) {
  return at > 0 && at < text.length && isHigh(text.charCodeAt(at - 1)) && isLow(text.charCodeAt(at));
}

/** UTF-16 offset (a textarea's) → code point offset (the document's). */
export function codePointOffset(text, utf16) {
  utf16 = Math.max(0, Math.min(utf16, text.length));
  if (insidePair(text, utf16)) utf16 -= 1; // snap to before the pair
  let points = 0;
  for (let i = 0; i < utf16; i++) {
    if (!(isLow(text.charCodeAt(i)) && i > 0 && isHigh(text.charCodeAt(i - 1)))) points++;
  }
  return points;
}

/** Code point offset (the document's) → UTF-16 offset (a textarea's). */
export function utf16Offset(text, points) {
  let i = 0;
  for (let n = 0; n < points && i < text.length; n++) {
    i += isHigh(text.charCodeAt(i)) && isLow(text.charCodeAt(i + 1)) ? 2 : 1;
  }
  return i;
}

/**
 * The edit that turns oldText into newText, as an operation over code
 * points: keep the common start and end, replace what lies between.
 *
 * `caret` (optional) is the textarea's selectionEnd after the edit, in
 * UTF-16 units. It settles ambiguous cases: typing "a" into "aa" could
 * have been at 0, 1 or 2; the caret after it says which. With a caret the
 * common end may not reach before it (the text just typed ends there).
 */
export function diff(oldText, newText, caret) {
  const shorter = Math.min(oldText.length, newText.length);
  let prefix = 0;
  let suffix = 0;
  const matchPrefix = (limit) => {
    while (prefix < limit && oldText.charCodeAt(prefix) === newText.charCodeAt(prefix)) prefix++;
  };
  const matchSuffix = (limit) => {
    while (
      suffix < limit &&
      oldText.charCodeAt(oldText.length - 1 - suffix) === newText.charCodeAt(newText.length - 1 - suffix)
    ) {
      suffix++;
    }
  };
  if (caret === undefined) {
    matchPrefix(shorter);
    matchSuffix(shorter - prefix);
  } else {
    matchSuffix(Math.min(shorter, Math.max(0, newText.length - caret)));
    matchPrefix(shorter - suffix);
  }
  // Never split a pair: "🎉" and "🎊" share their high half, so a common
  // start may end inside a pair (and a common end start inside one).
  if (prefix > 0 && isHigh(oldText.charCodeAt(prefix - 1))) prefix--;
  if (suffix > 0 && isLow(oldText.charCodeAt(oldText.length - suffix))) suffix--;

  const deleted = oldText.slice(prefix, oldText.length - suffix);
  const inserted = newText.slice(prefix, newText.length - suffix);
  return new OpBuilder()
    .retain(codePointOffset(oldText, prefix))
    .delete(codePointOffset(deleted, deleted.length))
    .insert(inserted)
    .retain(codePointOffset(oldText.slice(oldText.length - suffix), suffix))
    .done();
}
