//! Property tests: round trips (request, response, stream) and no panics on any input.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::tests_stream::{decode_all, decode_split};
use super::*;
use crate::dialect::canonical::*;
use crate::usage::{SseEvent, Usage};

fn text_part(s: String) -> Part {
    Part::Text(Text::plain(s))
}

/// JSON values whose text survives parse + print unchanged (dyadic floats only).
fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-4000i64..4000).prop_map(|n| json!(n as f64 / 4.0)),
        "[a-zA-Z é\"\\\\{}]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z_]{1,5}", arb_value(), 0..4)
        .prop_map(|m| m.into_iter().collect())
}

fn arb_args() -> impl Strategy<Value = String> {
    arb_object().prop_map(|m| Value::Object(m).to_string())
}

fn arb_number() -> impl Strategy<Value = serde_json::Number> {
    prop_oneof![
        (0i64..3).prop_map(serde_json::Number::from),
        (0u32..9).prop_filter_map("finite", |n| serde_json::Number::from_f64(
            f64::from(n) / 4.0
        )),
    ]
}

fn arb_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 é🌍\"\\\\{}\n]{1,12}"
}

fn arb_image() -> impl Strategy<Value = Part> {
    (
        prop::sample::select(vec!["image/png", "image/jpeg", "image/webp"]),
        "[A-Za-z0-9+/]{1,12}",
    )
        .prop_map(|(m, d)| {
            Part::Image(Image {
                source: ImageSource::Base64 {
                    media_type: m.into(),
                    data: d,
                },
                detail: None,
            })
        })
}

/// One turn of a conversation: a user message, or an assistant message whose calls (names
/// and arguments) are all answered by the next user message.
#[derive(Clone, Debug)]
enum Turn {
    User(Vec<Part>),
    Assistant(Vec<String>, Vec<(String, String, String, bool)>),
}

fn arb_turn() -> impl Strategy<Value = Turn> {
    let user = prop::collection::vec(
        prop_oneof![arb_text().prop_map(text_part), arb_image()],
        1..4,
    )
    .prop_map(Turn::User);
    let call = (
        prop::sample::select(vec!["f", "g", "get_weather"]),
        arb_args(),
        "[a-z ]{0,10}",
        any::<bool>(),
    )
        .prop_map(|(n, a, r, e)| (n.to_owned(), a, r, e));
    let assistant = (
        prop::collection::vec(arb_text(), 0..3),
        prop::collection::vec(call, 0..4),
    )
        .prop_filter("not empty", |(t, c)| !t.is_empty() || !c.is_empty())
        .prop_map(|(t, c)| Turn::Assistant(t, c));
    prop_oneof![user, assistant]
}

fn messages(turns: Vec<Turn>) -> Vec<Message> {
    let mut out = Vec::new();
    let mut k = 0;
    for turn in turns {
        match turn {
            Turn::User(parts) => out.push(Message {
                role: Role::User,
                content: parts,
            }),
            Turn::Assistant(texts, calls) => {
                let mut content: Vec<Part> = texts.into_iter().map(text_part).collect();
                let mut results = Vec::new();
                for (name, arguments, result, is_error) in calls {
                    let id = format!("call_{k}");
                    k += 1;
                    content.push(Part::ToolCall(ToolCall {
                        id: id.clone(),
                        name,
                        arguments,
                    }));
                    results.push(Part::ToolResult(ToolResult {
                        call_id: id,
                        content: vec![text_part(result)],
                        is_error,
                    }));
                }
                out.push(Message {
                    role: Role::Assistant,
                    content,
                });
                if !results.is_empty() {
                    out.push(Message {
                        role: Role::User,
                        content: results,
                    });
                }
            }
        }
    }
    out
}

fn arb_tool() -> impl Strategy<Value = Tool> {
    (
        "[a-z_]{1,8}",
        prop::option::of("[a-zA-Z ]{0,12}"),
        arb_object(),
    )
        .prop_map(|(name, description, props)| Tool {
            name,
            description,
            parameters: json!({"type": "object", "properties": props}),
            strict: None,
        })
}

