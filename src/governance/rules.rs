//! What a gateway key or a feature tag may do: requests and tokens per minute, a spend budget
//! per calendar period (UTC), and how its request bodies are logged.
//!
//! Money is exact ([`Decimal`]); the limit stores count it in whole nano-dollars
//! ([`to_nanos`]), rounding every cost *up*, so a budget is never under-charged.

use crate::calendar::{civil_from_days, days_from_civil};
use rust_decimal::Decimal;
use std::fmt;
use std::str::FromStr;

/// Limits of one key or feature; every part is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute (prompt + completion).
    pub tpm: Option<u64>,
    pub budget: Option<Budget>,
}

impl Rule {
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.budget.is_none()
    }
}

/// A spend budget: at most `usd` per `period`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    pub usd: Decimal,
    pub period: Period,
}

/// Largest budget the stores count exactly (nano-dollars in 53 bits, as Redis' Lua sees them).
pub const MAX_BUDGET_USD: i64 = 9_000_000;

/// A calendar period in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    Day,
    /// ISO weeks: Monday 00:00 UTC to the next Monday.
    Week,
    Month,
    /// Never resets.
    Total,
}

const MS_PER_DAY: i64 = 86_400_000;

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Total => "total",
        }
    }

    /// The period containing `now_ms` (unix ms): its start and end (`None` for `total`), in
    /// unix ms.
    pub fn bounds(self, now_ms: i64) -> (i64, Option<i64>) {
        let day = now_ms.div_euclid(MS_PER_DAY);
        let (start_day, end_day) = match self {
            Period::Total => return (0, None),
            Period::Day => (day, day + 1),
            Period::Week => {
                // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday = 0.
                let monday = day - (day + 3).rem_euclid(7);
                (monday, monday + 7)
            }
            Period::Month => {
                let (y, m, _) = civil_from_days(day);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (days_from_civil(y, m, 1), days_from_civil(ny, nm, 1))
            }
        };
        (start_day * MS_PER_DAY, Some(end_day * MS_PER_DAY))
    }

    /// A stable name of the period containing `now_ms`: `d20260503`, `w20260427` (its
    /// Monday), `m202605`, `total`.
    pub fn id(self, now_ms: i64) -> String {
        let (start, _) = self.bounds(now_ms);
        let (y, m, d) = civil_from_days(start.div_euclid(MS_PER_DAY));
        match self {
            Period::Day => format!("d{y:04}{m:02}{d:02}"),
            Period::Week => format!("w{y:04}{m:02}{d:02}"),
            Period::Month => format!("m{y:04}{m:02}"),
            Period::Total => "total".to_owned(),
        }
    }
}

impl FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Period, String> {
        match s.trim() {
            "day" => Ok(Period::Day),
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            "total" => Ok(Period::Total),
            other => Err(format!(
                "unknown period `{other}`; expected day, week, month or total"
            )),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Unix ms as `2026-05-04T00:00:00Z`.
pub fn rfc3339(ms: i64) -> String {
    let (y, mo, d) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let in_day = ms.rem_euclid(MS_PER_DAY) / 1000;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    )
}

/// A duration as [`crate::duration::parse`] reads it (`30s`, `30d`, `2w`).
pub fn parse_span(text: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse(text).map_err(|e| e.to_string())
}

/// USD -> whole nano-dollars, rounded up (`None` past the counters' range).
pub fn to_nanos(usd: Decimal) -> Option<i64> {
    let n = (usd * Decimal::from(1_000_000_000u64)).ceil();
    i64::try_from(n).ok()
}

/// Whole nano-dollars -> USD.
pub fn from_nanos(n: i64) -> Decimal {
    Decimal::new(n, 9).normalize()
}

/// How much of a request and its answer is kept in the ledger store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogBodies {
    /// Metadata only (the ledger row).
    #[default]
    None,
    /// Bodies with e-mail addresses, card numbers, API keys, bearer tokens and configured
    /// patterns replaced by `[REDACTED:<kind>]`.
    Redacted,
    /// Bodies as they were.
    Full,
}

