//! HTTPS: keygate serving TLS itself from PEM files, and reading them again when they change
//! or on SIGHUP without dropping a connection; `Strict-Transport-Security` on what goes over
//! HTTPS; and `server.require_https`, which refuses plain HTTP unless a trusted proxy says the
//! request arrived over HTTPS.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use keygate::tokens::MasterKey;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256,
    PKCS_ED25519, SerialNumber, SignatureAlgorithm,
};
use reqwest::header::{LOCATION, STRICT_TRANSPORT_SECURITY};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, ServerProcess, TestApp, TestDatabase, eventually, keygate_command, spawn_app_with,
    stderr, stdout,
};

/// A certificate authority of the test's own, which the test's clients trust.
struct Authority(CertifiedIssuer<'static, KeyPair>);

/// A server certificate for `127.0.0.1` and `localhost`, in PEM, and its DER.
struct Leaf {
    certificate: String,
    private_key: String,
    der: Vec<u8>,
}

impl Authority {
    fn new() -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
        Authority(CertifiedIssuer::self_signed(params, key).unwrap())
    }

    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.0.pem().as_bytes()).unwrap())
            .tls_info(true)
            .build()
            .unwrap()
    }

    /// A certificate with a new key of `algorithm`. Two Ed25519 ones have files of the same
    /// sizes (fixed serial, dates and names; fixed-size keys and signatures).
    fn leaf(&self, algorithm: &'static SignatureAlgorithm) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.serial_number = Some(SerialNumber::from(vec![7u8; 16]));
        let key = KeyPair::generate_for(algorithm).unwrap();
        let certificate = params.signed_by(&key, &self.0).unwrap();
        Leaf {
            certificate: certificate.pem(),
            private_key: key.serialize_pem(),
            der: certificate.der().to_vec(),
        }
    }
}

/// Where keygate reads its certificate and key.
struct Files {
    certificate: PathBuf,
    private_key: PathBuf,
}

impl Files {
    fn in_dir(dir: &Path) -> Files {
        Files {
            certificate: dir.join("certificate.pem"),
            private_key: dir.join("private-key.pem"),
        }
    }

    fn install(&self, leaf: &Leaf) {
        std::fs::write(&self.private_key, &leaf.private_key).unwrap();
        std::fs::write(&self.certificate, &leaf.certificate).unwrap();
    }

    fn modified(&self) -> (SystemTime, SystemTime) {
        let time = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
        (time(&self.certificate), time(&self.private_key))
    }

    /// Gives the files these modification times back, so that only a signal can tell keygate
    /// they changed.
    fn set_modified(&self, (certificate, private_key): (SystemTime, SystemTime)) {
        for (path, time) in [
            (&self.certificate, certificate),
            (&self.private_key, private_key),
        ] {
            let file = std::fs::File::options().write(true).open(path).unwrap();
            file.set_modified(time).unwrap();
        }
    }
}

/// The certificate the server presented on the connection that carried this answer.
fn presented(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("a TLS answer")
        .to_vec()
}

/// The certificate a new connection gets.
async fn presented_to_a_new_client(authority: &Authority, base: &str) -> Vec<u8> {
    let response = authority
        .client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    presented(&response)
}

