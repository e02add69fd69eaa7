//! The signing algorithms keygate can be configured with.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// ES256 is the default: it is as widely verified as RS256 (every JOSE library and API
/// gateway), signs 25 times faster, and its tokens are a third the size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    ES256,
    EdDSA,
    RS256,
    HS256,
}

impl SigningAlgorithm {
    /// Every algorithm, in declaration order (`algorithm as usize` indexes this).
    pub const ALL: [SigningAlgorithm; 4] = [
        SigningAlgorithm::ES256,
        SigningAlgorithm::EdDSA,
        SigningAlgorithm::RS256,
        SigningAlgorithm::HS256,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::ES256 => "ES256",
            SigningAlgorithm::EdDSA => "EdDSA",
            SigningAlgorithm::RS256 => "RS256",
            SigningAlgorithm::HS256 => "HS256",
        }
    }

    pub fn jwt_algorithm(self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            SigningAlgorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            SigningAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            SigningAlgorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }

    /// Symmetric keys cannot be published: only holders of the master key can verify them.
    pub fn is_symmetric(self) -> bool {
        self == SigningAlgorithm::HS256
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlgorithm {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ES256" => Ok(SigningAlgorithm::ES256),
            "EdDSA" => Ok(SigningAlgorithm::EdDSA),
            "RS256" => Ok(SigningAlgorithm::RS256),
            "HS256" => Ok(SigningAlgorithm::HS256),
            other => {
                anyhow::bail!("unknown signing algorithm {other:?} (ES256, EdDSA, RS256, HS256)")
            }
        }
    }
}
