//! Dialect translation: a long streamed answer parsed and re-encoded event by event, a
//! request translated between dialects, and a request's cache key.
//!
//!   cargo bench --bench translate
//!
//! Throughput is in SSE events of the provider's stream per second. Figures are recorded in
//! load-tests/RESULTS.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use switchyard::dialect::canonical::{StreamEncoderOptions, TranslateOptions};
use switchyard::dialect::translate::{RequestTranslator, ResponseTranslator};
use switchyard::dialect::Dialect;

/// An OpenAI stream of `n` text chunks, then a tool call in 50 pieces, finish and usage.
fn openai_stream(n: usize) -> (Vec<u8>, u64) {
    let mut out = String::new();
    let mut events = 0u64;
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        serde_json::json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1764000000u64,
            "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    for i in 0..n {
        let c = chunk(
            serde_json::json!({"content": format!("token{i} ")}),
            serde_json::Value::Null,
        );
        out.push_str(&format!("data: {c}\n\n"));
        events += 1;
    }
    let start = chunk(
        serde_json::json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}),
        serde_json::Value::Null,
    );
    out.push_str(&format!("data: {start}\n\n"));
    for i in 0..50 {
        let c = chunk(
            serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": format!("\"k{i}\":{i},")}}]}),
            serde_json::Value::Null,
        );
        out.push_str(&format!("data: {c}\n\n"));
    }
    let fin = chunk(serde_json::json!({}), serde_json::json!("tool_calls"));
    out.push_str(&format!("data: {fin}\n\ndata: [DONE]\n\n"));
    (out.into_bytes(), events + 53)
}

/// An Anthropic stream of `n` text deltas.
fn anthropic_stream(n: usize) -> (Vec<u8>, u64) {
    let mut out = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_b\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n\
         event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    );
    for i in 0..n {
        out.push_str(&format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"token{i} \"}}}}\n\n"
        ));
    }
    out.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2000}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    (out.into_bytes(), n as u64 + 5)
}

/// Feeds `input` in network-sized pieces (4 KiB), as the proxy would.
fn translate(from: Dialect, to: Dialect, input: &[u8]) -> usize {
    let mut t = ResponseTranslator::stream(
        from,
        to,
        StreamEncoderOptions {
            include_usage: true,
            model: "m".into(),
            ..Default::default()
        },
    );
    let mut n = 0;
    for piece in input.chunks(4096) {
        n += t.feed(piece).len();
    }
    n + t.finish().len()
}

fn streams(c: &mut Criterion) {
    let mut g = c.benchmark_group("translate_stream");
    let (oai, oai_events) = openai_stream(2000);
    let (ant, ant_events) = anthropic_stream(2000);
    for (name, from, to, input, events) in [
        (
            "openai_to_anthropic",
            Dialect::OpenAi,
            Dialect::Anthropic,
            &oai,
            oai_events,
        ),
        (
            "anthropic_to_openai",
            Dialect::Anthropic,
            Dialect::OpenAi,
            &ant,
            ant_events,
        ),
    ] {
        g.throughput(Throughput::Elements(events));
        g.bench_with_input(BenchmarkId::new(name, events), input, |b, input| {
            b.iter(|| black_box(translate(from, to, black_box(input))))
        });
    }
    g.finish();
}

fn requests(c: &mut Criterion) {
    let body = serde_json::json!({
        "model": "chat",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "x".repeat(4000)},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
            {"role": "user", "content": "and?"}
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}],
        "temperature": 0.2,
        "stream": true
    })
    .to_string();
    let opts = TranslateOptions::default();
    let mut g = c.benchmark_group("translate_request");
    g.throughput(Throughput::Bytes(body.len() as u64));
    for (name, to) in [
        ("openai_to_anthropic", Dialect::Anthropic),
        ("openai_to_gemini", Dialect::Gemini),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let t = RequestTranslator::new(Dialect::OpenAi, black_box(body.as_bytes()), &opts)
                    .unwrap();
                black_box(t.body_for(to, "target", &opts).unwrap())
            })
        });
    }
    g.finish();
}

/// The cache key of a request: decode to the canonical form, then hash it.
fn cache_key(c: &mut Criterion) {
    let body = serde_json::json!({
        "model": "chat",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "x".repeat(4000)}
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}}}}],
        "temperature": 0.2
    })
    .to_string();
    let opts = TranslateOptions::default();
    let mut g = c.benchmark_group("cache_key");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("decode_and_hash_4k_request", |b| {
        b.iter(|| {
            let req = switchyard::dialect::translate::decode_request(
                Dialect::OpenAi,
                black_box(body.as_bytes()),
                &opts,
            )
            .unwrap();
            black_box(switchyard::cache::key::request_key(&req, "chat"))
        })
    });
    g.finish();
}

criterion_group!(benches, streams, requests, cache_key);
criterion_main!(benches);
