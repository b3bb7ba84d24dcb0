//! Pricing tests: hand-computed costs compared with exact `Decimal` equality, price periods,
//! overrides, aliases, provider-name fallback, tiers, per-unit models, parse errors with
//! file:line:column:field, and the shipped conf/prices.toml.

use super::*;
use rust_decimal::Decimal;

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn day(s: &str) -> PriceDate {
    PriceDate::parse(s).unwrap()
}

fn usage(input: u64, output: u64, cached_input: u64, cache_write: u64, reasoning: u64) -> Usage {
    Usage {
        input,
        output,
        cached_input,
        cache_write,
        reasoning,
    }
}

fn builtin() -> PriceBook {
    PriceBook::parse(BUILTIN_PRICES_NAME, BUILTIN_PRICES).unwrap()
}

fn parse_err(text: &str) -> String {
    PriceBook::parse("test.toml", text).unwrap_err().to_string()
}

const NOW: &str = "2025-11-01";

#[test]
fn gpt_4o_mini_with_cached_input() {
    // 1,234 × 0.15 + 567 × 0.60 + 1,000 × 0.075 = 185.1 + 340.2 + 75 = 600.3 per million.
    let cost = builtin()
        .cost(
            "openai",
            "gpt-4o-mini",
            day(NOW),
            &usage(1234, 567, 1000, 0, 0),
        )
        .unwrap();
    assert_eq!(cost.input, d("0.0001851"));
    assert_eq!(cost.output, d("0.0003402"));
    assert_eq!(cost.cached_input, d("0.000075"));
    assert_eq!(cost.cache_write, Decimal::ZERO);
    assert_eq!(cost.total, d("0.0006003"));
    assert_eq!(cost.price_effective, day("2024-07-18"));
    assert_eq!(cost.tier, None);
}

#[test]
fn claude_sonnet_4_5_with_cache_read_and_write() {
    // 2,000 × 3 + 10,000 × 0.30 + 5,000 × 3.75 + 800 × 15 = 6,000 + 3,000 + 18,750 + 12,000.
    let cost = builtin()
        .cost(
            "anthropic",
            "claude-sonnet-4-5",
            day(NOW),
            &usage(2000, 800, 10_000, 5000, 0),
        )
        .unwrap();
    assert_eq!(cost.input, d("0.006"));
    assert_eq!(cost.cached_input, d("0.003"));
    assert_eq!(cost.cache_write, d("0.01875"));
    assert_eq!(cost.output, d("0.012"));
    assert_eq!(cost.total, d("0.03975"));
}

#[test]
fn reasoning_tokens_are_part_of_output_and_not_charged_twice() {
    // o4-mini: 500 × 1.10 + 3,000 × 4.40 (2,500 of them reasoning) = 550 + 13,200 per million.
    let book = builtin();
    let with = book
        .cost("openai", "o4-mini", day(NOW), &usage(500, 3000, 0, 0, 2500))
        .unwrap();
    let without = book
        .cost("openai", "o4-mini", day(NOW), &usage(500, 3000, 0, 0, 0))
        .unwrap();
    assert_eq!(with.output, d("0.0132"));
    assert_eq!(with.total, d("0.01375"));
    assert_eq!(with, without);
}

#[test]
fn price_period_is_chosen_by_date() {
    let book = builtin();
    let u = usage(1_000_000, 1_000_000, 0, 0, 0);
    assert_eq!(book.cost("openai", "o3", day("2025-04-15"), &u), None);
    let before = book.cost("openai", "o3", day("2025-06-09"), &u).unwrap();
    assert_eq!(before.total, d("50"));
    assert_eq!(before.price_effective, day("2025-04-16"));
    // 2025-06-10T00:00:00Z: the new price is in force from midnight UTC.
    let after_at = PriceDate::from_unix_seconds(1_749_513_600);
    let after = book.cost("openai", "o3", after_at, &u).unwrap();
    assert_eq!(after.total, d("10"));
    assert_eq!(after.price_effective, day("2025-06-10"));
    let last_second = PriceDate::from_unix_seconds(1_749_513_599);
    assert_eq!(
        book.cost("openai", "o3", last_second, &u).unwrap().total,
        d("50")
    );
    // gpt-4o: $5/$15 until the name moved to the cheaper snapshot.
    assert_eq!(
        book.cost("openai", "gpt-4o", day("2024-09-01"), &u)
            .unwrap()
            .total,
        d("20")
    );
    assert_eq!(
        book.cost("openai", "gpt-4o", day(NOW), &u).unwrap().total,
        d("12.5")
    );
}

