//! Usage history's vocabulary: what is counted per key and hour (`UsageMetric`), and the
//! window a report covers (`UsageWindow`: from, to, by hour or by day).

use std::fmt;

use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};

use super::{Outcome, ValidationError};

/// One counter of a key's hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UsageMetric {
    /// Access tokens issued (client credentials or refresh).
    TokensIssued,
    /// Token requests refused, by the reason the audit trail records.
    Refused(Outcome),
    /// Calls authenticated with the key itself as the bearer credential.
    DirectCalls,
    /// Introspections that found one of the key's tokens active.
    Introspections,
}

impl UsageMetric {
    const REFUSED: &'static str = "refused.";

    /// The stored name: `tokens_issued`, `refused.wrong_secret`, …
    pub fn name(self) -> String {
        match self {
            UsageMetric::TokensIssued => "tokens_issued".into(),
            UsageMetric::DirectCalls => "direct_calls".into(),
            UsageMetric::Introspections => "introspections".into(),
            UsageMetric::Refused(reason) => format!("{}{}", Self::REFUSED, reason.as_str()),
        }
    }

    /// The metric a stored name stands for; `None` for a name this version does not know.
    pub fn from_name(name: &str) -> Option<UsageMetric> {
        match name {
            "tokens_issued" => Some(UsageMetric::TokensIssued),
            "direct_calls" => Some(UsageMetric::DirectCalls),
            "introspections" => Some(UsageMetric::Introspections),
            _ => name
                .strip_prefix(Self::REFUSED)
                .and_then(|reason| reason.parse().ok())
                .map(UsageMetric::Refused),
        }
    }
}

/// The width of a report's buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    pub fn parse(text: &str) -> Result<Granularity, ValidationError> {
        match text {
            "hour" => Ok(Granularity::Hour),
            "day" => Ok(Granularity::Day),
            _ => Err(ValidationError::new("granularity", "must be hour or day")),
        }
    }

    pub fn step(self) -> Duration {
        match self {
            Granularity::Hour => Duration::hours(1),
            Granularity::Day => Duration::days(1),
        }
    }

    /// The most buckets one report holds: 31 days by hour, 366 days by day.
    fn max_buckets(self) -> i64 {
        match self {
            Granularity::Hour => 31 * 24,
            Granularity::Day => 366,
        }
    }

    /// The start of the bucket holding `at`.
    pub fn floor(self, at: DateTime<Utc>) -> DateTime<Utc> {
        at.duration_trunc(self.step())
            .expect("an hour or a day divides any time")
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
        })
    }
}

/// A report's window: whole buckets from `from` (inclusive) to `to` (exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub granularity: Granularity,
}

impl UsageWindow {
    /// Parses the query's `from`, `to` (RFC 3339 times or `YYYY-MM-DD` dates, UTC) and
    /// `granularity` (default `hour`). Without `to`, the window ends with the current bucket;
    /// without `from`, it covers the last 24 hours by hour, or the last 30 days by day. Both
    /// ends are widened to whole buckets.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        granularity: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<UsageWindow, ValidationError> {
        let granularity = granularity
            .map(Granularity::parse)
            .transpose()?
            .unwrap_or(Granularity::Hour);
        let step = granularity.step();
        let to = match to {
            Some(text) => ceil(granularity, parse_time("to", text)?),
            None => granularity.floor(now) + step,
        };
        let from = match from {
            Some(text) => granularity.floor(parse_time("from", text)?),
            None => {
                to - match granularity {
                    Granularity::Hour => Duration::hours(24),
                    Granularity::Day => Duration::days(30),
                }
            }
        };
        if from >= to {
            return Err(ValidationError::new("from", "must be before to"));
        }
        let buckets = (to - from).num_seconds() / step.num_seconds();
        if buckets > granularity.max_buckets() {
            return Err(ValidationError::new(
                "to",
                format!(
                    "the window holds {buckets} {granularity}s; at most {} by {granularity}",
                    granularity.max_buckets()
                ),
            ));
        }
        Ok(UsageWindow {
            from,
            to,
            granularity,
        })
    }

    /// The start of every bucket, oldest first.
    pub fn buckets(&self) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let step = self.granularity.step();
        std::iter::successors(Some(self.from), move |t| Some(*t + step))
            .take_while(|t| *t < self.to)
    }
}

fn ceil(granularity: Granularity, at: DateTime<Utc>) -> DateTime<Utc> {
    let floor = granularity.floor(at);
    if floor == at {
        at
    } else {
        floor + granularity.step()
    }
}

fn parse_time(field: &'static str, text: &str) -> Result<DateTime<Utc>, ValidationError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        .map_err(|_| {
            ValidationError::new(
                field,
                "must be an RFC 3339 time (2026-12-01T10:00:00Z) or a date (2026-12-01)",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn metric_names_round_trip() {
        for metric in [
            UsageMetric::TokensIssued,
            UsageMetric::DirectCalls,
            UsageMetric::Introspections,
            UsageMetric::Refused(Outcome::WrongSecret),
            UsageMetric::Refused(Outcome::RefreshTokenReused),
        ] {
            assert_eq!(UsageMetric::from_name(&metric.name()), Some(metric));
        }
        assert_eq!(
            UsageMetric::Refused(Outcome::WrongSecret).name(),
            "refused.wrong_secret"
        );
        assert_eq!(UsageMetric::from_name("refused.nonsense"), None);
        assert_eq!(UsageMetric::from_name("calls"), None);
    }

    #[test]
    fn the_default_window_is_the_last_24_hours_by_hour() {
        let now = at("2026-12-01T10:20:00Z");
        let window = UsageWindow::parse(None, None, None, now).unwrap();
        assert_eq!(window.to, at("2026-12-01T11:00:00Z"));
        assert_eq!(window.from, at("2026-11-30T11:00:00Z"));
        assert_eq!(window.buckets().count(), 24);
        let days = UsageWindow::parse(None, None, Some("day"), now).unwrap();
        assert_eq!(days.to, at("2026-12-02T00:00:00Z"));
        assert_eq!(days.buckets().count(), 30);
    }

    #[test]
    fn ends_widen_to_whole_buckets_and_dates_are_accepted() {
        let now = at("2026-12-01T10:20:00Z");
        let window = UsageWindow::parse(
            Some("2026-11-30T08:30:00Z"),
            Some("2026-11-30T10:10:00+00:00"),
            Some("hour"),
            now,
        )
        .unwrap();
        assert_eq!(window.from, at("2026-11-30T08:00:00Z"));
        assert_eq!(window.to, at("2026-11-30T11:00:00Z"));
        let days =
            UsageWindow::parse(Some("2026-11-01"), Some("2026-11-08"), Some("day"), now).unwrap();
        assert_eq!(days.buckets().count(), 7);
    }

    #[test]
    fn bad_windows_name_their_field() {
        let now = at("2026-12-01T10:20:00Z");
        for (from, to, granularity, field) in [
            (Some("yesterday"), None, None, "from"),
            (None, Some("2026-13-01"), None, "to"),
            (None, None, Some("week"), "granularity"),
            (Some("2026-12-01"), Some("2026-11-01"), None, "from"),
            (Some("2026-01-01"), Some("2026-12-01"), Some("hour"), "to"),
            (Some("2024-01-01"), Some("2026-12-01"), Some("day"), "to"),
        ] {
            let err = UsageWindow::parse(from, to, granularity, now).unwrap_err();
            assert_eq!(err.field, field, "{from:?} {to:?} {granularity:?}");
        }
    }
}
