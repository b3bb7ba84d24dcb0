//! Gemini dialect: `generateContent` and `streamGenerateContent` (SSE with `?alt=sse`, else a
//! streamed JSON array), function calls, and Google-shaped errors.

use serde_json::{json, Value};

use super::text::{self, Steps};
use super::{apply_limit, pick_calls, Ctx, EventGen, FixedEvents, Reply, ToolCall};

/// `{"error":{"code","message","status"}}` with the canonical status name for `status`.
pub(crate) fn error_json(status: u16, message: &str) -> Value {
    let name = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if status < 500 => "FAILED_PRECONDITION",
        _ => "UNKNOWN",
    };
    json!({"error": {"code": status, "message": message, "status": name}})
}

/// A 200 response whose body is not valid JSON.
pub(crate) fn malformed(stream: bool, sse: bool) -> Reply {
    match (stream, sse) {
        (true, true) => {
            let events = vec![b"data: {\"candidates\": [{\"content\": \r\n\r\n".to_vec()];
            Reply::stream("text/event-stream", Box::new(FixedEvents::new(events)))
        }
        (true, false) => {
            let events = vec![b"[{\"candidates\": [{\"content\": ".to_vec(), b"]".to_vec()];
            Reply::stream("application/json", Box::new(FixedEvents::new(events)))
        }
        _ => Reply::full(
            200,
            "application/json",
            b"{\"candidates\": [{\"content\": {".to_vec(),
        ),
    }
}

fn get<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

struct Plan {
    id: String,
    tokens: usize,
    calls: Vec<ToolCall>,
    finish: &'static str,
    prompt: u64,
}

fn plan(ctx: &Ctx, body: &Value) -> Plan {
    let calls = function_calls(ctx, body);
    let limit = get(body, "generationConfig", "generation_config")
        .and_then(|g| get(g, "maxOutputTokens", "max_output_tokens"))
        .and_then(Value::as_u64);
    let (tokens, limited) = if calls.is_empty() {
        apply_limit(ctx, limit)
    } else {
        (0, false)
    };
    Plan {
        id: format!("mock-{}", ctx.n),
        tokens,
        calls,
        finish: if limited { "MAX_TOKENS" } else { "STOP" },
        prompt: text::prompt_tokens(
            body,
            &["contents", "systemInstruction", "system_instruction"],
        ) + ctx.cached,
    }
}

/// Functions to call: none without declarations, with mode `NONE`, or when the last content
/// carries a `functionResponse`; else the first (two, in parallel mode).
fn function_calls(ctx: &Ctx, body: &Value) -> Vec<ToolCall> {
    let Some(tools) = body.get("tools").and_then(Value::as_array) else {
        return Vec::new();
    };
    let answered = body
        .get("contents")
        .and_then(Value::as_array)
        .and_then(|c| c.last())
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .is_some_and(|parts| {
            parts
                .iter()
                .any(|p| get(p, "functionResponse", "function_response").is_some())
        });
    let mode = get(body, "toolConfig", "tool_config")
        .and_then(|t| get(t, "functionCallingConfig", "function_calling_config"))
        .and_then(|f| f.get("mode"))
        .and_then(Value::as_str);
    if answered || mode.is_some_and(|m| m.eq_ignore_ascii_case("none")) {
        return Vec::new();
    }
    let candidates = tools
        .iter()
        .filter_map(|t| get(t, "functionDeclarations", "function_declarations"))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|f| {
            let schema = f
                .get("parameters")
                .or_else(|| f.get("parametersJsonSchema"));
            Some((f.get("name")?.as_str()?.to_string(), schema))
        })
        .collect();
    pick_calls(ctx, candidates, "call_mock_")
}

fn call_parts(calls: &[ToolCall]) -> Vec<Value> {
    calls
        .iter()
        .map(|c| {
            let args: Value = serde_json::from_str(&c.args).unwrap_or_else(|_| json!({}));
            json!({"functionCall": {"name": c.name, "args": args}})
        })
        .collect()
}

fn usage(ctx: &Ctx, prompt: u64, candidates: u64) -> Value {
    let mut u = json!({
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + ctx.reasoning,
    });
    if ctx.cached > 0 {
        u["cachedContentTokenCount"] = json!(ctx.cached);
    }
    if ctx.reasoning > 0 {
        u["thoughtsTokenCount"] = json!(ctx.reasoning);
    }
    u
}

