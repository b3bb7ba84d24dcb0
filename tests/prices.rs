//! `switchyard prices list | check | import` through the real binary, and the prices override
//! file re-read on reload (SIGHUP): a new price applies to the next call.

mod common;
use common::*;
use rust_decimal::Decimal;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/litellm/model_prices_and_context_window.json"
);

#[test]
fn list_shows_model_period_figures_and_source() {
    let (code, out, err) = run(&["prices", "list", "--provider", "gemini"]);
    assert_eq!(code, 0, "{err}");
    // Both periods of gemini-2.5-flash: the first ends the day before the cut.
    assert!(
        out.contains("\ngemini/gemini-2.5-flash\n  context 1048576, max output 65536; supports: tools, vision, json_schema, reasoning, prompt_caching\n"),
        "{out}"
    );
    assert!(
        out.contains("  2025-06-17 .. 2025-10-30  input 0.30  output 2.50  cached 0.075\n"),
        "{out}"
    );
    assert!(
        out.contains("  2025-10-31 .. now         input 0.30  output 2.50  cached 0.03\n"),
        "{out}"
    );
    assert!(
        out.contains("      source: https://ai.google.dev/gemini-api/docs/pricing"),
        "{out}"
    );
    assert!(out.contains("(checked 2026-12-03)"), "{out}");
    assert!(out.contains("      above 200000 tokens: input 4.00  output 18.00  cached 0.40"));
    assert!(out.contains(
        "gemini/gemini-2.0-flash  (aliases: gemini-2.0-flash-001)  [deprecated 2026-06-01]"
    ));
    assert!(!out.contains("openai/"), "only the provider asked for");
    let (_, all, _) = run(&["prices", "list"]);
    assert!(all.contains(
        "\nanthropic/claude-opus-4-1  (aliases: claude-opus-4-1-20250805)  [retired 2026-12-03]\n"
    ));
    assert!(all.contains("uncertain: "));
    // Aliases declared by a later period are shown on the model's line.
    assert!(all.contains("\nmistral/mistral-large-latest  (aliases: mistral-large-2512)\n  context 262144, max output 262144; supports: tools, vision, json_schema, prompt_caching\n  2024-11-18 .. 2025-12-01  input 2.00  output 6.00\n"), "{all}");
    let (code, none, _) = run(&["prices", "list", "--provider", "nobody"]);
    assert_eq!(
        (code, none.as_str()),
        (0, "no prices for provider `nobody`\n")
    );
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn check_lists_unpriced_uncapable_stale_and_retired_targets() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "prices.toml",
        "[[prices]]\nprovider = \"local\"\nmodel = \"old-model\"\neffective = \"2024-01-01\"\n\
         input = \"1\"\noutput = \"2\"\nsource = \"house list\"\nchecked = \"1990-01-01\"\n\
         [[models]]\nprovider = \"local\"\nmodel = \"old-model\"\nsupports = []\n\
         source = \"house list\"\nchecked = \"1990-01-01\"\n\
         [[prices]]\nprovider = \"local\"\nmodel = \"bare-model\"\neffective = \"2024-01-01\"\n\
         input = \"1\"\noutput = \"2\"\nsource = \"house list\"\nchecked = \"2026-12-01\"\n",
    );
    let cfg = write(
        dir.path(),
        "gw.toml",
        "[pricing]\noverrides = \"prices.toml\"\n\
         [[providers]]\nname = \"local\"\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:1/v1\"\n\
         models = [\"bare-model\"]\n\
         [[providers]]\nname = \"xai\"\nkind = \"xai\"\napi_keys = [\"k\"]\n\
         [[routes]]\nname = \"a\"\ntargets = [\"local/old-model\", \"local/ghost\", \"xai/grok-4.3\"]\n\
         [[routes]]\nname = \"b\"\ntargets = [\"xai/grok-4-0709\", \"local/ghost\"]\n",
    );
    // 5000 days: the house price checked in 1990 is stale, the shipped ones (2026-12-03) are
    // not for years.
    let (code, out, err) = run(&["prices", "check", "--config", &cfg, "--max-age", "5000d"]);
    assert_eq!(code, 1, "{out}{err}");
    // Unpriced and without capabilities, named once with every place that uses it.
    assert!(out.contains("local/ghost (route \"a\", route \"b\")\n  - no price: calls to it are refused (pricing.unpriced = \"reject\")\n  - no capabilities"), "{out}");
    assert!(out.contains("local/old-model (route \"a\")\n  - price (effective 2024-01-01) last checked 1990-01-01 ("), "{out}");
    assert!(
        out.contains(" days ago, more than 5000); source: house list\n"),
        "{out}"
    );
    assert!(
        out.contains("local/bare-model (providers[0].models)\n  - no capabilities"),
        "{out}"
    );
    assert!(out.contains("xai/grok-4-0709 (route \"b\")\n  - retired upstream since 2026-05-15: calls to it fail upstream; move the route"), "{out}");
    assert!(
        !out.contains("xai/grok-4.3"),
        "a current, priced, described model: {out}"
    );
    assert!(out.ends_with("4 of 5 targets need attention\n"), "{out}");
    // A longer max age accepts the old check.
    let (_, out, _) = run(&["prices", "check", "--config", &cfg, "--max-age", "100000d"]);
    assert!(!out.contains("last checked"), "{out}");
    let (code, _, err) = run(&["prices", "check", "--config", &cfg, "--max-age", "6 months"]);
    assert_eq!(code, 1);
    assert!(err.contains("--max-age: `6 months`"), "{err}");
    // A clean config exits 0.
    let clean = write(
        dir.path(),
        "clean.toml",
        "[[providers]]\nname = \"xai\"\nkind = \"xai\"\napi_keys = [\"k\"]\n\
         [[routes]]\nname = \"a\"\ntargets = [\"xai/grok-4.3\"]\n",
    );
    // (A long --max-age: the shipped prices were checked on 2026-12-03, and this must not
    // fail once that is more than 180 days ago.)
    let (code, out, _) = run(&["prices", "check", "--config", &clean, "--max-age", "5200w"]);
    assert_eq!((code, out.as_str()), (0, "0 of 1 targets need attention\n"));
}

