//! Anthropic dialect: the Messages API (plain and streamed, thinking blocks, tool use),
//! token counting, and Anthropic-shaped errors.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::text::{self, push_json_str, Steps};
use super::{apply_limit, pick_calls, Ctx, EventGen, FixedEvents, Reply, ToolCall};

/// `{"type":"error","error":{"type","message"}}` with the error type Anthropic uses for
/// `status`.
pub(crate) fn error_json(status: u16, message: &str) -> Value {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        _ if status < 500 => "invalid_request_error",
        _ => "api_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// A 200 response whose body is not valid JSON (or SSE whose data is not valid JSON).
pub(crate) fn malformed(stream: bool) -> Reply {
    if stream {
        let events = vec![
            b"event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\"id\": \n\n"
                .to_vec(),
            b"event: message_stop\ndata: {\"type\": \"message_stop\"}\n\n".to_vec(),
        ];
        return Reply::stream("text/event-stream", Box::new(FixedEvents::new(events)));
    }
    Reply::full(
        200,
        "application/json",
        b"{\"id\": \"msg_mock\", \"type\": \"message\", \"content\": [".to_vec(),
    )
}

/// Fields whose text counts as prompt.
const PROMPT_FIELDS: &[&str] = &["messages", "system"];

/// `POST …/messages/count_tokens`.
pub(crate) fn count_tokens(body: &Value) -> Reply {
    Reply::json(
        200,
        &json!({"input_tokens": text::prompt_tokens(body, PROMPT_FIELDS)}),
    )
}

#[derive(Clone, Copy, Debug)]
enum Block {
    /// A thinking block of this many tokens.
    Thinking(usize),
    /// A text block of this many tokens.
    Text(usize),
    /// A tool_use block for call `k`.
    Tool(usize),
}

struct Plan {
    id: String,
    blocks: Vec<Block>,
    calls: Vec<ToolCall>,
    stop_reason: &'static str,
    input_tokens: u64,
    output_tokens: u64,
}

fn plan(ctx: &Ctx, body: &Value) -> Plan {
    let calls = tool_calls(ctx, body);
    let mut blocks = Vec::new();
    if ctx.reasoning > 0 {
        blocks.push(Block::Thinking(ctx.reasoning as usize));
    }
    let (stop_reason, visible) = if calls.is_empty() {
        let limit = body.get("max_tokens").and_then(Value::as_u64);
        let (n, limited) = apply_limit(ctx, limit);
        blocks.push(Block::Text(n));
        (if limited { "max_tokens" } else { "end_turn" }, n as u64)
    } else {
        blocks.extend((0..calls.len()).map(Block::Tool));
        let pieces: usize = calls.iter().map(|c| c.pieces().len()).sum();
        ("tool_use", pieces as u64)
    };
    Plan {
        id: format!("msg_mock_{}", ctx.n),
        blocks,
        calls,
        stop_reason,
        input_tokens: text::prompt_tokens(body, PROMPT_FIELDS),
        output_tokens: visible + ctx.reasoning,
    }
}

/// The tools to call: none without tools, with `tool_choice` `{"type":"none"}`, or when the
/// last message carries a `tool_result`; else the first (two, in parallel mode) or the named one.
fn tool_calls(ctx: &Ctx, body: &Value) -> Vec<ToolCall> {
    let Some(tools) = body.get("tools").and_then(Value::as_array) else {
        return Vec::new();
    };
    let last = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last());
    let answered = last.is_some_and(|m| {
        m.get("role").and_then(Value::as_str) == Some("user")
            && m.get("content")
                .and_then(Value::as_array)
                .is_some_and(|blocks| {
                    blocks
                        .iter()
                        .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                })
    });
    let choice = body.get("tool_choice");
    let choice_type = choice.and_then(|c| c.get("type")).and_then(Value::as_str);
    if answered || choice_type == Some("none") {
        return Vec::new();
    }
    let forced = match choice_type {
        Some("tool") => choice.and_then(|c| c.get("name")).and_then(Value::as_str),
        _ => None,
    };
    let candidates = tools
        .iter()
        .filter_map(|t| Some((t.get("name")?.as_str()?.to_string(), t.get("input_schema"))))
        .filter(|(name, _)| forced.is_none_or(|f| f == name))
        .collect();
    pick_calls(ctx, candidates, "toolu_mock_")
}

/// A stable fake signature for a thinking block.
fn signature(id: &str) -> String {
    text::base64(&Sha256::digest(
        format!("mock-thinking-signature:{id}").as_bytes(),
    ))
}

fn usage_json(ctx: &Ctx, input: u64, output: u64) -> Value {
    json!({
        "input_tokens": input,
        "cache_creation_input_tokens": ctx.cache_write,
        "cache_read_input_tokens": ctx.cached,
        "output_tokens": output,
        "service_tier": "standard",
    })
}

