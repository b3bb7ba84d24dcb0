//! Kept request and response bodies (`log_bodies = "full" | "redacted"`): written to the
//! ledger's database in a table of their own (`request_bodies`), never to stdout, and deleted
//! after `[logging] retention`.
//!
//! Requests hand a [`BodyRecord`] to [`BodyLog::keep`], which never waits: the record goes on a
//! bounded queue (a full queue drops it and counts it). A thread of its own redacts, cuts each
//! body to `max_body_size`, inserts in batches and purges expired rows.

use super::redact::Redactor;
use super::rules::LogBodies;
use crate::config::LoggingSettings;
use arc_swap::ArcSwap;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS request_bodies (
    request_id TEXT PRIMARY KEY NOT NULL,
    ts_ms INTEGER NOT NULL,
    mode TEXT NOT NULL,
    request TEXT,
    response TEXT,
    response_form TEXT NOT NULL,
    truncated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS request_bodies_ts ON request_bodies (ts_ms);";

/// Records waiting for the writer before new ones are dropped.
const QUEUE: usize = 4096;
/// How often expired bodies are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// How the response was kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseForm {
    /// The bytes the client got.
    Body,
    /// A stream, as the answer it assembled to (its generated text).
    Assembled,
}

impl ResponseForm {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseForm::Body => "body",
            ResponseForm::Assembled => "assembled",
        }
    }
}

/// One request's bodies, as captured (redaction and cutting happen on the writer).
#[derive(Debug)]
pub struct BodyRecord {
    pub request_id: String,
    pub ts_ms: i64,
    pub mode: LogBodies,
    pub request: bytes::Bytes,
    pub response: Vec<u8>,
    pub form: ResponseForm,
    /// The capture already stopped at the size limit.
    pub truncated: bool,
}

/// Bodies as read back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeptBodies {
    pub mode: String,
    pub request: Option<String>,
    pub response: Option<String>,
    pub response_form: String,
    pub truncated: bool,
}

/// What the writer redacts with and how long it keeps rows (swapped on reload).
struct Rules {
    redactor: Redactor,
    retention: Duration,
    max_body_size: usize,
}

pub struct BodyLog {
    tx: SyncSender<BodyRecord>,
    rules: Arc<ArcSwap<Rules>>,
    max_body_size: AtomicU64,
    pub dropped: AtomicU64,
    pub written: Arc<AtomicU64>,
}

fn rules(s: &LoggingSettings) -> Rules {
    Rules {
        redactor: Redactor::new(&s.redact),
        retention: s.retention,
        max_body_size: s.max_body_size,
    }
}

