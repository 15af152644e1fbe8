/// The algebra of the document's operations, checked on many generated
/// cases rather than a few examples: for random documents mixing ASCII,
/// CJK, combining accents and emoji of several code points, and random
/// concurrent operations on them, transforming makes both orders end in the
/// same text; composing is the same as applying one after the other; of two
/// inserts at one point, transform's first argument goes first; a caret
/// moves as a marker character would; every operation survives JSON and
/// back unchanged, in normal form; and JSON that is not an operation is
/// refused with a code, never a panic.
///
/// Each property runs 10,000 cases from a fixed seed (set
/// `PROPTEST_RNG_SEED=<n>` to explore others).
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::{Value, json};
use weebsockets::ot::{Bias, MAX_SAFE_INTEGER, Operation, transform};

/// 10,000 cases per property, reproducible.
fn config() -> ProptestConfig {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00C0_FFEE);
    ProptestConfig {
        cases: 10_000,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Bits of text: ASCII, whitespace, CJK, a precomposed and a combining
/// accent, one- and several-code-point emoji, and any non-control char.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "a", "b", "x", " ", "\n", "\t", "中", "文字", "é", "e\u{301}", "🎉",
            "👩\u{200d}💻", "🇫🇷", "∑",
        ])
        .prop_map(str::to_owned),
        1 => any::<char>()
            .prop_filter("no controls", |c| !c.is_control())
            .prop_map(String::from),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..10).prop_map(|pieces| pieces.concat())
}

fn inserted() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 1..3).prop_map(|pieces| pieces.concat())
}

/// One raw choice of an operation generator; sizes are clamped to what is
/// left of the document when the operation is built, so that shrinking
/// keeps the cases valid.
#[derive(Debug, Clone)]
enum Choice {
    Retain(usize),
    Delete(usize),
    Insert(String),
}

fn choices() -> impl Strategy<Value = Vec<Choice>> {
    prop::collection::vec(
        prop_oneof![
            2 => (1..5usize).prop_map(Choice::Retain),
            1 => (1..4usize).prop_map(Choice::Delete),
            1 => inserted().prop_map(Choice::Insert),
        ],
        0..8,
    )
}

/// Builds an operation on a document of `len` characters from choices.
fn build(len: usize, choices: &[Choice]) -> Operation {
    let mut op = Operation::new();
    let mut left = len;
    for choice in choices {
        match choice {
            Choice::Retain(n) => {
                let n = (*n).min(left);
                op.retain(n);
                left -= n;
            }
            Choice::Delete(n) => {
                let n = (*n).min(left);
                op.delete(n);
                left -= n;
            }
            Choice::Insert(s) => {
                op.insert(s);
            }
        }
    }
    op.retain(left);
    op
}

fn len(s: &str) -> usize {
    s.chars().count()
}

/// A document and two operations made on it concurrently.
fn concurrent() -> impl Strategy<Value = (String, Operation, Operation)> {
    (text(), choices(), choices()).prop_map(|(s, a, b)| {
        let (a, b) = (build(len(&s), &a), build(len(&s), &b));
        (s, a, b)
    })
}

/// A document, an operation on it, and one on its result.
fn sequential() -> impl Strategy<Value = (String, Operation, Operation)> {
    (text(), choices(), choices()).prop_map(|(s, a, b)| {
        let a = build(len(&s), &a);
        let b = build(a.target_len(), &b);
        (s, a, b)
    })
}

/// What `op.apply(s)` must give, computed naively from the JSON components
/// one by one (no merging, no normal form): the reference for parsing.
fn naive_apply(s: &str, components: &[Value]) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut at = 0;
    for c in components {
        match c {
            Value::String(t) => out.push_str(t),
            Value::Number(n) if n.as_i64().unwrap() > 0 => {
                let n = n.as_i64().unwrap() as usize;
                out.extend(&chars[at..at + n]);
                at += n;
            }
            Value::Number(n) => at += (-n.as_i64().unwrap()) as usize,
            _ => unreachable!(),
        }
    }
    out
}

