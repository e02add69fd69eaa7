//! `live` or `test`: which world an API key (and every token it yields) belongs to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ValidationError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Live,
    Test,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "live" => Ok(Environment::Live),
            "test" => Ok(Environment::Test),
            _ => Err(ValidationError::new(
                "environment",
                "must be `live` or `test`",
            )),
        }
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
            assert!(
                bad.parse::<Environment>().is_err(),
                "{bad:?} must be refused"
            );
        }
    }
}
