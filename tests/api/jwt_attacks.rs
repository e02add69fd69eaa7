//! JWT attacks on the validating extractor (SECURITY-CATALOG section 2, JWT-01..JWT-25, and the
//! RFC 9068 section 4 checks AV-01..AV-06): every crafted token sent to `GET /v1/me` must get
//! 401 with `WWW-Authenticate: Bearer realm="keygate", error="invalid_token", ...` and a JSON
//! `{"error":"invalid_token"}` body, never a 5xx.
//!
//! The forged tokens are signed with the server's own active key (read from the database with
//! the master key), so that only the attacked header field or claim makes them invalid. Every
//! test first checks that an unmodified forgery is accepted: a rejection below is then caused by
//! the attack, and the test can fail.
//!
//! A token naming a *different, existing* API key in `sub` and `client_id`, validly signed, is
//! accepted, and rightly so: only the issuer holds the signing key, and the signature is what
//! binds the claims. That is not tested here (it is the definition of a valid token).
//!
//! Every token refused there is also sent to the two other places that judge tokens: an API
//! that knows only keygate's URL (`keygate::remote::RemoteValidator`, as in
//! examples/resource_server.rs), which must refuse it the same way, and `/v1/introspect`,
//! which must call it `{"active": false}` (or refuse a body over its 4 KiB bound before
//! reading it).
//!
//! Table-driven tests check every case and then report all the failing ones at once.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::Duration;

#[cfg(feature = "client")]
use actix_web::{App, HttpResponse, HttpServer, web};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
#[cfg(feature = "client")]
use keygate::client::TokenSource;
#[cfg(feature = "client")]
use keygate::remote::RemoteValidator;
use reqwest::{Method, Response};
#[cfg(feature = "client")]
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, ClientAuth, Reply, TestApp, TestKey, Who, eventually, form, introspect,
    spawn_app,
};

#[cfg(feature = "client")]
keygate::require_scopes!(InvoicesRead => "invoices:read");

/// The largest body `/v1/introspect` reads.
const MAX_INTROSPECTION_BODY: usize = 4096;

/// How every `invalid_token` challenge starts (RFC 6750 section 3).
const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="keygate", error="invalid_token""#;
/// How every `invalid_request` challenge starts (a malformed Authorization header).
const INVALID_REQUEST_CHALLENGE: &str = r#"Bearer realm="keygate", error="invalid_request""#;
/// The challenge when the request carries no bearer credentials at all (RFC 6750 section 3.1).
const BARE_CHALLENGE: &str = r#"Bearer realm="keygate""#;

/// The DER prefix of a P-256 SubjectPublicKeyInfo, before the 65-byte uncompressed point.
const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
/// The order n of the P-256 group.
const P256_ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// `text` with `bytes` (not necessarily UTF-8) inserted right after the first `marker`.
fn insert_after(text: &str, marker: &str, bytes: &[u8]) -> Vec<u8> {
    let at = text.find(marker).expect("the marker is in the text") + marker.len();
    let text = text.as_bytes();
    [&text[..at], bytes, &text[at..]].concat()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The three segments of a compact JWS.
fn segments(token: &str) -> (&str, &str, &str) {
    let mut parts = token.split('.');
    let parts = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    (parts.0, parts.1, parts.2)
}

/// `value` with `field` set (`Some`) or removed (`None`).
fn with(value: &Value, field: &str, new: Option<Value>) -> Value {
    let mut value = value.clone();
    let object = value.as_object_mut().unwrap();
    match new {
        Some(new) => {
            object.insert(field.to_owned(), new);
        }
        None => {
            object.remove(field);
        }
    }
    value
}

/// What the server answered, in one line: the status, the challenge and the body.
fn summary(answer: &Reply) -> String {
    format!(
        "HTTP {}, WWW-Authenticate {:?}, body {}",
        answer.status,
        answer
            .headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap_or("<not ASCII>")),
        answer.text
    )
}

/// Collects the outcome of every case of a table, so that a failing test names all the cases
/// that failed, each with its `why`.
#[derive(Default)]
struct Verdicts {
    checked: usize,
    failures: Vec<String>,
}

impl Verdicts {
    fn fail(&mut self, why: &str, expected: &str, answer: &Reply) {
        self.failures.push(format!(
            "{why}: expected {expected}, got {}",
            summary(answer)
        ));
    }

    /// 401 `invalid_token` with the RFC 6750 challenge and a JSON body.
    fn invalid_token(&mut self, why: &str, answer: &Reply) -> bool {
        self.checked += 1;
        let ok = answer.status == 401
            && answer
                .header("www-authenticate")
                .is_some_and(|c| c.starts_with(INVALID_TOKEN_CHALLENGE))
            && answer.body["error"] == "invalid_token";
        if !ok {
            self.fail(why, "401 invalid_token", answer);
        }
        ok
    }

    /// 401 `invalid_token` whose `error_description` names the reason.
    fn invalid_token_because(&mut self, why: &str, answer: &Reply, reason: &str) {
        if self.invalid_token(why, answer) {
            let description = answer.body["error_description"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if !description.contains(reason) {
                self.fail(why, &format!("a description with {reason:?}"), answer);
            }
        }
    }

    /// 400 `invalid_request`: the Authorization header itself is malformed (RFC 6750 3.1).
    fn invalid_request(&mut self, why: &str, answer: &Reply) {
        self.checked += 1;
        let ok = answer.status == 400
            && answer
                .header("www-authenticate")
                .is_some_and(|c| c.starts_with(INVALID_REQUEST_CHALLENGE))
            && answer.body["error"] == "invalid_request";
        if !ok {
            self.fail(why, "400 invalid_request", answer);
        }
    }

    /// 401 with exactly `Bearer realm="keygate"`: no credentials, so no error code.
    fn bare_challenge(&mut self, why: &str, answer: &Reply) {
        self.checked += 1;
        if answer.status != 401 || answer.header("www-authenticate") != Some(BARE_CHALLENGE) {
            self.fail(why, "401 with a bare Bearer challenge", answer);
        }
    }

    /// `/v1/introspect`'s answer for a token it must not vouch for: 200 `{"active": false}`
    /// and nothing more (RFC 7662 section 2.2), or 413 when the form is over the body bound.
    fn inactive(&mut self, why: &str, answer: &Reply, oversized: bool) {
        self.checked += 1;
        let ok = if oversized {
            answer.status == 413
        } else {
            answer.status == 200 && answer.body == json!({ "active": false })
        };
        if !ok {
            let expected = if oversized {
                "413 (over the body bound)"
            } else {
                "200 {\"active\": false}"
            };
            self.fail(why, expected, answer);
        }
    }

    fn accepted(&mut self, why: &str, answer: &Reply) {
        self.checked += 1;
        if answer.status != 200 {
            self.fail(why, "200 (accepted)", answer);
        }
    }

    /// One of `statuses`: where actix itself may refuse the request before keygate sees it.
    fn one_of(&mut self, why: &str, answer: &Reply, statuses: &[u16]) {
        self.checked += 1;
        if !statuses.contains(&answer.status) {
            self.fail(why, &format!("one of {statuses:?}"), answer);
        }
    }

    /// Any 4xx: used where actix itself may refuse the request before keygate sees it.
    fn client_error(&mut self, why: &str, answer: &Reply) {
        self.checked += 1;
        if !(400..500).contains(&answer.status) {
            self.fail(why, "a 4xx", answer);
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} cases failed:\n  {}",
            self.failures.len(),
            self.checked,
            self.failures.join("\n  ")
        );
    }
}

/// A running server, an API key, a token keygate issued for it, and the active signing key to
/// forge tokens with.
struct Fixture {
    app: TestApp,
    key: TestKey,
    kid: String,
    pkcs8: Vec<u8>,
    signer: EcdsaKeyPair,
    /// A token keygate issued for `key`.
    token: String,
    /// An API that knows only keygate's URL (`RemoteValidator`, following the revocation
    /// stream), serving `GET /invoices` to tokens with `invoices:read`; none without the
    /// `client` feature, which `RemoteValidator` belongs to.
    remote: Option<String>,
    /// A key holding `tokens:introspect` (authenticating with HTTP Basic, so that a signing
    /// key's retirement does not touch it).
    introspector: TestKey,
}

#[cfg(feature = "client")]
async fn remote_invoices(caller: keygate::Authenticated<InvoicesRead>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "client_id": caller.client_id() }))
}

/// Starts an API on `RemoteValidator`: keygate's discovery document, JWKS and revocation
/// stream (followed with a key holding `revocations:read`) are all it knows.
#[cfg(feature = "client")]
async fn spawn_remote_api(app: &TestApp) -> Option<String> {
    let follower = app.create_key(&["revocations:read"]);
    let tokens = TokenSource::builder(&app.address)
        .client_id(&follower.client_id)
        .client_secret(SecretString::from(follower.client_secret.clone()))
        .build()
        .unwrap();
    let validator = RemoteValidator::new(app.address.clone())
        .follow_revocations(tokens)
        .connect()
        .await
        .expect("the remote validator connects");
    let validator = web::Data::new(validator);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(validator.clone())
            .route("/invoices", web::get().to(remote_invoices))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    Some(address)
}

