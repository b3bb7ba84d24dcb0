//! OpenAI Responses API (`POST …/responses`), as OpenAI serves it: a whole response object, or
//! its event stream (`response.created`, `response.in_progress`, per output item
//! `response.output_item.added` … `.done` with content-part, text, reasoning-summary and
//! function-call-argument events, then `response.completed`), every event with its
//! `sequence_number`. Deterministic like the rest of the mock: the same request gives the
//! same items, text and usage.
//!
//! The answer: a `reasoning` item first when reasoning tokens are asked for
//! (`x-mock-reasoning-tokens`; its summary text only when the request asks for a summary, as
//! at OpenAI), then either function calls (the first function tool, or the first two with
//! `x-mock-parallel-tools`, unless the last input item is a `function_call_output` or
//! `tool_choice` is `none`) or a message of `ctx.tokens` text tokens (cut at
//! `max_output_tokens`, then `status: incomplete`).

use serde_json::{json, Value};

use super::text;
use super::{apply_limit, pick_calls, Ctx, FixedEvents, Reply, ToolCall};

/// What the answer holds.
struct Plan {
    id: String,
    reasoning: Option<(String, String)>,
    text_tokens: usize,
    limited: bool,
    calls: Vec<ToolCall>,
    usage: Value,
}

fn plan(ctx: &Ctx, body: &Value) -> Plan {
    let calls = tool_calls(ctx, body);
    let limit = body.get("max_output_tokens").and_then(Value::as_u64);
    let (text_tokens, limited) = if calls.is_empty() {
        apply_limit(ctx, limit)
    } else {
        (0, false)
    };
    let visible: u64 = if calls.is_empty() {
        text_tokens as u64
    } else {
        calls.iter().map(|c| c.pieces().len() as u64).sum()
    };
    let wants_summary = body
        .get("reasoning")
        .and_then(|r| r.get("summary"))
        .is_some_and(|s| !s.is_null());
    let reasoning = (ctx.reasoning > 0).then(|| {
        let summary = if wants_summary {
            text::thinking(ctx.reasoning as usize)
        } else {
            String::new()
        };
        (format!("rs_mock_{}", ctx.n), summary)
    });
    let prompt = text::prompt_tokens(body, &["input", "instructions"]) + ctx.cached;
    let output = visible + ctx.reasoning;
    Plan {
        id: format!("resp_mock_{}", ctx.n),
        reasoning,
        text_tokens,
        limited,
        calls,
        usage: json!({
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": ctx.cached},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": ctx.reasoning},
            "total_tokens": prompt + output,
        }),
    }
}

/// The function tools to call (none after a tool result, or with `tool_choice: "none"`).
fn tool_calls(ctx: &Ctx, body: &Value) -> Vec<ToolCall> {
    let Some(tools) = body.get("tools").and_then(Value::as_array) else {
        return Vec::new();
    };
    let last = body
        .get("input")
        .and_then(Value::as_array)
        .and_then(|i| i.last());
    if last.and_then(|i| i.get("type")).and_then(Value::as_str) == Some("function_call_output") {
        return Vec::new();
    }
    let choice = body.get("tool_choice");
    if choice.and_then(Value::as_str) == Some("none") {
        return Vec::new();
    }
    let forced = choice.and_then(|c| c.get("name")).and_then(Value::as_str);
    let candidates = tools
        .iter()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
        .filter_map(|t| Some((t.get("name")?.as_str()?.to_string(), t.get("parameters"))))
        .filter(|(name, _)| forced.is_none_or(|f| f == name))
        .collect();
    pick_calls(ctx, candidates, "call_mock_")
}

fn echo(body: &Value, key: &str, default: Value) -> Value {
    body.get(key)
        .filter(|v| !v.is_null())
        .cloned()
        .unwrap_or(default)
}

/// The response object with `status` and `output`.
fn response(ctx: &Ctx, body: &Value, plan: &Plan, status: &str, output: Vec<Value>) -> Value {
    let finished = status != "in_progress";
    json!({
        "id": plan.id,
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": if status == "incomplete" { json!({"reason": "max_output_tokens"}) } else { Value::Null },
        "instructions": echo(body, "instructions", Value::Null),
        "max_output_tokens": echo(body, "max_output_tokens", Value::Null),
        "model": ctx.model,
        "output": output,
        "parallel_tool_calls": echo(body, "parallel_tool_calls", json!(true)),
        "previous_response_id": echo(body, "previous_response_id", Value::Null),
        "reasoning": echo(body, "reasoning", json!({"effort": null, "summary": null})),
        "store": echo(body, "store", json!(true)),
        "temperature": echo(body, "temperature", json!(1.0)),
        "text": echo(body, "text", json!({"format": {"type": "text"}})),
        "tool_choice": echo(body, "tool_choice", json!("auto")),
        "tools": echo(body, "tools", json!([])),
        "top_p": echo(body, "top_p", json!(1.0)),
        "truncation": "disabled",
        "usage": if finished { plan.usage.clone() } else { Value::Null },
        "user": echo(body, "user", Value::Null),
        "metadata": echo(body, "metadata", json!({})),
    })
}

fn reasoning_item(id: &str, summary: &str) -> Value {
    let summary = if summary.is_empty() {
        json!([])
    } else {
        json!([{"type": "summary_text", "text": summary}])
    };
    json!({"id": id, "type": "reasoning", "summary": summary})
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant",
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}]})
}

