//! Provider error bodies both ways: any non-2xx answer (JSON in OpenAI's
//! `{"error":{message,type,param,code}}` shape, other JSON, plain text, nothing) ->
//! [`ProviderError`], and [`ProviderError`] -> OpenAI's error shape. Also reads the error
//! objects OpenAI-compatible providers send inside streams.

use crate::dialect::canonical::ProviderError;
use serde_json::{json, Value};

/// Longest message taken from a body that is not an error object.
const MAX_TEXT_MESSAGE: usize = 1000;

/// A provider's non-2xx answer -> canonical error (status kept).
pub fn decode_error(status: u16, body: &[u8]) -> ProviderError {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    if let Some(e) = parsed.as_ref().and_then(|v| from_json(status, v)) {
        return e;
    }
    ProviderError {
        status,
        provider_type: None,
        message: text_message(status, body),
        param: None,
    }
}

/// The error in a JSON body: `{"error":{...}}`, `{"error":"..."}`, `[{"error":...}]`, a bare
/// `{"message":"...","type":...}` or `{"detail":"..."}`.
fn from_json(status: u16, v: &Value) -> Option<ProviderError> {
    match v {
        Value::Array(items) => items.first().and_then(|first| from_json(status, first)),
        Value::Object(o) => match o.get("error") {
            Some(e @ Value::Object(_)) => Some(from_error_object(status, e)),
            Some(Value::String(s)) => Some(ProviderError {
                status,
                provider_type: type_or_code(v),
                message: s.clone(),
                param: None,
            }),
            // A bare message; FastAPI-based servers say `detail`.
            _ => o
                .get("message")
                .or_else(|| o.get("detail"))
                .and_then(Value::as_str)
                .map(|m| ProviderError {
                    status,
                    provider_type: type_or_code(v),
                    message: m.to_owned(),
                    param: o.get("param").and_then(Value::as_str).map(str::to_owned),
                }),
        },
        _ => None,
    }
}

/// `{message, type, param, code}` -> canonical. A message that is not a string is kept as
/// its JSON text.
pub(super) fn from_error_object(status: u16, e: &Value) -> ProviderError {
    let message = match e.get("message") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => format!("provider returned HTTP {status}"),
        Some(other) => other.to_string(),
    };
    ProviderError {
        status,
        provider_type: type_or_code(e),
        message,
        param: e.get("param").and_then(Value::as_str).map(str::to_owned),
    }
}

/// The error's `type`, else its `code` (a string or a number).
fn type_or_code(e: &Value) -> Option<String> {
    let s = |v: &Value| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    e.get("type")
        .and_then(s)
        .or_else(|| e.get("code").and_then(s))
}

/// A non-JSON (or unrecognised) body as a message: its text, cut to
/// [`MAX_TEXT_MESSAGE`] characters, or `provider returned HTTP <status>` when empty.
fn text_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("provider returned HTTP {status}");
    }
    text.chars().take(MAX_TEXT_MESSAGE).collect()
}

/// An error object sent inside a stream -> canonical, with the status its type implies
/// (OpenRouter puts the HTTP status in a numeric `code`).
pub(super) fn stream_error(e: &Value) -> ProviderError {
    let e = match e {
        Value::String(s) => {
            return ProviderError {
                status: 500,
                provider_type: None,
                message: s.clone(),
                param: None,
            }
        }
        e => e,
    };
    let code_status = e
        .get("code")
        .and_then(Value::as_u64)
        .filter(|c| (400..=599).contains(c))
        .and_then(|c| u16::try_from(c).ok());
    let named = |key: &str| e.get(key).and_then(Value::as_str).and_then(status_of_type);
    let status = code_status
        .or_else(|| named("type"))
        .or_else(|| named("code"))
        .unwrap_or(500);
    from_error_object(status, e)
}

/// The HTTP status an error type implies.
fn status_of_type(t: &str) -> Option<u16> {
    Some(match t {
        "invalid_request_error" => 400,
        "authentication_error" | "invalid_api_key" => 401,
        "permission_error" => 403,
        "not_found_error" | "model_not_found" => 404,
        "request_too_large" => 413,
        "rate_limit_error" | "rate_limit_exceeded" | "insufficient_quota" => 429,
        "overloaded_error" => 529,
        "timeout_error" => 504,
        "server_error" | "api_error" => 500,
        _ => return None,
    })
}

/// OpenAI's error `type` for an HTTP status.
fn type_of_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict",
        429 => "rate_limit_error",
        500..=599 => "api_error",
        // 400, 413, 422 and every other status.
        _ => "invalid_request_error",
    }
}

/// The `{"error":{...}}` value for a canonical error (`code` = the provider's type).
pub(super) fn error_json(err: &ProviderError) -> Value {
    json!({
        "error": {
            "message": err.message,
            "type": type_of_status(err.status),
            "param": err.param,
            "code": err.provider_type,
        }
    })
}

/// Canonical error -> OpenAI error body.
pub fn encode_error(err: &ProviderError) -> Vec<u8> {
    error_json(err).to_string().into_bytes()
}
