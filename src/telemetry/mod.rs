//! OpenTelemetry traces (`[telemetry] otlp_endpoint`): each request becomes a span, each
//! attempt a child span, exported over OTLP/HTTP (protobuf) by the `opentelemetry` crates.
//!
//! Nothing is traced on the request path: when a request ends, its [`Summary`] (with the
//! attempts' start times and durations) is turned into spans with explicit start and end times
//! ([`spans`]) and handed to a batch span processor: a bounded queue (spans beyond it are
//! dropped) drained by the SDK's own thread, which posts batches to the collector. A dead
//! collector costs the spans of the failed batches and a counter ([`stats`], shown as
//! `switchyard_telemetry{stat}` on `/metrics`), nothing else.
//!
//! Trace context: an incoming W3C `traceparent` is continued (the request span is its child);
//! each attempt's request to the provider carries a `traceparent` naming that attempt's span
//! ([`propagate`]). Span ids are derived from the request id ([`context`]), so the upstream
//! filter and the finished request agree on them without any per-request state.
//!
//! Calls made for a request after its answer (judge and shadow calls) become child spans of
//! the request's span when they end ([`calls`]).
//!
//! Off (no `[telemetry]`), [`propagate`], [`record`] and [`calls::parent_of`] return at once:
//! one atomic load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter,
};
use pingora_http::RequestHeader;

use crate::config::telemetry::TelemetrySettings;
use crate::proxy::ctx::RequestCtx;
use crate::summary::Summary;

pub mod calls;
pub mod context;
mod params;
mod spans;

/// Spans waiting for export; beyond this they are dropped.
const MAX_QUEUE: usize = 8192;
const MAX_BATCH: usize = 512;
const EXPORT_EVERY: Duration = Duration::from_millis(500);
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

struct Telemetry {
    tracer: SdkTracer,
    provider: SdkTracerProvider,
}

static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();

static SPANS_EXPORTED: AtomicU64 = AtomicU64::new(0);
static SPANS_FAILED: AtomicU64 = AtomicU64::new(0);
static EXPORTS_FAILED: AtomicU64 = AtomicU64::new(0);

/// Export counters: spans exported, spans in failed exports, failed exports.
pub fn stats() -> [(&'static str, u64); 3] {
    [
        ("spans_exported", SPANS_EXPORTED.load(Ordering::Relaxed)),
        ("spans_failed", SPANS_FAILED.load(Ordering::Relaxed)),
        ("exports_failed", EXPORTS_FAILED.load(Ordering::Relaxed)),
    ]
}

/// Whether traces are exported.
pub fn enabled() -> bool {
    TELEMETRY.get().is_some()
}

/// Starts the exporter when `[telemetry] otlp_endpoint` is set (once per process; a reload
/// keeps it). Connects lazily: an unreachable collector is not an error.
pub fn start(settings: &TelemetrySettings) -> Result<(), String> {
    let Some(url) = settings.otlp_traces_url.clone() else {
        return Ok(());
    };
    let service = settings.service_name.clone();
    // The HTTP client blocks (it runs on the processor's thread); build it off any runtime.
    let provider = std::thread::spawn(move || -> Result<SdkTracerProvider, String> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| format!("telemetry: cannot build the OTLP exporter: {e}"))?;
        let processor = BatchSpanProcessor::builder(Counting { inner: exporter })
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(MAX_QUEUE)
                    .with_max_export_batch_size(MAX_BATCH)
                    .with_scheduled_delay(EXPORT_EVERY)
                    .build(),
            )
            .build();
        Ok(SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(service)
                    .build(),
            )
            .build())
    })
    .join()
    .map_err(|_| "telemetry: exporter set-up panicked".to_owned())??;
    let tracer = provider.tracer("switchyard");
    let _ = TELEMETRY.set(Telemetry { tracer, provider });
    Ok(())
}

/// Exports what is queued (at shutdown). Blocks up to the export timeout.
pub fn flush() {
    if let Some(t) = TELEMETRY.get() {
        let _ = t.provider.force_flush();
    }
}

/// Sets `traceparent` on the provider request of the current attempt (the last one in
/// `ctx.walk`): the caller's trace, this attempt's span.
pub fn propagate(
    client: &RequestHeader,
    ctx: &RequestCtx,
    upstream: &mut RequestHeader,
) -> pingora_error::Result<()> {
    if !enabled() {
        return Ok(());
    }
    let ids = context::ids(&ctx.id, incoming(client));
    let idx = ctx.walk.attempts.len().saturating_sub(1);
    let value = context::traceparent(&ids, context::attempt_span(&ctx.id, idx));
    upstream.insert_header("traceparent", value)?;
    Ok(())
}

/// Queues the spans of a finished request that started at `began` (the instant its
/// `started_at` was taken; attempts' times are measured from it), whose client sent `body`
/// (read for the request parameters). Never blocks: a full queue drops them.
pub fn record(
    summary: &Summary<'_>,
    began: std::time::Instant,
    client: &RequestHeader,
    body: &[u8],
) {
    if let Some(t) = TELEMETRY.get() {
        spans::record(&t.tracer, summary, began, incoming(client), body);
    }
}

fn incoming(client: &RequestHeader) -> Option<&str> {
    client
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
}

/// The OTLP exporter, counting what it could not deliver.
#[derive(Debug)]
struct Counting<E> {
    inner: E,
}

impl<E: SpanExporter> SpanExporter for Counting<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => SPANS_EXPORTED.fetch_add(n, Ordering::Relaxed),
            Err(_) => {
                EXPORTS_FAILED.fetch_add(1, Ordering::Relaxed);
                SPANS_FAILED.fetch_add(n, Ordering::Relaxed)
            }
        };
        result
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}
