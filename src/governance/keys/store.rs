//! Gateway keys made at run time, kept in SQLite beside the ledger (the same database file,
//! tables of their own). Only a SHA-256 digest of each secret is stored; a secret is shown
//! once, when it is made.
//!
//! Every change bumps `governance_meta.keys_version` in the same transaction; a running
//! gateway polls that one integer ([`KeyStore::version`]) and reloads its key snapshot when it
//! moves (see `live`).

use crate::governance::rules::{Budget, LogBodies, Period, Rule};
use rusqlite::{params, Connection, OptionalExtension};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS governance_keys (
    name TEXT PRIMARY KEY NOT NULL,
    digest TEXT NOT NULL,
    prev_digest TEXT,
    prev_until_ms INTEGER,
    models TEXT,
    rpm INTEGER,
    tpm INTEGER,
    budget_usd TEXT,
    budget_period TEXT,
    log_bodies TEXT,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    revoked_ms INTEGER
);
CREATE TABLE IF NOT EXISTS governance_meta (
    k TEXT PRIMARY KEY NOT NULL,
    v INTEGER NOT NULL
);";

const BUMP: &str = "INSERT INTO governance_meta (k, v) VALUES ('keys_version', 1)
    ON CONFLICT (k) DO UPDATE SET v = v + 1";

const COLUMNS: &str = "name, digest, prev_digest, prev_until_ms, models, rpm, tpm, budget_usd, \
    budget_period, log_bodies, created_ms, expires_ms, revoked_ms";

/// A key as stored (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub name: String,
    pub digest: [u8; 32],
    /// The secret before the last rotation, and until when (unix ms) it still works.
    pub previous: Option<([u8; 32], i64)>,
    pub models: Option<Vec<String>>,
    pub rule: Rule,
    pub log_bodies: Option<LogBodies>,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

/// What a new key is allowed.
#[derive(Clone, Debug, Default)]
pub struct NewKey {
    pub name: String,
    pub models: Option<Vec<String>>,
    pub rule: Rule,
    pub log_bodies: Option<LogBodies>,
    pub expires_ms: Option<i64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum KeyError {
    /// No key of that name (or it is revoked).
    NotFound(String),
    /// A live key of that name exists.
    Exists(String),
    Invalid(String),
    Db(String),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::NotFound(n) => write!(f, "no active key named `{n}`"),
            KeyError::Exists(n) => write!(f, "a key named `{n}` already exists"),
            KeyError::Invalid(m) => f.write_str(m),
            KeyError::Db(m) => write!(f, "key store: {m}"),
        }
    }
}

impl std::error::Error for KeyError {}

impl From<rusqlite::Error> for KeyError {
    fn from(e: rusqlite::Error) -> Self {
        KeyError::Db(e.to_string())
    }
}

/// SHA-256 of a secret.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A new secret: `sk-sy-` and 40 random base-62 characters (238 bits).
pub fn new_secret() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rngs::OsRng;
    let tail: String = (0..40)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("sk-sy-{tail}")
}

/// Key names: 1-64 of `A-Z a-z 0-9 . _ -`.
pub fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::Invalid(format!(
            "key name `{name}` must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'"
        )))
    }
}

pub struct KeyStore {
    conn: Connection,
}

impl KeyStore {
    /// Opens (creating it if needed) the key tables in the database at `path`.
    pub fn open(path: &Path) -> Result<KeyStore, KeyError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| KeyError::Db(e.to_string()))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch(SCHEMA)?;
        Ok(KeyStore { conn })
    }

    /// The change counter: moves with every create, revoke and rotate.
    pub fn version(&self) -> Result<i64, KeyError> {
        Ok(self
            .conn
            .query_row(
                "SELECT v FROM governance_meta WHERE k = 'keys_version'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Every key, revoked ones included, by name.
    pub fn list(&self) -> Result<Vec<StoredKey>, KeyError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM governance_keys ORDER BY name"
        ))?;
        let rows = stmt.query_map([], read_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r??);
        }
        Ok(out)
    }

    pub fn get(&self, name: &str) -> Result<Option<StoredKey>, KeyError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM governance_keys WHERE name = ?1"),
                [name],
                read_row,
            )
            .optional()?;
        row.transpose()
    }

    /// Makes a key; returns its secret (the only time it is seen). A revoked key's name may
    /// be used again.
    pub fn create(&mut self, k: &NewKey, now_ms: i64) -> Result<String, KeyError> {
        check_name(&k.name)?;
        let secret = new_secret();
        let tx = self.conn.transaction()?;
        let live: Option<Option<i64>> = tx
            .query_row(
                "SELECT revoked_ms FROM governance_keys WHERE name = ?1",
                [&k.name],
                |r| r.get(0),
            )
            .optional()?;
        if matches!(live, Some(None)) {
            return Err(KeyError::Exists(k.name.clone()));
        }
        let models = k
            .models
            .as_ref()
            .map(|m| serde_json::to_string(m).unwrap_or_else(|_| "[]".into()));
        tx.execute(
            "INSERT OR REPLACE INTO governance_keys (name, digest, prev_digest, prev_until_ms, \
             models, rpm, tpm, budget_usd, budget_period, log_bodies, created_ms, expires_ms, \
             revoked_ms) VALUES (?1, ?2, NULL, NULL, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL)",
            params![
                k.name,
                hex(&digest(&secret)),
                models,
                k.rule.rpm.map(sql_int),
                k.rule.tpm.map(sql_int),
                k.rule.budget.as_ref().map(|b| b.usd.to_string()),
                k.rule.budget.as_ref().map(|b| b.period.as_str()),
                k.log_bodies.map(LogBodies::as_str),
                now_ms,
                k.expires_ms,
            ],
        )?;
        tx.execute(BUMP, [])?;
        tx.commit()?;
        Ok(secret)
    }

    /// Revokes a key: it stops working as soon as the gateway sees the change.
    pub fn revoke(&mut self, name: &str, now_ms: i64) -> Result<(), KeyError> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE governance_keys SET revoked_ms = ?2 WHERE name = ?1 AND revoked_ms IS NULL",
            params![name, now_ms],
        )?;
        if n == 0 {
            return Err(KeyError::NotFound(name.to_owned()));
        }
        tx.execute(BUMP, [])?;
        tx.commit()?;
        Ok(())
    }

    /// Gives a key a new secret; the old one keeps working for `grace`. Returns the new one.
    pub fn rotate(&mut self, name: &str, grace: Duration, now_ms: i64) -> Result<String, KeyError> {
        let secret = new_secret();
        let until = now_ms.saturating_add(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE governance_keys SET prev_digest = digest, prev_until_ms = ?3, digest = ?2 \
             WHERE name = ?1 AND revoked_ms IS NULL",
            params![name, hex(&digest(&secret)), until],
        )?;
        if n == 0 {
            return Err(KeyError::NotFound(name.to_owned()));
        }
        tx.execute(BUMP, [])?;
        tx.commit()?;
        Ok(secret)
    }
}

