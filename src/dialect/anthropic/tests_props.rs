//! Property tests: decoders never panic on arbitrary input, encoders always write well-formed
//! output, and what Anthropic can express round-trips (requests, responses, streams).

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;
use crate::dialect::canonical::*;
use crate::usage::{SseEvent, SseParser, Usage};

/// Words that steer arbitrary JSON into the decoders' interesting paths.
const WORDS: &[&str] = &[
    "type",
    "text",
    "role",
    "content",
    "messages",
    "model",
    "source",
    "input",
    "index",
    "delta",
    "usage",
    "error",
    "message",
    "content_block",
    "stop_reason",
    "stop_sequence",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "partial_json",
    "id",
    "name",
    "tool_use_id",
    "signature",
    "thinking",
    "data",
    "media_type",
    "url",
    "system",
    "tools",
    "tool_choice",
    "budget_tokens",
    "metadata",
    "user_id",
    "output_format",
    "schema",
    "max_tokens",
    "stream",
    "is_error",
    "input_schema",
    "cache_control",
    "user",
    "assistant",
    "image",
    "base64",
    "tool_use",
    "tool_result",
    "redacted_thinking",
    "enabled",
    "disabled",
    "auto",
    "any",
    "tool",
    "none",
    "json_schema",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "text_delta",
    "thinking_delta",
    "signature_delta",
    "input_json_delta",
    "overloaded_error",
    "end_turn",
    "server_tool_use",
    "disable_parallel_tool_use",
    "output_config",
    "format",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(str::to_owned),
        1 => "[a-z_]{0,8}",
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        word().prop_map(Value::String),
        ".{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A request-shaped object with arbitrary parts.
fn request_like() -> impl Strategy<Value = Value> {
    (arb_json(), arb_json(), word(), arb_json()).prop_map(|(block, msg_extra, key, val)| {
        let mut body = json!({
            "model": "m",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": [block]}, msg_extra],
        });
        if let Value::Object(o) = &mut body {
            o.insert(key, val);
        }
        body
    })
}

fn stream_event_like() -> impl Strategy<Value = SseEvent> {
    (
        prop::option::of(word()),
        word(),
        0u64..4,
        arb_json(),
        arb_json(),
    )
        .prop_map(|(event, kind, index, a, b)| {
            let data = json!({
                "type": kind, "index": index, "delta": a.clone(), "content_block": b.clone(),
                "message": b, "usage": a.clone(), "error": a,
            });
            SseEvent {
                event,
                data: data.to_string(),
            }
        })
}

proptest! {
    #[test]
    fn decoders_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300), status in any::<u16>()) {
        let _ = decode_request(&bytes, &TranslateOptions::default());
        let _ = decode_response(&bytes);
        let e = decode_error(status, &bytes);
        prop_assert_eq!(e.status, status);
        let mut parser = SseParser::new();
        let mut dec = stream_decoder();
        let mut out = Vec::new();
        for ev in parser.feed(&bytes) {
            dec.on_event(&ev, &mut out);
        }
        dec.finish(&mut out);
    }

    #[test]
    fn decoders_never_panic_on_json(v in arb_json(), r in request_like()) {
        let opts = TranslateOptions { drop: vec!["type".into()] };
        for body in [&v, &r] {
            let bytes = body.to_string().into_bytes();
            if let Ok(req) = decode_request(&bytes, &opts) {
                // Whatever decodes also encodes without panicking.
                let _ = encode_request(&req, "m", &opts);
            }
            if let Ok(resp) = decode_response(&bytes) {
                let _ = encode_response(&resp);
            }
            let _ = decode_error(500, &bytes);
        }
    }

    #[test]
    fn stream_decoder_never_panics_and_stays_sequential(
        evs in prop::collection::vec(stream_event_like(), 0..24),
    ) {
        let mut dec = stream_decoder();
        let mut out = Vec::new();
        for ev in &evs {
            dec.on_event(ev, &mut out);
        }
        dec.finish(&mut out);
        // Blocks are sequential: each starts after the previous one stopped, indices count up.
        let mut open: Option<usize> = None;
        let mut next = 0;
        for ev in &out {
            match ev {
                StreamEvent::BlockStart { index, .. } => {
                    prop_assert!(open.is_none());
                    prop_assert_eq!(*index, next);
                    next += 1;
                    open = Some(*index);
                }
                StreamEvent::Delta { index, .. } => prop_assert_eq!(Some(*index), open),
                StreamEvent::BlockStop { index } => {
                    prop_assert_eq!(Some(*index), open);
                    open = None;
                }
                _ => {}
            }
        }
        prop_assert!(open.is_none());
        prop_assert!(out.iter().filter(|e| **e == StreamEvent::End).count() <= 1);
    }

    #[test]
    fn stream_encoder_always_writes_well_formed_streams(evs in prop::collection::vec(canonical_event(), 0..20)) {
        let mut enc = stream_encoder(StreamEncoderOptions::default());
        let mut out = Vec::new();
        for ev in &evs {
            enc.on_event(ev, &mut out);
        }
        enc.finish(&mut out);
        let mut parser = SseParser::new();
        let parsed = parser.feed(&out);
        let first = parsed.first().and_then(|e| e.event.clone());
        let last = parsed.last().and_then(|e| e.event.clone());
        prop_assert!(matches!(first.as_deref(), Some("message_start" | "error")));
        prop_assert!(matches!(last.as_deref(), Some("message_stop" | "error")));
        let mut open = false;
        for ev in &parsed {
            let v: Value = serde_json::from_str(&ev.data).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(v["type"].as_str(), ev.event.as_deref());
            match ev.event.as_deref() {
                Some("content_block_start") => { prop_assert!(!open); open = true; }
                Some("content_block_delta") => prop_assert!(open),
                Some("content_block_stop") => { prop_assert!(open); open = false; }
                Some("message_delta") => prop_assert!(!open),
                _ => {}
            }
        }
    }

    #[test]
    fn requests_round_trip(req in expressible_request()) {
        let opts = TranslateOptions::default();
        let body = encode_request(&req, "claude-target", &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = decode_request(&body, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, req);
    }

    #[test]
    fn responses_round_trip(resp in expressible_response()) {
        let back = decode_response(&encode_response(&resp)).map_err(TestCaseError::fail)?;
        prop_assert_eq!(back, resp);
    }

    #[test]
    fn streams_round_trip(evs in expressible_stream(), split in any::<prop::sample::Index>()) {
        let mut enc = stream_encoder(StreamEncoderOptions::default());
        let mut bytes = Vec::new();
        for ev in &evs {
            enc.on_event(ev, &mut bytes);
        }
        enc.finish(&mut bytes);
        let at = split.index(bytes.len() + 1);
        let (a, b) = bytes.split_at(at);
        let mut parser = SseParser::new();
        let mut dec = stream_decoder();
        let mut out = Vec::new();
        for piece in [a, b] {
            for ev in parser.feed(piece) {
                dec.on_event(&ev, &mut out);
            }
        }
        dec.finish(&mut out);
        prop_assert_eq!(out, evs);
    }
}

