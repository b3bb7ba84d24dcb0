//! `switchyard experiments list|report` (read-only, from the ledger the config names:
//! its SQLite file or its Postgres database).

use crate::config::Config;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum ExperimentsCommand {
    /// Every experiment of the config, with its leader, decision and promotion status.
    List {
        #[arg(short, long)]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One experiment's report: per variant requests, verdicts with their confidence
    /// sequence, cost, latency and feedback; the leader and whether it is decided.
    Report {
        name: String,
        #[arg(short, long)]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: ExperimentsCommand) -> ExitCode {
    let load = |path: &PathBuf| Config::load(path).map_err(|e| e.to_string());
    let result = match cmd {
        ExperimentsCommand::List { config, json } => load(&config)
            .and_then(|c| {
                let source = super::source::for_config(&c, None)?;
                super::report::list(&*source, &c)
            })
            .map(|rows| {
                if json {
                    serde_json::to_string_pretty(&rows).unwrap_or_default()
                } else {
                    let mut out = format!(
                        "{:<24} {:<16} {:<9} {:>9} {:<16} {:<8} {}\n",
                        "experiment", "route", "mode", "requests", "leader", "decided", "promotion"
                    );
                    for r in &rows {
                        let s = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
                        out.push_str(&format!(
                            "{:<24} {:<16} {:<9} {:>9} {:<16} {:<8} {}\n",
                            s("name"),
                            s("route"),
                            s("mode"),
                            r["requests"],
                            s("leader"),
                            r["decided"],
                            s("promotion")
                        ));
                    }
                    out
                }
            }),
        ExperimentsCommand::Report { name, config, json } => load(&config)
            .and_then(|c| {
                let source = super::source::for_config(&c, None)?;
                super::report::read(&*source, &c, &name)
            })
            .map(|r| {
                if json {
                    serde_json::to_string_pretty(&r).unwrap_or_default()
                } else {
                    super::report::render(&r)
                }
            }),
    };
    match result {
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