/// Is this JSON value an operation the contract allows (ignoring the
/// document's length)? Written from the contract's words, independently of
/// the parser: whole numbers other than 0, non-empty strings without
/// control characters other than newline and tab, and lengths (so any
/// merged count) no larger than what JavaScript holds exactly.
fn allowed(value: &Value) -> bool {
    let Value::Array(items) = value else {
        return false;
    };
    let (mut base, mut target) = (0u128, 0u128);
    for item in items {
        if let Some(i) = item.as_i64() {
            base += u128::from(i.unsigned_abs());
            target += if i > 0 { i as u128 } else { 0 };
        } else if let Some(s) = item.as_str() {
            target += s.chars().count() as u128;
        }
    }
    let max = u128::from(MAX_SAFE_INTEGER);
    base <= max
        && target <= max
        && items.iter().all(|item| match item {
            Value::Number(n) => n
                .as_i64()
                .is_some_and(|i| i != 0 && i.unsigned_abs() <= MAX_SAFE_INTEGER),
            Value::String(s) => {
                !s.is_empty() && !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
            }
            _ => false,
        })
}

/// One component the contract allows.
fn good_component() -> impl Strategy<Value = Value> {
    prop_oneof![
        (1..6i64).prop_map(Value::from),
        (-5..0i64).prop_map(Value::from),
        inserted().prop_map(Value::from),
        Just(json!(MAX_SAFE_INTEGER)),
    ]
}

/// One thing that is not a component: zero, numbers with a fraction or an
/// exponent, too large, empty or control-character strings (CR included),
/// and values of the wrong type.
fn bad_component() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(1.5)),
        Just(json!(1.0)),
        Just(json!(-0.0)),
        Just(json!(1e3)),
        Just(json!(MAX_SAFE_INTEGER + 1)),
        Just(json!(-(MAX_SAFE_INTEGER as i64) - 1)),
        any::<u64>()
            .prop_filter("too large", |n| *n > MAX_SAFE_INTEGER)
            .prop_map(Value::from),
        prop::num::f64::ANY.prop_map(Value::from),
        Just(json!("")),
        Just(json!("a\rb")),
        "[\\x00-\\x08\\x0b-\\x1f\\x7f\\u{80}-\\u{9f}]".prop_map(|c| Value::from(format!("x{c}y"))),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        Just(json!([1])),
        Just(json!({"retain": 1})),
    ]
}

/// Random JSON, mostly almost-operations: valid components with one bad
/// one slipped in somewhere, or none; and wilder nested values.
fn junk() -> impl Strategy<Value = Value> {
    let almost = (
        prop::collection::vec(good_component(), 0..6),
        prop::option::of(bad_component()),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut items, bad, at)| {
            if let Some(bad) = bad {
                let at = at.index(items.len() + 1);
                items.insert(at, bad);
            }
            Value::from(items)
        });
    let leaf = prop_oneof![good_component(), bad_component()];
    let wild = leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,2}", inner, 0..2)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![3 => almost, 1 => wild]
}