const OVERRIDES: &str = r#"
[[prices]]
provider = "openai"
model = "gpt-4o-mini"
effective = "2024-07-18"
input = "0.10"
output = "0.50"

[[prices]]
provider = "openai"
model = "gpt-4o-mini"
effective = "2026-01-01"
input = "0.12"
output = "0.48"

[[prices]]
provider = "groq-eu"
model = "llama-3.3-70b-versatile"
effective = "2025-01-01"
input = "0.70"
output = "0.90"
"#;

#[test]
fn override_replaces_same_date_and_adds_newer_period() {
    let overrides = PriceBook::parse("overrides.toml", OVERRIDES).unwrap();
    let book = builtin().with_overrides(overrides);
    let u = usage(1_000_000, 1_000_000, 1_000_000, 0, 0);
    // Replaced: no cached_input in the override, so cache reads cost the input price.
    let replaced = book.cost("openai", "gpt-4o-mini", day(NOW), &u).unwrap();
    assert_eq!(replaced.cached_input, d("0.10"));
    assert_eq!(replaced.total, d("0.70"));
    let p = book.lookup("openai", "gpt-4o-mini", day(NOW)).unwrap();
    assert_eq!(p.source, "overrides.toml:2");
    let newer = book
        .cost("openai", "gpt-4o-mini", day("2026-01-01"), &u)
        .unwrap();
    assert_eq!(newer.total, d("0.72"));
    // Untouched entries stay, and the alias still resolves to the replaced period.
    assert_eq!(
        book.cost("openai", "gpt-4o-mini-2024-07-18", day(NOW), &u)
            .unwrap()
            .total,
        d("0.70")
    );
    assert_eq!(book.len(), builtin().len() + 2);
}

#[test]
fn configured_name_first_then_preset_kind() {
    let u = usage(1_000_000, 0, 0, 0, 0);
    let plain = builtin();
    assert_eq!(
        plain.cost("groq-eu", "llama-3.3-70b-versatile", day(NOW), &u),
        None
    );
    let kind = plain
        .cost_for(
            &["groq-eu", "groq"],
            "llama-3.3-70b-versatile",
            day(NOW),
            &u,
        )
        .unwrap();
    assert_eq!(kind.total, d("0.59"));
    let own = plain
        .with_overrides(PriceBook::parse("o.toml", OVERRIDES).unwrap())
        .cost_for(
            &["groq-eu", "groq"],
            "llama-3.3-70b-versatile",
            day(NOW),
            &u,
        )
        .unwrap();
    assert_eq!(own.total, d("0.70"));
}

#[test]
fn alias_prices_snapshot_as_its_model() {
    let book = builtin();
    let u = usage(1000, 1000, 0, 0, 0);
    let snapshot = book
        .lookup("openai", "gpt-4o-2024-11-20", day(NOW))
        .unwrap();
    assert_eq!(snapshot.model, "gpt-4o");
    assert_eq!(
        book.cost("openai", "gpt-4o-2024-11-20", day(NOW), &u),
        book.cost("openai", "gpt-4o", day(NOW), &u)
    );
    // The old snapshot has its own entry, not an alias.
    assert_eq!(
        book.lookup("openai", "gpt-4o-2024-05-13", day(NOW))
            .unwrap()
            .input,
        Some(d("5.00"))
    );
    // Aliases are exact: no prefix or fuzzy match.
    assert_eq!(book.lookup("openai", "gpt-4o-2024-11-21", day(NOW)), None);
    assert_eq!(book.lookup("openai", "GPT-4O", day(NOW)), None);
}

#[test]
fn unknown_model_or_provider_is_unpriced() {
    let book = builtin();
    let u = usage(10, 10, 0, 0, 0);
    assert_eq!(book.cost("openai", "gpt-99", day(NOW), &u), None);
    assert_eq!(book.cost("nobody", "gpt-4o-mini", day(NOW), &u), None);
    // Priced under another provider only: no cross-provider guessing.
    assert_eq!(book.cost("groq", "gpt-4o-mini", day(NOW), &u), None);
    assert_eq!(book.cost_for(&[], "gpt-4o-mini", day(NOW), &u), None);
}