impl BodyLog {
    /// Opens the table in the database at `path` and starts the writer thread.
    pub fn start(path: &Path, settings: &LoggingSettings) -> Result<BodyLog, String> {
        let conn = open(path).map_err(|e| format!("body log at {}: {e}", path.display()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let rules = Arc::new(ArcSwap::from_pointee(rules(settings)));
        let written = Arc::new(AtomicU64::new(0));
        let (r, w, p) = (rules.clone(), written.clone(), path.to_path_buf());
        std::thread::Builder::new()
            .name("body-log".into())
            .spawn(move || write_loop(conn, rx, r, w, p))
            .map_err(|e| format!("cannot start the body log thread: {e}"))?;
        Ok(BodyLog {
            tx,
            rules,
            max_body_size: AtomicU64::new(settings.max_body_size as u64),
            dropped: AtomicU64::new(0),
            written,
        })
    }

    /// New redaction patterns, retention and size limit (a config reload).
    pub fn update(&self, settings: &LoggingSettings) {
        self.rules.store(Arc::new(rules(settings)));
        self.max_body_size
            .store(settings.max_body_size as u64, Ordering::Relaxed);
    }

    /// The most bytes worth capturing of a response.
    pub fn max_body_size(&self) -> usize {
        usize::try_from(self.max_body_size.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }

    /// Queues a record for the writer; never waits.
    pub fn keep(&self, r: BodyRecord) {
        match self.tx.try_send(r) {
            Ok(()) => {}
            Err(TrySendError::Full(r)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                log::warn!("body log queue full: bodies of {} not kept", r.request_id);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// At most `max` bytes of `b` as text (cut at a character boundary); whether it was cut.
fn text(b: &[u8], max: usize) -> (String, bool) {
    let s = String::from_utf8_lossy(b);
    if s.len() <= max {
        return (s.into_owned(), false);
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    (s[..end].to_owned(), true)
}

fn write_loop(
    mut conn: Connection,
    rx: Receiver<BodyRecord>,
    rules: Arc<ArcSwap<Rules>>,
    written: Arc<AtomicU64>,
    path: PathBuf,
) {
    let mut last_purge: Option<Instant> = None;
    loop {
        let first = match rx.recv_timeout(PURGE_EVERY) {
            Ok(r) => Some(r),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let r = rules.load();
        if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            last_purge = Some(Instant::now());
            if let Err(e) = purge(&conn, r.retention, now_ms()) {
                log::warn!("body log at {}: purge failed: {e}", path.display());
            }
        }
        let Some(first) = first else { continue };
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(rec) => batch.push(rec),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        match insert(&mut conn, &batch, &r) {
            Ok(()) => {
                written.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => log::error!(
                "body log at {}: {n} records not written: {e}",
                path.display()
            ),
        }
    }
}

/// Deletes the bodies older than `retention`; returns how many.
fn purge(conn: &Connection, retention: Duration, now_ms: i64) -> rusqlite::Result<usize> {
    let cutoff = now_ms.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    conn.execute("DELETE FROM request_bodies WHERE ts_ms < ?1", [cutoff])
}

fn insert(conn: &mut Connection, batch: &[BodyRecord], r: &Rules) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO request_bodies (request_id, ts_ms, mode, request, response, \
             response_form, truncated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for rec in batch {
            let (mut req, req_cut) = text(&rec.request, r.max_body_size);
            let (mut resp, resp_cut) = text(&rec.response, r.max_body_size);
            if rec.mode == LogBodies::Redacted {
                req = r.redactor.redact(&req);
                resp = r.redactor.redact(&resp);
            }
            stmt.execute(params![
                rec.request_id,
                rec.ts_ms,
                rec.mode.as_str(),
                req,
                resp,
                rec.form.as_str(),
                rec.truncated || req_cut || resp_cut,
            ])?;
        }
    }
    tx.commit()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The kept bodies of one request, if any (read-only; `None` when the table does not exist).
pub fn read(path: &Path, request_id: &str) -> Result<Option<KeptBodies>, String> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| e.to_string())?;
    let exists: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'request_bodies'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    if exists.is_none() {
        return Ok(None);
    }
    conn.query_row(
        "SELECT mode, request, response, response_form, truncated FROM request_bodies \
         WHERE request_id = ?1",
        [request_id],
        |r| {
            Ok(KeptBodies {
                mode: r.get(0)?,
                request: r.get(1)?,
                response: r.get(2)?,
                response_form: r.get(3)?,
                truncated: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_redacted_cut_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let settings = LoggingSettings {
            max_body_size: 64,
            ..LoggingSettings::default()
        };
        let log = BodyLog::start(&path, &settings).unwrap();
        log.keep(BodyRecord {
            request_id: "req_1".into(),
            ts_ms: now_ms(),
            mode: LogBodies::Redacted,
            request: bytes::Bytes::from_static(br#"{"content":"write to bob@example.com"}"#),
            response: b"Hello bob@example.com".to_vec(),
            form: ResponseForm::Assembled,
            truncated: false,
        });
        log.keep(BodyRecord {
            request_id: "req_2".into(),
            ts_ms: now_ms(),
            mode: LogBodies::Full,
            request: bytes::Bytes::from(vec![b'a'; 100]),
            response: b"bob@example.com".to_vec(),
            form: ResponseForm::Body,
            truncated: false,
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.written.load(Ordering::Relaxed) < 2 {
            assert!(Instant::now() < deadline, "bodies never written");
            std::thread::sleep(Duration::from_millis(10));
        }
        let one = read(&path, "req_1").unwrap().unwrap();
        assert_eq!(
            one.request.as_deref(),
            Some(r#"{"content":"write to [REDACTED:email]"}"#)
        );
        assert_eq!(one.response.as_deref(), Some("Hello [REDACTED:email]"));
        assert_eq!(
            (one.mode.as_str(), one.response_form.as_str()),
            ("redacted", "assembled")
        );
        let two = read(&path, "req_2").unwrap().unwrap();
        assert_eq!(two.request.as_deref().map(str::len), Some(64));
        assert!(two.truncated);
        assert_eq!(two.response.as_deref(), Some("bob@example.com"));
        assert!(read(&path, "req_3").unwrap().is_none());

        // Retention: rows older than it go.
        let conn = open(&path).unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(purge(&conn, day, now_ms() + 2 * 86_400_000).unwrap(), 2);
        assert!(read(&path, "req_1").unwrap().is_none());
    }
}
