//! # Operational transformation: the shared document's edits
//!
//! The chat is easy to share because a message never changes anything that
//! came before it. A document is harder: Ada deletes a word while Bob types
//! inside it, both against the text *they* saw. This module is the algebra
//! that makes both edits survive (operational transformation, the technique
//! behind Google Docs), in the same form as `assets/js/doc/ot.js`, which
//! implements exactly the same rules for the browser (tested against each
//! other in `tests/ot_cross_language.rs`).
//!
//! ## The operation
//!
//! An [`Operation`] walks over the *whole* document from left to right, one
//! [`Component`] at a time:
//!
//! | component | JSON | meaning |
//! | --- | --- | --- |
//! | `Retain(n)` | `5` | keep the next `n` characters |
//! | `Insert(s)` | `"hi"` | insert `s` here |
//! | `Delete(n)` | `-3` | delete the next `n` characters |
//!
//! Characters are Unicode scalar values (code points), never UTF-16 units or
//! bytes: `"👩‍💻"` is three characters. On `"hello"`, `[5, " world"]`
//! appends and `["H", -1, 4]` capitalises.
//!
//! **The invariant everything here relies on:** an operation's
//! [`base_len`](Operation::base_len) (its retains plus its deletes) equals
//! the length of the document it applies to; its
//! [`target_len`](Operation::target_len) (retains plus inserted characters)
//! is the length of the result. Every function below checks it and answers
//! [`OpError`] instead of guessing.
//!
//! ## Normal form
//!
//! The builder methods ([`retain`](Operation::retain),
//! [`insert`](Operation::insert), [`delete`](Operation::delete)) keep every
//! operation in one normal form, the one ot.js builds and the contract
//! stores: adjacent components of one kind are merged, and where an insert
//! and a delete meet at one position the insert comes first (`[-1, "H", 4]`
//! becomes `["H", -1, 4]`). The trailing retain is kept, so the lengths add
//! up. `[]` is the no-op on the empty document.
//!
//! ## The three operations on operations
//!
//! * [`apply`](Operation::apply) — run it on a text (a [`ropey::Rope`] on the
//!   server, in O(components · log n): an edit never costs O(document)).
//! * [`compose`](Operation::compose) — `a` then `b` as one operation (the
//!   client's buffer of edits typed while one is in flight).
//! * [`transform`] — two edits made concurrently on the same text, each
//!   rewritten to apply after the other, so that both orders end in the same
//!   text: `apply(apply(s, a), b') == apply(apply(s, b), a')`.
//!
//! ## Who goes first: the tie rule
//!
//! When `a` and `b` insert at the same position, one insert must end up
//! first. **`transform(a, b)` puts its first argument's insert first.** The
//! contract says "of two inserts at the same position, the one stored first
//! stays first", so both sides always pass the stored operation first:
//!
//! * the server, receiving `incoming` made at an old revision, runs
//!   `transform(stored, incoming)` for every operation stored since, and keeps
//!   the *second* result (the incoming op, rewritten);
//! * the client, receiving a stored `server_op` while its own edits are
//!   unacknowledged, runs `transform(server_op, own_pending)`: the first
//!   result is applied to its text, the second replaces its pending edits.
//!
//! Both sides agree because the stored op is always the first argument.
//! (The ot.js *server* passes the incoming operation first; we do not.)
//!
//! ## Carets
//!
//! [`Operation::transform_index`] moves a caret through an edit instead of
//! recomputing it; [`Bias`] says what happens when text is inserted exactly
//! at the caret (see there for the rule).
//!
//! [`client`] is the three-state editor client (a Rust port of
//! `assets/js/doc/client.js`), for tests and load generators: the server
//! itself never runs it.

use std::fmt;

use ropey::Rope;
use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_json::Value;

/// The largest integer JavaScript holds exactly (2^53 − 1). Counts beyond it
/// are refused, so every operation the server accepts means the same thing
/// in a browser.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// One step of an [`Operation`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Component {
    /// Keep the next `n` characters (`n > 0`).
    Retain(usize),
    /// Insert this (non-empty) text here.
    Insert(String),
    /// Delete the next `n` characters (`n > 0`).
    Delete(usize),
}

/// An edit of the whole document, in normal form (see the module docs).
///
/// Build one with [`Operation::new`] and the builder methods, parse one from
/// the wire with [`Operation::from_json`], or make one from an editor's
/// patch with [`Operation::from_patch`] / [`Operation::replace_all`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Operation {
    /// The steps, in normal form: never two adjacent of one kind, never a
    /// delete directly before an insert, no zero counts, no empty inserts.
    components: Vec<Component>,
    /// Characters the operation reads: retains + deletes. Kept up to date by
    /// the builder so that checking the invariant is O(1).
    base_len: usize,
    /// Characters the result has: retains + inserted characters.
    target_len: usize,
}

