//! The one parser for written durations: config values (`"250ms"`, `"30s"`, `"1m30s"`),
//! report windows (`"7d"`, `"2w"`) and providers' rate-limit resets (Go style: `"6m0s"`,
//! `"2.5s"`, `"120ms"`).
//!
//! A duration is one or more `<number><unit>` groups, summed. The number is decimal, with an
//! optional fraction (`1.5h`); units are `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, `d` and `w`.
//! A bare number has no unit and is refused (callers that accept plain seconds say so
//! themselves). Arithmetic is exact (integer nanoseconds) and checked: a value too large for a
//! [`Duration`] is an error, never a wrap or a panic.
//!
//! Also here: [`Bound`], the largest value a configured duration may take (checked at
//! validation, so `Instant + Duration` cannot overflow at request time), and [`later`], the
//! checked `Instant + Duration` for values that come from outside (client headers).

use std::fmt;
use std::time::Duration;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    Empty,
    /// A number without a unit (`"30"`).
    NoUnit(String),
    /// Not a number where one was expected.
    NotADuration(String),
    UnknownUnit(String),
    /// Larger than a [`Duration`] holds.
    TooLarge(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HINT: &str = "write e.g. \"500ms\", \"30s\", \"5m\", \"1h30m\"";
        match self {
            DurationError::Empty => write!(f, "empty duration; {HINT}"),
            DurationError::NoUnit(t) => write!(f, "`{t}` has no unit; {HINT}"),
            DurationError::NotADuration(t) => write!(f, "`{t}` is not a duration; {HINT}"),
            DurationError::UnknownUnit(u) => write!(
                f,
                "unknown duration unit `{u}`; use ms, s, m, h, d or w (or ns, us)"
            ),
            DurationError::TooLarge(t) => write!(f, "`{t}` is too large a duration"),
        }
    }
}

impl std::error::Error for DurationError {}

const NANOS_PER_SEC: u128 = 1_000_000_000;

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        "d" => 86_400 * NANOS_PER_SEC,
        "w" => 7 * 86_400 * NANOS_PER_SEC,
        _ => return None,
    })
}

/// Parses a duration; see the module docs for the grammar.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    let too_large = || DurationError::TooLarge(t.to_owned());
    let mut rest = t;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(n)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(DurationError::NotADuration(t.to_owned()));
        }
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::NoUnit(t.to_owned()));
        }
        let per = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit(unit.to_owned()))?;
        // Exact: the integer part times the unit, plus the fraction's digits scaled down.
        let whole: u128 = if int.is_empty() {
            0
        } else {
            int.parse::<u128>().map_err(|_| too_large())?
        };
        let mut part = whole.checked_mul(per).ok_or_else(too_large)?;
        if !frac.is_empty() {
            // Digits past nanosecond precision of the largest unit change nothing.
            let digits = &frac[..frac.len().min(18)];
            let num: u128 = digits.parse().map_err(|_| too_large())?;
            let den = 10u128.pow(digits.len() as u32);
            part = part.checked_add(num * per / den).ok_or_else(too_large)?;
        }
        total = total.checked_add(part).ok_or_else(too_large)?;
        rest = after.trim_start();
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| too_large())?;
    Ok(Duration::new(secs, (total % NANOS_PER_SEC) as u32))
}

/// The largest value a configured duration may take, by what it measures. Each is far below
/// what the clock can add (`Instant + Duration` overflows near 2^63 ns on common platforms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A request's deadline, timeouts, backoff, delays, a drain period: one day.
    Request,
    /// How long a key rests or a circuit stays open: 30 days.
    Rest,
    /// How long a cached answer lives: one year.
    CacheTtl,
}

const DAY: Duration = Duration::from_secs(86_400);

impl Bound {
    pub const fn max(self) -> Duration {
        match self {
            Bound::Request => DAY,
            Bound::Rest => Duration::from_secs(30 * 86_400),
            Bound::CacheTtl => Duration::from_secs(365 * 86_400),
        }
    }

