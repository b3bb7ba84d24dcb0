//! OpenAI Responses API usage (`POST /v1/responses`, passed through to OpenAI-kind providers).
//!
//! Non-streaming: the response object's `usage`. Streaming (`event: response.*` SSE): the
//! terminal event (`response.completed`, `response.incomplete` or `response.failed`) carries
//! the whole response, `usage` included; it ends the stream. Earlier events carry none.
//!
//! Normalisation: `input = input_tokens - cached_tokens - cache_write_tokens` (saturating),
//! `cached_input = input_tokens_details.cached_tokens`, `cache_write =
//! input_tokens_details.cache_write_tokens`, `output = output_tokens` (reasoning included),
//! `reasoning = output_tokens_details.reasoning_tokens`.

use serde_json::Value;

use super::estimate::OutputText;
use super::sse::SseEvent;
use super::{count, Usage};

/// Normalises one Responses `usage` object; `None` unless it has a token count.
pub(crate) fn usage_from(u: &Value) -> Option<Usage> {
    let input = count(u, "input_tokens");
    let output = count(u, "output_tokens");
    if input.is_none() && output.is_none() {
        return None;
    }
    let details = u.get("input_tokens_details");
    let cached = details.and_then(|d| count(d, "cached_tokens")).unwrap_or(0);
    let cache_write = details
        .and_then(|d| count(d, "cache_write_tokens"))
        .unwrap_or(0);
    let reasoning = u
        .get("output_tokens_details")
        .and_then(|d| count(d, "reasoning_tokens"))
        .unwrap_or(0);
    Some(Usage {
        input: input
            .unwrap_or(0)
            .saturating_sub(cached)
            .saturating_sub(cache_write),
        output: output.unwrap_or(0),
        cached_input: cached,
        cache_write,
        reasoning,
    })
}

/// Usage of a complete response object.
pub(crate) fn body_usage(body: &Value) -> Option<Usage> {
    body.get("usage").and_then(usage_from)
}

/// Generated text of a complete response: output text, refusals, reasoning summaries and
/// function-call arguments.
pub(crate) fn body_text(body: &Value, out: &mut OutputText) {
    let Some(Value::Array(items)) = body.get("output") else {
        return;
    };
    for item in items {
        item_text(item, out);
    }
    out.push_finish(finish_of(body));
}

/// A response's finish reason: why it is incomplete (`max_output_tokens`, ...), else its
/// `status` (`completed`, `failed`).
fn finish_of(response: &Value) -> Option<&Value> {
    response
        .get("incomplete_details")
        .and_then(|d| d.get("reason"))
        .or_else(|| response.get("status"))
}

fn item_text(item: &Value, out: &mut OutputText) {
    let push = |v: Option<&Value>, out: &mut OutputText| {
        if let Some(Value::String(s)) = v {
            out.push(s);
        }
    };
    push(item.get("arguments"), out);
    for key in ["content", "summary"] {
        if let Some(Value::Array(parts)) = item.get(key) {
            for p in parts {
                push(p.get("text"), out);
                push(p.get("refusal"), out);
            }
        }
    }
}

/// Whether a stream event type is one of the terminal ones.
pub(crate) fn is_terminal(kind: &str) -> bool {
    matches!(
        kind,
        "response.completed" | "response.incomplete" | "response.failed"
    )
}

/// Stream state for one Responses stream.
#[derive(Debug, Default)]
pub(crate) struct ResponsesStream {
    usage: Option<Usage>,
    done: bool,
}

impl ResponsesStream {
    pub(crate) fn on_event(&mut self, ev: &SseEvent, out: &mut OutputText) {
        let Ok(v) = serde_json::from_str::<Value>(ev.data.trim()) else {
            return;
        };
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(ev.event.as_deref())
            .unwrap_or_default();
        match kind {
            "response.output_text.delta"
            | "response.refusal.delta"
            | "response.reasoning_summary_text.delta"
            | "response.reasoning_text.delta"
            | "response.function_call_arguments.delta" => {
                if let Some(Value::String(s)) = v.get("delta") {
                    out.push(s);
                }
            }
            k if is_terminal(k) => {
                self.done = true;
                if let Some(u) = v.get("response").and_then(body_usage) {
                    self.usage = Some(u);
                }
                out.push_finish(v.get("response").and_then(finish_of));
            }
            _ => {}
        }
    }

    pub(crate) fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub(crate) fn done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cached_and_reasoning_tokens_are_split_out() {
        let u = usage_from(&json!({
            "input_tokens": 2100,
            "input_tokens_details": {"cached_tokens": 2048},
            "output_tokens": 70,
            "output_tokens_details": {"reasoning_tokens": 50},
            "total_tokens": 2170
        }))
        .unwrap();
        assert_eq!(
            u,
            Usage {
                input: 52,
                output: 70,
                cached_input: 2048,
                cache_write: 0,
                reasoning: 50
            }
        );
        assert_eq!(usage_from(&json!({"total_tokens": 3})), None);
    }

    #[test]
    fn a_stream_reports_usage_at_its_terminal_event() {
        let mut s = ResponsesStream::default();
        let mut text = OutputText::default();
        let ev = |event: &str, data: Value| SseEvent {
            event: Some(event.to_owned()),
            data: data.to_string(),
        };
        s.on_event(
            &ev(
                "response.output_text.delta",
                json!({"type": "response.output_text.delta", "delta": "Hi"}),
            ),
            &mut text,
        );
        assert!(!s.done());
        assert_eq!(s.usage(), None);
        s.on_event(
            &ev(
                "response.completed",
                json!({"type": "response.completed", "response": {"usage":
                    {"input_tokens": 5, "output_tokens": 2}}}),
            ),
            &mut text,
        );
        assert!(s.done());
        assert_eq!(s.usage().unwrap().output, 2);
        assert_eq!(text.text(), "Hi");
    }
}
