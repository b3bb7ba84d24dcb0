//! Spill files: where rows go when the queue stays full, the writer has stopped, or a batch
//! failed to commit. Nothing is dropped silently.
//!
//! Layout, next to the database `<dir>/<name>`:
//! - `<name>.spill.jsonl`: the *active* file. Producers append one JSON [`LedgerRow`] per line
//!   (O_APPEND, one `write_all` per call, under a mutex).
//! - `<name>.spill.<unix ms>-<pid>-<seq>.jsonl`: *rotated* files. Before importing, the
//!   writer renames the active file under the same mutex (producers then start a new active
//!   file), so a file being imported is never appended to. A rotated file is deleted only after its rows are
//!   committed; if the process dies in between, the re-import is harmless because inserts
//!   ignore known `request_id`s.
//!
//! Writes that are not rows (appended attempts, experiment results; [`super::extra`]) are
//! spilled as `{"extra": ...}` lines among the rows and replayed in file order.
//!
//! A line that does not parse (e.g. cut short by a crash or a full disk) is skipped and counted.
//! Lines in the schema-2 shape (attempts as an `attempts_json` string, no `attempts` list), left
//! by an older release, are converted on import ([`super::legacy`]).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use super::extra::{Extra, Line};
use super::legacy::{attempts_from_v2, V2Row};
use super::LedgerRow;

/// The active spill file and the flag telling the writer there is something to import.
pub(crate) struct Spill {
    dir: PathBuf,
    /// `<db file name>.spill`
    stem: String,
    active: Mutex<Active>,
    pending: AtomicBool,
}

/// Rotations in this process; with the pid and the time it makes rotated names unique.
static ROTATIONS: AtomicU64 = AtomicU64::new(0);

#[derive(Default)]
struct Active {
    file: Option<File>,
    /// A previous append failed part-way: start the next one on a fresh line.
    needs_newline: bool,
}

impl Spill {
    pub(crate) fn new(db_path: &Path) -> Spill {
        let dir = match db_path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = db_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "ledger".to_string());
        Spill {
            dir,
            stem: format!("{name}.spill"),
            active: Mutex::new(Active::default()),
            pending: AtomicBool::new(false),
        }
    }

    fn active_path(&self) -> PathBuf {
        self.dir.join(format!("{}.jsonl", self.stem))
    }

    /// Whether rows were spilled since the writer last rotated.
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Marks spill files as present (e.g. found at start-up or left by a failed import).
    pub(crate) fn set_pending(&self) {
        self.pending.store(true, Ordering::Release);
    }

    /// Appends `rows` to the active file, one JSON line each, in a single write.
    pub(crate) fn append<'a>(
        &self,
        rows: impl IntoIterator<Item = &'a LedgerRow>,
    ) -> io::Result<()> {
        let mut buf = Vec::with_capacity(1024);
        for row in rows {
            serde_json::to_writer(&mut buf, row).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        self.write_lines(buf)
    }

    /// Appends writes that are not rows, one `{"extra": ...}` line each, in a single write.
    pub(crate) fn append_extras(&self, extras: &[Extra]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(512);
        for extra in extras {
            serde_json::to_writer(
                &mut buf,
                &Line {
                    extra: extra.clone(),
                },
            )
            .map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        self.write_lines(buf)
    }

    fn write_lines(&self, buf: Vec<u8>) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if active.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.active_path())?;
            active.file = Some(file);
        }
        let needs_newline = active.needs_newline;
        let result = match active.file.as_mut() {
            Some(file) => {
                let lead: &[u8] = if needs_newline { b"\n" } else { b"" };
                file.write_all(lead).and_then(|()| file.write_all(&buf))
            }
            None => Err(io::Error::other("spill file not open")),
        };
        match result {
            Ok(()) => {
                active.needs_newline = false;
                self.pending.store(true, Ordering::Release);
                Ok(())
            }
            Err(e) => {
                // Part of the buffer may be on disk; reopen and start on a fresh line next time.
                active.file = None;
                active.needs_newline = true;
                self.pending.store(true, Ordering::Release);
                Err(e)
            }
        }
    }

    /// Renames the active file (if any) to a rotated name and clears the pending flag.
    pub(crate) fn rotate(&self) -> io::Result<()> {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        self.pending.store(false, Ordering::Release);
        active.file = None;
        let from = self.active_path();
        if !from.exists() {
            return Ok(());
        }
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let pid = std::process::id();
        let to = loop {
            let seq = ROTATIONS.fetch_add(1, Ordering::Relaxed);
            let to = self
                .dir
                .join(format!("{}.{ms:015}-{pid}-{seq:06}.jsonl", self.stem));
            if !to.exists() {
                break to;
            }
        };
        let renamed = std::fs::rename(&from, &to);
        if renamed.is_err() {
            self.pending.store(true, Ordering::Release);
        }
        renamed
    }

    /// Rotated files waiting to be imported, oldest first.
    pub(crate) fn rotated_files(&self) -> io::Result<Vec<PathBuf>> {
        let prefix = format!("{}.", self.stem);
        let active = format!("{}.jsonl", self.stem);
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(&prefix) && name.ends_with(".jsonl") && name != active {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }

    /// Whether any spill file (active or rotated) exists.
    pub(crate) fn any_files(&self) -> bool {
        self.active_path().exists() || self.rotated_files().is_ok_and(|f| !f.is_empty())
    }
}