proptest! {
    #![proptest_config(config())]

    /// apply(apply(s, a), b') == apply(apply(s, b), a'): both editors end
    /// with the same text, whichever edit they applied first.
    #[test]
    fn transform_makes_both_orders_agree((s, a, b) in concurrent()) {
        let (a2, b2) = transform(&a, &b).unwrap();
        prop_assert_eq!(a2.base_len(), b.target_len());
        prop_assert_eq!(b2.base_len(), a.target_len());
        let via_a = b2.apply(&a.apply(&s).unwrap()).unwrap();
        let via_b = a2.apply(&b.apply(&s).unwrap()).unwrap();
        prop_assert_eq!(via_a, via_b);
    }

    /// compose(a, b) applied once equals a then b.
    #[test]
    fn compose_agrees_with_applying_in_sequence((s, a, b) in sequential()) {
        let ab = a.compose(&b).unwrap();
        prop_assert_eq!(ab.base_len(), a.base_len());
        prop_assert_eq!(ab.target_len(), b.target_len());
        prop_assert_eq!(ab.apply(&s).unwrap(), b.apply(&a.apply(&s).unwrap()).unwrap());
    }

    /// Of two inserts at the same point, transform's first argument's text
    /// comes first (the server passes the stored op first), and characters
    /// that both delete are deleted once.
    #[test]
    fn transform_puts_the_first_arguments_insert_first(
        s in text(), at in any::<prop::sample::Index>(),
        x in inserted(), y in inserted(), dx in 0..3usize, dy in 0..3usize,
    ) {
        let n = len(&s);
        let at = at.index(n + 1);
        let (dx, dy) = (dx.min(n - at), dy.min(n - at));
        let a = Operation::from_patch(n, at, dx, &x).unwrap();
        let b = Operation::from_patch(n, at, dy, &y).unwrap();
        let (a2, b2) = transform(&a, &b).unwrap();
        let chars: Vec<char> = s.chars().collect();
        let expected: String = chars[..at].iter().collect::<String>()
            + &x + &y + &chars[at + dx.max(dy)..].iter().collect::<String>();
        prop_assert_eq!(b2.apply(&a.apply(&s).unwrap()).unwrap(), expected.clone());
        prop_assert_eq!(a2.apply(&b.apply(&s).unwrap()).unwrap(), expected);
    }

    /// A caret moved by transform_index lands where a marker character
    /// placed at the caret ends up: with Bias::Before the marker is treated
    /// as stored first (text inserted at the caret goes after it), with
    /// Bias::After as stored second.
    #[test]
    fn a_caret_moves_like_a_marker((s, _, op) in concurrent(), at in any::<prop::sample::Index>()) {
        let caret = at.index(len(&s) + 1);
        let marker = '\u{E000}'; // private use: never in the generated text
        let put = Operation::from_patch(len(&s), caret, 0, &marker.to_string()).unwrap();
        for bias in [Bias::Before, Bias::After] {
            let op_after_marker = match bias {
                Bias::Before => transform(&put, &op).unwrap().1,
                Bias::After => transform(&op, &put).unwrap().0,
            };
            let with_marker = op_after_marker.apply(&put.apply(&s).unwrap()).unwrap();
            let found = with_marker.chars().position(|c| c == marker).unwrap();
            prop_assert_eq!(op.transform_index(caret, bias), found, "{:?}", bias);
        }
    }

    /// Every operation the builder makes is accepted by the parser, and
    /// comes back identical: parse(serialise(op)) == op.
    #[test]
    fn json_round_trip((_, a, _) in concurrent()) {
        let json = a.to_json();
        prop_assert_eq!(serde_json::to_value(&a).unwrap(), json.clone());
        let back = Operation::from_json(&json).unwrap();
        prop_assert_eq!(&back, &a);
        prop_assert_eq!(Operation::from_json_str(&json.to_string()).unwrap(), a);
    }

    /// Any valid list of components, in any order (two retains in a row, a
    /// delete before an insert…), parses to the normal form: it means the
    /// same as the raw list, serialising it again changes nothing, and no
    /// two neighbours are of one kind or a delete before an insert.
    #[test]
    fn normal_form_is_idempotent_and_means_the_same(s in text(), choices in choices()) {
        let n = len(&s);
        let mut left = n;
        let mut raw = Vec::new();
        for choice in &choices {
            match choice {
                Choice::Retain(k) if left > 0 => { let k = (*k).min(left); raw.push(json!(k)); left -= k; }
                Choice::Delete(k) if left > 0 => { let k = (*k).min(left); raw.push(json!(-(k as i64))); left -= k; }
                Choice::Insert(t) => raw.push(json!(t)),
                _ => {}
            }
        }
        if left > 0 { raw.push(json!(left)); }
        let op = Operation::from_json(&Value::from(raw.clone())).unwrap();
        prop_assert_eq!(op.apply(&s).unwrap(), naive_apply(&s, &raw));
        let once = op.to_json();
        let twice = Operation::from_json(&once).unwrap().to_json();
        prop_assert_eq!(&once, &twice);
        let kinds: Vec<i8> = once.as_array().unwrap().iter().map(|c| match c {
            Value::String(_) => 0,
            Value::Number(k) if k.as_i64().unwrap() > 0 => 1,
            _ => -1,
        }).collect();
        for pair in kinds.windows(2) {
            prop_assert!(pair[0] != pair[1], "two neighbours of one kind in {}", once);
            prop_assert!(!(pair[0] == -1 && pair[1] == 0), "a delete before an insert in {}", once);
        }
    }

    /// Random JSON is refused unless the contract allows it, with one of the
    /// two codes, and never panics.
    #[test]
    fn junk_is_refused_with_a_code(value in junk()) {
        match Operation::from_json(&value) {
            Ok(op) => {
                prop_assert!(allowed(&value), "accepted {}", value);
                prop_assert_eq!(Operation::from_json(&op.to_json()).unwrap(), op);
            }
            Err(err) => {
                prop_assert!(!allowed(&value), "refused {}: {}", value, err);
                prop_assert!(matches!(err.code(), "bad_operation" | "control_character"));
                prop_assert!(!err.to_string().is_empty());
            }
        }
    }
}

