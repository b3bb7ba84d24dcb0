//! Prometheus metrics, served on the admin port at `/metrics`. Labels name routes, providers,
//! models and gateway keys by name; never a secret. Every label set is bounded: routes,
//! providers and keys come from the config, model names are folded ([`labels`]), breaker
//! gauges are rebuilt from the (bounded) breakers at each scrape.

pub mod labels;

use crate::resilience::Health;
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::OnceLock;

pub struct Metrics {
    pub registry: Registry,
    /// Which model names get their own label.
    pub model_labels: labels::ModelLabels,
    /// Client requests by endpoint, route, final provider/model, status and gateway key.
    pub requests: IntCounterVec,
    /// Upstream attempts by provider, model and outcome (`200`, `503`, `skipped:circuit_open`...).
    pub attempts: IntCounterVec,
    /// Requests that needed more than one attempt and succeeded (fallbacks that hid a failure).
    pub fallbacks: IntCounterVec,
    pub request_seconds: HistogramVec,
    pub ttfb_seconds: HistogramVec,
    /// 0 closed, 1 half-open, 2 open; refreshed at each scrape.
    pub breaker_state: IntGaugeVec,
    /// Tokens by provider, model, gateway key and kind (input, output, cached_input, ...).
    pub tokens: IntCounterVec,
    /// Spend in USD (a float for dashboards; the ledger holds the exact decimal figures).
    pub cost_usd: prometheus::CounterVec,
    /// Requests whose cost could not be known (unpriced model) or was estimated.
    pub cost_flags: IntCounterVec,
    /// Ledger writer counters (rows written, queued, producer waits, spilled...), at scrape.
    pub ledger: IntGaugeVec,
    /// Requests that asked for the cache, by outcome (hit, miss, bypass).
    pub cache_requests: IntCounterVec,
    /// What cache hits saved at list price, USD (float, for dashboards).
    pub cache_saved_usd: prometheus::Counter,
    /// Cache store: entries, bytes, max_bytes, inserts, evictions, rejected_too_large, at scrape.
    pub cache_store: IntGaugeVec,
    /// Live target statistics ([`crate::stats`]), refreshed at scrape by [`refresh_targets`]:
    /// p50/p90/p99 time to first token and total time (`quantile` label), decayed output tokens
    /// per second, error and 429 ratios, per provider and model. Only targets the statistics
    /// still keep have series, so their number is bounded by its capacity.
    pub target_ttft_seconds: GaugeVec,
    pub target_duration_seconds: GaugeVec,
    pub target_tokens_per_second: GaugeVec,
    pub target_error_ratio: GaugeVec,
    pub target_rate_limited_ratio: GaugeVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new_custom(Some("switchyard".into()), None)?;
    let requests = IntCounterVec::new(
        Opts::new("requests_total", "Client requests"),
        &["endpoint", "route", "provider", "model", "status", "key"],
    )?;
    let attempts = IntCounterVec::new(
        Opts::new("upstream_attempts_total", "Upstream attempts by outcome"),
        &["provider", "model", "outcome"],
    )?;
    let fallbacks = IntCounterVec::new(
        Opts::new(
            "fallbacks_total",
            "Requests answered after at least one failed attempt",
        ),
        &["route", "provider", "model"],
    )?;
    let request_seconds = HistogramVec::new(
        HistogramOpts::new(
            "request_duration_seconds",
            "Whole request, gateway in to last byte out",
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
        &["endpoint", "route"],
    )?;
    let ttfb_seconds = HistogramVec::new(
        HistogramOpts::new(
            "time_to_first_byte_seconds",
            "Request start to the provider's response header (first token for streams)",
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
        &["endpoint", "route"],
    )?;
    let breaker_state = IntGaugeVec::new(
        Opts::new("circuit_breaker_state", "0 closed, 1 half-open, 2 open"),
        &["target"],
    )?;
    registry.register(Box::new(requests.clone()))?;
    registry.register(Box::new(attempts.clone()))?;
    registry.register(Box::new(fallbacks.clone()))?;
    registry.register(Box::new(request_seconds.clone()))?;
    registry.register(Box::new(ttfb_seconds.clone()))?;
    let tokens = IntCounterVec::new(
        Opts::new("tokens_total", "Tokens by kind"),
        &["provider", "model", "key", "kind"],
    )?;
    let cost_usd = prometheus::CounterVec::new(
        Opts::new("cost_usd_total", "Spend at list price, USD"),
        &["provider", "model", "key"],
    )?;
    let cost_flags = IntCounterVec::new(
        Opts::new(
            "cost_flagged_requests_total",
            "Requests with unknown or estimated cost",
        ),
        &["provider", "model", "flag"],
    )?;
    let ledger = IntGaugeVec::new(
        Opts::new(
            "ledger",
            "Ledger writer: rows_written, rows_queued, producer_waits, rows_spilled, write_errors",
        ),
        &["stat"],
    )?;
    let cache_requests = IntCounterVec::new(
        Opts::new(
            "cache_requests_total",
            "Requests that asked for the cache, by outcome",
        ),
        &["outcome"],
    )?;
    let cache_saved_usd = prometheus::Counter::new(
        "cache_saved_usd_total",
        "What cache hits would have cost at list price, USD",
    )?;
    let cache_store = IntGaugeVec::new(
        Opts::new(
            "cache_store",
            "Response cache: entries, bytes, max_bytes, inserts, evictions, rejected_too_large",
        ),
        &["stat"],
    )?;
    registry.register(Box::new(cache_requests.clone()))?;
    registry.register(Box::new(cache_saved_usd.clone()))?;
    registry.register(Box::new(cache_store.clone()))?;
    registry.register(Box::new(ledger.clone()))?;
    registry.register(Box::new(breaker_state.clone()))?;
    registry.register(Box::new(tokens.clone()))?;
    registry.register(Box::new(cost_usd.clone()))?;
    registry.register(Box::new(cost_flags.clone()))?;
    let gauge = |name: &str, help: &str, labels: &[&str]| -> Result<GaugeVec, prometheus::Error> {
        let g = GaugeVec::new(Opts::new(name, help), labels)?;
        registry.register(Box::new(g.clone()))?;
        Ok(g)
    };
    let target = ["provider", "model"];
    let quantiles = ["provider", "model", "quantile"];
    let target_ttft_seconds = gauge(
        "target_ttft_seconds",
        "Time to first token of a target's recent answers (decayed p50/p90/p99)",
        &quantiles,
    )?;
    let target_duration_seconds = gauge(
        "target_duration_seconds",
        "Total time of a target's recent answers (decayed p50/p90/p99)",
        &quantiles,
    )?;
    let target_tokens_per_second = gauge(
        "target_tokens_per_second",
        "Output tokens per second of a target's recent answers (decayed average)",
        &target,
    )?;
    let target_error_ratio = gauge(
        "target_error_ratio",
        "Share of a target's recent attempts that failed, 429s included (decayed)",
        &target,
    )?;
    let target_rate_limited_ratio = gauge(
        "target_rate_limited_ratio",
        "Share of a target's recent attempts answered with 429 (decayed)",
        &target,
    )?;
    Ok(Metrics {
        registry,
        model_labels: labels::ModelLabels::new(labels::MAX_MODEL_LABELS),
        requests,
        attempts,
        fallbacks,
        request_seconds,
        ttfb_seconds,
        breaker_state,
        tokens,
        cost_usd,
        cost_flags,
        ledger,
        cache_requests,
        cache_saved_usd,
        cache_store,
        target_ttft_seconds,
        target_duration_seconds,
        target_tokens_per_second,
        target_error_ratio,
        target_rate_limited_ratio,
    })
}

/// Sets the target gauges from `stats`: series of targets no longer kept are removed first,
/// so the label sets stay within the statistics' capacity. Called before each scrape.
pub fn refresh_targets(stats: &crate::stats::TargetStats) {
    set_targets(metrics(), stats);
}

fn set_targets(m: &Metrics, stats: &crate::stats::TargetStats) {
    let targets = stats.all();
    m.target_ttft_seconds.reset();
    m.target_duration_seconds.reset();
    m.target_tokens_per_second.reset();
    m.target_error_ratio.reset();
    m.target_rate_limited_ratio.reset();
    for (provider, model, s) in &targets {
        let (p, md) = (provider.as_str(), model.as_str());
        for (gauge, summary) in [
            (&m.target_ttft_seconds, &s.ttft_ms),
            (&m.target_duration_seconds, &s.total_ms),
        ] {
            for (q, ms) in [
                ("0.5", summary.p50),
                ("0.9", summary.p90),
                ("0.99", summary.p99),
            ] {
                if let Some(ms) = ms {
                    gauge.with_label_values(&[p, md, q]).set(ms / 1000.0);
                }
            }
        }
        if let Some(tps) = s.tokens_per_sec.avg {
            m.target_tokens_per_second
                .with_label_values(&[p, md])
                .set(tps);
        }
        m.target_error_ratio
            .with_label_values(&[p, md])
            .set(s.error_rate);
        m.target_rate_limited_ratio
            .with_label_values(&[p, md])
            .set(s.rate_429);
    }
}

/// The process's metrics. Building them cannot fail with these static definitions; if it ever
/// did, that is a programming error caught by the unit test below.
pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| build().expect("static metric definitions are valid"))
}