fn call_item(ctx: &Ctx, k: usize, c: &ToolCall, status: &str, args: &str) -> Value {
    json!({"id": format!("fc_mock_{}_{k}", ctx.n), "type": "function_call", "status": status,
        "arguments": args, "call_id": c.id, "name": c.name})
}

/// The finished output items.
fn output(ctx: &Ctx, plan: &Plan) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some((id, summary)) = &plan.reasoning {
        out.push(reasoning_item(id, summary));
    }
    if plan.calls.is_empty() {
        let text = text::text(&ctx.model, plan.text_tokens);
        let status = if plan.limited {
            "incomplete"
        } else {
            "completed"
        };
        out.push(message_item(&format!("msg_mock_{}", ctx.n), &text, status));
    }
    for (k, c) in plan.calls.iter().enumerate() {
        out.push(call_item(ctx, k, c, "completed", &c.args));
    }
    out
}

/// `POST …/responses`.
pub(crate) fn create(ctx: &Ctx, body: &Value) -> Reply {
    let plan = plan(ctx, body);
    let status = if plan.limited {
        "incomplete"
    } else {
        "completed"
    };
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        let out = output(ctx, &plan);
        return Reply::json(200, &response(ctx, body, &plan, status, out));
    }
    let mut events = Events::default();
    let created = response(ctx, body, &plan, "in_progress", Vec::new());
    events.push("response.created", json!({"response": created.clone()}));
    events.push("response.in_progress", json!({"response": created}));
    let mut oi = 0;
    if let Some((id, summary)) = &plan.reasoning {
        events.push(
            "response.output_item.added",
            json!({"output_index": oi, "item": reasoning_item(id, "")}),
        );
        if !summary.is_empty() {
            let part = |t: &str| json!({"type": "summary_text", "text": t});
            events.push(
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": oi, "summary_index": 0, "part": part("")}),
            );
            for i in 0..ctx.reasoning as usize {
                events.push(
                    "response.reasoning_summary_text.delta",
                    json!({"item_id": id, "output_index": oi, "summary_index": 0,
                        "delta": text::thinking_piece(i), "obfuscation": "mock"}),
                );
            }
            events.push(
                "response.reasoning_summary_text.done",
                json!({"item_id": id, "output_index": oi, "summary_index": 0, "text": summary}),
            );
            events.push(
                "response.reasoning_summary_part.done",
                json!({"item_id": id, "output_index": oi, "summary_index": 0, "part": part(summary)}),
            );
        }
        events.push(
            "response.output_item.done",
            json!({"output_index": oi, "item": reasoning_item(id, summary)}),
        );
        oi += 1;
    }
    if plan.calls.is_empty() {
        let id = format!("msg_mock_{}", ctx.n);
        let part =
            |t: &str| json!({"type": "output_text", "annotations": [], "logprobs": [], "text": t});
        events.push(
            "response.output_item.added",
            json!({"output_index": oi, "item": {"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}}),
        );
        events.push(
            "response.content_part.added",
            json!({"item_id": id, "output_index": oi, "content_index": 0, "part": part("")}),
        );
        for i in 0..plan.text_tokens {
            events.push(
                "response.output_text.delta",
                json!({"item_id": id, "output_index": oi, "content_index": 0,
                    "delta": text::text_piece(&ctx.model, i), "logprobs": [], "obfuscation": "mock"}),
            );
        }
        let full = text::text(&ctx.model, plan.text_tokens);
        events.push(
            "response.output_text.done",
            json!({"item_id": id, "output_index": oi, "content_index": 0, "text": full, "logprobs": []}),
        );
        events.push(
            "response.content_part.done",
            json!({"item_id": id, "output_index": oi, "content_index": 0, "part": part(&full)}),
        );
        events.push(
            "response.output_item.done",
            json!({"output_index": oi, "item": message_item(&id, &full, status)}),
        );
    }
    for (k, c) in plan.calls.iter().enumerate() {
        let id = format!("fc_mock_{}_{k}", ctx.n);
        events.push(
            "response.output_item.added",
            json!({"output_index": oi, "item": call_item(ctx, k, c, "in_progress", "")}),
        );
        for piece in c.pieces() {
            events.push(
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": oi, "delta": piece, "obfuscation": "mock"}),
            );
        }
        events.push(
            "response.function_call_arguments.done",
            json!({"item_id": id, "output_index": oi, "arguments": c.args}),
        );
        events.push(
            "response.output_item.done",
            json!({"output_index": oi, "item": call_item(ctx, k, c, "completed", &c.args)}),
        );
        oi += 1;
    }
    let done = response(ctx, body, &plan, status, output(ctx, &plan));
    let kind = if plan.limited {
        "response.incomplete"
    } else {
        "response.completed"
    };
    events.push(kind, json!({"response": done}));
    Reply::stream("text/event-stream", Box::new(FixedEvents::new(events.0)))
}

/// Rendered events, numbered in order.
#[derive(Default)]
struct Events(Vec<Vec<u8>>);

impl Events {
    fn push(&mut self, kind: &str, mut data: Value) {
        data["type"] = kind.into();
        data["sequence_number"] = self.0.len().into();
        self.0
            .push(format!("event: {kind}\ndata: {data}\n\n").into_bytes());
    }
}