// ---- strategies for what Anthropic can express ----------------------------------------------

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 é👋\n\"\\\\]{1,12}"
}

fn cache_control() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(Just(json!({"type": "ephemeral"})))
}

fn text_part() -> impl Strategy<Value = Part> {
    (text(), cache_control()).prop_map(|(text, cache_control)| {
        Part::Text(Text {
            text,
            cache_control,
        })
    })
}

fn image_part() -> impl Strategy<Value = Part> {
    prop_oneof![
        "[a-z]{1,8}".prop_map(|h| ImageSource::Url(format!("https://{h}.example/i.png"))),
        "[A-Za-z0-9+/]{4,16}".prop_map(|data| ImageSource::Base64 {
            media_type: "image/png".into(),
            data
        }),
    ]
    .prop_map(|source| {
        Part::Image(Image {
            source,
            detail: None,
        })
    })
}

/// Arguments as Anthropic re-serialises them: compact, keys sorted.
fn arguments() -> impl Strategy<Value = String> {
    prop::collection::btree_map(
        "[a-z]{1,5}",
        prop_oneof![
            any::<i64>().prop_map(|n| json!(n)),
            text().prop_map(Value::String)
        ],
        0..4,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()).to_string())
}

fn tool_call() -> impl Strategy<Value = Part> {
    ("toolu_[a-z0-9]{1,6}", "[a-z_]{1,8}", arguments()).prop_map(|(id, name, arguments)| {
        Part::ToolCall(ToolCall {
            id,
            name,
            arguments,
        })
    })
}

