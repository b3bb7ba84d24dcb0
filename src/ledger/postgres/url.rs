//! The Postgres URL of `[ledger] store`: checked at config time, never shown with its password.

use std::fmt;
use std::str::FromStr;

/// A parsed `postgres://` (or `postgresql://`) URL. `Display` and `Debug` hide the password.
#[derive(Clone)]
pub struct PgUrl {
    text: String,
    config: tokio_postgres::Config,
}

impl PgUrl {
    /// Checks `text` as a libpq-style URL (`postgres://user[:password]@host[:port]/db?sslmode=..`)
    /// that names a host and a user. The error never repeats the URL (it may hold a password).
    pub fn parse(text: &str) -> Result<PgUrl, String> {
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Err(
                "expected \"sqlite\" or a URL like \"postgres://user@host:5432/db\"".into(),
            );
        }
        let config = tokio_postgres::Config::from_str(text)
            .map_err(|e| format!("not a usable Postgres URL: {e}"))?;
        if config.get_hosts().is_empty() {
            return Err("the Postgres URL names no host".into());
        }
        if config.get_user().is_none() {
            return Err("the Postgres URL names no user (postgres://USER@host/db)".into());
        }
        Ok(PgUrl {
            text: text.to_owned(),
            config,
        })
    }

    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.text)
    }
}

impl PartialEq for PgUrl {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({})", self.redacted())
    }
}

/// `scheme://user:secret@host...` -> `scheme://user:***@host...`; a `password=` query
/// parameter is hidden too.
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_never_shown_with_their_password() {
        let u = PgUrl::parse("postgres://sy:s3cret@127.0.0.1:5433/ledger?sslmode=require").unwrap();
        assert_eq!(
            u.to_string(),
            "postgres://sy:***@127.0.0.1:5433/ledger?sslmode=require"
        );
        assert!(!format!("{u:?}").contains("s3cret"));
        let q = PgUrl::parse("postgresql://sy@db/ledger?password=hunter2").unwrap();
        assert_eq!(q.to_string(), "postgresql://sy@db/ledger?password=***");
        assert!(PgUrl::parse("mysql://x@y/z").is_err());
        assert!(PgUrl::parse("postgres://db/ledger")
            .unwrap_err()
            .contains("no user"));
        assert!(PgUrl::parse("postgres://sy@db/ledger?sslmode=bogus").is_err());
        let e = PgUrl::parse("postgres://sy:pw@db/ledger?nonsense=1").unwrap_err();
        assert!(!e.contains("pw@"), "{e}");
    }

    #[test]
    fn ledger_store_is_checked_at_config_time_with_file_line_and_field() {
        use crate::config::Config;
        let parse = |store: &str| {
            Config::parse(
                "fleet.toml",
                &format!("[ledger]\npath = \"l.db\"\nstore = \"{store}\"\n"),
                &|_| None,
            )
        };
        let e = parse("postgres://sy:pw@db:notaport/ledger")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("fleet.toml:3:") && e.contains("ledger.store"),
            "{e}"
        );
        assert!(!e.contains("sy:pw"), "the password is never repeated: {e}");
        let e = parse("mongodb://db").unwrap_err().to_string();
        assert!(
            e.contains("ledger.store") && e.contains("postgres://"),
            "{e}"
        );
        assert!(parse("sqlite").unwrap().ledger.postgres.is_none());
        let c = parse("postgres://sy@127.0.0.1:5432/ledger").unwrap();
        assert_eq!(
            c.ledger.postgres.map(|u| u.to_string()).as_deref(),
            Some("postgres://sy@127.0.0.1:5432/ledger")
        );
    }
}