fn arb_request() -> impl Strategy<Value = ChatRequest> {
    let choice = prop::option::of(prop_oneof![
        Just(ToolChoice::Auto),
        Just(ToolChoice::None),
        Just(ToolChoice::Required),
        "[a-z]{1,5}".prop_map(ToolChoice::Tool),
    ]);
    let format = prop::option::of(prop_oneof![
        Just(ResponseFormat::JsonObject),
        arb_object().prop_map(|m| ResponseFormat::JsonSchema {
            name: None,
            description: None,
            schema: Value::Object(m),
            strict: None,
        }),
    ]);
    let reasoning = prop::option::of(prop_oneof![
        Just(Reasoning::Disabled),
        (1u64..100_000).prop_map(Reasoning::Budget),
    ]);
    let body = (
        prop::collection::vec(arb_text().prop_map(text_part), 0..3),
        prop::collection::vec(arb_turn(), 0..5),
        prop::collection::vec(arb_tool(), 0..3),
        choice,
    );
    let sampling = (
        prop::option::of(1u64..1_000_000),
        prop::option::of(arb_number()),
        prop::option::of(arb_number()),
        prop::option::of(1u64..100),
        prop::collection::vec("[a-z]{1,4}", 0..3),
        prop::option::of(any::<i64>()),
        prop::option::of(arb_number()),
        prop::option::of(arb_number()),
        format,
        reasoning,
    );
    (body, sampling).prop_map(|(b, s)| ChatRequest {
        system: b.0,
        messages: messages(b.1),
        tools: b.2,
        tool_choice: b.3,
        max_tokens: s.0,
        temperature: s.1,
        top_p: s.2,
        top_k: s.3,
        stop: s.4,
        seed: s.5,
        presence_penalty: s.6,
        frequency_penalty: s.7,
        response_format: s.8,
        reasoning: s.9,
        ..Default::default()
    })
}

fn arb_usage() -> impl Strategy<Value = Usage> {
    (0u64..1 << 40, 0u64..1 << 40, 0u64..1 << 40, 0u64..1 << 40).prop_map(
        |(input, cached_input, a, b)| Usage {
            input,
            cached_input,
            cache_write: 0,
            output: a.max(b),
            reasoning: a.min(b),
        },
    )
}

/// A stop reason Gemini can carry: `None` stands for "natural end" (EndTurn, or ToolUse
/// after calls).
fn arb_stop() -> impl Strategy<Value = Option<StopReason>> {
    prop_oneof![
        Just(None),
        Just(Some(StopReason::MaxTokens)),
        Just(Some(StopReason::ContentFilter)),
        Just(Some(StopReason::Other("MALFORMED_FUNCTION_CALL".into()))),
    ]
}

fn natural(stop: Option<StopReason>, calls: bool) -> StopReason {
    stop.unwrap_or(if calls {
        StopReason::ToolUse
    } else {
        StopReason::EndTurn
    })
}

fn arb_response() -> impl Strategy<Value = ChatResponse> {
    let part = prop_oneof![
        arb_text().prop_map(text_part),
        (arb_text(), prop::option::of("[A-Za-z0-9+/=]{1,10}"))
            .prop_map(|(text, signature)| Part::Thinking { text, signature }),
        ("[a-z0-9_]{1,8}", "[a-z_]{1,6}", arb_args()).prop_map(|(id, name, arguments)| {
            Part::ToolCall(ToolCall {
                id,
                name,
                arguments,
            })
        }),
    ];
    (
        "[a-z0-9-]{1,10}",
        "[a-z0-9.-]{0,10}",
        prop::collection::vec(part, 0..5),
        prop::option::of(arb_stop()),
        prop::option::of(arb_usage()),
    )
        .prop_map(|(id, model, content, stop, usage)| {
            let calls = content.iter().any(|p| matches!(p, Part::ToolCall(_)));
            ChatResponse {
                id,
                model,
                content,
                stop_reason: stop.map(|s| natural(s, calls)),
                stop_sequence: None,
                usage,
                created: None,
            }
        })
}

/// A block of a stream: text pieces, thinking deltas, or a call with its argument pieces.
#[derive(Clone, Debug)]
enum Block {
    Text(Vec<String>),
    Thinking(Vec<Delta>),
    Call(String, String, Vec<String>),
}

