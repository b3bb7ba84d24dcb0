//! OpenAI dialect: Chat Completions (plain, streamed, tool calls), embeddings, the model list,
//! and OpenAI-shaped errors.

use serde_json::{json, Value};

use super::text::{self, push_json_str, Steps};
use super::{apply_limit, pick_calls, Ctx, EventGen, FixedEvents, Reply, ToolCall};

/// `{"error":{"message","type","param","code"}}` with the type (and a default code) that
/// OpenAI uses for `status`.
pub(crate) fn error_json(status: u16, message: &str, code: Option<&str>) -> Value {
    let (kind, default_code) = match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("permission_error", None),
        404 => ("invalid_request_error", None),
        429 => ("rate_limit_error", Some("rate_limit_exceeded")),
        _ if status < 500 => ("invalid_request_error", None),
        _ => ("server_error", None),
    };
    json!({"error": {
        "message": message,
        "type": kind,
        "param": null,
        "code": code.or(default_code),
    }})
}

/// Models advertised by `GET …/models`.
const MODELS: &[&str] = &["mock-large", "mock-small", "mock-embedding"];

fn model_json(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_700_000_000u64, "owned_by": "mock"})
}

pub(crate) fn models() -> Reply {
    let data: Vec<Value> = MODELS.iter().map(|m| model_json(m)).collect();
    Reply::json(200, &json!({"object": "list", "data": data}))
}

/// `GET …/models/{id}`: any id exists.
pub(crate) fn model(id: &str) -> Reply {
    Reply::json(200, &model_json(id))
}

/// A 200 response whose body is not valid JSON (or SSE whose data is not valid JSON).
pub(crate) fn malformed(stream: bool) -> Reply {
    if stream {
        let events = vec![
            b"data: {\"id\": \"chatcmpl-mock\", \"object\": \"chat.completion.chunk\", \"choices\": [{\"delta\": \n\n"
                .to_vec(),
            b"data: [DONE]\n\n".to_vec(),
        ];
        return Reply::stream("text/event-stream", Box::new(FixedEvents::new(events)));
    }
    Reply::full(
        200,
        "application/json",
        b"{\"id\": \"chatcmpl-mock\", \"choices\": [".to_vec(),
    )
}

/// What the assistant answers to a chat request.
struct Plan {
    id: String,
    /// Text tokens (0 when calling tools).
    content_tokens: usize,
    calls: Vec<ToolCall>,
    finish: &'static str,
    usage: Value,
}

fn plan(ctx: &Ctx, body: &Value) -> Plan {
    let calls = tool_calls(ctx, body);
    let limit = body
        .get("max_completion_tokens")
        .and_then(Value::as_u64)
        .or_else(|| body.get("max_tokens").and_then(Value::as_u64));
    let (content_tokens, limited) = if calls.is_empty() {
        apply_limit(ctx, limit)
    } else {
        (0, false)
    };
    let finish = if !calls.is_empty() {
        "tool_calls"
    } else if limited {
        "length"
    } else {
        "stop"
    };
    let visible: u64 = if calls.is_empty() {
        content_tokens as u64
    } else {
        calls.iter().map(|c| c.pieces().len() as u64).sum()
    };
    let prompt = text::prompt_tokens(body, &["messages"]) + ctx.cached;
    let completion = visible + ctx.reasoning;
    let usage = json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": ctx.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": ctx.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    });
    Plan {
        id: format!("chatcmpl-mock-{}", ctx.n),
        content_tokens,
        calls,
        finish,
        usage,
    }
}

/// The tools to call: none if there are no function tools, `tool_choice` is `"none"`, or the
/// last message is a tool result; else the first (two, in parallel mode) or the named one.
fn tool_calls(ctx: &Ctx, body: &Value) -> Vec<ToolCall> {
    let Some(tools) = body.get("tools").and_then(Value::as_array) else {
        return Vec::new();
    };
    let last_role = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str);
    if matches!(last_role, Some("tool" | "function")) {
        return Vec::new();
    }
    let choice = body.get("tool_choice");
    if choice.and_then(Value::as_str) == Some("none") {
        return Vec::new();
    }
    let forced = choice
        .and_then(|c| c.get("function"))
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str);
    let candidates = tools
        .iter()
        .filter_map(|t| t.get("function"))
        .filter_map(|f| Some((f.get("name")?.as_str()?.to_string(), f.get("parameters"))))
        .filter(|(name, _)| forced.is_none_or(|f| f == name))
        .collect();
    pick_calls(ctx, candidates, "call_mock_")
}

