//! A finished request as spans: the request (kind server) and each attempt that called a
//! provider (kind client, its child: walked attempts, race legs, hedges), with the times the
//! [`Summary`] recorded. Each attempt span carries its role, tokens and exact cost as the
//! ledger row has them; a leg cancelled when another won says so (`switchyard.cancelled`).
//!
//! Attributes follow the OpenTelemetry GenAI semantic conventions (`gen_ai.operation.name`,
//! the request parameters ([`super::params`]), `gen_ai.request.stream`,
//! `gen_ai.response.finish_reasons`,
//! `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`,
//! `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`) and HTTP ones
//! (`http.response.status_code`, `error.type`); the gateway's own are `switchyard.*`: exact
//! cost, cache outcome, route and its reason, gateway key NAME (never the key), feature.

use std::time::{Instant, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;

use super::calls::attempt_attributes;
use super::context::{attempt_span, ids};
use crate::dialect::Endpoint;
use crate::summary::{Outcome, Summary};

fn operation(endpoint: Option<Endpoint>) -> &'static str {
    match endpoint {
        Some(Endpoint::ChatCompletions) | Some(Endpoint::Messages) => "chat",
        Some(Endpoint::Embeddings) => "embeddings",
        // No GenAI operation name for media yet: the endpoint's own name.
        Some(other) => other.name(),
        None => "http",
    }
}

/// `gen_ai.response.finish_reasons`: a string array, one per choice.
pub(super) fn finish_reasons(reasons: &[String]) -> KeyValue {
    KeyValue::new(
        "gen_ai.response.finish_reasons",
        opentelemetry::Value::Array(opentelemetry::Array::String(
            reasons.iter().map(|r| r.clone().into()).collect(),
        )),
    )
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn record(
    tracer: &SdkTracer,
    s: &Summary<'_>,
    began: Instant,
    traceparent: Option<&str>,
    body: &[u8],
) {
    let ids = ids(s.id, traceparent);
    let op = operation(s.endpoint);
    let start = s.started_at;
    let end = start + s.total;
    let parent_cx = match ids.parent {
        Some(parent) => Context::new().with_remote_span_context(SpanContext::new(
            ids.trace_id,
            parent,
            ids.flags,
            true,
            TraceState::default(),
        )),
        None => Context::new(),
    };

    let mut attrs = vec![
        KeyValue::new("gen_ai.operation.name", op),
        KeyValue::new("http.request.method", s.method.to_owned()),
        KeyValue::new("url.path", s.path.to_owned()),
        KeyValue::new("http.response.status_code", i64::from(s.status)),
        KeyValue::new("switchyard.request_id", s.id.to_owned()),
        KeyValue::new("switchyard.stream", s.stream),
        KeyValue::new("switchyard.attempts", s.upstream_attempts() as i64),
        KeyValue::new("switchyard.cache", s.cache.map_or("off", |c| c.as_str())),
        KeyValue::new(
            "switchyard.cost_usd",
            match (&s.account.cost_usd, s.account.cost_unknown) {
                (Some(c), false) => c.normalize().to_string(),
                _ => "unknown".to_owned(),
            },
        ),
        KeyValue::new("gen_ai.usage.input_tokens", i64_of(s.account.usage.input)),
        KeyValue::new("gen_ai.usage.output_tokens", i64_of(s.account.usage.output)),
        KeyValue::new("gen_ai.request.stream", s.stream),
    ];
    attrs.extend(super::params::attributes(body));
    if !s.account.finish_reasons.is_empty() {
        attrs.push(finish_reasons(&s.account.finish_reasons));
    }
    let optional = [
        ("gen_ai.request.model", s.requested_model),
        ("gen_ai.provider.name", s.served.map(|(p, _)| p)),
        ("gen_ai.response.model", s.served.map(|(_, m)| m)),
        ("switchyard.route", s.route),
        ("switchyard.route_reason", s.route_reason),
        ("switchyard.key_name", s.key_name),
        ("switchyard.feature", s.feature),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            attrs.push(KeyValue::new(k, v.to_owned()));
        }
    }
    if let Some(saved) = &s.account.saved_usd {
        attrs.push(KeyValue::new(
            "switchyard.saved_usd",
            saved.normalize().to_string(),
        ));
    }
    let error = s.error_class();
    if let Some(e) = &error {
        attrs.push(KeyValue::new("error.type", e.clone()));
    }
    let name = match s.requested_model {
        Some(m) => format!("{op} {m}"),
        None => op.to_owned(),
    };
    let mut request_span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_trace_id(ids.trace_id)
        .with_span_id(ids.request_span)
        .with_start_time(start)
        .with_attributes(attrs)
        .with_status(if s.status >= 500 || s.status == 0 {
            Status::error(error.unwrap_or_default())
        } else {
            Status::Unset
        })
        .start_with_context(tracer, &parent_cx);
    let request_cx = Context::new().with_remote_span_context(SpanContext::new(
        ids.trace_id,
        ids.request_span,
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    ));
    let sampled = request_span.span_context().is_sampled();
    request_span.end_with_timestamp(end);
    if !sampled {
        return;
    }

    // Each attempt's role, tokens and cost, as the ledger row has them.
    let billed = crate::proxy::ledger_row(s).map_or_else(Vec::new, |r| r.attempts);
    let served_idx = s
        .attempts
        .iter()
        .rposition(|a| matches!(a.outcome, Outcome::Answered(st) if st < 400));
    for (idx, a) in s.attempts.iter().enumerate() {
        if a.is_skipped() {
            continue;
        }
        let at = |t: Instant| start + t.saturating_duration_since(began);
        let a_start: SystemTime = at(a.started);
        // An attempt without a recorded duration lasted until the next one began.
        let next = s.attempts[idx + 1..].iter().find(|n| !n.is_skipped());
        let a_end = match (a.elapsed, next) {
            (Some(e), _) => a_start + e,
            (None, Some(n)) => at(n.started),
            (None, None) => end,
        }
        .min(end.max(a_start))
        .max(a_start);
        let mut attrs = match billed.get(idx) {
            Some(row) => attempt_attributes(op, row),
            None => Vec::new(),
        };
        attrs.push(KeyValue::new("switchyard.attempt.index", idx as i64));
        attrs.push(KeyValue::new(
            "switchyard.attempt.outcome",
            a.outcome_label(),
        ));
        if let Some(leg) = s.legs.iter().find(|l| l.attempt == idx) {
            attrs.push(KeyValue::new("switchyard.estimated", leg.estimated));
        }
        let failed = a.error_class();
        if Some(idx) == served_idx && s.cache != Some(crate::summary::CacheOutcome::Hit) {
            attrs.push(KeyValue::new("gen_ai.response.model", a.model.clone()));
            if !s.account.finish_reasons.is_empty() {
                attrs.push(finish_reasons(&s.account.finish_reasons));
            }
        }
        let mut span = tracer
            .span_builder(format!("{op} {}", a.model))
            .with_kind(SpanKind::Client)
            .with_span_id(attempt_span(s.id, idx))
            .with_start_time(a_start)
            .with_attributes(attrs)
            .with_status(match failed {
                Some(e) => Status::error(e),
                None => Status::Unset,
            })
            .start_with_context(tracer, &request_cx);
        span.end_with_timestamp(a_end);
    }
}