/// The text exposition, with breaker gauges refreshed from `health`.
pub fn render(
    health: &Health,
    ledger: Option<&crate::ledger::LedgerHandle>,
    cache: Option<&crate::cache::CacheLayer>,
) -> Vec<u8> {
    render_from(metrics(), health, ledger, cache)
}

fn render_from(
    m: &Metrics,
    health: &Health,
    ledger: Option<&crate::ledger::LedgerHandle>,
    cache: Option<&crate::cache::CacheLayer>,
) -> Vec<u8> {
    if let Some(c) = cache {
        let s = c.stats();
        for (k, v) in [
            ("entries", s.entries as i64),
            ("bytes", s.bytes as i64),
            ("max_bytes", s.max_bytes as i64),
            ("inserts", s.inserts as i64),
            ("evictions", (s.evictions + s.backstop_evictions) as i64),
            ("rejected_too_large", s.rejected_too_large as i64),
        ] {
            m.cache_store.with_label_values(&[k]).set(v);
        }
    }
    m.ledger
        .with_label_values(&["access_lines_dropped"])
        .set(crate::logging::access_lines_dropped() as i64);
    if let Some(l) = ledger {
        let stats = serde_json::to_value(l.stats()).unwrap_or_default();
        if let Some(map) = stats.as_object() {
            for (k, v) in map {
                if let Some(n) = v.as_u64() {
                    m.ledger.with_label_values(&[k]).set(n as i64);
                }
            }
        }
    }
    // Forgotten breakers (see `resilience::MAX_MODEL_BREAKERS`) must not keep their gauges.
    m.breaker_state.reset();
    for (name, state) in health.breaker_states(tokio::time::Instant::now()) {
        m.breaker_state
            .with_label_values(&[&name])
            .set(state.as_gauge());
    }
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut out) {
        log::warn!("metrics encoding failed: {e}");
    }
    if crate::telemetry::enabled() {
        out.extend_from_slice(
            b"# HELP switchyard_telemetry Trace export: spans_exported, spans_failed, exports_failed
              # TYPE switchyard_telemetry counter
",
        );
        for (stat, n) in crate::telemetry::stats() {
            out.extend_from_slice(
                format!("switchyard_telemetry{{stat=\"{stat}\"}} {n}\n").as_bytes(),
            );
        }
    }
    out
}

