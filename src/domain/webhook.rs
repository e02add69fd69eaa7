//! Webhooks' vocabulary: the events keygate sends, an endpoint's URL and event filter, and its
//! signing secret (Standard Webhooks: `whsec_` and 32 random bytes, base64).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

use super::status::closed_set;
use super::{ValidationError, random};

closed_set! {
    /// Every event an endpoint can subscribe to.
    EventType, field "events" {
        ApiKeyCreated => "api_key.created",
        ApiKeyUpdated => "api_key.updated",
        ApiKeyRotated => "api_key.rotated",
        ApiKeyDisabled => "api_key.disabled",
        ApiKeyEnabled => "api_key.enabled",
        ApiKeyRevoked => "api_key.revoked",
        ApiKeyDeleted => "api_key.deleted",
        ApiKeyExpiring => "api_key.expiring",
        ApiKeyExpired => "api_key.expired",
        ApiKeySecretExpired => "api_key.secret_expired",
        /// Sent only by "send a test event", to that endpoint.
        WebhookTest => "webhook_endpoint.test",
    }
}

/// Which events an endpoint receives: every one (`*`), or those listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventFilter {
    Every,
    Only(Vec<EventType>),
}

impl EventFilter {
    /// `["*"]`, or event types (at least one, no repeats).
    pub fn parse(items: &[String]) -> Result<EventFilter, ValidationError> {
        if items.iter().any(|i| i == "*") {
            if items.len() > 1 {
                return Err(ValidationError::new(
                    "events",
                    "`*` stands for every event: give it alone",
                ));
            }
            return Ok(EventFilter::Every);
        }
        if items.is_empty() {
            return Err(ValidationError::new(
                "events",
                "give at least one event type, or `*`",
            ));
        }
        let mut types = Vec::with_capacity(items.len());
        for item in items {
            let event: EventType = item.parse()?;
            if event == EventType::WebhookTest {
                return Err(ValidationError::new(
                    "events",
                    "webhook_endpoint.test is sent to an endpoint on request only",
                ));
            }
            if !types.contains(&event) {
                types.push(event);
            }
        }
        types.sort();
        Ok(EventFilter::Only(types))
    }

    /// The stored form: `*`, or the types space-separated.
    pub fn to_stored(&self) -> String {
        match self {
            EventFilter::Every => "*".into(),
            EventFilter::Only(types) => types
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    pub fn from_stored(text: &str) -> EventFilter {
        if text == "*" {
            return EventFilter::Every;
        }
        EventFilter::Only(text.split(' ').filter_map(|t| t.parse().ok()).collect())
    }

    pub fn matches(&self, event: EventType) -> bool {
        match self {
            EventFilter::Every => true,
            EventFilter::Only(types) => types.contains(&event),
        }
    }

    /// As the API shows it: `["*"]` or the types.
    pub fn names(&self) -> Vec<&'static str> {
        match self {
            EventFilter::Every => vec!["*"],
            EventFilter::Only(types) => types.iter().map(|t| t.as_str()).collect(),
        }
    }
}

/// An endpoint's URL: absolute `https://` (or `http://` where the deployment allows it), with
/// a host, no credentials and no fragment, at most 2048 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(text: &str, allow_http: bool) -> Result<WebhookUrl, ValidationError> {
        let refuse = |why: &str| ValidationError::new("url", why.to_owned());
        let text = text.trim();
        if text.len() > 2048 || text.chars().any(|c| c.is_control() || c == ' ') {
            return Err(refuse(
                "must be a URL of at most 2048 characters, without spaces",
            ));
        }
        let rest = if let Some(rest) = text.strip_prefix("https://") {
            rest
        } else if let Some(rest) = text.strip_prefix("http://") {
            if !allow_http {
                return Err(refuse("must be an https:// URL"));
            }
            rest
        } else {
            return Err(refuse("must be an https:// URL"));
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() {
            return Err(refuse("must name a host"));
        }
        if authority.contains('@') {
            return Err(refuse("must not carry credentials"));
        }
        if text.contains('#') {
            return Err(refuse("must not have a fragment"));
        }
        Ok(WebhookUrl(text.to_owned()))
    }

    pub fn from_stored(text: String) -> WebhookUrl {
        WebhookUrl(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An endpoint's signing secret, `whsec_` and 32 random bytes in base64 (the Standard Webhooks
/// form). `Debug` redacts it.
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl WebhookSecret {
    pub const TAG: &'static str = "whsec_";

    pub fn generate() -> WebhookSecret {
        let mut bytes = [0u8; 32];
        random::fill(&mut bytes);
        WebhookSecret(format!("{}{}", Self::TAG, STANDARD.encode(bytes)).into())
    }

    /// A secret as stored (after unsealing).
    pub fn from_stored(text: String) -> WebhookSecret {
        WebhookSecret(text.into())
    }

    /// The HMAC key: the bytes after `whsec_`.
    pub fn key(&self) -> Vec<u8> {
        let text = self.0.expose_secret();
        STANDARD
            .decode(text.strip_prefix(Self::TAG).unwrap_or(text))
            .unwrap_or_default()
    }

    /// The secret itself, for the one answer that shows it, and for sealing.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_every_or_listed_types() {
        assert_eq!(
            EventFilter::parse(&["*".into()]).unwrap(),
            EventFilter::Every
        );
        let only =
            EventFilter::parse(&["api_key.revoked".into(), "api_key.created".into()]).unwrap();
        assert_eq!(only.to_stored(), "api_key.created api_key.revoked");
        assert_eq!(EventFilter::from_stored(&only.to_stored()), only);
        assert!(only.matches(EventType::ApiKeyRevoked));
        assert!(!only.matches(EventType::ApiKeyRotated));
        for bad in [
            vec![],
            vec!["*".to_owned(), "api_key.created".to_owned()],
            vec!["api_key.exploded".to_owned()],
            vec!["webhook_endpoint.test".to_owned()],
        ] {
            assert_eq!(
                EventFilter::parse(&bad).unwrap_err().field,
                "events",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn urls_are_https_with_a_host_and_no_credentials() {
        assert!(WebhookUrl::parse("https://hooks.example.com/keygate?x=1", false).is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook", true).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#top",
            "https://hooks.example.com/a b",
            "hooks.example.com",
        ] {
            assert_eq!(
                WebhookUrl::parse(bad, false).unwrap_err().field,
                "url",
                "{bad}"
            );
        }
    }

    #[test]
    fn secrets_are_standard_webhooks_secrets() {
        let secret = WebhookSecret::generate();
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(secret.key().len(), 32);
        assert!(!format!("{secret:?}").contains(&secret.expose()[6..]));
    }
}
