//! The `switchyard` command line.
//!
//! ```text
//! switchyard serve [--config FILE] [--daemon] [--upgrade]   # no --config: the offline demo
//! switchyard check [--config FILE]                          # validate, print warnings, exit
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
        /// Run in the background (pingora daemon mode).
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
    },
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
        Command::Mock {
            listen,
            ttft_ms,
            itl_ms,
            tokens,
            fault,
            expect_keys,
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
            };
            run_mock(&listen, opts)
        }
    }
}

fn run_mock(listen: &str, opts: MockOptions) -> ExitCode {
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
        log::info!("mock provider listening on {listen}");
        match mock::serve(listener, opts).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    })
}
