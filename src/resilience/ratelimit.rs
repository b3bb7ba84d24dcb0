//! Reads providers' rate-limit headers into "how long should this key rest".
//!
//! - `retry-after`: seconds, or an HTTP date (RFC 9110, read by the `httpdate` crate);
//!   `retry-after-ms` (OpenAI) too.
//! - OpenAI / Groq / most OpenAI-compatible: `x-ratelimit-remaining-requests|tokens` and
//!   `x-ratelimit-reset-requests|tokens` as durations like `1s`, `6m0s`, `120ms`, `2.5s`.
//! - Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-remaining`
//!   and `...-reset` as RFC 3339 times.

use crate::calendar::days_from_civil;
use http::HeaderMap;
use std::time::{Duration, SystemTime};

/// What the headers say about the key that got this response.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RateLimitInfo {
    /// Explicit instruction to wait (from `retry-after*`).
    pub retry_after: Option<Duration>,
    /// The smallest "remaining" across request and token budgets, if reported.
    pub remaining: Option<u64>,
    /// When the exhausted (or lowest) budget resets, if reported.
    pub reset_in: Option<Duration>,
}

impl RateLimitInfo {
    /// The key is out of budget (or about to be): rest until the reset.
    pub fn exhausted(&self) -> bool {
        self.remaining == Some(0)
    }
}

/// (remaining, reset) header pairs, per budget.
const OPENAI_BUDGETS: [(&str, &str); 2] = [
    (
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
    ),
    ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
];
const ANTHROPIC_BUDGETS: [(&str, &str); 4] = [
    (
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
    ),
    (
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    ),
    (
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ),
    (
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ),
];

/// The longest rest a provider's headers can impose on a key: whatever a provider says (a
/// misconfigured `retry-after: 1e20`), a key is back in rotation within this.
pub const MAX_REST: Duration = Duration::from_secs(3600);

/// A provider-supplied number of seconds as a duration: finite, not negative, capped at
/// [`MAX_REST`] (`Duration::from_secs_f64` would panic on huge values).
fn seconds(secs: f64) -> Option<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(secs).map_or(MAX_REST, |d| d.min(MAX_REST)))
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

pub fn parse(h: &HeaderMap, now: SystemTime) -> RateLimitInfo {
    let mut info = RateLimitInfo {
        retry_after: header(h, "retry-after-ms")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .and_then(|ms| seconds(ms / 1000.0))
            .or_else(|| header(h, "retry-after").and_then(|v| retry_after(v, now))),
        ..Default::default()
    };
    // Most answers carry no budget headers: one pass over the names saves a dozen lookups.
    let has_budgets = h.keys().any(|k| {
        let n = k.as_str();
        n.starts_with("x-ratelimit-") || n.starts_with("anthropic-ratelimit-")
    });
    if !has_budgets {
        return info;
    }
    let mut lowest: Option<(u64, Option<Duration>)> = None;
    let mut consider = |remaining: Option<u64>, reset: Option<Duration>| {
        if let Some(r) = remaining {
            if lowest.is_none_or(|(l, _)| r < l) {
                lowest = Some((r, reset));
            }
        }
    };
    for (remaining, reset) in OPENAI_BUDGETS {
        consider(
            header(h, remaining).and_then(|v| v.parse().ok()),
            header(h, reset).and_then(go_duration),
        );
    }
    for (remaining, reset) in ANTHROPIC_BUDGETS {
        consider(
            header(h, remaining).and_then(|v| v.parse().ok()),
            header(h, reset).and_then(|v| rfc3339_in(v, now)),
        );
    }
    if let Some((r, reset)) = lowest {
        info.remaining = Some(r);
        info.reset_in = reset;
    }
    info
}

fn retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = v.parse::<f64>() {
        return seconds(secs);
    }
    httpdate_in(v, now)
}

/// Go-style durations as OpenAI sends them: `1s`, `6m0s`, `1h2m3s`, `120ms`, `2.5s` (or a
/// bare number of seconds), read by the shared [`crate::duration`] parser and capped at
/// [`MAX_REST`].
pub fn go_duration(v: &str) -> Option<Duration> {
    use crate::duration::DurationError;
    if let Ok(secs) = v.trim().parse::<f64>() {
        return seconds(secs);
    }
    match crate::duration::parse(v) {
        Ok(d) => Some(d.min(MAX_REST)),
        Err(DurationError::TooLarge(_)) => Some(MAX_REST),
        Err(_) => None,
    }
}

/// An HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`, or the obsolete RFC 850 and asctime forms)
/// -> time from now (zero if past), capped at [`MAX_REST`].
fn httpdate_in(v: &str, now: SystemTime) -> Option<Duration> {
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(now)
            .map_or(Duration::ZERO, |d| d.min(MAX_REST)),
    )
}