/// `POST …/chat/completions`.
pub(crate) fn chat(ctx: &Ctx, body: &Value) -> Reply {
    let plan = plan(ctx, body);
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        return Reply::stream(
            "text/event-stream",
            Box::new(ChatStream::new(ctx, plan, include_usage)),
        );
    }
    let mut message = json!({
        "role": "assistant",
        "content": if let Some(verdict) = super::judge::reply(&ctx.model, body) { json!(verdict) } else if plan.calls.is_empty() { json!(text::text(&ctx.model, plan.content_tokens)) } else { Value::Null },
        "refusal": null,
        "annotations": [],
    });
    if !plan.calls.is_empty() {
        let calls: Vec<Value> = plan
            .calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.args}}))
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    Reply::json(
        200,
        &json!({
            "id": plan.id,
            "object": "chat.completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": plan.finish}],
            "usage": plan.usage,
            "service_tier": "default",
            "system_fingerprint": "mock",
        }),
    )
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Role,
    Token,
    /// First chunk of tool call `k`: id, type, name.
    ToolHead(usize),
    /// One piece of tool call `k`'s arguments.
    ToolArgs(usize),
    Finish,
    Usage,
    Done,
}

/// Streams a chat completion as `chat.completion.chunk` events.
struct ChatStream {
    /// `{"id":…,"object":"chat.completion.chunk",…,"choices":[` — shared by every chunk.
    prefix: Vec<u8>,
    /// `,"usage":null}` when usage was asked for, else `}`.
    suffix: &'static [u8],
    model: String,
    calls: Vec<ToolCall>,
    arg_pieces: Vec<Vec<String>>,
    finish: &'static str,
    usage: Value,
    steps: Steps<Step>,
}

impl ChatStream {
    fn new(ctx: &Ctx, plan: Plan, include_usage: bool) -> Self {
        let mut prefix = Vec::with_capacity(160);
        prefix.extend_from_slice(b"{\"id\":");
        push_json_str(&mut prefix, &plan.id);
        prefix.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        prefix.extend_from_slice(ctx.created.to_string().as_bytes());
        prefix.extend_from_slice(b",\"model\":");
        push_json_str(&mut prefix, &ctx.model);
        prefix.extend_from_slice(
            b",\"service_tier\":\"default\",\"system_fingerprint\":\"mock\",\"choices\":[",
        );
        let arg_pieces: Vec<Vec<String>> = plan
            .calls
            .iter()
            .map(|c| c.pieces().into_iter().map(str::to_string).collect())
            .collect();
        let mut steps = Steps::new();
        steps.push(Step::Role, 1);
        steps.push(Step::Token, plan.content_tokens);
        for (k, pieces) in arg_pieces.iter().enumerate() {
            steps.push(Step::ToolHead(k), 1);
            steps.push(Step::ToolArgs(k), pieces.len());
        }
        steps.push(Step::Finish, 1);
        if include_usage {
            steps.push(Step::Usage, 1);
        }
        steps.push(Step::Done, 1);
        Self {
            prefix,
            suffix: if include_usage {
                b"],\"usage\":null}"
            } else {
                b"]}"
            },
            model: ctx.model.clone(),
            calls: plan.calls,
            arg_pieces,
            finish: plan.finish,
            usage: plan.usage,
            steps,
        }
    }

