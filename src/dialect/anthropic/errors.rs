//! Provider error bodies both ways: Anthropic's `{"type":"error","error":{"type","message"}}`
//! and the mapping between HTTP statuses and Anthropic error types.

use serde_json::{json, Value};

use crate::dialect::canonical::ProviderError;

/// Longest message kept from a body that is not an Anthropic error object.
const MAX_RAW_MESSAGE: usize = 1000;

/// A provider's non-2xx answer (any body) -> [`ProviderError`], status kept.
pub fn decode_error(status: u16, body: &[u8]) -> ProviderError {
    let mut err = ProviderError {
        status,
        provider_type: None,
        message: String::new(),
        param: None,
    };
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let inner = v.get("error");
        let text = |o: Option<&Value>, key: &str| {
            o.and_then(|o| o.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        err.provider_type = text(inner, "type").or_else(|| text(inner, "code"));
        err.param = text(inner, "param");
        let message = match inner {
            Some(Value::String(s)) => Some(s.clone()),
            _ => text(inner, "message").or_else(|| text(Some(&v), "message")),
        };
        if let Some(m) = message {
            err.message = m;
            return err;
        }
    }
    let raw = String::from_utf8_lossy(body);
    let raw = raw.trim();
    err.message = if raw.is_empty() {
        format!("provider returned HTTP {status}")
    } else {
        raw.chars().take(MAX_RAW_MESSAGE).collect()
    };
    err
}

/// [`ProviderError`] -> an Anthropic error body (the type follows the status).
pub fn encode_error(err: &ProviderError) -> Vec<u8> {
    json!({
        "type": "error",
        "error": {"type": type_for_status(err.status), "message": err.message},
    })
    .to_string()
    .into_bytes()
}

/// Anthropic's error type for an HTTP status.
pub(super) fn type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        500 => "api_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        // 400 and any other client error.
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The HTTP status an Anthropic error type implies (errors sent inside a stream).
pub(super) fn status_for_type(error_type: &str) -> u16 {
    match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}
