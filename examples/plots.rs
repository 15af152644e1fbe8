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
//! - `doc_keystroke_latency.svg` (from `doc class` lines): a keystroke's
//!   time until every other editor has it, per transport and server: the
//!   median as a dot, a bar up to p99, a tick at p95.
//!
//! Only plotters' SVG backend is compiled in; text is laid out with its
//! built-in font metrics, so no font files are needed.

use std::collections::BTreeMap;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use serde_json::Value;

/// Name, colour and line width. Some lines lie exactly on top of others
/// (setTimeout on setInterval when the round trip is short, SSE on
/// WebSocket at zero requests): the one underneath is drawn wide, so both
/// stay visible.
const STRATEGIES: [(&str, RGBColor, u32); 5] = [
    ("interval", RGBColor(220, 50, 47), 7),
    ("timeout", RGBColor(203, 120, 22), 2),
    ("longpoll", RGBColor(38, 139, 210), 2),
    ("websocket", RGBColor(133, 153, 0), 7),
    ("sse", RGBColor(108, 113, 196), 2),
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
    let all: Vec<Value> = std::fs::read_to_string(input)?
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &Value| label.is_none_or(|l| v["label"] == l.as_str()))
        .collect();
    std::fs::create_dir_all(dir)?;
    let doc: Vec<&Value> = all.iter().filter(|v| v["mode"] == "doc-class").collect();
    if !doc.is_empty() {
        let path = format!("{dir}/doc_keystroke_latency.svg");
        draw_doc_latency(&path, &doc)?;
        println!("wrote {path}");
    }
    let lines: Vec<Value> = all
        .into_iter()
        .filter(|v| v["mode"] == "browsers")
        .collect();
    if lines.is_empty() {
        return Ok(());
    }

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
        Scale::Linear,
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
            for (i, (name, _, _)) in STRATEGIES.iter().enumerate() {
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
        "latency (ms, log scale)",
        // Polling's hundreds of milliseconds and push's few share one
        // chart only on a log scale.
        Scale::Log,
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
        let Some(i) = STRATEGIES.iter().position(|(s, _, _)| v["strategy"] == *s) else {
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

/// How the y axis is scaled.
#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    Log,
}

fn draw(
    path: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    scale: Scale,
    measured: &Points,
    model: &Points,
) -> Result<(), Box<dyn std::error::Error>> {
    let all: Vec<(f64, f64)> = measured
        .values()
        .chain(model.values())
        .flatten()
        .copied()
        .collect();
    let x_max = all.iter().fold(1.0f64, |a, &(x, _)| a.max(x)) * 1.05;
    let y_max = all.iter().fold(1.0f64, |a, &(_, y)| a.max(y));
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64);
    let whole = |v: &f64| format!("{v:.0}");
    match scale {
        Scale::Linear => {
            let mut chart = builder.build_cartesian_2d(0.0..x_max, 0.0..y_max * 1.1)?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&whole)
                .y_label_formatter(&whole)
                .light_line_style(WHITE.mix(0.0))
                .draw()?;
            draw_lines(&mut chart, measured, model, |y| y)?;
        }
        Scale::Log => {
            // A log axis has no zero: anything under LOG_FLOOR ms sits on it.
            let floor = |y: f64| y.max(LOG_FLOOR);
            let mut chart =
                builder.build_cartesian_2d(0.0..x_max, (LOG_FLOOR..y_max * 2.0).log_scale())?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&whole)
                .y_label_formatter(&|v| {
                    if *v < 1.0 {
                        format!("{v:.1}")
                    } else {
                        whole(v)
                    }
                })
                .light_line_style(WHITE.mix(0.0))
                .draw()?;
            draw_lines(&mut chart, measured, model, floor)?;
        }
    }
    root.present()?;
    Ok(())
}

/// The bottom of the log-scale axis, in ms.
const LOG_FLOOR: f64 = 0.5;