#[test]
fn long_prompt_tier_prices_the_whole_call() {
    let book = builtin();
    // Exactly 200k is not above the threshold: 200,000 × 1.25 + 1,000 × 10.
    let base = book
        .cost(
            "gemini",
            "gemini-2.5-pro",
            day(NOW),
            &usage(200_000, 1000, 0, 0, 0),
        )
        .unwrap();
    assert_eq!(base.total, d("0.26"));
    assert_eq!(base.tier, None);
    // 150k fresh + 60k cached > 200k: 150,000 × 2.50 + 60,000 × 0.625 + 1,000 × 15.
    let long = book
        .cost(
            "gemini",
            "gemini-2.5-pro",
            day(NOW),
            &usage(150_000, 1000, 60_000, 0, 0),
        )
        .unwrap();
    assert_eq!(long.input, d("0.375"));
    assert_eq!(long.cached_input, d("0.0375"));
    assert_eq!(long.output, d("0.015"));
    assert_eq!(long.total, d("0.4275"));
    assert_eq!(long.tier, Some(200_000));
    // grok-4's tier has no cached price: cache reads fall back to the tier's input ($6).
    let grok = book
        .cost("xai", "grok-4", day(NOW), &usage(100_000, 0, 100_000, 0, 0))
        .unwrap();
    assert_eq!(grok.cached_input, d("0.6"));
    assert_eq!(grok.total, d("1.2"));
}

#[test]
fn per_unit_models() {
    let book = builtin();
    let none = Usage::default();
    let at = day(NOW);
    let whisper = Units {
        seconds: 90,
        ..Units::default()
    };
    let c = book
        .cost_with_units(&["openai"], "whisper-1", at, &none, &whisper)
        .unwrap();
    assert_eq!(c.units, d("0.009"));
    assert_eq!(c.total, d("0.009"));
    let tts = Units {
        characters: 1000,
        ..Units::default()
    };
    assert_eq!(
        book.cost_with_units(&["openai"], "tts-1", at, &none, &tts)
            .unwrap()
            .total,
        d("0.015")
    );
    let images = Units {
        images: 2,
        ..Units::default()
    };
    assert_eq!(
        book.cost_with_units(&["openai"], "dall-e-3", at, &none, &images)
            .unwrap()
            .total,
        d("0.08")
    );
    // Nothing it is priced by, or a quantity it has no price for: unpriced, never $0.
    assert_eq!(book.cost("openai", "dall-e-3", at, &none), None);
    assert_eq!(
        book.cost("openai", "dall-e-3", at, &usage(10, 0, 0, 0, 0)),
        None
    );
    assert_eq!(
        book.cost_with_units(&["openai"], "gpt-4o-mini", at, &none, &images),
        None
    );
    // A token model with zero usage is genuinely $0.
    assert_eq!(
        book.cost("openai", "gpt-4o-mini", at, &none).unwrap().total,
        Decimal::ZERO
    );
}

#[test]
fn missing_cache_prices_charge_input_and_per_request_is_added() {
    let book = PriceBook::parse(
        "t.toml",
        r#"
[[prices]]
provider = "p"
model = "m"
effective = 2025-01-01
input = "1.000001"
output = "2"
per_request = "0.005"
"#,
    )
    .unwrap();
    let c = book
        .cost("p", "m", day("2025-01-01"), &usage(3, 5, 7, 11, 0))
        .unwrap();
    // 3 × 1.000001 + 7 × 1.000001 + 11 × 1.000001 + 5 × 2 per million, plus 0.005.
    assert_eq!(c.input, d("0.000003000003"));
    assert_eq!(c.cached_input, d("0.000007000007"));
    assert_eq!(c.cache_write, d("0.000011000011"));
    assert_eq!(c.output, d("0.00001"));
    assert_eq!(c.request, d("0.005"));
    assert_eq!(c.total, d("0.005031000021"));
    let shown = c.round_to_microdollars();
    assert_eq!(shown.total, d("0.005031"));
    assert_eq!(shown.input, d("0.000003"));
    assert_eq!(c.total, d("0.005031000021"), "the stored value stays exact");
}

#[test]
fn rounding_to_microdollars_is_half_away_from_zero() {
    let book = PriceBook::parse(
        "t.toml",
        "[[prices]]\nprovider = \"p\"\nmodel = \"m\"\neffective = \"2025-01-01\"\ninput = \"0.5\"\noutput = \"0\"\n",
    )
    .unwrap();
    // 1 token × 0.5 per million = 0.0000005 → 0.000001.
    let c = book
        .cost("p", "m", day("2025-02-01"), &usage(1, 0, 0, 0, 0))
        .unwrap();
    assert_eq!(c.total, d("0.0000005"));
    assert_eq!(c.round_to_microdollars().total, d("0.000001"));
}