#[test]
fn examples_from_the_contract() {
    let op = |v: Value| Operation::from_json(&v).unwrap();
    assert_eq!(
        op(json!([5, " world"])).apply("hello").unwrap(),
        "hello world"
    );
    assert_eq!(op(json!(["H", -1, 4])).apply("hello").unwrap(), "Hello");
    assert_eq!(op(json!([-1, "H", 4])).to_json(), json!(["H", -1, 4]));
    assert_eq!(
        op(json!([2, 3, "a", "b", -1, -1])).to_json(),
        json!([5, "ab", -2])
    );
    assert_eq!(op(json!([])).apply("").unwrap(), "");
    // 👩‍💻 is three characters: woman, zero-width joiner, laptop.
    assert_eq!(
        op(json!([3, "!"])).apply("👩\u{200d}💻").unwrap(),
        "👩\u{200d}💻!"
    );
    assert_eq!(
        Operation::replace_all(5, "bye").unwrap().to_json(),
        json!(["bye", -5])
    );
    assert_eq!(
        Operation::from_patch(5, 1, 2, "EE").unwrap().to_json(),
        json!([1, "EE", -2, 2])
    );
}

#[test]
fn refusals_have_their_codes() {
    let code = |v: Value| Operation::from_json(&v).unwrap_err().code();
    for bad in [
        json!({"op": [1]}),
        json!("abc"),
        json!([0]),
        json!([1.5]),
        json!([1e3]),
        json!([-0.0]),
        json!([1.0]),
        json!([""]),
        json!([[1]]),
        json!([{"retain": 1}]),
        json!([null]),
        json!([true]),
        json!([MAX_SAFE_INTEGER + 1]),
        json!([u64::MAX]),
    ] {
        assert_eq!(code(bad.clone()), "bad_operation", "{bad}");
    }
    assert!(Operation::from_json(&json!([MAX_SAFE_INTEGER])).is_ok());
    for bad in [
        json!(["a\rb"]),
        json!(["\u{0}"]),
        json!(["\u{7f}"]),
        json!(["\u{85}"]),
    ] {
        assert_eq!(code(bad.clone()), "control_character", "{bad}");
    }
    assert!(Operation::from_json(&json!(["line\n\tend"])).is_ok());
    // Text that is not JSON, and JSON text with a number written with an
    // exponent: both refused.
    assert_eq!(
        Operation::from_json_str("[1,").unwrap_err().code(),
        "bad_operation"
    );
    assert_eq!(
        Operation::from_json_str("[1e3]").unwrap_err().code(),
        "bad_operation"
    );
    // Lengths must add up.
    let hello = Operation::from_json(&json!([4, "!"])).unwrap();
    assert_eq!(hello.apply("hello").unwrap_err().code(), "bad_operation");
    assert!(hello.compose(&hello).is_err());
    assert!(transform(&hello, &Operation::new()).is_err());
    assert!(Operation::from_patch(3, 2, 2, "").is_err());
}

#[test]
fn selections_keep_foreign_text_outside() {
    use weebsockets::ot::Selection;
    // "hello world", "world" selected (6..11); someone inserts at both edges.
    let op = Operation::from_json(&json!([6, "big ", 5, "!"])).unwrap();
    let selection = Selection {
        anchor: 6,
        head: 11,
    };
    assert_eq!(
        op.transform_selection(selection, Bias::Before),
        Selection {
            anchor: 10,
            head: 15
        }
    );
    // A caret at the end stays before someone else's "!", moves past its own.
    let caret = Selection {
        anchor: 11,
        head: 11,
    };
    assert_eq!(op.transform_selection(caret, Bias::Before).head, 15);
    assert_eq!(op.transform_selection(caret, Bias::After).head, 16);
    // Deleting the selected text collapses the selection.
    let delete = Operation::from_json(&json!([6, -5])).unwrap();
    assert_eq!(
        delete.transform_selection(
            Selection {
                anchor: 11,
                head: 6
            },
            Bias::Before
        ),
        Selection { anchor: 6, head: 6 }
    );
}
