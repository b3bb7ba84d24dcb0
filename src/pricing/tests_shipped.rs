//! The shipped list (conf/prices/*.toml): it parses, covers every preset with current models,
//! every period names its source, every priced model has capabilities, and the fixes of the
//! 2026-12 check hold: mismatches are new periods (old periods keep their figures), uncertain
//! figures are marked, retired models keep their prices.

use super::*;
use rust_decimal::Decimal;

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn day(s: &str) -> PriceDate {
    PriceDate::parse(s).unwrap()
}

fn book() -> PriceBook {
    PriceBook::parse_builtin().unwrap()
}

/// The day of the 2026-12 check, which the shipped figures were checked on.
const TODAY: &str = "2026-12-03";

#[test]
fn shipped_price_list_parses_and_covers_every_preset() {
    let book = PriceBook::builtin();
    assert!(!book.is_empty());
    assert_eq!(book, self::book());
    for p in book.entries() {
        let tokens = p.input.is_some() && p.output.is_some();
        let units = p.per_image.is_some()
            || !p.images.is_empty()
            || p.per_second.is_some()
            || p.per_character.is_some()
            || p.per_request.is_some();
        assert!(tokens || units, "{}/{} has no price", p.provider, p.model);
        assert!(
            p.defined_at
                .starts_with(&format!("<embedded conf/prices/{}.toml>", p.provider)),
            "{}/{} is in {}: one provider per file",
            p.provider,
            p.model,
            p.defined_at
        );
    }
    for kind in crate::providers::ProviderKind::ALL {
        if kind != crate::providers::ProviderKind::OpenAiCompatible {
            let family = kind.price_family();
            assert!(
                book.entries().any(|p| p.provider == family),
                "no prices for preset {kind}"
            );
        }
    }
    // Anthropic 5-minute cache writes are 1.25 × input in every period and tier.
    for p in book.entries().filter(|p| p.provider == "anthropic") {
        let (input, write) = (p.input.unwrap(), p.cache_write.unwrap());
        assert_eq!(write, input * d("1.25"), "{}", p.model);
        for t in &p.tiers {
            assert_eq!(t.cache_write, Some(t.input * d("1.25")), "{}", p.model);
        }
    }
}

#[test]
fn every_period_names_its_source_and_check_date() {
    let book = book();
    for p in book.entries() {
        assert!(!p.source.trim().is_empty(), "{}/{}", p.provider, p.model);
        // Every figure was checked in the 2026-12 check or since.
        assert!(p.checked >= day(TODAY), "{}/{}", p.provider, p.model);
        assert!(p.effective <= p.checked, "{}/{}", p.provider, p.model);
    }
    for m in book.models() {
        assert!(!m.source.trim().is_empty(), "{}/{}", m.provider, m.model);
        assert!(m.checked >= day(TODAY), "{}/{}", m.provider, m.model);
    }
}

#[test]
fn every_priced_model_has_capabilities_and_every_entry_a_price() {
    let book = book();
    for p in book.entries() {
        let info = book.model_info(&p.provider, &p.model);
        assert!(
            info.is_some(),
            "{}/{} has no [[models]]",
            p.provider,
            p.model
        );
        for a in &p.aliases {
            assert!(book.model_info(&p.provider, a).is_some(), "alias {a}");
        }
    }
    for m in book.models() {
        let latest = book
            .lookup(&m.provider, &m.model, day(TODAY))
            .unwrap_or_else(|| panic!("{}/{} has capabilities but no price", m.provider, m.model));
        // prompt_caching is set exactly when cache reads have their own price.
        assert_eq!(
            m.capabilities.prompt_caching,
            latest.cached_input.is_some(),
            "{}/{}",
            m.provider,
            m.model
        );
        let c = &m.capabilities;
        if let (Some(w), Some(o)) = (c.context_window, c.max_output_tokens) {
            assert!(o <= w, "{}/{}", m.provider, m.model);
        }
    }
    // Token models have a context window; chat models some feature.
    let gpt = book.capabilities_for(&["openai"], "gpt-4o").unwrap();
    assert_eq!(gpt.context_window, Some(128_000));
    assert_eq!(gpt.max_output_tokens, Some(16_384));
    assert!(gpt.tools && gpt.vision && gpt.json_schema && gpt.prompt_caching && !gpt.reasoning);
    let snapshot = book
        .capabilities_for(&["openai"], "gpt-4o-2024-11-20")
        .unwrap();
    assert_eq!(snapshot, gpt, "an alias has its model's capabilities");
    let opus = book
        .capabilities_for(&["anthropic"], "claude-opus-4-7")
        .unwrap();
    assert_eq!(
        (opus.context_window, opus.max_output_tokens),
        (Some(1_000_000), Some(128_000))
    );
    assert!(opus.reasoning && opus.tools && opus.vision);
}

