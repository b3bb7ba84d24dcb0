use super::*;

fn env(var: &str) -> Option<String> {
    match var {
        "GROQ_KEY" => Some("gsk-test".into()),
        "GW_KEY" => Some("sk-sy-from-env".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    validate("test.toml", text, &env)
}

const GOOD: &str = r#"
[server]
listen = "127.0.0.1:8080"
max_body_size = "16MiB"

[[providers]]
name = "groq"
kind = "groq"
api_keys = ["env:GROQ_KEY", "env:GROQ_KEY_2"]

[[providers]]
name = "local"
kind = "openai-compatible"
base_url = "http://127.0.0.1:11434/v1"

[[gateway_keys]]
name = "billing"
key = "env:GW_KEY"
models = ["chat", "local/*"]

[[routes]]
name = "chat"
targets = ["groq/llama-3.3-70b-versatile", "local/qwen/qwen3"]
"#;

#[test]
fn a_good_config_validates_with_warnings_for_unset_keys() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.server.max_body_size, 16 << 20);
    assert_eq!(c.providers[0].base_url.host, "api.groq.com");
    assert_eq!(c.providers[0].keys.len(), 1);
    assert_eq!(c.providers[0].missing_keys, vec!["env:GROQ_KEY_2"]);
    assert_eq!(c.providers[1].keys.len(), 0);
    assert_eq!(c.gateway_keys[0].secret.expose(), "sk-sy-from-env");
    assert_eq!(
        c.routes[0].targets[1],
        Target {
            provider: 1,
            model: "qwen/qwen3".into()
        }
    );
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("test.toml:9:"), "{}", c.warnings[0]);
    assert!(c.warnings[0].contains("providers[0].api_keys[1]"));
    // A route target without a price is called out (it would be refused at request time).
    assert!(
        c.warnings[1].contains("test.toml:23:") && c.warnings[1].contains("routes[0].targets[1]"),
        "{}",
        c.warnings[1]
    );
    assert!(
        c.warnings[1].contains("no price for `local/qwen/qwen3`"),
        "{}",
        c.warnings[1]
    );
    assert!(!c.warnings[0].contains("gsk-test"));
}

fn err(text: &str) -> ConfigError {
    parse(text).unwrap_err()
}

#[test]
fn unknown_fields_name_file_line_and_field() {
    let e = err("[server]\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n");
    assert_eq!((e.file.as_str(), e.line), ("test.toml", 3));
    assert_eq!(e.field, "server.listen_port");
    assert!(e.message.contains("unknown field"), "{}", e.message);
    let e = err("[[providers]]\nname = \"a\"\nkind = \"openai\"\napi_keys = [\"k\"]\ncolour = 1\n");
    assert_eq!((e.line, e.field.as_str()), (5, "providers[0].colour"));
}

#[test]
fn wrong_types_name_the_field() {
    let e = err("[server]\nthreads = \"four\"\n");
    assert_eq!((e.line, e.field.as_str()), (2, "server.threads"));
}

#[test]
fn semantic_errors_point_at_the_value() {
    let e = err("[[providers]]\nname = \"x\"\nkind = \"grok\"\napi_keys = [\"k\"]\n");
    assert_eq!(
        (e.line, e.column, e.field.as_str()),
        (3, 8, "providers[0].kind")
    );
    assert!(
        e.message.contains("groq"),
        "lists the known kinds: {}",
        e.message
    );

    let e = err("[[providers]]\nname = \"x\"\nkind = \"openai-compatible\"\n");
    assert_eq!(e.field, "providers[0].base_url");

    let e = err("[[providers]]\nname = \"x\"\nkind = \"openai\"\n");
    assert_eq!(e.field, "providers[0].api_keys");

    let e = err("[[providers]]\nname = \"x\"\nkind = \"openai\"\napi_keys=[\"k\"]\nbase_url = \"ftp://h\"\n");
    assert_eq!((e.line, e.field.as_str()), (5, "providers[0].base_url"));

    let e = err("[[routes]]\nname = \"r\"\ntargets = [\"nobody/m\"]\n");
    assert_eq!((e.line, e.field.as_str()), (3, "routes[0].targets[0]"));

    let e = err("[[routes]]\nname = \"r\"\ntargets = [\"no-slash\"]\n");
    assert!(e.message.contains("provider/model"));

    let e = err("[[gateway_keys]]\nname = \"k\"\nkey = \"short\"\n");
    assert_eq!(e.field, "gateway_keys[0].key");
    assert!(
        !e.to_string().contains("short"),
        "the key itself is not echoed"
    );

    let e = err("[[gateway_keys]]\nname = \"k\"\nkey = \"long-enough-key\"\nmodels = [\"typo\"]\n");
    assert_eq!((e.line, e.field.as_str()), (4, "gateway_keys[0].models[0]"));

    let e = err("[server]\nmax_body_size = \"12 parsecs\"\n");
    assert_eq!(e.field, "server.max_body_size");

    let e = err("[[providers]]\nname = \"a/b\"\nkind = \"openai\"\napi_keys=[\"k\"]\n");
    assert_eq!(e.field, "providers[0].name");
}

