//! Property tests of the validation path: whatever text arrives as a token, and whatever one
//! character of a real token is changed to, the validator refuses it without panicking; only
//! the token as signed is taken.

use chrono::Utc;
use proptest::prelude::*;

use super::{
    Keyring, Signer, SigningAlgorithm, TokenSubject, TokenValidator, ValidationParams, Verifier,
    generate, issue,
};
use crate::domain::{Environment, ScopeSet};

const ISSUER: &str = "https://auth.example.test";

/// A validator for one key of `algorithm`, with the seen-token cache off (every token is
/// checked in full), and a token it signed.
fn signed(algorithm: SigningAlgorithm) -> (TokenValidator, String) {
    let key = generate(algorithm).unwrap();
    let signer = Signer::from_private(&key.kid, algorithm, &key.private).unwrap();
    let verifier = if algorithm.is_symmetric() {
        Verifier::from_hmac_secret(&key.kid, &key.private, None)
    } else {
        Verifier::from_public_jwk(&key.kid, algorithm, &key.public_jwk, None).unwrap()
    };
    let mut params = ValidationParams::new(ISSUER, "keygate");
    params.cache_capacity = 0;
    let subject = TokenSubject {
        client_id: "kgc_0123456789abcdefghij",
        environment: Environment::Live,
        organization: "default",
        key_expires_at: None,
        state_as_of: Utc::now().timestamp(),
        jti: "0123456789abcdef0123456789abcdef",
    };
    let scopes = ScopeSet::parse_delimited("invoices:read").unwrap();
    let token = issue(
        &signer,
        ISSUER,
        "keygate",
        900,
        &subject,
        &scopes,
        Utc::now(),
    )
    .unwrap()
    .access_token;
    let keyring = Keyring::with_keys(Some(signer), vec![verifier]);
    (TokenValidator::new(params, keyring), token)
}

fn algorithms() -> impl Strategy<Value = SigningAlgorithm> {
    prop_oneof![
        Just(SigningAlgorithm::ES256),
        Just(SigningAlgorithm::EdDSA),
        Just(SigningAlgorithm::HS256),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::domain::property_cases(1024)))]

    /// Text of any shape, three dot-separated parts of base64url included, is refused.
    #[test]
    fn made_up_tokens_are_refused(
        text in prop_oneof![
            "\\PC{0,300}",
            "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,90}",
        ],
    ) {
        let (validator, _) = signed(SigningAlgorithm::ES256);
        prop_assert!(validator.validate(&text).is_err());
    }

    /// A real token with one character changed, anywhere, is refused: the signature covers
    /// the header and the claims, and a changed signature does not verify. (The last
    /// character of a segment may carry unused bits; a change that keeps the decoded bytes
    /// is the same token, and may be taken.)
    #[test]
    fn a_token_changed_anywhere_is_refused(
        algorithm in algorithms(),
        at in any::<prop::sample::Index>(),
        by in "[A-Za-z0-9_.=+/-]",
    ) {
        let (validator, token) = signed(algorithm);
        prop_assert!(validator.validate(&token).is_ok());
        let at = at.index(token.len());
        let by = by.as_bytes()[0];
        prop_assume!(token.as_bytes()[at] != by);
        let mut changed = token.clone().into_bytes();
        changed[at] = by;
        let changed = String::from_utf8(changed).unwrap();
        if validator.validate(&changed).is_ok() {
            prop_assert!(same_bytes(&token, &changed), "{} was taken", changed);
        }
    }
}

/// Whether two tokens decode to the same bytes in every segment.
fn same_bytes(a: &str, b: &str) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let decode = |t: &str| -> Option<Vec<Vec<u8>>> {
        t.split('.')
            .map(|s| URL_SAFE_NO_PAD.decode(s).ok())
            .collect()
    };
    decode(a).is_some() && decode(a) == decode(b)
}
