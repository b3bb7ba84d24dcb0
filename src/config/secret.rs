//! Secrets (provider and gateway keys): resolved from `env:VAR` or taken literally, and never
//! printed. `Debug` and `Display` show only where the secret came from.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// Where it came from, safe to log: `env:GROQ_API_KEY` or `literal #2`.
    origin: String,
}

impl Secret {
    pub fn new(value: String, origin: String) -> Self {
        Secret { value, origin }
    }

    /// The secret itself. Call only to put it on the wire or compare it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.origin)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)
    }
}

/// How a secret is written in the config.
pub enum SecretSource<'a> {
    Env(&'a str),
    Literal,
}

pub fn source_of(text: &str) -> SecretSource<'_> {
    match text.strip_prefix("env:") {
        Some(var) => SecretSource::Env(var.trim()),
        None => SecretSource::Literal,
    }
}

/// Resolves `env:VAR` through `lookup` (the process environment in production).
/// `Ok(None)` means the variable is unset or empty.
pub fn resolve(
    text: &str,
    literal_origin: String,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, String> {
    match source_of(text) {
        SecretSource::Env(var) => {
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`env:{var}` is not a valid environment variable name"
                ));
            }
            Ok(lookup(var)
                .filter(|v| !v.trim().is_empty())
                .map(|v| Secret::new(v.trim().to_owned(), format!("env:{var}"))))
        }
        SecretSource::Literal => {
            if text.trim().is_empty() {
                return Err("a key must not be empty".to_owned());
            }
            Ok(Some(Secret::new(text.trim().to_owned(), literal_origin)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("sk-very-secret".into(), "env:K".into());
        assert!(!format!("{s:?} {s}").contains("very-secret"));
        assert_eq!(s.expose(), "sk-very-secret");
    }

    #[test]
    fn env_and_literal() {
        let lookup = |v: &str| (v == "SET").then(|| "value".to_owned());
        assert_eq!(
            resolve("env:SET", "x".into(), &lookup)
                .unwrap()
                .unwrap()
                .expose(),
            "value"
        );
        assert!(resolve("env:UNSET", "x".into(), &lookup).unwrap().is_none());
        assert!(resolve("env:BAD-NAME", "x".into(), &lookup).is_err());
        assert_eq!(
            resolve("sk-lit", "literal".into(), &lookup)
                .unwrap()
                .unwrap()
                .origin(),
            "literal"
        );
    }
}