#[test]
fn pricing_policy_and_overrides() {
    let e = err("[pricing]\nunpriced = \"free\"\n");
    assert_eq!((e.line, e.field.as_str()), (2, "pricing.unpriced"));
    let e = err("[pricing]\noverrides = \"/nonexistent/prices.toml\"\n");
    assert_eq!(e.field, "pricing.overrides");
    let c = parse("[pricing]\nunpriced = \"record_unknown\"\n").unwrap();
    assert_eq!(
        c.pricing.unpriced,
        crate::pricing::UnpricedPolicy::RecordUnknown
    );
}

#[test]
fn duplicates_are_rejected() {
    let e = err("[[providers]]\nname = \"a\"\nkind = \"openai\"\napi_keys=[\"k\"]\n[[providers]]\nname = \"a\"\nkind = \"groq\"\napi_keys=[\"k\"]\n");
    assert_eq!((e.line, e.field.as_str()), (6, "providers[1].name"));
}

#[test]
fn the_embedded_demo_config_is_valid() {
    let c = Config::demo().unwrap();
    assert!(c.mock.is_some());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn the_reference_config_is_valid() {
    let text = include_str!("../../../conf/switchyard.toml");
    let c = validate("switchyard.toml", text, &|_| None).unwrap();
    for kind in crate::providers::ProviderKind::ALL {
        assert!(
            c.providers.iter().any(|p| p.kind == kind),
            "reference config lacks {kind}"
        );
    }
}

#[test]
fn upgrade_sock_defaults_and_must_be_absolute() {
    let c = parse("").unwrap();
    assert_eq!(
        c.server.upgrade_sock,
        std::path::PathBuf::from(DEFAULT_UPGRADE_SOCK)
    );
    let c = parse("[server]\nupgrade_sock = \"/run/switchyard/upgrade.sock\"\n").unwrap();
    assert_eq!(
        c.server.upgrade_sock,
        std::path::PathBuf::from("/run/switchyard/upgrade.sock")
    );
    let e = err("[server]\nupgrade_sock = \"upgrade.sock\"\n");
    assert_eq!((e.line, e.field.as_str()), (2, "server.upgrade_sock"));
    assert!(e.message.contains("absolute"), "{}", e.message);
    let long = format!("/{}", "x".repeat(200));
    let e = err(&format!("[server]\nupgrade_sock = \"{long}\"\n"));
    assert_eq!(e.field, "server.upgrade_sock");
}

#[test]
fn pid_file_defaults_and_must_be_absolute() {
    let c = parse("").unwrap();
    assert_eq!(
        c.server.pid_file,
        std::path::PathBuf::from(DEFAULT_PID_FILE)
    );
    let c = parse("[server]\npid_file = \"/run/switchyard/switchyard.pid\"\n").unwrap();
    assert_eq!(
        c.server.pid_file,
        std::path::PathBuf::from("/run/switchyard/switchyard.pid")
    );
    let e = err("[server]\npid_file = \"switchyard.pid\"\n");
    assert_eq!((e.line, e.field.as_str()), (2, "server.pid_file"));
    assert!(e.message.contains("absolute"), "{}", e.message);
}

#[test]
fn route_strategies_validate_with_file_line_and_field() {
    let p = "[[providers]]\nname = \"p\"\nkind = \"openai\"\napi_keys = [\"k\"]\n";
    let e = err(&format!(
        "{p}[[routes]]\nname = \"r\"\nstrategy = \"cheapist\"\ntargets = [\"p/a\"]\n"
    ));
    assert_eq!((e.line, e.field.as_str()), (7, "routes[0].strategy"), "{e}");
    assert!(e.message.contains("unknown strategy `cheapist`"), "{e}");
    let e = err(&format!(
        "{p}[[routes]]\nname = \"r\"\nstrategy = \"weighted\"\ntargets = [\"p/a\", \"p/b\"]\nweights = [1]\n"
    ));
    assert_eq!(e.field, "routes[0].weights", "{e}");
    let e = err(&format!(
        "{p}[[routes]]\nname = \"r\"\ntargets = [\"p/a\"]\nweights = [1]\n"
    ));
    assert!(
        e.message.contains("goes with strategy = \"weighted\""),
        "{e}"
    );
    let e = err(&format!(
        "{p}[[routes]]\nname = \"r\"\nstrategy = \"hedge\"\ntargets = [\"p/a\", \"p/b\"]\nhedge = {{ after = \"p95\" }}\n"
    ));
    assert_eq!(e.field, "routes[0].hedge.after", "{e}");
    let e = err(&format!(
        "{p}[[routes]]\nname = \"r\"\nstrategy = \"race\"\ntargets = [\"p/a\", \"p/b\"]\nrace = {{ width = 3 }}\n"
    ));
    assert_eq!(e.field, "routes[0].race.width", "{e}");
    // Rules: the route must exist, and rules must not loop.
    let rules = |a_use: &str| {
        format!(
            "{p}[[routes]]\nname = \"a\"\nstrategy = \"rules\"\ntargets = [\"p/a\"]\n[[routes.rules]]\nwhen = {{ has_tools = true }}\nuse = \"{a_use}\"\n\
             [[routes]]\nname = \"b\"\nstrategy = \"rules\"\ntargets = [\"p/b\"]\n[[routes.rules]]\nwhen = {{ has_images = true }}\nuse = \"a\"\n"
        )
    };
    let e = err(&rules("nowhere"));
    assert_eq!(e.field, "routes[0].rules[0].use", "{e}");
    let e = err(&rules("b"));
    assert!(e.message.contains("rules loop"), "{e}");
    let e = err(&format!(
        "{p}[[routes]]\nname = \"a\"\nstrategy = \"rules\"\ntargets = [\"p/a\"]\n[[routes.rules]]\nwhen = {{}}\nuse = \"a\"\n"
    ));
    assert!(e.message.contains("at least one condition"), "{e}");
    let ok = parse(&format!(
        "{p}[[routes]]\nname = \"r\"\nstrategy = \"hedge\"\ntargets = [\"p/a\", \"p/b\"]\nhedge = {{ after = \"300ms\", max_extra = \"5%\" }}\n"
    ))
    .unwrap();
    assert_eq!(
        ok.routes[0].strategy,
        StrategyConfig::Hedge(HedgeConfig {
            after: HedgeAfter::Fixed(std::time::Duration::from_millis(300)),
            max_extra_percent: 5
        })
    );
}

#[test]
fn routes_to_deprecated_or_retired_models_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prices.toml"),
        "[[models]]\nprovider = \"groq\"\nmodel = \"llama-3.1-8b-instant\"\nsupports = []\n\
         deprecated = \"2026-01-01\"\nretired = \"2099-01-01\"\nsource = \"test\"\nchecked = \"2026-12-01\"\n",
    )
    .unwrap();
    let text = "[pricing]\noverrides = \"prices.toml\"\n\
         [[providers]]\nname = \"groq\"\nkind = \"groq\"\napi_keys = [\"env:GROQ_KEY\"]\n\
         [[providers]]\nname = \"claude\"\nkind = \"anthropic\"\napi_keys = [\"env:GROQ_KEY\"]\n\
         [[routes]]\nname = \"old\"\ntargets = [\"claude/claude-3-5-sonnet-20241022\", \"claude/claude-haiku-4-5\"]\n\
         [[routes]]\nname = \"soon\"\ntargets = [\"groq/llama-3.1-8b-instant\"]\n";
    let file = dir.path().join("gw.toml");
    std::fs::write(&file, text).unwrap();
    let c = Config::load(&file).unwrap();
    let name = file.display().to_string();
    let lifecycle: Vec<&String> = c
        .warnings
        .iter()
        .filter(|w| w.contains("upstream"))
        .collect();
    assert_eq!(lifecycle.len(), 2, "{:?}", c.warnings);
    // An alias of a retired model, by the provider's configured name: file, line, field.
    assert!(
        lifecycle[0].starts_with(&format!("{name}:13:12: routes[0].targets[0]: `claude/claude-3-5-sonnet-20241022` is retired upstream since 2025-10-22")),
        "{}",
        lifecycle[0]
    );
    // Retirement announced for a later day: deprecated now, with the date.
    assert!(
        lifecycle[1].contains("routes[1].targets[0]: `groq/llama-3.1-8b-instant` is deprecated upstream and retires on 2099-01-01"),
        "{}",
        lifecycle[1]
    );
    // claude-haiku-4-5 is current: no warning for routes[0].targets[1].
    assert!(!c
        .warnings
        .iter()
        .any(|w| w.contains("routes[0].targets[1]")));
}

