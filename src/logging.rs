//! A small logger for the `log` facade: access lines (JSON, one per request) go to stdout as
//! they are, written by a thread of their own through a bounded queue, so a slow stdout
//! (journald back-pressure, a stalled pipe) never stalls a proxy worker: when the queue is
//! full a line is dropped and counted ([`access_lines_dropped`]). Everything else goes to
//! stderr with a timestamp and level. The level comes from
//! `SWITCHYARD_LOG` (error, warn, info, debug, trace; default info). Access lines can be turned
//! off alone with `SWITCHYARD_ACCESS_LOG=off`. The writer thread starts with the first access
//! line, so a process that forks after `init` (`serve --daemon`) still has it.

use crate::access_log::TARGET as ACCESS_TARGET;
use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::OnceLock;

/// Access lines queued for the writer thread before new ones are dropped.
const ACCESS_QUEUE: usize = 16_384;

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Access-log lines dropped because stdout could not keep up.
pub fn access_lines_dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

struct Logger {
    level: LevelFilter,
    access_on: bool,
    /// The writer thread's queue, started by the first access line (`None`: it could not be).
    access: OnceLock<Option<SyncSender<String>>>,
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        if m.target() == ACCESS_TARGET {
            return self.access_on;
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
        if r.target() == ACCESS_TARGET {
            if let Some(tx) = self.access.get_or_init(access_writer) {
                if let Err(TrySendError::Full(_)) = tx.try_send(r.args().to_string()) {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                }
            }
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
    let access_on = !matches!(std::env::var("SWITCHYARD_ACCESS_LOG").as_deref(), Ok("off"));
    let logger = Logger {
        level,
        access_on,
        access: OnceLock::new(),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(if access_on {
            level.max(LevelFilter::Info)
        } else {
            level
        });
    }
}

/// The thread that writes access lines to stdout, fed by a bounded queue.
fn access_writer() -> Option<SyncSender<String>> {
    let (tx, rx) = sync_channel::<String>(ACCESS_QUEUE);
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || {
            let mut out = std::io::stdout();
            for line in rx {
                let _ = writeln!(out, "{line}");
            }
        })
        .ok()
        .map(|_| tx)
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