#[test]
fn import_writes_an_override_file_the_gateway_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("litellm-prices.toml");
    let (code, stdout, report) = run(&[
        "prices",
        "import",
        "--litellm",
        FIXTURE,
        "--out",
        out_file.to_str().unwrap(),
        "--effective",
        "2026-12-01",
        "--source",
        "litellm fixture",
    ]);
    assert_eq!(code, 0, "{report}");
    assert!(stdout.is_empty(), "the file goes to --out");
    assert!(report.starts_with("imported 11 models\n"), "{report}");
    assert!(
        report.contains("1 x the file's schema example, not a model: sample_spec"),
        "{report}"
    );
    assert!(
        report.contains("provider has no switchyard preset: bedrock/"),
        "{report}"
    );
    assert!(
        report.contains("input_cost_per_token_priority: 1 x (example-4o)"),
        "{report}"
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert!(text.contains("model = \"example-4o\"\neffective = \"2026-12-01\"\ninput = \"2.50\"\noutput = \"10.00\"\ncached_input = \"1.25\"\nsource = \"litellm fixture (key example-4o)\""), "{text}");
    // The converted file is a valid override: `check` loads it and the models are priced.
    let cfg = write(
        dir.path(),
        "gw.toml",
        "[pricing]\noverrides = \"litellm-prices.toml\"\n\
         [[providers]]\nname = \"openai\"\nkind = \"openai\"\napi_keys = [\"k\"]\n\
         [[routes]]\nname = \"a\"\ntargets = [\"openai/example-4o\"]\n",
    );
    let (code, out, err) = run(&["prices", "check", "--config", &cfg]);
    assert_eq!(
        (code, out.as_str()),
        (0, "0 of 1 targets need attention\n"),
        "{err}"
    );
    // Without --out the file goes to stdout; a missing file is an error naming it.
    let (code, stdout, _) = run(&[
        "prices",
        "import",
        "--litellm",
        FIXTURE,
        "--provider",
        "xai",
    ]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("provider = \"xai\"\nmodel = \"example-fast\""),
        "{stdout}"
    );
    let (code, _, err) = run(&["prices", "import", "--litellm", "/nonexistent.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent.json"), "{err}");
}

