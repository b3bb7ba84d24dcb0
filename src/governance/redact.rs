//! Redaction for kept bodies (`log_bodies = "redacted"`): e-mail addresses, card numbers that
//! pass a Luhn check, API keys, bearer tokens and configured patterns become
//! `[REDACTED:<kind>]`. Runs on the body writer's thread, never on a request's.

use regex::{Captures, Regex};
use std::borrow::Cow;
use std::sync::OnceLock;

/// A kind of secret or personal data and how to find it.
struct Pattern {
    kind: String,
    re: Regex,
    /// Card numbers: only digit runs that pass the Luhn check.
    luhn: bool,
}

pub struct Redactor {
    patterns: Vec<Pattern>,
}

/// The built-in patterns, in the order they are applied (bearer tokens before the keys they
/// may carry).
fn builtin() -> &'static [(&'static str, &'static str, bool)] {
    &[
        ("bearer", r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}=*", false),
        (
            "api_key",
            concat!(
                r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}",
                r"|\bAKIA[0-9A-Z]{16}\b",
                r"|\bAIza[0-9A-Za-z_\-]{35}",
                r"|\bgh[pousr]_[A-Za-z0-9]{36,}",
                r"|\bgithub_pat_[A-Za-z0-9_]{22,}",
                r"|\bxox[abpros]-[A-Za-z0-9\-]{10,}",
                r"|\bgsk_[A-Za-z0-9]{20,}",
            ),
            false,
        ),
        (
            "email",
            r"(?i)\b[A-Z0-9._%+\-]+@[A-Z0-9\-]+(?:\.[A-Z0-9\-]+)*\.[A-Z]{2,}\b",
            false,
        ),
        ("card", r"\b\d(?:[ \-]?\d){12,18}\b", true),
    ]
}

/// Whether the digits of `s` (other characters skipped) pass the Luhn check.
pub fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn builtin_patterns() -> &'static [Pattern] {
    static BUILT: OnceLock<Vec<Pattern>> = OnceLock::new();
    BUILT.get_or_init(|| {
        builtin()
            .iter()
            .filter_map(|(kind, re, luhn)| match Regex::new(re) {
                Ok(re) => Some(Pattern {
                    kind: (*kind).to_owned(),
                    re,
                    luhn: *luhn,
                }),
                Err(e) => {
                    log::error!("built-in redaction pattern {kind} does not compile: {e}");
                    None
                }
            })
            .collect()
    })
}

impl Redactor {
    /// The built-in patterns plus `extra` (name, pattern), applied after them.
    pub fn new(extra: &[(String, Regex)]) -> Redactor {
        let mut patterns: Vec<Pattern> = builtin_patterns()
            .iter()
            .map(|p| Pattern {
                kind: p.kind.clone(),
                re: p.re.clone(),
                luhn: p.luhn,
            })
            .collect();
        patterns.extend(extra.iter().map(|(name, re)| Pattern {
            kind: name.clone(),
            re: re.clone(),
            luhn: false,
        }));
        Redactor { patterns }
    }

    /// `text` with every match replaced by `[REDACTED:<kind>]`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = Cow::Borrowed(text);
        for p in &self.patterns {
            let replaced = p.re.replace_all(&out, |c: &Captures<'_>| {
                let m = c.get(0).map_or("", |m| m.as_str());
                if p.luhn && !luhn(m) {
                    m.to_owned()
                } else {
                    format!("[REDACTED:{}]", p.kind)
                }
            });
            if let Cow::Owned(s) = replaced {
                out = Cow::Owned(s);
            }
        }
        out.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_builtin_kind_is_removed() {
        let r = Redactor::new(&[(
            "ssn".to_owned(),
            Regex::new(r"\b\d{3}-\d{2}-\d{4}\b").unwrap(),
        )]);
        let text = r#"{"messages":[{"role":"user","content":"mail jane.doe+x@example.co.uk, card 4111 1111 1111 1111 or 4111-1111-1111-1112, key sk-proj-abcdefghijklmnop1234 and AKIAABCDEFGHIJKLMNOP, header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def, ssn 123-45-6789, order 1234567890123"}]}"#;
        let out = r.redact(text);
        for gone in [
            "jane.doe",
            "4111 1111 1111 1111",
            "sk-proj-abcdefghijklmnop1234",
            "AKIAABCDEFGHIJKLMNOP",
            "eyJhbGciOiJIUzI1NiJ9",
            "123-45-6789",
        ] {
            assert!(!out.contains(gone), "{gone} survived: {out}");
        }
        for kind in ["email", "card", "api_key", "bearer", "ssn"] {
            assert!(out.contains(&format!("[REDACTED:{kind}]")), "{kind}: {out}");
        }
        // Digit runs that fail the Luhn check are not cards: kept.
        assert!(out.contains("4111-1111-1111-1112"), "{out}");
        assert!(out.contains("order 1234567890123"), "{out}");
        // Still JSON.
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }

    #[test]
    fn luhn_check() {
        assert!(luhn("4111111111111111"));
        assert!(luhn("5500 0000 0000 0004"));
        assert!(!luhn("4111111111111112"));
        assert!(!luhn("1234"));
    }
}
