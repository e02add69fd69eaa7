//! `live` or `test`: which world an API key (and every token it yields) belongs to.

use super::status::closed_set;

closed_set! {
    /// A key of the `test` environment is for a developer's sandbox: its secret says
    /// `kgs_test_`, its tokens carry `env: test` and their own audience, and it may only act
    /// on other `test` keys.
    Environment, field "environment" {
        Live => "live",
        Test => "test",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly_live_and_test() {
        assert_eq!("live".parse::<Environment>().unwrap(), Environment::Live);
        assert_eq!("test".parse::<Environment>().unwrap(), Environment::Test);
        for bad in ["", "LIVE", "prod", " live"] {
            let refused = bad.parse::<Environment>().unwrap_err();
            assert_eq!(refused.message, "must be `live` or `test`", "{bad:?}");
        }
    }
}