#[test]
fn gemini_cache_cut_is_a_new_period_and_old_periods_keep_their_figures() {
    let book = book();
    let cached = |provider: &str, model: &str, at: &str| {
        book.lookup(provider, model, day(at))
            .unwrap()
            .cached_input
            .unwrap()
    };
    let cases: &[(&str, &str, &str, &str)] = &[
        ("gemini", "gemini-2.5-pro", "0.31", "0.125"),
        ("gemini", "gemini-2.5-flash", "0.075", "0.03"),
        ("gemini", "gemini-2.5-flash-lite", "0.025", "0.01"),
        ("openrouter", "google/gemini-2.5-pro", "0.31", "0.125"),
        ("openrouter", "google/gemini-2.5-flash", "0.075", "0.03"),
    ];
    for (provider, model, before, after) in cases {
        assert_eq!(
            cached(provider, model, "2025-10-30"),
            d(before),
            "{provider}/{model}"
        );
        assert_eq!(
            cached(provider, model, "2025-10-31"),
            d(after),
            "{provider}/{model}"
        );
        let new = book.lookup(provider, model, day(TODAY)).unwrap();
        assert!(
            new.uncertain.is_some(),
            "the cut's date is marked uncertain"
        );
    }
    for provider in ["gemini", "openrouter"] {
        let model = if provider == "gemini" {
            "gemini-2.5-pro"
        } else {
            "google/gemini-2.5-pro"
        };
        let tier = |at: &str| book.lookup(provider, model, day(at)).unwrap().tiers[0].cached_input;
        assert_eq!(tier("2025-10-30"), Some(d("0.625")));
        assert_eq!(tier(TODAY), Some(d("0.25")));
    }
}

#[test]
fn mistral_large_latest_moves_to_large_3_and_2411_keeps_its_price() {
    let book = book();
    let price = |model: &str, at: &str| {
        let p = book.lookup("mistral", model, day(at)).unwrap();
        (p.input.unwrap(), p.output.unwrap())
    };
    assert_eq!(
        price("mistral-large-latest", "2025-12-01"),
        (d("2"), d("6"))
    );
    assert_eq!(
        price("mistral-large-latest", "2025-12-02"),
        (d("0.5"), d("1.5"))
    );
    assert_eq!(price("mistral-large-2512", TODAY), (d("0.5"), d("1.5")));
    assert_eq!(price("mistral-large-2411", "2025-01-01"), (d("2"), d("6")));
    assert_eq!(price("mistral-large-2411", TODAY), (d("2"), d("6")));
    // The dated names that were aliases of the uncertain `-latest` names keep their price
    // without the uncertainty.
    for model in [
        "mistral-medium-2505",
        "mistral-small-2503",
        "mistral-small-2506",
    ] {
        let p = book.lookup("mistral", model, day(TODAY)).unwrap();
        assert!(p.uncertain.is_none(), "{model}");
    }
}

#[test]
fn uncertain_figures_are_marked() {
    let book = book();
    let uncertain = |provider: &str, model: &str, at: &str| {
        book.lookup(provider, model, day(at))
            .unwrap()
            .uncertain
            .clone()
            .unwrap_or_default()
    };
    assert!(uncertain("openai", "o3", "2025-05-01").contains("cached_input"));
    assert!(uncertain("openai", "o3", TODAY).is_empty());
    for model in ["mistral-medium-latest", "mistral-small-latest"] {
        assert!(
            uncertain("mistral", model, TODAY).contains("alias"),
            "{model}"
        );
    }
    for model in [
        "meta-llama/Llama-3.3-70B-Instruct",
        "meta-llama/Meta-Llama-3.1-8B-Instruct",
    ] {
        assert!(!uncertain("deepinfra", model, TODAY).is_empty(), "{model}");
    }
    assert!(uncertain("xai", "grok-4", TODAY).contains("tiers[0].cached_input"));
    assert!(uncertain("anthropic", "claude-3-5-haiku-latest", TODAY).contains("$1 / $5"));
    assert!(uncertain("anthropic", "claude-sonnet-5", TODAY).contains("$3 / $15"));
}