#[test]
fn float_literal_is_rejected_with_file_line_field() {
    let text = "[[prices]]\nprovider = \"openai\"\nmodel = \"x\"\neffective = \"2025-01-01\"\ninput = 2.50\noutput = \"1\"\n";
    assert_eq!(
        parse_err(text),
        "test.toml:5:9: prices[0].input: float literal rejected: prices are strings so they \
         stay exact; write input = \"2.50\""
    );
    let tier = "[[prices]]\nprovider = \"p\"\nmodel = \"m\"\neffective = \"2025-01-01\"\ninput = \"1\"\noutput = \"1\"\n\n[[prices.tiers]]\nabove_input_tokens = 10\ninput = \"2\"\noutput = 3.0\n";
    assert!(
        parse_err(tier).starts_with("test.toml:11:10: prices[0].tiers[0].output: float literal"),
        "{}",
        parse_err(tier)
    );
}

#[test]
fn unknown_field_is_rejected() {
    let text = "[[prices]]\nprovider = \"p\"\nmodel = \"m\"\neffective = \"2025-01-01\"\ninput = \"1\"\noutput = \"1\"\n\n[[prices]]\nprovider = \"p\"\nmodel = \"n\"\neffective = \"2025-01-01\"\ninptu = \"1\"\n";
    let err = parse_err(text);
    assert!(
        err.starts_with("test.toml:12:1: prices[1].inptu: unknown field `inptu`"),
        "{err}"
    );
    let top = parse_err("[price]\n");
    assert!(top.starts_with("test.toml:1:"), "{top}");
    assert!(top.contains("unknown field `price`"), "{top}");
}

#[test]
fn bad_entries_are_rejected() {
    let head = "[[prices]]\nprovider = \"p\"\nmodel = \"m\"\neffective = \"2025-01-01\"\n";
    let cases: &[(&str, &str)] = &[
        (
            "input = \"1\"\n",
            "prices[0]: `input` is set but `output` is not",
        ),
        (
            "input = \"-1\"\noutput = \"1\"\n",
            "test.toml:5:9: prices[0].input: \"-1\" is not a price",
        ),
        (
            "input = \"1e3\"\noutput = \"1\"\n",
            "prices[0].input: \"1e3\" is not a price",
        ),
        (
            "input = \" 1\"\noutput = \"1\"\n",
            "prices[0].input: \" 1\" is not a price",
        ),
        (
            "input = \"1\"\noutput = 2\n",
            "test.toml:6:10: prices[0].output: prices are written as strings; write output = \"2\"",
        ),
        (
            "input = \"1\"\noutput = true\n",
            "prices[0].output: expected a price as a decimal string",
        ),
        (
            "cached_input = \"1\"\nper_image = \"1\"\n",
            "prices[0]: `cached_input`, `cache_write` and `tiers` need",
        ),
        ("", "prices[0]: no price"),
    ];
    for (tail, expected) in cases {
        let err = parse_err(&format!("{head}{tail}"));
        assert!(err.contains(expected), "{tail:?}: {err}");
    }
    let bad_date = "[[prices]]\nprovider = \"p\"\nmodel = \"m\"\neffective = \"2025-02-30\"\nper_request = \"1\"\n";
    assert!(parse_err(bad_date).starts_with("test.toml:4:13: prices[0].effective: expected"));
    let missing = "[[prices]]\nprovider = \"p\"\neffective = \"2025-01-01\"\nper_request = \"1\"\n";
    let err = parse_err(missing);
    assert!(
        err.contains("prices[0].model: missing field `model`"),
        "{err}"
    );
}

#[test]
fn duplicates_and_ambiguous_aliases_are_rejected() {
    let entry = |model: &str, aliases: &str, date: &str| {
        format!(
            "[[prices]]\nprovider = \"p\"\nmodel = \"{model}\"\naliases = [{aliases}]\neffective = \"{date}\"\nper_request = \"1\"\n"
        )
    };
    let dup = format!(
        "{}{}",
        entry("m", "", "2025-01-01"),
        entry("m", "", "2025-01-01")
    );
    assert!(parse_err(&dup)
        .contains("prices[1].effective: p/m already has a price effective 2025-01-01 (prices[0])"));
    let two_owners = format!(
        "{}{}",
        entry("a", "\"x\"", "2025-01-01"),
        entry("b", "\"x\"", "2025-01-01")
    );
    assert!(parse_err(&two_owners)
        .contains("prices[1].aliases[0]: alias \"x\" is already an alias of p/a"));
    let is_model = format!(
        "{}{}",
        entry("a", "\"b\"", "2025-01-01"),
        entry("b", "", "2025-01-01")
    );
    assert!(
        parse_err(&is_model).contains("prices[0].aliases[0]: p/b is priced as a model of its own")
    );
    let own = entry("a", "\"a\"", "2025-01-01");
    assert!(parse_err(&own).contains("prices[0].aliases[0]"));
    // The same alias on two periods of one model is fine.
    let periods = format!(
        "{}{}",
        entry("a", "\"x\"", "2025-01-01"),
        entry("a", "\"x\"", "2025-06-01")
    );
    assert!(PriceBook::parse("t", &periods).is_ok());
}

