//! The built-in mock provider over real sockets: every dialect, streaming, tools, the control
//! endpoints, keep-alive, big bodies and HTTPS. Each test starts its own mock on a free loopback
//! port inside the test's runtime and drives it with reqwest (plain HTTP) or tokio-rustls
//! (HTTPS; reqwest has no TLS here). Faults and error answers are in `mock_provider_faults.rs`.

mod mock_common;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mock_common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use switchyard::mock::MockOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_rustls::rustls::ProtocolVersion;

#[tokio::test]
async fn openai_non_stream_shape_usage_and_echo_headers() {
    let base = start_default().await;
    let body = chat_body(false);
    let raw = serde_json::to_vec(&body).expect("json");
    let r = post(
        &format!("{base}/openai/v1/chat/completions"),
        &body,
        &[
            ("authorization", "Bearer sk-test"),
            ("x-mock-tokens", "6"),
            ("x-mock-cached-tokens", "3"),
            ("x-mock-reasoning-tokens", "2"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/json");
    assert_eq!(header(&r, "x-mock-model"), "mock-large");
    assert_eq!(header(&r, "x-mock-auth"), "bearer");
    assert_eq!(header(&r, "x-mock-body-bytes"), raw.len().to_string());
    assert_eq!(header(&r, "x-mock-body-sha256"), hex(&Sha256::digest(&raw)));
    assert!(header(&r, "x-request-id").starts_with("mock-"));
    let v = json_body(r).await;
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("chatcmpl-mock-")));
    let choice = &v["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        "Hello from mock-large! tok1 tok2 tok3"
    );
    assert_eq!(choice["message"]["refusal"], Value::Null);
    assert_eq!(choice["finish_reason"], "stop");
    let u = &v["usage"];
    // "Say hello to the mock." is 22 bytes -> 6 tokens, plus 3 cached.
    assert_eq!(u["prompt_tokens"], 9);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 3);
    assert_eq!(u["completion_tokens"], 8);
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 2);
    assert_eq!(u["total_tokens"], 17);
    assert_eq!(v["system_fingerprint"], "mock");

    // max_completion_tokens below the token count finishes with "length".
    let mut limited = chat_body(false);
    limited["max_completion_tokens"] = json!(2);
    let v = post_json(&format!("{base}/v1/chat/completions"), &limited, &[]).await;
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 2);
}

async fn openai_stream(include_usage: bool) -> Vec<String> {
    let base = start_default().await;
    let mut body = chat_body(true);
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    let r = post(
        &format!("{base}/v1/chat/completions"),
        &body,
        &[("x-mock-tokens", "5")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/event-stream");
    assert_eq!(header(&r, "transfer-encoding"), "chunked");
    let text = r.text().await.expect("body");
    sse(&text).into_iter().map(|(_, d)| d).collect()
}

#[tokio::test]
async fn openai_stream_without_usage() {
    let events = openai_stream(false).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|d| json_of(d))
        .collect();
    // role chunk, 5 tokens, finish chunk
    assert_eq!(chunks.len(), 7);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from mock-large! tok1 tok2");
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "mock-large");
        assert!(c.get("usage").is_none());
    }
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    assert!(chunks[..6]
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));
}

#[tokio::test]
async fn openai_stream_with_include_usage() {
    let events = openai_stream(true).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|d| json_of(d))
        .collect();
    assert_eq!(chunks.len(), 8);
    let usage = chunks.last().expect("usage chunk");
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 5);
    assert_eq!(
        usage["usage"]["total_tokens"].as_u64(),
        Some(usage["usage"]["prompt_tokens"].as_u64().expect("prompt") + 5)
    );
    assert!(chunks[..7].iter().all(|c| c["usage"].is_null()));
}

