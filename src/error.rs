//! One error type for everything the gateway answers on its own.
//!
//! A [`GatewayError`] carries a kind (which decides the HTTP status and the error type each
//! dialect reports), a human-readable message, and whether another attempt could succeed.
//! It never carries a secret: messages are written for the client to read.

use std::fmt;

/// What went wrong, in terms a client can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed: bad JSON, a missing field, a dialect the target cannot speak.
    BadRequest,
    /// No or wrong gateway key.
    Unauthorized,
    /// The gateway key may not use this model.
    Forbidden,
    /// The model or route does not exist.
    ModelNotFound,
    /// No such endpoint.
    NotFound,
    /// The endpoint exists, the method does not.
    MethodNotAllowed,
    /// The request body is over the configured limit.
    PayloadTooLarge,
    /// The client did not send its whole request body within the request's deadline.
    RequestTimeout,
    /// Every target is rate limited for longer than the gateway will wait, or the gateway key
    /// or feature is over its own rate limit.
    RateLimited,
    /// The gateway key's or feature's spend budget for the period is used up.
    BudgetExceeded,
    /// Every target is unavailable for now (circuits open, keys resting).
    Unavailable,
    /// The provider could not be reached or failed in a way the gateway cannot hide.
    UpstreamUnavailable,
    /// The provider did not answer in time.
    UpstreamTimeout,
    /// A bug or an unexpected state inside the gateway.
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::ModelNotFound | ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::RequestTimeout => 408,
            ErrorKind::RateLimited => 429,
            ErrorKind::BudgetExceeded => 402,
            ErrorKind::Unavailable => 503,
            ErrorKind::UpstreamUnavailable => 502,
            ErrorKind::UpstreamTimeout => 504,
            ErrorKind::Internal => 500,
        }
    }

    /// A stable snake_case name, for ledger rows, logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::UpstreamUnavailable => "upstream_unavailable",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether trying again (another target, later) could succeed.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::UpstreamUnavailable
                | ErrorKind::UpstreamTimeout
                | ErrorKind::RateLimited
                | ErrorKind::Unavailable
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub message: String,
    /// The request field the error is about, when there is one (OpenAI's `param`).
    pub param: Option<std::borrow::Cow<'static, str>>,
    /// When the client may try again (sent as `retry-after`).
    pub retry_after: Option<std::time::Duration>,
    /// A more specific error code than the kind's, for dialects that report one (OpenAI's
    /// `code`, e.g. `previous_response_not_found`).
    pub code: Option<&'static str>,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        GatewayError {
            kind,
            message: message.into(),
            param: None,
            retry_after: None,
            code: None,
        }
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn with_param(mut self, param: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for GatewayError {}