fn user_part() -> impl Strategy<Value = Part> {
    prop_oneof![
        text_part(),
        image_part(),
        (
            "toolu_[a-z0-9]{1,6}",
            prop::collection::vec(prop_oneof![text_part(), image_part()], 0..3),
            any::<bool>()
        )
            .prop_map(|(call_id, content, is_error)| Part::ToolResult(ToolResult {
                call_id,
                content,
                is_error
            })),
    ]
}

fn assistant_part() -> impl Strategy<Value = Part> {
    prop_oneof![
        text_part(),
        tool_call(),
        (text(), "[A-Za-z0-9=]{1,10}").prop_map(|(text, s)| Part::Thinking {
            text,
            signature: Some(s)
        }),
        "[A-Za-z0-9=]{1,10}".prop_map(|data| Part::RedactedThinking { data }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        prop::collection::vec(user_part(), 1..4).prop_map(|content| Message {
            role: Role::User,
            content
        }),
        prop::collection::vec(assistant_part(), 1..4).prop_map(|content| Message {
            role: Role::Assistant,
            content
        }),
    ]
}

fn fraction() -> impl Strategy<Value = Option<serde_json::Number>> {
    prop::option::of((0u32..=100).prop_map(|n| {
        serde_json::Number::from_f64(f64::from(n) / 100.0).unwrap_or_else(|| 0.into())
    }))
}

fn tool_def() -> impl Strategy<Value = Tool> {
    ("[a-z_]{1,8}", prop::option::of(text())).prop_map(|(name, description)| Tool {
        parameters: json!({"type": "object", "properties": {name.clone(): {"type": "string"}}}),
        name,
        description,
        strict: None,
    })
}

fn choice() -> impl Strategy<Value = (Option<ToolChoice>, Option<bool>)> {
    prop_oneof![
        Just((None, None)),
        Just((Some(ToolChoice::None), None)),
        (
            prop_oneof![
                Just(ToolChoice::Auto),
                Just(ToolChoice::Required),
                "[a-z]{1,6}".prop_map(ToolChoice::Tool)
            ],
            prop::option::of(Just(false))
        )
            .prop_map(|(c, p)| (Some(c), p)),
    ]
}

prop_compose! {
    fn expressible_request()(
        system in prop::collection::vec(text_part(), 0..3),
        messages in prop::collection::vec(message(), 1..5),
        tools in prop::collection::vec(tool_def(), 0..3),
        (tool_choice, parallel_tool_calls) in choice(),
        max_tokens in 2048u64..100_000,
        budget in prop::option::of(prop_oneof![Just(None), (1024u64..2048).prop_map(Some)]),
        temperature in fraction(),
        top_p in fraction(),
        top_k in prop::option::of(0u64..500),
        stop in prop::collection::vec(text(), 0..3),
        stream in any::<bool>(),
        schema in prop::option::of(Just(json!({"type": "object", "properties": {"a": {"type": "string"}}}))),
        user in prop::option::of("[a-z0-9-]{1,10}"),
    ) -> ChatRequest {
        ChatRequest {
            model: "claude-target".into(),
            system,
            messages,
            tools,
            tool_choice,
            parallel_tool_calls,
            max_tokens: Some(max_tokens),
            temperature,
            top_p,
            top_k,
            stop,
            stream,
            include_usage: false,
            response_format: schema.map(|schema| ResponseFormat::JsonSchema {
                name: None, description: None, schema, strict: Some(true),
            }),
            reasoning: budget.map(|b| b.map_or(Reasoning::Disabled, Reasoning::Budget)),
            user,
            seed: None,
            presence_penalty: None,
            frequency_penalty: None,
        }
    }
}

fn stop_reason() -> impl Strategy<Value = StopReason> {
    prop_oneof![
        Just(StopReason::EndTurn),
        Just(StopReason::MaxTokens),
        Just(StopReason::StopSequence),
        Just(StopReason::ToolUse),
        Just(StopReason::Refusal),
        Just(StopReason::PauseTurn),
        "x_[a-z_]{1,8}".prop_map(StopReason::Other),
    ]
}

fn usage() -> impl Strategy<Value = Usage> {
    (0u64..100_000, 0u64..100_000, 0u64..1000, 0u64..1000).prop_map(
        |(input, output, cached_input, cache_write)| Usage {
            input,
            output,
            cached_input,
            cache_write,
            reasoning: 0,
        },
    )
}

prop_compose! {
    fn expressible_response()(
        id in "msg_[a-zA-Z0-9]{1,10}",
        model in "[a-z0-9-]{0,12}",
        content in prop::collection::vec(prop_oneof![
            ".{0,12}".prop_map(|t| Part::Text(Text::plain(t))),
            tool_call(),
            (text(), prop::option::of("[A-Za-z0-9=]{1,10}")).prop_map(|(text, signature)| Part::Thinking { text, signature }),
            "[A-Za-z0-9=]{1,10}".prop_map(|data| Part::RedactedThinking { data }),
        ], 0..5),
        stop_reason in stop_reason(),
        stop_sequence in prop::option::of(text()),
        usage in usage(),
    ) -> ChatResponse {
        ChatResponse { id, model, content, stop_reason: Some(stop_reason), stop_sequence, usage: Some(usage), created: None }
    }
}

/// One block of a well-formed stream: its start and its deltas.
fn stream_block() -> impl Strategy<Value = (BlockKind, Vec<Delta>)> {
    prop_oneof![
        prop::collection::vec(text().prop_map(Delta::Text), 0..4)
            .prop_map(|d| (BlockKind::Text, d)),
        (
            prop::collection::vec(text().prop_map(Delta::Thinking), 0..3),
            prop::option::of("[A-Za-z0-9=]{1,8}")
        )
            .prop_map(|(mut d, sig)| {
                d.extend(sig.map(Delta::Signature));
                (BlockKind::Thinking, d)
            }),
        "[A-Za-z0-9]{1,8}".prop_map(|data| (BlockKind::RedactedThinking { data }, vec![])),
        (
            "toolu_[a-z0-9]{1,6}",
            "[a-z_]{1,8}",
            prop::collection::vec(".{0,6}".prop_map(Delta::ToolArguments), 0..4)
        )
            .prop_map(|(id, name, d)| (BlockKind::ToolCall { id, name }, d)),
    ]
}

prop_compose! {
    fn expressible_stream()(
        id in "msg_[a-zA-Z0-9]{1,10}",
        model in "[a-z0-9-]{1,12}",
        start_input in 1u64..1000,
        blocks in prop::collection::vec(stream_block(), 0..5),
        reason in stop_reason(),
        stop_sequence in prop::option::of(text()),
        usage in usage(),
    ) -> Vec<StreamEvent> {
        let mut evs = vec![StreamEvent::Start {
            id,
            model,
            usage: Some(Usage { input: start_input, ..Usage::default() }),
        }];
        for (index, (kind, deltas)) in blocks.into_iter().enumerate() {
            evs.push(StreamEvent::BlockStart { index, kind });
            evs.extend(deltas.into_iter().map(|delta| StreamEvent::Delta { index, delta }));
            evs.push(StreamEvent::BlockStop { index });
        }
        evs.push(StreamEvent::Stop { reason, stop_sequence });
        // The final counts never go below the start's (the decoder keeps the larger).
        evs.push(StreamEvent::Usage(Usage { input: usage.input.max(start_input), ..usage }));
        evs.push(StreamEvent::End);
        evs
    }
}

/// Any canonical event, well-formed sequence or not.
fn canonical_event() -> impl Strategy<Value = StreamEvent> {
    prop_oneof![
        ("[a-z_]{0,6}", "[a-z]{0,4}", prop::option::of(usage()))
            .prop_map(|(id, model, usage)| StreamEvent::Start { id, model, usage }),
        (0usize..3, stream_block())
            .prop_map(|(index, (kind, _))| StreamEvent::BlockStart { index, kind }),
        (0usize..3, stream_block()).prop_flat_map(|(index, (_, deltas))| {
            let deltas = if deltas.is_empty() {
                vec![Delta::Text("x".into())]
            } else {
                deltas
            };
            prop::sample::select(deltas).prop_map(move |delta| StreamEvent::Delta { index, delta })
        }),
        (0usize..3).prop_map(|index| StreamEvent::BlockStop { index }),
        (stop_reason(), prop::option::of(text())).prop_map(|(reason, stop_sequence)| {
            StreamEvent::Stop {
                reason,
                stop_sequence,
            }
        }),
        usage().prop_map(StreamEvent::Usage),
        (any::<u16>(), ".{0,8}").prop_map(|(status, message)| StreamEvent::Error(ProviderError {
            status,
            provider_type: None,
            message,
            param: None,
        })),
        Just(StreamEvent::End),
    ]
}