#[cfg(not(feature = "client"))]
async fn spawn_remote_api(_app: &TestApp) -> Option<String> {
    None
}

impl Fixture {
    async fn start(backend: Backend) -> Fixture {
        let app = spawn_app(backend).await;
        let key = app.create_key(&["invoices:read"]);
        let token = app.token_for(&key).await;
        let (kid, algorithm, pkcs8) = app.active_signing_key();
        assert_eq!(algorithm, "ES256", "the test profile signs with ES256");
        let signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).unwrap();
        let remote = spawn_remote_api(&app).await;
        let introspector = app.create_key(&["tokens:introspect"]);
        let fixture = Fixture {
            app,
            key,
            kid,
            pkcs8,
            signer,
            token,
            remote,
            introspector,
        };
        fixture.check_the_forgery_helper().await;
        fixture
    }

    /// The forged header and claims have keygate's shape, and a forged token is accepted.
    async fn check_the_forgery_helper(&self) {
        let (header, payload, _) = segments(&self.token);
        let header: Value = serde_json::from_slice(&unb64(header)).unwrap();
        let claims: Value = serde_json::from_slice(&unb64(payload)).unwrap();
        assert_eq!(header, self.valid_header(), "keygate's own header");
        let forged = self.valid_claims();
        let names = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&claims), names(&forged), "keygate's claim names");
        for same in ["iss", "aud", "sub", "client_id", "scope", "env", "org"] {
            assert_eq!(claims[same], forged[same], "claim {same}");
        }
        let answer = self.send(&self.token).await;
        assert_eq!(
            answer.status,
            200,
            "keygate's own token: {}",
            summary(&answer)
        );
        let forged = self.forge(&header, &forged);
        let answer = self.send(&forged).await;
        assert_eq!(
            answer.status,
            200,
            "an unmodified forged token must be accepted, or no rejection below means anything: {}",
            summary(&answer)
        );
        for token in [&self.token, &forged] {
            if let Some(answer) = self.send_remote(token).await {
                assert_eq!(
                    answer.status,
                    200,
                    "the remote validator accepts keygate's and the forged token: {}",
                    summary(&answer)
                );
            }
            let answer = self.introspect(token).await;
            assert_eq!(
                answer.body["active"],
                true,
                "introspection calls keygate's and the forged token active: {}",
                summary(&answer)
            );
        }
    }

    fn valid_header(&self) -> Value {
        json!({ "alg": "ES256", "typ": "at+jwt", "kid": self.kid })
    }

    /// Claims exactly like the ones keygate issues, for `key`.
    fn claims_for(&self, key: &TestKey) -> Value {
        let now = now();
        json!({
            "iss": self.app.address,
            "sub": key.client_id,
            "client_id": key.client_id,
            "aud": "keygate",
            "iat": now,
            "nbf": now,
            "exp": now + 900,
            "jti": uuid::Uuid::new_v4().simple().to_string(),
            "scope": "invoices:read",
            "env": "live",
            "org": "default",
        })
    }

    fn valid_claims(&self) -> Value {
        self.claims_for(&self.key)
    }

    fn leeway(&self) -> i64 {
        self.app.settings.tokens.leeway_seconds as i64
    }

    /// Raw JWS ES256 signature (r || s) with the active key.
    fn es256(&self, signing_input: &str) -> Vec<u8> {
        self.signer
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    /// `header.payload.signature`, validly signed over the segments exactly as given.
    fn sign_segments(&self, header: &str, payload: &str) -> String {
        let input = format!("{header}.{payload}");
        let signature = b64(self.es256(&input));
        format!("{input}.{signature}")
    }

    /// A validly signed token with these header and payload bytes.
    fn forge_bytes(&self, header: &[u8], payload: &[u8]) -> String {
        self.sign_segments(&b64(header), &b64(payload))
    }

    /// A validly signed token with this header and these claims.
    fn forge(&self, header: &Value, claims: &Value) -> String {
        self.forge_bytes(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }

    /// A validly signed token with keygate's header and these claims.
    fn forge_claims(&self, claims: &Value) -> String {
        self.forge(&self.valid_header(), claims)
    }

    /// A validly signed token with this header and keygate's claims.
    fn forge_header(&self, header: &Value) -> String {
        self.forge(header, &self.valid_claims())
    }

    async fn send(&self, token: &str) -> Reply {
        Reply::of_lossy(self.app.get_with_token("/v1/me", token).await).await
    }

    /// `GET /invoices` on the API that validates with `RemoteValidator`, if there is one.
    async fn send_remote(&self, token: &str) -> Option<Reply> {
        let remote = self.remote.as_ref()?;
        let request = self
            .app
            .client
            .get(format!("{remote}/invoices"))
            .bearer_auth(token);
        Some(Reply::of_lossy(request.send().await.expect("request sent")).await)
    }

    /// `POST /v1/introspect` about `token`, as the introspecting key (HTTP Basic).
    async fn introspect(&self, token: &str) -> Reply {
        introspect(&self.app, ClientAuth::Basic(&self.introspector), token).await
    }

    /// The remote validator refuses `token` with `invalid_token`, and introspection calls it
    /// inactive.
    async fn refused_elsewhere(&self, verdicts: &mut Verdicts, why: &str, token: &str) {
        if let Some(answer) = self.send_remote(token).await {
            verdicts.invalid_token(&format!("{why} [remote validator]"), &answer);
        }
        let oversized = form(&[("token", token)]).len() > MAX_INTROSPECTION_BODY;
        verdicts.inactive(
            &format!("{why} [introspection]"),
            &self.introspect(token).await,
            oversized,
        );
    }

    /// Waits (up to 3 s) until the remote validator refuses `token`: it learns of revocations
    /// and key changes from keygate's revocation stream.
    async fn wait_for_remote_refusal(&self, token: &str) {
        let refused = eventually(3, || async {
            self.send_remote(token)
                .await
                .is_none_or(|answer| answer.status == 401)
        })
        .await;
        assert!(
            refused,
            "the remote validator still accepts the token after 3 s"
        );
    }

    /// Waits until keygate (up to 5 s: one feed interval, with room for a busy machine) and
    /// the remote validator refuse `token`, then checks all three refuse it properly.
    async fn refused_everywhere_soon(&self, verdicts: &mut Verdicts, why: &str, token: &str) {
        let refused = eventually(5, || async { self.send(token).await.status == 401 }).await;
        assert!(refused, "{why}: keygate still accepts the token after 5 s");
        self.wait_for_remote_refusal(token).await;
        self.refused_everywhere(verdicts, why, token).await;
    }

    /// Accepted by all three.
    async fn accepted_everywhere(&self, verdicts: &mut Verdicts, why: &str, token: &str) {
        verdicts.accepted(why, &self.send(token).await);
        if let Some(answer) = self.send_remote(token).await {
            verdicts.accepted(&format!("{why} [remote validator]"), &answer);
        }
        let answer = self.introspect(token).await;
        verdicts.checked += 1;
        if answer.status != 200 || answer.body["active"] != true {
            verdicts.fail(
                &format!("{why} [introspection]"),
                "200 active: true",
                &answer,
            );
        }
    }

    /// Refused by all three: keygate's extractor, the remote validator and introspection.
    async fn refused_everywhere(&self, verdicts: &mut Verdicts, why: &str, token: &str) {
        verdicts.invalid_token(why, &self.send(token).await);
        self.refused_elsewhere(verdicts, why, token).await;
    }

    /// `GET /v1/me` with these Authorization header values (none, one, or several).
    async fn send_authorization(&self, path: &str, values: &[&str]) -> Reply {
        let mut request = self.app.client.get(self.app.url(path));
        for value in values {
            request = request.header("authorization", *value);
        }
        Reply::of_lossy(request.send().await.expect("request sent")).await
    }

    async fn jwks(&self) -> Value {
        self.app.get_json("/.well-known/jwks.json").await
    }

    /// The published JWK of the active key.
    async fn active_jwk(&self) -> Value {
        let jwks = self.jwks().await;
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == self.kid.as_str())
            .expect("the active key is published")
            .clone()
    }

    /// Expects every token to be refused with `invalid_token` by keygate's extractor and the
    /// remote validator, and to be inactive for introspection.
    async fn all_invalid(&self, verdicts: &mut Verdicts, cases: &[(String, String)]) {
        for (why, token) in cases {
            self.refused_everywhere(verdicts, why, token).await;
        }
    }
}

/// The forgery helper itself, on its own: keygate's token and a forged one are both accepted,
/// with the scheme name in any case (RFC 7235 section 2.1).
async fn forged_tokens_signed_by_the_active_key_are_accepted(backend: Backend) {
    let f = Fixture::start(backend).await;
    let mut v = Verdicts::default();
    let forged = f.forge_claims(&f.valid_claims());
    for scheme in ["Bearer", "bearer", "BEARER"] {
        for (what, token) in [("keygate's", &f.token), ("a forged", &forged)] {
            let answer = f
                .send_authorization("/v1/me", &[&format!("{scheme} {token}")])
                .await;
            v.accepted(&format!("{what} token with scheme {scheme}"), &answer);
        }
    }
    let me = f.send(&forged).await.json();
    assert_eq!(me["client_id"], f.key.client_id.as_str());
    v.finish();
}

