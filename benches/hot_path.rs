//! The per-request work the gateway adds before a byte goes upstream.
//!
//!   cargo bench --bench hot_path
//!
//! Figures are recorded in load-tests/RESULTS.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use switchyard::auth::KeyRing;
use switchyard::config::Config;
use switchyard::dialect::probe::rewrite_model;
use switchyard::dialect::probe_request;
use switchyard::routing::Router;

fn body(content_bytes: usize) -> Vec<u8> {
    serde_json::json!({
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "x".repeat(content_bytes)}
        ],
        "model": "groq/llama-3.3-70b-versatile",
        "temperature": 0.2,
        "stream": true
    })
    .to_string()
    .into_bytes()
}

fn probe_and_rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("probe_and_rewrite");
    for size in [200usize, 64 * 1024, 1 << 20] {
        let b = body(size);
        g.throughput(Throughput::Bytes(b.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(b.len()), &b, |bench, b| {
            bench.iter(|| {
                let p = probe_request(black_box(b)).unwrap();
                black_box(rewrite_model(b, &p.model_span, "llama-3.3-70b-versatile"))
            })
        });
    }
    g.finish();
}

fn auth_and_route(c: &mut Criterion) {
    let mut text = String::from(
        "[[providers]]\nname = \"groq\"\nkind = \"groq\"\napi_keys = [\"k\"]\n[[providers]]\nname = \"openai\"\nkind = \"openai\"\napi_keys = [\"k\"]\n",
    );
    for i in 0..50 {
        text.push_str(&format!(
            "[[gateway_keys]]\nname = \"app{i}\"\nkey = \"sk-sy-application-key-{i:04}\"\n[[routes]]\nname = \"route{i}\"\ntargets = [\"groq/m{i}\", \"openai/m{i}\"]\n"
        ));
    }
    let cfg = Config::parse("bench.toml", &text, &|_| None).unwrap();
    let keys = KeyRing::new(&cfg.gateway_keys);
    let router = Router::new(&cfg);
    c.bench_function("authenticate (50 keys)", |b| {
        b.iter(|| {
            keys.authenticate(black_box("sk-sy-application-key-0042"))
                .is_some()
        })
    });
    c.bench_function("route resolve (50 routes)", |b| {
        b.iter(|| router.resolve(&cfg, black_box("route42")).unwrap())
    });
}

criterion_group!(benches, probe_and_rewrite, auth_and_route);
criterion_main!(benches);
