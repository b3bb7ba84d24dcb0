//! Response caching through the real binary and the mock provider: hit, miss, bypass, TTL
//! expiry, replay across stream/non-stream and dialects, tenant isolation, eviction under the
//! byte limit, the stampede (100 identical requests, one upstream call), what is never stored,
//! and the ledger's saved cost.

mod common;
use common::*;
use serde_json::{json, Value};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use switchyard::ledger;

const OTHER_KEY: &str = "sk-sy-other-tenant";
const SHARED_A: &str = "sk-sy-shared-a-key";
const SHARED_B: &str = "sk-sy-shared-b-key";

/// Extra config: a cached route, more keys, an admin port, and `extra` (e.g. `[cache]`).
fn config_extra(admin_port: u16, extra: &str) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:{admin_port}"

{extra}

[[routes]]
name = "cached"
targets = ["anthropic/claude-sonnet-4-5"]
cache = {{ ttl = "10m" }}

[[routes]]
name = "cached-no-tools"
targets = ["openai/gpt-4o-mini"]
cache = {{ ttl = "10m", tool_calls = false }}

[[gateway_keys]]
name = "other"
key = "{OTHER_KEY}"

[[gateway_keys]]
name = "shared-a"
key = "{SHARED_A}"
cache_namespace = "team"

[[gateway_keys]]
name = "shared-b"
key = "{SHARED_B}"
cache_namespace = "team"
"#
    )
}

struct Stack {
    mock: Mock,
    gw: Gateway,
    admin: u16,
}

fn start(extra: &str) -> Stack {
    let mock = start_mock(&[]);
    let admin = free_port();
    let cfg = standard_config(free_port(), mock.port, "") + &config_extra(admin, extra);
    let gw = start_gateway_with(&cfg);
    Stack { mock, gw, admin }
}

fn get(port: u16, path: &str) -> RawResponse {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    roundtrip(&mut s, "GET", path, &[], b"")
}

fn upstream_calls(st: &Stack) -> u64 {
    get(st.mock.port, "/mock/stats").json()["requests"]
        .as_u64()
        .unwrap()
}

fn question(model: &str, text: &str) -> Value {
    json!({"model": model, "max_completion_tokens": 100,
        "messages": [{"role": "user", "content": text}]})
}

fn openai(st: &Stack, key: &str, body: &Value, extra: &[(&str, &str)]) -> RawResponse {
    let auth = format!("Bearer {key}");
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(extra);
    let mut s = connect(&st.gw);
    roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &h,
        body.to_string().as_bytes(),
    )
}