/// JWT-01, AV-04: `alg: none` in every spelling, with an empty, missing or original signature.
async fn alg_none_is_rejected(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (_, original_payload, original_signature) = segments(&f.token);
    let payload = b64(f.valid_claims().to_string());
    let mut cases = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(json!({ "alg": alg, "typ": "at+jwt", "kid": f.kid }).to_string());
        cases.push((
            format!("alg {alg}, empty signature"),
            format!("{header}.{payload}."),
        ));
        cases.push((
            format!("alg {alg}, no signature segment"),
            format!("{header}.{payload}"),
        ));
        cases.push((
            format!("alg {alg}, keygate's original signature kept"),
            format!("{header}.{original_payload}.{original_signature}"),
        ));
        cases.push((
            format!("alg {alg}, a valid ES256 signature over the none header"),
            f.sign_segments(&header, &payload),
        ));
    }
    let bare = b64(json!({ "alg": "none" }).to_string());
    cases.push((
        "alg none, no typ or kid".into(),
        format!("{bare}.{payload}."),
    ));
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    v.finish();
}

/// JWT-02, BCP-01: HS256 "signed" with the server's public key, in every form an attacker
/// could take it from the JWKS, with the real `kid`.
async fn hs256_keyed_with_the_public_key_is_rejected(backend: Backend) {
    let f = Fixture::start(backend).await;
    let jwks_text = f
        .app
        .client
        .get(f.app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let jwk = f.active_jwk().await;
    let x = unb64(jwk["x"].as_str().unwrap());
    let y = unb64(jwk["y"].as_str().unwrap());
    let point = [&[0x04][..], &x, &y].concat();
    assert_eq!(
        point,
        f.signer.public_key().as_ref(),
        "the JWKS publishes the active key"
    );
    let spki = [hex(P256_SPKI_PREFIX), point.clone()].concat();
    let body = STANDARD.encode(&spki);
    let pem_body = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{pem_body}\n-----END PUBLIC KEY-----\n");
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("the JWK JSON", jwk.to_string().into_bytes()),
        ("the whole JWKS document", jwks_text.into_bytes()),
        ("the raw uncompressed point 04||x||y", point.clone()),
        (
            "x||y without the 04 prefix",
            [x.clone(), y.clone()].concat(),
        ),
        (
            "the base64url x coordinate",
            jwk["x"].as_str().unwrap().as_bytes().to_vec(),
        ),
        ("the SPKI DER", spki.clone()),
        (
            "the SPKI PEM with a trailing newline",
            pem.clone().into_bytes(),
        ),
        (
            "the SPKI PEM without a trailing newline",
            pem.trim_end().as_bytes().to_vec(),
        ),
        (
            "the SPKI PEM with CRLF line ends",
            pem.replace('\n', "\r\n").into_bytes(),
        ),
    ];
    let payload = b64(f.valid_claims().to_string());
    let mut cases = Vec::new();
    let algorithms = [
        ("HS256", hmac::HMAC_SHA256),
        ("HS384", hmac::HMAC_SHA384),
        ("HS512", hmac::HMAC_SHA512),
    ];
    for (alg, hmac_alg) in algorithms {
        for (form, secret) in &secrets {
            if alg != "HS256" && !form.starts_with("the SPKI") {
                continue;
            }
            let header = b64(json!({ "alg": alg, "typ": "at+jwt", "kid": f.kid }).to_string());
            let input = format!("{header}.{payload}");
            let tag = hmac::sign(&hmac::Key::new(hmac_alg, secret), input.as_bytes());
            cases.push((
                format!("{alg} keyed with {form}"),
                format!("{input}.{}", b64(tag)),
            ));
        }
    }
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    v.finish();
}

/// JWT-03, BCP-01: a valid ES256 signature under a header naming another algorithm.
async fn a_valid_signature_under_another_alg_header_is_rejected(backend: Backend) {
    let f = Fixture::start(backend).await;
    let mut cases = Vec::new();
    for alg in [
        "ES384", "ES512", "RS256", "RS512", "PS256", "EdDSA", "HS256", "es256", "ES256 ", "",
    ] {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": f.kid });
        cases.push((
            format!("alg {alg:?} over an ES256 signature"),
            f.forge_header(&header),
        ));
    }
    let header = json!({ "typ": "at+jwt", "kid": f.kid });
    cases.push(("no alg at all".into(), f.forge_header(&header)));
    let header = json!({ "alg": ["ES256"], "typ": "at+jwt", "kid": f.kid });
    cases.push(("alg as an array".into(), f.forge_header(&header)));
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    v.finish();
}

/// JWT-04, BCP-09: `kid` injection. Nothing but an exact, current kid may select a key.
async fn kid_injection_is_rejected(backend: Backend) {
    let f = Fixture::start(backend).await;
    let kid_cases: Vec<(&str, Option<Value>)> = vec![
        ("an unknown kid", Some(json!("AAAAAAAAAAAAAAAA"))),
        ("an empty kid", Some(json!(""))),
        ("a path traversal kid", Some(json!("../../../../dev/null"))),
        (
            "a /proc kid",
            Some(json!("/proc/sys/kernel/randomize_va_space")),
        ),
        ("a SQL injection kid", Some(json!("' OR '1'='1"))),
        (
            "a SQL injection kid after the real one",
            Some(json!(format!("{}' OR '1'='1", f.kid))),
        ),
        ("a command injection kid", Some(json!("x|id"))),
        (
            "the real kid with a NUL byte",
            Some(json!(format!("{}\u{0}", f.kid))),
        ),
        (
            "the real kid with a trailing space",
            Some(json!(format!("{} ", f.kid))),
        ),
        (
            "the real kid upper-cased",
            Some(json!(f.kid.to_uppercase())),
        ),
        (
            "the real kid lower-cased",
            Some(json!(f.kid.to_lowercase())),
        ),
        ("a unicode kid", Some(json!("ключ-🔑"))),
        ("a 65-byte kid", Some(json!("k".repeat(65)))),
        ("a 100 KB kid", Some(json!("k".repeat(100 * 1024)))),
        ("kid as a number", Some(json!(1))),
        ("kid as an object", Some(json!({ "kid": f.kid }))),
        ("kid as an array", Some(json!([f.kid]))),
        ("kid null", Some(Value::Null)),
        ("kid missing", None),
    ];
    let mut cases = Vec::new();
    for (why, kid) in kid_cases {
        if kid.as_ref() == Some(&json!(f.kid)) {
            continue; // a case change that changed nothing
        }
        let header = with(&f.valid_header(), "kid", kid);
        cases.push((why.to_owned(), f.forge_header(&header)));
    }
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    v.finish();
}

/// JWT-05, BCP-09: `jku`, `x5u`, `jwk` and `x5c` are refused, even when the token is signed by
/// the real key, and no key URL is fetched: a listener pointed at sees no connection.
async fn key_url_and_embedded_key_headers_are_rejected_without_fetching(backend: Backend) {
    let f = Fixture::start(backend).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let trap = format!("http://{}/jwks.json", listener.local_addr().unwrap());

    let rng = SystemRandom::new();
    let attacker_pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let attacker =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, attacker_pkcs8.as_ref())
            .unwrap();
    let point = attacker.public_key().as_ref();
    let attacker_jwk = json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": f.kid,
        "x": b64(&point[1..33]), "y": b64(&point[33..65]),
    });
    let mut off_curve = attacker_jwk.clone();
    let mut y = point[33..65].to_vec();
    y[31] ^= 1;
    off_curve["y"] = json!(b64(&y));
    let real_jwk = f.active_jwk().await;
    // A syntactically fine but self-made base64 DER blob: no certificate is ever parsed.
    let fake_cert = STANDARD.encode([0x30u8, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00]);

    let headers: Vec<(&str, &str, Value)> = vec![
        ("jku", "a jku pointing at a listener", json!(trap)),
        (
            "jku",
            "a jku pointing at port 1",
            json!("http://127.0.0.1:1/"),
        ),
        (
            "jku",
            "a jku pointing at keygate's own JWKS",
            json!(f.app.url("/.well-known/jwks.json")),
        ),
        ("x5u", "an x5u pointing at a listener", json!(trap)),
        (
            "x5u",
            "an x5u pointing at port 1",
            json!("http://127.0.0.1:1/"),
        ),
        ("jwk", "the real public key embedded as jwk", real_jwk),
        (
            "jwk",
            "an attacker's public key embedded as jwk",
            attacker_jwk.clone(),
        ),
        (
            "jwk",
            "an off-curve public key embedded as jwk",
            off_curve.clone(),
        ),
        ("x5c", "an x5c chain", json!([fake_cert])),
        ("x5c", "an empty x5c chain", json!([])),
    ];
    let mut cases = Vec::new();
    for (name, why, value) in headers {
        let header = with(&f.valid_header(), name, Some(value));
        cases.push((
            format!("{why}, signed by the real key"),
            f.forge_header(&header),
        ));
    }
    // The classic embedded-key attack: the token is signed by the key it carries.
    for (why, jwk) in [("attacker", &attacker_jwk), ("off-curve", &off_curve)] {
        let header = with(&f.valid_header(), "jwk", Some(jwk.clone()));
        let input = format!(
            "{}.{}",
            b64(header.to_string()),
            b64(f.valid_claims().to_string())
        );
        let signature = attacker.sign(&rng, input.as_bytes()).unwrap();
        cases.push((
            format!("an {why} jwk, signed by the attacker's key"),
            format!("{input}.{}", b64(signature)),
        ));
    }
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("keygate fetched a key URL from a token header (from {peer})"),
        Err(e) => panic!("the listener failed: {e}"),
    }
    v.finish();
}

