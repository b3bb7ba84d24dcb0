//! Property tests: no decoder panics on arbitrary input (bytes, JSON, stream events), stream
//! decoder output keeps blocks sequential, encoders never panic and write well-formed SSE, and
//! round trips (decode(encode(x)) == x) for requests, responses and streams OpenAI can express.

use super::stream_tests::{blocks, decode_pieces};
use super::*;
use crate::dialect::canonical::*;
use crate::usage::{SseEvent, Usage};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::string::string_regex;
use serde_json::{json, Value};

const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "image_url",
    "url",
    "detail",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "id",
    "index",
    "tool_call_id",
    "choices",
    "delta",
    "message",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "cached_tokens",
    "error",
    "code",
    "param",
    "reasoning_content",
    "reasoning",
    "refusal",
    "stream",
    "stream_options",
    "include_usage",
    "tools",
    "parameters",
    "tool_choice",
    "response_format",
    "json_schema",
    "schema",
    "stop",
    "n",
    "max_tokens",
    "temperature",
    "reasoning_effort",
    "cache_control",
    "x_groq",
    "detail",
];

const WORDS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "text",
    "image_url",
    "refusal",
    "json_schema",
    "json_object",
    "auto",
    "required",
    "none",
    "stop",
    "tool_calls",
    "length",
    "[DONE]",
    "data:image/png;base64,AA",
    "data:,x",
    "high",
    "",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        proptest::sample::select(WORDS).prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 80, 6, |inner| {
        let key = prop_oneof![
            proptest::sample::select(KEYS).prop_map(str::to_owned),
            "[a-z_]{1,6}",
        ];
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map(key, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON value shaped like a request, with arbitrary pieces.
fn arb_requestish() -> impl Strategy<Value = Value> {
    let word = || proptest::sample::select(WORDS);
    let part = (word(), ".{0,6}", word(), arb_json()).prop_map(|(ty, text, url, extra)| {
        let mut p = json!({"type": ty, "text": text, "image_url": {"url": url}, "refusal": "r"});
        if let (Value::Object(o), Value::Object(e)) = (&mut p, extra) {
            o.extend(e);
        }
        p
    });
    let content = prop_oneof![
        ".{0,6}".prop_map(Value::from),
        vec(part, 0..3).prop_map(Value::Array),
        arb_json(),
    ];
    let call = (".{0,4}", ".{0,6}", arb_json()).prop_map(|(id, args, extra)| {
        json!({"id": id, "type": "function", "function": {"name": "f", "arguments": args},
            "extra": extra})
    });
    const ROLES: &[&str] = &[
        "user",
        "assistant",
        "system",
        "developer",
        "tool",
        "function",
        "x",
    ];
    let role = proptest::sample::select(ROLES);
    let message = (
        role,
        content,
        vec(call, 0..2),
        prop_oneof![Just(Value::Null), arb_json()],
    )
        .prop_map(|(role, content, calls, extra)| {
            let mut m = json!({"role": role, "content": content, "tool_call_id": "x"});
            if role == "assistant" {
                m["tool_calls"] = Value::Array(calls);
            }
            if let (Value::Object(o), Value::Object(e)) = (&mut m, extra) {
                o.extend(e);
            }
            m
        });
    (
        vec(message, 0..5),
        prop_oneof![Just(Value::Null), arb_json()],
    )
        .prop_map(|(messages, extra)| {
            let mut v = json!({"model": "m", "messages": messages});
            if let (Value::Object(o), Value::Object(e)) = (&mut v, extra) {
                o.extend(e);
            }
            v
        })
}

/// A JSON value shaped like a stream chunk, with arbitrary pieces.
fn arb_chunkish() -> impl Strategy<Value = Value> {
    let piece = (0u64..4, arb_json(), arb_json()).prop_map(
        |(i, id, args)| json!({"index": i, "id": id, "function": {"name": "f", "arguments": args}}),
    );
    (arb_json(), vec(piece, 0..3), arb_json(), arb_json()).prop_map(|(content, calls, fr, u)| {
        json!({"id": "c", "choices": [{"index": 0, "delta": {"content": content,
            "reasoning_content": u.clone(), "tool_calls": calls}, "finish_reason": fr}],
            "usage": u})
    })
}

/// Asserts the canonical stream invariants: Start first (if any), blocks sequential with
/// indices from 0, deltas only for the open block, at most one End and nothing after it.
fn assert_well_formed(events: &[StreamEvent]) {
    let mut open: Option<usize> = None;
    let mut next = 0;
    let mut ended = false;
    for (k, e) in events.iter().enumerate() {
        assert!(!ended, "event after End: {events:?}");
        match e {
            StreamEvent::Start { .. } => assert_eq!(k, 0, "{events:?}"),
            StreamEvent::BlockStart { index, .. } => {
                assert!(open.is_none(), "{events:?}");
                assert_eq!(*index, next, "{events:?}");
                open = Some(*index);
                next += 1;
            }
            StreamEvent::Delta { index, .. } => assert_eq!(open, Some(*index), "{events:?}"),
            StreamEvent::BlockStop { index } => {
                assert_eq!(open, Some(*index), "{events:?}");
                open = None;
            }
            StreamEvent::End => {
                assert!(open.is_none(), "{events:?}");
                ended = true;
            }
            _ => {}
        }
    }
    assert!(open.is_none(), "block left open after finish: {events:?}");
}

fn arb_event() -> impl Strategy<Value = StreamEvent> {
    let s = ".{0,6}";
    prop_oneof![
        (s, s).prop_map(|(id, model)| StreamEvent::Start {
            id,
            model,
            usage: None
        }),
        (0usize..4, s, s).prop_map(|(index, id, name)| StreamEvent::BlockStart {
            index,
            kind: BlockKind::ToolCall { id, name }
        }),
        (0usize..4).prop_map(|index| StreamEvent::BlockStart {
            index,
            kind: BlockKind::Text
        }),
        (0usize..4, s).prop_map(|(index, t)| StreamEvent::Delta {
            index,
            delta: Delta::Text(t)
        }),
        (0usize..4, s).prop_map(|(index, t)| StreamEvent::Delta {
            index,
            delta: Delta::ToolArguments(t)
        }),
        (0usize..4, s).prop_map(|(index, t)| StreamEvent::Delta {
            index,
            delta: Delta::Thinking(t)
        }),
        (0usize..4).prop_map(|index| StreamEvent::BlockStop { index }),
        s.prop_map(|r| StreamEvent::Stop {
            reason: StopReason::Other(r),
            stop_sequence: None
        }),
        any::<u32>().prop_map(|n| StreamEvent::Usage(Usage {
            input: n.into(),
            ..Default::default()
        })),
        s.prop_map(|m| StreamEvent::Error(ProviderError {
            status: 500,
            provider_type: None,
            message: m,
            param: None
        })),
        Just(StreamEvent::End),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoders_never_panic_on_bytes(bytes in vec(any::<u8>(), 0..200), status in any::<u16>()) {
        let _ = decode_request(&bytes, &TranslateOptions::default());
        let _ = decode_response(&bytes);
        let e = decode_error(status, &bytes);
        prop_assert_eq!(e.status, status);
        let _ = decode_pieces(&[&bytes]);
    }

    #[test]
    fn decoders_never_panic_on_json(v in arb_json(), r in arb_requestish(), status in any::<u16>()) {
        let lenient = TranslateOptions { drop: vec!["messages".into(), "tools".into()] };
        for body in [v.to_string(), r.to_string()] {
            let _ = decode_request(body.as_bytes(), &TranslateOptions::default());
            if let Ok(req) = decode_request(body.as_bytes(), &lenient) {
                // Whatever decodes must encode (or be refused) without panicking.
                let _ = encode_request(&req, "m", &lenient);
            }
            if let Ok(resp) = decode_response(body.as_bytes()) {
                let _ = encode_response(&resp);
            }
            let e = decode_error(status, body.as_bytes());
            let _ = encode_error(&e);
        }
    }

    #[test]
    fn stream_decoder_never_panics_and_stays_sequential(
        chunks in vec(prop_oneof![
            arb_chunkish().prop_map(|v| v.to_string()),
            arb_json().prop_map(|v| v.to_string()),
            ".{0,20}",
            Just("[DONE]".to_owned()),
        ], 0..12)
    ) {
        let mut dec = stream_decoder();
        let mut out = Vec::new();
        for data in &chunks {
            dec.on_event(&SseEvent { event: None, data: data.clone() }, &mut out);
        }
        dec.finish(&mut out);
        dec.finish(&mut out);
        assert_well_formed(&out);
    }

    #[test]
    fn stream_encoder_never_panics_and_frames_well(
        events in vec(arb_event(), 0..16), include_usage in any::<bool>()
    ) {
        let mut enc = stream_encoder(StreamEncoderOptions { include_usage, model: "m".into(), ..Default::default() });
        let mut out = Vec::new();
        for e in &events {
            enc.on_event(e, &mut out);
        }
        enc.finish(&mut out);
        let s = String::from_utf8(out).unwrap();
        prop_assert!(s.ends_with("data: [DONE]\n\n"));
        let datas: Vec<&str> = s.split_terminator("\n\n").collect();
        for (k, d) in datas.iter().enumerate() {
            let d = d.strip_prefix("data: ").unwrap();
            if k + 1 == datas.len() {
                prop_assert_eq!(d, "[DONE]");
            } else {
                prop_assert!(serde_json::from_str::<Value>(d).is_ok());
            }
        }
    }
}

// ---------------- round trips ----------------

fn txt() -> impl Strategy<Value = String> {
    string_regex("[a-zA-Z0-9 é\"{}:\n]{0,10}").unwrap()
}

fn nonempty() -> impl Strategy<Value = String> {
    string_regex("[a-zA-Z0-9 é\"{}:\n]{1,10}").unwrap()
}

fn ident() -> impl Strategy<Value = String> {
    string_regex("[a-zA-Z0-9_]{1,8}").unwrap()
}

fn maybe<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    proptest::option::of(s).boxed()
}

fn small_number() -> impl Strategy<Value = serde_json::Number> {
    prop_oneof![
        (0u64..10).prop_map(serde_json::Number::from),
        (-200i32..200).prop_map(|n| serde_json::Number::from_f64(f64::from(n) / 100.0).unwrap()),
    ]
}

fn arb_image() -> impl Strategy<Value = Part> {
    let source = prop_oneof![
        ident().prop_map(|p| ImageSource::Url(format!("https://img.example/{p}.png"))),
        (
            proptest::sample::select(&["image/png", "image/jpeg"][..]),
            string_regex("[A-Za-z0-9+/]{0,12}=?").unwrap()
        )
            .prop_map(|(m, data)| ImageSource::Base64 {
                media_type: m.into(),
                data
            }),
    ];
    let detail =
        maybe(proptest::sample::select(&["low", "high", "auto"][..]).prop_map(str::to_owned));
    (source, detail).prop_map(|(source, detail)| Part::Image(Image { source, detail }))
}

fn arb_call() -> impl Strategy<Value = ToolCall> {
    (ident(), ident(), txt()).prop_map(|(id, name, arguments)| ToolCall {
        id,
        name,
        arguments,
    })
}

#[derive(Clone, Debug)]
enum Turn {
    User(Vec<Part>),
    Assistant(Option<String>, Vec<ToolCall>),
    Results(Vec<Part>),
}

fn arb_turn() -> impl Strategy<Value = Turn> {
    let user_part = prop_oneof![txt().prop_map(|t| Part::Text(Text::plain(t))), arb_image()];
    let result = (ident(), maybe(nonempty())).prop_map(|(call_id, t)| {
        Part::ToolResult(ToolResult {
            call_id,
            content: t.map(|t| Part::Text(Text::plain(t))).into_iter().collect(),
            is_error: false,
        })
    });
    prop_oneof![
        vec(user_part, 1..4).prop_map(Turn::User),
        (maybe(nonempty()), vec(arb_call(), 0..3)).prop_map(|(t, c)| Turn::Assistant(t, c)),
        vec(result, 1..3).prop_map(Turn::Results),
    ]
}

/// Canonical messages from turns, with consecutive tool-result turns merged (as OpenAI's
/// consecutive tool messages decode).
fn messages(turns: Vec<Turn>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    let mut last_results = false;
    for t in turns {
        match t {
            Turn::User(parts) => {
                out.push(Message {
                    role: Role::User,
                    content: parts,
                });
                last_results = false;
            }
            Turn::Assistant(text, calls) => {
                let mut content: Vec<Part> = text
                    .map(|t| Part::Text(Text::plain(t)))
                    .into_iter()
                    .collect();
                content.extend(calls.into_iter().map(Part::ToolCall));
                out.push(Message {
                    role: Role::Assistant,
                    content,
                });
                last_results = false;
            }
            Turn::Results(parts) => {
                match out.last_mut() {
                    Some(m) if last_results => m.content.extend(parts),
                    _ => out.push(Message {
                        role: Role::User,
                        content: parts,
                    }),
                }
                last_results = true;
            }
        }
    }
    out
}

fn arb_tool() -> impl Strategy<Value = Tool> {
    (
        ident(),
        maybe(txt()),
        vec(ident(), 0..3),
        maybe(any::<bool>()),
    )
        .prop_map(|(name, description, props, strict)| {
            let properties: serde_json::Map<String, Value> = props
                .into_iter()
                .map(|p| (p, json!({"type": "string"})))
                .collect();
            Tool {
                name,
                description,
                parameters: json!({"type": "object", "properties": properties}),
                strict,
            }
        })
}

fn arb_request() -> impl Strategy<Value = ChatRequest> {
    let head = (
        vec(txt().prop_map(|t| Part::Text(Text::plain(t))), 0..3),
        vec(arb_turn(), 0..6),
        vec(arb_tool(), 0..3),
        maybe(prop_oneof![
            Just(ToolChoice::Auto),
            Just(ToolChoice::None),
            Just(ToolChoice::Required),
            ident().prop_map(ToolChoice::Tool),
        ]),
        maybe(any::<bool>()),
        maybe(any::<u64>()),
        maybe(small_number()),
        maybe(small_number()),
    );
    let tail = (
        vec(txt(), 0..3),
        any::<bool>(),
        maybe(prop_oneof![
            Just(ResponseFormat::Text),
            Just(ResponseFormat::JsonObject),
            (ident(), maybe(txt()), maybe(any::<bool>())).prop_map(|(n, description, strict)| {
                ResponseFormat::JsonSchema {
                    name: Some(n),
                    description,
                    schema: json!({"type": "object"}),
                    strict,
                }
            }),
        ]),
        maybe(proptest::sample::select(
            &[Effort::Minimal, Effort::Low, Effort::Medium, Effort::High][..],
        )),
        maybe(txt()),
        maybe(any::<i64>()),
        maybe(small_number()),
        maybe(small_number()),
    );
    (head, tail).prop_map(
        |(
            (system, turns, tools, tool_choice, parallel, max_tokens, temperature, top_p),
            (stop, stream, response_format, effort, user, seed, presence, frequency),
        )| {
            ChatRequest {
                model: "target-model".into(),
                system,
                messages: messages(turns),
                parallel_tool_calls: parallel.filter(|_| !tools.is_empty()),
                tools,
                tool_choice,
                max_tokens,
                temperature,
                top_p,
                top_k: None,
                stop,
                stream,
                include_usage: stream,
                response_format,
                reasoning: effort.map(Reasoning::Effort),
                user,
                seed,
                presence_penalty: presence,
                frequency_penalty: frequency,
            }
        },
    )
}

fn arb_response() -> impl Strategy<Value = ChatResponse> {
    let usage = (0u64..1 << 40, 0u64..1 << 40, 0u64..1 << 40, 0u64..1 << 40).prop_map(
        |(input, cached_input, output, reasoning)| Usage {
            input,
            output,
            cached_input,
            cache_write: 0,
            reasoning,
        },
    );
    let stop = prop_oneof![
        Just(StopReason::EndTurn),
        Just(StopReason::MaxTokens),
        Just(StopReason::ToolUse),
        Just(StopReason::ContentFilter),
        string_regex("x[a-z_]{1,5}")
            .unwrap()
            .prop_map(StopReason::Other),
    ];
    (
        ident(),
        ident(),
        maybe(nonempty()),
        maybe(nonempty()),
        vec(arb_call(), 0..3),
        maybe(stop),
        maybe(usage),
        maybe(0u64..1 << 40),
    )
        .prop_map(
            |(id, model, thinking, text, calls, stop_reason, usage, created)| {
                let mut content = Vec::new();
                if let Some(t) = thinking {
                    content.push(Part::Thinking {
                        text: t,
                        signature: None,
                    });
                }
                if let Some(t) = text {
                    content.push(Part::Text(Text::plain(t)));
                }
                content.extend(calls.into_iter().map(Part::ToolCall));
                ChatResponse {
                    id: format!("chatcmpl-{id}"),
                    model,
                    content,
                    stop_reason,
                    stop_sequence: None,
                    usage,
                    created: Some(created.unwrap_or(1)),
                }
            },
        )
}

#[derive(Clone, Debug)]
enum GenBlock {
    Text(Vec<String>),
    Thinking(Vec<String>),
    Tool(String, String, Vec<String>),
}

fn arb_blocks() -> impl Strategy<Value = Vec<GenBlock>> {
    let pieces = || vec(nonempty(), 1..4);
    vec(
        prop_oneof![
            pieces().prop_map(GenBlock::Text),
            pieces().prop_map(GenBlock::Thinking),
            (ident(), ident(), vec(nonempty(), 0..4)).prop_map(|(i, n, p)| GenBlock::Tool(i, n, p)),
        ],
        0..6,
    )
    // Two text (or two thinking) blocks in a row are one block in OpenAI's format.
    .prop_filter("adjacent text blocks merge", |bs| {
        bs.windows(2).all(|w| {
            !matches!(
                w,
                [GenBlock::Text(_), GenBlock::Text(_)]
                    | [GenBlock::Thinking(_), GenBlock::Thinking(_)]
            )
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn requests_round_trip(req in arb_request()) {
        let opts = TranslateOptions::default();
        let body = encode_request(&req, "target-model", &opts).unwrap();
        prop_assert_eq!(decode_request(&body, &opts).unwrap(), req);
    }

    #[test]
    fn responses_round_trip(resp in arb_response()) {
        prop_assert_eq!(decode_response(&encode_response(&resp)).unwrap(), resp);
    }

    #[test]
    fn streams_round_trip(
        id in ident(), model in ident(), bs in arb_blocks(),
        reason in prop_oneof![Just(StopReason::EndTurn), Just(StopReason::ToolUse), Just(StopReason::MaxTokens)],
        usage in proptest::option::of((0u64..1000, 0u64..1000).prop_map(|(i, o)| Usage { input: i, output: o, ..Default::default() })),
    ) {
        let mut events = vec![StreamEvent::Start { id: format!("chatcmpl-{id}"), model: model.clone(), usage: None }];
        let mut want = Vec::new();
        for (index, b) in bs.iter().enumerate() {
            let (kind, deltas): (BlockKind, Vec<Delta>) = match b {
                GenBlock::Text(p) => (BlockKind::Text, p.iter().cloned().map(Delta::Text).collect()),
                GenBlock::Thinking(p) => (BlockKind::Thinking, p.iter().cloned().map(Delta::Thinking).collect()),
                GenBlock::Tool(i, n, p) => (
                    BlockKind::ToolCall { id: i.clone(), name: n.clone() },
                    p.iter().cloned().map(Delta::ToolArguments).collect(),
                ),
            };
            let concat: String = match b {
                GenBlock::Text(p) | GenBlock::Thinking(p) | GenBlock::Tool(_, _, p) => p.concat(),
            };
            want.push((kind.clone(), concat));
            events.push(StreamEvent::BlockStart { index, kind });
            events.extend(deltas.into_iter().map(|delta| StreamEvent::Delta { index, delta }));
            events.push(StreamEvent::BlockStop { index });
        }
        events.push(StreamEvent::Stop { reason: reason.clone(), stop_sequence: None });
        if let Some(u) = usage {
            events.push(StreamEvent::Usage(u));
        }
        events.push(StreamEvent::End);

        let mut enc = stream_encoder(StreamEncoderOptions { include_usage: true, model: "x".into(), ..Default::default() });
        let mut bytes = Vec::new();
        for e in &events {
            enc.on_event(e, &mut bytes);
        }
        // Split the client's bytes at an arbitrary point too.
        let cut = bytes.len() / 2;
        let back = decode_pieces(&[&bytes[..cut], &bytes[cut..]]);
        assert_well_formed(&back);
        prop_assert_eq!(back.first(), events.first());
        prop_assert_eq!(blocks(&back), want);
        let stops: Vec<_> = back.iter().filter(|e| matches!(e, StreamEvent::Stop { .. })).cloned().collect();
        prop_assert_eq!(stops, vec![StreamEvent::Stop { reason, stop_sequence: None }]);
        let usages: Vec<_> = back.iter().filter_map(|e| match e { StreamEvent::Usage(u) => Some(*u), _ => None }).collect();
        prop_assert_eq!(usages, usage.into_iter().collect::<Vec<_>>());
        prop_assert_eq!(back.last(), Some(&StreamEvent::End));
    }
}
