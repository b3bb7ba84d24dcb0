//! Calendar dates (UTC) for price periods: a price takes effect at 00:00 UTC on its
//! `effective` date. Kept as a day number so that comparison is exact and cheap; no time-zone
//! or date-time crate is needed.

use crate::calendar::{civil_from_days, days_from_civil};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A proleptic-Gregorian calendar date, stored as days since 1970-01-01 (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PriceDate {
    days: i64,
}

const SECONDS_PER_DAY: i64 = 86_400;

impl PriceDate {
    /// The date for year/month/day, or `None` if no such day exists (e.g. 2025-02-29).
    pub fn from_ymd(year: i64, month: u32, day: u32) -> Option<PriceDate> {
        if !(1..=9999).contains(&year) || !(1..=12).contains(&month) || day == 0 {
            return None;
        }
        if day > days_in_month(year, month) {
            return None;
        }
        Some(PriceDate {
            days: days_from_civil(year, month, day),
        })
    }

    /// Parses exactly `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<PriceDate> {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = text.get(r)?;
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let year = digits(0..4)?;
        let month = digits(5..7)?;
        let day = digits(8..10)?;
        PriceDate::from_ymd(i64::from(year), month, day)
    }

    /// The UTC date containing the instant `secs` seconds after the Unix epoch.
    pub fn from_unix_seconds(secs: i64) -> PriceDate {
        PriceDate {
            days: secs.div_euclid(SECONDS_PER_DAY),
        }
    }

    /// Today's UTC date by the system clock.
    pub fn today() -> PriceDate {
        let secs = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        };
        PriceDate::from_unix_seconds(secs)
    }

    /// Days since 1970-01-01.
    pub fn days_since_epoch(self) -> i64 {
        self.days
    }

    /// The date `n` days later (earlier for negative `n`).
    pub fn add_days(self, n: i64) -> PriceDate {
        PriceDate {
            days: self.days.saturating_add(n),
        }
    }

    /// (year, month, day).
    pub fn ymd(self) -> (i64, u32, u32) {
        civil_from_days(self.days)
    }
}

impl fmt::Display for PriceDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_order() {
        let d = PriceDate::parse("2025-06-10").unwrap();
        assert_eq!(d.to_string(), "2025-06-10");
        assert_eq!(
            PriceDate::parse("1970-01-01").unwrap().days_since_epoch(),
            0
        );
        assert_eq!(
            PriceDate::parse("2000-03-01").unwrap().days_since_epoch(),
            11_017
        );
        assert!(PriceDate::parse("2024-02-29").is_some());
        assert!(PriceDate::parse("2025-02-29").is_none());
        assert!(PriceDate::parse("2025-6-10").is_none());
        assert!(PriceDate::parse("2025-13-01").is_none());
        assert!(PriceDate::parse("+025-01-01").is_none());
        assert!(PriceDate::parse("2025-06-09").unwrap() < d);
    }

    #[test]
    fn unix_seconds_map_to_utc_days() {
        // 2025-06-10T00:00:00Z = 1749513600; one second earlier is still the 9th.
        assert_eq!(
            PriceDate::from_unix_seconds(1_749_513_600).to_string(),
            "2025-06-10"
        );
        assert_eq!(
            PriceDate::from_unix_seconds(1_749_513_599).to_string(),
            "2025-06-09"
        );
        assert_eq!(PriceDate::from_unix_seconds(-1).to_string(), "1969-12-31");
    }
}