/// What happens to a caret when text is inserted exactly at it.
///
/// **The rule:** a caret moves past text inserted exactly at it only if the
/// caret's owner typed that text ([`Bias::After`]); text that *someone else*
/// inserts at my caret appears after it and my caret stays where it was
/// ([`Bias::Before`]). So:
///
/// * my own caret, when a remote operation arrives: `Before` — I keep typing
///   where I was, and the other person's words do not carry my caret away;
/// * somebody's caret drawn by presence, moved by an operation of another
///   author: `Before`; moved by that person's own operation: `After` (they
///   typed it, so they are after it).
///
/// (Inserts *before* the caret always push it, deletes around it always pull
/// it back; only the exact tie needs a rule.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bias {
    /// Stay before text inserted exactly here (someone else typed it).
    Before,
    /// Move past text inserted exactly here (the caret's owner typed it).
    After,
}

/// A selection: where it started (`anchor`) and where the caret is (`head`),
/// in characters. `anchor == head` is a plain caret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    /// The fixed end.
    pub anchor: usize,
    /// The moving end, where the caret blinks.
    pub head: usize,
}

/// Why an operation was refused. Each variant maps to one stable `code`
/// ([`OpError::code`]); the `Display` text is a sentence for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// The JSON is not an array.
    #[error("an operation is a JSON array of components, not {found}")]
    NotAnArray {
        /// What it was instead ("an object", "a string", …).
        found: &'static str,
    },
    /// A component is neither a whole number nor a string.
    #[error(
        "component {index} is {found}; a component is a positive whole number (retain), a negative whole number (delete) or a non-empty string (insert)"
    )]
    WrongType {
        /// Position in the array, from 0.
        index: usize,
        /// What it was instead.
        found: &'static str,
    },
    /// A number with a fraction or an exponent (`1.5`, `1e3`, `-0`).
    #[error("component {index} is {number}, not a whole number written as one")]
    NotAnInteger {
        /// Position in the array, from 0.
        index: usize,
        /// The number as parsed.
        number: String,
    },
    /// `0`: retain and delete counts must not be zero.
    #[error("component {index} is 0; retain and delete counts are never zero")]
    Zero {
        /// Position in the array, from 0.
        index: usize,
    },
    /// A count beyond 2^53 − 1, or one that takes the operation's length
    /// past it (so that its merged normal form would be).
    #[error("component {index} takes the operation past 2^53 - 1 characters")]
    TooLarge {
        /// Position in the array, from 0.
        index: usize,
    },
    /// `""`: an insert inserts something.
    #[error("component {index} is an empty string; an insert inserts at least one character")]
    EmptyInsert {
        /// Position in the array, from 0.
        index: usize,
    },
    /// Inserted text with a control character other than `\n` and `\t`.
    #[error(
        "the inserted text contains a control character (U+{code_point:04X}); only newline and tab are allowed, and line ends are \\n alone"
    )]
    ControlCharacter {
        /// The offending character.
        code_point: u32,
    },
    /// Applying to a document of another length than the operation covers.
    #[error("the operation covers {op_len} characters but the document has {doc_len}")]
    DoesNotFit {
        /// The operation's base length.
        op_len: usize,
        /// The document's length.
        doc_len: usize,
    },
    /// `compose(a, b)` where `b` does not start from `a`'s result.
    #[error(
        "cannot compose: the first operation leaves {first_target} characters but the second covers {second_base}"
    )]
    ComposeMismatch {
        /// `a.target_len()`.
        first_target: usize,
        /// `b.base_len()`.
        second_base: usize,
    },
    /// `transform(a, b)` where `a` and `b` start from different documents.
    #[error(
        "cannot transform: the operations cover {first_base} and {second_base} characters, but concurrent operations start from the same document"
    )]
    TransformMismatch {
        /// `a.base_len()`.
        first_base: usize,
        /// `b.base_len()`.
        second_base: usize,
    },
    /// A patch that reaches past the end of the document.
    #[error("the patch deletes {delete} characters at {pos} in a document of {doc_len}")]
    PatchOutOfRange {
        /// Where the patch starts.
        pos: usize,
        /// How many characters it deletes.
        delete: usize,
        /// The document's length.
        doc_len: usize,
    },
}

impl OpError {
    /// The stable snake_case code sent to clients (`422` over HTTP).
    pub fn code(&self) -> &'static str {
        match self {
            OpError::ControlCharacter { .. } => "control_character",
            _ => "bad_operation",
        }
    }
}

