//! The admin API, each route against the real binary: keys (create, list, revoke, rotate),
//! the request log (filters, newest first, pagination, one request with attempts and kept
//! bodies, redacted), spend, targets, health, reload, and the admin key. Also: no gateway or
//! provider key in plain text in the logs, the metrics, the ledger or the key store.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ADMIN_KEY: &str = "sk-admin-secret-0001";

fn stack(extra: &str) -> (Mock, Gateway, u16, tempfile::TempDir) {
    let mock = start_mock(&[]);
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    let config = format!(
        "{}\n[ledger]\npath = \"{}\"\n\n[admin]\nlisten = \"127.0.0.1:{admin}\"\nkey = \"{ADMIN_KEY}\"\n\n{extra}\n",
        standard_config(free_port(), mock.port, ""),
        dir.path().join("ledger.db").display()
    );
    let mut gw = start_gateway_with(&config);
    wait_for_port(admin, &mut gw.proc_);
    (mock, gw, admin, dir)
}

fn admin(port: u16, method: &str, path: &str, body: Option<Value>) -> RawResponse {
    admin_as(port, method, path, body, Some(ADMIN_KEY))
}

fn admin_as(
    port: u16,
    method: &str,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> RawResponse {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut h = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        h.push(("authorization", a.as_str()));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    roundtrip(&mut s, method, path, &h, body.as_bytes())
}

fn chat(gw: &Gateway, key: &str, body: &Value, extra: &[(&str, &str)]) -> RawResponse {
    let auth = format!("Bearer {key}");
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(extra);
    let mut s = connect(gw);
    roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &h,
        body.to_string().as_bytes(),
    )
}

