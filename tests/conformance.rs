//! WebSocket conformance: the standard Autobahn|Testsuite fuzzing client
//! runs every case (except permessage-deflate, sections 12 and 13, which
//! actix-ws does not offer) against `/api/echo`, served by the real server
//! with the project's limits, and no case may be FAILED.
//!
//! The testsuite is a Python 2.7 program (`pip install autobahntestsuite`).
//! Where no Python 2.7 exists the test says so and passes without running;
//! set `WEEBSOCKETS_REQUIRE_AUTOBAHN=1` to make that a failure instead.
//! The frame-size limit is raised to the suite's largest message (16 MiB)
//! for the run; with the default 64 KiB the server closes the 40 bigger
//! cases of section 9 with 1009, as `docs/conformance.md` explains.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// A Python 2.7 interpreter: `$PYTHON2`, `python2.7` on the PATH, or one
/// installed by pyenv.
fn python2() -> Option<PathBuf> {
    let candidates = std::env::var_os("PYTHON2")
        .map(PathBuf::from)
        .into_iter()
        .chain(["python2.7", "python2"].map(PathBuf::from))
        .chain(
            std::fs::read_dir(
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".pyenv/versions"),
            )
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("2.7"))
            .map(|e| e.path().join("bin/python")),
        );
    for candidate in candidates {
        let ok = Command::new(&candidate)
            .args(["-c", "import sys; assert sys.version_info[:2] == (2, 7)"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(candidate);
        }
    }
    None
}

fn has_testsuite(python: &PathBuf) -> bool {
    Command::new(python)
        .args(["-c", "import autobahntestsuite.wstest"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn autobahn_fuzzingclient_finds_no_failed_case() {
    let Some(python) = python2() else {
        let required = std::env::var("WEEBSOCKETS_REQUIRE_AUTOBAHN").is_ok_and(|v| v == "1");
        assert!(!required, "Python 2.7 is required for the Autobahn run");
        eprintln!(
            "SKIPPED: Autobahn|Testsuite needs Python 2.7, and none was found \
             (set PYTHON2=/path/to/python2.7)"
        );
        return;
    };
    if !has_testsuite(&python) {
        let install = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--user",
                "--quiet",
                "autobahntestsuite",
            ])
            .status()
            .expect("pip runs");
        assert!(install.success(), "pip install autobahntestsuite failed");
    }

    let server = start_with(|c| {
        c.ws_max_frame_bytes = 16 * 1024 * 1024;
        c.no_limits = true;
    });
    let dir = tempfile::tempdir().unwrap();
    let spec = serde_json::json!({
        "outdir": "./reports",
        "servers": [{"agent": "weebsockets", "url": server.ws_url("/api/echo")}],
        "cases": ["*"],
        "exclude-cases": ["12.*", "13.*"],
        "exclude-agent-cases": {}
    });
    std::fs::write(dir.path().join("fuzzingclient.json"), spec.to_string()).unwrap();
    let run = Command::new(&python)
        .args([
            "-c",
            "import sys; from autobahntestsuite.wstest import run; sys.argv[0] = 'wstest'; sys.exit(run())",
            "-m",
            "fuzzingclient",
            "-s",
            "fuzzingclient.json",
        ])
        .current_dir(dir.path())
        .output()
        .expect("wstest runs");
    assert!(
        run.status.success(),
        "wstest failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("reports/index.json")).expect("wstest wrote its report"),
    )
    .unwrap();
    let cases = index["weebsockets"]
        .as_object()
        .expect("cases for our agent");
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let mut failed = Vec::new();
    for (case, result) in cases {
        let behavior = result["behavior"].as_str().unwrap_or("?").to_owned();
        let close = result["behaviorClose"].as_str().unwrap_or("?");
        if !matches!(behavior.as_str(), "OK" | "NON-STRICT" | "INFORMATIONAL")
            || !matches!(close, "OK" | "INFORMATIONAL" | "WRONG CODE")
        {
            failed.push(format!("{case}: {behavior} / close {close}"));
        }
        *counts.entry(behavior).or_default() += 1;
    }
    eprintln!(
        "Autobahn fuzzingclient on /api/echo: {} cases, {counts:?}",
        cases.len()
    );
    assert!(cases.len() > 290, "the whole suite ran");
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}
