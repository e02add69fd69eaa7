//! The table on standard output, `latest.csv`, and the bar chart `latest.png`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One measured scenario.
#[derive(Clone, Debug)]
pub struct Row {
    pub scenario: String,
    pub algorithm: String,
    pub backend: String,
    pub keys: u64,
    pub connections: usize,
    pub seconds: f64,
    pub ok: u64,
    pub errors: u64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// requests/s over the baseline's requests/s of the same run.
    pub ratio: Option<f64>,
    /// Resident memory of the server process after its last phase, MiB.
    pub rss_mib: Option<f64>,
}

/// `12345.6` as `12,346`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}"))
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:<6} {:<14} {:>5} {:>12} {:>9} {:>9} {:>7} {:>8}",
        "scenario", "alg", "backend", "conns", "requests/s", "p50 ms", "p99 ms", "errors", "x base"
    );
    let _ = writeln!(out, "{}", "-".repeat(104));
    for r in rows {
        let _ = writeln!(
            out,
            "{:<28} {:<6} {:<14} {:>5} {:>12} {:>9.2} {:>9.2} {:>7} {:>8}",
            r.scenario,
            r.algorithm,
            r.backend,
            r.connections,
            thousands(r.requests_per_second),
            r.p50_ms,
            r.p99_ms,
            r.errors,
            ratio_text(r.ratio),
        );
    }
    out
}

pub fn write_csv(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let mut out = String::from(
        "scenario,algorithm,backend,keys,connections,seconds,requests_ok,errors,\
         requests_per_sec,p50_ms,p90_ms,p99_ms,max_ms,ratio_to_baseline,server_rss_mib\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.1},{},{},{:.1},{:.3},{:.3},{:.3},{:.3},{},{}",
            r.scenario,
            r.algorithm,
            r.backend,
            r.keys,
            r.connections,
            r.seconds,
            r.ok,
            r.errors,
            r.requests_per_second,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            r.ratio.map_or_else(String::new, |v| format!("{v:.3}")),
            r.rss_mib.map_or_else(String::new, |v| format!("{v:.1}")),
        );
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Registers DejaVu Sans for plotters' ab_glyph text; false (with a warning) when missing.
pub fn load_font() -> bool {
    let bytes = match std::fs::read(FONT_PATH) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("warning: cannot read {FONT_PATH} ({e}); skipping the chart");
            return false;
        }
    };
    // plotters keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    match plotters::style::register_font("sans-serif", FontStyle::Normal, bytes) {
        Ok(()) => true,
        Err(_) => {
            eprintln!("warning: {FONT_PATH} is not a usable font; skipping the chart");
            false
        }
    }
}

/// A horizontal bar per row: requests/s, labelled with the value and the baseline ratio.
pub fn write_chart(path: &Path, rows: &[Row], title: &str) -> anyhow::Result<()> {
    let n = rows.len().max(1) as u32;
    let height = 140 + 44 * n;
    let root = BitMapBackend::new(path, (1400, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = rows
        .iter()
        .map(|r| r.requests_per_second)
        .fold(1.0_f64, f64::max);
    let labels: Vec<String> = rows
        .iter()
        .map(|r| format!("{} ({}, {})", r.scenario, r.algorithm, r.backend))
        .collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(380)
        // A u32 range is inclusive here: 0..n-1 makes n segments.
        .build_cartesian_2d(0.0..max * 1.32, (0u32..n - 1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_desc("requests/s (closed loop; label: requests/s, ratio to baseline, p99)")
        .x_label_formatter(&|v| thousands(*v))
        .y_label_formatter(&|v| match v {
            // The first row on top.
            SegmentValue::CenterOf(i) => labels
                .get((n - 1 - *i) as usize)
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        })
        .y_labels(n as usize)
        .label_style(("sans-serif", 15))
        .draw()?;
    let colour = |r: &Row| {
        if r.scenario.starts_with("peer") {
            RGBColor(200, 110, 40)
        } else if r.scenario.contains("baseline") {
            RGBColor(120, 120, 120)
        } else {
            RGBColor(40, 100, 180)
        }
    };
    for (i, r) in rows.iter().enumerate() {
        let y = n - 1 - i as u32;
        chart.draw_series(std::iter::once(Rectangle::new(
            [
                (0.0, SegmentValue::Exact(y)),
                (r.requests_per_second, SegmentValue::Exact(y + 1)),
            ],
            colour(r).filled(),
        )))?;
        // A white outline keeps neighbouring bars apart.
        chart.draw_series(std::iter::once(Rectangle::new(
            [
                (0.0, SegmentValue::Exact(y)),
                (r.requests_per_second, SegmentValue::Exact(y + 1)),
            ],
            ShapeStyle {
                color: WHITE.to_rgba(),
                filled: false,
                stroke_width: 6,
            },
        )))?;
        let label = format!(
            "{}/s  x{}  p99 {:.1} ms{}",
            thousands(r.requests_per_second),
            ratio_text(r.ratio),
            r.p99_ms,
            if r.errors > 0 {
                format!("  ({} errors)", r.errors)
            } else {
                String::new()
            }
        );
        chart.draw_series(std::iter::once(Text::new(
            label,
            (
                r.requests_per_second + max * 0.01,
                SegmentValue::CenterOf(y),
            ),
            ("sans-serif", 15)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        )))?;
    }
    root.present()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.8), "1,234,568");
    }

    #[test]
    fn a_chart_is_drawn() {
        if !load_font() {
            return;
        }
        let row = |scenario: &str, rps: f64| Row {
            scenario: scenario.into(),
            algorithm: "ES256".into(),
            backend: "sqlite".into(),
            keys: 100,
            connections: 64,
            seconds: 3.0,
            ok: (rps * 3.0) as u64,
            errors: 0,
            requests_per_second: rps,
            p50_ms: 1.0,
            p90_ms: 2.0,
            p99_ms: 3.0,
            max_ms: 4.0,
            ratio: Some(rps / 50_000.0),
            rss_mib: None,
        };
        let rows = [
            row("baseline", 50_000.0),
            row("token_warm", 25_000.0),
            row("peer_token", 5_000.0),
        ];
        let path = std::env::temp_dir().join(format!("keygate-bench-{}.png", std::process::id()));
        write_chart(&path, &rows, "test").unwrap();
        let written = std::fs::metadata(&path).unwrap().len();
        std::fs::remove_file(&path).unwrap();
        assert!(written > 1000);
    }
}