/// Length in characters (Unicode scalar values) — what every count in an
/// operation means. `str::len` would count UTF-8 bytes.
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Refuses Unicode category Cc (C0, DEL, C1) except `\n` and `\t`. Unlike a
/// chat message, a document refuses `\r` too: one document, one kind of line
/// end. Rust's `char::is_control` is exactly "general category Cc".
pub fn check_text(s: &str) -> Result<(), OpError> {
    match s
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        Some(c) => Err(OpError::ControlCharacter {
            code_point: c as u32,
        }),
        None => Ok(()),
    }
}

/// Splits `s` after `n` characters (`n` ≤ its length).
fn split_at_char(s: &str, n: usize) -> (&str, &str) {
    match s.char_indices().nth(n) {
        Some((byte, _)) => s.split_at(byte),
        None => (s, ""),
    }
}

impl Operation {
    /// The empty operation: the no-op on the empty document, and the start
    /// of every builder chain.
    pub fn new() -> Operation {
        Operation::default()
    }

    /// The steps, in normal form.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// Characters the operation applies to (retains + deletes).
    pub fn base_len(&self) -> usize {
        self.base_len
    }

    /// Characters of the result (retains + inserted characters).
    pub fn target_len(&self) -> usize {
        self.target_len
    }

    /// True when applying it changes nothing (only retains, or nothing).
    pub fn is_noop(&self) -> bool {
        self.components
            .iter()
            .all(|c| matches!(c, Component::Retain(_)))
    }

    /// Appends "keep the next `n` characters" (0 does nothing).
    pub fn retain(&mut self, n: usize) -> &mut Operation {
        if n == 0 {
            return self;
        }
        self.base_len += n;
        self.target_len += n;
        if let Some(Component::Retain(last)) = self.components.last_mut() {
            *last += n;
        } else {
            self.components.push(Component::Retain(n));
        }
        self
    }

    /// Appends "insert `text` here" ("" does nothing). The text is not
    /// checked for control characters: parse untrusted input with
    /// [`Operation::from_json`], which is.
    pub fn insert(&mut self, text: &str) -> &mut Operation {
        if text.is_empty() {
            return self;
        }
        self.target_len += char_len(text);
        let n = self.components.len();
        match self.components.as_mut_slice() {
            // Insert after insert: one longer insert.
            [.., Component::Insert(last)] => last.push_str(text),
            // Insert after insert-then-delete: join the insert, so that the
            // delete stays last ("insert first where they meet").
            [.., Component::Insert(before), Component::Delete(_)] => before.push_str(text),
            // Insert right after a delete: the same edit is written insert
            // first. Deleting then inserting at one position, or inserting
            // then deleting what follows, leave the same text.
            [.., Component::Delete(_)] => self
                .components
                .insert(n - 1, Component::Insert(text.to_owned())),
            _ => self.components.push(Component::Insert(text.to_owned())),
        }
        self
    }

    /// Appends "delete the next `n` characters" (0 does nothing).
    pub fn delete(&mut self, n: usize) -> &mut Operation {
        if n == 0 {
            return self;
        }
        self.base_len += n;
        if let Some(Component::Delete(last)) = self.components.last_mut() {
            *last += n;
        } else {
            self.components.push(Component::Delete(n));
        }
        self
    }

    /// The edit a text editor reports — at `pos`, delete `delete` characters
    /// and insert `insert` — as an operation over a document of `doc_len`
    /// characters. This is the form of the recorded editing traces.
    pub fn from_patch(
        doc_len: usize,
        pos: usize,
        delete: usize,
        insert: &str,
    ) -> Result<Operation, OpError> {
        let end = pos
            .checked_add(delete)
            .filter(|&end| end <= doc_len)
            .ok_or(OpError::PatchOutOfRange {
                pos,
                delete,
                doc_len,
            })?;
        check_text(insert)?;
        let mut op = Operation::new();
        op.retain(pos)
            .delete(delete)
            .insert(insert)
            .retain(doc_len - end);
        Ok(op)
    }

    /// Deletes all `old_len` characters and inserts `text`: what
    /// `PUT /api/doc/text` stores (the naive "save the textarea", which
    /// loses whatever others typed meanwhile).
    pub fn replace_all(old_len: usize, text: &str) -> Result<Operation, OpError> {
        Operation::from_patch(old_len, 0, old_len, text)
    }

