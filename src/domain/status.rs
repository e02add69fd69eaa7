//! The closed sets of states a row can be in. Each is parsed once, from the database or a
//! request, and compared as an enum everywhere else.

/// Declares a text-stored enum: its wire and column names, `as_str`, `FromStr` (naming the
/// field and the accepted values on error), `Display`, the diesel mapping and its OpenAPI
/// schema (a string enum of the wire names).
macro_rules! closed_set {
    (
        $(#[doc = $doc:literal])*
        $name:ident, field $field:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }
    ) => {
        $(#[doc = $doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[serde(try_from = "String")]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::ValidationError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::domain::ValidationError::new(
                        $field,
                        format!("must be {}", $crate::domain::status::one_of(&[$($text),+])),
                    )),
                }
            }
        }

        /// Read through `FromStr`, so that a wrong value is refused naming the field and
        /// every value it may take.
        impl TryFrom<String> for $name {
            type Error = $crate::domain::ValidationError;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                text.parse()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let doc: &[&str] = &[$($doc),*];
                let description = doc.iter().map(|line| line.trim()).collect::<Vec<_>>().join(" ");
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .description(Some(description).filter(|d| !d.is_empty()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        $crate::domain::sql_text::stored_as_text!($name);
    };
}

pub(crate) use closed_set;

/// "a, b or c".
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [init @ .., last] => format!(
            "{} or `{last}`",
            init.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

closed_set! {
    /// An API key's status. `Revoked` is final.
    KeyStatus, field "status" {
        Enabled => "enabled",
        Disabled => "disabled",
        Revoked => "revoked",
    }
}

closed_set! {
    /// A user's status: a disabled user cannot log in and their keys hold nothing; an invited
    /// one cannot log in until they accept their invitation.
    UserStatus, field "status" {
        Enabled => "enabled",
        Disabled => "disabled",
        Invited => "invited",
    }
}

closed_set! {
    /// An organization's status: a disabled one's keys get no token and its users cannot log
    /// in.
    OrganizationStatus, field "status" {
        Enabled => "enabled",
        Disabled => "disabled",
    }
}

closed_set! {
    /// A signing key's place in its life: published ahead of use, signing, then verifying
    /// until its last token has expired.
    SigningKeyStatus, field "status" {
        Next => "next",
        Active => "active",
        Retired => "retired",
    }
}

closed_set! {
    /// A webhook endpoint's status: a disabled one gets no new events; what was queued for it
    /// waits until it is enabled again.
    EndpointStatus, field "status" {
        Enabled => "enabled",
        Disabled => "disabled",
    }
}

closed_set! {
    /// Where a webhook delivery stands: waiting (or retrying), delivered, or given up on.
    DeliveryStatus, field "status" {
        Pending => "pending",
        Succeeded => "succeeded",
        Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_set_parses_exactly_its_names() {
        for status in KeyStatus::ALL {
            assert_eq!(status.as_str().parse::<KeyStatus>().unwrap(), *status);
        }
        for status in UserStatus::ALL {
            assert_eq!(status.as_str().parse::<UserStatus>().unwrap(), *status);
        }
        for status in SigningKeyStatus::ALL {
            assert_eq!(
                status.as_str().parse::<SigningKeyStatus>().unwrap(),
                *status
            );
        }
        let refused = "Enabled".parse::<KeyStatus>().unwrap_err();
        assert_eq!(refused.field, "status");
        assert_eq!(
            refused.message,
            "must be `enabled`, `disabled` or `revoked`"
        );
        assert!("revoked".parse::<UserStatus>().is_err());
    }

    #[test]
    fn the_wire_names_are_the_column_names() {
        assert_eq!(
            serde_json::to_string(&KeyStatus::Revoked).unwrap(),
            "\"revoked\""
        );
        assert_eq!(
            serde_json::from_str::<SigningKeyStatus>("\"next\"").unwrap(),
            SigningKeyStatus::Next
        );
    }
}
