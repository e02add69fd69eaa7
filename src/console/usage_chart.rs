//! The usage chart of a key's page: server-rendered SVG bars (tokens issued and direct calls
//! over refused requests), one per hour of the last day or per day of the last 30, with the
//! numbers beside it for readers who do not see the chart.

use crate::service::usage::UsageReport;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 140.0;

/// One bar, in SVG user units.
pub struct Bar {
    pub x: String,
    pub width: String,
    pub used_y: String,
    pub used_height: String,
    pub refused_y: String,
    pub refused_height: String,
    /// What the bar shows, in words (its tooltip).
    pub label: String,
}

pub struct UsageChart {
    pub by_day: bool,
    pub bars: Vec<Bar>,
    /// The tallest bar's count: the scale.
    pub peak: i64,
    pub tokens_issued: i64,
    pub direct_calls: i64,
    pub introspections: i64,
    pub refused: i64,
    /// "wrong_secret: 2, expired: 1"
    pub refused_reasons: String,
    pub first: String,
    pub last: String,
}

impl UsageChart {
    pub fn of(report: &UsageReport) -> UsageChart {
        let by_day = report.window.granularity == crate::domain::Granularity::Day;
        let format = if by_day { "%b %d" } else { "%H:00" };
        let peak = report
            .buckets
            .iter()
            .map(|b| b.counts.tokens_issued + b.counts.direct_calls + b.counts.refused_total())
            .max()
            .unwrap_or(0)
            .max(1);
        let slot = WIDTH / report.buckets.len().max(1) as f64;
        let scale = |n: i64| n as f64 / peak as f64 * HEIGHT;
        let bars = report
            .buckets
            .iter()
            .enumerate()
            .map(|(i, bucket)| {
                let c = &bucket.counts;
                let used = c.tokens_issued + c.direct_calls;
                let (used_h, refused_h) = (scale(used), scale(c.refused_total()));
                Bar {
                    x: format!("{:.1}", i as f64 * slot + 1.0),
                    width: format!("{:.1}", (slot - 2.0).max(1.0)),
                    used_y: format!("{:.1}", HEIGHT - used_h),
                    used_height: format!("{used_h:.1}"),
                    refused_y: format!("{:.1}", HEIGHT - used_h - refused_h),
                    refused_height: format!("{refused_h:.1}"),
                    label: format!(
                        "{} UTC: {} tokens, {} direct calls, {} refused",
                        bucket
                            .start
                            .format(if by_day { "%Y-%m-%d" } else { "%Y-%m-%d %H:00" }),
                        c.tokens_issued,
                        c.direct_calls,
                        c.refused_total()
                    ),
                }
            })
            .collect();
        let totals = &report.totals;
        let when = |i: Option<&crate::service::usage::UsageBucket>| {
            i.map(|b| b.start.format(format).to_string())
                .unwrap_or_default()
        };
        UsageChart {
            by_day,
            bars,
            peak,
            tokens_issued: totals.tokens_issued,
            direct_calls: totals.direct_calls,
            introspections: totals.introspections,
            refused: totals.refused_total(),
            refused_reasons: totals
                .refused
                .iter()
                .map(|(reason, n)| format!("{}: {n}", reason.as_str().replace('_', " ")))
                .collect::<Vec<_>>()
                .join(", "),
            first: when(report.buckets.first()),
            last: when(report.buckets.last()),
        }
    }
}