fn text_of(r: &RawResponse) -> String {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn outcome(r: &RawResponse) -> &str {
    r.header("x-switchyard-cache").unwrap_or("none")
}

#[test]
fn hits_replay_to_any_client_streamed_or_not_and_cost_nothing() {
    let st = start("");
    let q = question("cached", "Tell me about caches");
    let first = openai(&st, GW_KEY, &q, &[]);
    assert_eq!(outcome(&first), "miss");
    let text = text_of(&first);
    let calls = upstream_calls(&st);
    let cost: f64 = first
        .header("x-switchyard-cost-usd")
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost > 0.0);

    let again = openai(&st, GW_KEY, &q, &[]);
    assert_eq!(outcome(&again), "hit");
    assert_eq!(text_of(&again), text);
    assert_eq!(again.header("x-switchyard-cost-usd"), Some("0"));
    assert_eq!(again.header("x-switchyard-provider"), Some("anthropic"));
    assert_eq!(first.header("x-switchyard-route-reason"), Some("fallback"));
    assert_eq!(
        again.header("x-switchyard-route-reason"),
        None,
        "a hit was not routed"
    );
    assert_eq!(upstream_calls(&st), calls, "a hit makes no upstream call");

    // The same question streamed: served from the non-streamed entry, as SSE.
    let mut streamed = q.clone();
    streamed["stream"] = json!(true);
    let r = openai(&st, GW_KEY, &streamed, &[]);
    assert_eq!(outcome(&r), "hit");
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let body = String::from_utf8(r.body.clone()).unwrap();
    let pieces: String = body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(pieces, text);
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");

    // The same question from the Anthropic SDK: one canonical entry, its dialect.
    let ant = json!({"model": "cached", "max_tokens": 100,
        "messages": [{"role": "user", "content": "Tell me about caches"}]});
    let mut s = connect(&st.gw);
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/messages",
        &[("x-api-key", GW_KEY), ("anthropic-version", "2023-06-01")],
        ant.to_string().as_bytes(),
    );
    assert_eq!(outcome(&r), "hit", "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["content"][0]["text"], text.as_str());
    assert_eq!(upstream_calls(&st), calls);

    // The ledger: the hit cost nothing and saved what the miss cost.
    let id = again.header("x-switchyard-request-id").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let row = loop {
        if let Ok(Some(r)) = ledger::read_row(&st.gw.ledger_path(), id) {
            break r;
        }
        assert!(Instant::now() < deadline, "no ledger row");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(row.cache_hit);
    assert_eq!(row.cost_usd, Some(rust_decimal::Decimal::ZERO));
    let saved = row.saved_usd.expect("saved cost recorded");
    assert_eq!(saved.to_string().parse::<f64>().unwrap(), cost);

    let metrics = String::from_utf8(get(st.admin, "/metrics").body).unwrap();
    assert!(
        metrics.contains("switchyard_cache_requests_total{outcome=\"hit\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_cache_store{stat=\"entries\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_stored_stream_serves_a_whole_answer_and_the_stream_flag_is_not_in_the_key() {
    let st = start("");
    let mut q = question("cached", "Stream first");
    q["stream"] = json!(true);
    let r = openai(&st, GW_KEY, &q, &[]);
    assert_eq!(outcome(&r), "miss");
    let calls = upstream_calls(&st);
    q["stream"] = json!(false);
    let r = openai(&st, GW_KEY, &q, &[]);
    assert_eq!(outcome(&r), "hit");
    assert!(!text_of(&r).is_empty());
    assert_eq!(upstream_calls(&st), calls);
}

#[test]
fn bypass_ttl_and_per_request_opt_in() {
    let st = start("");
    let q = question("cached", "bypass me");
    assert_eq!(outcome(&openai(&st, GW_KEY, &q, &[])), "miss");
    let calls = upstream_calls(&st);
    let r = openai(&st, GW_KEY, &q, &[("x-switchyard-cache", "off")]);
    assert_eq!(outcome(&r), "bypass");
    let r = openai(&st, GW_KEY, &q, &[("cache-control", "no-store")]);
    assert_eq!(outcome(&r), "bypass");
    // no-cache on a cached route: not served from the cache (a refresh, see below).
    let r = openai(&st, GW_KEY, &q, &[("cache-control", "no-cache")]);
    assert_eq!(outcome(&r), "miss");
    assert_eq!(upstream_calls(&st), calls + 3);

    // A route without caching: nothing unless the request opts in, with its own TTL.
    let q = question("chat", "opt in with a short ttl");
    let r = openai(&st, GW_KEY, &q, &[]);
    assert_eq!(r.header("x-switchyard-cache"), None);
    let ttl = [("x-switchyard-cache", "ttl=1")];
    assert_eq!(outcome(&openai(&st, GW_KEY, &q, &ttl)), "miss");
    assert_eq!(outcome(&openai(&st, GW_KEY, &q, &ttl)), "hit");
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(
        outcome(&openai(&st, GW_KEY, &q, &ttl)),
        "miss",
        "expired after its TTL"
    );
}

/// The client's `Cache-Control` wins over `x-switchyard-cache: ttl=N` (and a route's cache):
/// `no-store` neither reads nor writes; `no-cache` never serves a stored answer but stores the
/// fresh one in its place.
#[test]
fn client_no_cache_and_no_store_win_over_a_ttl_header() {
    let st = start("");
    let ttl = ("x-switchyard-cache", "ttl=600");
    let id = |r: &RawResponse| {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["id"].as_str().unwrap().to_owned()
    };

    // A stored answer exists...
    let q = question("chat", "stored already");
    assert_eq!(outcome(&openai(&st, GW_KEY, &q, &[ttl])), "miss");
    let stored = openai(&st, GW_KEY, &q, &[ttl]);
    assert_eq!(outcome(&stored), "hit");
    let calls = upstream_calls(&st);

    // ...but a client that says no-store or no-cache is never served it.
    for cc in ["no-store", "no-cache", "max-age=0, No-Cache"] {
        let r = openai(&st, GW_KEY, &q, &[ttl, ("cache-control", cc)]);
        assert_ne!(outcome(&r), "hit", "{cc}");
        assert_ne!(id(&r), id(&stored), "{cc}: the stored answer was served");
    }
    assert_eq!(upstream_calls(&st), calls + 3, "each went to the provider");

    // no-store writes nothing: the same question later is still a miss.
    let q = question("chat", "never stored");
    let r = openai(&st, GW_KEY, &q, &[ttl, ("cache-control", "no-store")]);
    assert_eq!(outcome(&r), "bypass");
    assert_eq!(outcome(&openai(&st, GW_KEY, &q, &[ttl])), "miss");

    // no-cache refreshes: its fresh answer replaces the stored one.
    let q = question("chat", "refreshed");
    let old = openai(&st, GW_KEY, &q, &[ttl]);
    assert_eq!(outcome(&old), "miss");
    let fresh = openai(&st, GW_KEY, &q, &[ttl, ("cache-control", "no-cache")]);
    assert_eq!(outcome(&fresh), "miss");
    assert_ne!(id(&fresh), id(&old));
    let later = openai(&st, GW_KEY, &q, &[ttl]);
    assert_eq!(outcome(&later), "hit");
    assert_eq!(
        id(&later),
        id(&fresh),
        "the refreshed answer is the one stored"
    );
}

#[test]
fn tenants_never_share_entries_unless_they_share_a_namespace() {
    let st = start("");
    let q = question("cached", "private question");
    assert_eq!(outcome(&openai(&st, GW_KEY, &q, &[])), "miss");
    assert_eq!(outcome(&openai(&st, GW_KEY, &q, &[])), "hit");
    assert_eq!(outcome(&openai(&st, OTHER_KEY, &q, &[])), "miss");
    assert_eq!(outcome(&openai(&st, SHARED_A, &q, &[])), "miss");
    assert_eq!(outcome(&openai(&st, SHARED_B, &q, &[])), "hit");
}

#[test]
fn errors_cut_streams_and_excluded_tool_calls_are_never_stored() {
    let st = start("[resilience]\nmax_attempts = 1");
    let q = question("cached", "fragile");
    let r = openai(&st, GW_KEY, &q, &[("x-mock-fault", "400")]);
    assert_eq!(r.status, 400);
    assert_eq!(
        outcome(&openai(&st, GW_KEY, &q, &[])),
        "miss",
        "an error was stored"
    );

    let m = question("cached", "malformed");
    let r = openai(&st, GW_KEY, &m, &[("x-mock-fault", "malformed")]);
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("could not be read"));
    assert_eq!(
        outcome(&openai(&st, GW_KEY, &m, &[])),
        "miss",
        "a malformed answer was stored"
    );

    let mut s = question("cached", "cut stream");
    s["stream"] = json!(true);
    let _ = openai(&st, GW_KEY, &s, &[("x-mock-fault", "cut:after=3")]);
    assert_eq!(
        outcome(&openai(&st, GW_KEY, &s, &[])),
        "miss",
        "a cut stream was stored"
    );
    assert_eq!(outcome(&openai(&st, GW_KEY, &s, &[])), "hit");

    let tools = json!([{"type": "function", "function": {"name": "f",
        "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}]);
    let mut t = question("cached-no-tools", "call a tool");
    t["tools"] = tools;
    let r = openai(&st, GW_KEY, &t, &[]);
    assert!(r.json()["choices"][0]["message"]["tool_calls"].is_array());
    assert_eq!(
        outcome(&openai(&st, GW_KEY, &t, &[])),
        "miss",
        "tool calls were stored"
    );
}

#[test]
fn a_stampede_of_identical_requests_makes_one_upstream_call() {
    let st = start("");
    let before = upstream_calls(&st);
    let n = 100;
    let barrier = Arc::new(Barrier::new(n));
    let addr = st.gw.addr();
    let body = question("cached", "everyone asks at once").to_string();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (barrier, addr, body) = (barrier.clone(), addr.clone(), body.clone());
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                barrier.wait();
                let auth = format!("Bearer {GW_KEY}");
                // The provider takes 500 ms to start: everyone arrives while the first waits.
                let r = roundtrip(
                    &mut s,
                    "POST",
                    "/v1/chat/completions",
                    &[("authorization", &auth), ("x-mock-ttft-ms", "500")],
                    body.as_bytes(),
                );
                (
                    r.status,
                    r.header("x-switchyard-cache").map(str::to_owned),
                    r.body,
                )
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        results.iter().all(|r| r.0 == 200),
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let hits = results
        .iter()
        .filter(|r| r.1.as_deref() == Some("hit"))
        .count();
    assert_eq!(hits, n - 1, "every request but the first is a hit");
    assert!(results.windows(2).all(|w| w[0].2 == w[1].2 || {
        // Bodies differ only in ids/timestamps; compare the text.
        let t = |b: &[u8]| {
            serde_json::from_slice::<Value>(b).unwrap()["choices"][0]["message"]["content"].clone()
        };
        t(&w[0].2) == t(&w[1].2)
    }));
    assert_eq!(
        upstream_calls(&st) - before,
        1,
        "one upstream call for {n} requests"
    );
}

#[test]
fn the_store_stays_within_its_byte_limit_and_evicts_the_least_recently_used() {
    let st = start("[cache]\nmax_size = \"64KiB\"\nmax_entry_size = \"16KiB\"");
    let tokens = [("x-mock-tokens", "1500")];
    let big = |i: usize| {
        let mut q = question("cached", &format!("question {i}"));
        q["max_completion_tokens"] = json!(4000);
        q
    };
    for i in 0..40 {
        let r = openai(&st, GW_KEY, &big(i), &tokens);
        assert_eq!(outcome(&r), "miss");
    }
    // Eviction runs in a background task after each insert: give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    let metrics = String::from_utf8(get(st.admin, "/metrics").body).unwrap();
    let stat = |name: &str| -> i64 {
        let prefix = format!("switchyard_cache_store{{stat=\"{name}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"))
            .parse()
            .unwrap()
    };
    assert!(
        stat("bytes") <= 64 * 1024 * 11 / 10,
        "bytes {} over the limit",
        stat("bytes")
    );
    assert!(stat("evictions") > 0, "{metrics}");
    assert!(stat("entries") < 40);
    // The newest entry is still there and the oldest went first. The newest is asked for
    // first: asking for the oldest stores it again, and that insert may evict another entry.
    let newest = openai(&st, GW_KEY, &big(39), &tokens);
    assert_eq!(outcome(&newest), "hit");
    let oldest = openai(&st, GW_KEY, &big(0), &tokens);
    assert_eq!(outcome(&oldest), "miss");
}
