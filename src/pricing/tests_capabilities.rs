//! `[[models]]` parsing, provenance fields, and capability lookup: by configured name then
//! preset kind, by exact name then alias, with overrides replacing the built-in entry.

use super::tests::PROV;
use super::*;

fn day(s: &str) -> PriceDate {
    PriceDate::parse(s).unwrap()
}

fn parse_err(text: &str) -> String {
    PriceBook::parse("test.toml", text).unwrap_err().to_string()
}

const PRICED: &str = "[[prices]]\nprovider = \"p\"\nmodel = \"m\"\naliases = [\"m-2025\"]\neffective = \"2025-01-01\"\ninput = \"1\"\noutput = \"2\"\ncached_input = \"0.1\"\n";

fn model_entry(body: &str) -> String {
    format!("[[models]]\nprovider = \"p\"\nmodel = \"m\"\n{body}")
}

#[test]
fn models_entry_parses_into_capabilities_and_life_cycle() {
    let text = format!(
        "{PRICED}{PROV}\n{}",
        model_entry(&format!(
            "context_window = 200000\nmax_output_tokens = 64000\nsupports = [\"tools\", \"reasoning\", \"prompt_caching\"]\ndeprecated = \"2026-01-01\"\nretired = 2026-06-01\n{PROV}uncertain = \"max output: 64k or 128k\"\n"
        ))
    );
    let book = PriceBook::parse("t.toml", &text).unwrap();
    let info = book.model_info("p", "m").unwrap();
    assert_eq!(
        info.capabilities,
        Capabilities {
            context_window: Some(200_000),
            max_output_tokens: Some(64_000),
            tools: true,
            vision: false,
            json_schema: false,
            reasoning: true,
            prompt_caching: true,
        }
    );
    assert_eq!(
        info.capabilities.features(),
        ["tools", "reasoning", "prompt_caching"]
    );
    assert_eq!(info.deprecated, Some(day("2026-01-01")));
    assert_eq!(info.retired, Some(day("2026-06-01")));
    assert_eq!(info.source, "test");
    assert_eq!(info.checked, day("2026-12-01"));
    assert_eq!(info.uncertain.as_deref(), Some("max output: 64k or 128k"));
    assert_eq!(info.defined_at, "t.toml:12");
    // Life cycle by date: deprecated, then retiring (announced), then retired.
    assert_eq!(
        info.lifecycle(day("2025-12-01")),
        Lifecycle::Retiring {
            on: day("2026-06-01")
        }
    );
    assert_eq!(
        info.lifecycle(day("2026-06-01")),
        Lifecycle::Retired {
            since: day("2026-06-01")
        }
    );
    assert_eq!(
        info.lifecycle(day("2026-06-01")).describe().unwrap(),
        "retired upstream since 2026-06-01"
    );
    // The alias resolves to the same entry; an unknown name to none.
    assert_eq!(book.model_info("p", "m-2025"), Some(info));
    assert_eq!(book.model_info("p", "m-2026"), None);
    assert_eq!(book.model_info("q", "m"), None);
}

#[test]
fn price_provenance_is_required_and_parsed() {
    let base = "[[prices]]\nprovider = \"p\"\nmodel = \"m\"\neffective = \"2025-01-01\"\ninput = \"1\"\noutput = \"1\"\n";
    let err = parse_err(&format!("{base}checked = \"2026-12-01\"\n"));
    assert!(
        err.starts_with("test.toml:1:1: prices[0].source: missing: every entry names where"),
        "{err}"
    );
    let err = parse_err(&format!("{base}source = \"x\"\n"));
    assert!(
        err.starts_with("test.toml:1:1: prices[0].checked: missing"),
        "{err}"
    );
    let err = parse_err(&format!("{base}source = \" \"\nchecked = \"2026-12-01\"\n"));
    assert!(
        err.starts_with("test.toml:7:10: prices[0].source: must not be empty"),
        "{err}"
    );
    let err = parse_err(&format!("{base}source = \"x\"\nchecked = \"Dec 1\"\n"));
    assert!(
        err.starts_with(
            "test.toml:8:11: prices[0].checked: expected the date the source was checked"
        ),
        "{err}"
    );
    let err = parse_err(&format!("{base}{PROV}uncertain = \"\"\n"));
    assert!(err.contains("prices[0].uncertain: must say what"), "{err}");
    let err = parse_err(&format!("{base}{PROV}sourse = \"x\"\n"));
    assert!(err.contains("prices[0].sourse: unknown field"), "{err}");
    let ok = PriceBook::parse("t", &format!("{base}{PROV}uncertain = \"why\"\n")).unwrap();
    let p = ok.lookup("p", "m", day("2025-06-01")).unwrap();
    assert_eq!(
        (p.source.as_str(), p.checked, p.uncertain.as_deref()),
        ("test", day("2026-12-01"), Some("why"))
    );
}

