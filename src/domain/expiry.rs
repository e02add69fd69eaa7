//! When an API key stops working: on a date (at 00:00 UTC at its start), after a number of
//! days, or never; and how long a rotated-out secret keeps working.

use chrono::{DateTime, Days, Duration, NaiveDate, Utc};

use super::ValidationError;

const MAX_DAYS: u64 = 3650;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry(Option<DateTime<Utc>>);

impl Expiry {
    pub fn never() -> Expiry {
        Expiry(None)
    }

    /// Midnight UTC at the start of `date`, which must lie in the future and within ten years.
    pub fn on_date(date: NaiveDate, now: DateTime<Utc>) -> Result<Expiry, ValidationError> {
        let at = date
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc();
        if at <= now {
            return Err(ValidationError::new(
                "expires_on",
                "must be a date after today (UTC)",
            ));
        }
        Self::within_limit(at, now, "expires_on")
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse_date(s: &str, now: DateTime<Utc>) -> Result<Expiry, ValidationError> {
        let date = NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| ValidationError::new("expires_on", "must be a date as YYYY-MM-DD"))?;
        Self::on_date(date, now)
    }

    /// `days` (1 to 3650) from `now`.
    pub fn in_days(days: u64, now: DateTime<Utc>) -> Result<Expiry, ValidationError> {
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(ValidationError::new(
                "expires_in_days",
                "must be between 1 and 3650",
            ));
        }
        let at = now
            .checked_add_days(Days::new(days))
            .expect("ten years fit");
        Ok(Expiry(Some(at)))
    }

    fn within_limit(
        at: DateTime<Utc>,
        now: DateTime<Utc>,
        field: &'static str,
    ) -> Result<Expiry, ValidationError> {
        let limit = now
            .checked_add_days(Days::new(MAX_DAYS + 1))
            .expect("ten years fit");
        if at > limit {
            return Err(ValidationError::new(field, "must be within ten years"));
        }
        Ok(Expiry(Some(at)))
    }

    pub fn at(&self) -> Option<DateTime<Utc>> {
        self.0
    }
}

/// How long a secret keeps working after a rotation replaced it: none, or up to seven days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GracePeriod(i64);

impl GracePeriod {
    pub const MAX_SECONDS: i64 = 7 * 86_400;

    pub fn seconds(seconds: i64) -> Result<GracePeriod, ValidationError> {
        if !(0..=Self::MAX_SECONDS).contains(&seconds) {
            return Err(ValidationError::new(
                "grace_period_seconds",
                "must be from 0 to 604800 (7 days)",
            ));
        }
        Ok(GracePeriod(seconds))
    }

    /// `0`, `30m`, `24h`, `7d`: what an operator types.
    pub fn parse_human(text: &str) -> Result<GracePeriod, ValidationError> {
        let seconds = if text == "0" {
            0
        } else {
            humantime::parse_duration(text)
                .map_err(|_| ValidationError::new("grace", "use 0, 30m, 24h or 7d"))?
                .as_secs()
                .try_into()
                .unwrap_or(i64::MAX)
        };
        Self::seconds(seconds)
            .map_err(|_| ValidationError::new("grace", "the grace period is at most 7 days"))
    }

    pub fn as_seconds(self) -> i64 {
        self.0
    }

    /// When the replaced secret stops working; `None` when it stops at once.
    pub fn ends(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (self.0 > 0).then(|| now + Duration::seconds(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    #[test]
    fn a_date_means_midnight_utc_at_its_start() {
        let e = Expiry::parse_date("2026-12-01", noon()).unwrap();
        assert_eq!(
            e.at().unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn today_and_past_dates_are_refused() {
        for bad in ["2026-11-25", "2020-01-01"] {
            assert!(Expiry::parse_date(bad, noon()).is_err(), "{bad}");
        }
        assert!(Expiry::parse_date("2026-11-26", noon()).is_ok());
    }

    #[test]
    fn malformed_and_far_dates_are_refused() {
        for bad in ["26-12-01", "2026-13-01", "tomorrow", "2040-01-01"] {
            assert!(Expiry::parse_date(bad, noon()).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_are_bounded() {
        assert_eq!(
            Expiry::in_days(90, noon()).unwrap().at().unwrap(),
            noon() + chrono::Duration::days(90)
        );
        assert!(Expiry::in_days(0, noon()).is_err());
        assert!(Expiry::in_days(3651, noon()).is_err());
    }

    #[test]
    fn grace_periods_are_bounded_to_seven_days() {
        assert_eq!(GracePeriod::seconds(0).unwrap().ends(noon()), None);
        assert!(GracePeriod::seconds(-1).is_err());
        assert!(GracePeriod::seconds(604_801).is_err());
        assert_eq!(
            GracePeriod::parse_human("24h").unwrap().as_seconds(),
            86_400
        );
        assert_eq!(
            GracePeriod::parse_human("7d").unwrap().as_seconds(),
            604_800
        );
        assert!(GracePeriod::parse_human("8d").is_err());
        assert!(GracePeriod::parse_human("soon").is_err());
    }
}
