//! What a provider's answer means for the request: return it, try again elsewhere, or retire
//! the key that got it.

/// The decision for one provider response status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Success or a client error the provider was right about (400, 404, 413, 422...):
    /// return it to the client as is.
    Final,
    /// Transient (408, 429, 5xx, Anthropic 529): another target, or this one after backoff,
    /// may succeed.
    Retry,
    /// The provider rejected our key (401): retire this key, try the next one. A 403 is not
    /// treated so: providers use it for a model or project the key may not use, which another
    /// key would not fix, and retiring keys on it would let one client's request rest them all.
    BadKey,
}

pub fn classify_status(status: u16) -> Verdict {
    match status {
        401 => Verdict::BadKey,
        408 | 425 | 429 => Verdict::Retry,
        500..=599 => Verdict::Retry, // includes Anthropic's 529 "overloaded"
        _ => Verdict::Final,
    }
}

/// A short, stable name for an error, for logs, attempts and metrics.
pub fn status_class(status: u16) -> &'static str {
    match status {
        401 | 403 => "auth",
        408 => "timeout",
        429 => "rate_limited",
        529 => "overloaded",
        500..=599 => "server_error",
        400..=499 => "client_error",
        _ => "ok",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_only_what_another_attempt_can_fix() {
        for s in [408, 429, 500, 502, 503, 504, 529] {
            assert_eq!(classify_status(s), Verdict::Retry, "{s}");
        }
        for s in [200, 400, 404, 413, 422] {
            assert_eq!(classify_status(s), Verdict::Final, "{s}");
        }
        assert_eq!(classify_status(401), Verdict::BadKey);
        assert_eq!(classify_status(403), Verdict::Final);
        assert_eq!(status_class(529), "overloaded");
    }
}
