//! Small pieces of the Gemini wire format shared by the request, response and stream codecs:
//! field lookup (proto JSON accepts `lowerCamel` and `snake_case` names), finish reasons,
//! `usageMetadata` both ways, and Google RPC status names.

use serde_json::{json, Map, Value};

use crate::dialect::canonical::StopReason;
use crate::usage::Usage;

/// `lowerCamel` -> `snake_case` (`systemInstruction` -> `system_instruction`).
pub(crate) fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A field by its `lowerCamel` name, or its `snake_case` spelling (Google's proto JSON parser
/// accepts both, and so do we).
pub(crate) fn get<'a>(v: &'a Value, camel: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| {
        let s = snake(camel);
        if s == camel {
            None
        } else {
            v.get(s.as_str())
        }
    })
}

/// Like [`get`], as a string.
pub(crate) fn get_str<'a>(v: &'a Value, camel: &str) -> Option<&'a str> {
    get(v, camel).and_then(Value::as_str)
}

/// Whether `key` is `camel` or its `snake_case` spelling.
pub(crate) fn is_key(key: &str, camel: &str) -> bool {
    key == camel || snake(camel) == key
}

/// The `lowerCamel` name in `known` that `key` spells, if any.
pub(crate) fn known_key(key: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().copied().find(|k| is_key(key, k))
}

/// A Gemini `finishReason` -> canonical; `None` for an empty or unspecified reason.
/// `STOP` after function calls is `ToolUse` (Gemini has no separate reason for it).
pub(crate) fn stop_reason(name: &str, saw_call: bool) -> Option<StopReason> {
    Some(match name {
        "" | "FINISH_REASON_UNSPECIFIED" => return None,
        "STOP" if saw_call => StopReason::ToolUse,
        "STOP" => StopReason::EndTurn,
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_owned()),
    })
}

/// Canonical -> Gemini `finishReason` (for the response/stream encoders).
pub(crate) fn finish_reason(reason: &StopReason) -> &str {
    match reason {
        StopReason::EndTurn | StopReason::ToolUse | StopReason::StopSequence => "STOP",
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter | StopReason::Refusal => "SAFETY",
        StopReason::PauseTurn => "OTHER",
        StopReason::Other(s) => s,
    }
}

/// One `usageMetadata` object -> canonical usage, read exactly as the gateway's usage
/// accounting does (`usage/gemini.rs`). `None` when it holds no token count at all.
pub(crate) use crate::usage::gemini::usage_from;

/// Canonical usage -> `usageMetadata`. Gemini has no cache-write count: those tokens are
/// folded into `promptTokenCount` (they were prompt tokens), so totals stay right.
pub(crate) fn usage_json(u: &Usage) -> Value {
    let prompt = u
        .input
        .saturating_add(u.cached_input)
        .saturating_add(u.cache_write);
    let mut m = Map::new();
    m.insert("promptTokenCount".into(), json!(prompt));
    m.insert(
        "candidatesTokenCount".into(),
        json!(u.output.saturating_sub(u.reasoning)),
    );
    m.insert(
        "totalTokenCount".into(),
        json!(prompt.saturating_add(u.output)),
    );
    if u.cached_input > 0 {
        m.insert("cachedContentTokenCount".into(), json!(u.cached_input));
    }
    if u.reasoning > 0 {
        m.insert("thoughtsTokenCount".into(), json!(u.reasoning));
    }
    Value::Object(m)
}

/// Every `google.rpc.Code` name Gemini reports as `error.status`.
const CODE_NAMES: &[&str] = &[
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
];

/// Whether `name` is a `google.rpc.Code` name.
pub(crate) fn is_code_name(name: &str) -> bool {
    CODE_NAMES.contains(&name)
}

/// The `google.rpc.Code` name Google uses for an HTTP status.
pub(crate) fn status_name(status: u16) -> &'static str {
    match status {
        400 | 413 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        502 | 503 | 529 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if status < 500 => "FAILED_PRECONDITION",
        _ => "UNKNOWN",
    }
}

/// The HTTP status Google maps a `google.rpc.Code` name to (for errors inside a stream
/// that carry no usable `code`).
pub(crate) fn status_for_name(name: &str) -> u16 {
    match name {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ALREADY_EXISTS" | "ABORTED" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "CANCELLED" => 499,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => 500,
    }
}

/// A stable made-up id for an answer that carries no `responseId`.
pub(crate) fn fallback_id(seed: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    // `DefaultHasher::new()` uses fixed keys: the same bytes give the same id.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    seed.hash(&mut h);
    format!("gemini-{:016x}", h.finish())
}