/// Records one finished request.
pub fn record_request(s: &crate::summary::Summary<'_>, config: &crate::config::Config) {
    record_into(metrics(), s, config);
}

fn record_into(m: &Metrics, s: &crate::summary::Summary<'_>, config: &crate::config::Config) {
    let endpoint = s.endpoint.map_or("other", |e| e.name());
    let route = s.route.unwrap_or("");
    let (provider, model) = s.served.unwrap_or(("", ""));
    // Client-made model names never become label values (see `labels`).
    let model = m.model_labels.label(config, provider, model);
    let account = s.account;
    let status = s.status.to_string();
    let key = s.key_name.unwrap_or("");
    m.requests
        .with_label_values(&[endpoint, route, provider, model, &status, key])
        .inc();
    for a in s.attempts {
        let model = m.model_labels.label(config, &a.provider, &a.model);
        m.attempts
            .with_label_values(&[&a.provider, model, &a.outcome_label()])
            .inc();
    }
    if let Some(outcome) = s.cache {
        m.cache_requests
            .with_label_values(&[outcome.as_str()])
            .inc();
    }
    if let Some(saved) = account.saved_usd {
        use rust_decimal::prelude::ToPrimitive;
        m.cache_saved_usd.inc_by(saved.to_f64().unwrap_or(0.0));
    }
    let failed_before = s.attempts.len() > 1;
    if failed_before && (200..300).contains(&s.status) {
        m.fallbacks
            .with_label_values(&[route, provider, model])
            .inc();
    }
    let u = &account.usage;
    for (kind, n) in [
        ("input", u.input),
        ("output", u.output),
        ("cached_input", u.cached_input),
        ("cache_write", u.cache_write),
        ("reasoning", u.reasoning),
    ] {
        if n > 0 {
            m.tokens
                .with_label_values(&[provider, model, key, kind])
                .inc_by(n);
        }
    }
    if let Some(cost) = &account.cost_usd {
        use rust_decimal::prelude::ToPrimitive;
        let usd = cost.to_f64().unwrap_or(0.0);
        if usd > 0.0 {
            m.cost_usd
                .with_label_values(&[provider, model, key])
                .inc_by(usd);
        }
    }
    if account.cost_unknown {
        m.cost_flags
            .with_label_values(&[provider, model, "cost_unknown"])
            .inc();
    }
    if account.estimated {
        m.cost_flags
            .with_label_values(&[provider, model, "estimated"])
            .inc();
    }
    if s.endpoint.is_some() {
        m.request_seconds
            .with_label_values(&[endpoint, route])
            .observe(s.total.as_secs_f64());
        if let Some(t) = s.ttfb {
            m.ttfb_seconds
                .with_label_values(&[endpoint, route])
                .observe(t.as_secs_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::summary::{Account, Attempt, Outcome, Summary};
    use std::time::Duration;

    fn config() -> Config {
        Config::parse(
            "t.toml",
            r#"
[pricing]
unpriced = "record_unknown"

[[providers]]
name = "openai"
kind = "openai"
api_keys = ["k"]

[[gateway_keys]]
name = "app"
key = "sk-sy-0123456789abcdef"

[[routes]]
name = "chat"
targets = ["openai/gpt-4o-mini"]
"#,
            &|_| None,
        )
        .unwrap()
    }

    fn attempt(model: &str, status: u16) -> Attempt {
        Attempt {
            provider_index: 0,
            provider: "openai".into(),
            model: model.into(),
            key_index: Some(0),
            started: std::time::Instant::now(),
            elapsed: Some(Duration::from_millis(5)),
            outcome: Outcome::Answered(status),
        }
    }

    fn account() -> Account {
        Account {
            usage: crate::usage::Usage {
                input: 10,
                output: 5,
                ..Default::default()
            },
            cost_usd: Some(rust_decimal::Decimal::new(25, 6)),
            ..Default::default()
        }
    }

    /// A finished request for `model`: a 503 first, then a 200 with usage and a cost.
    fn record(m: &Metrics, config: &Config, route: Option<&str>, model: &str) {
        let attempts = [attempt(model, 503), attempt(model, 200)];
        let account = account();
        let s = Summary {
            legs: &[],
            id: "r",
            method: "POST",
            path: "/v1/chat/completions",
            endpoint: Some(crate::dialect::Endpoint::ChatCompletions),
            route,
            route_reason: None,
            key_name: Some("app"),
            feature: None,
            requested_model: Some(model),
            stream: false,
            request_bytes: 10,
            attempts: &attempts,
            served: Some(("openai", model)),
            status: 200,
            cache: None,
            translated_from: None,
            account: &account,
            reserved_usd: None,
            error: None,
            error_kind: None,
            client_gone: false,
            started_at: std::time::SystemTime::now(),
            ttfb: None,
            ttft: None,
            total: Duration::from_millis(10),
        };
        record_into(m, &s, config);
    }

    fn text(m: &Metrics, health: &Health) -> String {
        String::from_utf8(render_from(m, health, None, None)).unwrap()
    }

    #[test]
    fn what_is_recorded_is_what_is_rendered() {
        let m = build().unwrap();
        let health = Health::default();
        record(&m, &config(), Some("chat"), "gpt-4o-mini");
        let t = text(&m, &health);
        for line in [
            r#"switchyard_requests_total{endpoint="chat_completions",key="app",model="gpt-4o-mini",provider="openai",route="chat",status="200"} 1"#,
            r#"switchyard_upstream_attempts_total{model="gpt-4o-mini",outcome="503",provider="openai"} 1"#,
            r#"switchyard_upstream_attempts_total{model="gpt-4o-mini",outcome="200",provider="openai"} 1"#,
            r#"switchyard_fallbacks_total{model="gpt-4o-mini",provider="openai",route="chat"} 1"#,
            r#"switchyard_tokens_total{key="app",kind="input",model="gpt-4o-mini",provider="openai"} 10"#,
            r#"switchyard_tokens_total{key="app",kind="output",model="gpt-4o-mini",provider="openai"} 5"#,
            r#"switchyard_cost_usd_total{key="app",model="gpt-4o-mini",provider="openai"} 0.000025"#,
            r#"switchyard_request_duration_seconds_count{endpoint="chat_completions",route="chat"} 1"#,
        ] {
            assert!(t.lines().any(|l| l == line), "missing {line} in:\n{t}");
        }
    }

    #[test]
    fn ten_thousand_client_made_models_keep_the_label_sets_bounded() {
        let m = build().unwrap();
        let health = Health::default();
        let config = config();
        for i in 0..10_000 {
            record(&m, &config, None, &format!("made-up-{i}"));
        }
        let t = text(&m, &health);
        assert!(!t.contains("made-up-"), "a client-made name became a label");
        assert!(t.contains(r#"switchyard_requests_total{endpoint="chat_completions",key="app",model="other",provider="openai",route="",status="200"} 10000"#), "{t}");
        let series = t.lines().filter(|l| !l.starts_with('#')).count();
        assert!(series < 100, "{series} series");
    }

    #[tokio::test(start_paused = true)]
    async fn forgotten_breakers_leave_no_gauge_behind() {
        let m = build().unwrap();
        let health = Health::default();
        let cfg = crate::resilience::breaker::BreakerConfig::default();
        for i in 0..crate::resilience::MAX_MODEL_BREAKERS {
            health.model_breaker("p", &format!("m{i}"), cfg, 1);
        }
        assert!(text(&m, &health).contains(r#"switchyard_circuit_breaker_state{target="p/m0"} 0"#));
        // The map is full of idle, unheld breakers: a new name makes room by forgetting them.
        health.model_breaker("p", "new", cfg, 1);
        let t = text(&m, &health);
        assert!(!t.contains(r#"target="p/m0""#), "{t}");
        assert!(t.contains(r#"switchyard_circuit_breaker_state{target="p/new"} 0"#));
    }

    #[test]
    fn target_gauges_follow_the_statistics_and_drop_evicted_targets() {
        use crate::stats::{Observation, TargetStats};
        use std::time::Duration;
        let m = super::build().unwrap();
        let stats = TargetStats::new(2, Duration::from_secs(60));
        let now = tokio::time::Instant::now();
        let ok = Observation::success(
            now,
            Some(Duration::from_millis(100)),
            Duration::from_secs(2),
            Some(50),
        );
        stats.observe("openai", "gpt", ok);
        stats.observe("openai", "gpt", Observation::failure(now, Some(429)));
        let later = Observation {
            at: now + Duration::from_millis(1),
            ..ok
        };
        stats.observe("anthropic", "claude", later);
        super::set_targets(&m, &stats);
        let text = render(&m);
        let p50 = r#"switchyard_target_ttft_seconds{model="gpt",provider="openai",quantile="0.5"}"#;
        let line = text.lines().find(|l| l.starts_with(p50)).expect(&text);
        let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((v - 0.1).abs() < 0.01, "{line}");
        assert!(
            text.contains(
                r#"switchyard_target_rate_limited_ratio{model="gpt",provider="openai"} 0.5"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"switchyard_target_tokens_per_second{model="claude",provider="anthropic"} 25"#
            ),
            "{text}"
        );
        // A third target evicts the least recently seen one; its series go with it.
        stats.observe(
            "groq",
            "llama",
            Observation::success(
                now + Duration::from_secs(1),
                None,
                Duration::from_secs(1),
                Some(5),
            ),
        );
        super::set_targets(&m, &stats);
        let text = render(&m);
        assert!(!text.contains(r#"provider="openai""#), "{text}");
        assert!(text.contains(r#"provider="groq""#), "{text}");
    }

    fn render(m: &super::Metrics) -> String {
        use prometheus::Encoder;
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&m.registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn definitions_build_and_render() {
        let m = super::build().unwrap();
        m.requests
            .with_label_values(&["chat_completions", "chat", "openai", "gpt", "200", "k"])
            .inc();
        let text = super::render(&crate::resilience::Health::default(), None, None);
        assert!(text.is_empty() || std::str::from_utf8(&text).is_ok());
    }
}
