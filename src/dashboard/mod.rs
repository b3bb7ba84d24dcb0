//! The dashboard: a web page at `/ui` on the admin port, served from the binary.
//!
//! ```text
//! GET  /ui                  the page (or the login form when not signed in)
//! GET  /ui/app.js, /ui/style.css   embedded assets (no secrets; served to anyone)
//! POST /ui/login            form field `key`: checks the admin key once, sets a session cookie
//! POST /ui/logout           ends the session
//! GET  /ui/waterfall.svg?id=REQUEST_ID   a request's attempts as a chart
//! GET  /ui/experiment.svg?name=NAME      an experiment's variants with their intervals
//! GET  /admin/spend/series?since=24h&buckets=24&by=key,feature,model,provider[&charts=svg]
//! ```
//!
//! The page is static HTML, CSS and JavaScript compiled in with `include_str!` (nothing from a
//! CDN; it works offline). Its script polls the same JSON admin endpoints scripts use
//! (`/admin/spend/series`, `/admin/requests`, `/admin/requests/{id}`, `/admin/targets`,
//! `/admin/experiments` when a gateway has it), and reads its filters from the page's own URL
//! query (`/ui?key=alice&status=429`, `/ui?request=ID`), so any view can be linked.
//!
//! Charts are SVG drawn server-side by `plotters` ([`charts`]), from [`series`]. A request's
//! routing waterfall is its route reason read back into structure ([`route`]). Everything is
//! read from whichever ledger store is configured ([`Source`]: the SQLite file or Postgres).
//!
//! Access: with no admin key (the admin port is then on loopback; the config refuses anything
//! else) the page opens directly. With a key, the login form posts it once; the answer sets a
//! [`session`] cookie (`HttpOnly`, `SameSite=Strict`, `Max-Age`) holding only a random id. The
//! key never travels in a URL and is never stored by the dashboard.

pub mod charts;
pub mod route;
pub mod series;
pub mod session;
pub mod source;

pub use source::Source;

use http::Response;
use serde_json::{json, Value};
use std::time::Instant;

const INDEX_HTML: &str = include_str!("assets/index.html");
const LOGIN_HTML: &str = include_str!("assets/login.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The dashboard's state on the admin port: its login sessions.
#[derive(Default)]
pub struct Dashboard {
    pub sessions: session::Sessions,
}

/// What the admin app needs to know about one request to the dashboard.
pub struct UiRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    /// The `Cookie` header, if any.
    pub cookie: Option<&'a str>,
    /// Whether the request is authorized (no admin key configured, a valid bearer key, or a
    /// live session cookie).
    pub authorized: bool,
    /// The admin key, when one is configured (for the login form).
    pub key: Option<&'a str>,
    /// The ledger store the gateway writes to.
    pub source: Source,
    /// The gateway's state (experiments' config for their charts).
    pub state: Option<std::sync::Arc<crate::proxy::GatewayState>>,
    /// Where experiments' results are read (whichever store the ledger is in).
    pub experiments: Option<std::sync::Arc<dyn crate::experiments::source::ExperimentSource>>,
}

fn page(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .header("x-frame-options", "DENY")
        .header(
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; form-action 'self'",
        )
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

fn html(status: u16, text: &str) -> Response<Vec<u8>> {
    page(status, "text/html; charset=utf-8", text.as_bytes().to_vec())
}

fn redirect(to: &str, cookie: Option<String>) -> Response<Vec<u8>> {
    let mut b = Response::builder()
        .status(303)
        .header("location", to)
        .header("content-length", 0)
        .header("cache-control", "no-store");
    if let Some(c) = cookie {
        b = b.header("set-cookie", c);
    }
    b.body(Vec::new())
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

fn login_page(status: u16, message: &str) -> Response<Vec<u8>> {
    html(status, &LOGIN_HTML.replace("{{message}}", message))
}

/// The `key` field of an `application/x-www-form-urlencoded` body.
fn form_key(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "key").then(|| crate::admin::requests::decode(v))
    })
}

