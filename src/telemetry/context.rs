//! W3C trace context: the incoming `traceparent` and the ids of a request's spans.
//!
//! The ids are derived from the request id (a hash), not stored: the upstream request filter
//! (which sends `traceparent` to the provider) and the finished request (which builds the
//! spans) compute the same ids without anything added to the proxy's per-request state.

use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use sha2::{Digest, Sha256};

/// The ids of one request's trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceIds {
    pub trace_id: TraceId,
    /// The caller's span, when the request came with a valid `traceparent`.
    pub parent: Option<SpanId>,
    pub flags: TraceFlags,
    /// The gateway's span for the request.
    pub request_span: SpanId,
}

/// A valid `traceparent` value: trace id, parent span id, flags. Version `00` must be exactly
/// 55 characters; later versions may append fields; `ff` and all-zero ids are invalid.
pub fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let v = value.trim();
    let mut parts = v.splitn(5, '-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !lower_hex(version, 2) || version == "ff" || !lower_hex(trace, 32) || !lower_hex(span, 16) {
        return None;
    }
    if !lower_hex(flags, 2) || (version == "00" && v.len() != 55) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id, span_id, TraceFlags::new(flags & 1)))
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn span_id(bytes: &[u8]) -> SpanId {
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[..8]);
    if id == [0; 8] {
        id[7] = 1;
    }
    SpanId::from_bytes(id)
}

/// The trace of request `request_id`: the caller's (from `traceparent`) or a new one.
pub fn ids(request_id: &str, traceparent: Option<&str>) -> TraceIds {
    let request_span = span_id(&digest(&[b"switchyard-span\0", request_id.as_bytes()]));
    match traceparent.and_then(parse_traceparent) {
        Some((trace_id, parent, flags)) => TraceIds {
            trace_id,
            parent: Some(parent),
            flags,
            request_span,
        },
        None => {
            let d = digest(&[b"switchyard-trace\0", request_id.as_bytes()]);
            let mut id = [0u8; 16];
            id.copy_from_slice(&d[..16]);
            if id == [0; 16] {
                id[15] = 1;
            }
            TraceIds {
                trace_id: TraceId::from_bytes(id),
                parent: None,
                flags: TraceFlags::SAMPLED,
                request_span,
            }
        }
    }
}

/// The span of attempt `idx` (its index among the request's attempts).
pub fn attempt_span(request_id: &str, idx: usize) -> SpanId {
    span_id(&digest(&[
        b"switchyard-attempt\0",
        request_id.as_bytes(),
        &(idx as u64).to_le_bytes(),
    ]))
}

/// The `traceparent` sent to a provider for an attempt span.
pub fn traceparent(ids: &TraceIds, span: SpanId) -> String {
    format!("00-{}-{}-{:02x}", ids.trace_id, span, ids.flags.to_u8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_parsed_strictly_and_continued() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (t, s, f) = parse_traceparent(tp).unwrap();
        assert_eq!(t.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s.to_string(), "00f067aa0ba902b7");
        assert!(f.is_sampled());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
        assert!(parse_traceparent(&format!("01{}-later", &tp[2..])).is_some());

        let ids = ids("req_1", Some(tp));
        assert_eq!(ids.trace_id, t);
        assert_eq!(ids.parent, Some(s));
        let out = traceparent(&ids, attempt_span("req_1", 1));
        assert!(
            out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{out}"
        );
        assert_ne!(attempt_span("req_1", 0), attempt_span("req_1", 1));
        assert_eq!(attempt_span("req_1", 1), attempt_span("req_1", 1));
        // No caller: a new trace per request, the same for both sides of the request.
        let own = super::ids("req_1", None);
        assert_eq!(own, super::ids("req_1", Some("garbage")));
        assert_ne!(own.trace_id, super::ids("req_2", None).trace_id);
    }
}