#[actix_web::test]
async fn keygate_serves_https_and_takes_a_new_certificate_without_dropping_a_connection() {
    let authority = Authority::new();
    let dir = tempfile::tempdir().unwrap();
    let files = Files::in_dir(dir.path());
    let first = authority.leaf(&PKCS_ECDSA_P256_SHA256);
    files.install(&first);
    let db = TestDatabase::create(Backend::Sqlite);
    let master_key = MasterKey::generate_encoded();
    let keygate = |args: &[&str]| {
        let mut command = keygate_command();
        command
            .current_dir(dir.path())
            .args(["--profile", "test", "--database", db.url()])
            .args(args)
            .env("KEYGATE_MASTER_KEY", &master_key)
            .env("KEYGATE_SERVER__TLS_CERTIFICATE", &files.certificate)
            .env("KEYGATE_SERVER__TLS_PRIVATE_KEY", &files.private_key)
            .env("RUST_LOG", "warn,keygate::startup=info,keygate::tls=info");
        command
    };
    let server = ServerProcess::start_announced(
        &mut keygate(&["serve", "--bind", "127.0.0.1:0"]),
        "keygate listening on https://",
    );
    let base = server.address.replacen("http://", "https://", 1);

    // Over HTTPS, with HSTS, and an issuer that says https.
    let kept = authority.client();
    let health = kept.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(presented(&health), first.der);
    assert_eq!(
        health.headers()[STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
    let metadata: Value = kept
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], base.as_str());
    let created = keygate(&[
        "api-keys",
        "create",
        "--name",
        "over tls",
        "--scopes",
        "invoices:read",
        "--json",
    ])
    .output()
    .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    let key: Value = serde_json::from_str(&stdout(&created)).unwrap();
    let issued = kept
        .post(format!("{base}/v1/token"))
        .json(&json!({ "client_id": key["client_id"], "client_secret": key["client_secret"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 200);
    assert!(
        reqwest::get(format!("{}/healthz", server.address))
            .await
            .is_err(),
        "the TLS port speaks no plain HTTP"
    );

    // A new pair on disk: new connections get it; the open one goes on.
    let second = authority.leaf(&PKCS_ED25519);
    files.install(&second);
    let switched = eventually(10, || async {
        let alive = kept.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(alive.status(), 200);
        presented_to_a_new_client(&authority, &base).await == second.der
    })
    .await;
    assert!(switched, "a changed file is taken up: {}", server.log());
    let alive = kept.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(alive.status(), 200, "the open connection was not dropped");
    assert_eq!(
        presented(&alive),
        first.der,
        "and it is the same connection"
    );
    let stamps = files.modified();

    // A broken file is refused, and the last good pair stays in use.
    std::fs::write(
        &files.certificate,
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .unwrap();
    let refused = eventually(10, || async {
        server.log().contains("keeping the previous certificate")
    })
    .await;
    assert!(refused, "the broken file is reported: {}", server.log());
    assert_eq!(
        presented_to_a_new_client(&authority, &base).await,
        second.der
    );

    // SIGHUP reads the files even when nothing about them looks changed.
    let third = authority.leaf(&PKCS_ED25519);
    assert_eq!(
        (third.certificate.len(), third.private_key.len()),
        (second.certificate.len(), second.private_key.len()),
        "the same sizes, so that only the signal can tell"
    );
    files.install(&third);
    files.set_modified(stamps);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        presented_to_a_new_client(&authority, &base).await,
        second.der,
        "files that look unchanged are not read again by themselves"
    );
    server.signal("HUP");
    let reloaded = eventually(10, || async {
        presented_to_a_new_client(&authority, &base).await == third.der
    })
    .await;
    assert!(reloaded, "SIGHUP reads them: {}", server.log());
}

#[actix_web::test]
async fn a_certificate_that_does_not_load_stops_the_start() {
    let authority = Authority::new();
    let dir = tempfile::tempdir().unwrap();
    let files = Files::in_dir(dir.path());
    let leaf = authority.leaf(&PKCS_ECDSA_P256_SHA256);
    let other = authority.leaf(&PKCS_ECDSA_P256_SHA256);
    std::fs::write(&files.certificate, &leaf.certificate).unwrap();
    std::fs::write(&files.private_key, &other.private_key).unwrap();
    let db = TestDatabase::create(Backend::Sqlite);
    let out = keygate_command()
        .current_dir(dir.path())
        .args(["--profile", "test", "--database", db.url()])
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("KEYGATE_MASTER_KEY", MasterKey::generate_encoded())
        .env("KEYGATE_SERVER__TLS_CERTIFICATE", &files.certificate)
        .env("KEYGATE_SERVER__TLS_PRIVATE_KEY", &files.private_key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("does not belong to the certificate"),
        "{}",
        stderr(&out)
    );

    let out = keygate_command()
        .args(["--profile", "test", "--database", db.url(), "migrate"])
        .env("KEYGATE_SERVER__TLS_CERTIFICATE", &files.certificate)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a certificate without its key");
    assert!(stderr(&out).contains("go together"), "{}", stderr(&out));
}

/// A keygate that requires HTTPS, trusting 127.0.0.1 as its proxy when `behind_proxy`.
async fn requiring_https(behind_proxy: bool) -> TestApp {
    spawn_app_with(Backend::Sqlite, |settings| {
        settings.server.require_https = true;
        settings.tokens.issuer = "https://auth.example.test".into();
        if behind_proxy {
            settings.rate_limit.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        }
    })
    .await
}

async fn token_request(app: &TestApp, forwarded_proto: Option<&str>) -> reqwest::Response {
    let key = app.create_key(&["invoices:read"]);
    let mut request = app
        .client
        .post(app.url("/v1/token"))
        .json(&json!({ "client_id": key.client_id, "client_secret": key.client_secret }));
    if let Some(proto) = forwarded_proto {
        request = request.header("x-forwarded-proto", proto);
    }
    request.send().await.unwrap()
}

#[actix_web::test]
async fn plain_http_is_refused_unless_a_trusted_proxy_says_https() {
    let app = requiring_https(false).await;
    let refused = token_request(&app, None).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.headers().get(STRICT_TRANSPORT_SECURITY).is_none());
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("HTTPS only"),
        "{body}"
    );
    let claimed = token_request(&app, Some("https")).await;
    assert_eq!(
        claimed.status(),
        400,
        "a client's own X-Forwarded-Proto is not believed"
    );

    let page = app
        .client
        .get(app.url("/console/keys?status=enabled"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 308, "a page is sent to its HTTPS address");
    assert_eq!(
        page.headers()[LOCATION],
        "https://auth.example.test/console/keys?status=enabled",
        "at the issuer, never at the Host the request named"
    );
    for probe in ["/healthz", "/readyz", "/metrics"] {
        let answer = app.client.get(app.url(probe)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{probe} answers over plain HTTP");
    }
}

#[actix_web::test]
async fn behind_a_trusted_proxy_https_is_served_with_hsts() {
    let app = requiring_https(true).await;
    let over_https = token_request(&app, Some("https")).await;
    assert_eq!(over_https.status(), 200);
    assert_eq!(
        over_https.headers()[STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
    for proto in [None, Some("http")] {
        let refused = token_request(&app, proto).await;
        assert_eq!(refused.status(), 400, "{proto:?}: plain HTTP at the proxy");
    }
}