#[tokio::test]
async fn stream_is_incremental_with_itl() {
    let base = start_default().await;
    let r = post(
        &format!("{base}/v1/chat/completions"),
        &chat_body(true),
        &[
            ("x-mock-tokens", "6"),
            ("x-mock-itl-ms", "40"),
            ("x-mock-ttft-ms", "100"),
        ],
    )
    .await;
    let t0 = Instant::now();
    let mut stream = r.bytes_stream();
    let mut arrivals = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunk.expect("chunk");
        arrivals.push(t0.elapsed());
    }
    // role + 6 tokens + finish + [DONE] = 9 events, 8 gaps of 40 ms.
    assert!(arrivals.len() >= 5, "{arrivals:?}");
    let spread = *arrivals.last().expect("last") - arrivals[0];
    assert!(spread >= Duration::from_millis(250), "{arrivals:?}");
}

#[tokio::test]
async fn anthropic_non_stream_with_cache_fields() {
    let base = start_default().await;
    let body = json!({"model": "claude-mock", "max_tokens": 100, "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}]});
    let r = post(
        &format!("{base}/anthropic/v1/messages"),
        &body,
        &[
            ("x-api-key", "k"),
            ("x-mock-tokens", "4"),
            ("x-mock-cached-tokens", "10"),
            ("x-mock-cache-write-tokens", "7"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-mock-auth"), "x-api-key");
    let v = json_body(r).await;
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-mock");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Hello from claude-mock! tok1"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    // "Be brief." (9) + "Hi there" (8) = 17 bytes -> 5 tokens
    assert_eq!(v["usage"]["input_tokens"], 5);
    assert_eq!(v["usage"]["output_tokens"], 4);
    assert_eq!(v["usage"]["cache_read_input_tokens"], 10);
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 7);

    let mut limited = body.clone();
    limited["max_tokens"] = json!(2);
    let v = post_json(&format!("{base}/v1/messages"), &limited, &[]).await;
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["content"][0]["text"], "Hello from");
}

#[tokio::test]
async fn anthropic_stream_event_order_with_thinking() {
    let base = start_default().await;
    let body = json!({"model": "claude-mock", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "Hi"}]});
    let r = post(
        &format!("{base}/v1/messages"),
        &body,
        &[("x-mock-tokens", "3"), ("x-mock-reasoning-tokens", "2")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "text/event-stream");
    let events = sse(&r.text().await.expect("body"));
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let data: Vec<Value> = events.iter().map(|(_, d)| json_of(d)).collect();
    for (name, d) in names.iter().zip(&data) {
        assert_eq!(d["type"], *name);
    }
    let start = &data[0]["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["usage"]["output_tokens"], 1);
    assert_eq!(start["usage"]["input_tokens"], 1);
    assert_eq!(data[1]["content_block"]["type"], "thinking");
    assert_eq!(data[3]["delta"]["type"], "thinking_delta");
    assert_eq!(data[5]["delta"]["type"], "signature_delta");
    assert_eq!(data[7]["index"], 1);
    assert_eq!(
        data[7]["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = data[8..11]
        .iter()
        .map(|d| d["delta"]["text"].as_str().expect("text"))
        .collect();
    assert_eq!(text, "Hello from claude-mock!");
    assert_eq!(
        data[12],
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 5}})
    );
}

#[tokio::test]
async fn gemini_generate_and_stream() {
    let base = start_default().await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "Hello Gemini"}]}],
        "generationConfig": {"maxOutputTokens": 3}});
    let url = format!("{base}/gemini/v1beta/models/gemini-mock:generateContent?key=abc");
    let r = post(
        &url,
        &body,
        &[
            ("x-mock-reasoning-tokens", "4"),
            ("x-mock-cached-tokens", "2"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-mock-model"), "gemini-mock");
    assert_eq!(header(&r, "x-mock-auth"), "query");
    let v = json_body(r).await;
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "Hello from gemini-mock!"
    );
    assert_eq!(v["candidates"][0]["content"]["role"], "model");
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(
        v["usageMetadata"],
        json!({"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 12,
               "cachedContentTokenCount": 2, "thoughtsTokenCount": 4})
    );

    let url = format!("{base}/v1beta/models/gemini-mock:streamGenerateContent?alt=sse");
    let r = post(
        &url,
        &json!({"contents": [{"parts": [{"text": "x"}]}]}),
        &[("x-goog-api-key", "k"), ("x-mock-tokens", "4")],
    )
    .await;
    assert_eq!(header(&r, "content-type"), "text/event-stream");
    assert_eq!(header(&r, "x-mock-auth"), "x-goog-api-key");
    let text = r.text().await.expect("body");
    assert!(
        text.starts_with("data: {") && text.ends_with("}\r\n\r\n"),
        "{text:?}"
    );
    let chunks: Vec<Value> = sse(&text).iter().map(|(_, d)| json_of(d)).collect();
    assert_eq!(chunks.len(), 4);
    let joined: String = chunks
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .expect("text")
        })
        .collect();
    assert_eq!(joined, "Hello from gemini-mock! tok1");
    assert_eq!(chunks[3]["candidates"][0]["finishReason"], "STOP");
    assert!(chunks[2]["candidates"][0].get("finishReason").is_none());
    assert_eq!(chunks[3]["usageMetadata"]["candidatesTokenCount"], 4);

    // Without alt=sse the stream is one JSON array.
    let url = format!("{base}/v1beta/models/gemini-mock:streamGenerateContent");
    let r = post(&url, &json!({"contents": []}), &[("x-mock-tokens", "3")]).await;
    let arr: Value = r.json().await.expect("json array");
    assert_eq!(arr.as_array().map(Vec::len), Some(3));
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64 byte {c}"),
    };
    let mut out = Vec::new();
    for quad in s.as_bytes().chunks(4) {
        let n = quad.iter().filter(|c| **c != b'=').count();
        let mut acc = 0u32;
        for (i, c) in quad.iter().enumerate() {
            let v = if *c == b'=' { 0 } else { val(*c) };
            acc |= u32::from(v) << (18 - 6 * i);
        }
        out.extend_from_slice(&acc.to_be_bytes()[1..n]);
    }
    out
}