/// Every strategy's measured line (solid, with points) and model (dashed),
/// and the legend. `y` maps a value onto the axis (the log scale's floor).
fn draw_lines<'a, DB, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    measured: &Points,
    model: &Points,
    y: impl Fn(f64) -> f64,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let on_axis = |points: &[(f64, f64)]| -> Vec<(f64, f64)> {
        points.iter().map(|&(px, py)| (px, y(py))).collect()
    };
    for (i, (name, color, width)) in STRATEGIES.iter().enumerate() {
        let (color, width) = (*color, *width);
        // A wide line is pale, so the one drawn over it shows.
        let line = if width > 2 {
            color.mix(0.45).stroke_width(width)
        } else {
            color.stroke_width(width)
        };
        if let Some(points) = model.get(&(i as u64)) {
            chart
                .draw_series(dashed(&on_axis(points), color))
                .map_err(|e| e.to_string())?;
        }
        if let Some(points) = measured.get(&(i as u64)) {
            let points = on_axis(points);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), line))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], line));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| e.to_string())?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())
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

/// Servers in the document plot, and their colours.
const SERVERS: [(&str, RGBColor); 2] = [
    ("weebsockets", RGBColor(133, 153, 0)),
    ("sharedb", RGBColor(211, 54, 130)),
];

/// `doc class` results: per transport (x) and server (side by side), the
/// keystroke-to-every-editor latency — p50 a dot, p95 a tick, a bar to
/// p99 — on a log scale (polling's second and push's milliseconds). Runs
/// of the same transport and server are summarised by their medians.
fn draw_doc_latency(path: &str, lines: &[&Value]) -> Result<(), Box<dyn std::error::Error>> {
    let transports: Vec<&str> = STRATEGIES.iter().map(|(name, _, _)| *name).collect();
    let median = |mut v: Vec<f64>| -> Option<f64> {
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| v[v.len() / 2])
    };
    // One class size and typing rate: the one most lines have.
    let mut shapes = BTreeMap::<(u64, String), usize>::new();
    for v in lines {
        let shape = (v["editors"].as_u64().unwrap_or(0), v["rate"].to_string());
        *shapes.entry(shape).or_default() += 1;
    }
    let (editors, rate) = shapes
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(shape, _)| shape)
        .unwrap_or_default();
    let rate_value: Value = serde_json::from_str(&rate).unwrap_or_default();
    // (transport index, server index) → (p50, p95, p99).
    let mut points: BTreeMap<(usize, usize), (f64, f64, f64)> = BTreeMap::new();
    for (t, transport) in transports.iter().enumerate() {
        for (s, (server, _)) in SERVERS.iter().enumerate() {
            let runs: Vec<&&Value> = lines
                .iter()
                .filter(|v| v["transport"] == *transport && v["label"] == *server)
                .filter(|v| v["editors"].as_u64() == Some(editors) && v["rate"] == rate_value)
                .collect();
            let get =
                |p: &str| median(runs.iter().filter_map(|v| v.pointer(p)?.as_f64()).collect());
            if let (Some(a), Some(b), Some(c)) = (
                get("/every_editor/p50_ms"),
                get("/every_editor/p95_ms"),
                get("/every_editor/p99_ms"),
            ) {
                points.insert((t, s), (a, b, c));
            }
        }
    }
    let y_max = points.values().fold(1.0f64, |a, p| a.max(p.2)) * 2.0;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Keystroke to every editor, {editors} editors at {rate} keystrokes/s (log scale)"
            ),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            -0.5..(transports.len() as f64 - 0.5),
            (LOG_FLOOR..y_max).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("transport (dot: median, tick: p95, bar top: p99)")
        .y_desc("ms")
        .x_labels(transports.len())
        .x_label_formatter(&|x: &f64| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                transports.get(i as usize).copied().unwrap_or("").to_owned()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v: &f64| {
            if *v < 1.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            }
        })
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (s, (server, color)) in SERVERS.iter().enumerate() {
        let color = *color;
        let dx = (s as f64 - 0.5) * 0.3;
        let floor = |y: f64| y.max(LOG_FLOOR);
        let mut first = true;
        for ((t, _), &(p50, p95, p99)) in points.iter().filter(|((_, si), _)| *si == s) {
            let x = *t as f64 + dx;
            let bar = chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, floor(p50)), (x, floor(p99))],
                color.mix(0.6).stroke_width(6),
            )))?;
            if first {
                bar.label(*server).legend(move |(lx, ly)| {
                    PathElement::new(vec![(lx, ly), (lx + 18, ly)], color.stroke_width(6))
                });
                first = false;
            }
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x - 0.06, floor(p95)), (x + 0.06, floor(p95))],
                color.stroke_width(2),
            )))?;
            chart.draw_series(std::iter::once(Circle::new(
                (x, floor(p50)),
                5,
                color.filled(),
            )))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}
