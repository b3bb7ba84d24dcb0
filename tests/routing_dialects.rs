//! Routing for every client dialect, end to end: the capability filters (vision, tools, JSON
//! schema, maximum output) and the rules read Responses (`POST /v1/responses`) and Gemini
//! native (`POST /v1beta/models/{m}:generateContent`) requests as they read Chat Completions
//! ones; each removal names its filter in `x-switchyard-route-reason`, and a request no target
//! can take gets a 400 naming the filters, in the client's dialect.

mod common;
use common::*;
use serde_json::{json, Value};

/// `anthropic/claude-notools` is given capabilities without tools or JSON schema, and a
/// 1000-token output ceiling (a `[[models]]` override).
const CAPS: &str = "[[models]]\nprovider = \"anthropic\"\nmodel = \"claude-notools\"\n\
    context_window = 200000\nmax_output_tokens = 1000\nsupports = [\"vision\"]\n\
    source = \"test\"\nchecked = \"2026-12-03\"\n";

const ROUTES: &str = r#"
[[routes]]
name = "vis"
targets = ["groq/llama-3.3-70b-versatile", "openai/gpt-4o-mini"]

[[routes]]
name = "caps"
targets = ["anthropic/claude-notools", "groq/llama-3.3-70b-versatile"]

[[routes]]
name = "smart"
strategy = "rules"
targets = ["groq/llama-3.3-70b-versatile"]
[[routes.rules]]
when = { has_tools = true }
use = "claude"
[[routes.rules]]
when = { max_tokens_over = 3000 }
use = "chat"
[[routes.rules]]
when = { has_images = true }
use = "vis"
"#;

fn stack() -> (Mock, Gateway, tempfile::TempDir) {
    let mock = start_mock(&[]);
    let dir = tempfile::tempdir().unwrap();
    let caps = dir.path().join("caps.toml");
    std::fs::write(&caps, CAPS).unwrap();
    let mut cfg = standard_config(free_port(), mock.port, "").replace(
        "[pricing]\n",
        &format!("[pricing]\noverrides = \"{}\"\n", caps.display()),
    );
    cfg.push_str(ROUTES);
    let gw = start_gateway_with(&cfg);
    (mock, gw, dir)
}

/// The three client dialects' way of sending one request to `model`.
#[derive(Clone, Copy, Debug)]
enum Client {
    Chat,
    Responses,
    Gemini,
}

fn send(gw: &Gateway, client: Client, model: &str, body: &Value) -> RawResponse {
    let auth = bearer();
    let (path, headers) = match client {
        Client::Chat => (
            "/v1/chat/completions".to_owned(),
            vec![("authorization", auth.as_str())],
        ),
        Client::Responses => (
            "/v1/responses".to_owned(),
            vec![("authorization", auth.as_str())],
        ),
        Client::Gemini => (
            format!("/v1beta/models/{model}:generateContent"),
            vec![("x-goog-api-key", GW_KEY)],
        ),
    };
    let mut body = body.clone();
    if !matches!(client, Client::Gemini) {
        body["model"] = json!(model);
    }
    let mut s = connect(gw);
    roundtrip(&mut s, "POST", &path, &headers, body.to_string().as_bytes())
}

fn ok(r: &RawResponse, what: &str) -> String {
    assert_eq!(
        r.status,
        200,
        "{what}: {}",
        String::from_utf8_lossy(&r.body)
    );
    format!(
        "{}/{}",
        r.header("x-switchyard-provider").unwrap_or("-"),
        r.header("x-switchyard-model").unwrap_or("-")
    )
}

/// Sends `body` to `route` as `client`; the answer must be a 200. The target that served it
/// and the route reason.
fn routed(gw: &Gateway, client: Client, route: &str, body: &Value) -> (String, String) {
    let r = send(gw, client, route, body);
    (ok(&r, &format!("{client:?}")), reason(&r))
}

fn reason(r: &RawResponse) -> String {
    r.header("x-switchyard-route-reason")
        .unwrap_or_default()
        .to_owned()
}

/// A request in `client`'s shape: a text prompt, optionally an image, tools, an output limit
/// and a JSON-schema answer.
fn request(client: Client, image: bool, tools: bool, max: Option<u64>, schema: bool) -> Value {
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    let mut v = match client {
        Client::Chat => {
            let mut parts = vec![json!({"type": "text", "text": "What is this?"})];
            if image {
                parts.push(json!({"type": "image_url",
                    "image_url": {"url": format!("data:image/png;base64,{png}")}}));
            }
            json!({"messages": [{"role": "user", "content": parts}]})
        }
        Client::Responses => {
            let mut parts = vec![json!({"type": "input_text", "text": "What is this?"})];
            if image {
                parts.push(json!({"type": "input_image",
                    "image_url": format!("data:image/png;base64,{png}")}));
            }
            json!({"instructions": "Be brief.", "input": [{"role": "user", "content": parts}]})
        }
        Client::Gemini => {
            let mut parts = vec![json!({"text": "What is this?"})];
            if image {
                parts.push(json!({"inlineData": {"mimeType": "image/png", "data": png}}));
            }
            json!({"systemInstruction": {"parts": [{"text": "Be brief."}]},
                "contents": [{"role": "user", "parts": parts}]})
        }
    };
    let params = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    if tools {
        v["tools"] = match client {
            Client::Chat => json!([{"type": "function",
                "function": {"name": "weather", "parameters": params}}]),
            Client::Responses => json!([{"type": "function", "name": "weather",
                "parameters": params}]),
            Client::Gemini => json!([{"functionDeclarations": [{"name": "weather",
                "parameters": params}]}]),
        };
    }
    if let Some(m) = max {
        match client {
            Client::Chat => v["max_tokens"] = json!(m),
            Client::Responses => v["max_output_tokens"] = json!(m),
            Client::Gemini => v["generationConfig"] = json!({"maxOutputTokens": m}),
        }
    }
    if schema {
        let format = json!({"type": "json_schema", "name": "answer", "schema": params});
        match client {
            Client::Chat => {
                v["response_format"] = json!({"type": "json_schema",
                    "json_schema": {"name": "answer", "schema": params}})
            }
            Client::Responses => v["text"] = json!({"format": format}),
            Client::Gemini => {
                v["generationConfig"]["responseMimeType"] = json!("application/json");
                v["generationConfig"]["responseSchema"] = params;
            }
        }
    }
    v
}

