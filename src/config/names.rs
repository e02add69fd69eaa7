//! Every setting has one name: a misspelled key in a configuration file, or a misspelled
//! `KEYGATE_SECTION__KEY` variable, is refused with the closest valid name, instead of being
//! silently ignored.

use std::collections::BTreeSet;
use std::path::PathBuf;

use config::{Config, File, FileFormat, Value, ValueKind};

/// Settings that are not in the defaults file, but valid.
const EXTRA: [&str; 3] = ["master_key", "previous_master_key", "profile"];

/// The dotted keys of a configuration source (`tokens.lifetime_seconds`).
fn keys_of(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let ValueKind::Table(table) = &value.kind {
        for (name, child) in table {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if matches!(child.kind, ValueKind::Table(_)) {
                keys_of(child, &key, out);
            } else {
                out.insert(key);
            }
        }
    }
}

fn keys(source: Config) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Ok(table) = source.cache.clone().into_table() {
        keys_of(&Value::new(None, ValueKind::Table(table)), "", &mut out);
    }
    out
}

/// The valid name closest to `wrong`, if one is close (Jaro-Winkler, which favours a shared
/// start: a name cut short finds its full form).
fn closest<'a>(wrong: &str, valid: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    valid
        .map(|name| (strsim::jaro_winkler(wrong, name), name))
        .filter(|(similarity, _)| *similarity >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

fn env_name(key: &str) -> String {
    format!("KEYGATE_{}", key.to_ascii_uppercase().replace('.', "__"))
}

/// Refuses unknown keys in `files` (those that exist) and unknown `KEYGATE_` variables.
pub fn check(defaults: &str, files: &[PathBuf]) -> anyhow::Result<()> {
    let valid = {
        let built = Config::builder()
            .add_source(File::from_str(defaults, FileFormat::Toml))
            .build()?;
        let mut valid = keys(built);
        valid.extend(EXTRA.iter().map(|k| k.to_string()));
        valid
    };
    for file in files.iter().filter(|f| f.is_file()) {
        let read = Config::builder()
            .add_source(File::from(file.clone()))
            .build()?;
        if let Some(unknown) = keys(read).into_iter().find(|k| !valid.contains(k)) {
            anyhow::bail!(
                "{}: there is no setting `{unknown}`{}",
                file.display(),
                match closest(&unknown, valid.iter()) {
                    Some(name) => format!("; did you mean `{name}`?"),
                    None => String::new(),
                }
            );
        }
    }
    let sections: BTreeSet<&str> = valid
        .iter()
        .filter_map(|k| k.split_once('.'))
        .map(|(s, _)| s)
        .collect();
    let env_names: Vec<String> = valid.iter().map(|k| env_name(k)).collect();
    for (variable, _) in std::env::vars_os() {
        let Some(variable) = variable.to_str() else {
            continue;
        };
        let Some(rest) = variable.strip_prefix("KEYGATE_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        // A variable meant as a setting: it names a section, or has the `__` of one.
        let meant =
            rest.contains("__") || sections.iter().any(|s| rest.starts_with(&format!("{s}_")));
        if !meant || valid.contains(&rest.replace("__", ".")) {
            continue;
        }
        anyhow::bail!(
            "the environment variable {variable} names no setting{}",
            match closest(variable, env_names.iter()) {
                Some(name) => format!("; did you mean {name}?"),
                None => String::new(),
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_name_is_suggested() {
        let valid: Vec<String> = [
            "tokens.lifetime_seconds",
            "tokens.leeway_seconds",
            "tokens.algorithm",
            "server.bind",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            closest("tokens.lifetime", valid.iter()).map(String::as_str),
            Some("tokens.lifetime_seconds")
        );
        assert_eq!(
            closest("token.lifetime_seconds", valid.iter()).map(String::as_str),
            Some("tokens.lifetime_seconds")
        );
        assert_eq!(closest("something.else.entirely", valid.iter()), None);
        assert_eq!(
            env_name("tokens.lifetime_seconds"),
            "KEYGATE_TOKENS__LIFETIME_SECONDS"
        );
    }
}