fn sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

type Row = Result<StoredKey, KeyError>;

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let name: String = r.get(0)?;
    let bad = |what: &str| Err(KeyError::Db(format!("key `{name}`: unreadable {what}")));
    let Some(digest) = unhex(&r.get::<_, String>(1)?) else {
        return Ok(bad("digest"));
    };
    let previous = match (r.get::<_, Option<String>>(2)?, r.get::<_, Option<i64>>(3)?) {
        (Some(d), Some(until)) => match unhex(&d) {
            Some(d) => Some((d, until)),
            None => return Ok(bad("previous digest")),
        },
        _ => None,
    };
    let models = match r.get::<_, Option<String>>(4)? {
        None => None,
        Some(text) => match serde_json::from_str::<Vec<String>>(&text) {
            Ok(m) => Some(m),
            Err(_) => return Ok(bad("models")),
        },
    };
    let count = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok());
    let budget = match (
        r.get::<_, Option<String>>(7)?,
        r.get::<_, Option<String>>(8)?,
    ) {
        (Some(usd), Some(period)) => match (Decimal::from_str(&usd), Period::from_str(&period)) {
            (Ok(usd), Ok(period)) => Some(Budget { usd, period }),
            _ => return Ok(bad("budget")),
        },
        _ => None,
    };
    let log_bodies = match r.get::<_, Option<String>>(9)? {
        None => None,
        Some(t) => match LogBodies::from_str(&t) {
            Ok(l) => Some(l),
            Err(_) => return Ok(bad("log_bodies")),
        },
    };
    Ok(Ok(StoredKey {
        digest,
        previous,
        models,
        rule: Rule {
            rpm: count(r.get(5)?),
            tpm: count(r.get(6)?),
            budget,
        },
        log_bodies,
        created_ms: r.get(10)?,
        expires_ms: r.get(11)?,
        revoked_ms: r.get(12)?,
        name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_rotate_revoke_and_the_version_moves() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = KeyStore::open(&dir.path().join("l.db")).unwrap();
        assert_eq!(s.version().unwrap(), 0);
        let k = NewKey {
            name: "team-b".into(),
            models: Some(vec!["chat".into()]),
            rule: Rule {
                rpm: Some(5),
                tpm: None,
                budget: Some(Budget {
                    usd: Decimal::from_str("5.50").unwrap(),
                    period: Period::Day,
                }),
            },
            log_bodies: Some(LogBodies::Redacted),
            expires_ms: Some(99),
        };
        let secret = s.create(&k, 10).unwrap();
        assert!(secret.starts_with("sk-sy-") && secret.len() == 46);
        assert_eq!(s.create(&k, 11), Err(KeyError::Exists("team-b".into())));
        let got = s.get("team-b").unwrap().unwrap();
        assert_eq!(got.digest, digest(&secret));
        assert_eq!(got.rule, k.rule);
        assert_eq!(got.models, k.models);
        assert_eq!(got.log_bodies, Some(LogBodies::Redacted));
        assert_eq!(s.version().unwrap(), 1);

        let new = s.rotate("team-b", Duration::from_secs(60), 1_000).unwrap();
        let got = s.get("team-b").unwrap().unwrap();
        assert_eq!(got.digest, digest(&new));
        assert_eq!(got.previous, Some((digest(&secret), 61_000)));

        s.revoke("team-b", 2_000).unwrap();
        assert_eq!(
            s.revoke("team-b", 2_001),
            Err(KeyError::NotFound("team-b".into()))
        );
        assert_eq!(s.get("team-b").unwrap().unwrap().revoked_ms, Some(2_000));
        assert_eq!(s.version().unwrap(), 3);
        // A revoked name can be used again.
        s.create(&k, 3_000).unwrap();
        assert_eq!(s.get("team-b").unwrap().unwrap().revoked_ms, None);

        // Nothing in the file is a secret.
        drop(s);
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&secret) && !text.contains(&new));
        assert!(check_name("bad name").is_err() && check_name("ok.name-1").is_ok());
    }
}
