//! `switchyard keys create|list|revoke|rotate`: runtime keys from the command line. The
//! running gateway picks a change up within a second; nothing needs a restart or a reload.

use super::ops::{self, CreateSpec};
use crate::config::Config;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a key and print its secret (shown this once).
    Create {
        #[arg(short, long)]
        config: Option<PathBuf>,
        #[arg(long)]
        name: String,
        /// Allowed models, comma-separated: route names, provider/model, provider/*, *.
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u64>,
        /// Tokens per minute.
        #[arg(long)]
        tpm: Option<u64>,
        /// Spend budget in USD per --period.
        #[arg(long)]
        budget_usd: Option<String>,
        /// day (default), week, month or total.
        #[arg(long)]
        period: Option<String>,
        /// Stops working at 00:00 UTC of this date (2027-01-01).
        #[arg(long, conflicts_with = "ttl")]
        expires: Option<String>,
        /// Stops working this long from now (30d, 12h).
        #[arg(long)]
        ttl: Option<String>,
        /// none, full or redacted.
        #[arg(long)]
        log_bodies: Option<String>,
        /// Print JSON (the secret included) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Names, limits, spend this period and expiry of every key (never a secret).
    List {
        #[arg(short, long)]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: it stops working within a second.
    Revoke {
        #[arg(short, long)]
        config: Option<PathBuf>,
        name: String,
    },
    /// Give a key a new secret; the old one keeps working for --grace.
    Rotate {
        #[arg(short, long)]
        config: Option<PathBuf>,
        name: String,
        /// How long the old secret keeps working (e.g. 1h; default: not at all).
        #[arg(long, default_value = "0s")]
        grace: String,
    },
}

fn load(config: Option<&PathBuf>) -> Result<Config, String> {
    match config {
        Some(p) => Config::load(p),
        None => Config::demo(),
    }
    .map_err(|e| e.to_string())
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}

pub fn run(cmd: KeysCommand) -> ExitCode {
    match cmd {
        KeysCommand::Create {
            config,
            name,
            models,
            rpm,
            tpm,
            budget_usd,
            period,
            expires,
            ttl,
            log_bodies,
            json,
        } => {
            let cfg = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            let spec = CreateSpec {
                name,
                models,
                rpm,
                tpm,
                budget_usd,
                period,
                expires,
                ttl,
                log_bodies,
            };
            match ops::create(&cfg, &spec) {
                Ok((secret, mut info)) if json => {
                    info["key"] = serde_json::json!(secret);
                    println!("{info}");
                    ExitCode::SUCCESS
                }
                Ok((secret, _)) => {
                    eprintln!("created key `{}`; its secret is shown only now:", spec.name);
                    println!("{secret}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        KeysCommand::List { config, json } => {
            let cfg = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            match ops::list(&cfg) {
                Ok(rows) if json => {
                    println!("{}", serde_json::Value::Array(rows));
                    ExitCode::SUCCESS
                }
                Ok(rows) => {
                    print!("{}", ops::table(&rows));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        KeysCommand::Revoke { config, name } => {
            let cfg = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            match ops::revoke(&cfg, &name) {
                Ok(()) => {
                    eprintln!("revoked key `{name}`");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        KeysCommand::Rotate {
            config,
            name,
            grace,
        } => {
            let cfg = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            let grace = match crate::governance::rules::parse_span(&grace) {
                Ok(g) => g,
                Err(e) => return fail(format!("--grace: {e}")),
            };
            match ops::rotate(&cfg, &name, grace) {
                Ok((secret, until)) => {
                    eprintln!(
                        "rotated key `{name}`; the old secret works until {until}; the new one \
                         is shown only now:"
                    );
                    println!("{secret}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}
