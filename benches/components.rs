//! The per-request components, one at a time: reading a long stream for usage, picking the
//! route, pricing the call.
//!
//!   cargo bench --bench components -- --warm-up-time 1 --measurement-time 3
//!
//! Figures are recorded in load-tests/RESULTS.md.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use switchyard::config::Config;
use switchyard::dialect::Dialect;
use switchyard::pricing::{PriceBook, PriceDate};
use switchyard::routing::Router;
use switchyard::usage::{SseParser, StreamTally, Usage};

/// Events per stream.
const EVENTS: usize = 2_000;

/// An OpenAI chat stream of `EVENTS` events, one per chunk as a provider sends them: a role
/// chunk, content deltas, the finish chunk, the usage-only chunk, `[DONE]`.
fn openai_stream() -> Vec<Bytes> {
    let head = r#"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_06737a9306","#;
    let mut out = vec![Bytes::from(format!(
        "data: {head}\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
    ))];
    for i in 0..EVENTS - 4 {
        out.push(Bytes::from(format!(
            "data: {head}\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
        )));
    }
    out.push(Bytes::from(format!(
        "data: {head}\"choices\":[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":null}}\n\n"
    )));
    out.push(Bytes::from(format!(
        "data: {head}\"choices\":[],\"usage\":{{\"prompt_tokens\":1200,\"completion_tokens\":1996,\"total_tokens\":3196,\"prompt_tokens_details\":{{\"cached_tokens\":1024,\"audio_tokens\":0}},\"completion_tokens_details\":{{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}}}}\n\n"
    )));
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    assert_eq!(out.len(), EVENTS);
    out
}

/// An Anthropic messages stream of `EVENTS` events, one per chunk.
fn anthropic_stream() -> Vec<Bytes> {
    let mut out = vec![
        Bytes::from_static(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5-20250929\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":1200,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":1024,\"output_tokens\":1}}}\n\n"),
        Bytes::from_static(b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"),
    ];
    for i in 0..EVENTS - 5 {
        out.push(Bytes::from(format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\" word{i}\"}}}}\n\n"
        )));
    }
    out.push(Bytes::from_static(
        b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    ));
    out.push(Bytes::from_static(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":1995}}\n\n"));
    out.push(Bytes::from_static(
        b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    ));
    assert_eq!(out.len(), EVENTS);
    out
}

/// The same bytes cut into 16 KiB reads, as a fast stream arrives.
fn rechunk(events: &[Bytes], size: usize) -> Vec<Bytes> {
    let all: Vec<u8> = events.iter().flat_map(|b| b.iter().copied()).collect();
    all.chunks(size).map(Bytes::copy_from_slice).collect()
}