#[tokio::test]
async fn embeddings_float_and_base64() {
    let base = start_default().await;
    let url = format!("{base}/v1/embeddings");
    let floats = post_json(
        &url,
        &json!({"model": "emb", "input": ["alpha", "beta"]}),
        &[],
    )
    .await;
    assert_eq!(floats["object"], "list");
    assert_eq!(floats["model"], "emb");
    let data = floats["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    let v0: Vec<f32> = data[0]["embedding"]
        .as_array()
        .expect("vec")
        .iter()
        .map(|x| x.as_f64().expect("f") as f32)
        .collect();
    assert_eq!(v0.len(), 8);
    assert_eq!(
        floats["usage"],
        json!({"prompt_tokens": 3, "total_tokens": 3})
    );

    let b64 = post_json(
        &url,
        &json!({"model": "emb", "input": "alpha", "encoding_format": "base64"}),
        &[],
    )
    .await;
    let bytes = decode_base64(b64["data"][0]["embedding"].as_str().expect("base64 string"));
    let decoded: Vec<f32> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(decoded.len(), 8);
    for (a, b) in decoded.iter().zip(&v0) {
        assert!((a - b).abs() < 1e-6, "{decoded:?} vs {v0:?}");
    }
    let dims = post_json(
        &url,
        &json!({"model": "emb", "input": "x", "dimensions": 32}),
        &[],
    )
    .await;
    assert_eq!(
        dims["data"][0]["embedding"].as_array().map(Vec::len),
        Some(32)
    );
    let r = post(&url, &json!({"model": "emb"}), &[]).await;
    assert_eq!(r.status(), 400);
}

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}}
    ])
}

