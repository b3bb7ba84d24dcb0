//! `GET /admin/requests` (newest first, filtered, paginated with `before`) and
//! `GET /admin/requests/{request_id}` (the row, its attempts, its kept bodies), read from the
//! ledger on a blocking thread.

use crate::ledger::store::{
    has_attempts_table, open_reader, read_attempts, row_from_sql, select_all,
};
use crate::ledger::LedgerRow;
use rusqlite::types::Value as SqlValue;
use serde_json::{json, Value};
use std::path::Path;

/// The most rows one page returns.
pub const MAX_LIMIT: usize = 500;
const DEFAULT_LIMIT: usize = 50;

/// `GET /admin/requests` filters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub limit: usize,
    /// Only requests older than this request id (ids sort by time).
    pub before: Option<String>,
    pub key: Option<String>,
    /// The model the client asked for or the one that served.
    pub model: Option<String>,
    pub status: Option<u16>,
    pub feature: Option<String>,
    /// `Some(true)`: cache hits only; `Some(false)`: answers not served from the cache.
    pub cache_hit: Option<bool>,
}

/// Percent-decodes a query value (`+` is a space).
pub fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(v.get(i + 1..i + 3).unwrap_or(""), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the query string; unknown parameters are refused so a typo is not silently ignored.
pub fn parse_query(q: &str) -> Result<Query, String> {
    let mut out = Query {
        limit: DEFAULT_LIMIT,
        ..Query::default()
    };
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v);
        match k {
            "limit" => {
                out.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| format!("limit must be 1 to {MAX_LIMIT}"))?
            }
            "before" => out.before = Some(v),
            "key" => out.key = Some(v),
            "model" => out.model = Some(v),
            "feature" => out.feature = Some(v),
            "cache" => {
                out.cache_hit = Some(match v.as_str() {
                    "hit" => true,
                    "miss" => false,
                    _ => return Err(format!("cache must be `hit` or `miss`, not `{v}`")),
                })
            }
            "status" => {
                out.status = Some(
                    v.parse()
                        .map_err(|_| format!("status must be an HTTP status, not `{v}`"))?,
                )
            }
            other => {
                return Err(format!(
                    "unknown parameter `{other}`; known: limit, before, key, model, status, feature, cache"
                ))
            }
        }
    }
    Ok(out)
}

/// One ledger row as the admin API shows it, with its attempts (each with its role, tokens and
/// cost).
pub fn row_json(r: &LedgerRow) -> Value {
    serde_json::to_value(r).unwrap_or_else(|_| json!({}))
}

/// A page of requests, newest first, and the `before` of the next page (if there is one).
pub fn list(path: &Path, q: &Query) -> Result<Value, String> {
    if !path.exists() {
        return Ok(json!({"requests": [], "next_before": null}));
    }
    let conn = open_reader(path).map_err(|e| e.to_string())?;
    let mut clauses = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(b) = &q.before {
        args.push(SqlValue::Text(b.clone()));
        clauses.push(format!("request_id < ?{}", args.len()));
    }
    if let Some(k) = &q.key {
        args.push(SqlValue::Text(k.clone()));
        clauses.push(format!("gateway_key = ?{}", args.len()));
    }
    if let Some(s) = q.status {
        args.push(SqlValue::Integer(i64::from(s)));
        clauses.push(format!("status = ?{}", args.len()));
        if s != 200 {
            // Spelled as the partial index's condition, so SQLite may use it.
            clauses.push(crate::ledger::schema::NOT_OK_CONDITION.to_owned());
        }
    }
    match q.cache_hit {
        // Spelled as the partial index's condition, so SQLite may use it.
        Some(true) => clauses.push(crate::ledger::schema::CACHE_HIT_CONDITION.to_owned()),
        Some(false) => clauses.push("cache_hit = 0".to_owned()),
        None => {}
    }
    if let Some(f) = &q.feature {
        args.push(SqlValue::Text(f.clone()));
        clauses.push(format!("feature = ?{}", args.len()));
    }
    let page = q.limit + 1;
    let sql = if let Some(m) = &q.model {
        // The asked-for model or the one that served: each side walks its own index newest
        // first and stops at a page; the union of the two pages holds the page.
        args.push(SqlValue::Text(m.clone()));
        let n = args.len();
        let side = |column: &str| {
            let mut c = clauses.clone();
            c.push(format!("{column} = ?{n}"));
            format!(
                "SELECT request_id FROM (SELECT request_id FROM requests WHERE {} \
                 ORDER BY request_id DESC LIMIT {page})",
                c.join(" AND ")
            )
        };
        select_all(
            &conn,
            &format!(
                "WHERE request_id IN ({} UNION {}) ORDER BY request_id DESC LIMIT {page}",
                side("requested_model"),
                side("model")
            ),
        )
        .map_err(|e| e.to_string())?
    } else {
        let mut sql = select_all(&conn, if clauses.is_empty() { "" } else { "WHERE " })
            .map_err(|e| e.to_string())?;
        sql.push_str(&clauses.join(" AND "));
        sql.push_str(&format!(" ORDER BY request_id DESC LIMIT {page}"));
        sql
    };
    let mut stmt = conn.prepare(&sql).map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), row_from_sql)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r.map_err(|e| e.to_string())?);
    }
    let more = out.len() > q.limit;
    out.truncate(q.limit);
    // A primary-key lookup per row of the page (at most `MAX_LIMIT`).
    if has_attempts_table(&conn).map_err(|e| e.to_string())? {
        for r in &mut out {
            r.attempts = read_attempts(&conn, &r.request_id).map_err(|e| e.to_string())?;
        }
    }
    Ok(page_json(&out, more))
}

