//! Account names: what a person may type, what is shown, and what makes two
//! names "the same name".
//!
//! A name follows the rules of a message's `author` (`src/message.rs`): 1 to
//! 32 characters after trimming, no control characters other than newline,
//! carriage return and tab. On top of that, an account name has two forms:
//!
//! * the **display name**, kept as typed — trimmed and put in Unicode NFC,
//!   so that "é" typed as one precomposed character and "é" typed as "e" plus
//!   a combining accent are stored (and shown) as the same bytes;
//! * the **key** that makes names unique: the display name with *full* case
//!   folding applied. `Ada` and `ada` are one key; so are `Straße` and
//!   `STRASSE` (full folding turns "ß" into "ss"; Rust's `to_lowercase` keeps
//!   "ß", and `to_uppercase` would not help with other scripts either).
//!
//! # Why the key is NFC(fold(NFD(name)))
//!
//! Case folding and normalisation do not commute: folding can produce text
//! that is no longer in NFC, and a few characters (U+0345, the Greek iota
//! subscript) only fold consistently once decomposed. Unicode's "canonical
//! caseless match" (chapter 3.13) is therefore `NFD(fold(NFD(x)))`. We store
//! the NFC of that, which is equal for two names exactly when their NFDs are,
//! and is shorter.

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;

use crate::message::MAX_AUTHOR_CHARS;

/// A validated account name: how it is shown, and the key it is unique by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountName {
    /// As typed: trimmed, NFC. This is what readers see as `author`.
    pub display: String,
    /// NFC + full case folding: what `UNIQUE` is enforced on.
    pub key: String,
}

/// Why a name was refused (`invalid_name`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    /// Empty after trimming, or too long.
    #[error("a name must be 1 to {max} characters after trimming (got {got})")]
    Length {
        /// Characters after trimming and NFC.
        got: usize,
        /// The limit ([`MAX_AUTHOR_CHARS`]).
        max: usize,
    },
    /// A control character other than newline, carriage return or tab.
    #[error(
        "a name may not contain a control character (U+{code_point:04X}); only newline, carriage return and tab are allowed"
    )]
    ControlCharacter {
        /// The offending character.
        code_point: u32,
    },
}

impl AccountName {
    /// Validates `typed` with the author's rules and computes both forms.
    pub fn parse(typed: &str) -> Result<AccountName, InvalidName> {
        // As for a message's author, controls are checked before trimming
        // (some of them are also whitespace and would be trimmed away).
        if let Some(c) = typed
            .chars()
            .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(InvalidName::ControlCharacter {
                code_point: c as u32,
            });
        }
        let display: String = typed.trim().nfc().collect();
        // Counted after NFC, because NFC can change the count (e + U+0301 is
        // two characters, é one; a few characters decompose into two). The
        // display name becomes a message's author, so it must itself obey
        // the author's 32-character limit.
        let chars = display.chars().count();
        if chars == 0 || chars > MAX_AUTHOR_CHARS {
            return Err(InvalidName::Length {
                got: chars,
                max: MAX_AUTHOR_CHARS,
            });
        }
        let key = fold_key(&display);
        Ok(AccountName { display, key })
    }
}

/// The uniqueness key of a name that has already been trimmed.
fn fold_key(name: &str) -> String {
    name.nfd().default_case_fold().nfc().collect()
}

