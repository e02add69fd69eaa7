//! When an API key stops working: on a date (at 00:00 UTC, as the seeds promise), after a
//! number of days, or never.

use chrono::{DateTime, Days, NaiveDate, Utc};

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
}