#[test]
fn bad_models_entries_are_rejected_with_file_line_field() {
    let cases: &[(&str, &str)] = &[
        (
            "supports = [\"tools\", \"telepathy\"]\n",
            "test.toml:4:22: models[0].supports[1]: unknown feature \"telepathy\": expected one of tools, vision, json_schema, reasoning, prompt_caching",
        ),
        (
            "supports = [\"tools\", \"tools\"]\n",
            "models[0].supports[1]: \"tools\" is listed twice",
        ),
        (
            "context_window = 0\nsupports = []\n",
            "test.toml:4:18: models[0].context_window: must be a positive number of tokens",
        ),
        (
            "max_output_tokens = 5000000000\nsupports = []\n",
            "models[0].max_output_tokens: must be a positive number",
        ),
        (
            "context_window = 1000\nmax_output_tokens = 2000\nsupports = []\n",
            "test.toml:5:21: models[0].max_output_tokens: 2000 is more than the context window (1000)",
        ),
        (
            "supports = []\ndeprecated = \"2026-07-01\"\nretired = \"2026-06-01\"\n",
            "models[0].deprecated: 2026-07-01 is after the retirement date 2026-06-01",
        ),
        (
            "supports = []\nretired = \"soon\"\n",
            "models[0].retired: expected the date retired",
        ),
        ("context_window = 10\n", "models[0].supports: missing field `supports`"),
        ("supports = []\nvison = true\n", "models[0].vison: unknown field `vison`"),
    ];
    for (body, expected) in cases {
        let with_prov = if body.contains("supports") {
            format!("{body}{PROV}")
        } else {
            body.to_string()
        };
        let err = parse_err(&model_entry(&with_prov));
        assert!(err.contains(expected), "{body:?}: {err}");
    }
    let missing = parse_err(&model_entry("supports = []\n"));
    assert!(missing.contains("models[0].source: missing"), "{missing}");
    let twice = format!(
        "{}\n{}",
        model_entry(&format!("supports = []\n{PROV}")),
        model_entry(&format!("supports = []\n{PROV}"))
    );
    assert!(parse_err(&twice)
        .contains("test.toml:10:9: models[1].model: p/m already has capabilities (models[0])"));
}

fn config(text: &str) -> crate::config::Config {
    crate::config::Config::parse("t.toml", text, &|_| Some("k".into())).unwrap()
}

#[test]
fn capabilities_resolve_like_prices_configured_name_then_kind() {
    let cfg = config(
        "[[providers]]\nname = \"groq-eu\"\nkind = \"groq\"\napi_keys = [\"env:K\"]\n\
         [[providers]]\nname = \"anthropic\"\nkind = \"anthropic\"\napi_keys = [\"env:K\"]\n",
    );
    let (groq, anthropic) = (&cfg.providers[0], &cfg.providers[1]);
    let book = PriceBook::builtin();
    // groq-eu has no entries of its own: the kind's capabilities apply.
    let c = book.capabilities(groq, "llama-3.3-70b-versatile").unwrap();
    assert_eq!(c.context_window, Some(131_072));
    // A dated snapshot (alias) resolves to its model.
    assert_eq!(
        book.capabilities(anthropic, "claude-sonnet-4-5-20250929"),
        book.capabilities(anthropic, "claude-sonnet-4-5")
    );
    assert!(book.capabilities(anthropic, "claude-99").is_none());
    // An override under the configured name wins over the kind's entry.
    let own = PriceBook::parse(
        "o.toml",
        &format!(
            "[[models]]\nprovider = \"groq-eu\"\nmodel = \"llama-3.3-70b-versatile\"\ncontext_window = 8192\nsupports = [\"tools\"]\n{PROV}"
        ),
    )
    .unwrap();
    let book = book.with_overrides(own);
    let c = book.capabilities(groq, "llama-3.3-70b-versatile").unwrap();
    assert_eq!(c.context_window, Some(8192));
    assert_eq!(c.max_output_tokens, None);
    // The config's pricing settings answer the same.
    assert_eq!(
        cfg.pricing
            .capabilities(anthropic, "claude-haiku-4-5")
            .and_then(|c| c.max_output_tokens),
        Some(64_000)
    );
}

#[test]
fn override_models_entry_replaces_the_builtin_one() {
    let theirs = PriceBook::parse(
        "o.toml",
        &format!(
            "[[models]]\nprovider = \"openai\"\nmodel = \"gpt-4o-mini\"\ncontext_window = 1000\nsupports = []\nretired = \"2026-01-01\"\n{PROV}"
        ),
    )
    .unwrap();
    let book = PriceBook::builtin().with_overrides(theirs);
    let info = book.model_info("openai", "gpt-4o-mini").unwrap();
    assert_eq!(info.capabilities.context_window, Some(1000));
    assert!(!info.capabilities.tools);
    assert_eq!(info.defined_at, "o.toml:1");
    // The alias of the built-in price resolves to the replaced entry too.
    assert_eq!(
        book.model_info("openai", "gpt-4o-mini-2024-07-18"),
        Some(info)
    );
}