    /// Parses an operation from its JSON form, refusing anything the
    /// contract does not allow, and returns it in normal form.
    pub fn from_json(value: &Value) -> Result<Operation, OpError> {
        let Value::Array(items) = value else {
            return Err(OpError::NotAnArray {
                found: json_kind(value),
            });
        };
        let mut op = Operation::new();
        for (index, item) in items.iter().enumerate() {
            match item {
                Value::Number(number) => {
                    // serde_json keeps `1.5`, `1e3`, `1.0` and `-0` as floats;
                    // only a plain integer literal comes back as an i64.
                    let Some(n) = number.as_i64() else {
                        return Err(if number.is_f64() {
                            OpError::NotAnInteger {
                                index,
                                number: number.to_string(),
                            }
                        } else {
                            // A u64 above i64::MAX: far beyond 2^53.
                            OpError::TooLarge { index }
                        });
                    };
                    if n == 0 {
                        return Err(OpError::Zero { index });
                    }
                    if n.unsigned_abs() > MAX_SAFE_INTEGER {
                        return Err(OpError::TooLarge { index });
                    }
                    // Below 2^53, so it fits a usize on every platform we
                    // build for (64-bit); `try_from` keeps 32-bit honest.
                    let count = usize::try_from(n.unsigned_abs())
                        .map_err(|_| OpError::TooLarge { index })?;
                    if n > 0 {
                        op.retain(count);
                    } else {
                        op.delete(count);
                    }
                }
                Value::String(text) => {
                    if text.is_empty() {
                        return Err(OpError::EmptyInsert { index });
                    }
                    check_text(text)?;
                    op.insert(text);
                }
                other => {
                    return Err(OpError::WrongType {
                        index,
                        found: json_kind(other),
                    });
                }
            }
            // Merged with its neighbours a count could still pass 2^53 − 1
            // ([2^53 − 1, 1]): bound both lengths, which bound every count.
            if op.base_len as u64 > MAX_SAFE_INTEGER || op.target_len as u64 > MAX_SAFE_INTEGER {
                return Err(OpError::TooLarge { index });
            }
        }
        Ok(op)
    }

    /// Parses the JSON text of an operation (`"[5, \" world\"]"`). Text that
    /// is not JSON at all is a `bad_operation` too here; the HTTP layer
    /// answers `400` for a body that is not JSON before it gets this far.
    pub fn from_json_str(json: &str) -> Result<Operation, OpError> {
        let value: Value = serde_json::from_str(json).map_err(|_| OpError::NotAnArray {
            found: "text that is not JSON",
        })?;
        Operation::from_json(&value)
    }

