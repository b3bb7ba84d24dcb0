//! Gemini error bodies: `{"error":{"code","message","status","details"}}` (Google's RPC
//! error shape; also sent wrapped in a JSON array, and as a chunk inside a stream).

use serde_json::{json, Map, Value};

use super::wire::{get_str, is_code_name, status_for_name, status_name};
use crate::dialect::canonical::ProviderError;

/// Longest non-JSON body text kept as an error message, in characters.
const MAX_TEXT: usize = 1000;

/// A provider's non-2xx answer -> [`ProviderError`]. The status is kept; `provider_type` is
/// Google's `status` name; the message is kept verbatim. A body that is not a Google error
/// becomes the message as text (cut to 1000 characters), or "provider returned HTTP <status>"
/// when empty.
pub fn decode_error(status: u16, body: &[u8]) -> ProviderError {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let error = parsed.as_ref().and_then(error_object);
    if let Some(e) = error {
        if let Some(err) = from_error_object(status, e) {
            return err;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let message = if text.is_empty() {
        format!("provider returned HTTP {status}")
    } else {
        match text.char_indices().nth(MAX_TEXT) {
            Some((cut, _)) => text.get(..cut).unwrap_or(text).to_owned(),
            None => text.to_owned(),
        }
    };
    ProviderError {
        status,
        provider_type: error.and_then(|e| get_str(e, "status")).map(str::to_owned),
        message,
        param: None,
    }
}

/// The `error` object of a Google error body (`{"error":{…}}` or `[{"error":{…}}]`).
pub(crate) fn error_object(v: &Value) -> Option<&Value> {
    let v = match v {
        Value::Array(items) => items.first()?,
        other => other,
    };
    v.get("error").filter(|e| e.is_object())
}

/// An `error` object with a message -> [`ProviderError`] with `status`.
pub(crate) fn from_error_object(status: u16, e: &Value) -> Option<ProviderError> {
    let message = get_str(e, "message")?.to_owned();
    Some(ProviderError {
        status,
        provider_type: get_str(e, "status").map(str::to_owned),
        message,
        param: field_violation(e),
    })
}

/// An error inside a stream: its status is `code`, else the one its `status` name implies.
pub(crate) fn stream_error(e: &Value) -> ProviderError {
    let status = e
        .get("code")
        .and_then(Value::as_u64)
        .filter(|c| (400..=599).contains(c))
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or_else(|| get_str(e, "status").map_or(500, status_for_name));
    from_error_object(status, e).unwrap_or_else(|| ProviderError {
        status,
        provider_type: get_str(e, "status").map(str::to_owned),
        message: e.to_string(),
        param: None,
    })
}

/// The field named by a `google.rpc.BadRequest` detail, if any.
fn field_violation(e: &Value) -> Option<String> {
    e.get("details")?
        .as_array()?
        .iter()
        .filter_map(|d| d.get("fieldViolations").and_then(Value::as_array))
        .flatten()
        .find_map(|f| get_str(f, "field"))
        .map(str::to_owned)
}

/// [`ProviderError`] -> a Google error body. `status` is the provider's name when it already
/// is a `google.rpc.Code` name, else Google's name for the HTTP status; `param` becomes a
/// `google.rpc.BadRequest` field violation.
pub fn encode_error(err: &ProviderError) -> Vec<u8> {
    error_json(err).to_string().into_bytes()
}

/// The `{"error":{…}}` value of [`encode_error`].
pub(crate) fn error_json(err: &ProviderError) -> Value {
    let name = err
        .provider_type
        .as_deref()
        .filter(|t| is_code_name(t))
        .unwrap_or_else(|| status_name(err.status));
    let mut e = Map::new();
    e.insert("code".into(), json!(err.status));
    e.insert("message".into(), json!(err.message));
    e.insert("status".into(), json!(name));
    if let Some(param) = &err.param {
        e.insert(
            "details".into(),
            json!([{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": param, "description": err.message}],
            }]),
        );
    }
    json!({ "error": e })
}

/// A gateway error in Google's shape (`{"error":{code,message,status,details?}}`), for
/// Gemini-dialect clients.
pub fn error_body(err: &crate::error::GatewayError) -> Vec<u8> {
    encode_error(&ProviderError {
        status: err.status(),
        provider_type: None,
        message: err.message.clone(),
        param: err.param.as_deref().map(str::to_owned),
    })
}
