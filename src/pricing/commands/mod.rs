//! The `switchyard prices` subcommands: `list` (every period with figures and source),
//! `check` (a config's targets with no price, no capabilities, or a stale or retired one) and
//! `import` (LiteLLM's table into an override file). Each returns the process exit code and
//! prints its result; the work is done by functions that return text, tested on their own.

pub mod check;
pub mod list;

use super::litellm::{self, ImportOptions};
use super::{PriceBook, PriceDate};
use crate::config::Config;
use std::path::Path;
use std::process::ExitCode;

/// Default for `prices check --max-age`.
pub const DEFAULT_MAX_AGE: &str = "180d";

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}

/// `prices list [--provider P] [--config FILE]`: the built-in list, or the config's (built-in
/// plus its overrides).
pub fn run_list(config: Option<&Path>, provider: Option<&str>) -> ExitCode {
    let book = match config {
        Some(path) => match Config::load(path) {
            Ok(c) => c.pricing.book,
            Err(e) => return fail(e),
        },
        None => std::sync::Arc::new(PriceBook::builtin()),
    };
    print!("{}", list::list(&book, provider));
    ExitCode::SUCCESS
}

/// `prices check --config FILE [--max-age 180d]`: exit 1 when a target needs attention.
pub fn run_check(config: &Path, max_age: &str) -> ExitCode {
    let days = match check::parse_age(max_age) {
        Ok(d) => d,
        Err(e) => return fail(format!("--max-age: {e}")),
    };
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let findings = check::check(&cfg, PriceDate::today(), days);
    print!("{}", check::render(&findings, check::target_count(&cfg)));
    if findings.iter().any(|f| !f.problems.is_empty()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Options of `prices import`, as given on the command line.
pub struct ImportArgs<'a> {
    pub litellm: &'a Path,
    pub out: Option<&'a Path>,
    pub providers: Vec<String>,
    pub effective: Option<&'a str>,
    pub source: Option<&'a str>,
}

/// `prices import --litellm FILE`: the override file goes to `--out` (or stdout), the report
/// of what could not be mapped to stderr.
pub fn run_import(args: ImportArgs) -> ExitCode {
    let today = PriceDate::today();
    let effective = match args.effective {
        None => today,
        Some(s) => match PriceDate::parse(s) {
            Some(d) => d,
            None => return fail(format!("--effective: expected YYYY-MM-DD, got `{s}`")),
        },
    };
    let text = match std::fs::read_to_string(args.litellm) {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: {e}", args.litellm.display())),
    };
    let opts = ImportOptions {
        effective,
        checked: today,
        source: args.source.map_or_else(
            || {
                format!(
                    "LiteLLM model_prices_and_context_window.json ({}, read {today})",
                    args.litellm.display()
                )
            },
            str::to_owned,
        ),
        providers: args.providers,
    };
    let import = match litellm::convert(&text, &opts) {
        Ok(i) => i,
        Err(e) => return fail(format!("{}: {e}", args.litellm.display())),
    };
    // The output must load as an override file; a failure here is a bug, reported as such.
    if let Err(e) = PriceBook::parse("<converted>", &import.toml) {
        return fail(format!("the converted file does not parse (a bug): {e}"));
    }
    match args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &import.toml) {
                return fail(format!("{}: {e}", path.display()));
            }
        }
        None => print!("{}", import.toml),
    }
    eprint!("{}", import.report.to_text());
    ExitCode::SUCCESS
}