#[tokio::test]
async fn openai_tools_streamed_arguments_concatenate() {
    let base = start_default().await;
    let url = format!("{base}/v1/chat/completions");
    let mut body = chat_body(true);
    body["tools"] = weather_tools();
    let text = post(&url, &body, &[("x-mock-parallel-tools", "1")])
        .await
        .text()
        .await
        .expect("body");
    let events = sse(&text);
    assert_eq!(events.last().map(|(_, d)| d.as_str()), Some("[DONE]"));
    let mut args = [String::new(), String::new()];
    let mut names = [String::new(), String::new()];
    let mut pieces = 0;
    let mut finish = Vec::new();
    for (_, d) in &events[..events.len() - 1] {
        let c = json_of(d);
        if let Some(f) = c["choices"][0]["finish_reason"].as_str() {
            finish.push(f.to_string());
        }
        for tc in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let k = tc["index"].as_u64().expect("index") as usize;
            if let Some(n) = tc["function"]["name"].as_str() {
                names[k] = n.to_string();
                assert!(tc["id"].as_str().is_some_and(|id| id.starts_with("call_")));
            }
            if let Some(a) = tc["function"]["arguments"]
                .as_str()
                .filter(|a| !a.is_empty())
            {
                args[k].push_str(a);
                pieces += 1;
            }
        }
    }
    assert_eq!(names, ["get_weather", "get_time"]);
    assert!(pieces >= 6, "arguments came in {pieces} pieces");
    assert_eq!(
        json_of(&args[0]),
        json!({"location": "Paris", "unit": "celsius"})
    );
    assert_eq!(json_of(&args[1]), json!({"zone": "mock-zone"}));
    assert_eq!(finish, ["tool_calls"]);

    // Non-stream, single tool; and a tool result in last position gets a text answer.
    body["stream"] = json!(false);
    let v = post_json(&url, &body, &[]).await;
    let msg = &v["choices"][0]["message"];
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(msg["content"], Value::Null);
    assert_eq!(msg["tool_calls"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        json_of(
            msg["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .expect("args")
        ),
        json!({"location": "Paris", "unit": "celsius"})
    );
    body["messages"] = json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
    ]);
    let v = post_json(&url, &body, &[]).await;
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["choices"][0]["message"]["content"].is_string());
}

#[tokio::test]
async fn anthropic_tools_streamed_input_json() {
    let base = start_default().await;
    let url = format!("{base}/v1/messages");
    let tools = json!([{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let body = json!({"model": "claude-mock", "max_tokens": 50, "stream": true, "tools": tools,
        "messages": [{"role": "user", "content": "weather?"}]});
    let events = sse(&post(&url, &body, &[]).await.text().await.expect("body"));
    let data: Vec<Value> = events.iter().map(|(_, d)| json_of(d)).collect();
    assert_eq!(data[1]["content_block"]["type"], "tool_use");
    assert_eq!(data[1]["content_block"]["name"], "get_weather");
    assert_eq!(data[1]["content_block"]["input"], json!({}));
    let partial: Vec<&str> = data
        .iter()
        .filter(|d| d["delta"]["type"] == "input_json_delta")
        .map(|d| d["delta"]["partial_json"].as_str().expect("partial"))
        .collect();
    assert!(partial.len() >= 3, "{partial:?}");
    assert_eq!(json_of(&partial.concat()), json!({"city": "Paris"}));
    let delta = data
        .iter()
        .find(|d| d["type"] == "message_delta")
        .expect("message_delta");
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");

    let mut answered = body.clone();
    answered["stream"] = json!(false);
    answered["messages"] = json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]}
    ]);
    let v = post_json(&url, &answered, &[]).await;
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["content"][0]["type"], "text");
}

