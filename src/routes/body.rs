//! Reading request bodies: a size limit that holds with or without Content-Length, and
//! `JsonBody<T>`, whose errors name the field at fault (and never echo a value's text).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use crate::domain::ValidationError;
use crate::error::ApiError;
use crate::state::AppState;

/// Reads at most `limit` bytes, refusing a larger declared or actual body with 413.
pub async fn read_limited<S>(
    req: &HttpRequest,
    payload: &mut S,
    limit: usize,
) -> Result<BytesMut, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::invalid_request("the request body could not be read"))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A JSON request body of type `T` (management API): `application/json`, within
/// `server.max_body_bytes`, every field known (`T` denies unknown fields).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let is_json = req
                .mime_type()
                .ok()
                .flatten()
                .is_some_and(|m| m.type_() == "application" && m.subtype() == "json");
            if !is_json {
                return Err(ApiError::invalid_request(
                    "Content-Type must be application/json",
                ));
            }
            let limit = req
                .app_data::<web::Data<AppState>>()
                .map_or(65_536, |s| s.service.settings.server.max_body_bytes);
            let body = read_limited(&req, &mut payload, limit).await?;
            parse_json(&body).map(JsonBody)
        })
    }
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde also reads a struct from a JSON array of its fields in order (`[null, "x"]`); every
    // body keygate takes is an object that names its fields, so an array is refused unread.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::Validation(ValidationError::new(
            "body",
            "must be a JSON object",
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::invalid_request(format!(
                "the body is not valid JSON (line {}, column {})",
                inner.line(),
                inner.column()
            ));
        }
        let path = e.path().to_string();
        let message = inner.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::Validation(ValidationError::new(field, message))
    })?;
    de.end()
        .map_err(|_| ApiError::invalid_request("trailing data after the JSON body"))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        nested: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u8,
    }

    fn field_of(body: &str) -> String {
        match parse_json::<Sample>(body.as_bytes()) {
            Err(ApiError::Validation(v)) => v.field.into_owned(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(r#"{"name": 5}"#), "name");
        assert_eq!(
            field_of(r#"{"name": "x", "nested": {"count": "many"}}"#),
            "nested.count"
        );
        assert_eq!(field_of(r#"{"name": "x", "extra": 1}"#), "extra");
        assert_eq!(field_of(r#"{}"#), "body");
    }

    #[test]
    fn an_array_is_not_read_as_the_object_s_fields() {
        for body in [r#"["x", null]"#, " \n[]", "[[]]"] {
            assert_eq!(field_of(body), "body", "{body}");
        }
    }

    #[test]
    fn broken_json_is_an_invalid_request() {
        assert!(matches!(
            parse_json::<Sample>(b"{"),
            Err(ApiError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse_json::<Sample>(br#"{"name":"x"} {}"#),
            Err(ApiError::InvalidRequest(_))
        ));
    }
}
