//! `loadgen report`: medians of repeated runs, and one server against
//! another.
//!
//! Reads the JSON lines that `--json` wrote (each line carries the
//! `--label` of the server it measured), groups the lines of the same
//! scenario, takes the median of each headline figure per label, and
//! prints `label / baseline` for each. Medians because this machine is
//! shared and noisy: one slow run should not decide a comparison.

use std::collections::BTreeMap;

use serde_json::Value;

/// The headline figures of each mode: (name, JSON pointer, higher is better).
fn figures(mode: &str) -> &'static [(&'static str, &'static str, bool)] {
    match mode {
        "browsers" => &[
            ("requests/s", "/requests_per_s", false),
            ("bytes/message", "/bytes_per_message", false),
            ("latency p50 ms", "/latency/p50_ms", false),
            ("latency p99 ms", "/latency/p99_ms", false),
            ("server CPU s", "/usage/server_cpu_s", false),
        ],
        "posts" => &[
            ("acked/s", "/acked_per_s", true),
            ("ack p50 ms", "/ack/p50_ms", false),
            ("ack p99 ms", "/ack/p99_ms", false),
        ],
        "empty-polls" => &[
            ("requests/s", "/requests_per_s", true),
            ("p99 ms", "/latency/p99_ms", false),
        ],
        "fanout" => &[
            ("p50 ms", "/latency/p50_ms", false),
            ("p99 ms", "/latency/p99_ms", false),
            ("every client p99 ms", "/every_client/p99_ms", false),
            ("server µs/delivery", "/server_us_per_delivery", false),
            (
                "marginal µs/deliv.",
                "/server_marginal_us_per_delivery",
                false,
            ),
            ("lost", "/lost", false),
        ],
        "idle-memory" => &[
            ("KiB/connection", "/kib_per_connection", false),
            ("anon KiB/connection", "/anon_kib_per_connection", false),
        ],
        "connect-burst" => &[
            ("all connected ms", "/all_connected_ms", false),
            ("listen overflows", "/listen_overflows", false),
        ],
        // The shared document (`loadgen doc …`).
        "doc-class" => &[
            ("requests/keystroke", "/requests_per_keystroke", false),
            ("bytes/keystroke", "/bytes_per_keystroke", false),
            ("every editor p50 ms", "/every_editor/p50_ms", false),
            ("every editor p99 ms", "/every_editor/p99_ms", false),
            ("every editor max ms", "/every_editor/max_ms", false),
            ("server CPU s", "/usage/server_cpu_s", false),
            ("server peak RSS MiB", "/server_peak_rss_mib", false),
            ("lost", "/lost", false),
            ("diverged", "/diverged", false),
        ],
        "doc-replay" => &[
            ("acked edits/s", "/edits_per_s", true),
            ("ack p99 ms", "/ack/p99_ms", false),
            ("server CPU µs/edit", "/server_cpu_us_per_edit", false),
        ],
        "doc-concurrent" => &[
            ("seconds", "/seconds", false),
            ("transformed %", "/transformed_pct", true),
            (
                "server CPU µs/submission",
                "/server_cpu_us_per_submission",
                false,
            ),
            ("differing chars", "/differing_chars", false),
        ],
        "doc-idle" => &[
            ("KiB/connection", "/kib_per_connection", false),
            ("anon KiB/connection", "/anon_kib_per_connection", false),
        ],
        _ => &[],
    }
}

/// What makes two lines the same scenario.
fn scenario(line: &Value) -> String {
    let mode = line["mode"].as_str().unwrap_or("?");
    let keys: &[&str] = match mode {
        "browsers" => &[
            "strategy",
            "clients",
            "interval_ms",
            "rate",
            "lab_latency_ms",
        ],
        "posts" | "empty-polls" => &["connections"],
        "fanout" => &["kind", "clients", "messages"],
        "idle-memory" => &["kind", "clients"],
        "connect-burst" => &["clients", "at_once"],
        "doc-class" => &["transport", "editors", "rate", "typing", "lab_latency_ms"],
        "doc-replay" => &["trace", "window", "watchers"],
        "doc-concurrent" => &["trace", "lab_latency_ms"],
        "doc-idle" => &["topic", "kind", "clients"],
        _ => &[],
    };
    let mut out = mode.to_owned();
    for key in keys {
        let v = &line[*key];
        out.push(' ');
        out.push_str(key);
        out.push('=');
        out.push_str(&v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    }
    out
}

pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// Prints the comparison; returns the lines read.
pub fn report(files: &[std::path::PathBuf], baseline: Option<&str>) -> Result<(), String> {
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            lines.push(serde_json::from_str::<Value>(line).map_err(|e| e.to_string())?);
        }
    }
    // scenario → figure → label → values
    type Values = BTreeMap<String, Vec<f64>>;
    let mut table: BTreeMap<String, BTreeMap<&str, Values>> = BTreeMap::new();
    let mut labels: Vec<String> = Vec::new();
    for line in &lines {
        let mode = line["mode"].as_str().unwrap_or("?");
        if figures(mode).is_empty() {
            continue;
        }
        let label = line["label"].as_str().unwrap_or("?").to_owned();
        if !labels.contains(&label) {
            labels.push(label.clone());
        }
        let row = table.entry(scenario(line)).or_default();
        for (name, pointer, _) in figures(mode) {
            if let Some(x) = line.pointer(pointer).and_then(Value::as_f64) {
                row.entry(name)
                    .or_default()
                    .entry(label.clone())
                    .or_default()
                    .push(x);
            }
        }
    }
    let baseline = baseline
        .map(str::to_owned)
        .or_else(|| labels.last().cloned())
        .unwrap_or_default();
    let others: Vec<&String> = labels.iter().filter(|l| **l != baseline).collect();
    // Columns as wide as the longest scenario and figure name.
    let width = table.keys().map(|s| s.chars().count()).max().unwrap_or(0);
    let name_width = table
        .keys()
        .flat_map(|s| figures(s.split(' ').next().unwrap_or("")))
        .map(|(name, _, _)| name.chars().count())
        .max()
        .unwrap_or(0)
        .max("figure (median)".len());
    print!("{:<width$} {:<name_width$}", "scenario", "figure (median)");
    for label in &others {
        print!(" {label:>12}");
    }
    print!(" {baseline:>12}");
    for label in &others {
        print!(" {:>14}", format!("{label}/{baseline}"));
    }
    println!();
    for (scenario, row) in &table {
        let mode = scenario.split(' ').next().unwrap_or("");
        for (name, _, higher_better) in figures(mode) {
            let Some(by_label) = row.get(name) else {
                continue;
            };
            let med = |label: &str| {
                by_label
                    .get(label)
                    .cloned()
                    .and_then(|mut v| median(&mut v))
            };
            let base = med(&baseline);
            print!("{scenario:<width$} {name:<name_width$}");
            let mut ratios = Vec::new();
            for label in &others {
                let m = med(label);
                print!(" {:>12}", m.map_or("—".into(), |x| format!("{x:.2}")));
                ratios.push(match (m, base) {
                    (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
                    _ => "—".into(),
                });
            }
            print!(" {:>12}", base.map_or("—".into(), |x| format!("{x:.2}")));
            for r in ratios {
                print!(" {r:>14}");
            }
            let runs = by_label.values().map(Vec::len).max().unwrap_or(0);
            println!(
                "  ({} better, n={runs})",
                if *higher_better { "higher" } else { "lower" }
            );
        }
    }
    Ok(())
}
