//! `POST /v1/feedback`: an application's own verdict on an answer,
//! `{"request_id": "req_...", "metric": "resolved", "value": true | 0.8}`, authenticated with
//! the gateway key that made the request (any other key gets 404, as for an unknown id: a key
//! learns nothing about other keys' requests). `true`/`false` are stored as 1/0. The value
//! joins the experiment's report per metric; a second value for the same request and metric
//! replaces the first.

use super::store;
use super::Runtime;
use crate::error::{ErrorKind, GatewayError};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    request_id: String,
    metric: String,
    value: Value,
}

fn parse(body: &[u8]) -> Result<(String, String, f64), GatewayError> {
    let b: Body = serde_json::from_slice(body).map_err(|e| {
        GatewayError::bad_request(format!(
            "expected {{\"request_id\": \"...\", \"metric\": \"...\", \"value\": true | 0.8}}: {e}"
        ))
    })?;
    let metric = b.metric.trim();
    if metric.is_empty()
        || metric.len() > 64
        || !metric
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
    {
        return Err(GatewayError::bad_request(
            "`metric` must be 1 to 64 letters, digits, '_', '-' or '.'",
        )
        .with_param("metric"));
    }
    let value = match &b.value {
        Value::Bool(v) => f64::from(u8::from(*v)),
        Value::Number(n) => n.as_f64().filter(|v| v.is_finite()).ok_or_else(|| {
            GatewayError::bad_request("`value` is not a finite number").with_param("value")
        })?,
        _ => {
            return Err(
                GatewayError::bad_request("`value` must be true, false or a number")
                    .with_param("value"),
            )
        }
    };
    if b.request_id.is_empty() || b.request_id.len() > 128 {
        return Err(GatewayError::bad_request("`request_id` is invalid").with_param("request_id"));
    }
    Ok((b.request_id, metric.to_owned(), value))
}

/// Looks up who made `request_id` in the configured store (a blocking read, off the proxy's
/// threads). With a Postgres ledger that is every instance's requests.
async fn owner(
    runtime: &Runtime,
    request_id: &str,
) -> Result<Option<Option<String>>, GatewayError> {
    let Some(source) = runtime.source().cloned() else {
        return Ok(None);
    };
    let id = request_id.to_owned();
    let found = tokio::task::spawn_blocking(move || source.owner(&id))
        .await
        .map_err(|_| GatewayError::new(ErrorKind::Internal, "the ledger lookup failed"))?;
    found.map_err(|e| {
        log::warn!("feedback: reading the ledger: {e}");
        GatewayError::new(ErrorKind::Internal, "the ledger could not be read")
    })
}

/// Records one piece of feedback from the key named `key_name`; the JSON answer.
pub async fn submit(runtime: &Runtime, key_name: &str, body: &[u8]) -> Result<Value, GatewayError> {
    let (request_id, metric, value) = parse(body)?;
    let Some(ledger) = runtime.ledger() else {
        return Err(GatewayError::new(
            ErrorKind::Unavailable,
            "feedback needs the ledger, which is not running",
        ));
    };
    let mut who = owner(runtime, &request_id).await?;
    if who.is_none() {
        // The request may have finished moments ago: its row may still be queued.
        let _ = ledger.flush().await;
        who = owner(runtime, &request_id).await?;
    }
    if who.flatten().as_deref() != Some(key_name) {
        return Err(GatewayError::new(
            ErrorKind::NotFound,
            format!("No request `{request_id}` was made with this gateway key"),
        )
        .with_param("request_id"));
    }
    ledger
        .execute(store::record_feedback(
            request_id.clone(),
            metric.clone(),
            value,
        ))
        .await;
    ledger.flush().await.map_err(|e| {
        log::warn!("feedback: {e}");
        GatewayError::new(
            ErrorKind::Unavailable,
            "the feedback could not be stored yet",
        )
    })?;
    Ok(json!({"request_id": request_id, "metric": metric, "value": value, "recorded": true}))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn values_are_booleans_or_numbers_and_metrics_are_names() {
        let ok = parse(br#"{"request_id":"req_1","metric":"resolved","value":true}"#).unwrap();
        assert_eq!(ok, ("req_1".into(), "resolved".into(), 1.0));
        let n = parse(br#"{"request_id":"req_1","metric":"csat","value":0.8}"#).unwrap();
        assert_eq!(n.2, 0.8);
        let e = parse(br#"{"request_id":"r","metric":"a b","value":1}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("metric"));
        let e = parse(br#"{"request_id":"r","metric":"m","value":"yes"}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("value"));
        assert!(parse(br#"{"request_id":"r","metric":"m","value":1,"x":2}"#).is_err());
    }
}