#[tokio::test]
async fn stats_reset_and_keep_alive() {
    let base = start_default().await;
    let c = client();
    let chat = format!("{base}/openai/v1/chat/completions");
    for _ in 0..5 {
        let r = call(&c, "POST", &chat, Some(&chat_body(false)), &[]).await;
        assert_eq!(r.status(), 200);
        r.bytes().await.expect("body");
    }
    let models = json_body(call(&c, "GET", &format!("{base}/v1/models"), None, &[]).await).await;
    assert_eq!(models["object"], "list");
    assert_eq!(
        models["data"][0],
        json!({"id": "mock-large", "object": "model", "created": 1_700_000_000u64, "owned_by": "mock"})
    );
    let stats_url = format!("{base}/mock/stats");
    let stats = json_body(call(&c, "GET", &stats_url, None, &[]).await).await;
    assert_eq!(stats["requests"], 6);
    assert_eq!(
        stats["by_path"],
        json!({"/openai/v1/chat/completions": 5, "/v1/models": 1})
    );
    // One client, sequential requests: a single kept-alive connection.
    assert_eq!(stats["connections"], 1);

    let r = call(&c, "POST", &format!("{base}/mock/reset"), None, &[]).await;
    assert_eq!(r.status(), 200);
    let stats = json_body(call(&c, "GET", &stats_url, None, &[]).await).await;
    assert_eq!(stats["requests"], 0);
    assert_eq!(stats["by_path"], json!({}));
}

#[tokio::test]
async fn big_body_is_counted_and_hashed() {
    let base = start_default().await;
    let filler = "a".repeat(16 * 1024 * 1024);
    let body = serde_json::to_vec(
        &json!({"model": "mock-large", "messages": [{"role": "user", "content": filler}]}),
    )
    .expect("json");
    let digest = hex(&Sha256::digest(&body));
    let r = client()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-mock-body-bytes"), body.len().to_string());
    assert_eq!(header(&r, "x-mock-body-sha256"), digest);
    let v = json_body(r).await;
    assert_eq!(v["usage"]["prompt_tokens"], 4 * 1024 * 1024);

    // The same body again, chunked (a stream body of unknown length).
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(1_000_003).map(|c| Ok(c.to_vec())).collect();
    let r = client()
        .post(format!("{base}/v1/chat/completions"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-mock-body-bytes"), body.len().to_string());
    assert_eq!(header(&r, "x-mock-body-sha256"), digest);
}

/// Raw socket: pipelined requests written in awkward pieces get in-order answers on one
/// connection.
#[tokio::test]
async fn pipelined_requests_on_one_socket() {
    let base = start_default().await;
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let body = r#"{"model":"m1","messages":[{"role":"user","content":"hi"}]}"#;
    let mut raw = Vec::new();
    for model in ["m1", "m2"] {
        let b = body.replace("m1", model);
        raw.extend_from_slice(
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )
            .as_bytes(),
        );
    }
    let (a, b) = ("{\"mod", "el\":\"e\",\"input\":\"x\"}  ");
    raw.extend_from_slice(b"POST /v1/embeddings HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    raw.extend_from_slice(
        format!(
            "{:x}\r\n{a}\r\n{:X};ext=1\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )
        .as_bytes(),
    );
    raw.extend_from_slice(b"GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n");
    for piece in raw.chunks(37) {
        sock.write_all(piece).await.expect("write");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut out))
        .await
        .expect("in time")
        .expect("read");
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 4, "{text}");
    let m1 = text.find("x-mock-model: m1").expect("m1");
    let m2 = text.find("x-mock-model: m2").expect("m2");
    let e = text.find("x-mock-model: e").expect("e");
    assert!(m1 < m2 && m2 < e, "{text}");
    assert!(text.contains("connection: close"));
}

