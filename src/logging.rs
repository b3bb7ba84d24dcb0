//! A small logger for the `log` facade: access lines (JSON, one per request) go to stdout as
//! they are; everything else goes to stderr with a timestamp and level. The level comes from
//! `SWITCHYARD_LOG` (error, warn, info, debug, trace; default info). Access lines can be turned
//! off alone with `SWITCHYARD_ACCESS_LOG=off`.

use crate::proxy::access_log_target;
use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct Logger {
    level: LevelFilter,
    access: bool,
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        if m.target() == access_log_target() {
            return self.access;
        }
        // pingora's per-request info chatter is noise next to the access log.
        let floor = if m.target().starts_with("pingora") {
            self.level.min(LevelFilter::Warn)
        } else {
            self.level
        };
        m.level() <= floor
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        if r.target() == access_log_target() {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", r.args());
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{} {:<5} {}: {}",
            rfc3339_now(),
            r.level(),
            r.target(),
            r.args()
        );
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}

pub fn init() {
    let level = match std::env::var("SWITCHYARD_LOG").as_deref() {
        Ok("error") => LevelFilter::Error,
        Ok("warn") => LevelFilter::Warn,
        Ok("debug") => LevelFilter::Debug,
        Ok("trace") => LevelFilter::Trace,
        Ok("off") => LevelFilter::Off,
        _ => LevelFilter::Info,
    };
    let access = !matches!(std::env::var("SWITCHYARD_ACCESS_LOG").as_deref(), Ok("off"));
    let logger = Logger { level, access };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(if access {
            level.max(LevelFilter::Info)
        } else {
            level
        });
    }
}

/// UTC time as `2026-11-25T08:35:47.123Z`, without a date crate.
fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = crate::calendar::civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_shape() {
        let t = super::rfc3339_now();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
