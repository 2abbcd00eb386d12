//! Plots and the HTML report: loss/accuracy curves, confusion matrix, model-comparison bar chart.
//!
//! Charts are SVG written here (no plotting dependency to compile, no fonts to find: text is
//! SVG text). The HTML report inlines them, so `report.html` is one self-contained file that
//! opens in any browser; the same SVGs are also written as files for papers and slides.

use std::fmt::Write as _;
use std::path::Path;

use fer_core::{Emotion, NUM_EMOTIONS};

use crate::metrics::{Confusion, Report};
use crate::train::Epoch;

/// Series colours (colour-blind safe, Okabe-Ito).
pub const PALETTE: [&str; 8] = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];

const W: f64 = 560.0;
const H: f64 = 360.0;
/// Plot area margins: left, right, top, bottom.
const M: (f64, f64, f64, f64) = (64.0, 150.0, 40.0, 52.0);

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// "Nice" axis ticks covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= 6.0).unwrap_or(10.0 * mag);
    // Multiples of the step, rounded to the step's decimals (3 x 0.2 is 0.6, not 0.6000000000000001).
    let scale = 10f64.powi((-step.log10().floor()).max(0.0) as i32 + 1);
    let first = (lo / step - 1e-9).ceil() as i64;
    (first..).map(|k| (k as f64 * step * scale).round() / scale).take_while(|t| *t <= hi + step * 1e-9).collect()
}

fn fmt_tick(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn header(out: &mut String, title: &str, w: f64, h: f64) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12"><rect width="{w}" height="{h}" fill="white"/><text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        w / 2.0,
        esc(title)
    );
}

/// Horizontal grid lines with their labels at the y ticks, from `pl` to `pr`.
fn y_grid(s: &mut String, ticks: Vec<f64>, sy: impl Fn(f64) -> f64, pl: f64, pr: f64) {
    for t in ticks {
        let y = sy(t);
        let _ = write!(
            s,
            r##"<line x1="{pl}" y1="{y:.1}" x2="{pr}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            pl - 6.0,
            y + 4.0,
            fmt_tick(t)
        );
    }
}

/// A named series of `(x, y)` points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// Line chart with axes, ticks, grid and a legend.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let (y0, y1) = (if y0 >= 0.0 { (y0 - pad).max(0.0) } else { y0 - pad }, y1 + pad);
    let (pl, pr, pt, pb) = (M.0, W - M.1, M.2, H - M.3);
    let sx = |x: f64| pl + (x - x0) / (x1 - x0) * (pr - pl);
    let sy = |y: f64| pb - (y - y0) / (y1 - y0) * (pb - pt);
    let mut s = String::new();
    header(&mut s, title, W, H);
    y_grid(&mut s, ticks(y0, y1), sy, pl, pr);
    for t in ticks(x0, x1) {
        let x = sx(t);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{pb}" x2="{x:.1}" y2="{}" stroke="#444"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            pb + 5.0,
            pb + 18.0,
            fmt_tick(t)
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{pl}" y="{pt}" width="{}" height="{}" fill="none" stroke="#444"/><text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text>"##,
        pr - pl,
        pb - pt,
        (pl + pr) / 2.0,
        H - 12.0,
        esc(x_label),
        (pt + pb) / 2.0,
        esc(y_label)
    );
    for (i, ser) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let dash = if ser.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let path: Vec<String> = ser
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="series" data-name="{}" points="{}" fill="none" stroke="{c}" stroke-width="2"{dash}/>"#,
            esc(ser.name),
            path.join(" ")
        );
        let ly = pt + 14.0 + 20.0 * i as f64;
        let _ = write!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            pr + 10.0,
            pr + 34.0,
            pr + 40.0,
            ly + 4.0,
            esc(ser.name)
        );
    }
    s.push_str("</svg>");
    s
}

/// Loss and accuracy curves of one training run: `(loss chart, accuracy chart)`.
pub fn curves(history: &[Epoch]) -> (String, String) {
    let pick = |f: fn(&Epoch) -> f64| history.iter().map(|e| (e.epoch as f64, f(e))).collect::<Vec<_>>();
    let loss = line_chart(
        "Loss",
        "epoch",
        "cross-entropy",
        &[
            Series { name: "train", points: pick(|e| e.train_loss), dashed: false },
            Series { name: "validation", points: pick(|e| e.val_loss), dashed: true },
        ],
    );
    let acc = line_chart(
        "Accuracy",
        "epoch",
        "accuracy",
        &[
            Series { name: "train", points: pick(|e| e.train_accuracy), dashed: false },
            Series { name: "validation", points: pick(|e| e.val_accuracy), dashed: true },
        ],
    );
    (loss, acc)
}

