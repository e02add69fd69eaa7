//! Access tokens: signing keys and their keyring, issuing RFC 9068 JWTs, validating them, and
//! the in-memory revocation state that makes revocation immediate.

mod algorithm;
mod claims;
mod issue;
mod keyring;
mod master_key;
mod material;
mod revocations;
mod validate;

pub use algorithm::SigningAlgorithm;
pub use claims::{AccessTokenClaims, Audience};
pub use issue::{IssuedToken, TokenSubject, issue};
pub use keyring::Keyring;
pub use master_key::MasterKey;
pub use material::{GeneratedKey, Signer, Verifier, generate};
pub use revocations::{Change, Revocations};
pub use validate::{TokenRejection, TokenValidator, ValidationParams};
