//! `GET /v1/models`: what this gateway key may call, in a shape both SDKs accept.
//!
//! OpenAI's SDK reads `{"object":"list","data":[{"id","object","created","owned_by"}]}`;
//! Anthropic's reads `{"data":[{"type","id","display_name","created_at"}],"has_more",
//! "first_id","last_id"}`. Each entry carries both sets of fields.

use super::GatewayState;
use crate::auth::GatewayKey;
use serde_json::{json, Value};

/// A fixed creation time (gateway models have none): 2025-01-01T00:00:00Z.
const CREATED: u64 = 1_735_689_600;
const CREATED_AT: &str = "2025-01-01T00:00:00Z";

pub fn list(gw: &GatewayState, key: &GatewayKey) -> Vec<u8> {
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
    })
    .to_string()
    .into_bytes()
}