impl Dashboard {
    /// Whether the `Cookie` header holds a live session.
    pub fn session_valid(&self, cookie: Option<&str>) -> bool {
        cookie
            .and_then(session::from_cookie_header)
            .is_some_and(|id| self.sessions.valid(id, Instant::now()))
    }

    /// Answers `/ui` and `/ui/...`. `body` is the request body (read only for the login).
    pub async fn serve(&self, req: &UiRequest<'_>, body: &[u8]) -> Response<Vec<u8>> {
        match (req.method, req.path) {
            ("GET", "/ui/app.js") => page(
                200,
                "text/javascript; charset=utf-8",
                APP_JS.as_bytes().to_vec(),
            ),
            ("GET", "/ui/style.css") => page(
                200,
                "text/css; charset=utf-8",
                STYLE_CSS.as_bytes().to_vec(),
            ),
            ("POST", "/ui/login") => self.login(req, body),
            ("POST", "/ui/logout") => {
                if let Some(id) = req.cookie.and_then(session::from_cookie_header) {
                    self.sessions.remove(id);
                }
                redirect("/ui", Some(session::clear_cookie()))
            }
            _ if !req.authorized => login_page(401, ""),
            ("GET", "/ui" | "/ui/") => html(200, INDEX_HTML),
            ("GET", "/ui/waterfall.svg") => waterfall(req).await,
            ("GET", "/ui/experiment.svg") => experiment(req).await,
            _ => html(
                404,
                "<!doctype html><title>Not found</title><p>No such page.",
            ),
        }
    }

    fn login(&self, req: &UiRequest<'_>, body: &[u8]) -> Response<Vec<u8>> {
        let Some(expected) = req.key else {
            // No admin key: the page is open (the port is on loopback).
            return redirect("/ui", None);
        };
        let presented = form_key(body).unwrap_or_default();
        if crate::admin::key_matches(&presented, expected) {
            let id = self.sessions.create(Instant::now());
            redirect("/ui", Some(session::set_cookie(&id)))
        } else {
            log::warn!("dashboard login refused: wrong admin key");
            login_page(401, "That is not the admin key.")
        }
    }
}

/// The value of query parameter `name`, decoded.
fn param(query: &str, name: &str) -> String {
    query
        .split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
        .map(crate::admin::requests::decode)
        .unwrap_or_default()
}

