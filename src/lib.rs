//! switchyard: an AI gateway on Pingora.
//!
//! Applications keep their OpenAI or Anthropic SDK and change only the base URL and key;
//! switchyard authenticates them with gateway keys, picks a provider target for the model they
//! asked for, swaps in the team's own provider key and proxies the call, streaming included.
//!
//! Module map (one job each):
//! - [`cli`], [`app`]: the `switchyard` command line (serve, check, mock) and server start-up.
//! - [`config`]: raw TOML -> validated [`config::Config`], with file:line:field errors.
//! - [`proxy`]: the thin Pingora `ProxyHttp` implementation and its per-request context; its
//!   module doc lists every layer a request passes, in order.
//! - [`auth`]: gateway keys and their model allow-lists.
//! - [`dialect`]: client/provider wire dialects (OpenAI chat, Anthropic, Gemini, OpenAI
//!   Responses), the canonical model they translate through, and their error shapes.
//! - [`conversation`]: Responses API conversation state (`previous_response_id`).
//! - [`cache`]: opt-in response caching (pingora-cache, canonical records).
//! - [`routing`]: model name -> ordered candidate list.
//! - [`stats`]: live per-target statistics (latency quantiles, throughput, error and 429 rates).
//! - [`providers`]: provider presets, upstream addressing, key rotation and auth.
//! - [`net`]: non-blocking, cached DNS for upstream peers.
//! - [`outbound`]: the client for the gateway's own requests to providers (race legs,
//!   hedges, judge calls, probes), sharing the proxy's keys, breakers, TLS and DNS.
//! - [`mock`]: a built-in mock provider (OpenAI, Anthropic, Gemini) with fault injection.
//! - [`error`]: the one error type the gateway answers with.
pub mod access_log;
pub mod admin;
pub mod app;
pub mod auth;
pub mod cache;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod daemon;
pub mod dashboard;
pub mod dialect;
pub mod duration;
pub mod endpoints;
pub mod error;
pub mod experiments;
pub mod governance;
pub mod ledger;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod mock;
pub mod net;
pub mod outbound;
pub mod pricing;
pub mod providers;
pub mod proxy;
pub mod resilience;
pub mod routing;
pub mod stats;
pub mod summary;
pub mod telemetry;
pub mod transform;
pub mod usage;
