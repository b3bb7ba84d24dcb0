//! The dashboard in a real browser: the gateway binary with the mock provider takes traffic,
//! then Debian's headless Chromium (driven over the DevTools protocol on a pipe, through
//! `scripts/chromium.sh`) signs in on an admin port bound off loopback, checks that the charts
//! and the request table show that traffic, narrows the table with filters, opens a request's
//! detail, looks at phone width, and signs out. A second test loads the page on a loopback
//! admin port with no key (it opens directly) with `--dump-dom`.
//!
//! Screenshots go to `target/test-artifacts/`. Chromium must be installed (`scripts/test.sh`
//! installs it); without it these tests fail, they never skip.

mod common;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_KEY: &str = "sk-admin-dashboard-0001";

/// A limit on the feature `search` and an experiment on the route `ab` (the mock's judge
/// grades an answer by the `-qN` of the model that wrote it).
const EXTRA: &str = r#"
[[features]]
name = "search"
rpm = 1000

[[providers]]
name = "lab"
kind = "openai-compatible"
base_url = "http://127.0.0.1:MOCK_PORT/v1"
api_keys = ["env:MOCK_KEY"]

[[routes]]
name = "ab"
targets = ["lab/gpt-q8"]

[[experiments]]
name = "ab-test"
route = "ab"
variants = [
  { name = "strong", target = "lab/gpt-q8" },
  { name = "weak", target = "lab/gpt-q3" },
]
judge = { target = "lab/judge", rubric = "Score the answer.", mode = "score", sample = 1.0 }
"#;
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn require_chromium() {
    let found = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "Debian's `chromium` is not installed: the dashboard tests need it. Run \
         `scripts/chromium.sh --install-only` (scripts/test.sh and .ci/run do it)."
    );
}

