//! Price-file errors that point at the file, line, column and field at fault, in the same
//! `file:line:column: field: message` shape as config errors, e.g.
//! `conf/prices.toml:12:9: prices[3].input: ...`.

use std::fmt;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceError {
    pub file: String,
    /// 1-based; 0 when the error has no position.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Dotted path of the field, e.g. `prices[3].input` (indices are 0-based).
    pub field: String,
    pub message: String,
}

impl fmt::Display for PriceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}: {}", self.file, self.field, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, self.line, self.column, self.field, self.message
            )
        }
    }
}

impl std::error::Error for PriceError {}

/// Maps byte offsets of one source text to lines, columns and field paths.
pub(crate) struct Locator<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Locator<'_> {
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column)
    }

    pub fn error(
        &self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> PriceError {
        let (line, column) = self.line_col(span.start);
        PriceError {
            file: self.file.to_owned(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        }
    }

    /// The source text of a span (for quoting what was written).
    pub fn snippet(&self, span: Range<usize>) -> &str {
        self.text.get(span).unwrap_or("")
    }

    /// A TOML syntax or schema error. toml gives a span and a message; the field path is
    /// rebuilt from the source (which `[[prices]]` / `[[prices.tiers]]` block the line is in,
    /// and the key named by the message or written on the line).
    pub fn toml_error(&self, err: &toml::de::Error) -> PriceError {
        let span = err.span().unwrap_or(0..0);
        let (line, column) = if err.span().is_some() {
            self.line_col(span.start)
        } else {
            (0, 0)
        };
        let message = err.message().trim().to_owned();
        let key = named_key(&message).or_else(|| self.key_on_line(line));
        PriceError {
            file: self.file.to_owned(),
            line,
            column,
            field: self.field_path(line, key),
            message,
        }
    }

    fn key_on_line(&self, line: usize) -> Option<String> {
        let text = self.text.lines().nth(line.checked_sub(1)?)?;
        let (key, _) = text.split_once('=')?;
        let key = key.trim().trim_matches('"');
        (!key.is_empty() && !key.starts_with('[')).then(|| key.to_owned())
    }

    /// `prices[i]`, `prices[i].tiers[j]` or the top level, for a 1-based line, plus `key`.
    fn field_path(&self, line: usize, key: Option<String>) -> String {
        let mut price: Option<usize> = None;
        let mut tier: Option<usize> = None;
        let mut other: Option<String> = None;
        for text in self.text.lines().take(line) {
            let header = text.split('#').next().unwrap_or("").trim();
            if !header.starts_with('[') {
                continue;
            }
            let name: String = header
                .chars()
                .filter(|c| !matches!(c, '[' | ']' | ' ' | '\t' | '"'))
                .collect();
            match name.as_str() {
                "prices" => {
                    price = Some(price.map_or(0, |i| i + 1));
                    tier = None;
                    other = None;
                }
                "prices.tiers" => {
                    tier = Some(tier.map_or(0, |j| j + 1));
                    other = None;
                }
                _ => other = Some(name),
            }
        }
        let base = match (other, price, tier) {
            (Some(name), _, _) => name,
            (None, Some(i), Some(j)) => format!("prices[{i}].tiers[{j}]"),
            (None, Some(i), None) => format!("prices[{i}]"),
            (None, None, _) => String::new(),
        };
        match (base.is_empty(), key) {
            (true, Some(k)) => k,
            (true, None) => "(top level)".to_owned(),
            (false, Some(k)) => format!("{base}.{k}"),
            (false, None) => base,
        }
    }
}

/// The field named in serde's "unknown field `x`" / "missing field `x`" messages.
fn named_key(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    let end = rest.find('`')?;
    Some(rest[..end].to_owned())
}