    /// The JSON form, in normal form: `[12, "hi", -3, 40]`.
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.components
                .iter()
                .map(|c| match c {
                    Component::Retain(n) => Value::from(*n as u64),
                    Component::Insert(s) => Value::from(s.as_str()),
                    Component::Delete(n) => Value::from(-(*n as i64)),
                })
                .collect(),
        )
    }

    /// Applies the operation to a rope, in place, in O(components · log n):
    /// a retain is only a jump of the position, never a copy.
    pub fn apply_to_rope(&self, rope: &mut Rope) -> Result<(), OpError> {
        self.fits(rope.len_chars())?;
        let mut at = 0;
        for component in &self.components {
            match component {
                Component::Retain(n) => at += n,
                Component::Insert(s) => {
                    rope.insert(at, s);
                    at += char_len(s);
                }
                Component::Delete(n) => rope.remove(at..at + n),
            }
        }
        Ok(())
    }

    /// Applies the operation to a string and returns the new one (O(text);
    /// for tests and small documents; the server uses a rope).
    pub fn apply(&self, text: &str) -> Result<String, OpError> {
        self.fits(char_len(text))?;
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        for component in &self.components {
            match component {
                Component::Retain(n) => {
                    let (kept, after) = split_at_char(rest, *n);
                    out.push_str(kept);
                    rest = after;
                }
                Component::Insert(s) => out.push_str(s),
                Component::Delete(n) => rest = split_at_char(rest, *n).1,
            }
        }
        Ok(out)
    }

    /// Checks the invariant: this operation covers exactly `doc_len`.
    fn fits(&self, doc_len: usize) -> Result<(), OpError> {
        if self.base_len == doc_len {
            Ok(())
        } else {
            Err(OpError::DoesNotFit {
                op_len: self.base_len,
                doc_len,
            })
        }
    }

    /// `self` then `next`, as one operation:
    /// `apply(apply(s, a), b) == apply(s, a.compose(b))`.
    ///
    /// Walks both at once. `self`'s deletes happen first (`next` never saw
    /// those characters) and `next`'s inserts are new text; everything else
    /// pairs a character of `self`'s result with what `next` does to it.
    pub fn compose(&self, next: &Operation) -> Result<Operation, OpError> {
        if self.target_len != next.base_len {
            return Err(OpError::ComposeMismatch {
                first_target: self.target_len,
                second_base: next.base_len,
            });
        }
        let mut out = Operation::new();
        let mut a = Steps::new(self);
        let mut b = Steps::new(next);
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(Step::Delete(n)), _) => {
                    out.delete(n);
                    a.advance(n);
                }
                (_, Some(Step::Insert(s))) => {
                    out.insert(s);
                    b.advance(char_len(s));
                }
                (Some(Step::Retain(x)), Some(Step::Retain(y))) => {
                    let n = x.min(y);
                    out.retain(n);
                    a.advance(n);
                    b.advance(n);
                }
                (Some(Step::Retain(x)), Some(Step::Delete(y))) => {
                    let n = x.min(y);
                    out.delete(n);
                    a.advance(n);
                    b.advance(n);
                }
                (Some(Step::Insert(s)), Some(Step::Retain(y))) => {
                    let (kept, _) = split_at_char(s, y);
                    let n = char_len(kept);
                    out.insert(kept);
                    a.advance(n);
                    b.advance(n);
                }
                // `next` deletes text that `self` inserted: it never existed.
                (Some(Step::Insert(s)), Some(Step::Delete(y))) => {
                    let n = char_len(s).min(y);
                    a.advance(n);
                    b.advance(n);
                }
                // The lengths were checked, so both run out together.
                (None, Some(_)) | (Some(_), None) => {
                    unreachable!("compose: lengths checked before the walk")
                }
            }
        }
        Ok(out)
    }

    /// Moves a caret (a character index in the document this operation
    /// applies to) to where the same spot is afterwards. `bias` decides an
    /// insert exactly at the caret (see [`Bias`] for the rule). Indexes past
    /// the end are treated as the end.
    pub fn transform_index(&self, index: usize, bias: Bias) -> usize {
        let index = index.min(self.base_len);
        let mut pos = 0; // where we are in the old document
        let mut moved = index;
        for component in &self.components {
            if pos > index {
                break;
            }
            match component {
                Component::Retain(n) => pos += n,
                Component::Insert(s) => {
                    if pos < index || bias == Bias::After {
                        moved += char_len(s);
                    }
                }
                Component::Delete(n) => {
                    // Characters deleted before the caret pull it back.
                    let end = pos + n;
                    moved -= index.min(end).saturating_sub(pos);
                    pos = end;
                }
            }
        }
        moved
    }

    /// Moves a selection through this operation. A caret (empty selection)
    /// moves like [`transform_index`](Operation::transform_index) with
    /// `bias`. A real selection, when the operation is someone else's
    /// ([`Bias::Before`]), keeps text inserted at either of its edges
    /// *outside* it: its left edge moves past such text, its right edge stays
    /// before it. The owner's own operation ([`Bias::After`]) moves both
    /// edges past text inserted at them.
    pub fn transform_selection(&self, selection: Selection, bias: Bias) -> Selection {
        let Selection { anchor, head } = selection;
        if anchor == head || bias == Bias::After {
            return Selection {
                anchor: self.transform_index(anchor, bias),
                head: self.transform_index(head, bias),
            };
        }
        let (left, right) = (anchor.min(head), anchor.max(head));
        let new_left = self.transform_index(left, Bias::After);
        // A selection whose contents were all deleted collapses; never let
        // its edges cross.
        let new_right = self.transform_index(right, Bias::Before).max(new_left);
        if anchor < head {
            Selection {
                anchor: new_left,
                head: new_right,
            }
        } else {
            Selection {
                anchor: new_right,
                head: new_left,
            }
        }
    }
}

/// Rewrites two concurrent operations — both made on the same document —
/// so that each applies after the other:
///
/// ```text
/// let (a2, b2) = transform(&a, &b)?;
/// apply(apply(s, a), b2) == apply(apply(s, b), a2)
/// ```
///
/// **Tie rule:** when both insert at the same position, `a`'s text comes
/// first. Pass the operation that was stored first as `a` (see the module
/// docs: the server calls `transform(stored, incoming)`, the client
/// `transform(server_op, own_pending)`).
///
/// A character both delete is deleted once.
pub fn transform(a: &Operation, b: &Operation) -> Result<(Operation, Operation), OpError> {
    if a.base_len != b.base_len {
        return Err(OpError::TransformMismatch {
            first_base: a.base_len,
            second_base: b.base_len,
        });
    }
    let mut a2 = Operation::new(); // a, to apply after b
    let mut b2 = Operation::new(); // b, to apply after a
    let mut sa = Steps::new(a);
    let mut sb = Steps::new(b);
    loop {
        match (sa.peek(), sb.peek()) {
            (None, None) => break,
            // THE TIE RULE: `a`'s insert is looked at first, so when both
            // insert here, a's text lands first and b2 steps over it.
            (Some(Step::Insert(s)), _) => {
                a2.insert(s);
                b2.retain(char_len(s));
                sa.advance(char_len(s));
            }
            (_, Some(Step::Insert(s))) => {
                a2.retain(char_len(s));
                b2.insert(s);
                sb.advance(char_len(s));
            }
            (Some(Step::Retain(x)), Some(Step::Retain(y))) => {
                let n = x.min(y);
                a2.retain(n);
                b2.retain(n);
                sa.advance(n);
                sb.advance(n);
            }
            // Both delete the same characters: gone once, nothing to redo.
            (Some(Step::Delete(x)), Some(Step::Delete(y))) => {
                let n = x.min(y);
                sa.advance(n);
                sb.advance(n);
            }
            // a deletes what b keeps: after b, a still deletes it.
            (Some(Step::Delete(x)), Some(Step::Retain(y))) => {
                let n = x.min(y);
                a2.delete(n);
                sa.advance(n);
                sb.advance(n);
            }
            (Some(Step::Retain(x)), Some(Step::Delete(y))) => {
                let n = x.min(y);
                b2.delete(n);
                sa.advance(n);
                sb.advance(n);
            }
            (None, Some(_)) | (Some(_), None) => {
                unreachable!("transform: lengths checked before the walk")
            }
        }
    }
    Ok((a2, b2))
}

