//! `GET /v1/models` and `GET /v1beta/models`: what this gateway key may call, in a shape every
//! SDK accepts.
//!
//! OpenAI's SDK reads `{"object":"list","data":[{"id","object","created","owned_by"}]}`;
//! Anthropic's reads `{"data":[{"type","id","display_name","created_at"}],"has_more",
//! "first_id","last_id"}`. Each entry carries both sets of fields. Gemini clients read
//! `{"models":[{"name":"models/<id>",...}]}`: `/v1beta/models` answers that alone, and
//! `/v1/models` (which `google-genai` calls with API version `v1`) carries it beside `data`.

use super::GatewayState;
use crate::auth::GatewayKey;
use serde_json::{json, Value};

/// A fixed creation time (gateway models have none): 2025-01-01T00:00:00Z.
const CREATED: u64 = 1_735_689_600;
const CREATED_AT: &str = "2025-01-01T00:00:00Z";

/// The models `key` may call: route names, then `provider/model` for listed models.
fn entries(gw: &GatewayState, key: &GatewayKey) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for r in &gw.config.routes {
        entries.push((r.name.clone(), "switchyard".to_owned()));
    }
    for p in &gw.config.providers {
        for m in &p.models {
            entries.push((format!("{}/{}", p.name, m), p.name.clone()));
        }
    }
    entries.retain(|(id, _)| key.allows(id));
    entries
}

/// A model in Gemini's `Model` shape.
fn gemini_model(id: &str, owner: &str) -> Value {
    json!({
        "name": format!("models/{id}"),
        "baseModelId": id,
        "version": "switchyard",
        "displayName": id,
        "description": format!("{id} (served by {owner} through switchyard)"),
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent"],
    })
}

/// `GET /v1beta/models`.
pub fn gemini_list(gw: &GatewayState, key: &GatewayKey) -> Vec<u8> {
    let models: Vec<Value> = entries(gw, key)
        .iter()
        .map(|(id, owner)| gemini_model(id, owner))
        .collect();
    json!({ "models": models }).to_string().into_bytes()
}

pub fn list(gw: &GatewayState, key: &GatewayKey) -> Vec<u8> {
    let entries = entries(gw, key);
    let data: Vec<Value> = entries
        .iter()
        .map(|(id, owner)| {
            json!({
                "id": id,
                "object": "model",
                "created": CREATED,
                "owned_by": owner,
                "type": "model",
                "display_name": id,
                "created_at": CREATED_AT,
            })
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "has_more": false,
        "first_id": entries.first().map(|e| e.0.as_str()),
        "last_id": entries.last().map(|e| e.0.as_str()),
        "models": entries.iter().map(|(id, owner)| gemini_model(id, owner)).collect::<Vec<_>>(),
    })
    .to_string()
    .into_bytes()
}
