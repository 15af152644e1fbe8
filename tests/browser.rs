//! Runs the browser suite (`tests/browser/*.test.mjs`) from `cargo test`.
//!
//! The classroom pages are JavaScript, so their tests drive a real browser:
//! headless Chromium through `playwright-core`, under Node's built-in test
//! runner. Each test file starts this crate's own server binary on port 0.
//! This wrapper finds the tools, installs the pinned npm dependencies when
//! they are missing, runs the suite and fails with its output if it fails.
//!
//! Needs `node` (20 or newer) and Debian's `chromium` (or `CHROMIUM_PATH`).
//! Set `WEEBSOCKETS_SKIP_BROWSER=1` to skip it on a machine without them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs every browser test file against the server binary cargo just built.
#[test]
fn browser_suite() {
    if std::env::var_os("WEEBSOCKETS_SKIP_BROWSER").is_some_and(|v| v == "1") {
        println!("browser suite skipped (WEEBSOCKETS_SKIP_BROWSER=1)");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");

    let chromium = std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "the browser tests need Chromium at {}, which is missing.\n\
         Install it with `sudo apt-get install chromium` (Debian/Ubuntu), or point \
         CHROMIUM_PATH at a Chromium/Chrome binary. To skip the browser tests, set \
         WEEBSOCKETS_SKIP_BROWSER=1.",
        chromium.display()
    );
    let node_version = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => panic!(
            "the browser tests need Node.js 20 or newer (`node` on PATH), which is missing.\n\
             Install it with `sudo apt-get install nodejs npm` (or from nodejs.org). To skip \
             the browser tests, set WEEBSOCKETS_SKIP_BROWSER=1."
        ),
    };
    let (major, minor) = parse_node_version(&node_version);
    assert!(
        major >= 20,
        "the browser tests need Node.js 20 or newer; found {node_version}. To skip them, set \
         WEEBSOCKETS_SKIP_BROWSER=1."
    );

    let installed = ["playwright-core", "axe-core"]
        .iter()
        .all(|package| dir.join("node_modules").join(package).exists());
    if !installed {
        // `npm ci` installs exactly what package-lock.json pins:
        // playwright-core (which downloads no browser of its own) and
        // axe-core (the accessibility checks).
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .expect("could not run npm (it comes with Node.js: `sudo apt-get install npm`)");
        check("npm ci", &out);
    }

    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/browser exists")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".test.mjs"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no browser test files in {}",
        dir.display()
    );

    let mut node = Command::new("node");
    node.arg("--test");
    // One file at a time: each starts a server and a browser, and the
    // machine may have two cores. (The flag exists from Node 20.10 on.)
    if (major, minor) >= (20, 10) {
        node.arg("--test-concurrency=1");
    }
    let out = node
        .args(&files)
        .current_dir(&dir)
        .env("WEEBSOCKETS_BIN", env!("CARGO_BIN_EXE_weebsockets"))
        .env("CHROMIUM_PATH", &chromium)
        .output()
        .expect("could not run node");
    check("node --test (browser suite)", &out);
    // Shown with `cargo test -- --nocapture`.
    println!("{}", String::from_utf8_lossy(&out.stdout));
}

/// `v20.11.1` → (20, 11)
fn parse_node_version(version: &str) -> (u32, u32) {
    let mut parts = version.trim_start_matches('v').split('.');
    let mut next = || parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (next(), next())
}

/// Fails the test with the command's whole output if it failed.
fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
