//! The API reference at `/docs`: `/openapi.json` rendered by Swagger UI in the browser. Swagger
//! UI's files come compiled into keygate (from the `utoipa-swagger-ui` crate's vendored copy)
//! and are served from `/docs/{file}`, so the page loads nothing from any other host and works
//! offline.

use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use crate::error::ApiError;

/// Scripts and styles from keygate only, with no inline code; Swagger UI's stylesheet draws
/// its icons from `data:` images, and the page fetches nothing but keygate's own document.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The page links each file with its checksum in the query (`?v=`), so a file can be cached
/// for a year: another keygate with other files links other URLs.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A file of the page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Every file `/docs/{file}` serves: Swagger UI's own (only those the page uses), and keygate's
/// script that starts it and stylesheet around it.
static ASSETS: LazyLock<[Asset; 4]> = LazyLock::new(|| {
    [
        swagger_ui("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        swagger_ui("swagger-ui.css", "text/css; charset=utf-8"),
        Asset {
            name: "docs.js",
            content_type: "text/javascript; charset=utf-8",
            body: include_bytes!("../../assets/docs/docs.js"),
        },
        Asset {
            name: "docs.css",
            content_type: "text/css; charset=utf-8",
            body: include_bytes!("../../assets/docs/docs.css"),
        },
    ]
});

/// One of Swagger UI's files, as compiled into keygate.
fn swagger_ui(name: &'static str, content_type: &'static str) -> Asset {
    let config = std::sync::Arc::new(utoipa_swagger_ui::Config::default());
    let file = utoipa_swagger_ui::serve(name, config)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("Swagger UI's {name} is compiled in"));
    let std::borrow::Cow::Borrowed(body) = file.bytes else {
        panic!("Swagger UI's {name} is served as compiled in")
    };
    Asset {
        name,
        content_type,
        body,
    }
}

/// The page, with each file's link versioned by its checksum.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    ASSETS.iter().fold(
        include_str!("../../assets/docs/index.html").to_owned(),
        |page, asset| {
            let version = format!("{:08x}", crc32fast::hash(asset.body));
            page.replace(&format!("{{{}}}", asset.name), &version)
        },
    )
});

#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "docs",
    tag = "discovery",
    summary = "This document as a browsable reference (HTML)",
    description = "Swagger UI, served by keygate with everything it loads: the page asks no \
        other host for anything. `Cache-Control: public, max-age=300`.",
    responses((status = 200, description = "An HTML page", content_type = "text/html", body = String))
)]
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ))
        .body(PAGE.as_str())
}

/// A file of the page; any other name is the JSON 404 of an unknown path.
pub async fn asset(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let asset = ASSETS
        .iter()
        .find(|asset| asset.name == file.as_str())
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)))
        .body(asset.body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_every_file_by_its_checksum() {
        for asset in ASSETS.iter() {
            assert!(!asset.body.is_empty(), "{} is empty", asset.name);
            let link = format!(
                "\"docs/{}?v={:08x}\"",
                asset.name,
                crc32fast::hash(asset.body)
            );
            assert!(PAGE.contains(&link), "the page links {link}");
        }
        assert!(
            !PAGE.contains('{'),
            "every placeholder is filled: {}",
            *PAGE
        );
    }
}