/// `2026-11-25T09:00:30Z` (or with a fraction / offset `+00:00`) -> time from now.
fn rfc3339_in(v: &str, now: SystemTime) -> Option<Duration> {
    let (date, time) = v.split_once('T')?;
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 {
        return None;
    }
    let (year, month, day): (i64, u32, u32) =
        (d[0].parse().ok()?, d[1].parse().ok()?, d[2].parse().ok()?);
    if !plausible_date(year, month, day) {
        return None;
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0i64)
    } else {
        let idx = time.rfind(['+', '-'])?;
        let (c, off) = time.split_at(idx);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        let (oh, om) = (oh.parse::<i64>().ok()?, om.parse::<i64>().ok()?);
        if !(0..=99).contains(&oh) || !(0..=99).contains(&om) {
            return None;
        }
        (c, sign * (oh * 3600 + om * 60))
    };
    let t: Vec<&str> = clock.split(':').collect();
    if t.len() != 3 {
        return None;
    }
    let secs: f64 = t[2].parse().ok()?;
    let (h, m): (i64, i64) = (t[0].parse().ok()?, t[1].parse().ok()?);
    if !(0..=99).contains(&h) || !(0..=99).contains(&m) || !secs.is_finite() {
        return None;
    }
    let base = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 - offset;
    until(base as f64 + secs, now)
}

fn plausible_date(year: i64, month: u32, day: u32) -> bool {
    (1..=9999).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn until(epoch_secs: f64, now: SystemTime) -> Option<Duration> {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    seconds((epoch_secs - now).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn at(epoch: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(epoch)
    }

    #[test]
    fn hostile_values_never_panic_and_rests_are_capped() {
        let now = at(1_795_000_000);
        for (k, v) in [
            ("retry-after", "1e20"),
            ("retry-after", "18446744073709551615"),
            ("retry-after-ms", "1e300"),
            ("x-ratelimit-reset-requests", "99999999999999999999s"),
            (
                "anthropic-ratelimit-requests-reset",
                "2026-11-18T08:53:1e300Z",
            ),
            ("retry-after", "Wed, 21 Oct 999999999999999999 07:28:00 GMT"),
            (
                "anthropic-ratelimit-requests-reset",
                "999999999999-11-18T08:53:50Z",
            ),
            (
                "anthropic-ratelimit-requests-reset",
                "2026-11-18T99999999999:53:50Z",
            ),
        ] {
            let mut h = headers(&[(k, v)]);
            h.insert("x-ratelimit-remaining-requests", "0".parse().unwrap());
            h.insert(
                "anthropic-ratelimit-requests-remaining",
                "0".parse().unwrap(),
            );
            let i = parse(&h, now);
            assert!(
                i.retry_after.is_none_or(|d| d <= MAX_REST),
                "{k}: {v}: {i:?}"
            );
            assert!(i.reset_in.is_none_or(|d| d <= MAX_REST), "{k}: {v}: {i:?}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(go_duration("120ms"), Some(Duration::from_millis(120)));
        assert_eq!(go_duration("2.5s"), Some(Duration::from_millis(2500)));
        assert_eq!(go_duration("58m3s"), Some(Duration::from_secs(3483)));
        assert_eq!(go_duration("1h2m3s"), Some(MAX_REST), "capped");
        assert_eq!(go_duration("soon"), None);
        assert_eq!(go_duration("5124095576030431h"), Some(MAX_REST));
        assert_eq!(go_duration("99999999999999999999999h"), Some(MAX_REST));
        assert_eq!(go_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(go_duration(""), None);
    }

    #[test]
    fn retry_after_forms() {
        let now = at(1_445_412_470); // 2015-10-21T07:27:50Z
        assert_eq!(
            parse(&headers(&[("retry-after", "7")]), now).retry_after,
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse(&headers(&[("retry-after-ms", "250")]), now).retry_after,
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse(
                &headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]),
                now
            )
            .retry_after,
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse(&headers(&[("retry-after", "later")]), now).retry_after,
            None
        );
        // The obsolete forms a server may still send, and a date already past.
        for v in [
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28:00 2015",
        ] {
            assert_eq!(
                parse(&headers(&[("retry-after", v)]), now).retry_after,
                Some(Duration::from_secs(10)),
                "{v}"
            );
        }
        assert_eq!(
            parse(
                &headers(&[("retry-after", "Wed, 21 Oct 2015 07:27:00 GMT")]),
                now
            )
            .retry_after,
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse(
                &headers(&[("retry-after", "Wed, 32 Oct 2015 07:28:00 GMT")]),
                now
            )
            .retry_after,
            None
        );
    }

    #[test]
    fn openai_and_anthropic_budgets() {
        let now = at(1_795_000_000);
        let i = parse(
            &headers(&[
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "2s"),
                ("x-ratelimit-remaining-tokens", "9000"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ]),
            now,
        );
        assert!(i.exhausted());
        assert_eq!(i.reset_in, Some(Duration::from_secs(2)));
        // 1_795_000_030 = 2026-11-18T...:30Z; build the RFC 3339 string from the epoch.
        let reset = "2026-11-18T08:53:50Z";
        let base =
            (crate::calendar::days_from_civil(2026, 11, 18) * 86_400 + 8 * 3600 + 53 * 60 + 50)
                as u64;
        let i = parse(
            &headers(&[
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", reset),
            ]),
            at(base - 30),
        );
        assert!(i.exhausted());
        assert_eq!(i.reset_in, Some(Duration::from_secs(30)));
        assert_eq!(
            rfc3339_in("1970-01-01T01:00:00+01:00", at(0)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            rfc3339_in("1970-01-01T00:00:10.5Z", at(0)),
            Some(Duration::from_millis(10_500))
        );
        assert!(!parse(&HeaderMap::new(), now).exhausted());
    }
}