/// A page as the API shows it: the rows and the `before` of the next page (if `more`).
fn page_json(rows: &[LedgerRow], more: bool) -> Value {
    let next = more
        .then(|| rows.last().map(|r| r.request_id.clone()))
        .flatten();
    json!({
        "requests": rows.iter().map(row_json).collect::<Vec<_>>(),
        "next_before": next,
    })
}

/// Both endpoints when the ledger is in Postgres (kept bodies stay in the SQLite file at
/// `path`, read on a blocking thread).
pub async fn from_postgres(
    pg: &std::sync::Arc<crate::ledger::postgres::PgStore>,
    path: std::path::PathBuf,
    rest: &str,
    query: &str,
) -> http::Response<Vec<u8>> {
    use crate::ledger::postgres::read;
    if rest.is_empty() {
        let q = match parse_query(query) {
            Ok(q) => q,
            Err(e) => return super::json_reply(400, json!({"error": e})),
        };
        return match read::list(pg, q).await {
            Ok((rows, more)) => super::json_reply(200, page_json(&rows, more)),
            Err(e) => super::json_reply(500, json!({"error": e.to_string()})),
        };
    }
    match one_from_postgres(pg, path, rest.to_owned()).await {
        Ok(Some(v)) => super::json_reply(200, v),
        Ok(None) => super::json_reply(404, json!({"error": format!("no request {rest}")})),
        Err(e) => super::json_reply(500, json!({"error": e})),
    }
}

/// One request from Postgres, as [`one`] gives it from SQLite (kept bodies stay in the SQLite
/// file at `path`, read on a blocking thread); `None` when there is no such request.
pub async fn one_from_postgres(
    pg: &std::sync::Arc<crate::ledger::postgres::PgStore>,
    path: std::path::PathBuf,
    id: String,
) -> Result<Option<Value>, String> {
    let Some(row) = crate::ledger::postgres::read::read_row(pg, id.clone())
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let bodies = tokio::task::spawn_blocking(move || {
        if path.exists() {
            crate::governance::bodies::read(&path, &id)
        } else {
            Ok(Default::default())
        }
    })
    .await
    .map_err(|e| e.to_string())??;
    let mut v = row_json(&row);
    v["route_plan"] = crate::dashboard::route::waterfall(&v);
    v["bodies"] = serde_json::to_value(bodies).unwrap_or(Value::Null);
    Ok(Some(v))
}

/// One request with its attempts, its routing waterfall (`route_plan`, see
/// [`crate::dashboard::route::waterfall`]) and kept bodies; `None` when there is no such
/// request.
pub fn one(path: &Path, id: &str) -> Result<Option<Value>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let Some(row) = crate::ledger::read_row(path, id).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let mut v = row_json(&row);
    v["route_plan"] = crate::dashboard::route::waterfall(&v);
    let bodies = crate::governance::bodies::read(path, id)?;
    v["bodies"] = serde_json::to_value(bodies).unwrap_or(Value::Null);
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_and_refuse_typos() {
        let q = parse_query(
            "limit=2&before=req_9&key=team%2Da&model=openai%2Fgpt&status=402&feature=a+b&cache=hit",
        )
        .unwrap();
        assert_eq!(
            q,
            Query {
                limit: 2,
                before: Some("req_9".into()),
                key: Some("team-a".into()),
                model: Some("openai/gpt".into()),
                status: Some(402),
                feature: Some("a b".into()),
                cache_hit: Some(true),
            }
        );
        assert_eq!(parse_query("").unwrap().limit, DEFAULT_LIMIT);
        assert!(parse_query("limit=0").is_err());
        assert!(parse_query("limit=501").is_err());
        assert!(parse_query("stauts=200").is_err());
        assert!(parse_query("cache=maybe").is_err());
        assert_eq!(parse_query("cache=miss").unwrap().cache_hit, Some(false));
    }
}