/// `POST …/messages`.
pub(crate) fn messages(ctx: &Ctx, body: &Value) -> Reply {
    let plan = plan(ctx, body);
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        return Reply::stream("text/event-stream", Box::new(MessageStream::new(ctx, plan)));
    }
    let content: Vec<Value> = plan
        .blocks
        .iter()
        .map(|b| match *b {
            Block::Thinking(n) => json!({
                "type": "thinking",
                "thinking": text::thinking(n),
                "signature": signature(&plan.id),
            }),
            Block::Text(n) => json!({"type": "text", "text": text::text(&ctx.model, n)}),
            Block::Tool(k) => {
                let call = &plan.calls[k];
                let input: Value = serde_json::from_str(&call.args).unwrap_or_else(|_| json!({}));
                json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input})
            }
        })
        .collect();
    Reply::json(
        200,
        &json!({
            "id": plan.id,
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": content,
            "stop_reason": plan.stop_reason,
            "stop_sequence": null,
            "usage": usage_json(ctx, plan.input_tokens, plan.output_tokens),
        }),
    )
}

#[derive(Clone, Copy, Debug)]
enum Step {
    MessageStart,
    BlockStart(usize),
    Ping,
    Delta(usize),
    Signature(usize),
    BlockStop(usize),
    MessageDelta,
    MessageStop,
}

/// Streams a message as Anthropic SSE events.
struct MessageStream {
    ctx: Ctx,
    plan: Plan,
    arg_pieces: Vec<Vec<String>>,
    steps: Steps<Step>,
}

impl MessageStream {
    fn new(ctx: &Ctx, plan: Plan) -> Self {
        let arg_pieces: Vec<Vec<String>> = plan
            .calls
            .iter()
            .map(|c| c.pieces().into_iter().map(str::to_string).collect())
            .collect();
        let mut steps = Steps::new();
        steps.push(Step::MessageStart, 1);
        for (b, block) in plan.blocks.iter().enumerate() {
            steps.push(Step::BlockStart(b), 1);
            if b == 0 {
                steps.push(Step::Ping, 1);
            }
            let deltas = match *block {
                Block::Thinking(n) | Block::Text(n) => n,
                Block::Tool(k) => arg_pieces[k].len(),
            };
            steps.push(Step::Delta(b), deltas);
            if matches!(block, Block::Thinking(_)) {
                steps.push(Step::Signature(b), 1);
            }
            steps.push(Step::BlockStop(b), 1);
        }
        steps.push(Step::MessageDelta, 1);
        steps.push(Step::MessageStop, 1);
        Self {
            ctx: ctx.clone(),
            plan,
            arg_pieces,
            steps,
        }
    }
}

fn event(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// `content_block_delta` carrying one piece of `kind` (`text_delta`, ...) in field `field`.
fn delta(out: &mut Vec<u8>, index: usize, kind: &str, field: &str, piece: &str) {
    out.extend_from_slice(
        b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
    );
    out.extend_from_slice(index.to_string().as_bytes());
    out.extend_from_slice(b",\"delta\":{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"");
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(b"\":");
    push_json_str(out, piece);
    out.extend_from_slice(b"}}\n\n");
}

impl EventGen for MessageStream {
    fn next_event(&mut self, out: &mut Vec<u8>) -> bool {
        let Some((step, i)) = self.steps.next_step() else {
            return false;
        };
        let plan = &self.plan;
        match step {
            Step::MessageStart => event(
                out,
                "message_start",
                &json!({"type": "message_start", "message": {
                    "id": plan.id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.ctx.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": usage_json(&self.ctx, plan.input_tokens, 1),
                }}),
            ),
            Step::BlockStart(b) => {
                let block = match plan.blocks[b] {
                    Block::Thinking(_) => {
                        json!({"type": "thinking", "thinking": "", "signature": ""})
                    }
                    Block::Text(_) => json!({"type": "text", "text": ""}),
                    Block::Tool(k) => {
                        let call = &plan.calls[k];
                        json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}})
                    }
                };
                event(
                    out,
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": b, "content_block": block}),
                );
            }
            Step::Ping => out.extend_from_slice(b"event: ping\ndata: {\"type\": \"ping\"}\n\n"),
            Step::Delta(b) => match plan.blocks[b] {
                Block::Thinking(_) => delta(
                    out,
                    b,
                    "thinking_delta",
                    "thinking",
                    &text::thinking_piece(i),
                ),
                Block::Text(_) => delta(
                    out,
                    b,
                    "text_delta",
                    "text",
                    &text::text_piece(&self.ctx.model, i),
                ),
                Block::Tool(k) => delta(
                    out,
                    b,
                    "input_json_delta",
                    "partial_json",
                    &self.arg_pieces[k][i],
                ),
            },
            Step::Signature(b) => {
                delta(out, b, "signature_delta", "signature", &signature(&plan.id))
            }
            Step::BlockStop(b) => event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": b}),
            ),
            Step::MessageDelta => event(
                out,
                "message_delta",
                &json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": plan.stop_reason, "stop_sequence": null},
                    "usage": {"output_tokens": plan.output_tokens},
                }),
            ),
            Step::MessageStop => event(out, "message_stop", &json!({"type": "message_stop"})),
        }
        true
    }
}