fn poll(limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn keys_crud_over_the_admin_api() {
    let (_mock, gw, port, _dir) = stack("");
    let hi =
        json!({"model": "chat", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]});
    // The admin key is required.
    assert_eq!(admin_as(port, "GET", "/admin/keys", None, None).status, 401);
    assert_eq!(
        admin_as(port, "GET", "/admin/keys", None, Some("wrong")).status,
        401
    );

    let r = admin(
        port,
        "POST",
        "/admin/keys",
        Some(
            json!({"name": "ops", "models": ["chat"], "rpm": 5, "budget_usd": "2.50", "period": "week", "log_bodies": "redacted"}),
        ),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let created = r.json();
    let secret = created["key"].as_str().unwrap().to_owned();
    assert_eq!(created["rpm"], 5);
    assert_eq!(created["budget_usd"], "2.50");
    poll(Duration::from_secs(1), || {
        chat(&gw, &secret, &hi, &[]).status == 200
    });

    // Bad specs and duplicates.
    let dup = admin(port, "POST", "/admin/keys", Some(json!({"name": "ops"})));
    assert_eq!(dup.status, 409);
    let bad = admin(
        port,
        "POST",
        "/admin/keys",
        Some(json!({"name": "x", "models": ["nope"]})),
    );
    assert_eq!(bad.status, 400);
    let typo = admin(
        port,
        "POST",
        "/admin/keys",
        Some(json!({"name": "x", "rpms": 1})),
    );
    assert_eq!(typo.status, 400);
    let clash = admin(port, "POST", "/admin/keys", Some(json!({"name": "tests"})));
    assert_eq!(clash.status, 409, "a config key's name");

    let list = admin(port, "GET", "/admin/keys", None);
    assert_eq!(list.status, 200);
    let text = String::from_utf8_lossy(&list.body).to_string();
    assert!(!text.contains(&secret), "no secret in a listing");
    let keys = list.json()["keys"].as_array().unwrap().clone();
    let ops = keys.iter().find(|k| k["name"] == "ops").unwrap();
    assert_eq!(ops["source"], "store");
    assert_eq!(ops["period"], "week");
    assert!(ops["spent_this_period_usd"].is_string());
    assert!(keys
        .iter()
        .any(|k| k["name"] == "tests" && k["source"] == "config"));

    let r = admin(
        port,
        "POST",
        "/admin/keys/ops/rotate",
        Some(json!({"grace": "1h"})),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let new = r.json()["key"].as_str().unwrap().to_owned();
    poll(Duration::from_secs(1), || {
        chat(&gw, &new, &hi, &[]).status == 200
    });
    assert_eq!(chat(&gw, &secret, &hi, &[]).status, 200, "in grace");

    assert_eq!(
        admin(port, "POST", "/admin/keys/ops/revoke", None).status,
        200
    );
    assert_eq!(admin(port, "DELETE", "/admin/keys/ops", None).status, 404);
    poll(Duration::from_secs(1), || {
        chat(&gw, &new, &hi, &[]).status == 401
    });
    assert_eq!(chat(&gw, &secret, &hi, &[]).status, 401);
    assert_eq!(
        admin(port, "POST", "/admin/keys/nobody/rotate", None).status,
        404
    );
}

#[test]
fn request_log_filters_paginates_and_shows_redacted_bodies() {
    let (_mock, gw, port, _dir) = stack(
        "[[gateway_keys]]\nname = \"careful\"\nkey = \"sk-sy-careful-key-01\"\nlog_bodies = \"redacted\"\n\n\
         [[gateway_keys]]\nname = \"open\"\nkey = \"sk-sy-open-key-00001\"\nlog_bodies = \"full\"\n\n\
         [logging]\nredact = [{ name = \"ticket\", pattern = \"TCK-[0-9]{5}\" }]\n",
    );
    let secrets =
        "mail jane@example.com, card 4242 4242 4242 4242, key sk-proj-abcdefghijklmnopqrstuv, \
                   auth Bearer abcdefghijklmnop.qrstuv, ticket TCK-12345";
    let body = json!({"model": "chat", "max_tokens": 4, "messages": [{"role": "user", "content": secrets}]});
    let r = chat(
        &gw,
        "sk-sy-careful-key-01",
        &body,
        &[("x-switchyard-feature", "billing")],
    );
    assert_eq!(r.status, 200);
    let careful_id = r.header("x-switchyard-request-id").unwrap().to_owned();
    let stream = json!({"model": "chat", "stream": true, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let r = chat(&gw, "sk-sy-open-key-00001", &stream, &[]);
    assert_eq!(r.status, 200);
    let stream_id = r.header("x-switchyard-request-id").unwrap().to_owned();
    for _ in 0..3 {
        let plain = json!({"model": "claude", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(chat(&gw, GW_KEY, &plain, &[]).status, 200);
    }
    let denied = chat(
        &gw,
        LIMITED_KEY,
        &json!({"model": "claude", "messages": []}),
        &[],
    );
    assert_eq!(denied.status, 403);

    // One request: the row, its attempts, its bodies (redacted).
    let mut one = Value::Null;
    poll(Duration::from_secs(10), || {
        let r = admin(port, "GET", &format!("/admin/requests/{careful_id}"), None);
        one = if r.status == 200 {
            r.json()
        } else {
            Value::Null
        };
        !one["bodies"].is_null()
    });
    assert_eq!(one["gateway_key"], "careful");
    assert_eq!(one["attempts"][0]["status"], 200, "{one}");
    assert_eq!(one["attempts"][0]["role"], "served", "{one}");
    let req = one["bodies"]["request"].as_str().unwrap();
    for gone in [
        "jane@",
        "4242 4242",
        "sk-proj-",
        "abcdefghijklmnop.qrstuv",
        "TCK-12345",
    ] {
        assert!(!req.contains(gone), "{gone} kept: {req}");
    }
    for kind in ["email", "card", "api_key", "bearer", "ticket"] {
        assert!(req.contains(&format!("[REDACTED:{kind}]")), "{kind}: {req}");
    }
    assert_eq!(one["bodies"]["mode"], "redacted");
    // A stream is kept as the answer it assembled to.
    let mut s = Value::Null;
    poll(Duration::from_secs(10), || {
        s = admin(port, "GET", &format!("/admin/requests/{stream_id}"), None).json();
        !s["bodies"].is_null()
    });
    assert_eq!(s["bodies"]["response_form"], "assembled");
    assert_eq!(
        s["bodies"]["response"].as_str().unwrap(),
        "Hello from gpt-4o-mini! tok1 tok2"
    );
    // A key without a logging rule keeps metadata only.
    let page = admin(port, "GET", "/admin/requests?key=tests&limit=2", None).json();
    let rows = page["requests"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let id0 = rows[0]["request_id"].as_str().unwrap().to_owned();
    let id1 = rows[1]["request_id"].as_str().unwrap().to_owned();
    assert!(id0 > id1, "newest first");
    let next = page["next_before"].as_str().unwrap().to_owned();
    assert_eq!(next, id1);
    let rest = admin(
        port,
        "GET",
        &format!("/admin/requests?key=tests&before={next}"),
        None,
    )
    .json();
    let rest = rest["requests"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert!(rest[0]["request_id"].as_str().unwrap() < id1.as_str());
    assert!(rest.iter().all(|r| r["gateway_key"] == "tests"));
    let plain = admin(port, "GET", &format!("/admin/requests/{id0}"), None).json();
    assert!(plain["bodies"].is_null(), "{plain}");
    // Other filters.
    let f = admin(port, "GET", "/admin/requests?feature=billing", None).json();
    assert_eq!(f["requests"].as_array().unwrap().len(), 1);
    let st = admin(port, "GET", "/admin/requests?status=403", None).json();
    assert_eq!(st["requests"][0]["gateway_key"], "limited");
    let m = admin(port, "GET", "/admin/requests?model=claude", None).json();
    assert_eq!(m["requests"].as_array().unwrap().len(), 4);
    assert_eq!(
        admin(port, "GET", "/admin/requests?limit=0", None).status,
        400
    );
    assert_eq!(
        admin(port, "GET", "/admin/requests/req_nothing", None).status,
        404
    );
}

#[test]
fn spend_targets_health_reload_and_no_secret_anywhere() {
    let (_mock, gw, port, dir) = stack("");
    let hi =
        json!({"model": "chat", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(chat(&gw, GW_KEY, &hi, &[]).status, 200);
    assert_eq!(chat(&gw, "sk-sy-wrong-key-guess", &hi, &[]).status, 401);
    let created = admin(port, "POST", "/admin/keys", Some(json!({"name": "rt"}))).json();
    let runtime = created["key"].as_str().unwrap().to_owned();
    poll(Duration::from_secs(1), || {
        chat(&gw, &runtime, &hi, &[]).status == 200
    });

    let spend = admin(port, "GET", "/admin/spend?by=key&since=1d", None);
    assert_eq!(spend.status, 200);
    assert!(String::from_utf8_lossy(&spend.body).contains("\"tests\""));
    let t = admin(port, "GET", "/admin/targets", None).json();
    let chat_route = t["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "chat")
        .unwrap()
        .clone();
    assert_eq!(chat_route["targets"][0], "openai/gpt-4o-mini");
    assert!(t["health"].is_object());
    assert_eq!(admin(port, "GET", "/admin/health", None).status, 200);
    let r = admin(port, "POST", "/admin/reload", None);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["reloaded"], true);
    // Runtime keys survive a reload.
    assert_eq!(chat(&gw, &runtime, &hi, &[]).status, 200);
    let metrics = admin(port, "GET", "/metrics", None);
    assert_eq!(metrics.status, 200);

    std::thread::sleep(Duration::from_millis(500));
    let mut haystack = String::from_utf8_lossy(&metrics.body).to_string();
    haystack.push_str(&gw.proc_.stderr());
    haystack.push_str(&gw.proc_.stdout());
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        haystack.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.unwrap().path()).unwrap(),
        ));
    }
    assert!(haystack.contains("rt"), "the store was read");
    for secret in [
        GW_KEY,
        PROVIDER_KEY,
        runtime.as_str(),
        "sk-sy-wrong-key-guess",
        ADMIN_KEY,
    ] {
        assert!(
            !haystack.contains(secret),
            "{secret} appears in logs, metrics or the stores"
        );
    }
}