#[test]
fn toml_syntax_error_has_a_position() {
    let err = PriceBook::parse("bad.toml", "[[prices]\n").unwrap_err();
    assert_eq!(err.file, "bad.toml");
    assert_eq!(err.line, 1);
}

#[test]
fn shipped_price_list_parses_and_covers_every_preset() {
    let book = PriceBook::builtin();
    assert!(!book.is_empty());
    let media = PriceBook::parse(BUILTIN_MEDIA_PRICES_NAME, BUILTIN_MEDIA_PRICES).unwrap();
    assert_eq!(book, builtin().with_overrides(media));
    for p in book.entries() {
        let tokens = p.input.is_some() && p.output.is_some();
        let units = p.per_image.is_some()
            || !p.images.is_empty()
            || p.per_second.is_some()
            || p.per_character.is_some()
            || p.per_request.is_some();
        assert!(tokens || units, "{}/{} has no price", p.provider, p.model);
        assert!(
            p.source.starts_with(BUILTIN_PRICES_NAME)
                || p.source.starts_with(BUILTIN_MEDIA_PRICES_NAME)
        );
    }
    for kind in crate::providers::presets::kinds() {
        if kind != "openai-compatible" {
            let family = crate::providers::presets::price_family(kind);
            assert!(
                book.entries().any(|p| p.provider == family),
                "no prices for preset {kind}"
            );
        }
    }
    let required: &[(&str, &[&str])] = &[
        (
            "openai",
            &[
                "gpt-4o",
                "gpt-4o-mini",
                "gpt-4.1",
                "gpt-4.1-mini",
                "gpt-4.1-nano",
                "o3",
                "o4-mini",
                "text-embedding-3-small",
                "text-embedding-3-large",
                "whisper-1",
                "tts-1",
                "dall-e-3",
            ],
        ),
        (
            "anthropic",
            &["claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"],
        ),
        (
            "gemini",
            &[
                "gemini-2.5-pro",
                "gemini-2.5-flash",
                "gemini-2.5-flash-lite",
            ],
        ),
        ("groq", &["llama-3.3-70b-versatile", "llama-3.1-8b-instant"]),
        ("cerebras", &["llama-3.3-70b"]),
        ("deepinfra", &["meta-llama/Llama-3.3-70B-Instruct"]),
        ("mistral", &["mistral-large-latest", "mistral-small-latest"]),
        ("xai", &["grok-4", "grok-3-mini"]),
        ("openrouter", &["anthropic/claude-sonnet-4.5"]),
    ];
    for (provider, models) in required {
        for model in *models {
            assert!(
                book.lookup(provider, model, day(NOW)).is_some(),
                "{provider}/{model} unpriced"
            );
        }
    }
    // Anthropic 5-minute cache writes are 1.25 × input in every period of every model.
    for p in book.entries().filter(|p| p.provider == "anthropic") {
        let (input, write) = (p.input.unwrap(), p.cache_write.unwrap());
        assert_eq!(write, input * d("1.25"), "{}", p.model);
    }
}

#[test]
fn unpriced_policy_parses() {
    assert_eq!(UnpricedPolicy::default(), UnpricedPolicy::Reject);
    assert_eq!("reject".parse(), Ok(UnpricedPolicy::Reject));
    assert_eq!("record_unknown".parse(), Ok(UnpricedPolicy::RecordUnknown));
    assert!("zero"
        .parse::<UnpricedPolicy>()
        .unwrap_err()
        .contains("\"zero\""));
    assert_eq!(UnpricedPolicy::RecordUnknown.to_string(), "record_unknown");
}

#[test]
fn load_reports_unreadable_file() {
    let err = PriceBook::load(Path::new("/nonexistent/prices.toml")).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("/nonexistent/prices.toml: (file): cannot read"));
}
