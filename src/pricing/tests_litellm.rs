//! The LiteLLM importer on a fixture in the real file's shape: exact decimal conversion, what
//! is mapped, what is reported, and that the output loads as an override file.

use super::litellm::{convert, json_decimal, per_million, ImportOptions};
use super::*;
use rust_decimal::Decimal;

const FIXTURE: &str =
    include_str!("../../tests/fixtures/litellm/model_prices_and_context_window.json");

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn day(s: &str) -> PriceDate {
    PriceDate::parse(s).unwrap()
}

fn opts(providers: &[&str]) -> ImportOptions {
    ImportOptions {
        effective: day("2026-12-01"),
        checked: day("2026-12-03"),
        source: "litellm@test (2026-12-01)".into(),
        providers: providers.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn json_numbers_become_exact_decimals_without_float_noise() {
    // Each of these is off in binary floating point once multiplied by 1e6.
    let cases = [
        ("2.5e-06", "2.50"),
        ("1.1e-06", "1.10"),
        ("4.4e-06", "4.40"),
        ("3.625e-09", "0.003625"),
        ("7.5e-08", "0.075"),
        ("1e-05", "10.00"),
        ("0.0000025", "2.50"),
        ("2.25e-05", "22.50"),
        ("1.875e-05", "18.75"),
        ("0", "0.00"),
        ("0.0", "0.00"),
    ];
    for (json, want) in cases {
        assert_eq!(per_million(json_decimal(json).unwrap()), want, "{json}");
    }
    assert_eq!(json_decimal("1E+3"), Some(d("1000")));
    assert_eq!(json_decimal("2000000.0"), Some(d("2000000")));
    for bad in [
        "-1e-06",
        "\"2.5e-06\"",
        "1e",
        "e5",
        ".5",
        "1.",
        "NaN",
        "1e-40",
        "null",
    ] {
        assert_eq!(json_decimal(bad), None, "{bad}");
    }
}

#[test]
fn fixture_converts_to_an_override_file_with_exact_prices() {
    let import = convert(FIXTURE, &opts(&[])).unwrap();
    let book = PriceBook::parse("<converted>", &import.toml).unwrap();
    let at = day("2026-12-01");
    let p = book.lookup("openai", "example-4o", at).unwrap();
    assert_eq!(
        (p.input, p.output, p.cached_input, p.cache_write),
        (Some(d("2.50")), Some(d("10")), Some(d("1.25")), None)
    );
    assert!(import.toml.contains("input = \"2.50\"\noutput = \"10.00\""));
    assert_eq!(p.effective, at);
    assert_eq!(p.checked, day("2026-12-03"));
    assert_eq!(p.source, "litellm@test (2026-12-01) (key example-4o)");
    assert_eq!(book.lookup("openai", "example-4o", day("2026-11-30")), None);
    // Prefixed keys lose their provider prefix; tiers come from `_above_<N>k_tokens`.
    let pro = book.lookup("gemini", "example-pro", at).unwrap();
    assert_eq!(pro.input, Some(d("1.25")));
    assert_eq!(pro.cached_input, Some(d("0.125")));
    assert_eq!(pro.tiers.len(), 1);
    assert_eq!(
        (
            pro.tiers[0].above_input_tokens,
            pro.tiers[0].input,
            pro.tiers[0].output,
            pro.tiers[0].cached_input
        ),
        (200_000, d("2.5"), d("15"), Some(d("0.25")))
    );
    let sonnet = book.lookup("anthropic", "example-sonnet", at).unwrap();
    assert_eq!(sonnet.cache_write, Some(d("3.75")));
    assert_eq!(sonnet.tiers[0].cache_write, Some(d("7.5")));
    let fast = book.lookup("xai", "example-fast", at).unwrap();
    assert_eq!(fast.tiers[0].above_input_tokens, 128_000);
    assert_eq!(
        book.lookup("groq", "example-deepseek", at)
            .unwrap()
            .cached_input,
        Some(d("0.003625"))
    );
    assert!(book
        .lookup("openrouter", "example/claude-like", at)
        .is_some());
    // Unit-priced models, and an embedding whose output is free.
    let whisper = book.lookup("openai", "example-whisper", at).unwrap();
    assert_eq!(whisper.per_second, Some(d("0.0001")));
    assert_eq!(
        book.lookup("openai", "example-tts", at)
            .unwrap()
            .per_character,
        Some(d("0.000015"))
    );
    assert_eq!(
        book.lookup("openai", "example-dall-e", at)
            .unwrap()
            .per_image,
        Some(d("0.04"))
    );
    let embed = book.lookup("openai", "example-embedding", at).unwrap();
    assert_eq!((embed.input, embed.output), (Some(d("0.02")), Some(d("0"))));
    // The exact cost of a call priced from the import.
    let cost = book
        .cost(
            "openai",
            "example-mini",
            at,
            &crate::usage::Usage {
                input: 1234,
                output: 567,
                cached_input: 1000,
                cache_write: 0,
                reasoning: 0,
            },
        )
        .unwrap();
    // 1,234 × 1.10 + 1,000 × 0.11 + 567 × 4.40 = 1,357.4 + 110 + 2,494.8 per million.
    assert_eq!(cost.total, d("0.0039622"));
}

#[test]
fn fixture_capabilities_and_deprecation_are_imported() {
    let import = convert(FIXTURE, &opts(&[])).unwrap();
    let book = PriceBook::parse("<converted>", &import.toml).unwrap();
    let c = book.capabilities_for(&["openai"], "example-4o").unwrap();
    assert_eq!(
        *c,
        Capabilities {
            context_window: Some(128_000),
            max_output_tokens: Some(16_384),
            tools: true,
            vision: true,
            json_schema: true,
            reasoning: false,
            prompt_caching: true,
        }
    );
    // 2000000.0 is a whole number of tokens.
    let fast = book.capabilities_for(&["xai"], "example-fast").unwrap();
    assert_eq!(fast.context_window, Some(2_000_000));
    let mini = book.model_info("openai", "example-mini").unwrap();
    assert_eq!(mini.deprecated, Some(day("2026-03-31")));
    assert!(mini.capabilities.reasoning && !mini.capabilities.vision);
    // The embedding has a context window and no output limit.
    let embed = book
        .capabilities_for(&["openai"], "example-embedding")
        .unwrap();
    assert_eq!(
        (embed.context_window, embed.max_output_tokens),
        (Some(8191), None)
    );
}

#[test]
fn what_cannot_be_mapped_is_reported() {
    let import = convert(FIXTURE, &opts(&[])).unwrap();
    let r = &import.report;
    assert_eq!(r.imported, 11);
    let reason = |key: &str| {
        r.skipped
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, why)| why.as_str())
            .unwrap_or_else(|| panic!("{key} not reported: {:?}", r.skipped))
    };
    assert!(reason("sample_spec").contains("schema example"));
    assert_eq!(
        reason("bedrock/us-east-1/example.chat-v1:0"),
        "provider `bedrock` has no switchyard preset"
    );
    assert!(reason("example-image-1").contains("no output_cost_per_token"));
    assert!(reason("mistral/example-rerank").contains("no price this format can hold"));
    assert!(reason("mistral/example-broken")
        .contains("`input_cost_per_token` is not a non-negative number"));
    assert_eq!(r.skipped.len(), 5);
    let unmapped = |field: &str| r.unmapped.get(field).cloned().unwrap_or_default();
    assert_eq!(unmapped("input_cost_per_token_priority"), ["example-4o"]);
    assert_eq!(unmapped("output_cost_per_token_batches"), ["example-4o"]);
    assert_eq!(
        unmapped("cache_creation_input_token_cost_above_1hr"),
        ["example-sonnet"]
    );
    assert_eq!(
        unmapped("search_context_cost_per_query"),
        ["example-sonnet"]
    );
    assert_eq!(
        unmapped("input_cost_per_audio_token"),
        ["gemini/example-pro"]
    );
    assert_eq!(unmapped("output_cost_per_second"), ["example-whisper"]);
    assert_eq!(
        unmapped("input_cost_per_image"),
        ["openrouter/example/claude-like"]
    );
    // Zero prices are not worth reporting; mapped ones never are.
    assert!(!r.unmapped.contains_key("input_cost_per_token"));
    assert!(!r.unmapped.contains_key("output_cost_per_token"));
    let text = r.to_text();
    assert!(text.starts_with("imported 11 models\n"), "{text}");
    assert!(text.contains("not converted (5):"), "{text}");
    assert!(
        text.contains("1 x provider has no switchyard preset: bedrock/us-east-1/example.chat-v1:0"),
        "{text}"
    );
    assert!(
        text.contains("input_cost_per_token_priority: 1 x (example-4o)"),
        "{text}"
    );
}