#[test]
fn retired_models_keep_their_prices() {
    let book = book();
    let cases: &[(&str, &str, &str)] = &[
        ("xai", "grok-4", "2026-05-15"),
        ("xai", "grok-4-0709", "2026-05-15"),
        ("xai", "grok-4-fast-non-reasoning", "2026-05-15"),
        ("xai", "grok-code-fast-1", "2026-05-15"),
        ("xai", "grok-3", "2026-05-15"),
        ("anthropic", "claude-3-5-sonnet-latest", "2025-10-22"),
        ("anthropic", "claude-3-7-sonnet-latest", "2026-02-19"),
        ("anthropic", "claude-sonnet-4-0", "2026-06-15"),
        ("anthropic", "claude-opus-4-20250514", "2026-06-15"),
        ("anthropic", "claude-sonnet-4-5", "2026-11-30"),
    ];
    for (provider, model, retired) in cases {
        let info = book.model_info(provider, model).unwrap();
        assert_eq!(info.retired, Some(day(retired)), "{provider}/{model}");
        assert_eq!(
            info.lifecycle(day(TODAY)),
            Lifecycle::Retired {
                since: day(retired)
            }
        );
        assert!(
            book.lookup(provider, model, day(retired).add_days(-1))
                .is_some(),
            "{provider}/{model} keeps its price"
        );
    }
    let deprecated: &[(&str, &str, &str)] = &[
        ("gemini", "gemini-2.0-flash", "2026-06-01"),
        ("cerebras", "llama-3.3-70b", "2026-02-16"),
        ("mistral", "mistral-medium-2505", "2026-05-22"),
        ("xai", "grok-3-mini", "2026-02-28"),
    ];
    for (provider, model, since) in deprecated {
        let info = book.model_info(provider, model).unwrap();
        assert_eq!(
            info.lifecycle(day(TODAY)),
            Lifecycle::Deprecated { since: day(since) },
            "{provider}/{model}"
        );
    }
}

#[test]
fn current_models_of_every_preset_are_priced() {
    let book = book();
    let required: &[(&str, &[&str])] = &[
        (
            "openai",
            &[
                "gpt-5.1",
                "gpt-5.2",
                "gpt-5.4",
                "gpt-5.4-mini",
                "gpt-5.4-nano",
                "gpt-5.5",
                "gpt-5.5-pro",
                "gpt-5.6-sol",
                "gpt-5-pro",
                "o3-pro",
            ],
        ),
        (
            "anthropic",
            &[
                "claude-opus-4-5",
                "claude-opus-4-6",
                "claude-opus-4-7",
                "claude-opus-4-8",
                "claude-opus-5",
                "claude-sonnet-4-6",
                "claude-sonnet-5",
                "claude-fable-5",
            ],
        ),
        (
            "gemini",
            &[
                "gemini-3.1-pro-preview",
                "gemini-3-flash-preview",
                "gemini-3.1-flash-lite",
                "gemini-3.5-flash",
                "gemini-3.5-flash-lite",
                "gemini-embedding-001",
            ],
        ),
        (
            "groq",
            &[
                "openai/gpt-oss-120b",
                "openai/gpt-oss-20b",
                "moonshotai/kimi-k2-instruct-0905",
                "qwen/qwen3-32b",
            ],
        ),
        ("cerebras", &["gpt-oss-120b", "zai-glm-4.7"]),
        (
            "deepinfra",
            &["meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8"],
        ),
        (
            "mistral",
            &[
                "mistral-large-2512",
                "mistral-medium-2604",
                "mistral-small-2603",
                "codestral-2508",
                "devstral-2512",
                "magistral-medium-2509",
                "ministral-8b-2512",
            ],
        ),
        ("xai", &["grok-4.3", "grok-build-0.1"]),
        (
            "openrouter",
            &[
                "openai/gpt-5.5",
                "anthropic/claude-opus-4.8",
                "anthropic/claude-sonnet-5",
                "google/gemini-3.1-pro-preview",
                "x-ai/grok-4.3",
                "mistralai/mistral-large-2512",
            ],
        ),
    ];
    for (provider, models) in required {
        for model in *models {
            assert!(
                book.lookup(provider, model, day(TODAY)).is_some(),
                "{provider}/{model} unpriced"
            );
            let info = book.model_info(provider, model).unwrap();
            assert_eq!(info.lifecycle(day(TODAY)), Lifecycle::Current);
        }
    }
    // Where sources conflict and no provider page settles it, the model is left out (the
    // file says why): unpriced, never guessed.
    let left_out: &[(&str, &str)] = &[
        ("openai", "gpt-5.6-terra"),
        ("openai", "gpt-5.6-luna"),
        ("gemini", "gemini-3.6-flash"),
        ("xai", "grok-4.5"),
        ("xai", "grok-4.20-0309-reasoning"),
        ("deepinfra", "openai/gpt-oss-120b"),
    ];
    for (provider, model) in left_out {
        assert!(book.lookup(provider, model, day(TODAY)).is_none());
    }
    // Long-context tiers of the new models: gpt-5.4 above 272k, grok-4.3 above 200k.
    let gpt = book.lookup("openai", "gpt-5.4", day(TODAY)).unwrap();
    assert_eq!(gpt.tiers[0].above_input_tokens, 272_000);
    assert_eq!(gpt.tiers[0].input, d("5.00"));
    let sol = book
        .cost(
            "openai",
            "gpt-5.6-sol",
            day(TODAY),
            &crate::usage::Usage {
                input: 0,
                output: 0,
                cached_input: 0,
                cache_write: 100_000,
                reasoning: 0,
            },
        )
        .unwrap();
    assert_eq!(
        sol.cache_write,
        d("0.625"),
        "GPT-5.6 bills cache writes at 1.25 × input"
    );
}