fn sse(c: &mut Criterion) {
    let streams = [
        ("openai", Dialect::OpenAi, openai_stream()),
        ("anthropic", Dialect::Anthropic, anthropic_stream()),
    ];
    let mut g = c.benchmark_group("sse_2000_events");
    g.throughput(Throughput::Elements(EVENTS as u64));
    for (name, wire, events) in &streams {
        let big = rechunk(events, 16 * 1024);
        // The parser alone: bytes to events.
        g.bench_with_input(
            BenchmarkId::new("parser/event_per_chunk", name),
            events,
            |b, events| {
                b.iter(|| {
                    let mut p = SseParser::new();
                    let mut n = 0usize;
                    for chunk in events {
                        p.feed_with(chunk, |e| n += e.data.len());
                    }
                    black_box(n)
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("parser/16KiB_chunks", name),
            &big,
            |b, chunks| {
                b.iter(|| {
                    let mut p = SseParser::new();
                    let mut n = 0usize;
                    for chunk in chunks {
                        p.feed_with(chunk, |e| n += e.data.len());
                    }
                    black_box(n)
                })
            },
        );
        // What the proxy runs per stream: parse, read usage and text, pass chunks through.
        g.bench_with_input(
            BenchmarkId::new("tally/event_per_chunk", name),
            events,
            |b, events| {
                b.iter(|| {
                    let mut t = StreamTally::new(*wire, true, false);
                    for chunk in events {
                        black_box(t.feed(chunk.clone()));
                    }
                    t.finish();
                    assert!(t.saw_terminal_event());
                    black_box(t.usage())
                })
            },
        );
        if *wire == Dialect::OpenAi {
            // The client did not ask for usage: the usage-only chunk is cut out on the way.
            g.bench_with_input(
                BenchmarkId::new("tally_strip_usage/event_per_chunk", name),
                events,
                |b, events| {
                    b.iter(|| {
                        let mut t = StreamTally::new(*wire, true, true);
                        for chunk in events {
                            black_box(t.feed(chunk.clone()));
                        }
                        black_box(t.finish());
                        black_box(t.usage())
                    })
                },
            );
        }
    }
    g.finish();
}

fn routes(c: &mut Criterion) {
    let mut text = String::new();
    for p in ["groq", "openai", "anthropic", "mistral"] {
        text.push_str(&format!(
            "[[providers]]\nname = \"{p}\"\nkind = \"{p}\"\napi_keys = [\"k\"]\n"
        ));
    }
    for i in 0..50 {
        text.push_str(&format!(
            "[[routes]]\nname = \"route{i}\"\ntargets = [\"groq/m{i}\", \"openai/m{i}\", \"anthropic/m{i}\", \"mistral/m{i}\"]\n"
        ));
    }
    let cfg = Config::parse("bench.toml", &text, &|_| None).expect("bench config");
    assert_eq!(cfg.routes.len(), 50);
    let router = Router::new(&cfg);
    let mut g = c.benchmark_group("route_resolve_50_routes");
    g.bench_function("route_name", |b| {
        b.iter(|| router.resolve(&cfg, black_box("route42")).expect("route"))
    });
    g.bench_function("provider/model", |b| {
        b.iter(|| {
            router
                .resolve(&cfg, black_box("openai/gpt-4o-mini"))
                .expect("direct")
        })
    });
    g.bench_function("unknown_model", |b| {
        b.iter(|| router.resolve(&cfg, black_box("no-such-model")).is_err())
    });
    g.finish();
}

fn cost(c: &mut Criterion) {
    let book = PriceBook::builtin();
    let at = PriceDate::today();
    let usage = Usage {
        input: 1_200,
        output: 850,
        cached_input: 4_096,
        cache_write: 0,
        reasoning: 300,
    };
    assert!(book.cost("openai", "gpt-4o-mini", at, &usage).is_some());
    let mut g = c.benchmark_group("cost");
    g.bench_function("openai/gpt-4o-mini", |b| {
        b.iter(|| {
            book.cost(
                black_box("openai"),
                black_box("gpt-4o-mini"),
                at,
                black_box(&usage),
            )
        })
    });
    // A renamed provider: its own name has no prices, its kind's are used.
    g.bench_function("fallback_name/gpt-4o-mini", |b| {
        b.iter(|| {
            book.cost_for(
                black_box(&["openai-eu", "openai"]),
                black_box("gpt-4o-mini"),
                at,
                black_box(&usage),
            )
        })
    });
    g.bench_function("cost+header_string", |b| {
        b.iter(|| {
            book.cost("openai", black_box("gpt-4o-mini"), at, &usage)
                .map(|c| c.round_to_microdollars().total.to_string())
        })
    });
    g.finish();
}

/// A whole (non-streamed) answer: the usage read once the body is complete, as the proxy does
/// for every plain chat call. The body is the mock's 20-token OpenAI answer (662 bytes).
fn whole_answer(c: &mut Criterion) {
    let body = Bytes::from_static(
        br#"{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"annotations":[],"content":"Hello from gpt-4o-mini! tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 tok9 tok10 tok11 tok12 tok13 tok14 tok15 tok16 tok17","refusal":null,"role":"assistant"}}],"created":1795620924,"id":"chatcmpl-mock-1","model":"gpt-4o-mini","object":"chat.completion","service_tier":"default","system_fingerprint":"mock","usage":{"completion_tokens":20,"completion_tokens_details":{"accepted_prediction_tokens":0,"audio_tokens":0,"reasoning_tokens":0,"rejected_prediction_tokens":0},"prompt_tokens":2,"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":0},"total_tokens":22}}"#,
    );
    let mut g = c.benchmark_group("whole_answer");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("tally/openai_662B", |b| {
        b.iter(|| {
            let mut t = StreamTally::new(Dialect::OpenAi, false, false);
            black_box(t.feed(body.clone()));
            t.finish();
            black_box(t.usage())
        })
    });
    g.finish();
}

/// A whole routing decision (`Router::plan`: allow-list, resolution, filters, strategy) for a
/// three-target route, by strategy. `cheapest` prices every target for this request.
fn plan(c: &mut Criterion) {
    let text = r#"
[pricing]
unpriced = "record_unknown"
[[providers]]
name = "openai"
kind = "openai"
api_keys = ["k"]
[[providers]]
name = "groq"
kind = "groq"
api_keys = ["k"]
[[gateway_keys]]
name = "bench"
key = "sk-sy-bench-key-0001"
[[routes]]
name = "fallback"
targets = ["openai/gpt-4o", "openai/gpt-4o-mini", "groq/llama-3.3-70b-versatile"]
[[routes]]
name = "cheapest"
strategy = "cheapest"
targets = ["openai/gpt-4o", "openai/gpt-4o-mini", "groq/llama-3.3-70b-versatile"]
[[routes]]
name = "fastest"
strategy = "fastest"
targets = ["openai/gpt-4o", "openai/gpt-4o-mini", "groq/llama-3.3-70b-versatile"]
"#;
    let cfg = Config::parse("bench.toml", text, &|_| None).expect("bench config");
    let keys = switchyard::auth::KeyRing::new(&cfg.gateway_keys);
    let key = keys.authenticate("sk-sy-bench-key-0001").expect("key");
    let stats = std::sync::Arc::new(switchyard::stats::TargetStats::default());
    // Every fastest target has a fit (the decision reads three).
    let now = tokio::time::Instant::now();
    for (i, (p, m)) in [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("groq", "llama-3.3-70b-versatile"),
    ]
    .into_iter()
    .enumerate()
    {
        for n in 0..20u64 {
            let ttft = 100.0 + 50.0 * i as f64 + n as f64;
            let sample = switchyard::routing::fastest::Sample {
                prompt_tokens: 200 + 40 * n,
                ttft_ms: ttft,
                total_ms: ttft + 300.0,
                output_tokens: Some(60),
                at: now,
            };
            stats.latency.observe(p, m, sample);
        }
    }
    let router = Router::with_stats(&cfg, stats);
    let headers = http::HeaderMap::new();
    let mut g = c.benchmark_group("route_plan");
    for route in ["fallback", "cheapest", "fastest"] {
        let body = format!(
            r#"{{"model":"{route}","max_tokens":256,"messages":[{{"role":"system","content":"You are terse."}},{{"role":"user","content":"Summarise the attached report in three bullet points, please."}}]}}"#
        );
        // The request probe finds the fields once per request, before routing.
        let fields = switchyard::dialect::BodyFields::of(body.as_bytes());
        g.bench_function(route, |b| {
            b.iter(|| {
                router
                    .plan(
                        &cfg,
                        &switchyard::routing::Request {
                            key: &key,
                            endpoint: switchyard::dialect::Endpoint::ChatCompletions,
                            dialect: switchyard::dialect::Dialect::OpenAi,
                            model: route,
                            stream: false,
                            body: black_box(body.as_bytes()),
                            fields: &fields,
                            headers: &headers,
                        },
                    )
                    .expect("plan")
            })
        });
    }
    // The load test's 1 MiB body: a short message and 1 MiB of text in a field of its own
    // (gpt-4o's window is 128k tokens, so a bound of body bytes / 4 does not fit it).
    let pad = "The quick brown fox jumps over the lazy dog. ".repeat(23_302);
    for route in ["fallback", "cheapest", "openai/gpt-4o"] {
        let body = format!(
            r#"{{"model":"{route}","messages":[{{"role":"user","content":"hi"}}],"pad":"{}"}}"#,
            &pad[..1 << 20]
        );
        let fields = switchyard::dialect::BodyFields::of(body.as_bytes());
        g.bench_function(BenchmarkId::new("1MiB_padded", route), |b| {
            b.iter(|| {
                router
                    .plan(
                        &cfg,
                        &switchyard::routing::Request {
                            key: &key,
                            endpoint: switchyard::dialect::Endpoint::ChatCompletions,
                            dialect: switchyard::dialect::Dialect::OpenAi,
                            model: route,
                            stream: false,
                            body: black_box(body.as_bytes()),
                            fields: &fields,
                            headers: &headers,
                        },
                    )
                    .expect("plan")
            })
        });
    }
    g.finish();
}

/// The request probe (model, stream flag and, since #14's follow-up, the spans of the fields
/// routing reads): the one parse of the body, small and 1 MiB padded.
fn probe(c: &mut Criterion) {
    let mut g = c.benchmark_group("probe_request");
    let small = r#"{"model":"openai/gpt-4o-mini","max_tokens":256,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Summarise the attached report in three bullet points, please."}]}"#.to_owned();
    let pad = "The quick brown fox jumps over the lazy dog. ".repeat(23_302);
    let large = format!(
        r#"{{"model":"openai/gpt-4o-mini","messages":[{{"role":"user","content":"hi"}}],"pad":"{}"}}"#,
        &pad[..1 << 20]
    );
    for (name, body) in [("small", small), ("1MiB_padded", large)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                switchyard::dialect::probe_request(black_box(body.as_bytes())).expect("probe")
            })
        });
    }
    g.finish();
}

