//! The layers keygate is built in, lowest first, and the test that holds every module to
//! them: a module may use modules of its own layer and of the layers below, never above.
//! `cargo test --lib layers` shows it.

/// (module path prefix, layer). The longest matching prefix decides.
pub const LAYERS: &[(&str, u8)] = &[
    // Parsed values.
    ("domain", 0),
    // Signing, validating, revocation state: knows nothing of storage.
    ("tokens", 1),
    // The app's side (the token client): knows nothing of the server.
    ("client", 1),
    // The API's side without keygate's database (discovery, JWKS, the revocation stream).
    ("remote", 1),
    // Parsed settings.
    ("config", 2),
    // Queries, one module per table.
    ("db", 3),
    // Mechanisms the application layer uses, which know nothing of it.
    ("hashing", 4),
    ("last_used", 4),
    ("usage", 4),
    ("webhook_sender", 4),
    ("feed", 4),
    ("logging", 4),
    ("tls", 4),
    ("auth::rate_limit", 4),
    ("auth::verified", 4),
    ("auth::client_credentials", 4),
    // The application layer: every rule.
    ("service", 5),
    // The web edge.
    ("error", 6),
    ("state", 6),
    ("auth", 6),
    ("routes", 6),
    ("openapi", 6),
    ("metrics", 6),
    ("request_id", 6),
    ("panics", 6),
    ("https", 6),
    ("startup", 6),
    ("embedded", 6),
    ("console", 6),
    // The command line: another front end.
    ("cli", 7),
    ("layers", 8),
];

/// The layer of a module path (`auth::caller`), by its longest listed prefix.
pub fn layer_of(path: &str) -> Option<u8> {
    LAYERS
        .iter()
        .filter(|(prefix, _)| {
            path == *prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with("::"))
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, layer)| *layer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// Every `.rs` file under `dir`, with its module path.
    fn modules(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                let child = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}::{name}")
                };
                modules(&path, &child, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let module = match (prefix.is_empty(), name.as_str()) {
                    (true, "lib" | "main") => continue,
                    (false, "mod") => prefix.to_owned(),
                    (true, _) => name,
                    (false, _) => format!("{prefix}::{name}"),
                };
                out.push((module, path));
            }
        }
    }

    /// The module paths a line names: `crate::a::b`, `$crate::a`, and `super::a` (resolved
    /// against `module`).
    fn references(line: &str, module: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (marker, relative) in [("crate::", false), ("super::", true)] {
            let mut rest = line;
            while let Some(at) = rest.find(marker) {
                let before = rest[..at].chars().last();
                rest = &rest[at + marker.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let path = path.trim_end_matches(':');
                let full = if relative {
                    let mut parts: Vec<&str> = module.split("::").collect();
                    parts.pop();
                    parts.extend(path.split("::").filter(|p| !p.is_empty()));
                    parts.join("::")
                } else {
                    path.to_owned()
                };
                found.push(full);
            }
        }
        found
    }

    #[test]
    fn no_module_uses_a_layer_above_its_own() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut all = Vec::new();
        modules(&src, "", &mut all);
        assert!(all.len() > 40, "found only {} modules", all.len());
        let mut violations = Vec::new();
        for (module, path) in &all {
            let own = layer_of(module).unwrap_or_else(|| panic!("{module} has no layer"));
            let text = std::fs::read_to_string(path).unwrap();
            // A file's unit tests (its trailing `#[cfg(test)]` module) are not part of its layer.
            let code = text.split("\n#[cfg(test)]").next().unwrap_or_default();
            for (number, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for used in references(line, module) {
                    if let Some(layer) = layer_of(&used).filter(|l| *l > own) {
                        violations.push(format!(
                            "{}:{}: {module} (layer {own}) uses {used} (layer {layer})",
                            path.strip_prefix(&src).unwrap().display(),
                            number + 1
                        ));
                    }
                }
            }
        }
        assert!(violations.is_empty(), "\n{}", violations.join("\n"));
    }

    #[test]
    fn references_are_resolved_to_module_paths() {
        assert_eq!(
            references("use crate::db::{self, users};", "service::users"),
            ["db"]
        );
        assert_eq!(
            references("use super::{Caller, policy};", "service::users"),
            ["service"]
        );
        assert_eq!(
            references("use super::bearer_token;", "auth::caller"),
            ["auth::bearer_token"]
        );
        assert_eq!(
            references("$crate::domain::ValidationError::new(", "domain::status"),
            ["domain::ValidationError::new"]
        );
        assert!(references("use keygate::service;", "cli").is_empty());
        assert_eq!(layer_of("auth::rate_limit::RetryAfter"), Some(4));
        assert_eq!(layer_of("auth::caller"), Some(6));
        assert_eq!(layer_of("authx"), None);
    }
}
