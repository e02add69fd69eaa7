//! A submitted console form: `application/x-www-form-urlencoded`, within the body limit,
//! every value kept in order (checkbox groups repeat their name).

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::page::ConsoleError;
use crate::domain::ValidationError;
use crate::routes::body::read_limited;
use crate::state::AppState;

pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form {
            fields: form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The first value of `name`, if given and not blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every non-blank value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a checkbox named `name` was ticked.
    pub fn ticked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

impl FromRequest for Form {
    type Error = ConsoleError;
    type Future = LocalBoxFuture<'static, Result<Self, ConsoleError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = web::Payload::from_request(&req, payload).into_inner();
        Box::pin(async move {
            let form = req.mime_type().ok().flatten().is_some_and(|m| {
                m.type_() == "application" && m.subtype() == "x-www-form-urlencoded"
            });
            if !form {
                return Err(crate::service::Error::from(ValidationError::new(
                    "body",
                    "a console form is sent as application/x-www-form-urlencoded",
                ))
                .into());
            }
            let limit = req
                .app_data::<web::Data<AppState>>()
                .map_or(65_536, |s| s.service.settings.server.max_body_bytes);
            let mut payload = payload.map_err(|_| ConsoleError::StaleForm)?;
            let body = read_limited(&req, &mut payload, limit).await.map_err(|_| {
                ConsoleError::from(crate::service::Error::from(ValidationError::new(
                    "body",
                    "the form is too large",
                )))
            })?;
            Ok(Form::parse(&body))
        })
    }
}
