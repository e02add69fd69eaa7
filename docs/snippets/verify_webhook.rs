// Verifying a keygate webhook in Rust (aws-lc-rs and base64). `secret` is the endpoint's
// `whsec_…`; the headers and the raw body are as they arrived.
use aws_lc_rs::{constant_time, hmac};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub fn verify(secret: &str, id: &str, timestamp: &str, signature: &str, body: &[u8]) -> bool {
    // Refuse replays: the timestamp must be within five minutes of now.
    let Ok(sent) = timestamp.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if (now - sent).abs() > 300 {
        return false;
    }
    let Some(Ok(key)) = secret.strip_prefix("whsec_").map(|k| STANDARD.decode(k)) else {
        return false;
    };
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let expected = STANDARD.encode(hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key),
        &signed,
    ));
    // Several signatures while a rolled secret's grace lasts: any may match.
    signature.split(' ').any(|candidate| {
        candidate.strip_prefix("v1,").is_some_and(|given| {
            constant_time::verify_slices_are_equal(given.as_bytes(), expected.as_bytes()).is_ok()
        })
    })
}
