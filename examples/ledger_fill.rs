//! Fills a ledger with synthetic rows through the real writer (queue, batches, WAL), to measure
//! insert cost and the dashboard's queries at scale. Rows are spread evenly over the last
//! `--days` days, newest now, with a plausible mix: 50 keys, 20 features, 12 models from 4
//! providers, 95% status 200 (the rest 400/429/500/502), 10% cache hits, exact costs.
//!
//!   cargo run --release --example ledger_fill -- PATH ROWS [--days 30] [--without-dashboard-indexes]
//!
//! Prints one line: rows, seconds, rows per second, microseconds per row. With
//! `--without-dashboard-indexes` the filter indexes of schema version 4 are dropped first
//! (the schema version stays), to measure what those indexes cost each insert.

use rust_decimal::Decimal;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchyard::ledger::{Ledger, LedgerAttempt, LedgerConfig, LedgerRow, Role};
use switchyard::usage::Usage;

const DASHBOARD_INDEXES: [&str; 6] = [
    "requests_key_id",
    "requests_feature_id",
    "requests_model_id",
    "requests_requested_model_id",
    "requests_not_ok_id",
    "requests_cache_hit_id",
];

const MODELS: [(&str, &str); 12] = [
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4o"),
    ("openai", "gpt-4.1"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-haiku-4-5"),
    ("anthropic", "claude-opus-4-1"),
    ("gemini", "gemini-2.5-flash"),
    ("gemini", "gemini-2.5-pro"),
    ("groq", "llama-3.3-70b-versatile"),
    ("groq", "llama-3.1-8b-instant"),
    ("openai", "text-embedding-3-small"),
    ("gemini", "gemini-2.0-flash"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: ledger_fill PATH ROWS [--days N] [--without-dashboard-indexes]";
    let path = args.first().ok_or(usage)?.clone();
    let rows: u64 = args.get(1).ok_or(usage)?.parse()?;
    let mut days: i64 = 30;
    let mut without = false;
    let mut i = 2;
    while i < args.len() {
        match args[i].as_str() {
            "--days" => {
                days = args.get(i + 1).ok_or(usage)?.parse()?;
                i += 1;
            }
            "--without-dashboard-indexes" => without = true,
            other => return Err(format!("unknown argument {other}; {usage}").into()),
        }
        i += 1;
    }
    let mut cfg = LedgerConfig::new(&path);
    // Wait for the writer rather than spill: the figure is the writer's own pace.
    cfg.max_wait = Duration::from_secs(120);
    let (ledger, handle) = Ledger::open(cfg)?;
    if without {
        let conn = rusqlite::Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        for name in DASHBOARD_INDEXES {
            conn.execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
        }
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let span = days * 86_400_000;
    let start = Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in 0..rows {
        // xorshift: a cheap, repeatable mix.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let ts = now - span + (span * n as i64) / rows.max(1) as i64;
        let (provider, model) = MODELS[(x % 12) as usize];
        let status = match (x >> 8) % 100 {
            0..=94 => 200,
            95 | 96 => 429,
            97 => 500,
            98 => 502,
            _ => 400,
        };
        let cache_hit = status == 200 && (x >> 16).is_multiple_of(10);
        let input = 50 + (x >> 20) % 4000;
        let output = 10 + (x >> 32) % 800;
        let cost = Decimal::new((input * 15 + output * 60) as i64, 8);
        handle.record_blocking(LedgerRow {
            request_id: format!("req_{ts:012x}{n:012x}"),
            ts_ms: ts,
            gateway_key: Some(format!("key-{}", (x >> 40) % 50)),
            feature: Some(format!("feature-{}", (x >> 46) % 20)),
            route: Some("chat".into()),
            endpoint: "chat_completions".into(),
            requested_model: Some("chat".into()),
            provider: Some(provider.into()),
            model: Some(model.into()),
            attempts: vec![LedgerAttempt {
                role: Role::Served,
                provider: provider.into(),
                model: model.into(),
                key_index: Some(0),
                status: Some(status),
                error_class: None,
                ms: Some(((x >> 24) % 3000) as f64),
                usage: Usage {
                    input,
                    output,
                    ..Usage::default()
                },
                cost_usd: Some(if cache_hit { Decimal::ZERO } else { cost }),
                cost_unknown: false,
            }],
            attempt_count: 1,
            status,
            error_class: None,
            cache_hit,
            stream: (x >> 50).is_multiple_of(2),
            usage: Usage {
                input,
                output,
                ..Usage::default()
            },
            cost_usd: Some(if cache_hit { Decimal::ZERO } else { cost }),
            cost_unknown: false,
            saved_usd: cache_hit.then_some(cost),
            estimated: false,
            ttft_ms: Some(((x >> 28) % 900) as f64),
            total_ms: ((x >> 24) % 3000) as f64,
            unit: Some("tokens".into()),
            quantity: Some(input + output),
            route_reason: Some("fallback".into()),
            reserved_usd: Some(cost * Decimal::from(2)),
        });
    }
    drop(handle);
    let stats = ledger.shutdown()?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "rows={} written={} spilled={} seconds={secs:.1} rows_per_s={:.0} us_per_row={:.2} dashboard_indexes={}",
        rows,
        stats.rows_written,
        stats.rows_spilled,
        rows as f64 / secs,
        secs * 1e6 / rows as f64,
        !without
    );
    Ok(())
}
