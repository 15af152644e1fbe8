/// The browser and the server must agree on every edit, or two editors of
/// the same document drift apart. This test generates a few thousand seeded
/// random cases — a document mixing ASCII, CJK, combining accents and
/// emoji, two concurrent operations on it, one more on the first's result,
/// carets, a selection, patches, and JSON that is or is not an operation —
/// computes apply, transform, compose, the caret rules and parsing with
/// `src/ot.rs`, writes inputs and results to a file, and runs
/// `tests/browser/ot_cross_language.mjs`, which recomputes them with
/// `assets/js/doc/ot.js` and fails at the first case that differs.
///
/// Needs `node` (20.19 or newer); set `WEEBSOCKETS_SKIP_BROWSER=1` to skip
/// it, as the browser suite.
mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::traces::{Rng, random_op, random_text};
use serde_json::{Value, json};
use weebsockets::ot::{Bias, MAX_SAFE_INTEGER, Operation, Selection, transform};

/// Cases of each kind.
const OP_CASES: u64 = 4_000;
const JSON_CASES: u64 = 2_000;
const PATCH_CASES: u64 = 500;

/// Two concurrent ops, one sequential, and what Rust makes of them.
fn op_case(seed: u64) -> Value {
    let mut rng = Rng::new(seed);
    let doc = random_text(&mut rng, 8);
    let len = doc.chars().count();
    let a = random_op(&mut rng, len);
    let b = random_op(&mut rng, len);
    let next = random_op(&mut rng, a.target_len());
    let (a2, b2) = transform(&a, &b).unwrap();
    let after_a = a.apply(&doc).unwrap();
    let composed = a.compose(&next).unwrap();
    let carets: Vec<Value> = (0..3)
        .map(|_| {
            let index = rng.below(len + 2); // one past the end, too
            json!([
                index,
                a.transform_index(index, Bias::Before),
                a.transform_index(index, Bias::After)
            ])
        })
        .collect();
    let selection = Selection {
        anchor: rng.below(len + 1),
        head: rng.below(len + 1),
    };
    let moved = |s: Selection| json!({"anchor": s.anchor, "head": s.head});
    json!({
        "doc": doc, "a": a, "b": b, "next": next,
        "carets": carets, "selection": [moved(selection)],
        "expected": {
            "after_a": after_a,
            "after_b": b.apply(&doc).unwrap(),
            "transform": [a2, b2],
            "converged": b2.apply(&after_a).unwrap(),
            "compose": composed,
            "after_compose": composed.apply(&doc).unwrap(),
            "carets": carets,
            "selection": [
                moved(a.transform_selection(selection, Bias::Before)),
                moved(a.transform_selection(selection, Bias::After)),
            ],
        }
    })
}

/// JSON that may or may not be an operation. Only values that survive
/// `JSON.parse` unchanged: no floats with a whole value (JavaScript reads
/// `1.0` as `1`; the server, which sees the text, refuses it).
fn json_case(seed: u64) -> Value {
    let mut rng = Rng::new(seed);
    let component = |rng: &mut Rng| -> Value {
        match rng.below(16) {
            0..=3 => json!(1 + rng.below(5)),
            4..=5 => json!(-(1 + rng.below(5) as i64)),
            6..=8 => json!(random_text(rng, 2)), // maybe ""
            9 => json!(0),
            10 => json!(1.5),
            11 => json!(-0.0),
            12 => json!([MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1, u64::MAX][rng.below(3)]),
            13 => json!(["a\rb", "x\u{0}", "\u{7f}", "\u{85}", "ok\n\t"][rng.below(5)]),
            14 => json!([null, true, [1], {"n": 1}])[rng.below(4)].clone(),
            _ => json!(-(MAX_SAFE_INTEGER as i64)),
        }
    };
    let value = if rng.below(10) == 0 {
        json!(["not an array", {"op": [1]}, 5, null])[rng.below(4)].clone()
    } else {
        Value::from(
            (0..rng.below(6))
                .map(|_| component(&mut rng))
                .collect::<Vec<_>>(),
        )
    };
    let expected = match Operation::from_json(&value) {
        Ok(op) => json!({"parsed": op}),
        Err(err) => json!({"code": err.code()}),
    };
    json!({"json": value, "expected": expected})
}

/// An editor's patch and a whole-text replacement.
fn patch_case(seed: u64) -> Value {
    let mut rng = Rng::new(seed);
    let len = rng.below(10);
    let pos = rng.below(len + 1);
    let delete = rng.below(len - pos + 1);
    let text = random_text(&mut rng, 2);
    json!({
        "patch": [len, pos, delete, text],
        "expected": {
            "op": Operation::from_patch(len, pos, delete, &text).unwrap(),
            "replace_all": Operation::replace_all(len, &text).unwrap(),
        }
    })
}

#[test]
fn javascript_and_rust_agree_on_every_case() {
    if std::env::var_os("WEEBSOCKETS_SKIP_BROWSER").is_some_and(|v| v == "1") {
        println!("cross-language check skipped (WEEBSOCKETS_SKIP_BROWSER=1)");
        return;
    }
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let cases = (0..OP_CASES)
        .map(op_case)
        .chain((0..JSON_CASES).map(|s| json_case(1_000_000 + s)))
        .chain((0..PATCH_CASES).map(|s| patch_case(2_000_000 + s)));
    for case in cases {
        writeln!(file, "{case}").unwrap();
    }
    file.flush().unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/ot_cross_language.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(file.path())
        .output()
        .expect(
            "the cross-language check needs Node.js (`node` on PATH; `sudo apt-get install nodejs`); \
             set WEEBSOCKETS_SKIP_BROWSER=1 to skip it",
        );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "JavaScript and Rust disagree:\n{}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let total = OP_CASES + JSON_CASES + PATCH_CASES;
    assert!(stdout.contains(&format!("{total} cases agree")), "{stdout}");
    println!("{stdout}");
}