fn arb_block() -> impl Strategy<Value = Block> {
    let thinking_delta = prop_oneof![
        arb_text().prop_map(Delta::Thinking),
        "[A-Za-z0-9]{1,8}".prop_map(Delta::Signature),
    ];
    prop_oneof![
        prop::collection::vec(arb_text(), 1..4).prop_map(Block::Text),
        prop::collection::vec(thinking_delta, 1..4).prop_map(Block::Thinking),
        (
            "[a-z0-9_]{1,8}",
            "[a-z_]{1,6}",
            arb_args(),
            prop::collection::vec(any::<prop::sample::Index>(), 0..3)
        )
            .prop_map(|(id, name, args, cuts)| {
                let mut at: Vec<usize> = cuts
                    .iter()
                    .map(|c| c.index(args.len() + 1))
                    .filter(|&i| args.is_char_boundary(i))
                    .collect();
                at.sort_unstable();
                at.dedup();
                let mut pieces = Vec::new();
                let mut prev = 0;
                for i in at.into_iter().chain([args.len()]) {
                    pieces.push(args[prev..i].to_owned());
                    prev = i;
                }
                Block::Call(id, name, pieces)
            }),
    ]
}

/// Adjacent text (or thinking) blocks would come back as one: merge them first.
fn merge(blocks: Vec<Block>) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for b in blocks {
        match (out.last_mut(), b) {
            (Some(Block::Text(a)), Block::Text(b)) => a.extend(b),
            (Some(Block::Thinking(a)), Block::Thinking(b)) => a.extend(b),
            (_, b) => out.push(b),
        }
    }
    out
}

/// (events fed to the encoder, events the decoder should give back).
fn stream_events(
    blocks: &[Block],
    stop: Option<StopReason>,
    usage: Option<Usage>,
) -> (Vec<StreamEvent>, Vec<StreamEvent>) {
    let start = StreamEvent::Start {
        id: "resp-7".into(),
        model: "gemini-test".into(),
        usage: None,
    };
    let (mut input, mut want) = (vec![start.clone()], vec![start]);
    let mut calls = false;
    for (index, b) in blocks.iter().enumerate() {
        let (kind, deltas, whole) = match b {
            Block::Text(t) => (
                BlockKind::Text,
                t.iter().cloned().map(Delta::Text).collect(),
                None,
            ),
            Block::Thinking(d) => (BlockKind::Thinking, d.clone(), None),
            Block::Call(id, name, pieces) => {
                calls = true;
                let kind = BlockKind::ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                };
                let pieces: Vec<Delta> = pieces.iter().cloned().map(Delta::ToolArguments).collect();
                (kind, pieces, Some(Delta::ToolArguments(pieces_concat(b))))
            }
        };
        for out in [&mut input, &mut want] {
            out.push(StreamEvent::BlockStart {
                index,
                kind: kind.clone(),
            });
        }
        for d in &deltas {
            input.push(StreamEvent::Delta {
                index,
                delta: d.clone(),
            });
        }
        match whole {
            Some(d) => want.push(StreamEvent::Delta { index, delta: d }),
            None => want.extend(
                deltas
                    .into_iter()
                    .map(|delta| StreamEvent::Delta { index, delta }),
            ),
        }
        for out in [&mut input, &mut want] {
            out.push(StreamEvent::BlockStop { index });
        }
    }
    let mut tail = vec![StreamEvent::Stop {
        reason: natural(stop, calls),
        stop_sequence: None,
    }];
    tail.extend(usage.map(StreamEvent::Usage));
    tail.push(StreamEvent::End);
    input.extend(tail.iter().cloned());
    want.extend(tail);
    (input, want)
}

fn pieces_concat(b: &Block) -> String {
    match b {
        Block::Call(_, _, pieces) => pieces.concat(),
        _ => String::new(),
    }
}