    fn written(self) -> &'static str {
        match self {
            Bound::Request => "24h",
            Bound::Rest => "30d",
            Bound::CacheTtl => "365d",
        }
    }

    /// `d` if within the bound, else the message for the config error.
    pub fn check(self, d: Duration) -> Result<Duration, String> {
        if d <= self.max() {
            Ok(d)
        } else {
            Err(format!("must be at most {} (got {d:?})", self.written()))
        }
    }
}

/// Parses a configured duration and checks it against its bound.
pub fn parse_bounded(text: &str, bound: Bound) -> Result<Duration, String> {
    let d = parse(text).map_err(|e| e.to_string())?;
    bound.check(d)
}

/// `at + d`, or, when that is past what the clock can hold, the latest time within a year of
/// `at` it can (in practice: never reached). For durations that come from outside.
pub fn later(at: tokio::time::Instant, d: Duration) -> tokio::time::Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Bound::CacheTtl.max()))
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn single_units() {
        assert_eq!(parse("250ms"), Ok(ms(250)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse("30 s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5ns"), Ok(Duration::from_nanos(5)));
        assert_eq!(parse("5us"), Ok(Duration::from_micros(5)));
        assert_eq!(parse("5µs"), Ok(Duration::from_micros(5)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn go_style_compounds_and_fractions() {
        assert_eq!(parse("6m0s"), Ok(Duration::from_secs(360)));
        assert_eq!(parse("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(parse("2.5s"), Ok(ms(2500)));
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse(".5s"), Ok(ms(500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("0.000000001s"), Ok(Duration::from_nanos(1)));
        assert_eq!(parse("7.5d"), Ok(Duration::from_secs(7 * 86_400 + 43_200)));
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("30"), Err(DurationError::NoUnit("30".into())));
        assert_eq!(parse("1m30"), Err(DurationError::NoUnit("1m30".into())));
        assert_eq!(parse("s"), Err(DurationError::NotADuration("s".into())));
        assert_eq!(parse("-7d"), Err(DurationError::NotADuration("-7d".into())));
        assert_eq!(parse("."), Err(DurationError::NotADuration(".".into())));
        assert_eq!(
            parse("3 days"),
            Err(DurationError::UnknownUnit("days".into()))
        );
        assert_eq!(
            parse("soon"),
            Err(DurationError::NotADuration("soon".into()))
        );
        let msg = parse("30").unwrap_err().to_string();
        assert!(msg.contains("has no unit"), "{msg}");
    }

    #[test]
    fn too_large_for_the_clock_is_an_error_not_a_panic() {
        for t in [
            "18446744073709551616s",
            "99999999999999999999999999999999999999999d",
            "600000000000000000w",
            "18446744073709551615s1s",
        ] {
            assert_eq!(parse(t), Err(DurationError::TooLarge(t.into())), "{t}");
        }
        // The largest a Duration holds still parses.
        assert_eq!(
            parse("18446744073709551615s"),
            Ok(Duration::from_secs(u64::MAX))
        );
        // Fits a Duration, but not `Instant + Duration`: the config bounds it (`Bound`).
        assert!(parse("5124095576030431h").is_ok());
    }

    #[test]
    fn bounds_by_kind() {
        assert_eq!(parse_bounded("24h", Bound::Request), Ok(DAY));
        let e = parse_bounded("25h", Bound::Request).unwrap_err();
        assert!(e.contains("at most 24h"), "{e}");
        assert!(parse_bounded("30d", Bound::Rest).is_ok());
        assert!(parse_bounded("31d", Bound::Rest).is_err());
        assert!(parse_bounded("365d", Bound::CacheTtl).is_ok());
        assert!(parse_bounded("366d", Bound::CacheTtl).is_err());
        let e = parse_bounded("5124095576030431h", Bound::Request).unwrap_err();
        assert!(e.contains("at most 24h"), "{e}");
        let e = parse_bounded("18446744073709551616s", Bound::Request).unwrap_err();
        assert!(e.contains("too large"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn later_never_panics() {
        let now = tokio::time::Instant::now();
        assert_eq!(later(now, ms(5)), now + ms(5));
        let far = later(now, Duration::MAX);
        assert!(far >= now);
    }
}
