//! A variant's `system` prompt and `params`, applied on top of the client's request in the
//! client's own dialect (before any translation, so every target dialect gets them the way it
//! gets the client's own fields).
//!
//! - OpenAI Chat Completions: the system prompt becomes a `system` message before the
//!   client's messages (the client's own system messages follow it).
//! - Anthropic Messages: it becomes the first text block of `system` (a string `system` is
//!   kept as the second block).
//! - `params` set top-level request fields over the client's (`temperature`, `max_tokens`,
//!   `top_p`, ...); the names are the client dialect's.

use crate::config::experiments::VariantConfig;
use crate::dialect::Dialect;
use crate::error::GatewayError;
use bytes::Bytes;
use serde_json::{json, Value};

/// The request body with the variant applied; `None` when the variant changes nothing.
pub fn apply(
    dialect: Dialect,
    body: &[u8],
    v: &VariantConfig,
) -> Result<Option<Bytes>, GatewayError> {
    if v.system.is_none() && v.params.is_empty() {
        return Ok(None);
    }
    let mut req: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::bad_request(format!("the request body is not valid JSON: {e}"))
    })?;
    let Some(obj) = req.as_object_mut() else {
        return Err(GatewayError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    if let Some(system) = &v.system {
        match dialect {
            Dialect::Anthropic => {
                let block = json!({"type": "text", "text": system});
                let merged = match obj.remove("system") {
                    None | Some(Value::Null) => Value::String(system.clone()),
                    Some(Value::String(s)) => json!([block, {"type": "text", "text": s}]),
                    Some(Value::Array(mut blocks)) => {
                        blocks.insert(0, block);
                        Value::Array(blocks)
                    }
                    Some(_) => {
                        return Err(GatewayError::bad_request(
                            "`system` must be a string or an array of text blocks",
                        )
                        .with_param("system"))
                    }
                };
                obj.insert("system".into(), merged);
            }
            // The experiments layer runs variants on chat completions and messages only.
            Dialect::Responses => {
                return Err(GatewayError::bad_request(
                    "experiment variants apply to chat completions and messages requests",
                ))
            }
            Dialect::OpenAi | Dialect::Gemini => {
                let Some(Value::Array(messages)) = obj.get_mut("messages") else {
                    return Err(GatewayError::bad_request("`messages` must be an array")
                        .with_param("messages"));
                };
                messages.insert(0, json!({"role": "system", "content": system}));
            }
        }
    }
    for (k, val) in &v.params {
        obj.insert(k.clone(), val.clone());
    }
    serde_json::to_vec(&req)
        .map(|b| Some(Bytes::from(b)))
        .map_err(|e| GatewayError::bad_request(format!("the request body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Target;

    fn variant(system: Option<&str>, params: Value) -> VariantConfig {
        VariantConfig {
            name: "v".into(),
            target: Target {
                provider: 0,
                model: "m".into(),
            },
            weight: 1,
            system: system.map(str::to_owned),
            params: params.as_object().cloned().unwrap_or_default(),
        }
    }

    fn run(d: Dialect, body: Value, v: &VariantConfig) -> Value {
        let out = apply(d, body.to_string().as_bytes(), v).unwrap().unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn openai_gets_a_leading_system_message_and_params_win() {
        let v = variant(Some("Be brief."), json!({"temperature": 0.2}));
        let out = run(
            Dialect::OpenAi,
            json!({"model": "r", "temperature": 1, "messages": [
                {"role": "system", "content": "Client rules."},
                {"role": "user", "content": "hi"}]}),
            &v,
        );
        assert_eq!(
            out["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(out["messages"][1]["content"], "Client rules.");
        assert_eq!(out["temperature"], json!(0.2));
        assert_eq!(out["model"], "r");
    }

    #[test]
    fn anthropic_system_is_prepended_in_every_shape() {
        let v = variant(Some("Be brief."), json!({}));
        let base =
            json!({"model": "r", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(
            run(Dialect::Anthropic, base.clone(), &v)["system"],
            "Be brief."
        );
        let mut s = base.clone();
        s["system"] = json!("Client.");
        assert_eq!(
            run(Dialect::Anthropic, s, &v)["system"],
            json!([{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Client."}])
        );
        let mut a = base;
        a["system"] = json!([{"type": "text", "text": "Client."}]);
        assert_eq!(
            run(Dialect::Anthropic, a, &v)["system"][1]["text"],
            "Client."
        );
    }

    #[test]
    fn nothing_to_apply_leaves_the_body_alone_and_bad_bodies_are_400() {
        assert!(apply(Dialect::OpenAi, b"{}", &variant(None, json!({})))
            .unwrap()
            .is_none());
        let v = variant(Some("x"), json!({}));
        let e = apply(Dialect::OpenAi, br#"{"messages": 3}"#, &v).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages"));
    }
}