/// The key of whatever a client typed, or `None` when it cannot be a name.
/// Used on hot paths (does this guest's `author` belong to an account?).
pub fn key_of(typed: &str) -> Option<String> {
    AccountName::parse(typed).ok().map(|name| name.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{NewMessage, Via};
    use proptest::prelude::*;

    fn key(s: &str) -> String {
        AccountName::parse(s).unwrap().key
    }

    #[test]
    fn case_variants_share_a_key() {
        assert_eq!(key("Ada"), key("ada"));
        assert_eq!(key("ADA"), key("aDa"));
        assert_ne!(key("Ada"), key("Adb"));
    }

    #[test]
    fn full_folding_makes_sharp_s_and_ss_one_name() {
        assert_eq!(key("Straße"), key("STRASSE"));
        assert_eq!(key("Straße"), key("strasse"));
        // The capital sharp s (U+1E9E) folds the same way.
        assert_eq!(key("STRA\u{1E9E}E"), key("strasse"));
        // Greek final sigma, sigma and capital sigma are one letter.
        assert_eq!(key("ΟΔΥΣΣΕΥΣ"), key("οδυσσευς"));
    }

    #[test]
    fn precomposed_and_combining_accents_are_one_name() {
        let precomposed = "Jos\u{e9}";
        let combining = "Jose\u{301}";
        assert_ne!(precomposed, combining);
        assert_eq!(key(precomposed), key(combining));
        assert_eq!(key(precomposed), key("JOS\u{c9}"));
        // Both are *shown* the same way too: NFC.
        assert_eq!(
            AccountName::parse(combining).unwrap().display,
            AccountName::parse(precomposed).unwrap().display
        );
    }

    #[test]
    fn display_keeps_the_case_as_typed_but_trims() {
        let name = AccountName::parse("  Ada Lovelace \n").unwrap();
        assert_eq!(name.display, "Ada Lovelace");
        assert_eq!(name.key, "ada lovelace");
    }

    #[test]
    fn length_is_counted_after_trimming_and_nfc() {
        assert!(AccountName::parse(&"a".repeat(32)).is_ok());
        assert_eq!(
            AccountName::parse(&"a".repeat(33)),
            Err(InvalidName::Length { got: 33, max: 32 })
        );
        assert_eq!(
            AccountName::parse("   "),
            Err(InvalidName::Length { got: 0, max: 32 })
        );
        // 32 × (e + combining acute) is 64 scalar values typed, 32 after NFC.
        assert!(AccountName::parse(&"e\u{301}".repeat(32)).is_ok());
        // U+0958 is excluded from composition: NFC spells it as two
        // characters, so 17 of them are 34 characters and too long.
        assert_eq!(
            AccountName::parse(&"\u{958}".repeat(17)),
            Err(InvalidName::Length { got: 34, max: 32 })
        );
    }

    #[test]
    fn a_key_may_be_longer_than_any_name() {
        // 32 characters is the limit for what is typed and shown; folding
        // "ß" to "ss" doubles it in the key, which is fine.
        let name = AccountName::parse(&"ß".repeat(32)).unwrap();
        assert_eq!(name.key, "ss".repeat(32));
        assert_eq!(key_of(&"SS".repeat(16)), Some("ss".repeat(16)));
        assert_eq!(key_of(&"SS".repeat(32)), None);
    }

    #[test]
    fn control_characters_are_refused_even_at_the_ends() {
        assert_eq!(
            AccountName::parse("ada\u{0}"),
            Err(InvalidName::ControlCharacter { code_point: 0 })
        );
        assert_eq!(
            AccountName::parse("\u{b}ada"),
            Err(InvalidName::ControlCharacter { code_point: 0xb })
        );
        assert_eq!(
            AccountName::parse("ada\u{85}"),
            Err(InvalidName::ControlCharacter { code_point: 0x85 })
        );
    }

    proptest! {
        /// Names and authors agree: whatever the author rule accepts, the
        /// name rule accepts (NFC only ever shortens these characters), and
        /// whatever the name rule refuses, the author rule refuses. An
        /// accepted name's display form is itself a valid author, unchanged
        /// by the author rule's trimming.
        #[test]
        fn names_follow_the_authors_rules(typed in "[ \\t\\na-zA-Z\u{df}\u{e9}\u{301}\u{0}\u{7f}\u{85}]{0,40}") {
            let as_author = NewMessage::validate(&typed, "x", Via::Api, 1);
            match AccountName::parse(&typed) {
                Ok(name) => {
                    let author = NewMessage::validate(&name.display, "x", Via::Api, 1);
                    prop_assert_eq!(author.map(|m| m.author), Ok(name.display.clone()));
                    // Folding is idempotent: the key of a key is itself.
                    // (Not through `parse`: "ß" folds to "ss", so a key
                    // may be longer than the 32 characters a name may be.)
                    prop_assert_eq!(fold_key(&name.key), name.key.clone());
                }
                Err(_) => prop_assert!(as_author.is_err()),
            }
        }

        /// Case never matters: a name, its upper case and its lower case
        /// share a key.
        #[test]
        fn case_never_matters(typed in "[a-zA-Z\u{e0}-\u{fe}ß ]{1,16}") {
            prop_assume!(AccountName::parse(&typed).is_ok());
            let upper = typed.to_uppercase();
            let lower = typed.to_lowercase();
            prop_assert_eq!(key(&typed), key(&upper));
            prop_assert_eq!(key(&typed), key(&lower));
        }
    }
}