impl Serialize for Operation {
    /// The JSON form, as [`Operation::to_json`].
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.components.len()))?;
        for component in &self.components {
            match component {
                Component::Retain(n) => seq.serialize_element(&(*n as u64))?,
                Component::Insert(s) => seq.serialize_element(s)?,
                Component::Delete(n) => seq.serialize_element(&-(*n as i64))?,
            }
        }
        seq.end()
    }
}

impl fmt::Display for Operation {
    /// The JSON form, for messages and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// "an object", "a string", … for error sentences.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What is left of the current component while walking an operation.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    Retain(usize),
    Insert(&'a str),
    Delete(usize),
}

/// Walks an operation's components, letting compose and transform take
/// them a few characters at a time (a `Retain(5)` met by a `Delete(2)` is
/// consumed as 2, then 3).
struct Steps<'a> {
    components: std::slice::Iter<'a, Component>,
    /// The rest of the current component, if any.
    head: Option<Step<'a>>,
}

impl<'a> Steps<'a> {
    fn new(op: &'a Operation) -> Steps<'a> {
        let mut components = op.components.iter();
        let head = components.next().map(Step::from);
        Steps { components, head }
    }

    fn peek(&self) -> Option<Step<'a>> {
        self.head
    }

    /// Consumes `n` characters of the current component (never more than
    /// it has: callers take the minimum of both sides).
    fn advance(&mut self, n: usize) {
        self.head = match self.head {
            Some(Step::Retain(m)) if m > n => Some(Step::Retain(m - n)),
            Some(Step::Delete(m)) if m > n => Some(Step::Delete(m - n)),
            Some(Step::Insert(s)) if char_len(s) > n => Some(Step::Insert(split_at_char(s, n).1)),
            _ => self.components.next().map(Step::from),
        };
    }
}

impl<'a> From<&'a Component> for Step<'a> {
    fn from(component: &'a Component) -> Step<'a> {
        match component {
            Component::Retain(n) => Step::Retain(*n),
            Component::Insert(s) => Step::Insert(s),
            Component::Delete(n) => Step::Delete(*n),
        }
    }
}

pub mod client {
    //! The editor's side of the protocol: the classic three-state OT client
    //! (Jupiter, as in ot.js and Google Docs), a Rust port of
    //! `assets/js/doc/client.js` for tests and load generators.
    //!
    //! The client keeps at most **one operation in flight**. While it waits
    //! for that one to be stored, what the user types is composed into a
    //! buffer — never into the operation already sent (ShareDB once lost
    //! edits that way). Three states, each answering the same three events:
    //!
    //! | state | the user edits | a stored op of someone else arrives | our own op arrives back |
    //! | --- | --- | --- | --- |
    //! | `Synchronized` | send it → `AwaitingConfirm` | apply it | (cannot happen) |
    //! | `AwaitingConfirm` | buffer it → `AwaitingWithBuffer` | transform it past our op in flight, apply | → `Synchronized` |
    //! | `AwaitingWithBuffer` | compose into the buffer | transform it past in-flight and buffer, apply | send the buffer → `AwaitingConfirm` |
    //!
    //! **The ordered log is the truth.** The client applies stored operations
    //! strictly in `rev` order as its transport delivers them, and recognises
    //! its *own* operation in that stream by `(client, seq)`: that is its
    //! acknowledgement. An answer to the `POST` (or a WebSocket `ack` frame)
    //! only tells it the rev early; it changes nothing. So the five
    //! transports behave the same.

    use ropey::Rope;

    use super::{OpError, Operation, transform};