/// Checks the canonical stream rules: one Start first, sequential blocks, one End last.
fn well_formed(events: &[StreamEvent]) -> Result<(), String> {
    let mut open: Option<usize> = None;
    let mut next = 0;
    for (n, ev) in events.iter().enumerate() {
        match ev {
            StreamEvent::Start { .. }
                if n > 0
                    && events[..n]
                        .iter()
                        .any(|e| !matches!(e, StreamEvent::Error(_))) =>
            {
                return Err(format!("late Start at {n}"))
            }
            StreamEvent::BlockStart { index, .. } => {
                if open.is_some() || *index != next {
                    return Err(format!("bad BlockStart at {n}"));
                }
                open = Some(*index);
                next += 1;
            }
            StreamEvent::Delta { index, .. } if open != Some(*index) => {
                return Err(format!("Delta outside its block at {n}"))
            }
            StreamEvent::BlockStop { index } => {
                if open != Some(*index) {
                    return Err(format!("bad BlockStop at {n}"));
                }
                open = None;
            }
            StreamEvent::End if n + 1 != events.len() => return Err("End not last".into()),
            _ => {}
        }
    }
    if open.is_some() {
        return Err("block left open".into());
    }
    Ok(())
}

const KEYS: &[&str] = &[
    "candidates",
    "content",
    "parts",
    "text",
    "thought",
    "thoughtSignature",
    "functionCall",
    "name",
    "args",
    "id",
    "finishReason",
    "usageMetadata",
    "promptTokenCount",
    "candidatesTokenCount",
    "cachedContentTokenCount",
    "thoughtsTokenCount",
    "toolUsePromptTokenCount",
    "responseId",
    "modelVersion",
    "promptFeedback",
    "blockReason",
    "error",
    "code",
    "message",
    "status",
    "details",
    "fieldViolations",
    "field",
    "contents",
    "role",
    "systemInstruction",
    "tools",
    "functionDeclarations",
    "parametersJsonSchema",
    "parameters",
    "toolConfig",
    "functionCallingConfig",
    "mode",
    "allowedFunctionNames",
    "generationConfig",
    "maxOutputTokens",
    "temperature",
    "topK",
    "thinkingConfig",
    "thinkingBudget",
    "thinkingLevel",
    "responseMimeType",
    "responseJsonSchema",
    "inlineData",
    "mimeType",
    "data",
    "fileData",
    "fileUri",
    "functionResponse",
    "response",
    "output",
    "type",
    "stopSequences",
    "seed",
    "candidateCount",
    "responseSchema",
];

const STRINGS: &[&str] = &[
    "STOP",
    "MAX_TOKENS",
    "SAFETY",
    "OTHER",
    "user",
    "model",
    "function",
    "AUTO",
    "ANY",
    "NONE",
    "application/json",
    "text/plain",
    "image/png",
    "https://x/y.png",
    "OBJECT",
    "high",
    "",
    "x",
];

/// JSON shaped like Gemini bodies, to reach deep into the decoders.
fn arb_gemini_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(STRINGS).prop_map(Value::from),
        ".{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

/// Realistic stream chunks: parts of every kind, finish reasons, usage, errors, junk.
fn arb_chunk() -> impl Strategy<Value = Value> {
    let part = prop_oneof![
        arb_text().prop_map(|t| json!({"text": t})),
        Just(json!({"text": ""})),
        (arb_text(), prop::option::of("[a-z]{1,4}"))
            .prop_map(|(t, s)| json!({"text": t, "thought": true, "thoughtSignature": s})),
        Just(json!({"text": "", "thought": true, "thoughtSignature": "s"})),
        (prop::option::of("[a-z]{1,3}"), arb_value())
            .prop_map(|(id, a)| json!({"functionCall": {"name": "f", "id": id, "args": a}})),
        arb_gemini_json(),
    ];
    let chunk = (
        prop::collection::vec(part, 0..4),
        prop::option::of(prop::sample::select(vec![
            "STOP",
            "MAX_TOKENS",
            "SAFETY",
            "",
            "X",
        ])),
        prop::option::of((0u64..50, 0u64..50)),
    )
        .prop_map(|(parts, finish, usage)| {
            let mut c = json!({"content": {"role": "model", "parts": parts}});
            if let Some(f) = finish {
                c["finishReason"] = json!(f);
            }
            let mut v = json!({"candidates": [c], "responseId": "r"});
            if let Some((p, o)) = usage {
                v["usageMetadata"] = json!({"promptTokenCount": p, "candidatesTokenCount": o});
            }
            v
        });
    prop_oneof![
        8 => chunk,
        1 => Just(json!({"error": {"code": 500, "message": "m", "status": "INTERNAL"}})),
        1 => Just(json!({"promptFeedback": {"blockReason": "SAFETY"}})),
        1 => arb_gemini_json(),
    ]
}