async fn waterfall(req: &UiRequest<'_>) -> Response<Vec<u8>> {
    let id = param(req.query, "id");
    let attempts = match req.source.request(id).await {
        Ok(Some(v)) => v
            .get("attempts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        Ok(None) => return html(404, "<!doctype html><p>No such request."),
        Err(e) => return html(500, &format!("<!doctype html><p>{}", escape(&e))),
    };
    match charts::waterfall(&charts::bars(&attempts)) {
        Ok(svg) => page(200, "image/svg+xml", svg.into_bytes()),
        Err(e) => html(500, &format!("<!doctype html><p>{}", escape(&e))),
    }
}

/// `GET /ui/experiment.svg?name=NAME`: the experiment's variants with their intervals
/// ([`charts::intervals`]), read from the ledger on a blocking thread.
async fn experiment(req: &UiRequest<'_>) -> Response<Vec<u8>> {
    let name = param(req.query, "name");
    let (Some(state), Some(source)) = (req.state.clone(), req.experiments.clone()) else {
        return html(404, "<!doctype html><p>No such experiment.");
    };
    let read = tokio::task::spawn_blocking(move || {
        if state.config.experiment(&name).is_none() {
            return Ok(None);
        }
        let report = crate::experiments::report::read(&*source, &state.config, &name)?;
        charts::intervals(&report).map(Some)
    })
    .await;
    match read {
        Ok(Ok(Some(svg))) => page(200, "image/svg+xml", svg.into_bytes()),
        Ok(Ok(None)) => html(404, "<!doctype html><p>No such experiment."),
        Ok(Err(e)) => html(500, &format!("<!doctype html><p>{}", escape(&e))),
        Err(e) => html(
            500,
            &format!("<!doctype html><p>{}", escape(&e.to_string())),
        ),
    }
}

/// `GET /admin/spend/series`: spend per time bucket, by key, feature, model and provider, with
/// the charts as SVG strings when `charts=svg`, from whichever store the ledger is in.
pub async fn series_json(source: &Source, query: &str) -> (u16, Value) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let q = match series::parse_query(query, now) {
        Ok(q) => q,
        Err(e) => return (400, json!({"error": e})),
    };
    let charts_too = q.charts;
    let s = match source.series(q).await {
        Ok(s) => s,
        Err(e) => return (500, json!({"error": e})),
    };
    // Drawing is CPU work: off the async threads.
    let done = tokio::task::spawn_blocking(move || -> Result<Value, String> {
        let mut v = s.to_json();
        if charts_too {
            let mut svgs = serde_json::Map::new();
            for (by, groups) in &s.by {
                svgs.insert(
                    by.as_str().to_owned(),
                    Value::String(charts::spend_chart(&s, *by, groups)?),
                );
            }
            v["charts"] = Value::Object(svgs);
        }
        Ok(v)
    })
    .await;
    match done {
        Ok(Ok(v)) => (200, v),
        Ok(Err(e)) => (500, json!({"error": e})),
        Err(e) => (500, json!({"error": e.to_string()})),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn req<'a>(method: &'a str, path: &'a str, authorized: bool) -> UiRequest<'a> {
        UiRequest {
            method,
            path,
            query: "",
            cookie: None,
            authorized,
            key: Some("sk-admin"),
            source: Source::Sqlite(PathBuf::from("/nonexistent/ledger.db")),
            state: None,
            experiments: None,
        }
    }

    fn header<'a>(r: &'a Response<Vec<u8>>, name: &str) -> &'a str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn login_sets_a_session_cookie_and_never_echoes_the_key() {
        let d = Dashboard::default();
        let r = d.serve(&req("GET", "/ui", false), b"").await;
        assert_eq!(r.status(), 401);
        assert!(String::from_utf8_lossy(r.body()).contains("<form"));
        let bad = d
            .serve(&req("POST", "/ui/login", false), b"key=wrong")
            .await;
        assert_eq!(bad.status(), 401);
        assert!(d.sessions.is_empty());
        let ok = d
            .serve(&req("POST", "/ui/login", false), b"key=sk%2Dadmin")
            .await;
        assert_eq!(ok.status(), 303);
        let cookie = header(&ok, "set-cookie").to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(!cookie.contains("sk-admin"));
        assert!(d.session_valid(Some(&cookie)));
        assert!(!d.session_valid(Some("switchyard_session=forged")));
        let mut out = req("POST", "/ui/logout", true);
        out.cookie = Some(&cookie);
        let r = d.serve(&out, b"").await;
        assert!(header(&r, "set-cookie").contains("Max-Age=0"));
        assert!(!d.session_valid(Some(&cookie)));
    }

    #[tokio::test]
    async fn assets_are_embedded_and_the_page_needs_authorization() {
        let d = Dashboard::default();
        let js = d.serve(&req("GET", "/ui/app.js", false), b"").await;
        assert_eq!(js.status(), 200);
        assert!(header(&js, "content-type").starts_with("text/javascript"));
        let page = d.serve(&req("GET", "/ui", true), b"").await;
        assert_eq!(page.status(), 200);
        let text = String::from_utf8_lossy(page.body()).into_owned();
        assert!(text.contains("/ui/app.js"));
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "no CDN"
        );
        assert!(header(&page, "content-security-policy").contains("default-src 'self'"));
        let none = d.serve(&req("GET", "/ui/nope", true), b"").await;
        assert_eq!(none.status(), 404);
    }
}