/// JWT-06: RFC 7515 section 4.1.11: a `crit` header keygate does not understand must be
/// refused (keygate understands none).
async fn crit_headers_are_rejected(backend: Backend) {
    let f = Fixture::start(backend).await;
    let crit_cases: Vec<(&str, Value)> = vec![
        (
            "crit with an unknown extension",
            json!({ "crit": ["exp-ext"], "exp-ext": 1 }),
        ),
        (
            "crit naming an absent extension",
            json!({ "crit": ["exp-ext"] }),
        ),
        (
            "crit b64 (RFC 7797)",
            json!({ "crit": ["b64"], "b64": false }),
        ),
        ("crit naming a registered claim", json!({ "crit": ["exp"] })),
        ("an empty crit list", json!({ "crit": [] })),
        (
            "crit as a string",
            json!({ "crit": "exp-ext", "exp-ext": 1 }),
        ),
    ];
    let mut cases = Vec::new();
    for (why, extra) in crit_cases {
        let mut header = f.valid_header();
        for (name, value) in extra.as_object().unwrap() {
            header[name] = value.clone();
        }
        cases.push((why.to_owned(), f.forge_header(&header)));
    }
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    v.finish();
}

/// JWT-07, AV-05: `exp` with the configured leeway, as a boundary pair.
async fn expiry_is_enforced_with_the_configured_leeway(backend: Backend) {
    let f = Fixture::start(backend).await;
    let leeway = f.leeway();
    assert_eq!(leeway, 30, "the test profile's leeway");
    // iat and nbf a token lifetime before exp, so that only exp decides.
    let expiring_at = |exp: i64| {
        let claims = with(&f.valid_claims(), "exp", Some(json!(exp)));
        let claims = with(&claims, "iat", Some(json!(exp - 900)));
        with(&claims, "nbf", Some(json!(exp - 900)))
    };
    let mut v = Verdicts::default();
    let token = f.forge_claims(&expiring_at(now() - (leeway + 5)));
    v.invalid_token_because("exp = now - (leeway + 5)", &f.send(&token).await, "expired");
    f.refused_elsewhere(&mut v, "exp = now - (leeway + 5)", &token)
        .await;
    let token = f.forge_claims(&expiring_at(now() - 86_400));
    v.invalid_token_because("exp a day ago", &f.send(&token).await, "expired");
    f.refused_elsewhere(&mut v, "exp a day ago", &token).await;
    let token = f.forge_claims(&expiring_at(now() - (leeway - 10)));
    v.accepted(
        "exp = now - (leeway - 10), within the leeway",
        &f.send(&token).await,
    );
    let token = f.forge_claims(&with(&f.valid_claims(), "exp", None));
    f.refused_everywhere(&mut v, "exp missing", &token).await;
    v.finish();
}

/// JWT-08 (CVE-2026-25537 class): `exp`, `nbf` and `iat` of the wrong JSON type must not be
/// read as "absent, so not checked".
async fn time_claims_of_the_wrong_json_type_are_rejected(backend: Backend) {
    let f = Fixture::start(backend).await;
    let values: Vec<(&str, Value)> = vec![
        ("the string \"never\"", json!("never")),
        ("a numeric string", json!("99999999999")),
        ("null", Value::Null),
        ("true", json!(true)),
        ("an array", json!([now() + 900])),
        ("an object", json!({ "exp": now() + 900 })),
        ("1e300", json!(1e300)),
        ("-1", json!(-1)),
    ];
    let mut cases = Vec::new();
    for (what, value) in &values {
        cases.push((
            format!("exp {what}"),
            f.forge_claims(&with(&f.valid_claims(), "exp", Some(value.clone()))),
        ));
    }
    for (what, value) in &values {
        if *what == "-1" {
            continue; // an nbf far in the past is harmless
        }
        cases.push((
            format!("nbf {what}"),
            f.forge_claims(&with(&f.valid_claims(), "nbf", Some(value.clone()))),
        ));
    }
    for (what, value) in &values[..4] {
        cases.push((
            format!("iat {what}"),
            f.forge_claims(&with(&f.valid_claims(), "iat", Some(value.clone()))),
        ));
    }
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    v.finish();
}

/// JWT-09: `nbf` and `iat` in the future, with a boundary pair for `nbf`; `nbf` is required.
async fn tokens_not_yet_valid_are_rejected(backend: Backend) {
    let f = Fixture::start(backend).await;
    let leeway = f.leeway();
    let claims_with = |field: &str, value: i64| with(&f.valid_claims(), field, Some(json!(value)));
    let mut v = Verdicts::default();

    let token = f.forge_claims(&claims_with("nbf", now() + leeway + 20));
    v.invalid_token_because(
        "nbf = now + leeway + 20",
        &f.send(&token).await,
        "not valid yet",
    );
    f.refused_elsewhere(&mut v, "nbf = now + leeway + 20", &token)
        .await;
    let token = f.forge_claims(&claims_with("nbf", now() + leeway - 10));
    v.accepted(
        "nbf = now + leeway - 10, within the leeway",
        &f.send(&token).await,
    );

    // exp a lifetime after iat, so that only iat is wrong.
    let issued_at = |iat: i64| {
        let claims = claims_with("iat", iat);
        with(&claims, "exp", Some(json!(iat + 900)))
    };
    let token = f.forge_claims(&issued_at(now() + 86_400));
    v.invalid_token_because("iat = now + 1 day", &f.send(&token).await, "not valid yet");
    f.refused_elsewhere(&mut v, "iat = now + 1 day", &token)
        .await;
    let token = f.forge_claims(&issued_at(now() + leeway + 20));
    v.invalid_token_because(
        "iat = now + leeway + 20",
        &f.send(&token).await,
        "not valid yet",
    );
    f.refused_elsewhere(&mut v, "iat = now + leeway + 20", &token)
        .await;

    let token = f.forge_claims(&with(&f.valid_claims(), "nbf", None));
    f.refused_everywhere(&mut v, "nbf missing", &token).await;
    let token = f.forge_claims(&with(&f.valid_claims(), "iat", None));
    f.refused_everywhere(&mut v, "iat missing", &token).await;
    v.finish();
}

/// JWT-10, AV-02: `iss` must match the issuer exactly.
async fn the_issuer_must_match_exactly(backend: Backend) {
    let f = Fixture::start(backend).await;
    let address = f.app.address.clone();
    let port = f.app.port;
    let issuers: Vec<(&str, Option<Value>)> = vec![
        (
            "another host",
            Some(json!(format!("http://127.0.0.2:{port}"))),
        ),
        (
            "the same server named localhost",
            Some(json!(format!("http://localhost:{port}"))),
        ),
        (
            "another port",
            Some(json!(format!("http://127.0.0.1:{}", port.wrapping_add(1)))),
        ),
        (
            "https instead of http",
            Some(json!(address.replacen("http://", "https://", 1))),
        ),
        ("a trailing slash added", Some(json!(format!("{address}/")))),
        ("a path added", Some(json!(format!("{address}/v1")))),
        (
            "a suffix (.evil.example)",
            Some(json!(format!("{address}.evil.example"))),
        ),
        ("a suffix digit", Some(json!(format!("{address}0")))),
        (
            "a prefix of the issuer",
            Some(json!(&address[..address.len() - 1])),
        ),
        ("a substring of the issuer", Some(json!("127.0.0.1"))),
        (
            "an attacker prefix",
            Some(json!(format!("https://evil.example/{address}"))),
        ),
        ("upper case", Some(json!(address.to_uppercase()))),
        ("a leading space", Some(json!(format!(" {address}")))),
        ("a trailing NUL", Some(json!(format!("{address}\u{0}")))),
        ("empty", Some(json!(""))),
        ("null", Some(Value::Null)),
        ("a number", Some(json!(1))),
        ("an array holding the issuer", Some(json!([address]))),
        (
            "an array holding the issuer and another",
            Some(json!([address, "https://evil.example"])),
        ),
        ("missing", None),
    ];
    let mut cases = Vec::new();
    for (why, iss) in issuers {
        let claims = with(&f.valid_claims(), "iss", iss);
        cases.push((format!("iss: {why}"), f.forge_claims(&claims)));
    }
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    v.finish();
}

