//! Spans for calls the gateway makes for a request after its answer (experiments' judge and
//! shadow calls, through the outbound client): children of the request's span, recorded when
//! each call ends, with the same GenAI attributes and cost as the request's own attempts
//! ([`attempt_attributes`], shared with [`super::spans`]).
//!
//! The caller keeps the request's [`Parent`] (taken when the request finished, only while
//! traces are exported) and, per call, a [`Child`]: its span id and the `traceparent` to send
//! to the provider, so the provider's own spans join the same trace.

use std::time::SystemTime;

use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceState,
    Tracer,
};
use opentelemetry::{Context, KeyValue};
use pingora_http::RequestHeader;

use super::context::{ids, traceparent, TraceIds};
use crate::ledger::{LedgerAttempt, Role};

/// The request a later call belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parent {
    ids: TraceIds,
}

/// One call's span id and the `traceparent` naming it.
#[derive(Clone, Debug)]
pub struct Child {
    pub span: SpanId,
    pub traceparent: String,
}

/// The parent for calls made on behalf of request `request_id` (whose client sent `client`);
/// `None` when traces are not exported (then nothing else is done for these calls).
pub fn parent_of(request_id: &str, client: &RequestHeader) -> Option<Parent> {
    if !super::enabled() {
        return None;
    }
    Some(Parent {
        ids: ids(request_id, super::incoming(client)),
    })
}

impl Parent {
    /// A new span id for one call, and its `traceparent`.
    pub fn child(&self) -> Child {
        let span = SpanId::from_bytes(rand::random::<u64>().max(1).to_be_bytes());
        Child {
            span,
            traceparent: traceparent(&self.ids, span),
        }
    }

    /// Whether the request's span was sampled (so its children are).
    fn sampled(&self) -> bool {
        self.ids.parent.is_none() || self.ids.flags.is_sampled()
    }
}

/// The attributes of one call to a provider: GenAI (`gen_ai.operation.name`,
/// `gen_ai.provider.name`, `gen_ai.request.model`, tokens), its outcome, and the gateway's
/// own: `switchyard.attempt.role` (served, failed, race_loser, hedge, judge, shadow...),
/// `switchyard.cost_usd` (exact, or `unknown`), `switchyard.cancelled` for a leg cancelled
/// before it ended.
pub fn attempt_attributes(op: &'static str, a: &LedgerAttempt) -> Vec<KeyValue> {
    let mut attrs = vec![
        KeyValue::new("gen_ai.operation.name", op),
        KeyValue::new("gen_ai.provider.name", a.provider.clone()),
        KeyValue::new("gen_ai.request.model", a.model.clone()),
        KeyValue::new("switchyard.attempt.role", a.role.as_str()),
    ];
    if let Some(st) = a.status {
        attrs.push(KeyValue::new("http.response.status_code", i64::from(st)));
    }
    if let Some(k) = a.key_index {
        attrs.push(KeyValue::new("switchyard.provider_key_index", i64::from(k)));
    }
    if let Some(e) = &a.error_class {
        attrs.push(KeyValue::new("error.type", e.clone()));
        if e == "cancelled" {
            attrs.push(KeyValue::new("switchyard.cancelled", true));
        }
    }
    // A failed or skipped attempt bills nothing: no tokens or cost to show.
    let billed = a.usage != crate::usage::Usage::default()
        || !matches!(a.role, Role::Failed | Role::Skipped);
    if billed {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        attrs.push(KeyValue::new("gen_ai.usage.input_tokens", n(a.usage.input)));
        attrs.push(KeyValue::new(
            "gen_ai.usage.output_tokens",
            n(a.usage.output),
        ));
        attrs.push(KeyValue::new(
            "switchyard.cost_usd",
            match (&a.cost_usd, a.cost_unknown) {
                (Some(c), false) => c.normalize().to_string(),
                _ => "unknown".to_owned(),
            },
        ));
    }
    attrs
}

/// One finished call, as its span shows it.
pub struct CallSpan<'a> {
    /// `gen_ai.operation.name`.
    pub op: &'static str,
    /// Its role, tokens, cost and outcome.
    pub attempt: &'a LedgerAttempt,
    /// `gen_ai.response.finish_reasons` (none: not set).
    pub finish_reasons: &'a [String],
    pub started: SystemTime,
    pub ended: SystemTime,
}

/// Records the span of one finished call. Never blocks (a full export queue drops it).
pub fn record_call(parent: &Parent, child: &Child, call: CallSpan<'_>) {
    let CallSpan {
        op,
        attempt,
        finish_reasons,
        started,
        ended,
    } = call;
    let Some(t) = super::TELEMETRY.get() else {
        return;
    };
    if !parent.sampled() {
        return;
    }
    let cx = Context::new().with_remote_span_context(SpanContext::new(
        parent.ids.trace_id,
        parent.ids.request_span,
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    ));
    let mut span = t
        .tracer
        .span_builder(format!("{op} {}", attempt.model))
        .with_kind(SpanKind::Client)
        .with_span_id(child.span)
        .with_start_time(started)
        .with_attributes({
            let mut attrs = attempt_attributes(op, attempt);
            if !finish_reasons.is_empty() {
                attrs.push(super::spans::finish_reasons(finish_reasons));
            }
            attrs
        })
        .with_status(match &attempt.error_class {
            Some(e) => Status::error(e.clone()),
            None => Status::Unset,
        })
        .start_with_context(&t.tracer, &cx);
    span.end_with_timestamp(ended.max(started));
}