/// An in-memory limit check: reserve (rpm, tpm and a budget on the key and a feature) and
/// settle, as one request does.
fn limits(c: &mut Criterion) {
    use switchyard::governance::limits::memory::MemoryStore;
    use switchyard::governance::limits::{Ask, ScopeAsk, Settlement, Verdict};
    use switchyard::governance::rules::{Budget, Period, Rule};
    let rule = Rule {
        rpm: Some(u64::MAX / 4),
        tpm: Some(u64::MAX / 4),
        budget: Some(Budget {
            usd: rust_decimal::Decimal::from(1_000_000),
            period: Period::Day,
        }),
    };
    let store = MemoryStore::new();
    let now = 1_778_000_000_000i64;
    let ask = Ask {
        now_ms: now,
        tokens: 1200,
        cost_nanos: 9_000,
        scopes: vec![
            ScopeAsk::new("key:team-a".into(), "key `team-a`".into(), &rule, now),
            ScopeAsk::new(
                "feature:search".into(),
                "feature `search`".into(),
                &rule,
                now,
            ),
        ],
    };
    let used = Settlement {
        now_ms: now,
        tokens: 900,
        cost_nanos: 7_000,
    };
    c.bench_function(
        "limits: in-memory reserve + settle (key and feature)",
        |b| {
            b.iter(|| match store.reserve(black_box(&ask)) {
                Verdict::Granted(t) => store.settle(&t, black_box(&used)),
                Verdict::Denied(d) => panic!("denied: {d:?}"),
            })
        },
    );
}

criterion_group!(
    benches,
    sse,
    whole_answer,
    routes,
    cost,
    plan,
    probe,
    limits
);
criterion_main!(benches);