proptest! {
    #[test]
    fn request_round_trips(req in arb_request()) {
        let opts = TranslateOptions::default();
        let body = encode_request(&req, "gemini-2.5-flash", &opts).unwrap();
        let back = decode_request(&body, &opts).unwrap();
        prop_assert_eq!(back, req);
    }

    #[test]
    fn response_round_trips(resp in arb_response()) {
        let back = decode_response(&encode_response(&resp)).unwrap();
        prop_assert_eq!(back, resp);
    }

    #[test]
    fn stream_round_trips(
        blocks in prop::collection::vec(arb_block(), 0..6),
        stop in arb_stop(),
        usage in prop::option::of(arb_usage()),
        split in any::<prop::sample::Index>(),
    ) {
        let (input, want) = stream_events(&merge(blocks), stop, usage);
        let mut enc = stream_encoder(StreamEncoderOptions::default());
        let mut bytes = Vec::new();
        for ev in &input {
            enc.on_event(ev, &mut bytes);
        }
        enc.finish(&mut bytes);
        prop_assert_eq!(&decode_all(&bytes), &want);
        prop_assert_eq!(&decode_split(&bytes, split.index(bytes.len() + 1)), &want);
    }

    #[test]
    fn error_round_trips(status in 400u16..600, message in ".{0,20}", param in prop::option::of("[a-z.\\[\\]0-9]{1,10}")) {
        let err = ProviderError {
            status,
            provider_type: Some(super::wire::status_name(status).to_owned()),
            message,
            param,
        };
        prop_assert_eq!(decode_error(status, &encode_error(&err)), err);
    }

    #[test]
    fn decoders_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200), status in any::<u16>()) {
        let opts = TranslateOptions::default();
        let _ = decode_request(&bytes, &opts);
        let _ = decode_response(&bytes);
        let _ = decode_error(status, &bytes);
        let events = decode_all(&bytes);
        prop_assert!(well_formed(&events).is_ok(), "{:?}", events);
    }

    #[test]
    fn decoders_never_panic_on_gemini_shaped_json(v in arb_gemini_json(), status in any::<u16>()) {
        let body = v.to_string();
        let _ = decode_request(body.as_bytes(), &TranslateOptions::default());
        let lenient = TranslateOptions { drop: KEYS.iter().map(|k| (*k).to_owned()).collect() };
        let _ = decode_request(body.as_bytes(), &lenient);
        let _ = decode_response(body.as_bytes());
        let _ = decode_error(status, body.as_bytes());
        let mut dec = stream_decoder();
        let mut out = Vec::new();
        for data in [body.clone(), body.clone(), "[1,".to_owned(), body] {
            dec.on_event(&SseEvent { event: None, data }, &mut out);
        }
        dec.finish(&mut out);
        prop_assert!(well_formed(&out).is_ok(), "{:?}", out);
    }

    #[test]
    fn stream_decoder_keeps_blocks_sequential(chunks in prop::collection::vec(arb_chunk(), 0..8)) {
        let mut dec = stream_decoder();
        let mut out = Vec::new();
        for v in chunks {
            dec.on_event(&SseEvent { event: Some("message".into()), data: v.to_string() }, &mut out);
        }
        dec.finish(&mut out);
        prop_assert!(well_formed(&out).is_ok(), "{:?}", out);
    }

    #[test]
    fn encoders_never_panic(req in arb_request(), bad_args in ".{0,8}", url in any::<bool>()) {
        // Unexpressible bits: bad arguments, URL images, a dangling result, parallel off.
        let mut req = req;
        req.parallel_tool_calls = Some(false);
        req.messages.push(Message { role: Role::Assistant, content: vec![Part::ToolCall(ToolCall {
            id: "x".into(), name: "f".into(), arguments: bad_args })] });
        if url {
            req.messages.push(Message { role: Role::User, content: vec![Part::Image(Image {
                source: ImageSource::Url("https://x".into()), detail: None })] });
        }
        let _ = encode_request(&req, "m", &TranslateOptions::default());
        let _ = encode_request(&req, "m", &TranslateOptions { drop: vec!["messages".into(), "parallel_tool_calls".into()] });
    }
}