fn response(
    ctx: &Ctx,
    plan: &Plan,
    parts: Vec<Value>,
    finish: Option<&str>,
    candidates: u64,
) -> Value {
    let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
    if let Some(f) = finish {
        candidate["finishReason"] = json!(f);
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": usage(ctx, plan.prompt, candidates),
        "modelVersion": ctx.model,
        "responseId": plan.id,
    })
}

/// `POST …/models/{model}:generateContent` and `:streamGenerateContent`.
pub(crate) fn generate(ctx: &Ctx, body: &Value, stream: bool, sse: bool) -> Reply {
    if !body.get("contents").is_some_and(Value::is_array) {
        return Reply::json(
            400,
            &error_json(
                400,
                "* GenerateContentRequest.contents: contents is not specified",
            ),
        );
    }
    let plan = plan(ctx, body);
    if stream {
        let content_type = if sse {
            "text/event-stream"
        } else {
            "application/json"
        };
        return Reply::stream(content_type, Box::new(GenerateStream::new(ctx, plan, sse)));
    }
    let (parts, candidates) = if plan.calls.is_empty() {
        (
            vec![json!({"text": text::text(&ctx.model, plan.tokens)})],
            plan.tokens as u64,
        )
    } else {
        (call_parts(&plan.calls), tool_tokens(&plan.calls))
    };
    Reply::json(
        200,
        &response(ctx, &plan, parts, Some(plan.finish), candidates),
    )
}

fn tool_tokens(calls: &[ToolCall]) -> u64 {
    calls.iter().map(|c| c.pieces().len() as u64).sum()
}

#[derive(Clone, Copy, Debug)]
enum Step {
    /// One text piece; the last one carries the finish reason.
    Token,
    /// A chunk with the function calls (or empty text) and the finish reason.
    Final,
    /// Closing `]` of the JSON-array framing.
    Close,
}

/// Streams a response as SSE `data:` events or as the elements of a JSON array.
struct GenerateStream {
    ctx: Ctx,
    plan: Plan,
    sse: bool,
    sent: usize,
    steps: Steps<Step>,
}

impl GenerateStream {
    fn new(ctx: &Ctx, plan: Plan, sse: bool) -> Self {
        let mut steps = Steps::new();
        if plan.calls.is_empty() && plan.tokens > 0 {
            steps.push(Step::Token, plan.tokens);
        } else {
            steps.push(Step::Final, 1);
        }
        if !sse {
            steps.push(Step::Close, 1);
        }
        Self {
            ctx: ctx.clone(),
            plan,
            sse,
            sent: 0,
            steps,
        }
    }

    fn element(&mut self, out: &mut Vec<u8>, value: &Value) {
        if self.sse {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(value.to_string().as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
        } else {
            out.extend_from_slice(if self.sent == 0 { b"[" } else { b",\r\n" });
            out.extend_from_slice(value.to_string().as_bytes());
        }
        self.sent += 1;
    }
}

impl EventGen for GenerateStream {
    fn next_event(&mut self, out: &mut Vec<u8>) -> bool {
        let Some((step, i)) = self.steps.next_step() else {
            return false;
        };
        let value = match step {
            Step::Token => {
                let last = i + 1 == self.plan.tokens;
                let parts = vec![json!({"text": text::text_piece(&self.ctx.model, i)})];
                let finish = last.then_some(self.plan.finish);
                response(&self.ctx, &self.plan, parts, finish, i as u64 + 1)
            }
            Step::Final => {
                let (parts, candidates) = if self.plan.calls.is_empty() {
                    (vec![json!({"text": ""})], 0)
                } else {
                    (call_parts(&self.plan.calls), tool_tokens(&self.plan.calls))
                };
                response(
                    &self.ctx,
                    &self.plan,
                    parts,
                    Some(self.plan.finish),
                    candidates,
                )
            }
            Step::Close => {
                out.extend_from_slice(if self.sent == 0 { b"[]" } else { b"]" });
                return true;
            }
        };
        self.element(out, &value);
        true
    }
}
