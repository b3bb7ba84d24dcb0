//! `switchyard prices list`: every price period with its figures, source and check date.

use super::super::{ModelInfo, ModelPrice, PriceBook, PriceDate};
use rust_decimal::Decimal;
use std::fmt::Write as _;

/// The list as text, one block per provider + model, periods oldest first; `provider`
/// restricts it to one provider name.
pub fn list(book: &PriceBook, provider: Option<&str>) -> String {
    let mut out = String::new();
    let mut last: Option<(&str, &str)> = None;
    let entries: Vec<&ModelPrice> = book
        .entries()
        .filter(|p| provider.is_none_or(|want| p.provider == want))
        .collect();
    for (i, p) in entries.iter().enumerate() {
        if last != Some((&p.provider, &p.model)) {
            let mut aliases: Vec<&str> = book
                .periods(&p.provider, &p.model)
                .iter()
                .flat_map(|q| q.aliases.iter().map(String::as_str))
                .collect();
            aliases.sort_unstable();
            aliases.dedup();
            head(
                &mut out,
                p,
                &aliases,
                book.model_info(&p.provider, &p.model),
            );
            last = Some((&p.provider, &p.model));
        }
        let next = entries
            .get(i + 1)
            .filter(|n| n.provider == p.provider && n.model == p.model);
        period(&mut out, p, next.map(|n| n.effective.add_days(-1)));
    }
    if out.is_empty() {
        out.push_str("no prices");
        if let Some(p) = provider {
            let _ = write!(out, " for provider `{p}`");
        }
        out.push('\n');
    }
    out
}

/// The model's line: name, every alias any of its periods declares, life cycle.
fn head(out: &mut String, p: &ModelPrice, aliases: &[&str], info: Option<&ModelInfo>) {
    let _ = write!(out, "\n{}/{}", p.provider, p.model);
    if !aliases.is_empty() {
        let _ = write!(out, "  (aliases: {})", aliases.join(", "));
    }
    if let Some(i) = info {
        if let Some(d) = i.deprecated {
            let _ = write!(out, "  [deprecated {d}]");
        }
        if let Some(r) = i.retired {
            let _ = write!(out, "  [retired {r}]");
        }
    }
    out.push('\n');
    if let Some(i) = info {
        let c = &i.capabilities;
        let tokens = |n: Option<u32>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        let _ = writeln!(
            out,
            "  context {}, max output {}; supports: {}",
            tokens(c.context_window),
            tokens(c.max_output_tokens),
            match c.features() {
                f if f.is_empty() => "-".to_owned(),
                f => f.join(", "),
            }
        );
        if let Some(u) = &i.uncertain {
            let _ = writeln!(out, "      uncertain: {u}");
        }
    }
}

fn period(out: &mut String, p: &ModelPrice, until: Option<PriceDate>) {
    let until = until.map_or_else(|| "now".to_owned(), |d| d.to_string());
    let _ = write!(out, "  {} .. {until:<10}", p.effective);
    let figures = [
        ("input", p.input),
        ("output", p.output),
        ("cached", p.cached_input),
        ("cache write", p.cache_write),
        ("per image", p.per_image),
        ("per second", p.per_second),
        ("per char", p.per_character),
        ("per request", p.per_request),
    ];
    for (name, v) in figures {
        if let Some(v) = v {
            let _ = write!(out, "  {name} {}", money(v));
        }
    }
    out.push('\n');
    for t in &p.tiers {
        let _ = write!(
            out,
            "      above {} tokens: input {}  output {}",
            t.above_input_tokens,
            money(t.input),
            money(t.output)
        );
        if let Some(c) = t.cached_input {
            let _ = write!(out, "  cached {}", money(c));
        }
        if let Some(w) = t.cache_write {
            let _ = write!(out, "  cache write {}", money(w));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "      source: {} (checked {})", p.source, p.checked);
    if let Some(u) = &p.uncertain {
        let _ = writeln!(out, "      uncertain: {u}");
    }
}

/// A price as written (`2.50`, `0.075`), never in exponent form.
fn money(d: Decimal) -> String {
    d.to_string()
}