/// Streams one spill file in chunks of up to `chunk` lines: its rows, and the writes that are
/// not rows ([`Extra`]) in file order. A chunk's rows are to be written before its extras (an
/// extra always follows the row it belongs to). `on_chunk` returns `Err` to stop. Unparsable
/// lines are skipped and their count returned.
pub(crate) fn read_chunks<E>(
    path: &Path,
    chunk: usize,
    mut on_chunk: impl FnMut(Vec<LedgerRow>, Vec<Extra>) -> Result<(), E>,
) -> Result<u64, SpillReadError<E>> {
    let file = File::open(path).map_err(SpillReadError::Io)?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut rows = Vec::with_capacity(chunk.min(4096));
    let mut extras = Vec::new();
    let mut bad = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(SpillReadError::Io)?;
        if n == 0 {
            break;
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let parsed = if text.starts_with(b"{\"extra\"") {
            serde_json::from_slice::<Line>(text).map(|l| extras.push(l.extra))
        } else {
            parse_line(text).map(|row| rows.push(row))
        };
        if let Err(e) = parsed {
            bad += 1;
            log::warn!("ledger: skipping bad line in {}: {e}", path.display());
        }
        if rows.len() + extras.len() >= chunk.max(1) {
            on_chunk(std::mem::take(&mut rows), std::mem::take(&mut extras))
                .map_err(SpillReadError::Sink)?;
        }
    }
    if !rows.is_empty() || !extras.is_empty() {
        on_chunk(rows, extras).map_err(SpillReadError::Sink)?;
    }
    Ok(bad)
}

/// One spill line: a [`LedgerRow`] as JSON, or a schema-2 row whose attempts are the
/// `attempts_json` string.
pub(crate) fn parse_line(text: &[u8]) -> serde_json::Result<LedgerRow> {
    let mut value: serde_json::Value = serde_json::from_slice(text)?;
    let legacy = value
        .as_object_mut()
        .and_then(|o| o.remove("attempts_json"));
    let mut row: LedgerRow = serde_json::from_value(value)?;
    if let Some(serde_json::Value::String(json)) = legacy {
        if row.attempts.is_empty() {
            row.attempts = attempts_from_v2(&json, &V2Row::of(&row));
        }
    }
    Ok(row)
}

/// Why a spill file could not be read to the end.
pub(crate) enum SpillReadError<E> {
    Io(io::Error),
    Sink(E),
}
