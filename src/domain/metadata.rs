//! Key metadata: up to 20 string values, names up to 40 characters, values up to
//! 500.

use std::collections::BTreeMap;

use super::ValidationError;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    pub fn parse(value: &serde_json::Value) -> Result<Metadata, ValidationError> {
        let refuse = |m: &str| ValidationError::new("metadata", m);
        let object = value
            .as_object()
            .ok_or_else(|| refuse("must be an object of strings"))?;
        if object.len() > 20 {
            return Err(refuse("at most 20 keys"));
        }
        let mut map = BTreeMap::new();
        for (name, value) in object {
            if name.is_empty() || name.chars().count() > 40 {
                return Err(refuse("key names are 1 to 40 characters"));
            }
            let value = value
                .as_str()
                .ok_or_else(|| refuse("values must be strings"))?;
            if value.chars().count() > 500 {
                return Err(refuse("values are at most 500 characters"));
            }
            map.insert(name.clone(), value.to_owned());
        }
        Ok(Metadata(map))
    }

    /// Reads what keygate stored (always valid JSON it wrote).
    pub fn from_stored(s: &str) -> Metadata {
        serde_json::from_str(s).map(Metadata).unwrap_or_default()
    }

    pub fn to_stored(&self) -> String {
        serde_json::to_string(&self.0).expect("a string map serialises")
    }

    /// Every name and value, ordered by name.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// The limits `parse` enforces, as an OpenAPI schema.
impl utoipa::PartialSchema for Metadata {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Free-form labels: up to 20 string values, names of 1 to 40 characters, values of up to 500",
            ))
            .max_properties(Some(20))
            .property_names(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(40)),
            ))
            .additional_properties(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(500)),
            ))
            .examples([serde_json::json!({ "team": "billing" })])
            .into()
    }
}

impl utoipa::ToSchema for Metadata {
    fn name() -> std::borrow::Cow<'static, str> {
        "KeyMetadata".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_string_maps_within_the_limits() {
        let m = Metadata::parse(&json!({ "team": "billing", "ticket": "OPS-12" })).unwrap();
        assert_eq!(Metadata::from_stored(&m.to_stored()), m);
    }

    #[test]
    fn refuses_what_exceeds_them() {
        let many: serde_json::Map<String, serde_json::Value> =
            (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
        for bad in [
            json!([]),
            json!({ "n": 1 }),
            json!({ "": "v" }),
            json!({ "x".repeat(41): "v" }),
            json!({ "k": "v".repeat(501) }),
            serde_json::Value::Object(many),
        ] {
            assert!(Metadata::parse(&bad).is_err(), "{bad}");
        }
    }
}