impl LogBodies {
    pub fn as_str(self) -> &'static str {
        match self {
            LogBodies::None => "none",
            LogBodies::Redacted => "redacted",
            LogBodies::Full => "full",
        }
    }

    /// The rule for a request: the most protective of the key's and the route's, where set
    /// (neither set: `none`). A route can ask for less logging than a key, never force more
    /// over a key's own choice, and the other way round.
    pub fn effective(key: Option<LogBodies>, route: Option<LogBodies>) -> LogBodies {
        match (key, route) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => LogBodies::None,
        }
    }
}

impl FromStr for LogBodies {
    type Err = String;
    fn from_str(s: &str) -> Result<LogBodies, String> {
        match s.trim() {
            "none" => Ok(LogBodies::None),
            "redacted" => Ok(LogBodies::Redacted),
            "full" => Ok(LogBodies::Full),
            other => Err(format!(
                "unknown log_bodies `{other}`; expected none, full or redacted"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(y: i64, m: u32, d: u32, h: i64) -> i64 {
        days_from_civil(y, m, d) * MS_PER_DAY + h * 3_600_000
    }

    #[test]
    fn periods_are_utc_calendar_periods() {
        let now = ms(2026, 5, 3, 13); // a Sunday
        assert_eq!(
            Period::Day.bounds(now),
            (ms(2026, 5, 3, 0), Some(ms(2026, 5, 4, 0)))
        );
        assert_eq!(
            Period::Week.bounds(now),
            (ms(2026, 4, 27, 0), Some(ms(2026, 5, 4, 0)))
        );
        assert_eq!(
            Period::Month.bounds(now),
            (ms(2026, 5, 1, 0), Some(ms(2026, 6, 1, 0)))
        );
        assert_eq!(
            Period::Month.bounds(ms(2026, 12, 31, 23)).1,
            Some(ms(2027, 1, 1, 0))
        );
        assert_eq!(Period::Total.bounds(now), (0, None));
        assert_eq!(Period::Day.id(now), "d20260503");
        assert_eq!(Period::Week.id(now), "w20260427");
        assert_eq!(Period::Week.id(ms(2026, 5, 4, 0)), "w20260504");
        assert_eq!(Period::Month.id(now), "m202605");
        assert_eq!(rfc3339(ms(2026, 5, 4, 0) + 61_000), "2026-05-04T00:01:01Z");
    }

    #[test]
    fn spans_take_days_and_weeks() {
        assert_eq!(parse_span("30d").unwrap().as_secs(), 30 * 86_400);
        assert_eq!(parse_span("2w").unwrap().as_secs(), 14 * 86_400);
        assert_eq!(parse_span("1h").unwrap().as_secs(), 3600);
        assert!(parse_span("3y").is_err());
    }

    #[test]
    fn nanos_round_up_and_back() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(to_nanos(d("0.000000001")), Some(1));
        assert_eq!(to_nanos(d("0.0000000001")), Some(1));
        assert_eq!(to_nanos(d("25.00")), Some(25_000_000_000));
        assert_eq!(from_nanos(25_000_000_000), d("25"));
        assert_eq!(from_nanos(1_500), d("0.0000015"));
    }

    #[test]
    fn logging_takes_the_most_protective_explicit_choice() {
        use LogBodies::{Full, Redacted};
        assert_eq!(LogBodies::effective(None, None), LogBodies::None);
        assert_eq!(LogBodies::effective(Some(Full), None), Full);
        assert_eq!(LogBodies::effective(None, Some(Redacted)), Redacted);
        assert_eq!(LogBodies::effective(Some(Full), Some(Redacted)), Redacted);
        assert_eq!(
            LogBodies::effective(Some(LogBodies::None), Some(Full)),
            LogBodies::None
        );
    }
}