fn artifacts() -> PathBuf {
    let dir = Path::new(ROOT).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// Gateway + mock with an admin port on `admin_listen` (key or not) and a ledger in a tempdir.
/// The feature `search` has a rate limit, so its requests reserve their worst-case cost; the
/// route `ab` runs an experiment whose mock judge scores each variant's answers.
fn stack(admin_listen: &str, key: Option<&str>) -> (Mock, Gateway, tempfile::TempDir) {
    let mock = start_mock(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let key_line = key.map(|k| format!("key = \"{k}\"")).unwrap_or_default();
    let config = format!(
        "{}\n[ledger]\npath = \"{}\"\n\n[admin]\nlisten = \"{admin_listen}\"\n{key_line}\n{}",
        standard_config(free_port(), mock.port, ""),
        dir.path().join("ledger.db").display(),
        EXTRA.replace("MOCK_PORT", &mock.port.to_string()),
    );
    (mock, start_gateway_with(&config), dir)
}

/// Sends the test traffic: 13 requests over three keys' worth of routes and features, one
/// refused, one that fails over. Returns the refused request's status.
fn traffic(gw: &Gateway) -> u16 {
    let limited = format!("Bearer {LIMITED_KEY}");
    let send = |auth: &str, model: &str, feature: Option<&str>| {
        let mut h = vec![
            ("authorization", auth),
            ("content-type", "application/json"),
        ];
        if let Some(f) = feature {
            h.push(("x-switchyard-feature", f));
        }
        let mut s = connect(gw);
        roundtrip(
            &mut s,
            "POST",
            "/v1/chat/completions",
            &h,
            chat_body(model, false).as_bytes(),
        )
    };
    let b = bearer();
    for _ in 0..6 {
        assert_eq!(send(&b, "chat", Some("search")).status, 200);
    }
    for _ in 0..3 {
        assert_eq!(send(&b, "claude", Some("summarize")).status, 200);
    }
    for _ in 0..2 {
        assert_eq!(send(&limited, "chat", None).status, 200);
    }
    let failover = send(&b, "failover", Some("search"));
    assert_eq!(failover.status, 200);
    assert_eq!(attempts(&failover).len(), 2, "{:?}", attempts(&failover));
    let refused = send(&limited, "claude", None).status;
    assert!(
        refused >= 400,
        "the limited key may not use claude: {refused}"
    );
    refused
}

/// Requests on the experiment's route, from many users (both variants get traffic).
fn experiment_traffic(gw: &Gateway) {
    let b = bearer();
    for u in 0..24 {
        let user = format!("user-{u}");
        let mut s = connect(gw);
        let r = roundtrip(
            &mut s,
            "POST",
            "/v1/chat/completions",
            &[
                ("authorization", b.as_str()),
                ("content-type", "application/json"),
                ("x-user-id", user.as_str()),
            ],
            chat_body("ab", false).as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
}

/// A DevTools-protocol client over Chromium's `--remote-debugging-pipe` (fds 3 and 4, set up
/// from two FIFOs by bash), attached to one page.
struct Browser {
    child: Child,
    to: std::fs::File,
    from: BufReader<std::fs::File>,
    next_id: u64,
    session: String,
    _dir: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        require_chromium();
        let dir = tempfile::tempdir().expect("tempdir");
        let (fin, fout) = (dir.path().join("in"), dir.path().join("out"));
        for f in [&fin, &fout] {
            let ok = Command::new("mkfifo").arg(f).status().expect("mkfifo");
            assert!(ok.success(), "mkfifo failed");
        }
        let script = Path::new(ROOT).join("scripts/chromium.sh");
        let log = std::fs::File::create(dir.path().join("chromium.log")).expect("log");
        let mut cmd = Command::new("bash");
        cmd.args([
            "-c",
            r#"exec "$0" --remote-debugging-pipe --window-size=1280,1800 3<"$1" 4>"$2""#,
        ])
        .arg(&script)
        .arg(&fin)
        .arg(&fout)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().expect("spawn scripts/chromium.sh");
        let to = std::fs::OpenOptions::new()
            .write(true)
            .open(&fin)
            .expect("open pipe to chromium");
        let from = BufReader::new(std::fs::File::open(&fout).expect("open pipe from chromium"));
        let mut b = Browser {
            child,
            to,
            from,
            next_id: 0,
            session: String::new(),
            _dir: dir,
        };
        let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = b.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": id, "flatten": true}),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        b
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let v = self.send(session, method, params);
        assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
        v["result"].clone()
    }

    /// Sends one DevTools command; its whole answer (`result` or `error`).
    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        loop {
            let mut buf = Vec::new();
            let n = self
                .from
                .read_until(0, &mut buf)
                .expect("read from chromium");
            assert!(n > 0, "chromium closed its pipe (see its log)");
            buf.pop();
            let v: Value = serde_json::from_slice(&buf).expect("DevTools JSON");
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    fn page(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.call(Some(&s), method, params)
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.page(
            "Runtime.evaluate",
            json!({"expression": expr, "awaitPromise": true, "returnByValue": true}),
        );
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// [`eval`](Self::eval) while the page may be navigating (a sign-in's redirect): an
    /// evaluation the navigation interrupted is `None`, to be asked again; any other error
    /// fails the test as `eval` does.
    fn poll(&mut self, expr: &str) -> Option<Value> {
        let s = self.session.clone();
        let v = self.send(
            Some(&s),
            "Runtime.evaluate",
            json!({"expression": expr, "awaitPromise": true, "returnByValue": true}),
        );
        let message = v["error"]["message"].as_str().unwrap_or_default();
        if message.contains("navigated or closed") || message.contains("context was destroyed") {
            return None;
        }
        assert!(v.get("error").is_none(), "{expr}: {}", v["error"]);
        let r = &v["result"];
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        Some(r["result"]["value"].clone())
    }

    fn wait_for(&mut self, expr: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.poll(&format!("!!({expr})")) != Some(json!(true)) {
            assert!(Instant::now() < deadline, "page never satisfied `{expr}`");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for a freshly loaded dashboard to finish its first render.
    fn wait_ready(&mut self) {
        self.wait_for("document.readyState === 'complete' && document.body && document.body.dataset.ready === '1'");
    }

    fn navigate(&mut self, url: &str) {
        // So that `wait_ready` waits for the new document, not the one being left.
        self.eval("if (document.body) document.body.dataset.ready = '0'; 1");
        self.page("Page.navigate", json!({"url": url}));
    }

    fn screenshot(&mut self, name: &str) -> PathBuf {
        let r = self.page("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = artifacts().join(name);
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    fn rows(&mut self) -> Vec<Value> {
        let v = self.eval(
            "[...document.querySelectorAll('#requests-table tbody tr')].map(tr => \
             [...tr.cells].map(td => td.textContent))",
        );
        v.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn column(rows: &[Value], i: usize) -> Vec<String> {
    rows.iter()
        .map(|r| r[i].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn dashboard_in_chromium_signs_in_off_loopback_and_shows_the_traffic() {
    require_chromium();
    let admin = free_port();
    let (_mock, mut gw, _dir) = stack(&format!("0.0.0.0:{admin}"), Some(ADMIN_KEY));
    wait_for_port(admin, &mut gw.proc_);
    let refused = traffic(&gw);
    let base = format!("http://127.0.0.1:{admin}");
    let mut b = Browser::start();

    // Not signed in: the login form, and the API refuses the page's requests.
    b.navigate(&format!("{base}/ui"));
    b.wait_for("document.getElementById('login-form')");
    assert_eq!(
        b.eval("fetch('/admin/requests').then(r => r.status)"),
        json!(401)
    );
    // A wrong key is refused, and no cookie comes of it.
    b.eval("document.getElementById('key').value = 'wrong'; document.getElementById('login-form').submit(); 1");
    b.wait_for("document.getElementById('login-error') && document.getElementById('login-error').textContent.includes('not the admin key')");
    // The right key: the session cookie (HttpOnly, so the page's script cannot read it).
    b.eval(&format!(
        "document.getElementById('key').value = '{ADMIN_KEY}'; document.getElementById('login-form').submit(); 1"
    ));
    b.wait_ready();
    assert_eq!(
        b.eval("document.cookie"),
        json!(""),
        "the cookie is HttpOnly"
    );
    let url = b.eval("location.href");
    assert!(!url.to_string().contains(ADMIN_KEY), "{url}");
    let cookies = b.page(
        "Network.getCookies",
        json!({"urls": [format!("{base}/ui")]}),
    );
    let c = &cookies["cookies"][0];
    assert_eq!(c["name"], "switchyard_session", "{cookies}");
    assert_eq!(c["httpOnly"], true);
    assert_eq!(c["sameSite"], "Strict");
    assert!(c["expires"].as_f64().unwrap_or(-1.0) > 0.0, "expiring: {c}");
    assert!(!c["value"].to_string().contains(ADMIN_KEY));

    // The table shows every request, the charts and totals show the traffic.
    let rows = b.rows();
    assert_eq!(rows.len(), 13, "{rows:?}");
    assert_eq!(
        b.eval("document.getElementById('total-requests').textContent"),
        json!("13")
    );
    let model_chart = b.eval("document.querySelector('#chart-model svg').textContent");
    let model_chart = model_chart.as_str().unwrap_or("");
    assert!(model_chart.contains("openai/gpt-4o-mini"), "{model_chart}");
    assert!(
        model_chart.contains("anthropic/claude-sonnet-4-5"),
        "{model_chart}"
    );
    let feature_chart = b.eval("document.querySelector('#chart-feature').textContent");
    assert!(feature_chart.as_str().unwrap_or("").contains("summarize"));
    let lines =
        b.eval("document.querySelectorAll('#charts svg polyline, #charts svg path').length");
    assert!(lines.as_u64().unwrap_or(0) >= 4, "chart lines: {lines}");
    let cost = b.eval("document.getElementById('total-cost').textContent");
    assert_ne!(cost, json!("$0"), "priced traffic costs something");
    b.screenshot("dashboard-1280.png");

    // Filters narrow the table: typed into the form, and as links.
    b.eval("document.getElementById('f-feature').value = 'summarize'; document.getElementById('filters').requestSubmit(); 1");
    b.wait_for("location.search.includes('feature=summarize')");
    b.wait_ready();
    let rows = b.rows();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(column(&rows, 3).iter().all(|f| f == "summarize"));
    b.navigate(&format!("{base}/ui?key=limited"));
    b.wait_ready();
    let rows = b.rows();
    assert_eq!(rows.len(), 3, "two served and one refused: {rows:?}");
    b.navigate(&format!("{base}/ui?status={refused}"));
    b.wait_ready();
    let rows = b.rows();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(column(&rows, 5)[0].starts_with(&refused.to_string()));
    b.navigate(&format!(
        "{base}/ui?model=anthropic%2Fclaude-sonnet-4-5&cache=miss"
    ));
    b.wait_ready();
    assert_eq!(
        b.rows().len(),
        0,
        "model matches the bare name, not provider/model"
    );
    b.navigate(&format!("{base}/ui?model=claude-sonnet-4-5"));
    b.wait_ready();
    assert_eq!(b.rows().len(), 3);

    // A request's detail: the failed-over one, with its two attempts drawn.
    b.navigate(&format!("{base}/ui"));
    b.wait_ready();
    b.eval("[...document.querySelectorAll('#requests-table tbody tr')].find(tr => tr.cells[6].textContent === '2').cells[1].querySelector('a').click(); 1");
    b.wait_for("location.search.includes('request=')");
    b.wait_ready();
    b.wait_for("!document.getElementById('detail').hidden && document.querySelectorAll('#detail-attempts tbody tr').length === 2");
    b.wait_for("document.querySelector('#detail-waterfall img').complete && document.querySelector('#detail-waterfall img').naturalWidth > 0");
    let cost = b.eval("document.getElementById('detail-cost').textContent");
    let cost = cost.as_str().unwrap_or("");
    assert!(cost.contains("reserved cost USD"), "{cost}");
    // Its candidates include an unpriced one (`down/never`): nothing could be reserved.
    assert!(cost.contains("none (no limit"), "{cost}");
    // The routing waterfall: the fallback order's two candidates, the first failed, the
    // second served, each with its cost.
    let route = b.eval("[...document.querySelectorAll('#detail-route tbody tr')].map(tr => [...tr.cells].map(c => c.textContent).join('|'))");
    let route: Vec<String> = route
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(route.len(), 2, "{route:?}");
    assert!(
        route[0].contains("down/never") && route[0].contains("failed"),
        "{route:?}"
    );
    assert!(
        route[1].contains("openai/gpt-4o-mini") && route[1].contains("served"),
        "{route:?}"
    );
    let summary = b.eval("document.getElementById('detail-route-summary').textContent");
    assert!(
        summary
            .as_str()
            .unwrap_or("")
            .contains("strategy: fallback"),
        "{summary}"
    );
    let attempts = b.eval("document.getElementById('detail-attempts').textContent");
    assert!(
        attempts.as_str().unwrap_or("").contains("down"),
        "{attempts}"
    );
    b.eval("document.getElementById('detail').scrollIntoView(); 1");
    b.screenshot("dashboard-detail.png");

    // A `search` request on a priced route: the feature's limit reserved its worst case before
    // the call, shown beside what it cost.
    let id = b.eval("[...document.querySelectorAll('#requests-table tbody tr')].find(tr => tr.cells[3].textContent === 'search' && tr.cells[6].textContent === '1').dataset.id");
    let id = id.as_str().expect("a search request").to_owned();
    b.navigate(&format!("{base}/ui?request={id}"));
    b.wait_ready();
    b.wait_for("document.getElementById('detail-reserved')");
    let cost = b.eval("document.getElementById('detail-cost').textContent");
    let cost = cost.as_str().unwrap_or("").to_owned();
    let reserved = b.eval("document.getElementById('detail-reserved').textContent");
    let reserved: f64 = reserved.as_str().unwrap_or("").parse().unwrap_or(0.0);
    assert!(reserved > 0.0, "reserved: {cost}");
    assert!(cost.contains("actual / reserved"), "{cost}");
    let api = b.eval(&format!(
        "fetch('/admin/requests/{id}').then(r => r.json()).then(j => [j.reserved_usd, j.cost_usd])"
    ));
    assert!(
        api[0]
            .as_str()
            .is_some_and(|r| r.parse::<f64>().unwrap_or(0.0) == reserved),
        "{api}"
    );

    // The experiment: once the judge has scored both variants, each one's interval is drawn.
    experiment_traffic(&gw);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = b.eval("fetch('/admin/experiments').then(r => r.json()).then(j => j.experiments[0].variants.filter(v => v.ci_low !== null).length)");
        if v.as_u64() == Some(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the judge never scored both variants"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    b.navigate(&format!("{base}/ui#experiments"));
    b.wait_ready();
    b.wait_for("document.querySelector('#experiment-charts img') && document.querySelector('#experiment-charts img').complete && document.querySelector('#experiment-charts img').naturalWidth > 0");
    let svg =
        b.eval("fetch(document.querySelector('#experiment-charts img').src).then(r => r.text())");
    let svg = svg.as_str().unwrap_or("");
    assert!(svg.contains("ab-test (score)"), "{svg}");
    assert!(svg.contains("strong ") && svg.contains("weak "), "{svg}");
    assert!(
        svg.contains("<circle"),
        "each mean is a dot on its interval: {svg}"
    );
    assert!(
        svg.contains(" ["),
        "the interval's bounds are written: {svg}"
    );
    b.eval("document.getElementById('experiments').scrollIntoView(); 1");
    b.screenshot("dashboard-experiments.png");

    // Phone width: nothing pushes the page sideways (wide tables scroll in their box).
    b.page(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
    );
    b.navigate(&format!("{base}/ui"));
    b.wait_ready();
    let overflow = b.eval("document.documentElement.scrollWidth - window.innerWidth");
    assert!(
        overflow.as_i64().unwrap_or(99) <= 1,
        "page wider than the phone: {overflow}"
    );
    b.screenshot("dashboard-phone.png");

    // Sign out: the session is gone server-side too.
    b.eval("document.querySelector('form.logout').submit(); 1");
    b.wait_for("document.getElementById('login-form')");
    assert_eq!(
        b.eval("fetch('/admin/requests').then(r => r.status)"),
        json!(401)
    );
}

#[test]
fn dashboard_on_loopback_without_a_key_opens_directly() {
    require_chromium();
    let admin = free_port();
    let (_mock, mut gw, _dir) = stack(&format!("127.0.0.1:{admin}"), None);
    wait_for_port(admin, &mut gw.proc_);
    traffic(&gw);
    let out = Command::new(Path::new(ROOT).join("scripts/chromium.sh"))
        .args([
            "--dump-dom",
            "--virtual-time-budget=8000",
            &format!("http://127.0.0.1:{admin}/ui?feature=search"),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/chromium.sh");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dom.contains("data-ready=\"1\""), "{dom}");
    assert!(
        !dom.contains("login-form"),
        "no login on loopback without a key"
    );
    // Seven requests carry the feature `search`; the table shows them and only them.
    assert_eq!(dom.matches("<tr data-id=").count(), 7, "{dom}");
    assert!(
        dom.contains("Spend by model"),
        "the charts are drawn: {dom}"
    );
    // The experiment is listed, with its intervals' chart.
    assert!(dom.contains("ab-test"), "{dom}");
    assert!(dom.contains("/ui/experiment.svg?name=ab-test"), "{dom}");
}