/// Grouped vertical bar chart on a 0..1 axis: one group per category, one bar per series.
pub fn bar_chart(title: &str, y_label: &str, categories: &[String], series: &[(&str, Vec<f64>)]) -> String {
    let (pl, pr, pt, pb) = (M.0, W - M.1, M.2, H - M.3 - 20.0);
    let sy = |y: f64| pb - y.clamp(0.0, 1.0) * (pb - pt);
    let mut s = String::new();
    header(&mut s, title, W, H);
    y_grid(&mut s, ticks(0.0, 1.0), sy, pl, pr);
    let group = (pr - pl) / categories.len().max(1) as f64;
    let bar = group * 0.8 / series.len().max(1) as f64;
    for (ci, cat) in categories.iter().enumerate() {
        let gx = pl + group * ci as f64 + group * 0.1;
        for (si, (name, values)) in series.iter().enumerate() {
            let v = values.get(ci).copied().unwrap_or(f64::NAN);
            if !v.is_finite() {
                continue;
            }
            let x = gx + bar * si as f64;
            let _ = write!(
                s,
                r#"<rect class="bar" data-series="{}" data-category="{}" data-value="{v}" x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{:.3}</text>"#,
                esc(name),
                esc(cat),
                sy(v),
                bar * 0.95,
                pb - sy(v),
                PALETTE[si % PALETTE.len()],
                x + bar * 0.475,
                sy(v) - 3.0,
                v
            );
        }
        // Slanted so that long model names do not run into each other.
        let (lx, ly) = (gx + group * 0.4, pb + 14.0);
        let _ = write!(
            s,
            r#"<text x="{lx:.1}" y="{ly}" text-anchor="end" transform="rotate(-25 {lx:.1} {ly})">{}</text>"#,
            esc(cat)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{pl}" y1="{pb}" x2="{pr}" y2="{pb}" stroke="#444"/><text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text>"##,
        (pt + pb) / 2.0,
        esc(y_label)
    );
    for (si, (name, _)) in series.iter().enumerate() {
        let ly = pt + 14.0 + 20.0 * si as f64;
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="14" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            pr + 10.0,
            ly - 6.0,
            PALETTE[si % PALETTE.len()],
            pr + 30.0,
            ly + 4.0,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// Confusion matrix heat map: rows = true class, columns = predicted; cells shaded by the
/// row-normalised rate (recall on the diagonal), labelled with counts.
pub fn confusion_chart(c: &Confusion) -> String {
    let cell = 52.0;
    let (ox, oy) = (110.0, 70.0);
    let (w, h) = (ox + cell * NUM_EMOTIONS as f64 + 20.0, oy + cell * NUM_EMOTIONS as f64 + 50.0);
    let mut s = String::new();
    header(&mut s, "Confusion matrix (rows: true, columns: predicted)", w, h);
    for (t, row) in c.counts.iter().enumerate() {
        let n: u64 = row.iter().sum();
        for (p, &count) in row.iter().enumerate() {
            let rate = if n > 0 { count as f64 / n as f64 } else { 0.0 };
            // White to #0072B2 by rate.
            let mix = |full: u8| (255.0 - rate * (255.0 - full as f64)).round() as u8;
            let (x, y) = (ox + cell * p as f64, oy + cell * t as f64);
            let ink = if rate > 0.5 { "white" } else { "black" };
            let _ = write!(
                s,
                r##"<rect class="cell" data-true="{t}" data-predicted="{p}" data-count="{count}" x="{x}" y="{y}" width="{cell}" height="{cell}" fill="#{:02x}{:02x}{:02x}" stroke="#888"/><text x="{}" y="{}" text-anchor="middle" fill="{ink}">{count}</text>"##,
                mix(0x00),
                mix(0x72),
                mix(0xB2),
                x + cell / 2.0,
                y + cell / 2.0 + 4.0
            );
        }
    }
    for (i, e) in Emotion::ALL.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            ox - 6.0,
            oy + cell * i as f64 + cell / 2.0 + 4.0,
            e.name(),
            ox + cell * i as f64 + cell / 2.0,
            oy - 8.0,
            e.name()
        );
    }
    s.push_str("</svg>");
    s
}

/// Per-class precision/recall/F1 as an HTML table.
pub fn metrics_table(r: &Report) -> String {
    let mut s =
        String::from("<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>");
    for c in &r.per_class {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td></tr>",
            c.label.name(),
            c.precision,
            c.recall,
            c.f1,
            c.support
        );
    }
    let _ = write!(
        s,
        "<tr><th>accuracy</th><td colspan=\"4\">{:.4} ({} images)</td></tr><tr><th>macro-F1</th><td colspan=\"4\">{:.4}</td></tr></table>",
        r.accuracy, r.total, r.macro_f1
    );
    s
}

