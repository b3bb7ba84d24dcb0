//! The `switchyard` command line.
//!
//! ```text
//! switchyard serve [--config FILE] [--daemon] [--upgrade]   # no --config: the offline demo
//! switchyard check [--config FILE]                          # validate, print warnings, exit
//! switchyard prices list [--provider P] [--config FILE]      # prices, periods, sources
//! switchyard prices check --config FILE [--max-age 180d]     # unpriced / stale / retired targets
//! switchyard prices import --litellm FILE [--out FILE]       # LiteLLM table -> override file
//! switchyard keys create|list|revoke|rotate --config FILE ...  # runtime gateway keys
//! switchyard experiments list|report NAME --config FILE [--json]  # A/B experiment results
//! switchyard mock --listen 127.0.0.1:9100 [--ttft-ms N] [--itl-ms N] [--tokens N] [--fault SPEC]
//! ```

use crate::app::{self, ServeOptions};
use crate::config::Config;
use crate::mock::{self, MockOptions};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "switchyard", version, about = "An AI gateway on Pingora")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway. Without --config, runs the embedded offline demo (conf/demo.toml).
    Serve {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Run in the background; the process id goes to `[server] pid_file`.
        #[arg(short, long)]
        daemon: bool,
        /// Take over the listening sockets of a running instance (graceful upgrade).
        #[arg(short, long)]
        upgrade: bool,
    },
    /// Validate a config file without starting anything (exit 1 on error).
    Check {
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Spend report from the ledger: `switchyard spend --by model --since 7d`.
    Spend {
        /// Group by key, feature, model, provider or route.
        #[arg(long, default_value = "key")]
        by: String,
        /// How far back: 30m, 24h, 7d, or a date (2026-11-01).
        #[arg(long, default_value = "7d")]
        since: String,
        /// The config whose `[ledger] path` to read (default: the embedded demo's).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Read this ledger file directly instead.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Prices and model capabilities: list them, check a config's targets, import LiteLLM's table.
    Prices {
        #[command(subcommand)]
        action: PricesCommand,
    },
    /// Gateway keys at run time: create, list, revoke, rotate (no restart needed).
    #[command(subcommand)]
    Keys(crate::governance::keys::cli::KeysCommand),
    /// A/B experiments: their status, and each one's report.
    #[command(subcommand)]
    Experiments(crate::experiments::cli::ExperimentsCommand),
    /// Run the built-in mock provider (OpenAI, Anthropic and Gemini dialects, fault injection).
    Mock {
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: String,
        /// Delay before the first byte of each response, in milliseconds.
        #[arg(long, default_value_t = 0)]
        ttft_ms: u64,
        /// Delay between streamed tokens, in milliseconds.
        #[arg(long, default_value_t = 0)]
        itl_ms: u64,
        /// Completion tokens per response.
        #[arg(long, default_value_t = 16)]
        tokens: usize,
        /// A fault for every request, e.g. 429, 429:retry-after=2, 503, hang, reset, cut, malformed.
        #[arg(long)]
        fault: Option<String>,
        /// Require one of these provider keys (repeatable).
        #[arg(long = "expect-key")]
        expect_keys: Vec<String>,
        /// Serve HTTPS: the certificate chain (PEM, leaf first). Needs --tls-key.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PricesCommand {
    /// Every price period: model, period, figures, source and the date it was checked.
    List {
        /// Only this provider (a preset kind such as `openai`, or a configured name).
        #[arg(long)]
        provider: Option<String>,
        /// List the prices in force for this config (built-in list plus its overrides).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Targets of a config with no price or no capabilities, a price not checked within
    /// --max-age, or a deprecated or retired model (exit 1 if any).
    Check {
        #[arg(short, long)]
        config: PathBuf,
        /// Prices last checked longer ago than this are stale: 180d, 26w.
        #[arg(long, default_value = crate::pricing::commands::DEFAULT_MAX_AGE)]
        max_age: String,
    },
    /// Convert LiteLLM's model_prices_and_context_window.json into a prices override file;
    /// what cannot be mapped is reported on stderr.
    Import {
        /// The LiteLLM JSON file.
        #[arg(long, value_name = "FILE")]
        litellm: PathBuf,
        /// Write the override file here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Only this provider (repeatable).
        #[arg(long)]
        provider: Vec<String>,
        /// `effective` date of the imported periods (default: today).
        #[arg(long, value_name = "YYYY-MM-DD")]
        effective: Option<String>,
        /// `source` to record, e.g. "litellm@<commit> (<date>)" (default: the file's path).
        #[arg(long)]
        source: Option<String>,
    },
}

fn prices(action: PricesCommand) -> ExitCode {
    use crate::pricing::commands::{run_check, run_import, run_list, ImportArgs};
    match action {
        PricesCommand::List { provider, config } => {
            run_list(config.as_deref(), provider.as_deref())
        }
        PricesCommand::Check { config, max_age } => run_check(&config, &max_age),
        PricesCommand::Import {
            litellm,
            out,
            provider,
            effective,
            source,
        } => run_import(ImportArgs {
            litellm: &litellm,
            out: out.as_deref(),
            providers: provider,
            effective: effective.as_deref(),
            source: source.as_deref(),
        }),
    }
}

fn load(config: Option<&PathBuf>) -> Result<Config, String> {
    match config {
        Some(path) => Config::load(path),
        None => Config::demo(),
    }
    .map_err(|e| e.to_string())
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve {
            config,
            daemon,
            upgrade,
        } => {
            let cfg = match load(config.as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            if config.is_none() {
                log::info!("no --config given: running the offline demo (embedded conf/demo.toml)");
            }
            match app::serve(cfg, config, ServeOptions { daemon, upgrade }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Check { config } => match load(config.as_ref()) {
            Ok(cfg) => {
                for w in &cfg.warnings {
                    eprintln!("warning: {w}");
                }
                let name = config.map_or("<embedded demo>".to_owned(), |p| p.display().to_string());
                println!(
                    "{name}: OK ({} providers, {} routes, {} gateway keys, {} warnings)",
                    cfg.providers.len(),
                    cfg.routes.len(),
                    cfg.gateway_keys.len(),
                    cfg.warnings.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        Command::Spend {
            by,
            since,
            config,
            db,
            json,
        } => spend(&by, &since, config.as_ref(), db, json),
        Command::Prices { action } => prices(action),
        Command::Keys(cmd) => crate::governance::keys::cli::run(cmd),
        Command::Experiments(cmd) => crate::experiments::cli::run(cmd),
        Command::Mock {
            listen,
            ttft_ms,
            itl_ms,
            tokens,
            fault,
            expect_keys,
            tls_cert,
            tls_key,
        } => {
            let fault = match fault.map(|f| f.parse()).transpose() {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: --fault: {e}");
                    return ExitCode::from(2);
                }
            };
            let opts = MockOptions {
                ttft: Duration::from_millis(ttft_ms),
                itl: Duration::from_millis(itl_ms),
                tokens,
                fault,
                expect_keys,
                tls: None,
            };
            run_mock(&listen, opts, tls_cert.zip(tls_key))
        }
    }
}

fn spend(
    by: &str,
    since: &str,
    config: Option<&PathBuf>,
    db: Option<PathBuf>,
    json: bool,
) -> ExitCode {
    let fail = |e: String| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    };
    let (path, postgres) = match db {
        Some(p) => (p, None),
        None => match load(config) {
            Ok(c) => (c.ledger.path, c.ledger.postgres),
            Err(e) => return fail(e),
        },
    };
    if postgres.is_none() && !path.exists() {
        return fail(format!("no ledger at {}", path.display()));
    }
    let (by, since_ms) = match crate::ledger::parse_query(by, since) {
        Ok(q) => q,
        Err(e) => return fail(format!("--{e}")),
    };
    let report = match postgres {
        // `[ledger] store = "postgres://..."`: the fleet's ledger.
        Some(url) => crate::ledger::postgres::PgStore::new(&url).and_then(|pg| {
            futures::executor::block_on(crate::ledger::postgres::read::spend_report(
                &pg, by, since_ms,
            ))
        }),
        None => crate::ledger::spend_report(&path, by, since_ms),
    };
    match report {
        Ok(r) if json => {
            println!("{}", r.to_json());
            ExitCode::SUCCESS
        }
        Ok(r) => {
            print!("{}", r.to_table());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
    }
}

/// Runs the mock until it fails; `tls` (certificate chain, key) makes it serve HTTPS.
fn run_mock(listen: &str, mut opts: MockOptions, tls: Option<(PathBuf, PathBuf)>) -> ExitCode {
    if let Some((cert, key)) = tls {
        match mock::MockTls::from_pem_files(&cert, &key) {
            Ok(tls) => opts.tls = Some(tls),
            Err(e) => {
                eprintln!("error: --tls-cert/--tls-key: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {listen}: {e}");
                return ExitCode::from(1);
            }
        };
        log::info!("mock provider listening on {scheme}://{listen}");
        match mock::serve(listener, opts).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    })
}