/// JWT-11, AV-03: `aud` must name keygate; an array that does is accepted (RFC 7519 4.1.3).
async fn the_audience_must_contain_keygate(backend: Backend) {
    let f = Fixture::start(backend).await;
    let audiences: Vec<(&str, Option<Value>)> = vec![
        ("missing", None),
        ("empty", Some(json!(""))),
        ("another audience", Some(json!("other"))),
        ("an array of another audience", Some(json!(["other"]))),
        ("an empty array", Some(json!([]))),
        ("upper case", Some(json!("KEYGATE"))),
        ("a trailing space", Some(json!("keygate "))),
        ("a prefix", Some(json!("keygat"))),
        ("a suffix", Some(json!("keygate-test"))),
        ("null", Some(Value::Null)),
        ("a number", Some(json!(1))),
        ("an object", Some(json!({ "keygate": true }))),
        ("an array holding an array", Some(json!([["keygate"]]))),
    ];
    let mut cases = Vec::new();
    for (why, aud) in audiences {
        let claims = with(&f.valid_claims(), "aud", aud);
        cases.push((format!("aud: {why}"), f.forge_claims(&claims)));
    }
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    for (why, aud) in [
        ("keygate and another", json!(["keygate", "other"])),
        ("another and keygate", json!(["other", "keygate"])),
        ("keygate alone, in an array", json!(["keygate"])),
    ] {
        let token = f.forge_claims(&with(&f.valid_claims(), "aud", Some(aud)));
        v.accepted(&format!("aud: an array of {why}"), &f.send(&token).await);
    }
    v.finish();
}

/// JWT-12, AV-01, BCP-10/11: only `at+jwt` (in any case, short or media-type form) is an
/// access token.
async fn only_access_token_types_are_accepted(backend: Backend) {
    let f = Fixture::start(backend).await;
    let types: Vec<(&str, Option<Value>)> = vec![
        ("missing", None),
        ("JWT", Some(json!("JWT"))),
        ("jwt", Some(json!("jwt"))),
        ("application/jwt", Some(json!("application/jwt"))),
        ("id_token+jwt", Some(json!("id_token+jwt"))),
        ("rt+jwt", Some(json!("rt+jwt"))),
        ("secevent+jwt", Some(json!("secevent+jwt"))),
        ("logout+jwt", Some(json!("logout+jwt"))),
        ("empty", Some(json!(""))),
        ("at+jwt with a trailing space", Some(json!("at+jwt "))),
        (
            "at+jwt with a parameter",
            Some(json!("at+jwt; charset=utf-8")),
        ),
        ("at", Some(json!("at"))),
        ("null", Some(Value::Null)),
        ("a number", Some(json!(1))),
        ("an array", Some(json!(["at+jwt"]))),
    ];
    let mut cases = Vec::new();
    for (why, typ) in types {
        let header = with(&f.valid_header(), "typ", typ);
        cases.push((format!("typ {why}"), f.forge_header(&header)));
    }
    // An OpenID Connect ID token signed by the same key: aud is the client, it has a nonce.
    let id_token = {
        let claims = with(&f.valid_claims(), "aud", Some(json!(f.key.client_id)));
        let claims = with(&claims, "nonce", Some(json!("n-0S6_WzA2Mj")));
        let header = with(&f.valid_header(), "typ", Some(json!("JWT")));
        f.forge(&header, &claims)
    };
    cases.push((
        "an ID-token-shaped JWT signed by the same key".into(),
        id_token,
    ));
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    for typ in [
        "at+JWT",
        "AT+JWT",
        "application/at+jwt",
        "Application/AT+JWT",
    ] {
        let header = with(&f.valid_header(), "typ", Some(json!(typ)));
        v.accepted(
            &format!("typ {typ}"),
            &f.send(&f.forge_header(&header)).await,
        );
    }
    v.finish();
}

/// JWT-13, BCP-03: any change to a signed token breaks it; a token signed by the active key
/// under the next key's kid is refused.
async fn tampered_tokens_are_rejected(backend: Backend) {
    let f = Fixture::start(backend).await;
    let other = f.app.create_key(&["invoices:read", "invoices:write"]);
    let (header, payload, signature) = segments(&f.token);
    let claims: Value = serde_json::from_slice(&unb64(payload)).unwrap();
    let keep_signature =
        |claims: &Value| format!("{header}.{}.{signature}", b64(claims.to_string()));

    let mut cases = vec![
        (
            "scope widened, old signature kept".to_owned(),
            keep_signature(&with(
                &claims,
                "scope",
                Some(json!("invoices:read invoices:write")),
            )),
        ),
        (
            "client_id changed to another key, old signature kept".to_owned(),
            keep_signature(&with(&claims, "client_id", Some(json!(other.client_id)))),
        ),
        (
            "sub and client_id changed to another key, old signature kept".to_owned(),
            keep_signature(&with(
                &with(&claims, "client_id", Some(json!(other.client_id))),
                "sub",
                Some(json!(other.client_id)),
            )),
        ),
        (
            "exp extended by a day, old signature kept".to_owned(),
            keep_signature(&with(
                &claims,
                "exp",
                Some(json!(claims["exp"].as_i64().unwrap() + 86_400)),
            )),
        ),
        (
            "the payload re-serialized with different whitespace, old signature kept".to_owned(),
            format!(
                "{header}.{}.{signature}",
                b64(serde_json::to_string_pretty(&claims).unwrap())
            ),
        ),
    ];
    let mut flipped_payload = unb64(payload);
    let last = flipped_payload.len() - 3;
    flipped_payload[last] ^= 0x01;
    cases.push((
        "one bit of the payload flipped".into(),
        format!("{header}.{}.{signature}", b64(&flipped_payload)),
    ));
    let mut flipped_signature = unb64(signature);
    flipped_signature[10] ^= 0x01;
    cases.push((
        "one bit of the signature flipped".into(),
        format!("{header}.{payload}.{}", b64(&flipped_signature)),
    ));
    let mut flipped_signature = unb64(signature);
    flipped_signature[63] ^= 0x80;
    cases.push((
        "the top bit of the signature's last byte flipped".into(),
        format!("{header}.{payload}.{}", b64(&flipped_signature)),
    ));
    let second = f.app.token_for(&f.key).await;
    cases.push((
        "the signature of another keygate token".into(),
        format!("{header}.{payload}.{}", segments(&second).2),
    ));

    let jwks = f.jwks().await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "the JWKS holds the active and the next key");
    let next_kid = *kids.iter().find(|k| **k != f.kid).unwrap();
    let next_header = with(&f.valid_header(), "kid", Some(json!(next_kid)));
    cases.push((
        "signed by the active key under the next key's kid".into(),
        f.forge_header(&next_header),
    ));
    cases.push((
        "keygate's token with the kid switched to the next key's".into(),
        format!("{}.{payload}.{signature}", b64(next_header.to_string())),
    ));
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    v.finish();
}