    /// An operation on its way to the server: the body of
    /// `POST /api/doc/ops` (or a WebSocket `op` frame).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Submission {
        /// The editor's id (one per browser tab).
        pub client: String,
        /// Increases with each operation this client submits. A *resend* of
        /// the same operation keeps it, so the server can recognise it.
        pub seq: u64,
        /// The last revision the client had applied when it made the op.
        pub rev: u64,
        /// The operation, on revision `rev`.
        pub op: Operation,
    }

    /// A stored operation as the transports deliver it (the fields the
    /// client needs; readers also get `author` and `at`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Stored {
        /// Its revision: it turns revision `rev − 1` into `rev`.
        pub rev: u64,
        /// Who submitted it.
        pub client: String,
        /// That client's `seq` for it.
        pub seq: u64,
        /// The operation as stored (transformed by the server).
        pub op: Operation,
    }

    /// What receiving a stored operation did.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Received {
        /// Its rev was already applied (a poll answer that overlapped).
        Duplicate,
        /// It was our own operation: acknowledged. If the buffer was not
        /// empty it is sent now: submit `send`.
        Acknowledged {
            /// The buffered edits, now in flight.
            send: Option<Submission>,
        },
        /// Someone else's operation, applied to the local document in this
        /// form (transformed past our unacknowledged edits): move carets
        /// through it.
        Applied(Operation),
    }

    /// Why the client could not take a stored operation.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum ClientError {
        /// A revision was skipped: the transport lost something. Read from
        /// `expected` again.
        #[error("expected revision {expected} next but got {got}")]
        Gap {
            /// The revision the client needs next.
            expected: u64,
            /// The one that arrived.
            got: u64,
        },
        /// The operation does not fit: the client and the server disagree
        /// about the text (a bug, or a server that broke the contract).
        #[error(transparent)]
        Operation(#[from] OpError),
    }

    /// The three states (see the module docs). Each holds what is pending.
    #[derive(Debug, Clone)]
    enum State {
        /// Nothing of ours is pending.
        Synchronized,
        /// One operation in flight, nothing else typed since.
        AwaitingConfirm {
            /// Exactly what was submitted (kept for a resend: same seq, rev
            /// and op, so the server recognises it).
            sent: Submission,
            /// The same edit, transformed past every operation that arrived
            /// since, i.e. as it applies to our current text.
            outstanding: Operation,
        },
        /// One operation in flight and edits typed since.
        AwaitingWithBuffer {
            /// As above.
            sent: Submission,
            /// As above.
            outstanding: Operation,
            /// Everything typed since, composed into one operation that
            /// applies after `outstanding`.
            buffer: Operation,
        },
    }

    /// What a state needs to send an operation: who we are, the next seq and
    /// the revision the op is based on.
    struct Outbox<'a> {
        client: &'a str,
        next_seq: &'a mut u64,
        rev: u64,
    }

    impl Outbox<'_> {
        fn submit(&mut self, op: Operation) -> Submission {
            let seq = *self.next_seq;
            *self.next_seq += 1;
            Submission {
                client: self.client.to_owned(),
                seq,
                rev: self.rev,
                op,
            }
        }
    }

    impl State {
        /// The user edited the text (already applied locally).
        fn apply_client(
            self,
            op: Operation,
            outbox: &mut Outbox<'_>,
        ) -> Result<(State, Option<Submission>), OpError> {
            Ok(match self {
                State::Synchronized => {
                    let sent = outbox.submit(op.clone());
                    let to_send = Some(sent.clone());
                    let next = State::AwaitingConfirm {
                        sent,
                        outstanding: op,
                    };
                    (next, to_send)
                }
                State::AwaitingConfirm { sent, outstanding } => (
                    State::AwaitingWithBuffer {
                        sent,
                        outstanding,
                        buffer: op,
                    },
                    None,
                ),
                State::AwaitingWithBuffer {
                    sent,
                    outstanding,
                    buffer,
                } => (
                    State::AwaitingWithBuffer {
                        sent,
                        outstanding,
                        buffer: buffer.compose(&op)?,
                    },
                    None,
                ),
            })
        }

        /// Someone else's stored operation arrived. Returns the next state
        /// and the form of `op` to apply to our text.
        fn apply_server(self, op: Operation) -> Result<(State, Operation), OpError> {
            Ok(match self {
                State::Synchronized => (State::Synchronized, op),
                State::AwaitingConfirm { sent, outstanding } => {
                    // The stored op first: it was stored before ours will be.
                    let (op, outstanding) = transform(&op, &outstanding)?;
                    (State::AwaitingConfirm { sent, outstanding }, op)
                }
                State::AwaitingWithBuffer {
                    sent,
                    outstanding,
                    buffer,
                } => {
                    let (op, outstanding) = transform(&op, &outstanding)?;
                    let (op, buffer) = transform(&op, &buffer)?;
                    let next = State::AwaitingWithBuffer {
                        sent,
                        outstanding,
                        buffer,
                    };
                    (next, op)
                }
            })
        }

        /// Our operation in flight came back in the log. `None` when nothing
        /// was in flight (the caller only calls this on a match).
        fn server_ack(self, outbox: &mut Outbox<'_>) -> Option<(State, Option<Submission>)> {
            match self {
                State::Synchronized => None,
                State::AwaitingConfirm { .. } => Some((State::Synchronized, None)),
                State::AwaitingWithBuffer { buffer, .. } => {
                    let sent = outbox.submit(buffer.clone());
                    let to_send = Some(sent.clone());
                    Some((
                        State::AwaitingConfirm {
                            sent,
                            outstanding: buffer,
                        },
                        to_send,
                    ))
                }
            }
        }
    }

    /// One editor of the shared document.
    #[derive(Debug, Clone)]
    pub struct Client {
        /// Our id, sent with every operation.
        id: String,
        /// The last revision applied (ours or anyone's).
        rev: u64,
        /// The `seq` of the next operation we submit.
        next_seq: u64,
        /// The local text: the server's revision `rev` plus our pending edits.
        doc: Rope,
        /// What is pending.
        state: State,
    }

    impl Client {
        /// A client that has loaded revision `rev` with text `text`
        /// (`GET /api/doc`), and will number its operations from `first_seq`.
        pub fn new(id: impl Into<String>, rev: u64, text: &str, first_seq: u64) -> Client {
            Client {
                id: id.into(),
                rev,
                next_seq: first_seq,
                doc: Rope::from_str(text),
                state: State::Synchronized,
            }
        }

        /// Our id.
        pub fn id(&self) -> &str {
            &self.id
        }

        /// The last revision applied.
        pub fn rev(&self) -> u64 {
            self.rev
        }

        /// The local text.
        pub fn doc(&self) -> &Rope {
            &self.doc
        }

        /// The local text, as a string.
        pub fn text(&self) -> String {
            self.doc.to_string()
        }

        /// `"synchronized"`, `"awaiting_confirm"` or `"awaiting_with_buffer"`.
        pub fn state_name(&self) -> &'static str {
            match self.state {
                State::Synchronized => "synchronized",
                State::AwaitingConfirm { .. } => "awaiting_confirm",
                State::AwaitingWithBuffer { .. } => "awaiting_with_buffer",
            }
        }

        /// The operation in flight, exactly as it was submitted: after a
        /// reconnect, submit it again (same seq and rev; the server answers
        /// with what it stored if it had stored it).
        pub fn resend(&self) -> Option<Submission> {
            match &self.state {
                State::Synchronized => None,
                State::AwaitingConfirm { sent, .. } | State::AwaitingWithBuffer { sent, .. } => {
                    Some(sent.clone())
                }
            }
        }

        /// The user made `op` on the local text: apply it, and return the
        /// submission to send if one goes out now.
        pub fn edit(&mut self, op: Operation) -> Result<Option<Submission>, OpError> {
            // Checks the op against the text first; once it fits, composing
            // it into the buffer cannot fail (the buffer ends where the
            // text is).
            op.apply_to_rope(&mut self.doc)?;
            let state = std::mem::replace(&mut self.state, State::Synchronized);
            let mut outbox = Outbox {
                client: &self.id,
                next_seq: &mut self.next_seq,
                rev: self.rev,
            };
            let (state, send) = state.apply_client(op, &mut outbox)?;
            self.state = state;
            Ok(send)
        }

        /// The next stored operation from the transport, in rev order.
        pub fn receive(&mut self, stored: &Stored) -> Result<Received, ClientError> {
            if stored.rev <= self.rev {
                return Ok(Received::Duplicate);
            }
            if stored.rev != self.rev + 1 {
                return Err(ClientError::Gap {
                    expected: self.rev + 1,
                    got: stored.rev,
                });
            }
            let ours = self
                .resend()
                .is_some_and(|sent| sent.client == stored.client && sent.seq == stored.seq);
            let state = std::mem::replace(&mut self.state, State::Synchronized);
            if ours {
                // Our own op, back from the log: the acknowledgement. Our text
                // already has it (transformed the same way the server did).
                self.rev = stored.rev;
                let mut outbox = Outbox {
                    client: &self.id,
                    next_seq: &mut self.next_seq,
                    rev: self.rev,
                };
                // unwrap: `ours` means a submission is in flight, so the state
                // is one of the two awaiting states, which always answer.
                let (state, send) = state.server_ack(&mut outbox).unwrap();
                self.state = state;
                return Ok(Received::Acknowledged { send });
            }
            // Kept so that a refused operation leaves the client as it was.
            let before = state.clone();
            let applied = state
                .apply_server(stored.op.clone())
                .and_then(|(next, op)| {
                    op.apply_to_rope(&mut self.doc)?;
                    Ok((next, op))
                });
            let (state, op) = match applied {
                Ok(done) => done,
                Err(err) => {
                    self.state = before;
                    return Err(err.into());
                }
            };
            self.state = state;
            self.rev = stored.rev;
            Ok(Received::Applied(op))
        }
    }
}
