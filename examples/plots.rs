//! Draws the lesson's two plots from the load generator's JSON lines.
//!
//! ```sh
//! cargo run --release --example plots -- results.jsonl docs/plots [--label weebsockets]
//! ```
//!
//! - `requests_vs_clients.svg`: HTTP requests per second against the
//!   number of clients, one line per strategy (`browsers` runs with several
//!   `--clients`), with the model's prediction dashed. Polling grows with
//!   the class whether anyone talks or not; WebSocket and SSE stay at zero.
//! - `latency_vs_interval.svg`: mean delivery latency against the poll
//!   interval (`browsers` runs with several `--interval-ms`): polling pays
//!   about half an interval, the push transports do not care.
//!
//! Only plotters' SVG backend is compiled in; text is laid out with its
//! built-in font metrics, so no font files are needed.

use std::collections::BTreeMap;

use plotters::prelude::*;
use serde_json::Value;

const STRATEGIES: [(&str, RGBColor); 5] = [
    ("interval", RGBColor(220, 50, 47)),
    ("timeout", RGBColor(203, 120, 22)),
    ("longpoll", RGBColor(38, 139, 210)),
    ("websocket", RGBColor(133, 153, 0)),
    ("sse", RGBColor(108, 113, 196)),
];

type Points = BTreeMap<u64, Vec<(f64, f64)>>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(input), Some(dir)) = (args.first(), args.get(1)) else {
        eprintln!("usage: plots RESULTS.jsonl OUTPUT_DIR [--label LABEL]");
        std::process::exit(2);
    };
    let label = args
        .iter()
        .position(|a| a == "--label")
        .and_then(|i| args.get(i + 1));
    let lines: Vec<Value> = std::fs::read_to_string(input)?
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &Value| v["mode"] == "browsers")
        .filter(|v| label.is_none_or(|l| v["label"] == l.as_str()))
        .collect();
    std::fs::create_dir_all(dir)?;

    // Requests/s against clients, at the most common interval.
    let interval = most_common(&lines, "interval_ms");
    let at_interval: Vec<&Value> = lines
        .iter()
        .filter(|v| v["interval_ms"].as_u64() == interval || !is_poll(v))
        .collect();
    let measured = series(&at_interval, "clients", "/requests_per_s");
    let model = series(&at_interval, "clients", "/model_requests_per_s");
    let path = format!("{dir}/requests_vs_clients.svg");
    draw(
        &path,
        &format!(
            "HTTP requests/s vs clients (poll every {} ms; dashed: model)",
            interval.unwrap_or(0)
        ),
        "clients",
        "requests per second",
        &measured,
        &model,
    )?;
    println!("wrote {path}");

    // Latency against the poll interval, at the most common client count.
    // The push strategies were run once; their value is drawn flat across.
    let clients = most_common(&lines, "clients");
    let at_clients: Vec<&Value> = lines
        .iter()
        .filter(|v| v["clients"].as_u64() == clients)
        .collect();
    let mut measured = series(&at_clients, "interval_ms", "/latency/mean_ms");
    let mut model = series(&at_clients, "interval_ms", "/model_latency_ms");
    let xs: Vec<f64> = at_clients
        .iter()
        .filter(|v| is_poll(v))
        .filter_map(|v| v["interval_ms"].as_f64())
        .collect();
    let (lo, hi) = xs
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    if lo <= hi {
        for table in [&mut measured, &mut model] {
            for (i, (name, _)) in STRATEGIES.iter().enumerate() {
                if !matches!(*name, "longpoll" | "websocket" | "sse") {
                    continue;
                }
                if let Some(points) = table.get_mut(&(i as u64))
                    && let Some(&(_, y)) = points.first()
                {
                    *points = vec![(lo, y), (hi, y)];
                }
            }
        }
    }
    let path = format!("{dir}/latency_vs_interval.svg");
    draw(
        &path,
        &format!(
            "Mean delivery latency vs poll interval ({} clients; dashed: model)",
            clients.unwrap_or(0)
        ),
        "poll interval (ms)",
        "latency (ms)",
        &measured,
        &model,
    )?;
    println!("wrote {path}");
    Ok(())
}

fn is_poll(v: &Value) -> bool {
    v["strategy"] == "interval" || v["strategy"] == "timeout"
}

/// The value of `key` that the most lines have.
fn most_common(lines: &[Value], key: &str) -> Option<u64> {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for v in lines.iter().filter(|v| is_poll(v)) {
        if let Some(x) = v[key].as_u64() {
            *counts.entry(x).or_default() += 1;
        }
    }
    counts.into_iter().max_by_key(|&(_, n)| n).map(|(x, _)| x)
}

/// Per strategy (index into STRATEGIES), the (x, y) points sorted by x;
/// repeated runs at the same x are averaged.
fn series(lines: &[&Value], x_key: &str, y_pointer: &str) -> Points {
    let mut sums: BTreeMap<(u64, u64), (f64, f64, usize)> = BTreeMap::new();
    for v in lines {
        let Some(i) = STRATEGIES.iter().position(|(s, _)| v["strategy"] == *s) else {
            continue;
        };
        let (Some(x), Some(y)) = (
            v[x_key].as_f64(),
            v.pointer(y_pointer).and_then(Value::as_f64),
        ) else {
            continue;
        };
        let e = sums.entry((i as u64, x as u64)).or_insert((x, 0.0, 0));
        e.1 += y;
        e.2 += 1;
    }
    let mut out = Points::new();
    for ((i, _), (x, y, n)) in sums {
        out.entry(i).or_default().push((x, y / n as f64));
    }
    out
}

fn draw(
    path: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    measured: &Points,
    model: &Points,
) -> Result<(), Box<dyn std::error::Error>> {
    let all = measured.values().chain(model.values()).flatten();
    let (x_max, y_max) = all.fold((1.0f64, 1.0f64), |(a, b), &(x, y)| (a.max(x), b.max(y)));
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max * 1.05, 0.0..y_max * 1.1)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, (name, color)) in STRATEGIES.iter().enumerate() {
        let color = *color;
        if let Some(points) = model.get(&(i as u64)) {
            chart.draw_series(dashed(points, color))?;
        }
        if let Some(points) = measured.get(&(i as u64)) {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

/// A dashed line through `points`: short segments, every other one drawn.
fn dashed(points: &[(f64, f64)], color: RGBColor) -> Vec<PathElement<(f64, f64)>> {
    let mut out = Vec::new();
    for pair in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        let steps = 24;
        for k in (0..steps).step_by(2) {
            let a = k as f64 / steps as f64;
            let b = (k + 1) as f64 / steps as f64;
            out.push(PathElement::new(
                vec![
                    (x0 + (x1 - x0) * a, y0 + (y1 - y0) * a),
                    (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b),
                ],
                color.mix(0.7).stroke_width(1),
            ));
        }
    }
    out
}