/// Every configured duration is bounded: a value the clock cannot add to `Instant::now()`
/// (`5124095576030431h` fits a `Duration` but overflows `Instant + Duration`) is refused at
/// validation, naming the file, line and field, instead of panicking on every request.
#[test]
fn every_duration_is_bounded_with_file_line_and_field() {
    const HUGE: &str = "5124095576030431h";
    let provider = "[[providers]]\nname = \"p\"\nkind = \"openai\"\napi_keys = [\"k\"]\n";
    let cases: Vec<(String, &str)> = vec![
        (format!("[resilience]\ndeadline = \"{HUGE}\"\n"), "resilience.deadline"),
        (format!("[resilience]\nbackoff_base = \"{HUGE}\"\n"), "resilience.backoff_base"),
        (format!("[resilience]\nbackoff_max = \"{HUGE}\"\n"), "resilience.backoff_max"),
        (
            format!("[resilience]\nrate_limit_rest = \"{HUGE}\"\n"),
            "resilience.rate_limit_rest",
        ),
        (
            format!("[resilience]\nauth_failure_rest = \"{HUGE}\"\n"),
            "resilience.auth_failure_rest",
        ),
        (
            format!("[resilience]\nbreaker_open_for = \"{HUGE}\"\n"),
            "resilience.breaker_open_for",
        ),
        (
            format!("[server]\ngrace_period = \"{HUGE}\"\n"),
            "server.grace_period",
        ),
        (format!("[cache]\nmax_ttl = \"{HUGE}\"\n"), "cache.max_ttl"),
        (format!("[cache]\nlock_timeout = \"{HUGE}\"\n"), "cache.lock_timeout"),
        (
            format!("[mock]\nlisten = \"127.0.0.1:1\"\nttft = \"{HUGE}\"\n"),
            "mock.ttft",
        ),
        (
            format!("[mock]\nlisten = \"127.0.0.1:1\"\nitl = \"{HUGE}\"\n"),
            "mock.itl",
        ),
        (
            format!("{provider}connect_timeout = \"{HUGE}\"\n"),
            "providers[0].connect_timeout",
        ),
        (
            format!("{provider}read_timeout = \"{HUGE}\"\n"),
            "providers[0].read_timeout",
        ),
        (
            format!("{provider}[[routes]]\nname = \"r\"\ntargets = [\"p/m\"]\ndeadline = \"{HUGE}\"\n"),
            "routes[0].deadline",
        ),
        (
            format!("{provider}[[routes]]\nname = \"r\"\ntargets = [\"p/m\"]\ncache = {{ ttl = \"{HUGE}\" }}\n"),
            "routes[0].cache.ttl",
        ),
    ];
    for (text, field) in cases {
        let e = err(&text);
        let line = text
            .lines()
            .position(|l| l.contains(HUGE))
            .map(|i| i + 1)
            .unwrap();
        assert_eq!((e.line, e.field.as_str()), (line, field), "{e}");
        assert!(e.message.contains("at most"), "{e}");
        assert!(e.to_string().starts_with("test.toml:"), "{e}");
    }
    // Per kind: a request-scale value up to a day, a rest up to 30 days, a TTL up to a year.
    assert!(parse("[resilience]\ndeadline = \"24h\"\n").is_ok());
    assert_eq!(
        err("[resilience]\ndeadline = \"25h\"\n").field,
        "resilience.deadline"
    );
    assert!(parse("[resilience]\nauth_failure_rest = \"30d\"\n").is_ok());
    assert!(parse("[cache]\nmax_ttl = \"365d\"\n").is_ok());
    assert_eq!(err("[cache]\nmax_ttl = \"366d\"\n").field, "cache.max_ttl");
}
