//! Properties that must hold for *any* input, checked on many generated
//! cases: message validation never panics and only ever stores what the
//! contract allows; reading by cursor, however appends and reads
//! interleave and wherever the memory window ends, never skips or repeats
//! a message.

use proptest::prelude::*;
use weebsockets::config::SyncMode;
use weebsockets::message::{MAX_AUTHOR_CHARS, MAX_TEXT_CHARS, NewMessage, Via};
use weebsockets::room::Room;
use weebsockets::store::Database;

fn forbidden(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

proptest! {
    /// Whatever the strings, validation either refuses with a code or
    /// returns trimmed fields within bounds and free of forbidden controls.
    #[test]
    fn validation_accepts_exactly_what_the_contract_allows(
        author in ".{0,40}",
        text in prop_oneof![".{0,50}", "[ \\t\\n\\u{85}\\u{0}-\\u{1f}a-z]{0,30}", ".{1990,2010}"],
    ) {
        match NewMessage::validate(&author, &text, Via::Api, MAX_TEXT_CHARS) {
            Ok(m) => {
                prop_assert_eq!(m.author.as_str(), author.trim());
                prop_assert_eq!(m.text.as_str(), text.trim());
                prop_assert!((1..=MAX_AUTHOR_CHARS).contains(&m.author.chars().count()));
                prop_assert!((1..=MAX_TEXT_CHARS).contains(&m.text.chars().count()));
                prop_assert!(!author.chars().any(forbidden) && !text.chars().any(forbidden));
            }
            Err(err) => {
                let author_len = author.trim().chars().count();
                let text_len = text.trim().chars().count();
                let explained = match err.code() {
                    "invalid_author" => author_len == 0 || author_len > MAX_AUTHOR_CHARS,
                    "invalid_text" => text_len == 0 || text_len > MAX_TEXT_CHARS,
                    "control_character" => author.chars().chain(text.chars()).any(forbidden),
                    _ => false,
                };
                prop_assert!(explained, "{} for {:?} / {:?}", err.code(), author, text);
            }
        }
    }
}

/// One step of a generated history.
#[derive(Debug, Clone)]
enum Op {
    /// Append this many messages.
    Append(u8),
    /// One page read from a random cursor.
    Read { since: u16, limit: u16 },
    /// One step of a reader paging through with its own cursor.
    Page { limit: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u8..12).prop_map(Op::Append),
        (0u16..150, 1u16..40).prop_map(|(since, limit)| Op::Read { since, limit }),
        (1u16..40).prop_map(|limit| Op::Page { limit }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Reads from any cursor return exactly the consecutive ids after it, up
    /// to the limit — from memory or from disk — and a reader paging with
    /// its cursor through interleaved appends ends with every id once.
    #[test]
    fn cursor_reads_never_skip_or_repeat(
        window in 1usize..20,
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = Database::open(&dir.path().join("p.db"), SyncMode::Normal).unwrap();
            let room = Room::open(store, window, 1000).unwrap();
            let mut last = 0u64;
            let mut cursor = 0u64;
            let mut paged = Vec::new();
            for op in ops {
                match op {
                    Op::Append(n) => {
                        for _ in 0..n {
                            let m = NewMessage::validate("p", "t", Via::Api, MAX_TEXT_CHARS).unwrap();
                            let stored = room.append(m).await.unwrap();
                            last += 1;
                            prop_assert_eq!(stored.message.id(), last);
                        }
                    }
                    Op::Read { since, limit } => {
                        let (since, limit) = (u64::from(since), usize::from(limit));
                        let page = room.log().read_since(since, limit).await.unwrap();
                        let got: Vec<u64> = page.entries.iter().map(|m| m.id()).collect();
                        let want: Vec<u64> = (since + 1..=last).take(limit).collect();
                        prop_assert_eq!(got, want);
                        prop_assert_eq!(page.last, last);
                    }
                    Op::Page { limit } => {
                        let page = room.log().read_since(cursor, usize::from(limit)).await.unwrap();
                        for m in &page.entries {
                            paged.push(m.id());
                            cursor = m.id();
                        }
                    }
                }
            }
            // Drain what is left, as a reader catching up would.
            loop {
                let page = room.log().read_since(cursor, 7).await.unwrap();
                if page.entries.is_empty() {
                    break;
                }
                for m in &page.entries {
                    paged.push(m.id());
                    cursor = m.id();
                }
            }
            prop_assert_eq!(paged, (1..=last).collect::<Vec<_>>());
            room.flush_and_stop().await;
            Ok(())
        })?;
    }
}