/// JWT-14, JWT-24, BCP-06: garbled encodings. A token that breaks the RFC 6750 `b64token`
/// syntax of the Authorization header (space, `=` inside, other characters) is a malformed
/// request (400 `invalid_request`); everything that fits it reaches the validator and gets
/// 401 `invalid_token`.
async fn garbled_encodings_are_rejected(backend: Backend) {
    let f = Fixture::start(backend).await;
    let (header, payload, signature) = segments(&f.token);
    let header_json = f.valid_header().to_string();
    let claims_json = f.valid_claims().to_string();
    let mut cases: Vec<(String, String)> = vec![
        ("2 segments".into(), format!("{header}.{payload}")),
        ("4 segments".into(), format!("{}.{signature}", f.token)),
        ("a trailing '.'".into(), format!("{}.", f.token)),
        ("a leading '.'".into(), format!(".{}", f.token)),
        ("an empty signature".into(), format!("{header}.{payload}.")),
        ("an empty header".into(), format!(".{payload}.{signature}")),
        ("an empty payload".into(), format!("{header}..{signature}")),
        ("only dots".into(), "..".into()),
        ("a single segment".into(), header.to_owned()),
        (
            "'~' in the signature".into(),
            format!("{header}.{payload}.{}~", &signature[1..]),
        ),
        (
            "'=' padding after the signature".into(),
            format!("{}=", f.token),
        ),
        (
            "'==' padding after the signature".into(),
            format!("{}==", f.token),
        ),
    ];
    // 5 segments: a compact JWE (RFC 7516), with the real kid.
    let jwe_header =
        b64(json!({ "alg": "dir", "enc": "A256GCM", "typ": "at+jwt", "kid": f.kid }).to_string());
    cases.push((
        "a 5-segment compact JWE".into(),
        format!(
            "{jwe_header}..{}.{}.{}",
            b64([7u8; 12]),
            b64(&claims_json),
            b64([9u8; 16])
        ),
    ));
    // The standard base64 alphabet, validly signed over exactly those characters. Varying the
    // jti until the payload segment holds a '+' or '/' keeps the case meaningful.
    let mut claims = f.valid_claims();
    let mut std_token = None;
    for filler in 0..64 {
        claims["jti"] = json!(format!("{}{}", "?>".repeat(filler % 4 + 1), filler));
        let (h, p) = (
            STANDARD
                .encode(&header_json)
                .trim_end_matches('=')
                .to_owned(),
            STANDARD
                .encode(claims.to_string())
                .trim_end_matches('=')
                .to_owned(),
        );
        if p.contains(['+', '/']) {
            std_token = Some(f.sign_segments(&h, &p));
            break;
        }
    }
    let std_token = std_token.expect("a payload whose standard base64 holds '+' or '/'");
    cases.push((
        "standard base64 '+'/'/' in the payload, validly signed".into(),
        std_token,
    ));
    // keygate's own token, with every URL-safe character turned into its standard twin. The
    // signature is random, so retry until it holds one.
    let mut translated = None;
    for _ in 0..20 {
        let token = f.app.token_for(&f.key).await;
        if token.contains(['-', '_']) {
            translated = Some(token.replace('-', "+").replace('_', "/"));
            break;
        }
    }
    cases.push((
        "keygate's token in the standard base64 alphabet".into(),
        translated.expect("a token with '-' or '_'"),
    ));
    // Same signature bytes, non-canonical last character: 64 bytes use only its top 2 bits.
    let mut signature_chars = signature.as_bytes().to_vec();
    let last = signature_chars.last_mut().unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.iter().position(|c| c == last).unwrap();
    assert_eq!(
        index & 0b1111,
        0,
        "keygate's last signature character is canonical"
    );
    *last = alphabet[index | 1];
    cases.push((
        "a non-canonical last signature character".into(),
        format!(
            "{header}.{payload}.{}",
            String::from_utf8(signature_chars).unwrap()
        ),
    ));
    // Not JSON, or not an object, validly signed.
    let bad_parts: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            "a header that is not JSON",
            b"not json".to_vec(),
            claims_json.clone().into_bytes(),
        ),
        (
            "a header that is a JSON array",
            format!("[{header_json}]").into_bytes(),
            claims_json.clone().into_bytes(),
        ),
        (
            "a header that is a JSON string",
            json!(header_json).to_string().into_bytes(),
            claims_json.clone().into_bytes(),
        ),
        (
            "a header that is null",
            b"null".to_vec(),
            claims_json.clone().into_bytes(),
        ),
        (
            "a header with a UTF-8 BOM",
            [&b"\xef\xbb\xbf"[..], header_json.as_bytes()].concat(),
            claims_json.clone().into_bytes(),
        ),
        (
            "a header that is truncated JSON",
            header_json.as_bytes()[..header_json.len() - 1].to_vec(),
            claims_json.clone().into_bytes(),
        ),
        (
            "a payload that is not JSON",
            header_json.clone().into_bytes(),
            b"not json".to_vec(),
        ),
        (
            "a payload that is a JSON array",
            header_json.clone().into_bytes(),
            format!("[{claims_json}]").into_bytes(),
        ),
        (
            "a payload that is a JWS (nested)",
            header_json.clone().into_bytes(),
            json!(f.token).to_string().into_bytes(),
        ),
        (
            "an empty payload",
            header_json.clone().into_bytes(),
            Vec::new(),
        ),
        (
            "invalid UTF-8 in the payload",
            header_json.clone().into_bytes(),
            insert_after(&claims_json, "\"org\":\"def", &[0xff]),
        ),
        (
            "invalid UTF-8 in the header",
            insert_after(&header_json, "\"typ\":\"at+jwt", &[0xfe]),
            claims_json.clone().into_bytes(),
        ),
        (
            "a duplicate alg, none last",
            format!(
                r#"{{"alg":"ES256","alg":"none","typ":"at+jwt","kid":"{}"}}"#,
                f.kid
            )
            .into_bytes(),
            claims_json.clone().into_bytes(),
        ),
        (
            "a duplicate alg, none first",
            format!(
                r#"{{"alg":"none","alg":"ES256","typ":"at+jwt","kid":"{}"}}"#,
                f.kid
            )
            .into_bytes(),
            claims_json.clone().into_bytes(),
        ),
        (
            "a duplicate kid",
            format!(
                r#"{{"alg":"ES256","typ":"at+jwt","kid":"unknown","kid":"{}"}}"#,
                f.kid
            )
            .into_bytes(),
            claims_json.clone().into_bytes(),
        ),
        (
            "a duplicate scope claim",
            header_json.clone().into_bytes(),
            claims_json
                .replacen("\"scope\":", "\"scope\":\"invoices:write\",\"scope\":", 1)
                .into_bytes(),
        ),
        (
            "a duplicate sub claim",
            header_json.clone().into_bytes(),
            claims_json
                .replacen("\"sub\":", "\"sub\":\"someone-else\",\"sub\":", 1)
                .into_bytes(),
        ),
    ];
    for (why, h, p) in bad_parts {
        cases.push((format!("{why}, validly signed"), f.forge_bytes(&h, &p)));
    }
    // The JWS JSON serialization (RFC 7515 7.2), base64url-encoded into one segment.
    let json_serialization =
        json!({ "payload": payload, "protected": header, "signature": signature });
    cases.push((
        "a base64url JWS JSON serialization".into(),
        b64(json_serialization.to_string()),
    ));
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;

    // Outside the b64token syntax: the Authorization header itself is malformed.
    let padded = f.sign_segments(
        &URL_SAFE.encode(&header_json),
        &URL_SAFE.encode(&claims_json),
    );
    assert!(
        segments(&padded).0.ends_with('=') || segments(&padded).1.ends_with('='),
        "the padded encoding has '='"
    );
    let malformed = [
        ("'=' padding inside the token, validly signed", padded),
        (
            "a space inside the token",
            format!("{header}.{payload} .{signature}"),
        ),
        (
            "a tab inside the token",
            format!("{header}.{payload}\t.{signature}"),
        ),
        (
            "'!' in the signature",
            format!("{header}.{payload}.!{}", &signature[1..]),
        ),
        (
            "'*' in the payload",
            format!("{header}.*{}.{signature}", &payload[1..]),
        ),
        ("a JWS JSON serialization", json_serialization.to_string()),
    ];
    for (why, token) in malformed {
        let answer = f
            .send_authorization("/v1/me", &[&format!("Bearer {token}")])
            .await;
        v.invalid_request(why, &answer);
    }
    let answer = f
        .send_authorization("/v1/me", &[&format!("Bearer {}é", f.token)])
        .await;
    v.invalid_request("a non-ASCII character after the token", &answer);
    v.finish();
}

/// JWT-15: huge and deeply nested tokens are refused fast with a 4xx, and the server keeps
/// serving.
async fn huge_and_deeply_nested_tokens_are_refused_without_5xx(backend: Backend) {
    let f = Fixture::start(backend).await;
    let padded = |bytes: usize| {
        let claims = with(&f.valid_claims(), "pad", Some(json!("x".repeat(bytes))));
        f.forge_claims(&claims)
    };
    let mut v = Verdicts::default();
    let token = padded(9 * 1024);
    assert!(token.len() > 9 * 1024);
    let answer = f.send(&token).await;
    if answer.status == 401 {
        v.invalid_token("a validly signed 9 KB token", &answer);
    } else {
        v.one_of("a validly signed 9 KB token", &answer, &[400, 431]);
    }
    // Over the validator's 8 KiB bound, which it checks before parsing anything; over the
    // 4 KiB body bound of introspection, which refuses it before reading the form.
    f.refused_elsewhere(&mut v, "a validly signed 9 KB token", &token)
        .await;
    let token = padded(64 * 1024);
    let answer = f.send(&token).await;
    if answer.status == 401 {
        v.invalid_token("a validly signed 64 KB token", &answer);
    } else {
        v.client_error("a validly signed 64 KB token", &answer);
    }
    // 1 MiB: beyond actix's 128 KiB head buffer, so actix answers (431) before keygate sees
    // it; a refusal or a closed connection, never a 2xx/5xx.
    let token = padded(1024 * 1024);
    match get_unchecked(&f.app, &token).await {
        Ok(response) => v.client_error("a 1 MiB token", &Reply::of_lossy(response).await),
        Err(_) => v.checked += 1, // the connection was closed: a refusal
    }
    // 1000 nested arrays in an unknown claim, under the 4 KiB token limit. With a bad
    // signature, the payload is never parsed. Validly signed, it is a valid token: unknown
    // claims are ignored (RFC 7519 section 4), and serde_json skips them without recursing,
    // so either answer is fine as long as it is not a crash or a 5xx.
    let depth = 1000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let claims_json =
        f.valid_claims()
            .to_string()
            .replacen('{', &format!("{{\"deep\":{nested},"), 1);
    let token = f.forge_bytes(
        f.valid_header().to_string().as_bytes(),
        claims_json.as_bytes(),
    );
    assert!(token.len() < 4096, "{}", token.len());
    let (h, p, _) = segments(&token);
    v.invalid_token(
        "1000 nested arrays in the payload, with a zero signature",
        &f.send(&format!("{h}.{p}.{}", b64([0u8; 64]))).await,
    );
    let answer = f.send(&token).await;
    if answer.status == 200 {
        v.checked += 1;
    } else {
        v.invalid_token(
            "1000 nested arrays in an unknown claim, validly signed (200 or 401)",
            &answer,
        );
    }
    let nested_header =
        f.valid_header()
            .to_string()
            .replacen('{', &format!("{{\"deep\":{nested},"), 1);
    let token = f.forge_bytes(
        nested_header.as_bytes(),
        f.valid_claims().to_string().as_bytes(),
    );
    f.refused_everywhere(
        &mut v,
        "1000 nested arrays in the header, validly signed",
        &token,
    )
    .await;
    // Still serving.
    v.accepted("keygate's token after the attacks", &f.send(&f.token).await);
    v.finish();
}