/// HTTPS with the fixture identity: the handshake (TLS 1.3, ALPN `http/1.1`, the CA's chain
/// verified for `localhost` and for `127.0.0.1`), keep-alive requests of both kinds on one TLS
/// connection, the TLS echo headers, and a clean `close_notify` on `connection: close`.
#[tokio::test]
async fn tls_serves_https_with_keep_alive_and_streams() {
    let addr = start_tls(MockOptions {
        expect_keys: vec!["sk-good".into()],
        ..MockOptions::default()
    })
    .await;
    let connector = tls_connector("ca.pem");
    let tls = tls_connect(&connector, &addr, "localhost")
        .await
        .expect("handshake");
    let (_, session) = tls.get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(session.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    let mut s = BufReader::new(tls);
    let auth = [("authorization", "Bearer sk-good")];

    let r = chat_on(&mut s, &auth, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-mock-auth"), Some("bearer"));
    assert_eq!(r.header("x-mock-tls"), Some("TLSv1_3"));
    assert_eq!(r.header("x-mock-tls-sni"), Some("localhost"));
    assert_eq!(r.header("x-mock-tls-alpn"), Some("http/1.1"));
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["choices"][0]["message"]["content"]
        .as_str()
        .is_some_and(|t| t.starts_with("Hello from mock-large!")));

    let streamed = [
        ("authorization", "Bearer sk-good"),
        ("x-mock-tokens", "5"),
        ("x-mock-itl-ms", "5"),
    ];
    let r = chat_on(&mut s, &streamed, true).await;
    assert_eq!(r.status, 200);
    assert!(r.chunked);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = sse_data(&r.text());
    assert_eq!(events.len(), 8, "{events:?}"); // role, 5 tokens, finish, [DONE]
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));

    // A wrong key is still answered (401) on the same connection, with the TLS headers.
    let bad = [("authorization", "Bearer sk-bad")];
    let r = chat_on(&mut s, &bad, false).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-mock-tls-sni"), Some("localhost"));

    let r = exchange(&mut s, "GET", "/mock/stats", &[], b"").await;
    let stats = r.json();
    assert_eq!(stats["requests"], 3, "{stats}");
    assert_eq!(
        stats["connections"], 1,
        "one TLS connection for all: {stats}"
    );

    // `connection: close`: the answer, then close_notify (a clean end of the TLS stream, which
    // tokio-rustls reports as EOF; a bare TCP close would be an UnexpectedEof error).
    let close = [("connection", "close"), ("authorization", "Bearer sk-good")];
    let r = exchange(&mut s, "GET", "/v1/models", &close, b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("closed in time")
        .expect("a clean close_notify");
    assert!(rest.is_empty());

    // By IP address: the certificate's IP SAN matches, and no SNI is sent for an IP.
    let tls = tls_connect(&connector, &addr, "127.0.0.1")
        .await
        .expect("handshake by IP");
    let mut s = BufReader::new(tls);
    let key = [("x-api-key", "sk-good")];
    let r = exchange(&mut s, "POST", "/v1/messages", &key, &chat_bytes(false)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["type"], "message");
    assert_eq!(r.header("x-mock-tls"), Some("TLSv1_3"));
    assert_eq!(r.header("x-mock-tls-sni"), None);
}

/// What TLS must refuse: a client that does not trust the issuer, a name the certificate is
/// not for, and plain HTTP on the TLS port. The mock keeps serving good clients afterwards.
#[tokio::test]
async fn tls_refuses_untrusted_wrong_name_and_plain_http() {
    let addr = start_tls(MockOptions::default()).await;

    let e = tls_connect(&tls_connector("untrusted.pem"), &addr, "localhost")
        .await
        .expect_err("issuer not trusted");
    assert!(format!("{e}").contains("UnknownIssuer"), "{e}");

    let trusted = tls_connector("ca.pem");
    let e = tls_connect(&trusted, &addr, "example.com")
        .await
        .expect_err("not this certificate's name");
    assert!(format!("{e}").contains("not valid for name"), "{e}");

    let mut plain = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    write_request(&mut plain, "GET", "/v1/models", &[], b"")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer))
        .await
        .expect("closed in time");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{read:?}: {}",
        String::from_utf8_lossy(&answer)
    );

    let tls = tls_connect(&trusted, &addr, "localhost")
        .await
        .expect("still serving");
    let r = exchange(&mut BufReader::new(tls), "GET", "/v1/models", &[], b"").await;
    assert_eq!(r.status, 200);
}