    /// Appends `data: {prefix}{"index":0,"delta":DELTA,"logprobs":null,"finish_reason":F}]…}`.
    fn chunk(&self, out: &mut Vec<u8>, delta: &[u8], finish: Option<&str>) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"{\"index\":0,\"delta\":");
        out.extend_from_slice(delta);
        out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
        match finish {
            Some(f) => push_json_str(out, f),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}");
        out.extend_from_slice(self.suffix);
        out.extend_from_slice(b"\n\n");
    }
}

impl EventGen for ChatStream {
    fn next_event(&mut self, out: &mut Vec<u8>) -> bool {
        let Some((step, i)) = self.steps.next_step() else {
            return false;
        };
        match step {
            Step::Role => {
                let delta: &[u8] = if self.calls.is_empty() {
                    b"{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}"
                } else {
                    b"{\"role\":\"assistant\",\"content\":null,\"refusal\":null}"
                };
                self.chunk(out, delta, None);
            }
            Step::Token => {
                let mut delta = b"{\"content\":".to_vec();
                push_json_str(&mut delta, &text::text_piece(&self.model, i));
                delta.push(b'}');
                self.chunk(out, &delta, None);
            }
            Step::ToolHead(k) => {
                let call = &self.calls[k];
                let delta = json!({"tool_calls": [{
                    "index": k,
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""}
                }]});
                self.chunk(out, delta.to_string().as_bytes(), None);
            }
            Step::ToolArgs(k) => {
                let delta = json!({"tool_calls": [{
                    "index": k,
                    "function": {"arguments": self.arg_pieces[k][i]}
                }]});
                self.chunk(out, delta.to_string().as_bytes(), None);
            }
            Step::Finish => self.chunk(out, b"{}", Some(self.finish)),
            Step::Usage => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(b"],\"usage\":");
                out.extend_from_slice(self.usage.to_string().as_bytes());
                out.extend_from_slice(b"}\n\n");
            }
            Step::Done => out.extend_from_slice(b"data: [DONE]\n\n"),
        }
        true
    }
}

/// Default embedding size.
const DEFAULT_DIMENSIONS: u64 = 8;
/// Largest `dimensions` accepted.
const MAX_DIMENSIONS: u64 = 16_384;

/// `POST …/embeddings`: one deterministic unit vector per input, as floats or base64.
pub(crate) fn embeddings(ctx: &Ctx, body: &Value) -> Reply {
    let bad = |msg: &str| Reply::json(400, &error_json(400, msg, None));
    let inputs: Vec<(Vec<u8>, u64)> = match body.get("input") {
        Some(Value::String(s)) => vec![(s.as_bytes().to_vec(), text::tokens_for_bytes(s.len()))],
        Some(Value::Array(items)) if !items.is_empty() => {
            // A list of token ids is one input; a list of strings or token lists is many.
            if items.iter().all(Value::is_number) {
                vec![(
                    Value::Array(items.clone()).to_string().into_bytes(),
                    items.len() as u64,
                )]
            } else {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => {
                            out.push((s.as_bytes().to_vec(), text::tokens_for_bytes(s.len())))
                        }
                        Value::Array(toks) if toks.iter().all(Value::is_number) => {
                            out.push((item.to_string().into_bytes(), toks.len().max(1) as u64))
                        }
                        _ => return bad("'input' items must be strings or arrays of token ids"),
                    }
                }
                out
            }
        }
        Some(_) => return bad("'input' must be a non-empty string or array"),
        None => return bad("you must provide an 'input' parameter"),
    };
    let dims = match body.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(d) => match d.as_u64() {
            Some(d) if (1..=MAX_DIMENSIONS).contains(&d) => d,
            _ => {
                return bad(&format!(
                    "'dimensions' must be an integer between 1 and {MAX_DIMENSIONS}"
                ))
            }
        },
    } as usize;
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return bad(&format!(
                "'encoding_format' must be 'float' or 'base64', not {other:?}"
            ))
        }
    };
    let mut prompt = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, (seed, tokens))| {
            prompt += tokens;
            let vector = text::embedding(seed, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(text::base64(&bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Reply::json(
        200,
        &json!({
            "object": "list",
            "data": data,
            "model": ctx.model,
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
        }),
    )
}