/// JWT-18, IN-07, RV-06: a revoked key's tokens are refused within a second, as revoked, by
/// keygate, by the remote validator and by introspection.
async fn tokens_of_a_revoked_key_are_refused_within_a_second(backend: Backend) {
    let f = Fixture::start(backend).await;
    let forged = f.forge_claims(&f.valid_claims());
    let mut v = Verdicts::default();
    v.accepted("before revocation", &f.send(&f.token).await);
    let out = f.app.cli(&["api-keys", "revoke", &f.key.client_id]);
    assert!(
        out.status.success(),
        "api-keys revoke failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = &f.app;
    let token = f.token.as_str();
    // /v1/me/permissions validates from memory only, so this waits for the change feed
    // (the CLI is another process).
    let refused = eventually(1, move || async move {
        app.get_with_token("/v1/me/permissions", token)
            .await
            .status()
            == 401
    })
    .await;
    assert!(
        refused,
        "the revoked key's token was still accepted after 1 s"
    );
    v.invalid_token_because(
        "keygate's token after revocation",
        &f.send(&f.token).await,
        "revoked",
    );
    v.invalid_token_because(
        "a forged token issued before revocation",
        &f.send(&forged).await,
        "revoked",
    );
    let answer = f
        .send_authorization("/v1/me/permissions", &[&format!("Bearer {}", f.token)])
        .await;
    v.invalid_token_because("/v1/me/permissions after revocation", &answer, "revoked");
    // The remote validator hears it on the revocation stream; introspection reads memory.
    f.wait_for_remote_refusal(&f.token).await;
    f.refused_elsewhere(&mut v, "keygate's token after revocation", &f.token)
        .await;
    f.refused_elsewhere(&mut v, "a forged token issued before revocation", &forged)
        .await;
    v.finish();
}

/// JWT-22 (CVE-2022-21449 class): degenerate and wrongly encoded ECDSA signatures.
async fn invalid_ecdsa_signatures_are_rejected(backend: Backend) {
    let f = Fixture::start(backend).await;
    let input = {
        let token = f.forge_claims(&f.valid_claims());
        let (h, p, _) = segments(&token);
        format!("{h}.{p}")
    };
    let good = f.es256(&input);
    let order = hex(P256_ORDER);
    let der_signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &f.pkcs8).unwrap();
    let der = der_signer
        .sign(&SystemRandom::new(), input.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec();
    let signatures: Vec<(&str, Vec<u8>)> = vec![
        ("64 zero bytes (r = s = 0)", vec![0; 64]),
        (
            "r = 0 with a valid s",
            [vec![0; 32], good[32..].to_vec()].concat(),
        ),
        (
            "s = 0 with a valid r",
            [good[..32].to_vec(), vec![0; 32]].concat(),
        ),
        (
            "r = s = n (the group order)",
            [order.clone(), order.clone()].concat(),
        ),
        (
            "r = n with a valid s",
            [order.clone(), good[32..].to_vec()].concat(),
        ),
        ("64 0xff bytes", vec![0xff; 64]),
        ("a DER-encoded (ASN.1) signature of the same input", der),
        ("only r (32 bytes)", good[..32].to_vec()),
        (
            "r || s with an extra byte",
            [good.clone(), vec![0]].concat(),
        ),
        (
            "r || s with a leading zero byte",
            [vec![0], good.clone()].concat(),
        ),
        (
            "r and s swapped",
            [good[32..].to_vec(), good[..32].to_vec()].concat(),
        ),
        ("one byte", vec![0]),
    ];
    let mut cases = Vec::new();
    for (why, signature) in signatures {
        cases.push((why.to_owned(), format!("{input}.{}", b64(signature))));
    }
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    v.accepted(
        "the valid signature of the same input",
        &f.send(&format!("{input}.{}", b64(&good))).await,
    );
    v.finish();
}

/// JWT-25: `sub` must equal `client_id` (RFC 9068 2.2 for client credentials), both required.
async fn sub_must_equal_client_id(backend: Backend) {
    let f = Fixture::start(backend).await;
    let other = f.app.create_key(&["invoices:read"]);
    let id = f.key.client_id.clone();
    let claim_cases: Vec<(&str, &str, Option<Value>)> = vec![
        ("sub another subject", "sub", Some(json!("someone-else"))),
        (
            "sub another existing key",
            "sub",
            Some(json!(other.client_id)),
        ),
        (
            "sub the client_id upper-cased",
            "sub",
            Some(json!(id.to_uppercase())),
        ),
        (
            "sub the client_id with a trailing space",
            "sub",
            Some(json!(format!("{id} "))),
        ),
        ("sub empty", "sub", Some(json!(""))),
        ("sub null", "sub", Some(Value::Null)),
        ("sub missing", "sub", None),
        (
            "client_id another existing key",
            "client_id",
            Some(json!(other.client_id)),
        ),
        ("client_id missing", "client_id", None),
        ("client_id as an array", "client_id", Some(json!([id]))),
    ];
    let mut cases = Vec::new();
    for (why, field, value) in claim_cases {
        cases.push((
            why.to_owned(),
            f.forge_claims(&with(&f.valid_claims(), field, value)),
        ));
    }
    // The other RFC 9068 required claims (AT-03), each removed or emptied.
    for (why, field, value) in [
        ("jti missing", "jti", None),
        ("jti empty", "jti", Some(json!(""))),
        ("iss missing", "iss", None),
        ("aud missing", "aud", None),
    ] {
        cases.push((
            why.to_owned(),
            f.forge_claims(&with(&f.valid_claims(), field, value)),
        ));
    }
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    v.finish();
}

/// JWT-16, RFC 6750 2.1 and 3.1: a malformed Authorization header, two of them, or a token in
/// the URL is a 400 `invalid_request`, even when the token is valid.
async fn malformed_authorization_headers_are_invalid_requests(backend: Backend) {
    let f = Fixture::start(backend).await;
    let token = f.token.as_str();
    let bearer = format!("Bearer {token}");
    let mut v = Verdicts::default();
    let headers: Vec<(&str, Vec<String>)> = vec![
        ("Bearer alone", vec!["Bearer".into()]),
        ("Bearer and a space", vec!["Bearer ".into()]),
        (
            "two spaces before the token",
            vec![format!("Bearer  {token}")],
        ),
        (
            "a space inside the token",
            vec![format!("Bearer {token} x")],
        ),
        ("a quoted token", vec![format!("Bearer \"{token}\"")]),
        (
            "two Authorization headers, both valid",
            vec![bearer.clone(), bearer.clone()],
        ),
        (
            "two Authorization headers, one Basic",
            vec![bearer.clone(), "Basic YTpi".into()],
        ),
    ];
    for (why, values) in headers {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        v.invalid_request(why, &f.send_authorization("/v1/me", &values).await);
    }
    let in_query = format!("/v1/me?access_token={token}");
    v.invalid_request(
        "the token in ?access_token= only",
        &f.send_authorization(&in_query, &[]).await,
    );
    v.invalid_request(
        "the token in ?access_token= and in the header",
        &f.send_authorization(&in_query, &[&bearer]).await,
    );
    v.invalid_request(
        "an empty ?access_token= next to a valid header",
        &f.send_authorization("/v1/me?x=1&access_token=", &[&bearer])
            .await,
    );
    v.finish();
}

/// JWT-16, RFC 6750 3.1: no bearer credentials at all gets a challenge with no error code.
async fn missing_or_non_bearer_credentials_get_a_bare_challenge(backend: Backend) {
    let f = Fixture::start(backend).await;
    let mut v = Verdicts::default();
    v.bare_challenge(
        "no Authorization header",
        &f.send_authorization("/v1/me", &[]).await,
    );
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", f.key.client_id, f.key.client_secret))
    );
    v.bare_challenge(
        "Basic with the key's own credentials",
        &f.send_authorization("/v1/me", &[&basic]).await,
    );
    v.bare_challenge(
        "a Digest header",
        &f.send_authorization("/v1/me", &[r#"Digest username="x""#])
            .await,
    );
    // `Bearertoken` is one token: another (unknown) scheme, not a malformed bearer header.
    let glued = format!("Bearer{}", f.token);
    v.bare_challenge(
        "Bearer glued to the token",
        &f.send_authorization("/v1/me", &[&glued]).await,
    );
    let dpop = format!("DPoP {}", f.token);
    v.bare_challenge(
        "the token under the DPoP scheme",
        &f.send_authorization("/v1/me", &[&dpop]).await,
    );
    v.finish();
}

/// The `kid` in a token's header.
fn kid_of(token: &str) -> String {
    let header: Value = serde_json::from_slice(&unb64(segments(token).0)).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// Makes the raw JWS signature of a signing input.
type Sign<'a> = &'a dyn Fn(&[u8]) -> Vec<u8>;

/// A token with this header and keygate's claims, signed by `sign` (the raw JWS signature of
/// the signing input).
fn signed_by(header: &Value, claims: &Value, sign: Sign) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = b64(sign(input.as_bytes()));
    format!("{input}.{signature}")
}

/// JWT-02, JWT-03, BCP-01 (keys of the wrong type): tokens truly signed by an attacker's RSA,
/// Ed25519, P-384 or P-256 key, each with its own algorithm in the header, under the active
/// kid or a kid keygate never made. The key is found by `kid` and brings its own algorithm;
/// a key keygate did not publish is never used, and nothing in the token selects one.
async fn tokens_signed_by_keys_of_another_type_are_rejected(backend: Backend) {
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
    use aws_lc_rs::signature::{
        ECDSA_P384_SHA384_FIXED_SIGNING, Ed25519KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256,
    };
    let f = Fixture::start(backend).await;
    let rng = SystemRandom::new();
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let ed25519 = Ed25519KeyPair::generate().unwrap();
    let p384 = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    let p256 = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let rs256 = |m: &[u8]| {
        let mut signature = vec![0; rsa.public_modulus_len()];
        rsa.sign(&RSA_PKCS1_SHA256, &rng, m, &mut signature)
            .unwrap();
        signature
    };
    let ps256 = |m: &[u8]| {
        let mut signature = vec![0; rsa.public_modulus_len()];
        rsa.sign(&RSA_PSS_SHA256, &rng, m, &mut signature).unwrap();
        signature
    };
    let eddsa = |m: &[u8]| ed25519.sign(m).as_ref().to_vec();
    let es384 = |m: &[u8]| p384.sign(&rng, m).unwrap().as_ref().to_vec();
    let es256 = |m: &[u8]| p256.sign(&rng, m).unwrap().as_ref().to_vec();
    let signers: [(&str, Sign); 5] = [
        ("RS256", &rs256),
        ("PS256", &ps256),
        ("EdDSA", &eddsa),
        ("ES384", &es384),
        ("ES256", &es256),
    ];
    let mut cases = Vec::new();
    for (alg, sign) in signers {
        for (which, kid) in [
            ("the active kid", f.kid.as_str()),
            ("a kid keygate never made", "attacker-key-1"),
        ] {
            let header = json!({ "alg": alg, "typ": "at+jwt", "kid": kid });
            cases.push((
                format!("{alg} by an attacker's key under {which}"),
                signed_by(&header, &f.valid_claims(), sign),
            ));
        }
        // The header naming keygate's algorithm, the signature of another key type.
        cases.push((
            format!("an {alg} signature under keygate's ES256 header"),
            signed_by(&f.valid_header(), &f.valid_claims(), sign),
        ));
    }
    let mut v = Verdicts::default();
    f.all_invalid(&mut v, &cases).await;
    v.finish();
}

/// JWT-17, JW-07: after a signing-key rotation the retired key's tokens keep working
/// everywhere until its verification window closes, then nowhere; the retired kid over a
/// signature of the new key is refused throughout.
async fn a_retired_signing_key_is_refused_everywhere_once_its_window_closes(backend: Backend) {
    let f = Fixture::start(backend).await;
    let old_kid = f.kid.clone();
    let out = f.app.cli(&["signing-keys", "rotate"]);
    assert!(
        out.status.success(),
        "signing-keys rotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated = eventually(3, || async {
        kid_of(&f.app.token_for(&f.key).await) != old_kid
    })
    .await;
    assert!(rotated, "keygate signs with the new key within 3 s");
    let (new_kid, algorithm, pkcs8) = f.app.active_signing_key();
    assert_eq!(algorithm, "ES256");
    assert_ne!(new_kid, old_kid);
    let new_signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).unwrap();
    let by_new_key = |header: &Value| {
        signed_by(header, &f.valid_claims(), &|m: &[u8]| {
            new_signer
                .sign(&SystemRandom::new(), m)
                .unwrap()
                .as_ref()
                .to_vec()
        })
    };
    let mut v = Verdicts::default();

    // Within the window: the retired key still verifies, everywhere.
    let forged_old = f.forge_claims(&f.valid_claims());
    f.accepted_everywhere(
        &mut v,
        "the retired key's token within its window",
        &f.token,
    )
    .await;
    f.accepted_everywhere(
        &mut v,
        "a token by the retired key within its window",
        &forged_old,
    )
    .await;
    let fresh = by_new_key(&json!({ "alg": "ES256", "typ": "at+jwt", "kid": new_kid }));
    f.accepted_everywhere(&mut v, "a token by the new key under its own kid", &fresh)
        .await;
    let mixed = by_new_key(&json!({ "alg": "ES256", "typ": "at+jwt", "kid": old_kid }));
    f.refused_everywhere(
        &mut v,
        "the retired kid over the new key's signature",
        &mixed,
    )
    .await;

    // Close the window as if the token lifetime had passed, and announce it.
    let past = "2020-01-01 00:00:00";
    f.app.run_sql(&format!(
        "UPDATE signing_keys SET verify_until = '{past}' WHERE kid = '{old_kid}';
             INSERT INTO state_changes (kind, subject, not_before, expires_at, created_at)
             VALUES ('signing_keys', '', 0, 4102444800, '{past}');"
    ));
    f.refused_everywhere_soon(&mut v, "the retired key's token past its window", &f.token)
        .await;
    f.refused_everywhere(
        &mut v,
        "a token by the retired key past its window",
        &forged_old,
    )
    .await;
    f.accepted_everywhere(&mut v, "a token by the new key after the window", &fresh)
        .await;
    v.finish();
}

