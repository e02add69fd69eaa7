//! Micro-benchmarks of what every request does, so a regression shows in review:
//! `cargo bench --bench hot_paths`. Whole-server throughput is measured by `bench/`.

use std::hint::black_box;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use keygate::auth::verified::VerifiedSecrets;
use keygate::domain::{ClientSecret, Environment, ScopeSet};
use keygate::tokens::{
    Keyring, Signer, SigningAlgorithm, TokenSubject, TokenValidator, ValidationParams, Verifier,
    generate, issue,
};

const ALGORITHMS: [SigningAlgorithm; 4] = [
    SigningAlgorithm::ES256,
    SigningAlgorithm::EdDSA,
    SigningAlgorithm::RS256,
    SigningAlgorithm::HS256,
];

fn secrets(c: &mut Criterion) {
    let secret = ClientSecret::generate(Environment::Live);
    let text = secret.expose().to_owned();
    c.bench_function("secret/parse", |b| {
        b.iter(|| ClientSecret::parse(black_box(&text)).unwrap())
    });
    let cache = VerifiedSecrets::new(1000, 300);
    c.bench_function("secret/fingerprint", |b| {
        b.iter(|| cache.fingerprint(black_box("kgc_0123456789abcdefghij"), black_box(&text)))
    });
}

fn scopes(c: &mut Criterion) {
    let granted = ScopeSet::parse_delimited(
        "clients:read invoices:read invoices:write payouts:read webhooks:read",
    )
    .unwrap();
    let requested = ScopeSet::parse_delimited("invoices:read payouts:read").unwrap();
    c.bench_function("scope/parse", |b| {
        b.iter(|| ScopeSet::parse_delimited(black_box("invoices:read payouts:read")).unwrap())
    });
    c.bench_function("scope/check", |b| {
        b.iter(|| black_box(&requested).first_missing_from(black_box(&granted)))
    });
}

/// A signer, and a validator for its key with the seen-token cache off (`cache` 0) or on.
fn setup(algorithm: SigningAlgorithm, cache: usize) -> (Signer, TokenValidator) {
    let key = generate(algorithm).unwrap();
    let signer = || Signer::from_private(&key.kid, algorithm, &key.private).unwrap();
    let verifier = if algorithm.is_symmetric() {
        Verifier::from_hmac_secret(&key.kid, &key.private, None)
    } else {
        Verifier::from_public_jwk(&key.kid, algorithm, &key.public_jwk, None).unwrap()
    };
    let keyring = Keyring::with_keys(Some(signer()), vec![verifier]);
    let mut params = ValidationParams::new("https://auth.example.test", "keygate");
    params.cache_capacity = cache;
    (signer(), TokenValidator::new(params, keyring))
}

fn tokens(c: &mut Criterion) {
    let scopes = ScopeSet::parse_delimited("invoices:read payouts:read").unwrap();
    let subject = TokenSubject {
        client_id: "kgc_0123456789abcdefghij",
        environment: Environment::Live,
        organization: "default",
        key_expires_at: None,
        state_as_of: Utc::now().timestamp(),
        jti: "0123456789abcdef0123456789abcdef",
    };
    for algorithm in ALGORITHMS {
        let (signer, cold) = setup(algorithm, 0);
        let sign = || {
            issue(
                &signer,
                "https://auth.example.test",
                "keygate",
                900,
                &subject,
                &scopes,
                Utc::now(),
            )
            .unwrap()
        };
        c.bench_function(&format!("token/issue/{algorithm}"), |b| b.iter(sign));
        let token = sign().access_token;
        c.bench_function(&format!("token/validate_unseen/{algorithm}"), |b| {
            b.iter(|| cold.validate(black_box(&token)).unwrap())
        });
        let (signer, warm) = setup(algorithm, 1000);
        let token = issue(
            &signer,
            "https://auth.example.test",
            "keygate",
            900,
            &subject,
            &scopes,
            Utc::now(),
        )
        .unwrap()
        .access_token;
        warm.validate(&token).unwrap();
        c.bench_function(&format!("token/validate_seen/{algorithm}"), |b| {
            b.iter(|| warm.validate(black_box(&token)).unwrap())
        });
    }
}

criterion_group!(benches, secrets, scopes, tokens);
criterion_main!(benches);
