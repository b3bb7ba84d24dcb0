//! Why one outbound attempt failed, in terms a caller walking candidates can act on. An error
//! names the provider, the model and the key's index, never a key: its context comes from the
//! gateway's own words and pingora's (addresses, timeouts), never from a request header.

use super::AttemptInfo;
use crate::providers::admit::Skip;
use crate::resilience::classify::status_class;
use pingora_error::ErrorType;
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboundErrorKind {
    /// The target could not be tried now: no usable key, circuit open, every key resting, or
    /// its host does not resolve. Nothing was sent.
    Unavailable(Skip),
    /// The connection could not be opened (refused, unreachable).
    Connect,
    /// The deadline, or the provider's connect or read timeout, ran out.
    Timeout,
    /// The TLS handshake failed (an untrusted or invalid certificate): a configuration
    /// problem, not a blip, so this target should not be tried again for the same request.
    Tls,
    /// The provider answered with a status another attempt may fix: 408, 429, 5xx, or a 401
    /// that retired the key. The (small) answer was read and dropped.
    Status(u16),
    /// The exchange broke: the connection closed or reset, or the answer was not valid HTTP.
    Protocol,
    /// The request cannot be made as given (an unknown provider, a header that is not valid).
    Invalid,
}

/// One failed outbound attempt.
#[derive(Clone, Debug)]
pub struct OutboundError {
    pub kind: OutboundErrorKind,
    /// Whether another attempt (at this target or another) may succeed, judged as for
    /// proxied attempts: transient failures before the deadline. A caller that has already
    /// passed bytes of this answer on must not retry, whatever this says.
    pub retryable: bool,
    /// How long the provider asked to wait (`retry-after`), for a [`OutboundErrorKind::Status`].
    pub retry_after: Option<Duration>,
    /// What happened, for logs and error messages; never holds a key.
    pub context: String,
    /// The attempt, as far as it went (a skipped target has no key and zero elapsed time).
    pub attempt: AttemptInfo,
    class: String,
}

impl OutboundError {
    pub(crate) fn new(
        kind: OutboundErrorKind,
        class: impl Into<String>,
        context: impl Into<String>,
        attempt: AttemptInfo,
        deadline: Instant,
    ) -> OutboundError {
        let retryable = kind != OutboundErrorKind::Invalid && Instant::now() < deadline;
        OutboundError {
            kind,
            retryable,
            retry_after: None,
            context: context.into(),
            attempt,
            class: class.into(),
        }
    }

    /// A target that cannot be tried now (others may be, before the deadline).
    pub(crate) fn skipped(why: Skip, attempt: AttemptInfo, deadline: Instant) -> OutboundError {
        let context = format!("not tried: {}", why.as_str());
        OutboundError::new(
            OutboundErrorKind::Unavailable(why),
            why.as_str(),
            context,
            attempt,
            deadline,
        )
    }

    /// A provider answer dropped for its status.
    pub(crate) fn status(
        status: u16,
        retryable: bool,
        retry_after: Option<Duration>,
        attempt: AttemptInfo,
    ) -> OutboundError {
        OutboundError {
            kind: OutboundErrorKind::Status(status),
            retryable,
            retry_after,
            context: format!("the provider answered {status}"),
            attempt,
            class: status_class(status).to_owned(),
        }
    }

    /// The request's deadline ran out while `doing` (class `deadline`).
    pub(crate) fn deadline(doing: &str, attempt: AttemptInfo) -> OutboundError {
        OutboundError {
            kind: OutboundErrorKind::Timeout,
            retryable: false,
            retry_after: None,
            context: format!("the deadline ran out while {doing}"),
            attempt,
            class: "deadline".to_owned(),
        }
    }

    /// A pingora error from connecting, writing or reading.
    pub(crate) fn transport(
        e: &pingora_error::Error,
        attempt: AttemptInfo,
        deadline: Instant,
    ) -> OutboundError {
        let kind = match e.etype() {
            ErrorType::ConnectTimedout
            | ErrorType::ReadTimedout
            | ErrorType::WriteTimedout
            | ErrorType::TLSHandshakeTimedout => OutboundErrorKind::Timeout,
            ErrorType::ConnectRefused
            | ErrorType::ConnectNoRoute
            | ErrorType::ConnectError
            | ErrorType::ConnectProxyFailure
            | ErrorType::BindError
            | ErrorType::SocketError => OutboundErrorKind::Connect,
            ErrorType::TLSHandshakeFailure
            | ErrorType::InvalidCert
            | ErrorType::TLSWantX509Lookup => OutboundErrorKind::Tls,
            _ => OutboundErrorKind::Protocol,
        };
        OutboundError::new(kind, e.etype().as_str(), e.to_string(), attempt, deadline)
    }

    /// The short, stable name the proxied path records for the same outcome: a skip reason
    /// (`circuit_open`), a status class (`rate_limited`), or pingora's error type
    /// (`ConnectRefused`, `ReadTimedout`, `TLSHandshakeFailure`); `deadline` when the
    /// request's own deadline cut the exchange.
    pub fn class(&self) -> &str {
        &self.class
    }

    /// Whether this target should not be tried again for the same request (its certificate
    /// is not trusted): other targets may still be.
    pub fn excludes_target(&self) -> bool {
        self.kind == OutboundErrorKind::Tls
    }
}

impl fmt::Display for OutboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "provider `{}` model `{}`: {}",
            self.attempt.provider, self.attempt.model, self.context
        )
    }
}

impl std::error::Error for OutboundError {}