/// One model's section: metrics table, curves and confusion matrix.
pub fn run_section(title: &str, report: &Report, history: &[Epoch], notes: &str) -> String {
    let (loss, acc) = curves(history);
    format!(
        "<section><h2>{}</h2><p>{}</p>{}<div class=\"charts\">{loss}{acc}{}</div></section>",
        esc(title),
        esc(notes),
        metrics_table(report),
        confusion_chart(&report.confusion)
    )
}

/// A whole self-contained HTML page (inline CSS and SVG, nothing fetched).
pub fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>\
body{{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}}\
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #bbb;padding:4px 10px;text-align:right}}\
th{{background:#f3f3f3}}.charts svg{{margin:8px;vertical-align:top}}</style></head>\
<body><h1>{t}</h1>{body}<p><small>Written by fer-train {v}.</small></p></body></html>\n",
        t = esc(title),
        v = env!("CARGO_PKG_VERSION")
    )
}

/// Writes `name` into `dir`, naming the file on error.
pub fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    let p = dir.join(name);
    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
}

/// Writes a training run's plots (loss.svg, accuracy.svg, confusion.svg) and report.html.
pub fn write_run(dir: &Path, title: &str, report: &Report, history: &[Epoch], notes: &str) -> anyhow::Result<()> {
    let (loss, acc) = curves(history);
    write(dir, "loss.svg", &loss)?;
    write(dir, "accuracy.svg", &acc)?;
    write(dir, "confusion.svg", &confusion_chart(&report.confusion))?;
    write(dir, "report.html", &html_page(title, &run_section(title, report, history, notes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(n: &roxmltree::Node, a: &str) -> f64 {
        n.attribute(a).unwrap().parse().unwrap()
    }

    #[test]
    fn bars_are_proportional_to_values_and_parse_as_svg() {
        let svg = bar_chart(
            "t",
            "accuracy",
            &["a".into(), "b".into()],
            &[("accuracy", vec![0.9, 0.45]), ("macro-F1", vec![0.3, 0.6])],
        );
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let bars: Vec<_> = doc.descendants().filter(|n| n.attribute("class") == Some("bar")).collect();
        assert_eq!(bars.len(), 4);
        let h: Vec<f64> = bars.iter().map(|b| attr(b, "height")).collect();
        // Heights in the order drawn: a/accuracy, a/macro-F1, b/accuracy, b/macro-F1.
        assert!((h[0] / h[2] - 2.0).abs() < 1e-2, "{h:?}");
        assert!((h[3] / h[1] - 2.0).abs() < 1e-2, "{h:?}");
        // Bars stand on the same baseline.
        let base: Vec<f64> = bars.iter().map(|b| attr(b, "y") + attr(b, "height")).collect();
        assert!(base.iter().all(|b| (b - base[0]).abs() < 0.2), "{base:?}");
    }

    #[test]
    fn curve_points_map_linearly_onto_the_plot() {
        let svg = line_chart(
            "t",
            "x",
            "y",
            &[Series { name: "s", points: vec![(1.0, 0.0), (2.0, 0.5), (3.0, 1.0)], dashed: false }],
        );
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let line = doc.descendants().find(|n| n.attribute("class") == Some("series")).unwrap();
        let p: Vec<(f64, f64)> = line
            .attribute("points")
            .unwrap()
            .split(' ')
            .map(|xy| {
                let (x, y) = xy.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        // Equal steps in data are equal steps on screen; larger y is higher (smaller SVG y).
        assert!(((p[1].0 - p[0].0) - (p[2].0 - p[1].0)).abs() < 0.2);
        assert!(((p[0].1 - p[1].1) - (p[1].1 - p[2].1)).abs() < 0.2);
        assert!(p[2].1 < p[0].1);
    }

    #[test]
    fn confusion_cells_carry_the_counts() {
        let mut c = Confusion::default();
        for _ in 0..5 {
            c.add(3, 3);
        }
        c.add(3, 4);
        c.add(0, 6);
        let svg = confusion_chart(&c);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let cells: Vec<_> = doc.descendants().filter(|n| n.attribute("class") == Some("cell")).collect();
        assert_eq!(cells.len(), 49);
        for n in cells {
            let (t, p): (usize, usize) = (attr(&n, "data-true") as usize, attr(&n, "data-predicted") as usize);
            assert_eq!(attr(&n, "data-count") as u64, c.counts[t][p]);
        }
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(ticks(1.0, 30.0), vec![5.0, 10.0, 15.0, 20.0, 25.0, 30.0]);
    }
}
