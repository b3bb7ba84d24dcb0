//! Errors in TOML files (the config, the price list) that point at the file, line, column and
//! field at fault: `conf/x.toml:12:9: providers[3].kind: ...`.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the error has no position.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// Dotted path of the field, e.g. `providers[1].kind` (indices are 0-based).
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
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

impl std::error::Error for ConfigError {}

/// Maps byte offsets of one source text to lines, columns and field paths.
pub struct Locator<'a> {
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
    ) -> ConfigError {
        let (line, column) = self.line_col(span.start);
        ConfigError {
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

    /// A TOML syntax or schema error. toml gives a span and a message, not always the field:
    /// the path is rebuilt from the source (the table or array-of-tables entry the line is in,
    /// and the key named by the message or written on the line).
    pub fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        let span = err.span().unwrap_or(0..0);
        let (line, column) = if err.span().is_some() {
            self.line_col(span.start)
        } else {
            (0, 0)
        };
        let message = err.message().trim().to_owned();
        let key = named_key(&message).or_else(|| self.key_on_line(line));
        ConfigError {
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

    /// The table a 1-based line is in, as a path (`server`, `providers[2]`,
    /// `prices[0].tiers[1]`), plus `key`.
    fn field_path(&self, line: usize, key: Option<String>) -> String {
        // Entries seen so far of each array of tables; a new parent entry restarts its children.
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut base = String::new();
        for text in self.text.lines().take(line) {
            let header = text.split('#').next().unwrap_or("").trim();
            let (is_array, inner) = if let Some(i) = header.strip_prefix("[[") {
                (true, i.strip_suffix("]]"))
            } else if let Some(i) = header.strip_prefix('[') {
                (false, i.strip_suffix(']'))
            } else {
                continue;
            };
            let Some(inner) = inner else { continue };
            let name: String = inner
                .chars()
                .filter(|c| !matches!(c, ' ' | '\t' | '"'))
                .collect();
            if is_array {
                let n = counts.get(&name).map_or(0, |c| c + 1);
                counts.retain(|k, _| !k.starts_with(&format!("{name}.")));
                counts.insert(name.clone(), n);
            }
            // Render each dotted prefix that is an array of tables with its current index.
            let mut path = String::new();
            let mut prefix = String::new();
            for part in name.split('.') {
                if !prefix.is_empty() {
                    prefix.push('.');
                    path.push('.');
                }
                prefix.push_str(part);
                path.push_str(part);
                if let Some(i) = counts.get(&prefix) {
                    path.push_str(&format!("[{i}]"));
                }
            }
            base = path;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let loc = Locator {
            file: "f.toml",
            text: "a = 1\nbé = 2\n",
        };
        assert_eq!(loc.line_col(0), (1, 1));
        assert_eq!(loc.line_col(6), (2, 1));
        assert_eq!(loc.line_col(9), (2, 3)); // after the two-byte 'é'
        assert_eq!(
            loc.line_col(8),
            (2, 2),
            "mid-character offsets do not panic"
        );
    }

    #[test]
    fn field_paths_count_arrays_of_tables() {
        let text = "[server]\nx = 1\n[[p]]\na = 1\n[[p]]\n[[p.t]]\nb = 1\n[[p.t]]\nc = 2\n[[p]]\n[[p.t]]\nd = 3\n";
        let loc = Locator { file: "f", text };
        assert_eq!(loc.field_path(2, Some("x".into())), "server.x");
        assert_eq!(loc.field_path(4, Some("a".into())), "p[0].a");
        assert_eq!(loc.field_path(9, Some("c".into())), "p[1].t[1].c");
        assert_eq!(loc.field_path(12, Some("d".into())), "p[2].t[0].d");
    }
}