/// JWT-18, BCP-07: a deleted key's tokens are refused everywhere within a second, as the
/// subject no longer exists.
async fn tokens_of_a_deleted_key_are_refused_everywhere(backend: Backend) {
    let f = Fixture::start(backend).await;
    let admin = f.app.create_user(ADMIN, &["--admin"]);
    let operator = Who::Session(f.app.log_in(&admin.email, &admin.password).await);
    let forged = f.forge_claims(&f.valid_claims());
    let path = format!("/v1/api-keys/{}", f.key.client_id);
    let deleted = Reply::send(f.app.request_as(&operator, Method::DELETE, &path)).await;
    assert_eq!(deleted.status, 200, "DELETE {path}: {}", deleted.text);
    let mut v = Verdicts::default();
    f.refused_everywhere_soon(&mut v, "keygate's token of a deleted key", &f.token)
        .await;
    f.refused_everywhere(&mut v, "a forged token of a deleted key", &forged)
        .await;
    v.finish();
}

/// JWT-18 (secret rotation), TOK-RT-01: rotating a key's secret (no grace period) ends the
/// old secret at once, but not the access tokens already issued: they stay valid everywhere
/// until they expire (at most 900 s). Revoking the key is what ends them.
async fn a_secret_rotation_ends_the_old_secret_but_not_granted_tokens(backend: Backend) {
    let f = Fixture::start(backend).await;
    let out = f
        .app
        .cli(&["api-keys", "rotate", &f.key.client_id, "--json"]);
    assert!(
        out.status.success(),
        "api-keys rotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let old_secret_refused = eventually(5, || async {
        f.app
            .post_token_form(
                "grant_type=client_credentials",
                Some((&f.key.client_id, &f.key.client_secret)),
            )
            .await
            .status()
            == 401
    })
    .await;
    assert!(
        old_secret_refused,
        "the old secret is refused after a rotation"
    );
    // Past one feed interval, both here and on the revocation stream.
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    let mut v = Verdicts::default();
    f.accepted_everywhere(&mut v, "a token issued before the rotation", &f.token)
        .await;
    v.finish();
}

/// `GET /v1/me` with a bearer token on a client of its own, without the panic on a transport
/// error: a 1 MiB header may be cut off, and the connection actix then closes must not be
/// reused by the app's client.
async fn get_unchecked(app: &TestApp, token: &str) -> reqwest::Result<Response> {
    reqwest::Client::new()
        .get(app.url("/v1/me"))
        .bearer_auth(token)
        .send()
        .await
}

backend_tests!(
    forged_tokens_signed_by_the_active_key_are_accepted,
    alg_none_is_rejected,
    hs256_keyed_with_the_public_key_is_rejected,
    a_valid_signature_under_another_alg_header_is_rejected,
    kid_injection_is_rejected,
    key_url_and_embedded_key_headers_are_rejected_without_fetching,
    crit_headers_are_rejected,
    expiry_is_enforced_with_the_configured_leeway,
    time_claims_of_the_wrong_json_type_are_rejected,
    tokens_not_yet_valid_are_rejected,
    the_issuer_must_match_exactly,
    the_audience_must_contain_keygate,
    only_access_token_types_are_accepted,
    tampered_tokens_are_rejected,
    garbled_encodings_are_rejected,
    huge_and_deeply_nested_tokens_are_refused_without_5xx,
    tokens_of_a_revoked_key_are_refused_within_a_second,
    invalid_ecdsa_signatures_are_rejected,
    sub_must_equal_client_id,
    tokens_signed_by_keys_of_another_type_are_rejected,
    a_retired_signing_key_is_refused_everywhere_once_its_window_closes,
    tokens_of_a_deleted_key_are_refused_everywhere,
    a_secret_rotation_ends_the_old_secret_but_not_granted_tokens,
    malformed_authorization_headers_are_invalid_requests,
    missing_or_non_bearer_credentials_get_a_bare_challenge,
);