const CLIENTS: [Client; 3] = [Client::Chat, Client::Responses, Client::Gemini];

#[test]
fn vision_filtering_reads_every_client_dialect() {
    let (_mock, gw, _dir) = stack();
    for client in CLIENTS {
        let what = format!("{client:?}");
        let (served, why) = routed(
            &gw,
            client,
            "vis",
            &request(client, true, false, None, false),
        );
        assert_eq!(served, "openai/gpt-4o-mini", "{what}");
        assert!(
            why.contains("removed groq/llama-3.3-70b-versatile (vision: the request has images)"),
            "{what}: {why}"
        );
        // Without the image nothing is removed and the first target serves.
        let (served, why) = routed(
            &gw,
            client,
            "vis",
            &request(client, false, false, None, false),
        );
        assert_eq!(served, "groq/llama-3.3-70b-versatile", "{what}");
        assert_eq!(why, "fallback", "{what}");
    }
}

#[test]
fn rules_read_tools_limits_and_images_in_every_client_dialect() {
    let (_mock, gw, _dir) = stack();
    for client in CLIENTS {
        let what = format!("{client:?}");
        let (served, why) = routed(
            &gw,
            client,
            "smart",
            &request(client, false, false, None, false),
        );
        assert_eq!(served, "groq/llama-3.3-70b-versatile", "{what}");
        assert!(
            why.starts_with("rules: no rule matched `smart`"),
            "{what}: {why}"
        );

        let (served, why) = routed(
            &gw,
            client,
            "smart",
            &request(client, false, true, None, false),
        );
        assert_eq!(served, "anthropic/claude-sonnet-4-5", "{what}");
        assert!(
            why.starts_with("rules: `smart` rule 0 (has_tools=true) -> `claude`"),
            "{what}: {why}"
        );

        let (served, why) = routed(
            &gw,
            client,
            "smart",
            &request(client, false, false, Some(4000), false),
        );
        assert_eq!(served, "openai/gpt-4o-mini", "{what}");
        assert!(
            why.contains("rule 1 (max_tokens>3000) -> `chat`"),
            "{what}: {why}"
        );
        // Under the limit: no rule.
        let (served, _) = routed(
            &gw,
            client,
            "smart",
            &request(client, false, false, Some(2000), false),
        );
        assert_eq!(served, "groq/llama-3.3-70b-versatile", "{what}");

        let (served, why) = routed(
            &gw,
            client,
            "smart",
            &request(client, true, false, None, false),
        );
        assert_eq!(served, "openai/gpt-4o-mini", "{what}");
        assert!(
            why.contains("rule 2 (has_images=true) -> `vis`"),
            "{what}: {why}"
        );
    }
}

#[test]
fn tools_json_schema_and_max_output_filters_name_themselves() {
    let (_mock, gw, _dir) = stack();
    for client in CLIENTS {
        let what = format!("{client:?}");
        // claude-notools has no tools: groq (tools) serves.
        let (served, why) = routed(
            &gw,
            client,
            "caps",
            &request(client, false, true, None, false),
        );
        assert_eq!(served, "groq/llama-3.3-70b-versatile", "{what}");
        assert!(
            why.contains("removed anthropic/claude-notools (tools: the request has tools)"),
            "{what}: {why}"
        );
        // 2000 output tokens are more than claude-notools' 1000.
        let (served, why) = routed(
            &gw,
            client,
            "caps",
            &request(client, false, false, Some(2000), false),
        );
        assert_eq!(served, "groq/llama-3.3-70b-versatile", "{what}");
        assert!(
            why.contains("removed anthropic/claude-notools (max_output: 2000 max_tokens > 1000)"),
            "{what}: {why}"
        );
        // Within it, the first target serves.
        let (served, _) = routed(
            &gw,
            client,
            "caps",
            &request(client, false, false, Some(500), false),
        );
        assert_eq!(served, "anthropic/claude-notools", "{what}");

        // Neither target enforces a JSON schema: a 400 naming the filter for each, in the
        // client's dialect.
        let r = send(
            &gw,
            client,
            "caps",
            &request(client, false, false, None, true),
        );
        assert_eq!(
            r.status,
            400,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let v = r.json();
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        for t in ["anthropic/claude-notools", "groq/llama-3.3-70b-versatile"] {
            assert!(
                msg.contains(&format!(
                    "{t} (json_schema: the request asks for a JSON schema)"
                )),
                "{what}: {msg}"
            );
        }
        match client {
            Client::Gemini => assert_eq!(v["error"]["status"], "INVALID_ARGUMENT", "{v}"),
            _ => assert_eq!(v["error"]["type"], "invalid_request_error", "{v}"),
        }
        // gpt-4o-mini does: the same request on `vis` drops only groq.
        let (served, why) = routed(
            &gw,
            client,
            "vis",
            &request(client, false, false, None, true),
        );
        assert_eq!(served, "openai/gpt-4o-mini", "{what}");
        assert!(
            why.contains("removed groq/llama-3.3-70b-versatile (json_schema"),
            "{what}: {why}"
        );
    }
}