#[test]
fn provider_filter_and_bad_input() {
    let import = convert(FIXTURE, &opts(&["xai", "groq"])).unwrap();
    assert_eq!(import.report.imported, 2);
    assert_eq!(import.report.filtered, 12);
    let book = PriceBook::parse("<converted>", &import.toml).unwrap();
    assert_eq!(book.entries().count(), 2);
    assert!(convert("[1, 2]", &opts(&[]))
        .unwrap_err()
        .contains("not a LiteLLM price table"));
    let one = r#"{"a": "not an object", "b": {"litellm_provider": "openai"}}"#;
    let r = convert(one, &opts(&[])).unwrap().report;
    assert_eq!(r.imported, 0);
    assert_eq!(r.skipped[0], ("a".into(), "not a JSON object".into()));
    assert!(r.skipped[1].1.contains("no price"));
    // Two keys for one provider + model: the first wins, the second is reported.
    let dup = r#"{"openai/x": {"litellm_provider": "openai", "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06},
                 "x": {"litellm_provider": "openai", "input_cost_per_token": 3e-06, "output_cost_per_token": 4e-06}}"#;
    let i = convert(dup, &opts(&[])).unwrap();
    assert_eq!(i.report.imported, 1);
    assert!(i.report.skipped[0].1.contains("openai/x again"));
    let book = PriceBook::parse("<converted>", &i.toml).unwrap();
    assert_eq!(
        book.lookup("openai", "x", day("2026-12-01")).unwrap().input,
        Some(d("1"))
    );
}