fn cost_of_one_call(gw: &Gateway) -> (Decimal, serde_json::Value) {
    let mut s = connect(gw);
    let r = roundtrip(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &bearer())],
        chat_body("openai/gpt-4o-mini", false).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let cost = Decimal::from_str(r.header("x-switchyard-cost-usd").unwrap()).unwrap();
    (cost, r.json()["usage"].clone())
}

fn override_prices(input: &str, output: &str) -> String {
    format!(
        "[[prices]]\nprovider = \"openai\"\nmodel = \"gpt-4o-mini\"\neffective = \"2025-01-01\"\n\
         input = \"{input}\"\noutput = \"{output}\"\nsource = \"contract\"\nchecked = \"2026-12-01\"\n"
    )
}

#[test]
fn the_override_file_is_reread_on_sighup() {
    let mock = start_mock(&[]);
    let dir = tempfile::tempdir().unwrap();
    let prices = write(dir.path(), "prices.toml", &override_prices("1.00", "2.00"));
    let cfg = standard_config(free_port(), mock.port, "").replace(
        "unpriced = \"record_unknown\"",
        &format!("unpriced = \"reject\"\noverrides = \"{prices}\""),
    );
    let gw = start_gateway_with(&cfg);
    let per_million = |usage: &serde_json::Value, input: &str, output: &str| {
        let prompt = usage["prompt_tokens"].as_u64().unwrap();
        let completion = usage["completion_tokens"].as_u64().unwrap();
        (Decimal::from(prompt) * Decimal::from_str(input).unwrap()
            + Decimal::from(completion) * Decimal::from_str(output).unwrap())
            / Decimal::from(1_000_000u32)
    };
    let (cost, usage) = cost_of_one_call(&gw);
    assert_eq!(cost, per_million(&usage, "1.00", "2.00"));

    // Edit the override file (not the config) and reload.
    std::fs::write(&prices, override_prices("3.00", "5.00")).unwrap();
    let reloads = |gw: &Gateway| gw.proc_.stderr().matches("config reloaded").count();
    let hup = |gw: &Gateway| {
        let ok = Command::new("kill")
            .args(["-HUP", &gw.proc_.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    let wait_for = |gw: &Gateway, what: &str, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while gw.proc_.stderr().matches(what).count() < n {
            assert!(Instant::now() < deadline, "{}", gw.proc_.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    hup(&gw);
    wait_for(&gw, "config reloaded", 1);
    let (cost, usage) = cost_of_one_call(&gw);
    assert_eq!(
        cost,
        per_million(&usage, "3.00", "5.00"),
        "the new price applies"
    );

    // A broken override is refused on reload, naming the file and field; the running
    // prices stay.
    std::fs::write(
        &prices,
        override_prices("3.00", "5.00").replace("\"5.00\"", "5.0"),
    )
    .unwrap();
    let before = reloads(&gw);
    hup(&gw);
    wait_for(
        &gw,
        "prices.toml:6:10: prices[0].output: float literal rejected",
        1,
    );
    assert_eq!(reloads(&gw), before);
    let (cost, usage) = cost_of_one_call(&gw);
    assert_eq!(cost, per_million(&usage, "3.00", "5.00"));
}
